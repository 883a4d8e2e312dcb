/*
 * hartalloc: a memory allocator for operating-system kernels.
 *
 * One header, the whole public contract.  Three allocators sit behind it:
 *
 *   early  bump allocator over one fixed range, usable from the first
 *          instruction of the boot path (ha_early_init);
 *   page   buddy allocator over every RAM region the kernel adds, in
 *          4 KiB pages, 1 bit of metadata per page kept inside the region;
 *   byte   per-CPU cached size classes for small objects, TLSF for mid
 *          sizes, dedicated page-backed blocks for large ones.
 *
 * Life cycle:  ha_early_init -> ha_add_region / ha_reserve -> ha_final_init.
 * Everything the early allocator handed out stays valid after the switch.
 *
 * The core is freestanding C11.  The environment must provide memcpy,
 * memmove, memset and memcmp (gcc emits calls to them even with
 * -ffreestanding); a Rust kernel gets them from compiler_builtins.  The core
 * uses no libgcc helper beyond what rustc's compiler_builtins provides (no
 * __builtin_popcount, no -msave-restore).
 *
 * The kernel provides the platform hooks declared at the end of this file;
 * weak single-CPU defaults ship with the library.
 */
#ifndef HARTALLOC_H
#define HARTALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HA_PAGE_SIZE 4096

/* Every block ha_alloc hands out is aligned to at least this. */
#define HA_MIN_ALIGN 16

/* Upper bound on ha_platform_cpu_id(); the per-CPU caches are indexed by it.
 * A build may raise it with -DHA_MAX_CPUS=N (memory for a CPU's cache is only
 * taken when that CPU first allocates). */
#ifndef HA_MAX_CPUS
#define HA_MAX_CPUS 64
#endif

/* Error codes: the int-returning calls return 0 or one of these. */
enum ha_error {
    HA_OK = 0,
    HA_EINVAL = -1,   /* bad argument: NULL base, zero or overflowing length */
    HA_ESTATE = -2,   /* call not valid in this phase (e.g. a second ha_final_init) */
    HA_ENOSPC = -3,   /* a fixed table is full (too many regions or reserved ranges) */
    HA_EOVERLAP = -4, /* the range overlaps a region already added */
    HA_EBUSY = -5,    /* ha_reserve after ha_final_init on memory already in use */
    HA_ENOMEM = -6    /* no usable memory: nothing left after rounding and reserves */
};

/* Statistics.  Byte figures count what ha_alloc and friends hand out (usable
 * size of live blocks); page figures count the page allocator's pages,
 * whoever holds them (ha_alloc_pages callers or the byte allocator). */
struct ha_stats {
    size_t bytes_total;     /* bytes under management: regions and early range */
    size_t bytes_used;      /* usable bytes of live blocks from ha_alloc* */
    size_t bytes_free;      /* bytes that can still be handed out: free pages plus free space held by the byte allocator */
    size_t bytes_peak;      /* high-water mark of bytes_used (exact on one CPU; on several, sampled at each CPU's highs) */
    size_t bytes_meta;      /* allocator metadata: page bitmaps, slab headers, block headers */
    size_t pages_total;     /* pages owned by the page allocator (regions less reserves and metadata) */
    size_t pages_used;      /* pages handed out: to ha_alloc_pages callers and to the byte allocator */
    size_t pages_free;      /* pages free: in the page allocator's free blocks and the CPU frame caches */
    size_t pages_peak;      /* high-water mark of pages_used (sampled as bytes_peak is) */
    size_t pages_largest_run; /* largest free run the page allocator can return, in pages */
    size_t early_used;      /* bytes of the early range handed out and not yet given back */
    uint64_t allocs;        /* successful ha_alloc / ha_alloc_zeroed / moving ha_realloc calls */
    uint64_t frees;         /* ha_free / ha_free_sized calls on live blocks */
    uint64_t page_allocs;   /* successful ha_alloc_pages calls */
    uint64_t page_frees;    /* ha_free_pages calls */
    uint64_t failures;      /* allocating calls that returned NULL (out of memory or bad argument) */
};

/* ---- life cycle ---- */

/* Mix per-boot entropy (e.g. the device tree's /chosen/rng-seed, or a
 * hardware RNG's output) into the secret that keys the words hartalloc keeps
 * inside freed memory (free-list links, free tags, check words), so that a
 * stray write cannot forge them.  Call it before ha_early_init: HA_ESTATE
 * after, HA_EINVAL for no bytes.  Without it a fixed key is used, which
 * still catches accidental writes but not a deliberate forgery. */
int ha_seed(const void *bytes, size_t len);

/* Start the early allocator on [base, base + len).  From now on ha_alloc and
 * ha_alloc_pages work.  The range belongs to hartalloc: a later ha_reserve
 * that overlaps it does not apply to it, and a region that contains it does
 * not hand it out twice.  At most 4 GiB of it is used. */
int ha_early_init(void *base, size_t len);

/* Give RAM to the page allocator.  Bounds are rounded inward to pages.  May be
 * called many times, before or after ha_final_init (after it, the memory is
 * usable at once).  Before ha_final_init nothing is written to the region. */
int ha_add_region(void *base, size_t len);

/* Flags for ha_add_region_flags. */
#define HA_REGION_ZEROED 0x1u /* the memory is known to read as zero (fresh RAM, mmap) */

/* ha_add_region with flags (HA_REGION_ZEROED lets ha_alloc_zeroed skip
 * clearing pages that were never handed out). */
