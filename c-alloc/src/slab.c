/*
 * Objects up to 64 KiB: 51 size classes behind per-CPU caches.  Up to
 * 1024 B (20 classes) in 16 KiB slab chunks (64 KiB in a heap of 96 MiB
 * or more when it starts); up to 8176 B (16 more) in
 * 64 KiB ones, in a heap of 48 MiB or more; above, 15 classes up to
 * HA_SMALL_MAX (65520 B) in 256 KiB chunks, in a heap of 96 MiB or more
 * (slab_configure: in a smaller heap, TLSF's exact fit serves the sizes
 * of the classes not in use, in less memory).  A chunk is aligned
 * to its size and starts with its header (keyed check word, list links,
 * avail bitmap); its class is also kept in the page allocator's aux byte
 * of each of its 16 KiB granules, and where its objects lie is a function
 * of the class (class_layout_tab).
 *
 *   ha_alloc -> cache_try_alloc: lock this CPU's cache (uncontended: only the
 *   CPU itself and the rare ha_trim/ha_check take it), pop a pointer from
 *   the class's bin, wipe its free tag.
 *   ha_free -> slab_free: the class from the page map, then validate by
 *   arithmetic on the class's layout (object start, in range, no interior
 *   pointer; the header is not read), exchange the free tag in, push the
 *   object.  The header is checked where its links and bitmap are used:
 *   the refill and the drain below, and ha_check.  A bin
 *   that runs empty is refilled, and one that runs full is drained, half a
 *   bin at a time, under the class lock.  That is one atomic instruction
 *   per allocation (the cache lock) and two per free (the lock and the
 *   tag's exchange).
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
 * exactly by looking for the object in the bins and its slab's bitmap, so
 * no free is ever refused wrongly.  The tag is exchanged in atomically
 * under the freeing CPU's cache lock: of two CPUs freeing one object at
 * the same instant, the second sees the first one's tag, and its search
 * (which takes every cache lock) finds the object in the first CPU's bin.
 *
 * Why bitmaps and not free lists threaded through the objects: what is
 * available in a slab is known exactly, so a use-after-free write cannot
 * corrupt allocator metadata, and ha_check can account for every object.
 */
#include "ha_internal.h"

#define SLAB_CLASSES 51
/* Classes below TINY_CHUNK_CLASSES (up to 1024 B) live in 16 KiB chunks
 * (HA_CHUNK_SIZE), those below SMALL_CHUNK_CLASSES in 64 KiB ones, the
 * rest in 256 KiB ones, each aligned to its size.  What a class costs
 * before it holds much is a chunk, mostly free, and every class that a
 * heap uses at all has one: 16 KiB chunks for the classes that hold 15
 * objects or more in them took that from 36 x 64 KiB to 20 x 16 + 16 x
 * 64 KiB, and talc's heap-efficiency workload in 32 MiB, with the classes
 * up to 8 KiB in use, from 86.7% to 89.3% (where it first fails, nearly
 * every class up to 1 KiB held one 64 KiB chunk with a live object or two
 * in it).  In a heap of TINY_WIDE_MIN_PAGES or more when it is
 * configured, the tiny classes take 64 KiB chunks too: a quarter as many
 * chunk headers for a run of frees to visit (ArceOS's
 * vec_rand_free_25K_64, 25000 x 512 B freed in random order: 158 -> 150
 * instructions a call in a C replica, 1.75 -> 1.37 ms in the Rust
 * harness), for up to 48 KiB more per class in a partly used chunk and in
 * the one kept empty, under 2% of such a heap (talc's heap-efficiency
 * workload, C replica, 8 seeds, medians: 128 MiB 84.4% -> 83.9%, 256 MiB
 * 85.8% -> 85.5%).  Chosen once: a class's objects are found by its one
 * layout. */
#define TINY_CHUNK_CLASSES 20
#define TINY_WIDE_MIN_PAGES BIG_CLASSES_MIN_PAGES
#define SMALL_CHUNK_CLASSES 36
#define SMALL_CHUNK_SIZE (64u * 1024)
#define BIG_CHUNK_SIZE (256u * 1024)
/* The big classes are used only in a heap of at least this many pages.
 * What they cost is nearly fixed: per class, partly used chunks (half of
 * 256 KiB each on average) and one kept empty (more while memory allows:
 * slab_keep_empty; all given back under pressure), a few MiB for the 15
 * classes.  In a smaller heap TLSF's
 * exact fit serves 8..64 KiB, slower but in less memory: talc's
 * heap-efficiency workload in 32 MiB measured 87% with the big classes
 * off and 75% with them on.  96 MiB, so that a machine or arena of
 * 128 MiB, less the kernel and the early range, has them. */
#define BIG_CLASSES_MIN_PAGES ((size_t)96 * 1024 * 1024 / HA_PAGE_SIZE)
/* The same holds a tier down, for the 16 classes of 1..8 KiB in 64 KiB
 * chunks: a partly used chunk and a kept empty one each, up to 2 MiB, a
 * few percent of a heap under 48 MiB; and beside that, a small block that
 * a class keeps apart cannot fill a gap that TLSF's arenas leave between
 * larger blocks.  talc's heap-efficiency workload (blocks up to 100 KB)
 * measured, with these classes on and off (C replica, 8 seeds, medians):
 * 4 MiB 65% -> 85%, 8 MiB 78% -> 87%, 16 MiB 85% -> 91%, 32 MiB 90% ->
 * 95%, 64 MiB 92% -> 95%.  Off, those sizes take TLSF's path, about three
 * times the instructions of a bin's (callgrind, a churn of 1..4 KiB
 * blocks: 94 -> 315 a call), so they are used from 48 MiB up: a heap that
 * small is a machine where memory is what runs out first. */
#define SMALL_CLASSES_MIN_PAGES ((size_t)48 * 1024 * 1024 / HA_PAGE_SIZE)
/* 60: with its count, its two counters and the class size a bin is 512
 * bytes, so a class's bin is found with a shift. */
#define BIN_SLOTS 60

/* Class sizes: 16-byte steps to 128, then four classes per doubling up to
 * a page, so that most requests below 4 KiB never reach TLSF.  Above a
 * page, one class per object count a chunk holds: 15 down to 8 in 64 KiB,
 * then 28, 25, 22, 19, 17, 15, 13, 11, 10, 9, 8, 7, 6, 5, 4 in 256 KiB.
 * Each is the largest multiple of 16 that fits that many objects beside
 * the header, so a chunk wastes under 256 bytes.  Successive classes
 * differ by 6 to 25% (most by 10 to 17%): the worst internal waste is 20%
 * (129 -> 160; 52417 -> 65520), typical under 12%. */
/* uint16_t: every size fits, and RV64 loads it zero-extended. */
static const uint16_t class_size_tab[SLAB_CLASSES] = {
    16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096,
    4352, 4672, 5024, 5456, 5952, 6544, 7264, 8176,
    9360, 10480, 11904, 13792, 15408, 17472, 20160, 23824, 26208, 29120, 32752, 37440,
    43680, 52416, 65520,
};
/* Largest power of two dividing the size: every object of the class is
 * aligned to it, because the object area starts at a multiple of it.  The
 * classes above a page are not powers of two: a request aligned to more
 * than theirs goes to the next class that honours it, or to TLSF. */
