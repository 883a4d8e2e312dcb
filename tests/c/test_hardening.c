/*
 * Metadata kept inside freed memory, against the writes a kernel bug makes
 * there: a write after free of a few words into a freed block of every
 * tier that keeps links or tags in freed memory (slab objects, the big
 * classes of a large heap included, and frames: free tags; mid blocks:
 * TLSF links).  Each must be
 * reported as a write after free by the next operation that would trust
 * the damaged word, and nothing outside the heap may be written: the
 * forged links point into a read-only page, so a write through one kills
 * the child with SIGSEGV instead of the expected message.  Page runs keep
 * nothing in freed memory: the same writes there must change nothing.
 * A slab chunk's header, which an overflow off the chunk below reaches,
 * is reported where its links would be used.
 */
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define UAF "use after free"

static const unsigned char boot_entropy[32] = "hartalloc test entropy, fixed";

/* A read-only page the forged links aim at. */
static uintptr_t victim(void)
{
    char *v = harness_map(HA_PAGE_SIZE, HA_PAGE_SIZE);
    memset(v, 0, HA_PAGE_SIZE);
    CHECK(mprotect(v, HA_PAGE_SIZE, PROT_READ) == 0);
    return (uintptr_t)v + 64;
}

static size_t heap_bytes = 64 * MiB;

static void setup(bool seeded)
{
    if (seeded)
        CHECK_EQ(ha_seed(boot_entropy, sizeof boot_entropy), HA_OK);
    heap_setup(heap_bytes);
}

/* The classic unlink attack: the first two words of a freed mid block (its
 * free-list links, if stored plainly) are set to (target - 8, value), and
 * the free of its physical neighbour merges with it, unlinking it. */
static void mid_links_attack(size_t size, bool seeded)
{
    setup(seeded);
    uintptr_t target = victim();
    char *a = ha_alloc(size, 16);
    char *b = ha_alloc(size, 16);
    char *guard = ha_alloc(size, 16);
    CHECK(a && b);
    CHECK((uintptr_t)b > (uintptr_t)a && (uintptr_t)b - (uintptr_t)a < size + 64); /* neighbours */
    (void)guard;
    ha_free(a);
    uintptr_t *w = (uintptr_t *)a;
    w[0] = target - 8;
    w[1] = target;
    ha_free(b); /* merges with a: must report, and write nothing at target */
}

static void mid_9000(void) { mid_links_attack(9000, true); }
static void mid_20000(void) { mid_links_attack(20000, true); }
static void mid_100000(void) { mid_links_attack(100000, true); }
static void mid_9000_unseeded(void) { mid_links_attack(9000, false); }

/* The same writes into a freed block that a slab class holds (3000 B,
 * and 6000 B since the classes reach 8 KiB): no links to follow, nothing
 * is written at the target, and the damaged free tag is reported when the
 * block would be handed out again. */
static void small_same_attack(size_t size)
{
    setup(true);
    uintptr_t target = victim();
    char *a = ha_alloc(size, 16);
    char *b = ha_alloc(size, 16);
    CHECK(a && b);
    ha_free(a);
    uintptr_t *w = (uintptr_t *)a;
    w[0] = target - 8;
    w[1] = target;
    ha_free(b);
    (void)ha_alloc(size, 16);
    (void)ha_alloc(size, 16);
}

static void small_3000_same_attack(void) { small_same_attack(3000); }
static void small_6000_same_attack(void) { small_same_attack(6000); }
/* In a heap of 96 MiB or more, 20000 B is a slab object too. */
static void big_class_20000_same_attack(void)
{
    heap_bytes = 256 * MiB;
    small_same_attack(20000);
}

/* The links pointed at another genuine free block: the block exists and
 * checks, but its own link back does not name the damaged one. */
