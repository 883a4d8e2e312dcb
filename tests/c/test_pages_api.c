/*
 * The page API through the public header: ha_alloc_pages,
 * ha_alloc_pages_zeroed, ha_free_pages of whole runs and sub-runs.
 * (test_page.c tests page.c from the inside.)
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* Counts 1..64 at aligns 4 KiB..1 MiB: aligned, distinct, writable, and no
 * more pages taken than asked for. */
static void counts_and_alignments(void)
{
    heap_setup(256 * MiB);
    warm_up_cpu();
    for (size_t align = HA_PAGE_SIZE; align <= 1 * MiB; align <<= 1) {
        enum { N = 64 };
        char *p[N + 1];
        for (size_t count = 1; count <= N; count++) {
            struct ha_stats s0 = stats_now();
            p[count] = (count % 3 == 0) ? ha_alloc_pages_zeroed(count, align)
                                        : ha_alloc_pages(count, align);
            CHECK(p[count] != NULL);
            CHECK(is_aligned(p[count], align));
            struct ha_stats s1 = stats_now();
            CHECK_EQ(s1.pages_used - s0.pages_used, count);
            CHECK_EQ(s1.page_allocs - s0.page_allocs, 1);
            size_t len = count * HA_PAGE_SIZE;
            if (count % 3 == 0)
                CHECK(all_zero(p[count], len));
            pattern_fill_sparse(p[count], len, count * 7 + align);
            for (size_t j = 1; j < count; j++)
                CHECK(!ranges_overlap((uintptr_t)p[j], j * HA_PAGE_SIZE, (uintptr_t)p[count], len));
        }
        for (size_t count = 1; count <= N; count++)
            CHECK(pattern_sparse_ok(p[count], count * HA_PAGE_SIZE, count * 7 + align));
        CHECK_HEAP();
        for (size_t count = 1; count <= N; count++) {
            struct ha_stats s0 = stats_now();
            ha_free_pages(p[count], count);
            struct ha_stats s1 = stats_now();
            CHECK_EQ(s0.pages_used - s1.pages_used, count);
            CHECK_EQ(s1.page_frees - s0.page_frees, 1);
        }
        CHECK_HEAP();
    }
}

static void align_zero_means_page(void)
{
    heap_setup(8 * MiB);
    for (int i = 0; i < 50; i++) {
        void *p = ha_alloc_pages((size_t)i % 5 + 1, 0);
        CHECK(p != NULL);
        CHECK(is_aligned(p, HA_PAGE_SIZE));
        ha_free_pages(p, (size_t)i % 5 + 1);
    }
    CHECK_HEAP();
}

static void bad_page_requests_are_null(void)
{
    uintptr_t base = (uintptr_t)heap_setup(8 * MiB);
    /* Twice the base's own alignment (at least 1 GiB): no address of the
     * heap has it.  A fixed 2^40 was met when mmap happened to return a
     * 2^40-aligned base (about 1 run in 1000). */
    size_t unreachable = (size_t)(base & -base) << 1;
    struct ha_stats s0 = stats_now();
    CHECK(ha_alloc_pages(1, 3 * HA_PAGE_SIZE) == NULL);   /* not a power of two */
    CHECK(ha_alloc_pages(100000, 0) == NULL);             /* more than the heap */
    CHECK(ha_alloc_pages(SIZE_MAX, 0) == NULL);
    CHECK(ha_alloc_pages(SIZE_MAX / HA_PAGE_SIZE + 1, 0) == NULL); /* bytes overflow */
    CHECK(ha_alloc_pages(1, unreachable) == NULL);        /* no run that aligned */
    CHECK(ha_alloc_pages_zeroed(SIZE_MAX, 0) == NULL);
    struct ha_stats s1 = stats_now();
    CHECK_EQ(s1.failures - s0.failures, 6);
    CHECK_EQ(s1.pages_used, s0.pages_used);
    CHECK_EQ(s1.page_allocs, s0.page_allocs);
    CHECK_HEAP();
    void *p = ha_alloc_pages(16, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 16);
}

