/*
 * The byte API: ha_alloc, ha_alloc_zeroed, ha_realloc, ha_free,
 * ha_free_sized, ha_usable_size over every size tier and alignment.
 * Which internal path serves a size is left open; what is checked is what
 * hartalloc.h promises for every size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ha_internal.h"
#include "harness.h"
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* Every size 0..4 KiB at every alignment 1..4 KiB, all live at once per
 * alignment, each filled to its usable size and read back. */
static void every_small_size_and_alignment(void)
{
    heap_setup(96 * MiB);
    /* Scaled runs (valgrind, checked) step over sizes; the plain run sees all. */
    size_t step = (size_t)(100 / harness_scale(100));
    if (step == 0)
        step = 1;
    enum { MAXSZ = 4096 };
    void **blk = calloc(MAXSZ + 1, sizeof(void *));
    CHECK(blk != NULL);
    for (size_t align = 1; align <= 4096; align <<= 1) {
        for (size_t sz = 0; sz <= MAXSZ; sz += step) {
            void *p = ha_alloc(sz, align);
            CHECK(p != NULL);
            CHECK(is_aligned(p, align));
            size_t u = ha_usable_size(p);
            CHECK(u >= sz);
            pattern_fill(p, u, sz * 31 + align);
            blk[sz] = p;
        }
        for (size_t sz = 0; sz <= MAXSZ; sz += step) {
            size_t u = ha_usable_size(blk[sz]);
            CHECK(u >= sz);
            CHECK_PATTERN(blk[sz], u, sz * 31 + align);
        }
        CHECK_HEAP();
        for (size_t sz = 0; sz <= MAXSZ; sz += step) {
            if (sz % 2)
                ha_free(blk[sz]);
            else
                ha_free_sized(blk[sz], sz, align);
        }
        CHECK_HEAP();
    }
    free(blk);
    ha_trim();
    CHECK_EQ(stats_now().bytes_used, 0);
    CHECK_HEAP();
}

/* Every size over 8 KiB that the big slab classes serve (a 256 MiB heap
 * turns them on), at every alignment up to 4 KiB: the block is a slab
 * object where a class honours the alignment (always at 16), else TLSF's;
 * filled to its usable size, read back, freed sized and unsized; trimmed,
 * nothing is left. */
static void every_big_class_size_and_alignment(void)
{
    heap_setup(256 * MiB);
    struct ha_stats s0 = stats_now();
    size_t step = 16 * (size_t)(100 / harness_scale(100));
#if HA_CHECKED
    /* Every call's walk reads the poison of every free object: megabytes
     * here.  A sparser sweep keeps the step within seconds. */
    step *= 8;
#endif
    enum { LO = 8177, HI = 65520 };
    size_t n = (HI - LO) / step + 1;
    void **blk = calloc(n, sizeof(void *));
    CHECK(blk != NULL);
    for (size_t align = 1; align <= 4096; align <<= 1) {
        size_t i = 0, classed = 0;
        for (size_t sz = LO; sz <= HI; sz += step, i++) {
            void *p = ha_alloc(sz, align);
            CHECK(p != NULL);
            CHECK(is_aligned(p, align));
            size_t u = ha_usable_size(p);
            CHECK(u >= sz);
            if (page_kind_of((uintptr_t)p) == PAGE_KIND_SLAB) {
#if !HA_CHECKED
                /* A class is at least 9360 B and at most a quarter above
                 * the request (the checked build reports the request). */
                CHECK(u >= 9360 && u <= HI && (u - sz) * 4 <= sz);
#endif
                classed++;
            }
            pattern_fill(p, u, sz * 31 + align);
            blk[i] = p;
        }
        if (align <= 16)
            CHECK_EQ(classed, n);
        i = 0;
        for (size_t sz = LO; sz <= HI; sz += step, i++)
            CHECK_PATTERN(blk[i], ha_usable_size(blk[i]), sz * 31 + align);
        CHECK_HEAP();
        i = 0;
        for (size_t sz = LO; sz <= HI; sz += step, i++) {
            if (i % 2)
                ha_free(blk[i]);
            else
                ha_free_sized(blk[i], sz, align);
        }
        CHECK_HEAP();
    }
    free(blk);
    ha_trim();
    struct ha_stats s = stats_now();
    CHECK_EQ(s.bytes_used, 0);
    CHECK_EQ(s.pages_used, s0.pages_used);
    CHECK_HEAP();
}

/* slab_free tells an interior pointer from an object's start without
 * multiplying back by the size (slab_locate_in): every byte offset of a
 * full chunk of every class (the big ones included, in a 256 MiB heap) is
 * either an object's start, validated as its class, or reported as an
 * interior pointer.  Through slab_validate, which reports instead of
 * faulting.  Scaled runs (valgrind) step over offsets. */
