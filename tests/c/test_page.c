/*
 * Unit tests of the page allocator (c-alloc/src/page.c), driven through its
 * internal interface (page_* in ha_internal.h) on mmap'd memory.  Every
 * scenario runs in a forked child with a fresh allocator (run_isolated).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "ha_internal.h"
#include "harness.h"

#define PG ((uintptr_t)HA_PAGE_SIZE)
#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

#define CHECK_PAGES()                                                          \
    do {                                                                       \
        if (page_check() != 0) {                                               \
            const char *m_ = ha_check_message();                               \
            fprintf(stderr, "%s:%d: page_check() failed: %s\n", __FILE__,      \
                    __LINE__, m_ ? m_ : "(no message)");                       \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static struct ha_stats pstats(void)
{
    struct ha_stats s;
    memset(&s, 0, sizeof s);
    uintptr_t irq = page_lock();
    page_stats_locked(&s);
    page_unlock(irq);
    return s;
}

static uintptr_t map_pages(size_t npages, size_t align)
{
    return (uintptr_t)harness_map(npages * PG, align);
}

static bool all_bytes(const void *p, size_t n, uint8_t v)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v)
            return false;
    return true;
}

/* ------------------------------------------------------------ shadow */

/* What the test believes about each page of [base, base + n pages). */
enum { SH_OUT = 0, SH_FREE, SH_USED, SH_SYSTEM };

struct shadow {
    uintptr_t base;
    size_t n;
    uint8_t *st;
};

static void shadow_init(struct shadow *sh, uintptr_t base, size_t n)
{
    sh->base = base;
    sh->n = n;
    sh->st = calloc(n, 1);
    CHECK(sh->st != NULL);
    /* Read the starting state from the allocator, then trust only ourselves. */
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = base + i * PG;
        int k = page_kind_of(a);
        if (k == PAGE_KIND_NONE)
            sh->st[i] = SH_OUT;
        else if (!page_is_allocated(a))
            sh->st[i] = SH_FREE;
        else
            sh->st[i] = k == PAGE_KIND_SYSTEM ? SH_SYSTEM : SH_USED;
    }
}

/* Mark [p, p + count pages) from `from` to `to`; every page must be `from`. */
static void shadow_move(struct shadow *sh, uintptr_t p, size_t count, uint8_t from, uint8_t to)
{
    CHECK(p >= sh->base && (p - sh->base) / PG + count <= sh->n);
    size_t i0 = (p - sh->base) / PG;
    for (size_t i = i0; i < i0 + count; i++) {
        if (sh->st[i] != from) {
            fprintf(stderr, "shadow: page 0x%lx is %u, expected %u\n",
                    (unsigned long)(sh->base + i * PG), sh->st[i], from);
            exit(1);
        }
        sh->st[i] = to;
    }
}

