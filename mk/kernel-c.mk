# The C-only kernel (kernel/c/): riscv64-unknown-elf-gcc, its own boot code,
# linker script and libc pieces, linked against build/riscv64/libhartalloc.a.
# No Rust anywhere in this build.
#
#   make run-c           boot it in QEMU (4 harts, 256 MiB) and watch the checks
#   make kernel-c        just build build/kernel-c/kernel.elf
# Test steps: kernel-c-smp1-128M, kernel-c-smp4-1G, kernel-c-smp4-256M, and
# kernel-c-double-free (bad input on purpose: must stop with the core's message),
# kernel-c-fdt-host (the FDT reader on the host under ASan+UBSan, built and
# corrupted trees plus QEMU's own).

KC_DIR   := kernel/c
KC_OUT   := $(BUILD)/kernel-c
KC_ELF   := $(KC_OUT)/kernel.elf
KC_SRCS  := $(sort $(wildcard $(KC_DIR)/*.c $(KC_DIR)/*.S))
KC_OBJS  := $(patsubst $(KC_DIR)/%,$(KC_OUT)/%.o,$(KC_SRCS))
KC_HDRS  := $(wildcard $(KC_DIR)/*.h) c-alloc/include/hartalloc.h
# -fno-tree-loop-distribute-patterns: gcc would otherwise turn the loops of
# mem.c back into calls to memset/memcpy (itself).
KC_CFLAGS := $(C_WARN) -ffreestanding -fno-tree-loop-distribute-patterns -nostdlib \
             -march=rv64gc -mabi=lp64d -mcmodel=medany -mno-save-restore -O2 -g \
             -Ic-alloc/include -I$(KC_DIR)
KC_QEMU  := $(TOP)/kernel/run-qemu.sh
# Lines every passing run prints (the summary's counts are checked too).
KC_CHECKS := 9
KC_EXPECT := --expect "[ ok ] boot: early -> regions -> reserve -> final" \
             --expect "[ ok ] page test" --expect "[ ok ] page exhaustion" \
             --expect "[ ok ] byte churn" --expect "[ ok ] smp stress" \
             --expect "[ ok ] ha_check clean, nothing leaked after ha_trim" \
             --expect "kernel: $(KC_CHECKS) checks passed, 0 failed; stats:" \
             --reject "[FAIL]" --reject "hartalloc fatal" --reject "unexpected trap"

.PHONY: kernel-c run-c test-kernel-c kernel-c-setup

kernel-c-setup:
	@$(SETUP) riscv-c

kernel-c: $(KC_ELF)

$(KC_OUT)/%.c.o: $(KC_DIR)/%.c $(KC_HDRS) | kernel-c-setup
	@mkdir -p $(@D)
	$(RV_CC) $(KC_CFLAGS) -c $< -o $@

$(KC_OUT)/%.S.o: $(KC_DIR)/%.S $(KC_HDRS) | kernel-c-setup
	@mkdir -p $(@D)
	$(RV_CC) $(KC_CFLAGS) -c $< -o $@

# The library comes before nothing that needs it: kernel objects first, then
# the archive, so every ha_* reference is resolved from it.  No -lgcc: the
# kernel and the core need no libgcc helper.
$(KC_ELF): $(KC_OBJS) $(BUILD)/riscv64/libhartalloc.a $(KC_DIR)/kernel.ld
	$(RV_CC) $(KC_CFLAGS) -static -T $(KC_DIR)/kernel.ld -o $@ \
	    $(KC_OBJS) $(BUILD)/riscv64/libhartalloc.a

run-c: kernel-c-setup $(KC_ELF)
	@$(KC_QEMU) $(KC_ELF) --smp 4 --mem 256M --timeout 300 $(KC_EXPECT)

# Build once (a failed build leaves no stale kernel to pass with), then one
# step per QEMU configuration, each judged by exit status and output.
test-kernel-c:
	@mkdir -p $(BUILD)
	@$(MAKE) --no-print-directory $(KC_ELF) >$(BUILD)/kernel-c-build.log 2>&1 || \
	    { rm -f $(KC_ELF); tail -n 20 $(BUILD)/kernel-c-build.log; }
	@$(CHECK) kernel-c-smp1-128M $(KC_QEMU) $(KC_ELF) --smp 1 --mem 128M --timeout 300 $(KC_EXPECT)
	@$(CHECK) kernel-c-smp4-1G $(KC_QEMU) $(KC_ELF) --smp 4 --mem 1G --timeout 300 $(KC_EXPECT)
	@$(CHECK) kernel-c-smp4-256M $(KC_QEMU) $(KC_ELF) --smp 4 --mem 256M --timeout 300 $(KC_EXPECT)
	@$(CHECK) kernel-c-double-free $(KC_QEMU) $(KC_ELF) --smp 2 --mem 128M --timeout 60 \
	    --qemu-arg -append --qemu-arg double-free --expect-exit fail \
	    --expect "hartalloc: double free (block already freed) at 0x" \
	    --reject "was not detected" --reject "unexpected trap"

# The FDT reader is plain C: test it on the host, where ASan sees every
# stray read, against QEMU's tree (dumped) and trees built by the test.
KC_FDT_TEST := $(KC_OUT)/host/test_fdt
$(KC_FDT_TEST): $(KC_DIR)/host/test_fdt.c $(KC_DIR)/fdt.c $(KC_DIR)/fdt.h
	@$(SETUP) host
	@mkdir -p $(@D)
	$(HOST_CC) -std=gnu11 -Wall -Wextra -Werror -g -O1 $(SAN_FLAGS) $(KC_DIR)/host/test_fdt.c \
	    $(KC_DIR)/fdt.c -o $@

$(KC_OUT)/host/virt.dtb: | kernel-c-setup
	@mkdir -p $(@D)
	timeout 30 qemu-system-riscv64 -machine virt,dumpdtb=$@ -smp 4 -m 256M -nographic -bios default

test-kernel-c-fdt:
	@mkdir -p $(BUILD)
	@$(CHECK) kernel-c-fdt-host bash -c '$(MAKE) --no-print-directory $(KC_FDT_TEST) $(KC_OUT)/host/virt.dtb && \
	    $(KC_FDT_TEST) $(KC_OUT)/host/virt.dtb'

.PHONY: test-kernel-c-fdt
TEST_STEPS += test-kernel-c test-kernel-c-fdt