static void mid_links_to_real_block(void)
{
    setup(true);
    char *blk[6];
    for (int i = 0; i < 6; i++)
        CHECK((blk[i] = ha_alloc(9000, 16)) != NULL);
    ha_free(blk[0]);
    ha_free(blk[4]);
    /* Swap the two freed blocks' links: each now names a real free block
     * with a valid encoding for its own slot nowhere. */
    uintptr_t t0 = ((uintptr_t *)blk[0])[0], t1 = ((uintptr_t *)blk[0])[1];
    ((uintptr_t *)blk[0])[0] = ((uintptr_t *)blk[4])[0];
    ((uintptr_t *)blk[0])[1] = ((uintptr_t *)blk[4])[1];
    ((uintptr_t *)blk[4])[0] = t0;
    ((uintptr_t *)blk[4])[1] = t1;
    ha_free(blk[1]);
}

/* Freed page runs keep nothing in themselves (the free blocks are bits in
 * the region's metadata pages): the same writes, and a whole freed run
 * overwritten, damage nothing.  Every other run of eight is freed (its
 * buddy stays allocated, so each stays a block of its own), written all
 * over, and asked for again: the same runs come back, with what was
 * written still there, and the heap checks clean. */
static void page_runs_hold_no_metadata(void)
{
    setup(true);
    uintptr_t target = victim();
    char *run[8];
    for (int i = 0; i < 8; i++)
        CHECK((run[i] = ha_alloc_pages(4, 0)) != NULL);
    for (int i = 1; i < 8; i += 2) {
        ha_free_pages(run[i], 4);
        memset(run[i], 0xA5, 4 * HA_PAGE_SIZE);
        uintptr_t *w = (uintptr_t *)run[i];
        w[0] = target - 8;
        w[1] = target;
    }
    CHECK_HEAP();
    for (int i = 1; i < 8; i += 2) {
        char *again = ha_alloc_pages(4, 0);
        CHECK(again != NULL);
        bool ours = false;
        for (int k = 1; k < 8; k += 2)
            ours = ours || again == run[k];
        CHECK(ours);
        CHECK_EQ(((uintptr_t *)again)[1], target);
        CHECK_EQ((unsigned char)again[4 * HA_PAGE_SIZE - 1], 0xA5);
    }
    CHECK_HEAP();
    for (int i = 0; i < 8; i++)
        ha_free_pages(run[i], 4);
    CHECK_HEAP();
}

/* A write into a freed small object: its free tag is damaged, and the
 * allocation that would hand it out again reports. */
static void small_tag_written(void)
{
    setup(true);
    uintptr_t *p = ha_alloc(48, 8);
    CHECK(p != NULL);
    ha_free(p);
    p[0] = 0;
    p[1] = 0;
    (void)ha_alloc(48, 8);
}

static void frame_tag_written(void)
{
    setup(true);
    char *p = ha_alloc_pages(1, 0);
    CHECK(p != NULL);
    ha_free_pages(p, 1);
    memset(p, 0, HA_PAGE_SIZE);
    (void)ha_alloc_pages(1, 0);
}

/* A slab chunk's header (at its 16 KiB boundary, for a class of 48 B) is
 * what an overflow off the end of the chunk below reaches first: its keyed
 * check word, then the list links.  The free path does not read the header
 * (the class comes from the page map), so the damage is found where the
 * links would be used: returning objects to the slab (a bin's drain) or
 * taking them from it (a refill).  Both report; the forged links point at
 * the read-only page. */
#define HDR_CLASS_SIZE 48
#if HA_CHECKED
/* The checked build's walk on every call finds the header first. */
#define HDR_DAMAGED "slab: cached pointer not in a slab of its class"
#else
#define HDR_DAMAGED "heap metadata corrupted"
#endif
/* Fewer than a 16 KiB chunk holds (339 of 48 B, 254 of the checked
 * build's 64 B, trailer included) less what the harness took before: all
 * in the first object's chunk, and some of them still in the bin. */
#define HDR_OBJS 200

/* HDR_OBJS objects of one class; returns the chunk of the first and puts
 * the objects that lie in it first in objs[], their count in *n. */
static uintptr_t *slab_of_first(void **objs, size_t *n)
{
    void *all[HDR_OBJS];
    for (size_t i = 0; i < HDR_OBJS; i++)
        CHECK((all[i] = ha_alloc(HDR_CLASS_SIZE, 8)) != NULL);
    uintptr_t chunk = (uintptr_t)all[0] & ~(uintptr_t)(16 * KiB - 1);
    *n = 0;
    for (size_t i = 0; i < HDR_OBJS; i++)
        if (((uintptr_t)all[i] & ~(uintptr_t)(16 * KiB - 1)) == chunk)
            objs[(*n)++] = all[i];
    CHECK(*n > 128); /* more than two bins' worth: a drain will reach it */
    return (uintptr_t *)chunk;
}

