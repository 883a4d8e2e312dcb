/*
 * hartalloc internals: what the modules share, and the interfaces between
 * them.  Nothing here is public.
 *
 *   fault.c   ha_fault, check_*, ha_secret  faults, checker messages, secret
 *   stats.c   stats_*   byte counters and peaks, frames cached (a leaf)
 *   early.c   early_*   bump allocator over the boot range
 *   page.c    page_*    regions, buddy order maps, page bitmap, kind map
 *   frame.c   frame_*   per-CPU caches of single pages
 *   slab.c    slab_*, cache_*  size classes, slabs, per-CPU object caches
 *   tlsf.c    tlsf_*, arena_*  TLSF over page-backed arenas; huge blocks
 *   facade.c  ha_*      public API: routing, checks, stats, faults
 *   hooks.c             weak default platform hooks
 *
 * Lock order (outer first): cache lock -> slab class lock -> page lock;
 * frame cache lock -> page lock; tlsf lock -> page lock; early lock on its
 * own; the stats register lock innermost.  Every lock is taken with
 * interrupts disabled (lock_acquire does it).
 */
#ifndef HA_INTERNAL_H
#define HA_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hartalloc.h"

/* What this header declares is the core's own: hidden, so that a
 * position-independent build (a hosted Rust crate, the malloc front end's
 * shared object) reaches its globals RIP-relative and calls its functions
 * directly, not through the GOT and PLT.  The public API above keeps its
 * default visibility. */
#pragma GCC visibility push(hidden)

/* ---------------------------------------------------------------- config */

/* HA_CHECKED=1 adds red zones with canaries, poisoning of freed memory and a
 * full ha_check() on every API call.  Default off. */
#ifndef HA_CHECKED
#define HA_CHECKED 0
#endif

#define HA_PAGE_SHIFT 12

#define HA_MAX_REGIONS 32  /* discontiguous RAM regions; ha_add_region beyond: HA_ENOSPC */
#define HA_MAX_RESERVED 32 /* reserved ranges kept for regions added later */

/* Byte allocator size tiers. */
#define HA_SMALL_MAX 65520              /* <= this: slab size classes (not a power of two) */
#define HA_MID_MAX (128u * 1024)        /* <= this: TLSF in shared arenas */
#define HA_CHUNK_SIZE (16u * 1024)      /* smallest slab chunk (size and alignment) */

/* Checked build: every byte block carries a trailer at its usable end. */
#define HA_TRAILER_SIZE (HA_CHECKED ? 8u : 0u)
#define HA_POISON_FREE 0xDFu  /* freed memory, checked build */
#define HA_POISON_SLACK 0xFDu /* between requested end and trailer */

/* ----------------------------------------------------------- attributes */

#define HA_LIKELY(x) __builtin_expect(!!(x), 1)
#define HA_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HA_INLINE static inline __attribute__((always_inline))
#define HA_NOINLINE __attribute__((noinline))
/* The compiler forgets how v was computed (no instruction): an address
 * it would otherwise rebuild from its parts at every use. */
#define HA_OPAQUE(v) __asm__("" : "+r"(v))
#define HA_COLD __attribute__((cold, noinline))
#define HA_CACHELINE 64
#define HA_STATIC_ASSERT(c, m) _Static_assert(c, m)

/* ------------------------------------------------------ relaxed stores */
/* A relaxed atomic store of a word that other CPUs load without a lock.
 * GCC before 13 makes one an AMO on RISC-V (amoswap, its address in a
 * register of its own, and slower than a store on real cores); an aligned
 * store is single-copy atomic under RVWMO, so there it is written as a
 * plain volatile one, as Linux's WRITE_ONCE does. */
#if defined(__riscv) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
HA_INLINE void ha_store_relaxed64(void *p, uint64_t v) { *(volatile uint64_t *)p = v; }
HA_INLINE void ha_store_relaxed32(void *p, uint32_t v) { *(volatile uint32_t *)p = v; }
HA_INLINE void ha_store_relaxed8(void *p, uint8_t v) { *(volatile uint8_t *)p = v; }
#else
HA_INLINE void ha_store_relaxed64(void *p, uint64_t v) { __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED); }
HA_INLINE void ha_store_relaxed32(void *p, uint32_t v) { __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELAXED); }
HA_INLINE void ha_store_relaxed8(void *p, uint8_t v) { __atomic_store_n((uint8_t *)p, v, __ATOMIC_RELAXED); }
#endif

/* A relaxed atomic load of a byte that others store to without our lock,
 * zero-extended.  On riscv64 GCC masks the byte loaded (lbu, which
 * zero-extends already) again with an andi before it indexes with it,
 * atomic or volatile; written as the lbu it is (an aligned byte load is
 * single-copy atomic), the result is a whole register. */
#if defined(__riscv)
HA_INLINE size_t ha_load_relaxed8(const void *p)
{
    size_t v;
    __asm__ volatile("lbu %0, %1" : "=r"(v) : "m"(*(const volatile uint8_t *)p));
    return v;
}
#else
HA_INLINE size_t ha_load_relaxed8(const void *p) { return __atomic_load_n((const uint8_t *)p, __ATOMIC_RELAXED); }
#endif

/* A relaxed atomic exchange of a word (a free tag's claim): the old word.
 * On riscv64 GCC ties the result register to the operand, a move more
 * than the one amoswap, hence the asm. */
