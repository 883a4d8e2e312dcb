/*
 * Out of memory is not a fault: allocate until NULL, the heap stays
 * consistent, everything freed and trimmed brings the stats back, and the
 * same amount can be allocated again.  Also the out-of-memory hook.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

enum mix { MIX_SMALL, MIX_MID, MIX_LARGE, MIX_PAGES, MIX_ALL };

struct held {
    void *p;
    size_t pages;
};

static struct held *held;
static size_t held_cap;

/* Deterministic per round (same seed), so two rounds ask for the same
 * sequence. */
static size_t fill_until_null(enum mix mix, uint64_t seed, size_t *bytes_out)
{
    struct harness_rng r;
    harness_rng_seed(&r, seed);
    size_t n = 0, bytes = 0;
    struct ha_stats s0 = stats_now();
    for (;;) {
        enum mix m = mix == MIX_ALL ? (enum mix)harness_rng_below(&r, 4) : mix;
        void *p;
        size_t pages = 0, sz = 0;
        switch (m) {
        case MIX_SMALL:
            sz = 1 + (size_t)harness_rng_below(&r, 1024);
            p = ha_alloc(sz, 8);
            break;
        case MIX_MID:
            sz = 1025 + (size_t)harness_rng_below(&r, 100 * KiB);
            p = ha_alloc(sz, 16);
            break;
        case MIX_LARGE:
            sz = 200 * KiB + (size_t)harness_rng_below(&r, 1 * MiB);
            p = ha_alloc(sz, 64);
            break;
        default:
            pages = 1 + (size_t)harness_rng_below(&r, 20);
            p = ha_alloc_pages(pages, 0);
            break;
        }
        if (!p) {
            /* In the mixed run a smaller request may still fit: stop only
             * after a run of failures. */
            if (mix != MIX_ALL || harness_rng_below(&r, 8) == 0)
                break;
            continue;
        }
        if (n == held_cap) {
            held_cap = held_cap ? held_cap * 2 : 4096;
            held = realloc(held, held_cap * sizeof *held);
            CHECK(held != NULL);
        }
        held[n].p = p;
        held[n].pages = pages;
        /* Touch what we got: the memory must be really ours. */
        ((volatile char *)p)[0] = 1;
        if (sz)
            ((volatile char *)p)[sz - 1] = 2;
        bytes += pages ? pages * HA_PAGE_SIZE : sz;
        n++;
    }
    struct ha_stats s1 = stats_now();
    CHECK(s1.failures > s0.failures);
    *bytes_out = bytes;
    return n;
}

static void free_one(struct held *h)
{
    if (h->pages)
        ha_free_pages(h->p, h->pages);
    else
        ha_free(h->p);
}

/* Every other block first, then the rest backwards: unlike allocation order. */
static void free_held(size_t n)
{
    for (size_t i = 0; i < n; i += 2)
        free_one(&held[i]);
    for (size_t i = n; i-- > 0;)
        if (i % 2)
            free_one(&held[i]);
}

static void exhaust_and_recover(enum mix mix, const char *name, size_t heap)
{
    heap_setup(heap);
    warm_up_cpu();
    struct ha_stats s0 = stats_now();
    uint64_t seed = 0xE4A0 + (uint64_t)mix;
    harness_seed_announce(name, seed);
    size_t b1, b2;
    size_t n1 = fill_until_null(mix, seed, &b1);
    CHECK_HEAP();
    /* Still usable: a failed request did no harm. */
    free_held(n1);
    ha_trim();
    struct ha_stats s1 = stats_now();
    printf("%s: %zu blocks, %zu bytes; pages_used %zu -> %zu, largest %zu -> %zu\n", name, n1, b1,
           s0.pages_used, s1.pages_used, s0.pages_largest_run, s1.pages_largest_run);
    CHECK(n1 > 0);
    CHECK_EQ(s1.bytes_used, 0);
    CHECK_EQ(s1.pages_used, s0.pages_used);
    CHECK_EQ(s1.pages_free, s0.pages_free);
    CHECK_EQ(s1.pages_largest_run, s0.pages_largest_run);
    CHECK_HEAP();
    size_t n2 = fill_until_null(mix, seed, &b2);
    printf("%s: again %zu blocks, %zu bytes\n", name, n2, b2);
    CHECK(n2 >= n1);
    CHECK_HEAP();
    free_held(n2);
    ha_trim();
    struct ha_stats s2 = stats_now();
    CHECK_EQ(s2.bytes_used, 0);
    CHECK_EQ(s2.pages_used, s0.pages_used);
    CHECK_HEAP();
}