/* Does the shadow hold count free pages at an address multiple of align? */
static bool shadow_has_run(const struct shadow *sh, size_t count, size_t align)
{
    size_t run = 0;
    uintptr_t start = 0;
    for (size_t i = 0; i < sh->n; i++) {
        uintptr_t a = sh->base + i * PG;
        if (sh->st[i] != SH_FREE) {
            run = 0;
            continue;
        }
        if (run == 0) {
            if (a % align)
                continue;
            start = a;
        }
        /* A run that starts aligned and is long enough; regions are
         * separated by SH_OUT pages in the tests that use this. */
        (void)start;
        if (++run == count)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------- scenarios */

/* Bounds are rounded inward; nothing is written before page_start. */
static void region_bounds_rounded_inward(void)
{
    uintptr_t base = map_pages(66, PG);
    memset((void *)base, 0xAB, 66 * PG);
    CHECK_EQ(page_add_region(base + 100, base + 66 * PG - 100, 0), HA_OK);
    CHECK_EQ(page_reserve(base + 30 * PG + 5, base + 31 * PG + 5), HA_OK);
    CHECK(!page_is_live());
    CHECK(all_bytes((void *)base, 66 * PG, 0xAB));
    CHECK_EQ(page_kind_of(base + PG), PAGE_KIND_NONE);

    CHECK_EQ(page_start(), HA_OK);
    CHECK(page_is_live());
    struct ha_stats s = pstats();
    /* [base + 1 page, base + 65 pages): 64 pages, 1 of metadata, 2 reserved. */
    CHECK_EQ(s.bytes_total, 64 * PG);
    CHECK_EQ(s.bytes_meta, PG);
    CHECK_EQ(s.pages_total, 61);
    CHECK_EQ(s.pages_free, 61);
    CHECK_EQ(page_kind_of(base), PAGE_KIND_NONE);
    CHECK_EQ(page_kind_of(base + PG - 1), PAGE_KIND_NONE);
    CHECK_EQ(page_kind_of(base + PG), PAGE_KIND_SYSTEM); /* metadata */
    CHECK_EQ(page_kind_of(base + 30 * PG), PAGE_KIND_SYSTEM);
    CHECK_EQ(page_kind_of(base + 31 * PG), PAGE_KIND_SYSTEM);
    CHECK_EQ(page_kind_of(base + 65 * PG - 1), PAGE_KIND_USER);
    CHECK_EQ(page_kind_of(base + 65 * PG), PAGE_KIND_NONE);
    /* The reserved pages were never written, not even after page_start. */
    CHECK(all_bytes((void *)(base + 30 * PG), 2 * PG, 0xAB));

    size_t got = 0;
    for (void *p; (p = page_alloc(1, PG, PAGE_KIND_USER, NULL)) != NULL; got++) {
        uintptr_t a = (uintptr_t)p;
        CHECK(a >= base + 2 * PG && a < base + 65 * PG);
        CHECK(a != base + 30 * PG && a != base + 31 * PG);
        CHECK(page_is_allocated(a));
    }
    CHECK_EQ(got, 61);
    CHECK(all_bytes((void *)(base + 30 * PG), 2 * PG, 0xAB));
    CHECK_PAGES();
    printf("64-page region: 1 metadata page, 2 reserved, 61 handed out\n");
}

static void add_region_errors(void)
{
    uintptr_t base = map_pages(200, PG);
    CHECK_EQ(page_add_region(base + 10 * PG, base + 5 * PG, 0), HA_EINVAL);
    /* Rounds to nothing, or to one page: no room for metadata plus a page. */
    CHECK_EQ(page_add_region(base + 1, base + PG + 1, 0), HA_ENOMEM);
    CHECK_EQ(page_add_region(base, base + PG, 0), HA_ENOMEM);
    CHECK_EQ(page_add_region(base, base + 2 * PG, 0), HA_OK);
    CHECK_EQ(page_add_region(base + PG, base + 3 * PG, 0), HA_EOVERLAP);
    CHECK_EQ(page_add_region(base, base + 2 * PG, 0), HA_EOVERLAP);
    for (unsigned i = 1; i < HA_MAX_REGIONS; i++)
        CHECK_EQ(page_add_region(base + 3 * i * PG, base + (3 * i + 2) * PG, 0), HA_OK);
    CHECK_EQ(page_add_region(base + 150 * PG, base + 152 * PG, 0), HA_ENOSPC);
    for (unsigned i = 0; i < HA_MAX_RESERVED; i++)
        CHECK_EQ(page_reserve(base + 190 * PG, base + 190 * PG + 1), HA_OK);
    CHECK_EQ(page_reserve(base + 190 * PG, base + 190 * PG + 1), HA_ENOSPC);
    CHECK_EQ(page_reserve(base + 5 * PG, base + 5 * PG), HA_EINVAL);
    CHECK_EQ(page_start(), HA_OK);
    CHECK_EQ(page_start(), HA_ESTATE);
    struct ha_stats s = pstats();
    CHECK_EQ(s.pages_total, HA_MAX_REGIONS); /* one page each after metadata */
    CHECK_EQ(s.bytes_total, 2 * PG * HA_MAX_REGIONS);
    CHECK_EQ(page_add_region(base + 150 * PG, base + 152 * PG, 0), HA_ENOSPC);
    CHECK_PAGES();
}

/* Several discontiguous regions; blocks never merge across a boundary. */
static void multiple_regions(void)
{
    uintptr_t m = map_pages(1024, MiB);
    /* Three regions with unmapped gaps, and two that touch. */
    CHECK_EQ(munmap((void *)(m + 100 * PG), 28 * PG), 0);
    CHECK_EQ(munmap((void *)(m + 300 * PG), 212 * PG), 0);
    CHECK_EQ(page_add_region(m, m + 100 * PG, 0), HA_OK);
    CHECK_EQ(page_add_region(m + 128 * PG, m + 300 * PG, 0), HA_OK);
    CHECK_EQ(page_add_region(m + 512 * PG, m + 768 * PG, 0), HA_OK);
    CHECK_EQ(page_add_region(m + 768 * PG, m + 1024 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    struct ha_stats s0 = pstats();
    CHECK_EQ(s0.pages_total, 99 + 171 + 255 + 255);
    /* 255 free pages on each side of m + 768: a 256-page run would need
     * the two touching regions merged. */
    CHECK_EQ(s0.pages_largest_run, 255);
    CHECK(page_alloc(256, PG, PAGE_KIND_USER, NULL) == NULL);
    CHECK(page_alloc(300, PG, PAGE_KIND_USER, NULL) == NULL);

    struct shadow sh;
    shadow_init(&sh, m, 1024);
    void *runs[2000];
    size_t n = 0;
    for (void *p; (p = page_alloc(3, PG, PAGE_KIND_USER, NULL)) != NULL;) {
        shadow_move(&sh, (uintptr_t)p, 3, SH_FREE, SH_USED);
        runs[n++] = p;
    }
    /* Whatever is left is in pieces of fewer than 3 pages per region. */
    CHECK(!shadow_has_run(&sh, 3, PG));
    CHECK_PAGES();
    for (size_t i = 0; i < n; i++)
        page_free(runs[i], 3);
    struct ha_stats s1 = pstats();
    CHECK_EQ(s1.pages_free, s0.pages_free);
    CHECK_EQ(s1.pages_largest_run, 255);
    CHECK_EQ(s1.pages_peak, 3 * n);
    CHECK_PAGES();
    printf("4 regions, %zu runs of 3 pages\n", n);
    free(sh.st);
}

/* Reserves before page_start (rounded outward, metadata placed after one at
 * the region start), after it (carved at once, HA_EBUSY on used pages), and
 * kept for regions added later. */
static void reserves(void)
{
    uintptr_t m = map_pages(512, MiB);
    memset((void *)m, 0x5A, 512 * PG);
    CHECK_EQ(page_add_region(m, m + 256 * PG, 0), HA_OK);
    CHECK_EQ(page_reserve(m, m + 2 * PG), HA_OK);                /* the "kernel image" */
    CHECK_EQ(page_reserve(m + 40 * PG + 1, m + 41 * PG + 1), HA_OK); /* pages 40, 41 */
    CHECK_EQ(page_reserve(m + 300 * PG, m + 310 * PG), HA_OK);   /* for a later region */
    CHECK_EQ(page_start(), HA_OK);
    CHECK(all_bytes((void *)m, 2 * PG, 0x5A));
    CHECK(all_bytes((void *)(m + 40 * PG), 2 * PG, 0x5A));
    CHECK_EQ(page_kind_of(m + 2 * PG), PAGE_KIND_SYSTEM); /* metadata after the reserve */
    CHECK_EQ(page_kind_of(m + 3 * PG), PAGE_KIND_USER);
    CHECK_EQ(page_kind_of(m + 41 * PG), PAGE_KIND_SYSTEM);
    struct ha_stats s = pstats();
    CHECK_EQ(s.pages_free, 256 - 2 - 2 - 1);

    /* After start: free pages are carved out at once. */
    CHECK_EQ(page_reserve(m + 100 * PG, m + 104 * PG), HA_OK);
    CHECK_EQ(pstats().pages_free, 256 - 2 - 2 - 1 - 4);
    CHECK_EQ(page_kind_of(m + 103 * PG), PAGE_KIND_SYSTEM);
    /* Overlapping pages that are already SYSTEM is fine. */
    CHECK_EQ(page_reserve(m + 39 * PG, m + 43 * PG), HA_OK);
    CHECK_EQ(pstats().pages_free, 256 - 2 - 2 - 1 - 4 - 2);
    CHECK_PAGES();

    /* A used page in the range: HA_EBUSY and nothing changes. */
    void *p = page_alloc(1, 64 * PG, PAGE_KIND_USER, NULL);
    CHECK(p != NULL);
    uintptr_t a = (uintptr_t)p;
    struct ha_stats before = pstats();
    CHECK_EQ(page_reserve(a - 2 * PG, a + 2 * PG), HA_EBUSY);
    struct ha_stats after = pstats();
    CHECK_EQ(after.pages_free, before.pages_free);
    CHECK_EQ(page_kind_of(a - PG), PAGE_KIND_USER);
    CHECK(!page_is_allocated(a - PG));
    CHECK_PAGES();

    /* Everything that is handed out avoids every reserve. */
    struct shadow sh;
    shadow_init(&sh, m, 512);
    for (void *q; (q = page_alloc(1, PG, PAGE_KIND_USER, NULL)) != NULL;)
        shadow_move(&sh, (uintptr_t)q, 1, SH_FREE, SH_USED);
    CHECK(all_bytes((void *)m, 2 * PG, 0x5A));

    /* A region added after start excludes the reserve recorded for it. */
    CHECK_EQ(page_add_region(m + 256 * PG, m + 512 * PG, 0), HA_OK);
    for (unsigned i = 300; i < 310; i++)
        CHECK_EQ(page_kind_of(m + i * PG), PAGE_KIND_SYSTEM);
    CHECK(all_bytes((void *)(m + 300 * PG), 10 * PG, 0x5A));
    CHECK_EQ(pstats().pages_free, 256 - 1 - 10);
    CHECK_PAGES();
    free(sh.st);
}

/* The early range is SYSTEM until released; a part outside every region
 * becomes a region of its own. */
static void early_range_then_released(void)
{
    uintptr_t m = map_pages(256, MiB);
    uintptr_t e2 = map_pages(16, PG);
    memset((void *)(m + 16 * PG), 0xE1, 16 * PG);
    page_set_early_range(m + 16 * PG, m + 32 * PG);
    CHECK_EQ(page_add_region(m, m + 256 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    CHECK(all_bytes((void *)(m + 16 * PG), 16 * PG, 0xE1));
    struct ha_stats s0 = pstats();
    CHECK_EQ(s0.pages_free, 256 - 16 - 1);
    CHECK_EQ(page_kind_of(m + 20 * PG), PAGE_KIND_SYSTEM);
    CHECK(page_validate((void *)(m + 20 * PG), 1, PAGE_KIND_USER) == FAULT_RESERVED);
    CHECK_EQ(page_release_early(m + 15 * PG, m + 20 * PG), HA_EINVAL); /* not all early */
    CHECK_EQ(page_release_early(m + 16 * PG, m + 24 * PG), HA_OK);
    CHECK_EQ(pstats().pages_free, 256 - 8 - 1);
    CHECK_EQ(page_kind_of(m + 20 * PG), PAGE_KIND_USER);
    CHECK(all_bytes((void *)(m + 25 * PG), 7 * PG, 0xE1)); /* still early */
    CHECK_PAGES();
    CHECK_EQ(page_release_early(m + 24 * PG, m + 32 * PG), HA_OK);
    struct ha_stats s1 = pstats();
    CHECK_EQ(s1.pages_free, 255);
    CHECK_EQ(s1.pages_largest_run, 255); /* merged back with its neighbours */
    CHECK_PAGES();

    /* An early range outside every region. */
    page_set_early_range(e2, e2 + 16 * PG);
    CHECK_EQ(page_kind_of(e2), PAGE_KIND_NONE);
    CHECK_EQ(page_release_early(e2, e2 + 16 * PG), HA_OK);
    CHECK_EQ(page_kind_of(e2 + 15 * PG), PAGE_KIND_USER);
    CHECK_EQ(pstats().pages_free, 255 + 15);
    CHECK_PAGES();
}

/* An early range right below a region, or right above one, joins it: one
 * region, the early pages SYSTEM until released, and then free pages of the
 * same region (a run may cross where the two met).  An early range one page
 * away stays apart: a region of its own when released. */
static void early_range_next_to(int where)
{
    uintptr_t m = map_pages(512, 512 * PG);
    uintptr_t es = where == 1 ? m + 256 * PG : m;
    uintptr_t rs = where == 0 ? m + 16 * PG : where == 1 ? m : m + 17 * PG; /* 2: a page between */
    page_set_early_range(es, es + 16 * PG);
    CHECK_EQ(page_add_region(rs, rs + 256 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    CHECK_EQ(page_region_count, 1u);
    CHECK_EQ(page_kind_of(es + 3 * PG), where == 2 ? PAGE_KIND_NONE : PAGE_KIND_SYSTEM);
    CHECK_EQ(page_release_early(es, es + 16 * PG), HA_OK);
    CHECK_EQ(page_region_count, where == 2 ? 2u : 1u);
    CHECK_EQ(page_kind_of(es + 3 * PG), PAGE_KIND_USER);
    struct ha_stats st = pstats();
    CHECK_EQ(st.pages_free + 1 + (where == 2), 272u); /* a metadata page a region */
    /* Above: one run over both.  Below: the region's metadata page sits
     * right after the early range, which it is kept out of. */
    CHECK_EQ(st.pages_largest_run, where == 1 ? 271u : 255u);
    CHECK_PAGES();
}

static void early_range_below_a_region(void) { early_range_next_to(0); }
static void early_range_above_a_region(void) { early_range_next_to(1); }
static void early_range_apart_from_a_region(void) { early_range_next_to(2); }

/* Every count 1..70 at every alignment 4K..256K: aligned, inside the region,
 * no overlap with any other live run, exact page accounting. */
static void counts_and_alignments(void)
{
    const size_t npages = 16384;
    uintptr_t m = map_pages(npages, npages * PG);
    CHECK_EQ(page_add_region(m + 3 * PG, m + npages * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    struct ha_stats s0 = pstats();
    struct shadow sh;
    shadow_init(&sh, m, npages);
    void *runs[71];
    for (size_t align = PG; align <= 256 * KiB; align *= 2) {
        for (size_t count = 1; count <= 70; count++) {
            bool z;
            void *p = page_alloc(count, align, PAGE_KIND_USER, &z);
            CHECK(p != NULL);
            CHECK_EQ((uintptr_t)p % align, 0);
            CHECK_EQ(page_kind_of((uintptr_t)p), PAGE_KIND_USER);
            shadow_move(&sh, (uintptr_t)p, count, SH_FREE, SH_USED);
            runs[count] = p;
        }
        struct ha_stats s = pstats();
        CHECK_EQ(s.pages_used, 70 * 71 / 2);
        CHECK_EQ(s.pages_free, s0.pages_free - 70 * 71 / 2);
        CHECK_PAGES();
        for (size_t count = 1; count <= 70; count++) {
            CHECK(page_validate(runs[count], count, PAGE_KIND_USER) == FAULT_NONE);
            page_free(runs[count], count);
            shadow_move(&sh, (uintptr_t)runs[count], count, SH_USED, SH_FREE);
        }
        s = pstats();
        CHECK_EQ(s.pages_free, s0.pages_free);
        CHECK_EQ(s.pages_largest_run, s0.pages_largest_run);
    }
    CHECK(page_alloc(0, PG, PAGE_KIND_USER, NULL) == NULL);
    CHECK(page_alloc(1, 3 * PG, PAGE_KIND_USER, NULL) == NULL);
    CHECK(page_alloc(1, PG / 2, PAGE_KIND_USER, NULL) == NULL);
    CHECK(page_alloc(SIZE_MAX / 2, PG, PAGE_KIND_USER, NULL) == NULL);
    CHECK(page_alloc(npages, PG, PAGE_KIND_USER, NULL) == NULL);
    CHECK(page_alloc(1, (size_t)1 << 62, PAGE_KIND_USER, NULL) == NULL);
    CHECK_PAGES();
    free(sh.st);
}

/* No more pages taken than asked: the tail of the buddy block goes back. */
static void tail_give_back(void)
{
    uintptr_t m = map_pages(1024, MiB);
    CHECK_EQ(page_add_region(m, m + 1024 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    struct ha_stats s0 = pstats();
    void *a = page_alloc(3, PG, PAGE_KIND_USER, NULL);
    CHECK_EQ(pstats().pages_used, 3);
    CHECK_EQ(pstats().pages_free, s0.pages_free - 3);
    void *b = page_alloc(5, 64 * KiB, PAGE_KIND_USER, NULL);
    void *c = page_alloc(1, MiB, PAGE_KIND_USER, NULL);
    void *d = page_alloc(257, PG, PAGE_KIND_USER, NULL);
    CHECK(a && b && c && d);
    CHECK_EQ(pstats().pages_used, 3 + 5 + 1 + 257);
    CHECK_EQ(pstats().pages_free, s0.pages_free - 266);
    /* The page after a 3-page run is free and can be handed out alone. */
    CHECK(!page_is_allocated((uintptr_t)a + 3 * PG));
    CHECK(!page_is_allocated((uintptr_t)d + 257 * PG));
    CHECK_PAGES();

    /* Freeing sub-runs, in any order, gives everything back. */
    page_free((char *)d + 100 * PG, 57);
    CHECK_PAGES();
    page_free(d, 100);
    page_free((char *)d + 157 * PG, 100);
    page_free((char *)b + 2 * PG, 1);
    page_free(b, 2);
    page_free((char *)b + 3 * PG, 2);
    page_free(c, 1);
    page_free(a, 3);
    struct ha_stats s1 = pstats();
    CHECK_EQ(s1.pages_used, 0);
    CHECK_EQ(s1.pages_free, s0.pages_free);
    CHECK_EQ(s1.pages_largest_run, s0.pages_largest_run);
    CHECK_EQ(s1.pages_peak, 266);
    CHECK_PAGES();
}

/* A freed run whose last buddy ends past it, on the split's free tail:
 * the tail's blocks are taken with it, and the block is whole again; with
 * a page of that tail allocated, the run's blocks stay apart and exact. */
static void free_merges_past_the_run(void)
{
    uintptr_t m = map_pages(1024, 4 * MiB);
    CHECK_EQ(page_add_region(m, m + 1024 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    /* Every free page but those of [64, 128) taken, so that the requests
     * below can only be served there. */
    size_t held = 0;
    for (size_t i = 0; i < 1024; i++)
        if ((i < 64 || i >= 128) && !page_is_allocated(m + i * PG)) {
            CHECK(page_claim((void *)(m + i * PG), 1, PAGE_KIND_ARENA));
            held++;
        }
    struct ha_stats s0 = pstats();
    CHECK_EQ(s0.pages_free, 64);
    CHECK_EQ(s0.pages_largest_run, 64);

    /* 37 pages of a 64-page block: its tail is 1 + 2 + 8 + 16 pages. */
    char *a = page_alloc(37, 64 * PG, PAGE_KIND_USER, NULL);
    CHECK_EQ((uintptr_t)a, m + 64 * PG);
    CHECK_PAGES();
    page_free(a, 37);
    CHECK_PAGES();
    CHECK_EQ(pstats().pages_largest_run, s0.pages_largest_run);
    CHECK_EQ(pstats().pages_free, s0.pages_free);
    /* The block is one again: a 64-page request takes it whole. */
    CHECK_EQ(page_alloc(64, 64 * PG, PAGE_KIND_USER, NULL), (void *)a);
    page_free(a, 64);
    CHECK_PAGES();

    /* Page 50 of the tail taken: [32, 64) never frees whole, so the run
     * ends as [0, 32) and [32, 48) + [48, 50) beside the page. */
    CHECK_EQ(page_alloc(37, 64 * PG, PAGE_KIND_USER, NULL), (void *)a);
    CHECK(page_claim(a + 50 * PG, 1, PAGE_KIND_USER));
    page_free(a, 37);
    CHECK_PAGES();
    CHECK_EQ(pstats().pages_free, s0.pages_free - 1);
    CHECK_EQ(page_alloc(16, 16 * PG, PAGE_KIND_USER, NULL), (void *)(a + 32 * PG));
    CHECK_EQ(page_alloc(32, 32 * PG, PAGE_KIND_USER, NULL), (void *)a);
    CHECK_EQ(page_alloc(2, 2 * PG, PAGE_KIND_USER, NULL), (void *)(a + 48 * PG));
    CHECK_PAGES();
    page_free(a + 32 * PG, 16);
    page_free(a, 32);
    page_free(a + 48 * PG, 2);
    page_free(a + 50 * PG, 1);
    CHECK_PAGES();
    struct ha_stats s1 = pstats();
    CHECK_EQ(s1.pages_used, held);
    CHECK_EQ(s1.pages_free, s0.pages_free);
    CHECK_EQ(s1.pages_largest_run, s0.pages_largest_run);
}

/* Free every other page: no two free pages touch.  Then free single pages
 * to make runs that straddle buddy boundaries: they are still found. */
static void fragmentation_fallback(void)
{
    uintptr_t m = map_pages(512, MiB);
    CHECK_EQ(page_add_region(m, m + 512 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    size_t n = 0;
    while (page_alloc(1, PG, PAGE_KIND_USER, NULL))
        n++;
    CHECK_EQ(n, 511);
    for (unsigned i = 2; i < 512; i += 2)
        page_free((void *)(m + i * PG), 1);
    CHECK_EQ(pstats().pages_largest_run, 1);
    CHECK(page_alloc(2, PG, PAGE_KIND_USER, NULL) == NULL);
    CHECK_PAGES();

    /* 6, 7, 8: an order-1 block at 6 and an order-0 block at 8. */
    page_free((void *)(m + 7 * PG), 1);
    CHECK_EQ(pstats().pages_largest_run, 3);
    bool z = true;
    void *p = page_alloc(3, PG, PAGE_KIND_USER, &z);
    CHECK_EQ((uintptr_t)p, m + 6 * PG);
    CHECK(!z);
    CHECK_PAGES();

    /* 14..18 free after freeing 15 and 17: order-1 blocks at 14 and 16, an
     * order-0 block at 18, no order-2 block.  3 pages at 16K: only 16..18. */
    page_free((void *)(m + 15 * PG), 1);
    page_free((void *)(m + 17 * PG), 1);
    CHECK(page_alloc(4, 8 * PG, PAGE_KIND_USER, NULL) == NULL);
    p = page_alloc(3, 4 * PG, PAGE_KIND_USER, NULL);
    CHECK_EQ((uintptr_t)p, m + 16 * PG);
    CHECK(!page_is_allocated(m + 15 * PG));
    CHECK(page_is_allocated(m + 19 * PG));
    CHECK_PAGES();
    void *q = page_alloc(2, PG, PAGE_KIND_USER, NULL);
    CHECK_EQ((uintptr_t)q, m + 14 * PG);

    /* The carved runs can be freed again and merge where they may. */
    page_free(p, 3);
    page_free((void *)(m + 6 * PG), 3);
    page_free(q, 2);
    CHECK_PAGES();
    struct ha_stats s = pstats();
    CHECK_EQ(s.pages_free, 255 + 3);
    CHECK_EQ(s.pages_largest_run, 5);
    printf("fallback found runs across buddy boundaries, alignment honoured\n");
}

static void claim(void)
{
    uintptr_t m = map_pages(256, MiB);
    CHECK_EQ(page_add_region(m, m + 256 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    struct ha_stats s0 = pstats();
    CHECK(page_claim((void *)(m + 10 * PG), 5, PAGE_KIND_ARENA));
    CHECK_EQ(page_kind_of(m + 14 * PG), PAGE_KIND_ARENA);
    CHECK_EQ(page_kind_of(m + 15 * PG), PAGE_KIND_USER);
    CHECK_EQ(pstats().pages_used, 5);
    CHECK_PAGES();
    /* Taken, partly taken, metadata, past the end, unaligned: refused. */
    CHECK(!page_claim((void *)(m + 10 * PG), 5, PAGE_KIND_ARENA));
    CHECK(!page_claim((void *)(m + 14 * PG), 3, PAGE_KIND_ARENA));
    CHECK(!page_claim((void *)m, 1, PAGE_KIND_ARENA));
    CHECK(!page_claim((void *)(m + 250 * PG), 7, PAGE_KIND_ARENA));
    CHECK(!page_claim((void *)(m + 20 * PG + 8), 1, PAGE_KIND_ARENA));
    CHECK(!page_claim((void *)(m + 20 * PG), 0, PAGE_KIND_ARENA));
    CHECK_EQ(pstats().pages_used, 5);
    CHECK_EQ(pstats().pages_free, s0.pages_free - 5);
    /* Growing a run in place, as TLSF does. */
    CHECK(page_claim((void *)(m + 15 * PG), 100, PAGE_KIND_ARENA));
    CHECK(page_validate((void *)(m + 10 * PG), 105, PAGE_KIND_ARENA) == FAULT_NONE);
    CHECK_PAGES();
    page_free((void *)(m + 10 * PG), 105);
    struct ha_stats s1 = pstats();
    CHECK_EQ(s1.pages_free, s0.pages_free);
    CHECK_EQ(s1.pages_largest_run, s0.pages_largest_run);
    CHECK_PAGES();
}

static void validate_faults(void)
{
    uintptr_t m = map_pages(512, MiB);
    CHECK_EQ(page_add_region(m, m + 256 * PG, 0), HA_OK);
    CHECK_EQ(page_reserve(m + 200 * PG, m + 201 * PG), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    char *u = page_alloc(4, PG, PAGE_KIND_USER, NULL);
    char *s = page_alloc(16, 64 * KiB, PAGE_KIND_SLAB, NULL);
    char *t = page_alloc(2, PG, PAGE_KIND_ARENA, NULL);
    CHECK(u && s && t);
    CHECK_EQ(page_kind_of((uintptr_t)s + 5 * PG), PAGE_KIND_SLAB);
    CHECK_EQ(page_validate(u, 4, PAGE_KIND_USER), FAULT_NONE);
    CHECK_EQ(page_validate(u + PG, 2, PAGE_KIND_USER), FAULT_NONE);
    CHECK_EQ(page_validate(u + 1, 1, PAGE_KIND_USER), FAULT_UNALIGNED);
    CHECK_EQ(page_validate(u, 0, PAGE_KIND_USER), FAULT_UNALIGNED);
    CHECK_EQ(page_validate(u, SIZE_MAX / 2, PAGE_KIND_USER), FAULT_UNALIGNED);
    CHECK_EQ(page_validate(u, (UINTPTR_MAX - (uintptr_t)u) / PG + 2, PAGE_KIND_USER),
             FAULT_UNALIGNED);
    CHECK_EQ(page_validate((void *)(m + 300 * PG), 1, PAGE_KIND_USER), FAULT_FOREIGN);
    CHECK_EQ(page_validate((void *)(m + 255 * PG), 2, PAGE_KIND_USER), FAULT_FOREIGN);
    CHECK_EQ(page_validate((void *)PG, 1, PAGE_KIND_USER), FAULT_FOREIGN);
    page_free(u + 3 * PG, 1);
    CHECK_EQ(page_validate(u, 4, PAGE_KIND_USER), FAULT_DOUBLE_FREE); /* last page free */
    CHECK_EQ(page_validate(u, 3, PAGE_KIND_USER), FAULT_NONE);
    CHECK_EQ(page_validate((void *)(m + 100 * PG), 1, PAGE_KIND_USER), FAULT_DOUBLE_FREE);
    CHECK_EQ(page_validate((void *)m, 1, PAGE_KIND_USER), FAULT_RESERVED); /* metadata */
    CHECK_EQ(page_validate((void *)(m + 200 * PG), 1, PAGE_KIND_USER), FAULT_RESERVED);
    CHECK_EQ(page_validate(s, 16, PAGE_KIND_USER), FAULT_BYTES_NOT_PAGES);
    CHECK_EQ(page_validate(t, 2, PAGE_KIND_USER), FAULT_BYTES_NOT_PAGES);
    CHECK_EQ(page_validate(s, 16, PAGE_KIND_SLAB), FAULT_NONE);
    CHECK_EQ(page_validate(u, 3, PAGE_KIND_SLAB), FAULT_NOT_ALLOCATED);
    CHECK_EQ(page_validate(s, 16, PAGE_KIND_ARENA), FAULT_NOT_ALLOCATED);
    page_free(u, 3);
    CHECK_EQ(page_validate(u, 1, PAGE_KIND_USER), FAULT_DOUBLE_FREE);
    CHECK_PAGES();
}

/* A run's kinds are read eight a word: a page of another kind at every
 * place of runs of 1..24 pages at every offset into a word is found (FRAME:
 * a cached frame, so a double free; SLAB: not pages), and one just outside
 * the run is not looked at. */
static void validate_every_place(void)
{
    uintptr_t m = map_pages(512, MiB);
    CHECK_EQ(page_add_region(m, m + 256 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    char *u = page_alloc(64, 64 * PG, PAGE_KIND_USER, NULL);
    CHECK(u != NULL);
    static const unsigned kinds[] = { PAGE_KIND_FRAME, PAGE_KIND_SLAB };
    for (size_t start = 8; start < 24; start++)
        for (size_t n = 1; n <= 24; n++)
            for (size_t j = start - 1; j <= start + n; j++)
                for (size_t k = 0; k < 2; k++) {
                    uint8_t *at = page_kind_at((uintptr_t)u + j * PG);
                    ha_store_relaxed8(at, (uint8_t)kinds[k]);
                    enum ha_fault f = page_validate(u + start * PG, n, PAGE_KIND_USER);
                    ha_store_relaxed8(at, PAGE_KIND_USER);
                    bool inside = j >= start && j < start + n;
                    enum ha_fault want = !inside ? FAULT_NONE
                                         : kinds[k] == PAGE_KIND_FRAME ? FAULT_DOUBLE_FREE
                                                                       : FAULT_BYTES_NOT_PAGES;
                    if (f != want)
                        fprintf(stderr, "start %zu n %zu page %zu kind %u: fault %d\n", start, n, j, kinds[k], (int)f);
                    CHECK_EQ(f, want);
                }
    page_free(u, 64);
    CHECK_PAGES();
}

/* HA_REGION_ZEROED: fresh blocks are reported zero and are; a split's pieces
 * stay zero, freed pages are not, and a run over both is not.  The
 * placement is the allocator's (the smallest fitting order, its lowest
 * block; between regions, the lower): m is 1 MiB aligned
 * with its metadata in page 0, so its free blocks are pages 1 (order 0),
 * 2 (1), 4 (2), 8 (3), 16 (4), ...; m2 lies above m. */
static void zero_tracking(void)
{
    uintptr_t m = map_pages(512, MiB);
    uintptr_t m2 = m + 320 * PG;
    CHECK_EQ(page_add_region(m2, m2 + 64 * PG, 0), HA_OK);
    CHECK_EQ(page_add_region(m, m + 256 * PG, HA_REGION_ZEROED), HA_OK);
    CHECK_EQ(page_start(), HA_OK);

    bool z = false;
    /* Merging ANDs the flag: a dirty page 2 and its clean buddy 3. */
    CHECK(page_claim((void *)(m + 2 * PG), 1, PAGE_KIND_USER));
    memset((void *)(m + 2 * PG), 0xBB, PG);
    page_free((void *)(m + 2 * PG), 1);
    CHECK_PAGES();
    uint8_t *t = page_alloc(2, 2 * PG, PAGE_KIND_USER, &z);
    CHECK_EQ((uintptr_t)t, m + 2 * PG);
    CHECK(!z);
    CHECK(all_bytes(t + PG, PG, 0));

    /* Pages 1 and 4..7 out of the way: the 7 pages come from page 8's
     * block, and its one-page tail is then the lowest free block. */
    CHECK(page_claim((void *)(m + PG), 1, PAGE_KIND_USER));
    CHECK(page_claim((void *)(m + 4 * PG), 4, PAGE_KIND_USER));
    uint8_t *p = page_alloc(7, PG, PAGE_KIND_USER, &z);
    CHECK_EQ((uintptr_t)p, m + 8 * PG);
    CHECK(z && all_bytes(p, 7 * PG, 0));
    /* The tail of p's block kept the flag. */
    uint8_t *q = page_alloc(1, PG, PAGE_KIND_USER, &z);
    CHECK_EQ(q, p + 7 * PG);
    CHECK(z && all_bytes(q, PG, 0));
    /* Freed pages are not zero. */
    memset(q, 0xAA, PG);
    page_free(q, 1);
    uint8_t *r = page_alloc(1, PG, PAGE_KIND_USER, &z);
    CHECK_EQ(r, q);
    CHECK(!z);

    /* Every other page of the zeroed region comes out zero and says so;
     * the other region never claims zero. */
    size_t clean = 0;
    for (uint8_t *u; (u = page_alloc(1, PG, PAGE_KIND_USER, &z)) != NULL;) {
        if ((uintptr_t)u - m >= 256 * PG) {
            CHECK(!z);
            continue;
        }
        CHECK(z);
        CHECK(all_bytes(u, PG, 0));
        clean++;
    }
    CHECK_EQ(clean, 256 - 1 - 2 - 1 - 4 - 7 - 1); /* less meta, t, the claims, p, q */
    CHECK_PAGES();
}

/* 64 GiB in one region: metadata stays small (14 bits a page in a zeroed
 * region: the bitmap, a kind byte, the zero bit, the order maps, about
 * 2 bits with their summaries, and an aux byte per 4 pages; 449 KiB per
 * GiB). */
static void region_64gib(void)
{
    /* Aligned to its size (orders are absolute: the same layout every run).
     * valgrind's address-space manager refuses a mapping this big: there
     * the largest size that maps is used, and said so. */
    size_t bytes = 64 * GiB;
    void *raw = MAP_FAILED;
    for (; bytes >= GiB; bytes /= 2) {
        raw = mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (raw != MAP_FAILED)
            break;
    }
    CHECK(raw != MAP_FAILED);
    if (bytes != 64 * GiB)
        printf("cannot map 64 GiB here: using %zu GiB\n", bytes / GiB);
    uintptr_t m = ((uintptr_t)raw + bytes - 1) & ~(uintptr_t)(bytes - 1);
    const size_t gib = bytes / GiB;
    CHECK_EQ(page_add_region(m, m + bytes, HA_REGION_ZEROED), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    struct ha_stats s0 = pstats();
    CHECK_EQ(s0.bytes_total, bytes);
    size_t per_gib = s0.bytes_meta / gib;
    printf("SHOW page metadata: %zu bytes per GiB (%.4f%% of RAM), %zu GiB region\n", per_gib,
           100.0 * (double)s0.bytes_meta / (double)bytes, gib);
    CHECK(per_gib <= 456 * KiB);
    CHECK_EQ(s0.pages_total, bytes / PG - s0.bytes_meta / PG);
    CHECK_EQ(s0.pages_largest_run, s0.pages_total);

    bool z;
    void *a = page_alloc(1, PG, PAGE_KIND_USER, &z);
    CHECK(a && z);
    void *g = page_alloc(GiB / PG, GiB, PAGE_KIND_USER, &z);
    CHECK(g && z && (uintptr_t)g % GiB == 0);
    const size_t hpages = bytes / 4 / PG + 1; /* one page more than a power of two */
    void *h = page_alloc(hpages, PG, PAGE_KIND_USER, &z);
    CHECK(h && z);
    CHECK(page_validate(h, hpages, PAGE_KIND_USER) == FAULT_NONE);
    CHECK_EQ(pstats().pages_used, 1 + GiB / PG + hpages);
    CHECK_PAGES();
    page_free(g, GiB / PG);
    page_free(h, hpages);
    page_free(a, 1);
    struct ha_stats s1 = pstats();
    CHECK_EQ(s1.pages_free, s0.pages_free);
    CHECK_EQ(s1.pages_largest_run, s0.pages_largest_run);
    CHECK_PAGES();
}

/* Random alloc / free / sub-run free / claim against a shadow of every page. */
struct live_run {
    uintptr_t p;
    size_t count;
    enum page_kind kind;
};

static void random_one_seed(uint64_t seed, size_t ops)
{
    harness_seed_announce("page_random", seed);
    struct harness_rng rng;
    harness_rng_seed(&rng, seed);

    /* Two regions with an unmapped hole between them, unaligned bounds, a
     * reserve and an early range inside. */
    /* Aligned to its size, so that the buddy layout (orders are absolute)
     * and with it every result is the same on every run. */
    const size_t npages = 4096;
    uintptr_t m = map_pages(npages, npages * PG);
    CHECK_EQ(munmap((void *)(m + 2500 * PG), 100 * PG), 0);
    page_set_early_range(m + 3000 * PG, m + 3064 * PG);
    CHECK_EQ(page_add_region(m + 17, m + 2500 * PG, 0), HA_OK);
    CHECK_EQ(page_add_region(m + 2600 * PG, m + npages * PG - 5, HA_REGION_ZEROED), HA_OK);
    CHECK_EQ(page_reserve(m + 1000 * PG, m + 1013 * PG), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    struct ha_stats s0 = pstats();
    struct shadow sh;
    shadow_init(&sh, m, npages);

    size_t cap = 4096, nlive = 0;
    struct live_run *live = calloc(cap, sizeof *live);
    CHECK(live != NULL);
    size_t allocs = 0, fails = 0, frees = 0, claims = 0;
    for (size_t op = 0; op < ops; op++) {
        uint64_t dice = harness_rng_below(&rng, 100);
        if (dice < 50 || nlive == 0) {
            uint64_t c = harness_rng_below(&rng, 100);
            size_t count = c < 70   ? 1 + harness_rng_below(&rng, 8)
                           : c < 95 ? 1 + harness_rng_below(&rng, 64)
                                    : 1 + harness_rng_below(&rng, 600);
            size_t align = PG << (harness_rng_below(&rng, 4) == 0 ? harness_rng_below(&rng, 7) : 0);
            enum page_kind kind = (enum page_kind)harness_rng_below(&rng, 3);
            bool z;
            void *p = page_alloc(count, align, kind, &z);
            if (!p) {
                if (shadow_has_run(&sh, count, align)) {
                    fprintf(stderr, "op %zu: %zu pages at %zu not found but free\n", op,
                            count, align);
                    exit(1);
                }
                fails++;
                continue;
            }
            CHECK_EQ((uintptr_t)p % align, 0);
            shadow_move(&sh, (uintptr_t)p, count, SH_FREE, SH_USED);
            CHECK_EQ(page_kind_of((uintptr_t)p + (count - 1) * PG), kind);
            if (nlive == cap) {
                cap *= 2;
                live = realloc(live, cap * sizeof *live);
                CHECK(live != NULL);
            }
            live[nlive++] = (struct live_run){ (uintptr_t)p, count, kind };
            allocs++;
        } else if (dice < 92) {
            size_t k = harness_rng_below(&rng, nlive);
            struct live_run r = live[k];
            CHECK_EQ(page_validate((void *)r.p, r.count, r.kind), FAULT_NONE);
            /* Whole run, or a sub-run that leaves up to two live pieces. */
            size_t off = 0, len = r.count;
            if (r.count > 1 && harness_rng_below(&rng, 3) == 0) {
                off = harness_rng_below(&rng, r.count);
                len = 1 + harness_rng_below(&rng, r.count - off);
            }
            page_free((void *)(r.p + off * PG), len);
            shadow_move(&sh, r.p + off * PG, len, SH_USED, SH_FREE);
            live[k] = live[--nlive];
            if (off)
                live[nlive++] = (struct live_run){ r.p, off, r.kind };
            if (off + len < r.count)
                live[nlive++] = (struct live_run){ r.p + (off + len) * PG, r.count - off - len,
                                                   r.kind };
            frees++;
        } else {
            /* Claim a random range: must succeed exactly when all of it is free. */
            size_t i = harness_rng_below(&rng, npages);
            size_t count = 1 + harness_rng_below(&rng, 16);
            bool expect = i + count <= npages;
            for (size_t j = i; expect && j < i + count; j++)
                expect = sh.st[j] == SH_FREE;
            bool got = page_claim((void *)(m + i * PG), count, PAGE_KIND_ARENA);
            CHECK_EQ(got, expect);
            if (got) {
                shadow_move(&sh, m + i * PG, count, SH_FREE, SH_USED);
                live[nlive++] = (struct live_run){ m + i * PG, count, PAGE_KIND_ARENA };
                claims++;
            }
        }
        if (nlive + 2 >= cap) {
            cap *= 2;
            live = realloc(live, cap * sizeof *live);
            CHECK(live != NULL);
        }
        if (op % 256 == 0)
            CHECK_PAGES();
    }
    CHECK_PAGES();
    struct ha_stats s1 = pstats();
    size_t used = 0;
    for (size_t i = 0; i < nlive; i++)
        used += live[i].count;
    CHECK_EQ(s1.pages_used, used);
    CHECK_EQ(s1.pages_free + s1.pages_used, s0.pages_free);
    for (size_t i = 0; i < nlive; i++)
        page_free((void *)live[i].p, live[i].count);
    struct ha_stats s2 = pstats();
    CHECK_EQ(s2.pages_free, s0.pages_free);
    CHECK_EQ(s2.pages_used, 0);
    CHECK_EQ(s2.pages_largest_run, s0.pages_largest_run);
    CHECK_PAGES();
    printf("seed 0x%llx: %zu ops, %zu allocs (%zu failed, each checked), %zu frees, %zu claims, "
           "peak %zu pages\n",
           (unsigned long long)seed, ops, allocs, fails, frees, claims, s2.pages_peak);
    free(live);
    free(sh.st);
}

static void random_vs_shadow_1(void) { random_one_seed(0x9A6E0001, harness_scale(30000)); }
static void random_vs_shadow_2(void) { random_one_seed(0x9A6E0002, harness_scale(30000)); }
static void random_vs_shadow_3(void) { random_one_seed(0xC0FFEE, harness_scale(30000)); }

/* Four threads allocating and freeing under the page lock while they look
 * up kinds without it; each thread checks that its runs stay its own. */
#define THREADS 4
static uintptr_t threads_base;

static void *thread_churn(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    harness_set_cpu(id);
    struct harness_rng rng;
    harness_rng_seed(&rng, 0x7E57ull + id);
    void *mine[32] = { 0 };
    size_t cnt[32] = { 0 };
    size_t rounds = harness_scale(20000);
    for (size_t i = 0; i < rounds; i++) {
        unsigned k = (unsigned)harness_rng_below(&rng, 32);
        if (mine[k]) {
            /* Still ours: the tag written at allocation is intact. */
            CHECK_EQ(*(volatile uint64_t *)mine[k], (uint64_t)id << 32 | k);
            CHECK_EQ(page_kind_of((uintptr_t)mine[k]), PAGE_KIND_SLAB);
            CHECK(page_is_allocated((uintptr_t)mine[k] + (cnt[k] - 1) * PG));
            page_free(mine[k], cnt[k]);
            mine[k] = NULL;
        } else {
            cnt[k] = 1 + harness_rng_below(&rng, 4);
            mine[k] = page_alloc(cnt[k], PG, PAGE_KIND_SLAB, NULL);
            CHECK(mine[k] != NULL);
            *(volatile uint64_t *)mine[k] = (uint64_t)id << 32 | k;
        }
    }
    for (unsigned k = 0; k < 32; k++)
        if (mine[k])
            page_free(mine[k], cnt[k]);
    return NULL;
}

static void threads_share_the_lock(void)
{
    threads_base = map_pages(2048, PG);
    CHECK_EQ(page_add_region(threads_base, threads_base + 2048 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    struct ha_stats s0 = pstats();
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, thread_churn, (void *)(uintptr_t)i), 0);
    for (unsigned i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    struct ha_stats s1 = pstats();
    CHECK_EQ(s1.pages_free, s0.pages_free);
    CHECK_EQ(s1.pages_largest_run, s0.pages_largest_run);
    CHECK_PAGES();
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Not a pass criterion: prints what the hot operations cost on this host. */
static void timing(void)
{
    uintptr_t m = map_pages(65536, MiB);
    CHECK_EQ(page_add_region(m, m + 65536 * PG, 0), HA_OK);
    CHECK_EQ(page_start(), HA_OK);
    enum { N = 4096 };
    static void *v[N];
    size_t rounds = harness_scale(50);
    for (size_t count = 1; count <= 5; count += 4) {
        double t0 = now_ns();
        for (size_t r = 0; r < rounds; r++) {
            for (size_t i = 0; i < N; i++)
                v[i] = page_alloc(count, PG, PAGE_KIND_USER, NULL);
            for (size_t i = 0; i < N; i++)
                page_free(v[(i * 2654435761u) % N], count);
        }
        double per = (now_ns() - t0) / (double)(rounds * N);
        printf("page alloc+free of %zu page%s: %.0f ns (4096 live, freed in scattered order)\n",
               count, count > 1 ? "s" : "", per);
    }
    double t0 = now_ns();
    size_t hits = 0;
    for (size_t i = 0; i < rounds * N; i++)
        hits += page_kind_of(m + (i % 65536) * PG) != PAGE_KIND_NONE;
    printf("page_kind_of: %.1f ns\n", (now_ns() - t0) / (double)(rounds * N));
    CHECK_EQ(hits, rounds * N);
    CHECK_PAGES();
}

int main(void)
{
    run_isolated("region_bounds_rounded_inward", region_bounds_rounded_inward);
    run_isolated("add_region_errors", add_region_errors);
    run_isolated("multiple_regions", multiple_regions);
    run_isolated("reserves", reserves);
    run_isolated("early_range_then_released", early_range_then_released);
    run_isolated("early_range_below_a_region", early_range_below_a_region);
    run_isolated("early_range_above_a_region", early_range_above_a_region);
    run_isolated("early_range_apart_from_a_region", early_range_apart_from_a_region);
    run_isolated("counts_and_alignments", counts_and_alignments);
    run_isolated("tail_give_back", tail_give_back);
    run_isolated("free_merges_past_the_run", free_merges_past_the_run);
    run_isolated("fragmentation_fallback", fragmentation_fallback);
    run_isolated("claim", claim);
    run_isolated("validate_faults", validate_faults);
    run_isolated("validate_every_place", validate_every_place);
    run_isolated("zero_tracking", zero_tracking);
    run_isolated("region_64gib", region_64gib);
    run_isolated("random_vs_shadow_1", random_vs_shadow_1);
    run_isolated("random_vs_shadow_2", random_vs_shadow_2);
    run_isolated("random_vs_shadow_3", random_vs_shadow_3);
    run_isolated("threads_share_the_lock", threads_share_the_lock);
    run_isolated("timing", timing);
    return harness_done();
}
