/*
 * Single-hart checks of the C API: pages, exhaustion, byte edge cases,
 * randomised byte churn, realloc growth.  Every block handed out is filled
 * with a pattern derived from a seed and verified before it is freed, so a
 * block handed out twice, or memory that moves wrongly on realloc, shows up
 * as a mismatch.
 */
#include "hartalloc.h"
#include "kc.h"

#define MIB (1024u * 1024u)
#define NOT_FOUND ((size_t)-1)

/* ---- patterns ---- */

/* Above this, only one word per 64 bytes (and the ends) is written and
 * checked: enough to catch an overlap, affordable in QEMU for MiB blocks. */
#define PATTERN_DENSE_MAX 4096u

static uint64_t pattern_word(uint64_t seed, size_t i)
{
    return seed ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull);
}

static uint8_t pattern_byte(uint64_t seed, size_t off)
{
    return (uint8_t)(pattern_word(seed, off) >> 56);
}

void kc_fill(void *p, size_t len, uint64_t seed)
{
    uint64_t *w = p; /* every block is at least 8-byte aligned */
    size_t words = len / 8, step = len > PATTERN_DENSE_MAX ? 8 : 1;
    for (size_t i = 0; i < words; i += step)
        w[i] = pattern_word(seed, i);
    if (words)
        w[words - 1] = pattern_word(seed, words - 1);
    for (size_t off = words * 8; off < len; off++)
        ((uint8_t *)p)[off] = pattern_byte(seed, off);
}

size_t kc_verify(const void *p, size_t len, uint64_t seed)
{
    const uint64_t *w = p;
    size_t words = len / 8, step = len > PATTERN_DENSE_MAX ? 8 : 1;
    for (size_t i = 0; i < words; i += step)
        if (w[i] != pattern_word(seed, i))
            return i * 8;
    if (words && w[words - 1] != pattern_word(seed, words - 1))
        return (words - 1) * 8;
    for (size_t off = words * 8; off < len; off++)
        if (((const uint8_t *)p)[off] != pattern_byte(seed, off))
            return off;
    return NOT_FOUND;
}

/* Verify the prefix [0, len) of a block filled for a larger (dense or
 * sparse) length: read only words that both layouts wrote. */
size_t kc_verify_prefix(const void *p, size_t filled_len, size_t len, uint64_t seed)
{
    const uint64_t *w = p;
    size_t step = filled_len > PATTERN_DENSE_MAX ? 8 : 1, words = len / 8;
    for (size_t i = 0; i < words; i += step)
        if (w[i] != pattern_word(seed, i))
            return i * 8;
    return NOT_FOUND;
}

static bool all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i])
            return false;
    return true;
}

/* ---- page test ---- */

