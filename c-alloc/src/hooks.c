/*
 * Default platform hooks, weak so that a kernel's own definitions (C, or the
 * Rust crate's exports) replace them at link time.  They fit one CPU with
 * interrupts the allocator need not touch: a kernel that takes interrupts
 * which allocate, or runs on several harts, must provide its own.
 *
 * Each default, the first time it runs, records in hooks_trivial that it
 * does nothing.  With all three recorded, the fast paths call none of them
 * (ha_internal.h, hooks_none): a kernel that keeps the defaults pays no
 * call there.
 */
#include "ha_internal.h"

_Atomic unsigned hooks_trivial;

void ha_set_trivial_hooks(unsigned hooks)
{
    atomic_store_explicit(&hooks_trivial, hooks & HA_TRIVIAL_ALL, memory_order_relaxed);
}

/* Only once: a default still runs on the paths that call every hook,
 * and a write each time would bounce the line that every CPU's fast path
 * reads. */
static void hooks_learn(unsigned hook)
{
    if (!(atomic_load_explicit(&hooks_trivial, memory_order_relaxed) & hook))
        atomic_fetch_or_explicit(&hooks_trivial, hook, memory_order_relaxed);
}

__attribute__((weak)) unsigned ha_platform_cpu_id(void)
{
    hooks_learn(HA_TRIVIAL_CPU_ID);
    return 0;
}

__attribute__((weak)) uintptr_t ha_platform_irq_save(void)
{
    hooks_learn(HA_TRIVIAL_IRQ_SAVE);
    return 0;
}

__attribute__((weak)) void ha_platform_irq_restore(uintptr_t state)
{
    (void)state;
    hooks_learn(HA_TRIVIAL_IRQ_RESTORE);
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
