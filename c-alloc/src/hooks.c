/*
 * Default platform hooks, weak so that a kernel's own definitions (C, or the
 * Rust crate's exports) replace them at link time.  They fit one CPU with
 * interrupts the allocator need not touch: a kernel that takes interrupts
 * which allocate, or runs on several harts, must provide its own.
 */
#include "ha_internal.h"

__attribute__((weak)) unsigned ha_platform_cpu_id(void)
{
    return 0;
}

__attribute__((weak)) uintptr_t ha_platform_irq_save(void)
{
    return 0;
}

__attribute__((weak)) void ha_platform_irq_restore(uintptr_t state)
{
    (void)state;
}

/* Nowhere to print from here: stop where a debugger will find the message
 * and the address in the arguments. */
__attribute__((weak)) void ha_platform_fatal(const char *msg, const void *addr)
{
    volatile const char *volatile last_msg = msg;
    volatile const void *volatile last_addr = addr;
    (void)last_msg;
    (void)last_addr;
    for (;;)
        ha_cpu_relax();
}
