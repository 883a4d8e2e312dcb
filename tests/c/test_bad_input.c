/*
 * Bad input is reported through ha_platform_fatal with a message naming the
 * fault, before anything changes: every scenario runs twice, once for the
 * message and once with HARNESS_CHECK_ON_FATAL so that the fatal hook runs
 * ha_check() and must print "heap intact".
 *
 * Every scenario first does a little valid work so that the structures the
 * check walks are populated.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

#define SMALL 48
#define LARGE (1 * MiB)
/* The mid tier: TLSF in a 32 MiB heap; run again (main) as a big slab
 * class in a 256 MiB heap, where slab.c serves 8..64 KiB from 256 KiB
 * chunks, with every such block past the first 64 KiB of its chunk (its
 * header is then found by a second look, at the 256 KiB boundary). */
static size_t mid_size = 10 * KiB;
static size_t heap_bytes = 32 * MiB;
static bool mid_far;
#define MID mid_size

static char *heap_base;

static void setup(void)
{
    heap_base = heap_setup(heap_bytes);
    /* Live neighbours in every tier, so a bad free has something to damage. */
    static void *keep[8];
    keep[0] = ha_alloc(SMALL, 8);
    keep[1] = ha_alloc(SMALL, 8);
    keep[2] = ha_alloc(MID, 16);
    keep[3] = ha_alloc(LARGE, 16);
    keep[4] = ha_alloc_pages(3, 0);
    for (int i = 0; i < 5; i++)
        CHECK(keep[i] != NULL);
    CHECK_HEAP();
}

static void *live(size_t size)
{
    for (;;) {
        void *p = ha_alloc(size, 16);
        CHECK(p != NULL);
        if (!mid_far || size != mid_size || (uintptr_t)p % (256 * KiB) >= 64 * KiB)
            return p; /* the others stay live: neighbours */
    }
}

/* ---- double free ---- */

static void double_free_small(void)
{
    setup();
    void *p = live(SMALL);
    ha_free(p);
    ha_free(p);
}

static void double_free_mid(void)
{
    setup();
    void *p = live(MID);
    ha_free(p);
    ha_free(p);
}

static void double_free_large(void)
{
    setup();
    void *p = live(LARGE);
    ha_free(p);
    ha_free(p);
}

static void double_free_sized_small(void)
{
    setup();
    void *p = live(SMALL);
    ha_free_sized(p, SMALL, 16);
    ha_free_sized(p, SMALL, 16);
}

/* The same through ha_free_sized_min_align, and blocks from
 * ha_alloc_min_align: the entry points without the alignment test keep
 * every other check. */
/* A block of `size` from ha_alloc_min_align, freed through
 * ha_free_sized_min_align as `first` and then as `second` bytes (0: once). */
static void min_align_free(size_t size, size_t first, size_t second)
{
    setup();
    void *p = ha_alloc_min_align(size);
    CHECK(p != NULL);
    ha_free_sized_min_align(p, first);
    if (second)
        ha_free_sized_min_align(p, second);
}

static void double_free_min_align_small(void) { min_align_free(SMALL, SMALL, SMALL); }
static void double_free_min_align_mid(void) { min_align_free(MID, MID, MID); }
static void min_align_wrong_size_small(void) { min_align_free(100, 5000, 0); }
static void min_align_wrong_size_mid(void) { min_align_free(MID, 50, 0); }

/* A block aligned beyond HA_MIN_ALIGN freed as if it were not. */
static void min_align_of_page_aligned_block(void)
{
    setup();
    void *p = ha_alloc(SMALL, 4096);
    CHECK(p != NULL);
    ha_free_sized_min_align(p, SMALL);
}

static void min_align_interior_small(void)
{
    setup();
    char *p = ha_alloc_min_align(SMALL);
    CHECK(p != NULL);
    ha_free_sized_min_align(p + 16, SMALL);
}

static void min_align_foreign(void)
{
    setup();
    static char not_ours[64];
    ha_free_sized_min_align(not_ours, 64);
}

