# The malloc-compatible front end (malloc/): libhartalloc-malloc.so, the core
# compiled -fPIC with malloc, free, calloc, realloc ... on top, for LD_PRELOAD.
#
#   make malloc   build/malloc/default/libhartalloc-malloc.so
#                 build/malloc/checked/libhartalloc-malloc.so (HA_CHECKED=1)
#
# Test steps: real programs from Debian's packages (python3, sqlite3, git,
# gcc, xz/zstd with two threads) run with and without the front end, outputs
# compared, on both builds; then the misuse probes (malloc/probes/).

MALLOC_DIR   := $(BUILD)/malloc
MALLOC_SRCS  := $(sort $(wildcard malloc/*.c))
MALLOC_HDRS  := $(wildcard malloc/*.h)
# Only the malloc family is exported (api.c marks it): the core's names
# (page_alloc, check_fail ...) must never interpose on a program's.
MALLOC_CFLAGS := -fPIC -O2 -g -fvisibility=hidden -ftls-model=initial-exec
MALLOC_VARIANT_FLAGS_default :=
MALLOC_VARIANT_FLAGS_checked := -DHA_CHECKED=1
MALLOC_VARIANTS := default checked
# ThreadSanitizer build (step malloc-front-tsan): the core and the front end
# instrumented, and the malloc family renamed front_malloc ... so that it
# does not replace the process's malloc.  It cannot: TSan's runtime mallocs
# while it starts and while it starts each thread, before instrumented code
# may run on that thread.  The test, compiled with the same renames, calls
# the front end directly and leaves libc and TSan on their own malloc.
MALLOC_FAMILY := malloc free calloc realloc reallocarray posix_memalign aligned_alloc \
                 memalign valloc pvalloc malloc_usable_size malloc_trim
MALLOC_RENAME := $(foreach f,$(MALLOC_FAMILY),-D$(f)=front_$(f))
MALLOC_VARIANT_FLAGS_tsan := -O1 -fsanitize=thread
MALLOC_FRONT_FLAGS_tsan := $(MALLOC_RENAME)
MALLOC_SO = $(MALLOC_DIR)/$(1)/libhartalloc-malloc.so

.PHONY: malloc test-malloc malloc-programs-setup

malloc:
	@$(SETUP) host
	@$(MAKE) --no-print-directory $(foreach v,$(MALLOC_VARIANTS),$(call MALLOC_SO,$(v)))

define MALLOC_VARIANT
$(MALLOC_DIR)/$(1)/core/%.o: c-alloc/src/%.c $(C_HDRS)
	@mkdir -p $$(@D); echo "  CC [malloc-$(1)] $$<"
	@$(HOST_CC) $(C_CORE) $(MALLOC_CFLAGS) $(MALLOC_VARIANT_FLAGS_$(1)) -c $$< -o $$@

$(MALLOC_DIR)/$(1)/front/%.o: malloc/%.c $(MALLOC_HDRS) c-alloc/include/hartalloc.h
	@mkdir -p $$(@D); echo "  CC [malloc-$(1)] $$<"
	@$(HOST_CC) $(C_WARN) $(MALLOC_CFLAGS) $(MALLOC_VARIANT_FLAGS_$(1)) $(MALLOC_FRONT_FLAGS_$(1)) \
	    -Ic-alloc/include -Imalloc -c $$< -o $$@

$(call MALLOC_SO,$(1)): $(patsubst c-alloc/src/%.c,$(MALLOC_DIR)/$(1)/core/%.o,$(C_SRCS)) \
                        $(patsubst malloc/%.c,$(MALLOC_DIR)/$(1)/front/%.o,$(MALLOC_SRCS))
	@echo "  LINK [malloc-$(1)] $$@"
	@$(HOST_CC) -shared -Wl,-z,defs -Wl,-z,now $(MALLOC_VARIANT_FLAGS_$(1)) -o $$@ $$^
endef
$(foreach v,$(MALLOC_VARIANTS) tsan,$(eval $(call MALLOC_VARIANT,$(v))))

# --- test steps ----------------------------------------------------------
MALLOC_PROGRAMS := python3 sqlite3 git gcc xz-threads

malloc-programs-setup:
	@$(TOP)/malloc/setup-programs.sh

test-malloc: malloc malloc-programs-setup
	@$(foreach p,$(MALLOC_PROGRAMS), \
	    $(CHECK) malloc-$(p) $(TOP)/malloc/run-program.sh default $(p); \
	    $(CHECK) malloc-$(p)-checked $(TOP)/malloc/run-program.sh checked $(p);)

TEST_STEPS += test-malloc

# --- the front end's own test --------------------------------------------
# test_front is an ordinary program (glibc's headers, -ldl -lpthread) run
# under LD_PRELOAD; it dlopens 24 copies of a TLS module.
MALLOC_TEST_DIR := $(MALLOC_DIR)/tests
MALLOC_TLS_MODS := $(foreach i,$(shell seq 0 23),$(MALLOC_TEST_DIR)/libtlsmod$(i).so)

$(MALLOC_TEST_DIR)/test_front: malloc/tests/test_front.c
	@mkdir -p $(@D); echo "  CC [malloc-test] $<"
	@$(HOST_CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-use-after-free -o $@ $< -ldl -lpthread

$(MALLOC_TEST_DIR)/libtlsmod%.so: malloc/tests/tls_module.c
	@mkdir -p $(@D)
	@$(HOST_CC) -std=gnu11 -O1 -fPIC -shared -Wall -Wextra -Werror -o $@ $<

malloc-test-build: malloc
	@$(MAKE) --no-print-directory $(MALLOC_TEST_DIR)/test_front $(MALLOC_TLS_MODS)

# The checked build walks the heap on every call: 1% of the rounds.
test-malloc-front: malloc-test-build
	@$(CHECK) malloc-front env LD_PRELOAD=$(call MALLOC_SO,default) \
	    $(MALLOC_TEST_DIR)/test_front 100 $(MALLOC_TEST_DIR)
	@$(CHECK) malloc-front-checked env LD_PRELOAD=$(call MALLOC_SO,checked) \
	    $(MALLOC_TEST_DIR)/test_front 1 $(MALLOC_TEST_DIR)

.PHONY: malloc-test-build test-malloc-front
TEST_STEPS += test-malloc-front

# The same test under ThreadSanitizer, against the tsan build (see
# MALLOC_FAMILY): linked, not preloaded.  SCALE 20 keeps all 100 threads
# and a fifth of the rounds and forks (each fork costs TSan ~0.3 s).
$(MALLOC_TEST_DIR)/tsan/test_front: malloc/tests/test_front.c $(call MALLOC_SO,tsan)
	@mkdir -p $(@D); echo "  CC [malloc-test-tsan] $<"
	@$(HOST_CC) -std=gnu11 -O1 -g -fsanitize=thread -Wall -Wextra -Werror -Wno-use-after-free $(MALLOC_RENAME) -o $@ $< \
	    $(call MALLOC_SO,tsan) -Wl,-rpath,$(MALLOC_DIR)/tsan -ldl -lpthread

test-malloc-front-tsan:
	@$(SETUP) host
	@$(MAKE) --no-print-directory $(MALLOC_TEST_DIR)/tsan/test_front $(MALLOC_TLS_MODS)
	@$(CHECK) malloc-front-tsan env TSAN_OPTIONS="$(HA_TSAN_OPTIONS)" \
	    $(MALLOC_TEST_DIR)/tsan/test_front 20 $(MALLOC_TEST_DIR)

.PHONY: test-malloc-front-tsan
TEST_STEPS += test-malloc-front-tsan

# --- misuse probes ----------------------------------------------------------
# -O0, no warnings that would flag the misuse: the allocator must meet it.
MALLOC_PROBES := $(patsubst malloc/probes/%.c,%,$(sort $(wildcard malloc/probes/*.c)))
MALLOC_PROBE_DIR := $(MALLOC_DIR)/probes

$(MALLOC_PROBE_DIR)/%: malloc/probes/%.c malloc/probes/probe.h
	@mkdir -p $(@D); echo "  CC [probe] $<"
	@$(HOST_CC) -std=gnu11 -O0 -g -w -o $@ $<

malloc-probes-build: malloc
	@$(MAKE) --no-print-directory $(addprefix $(MALLOC_PROBE_DIR)/,$(MALLOC_PROBES))

# The table is written under build/; `make malloc-probes-table` refreshes
# the committed malloc/PROBES.md from it.
test-malloc-probes: malloc-probes-build
	@$(CHECK) malloc-probes $(TOP)/malloc/probes/run-probes.sh $(MALLOC_PROBE_DIR) $(MALLOC_PROBE_DIR)/PROBES.md

malloc-probes-table: test-malloc-probes
	@cp $(MALLOC_PROBE_DIR)/PROBES.md malloc/PROBES.md

.PHONY: malloc-probes-build test-malloc-probes malloc-probes-table
TEST_STEPS += test-malloc-probes
