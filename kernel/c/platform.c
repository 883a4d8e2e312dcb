/*
 * The allocator's platform hooks, strong definitions that replace the
 * library's weak single-CPU defaults.
 */
#include "hartalloc.h"
#include "kc.h"

/* tp points at this hart's kc_cpu (set by the entry code), whose index is
 * the dense number smp.c gave it: hart ids can be sparse or large, the
 * allocator's per-CPU caches want 0..N-1. */
unsigned ha_platform_cpu_id(void)
{
    return kc_this_cpu()->index;
}

uintptr_t ha_platform_irq_save(void)
{
    /* Read first, write only to clear a set SIE: the allocator is often
     * called with interrupts off, and a CSR write costs more than a read. */
    uintptr_t old;
    __asm__ volatile("csrr %0, sstatus" : "=r"(old) : : "memory");
    old &= KC_SSTATUS_SIE;
    if (old)
        __asm__ volatile("csrci sstatus, %0" : : "i"(KC_SSTATUS_SIE) : "memory");
    return old;
}

void ha_platform_irq_restore(uintptr_t state)
{
    if (state & KC_SSTATUS_SIE)
        __asm__ volatile("csrsi sstatus, %0" : : "i"(KC_SSTATUS_SIE) : "memory");
}

/* A fault in the allocator ends the run with its message: the checks that
 * provoke none must never see this. */
void ha_platform_fatal(const char *msg, const void *addr)
{
    kc_printf("hartalloc fatal on cpu %u (hart %lu): %s at %p\n", kc_this_cpu()->index,
              (unsigned long)kc_this_cpu()->hartid, msg, addr);
    kc_printf("kernel: FATAL, stopping\n");
    kc_exit(3);
}

/* Traps (entry.S): nothing here takes one on purpose. */
void kc_trap(uint64_t scause, uint64_t sepc, uint64_t stval);
void kc_trap(uint64_t scause, uint64_t sepc, uint64_t stval)
{
    kc_printf("kernel: unexpected trap on cpu %u: scause=%lx sepc=%lx stval=%lx\n",
              kc_this_cpu()->index, (unsigned long)scause, (unsigned long)sepc,
              (unsigned long)stval);
    kc_exit(4);
}
