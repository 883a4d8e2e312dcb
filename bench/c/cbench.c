/*
 * hartalloc's C API against the hosted allocators a C programmer would
 * reach for: glibc malloc, jemalloc and mimalloc (Debian's packages), on
 * the workloads of the Rust harness that make sense for a heap that grows
 * from the OS: talc's random actions (with and without realloc, and on
 * every core), alloc+free latency in cycles, SMP churn with cross-thread
 * frees; and Hoard's cache-scratch (false sharing between threads).  Same seeds, same random streams (splitmix64) as the Rust
 * harness, so hartalloc's figures from both can be compared.
 *
 *   cbench [--quick] [--only WORKLOAD,...] --out FILE.csv
 *   cbench --icount ALLOCATOR OPS    (run under callgrind by bench/icount.py)
 *
 * Debian's jemalloc is unprefixed and mimalloc's shared library exports
 * malloc too; neither may replace this process's malloc: jemalloc is
 * linked from a renamed static copy (bje_mallocx...), mimalloc dlopen()ed
 * with RTLD_LOCAL and called by its mi_ names.  hartalloc runs over a 128 MiB arena mapped and
 * populated once; every trial of every allocator runs in a forked child
 * (hartalloc's heap can be started once per process; the hosted
 * allocators then also start each trial on a fresh heap).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "hartalloc.h"

#define ARENA (128u << 20)
#define EARLY_SLICE (256u << 10)
#define SEED 0x686172740000ull
#define MAX_THREADS 64

/* ---- settings ---- */
static double window_s = 0.2;
static int trials = 7;
static int lat_samples = 50000;
static int nthreads = 2;
/* cache-scratch: allocations per thread, and writes to each byte of each. */
static int cs_iters = 2000;
static int cs_reps = 1000;

/* ---- the allocators ---- */
struct allocator {
    const char *name;
    int (*init)(void);
    void *(*alloc)(size_t size, size_t align);
    void (*free)(void *p, size_t size, size_t align);
    void *(*realloc)(void *p, size_t old, size_t size, size_t align);
    /* One 4 KiB page: the page API where there is one, else an aligned
     * alloc of 4096 at 4096. */
    void *(*frame_alloc)(void);
    void (*frame_free)(void *p);
};

/* glibc: malloc for the alignments it gives anyway (16), memalign above;
 * realloc keeps only 16, so an over-aligned block moves by hand. */
static int glibc_init(void) { return 0; }
static void *glibc_alloc(size_t size, size_t align)
{
    return align <= 16 ? malloc(size) : memalign(align, size);
}
static void glibc_free(void *p, size_t size, size_t align)
{
    (void)size, (void)align;
    free(p);
}
static void *glibc_frame_alloc(void) { return memalign(4096, 4096); }
static void glibc_frame_free(void *p) { free(p); }
static void *glibc_realloc(void *p, size_t old, size_t size, size_t align)
{
    if (align <= 16)
        return realloc(p, size);
    void *q = memalign(align, size);
    if (q) {
        memcpy(q, p, old < size ? old : size);
        free(p);
    }
    return q;
}

/* jemalloc through its non-standard API, flags carrying the alignment;
 * linked from a copy of Debian's archive whose public names carry a bje_
 * prefix (jemalloc-prefixed.sh), so it does not replace malloc. */
void *bje_mallocx(size_t size, int flags);
void bje_sdallocx(void *p, size_t size, int flags);
void *bje_rallocx(void *p, size_t size, int flags);
#define JE_ALIGN(a) ((int)__builtin_ctzl(a))
static int je_init(void) { return 0; }
static void *je_alloc(size_t size, size_t align) { return bje_mallocx(size, JE_ALIGN(align)); }
static void je_free(void *p, size_t size, size_t align) { bje_sdallocx(p, size, JE_ALIGN(align)); }
static void *je_frame_alloc(void) { return bje_mallocx(4096, JE_ALIGN(4096)); }
static void je_frame_free(void *p) { bje_sdallocx(p, 4096, JE_ALIGN(4096)); }
static void *je_realloc(void *p, size_t old, size_t size, size_t align)
{
    (void)old;
    return bje_rallocx(p, size, JE_ALIGN(align));
}

/* mimalloc's shared library exports malloc as well: dlopen()ed with
 * RTLD_LOCAL, called by its mi_ names only. */
