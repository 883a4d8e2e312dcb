//! A minimal no_std aarch64 kernel for QEMU `virt` that runs on hartalloc.
//!
//! Boot at EL1 on CPU 0, find the device tree at the start of RAM, start
//! the heap (early -> the tree's RAM less the tree and the image -> final),
//! start the other CPUs, run the checks shared with the RISC-V kernel
//! (String, Box, Vec, BTreeMap, pages, ha_check, leaks, the SMP stress on
//! every CPU), print a summary
//! and end QEMU with the verdict as its exit status: 0 through PSCI
//! SYSTEM_OFF, a failure code through semihosting.  The command line
//! (`-append`) selects `double-free`: the deliberate bad free that must end
//! in a panic carrying the allocator's message.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod boot;
mod machine;
mod platform;
mod smp;
mod time;
mod uart;

use alloc::format;
use core::panic::PanicInfo;

use hartalloc::{HartAlloc, Platform};
use hartalloc_kernel_common as common;

use common::checks::{smp_stress, Machine};
use common::clock::Clock;
use common::{dtb, ensure, println, println_force};

/// What the allocator calls back into: CPU index, interrupt masking (DAIF);
/// faults stay panics carrying the C core's message.
static PLATFORM: Platform = Platform::SINGLE_HART
    .with_cpu_id(platform::cpu_id)
    .with_irq(platform::irq_save, platform::irq_restore);

#[global_allocator]
static HEAP: HartAlloc = HartAlloc::with_platform(&PLATFORM);

/// CPU 0, from `_start`: x0 as QEMU left it.
pub extern "C" fn boot_main(x0: usize) -> ! {
    common::console::init(uart::putchar, platform::cpu_id);
    println!();
    let dtb_addr = machine::find_dtb(x0);
    println!("hartalloc kernel (Rust, aarch64): cpu {} at EL{}, x0 {:#x}, device tree at {:#x}", platform::cpu_id(), current_el(), x0, dtb_addr);
    if dtb_addr == 0 {
        println!("[FAIL] no device tree in x0 or at {:#x} (link the kernel above 0x40100000)", machine::VIRT_DTB);
        platform::exit_failure(platform::EXIT_CHECKS_FAILED);
    }

    // SAFETY: QEMU wrote a valid tree there (its magic was checked), and
    // the heap's start-up reserves it, so it stays intact for the kernel's
    // whole life.
    let info = match unsafe { dtb::parse(dtb_addr) } {
        Ok(i) => i,
        Err(e) => {
            println!("[FAIL] device tree at {:#x}: {}", dtb_addr, e);
            platform::exit_failure(platform::EXIT_CHECKS_FAILED);
        }
    };
    // SAFETY: the same tree, as above.
    if let Some(arm) = unsafe { machine::parse(dtb_addr) } {
        uart::set_base(arm.uart);
        platform::set_psci_method(arm.psci_method);
        println!("dtb: pl011 at {:#x}, psci method \"{}\"", arm.uart, arm.psci_method);
    }
    for m in info.memory.as_slice() {
        println!("dtb: memory {:#x}..{:#x} ({} MiB)", m.start, m.end(), m.len >> 20);
    }
    let pmu = time::start_cycle_counter();
    println!(
        "dtb: {} cpus {:?}, bootargs \"{}\", rng-seed {} bytes",
        info.harts.len(),
        info.harts.as_slice(),
        info.bootargs,
        info.rng_seed.len()
    );
    println!("time: generic timer {} Hz, cycle counter: {}", time::timer_hz(), if pmu { "PMU pmccntr_el0" } else { "none (timer)" });
    if info.memory.overflow + info.reserved.overflow + info.harts.overflow > 0 {
        println!("dtb: warning: tables full, some entries ignored");
    }

    if !info.rng_seed.is_empty() {
        println!("heap: keying the secret with {} bytes of /chosen/rng-seed", info.rng_seed.len());
    }
    let reserved = match common::heap::start(&HEAP, &PLATFORM, &info) {
        Ok(r) => r,
        Err(e) => {
            println!("[FAIL] heap init: {}", e);
            platform::exit_failure(platform::EXIT_CHECKS_FAILED);
        }
    };

    let (up, wanted) = smp::start_secondaries(info.harts.as_slice(), 2000);
    println!("smp: {} of {} cpus online", up, wanted);

    let machine = Machine {
        heap: &HEAP,
        clock: Clock {
            now: time::now,
            cycles: time::cycles,
            hz: time::timer_hz(),
            sources: if pmu { "cntvct/pmccntr" } else { "cntvct/cntvct" },
        },
        exit_success: platform::exit_success,
        exit_failure: platform::exit_failure,
    };
    common::checks::run_all(&machine, &info, reserved, |t, ctx| {
        let cpus = smp::online();
        t.run("all cpus started", || {
            ensure!(cpus == wanted, "{} of {} cpus came up", cpus, wanted);
            Ok(format!("{} of {}", cpus, wanted))
        });
        t.run(&format!("smp stress on {} cpus", cpus), || smp_stress::run(ctx, smp::run_on_all, cpus));
    })
}

/// The exception level this code runs at (1 under QEMU virt without
/// `virtualization=on`).
fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reads a system register; no side effects.
    unsafe { core::arch::asm!("mrs {}, currentel", out(reg) el, options(nomem, nostack, preserves_flags)) };
    (el >> 2) & 3
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    common::console::report_panic(info, "cpu", platform::cpu_id());
    platform::exit_failure(platform::EXIT_PANIC)
}