#if defined(__riscv) && __riscv_xlen == 64
HA_INLINE uint64_t ha_xchg_relaxed64(uint64_t *p, uint64_t v)
{
    uint64_t old;
    __asm__ volatile("amoswap.d %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory");
    return old;
}
#else
HA_INLINE uint64_t ha_xchg_relaxed64(uint64_t *p, uint64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
#endif

/* The load of a pointer that was published with a release store, for
 * reading what it points to.  On RISC-V and ARMv8 the address dependency
 * orders those reads after it (RVWMO and the ARMv8 model both keep
 * address dependencies, which Linux's READ_ONCE and rcu_dereference rely
 * on), so a plain load does; elsewhere an acquire, which on x86 is a plain
 * load anyway and which ThreadSanitizer understands. */
#if defined(__riscv) || defined(__aarch64__)
#define ha_load_published(p) atomic_load_explicit((p), memory_order_relaxed)
#else
#define ha_load_published(p) atomic_load_explicit((p), memory_order_acquire)
#endif

/* -------------------------------------------------------------- bit ops */
/* No libgcc helper may be needed: popcount would call __popcountdi2, hence
 * the SWAR version. */

#if defined(__riscv) && !defined(__riscv_zbb)
/* Without Zbb, gcc turns clz/ctz into calls to libgcc's __clzdi2/__ctzdi2,
 * which a C kernel need not have: a de Bruijn multiply does it inline. */
static const uint8_t ha_debruijn64[64] = { 0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6 };
/* Index of the lowest set bit; x != 0. */
HA_INLINE unsigned ha_ctz(uint64_t x) { return ha_debruijn64[((x & -x) * 0x03f79d71b4cb0a89ull) >> 58]; }
/* Index of the highest set bit; x != 0. */
HA_INLINE unsigned ha_fls(uint64_t x)
{
    x |= x >> 1; x |= x >> 2; x |= x >> 4; x |= x >> 8; x |= x >> 16; x |= x >> 32;
    return ha_debruijn64[((x ^ (x >> 1)) * 0x03f79d71b4cb0a89ull) >> 58];
}
HA_INLINE unsigned ha_clz(uint64_t x) { return 63u - ha_fls(x); }
#else
/* Index of the lowest set bit; x != 0. */
HA_INLINE unsigned ha_ctz(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
HA_INLINE unsigned ha_clz(uint64_t x) { return (unsigned)__builtin_clzll(x); }
/* Index of the highest set bit; x != 0.  63 ^ clz, equal to 63 - clz for
 * clz in 0..63: x86's bsr gives clz as 63 ^ index, and the compiler folds
 * the two xors away (it does not see through the subtraction). */
HA_INLINE unsigned ha_fls(uint64_t x) { return 63u ^ ha_clz(x); }
#endif
HA_INLINE unsigned ha_popcount(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
}
HA_INLINE bool ha_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }
HA_INLINE uintptr_t ha_align_up(uintptr_t x, uintptr_t a) { return (x + a - 1) & ~(a - 1); }
HA_INLINE uintptr_t ha_align_down(uintptr_t x, uintptr_t a) { return x & ~(a - 1); }
/* ceil(log2(x)) for x >= 1 */
HA_INLINE unsigned ha_log2_ceil(uint64_t x) { return x <= 1 ? 0 : ha_fls(x - 1) + 1; }

/* ------------------------------------------------------------ spinlocks */

/* A word as wide as a register: on RV64 a 32-bit exchange's result is
 * sign-extended before the test, one instruction more per acquire.  Held:
 * nonzero (the lock's own address, already in a register). */
typedef struct {
    atomic_uintptr_t held;
} ha_lock_t;

#define HA_LOCK_INIT { 0 }

HA_INLINE void ha_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("pause" ::: "memory");
#elif defined(__riscv)
    /* "pause" (Zihintpause) is encoded as a FENCE hint: a no-op where absent. */
    __asm__ volatile(".insn i 0x0F, 0, x0, x0, 0x010" ::: "memory");
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#else
    __asm__ volatile("" ::: "memory");
#endif
}

/* ------------------------------------------------------------- platform */
/*
 * The platform the core runs on: the hooks of hartalloc.h (weak defaults in
 * hooks.c, replaced by the kernel's own or the Rust crate's), or, when the
 * build selects it, a platform known at compile time that the fast paths
 * inline.  HA_PLATFORM_RISCV_SMODE=1 (the crate's `riscv-smode` feature):
 * a RISC-V kernel in S-mode that keeps this hart's index in `tp`;
 * interrupts are masked with sstatus.SIE.  ha_platform_fatal is called
 * as always.
 */
#ifndef HA_PLATFORM_RISCV_SMODE
#define HA_PLATFORM_RISCV_SMODE 0
#endif
#if HA_PLATFORM_RISCV_SMODE && !defined(__riscv)
#error "HA_PLATFORM_RISCV_SMODE is for RISC-V kernels only"
#endif

/* The hooks known to do nothing (HA_TRIVIAL_*), which the core then skips:
 * set by ha_set_trivial_hooks, and by the weak defaults when first called.
 * (Unused when the build inlines the platform.) */
extern _Atomic unsigned hooks_trivial;

#if HA_PLATFORM_RISCV_SMODE
#define HA_SSTATUS_SIE 0x2u
/* sstatus is read first and written only when SIE is set: a kernel often
 * calls with interrupts off already, and a CSR write costs more than a read
 * and a branch (QEMU's TCG leaves its translated block at every CSR write:
 * 442 -> 263 ns per 64 B pair on 1 hart, for 2 more instructions). */
HA_INLINE uintptr_t platform_irq_save(void)
{
    uintptr_t prev;
    __asm__ volatile("csrr %0, sstatus" : "=r"(prev) : : "memory");
    prev &= HA_SSTATUS_SIE;
    if (prev)
        __asm__ volatile("csrc sstatus, %0" : : "r"(prev) : "memory");
    return prev;
}
HA_INLINE void platform_irq_restore(uintptr_t state)
{
    if (state)
        __asm__ volatile("csrs sstatus, %0" : : "r"(state) : "memory");
}
HA_INLINE unsigned platform_cpu_id(void)
{
    uintptr_t tp;
    __asm__ volatile("mv %0, tp" : "=r"(tp));
    return (unsigned)tp;
}
#else
HA_INLINE unsigned hooks_trivial_now(void)
{
    return atomic_load_explicit(&hooks_trivial, memory_order_relaxed);
}
HA_INLINE uintptr_t platform_irq_save(void) { return ha_platform_irq_save(); }
HA_INLINE void platform_irq_restore(uintptr_t state) { ha_platform_irq_restore(state); }
HA_INLINE unsigned platform_cpu_id(void) { return ha_platform_cpu_id(); }
#endif