static const uint16_t class_align_tab[SLAB_CLASSES] = {
    16, 32, 16, 64, 16, 32, 16, 128, 32, 64, 32, 256, 64, 128,
    64, 512, 128, 256, 128, 1024, 256, 512, 256, 2048, 512, 1024, 512, 4096,
    256, 64, 32, 16, 64, 16, 32, 16,
    16, 16, 128, 32, 16, 64, 64, 16, 32, 64, 16, 64, 32, 64, 16,
};
/* Bin capacity: more for small objects (cheap to hold, allocated often).
 * 1.25..8 KiB hold 24: with 8 and 6, a burst of 4 KiB blocks (ArceOS's
 * vec_rand_free_7500_520) refilled or drained a bin every three or four
 * calls, about 140 instructions each (10.9M -> 9.5M instructions for the
 * C replica's three iterations, with 12); 12 -> 24 took the replica's
 * 7500 blocks of 4160 B from 199 to 184 instructions a call (0.67 ->
 * 0.60 ms), the host churn of 8..4096 B from 75.5 to 71.8 and the QEMU
 * one of 16..4096 B from 174.6 to 171.9.  The big classes (heaps of
 * 96 MiB or more only) hold 8, or 4 above 32 KiB: with 4 and 2, a churn
 * of 4..64 KiB blocks refilled or drained a bin every few calls (QEMU
 * -icount 283 -> 257 instructions per step).  At most about 4 MiB a CPU
 * (1.7 MiB without the big classes, 0.17 MiB in a heap under 48 MiB),
 * given back before any allocation fails. */
static const uint8_t bin_cap_tab[SLAB_CLASSES] = {
    60, 60, 60, 60, 60, 60, 60, 60, 48, 48, 48, 48, 32, 32,
    32, 32, 16, 16, 16, 16, 24, 24, 24, 24, 24, 24, 24, 24,
    24, 24, 24, 24, 24, 24, 24, 24,
    8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 4, 4, 4, 4, 4,
};

/* The header at the start of every slab chunk.
 * Invariants (slab_check):
 *  - check == slab_check_word(slab, cls); the chunk's pages have kind SLAB
 *    and the aux byte of each of its 16 KiB granules is cls;
 *  - words is the class's bitmap length; popcount(avail) == navail;
 *    first_word < words;
 *  - an object is in exactly one of: available (avail bit), in one CPU's
 *    bin, or live; per class, sum of the CPUs' pops - pushes + available +
 *    cached == objects in the class's slabs;
 *  - every available or cached object holds its free tag;
 *  - list == SLAB_FULL iff navail == 0; SLAB_EMPTY iff navail == the
 *    class's nobj
 *    (slabs kept empty: see slab_keep_empty); SLAB_PARTIAL otherwise;
 *  - kept_empty_pages is the pages of every class's SLAB_EMPTY slabs. */
struct slab {
    uint64_t check;
    uint16_t cls;
    uint16_t list;
    uint16_t navail;
    uint16_t words;      /* 64-bit words in the avail bitmap */
    uint16_t first_word; /* where slab_take's search starts (a hint) */
    struct slab *next, *prev;
    uint64_t avail[]; /* under the class lock */
};

enum slab_list { SLAB_PARTIAL, SLAB_FULL, SLAB_EMPTY };

/* Where a class's objects lie in its chunk: after the header and the avail
 * bitmap (a bit per object a header-less chunk could hold), at a multiple
 * of the class alignment.  It depends on the class alone, so the free path
 * reads it here, in one line, and not from the chunk's header: a chunk
 * boundary is where every chunk keeps its header, so all the headers fall
 * into a few cache sets (one of a 32 KiB L1's), and a free that read one
 * missed the cache for it whenever many slabs were in use. */
struct class_layout {
    uint64_t recip;     /* ceil(2^40 / size): offset -> index without a division */
    uint32_t off_mask;  /* chunk size - 1: an address's offset in its chunk */
    uint16_t first_off; /* offset of object 0 in the chunk */
    uint16_t nobj;      /* objects in a chunk */
    uint32_t objs;      /* bytes of them: nobj * size */
    /* And for a free: the class's size (class_size_tab) and the requests
     * that ha_alloc serves from it at the minimum alignment, min..min+span
     * (class_by_granule's interval: the class below's size + 1 up to this
     * one's), so that a sized free's size test is one unsigned compare;
     * the bin capacity (bin_cap_tab), read-only as it must stay. */
    uint16_t size, min, span;
    uint8_t cap;
} __attribute__((aligned(32))); /* an entry at a shift of the class */

HA_STATIC_ASSERT(sizeof(struct slab) == 40, "class_layout_tab's offsets assume a 40-byte header");
HA_STATIC_ASSERT(HA_CHUNK_SIZE == HA_PAGE_SIZE << PAGE_AUX_ORDER, "a slab chunk is whole granules of the page map's aux bytes");

/* 256 entries, one per value of a page-map class byte: those past the
 * classes are zero (no objects), so that a damaged byte fails the range
 * test of slab_locate_in with no test of its own on the free path.
 * Written once, by the first slab_configure (ha_final_init, before any
 * slab exists), from the formula of slab_new's layout and the chunk size
 * of the tiny classes chosen then; read-only from then on. */
static struct class_layout class_layout_tab[256];

struct slab_class {
    ha_lock_t lock;
    struct slab *partial; /* navail > 0 */
    struct slab *full;    /* navail == 0 */
    struct slab *empty;   /* wholly free slabs kept against thrashing */
    size_t nslabs;
    size_t navail; /* sum over the slabs */
} __attribute__((aligned(HA_CACHELINE)));

static struct slab_class classes[SLAB_CLASSES];

/* Pages of the empty slabs every class keeps (changed under a class lock,
 * read under another: atomic). */
static _Atomic size_t kept_empty_pages;

/* A CPU's objects of one class, and beside them (one address for all on
 * the fast paths) the class's objects handed out here (pops) and freed
 * here (pushes): their sums over the CPUs are the class's allocations and
 * frees for ha_get_stats, their difference the objects live for ha_check;
 * and the class's size (class_size_tab's, set when the cache is made: the
 * allocation's byte count without a table address to make; checked by
 * slab_check).  The capacity stays in the read-only table: it bounds where
 * the slots are written. */
struct bin {
    size_t count; /* register-wide: no extension before it indexes slots */
    uint64_t pops, pushes;
    size_t size;
    void *slots[BIN_SLOTS];
};

HA_STATIC_ASSERT(sizeof(struct bin) == 512, "a class's bin at a shift of the class");

/* &b->slots[i] as the bin's address plus the scaled index plus a constant
 * (the load's offset): written as b->slots[i], GCC scales i plus the
 * slots' offset in words, one instruction more on riscv64 (x86-64 has
 * scaled addressing, where the plain form is as short). */
HA_INLINE void **bin_slot(struct bin *b, size_t i)
{
#if defined(__riscv)
    return (void **)((uintptr_t)b + i * sizeof(void *) + offsetof(struct bin, slots));
#else
    return &b->slots[i];
#endif
}

/* Counts: bytes.allocs and bytes.frees count the tiers' blocks accounted
 * here (cache_account_alloc and _free); this cache's own objects are
 * counted by its bins alone (slab_stats adds them), so an allocation or a
 * free through a bin updates one counter, not two. */
