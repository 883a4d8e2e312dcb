//! The checks every kernel runs, each in its own module, and the runner
//! that prints `[ ok ] name: detail` / `[FAIL] name: reason` and the
//! summary.  A kernel adds its own (SMP, say) through [`run_all`]'s
//! `arch_checks`, which runs them with the same [`Tally`].

use alloc::string::String;
use alloc::vec::Vec;

use hartalloc::HartAlloc;

use crate::clock::Clock;
use crate::dtb::{MachineInfo, Range, Reserved};
use crate::println;

pub mod bad_input;
pub mod collections;
pub mod frames;
pub mod heap;
pub mod hello;
pub mod smp_stress;
pub mod timing;

/// What a check returns: a detail line when it passed, the reason when not.
pub type Outcome = Result<String, String>;

/// Fail the check with a formatted reason when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::__format!($($arg)*));
        }
    };
}

/// What the checks need from the kernel: its heap, its clocks, and how it
/// ends the run.
pub struct Machine {
    pub heap: &'static HartAlloc,
    pub clock: Clock,
    /// End the run with exit status 0.
    pub exit_success: fn() -> !,
    /// End the run with exit status `code` (one of the `EXIT_*` codes).
    pub exit_failure: fn(u32) -> !,
}

/// What the checks know about the machine.
pub struct Ctx<'a> {
    pub machine: &'a Machine,
    pub info: &'a MachineInfo,
    /// The ranges the heap may hand out from: RAM less the reserves (but
    /// the early range, inside the kernel image, is the heap's too).
    pub reserved: &'a [Reserved],
    pub early: Range,
}

impl Ctx<'_> {
    /// Whether `[addr, addr + len)` lies inside the heap's memory.
    pub fn in_heap(&self, addr: usize, len: usize) -> bool {
        let end = addr + len.max(1);
        let in_ram = self.info.memory.as_slice().iter().any(|m| addr >= m.start && end <= m.end());
        let in_early = addr >= self.early.start && end <= self.early.end();
        let in_reserved =
            self.reserved.iter().any(|r| addr < r.range.end() && r.range.start < end);
        in_ram && (in_early || !in_reserved)
    }
}

/// Counts the checks that passed and failed.
pub struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    /// Run one check and print its line.
    pub fn run(&mut self, name: &str, check: impl FnOnce() -> Outcome) {
        match check() {
            Ok(detail) if detail.is_empty() => {
                self.passed += 1;
                println!("[ ok ] {}", name);
            }
            Ok(detail) => {
                self.passed += 1;
                println!("[ ok ] {}: {}", name, detail);
            }
            Err(reason) => {
                self.failed += 1;
                println!("[FAIL] {}: {}", name, reason);
            }
        }
    }
}

/// Run every check, then the kernel's own (`arch_checks`, after the
/// timing figures), print the summary, end the run.
pub fn run_all(machine: &Machine, info: &MachineInfo, reserved: Vec<Reserved>, arch_checks: impl FnOnce(&mut Tally, &Ctx)) -> ! {
    let ctx = Ctx { machine, info, reserved: &reserved, early: crate::heap::early_range() };
    let mut t = Tally { passed: 0, failed: 0 };

    t.run("String/format!", hello::run);
    if info.has_arg("double-free") {
        bad_input::double_free(&ctx); // does not return
    }
    t.run("early blocks survive final_init", || hello::early_blocks(&ctx));
    let baseline = machine.heap.stats();
    t.run("heap test", || heap::run(&ctx));
    t.run("frame test", || frames::run(&ctx));
    t.run("collections: BTreeMap 100000 entries", || collections::btree(&ctx));
    t.run("collections: Vec<String> churn", collections::vec_string_churn);
    t.run("collections: Box<[u8; 8192]> and alignments up to 4096", || collections::boxes_and_alignments(&ctx));
    t.run("collections: realloc growth", || collections::realloc_growth(&ctx));
    timing::report(&ctx);
    arch_checks(&mut t, &ctx);
    t.run("ha_check after all checks", || heap::check_clean(&ctx));
    t.run("no leaks (stats back to baseline)", || heap::no_leaks(&ctx, &baseline));

    // The reserved-range list came from the early allocator: freeing it
    // now exercises an early block's free after the switch.
    drop(reserved);
    let s = machine.heap.stats();
    println!(
        "kernel: {} checks passed, {} failed; stats: bytes used {} peak {} of {} MiB, pages used {} peak {} of {}, \
         allocs {} frees {} page allocs {} page frees {} failures {}",
        t.passed,
        t.failed,
        s.bytes_used,
        s.bytes_peak,
        s.bytes_total >> 20,
        s.pages_used,
        s.pages_peak,
        s.pages_total,
        s.allocs,
        s.frees,
        s.page_allocs,
        s.page_frees,
        s.failures
    );
    if t.failed == 0 {
        (machine.exit_success)()
    } else {
        (machine.exit_failure)(crate::EXIT_CHECKS_FAILED)
    }
}