static void interior_pointer_every_class(void)
{
#if HA_CHECKED
    /* The checked build hands out the byte after a red zone, so the
     * object starts are not the caller's pointers; the arithmetic is the
     * same build for build, and the plain and ASan runs cover it. */
    printf("  (plain builds only: the checked build's pointers sit past a red zone)\n");
#else
    heap_setup(256 * MiB);
    size_t step = (size_t)(100 / harness_scale(100));
    if (step == 0)
        step = 1;
    unsigned classes = 0;
    size_t probes = 0;
    for (size_t size = 16; size <= 65520; size = slab_class_size((unsigned)classes - 1) + 16) {
        void *first = ha_alloc(size, 16);
        CHECK(first != NULL);
        unsigned cls;
        CHECK_EQ(slab_validate(first, &cls), FAULT_NONE);
        CHECK_EQ(cls, classes);
        size_t csize = slab_class_size(cls);
        /* 256 MiB: the classes up to 8 KiB in 64 KiB chunks, the rest in
         * 256 KiB ones. */
        size_t chunk = slab_class_chunk(cls);
        CHECK_EQ(chunk, csize <= 8176 ? 64 * KiB : 256 * KiB);
        size_t n = chunk / csize + 1; /* a whole chunk's worth and one more */
        void **blk = calloc(n, sizeof(void *));
        CHECK(blk != NULL);
        blk[0] = first;
        for (size_t i = 1; i < n; i++) {
            blk[i] = ha_alloc(size, 16);
            CHECK(blk[i] != NULL);
        }
        for (size_t i = 0; i < n; i++) {
            unsigned c = 99;
            CHECK_EQ(slab_validate(blk[i], &c), FAULT_NONE);
            CHECK_EQ(c, cls);
            for (size_t r = 1; r < csize; r += step, probes++) {
                enum ha_fault f = slab_validate((char *)blk[i] + r, &c);
                if (f != FAULT_INTERIOR)
                    printf("  class %zu: object %p + %zu: fault %d\n", csize, blk[i], r, (int)f);
                CHECK_EQ(f, FAULT_INTERIOR);
            }
        }
        for (size_t i = 0; i < n; i++)
            ha_free_sized(blk[i], size, 16);
        free(blk);
        classes++;
    }
    CHECK_EQ(classes, 51);
    printf("  %u classes, %zu interior offsets probed\n", classes, probes);
    CHECK_HEAP();
#endif
}

/* ha_alloc_min_align and ha_free_sized_min_align: every size up to 64 KiB
 * and a few beyond, 16-aligned, usable, freed through the same entry
 * point, or through ha_free_sized and ha_free at alignments up to 16
 * (interchangeable for such blocks); nothing left afterwards. */
static void min_align_entry_points(void)
{
    heap_setup(256 * MiB);
    struct ha_stats s0 = stats_now();
    size_t step = (size_t)(100 / harness_scale(100));
    if (step == 0)
        step = 1;
#if HA_CHECKED
    step *= 64; /* every call walks the heap */
#endif
    static const size_t big[] = { 65536, 100000, 300000, 2 * MiB + 5 };
    size_t n = 0;
    for (size_t sz = 0; sz <= 65536 + 4; sz += step, n++) {
        void *p = ha_alloc_min_align(sz);
        CHECK(p != NULL);
        CHECK(is_aligned(p, 16));
        size_t u = ha_usable_size(p);
        CHECK(u >= sz);
        pattern_fill(p, u, sz);
        CHECK_PATTERN(p, u, sz);
        switch (n % 4) {
        case 0: ha_free_sized_min_align(p, sz); break;
        case 1: ha_free_sized(p, sz, 16); break;
        case 2: ha_free(p); break;
        default: {
            /* A block from ha_alloc at alignment 8 back through the new free. */
            ha_free_sized_min_align(p, sz);
            void *q = ha_alloc(sz, 8);
            CHECK(q != NULL);
            ha_free_sized_min_align(q, sz);
        }
        }
    }
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        void *p = ha_alloc_min_align(big[i]);
        CHECK(p != NULL);
        CHECK(is_aligned(p, 16));
        CHECK(ha_usable_size(p) >= big[i]);
        pattern_fill(p, big[i], i);
        CHECK_PATTERN(p, big[i], i);
        ha_free_sized_min_align(p, big[i]);
    }
    CHECK_HEAP();
    ha_trim();
    struct ha_stats s = stats_now();
    CHECK_EQ(s.bytes_used, 0);
    CHECK_EQ(s.pages_used, s0.pages_used);
}

/* The classes in use follow the heap's size: in 32 MiB only those up to
 * 1 KiB (a 4000 B and a 20000 B block are TLSF's, exact to 16 bytes); a
 * region that brings the heap to 64 MiB turns on those up to 8 KiB (4000 B
 * is a slab object, 20000 B still TLSF's); one that brings it to 192 MiB
 * turns on the big classes (20000 B is a slab object).  Blocks made before
 * stay what they were, and each is freed as what it is. */
