/*
 * tlsf.c: the mid and large byte allocator.
 *
 * Mid requests (no slab class in use holds them, size <= HA_MID_MAX, align
 * <= HA_PAGE_SIZE: above 1 KiB in a heap under 48 MiB, above 8 KiB under
 * 96 MiB, else above 64 KiB, see slab.c) are served by a two-level
 * segregated fit (TLSF, after M. Masmano et al. and Matt Conte's
 * implementation) over shared 256 KiB arenas taken from the page
 * allocator.  Larger or more aligned requests, and a mid request when no
 * 256 KiB run is left for an arena, get an arena of their own
 * ("dedicated"), sized to the request, that goes back to the page
 * allocator as soon as its block is freed.
 *
 * Each CPU has a heap of its own (a control block and the arenas it took),
 * so CPUs allocate without contending for one lock; a block freed on
 * another CPU goes back to its arena's heap, named in the arena header.
 * Shared arenas are aligned to their size, so any block finds its arena
 * header by rounding down (a dedicated arena's header sits right before
 * its block).
 *
 * Every operation is O(1): a size maps to a (first, second) level list by
 * two shifts, a suitable non-empty list is found with one ctz on each level's
 * bitmap, and neighbours are found through the block sizes and footers.
 * Nothing walks a list whose length grows with the heap, except tlsf_check.
 *
 * Parameters: 11 first-level x 16 second-level lists (sizes below 256 B in
 * steps of 16, then 16 lists per power of two up to the 256 KiB arena), a
 * 16-byte header, 32-byte minimum payload (48-byte minimum block), and a
 * control block of about 1.5 KiB.
 *
 * Memory layout
 *
 *   arena:   [arena header 48 B][block][block]...[block][sentinel 16 B]
 *   block:   [size|flags 8 B][check 8 B][payload ........................]
 *   free:    [size|flags][check][next][prev][ poisoned ...... ][footer]
 *
 * A block header sits right before its payload.  The check word mixes the
 * header address, the size word and a key that differs for used and free
 * blocks, so that a stray pointer, a header overwritten by the kernel and a
 * block already freed are told apart cheaply on every free.  A free block
 * keeps a pointer to its own header in the last word of its payload (the
 * footer): the next block finds its free predecessor there, which is why
 * only free blocks need it and why the minimum payload is 32 bytes (links,
 * footer, rounded to 16).  The sentinel is a used block of size 0 at the
 * arena end, so that a walk or a merge stops there without a bounds check.
 *
 * In a dedicated arena the arena header is placed right before the block
 * header (after a gap, when the payload needs more than 64-byte alignment)
 * and the payload is the request rounded to 16: the rest of the last page,
 * after the sentinel, is counted as metadata.  For align > HA_PAGE_SIZE the
 * run is taken aligned, and its front pages, up to the page before the
 * payload, go back to the page allocator at once.
 */
#include "ha_internal.h"

/* ------------------------------------------------------------ parameters */

enum tlsf_params {
    /* Block sizes are multiples of HA_MIN_ALIGN; headers are 16 bytes so
     * that every payload keeps that alignment. */
    ALIGN_LOG2 = 4,
    /* 16 lists per power of two: a search rounds a size up by at most 1/16,
     * and the control block stays at 11 x 16 list heads (1.4 KiB). */
    SL_LOG2 = 4,
    SL_COUNT = 1 << SL_LOG2,
    /* Sizes below 256 bytes all map to first level 0, in steps of 16. */
    FL_SHIFT = SL_LOG2 + ALIGN_LOG2,
    SMALL_LIMIT = 1 << FL_SHIFT,
    /* The largest free block is a whole shared arena's payload (< 2^18). */
    FL_COUNT = 18 - FL_SHIFT + 1,
};

#define BLOCK_HDR ((size_t)16)
#define ARENA_HDR ((size_t)48)
#define MIN_PAYLOAD ((size_t)32)                 /* links + footer, rounded */
#define MIN_BLOCK (BLOCK_HDR + MIN_PAYLOAD)      /* smallest split-off part */

#define SHARED_PAGES ((size_t)64)
/* Empty shared arenas a heap keeps rather than giving them back: what a
 * mid-size working set that shrinks and grows again would otherwise pay in
 * arena set-up and release (latency) each time.  ha_trim gives them back,
 * as does an allocation that finds no free page. */
#define SPARE_ARENAS 2
#define SHARED_BYTES (SHARED_PAGES * HA_PAGE_SIZE)
/* The one block of an empty shared arena. */
#define SHARED_PAYLOAD (SHARED_BYTES - ARENA_HDR - 2 * BLOCK_HDR)

/* Flag bits in the low bits of a block's size word (sizes are multiples of
 * 16, so the low four bits are free for them). */
#define BLOCK_FREE ((size_t)1)      /* on a free list */
#define BLOCK_PREV_FREE ((size_t)2) /* the physical predecessor is free: its footer is valid */
#define BLOCK_FIRST ((size_t)4)     /* first block of its arena: the arena header is right before */
#define BLOCK_FLAGS ((size_t)15)    /* bit 3 is always zero */

/* The check word's keys (ha_check_keys, from the secret) differ for a used
 * header and a freed one: the two differ in every byte of the check, not
 * only in the flag bit. */
#define ARENA_KEY 0x4841524541524E41ull /* "HARENA" */

#define ARENA_DEDICATED 1u

HA_STATIC_ASSERT(SHARED_PAYLOAD < ((size_t)1 << (FL_COUNT - 1 + FL_SHIFT)),
                 "a whole shared arena must map to a list below FL_COUNT");
HA_STATIC_ASSERT(HA_MID_MAX + HA_PAGE_SIZE + MIN_BLOCK + HA_MID_MAX / 8 < SHARED_PAYLOAD,
                 "the largest aligned mid request, rounded up for the search, fits one arena");
HA_STATIC_ASSERT((ARENA_HDR + BLOCK_HDR) % HA_MIN_ALIGN == 0, "first payload aligned");
HA_STATIC_ASSERT(SL_COUNT <= 32 && FL_COUNT <= 32, "bitmaps are 32-bit");

/* -------------------------------------------------------------- structures */

/*
 * Block header.  Invariants (tlsf_check verifies each):
 *  - check == block_check_for(header address, size word);
 *  - payload size a multiple of 16 and >= MIN_PAYLOAD (0 only for the
 *    sentinel, which is used and last); bit 3 of the size word is zero;
 *  - BLOCK_FIRST exactly on the block right after the arena header;
 *  - BLOCK_PREV_FREE exactly when the physical predecessor is free;
 *  - no two physically adjacent free blocks (merges are eager);
 *  - a free block's footer (last payload word) points to its header, it is
 *    on the list its size maps to, and its payload beyond links and footer
 *    holds HA_POISON_FREE (checked build; headers of blocks absorbed by a
 *    merge may remain inside, marked free);
 *  - only shared arenas hold free blocks; a dedicated arena holds one used
 *    block.
 */
typedef struct block {
    size_t size;    /* payload bytes | BLOCK_* flags */
    uint64_t check; /* block_check_for(this, size) */
} block_t;

/* Links of a free block: the first two words of its payload. */
typedef struct free_links {
    uintptr_t next; /* link_encode()d: see link_set */
    uintptr_t prev;
} free_links_t;

/*
 * Arena header, right before the arena's first block.  Invariants: magic ==
 * ARENA_KEY ^ its address; [base, base + size) is whole pages of kind ARENA;
 * the sentinel is the last 16 bytes of the range for a shared arena, the 16
 * bytes after the payload for a dedicated one; every arena is on h->arenas;
 * a shared arena is 64 pages with its header at base.
 */
