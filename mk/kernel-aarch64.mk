# The aarch64 kernel (kernel/aarch64/) in QEMU virt: `make run-aarch64`,
# and its test steps.
#
# Toolchain: rustup's cargo when it has the aarch64-unknown-none target;
# otherwise Debian's Rust 1.96 building core/alloc from source
# (-Zbuild-std, allowed on a stable compiler by RUSTC_BOOTSTRAP=1; see
# kernel/aarch64/.cargo/config.toml).  scripts/setup.sh aarch64 installs
# whichever is missing, with the cross gcc/binutils and QEMU.

KA64_DIR  := $(TOP)/kernel/aarch64
KA64_OUT  := $(BUILD)/kernel-aarch64
KA64_ELF  := $(KA64_OUT)/hartalloc-kernel-aarch64
KA64_ELF_CHECKED := $(KA64_OUT)/hartalloc-kernel-aarch64-checked
KA64_BIN  := $(KA64_DIR)/target/aarch64-unknown-none/release/hartalloc-kernel-aarch64
KA64_RUN  := $(TOP)/kernel/run-qemu.sh

# build.rs picks the C compiler and the target's flags (-mstrict-align,
# -mno-outline-atomics) itself.

# cargo for the kernel target, chosen when the recipe runs (after setup).
KA64_CARGO := if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-none; \
	then echo "kernel-aarch64: rustup toolchain"; CARGO=cargo; \
	else echo "kernel-aarch64: Debian rustc with -Zbuild-std"; \
	     export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1; CARGO=/usr/bin/cargo; fi; \
	cd $(KA64_DIR) && $$CARGO build --release

.PHONY: run-aarch64 kernel-aarch64 kernel-aarch64-checked kernel-aarch64-test

# The kernel and its checked variant (the C core's checked build): the
# same crate with different features, built one after the other into the
# same target directory, each copied out.  A failed build leaves no old
# kernel behind for the runs to pass with.
kernel-aarch64:
	@$(SETUP) aarch64
	@mkdir -p $(KA64_OUT); rm -f $(KA64_ELF)
	@$(KA64_CARGO) -j2
	@cp $(KA64_BIN) $(KA64_ELF)

kernel-aarch64-checked:
	@$(SETUP) aarch64
	@mkdir -p $(KA64_OUT); rm -f $(KA64_ELF_CHECKED)
	@$(KA64_CARGO) -j2 --features checked
	@cp $(KA64_BIN) $(KA64_ELF_CHECKED)

# Boot it: 4 CPUs, 256 MiB; the checks print as they
# run and the kernel ends QEMU itself (exit status 0 when every check
# passed: PSCI SYSTEM_OFF; else semihosting with the code).
run-aarch64: kernel-aarch64
	$(KA64_RUN) $(KA64_ELF) --arch aarch64 --smp 4 --mem 256M --timeout 300 \
	    --expect "kernel: " --reject "[FAIL]"

# --- test steps ------------------------------------------------------------
# Every run is judged by its exit status and its output: each check's
# [ ok ] line, no [FAIL], no panic, and the summary.
KA64_TIMEOUT := 180
KA64_EXPECT = \
	--expect "device tree at 0x40000000" \
	--expect "heap: reserve 0x40000000..0x40100000 (DeviceTree)" \
	--expect "heap: keying the secret with 32 bytes of /chosen/rng-seed" \
	$(KERNEL_CHECKS_EXPECT) \
	--expect "[ ok ] all cpus started" \
	--expect "kernel: 12 checks passed, 0 failed; stats:" \
	--reject "[FAIL]" --reject "panicked" \
	--show "kernel: "

# Two shapes: 2 CPUs with 256 MiB, and 4 CPUs with 3 GiB (RAM up to the
# 4 GiB line; QEMU touches only what the kernel uses); the shared SMP
# stress runs on every CPU.  The double free
# runs on both builds: the plain one (the core's always-on check) and the
# checked one; each must end in the panic that carries the core's message,
# with exit status 2 (semihosting).
kernel-aarch64-test:
	@$(CHECK) kernel-aarch64-build $(MAKE) --no-print-directory kernel-aarch64 kernel-aarch64-checked
	@$(CHECK) kernel-aarch64-boot $(KA64_RUN) $(KA64_ELF) --arch aarch64 --smp 2 --mem 256M \
	    --timeout $(KA64_TIMEOUT) --quiet $(KA64_EXPECT) \
	    --expect "dtb: memory 0x40000000..0x50000000 (256 MiB)" \
	    --expect "dtb: 2 cpus [0, 1]" \
	    --expect "smp: 2 of 2 cpus online" \
	    --expect "[ ok ] smp stress on 2 cpus" \
	    --expect "grown to 64 MiB" \
	    --show "info: alloc+free of     64 B"
	@$(CHECK) kernel-aarch64-boot-4cpu-3G $(KA64_RUN) $(KA64_ELF) --arch aarch64 --smp 4 --mem 3G \
	    --timeout $(KA64_TIMEOUT) --quiet $(KA64_EXPECT) \
	    --expect "dtb: memory 0x40000000..0x100000000 (3072 MiB)" \
	    --expect "dtb: 4 cpus [0, 1, 2, 3]" \
	    --expect "smp: 4 of 4 cpus online" \
	    --expect "[ ok ] smp stress on 4 cpus" --show "[ ok ] smp stress"
	@$(CHECK) kernel-aarch64-double-free $(KA64_RUN) $(KA64_ELF) --arch aarch64 --mem 128M \
	    --timeout $(KA64_TIMEOUT) --quiet --append double-free --expect-exit 2 \
	    --expect "[ ok ] String/format!" \
	    --expect "bad input: freeing" \
	    --expect "kernel panicked on cpu 0: hartalloc: double free" \
	    --reject "was not detected" \
	    --show "kernel panicked"
	@$(CHECK) kernel-aarch64-double-free-checked $(KA64_RUN) $(KA64_ELF_CHECKED) --arch aarch64 --mem 128M \
	    --timeout $(KA64_TIMEOUT) --quiet --append double-free --expect-exit 2 \
	    --expect "bad input: freeing" \
	    --expect "kernel panicked on cpu 0: hartalloc: double free" \
	    --reject "was not detected"

TEST_STEPS += kernel-aarch64-test
