/*
 * Randomised stress against a shadow model.  Every live block is stamped
 * with a pattern derived from its id and checked when it is freed or
 * resized; a treap of live intervals proves that no two live blocks
 * overlap; alignment and usable size are checked on every allocation; the
 * statistics are cross-checked with the model; ha_check() runs at intervals
 * and at the end.  Seeds are fixed and printed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* ------------------------------------------------- interval treap */
/* Live blocks keyed by start address; a new block must not overlap its
 * predecessor or successor, which is enough for all of them. */

struct node {
    uintptr_t lo, hi;
    uint32_t prio;
    int left, right;
};

static struct node *nodes;
static int node_free_head = -1, node_count, node_root = -1;

static int node_new(uintptr_t lo, uintptr_t hi, uint32_t prio)
{
    int n;
    if (node_free_head >= 0) {
        n = node_free_head;
        node_free_head = nodes[n].left;
    } else {
        n = node_count++;
    }
    nodes[n] = (struct node){ lo, hi, prio, -1, -1 };
    return n;
}

static int treap_insert(int t, int n)
{
    if (t < 0)
        return n;
    if (nodes[n].lo < nodes[t].lo) {
        nodes[t].left = treap_insert(nodes[t].left, n);
        if (nodes[nodes[t].left].prio > nodes[t].prio) {
            int l = nodes[t].left;
            nodes[t].left = nodes[l].right;
            nodes[l].right = t;
            return l;
        }
    } else {
        nodes[t].right = treap_insert(nodes[t].right, n);
        if (nodes[nodes[t].right].prio > nodes[t].prio) {
            int r = nodes[t].right;
            nodes[t].right = nodes[r].left;
            nodes[r].left = t;
            return r;
        }
    }
    return t;
}

static int treap_merge(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    if (nodes[a].prio > nodes[b].prio) {
        nodes[a].right = treap_merge(nodes[a].right, b);
        return a;
    }
    nodes[b].left = treap_merge(a, nodes[b].left);
    return b;
}

static int treap_erase(int t, uintptr_t lo)
{
    CHECK(t >= 0);   /* the block must be in the tree */
    if (nodes[t].lo == lo) {
        int m = treap_merge(nodes[t].left, nodes[t].right);
        nodes[t].left = node_free_head;
        node_free_head = t;
        return m;
    }
    if (lo < nodes[t].lo)
        nodes[t].left = treap_erase(nodes[t].left, lo);
    else
        nodes[t].right = treap_erase(nodes[t].right, lo);
    return t;
}

/* Fails the test if [lo, hi) overlaps a live interval. */
static void intervals_check_free(uintptr_t lo, uintptr_t hi)
{
    int t = node_root;
    while (t >= 0) {
        if (lo < nodes[t].hi && nodes[t].lo < hi) {
            fprintf(stderr, "overlap: new [%#lx, %#lx) with live [%#lx, %#lx)\n",
                    (unsigned long)lo, (unsigned long)hi, (unsigned long)nodes[t].lo,
                    (unsigned long)nodes[t].hi);
            CHECK(!"live blocks overlap");
        }
        t = lo < nodes[t].lo ? nodes[t].left : nodes[t].right;
    }
}

static void intervals_add(uintptr_t lo, size_t len, uint32_t prio)
{
    /* A zero-size block still owns its address. */
    uintptr_t hi = lo + (len ? len : 1);
    intervals_check_free(lo, hi);
    node_root = treap_insert(node_root, node_new(lo, hi, prio));
}

static void intervals_remove(uintptr_t lo) { node_root = treap_erase(node_root, lo); }

/* ------------------------------------------------------- model */

enum kind { K_NONE, K_BYTES, K_PAGES };

struct slot {
    char *p;
    enum kind kind;
    size_t size, align, usable, pages;
    uint64_t id;
};

struct model {
    size_t used;
    uint64_t allocs, frees, frees_slack, page_allocs, page_frees, failures;
};

/* Stamp: the whole block up to 256 bytes, then one byte per 4 KiB and the
 * last byte; enough to see a block moved, truncated or overlapped, cheap
 * enough for millions of operations. */
static void stamp(char *p, size_t n, uint64_t id)
{
    size_t head = n < 256 ? n : 256;
    pattern_fill(p, head, id);
    for (size_t i = 256; i < n; i += 4096)
        p[i] = (char)pattern_byte(id, i);
    if (n > 256)
        p[n - 1] = (char)pattern_byte(id, n - 1);
}