static void exhaust_small(void) { exhaust_and_recover(MIX_SMALL, "exhaust_small", 4 * MiB); }
static void exhaust_mid(void) { exhaust_and_recover(MIX_MID, "exhaust_mid", 16 * MiB); }
static void exhaust_large(void) { exhaust_and_recover(MIX_LARGE, "exhaust_large", 32 * MiB); }
static void exhaust_pages(void) { exhaust_and_recover(MIX_PAGES, "exhaust_pages", 16 * MiB); }
static void exhaust_mixed(void) { exhaust_and_recover(MIX_ALL, "exhaust_mixed", 16 * MiB); }

/* Usage under memory pressure: blocks freed while others fail still come
 * back. */
static void alternating_pressure(void)
{
    heap_setup(8 * MiB);
    warm_up_cpu();
    struct ha_stats s0 = stats_now();
    size_t b;
    size_t n = fill_until_null(MIX_ALL, 0xB0B, &b);
    /* Free every other block, then fill again with small blocks only. */
    for (size_t i = 0; i < n; i += 2)
        free_one(&held[i]);
    CHECK_HEAP();
    size_t extra = 0;
    void **more = malloc(sizeof(void *) * 1000000);
    CHECK(more != NULL);
    size_t refill = TEST_CHECKED_BUILD ? 1000 : 48;
    while (extra < 1000000 && (more[extra] = ha_alloc(refill, 16)) != NULL)
        extra++;
    printf("refilled with %zu blocks of %zu bytes\n", extra, refill);
    CHECK(extra > 0);
    CHECK_HEAP();
    for (size_t i = 0; i < extra; i++)
        ha_free(more[i]);
    for (size_t i = 1; i < n; i += 2)
        free_one(&held[i]);
    free(more);
    ha_trim();
    struct ha_stats s1 = stats_now();
    CHECK_EQ(s1.bytes_used, 0);
    CHECK_EQ(s1.pages_used, s0.pages_used);
    CHECK_EQ(s1.pages_largest_run, s0.pages_largest_run);
    CHECK_HEAP();
}

/* ---- out-of-memory hook ---- */

static char *oom_spare;
static size_t oom_spare_len;
static int oom_calls;
static size_t oom_last_bytes;

static int oom_add_spare(size_t bytes, size_t align)
{
    (void)align;
    oom_calls++;
    oom_last_bytes = bytes;
    if (!oom_spare)
        return 0;
    /* Called without allocator locks held: allocator calls are allowed. */
    CHECK_HEAP();
    int rc = ha_add_region(oom_spare, oom_spare_len);
    oom_spare = NULL;
    return rc == HA_OK;
}

static void oom_handler_adds_memory(void)
{
    heap_setup(4 * MiB);
    oom_spare_len = 16 * MiB;
    oom_spare = harness_map(oom_spare_len, HA_PAGE_SIZE);
    char *spare = oom_spare;
    ha_set_oom_handler(oom_add_spare);
    /* Bigger than the whole first heap: only the spare region can serve it. */
    char *p = ha_alloc(6 * MiB, 16);
    CHECK(p != NULL);
    CHECK_EQ(oom_calls, 1);
    CHECK(oom_last_bytes >= 6 * MiB);
    CHECK(p >= spare && p + 6 * MiB <= spare + oom_spare_len);
    memset(p, 0x42, 6 * MiB);
    /* No more spare: the next impossible request fails after asking once. */
    struct ha_stats s0 = stats_now();
    CHECK(ha_alloc(64 * MiB, 16) == NULL);
    CHECK_EQ(oom_calls, 2);
    CHECK_EQ(stats_now().failures - s0.failures, 1);
    /* Pages go through the hook as well. */
    CHECK(ha_alloc_pages(64 * MiB / HA_PAGE_SIZE, 0) == NULL);
    CHECK_EQ(oom_calls, 3);
    ha_set_oom_handler(NULL);
    CHECK(ha_alloc(64 * MiB, 16) == NULL);
    CHECK_EQ(oom_calls, 3);
    ha_free(p);
    CHECK_HEAP();
}

