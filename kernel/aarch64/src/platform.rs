//! Ending the run, and the platform hooks the allocator calls.
//!
//! Success: PSCI SYSTEM_OFF, through the conduit the device tree names
//! (`/psci` `method`: hvc on QEMU virt at EL1); QEMU then exits with 0.
//! PSCI has no way to carry a status, so a failure goes through Arm
//! semihosting instead: SYS_EXIT_EXTENDED with ADP_Stopped_ApplicationExit
//! and the code makes QEMU exit with that code (QEMU 7.2, verified; needs
//! `-semihosting`, which kernel/run-qemu.sh passes for aarch64).  Without
//! semihosting the `hlt` traps: the status cannot be told, so the kernel
//! says so and halts, and the runner's timeout fails the run.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub use crate::common::{EXIT_CHECKS_FAILED, EXIT_PANIC, EXIT_TRAP};

const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
const PSCI_CPU_ON: u64 = 0xc400_0003; // SMC64
const SEMIHOSTING_SYS_EXIT_EXTENDED: u64 = 0x20;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// Whether PSCI calls use `smc` (the device tree says "smc") or `hvc`.
static PSCI_SMC: AtomicBool = AtomicBool::new(false);
/// The failure being reported (0: none yet): a trap in the semihosting
/// call comes back here and must not try again.
static EXITING: AtomicU32 = AtomicU32::new(0);

/// The PSCI conduit, from `/psci` `method`.
pub fn set_psci_method(method: &str) {
    PSCI_SMC.store(method == "smc", Ordering::Relaxed);
}

/// PSCI CPU_ON: start the CPU with affinity `mpidr` at `entry`, x0 =
/// `context`.  Returns 0 or PSCI's (negative) error code.
pub fn psci_cpu_on(mpidr: usize, entry: usize, context: usize) -> i64 {
    let ret: i64;
    // SAFETY: CPU_ON starts another CPU at `entry` (the kernel's secondary
    // entry, with its own stack in `context`); it writes only x0 here.
    unsafe {
        if PSCI_SMC.load(Ordering::Relaxed) {
            asm!("smc #0", inlateout("x0") PSCI_CPU_ON as i64 => ret, in("x1") mpidr, in("x2") entry, in("x3") context,
                 options(nostack));
        } else {
            asm!("hvc #0", inlateout("x0") PSCI_CPU_ON as i64 => ret, in("x1") mpidr, in("x2") entry, in("x3") context,
                 options(nostack));
        }
    }
    ret
}

/// End QEMU with exit status 0.
pub fn exit_success() -> ! {
    let _ret: u64;
    // SAFETY: PSCI SYSTEM_OFF does not return on success; on failure it
    // returns an error code in x0 and has touched nothing else.
    unsafe {
        if PSCI_SMC.load(Ordering::Relaxed) {
            asm!("smc #0", inlateout("x0") PSCI_SYSTEM_OFF => _ret, options(nostack));
        } else {
            asm!("hvc #0", inlateout("x0") PSCI_SYSTEM_OFF => _ret, options(nostack));
        }
    }
    crate::println_force!("[FAIL] PSCI SYSTEM_OFF returned: halting");
    halt()
}

/// End QEMU with exit status `code` (1..=255).
pub fn exit_failure(code: u32) -> ! {
    let first = EXITING.swap(code.max(1), Ordering::AcqRel);
    if first != 0 {
        // The semihosting call itself trapped: QEMU runs without it.
        crate::println_force!("kernel: no semihosting (QEMU -semihosting): exit status {} cannot be reported; halting", first);
        halt()
    }
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, code as u64];
    // SAFETY: the semihosting call reads the two-word parameter block at
    // x1 (alive on this stack) and ends QEMU; it writes no memory.
    unsafe {
        asm!("hlt #0xf000", inlateout("x0") SEMIHOSTING_SYS_EXIT_EXTENDED => _,
             in("x1") block.as_ptr(), options(nostack, readonly));
    }
    crate::println_force!("kernel: semihosting exit returned; halting");
    halt()
}

fn halt() -> ! {
    loop {
        // SAFETY: waits for an event; no state changes.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
}

/// This CPU's index: MPIDR_EL1 affinity 0 (QEMU virt numbers its CPUs
/// 0..N-1 there).  Only CPU 0 runs kernel code.
pub fn cpu_id() -> usize {
    let mpidr: u64;
    // SAFETY: reads a system register; no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack, preserves_flags)) };
    (mpidr & 0xff) as usize
}

/// `ha_platform_irq_save`: mask D, A, I and F; return the previous DAIF.
pub fn irq_save() -> usize {
    let daif: usize;
    // SAFETY: masking exceptions on this CPU has no other effect.
    unsafe { asm!("mrs {}, daif", "msr daifset, #0xf", out(reg) daif, options(nomem, nostack, preserves_flags)) };
    daif
}

/// `ha_platform_irq_restore`: DAIF as `irq_save` found it.
pub fn irq_restore(daif: usize) {
    // SAFETY: restores the mask bits this CPU had before irq_save; the
    // vectors are installed.
    unsafe { asm!("msr daif, {}", in(reg) daif, options(nomem, nostack, preserves_flags)) };
}
