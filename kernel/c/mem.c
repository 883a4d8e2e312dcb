/*
 * memcpy, memmove, memset, memcmp: the environment provides them to
 * libhartalloc (gcc emits calls to them even in freestanding code), and
 * nothing else in this kernel's build does.  Word at a time when both
 * sides are aligned, since the allocator's realloc and page clearing go
 * through them.  Built with -fno-tree-loop-distribute-patterns so that gcc
 * does not turn these loops back into calls to themselves.
 */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

typedef uint64_t __attribute__((may_alias)) word_t;
#define WORD sizeof(word_t)
/* Word views of byte pointers, used only once alignment is checked (the
 * void * step says so to -Wcast-align). */
#define W(p) ((word_t *)(void *)(p))
#define CW(p) ((const word_t *)(const void *)(p))

static int mem_aligned2(const void *a, const void *b)
{
    return (((uintptr_t)a | (uintptr_t)b) & (WORD - 1)) == 0;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (mem_aligned2(d, s)) {
        for (; n >= 4 * WORD; n -= 4 * WORD, d += 4 * WORD, s += 4 * WORD) {
            word_t w0 = (CW(s))[0], w1 = (CW(s))[1];
            word_t w2 = (CW(s))[2], w3 = (CW(s))[3];
            (W(d))[0] = w0;
            (W(d))[1] = w1;
            (W(d))[2] = w2;
            (W(d))[3] = w3;
        }
        for (; n >= WORD; n -= WORD, d += WORD, s += WORD)
            *W(d) = *CW(s);
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d == s || n == 0)
        return dst;
    if (d < s || d >= s + n)
        return memcpy(dst, src, n); /* forward copy is safe */
    /* Overlap with dst above src: copy backwards. */
    d += n;
    s += n;
    if (mem_aligned2(d, s)) {
        for (; n >= WORD; n -= WORD) {
            d -= WORD;
            s -= WORD;
            *W(d) = *CW(s);
        }
    }
    while (n--)
        *--d = *--s;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n && ((uintptr_t)d & (WORD - 1))) {
        *d++ = (unsigned char)c;
        n--;
    }
    word_t w = (unsigned char)c * 0x0101010101010101ull;
    for (; n >= 4 * WORD; n -= 4 * WORD, d += 4 * WORD) {
        (W(d))[0] = w;
        (W(d))[1] = w;
        (W(d))[2] = w;
        (W(d))[3] = w;
    }
    for (; n >= WORD; n -= WORD, d += WORD)
        *W(d) = w;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x < *y ? -1 : 1;
    return 0;
}