static int dl(const char *lib, void **handle)
{
    *handle = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!*handle)
        fprintf(stderr, "cbench: %s\n", dlerror());
    return *handle ? 0 : -1;
}
static void *(*mi_malloc_aligned_p)(size_t, size_t);
static void (*mi_free_size_aligned_p)(void *, size_t, size_t);
static void *(*mi_realloc_aligned_p)(void *, size_t, size_t);
static int mi_init(void)
{
    void *h;
    if (dl("libmimalloc.so.2", &h))
        return -1;
    *(void **)&mi_malloc_aligned_p = dlsym(h, "mi_malloc_aligned");
    *(void **)&mi_free_size_aligned_p = dlsym(h, "mi_free_size_aligned");
    *(void **)&mi_realloc_aligned_p = dlsym(h, "mi_realloc_aligned");
    return mi_malloc_aligned_p && mi_free_size_aligned_p && mi_realloc_aligned_p ? 0 : -1;
}
static void *mi_alloc(size_t size, size_t align) { return mi_malloc_aligned_p(size, align); }
static void mi_free_(void *p, size_t size, size_t align) { mi_free_size_aligned_p(p, size, align); }
static void *mi_frame_alloc(void) { return mi_malloc_aligned_p(4096, 4096); }
static void mi_frame_free(void *p) { mi_free_size_aligned_p(p, 4096, 4096); }
static void *mi_realloc_(void *p, size_t old, size_t size, size_t align)
{
    (void)old;
    return mi_realloc_aligned_p(p, size, align);
}

/* hartalloc's C API, booted as a kernel boots it.  A single-thread run
 * (one_cpu) is a kernel on one CPU: the hooks below then do nothing (the
 * one thread's id is 0), which it declares, as such a kernel would. */
static unsigned char *arena;
static int one_cpu;
static int ha_bench_init(void)
{
    if (ha_early_init(arena, EARLY_SLICE) || ha_add_region(arena + EARLY_SLICE, ARENA - EARLY_SLICE) ||
        ha_final_init())
        return -1;
    if (one_cpu)
        ha_set_trivial_hooks(HA_TRIVIAL_CPU_ID | HA_TRIVIAL_IRQ_SAVE | HA_TRIVIAL_IRQ_RESTORE);
    return 0;
}
static void ha_bench_free(void *p, size_t size, size_t align) { ha_free_sized(p, size, align); }
static void *ha_frame_alloc(void) { return ha_alloc_pages(1, HA_PAGE_SIZE); }
static void ha_frame_free(void *p) { ha_free_pages(p, 1); }
static void *ha_bench_realloc(void *p, size_t old, size_t size, size_t align)
{
    (void)old;
    return ha_realloc(p, size, align);
}

/* Platform hooks: a CPU id per thread (0, 1, ... in the order threads
 * first allocate), no interrupts, a fault stops the run loudly. */
unsigned ha_platform_cpu_id(void)
{
    static atomic_uint next;
    static _Thread_local unsigned id = ~0u;
    if (id == ~0u)
        id = atomic_fetch_add(&next, 1);
    return id;
}
void ha_platform_fatal(const char *msg, const void *addr)
{
    fprintf(stderr, "%s at %p\n", msg, addr);
    abort();
}

static const struct allocator allocators[] = {
    {"hartalloc-c", ha_bench_init, ha_alloc, ha_bench_free, ha_bench_realloc, ha_frame_alloc, ha_frame_free},
    {"glibc", glibc_init, glibc_alloc, glibc_free, glibc_realloc, glibc_frame_alloc, glibc_frame_free},
    {"jemalloc", je_init, je_alloc, je_free, je_realloc, je_frame_alloc, je_frame_free},
    {"mimalloc", mi_init, mi_alloc, mi_free_, mi_realloc_, mi_frame_alloc, mi_frame_free},
};
#define NALLOC (sizeof allocators / sizeof allocators[0])

/* The null allocator of the instruction counts: what the measured loop
 * costs without an allocator (its calls, its loads and stores), to be
 * subtracted so that the figures are the allocators' own.  alloc hands out
 * one fixed block (never written), free does nothing. */
