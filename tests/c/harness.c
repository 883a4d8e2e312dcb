/* Host test harness: see harness.h. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* A scenario that hangs (a lock never released) must fail, not stall CI;
 * generous because valgrind runs everything tens of times slower. */
#define HARNESS_CHILD_TIMEOUT_S 600

static _Thread_local unsigned harness_cpu;
static _Thread_local struct harness_hook_calls harness_calls;
static unsigned harness_passed, harness_failed;

/* ------------------------------------------------------------ hooks */

unsigned ha_platform_cpu_id(void)
{
    harness_calls.cpu_id++;
    return harness_cpu;
}

uintptr_t ha_platform_irq_save(void)
{
    harness_calls.irq_save++;
    return 0;
}

void ha_platform_irq_restore(uintptr_t state)
{
    (void)state;
    harness_calls.irq_restore++;
}

struct harness_hook_calls harness_hook_calls(void) { return harness_calls; }

/* Each scenario starts with the hooks declared as what they are while no
 * thread has a CPU other than 0: all trivial.  The core then takes its
 * fast paths' copies that call no hook; harness_set_cpu and the threads'
 * scenarios take the copies that do. */
static void harness_hooks_start(void)
{
    ha_set_trivial_hooks(HA_TRIVIAL_CPU_ID | HA_TRIVIAL_IRQ_SAVE | HA_TRIVIAL_IRQ_RESTORE);
}

void ha_platform_fatal(const char *msg, const void *addr)
{
    char line[512];
    int n = snprintf(line, sizeof line, "hartalloc fatal: %s at 0x%llx\n",
                     msg ? msg : "(null)",
                     (unsigned long long)(uintptr_t)addr);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    /* One write so that the line is never interleaved with other output. */
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
    if (getenv("HARNESS_CHECK_ON_FATAL")) {
        int rc = ha_check();
        if (rc == 0)
            n = snprintf(line, sizeof line, "heap intact\n");
        else
            n = snprintf(line, sizeof line, "heap damaged: %d %s\n", rc,
                         ha_check_message() ? ha_check_message() : "");
        if ((size_t)n >= sizeof line)
            n = (int)sizeof line - 1;
        w = write(2, line, (size_t)n);
        (void)w;
    }
    _exit(HARNESS_FATAL_EXIT);
}

void harness_set_cpu(unsigned cpu)
{
    /* Before the id changes: a CPU id other than 0 ends the declaration
     * for every thread, for the rest of the scenario. */
    if (cpu != 0)
        ha_set_trivial_hooks(HA_TRIVIAL_IRQ_SAVE | HA_TRIVIAL_IRQ_RESTORE);
    harness_cpu = cpu;
}

/* ------------------------------------------------------- assertions */

void harness_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
    exit(1);
}

void harness_fail_eq(const char *file, int line, const char *a, const char *b,
                     unsigned long long va, unsigned long long vb)
{
    fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s\n  left:  %llu (0x%llx)\n  right: %llu (0x%llx)\n",
            file, line, a, b, va, va, vb, vb);
    exit(1);
}

void harness_fail_heap(const char *file, int line)
{
    const char *m = ha_check_message();
    fprintf(stderr, "%s:%d: ha_check() failed: %s\n", file, line, m ? m : "(no message)");
    exit(1);
}

uint64_t harness_scale(uint64_t n)
{
    const char *s = getenv("HA_TEST_SCALE");
    uint64_t pct = 100;
    if (s && *s)
        pct = strtoull(s, NULL, 10);
    if (pct == 0)
        pct = 1;
    uint64_t r = n * pct / 100;
    return r ? r : 1;
}

/* ------------------------------------------------------------- rng */

void harness_rng_seed(struct harness_rng *r, uint64_t seed) { r->state = seed; }

uint64_t harness_rng_next(struct harness_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t harness_rng_below(struct harness_rng *r, uint64_t n)
{
    /* Multiply-shift: unbiased enough for tests, and no modulo loop. */
    return (uint64_t)(((unsigned __int128)harness_rng_next(r) * n) >> 64);
}

void harness_seed_announce(const char *name, uint64_t seed)
{
    printf("seed %s = 0x%016llx\n", name, (unsigned long long)seed);
    fflush(stdout);
}

/* -------------------------------------------------------- scenarios */

static void harness_report(const char *name, int ok, int status)
{
    if (ok) {
        harness_passed++;
        printf("PASS %s\n", name);
    } else {
        harness_failed++;
        if (WIFEXITED(status))
            printf("FAIL %s (exit %d)\n", name, WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            printf("FAIL %s (signal %d%s)\n", name, WTERMSIG(status),
                   WTERMSIG(status) == SIGALRM ? ": timed out" : "");
        else
            printf("FAIL %s (status 0x%x)\n", name, status);
    }
    fflush(stdout);
}

static int harness_wait(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            exit(2);
        }
    }
    return status;
}

