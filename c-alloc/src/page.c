/*
 * Page allocator: every RAM region the kernel adds, in 4 KiB pages.
 *
 * Each region keeps, inside itself (in the first stretch of pages that is
 * neither reserved nor early and is large enough):
 *   - an allocation bitmap, 1 bit per page (1 = not free);
 *   - a kind map, 1 byte per page (enum page_kind; free pages are USER):
 *     a byte, not 2 bits, so that a free reads a page's kind in one load;
 *   - an order map per block order: the free blocks (below);
 *   - for a region added HA_REGION_ZEROED, a bit per page: free and known
 *     to hold zeros.
 * Free runs are binary buddy blocks.  Orders are absolute: a block of order
 * k starts at a page frame number that is a multiple of 2^k, so alignment
 * requests up to the block size are met by the order alone, and two blocks
 * are buddies when their frame numbers differ only in bit k.
 *
 * The free blocks of order k are bits, one per 2^k-aligned place in the
 * region, in a tree of 64-bit words (bit j of a level says that word j of
 * the level below is not zero; the top is one word), so the lowest block of
 * an order is found in one descent, a buddy is one bit test, and a merge or
 * a split changes bits.  Nothing is kept in free pages: a write after free
 * into one has nothing to corrupt, and no free page is touched (no cache
 * or TLB miss) when blocks are split, merged or taken.
 *
 * Nothing is written to region memory before page_start(): until then the
 * kernel may still be reserving its own image inside the RAM it just added,
 * so regions and reserves are only recorded in small tables.
 *
 * Costs (n = pages of a region, R = regions, at most HA_MAX_REGIONS):
 *   page_alloc   the smallest order that fits (ha_ctz of a region's
 *                non-empty mask), its lowest block in log64(n) word reads,
 *                one bit set per tail piece (at most log2 of the block);
 *                the bitmap scan (O(n / 64) words) only when no buddy block
 *                is big enough;
 *   page_free    O(log n) bit tests per aligned piece (buddy merging),
 *                O(count / 64) bitmap words;
 *   lookups      the first two regions, then O(R) compares after a global
 *                bound check, no lock;
 *   metadata     13 bits a page (416 KiB per GiB), 14 in a zeroed region,
 *                inside the region (2 of them slab.c's aux bytes).
 *
 * Lookups from the free path (page_kind_of, page_is_allocated) take no lock:
 * regions are never removed, and a region descriptor is complete before the
 * release store that publishes the new region count.
 */
#include "ha_internal.h"

/* Orders 0 .. PAGE_ORDERS-1.  2^51 pages is 8 EiB: no region gets there, and
 * the non-empty mask fits one 64-bit word for ha_ctz. */
#define PAGE_ORDERS 52

#define PFN_ONE ((uintptr_t)1)
#define PFN_OF(addr) ((uintptr_t)(addr) >> HA_PAGE_SHIFT)
#define ADDR_OF(pfn) ((uintptr_t)(pfn) << HA_PAGE_SHIFT)


#define KIND_BYTE_LOW 0x0101010101010101ull /* bit 0 of every byte of the kind map */

/* Words of the kind map (one byte per page), zero-padded to a word. */
static inline size_t region_kind_words(size_t npages) { return (npages + 7) / 8; }
/* Aux bytes of the region [s, e) (page frames): one per granule it
 * touches. */
static inline size_t region_aux_count(uintptr_t s, uintptr_t e)
{
    return ((e - 1) >> PAGE_AUX_ORDER) - (s >> PAGE_AUX_ORDER) + 1;
}

/*
 * The free blocks of one order k of a region: bit i of level 0 stands for
 * the block at page frame (origin + i) << k.  A level's word count is its
 * bit count over 64, rounded up; levels go up to one word.  Only blocks
 * wholly inside the region are ever set.
 *
 * Invariants (page_check verifies each):
 *   F1 a set bit stands for a block inside the region, every page of which
 *      is free in the bitmap and of kind USER;
 *   F2 bit j of level l + 1 is set exactly when word j of level l is not
 *      zero; no bit past the level's count is set; bit k of the region's
 *      nonempty mask is set exactly when the top word is not zero;
 *   F3 no free block lies inside another (at most one holds any page);
 *   F4 its buddy (same order, inside the region) is not also a free block:
 *      frees always merge;
 *   F5 the free blocks of every region hold page_state.free_pages pages;
 *   F6 a zero bit is set only on a free page (whose bytes are all zero).
 */
#define PAGE_LEVELS 9 /* 64^9 bits: any order of any region */

struct page_order_map {
    uint64_t *level[PAGE_LEVELS];
    uintptr_t origin;
    size_t nbits;
    unsigned nlevels;
};

/* struct page_region (a built region): see ha_internal.h. */

/* A recorded range: a region waiting for page_start, or a reserve. */
struct page_range {
    uintptr_t start_pfn;
    uintptr_t end_pfn;
    unsigned flags;
};

static struct {
    ha_lock_t lock;
    size_t free_pages;
    size_t zero_free; /* zero bits set, over every region (F6) */
    size_t used_pages; /* allocated and not SYSTEM (CPU frame caches' pages too) */
    /* Runs of kind USER handed out and given back (ha_alloc_pages and
     * ha_free_pages after final init): counted here, under the lock these
     * calls take anyway, rather than with atomics of their own. */
    uint64_t user_allocs, user_frees;
    struct page_range pending[HA_MAX_REGIONS];
    unsigned npending;
    struct page_range reserved[HA_MAX_RESERVED];
    unsigned nreserved;
    uintptr_t early_start_pfn, early_end_pfn; /* empty when equal */
} page_state = { .lock = HA_LOCK_INIT };

/* Written under the lock, read without it (see the file comment). */
struct page_region page_regions[HA_MAX_REGIONS];
atomic_uint page_region_count;
/* An empty region (npages 0: no frame is in it) until the first two are
 * built, so that page_region_of tests no pointer. */
static struct page_region page_no_region;
struct page_region *_Atomic page_first_regions[2] = { &page_no_region, &page_no_region };
static atomic_uint page_live;
/* High-water mark of pages handed out: used_pages less the frames the CPU
 * caches hold.  Raised under the lock by page_count_taken and without it by
 * page_sample_peak; page_peak_gen counts the raises made under the lock
 * (see page_peak_generation). */
static _Atomic size_t page_peak;
_Atomic unsigned page_peak_gen;
/* [lowest, highest) frame of every region: most foreign pointers stop here. */
atomic_uintptr_t page_lo_pfn = UINTPTR_MAX;
atomic_uintptr_t page_hi_pfn = 0;

/* ------------------------------------------------------------ bitmaps */

static inline bool bits_test(const uint64_t *bm, size_t i)
{
    return (bm[i / 64] >> (i % 64)) & 1u;
}

/* Mask of bits [i % 64, i % 64 + take) of a word, take <= 64 - i % 64. */
static inline uint64_t bits_word_mask(size_t i, size_t take)
{
    uint64_t m = take == 64 ? ~0ull : (1ull << take) - 1;
    return m << (i % 64);
}

/* Bitmap and kind-map words are written under the page lock and read
 * without it (page_kind_of, page_validate_frame, page_is_allocated): the
 * writes are relaxed atomic stores, a plain store's instruction. */
static inline void word_store(uint64_t *w, uint64_t v)
{
    ha_store_relaxed64(w, v);
}

/* used_pages and free_pages likewise: page lock held, read lock-free by
 * page_sample_peak and page_free_count. */
static inline void used_pages_add(intptr_t n)
{
    ha_store_relaxed64(&page_state.used_pages, page_state.used_pages + (size_t)n);
}

static inline void free_pages_add(intptr_t n)
{
    ha_store_relaxed64(&page_state.free_pages, page_state.free_pages + (size_t)n);
}

static void bits_set(uint64_t *bm, size_t i, size_t n)
{
    while (n) {
        size_t take = 64 - i % 64;
        if (take > n)
            take = n;
        word_store(&bm[i / 64], bm[i / 64] | bits_word_mask(i, take));
        i += take;
        n -= take;
    }
}

