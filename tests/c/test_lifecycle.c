/*
 * Life cycle of the public API: early allocator, regions, reserves,
 * ha_final_init, and the error codes of each step.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

static void before_any_init_alloc_is_null(void)
{
    CHECK(ha_alloc(16, 8) == NULL);
    CHECK(ha_alloc_zeroed(100, 16) == NULL);
    CHECK(ha_alloc_pages(1, 0) == NULL);
    CHECK(ha_realloc(NULL, 64, 8) == NULL);
}

static void early_allocates_at_once(void)
{
    char *base = harness_map(256 * KiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_early_init(base, 256 * KiB), HA_OK);
    char *a = ha_alloc(100, 16);
    char *b = ha_alloc(0, 8);
    char *c = ha_alloc(3000, 256);
    char *pg = ha_alloc_pages(2, 0);
    CHECK(a && b && c && pg);
    CHECK(a != b && b != c && a != c);
    CHECK(is_aligned(a, 16) && is_aligned(c, 256) && is_aligned(pg, HA_PAGE_SIZE));
    char *blocks[] = { a, b, c, pg };
    for (size_t i = 0; i < 4; i++)
        CHECK(blocks[i] >= base && blocks[i] < base + 256 * KiB);
    CHECK(ha_usable_size(a) >= 100 && ha_usable_size(c) >= 3000);
    pattern_fill(a, 100, 1);
    pattern_fill(c, 3000, 3);
    pattern_fill(pg, 2 * HA_PAGE_SIZE, 4);
    CHECK(!ranges_overlap((uintptr_t)a, 100, (uintptr_t)c, 3000));
    CHECK(!ranges_overlap((uintptr_t)c, 3000, (uintptr_t)pg, 2 * HA_PAGE_SIZE));
    CHECK_PATTERN(a, 100, 1);
    CHECK_PATTERN(c, 3000, 3);
    CHECK_PATTERN(pg, 2 * HA_PAGE_SIZE, 4);
    struct ha_stats s = stats_now();
    CHECK(s.early_used >= 100 + 3000 + 2 * HA_PAGE_SIZE);
    CHECK_HEAP();
}

/* Blocks from the early allocator stay valid across ha_final_init and can be
 * freed, resized and measured afterwards. */
