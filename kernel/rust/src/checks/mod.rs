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
    })
}