static void bits_clear(uint64_t *bm, size_t i, size_t n)
{
    while (n) {
        size_t take = 64 - i % 64;
        if (take > n)
            take = n;
        word_store(&bm[i / 64], bm[i / 64] & ~bits_word_mask(i, take));
        i += take;
        n -= take;
    }
}

/* First index in [i, lim) whose bit equals `set`, or lim. */
static size_t bits_find(const uint64_t *bm, size_t i, size_t lim, bool set)
{
    while (i < lim) {
        uint64_t w = set ? bm[i / 64] : ~bm[i / 64];
        w >>= i % 64;
        if (w) {
            size_t r = i + ha_ctz(w);
            return r < lim ? r : lim;
        }
        i = (i | 63) + 1;
    }
    return lim;
}

static size_t bits_count_clear(const uint64_t *bm, size_t nbits)
{
    size_t n = 0;
    for (size_t w = 0; w < (nbits + 63) / 64; w++)
        n += 64 - ha_popcount(bm[w]);
    return n; /* tail bits are 1 (R1), so they add nothing */
}

/* ---------------------------------------------------------- kind map */
/* One byte per page: a free's look-up is one byte load, no shift and mask
 * (1 byte per 4 KiB page, 0.02% of the region).  Bytes are stored one at a
 * time as relaxed stores: under the page lock, or by a frame cache (USER <->
 * FRAME of an allocated page, under its own lock), and the free paths read
 * them without a lock; so every read is a relaxed load, and the searches
 * below read eight at a time. */

static inline unsigned kinds_get(const uint8_t *km, size_t i)
{
    return __atomic_load_n(&km[i], __ATOMIC_RELAXED);
}

static void kinds_set(uint8_t *km, size_t i, size_t n, unsigned kind)
{
    for (size_t j = i; j < i + n; j++)
        ha_store_relaxed8(&km[j], (uint8_t)kind);
}

/* The eight kinds at km[i..i+8), i a multiple of 8 (the map is 8-byte
 * aligned, after the bitmap's words, and padded to a word). */
static inline uint64_t kinds_word(const uint8_t *km, size_t i)
{
    /* One relaxed load (a plain load's instruction): a frame cache may
     * store a byte of the word meanwhile. */
    return __atomic_load_n((const uint64_t *)(const void *)(km + i), __ATOMIC_RELAXED);
}

/* The first byte (in memory order) of a word loaded from the kind map
 * whose bit 0 is set in hit (not zero). */
static inline size_t kinds_hit_byte(uint64_t hit)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return ha_ctz(hit) / 8;
#else
    return ha_clz(hit) / 8;
#endif
}

/* Bytes [from, 8) of a word loaded from the kind map, as a mask of bit 0s. */
static inline uint64_t kinds_from_byte(size_t from)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (KIND_BYTE_LOW << (8 * from)) & KIND_BYTE_LOW;
#else
    return (KIND_BYTE_LOW >> (8 * from)) & KIND_BYTE_LOW;
#endif
}

/* First index in [i, i + n) whose kind is (equal ? == : !=) kind, or i + n:
 * a word of eight kinds at a time (the map is padded to a word). */
static size_t kinds_find(const uint8_t *km, size_t i, size_t n, unsigned kind, bool equal)
{
    size_t lim = i + n;
    uint64_t pat = (uint64_t)kind * KIND_BYTE_LOW, first = kinds_from_byte(i % 8);
    for (size_t w = i - i % 8; w < lim; w += 8, first = KIND_BYTE_LOW) {
        uint64_t diff = kinds_word(km, w) ^ pat;
        /* Kinds are 0..4: bit 0 of a byte is set when its kind differs. */
        uint64_t hit = (diff | (diff >> 1) | (diff >> 2)) & KIND_BYTE_LOW;
        if (equal)
            hit = ~hit & KIND_BYTE_LOW;
        hit &= first;
        if (hit) {
            size_t at = w + kinds_hit_byte(hit);
            return at < lim ? at : lim;
        }
    }
    return lim;
}

/* Full-byte masks of a word loaded from the kind map: bytes [from, 8), and
 * bytes [0, through] (memory order; from, through < 8). */
static inline uint64_t kinds_bytes_from(size_t from)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return ~0ull << (8 * from);
#else
    return ~0ull >> (8 * from);
#endif
}

static inline uint64_t kinds_bytes_through(size_t through)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return ~0ull >> (8 * (7 - through));
#else
    return ~0ull << (8 * (7 - through));
#endif
}

/* Are the kinds [i, i + n) (n > 0) all USER (0)?  A run free's common
 * case: the words OR-ed together, the bytes outside the run masked off,
 * one test at the end. */
static bool kinds_all_user(const uint8_t *km, size_t i, size_t n)
{
    size_t first = i - i % 8, last = (i + n - 1) - (i + n - 1) % 8;
    uint64_t from = kinds_bytes_from(i % 8), through = kinds_bytes_through((i + n - 1) % 8);
    if (first == last)
        return (kinds_word(km, first) & from & through) == 0;
    uint64_t acc = kinds_word(km, first) & from;
    for (size_t w = first + 8; w < last; w += 8)
        acc |= kinds_word(km, w);
    return (acc | (kinds_word(km, last) & through)) == 0;
}

/* SYSTEM (3) kinds among the eight of a word: bit 0 of each such byte
 * (no other kind has both low bits set). */
static inline uint64_t kinds_system_bits(uint64_t w)
{
    return w & (w >> 1) & KIND_BYTE_LOW;
}

/* FRAME (4) kinds among the eight of a word: bit 0 of each such byte. */
static inline uint64_t kinds_frame_bits(uint64_t w)
{
    return (w >> 2) & KIND_BYTE_LOW;
}

static size_t kinds_count_system(const uint8_t *km, size_t npages)
{
    size_t n = 0;
    for (size_t w = 0; w < region_kind_words(npages); w++)
        n += ha_popcount(kinds_system_bits(kinds_word(km, 8 * w)));
    return n; /* bytes past npages are kind 0 */
}

/* ----------------------------------------------------------- regions */

static inline size_t region_bitmap_words(size_t npages) { return (npages + 63) / 64; }

/* Orders a region of npages can hold a block of: 0 .. fls(npages). */
static unsigned region_orders(size_t npages)
{
    unsigned n = ha_fls(npages) + 1;
    return n < PAGE_ORDERS ? n : PAGE_ORDERS;
}

/*
 * The metadata of the region [s, e) in words: the bitmap, the kind map, the
 * zero bits when zeroed, the order map descriptors and their levels.  With
 * r, also lays it out from `at` (zeroed memory): r's pointers and the
 * descriptors.
 */
static size_t region_layout(struct page_region *r, uintptr_t s, uintptr_t e, bool zeroed, uint64_t *at)
{
    size_t npages = e - s, bw = region_bitmap_words(npages), kw = region_kind_words(npages);
    unsigned norders = region_orders(npages);
    size_t aw = (region_aux_count(s, e) + 7) / 8;
    size_t words = bw + kw + aw + (zeroed ? bw : 0);
    struct page_order_map *maps = r ? (struct page_order_map *)(at + words) : NULL;
    words += (norders * sizeof(struct page_order_map) + 7) / 8;
    for (unsigned k = 0; k < norders; k++) {
        uintptr_t origin = s >> k;
        size_t nbits = (e >> k) - origin, lw = nbits;
        unsigned l = 0;
        do {
            lw = lw > 64 ? (lw + 63) / 64 : 1;
            if (maps)
                maps[k].level[l] = at + words;
            words += lw;
            l++;
        } while (lw > 1);
        if (maps) {
            maps[k].origin = origin;
            maps[k].nbits = nbits;
            maps[k].nlevels = l;
        }
    }
    if (r) {
        r->bitmap = at;
        r->kinds = (uint8_t *)(at + bw);
        r->aux = (uint8_t *)(at + bw + kw);
        r->aux_at = (uintptr_t)r->aux - (s >> PAGE_AUX_ORDER);
        r->zero = zeroed ? at + bw + kw + aw : NULL;
        r->maps = maps;
        r->norders = norders;
        r->nonempty = 0;
    }
    return words;
}

