//! The console: QEMU virt's PL011 UART, polled.  QEMU's model needs no
//! set-up; a real PL011 would want its baud rate and enables programmed.

use core::sync::atomic::{AtomicUsize, Ordering};

/// QEMU virt's PL011, used until the device tree names the console.
const VIRT_PL011: usize = 0x0900_0000;

const DR: usize = 0x00; // data register
const FR: usize = 0x18; // flag register
const FR_TXFF: u32 = 1 << 5; // transmit FIFO full

static BASE: AtomicUsize = AtomicUsize::new(VIRT_PL011);

/// Use the PL011 at `base` (from the device tree; 0: keep the default).
pub fn set_base(base: usize) {
    if base != 0 {
        BASE.store(base, Ordering::Relaxed);
    }
}

pub fn putchar(c: u8) {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: base is the PL011's MMIO block (QEMU virt's, or the one the
    // device tree names), identity-mapped with the MMU off; FR is read
    // only, DR takes one byte per write.
    unsafe {
        while core::ptr::read_volatile((base + FR) as *const u32) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        core::ptr::write_volatile((base + DR) as *mut u32, c as u32);
    }
}
