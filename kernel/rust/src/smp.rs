//! Harts: their index for the allocator's per-CPU caches, starting them
//! through SBI HSM, and running one job on all of them at once.
//!
//! Hart ids come from the device tree and may be sparse; the allocator
//! wants 0..N-1, so each hart gets the index of its id in `HART_IDS`.
//! Idle harts wait in `wfi` with only the supervisor software interrupt
//! enabled in `sie` (sstatus.SIE stays clear, so no trap is taken): an SBI
//! IPI wakes them for a new job.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::dtb::MAX_HARTS;
use crate::{boot, sbi, time};

const STACK_PAGES: usize = 16; // 64 KiB per secondary hart

static HART_IDS: [AtomicUsize; MAX_HARTS] = [const { AtomicUsize::new(usize::MAX) }; MAX_HARTS];
static NUM_HARTS: AtomicUsize = AtomicUsize::new(1);
static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// The job every hart runs: a `fn(cpu index)` as usize, its generation,
/// and how many harts finished it.
static JOB: AtomicUsize = AtomicUsize::new(0);
static JOB_GEN: AtomicUsize = AtomicUsize::new(0);
static JOB_DONE: AtomicUsize = AtomicUsize::new(0);

const SIE_SSIE: usize = 1 << 1;
const EID_IPI: usize = 0x73_5049;

/// This hart's id (kept in `tp` since entry).
#[inline]
pub fn hart_id() -> usize {
    let id: usize;
    // SAFETY: reads a register; tp holds the hart id on every hart.
    unsafe { asm!("mv {}, tp", out(reg) id, options(nomem, nostack, preserves_flags)) };
    id
}

/// This hart's index, 0..num_harts() (for the allocator's per-CPU data).
#[inline]
pub fn cpu_index() -> usize {
    let id = hart_id();
    let n = NUM_HARTS.load(Ordering::Relaxed);
    HART_IDS[..n]
        .iter()
        .position(|h| h.load(Ordering::Relaxed) == id)
        .unwrap_or(0)
}

pub fn num_harts() -> usize {
    NUM_HARTS.load(Ordering::Relaxed)
}

pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Record the harts of the device tree (the boot hart first, if the tree
/// does not list it).
pub fn init(harts: &[usize], boot_hart: usize) {
    let mut n = 0;
    let mut push = |id: usize| {
        if n < MAX_HARTS && !HART_IDS[..n].iter().any(|h| h.load(Ordering::Relaxed) == id) {
            HART_IDS[n].store(id, Ordering::Relaxed);
            n += 1;
        }
    };
    push(boot_hart);
    for &h in harts {
        push(h);
    }
    NUM_HARTS.store(n, Ordering::Release);
}

/// Start every other hart with a stack of its own from the page
/// allocator; wait (at most `timeout_ms`) until they are up.  Returns how
/// many harts run.
pub fn start_secondaries(timeout_ms: u64) -> usize {
    let me = hart_id();
    let n = num_harts();
    for slot in &HART_IDS[..n] {
        let id = slot.load(Ordering::Relaxed);
        if id == me {
            continue;
        }
        if !matches!(sbi::hart_status(id), Ok(1)) {
            crate::println!("smp: hart {} is not stopped, not starting it", id);
            continue;
        }
        let Some(stack) = crate::heap::alloc_stack(STACK_PAGES) else {
            crate::println!("smp: no memory for hart {}'s stack", id);
            break;
        };
        if let Err(e) = sbi::hart_start(id, boot::secondary_entry(), stack) {
            crate::println!("smp: hart_start({}) failed: {:?}", id, e);
        }
    }
    let deadline = time::rdtime() + timeout_ms * time::timebase() / 1000;
    while online() < n && time::rdtime() < deadline {
        core::hint::spin_loop();
    }
    online()
}

/// Where a secondary hart lands once it has a stack.
pub fn secondary_loop() -> ! {
    ONLINE.fetch_add(1, Ordering::AcqRel);
    let mut seen = 0;
    loop {
        // Clear a stale wake-up before looking, so that a job posted after
        // the look leaves SSIP pending and wfi returns at once.
        clear_soft_irq();
        let gen = JOB_GEN.load(Ordering::Acquire);
        if gen == seen {
            wait_for_irq();
            continue;
        }
        seen = gen;
        let job = JOB.load(Ordering::Acquire);
        // SAFETY: JOB only ever holds a `fn(usize)` stored by run_on_all.
        let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(job) };
        f(cpu_index());
        JOB_DONE.fetch_add(1, Ordering::AcqRel);
    }
}

/// Run `f(cpu index)` on every online hart at once, this one included;
/// return when all have finished.
pub fn run_on_all(f: fn(usize)) {
    let others = online() - 1;
    JOB_DONE.store(0, Ordering::Relaxed);
    JOB.store(f as usize, Ordering::Release);
    JOB_GEN.fetch_add(1, Ordering::AcqRel);
    let me = hart_id();
    for slot in &HART_IDS[..num_harts()] {
        let id = slot.load(Ordering::Relaxed);
        if id != me {
            send_ipi(id);
        }
    }
    f(cpu_index());
    while JOB_DONE.load(Ordering::Acquire) < others {
        core::hint::spin_loop();
    }
}

fn send_ipi(hart: usize) {
    let _err: isize;
    // SAFETY: SBI IPI send_ipi(mask = 1, base = hart): sets SSIP on that
    // hart; touches no memory of ours.
    unsafe {
        asm!("ecall", inlateout("a0") 1usize => _err, inlateout("a1") hart => _,
             in("a6") 0usize, in("a7") EID_IPI, options(nostack));
    }
}

fn clear_soft_irq() {
    // SAFETY: clears this hart's pending supervisor software interrupt.
    unsafe { asm!("csrci sip, 0x2", options(nomem, nostack)) };
}

fn wait_for_irq() {
    // SAFETY: with SSIE set in sie and SIE clear in sstatus, wfi returns
    // when an IPI is pending without taking a trap.
    unsafe {
        asm!("csrs sie, {}", "wfi", in(reg) SIE_SSIE, options(nomem, nostack));
    }
}

/// A barrier for the harts running one job (shared with the aarch64
/// kernel; used here by the benchmark, bench.rs).
#[cfg_attr(not(feature = "bench"), allow(unused_imports))]
pub use crate::common::smp::Barrier;