static size_t region_meta_pages(uintptr_t s, uintptr_t e, bool zeroed)
{
    size_t bytes = 8 * region_layout(NULL, s, e, zeroed, NULL);
    return (bytes + HA_PAGE_SIZE - 1) / HA_PAGE_SIZE;
}

/* The region holding page frame pfn, or NULL.  Lock-free (see file comment). */
static struct page_region *region_of_pfn(uintptr_t pfn)
{
    return page_region_of(pfn);
}

static bool range_overlaps(uintptr_t a0, uintptr_t a1, uintptr_t b0, uintptr_t b1)
{
    return a0 < b1 && b0 < a1;
}

/* Does [s, e) overlap a built or pending region? */
static bool region_overlaps_any(uintptr_t s, uintptr_t e)
{
    unsigned n = atomic_load_explicit(&page_region_count, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++)
        if (range_overlaps(s, e, page_regions[i].base_pfn, page_regions[i].end_pfn))
            return true;
    for (unsigned i = 0; i < page_state.npending; i++)
        if (range_overlaps(s, e, page_state.pending[i].start_pfn, page_state.pending[i].end_pfn))
            return true;
    return false;
}

/* ---------------------------------------------------------- order maps */

static inline size_t map_index(const struct page_order_map *m, uintptr_t pfn, unsigned k)
{
    return (pfn >> k) - m->origin;
}

static inline bool map_test(const struct page_order_map *m, size_t i)
{
    return bits_test(m->level[0], i);
}

/* The summary bits above word i / 64 of level 0 of order k's map, which
 * has just stopped being zero: out of line, since it is seldom. */
static HA_NOINLINE void map_set_up(struct page_region *r, unsigned k, size_t i)
{
    struct page_order_map *m = &r->maps[k];
    for (unsigned l = 1; l < m->nlevels; l++) {
        i /= 64;
        uint64_t *w = &m->level[l][i / 64], old = *w;
        *w = old | 1ull << (i % 64);
        if (old)
            return;
    }
    r->nonempty |= 1ull << k;
}

/* Set bit i (clear) of order k's map, and the summary bits it makes. */
static inline void map_set(struct page_region *r, unsigned k, size_t i)
{
    uint64_t *w = &r->maps[k].level[0][i / 64], old = *w;
    *w = old | 1ull << (i % 64);
    if (!old)
        map_set_up(r, k, i);
}

/* Word i / 64 of level 0 of order k's map has just become zero. */
static HA_NOINLINE void map_clear_up(struct page_region *r, unsigned k, size_t i)
{
    struct page_order_map *m = &r->maps[k];
    for (unsigned l = 1; l < m->nlevels; l++) {
        i /= 64;
        uint64_t *w = &m->level[l][i / 64], now = *w & ~(1ull << (i % 64));
        *w = now;
        if (now)
            return;
    }
    r->nonempty &= ~(1ull << k);
}

/* Clear bit i (set) of order k's map, and the summary bits it empties. */
static inline void map_clear(struct page_region *r, unsigned k, size_t i)
{
    uint64_t *w = &r->maps[k].level[0][i / 64], now = *w & ~(1ull << (i % 64));
    *w = now;
    if (!now)
        map_clear_up(r, k, i);
}

/* The lowest free block of order k of r (bit k of r->nonempty set): one
 * word a level, from the top. */
static uintptr_t map_first(const struct page_region *r, unsigned k)
{
    const struct page_order_map *m = &r->maps[k];
    size_t i = 0;
    for (unsigned l = m->nlevels; l-- > 0;)
        i = i * 64 + ha_ctz(m->level[l][i]);
    return (m->origin + i) << k;
}

static inline void block_add(struct page_region *r, uintptr_t pfn, unsigned o)
{
    map_set(r, o, map_index(&r->maps[o], pfn, o));
}

static inline void block_remove(struct page_region *r, uintptr_t pfn, unsigned o)
{
    map_clear(r, o, map_index(&r->maps[o], pfn, o));
}

/* Largest order for a block at pfn that fits in n (> 0) pages. */
static unsigned block_order_fit(uintptr_t pfn, uintptr_t n)
{
    unsigned a = pfn ? ha_ctz(pfn) : 63;
    unsigned s = ha_fls(n);
    unsigned o = a < s ? a : s;
    return o < PAGE_ORDERS - 1 ? o : PAGE_ORDERS - 1;
}

/* Make the free pages [pfn, end) of r maximal aligned blocks, without
 * merging: for the leftovers of a split block and for runs between
 * allocated pages none of these blocks has a free buddy. */
static void blocks_insert_range(struct page_region *r, uintptr_t pfn, uintptr_t end)
{
    while (pfn < end) {
        unsigned o = block_order_fit(pfn, end - pfn);
        block_add(r, pfn, o);
        pfn += PFN_ONE << o;
    }
}

/* Add (or remove) the maximal blocks of [at, at + len), whose end is
 * aligned to a power of two above len (a split block's tail): they are the
 * set bits of len, the lowest first. */
HA_INLINE void tail_blocks(struct page_region *r, uintptr_t at, uintptr_t len, bool add)
{
    for (; len; len &= len - 1) {
        unsigned b = ha_ctz(len);
        if (add)
            block_add(r, at, b);
        else
            block_remove(r, at, b);
        at += PFN_ONE << b;
    }
}

/* Free the block [pfn, pfn + 2^order) of r, merging with free buddies
 * (one bit test an order) and with the rest of the run being freed, up to
 * *end: a buddy that lies wholly in [pfn + 2^order, *end) is taken whole
 * instead of being made a block and absorbed the next time round.
 *
 * A buddy that starts in the run and ends past it, at over, is taken too
 * when [*end, over) is free: its free blocks are then the set bits of
 * over - *end (tail_blocks; none crosses *end, whose left page was
 * allocated, nor over, an aligned boundary of a block that held allocated
 * pages; inside, blocks are maximal, F4), so they are cleared without a
 * look-up and *end moves to over.  Without this the piece would be made a
 * block, and the cascade from the run's last piece would find and clear
 * it again, with every block between.
 *
 * Returns where the rest of the run starts.  The region's bounds are read
 * once: the map stores below could alias them, so the compiler would
 * reload them every order. */
static uintptr_t block_free_merge(struct page_region *r, uintptr_t pfn, unsigned order, uintptr_t *end)
{
    const uintptr_t lo = r->base_pfn, hi = r->end_pfn;
    const unsigned top = r->norders - 1;
    struct page_order_map *maps = r->maps;
    uintptr_t next = pfn + (PFN_ONE << order);
    for (; order < top; order++) {
        uintptr_t size = PFN_ONE << order;
        uintptr_t buddy = pfn ^ size;
        if (buddy < lo || buddy + size > hi)
            break; /* never merge across a region boundary */
        if (buddy > pfn && buddy < *end) {
            /* The rest of the run, and maybe free pages past it. */
            uintptr_t over = buddy + size;
            if (over > *end) {
                size_t e = *end - lo;
                if (bits_find(r->bitmap, e, over - lo, true) != over - lo)
                    break; /* never wholly free */
                tail_blocks(r, *end, over - *end, false);
                *end = over;
            }
            next = over;
        } else {
            size_t bi = map_index(&maps[order], buddy, order);
            if (!map_test(&maps[order], bi))
                break;
            map_clear(r, order, bi);
            pfn &= ~size;
        }
    }
    block_add(r, pfn, order);
    return next;
}

/* How many of bits [i, i + n) of bm are set. */
static size_t bits_count_set(const uint64_t *bm, size_t i, size_t n)
{
    size_t got = 0;
    while (n) {
        size_t take = 64 - i % 64;
        if (take > n)
            take = n;
        got += ha_popcount(bm[i / 64] & bits_word_mask(i, take));
        i += take;
        n -= take;
    }
    return got;
}

/* Free the allocated run [pfn, pfn + n) of r (zero: its pages hold zeros):
 * maximal aligned blocks, each merged.
 *
 * A block merges only with a buddy that touches the run: if a piece of the
 * run's decomposition merged at some order, its block and the buddy would
 * form a free aligned block holding the piece; it cannot lie inside the run
 * (the piece is maximal there), so it holds page pfn - 1 or page end.  So
 * when both of those are allocated (or outside the region) the pieces are
 * final and no buddy is looked at. */