typedef struct arena {
    uint64_t magic;
    uintptr_t base;     /* first page of the arena */
    size_t size;        /* bytes, whole pages */
    struct arena *next; /* list of all arenas, for the checker */
    struct arena *prev;
    uint32_t flags;     /* ARENA_DEDICATED */
    uint32_t heap;      /* index of the owning heap in heap_list */
} arena_t;

HA_STATIC_ASSERT(sizeof(block_t) == BLOCK_HDR, "block header is 16 bytes");
HA_STATIC_ASSERT(sizeof(arena_t) == ARENA_HDR, "arena header is 48 bytes");

/*
 * A heap: one TLSF control block and the arenas it owns, under its lock.
 * Every CPU gets a heap of its own on its first mid or large request (the
 * first CPU the static one), so that CPUs allocate without contending; a
 * block freed on another CPU goes back to the heap that owns its arena,
 * found from the arena header (see heap_of).
 *
 * Invariants: bit sl of sl_map[fl] is set
 * exactly when heads[fl][sl] is not empty, bit fl of fl_map exactly when
 * sl_map[fl] is not zero; the counters equal what a walk of every arena
 * finds: free_bytes the free payload bytes, meta_bytes every arena's bytes
 * less its block payloads, n_free the free blocks, n_arenas the arenas;
 * n_empty shared arenas are entirely free, at most SPARE_ARENAS.
 */
struct heap {
    ha_lock_t lock;
    unsigned index; /* in heap_list, and in the headers of its arenas */
    uint32_t fl_map;
    uint32_t sl_map[FL_COUNT];
    block_t *heads[FL_COUNT][SL_COUNT];
    arena_t *arenas;
    size_t n_empty; /* entirely free shared arenas, kept against thrashing */
    size_t free_bytes;
    size_t meta_bytes;
    size_t n_free;
    size_t n_arenas;
    /* The region of the heap's latest shared arena, where a proven link
     * usually leads: [ram_lo, ram_lo + ram_span] are the addresses at which
     * a free block's header and links lie inside it (0, 0 before any). */
    uintptr_t ram_lo, ram_span;
    /* Byte statistics of the blocks handed out here, kept under the lock
     * every call takes anyway (stats.c reads them lock-free). */
    struct stats_bytes bytes;
};

/* The heaps made so far, densely (heap_list[0] is the static one); an
 * arena names its heap by index here.  Appended under heap_create_lock,
 * then nheaps is published. */
static struct heap heap_static = { .lock = HA_LOCK_INIT };
static struct heap *heap_list[HA_MAX_CPUS];
static _Atomic unsigned nheaps;
static struct heap *_Atomic cpu_heaps[HA_MAX_CPUS];
static ha_lock_t heap_create_lock = HA_LOCK_INIT;

#define HEAP_PAGES ((sizeof(struct heap) + HA_PAGE_SIZE - 1) / HA_PAGE_SIZE)

/* ------------------------------------------------------------ statistics */

/* Lock held. */
HA_INLINE void stats_locked(struct heap *h, intptr_t delta, bool alloc, bool free)
{
    stats_bytes_add(&h->bytes, delta, alloc, free);
}

/* ------------------------------------------------------------ block access */

HA_INLINE size_t block_size(const block_t *b) { return b->size & ~BLOCK_FLAGS; }
HA_INLINE bool block_is_free(const block_t *b) { return (b->size & BLOCK_FREE) != 0; }
HA_INLINE uintptr_t block_payload(const block_t *b) { return (uintptr_t)b + BLOCK_HDR; }
HA_INLINE block_t *block_at(uintptr_t addr) { return (block_t *)addr; }
HA_INLINE block_t *block_of_payload(const void *p) { return block_at((uintptr_t)p - BLOCK_HDR); }
HA_INLINE block_t *block_next(const block_t *b) { return block_at(block_payload(b) + block_size(b)); }
HA_INLINE free_links_t *block_links(const block_t *b) { return (free_links_t *)block_payload(b); }
HA_INLINE block_t **block_footer(const block_t *b)
{
    return (block_t **)(block_payload(b) + block_size(b) - sizeof(block_t *));
}
/* The free predecessor of b (only when b has BLOCK_PREV_FREE). */
HA_INLINE block_t *block_prev(const block_t *b) { return *(block_t **)((uintptr_t)b - sizeof(block_t *)); }

HA_STATIC_ASSERT(BLOCK_FREE == 1, "ha_check_keys is indexed by the free bit");
HA_INLINE uint64_t block_check_for(uintptr_t addr, size_t size_word)
{
    return ((uint64_t)addr * 0x9E3779B97F4A7C15ull) ^ (uint64_t)size_word ^ ha_check_keys[size_word & BLOCK_FREE];
}

HA_INLINE bool block_check_ok(const block_t *b)
{
    return b->check == block_check_for((uintptr_t)b, b->size);
}

/* Every header write goes through here, so the check word is never stale. */
HA_INLINE void block_set(block_t *b, size_t size_word)
{
    /* heap_of reads the size word without a lock: a relaxed atomic store,
     * the same instruction as a plain one. */
    ha_store_relaxed64(&b->size, size_word);
    b->check = block_check_for((uintptr_t)b, size_word);
}

HA_INLINE void block_set_prev_free(block_t *b, bool prev_free)
{
    block_set(b, prev_free ? (b->size | BLOCK_PREV_FREE) : (b->size & ~BLOCK_PREV_FREE));
}

HA_INLINE arena_t *arena_of_first(const block_t *b) { return (arena_t *)((uintptr_t)b - ARENA_HDR); }
HA_INLINE block_t *arena_first(const arena_t *a) { return block_at((uintptr_t)a + ARENA_HDR); }
HA_INLINE uint64_t arena_magic_for(const arena_t *a) { return ARENA_KEY ^ (uint64_t)(uintptr_t)a ^ ha_secret; }

HA_INLINE size_t size_round(size_t size)
{
    size = (size + HA_MIN_ALIGN - 1) & ~(size_t)(HA_MIN_ALIGN - 1);
    return size < MIN_PAYLOAD ? MIN_PAYLOAD : size;
}

/* ------------------------------------------------------- checked build */

#if HA_CHECKED
#define POISON_WORD (0x0101010101010101ull * HA_POISON_FREE)

/* The part of a free block that holds poison: after links, before footer. */
static void poison_block(const block_t *b)
{
    uintptr_t lo = block_payload(b) + sizeof(free_links_t);
    uintptr_t hi = block_payload(b) + block_size(b) - sizeof(block_t *);
    if (hi > lo)
        ha_memset((void *)lo, HA_POISON_FREE, hi - lo);
}

/* First byte in [lo, hi) (8-aligned bounds) that does not hold poison,
 * or 0.  A header of a block absorbed by a merge may remain: it is skipped
 * when it still checks as a freed header. */
static uintptr_t poison_find_bad(uintptr_t lo, uintptr_t hi)
{
    uintptr_t x = lo;
    while (x < hi) {
        const uint64_t *w = (const uint64_t *)x;
        if (x + 32 <= hi &&
            ((w[0] ^ POISON_WORD) | (w[1] ^ POISON_WORD) | (w[2] ^ POISON_WORD) | (w[3] ^ POISON_WORD)) == 0) {
            x += 32; /* four words a step: the walk on every call reads all free memory */
            continue;
        }
        if (*w == POISON_WORD) {
            x += 8;
            continue;
        }
        const block_t *s = block_at(x);
        if ((x & 15) == 0 && x + BLOCK_HDR <= hi && (s->size & BLOCK_FREE) && block_check_ok(s)) {
            x += BLOCK_HDR;
            continue;
        }
        while (*(const unsigned char *)x == HA_POISON_FREE) /* the byte written */
            x++;
        return x;
    }
    return 0;
}