/* Any whole-page sub-run can be given back, in any order. */
static void free_sub_runs(void)
{
    heap_setup(16 * MiB);
    warm_up_cpu();
    struct ha_stats base = stats_now();
    char *p = ha_alloc_pages(16, 0);
    CHECK(p != NULL);
    pattern_fill(p, 16 * HA_PAGE_SIZE, 1);
    ha_free_pages(p + 4 * HA_PAGE_SIZE, 4);    /* middle */
    CHECK_HEAP();
    CHECK_PATTERN(p, 4 * HA_PAGE_SIZE, 1);
    for (size_t i = 8 * HA_PAGE_SIZE; i < 16 * HA_PAGE_SIZE; i++)
        CHECK_EQ(((unsigned char *)p)[i], pattern_byte(1, i));
    ha_free_pages(p, 1);                        /* head page */
    ha_free_pages(p + 15 * HA_PAGE_SIZE, 1);    /* tail page */
    ha_free_pages(p + 2 * HA_PAGE_SIZE, 2);
    ha_free_pages(p + HA_PAGE_SIZE, 1);
    CHECK_HEAP();
    ha_free_pages(p + 8 * HA_PAGE_SIZE, 7);
    struct ha_stats s = stats_now();
    CHECK_EQ(s.pages_used, base.pages_used);
    CHECK_EQ(s.pages_largest_run, base.pages_largest_run);
    CHECK_HEAP();

    /* A run not a power of two, freed page by page from the end. */
    char *q = ha_alloc_pages(37, 8 * HA_PAGE_SIZE);
    CHECK(q != NULL);
    for (size_t i = 37; i-- > 0;)
        ha_free_pages(q + i * HA_PAGE_SIZE, 1);
    s = stats_now();
    CHECK_EQ(s.pages_used, base.pages_used);
    CHECK_EQ(s.pages_largest_run, base.pages_largest_run);
    CHECK_HEAP();
}

/* Random page traffic; afterwards everything coalesces back. */
static void random_runs_coalesce_back(void)
{
    heap_setup(64 * MiB);
    warm_up_cpu();
    struct ha_stats base = stats_now();
    uint64_t seed = 0xA11CE5;
    harness_seed_announce("random_runs_coalesce_back", seed);
    struct harness_rng r;
    harness_rng_seed(&r, seed);
    enum { N = 512 };
    char *p[N] = { 0 };
    size_t cnt[N] = { 0 };
    uint64_t ops = harness_scale(200000);
    for (uint64_t op = 0; op < ops; op++) {
        size_t i = (size_t)harness_rng_below(&r, N);
        if (p[i]) {
            CHECK_EQ(p[i][0], (char)i);
            CHECK_EQ(p[i][cnt[i] * HA_PAGE_SIZE - 1], (char)i);
            /* Sometimes give back the tail first. */
            if (cnt[i] > 1 && harness_rng_below(&r, 4) == 0) {
                size_t keep = 1 + (size_t)harness_rng_below(&r, cnt[i] - 1);
                ha_free_pages(p[i] + keep * HA_PAGE_SIZE, cnt[i] - keep);
                cnt[i] = keep;
                p[i][keep * HA_PAGE_SIZE - 1] = (char)i;
                continue;
            }
            ha_free_pages(p[i], cnt[i]);
            p[i] = NULL;
        } else {
            size_t count = 1 + (size_t)(harness_rng_below(&r, 8) ? harness_rng_below(&r, 8)
                                                                  : harness_rng_below(&r, 300));
            size_t align = (size_t)HA_PAGE_SIZE << harness_rng_below(&r, 6);
            p[i] = ha_alloc_pages(count, align);
            if (!p[i])
                continue;
            CHECK(is_aligned(p[i], align));
            cnt[i] = count;
            p[i][0] = (char)i;
            p[i][count * HA_PAGE_SIZE - 1] = (char)i;
        }
        if (op % 20000 == 0)
            CHECK_HEAP();
    }
    for (size_t i = 0; i < N; i++)
        if (p[i])
            ha_free_pages(p[i], cnt[i]);
    struct ha_stats s = stats_now();
    CHECK_EQ(s.pages_used, base.pages_used);
    CHECK_EQ(s.pages_largest_run, base.pages_largest_run);
    CHECK_EQ(s.pages_free, base.pages_free);
    CHECK_HEAP();
}

/* Zeroed pages are zero even where the memory was dirtied before. */
static void zeroed_pages_after_dirty(void)
{
    heap_setup(32 * MiB);
    for (int round = 0; round < 4; round++) {
        size_t count = (size_t)1 << (round * 3);
        char *p = ha_alloc_pages(count, 0);
        CHECK(p != NULL);
        memset(p, 0xCD, count * HA_PAGE_SIZE);
        ha_free_pages(p, count);
        char *q = ha_alloc_pages_zeroed(count, 0);
        CHECK(q != NULL);
        CHECK(all_zero(q, count * HA_PAGE_SIZE));
        memset(q, 0xCD, count * HA_PAGE_SIZE);
        ha_free_pages(q, count);
    }
    /* Dirty everything, then take it all back zeroed. */
    size_t n = 0;
    char **all = malloc(sizeof(char *) * 8192);
    CHECK(all != NULL);
    while (n < 8192 && (all[n] = ha_alloc_pages(1, 0)) != NULL) {
        memset(all[n], 0x99, HA_PAGE_SIZE);
        n++;
    }
    for (size_t i = 0; i < n; i++)
        ha_free_pages(all[i], 1);
    for (size_t i = 0; i < n; i++) {
        all[i] = ha_alloc_pages_zeroed(1, 0);
        CHECK(all[i] != NULL);
        CHECK(all_zero(all[i], HA_PAGE_SIZE));
    }
    for (size_t i = 0; i < n; i++)
        ha_free_pages(all[i], 1);
    free(all);
    CHECK_HEAP();
}