static void big_classes_follow_heap_size(void)
{
    heap_setup(32 * MiB);
    void *a = ha_alloc(4000, 16), *b = ha_alloc(20000, 16), *c = ha_alloc(1000, 16);
    CHECK(a != NULL && b != NULL && c != NULL);
    CHECK_EQ(page_kind_of((uintptr_t)a), PAGE_KIND_ARENA);
    CHECK_EQ(ha_usable_size(a), 4000);
    CHECK_EQ(page_kind_of((uintptr_t)b), PAGE_KIND_ARENA);
    CHECK_EQ(ha_usable_size(b), 20000);
    CHECK_EQ(page_kind_of((uintptr_t)c), PAGE_KIND_SLAB);
    CHECK_EQ(ha_usable_size(c), HA_CHECKED ? 1000 : 1024); /* checked: the size asked for */
    /* Aligned beyond the classes in use: the first class honouring it. */
    void *d = ha_alloc(48, 4096);
    CHECK(d != NULL && (uintptr_t)d % 4096 == 0);
    CHECK_EQ(page_kind_of((uintptr_t)d), PAGE_KIND_SLAB);
    CHECK_EQ(ha_usable_size(d), HA_CHECKED ? 48 : 4096);
    char *more = harness_map(32 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_add_region(more, 32 * MiB), HA_OK);
    void *a2 = ha_alloc(4000, 16), *b2 = ha_alloc(20000, 16);
    CHECK(a2 != NULL && b2 != NULL);
    CHECK_EQ(page_kind_of((uintptr_t)a2), PAGE_KIND_SLAB);
    CHECK_EQ(ha_usable_size(a2), HA_CHECKED ? 4000 : 4096);
    CHECK_EQ(page_kind_of((uintptr_t)b2), PAGE_KIND_ARENA);
    char *most = harness_map(128 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_add_region(most, 128 * MiB), HA_OK);
    void *b3 = ha_alloc(20000, 16);
    CHECK(b3 != NULL);
    CHECK_EQ(page_kind_of((uintptr_t)b3), PAGE_KIND_SLAB);
    CHECK_EQ(page_kind_of((uintptr_t)a), PAGE_KIND_ARENA);
    CHECK_EQ(ha_usable_size(a), 4000);
    CHECK_EQ(page_kind_of((uintptr_t)b), PAGE_KIND_ARENA);
    CHECK_EQ(ha_usable_size(b), 20000);
    CHECK_HEAP();
    ha_free_sized(a, 4000, 16);
    ha_free_sized(b, 20000, 16);
    ha_free_sized(c, 1000, 16);
    ha_free_sized(d, 48, 4096);
    ha_free_sized(a2, 4000, 16);
    ha_free_sized(b2, 20000, 16);
    ha_free_sized(b3, 20000, 16);
    CHECK_HEAP();
    CHECK_EQ(stats_now().bytes_used, 0);
}

/* The chunk size of the classes up to 1 KiB is chosen when the heap is
 * configured: 16 KiB in 32 MiB, and still so after a region brings it to
 * 192 MiB (its slabs are found by that one layout); 64 KiB in a heap of
 * 192 MiB from the start.  Seen in where 4000 objects of 16 B lie: a
 * 16 KiB chunk holds 1013 beside its header, while the inner 16 KiB of a
 * 64 KiB chunk, which hold no header, take 1024. */
#if !HA_CHECKED
static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}
#endif

static void tiny_chunks_check(size_t first, size_t added, size_t chunk)
{
    heap_setup(first);
    if (added) {
        char *more = harness_map(added, HA_PAGE_SIZE);
        CHECK_EQ(ha_add_region(more, added), HA_OK);
    }
    for (unsigned cls = 0; cls < 20; cls++)
        CHECK_EQ(slab_class_chunk(cls), chunk);
    CHECK_EQ(slab_class_size(19), 1024);
    CHECK_EQ(slab_class_chunk(20), 64 * KiB);
    enum { N = 4000 };
    static uintptr_t p[N];
    for (size_t i = 0; i < N; i++) {
        p[i] = (uintptr_t)ha_alloc(16, 16);
        CHECK(p[i] != 0);
    }
    CHECK_HEAP();
    size_t most = 0;
#if !HA_CHECKED /* the checked build's red zones take a larger class */
    uintptr_t q[N];
    memcpy(q, p, sizeof q);
    qsort(q, N, sizeof q[0], cmp_ptr);
    for (size_t i = 0, run = 0; i < N; i++) {
        run = i && (q[i] ^ q[i - 1]) < 16 * KiB ? run + 1 : 1;
        most = run > most ? run : most;
    }
    CHECK_EQ(most, chunk == 16 * KiB ? 1013 : 1024);
#endif
    printf("  heap %zu MiB (+%zu MiB): tiny classes in %zu KiB chunks", first / MiB, added / MiB, chunk / KiB);
    if (most)
        printf("; at most %zu of 4000 x 16 B in 16 KiB", most);
    printf("\n");
    for (size_t i = 0; i < N; i++)
        ha_free_sized((void *)p[i], 16, 16);
    CHECK_HEAP();
    CHECK_EQ(stats_now().bytes_used, 0);
}

