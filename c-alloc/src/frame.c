/*
 * Per-CPU frame caches: single pages for ha_alloc_pages(1, <= HA_PAGE_SIZE)
 * and ha_free_pages(p, 1), beside the page allocator as Linux keeps its
 * per-CPU page lists beside the buddy code.  Each CPU has a bin of frames
 * behind a lock of its own (uncontended: only the CPU itself and the rare
 * trim, statistics or check take it), refilled from and drained to the
 * page allocator half a bin at a time.
 *
 * A cached frame stays allocated in the page bitmap, so the order maps and
 * the bitmap never change on the fast path.  What marks it free is its page
 * kind, FRAME (USER when handed out), a byte the cache writes under its own
 * lock, and its frame tag, a word derived from its address and the per-boot
 * secret, written when it enters a bin and wiped when it leaves one.  The
 * tag sits in a different cache line of each of 64 consecutive pages (line
 * pfn % 64): tags at one offset of every page would all fall in the same
 * few cache sets.
 *
 * Double frees: a frame freed again after its free finds its kind FRAME, as
 * does a multi-page free (or a byte free) that meets a cached frame: the
 * kind map tells, with no search through the bins.  Two CPUs freeing one
 * frame at the same instant may both still read USER: each exchanges the
 * tag in atomically, under its own CPU's cache lock, and only then looks at
 * what was there.  Finding the tag means a double free, unless the frame is
 * live and its owner stored that very word: the slow path looks through
 * every bin, each under its lock, to tell.  The second exchange sees the
 * first one's tag, and its search waits for the first CPU's lock, so it
 * finds the frame in that CPU's bin: only one of them wins.
 *
 * Lock order: frame cache lock -> page lock; frame_create_lock outermost.
 */
#include "ha_internal.h"

#define FRAME_SLOTS 64

/* Single pages a CPU holds, as address | 1 when the page is known zero, and
 * beside each the byte that holds its page kind (so that neither the
 * allocation nor the free searches for its region to write it).  `count` is
 * also read without the lock (stats_frames_cached). */
struct frame_bin {
    size_t count; /* register-wide: no extension before it indexes slots */
    uintptr_t slots[FRAME_SLOTS];
    uint8_t *kind_at[FRAME_SLOTS];
};

/* A CPU's frame cache.  Invariants (frame_check): every slot is an
 * allocated FRAME page holding its frame tag, in one bin only, and no other
 * page is of kind FRAME; count <= FRAME_SLOTS. */
struct frame_cache {
    ha_lock_t lock;
    struct frame_bin bin;
    /* Frames handed out here and taken back here (frames_out: the
     * difference), the high-water mark of the difference and the page
     * allocator's peak generation then. */
    uint64_t page_allocs, page_frees;
    intptr_t pages_hwm;
    unsigned pages_gen;
};

#define FRAME_CACHE_PAGES ((sizeof(struct frame_cache) + HA_PAGE_SIZE - 1) / HA_PAGE_SIZE)

static struct frame_cache *_Atomic frame_caches[HA_MAX_CPUS];
/* The caches made so far, densely; appended under frame_create_lock. */
static struct frame_cache *frame_list[HA_MAX_CPUS];
static _Atomic unsigned nframe_caches;
static ha_lock_t frame_create_lock = HA_LOCK_INIT;
/* For a CPU whose own cache could not be made (out of pages). */
static struct frame_cache frame_shared;
static atomic_uint frame_shared_counted; /* a word: RISC-V has no byte-sized atomic exchange */

/* ------------------------------------------------------------- the caches */

static struct frame_cache *frame_shared_get(void)
{
    if (!atomic_exchange_explicit(&frame_shared_counted, 1u, memory_order_relaxed))
        stats_frames_register(&frame_shared.bin.count);
    return &frame_shared;
}

/* Made on the CPU's first single-page request, unless free pages are so
 * few that the cache would take what the request needs (its page, and the
 * half bin it would refill): the shared cache serves then, and making the
 * CPU's own is tried again on its next request. */
