/*
 * Small helpers the public-API tests share: byte patterns that identify a
 * block, stats snapshots, range checks.  Header-only so that it adds nothing
 * to programs that do not include it.
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"

/* The checked build runs a full ha_check() inside every call, so the cost of
 * an operation grows with the heap: volume tests shrink by this factor and
 * use smaller heaps there (the tests are compiled with the library's
 * variant flags). */
#if defined(HA_CHECKED) && HA_CHECKED
#define TEST_CHECKED_BUILD 1
#define CHECKED_SHRINK 10
#else
#define TEST_CHECKED_BUILD 0
#define CHECKED_SHRINK 1
#endif

/* The byte at offset i of a block tagged id: differs between neighbouring
 * offsets and between ids, so a shifted or swapped copy is caught. */
static inline uint8_t pattern_byte(uint64_t id, size_t i)
{
    uint64_t x = (id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(i >> 3) * 0xD6E8FEB86659FD93ull;
    return (uint8_t)((x >> ((i & 7) * 8)) ^ (uint8_t)i);
}

static inline void pattern_fill(void *p, size_t n, uint64_t id)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = pattern_byte(id, i);
}

/* Index of the first wrong byte, or n when all are right. */
static inline size_t pattern_find_bad(const void *p, size_t n, uint64_t id)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte(id, i))
            return i;
    return n;
}

#define CHECK_PATTERN(p, n, id) CHECK_EQ(pattern_find_bad((p), (n), (id)), (n))

/* For big blocks: touch one byte per 512 plus both ends. */
static inline void pattern_fill_sparse(void *p, size_t n, uint64_t id)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i += 512)
        b[i] = pattern_byte(id, i);
    if (n)
        b[n - 1] = pattern_byte(id, n - 1);
}

static inline bool pattern_sparse_ok(const void *p, size_t n, uint64_t id)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i += 512)
        if (b[i] != pattern_byte(id, i))
            return false;
    return n == 0 || b[n - 1] == pattern_byte(id, n - 1);
}

/* Whole pattern up to 64 KiB, sparse beyond: keeps valgrind runs short. */
static inline void pattern_fill_auto(void *p, size_t n, uint64_t id)
{
    if (n <= 65536)
        pattern_fill(p, n, id);
    else
        pattern_fill_sparse(p, n, id);
}

/* Check the first `keep` bytes of a block pattern_fill_auto filled with
 * `filled` bytes (keep < filled after a shrink). */
static inline bool pattern_auto_ok(const void *p, size_t keep, size_t filled, uint64_t id)
{
    if (filled <= 65536)
        return pattern_find_bad(p, keep, id) == keep;
    const uint8_t *b = p;
    for (size_t i = 0; i < keep; i += 512)
        if (b[i] != pattern_byte(id, i))
            return false;
    return keep < filled || b[filled - 1] == pattern_byte(id, filled - 1);
}

static inline bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static inline struct ha_stats stats_now(void)
{
    struct ha_stats s;
    memset(&s, 0xEE, sizeof s);
    ha_get_stats(&s);
    return s;
}

static inline bool is_aligned(const void *p, size_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

static inline bool ranges_overlap(uintptr_t a, size_t alen, uintptr_t b, size_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Give the allocator a chance to take what it keeps for good on first use
 * (per-CPU cache memory, first slab or arena bookkeeping), then give back
 * everything it can: the state a "back to the start" comparison starts
 * from. */
static inline void warm_up_cpu(void)
{
    static const size_t sizes[] = { 8, 100, 1000, 5000, 100000, 300000 };
    void *p[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        p[i] = ha_alloc(sizes[i], 16);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        ha_free(p[i]);
    void *pg = ha_alloc_pages(1, 0);
    if (pg)
        ha_free_pages(pg, 1);
    ha_trim();
}

#endif /* TESTLIB_H */
