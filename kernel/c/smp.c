/*
 * Harts: start the others through SBI HSM, then run jobs on all of them.
 *
 * Only the boot hart enters at _start (and its id is not always 0).  Each
 * other hart the device tree lists gets the next dense index, a stack and a
 * kc_cpu, passed as hart_start's opaque argument; entry.S puts it in tp.
 * Started harts then wait for jobs: smp_run_on_all publishes fn/arg and
 * bumps a generation counter, every hart runs the job once, and the boot
 * hart waits for all of them.
 */
#include "fdt.h"
#include "kc.h"

struct kc_cpu kc_cpus[KC_MAX_HARTS];
unsigned kc_ncpus = 1;
char kc_stacks[KC_MAX_HARTS][KC_STACK_SIZE] __attribute__((aligned(16)));

static void (*job_fn)(void *);
static void *job_arg;
static atomic_uint job_gen;
static atomic_uint job_done;

void smp_secondary_entry(void);
void smp_secondary_main(uint64_t hartid, struct kc_cpu *self);

static void smp_relax(void)
{
    /* pause (Zihintpause), encoded as a FENCE hint: a no-op where absent. */
    __asm__ volatile(".insn i 0x0F, 0, x0, x0, 0x010" ::: "memory");
}

void smp_secondary_main(uint64_t hartid, struct kc_cpu *self)
{
    (void)hartid;
    unsigned seen = atomic_load_explicit(&job_gen, memory_order_acquire);
    atomic_store_explicit(&self->online, 1u, memory_order_release);
    for (;;) {
        unsigned gen = atomic_load_explicit(&job_gen, memory_order_acquire);
        if (gen == seen) {
            smp_relax();
            continue;
        }
        seen = gen;
        job_fn(job_arg);
        atomic_fetch_add_explicit(&job_done, 1u, memory_order_acq_rel);
    }
}

unsigned smp_start(const struct fdt_info *fi, uint64_t boot_hartid)
{
    uint64_t hz = fi->timebase_hz ? fi->timebase_hz : 10000000u;
    unsigned n = 1;
    for (unsigned i = 0; i < fi->n_harts; i++) {
        uint64_t id = fi->harts[i];
        if (id == boot_hartid)
            continue;
        if (n >= KC_MAX_HARTS) {
            kc_printf("smp: hart %lu left parked (KC_MAX_HARTS = %u)\n", (unsigned long)id,
                      KC_MAX_HARTS);
            continue;
        }
        struct kc_cpu *c = &kc_cpus[n];
        c->index = n;
        c->hartid = id;
        c->stack_top = (uintptr_t)kc_stacks[n] + KC_STACK_SIZE;
        atomic_store_explicit(&c->online, 0u, memory_order_relaxed);
        /* hart_start is a firmware call, not a store the new hart can
         * observe: order our writes to c before it. */
        atomic_thread_fence(memory_order_seq_cst);
        long err = sbi_hart_start(id, (uintptr_t)smp_secondary_entry, (uintptr_t)c);
        if (err) {
            kc_printf("smp: hart %lu did not start (SBI error %ld)\n", (unsigned long)id, err);
            continue;
        }
        uint64_t deadline = kc_rdtime() + hz; /* one second */
        while (!atomic_load_explicit(&c->online, memory_order_acquire)) {
            if (kc_rdtime() > deadline) {
                /* It may still come up later and use c: not safe to go on. */
                kc_printf("smp: hart %lu started but never came online\n", (unsigned long)id);
                kc_exit(5);
            }
            smp_relax();
        }
        kc_printf("smp: hart %lu online as cpu %u\n", (unsigned long)id, n);
        n++;
        kc_ncpus = n;
    }
    return n;
}

void smp_run_on_all(void (*fn)(void *), void *arg)
{
    job_fn = fn;
    job_arg = arg;
    atomic_store_explicit(&job_done, 0u, memory_order_relaxed);
    atomic_fetch_add_explicit(&job_gen, 1u, memory_order_acq_rel);
    fn(arg);
    while (atomic_load_explicit(&job_done, memory_order_acquire) != kc_ncpus - 1)
        smp_relax();
}