static uintptr_t poison_find_bad_block(const block_t *b)
{
    return poison_find_bad(block_payload(b) + sizeof(free_links_t),
                           block_payload(b) + block_size(b) - sizeof(block_t *));
}

/* Bad poison inside [lo, hi) restricted to the poisoned part of free block
 * b (as it was before being cut). */
static uintptr_t poison_find_bad_part(uintptr_t b_payload, size_t b_size, uintptr_t lo, uintptr_t hi)
{
    uintptr_t plo = b_payload + sizeof(free_links_t);
    uintptr_t phi = b_payload + b_size - sizeof(block_t *);
    if (lo < plo)
        lo = plo;
    if (hi > phi)
        hi = phi;
    return lo < hi ? poison_find_bad(lo, hi) : 0;
}
#endif

/* --------------------------------------------------------------- mapping */

/* The list a free block of payload size belongs to. */
HA_INLINE void mapping_insert(size_t size, unsigned *fl, unsigned *sl)
{
    if (size < SMALL_LIMIT) {
        *fl = 0;
        *sl = (unsigned)(size >> ALIGN_LOG2);
    } else {
        unsigned f = ha_fls(size);
        *sl = (unsigned)(size >> (f - SL_LOG2)) ^ SL_COUNT;
        *fl = f - FL_SHIFT + 1;
    }
}

/* The first list whose every block holds size (size is rounded up to the
 * next list boundary, so that any block found there fits). */
HA_INLINE void mapping_search(size_t size, unsigned *fl, unsigned *sl)
{
    if (size >= SMALL_LIMIT)
        size += ((size_t)1 << (ha_fls(size) - SL_LOG2)) - 1;
    mapping_insert(size, fl, sl);
}

/* ------------------------------------------------------------- free lists */

/*
 * The links of a free block live in memory the kernel gave back, where a
 * write after free can change them.  Each is stored keyed (link_encode:
 * the secret and the address of the word that holds it), and every link
 * is proven before the unlink writes through it (link_prove): it must
 * decode to a free block header with a valid check word inside an arena,
 * whose own link back names this block.  A forged or damaged link is
 * reported as a write after free, and nothing is written.
 */
HA_INLINE void link_set(uintptr_t *slot, const block_t *to)
{
    *slot = link_encode(slot, to);
}

/* A link as stored, unproven: for the checker, which proves it itself. */
HA_INLINE block_t *link_get(const uintptr_t *slot)
{
    return link_decode(slot, *slot);
}

/* What a slot's link is keyed with (the encoding of NULL there): a link is
 * then its target xor the key, so that one key serves to read a slot and
 * to write it again. */
HA_INLINE uintptr_t link_key(const uintptr_t *slot)
{
    return link_encode(slot, 0);
}

/* The unlink's faults, out of line: the proofs inline stay short. */
static HA_COLD void link_fault(const void *addr)
{
    ha_fault(FAULT_USE_AFTER_FREE, addr);
}

/* Is [t, t + header and links) inside a region (so mapped, whatever a link
 * said)?  The search, for a target outside the heap's usual region. */
static HA_NOINLINE bool link_in_ram_search(uintptr_t t)
{
    const struct page_region *r = page_region_of(t >> HA_PAGE_SHIFT);
    return r && t + BLOCK_HDR + sizeof(free_links_t) <= (r->end_pfn << HA_PAGE_SHIFT);
}

/* Prove t, read from slot (a link of b, not NULL), to be a free block whose
 * link back (at back) names b, and return the key of that back link, for
 * the unlink to rewrite it.  Faults otherwise, having written nothing.
 * Inside a region, memory is mapped: the header and links there can be read
 * whatever the link said, and only a genuine free block (a check word needs
 * the secret) whose link back names b is believed.  The region is first
 * looked for where the heap's arenas usually are (ram_lo, ram_span). */
HA_INLINE uintptr_t link_prove(const struct heap *h, const block_t *b, const uintptr_t *slot, block_t *t,
                               bool back_is_prev)
{
    uintptr_t a = (uintptr_t)t;
    if (HA_UNLIKELY((a & (HA_MIN_ALIGN - 1)) ||
                    (a - h->ram_lo > h->ram_span && !link_in_ram_search(a)) ||
                    !block_is_free(t) || !block_check_ok(t)))
        link_fault(slot);
    const uintptr_t *back = back_is_prev ? &block_links(t)->prev : &block_links(t)->next;
    uintptr_t key = link_key(back);
    if (HA_UNLIKELY((*back ^ key) != (uintptr_t)b))
        link_fault((const void *)block_payload(b));
    return key;
}

/* Put free block b on the list its size maps to: inline where an
 * allocation or a free puts one back, a call elsewhere. */
HA_INLINE void list_push(struct heap *h, block_t *b)
{
    unsigned fl, sl;
    size_t size = block_size(b);
    mapping_insert(size, &fl, &sl);
    block_t *head = h->heads[fl][sl];
    link_set(&block_links(b)->next, head);
    link_set(&block_links(b)->prev, 0);
    if (head)
        link_set(&block_links(head)->prev, b);
    h->heads[fl][sl] = b;
    h->sl_map[fl] |= 1u << sl;
    h->fl_map |= 1u << fl;
    h->free_bytes += size;
    h->n_free++;
}

static void list_insert(struct heap *h, block_t *b)
{
    list_push(h, b);
}

/* Take b off list (fl, sl), the one its size maps to. */
HA_INLINE void list_remove_at(struct heap *h, block_t *b, unsigned fl, unsigned sl)
{
    free_links_t *l = block_links(b);
    block_t *next = (block_t *)(l->next ^ link_key(&l->next));
    block_t *prev = (block_t *)(l->prev ^ link_key(&l->prev));
    /* Both links proven before either is written through; each proof
     * gives the key of the word the unlink rewrites. */
    uintptr_t next_key = next ? link_prove(h, b, &l->next, next, true) : 0;
    uintptr_t prev_key = prev ? link_prove(h, b, &l->prev, prev, false) : 0;
    if (next)
        block_links(next)->prev = (uintptr_t)prev ^ next_key;
    if (prev) {
        block_links(prev)->next = (uintptr_t)next ^ prev_key;
    } else {
        if (HA_UNLIKELY(h->heads[fl][sl] != b))
            link_fault((const void *)block_payload(b));
        h->heads[fl][sl] = next;
        if (!next) {
            h->sl_map[fl] &= ~(1u << sl);
            if (!h->sl_map[fl])
                h->fl_map &= ~(1u << fl);
        }
    }
    h->free_bytes -= block_size(b);
    h->n_free--;
}

/* Take b off its list: inline for the free's merges, a call elsewhere. */
HA_INLINE void list_unlink(struct heap *h, block_t *b)
{
    unsigned fl, sl;
    mapping_insert(block_size(b), &fl, &sl);
    list_remove_at(h, b, fl, sl);
}

static void list_remove(struct heap *h, block_t *b)
{
    list_unlink(h, b);
}

/* A free block of at least size bytes, still on its list (*fl, *sl), or
 * NULL. */
HA_INLINE block_t *list_find(struct heap *h, size_t size, unsigned *fl_out, unsigned *sl_out)
{
    unsigned fl, sl;
    mapping_search(size, &fl, &sl);
    if (fl >= FL_COUNT)
        return 0;
    uint32_t sl_bits = h->sl_map[fl] & (~0u << sl);
    if (!sl_bits) {
        uint32_t fl_bits = fl + 1 < 32 ? h->fl_map & (~0u << (fl + 1)) : 0;
        if (!fl_bits)
            return 0;
        fl = ha_ctz(fl_bits);
        sl_bits = h->sl_map[fl];
    }
    sl = ha_ctz(sl_bits);
    *fl_out = fl;
    *sl_out = sl;
    return h->heads[fl][sl];
}

