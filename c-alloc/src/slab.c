/*
 * Small objects: 20 size classes up to HA_SMALL_MAX, in 64 KiB slab chunks,
 * behind per-CPU caches.  The same per-CPU caches also hold single pages
 * for ha_alloc_pages(1) / ha_free_pages(p, 1) (frame caches, further down).
 *
 *   ha_alloc -> cache_alloc: lock this CPU's cache (uncontended: only the
 *   CPU itself and the rare ha_trim/ha_check take it), pop a pointer from
 *   the class's bin, wipe its free tag.
 *   ha_free -> slab_free: validate by arithmetic (slab header, index, no
 *   interior pointer), see that the object does not carry its free tag
 *   already, tag it, push it.  A bin that runs empty is refilled, and one
 *   that runs full is drained, half a bin at a time, under the class lock.
 *   That is one atomic instruction per call: the cache lock.
 *
 * Why the cache lock: a CPU id may be folded (more threads than
 * HA_MAX_CPUS on a host) or read just before a migration; the lock keeps
 * the cache correct whatever the platform does, and ha_trim can drain a
 * remote CPU's cache.  Interrupts are off while it is held.
 *
 * Double frees: every free object (in a bin, or available in its slab,
 * never handed out yet included) holds its free tag, a word derived from
 * its address, in its first 8 bytes; ha_alloc wipes it.  A free that finds
 * the tag in place is a double free unless the object is live and its
 * owner happened to store that very word there: the slow path settles it
 * exactly by looking for the object in the bins and its slab's bitmap.  So
 * the fast path needs no shared write, and no free is ever refused wrongly.
 * (Two CPUs freeing one object at the same instant can both pass; ha_check
 * then reports the object cached twice.)
 *
 * Why bitmaps and not free lists threaded through the objects: what is
 * available in a slab is known exactly, so a use-after-free write cannot
 * corrupt allocator metadata, and ha_check can account for every object.
 */
#include "ha_internal.h"

#define SLAB_CLASSES 20
#define BIN_SLOTS 64
#define FRAME_SLOTS 64
#define SLAB_MAGIC 0x51AB0C0DE5EEDull

/* Class sizes: 16-byte steps to 128, then four classes per doubling.  The
 * worst internal waste is 20% (129 -> 160), typical under 12%. */
static const uint16_t class_size_tab[SLAB_CLASSES] = {
    16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024,
};
/* Largest power of two dividing the size: every object of the class is
 * aligned to it, because the object area starts at a multiple of it. */
static const uint16_t class_align_tab[SLAB_CLASSES] = {
    16, 32, 16, 64, 16, 32, 16, 128, 32, 64, 32, 256, 64, 128, 64, 512, 128, 256, 128, 1024,
};
/* Bin capacity: more for small objects (cheap to hold, allocated often). */
static const uint8_t bin_cap_tab[SLAB_CLASSES] = {
    64, 64, 64, 64, 64, 64, 64, 64, 48, 48, 48, 48, 32, 32, 32, 32, 16, 16, 16, 16,
};

/* The header at the start of every slab chunk.
 * Invariants (slab_check):
 *  - check == slab_check_word(slab, cls); the chunk's pages have kind SLAB;
 *  - popcount(avail) == navail;
 *  - an object is in exactly one of: available (avail bit), in one CPU's
 *    bin, or live; per class, sum of the CPUs' live counts + available +
 *    cached == objects in the class's slabs;
 *  - every available or cached object holds its free tag;
 *  - list == SLAB_FULL iff navail == 0; SLAB_EMPTY holds navail == nobj and
 *    is the class's one kept empty slab; SLAB_PARTIAL otherwise. */
struct slab {
    uint64_t check;
    uint16_t cls;
    uint16_t list;
    uint16_t nobj;
    uint16_t navail;
    uint16_t first_off; /* offset of object 0: a multiple of the class alignment */
    uint16_t words;     /* 64-bit words in the avail bitmap */
    uint32_t recip;     /* ceil(2^32 / size): offset -> index without a division */
    struct slab *next, *prev;
    uint64_t avail[]; /* under the class lock */
};

enum slab_list { SLAB_PARTIAL, SLAB_FULL, SLAB_EMPTY };

struct slab_class {
    ha_lock_t lock;
    struct slab *partial; /* navail > 0 */
    struct slab *full;    /* navail == 0 */
    struct slab *empty;   /* one wholly free slab kept against thrashing */
    size_t nslabs;
    size_t navail; /* sum over the slabs */
} __attribute__((aligned(HA_CACHELINE)));

static struct slab_class classes[SLAB_CLASSES];

/* Byte statistics of one CPU, written by its owner under the cache lock.
 * `used` is also read without the lock (peak sampling): a relaxed atomic,
 * which costs nothing more than a plain load or store. */
struct cpu_stats {
    _Atomic intptr_t used; /* may go negative: frees of other CPUs' blocks */
    intptr_t hwm;          /* highest `used` seen: peak is resampled above it */
    uint64_t allocs, frees;
    /* Frames: pages handed out here less those taken back here, its
     * high-water mark and the page allocator's peak generation then. */
    intptr_t pages, pages_hwm;
    unsigned pages_gen;
    uint64_t page_allocs, page_frees;
};

/* Where a bin's frames are, coarsely: frame at pfn counts in bucket
 * (pfn / 64) % FRAME_BUCKETS (256 KiB of address space, wrapping every
 * 64 MiB); `where` has the bit of every bucket holding one.  A multi-page
 * free looks through a bin only if `where` says the run may meet a frame. */
#define FRAME_BUCKETS 256
#define FRAME_BUCKET_SHIFT (HA_PAGE_SHIFT + 6)

/* Single pages a CPU holds, as address | 1 when the page is known zero.
 * `count` and `where` are also read without the lock (cache_frames_held,
 * frames_search). */