static void double_free_early(void)
{
    char *base = harness_map(8 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_early_init(base, 256 * KiB), HA_OK);
    void *a = ha_alloc(200, 8), *b = ha_alloc(300, 8);
    CHECK(a && b);
    CHECK_EQ(ha_add_region(base + 256 * KiB, 8 * MiB - 256 * KiB), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    CHECK_HEAP();
    ha_free(a);
    ha_free(a);
}

static void double_free_early_last(void)
{
    char *base = harness_map(8 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_early_init(base, 256 * KiB), HA_OK);
    void *a = ha_alloc(200, 8), *b = ha_alloc(300, 8);
    CHECK(a && b);
    /* The most recent block: its space goes back to the bump pointer. */
    ha_free(b);
    ha_free(b);
}

static void double_free_pages(void)
{
    setup();
    void *p = ha_alloc_pages(4, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 4);
    ha_free_pages(p, 4);
}

static void double_free_pages_sub_run(void)
{
    setup();
    char *p = ha_alloc_pages(4, 0);
    CHECK(p != NULL);
    ha_free_pages(p + HA_PAGE_SIZE, 1);
    ha_free_pages(p, 4);
}

/* Single pages go through the freeing CPU's frame cache: a second free
 * must be caught whether it comes from the same CPU, another CPU, the byte
 * API, or a multi-page free of a run holding the cached frame. */
static void double_free_frame(void)
{
    setup();
    void *p = ha_alloc_pages(1, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
    ha_free_pages(p, 1);
}

static void double_free_frame_other_cpu(void)
{
    setup();
    void *p = ha_alloc_pages(1, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
    harness_set_cpu(1);
    ha_free_pages(p, 1);
}

static void double_free_frame_as_bytes(void)
{
    setup();
    void *p = ha_alloc_pages(1, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
    ha_free(p);
}

static void double_free_run_holding_cached_frame(void)
{
    setup();
    char *p = ha_alloc_pages(8, 0);
    CHECK(p != NULL);
    ha_free_pages(p + 5 * HA_PAGE_SIZE, 1);
    ha_free_pages(p, 8);
}

/* The same, with the frame cached by another CPU and at the run's last
 * page (the kind map is read eight pages a word), or its first. */
static void double_free_run_holding_frame_of_other_cpu(void)
{
    setup();
    char *p = ha_alloc_pages(12, 0);
    CHECK(p != NULL);
    harness_set_cpu(1);
    ha_free_pages(p + 11 * HA_PAGE_SIZE, 1);
    harness_set_cpu(0);
    ha_free_pages(p, 12);
}

static void double_free_run_starting_at_cached_frame(void)
{
    setup();
    char *p = ha_alloc_pages(9, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
    ha_free_pages(p, 9);
}

/* A cached frame handed to the byte API's other calls. */
static void realloc_of_cached_frame(void)
{
    setup();
    void *p = ha_alloc_pages(1, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
    (void)ha_realloc(p, 100, 8);
}

static void usable_size_of_cached_frame(void)
{
    setup();
    void *p = ha_alloc_pages(1, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
    (void)ha_usable_size(p);
}

/* The frame tag a cached page holds is checked when the page leaves the
 * cache: a write there after the free is reported (not a heap-intact
 * case: ha_check reports the damaged frame too). */
static void write_after_free_frame(void)
{
    setup();
    uint64_t *p = ha_alloc_pages(1, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
    memset(p, 0x5A, HA_PAGE_SIZE);
    (void)ha_alloc_pages(1, 0);
}

/* A mid block goes back to the heap of the CPU that allocated it: freed
 * twice from another CPU, it is still a double free. */
static void double_free_mid_other_cpu(void)
{
    setup();
    void *p = live(MID);
    harness_set_cpu(1);
    ha_free(p);
    harness_set_cpu(2);
    ha_free(p);
}

/* Two CPUs free one block at the same instant: one free wins, the other
 * is reported, and the heap is intact (the block is cached once).  Many
 * rounds, each on a fresh block, so that the two frees really do meet;
 * the first round already must report. */
struct racer {
    unsigned cpu;
    void *_Atomic *slot;
    atomic_int *go;
    bool pages;
};

static void *race_free(void *arg)
{
    struct racer *r = arg;
    harness_set_cpu(r->cpu);
    while (!atomic_load(r->go))
        ;
    void *p = atomic_load(r->slot);
    if (r->pages)
        ha_free_pages(p, 1);
    else
        ha_free(p);
    return NULL;
}

static void racing_double_free(size_t size, bool pages)
{
    setup();
    for (int round = 0; round < 1000; round++) {
        void *_Atomic slot = pages ? ha_alloc_pages(1, 0) : ha_alloc(size, 16);
        CHECK(atomic_load(&slot) != NULL);
        atomic_int go = 0;
        struct racer r[2] = { { 1, &slot, &go, pages }, { 2, &slot, &go, pages } };
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            CHECK(pthread_create(&t[i], NULL, race_free, &r[i]) == 0);
        atomic_store(&go, 1);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
    }
}

static void racing_double_free_small(void) { racing_double_free(SMALL, false); }
static void racing_double_free_mid(void) { racing_double_free(MID, false); }
static void racing_double_free_frame(void) { racing_double_free(0, true); }

/* ---- never handed out ---- */

static char static_buf[256] __attribute__((aligned(64)));

static void free_stack_address(void)
{
    setup();
    char buf[256] __attribute__((aligned(64)));
    memset(buf, 0, sizeof buf);
    ha_free(buf + 64);
}

static void free_static_address(void)
{
    setup();
    ha_free(static_buf + 64);
}

static void free_outside_regions(void)
{
    setup();
    char *other = harness_map(1 * MiB, HA_PAGE_SIZE);
    ha_free(other + 4 * HA_PAGE_SIZE);
}

static void usable_size_of_stack_address(void)
{
    setup();
    char buf[64];
    memset(buf, 0, sizeof buf);
    (void)ha_usable_size(buf);
}

/* ---- interior pointers ---- */

static void interior_small(void)
{
    setup();
    char *p = live(SMALL);
    ha_free(p + 16);
}

/* ha_realloc's slab fast path looks the pointer up as a free does. */
static void realloc_interior_small(void)
{
    setup();
    char *p = live(SMALL);
    ha_realloc(p + 16, 200, 16);
}

static void realloc_interior_mid(void)
{
    setup();
    char *p = live(MID);
    ha_realloc(p + 64, 20000, 16);
}

static void interior_mid(void)
{
    setup();
    char *p = live(MID);
    ha_free(p + 64);
}

static void interior_large(void)
{
    setup();
    char *p = live(LARGE);
    ha_free(p + 4 * HA_PAGE_SIZE);
}

static void interior_large_unaligned(void)
{
    setup();
    char *p = live(LARGE);
    ha_free(p + 8);
}

static void interior_mid_unaligned(void)
{
    setup();
    char *p = live(MID);
    ha_free(p + 1);
}

/* ---- byte calls on pages and page calls on bytes ---- */

static void free_of_pages(void)
{
    setup();
    void *p = ha_alloc_pages(2, 0);
    CHECK(p != NULL);
    ha_free(p);
}

static void free_sized_of_pages(void)
{
    setup();
    void *p = ha_alloc_pages(1, 0);
    CHECK(p != NULL);
    ha_free_sized(p, HA_PAGE_SIZE, HA_PAGE_SIZE);
}

static void free_pages_of_large_block(void)
{
    setup();
    void *p = ha_alloc(LARGE, HA_PAGE_SIZE);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
}

static void free_pages_of_mid_block(void)
{
    setup();
    void *p = ha_alloc(MID, HA_PAGE_SIZE);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
}

static void free_pages_of_small_block(void)
{
    setup();
    void *p = ha_alloc(SMALL, 8);
    CHECK(p != NULL);
    /* The slab page that holds the block. */
    ha_free_pages((void *)((uintptr_t)p & ~(uintptr_t)(HA_PAGE_SIZE - 1)), 1);
}

static void free_pages_never_allocated(void)
{
    setup();
    /* A region added now is all free pages; take one from its middle. */
    char *more = harness_map(4 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_add_region(more, 4 * MiB), HA_OK);
    CHECK_HEAP();
    ha_free_pages(more + 2 * MiB, 1);
}

static void free_pages_unaligned(void)
{
    setup();
    char *p = ha_alloc_pages(2, 0);
    CHECK(p != NULL);
    ha_free_pages(p + 100, 1);
}

static void free_pages_beyond_run(void)
{
    setup();
    /* Where two runs land is the allocator's choice: one run of four,
     * its last two given back, leaves a run of two with free pages after
     * it. */
    char *p = ha_alloc_pages(4, 0);
    CHECK(p != NULL);
    ha_free_pages(p + 2 * HA_PAGE_SIZE, 2);
    /* p's two pages and then two that are free now. */
    ha_free_pages(p, 4);
}

static void free_pages_foreign(void)
{
    setup();
    char *other = harness_map(1 * MiB, HA_PAGE_SIZE);
    ha_free_pages(other, 1);
}

/* ---- sized free that does not match ---- */

static void *live_not_page_aligned(size_t size, size_t align)
{
    for (;;) {
        void *p = ha_alloc(size, align);
        CHECK(p != NULL);
        if (!is_aligned(p, 4096))
            return p;
    }
}

static void sized_wrong_size_small(void)
{
    setup();
    void *p = live(100);
    ha_free_sized(p, 5000, 16);
}

static void sized_wrong_size_mid(void)
{
    setup();
    void *p = live(MID);
    ha_free_sized(p, 50, 16);
}

static void sized_wrong_size_large(void)
{
    setup();
    void *p = live(LARGE);
    ha_free_sized(p, 10 * KiB, 16);
}

static void sized_wrong_size_larger(void)
{
    setup();
    void *p = live(LARGE);
    ha_free_sized(p, 4 * LARGE, 16);
}

static void sized_wrong_align_small(void)
{
    setup();
    void *p = live_not_page_aligned(100, 8);
    ha_free_sized(p, 100, 4096);
}

static void sized_wrong_align_mid(void)
{
    setup();
    void *p = live_not_page_aligned(MID, 16);
    ha_free_sized(p, MID, 4096);
}

/* ---- use of a freed pointer ---- */

static void realloc_freed_small(void)
{
    setup();
    void *p = live(SMALL);
    ha_free(p);
    ha_realloc(p, 200, 16);
}

static void realloc_freed_mid(void)
{
    setup();
    void *p = live(MID);
    ha_free(p);
    ha_realloc(p, 20000, 16);
}

static void realloc_freed_large(void)
{
    setup();
    void *p = live(LARGE);
    ha_free(p);
    ha_realloc(p, 2 * LARGE, 16);
}

static void usable_size_freed_small(void)
{
    setup();
    void *p = live(SMALL);
    ha_free(p);
    (void)ha_usable_size(p);
}

static void usable_size_freed_mid(void)
{
    setup();
    void *p = live(MID);
    ha_free(p);
    (void)ha_usable_size(p);
}

static void realloc_of_pages(void)
{
    setup();
    void *p = ha_alloc_pages(1, 0);
    CHECK(p != NULL);
    ha_realloc(p, 100, 16);
}

#define DF "double free"
#define DF_OR_NOT_LIVE "double free|not a live"
#define INTERIOR "interior pointer|not a live block"

int main(void)
{
    expect_fatal_intact("double_free_small", double_free_small, DF);
    expect_fatal_intact("double_free_mid", double_free_mid, DF);
    expect_fatal_intact("double_free_large", double_free_large, DF);
    expect_fatal_intact("double_free_sized_small", double_free_sized_small, DF);
    expect_fatal_intact("double_free_min_align_small", double_free_min_align_small, DF);
    expect_fatal_intact("double_free_min_align_mid", double_free_min_align_mid, DF);
    expect_fatal_intact("min_align_wrong_size_small", min_align_wrong_size_small, "size does not match");
    expect_fatal_intact("min_align_wrong_size_mid", min_align_wrong_size_mid, "size does not match");
    expect_fatal_intact("min_align_of_page_aligned_block", min_align_of_page_aligned_block,
                        "does not match");
    expect_fatal_intact("min_align_interior_small", min_align_interior_small, INTERIOR);
    expect_fatal_intact("min_align_foreign", min_align_foreign, "never handed out");
    expect_fatal_intact("double_free_early", double_free_early, DF);
    expect_fatal_intact("double_free_early_last", double_free_early_last, DF);
    expect_fatal_intact("double_free_pages", double_free_pages, DF_OR_NOT_LIVE);
    expect_fatal_intact("double_free_pages_sub_run", double_free_pages_sub_run, DF_OR_NOT_LIVE);
    expect_fatal_intact("double_free_mid_other_cpu", double_free_mid_other_cpu, DF);
    expect_fatal_intact("double_free_frame", double_free_frame, DF);
    expect_fatal_intact("double_free_frame_other_cpu", double_free_frame_other_cpu, DF);
    expect_fatal_intact("double_free_frame_as_bytes", double_free_frame_as_bytes, DF);
    expect_fatal_intact("double_free_run_holding_cached_frame", double_free_run_holding_cached_frame, DF);
    expect_fatal_intact("double_free_run_holding_frame_of_other_cpu", double_free_run_holding_frame_of_other_cpu, DF);
    expect_fatal_intact("double_free_run_starting_at_cached_frame", double_free_run_starting_at_cached_frame, DF);
    expect_fatal_intact("realloc_of_cached_frame", realloc_of_cached_frame, DF);
    expect_fatal_intact("usable_size_of_cached_frame", usable_size_of_cached_frame, DF);
    expect_fatal("write_after_free_frame", write_after_free_frame, "freed memory|use after free");
    expect_fatal_intact("racing_double_free_small", racing_double_free_small, DF);
    expect_fatal_intact("racing_double_free_mid", racing_double_free_mid, DF);
    expect_fatal_intact("racing_double_free_frame", racing_double_free_frame, DF);

    expect_fatal_intact("free_stack_address", free_stack_address, "never handed out");
    expect_fatal_intact("free_static_address", free_static_address, "never handed out");
    expect_fatal_intact("free_outside_regions", free_outside_regions, "never handed out");
    expect_fatal_intact("usable_size_of_stack_address", usable_size_of_stack_address,
                        "never handed out");

    expect_fatal_intact("interior_small", interior_small, INTERIOR);
    expect_fatal_intact("realloc_interior_small", realloc_interior_small, INTERIOR);
    expect_fatal_intact("realloc_interior_mid", realloc_interior_mid, INTERIOR);
    expect_fatal_intact("interior_mid", interior_mid, INTERIOR);
    expect_fatal_intact("interior_large", interior_large, INTERIOR);
    expect_fatal_intact("interior_large_unaligned", interior_large_unaligned, INTERIOR);
    expect_fatal_intact("interior_mid_unaligned", interior_mid_unaligned, INTERIOR);

    expect_fatal_intact("free_of_pages", free_of_pages, "pages from ha_alloc_pages");
    expect_fatal_intact("free_sized_of_pages", free_sized_of_pages, "pages from ha_alloc_pages");
    expect_fatal_intact("realloc_of_pages", realloc_of_pages, "pages from ha_alloc_pages");
    expect_fatal_intact("free_pages_of_large_block", free_pages_of_large_block,
                        "belongs to the byte allocator");
    expect_fatal_intact("free_pages_of_mid_block", free_pages_of_mid_block,
                        "belongs to the byte allocator");
    expect_fatal_intact("free_pages_of_small_block", free_pages_of_small_block,
                        "belongs to the byte allocator");
    expect_fatal_intact("free_pages_never_allocated", free_pages_never_allocated, DF_OR_NOT_LIVE);
    expect_fatal_intact("free_pages_beyond_run", free_pages_beyond_run,
                        "double free|not a live|not whole pages");
    expect_fatal_intact("free_pages_unaligned", free_pages_unaligned, "not whole pages");
    expect_fatal_intact("free_pages_foreign", free_pages_foreign, "never handed out");

    expect_fatal_intact("sized_wrong_size_small", sized_wrong_size_small, "size does not match");
    expect_fatal_intact("sized_wrong_size_mid", sized_wrong_size_mid, "size does not match");
    expect_fatal_intact("sized_wrong_size_large", sized_wrong_size_large, "size does not match");
    expect_fatal_intact("sized_wrong_size_larger", sized_wrong_size_larger, "size does not match");
    expect_fatal_intact("sized_wrong_align_small", sized_wrong_align_small,
                        "alignment does not match");
    expect_fatal_intact("sized_wrong_align_mid", sized_wrong_align_mid, "alignment does not match");

    expect_fatal_intact("realloc_freed_small", realloc_freed_small, DF_OR_NOT_LIVE);
    expect_fatal_intact("realloc_freed_mid", realloc_freed_mid, DF_OR_NOT_LIVE);
    expect_fatal_intact("realloc_freed_large", realloc_freed_large, DF_OR_NOT_LIVE);
    expect_fatal_intact("usable_size_freed_small", usable_size_freed_small, DF_OR_NOT_LIVE);
    expect_fatal_intact("usable_size_freed_mid", usable_size_freed_mid, DF_OR_NOT_LIVE);

    heap_bytes = 256 * MiB;
    mid_size = 20000;
    mid_far = true;
    expect_fatal_intact("double_free_bigclass", double_free_mid, DF);
    expect_fatal_intact("double_free_bigclass_other_cpu", double_free_mid_other_cpu, DF);
    expect_fatal_intact("racing_double_free_bigclass", racing_double_free_mid, DF);
    expect_fatal_intact("interior_bigclass", interior_mid, INTERIOR);
    expect_fatal_intact("interior_bigclass_unaligned", interior_mid_unaligned, INTERIOR);
    expect_fatal_intact("free_pages_of_bigclass_block", free_pages_of_mid_block, "belongs to the byte allocator");
    expect_fatal_intact("sized_wrong_size_bigclass", sized_wrong_size_mid, "size does not match");
    expect_fatal_intact("sized_wrong_align_bigclass", sized_wrong_align_mid, "alignment does not match");
    expect_fatal_intact("realloc_freed_bigclass", realloc_freed_mid, DF_OR_NOT_LIVE);
    expect_fatal_intact("usable_size_freed_bigclass", usable_size_freed_mid, DF_OR_NOT_LIVE);
    return harness_done();
}