/* ----------------------------------------------------------------- arenas */

static void arena_link(struct heap *h, arena_t *a, uintptr_t base, size_t size, uint32_t flags)
{
    a->magic = arena_magic_for(a);
    a->base = base;
    a->size = size;
    a->flags = flags;
    a->heap = h->index;
    a->prev = 0;
    a->next = h->arenas;
    if (h->arenas)
        h->arenas->prev = a;
    h->arenas = a;
    h->n_arenas++;
}

/* Unlink a (its block already off every list) and give its pages back. */
static void arena_release(struct heap *h, arena_t *a)
{
    /* Only the owner unlinks an arena (a list head of another heap must
     * never change under this lock). */
    HA_ASSERT(a->heap == h->index && a->magic == arena_magic_for(a), a);
    if (a->next)
        a->next->prev = a->prev;
    if (a->prev)
        a->prev->next = a->next;
    else
        h->arenas = a->next;
    h->n_arenas--;
    h->meta_bytes -= a->size - block_size(arena_first(a));
    /* Leave no valid-looking arena or block header in pages we give away. */
    a->magic = 0;
    block_t *first = arena_first(a);
    first->check = 0;
    page_free((void *)a->base, a->size / HA_PAGE_SIZE);
}

/* A new shared arena whose one free block is on its list; false when the
 * page allocator has no 64-page run left. */
static bool arena_add_shared(struct heap *h)
{
    /* Aligned to its size: a block finds its arena header by rounding down. */
    void *p = page_alloc(SHARED_PAGES, SHARED_BYTES, PAGE_KIND_ARENA, 0);
    if (!p)
        return false;
    arena_t *a = p;
    arena_link(h, a, (uintptr_t)p, SHARED_BYTES, 0);
    const struct page_region *r = page_region_of((uintptr_t)p >> HA_PAGE_SHIFT);
    if (r) {
        h->ram_lo = r->base_pfn << HA_PAGE_SHIFT;
        h->ram_span = (r->npages << HA_PAGE_SHIFT) - BLOCK_HDR - sizeof(free_links_t);
    }
    block_t *b = arena_first(a);
    block_set(b, SHARED_PAYLOAD | BLOCK_FREE | BLOCK_FIRST);
    *block_footer(b) = b;
    block_set(block_next(b), 0 | BLOCK_PREV_FREE);
#if HA_CHECKED
    poison_block(b);
#endif
    h->meta_bytes += SHARED_BYTES - SHARED_PAYLOAD;
    list_insert(h, b);
    h->n_empty++; /* until block_take takes from it */
    return true;
}

/* ------------------------------------------------------------- shared path */

/* Cut the used block [payload, payload + need) out of free block b (already
 * off its list): a leading gap for alignment and a trailing remainder become
 * free blocks of their own when big enough.  Returns the used block.
 * Checked build: *bad gets the first poison byte the caller's part spoils. */
static block_t *block_take(struct heap *h, block_t *b, size_t need, size_t align, uintptr_t *bad)
{
    uintptr_t orig_payload = block_payload(b);
    size_t orig_size = block_size(b);
    size_t first = b->size & BLOCK_FIRST;
    size_t prev_free = 0;

    if (first && orig_size == SHARED_PAYLOAD)
        h->n_empty--; /* an empty arena, taken into use */

    if ((orig_payload & (align - 1)) != 0) {
        /* The gap must be a block of its own (>= MIN_BLOCK) so that padding
         * stays usable and the header stays right before the payload. */
        uintptr_t p = ha_align_up(orig_payload + MIN_BLOCK, align);
        size_t gap = p - orig_payload;
        block_set(b, (gap - BLOCK_HDR) | BLOCK_FREE | first);
        *block_footer(b) = b;
        list_insert(h, b);
#if HA_CHECKED
        /* A freed header absorbed earlier may straddle the new end of the
         * poisoned part: the cut blocks are poisoned afresh. */
        poison_block(b);
#endif
        h->meta_bytes += BLOCK_HDR;
        b = block_of_payload((void *)p);
        block_set(b, orig_size - gap); /* size only; flags set below */
        first = 0;
        prev_free = BLOCK_PREV_FREE;
    }

    size_t size = block_size(b);
    HA_ASSERT(size >= need, b);
    if (size - need >= MIN_BLOCK) {
        block_t *rest = block_at(block_payload(b) + need);
        block_set(rest, (size - need - BLOCK_HDR) | BLOCK_FREE);
        *block_footer(rest) = rest; /* the successor's BLOCK_PREV_FREE stays */
        list_push(h, rest);
#if HA_CHECKED
        poison_block(rest);
#endif
        h->meta_bytes += BLOCK_HDR;
        size = need;
    } else {
        block_set_prev_free(block_next(b), false);
    }
    block_set(b, size | first | prev_free);
#if HA_CHECKED
    *bad = poison_find_bad_part(orig_payload, orig_size, block_payload(b), block_payload(b) + size);
#else
    (void)bad;
#endif
    return b;
}

static void *shared_alloc(struct heap *h, size_t size, size_t align, size_t accounted)
{
    size_t need = size_round(size);
    /* Room for the worst-case leading gap: up to align - 16 bytes more than
     * a minimum block. */
    size_t search = align > HA_MIN_ALIGN ? need + align + MIN_BLOCK : need;
    uintptr_t bad = 0;

    uintptr_t irq = lock_acquire(&h->lock);
    unsigned fl, sl;
    block_t *b = list_find(h, search, &fl, &sl);
    if (HA_UNLIKELY(!b)) {
        if (!arena_add_shared(h)) {
            lock_release(&h->lock, irq);
            return 0;
        }
        b = list_find(h, search, &fl, &sl);
        HA_ASSERT(b != 0, h->arenas);
    }
    list_remove_at(h, b, fl, sl);
    b = block_take(h, b, need, align, &bad);
    stats_locked(h, (intptr_t)(accounted ? accounted : block_size(b)), true, false);
    lock_release(&h->lock, irq);
    if (HA_UNLIKELY(bad))
        ha_fault(FAULT_USE_AFTER_FREE, (void *)bad);
    return (void *)block_payload(b);
}

/* ---------------------------------------------------------- dedicated path */

static void *dedicated_alloc(struct heap *h, size_t size, size_t align, bool *zeroed, size_t accounted)
{
    /* No region holds half the address space: this bound keeps every sum
     * below free of overflow. */
    if (size > SIZE_MAX / 4 || align > SIZE_MAX / 4)
        return 0;
    size_t need = size_round(size);
    size_t hdr_off; /* payload offset from the arena's first page */
    size_t front;   /* pages before the arena's first page, given back */
    if (align > HA_PAGE_SIZE) {
        hdr_off = HA_PAGE_SIZE;
        front = align / HA_PAGE_SIZE - 1;
    } else {
        hdr_off = align > ARENA_HDR + BLOCK_HDR ? align : ARENA_HDR + BLOCK_HDR;
        front = 0;
    }
    size_t pages = (hdr_off + need + BLOCK_HDR + HA_PAGE_SIZE - 1) / HA_PAGE_SIZE;
    size_t count;
    if (__builtin_add_overflow(pages, front, &count))
        return 0;

    bool z = false;
    void *run = page_alloc(count, align > HA_PAGE_SIZE ? align : HA_PAGE_SIZE, PAGE_KIND_ARENA, &z);
    if (!run)
        return 0;
    uintptr_t base = (uintptr_t)run + front * HA_PAGE_SIZE;
    if (front)
        page_free(run, front);

    uintptr_t p = base + hdr_off;
    arena_t *a = (arena_t *)(p - BLOCK_HDR - ARENA_HDR);
    block_t *b = block_of_payload((void *)p);

    uintptr_t irq = lock_acquire(&h->lock);
    arena_link(h, a, base, pages * HA_PAGE_SIZE, ARENA_DEDICATED);
    block_set(b, need | BLOCK_FIRST);
    block_set(block_next(b), 0);
    h->meta_bytes += a->size - need;
    stats_locked(h, (intptr_t)(accounted ? accounted : need), true, false);
    lock_release(&h->lock, irq);

    /* Headers and sentinel lie outside the payload: zeroed pages stay
     * zero where the caller looks. */
    *zeroed = z;
    return (void *)p;
}

