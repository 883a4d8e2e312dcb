/*
 * Small objects: 20 size classes up to HA_SMALL_MAX, in 64 KiB slab chunks,
 * behind per-CPU caches.
 *
 *   ha_alloc -> cache_alloc: lock this CPU's cache (uncontended: only the
 *   CPU itself and the rare ha_trim/ha_check take it), pop a pointer from
 *   the class's bin, set the object's bit in its slab's alloc bitmap.
 *   ha_free -> cache_free: clear the bit (an already clear bit is a double
 *   free), push the pointer.  A bin that runs empty is refilled, and one
 *   that runs full is drained, half a bin at a time, under the class lock.
 *
 * Why the cache lock: a CPU id may be folded (more threads than
 * HA_MAX_CPUS on a host) or read just before a migration; the lock keeps
 * the cache correct whatever the platform does, and ha_trim can drain a
 * remote CPU's cache.  Interrupts are off while it is held.
 *
 * Why bitmaps and not free lists threaded through the objects: the state of
 * every object is known exactly (allocated, in a cache, available in its
 * slab), so a double free is caught even while the object sits in a cache,
 * an interior pointer is caught by arithmetic, and a use-after-free write
 * cannot corrupt allocator metadata.
 */
#include "ha_internal.h"

#define SLAB_CLASSES 20
#define BIN_SLOTS 64
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
 *  - alloc and avail bitmaps are disjoint; popcount(avail) == navail;
 *  - an object is in exactly one of: allocated (alloc bit), available (avail
 *    bit), or in one CPU's bin (neither bit);
 *  - list == SLAB_FULL iff navail == 0; SLAB_EMPTY holds navail == nobj and
 *    is the class's one kept empty slab; SLAB_PARTIAL otherwise. */
struct slab {
    uint64_t check;
    uint16_t cls;
    uint16_t list;
    uint16_t nobj;
    uint16_t navail;
    uint16_t first_off; /* offset of object 0: a multiple of the class alignment */
    uint16_t words;     /* 64-bit words in each bitmap */
    uint32_t recip;     /* ceil(2^32 / size): offset -> index without a division */
    struct slab *next, *prev;
    _Atomic uint64_t bits[]; /* alloc bitmap [words], then avail bitmap [words] */
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
};

struct bin {
    uint32_t count;
    void *slots[BIN_SLOTS];
};

struct cpu_cache {
    ha_lock_t lock;
    struct cpu_stats stats;
    struct bin bins[SLAB_CLASSES];
};

#define CACHE_PAGES ((sizeof(struct cpu_cache) + HA_PAGE_SIZE - 1) / HA_PAGE_SIZE)

static struct cpu_cache *_Atomic caches[HA_MAX_CPUS];
static ha_lock_t cache_create_lock = HA_LOCK_INIT;

/* Accounting before ha_final_init (no caches yet), and for a CPU whose cache
 * could not be made. */
static struct {
    ha_lock_t lock;
    struct cpu_stats stats;
} boot;

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

int slab_class_for(size_t size, size_t align)
{
    if (HA_UNLIKELY(size > HA_SMALL_MAX || align > HA_SMALL_MAX))
        return -1;
    int c = class_by_granule[(size + 15) / 16];
    while (HA_UNLIKELY(class_align_tab[c] < align)) /* align > 16: ends at 1024 */
        c++;
    return c;
}

size_t slab_class_size(unsigned cls)
{
    return class_size_tab[cls];
}

/* ----------------------------------------------------------------- slabs */

static uint64_t slab_check_word(const struct slab *s, unsigned cls)
{
    return (SLAB_MAGIC ^ (uint64_t)(uintptr_t)s) * 0x9E3779B97F4A7C15ull + cls;
}

static struct slab *slab_of(const void *p)
{
    return (struct slab *)ha_align_down((uintptr_t)p, HA_CHUNK_SIZE);
}

static _Atomic uint64_t *slab_alloc_bits(struct slab *s) { return s->bits; }
static _Atomic uint64_t *slab_avail_bits(struct slab *s) { return s->bits + s->words; }

static unsigned slab_index(const struct slab *s, const void *p)
{
    uint64_t rel = (uint64_t)((uintptr_t)p - (uintptr_t)s - s->first_off);
    return (unsigned)((rel * s->recip) >> 32);
}

