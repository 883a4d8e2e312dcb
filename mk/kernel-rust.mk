# The Rust kernel (kernel/rust/) in QEMU: `make run`, and its test steps.
#
# Toolchain: rustup's cargo when it has the riscv64gc-unknown-none-elf
# target; otherwise Debian's Rust 1.96 building core/alloc from source
# (-Zbuild-std, allowed on a stable compiler by RUSTC_BOOTSTRAP=1; see
# kernel/rust/.cargo/config.toml).  scripts/setup.sh riscv installs
# whichever is missing.

KRUST_DIR  := $(TOP)/kernel/rust
KRUST_OUT  := $(BUILD)/kernel-rust
KRUST_ELF  := $(KRUST_OUT)/hartalloc-kernel
KRUST_ELF_CHECKED := $(KRUST_OUT)/hartalloc-kernel-checked
KRUST_ELF_BENCH := $(KRUST_OUT)/hartalloc-kernel-bench
KRUST_BIN  := $(KRUST_DIR)/target/riscv64gc-unknown-none-elf/release/hartalloc-kernel
RUN_QEMU   := $(TOP)/kernel/run-qemu.sh

# cargo for the kernel target, chosen when the recipe runs (after setup).
KRUST_CARGO := if rustup target list --installed 2>/dev/null | grep -qx riscv64gc-unknown-none-elf; \
	then echo "kernel-rust: rustup toolchain"; CARGO=cargo; \
	else echo "kernel-rust: Debian rustc with -Zbuild-std"; \
	     export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1; CARGO=/usr/bin/cargo; fi; \
	cd $(KRUST_DIR) && $$CARGO build --release

.PHONY: run kernel-rust kernel-rust-checked kernel-rust-bench bench-qemu kernel-rust-test

# The kernel and its checked variant (the C core's checked build) are the
# same crate with different features: built one after the other into the
# same target directory, each copied out.
# A failed build leaves no old kernel behind for the runs to pass with.
kernel-rust:
	@$(SETUP) riscv
	@mkdir -p $(KRUST_OUT); rm -f $(KRUST_ELF)
	@$(KRUST_CARGO) -j2
	@cp $(KRUST_BIN) $(KRUST_ELF)

kernel-rust-checked:
	@$(SETUP) riscv
	@mkdir -p $(KRUST_OUT); rm -f $(KRUST_ELF_CHECKED)
	@$(KRUST_CARGO) -j2 --features checked
	@cp $(KRUST_BIN) $(KRUST_ELF_CHECKED)

# The benchmark kernel (feature `bench`): runs hartalloc against
# buddy_system_allocator and talc instead of the checks.
kernel-rust-bench:
	@$(SETUP) riscv
	@mkdir -p $(KRUST_OUT); rm -f $(KRUST_ELF_BENCH)
	@$(KRUST_CARGO) -j2 --features bench
	@cp $(KRUST_BIN) $(KRUST_ELF_BENCH)

# Not a test step: two boots (1 hart with -icount, 4 harts plain TCG),
# 256 MiB, tables on stdout and in bench/results/qemu.md.
bench-qemu: kernel-rust-bench
	@$(KRUST_DIR)/bench-qemu.sh $(KRUST_ELF_BENCH) $(KRUST_OUT) $(TOP)/bench/results/qemu.md

# Boot it: 4 harts, 256 MiB; the checks print as they run and the kernel
# ends QEMU itself (exit status 0 when every check passed).
run: kernel-rust
	$(RUN_QEMU) $(KRUST_ELF) --smp 4 --mem 256M --timeout 300 \
	    --expect "kernel: " --reject "[FAIL]"

# --- test steps ------------------------------------------------------------
# Every run is judged by its exit status and its output: each check's
# [ ok ] line, no [FAIL], no panic, and the summary.
KRUST_TIMEOUT := 180
KRUST_EXPECT = \
	$(KERNEL_CHECKS_EXPECT) \
	--expect "[ ok ] all harts started (SBI HSM)" \
	--expect "[ ok ] sstatus.SIE as it was after every call, set or clear" \
	--expect "kernel: 13 checks passed, 0 failed; stats:" \
	--reject "[FAIL]" --reject "panicked" \
	--show "kernel: " --show "realloc growth:" --show "info: alloc+free of     64 B"

# The 1-hart run uses -icount shift=0: rdcycle then counts instructions,
# so its alloc+free figures (SHOWn in the summary) repeat exactly from run
# to run.  (Not with 4 harts: there a spinning hart can stall QEMU.)
kernel-rust-test:
	@$(CHECK) kernel-rust-build $(MAKE) --no-print-directory kernel-rust kernel-rust-checked
	@$(CHECK) kernel-rust-smp1-128M $(RUN_QEMU) $(KRUST_ELF) --smp 1 --mem 128M --icount \
	    --timeout $(KRUST_TIMEOUT) --quiet $(KRUST_EXPECT) --show "info: alloc+free of   4096 B" \
	    --expect "dtb: memory 0x80000000..0x88000000 (128 MiB)" \
	    --expect "realloc growth scaled to 32 MiB for 128 MiB of RAM" \
	    --expect "[ ok ] smp stress on 1 harts"
	@$(CHECK) kernel-rust-smp4-1G $(RUN_QEMU) $(KRUST_ELF) --smp 4 --mem 1G \
	    --timeout $(KRUST_TIMEOUT) --quiet $(KRUST_EXPECT) \
	    --expect "dtb: memory 0x80000000..0xc0000000 (1024 MiB)" \
	    --expect "smp: 4 of 4 harts online" \
	    --expect "grown to 64 MiB" \
	    --expect "[ ok ] smp stress on 4 harts" --show "[ ok ] smp stress"
	@$(CHECK) kernel-rust-smp4-256M $(RUN_QEMU) $(KRUST_ELF) --smp 4 --mem 256M \
	    --timeout $(KRUST_TIMEOUT) --quiet $(KRUST_EXPECT) \
	    --expect "dtb: memory 0x80000000..0x90000000 (256 MiB)" \
	    --expect "smp: 4 of 4 harts online" \
	    --expect "grown to 64 MiB" \
	    --expect "[ ok ] smp stress on 4 harts"
	@$(CHECK) kernel-rust-double-free $(RUN_QEMU) $(KRUST_ELF_CHECKED) --smp 1 --mem 128M \
	    --timeout $(KRUST_TIMEOUT) --quiet --append double-free --expect-exit 2 \
	    --expect "[ ok ] String/format!" \
	    --expect "bad input: freeing" \
	    --expect "kernel panicked on hart 0: hartalloc: double free" \
	    --reject "was not detected" \
	    --show "kernel panicked"

TEST_STEPS += kernel-rust-test