/* ------------------------------------------------------------------ heaps */

/* Make cpu's heap: the static one for the first CPU, then a page each; the
 * static one (shared, so locked like every heap) when out of pages. */
static HA_NOINLINE struct heap *heap_create(unsigned cpu)
{
    uintptr_t irq = lock_acquire(&heap_create_lock);
    struct heap *h = atomic_load_explicit(&cpu_heaps[cpu], memory_order_relaxed);
    if (!h) {
        unsigned n = atomic_load_explicit(&nheaps, memory_order_relaxed);
        if (n == 0) {
            h = &heap_static;
        } else {
            /* SYSTEM kind: no free of any kind can be handed these pages. */
            h = page_alloc(HEAP_PAGES, HA_PAGE_SIZE, PAGE_KIND_SYSTEM, 0);
            if (h)
                ha_memset(h, 0, sizeof *h);
        }
        if (h) {
            h->index = n;
            stats_bytes_register(&h->bytes);
            heap_list[n] = h;
            atomic_store_explicit(&nheaps, n + 1, memory_order_release);
            atomic_store_explicit(&cpu_heaps[cpu], h, memory_order_release);
        }
    }
    lock_release(&heap_create_lock, irq);
    return h ? h : &heap_static;
}

/* This CPU's heap. */
HA_INLINE struct heap *heap_get(void)
{
    unsigned cpu = ha_cpu();
    struct heap *h = ha_load_published(&cpu_heaps[cpu]);
    return HA_LIKELY(h != 0) ? h : heap_create(cpu);
}

/* Is a, in an arena page, the header of an arena holding p?  A shared one
 * also starts its own range and is SHARED_BYTES long. */
HA_INLINE bool arena_holds(const struct page_region *r, const arena_t *a, uintptr_t p)
{
    if (page_kind_in(r, (uintptr_t)a) != PAGE_KIND_ARENA || a->magic != arena_magic_for(a))
        return false;
    if (!(a->flags & ARENA_DEDICATED) && (a->base != (uintptr_t)a || a->size != SHARED_BYTES))
        return false;
    return p - a->base < a->size;
}

/* The heap owning the arena that holds p, no lock taken; *arena set.  NULL
 * when p is in no arena.  Where the arena header is, p's own block header
 * says (it is read only inside arena pages): the first block of an arena
 * has its arena header right before it (every dedicated block is one), any
 * other block is in a shared arena, which starts at p rounded down to
 * SHARED_BYTES.  So a live block never leads to memory outside its own
 * arena, whatever stale data lies elsewhere.  For a live block the answer
 * is exact (its arena stays while it lives); the caller confirms under the
 * heap's lock (heap_lock_owner) and validates the block there.
 * heap_of_in is for a caller that found p's page to be an arena page of
 * region r (the facade's free looks there to route it). */
HA_INLINE struct heap *heap_of_in(const struct page_region *r, uintptr_t p, arena_t **arena)
{
    if (p % HA_MIN_ALIGN != 0 || p < ARENA_HDR + BLOCK_HDR)
        return 0; /* no payload starts there */
    uintptr_t hdr = p - BLOCK_HDR;
    /* An arena lies inside one region (r, where p's page is an arena
     * page): map reads, no second search. */
    if ((hdr ^ p) >= HA_PAGE_SIZE && page_kind_in(r, hdr) != PAGE_KIND_ARENA)
        return 0;
    size_t word = __atomic_load_n(&block_at(hdr)->size, __ATOMIC_RELAXED);
    arena_t *a = (word & BLOCK_FIRST) ? arena_of_first(block_at(hdr)) : (arena_t *)ha_align_down(p, SHARED_BYTES);
    if (!arena_holds(r, a, p))
        return 0;
    *arena = a;
    unsigned i = __atomic_load_n(&a->heap, __ATOMIC_RELAXED);
    return i < atomic_load_explicit(&nheaps, memory_order_acquire) ? heap_list[i] : 0;
}

static struct heap *heap_of(uintptr_t p, arena_t **arena)
{
    const struct page_region *r = page_region_of(p >> HA_PAGE_SHIFT);
    if (!r || page_kind_in(r, p) != PAGE_KIND_ARENA)
        return 0;
    return heap_of_in(r, p, arena);
}

/* Lock the heap owning p's arena: its lock held, the heap returned and
 * *arena set, or NULL (nothing held) when p is in no arena.  An arena
 * changes owner only by being released (its magic cleared, under the
 * owner's lock) and its pages taken again, which a live block prevents;
 * so the arena header is read again under the lock (its page stays RAM of
 * a region: it was an arena page) and the look-up repeated if it moved. */
static HA_NOINLINE struct heap *heap_lock_owner(uintptr_t p, uintptr_t *irq, arena_t **arena)
{
    for (;;) {
        arena_t *a;
        struct heap *h = heap_of(p, &a);
        if (!h)
            return 0;
        *irq = lock_acquire(&h->lock);
        if (HA_LIKELY(a->magic == arena_magic_for(a) && a->heap == h->index && p - a->base < a->size)) {
            *arena = a;
            return h;
        }
        lock_release(&h->lock, *irq);
    }
}

/* heap_lock_owner, r: p's region, its page found to be an arena page
 * (NULL: unknown).  The first try inline, the search and retries a call. */
HA_INLINE struct heap *heap_lock_owner_in(const struct page_region *r, uintptr_t p, uintptr_t *irq,
                                          arena_t **arena)
{
    if (!r)
        return heap_lock_owner(p, irq, arena);
    arena_t *a;
    struct heap *h = heap_of_in(r, p, &a);
    if (HA_UNLIKELY(!h))
        return 0;
    *irq = lock_acquire(&h->lock);
    if (HA_LIKELY(a->magic == arena_magic_for(a) && a->heap == h->index && p - a->base < a->size)) {
        *arena = a;
        return h;
    }
    lock_release(&h->lock, *irq);
    /* p's page may have changed hands too: from the start. */
    return heap_lock_owner(p, irq, arena);
}

/* ------------------------------------------------------------------- API */

void *tlsf_alloc(size_t size, size_t align, bool *zeroed, size_t accounted)
{
    bool z_ignored;
    if (!zeroed)
        zeroed = &z_ignored;
    *zeroed = false;
    if (!ha_is_pow2(align))
        return 0;
    if (align < HA_MIN_ALIGN)
        align = HA_MIN_ALIGN;
    struct heap *h = heap_get();
    if (size <= HA_MID_MAX && align <= HA_PAGE_SIZE) {
        void *p = shared_alloc(h, size, align, accounted);
        if (HA_LIKELY(p != 0))
            return p;
        /* No arena of this heap has room and no free run of 64 pages at
         * 256 KiB alignment is left for another: a shorter run may still
         * hold this block alone, in an arena of its own. */
    }
    return dedicated_alloc(h, size, align, zeroed, accounted);
}