void test_pages(struct kc_check *c)
{
    struct ha_stats s0, s1;
    ha_get_stats(&s0);

    void *f1 = ha_alloc_pages(1, 0);
    void *f2 = ha_alloc_pages(1, 0);
    KC_EXPECT(c, f1 && f2 && f1 != f2, "frames 1, 2: %p %p", f1, f2);
    kc_printf("  frame 1 %p, frame 2 %p\n", f1, f2);
    const char *why;
    KC_EXPECT(c, !(why = kc_range_problem(f1, HA_PAGE_SIZE)), "frame 1 %p: %s", f1, why);
    KC_EXPECT(c, !(why = kc_range_problem(f2, HA_PAGE_SIZE)), "frame 2 %p: %s", f2, why);
    KC_EXPECT(c, ((uintptr_t)f1 | (uintptr_t)f2) % HA_PAGE_SIZE == 0, "frames not page aligned");
    kc_fill(f1, HA_PAGE_SIZE, 1);
    kc_fill(f2, HA_PAGE_SIZE, 2);
    ha_free_pages(f1, 1);
    void *f3 = ha_alloc_pages(1, 0);
    kc_printf("  freed frame 1, frame 3 %p\n", f3);
    KC_EXPECT(c, f3 == f1, "frame 3 %p is not frame 1 %p", f3, f1);
    KC_EXPECT(c, kc_verify(f2, HA_PAGE_SIZE, 2) == NOT_FOUND, "frame 2 changed");
    ha_free_pages(f2, 1);
    ha_free_pages(f3, 1);

    /* Contiguous aligned runs. */
    static const struct { size_t count, align; } runs[] = {
        { 16, 64 * 1024 }, { 3, 0 }, { 512, 2 * MIB }, { 100, 1 * MIB }, { 1, 1 * MIB },
    };
    void *got[sizeof runs / sizeof runs[0]];
    for (unsigned i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        size_t align = runs[i].align ? runs[i].align : HA_PAGE_SIZE;
        size_t len = runs[i].count * HA_PAGE_SIZE;
        void *p = got[i] = ha_alloc_pages(runs[i].count, runs[i].align);
        KC_EXPECT(c, p, "%zu pages at %zu KiB: NULL", runs[i].count, align / 1024);
        KC_EXPECT(c, (uintptr_t)p % align == 0, "%zu pages at %zu KiB: %p misaligned",
                  runs[i].count, align / 1024, p);
        KC_EXPECT(c, !(why = kc_range_problem(p, len)), "%zu pages at %p: %s", runs[i].count, p, why);
        kc_fill(p, len, 100 + i);
        if (i == 0)
            kc_printf("  16 pages at 64 KiB: %p\n", p);
    }
    for (unsigned i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        size_t len = runs[i].count * HA_PAGE_SIZE;
        KC_EXPECT(c, kc_verify(got[i], len, 100 + i) == NOT_FOUND, "run %p overwritten", got[i]);
    }
    /* A sub-run may be freed on its own (hartalloc.h). */
    ha_free_pages((char *)got[2] + 256 * HA_PAGE_SIZE, 256);
    ha_free_pages(got[2], 256);
    for (unsigned i = 0; i < sizeof runs / sizeof runs[0]; i++)
        if (i != 2)
            ha_free_pages(got[i], runs[i].count);

    /* Zeroed pages after the same pages were dirtied. */
    void *d = ha_alloc_pages(8, 0);
    KC_EXPECT(c, d, "8 pages: NULL");
    for (size_t i = 0; i < 8 * HA_PAGE_SIZE; i += 64)
        ((volatile uint8_t *)d)[i] = 0xA5;
    ha_free_pages(d, 8);
    void *z = ha_alloc_pages_zeroed(8, 0);
    KC_EXPECT(c, z && all_zero(z, 8 * HA_PAGE_SIZE), "ha_alloc_pages_zeroed(8) %p not zero", z);
    ha_free_pages(z, 8);

    ha_get_stats(&s1);
    KC_EXPECT(c, s1.pages_used == s0.pages_used && s1.pages_free == s0.pages_free,
              "pages used/free %zu/%zu after, %zu/%zu before", s1.pages_used, s1.pages_free,
              s0.pages_used, s0.pages_free);
    KC_EXPECT(c, s1.page_allocs - s0.page_allocs == 10, "page_allocs grew by %lu, expected 10",
              (unsigned long)(s1.page_allocs - s0.page_allocs));
    kc_snprintf(c->note, sizeof c->note, "frame 3 == frame 1 at %p; 16 pages at 64 KiB, 2 MiB at 2 MiB", f1);
}

/* ---- page exhaustion ---- */

/* Header written into each run while the heap is exhausted: the runs form
 * a list, and every page carries a stamp naming its run and index. */
struct exhaust_run {
    struct exhaust_run *next;
    size_t count;
    uint64_t id;
};

static uint64_t exhaust_stamp(uint64_t id, size_t page)
{
    return 0x5EED000000000000ull ^ (id << 24) ^ page;
}

