/*
 * A program that keeps the library's weak default hooks (one CPU, no
 * interrupts): each default declares itself trivial the first time it
 * runs, after which the core's fast paths call no hook.  This checks that
 * the declaration happens, and that the heap works and counts exactly on
 * those fast paths.  Not linked with tests/c/harness.c, whose strong hooks
 * would replace the defaults.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ha_internal.h" /* hooks_trivial: what the defaults declared */

#define MiB (1024u * 1024u)

static int failures;

#define CHECK(cond)                                                                                        \
    do {                                                                                                   \
        if (!(cond)) {                                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                       \
            failures++;                                                                                    \
        }                                                                                                  \
    } while (0)

/* splitmix64 */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int main(void)
{
    const size_t len = 64 * MiB;
    char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    CHECK(ha_early_init(base, MiB) == HA_OK);
    CHECK(ha_add_region(base + MiB, len - MiB) == HA_OK);
    CHECK(ha_final_init() == HA_OK);
    CHECK(atomic_load(&hooks_trivial) == HA_TRIVIAL_ALL);

    const uint64_t seed = 0x5eed0f0091c0ffeeull;
    printf("seed weak_hooks = 0x%llx\n", (unsigned long long)seed);
    uint64_t rng = seed;
    enum { SLOTS = 1024 };
    static void *slot[SLOTS];
    static size_t slot_size[SLOTS];
    size_t live_pages = 0;
    static void *frames[64];
    for (int i = 0; i < 200000; i++) {
        uint64_t r = next(&rng);
        unsigned k = (unsigned)(r % SLOTS);
        if (slot[k]) {
            /* The first byte was written with the size's low byte. */
            CHECK(*(unsigned char *)slot[k] == (unsigned char)slot_size[k]);
            if (r & (1u << 20))
                ha_free_sized_min_align(slot[k], slot_size[k]);
            else
                ha_free(slot[k]);
            slot[k] = NULL;
        } else {
            size_t size = 1 + (size_t)((r >> 32) % ((r >> 24) & 1 ? 4096 : 70000));
            slot[k] = (r >> 21) & 1 ? ha_alloc_min_align(size) : ha_alloc(size, 16);
            CHECK(slot[k] != NULL);
            if (!slot[k])
                break;
            slot_size[k] = size;
            memset(slot[k], (unsigned char)size, size < 64 ? size : 64);
        }
        unsigned f = (unsigned)((r >> 40) % 64);
        if (frames[f]) {
            ha_free_pages(frames[f], 1);
            frames[f] = NULL;
            live_pages--;
        } else if ((frames[f] = ha_alloc_pages(1, 0)) != NULL) {
            live_pages++;
        }
    }
    struct ha_stats s;
    ha_get_stats(&s);
    size_t live = 0;
    for (unsigned k = 0; k < SLOTS; k++)
        live += slot[k] != NULL;
    CHECK(s.allocs - s.frees == live);
    CHECK(ha_check() == 0);
    for (unsigned k = 0; k < SLOTS; k++)
        ha_free(slot[k]);
    for (unsigned f = 0; f < 64; f++)
        if (frames[f])
            ha_free_pages(frames[f], 1);
    ha_get_stats(&s);
    CHECK(s.bytes_used == 0);
    CHECK(s.allocs == s.frees);
    CHECK(ha_check() == 0);
    /* Still trivial: nothing called ha_set_trivial_hooks. */
    CHECK(atomic_load(&hooks_trivial) == HA_TRIVIAL_ALL);
    printf("%s (%zu frames were live at the count)\n", failures ? "FAILED" : "weak default hooks: ok", live_pages);
    return failures ? 1 : 0;
}
