/*
 * libFuzzer target: the input bytes become a life cycle and a sequence of
 * hartalloc API calls, checked against a shadow model.
 *
 * Built twice (mk/fuzz.mk):
 *   fuzz-api      the default core, ASan+UBSan;
 *   fuzz-checked  the core with HA_CHECKED=1, ASan+UBSan, and deliberate bad
 *                 calls mixed in (FUZZ_BAD_CALLS): each runs in a forked
 *                 child whose fatal hook reports the message; the fault must
 *                 fire with the right message and leave the heap intact.
 *
 * Every input starts from a fresh allocator (state.h) over fresh memory, so
 * the life cycle is fuzzed too:
 *   ha_early_init (or not) -> setup commands: ha_add_region (zeroed or not,
 *   sub-page bounds, one possibly holding the early range, overlapping
 *   ones), ha_reserve, byte and page calls in the early phase ->
 *   ha_final_init -> calls, including regions and reserves added late ->
 *   everything freed, ha_trim, and the heap back at its baseline.
 *
 * What the shadow model asserts (any breach aborts: libFuzzer keeps the
 * input):
 *   - every block is aligned, lies inside the early range or the regions,
 *     outside the reserved ranges, and overlaps no other live block or page
 *     run (sorted interval array);
 *   - contents survive: each block carries a pattern, checked on free and
 *     realloc (and the prefix a realloc keeps);
 *   - zeroed calls return zeroed memory;
 *   - statistics are exact: allocs, frees, page_allocs, page_frees,
 *     failures, and (default build) bytes_used == the sum of the usable
 *     sizes of live blocks; pages_used + pages_free == pages_total;
 *   - with a free run of enough pages, a page request does not fail;
 *   - ha_check() == 0 every few calls and at the end; at the end, with
 *     everything freed and ha_trim() done, bytes_used is 0 and pages_used is
 *     back to the baseline taken just after ha_final_init.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hartalloc.h"
#include "state.h"

#ifndef FUZZ_BAD_CALLS
#define FUZZ_BAD_CALLS 0
#endif
#ifndef HA_CHECKED
#define HA_CHECKED 0
#endif

#define PAGE ((size_t)HA_PAGE_SIZE)
#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* All heap memory of one input comes from this area, mapped once at a fixed
 * address so that a crash replays the same addresses (the buddy orders are
 * relative to absolute addresses). */
#define AREA_SIZE (192 * MiB)
#define AREA_HINT ((uintptr_t)0x3a0000000000ull)

#define MAX_ITEMS 384       /* live blocks and page runs */
#define MAX_OPS 1500        /* calls per input */
#define MAX_RANGES 40       /* regions / reserves remembered */
#define CHECK_EVERY 24      /* ha_check() and stats every this many calls */
#define FULL_PATTERN (16 * KiB) /* larger blocks get a sampled pattern */

/* ------------------------------------------------------------- failure */

__attribute__((noreturn, format(printf, 1, 2)))
static void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\nfuzz: shadow model violated: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

#define EXPECT(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond))                                                           \
            fuzz_fail(__VA_ARGS__);                                            \
    } while (0)

/* --------------------------------------------------------------- input */

struct input {
    const uint8_t *p;
    size_t n;
};