static void tiny_chunks_small_heap_grown(void)
{
    tiny_chunks_check(32 * MiB, 160 * MiB, 16 * KiB);
}

static void tiny_chunks_large_heap(void)
{
    tiny_chunks_check(192 * MiB, 0, 64 * KiB);
}

/* Memory is not new at boot: after a warm reboot (or a benchmark's next
 * trial on the same shared arena) it still holds the last heap's slab
 * headers, valid under the same key when no seed is given.  A 256 KiB
 * chunk laid over them must not take one at an inner 64 KiB boundary for
 * its own: every big-class block is freed as itself (a free takes the
 * class from the page map, not from a header).  The first heap runs
 * in a child over a shared mapping and fills it with 64 KiB chunks of a
 * small class; the second, here, over the same bytes, churns 20000 B
 * blocks, writing only their first bytes. */
static void big_classes_ignore_stale_headers(void)
{
    const size_t bytes = 160 * MiB;
    char *map = mmap(NULL, bytes + 64 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(map != MAP_FAILED);
    char *area = (char *)(((uintptr_t)map + 64 * MiB - 1) & ~(uintptr_t)(64 * MiB - 1));
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        CHECK_EQ(ha_early_init(area, HARNESS_EARLY_BYTES), HA_OK);
        CHECK_EQ(ha_add_region(area + HARNESS_EARLY_BYTES, bytes - HARNESS_EARLY_BYTES), HA_OK);
        CHECK_EQ(ha_final_init(), HA_OK);
        while (ha_alloc(4000, 16) != NULL) /* until the pages run out */
            ;
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(ha_early_init(area, HARNESS_EARLY_BYTES), HA_OK);
    CHECK_EQ(ha_add_region(area + HARNESS_EARLY_BYTES, bytes - HARNESS_EARLY_BYTES), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    enum { N = 4000 };
    static void *p[N];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            p[i] = ha_alloc(20000, 16);
            CHECK(p[i] != NULL);
            CHECK_EQ(page_kind_of((uintptr_t)p[i]), PAGE_KIND_SLAB);
            memset(p[i], 0x3C, 64); /* the rest keeps what was there */
        }
        for (int i = 0; i < N; i++)
            ha_free_sized(p[i], 20000, 16);
        CHECK_HEAP();
    }
}

/* Sizes from a page to 64 MiB, around powers of two, at alignments 1..4 KiB
 * and at 8 KiB..2 MiB. */
static void large_sizes_and_alignments(void)
{
    heap_setup(400 * MiB);
    uint64_t id = 0;
    for (size_t base = 4 * KiB; base <= 64 * MiB; base <<= 1) {
        const long deltas[] = { -16, -1, 0, 1, 16, 3000 };
        for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
            size_t sz = (size_t)((long)base + deltas[d]);
            for (size_t align = 1; align <= 2 * MiB; align <<= 3) {
                id++;
                void *p = ha_alloc(sz, align);
                CHECK(p != NULL);
                CHECK(is_aligned(p, align));
                size_t u = ha_usable_size(p);
                CHECK(u >= sz);
                pattern_fill_sparse(p, u, id);
                CHECK(pattern_sparse_ok(p, u, id));
                if (id % 2)
                    ha_free(p);
                else
                    ha_free_sized(p, sz, align);
            }
        }
        CHECK_HEAP();
    }
    /* The largest alignments with small sizes. */
    for (size_t align = 8 * KiB; align <= 2 * MiB; align <<= 1) {
        void *ps[4];
        const size_t szs[] = { 1, 100, 5000, 300 * KiB };
        for (int i = 0; i < 4; i++) {
            ps[i] = ha_alloc(szs[i], align);
            CHECK(ps[i] != NULL);
            CHECK(is_aligned(ps[i], align));
            CHECK(ha_usable_size(ps[i]) >= szs[i]);
            memset(ps[i], 0x3C, szs[i]);
        }
        for (int i = 0; i < 4; i++)
            for (int j = i + 1; j < 4; j++)
                CHECK(!ranges_overlap((uintptr_t)ps[i], szs[i], (uintptr_t)ps[j], szs[j]));
        for (int i = 0; i < 4; i++)
            ha_free_sized(ps[i], szs[i], align);
    }
    ha_trim();
    CHECK_EQ(stats_now().bytes_used, 0);
    CHECK_HEAP();
}

static void zero_size_blocks_are_unique(void)
{
    heap_setup(8 * MiB);
    enum { N = 300 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = ha_alloc(0, (size_t)8 << (i % 4));
        CHECK(p[i] != NULL);
        CHECK(is_aligned(p[i], (size_t)8 << (i % 4)));
        for (int j = 0; j < i; j++)
            CHECK(p[i] != p[j]);
    }
    for (int i = 0; i < N; i++) {
        if (i % 2)
            ha_free(p[i]);
        else
            ha_free_sized(p[i], 0, (size_t)8 << (i % 4));
    }
    CHECK_EQ(stats_now().bytes_used, 0);
    CHECK_HEAP();
}

