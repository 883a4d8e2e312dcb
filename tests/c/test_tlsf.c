/*
 * Unit tests of src/tlsf.c through its internal interface: the page
 * allocator is set up directly (page_add_region + page_start) and tlsf_*
 * called without the facade, so that every result is TLSF's own.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ha_internal.h"
#include "harness.h"
#include "testlib.h"

/* The unit under test with the facade's defaults: statistics count usable
 * sizes; a bad free is fatal, as ha_free makes it. */
static void *t_alloc(size_t size, size_t align, bool *zeroed)
{
    return tlsf_alloc(size, align, zeroed, 0);
}

static void t_free(void *p)
{
    enum ha_fault f = tlsf_free(p, 0, 0, false, 0);
    if (f != FAULT_NONE)
        ha_fault(f, p);
}

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* Shapes the tests rely on (tlsf.c's layout, seen from outside). */
#define ARENA_PAYLOAD_OFFSET 64                     /* arena + block header */
#define SHARED_ARENA_BYTES (256 * KiB)
#define SHARED_ARENA_PAYLOAD (SHARED_ARENA_BYTES - 80) /* headers + sentinel */
#define MIN_SPLIT 48                                /* header + minimum payload */
#define SPARE_ARENAS 2                              /* empty arenas a heap keeps */

static struct ha_stats pstats(void)
{
    struct ha_stats s;
    memset(&s, 0, sizeof s);
    uintptr_t irq = page_lock();
    page_stats_locked(&s);
    page_unlock(irq);
    return s;
}

static struct ha_stats tstats(void)
{
    struct ha_stats s;
    memset(&s, 0, sizeof s);
    stats_bytes_read(&s); /* the heaps' byte counters live in stats.c */
    tlsf_stats(&s);
    return s;
}

static void check_tlsf_at(const char *file, int line)
{
    if (tlsf_check() != 0) {
        fprintf(stderr, "%s:%d: tlsf_check failed: %s\n", file, line, ha_check_message());
        exit(1);
    }
}
#define CHECK_TLSF() check_tlsf_at(__FILE__, __LINE__)

/* A page allocator over fresh (zeroed) anonymous memory. */
static char *heap_base;
static size_t heap_bytes;

static void tlsf_heap(size_t bytes)
{
    heap_bytes = bytes;
    /* Buddy orders are relative to absolute addresses: a generous alignment
     * makes every run place blocks alike, so a seed replays exactly. */
    heap_base = harness_map(bytes, 64 * MiB);
    CHECK_EQ(page_add_region((uintptr_t)heap_base, (uintptr_t)heap_base + bytes, HA_REGION_ZEROED), 0);
    CHECK_EQ(page_start(), 0);
}

static void *alloc_ok(size_t size, size_t align)
{
    bool zeroed = true;
    void *p = t_alloc(size, align, &zeroed);
    CHECK(p != NULL);
    CHECK(is_aligned(p, align < 16 ? 16 : align));
    CHECK(tlsf_validate(p) == FAULT_NONE);
    CHECK(page_kind_of((uintptr_t)p) == PAGE_KIND_ARENA);
    size_t u = tlsf_usable(p);
    CHECK(u >= size);
    /* What the facade's sized free accepts: a mid block is its request
     * rounded up by less than a minimum split; a dedicated one to 16. */
    CHECK(u - size < 64);
    if (size > HA_MID_MAX || align > HA_PAGE_SIZE)
        CHECK(u - size < 16);
    else
        CHECK(!zeroed);
    return p;
}

/* ---------------------------------------------------------------- sizes */

static void sizes_mid_and_large(void)
{
    tlsf_heap(64 * MiB);
    struct ha_stats p0 = pstats();
    static const size_t sizes[] = {
        1025, 1031, 1040, 1100, 2000, 4095, 4096, 4097, 8191, 10000, 33333, 65536,
        100000, HA_MID_MAX - 1, HA_MID_MAX, HA_MID_MAX + 1, 200000, 262144, 1 * MiB + 1, 3 * MiB,
    };
    enum { N = sizeof sizes / sizeof sizes[0] };
    char *p[N];
    for (size_t i = 0; i < N; i++) {
        p[i] = alloc_ok(sizes[i], 16);
        pattern_fill(p[i], sizes[i], i);
        CHECK_TLSF();
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            CHECK(!ranges_overlap((uintptr_t)p[i], tlsf_usable(p[i]), (uintptr_t)p[j], tlsf_usable(p[j])));
    for (size_t i = 0; i < N; i++)
        CHECK_PATTERN(p[i], sizes[i], i);
    /* Dedicated arenas take no more than a page beyond request + headers. */
    struct ha_stats s = tstats();
    CHECK(s.bytes_meta > 0);
    for (size_t i = 0; i < N; i++) {
        t_free(p[i]);
        CHECK_TLSF();
    }
    s = tstats();
    CHECK(s.bytes_free % SHARED_ARENA_PAYLOAD == 0 && s.bytes_free <= SPARE_ARENAS * SHARED_ARENA_PAYLOAD);
    tlsf_trim();
    CHECK_TLSF();
    s = tstats();
    CHECK_EQ(s.bytes_free, 0);
    CHECK_EQ(s.bytes_meta, 0);
    CHECK_EQ(pstats().pages_used, p0.pages_used);
    CHECK_EQ(pstats().pages_free, p0.pages_free);
}

/* ----------------------------------------------------------- alignments */

static void alignments(void)
{
    tlsf_heap(64 * MiB);
    struct ha_stats p0 = pstats();
    enum { N = 64 };
    char *p[N];
    size_t sz[N];
    int n = 0;
    /* Shared: every alignment up to a page, sizes from one list to another. */
    for (size_t a = 16; a <= HA_PAGE_SIZE; a *= 2)
        for (size_t size = 1025; size <= 70000; size = size * 3 + 7) {
            CHECK(n < N);
            sz[n] = size;
            p[n] = alloc_ok(size, a);
            pattern_fill(p[n], size, (uint64_t)n);
            n++;
        }
    CHECK_TLSF();
    /* Alignment gaps became free blocks, not lost padding. */
    struct ha_stats s = tstats();
    CHECK(s.bytes_free > 0);
    for (int i = 0; i < n; i++)
        CHECK_PATTERN(p[i], sz[i], (uint64_t)i);
    for (int i = 0; i < n; i++)
        t_free(p[i]);
    CHECK_TLSF();
    tlsf_trim();
    CHECK_EQ(pstats().pages_used, p0.pages_used);

    /* Dedicated: alignments above a page; front pages go back at once. */
    for (size_t a = 8 * KiB; a <= 1 * MiB; a *= 2) {
        static const size_t dsz[] = { 1100, 5000, 70000, 300000 };
        for (size_t k = 0; k < 4; k++) {
            struct ha_stats before = pstats();
            char *q = alloc_ok(dsz[k], a);
            size_t pages = pstats().pages_used - before.pages_used;
            /* One page for the headers, the payload, the sentinel. */
            CHECK_EQ(pages, (HA_PAGE_SIZE + ((dsz[k] + 15) & ~(size_t)15) + 16 + HA_PAGE_SIZE - 1) / HA_PAGE_SIZE);
            pattern_fill(q, dsz[k], a + k);
            CHECK_TLSF();
            CHECK_PATTERN(q, dsz[k], a + k);
            t_free(q);
            CHECK_EQ(pstats().pages_used, before.pages_used);
        }
    }
    /* Large sizes with mid alignments: a dedicated arena, payload aligned. */
    for (size_t a = 16; a <= HA_PAGE_SIZE; a *= 4) {
        struct ha_stats before = pstats();
        char *q = alloc_ok(HA_MID_MAX + 100, a);
        size_t pages = pstats().pages_used - before.pages_used;
        CHECK(pages * HA_PAGE_SIZE <= HA_MID_MAX + 100 + HA_PAGE_SIZE + 80 + HA_PAGE_SIZE);
        t_free(q);
    }
    CHECK_TLSF();
    CHECK_EQ(pstats().pages_used, p0.pages_used);
}

/* ------------------------------------------------------ split and merge */

static void split_merge_restores_one_block(void)
{
    tlsf_heap(16 * MiB);
    struct ha_stats p0 = pstats();
    /* Every order of freeing four neighbours must end in one free block. */
    static const int orders[][4] = {
        { 0, 1, 2, 3 }, { 3, 2, 1, 0 }, { 1, 3, 0, 2 }, { 2, 0, 3, 1 }, { 1, 2, 0, 3 }, { 0, 3, 1, 2 },
    };
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        char *b[4];
        for (int i = 0; i < 4; i++) {
            b[i] = alloc_ok(3000 + (size_t)i * 1000, 16);
            if (i)
                CHECK(b[i] > b[i - 1]);
        }
        struct ha_stats s = tstats();
        CHECK_EQ(s.bytes_free, SHARED_ARENA_PAYLOAD - 4 * 16 - (3008 + 4000 + 5008 + 6000));
        for (int i = 0; i < 4; i++) {
            t_free(b[orders[o][i]]);
            CHECK_TLSF();
        }
        s = tstats();
        CHECK_EQ(s.bytes_free, SHARED_ARENA_PAYLOAD); /* one block: every header merged back */
        CHECK_EQ(s.bytes_meta, 80);
    }
    tlsf_trim();
    CHECK_EQ(tstats().bytes_meta, 0);
    CHECK_EQ(pstats().pages_used, p0.pages_used);
}

/* Empty arenas go back to the page allocator; SPARE_ARENAS are kept until
 * trim. */
static void empty_arenas_returned(void)
{
    tlsf_heap(32 * MiB);
    struct ha_stats p0 = pstats();
    enum { N = 12 };
    char *p[N];
    for (int i = 0; i < N; i++)
        p[i] = alloc_ok(100000, 16); /* two per arena */
    CHECK(pstats().pages_used >= p0.pages_used + 6 * 64);
    for (int i = 0; i < N; i++)
        t_free(p[i]);
    CHECK_TLSF();
    CHECK_EQ(pstats().pages_used, p0.pages_used + SPARE_ARENAS * 64);
    /* A kept arena serves the next request without the page allocator. */
    char *q = alloc_ok(5000, 64);
    CHECK_EQ(pstats().pages_used, p0.pages_used + SPARE_ARENAS * 64);
    t_free(q);
    tlsf_trim();
    CHECK_TLSF();
    CHECK_EQ(pstats().pages_used, p0.pages_used);
    CHECK_EQ(tstats().bytes_free, 0);
    tlsf_trim(); /* nothing left: a no-op */
    CHECK_TLSF();
}

/* ------------------------------------------------------ resize in place */

static void resize_shared(void)
{
    tlsf_heap(16 * MiB);
    char *a = alloc_ok(20000, 16);
    char *b = alloc_ok(20000, 16);
    char *c = alloc_ok(20000, 16);
    pattern_fill(a, 20000, 1);
    pattern_fill(c, 20000, 3);
    /* Shrink: the tail becomes free (and merges with nothing: b is used). */
    size_t free0 = tstats().bytes_free;
    CHECK(tlsf_resize_in_place(a, 5000));
    CHECK_EQ(tlsf_usable(a), 5008);
    CHECK_EQ(tstats().bytes_free, free0 + 20000 - 5008 - 16);
    CHECK_PATTERN(a, 5000, 1);
    CHECK_TLSF();
    /* Grow into the tail again. */
    CHECK(tlsf_resize_in_place(a, 20000));
    CHECK_EQ(tlsf_usable(a), 20000);
    CHECK_EQ(tstats().bytes_free, free0);
    CHECK_PATTERN(a, 5000, 1);
    CHECK_TLSF();
    /* Can't grow: next block is used.  Nothing changes. */
    CHECK(!tlsf_resize_in_place(a, 20001));
    CHECK_EQ(tlsf_usable(a), 20000);
    CHECK_TLSF();
    /* Free the neighbour: now a grows into it, keeping a remainder. */
    t_free(b);
    CHECK(tlsf_resize_in_place(a, 30000));
    CHECK(tlsf_usable(a) >= 30000 && tlsf_usable(a) < 30000 + MIN_SPLIT);
    CHECK_PATTERN(a, 5000, 1);
    CHECK_TLSF();
    /* Too big for the neighbour: false, nothing changed. */
    CHECK(!tlsf_resize_in_place(a, 60000));
    CHECK_TLSF();
    /* Exactly the neighbour's room (no remainder big enough to split). */
    CHECK(tlsf_resize_in_place(a, 40000 + 16 - 16));
    CHECK_EQ(tlsf_usable(a), 40016);
    CHECK_TLSF();
    /* Shrink with a free successor: the tail merges into it. */
    t_free(c);
    size_t f1 = tstats().bytes_free;
    CHECK(tlsf_resize_in_place(a, 2000));
    CHECK_EQ(tstats().bytes_free, f1 + 40016 - 2000);
    CHECK_TLSF();
    /* Shrink by less than a minimum block: in place, size kept. */
    CHECK(tlsf_resize_in_place(a, 1990));
    CHECK_EQ(tlsf_usable(a), 2000);
    CHECK(!tlsf_resize_in_place(a, SIZE_MAX));
    CHECK(!tlsf_resize_in_place(a, SIZE_MAX / 2));
    CHECK_EQ(tlsf_usable(a), 2000);
    t_free(a);
    CHECK_TLSF();
    CHECK_EQ(tstats().bytes_free, SHARED_ARENA_PAYLOAD);
}

static void resize_dedicated(void)
{
    tlsf_heap(32 * MiB);
    struct ha_stats p0 = pstats();
    char *p = alloc_ok(200000, 16);
    size_t pages = pstats().pages_used - p0.pages_used;
    CHECK_EQ(pages, (200000 + 64 + 16 + 4095) / 4096);
    pattern_fill(p, 200000, 7);
    /* Grow within the last page: no pages taken. */
    CHECK(tlsf_resize_in_place(p, 200000 + 64));
    CHECK_EQ(pstats().pages_used - p0.pages_used, pages);
    /* Grow by claiming the pages after the arena. */
    uintptr_t end = ((uintptr_t)p + 200064 + 16 + 4095) & ~(uintptr_t)4095;
    CHECK(!page_is_allocated(end));
    CHECK(tlsf_resize_in_place(p, 1 * MiB));
    CHECK_EQ(tlsf_usable(p), 1 * MiB);
    CHECK_EQ(pstats().pages_used - p0.pages_used, (1 * MiB + 80 + 4095) / 4096);
    CHECK(page_kind_of(end) == PAGE_KIND_ARENA);
    CHECK_PATTERN(p, 200000, 7);
    pattern_fill(p, 1 * MiB, 8);
    CHECK_TLSF();
    /* Shrink: whole tail pages go back. */
    CHECK(tlsf_resize_in_place(p, 150000));
    CHECK_EQ(tlsf_usable(p), 150000);
    CHECK_EQ(pstats().pages_used - p0.pages_used, (150000 + 80 + 4095) / 4096);
    CHECK_PATTERN(p, 150000, 8);
    CHECK_TLSF();
    /* Grow blocked by a used page right after the arena: false, unchanged. */
    uintptr_t next = ((uintptr_t)p + 150000 + 16 + 4095) & ~(uintptr_t)4095;
    CHECK(page_claim((void *)next, 1, PAGE_KIND_USER));
    CHECK(!tlsf_resize_in_place(p, 150000 + 4096));
    CHECK_EQ(tlsf_usable(p), 150000);
    CHECK_TLSF();
    page_free((void *)next, 1);
    t_free(p);
    CHECK_TLSF();
    CHECK_EQ(pstats().pages_used, p0.pages_used);
    CHECK_EQ(tstats().bytes_meta, 0);
}

/* ------------------------------------------------------------- validate */

static void validate_faults(void)
{
    tlsf_heap(16 * MiB);
    char *a = alloc_ok(3000, 16);
    char *b = alloc_ok(3000, 16);
    char *c = alloc_ok(3000, 16);
    char *d = alloc_ok(300000, 16);
    char *arena = a - ARENA_PAYLOAD_OFFSET; /* a is its arena's first block */
    CHECK(((uintptr_t)arena & 4095) == 0);

    /* Interior pointers, misaligned pointers, the arena header. */
    const char *bad[] = { a + 16, a + 32, a + 1, a + 8, a + 2992, a + 4096, b - 16, arena, arena + 16,
                          arena + 32, arena + 48, d + 16, d + 4096, d - 32 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(tlsf_validate(bad[i]), FAULT_NOT_ALLOCATED);
        CHECK_TLSF();
    }
    /* Past the last block of the arena: the sentinel and the free tail. */
    CHECK_EQ(tlsf_validate(arena + SHARED_ARENA_BYTES - 16), FAULT_NOT_ALLOCATED);
    CHECK_EQ(tlsf_validate(arena + SHARED_ARENA_BYTES), FAULT_NOT_ALLOCATED);
    CHECK_EQ(tlsf_validate(c + 3008 + 16), FAULT_DOUBLE_FREE); /* the free remainder's payload */

    /* Double free, plain and after the header was absorbed by a merge. */
    t_free(b);
    CHECK_EQ(tlsf_validate(b), FAULT_DOUBLE_FREE);
    CHECK_TLSF();
    t_free(a); /* merges with b: b's header is now inside a's free block */
    CHECK_EQ(tlsf_validate(a), FAULT_DOUBLE_FREE);
    CHECK_EQ(tlsf_validate(b), FAULT_DOUBLE_FREE);
    t_free(c); /* the whole arena free again */
    CHECK_EQ(tlsf_validate(c), FAULT_DOUBLE_FREE);
    CHECK_TLSF();
    CHECK_EQ(tlsf_validate(d), FAULT_NONE);
    t_free(d);
    CHECK(tlsf_validate(d) != FAULT_NONE); /* its pages are gone */
    CHECK_TLSF();
    /* Outside every region. */
    static char not_heap[64] __attribute__((aligned(16)));
    CHECK_EQ(tlsf_validate(not_heap + 16), FAULT_NOT_ALLOCATED);
    CHECK_EQ(tlsf_validate(NULL), FAULT_NOT_ALLOCATED);
}

static char *fault_block;

static void double_free_is_fatal(void)
{
    tlsf_heap(8 * MiB);
    fault_block = alloc_ok(5000, 16);
    (void)alloc_ok(5000, 16);
    t_free(fault_block);
    t_free(fault_block);
}

static void interior_free_is_fatal(void)
{
    tlsf_heap(8 * MiB);
    fault_block = alloc_ok(5000, 16);
    t_free(fault_block + 64);
}

/* ---------------------------------------------------------- zeroed flag */

static void zeroed_reporting(void)
{
    tlsf_heap(32 * MiB);
    bool z = false;
    char *p = t_alloc(500000, 16, &z);
    CHECK(p != NULL);
    CHECK(z); /* fresh pages of a zeroed region */
    CHECK(all_zero(p, 500000));
    char *q = t_alloc(20000, 8192, &z);
    CHECK(q != NULL && z);
    CHECK(all_zero(q, 20000));
    memset(p, 0xAB, 500000);
    t_free(p);
    /* Dirty pages may come back: never claim zero wrongly. */
    for (int i = 0; i < 4; i++) {
        char *r = t_alloc(500000 - (size_t)i * 4096, 16, &z);
        CHECK(r != NULL);
        if (z)
            CHECK(all_zero(r, 500000 - (size_t)i * 4096));
        memset(r, 0xCD, 1000);
        t_free(r);
    }
    /* Shared arenas never claim zero. */
    z = true;
    char *s = t_alloc(2000, 16, &z);
    CHECK(s != NULL && !z);
    t_free(s);
    t_free(q);
    CHECK_TLSF();
}

/* ------------------------------------------------------- huge requests */

static void huge_requests_fail_cleanly(void)
{
    tlsf_heap(8 * MiB);
    struct ha_stats p0 = pstats();
    static const size_t sizes[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, SIZE_MAX - 100000,
                                    SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX / 4, (size_t)1 << 40, 64 * MiB };
    static const size_t aligns[] = { 16, 4096, 8192, 1 * MiB, (size_t)1 << 40, (size_t)1 << 62 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++) {
            bool z = true;
            CHECK(t_alloc(sizes[i], aligns[j], &z) == NULL);
            CHECK(!z);
        }
    /* Fine sizes with impossible alignments. */
    CHECK(t_alloc(5000, (size_t)1 << 62, NULL) == NULL);
    CHECK(t_alloc(5000, 3000, NULL) == NULL); /* not a power of two */
    CHECK(t_alloc(5000, 0, NULL) == NULL);
    CHECK_TLSF();
    CHECK_EQ(pstats().pages_used, p0.pages_used);
    CHECK_EQ(tstats().bytes_meta, 0);
    /* The heap still works. */
    char *p = alloc_ok(5000, 16);
    t_free(p);
    CHECK_TLSF();
}

/* Running out of pages: NULL, and everything taken comes back. */
static void exhaustion(void)
{
    tlsf_heap(4 * MiB);
    struct ha_stats p0 = pstats();
    enum { N = 1000 };
    static char *p[N];
    int n = 0;
    while (n < N && (p[n] = t_alloc(30000, 16, NULL)) != NULL)
        n++;
    CHECK(n > 50 && n < N);
    CHECK(t_alloc(30000, 16, NULL) == NULL);
    CHECK(t_alloc(400000, 16, NULL) == NULL);
    CHECK_TLSF();
    for (int i = 0; i < n; i += 2)
        t_free(p[i]);
    for (int i = 1; i < n; i += 2)
        t_free(p[i]);
    tlsf_trim();
    CHECK_TLSF();
    CHECK_EQ(pstats().pages_used, p0.pages_used);
}

/* ------------------------------------------------ randomised with shadow */

struct live {
    char *p;
    size_t size;
    uint64_t id;
};

static bool big(size_t n) { return n > 16 * KiB; }

static void fill(const struct live *l)
{
    if (big(l->size))
        pattern_fill_sparse(l->p, l->size, l->id);
    else
        pattern_fill(l->p, l->size, l->id);
}

/* The first n bytes of l still hold what fill() wrote over l->size. */
static bool intact(const struct live *l, size_t n)
{
    if (!big(l->size))
        return pattern_find_bad(l->p, n, l->id) == n;
    for (size_t i = 0; i < n; i += 512)
        if ((uint8_t)l->p[i] != pattern_byte(l->id, i))
            return false;
    return n < l->size || (uint8_t)l->p[n - 1] == pattern_byte(l->id, n - 1);
}

static size_t random_size(struct harness_rng *r)
{
    uint64_t k = harness_rng_below(r, 100);
    if (k < 60)
        return 1025 + harness_rng_below(r, 8 * KiB);
    if (k < 90)
        return 1025 + harness_rng_below(r, HA_MID_MAX - 1024);
    return HA_MID_MAX + 1 + harness_rng_below(r, 600 * KiB);
}

static size_t random_align(struct harness_rng *r)
{
    uint64_t k = harness_rng_below(r, 100);
    if (k < 70)
        return 16;
    if (k < 95)
        return (size_t)32 << harness_rng_below(r, 8); /* 32 .. 4096 */
    return (size_t)8192 << harness_rng_below(r, 5);   /* 8 KiB .. 128 KiB */
}

static void random_run(uint64_t seed)
{
    enum { MAX_LIVE = 160 };
    static struct live live[MAX_LIVE];
    size_t nlive = 0;
    struct harness_rng r;
    harness_rng_seed(&r, seed);
    uint64_t ops = harness_scale(20000), next_id = 1;
    size_t allocs = 0, resized_in_place = 0, failures = 0;
    size_t peak_payload = 0, peak_pages = 0;
    struct ha_stats p0 = pstats();
    for (uint64_t op = 0; op < ops; op++) {
        uint64_t k = harness_rng_below(&r, 100);
        if (nlive < MAX_LIVE && (k < 45 || nlive == 0)) {
            size_t size = random_size(&r), align = random_align(&r);
            char *p = t_alloc(size, align, NULL);
            if (!p) {
                failures++;
                continue;
            }
            CHECK(is_aligned(p, align));
            size_t u = tlsf_usable(p);
            CHECK(u >= size);
            for (size_t i = 0; i < nlive; i++)
                if (ranges_overlap((uintptr_t)p, u, (uintptr_t)live[i].p, tlsf_usable(live[i].p))) {
                    fprintf(stderr, "overlap: new %p+%zu with %p+%zu at op %llu\n", (void *)p, u,
                            (void *)live[i].p, tlsf_usable(live[i].p), (unsigned long long)op);
                    exit(1);
                }
            live[nlive] = (struct live){ p, size, next_id++ };
            fill(&live[nlive]);
            nlive++;
            allocs++;
        } else if (k < 80) {
            size_t i = (size_t)harness_rng_below(&r, nlive);
            if (!intact(&live[i], live[i].size)) {
                fprintf(stderr, "block %p (size %zu) damaged at op %llu\n", (void *)live[i].p, live[i].size,
                        (unsigned long long)op);
                exit(1);
            }
            CHECK_EQ(tlsf_validate(live[i].p), FAULT_NONE);
            t_free(live[i].p);
            CHECK(tlsf_validate(live[i].p) != FAULT_NONE);
            live[i] = live[--nlive];
        } else {
            size_t i = (size_t)harness_rng_below(&r, nlive);
            size_t ns = harness_rng_below(&r, 2) ? live[i].size + harness_rng_below(&r, live[i].size)
                                                 : 1025 + harness_rng_below(&r, live[i].size);
            char *before = live[i].p;
            if (tlsf_resize_in_place(live[i].p, ns)) {
                size_t keep = ns < live[i].size ? ns : live[i].size;
                CHECK(tlsf_usable(before) >= ns);
                CHECK(intact(&live[i], keep));
                for (size_t j = 0; j < nlive; j++)
                    if (j != i)
                        CHECK(!ranges_overlap((uintptr_t)before, tlsf_usable(before), (uintptr_t)live[j].p,
                                              tlsf_usable(live[j].p)));
                live[i].size = ns;
                live[i].id = next_id++;
                fill(&live[i]);
                resized_in_place++;
            } else {
                CHECK(intact(&live[i], live[i].size));
            }
        }
        size_t payload = 0;
        for (size_t i = 0; i < nlive; i++)
            payload += live[i].size;
        if (payload > peak_payload)
            peak_payload = payload;
        size_t pu = pstats().pages_used - p0.pages_used;
        if (pu > peak_pages)
            peak_pages = pu;
        if (op % 128 == 0)
            CHECK_TLSF();
    }
    CHECK_TLSF();
    while (nlive) {
        CHECK(intact(&live[nlive - 1], live[nlive - 1].size));
        t_free(live[--nlive].p);
    }
    tlsf_trim();
    CHECK_TLSF();
    CHECK_EQ(pstats().pages_used, p0.pages_used);
    CHECK_EQ(tstats().bytes_meta, 0);
    printf("  %llu ops: %zu allocs, %zu in-place resizes, %zu failed; peak live %zu KiB in %zu KiB of pages\n",
           (unsigned long long)ops, allocs, resized_in_place, failures, peak_payload / KiB,
           peak_pages * HA_PAGE_SIZE / KiB);
}

static void randomised_shadow(void)
{
    tlsf_heap(48 * MiB);
    static const uint64_t seeds[] = { 0x7115F0001ull, 0xC0FFEE42ull, 0x5EED0003ull };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        harness_seed_announce("tlsf-random", seeds[i]);
        random_run(seeds[i]);
    }
}


