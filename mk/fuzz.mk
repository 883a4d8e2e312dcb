# Fuzzing the C core with libFuzzer (fuzz/).
#
#   make fuzz [FUZZ_SECONDS=600]   fuzz both targets (2/3 of the time to
#                                  fuzz-api, 1/3 to fuzz-checked) and merge
#                                  what they found into fuzz/corpus/<target>/
#   make fuzz-build                build the targets only
#
# Targets: fuzz-api (default core) and fuzz-checked (HA_CHECKED=1 core, bad
# calls in forked children), both with ASan+UBSan.  The core is compiled
# with the same warnings as mk/c.mk and linked as one object whose static
# state the harness restores before every input (fuzz/state.h).
#
# make test: fuzz-replay runs every corpus and regression input once;
# fuzz-30s fuzzes 30 s more (15 s per target) in a scratch corpus.

FUZZ_CC      ?= clang
FUZZ_TARGETS := api checked
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_SECONDS ?= 600
FUZZ_HARNESS := fuzz/fuzz_heap.c fuzz/state.c
FUZZ_HDRS    := fuzz/state.h

FUZZ_VARIANT_api     :=
FUZZ_VARIANT_checked := -DHA_CHECKED=1
FUZZ_HARNESS_api     :=
FUZZ_HARNESS_checked := -DFUZZ_BAD_CALLS=1

.PHONY: fuzz fuzz-build fuzz-setup fuzz-test

fuzz-setup:
	@$(TOP)/fuzz/setup.sh

define FUZZ_TARGET
$(FUZZ_DIR)/$(1)/obj/%.o: c-alloc/src/%.c $(C_HDRS) | fuzz-setup
	@mkdir -p $$(@D); echo "  CC [fuzz-$(1)] $$<"
	@$(FUZZ_CC) $(C_CORE) $(FUZZ_CFLAGS) $(FUZZ_VARIANT_$(1)) -c $$< -o $$@

$(FUZZ_DIR)/$(1)/core.o: $(patsubst c-alloc/src/%.c,$(FUZZ_DIR)/$(1)/obj/%.o,$(C_SRCS)) fuzz/isolate-core.sh
	@$(TOP)/fuzz/isolate-core.sh $$@ $$(filter %.o,$$^)

$(FUZZ_DIR)/fuzz-$(1): $(FUZZ_HARNESS) $(FUZZ_HDRS) $(FUZZ_DIR)/$(1)/core.o
	@echo "  LINK $$@"
	@$(FUZZ_CC) -std=gnu11 $(filter-out -std=c11,$(C_WARN)) -Ic-alloc/include -Ifuzz \
	    $(FUZZ_CFLAGS) $(FUZZ_VARIANT_$(1)) $(FUZZ_HARNESS_$(1)) -fsanitize=fuzzer \
	    $(FUZZ_HARNESS) $(FUZZ_DIR)/$(1)/core.o -o $$@
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_TARGET,$(t))))

fuzz-build: fuzz-setup $(foreach t,$(FUZZ_TARGETS),$(FUZZ_DIR)/fuzz-$(t))

fuzz: fuzz-build
	@$(TOP)/fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_DIR)

fuzz-test:
	@$(CHECK) fuzz-build $(MAKE) --no-print-directory fuzz-build
	@$(CHECK) fuzz-replay $(TOP)/fuzz/run.sh replay 0 $(FUZZ_DIR)
	@$(CHECK) fuzz-30s $(TOP)/fuzz/run.sh short 30 $(FUZZ_DIR)

TEST_STEPS += fuzz-test
