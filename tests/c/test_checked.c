/*
 * Checked build (HA_CHECKED=1) only: red zones catch a write one byte past
 * the requested size when the block is freed, and poisoned freed memory
 * catches a write after free on the next allocation or ha_check().  In the
 * other builds these are not faults, so the program only says it skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ha_internal.h" /* HA_POISON_FREE */
#include "harness.h"
#include "testlib.h"

#if defined(HA_CHECKED) && HA_CHECKED

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

static void overflow_by_one(size_t size, size_t align)
{
    heap_setup(32 * MiB);
    char *keep = ha_alloc(size, align);
    char *p = ha_alloc(size, align);
    CHECK(keep && p);
    memset(p, 0x11, size);
    p[size] = 0x42;
    ha_free(p);
}

static void overflow_small(void) { overflow_by_one(100, 8); }
static void overflow_small_exact_class(void) { overflow_by_one(64, 8); }
static void overflow_mid(void) { overflow_by_one(10 * KiB + 3, 16); }
static void overflow_large(void) { overflow_by_one(1 * MiB + 5, 64); }
static void overflow_early(void)
{
    char *base = harness_map(8 * MiB, HA_PAGE_SIZE);
    CHECK_EQ(ha_early_init(base, 256 * KiB), HA_OK);
    char *p = ha_alloc(77, 8);
    CHECK(p != NULL);
    p[77] = 1;
    ha_free(p);
}

/* Writing exactly the usable size is fine; one byte past it is not. */
static void overflow_past_usable(void)
{
    heap_setup(32 * MiB);
    char *p = ha_alloc(100, 8);
    CHECK(p != NULL);
    size_t u = ha_usable_size(p);
    memset(p, 0x11, u);
    p[u] = 0x42;
    ha_free(p);
}

static void overflow_sized_free(void)
{
    heap_setup(32 * MiB);
    char *p = ha_alloc(300, 8);
    CHECK(p != NULL);
    p[300] = 0x42;
    ha_free_sized(p, 300, 8);
}

/* A fault found by ha_check() is reported by its message, like one found by
 * the allocator itself. */
static void report_check(void)
{
    int rc = ha_check();
    if (rc != 0) {
        fprintf(stderr, "ha_check: %s\n", ha_check_message());
        fflush(stderr);
        _exit(HARNESS_FATAL_EXIT);
    }
}

static void write_after_free(size_t size)
{
    heap_setup(32 * MiB);
    char *keep = ha_alloc(size, 16);
    char *p = ha_alloc(size, 16);
    CHECK(keep && p);
    ha_free(p);
    p[size / 2] = 0x42;
    void *q = ha_alloc(size, 16);
    (void)q;
    report_check();
}

static void uaf_small(void) { write_after_free(64); }
static void uaf_mid(void) { write_after_free(5000); }

/* The same write found by an explicit ha_check() with no allocation after. */
static void uaf_found_by_check(void)
{
    heap_setup(32 * MiB);
    char *keep = ha_alloc(200, 16);
    char *p = ha_alloc(200, 16);
    CHECK(keep && p);
    ha_free(p);
    p[0] = 0x42;
    report_check();
}

/* The address ha_check() names, from its message "... at 0x<hex>". */
static uintptr_t check_address(void)
{
    const char *m = strstr(ha_check_message(), " at 0x");
    return m ? (uintptr_t)strtoull(m + 6, NULL, 16) : 0;
}

/* A write after free at every place of a freed object is found, and named
 * by its exact address: the first word after the tag, each position of the
 * four-word steps the poison scan takes, the words after the last full
 * step, and the last byte.  Slab objects of 48 and 80 B (no words after the
 * last step), 128 B and 5024 B (two), and a TLSF block (whose links take
 * its first 16 bytes and its back link its last word).  Each request is 8 B
 * short of the object: the red zone's trailer takes the rest.  Each byte is
 * put back and the heap checks clean again. */