static HA_NOINLINE struct frame_cache *frame_cache_create(unsigned cpu)
{
    if (page_free_count() < FRAME_CACHE_PAGES + FRAME_SLOTS / 2)
        return frame_shared_get();
    uintptr_t irq = lock_acquire(&frame_create_lock);
    struct frame_cache *c = atomic_load_explicit(&frame_caches[cpu], memory_order_relaxed);
    if (!c) {
        /* SYSTEM kind: ha_free_pages can't be handed these pages. */
        c = page_alloc(FRAME_CACHE_PAGES, HA_PAGE_SIZE, PAGE_KIND_SYSTEM, 0);
        if (c) {
            ha_memset(c, 0, sizeof *c);
            stats_frames_register(&c->bin.count);
            unsigned n = atomic_load_explicit(&nframe_caches, memory_order_relaxed);
            frame_list[n] = c;
            atomic_store_explicit(&nframe_caches, n + 1, memory_order_release);
            atomic_store_explicit(&frame_caches[cpu], c, memory_order_release);
        }
    }
    lock_release(&frame_create_lock, irq);
    return c ? c : frame_shared_get();
}

/* This CPU's frame cache. */
HA_INLINE struct frame_cache *frame_cache_get(void)
{
    unsigned cpu = ha_cpu();
    struct frame_cache *c = ha_load_published(&frame_caches[cpu]);
    return HA_LIKELY(c != 0) ? c : frame_cache_create(cpu);
}

void frame_prepare(void)
{
    (void)frame_cache_get();
}

/* Cache i of n (the shared one last). */
static struct frame_cache *frame_cache_at(unsigned i, unsigned n)
{
    return i < n ? frame_list[i] : &frame_shared;
}

/* Every frame cache locked (creation first, so none appears meanwhile);
 * returns how many caches there are besides the shared one. */
struct frame_locks {
    uintptr_t create, cache[HA_MAX_CPUS + 1];
    unsigned n;
};

static void frame_lock_all(struct frame_locks *l)
{
    l->create = lock_acquire(&frame_create_lock);
    l->n = atomic_load_explicit(&nframe_caches, memory_order_relaxed);
    for (unsigned i = 0; i <= l->n; i++)
        l->cache[i] = lock_acquire(&frame_cache_at(i, l->n)->lock);
}

static void frame_unlock_all(struct frame_locks *l)
{
    for (unsigned i = l->n + 1; i-- > 0;)
        lock_release(&frame_cache_at(i, l->n)->lock, l->cache[i]);
    lock_release(&frame_create_lock, l->create);
}

/* ------------------------------------------------------------------- bins */

HA_INLINE uint64_t frame_tag(const void *p)
{
    return (uint64_t)(uintptr_t)p ^ ha_frame_tag_key;
}

HA_INLINE uint64_t *frame_page(uintptr_t slot)
{
    return (uint64_t *)(slot & ~(uintptr_t)1);
}

/* Where frame p keeps its tag. */
HA_INLINE uint64_t *frame_tag_at(void *p)
{
    uintptr_t a = (uintptr_t)p;
    return (uint64_t *)(a + (((a >> HA_PAGE_SHIFT) % (HA_PAGE_SIZE / HA_CACHELINE)) * HA_CACHELINE));
}

/* Frames handed out by cache c less those taken back into it (negative on
 * a CPU that frees what others took). */
HA_INLINE intptr_t frames_out(const struct frame_cache *c)
{
    return (intptr_t)(c->page_allocs - c->page_frees);
}

HA_INLINE void frame_count_set(struct frame_bin *f, size_t n)
{
    ha_store_relaxed64(&f->count, n);
}

/* Fill an empty bin halfway from the page allocator (which makes the pages
 * FRAME); cache lock held. */
static HA_NOINLINE bool frame_refill(struct frame_bin *f)
{
    size_t got = page_take_frames(f->slots, FRAME_SLOTS / 2);
    for (size_t i = 0; i < got; i++) {
        uint64_t *p = frame_page(f->slots[i]);
        *frame_tag_at(p) = frame_tag(p);
        f->kind_at[i] = page_kind_at((uintptr_t)p);
    }
    frame_count_set(f, got);
    return got > 0;
}

/* Give the n coldest (bottom) frames of a bin back; cache lock held.  Their
 * tags are wiped first: no stale tag is left in a page the page allocator
 * hands out again (and a zero page is zero again). */
static HA_NOINLINE void frame_drain(struct frame_bin *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *frame_tag_at(frame_page(f->slots[i])) = 0;
    page_give_frames(f->slots, n);
    size_t left = f->count - n;
    ha_memmove(f->slots, f->slots + n, left * sizeof f->slots[0]);
    ha_memmove(f->kind_at, f->kind_at + n, left * sizeof f->kind_at[0]);
    frame_count_set(f, left);
}

