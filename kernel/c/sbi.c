/* Firmware calls (SBI) and ending the QEMU run with a status. */
#include "kc.h"

#define SBI_EXT_LEGACY_PUTCHAR 0x01
#define SBI_EXT_HSM 0x48534D
#define SBI_HSM_HART_START 0
#define SBI_EXT_SRST 0x53525354
#define SBI_SRST_SHUTDOWN 0
#define SBI_SRST_REASON_FAILURE 1

/* QEMU virt's sifive_test device: the only way to give QEMU a non-zero
 * exit status (SBI shutdown always exits 0). */
#define SIFIVE_TEST_ADDR 0x100000ul
#define SIFIVE_TEST_PASS 0x5555u
#define SIFIVE_TEST_FAIL 0x3333u

struct sbiret {
    long error;
    long value;
};

static struct sbiret sbi_call(long ext, long fid, long arg0, long arg1, long arg2)
{
    register long a0 __asm__("a0") = arg0;
    register long a1 __asm__("a1") = arg1;
    register long a2 __asm__("a2") = arg2;
    register long a6 __asm__("a6") = fid;
    register long a7 __asm__("a7") = ext;
    __asm__ volatile("ecall" : "+r"(a0), "+r"(a1) : "r"(a2), "r"(a6), "r"(a7) : "memory");
    return (struct sbiret){ a0, a1 };
}

void sbi_console_putchar(int c)
{
    sbi_call(SBI_EXT_LEGACY_PUTCHAR, 0, c, 0, 0);
}

long sbi_hart_start(uint64_t hartid, uintptr_t entry, uintptr_t opaque)
{
    return sbi_call(SBI_EXT_HSM, SBI_HSM_HART_START, (long)hartid, (long)entry, (long)opaque).error;
}

_Noreturn void kc_exit(unsigned status)
{
    volatile uint32_t *test = (volatile uint32_t *)SIFIVE_TEST_ADDR;
    if (status == 0)
        *test = SIFIVE_TEST_PASS;
    else
        *test = ((status & 0xFFu) << 16) | SIFIVE_TEST_FAIL;
    /* No test device (not QEMU virt): shut down through the firmware. */
    sbi_call(SBI_EXT_SRST, 0, SBI_SRST_SHUTDOWN, status ? SBI_SRST_REASON_FAILURE : 0, 0);
    for (;;)
        __asm__ volatile("wfi");
}