struct cpu_cache {
    ha_lock_t lock;
    struct stats_bytes bytes; /* registered with stats.c when made */
    struct bin bins[SLAB_CLASSES];
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
static atomic_uint shared_counted; /* a word: RISC-V has no byte-sized atomic exchange */

/* ---------------------------------------------------------- size classes */

/* Every class size is a multiple of 16, so the class of a size is a
 * table lookup by 16-byte granule: class_by_granule[(size + 15) / 16]. */
/* Classes in use (SMALL_CHUNK_CLASSES, or all), and the largest size they
 * serve: set by slab_configure at ha_final_init (0 before: no slab
 * allocation happens then), raised when a region makes the heap large
 * enough, never lowered (a block's class is its slab's, whatever the limit
 * says later). */
static _Atomic unsigned classes_in_use = TINY_CHUNK_CLASSES;
_Atomic size_t slab_max_size;

static const uint8_t class_by_granule[HA_SMALL_MAX / 16 + 1] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15,
    15, 16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17, 17, 18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19,
    19, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21,
    21, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,
    23, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
    24, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25,
    25, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27,
    27, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29,
    29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33,
    33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 34, 34, 34, 34, 34, 34,
    34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34,
    34, 34, 34, 34, 34, 34, 34, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35,
    35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35, 35,
    36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36,
    36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36,
    36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37,
    37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37,
    37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38,
    38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38,
    38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38,
    38, 38, 38, 38, 38, 38, 38, 38, 38, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39,
    39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39,
    39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39,
    39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 40,
    40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,
    40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,
    40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,
    40, 40, 40, 40, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41,
    41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41,
    41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41,
    41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41,
    41, 41, 41, 41, 41, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42,
    42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42,
    42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42,
    42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42,
    42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42,
    42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43,
    43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43,
    43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43,
    43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43,
    43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43,
    43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43,
    43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43,
    43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 43, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44,
    44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44,
    44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44,
    44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44,
    44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44, 44,
    44, 44, 44, 44, 44, 44, 44, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45,
    45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45,
    45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45,
    45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45,
    45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45,
    45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 45, 46, 46, 46,
    46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46,
    46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46,
    46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46,
    46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46,
    46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46,
    46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46,
    46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46, 46,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47, 47,
    47, 47, 47, 47, 47, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
    48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49,
    49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
    50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
};
HA_STATIC_ASSERT(sizeof class_by_granule == HA_SMALL_MAX / 16 + 1, "one entry per granule");

/* The class of every table (in_use false), for a sized free's check
 * against a known object's class; or of the classes in use. */
HA_INLINE int class_lookup(size_t size, size_t align, bool in_use)
{
    size_t max = in_use ? atomic_load_explicit(&slab_max_size, memory_order_relaxed) : HA_SMALL_MAX;
    if (HA_UNLIKELY(size > max || align > HA_PAGE_SIZE))
        return -1;
    unsigned n = in_use ? atomic_load_explicit(&classes_in_use, memory_order_relaxed) : SLAB_CLASSES;
    /* A block aligned beyond every class in use (2 or 4 KiB, in a heap too
     * small for the classes of 1..8 KiB) takes the first of those that
     * honours it, as in a larger heap: a chunk for the few such blocks a
     * kernel makes, and its sized free is checked against its class. */
    if (n < SMALL_CHUNK_CLASSES)
        n = SMALL_CHUNK_CLASSES;
    int c = class_by_granule[(size + 15) / 16];
    while (HA_UNLIKELY(class_align_tab[c] < align)) { /* align > 16: rare */
        if (++c == (int)n)
            return -1;
        /* Past 8 KiB, a class more than a quarter too big for the size
         * wastes more than TLSF's alignment gap would. */
        if (c >= SMALL_CHUNK_CLASSES && class_size_tab[c] - size > size / 4)
            return -1;
    }
    return c;
}

HA_INLINE int class_for(size_t size, size_t align)
{
    return class_lookup(size, align, true);
}

/* A class's chunk size (and alignment), from its layout: the tiny
 * classes' is chosen when the heap is configured (class_layouts_build). */
HA_INLINE size_t chunk_size(unsigned cls)
{
    return (size_t)class_layout_tab[cls].off_mask + 1;
}

/* Fill class_layout_tab, the tiny classes in chunks of tiny_chunk bytes. */
static void class_layouts_build(size_t tiny_chunk)
{
    for (unsigned cls = 0; cls < SLAB_CLASSES; cls++) {
        struct class_layout *l = &class_layout_tab[cls];
        size_t size = class_size_tab[cls];
        size_t chunk = cls < TINY_CHUNK_CLASSES ? tiny_chunk : cls < SMALL_CHUNK_CLASSES ? SMALL_CHUNK_SIZE
                                                                                        : BIG_CHUNK_SIZE;
        size_t words = (chunk / size + 63) / 64;
        size_t first = ha_align_up(sizeof(struct slab) + words * sizeof(uint64_t), class_align_tab[cls]);
        size_t min = (cls ? class_size_tab[cls - 1] : 0) + 1;
        /* Every field holds its value (a port with larger chunks or
         * headers would overflow one) and every bin its cap. */
        HA_ASSERT(first <= UINT16_MAX && (chunk - first) / size <= UINT16_MAX && chunk - 1 <= UINT32_MAX &&
                      bin_cap_tab[cls] <= BIN_SLOTS,
                  &class_size_tab[cls]);
        l->recip = (((uint64_t)1 << 40) + size - 1) / size;
        l->off_mask = (uint32_t)(chunk - 1);
        l->first_off = (uint16_t)first;
        l->nobj = (uint16_t)((chunk - first) / size);
        l->objs = (uint32_t)(l->nobj * size);
        l->size = (uint16_t)size;
        l->min = (uint16_t)min;
        l->span = (uint16_t)(size - min);
        l->cap = bin_cap_tab[cls];
    }
    /* Every request of each granule (16g - 15 .. 16g) is in its class's
     * min..min+span: the sized free's one compare is class_by_granule's. */
    for (size_t g = 1; g <= HA_SMALL_MAX / 16; g++) {
        const struct class_layout *l = &class_layout_tab[class_by_granule[g]];
        HA_ASSERT(16 * g - 15 - l->min <= l->span && 16 * g - l->min <= l->span, l);
    }
}

void slab_configure(void)
{
    size_t pages = page_total_count();
    if (class_layout_tab[0].off_mask == 0) {
        /* The first call (ha_final_init): no slab exists yet, so the tiny
         * classes' chunk size can still be chosen; a class's objects are
         * found by its one layout, so it stays as the heap grows. */
        class_layouts_build(pages >= TINY_WIDE_MIN_PAGES ? SMALL_CHUNK_SIZE : HA_CHUNK_SIZE);
        /* The shared cache is static (zero): its bins learn their sizes
         * here, before any object goes through it. */
        for (unsigned cls = 0; cls < SLAB_CLASSES; cls++)
            shared_cache.bins[cls].size = class_size_tab[cls];
    }
    unsigned n = atomic_load_explicit(&classes_in_use, memory_order_relaxed);
    if (pages >= BIG_CLASSES_MIN_PAGES)
        n = SLAB_CLASSES;
    else if (pages >= SMALL_CLASSES_MIN_PAGES && n < SMALL_CHUNK_CLASSES)
        n = SMALL_CHUNK_CLASSES;
    atomic_store_explicit(&classes_in_use, n, memory_order_relaxed);
    atomic_store_explicit(&slab_max_size, class_size_tab[n - 1], memory_order_relaxed);
}

int slab_class_for(size_t size, size_t align)
{
    return class_for(size, align);
}

size_t slab_class_size(unsigned cls)
{
    return class_size_tab[cls];
}

size_t slab_class_chunk(unsigned cls)
{
    return chunk_size(cls);
}

/* ----------------------------------------------------------------- slabs */

/* Keyed (ha_slab_key): a header is only believed at its own address, for
 * its own class, and cannot be forged without the key. */
