# The crate on every bare-metal target it supports, and its refusals.
#
#   make test-targets   the steps below (part of make test)
#
# For each target, tests/targets (a no_std program with hartalloc as its
# global allocator, filling a Vec) is built and linked with no CC_* set,
# and the C objects of that build are checked: the target's ELF machine,
# and no FP/SIMD register on the soft-float targets (x86_64-unknown-none
# without CC_x86_64_unknown_none included).  See
# tests/targets/check-target.sh.  Core and alloc come from -Zbuild-std
# (Debian's Rust) unless rustup has the target: the first run builds them
# once per target (1 to 3 minutes each on 2 shared CPUs), later runs take
# seconds (the whole of test-targets: about 1.5 minutes).

TARGETS_BARE  := riscv64gc-unknown-none-elf aarch64-unknown-none \
                 aarch64-unknown-none-softfloat x86_64-unknown-none
TARGETS_CHECK := $(TOP)/tests/targets/check-target.sh

.PHONY: test-targets

test-targets:
	@$(SETUP) targets
	@$(foreach t,$(TARGETS_BARE),$(CHECK) targets-$(t) $(TARGETS_CHECK) build $(t);)
	@# build.rs as a stable rustc's cfg shows the target (no riscv f/d
	@# features), as on a user's machine with a rustup target.
	@$(foreach t,$(TARGETS_BARE),$(CHECK) targets-$(t)-stable-cfg $(TARGETS_CHECK) stable-cfg $(t);)
	@# CC_<target>=clang as a user sets it: clang's flags, still soft-float.
	@$(foreach t,aarch64-unknown-none-softfloat x86_64-unknown-none, \
	    $(CHECK) targets-$(t)-cc-clang $(TARGETS_CHECK) stable-cfg $(t) clang;)
	@# riscv64-unknown-elf-gcc hidden: build.rs must fall back to clang
	@# (--target=riscv64-unknown-elf, lp64d, medany), and the program link.
	@$(CHECK) targets-riscv64-clang-fallback $(TARGETS_CHECK) build riscv64gc-unknown-none-elf hide-gcc
	@$(CHECK) targets-refuse-riscv32 $(TARGETS_CHECK) refused riscv32imac-unknown-none-elf \
	    "cannot build the C core for riscv32imac-unknown-none-elf: it is a 32-bit target"
	@$(CHECK) targets-refuse-thumbv7em $(TARGETS_CHECK) refused thumbv7em-none-eabi \
	    "cannot build the C core for thumbv7em-none-eabi: it is a 32-bit target"
	@$(CHECK) targets-refuse-no-compiler $(TARGETS_CHECK) refused aarch64-unknown-none \
	    "CC_aarch64_unknown_none=clang" hide-compilers

TEST_STEPS += test-targets
