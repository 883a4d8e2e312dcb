/*
 * The malloc front end's own test: run under LD_PRELOAD of
 * libhartalloc-malloc.so (it checks that it is), it exercises the C
 * library's allocation API as programs use it: edge cases and errno, every
 * aligned variant, growth past the first mmap chunk, more threads than
 * HA_MAX_CPUS with frees across threads, fork while other threads allocate,
 * and dlopen/dlclose of many TLS modules (ld.so's own early allocations).
 *
 * usage: test_front SCALE TLSDIR   (SCALE percent: the checked build runs a
 * heap walk on every call and passes a small one)
 *
 * The ThreadSanitizer build (mk/malloc.mk) compiles this file and the front
 * end with the malloc family renamed front_malloc ...: the test then calls
 * the front end directly, linked rather than preloaded.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int scale = 100;
static const char *tls_dir;
static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static size_t scaled(size_t n)
{
    size_t s = n * (size_t)scale / 100;
    return s ? s : 1;
}

/* Hides a size from the compiler, which knows what malloc may return. */
static size_t opaque(size_t n)
{
    __asm__ volatile("" : "+r"(n));
    return n;
}

static int aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

static void test_preloaded(void)
{
    Dl_info info;
    CHECK(dladdr((void *)malloc, &info) && info.dli_fname && strstr(info.dli_fname, "libhartalloc-malloc.so"),
          "malloc comes from %s, not the front end", info.dli_fname ? info.dli_fname : "?");
}

static void test_edges(void)
{
    void *a = malloc(0), *b = malloc(0);
    CHECK(a && b && a != b, "malloc(0) must give unique pointers: %p %p", a, b);
    CHECK(aligned(a, 16) && aligned(b, 16), "malloc(0) alignment");
    free(a);
    free(b);
    free(NULL);

    errno = 0;
    CHECK(calloc(opaque(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM, "calloc overflow: errno %d", errno);
    errno = 0;
    CHECK(malloc(opaque(SIZE_MAX)) == NULL && errno == ENOMEM, "malloc(SIZE_MAX): errno %d", errno);
    errno = 0;
    CHECK(malloc(opaque((size_t)1 << 60)) == NULL && errno == ENOMEM, "malloc(2^60): errno %d", errno);

    /* calloc must clear memory that was used before. */
    size_t sizes[] = { 1, 24, 100, 1000, 5000, 100000, 3u << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *d = malloc(sizes[i]);
        memset(d, 0xA5, sizes[i]);
        free(d);
        unsigned char *z = calloc(1, sizes[i]);
        size_t bad = 0;
        for (size_t k = 0; k < sizes[i]; k++)
            bad += z[k] != 0;
        CHECK(bad == 0, "calloc(%zu): %zu bytes not zero", sizes[i], bad);
        free(z);
    }

    /* realloc: contents kept across every tier, NULL and 0 as glibc. */
    unsigned char *p = realloc(NULL, 10);
    CHECK(p != NULL, "realloc(NULL, 10)");
    for (int k = 0; k < 10; k++)
        p[k] = (unsigned char)k;
    size_t steps[] = { 100, 2000, 50000, 400000, 3000, 12 };
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        p = realloc(p, steps[s]);
        CHECK(p != NULL, "realloc to %zu", steps[s]);
        for (int k = 0; k < 10; k++)
            if (p[k] != k) {
                CHECK(0, "realloc to %zu lost byte %d", steps[s], k);
                break;
            }
    }
    errno = 0;
    void *q = realloc(p, opaque(SIZE_MAX - 100));
    CHECK(q == NULL && errno == ENOMEM && p[3] == 3, "failed realloc must keep the block");
    errno = 0;
    q = reallocarray(p, opaque(SIZE_MAX / 4), 8);
    CHECK(q == NULL && errno == ENOMEM && p[3] == 3, "reallocarray overflow must keep the block");
    q = reallocarray(p, 10, 10);
    CHECK(q != NULL && ((unsigned char *)q)[9] == 9, "reallocarray(10, 10)");
    CHECK(realloc(q, 0) == NULL, "realloc(p, 0) frees and returns NULL (glibc)");

    /* malloc_usable_size: at least the request, all of it writable. */
    for (size_t n = 1; n < 70000; n = n * 3 + 1) {
        unsigned char *u = malloc(n);
        size_t us = malloc_usable_size(u);
        CHECK(us >= n, "usable %zu < %zu", us, n);
        memset(u, 0x5A, us);
        free(u);
    }
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL)");
    CHECK(malloc_trim(0) == 1, "malloc_trim");
}