HA_INLINE uint64_t slab_check_word(const struct slab *s, unsigned cls)
{
    return ((uint64_t)(uintptr_t)s + cls) ^ ha_slab_key;
}

/* The word a free object holds at its start.  Not a pointer of any
 * canonical form, so live data rarely holds it by chance; when it does,
 * the slow path finds the object live and the free goes ahead. */
HA_INLINE uint64_t free_tag(const void *p)
{
    return (uint64_t)(uintptr_t)p ^ ha_tag_key;
}

/* Is s the header of a live slab of class cls?  Read where a header's
 * links and bitmap are about to be used (refill, drain, trim): the check
 * word comes first in the chunk, so an overflow off the end of the chunk
 * below cannot reach them without wiping it. */
HA_INLINE bool slab_header_ok(const struct slab *s, unsigned cls)
{
    return s->check == slab_check_word(s, cls) && s->cls == cls;
}


HA_INLINE size_t chunk_pages(unsigned cls)
{
    return chunk_size(cls) / HA_PAGE_SIZE;
}

/* The slab holding p, an object of class cls. */
HA_INLINE struct slab *slab_of(const void *p, unsigned cls)
{
    return (struct slab *)ha_align_down((uintptr_t)p, chunk_size(cls));
}

/* Where slab s's objects lie: its class's. */
HA_INLINE const struct class_layout *slab_layout(const struct slab *s)
{
    return &class_layout_tab[s->cls];
}

/* Exact for every offset in a chunk: offset * (recip - 2^40 / size) stays
 * below 2^18 * 1 < 2^40 / size for every class size. */
HA_INLINE unsigned slab_index(const struct slab *s, const void *p)
{
    const struct class_layout *l = slab_layout(s);
    uint64_t rel = (uint64_t)((uintptr_t)p - (uintptr_t)s - l->first_off);
    return (unsigned)((rel * l->recip) >> 40);
}

HA_INLINE void *slab_object(const struct slab *s, unsigned idx)
{
    return (char *)s + slab_layout(s)->first_off + (size_t)idx * class_size_tab[s->cls];
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
    if (s->list == SLAB_EMPTY)
        atomic_fetch_sub_explicit(&kept_empty_pages, chunk_pages(s->cls), memory_order_relaxed);
    if (to == SLAB_EMPTY)
        atomic_fetch_add_explicit(&kept_empty_pages, chunk_pages(s->cls), memory_order_relaxed);
    list_remove(class_list(k, (enum slab_list)s->list), s);
    list_push(class_list(k, to), s);
    s->list = (uint16_t)to;
}

/* A fresh slab with every object available and tagged; class lock held. */
static struct slab *slab_new(struct slab_class *k, unsigned cls)
{
    size_t chunk = chunk_size(cls);
    struct slab *s = page_alloc(chunk / HA_PAGE_SIZE, chunk, PAGE_KIND_SLAB, 0);
    if (!s)
        return 0;
    const struct class_layout *l = &class_layout_tab[cls];
    size_t size = class_size_tab[cls], nobj = l->nobj;
    size_t words = (chunk / size + 63) / 64;
    s->check = slab_check_word(s, cls);
    s->cls = (uint16_t)cls;
    s->navail = (uint16_t)nobj;
    s->words = (uint16_t)words;
    s->first_word = 0;
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
    /* The class is told to the free path last: no object is out yet, and
     * each reaches a CPU through this lock. */
    page_set_aux(s, chunk / HA_PAGE_SIZE, (uint8_t)cls);
    s->list = SLAB_PARTIAL;
    list_push(&k->partial, s);
    k->nslabs++;
    k->navail += nobj;
    return s;
}

static void slab_release(struct slab_class *k, struct slab *s)
{
    if (s->list == SLAB_EMPTY)
        atomic_fetch_sub_explicit(&kept_empty_pages, chunk_pages(s->cls), memory_order_relaxed);
    list_remove(class_list(k, (enum slab_list)s->list), s);
    k->nslabs--;
    k->navail -= s->navail;
    s->check = 0;
    page_set_aux(s, chunk_pages(s->cls), PAGE_AUX_NONE);
    page_free(s, chunk_pages(s->cls));
}

/* May slab s (class k), wholly free now, be kept rather than given back
 * to the page allocator?  A class's first always (against thrashing at
 * the boundary of a slab); more while all kept empty slabs together hold
 * at most an eighth of the pages the page allocator manages, so that a
 * burst of allocations that is freed and made again (a kernel building
 * and dropping a table) finds its slabs made, their objects tagged,
 * instead of making them anew each time.  Kept slabs are memory in
 * reserve, not lost: ha_trim gives them back, and so does the reclaim
 * that runs before any allocation fails. */
static bool slab_keep_empty(const struct slab_class *k, const struct slab *s)
{
    /* The checked build walks every slab's free objects on every call:
     * there kept slabs would only slow it, so it keeps the one. */
    if (!k->empty || HA_CHECKED)
        return !k->empty;
    size_t kept = atomic_load_explicit(&kept_empty_pages, memory_order_relaxed);
    return kept + chunk_pages(s->cls) <= page_total_count() / 8;
}

/* The slab changes list or goes back to the page allocator: the first
 * object back in a full slab, the last in an emptied one. */
static HA_NOINLINE void slab_put_moved(struct slab_class *k, struct slab *s)
{
    if (s->navail == 1)
        slab_move(k, s, SLAB_PARTIAL);
    if (s->navail == slab_layout(s)->nobj) {
        if (slab_keep_empty(k, s))
            slab_move(k, s, SLAB_EMPTY);
        else
            slab_release(k, s);
    }
}

/* An object of class cls (layout l) came back to its slab; class lock
 * held.  False (nothing changed) when the slab's header is damaged.
 * Inline in the loops that drain a bin, which keep l and the class. */
HA_INLINE bool slab_put(struct slab_class *k, unsigned cls, const struct class_layout *l, void *p)
{
    uintptr_t off = (uintptr_t)p & l->off_mask;
    struct slab *s = (struct slab *)((uintptr_t)p - off);
    if (HA_UNLIKELY(!slab_header_ok(s, cls)))
        return false;
    unsigned idx = (unsigned)(((uint64_t)(off - l->first_off) * l->recip) >> 40);
    s->avail[idx / 64] |= 1ull << (idx % 64);
    unsigned navail = ++s->navail;
    k->navail++;
    if (HA_UNLIKELY(navail == 1 || navail == l->nobj))
        slab_put_moved(k, s);
    return true;
}

/* The n (0 < n < popcount(bits)) lowest set bits of bits. */
HA_INLINE uint64_t lowest_bits(uint64_t bits, unsigned n)
{
    uint64_t low = bits & -bits;
    if ((bits & (bits + low)) == 0) /* one run of ones, as in a fresh slab */
        return (low << n) - low;
    uint64_t taken = 0;
    for (; n; n--, bits &= bits - 1)
        taken |= bits & -bits;
    return taken;
}

/* Move up to n available objects of slab s into bin b; class lock held.
 * A word of the bitmap whose every available object fits is taken whole.
 * The search starts where the last one stopped (first_word), and wraps to
 * the start only if objects came back below it meanwhile: a slab is
 * mostly taken from in address order, and the words it left behind are
 * not read again for each refill. */
