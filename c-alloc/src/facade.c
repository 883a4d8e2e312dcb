/*
 * The public API: routes each request to the early, slab, TLSF or page
 * allocator, validates every pointer handed back before anything changes,
 * reports faults, keeps the counters that are not per-CPU, and in the
 * checked build arms and verifies red zones.
 *
 * Routing of a byte request (size, align) once ha_final_init has run:
 *   slab_class_for() finds a class   -> per-CPU cache  (O(1))
 *   otherwise                        -> TLSF            (O(1), bounded)
 *     (TLSF itself gives sizes > HA_MID_MAX and alignments > a page an
 *      arena of their own, straight from the page allocator)
 * Routing of a pointer: early range -> early; else the page kind map says
 * SLAB, ARENA, USER (pages) or SYSTEM; anything outside every region is
 * foreign.
 */
#include "ha_internal.h"

enum phase { PHASE_NONE = 0, PHASE_EARLY = 1, PHASE_FINAL = 2 };

static atomic_int phase;
static ha_lock_t life_lock = HA_LOCK_INIT; /* serialises the life-cycle calls */
/* slab_max_size once the phase is final, 0 before: ha_alloc's fast path
 * tests its size against this one word (released after the phase). */
static _Atomic size_t small_max;

static void small_max_publish(void)
{
    atomic_store_explicit(&small_max, atomic_load_explicit(&slab_max_size, memory_order_relaxed),
                          memory_order_release);
}
static _Atomic(ha_oom_handler_fn) oom_handler;

/* Counters of the rarer events: atomics are cheap enough there.  Page runs
 * of the final allocator are counted by page.c under its lock. */
static atomic_ullong n_failures;
static atomic_ullong n_early_page_allocs;
static atomic_ullong n_early_page_frees;

/* How often the OOM hook may ask for a retry of one request. */
#define OOM_RETRIES 8

int ha_check(void)
{
    check_reset();
    int p = atomic_load_explicit(&phase, memory_order_acquire);
    if (p == PHASE_NONE)
        return 0;
    int r = early_check();
    if (r == 0 && p == PHASE_FINAL) {
        r = page_check();
        if (r == 0)
            r = frame_check();
        if (r == 0)
            r = slab_check();
        if (r == 0)
            r = tlsf_check();
    }
    return r;
}

/* Checked build: a full walk on every API call. */
#if HA_CHECKED
#define CHECKED_WALK()                                                         \
    do {                                                                       \
        if (ha_check() != 0) {                                                 \
            const void *at_;                                                   \
            const char *what_ = check_first(&at_);                             \
            ha_platform_fatal(what_, at_);                                     \
        }                                                                      \
    } while (0)
#else
#define CHECKED_WALK() ((void)0)
#endif

/* ------------------------------------------------------------ red zones */
/*
 * Checked build: every byte block ends in an 8-byte trailer at its usable
 * end: the slack between the requested size and the trailer (32 bits) and a
 * canary mixing the block address with that slack.  Bytes between the
 * requested end and the trailer hold HA_POISON_SLACK.  A write one byte past
 * the request changes a slack byte or the trailer: found on free.
 */
/* A live byte block, as block_of (below) finds it. */
enum owner { OWNER_EARLY, OWNER_SLAB, OWNER_TLSF };

struct block {
    enum owner owner;
    unsigned cls;  /* OWNER_SLAB */
    size_t usable; /* bytes the block holds, trailer included */
};

#if HA_CHECKED
static uint32_t redzone_canary(const void *p, uint32_t slack)
{
    uint64_t x = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull ^ slack;
    return (uint32_t)(x >> 29) ^ 0x5AFEC0DEu;
}

static void redzone_arm(void *p, size_t req, size_t usable)
{
    unsigned char *b = p;
    size_t tail = usable - HA_TRAILER_SIZE;
    uint32_t t[2] = { (uint32_t)(tail - req), 0 };
    t[1] = redzone_canary(p, t[0]);
    ha_memset(b + req, HA_POISON_SLACK, tail - req);
    ha_memcpy(b + tail, t, sizeof t);
}

static void block_of(const void *p, struct block *b);

/* The red zone of p reads as written at `at`.  Another CPU may have freed
 * p since block_of looked (two frees racing): its free poisons the block,
 * trailer included, after marking it free.  Look again first, so that the
 * race is named for what it is (block_of faults on a freed block); a block
 * still live had its red zone written. */
