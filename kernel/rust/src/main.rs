//! A no_std RISC-V kernel for QEMU `virt` that runs on hartalloc.
//!
//! Boot (OpenSBI hands over at 0x80200000), read the device tree, start the
//! heap (early -> regions and reserves -> final), start every hart, then run
//! the checks, print a summary and end QEMU with the verdict as its exit
//! status.  The command line (`-append`) selects `double-free`: the
//! deliberate bad free that must end in a panic carrying the allocator's
//! message.  Built with the `bench` feature, the kernel runs the benchmark
//! against `buddy_system_allocator` instead of the checks (`bench.rs`).

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
// The benchmark build runs no checks: their code is compiled but unused.
#![cfg_attr(feature = "bench", allow(dead_code))]

extern crate alloc;

#[cfg(feature = "bench")]
mod bench;
mod boot;
mod checks;
mod heap;
mod platform;
mod sbi;
mod smp;
mod time;

// What is not RISC-V-specific is shared with the aarch64 kernel
// (kernel/common): device-tree reading, the heap start-up, the console's
// line printing, the checks, the PRNG.  Imported under their old names.
use hartalloc_kernel_common as common;
use common::{dtb, ensure, println, println_force};
// The PRNG is the benchmark's (bench.rs: crate::rng); the checks reach it
// inside the shared crate.
#[cfg_attr(not(feature = "bench"), allow(unused_imports))]
use common::rng;

use core::panic::PanicInfo;

/// The boot hart, from `_start`: a0 = hart id, a1 = device tree.
pub extern "C" fn boot_main(hart: usize, dtb_addr: usize) -> ! {
    common::console::init(sbi::console_putchar, smp::hart_id);
    println!();
    println!("hartalloc kernel (Rust): boot hart {}, device tree at {:#x}", hart, dtb_addr);
    println!("sbi: spec version {:#x}, HSM {}", sbi::spec_version(), if sbi::has_hsm() { "present" } else { "absent" });

    // SAFETY: OpenSBI passes a valid device tree in a1, and heap::init
    // reserves it, so it stays intact for the kernel's whole life.
    let info = match unsafe { dtb::parse(dtb_addr) } {
        Ok(i) => i,
        Err(e) => {
            println!("[FAIL] device tree at {:#x}: {}", dtb_addr, e);
            platform::exit_failure(platform::EXIT_CHECKS_FAILED);
        }
    };
    platform::set_test_device(info.test_device);
    time::set_timebase(info.timebase_hz);
    for m in info.memory.as_slice() {
        println!("dtb: memory {:#x}..{:#x} ({} MiB)", m.start, m.end(), m.len >> 20);
    }
    println!(
        "dtb: {} harts {:?}, timebase {} Hz, test device {:#x}, bootargs \"{}\"",
        info.harts.len(),
        info.harts.as_slice(),
        info.timebase_hz,
        info.test_device,
        info.bootargs
    );
    if info.memory.overflow + info.reserved.overflow + info.harts.overflow > 0 {
        println!("dtb: warning: tables full, some entries ignored");
    }
    smp::init(info.harts.as_slice(), hart);

    let reserved = match heap::init(&info) {
        Ok(r) => r,
        Err(e) => {
            println!("[FAIL] heap init: {}", e);
            platform::exit_failure(platform::EXIT_CHECKS_FAILED);
        }
    };

    let up = smp::start_secondaries(2000);
    println!("smp: {} of {} harts online", up, smp::num_harts());

    #[cfg(feature = "bench")]
    {
        drop(reserved);
        bench::run(&info)
    }
    #[cfg(not(feature = "bench"))]
    checks::run_all(&info, reserved)
}

/// A secondary hart, from `_secondary_start` on its own stack.
pub extern "C" fn secondary_main(_hart: usize) -> ! {
    smp::secondary_loop()
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    common::console::report_panic(info, "hart", smp::hart_id());
    platform::exit_failure(platform::EXIT_PANIC)
}
