/*
 * Host test harness shared by every tests/c/test_*.c program.
 *
 * The allocator keeps global state that cannot be reset, so every scenario
 * runs in a forked child that sets up its own heap (run_isolated); a fault
 * scenario runs in a child whose stderr is captured (expect_fatal).
 *
 * Platform hooks: this file's strong definitions replace the library's weak
 * ones.  ha_platform_cpu_id() is the calling thread's harness_set_cpu()
 * value (default 0); ha_platform_fatal() prints
 *   "hartalloc fatal: <msg> at 0x<addr>"
 * to stderr in one write(2) and exits with HARNESS_FATAL_EXIT.  With the
 * environment variable HARNESS_CHECK_ON_FATAL set it first runs ha_check()
 * and prints "heap intact" (or "heap damaged: <message>"): the library
 * reports bad input before changing anything, so the heap must still pass.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "hartalloc.h"

#define HARNESS_FATAL_EXIT 86

/* ---- assertions: print where and what, then exit(1) ---- */

void harness_fail(const char *file, int line, const char *expr);
void harness_fail_eq(const char *file, int line, const char *a, const char *b,
                     unsigned long long va, unsigned long long vb);
void harness_fail_heap(const char *file, int line);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            harness_fail(__FILE__, __LINE__, #cond);                           \
    } while (0)

/* Both sides are evaluated once and compared as unsigned long long (pointers
 * go through uintptr_t). */
#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        unsigned long long check_eq_a_ = (unsigned long long)(a);              \
        unsigned long long check_eq_b_ = (unsigned long long)(b);              \
        if (check_eq_a_ != check_eq_b_)                                        \
            harness_fail_eq(__FILE__, __LINE__, #a, #b, check_eq_a_,           \
                            check_eq_b_);                                      \
    } while (0)

#define CHECK_HEAP()                                                           \
    do {                                                                       \
        if (ha_check() != 0)                                                   \
            harness_fail_heap(__FILE__, __LINE__);                             \
    } while (0)

/* ---- environment ---- */

/* The cpu id ha_platform_cpu_id() returns on the calling thread.  Every
 * scenario starts with all hooks declared trivial (ha_set_trivial_hooks);
 * a cpu other than 0 takes HA_TRIVIAL_CPU_ID out of it. */
void harness_set_cpu(unsigned cpu);

/* How often the core called each hook on the calling thread so far. */
struct harness_hook_calls {
    unsigned long cpu_id, irq_save, irq_restore;
};
struct harness_hook_calls harness_hook_calls(void);

/* n * HA_TEST_SCALE / 100 (HA_TEST_SCALE defaults to 100), at least 1. */
uint64_t harness_scale(uint64_t n);

/* ---- reproducible randomness (splitmix64) ---- */

struct harness_rng {
    uint64_t state;
};

void harness_rng_seed(struct harness_rng *r, uint64_t seed);
uint64_t harness_rng_next(struct harness_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t harness_rng_below(struct harness_rng *r, uint64_t n);
/* Prints "seed <name> = 0x..." so a failing run can be replayed. */
void harness_seed_announce(const char *name, uint64_t seed);

/* ---- scenarios ---- */

typedef void (*harness_fn)(void);

/* Run fn in a forked child; PASS when it returns (or exits 0). */
void run_isolated(const char *name, harness_fn fn);

/* Run fn in a forked child; PASS when it exits with HARNESS_FATAL_EXIT and
 * its stderr contains `expect` (or one of its '|'-separated alternatives:
 * "double free|not a live").  Prints the capture on mismatch. */
void expect_fatal(const char *name, harness_fn fn, const char *expect);

/* expect_fatal, then fn once more with HARNESS_CHECK_ON_FATAL set, which must
 * also print "heap intact": the fault was caught before anything changed. */
void expect_fatal_intact(const char *name, harness_fn fn, const char *expect);

/* Print the tally; returns the exit status for main (1 if any scenario
 * failed). */
int harness_done(void);

/* ---- heap setup ---- */

/* bytes of fresh anonymous memory aligned to align (a power of two >= 4 KiB). */
void *harness_map(size_t bytes, size_t align);

/* Map bytes, ha_early_init on the first HARNESS_EARLY_BYTES, ha_add_region
 * the rest, ha_final_init.  Returns the base of the mapping. */
#define HARNESS_EARLY_BYTES (64u * 1024)
void *heap_setup(size_t bytes);

#endif /* HARNESS_H */
