/*
 * The C kernel's shared definitions: per-hart state, console, exit, checks.
 * Included by the assembly entry too, so the C parts sit behind
 * __ASSEMBLER__.
 */
#ifndef KC_H
#define KC_H

/* Harts this kernel drives; more in the device tree are left parked. */
#define KC_MAX_HARTS 8
/* Per-hart stack.  The stress loop keeps its slot table on it. */
#define KC_STACK_SIZE (32 * 1024)
/* Offset of kc_cpu.stack_top, read by the secondary entry. */
#define KC_CPU_STACK_TOP 0

#define KC_SSTATUS_SIE (1 << 1)
/* FS = Initial: gcc may use FP registers for rv64gc code, which traps
 * while FS is Off. */
#define KC_SSTATUS_FS_INITIAL (1 << 13)

#ifndef __ASSEMBLER__

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One per hart that runs kernel code; tp points at it.  The index is the
 * dense CPU number handed to the allocator (hart ids may be sparse). */
struct kc_cpu {
    uintptr_t stack_top; /* must stay first: KC_CPU_STACK_TOP */
    unsigned index;
    uint64_t hartid;
    atomic_uint online;
};

extern struct kc_cpu kc_cpus[KC_MAX_HARTS];
extern unsigned kc_ncpus;

static inline struct kc_cpu *kc_this_cpu(void)
{
    struct kc_cpu *c;
    __asm__ volatile("mv %0, tp" : "=r"(c));
    return c;
}

static inline uint64_t kc_rdtime(void)
{
    uint64_t t;
    __asm__ volatile("rdtime %0" : "=r"(t));
    return t;
}

/* ---- sbi.c: firmware calls and the way out ---- */
void sbi_console_putchar(int c);
/* 0 or the SBI error code. */
long sbi_hart_start(uint64_t hartid, uintptr_t entry, uintptr_t opaque);
/* End QEMU: status 0 passes, 1..255 fail with that exit status. */
_Noreturn void kc_exit(unsigned status);

/* ---- print.c: console output, one line at a time across harts ---- */
void kc_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kc_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int kc_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- a tiny spinlock (the kernel's own, not the allocator's) ---- */
typedef struct {
    atomic_uint held;
} kc_lock_t;

static inline void kc_lock(kc_lock_t *l)
{
    while (atomic_exchange_explicit(&l->held, 1u, memory_order_acquire))
        while (atomic_load_explicit(&l->held, memory_order_relaxed))
            ;
}

static inline void kc_unlock(kc_lock_t *l)
{
    atomic_store_explicit(&l->held, 0u, memory_order_release);
}

/* ---- smp.c: start harts, run a job on all of them ---- */
struct fdt_info;
/* Start every other hart the device tree lists; returns harts online. */
unsigned smp_start(const struct fdt_info *fi, uint64_t boot_hartid);
/* Run fn(arg) on every online hart at once (boot hart included) and wait
 * until all have returned. */
void smp_run_on_all(void (*fn)(void *), void *arg);

/* ---- rng: xorshift64*, fixed seeds ---- */
static inline uint64_t kc_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* ---- checks ---- */
/* A check records its first failure and says why; main.c prints one
 * "[ ok ]" or "[FAIL]" line per check and counts them. */
struct kc_check {
    const char *name;
    bool failed;
    char why[160];
    char note[160]; /* what an ok line shows: measured figures */
};

void kc_fail(struct kc_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define KC_EXPECT(c, cond, ...)                                                \
    do {                                                                       \
        if (!(cond)) {                                                         \
            kc_fail((c), __VA_ARGS__);                                         \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Memory the allocator must never hand out, for the checks to test
 * against: kernel image, DTB, firmware and /memreserve/ ranges. */
struct kc_range {
    uintptr_t base, end;
    const char *what;
};
#define KC_MAX_FORBIDDEN 24
extern struct kc_range kc_forbidden[KC_MAX_FORBIDDEN];
extern unsigned kc_nforbidden;
/* The early allocator's range (main.c). */
extern uintptr_t kc_early_base;
extern size_t kc_early_size;
extern struct kc_range kc_ram[8];
extern unsigned kc_nram;
/* The range [p, p + len) lies in RAM and outside every forbidden range;
 * else returns what it hits ("outside RAM", "kernel image"...). */
const char *kc_range_problem(const void *p, size_t len);

/* tests.c */
void test_pages(struct kc_check *c);
void test_page_exhaustion(struct kc_check *c);
void test_byte_churn(struct kc_check *c);
void test_byte_edges(struct kc_check *c);
void test_realloc_growth(struct kc_check *c);
/* smp_stress.c */
void test_smp_stress(struct kc_check *c);

/* Fill / verify a block with a pattern derived from seed. */
void kc_fill(void *p, size_t len, uint64_t seed);
/* Offset of the first mismatch, or (size_t)-1 when the pattern holds. */
size_t kc_verify(const void *p, size_t len, uint64_t seed);
/* Verify [0, len) of a block that was filled for filled_len >= len. */
size_t kc_verify_prefix(const void *p, size_t filled_len, size_t len, uint64_t seed);

#endif /* __ASSEMBLER__ */
#endif /* KC_H */
