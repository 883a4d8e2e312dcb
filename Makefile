# hartalloc: the front door.
#
#   make run      boot the Rust kernel in QEMU (4 harts, 256 MiB) and show the allocator at work
#   make run-c    the same for the C-only kernel
#   make run-aarch64  the Rust kernel's checks on aarch64 (QEMU virt, 4 CPUs, 256 MiB)
#   make test     everything: C host suite (plain, ASan+UBSan, valgrind, checked,
#                 TSan for the thread tests), the core's layering,
#                 cargo test, clippy, header check, kernels in QEMU; ends "N passed, M failed"
#   make lib      libhartalloc.a for the host and for riscv64 (C users link this)
#   make headers  regenerate the generated bindings: the cbindgen header of the
#                 Rust-exported hooks and the bindgen mirror rust-shim/sys.rs
#   make bench    benchmarks against other allocators (not part of make test)
#
# Each area keeps its rules in mk/*.mk and adds its test steps to TEST_STEPS.

.DEFAULT_GOAL := help
SHELL := /bin/bash
TOP := $(CURDIR)
BUILD := $(TOP)/build
CHECK := $(TOP)/scripts/check.sh
SETUP := $(TOP)/scripts/setup.sh

# The project's own builds treat C warnings as errors; build.rs reads this
# (a crate user's build keeps them as warnings).
export HARTALLOC_WERROR := 1

TEST_STEPS :=

include $(sort $(wildcard mk/*.mk))

.PHONY: help test test-steps clean
help:
	@sed -n '3,12p' Makefile | sed 's/^# \{0,1\}//'

# Every step runs (check.sh records and never stops the build); the summary
# prints "N passed, M failed" and sets the exit status.
test:
	@rm -f $(BUILD)/test-results.txt; mkdir -p $(BUILD)
	@$(MAKE) --no-print-directory -k test-steps || true
	@$(TOP)/scripts/summary.sh

test-steps: $(TEST_STEPS)

clean:
	rm -rf $(BUILD) target kernel/rust/target kernel/aarch64/target