/* ------------------------------------------------- the checker catches */

/* Damage one word, expect tlsf_check to name it, repair, expect clean. */
static void expect_check_catches(uint64_t *word, uint64_t bad, const char *what)
{
    uint64_t saved = *word;
    *word = bad;
    (void)ha_check(); /* forgets the last message (no phase yet: checks nothing) */
    if (tlsf_check() == 0) {
        fprintf(stderr, "tlsf_check missed: %s\n", what);
        exit(1);
    }
    printf("  %s -> %s\n", what, ha_check_message());
    *word = saved;
    CHECK_TLSF();
}

static void checker_catches_damage(void)
{
    tlsf_heap(16 * MiB);
    char *a = alloc_ok(3000, 16);
    char *b = alloc_ok(3000, 16);
    char *c = alloc_ok(3000, 16);
    t_free(b);
    uint64_t *bh = (uint64_t *)(void *)(b - 16); /* b's header: size, check */
    uint64_t *ch = (uint64_t *)(void *)(c - 16);
    uint64_t *ah = (uint64_t *)(void *)(a - 16);
    char *arena = a - ARENA_PAYLOAD_OFFSET;
    expect_check_catches(&bh[0], bh[0] + 16, "free block size changed");
    expect_check_catches(&bh[1], bh[1] ^ 1, "free block check word");
    expect_check_catches(&ch[0], ch[0] & ~(uint64_t)2, "prev-free flag cleared (check word kept)");
    expect_check_catches(&ah[1], 0, "used block check word");
    expect_check_catches((uint64_t *)(void *)(b + 3008 - 8), 0, "free block footer");
    expect_check_catches((uint64_t *)(void *)b, (uint64_t)(uintptr_t)c, "free list link");
    expect_check_catches((uint64_t *)(void *)arena, 0, "arena magic");
    expect_check_catches((uint64_t *)(void *)(arena + 16), 4096, "arena size");
    t_free(a);
    t_free(c);
    CHECK_TLSF();
}