/* Six words over the header: the check word, the counts, and the links
 * (what a linear overflow writes, in order). */
static void header_overwrite(uintptr_t *hdr, uintptr_t target)
{
    for (int i = 0; i < 4; i++)
        hdr[i] = 0x4141414141414141ull;
    hdr[4] = target - 8; /* next */
    hdr[5] = target;     /* prev */
}

static void slab_header_damaged_drain(void)
{
    setup(true);
    uintptr_t target = victim();
    void *objs[HDR_OBJS];
    size_t n;
    uintptr_t *hdr = slab_of_first(objs, &n);
    header_overwrite(hdr, target);
    for (size_t i = 0; i < n; i++)
        ha_free(objs[i]); /* the bin fills and drains into the damaged slab */
}

static void slab_header_damaged_refill(void)
{
    setup(true);
    uintptr_t target = victim();
    void *objs[HDR_OBJS];
    size_t n;
    uintptr_t *hdr = slab_of_first(objs, &n);
    for (size_t i = 0; i < n; i++)
        ha_free(objs[i]); /* undamaged: back in the bin and the slab */
    header_overwrite(hdr, target);
    for (size_t i = 0; i < 2 * HDR_OBJS; i++)
        (void)ha_alloc(HDR_CLASS_SIZE, 8); /* the bin runs empty and refills from it */
}

/* Without the damage the same sequences run clean: the reports above are
 * the writes' doing. */
static void same_sequences_undamaged(void)
{
    setup(true);
    void *objs[HDR_OBJS];
    size_t n;
    (void)slab_of_first(objs, &n);
    for (size_t i = 0; i < n; i++)
        ha_free(objs[i]);
    for (size_t i = 0; i < 2 * HDR_OBJS; i++)
        CHECK(ha_alloc(HDR_CLASS_SIZE, 8) != NULL);
    CHECK_HEAP();
    char *a = ha_alloc(9000, 16), *b = ha_alloc(9000, 16);
    ha_free(a);
    ha_free(b);
    char *run[8];
    for (int i = 0; i < 8; i++)
        CHECK((run[i] = ha_alloc_pages(4, 0)) != NULL);
    for (int i = 1; i < 8; i += 2)
        ha_free_pages(run[i], 4);
    for (int i = 1; i < 8; i += 2)
        CHECK((run[i] = ha_alloc_pages(4, 0)) != NULL);
    for (int i = 0; i < 8; i++)
        ha_free_pages(run[i], 4);
    CHECK_HEAP();
}

int main(void)
{
    run_isolated("same_sequences_undamaged", same_sequences_undamaged);
    expect_fatal("mid_9000_links_overwritten", mid_9000, UAF);
    expect_fatal("mid_20000_links_overwritten", mid_20000, UAF);
    expect_fatal("mid_100000_links_overwritten", mid_100000, UAF);
    expect_fatal("mid_9000_links_overwritten_unseeded", mid_9000_unseeded, UAF);
    expect_fatal("small_3000_same_attack", small_3000_same_attack, UAF);
    expect_fatal("small_6000_same_attack", small_6000_same_attack, UAF);
    expect_fatal("big_class_20000_same_attack", big_class_20000_same_attack, UAF);
    expect_fatal("mid_links_to_real_block", mid_links_to_real_block, UAF);
    run_isolated("page_runs_hold_no_metadata", page_runs_hold_no_metadata);
    expect_fatal("slab_header_overflow_found_by_drain", slab_header_damaged_drain, HDR_DAMAGED);
    expect_fatal("slab_header_overflow_found_by_refill", slab_header_damaged_refill, HDR_DAMAGED);
    expect_fatal("small_tag_overwritten", small_tag_written, UAF);
    expect_fatal("frame_tag_overwritten", frame_tag_written, UAF);
    return harness_done();
}