void *tlsf_alloc_mid(size_t size)
{
    return shared_alloc(heap_get(), size, HA_MIN_ALIGN, 0);
}

/* Is p the payload of a live block?  Reads only inside ARENA pages; under
 * the lock (neighbours rewrite headers). */
HA_INLINE enum ha_fault block_validate_locked(const arena_t *a, uintptr_t p)
{
    /* p lies in arena a (heap_lock_owner): reads stay inside it. */
    uintptr_t end = a->base + a->size;
    if ((p & (HA_MIN_ALIGN - 1)) != 0 || p < (uintptr_t)a + ARENA_HDR + BLOCK_HDR)
        return FAULT_NOT_ALLOCATED;
    const block_t *b = block_of_payload((void *)p);
    /* The flag first: then the check word's key is known. */
    if (HA_UNLIKELY(block_is_free(b)))
        return block_check_ok(b) ? FAULT_DOUBLE_FREE : FAULT_NOT_ALLOCATED;
    if (!block_check_ok(b))
        return FAULT_NOT_ALLOCATED;
    size_t size = block_size(b);
    if (size == 0 || (b->size & 8) != 0)
        return FAULT_NOT_ALLOCATED; /* a sentinel, or a forgery */
    /* A header that checks but is garbage (kernel data that happens to look
     * like one) must not send us outside the heap: its successor must be a
     * header too, telling that its predecessor is used. */
    uintptr_t n = p + size;
    if (n < p || n > end - BLOCK_HDR)
        return FAULT_NOT_ALLOCATED;
    const block_t *next = block_at(n);
    if (!block_check_ok(next) || (next->size & BLOCK_PREV_FREE))
        return FAULT_NOT_ALLOCATED;
    return FAULT_NONE;
}

/* Lock the heap owning p and validate p there: the heap, locked, and
 * *arena when p is a live block; else NULL, nothing held, and *fault says
 * why. */
HA_INLINE struct heap *heap_lock_block_in(const struct page_region *r, const void *p, uintptr_t *irq,
                                          arena_t **arena, enum ha_fault *fault)
{
    struct heap *h = heap_lock_owner_in(r, (uintptr_t)p, irq, arena);
    if (HA_UNLIKELY(!h)) {
        *fault = FAULT_NOT_ALLOCATED;
        return 0;
    }
    *fault = block_validate_locked(*arena, (uintptr_t)p);
    if (HA_UNLIKELY(*fault != FAULT_NONE)) {
        lock_release(&h->lock, *irq);
        return 0;
    }
    return h;
}

static struct heap *heap_lock_block(const void *p, uintptr_t *irq, arena_t **arena, enum ha_fault *fault)
{
    return heap_lock_block_in(0, p, irq, arena, fault);
}

enum ha_fault tlsf_validate(const void *p)
{
    uintptr_t irq;
    arena_t *a;
    enum ha_fault f;
    struct heap *h = heap_lock_block(p, &irq, &a, &f);
    if (h)
        lock_release(&h->lock, irq);
    return f;
}

/* Mark b (off every list) free over size bytes, write its footer, tell its
 * successor, and put it on its list, or release its arena when it is the
 * arena's only block and SPARE_ARENAS empty arenas are already kept. */
HA_INLINE void block_make_free(struct heap *h, block_t *b, size_t size)
{
    block_set(b, size | BLOCK_FREE | (b->size & BLOCK_FIRST));
    *block_footer(b) = b;
    block_t *next = block_next(b);
    block_set_prev_free(next, true);
    if ((b->size & BLOCK_FIRST) && block_size(next) == 0) {
        if (h->n_empty >= SPARE_ARENAS) {
            arena_release(h, arena_of_first(b));
            return;
        }
        h->n_empty++;
    }
    list_push(h, b);
}

/* Headers absorbed by a merge into free block b (size bytes) stay behind
 * marked free, so that a second free of their payload is still reported as
 * a double free: self (the block freed, absorbed by its predecessor) is
 * marked so here; next (a free successor) already is.  Checked build: b's
 * payload is poisoned around them, so next's header is written again. */
HA_INLINE void block_absorbed_mark(block_t *b, size_t size, block_t *self, block_t *next)
{
    size_t self_word = self ? self->size | BLOCK_FREE : 0;
#if HA_CHECKED
    size_t next_word = next ? next->size : 0;
    uintptr_t lo = block_payload(b) + sizeof(free_links_t);
    uintptr_t hi = block_payload(b) + size - sizeof(block_t *);
    ha_memset((void *)lo, HA_POISON_FREE, hi - lo);
    if (next)
        block_set(next, next_word);
#else
    (void)b;
    (void)size;
    (void)next;
#endif
    if (self)
        block_set(self, self_word);
}

/* What a sized free promises, against block b (rule: tlsf_size_fits). */
static enum ha_fault block_check_sized(const block_t *b, uintptr_t p, size_t need, size_t align)
{
    if (p % align != 0)
        return FAULT_ALIGN_MISMATCH;
    if (!tlsf_size_fits(block_size(b), need))
        return FAULT_SIZE_MISMATCH;
    return FAULT_NONE;
}

static enum ha_fault tlsf_free_in(const struct page_region *r, void *p, size_t need, size_t align, bool sized,
                                     size_t accounted)
{
    uintptr_t irq;
    arena_t *a;
    enum ha_fault f;
    struct heap *h = heap_lock_block_in(r, p, &irq, &a, &f);
    if (HA_UNLIKELY(!h))
        return f;
    block_t *b = block_of_payload(p);
    if (sized && HA_UNLIKELY((f = block_check_sized(b, (uintptr_t)p, need, align)) != FAULT_NONE)) {
        lock_release(&h->lock, irq);
        return f;
    }
    /* A free lowers `used`: never a new peak to sample. */
    stats_bytes_free(&h->bytes, accounted ? accounted : block_size(b));
    if (HA_UNLIKELY(a->flags & ARENA_DEDICATED)) { /* its one block */
        arena_release(h, a);
        lock_release(&h->lock, irq);
        return FAULT_NONE;
    }

    size_t size = block_size(b);
    block_t *absorbed_self = 0, *absorbed_next = 0;
    if (b->size & BLOCK_PREV_FREE) {
        block_t *prev = block_prev(b);
        /* The footer is the kernel's to overwrite by accident: look before
         * following it. */
        HA_ASSERT((uintptr_t)prev >= (uintptr_t)a + ARENA_HDR && (uintptr_t)prev < (uintptr_t)b &&
                      block_is_free(prev) && block_check_ok(prev) && block_next(prev) == b,
                  b);
        list_unlink(h, prev);
        absorbed_self = b;
        size += block_size(prev) + BLOCK_HDR;
        h->meta_bytes -= BLOCK_HDR;
        b = prev;
    }
    /* The successor of the block freed: block_validate_locked proved its
     * header under this lock, and the unlink above wrote links only. */
    block_t *next = block_at(block_payload(b) + size);
    if (block_is_free(next)) {
        list_unlink(h, next);
        absorbed_next = next;
        size += block_size(next) + BLOCK_HDR;
        h->meta_bytes -= BLOCK_HDR;
    }
    block_absorbed_mark(b, size, absorbed_self, absorbed_next);
    block_make_free(h, b, size);
    lock_release(&h->lock, irq);
    return FAULT_NONE;
}

enum ha_fault tlsf_free(void *p, size_t need, size_t align, bool sized, size_t accounted)
{
    return tlsf_free_in(0, p, need, align, sized, accounted);
}

enum ha_fault tlsf_free_in_region(const struct page_region *r, void *p, size_t need, size_t align, bool sized)
{
    return tlsf_free_in(r, p, need, align, sized, 0);
}