static HA_NOINLINE _Noreturn void redzone_fault(const void *p, const void *at)
{
    struct block again;
    block_of(p, &again);
    ha_fault(FAULT_OVERFLOW, at);
}

/* The requested size recorded for p; faults if the red zone was written. */
static size_t redzone_verify(const void *p, size_t usable)
{
    const unsigned char *b = p;
    size_t tail = usable - HA_TRAILER_SIZE;
    uint32_t t[2];
    ha_memcpy(t, b + tail, sizeof t);
    if (t[0] > tail || t[1] != redzone_canary(p, t[0]))
        redzone_fault(p, b + tail);
    size_t req = tail - t[0];
    for (size_t i = req; i < tail; i++)
        if (b[i] != HA_POISON_SLACK)
            redzone_fault(p, b + i);
    return req;
}
#endif

/* What the statistics count for a block: its usable size, or in the checked
 * build the requested size (all that ha_usable_size lets the caller use). */
#if HA_CHECKED
#define ACCOUNTED(requested, usable) (requested)
#else
#define ACCOUNTED(requested, usable) (usable)
#endif

/* ------------------------------------------------------------- life cycle */

static bool range_ok(const void *base, size_t len)
{
    return base != 0 && len != 0 && (uintptr_t)base + len > (uintptr_t)base;
}

int ha_early_init(void *base, size_t len)
{
    if (!range_ok(base, len))
        return HA_EINVAL;
    uintptr_t irq = lock_acquire(&life_lock);
    int r = HA_ESTATE;
    if (atomic_load_explicit(&phase, memory_order_relaxed) == PHASE_NONE) {
        r = early_init((uintptr_t)base, len);
        if (r == HA_OK) {
            uintptr_t start = (uintptr_t)base;
            page_set_early_range(ha_align_down(start, HA_PAGE_SIZE),
                                 ha_align_up(start + len, HA_PAGE_SIZE));
            atomic_store_explicit(&phase, PHASE_EARLY, memory_order_release);
        }
    }
    lock_release(&life_lock, irq);
    return r;
}

int ha_seed(const void *bytes, size_t len)
{
    if (!bytes || len == 0)
        return HA_EINVAL;
    uintptr_t irq = lock_acquire(&life_lock);
    int r = HA_ESTATE;
    if (atomic_load_explicit(&phase, memory_order_relaxed) == PHASE_NONE) {
        secret_seed(bytes, len);
        r = HA_OK;
    }
    lock_release(&life_lock, irq);
    return r;
}

int ha_add_region_flags(void *base, size_t len, unsigned flags)
{
    if (!range_ok(base, len) || (flags & ~HA_REGION_ZEROED))
        return HA_EINVAL;
    uintptr_t irq = lock_acquire(&life_lock);
    int r = page_add_region((uintptr_t)base, (uintptr_t)base + len, flags);
    if (r == HA_OK && atomic_load_explicit(&phase, memory_order_relaxed) == PHASE_FINAL) {
        slab_configure();
        small_max_publish();
    }
    lock_release(&life_lock, irq);
    return r;
}

int ha_add_region(void *base, size_t len)
{
    return ha_add_region_flags(base, len, 0);
}

int ha_reserve(void *base, size_t len)
{
    if (!range_ok(base, len))
        return HA_EINVAL;
    uintptr_t irq = lock_acquire(&life_lock);
    int r = page_reserve((uintptr_t)base, (uintptr_t)base + len);
    lock_release(&life_lock, irq);
    return r;
}

int ha_final_init(void)
{
    uintptr_t irq = lock_acquire(&life_lock);
    int r = HA_ESTATE;
    int p = atomic_load_explicit(&phase, memory_order_relaxed);
    if (p != PHASE_FINAL) {
        r = page_start();
        if (r == HA_OK && p == PHASE_EARLY)
            r = early_finish();
        if (r == HA_OK) {
            slab_configure();
            cache_prepare();
            frame_prepare();
            atomic_store_explicit(&phase, PHASE_FINAL, memory_order_release);
            small_max_publish();
        }
    }
    lock_release(&life_lock, irq);
    return r;
}

