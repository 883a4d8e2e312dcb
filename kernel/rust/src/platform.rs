//! Ending the run, and the platform hooks the allocator calls.
//!
//! QEMU's exit status comes from the `sifive_test` device: SBI system reset
//! always exits 0, so a failure writes `(code << 16) | 0x3333` there.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sbi;

/// Exit codes of a failed run (QEMU's exit status), one per cause.
pub use crate::common::{EXIT_CHECKS_FAILED, EXIT_PANIC, EXIT_TRAP};

const TEST_PASS: u32 = 0x5555;
const TEST_FAIL: u32 = 0x3333;

/// The `sifive_test` device's address, from the device tree (0: none).
static TEST_DEVICE: AtomicUsize = AtomicUsize::new(0);

pub fn set_test_device(addr: usize) {
    TEST_DEVICE.store(addr, Ordering::Relaxed);
}

fn write_test_device(value: u32) {
    let dev = TEST_DEVICE.load(Ordering::Relaxed);
    if dev != 0 {
        // SAFETY: `dev` is the sifive_test MMIO register named by the device
        // tree (identity-mapped: no paging); writing it ends the machine.
        unsafe { core::ptr::write_volatile(dev as *mut u32, value) };
    }
}

/// End QEMU with exit status 0.
pub fn exit_success() -> ! {
    write_test_device(TEST_PASS);
    sbi::shutdown(false)
}

/// End QEMU with exit status `code` (1..=255).
pub fn exit_failure(code: u32) -> ! {
    write_test_device(((code & 0xff) << 16) | TEST_FAIL);
    // No test device: the status is lost, but the run still ends.
    sbi::shutdown(true)
}

/// `ha_platform_irq_save`: clear sstatus.SIE, return whether it was set.
pub fn irq_save() -> usize {
    let prev: usize;
    // SAFETY: reading sstatus has no side effect.
    unsafe { asm!("csrr {}, sstatus", out(reg) prev, options(nomem, nostack)) };
    // Written only when SIE is set: a CSR write costs more than a read.
    if prev & 0x2 != 0 {
        // SAFETY: clearing SIE only masks S-mode interrupts on this hart.
        unsafe { asm!("csrci sstatus, 0x2", options(nomem, nostack)) };
    }
    prev & 0x2
}

/// `ha_platform_irq_restore`: set SIE again if `state` says it was set.
pub fn irq_restore(state: usize) {
    if state & 0x2 != 0 {
        // SAFETY: restores the interrupt enable this hart had before
        // irq_save; the kernel's trap vector is installed.
        unsafe { asm!("csrsi sstatus, 0x2", options(nomem, nostack)) };
    }
}