static void region_free_run(struct page_region *r, uintptr_t pfn, size_t n, bool zero)
{
    size_t i = pfn - r->base_pfn;
    uintptr_t end = pfn + n;
    bits_clear(r->bitmap, i, n);
    if (zero && r->zero) {
        bits_set(r->zero, i, n);
        page_state.zero_free += n;
    }
    bool left_free = i > 0 && !bits_test(r->bitmap, i - 1);
    bool right_free = i + n < r->npages && !bits_test(r->bitmap, i + n);
    if (!left_free && !right_free) {
        blocks_insert_range(r, pfn, end);
        return;
    }
    while (pfn < end)
        pfn = block_free_merge(r, pfn, block_order_fit(pfn, end - pfn), &end);
}

/* The order of the free block holding the free page x of r, or PAGE_ORDERS
 * if there is none (x is not free).  The block's head is x rounded down to
 * its order; no smaller block holds x (F3), so orders are tried upwards. */
static unsigned region_block_holding(struct page_region *r, uintptr_t x)
{
    for (unsigned o = 0; o < r->norders; o++) {
        uintptr_t h = x & ~((PFN_ONE << o) - 1);
        if (h < r->base_pfn || bits_test(r->bitmap, h - r->base_pfn))
            break; /* a block from h or below would hold an allocated page */
        if (h - r->base_pfn + (PFN_ONE << o) > r->npages)
            break;
        if (map_test(&r->maps[o], map_index(&r->maps[o], h, o)))
            return o;
    }
    return PAGE_ORDERS;
}

/* Remove the free run [pfn, pfn + n) of r from the free blocks: take every
 * block overlapping it and give back the parts outside it.  Bits and kinds
 * are the caller's. */
static void region_carve(struct page_region *r, uintptr_t pfn, size_t n)
{
    uintptr_t end = pfn + n;
    for (uintptr_t x = pfn; x < end;) {
        unsigned o = region_block_holding(r, x);
        HA_ASSERT(o < PAGE_ORDERS, ADDR_OF(x));
        uintptr_t h = x & ~((PFN_ONE << o) - 1);
        uintptr_t bend = h + (PFN_ONE << o);
        block_remove(r, h, o);
        if (h < pfn)
            blocks_insert_range(r, h, pfn);
        if (bend > end)
            blocks_insert_range(r, end, bend);
        x = bend;
    }
}

/* Mark [pfn, pfn + n) of r allocated with kind.  Returns whether every
 * page was known zero (their zero bits are taken). */
static bool region_take(struct page_region *r, uintptr_t pfn, size_t n, unsigned kind)
{
    size_t i = pfn - r->base_pfn;
    bits_set(r->bitmap, i, n);
    if (kind != PAGE_KIND_USER) /* free pages are USER already (F1) */
        kinds_set(r->kinds, i, n, kind);
    if (HA_LIKELY(page_state.zero_free == 0 || !r->zero))
        return false;
    size_t z = bits_count_set(r->zero, i, n);
    if (z == 0)
        return false;
    bits_clear(r->zero, i, n);
    page_state.zero_free -= z;
    return z == n;
}

/* n free pages of r were just taken with kind.  SYSTEM pages (metadata of
 * the byte allocator) leave pages_total instead of counting as used (R4). */
static void page_count_taken(struct page_region *r, size_t n, unsigned kind)
{
    free_pages_add(-(intptr_t)n);
    if (kind == PAGE_KIND_SYSTEM) {
        r->system_pages += n;
        return;
    }
    used_pages_add((intptr_t)n);
    page_sample_peak();
    unsigned g = atomic_load_explicit(&page_peak_gen, memory_order_relaxed);
    atomic_store_explicit(&page_peak_gen, g + 1, memory_order_relaxed);
}

void page_sample_peak(void)
{
    size_t used = __atomic_load_n(&page_state.used_pages, __ATOMIC_RELAXED);
    size_t peak = atomic_load_explicit(&page_peak, memory_order_relaxed);
    if (used <= peak)
        return; /* used less the cached frames is no more: no sum needed */
    size_t held = stats_frames_cached();
    size_t now = used > held ? used - held : 0;
    while (now > peak && !atomic_compare_exchange_weak_explicit(&page_peak, &peak, now, memory_order_relaxed,
                                                                 memory_order_relaxed)) {
    }
}

/* Mark the part of [s, e) inside r as SYSTEM and allocated (build time: no
 * free blocks yet). */
static void region_mark_system(struct page_region *r, uintptr_t s, uintptr_t e)
{
    if (s < r->base_pfn)
        s = r->base_pfn;
    if (e > r->end_pfn)
        e = r->end_pfn;
    if (s >= e)
        return;
    region_take(r, s, e - s, PAGE_KIND_SYSTEM);
}

/* First pfn >= s where n pages avoid every excluded range (reserves, and the
 * early range when exclude_early), or end if none inside [s, end). */
static uintptr_t region_place_meta(uintptr_t s, uintptr_t end, size_t n, bool exclude)
{
    uintptr_t m = s;
    for (bool moved = true; moved && m + n <= end;) {
        moved = false;
        if (!exclude)
            break;
        for (unsigned i = 0; i < page_state.nreserved; i++) {
            const struct page_range *v = &page_state.reserved[i];
            if (range_overlaps(m, m + n, v->start_pfn, v->end_pfn)) {
                m = v->end_pfn;
                moved = true;
            }
        }
        if (range_overlaps(m, m + n, page_state.early_start_pfn, page_state.early_end_pfn)) {
            m = page_state.early_end_pfn;
            moved = true;
        }
    }
    return m + n <= end ? m : end;
}

/*
 * Build the region [s, e) (page frames) and publish it.  exclude: keep the
 * reserves and the early range out (everything but a released part of the
 * early range).  Writes region memory: only from page_start on.  Lock held.
 */
static int region_build(uintptr_t s, uintptr_t e, unsigned flags, bool exclude)
{
    unsigned idx = atomic_load_explicit(&page_region_count, memory_order_relaxed);
    if (idx >= HA_MAX_REGIONS)
        return HA_ENOSPC;
    size_t npages = e - s;
    bool zeroed = (flags & HA_REGION_ZEROED) != 0;
    size_t meta = region_meta_pages(s, e, zeroed);
    if (npages < meta + 1)
        return HA_ENOMEM;
    uintptr_t m = region_place_meta(s, e, meta, exclude);
    if (m == e)
        return HA_ENOMEM;

    struct page_region *r = &page_regions[idx];
    r->base_pfn = s;
    r->end_pfn = e;
    r->npages = npages;
    uint64_t *at = (uint64_t *)ADDR_OF(m);
    ha_memset(at, 0, 8 * region_layout(NULL, s, e, zeroed, NULL));
    region_layout(r, s, e, zeroed, at);
    ha_memset(r->aux, PAGE_AUX_NONE, region_aux_count(s, e));
    r->meta_pfn = m;
    r->meta_pages = meta;
    size_t bw = region_bitmap_words(npages);
    if (npages % 64)
        r->bitmap[bw - 1] |= ~0ull << (npages % 64); /* R1 */

    region_mark_system(r, m, m + meta);
    if (exclude) {
        for (unsigned i = 0; i < page_state.nreserved; i++)
            region_mark_system(r, page_state.reserved[i].start_pfn, page_state.reserved[i].end_pfn);
        region_mark_system(r, page_state.early_start_pfn, page_state.early_end_pfn);
    }
    size_t nfree = bits_count_clear(r->bitmap, npages);
    if (nfree == 0)
        return HA_ENOMEM; /* nothing written outside our own pages: not published */
    r->system_pages = npages - nfree;

    for (size_t i = bits_find(r->bitmap, 0, npages, false); i < npages;) {
        size_t j = bits_find(r->bitmap, i, npages, true);
        blocks_insert_range(r, s + i, s + j);
        i = bits_find(r->bitmap, j, npages, false);
    }
    if (zeroed) { /* every free page (the bitmap's tail bits are 1) */
        for (size_t w = 0; w < bw; w++)
            r->zero[w] = ~r->bitmap[w];
        page_state.zero_free += nfree;
    }
    free_pages_add((intptr_t)nfree);

    if (s < atomic_load_explicit(&page_lo_pfn, memory_order_relaxed))
        atomic_store_explicit(&page_lo_pfn, s, memory_order_relaxed);
    if (e > atomic_load_explicit(&page_hi_pfn, memory_order_relaxed))
        atomic_store_explicit(&page_hi_pfn, e, memory_order_relaxed);
    atomic_store_explicit(&page_region_count, idx + 1, memory_order_release);
    if (idx < 2) /* the free paths look at these first (page_region_of) */
        atomic_store_explicit(&page_first_regions[idx], r, memory_order_release);
    return HA_OK;
}