/* The first `keep` bytes of a block stamped over `filled` bytes. */
static void stamp_check(const char *p, size_t keep, size_t filled, uint64_t id)
{
    size_t head = keep < 256 ? keep : 256;
    CHECK_PATTERN(p, head, id);
    for (size_t i = 256; i < keep; i += 4096)
        CHECK_EQ((uint8_t)p[i], pattern_byte(id, i));
    if (filled > 256 && keep == filled)
        CHECK_EQ((uint8_t)p[filled - 1], pattern_byte(id, filled - 1));
}

static size_t pick_size(struct harness_rng *r)
{
    uint64_t k = harness_rng_below(r, 1000);
    if (k < 500)
        return (size_t)harness_rng_below(r, 129);
    if (k < 800)
        return (size_t)harness_rng_below(r, 1025);
    if (k < 990)
        return 1025 + (size_t)harness_rng_below(r, 127 * KiB);
    return 128 * KiB + (size_t)harness_rng_below(r, 3 * MiB);
}

static size_t pick_align(struct harness_rng *r)
{
    uint64_t k = harness_rng_below(r, 100);
    if (k < 70)
        return 8;
    if (k < 85)
        return 16;
    if (k < 99)
        return (size_t)1 << harness_rng_below(r, 13);
    return (size_t)1 << (13 + harness_rng_below(r, 4));
}

static void model_compare(const struct model *m)
{
    struct ha_stats s = stats_now();
    CHECK_EQ(s.bytes_used, m->used);
    CHECK_EQ(s.allocs, m->allocs);
    CHECK(s.frees >= m->frees && s.frees <= m->frees + m->frees_slack);
    CHECK_EQ(s.page_allocs, m->page_allocs);
    CHECK_EQ(s.page_frees, m->page_frees);
    CHECK_EQ(s.failures, m->failures);
    CHECK_EQ(s.pages_used + s.pages_free, s.pages_total);
    CHECK(s.bytes_peak >= s.bytes_used);
}

static void track_new(struct model *m, struct slot *sl, char *p, size_t size, size_t align,
                      uint64_t id)
{
    CHECK(is_aligned(p, align));
    size_t u = ha_usable_size(p);
    CHECK(u >= size);
    intervals_add((uintptr_t)p, u, (uint32_t)(id * 2654435761u));
    *sl = (struct slot){ p, K_BYTES, size, align, u, 0, id };
    m->used += u;
}

