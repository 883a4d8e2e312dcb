/*
 * What every misuse probe shares.  A probe does one classic misuse through
 * the C library's allocation functions, then says on stdout that it is
 * still alive and how the allocator answered; run-probes.sh runs it on
 * glibc and on both hartalloc builds and records how each run ended.
 */
#ifndef PROBE_H
#define PROBE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hides where a pointer came from, so that the compiler neither warns about
 * the misuse nor optimises it away: the allocator must meet it at run time. */
static inline void *launder(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

static inline size_t launder_size(size_t n)
{
    __asm__ volatile("" : "+r"(n));
    return n;
}

/* Allocations after the misuse: a heap that was quietly damaged may fail
 * here, and a checked heap walks itself on each call. */
static inline void probe_exercise(void)
{
    void *p[16];
    for (int i = 0; i < 16; i++)
        p[i] = malloc((size_t)(i + 1) * 24);
    for (int i = 0; i < 16; i++)
        free(p[i]);
}

static inline int probe_survived(const char *how)
{
    printf("survived: %s\n", how);
    fflush(stdout);
    return 0;
}

#endif /* PROBE_H */