static void slab_take(struct slab_class *k, struct slab *s, struct bin *b, unsigned n)
{
    size_t size = class_size_tab[s->cls], count = b->count;
    unsigned w = s->first_word, got = 0, words = s->words;
    if (n > s->navail)
        n = s->navail;
    for (unsigned scanned = 0; got < n && scanned < words; scanned++, w++) {
        if (w == words)
            w = 0;
        uint64_t bits = s->avail[w], taken = bits;
        if (!bits)
            continue;
        unsigned have = ha_popcount(bits);
        if (have > n - got) {
            taken = lowest_bits(bits, n - got);
            have = n - got;
        }
        s->avail[w] = bits & ~taken;
        got += have;
        char *base = (char *)s + slab_layout(s)->first_off + (size_t)w * 64 * size;
        for (; taken; taken &= taken - 1)
            b->slots[count++] = base + ha_ctz(taken) * size;
        if (s->avail[w] != 0)
            break; /* got == n: start here next time */
    }
    s->first_word = (uint16_t)(w < words ? w : 0);
    b->count = count;
    s->navail = (uint16_t)(s->navail - got);
    k->navail -= got;
    if (s->navail == 0)
        slab_move(k, s, SLAB_FULL);
}

/* ------------------------------------------------------------ CPU caches */

/* The shared cache, its byte counter registered on first use. */
static struct cpu_cache *shared_cache_get(void)
{
    if (!atomic_exchange_explicit(&shared_counted, 1u, memory_order_relaxed))
        stats_bytes_register(&shared_cache.bytes);
    return &shared_cache;
}

/* A cache as made: empty, each bin knowing its class's size. */
static void cache_init(struct cpu_cache *c)
{
    ha_memset(c, 0, sizeof *c);
    for (unsigned cls = 0; cls < SLAB_CLASSES; cls++)
        c->bins[cls].size = class_size_tab[cls];
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
            cache_init(c);
            stats_bytes_register(&c->bytes);
            stats_gate_register(cpu, c);
            unsigned n = atomic_load_explicit(&ncaches, memory_order_relaxed);
            cache_list[n] = c;
            atomic_store_explicit(&ncaches, n + 1, memory_order_release);
            atomic_store_explicit(&caches[cpu], c, memory_order_release);
        }
    }
    lock_release(&cache_create_lock, irq);
    return c ? c : shared_cache_get();
}

/* This CPU's cache. */
HA_INLINE struct cpu_cache *cache_get(void)
{
    unsigned cpu = ha_cpu();
    struct cpu_cache *c = ha_load_published(&caches[cpu]);
    return HA_LIKELY(c != 0) ? c : cache_create(cpu);
}

/* This CPU's cache if it is made already, else NULL: for the fast paths,
 * which leave the making to their slow path. */
HA_INLINE struct cpu_cache *cache_peek(unsigned hooks)
{
    return ha_load_published(&caches[ha_cpu_if(hooks)]);
}

/* The same for the fast free, through this CPU's gate (stats.c): NULL also
 * while a peak is pending, which the slow path's fall samples. */
