/*
 * The core's platform hooks for a Linux process.
 *
 * CPU ids: a thread is a "CPU" to the core.  Each thread takes an id on its
 * first call, round robin; with more threads than HA_MAX_CPUS several share
 * an id, which is correct because every per-CPU cache is locked (a kernel
 * only saves itself the contention).
 *
 * Interrupts: a process has none the allocator must mask; signal handlers
 * that call malloc are undefined behaviour in POSIX as with any malloc.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"

/* initial-exec: the slot lives in the static TLS block, so reading it never
 * calls __tls_get_addr, which may allocate. */
static __thread unsigned cpu_slot __attribute__((tls_model("initial-exec")));
static atomic_uint cpu_next;

unsigned ha_platform_cpu_id(void)
{
    unsigned s = cpu_slot;
    if (__builtin_expect(s == 0, 0)) {
        s = atomic_fetch_add_explicit(&cpu_next, 1, memory_order_relaxed) % HA_MAX_CPUS + 1;
        cpu_slot = s;
    }
    return s - 1;
}

uintptr_t ha_platform_irq_save(void)
{
    return 0;
}

void ha_platform_irq_restore(uintptr_t state)
{
    (void)state;
}

/* ------------------------------------------------------------ output */

void line_str(struct front_line *l, const char *s)
{
    while (*s && l->len < sizeof l->buf)
        l->buf[l->len++] = *s++;
}

void line_hex(struct front_line *l, unsigned long long v)
{
    char digits[17];
    int i = 16;
    digits[i] = 0;
    do {
        digits[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    line_str(l, digits + i);
}

void line_dec(struct front_line *l, unsigned long long v)
{
    char digits[21];
    int i = 20;
    digits[i] = 0;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    line_str(l, digits + i);
}

void line_write(const struct front_line *l, int fd)
{
    const char *p = l->buf;
    size_t n = l->len;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* The core's messages name themselves ("hartalloc: double free ..."); the
 * checker's (ha_check_message) do not, and already end in their address. */
void ha_platform_fatal(const char *msg, const void *addr)
{
    static const char prefix[] = "hartalloc: ";
    struct front_line l = { .len = 0 };
    if (strncmp(msg, prefix, sizeof prefix - 1) != 0)
        line_str(&l, prefix);
    line_str(&l, msg);
    if (!strstr(msg, " at 0x")) {
        line_str(&l, " at 0x");
        line_hex(&l, (unsigned long long)(uintptr_t)addr);
    }
    line_str(&l, "\n");
    line_write(&l, 2);
    abort();
}