static void bad_alignment_is_null_not_fault(void)
{
    heap_setup(8 * MiB);
    const size_t bad[] = { 0, 3, 6, 24, 100, 4097, (size_t)1 << 63 | 1 };
    struct ha_stats s0 = stats_now();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(ha_alloc(16, bad[i]) == NULL);
        CHECK(ha_alloc_zeroed(16, bad[i]) == NULL);
    }
    struct ha_stats s1 = stats_now();
    CHECK_EQ(s1.failures - s0.failures, 2 * (sizeof bad / sizeof bad[0]));
    CHECK_EQ(s1.allocs, s0.allocs);
    CHECK_EQ(s1.bytes_used, s0.bytes_used);
    CHECK_HEAP();
    void *p = ha_alloc(16, 16);
    CHECK(p != NULL);
    ha_free(p);
}

static void impossible_sizes_fail_cleanly(void)
{
    heap_setup(8 * MiB);
    const size_t huge[] = { SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX - 15, SIZE_MAX / 2 + 1,
                            (size_t)1 << 40, 64 * MiB };
    struct ha_stats s0 = stats_now();
    uint64_t expect_fail = 0;
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        for (size_t align = 1; align <= 4096; align <<= 6) {
            CHECK(ha_alloc(huge[i], align) == NULL);
            CHECK(ha_alloc_zeroed(huge[i], align) == NULL);
            expect_fail += 2;
        }
    }
    /* An alignment no run can satisfy. */
    CHECK(ha_alloc(16, (size_t)1 << 40) == NULL);
    expect_fail++;
    struct ha_stats s1 = stats_now();
    CHECK_EQ(s1.failures - s0.failures, expect_fail);
    CHECK_EQ(s1.bytes_used, s0.bytes_used);
    CHECK_EQ(s1.pages_used, s0.pages_used);
    CHECK_HEAP();
    void *p = ha_alloc(1 * MiB, 16);
    CHECK(p != NULL);
    memset(p, 1, 1 * MiB);
    ha_free(p);
    CHECK_HEAP();
}

/* ha_alloc_zeroed clears memory that was dirtied and freed before. */
static void zeroed_after_dirty(void)
{
    heap_setup(128 * MiB);
    const size_t sizes[] = { 1, 8, 16, 24, 100, 512, 1000, 1024, 1025, 4000, 4096, 20000,
                             128 * KiB, 128 * KiB + 1, 300 * KiB, 2 * MiB, 9 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t sz = sizes[i];
        void *d[8];
        for (int k = 0; k < 8; k++) {
            d[k] = ha_alloc(sz, 16);
            CHECK(d[k] != NULL);
            memset(d[k], 0xA5, ha_usable_size(d[k]));
        }
        for (int k = 0; k < 8; k++)
            ha_free(d[k]);
        for (int k = 0; k < 8; k++) {
            d[k] = ha_alloc_zeroed(sz, 16);
            CHECK(d[k] != NULL);
            CHECK(all_zero(d[k], sz));
            memset(d[k], 0x5A, sz);
        }
        for (int k = 0; k < 8; k++)
            ha_free(d[k]);
    }
    /* Dirty most of the heap through pages, then ask for zeroed blocks. */
    ha_trim();
    void *pg = ha_alloc_pages(8192, 0);
    CHECK(pg != NULL);
    memset(pg, 0xEE, 8192 * (size_t)HA_PAGE_SIZE);
    ha_free_pages(pg, 8192);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = ha_alloc_zeroed(sizes[i], 64);
        CHECK(p != NULL);
        CHECK(all_zero(p, sizes[i]));
        ha_free(p);
    }
    CHECK_HEAP();
}

static void realloc_keeps_contents(void)
{
    heap_setup(64 * MiB);
    const size_t sizes[] = { 0, 1, 15, 16, 17, 100, 1000, 1024, 1025, 3000, 4096, 5000,
                             60 * KiB, 128 * KiB, 128 * KiB + 1, 200 * KiB, 1 * MiB, 3 * MiB };
    enum { NS = sizeof sizes / sizeof sizes[0] };
    uint64_t id = 0;
    for (size_t a = 0; a < NS; a++) {
        for (size_t b = 0; b < NS; b++) {
            id++;
            size_t align = (size_t)1 << (id % 9);
            char *p = ha_alloc(sizes[a], align);
            CHECK(p != NULL);
            pattern_fill_auto(p, sizes[a], id);
            char *q = ha_realloc(p, sizes[b], align);
            if (sizes[b] == 0) {
                /* new_size 0 frees and returns NULL. */
                CHECK(q == NULL);
                continue;
            }
            CHECK(q != NULL);
            CHECK(is_aligned(q, align));
            CHECK(ha_usable_size(q) >= sizes[b]);
            size_t keep = sizes[a] < sizes[b] ? sizes[a] : sizes[b];
            CHECK(pattern_auto_ok(q, keep, sizes[a], id));
            memset(q, 0x77, sizes[b]);
            ha_free_sized(q, sizes[b], align);
        }
        CHECK_HEAP();
    }
    CHECK_EQ(stats_now().bytes_used, 0);
}