/* What the allocator keeps for speed (empty arenas of two CPUs' heaps,
 * empty slabs and cached objects, cached frames) is given back before an
 * allocation fails: a run as large as the trimmed heap's largest is still
 * served, without ha_trim. */
static void kept_memory_serves_before_failing(void)
{
    heap_setup(16 * MiB);
    for (unsigned cpu = 2; cpu-- > 0;) {
        harness_set_cpu(cpu);
        warm_up_cpu();
    }
    struct ha_stats base = stats_now();
    enum { N = 400 };
    static void *p[N];
    for (unsigned cpu = 0; cpu < 2; cpu++) {
        harness_set_cpu(cpu);
        for (size_t i = 0; i < N; i++) {
            size_t size = i % 4 == 0 ? 20000 : i % 4 == 1 ? 300 : i % 4 == 2 ? 64 : 3000;
            p[i] = ha_alloc(size, 16);
            CHECK(p[i] != NULL);
        }
        for (size_t i = 0; i < N; i++)
            ha_free(p[i]);
        for (size_t i = 0; i < 100; i++)
            CHECK((p[i] = ha_alloc_pages(1, 0)) != NULL);
        for (size_t i = 0; i < 100; i++)
            ha_free_pages(p[i], 1);
    }
    harness_set_cpu(0);
    struct ha_stats kept = stats_now();
    printf("kept for speed: %zu pages used, largest run %zu (trimmed: %zu, %zu)\n", kept.pages_used,
           kept.pages_largest_run, base.pages_used, base.pages_largest_run);
    CHECK(kept.pages_largest_run < base.pages_largest_run); /* so the test means something */
    void *run = ha_alloc_pages(base.pages_largest_run, 0);
    CHECK(run != NULL);
    CHECK_EQ(stats_now().failures, base.failures);
    CHECK_HEAP();
    ha_free_pages(run, base.pages_largest_run);
    ha_trim();
    struct ha_stats s = stats_now();
    CHECK_EQ(s.pages_used, base.pages_used);
    CHECK_EQ(s.pages_largest_run, base.pages_largest_run);
    CHECK_HEAP();
}

/* Free memory cut into runs shorter than a shared arena (64 pages at
 * 256 KiB alignment): a mid-size block still fits one such run, in an
 * arena of its own, rather than failing with memory free. */
static void mid_block_from_short_runs(void)
{
    heap_setup(4 * MiB);
    enum { RUN = 8, MAXRUNS = 1024 };
    static void *run[MAXRUNS];
    size_t n = 0;
    while (n < MAXRUNS && (run[n] = ha_alloc_pages(RUN, 0)) != NULL)
        n++;
    CHECK(n > 8);
    for (size_t i = 0; i < n; i += 2)
        ha_free_pages(run[i], RUN);
    struct ha_stats s = stats_now();
    CHECK(s.pages_largest_run < 64);
    CHECK(s.pages_largest_run >= RUN);
    char *p = ha_alloc(20000, 16);
    CHECK(p != NULL);
    memset(p, 0x5A, 20000);
    CHECK(ha_usable_size(p) >= 20000);
    CHECK_HEAP();
    ha_free_sized(p, 20000, 16);
    for (size_t i = 1; i < n; i += 2)
        ha_free_pages(run[i], RUN);
    CHECK_HEAP();
}

int main(void)
{
    run_isolated("exhaust_small", exhaust_small);
    run_isolated("exhaust_mid", exhaust_mid);
    run_isolated("exhaust_large", exhaust_large);
    run_isolated("exhaust_pages", exhaust_pages);
    run_isolated("exhaust_mixed", exhaust_mixed);
    run_isolated("alternating_pressure", alternating_pressure);
    run_isolated("oom_handler_adds_memory", oom_handler_adds_memory);
    run_isolated("kept_memory_serves_before_failing", kept_memory_serves_before_failing);
    run_isolated("mid_block_from_short_runs", mid_block_from_short_runs);
    return harness_done();
}