struct frame_bin {
    uint32_t count;
    uint64_t where[FRAME_BUCKETS / 64];
    uint8_t in_bucket[FRAME_BUCKETS];
    uintptr_t slots[FRAME_SLOTS];
};

struct bin {
    uint32_t count;
    void *slots[BIN_SLOTS];
};

struct cpu_cache {
    ha_lock_t lock;
    struct cpu_stats stats;
    intptr_t live[SLAB_CLASSES]; /* objects handed out here less those freed here */
    struct bin bins[SLAB_CLASSES];
    struct frame_bin frames;
};

#define CACHE_PAGES ((sizeof(struct cpu_cache) + HA_PAGE_SIZE - 1) / HA_PAGE_SIZE)

static struct cpu_cache *_Atomic caches[HA_MAX_CPUS];
/* The caches made so far, densely: peak sampling and walks read only
 * these.  Appended under cache_create_lock, then ncaches is published. */
static struct cpu_cache *cache_list[HA_MAX_CPUS];
static _Atomic unsigned ncaches;
static ha_lock_t cache_create_lock = HA_LOCK_INIT;

/* Serves before ha_final_init (statistics only) and any CPU whose own
 * cache could not be made (out of pages): shared, so always locked. */
static struct cpu_cache shared_cache;

static _Atomic size_t bytes_peak;

/* ---------------------------------------------------------- size classes */

/* Every class size is a multiple of 16, so the class of a size is a
 * table lookup by 16-byte granule: class_by_granule[(size + 15) / 16]. */
static const uint8_t class_by_granule[HA_SMALL_MAX / 16 + 1] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7,                    /* 0..128: 16-byte steps */
    8, 8, 9, 9, 10, 10, 11, 11,                   /* ..256: 32-byte steps */
    12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15, /* ..512 */
    16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17, 17, /* ..768 */
    18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19, /* ..1024 */
};
HA_STATIC_ASSERT(sizeof class_by_granule == HA_SMALL_MAX / 16 + 1, "one entry per granule");

HA_INLINE int class_for(size_t size, size_t align)
{
    if (HA_UNLIKELY(size > HA_SMALL_MAX || align > HA_SMALL_MAX))
        return -1;
    int c = class_by_granule[(size + 15) / 16];
    while (HA_UNLIKELY(class_align_tab[c] < align)) /* align > 16: ends at 1024 */
        c++;
    return c;
}

int slab_class_for(size_t size, size_t align)
{
    return class_for(size, align);
}

size_t slab_class_size(unsigned cls)
{
    return class_size_tab[cls];
}

/* ----------------------------------------------------------------- slabs */

static uint64_t slab_check_word(const struct slab *s, unsigned cls)
{
    return ((SLAB_MAGIC ^ (uint64_t)(uintptr_t)s) * 0x9E3779B97F4A7C15ull + cls) ^ ha_secret;
}

/* The word a free object holds at its start.  Not a pointer of any
 * canonical form, so live data rarely holds it by chance; when it does,
 * the slow path finds the object live and the free goes ahead. */
HA_INLINE uint64_t free_tag(const void *p)
{
    return ((uint64_t)(uintptr_t)p ^ 0xF7EEB10CF7EEB10Cull) + ha_secret;
}

HA_INLINE struct slab *slab_of(const void *p)
{
    return (struct slab *)ha_align_down((uintptr_t)p, HA_CHUNK_SIZE);
}

HA_INLINE unsigned slab_index(const struct slab *s, const void *p)
{
    uint64_t rel = (uint64_t)((uintptr_t)p - (uintptr_t)s - s->first_off);
    return (unsigned)((rel * s->recip) >> 32);
}

HA_INLINE void *slab_object(const struct slab *s, unsigned idx)
{
    return (char *)s + s->first_off + (size_t)idx * class_size_tab[s->cls];
}

HA_INLINE bool slab_is_avail(const struct slab *s, unsigned idx)
{
    return (s->avail[idx / 64] >> (idx % 64)) & 1;
}