void test_page_exhaustion(struct kc_check *c)
{
    struct ha_stats s0, s1;
    ha_trim(); /* pages the byte allocator caches would not be counted free */
    ha_get_stats(&s0);
    struct exhaust_run *list = NULL;
    size_t count = 256, pages = 0, runs = 0, in_early = 0;
    uint64_t failures_seen = 0;
    const char *why;
    while (count) {
        void *p = ha_alloc_pages(count, 0);
        if (!p) {
            failures_seen++;
            count /= 2;
            continue;
        }
        KC_EXPECT(c, !(why = kc_range_problem(p, count * HA_PAGE_SIZE)),
                  "run of %zu pages at %p: %s", count, p, why);
        for (size_t i = 0; i < count; i++) {
            uintptr_t pg = (uintptr_t)p + i * HA_PAGE_SIZE;
            ((uint64_t *)pg)[HA_PAGE_SIZE / 8 - 1] = exhaust_stamp(runs, i);
            if (pg >= kc_early_base && pg < kc_early_base + kc_early_size)
                in_early++;
        }
        struct exhaust_run *r = p;
        r->next = list;
        r->count = count;
        r->id = runs++;
        list = r;
        pages += count;
    }
    ha_get_stats(&s1);
    /* Out of memory is not a fault: NULL, counted, and the heap goes on. */
    void *none = ha_alloc_pages(1, 0);
    KC_EXPECT(c, none == NULL, "a page was handed out after exhaustion: %p", none);
    KC_EXPECT(c, s1.pages_free == 0, "pages_free = %zu when exhausted", s1.pages_free);
    KC_EXPECT(c, s1.failures >= s0.failures + failures_seen,
              "failures %lu -> %lu, expected %lu more", (unsigned long)s0.failures,
              (unsigned long)s1.failures, (unsigned long)failures_seen);
    KC_EXPECT(c, pages == s0.pages_free, "got %zu pages, %zu were free", pages, s0.pages_free);
    /* The early range's unused remainder was given to the page allocator. */
    KC_EXPECT(c, in_early > 0, "no page of the early range's remainder was handed out");

    int r = ha_check();
    KC_EXPECT(c, r == 0, "ha_check() = %d while exhausted: %s", r, ha_check_message());
    size_t freed = 0;
    while (list) {
        struct exhaust_run *run = list;
        list = run->next;
        size_t n = run->count;
        for (size_t i = 0; i < n; i++) {
            uint64_t got = ((uint64_t *)((uintptr_t)run + i * HA_PAGE_SIZE))[HA_PAGE_SIZE / 8 - 1];
            KC_EXPECT(c, got == exhaust_stamp(run->id, i),
                      "page %zu of run %lu at %p overwritten: handed out twice?", i,
                      (unsigned long)run->id, (void *)run);
        }
        ha_free_pages(run, n);
        freed += n;
    }
    ha_get_stats(&s1);
    KC_EXPECT(c, s1.pages_free == s0.pages_free, "pages_free %zu after freeing all, %zu before",
              s1.pages_free, s0.pages_free);
    KC_EXPECT(c, s1.pages_largest_run == s0.pages_largest_run,
              "largest free run %zu after, %zu before: not coalesced", s1.pages_largest_run,
              s0.pages_largest_run);
    kc_snprintf(c->note, sizeof c->note,
                "%zu pages (%zu MiB) in %zu runs, none reserved, %zu from the early range; all back",
                pages, pages * HA_PAGE_SIZE / MIB, runs, in_early);
}

/* ---- byte edge cases ---- */