static void early_blocks_survive_final_init(void)
{
    char *base = harness_map(8 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_early_init(base, 512 * KiB), HA_OK);
    enum { N = 40 };
    char *blk[N];
    size_t sz[N];
    for (int i = 0; i < N; i++) {
        sz[i] = (size_t)(i * 97 % 2000) + 1;
        blk[i] = ha_alloc(sz[i], (size_t)1 << (i % 8));
        CHECK(blk[i] != NULL);
        pattern_fill(blk[i], sz[i], (uint64_t)i);
    }
    char *pg = ha_alloc_pages(3, 0);
    CHECK(pg != NULL);
    pattern_fill(pg, 3 * HA_PAGE_SIZE, 999);

    CHECK_EQ(ha_add_region(base + 512 * KiB, 8 * MiB - 512 * KiB), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    CHECK_HEAP();

    for (int i = 0; i < N; i++) {
        CHECK_PATTERN(blk[i], sz[i], (uint64_t)i);
        CHECK(ha_usable_size(blk[i]) >= sz[i]);
    }
    CHECK_PATTERN(pg, 3 * HA_PAGE_SIZE, 999);

    /* New allocations never land on live early blocks. */
    for (int k = 0; k < 200; k++) {
        char *q = ha_alloc(64, 16);
        CHECK(q != NULL);
        for (int i = 0; i < N; i++)
            CHECK(!ranges_overlap((uintptr_t)q, 64, (uintptr_t)blk[i], sz[i]));
        pattern_fill(q, 64, 5000 + (uint64_t)k);
    }
    for (int i = 0; i < N; i++)
        CHECK_PATTERN(blk[i], sz[i], (uint64_t)i);

    /* Grow an early block: contents preserved wherever it ends up. */
    char *r = ha_realloc(blk[7], sz[7] + 10000, 8);
    CHECK(r != NULL);
    CHECK_PATTERN(r, sz[7], 7);
    blk[7] = r;
    for (int i = 0; i < N; i++) {
        if (i % 2)
            ha_free(blk[i]);
        else
            ha_free_sized(blk[i], i == 7 ? sz[7] + 10000 : sz[i], i == 7 ? 8 : (size_t)1 << (i % 8));
    }
    ha_free_pages(pg, 3);
    CHECK_HEAP();
    ha_trim();
    CHECK_HEAP();
}

/* What the early allocator did not hand out becomes page memory. */
static void early_remainder_becomes_pages(void)
{
    const size_t early_len = 1 * MiB, region_len = 4 * MiB;
    char *early = harness_map(early_len, HA_PAGE_SIZE);
    char *region = harness_map(region_len, HA_PAGE_SIZE);
    CHECK_EQ(ha_early_init(early, early_len), HA_OK);
    void *keep = ha_alloc(100, 8);
    CHECK(keep != NULL);
    CHECK_EQ(ha_add_region(region, region_len), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    struct ha_stats s = stats_now();
    size_t region_pages = region_len / HA_PAGE_SIZE, early_pages = early_len / HA_PAGE_SIZE;
    printf("pages_total %zu (region %zu + early %zu)\n", s.pages_total, region_pages, early_pages);
    CHECK(s.pages_total <= region_pages + early_pages);
    /* Allow a few pages of metadata and the page the early block sits in. */
    CHECK(s.pages_total >= region_pages + early_pages - 16);

    /* And those pages are really handed out. */
    size_t from_early = 0, n = 0;
    void **all = malloc(sizeof(void *) * (region_pages + early_pages));
    CHECK(all != NULL);
    for (;;) {
        char *p = ha_alloc_pages(1, 0);
        if (!p)
            break;
        all[n++] = p;
        if (p >= early && p < early + early_len)
            from_early++;
        CHECK(!ranges_overlap((uintptr_t)p, HA_PAGE_SIZE, (uintptr_t)keep, 100));
    }
    printf("%zu pages handed out, %zu from the early range\n", n, from_early);
    CHECK(from_early >= early_pages - 16);
    CHECK_HEAP();
    for (size_t i = 0; i < n; i++)
        ha_free_pages(all[i], 1);
    free(all);
    ha_free(keep);
    CHECK_HEAP();
}

static void final_init_twice_is_estate(void)
{
    heap_setup(4 * MiB);
    CHECK_EQ(ha_final_init(), HA_ESTATE);
    void *p = ha_alloc(10, 8);
    CHECK(p != NULL);
    ha_free(p);
    CHECK_HEAP();
}

static void final_init_without_early(void)
{
    char *base = harness_map(4 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_add_region(base, 4 * MiB), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    void *p = ha_alloc(1000, 64), *q = ha_alloc_pages(4, 0);
    CHECK(p && q);
    CHECK((char *)p >= base && (char *)p < base + 4 * MiB);
    CHECK((char *)q >= base && (char *)q < base + 4 * MiB);
    ha_free(p);
    ha_free_pages(q, 4);
    CHECK_HEAP();
}

static void add_region_bad_arguments(void)
{
    char *base = harness_map(4 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_add_region(NULL, 4 * MiB), HA_EINVAL);
    CHECK_EQ(ha_add_region(base, 0), HA_EINVAL);
    /* base + len wraps around the address space. */
    CHECK_EQ(ha_add_region(base, SIZE_MAX - 100), HA_EINVAL);
    CHECK_EQ(ha_add_region(base, 4 * MiB), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    CHECK_EQ(ha_add_region(NULL, 4096), HA_EINVAL);
    CHECK_EQ(ha_add_region(base, 0), HA_EINVAL);
    CHECK_HEAP();
}

static void add_region_overlap(void)
{
    char *base = harness_map(16 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_add_region(base + 4 * MiB, 4 * MiB), HA_OK);
    CHECK_EQ(ha_add_region(base + 4 * MiB, 4 * MiB), HA_EOVERLAP);  /* same */
    CHECK_EQ(ha_add_region(base + 2 * MiB, 4 * MiB), HA_EOVERLAP);  /* head */
    CHECK_EQ(ha_add_region(base + 6 * MiB, 4 * MiB), HA_EOVERLAP);  /* tail */
    CHECK_EQ(ha_add_region(base + 5 * MiB, 1 * MiB), HA_EOVERLAP);  /* inside */
    CHECK_EQ(ha_add_region(base + 3 * MiB, 6 * MiB), HA_EOVERLAP);  /* around */
    CHECK_EQ(ha_add_region(base + 2 * MiB, 2 * MiB), HA_OK);        /* adjacent below */
    CHECK_EQ(ha_final_init(), HA_OK);
    CHECK_EQ(ha_add_region(base + 7 * MiB, 2 * MiB), HA_EOVERLAP);  /* after final */
    CHECK_EQ(ha_add_region(base + 8 * MiB, 2 * MiB), HA_OK);        /* adjacent above */
    CHECK_HEAP();
}

/* The early range counts as one region to nobody: use no early allocator so
 * that all 32 slots are the caller's. */
static void too_many_regions(void)
{
    char *base = harness_map(34 * 128 * KiB, HA_PAGE_SIZE);
    for (int i = 0; i < 32; i++)
        CHECK_EQ(ha_add_region(base + (size_t)i * 128 * KiB, 64 * KiB), HA_OK);
    CHECK_EQ(ha_add_region(base + (size_t)32 * 128 * KiB, 64 * KiB), HA_ENOSPC);
    CHECK_EQ(ha_final_init(), HA_OK);
    CHECK_EQ(ha_add_region(base + (size_t)33 * 128 * KiB, 64 * KiB), HA_ENOSPC);
    /* Memory from every region is usable. */
    size_t n = 0;
    bool seen[32] = { false };
    for (;;) {
        char *p = ha_alloc_pages(1, 0);
        if (!p)
            break;
        size_t off = (size_t)(p - base);
        CHECK(off % (128 * KiB) < 64 * KiB);
        CHECK(off / (128 * KiB) < 32);
        seen[off / (128 * KiB)] = true;
        n++;
    }
    for (int i = 0; i < 32; i++)
        CHECK(seen[i]);
    CHECK_HEAP();
}

static void sub_page_region_rejected(void)
{
    char *base = harness_map(1 * MiB, HA_PAGE_SIZE);
    /* Nothing left after rounding inward. */
    int rc = ha_add_region(base + 1, HA_PAGE_SIZE);
    CHECK(rc == HA_ENOMEM || rc == HA_EINVAL);
    CHECK_EQ(ha_add_region(base + 2 * HA_PAGE_SIZE, 1 * MiB - 2 * HA_PAGE_SIZE), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    CHECK_HEAP();
}

/* Bounds are rounded inward: the partial pages at both ends are never handed
 * out nor written. */
static void unaligned_bounds_rounded_inward(void)
{
    const size_t len = 2 * MiB;
    unsigned char *map = harness_map(len, HA_PAGE_SIZE);
    memset(map, 0xAB, len);
    unsigned char *lo = map + 100, *hi = map + len - 300;
    CHECK_EQ(ha_add_region(lo, (size_t)(hi - lo)), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    unsigned char *first = map + HA_PAGE_SIZE, *end = map + len - HA_PAGE_SIZE;
    size_t n = 0;
    for (;;) {
        unsigned char *p = ha_alloc_pages(1, 0);
        if (!p)
            break;
        CHECK(p >= first && p + HA_PAGE_SIZE <= end);
        memset(p, 0x11, HA_PAGE_SIZE);
        n++;
    }
    for (;;) {
        unsigned char *p = ha_alloc(40, 8);
        if (!p)
            break;
        CHECK(p >= first && p + 40 <= end);
        memset(p, 0x22, 40);
        n++;
    }
    CHECK(n > 400);
    for (size_t i = 0; i < HA_PAGE_SIZE; i++) {
        CHECK_EQ(map[i], 0xAB);
        CHECK_EQ(end[i], 0xAB);
    }
    CHECK_HEAP();
}

struct range {
    uintptr_t lo, hi;
};

static bool in_any(const struct range *r, size_t nr, uintptr_t p, size_t len)
{
    for (size_t i = 0; i < nr; i++)
        if (p < r[i].hi && r[i].lo < p + len)
            return true;
    return false;
}

/* Reserved memory (rounded outward) is never handed out nor written, whether
 * the reserve comes before or after its region is added. */
static void reserve_never_handed_out(void)
{
    const size_t len = 8 * MiB;
    unsigned char *map = harness_map(len, HA_PAGE_SIZE);
    uintptr_t b = (uintptr_t)map;
    struct {
        size_t off, len;
    } res[] = {
        { 3 * MiB + 100, 5000 },       /* unaligned both ends: 3 pages */
        { 1 * MiB, HA_PAGE_SIZE },     /* exactly one page */
        { 5 * MiB - 1, 2 },            /* straddles a page boundary */
        { 7 * MiB + 4095, 1 },         /* one byte at a page end */
        { 6 * MiB, 256 * KiB },
    };
    enum { NR = sizeof res / sizeof res[0] };
    struct range rounded[NR];
    for (size_t i = 0; i < NR; i++) {
        rounded[i].lo = (b + res[i].off) & ~(uintptr_t)(HA_PAGE_SIZE - 1);
        rounded[i].hi = (b + res[i].off + res[i].len + HA_PAGE_SIZE - 1) & ~(uintptr_t)(HA_PAGE_SIZE - 1);
        memset((void *)rounded[i].lo, 0x5A, rounded[i].hi - rounded[i].lo);
    }
    /* Two reserves before the region exists, the rest after it is added. */
    CHECK_EQ(ha_reserve(map + res[0].off, res[0].len), HA_OK);
    CHECK_EQ(ha_reserve(map + res[1].off, res[1].len), HA_OK);
    CHECK_EQ(ha_add_region(map, len), HA_OK);
    for (size_t i = 2; i < NR; i++)
        CHECK_EQ(ha_reserve(map + res[i].off, res[i].len), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);

    size_t n = 0;
    for (;;) {
        void *p = ha_alloc_pages(1, 0);
        if (!p)
            break;
        CHECK(!in_any(rounded, NR, (uintptr_t)p, HA_PAGE_SIZE));
        memset(p, 0x11, HA_PAGE_SIZE);
        n++;
    }
    for (;;) {
        void *p = ha_alloc(24, 8);
        if (!p)
            break;
        CHECK(!in_any(rounded, NR, (uintptr_t)p, ha_usable_size(p)));
        memset(p, 0x22, 24);
        n++;
    }
    printf("%zu blocks handed out\n", n);
    CHECK(n > 1000);
    for (size_t i = 0; i < NR; i++)
        for (uintptr_t a = rounded[i].lo; a < rounded[i].hi; a++)
            CHECK_EQ(*(unsigned char *)a, 0x5A);
    CHECK_HEAP();
}

/* After ha_final_init a reserve takes free pages out of use, and refuses
 * pages in use. */
static void reserve_after_final_init(void)
{
    const size_t len = 4 * MiB;
    unsigned char *map = heap_setup(len);
    unsigned char *busy = ha_alloc_pages(4, 0);
    CHECK(busy != NULL);
    CHECK_EQ(ha_reserve(busy + HA_PAGE_SIZE, 100), HA_EBUSY);
    ha_free_pages(busy, 4);
    /* Those pages are free now: reserve them. */
    CHECK_EQ(ha_reserve(busy, 2 * HA_PAGE_SIZE), HA_OK);
    CHECK_HEAP();
    for (;;) {
        unsigned char *p = ha_alloc_pages(1, 0);
        if (!p)
            break;
        CHECK(!ranges_overlap((uintptr_t)p, HA_PAGE_SIZE, (uintptr_t)busy, 2 * HA_PAGE_SIZE));
        CHECK(p >= map && p < map + len);
    }
    CHECK_HEAP();
}

/* A region added after ha_final_init is usable at once. */
static void add_region_after_final_init(void)
{
    heap_setup(2 * MiB);
    size_t n1 = 0;
    while (ha_alloc_pages(1, 0))
        n1++;
    CHECK(ha_alloc_pages(1, 0) == NULL);
    char *more = harness_map(2 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_add_region(more, 2 * MiB), HA_OK);
    size_t n2 = 0;
    for (;;) {
        char *p = ha_alloc_pages(1, 0);
        if (!p)
            break;
        CHECK(p >= more && p < more + 2 * MiB);
        n2++;
    }
    printf("first region %zu pages, added region %zu pages\n", n1, n2);
    CHECK(n2 >= 2 * MiB / HA_PAGE_SIZE - 8);
    CHECK_HEAP();
}

/* A region that contains the early range does not hand it out twice. */
static void region_containing_early_range(void)
{
    const size_t len = 8 * MiB;
    unsigned char *map = harness_map(len, HA_PAGE_SIZE);
    unsigned char *early = map + 1 * MiB;
    CHECK_EQ(ha_early_init(early, 256 * KiB), HA_OK);
    enum { N = 30 };
    unsigned char *blk[N];
    for (int i = 0; i < N; i++) {
        blk[i] = ha_alloc(500, 8);
        CHECK(blk[i] != NULL);
        pattern_fill(blk[i], 500, (uint64_t)i);
    }
    unsigned char *epg = ha_alloc_pages(2, 0);
    CHECK(epg != NULL);
    pattern_fill(epg, 2 * HA_PAGE_SIZE, 77);
    CHECK_EQ(ha_add_region(map, len), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    for (;;) {
        unsigned char *p = ha_alloc_pages(1, 0);
        if (!p)
            break;
        CHECK(!ranges_overlap((uintptr_t)p, HA_PAGE_SIZE, (uintptr_t)epg, 2 * HA_PAGE_SIZE));
        for (int i = 0; i < N; i++)
            CHECK(!ranges_overlap((uintptr_t)p, HA_PAGE_SIZE, (uintptr_t)blk[i], 500));
        memset(p, 0xC3, HA_PAGE_SIZE);
    }
    for (int i = 0; i < N; i++)
        CHECK_PATTERN(blk[i], 500, (uint64_t)i);
    CHECK_PATTERN(epg, 2 * HA_PAGE_SIZE, 77);
    CHECK_HEAP();
    for (int i = 0; i < N; i++)
        ha_free(blk[i]);
    ha_free_pages(epg, 2);
    CHECK_HEAP();
}

static void stats_totals_after_setup(void)
{
    const size_t len = 16 * MiB;
    heap_setup(len);
    struct ha_stats s = stats_now();
    printf("bytes_total %zu pages_total %zu pages_free %zu meta %zu\n", s.bytes_total,
           s.pages_total, s.pages_free, s.bytes_meta);
    CHECK_EQ(s.bytes_total, len);
    CHECK(s.pages_total <= len / HA_PAGE_SIZE);
    CHECK(s.pages_total >= len / HA_PAGE_SIZE - 16);
    CHECK_EQ(s.pages_used + s.pages_free, s.pages_total);
    CHECK_EQ(s.bytes_used, 0);
    CHECK(s.pages_largest_run <= s.pages_free);
    CHECK(s.pages_largest_run >= 1024);
    CHECK_EQ(s.allocs, 0);
    CHECK_EQ(s.frees, 0);
    CHECK_EQ(s.failures, 0);
    CHECK_HEAP();
}

/* ha_seed: before ha_early_init only, and never with no bytes; a seeded
 * heap works as any other. */
static void seed_before_init_only(void)
{
    static const unsigned char entropy[] = { 0x5e, 0xed, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    CHECK_EQ(ha_seed(NULL, 8), HA_EINVAL);
    CHECK_EQ(ha_seed(entropy, 0), HA_EINVAL);
    CHECK_EQ(ha_seed(entropy, sizeof entropy), HA_OK);
    CHECK_EQ(ha_seed(entropy, 3), HA_OK); /* may be called again: mixed in */
    char *base = harness_map(8 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_early_init(base, 256 * KiB), HA_OK);
    CHECK_EQ(ha_seed(entropy, sizeof entropy), HA_ESTATE);
    CHECK_EQ(ha_add_region(base + 256 * KiB, 8 * MiB - 256 * KiB), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    CHECK_EQ(ha_seed(entropy, sizeof entropy), HA_ESTATE);
    void *p[4] = { ha_alloc(24, 8), ha_alloc(3000, 16), ha_alloc(300000, 64), ha_alloc_pages(1, 0) };
    CHECK(p[0] && p[1] && p[2] && p[3]);
    ha_free(p[0]);
    ha_free(p[1]);
    ha_free(p[2]);
    ha_free_pages(p[3], 1);
    CHECK_HEAP();
}

/* ha_set_trivial_hooks: with all three declared trivial no hook is
 * called, on the fast paths (warm caches) and the slow ones alike; a hook
 * not declared is always called; the heap is the same either way. */
static unsigned long hook_calls_total(void)
{
    struct harness_hook_calls c = harness_hook_calls();
    return c.cpu_id + c.irq_save + c.irq_restore;
}

static void alloc_free_round(void)
{
    for (int i = 0; i < 3; i++) { /* the first round warms the caches */
        void *small = ha_alloc(64, 16), *mid = ha_alloc_min_align(3000), *big = ha_alloc(300000, 64);
        void *frame = ha_alloc_pages(1, 0), *run = ha_alloc_pages(5, 0);
        CHECK(small && mid && big && frame && run);
        ha_free_sized(small, 64, 16);
        ha_free_sized_min_align(mid, 3000);
        ha_free(big);
        ha_free_pages(frame, 1);
        ha_free_pages(run, 5);
    }
}

static void trivial_hooks_are_not_called(void)
{
    const unsigned all = HA_TRIVIAL_CPU_ID | HA_TRIVIAL_IRQ_SAVE | HA_TRIVIAL_IRQ_RESTORE;
    heap_setup(16 * MiB);

    ha_set_trivial_hooks(all);
    unsigned long before = hook_calls_total();
    alloc_free_round();
    CHECK_EQ(hook_calls_total(), before);

    ha_set_trivial_hooks(0);
    struct harness_hook_calls a = harness_hook_calls();
    alloc_free_round();
    struct harness_hook_calls b = harness_hook_calls();
    CHECK(b.cpu_id > a.cpu_id);
    CHECK(b.irq_save > a.irq_save);
    CHECK_EQ(b.irq_save - a.irq_save, b.irq_restore - a.irq_restore); /* every save restored */

    /* Not all declared: the undeclared hook is called (here on CPU 1's
     * caches); the declared ones may be or not, as they do nothing. */
    harness_set_cpu(1);
    ha_set_trivial_hooks(HA_TRIVIAL_IRQ_SAVE | HA_TRIVIAL_IRQ_RESTORE);
    a = harness_hook_calls();
    alloc_free_round();
    b = harness_hook_calls();
    CHECK(b.cpu_id > a.cpu_id);

    /* Bits outside the three are ignored: still nothing called. */
    harness_set_cpu(0);
    ha_set_trivial_hooks(all | 0x80u);
    before = hook_calls_total();
    alloc_free_round();
    CHECK_EQ(hook_calls_total(), before);

    struct ha_stats s;
    ha_get_stats(&s);
    CHECK_EQ(s.bytes_used, 0);
    CHECK_EQ(s.allocs, s.frees);
    CHECK_HEAP();
}

int main(void)
{
    run_isolated("seed_before_init_only", seed_before_init_only);
    run_isolated("before_any_init_alloc_is_null", before_any_init_alloc_is_null);
    run_isolated("early_allocates_at_once", early_allocates_at_once);
    run_isolated("early_blocks_survive_final_init", early_blocks_survive_final_init);
    run_isolated("early_remainder_becomes_pages", early_remainder_becomes_pages);
    run_isolated("final_init_twice_is_estate", final_init_twice_is_estate);
    run_isolated("final_init_without_early", final_init_without_early);
    run_isolated("add_region_bad_arguments", add_region_bad_arguments);
    run_isolated("add_region_overlap", add_region_overlap);
    run_isolated("too_many_regions", too_many_regions);
    run_isolated("sub_page_region_rejected", sub_page_region_rejected);
    run_isolated("unaligned_bounds_rounded_inward", unaligned_bounds_rounded_inward);
    run_isolated("reserve_never_handed_out", reserve_never_handed_out);
    run_isolated("reserve_after_final_init", reserve_after_final_init);
    run_isolated("add_region_after_final_init", add_region_after_final_init);
    run_isolated("region_containing_early_range", region_containing_early_range);
    run_isolated("stats_totals_after_setup", stats_totals_after_setup);
    run_isolated("trivial_hooks_are_not_called", trivial_hooks_are_not_called);
    return harness_done();
}