/* --------------------------------------------------------- life cycle */

int page_add_region(uintptr_t start, uintptr_t end, unsigned flags)
{
    if (end < start)
        return HA_EINVAL;
    if (start > UINTPTR_MAX - (HA_PAGE_SIZE - 1))
        return HA_ENOMEM;
    uintptr_t s = PFN_OF(ha_align_up(start, HA_PAGE_SIZE));
    uintptr_t e = PFN_OF(end);
    if (e <= s || e - s < region_meta_pages(s, e, (flags & HA_REGION_ZEROED) != 0) + 1)
        return HA_ENOMEM;

    uintptr_t irq = lock_acquire(&page_state.lock);
    int rc;
    if (region_overlaps_any(s, e)) {
        rc = HA_EOVERLAP;
    } else if (!atomic_load_explicit(&page_live, memory_order_relaxed)) {
        if (page_state.npending >= HA_MAX_REGIONS) {
            rc = HA_ENOSPC;
        } else {
            page_state.pending[page_state.npending++] =
                (struct page_range){ .start_pfn = s, .end_pfn = e, .flags = flags };
            rc = HA_OK;
        }
    } else {
        rc = region_build(s, e, flags, true);
    }
    lock_release(&page_state.lock, irq);
    return rc;
}

/* Reserve [s, e) in the built region r: free pages become SYSTEM.  The
 * caller checked that no page there is allocated other than as SYSTEM. */
static void region_reserve_carve(struct page_region *r, uintptr_t s, uintptr_t e)
{
    size_t lo = s - r->base_pfn, hi = e - r->base_pfn;
    for (size_t i = bits_find(r->bitmap, lo, hi, false); i < hi;) {
        size_t j = bits_find(r->bitmap, i, hi, true);
        region_carve(r, r->base_pfn + i, j - i);
        region_take(r, r->base_pfn + i, j - i, PAGE_KIND_SYSTEM);
        free_pages_add(-(intptr_t)(j - i));
        r->system_pages += j - i;
        i = bits_find(r->bitmap, j, hi, false);
    }
}

/* Is any page of [s, e) in r allocated other than as SYSTEM? */
static bool region_busy(const struct page_region *r, uintptr_t s, uintptr_t e)
{
    size_t hi = e - r->base_pfn;
    for (size_t i = bits_find(r->bitmap, s - r->base_pfn, hi, true); i < hi;
         i = bits_find(r->bitmap, i + 1, hi, true))
        if (kinds_get(r->kinds, i) != PAGE_KIND_SYSTEM)
            return true;
    return false;
}

int page_reserve(uintptr_t start, uintptr_t end)
{
    if (end <= start || end > UINTPTR_MAX - (HA_PAGE_SIZE - 1))
        return HA_EINVAL;
    uintptr_t s = PFN_OF(start);
    uintptr_t e = PFN_OF(ha_align_up(end, HA_PAGE_SIZE));

    uintptr_t irq = lock_acquire(&page_state.lock);
    int rc = HA_OK;
    if (page_state.nreserved >= HA_MAX_RESERVED) {
        rc = HA_ENOSPC;
        goto out;
    }
    if (atomic_load_explicit(&page_live, memory_order_relaxed)) {
        unsigned n = atomic_load_explicit(&page_region_count, memory_order_relaxed);
        /* Check every region before changing any: all or nothing. */
        for (unsigned i = 0; i < n; i++) {
            struct page_region *r = &page_regions[i];
            uintptr_t a = s > r->base_pfn ? s : r->base_pfn;
            uintptr_t b = e < r->end_pfn ? e : r->end_pfn;
            if (a < b && region_busy(r, a, b)) {
                rc = HA_EBUSY;
                goto out;
            }
        }
        for (unsigned i = 0; i < n; i++) {
            struct page_region *r = &page_regions[i];
            uintptr_t a = s > r->base_pfn ? s : r->base_pfn;
            uintptr_t b = e < r->end_pfn ? e : r->end_pfn;
            if (a < b)
                region_reserve_carve(r, a, b);
        }
    }
    page_state.reserved[page_state.nreserved++] =
        (struct page_range){ .start_pfn = s, .end_pfn = e, .flags = 0 };
out:
    lock_release(&page_state.lock, irq);
    return rc;
}

void page_set_early_range(uintptr_t start, uintptr_t end)
{
    uintptr_t irq = lock_acquire(&page_state.lock);
    if (end > start && end <= UINTPTR_MAX - (HA_PAGE_SIZE - 1)) {
        page_state.early_start_pfn = PFN_OF(start);
        page_state.early_end_pfn = PFN_OF(ha_align_up(end, HA_PAGE_SIZE));
    } else {
        page_state.early_start_pfn = page_state.early_end_pfn = 0;
    }
    lock_release(&page_state.lock, irq);
}

/* An early range right below or right above a recorded region, and inside
 * none, becomes part of that region (kind SYSTEM until it is released, as
 * an early range inside a region is) instead of a region of its own when
 * released: the free paths find most pointers in the first region they
 * look at, and a run may cross where the two met.  Lock held. */
static void early_join_region(void)
{
    uintptr_t es = page_state.early_start_pfn, ee = page_state.early_end_pfn;
    if (es == ee)
        return;
    for (unsigned i = 0; i < page_state.npending; i++)
        if (range_overlaps(es, ee, page_state.pending[i].start_pfn, page_state.pending[i].end_pfn))
            return;
    for (unsigned i = 0; i < page_state.npending; i++) {
        struct page_range *p = &page_state.pending[i];
        if (p->start_pfn == ee) {
            p->start_pfn = es;
            return;
        }
        if (p->end_pfn == es) {
            p->end_pfn = ee;
            return;
        }
    }
}

/* Regions that cannot be built (all reserved, no room for metadata) are
 * dropped; that is an error only when every recorded region was. */
int page_start(void)
{
    uintptr_t irq = lock_acquire(&page_state.lock);
    int rc = HA_OK;
    if (atomic_load_explicit(&page_live, memory_order_relaxed)) {
        rc = HA_ESTATE;
    } else {
        unsigned built = 0;
        early_join_region();
        for (unsigned i = 0; i < page_state.npending; i++) {
            const struct page_range *p = &page_state.pending[i];
            if (region_build(p->start_pfn, p->end_pfn, p->flags, true) == HA_OK)
                built++;
        }
        if (page_state.npending && !built)
            rc = HA_ENOMEM;
        page_state.npending = 0;
        atomic_store_explicit(&page_live, 1u, memory_order_release);
    }
    lock_release(&page_state.lock, irq);
    return rc;
}

size_t page_free_count(void)
{
    return __atomic_load_n(&page_state.free_pages, __ATOMIC_RELAXED);
}

size_t page_total_count(void)
{
    return __atomic_load_n(&page_state.free_pages, __ATOMIC_RELAXED) +
           __atomic_load_n(&page_state.used_pages, __ATOMIC_RELAXED);
}

bool page_is_live(void)
{
    return atomic_load_explicit(&page_live, memory_order_acquire) != 0;
}

/* Lowest region base in (x, e), or e. */
static uintptr_t region_next_base(uintptr_t x, uintptr_t e)
{
    unsigned n = atomic_load_explicit(&page_region_count, memory_order_relaxed);
    uintptr_t next = e;
    for (unsigned i = 0; i < n; i++)
        if (page_regions[i].base_pfn > x && page_regions[i].base_pfn < next)
            next = page_regions[i].base_pfn;
    return next;
}