void test_byte_edges(struct kc_check *c)
{
    struct ha_stats s0, s1;
    ha_get_stats(&s0);

    void *a = ha_alloc(0, 16), *b = ha_alloc(0, 16);
    KC_EXPECT(c, a && b && a != b, "ha_alloc(0) twice: %p %p", a, b);
    ha_free(a);
    ha_free(b);
    ha_free(NULL);

    /* Bad alignments and impossible sizes: NULL, not a fault. */
    KC_EXPECT(c, ha_alloc(24, 3) == NULL, "ha_alloc(24, 3) succeeded");
    KC_EXPECT(c, ha_alloc(24, 48) == NULL, "ha_alloc(24, 48) succeeded");
    KC_EXPECT(c, ha_alloc(SIZE_MAX, 16) == NULL, "ha_alloc(SIZE_MAX) succeeded");
    KC_EXPECT(c, ha_alloc(SIZE_MAX - HA_PAGE_SIZE, HA_PAGE_SIZE) == NULL,
              "ha_alloc(SIZE_MAX - 4096, 4096) succeeded");
    KC_EXPECT(c, ha_alloc((size_t)1 << 40, 16) == NULL, "ha_alloc(1 TiB) succeeded");
    KC_EXPECT(c, ha_alloc_pages((size_t)1 << 30, 0) == NULL, "ha_alloc_pages(2^30) succeeded");
    ha_get_stats(&s1);
    KC_EXPECT(c, s1.failures >= s0.failures + 6, "failures %lu -> %lu for 6 failed calls",
              (unsigned long)s0.failures, (unsigned long)s1.failures);

    /* Every alignment from 1 byte to 64 KiB, several sizes each. */
    for (unsigned sh = 0; sh <= 16; sh++) {
        size_t align = (size_t)1 << sh;
        static const size_t sizes[] = { 1, 8, 24, 100, 1000, 5000 };
        for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t size = sizes[i] + align / 2;
            void *p = ha_alloc(size, align);
            KC_EXPECT(c, p, "ha_alloc(%zu, %zu) = NULL", size, align);
            KC_EXPECT(c, (uintptr_t)p % align == 0, "ha_alloc(%zu, %zu) = %p misaligned", size,
                      align, p);
            KC_EXPECT(c, ha_usable_size(p) >= size, "usable %zu < %zu", ha_usable_size(p), size);
            kc_fill(p, size, size ^ align);
            KC_EXPECT(c, kc_verify(p, size, size ^ align) == NOT_FOUND, "pattern lost");
            ha_free_sized(p, size, align);
        }
    }

    /* Zeroed memory really is zero, also when recycled from dirty blocks. */
    static const size_t zsizes[] = { 16, 200, 1024, 3000, 40000, 200000 };
    for (unsigned i = 0; i < sizeof zsizes / sizeof zsizes[0]; i++) {
        uint8_t *p = ha_alloc(zsizes[i], 16);
        KC_EXPECT(c, p, "ha_alloc(%zu) = NULL", zsizes[i]);
        for (size_t k = 0; k < zsizes[i]; k++)
            p[k] = 0xAA;
        ha_free(p);
        uint8_t *z = ha_alloc_zeroed(zsizes[i], 16);
        KC_EXPECT(c, z && all_zero(z, zsizes[i]), "ha_alloc_zeroed(%zu) = %p not zero",
                  zsizes[i], (void *)z);
        ha_free(z);
    }

    /* realloc: NULL acts as alloc, 0 frees, failure keeps the block. */
    void *r = ha_realloc(NULL, 100, 16);
    KC_EXPECT(c, r, "ha_realloc(NULL, 100) = NULL");
    kc_fill(r, 100, 77);
    void *r2 = ha_realloc(r, (size_t)1 << 40, 16);
    KC_EXPECT(c, r2 == NULL, "ha_realloc to 1 TiB succeeded");
    KC_EXPECT(c, kc_verify(r, 100, 77) == NOT_FOUND, "failed realloc changed the block");
    r2 = ha_realloc(r, 0, 16);
    KC_EXPECT(c, r2 == NULL, "ha_realloc(p, 0) = %p, expected NULL", r2);

    ha_get_stats(&s1);
    KC_EXPECT(c, s1.bytes_used == s0.bytes_used, "bytes_used %zu after, %zu before",
              s1.bytes_used, s0.bytes_used);
    kc_snprintf(c->note, sizeof c->note,
                "size 0, bad align, huge sizes, align 1 B..64 KiB, zeroed, realloc NULL/0/fail");
}

