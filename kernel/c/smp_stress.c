/*
 * SMP stress: every hart allocates, verifies and frees at the same time,
 * and hands some of its blocks to other harts, which verify and free them
 * (cross-hart frees: the case per-CPU caches make delicate).  Seeds are
 * fixed per hart and printed.
 */
#include "hartalloc.h"
#include "kc.h"

#define STRESS_SEED 0x5EED0000ull
#define STRESS_OPS 60000
#define STRESS_SLOTS 128
#define INBOX_CAP 64

struct stress_msg {
    void *p;
    size_t size;
    uint64_t seed;
    bool pages; /* from ha_alloc_pages: size is a page count */
};

struct inbox {
    kc_lock_t lock;
    unsigned n;
    struct stress_msg m[INBOX_CAP];
};

struct stress_tally {
    uint64_t allocs, frees, page_allocs, sent, received, reallocs;
};

static struct inbox inboxes[KC_MAX_HARTS];
static struct stress_tally tally[KC_MAX_HARTS];
static atomic_uint arrived;        /* start barrier */
static atomic_uint producers_left; /* harts still allocating and sending */
static atomic_uint stress_failed;
static char stress_why[160];

static void stress_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void stress_fail(const char *fmt, ...)
{
    if (atomic_exchange(&stress_failed, 1u))
        return; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    kc_vsnprintf(stress_why, sizeof stress_why, fmt, ap);
    va_end(ap);
}

static size_t stress_size(uint64_t r)
{
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 70)
        return 1 + r % 512;
    if (pick < 92)
        return 513 + r % (8192 - 512);
    return 8193 + r % (192 * 1024 - 8192);
}

/* Verify a block and give it back; false (and the failure recorded) when
 * its pattern is broken. */
static bool stress_release(const struct stress_msg *m, unsigned cpu, bool sized)
{
    size_t len = m->pages ? m->size * HA_PAGE_SIZE : m->size;
    size_t bad = kc_verify(m->p, len, m->seed);
    if (bad != (size_t)-1) {
        stress_fail("cpu %u: block %p (%zu B) overwritten at +%zu", cpu, m->p, len, bad);
        return false;
    }
    if (m->pages)
        ha_free_pages(m->p, m->size);
    else if (sized)
        ha_free_sized(m->p, m->size, 16);
    else
        ha_free(m->p);
    return true;
}

static void stress_drain(unsigned cpu, struct stress_tally *t)
{
    struct inbox *in = &inboxes[cpu];
    struct stress_msg local[INBOX_CAP];
    kc_lock(&in->lock);
    unsigned n = in->n;
    for (unsigned i = 0; i < n; i++)
        local[i] = in->m[i];
    in->n = 0;
    kc_unlock(&in->lock);
    for (unsigned i = 0; i < n; i++) {
        if (stress_release(&local[i], cpu, i & 1))
            t->received++;
    }
}

static bool stress_send(unsigned to, const struct stress_msg *m)
{
    struct inbox *in = &inboxes[to];
    kc_lock(&in->lock);
    bool ok = in->n < INBOX_CAP;
    if (ok)
        in->m[in->n++] = *m;
    kc_unlock(&in->lock);
    return ok;
}