/* Past the end the input reads as zeros: every prefix is a valid program. */
static uint8_t in_u8(struct input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t in_u16(struct input *in)
{
    uint16_t lo = in_u8(in);
    return (uint16_t)(lo | (uint16_t)in_u8(in) << 8);
}

static uint32_t in_u32(struct input *in)
{
    uint32_t lo = in_u16(in);
    return lo | (uint32_t)in_u16(in) << 16;
}

/* ------------------------------------------------------ platform hooks */

static unsigned cur_cpu;
/* In a bad-call child: where the fatal hook reports; -1 in the fuzzer. */
static int fatal_fd = -1;
#define FATAL_EXIT 86

unsigned ha_platform_cpu_id(void) { return cur_cpu; }
uintptr_t ha_platform_irq_save(void) { return 0; }
void ha_platform_irq_restore(uintptr_t state) { (void)state; }

/* Switch to CPU c, declaring what the hooks now are: the interrupt hooks
 * always trivial, cpu_id too while the CPU is 0 (one thread: true at every
 * moment).  So the fast paths' copy that calls no hook is fuzzed on CPU 0,
 * the copy that calls them on the others. */
static void set_cpu(unsigned c)
{
    cur_cpu = c;
    ha_set_trivial_hooks(HA_TRIVIAL_IRQ_SAVE | HA_TRIVIAL_IRQ_RESTORE | (c == 0 ? HA_TRIVIAL_CPU_ID : 0));
}

void ha_platform_fatal(const char *msg, const void *addr)
{
    if (fatal_fd < 0) {
        fprintf(stderr, "\nfuzz: hartalloc reported a fault on a good call: %s at %p\n",
                msg ? msg : "(null)", addr);
        abort();
    }
    /* Report the message, then whether the heap is still intact (the
     * library validates before it changes anything). */
    char line[512];
    int rc = ha_check();
    int n = snprintf(line, sizeof line, "%s\n%s%s\n", msg ? msg : "(null)",
                     rc == 0 ? "intact" : "damaged: ", rc == 0 ? "" : ha_check_message());
    if (n > 0) {
        ssize_t w = write(fatal_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
    _exit(FATAL_EXIT);
}

/* --------------------------------------------------------------- ranges */

struct range {
    uintptr_t lo, hi;
};

static bool range_overlap(struct range a, struct range b) { return a.lo < b.hi && b.lo < a.hi; }

static struct range early_rg;           /* hi == 0: no early allocator */
static struct range regions[MAX_RANGES]; /* page-rounded inward, as added */
static unsigned n_regions;
static struct range reserves[MAX_RANGES]; /* page-rounded outward */
static unsigned n_reserves;
static bool final_done, late_reserve_done;

/* Is [lo, hi) covered by the early range and the regions together? */
static bool range_in_heap(uintptr_t lo, uintptr_t hi)
{
    uintptr_t at = lo;
    while (at < hi) {
        uintptr_t next = at;
        if (early_rg.hi && at >= early_rg.lo && at < early_rg.hi)
            next = early_rg.hi;
        for (unsigned i = 0; i < n_regions; i++)
            if (at >= regions[i].lo && at < regions[i].hi && regions[i].hi > next)
                next = regions[i].hi;
        if (next == at)
            return false;
        at = next;
    }
    return true;
}

/* Does [lo, hi) touch a reserved range outside the early range (reserves do
 * not apply to the early range)? */
static bool range_hits_reserve(uintptr_t lo, uintptr_t hi)
{
    for (unsigned i = 0; i < n_reserves; i++) {
        struct range r = reserves[i];
        if (!range_overlap(r, (struct range){ lo, hi }))
            continue;
        uintptr_t a = lo > r.lo ? lo : r.lo, b = hi < r.hi ? hi : r.hi;
        if (!(early_rg.hi && a >= early_rg.lo && b <= early_rg.hi))
            return true;
    }
    return false;
}

/* ------------------------------------------------------- shadow: items */

enum item_kind { ITEM_BYTES, ITEM_PAGES };

struct item {
    uintptr_t p;
    size_t req;      /* bytes asked for (bytes) or pages (pages) */
    size_t usable;   /* ha_usable_size (bytes); count * PAGE (pages) */
    size_t align;    /* what the block was allocated / last reallocated with */
    uintptr_t pat;   /* pattern origin: a split page run keeps its parent's */
    uint32_t tag;
    uint8_t kind;
    bool early;      /* from the early allocator (made before ha_final_init) */
};

static struct item items[MAX_ITEMS];
static unsigned n_items;
static uint32_t next_tag;

/* Live intervals, sorted by start; no two overlap. */
static struct range ivs[MAX_ITEMS];
static unsigned n_ivs;

static unsigned iv_lower_bound(uintptr_t lo)
{
    unsigned a = 0, b = n_ivs;
    while (a < b) {
        unsigned m = (a + b) / 2;
        if (ivs[m].lo < lo)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* The live interval holding addr, or -1. */
__attribute__((unused)) static int iv_find(uintptr_t addr)
{
    unsigned i = iv_lower_bound(addr + 1);
    if (i == 0)
        return -1;
    return addr < ivs[i - 1].hi ? (int)(i - 1) : -1;
}

__attribute__((unused)) static bool iv_overlaps(uintptr_t lo, uintptr_t hi)
{
    unsigned i = iv_lower_bound(lo);
    if (i < n_ivs && ivs[i].lo < hi)
        return true;
    return i > 0 && ivs[i - 1].hi > lo;
}

static void iv_insert(uintptr_t lo, uintptr_t hi, const char *what)
{
    unsigned i = iv_lower_bound(lo);
    if (i < n_ivs && ivs[i].lo < hi)
        fuzz_fail("%s [%#lx, %#lx) overlaps live [%#lx, %#lx)", what, (unsigned long)lo,
                  (unsigned long)hi, (unsigned long)ivs[i].lo, (unsigned long)ivs[i].hi);
    if (i > 0 && ivs[i - 1].hi > lo)
        fuzz_fail("%s [%#lx, %#lx) overlaps live [%#lx, %#lx)", what, (unsigned long)lo,
                  (unsigned long)hi, (unsigned long)ivs[i - 1].lo, (unsigned long)ivs[i - 1].hi);
    memmove(&ivs[i + 1], &ivs[i], (n_ivs - i) * sizeof ivs[0]);
    ivs[i] = (struct range){ lo, hi };
    n_ivs++;
}

static void iv_remove(uintptr_t lo)
{
    unsigned i = iv_lower_bound(lo);
    if (i >= n_ivs || ivs[i].lo != lo)
        fuzz_fail("internal: interval %#lx not found", (unsigned long)lo);
    memmove(&ivs[i], &ivs[i + 1], (n_ivs - i - 1) * sizeof ivs[0]);
    n_ivs--;
}

static struct range item_span(const struct item *it)
{
    return (struct range){ it->p, it->p + (it->usable ? it->usable : 1) };
}

/* --------------------------------------------------- shadow: contents */

static uint64_t pattern_word(uint32_t tag, size_t word)
{
    uint64_t x = ((uint64_t)tag << 32 | (uint32_t)word) * 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 29);
}

/* The words of a block filled over fill_len bytes that carry the pattern:
 * all of a small block; the first and last 4 KiB and one word in 64 of a
 * large one.  A word that the block ends inside carries its first bytes. */
static size_t pattern_next(size_t w, size_t fill_len)
{
    size_t words = (fill_len + 7) / 8;
    if (fill_len <= FULL_PATTERN || w + 1 < 512 || w + 1 >= words - 512)
        return w + 1;
    size_t n = (w + 64) & ~(size_t)63;
    return n < words - 512 ? n : words - 512;
}

/* Pattern over [p, p + len); the byte at p + i is byte (i + off) % 8 of
 * word (i + off) / 8, off = p - origin (a multiple of 8). */
static void pattern_fill(uintptr_t p, size_t len, uintptr_t origin, uint32_t tag)
{
    size_t words = (len + 7) / 8;
    for (size_t w = 0; w < words; w = pattern_next(w, len)) {
        uint64_t v = pattern_word(tag, (p - origin) / 8 + w);
        size_t n = len - w * 8 < 8 ? len - w * 8 : 8;
        memcpy((void *)(p + w * 8), &v, n);
    }
}

/* Check the first len bytes of a block that was filled over fill_len. */
static void pattern_check_prefix(uintptr_t p, size_t len, size_t fill_len, uintptr_t origin,
                                 uint32_t tag, const char *when)
{
    size_t words = (len + 7) / 8;
    for (size_t w = 0; w < words; w = pattern_next(w, fill_len)) {
        uint64_t v = pattern_word(tag, (p - origin) / 8 + w);
        size_t n = len - w * 8 < 8 ? len - w * 8 : 8;
        if (memcmp((const void *)(p + w * 8), &v, n) != 0)
            fuzz_fail("contents of block %#lx (%zu bytes) changed near +%zu (%s)", (unsigned long)p,
                      len, w * 8, when);
    }
}

static void pattern_check(uintptr_t p, size_t len, uintptr_t origin, uint32_t tag, const char *when)
{
    pattern_check_prefix(p, len, len, origin, tag, when);
}

static void zero_check(uintptr_t p, size_t len, const char *what)
{
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < len; i++)
        if (b[i])
            fuzz_fail("%s: %#lx + %zu of %zu bytes is not zero", what, (unsigned long)p, i, len);
}

/* Pages: the pattern on the first and last 256 bytes of each page. */
static void pages_fill(const struct item *it)
{
    for (size_t i = 0; i < it->req; i++) {
        uintptr_t pg = it->p + i * PAGE;
        pattern_fill(pg, 256, it->pat, it->tag);
        pattern_fill(pg + PAGE - 256, 256, it->pat, it->tag);
    }
}

static void pages_check(const struct item *it, const char *when)
{
    for (size_t i = 0; i < it->req; i++) {
        uintptr_t pg = it->p + i * PAGE;
        pattern_check(pg, 256, it->pat, it->tag, when);
        pattern_check(pg + PAGE - 256, 256, it->pat, it->tag, when);
    }
}

/* ------------------------------------------------------ shadow: stats */

static struct {
    uint64_t allocs, frees, page_allocs, page_frees, failures;
    size_t bytes_used;   /* sum of usable sizes of live byte blocks */
    size_t user_pages;   /* live pages from the page allocator */
    size_t peak_seen;
} model;

static struct ha_stats baseline; /* after ha_final_init and the cpu warm-up */
static unsigned n_cpus;

static void stats_check(const char *when)
{
    struct ha_stats s;
    ha_get_stats(&s);
    EXPECT(s.allocs == model.allocs, "stats.allocs %llu, model %llu (%s)",
           (unsigned long long)s.allocs, (unsigned long long)model.allocs, when);
    EXPECT(s.frees == model.frees, "stats.frees %llu, model %llu (%s)",
           (unsigned long long)s.frees, (unsigned long long)model.frees, when);
    EXPECT(s.page_allocs == model.page_allocs, "stats.page_allocs %llu, model %llu (%s)",
           (unsigned long long)s.page_allocs, (unsigned long long)model.page_allocs, when);
    EXPECT(s.page_frees == model.page_frees, "stats.page_frees %llu, model %llu (%s)",
           (unsigned long long)s.page_frees, (unsigned long long)model.page_frees, when);
    EXPECT(s.failures == model.failures, "stats.failures %llu, model %llu (%s)",
           (unsigned long long)s.failures, (unsigned long long)model.failures, when);
#if !HA_CHECKED
    /* The checked build counts the red zone, which usable_size hides. */
    EXPECT(s.bytes_used == model.bytes_used, "stats.bytes_used %zu, model %zu (%s)", s.bytes_used,
           model.bytes_used, when);
#endif
    EXPECT(s.bytes_peak >= s.bytes_used, "stats.bytes_peak %zu below bytes_used %zu (%s)",
           s.bytes_peak, s.bytes_used, when);
    /* The peak never falls (regressions/api/bytes-peak-falls). */
    EXPECT(s.bytes_peak >= model.peak_seen, "stats.bytes_peak %zu fell below an earlier %zu (%s)",
           s.bytes_peak, model.peak_seen, when);
    model.peak_seen = s.bytes_peak;
    if (final_done) {
        EXPECT(s.pages_used + s.pages_free == s.pages_total,
               "pages used %zu + free %zu != total %zu (%s)", s.pages_used, s.pages_free,
               s.pages_total, when);
        EXPECT(s.pages_used >= model.user_pages, "pages_used %zu < live user pages %zu (%s)",
               s.pages_used, model.user_pages, when);
        EXPECT(s.pages_peak >= s.pages_used, "pages_peak %zu < pages_used %zu (%s)", s.pages_peak,
               s.pages_used, when);
        EXPECT(s.pages_largest_run <= s.pages_free, "largest run %zu > free pages %zu (%s)",
               s.pages_largest_run, s.pages_free, when);
    }
}

static void heap_check(const char *when)
{
    int rc = ha_check();
    EXPECT(rc == 0, "ha_check() = %d: %s (%s)", rc, ha_check_message(), when);
}

/* ------------------------------------------------------- shadow: items */

static void item_add(struct item it, const char *what)
{
    struct range sp = item_span(&it);
    EXPECT(range_in_heap(sp.lo, sp.hi), "%s [%#lx, %#lx) lies outside the early range and regions",
           what, (unsigned long)sp.lo, (unsigned long)sp.hi);
    EXPECT(!range_hits_reserve(sp.lo, sp.hi), "%s [%#lx, %#lx) lies in a reserved range", what,
           (unsigned long)sp.lo, (unsigned long)sp.hi);
    iv_insert(sp.lo, sp.hi, what);
    items[n_items++] = it;
}

static void item_drop(unsigned i)
{
    iv_remove(items[i].p);
    items[i] = items[--n_items];
}

/* The size a sized free passes: the size asked for, 0 included
 * (regressions/api/early-free-sized-size0). */
static size_t sized_size(const struct item *it)
{
    return it->req;
}

/* A freed address history for the bad calls: blocks and page runs. */
#define FREED_MAX 32
static struct item freed[FREED_MAX];
static unsigned n_freed, freed_at;

static void freed_remember(const struct item *it)
{
    freed[freed_at] = *it;
    freed_at = (freed_at + 1) % FREED_MAX;
    if (n_freed < FREED_MAX)
        n_freed++;
}

/* -------------------------------------------------------------- decoding */

static size_t in_size(struct input *in)
{
    static const size_t edge[16] = {
        0, 1, 15, 16, 17, 1016, 1024, 1025, 8177, 4096, 4097, 65520,
        128 * KiB - 8, 128 * KiB, 128 * KiB + 1, 256 * KiB,
    };
    uint8_t c = in_u8(in);
    switch (c >> 5) {
    case 0: return c & 31;
    case 1:
    case 2: return (size_t)in_u8(in) * 4 + (c & 3);
    case 3: return in_u16(in) % 4096 + 1;
    case 4: return (size_t)in_u16(in) * 2 + (c & 1);
    case 5: return ((size_t)in_u16(in) % 512 + 1) * KiB - (c & 31);
    case 6: return edge[c & 15];
    default:
        if (c & 1)
            return SIZE_MAX - in_u8(in);
        return ((size_t)in_u8(in) % 4 + 1) * MiB + (c & 0x1e);
    }
}

static size_t in_align(struct input *in)
{
    uint8_t a = in_u8(in);
    if (a < 128)
        return (size_t)1 << (a % 5);
    if (a < 200)
        return (size_t)1 << (a % 13);
    if (a < 250)
        return (size_t)1 << (12 + a % 9);
    static const size_t odd[6] = { 0, 3, 24, 4097, (size_t)1 << 40, SIZE_MAX };
    return odd[a % 6];
}

static size_t in_page_count(struct input *in)
{
    uint8_t c = in_u8(in);
    if (c < 160)
        return 1 + c % 8;
    if (c < 230)
        return 1 + (size_t)in_u8(in);
    if (c < 250)
        return 1 + (size_t)in_u16(in) % 2048;
    static const size_t edge[6] = { 0, 16, 512, SIZE_MAX / PAGE, SIZE_MAX / PAGE + 1, SIZE_MAX };
    return edge[c % 6];
}

static size_t in_page_align(struct input *in)
{
    uint8_t a = in_u8(in);
    if (a < 200)
        return a & 1 ? 0 : PAGE << (a % 8);
    static const size_t odd[4] = { 1, 3 * PAGE, (size_t)1 << 40, SIZE_MAX / 2 + 1 };
    return odd[a % 4];
}

/* -------------------------------------------------------------- calls */

static uint8_t *area;
static uintptr_t area_cursor; /* layout: where the next region goes */
static uintptr_t area_dirty;  /* end of what the last input may have touched */

static bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

static bool phase_final(void) { return final_done; }

/* A page request that must not fail: enough contiguous free pages, no
 * alignment beyond a page. */
static bool pages_must_fit(size_t count, size_t align)
{
    if (!phase_final() || count == 0 || align > PAGE || count > SIZE_MAX / PAGE)
        return false;
    struct ha_stats s;
    ha_get_stats(&s);
    return count <= s.pages_largest_run;
}

static void byte_alloc(struct input *in, bool zeroed)
{
    size_t size = in_size(in), align = in_align(in);
    if (n_items >= MAX_ITEMS)
        return;
    void *p = zeroed ? ha_alloc_zeroed(size, align) : ha_alloc(size, align);
    if (!p) {
        model.failures++;
        return;
    }
    EXPECT(is_pow2(align), "ha_alloc(%zu, %zu) with a bad alignment returned %p", size, align, p);
    EXPECT(size < SIZE_MAX / 2, "ha_alloc(%zu) returned %p", size, p);
    EXPECT((uintptr_t)p % align == 0, "ha_alloc(%zu, %zu) = %p: misaligned", size, align, p);
    EXPECT((uintptr_t)p % 16 == 0, "ha_alloc(%zu, %zu) = %p: less than 16-aligned", size, align, p);
    size_t usable = ha_usable_size(p);
#if HA_CHECKED
    EXPECT(usable == (size ? size : 1), "ha_usable_size = %zu for a block of %zu (checked build)",
           usable, size);
#else
    EXPECT(usable >= size, "ha_usable_size = %zu for a block of %zu", usable, size);
#endif
    if (zeroed)
        zero_check((uintptr_t)p, size, "ha_alloc_zeroed");
    struct item it = { (uintptr_t)p, size, usable, align, (uintptr_t)p, next_tag++, ITEM_BYTES,
                       !final_done };
    item_add(it, zeroed ? "ha_alloc_zeroed" : "ha_alloc");
    pattern_fill(it.p, size, it.pat, it.tag);
    model.allocs++;
    model.bytes_used += usable;
}

static int pick(struct input *in, enum item_kind kind)
{
    if (!n_items)
        return -1;
    unsigned start = in_u16(in) % n_items;
    for (unsigned k = 0; k < n_items; k++) {
        unsigned i = (start + k) % n_items;
        if (items[i].kind == kind)
            return (int)i;
    }
    return -1;
}

static void byte_free(struct input *in, bool sized)
{
    int i = pick(in, ITEM_BYTES);
    if (i < 0)
        return;
    struct item it = items[i];
    pattern_check(it.p, it.req, it.pat, it.tag, "before free");
#if !HA_CHECKED
    EXPECT(ha_usable_size((void *)it.p) == it.usable, "usable size of %#lx changed: %zu -> %zu",
           (unsigned long)it.p, it.usable, ha_usable_size((void *)it.p));
#endif
    if (sized)
        ha_free_sized((void *)it.p, sized_size(&it), it.align);
    else
        ha_free((void *)it.p);
    model.frees++;
    model.bytes_used -= it.usable;
    freed_remember(&it);
    item_drop((unsigned)i);
}

static void byte_realloc(struct input *in)
{
    int i = in_u8(in) < 16 ? -1 : pick(in, ITEM_BYTES);
    size_t size = in_size(in), align = in_align(in);
    if (i < 0) {
        /* realloc(NULL) allocates. */
        if (n_items >= MAX_ITEMS)
            return;
        void *p = ha_realloc(NULL, size, align);
        if (!p) {
            model.failures++;
            return;
        }
        EXPECT(is_pow2(align) && (uintptr_t)p % align == 0, "ha_realloc(NULL, %zu, %zu) = %p", size,
               align, p);
        struct item it = { (uintptr_t)p, size, ha_usable_size(p), align, (uintptr_t)p, next_tag++,
                           ITEM_BYTES, !final_done };
        EXPECT(it.usable >= size, "ha_realloc(NULL): usable %zu < %zu", it.usable, size);
        item_add(it, "ha_realloc(NULL)");
        pattern_fill(it.p, size, it.pat, it.tag);
        model.allocs++;
        model.bytes_used += it.usable;
        return;
    }
    struct item old = items[i];
    pattern_check(old.p, old.req, old.pat, old.tag, "before realloc");
    void *q = ha_realloc((void *)old.p, size, align);
    if (size == 0) {
        EXPECT(q == NULL, "ha_realloc(p, 0) returned %p", q);
        model.frees++;
        model.bytes_used -= old.usable;
        freed_remember(&old);
        item_drop((unsigned)i);
        return;
    }
    if (!q) {
        model.failures++;
        pattern_check(old.p, old.req, old.pat, old.tag, "after a failed realloc");
#if !HA_CHECKED
        EXPECT(ha_usable_size((void *)old.p) == old.usable, "failed realloc changed the block");
#endif
        return;
    }
    EXPECT(is_pow2(align) && (uintptr_t)q % align == 0, "ha_realloc(%#lx, %zu, %zu) = %p: misaligned",
           (unsigned long)old.p, size, align, q);
    size_t keep = old.req < size ? old.req : size;
    item_drop((unsigned)i);
    model.bytes_used -= old.usable;
    if ((uintptr_t)q != old.p) {
        model.allocs++;
        model.frees++;
        freed_remember(&old);
    }
    pattern_check_prefix((uintptr_t)q, keep, old.req, old.pat - old.p + (uintptr_t)q, old.tag,
                         "after realloc");
    size_t usable = ha_usable_size(q);
#if HA_CHECKED
    EXPECT(usable == size, "ha_usable_size = %zu after realloc to %zu (checked build)", usable, size);
#else
    EXPECT(usable >= size, "ha_usable_size = %zu after realloc to %zu", usable, size);
#endif
    struct item it = { (uintptr_t)q, size, usable, align, (uintptr_t)q, next_tag++, ITEM_BYTES,
                       (uintptr_t)q == old.p ? old.early : !final_done };
    item_add(it, "ha_realloc");
    pattern_fill(it.p, size, it.pat, it.tag);
    model.bytes_used += usable;
}

static void pages_alloc(struct input *in, bool zeroed)
{
    size_t count = in_page_count(in), align = in_page_align(in);
    if (n_items >= MAX_ITEMS)
        return;
    size_t eff = align < PAGE ? PAGE : align;
    bool must = pages_must_fit(count, eff);
    bool was_final = phase_final();
    void *p = zeroed ? ha_alloc_pages_zeroed(count, align) : ha_alloc_pages(count, align);
    if (!p) {
        EXPECT(!must, "ha_alloc_pages(%zu, %zu) failed with a free run of enough pages", count, align);
        model.failures++;
        return;
    }
    EXPECT(count && count <= SIZE_MAX / PAGE && is_pow2(eff), "ha_alloc_pages(%zu, %zu) = %p", count,
           align, p);
    EXPECT((uintptr_t)p % eff == 0, "ha_alloc_pages(%zu, %zu) = %p: misaligned", count, align, p);
    if (zeroed)
        zero_check((uintptr_t)p, count * PAGE, "ha_alloc_pages_zeroed");
    bool early = early_rg.hi && (uintptr_t)p >= early_rg.lo && (uintptr_t)p < early_rg.hi && !was_final;
    struct item it = { (uintptr_t)p, count, count * PAGE, eff, (uintptr_t)p, next_tag++, ITEM_PAGES, early };
    item_add(it, zeroed ? "ha_alloc_pages_zeroed" : "ha_alloc_pages");
    pages_fill(&it);
    model.page_allocs++;
    if (was_final && !early)
        model.user_pages += count;
}

/* Free a run, or (page allocator runs) a whole-page sub-run of it. */
static void pages_free(struct input *in)
{
    int i = pick(in, ITEM_PAGES);
    if (i < 0)
        return;
    struct item it = items[i];
    pages_check(&it, "before ha_free_pages");
    size_t off = 0, n = it.req;
    uint8_t how = in_u8(in);
    if (!it.early && it.req > 1 && how >= 128) {
        off = in_u16(in) % it.req;
        n = 1 + in_u16(in) % (it.req - off);
    }
    ha_free_pages((void *)(it.p + off * PAGE), n);
    model.page_frees++;
    if (!it.early && final_done)
        model.user_pages -= n;
    struct item gone = it;
    gone.p += off * PAGE;
    gone.req = n;
    gone.usable = n * PAGE;
    freed_remember(&gone);
    item_drop((unsigned)i);
    /* What stays live: up to two pieces, same pattern origin. */
    if (off) {
        struct item a = it;
        a.req = off;
        a.usable = off * PAGE;
        item_add(a, "page run head");
    }
    if (off + n < it.req) {
        struct item b = it;
        b.p = it.p + (off + n) * PAGE;
        b.req = it.req - off - n;
        b.usable = b.req * PAGE;
        item_add(b, "page run tail");
    }
}

/* --------------------------------------------------------- life cycle */

static int add_region_checked(uintptr_t base, size_t len, unsigned flags, const char *when)
{
    uintptr_t lo = (base + PAGE - 1) & ~(PAGE - 1), hi = (base + len) & ~(PAGE - 1);
    bool overlaps = false;
    for (unsigned i = 0; i < n_regions; i++)
        if (lo < hi && range_overlap(regions[i], (struct range){ lo, hi }))
            overlaps = true;
    int r = ha_add_region_flags((void *)base, len, flags);
    EXPECT(r == HA_OK || r == HA_EINVAL || r == HA_ENOSPC || r == HA_EOVERLAP || r == HA_ENOMEM,
           "ha_add_region (%s) returned %d", when, r);
    if (r == HA_OK) {
        EXPECT(!overlaps, "ha_add_region (%s) accepted [%#lx, %#lx) over a region", when,
               (unsigned long)lo, (unsigned long)hi);
        if (n_regions < MAX_RANGES)
            regions[n_regions++] = (struct range){ lo, hi };
    }
    if (r == HA_EOVERLAP)
        EXPECT(overlaps, "ha_add_region (%s): EOVERLAP for [%#lx, %#lx), which overlaps no region",
               when, (unsigned long)lo, (unsigned long)hi);
    if (!overlaps && lo + 8 * PAGE <= hi && n_regions < 16 && (r == HA_ENOSPC || r == HA_EINVAL))
        fuzz_fail("ha_add_region (%s) of [%#lx, %#lx) refused: %d", when, (unsigned long)lo,
                  (unsigned long)hi, r);
    return r;
}

/* A new region after the layout cursor; len and offsets from the input.
 * Bit 0x10 makes it up to 256 MiB (clipped to the area): one region can
 * then bring the heap past 96 MiB, where the big slab classes turn on. */
static void cmd_add_region(struct input *in, const char *when)
{
    uint8_t c = in_u8(in);
    uintptr_t base = area_cursor + (uintptr_t)(c % 8) * PAGE + (c & 0x80 ? (uintptr_t)in_u8(in) * 16 : 0);
    size_t len = (1 + (size_t)in_u16(in) % 2048) * PAGE * (c & 0x10 ? 32 : 1) + (c & 0x40 ? in_u8(in) : 0);
    uintptr_t end = (uintptr_t)area + AREA_SIZE;
    if (base >= end - 2 * PAGE)
        return;
    if (base + len > end)
        len = end - base;
    add_region_checked(base, len, c & 0x20 ? HA_REGION_ZEROED : 0, when);
    area_cursor = base + len;
}

static void cmd_reserve(struct input *in, const char *when)
{
    size_t extent = area_cursor - (uintptr_t)area + 1;
    uintptr_t base = (uintptr_t)area + in_u32(in) % extent;
    size_t len = 1 + (size_t)in_u16(in) * (in_u8(in) & 1 ? 16 : 1);
    bool live = false;
    uintptr_t lo = base & ~(PAGE - 1), hi = (base + len + PAGE - 1) & ~(PAGE - 1);
    int r = ha_reserve((void *)base, len);
    if (final_done) {
        EXPECT(r == HA_OK || r == HA_EBUSY || r == HA_ENOSPC, "late ha_reserve returned %d", r);
        late_reserve_done = true;
    } else {
        EXPECT(r == HA_OK || r == HA_ENOSPC, "ha_reserve (%s) returned %d", when, r);
    }
    if (r != HA_OK)
        return;
    /* A late reserve may only take free pages. */
    if (final_done) {
        for (unsigned i = 0; i < n_items; i++) {
            struct range sp = item_span(&items[i]);
            /* Blocks of the early range are exempt: the range belongs to
             * the allocator (compared before rounding: the range need not
             * start on a page). */
            bool in_early = early_rg.hi && sp.lo >= early_rg.lo && sp.hi <= early_rg.hi;
            sp.lo &= ~(PAGE - 1);
            if (range_overlap(sp, (struct range){ lo, hi }) && !in_early)
                live = true;
        }
        EXPECT(!live, "late ha_reserve [%#lx, %#lx) succeeded over a live block", (unsigned long)lo,
               (unsigned long)hi);
    }
    if (n_reserves < MAX_RANGES)
        reserves[n_reserves++] = (struct range){ lo, hi };
}

/* ----------------------------------------------------------- bad calls */

#if FUZZ_BAD_CALLS
/* The messages the core gives (facade.c's fault table); a bad call passes
 * when the fault it draws is one that names that kind of misuse. */
#define M_DOUBLE "double free"
#define M_NOT_LIVE "not a live block"
#define M_INTERIOR "interior pointer"
#define M_FOREIGN "never handed out"
#define M_PAGES_NOT_BYTES "byte free of pages"
#define M_BYTES_NOT_PAGES "belongs to the byte allocator"
#define M_RESERVED "reserved or metadata"
#define M_SIZE "size does not match"
#define M_ALIGN "alignment does not match"
#define M_UNALIGNED "not whole pages"

static unsigned long long bad_calls, bad_by_kind[8];

enum bad_kind { BAD_DOUBLE_FREE, BAD_INTERIOR, BAD_FOREIGN, BAD_SIZE, BAD_ALIGN, BAD_PAGES_TWICE,
                BAD_PAGES_AS_BYTES, BAD_BYTES_AS_PAGES };

struct bad_call {
    enum bad_kind kind;
    void *p;
    size_t a, b;
    const char *expect[5]; /* accepted message fragments */
};

static void bad_run(const struct bad_call *c)
{
    switch (c->kind) {
    case BAD_DOUBLE_FREE:
    case BAD_INTERIOR:
    case BAD_FOREIGN:
    case BAD_PAGES_AS_BYTES:
        if (c->a)
            ha_free_sized(c->p, c->a, c->b);
        else
            ha_free(c->p);
        return;
    case BAD_SIZE:
    case BAD_ALIGN:
        ha_free_sized(c->p, c->a, c->b);
        return;
    case BAD_PAGES_TWICE:
    case BAD_BYTES_AS_PAGES:
        ha_free_pages(c->p, c->a);
        return;
    }
}

__attribute__((destructor)) static void bad_tally(void)
{
    if (!bad_calls)
        return;
    fprintf(stderr, "fuzz: %llu bad calls reported as expected:", bad_calls);
    for (int k = 0; k < 8; k++)
        fprintf(stderr, " %llu", bad_by_kind[k]);
    fprintf(stderr, "\n");
}

static const char *const bad_names[8] = { "double free", "interior pointer", "foreign pointer",
                                          "wrong size", "wrong alignment", "pages freed twice",
                                          "pages freed as bytes", "bytes freed as pages" };

/* Run one bad call in a child; the fault must fire, with an expected
 * message, and the heap must pass ha_check() at that moment. */
static void bad_expect(const struct bad_call *c)
{
    int fds[2];
    if (pipe(fds) != 0)
        fuzz_fail("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fuzz_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        fatal_fd = fds[1];
        alarm(20);
        bad_run(c);
        static const char ret[] = "(the call returned)\n";
        ssize_t w = write(fds[1], ret, sizeof ret - 1);
        (void)w;
        _exit(0);
    }
    close(fds[1]);
    char buf[600];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fds[0], buf + got, sizeof buf - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof buf - 1)
            break;
    }
    buf[got] = 0;
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            fuzz_fail("waitpid: %s", strerror(errno));
    bool matched = false;
    for (int k = 0; k < 5 && c->expect[k]; k++)
        if (strstr(buf, c->expect[k]))
            matched = true;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != FATAL_EXIT || !matched || !strstr(buf, "\nintact\n"))
        fuzz_fail("bad call '%s' at %p (%zu, %zu): status %#x, expected '%s'%s%s, got:\n%s",
                  bad_names[c->kind], c->p, c->a, c->b, (unsigned)st, c->expect[0],
                  c->expect[1] ? " or others" : "", "", buf);
    bad_calls++;
    bad_by_kind[c->kind]++;
}

