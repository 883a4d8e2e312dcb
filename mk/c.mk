# The C library (c-alloc/) and its host test suite (tests/c/).
#
# Library variants: host plain (-O2), host asan (ASan+UBSan), host checked
# (HA_CHECKED=1), host tsan (ThreadSanitizer), riscv64 (freestanding, what
# the kernels link).
# Every tests/c/test_*.c is a program; each runs plain, under ASan+UBSan,
# under valgrind and against the checked build; those that start threads
# also run against the tsan build.

C_SRCS   := $(sort $(wildcard c-alloc/src/*.c))
C_HDRS   := c-alloc/include/hartalloc.h $(wildcard c-alloc/src/*.h)
# The warning list is shared with build.rs (c-alloc/warnings.txt); errors here.
C_WARN   := -std=c11 $(strip $(shell sed 's/\#.*//' c-alloc/warnings.txt)) -Werror
C_CORE   := $(C_WARN) -ffreestanding -Ic-alloc/include -Ic-alloc/src
HOST_CC  ?= gcc
RV_CC    ?= riscv64-unknown-elf-gcc
RV_AR    ?= riscv64-unknown-elf-ar
RV_FLAGS := -march=rv64gc -mabi=lp64d -mcmodel=medany -mno-save-restore -O2 -g

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

C_VARIANT_FLAGS_plain   := -O2 -g
C_VARIANT_FLAGS_asan    := -O1 -g $(SAN_FLAGS)
C_VARIANT_FLAGS_checked := -O1 -g -DHA_CHECKED=1
C_VARIANT_FLAGS_tsan    := -O1 -g -fsanitize=thread

C_TESTS  := $(patsubst tests/c/%.c,%,$(sort $(wildcard tests/c/test_*.c)))
C_THREAD_TESTS := $(patsubst tests/c/%.c,%,$(sort $(shell grep -l pthread_create tests/c/test_*.c)))
C_TEST_SUPPORT := $(filter-out $(wildcard tests/c/test_*.c),$(wildcard tests/c/*.c))
C_TEST_HDRS := $(wildcard tests/c/*.h)

.PHONY: lib lib-host lib-riscv test-c test-c-build c-warnings

lib: lib-host lib-riscv
lib-host: $(BUILD)/host/plain/libhartalloc.a
lib-riscv: $(BUILD)/riscv64/libhartalloc.a

# --- host library variants ------------------------------------------------
define C_VARIANT
$(BUILD)/host/$(1)/obj/%.o: c-alloc/src/%.c $(C_HDRS)
	@mkdir -p $$(@D); echo "  CC [$(1)] $$<"
	@$(HOST_CC) $(C_CORE) $(C_VARIANT_FLAGS_$(1)) -c $$< -o $$@

$(BUILD)/host/$(1)/libhartalloc.a: $(patsubst c-alloc/src/%.c,$(BUILD)/host/$(1)/obj/%.o,$(C_SRCS))
	@rm -f $$@; ar rcs $$@ $$^

$(BUILD)/host/$(1)/tests/%: tests/c/%.c $(C_TEST_SUPPORT) $(C_TEST_HDRS) $(BUILD)/host/$(1)/libhartalloc.a
	@mkdir -p $$(@D); echo "  LINK [$(1)] $$@"
	@$(HOST_CC) -std=gnu11 -Wall -Wextra -Werror -Ic-alloc/include -Ic-alloc/src -Itests/c \
	    $(C_VARIANT_FLAGS_$(1)) $$< $(C_TEST_SUPPORT) $(BUILD)/host/$(1)/libhartalloc.a -lpthread -o $$@
endef
$(foreach v,plain asan checked tsan,$(eval $(call C_VARIANT,$(v))))

# A program on the library's weak default hooks (no harness: its hooks
# would replace them).
$(BUILD)/host/%/weak_hooks: tests/weak-hooks/weak_hooks.c $(BUILD)/host/%/libhartalloc.a
	@mkdir -p $(@D); echo "  LINK [$*] $@"
	@$(HOST_CC) -std=gnu11 -Wall -Wextra -Werror -Ic-alloc/include -Ic-alloc/src \
	    $(C_VARIANT_FLAGS_$*) $< $(BUILD)/host/$*/libhartalloc.a -o $@

# --- riscv64 library (freestanding, no libc) ---------------------------------
$(BUILD)/riscv64/obj/%.o: c-alloc/src/%.c $(C_HDRS)
	@$(SETUP) riscv-c
	@mkdir -p $(@D); echo "  CC [riscv64] $<"
	@$(RV_CC) $(C_CORE) $(RV_FLAGS) -nostdlib -c $< -o $@

$(BUILD)/riscv64/libhartalloc.a: $(patsubst c-alloc/src/%.c,$(BUILD)/riscv64/obj/%.o,$(C_SRCS))
	@rm -f $@; $(RV_AR) rcs $@ $^

# --- test steps ------------------------------------------------------------
# HA_TEST_SCALE (percent) shrinks the randomised tests where they run slower.
# test_stats keeps most of its blocks in the 1..4 KiB slab classes, whose
# every free object the checked build's walk (one per call) looks at.
C_CHECKED_SCALE_test_stats := 3
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
# Any report fails the step: the first race ends the scenario (exit 66)
# with both stacks; a lock-order report shows both lock sites.  10%:
# test_threads runs about 30 times slower under TSan.  No thread-leak
# reports: a fault scenario ends the process from the faulting thread
# while the other racer may still run (racing_double_free_*).
HA_TSAN_OPTIONS := halt_on_error=1 second_deadlock_stack=1 report_thread_leaks=0
C_TSAN_SCALE := 10

test-c-build:
	@$(SETUP) host
	@$(MAKE) --no-print-directory $(foreach t,$(C_TESTS),$(foreach v,plain asan checked,$(BUILD)/host/$(v)/tests/$(t))) \
	    $(foreach v,plain asan,$(BUILD)/host/$(v)/weak_hooks)

test-c: test-c-build
	@$(CHECK) c-build-host-warnings $(MAKE) --no-print-directory -B $(BUILD)/host/plain/libhartalloc.a
	@$(CHECK) c-build-riscv64-freestanding $(MAKE) --no-print-directory -B $(BUILD)/riscv64/libhartalloc.a
	@$(CHECK) c-riscv64-no-libc-symbols $(TOP)/scripts/check-undefined.sh $(BUILD)/riscv64/libhartalloc.a
	@$(foreach t,$(C_TESTS), \
	    $(CHECK) c-$(t) $(BUILD)/host/plain/tests/$(t); \
	    $(CHECK) c-$(t)-asan-ubsan $(BUILD)/host/asan/tests/$(t); \
	    $(CHECK) c-$(t)-checked env HA_TEST_SCALE=$(or $(C_CHECKED_SCALE_$(t)),10) $(BUILD)/host/checked/tests/$(t); \
	    $(CHECK) c-$(t)-valgrind env HA_TEST_SCALE=5 $(VALGRIND) $(BUILD)/host/plain/tests/$(t);)
	@$(CHECK) c-weak-default-hooks $(BUILD)/host/plain/weak_hooks
	@$(CHECK) c-weak-default-hooks-asan-ubsan $(BUILD)/host/asan/weak_hooks

TEST_STEPS += test-c

# The cross-CPU protocol under ThreadSanitizer: the tests that start threads.
test-c-tsan:
	@$(SETUP) host
	@$(MAKE) --no-print-directory $(foreach t,$(C_THREAD_TESTS),$(BUILD)/host/tsan/tests/$(t))
	@$(foreach t,$(C_THREAD_TESTS), \
	    $(CHECK) c-$(t)-tsan env TSAN_OPTIONS="$(HA_TSAN_OPTIONS)" HA_TEST_SCALE=$(C_TSAN_SCALE) \
	        $(BUILD)/host/tsan/tests/$(t);)

.PHONY: test-c-tsan
TEST_STEPS += test-c-tsan

# --- layering -----------------------------------------------------------------
# The modules of c-alloc/src, lowest layer first ('|' between layers): each
# may call only modules of lower layers, never one of its own layer or
# above.  This is the one place the order is written; c-layers checks it
# from the symbols of the host objects (scripts/check-layers.sh).
C_LAYERS := hooks | fault | stats | page | early frame | slab tlsf | facade

test-c-layers:
	@$(SETUP) host
	@$(MAKE) --no-print-directory $(BUILD)/host/plain/libhartalloc.a
	@$(CHECK) c-layers $(TOP)/scripts/check-layers.sh --self-test "$(C_LAYERS)" \
	    $(patsubst c-alloc/src/%.c,$(BUILD)/host/plain/obj/%.o,$(C_SRCS))

.PHONY: test-c-layers
TEST_STEPS += test-c-layers