#if HA_CHECKED
/* Checked build: a write into freed memory is found by the checker and by
 * the allocation that hands that memory out again. */
static void use_after_free_checker(void)
{
    tlsf_heap(16 * MiB);
    char *a = alloc_ok(3000, 16);
    char *b = alloc_ok(3000, 16);
    (void)alloc_ok(3000, 16);
    t_free(b);
    CHECK_TLSF();
    b[100] = 0x42;
    (void)ha_check();
    CHECK(tlsf_check() != 0);
    printf("  %s\n", ha_check_message());
    b[100] = (char)HA_POISON_FREE;
    t_free(a); /* merge: a's header stays inside, marked free */
    CHECK_TLSF();
}

static void use_after_free_on_alloc(void)
{
    tlsf_heap(16 * MiB);
    (void)alloc_ok(3000, 16);
    char *b = alloc_ok(3000, 16);
    (void)alloc_ok(3000, 16);
    t_free(b);
    b[2000] = 0x42;
    char *again = t_alloc(2900, 16, NULL); /* b's block is the best fit */
    fprintf(stderr, "not caught: %p (freed block %p)\n", (void *)again, (void *)b);
}
#endif

/* ---------------------------------------------------------------- threads */

static void *thread_churn(void *arg)
{
    unsigned cpu = (unsigned)(uintptr_t)arg;
    harness_set_cpu(cpu);
    struct harness_rng r;
    harness_rng_seed(&r, 0x7EAD0000ull + cpu);
    enum { K = 32 };
    struct live mine[K];
    memset(mine, 0, sizeof mine);
    uint64_t ops = harness_scale(5000);
    for (uint64_t op = 0; op < ops; op++) {
        struct live *l = &mine[harness_rng_below(&r, K)];
        if (l->p) {
            CHECK(intact(l, l->size));
            if (harness_rng_below(&r, 4) == 0 && tlsf_resize_in_place(l->p, l->size / 2 + 1025)) {
                l->size = l->size / 2 + 1025;
                l->id += 1000000;
                fill(l);
                continue;
            }
            t_free(l->p);
            l->p = NULL;
        } else {
            l->size = harness_rng_below(&r, 10) ? 1025 + harness_rng_below(&r, 20000) : 200000;
            l->p = t_alloc(l->size, (size_t)16 << harness_rng_below(&r, 4), NULL);
            CHECK(l->p != NULL);
            l->id = op * 8 + cpu;
            fill(l);
        }
    }
    for (int i = 0; i < K; i++)
        if (mine[i].p) {
            CHECK(intact(&mine[i], mine[i].size));
            t_free(mine[i].p);
        }
    return NULL;
}