/*
 * Which hooks a piece of code calls: `hooks`, a constant in each copy of
 * the code, HOOKS_CHECKED everywhere but the hottest paths (each hook
 * called unless declared trivial).  The hottest paths (slab_alloc_small,
 * slab_free, frame_alloc_or, frame_free_or) come in two copies: one with
 * HOOKS_ALL, which calls each hook without a look at the declaration
 * (calling a trivial hook is always correct), and X_none with HOOKS_NONE,
 * which calls nothing that returns and so saves no registers, for when
 * every hook is trivial (the weak defaults, Platform::SINGLE_HART).  The
 * facade picks one with hooks_none(), in the tail call that ends its own
 * fast path, so that the choice costs a load and a branch.  A build that
 * inlines its platform always takes the first.
 */
#define HOOKS_CALL_CPU 0x1u
#define HOOKS_CALL_IRQ 0x2u
#define HOOKS_CHECK 0x4u /* skip those declared trivial */
#define HOOKS_NONE 0u
#define HOOKS_ALL (HOOKS_CALL_CPU | HOOKS_CALL_IRQ)
#define HOOKS_CHECKED (HOOKS_ALL | HOOKS_CHECK)
#define HA_TRIVIAL_ALL (HA_TRIVIAL_CPU_ID | HA_TRIVIAL_IRQ_SAVE | HA_TRIVIAL_IRQ_RESTORE)

/* Is every hook trivial, so that the HOOKS_NONE copy may run? */
HA_INLINE bool hooks_none(void)
{
#if HA_PLATFORM_RISCV_SMODE
    return false;
#else
    return HA_LIKELY(hooks_trivial_now() == HA_TRIVIAL_ALL);
#endif
}

/* Is this hook to be called by code of the given `hooks`? */
HA_INLINE bool hooks_call(unsigned hooks, unsigned call, unsigned trivial)
{
#if HA_PLATFORM_RISCV_SMODE
    (void)trivial;
    return (hooks & call) != 0;
#else
    return (hooks & call) && !((hooks & HOOKS_CHECK) && (hooks_trivial_now() & trivial));
#endif
}

HA_INLINE uintptr_t platform_irq_save_if(unsigned hooks)
{
    return hooks_call(hooks, HOOKS_CALL_IRQ, HA_TRIVIAL_IRQ_SAVE) ? platform_irq_save() : 0;
}

HA_INLINE void platform_irq_restore_if(uintptr_t state, unsigned hooks)
{
    if (hooks_call(hooks, HOOKS_CALL_IRQ, HA_TRIVIAL_IRQ_RESTORE))
        platform_irq_restore(state);
}

/* Try to take l: its old word (zero: taken now).  The value stored is the
 * lock's address, which the exchange needs in a register anyway: no
 * constant to make.  The release: a fence and a store.  On riscv64 GCC
 * ties an exchange's result to its operand (a move more) and makes a
 * release store an AMO (slower than a store on real cores), so there both
 * are written out as the RVWMO mapping has them (Linux's spinlocks are
 * asm too). */
#if defined(__riscv) && __riscv_xlen == 64
HA_INLINE uintptr_t lock_swap_in(ha_lock_t *l)
{
    uintptr_t old;
    __asm__ volatile("amoswap.d.aq %0, %1, (%1)" : "=r"(old) : "r"(l) : "memory");
    return old;
}

HA_INLINE void lock_clear(ha_lock_t *l) { __asm__ volatile("fence rw, w\n\tsd zero, 0(%0)" : : "r"(l) : "memory"); }
#else
HA_INLINE uintptr_t lock_swap_in(ha_lock_t *l)
{
    return atomic_exchange_explicit(&l->held, (uintptr_t)l, memory_order_acquire);
}

HA_INLINE void lock_clear(ha_lock_t *l) { atomic_store_explicit(&l->held, 0u, memory_order_release); }
#endif

/* Disable interrupts, then spin.  Returns the interrupt state to restore. */
HA_INLINE uintptr_t lock_acquire_if(ha_lock_t *l, unsigned hooks)
{
    uintptr_t irq = platform_irq_save_if(hooks);
    while (HA_UNLIKELY(lock_swap_in(l))) {
        while (atomic_load_explicit(&l->held, memory_order_relaxed))
            ha_cpu_relax();
    }
    return irq;
}

HA_INLINE void lock_release_if(ha_lock_t *l, uintptr_t irq, unsigned hooks)
{
    lock_clear(l);
    platform_irq_restore_if(irq, hooks);
}

HA_INLINE uintptr_t lock_acquire(ha_lock_t *l) { return lock_acquire_if(l, HOOKS_CHECKED); }
HA_INLINE void lock_release(ha_lock_t *l, uintptr_t irq) { lock_release_if(l, irq, HOOKS_CHECKED); }

/* Take (true) or release (false) a lock across fork(2), keeping the
 * interrupt state in *irq between the two calls. */
HA_INLINE void lock_fork(ha_lock_t *l, bool take, uintptr_t *irq)
{
    if (take)
        *irq = lock_acquire(l);
    else
        lock_release(l, *irq);
}

/* ----------------------------------------------------------- memory ops */
/* The environment provides these (see hartalloc.h). */
#define ha_memset __builtin_memset
#define ha_memcpy __builtin_memcpy
#define ha_memmove __builtin_memmove

/* ---------------------------------------------------------------- faults */

/* What a validation found wrong with a pointer handed back to us.  The
 * facade turns a code into the message passed to ha_platform_fatal. */