static void uaf_every_offset(void)
{
    heap_setup(64 * MiB);
    static const size_t objects[] = { 48, 80, 128, 5024, 100 * KiB };
    for (size_t si = 0; si < sizeof objects / sizeof objects[0]; si++) {
        size_t size = objects[si], req = size - HA_TRAILER_SIZE;
        char *keep = ha_alloc(req, 16), *p = ha_alloc(req, 16), *guard = ha_alloc(req, 16);
        CHECK(keep && p && guard);
        bool tlsf = size > 65536;
        size_t first = tlsf ? 16 : 8; /* after the free tag, or the links */
        size_t end = tlsf ? size - 8 : size;
        ha_free(p);
        CHECK_EQ(ha_check(), 0);
        size_t offs[] = { first, first + 1, first + 7, first + 8, first + 15, first + 16, first + 31,
                          first + 32, first + 39, end / 2 + 3, end - 24, end - 16, end - 9, end - 8, end - 1 };
        for (size_t oi = 0; oi < sizeof offs / sizeof offs[0]; oi++) {
            size_t off = offs[oi];
            if (off < first || off >= end)
                continue;
            CHECK_EQ((unsigned char)p[off], HA_POISON_FREE);
            p[off] = 0x42;
            CHECK(ha_check() != 0);
            if (check_address() != (uintptr_t)(p + off))
                fprintf(stderr, "object %zu B, offset %zu: %s\n", size, off, ha_check_message());
            CHECK_EQ(check_address(), (uintptr_t)(p + off));
            p[off] = (char)HA_POISON_FREE;
            CHECK_EQ(ha_check(), 0);
        }
        ha_free(keep);
        ha_free(guard);
    }
    CHECK_HEAP();
}

/* No false alarms: legal use of every usable byte across the tiers. */
static void no_false_reports(void)
{
    heap_setup(64 * MiB);
    struct harness_rng r;
    uint64_t seed = 0xC4EC;
    harness_seed_announce("no_false_reports", seed);
    harness_rng_seed(&r, seed);
    enum { N = 300 };
    char *p[N] = { 0 };
    size_t sz[N] = { 0 };
    uint64_t ops = harness_scale(20000);
    for (uint64_t op = 0; op < ops; op++) {
        size_t i = (size_t)harness_rng_below(&r, N);
        if (p[i]) {
            if (harness_rng_below(&r, 3) == 0) {
                size_t ns = (size_t)harness_rng_below(&r, 20000);
                char *q = ha_realloc(p[i], ns, 16);
                if (ns) {
                    CHECK(q != NULL);
                    memset(q, 0x33, ha_usable_size(q));
                    p[i] = q;
                    sz[i] = ns;
                    continue;
                }
            } else {
                ha_free_sized(p[i], sz[i], 16);
            }
            p[i] = NULL;
        } else {
            sz[i] = harness_rng_below(&r, 4) ? (size_t)harness_rng_below(&r, 1100)
                                              : (size_t)harness_rng_below(&r, 300 * KiB);
            p[i] = ha_alloc(sz[i], 16);
            CHECK(p[i] != NULL);
            memset(p[i], 0x22, ha_usable_size(p[i]));
        }
    }
    CHECK_HEAP();
}

/* FAULT_USE_AFTER_FREE says "freed memory"; the checker that the checked
 * build runs on every call names the same fault "use after free". */
#define UAF "freed memory|use after free"

int main(void)
{
    run_isolated("no_false_reports", no_false_reports);
    run_isolated("uaf_every_offset", uaf_every_offset);
    expect_fatal("overflow_small", overflow_small, "overflow");
    expect_fatal("overflow_small_exact_class", overflow_small_exact_class, "overflow");
    expect_fatal("overflow_mid", overflow_mid, "overflow");
    expect_fatal("overflow_large", overflow_large, "overflow");
    expect_fatal("overflow_early", overflow_early, "overflow");
    expect_fatal("overflow_past_usable", overflow_past_usable, "overflow");
    expect_fatal("overflow_sized_free", overflow_sized_free, "overflow");
    expect_fatal("uaf_small", uaf_small, UAF);
    expect_fatal("uaf_mid", uaf_mid, UAF);
    expect_fatal("uaf_found_by_check", uaf_found_by_check, UAF);
    return harness_done();
}

#else

int main(void)
{
    printf("SKIP overflow and write-after-free detection: not a checked build\n");
    return 0;
}

#endif