static void threads(void)
{
    tlsf_heap(64 * MiB);
    struct ha_stats p0 = pstats();
    harness_seed_announce("tlsf-threads (base, plus cpu)", 0x7EAD0000ull);
    enum { T = 4 };
    pthread_t th[T];
    for (uintptr_t i = 0; i < T; i++)
        CHECK(pthread_create(&th[i], NULL, thread_churn, (void *)i) == 0);
    for (int i = 0; i < T; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    CHECK_TLSF();
    tlsf_trim();
    CHECK_EQ(pstats().pages_used, p0.pages_used);
}

/* Each CPU allocates from a heap of its own (arenas of its own), and a
 * block freed or resized on another CPU goes back to the heap that owns
 * its arena: the checker sees every arena on its owner's list, and all
 * pages come back. */
static void cross_cpu_heaps(void)
{
    tlsf_heap(64 * MiB);
    struct ha_stats p0 = pstats();
    enum { CPUS = 3, N = 200 };
    static char *p[CPUS][N];
    static size_t size[CPUS][N];
    struct harness_rng r;
    harness_seed_announce("tlsf-cross-cpu", 0xC505C9);
    harness_rng_seed(&r, 0xC505C9);
    for (unsigned c = 0; c < CPUS; c++) {
        harness_set_cpu(c);
        for (int i = 0; i < N; i++) {
            size[c][i] = harness_rng_below(&r, 8) ? 1025 + harness_rng_below(&r, 20000) : 300000;
            p[c][i] = alloc_ok(size[c][i], 16);
            memset(p[c][i], (int)(c * N + i), size[c][i]);
        }
    }
    /* No shared arena holds blocks of two CPUs. */
    for (unsigned c = 0; c < CPUS; c++)
        for (unsigned d = c + 1; d < CPUS; d++)
            for (int i = 0; i < N; i += 7)
                for (int j = 0; j < N; j += 7)
                    if (size[c][i] <= HA_MID_MAX && size[d][j] <= HA_MID_MAX)
                        CHECK((uintptr_t)p[c][i] / SHARED_ARENA_BYTES != (uintptr_t)p[d][j] / SHARED_ARENA_BYTES);
    CHECK_TLSF();
    /* Resize and free everything on the next CPU over. */
    for (unsigned c = 0; c < CPUS; c++) {
        harness_set_cpu((c + 1) % CPUS);
        for (int i = 0; i < N; i++) {
            unsigned char want = (unsigned char)(c * N + i);
            CHECK_EQ((unsigned char)p[c][i][0], want);
            CHECK_EQ((unsigned char)p[c][i][size[c][i] - 1], want);
            if (i % 3 == 0 && size[c][i] > 2048 && tlsf_resize_in_place(p[c][i], size[c][i] / 2))
                CHECK_EQ((unsigned char)p[c][i][size[c][i] / 2 - 1], want);
            t_free(p[c][i]);
        }
        CHECK_TLSF();
    }
    struct ha_stats t = tstats();
    CHECK_EQ(t.allocs, (uint64_t)CPUS * N);
    CHECK_EQ(t.frees, (uint64_t)CPUS * N);
    tlsf_trim();
    CHECK_TLSF();
    CHECK_EQ(pstats().pages_used, p0.pages_used);
    harness_set_cpu(0);
}

/* RAM can hold what an earlier boot left: here a shared arena header of
 * CPU 1's heap, valid for its address, lying in the first page of a large
 * block's arena of CPU 0, on a 256 KiB boundary.  Freeing that block must follow
 * the block's own header to its own arena, not the stale header below it.
 * (The stale header is made from a real one: magic and base are the only
 * fields that depend on the address.) */
static void stale_arena_header_is_not_followed(void)
{
    tlsf_heap(64 * MiB);
    harness_set_cpu(1);
    char *q = alloc_ok(5000, 16);
    uintptr_t old = (uintptr_t)q & ~(uintptr_t)(SHARED_ARENA_BYTES - 1);
    uint64_t hdr[6];
    memcpy(hdr, (void *)old, sizeof hdr);
    CHECK_EQ(hdr[1], old); /* base */
    t_free(q);
    tlsf_trim();
    harness_set_cpu(0);
    /* A dedicated arena whose block is page-aligned: its header sits at
     * the end of the page before the block, and the arena's first page
     * (on a 256 KiB boundary, where a shared arena would start) is a gap
     * that RAM fills with whatever was there. */
    char *d = alloc_ok(300 * KiB, HA_PAGE_SIZE);
    uintptr_t x = (uintptr_t)d - HA_PAGE_SIZE;
    CHECK(x % SHARED_ARENA_BYTES == 0);
    hdr[0] ^= old ^ x; /* magic: a key mixed with the address */
    hdr[1] = x;        /* base */
    memcpy((void *)x, hdr, sizeof hdr);
    t_free(d);
    CHECK_TLSF();
    tlsf_trim();
    CHECK_TLSF();
    CHECK_EQ(tstats().bytes_free, 0);
}

/* -------------------------------------------------------------- overhead */

/* Fill shared arenas with mid blocks of random sizes: how much of the pages
 * taken is payload, and how much metadata the blocks cost. */
static void overhead(void)
{
    tlsf_heap(48 * MiB);
    struct harness_rng r;
    uint64_t seed = 0x0E4E7EADull;
    harness_seed_announce("tlsf-overhead", seed);
    harness_rng_seed(&r, seed);
    struct ha_stats p0 = pstats();
    enum { N = 2000 };
    static char *p[N];
    size_t asked = 0, n = 0;
    while (n < (size_t)harness_scale(N)) {
        size_t size = 1025 + harness_rng_below(&r, 16 * KiB);
        p[n] = t_alloc(size, 16, NULL);
        CHECK(p[n] != NULL);
        asked += size;
        n++;
    }
    CHECK_TLSF();
    struct ha_stats t = tstats();
    size_t pages = pstats().pages_used - p0.pages_used;
    /* util: requested bytes over arena bytes; block_util leaves out the
     * free space still in the arenas (what headers and rounding cost). */
    double util = (double)asked / (double)(pages * HA_PAGE_SIZE);
    double block_util = (double)asked / (double)(pages * HA_PAGE_SIZE - t.bytes_free);
    printf("SHOW tlsf overhead: %zu mid blocks (1025..17408 B): %.1f%% of arena bytes requested "
           "(%.2f%% of the bytes not free), meta %zu B = %.2f%% of requested, free in arenas %zu KiB\n",
           n, 100.0 * util, 100.0 * block_util, t.bytes_meta, 100.0 * (double)t.bytes_meta / (double)asked,
           t.bytes_free / KiB);
    CHECK(block_util > 0.99);
    if (n >= 1000)
        CHECK(util > 0.90);
    /* Free every other block: fragments stay usable for their sizes. */
    for (size_t i = 0; i < n; i += 2)
        t_free(p[i]);
    for (size_t i = 0; i < n; i += 2)
        p[i] = alloc_ok(1025, 16);
    CHECK_EQ(pstats().pages_used - p0.pages_used, pages);
    for (size_t i = 0; i < n; i++)
        t_free(p[i]);
    tlsf_trim();
    CHECK_TLSF();
    CHECK_EQ(pstats().pages_used, p0.pages_used);
}

int main(void)
{
    run_isolated("tlsf sizes 1025 .. 3 MiB", sizes_mid_and_large);
    run_isolated("tlsf per-CPU heaps, frees and resizes across CPUs", cross_cpu_heaps);
    run_isolated("tlsf stale arena header in RAM not followed", stale_arena_header_is_not_followed);
    run_isolated("tlsf alignments 16 .. 1 MiB", alignments);
    run_isolated("tlsf split/merge restores one block", split_merge_restores_one_block);
    run_isolated("tlsf empty arenas returned, two kept until trim", empty_arenas_returned);
    run_isolated("tlsf resize in place (shared)", resize_shared);
    run_isolated("tlsf resize in place (dedicated: claim, shrink)", resize_dedicated);
    run_isolated("tlsf validate: double free, interior, arena header", validate_faults);
    expect_fatal("tlsf double free is fatal", double_free_is_fatal, "double free");
    expect_fatal("tlsf interior free is fatal", interior_free_is_fatal, "not a live block");
    run_isolated("tlsf zeroed reporting", zeroed_reporting);
    run_isolated("tlsf huge and overflowing sizes", huge_requests_fail_cleanly);
    run_isolated("tlsf out of pages", exhaustion);
    run_isolated("tlsf randomised with shadow model", randomised_shadow);
    run_isolated("tlsf checker catches damaged metadata", checker_catches_damage);
#if HA_CHECKED
    run_isolated("tlsf checked: write after free found by the checker", use_after_free_checker);
    expect_fatal("tlsf checked: write after free found on allocation", use_after_free_on_alloc, "use after free");
#endif
    run_isolated("tlsf four threads", threads);
    run_isolated("tlsf overhead", overhead);
    return harness_done();
}