/* ---- byte churn ---- */

#define CHURN_SEED 0xC0FFEE1234ull
#define CHURN_SLOTS 512
#define CHURN_OPS 40000

struct churn_slot {
    uint8_t *p;
    size_t size, align;
    uint64_t seed;
};

/* Mostly small, some mid, a few large: the shape of kernel allocations. */
static size_t churn_size(uint64_t *rng)
{
    uint64_t r = kc_rand(rng);
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 60)
        return 1 + r % 256;
    if (pick < 85)
        return 257 + r % (4096 - 256);
    if (pick < 97)
        return 4097 + r % (128 * 1024 - 4096);
    return 128 * 1024 + 1 + r % (MIB - 128 * 1024);
}

static size_t churn_align(uint64_t *rng)
{
    uint64_t r = kc_rand(rng);
    if (r % 8)
        return 16;
    return (size_t)1 << ((r >> 8) % 17); /* 1 B .. 64 KiB */
}

void test_byte_churn(struct kc_check *c)
{
    uint64_t rng = CHURN_SEED;
    kc_printf("  byte churn: seed %lx, %u slots, %u ops\n", (unsigned long)CHURN_SEED,
              CHURN_SLOTS, CHURN_OPS);
    struct ha_stats s0, s1;
    ha_get_stats(&s0);
    struct churn_slot *slot = ha_alloc_zeroed(CHURN_SLOTS * sizeof *slot, 16);
    KC_EXPECT(c, slot, "slot table: NULL");
    unsigned allocs = 0, frees = 0, reallocs = 0, in_place = 0, zeroed = 0;
    size_t live = 0, live_peak = 0;
    const char *why;
    for (unsigned op = 0; op < CHURN_OPS; op++) {
        uint64_t r = kc_rand(&rng);
        struct churn_slot *s = &slot[r % CHURN_SLOTS];
        unsigned what = (unsigned)((r >> 16) % 16);
        if (!s->p) {
            s->size = churn_size(&rng);
            s->align = churn_align(&rng);
            s->seed = kc_rand(&rng);
            bool zero = what == 0;
            s->p = zero ? ha_alloc_zeroed(s->size, s->align) : ha_alloc(s->size, s->align);
            KC_EXPECT(c, s->p, "op %u: ha_alloc(%zu, %zu) = NULL", op, s->size, s->align);
            KC_EXPECT(c, (uintptr_t)s->p % s->align == 0, "op %u: %p not aligned to %zu", op,
                      (void *)s->p, s->align);
            KC_EXPECT(c, !(why = kc_range_problem(s->p, s->size)), "op %u: block %p+%zu: %s",
                      op, (void *)s->p, s->size, why);
            KC_EXPECT(c, ha_usable_size(s->p) >= s->size, "op %u: usable %zu < %zu", op,
                      ha_usable_size(s->p), s->size);
            if (zero) {
                KC_EXPECT(c, all_zero(s->p, s->size), "op %u: ha_alloc_zeroed(%zu) not zero",
                          op, s->size);
                zeroed++;
            }
            kc_fill(s->p, s->size, s->seed);
            allocs++;
            live += s->size;
            if (live > live_peak)
                live_peak = live;
            continue;
        }
        size_t bad = kc_verify(s->p, s->size, s->seed);
        KC_EXPECT(c, bad == NOT_FOUND, "op %u: block %p (%zu B) overwritten at +%zu", op,
                  (void *)s->p, s->size, bad);
        if (what < 9) {
            if (what & 1)
                ha_free_sized(s->p, s->size, s->align);
            else
                ha_free(s->p);
            s->p = NULL;
            live -= s->size;
            frees++;
        } else if (what < 13) {
            size_t new_size = churn_size(&rng);
            uint8_t *q = ha_realloc(s->p, new_size, s->align);
            KC_EXPECT(c, q, "op %u: ha_realloc(%zu -> %zu) = NULL", op, s->size, new_size);
            KC_EXPECT(c, (uintptr_t)q % s->align == 0, "op %u: realloc lost alignment %zu", op,
                      s->align);
            size_t keep = s->size < new_size ? s->size : new_size;
            bad = kc_verify_prefix(q, s->size, keep, s->seed);
            KC_EXPECT(c, bad == NOT_FOUND, "op %u: realloc %zu -> %zu lost data at +%zu", op,
                      s->size, new_size, bad);
            in_place += q == s->p;
            reallocs++;
            live = live - s->size + new_size;
            if (live > live_peak)
                live_peak = live;
            s->p = q;
            s->size = new_size;
            kc_fill(q, new_size, s->seed);
        }
    }
    for (unsigned i = 0; i < CHURN_SLOTS; i++) {
        struct churn_slot *s = &slot[i];
        if (!s->p)
            continue;
        size_t bad = kc_verify(s->p, s->size, s->seed);
        KC_EXPECT(c, bad == NOT_FOUND, "block %p (%zu B) overwritten at +%zu", (void *)s->p,
                  s->size, bad);
        ha_free_sized(s->p, s->size, s->align);
    }
    ha_free(slot);
    ha_get_stats(&s1);
    KC_EXPECT(c, s1.bytes_used == s0.bytes_used, "bytes_used %zu after, %zu before",
              s1.bytes_used, s0.bytes_used);
    kc_snprintf(c->note, sizeof c->note,
                "seed %lx: %u allocs (%u zeroed), %u frees, %u reallocs (%u in place), peak %zu KiB live",
                (unsigned long)CHURN_SEED, allocs, zeroed, frees, reallocs, in_place,
                live_peak / 1024);
}

