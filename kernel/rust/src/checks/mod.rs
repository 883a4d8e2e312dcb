//! The checks: the shared ones (`hartalloc_kernel_common::checks`: String,
//! Box, Vec, BTreeMap, pages, ha_check, leaks), and, on the harts this
//! kernel started, whether all came up and the shared SMP stress.

use alloc::format;
use alloc::vec::Vec;

use crate::common::checks::{self, smp_stress, Machine};
use crate::common::clock::Clock;
use crate::dtb::{MachineInfo, Reserved};
use crate::heap::HEAP;
use crate::{ensure, platform, smp, time};

/// Run every check, print the summary, end the run.
pub fn run_all(info: &MachineInfo, reserved: Vec<Reserved>) -> ! {
    let machine = Machine {
        heap: &HEAP,
        clock: Clock { now: time::rdtime, cycles: time::rdcycle, hz: time::timebase(), sources: "rdtime/rdcycle" },
        exit_success: platform::exit_success,
        exit_failure: platform::exit_failure,
    };
    checks::run_all(&machine, info, reserved, |t, ctx| {
        let harts = smp::online();
        t.run("all harts started (SBI HSM)", || {
            ensure!(harts == smp::num_harts(), "{} of {} harts came up", harts, smp::num_harts());
            Ok(format!("{} of {}", harts, smp::num_harts()))
        });
        t.run(&format!("smp stress on {} harts", harts), || smp_stress::run(ctx, smp::run_on_all, harts));
        t.run("sstatus.SIE as it was after every call, set or clear", sie_kept);
    })
}

const SSTATUS_SIE: usize = 1 << 1;

fn sstatus() -> usize {
    let v: usize;
    // SAFETY: reading sstatus has no side effect.
    unsafe { core::arch::asm!("csrr {}, sstatus", out(reg) v, options(nomem, nostack)) };
    v
}

/// The allocator masks interrupts with sstatus.SIE and gives back what it
/// found (riscv-smode: it writes sstatus only when SIE is set).  The rest
/// of the run keeps SIE clear; here it is set with every source masked in
/// `sie`, so that no trap can be taken, and each kind of call (small,
/// mid-size and large blocks, a frame, a run of pages) must leave it set,
/// and leave it clear when it was clear.
fn sie_kept() -> checks::Outcome {
    let saved_sie: usize;
    // SAFETY: masks every S-mode interrupt source on this hart, so that
    // setting sstatus.SIE below cannot lead to a trap; restored at the end.
    unsafe { core::arch::asm!("csrrw {}, sie, zero", out(reg) saved_sie, options(nomem, nostack)) };
    let mut calls = 0usize;
    let mut wrong = None;
    for set in [true, false] {
        if set {
            // SAFETY: sie is zero: no interrupt can be taken.
            unsafe { core::arch::asm!("csrsi sstatus, 0x2", options(nomem, nostack)) };
        }
        let expect = if set { SSTATUS_SIE } else { 0 };
        let mut step = |what: &'static str| {
            calls += 1;
            if wrong.is_none() && sstatus() & SSTATUS_SIE != expect {
                wrong = Some((what, set));
            }
        };
        for size in [24usize, 700, 5000, 40000, 300000] {
            let v: Vec<u8> = core::hint::black_box(Vec::with_capacity(size));
            step("alloc");
            drop(v);
            step("free");
        }
        let frame = HEAP.alloc_pages(1, 4096);
        step("alloc_pages(1)");
        drop(frame);
        step("free of a frame");
        let run = HEAP.alloc_pages(5, 4096);
        step("alloc_pages(5)");
        drop(run);
        step("free of a run");
        // SAFETY: clears SIE again (sie is still zero).
        unsafe { core::arch::asm!("csrci sstatus, 0x2", options(nomem, nostack)) };
    }
    // SAFETY: gives sie back what it held, with SIE clear as before.
    unsafe { core::arch::asm!("csrw sie, {}", in(reg) saved_sie, options(nomem, nostack)) };
    if let Some((what, set)) = wrong {
        let (now, was) = if set { ("clear", "set") } else { ("set", "clear") };
        return Err(format!("{what} left SIE {now} (it was {was})"));
    }
    Ok(format!("{calls} calls, SIE set then clear"))
}