static void realloc_edge_cases(void)
{
    heap_setup(16 * MiB);
    struct ha_stats s0 = stats_now();
    /* NULL ptr: same as ha_alloc. */
    char *p = ha_realloc(NULL, 300, 32);
    CHECK(p != NULL);
    CHECK(is_aligned(p, 32));
    CHECK(ha_usable_size(p) >= 300);
    struct ha_stats s1 = stats_now();
    CHECK_EQ(s1.allocs - s0.allocs, 1);
    CHECK_EQ(s1.bytes_used - s0.bytes_used, ha_usable_size(p));
    pattern_fill(p, 300, 1);

    /* Failure leaves the block valid and unchanged. */
    const size_t huge[] = { SIZE_MAX, SIZE_MAX - 4096, (size_t)1 << 40 };
    for (size_t i = 0; i < 3; i++) {
        CHECK(ha_realloc(p, huge[i], 32) == NULL);
        CHECK_PATTERN(p, 300, 1);
        CHECK(ha_usable_size(p) >= 300);
    }
    struct ha_stats s2 = stats_now();
    CHECK_EQ(s2.failures - s1.failures, 3);
    CHECK_EQ(s2.bytes_used, s1.bytes_used);
    CHECK_HEAP();

    /* new_size 0: frees and returns NULL. */
    CHECK(ha_realloc(p, 0, 32) == NULL);
    struct ha_stats s3 = stats_now();
    CHECK_EQ(s3.bytes_used, s0.bytes_used);
    CHECK_HEAP();

    /* Mid and large blocks failing to grow stay intact too. */
    char *m = ha_alloc(50 * KiB, 16), *l = ha_alloc(3 * MiB, 16);
    CHECK(m && l);
    pattern_fill(m, 50 * KiB, 2);
    pattern_fill_sparse(l, 3 * MiB, 3);
    CHECK(ha_realloc(m, SIZE_MAX - 100, 16) == NULL);
    CHECK(ha_realloc(l, 100 * MiB, 16) == NULL);
    CHECK_PATTERN(m, 50 * KiB, 2);
    CHECK(pattern_sparse_ok(l, 3 * MiB, 3));
    ha_free(m);
    ha_free(l);
    CHECK_HEAP();
}

/* A small block resized within its class stays where it is and counts
 * nothing; resized to another class it moves, keeps its bytes, and the
 * old block goes back (the byte count is the new class's).  The default
 * build's promise: the checked one's usable size is the size asked for. */
static void realloc_small_classes(void)
{
    heap_setup(64 * MiB); /* the classes of 1..8 KiB in use */
    if (HA_CHECKED)
        return;
    const size_t sizes[] = { 1, 16, 17, 48, 100, 128, 129, 500, 1000, 2048, 4000, 6000 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char *p = ha_alloc(n, 8);
        CHECK(p != NULL);
        size_t u = ha_usable_size(p);
        pattern_fill(p, n, 20 + i);
        struct ha_stats s0 = stats_now();
        /* Down to one more than the class below's size: the same class. */
        char *q = ha_realloc(p, u, 8);
        CHECK_EQ(q, p);
        struct ha_stats s1 = stats_now();
        CHECK_EQ(s1.allocs, s0.allocs);
        CHECK_EQ(s1.bytes_used, s0.bytes_used);
        CHECK_PATTERN(q, n, 20 + i);
        /* Up past the class: a move to the next one. */
        char *r = ha_realloc(q, u + 1, 16);
        CHECK(r != NULL && r != q);
        CHECK_PATTERN(r, n, 20 + i);
        size_t u2 = ha_usable_size(r);
        CHECK(u2 > u);
        struct ha_stats s2 = stats_now();
        CHECK_EQ(s2.allocs, s1.allocs + 1);
        CHECK_EQ(s2.frees, s1.frees + 1);
        CHECK_EQ(s2.bytes_used, s1.bytes_used - u + u2);
        /* The old block is free: the same class hands it out again. */
        char *again = ha_alloc(u, 8);
        CHECK_EQ(again, q);
        ha_free(again);
        /* Down again by a class: moves back. */
        char *t = ha_realloc(r, n, 8);
        CHECK(t != NULL);
        CHECK_EQ(ha_usable_size(t), u);
        CHECK_PATTERN(t, n, 20 + i);
        ha_free_sized(t, n, 8);
    }
    CHECK_HEAP();
    CHECK_EQ(stats_now().bytes_used, 0);
}

