/*
 * The C-only hartalloc kernel: boot, read RAM from the device tree, start
 * the allocator the documented way (early range -> regions -> reserves ->
 * final), run the checks, print a summary and end QEMU with a status.
 */
#include "fdt.h"
#include "hartalloc.h"
#include "kc.h"

extern char _kernel_start[], _kernel_end[];
extern char kc_stacks[KC_MAX_HARTS][KC_STACK_SIZE];

/* The early allocator's range: inside the kernel image (.bss), so the
 * image's reservation covers it, which hartalloc must ignore for the early
 * range; its unused remainder goes to the page allocator at final_init. */
#define EARLY_HEAP_SIZE (256u * 1024)
static char early_heap[EARLY_HEAP_SIZE] __attribute__((aligned(HA_PAGE_SIZE)));

uintptr_t kc_early_base;
size_t kc_early_size;
struct kc_range kc_forbidden[KC_MAX_FORBIDDEN];
unsigned kc_nforbidden;
struct kc_range kc_ram[8];
unsigned kc_nram;

static uint64_t boot_hartid;
static const void *boot_dtb;
static struct fdt_info fdt;
static uint64_t timebase_hz = 10000000u;
static struct ha_stats stats_at_start; /* after final_init, early blocks freed, trimmed */

/* Blocks taken from the early allocator before final_init. */
static void *early_small, *early_mid, *early_pages;
#define EARLY_SMALL_SIZE 100u
#define EARLY_MID_SIZE 5000u
#define EARLY_MID_ALIGN 64u
#define EARLY_PAGES 2u

static unsigned checks_passed, checks_failed;

void kc_fail(struct kc_check *c, const char *fmt, ...)
{
    if (c->failed)
        return; /* the first failure is the one that explains */
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    kc_vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
}

static bool range_overlaps(uintptr_t a, uintptr_t a_end, uintptr_t b, uintptr_t b_end)
{
    return a < b_end && b < a_end;
}

const char *kc_range_problem(const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)p, end = a + len;
    if (end < a)
        return "wraps around";
    for (unsigned i = 0; i < kc_nforbidden; i++)
        if (range_overlaps(a, end, kc_forbidden[i].base, kc_forbidden[i].end))
            return kc_forbidden[i].what;
    for (unsigned i = 0; i < kc_nram; i++)
        if (a >= kc_ram[i].base && end <= kc_ram[i].end)
            return NULL;
    if (a >= (uintptr_t)early_heap && end <= (uintptr_t)early_heap + EARLY_HEAP_SIZE)
        return NULL;
    return "outside RAM";
}

static void forbid(uintptr_t base, uintptr_t end, const char *what)
{
    if (kc_nforbidden < KC_MAX_FORBIDDEN && end > base)
        kc_forbidden[kc_nforbidden++] = (struct kc_range){ base, end, what };
}

static void print_stats(const char *when)
{
    struct ha_stats s;
    ha_get_stats(&s);
    kc_printf("  stats %s: bytes total=%zu used=%zu free=%zu peak=%zu meta=%zu; pages total=%zu "
              "used=%zu free=%zu largest run=%zu; early used=%zu\n",
              when, s.bytes_total, s.bytes_used, s.bytes_free, s.bytes_peak, s.bytes_meta,
              s.pages_total, s.pages_used, s.pages_free, s.pages_largest_run, s.early_used);
}

/* ---- boot: early -> regions -> reserve -> final ---- */