enum ha_fault {
    FAULT_NONE = 0,
    FAULT_DOUBLE_FREE,     /* block or pages already free */
    FAULT_NOT_ALLOCATED,   /* inside the heap but not a live block */
    FAULT_INTERIOR,        /* points inside a live block, not at its start */
    FAULT_FOREIGN,         /* outside every region and the early range */
    FAULT_PAGES_NOT_BYTES, /* pages from ha_alloc_pages handed to a byte call */
    FAULT_BYTES_NOT_PAGES, /* byte-allocator memory handed to ha_free_pages */
    FAULT_RESERVED,        /* reserved or metadata pages handed to ha_free_pages */
    FAULT_SIZE_MISMATCH,   /* ha_free_sized size does not fit the block */
    FAULT_ALIGN_MISMATCH,  /* ha_free_sized alignment does not fit the block */
    FAULT_UNALIGNED,       /* ha_free_pages pointer not page aligned, or bad count */
    FAULT_CORRUPT,         /* allocator metadata damaged (header, free list) */
    FAULT_OVERFLOW,        /* checked build: red zone past the block written */
    FAULT_USE_AFTER_FREE,  /* checked build: freed memory written */
    FAULT_BAD_CPU,         /* impossible CPU id / per-CPU state damaged */
    FAULT_COUNT
};

/* Report a fault through ha_platform_fatal.  Never returns. */
_Noreturn void ha_fault(enum ha_fault fault, const void *addr);

/* ha_check helpers: record the first inconsistency (message and address) and
 * return -1, so a checker can write `return check_fail("...", p);`.
 * check_reset forgets it; check_first returns it (NULL: none). */
int check_fail(const char *what, const void *addr);
void check_reset(void);
const char *check_first(const void **addr);

/* The per-boot secret (fault.c) that keys every word kept inside freed
 * memory; secret_seed mixes entropy into it (before the heap starts). */
extern uint64_t ha_secret;
/* Derived from it for the slab headers' check words (slab.c). */
extern uint64_t ha_slab_key;
/* And for the free tags of slab objects (slab.c) and frames (frame.c). */
extern uint64_t ha_tag_key, ha_frame_tag_key;
extern uint64_t ha_check_keys[2];
void secret_seed(const unsigned char *bytes, size_t len);

/* A pointer kept in freed memory, stored keyed with the secret and the
 * address of the word that holds it (as Linux's hardened free lists do):
 * a stray write there decodes to garbage that the reader's validation
 * rejects, never to an address the writer chose, and NULL is not stored
 * as zero.  link_decode(slot, link_encode(slot, p)) == p. */
HA_INLINE uintptr_t link_encode(const void *slot, const void *ptr)
{
    return (uintptr_t)ptr ^ (uintptr_t)ha_secret ^ ((uintptr_t)slot * 0x9E3779B97F4A7C15ull);
}
HA_INLINE void *link_decode(const void *slot, uintptr_t stored)
{
    return (void *)(stored ^ (uintptr_t)ha_secret ^ ((uintptr_t)slot * 0x9E3779B97F4A7C15ull));
}

/* Internal invariant: cheap, always on.  Failing means allocator metadata is
 * corrupt (usually a wild write by the kernel). */
#define HA_ASSERT(cond, addr)                                                  \
    do {                                                                       \
        if (HA_UNLIKELY(!(cond)))                                              \
            ha_fault(FAULT_CORRUPT, (const void *)(addr));                     \
    } while (0)

/* Fork safety (ha_fork_prepare/parent/child): take (true) or release
 * (false) every lock a module has.  Taken in the global lock order:
 * facade, early, frame, slab, tlsf, page. */
void early_fork_lock(bool take);
void frame_fork_lock(bool take);
void slab_fork_lock(bool take);
void tlsf_fork_lock(bool take);
void page_fork_lock(bool take);

/* ========================================================== stats.c */

/* Byte counters of one owner (a CPU cache, a TLSF heap), written only
 * under the owner's lock and read without it (relaxed atomics, which cost
 * what plain loads and stores do). */
struct stats_bytes {
    _Atomic intptr_t used;    /* may go negative: frees of blocks counted elsewhere */
    _Atomic uint64_t allocs, frees;
    /* `used` may rise to limit without making a new peak: past it, the
     * owner marks the peak pending (stats.c).  Written by the sampler, of
     * whichever counter: atomic. */
    _Atomic intptr_t limit;
};

/* Set when a counter has risen past its limit since the last sample: the
 * sum of the counters may stand above the peak, and the first fall of any
 * counter samples it first (stats.c). */
extern _Atomic unsigned stats_peak_pending;

/* A gate per CPU: the pointer its fast free starts from (its slab cache),
 * registered by the owner, and NULL while the peak is pending, so that
 * the fast free, which tests that pointer for NULL anyway (a cache still
 * to be made), takes its slow path, where the fall samples the peak: the
 * fast free pays nothing for the mark.  Packed, as the caches' own
 * pointers are (a line each would cost x86 two instructions to index):
 * written only when a mark is made or taken. */
extern void *_Atomic stats_gates[HA_MAX_CPUS];

/* cpu's gate opens on p (once, p fully made: it is published). */
void stats_gate_register(unsigned cpu, void *p);
/* A free that found cpu's gate shut, after its fall: a gate shut with no
 * peak pending (a mark and a sample that raced on two CPUs) opens again. */
void stats_gate_heal(unsigned cpu);
/* Mark the peak pending and shut the gates (stats_bytes_rose). */
void stats_peak_mark(void);

/* Once per counter, before it counts anything. */
void stats_bytes_register(struct stats_bytes *s);
/* A counter is about to fall with the peak pending (s, its owner's lock
 * held): sum every counter, raise the peak, hand out the room left below
 * it as new limits. */
void stats_bytes_sample_peak(struct stats_bytes *s);

HA_INLINE bool stats_peak_is_pending(void)
{
    return atomic_load_explicit(&stats_peak_pending, memory_order_relaxed) != 0;
}

/* A counter has risen past its limit (its owner's lock held, `used`
 * stored): the peak is pending, if it was not already. */
HA_INLINE void stats_bytes_rose(void)
{
    if (!stats_peak_is_pending())
        stats_peak_mark();
}

/* Before a counter falls: the peak, if one is pending. */
HA_INLINE void stats_bytes_before_fall(struct stats_bytes *s)
{
    if (HA_UNLIKELY(stats_peak_is_pending()))
        stats_bytes_sample_peak(s);
}
/* bytes_used, bytes_peak (settled), allocs and frees of every counter. */
void stats_bytes_read(struct ha_stats *out);