size_t tlsf_usable(const void *p)
{
    uintptr_t irq;
    arena_t *a;
    struct heap *h = heap_lock_owner((uintptr_t)p, &irq, &a);
    if (!h)
        return 0;
    size_t size = block_size(block_of_payload(p));
    lock_release(&h->lock, irq);
    return size;
}

/* Shared block b: shrink by cutting off the tail (merged with a free
 * successor), grow by absorbing a free successor. */
static bool shared_resize_locked(struct heap *h, block_t *b, size_t need, uintptr_t *bad)
{
    size_t size = block_size(b);
    size_t keep = b->size & (BLOCK_FIRST | BLOCK_PREV_FREE);
    block_t *next = block_next(b);
    if (need <= size) {
        if (size - need < MIN_BLOCK)
            return true;
        block_t *rest = block_at(block_payload(b) + need);
        size_t rest_size = size - need - BLOCK_HDR;
        block_t *absorbed = 0;
        block_set(b, need | keep);
        h->meta_bytes += BLOCK_HDR;
        if (block_is_free(next)) {
            list_remove(h, next);
            absorbed = next;
            rest_size += block_size(next) + BLOCK_HDR;
            h->meta_bytes -= BLOCK_HDR;
        }
        block_set(rest, rest_size);
        block_absorbed_mark(rest, rest_size, 0, absorbed);
        block_make_free(h, rest, rest_size);
        return true;
    }
    if (!block_is_free(next))
        return false;
    size_t next_size = block_size(next);
    size_t total = size + BLOCK_HDR + next_size;
    if (total < need)
        return false;
    list_remove(h, next);
    h->meta_bytes -= BLOCK_HDR;
#if HA_CHECKED
    uintptr_t next_payload = block_payload(next);
#endif
    if (total - need >= MIN_BLOCK) {
        /* rest lies inside next's old payload, past its links: already
         * poisoned; the block after keeps BLOCK_PREV_FREE. */
        block_t *rest = block_at(block_payload(b) + need);
        block_set(rest, (total - need - BLOCK_HDR) | BLOCK_FREE);
        *block_footer(rest) = rest;
        list_insert(h, rest);
        h->meta_bytes += BLOCK_HDR;
        total = need;
    } else {
        block_set_prev_free(block_at(block_payload(b) + total), false);
    }
    block_set(b, total | keep);
#if HA_CHECKED
    *bad = poison_find_bad_part(next_payload, next_size, block_payload(b) + size, block_payload(b) + total);
#else
    (void)bad;
#endif
    return true;
}

/* Dedicated arena a: the payload ends where asked; whole pages follow it
 * (claimed when free) or go back. */
static bool dedicated_resize_locked(struct heap *h, arena_t *a, block_t *b, size_t need)
{
    size_t off = block_payload(b) - a->base;
    size_t pages = (off + need + BLOCK_HDR + HA_PAGE_SIZE - 1) / HA_PAGE_SIZE;
    size_t cur = a->size / HA_PAGE_SIZE;
    if (pages > cur && !page_claim((void *)(a->base + a->size), pages - cur, PAGE_KIND_ARENA))
        return false;
    h->meta_bytes -= a->size - block_size(b);
    block_set(b, need | BLOCK_FIRST);
    block_set(block_next(b), 0);
    if (pages < cur)
        page_free((void *)(a->base + pages * HA_PAGE_SIZE), cur - pages);
    a->size = pages * HA_PAGE_SIZE;
    h->meta_bytes += a->size - need;
    return true;
}

enum ha_fault tlsf_resize_in(const struct page_region *r, void *p, size_t new_size, bool *resized, size_t usable[2])
{
    uintptr_t irq, bad = 0;
    arena_t *a;
    enum ha_fault f;
    struct heap *h = heap_lock_block_in(r, p, &irq, &a, &f);
    if (!h)
        return f;
    block_t *b = block_of_payload(p);
    usable[0] = block_size(b);
    bool ok = false;
    if (new_size <= SIZE_MAX / 4) {
        size_t need = size_round(new_size);
        if (a->flags & ARENA_DEDICATED)
            ok = dedicated_resize_locked(h, a, b, need);
        else
            ok = shared_resize_locked(h, b, need, &bad);
    }
    usable[1] = block_size(b);
    lock_release(&h->lock, irq);
    if (HA_UNLIKELY(bad))
        ha_fault(FAULT_USE_AFTER_FREE, (void *)bad);
    *resized = ok;
    return FAULT_NONE;
}

bool tlsf_resize_in_place(void *p, size_t new_size)
{
    bool ok;
    size_t usable[2];
    enum ha_fault f = tlsf_resize_in(0, p, new_size, &ok, usable);
    if (f != FAULT_NONE)
        ha_fault(f, p);
    return ok;
}

void tlsf_trim(void)
{
    unsigned n = atomic_load_explicit(&nheaps, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        struct heap *h = heap_list[i];
        uintptr_t irq = lock_acquire(&h->lock);
        for (arena_t *a = h->arenas, *next; a && h->n_empty > 0; a = next) {
            next = a->next;
            block_t *b = arena_first(a);
            if (!(a->flags & ARENA_DEDICATED) && block_is_free(b) && block_size(b) == SHARED_PAYLOAD) {
                list_remove(h, b);
                arena_release(h, a);
                h->n_empty--;
            }
        }
        lock_release(&h->lock, irq);
    }
}

void tlsf_stats(struct ha_stats *out)
{
    unsigned n = atomic_load_explicit(&nheaps, memory_order_acquire);
    /* The heaps' own pages (the static one aside) are metadata too. */
    out->bytes_meta += (n > 1 ? n - 1 : 0) * HEAP_PAGES * HA_PAGE_SIZE;
    for (unsigned i = 0; i < n; i++) {
        struct heap *h = heap_list[i];
        uintptr_t irq = lock_acquire(&h->lock);
        out->bytes_free += h->free_bytes;
        out->bytes_meta += h->meta_bytes;
        lock_release(&h->lock, irq);
    }
}

/* ----------------------------------------------------------------- checker */

/* What the walk of every arena found, to compare with the counters and the
 * free lists. */
struct check_tally {
    size_t free_bytes, meta_bytes, n_free, n_arenas;
    uint64_t free_sig; /* sum of mixed addresses of free blocks */
    arena_t *empty;    /* an entirely free shared arena */
    size_t n_empty;
};

HA_INLINE uint64_t check_sig(const block_t *b) { return (uint64_t)(uintptr_t)b * 0xD6E8FEB86659FD93ull; }

static bool check_range_is_arena(uintptr_t lo, uintptr_t hi)
{
    for (uintptr_t pg = ha_align_down(lo, HA_PAGE_SIZE); pg < hi; pg += HA_PAGE_SIZE)
        if (page_kind_of(pg) != PAGE_KIND_ARENA)
            return false;
    return true;
}