void ha_set_oom_handler(ha_oom_handler_fn handler)
{
    atomic_store_explicit(&oom_handler, handler, memory_order_release);
}

/* Ask the OOM hook for more memory; true means try again. */
static bool oom_retry(size_t bytes, size_t align, int *tries)
{
    ha_oom_handler_fn h = atomic_load_explicit(&oom_handler, memory_order_acquire);
    if (!h || ++*tries > OOM_RETRIES)
        return false;
    return h(bytes, align) != 0;
}

/* Before failing for want of pages, once per call: what the allocator
 * keeps for speed goes back to the page allocator (the CPU caches' frames,
 * then as ha_trim: cached objects, empty slabs, spare arenas).  True when
 * that freed pages, so that the request is worth another try. */
static bool reclaim(bool *done)
{
    if (*done || atomic_load_explicit(&phase, memory_order_acquire) != PHASE_FINAL)
        return false;
    *done = true;
    size_t before = page_free_count();
    frame_flush();
    slab_trim();
    tlsf_trim();
    return page_free_count() > before;
}

static void *fail(void)
{
    atomic_fetch_add_explicit(&n_failures, 1, memory_order_relaxed);
    return 0;
}

/* ------------------------------------------------------ routing a pointer */

/* Identify the live byte block at p, or report the fault.  Nothing has been
 * changed when this faults. */
static void block_of(const void *p, struct block *b)
{
    uintptr_t a = (uintptr_t)p;
    enum ha_fault f;
    if (early_owns(a)) {
        f = early_validate(p, 0, 0, false);
        if (f != FAULT_NONE)
            ha_fault(f, p);
        b->owner = OWNER_EARLY;
        b->usable = early_usable(p);
        return;
    }
    switch (page_kind_of(a)) {
    case PAGE_KIND_SLAB:
        f = slab_validate(p, &b->cls);
        if (f != FAULT_NONE)
            ha_fault(f, p);
        b->owner = OWNER_SLAB;
        b->usable = slab_class_size(b->cls);
        return;
    case PAGE_KIND_ARENA:
        f = tlsf_validate(p);
        if (f != FAULT_NONE)
            ha_fault(f, p);
        b->owner = OWNER_TLSF;
        b->usable = tlsf_usable(p);
        return;
    case PAGE_KIND_USER:
        /* Free pages in the page allocator: most likely a large block freed
         * before (its arena went back to the page allocator). */
        ha_fault(page_is_allocated(a) ? FAULT_PAGES_NOT_BYTES : FAULT_DOUBLE_FREE, p);
    case PAGE_KIND_FRAME: /* free in a CPU's frame cache */
        ha_fault(FAULT_DOUBLE_FREE, p);
    default:
        ha_fault(FAULT_FOREIGN, p);
    }
}

/* What ha_free_sized(p, size, align) promises must fit block b: the class
 * the request maps to, or (TLSF, early) a usable size the request explains. */
static void block_check_sized(const void *p, const struct block *b, size_t size, size_t align)
{
    if (!ha_is_pow2(align) || (uintptr_t)p % align != 0)
        ha_fault(FAULT_ALIGN_MISMATCH, p);
    size_t need = size + HA_TRAILER_SIZE;
    if (need < size)
        ha_fault(FAULT_SIZE_MISMATCH, p);
    switch (b->owner) {
    case OWNER_SLAB:
        if (slab_class_for(need, align) != (int)b->cls) {
            bool size_alone_fits = slab_class_for(need, HA_MIN_ALIGN) == (int)b->cls;
            ha_fault(size_alone_fits ? FAULT_ALIGN_MISMATCH : FAULT_SIZE_MISMATCH, p);
        }
        return;
    case OWNER_TLSF:
        if (!tlsf_size_fits(b->usable, need))
            ha_fault(FAULT_SIZE_MISMATCH, p);
        return;
    case OWNER_EARLY: {
        enum ha_fault f = early_validate(p, need, align, true);
        if (f != FAULT_NONE)
            ha_fault(f, p);
        return;
    }
    }
}

/* --------------------------------------------------------------- bytes */

