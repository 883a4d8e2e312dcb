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
 * So the sum can pass the peak only when some counter passes its limit,
 * which marks the peak pending (stats_bytes_rose: a load, and a store
 * when it was clear).  The sum only rises while nothing falls, so the
 * highest it reaches is where the first fall of any counter after the
 * mark begins: that fall takes the sum over every counter first
 * (stats_bytes_sample_peak), raises the peak, clears the mark and hands
 * out the room left below the peak again (what the others do not hold
 * goes to the counter that falls; if they hold it all, they are held to
 * what they have and it gets all).  A heap that grows pays a load a call
 * for its peak, not a sum over the counters: ArceOS's
 * vec_rand_free_25K_64, C replica, 25000 x 512 B allocated and freed in
 * random order, spent a fifth of its instructions summing at every
 * allocation (callgrind: 150 -> 129 instructions a call; 7500 x 4160 B,
 * 185 -> 164).  A counter's own high-water mark would not do: a
 * block of one tier and then one of another, each freed, then both live
 * at once, make a peak that neither counter's high shows.  Exact on one
 * CPU; on several, sampled at the falls after a mark and settled by
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
_Atomic unsigned stats_peak_pending;
void *_Atomic stats_gates[HA_MAX_CPUS];
/* What each registered gate opens on, and the CPUs that have one. */
static void *gate_ptr[HA_MAX_CPUS];
static unsigned gate_cpus[HA_MAX_CPUS];
static _Atomic unsigned n_gates;

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

void stats_gate_register(unsigned cpu, void *p)
{
    uintptr_t irq = lock_acquire(&register_lock);
    unsigned n = atomic_load_explicit(&n_gates, memory_order_relaxed);
    HA_ASSERT(n < HA_MAX_CPUS && !gate_ptr[cpu], p);
    gate_ptr[cpu] = p;
    gate_cpus[n] = cpu;
    atomic_store_explicit(&stats_gates[cpu], p, memory_order_release);
    atomic_store_explicit(&n_gates, n + 1, memory_order_release);
    lock_release(&register_lock, irq);
}

/* Open every registered gate. */
static void gates_open(void)
{
    unsigned n = atomic_load_explicit(&n_gates, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        unsigned cpu = gate_cpus[i];
        atomic_store_explicit(&stats_gates[cpu], gate_ptr[cpu], memory_order_release);
    }
}

void stats_gate_heal(unsigned cpu)
{
    if (!stats_peak_is_pending() && gate_ptr[cpu] &&
        atomic_load_explicit(&stats_gates[cpu], memory_order_relaxed) == 0)
        atomic_store_explicit(&stats_gates[cpu], gate_ptr[cpu], memory_order_release);
}

/* The gates are shut first, then the mark made (release): a fall that
 * finds its gate shut but no mark yet leaves the sample to the next one
 * (stats_gate_heal opens its gate), and a sampler that takes the mark
 * sees the rise. */
void stats_peak_mark(void)
{
    unsigned n = atomic_load_explicit(&n_gates, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        atomic_store_explicit(&stats_gates[gate_cpus[i]], 0, memory_order_relaxed);
    atomic_store_explicit(&stats_peak_pending, 1, memory_order_release);
}

void stats_bytes_sample_peak(struct stats_bytes *s)
{
    /* The mark is taken first (acquire): a rise marked before is in the
     * sum, one marked after marks it again. */
    atomic_exchange_explicit(&stats_peak_pending, 0, memory_order_acq_rel);
    gates_open();
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