/* ----------------------------------------------------------- fast paths */

/* As for slabs, the fast paths (frame_alloc, frame_free) call nothing
 * that returns and leave the rare cases to a slow path that ends the call
 * with the cache lock held. */

/* Hand out the top frame of bin f (refilled if empty), checking its tag,
 * and count it: the peak of pages can only have risen past what was
 * sampled if this CPU's share passed its high-water mark, or if the page
 * allocator raised the peak since (its own share may have risen). */
static HA_NOINLINE void *frame_alloc_slow(struct frame_cache *c, uintptr_t irq, bool *zeroed)
{
    struct frame_bin *f = &c->bin;
    if (f->count == 0 && !frame_refill(f)) {
        lock_release(&c->lock, irq);
        return 0;
    }
    uintptr_t slot = f->slots[f->count - 1];
    uint64_t *p = frame_page(slot), *tag = frame_tag_at(p);
    if (HA_UNLIKELY(*tag != frame_tag(p))) {
        lock_release(&c->lock, irq);
        ha_fault(FAULT_USE_AFTER_FREE, tag); /* written after it was freed */
    }
    frame_count_set(f, f->count - 1);
    ha_store_relaxed8(f->kind_at[f->count], PAGE_KIND_USER);
    *tag = 0;
    *zeroed = slot & 1;
    c->page_allocs++;
    unsigned gen = page_peak_generation();
    if (frames_out(c) > c->pages_hwm || gen != c->pages_gen) {
        c->pages_hwm = frames_out(c);
        c->pages_gen = gen;
        page_sample_peak();
    }
    lock_release(&c->lock, irq);
    return p;
}

static HA_NOINLINE void *frame_alloc_first(bool *zeroed)
{
    struct frame_cache *c = frame_cache_get();
    return frame_alloc_slow(c, lock_acquire(&c->lock), zeroed);
}

/* frame_alloc_or's slow path: c locked, or NULL (cache still to be made). */
static HA_NOINLINE void *frame_alloc_slower(struct frame_cache *c, uintptr_t irq, frame_miss_fn miss, size_t count,
                                            size_t align)
{
    bool zeroed;
    void *p = c ? frame_alloc_slow(c, irq, &zeroed) : frame_alloc_first(&zeroed);
    return p ? p : miss(count, align);
}

/* The body of frame_alloc (miss NULL: return NULL when out of pages) and
 * of frame_alloc_or (zeroed NULL; a miss ends in miss(count, align), a
 * tail call, so that its caller saves no registers for it). */
HA_INLINE void *frame_alloc_in(bool *zeroed, frame_miss_fn miss, size_t count, size_t align, unsigned hooks)
{
    struct frame_cache *c = ha_load_published(&frame_caches[ha_cpu_if(hooks)]);
    if (HA_UNLIKELY(!c))
        return miss ? frame_alloc_slower(0, 0, miss, count, align) : frame_alloc_first(zeroed);
    uintptr_t irq = lock_acquire_if(&c->lock, hooks);
    struct frame_bin *f = &c->bin;
    size_t n = f->count;
    uintptr_t slot = n ? f->slots[n - 1] : 0;
    uint64_t *p = frame_page(slot), *tag = frame_tag_at(p);
    /* Empty bin, damaged tag, or the peak to sample. */
    if (HA_UNLIKELY(!n || *tag != frame_tag(p) || frames_out(c) + 1 > c->pages_hwm ||
                    page_peak_generation() != c->pages_gen))
        return miss ? frame_alloc_slower(c, irq, miss, count, align) : frame_alloc_slow(c, irq, zeroed);
    frame_count_set(f, n - 1);
    ha_store_relaxed8(f->kind_at[n - 1], PAGE_KIND_USER);
    *tag = 0;
    if (zeroed)
        *zeroed = slot & 1;
    c->page_allocs++;
    lock_release_if(&c->lock, irq, hooks);
    return p;
}

void *frame_alloc(bool *zeroed)
{
    return frame_alloc_in(zeroed, 0, 0, 0, HOOKS_CHECKED);
}

void *frame_alloc_or(frame_miss_fn miss, size_t count, size_t align)
{
    return frame_alloc_in(0, miss, count, align, HOOKS_ALL);
}

void *frame_alloc_or_none(frame_miss_fn miss, size_t count, size_t align)
{
    return frame_alloc_in(0, miss, count, align, HOOKS_NONE);
}