static void bad_call(struct input *in)
{
    struct bad_call c = { 0 };
    uint8_t k = in_u8(in);
    c.kind = (enum bad_kind)(k % 8);
    bool sized = k & 0x80;
    switch (c.kind) {
    case BAD_DOUBLE_FREE: {
        if (!n_freed)
            return;
        const struct item *f = &freed[in_u8(in) % n_freed];
        if (f->kind != ITEM_BYTES || iv_find(f->p) >= 0)
            return; /* reused by a live block since: not a bad call now */
        c.p = (void *)f->p;
        if (sized) {
            c.a = f->req ? f->req : 1;
            c.b = f->align;
        }
        c.expect[0] = M_DOUBLE;
        c.expect[1] = M_NOT_LIVE;
        c.expect[2] = M_PAGES_NOT_BYTES;
        c.expect[3] = M_FOREIGN;
        /* Its chunk given back and taken again for another class: p now
         * lies inside one of that class's objects. */
        c.expect[4] = M_INTERIOR;
        break;
    }
    case BAD_INTERIOR: {
        int i = pick(in, ITEM_BYTES);
        if (i < 0 || items[i].req < 2)
            return;
        c.p = (void *)(items[i].p + 1 + in_u16(in) % (items[i].req - 1));
        c.expect[0] = M_INTERIOR;
        c.expect[1] = M_NOT_LIVE;
        break;
    }
    case BAD_FOREIGN: {
        static char outside[256] __attribute__((aligned(64)));
        uint8_t w = in_u8(in);
        if (w & 1) {
            c.p = outside + (w & 0xf0);
        } else {
            /* Mapped memory next to the heap that no region holds. */
            uintptr_t a = (uintptr_t)area + AREA_SIZE - PAGE + (w & 0xf0);
            if (range_in_heap(a, a + 1))
                return;
            c.p = (void *)a;
        }
        c.expect[0] = M_FOREIGN;
        break;
    }
    case BAD_SIZE:
    case BAD_ALIGN: {
        int i = pick(in, ITEM_BYTES);
        if (i < 0)
            return;
        const struct item *it = &items[i];
        c.p = (void *)it->p;
        if (c.kind == BAD_SIZE) {
            /* Past any rounding the block can have: a class, a TLSF
             * remainder, a dedicated arena's page. */
            c.a = it->req >= 4 * PAGE && (k & 0x40) ? 0 : 2 * it->req + 2 * PAGE;
            c.b = it->align;
            c.expect[0] = M_SIZE;
        } else {
            size_t low = it->p & -it->p;
            c.a = it->req;
            c.b = low << 1;
            c.expect[0] = M_ALIGN;
        }
        break;
    }
    case BAD_PAGES_TWICE: {
        if (!n_freed)
            return;
        const struct item *f = &freed[in_u8(in) % n_freed];
        if (f->kind != ITEM_PAGES || iv_overlaps(f->p, f->p + f->usable))
            return;
        c.p = (void *)f->p;
        c.a = f->req;
        c.expect[0] = M_DOUBLE;
        c.expect[1] = M_BYTES_NOT_PAGES;
        c.expect[2] = M_RESERVED;
        c.expect[3] = M_NOT_LIVE;
        break;
    }
    case BAD_PAGES_AS_BYTES: {
        int i = pick(in, ITEM_PAGES);
        if (i < 0)
            return;
        c.p = (void *)items[i].p;
        c.expect[0] = M_PAGES_NOT_BYTES;
        c.expect[1] = M_NOT_LIVE;
        break;
    }
    case BAD_BYTES_AS_PAGES: {
        int i = pick(in, ITEM_BYTES);
        if (i < 0)
            return;
        c.p = (void *)items[i].p;
        /* Pages the block itself covers: past it, the first fault found
         * may rightly be about someone else's pages. */
        size_t span = items[i].usable / PAGE;
        c.a = 1 + in_u8(in) % (span > 1 ? (span < 4 ? span : 4) : 1);
        c.expect[0] = M_BYTES_NOT_PAGES;
        c.expect[1] = M_UNALIGNED;
        c.expect[2] = M_NOT_LIVE;
        break;
    }
    }
    bad_expect(&c);
}
#endif

