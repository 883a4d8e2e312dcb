/*
 * Threads: each pthread plays a CPU (harness_set_cpu), allocates and frees
 * small and mid blocks and page runs (mostly single frames, through the
 * CPU frame caches), and hands blocks to the others through an atomic
 * exchange array, so many frees happen on a CPU other than the allocating
 * one.  Afterwards everything is freed and trimmed: consistent heap, no
 * bytes in use, no pages leaked.  One case runs more threads than CPU ids.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

#define EXCHANGE_SLOTS 256
#define LOCAL_SLOTS 64

/* Every block starts with its header; the rest carries the id's pattern.
 * align 0: pages from ha_alloc_pages, size bytes of them. */
struct blk_head {
    uint64_t size, id, align;
};

static _Atomic(uintptr_t) exchange[EXCHANGE_SLOTS];
static atomic_uint start_gate;

struct worker {
    pthread_t thread;
    unsigned cpu;
    uint64_t seed, ops;
    unsigned index;
};

static void *blk_new(struct harness_rng *r, uint64_t id)
{
    size_t size, align;
    char *p;
    if (harness_rng_below(r, 8) == 0) {
        size_t n = harness_rng_below(r, 4) ? 1 : 1 + (size_t)harness_rng_below(r, 4);
        size = n * HA_PAGE_SIZE;
        align = 0;
        p = harness_rng_below(r, 4) ? ha_alloc_pages(n, 0) : ha_alloc_pages_zeroed(n, 0);
        CHECK(p != NULL);
        CHECK(is_aligned(p, HA_PAGE_SIZE));
    } else {
        size = harness_rng_below(r, 10) ? 32 + (size_t)harness_rng_below(r, 993)
                                        : 1025 + (size_t)harness_rng_below(r, 40 * KiB);
        align = harness_rng_below(r, 8) ? 16 : (size_t)16 << harness_rng_below(r, 8);
        p = harness_rng_below(r, 4) ? ha_alloc(size, align) : ha_alloc_zeroed(size, align);
        CHECK(p != NULL);
        CHECK(is_aligned(p, align));
        CHECK(ha_usable_size(p) >= size);
    }
    struct blk_head h = { size, id, align };
    memcpy(p, &h, sizeof h);
    size_t body = size - sizeof h;
    pattern_fill(p + sizeof h, body < 128 ? body : 128, id);
    p[size - 1] = (char)pattern_byte(id, body - 1); /* body indexing, as above */
    return p;
}

/* Freed sized or unsized by the id's low bit: both paths cross CPUs. */
static void blk_verify_free(void *v)
{
    char *p = v;
    struct blk_head h;
    memcpy(&h, p, sizeof h);
    CHECK(h.size >= 32 && h.size <= 1025 + 40 * KiB);
    size_t body = h.size - sizeof h;
    CHECK_PATTERN(p + sizeof h, body < 128 ? body : 128, h.id);
    CHECK_EQ((uint8_t)p[h.size - 1], pattern_byte(h.id, body - 1));
    /* Destroy the header so a second free of the same block would show. */
    memset(p, 0, sizeof h);
    if (h.align == 0)
        ha_free_pages(p, h.size / HA_PAGE_SIZE);
    else if (h.id & 1)
        ha_free_sized(p, h.size, h.align);
    else
        ha_free(p);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    harness_set_cpu(w->cpu);
    struct harness_rng r;
    harness_rng_seed(&r, w->seed);
    void *local[LOCAL_SLOTS] = { 0 };
    uint64_t id = (uint64_t)w->index << 48;
    while (!atomic_load(&start_gate))
        ;
    for (uint64_t op = 0; op < w->ops; op++) {
        uint64_t what = harness_rng_below(&r, 100);
        if (what < 40) {
            /* Hand a new block to whoever comes next; free what was there. */
            void *p = blk_new(&r, ++id);
            size_t slot = (size_t)harness_rng_below(&r, EXCHANGE_SLOTS);
            uintptr_t old = atomic_exchange(&exchange[slot], (uintptr_t)p);
            if (old)
                blk_verify_free((void *)old);
        } else if (what < 50) {
            /* Take one from the exchange and free it here. */
            size_t slot = (size_t)harness_rng_below(&r, EXCHANGE_SLOTS);
            uintptr_t old = atomic_exchange(&exchange[slot], (uintptr_t)0);
            if (old)
                blk_verify_free((void *)old);
        } else {
            size_t slot = (size_t)harness_rng_below(&r, LOCAL_SLOTS);
            if (local[slot]) {
                blk_verify_free(local[slot]);
                local[slot] = NULL;
            } else {
                local[slot] = blk_new(&r, ++id);
            }
        }
    }
    for (size_t i = 0; i < LOCAL_SLOTS; i++)
        if (local[i])
            blk_verify_free(local[i]);
    return NULL;
}