/* Owner's lock held.  A counter written by its owner only: a relaxed
 * load and store, no atomic read-modify-write. */
HA_INLINE void stats_count(_Atomic uint64_t *c)
{
    ha_store_relaxed64(c, atomic_load_explicit(c, memory_order_relaxed) + 1);
}

/* The counter's limit: an allocation that takes `used` past it marks the
 * peak pending (stats_bytes_rose); a free never raises it. */
HA_INLINE intptr_t stats_bytes_limit(const struct stats_bytes *s)
{
    return atomic_load_explicit(&s->limit, memory_order_relaxed);
}

/* Owner's lock held: the byte count of an allocation or a free that the
 * counter's owner counts some other way (the slab's bins: slab_stats), an
 * allocation's having been checked against the limit. */
HA_INLINE void stats_bytes_set(struct stats_bytes *s, intptr_t used)
{
    ha_store_relaxed64(&s->used, (uint64_t)used);
}

/* A fall that needs no stats_bytes_before_fall: the slab's fast free,
 * which its gate keeps shut while the peak is pending. */
HA_INLINE void stats_bytes_release(struct stats_bytes *s, size_t n)
{
    ha_store_relaxed64(&s->used, (uint64_t)(atomic_load_explicit(&s->used, memory_order_relaxed) - (intptr_t)n));
}

HA_INLINE void stats_bytes_free(struct stats_bytes *s, size_t n)
{
    stats_bytes_before_fall(s);
    ha_store_relaxed64(&s->used, (uint64_t)(atomic_load_explicit(&s->used, memory_order_relaxed) - (intptr_t)n));
    stats_count(&s->frees);
}

/* Owner's lock held. */
HA_INLINE void stats_bytes_add(struct stats_bytes *s, intptr_t delta, bool alloc, bool free)
{
    if (delta < 0)
        stats_bytes_before_fall(s);
    intptr_t used = atomic_load_explicit(&s->used, memory_order_relaxed) + delta;
    ha_store_relaxed64(&s->used, (uint64_t)used);
    if (alloc)
        stats_count(&s->allocs);
    if (free)
        stats_count(&s->frees);
    if (HA_UNLIKELY(used > stats_bytes_limit(s)))
        stats_bytes_rose();
}

/* The frames a CPU frame cache holds: it registers its count (read with
 * relaxed atomic loads), and the page allocator's peak leaves the sum out. */
void stats_frames_register(const size_t *count);
size_t stats_frames_cached(void);

/* The running CPU's index into per-CPU tables: ids past HA_MAX_CPUS are
 * folded (correct, since every per-CPU structure is locked, but shared). */
HA_INLINE unsigned ha_cpu_if(unsigned hooks)
{
    unsigned cpu = hooks_call(hooks, HOOKS_CALL_CPU, HA_TRIVIAL_CPU_ID) ? platform_cpu_id() : 0;
#if (HA_MAX_CPUS & (HA_MAX_CPUS - 1)) == 0
    return cpu % HA_MAX_CPUS; /* a mask: one instruction, no branch */
#else
    return cpu < HA_MAX_CPUS ? cpu : cpu % HA_MAX_CPUS;
#endif
}
HA_INLINE unsigned ha_cpu(void) { return ha_cpu_if(HOOKS_CHECKED); }

/* ========================================================== page.c */
/*
 * Regions, each with (inside the region, at its first free pages):
 *   - an allocation bitmap, 1 bit per page (1 = not free);
 *   - a kind map, a byte per page, saying who holds an allocated page;
 *   - per order, a map of the free blocks (bits, see page.c).
 * Nothing is kept inside a free page.  Orders are relative to absolute
 * addresses, so a block of order k is aligned to HA_PAGE_SIZE << k.
 */

enum page_kind {
    PAGE_KIND_USER = 0,   /* free, or handed out by ha_alloc_pages */
    PAGE_KIND_SLAB = 1,   /* slab chunk of the byte allocator */
    PAGE_KIND_ARENA = 2,  /* TLSF arena of the byte allocator */
    PAGE_KIND_SYSTEM = 3, /* reserved, region metadata, or early range */
    PAGE_KIND_FRAME = 4,  /* a single page free in a CPU's frame cache (allocated
                           * in the bitmap); written by frame.c under its cache lock */
    PAGE_KIND_NONE = -1   /* not inside any region */
};

/* Before page_start(): remember the range; after: build/carve at once. */
int page_add_region(uintptr_t start, uintptr_t end, unsigned flags);
int page_reserve(uintptr_t start, uintptr_t end);
/* The early range: kept out of every region (kind SYSTEM) until released. */
void page_set_early_range(uintptr_t start, uintptr_t end);
/* Build every recorded region; the page allocator is live afterwards. */
int page_start(void);
bool page_is_live(void);
/* Pages in the free lists now (no lock: a hint). */
size_t page_free_count(void);
/* Pages the page allocator manages, free or used (no lock: a hint). */
size_t page_total_count(void);
/* Hand [start, end) (page aligned, inside the early range) to the page
 * allocator: freed in the region that holds it, or made a region of its own. */
int page_release_early(uintptr_t start, uintptr_t end);

/* count pages at align bytes (a power of two >= HA_PAGE_SIZE), marked with
 * kind.  *zeroed (may be NULL) says whether all of it is known to be zero. */
void *page_alloc(size_t count, size_t align, enum page_kind kind, bool *zeroed);
/* Free pages the caller owns (validated with page_validate for user pages).
 * Any run of allocated pages of one kind inside one region. */
void page_free(void *p, size_t count);
/* Take exactly [p, p + count pages) if every page is free; mark with kind. */
bool page_claim(void *p, size_t count, enum page_kind kind);
/* Would page_free(p, count) be valid for pages of `kind`?  FAULT_NONE or
 * the fault (FAULT_UNALIGNED, FAULT_FOREIGN, FAULT_DOUBLE_FREE, FAULT_RESERVED,
 * FAULT_BYTES_NOT_PAGES ...). */
