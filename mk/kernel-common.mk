# kernel/common: the code the RISC-V and aarch64 kernels share (device
# tree, heap start-up, console lines, the allocator checks).  It has no
# architecture-specific code, so it is linted on the host, as strictly as
# the crate; the kernels' own steps (mk/kernel-rust.mk, mk/kernel-aarch64.mk)
# build and run it.

.PHONY: kernel-common-test

kernel-common-test:
	@$(SETUP) host
	@$(CHECK) kernel-common-clippy sh -c 'cd $(TOP)/kernel/common && \
	    $(CARGO) clippy --target-dir $(BUILD)/kernel-common -- -D warnings'

TEST_STEPS += kernel-common-test