/* Single pages come from and go to the calling CPU's frame cache.  What
 * the statistics say is exact all along: a cached frame is free (and part
 * of the largest run), and a frame freed on another CPU is counted there. */
static void frame_cache_stats_exact(void)
{
    heap_setup(16 * MiB);
    for (unsigned cpu = 3; cpu-- > 0;) { /* each CPU's cache made first */
        harness_set_cpu(cpu);
        warm_up_cpu();
    }
    struct ha_stats base = stats_now();
    enum { N = 300 };
    char *p[N];
    for (size_t i = 0; i < N; i++) {
        harness_set_cpu((unsigned)(i % 3));
        p[i] = ha_alloc_pages(1, 0);
        CHECK(p[i] != NULL);
        p[i][0] = (char)i;
        p[i][HA_PAGE_SIZE - 1] = (char)i;
        struct ha_stats s = stats_now();
        CHECK_EQ(s.pages_used, base.pages_used + i + 1);
        CHECK_EQ(s.pages_used + s.pages_free, base.pages_used + base.pages_free);
        CHECK_EQ(s.page_allocs, base.page_allocs + i + 1);
        CHECK(s.pages_peak >= s.pages_used);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            CHECK(p[i] != p[j]);
    CHECK_HEAP();
    /* Freed on other CPUs than the ones that took them. */
    for (size_t i = 0; i < N; i++) {
        harness_set_cpu((unsigned)((i + 1) % 3));
        CHECK_EQ(p[i][0], (char)i);
        CHECK_EQ(p[i][HA_PAGE_SIZE - 1], (char)i);
        ha_free_pages(p[i], 1);
        struct ha_stats s = stats_now();
        CHECK_EQ(s.pages_used, base.pages_used + N - i - 1);
        CHECK_EQ(s.page_frees, base.page_frees + i + 1);
        if (i % 50 == 0)
            CHECK_HEAP();
    }
    struct ha_stats s = stats_now();
    CHECK_EQ(s.pages_used, base.pages_used);
    CHECK_EQ(s.pages_free, base.pages_free);
    CHECK_EQ(s.pages_peak, base.pages_used + N);
    CHECK_EQ(s.pages_largest_run, base.pages_largest_run);
    CHECK_HEAP();
    harness_set_cpu(0);
}

/* Frames held by every CPU's cache still serve a large run: the run that
 * the statistics call largest is handed out (the caches give their frames
 * back before the page allocator says no). */
static void cached_frames_serve_large_runs(void)
{
    heap_setup(8 * MiB);
    for (unsigned cpu = 4; cpu-- > 0;) {
        harness_set_cpu(cpu);
        warm_up_cpu();
    }
    struct ha_stats base = stats_now();
    size_t n = 0, cap = base.pages_free;
    char **all = malloc(cap * sizeof *all);
    CHECK(all != NULL);
    harness_set_cpu(0);
    for (void *q; (q = ha_alloc_pages(1, 0)) != NULL;)
        all[n++] = q;
    CHECK_EQ(n, base.pages_free);
    CHECK_HEAP();
    /* Spread the frees over four CPUs: each cache keeps some. */
    for (size_t i = 0; i < n; i++) {
        harness_set_cpu((unsigned)(i % 4));
        ha_free_pages(all[i], 1);
    }
    harness_set_cpu(0);
    struct ha_stats s = stats_now();
    CHECK_EQ(s.pages_free, base.pages_free);
    CHECK_EQ(s.pages_largest_run, base.pages_largest_run);
    void *run = ha_alloc_pages(s.pages_largest_run, 0);
    CHECK(run != NULL);
    ha_free_pages(run, s.pages_largest_run);
    s = stats_now();
    CHECK_EQ(s.pages_used, base.pages_used);
    CHECK_EQ(s.failures, base.failures + 1); /* the NULL that ended the fill */
    free(all);
    CHECK_HEAP();
}

int main(void)
{
    run_isolated("counts_and_alignments", counts_and_alignments);
    run_isolated("align_zero_means_page", align_zero_means_page);
    run_isolated("bad_page_requests_are_null", bad_page_requests_are_null);
    run_isolated("free_sub_runs", free_sub_runs);
    run_isolated("random_runs_coalesce_back", random_runs_coalesce_back);
    run_isolated("zeroed_pages_after_dirty", zeroed_pages_after_dirty);
    run_isolated("frame_cache_stats_exact", frame_cache_stats_exact);
    run_isolated("cached_frames_serve_large_runs", cached_frames_serve_large_runs);
    return harness_done();
}