/* One attempt, no OOM hook.  size > 0, align a power of two. */
static void *alloc_once(size_t size, size_t align, bool *zeroed)
{
    *zeroed = false;
    size_t need = size + HA_TRAILER_SIZE;
    if (need < size)
        return 0;
    int p = atomic_load_explicit(&phase, memory_order_acquire);
    void *ptr;
    size_t usable;
    if (HA_LIKELY(p == PHASE_FINAL)) {
        int cls = slab_class_for(need, align);
        if (HA_LIKELY(cls >= 0)) {
            ptr = slab_alloc((unsigned)cls, size, &usable);
            if (!ptr)
                return 0;
        } else {
            /* TLSF counts the usable size itself (0), or what we name. */
            ptr = tlsf_alloc(need, align, zeroed, ACCOUNTED(size, 0));
            if (!ptr)
                return 0;
            /* Only the checked build's red zone needs it. */
            usable = HA_CHECKED ? tlsf_usable(ptr) : 0;
        }
    } else if (p == PHASE_EARLY) {
        ptr = early_alloc(need, align);
        if (!ptr)
            return 0;
        usable = early_usable(ptr);
        cache_account_alloc(ACCOUNTED(size, usable));
    } else {
        return 0;
    }
#if HA_CHECKED
    redzone_arm(ptr, size, usable);
#else
    (void)usable;
#endif
    return ptr;
}

static void *alloc_any(size_t size, size_t align, bool *zeroed)
{
    CHECKED_WALK();
    if (HA_UNLIKELY(!ha_is_pow2(align)))
        return fail();
    if (HA_UNLIKELY(size == 0))
        size = 1;
    int tries = 0;
    bool flushed = false;
    for (;;) {
        void *p = alloc_once(size, align, zeroed);
        if (HA_LIKELY(p != 0))
            return p;
        if (reclaim(&flushed))
            continue;
        if (!oom_retry(size, align, &tries))
            return fail();
    }
}

/* Bit a set for every power of two a <= HA_MIN_ALIGN. */
#define SMALL_ALIGNS ((1u << 1) | (1u << 2) | (1u << 4) | (1u << 8) | (1u << 16))
HA_STATIC_ASSERT(HA_MIN_ALIGN == 16, "SMALL_ALIGNS lists the powers of two up to HA_MIN_ALIGN");

/* ha_alloc's general path: out of line, so that the fast paths below end
 * in tail calls and save no registers. */
static HA_NOINLINE void *alloc_general(size_t size, size_t align)
{
    bool zeroed;
    return alloc_any(size, align, &zeroed);
}

static HA_NOINLINE void *alloc_mid(size_t size, size_t align)
{
    void *p = tlsf_alloc_mid(size);
    return HA_LIKELY(p != 0) ? p : alloc_general(size, align);
}

/* ha_alloc of a request aligned to no more than every block is (align a
 * power of two <= HA_MIN_ALIGN): a class's size straight to this CPU's
 * cache, a mid size straight to this CPU's TLSF heap (as alloc_once would
 * route them, without the detour).  Everything else, a miss included (it
 * may need the reclaim and the OOM hook), takes the general path. */
HA_INLINE void *alloc_min_align(size_t size, size_t align)
{
    if (!HA_CHECKED) {
        /* One load says both "final" and "a class's size". */
        if (HA_LIKELY(size - 1 < atomic_load_explicit(&small_max, memory_order_acquire)))
            return hooks_none() ? slab_alloc_small_none(size, align, alloc_general)
                                : slab_alloc_small(size, align, alloc_general);
        if (size - 1 < HA_MID_MAX && atomic_load_explicit(&phase, memory_order_acquire) == PHASE_FINAL)
            return alloc_mid(size, align);
    }
    return alloc_general(size, align);
}

void *ha_alloc(size_t size, size_t align)
{
    if (HA_LIKELY(align <= HA_MIN_ALIGN && ((SMALL_ALIGNS >> align) & 1u)))
        return alloc_min_align(size, align);
    return alloc_general(size, align);
}

void *ha_alloc_min_align(size_t size)
{
    return alloc_min_align(size, HA_MIN_ALIGN);
}

void *ha_alloc_zeroed(size_t size, size_t align)
{
    bool zeroed;
    void *p = alloc_any(size, align, &zeroed);
    if (p && !zeroed)
        ha_memset(p, 0, size ? size : 1);
    return p;
}