/* ----------------------------------------------------------- the run */

enum op { OP_ALLOC, OP_ALLOC_ZEROED, OP_REALLOC, OP_FREE, OP_FREE_SIZED, OP_PAGES, OP_PAGES_ZEROED,
          OP_FREE_PAGES, OP_STATS, OP_CHECK, OP_TRIM, OP_CPU, OP_USABLE, OP_LATE_REGION,
          OP_LATE_RESERVE, OP_BAD, OP_COUNT };

/* Weights out of 256. */
static const uint8_t op_weight[OP_COUNT] = {
    [OP_ALLOC] = 48, [OP_ALLOC_ZEROED] = 16, [OP_REALLOC] = 28, [OP_FREE] = 36, [OP_FREE_SIZED] = 30,
    [OP_PAGES] = 16, [OP_PAGES_ZEROED] = 8, [OP_FREE_PAGES] = 18, [OP_STATS] = 10, [OP_CHECK] = 6,
    [OP_TRIM] = 6, [OP_CPU] = 10, [OP_USABLE] = 6, [OP_LATE_REGION] = 3, [OP_LATE_RESERVE] = 3,
    [OP_BAD] = 12,
};
static uint8_t op_table[256];

static void run_op(struct input *in, enum op op)
{
    switch (op) {
    case OP_ALLOC: byte_alloc(in, false); break;
    case OP_ALLOC_ZEROED: byte_alloc(in, true); break;
    case OP_REALLOC: byte_realloc(in); break;
    case OP_FREE: byte_free(in, false); break;
    case OP_FREE_SIZED: byte_free(in, true); break;
    case OP_PAGES: pages_alloc(in, false); break;
    case OP_PAGES_ZEROED: pages_alloc(in, true); break;
    case OP_FREE_PAGES: pages_free(in); break;
    case OP_STATS: stats_check("stats call"); break;
    case OP_CHECK: heap_check("check call"); break;
    case OP_TRIM:
        ha_trim();
        stats_check("after ha_trim");
        break;
    case OP_CPU: set_cpu(in_u8(in) % n_cpus); break;
    case OP_USABLE: {
        int i = pick(in, ITEM_BYTES);
        if (i >= 0) {
            size_t u = ha_usable_size((void *)items[i].p);
            EXPECT(u == items[i].usable, "ha_usable_size(%#lx) = %zu, was %zu",
                   (unsigned long)items[i].p, u, items[i].usable);
        }
        break;
    }
    case OP_LATE_REGION:
        if (final_done)
            cmd_add_region(in, "after ha_final_init");
        break;
    case OP_LATE_RESERVE:
        if (final_done)
            cmd_reserve(in, "after ha_final_init");
        break;
    case OP_BAD:
#if FUZZ_BAD_CALLS
        bad_call(in);
#endif
        break;
    case OP_COUNT: break;
    }
}

