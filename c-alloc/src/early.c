/*
 * The early allocator: one fixed range, given at boot before RAM is known.
 *
 *   base                front                      back              end
 *   | hdr|blk hdr|blk ... |        unused            | run | run | run |
 *
 * Byte blocks are bumped from the front, each behind a 16-byte header;
 * page runs are bumped from the back (page aligned), each described by a
 * record that is itself a byte block.  Freeing the most recent blocks moves
 * front/back back (LIFO give-back); freeing any other block is accepted,
 * validated and accounted, and its space waits for the blocks after it.
 *
 * At ha_final_init the unused middle [page-rounded front, back) goes to the
 * page allocator; everything handed out stays where it is and may still be
 * freed (accounting only from then on).
 *
 * Offsets are 32-bit: at most 4 GiB of the range is used.
 */
#include "ha_internal.h"

/* Invariants (early_check verifies them):
 *  - headers form a chain from `last` through `prev` with strictly
 *    decreasing addresses, all inside [base, front);
 *  - each header's check word is one of the three keys for its address
 *    and size; `start` <= header offset;
 *  - the newest chained block is live or internal (LIFO give-back pops
 *    freed blocks off the chain);
 *  - page runs are listed newest (lowest) first, tile [back, top) exactly,
 *    and each run's record is an internal block;
 *  - used == live byte blocks' sizes + live runs' bytes. */
struct early_hdr {
    uint32_t size;  /* usable bytes of the block */
    uint32_t start; /* offset of `front` before this block: where LIFO give-back returns to */
    uint32_t prev;  /* offset + 1 of the previous header in the chain, 0 for none */
    uint32_t check; /* early_key(state) mixed with address and size */
};
HA_STATIC_ASSERT(sizeof(struct early_hdr) == HA_MIN_ALIGN, "payloads stay 16-aligned");

struct early_run {
    uintptr_t start;
    size_t count;           /* pages asked for */
    size_t span;            /* pages taken: count plus alignment padding above */
    struct early_run *next; /* next older (higher) run */
    bool freed;
};

enum early_state { EARLY_LIVE, EARLY_FREED, EARLY_INTERNAL };

static struct {
    ha_lock_t lock;
    uintptr_t base, end; /* the range (clamped to 4 GiB) */
    uintptr_t top;       /* page-aligned end: page runs grow down from here */
    uintptr_t front;     /* first byte not handed out from the front */
    uintptr_t back;      /* lowest byte handed out from the back */
    uint32_t last;       /* offset + 1 of the newest chained header, 0 for none */
    struct early_run *runs;
    bool finished;
    /* [released_lo, released_hi) went to the page allocator at finish. */
    _Atomic uintptr_t released_lo, released_hi;
    size_t used;    /* bytes of live blocks and runs */
    size_t headers; /* headers in the chain (metadata) */
} early;

static uint32_t early_key(const struct early_hdr *h, enum early_state s)
{
    static const uint32_t keys[] = { 0xE1A2B3C4u, 0x0F3EED00u, 0x5157E3A1u };
    uint64_t x = ((uint64_t)(uintptr_t)h ^ ((uint64_t)h->size << 32) ^ ha_secret) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) ^ keys[s];
}

/* State of the header, or -1 if the check word is none of the keys. */
static int early_state_of(const struct early_hdr *h)
{
    for (int s = EARLY_LIVE; s <= EARLY_INTERNAL; s++)
        if (h->check == early_key(h, (enum early_state)s))
            return s;
    return -1;
}

static struct early_hdr *early_hdr_at(uint32_t off1)
{
    return off1 ? (struct early_hdr *)(early.base + off1 - 1) : 0;
}

static uint32_t early_off1(const struct early_hdr *h)
{
    return (uint32_t)((uintptr_t)h - early.base + 1);
}

int early_init(uintptr_t base, size_t len)
{
    if (len > UINT32_MAX)
        len = UINT32_MAX; /* offsets are 32-bit */
    early.base = base;
    early.end = base + len;
    early.top = ha_align_down(early.end, HA_PAGE_SIZE);
    if (early.top < base)
        early.top = base;
    early.front = base;
    early.back = early.top;
    return HA_OK;
}

bool early_owns(uintptr_t a)
{
    if (a < early.base || a >= early.end)
        return false;
    uintptr_t lo = atomic_load_explicit(&early.released_lo, memory_order_relaxed);
    uintptr_t hi = atomic_load_explicit(&early.released_hi, memory_order_relaxed);
    return a < lo || a >= hi;
}