enum ha_fault page_validate(const void *p, size_t count, enum page_kind kind);
/* page_validate and page_free under one lock: FAULT_NONE and freed, or the
 * fault with nothing changed.  The path of ha_free_pages. */
enum ha_fault page_free_checked(void *p, size_t count, enum page_kind kind);
/* The built regions, written under the page lock and read without it:
 * regions are never removed, and a descriptor is complete before the
 * release store that publishes the new count.  [page_lo_pfn, page_hi_pfn)
 * bounds them all, so that most foreign pointers stop at one compare. */
/*
 * A built region.  [base_pfn, base_pfn + npages) page frames.
 *
 * Invariants (page_check verifies each):
 *   R1 bitmap bit i is 0 exactly when page i is inside a free block; the
 *      bits of the last bitmap word past npages are 1 (scans stop there);
 *   R2 SYSTEM pages (metadata, reserves, the unreleased early range) are
 *      allocated in the bitmap, and there are system_pages of them;
 *   R3 the metadata pages [meta_pfn, meta_pfn + meta_pages) are SYSTEM;
 *      FRAME pages are allocated in the bitmap, and exactly the frames the
 *      CPU caches hold (frame_check);
 *   R4 summed over regions: zero bits == pages in free blocks ==
 *      page_state.free_pages, and npages - free - system == used_pages.
 * The free blocks themselves are in the order maps (page.c).
 */
struct page_order_map;
struct page_region {
    uintptr_t base_pfn;
    uintptr_t end_pfn;
    size_t npages;
    uint64_t *bitmap; /* ceil(npages / 64) words */
    uint8_t *kinds;   /* a byte per page (enum page_kind), right after the bitmap */
    uint8_t *aux;     /* a byte per 16 KiB granule for the layer its pages are given to (page_aux_in) */
    uintptr_t aux_at; /* aux's address less base_pfn's granule: aux_at + granule is its byte */
    uint64_t *zero;   /* a bit per free page known zero; NULL unless HA_REGION_ZEROED */
    struct page_order_map *maps; /* maps[k], k < norders: the free blocks of order k */
    unsigned norders;
    uint64_t nonempty; /* bit k: maps[k] holds a block */
    uintptr_t meta_pfn;
    size_t meta_pages;
    size_t system_pages;
};

extern struct page_region page_regions[HA_MAX_REGIONS];
extern atomic_uint page_region_count;
/* &page_regions[0] and [1] once counted (an empty region before): where most
 * pointers fall (a kernel's one region, or its main memory and its early
 * range), looked at before any search, and read without a fence
 * (ha_load_published). */
extern struct page_region *_Atomic page_first_regions[2];
extern atomic_uintptr_t page_lo_pfn, page_hi_pfn;

/* The region holding page frame pfn, or NULL. */
HA_INLINE struct page_region *page_region_of(uintptr_t pfn)
{
    struct page_region *r = ha_load_published(&page_first_regions[0]);
    if (HA_LIKELY(pfn - r->base_pfn < r->npages))
        return r;
    r = ha_load_published(&page_first_regions[1]);
    if (HA_LIKELY(pfn - r->base_pfn < r->npages))
        return r;
    /* The bounds are raised before a new region is counted, so they cannot
     * stand in for a region's own.  Every region is searched: the two
     * above may lag the count. */
    unsigned n = atomic_load_explicit(&page_region_count, memory_order_acquire);
    if (pfn < atomic_load_explicit(&page_lo_pfn, memory_order_relaxed) ||
        pfn >= atomic_load_explicit(&page_hi_pfn, memory_order_relaxed))
        return 0;
    for (unsigned i = 0; i < n; i++) {
        r = &page_regions[i];
        if (pfn - r->base_pfn < r->npages)
            return r;
    }
    return 0;
}

/* Kind of the page holding addr within region r, PAGE_KIND_NONE when addr
 * is outside r: several look-ups near one address need one region search. */
HA_INLINE int page_kind_in(const struct page_region *r, uintptr_t addr)
{
    size_t i = (addr >> HA_PAGE_SHIFT) - r->base_pfn;
    if (i >= r->npages)
        return PAGE_KIND_NONE;
    return __atomic_load_n(&r->kinds[i], __ATOMIC_RELAXED);
}

/* Kind of the page holding addr, PAGE_KIND_NONE outside every region;
 * *region gets the region that holds it (NULL outside every region), for
 * a caller that looks near addr again.  Inline: every free starts here. */
HA_INLINE int page_kind_region(uintptr_t addr, const struct page_region **region)
{
    uintptr_t pfn = addr >> HA_PAGE_SHIFT;
    struct page_region *r = page_region_of(pfn);
    *region = r;
    if (!r)
        return PAGE_KIND_NONE;
    size_t i = pfn - r->base_pfn;
    return __atomic_load_n(&r->kinds[i], __ATOMIC_RELAXED);
}

HA_INLINE int page_kind_of(uintptr_t addr)
{
    const struct page_region *r;
    return page_kind_region(addr, &r);
}

/* Beside the pages' kinds the page allocator keeps a byte per 16 KiB
 * granule (aligned) for the layer its pages are given to: slab.c keeps
 * there the class of a slab chunk (16, 64 or 256 KiB, aligned to its
 * size), so that a free learns it from a small dense map rather than from
 * the chunk's header (at a chunk boundary, where every chunk's header
 * shares a few cache sets with every other's).  PAGE_AUX_NONE when a
 * region is made; written by the owner with relaxed stores (page_set_aux)
 * and read without a lock.  64 KiB per GiB of RAM. */
#define PAGE_AUX_ORDER 2 /* pages per granule: 1 << PAGE_AUX_ORDER */
#define PAGE_AUX_NONE 0xFFu
/* The byte of the granule holding addr, which lies in region r. */
HA_INLINE size_t page_aux_in(const struct page_region *r, uintptr_t addr)
{
    return ha_load_relaxed8((const uint8_t *)(r->aux_at + (addr >> (HA_PAGE_SHIFT + PAGE_AUX_ORDER))));
}
/* Set the byte of the granules of the count pages from p (the caller's, in
 * one region; p and count whole granules) to v. */