static void check_boot(struct kc_check *c)
{
    uintptr_t eh = (uintptr_t)early_heap;
    kc_early_base = eh;
    kc_early_size = EARLY_HEAP_SIZE;
    /* The firmware's entropy keys what the allocator keeps in freed memory. */
    if (fdt.rng_seed) {
        int s = ha_seed(fdt.rng_seed, fdt.rng_seed_len);
        KC_EXPECT(c, s == 0, "ha_seed = %d", s);
        kc_printf("  seed: %u bytes of /chosen/rng-seed\n", (unsigned)fdt.rng_seed_len);
    }
    int r = ha_early_init(early_heap, EARLY_HEAP_SIZE);
    KC_EXPECT(c, r == 0, "ha_early_init = %d", r);
    kc_printf("  early: [%p, %p)\n", (void *)eh, (void *)(eh + EARLY_HEAP_SIZE));

    /* The early allocator serves the boot path before RAM is known. */
    early_small = ha_alloc(EARLY_SMALL_SIZE, 16);
    early_mid = ha_alloc(EARLY_MID_SIZE, EARLY_MID_ALIGN);
    early_pages = ha_alloc_pages(EARLY_PAGES, 0);
    KC_EXPECT(c, early_small && early_mid && early_pages, "early allocations failed: %p %p %p",
              early_small, early_mid, early_pages);
    KC_EXPECT(c, ((uintptr_t)early_mid & (EARLY_MID_ALIGN - 1)) == 0 &&
                     ((uintptr_t)early_pages & (HA_PAGE_SIZE - 1)) == 0,
              "early blocks misaligned: %p %p", early_mid, early_pages);
    const void *blocks[3] = { early_small, early_mid, early_pages };
    const size_t sizes[3] = { EARLY_SMALL_SIZE, EARLY_MID_SIZE, EARLY_PAGES * HA_PAGE_SIZE };
    for (unsigned i = 0; i < 3; i++) {
        uintptr_t b = (uintptr_t)blocks[i];
        KC_EXPECT(c, b >= eh && b + sizes[i] <= eh + EARLY_HEAP_SIZE,
                  "early block %p not inside the early range", blocks[i]);
        kc_fill((void *)b, sizes[i], 0xEA000000u + i);
    }

    for (unsigned i = 0; i < fdt.n_mem; i++) {
        uint64_t base = fdt.mem[i].base, size = fdt.mem[i].size;
        r = ha_add_region((void *)(uintptr_t)base, (size_t)size);
        kc_printf("  region [%lx, %lx) %lu MiB: %d\n", (unsigned long)base,
                  (unsigned long)(base + size), (unsigned long)(size >> 20), r);
        KC_EXPECT(c, r == 0, "ha_add_region(%lx, %lx) = %d", (unsigned long)base,
                  (unsigned long)size, r);
        if (kc_nram < 8)
            kc_ram[kc_nram++] = (struct kc_range){ (uintptr_t)base, (uintptr_t)(base + size), "RAM" };
    }
    KC_EXPECT(c, fdt.n_mem > 0, "the device tree has no /memory");

    /* The whole image is reserved (early range included: hartalloc must
     * leave that to the early allocator); the checks test against the
     * image less the early range, which becomes heap. */
    uintptr_t ks = (uintptr_t)_kernel_start, ke = (uintptr_t)_kernel_end;
    r = ha_reserve(_kernel_start, ke - ks);
    kc_printf("  reserve kernel image [%lx, %lx): %d\n", (unsigned long)ks, (unsigned long)ke, r);
    KC_EXPECT(c, r == 0, "ha_reserve(kernel image) = %d", r);
    forbid(ks, eh, "kernel image");
    forbid(eh + EARLY_HEAP_SIZE, ke, "kernel image");

    uintptr_t db = (uintptr_t)boot_dtb;
    r = ha_reserve((void *)db, fdt.totalsize);
    kc_printf("  reserve DTB [%lx, %lx): %d\n", (unsigned long)db,
              (unsigned long)(db + fdt.totalsize), r);
    KC_EXPECT(c, r == 0, "ha_reserve(DTB) = %d", r);
    forbid(db, db + fdt.totalsize, "DTB");

    for (unsigned i = 0; i < fdt.n_resv; i++) {
        uint64_t base = fdt.resv[i].base, size = fdt.resv[i].size;
        r = ha_reserve((void *)(uintptr_t)base, (size_t)size);
        kc_printf("  reserve firmware [%lx, %lx): %d\n", (unsigned long)base,
                  (unsigned long)(base + size), r);
        KC_EXPECT(c, r == 0, "ha_reserve(%lx, %lx) = %d", (unsigned long)base,
                  (unsigned long)size, r);
        forbid((uintptr_t)base, (uintptr_t)(base + size), "firmware (reserved-memory)");
    }

    r = ha_final_init();
    KC_EXPECT(c, r == 0, "ha_final_init = %d", r);
    r = ha_final_init();
    KC_EXPECT(c, r == HA_ESTATE, "a second ha_final_init = %d, expected HA_ESTATE", r);
    print_stats("after final_init");

    struct ha_stats s;
    ha_get_stats(&s);
    size_t ram = 0;
    for (unsigned i = 0; i < kc_nram; i++)
        ram += kc_ram[i].end - kc_ram[i].base;
    /* Everything but the reserves and a little metadata is the heap's. */
    KC_EXPECT(c, s.pages_total * HA_PAGE_SIZE <= ram && s.pages_total * HA_PAGE_SIZE > ram / 2,
              "pages_total %zu does not fit %zu bytes of RAM", s.pages_total, ram);
    kc_snprintf(c->note, sizeof c->note, "%zu MiB RAM, %zu pages managed", ram >> 20,
                s.pages_total);
}