/* Give block b at p back to its allocator. */
static void block_release(void *p, const struct block *b)
{
#if HA_CHECKED
    size_t accounted = redzone_verify(p, b->usable);
#else
    size_t accounted = b->usable;
#endif
    switch (b->owner) {
    case OWNER_SLAB:
        cache_free(p, b->cls, accounted);
        return;
    case OWNER_TLSF: {
        enum ha_fault f = tlsf_free(p, 0, 0, false, ACCOUNTED(accounted, 0));
        if (f != FAULT_NONE) /* freed by another CPU since block_of looked */
            ha_fault(f, p);
        return;
    }
    case OWNER_EARLY:
        early_free(p);
        cache_account_free(accounted);
        return;
    }
}

/* The rest of ha_free / ha_free_sized: the early range, pages, the
 * checked build, and every pointer the fast paths do not recognise.  Out
 * of line, like the arena path, so that ha_free's slab path is a tail
 * call that saves no registers. */
static HA_NOINLINE void free_general(void *p)
{
    if (!p)
        return;
    struct block b;
    block_of(p, &b);
    block_release(p, &b);
}

static HA_NOINLINE void free_sized_general(void *p, size_t size, size_t align)
{
    if (!p)
        return;
    /* As ha_alloc did: size 0 was served as 1. */
    if (size == 0)
        size = 1;
    struct block b;
    block_of(p, &b);
    block_check_sized(p, &b, size, align);
    block_release(p, &b);
}

static HA_NOINLINE void free_arena(const struct page_region *r, void *p, size_t size, size_t align, bool sized)
{
    enum ha_fault f = tlsf_free_in_region(r, p, size, align, sized);
    if (f != FAULT_NONE)
        ha_fault(f, p);
}

void ha_free(void *p)
{
    CHECKED_WALK();
    /* Fast paths: slab and arena pages are never in the early range, and
     * NULL is in no region (none holds page 0: range_ok and the rounding
     * up of a region's start), so it reaches free_general. */
    if (!HA_CHECKED) {
        const struct page_region *r;
        int kind = page_kind_region((uintptr_t)p, &r);
        if (HA_LIKELY(kind == PAGE_KIND_SLAB)) {
            if (hooks_none())
                slab_free_unsized_none(p, r);
            else
                slab_free_unsized(p, r);
            return;
        }
        if (kind == PAGE_KIND_ARENA) {
            free_arena(r, p, 0, 0, false);
            return;
        }
    }
    free_general(p);
}

/* ha_free_sized once align is known to be a power of two. */
HA_INLINE void free_sized(void *p, size_t size, size_t align)
{
    CHECKED_WALK();
    /* NULL reaches free_sized_general, as in ha_free.  Size 0 (served as
     * 1) is left to the paths past the fast one: the slab's sized test
     * sends it to its odd path, which counts it as 1. */
    if (!HA_CHECKED) {
        const struct page_region *r;
        int kind = page_kind_region((uintptr_t)p, &r);
        if (HA_LIKELY(kind == PAGE_KIND_SLAB)) {
            /* Folds for ha_free_sized_min_align. */
            if (align <= HA_MIN_ALIGN) {
                if (hooks_none())
                    slab_free_min_none(p, size, r);
                else
                    slab_free_min(p, size, r);
            } else if (hooks_none()) {
                slab_free_none(p, size, align, r);
            } else {
                slab_free(p, size, align, r);
            }
            return;
        }
        if (kind == PAGE_KIND_ARENA) {
            free_arena(r, p, size ? size : 1, align, true);
            return;
        }
    }
    free_sized_general(p, size, align);
}

void ha_free_sized(void *p, size_t size, size_t align)
{
    /* No block has an alignment that is not a power of two. */
    if (HA_UNLIKELY(!ha_is_pow2(align)) && p)
        ha_fault(FAULT_ALIGN_MISMATCH, p);
    free_sized(p, size, align);
}

void ha_free_sized_min_align(void *p, size_t size)
{
    /* Every block is HA_MIN_ALIGN-aligned: any alignment up to it is
     * checked as the same. */
    free_sized(p, size, HA_MIN_ALIGN);
}

size_t ha_usable_size(const void *p)
{
    CHECKED_WALK();
    if (!p)
        return 0;
    struct block b;
    block_of(p, &b);
#if HA_CHECKED
    /* The red zone is not the caller's to use. */
    return redzone_verify(p, b.usable);
#else
    return b.usable;
#endif
}