static void test_aligned(void)
{
    void *p = (void *)1;
    CHECK(posix_memalign(&p, 24, 10) == EINVAL && p == (void *)1, "posix_memalign(24): EINVAL, *out untouched");
    CHECK(posix_memalign(&p, 4, 10) == EINVAL, "posix_memalign(4): below sizeof(void *)");
    CHECK(posix_memalign(&p, 64, opaque(SIZE_MAX - 64)) == ENOMEM, "posix_memalign huge: ENOMEM");
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 21); a <<= 1) {
        size_t sizes[] = { 0, 1, 100, 5000, 300000 };
        for (size_t i = 0; i < 5; i++) {
            void *m = NULL;
            int rc = posix_memalign(&m, a, sizes[i]);
            CHECK(rc == 0 && m && aligned(m, a), "posix_memalign(%zu, %zu): %d %p", a, sizes[i], rc, m);
            if (m)
                memset(m, 1, sizes[i]);
            free(m);
        }
        void *x = aligned_alloc(a, 3 * a);
        CHECK(x && aligned(x, a), "aligned_alloc(%zu)", a);
        free(x);
        void *y = memalign(a, 77);
        CHECK(y && aligned(y, a), "memalign(%zu)", a);
        free(y);
    }
    errno = 0;
    CHECK(aligned_alloc(48, 96) == NULL && errno == EINVAL, "aligned_alloc(48): EINVAL");
    void *m = memalign(48, 10);
    CHECK(m && aligned(m, 64), "memalign rounds 48 up to 64");
    free(m);
    void *v = valloc(100);
    CHECK(v && aligned(v, 4096), "valloc");
    free(v);
    void *pv = pvalloc(1);
    CHECK(pv && aligned(pv, 4096) && malloc_usable_size(pv) >= 4096, "pvalloc(1) is a whole page");
    free(pv);
}

/* Past the first 64 MiB chunk: the OOM hook must map more, for many blocks
 * and for one larger than any chunk so far. */
static void test_growth(void)
{
    size_t n = scaled(300);
    char **blocks = calloc(n, sizeof *blocks);
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc(1u << 20);
        CHECK(blocks[i] != NULL, "1 MiB block %zu of %zu", i, n);
        if (!blocks[i])
            break;
        blocks[i][i % (1u << 20)] = (char)i;
    }
    char *big = malloc((size_t)600 << 20);
    CHECK(big != NULL, "600 MiB block");
    if (big) {
        big[0] = 1;
        big[((size_t)600 << 20) - 1] = 2;
    }
    for (size_t i = 0; i < n && blocks[i]; i++) {
        CHECK(blocks[i][i % (1u << 20)] == (char)i, "block %zu changed", i);
        free(blocks[i]);
    }
    free(big);
    free(blocks);
}

/* ---- threads: more than HA_MAX_CPUS, frees on other threads ---- */

/* More threads than HA_MAX_CPUS (64): ids are shared.  Under the checked
 * build each call walks the heap holding every lock, and a hundred threads
 * spinning on those locks on two cores crawl: it (SCALE 1) runs 8.  The
 * ThreadSanitizer build passes 20: all hundred, fewer rounds and forks. */
#define NTHREADS 100
#define NTHREADS_SMALL 8
#define HANDOFF 64
static _Atomic(uintptr_t) handoff[HANDOFF];

