/*
 * The C library's allocation functions over the core, with glibc's
 * conventions where the standards leave a choice:
 *   - malloc(0) and friends return a unique, freeable pointer;
 *   - realloc(p, 0) frees p and returns NULL (glibc's behaviour);
 *   - every failure sets errno to ENOMEM (EINVAL for a bad alignment);
 *   - memalign rounds a non-power-of-two alignment up, aligned_alloc and
 *     posix_memalign refuse it.
 * Bad pointers (double, foreign, interior frees) are the core's to find:
 * they end in ha_platform_fatal, which prints and aborts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "front.h"

#define EXPORT __attribute__((visibility("default")))

/* The prototypes, as the C library declares them (not taken from its
 * headers, whose attributes and exception specifications vary). */
EXPORT void *malloc(size_t size);
EXPORT void free(void *ptr);
EXPORT void *calloc(size_t n, size_t size);
EXPORT void *realloc(void *ptr, size_t size);
EXPORT void *reallocarray(void *ptr, size_t n, size_t size);
EXPORT int posix_memalign(void **out, size_t align, size_t size);
EXPORT void *aligned_alloc(size_t align, size_t size);
EXPORT void *memalign(size_t align, size_t size);
EXPORT void *valloc(size_t size);
EXPORT void *pvalloc(size_t size);
EXPORT size_t malloc_usable_size(void *ptr);
EXPORT int malloc_trim(size_t pad);

static void *nomem(void)
{
    errno = ENOMEM;
    return NULL;
}

static void *alloc_aligned(size_t size, size_t align)
{
    front_ready();
    if (align < FRONT_MIN_ALIGN)
        align = FRONT_MIN_ALIGN;
    void *p = ha_alloc(size, align);
    return p ? p : nomem();
}

void *malloc(size_t size)
{
    front_ready();
    /* Every block is HA_MIN_ALIGN-aligned, at least max_align_t's. */
    void *p = ha_alloc_min_align(size);
    return p ? p : nomem();
}

void free(void *ptr)
{
    /* A non-NULL pointer came from us, so the heap is started. */
    if (ptr)
        ha_free(ptr);
}

void *calloc(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes))
        return nomem();
    front_ready();
    void *p = ha_alloc_zeroed(bytes, FRONT_MIN_ALIGN);
    return p ? p : nomem();
}

void *realloc(void *ptr, size_t size)
{
    if (!ptr)
        return malloc(size);
    if (size == 0) {
        ha_free(ptr);
        return NULL;
    }
    void *p = ha_realloc(ptr, size, FRONT_MIN_ALIGN);
    return p ? p : nomem();
}

void *reallocarray(void *ptr, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes))
        return nomem();
    return realloc(ptr, bytes);
}

static int align_ok(size_t align)
{
    return align != 0 && (align & (align - 1)) == 0;
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (!align_ok(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno; /* posix_memalign reports through its result only */
    void *p = alloc_aligned(size, align);
    errno = saved;
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
    if (!align_ok(align)) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_aligned(size, align);
}

void *memalign(size_t align, size_t size)
{
    if (!align_ok(align)) {
        if (align > SIZE_MAX / 2 + 1) {
            errno = EINVAL;
            return NULL;
        }
        size_t a = FRONT_MIN_ALIGN;
        while (a < align)
            a <<= 1;
        align = a;
    }
    return alloc_aligned(size, align);
}

void *valloc(size_t size)
{
    return alloc_aligned(size, HA_PAGE_SIZE);
}

void *pvalloc(size_t size)
{
    size_t rounded = (size + HA_PAGE_SIZE - 1) & ~(size_t)(HA_PAGE_SIZE - 1);
    if (rounded < size)
        return nomem();
    return alloc_aligned(rounded ? rounded : HA_PAGE_SIZE, HA_PAGE_SIZE);
}

size_t malloc_usable_size(void *ptr)
{
    return ptr ? ha_usable_size(ptr) : 0;
}

/* Gives the byte allocator's spare pages back to the page allocator (not to
 * the kernel: regions are never unmapped).  1: memory may have been freed. */
int malloc_trim(size_t pad)
{
    (void)pad;
    if (atomic_load_explicit(&front_state, memory_order_acquire) != FRONT_READY)
        return 0;
    ha_trim();
    return 1;
}