HA_INLINE struct cpu_cache *cache_peek_free(unsigned hooks)
{
    return (struct cpu_cache *)ha_load_published(&stats_gates[ha_cpu_if(hooks)]);
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

/* Refill an empty bin with half its capacity; cache lock held.  NULL, or
 * a slab of the class whose header is damaged (the bin then holds what
 * came before it). */
static HA_NOINLINE struct slab *bin_refill(struct bin *b, unsigned cls)
{
    struct slab_class *k = &classes[cls];
    unsigned want = bin_cap_tab[cls] / 2;
    uintptr_t irq = lock_acquire(&k->lock);
    while (b->count < want) {
        struct slab *s = k->partial ? k->partial : k->empty;
        if (s && HA_UNLIKELY(!slab_header_ok(s, cls))) {
            lock_release(&k->lock, irq);
            return s;
        }
        if (!s)
            s = slab_new(k, cls);
        else if (s == k->empty)
            slab_move(k, s, SLAB_PARTIAL);
        if (!s)
            break;
        slab_take(k, s, b, want - b->count);
    }
    lock_release(&k->lock, irq);
    return 0;
}

/* Return the n coldest (bottom) objects of a bin to their slabs; cache
 * lock held.  NULL, or the damaged header of the slab of the first object
 * that could not go back (it and those above it stay in the bin). */
static HA_NOINLINE struct slab *bin_drain(struct bin *b, unsigned cls, unsigned n)
{
    struct slab_class *k = &classes[cls];
    uintptr_t irq = lock_acquire(&k->lock);
    const struct class_layout *l = &class_layout_tab[cls];
    unsigned i = 0;
    while (i < n && slab_put(k, cls, l, b->slots[i]))
        i++;
    lock_release(&k->lock, irq);
    b->count -= i;
    ha_memmove(b->slots, b->slots + i, b->count * sizeof b->slots[0]);
    return i < n ? slab_of(b->slots[0], cls) : 0;
}

#if HA_CHECKED
/* First byte after the tag that lost its poison, or NULL.  Objects are
 * 16-aligned and a multiple of 16 long: compare four words a step, and look
 * for the byte only once a word differs.  The walk on every call reads every
 * free object this way, so this loop sets the checked build's speed. */
static const unsigned char *poison_damage(const void *p, size_t size)
{
    const uint64_t poison = 0x0101010101010101ull * HA_POISON_FREE;
    const uint64_t *w = p;
    size_t n = size / sizeof *w, i;
    uint64_t d = w[1] ^ poison;
    for (i = 2; d == 0 && i + 4 <= n; i += 4)
        d = (w[i] ^ poison) | (w[i + 1] ^ poison) | (w[i + 2] ^ poison) | (w[i + 3] ^ poison);
    for (; d == 0 && i < n; i++)
        d = w[i] ^ poison;
    if (HA_LIKELY(d == 0))
        return 0;
    const unsigned char *b = (const unsigned char *)(w + 1);
    while (*b == HA_POISON_FREE)
        b++;
    return b;
}
#endif

/*
 * The allocation and the free through a CPU's cache come in pairs, as in
 * SLUB: a fast path (cache_try_alloc, cache_put) that reads top to bottom and
 * calls nothing that returns, so that it needs no registers saved, and a
 * slow path for everything rare (refill, drain, a tag that says the block
 * is free or damaged, a new high of the byte counter, the checked build's
 * poison) that ends the call itself: the free's is entered with the cache
 * lock held; the allocation's fast path lets go of it and returns NULL, and
 * its slow path starts over from the caller's arguments.
 */

/* The object p popped from a bin: the checks the fast path leaves out,
 * then hand it out; cache lock held, released here. */
static HA_NOINLINE void *cache_alloc_slow(struct cpu_cache *c, uintptr_t irq, unsigned cls, size_t accounted)
{
    struct bin *b = &c->bins[cls];
    if (b->count == 0) {
        struct slab *bad = bin_refill(b, cls);
        if (HA_UNLIKELY(bad != 0)) {
            lock_release(&c->lock, irq);
            ha_fault(FAULT_CORRUPT, bad);
        }
        if (b->count == 0) {
            lock_release(&c->lock, irq);
            return 0;
        }
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
    b->pops++;
    stats_bytes_add(&c->bytes, (intptr_t)accounted, false, false);
    lock_release(&c->lock, irq);
    return p;
}

/* The slow path of an allocation from class cls: this CPU's cache (made
 * here if need be), locked, then everything cache_try_alloc leaves out;
 * an allocation the cache cannot serve (out of memory) ends in
 * miss(size, align), or NULL when miss is NULL. */
static HA_NOINLINE void *cache_alloc_slower(unsigned cls, size_t accounted, slab_miss_fn miss, size_t size,
                                            size_t align)
{
    struct cpu_cache *c = cache_get();
    uintptr_t irq = lock_acquire(&c->lock);
    void *p = cache_alloc_slow(c, irq, cls, accounted);
    return p || !miss ? p : miss(size, align);
}

/* The rest of an allocation that takes this CPU's byte counter past its
 * limit (used) with no peak pending: store it, mark the peak pending, let
 * go of the cache lock.  Out of line and entered by a tail call, so that
 * the fast path saves nothing for it: a heap that grows (a kernel
 * building its tables) takes it at its first allocation after each
 * sample, the fast path the rest while the mark stands. */
static HA_NOINLINE __attribute__((returns_nonnull)) void *cache_alloc_new_high(struct cpu_cache *c, uintptr_t irq,
                                                                              void *p, intptr_t used)
{
    stats_bytes_set(&c->bytes, used);
    stats_peak_mark(); /* the fast path found no mark pending */
    lock_release(&c->lock, irq);
    return p;
}

/* The fast path: an object of class cls from this CPU's bin, or NULL when
 * the cache is still to be made, the bin is empty, or the top object's tag
 * is damaged: then the caller takes the slow path, which sorts out which.
 * It calls nothing that returns, so that it needs no registers saved (a
 * new high of the byte counter ends in a tail call). */
HA_INLINE void *cache_try_alloc(unsigned cls, unsigned hooks)
{
    struct cpu_cache *c = cache_peek(hooks);
    if (HA_UNLIKELY(!c))
        return 0;
    uintptr_t irq = lock_acquire_if(&c->lock, hooks);
    struct bin *b = &c->bins[cls];
    HA_OPAQUE(b); /* slots[n] from b, not from c, cls and n afresh */
    size_t n = b->count;
    if (HA_UNLIKELY(HA_CHECKED || n == 0)) {
        lock_release_if(&c->lock, irq, hooks);
        return 0;
    }
    uint64_t *p = *bin_slot(b, n - 1);
    /* The default build counts the class's size (the checked build's
     * requested size takes the slow path). */
    intptr_t used = atomic_load_explicit(&c->bytes.used, memory_order_relaxed) + (intptr_t)b->size;
    if (HA_UNLIKELY(*p != free_tag(p))) {
        lock_release_if(&c->lock, irq, hooks);
        return 0;
    }
    b->count = n - 1;
    *p = 0;
    b->pops++;
    /* Past the limit with the peak already pending (a heap that grows):
     * nothing to mark, so the fast path goes on. */
    if (HA_UNLIKELY(used > stats_bytes_limit(&c->bytes)) && !stats_peak_is_pending())
        return cache_alloc_new_high(c, irq, p, used);
    stats_bytes_set(&c->bytes, used);
    lock_release_if(&c->lock, irq, hooks);
    return p;
}

void *slab_alloc(unsigned cls, size_t size, size_t *usable)
{
    *usable = class_size_tab[cls];
    size_t accounted = HA_CHECKED ? size : *usable;
    void *p = cache_try_alloc(cls, HOOKS_CHECKED);
    return HA_LIKELY(p != 0) ? p : cache_alloc_slower(cls, accounted, 0, 0, 0);
}

/* slab_alloc_small's slow path, from its own arguments: the fast path
 * keeps them where they came, so that it moves nothing for this call. */
static HA_NOINLINE void *slab_alloc_small_slow(size_t size, size_t align, slab_miss_fn miss)
{
    unsigned cls = class_by_granule[(size + 15) / 16];
    return cache_alloc_slower(cls, class_size_tab[cls], miss, size, align);
}

/* The fast path of ha_alloc (default build): 1 <= size <= slab_max_size
 * and align <= HA_MIN_ALIGN, which every class honours, so the class is
 * one table lookup.  A miss (out of memory) ends in miss(size, align), a
 * tail call: the caller's own miss handling would make it save registers,
 * on every call, for what is almost never used. */
HA_INLINE void *slab_alloc_small_if(size_t size, size_t align, slab_miss_fn miss, unsigned hooks)
{
    unsigned cls = class_by_granule[(size + 15) / 16];
    void *p = cache_try_alloc(cls, hooks);
    return HA_LIKELY(p != 0) ? p : slab_alloc_small_slow(size, align, miss);
}

void *slab_alloc_small(size_t size, size_t align, slab_miss_fn miss)
{
    return slab_alloc_small_if(size, align, miss, HOOKS_ALL);
}

void *slab_alloc_small_none(size_t size, size_t align, slab_miss_fn miss)
{
    return slab_alloc_small_if(size, align, miss, HOOKS_NONE);
}

/* A free that found the object's tag already there (a double free, or
 * live data equal to the tag), a full bin, or the checked build's poison;
 * cache lock held, released here. */
static HA_NOINLINE void cache_put_slow(struct cpu_cache *c, uintptr_t irq, void *p, unsigned cls, size_t accounted,
                                       bool tagged)
{
    if (tagged) {
        lock_release(&c->lock, irq);
        struct slab *s = slab_of(p, cls);
        if (slab_object_is_free(s, p, slab_index(s, p), cls))
            ha_fault(FAULT_DOUBLE_FREE, p); /* the tag was there: nothing changed */
        irq = lock_acquire(&c->lock);       /* live, and its owner stored the tag's value */
    }
#if HA_CHECKED
    ha_memset((char *)p + sizeof(uint64_t), HA_POISON_FREE, class_size_tab[cls] - sizeof(uint64_t));
#endif
    struct bin *b = &c->bins[cls];
    if (b->count >= bin_cap_tab[cls]) {
        struct slab *bad = bin_drain(b, cls, b->count / 2);
        if (HA_UNLIKELY(bad != 0)) {
            /* p is tagged but in no bin: it is lost, not handed out twice. */
            lock_release(&c->lock, irq);
            ha_fault(FAULT_CORRUPT, bad);
        }
    }
    b->slots[b->count++] = p;
    b->pushes++;
    stats_bytes_add(&c->bytes, -(intptr_t)accounted, false, false);
    lock_release(&c->lock, irq);
}

/* cache_put on a CPU whose cache is still to be made, or whose gate is
 * shut: the fall in cache_put_slow samples a pending peak (and opens the
 * gates). */
static HA_NOINLINE void cache_put_first(void *p, unsigned cls, size_t accounted)
{
    struct cpu_cache *c = cache_get();
    uintptr_t irq = lock_acquire(&c->lock);
    bool tagged = ha_xchg_relaxed64((uint64_t *)p, free_tag(p)) == free_tag(p);
    cache_put_slow(c, irq, p, cls, accounted, tagged);
    stats_gate_heal(ha_cpu());
}

/* Free a validated object p of class cls. */
HA_INLINE void cache_put(void *p, size_t cls, size_t accounted, unsigned hooks)
{
    struct cpu_cache *c = cache_peek_free(hooks);
    if (HA_UNLIKELY(!c)) {
        cache_put_first(p, cls, accounted);
        return;
    }
    uintptr_t irq = lock_acquire_if(&c->lock, hooks);
    /* Claim the object: of two CPUs freeing it at once, one sees the tag
     * the other wrote, and its search (which takes every cache lock) finds
     * the object in the first CPU's bin. */
    uint64_t tag = free_tag(p);
    bool tagged = ha_xchg_relaxed64((uint64_t *)p, tag) == tag;
    struct bin *b = &c->bins[cls];
    HA_OPAQUE(b); /* slots[n] from b, not from c, cls and n afresh */
    size_t n = b->count;
    if (HA_UNLIKELY(HA_CHECKED || tagged || n >= class_layout_tab[cls].cap)) {
        cache_put_slow(c, irq, p, cls, accounted, tagged);
        return;
    }
    *bin_slot(b, n) = p;
    b->count = n + 1;
    b->pushes++;
    stats_bytes_release(&c->bytes, accounted);
    lock_release_if(&c->lock, irq, hooks);
}

void cache_free(void *p, unsigned cls, size_t accounted)
{
    cache_put(p, cls, accounted, HOOKS_CHECKED);
}

/* p is in a SLAB page of region r: its class, kept by the page allocator
 * beside the page's kind (slab_new), or PAGE_AUX_NONE. */
HA_INLINE size_t slab_class_in(const struct page_region *r, const void *p)
{
    return page_aux_in(r, (uintptr_t)p);
}

/* p in a slab of class cls (any page-map class byte): FAULT_NONE and *idx
 * if p is the start of one of its objects.  From the class's layout, not
 * the header.  A byte that names no class fails the range test; the
 * callers tell FAULT_CORRUPT from the rest by the byte. */
HA_STATIC_ASSERT(((uint64_t)1 << 40) / HA_SMALL_MAX >= ((uint64_t)1 << 24) && BIG_CHUNK_SIZE <= (1u << 18),
                 "slab_locate_in's interior test needs recip >= 2^24 and offsets below 2^18");

/* The object offset rel = k * size + r (0 <= r < size) times
 * recip = ceil(2^40 / size) = (2^40 + e) / size, 0 <= e < size, is
 * k * 2^40 + k * e + r * recip.  k * e < chunk size <= 2^18, and for
 * r >= 1, r * recip >= recip >= 2^40 / 65520 > 2^24 while the sum stays
 * below 2^40 (size < 2^16).  So bits 40 up are the index k, and bits 24
 * to 39 are all clear exactly when r == 0: the interior-pointer test
 * needs no multiply back by the size.  (Checked for every offset of every
 * class by test_bytes' interior_pointer_every_class.) */
HA_INLINE enum ha_fault slab_locate_in(const void *p, size_t cls, unsigned *idx)
{
    const struct class_layout *l = &class_layout_tab[cls];
    /* Below the first object it wraps: one compare for both ends. */
    uint64_t rel = ((uintptr_t)p & l->off_mask) - l->first_off;
    uint64_t q = rel * l->recip;
    *idx = (unsigned)(q >> 40);
    if (HA_UNLIKELY(rel >= l->objs))
        return cls < SLAB_CLASSES ? FAULT_NOT_ALLOCATED : FAULT_CORRUPT;
    if (HA_UNLIKELY((q << 24) >> 48 != 0))
        return FAULT_INTERIOR;
    return FAULT_NONE;
}

enum ha_fault slab_validate(const void *p, unsigned *cls)
{
    /* p's page is SLAB: it lies in a region. */
    const struct page_region *r = page_region_of((uintptr_t)p >> HA_PAGE_SHIFT);
    unsigned c = slab_class_in(r, p), idx;
    if (c >= SLAB_CLASSES)
        return FAULT_CORRUPT;
    enum ha_fault f = slab_locate_in(p, c, &idx);
    if (f != FAULT_NONE)
        return f;
    if (*(const uint64_t *)p == free_tag(p) && slab_object_is_free(slab_of(p, c), (void *)p, idx, c))
        return FAULT_DOUBLE_FREE;
    *cls = c;
    return FAULT_NONE;
}

/* The rest of a sized free whose size or alignment is not plainly the
 * class's own (the table names another class, or the alignment is more
 * than the class guarantees): the full lookup settles it, and names what
 * the caller got wrong if it differs.  Out of line: its class walk would
 * make every free save registers. */
static HA_NOINLINE void slab_free_odd(void *p, unsigned cls, size_t need, size_t align)
{
    if (need == 0) /* as ha_alloc served it: as 1 */
        need = 1;
    if (class_lookup(need, align, false) != (int)cls) {
        if ((uintptr_t)p % align != 0 || class_lookup(need, HA_MIN_ALIGN, false) == (int)cls)
            ha_fault(FAULT_ALIGN_MISMATCH, p);
        ha_fault(FAULT_SIZE_MISMATCH, p);
    }
    cache_put(p, cls, class_size_tab[cls], HOOKS_CHECKED);
}

/* Free p, in a SLAB page of region r: its class from the page map, then
 * the arithmetic of its class's layout (object start, in range), the
 * sized free's class test, and the tag's exchange in cache_put.  The
 * chunk's header is not read. */
HA_INLINE void slab_free_if(void *p, size_t need, size_t align, bool sized, const struct page_region *r, unsigned hooks)
{
    size_t cls = slab_class_in(r, p);
    unsigned idx;
    /* No class (the page allocator's map was written over) is
     * FAULT_CORRUPT.  One call of ha_fault for every fault, so that only
     * its path makes a frame. */
    enum ha_fault f = slab_locate_in(p, cls, &idx);
    if (HA_UNLIKELY(f != FAULT_NONE))
        ha_fault(f, p);
    const struct class_layout *l = &class_layout_tab[cls];
    /* What class_lookup(need, align) == cls comes to when the alignment
     * needs no walk past the size's class: need in the class's interval
     * (need 0, as ha_alloc serves it, takes slab_free_odd). */
    if (sized && HA_UNLIKELY(need - l->min > l->span || (align > HA_MIN_ALIGN && class_align_tab[cls] < align))) {
        slab_free_odd(p, cls, need, align);
        return;
    }
    cache_put(p, cls, l->size, hooks);
}

void slab_free(void *p, size_t need, size_t align, const struct page_region *r)
{
    slab_free_if(p, need, align, true, r, HOOKS_ALL);
}

void slab_free_none(void *p, size_t need, size_t align, const struct page_region *r)
{
    slab_free_if(p, need, align, true, r, HOOKS_NONE);
}

/* The copies for align <= HA_MIN_ALIGN (every class honours it): the
 * alignment test folds away, one argument fewer. */
void slab_free_min(void *p, size_t need, const struct page_region *r)
{
    slab_free_if(p, need, HA_MIN_ALIGN, true, r, HOOKS_ALL);
}

void slab_free_min_none(void *p, size_t need, const struct page_region *r)
{
    slab_free_if(p, need, HA_MIN_ALIGN, true, r, HOOKS_NONE);
}

/* ha_realloc's look-up of p, in a SLAB page of region r: the class of the
 * live object starting at p, found as slab_free finds it (the page map's
 * class, the layout's arithmetic), and in *fits whether need bytes at an
 * alignment <= HA_MIN_ALIGN map to that class too.  -1 when no object
 * starts at p or p holds a free object's tag: the caller's general path
 * tells which, and names it. */
int slab_realloc_class(const void *p, const struct page_region *r, size_t need, bool *fits)
{
    size_t cls = slab_class_in(r, p);
    unsigned idx;
    if (slab_locate_in(p, cls, &idx) != FAULT_NONE || *(const uint64_t *)p == free_tag(p))
        return -1;
    const struct class_layout *l = &class_layout_tab[cls];
    *fits = need - l->min <= l->span;
    return (int)cls;
}

/* ha_free's copies: no size to check, so two arguments fewer to keep. */
void slab_free_unsized(void *p, const struct page_region *r)
{
    slab_free_if(p, 0, 0, false, r, HOOKS_ALL);
}

void slab_free_unsized_none(void *p, const struct page_region *r)
{
    slab_free_if(p, 0, 0, false, r, HOOKS_NONE);
}

/* The cache whose record counts for this CPU, locked: the shared one
 * before the caches exist. */
static struct cpu_cache *account_begin(uintptr_t *irq)
{
    struct cpu_cache *c = page_is_live() ? cache_get() : shared_cache_get();
    *irq = lock_acquire(&c->lock);
    return c;
}

void cache_account_alloc(size_t usable)
{
    uintptr_t irq;
    struct cpu_cache *c = account_begin(&irq);
    stats_bytes_add(&c->bytes, (intptr_t)usable, true, false);
    lock_release(&c->lock, irq);
}

void cache_account_free(size_t usable)
{
    uintptr_t irq;
    struct cpu_cache *c = account_begin(&irq);
    stats_bytes_add(&c->bytes, -(intptr_t)usable, false, true);
    lock_release(&c->lock, irq);
}

void cache_account_resize(size_t old_usable, size_t new_usable)
{
    uintptr_t irq;
    struct cpu_cache *c = account_begin(&irq);
    stats_bytes_add(&c->bytes, (intptr_t)new_usable - (intptr_t)old_usable, false, false);
    lock_release(&c->lock, irq);
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
            unsigned j = 0;
            while (j < b->count && slab_put(&classes[cls], cls, &class_layout_tab[cls], b->slots[j]))
                j++;
            b->count -= j;
            ha_memmove(b->slots, b->slots + j, b->count * sizeof b->slots[0]);
            if (HA_UNLIKELY(b->count != 0)) {
                struct slab *bad = slab_of(b->slots[0], cls);
                unlock_everything(&l);
                ha_fault(FAULT_CORRUPT, bad);
            }
        }
    }
    for (unsigned cls = 0; cls < SLAB_CLASSES; cls++)
        while (classes[cls].empty)
            slab_release(&classes[cls], classes[cls].empty);
    unlock_everything(&l);
}