/* Bump a block from the front; lock held. */
static void *early_bump(size_t size, size_t align, enum early_state state)
{
    if (early.finished || size > UINT32_MAX - HA_PAGE_SIZE)
        return 0;
    if (align < HA_MIN_ALIGN)
        align = HA_MIN_ALIGN;
    size_t usable = ha_align_up(size ? size : 1, HA_MIN_ALIGN);
    uintptr_t payload = ha_align_up(early.front + sizeof(struct early_hdr), align);
    if (payload < early.front || payload > early.back || early.back - payload < usable)
        return 0;
    struct early_hdr *h = (struct early_hdr *)(payload - sizeof *h);
    h->size = (uint32_t)usable;
    h->start = (uint32_t)(early.front - early.base);
    h->prev = early.last;
    h->check = early_key(h, state);
    early.last = early_off1(h);
    early.front = payload + usable;
    early.headers++;
    return (void *)payload;
}

void *early_alloc(size_t size, size_t align)
{
    uintptr_t irq = lock_acquire(&early.lock);
    void *p = early_bump(size, align, EARLY_LIVE);
    if (p)
        early.used += ((struct early_hdr *)p - 1)->size;
    lock_release(&early.lock, irq);
    return p;
}

/* Pop freed blocks off the newest end of the chain; lock held. */
static void early_give_back_front(void)
{
    while (!early.finished && early.last) {
        struct early_hdr *h = early_hdr_at(early.last);
        if (early_state_of(h) != EARLY_FREED)
            break;
        early.front = early.base + h->start;
        early.last = h->prev;
        early.headers--;
    }
}

/* Pop freed runs off the low end; lock held. */
static void early_give_back_back(void)
{
    while (!early.finished && early.runs && early.runs->freed && early.runs->start == early.back) {
        struct early_run *r = early.runs;
        early.back += r->span * HA_PAGE_SIZE;
        early.runs = r->next;
        struct early_hdr *h = (struct early_hdr *)r - 1;
        h->check = early_key(h, EARLY_FREED);
    }
    early_give_back_front();
}

void *early_alloc_pages(size_t count, size_t align)
{
    uintptr_t irq = lock_acquire(&early.lock);
    void *result = 0;
    uintptr_t span = count * HA_PAGE_SIZE;
    if (!early.finished && span / HA_PAGE_SIZE == count && span <= early.back - early.base) {
        uintptr_t start = ha_align_down(early.back - span, align);
        struct early_run *r = early_bump(sizeof *r, HA_MIN_ALIGN, EARLY_INTERNAL);
        if (r && start >= early.front) {
            /* Alignment padding above the run is not handed out again: a
             * run can only be given back when it is the lowest one. */
            r->start = start;
            r->count = count;
            r->span = (early.back - start) / HA_PAGE_SIZE;
            r->next = early.runs;
            r->freed = false;
            early.runs = r;
            early.back = start;
            early.used += r->count * HA_PAGE_SIZE;
            result = (void *)start;
        } else if (r) {
            struct early_hdr *h = (struct early_hdr *)r - 1;
            h->check = early_key(h, EARLY_FREED);
            early_give_back_front();
        }
    }
    lock_release(&early.lock, irq);
    return result;
}

enum ha_fault early_validate(const void *p, size_t size, size_t align, bool sized)
{
    uintptr_t a = (uintptr_t)p;
    if (a % HA_MIN_ALIGN || a < early.base + sizeof(struct early_hdr) || a >= early.end)
        return FAULT_NOT_ALLOCATED;
    if (a >= early.back) /* inside the page runs */
        return FAULT_PAGES_NOT_BYTES;
    const struct early_hdr *h = (const struct early_hdr *)p - 1;
    switch (early_state_of(h)) {
    case EARLY_LIVE:
        break;
    case EARLY_FREED:
        return FAULT_DOUBLE_FREE;
    default:
        return FAULT_NOT_ALLOCATED;
    }
    if (sized) {
        if (a % align)
            return FAULT_ALIGN_MISMATCH;
        if (size > h->size || h->size - size >= HA_MIN_ALIGN)
            return FAULT_SIZE_MISMATCH;
    }
    return FAULT_NONE;
}

void early_free(void *p)
{
    uintptr_t irq = lock_acquire(&early.lock);
    struct early_hdr *h = (struct early_hdr *)p - 1;
    HA_ASSERT(early_state_of(h) == EARLY_LIVE, p);
    early.used -= h->size;
    h->check = early_key(h, EARLY_FREED);
    early_give_back_front();
    lock_release(&early.lock, irq);
}

size_t early_usable(const void *p)
{
    return ((const struct early_hdr *)p - 1)->size;
}

bool early_resize_in_place(void *p, size_t new_size)
{
    if (new_size > UINT32_MAX - HA_PAGE_SIZE) /* rounding up would wrap */
        return false;
    uintptr_t irq = lock_acquire(&early.lock);
    struct early_hdr *h = (struct early_hdr *)p - 1;
    size_t usable = ha_align_up(new_size, HA_MIN_ALIGN);
    bool ok = false;
    if (usable == h->size) {
        ok = true;
    } else if (!early.finished && early.last == early_off1(h) && usable <= early.back - (uintptr_t)p) {
        /* The newest block: move the front with it. */
        early.used = early.used - h->size + usable;
        h->size = (uint32_t)usable;
        h->check = early_key(h, EARLY_LIVE);
        early.front = (uintptr_t)p + usable;
        ok = true;
    }
    lock_release(&early.lock, irq);
    return ok;
}