/* Resize b at p in place to hold need bytes, if its allocator can. */
static bool block_resize_in_place(void *p, struct block *b, size_t need, size_t align)
{
    if ((uintptr_t)p % align != 0)
        return false;
    switch (b->owner) {
    case OWNER_SLAB:
        /* Only within the class: a sized free must still find it. */
        return slab_class_for(need, align) == (int)b->cls;
    case OWNER_TLSF: {
        bool resized;
        size_t usable[2];
        enum ha_fault f = tlsf_resize_in(0, p, need, &resized, usable);
        if (f != FAULT_NONE) /* freed by another CPU since block_of looked */
            ha_fault(f, p);
        if (!resized)
            return false;
        b->usable = usable[1];
        break;
    }
    case OWNER_EARLY:
        if (!early_resize_in_place(p, need))
            return false;
        b->usable = early_usable(p);
        break;
    }
    return true;
}

/* ha_realloc past its fast paths (realloc_slab, realloc_arena): the early
 * allocator's blocks, alignments above HA_MIN_ALIGN, the checked build,
 * and any pointer that is not plainly a live slab object (block_of names
 * what is wrong with it). */
static HA_NOINLINE void *realloc_general(void *p, size_t new_size, size_t align)
{
    CHECKED_WALK();
    if (!ha_is_pow2(align))
        return fail();
    struct block b;
    block_of(p, &b);
#if HA_CHECKED
    size_t old_size = redzone_verify(p, b.usable);
#else
    size_t old_size = b.usable;
#endif
    size_t need = new_size + HA_TRAILER_SIZE;
    if (need < new_size)
        return fail();
    size_t old_accounted = ACCOUNTED(old_size, b.usable);
    if (block_resize_in_place(p, &b, need, align)) {
#if HA_CHECKED
        redzone_arm(p, new_size, b.usable);
#endif
        size_t new_accounted = ACCOUNTED(new_size, b.usable);
        if (new_accounted != old_accounted)
            cache_account_resize(old_accounted, new_accounted);
        return p;
    }
    void *q = ha_alloc(new_size, align);
    if (!q)
        return 0;
    ha_memcpy(q, p, old_size < new_size ? old_size : new_size);
    /* The old block was validated above and nothing freed it since: the
     * caller owns it until this returns. */
    block_release(p, &b);
    return q;
}

#if !HA_CHECKED
/* ha_realloc of an object in a SLAB page of region r, align a power of two
 * <= HA_MIN_ALIGN (default build): the free path's look-up instead of
 * block_of's, then either nothing (the new size maps to the same class,
 * so a sized free still finds it), or the fast allocation, the copy and
 * the cache's free, whose tag exchange catches a free racing with this. */
static HA_NOINLINE void *realloc_slab(void *p, size_t new_size, size_t align, const struct page_region *r)
{
    bool fits;
    int cls = slab_realloc_class(p, r, new_size, &fits);
    if (HA_UNLIKELY(cls < 0))
        return realloc_general(p, new_size, align);
    if (fits)
        return p;
    void *q = alloc_min_align(new_size, align);
    if (!q)
        return 0;
    size_t usable = slab_class_size((unsigned)cls);
    ha_memcpy(q, p, usable < new_size ? usable : new_size);
    cache_free(p, (unsigned)cls, usable);
    return q;
}

/* ha_realloc of a block in an ARENA page of region r, align a power of two
 * <= HA_MIN_ALIGN (every TLSF block is that aligned; default build): one
 * lock for the validation and the resize in place where block_of,
 * tlsf_usable and the resize took one each, then, if it must move, the
 * fast allocation, the copy and the arena free (which validates again:
 * the lock was let go). */
static HA_NOINLINE void *realloc_arena(void *p, size_t new_size, size_t align, const struct page_region *r)
{
    bool resized;
    size_t usable[2];
    enum ha_fault f = tlsf_resize_in(r, p, new_size, &resized, usable);
    if (HA_UNLIKELY(f != FAULT_NONE))
        ha_fault(f, p);
    if (resized) {
        if (usable[1] != usable[0])
            cache_account_resize(usable[0], usable[1]);
        return p;
    }
    void *q = alloc_min_align(new_size, align);
    if (!q)
        return 0;
    ha_memcpy(q, p, usable[0] < new_size ? usable[0] : new_size);
    free_arena(r, p, 0, 0, false);
    return q;
}
#endif