static void *slab_object(const struct slab *s, unsigned idx)
{
    return (char *)s + s->first_off + (size_t)idx * class_size_tab[s->cls];
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

/* A fresh slab with every object available; class lock held. */
static struct slab *slab_new(struct slab_class *k, unsigned cls)
{
    bool zeroed;
    struct slab *s = page_alloc(HA_CHUNK_PAGES, HA_CHUNK_SIZE, PAGE_KIND_SLAB, &zeroed);
    if (!s)
        return 0;
    size_t size = class_size_tab[cls];
    size_t words = (HA_CHUNK_SIZE / size + 63) / 64;
    size_t first = ha_align_up(sizeof *s + 2 * words * sizeof(uint64_t), class_align_tab[cls]);
    size_t nobj = (HA_CHUNK_SIZE - first) / size;
    s->check = slab_check_word(s, cls);
    s->cls = (uint16_t)cls;
    s->nobj = (uint16_t)nobj;
    s->navail = (uint16_t)nobj;
    s->first_off = (uint16_t)first;
    s->words = (uint16_t)words;
    s->recip = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
    _Atomic uint64_t *alloc = slab_alloc_bits(s), *avail = slab_avail_bits(s);
    for (size_t w = 0; w < words; w++) {
        /* words was sized for a header-less chunk: the last may be empty. */
        size_t left = w * 64 >= nobj ? 0 : nobj - w * 64 < 64 ? nobj - w * 64 : 64;
        atomic_store_explicit(&alloc[w], 0, memory_order_relaxed);
        atomic_store_explicit(&avail[w], left == 64 ? ~0ull : (1ull << left) - 1, memory_order_relaxed);
    }
#if HA_CHECKED
    ha_memset((char *)s + first, HA_POISON_FREE, nobj * size);
#endif
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

/* An object came back to its slab (avail bit set); class lock held. */
static void slab_put(struct slab_class *k, void *p)
{
    struct slab *s = slab_of(p);
    unsigned idx = slab_index(s, p);
    atomic_fetch_or_explicit(&slab_avail_bits(s)[idx / 64], 1ull << (idx % 64), memory_order_relaxed);
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
    _Atomic uint64_t *avail = slab_avail_bits(s);
    for (unsigned w = 0; w < s->words && n > 0 && s->navail > 0; w++) {
        uint64_t bits = atomic_load_explicit(&avail[w], memory_order_relaxed);
        uint64_t taken = 0;
        while (bits && n > 0) {
            unsigned i = ha_ctz(bits);
            bits &= bits - 1;
            taken |= 1ull << i;
            b->slots[b->count++] = slab_object(s, w * 64 + i);
            n--;
        }
        if (taken) {
            unsigned got = ha_popcount(taken);
            atomic_fetch_and_explicit(&avail[w], ~taken, memory_order_relaxed);
            s->navail = (uint16_t)(s->navail - got);
            k->navail -= got;
        }
    }
    if (s->navail == 0)
        slab_move(k, s, SLAB_FULL);
}

enum ha_fault slab_validate(const void *p, unsigned *cls)
{
    struct slab *s = slab_of(p);
    if (s->cls >= SLAB_CLASSES || s->check != slab_check_word(s, s->cls))
        return FAULT_CORRUPT;
    uintptr_t off = (uintptr_t)p - (uintptr_t)s;
    if (off < s->first_off)
        return FAULT_NOT_ALLOCATED;
    unsigned idx = slab_index(s, p);
    if (idx >= s->nobj)
        return FAULT_NOT_ALLOCATED;
    if (slab_object(s, idx) != p)
        return FAULT_INTERIOR;
    uint64_t bit = 1ull << (idx % 64);
    if (!(atomic_load_explicit(&slab_alloc_bits(s)[idx / 64], memory_order_relaxed) & bit))
        return FAULT_DOUBLE_FREE;
    *cls = s->cls;
    return FAULT_NONE;
}

/* ------------------------------------------------------------ statistics */

static HA_NOINLINE void stats_note_peak(void);

HA_INLINE void stats_add(struct cpu_stats *st, intptr_t delta, bool alloc, bool free)
{
    intptr_t used = atomic_load_explicit(&st->used, memory_order_relaxed) + delta;
    atomic_store_explicit(&st->used, used, memory_order_relaxed);
    st->allocs += alloc;
    st->frees += free;
    /* The global peak can only have risen if this CPU's share rose past its
     * own high-water mark; only then is the (remote-reading) sum taken.
     * Exact on one CPU; on several, sampled at each CPU's new highs. */
    if (HA_UNLIKELY(used > st->hwm)) {
        st->hwm = used;
        stats_note_peak();
    }
}

static size_t stats_used_total(void)
{
    intptr_t sum = atomic_load_explicit(&boot.stats.used, memory_order_relaxed);
    for (unsigned c = 0; c < HA_MAX_CPUS; c++) {
        struct cpu_cache *cc = atomic_load_explicit(&caches[c], memory_order_acquire);
        if (cc)
            sum += atomic_load_explicit(&cc->stats.used, memory_order_relaxed);
    }
    return sum > 0 ? (size_t)sum : 0;
}

static void stats_raise_peak(size_t total)
{
    size_t peak = atomic_load_explicit(&bytes_peak, memory_order_relaxed);
    while (total > peak &&
           !atomic_compare_exchange_weak_explicit(&bytes_peak, &peak, total, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static HA_NOINLINE void stats_note_peak(void)
{
    stats_raise_peak(stats_used_total());
}

/* ------------------------------------------------------------ CPU caches */

HA_INLINE unsigned cpu_index(void)
{
    unsigned cpu = ha_platform_cpu_id();
    return cpu < HA_MAX_CPUS ? cpu : cpu % HA_MAX_CPUS;
}

/* Make cpu's cache (first use); NULL only when out of pages. */
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
            atomic_store_explicit(&caches[cpu], c, memory_order_release);
        }
    }
    lock_release(&cache_create_lock, irq);
    return c;
}

/* This CPU's cache. */
HA_INLINE struct cpu_cache *cache_get(unsigned cpu)
{
    struct cpu_cache *c = atomic_load_explicit(&caches[cpu], memory_order_acquire);
    return HA_LIKELY(c != 0) ? c : cache_create(cpu);
}

void cache_prepare(void)
{
    (void)cache_get(cpu_index());
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
static void poison_verify(const void *p, size_t size)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < size; i++)
        if (b[i] != HA_POISON_FREE)
            ha_fault(FAULT_USE_AFTER_FREE, b + i);
}
#endif

void *cache_alloc(unsigned cls, size_t accounted)
{
    struct cpu_cache *c = cache_get(cpu_index());
    if (HA_UNLIKELY(!c))
        return 0;
    uintptr_t irq = lock_acquire(&c->lock);
    struct bin *b = &c->bins[cls];
    if (HA_UNLIKELY(b->count == 0) && !bin_refill(b, cls)) {
        lock_release(&c->lock, irq);
        return 0;
    }
    void *p = b->slots[--b->count];
    struct slab *s = slab_of(p);
    unsigned idx = slab_index(s, p);
    uint64_t old = atomic_fetch_or_explicit(&slab_alloc_bits(s)[idx / 64], 1ull << (idx % 64),
                                            memory_order_relaxed);
    if (HA_UNLIKELY(old & (1ull << (idx % 64)))) {
        lock_release(&c->lock, irq);
        ha_fault(FAULT_CORRUPT, p); /* a cached object was live: damaged bin */
    }
#if HA_CHECKED
    poison_verify(p, class_size_tab[cls]);
#endif
    stats_add(&c->stats, (intptr_t)accounted, true, false);
    lock_release(&c->lock, irq);
    return p;
}

/* Give object idx of slab s (class cls) back through this CPU's cache. */
static void cache_put(struct slab *s, void *p, unsigned idx, unsigned cls, size_t accounted)
{
    _Atomic uint64_t *word = &slab_alloc_bits(s)[idx / 64];
    uint64_t bit = 1ull << (idx % 64);
    struct cpu_cache *c = cache_get(cpu_index());
    if (HA_UNLIKELY(!c)) {
        /* No cache for this CPU (out of pages): straight to the slab. */
        struct slab_class *k = &classes[cls];
        uintptr_t irq = lock_acquire(&k->lock);
        if (!(atomic_fetch_and_explicit(word, ~bit, memory_order_relaxed) & bit)) {
            lock_release(&k->lock, irq);
            ha_fault(FAULT_DOUBLE_FREE, p);
        }
        slab_put(k, p);
        lock_release(&k->lock, irq);
        cache_account_free(accounted);
        return;
    }
    uintptr_t irq = lock_acquire(&c->lock);
    /* Clearing a clear bit changes nothing: a double free that raced past
     * validation is still caught here, before any change. */
    if (HA_UNLIKELY(!(atomic_fetch_and_explicit(word, ~bit, memory_order_relaxed) & bit))) {
        lock_release(&c->lock, irq);
        ha_fault(FAULT_DOUBLE_FREE, p);
    }
#if HA_CHECKED
    ha_memset(p, HA_POISON_FREE, class_size_tab[cls]);
#endif
    struct bin *b = &c->bins[cls];
    if (HA_UNLIKELY(b->count >= bin_cap_tab[cls]))
        bin_drain(b, cls, b->count / 2);
    b->slots[b->count++] = p;
    stats_add(&c->stats, -(intptr_t)accounted, false, true);
    lock_release(&c->lock, irq);
}

void cache_free(void *p, unsigned cls, size_t accounted)
{
    struct slab *s = slab_of(p);
    cache_put(s, p, slab_index(s, p), cls, accounted);
}

void slab_free(void *p, size_t need, size_t align, bool sized)
{
    struct slab *s = slab_of(p);
    unsigned cls = s->cls;
    if (HA_UNLIKELY(cls >= SLAB_CLASSES || s->check != slab_check_word(s, cls)))
        ha_fault(FAULT_CORRUPT, p);
    uintptr_t off = (uintptr_t)p - (uintptr_t)s;
    unsigned idx = slab_index(s, p);
    if (HA_UNLIKELY(off < s->first_off || idx >= s->nobj))
        ha_fault(FAULT_NOT_ALLOCATED, p);
    if (HA_UNLIKELY(slab_object(s, idx) != p))
        ha_fault(FAULT_INTERIOR, p);
    if (sized && HA_UNLIKELY(slab_class_for(need, align) != (int)cls)) {
        if ((uintptr_t)p % align != 0 || slab_class_for(need, HA_MIN_ALIGN) == (int)cls)
            ha_fault(FAULT_ALIGN_MISMATCH, p);
        ha_fault(FAULT_SIZE_MISMATCH, p);
    }
    cache_put(s, p, idx, cls, class_size_tab[cls]);
}

/* The stats record for this CPU, locked; boot's before the caches exist. */
static struct cpu_stats *account_begin(ha_lock_t **lock, uintptr_t *irq)
{
    struct cpu_cache *c = page_is_live() ? cache_get(cpu_index()) : 0;
    if (c) {
        *lock = &c->lock;
        *irq = lock_acquire(&c->lock);
        return &c->stats;
    }
    *lock = &boot.lock;
    *irq = lock_acquire(&boot.lock);
    return &boot.stats;
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

/* ------------------------------------------------------------ maintenance */

void slab_trim(void)
{
    for (unsigned cpu = 0; cpu < HA_MAX_CPUS; cpu++) {
        struct cpu_cache *c = atomic_load_explicit(&caches[cpu], memory_order_acquire);
        if (!c)
            continue;
        uintptr_t irq = lock_acquire(&c->lock);
        for (unsigned cls = 0; cls < SLAB_CLASSES; cls++)
            if (c->bins[cls].count)
                bin_drain(&c->bins[cls], cls, c->bins[cls].count);
        lock_release(&c->lock, irq);
    }
    for (unsigned cls = 0; cls < SLAB_CLASSES; cls++) {
        struct slab_class *k = &classes[cls];
        uintptr_t irq = lock_acquire(&k->lock);
        if (k->empty)
            slab_release(k, k->empty);
        lock_release(&k->lock, irq);
    }
}

void slab_stats(struct ha_stats *out)
{
    uint64_t allocs = 0, frees = 0;
    size_t cached_bytes = 0, cache_pages = 0;
    intptr_t used = atomic_load_explicit(&boot.stats.used, memory_order_relaxed);
    uintptr_t boot_irq = lock_acquire(&boot.lock);
    allocs += boot.stats.allocs;
    frees += boot.stats.frees;
    lock_release(&boot.lock, boot_irq);
    for (unsigned cpu = 0; cpu < HA_MAX_CPUS; cpu++) {
        struct cpu_cache *c = atomic_load_explicit(&caches[cpu], memory_order_acquire);
        if (!c)
            continue;
        uintptr_t irq = lock_acquire(&c->lock);
        used += atomic_load_explicit(&c->stats.used, memory_order_relaxed);
        allocs += c->stats.allocs;
        frees += c->stats.frees;
        for (unsigned cls = 0; cls < SLAB_CLASSES; cls++)
            cached_bytes += (size_t)c->bins[cls].count * class_size_tab[cls];
        lock_release(&c->lock, irq);
        cache_pages += CACHE_PAGES;
    }
    size_t avail_bytes = 0, meta = 0;
    for (unsigned cls = 0; cls < SLAB_CLASSES; cls++) {
        struct slab_class *k = &classes[cls];
        uintptr_t irq = lock_acquire(&k->lock);
        avail_bytes += k->navail * class_size_tab[cls];
        if (k->nslabs) {
            size_t size = class_size_tab[cls];
            size_t words = (HA_CHUNK_SIZE / size + 63) / 64;
            size_t first = ha_align_up(sizeof(struct slab) + 2 * words * 8, class_align_tab[cls]);
            size_t nobj = (HA_CHUNK_SIZE - first) / size;
            /* Header and the tail too short for an object. */
            meta += k->nslabs * (HA_CHUNK_SIZE - nobj * size);
        }
        lock_release(&k->lock, irq);
    }
    out->bytes_used += used > 0 ? (size_t)used : 0;
    /* A sum taken here may exceed what the CPUs sampled: keep it, so the
     * peak reported never falls below a bytes_used once reported. */
    stats_raise_peak(out->bytes_used);
    out->bytes_peak = atomic_load_explicit(&bytes_peak, memory_order_relaxed);
    out->allocs += allocs;
    out->frees += frees;
    out->bytes_free += cached_bytes + avail_bytes;
    out->bytes_meta += meta + cache_pages * HA_PAGE_SIZE;
}

/* Check one class's slabs on one list; class lock held.  Counts objects. */
static int slab_check_list(struct slab_class *k, unsigned cls, enum slab_list l, size_t *nslabs,
                           size_t *navail, size_t *nalloc, size_t *nobj)
{
    for (struct slab *s = *class_list(k, l); s; s = s->next) {
        if (s->check != slab_check_word(s, cls) || s->cls != cls || s->list != l)
            return check_fail("slab: bad header or slab on the wrong list", s);
        if (page_kind_of((uintptr_t)s) != PAGE_KIND_SLAB ||
            page_kind_of((uintptr_t)s + HA_CHUNK_SIZE - 1) != PAGE_KIND_SLAB)
            return check_fail("slab: chunk pages not of kind SLAB", s);
        if (s->next && s->next->prev != s)
            return check_fail("slab: broken list links", s);
        unsigned avail = 0, alloc = 0;
        for (unsigned w = 0; w < s->words; w++) {
            uint64_t a = atomic_load_explicit(&slab_alloc_bits(s)[w], memory_order_relaxed);
            uint64_t v = atomic_load_explicit(&slab_avail_bits(s)[w], memory_order_relaxed);
            if (a & v)
                return check_fail("slab: object both allocated and available", s);
            alloc += ha_popcount(a);
            avail += ha_popcount(v);
        }
        if (avail != s->navail)
            return check_fail("slab: available count disagrees with the bitmap", s);
        bool list_ok = l == SLAB_FULL ? s->navail == 0
                       : l == SLAB_EMPTY ? s->navail == s->nobj
                                         : s->navail > 0 && s->navail < s->nobj;
        if (!list_ok)
            return check_fail("slab: slab on the wrong list for its count", s);
#if HA_CHECKED
        for (unsigned i = 0; i < s->nobj; i++)
            if (atomic_load_explicit(&slab_avail_bits(s)[i / 64], memory_order_relaxed) & (1ull << (i % 64))) {
                const unsigned char *o = slab_object(s, i);
                for (size_t j = 0; j < class_size_tab[cls]; j++)
                    if (o[j] != HA_POISON_FREE)
                        return check_fail("slab: freed object written (use after free)", o + j);
            }
#endif
        ++*nslabs;
        *navail += s->navail;
        *nalloc += alloc;
        *nobj += s->nobj;
    }
    return 0;
}

/* One object found in a bin: valid, and neither allocated nor available
 * (nor seen before in a bin: its avail bit is set as a mark, counted in
 * *marked).  Locks: all cache and class locks held. */
static int cache_check_object(void *p, unsigned cls, size_t *marked)
{
    struct slab *s = slab_of(p);
    if (page_kind_of((uintptr_t)p) != PAGE_KIND_SLAB || s->check != slab_check_word(s, cls) || s->cls != cls)
        return check_fail("slab: cached pointer not in a slab of its class", p);
    unsigned idx = slab_index(s, p);
    if (idx >= s->nobj || slab_object(s, idx) != p)
        return check_fail("slab: cached pointer not an object start", p);
    uint64_t bit = 1ull << (idx % 64);
    uint64_t a = atomic_load_explicit(&slab_alloc_bits(s)[idx / 64], memory_order_relaxed);
    uint64_t v = atomic_load_explicit(&slab_avail_bits(s)[idx / 64], memory_order_relaxed);
    if (a & bit)
        return check_fail("slab: cached object is also allocated", p);
    if (v & bit)
        return check_fail("slab: object cached twice or also available", p);
#if HA_CHECKED
    const unsigned char *o = p;
    for (size_t j = 0; j < class_size_tab[cls]; j++)
        if (o[j] != HA_POISON_FREE)
            return check_fail("slab: freed object written (use after free)", o + j);
#endif
    atomic_fetch_or_explicit(&slab_avail_bits(s)[idx / 64], bit, memory_order_relaxed);
    ++*marked;
    return 0;
}

int slab_check(void)
{
    /* Lock order: every cache lock (by CPU), then every class lock. */
    uintptr_t cache_irq[HA_MAX_CPUS], class_irq[SLAB_CLASSES];
    struct cpu_cache *c[HA_MAX_CPUS];
    for (unsigned cpu = 0; cpu < HA_MAX_CPUS; cpu++) {
        c[cpu] = atomic_load_explicit(&caches[cpu], memory_order_acquire);
        if (c[cpu])
            cache_irq[cpu] = lock_acquire(&c[cpu]->lock);
    }
    for (unsigned cls = 0; cls < SLAB_CLASSES; cls++)
        class_irq[cls] = lock_acquire(&classes[cls].lock);

    int r = 0;
    size_t cached[SLAB_CLASSES] = { 0 };
    size_t marked = 0;
    /* Every cached object: of its bin's class, neither allocated nor
     * available.  Each is marked available while checking, so an object
     * cached twice is seen; the marks are undone below, in the same order. */
    for (unsigned cpu = 0; cpu < HA_MAX_CPUS && r == 0; cpu++) {
        if (!c[cpu])
            continue;
        for (unsigned cls = 0; cls < SLAB_CLASSES && r == 0; cls++) {
            struct bin *b = &c[cpu]->bins[cls];
            if (b->count > bin_cap_tab[cls]) {
                r = check_fail("slab: bin over capacity", b);
                break;
            }
            cached[cls] += b->count;
            for (unsigned i = 0; i < b->count && r == 0; i++)
                r = cache_check_object(b->slots[i], cls, &marked);
        }
    }
    for (unsigned cpu = 0; cpu < HA_MAX_CPUS && marked > 0; cpu++) {
        if (!c[cpu])
            continue;
        for (unsigned cls = 0; cls < SLAB_CLASSES && marked > 0; cls++) {
            struct bin *b = &c[cpu]->bins[cls];
            for (unsigned i = 0; i < b->count && marked > 0; i++, marked--) {
                struct slab *s = slab_of(b->slots[i]);
                unsigned idx = slab_index(s, b->slots[i]);
                atomic_fetch_and_explicit(&slab_avail_bits(s)[idx / 64], ~(1ull << (idx % 64)),
                                          memory_order_relaxed);
            }
        }
    }

    for (unsigned cls = 0; cls < SLAB_CLASSES && r == 0; cls++) {
        struct slab_class *k = &classes[cls];
        size_t nslabs = 0, navail = 0, nalloc = 0, nobj = 0;
        for (int l = SLAB_PARTIAL; l <= SLAB_EMPTY && r == 0; l++)
            r = slab_check_list(k, cls, (enum slab_list)l, &nslabs, &navail, &nalloc, &nobj);
        if (r == 0 && (k->empty && k->empty->next))
            r = check_fail("slab: more than one kept empty slab", k->empty);
        if (r == 0 && (nslabs != k->nslabs || navail != k->navail))
            r = check_fail("slab: class counters disagree with its slabs", k);
        if (r == 0 && nalloc + navail + cached[cls] != nobj)
            r = check_fail("slab: objects neither allocated, available nor cached (lost)", k);
    }

    for (unsigned cls = SLAB_CLASSES; cls-- > 0;)
        lock_release(&classes[cls].lock, class_irq[cls]);
    for (unsigned cpu = HA_MAX_CPUS; cpu-- > 0;)
        if (c[cpu])
            lock_release(&c[cpu]->lock, cache_irq[cpu]);
    return r;
}