/* Is frame p in some bin?  Each cache is looked at under its own lock, one
 * after the other (the rare slow path of a free that found the tag). */
static bool frame_is_cached(const void *p)
{
    unsigned n = atomic_load_explicit(&nframe_caches, memory_order_acquire);
    for (unsigned i = 0; i <= n; i++) {
        struct frame_cache *c = frame_cache_at(i, n);
        uintptr_t irq = lock_acquire(&c->lock);
        bool found = false;
        for (size_t j = 0; j < c->bin.count && !found; j++)
            found = frame_page(c->bin.slots[j]) == p;
        lock_release(&c->lock, irq);
        if (found)
            return true;
    }
    return false;
}

/* A free that found the frame's tag already there (a double free, or live
 * data equal to the tag), or a full bin; cache lock held, released here. */
static HA_NOINLINE enum ha_fault frame_free_slow(struct frame_cache *c, uintptr_t irq, void *p, bool tagged,
                                                  uint8_t *kind_at)
{
    if (tagged) {
        lock_release(&c->lock, irq);
        if (frame_is_cached(p))
            return FAULT_DOUBLE_FREE;     /* the tag was there already: nothing changed */
        irq = lock_acquire(&c->lock); /* live, and its owner stored the tag's value */
    }
    struct frame_bin *fb = &c->bin;
    if (fb->count >= FRAME_SLOTS)
        frame_drain(fb, FRAME_SLOTS / 2);
    fb->slots[fb->count] = (uintptr_t)p;
    fb->kind_at[fb->count] = kind_at;
    frame_count_set(fb, fb->count + 1);
    ha_store_relaxed8(kind_at, PAGE_KIND_FRAME);
    c->page_frees++;
    lock_release(&c->lock, irq);
    return FAULT_NONE;
}

static HA_NOINLINE enum ha_fault frame_free_first(void *p, uint8_t *kind_at)
{
    struct frame_cache *c = frame_cache_get();
    uintptr_t irq = lock_acquire(&c->lock);
    bool tagged = ha_xchg_relaxed64(frame_tag_at(p), frame_tag(p)) == frame_tag(p);
    return frame_free_slow(c, irq, p, tagged, kind_at);
}

/* frame_free_or's slow path: c locked, or NULL (cache still to be made). */
static HA_NOINLINE void frame_free_slower(struct frame_cache *c, uintptr_t irq, void *p, bool tagged,
                                          uint8_t *kind_at, frame_fault_fn fault)
{
    enum ha_fault f = c ? frame_free_slow(c, irq, p, tagged, kind_at) : frame_free_first(p, kind_at);
    if (f != FAULT_NONE)
        fault(p, f);
}

HA_INLINE void frame_free_if(void *p, frame_fault_fn fault, unsigned hooks)
{
    uint8_t *kind_at;
    enum ha_fault f = page_validate_frame((uintptr_t)p, &kind_at);
    if (HA_UNLIKELY(f != FAULT_NONE)) {
        fault(p, f);
        return;
    }
    struct frame_cache *c = ha_load_published(&frame_caches[ha_cpu_if(hooks)]);
    if (HA_UNLIKELY(!c)) {
        frame_free_slower(0, 0, p, false, kind_at, fault);
        return;
    }
    uintptr_t irq = lock_acquire_if(&c->lock, hooks);
    /* Claim the frame: of two CPUs freeing it at once, one sees the tag
     * the other wrote (see the file comment). */
    uint64_t tag = frame_tag(p);
    bool tagged = ha_xchg_relaxed64(frame_tag_at(p), tag) == tag;
    struct frame_bin *fb = &c->bin;
    size_t n = fb->count;
    if (HA_UNLIKELY(tagged || n >= FRAME_SLOTS)) {
        frame_free_slower(c, irq, p, tagged, kind_at, fault);
        return;
    }
    fb->slots[n] = (uintptr_t)p;
    fb->kind_at[n] = kind_at;
    frame_count_set(fb, n + 1);
    ha_store_relaxed8(kind_at, PAGE_KIND_FRAME);
    c->page_frees++;
    lock_release_if(&c->lock, irq, hooks);
}

void frame_free_or(void *p, frame_fault_fn fault)
{
    frame_free_if(p, fault, HOOKS_ALL);
}

void frame_free_or_none(void *p, frame_fault_fn fault)
{
    frame_free_if(p, fault, HOOKS_NONE);
}