static void stress_run(uint64_t seed, uint64_t ops)
{
    heap_setup(TEST_CHECKED_BUILD ? 64 * MiB : 256 * MiB);
    warm_up_cpu();
    enum { NSLOTS = 4096 / CHECKED_SHRINK };
    struct slot *slots = calloc(NSLOTS, sizeof *slots);
    nodes = calloc(NSLOTS + 1, sizeof *nodes);
    CHECK(slots && nodes);
    struct harness_rng r;
    harness_rng_seed(&r, seed);
    struct model m = { 0 };
    struct ha_stats s0 = stats_now();
    m.allocs = s0.allocs;
    m.frees = s0.frees;
    m.page_allocs = s0.page_allocs;
    m.page_frees = s0.page_frees;
    m.failures = s0.failures;
    uint64_t next_id = 1, check_every = ops / 20 + 1;

    for (uint64_t op = 0; op < ops; op++) {
        if (op % 997 == 0)
            model_compare(&m);
        if (op % check_every == 0)
            CHECK_HEAP();
        struct slot *sl = &slots[harness_rng_below(&r, NSLOTS)];
        uint64_t what = harness_rng_below(&r, 100);
        if (sl->kind == K_NONE) {
            uint64_t id = next_id++;
            if (what < 8) {
                size_t count = 1 + (size_t)harness_rng_below(&r, harness_rng_below(&r, 8) ? 4 : 64);
                size_t align = (size_t)HA_PAGE_SIZE << harness_rng_below(&r, 5);
                bool zero = harness_rng_below(&r, 2);
                char *p = zero ? ha_alloc_pages_zeroed(count, align) : ha_alloc_pages(count, align);
                if (!p) {
                    m.failures++;
                    continue;
                }
                m.page_allocs++;
                CHECK(is_aligned(p, align));
                if (zero)
                    CHECK(all_zero(p, count * HA_PAGE_SIZE));
                intervals_add((uintptr_t)p, count * HA_PAGE_SIZE, (uint32_t)(id * 2654435761u));
                *sl = (struct slot){ p, K_PAGES, count * HA_PAGE_SIZE, align, 0, count, id };
                stamp(p, count * HA_PAGE_SIZE, id);
                continue;
            }
            size_t size = pick_size(&r), align = pick_align(&r);
            char *p;
            bool zero = what < 25;
            if (zero)
                p = ha_alloc_zeroed(size, align);
            else if (what < 30)
                p = ha_realloc(NULL, size, align);
            else
                p = ha_alloc(size, align);
            if (!p) {
                m.failures++;
                continue;
            }
            m.allocs++;
            if (zero)
                CHECK(all_zero(p, size));
            track_new(&m, sl, p, size, align, id);
            stamp(p, size, id);
            continue;
        }

        stamp_check(sl->p, sl->size, sl->size, sl->id);
        if (sl->kind == K_PAGES) {
            intervals_remove((uintptr_t)sl->p);
            if (sl->pages > 1 && what < 30) {
                /* Give back the tail, keep the head. */
                size_t keep = 1 + (size_t)harness_rng_below(&r, sl->pages - 1);
                ha_free_pages(sl->p + keep * HA_PAGE_SIZE, sl->pages - keep);
                m.page_frees++;
                sl->pages = keep;
                sl->size = keep * HA_PAGE_SIZE;
                intervals_add((uintptr_t)sl->p, sl->size, (uint32_t)(sl->id * 2654435761u));
                stamp(sl->p, sl->size, sl->id);
                continue;
            }
            ha_free_pages(sl->p, sl->pages);
            m.page_frees++;
            memset(sl, 0, sizeof *sl);
            continue;
        }

        if (what < 30) {
            size_t nsize = harness_rng_below(&r, 3) ? pick_size(&r) : sl->size + (size_t)harness_rng_below(&r, 64 * KiB);
            if (harness_rng_below(&r, 50) == 0)
                nsize = 0;
            char *q = ha_realloc(sl->p, nsize, sl->align);
            if (nsize == 0) {
                CHECK(q == NULL);
                intervals_remove((uintptr_t)sl->p);
                m.used -= sl->usable;
                m.frees_slack++;
                memset(sl, 0, sizeof *sl);
                continue;
            }
            if (!q) {
                /* Failure: the old block is untouched. */
                m.failures++;
                stamp_check(sl->p, sl->size, sl->size, sl->id);
                continue;
            }
            size_t keep = sl->size < nsize ? sl->size : nsize;
            stamp_check(q, keep, sl->size, sl->id);
            intervals_remove((uintptr_t)sl->p);
            m.used -= sl->usable;
            if (q != sl->p) {
                m.allocs++;
                m.frees_slack++;
            }
            uint64_t id = next_id++;
            track_new(&m, sl, q, nsize, sl->align, id);
            stamp(q, nsize, id);
            continue;
        }

        intervals_remove((uintptr_t)sl->p);
        if (what < 65)
            ha_free(sl->p);
        else
            ha_free_sized(sl->p, sl->size, sl->align);
        m.frees++;
        m.used -= sl->usable;
        memset(sl, 0, sizeof *sl);
    }
    model_compare(&m);
    CHECK_HEAP();

    /* Drain: everything back, trim, and the heap is empty again. */
    for (size_t i = 0; i < NSLOTS; i++) {
        struct slot *sl = &slots[i];
        if (sl->kind == K_NONE)
            continue;
        stamp_check(sl->p, sl->size, sl->size, sl->id);
        if (sl->kind == K_PAGES) {
            ha_free_pages(sl->p, sl->pages);
        } else {
            ha_free(sl->p);
            m.used -= sl->usable;
        }
    }
    ha_trim();
    struct ha_stats s = stats_now();
    printf("ops %llu, peak %zu bytes, %zu pages; end: bytes_used %zu pages_used %zu\n",
           (unsigned long long)ops, s.bytes_peak, s.pages_peak, s.bytes_used, s.pages_used);
    CHECK_EQ(m.used, 0);
    CHECK_EQ(s.bytes_used, 0);
    CHECK_EQ(s.pages_used, s0.pages_used);
    CHECK_EQ(s.pages_largest_run, s0.pages_largest_run);
    CHECK_HEAP();
    free(slots);
    free(nodes);
}

static const uint64_t seeds[] = { 0x5EED5EED5EED0001ull, 0x0123456789ABCDEFull,
                                  0xDEADBEEFCAFEF00Dull, 0x2545F4914F6CDD1Dull };

static uint64_t current_seed;

static void stress_one(void)
{
    harness_seed_announce("stress", current_seed);
    stress_run(current_seed, harness_scale(750000) / CHECKED_SHRINK);
}

int main(int argc, char **argv)
{
    /* Replay: test_stress SEED [OPS] */
    if (argc > 1) {
        current_seed = strtoull(argv[1], NULL, 0);
        harness_seed_announce("stress", current_seed);
        stress_run(current_seed, argc > 2 ? strtoull(argv[2], NULL, 0) : harness_scale(750000) / CHECKED_SHRINK);
        printf("PASS stress replay\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "stress seed %zu", i);
        current_seed = seeds[i];
        run_isolated(name, stress_one);
    }
    return harness_done();
}