/* FUZZ_TRACE=1 in the environment: one line per call, for reading a
 * crashing input. */
static bool trace_on;
static const char *const op_names[OP_COUNT] = {
    "alloc", "alloc_zeroed", "realloc", "free", "free_sized", "alloc_pages", "alloc_pages_zeroed",
    "free_pages", "stats", "check", "trim", "cpu", "usable_size", "late region", "late reserve", "bad call",
};

static void run_ops(struct input *in, unsigned max)
{
    for (unsigned k = 0; k < max && in->n; k++) {
        enum op op = (enum op)op_table[in_u8(in)];
        run_op(in, op);
        if (trace_on) {
            struct ha_stats s;
            ha_get_stats(&s);
            fprintf(stderr, "trace: %-18s cpu %u  live %u  bytes_used %zu peak %zu  pages_used %zu\n",
                    op_names[op], cur_cpu, n_items, s.bytes_used, s.bytes_peak, s.pages_used);
        }
        if (k % CHECK_EVERY == CHECK_EVERY - 1) {
            heap_check("periodic");
            stats_check("periodic");
        }
    }
}

static void reset_model(void)
{
    memset(&model, 0, sizeof model);
    memset(&baseline, 0, sizeof baseline);
    n_items = n_ivs = n_regions = n_reserves = n_freed = freed_at = 0;
    early_rg = (struct range){ 0, 0 };
    final_done = late_reserve_done = false;
    set_cpu(0);
    next_tag = 1;
}