static _Alignas(4096) unsigned char null_block[4096];
static int null_init(void) { return 0; }
static void *null_alloc(size_t size, size_t align)
{
    (void)size, (void)align;
    return null_block;
}
static void null_free(void *p, size_t size, size_t align) { (void)p, (void)size, (void)align; }
static void *null_realloc(void *p, size_t old, size_t size, size_t align)
{
    (void)old, (void)size, (void)align;
    return p;
}
static void *null_frame_alloc(void) { return null_block; }
static void null_frame_free(void *p) { (void)p; }
static const struct allocator null_allocator = {"null",     null_init,        null_alloc,     null_free,
                                                null_realloc, null_frame_alloc, null_frame_free};

/* ---- random numbers: splitmix64, as the Rust harness ---- */
struct rng {
    uint64_t s;
};
static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static size_t rng_range(struct rng *r, size_t lo, size_t hi) { return lo + rng_next(r) % (hi - lo); }
static size_t talc_align(struct rng *r)
{
    uint16_t v = (uint16_t)rng_next(r);
    unsigned tz = v ? (unsigned)__builtin_ctz(v) : 16;
    return (size_t)8 << (tz / 2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct block {
    void *p;
    size_t size, align;
};

/* ---- random actions (talc's), as work.rs::random_actions ---- */
static uint64_t random_actions(const struct allocator *a, size_t max, int with_realloc, uint64_t seed)
{
    struct rng r = {seed};
    size_t cap = 1 << 16, n = 0;
    struct block *live = malloc(cap * sizeof *live);
    uint64_t score = 0, it = 0;
    double start = now_s();
    for (;;) {
        if (++it % 16 == 0 && now_s() - start >= window_s)
            break;
        size_t roll = rng_range(&r, 0, with_realloc ? 7 : 6);
        if (n < 300 || roll < 3) {
            size_t c = rng_range(&r, 16, max), size = rng_range(&r, 4, c), align = talc_align(&r);
            void *p = a->alloc(size, align);
            if (p) {
                *(volatile unsigned char *)p = 0xa5;
                if (n == cap)
                    live = realloc(live, (cap *= 2) * sizeof *live);
                live[n++] = (struct block){p, size, align};
                score++;
            }
        } else if (roll < 6) {
            size_t i = rng_range(&r, 0, n);
            a->free(live[i].p, live[i].size, live[i].align);
            live[i] = live[--n];
            score++;
        } else {
            size_t i = rng_range(&r, 0, n), ns = rng_range(&r, 4, 3 * max);
            void *p = a->realloc(live[i].p, live[i].size, ns, live[i].align);
            if (p) {
                live[i].p = p;
                live[i].size = ns;
                score++;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        a->free(live[i].p, live[i].size, live[i].align);
    free(live);
    return score;
}

struct mt_arg {
    const struct allocator *a;
    size_t max;
    uint64_t seed, out;
    int thread, nthreads;
};
static void *mt_main(void *v)
{
    struct mt_arg *m = v;
    m->out = random_actions(m->a, m->max, 1, m->seed);
    return NULL;
}

/* ---- latency, as work.rs::latency ---- */
static uint64_t cycles(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}
static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}
static void latency(const struct allocator *a, size_t max, uint64_t seed, FILE *out)
{
    struct rng r = {seed};
    struct block live[300];
    for (int i = 0; i < 300; i++) {
        size_t c = rng_range(&r, 16, max), s = rng_range(&r, 4, c), al = talc_align(&r);
        live[i] = (struct block){a->alloc(s, al), s, al};
        if (!live[i].p)
            exit(4);
    }
    uint64_t *t = malloc((size_t)lat_samples * sizeof *t);
    for (int k = 0; k < lat_samples; k++) {
        size_t i = rng_range(&r, 0, 300);
        size_t c = rng_range(&r, 16, max), s = rng_range(&r, 4, c), al = talc_align(&r);
        uint64_t t0 = cycles();
        a->free(live[i].p, live[i].size, live[i].align);
        void *p = a->alloc(s, al);
        uint64_t t1 = cycles();
        if (!p)
            exit(4);
        live[i] = (struct block){p, s, al};
        t[k] = t1 - t0;
    }
    for (int i = 0; i < 300; i++)
        a->free(live[i].p, live[i].size, live[i].align);
    qsort(t, (size_t)lat_samples, sizeof *t, cmp_u64);
    static const struct {
        const char *name;
        double q;
    } qs[] = {{"p1", .01}, {"p25", .25}, {"p50", .5}, {"p75", .75}, {"p99", .99}, {"p99.9", .999}};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
        fprintf(out, "%s %llu\n", qs[i].name,
                (unsigned long long)t[(size_t)((double)(lat_samples - 1) * qs[i].q + 0.5)]);
    fprintf(out, "max %llu\n", (unsigned long long)t[lat_samples - 1]);
    free(t);
}

/* ---- SMP churn, as work.rs::smp_churn ---- */
struct inbox {
    atomic_flag lock;
    size_t n, cap;
    struct block *b;
};
static struct inbox inboxes[MAX_THREADS];
static void inbox_lock(struct inbox *ib)
{
    while (atomic_flag_test_and_set_explicit(&ib->lock, memory_order_acquire))
        __builtin_ia32_pause();
}
static void inbox_unlock(struct inbox *ib) { atomic_flag_clear_explicit(&ib->lock, memory_order_release); }

static void *smp_main(void *v)
{
    struct mt_arg *m = v;
    const struct allocator *a = m->a;
    struct rng r = {m->seed ^ ((uint64_t)(m->thread + 1) * 0x9e3779b9ull)};
    struct block mine[32];
    size_t gcap = 1024, gn;
    struct block *got = malloc(gcap * sizeof *got);
    uint64_t ops = 0, rounds = 0;
    double start = now_s();
    while (rounds % 4 != 0 || now_s() - start < window_s) {
        rounds++;
        for (int i = 0; i < 32; i++) {
            size_t s = rng_range(&r, 8, 257);
            mine[i] = (struct block){a->alloc(s, 8), s, 8};
            if (!mine[i].p)
                exit(4);
            *(volatile unsigned char *)mine[i].p = 0xa5;
        }
        ops += 32;
        for (int i = 16; i < 32; i++, ops++)
            a->free(mine[i].p, mine[i].size, 8);
        struct inbox *to = &inboxes[(m->thread + 1) % m->nthreads];
        inbox_lock(to);
        if (to->n + 16 > to->cap)
            to->b = realloc(to->b, (to->cap = 2 * (to->cap + 16)) * sizeof *to->b);
        memcpy(to->b + to->n, mine, 16 * sizeof *mine);
        to->n += 16;
        inbox_unlock(to);
        struct inbox *me = &inboxes[m->thread];
        inbox_lock(me);
        gn = me->n;
        if (gn > gcap)
            got = realloc(got, (gcap = gn) * sizeof *got);
        memcpy(got, me->b, gn * sizeof *got);
        me->n = 0;
        inbox_unlock(me);
        for (size_t i = 0; i < gn; i++, ops++)
            a->free(got[i].p, got[i].size, 8);
    }
    free(got);
    m->out = ops;
    return NULL;
}

static uint64_t run_threads(const struct allocator *a, int n, size_t max, uint64_t seed, void *(*fn)(void *))
{
    pthread_t th[MAX_THREADS];
    struct mt_arg args[MAX_THREADS];
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        args[i] = (struct mt_arg){a, max, seed, 0, i, n};
        if (fn == mt_main)
            args[i].seed = seed + 1000 * (uint64_t)i;
        pthread_create(&th[i], NULL, fn, &args[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        sum += args[i].out;
    }
    return sum;
}

/* ---- cache-scratch, after Hoard's benchmark of that name ----
 * Thread A (the trial's main thread) allocates one small object per
 * worker, back to back, so that they share a cache line, and hands one to
 * each worker.  Each worker frees the object it was given, then allocates
 * an object of the same size, writes every byte of it cs_reps times, frees
 * it, cs_iters times over.  An allocator that gives a worker back the
 * block another CPU freed, or that carves the workers' blocks from one
 * cache line, has them write to a shared line: the run time is then
 * dominated by false sharing.  Each thread has a CPU id of its own in
 * hartalloc (ha_platform_cpu_id above): A is 0, the workers 1 and 2. */
#define CS_SIZE 8
struct cs_arg {
    const struct allocator *a;
    void *given;
    double cpu_ms;
    uintptr_t first; /* the first block the worker allocated */
};
/* The workers start together: false sharing needs both running at once. */
static pthread_barrier_t cs_start;
static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
static void *cs_main(void *v)
{
    struct cs_arg *c = v;
    const struct allocator *a = c->a;
    pthread_barrier_wait(&cs_start);
    double t0 = thread_cpu_ms();
    a->free(c->given, CS_SIZE, 8);
    for (int i = 0; i < cs_iters; i++) {
        volatile unsigned char *p = a->alloc(CS_SIZE, 8);
        if (!p)
            exit(4);
        if (i == 0)
            c->first = (uintptr_t)p;
        for (int r = 0; r < cs_reps; r++)
            for (int b = 0; b < CS_SIZE; b++)
                p[b]++;
        a->free((void *)p, CS_SIZE, 8);
    }
    c->cpu_ms = thread_cpu_ms() - t0;
    return NULL;
}
/* The workers' CPU time, summed (ms): a write stalled on a line the other
 * CPU holds counts, a worker waiting for a host CPU does not (the host is
 * shared, and its other work should not decide the figure); and the wall
 * time from handing out the objects to the last worker's end, as Hoard
 * reports it. */
static void cache_scratch(const struct allocator *a, int workers, FILE *out)
{
    pthread_t th[MAX_THREADS];
    struct cs_arg args[MAX_THREADS];
    for (int i = 0; i < workers; i++) {
        args[i] = (struct cs_arg){a, a->alloc(CS_SIZE, 8), 0, 0};
        if (!args[i].given)
            exit(4);
        memset(args[i].given, 0, CS_SIZE);
    }
    pthread_barrier_init(&cs_start, NULL, (unsigned)workers);
    double t0 = now_s();
    for (int i = 0; i < workers; i++)
        pthread_create(&th[i], NULL, cs_main, &args[i]);
    double cpu = 0;
    for (int i = 0; i < workers; i++) {
        pthread_join(th[i], NULL);
        cpu += args[i].cpu_ms;
    }
    pthread_barrier_destroy(&cs_start);
    /* Whether the workers' blocks share a 64-byte line: what the timing
     * shows only when the two workers happen to run at once. */
    int shared = workers > 1 && args[0].first / 64 == args[1].first / 64;
    fprintf(out, "ms %.3f\nwall_ms %.3f\nshared_line %d\n", cpu, (now_s() - t0) * 1e3, shared);
}

/* ---- instruction counts (run under callgrind by bench/icount.py) ----
 * Four workloads, each a precomputed sequence (fixed seed) run twice
 * through the same loop: once untimed by icount_warmup (first-use set-up,
 * caches filled), once by icount_run, the only function callgrind counts
 * (--toggle-collect=icount_run; --dump-after=icount_run writes one total
 * per workload, in this order).  The same sequences as the Rust harness's
 * --icount (bench/rust/src/icount.rs). */
enum { IC_CHURN, IC_PAIR64, IC_MID, IC_FRAME, IC_KINDS };
#define IC_SLOTS 1024
#define IC_SEED SEED

struct ic_op {
    uint32_t slot, size;
};

/* The loop of one workload over ops[0..n]: churn allocates into an empty
 * slot and frees a full one; the pairs allocate and free at once.
 * Blocks are never written: only the allocator's work is counted. */
static inline __attribute__((always_inline)) void ic_loop(const struct allocator *a, int kind, const struct ic_op *ops,
                                                          size_t n, void **slots, uint32_t *sizes)
{
    switch (kind) {
    case IC_CHURN:
        for (size_t i = 0; i < n; i++) {
            uint32_t s = ops[i].slot;
            if (slots[s]) {
                a->free(slots[s], sizes[s], 8);
                slots[s] = NULL;
            } else {
                slots[s] = a->alloc(ops[i].size, 8);
                sizes[s] = ops[i].size;
            }
        }
        break;
    case IC_PAIR64:
    case IC_MID:
        for (size_t i = 0; i < n; i++) {
            void *p = a->alloc(ops[i].size, 8);
            __asm__ volatile("" : : "r"(p) : "memory");
            a->free(p, ops[i].size, 8);
        }
        break;
    case IC_FRAME:
        for (size_t i = 0; i < n; i++) {
            void *p = a->frame_alloc();
            __asm__ volatile("" : : "r"(p) : "memory");
            a->frame_free(p);
        }
        break;
    }
}

__attribute__((noinline, noclone, used)) void icount_warmup(const struct allocator *a, int kind,
                                                           const struct ic_op *ops, size_t n, void **slots,
                                                           uint32_t *sizes)
{
    ic_loop(a, kind, ops, n, slots, sizes);
}

__attribute__((noinline, noclone, used)) void icount_run(const struct allocator *a, int kind, const struct ic_op *ops,
                                                        size_t n, void **slots, uint32_t *sizes)
{
    ic_loop(a, kind, ops, n, slots, sizes);
}

/* The sequence of one workload: 2n ops (n to warm up, n measured). */
static struct ic_op *ic_sequence(int kind, size_t n)
{
    struct rng r = {IC_SEED + (uint64_t)kind};
    struct ic_op *ops = malloc(2 * n * sizeof *ops);
    if (!ops)
        exit(1);
    for (size_t i = 0; i < 2 * n; i++) {
        switch (kind) {
        case IC_CHURN:
            ops[i].slot = (uint32_t)rng_range(&r, 0, IC_SLOTS);
            ops[i].size = (uint32_t)rng_range(&r, 8, 4097);
            break;
        case IC_PAIR64:
            ops[i] = (struct ic_op){0, 64};
            break;
        case IC_MID:
            ops[i] = (struct ic_op){0, (uint32_t)rng_range(&r, 1024, 16 * 1024 + 1)};
            break;
        default:
            ops[i] = (struct ic_op){0, 4096};
        }
    }
    return ops;
}

static int icount_main(const char *name, size_t n)
{
    const struct allocator *a = NULL;
    for (size_t k = 0; k < NALLOC; k++)
        if (!strcmp(allocators[k].name, name))
            a = &allocators[k];
    if (!strcmp(name, "null"))
        a = &null_allocator;
    if (!a || n == 0) {
        fprintf(stderr, "cbench --icount: unknown allocator '%s' or no ops\n", name);
        return 2;
    }
    one_cpu = 1;
    if (a->init()) {
        fprintf(stderr, "cbench: %s did not start\n", a->name);
        return 2;
    }
    printf("cbench --icount %s: %zu ops per workload after %zu untimed, seed %#llx+workload\n", name, n, n,
           IC_SEED);
    static void *slots[IC_SLOTS];
    static uint32_t sizes[IC_SLOTS];
    for (int kind = 0; kind < IC_KINDS; kind++) {
        struct ic_op *ops = ic_sequence(kind, n);
        icount_warmup(a, kind, ops, n, slots, sizes);
        icount_run(a, kind, ops + n, n, slots, sizes);
        for (int s = 0; s < IC_SLOTS; s++)
            if (slots[s]) {
                a->free(slots[s], sizes[s], 8);
                slots[s] = NULL;
            }
        free(ops);
    }
    return 0;
}

/* ---- children ---- */
enum job { RA, RA_NOREALLOC, RA_MT, LATENCY, SMP, CACHE_SCRATCH };

static int run_child(const struct allocator *a, enum job j, size_t param, uint64_t seed, FILE *out)
{
    one_cpu = j == RA || j == RA_NOREALLOC || j == LATENCY;
    if (a->init()) {
        fprintf(stderr, "cbench: %s did not start\n", a->name);
        return 2;
    }
    switch (j) {
    case RA:
    case RA_NOREALLOC:
        fprintf(out, "ops_per_s %.1f\n", (double)random_actions(a, param, j == RA, seed) / window_s);
        break;
    case RA_MT:
        fprintf(out, "ops_per_s %.1f\n", (double)run_threads(a, nthreads, param, seed, mt_main) / window_s);
        break;
    case LATENCY:
        latency(a, param, seed, out);
        break;
    case SMP:
        fprintf(out, "ops_per_s %.1f\n", (double)run_threads(a, (int)param, 0, seed, smp_main) / window_s);
        for (int i = 0; i < (int)param; i++)
            for (size_t k = 0; k < inboxes[i].n; k++)
                a->free(inboxes[i].b[k].p, inboxes[i].b[k].size, 8);
        break;
    case CACHE_SCRATCH:
        cache_scratch(a, (int)param, out);
        break;
    }
    return 0;
}

static int failures;

static void trial(FILE *csv, const char *wl, const char *pname, const struct allocator *a, enum job j, size_t param,
                  int t)
{
    int fds[2];
    if (pipe(fds))
        exit(1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(60);
        FILE *out = fdopen(fds[1], "w");
        int rc = run_child(a, j, param, SEED + (uint64_t)t, out);
        fclose(out);
        _exit(rc);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[128], metric[32];
    double v;
    int n = 0;
    char buf[1024] = "";
    while (fgets(line, sizeof line, in))
        if (sscanf(line, "%31s %lf", metric, &v) == 2 && v == v) {
            size_t used = strlen(buf);
            snprintf(buf + used, sizeof buf - used, "c,%s,%s,%s,%d,%s,%.1f\n", wl, pname, a->name, t, metric, v);
            n++;
        }
    fclose(in);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || n == 0) {
        fprintf(stderr, "  FAILED: %s %s %s trial %d\n", wl, pname, a->name, t);
        fprintf(csv, "c,%s,%s,%s,%d,failed,1\n", wl, pname, a->name, t);
        failures++;
        return;
    }
    fputs(buf, csv);
}

static int wanted(const char *only, const char *wl)
{
    if (!only)
        return 1;
    size_t n = strlen(wl);
    for (const char *p = only; (p = strstr(p, wl)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *outp = NULL, *only = NULL;
    if (argc == 4 && !strcmp(argv[1], "--icount")) {
        arena = mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        return arena == MAP_FAILED ? 1 : icount_main(argv[2], (size_t)strtoul(argv[3], NULL, 0));
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            window_s = 0.005;
            trials = 2;
            lat_samples = 2000;
            cs_iters = 100;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            outp = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
    }
    if (!outp) {
        /* No default file: a run from the wrong directory would leave a
         * stray CSV behind (one was committed at the repository root). */
        fprintf(stderr, "usage: cbench [--quick] [--only WORKLOAD,...] --out FILE.csv\n");
        return 2;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = ncpu > 2 ? (ncpu < MAX_THREADS ? (int)ncpu : MAX_THREADS) : 2;
    arena = mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (arena == MAP_FAILED)
        return 1;
    FILE *csv = fopen(outp, "w");
    if (!csv)
        return 1;
    printf("cbench: hartalloc arena 128 MiB, %d trials, window %.0f ms, seeds %#llx+trial, %d threads for MT\n", trials,
           window_s * 1e3, SEED, nthreads);
    double t0 = now_s();
    static const size_t maxes[] = {200, 1000, 3000, 10000, 30000};
    static const struct {
        const char *wl;
        enum job j;
    } ras[] = {{"random_actions", RA}, {"random_actions_norealloc", RA_NOREALLOC}, {"random_actions_mt", RA_MT}};
    char pname[32];
    for (size_t w = 0; w < 3; w++) {
        if (!wanted(only, ras[w].wl))
            continue;
        printf("%s...\n", ras[w].wl);
        for (size_t m = 0; m < 5; m++)
            for (size_t k = 0; k < NALLOC; k++)
                for (int t = 0; t < trials; t++) {
                    snprintf(pname, sizeof pname, "max=%zu", maxes[m]);
                    trial(csv, ras[w].wl, pname, &allocators[k], ras[w].j, maxes[m], t);
                }
    }
    if (wanted(only, "latency")) {
        printf("latency...\n");
        static const size_t lmax[] = {1000, 30000};
        for (size_t m = 0; m < 2; m++)
            for (size_t k = 0; k < NALLOC; k++)
                for (int t = 0; t < trials; t++) {
                    snprintf(pname, sizeof pname, "max=%zu", lmax[m]);
                    trial(csv, "latency", pname, &allocators[k], LATENCY, lmax[m], t);
                }
    }
    if (wanted(only, "smp")) {
        printf("smp...\n");
        int ns[2] = {1, nthreads};
        for (int m = 0; m < 2; m++)
            for (size_t k = 0; k < NALLOC; k++)
                for (int t = 0; t < trials; t++) {
                    snprintf(pname, sizeof pname, "threads=%d", ns[m]);
                    trial(csv, "smp", pname, &allocators[k], SMP, (size_t)ns[m], t);
                }
    }
    if (wanted(only, "cache_scratch")) {
        printf("cache_scratch...\n");
        for (size_t k = 0; k < NALLOC; k++)
            for (int t = 0; t < trials; t++)
                trial(csv, "cache_scratch", "threads=2", &allocators[k], CACHE_SCRATCH, 2, t);
    }
    fclose(csv);
    printf("cbench: done in %.1f s, %d failed trials\n", now_s() - t0, failures);
    return failures ? 1 : 0;
}