void *ha_realloc(void *p, size_t new_size, size_t align)
{
    if (!p)
        return ha_alloc(new_size, align);
    if (new_size == 0) {
        ha_free(p);
        return 0;
    }
#if !HA_CHECKED
    if (HA_LIKELY(align <= HA_MIN_ALIGN && ((SMALL_ALIGNS >> align) & 1u))) {
        const struct page_region *r;
        int kind = page_kind_region((uintptr_t)p, &r);
        if (HA_LIKELY(kind == PAGE_KIND_SLAB))
            return realloc_slab(p, new_size, align, r);
        if (kind == PAGE_KIND_ARENA)
            return realloc_arena(p, new_size, align, r);
    }
#endif
    return realloc_general(p, new_size, align);
}

/* --------------------------------------------------------------- pages */

/* missed: the caller's own attempt (the frame cache, or page_alloc for a
 * run) has just failed, so the loop starts with the reclaim instead of
 * asking again (for a run, a full bitmap scan more). */
static void *pages_alloc(size_t count, size_t align, bool *zeroed, bool missed)
{
    CHECKED_WALK();
    *zeroed = false;
    if (align < HA_PAGE_SIZE)
        align = HA_PAGE_SIZE;
    if (count == 0 || !ha_is_pow2(align) || count > SIZE_MAX / HA_PAGE_SIZE)
        return fail();
    int tries = 0;
    bool flushed = false;
    for (;; missed = false) {
        int p = atomic_load_explicit(&phase, memory_order_acquire);
        void *r = 0;
        if (missed && p == PHASE_FINAL)
            ; /* straight to the reclaim */
        else if (p == PHASE_FINAL && count == 1 && align == HA_PAGE_SIZE)
            r = frame_alloc(zeroed);
        else if (p == PHASE_FINAL)
            r = page_alloc(count, align, PAGE_KIND_USER, zeroed);
        else if (p == PHASE_EARLY)
            r = early_alloc_pages(count, align);
        if (r) {
            if (p == PHASE_EARLY)
                atomic_fetch_add_explicit(&n_early_page_allocs, 1, memory_order_relaxed);
            return r;
        }
        if (reclaim(&flushed))
            continue;
        if (!oom_retry(count * HA_PAGE_SIZE, align, &tries))
            return fail();
    }
}

/* ha_alloc_pages' general path, out of line: the frame path below then
 * ends in a tail call and saves no registers. */
static HA_NOINLINE void *pages_alloc_general(size_t count, size_t align)
{
    bool zeroed;
    return pages_alloc(count, align, &zeroed, false);
}

/* The same after a fast path's own attempt failed. */
static HA_NOINLINE void *pages_alloc_missed(size_t count, size_t align)
{
    bool zeroed;
    return pages_alloc(count, align, &zeroed, true);
}

/* A run after final init: straight to the page allocator, which refuses
 * what it cannot serve (bad arguments too) with nothing changed; the
 * general path then reclaims, retries or reports.  Out of line, as the
 * general path: the frame path in ha_alloc_pages stays a tail call. */
static HA_NOINLINE void *pages_alloc_run(size_t count, size_t align)
{
    if (HA_LIKELY(atomic_load_explicit(&phase, memory_order_acquire) == PHASE_FINAL)) {
        void *p = page_alloc(count, align < HA_PAGE_SIZE ? HA_PAGE_SIZE : align, PAGE_KIND_USER, 0);
        if (HA_LIKELY(p != 0))
            return p;
        return pages_alloc_missed(count, align);
    }
    return pages_alloc_general(count, align);
}

void *ha_alloc_pages(size_t count, size_t align)
{
    /* The single frame: straight to this CPU's frame cache, which ends in
     * the general path (reclaim, OOM hook) when it has none to give. */
    if (!HA_CHECKED && count == 1 && align <= HA_PAGE_SIZE &&
        HA_LIKELY(atomic_load_explicit(&phase, memory_order_acquire) == PHASE_FINAL))
        return hooks_none() ? frame_alloc_or_none(pages_alloc_missed, count, align)
                            : frame_alloc_or(pages_alloc_missed, count, align);
    return HA_CHECKED ? pages_alloc_general(count, align) : pages_alloc_run(count, align);
}