static void stress_hart(void *arg)
{
    (void)arg;
    unsigned cpu = kc_this_cpu()->index, ncpus = kc_ncpus;
    uint64_t rng = STRESS_SEED + cpu;
    struct stress_tally *t = &tally[cpu];
    struct stress_msg slot[STRESS_SLOTS] = { 0 };
    kc_printf("  cpu %u (hart %lu): seed %lx, %u ops\n", cpu, (unsigned long)kc_this_cpu()->hartid,
              (unsigned long)rng, STRESS_OPS);

    /* Start together, so that the harts really contend. */
    atomic_fetch_add(&arrived, 1u);
    while (atomic_load(&arrived) < ncpus)
        ;

    for (unsigned op = 0; op < STRESS_OPS && !atomic_load_explicit(&stress_failed, memory_order_relaxed); op++) {
        if ((op & 15) == 0)
            stress_drain(cpu, t);
        uint64_t r = kc_rand(&rng);
        struct stress_msg *s = &slot[r % STRESS_SLOTS];
        unsigned what = (unsigned)((r >> 20) % 20);
        if (!s->p) {
            s->seed = kc_rand(&rng);
            if (what == 0) {
                s->pages = true;
                s->size = 1 + (r >> 32) % 8;
                s->p = ha_alloc_pages(s->size, 0);
                t->page_allocs++;
            } else {
                s->pages = false;
                s->size = stress_size(kc_rand(&rng));
                s->p = ha_alloc(s->size, 16);
                t->allocs++;
            }
            if (!s->p) {
                stress_fail("cpu %u op %u: allocation of %zu%s = NULL", cpu, op, s->size,
                            s->pages ? " pages" : " B");
                break;
            }
            kc_fill(s->p, s->pages ? s->size * HA_PAGE_SIZE : s->size, s->seed);
            continue;
        }
        if (what < 10 || (what < 15 && ncpus == 1)) {
            if (!stress_release(s, cpu, what & 1))
                break;
            s->p = NULL;
            t->frees++;
        } else if (what < 15) {
            unsigned to = (cpu + 1 + (unsigned)((r >> 40) % (ncpus - 1))) % ncpus;
            if (stress_send(to, s)) {
                s->p = NULL;
                t->sent++;
            }
        } else if (what < 17 && !s->pages) {
            size_t new_size = stress_size(kc_rand(&rng));
            size_t keep = s->size < new_size ? s->size : new_size;
            void *q = ha_realloc(s->p, new_size, 16);
            size_t bad = q ? kc_verify_prefix(q, s->size, keep, s->seed) : 0;
            if (bad != (size_t)-1) {
                stress_fail("cpu %u op %u: realloc %zu -> %zu: %s at +%zu", cpu, op, s->size,
                            new_size, q ? "data lost" : "NULL", bad);
                break;
            }
            s->p = q;
            s->size = new_size;
            kc_fill(q, new_size, s->seed);
            t->reallocs++;
        } else {
            size_t len = s->pages ? s->size * HA_PAGE_SIZE : s->size;
            size_t bad = kc_verify(s->p, len, s->seed);
            if (bad != (size_t)-1) {
                stress_fail("cpu %u op %u: block %p overwritten at +%zu", cpu, op, s->p, bad);
                break;
            }
        }
    }
    for (unsigned i = 0; i < STRESS_SLOTS; i++)
        if (slot[i].p && stress_release(&slot[i], cpu, false))
            t->frees++;

    /* Others may still send until every hart has stopped producing. */
    atomic_fetch_sub(&producers_left, 1u);
    while (atomic_load(&producers_left))
        stress_drain(cpu, t);
    stress_drain(cpu, t);
}

void test_smp_stress(struct kc_check *c)
{
    struct ha_stats s0, s1;
    ha_get_stats(&s0);
    atomic_store(&arrived, 0u);
    atomic_store(&producers_left, kc_ncpus);
    atomic_store(&stress_failed, 0u);
    smp_run_on_all(stress_hart, NULL);
    KC_EXPECT(c, !atomic_load(&stress_failed), "%s", stress_why);

    struct stress_tally sum = { 0 };
    for (unsigned i = 0; i < kc_ncpus; i++) {
        sum.allocs += tally[i].allocs;
        sum.page_allocs += tally[i].page_allocs;
        sum.frees += tally[i].frees;
        sum.sent += tally[i].sent;
        sum.received += tally[i].received;
        sum.reallocs += tally[i].reallocs;
    }
    KC_EXPECT(c, sum.sent == sum.received, "%lu blocks sent to other harts, %lu received",
              (unsigned long)sum.sent, (unsigned long)sum.received);
    KC_EXPECT(c, kc_ncpus == 1 || sum.sent > 0, "no cross-hart frees happened");
    ha_get_stats(&s1);
    KC_EXPECT(c, s1.bytes_used == s0.bytes_used, "bytes_used %zu after, %zu before",
              s1.bytes_used, s0.bytes_used);
    uint64_t byte_allocs = s1.allocs - s0.allocs;
    KC_EXPECT(c, byte_allocs == s1.frees - s0.frees, "allocs %lu != frees %lu during the stress",
              (unsigned long)byte_allocs, (unsigned long)(s1.frees - s0.frees));
    int r = ha_check();
    KC_EXPECT(c, r == 0, "ha_check() = %d: %s", r, ha_check_message());
    kc_snprintf(c->note, sizeof c->note,
                "%u hart(s), seeds %lx+cpu: %lu allocs, %lu page runs, %lu reallocs, %lu cross-hart frees",
                kc_ncpus, (unsigned long)STRESS_SEED, (unsigned long)sum.allocs,
                (unsigned long)sum.page_allocs, (unsigned long)sum.reallocs,
                (unsigned long)sum.received);
}
