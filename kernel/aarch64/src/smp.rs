//! The other CPUs: started through PSCI CPU_ON on a stack of their own,
//! then idle in `wfe` until CPU 0 posts a job for all of them (the shared
//! SMP stress).
//!
//! A CPU's index (for the allocator's per-CPU caches and the jobs) is its
//! MPIDR affinity 0, which QEMU virt numbers 0..N-1 within the first
//! cluster; CPUs of other clusters are not started.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::HEAP;

/// CPUs this kernel can run: QEMU virt's first cluster.
pub const MAX_CPUS: usize = 8;
const STACK_PAGES: usize = 16; // 64 KiB per secondary CPU

static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// The job every CPU runs: a `fn(cpu index)` as usize, its generation,
/// and how many CPUs finished it.
static JOB: AtomicUsize = AtomicUsize::new(0);
static JOB_GEN: AtomicUsize = AtomicUsize::new(0);
static JOB_DONE: AtomicUsize = AtomicUsize::new(0);

pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Start the CPUs of the device tree (`ids`: MPIDR affinities) that this
/// kernel can run; wait (at most `timeout_ms`) until they are up.  Returns
/// how many CPUs run and how many it tried to start (this one included).
pub fn start_secondaries(ids: &[usize], timeout_ms: u64) -> (usize, usize) {
    let mut wanted = 1;
    for &id in ids {
        if id == 0 || id >= MAX_CPUS {
            continue;
        }
        let Some(pages) = HEAP.alloc_pages(STACK_PAGES, hartalloc::PAGE_SIZE) else {
            crate::println!("smp: no memory for cpu {}'s stack", id);
            break;
        };
        // Never freed: the CPU runs until the machine stops.
        let (base, count) = pages.into_raw();
        let top = base.as_ptr() as usize + count * hartalloc::PAGE_SIZE;
        match crate::platform::psci_cpu_on(id, crate::boot::secondary_entry(), top) {
            0 => wanted += 1,
            e => crate::println!("smp: PSCI CPU_ON({}) failed: {}", id, e),
        }
    }
    let deadline = crate::time::now() + timeout_ms * crate::time::timer_hz() / 1000;
    while online() < wanted && crate::time::now() < deadline {
        core::hint::spin_loop();
    }
    (online(), wanted)
}

/// Where a secondary CPU lands once it has a stack (boot.rs).
pub extern "C" fn secondary_main(cpu: usize) -> ! {
    ONLINE.fetch_add(1, Ordering::AcqRel);
    let mut seen = 0;
    loop {
        let gen = JOB_GEN.load(Ordering::Acquire);
        if gen == seen {
            // An event sent after the load above is remembered by the
            // event register: wfe then returns at once.
            wait_for_event();
            continue;
        }
        seen = gen;
        let job = JOB.load(Ordering::Acquire);
        // SAFETY: JOB only ever holds a `fn(usize)` stored by run_on_all.
        let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(job) };
        f(cpu);
        JOB_DONE.fetch_add(1, Ordering::AcqRel);
    }
}

/// Run `f(cpu index)` on every online CPU at once, this one included;
/// return when all have finished.
pub fn run_on_all(f: fn(usize)) {
    let others = online() - 1;
    JOB_DONE.store(0, Ordering::Relaxed);
    JOB.store(f as usize, Ordering::Release);
    JOB_GEN.fetch_add(1, Ordering::AcqRel);
    send_event();
    f(crate::platform::cpu_id());
    while JOB_DONE.load(Ordering::Acquire) < others {
        core::hint::spin_loop();
    }
}

fn send_event() {
    // SAFETY: dsb makes the stores above visible before the event; sev
    // wakes CPUs waiting in wfe.  No other state changes.
    unsafe { asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

fn wait_for_event() {
    // SAFETY: waits for an event; no state changes.
    unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
}