/* Bytes of a slab of class cls that no object can use: header, padding,
 * and the tail too short for an object. */
static size_t slab_overhead(unsigned cls)
{
    return chunk_size(cls) - (size_t)class_layout_tab[cls].nobj * class_size_tab[cls];
}

void slab_stats(struct ha_stats *out)
{
    struct all_locks l;
    lock_everything(&l);
    size_t free_bytes = 0, meta = l.n * CACHE_PAGES * HA_PAGE_SIZE;
    for (unsigned i = 0; i <= l.n; i++) {
        const struct cpu_cache *c = cache_at(&l, i);
        for (unsigned cls = 0; cls < SLAB_CLASSES; cls++) {
            free_bytes += (size_t)c->bins[cls].count * class_size_tab[cls];
            out->allocs += c->bins[cls].pops;
            out->frees += c->bins[cls].pushes;
        }
    }
    for (unsigned cls = 0; cls < SLAB_CLASSES; cls++) {
        free_bytes += (size_t)classes[cls].navail * class_size_tab[cls];
        meta += classes[cls].nslabs * slab_overhead(cls);
    }
    unlock_everything(&l);
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
            page_kind_of((uintptr_t)s + chunk_size(cls) - 1) != PAGE_KIND_SLAB)
            return check_fail("slab: chunk pages not of kind SLAB", s);
        size_t nobj_s = class_layout_tab[cls].nobj;
        if (s->words != (chunk_size(cls) / class_size_tab[cls] + 63) / 64)
            return check_fail("slab: bitmap length wrong for its class", s);
        /* The free path takes the class from the page map: every page. */
        const struct page_region *r = page_region_of((uintptr_t)s >> HA_PAGE_SHIFT);
        for (size_t pg = 0; pg < chunk_pages(cls); pg++)
            if (page_aux_in(r, (uintptr_t)s + pg * HA_PAGE_SIZE) != cls)
                return check_fail("slab: a chunk page does not name its class", (char *)s + pg * HA_PAGE_SIZE);
        if (s->next && s->next->prev != s)
            return check_fail("slab: broken list links", s);
        unsigned avail = 0;
        for (unsigned w = 0; w < s->words; w++)
            avail += ha_popcount(s->avail[w]);
        if (avail != s->navail)
            return check_fail("slab: available count disagrees with the bitmap", s);
        if (s->first_word >= s->words)
            return check_fail("slab: search start past the bitmap", s);
        bool list_ok = l == SLAB_FULL ? s->navail == 0
                       : l == SLAB_EMPTY ? s->navail == nobj_s
                                         : s->navail > 0 && s->navail < nobj_s;
        if (!list_ok)
            return check_fail("slab: slab on the wrong list for its count", s);
        for (unsigned i = 0; i < nobj_s; i++) {
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
        *nobj += nobj_s;
    }
    return 0;
}