static int check_arena(const arena_t *a, struct check_tally *t)
{
    bool dedicated = (a->flags & ARENA_DEDICATED) != 0;
    uintptr_t lo = a->base, hi = a->base + a->size;
    if ((lo & (HA_PAGE_SIZE - 1)) || (a->size & (HA_PAGE_SIZE - 1)) || a->size == 0 || hi < lo)
        return check_fail("tlsf: arena range not whole pages", a);
    if ((uintptr_t)a < lo || (uintptr_t)a + ARENA_HDR + 2 * BLOCK_HDR > hi)
        return check_fail("tlsf: arena header outside its range", a);
    if (a->flags & ~ARENA_DEDICATED)
        return check_fail("tlsf: arena flags", a);
    if (!dedicated && (a->size != SHARED_BYTES || (uintptr_t)a != lo))
        return check_fail("tlsf: shared arena shape", a);
    if (!check_range_is_arena(lo, hi))
        return check_fail("tlsf: arena page not of kind ARENA", a);

    const block_t *b = arena_first(a);
    size_t payloads = 0, blocks = 0;
    bool prev_free = false;
    for (;;) {
        uintptr_t at = (uintptr_t)b;
        if (at + BLOCK_HDR > hi)
            return check_fail("tlsf: block runs past its arena", b);
        if (!block_check_ok(b))
            return check_fail("tlsf: block check word", b);
        if (b->size & 8)
            return check_fail("tlsf: block flag bit 3 set", b);
        if (((b->size & BLOCK_PREV_FREE) != 0) != prev_free)
            return check_fail("tlsf: BLOCK_PREV_FREE disagrees with predecessor", b);
        if (((b->size & BLOCK_FIRST) != 0) != (blocks == 0))
            return check_fail("tlsf: BLOCK_FIRST misplaced", b);
        size_t size = block_size(b);
        if (size == 0)
            break; /* sentinel */
        if (size < MIN_PAYLOAD)
            return check_fail("tlsf: block below minimum size", b);
        if (block_payload(b) + size + BLOCK_HDR > hi || block_payload(b) + size < at)
            return check_fail("tlsf: block runs past its arena", b);
        bool is_free = block_is_free(b);
        if (is_free) {
            if (dedicated)
                return check_fail("tlsf: free block in a dedicated arena", b);
            if (prev_free)
                return check_fail("tlsf: two adjacent free blocks", b);
            if (*block_footer(b) != b)
                return check_fail("tlsf: free block footer", b);
#if HA_CHECKED
            uintptr_t badp = poison_find_bad_block(b);
            if (badp)
                return check_fail("tlsf: free block poison overwritten (use after free)", (void *)badp);
#endif
            t->free_bytes += size;
            t->n_free++;
            t->free_sig += check_sig(b);
        }
        payloads += size;
        blocks++;
        prev_free = is_free;
        b = block_next(b);
    }
    if (block_is_free(b))
        return check_fail("tlsf: sentinel marked free", b);
    if (!dedicated && (uintptr_t)b + BLOCK_HDR != hi)
        return check_fail("tlsf: shared arena sentinel not at its end", b);
    if (dedicated && (blocks != 1 || (uintptr_t)b + BLOCK_HDR + HA_PAGE_SIZE <= hi))
        return check_fail("tlsf: dedicated arena not one block in the fewest pages", a);
    if (!dedicated && blocks == 1 && block_is_free(arena_first(a))) {
        t->n_empty++;
        t->empty = (arena_t *)a;
    }
    t->meta_bytes += a->size - payloads;
    return 0;
}

static int check_lists(struct heap *h, struct check_tally *t)
{
    size_t n = 0;
    uint64_t sig = 0;
    for (unsigned fl = 0; fl < FL_COUNT; fl++) {
        if (((h->fl_map >> fl) & 1u) != (h->sl_map[fl] != 0))
            return check_fail("tlsf: first-level bitmap disagrees with second level", &h->sl_map[fl]);
        if (fl == 0 && (h->sl_map[0] & ((1u << (MIN_PAYLOAD >> ALIGN_LOG2)) - 1)))
            return check_fail("tlsf: bitmap bit for a size below the minimum", &h->sl_map[0]);
        for (unsigned sl = 0; sl < SL_COUNT; sl++) {
            const block_t *b = h->heads[fl][sl];
            if (((h->sl_map[fl] >> sl) & 1u) != (b != 0))
                return check_fail("tlsf: second-level bitmap disagrees with its list", &h->heads[fl][sl]);
            const block_t *prev = 0;
            for (; b; prev = b, b = link_get(&block_links(b)->next)) {
                if (++n > h->n_free)
                    return check_fail("tlsf: free lists longer than the free count (cycle?)", b);
                uintptr_t at = (uintptr_t)b;
                if ((at & 15) || !check_range_is_arena(at, at + BLOCK_HDR + sizeof(free_links_t)))
                    return check_fail("tlsf: free list link leads outside the arenas (use after free?)", b);
                if (!block_check_ok(b) || !block_is_free(b))
                    return check_fail("tlsf: free list link leads to no free block (use after free?)", b);
                unsigned f, s;
                mapping_insert(block_size(b), &f, &s);
                if (f != fl || s != sl)
                    return check_fail("tlsf: free block on the wrong list", b);
                if (link_get(&block_links(b)->prev) != prev)
                    return check_fail("tlsf: free list link damaged (use after free)", b);
                sig += check_sig(b);
            }
        }
    }
    if (n != t->n_free || sig != t->free_sig)
        return check_fail("tlsf: free lists and physical free blocks differ", h->heads);
    return 0;
}

static int check_locked(struct heap *h)
{
    struct check_tally t = { 0 };
    const arena_t *prev = 0;
    for (const arena_t *a = h->arenas; a; prev = a, a = a->next) {
        if (++t.n_arenas > h->n_arenas)
            return check_fail("tlsf: arena list longer than the arena count (cycle?)", a);
        if (((uintptr_t)a & 15) || !check_range_is_arena((uintptr_t)a, (uintptr_t)a + ARENA_HDR))
            return check_fail("tlsf: arena list entry outside arena pages", a);
        if (a->magic != arena_magic_for(a))
            return check_fail("tlsf: arena magic", a);
        if (a->prev != prev)
            return check_fail("tlsf: arena list back link", a);
        if (a->heap != h->index)
            return check_fail("tlsf: arena on the list of a heap not its owner", a);
        if (!(a->flags & ARENA_DEDICATED) && (uintptr_t)a % SHARED_BYTES != 0)
            return check_fail("tlsf: shared arena not aligned to its size", a);
        int r = check_arena(a, &t);
        if (r)
            return r;
    }
    if (t.n_arenas != h->n_arenas)
        return check_fail("tlsf: arena count", h->arenas);
    if (t.n_empty > SPARE_ARENAS || t.n_empty != h->n_empty)
        return check_fail("tlsf: empty shared arenas disagree with their count", t.empty);
    int r = check_lists(h, &t);
    if (r)
        return r;
    if (t.n_free != h->n_free)
        return check_fail("tlsf: free block count", &h->n_free);
    if (t.free_bytes != h->free_bytes)
        return check_fail("tlsf: free byte counter", &h->free_bytes);
    if (t.meta_bytes != h->meta_bytes)
        return check_fail("tlsf: metadata byte counter", &h->meta_bytes);
    return 0;
}

int tlsf_check(void)
{
    unsigned n = atomic_load_explicit(&nheaps, memory_order_acquire);
    int r = 0;
    for (unsigned i = 0; i < n && r == 0; i++) {
        struct heap *h = heap_list[i];
        if (h->index != i)
            return check_fail("tlsf: heap index disagrees with its place", h);
        uintptr_t irq = lock_acquire(&h->lock);
        r = check_locked(h);
        lock_release(&h->lock, irq);
    }
    return r;
}

/* The create lock first (no heap appears meanwhile), then every heap's. */
void tlsf_fork_lock(bool take)
{
    static uintptr_t irq_create, irq[HA_MAX_CPUS];
    static unsigned n;
    if (take) {
        lock_fork(&heap_create_lock, true, &irq_create);
        n = atomic_load_explicit(&nheaps, memory_order_relaxed);
        for (unsigned i = 0; i < n; i++)
            lock_fork(&heap_list[i]->lock, true, &irq[i]);
    } else {
        for (unsigned i = n; i-- > 0;)
            lock_fork(&heap_list[i]->lock, false, &irq[i]);
        lock_fork(&heap_create_lock, false, &irq_create);
    }
}