static void run_threads(unsigned nthreads, unsigned ncpus, uint64_t seed_base)
{
    heap_setup(32 * MiB);
    /* Let every CPU id take its cache memory before the baseline. */
    for (unsigned c = 0; c < ncpus; c++) {
        harness_set_cpu(c);
        warm_up_cpu();
    }
    harness_set_cpu(0);
    struct ha_stats s0 = stats_now();
    for (size_t i = 0; i < EXCHANGE_SLOTS; i++)
        atomic_store(&exchange[i], (uintptr_t)0);
    atomic_store(&start_gate, 0u);

    /* In the checked build every call walks the heap under the allocator's
     * spinlocks; with more threads than host cores a preempted holder makes
     * the others spin out their time slices, hence far fewer operations. */
    struct worker w[16];
    CHECK(nthreads <= 16);
    for (unsigned t = 0; t < nthreads; t++) {
        w[t].cpu = t % ncpus;
        w[t].index = t + 1;
        w[t].seed = seed_base + t;
        w[t].ops = harness_scale(1500000 / nthreads + 50000) / (CHECKED_SHRINK * CHECKED_SHRINK);
        char name[64];
        snprintf(name, sizeof name, "thread %u (cpu %u)", t, w[t].cpu);
        harness_seed_announce(name, w[t].seed);
        CHECK(pthread_create(&w[t].thread, NULL, worker_main, &w[t]) == 0);
    }
    atomic_store(&start_gate, 1u);
    for (unsigned t = 0; t < nthreads; t++)
        CHECK(pthread_join(w[t].thread, NULL) == 0);
    CHECK_HEAP();

    /* What is left in the exchange is freed from cpu 0. */
    for (size_t i = 0; i < EXCHANGE_SLOTS; i++) {
        uintptr_t p = atomic_exchange(&exchange[i], (uintptr_t)0);
        if (p)
            blk_verify_free((void *)p);
    }
    ha_trim();
    struct ha_stats s = stats_now();
    printf("%u threads on %u cpu ids: allocs %llu frees %llu, peak %zu bytes; end: bytes_used %zu, pages_used %zu (start %zu)\n",
           nthreads, ncpus, (unsigned long long)(s.allocs - s0.allocs),
           (unsigned long long)(s.frees - s0.frees), s.bytes_peak, s.bytes_used, s.pages_used,
           s0.pages_used);
    CHECK_EQ(s.bytes_used, 0);
    CHECK_EQ(s.allocs - s0.allocs, s.frees - s0.frees);
    CHECK_EQ(s.pages_used, s0.pages_used);
    CHECK_EQ(s.pages_largest_run, s0.pages_largest_run);
    CHECK_HEAP();
}

static void threads_2(void) { run_threads(2, 2, 0x7A2000); }
static void threads_4(void) { run_threads(4, 4, 0x7A4000); }
static void threads_8(void) { run_threads(8, 8, 0x7A8000); }
/* Two or three threads share each cpu id: the per-CPU caches must be locked,
 * not just per-CPU. */
static void threads_4_on_2_cpus(void) { run_threads(4, 2, 0x7A4200); }
static void threads_8_on_3_cpus(void) { run_threads(8, 3, 0x7A8300); }
/* Ids past HA_MAX_CPUS are folded onto valid ones. */
static void threads_on_large_cpu_ids(void)
{
    heap_setup(64 * MiB);
    harness_set_cpu(HA_MAX_CPUS + 5);
    void *p = ha_alloc(100, 8);
    CHECK(p != NULL);
    harness_set_cpu(3);
    ha_free(p);
    harness_set_cpu(1000);
    p = ha_alloc(2000, 8);
    CHECK(p != NULL);
    ha_free(p);
    ha_trim();
    CHECK_EQ(stats_now().bytes_used, 0);
    CHECK_HEAP();
}

int main(void)
{
    run_isolated("threads_2", threads_2);
    run_isolated("threads_4", threads_4);
    run_isolated("threads_8", threads_8);
    run_isolated("threads_4_on_2_cpus", threads_4_on_2_cpus);
    run_isolated("threads_8_on_3_cpus", threads_8_on_3_cpus);
    run_isolated("threads_on_large_cpu_ids", threads_on_large_cpu_ids);
    return harness_done();
}
