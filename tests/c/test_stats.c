/*
 * ha_get_stats is exact: bytes_used is the sum of ha_usable_size over live
 * blocks at every step, counters count every call, and after everything is
 * freed and trimmed the heap is back where it started.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

struct blk {
    char *p;
    size_t size, align, usable;
    size_t pages; /* nonzero: from ha_alloc_pages */
};

static size_t pick_size(struct harness_rng *r)
{
    uint64_t k = harness_rng_below(r, 100);
    if (k < 70)
        return (size_t)harness_rng_below(r, 1025);
    if (k < 95)
        return 1025 + (size_t)harness_rng_below(r, 127 * 1024);
    return 128 * KiB + (size_t)harness_rng_below(r, 2 * MiB);
}

static void exact_accounting(void)
{
    heap_setup(256 * MiB);
    uint64_t seed = 0x57A75;
    harness_seed_announce("exact_accounting", seed);
    struct harness_rng r;
    harness_rng_seed(&r, seed);
    enum { N = 400 };
    struct blk b[N];
    memset(b, 0, sizeof b);
    struct ha_stats s = stats_now();
    CHECK_EQ(s.bytes_used, 0);
    size_t used = 0, peak_lo = 0, peak_hi = 0;
    uint64_t allocs = s.allocs, frees = s.frees, page_allocs = s.page_allocs,
             page_frees = s.page_frees, failures = s.failures;
    uint64_t ops = harness_scale(100000);
    for (uint64_t op = 0; op < ops; op++) {
        size_t i = (size_t)harness_rng_below(&r, N);
        uint64_t what = harness_rng_below(&r, 100);
        bool frees_exact = true;
        if (!b[i].p) {
            if (what < 10) {
                size_t count = 1 + (size_t)harness_rng_below(&r, 16);
                b[i].p = ha_alloc_pages(count, 0);
                CHECK(b[i].p != NULL);
                b[i].pages = count;
                page_allocs++;
            } else if (what < 13) {
                CHECK(ha_alloc(10, 48) == NULL);
                failures++;
            } else {
                b[i].size = pick_size(&r);
                b[i].align = (size_t)1 << harness_rng_below(&r, 10);
                b[i].p = (what < 30) ? ha_alloc_zeroed(b[i].size, b[i].align)
                                     : ha_alloc(b[i].size, b[i].align);
                CHECK(b[i].p != NULL);
                b[i].usable = ha_usable_size(b[i].p);
                CHECK(b[i].usable >= b[i].size);
                used += b[i].usable;
                allocs++;
            }
        } else if (b[i].pages) {
            ha_free_pages(b[i].p, b[i].pages);
            page_frees++;
            memset(&b[i], 0, sizeof b[i]);
        } else if (what < 30) {
            size_t nsz = pick_size(&r);
            size_t before = used;
            char *q = ha_realloc(b[i].p, nsz, b[i].align);
            if (nsz == 0) {
                CHECK(q == NULL);
                used -= b[i].usable;
                memset(&b[i], 0, sizeof b[i]);
                frees_exact = false;
            } else {
                CHECK(q != NULL);
                size_t nu = ha_usable_size(q);
                CHECK(nu >= nsz);
                if (q != b[i].p) {
                    allocs++;
                    /* Old and new were both live for a moment. */
                    if (before + nu > peak_hi)
                        peak_hi = before + nu;
                    frees_exact = false;
                }
                used = used - b[i].usable + nu;
                b[i].p = q;
                b[i].size = nsz;
                b[i].usable = nu;
            }
        } else {
            if (what < 65)
                ha_free(b[i].p);
            else
                ha_free_sized(b[i].p, b[i].size, b[i].align);
            frees++;
            used -= b[i].usable;
            memset(&b[i], 0, sizeof b[i]);
        }
        if (used > peak_lo)
            peak_lo = used;
        if (used > peak_hi)
            peak_hi = used;

        s = stats_now();
        CHECK_EQ(s.bytes_used, used);
        CHECK(s.bytes_peak >= peak_lo && s.bytes_peak <= peak_hi);
        CHECK_EQ(s.allocs, allocs);
        if (frees_exact)
            CHECK_EQ(s.frees, frees);
        else
            CHECK(s.frees >= frees && s.frees <= frees + 1);
        frees = s.frees;
        CHECK_EQ(s.page_allocs, page_allocs);
        CHECK_EQ(s.page_frees, page_frees);
        CHECK_EQ(s.failures, failures);
        CHECK_EQ(s.pages_used + s.pages_free, s.pages_total);
        CHECK(s.pages_peak >= s.pages_used);
        if (op % 5000 == 0)
            CHECK_HEAP();
    }
    printf("bytes_peak %zu (model %zu..%zu)\n", s.bytes_peak, peak_lo, peak_hi);
    CHECK_HEAP();
}