static struct early_run *early_run_at(uintptr_t start)
{
    for (struct early_run *r = early.runs; r; r = r->next)
        if (r->start == start)
            return r;
    return 0;
}

enum ha_fault early_validate_pages(const void *p, size_t count)
{
    uintptr_t a = (uintptr_t)p;
    if (a % HA_PAGE_SIZE || count == 0)
        return FAULT_UNALIGNED;
    uintptr_t irq = lock_acquire(&early.lock);
    const struct early_run *r = early_run_at(a);
    enum ha_fault f = FAULT_NONE;
    if (!r)
        f = a < early.back ? FAULT_BYTES_NOT_PAGES : FAULT_DOUBLE_FREE;
    else if (r->freed)
        f = FAULT_DOUBLE_FREE;
    else if (r->count != count)
        f = FAULT_UNALIGNED;
    lock_release(&early.lock, irq);
    return f;
}

void early_free_pages(void *p, size_t count)
{
    uintptr_t irq = lock_acquire(&early.lock);
    struct early_run *r = early_run_at((uintptr_t)p);
    HA_ASSERT(r && !r->freed && r->count == count, p);
    r->freed = true;
    early.used -= count * HA_PAGE_SIZE;
    early_give_back_back();
    lock_release(&early.lock, irq);
}

int early_finish(void)
{
    uintptr_t irq = lock_acquire(&early.lock);
    early.finished = true;
    uintptr_t lo = ha_align_up(early.front, HA_PAGE_SIZE);
    uintptr_t hi = early.back;
    lock_release(&early.lock, irq);
    if (lo >= hi)
        return HA_OK;
    atomic_store_explicit(&early.released_lo, lo, memory_order_relaxed);
    atomic_store_explicit(&early.released_hi, hi, memory_order_relaxed);
    int r = page_release_early(lo, hi);
    if (r != HA_OK) { /* keep it ours rather than lose track of it */
        atomic_store_explicit(&early.released_lo, 0, memory_order_relaxed);
        atomic_store_explicit(&early.released_hi, 0, memory_order_relaxed);
    }
    /* Too small for a region of its own is not an error: the space is
     * simply not used. */
    return r == HA_ENOMEM ? HA_OK : r;
}

void early_stats(struct ha_stats *out)
{
    uintptr_t irq = lock_acquire(&early.lock);
    size_t released = atomic_load_explicit(&early.released_hi, memory_order_relaxed) -
                      atomic_load_explicit(&early.released_lo, memory_order_relaxed);
    /* Only what no region counts already. */
    if (page_kind_of(early.base) == PAGE_KIND_NONE)
        out->bytes_total += early.end - early.base - released;
    out->early_used = early.used;
    out->bytes_meta += early.headers * sizeof(struct early_hdr);
    if (!early.finished)
        out->bytes_free += early.back - early.front;
    lock_release(&early.lock, irq);
}

int early_check(void)
{
    uintptr_t irq = lock_acquire(&early.lock);
    int r = 0;
    size_t live = 0, chained = 0;
    uintptr_t above = early.front;
    for (const struct early_hdr *h = early_hdr_at(early.last); h && r == 0; h = early_hdr_at(h->prev)) {
        uintptr_t a = (uintptr_t)h;
        int s = early_state_of(h);
        if (a < early.base || a + sizeof *h + h->size > above || s < 0 || h->start > a - early.base)
            r = check_fail("early: broken block header", h);
        else if (h == early_hdr_at(early.last) && s == EARLY_FREED && !early.finished)
            r = check_fail("early: newest block freed but not given back", h);
        else if (s == EARLY_LIVE)
            live += h->size;
        above = a;
        chained++;
    }
    uintptr_t at = early.back;
    for (const struct early_run *run = early.runs; run && r == 0; run = run->next) {
        const struct early_hdr *h = (const struct early_hdr *)run - 1;
        if (run->start != at || run->count == 0 || run->span < run->count ||
            early_state_of(h) != EARLY_INTERNAL)
            r = check_fail("early: broken page run list", run);
        if (!run->freed)
            live += run->count * HA_PAGE_SIZE;
        at += run->span * HA_PAGE_SIZE;
    }
    if (r == 0 && at != early.top)
        r = check_fail("early: page runs past the range", (void *)at);
    if (r == 0 && live != early.used)
        r = check_fail("early: used bytes disagree with the blocks", (void *)early.base);
    if (r == 0 && chained != early.headers)
        r = check_fail("early: header count disagrees with the chain", (void *)early.base);
    lock_release(&early.lock, irq);
    return r;
}

void early_fork_lock(bool take)
{
    static uintptr_t irq;
    lock_fork(&early.lock, take, &irq);
}
