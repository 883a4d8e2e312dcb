/*
 * The malloc-compatible front end: what its files share.
 *
 *   heap.c      start-up, memory from mmap (the first chunk and the OOM
 *               hook), fork handling, statistics at exit
 *   api.c       malloc, free, calloc, realloc and the aligned variants
 *   platform.c  the core's platform hooks for a Linux process
 *
 * None of it may call malloc: the process's malloc is us.
 */
#ifndef HA_MALLOC_FRONT_H
#define HA_MALLOC_FRONT_H

#include <stdatomic.h>

#include "hartalloc.h"

/* Every malloc call gets 16-byte alignment (max_align_t on x86_64 and
 * riscv64), what glibc guarantees too. */
#define FRONT_MIN_ALIGN 16u
_Static_assert(FRONT_MIN_ALIGN <= HA_MIN_ALIGN, "malloc uses ha_alloc_min_align");

extern atomic_int front_state;
enum { FRONT_NONE = 0, FRONT_STARTING = 1, FRONT_READY = 2 };

/* Start the heap once (first call, from any thread). */
void front_start(void);

static inline void front_ready(void)
{
    if (__builtin_expect(atomic_load_explicit(&front_state, memory_order_acquire) != FRONT_READY, 0))
        front_start();
}

/* A line assembled in a caller's buffer and written with one write(2):
 * no stdio (it allocates), and lines from several processes or threads
 * sharing a file do not interleave.  Text past the buffer is dropped. */
struct front_line {
    char buf[480];
    size_t len;
};
void line_str(struct front_line *l, const char *s);
void line_hex(struct front_line *l, unsigned long long v);
void line_dec(struct front_line *l, unsigned long long v);
void line_write(const struct front_line *l, int fd);

#endif /* HA_MALLOC_FRONT_H */
