/*
 * Statistics as a leaf: the byte counters and their peak, and the count of
 * frames the CPU frame caches hold (which the page allocator's peak leaves
 * out).  The allocators push their changes into counters they own (one per
 * CPU cache, one per TLSF heap, each written only under its owner's lock)
 * and register each counter once; this module sums them when asked and
 * calls nothing back.
 *
 * Peaks: each counter has a limit, and the limits less the counters add
 * up to at most the room between the sum of the counters and the peak.
 * So the sum can pass the peak only when some counter passes its limit;
 * only then is the sum over every counter taken (stats_bytes_sample_peak),
 * and the room left below the peak handed out again: what the others do
 * not hold goes to the counter that rose (if they hold it all, they are
 * held to what they have and it gets all).  A counter's own high-water
 * mark would not do: a block of one tier and then one of another, each
 * freed, then both live at once, make a peak that neither counter's high
 * shows.  Exact on one CPU; on
 * several, sampled at the counters' limits and settled by
 * stats_bytes_read.
 */
#include "ha_internal.h"

/* Every CPU cache and every TLSF heap, plus the shared cache. */
#define BYTE_COUNTERS (2 * HA_MAX_CPUS + 1)

static struct stats_bytes *byte_counters[BYTE_COUNTERS];
static _Atomic unsigned n_byte_counters;
static const size_t *frame_counts[HA_MAX_CPUS + 1];
static _Atomic unsigned n_frame_counts;
static ha_lock_t register_lock = HA_LOCK_INIT;
static _Atomic size_t bytes_peak;

void stats_bytes_register(struct stats_bytes *s)
{
    uintptr_t irq = lock_acquire(&register_lock);
    unsigned n = atomic_load_explicit(&n_byte_counters, memory_order_relaxed);
    HA_ASSERT(n < BYTE_COUNTERS, s);
    byte_counters[n] = s;
    atomic_store_explicit(&n_byte_counters, n + 1, memory_order_release);
    lock_release(&register_lock, irq);
}

/* Raise the peak to total; the peak after. */
static size_t peak_raise(size_t total)
{
    size_t peak = atomic_load_explicit(&bytes_peak, memory_order_relaxed);
    while (total > peak &&
           !atomic_compare_exchange_weak_explicit(&bytes_peak, &peak, total, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
    return total > peak ? total : peak;
}

void stats_bytes_sample_peak(struct stats_bytes *s)
{
    /* A counter may be negative (blocks freed on a CPU other than the one
     * that counted them), the sum never is. */
    intptr_t sum = 0, reserved = 0;
    unsigned n = atomic_load_explicit(&n_byte_counters, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        struct stats_bytes *c = byte_counters[i];
        intptr_t used = atomic_load_explicit(&c->used, memory_order_relaxed);
        intptr_t room = atomic_load_explicit(&c->limit, memory_order_relaxed) - used;
        sum += used;
        if (c != s && room > 0)
            reserved += room;
    }
    if (sum < 0)
        sum = 0;
    intptr_t room = (intptr_t)peak_raise((size_t)sum) - sum;
    /* The others keep the room they hold, so that a sample writes no
     * other counter, unless they hold it all (or more: the peak was just
     * raised): then they are held to what they have. */
    if (reserved >= room && reserved > 0) {
        for (unsigned i = 0; i < n; i++) {
            struct stats_bytes *c = byte_counters[i];
            if (c != s)
                atomic_store_explicit(&c->limit, atomic_load_explicit(&c->used, memory_order_relaxed),
                                      memory_order_relaxed);
        }
        reserved = 0;
    }
    atomic_store_explicit(&s->limit, atomic_load_explicit(&s->used, memory_order_relaxed) + room - reserved,
                          memory_order_relaxed);
}

void stats_bytes_read(struct ha_stats *out)
{
    intptr_t used = 0;
    unsigned n = atomic_load_explicit(&n_byte_counters, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        const struct stats_bytes *s = byte_counters[i];
        used += atomic_load_explicit(&s->used, memory_order_relaxed);
        out->allocs += atomic_load_explicit(&s->allocs, memory_order_relaxed);
        out->frees += atomic_load_explicit(&s->frees, memory_order_relaxed);
    }
    out->bytes_used = used > 0 ? (size_t)used : 0;
    /* A sum taken here may exceed what the counters sampled: keep it, so
     * that the peak reported never falls below a bytes_used reported. */
    peak_raise(out->bytes_used);
    out->bytes_peak = atomic_load_explicit(&bytes_peak, memory_order_relaxed);
}

void stats_frames_register(const size_t *count)
{
    uintptr_t irq = lock_acquire(&register_lock);
    unsigned n = atomic_load_explicit(&n_frame_counts, memory_order_relaxed);
    HA_ASSERT(n < HA_MAX_CPUS + 1, count);
    frame_counts[n] = count;
    atomic_store_explicit(&n_frame_counts, n + 1, memory_order_release);
    lock_release(&register_lock, irq);
}

size_t stats_frames_cached(void)
{
    size_t sum = 0;
    unsigned n = atomic_load_explicit(&n_frame_counts, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        sum += __atomic_load_n(frame_counts[i], __ATOMIC_RELAXED);
    return sum;
}