static void *thread_body(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    size_t rounds = scaled(3000);
    void *mine[8] = { 0 };
    for (size_t r = 0; r < rounds; r++) {
        seed = seed * 1103515245u + 12345u;
        size_t size = (seed >> 8) % 3000 + 1;
        unsigned slot = (seed >> 20) % 8;
        free(mine[slot]);
        mine[slot] = malloc(size);
        if (!mine[slot]) {
            printf("FAIL thread malloc(%zu)\n", size);
            return (void *)1;
        }
        memset(mine[slot], (int)slot, size < 64 ? size : 64);
        /* Swap a block with whatever another thread left: freed here. */
        unsigned h = (seed >> 12) % HANDOFF;
        char *b = malloc(32);
        b[0] = 'h';
        uintptr_t old = atomic_exchange(&handoff[h], (uintptr_t)b);
        if (old && ((char *)old)[0] != 'h') {
            printf("FAIL handed-off block damaged\n");
            return (void *)1;
        }
        free((void *)old);
    }
    for (int i = 0; i < 8; i++)
        free(mine[i]);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[NTHREADS];
    int n = scale >= 10 ? NTHREADS : NTHREADS_SMALL;
    for (uintptr_t i = 0; i < (uintptr_t)n; i++)
        CHECK(pthread_create(&t[i], NULL, thread_body, (void *)i) == 0, "pthread_create %zu", (size_t)i);
    for (int i = 0; i < n; i++) {
        void *r;
        pthread_join(t[i], &r);
        CHECK(r == NULL, "thread %d failed", i);
    }
    for (int h = 0; h < HANDOFF; h++)
        free((void *)atomic_exchange(&handoff[h], 0));
}

/* ---- fork while other threads allocate ---- */

static atomic_int fork_stop;

static void *fork_busy(void *arg)
{
    (void)arg;
    while (!atomic_load(&fork_stop)) {
        void *p[4];
        for (int i = 0; i < 4; i++)
            p[i] = malloc((size_t)(i + 1) * 700);
        for (int i = 0; i < 4; i++)
            free(p[i]);
    }
    return NULL;
}

static void test_fork(void)
{
    pthread_t busy[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&busy[i], NULL, fork_busy, NULL);
    size_t forks = scaled(200);
    size_t ok = 0;
    for (size_t f = 0; f < forks; f++) {
        pid_t pid = fork();
        if (pid == 0) {
            /* A lock held by a busy thread at fork would hang here: the
             * core's ha_fork_prepare/parent/child must prevent it. */
            alarm(3);
            void *p = malloc(5000), *q = malloc(40);
            free(p);
            free(q);
            _exit(p && q ? 0 : 1);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ok++;
        } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
            CHECK(0, "fork %zu: the child hung in malloc: an allocator lock was held across fork", f);
            break; /* one is proof enough; each costs the alarm's 3 s */
        } else {
            CHECK(0, "fork %zu: child %s %d", f, WIFSIGNALED(st) ? "killed by signal" : "exited",
                  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    atomic_store(&fork_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(busy[i], NULL);
    printf("fork: %zu of %zu children allocated and exited cleanly\n", ok, forks);
}

/* ---- dlopen / dlclose of TLS modules ---- */

#define TLS_MODULES 24

static void *tls_thread(void *arg)
{
    long (*touch)(long) = (long (*)(long))arg;
    return (void *)(intptr_t)(touch(5) == 5);
}

static void test_dlopen(void)
{
    void *h[TLS_MODULES];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < TLS_MODULES; i++) {
            char path[512];
            snprintf(path, sizeof path, "%s/libtlsmod%d.so", tls_dir, i);
            h[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            CHECK(h[i] != NULL, "dlopen %s: %s", path, dlerror());
            if (!h[i])
                return;
            long (*touch)(long) = (long (*)(long))dlsym(h[i], "tls_module_touch");
            CHECK(touch && touch(3) >= 3, "TLS of module %d", i);
            pthread_t t;
            void *r;
            pthread_create(&t, NULL, tls_thread, (void *)touch);
            pthread_join(t, &r);
            CHECK(r == (void *)1, "TLS of module %d in a new thread", i);
        }
        for (int i = TLS_MODULES; i-- > 0;)
            CHECK(dlclose(h[i]) == 0, "dlclose %d", i);
    }
    CHECK(dlopen("/nonexistent/libnothing.so", RTLD_NOW) == NULL && dlerror() != NULL, "dlopen failure path");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 3) {
        fprintf(stderr, "usage: %s SCALE TLSDIR\n", argv[0]);
        return 2;
    }
    scale = atoi(argv[1]);
    tls_dir = argv[2];
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        { "preloaded", test_preloaded }, { "edges", test_edges },   { "aligned", test_aligned },
        { "growth", test_growth },       { "threads", test_threads }, { "fork", test_fork },
        { "dlopen", test_dlopen },
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = failures;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("%s %s (%.2f s)\n", failures == before ? "ok  " : "FAIL", tests[i].name,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    printf("%d failures\n", failures);
    return failures != 0;
}
