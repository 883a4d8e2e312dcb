# kernel/common: the code the RISC-V and aarch64 kernels share (device
# tree, heap start-up, console lines, the allocator checks).  It has no
# architecture-specific code, so it is linted on the host, as strictly as
# the crate; the kernels' own steps (mk/kernel-rust.mk, mk/kernel-aarch64.mk)
# build and run it.

# The lines of the shared checks every kernel run must print (each kernel's
# steps add their own: device tree, harts or CPUs, the summary).  The
# kernels' lists use it with `=`: this file is included after theirs.
KERNEL_CHECKS_EXPECT := \
	--expect "Hello, hartalloc! [from String]" \
	--expect "[ ok ] String/format!" \
	--expect "[ ok ] early blocks survive final_init" \
	--expect "[ ok ] heap test" \
	--expect "[ ok ] frame test" \
	--expect "[ ok ] collections: BTreeMap 100000 entries" \
	--expect "[ ok ] collections: Vec<String> churn" \
	--expect "[ ok ] collections: Box<[u8; 8192]> and alignments up to 4096" \
	--expect "[ ok ] collections: realloc growth" \
	--expect "[ ok ] ha_check after all checks: consistent" \
	--expect "[ ok ] no leaks"

.PHONY: kernel-common-test

kernel-common-test:
	@$(SETUP) host
	@$(CHECK) kernel-common-clippy sh -c 'cd $(TOP)/kernel/common && \
	    $(CARGO) clippy --target-dir $(BUILD)/kernel-common -- -D warnings'

TEST_STEPS += kernel-common-test