static void check_early_blocks(struct kc_check *c)
{
    const size_t sizes[3] = { EARLY_SMALL_SIZE, EARLY_MID_SIZE, EARLY_PAGES * HA_PAGE_SIZE };
    void *blocks[3] = { early_small, early_mid, early_pages };
    for (unsigned i = 0; i < 3; i++) {
        size_t bad = kc_verify(blocks[i], sizes[i], 0xEA000000u + i);
        KC_EXPECT(c, bad == (size_t)-1, "early block %p changed at +%zu by final_init", blocks[i],
                  bad);
    }
    KC_EXPECT(c, ha_usable_size(early_small) >= EARLY_SMALL_SIZE, "usable size %zu < %u",
              ha_usable_size(early_small), EARLY_SMALL_SIZE);
    struct ha_stats before, after;
    ha_get_stats(&before);
    ha_free(early_small);
    ha_free_sized(early_mid, EARLY_MID_SIZE, EARLY_MID_ALIGN);
    ha_free_pages(early_pages, EARLY_PAGES);
    ha_get_stats(&after);
    KC_EXPECT(c, after.frees == before.frees + 2 && after.page_frees == before.page_frees + 1,
              "frees of early blocks not counted: frees %lu -> %lu, page frees %lu -> %lu",
              (unsigned long)before.frees, (unsigned long)after.frees,
              (unsigned long)before.page_frees, (unsigned long)after.page_frees);
    kc_snprintf(c->note, sizeof c->note, "3 blocks intact after final_init, freed; early used %zu -> %zu",
                before.early_used, after.early_used);
}

/* ---- nothing leaked ---- */

static void check_no_leaks(struct kc_check *c)
{
    ha_trim();
    int r = ha_check();
    KC_EXPECT(c, r == 0, "ha_check() = %d: %s", r, ha_check_message());
    struct ha_stats s, *b = &stats_at_start;
    ha_get_stats(&s);
    KC_EXPECT(c, s.bytes_used == b->bytes_used, "bytes_used %zu, was %zu at start", s.bytes_used,
              b->bytes_used);
    KC_EXPECT(c, s.allocs - b->allocs == s.frees - b->frees,
              "allocs - frees since start: %lu - %lu", (unsigned long)(s.allocs - b->allocs),
              (unsigned long)(s.frees - b->frees));
    /* Page allocs and frees need not pair up (a run may be freed in
     * sub-runs), but every page must be back: none used beyond the start,
     * all the others free.  pages_total may shrink: per-CPU cache memory
     * for harts that first allocated during the checks is metadata. */
    KC_EXPECT(c, s.pages_used == b->pages_used, "after ha_trim %zu pages used, %zu at start",
              s.pages_used, b->pages_used);
    KC_EXPECT(c, s.pages_used + s.pages_free == s.pages_total,
              "pages used %zu + free %zu != total %zu", s.pages_used, s.pages_free,
              s.pages_total);
    kc_snprintf(c->note, sizeof c->note,
                "%lu allocs = %lu frees, %zu pages used as at start, %zu free; %zd pages became metadata",
                (unsigned long)(s.allocs - b->allocs), (unsigned long)(s.frees - b->frees),
                s.pages_used, s.pages_free, (ptrdiff_t)(b->pages_total - s.pages_total));
}

/* ---- running checks ---- */

static void run_check(const char *name, void (*fn)(struct kc_check *))
{
    struct kc_check c = { .name = name };
    kc_printf("[ .. ] %s\n", name);
    uint64_t t0 = kc_rdtime();
    fn(&c);
    uint64_t ms = (kc_rdtime() - t0) * 1000 / timebase_hz;
    if (!c.failed) {
        /* Every check leaves the heap consistent, whatever it did. */
        int r = ha_check();
        if (r)
            kc_fail(&c, "ha_check() = %d afterwards: %s", r, ha_check_message());
    }
    if (c.failed) {
        checks_failed++;
        kc_printf("[FAIL] %s: %s\n", name, c.why);
    } else {
        checks_passed++;
        kc_printf("[ ok ] %s (%s%s%lu ms)\n", name, c.note, c.note[0] ? ", " : "",
                  (unsigned long)ms);
    }
}