void page_set_aux(const void *p, size_t count, uint8_t v);
/* Is the page holding addr allocated (bitmap bit set)?  addr in a region. */
bool page_is_allocated(uintptr_t addr);

/* For the CPU frame caches (frame.c).  page_take_frames takes up to n single
 * free pages, smallest free blocks first, marks them allocated with kind
 * FRAME and writes their addresses to out[], bit 0 set where the page is
 * known zero; returns how many.  page_give_frames frees such addresses (bit
 * 0: the page is zero).  page_validate_frame is page_validate(a, 1, USER)
 * without the lock, for a cache's single-page free (a FRAME page is in a
 * cache already: a double free), and gives where the page's kind is kept
 * for the cache to write (USER <-> FRAME, under its lock).
 * page_count_frames: how many pages are of kind FRAME. */
size_t page_take_frames(uintptr_t *out, size_t n);
void page_give_frames(const uintptr_t *frames, size_t n);
size_t page_count_frames(void);
HA_INLINE enum ha_fault page_validate_frame(uintptr_t a, uint8_t **kind_at)
{
    if (a & (HA_PAGE_SIZE - 1))
        return FAULT_UNALIGNED;
    uintptr_t pfn = a >> HA_PAGE_SHIFT;
    struct page_region *r = page_region_of(pfn);
    if (!r)
        return FAULT_FOREIGN;
    size_t i = pfn - r->base_pfn;
    if (!((__atomic_load_n(&r->bitmap[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1u))
        return FAULT_DOUBLE_FREE;
    *kind_at = &r->kinds[i];
    unsigned k = __atomic_load_n(&r->kinds[i], __ATOMIC_RELAXED);
    if (HA_LIKELY(k == PAGE_KIND_USER))
        return FAULT_NONE;
    return k == PAGE_KIND_SYSTEM ? FAULT_RESERVED : k == PAGE_KIND_FRAME ? FAULT_DOUBLE_FREE : FAULT_BYTES_NOT_PAGES;
}
/* Where the kind of the allocated page at a (in a region) is kept. */
HA_INLINE uint8_t *page_kind_at(uintptr_t a)
{
    uintptr_t pfn = a >> HA_PAGE_SHIFT;
    struct page_region *r = page_region_of(pfn);
    return &r->kinds[pfn - r->base_pfn];
}
/* pages_peak is the high-water mark of used pages less the frames the CPU
 * caches hold.  page_sample_peak raises it to the present value (no lock);
 * page_peak_generation changes whenever the page allocator itself raised
 * it, so that a cache whose own share did not pass its high-water mark
 * knows when to sample anyway. */
void page_sample_peak(void);
extern _Atomic unsigned page_peak_gen;
HA_INLINE unsigned page_peak_generation(void)
{
    return atomic_load_explicit(&page_peak_gen, memory_order_relaxed);
}
/* The page lock, for frame_stats: with it held, page_frame_mark marks an
 * allocated (cached) frame free or back in the bitmap, and
 * page_stats_locked adds pages_total/used/free/peak/largest_run and the
 * bitmap part of bytes_meta to *out (the frame caches' counts are the
 * caller's). */
uintptr_t page_lock(void);
void page_unlock(uintptr_t irq);
void page_frame_mark(uintptr_t a, bool free);
void page_stats_locked(struct ha_stats *out);
int page_check(void);

/* ========================================================== early.c */

int early_init(uintptr_t base, size_t len);
bool early_owns(uintptr_t addr);            /* inside the early range */
void *early_alloc(size_t size, size_t align);
void *early_alloc_pages(size_t count, size_t align);
enum ha_fault early_validate(const void *p, size_t size, size_t align, bool sized);
void early_free(void *p);                   /* validated by early_validate */
enum ha_fault early_validate_pages(const void *p, size_t count);
void early_free_pages(void *p, size_t count);
size_t early_usable(const void *p);
bool early_resize_in_place(void *p, size_t new_size);
/* Called by ha_final_init: stop bump allocation and hand the unused middle
 * of the range to the page allocator. */
int early_finish(void);
void early_stats(struct ha_stats *out);
int early_check(void);

/* ========================================================== slab.c */

/* Size class for (size, align), or -1 when no class in use holds the
 * request (size above the largest, or align more than the classes that
 * fit it have). */
int slab_class_for(size_t size, size_t align);
/* Turn on the classes above 1 KiB once the page allocator manages enough
 * memory that their partly used chunks cost little, and at the first call
 * choose the chunk size of the classes up to 1 KiB (slab.c); called when
 * the heap starts and when a region is added. */
void slab_configure(void);
size_t slab_class_size(unsigned cls);
/* The size (and alignment) of class cls's chunks, once configured. */
size_t slab_class_chunk(unsigned cls);
/* The small path of ha_alloc in one call, through this CPU's cache, for a
 * class slab_class_for gave; *usable gets the class size; the statistics
 * count it (the checked build: size, what was asked).  NULL when out of
 * memory. */
void *slab_alloc(unsigned cls, size_t size, size_t *usable);
/* ha_alloc's fast path (default build only: no red zone to arm): size in
 * 1..slab_max_size, align <= HA_MIN_ALIGN.  When the cache cannot serve it
 * (out of memory), the result is miss(size, align): the facade's general
 * path, with its reclaim and OOM hook.
 * slab_max_size: the largest size the classes in use serve (8176, or
 * HA_SMALL_MAX once slab_configure turned the big classes on; 0 before
 * ha_final_init). */
extern _Atomic size_t slab_max_size;
typedef void *(*slab_miss_fn)(size_t size, size_t align);
void *slab_alloc_small(size_t size, size_t align, slab_miss_fn miss);
/* The hottest paths here and below come in two copies (see hooks_none):
 * X calls every hook, X_none none; the caller picks with hooks_none(). */
void *slab_alloc_small_none(size_t size, size_t align, slab_miss_fn miss);
/* Free p (validated by slab_validate) through this CPU's cache.
 * `accounted` as slab_alloc counted it. */
void cache_free(void *p, unsigned cls, size_t accounted);
/* Validate and free p (page kind SLAB, in region r) in one pass: the fast
 * path of ha_free / ha_free_sized.  need and align are checked against
 * the class when sized.  Faults before any change. */
void slab_free(void *p, size_t need, size_t align, const struct page_region *r);
void slab_free_none(void *p, size_t need, size_t align, const struct page_region *r);
/* slab_free(p, need, align, r) for any align <= HA_MIN_ALIGN. */
void slab_free_min(void *p, size_t need, const struct page_region *r);
void slab_free_min_none(void *p, size_t need, const struct page_region *r);
/* slab_free(p, 0, 0, false, r), for ha_free. */
void slab_free_unsized(void *p, const struct page_region *r);
void slab_free_unsized_none(void *p, const struct page_region *r);
/* ha_realloc's fast look-up of p (page kind SLAB, in region r): the class
 * of the live object at p, *fits if need bytes (align <= HA_MIN_ALIGN) map
 * to it; -1 when p is not plainly a live object (the general path names
 * the fault).  Changes nothing. */
int slab_realloc_class(const void *p, const struct page_region *r, size_t need, bool *fits);
/* For p inside a slab chunk: FAULT_NONE and *cls, or the fault. */
enum ha_fault slab_validate(const void *p, unsigned *cls);
/* Make the calling CPU's cache now (ha_final_init), so that it sits at the
 * start of free memory rather than wherever the first request leaves room. */
void cache_prepare(void);
void slab_trim(void);                       /* drain every cache, free empty slabs */
/* Per-CPU byte statistics, kept under the CPU's cache lock (slab_alloc and
 * cache_free account for themselves; the facade calls these for the other
 * paths).  Before ha_final_init they go to a boot-time record. */
void cache_account_alloc(size_t usable);
void cache_account_free(size_t usable);
void cache_account_resize(size_t old_usable, size_t new_usable);
/* bytes_free and bytes_meta of the slabs and the CPU caches' bins. */
void slab_stats(struct ha_stats *out);
int slab_check(void);

/* ========================================================== frame.c */

/* Per-CPU frame caches: single pages for ha_alloc_pages(1, <= HA_PAGE_SIZE)
 * and ha_free_pages(p, 1), refilled from and drained to the page allocator
 * in batches (see frame.c).  A cached frame's page is of kind FRAME, so a
 * multi-page free that meets one is told by the kind map.
 * frame_alloc: NULL when the page allocator has no free page.
 * frame_flush: give every cache's frames back; how many.
 * frame_stats: the page figures, the page allocator's included, with every
 * frame cache locked so that a frame is seen on one side only. */
void frame_prepare(void);
void *frame_alloc(bool *zeroed);
/* The fast paths of ha_alloc_pages(1) and ha_free_pages(p, 1), ending in
 * tail calls: frame_alloc_or returns a frame, or miss(count, align) when
 * the page allocator has none; frame_free_or caches p, or calls
 * fault(p, fault) with nothing changed. */
typedef void *(*frame_miss_fn)(size_t count, size_t align);
typedef void (*frame_fault_fn)(void *p, enum ha_fault f);
void *frame_alloc_or(frame_miss_fn miss, size_t count, size_t align);
void frame_free_or(void *p, frame_fault_fn fault);
void *frame_alloc_or_none(frame_miss_fn miss, size_t count, size_t align); /* hooks_none() */
void frame_free_or_none(void *p, frame_fault_fn fault);
size_t frame_flush(void);
void frame_stats(struct ha_stats *out);
int frame_check(void);

/* ========================================================== tlsf.c */

/* Mid (<= HA_MID_MAX, align <= HA_PAGE_SIZE) blocks come from shared arenas;
 * larger or more aligned ones get an arena of their own. */
/* `accounted`: what the statistics count for the block (0: its usable
 * size).  TLSF keeps its byte statistics under its own lock. */
void *tlsf_alloc(size_t size, size_t align, bool *zeroed, size_t accounted);
/* tlsf_alloc(size, HA_MIN_ALIGN, NULL, 0) for HA_SMALL_MAX < size <=
 * HA_MID_MAX: ha_alloc's mid path. */
void *tlsf_alloc_mid(size_t size);
enum ha_fault tlsf_validate(const void *p);
/* Validate p (and, when sized, that need and align fit its block) and free
 * it, under one lock: FAULT_NONE, or the fault with nothing changed. */
enum ha_fault tlsf_free(void *p, size_t need, size_t align, bool sized, size_t accounted);
/* tlsf_free(p, need, align, sized, 0) for p in an arena page of region r
 * (page_kind_region said so): the region is not searched again. */
enum ha_fault tlsf_free_in_region(const struct page_region *r, void *p, size_t need, size_t align, bool sized);

/* Does a sized free of need bytes fit a TLSF block of `usable` bytes?  A
 * shared-arena block holds its request rounded up by less than a minimum
 * block; a dedicated arena's by less than a page plus headers. */
HA_INLINE bool tlsf_size_fits(size_t usable, size_t need)
{
    size_t slack_max = usable > HA_MID_MAX ? HA_PAGE_SIZE + 128 : 128;
    return need <= usable && usable - need < slack_max;
}
size_t tlsf_usable(const void *p);
/* Grow or shrink p's block in place to hold new_size; false if it can't. */
bool tlsf_resize_in_place(void *p, size_t new_size);
/* Validate p (in region r, or anywhere when r is NULL) and resize it in
 * place to new_size under one lock: FAULT_NONE with *resized, and
 * usable[0] and usable[1] its usable sizes before and after (equal when it
 * was not resized); else the fault, and nothing changed. */
enum ha_fault tlsf_resize_in(const struct page_region *r, void *p, size_t new_size, bool *resized, size_t usable[2]);
void tlsf_trim(void);
void tlsf_stats(struct ha_stats *out);
int tlsf_check(void);

#pragma GCC visibility pop

#endif /* HA_INTERNAL_H */