int page_release_early(uintptr_t start, uintptr_t end)
{
    if ((start | end) & (HA_PAGE_SIZE - 1) || end <= start)
        return HA_EINVAL;
    uintptr_t s = PFN_OF(start), e = PFN_OF(end);
    uintptr_t irq = lock_acquire(&page_state.lock);
    int rc = HA_OK;
    if (!atomic_load_explicit(&page_live, memory_order_relaxed)) {
        rc = HA_ESTATE;
    } else if (s < page_state.early_start_pfn || e > page_state.early_end_pfn) {
        rc = HA_EINVAL;
    } else {
        for (uintptr_t x = s; x < e;) {
            struct page_region *r = region_of_pfn(x);
            if (r) {
                uintptr_t lim = e < r->end_pfn ? e : r->end_pfn;
                size_t i = x - r->base_pfn, n = lim - x;
                HA_ASSERT(bits_find(r->bitmap, i, i + n, false) == i + n &&
                              kinds_find(r->kinds, i, n, PAGE_KIND_SYSTEM, false) == i + n,
                          ADDR_OF(x));
                kinds_set(r->kinds, i, n, PAGE_KIND_USER);
                r->system_pages -= n;
                free_pages_add((intptr_t)n);
                region_free_run(r, x, n, false);
                x = lim;
            } else {
                /* Outside every region: the released part becomes one.  A
                 * reserve does not apply to the early range. */
                uintptr_t lim = region_next_base(x, e);
                int brc = region_build(x, lim, 0, false);
                if (brc != HA_OK && rc == HA_OK)
                    rc = brc;
                x = lim;
            }
        }
    }
    lock_release(&page_state.lock, irq);
    return rc;
}

/* ------------------------------------------------------- alloc / free */

/* Slow path: the first run of n free pages starting at a multiple of 2^aorder
 * pages, found in the bitmaps.  Only when no buddy block is big enough, i.e.
 * the free pages are split across buddy boundaries. */
static struct page_region *region_find_run(size_t n, unsigned aorder, uintptr_t *out)
{
    uintptr_t step = PFN_ONE << aorder;
    unsigned nr = atomic_load_explicit(&page_region_count, memory_order_relaxed);
    for (unsigned k = 0; k < nr; k++) {
        struct page_region *r = &page_regions[k];
        if (r->npages < n)
            continue;
        size_t i = ha_align_up(r->base_pfn, step) - r->base_pfn;
        while (i <= r->npages - n) {
            size_t j = bits_find(r->bitmap, i, i + n, true);
            if (j == i + n) {
                *out = r->base_pfn + i;
                return r;
            }
            size_t f = bits_find(r->bitmap, j, r->npages, false);
            if (f >= r->npages)
                break;
            i = ha_align_up(r->base_pfn + f, step) - r->base_pfn;
        }
    }
    return NULL;
}

void *page_alloc(size_t count, size_t align, enum page_kind kind, bool *zeroed)
{
    if (zeroed)
        *zeroed = false;
    if (count == 0 || count > (SIZE_MAX >> HA_PAGE_SHIFT) || !ha_is_pow2(align) ||
        align < HA_PAGE_SIZE)
        return NULL;
    unsigned aorder = ha_fls(align) - HA_PAGE_SHIFT;
    unsigned order = ha_log2_ceil(count);
    if (order < aorder)
        order = aorder;
    if (order >= PAGE_ORDERS)
        return NULL;

    uintptr_t irq = lock_acquire(&page_state.lock);
    struct page_region *r = NULL;
    uintptr_t pfn = 0;
    bool zero = false;
    /* The smallest order that fits (large blocks stay whole), and its
     * lowest block (a heap's pages stay together: fewer cache and TLB
     * misses, no first touches of pages it never used); between regions
     * with the same order, the lower block. */
    unsigned o = PAGE_ORDERS, nr = atomic_load_explicit(&page_region_count, memory_order_relaxed);
    for (unsigned k = 0; k < nr; k++) {
        struct page_region *q = &page_regions[k];
        uint64_t fit = q->nonempty & (~0ull << order);
        if (!fit || ha_ctz(fit) > o)
            continue;
        unsigned qo = ha_ctz(fit);
        uintptr_t qpfn = map_first(q, qo);
        if (qo < o || qpfn < pfn) {
            r = q;
            o = qo;
            pfn = qpfn;
        }
    }
    if (HA_LIKELY(r != NULL)) {
        block_remove(r, pfn, o);
        /* Give back the tail beyond count: no more pages taken than asked. */
        tail_blocks(r, pfn + count, (PFN_ONE << o) - count, true);
    } else if (count <= page_state.free_pages) {
        r = region_find_run(count, aorder, &pfn);
        if (r)
            region_carve(r, pfn, count);
    }
    if (r) {
        zero = region_take(r, pfn, count, (unsigned)kind);
        page_count_taken(r, count, (unsigned)kind);
        page_state.user_allocs += kind == PAGE_KIND_USER;
    }
    lock_release(&page_state.lock, irq);
    if (!r)
        return NULL;
    if (zeroed)
        *zeroed = zero;
    return (void *)ADDR_OF(pfn);
}

static void page_free_run(struct page_region *r, uintptr_t pfn, size_t count);
static enum ha_fault page_validate_locked(uintptr_t a, size_t count, enum page_kind kind,
                                          struct page_region **region);

/* The allocator's own runs: a bad one is its bug, asserted. */
void page_free(void *p, size_t count)
{
    uintptr_t irq = lock_acquire(&page_state.lock);
    uintptr_t pfn = PFN_OF(p);
    struct page_region *r = region_of_pfn(pfn);
    HA_ASSERT(r != NULL && count != 0 && count <= r->end_pfn - pfn, p);
    size_t i = pfn - r->base_pfn;
    /* Every page allocated: a run freed twice would corrupt the maps. */
    HA_ASSERT(bits_find(r->bitmap, i, i + count, false) == i + count, p);
    page_free_run(r, pfn, count);
    lock_release(&page_state.lock, irq);
}

enum ha_fault page_free_checked(void *p, size_t count, enum page_kind kind)
{
    uintptr_t irq = lock_acquire(&page_state.lock);
    struct page_region *r = NULL;
    enum ha_fault f = page_validate_locked((uintptr_t)p, count, kind, &r);
    if (f == FAULT_NONE)
        page_free_run(r, PFN_OF(p), count);
    lock_release(&page_state.lock, irq);
    return f;
}

/* ------------------------------------------------------- frame caches */

size_t page_take_frames(uintptr_t *out, size_t n)
{
    size_t got = 0;
    uintptr_t irq = lock_acquire(&page_state.lock);
    unsigned nr = atomic_load_explicit(&page_region_count, memory_order_relaxed);
    while (got < n) {
        /* Smallest block first: the leftovers of earlier splits, so the
         * caches do not break up the large blocks. */
        struct page_region *r = NULL;
        unsigned o = PAGE_ORDERS;
        for (unsigned q = 0; q < nr; q++)
            if (page_regions[q].nonempty && ha_ctz(page_regions[q].nonempty) < o) {
                r = &page_regions[q];
                o = ha_ctz(r->nonempty);
            }
        if (!r)
            break;
        uintptr_t pfn = map_first(r, o);
        block_remove(r, pfn, o);
        size_t k = (size_t)1 << o;
        if (k > n - got) {
            blocks_insert_range(r, pfn + (n - got), pfn + k);
            k = n - got;
        }
        for (size_t i = 0; i < k; i++) {
            bool z = page_state.zero_free && r->zero && bits_test(r->zero, pfn - r->base_pfn + i);
            out[got + i] = ADDR_OF(pfn + i) | (uintptr_t)z;
        }
        got += k;
        region_take(r, pfn, k, PAGE_KIND_FRAME); /* takes the zero bits read above */
        /* Used here, free to the caches' callers: no peak to raise. */
        free_pages_add(-(intptr_t)k);
        used_pages_add((intptr_t)k);
    }
    lock_release(&page_state.lock, irq);
    return got;
}