/* Does the kernel command line (/chosen bootargs, QEMU -append) hold word? */
static bool bootargs_has(const char *word)
{
    for (const char *a = fdt.bootargs; *a;) {
        while (*a == ' ')
            a++;
        const char *w = word;
        while (*w && *a == *w) {
            a++;
            w++;
        }
        if (*w == 0 && (*a == 0 || *a == ' '))
            return true;
        while (*a && *a != ' ')
            a++;
    }
    return false;
}

/* Bad input on purpose (bootargs "double-free"): hartalloc must stop the
 * kernel through ha_platform_fatal, naming the fault; the run is expected
 * to end with a failure status and that message. */
static _Noreturn void provoke_double_free(void)
{
    void *p = ha_alloc(64, 16);
    kc_printf("bad input: freeing %p twice\n", p);
    ha_free(p);
    ha_free(p);
    kc_printf("[FAIL] bad input: the double free of %p was not detected\n", p);
    kc_exit(1);
}

static _Noreturn void finish(void)
{
    struct ha_stats s;
    ha_get_stats(&s);
    kc_printf("kernel: %u checks passed, %u failed; stats: bytes total=%zu used=%zu peak=%zu "
              "pages total=%zu used=%zu free=%zu peak=%zu allocs=%lu frees=%lu page_allocs=%lu "
              "page_frees=%lu failures=%lu\n",
              checks_passed, checks_failed, s.bytes_total, s.bytes_used, s.bytes_peak,
              s.pages_total, s.pages_used, s.pages_free, s.pages_peak, (unsigned long)s.allocs,
              (unsigned long)s.frees, (unsigned long)s.page_allocs, (unsigned long)s.page_frees,
              (unsigned long)s.failures);
    kc_exit(checks_failed ? 1 : 0);
}

void kmain(uint64_t hartid, const void *dtb);
void kmain(uint64_t hartid, const void *dtb)
{
    struct kc_cpu *self = &kc_cpus[0];
    self->index = 0;
    self->hartid = hartid;
    self->stack_top = (uintptr_t)kc_stacks[0] + KC_STACK_SIZE;
    atomic_store(&self->online, 1u);
    boot_hartid = hartid;
    boot_dtb = dtb;

    kc_printf("\nhartalloc C kernel: boot hart %lu, DTB at %p, image [%p, %p)\n",
              (unsigned long)hartid, dtb, (void *)_kernel_start, (void *)_kernel_end);
    int r = fdt_parse(dtb, &fdt);
    if (r) {
        kc_printf("kernel: cannot read the device tree: %s\n", fdt_strerror(r));
        kc_exit(2);
    }
    if (fdt.timebase_hz)
        timebase_hz = fdt.timebase_hz;
    if (fdt.bootargs[0])
        kc_printf("  bootargs: %s\n", fdt.bootargs);
    kc_printf("  device tree: %u bytes, %u memory range(s), %u reserved, %u hart(s), timebase %lu Hz%s\n",
              fdt.totalsize, fdt.n_mem, fdt.n_resv, fdt.n_harts, (unsigned long)timebase_hz,
              fdt.dropped ? " (some entries ignored: tables full)" : "");

    run_check("boot: early -> regions -> reserve -> final", check_boot);
    if (checks_failed) /* nothing else can run without a heap */
        finish();
    run_check("early blocks valid after final_init", check_early_blocks);
    if (bootargs_has("double-free"))
        provoke_double_free();
    ha_trim();
    ha_get_stats(&stats_at_start);

    run_check("page test", test_pages);
    run_check("page exhaustion", test_page_exhaustion);
    run_check("byte edge cases", test_byte_edges);
    run_check("byte churn", test_byte_churn);
    run_check("realloc growth", test_realloc_growth);

    unsigned n = smp_start(&fdt, hartid);
    kc_printf("smp: %u of %u hart(s) running\n", n, fdt.n_harts);
    run_check("smp stress", test_smp_stress);
    run_check("ha_check clean, nothing leaked after ha_trim", check_no_leaks);
    finish();
}