void run_isolated(const char *name, harness_fn fn)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        alarm(HARNESS_CHILD_TIMEOUT_S);
        harness_hooks_start();
        fn();
        fflush(stdout);
        exit(0);
    }
    int status = harness_wait(pid);
    harness_report(name, WIFEXITED(status) && WEXITSTATUS(status) == 0, status);
}

/* Run fn with stderr captured into a malloc'd, NUL-terminated buffer. */
static int harness_capture(harness_fn fn, int check_on_fatal, char **out)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        alarm(HARNESS_CHILD_TIMEOUT_S);
        if (check_on_fatal)
            setenv("HARNESS_CHECK_ON_FATAL", "1", 1);
        else
            unsetenv("HARNESS_CHECK_ON_FATAL");
        harness_hooks_start();
        fn();
        fprintf(stderr, "scenario returned without a fatal report\n");
        fflush(stdout);
        exit(0);
    }
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (len + 1024 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        ssize_t r = read(fds[0], buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fds[0]);
    buf[len] = '\0';
    *out = buf;
    return harness_wait(pid);
}

/* expect may list alternatives separated by '|': any one of them will do. */
static int harness_contains_any(const char *captured, const char *expect)
{
    for (;;) {
        const char *bar = strchr(expect, '|');
        size_t len = bar ? (size_t)(bar - expect) : strlen(expect);
        char alt[256];
        if (len >= sizeof alt)
            len = sizeof alt - 1;
        memcpy(alt, expect, len);
        alt[len] = '\0';
        if (strstr(captured, alt))
            return 1;
        if (!bar)
            return 0;
        expect = bar + 1;
    }
}

static int harness_fatal_matches(int status, const char *captured, const char *expect)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == HARNESS_FATAL_EXIT &&
           harness_contains_any(captured, expect);
}

static void harness_show_capture(const char *expect, const char *captured)
{
    printf("  expected exit %d and stderr containing \"%s\"; stderr was:\n",
           HARNESS_FATAL_EXIT, expect);
    printf("  | %s\n", captured[0] ? captured : "(empty)");
}

void expect_fatal(const char *name, harness_fn fn, const char *expect)
{
    char *captured;
    int status = harness_capture(fn, 0, &captured);
    int ok = harness_fatal_matches(status, captured, expect);
    harness_report(name, ok, status);
    if (!ok)
        harness_show_capture(expect, captured);
    free(captured);
}

void expect_fatal_intact(const char *name, harness_fn fn, const char *expect)
{
    expect_fatal(name, fn, expect);

    char label[256];
    snprintf(label, sizeof label, "%s [heap intact]", name);
    char *captured;
    int status = harness_capture(fn, 1, &captured);
    int ok = harness_fatal_matches(status, captured, expect) &&
             strstr(captured, "heap intact") != NULL;
    harness_report(label, ok, status);
    if (!ok)
        harness_show_capture("heap intact", captured);
    free(captured);
}

int harness_done(void)
{
    printf("%u scenarios passed, %u failed\n", harness_passed, harness_failed);
    fflush(stdout);
    return harness_failed ? 1 : 0;
}

/* ------------------------------------------------------------ heap */

void *harness_map(size_t bytes, size_t align)
{
    if (align < HA_PAGE_SIZE)
        align = HA_PAGE_SIZE;
    size_t len = bytes + align;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    uintptr_t base = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    /* Give back the slack on both sides so that neighbouring addresses stay
     * unmapped: a stray access past the heap faults. */
    size_t head = base - (uintptr_t)p;
    if (head)
        munmap(p, head);
    size_t bytes_up = (bytes + HA_PAGE_SIZE - 1) & ~(size_t)(HA_PAGE_SIZE - 1);
    size_t tail = len - head - bytes_up;
    if (tail)
        munmap((char *)base + bytes_up, tail);
    return (void *)base;
}

void *heap_setup(size_t bytes)
{
    CHECK(bytes > HARNESS_EARLY_BYTES);
    /* Aligned far beyond any block order in use: where the buddy
     * allocator places things is then the same in every run (plain, ASan,
     * valgrind), whatever address mmap picks. */
    char *base = harness_map(bytes, (size_t)1 << 30);
    CHECK_EQ(ha_early_init(base, HARNESS_EARLY_BYTES), HA_OK);
    CHECK_EQ(ha_add_region(base + HARNESS_EARLY_BYTES, bytes - HARNESS_EARLY_BYTES), HA_OK);
    CHECK_EQ(ha_final_init(), HA_OK);
    return base;
}