void page_give_frames(const uintptr_t *frames, size_t n)
{
    uintptr_t irq = lock_acquire(&page_state.lock);
    for (size_t k = 0; k < n; k++) {
        uintptr_t pfn = PFN_OF(frames[k]);
        struct page_region *r = region_of_pfn(pfn);
        HA_ASSERT(r != NULL, frames[k]);
        size_t i = pfn - r->base_pfn;
        HA_ASSERT(bits_test(r->bitmap, i) && kinds_get(r->kinds, i) == PAGE_KIND_FRAME, frames[k]);
        HA_ASSERT(page_state.used_pages > 0, frames[k]);
        used_pages_add(-1);
        free_pages_add(1);
        kinds_set(r->kinds, i, 1, PAGE_KIND_USER); /* free pages are USER */
        region_free_run(r, pfn, 1, frames[k] & 1);
    }
    lock_release(&page_state.lock, irq);
}

size_t page_count_frames(void)
{
    size_t n = 0;
    uintptr_t irq = lock_acquire(&page_state.lock);
    unsigned nr = atomic_load_explicit(&page_region_count, memory_order_relaxed);
    for (unsigned q = 0; q < nr; q++) {
        const struct page_region *r = &page_regions[q];
        for (size_t w = 0; w < region_kind_words(r->npages); w++)
            n += ha_popcount(kinds_frame_bits(kinds_word(r->kinds, 8 * w)));
    }
    lock_release(&page_state.lock, irq);
    return n; /* bytes past npages are kind 0 */
}

/* Free the run [pfn, pfn + count) of r, every page of which is allocated
 * with the kind of its first.  Lock held. */
static void page_free_run(struct page_region *r, uintptr_t pfn, size_t count)
{
    const void *p = (const void *)ADDR_OF(pfn);
    size_t i = pfn - r->base_pfn;
    unsigned kind = kinds_get(r->kinds, i);
    page_state.user_frees += kind == PAGE_KIND_USER;
    if (kind == PAGE_KIND_SYSTEM) {
        HA_ASSERT(r->system_pages >= count, p);
        r->system_pages -= count;
    } else {
        HA_ASSERT(page_state.used_pages >= count, p);
        used_pages_add(-(intptr_t)count);
    }
    if (kind != PAGE_KIND_USER) /* free pages are USER */
        kinds_set(r->kinds, i, count, PAGE_KIND_USER);
    free_pages_add((intptr_t)count);
    region_free_run(r, pfn, count, false);
}

bool page_claim(void *p, size_t count, enum page_kind kind)
{
    uintptr_t pfn = PFN_OF(p);
    if (((uintptr_t)p & (HA_PAGE_SIZE - 1)) || count == 0)
        return false;
    uintptr_t irq = lock_acquire(&page_state.lock);
    struct page_region *r = region_of_pfn(pfn);
    bool ok = r && count <= r->end_pfn - pfn &&
              bits_find(r->bitmap, pfn - r->base_pfn, pfn - r->base_pfn + count, true) ==
                  pfn - r->base_pfn + count;
    if (ok) {
        region_carve(r, pfn, count);
        region_take(r, pfn, count, (unsigned)kind);
        page_count_taken(r, count, (unsigned)kind);
    }
    lock_release(&page_state.lock, irq);
    return ok;
}

/* page_validate's verdict; lock held. */
static enum ha_fault page_validate_locked(uintptr_t a, size_t count, enum page_kind kind,
                                          struct page_region **region)
{
    if ((a & (HA_PAGE_SIZE - 1)) || count == 0 || count > (SIZE_MAX >> HA_PAGE_SHIFT) ||
        (count << HA_PAGE_SHIFT) - 1 > UINTPTR_MAX - a)
        return FAULT_UNALIGNED;
    uintptr_t pfn = PFN_OF(a);
    struct page_region *r = region_of_pfn(pfn);
    if (!r || count > r->end_pfn - pfn)
        return FAULT_FOREIGN;
    *region = r;
    size_t i = pfn - r->base_pfn;
    if (count == 1) { /* the common frame: one bit, one kind */
        if (!bits_test(r->bitmap, i))
            return FAULT_DOUBLE_FREE;
        unsigned k = kinds_get(r->kinds, i);
        if (k == (unsigned)kind)
            return FAULT_NONE;
        if (k == PAGE_KIND_SYSTEM)
            return FAULT_RESERVED;
        if (k == PAGE_KIND_FRAME && kind == PAGE_KIND_USER)
            return FAULT_DOUBLE_FREE;
        return kind == PAGE_KIND_USER ? FAULT_BYTES_NOT_PAGES : FAULT_NOT_ALLOCATED;
    }
    if (bits_find(r->bitmap, i, i + count, false) != i + count)
        return FAULT_DOUBLE_FREE;
    if (kind == PAGE_KIND_USER ? kinds_all_user(r->kinds, i, count)
                               : kinds_find(r->kinds, i, count, (unsigned)kind, false) == i + count)
        return FAULT_NONE; /* the common case: one pass */
    /* A frame in a CPU cache is free, though allocated to the page
     * allocator: a run holding one was freed before. */
    if (kind == PAGE_KIND_USER && kinds_find(r->kinds, i, count, PAGE_KIND_FRAME, true) != i + count)
        return FAULT_DOUBLE_FREE;
    if (kinds_find(r->kinds, i, count, PAGE_KIND_SYSTEM, true) != i + count)
        return FAULT_RESERVED;
    if (kinds_find(r->kinds, i, count, (unsigned)kind, false) != i + count)
        return kind == PAGE_KIND_USER ? FAULT_BYTES_NOT_PAGES : FAULT_NOT_ALLOCATED;
    return FAULT_NONE;
}

enum ha_fault page_validate(const void *p, size_t count, enum page_kind kind)
{
    uintptr_t irq = lock_acquire(&page_state.lock);
    struct page_region *r;
    enum ha_fault f = page_validate_locked((uintptr_t)p, count, kind, &r);
    lock_release(&page_state.lock, irq);
    return f;
}