/* Mid blocks (a heap too small for the big classes: TLSF) resized:
 * in place or moved, the byte count follows the usable sizes exactly and
 * the bytes are kept; a shrink stays where it is. */
static void realloc_mid_accounting(void)
{
    heap_setup(32 * MiB);
    char *keep = ha_alloc(12000, 16); /* something live beside them */
    const size_t sizes[] = { 9000, 14000, 30000, 11000, 60000, 20000, 100000, 9500 };
    char *p = ha_alloc(sizes[0], 16);
    CHECK(p != NULL && keep != NULL);
    pattern_fill(p, sizes[0], 40);
    size_t have = sizes[0];
    for (size_t i = 1; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct ha_stats s0 = stats_now();
        size_t u0 = ha_usable_size(p);
        char *q = ha_realloc(p, sizes[i], 16);
        CHECK(q != NULL);
        size_t kept = have < sizes[i] ? have : sizes[i];
        CHECK_PATTERN(q, kept, 40);
        CHECK(ha_usable_size(q) >= sizes[i]);
        struct ha_stats s1 = stats_now();
        CHECK_EQ(s1.bytes_used, s0.bytes_used - u0 + ha_usable_size(q));
        if (sizes[i] < have)
            CHECK_EQ(q, p);
        pattern_fill(q, sizes[i], 40);
        p = q;
        have = sizes[i];
        CHECK_HEAP();
    }
    ha_free_sized(p, have, 16);
    ha_free(keep);
    CHECK_EQ(stats_now().bytes_used, 0);
}

/* A large block with free memory after it grows where it is. */
static void realloc_grows_in_place(void)
{
    heap_setup(32 * MiB);
    char *p = ha_alloc(200 * KiB, 16);
    CHECK(p != NULL);
    pattern_fill(p, 200 * KiB, 9);
    struct ha_stats s0 = stats_now();
    char *q = ha_realloc(p, 300 * KiB, 16);
    CHECK(q != NULL);
    CHECK_PATTERN(q, 200 * KiB, 9);
    CHECK_EQ(q, p);
    CHECK(ha_usable_size(q) >= 300 * KiB);
    struct ha_stats s1 = stats_now();
    /* An in-place resize is not an allocation. */
    CHECK_EQ(s1.allocs, s0.allocs);
    /* Shrinking never has to move. */
    char *r = ha_realloc(q, 100 * KiB, 16);
    CHECK(r != NULL);
    CHECK_PATTERN(r, 100 * KiB, 9);
    ha_free(r);

    /* A mid block whose neighbour is free: same promise. */
    char *m = ha_alloc(10 * KiB, 16);
    CHECK(m != NULL);
    pattern_fill(m, 10 * KiB, 10);
    char *m2 = ha_realloc(m, 12 * KiB, 16);
    CHECK(m2 != NULL);
    CHECK_PATTERN(m2, 10 * KiB, 10);
    printf("mid grow %s\n", m2 == m ? "in place" : "moved");
    ha_free(m2);
    CHECK_HEAP();
}

/* Every usable byte can be written: nothing (red zone, header, neighbour)
 * lives inside ha_usable_size. */
static void usable_size_is_writable(void)
{
    heap_setup(32 * MiB);
    enum { N = 600 };
    void *p[N];
    struct harness_rng r;
    uint64_t seed = 0x5EED0001;
    harness_seed_announce("usable_size_is_writable", seed);
    harness_rng_seed(&r, seed);
    for (int i = 0; i < N; i++) {
        size_t sz = harness_rng_below(&r, 4) ? harness_rng_below(&r, 2000)
                                              : harness_rng_below(&r, 300 * KiB);
        size_t align = (size_t)1 << harness_rng_below(&r, 13);
        p[i] = ha_alloc(sz, align);
        CHECK(p[i] != NULL);
        pattern_fill(p[i], ha_usable_size(p[i]), (uint64_t)i);
    }
    for (int i = 0; i < N; i++)
        CHECK_PATTERN(p[i], ha_usable_size(p[i]), (uint64_t)i);
    CHECK_HEAP();
    for (int i = 0; i < N; i++)
        ha_free(p[i]);
    CHECK_HEAP();
}

static void free_null_is_noop(void)
{
    heap_setup(4 * MiB);
    struct ha_stats s0 = stats_now();
    ha_free(NULL);
    struct ha_stats s1 = stats_now();
    CHECK_EQ(s1.frees, s0.frees);
    CHECK_HEAP();
}

/* Slabs that empty are kept, up to an eighth of the heap's pages, so that
 * a burst freed and made again takes no page from the page allocator;
 * beyond the eighth they go back; ha_trim gives back every kept one, and
 * so does the reclaim before an allocation would fail. */
/* What may stay out of the page allocator once every block is freed: the
 * eighth, each class's first empty slab (at most 16 pages: 16 or 64 KiB slabs), the
 * slabs that the objects in the CPU's bins keep partly used (62 at most
 * per class), and the caches themselves. */