/* bytes_peak without a read between: each step's stats_now() above
 * settles the peak, which would hide one missed when it happened.  Small
 * (slab), mid (TLSF below the big classes' heap size) and large (pages)
 * blocks are counted by different counters; the peak is the sum's. */
static void peak_across_tiers(void)
{
    heap_setup(64 * MiB);
    /* The case that a counter's own high-water mark misses: each tier's
     * block alone, then both at once. */
    void *a = ha_alloc(64, 8);
    ha_free(a);
    void *b = ha_alloc(20000, 8);
    size_t ub = ha_usable_size(b);
    ha_free(b);
    b = ha_alloc(20000, 8);
    a = ha_alloc(64, 8);
    size_t both = ha_usable_size(a) + ha_usable_size(b);
    CHECK(both > ub);
    ha_free(a);
    ha_free(b);
    struct ha_stats s = stats_now();
    CHECK_EQ(s.bytes_used, 0);
    CHECK_EQ(s.bytes_peak, both);

    /* A rise only marks the peak pending; the first fall after it, in
     * whichever tier, samples it.  In 64 MiB, 4000 B is a slab object and
     * 30000 and 60000 B are TLSF blocks.  Slab blocks rise and a TLSF block falls
     * first; then a TLSF block rises and the slab blocks fall first (their
     * fast free's gate shut by the TLSF rise). */
    void *t = ha_alloc(30000, 8), *sm[8];
    size_t ut = ha_usable_size(t), us = 0;
    for (int i = 0; i < 8; i++) {
        sm[i] = ha_alloc(4000, 8);
        us += ha_usable_size(sm[i]);
    }
    ha_free(t);
    for (int i = 0; i < 8; i++)
        ha_free(sm[i]);
    s = stats_now();
    CHECK_EQ(s.bytes_used, 0);
    CHECK_EQ(s.bytes_peak, ut + us > both ? ut + us : both);
    for (int i = 0; i < 8; i++)
        sm[i] = ha_alloc(4000, 8);
    t = ha_alloc(60000, 8);
    size_t ut2 = ha_usable_size(t);
    CHECK(ut2 > ut);
    for (int i = 0; i < 8; i++)
        ha_free(sm[i]);
    ha_free(t);
    s = stats_now();
    CHECK_EQ(s.bytes_used, 0);
    CHECK_EQ(s.bytes_peak, ut2 + us);
    both = ut2 + us;

    uint64_t seed = 0x9EA4;
    harness_seed_announce("peak_across_tiers", seed);
    struct harness_rng r;
    harness_rng_seed(&r, seed);
    enum { N = 64 };
    struct blk blk[N];
    memset(blk, 0, sizeof blk);
    size_t used = 0, peak = both;
    for (unsigned round = 0; round < 40; round++) {
        uint64_t steps = 1 + harness_rng_below(&r, 200);
        for (uint64_t k = 0; k < steps; k++) {
            size_t i = (size_t)harness_rng_below(&r, N);
            if (blk[i].p) {
                ha_free(blk[i].p);
                used -= blk[i].usable;
                memset(&blk[i], 0, sizeof blk[i]);
                continue;
            }
            uint64_t tier = harness_rng_below(&r, 3);
            size_t size = tier == 0   ? 1 + (size_t)harness_rng_below(&r, 4096)
                          : tier == 1 ? 5000 + (size_t)harness_rng_below(&r, 60000)
                                      : 100 * KiB + (size_t)harness_rng_below(&r, 400 * KiB);
            blk[i].p = ha_alloc(size, 8);
            CHECK(blk[i].p != NULL);
            blk[i].usable = ha_usable_size(blk[i].p);
            used += blk[i].usable;
            if (used > peak)
                peak = used;
        }
        s = stats_now();
        CHECK_EQ(s.bytes_used, used);
        CHECK_EQ(s.bytes_peak, peak);
    }
    for (size_t i = 0; i < N; i++)
        ha_free(blk[i].p);
    printf("bytes_peak %zu\n", peak);
    CHECK_HEAP();
}