bool page_is_allocated(uintptr_t addr)
{
    uintptr_t pfn = PFN_OF(addr);
    struct page_region *r = region_of_pfn(pfn);
    if (!r)
        return false;
    size_t i = pfn - r->base_pfn;
    return (__atomic_load_n(&r->bitmap[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1u;
}

void page_set_aux(const void *p, size_t count, uint8_t v)
{
    uintptr_t pfn = PFN_OF((uintptr_t)p);
    struct page_region *r = region_of_pfn(pfn);
    HA_ASSERT(r && count <= r->npages - (pfn - r->base_pfn) && pfn % (1u << PAGE_AUX_ORDER) == 0 &&
                  count % (1u << PAGE_AUX_ORDER) == 0,
              p);
    for (uintptr_t g = pfn >> PAGE_AUX_ORDER, end = (pfn + count) >> PAGE_AUX_ORDER; g < end; g++)
        ha_store_relaxed8((uint8_t *)(r->aux_at + g), v);
}

/* ------------------------------------------------------- stats, check */

/* Longest run of free pages in r (not a hot path: a bitmap scan). */
static size_t region_largest_run(const struct page_region *r)
{
    size_t best = 0;
    for (size_t i = bits_find(r->bitmap, 0, r->npages, false); i < r->npages;) {
        size_t j = bits_find(r->bitmap, i, r->npages, true);
        if (j - i > best)
            best = j - i;
        i = bits_find(r->bitmap, j, r->npages, false);
    }
    return best;
}

/* Adds the counters to *out; pages_largest_run becomes the larger of what
 * *out holds and ours (a run does not add up across allocators). */
void page_frame_mark(uintptr_t a, bool free)
{
    uintptr_t pfn = PFN_OF(a);
    struct page_region *r = region_of_pfn(pfn);
    HA_ASSERT(r != NULL, a);
    if (free)
        bits_clear(r->bitmap, pfn - r->base_pfn, 1);
    else
        bits_set(r->bitmap, pfn - r->base_pfn, 1);
}

uintptr_t page_lock(void)
{
    return lock_acquire(&page_state.lock);
}

void page_unlock(uintptr_t irq)
{
    lock_release(&page_state.lock, irq);
}

void page_stats_locked(struct ha_stats *out)
{
    unsigned n = atomic_load_explicit(&page_region_count, memory_order_relaxed);
    size_t largest = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct page_region *r = &page_regions[i];
        size_t run = region_largest_run(r);
        if (run > largest)
            largest = run;
        out->bytes_meta += r->meta_pages * HA_PAGE_SIZE;
        out->bytes_total += r->npages * HA_PAGE_SIZE;
    }
    out->pages_total += page_state.free_pages + page_state.used_pages;
    out->pages_used += page_state.used_pages;
    out->pages_free += page_state.free_pages;
    out->pages_peak += atomic_load_explicit(&page_peak, memory_order_relaxed);
    out->page_allocs += page_state.user_allocs;
    out->page_frees += page_state.user_frees;
    out->bytes_free += page_state.free_pages * HA_PAGE_SIZE;
    if (largest > out->pages_largest_run)
        out->pages_largest_run = largest;
}

/* Bits of word w of a level of nbits bits that stand for something. */
static uint64_t map_word_valid(size_t nbits, size_t w)
{
    if (nbits >= 64 * (w + 1))
        return ~0ull;
    return nbits > 64 * w ? (1ull << (nbits - 64 * w)) - 1 : 0;
}

/* One free block of r, of order k at pfn, against F1, F3 and F4. */
static int check_block(const struct page_region *r, unsigned k, uintptr_t pfn)
{
    const void *at = (const void *)ADDR_OF(pfn);
    uintptr_t size = PFN_ONE << k;
    if (pfn < r->base_pfn || size > r->end_pfn - pfn)
        return check_fail("page: free block outside its region", at);
    size_t i = pfn - r->base_pfn;
    if (bits_find(r->bitmap, i, i + size, true) != i + size)
        return check_fail("page: free block has pages allocated in the bitmap", at);
    if (kinds_find(r->kinds, i, size, PAGE_KIND_USER, false) != i + size)
        return check_fail("page: free block has pages of a kind other than USER", at);
    for (unsigned j = k + 1; j < r->norders; j++) {
        uintptr_t h = pfn & ~((PFN_ONE << j) - 1);
        if (h >= r->base_pfn && h - r->base_pfn + (PFN_ONE << j) <= r->npages &&
            map_test(&r->maps[j], map_index(&r->maps[j], h, j)))
            return check_fail("page: free block inside another", at);
    }
    uintptr_t buddy = pfn ^ size;
    if (buddy >= r->base_pfn && buddy - r->base_pfn + size <= r->npages &&
        map_test(&r->maps[k], map_index(&r->maps[k], buddy, k)))
        return check_fail("page: free buddies not merged", at);
    return 0;
}

/* The order maps of r against F1..F4; adds the pages of its free blocks
 * to *listed. */
static int check_maps(const struct page_region *r, size_t *listed)
{
    const void *at = (const void *)ADDR_OF(r->base_pfn);
    for (unsigned k = 0; k < r->norders; k++) {
        const struct page_order_map *m = &r->maps[k];
        size_t nbits = m->nbits;
        for (unsigned l = 0; l < m->nlevels; l++) {
            size_t nw = nbits > 64 ? (nbits + 63) / 64 : 1;
            for (size_t w = 0; w < nw; w++) {
                uint64_t v = m->level[l][w];
                if (v & ~map_word_valid(nbits, w))
                    return check_fail("page: order map bit past its end", at);
                if (l + 1 < m->nlevels && bits_test(m->level[l + 1], w) != (v != 0))
                    return check_fail("page: order map summary bit wrong", at);
                for (; l == 0 && v; v &= v - 1) {
                    uintptr_t pfn = (m->origin + 64 * w + ha_ctz(v)) << k;
                    if (*listed + (PFN_ONE << k) > page_state.free_pages)
                        return check_fail("page: free blocks hold more than the free counter",
                                          (const void *)ADDR_OF(pfn));
                    if (check_block(r, k, pfn))
                        return -1;
                    *listed += PFN_ONE << k;
                }
            }
            nbits = nw;
        }
        if (((r->nonempty >> k) & 1) != (m->level[m->nlevels - 1][0] != 0))
            return check_fail("page: non-empty order mask wrong", at);
    }
    if (r->nonempty >> r->norders)
        return check_fail("page: non-empty order mask wrong", at);
    return 0;
}

static int page_check_locked(void)
{
    size_t listed = 0, zeros = 0;
    size_t clear = 0, system = 0, total = 0;
    unsigned n = atomic_load_explicit(&page_region_count, memory_order_relaxed);
    for (unsigned k = 0; k < n; k++) {
        const struct page_region *r = &page_regions[k];
        const void *at = (const void *)ADDR_OF(r->base_pfn);
        size_t bw = region_bitmap_words(r->npages);
        if (r->npages % 64 && (~r->bitmap[bw - 1] >> (r->npages % 64)))
            return check_fail("page: bitmap bits past the region end clear", at);
        size_t mi = r->meta_pfn - r->base_pfn;
        if (r->meta_pfn < r->base_pfn || r->meta_pages > r->npages - mi ||
            bits_find(r->bitmap, mi, mi + r->meta_pages, false) != mi + r->meta_pages ||
            kinds_find(r->kinds, mi, r->meta_pages, PAGE_KIND_SYSTEM, false) != mi + r->meta_pages)
            return check_fail("page: region metadata pages not SYSTEM", at);
        size_t sys = kinds_count_system(r->kinds, r->npages);
        if (sys != r->system_pages)
            return check_fail("page: SYSTEM page count wrong", at);
        for (size_t w = 0; w < region_kind_words(r->npages); w++) {
            uint64_t kw = kinds_word(r->kinds, 8 * w);
            /* Bytes 0..4 only: no bit above the third, and bit 2 alone. */
            if ((kw & ~0x0707070707070707ull) || ((kw >> 2) & (kw | kw >> 1) & KIND_BYTE_LOW))
                return check_fail("page: kind map byte not a kind", (const void *)ADDR_OF(r->base_pfn + 8 * w));
            if (!kinds_system_bits(kw) && !kinds_frame_bits(kw))
                continue;
            for (size_t i = 8 * w; i < 8 * w + 8 && i < r->npages; i++) {
                unsigned kind = kinds_get(r->kinds, i);
                if ((kind == PAGE_KIND_SYSTEM || kind == PAGE_KIND_FRAME) && !bits_test(r->bitmap, i))
                    return check_fail(kind == PAGE_KIND_SYSTEM ? "page: SYSTEM page free in the bitmap"
                                                            : "page: FRAME page free in the bitmap",
                                      (const void *)ADDR_OF(r->base_pfn + i));
            }
        }
        if (check_maps(r, &listed))
            return -1;
        for (size_t w = 0; r->zero && w < bw; w++) {
            if (r->zero[w] & r->bitmap[w])
                return check_fail("page: zero bit on an allocated page", (const void *)ADDR_OF(r->base_pfn + 64 * w));
            zeros += ha_popcount(r->zero[w]);
        }
        clear += bits_count_clear(r->bitmap, r->npages);
        system += sys;
        total += r->npages;
    }
    if (listed != page_state.free_pages)
        return check_fail("page: free blocks and free counter disagree", NULL);
    if (zeros != page_state.zero_free)
        return check_fail("page: zero bits and their counter disagree", NULL);
    if (clear != page_state.free_pages)
        return check_fail("page: free bits in the bitmaps and free counter disagree", NULL);
    if (total - clear - system != page_state.used_pages)
        return check_fail("page: used counter disagrees with the bitmaps", NULL);
    /* No "peak >= used" here: like bytes_peak, pages_peak is sampled by
     * each CPU at its own highs (exact on one CPU), and ha_get_stats
     * settles it under every lock before it reports. */
    return 0;
}

int page_check(void)
{
    uintptr_t irq = lock_acquire(&page_state.lock);
    int rc = page_check_locked();
    lock_release(&page_state.lock, irq);
    return rc;
}

void page_fork_lock(bool take)
{
    static uintptr_t irq;
    lock_fork(&page_state.lock, take, &irq);
}