void *ha_alloc_pages_zeroed(size_t count, size_t align)
{
    bool zeroed;
    void *p = pages_alloc(count, align, &zeroed, false);
    if (p && !zeroed)
        ha_memset(p, 0, count * HA_PAGE_SIZE);
    return p;
}

static void free_pages_general(void *p, size_t count, enum ha_fault f);
static void free_pages_run(void *p, size_t count);

/* A single frame the frame cache refused (fault f, nothing changed). */
static HA_NOINLINE void free_frame_refused(void *p, enum ha_fault f)
{
    free_pages_general(p, 1, f);
}

void ha_free_pages(void *p, size_t count)
{
    CHECKED_WALK();
    if (!p)
        return;
    /* The single frame first: a page the early allocator holds is SYSTEM
     * in the kind map, or in no region at all, so the frame cache refuses
     * it with nothing changed, and the early allocator is asked next.
     * Every path ends in a tail call: no registers saved. */
    if (count == 1) {
        if (hooks_none())
            frame_free_or_none(p, free_frame_refused);
        else
            frame_free_or(p, free_frame_refused);
        return;
    }
    free_pages_run(p, count);
}

/* A run: the page allocator first (it refuses a bad one with nothing
 * changed, early pages included: they are SYSTEM or in no region); the
 * general path then tells the early allocator's or reports. */
static HA_NOINLINE void free_pages_run(void *p, size_t count)
{
    if (HA_LIKELY(page_free_checked(p, count, PAGE_KIND_USER) == FAULT_NONE))
        return;
    free_pages_general(p, count, FAULT_NONE);
}

/* ha_free_pages past the frame cache: f is the cache's refusal of a single
 * frame, FAULT_NONE for a run. */
static HA_NOINLINE void free_pages_general(void *p, size_t count, enum ha_fault f)
{
    if (early_owns((uintptr_t)p)) {
        f = early_validate_pages(p, count);
        if (f != FAULT_NONE)
            ha_fault(f, p);
        early_free_pages(p, count);
        atomic_fetch_add_explicit(&n_early_page_frees, 1, memory_order_relaxed);
    } else if (count == 1) {
        ha_fault(f, p);
    } else {
        /* A run holding a frame of a CPU cache (kind FRAME) was freed
         * before: the validation says so. */
        f = page_free_checked(p, count, PAGE_KIND_USER);
        if (f != FAULT_NONE)
            ha_fault(f, p);
    }
}

/* ----------------------------------------------------------- statistics */

void ha_get_stats(struct ha_stats *out)
{
    ha_memset(out, 0, sizeof *out);
    int p = atomic_load_explicit(&phase, memory_order_acquire);
    /* The byte counters first: they set bytes_used and settle its peak. */
    stats_bytes_read(out);
    if (p != PHASE_NONE)
        early_stats(out);
    if (p == PHASE_FINAL) {
        tlsf_stats(out);
        slab_stats(out);
        frame_stats(out);
    }
    out->page_allocs += atomic_load_explicit(&n_early_page_allocs, memory_order_relaxed);
    out->page_frees += atomic_load_explicit(&n_early_page_frees, memory_order_relaxed);
    out->failures = atomic_load_explicit(&n_failures, memory_order_relaxed);
}

void ha_trim(void)
{
    if (atomic_load_explicit(&phase, memory_order_acquire) != PHASE_FINAL)
        return;
    frame_flush();
    slab_trim();
    tlsf_trim();
}

/* ----------------------------------------------------------------- fork */

static uintptr_t fork_irq;

void ha_fork_prepare(void)
{
    fork_irq = lock_acquire(&life_lock);
    early_fork_lock(true);
    frame_fork_lock(true);
    slab_fork_lock(true);
    tlsf_fork_lock(true);
    page_fork_lock(true);
}

static void fork_release(void)
{
    page_fork_lock(false);
    tlsf_fork_lock(false);
    slab_fork_lock(false);
    frame_fork_lock(false);
    early_fork_lock(false);
    lock_release(&life_lock, fork_irq);
}

void ha_fork_parent(void)
{
    fork_release();
}

/* The child has one thread, the one that forked: what it released is free
 * for it; the other threads' per-CPU caches stay valid memory. */
void ha_fork_child(void)
{
    fork_release();
}