static void list_push(struct slab **head, struct slab *s)
{
    s->prev = 0;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

static void list_remove(struct slab **head, struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

static struct slab **class_list(struct slab_class *k, enum slab_list l)
{
    return l == SLAB_PARTIAL ? &k->partial : l == SLAB_FULL ? &k->full : &k->empty;
}

static void slab_move(struct slab_class *k, struct slab *s, enum slab_list to)
{
    list_remove(class_list(k, (enum slab_list)s->list), s);
    list_push(class_list(k, to), s);
    s->list = (uint16_t)to;
}

/* A fresh slab with every object available and tagged; class lock held. */
static struct slab *slab_new(struct slab_class *k, unsigned cls)
{
    struct slab *s = page_alloc(HA_CHUNK_PAGES, HA_CHUNK_SIZE, PAGE_KIND_SLAB, 0);
    if (!s)
        return 0;
    size_t size = class_size_tab[cls];
    size_t words = (HA_CHUNK_SIZE / size + 63) / 64;
    size_t first = ha_align_up(sizeof *s + words * sizeof(uint64_t), class_align_tab[cls]);
    size_t nobj = (HA_CHUNK_SIZE - first) / size;
    s->check = slab_check_word(s, cls);
    s->cls = (uint16_t)cls;
    s->nobj = (uint16_t)nobj;
    s->navail = (uint16_t)nobj;
    s->first_off = (uint16_t)first;
    s->words = (uint16_t)words;
    s->recip = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
    for (size_t w = 0; w < words; w++) {
        /* words was sized for a header-less chunk: the last may be empty. */
        size_t left = w * 64 >= nobj ? 0 : nobj - w * 64 < 64 ? nobj - w * 64 : 64;
        s->avail[w] = left == 64 ? ~0ull : (1ull << left) - 1;
    }
    for (unsigned i = 0; i < nobj; i++) {
        uint64_t *o = slab_object(s, i);
#if HA_CHECKED
        ha_memset(o, HA_POISON_FREE, size);
#endif
        *o = free_tag(o);
    }
    s->list = SLAB_PARTIAL;
    list_push(&k->partial, s);
    k->nslabs++;
    k->navail += nobj;
    return s;
}

static void slab_release(struct slab_class *k, struct slab *s)
{
    list_remove(class_list(k, (enum slab_list)s->list), s);
    k->nslabs--;
    k->navail -= s->navail;
    s->check = 0;
    page_free(s, HA_CHUNK_PAGES);
}

/* An object came back to its slab; class lock held. */
static void slab_put(struct slab_class *k, void *p)
{
    struct slab *s = slab_of(p);
    unsigned idx = slab_index(s, p);
    s->avail[idx / 64] |= 1ull << (idx % 64);
    s->navail++;
    k->navail++;
    if (s->navail == 1)
        slab_move(k, s, SLAB_PARTIAL);
    if (s->navail == s->nobj) {
        if (k->empty)
            slab_release(k, s);
        else
            slab_move(k, s, SLAB_EMPTY);
    }
}

/* Move up to n available objects of slab s into bin b; class lock held. */
static void slab_take(struct slab_class *k, struct slab *s, struct bin *b, unsigned n)
{
    for (unsigned w = 0; w < s->words && n > 0 && s->navail > 0; w++) {
        uint64_t bits = s->avail[w], taken = 0;
        while (bits && n > 0) {
            unsigned i = ha_ctz(bits);
            bits &= bits - 1;
            taken |= 1ull << i;
            b->slots[b->count++] = slab_object(s, w * 64 + i);
            n--;
        }
        if (taken) {
            unsigned got = ha_popcount(taken);
            s->avail[w] &= ~taken;
            s->navail = (uint16_t)(s->navail - got);
            k->navail -= got;
        }
    }
    if (s->navail == 0)
        slab_move(k, s, SLAB_FULL);
}

/* ------------------------------------------------------------ statistics */

static void stats_raise_peak(size_t total)
{
    size_t peak = atomic_load_explicit(&bytes_peak, memory_order_relaxed);
    while (total > peak &&
           !atomic_compare_exchange_weak_explicit(&bytes_peak, &peak, total, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static size_t stats_used_total(void)
{
    intptr_t sum = atomic_load_explicit(&shared_cache.stats.used, memory_order_relaxed) + (intptr_t)tlsf_used();
    unsigned n = atomic_load_explicit(&ncaches, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        sum += atomic_load_explicit(&cache_list[i]->stats.used, memory_order_relaxed);
    return sum > 0 ? (size_t)sum : 0;
}

void stats_sample_peak(void)
{
    stats_raise_peak(stats_used_total());
}

HA_INLINE void stats_add(struct cpu_stats *st, intptr_t delta, bool alloc, bool free)
{
    intptr_t used = atomic_load_explicit(&st->used, memory_order_relaxed) + delta;
    atomic_store_explicit(&st->used, used, memory_order_relaxed);
    st->allocs += alloc;
    st->frees += free;
    /* The global peak can only have risen if this CPU's share rose past its
     * own high-water mark; only then is the sum over the CPUs taken.  Exact
     * on one CPU; on several, sampled at each CPU's new highs. */
    if (HA_UNLIKELY(used > st->hwm)) {
        st->hwm = used;
        stats_sample_peak();
    }
}

/* ------------------------------------------------------------ CPU caches */

HA_INLINE unsigned cpu_index(void)
{
    unsigned cpu = ha_platform_cpu_id();
    return cpu < HA_MAX_CPUS ? cpu : cpu % HA_MAX_CPUS;
}

/* Make cpu's cache (first use); the shared cache when out of pages. */
static HA_NOINLINE struct cpu_cache *cache_create(unsigned cpu)
{
    struct cpu_cache *c;
    uintptr_t irq = lock_acquire(&cache_create_lock);
    c = atomic_load_explicit(&caches[cpu], memory_order_relaxed);
    if (!c) {
        /* SYSTEM kind: ha_free_pages can't be handed these pages. */
        c = page_alloc(CACHE_PAGES, HA_PAGE_SIZE, PAGE_KIND_SYSTEM, 0);
        if (c) {
            ha_memset(c, 0, sizeof *c);
            unsigned n = atomic_load_explicit(&ncaches, memory_order_relaxed);
            cache_list[n] = c;
            atomic_store_explicit(&ncaches, n + 1, memory_order_release);
            atomic_store_explicit(&caches[cpu], c, memory_order_release);
        }
    }
    lock_release(&cache_create_lock, irq);
    return c ? c : &shared_cache;
}

/* This CPU's cache. */
HA_INLINE struct cpu_cache *cache_get(void)
{
    unsigned cpu = cpu_index();
    struct cpu_cache *c = atomic_load_explicit(&caches[cpu], memory_order_acquire);
    return HA_LIKELY(c != 0) ? c : cache_create(cpu);
}

void cache_prepare(void)
{
    (void)cache_get();
}

/* Every cache lock then every class lock, in that order (the order the
 * fast paths nest them); with cache_create_lock first, no cache appears
 * meanwhile.  For the walks and the double-free slow path. */
struct all_locks {
    uintptr_t create, shared, cache[HA_MAX_CPUS], cls[SLAB_CLASSES];
    unsigned n;
};

static void lock_everything(struct all_locks *l)
{
    l->create = lock_acquire(&cache_create_lock);
    l->n = atomic_load_explicit(&ncaches, memory_order_relaxed);
    l->shared = lock_acquire(&shared_cache.lock);
    for (unsigned i = 0; i < l->n; i++)
        l->cache[i] = lock_acquire(&cache_list[i]->lock);
    for (unsigned k = 0; k < SLAB_CLASSES; k++)
        l->cls[k] = lock_acquire(&classes[k].lock);
}

static void unlock_everything(struct all_locks *l)
{
    for (unsigned k = SLAB_CLASSES; k-- > 0;)
        lock_release(&classes[k].lock, l->cls[k]);
    for (unsigned i = l->n; i-- > 0;)
        lock_release(&cache_list[i]->lock, l->cache[i]);
    lock_release(&shared_cache.lock, l->shared);
    lock_release(&cache_create_lock, l->create);
}

static struct cpu_cache *cache_at(const struct all_locks *l, unsigned i)
{
    return i < l->n ? cache_list[i] : &shared_cache;
}

/* p (class cls, tagged as free) is free if it sits in some bin or is
 * available in its slab; otherwise its owner stored the tag's value. */
static HA_NOINLINE bool slab_object_is_free(struct slab *s, void *p, unsigned idx, unsigned cls)
{
    struct all_locks l;
    lock_everything(&l);
    bool found = slab_is_avail(s, idx);
    for (unsigned i = 0; i <= l.n && !found; i++) {
        const struct bin *b = &cache_at(&l, i)->bins[cls];
        for (unsigned j = 0; j < b->count && !found; j++)
            found = b->slots[j] == p;
    }
    unlock_everything(&l);
    return found;
}

/* Refill an empty bin with half its capacity; cache lock held. */
static HA_NOINLINE bool bin_refill(struct bin *b, unsigned cls)
{
    struct slab_class *k = &classes[cls];
    unsigned want = bin_cap_tab[cls] / 2;
    uintptr_t irq = lock_acquire(&k->lock);
    while (b->count < want) {
        struct slab *s = k->partial ? k->partial : k->empty;
        if (!s)
            s = slab_new(k, cls);
        else if (s == k->empty)
            slab_move(k, s, SLAB_PARTIAL);
        if (!s)
            break;
        slab_take(k, s, b, want - b->count);
    }
    lock_release(&k->lock, irq);
    return b->count > 0;
}

/* Return the n coldest (bottom) objects of a bin to their slabs; cache
 * lock held. */
static HA_NOINLINE void bin_drain(struct bin *b, unsigned cls, unsigned n)
{
    struct slab_class *k = &classes[cls];
    uintptr_t irq = lock_acquire(&k->lock);
    for (unsigned i = 0; i < n; i++)
        slab_put(k, b->slots[i]);
    lock_release(&k->lock, irq);
    b->count -= n;
    ha_memmove(b->slots, b->slots + n, b->count * sizeof b->slots[0]);
}

#if HA_CHECKED
/* First byte after the tag that lost its poison, or NULL. */
static const unsigned char *poison_damage(const void *p, size_t size)
{
    const unsigned char *b = p;
    for (size_t i = sizeof(uint64_t); i < size; i++)
        if (b[i] != HA_POISON_FREE)
            return b + i;
    return 0;
}
#endif

HA_INLINE void *cache_alloc(unsigned cls, size_t accounted)
{
    struct cpu_cache *c = cache_get();
    uintptr_t irq = lock_acquire(&c->lock);
    struct bin *b = &c->bins[cls];
    if (HA_UNLIKELY(b->count == 0) && !bin_refill(b, cls)) {
        lock_release(&c->lock, irq);
        return 0;
    }
    uint64_t *p = b->slots[--b->count];
    if (HA_UNLIKELY(*p != free_tag(p))) {
        lock_release(&c->lock, irq);
        ha_fault(FAULT_USE_AFTER_FREE, p); /* written after it was freed */
    }
#if HA_CHECKED
    const unsigned char *bad = poison_damage(p, class_size_tab[cls]);
    if (bad) {
        lock_release(&c->lock, irq);
        ha_fault(FAULT_USE_AFTER_FREE, bad);
    }
#endif
    *p = 0;
    c->live[cls]++;
    stats_add(&c->stats, (intptr_t)accounted, true, false);
    lock_release(&c->lock, irq);
    return p;
}

void *slab_alloc(size_t need, size_t align, size_t size, size_t *usable)
{
    int cls = class_for(need, align);
    HA_ASSERT(cls >= 0, (void *)need);
    *usable = class_size_tab[cls];
    return cache_alloc((unsigned)cls, HA_CHECKED ? size : *usable);
}

/* Free a validated object p (index idx of slab s, class cls). */
static void cache_put(struct slab *s, void *p, unsigned idx, unsigned cls, size_t accounted)
{
    uint64_t *tag = p;
    if (HA_UNLIKELY(*tag == free_tag(p)) && slab_object_is_free(s, p, idx, cls))
        ha_fault(FAULT_DOUBLE_FREE, p);
    struct cpu_cache *c = cache_get();
    uintptr_t irq = lock_acquire(&c->lock);
#if HA_CHECKED
    ha_memset(p, HA_POISON_FREE, class_size_tab[cls]);
#endif
    *tag = free_tag(p);
    struct bin *b = &c->bins[cls];
    if (HA_UNLIKELY(b->count >= bin_cap_tab[cls]))
        bin_drain(b, cls, b->count / 2);
    b->slots[b->count++] = p;
    c->live[cls]--;
    stats_add(&c->stats, -(intptr_t)accounted, false, true);
    lock_release(&c->lock, irq);
}

void cache_free(void *p, unsigned cls, size_t accounted)
{
    struct slab *s = slab_of(p);
    cache_put(s, p, slab_index(s, p), cls, accounted);
}

/* The checks both validation paths share; FAULT_NONE and *idx if p is
 * the start of an object of a well-formed slab. */
HA_INLINE enum ha_fault slab_locate(const void *p, struct slab *s, unsigned *idx)
{
    if (HA_UNLIKELY(s->cls >= SLAB_CLASSES || s->check != slab_check_word(s, s->cls)))
        return FAULT_CORRUPT;
    uintptr_t off = (uintptr_t)p - (uintptr_t)s;
    *idx = slab_index(s, p);
    if (HA_UNLIKELY(off < s->first_off || *idx >= s->nobj))
        return FAULT_NOT_ALLOCATED;
    if (HA_UNLIKELY(slab_object(s, *idx) != p))
        return FAULT_INTERIOR;
    return FAULT_NONE;
}

enum ha_fault slab_validate(const void *p, unsigned *cls)
{
    struct slab *s = slab_of(p);
    unsigned idx;
    enum ha_fault f = slab_locate(p, s, &idx);
    if (f != FAULT_NONE)
        return f;
    if (*(const uint64_t *)p == free_tag(p) && slab_object_is_free(s, (void *)p, idx, s->cls))
        return FAULT_DOUBLE_FREE;
    *cls = s->cls;
    return FAULT_NONE;
}

void slab_free(void *p, size_t need, size_t align, bool sized)
{
    struct slab *s = slab_of(p);
    unsigned idx;
    enum ha_fault f = slab_locate(p, s, &idx);
    if (HA_UNLIKELY(f != FAULT_NONE))
        ha_fault(f, p);
    unsigned cls = s->cls;
    if (sized && HA_UNLIKELY(slab_class_for(need, align) != (int)cls)) {
        if ((uintptr_t)p % align != 0 || slab_class_for(need, HA_MIN_ALIGN) == (int)cls)
            ha_fault(FAULT_ALIGN_MISMATCH, p);
        ha_fault(FAULT_SIZE_MISMATCH, p);
    }
    cache_put(s, p, idx, cls, class_size_tab[cls]);
}

/* The stats record for this CPU, locked: the shared one before the
 * caches exist. */
static struct cpu_stats *account_begin(ha_lock_t **lock, uintptr_t *irq)
{
    struct cpu_cache *c = page_is_live() ? cache_get() : &shared_cache;
    *lock = &c->lock;
    *irq = lock_acquire(&c->lock);
    return &c->stats;
}

void cache_account_alloc(size_t usable)
{
    ha_lock_t *l;
    uintptr_t irq;
    struct cpu_stats *st = account_begin(&l, &irq);
    stats_add(st, (intptr_t)usable, true, false);
    lock_release(l, irq);
}

void cache_account_free(size_t usable)
{
    ha_lock_t *l;
    uintptr_t irq;
    struct cpu_stats *st = account_begin(&l, &irq);
    stats_add(st, -(intptr_t)usable, false, true);
    lock_release(l, irq);
}

void cache_account_resize(size_t old_usable, size_t new_usable)
{
    ha_lock_t *l;
    uintptr_t irq;
    struct cpu_stats *st = account_begin(&l, &irq);
    stats_add(st, (intptr_t)new_usable - (intptr_t)old_usable, false, false);
    lock_release(l, irq);
}

/* ---------------------------------------------------------- frame caches */
/*
 * ha_alloc_pages(1) and ha_free_pages(p, 1) go through the same per-CPU
 * cache lock as small objects, to a bin of single pages refilled from and
 * drained to the page allocator half a bin at a time.  A cached frame stays
 * allocated (kind USER) in the page bitmap, so the buddy lists and the
 * bitmap never change on the fast path; what marks it free is its frame tag,
 * a word derived from its address, written when it enters a bin and wiped
 * when it leaves one.  The tag sits in a different cache line of each of 64
 * consecutive pages (line pfn % 64): tags at one offset of every page would
 * all fall in the same few cache sets.  As for small objects, a free
 * that finds the tag in place is a double free only if the frame is in some
 * bin (the slow path looks), and an allocation that finds the tag damaged
 * reports the write after free.
 */

HA_INLINE uint64_t frame_tag(const void *p)
{
    return ((uint64_t)(uintptr_t)p ^ 0xF4A3E5CAC4EDF4A3ull) + ha_secret;
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

HA_INLINE void frame_count_set(struct frame_bin *f, uint32_t n)
{
    __atomic_store_n(&f->count, n, __ATOMIC_RELAXED);
}

HA_INLINE unsigned frame_bucket(uintptr_t a)
{
    return (unsigned)(a >> FRAME_BUCKET_SHIFT) % FRAME_BUCKETS;
}

/* Frame a enters (+1) or leaves (-1) bin f: its bucket's count and bit. */
HA_INLINE void frame_where(struct frame_bin *f, uintptr_t a, int delta)
{
    unsigned b = frame_bucket(a);
    unsigned was = f->in_bucket[b];
    f->in_bucket[b] = (uint8_t)(was + (unsigned)delta);
    if ((was == 0) != (f->in_bucket[b] == 0)) {
        uint64_t w = f->where[b / 64] ^ (1ull << (b % 64));
        __atomic_store_n(&f->where[b / 64], w, __ATOMIC_RELAXED);
    }
}

/* May bin f hold a frame in [lo, hi) (hi > lo)?  No lock: `where` only. */
static bool frame_bin_may_hold(struct frame_bin *f, uintptr_t lo, uintptr_t hi)
{
    uintptr_t first = lo >> FRAME_BUCKET_SHIFT, last = (hi - 1) >> FRAME_BUCKET_SHIFT;
    if (last - first >= FRAME_BUCKETS - 1)
        return true;
    for (uintptr_t k = first; k <= last; k++) {
        unsigned b = (unsigned)(k % FRAME_BUCKETS);
        if ((__atomic_load_n(&f->where[b / 64], __ATOMIC_RELAXED) >> (b % 64)) & 1)
            return true;
    }
    return false;
}

/* Fill an empty bin halfway from the page allocator; cache lock held. */
static HA_NOINLINE bool frame_refill(struct frame_bin *f)
{
    size_t got = page_take_frames(f->slots, FRAME_SLOTS / 2);
    for (size_t i = 0; i < got; i++) {
        uint64_t *p = frame_page(f->slots[i]);
        *frame_tag_at(p) = frame_tag(p);
        frame_where(f, (uintptr_t)p, 1);
    }
    frame_count_set(f, (uint32_t)got);
    return got > 0;
}

/* Give the n coldest (bottom) frames of a bin back; cache lock held.  Their
 * tags are wiped first: no stale tag is left in a page the page allocator
 * hands out again (and a zero page is zero again). */
static HA_NOINLINE void frame_drain(struct frame_bin *f, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        *frame_tag_at(frame_page(f->slots[i])) = 0;
        frame_where(f, f->slots[i], -1);
    }
    page_give_frames(f->slots, n);
    uint32_t left = f->count - n;
    ha_memmove(f->slots, f->slots + n, left * sizeof f->slots[0]);
    frame_count_set(f, left);
}

void *cache_alloc_frame(bool *zeroed)
{
    struct cpu_cache *c = cache_get();
    uintptr_t irq = lock_acquire(&c->lock);
    struct frame_bin *f = &c->frames;
    if (HA_UNLIKELY(f->count == 0) && !frame_refill(f)) {
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
    frame_where(f, (uintptr_t)p, -1);
    *tag = 0;
    *zeroed = slot & 1;
    struct cpu_stats *st = &c->stats;
    st->page_allocs++;
    st->pages++;
    /* As for bytes: the peak can only have risen past what was sampled if
     * this CPU's share passed its high-water mark, or if the page allocator
     * raised the peak since (its own share may have risen meanwhile). */
    unsigned gen = page_peak_generation();
    if (HA_UNLIKELY(st->pages > st->pages_hwm || gen != st->pages_gen)) {
        st->pages_hwm = st->pages;
        st->pages_gen = gen;
        page_sample_peak();
    }
    lock_release(&c->lock, irq);
    return p;
}

/* Is some bin holding a frame in [lo, hi)?  Each cache is looked at under
 * its own lock, one after the other. */
static bool frames_search(uintptr_t lo, uintptr_t hi)
{
    unsigned n = atomic_load_explicit(&ncaches, memory_order_acquire);
    for (unsigned i = 0; i <= n; i++) {
        struct cpu_cache *c = i < n ? cache_list[i] : &shared_cache;
        if (__atomic_load_n(&c->frames.count, __ATOMIC_RELAXED) == 0 ||
            !frame_bin_may_hold(&c->frames, lo, hi))
            continue;
        uintptr_t irq = lock_acquire(&c->lock);
        bool found = false;
        for (uint32_t j = 0; j < c->frames.count && !found; j++) {
            uintptr_t a = (uintptr_t)frame_page(c->frames.slots[j]);
            found = a >= lo && a < hi;
        }
        lock_release(&c->lock, irq);
        if (found)
            return true;
    }
    return false;
}

bool cache_frame_is_cached(const void *p)
{
    uintptr_t a = ha_align_down((uintptr_t)p, HA_PAGE_SIZE);
    return frames_search(a, a + HA_PAGE_SIZE);
}

bool cache_frames_within(const void *p, size_t count)
{
    /* A run that overflows is refused by the page allocator's checks. */
    if (count == 0 || count > UINTPTR_MAX / HA_PAGE_SIZE || cache_frames_held() == 0)
        return false;
    uintptr_t a = (uintptr_t)p, len = count * HA_PAGE_SIZE;
    return frames_search(a, len - 1 > UINTPTR_MAX - a ? UINTPTR_MAX : a + len);
}

enum ha_fault cache_free_frame(void *p)
{
    enum ha_fault f = page_validate_frame((uintptr_t)p);
    if (HA_UNLIKELY(f != FAULT_NONE))
        return f;
    uint64_t *tag = frame_tag_at(p);
    if (HA_UNLIKELY(*tag == frame_tag(p)) && cache_frame_is_cached(p))
        return FAULT_DOUBLE_FREE;
    struct cpu_cache *c = cache_get();
    uintptr_t irq = lock_acquire(&c->lock);
    struct frame_bin *fb = &c->frames;
    if (HA_UNLIKELY(fb->count >= FRAME_SLOTS))
        frame_drain(fb, FRAME_SLOTS / 2);
    *tag = frame_tag(p);
    fb->slots[fb->count] = (uintptr_t)p;
    frame_count_set(fb, fb->count + 1);
    frame_where(fb, (uintptr_t)p, 1);
    c->stats.page_frees++;
    c->stats.pages--;
    lock_release(&c->lock, irq);
    return FAULT_NONE;
}

size_t cache_frames_held(void)
{
    size_t sum = __atomic_load_n(&shared_cache.frames.count, __ATOMIC_RELAXED);
    unsigned n = atomic_load_explicit(&ncaches, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        sum += __atomic_load_n(&cache_list[i]->frames.count, __ATOMIC_RELAXED);
    return sum;
}

void cache_frames_mark(bool free)
{
    unsigned n = atomic_load_explicit(&ncaches, memory_order_relaxed);
    for (unsigned i = 0; i <= n; i++) {
        const struct frame_bin *f = i < n ? &cache_list[i]->frames : &shared_cache.frames;
        for (uint32_t j = 0; j < f->count; j++)
            page_frame_mark((uintptr_t)frame_page(f->slots[j]), free);
    }
}

size_t cache_flush_frames(void)
{
    size_t total = 0;
    unsigned n = atomic_load_explicit(&ncaches, memory_order_acquire);
    for (unsigned i = 0; i <= n; i++) {
        struct cpu_cache *c = i < n ? cache_list[i] : &shared_cache;
        uintptr_t irq = lock_acquire(&c->lock);
        total += c->frames.count;
        if (c->frames.count)
            frame_drain(&c->frames, c->frames.count);
        lock_release(&c->lock, irq);
    }
    return total;
}

/* ------------------------------------------------------------ maintenance */

void slab_trim(void)
{
    struct all_locks l;
    lock_everything(&l);
    for (unsigned i = 0; i <= l.n; i++) {
        struct cpu_cache *c = cache_at(&l, i);
        for (unsigned cls = 0; cls < SLAB_CLASSES; cls++) {
            /* bin_drain takes the class lock: put the objects back here. */
            struct bin *b = &c->bins[cls];
            for (unsigned j = 0; j < b->count; j++)
                slab_put(&classes[cls], b->slots[j]);
            b->count = 0;
        }
        if (c->frames.count)
            frame_drain(&c->frames, c->frames.count);
    }
    for (unsigned cls = 0; cls < SLAB_CLASSES; cls++)
        if (classes[cls].empty)
            slab_release(&classes[cls], classes[cls].empty);
    unlock_everything(&l);
}

/* Bytes of a slab of class cls that no object can use: header, padding,
 * and the tail too short for an object. */
static size_t slab_overhead(unsigned cls)
{
    size_t size = class_size_tab[cls];
    size_t words = (HA_CHUNK_SIZE / size + 63) / 64;
    size_t first = ha_align_up(sizeof(struct slab) + words * sizeof(uint64_t), class_align_tab[cls]);
    return HA_CHUNK_SIZE - (HA_CHUNK_SIZE - first) / size * size;
}

void slab_stats(struct ha_stats *out, bool with_pages)
{
    struct all_locks l;
    lock_everything(&l);
    if (with_pages) {
        /* Exact now that nothing moves: pages_peak >= pages_used. */
        page_sample_peak();
        page_stats(out, true);
    }
    intptr_t used = 0;
    size_t free_bytes = 0, meta = l.n * CACHE_PAGES * HA_PAGE_SIZE, frames = 0;
    for (unsigned i = 0; i <= l.n; i++) {
        struct cpu_cache *c = cache_at(&l, i);
        used += atomic_load_explicit(&c->stats.used, memory_order_relaxed);
        out->allocs += c->stats.allocs;
        out->frees += c->stats.frees;
        out->page_allocs += c->stats.page_allocs;
        out->page_frees += c->stats.page_frees;
        for (unsigned cls = 0; cls < SLAB_CLASSES; cls++)
            free_bytes += (size_t)c->bins[cls].count * class_size_tab[cls];
        frames += c->frames.count;
    }
    /* The page allocator counts cached frames as used; to callers they are
     * free. */
    out->pages_used -= frames;
    out->pages_free += frames;
    free_bytes += frames * HA_PAGE_SIZE;
    for (unsigned cls = 0; cls < SLAB_CLASSES; cls++) {
        free_bytes += classes[cls].navail * class_size_tab[cls];
        meta += classes[cls].nslabs * slab_overhead(cls);
    }
    unlock_everything(&l);
    /* The CPUs' sum may be negative (resizes of TLSF blocks are counted
     * here, their allocation by TLSF): added to the rest, which ran first. */
    out->bytes_used = (size_t)((intptr_t)out->bytes_used + used);
    /* A sum taken here may exceed what the CPUs sampled: keep it, so the
     * peak reported never falls below a bytes_used once reported. */
    stats_raise_peak(out->bytes_used);
    out->bytes_peak = atomic_load_explicit(&bytes_peak, memory_order_relaxed);
    out->bytes_free += free_bytes;
    out->bytes_meta += meta;
}

/* Check one class's slabs on one list; class lock held.  Counts objects. */
static int slab_check_list(struct slab_class *k, unsigned cls, enum slab_list l, size_t *nslabs,
                           size_t *navail, size_t *nobj)
{
    for (struct slab *s = *class_list(k, l); s; s = s->next) {
        if (s->check != slab_check_word(s, cls) || s->cls != cls || s->list != l)
            return check_fail("slab: bad header or slab on the wrong list", s);
        if (page_kind_of((uintptr_t)s) != PAGE_KIND_SLAB ||
            page_kind_of((uintptr_t)s + HA_CHUNK_SIZE - 1) != PAGE_KIND_SLAB)
            return check_fail("slab: chunk pages not of kind SLAB", s);
        if (s->next && s->next->prev != s)
            return check_fail("slab: broken list links", s);
        unsigned avail = 0;
        for (unsigned w = 0; w < s->words; w++)
            avail += ha_popcount(s->avail[w]);
        if (avail != s->navail)
            return check_fail("slab: available count disagrees with the bitmap", s);
        bool list_ok = l == SLAB_FULL ? s->navail == 0
                       : l == SLAB_EMPTY ? s->navail == s->nobj
                                         : s->navail > 0 && s->navail < s->nobj;
        if (!list_ok)
            return check_fail("slab: slab on the wrong list for its count", s);
        for (unsigned i = 0; i < s->nobj; i++) {
            if (!slab_is_avail(s, i))
                continue;
            const uint64_t *o = slab_object(s, i);
            if (*o != free_tag(o))
                return check_fail("slab: free object written (use after free)", o);
#if HA_CHECKED
            const unsigned char *bad = poison_damage(o, class_size_tab[cls]);
            if (bad)
                return check_fail("slab: free object written (use after free)", bad);
#endif
        }
        ++*nslabs;
        *navail += s->navail;
        *nobj += s->nobj;
    }
    return 0;
}

/* One object found in a bin: an object start of a slab of its class,
 * tagged free, not available in its slab nor seen before in a bin (its
 * avail bit is set as a mark while checking, counted in *marked).  All
 * locks held. */
static int cache_check_object(void *p, unsigned cls, size_t *marked)
{
    struct slab *s = slab_of(p);
    if (page_kind_of((uintptr_t)p) != PAGE_KIND_SLAB || s->check != slab_check_word(s, cls) || s->cls != cls)
        return check_fail("slab: cached pointer not in a slab of its class", p);
    unsigned idx = slab_index(s, p);
    if (idx >= s->nobj || slab_object(s, idx) != p)
        return check_fail("slab: cached pointer not an object start", p);
    if (slab_is_avail(s, idx))
        return check_fail("slab: object cached twice or also available", p);
    if (*(const uint64_t *)p != free_tag(p))
        return check_fail("slab: cached object written (use after free)", p);
#if HA_CHECKED
    const unsigned char *bad = poison_damage(p, class_size_tab[cls]);
    if (bad)
        return check_fail("slab: cached object written (use after free)", bad);
#endif
    s->avail[idx / 64] |= 1ull << (idx % 64);
    ++*marked;
    return 0;
}

/* Every cached frame: an allocated USER page holding its frame tag, in one
 * bin only (its tag is inverted as a mark while checking).  All locks held. */
static int frames_check(const struct all_locks *l)
{
    int r = 0;
    size_t marked = 0;
    for (unsigned i = 0; i <= l->n && r == 0; i++) {
        const struct frame_bin *f = &cache_at(l, i)->frames;
        if (f->count > FRAME_SLOTS) {
            r = check_fail("slab: frame bin over capacity", f);
            break;
        }
        uint8_t in_bucket[FRAME_BUCKETS] = { 0 };
        for (uint32_t j = 0; j < f->count; j++)
            in_bucket[frame_bucket(f->slots[j])]++;
        for (unsigned b = 0; b < FRAME_BUCKETS && r == 0; b++)
            if (in_bucket[b] != f->in_bucket[b] ||
                (in_bucket[b] != 0) != ((f->where[b / 64] >> (b % 64)) & 1))
                r = check_fail("slab: frame bin's bucket summary wrong", f);
        for (uint32_t j = 0; j < f->count && r == 0; j++) {
            uint64_t *p = frame_page(f->slots[j]), *tag = frame_tag_at(p);
            if (page_validate_frame((uintptr_t)p) != FAULT_NONE)
                r = check_fail("slab: cached frame not an allocated page", p);
            else if (*tag == ~frame_tag(p))
                r = check_fail("slab: frame cached twice", p);
            else if (*tag != frame_tag(p))
                r = check_fail("slab: cached frame written (use after free)", tag);
            else {
                *tag = ~frame_tag(p);
                marked++;
            }
        }
    }
    for (unsigned i = 0; i <= l->n && marked > 0; i++) {
        const struct frame_bin *f = &cache_at(l, i)->frames;
        for (uint32_t j = 0; j < f->count && marked > 0; j++, marked--) {
            uint64_t *p = frame_page(f->slots[j]);
            *frame_tag_at(p) = frame_tag(p);
        }
    }
    return r;
}

int slab_check(void)
{
    struct all_locks l;
    lock_everything(&l);
    int r = 0;
    size_t cached[SLAB_CLASSES] = { 0 }, marked = 0;
    intptr_t live[SLAB_CLASSES] = { 0 };
    for (unsigned i = 0; i <= l.n && r == 0; i++) {
        struct cpu_cache *c = cache_at(&l, i);
        for (unsigned cls = 0; cls < SLAB_CLASSES && r == 0; cls++) {
            struct bin *b = &c->bins[cls];
            live[cls] += c->live[cls];
            if (b->count > bin_cap_tab[cls]) {
                r = check_fail("slab: bin over capacity", b);
                break;
            }
            cached[cls] += b->count;
            for (unsigned j = 0; j < b->count && r == 0; j++)
                r = cache_check_object(b->slots[j], cls, &marked);
        }
    }
    /* Undo the marks, in the order they were made. */
    for (unsigned i = 0; i <= l.n && marked > 0; i++) {
        struct cpu_cache *c = cache_at(&l, i);
        for (unsigned cls = 0; cls < SLAB_CLASSES && marked > 0; cls++) {
            struct bin *b = &c->bins[cls];
            for (unsigned j = 0; j < b->count && marked > 0; j++, marked--) {
                struct slab *s = slab_of(b->slots[j]);
                unsigned idx = slab_index(s, b->slots[j]);
                s->avail[idx / 64] &= ~(1ull << (idx % 64));
            }
        }
    }
    if (r == 0)
        r = frames_check(&l);
    for (unsigned cls = 0; cls < SLAB_CLASSES && r == 0; cls++) {
        struct slab_class *k = &classes[cls];
        size_t nslabs = 0, navail = 0, nobj = 0;
        for (int li = SLAB_PARTIAL; li <= SLAB_EMPTY && r == 0; li++)
            r = slab_check_list(k, cls, (enum slab_list)li, &nslabs, &navail, &nobj);
        if (r == 0 && (k->empty && k->empty->next))
            r = check_fail("slab: more than one kept empty slab", k->empty);
        if (r == 0 && (nslabs != k->nslabs || navail != k->navail))
            r = check_fail("slab: class counters disagree with its slabs", k);
        if (r == 0 && (intptr_t)(navail + cached[cls]) + live[cls] != (intptr_t)nobj)
            r = check_fail("slab: objects neither live, available nor cached (lost)", k);
    }
    unlock_everything(&l);
    return r;
}

void slab_fork_lock(bool take)
{
    static struct all_locks held;
    if (take)
        lock_everything(&held);
    else
        unlock_everything(&held);
}