/* ------------------------------------------------------------ maintenance */

size_t frame_flush(void)
{
    size_t total = 0;
    unsigned n = atomic_load_explicit(&nframe_caches, memory_order_acquire);
    for (unsigned i = 0; i <= n; i++) {
        struct frame_cache *c = frame_cache_at(i, n);
        uintptr_t irq = lock_acquire(&c->lock);
        total += c->bin.count;
        if (c->bin.count)
            frame_drain(&c->bin, c->bin.count);
        lock_release(&c->lock, irq);
    }
    return total;
}

/* Every cache locked: mark every cached frame free (or allocated again) in
 * the page bitmap, page lock held. */
static void frames_mark(const struct frame_locks *l, bool free)
{
    for (unsigned i = 0; i <= l->n; i++) {
        const struct frame_bin *f = &frame_cache_at(i, l->n)->bin;
        for (size_t j = 0; j < f->count; j++)
            page_frame_mark((uintptr_t)frame_page(f->slots[j]), free);
    }
}

void frame_stats(struct ha_stats *out)
{
    struct frame_locks l;
    frame_lock_all(&l);
    /* Exact now that no frame moves: pages_peak >= pages_used. */
    page_sample_peak();
    /* The largest run counts cached frames as free: ha_alloc_pages takes
     * them back from the caches before it fails.  Their bits are cleared
     * for the scan only, with every cache and the page allocator locked (a
     * free that reads a cleared bit meanwhile is freeing a free frame). */
    uintptr_t irq = page_lock();
    frames_mark(&l, true);
    page_stats_locked(out);
    frames_mark(&l, false);
    page_unlock(irq);
    size_t frames = 0;
    for (unsigned i = 0; i <= l.n; i++) {
        const struct frame_cache *c = frame_cache_at(i, l.n);
        out->page_allocs += c->page_allocs;
        out->page_frees += c->page_frees;
        frames += c->bin.count;
    }
    out->bytes_meta += l.n * FRAME_CACHE_PAGES * HA_PAGE_SIZE;
    frame_unlock_all(&l);
    /* The page allocator counts cached frames as used; to callers they are
     * free. */
    out->pages_used -= frames;
    out->pages_free += frames;
    out->bytes_free += frames * HA_PAGE_SIZE;
}

/* Every cached frame: an allocated FRAME page holding its frame tag, in
 * one bin only (its tag is inverted as a mark while checking), and no other
 * page of kind FRAME. */
int frame_check(void)
{
    struct frame_locks l;
    frame_lock_all(&l);
    int r = 0;
    size_t marked = 0, cached = 0;
    for (unsigned i = 0; i <= l.n && r == 0; i++) {
        const struct frame_bin *f = &frame_cache_at(i, l.n)->bin;
        if (f->count > FRAME_SLOTS) {
            r = check_fail("frame: bin over capacity", f);
            break;
        }
        cached += f->count;
        for (size_t j = 0; j < f->count && r == 0; j++) {
            uint64_t *p = frame_page(f->slots[j]), *tag = frame_tag_at(p);
            if (page_kind_of((uintptr_t)p) != PAGE_KIND_FRAME || !page_is_allocated((uintptr_t)p))
                r = check_fail("frame: cached frame not an allocated FRAME page", p);
            else if (f->kind_at[j] != page_kind_at((uintptr_t)p))
                r = check_fail("frame: cached frame's kind pointer wrong", &f->kind_at[j]);
            else if (*tag == ~frame_tag(p))
                r = check_fail("frame: frame cached twice", p);
            else if (*tag != frame_tag(p))
                r = check_fail("frame: cached frame written (use after free)", tag);
            else {
                *tag = ~frame_tag(p);
                marked++;
            }
        }
    }
    for (unsigned i = 0; i <= l.n && marked > 0; i++) {
        const struct frame_bin *f = &frame_cache_at(i, l.n)->bin;
        for (size_t j = 0; j < f->count && marked > 0; j++, marked--) {
            uint64_t *p = frame_page(f->slots[j]);
            *frame_tag_at(p) = frame_tag(p);
        }
    }
    if (r == 0 && page_count_frames() != cached)
        r = check_fail("frame: pages of kind FRAME that no cache holds", NULL);
    frame_unlock_all(&l);
    return r;
}

void frame_fork_lock(bool take)
{
    static struct frame_locks held;
    if (take)
        frame_lock_all(&held);
    else
        frame_unlock_all(&held);
}