#define KEPT_MAX(s0) ((s0).pages_total / 8 + 2 * 16 + 2 * 62 * 16 + 64)

static void empty_slabs_kept_within_an_eighth(void)
{
    /* 512 B each: about 7.5 MiB of 16 KiB slabs at full scale, within the
     * eighth (8 MiB), so that a round after the first takes no page; the
     * m blocks after the rounds go beyond it.  Smaller in the checked
     * build, whose walk on every call looks at every free object's
     * poison. */
    const size_t n = harness_scale(HA_CHECKED ? 4000 : 15000), m = harness_scale(HA_CHECKED ? 4000 : 50000);
    void **p = malloc(n * sizeof *p), **q = malloc(m * sizeof *q);
    CHECK(p && q);
    heap_setup(64 * MiB);
    struct ha_stats s0 = stats_now();
    for (int round = 0; round < 3; round++) {
        struct ha_stats before = stats_now();
        for (size_t i = 0; i < n; i++)
            CHECK((p[i] = ha_alloc(512, 8)) != NULL);
        struct ha_stats full = stats_now();
        if (round > 0 && !HA_CHECKED) /* the kept slabs served it: no page taken */
            CHECK_EQ(full.pages_free, before.pages_free);
        for (size_t i = 0; i < n; i++) /* an order unlike the allocation's */
            ha_free(p[i * 7919 % n]);
        struct ha_stats after = stats_now();
        size_t kept = s0.pages_free - after.pages_free;
        printf("round %d: %zu pages kept of %zu (limit %zu)\n", round, kept, s0.pages_total, s0.pages_total / 8);
        if (!HA_CHECKED) /* most of them (the checked build keeps one a class) */
            CHECK(kept >= n * 512 / HA_PAGE_SIZE / 2);
        CHECK(kept <= KEPT_MAX(s0));
        CHECK_EQ(after.bytes_used, 0);
        CHECK_HEAP();
    }
    /* A burst larger than the eighth (at full scale: 50 MiB of 1000 B
     * blocks): what is past it goes back. */
    size_t got = 0;
    while (got < m && (q[got] = ha_alloc(1000, 8)) != NULL)
        got++;
    CHECK(got > m / 2);
    for (size_t i = 0; i < got; i++)
        ha_free(q[i]);
    struct ha_stats big = stats_now();
    CHECK(s0.pages_free - big.pages_free <= KEPT_MAX(s0));
    CHECK_HEAP();
    /* The reclaim: a run as large as the heap's largest at the start is
     * still there to allocate, kept slabs given back for it. */
    void *run = ha_alloc_pages(s0.pages_largest_run, 0);
    CHECK(run != NULL);
    ha_free_pages(run, s0.pages_largest_run);
    /* ha_trim: every kept slab back. */
    for (size_t i = 0; i < n; i++)
        CHECK((p[i] = ha_alloc(512, 8)) != NULL);
    for (size_t i = 0; i < n; i++)
        ha_free(p[i]);
    ha_trim();
    struct ha_stats trimmed = stats_now();
    CHECK_EQ(trimmed.pages_free, s0.pages_free);
    CHECK_HEAP();
    free(p);
    free(q);
}

int main(void)
{
    run_isolated("every_small_size_and_alignment", every_small_size_and_alignment);
    run_isolated("every_big_class_size_and_alignment", every_big_class_size_and_alignment);
    run_isolated("interior_pointer_every_class", interior_pointer_every_class);
    run_isolated("min_align_entry_points", min_align_entry_points);
    run_isolated("big_classes_follow_heap_size", big_classes_follow_heap_size);
    run_isolated("tiny_chunks_small_heap_grown", tiny_chunks_small_heap_grown);
    run_isolated("tiny_chunks_large_heap", tiny_chunks_large_heap);
    run_isolated("big_classes_ignore_stale_headers", big_classes_ignore_stale_headers);
    run_isolated("large_sizes_and_alignments", large_sizes_and_alignments);
    run_isolated("zero_size_blocks_are_unique", zero_size_blocks_are_unique);
    run_isolated("bad_alignment_is_null_not_fault", bad_alignment_is_null_not_fault);
    run_isolated("impossible_sizes_fail_cleanly", impossible_sizes_fail_cleanly);
    run_isolated("zeroed_after_dirty", zeroed_after_dirty);
    run_isolated("realloc_keeps_contents", realloc_keeps_contents);
    run_isolated("realloc_edge_cases", realloc_edge_cases);
    run_isolated("realloc_grows_in_place", realloc_grows_in_place);
    run_isolated("realloc_small_classes", realloc_small_classes);
    run_isolated("realloc_mid_accounting", realloc_mid_accounting);
    run_isolated("usable_size_is_writable", usable_size_is_writable);
    run_isolated("free_null_is_noop", free_null_is_noop);
    run_isolated("empty_slabs_kept_within_an_eighth", empty_slabs_kept_within_an_eighth);
    return harness_done();
}