int ha_add_region_flags(void *base, size_t len, unsigned flags);

/* Never hand out [base, base + len) (rounded outward to pages).  Before
 * ha_final_init it may name memory of regions added before or after it; after
 * ha_final_init the pages must be free (else HA_EBUSY). */
int ha_reserve(void *base, size_t len);

/* Build the page and byte allocators over the regions, less the reserves;
 * give the early range's unused remainder to the page allocator.  Works with
 * no early allocator too (then call it once regions are added). */
int ha_final_init(void);

/* ---- bytes ---- */

/* size bytes aligned to align (a power of two; any value up to the largest
 * page run).  ha_alloc(0, a) returns a unique minimal block.  NULL when out
 * of memory or when align is not a power of two; neither is a fault. */
void *ha_alloc(size_t size, size_t align);
void *ha_alloc_zeroed(size_t size, size_t align);

/* Resize: in place when the block or its neighbour allows, else move.
 * ptr NULL: same as ha_alloc.  new_size 0: frees ptr and returns NULL.
 * On failure returns NULL and ptr stays valid and unchanged. */
void *ha_realloc(void *ptr, size_t new_size, size_t align);

void ha_free(void *ptr); /* NULL is a no-op */

/* Free with the size and alignment the block was allocated (or last
 * reallocated) with: what Rust's dealloc passes.  A size or alignment that
 * does not match the block is a fault. */
void ha_free_sized(void *ptr, size_t size, size_t align);

/* ha_alloc(size, align) and ha_free_sized(ptr, size, align) for any align
 * up to HA_MIN_ALIGN, which every block has: the same blocks and the same
 * checks, without the alignment test on the fast path.  What the Rust
 * crate's GlobalAlloc calls for such layouts, which are nearly all. */
void *ha_alloc_min_align(size_t size);
void ha_free_sized_min_align(void *ptr, size_t size);

/* Bytes usable at ptr (at least the size asked for). */
size_t ha_usable_size(const void *ptr);

/* ---- pages ---- */

/* count contiguous pages at align (bytes: a power of two >= HA_PAGE_SIZE; 0
 * means HA_PAGE_SIZE).  Any count, no more pages taken than count. */
void *ha_alloc_pages(size_t count, size_t align);

/* Same, the pages cleared (not cleared again when known to be zero). */
void *ha_alloc_pages_zeroed(size_t count, size_t align);

/* Free pages from ha_alloc_pages: ptr and count as they were handed out, or
 * any whole-page sub-run of them. */
void ha_free_pages(void *ptr, size_t count);

/* ---- maintenance ---- */

void ha_get_stats(struct ha_stats *out);

/* Walk every structure (region bitmaps, free lists, slabs, per-CPU caches,
 * TLSF blocks, early blocks) and cross-check them with the statistics.
 * 0 when consistent, else a negative code; the first inconsistency found is
 * also described by ha_check_message(). */
int ha_check(void);
const char *ha_check_message(void);

/* Give back to the page allocator what the byte allocator holds but does not
 * need: every CPU's cached objects, empty slabs and empty arenas. */
void ha_trim(void);

/* Fork safety for hosted use (a malloc built on hartalloc): call
 * ha_fork_prepare before fork(2) and ha_fork_parent / ha_fork_child after
 * it in the two processes (pthread_atfork does exactly this), so that no
 * allocator lock is held by a thread that does not exist in the child. */
void ha_fork_prepare(void);
void ha_fork_parent(void);
void ha_fork_child(void);

/* Out-of-memory hook: called (without allocator locks held) when a request
 * cannot be served; it may add memory with ha_add_region and return nonzero
 * to have the request tried again, or return 0 to fail it.  `bytes` is what
 * the request needs at the least.  NULL (the default) means no hook. */
typedef int (*ha_oom_handler_fn)(size_t bytes, size_t align);
void ha_set_oom_handler(ha_oom_handler_fn handler);

/* ---- platform hooks: provided by the kernel ---- */

/* The running CPU: 0 .. HA_MAX_CPUS-1.  Larger values are folded. */
unsigned ha_platform_cpu_id(void);
/* Disable interrupts on this CPU; return the previous state. */
uintptr_t ha_platform_irq_save(void);
/* Restore the state returned by ha_platform_irq_save. */
void ha_platform_irq_restore(uintptr_t state);
/* Report a fault (bad free, corruption) at addr.  Does not return. */
void ha_platform_fatal(const char *msg, const void *addr);

/* Declare which hooks do nothing, so that the core need not call them: a
 * mask of HA_TRIVIAL_*, replacing the one in force (other bits are
 * ignored).  When all three are trivial, the fast paths call no function
 * that returns.  Optional: the default is 0 (every hook is called), the
 * weak defaults above declare themselves the first time they run, and the
 * Rust crate declares its Platform's.  What is declared must hold on
 * every CPU until it is declared again (say before other CPUs start); a
 * call already inside the allocator may still follow the old mask. */
#define HA_TRIVIAL_CPU_ID 0x1u      /* ha_platform_cpu_id always returns 0 */
#define HA_TRIVIAL_IRQ_SAVE 0x2u    /* ha_platform_irq_save always returns 0 */
#define HA_TRIVIAL_IRQ_RESTORE 0x4u /* ha_platform_irq_restore does nothing */
void ha_set_trivial_hooks(unsigned hooks);

#ifdef __cplusplus
}
#endif

#endif /* HARTALLOC_H */