static void free_everything(void)
{
    while (n_items) {
        struct item it = items[n_items - 1];
        if (it.kind == ITEM_BYTES) {
            pattern_check(it.p, it.req, it.pat, it.tag, "at the end");
            if (it.tag & 1)
                ha_free_sized((void *)it.p, sized_size(&it), it.align);
            else
                ha_free((void *)it.p);
            model.frees++;
            model.bytes_used -= it.usable;
        } else {
            pages_check(&it, "at the end");
            ha_free_pages((void *)it.p, it.req);
            model.page_frees++;
            if (!it.early && final_done)
                model.user_pages -= it.req;
        }
        item_drop(n_items - 1);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    size_t saved = state_save();
    void *m = mmap((void *)AREA_HINT, AREA_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED || (uintptr_t)m != AREA_HINT) {
        fprintf(stderr, "fuzz: no heap area at %#lx (%s)\n", (unsigned long)AREA_HINT, strerror(errno));
        abort();
    }
    area = m;
    trace_on = getenv("FUZZ_TRACE") != NULL;
    unsigned at = 0;
    for (int o = 0; o < OP_COUNT; o++)
        for (unsigned w = 0; w < op_weight[o] && at < 256; w++)
            op_table[at++] = (uint8_t)o;
    while (at < 256)
        op_table[at++] = OP_ALLOC;
    fprintf(stderr, "fuzz: hartalloc %s build%s; %zu bytes of allocator state reset per input; heap area %p\n",
            HA_CHECKED ? "checked" : "default", FUZZ_BAD_CALLS ? ", bad calls in forked children" : "",
            saved, (void *)area);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = { data, size };
    state_restore();
    /* Fresh zero pages, so that HA_REGION_ZEROED tells the truth. */
    if (area_dirty > (uintptr_t)area)
        madvise(area, area_dirty - (uintptr_t)area, MADV_DONTNEED);
    reset_model();

    uint8_t hdr = in_u8(&in);
    n_cpus = 1 + (hdr & 3);
    area_cursor = (uintptr_t)area + (uintptr_t)(in_u8(&in) % 16) * PAGE;
    if (!(hdr & 4)) {
        uintptr_t base = area_cursor + (hdr & 8 ? (uintptr_t)in_u8(&in) * 16 + 8 : 0);
        size_t len = (1 + (size_t)in_u16(&in) % 512) * PAGE - (hdr & 16 ? in_u8(&in) : 0);
        int r = ha_early_init((void *)base, len);
        EXPECT(r == HA_OK, "ha_early_init(%#lx, %zu) = %d", (unsigned long)base, len, r);
        early_rg = (struct range){ base, base + len };
        area_cursor = base + len;
        if (hdr & 32) {
            /* A region that holds the early range: it must not hand it out
             * twice. */
            uintptr_t lo = (base & ~(PAGE - 1)) - (uintptr_t)(in_u8(&in) % 4) * PAGE;
            if (lo < (uintptr_t)area)
                lo = (uintptr_t)area;
            size_t rlen = base + len - lo + (1 + (size_t)in_u8(&in)) * PAGE;
            add_region_checked(lo, rlen, 0, "holding the early range");
            area_cursor = lo + rlen;
        }
    }

    /* Setup commands until ha_final_init. */
    for (unsigned k = 0; k < 24; k++) {
        uint8_t cmd = in_u8(&in) % 8;
        if (cmd == 7 || !in.n)
            break;
        switch (cmd) {
        case 0:
        case 1:
        case 2: cmd_add_region(&in, "before ha_final_init"); break;
        case 3: cmd_reserve(&in, "before ha_final_init"); break;
        case 4:
        case 5: run_ops(&in, in_u8(&in) % 24); break;
        case 6:
            /* A region over one already added. */
            if (n_regions) {
                struct range r = regions[in_u8(&in) % n_regions];
                uintptr_t base = r.lo + (uintptr_t)(in_u8(&in) % 4) * PAGE;
                size_t len = (1 + (size_t)in_u8(&in)) * PAGE;
                uintptr_t end = (uintptr_t)area + AREA_SIZE;
                if (base + len > end)
                    len = base < end ? end - base : 0;
                /* Past a short region it may overlap nothing and be taken:
                 * the next input must find that memory cleared too. */
                if (len && add_region_checked(base, len, 0, "overlapping") == HA_OK && base + len > area_cursor)
                    area_cursor = base + len;
            }
            break;
        }
    }
    heap_check("before ha_final_init");
    stats_check("before ha_final_init");
    int r = ha_final_init();
    EXPECT(r == HA_OK || r == HA_ENOMEM, "ha_final_init() = %d", r);
    if (r == HA_OK) {
        final_done = true;
        /* Make every cpu's cache, mid-size heap and frame cache now (what
         * the allocator keeps for good on a CPU's first small, mid and
         * single-page request), so that the end state can be compared with
         * this baseline. */
        static const size_t warm_sizes[] = { 1, 2 * HA_PAGE_SIZE }; /* a slab class, TLSF */
        for (unsigned c = 0; c < n_cpus; c++) {
            set_cpu(c);
            for (unsigned k = 0; k < sizeof warm_sizes / sizeof warm_sizes[0]; k++) {
                void *p = ha_alloc(warm_sizes[k], 1);
                if (p) {
                    ha_free(p);
                    model.allocs++;
                    model.frees++;
                } else {
                    model.failures++;
                }
            }
            void *frame = ha_alloc_pages(1, 0);
            if (frame) {
                ha_free_pages(frame, 1);
                model.page_allocs++;
                model.page_frees++;
            } else {
                model.failures++;
            }
            /* Give back what this CPU cached (its frame bin's refill), so
             * that the next CPU's structures are made with as much free
             * memory as this one's were. */
            ha_trim();
        }
        set_cpu(0);
        ha_trim();
        ha_get_stats(&baseline);
        baseline.pages_used -= model.user_pages;
        heap_check("after ha_final_init");
        stats_check("after ha_final_init");
    }

    run_ops(&in, MAX_OPS);
    area_dirty = area_cursor;

    heap_check("before the final frees");
    stats_check("before the final frees");
    free_everything();
    ha_trim();
    heap_check("at the end");
    stats_check("at the end");
    struct ha_stats s;
    ha_get_stats(&s);
    EXPECT(s.bytes_used == 0, "bytes_used %zu with nothing live", s.bytes_used);
    EXPECT(s.early_used == 0, "early_used %zu with nothing live", s.early_used);
    if (final_done) {
        EXPECT(s.pages_used == baseline.pages_used,
               "pages_used %zu after freeing everything and ha_trim, baseline %zu", s.pages_used,
               baseline.pages_used);
        /* A CPU's frame cache is made on its first single-page request
         * only while pages are plentiful: one refused at the warm-up may
         * be made later, its page leaving pages_total (metadata).  Such
         * pages go wherever the buddy allocator's smallest free block was
         * then, which may be inside what is the largest run again now:
         * m of them cut it into at most m + 1 pieces.  With none, the run
         * must be whole again.  A region added late hides them in
         * pages_total: bytes_meta counts them too (with the new region's
         * own bitmap pages, which only makes the bound safer). */
        size_t meta_since = baseline.pages_total > s.pages_total ? baseline.pages_total - s.pages_total : 0;
        if (s.bytes_meta > baseline.bytes_meta) {
            size_t meta_pages = (s.bytes_meta - baseline.bytes_meta + PAGE - 1) / PAGE;
            if (meta_pages > meta_since)
                meta_since = meta_pages;
        }
        size_t run_min = baseline.pages_largest_run;
        if (meta_since > 0)
            run_min = run_min > meta_since ? (run_min - meta_since) / (meta_since + 1) : 0;
        if (!late_reserve_done)
            EXPECT(s.pages_largest_run >= run_min,
                   "largest free run %zu after freeing everything and ha_trim, baseline %zu, %zu pages made metadata since",
                   s.pages_largest_run, baseline.pages_largest_run, meta_since);
    }
    return 0;
}