/* One object found in a bin: an object start of a slab of its class,
 * tagged free, not available in its slab nor seen before in a bin (its
 * avail bit is set as a mark while checking, counted in *marked).  All
 * locks held. */
static int cache_check_object(void *p, unsigned cls, size_t *marked)
{
    struct slab *s = slab_of(p, cls);
    if (page_kind_of((uintptr_t)p) != PAGE_KIND_SLAB || page_kind_of((uintptr_t)s) != PAGE_KIND_SLAB ||
        s->check != slab_check_word(s, cls) || s->cls != cls)
        return check_fail("slab: cached pointer not in a slab of its class", p);
    unsigned idx = slab_index(s, p);
    if (idx >= slab_layout(s)->nobj || slab_object(s, idx) != p)
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

int slab_check(void)
{
    struct all_locks l;
    lock_everything(&l);
    int r = 0;
    size_t cached[SLAB_CLASSES] = { 0 }, marked = 0, kept = 0;
    intptr_t live[SLAB_CLASSES] = { 0 };
    for (unsigned i = 0; i <= l.n && r == 0; i++) {
        struct cpu_cache *c = cache_at(&l, i);
        for (unsigned cls = 0; cls < SLAB_CLASSES && r == 0; cls++) {
            struct bin *b = &c->bins[cls];
            live[cls] += (intptr_t)(c->bins[cls].pops - c->bins[cls].pushes);
            if (b->count > bin_cap_tab[cls]) {
                r = check_fail("slab: bin over capacity", b);
                break;
            }
            if (b->size != class_size_tab[cls]) {
                r = check_fail("slab: bin's class size damaged", b);
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
                struct slab *s = slab_of(b->slots[j], cls);
                unsigned idx = slab_index(s, b->slots[j]);
                s->avail[idx / 64] &= ~(1ull << (idx % 64));
            }
        }
    }
    for (unsigned cls = 0; cls < SLAB_CLASSES && r == 0; cls++) {
        struct slab_class *k = &classes[cls];
        size_t nslabs = 0, navail = 0, nobj = 0;
        for (int li = SLAB_PARTIAL; li <= SLAB_EMPTY && r == 0; li++)
            r = slab_check_list(k, cls, (enum slab_list)li, &nslabs, &navail, &nobj);
        for (const struct slab *e = k->empty; r == 0 && e; e = e->next)
            kept += chunk_pages(cls);
        if (r == 0 && (nslabs != k->nslabs || navail != k->navail))
            r = check_fail("slab: class counters disagree with its slabs", k);
        if (r == 0 && (intptr_t)(navail + cached[cls]) + live[cls] != (intptr_t)nobj)
            r = check_fail("slab: objects neither live, available nor cached (lost)", k);
    }
    if (r == 0 && kept != atomic_load_explicit(&kept_empty_pages, memory_order_relaxed))
        r = check_fail("slab: kept empty pages disagree with the empty slabs", &kept_empty_pages);
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