/* Free everything, trim: bytes_used 0, pages back, largest run back. */
static void trim_returns_to_start(void)
{
    heap_setup(64 * MiB);
    warm_up_cpu();
    struct ha_stats s0 = stats_now();
    uint64_t seed = 0x7217;
    harness_seed_announce("trim_returns_to_start", seed);
    struct harness_rng r;
    harness_rng_seed(&r, seed);
    enum { N = 5000 };
    void **p = calloc(N, sizeof(void *));
    CHECK(p != NULL);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            size_t sz = harness_rng_below(&r, 50) ? (size_t)harness_rng_below(&r, 3000)
                                                   : (size_t)harness_rng_below(&r, 400 * KiB);
            p[i] = ha_alloc(sz, 16);
            CHECK(p[i] != NULL);
        }
        struct ha_stats s1 = stats_now();
        CHECK(s1.pages_used > s0.pages_used);
        CHECK(s1.bytes_used > 0);
        /* Free in an order unlike allocation order. */
        for (int i = 0; i < N; i += 2)
            ha_free(p[i]);
        for (int i = N - 1; i > 0; i -= 2)
            ha_free(p[i]);
        ha_trim();
        struct ha_stats s2 = stats_now();
        printf("round %d: pages_used %zu -> %zu -> %zu, largest run %zu -> %zu\n", round,
               s0.pages_used, s1.pages_used, s2.pages_used, s0.pages_largest_run,
               s2.pages_largest_run);
        CHECK_EQ(s2.bytes_used, 0);
        CHECK_EQ(s2.pages_used, s0.pages_used);
        CHECK_EQ(s2.pages_free, s0.pages_free);
        CHECK_EQ(s2.pages_largest_run, s0.pages_largest_run);
        CHECK_EQ(s2.allocs - s0.allocs, (uint64_t)N * (round + 1));
        CHECK_EQ(s2.frees - s0.frees, (uint64_t)N * (round + 1));
        CHECK_HEAP();
    }
    free(p);
}

/* The same after work on several cpu ids from one thread. */
static void trim_drains_every_cpu(void)
{
    heap_setup(32 * MiB);
    for (unsigned c = 0; c < 4; c++) {
        harness_set_cpu(c);
        warm_up_cpu();
    }
    struct ha_stats s0 = stats_now();
    enum { N = 2000 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        harness_set_cpu((unsigned)i % 4);
        p[i] = ha_alloc((size_t)(i % 700) + 1, 8);
        CHECK(p[i] != NULL);
    }
    for (int i = 0; i < N; i++) {
        harness_set_cpu((unsigned)(i + 1) % 4);   /* freed on another cpu */
        ha_free(p[i]);
    }
    harness_set_cpu(0);
    ha_trim();
    struct ha_stats s1 = stats_now();
    CHECK_EQ(s1.bytes_used, 0);
    CHECK_EQ(s1.pages_used, s0.pages_used);
    CHECK_EQ(s1.pages_largest_run, s0.pages_largest_run);
    CHECK_HEAP();
}

static void stats_invariants(void)
{
    heap_setup(16 * MiB);
    void *a = ha_alloc(100, 8), *b = ha_alloc(50000, 8), *c = ha_alloc(1 * MiB, 8);
    void *pg = ha_alloc_pages(10, 0);
    CHECK(a && b && c && pg);
    struct ha_stats s = stats_now();
    CHECK_EQ(s.bytes_used, ha_usable_size(a) + ha_usable_size(b) + ha_usable_size(c));
    CHECK_EQ(s.bytes_total, 16 * MiB);
    CHECK(s.bytes_free > 0 && s.bytes_free < s.bytes_total);
    CHECK(s.bytes_used + s.bytes_free + s.bytes_meta <= s.bytes_total);
    CHECK(s.pages_used >= 10 + (1 * MiB) / HA_PAGE_SIZE);
    CHECK_EQ(s.pages_used + s.pages_free, s.pages_total);
    CHECK(s.pages_largest_run <= s.pages_free);
    CHECK(s.bytes_meta > 0);
    CHECK_EQ(s.allocs, 3);
    CHECK_EQ(s.page_allocs, 1);
    ha_free(a);
    ha_free(b);
    ha_free(c);
    ha_free_pages(pg, 10);
    s = stats_now();
    CHECK_EQ(s.frees, 3);
    CHECK_EQ(s.page_frees, 1);
    CHECK_EQ(s.bytes_used, 0);
    CHECK(s.bytes_peak >= 100 + 50000 + 1 * MiB);
    CHECK(s.pages_peak >= 10 + (1 * MiB) / HA_PAGE_SIZE);
    CHECK_HEAP();
}

int main(void)
{
    run_isolated("exact_accounting", exact_accounting);
    run_isolated("peak_across_tiers", peak_across_tiers);
    run_isolated("trim_returns_to_start", trim_returns_to_start);
    run_isolated("trim_drains_every_cpu", trim_drains_every_cpu);
    run_isolated("stats_invariants", stats_invariants);
    return harness_done();
}