/* ---- realloc growth ---- */

void test_realloc_growth(struct kc_check *c)
{
    struct ha_stats s0, s1;
    ha_get_stats(&s0);
    /* 64 MiB where RAM allows, a quarter of the free pages where it does not. */
    size_t target = 64 * MIB;
    while (target > s0.pages_free * HA_PAGE_SIZE / 4)
        target /= 2;
    const uint64_t seed = 0x6E0;
    size_t size = 16;
    uint8_t *p = ha_alloc(size, 16);
    KC_EXPECT(c, p, "ha_alloc(16) = NULL");
    kc_fill(p, size, seed);
    unsigned steps = 0, moved = 0;
    while (size < target) {
        size_t next = size * 2;
        uint8_t *q = ha_realloc(p, next, 16);
        KC_EXPECT(c, q, "ha_realloc(%zu -> %zu) = NULL", size, next);
        size_t bad = kc_verify_prefix(q, size, size, seed);
        KC_EXPECT(c, bad == NOT_FOUND, "growth %zu -> %zu lost data at +%zu", size, next, bad);
        moved += q != p;
        steps++;
        p = q;
        size = next;
        kc_fill(p, size, seed);
    }
    unsigned shrink_moved = 0;
    while (size > 16) {
        size_t next = size / 2;
        uint8_t *q = ha_realloc(p, next, 16);
        KC_EXPECT(c, q, "ha_realloc(%zu -> %zu) = NULL", size, next);
        size_t bad = kc_verify_prefix(q, size, next, seed);
        KC_EXPECT(c, bad == NOT_FOUND, "shrink %zu -> %zu lost data at +%zu", size, next, bad);
        shrink_moved += q != p;
        p = q;
        size = next;
        kc_fill(p, size, seed);
    }
    ha_free_sized(p, size, 16);
    ha_get_stats(&s1);
    KC_EXPECT(c, s1.bytes_used == s0.bytes_used, "bytes_used %zu after, %zu before",
              s1.bytes_used, s0.bytes_used);
    kc_snprintf(c->note, sizeof c->note, "16 B -> %zu MiB in %u steps (%u moved), back (%u moved)",
                target / MIB, steps, moved, shrink_moved);
}
