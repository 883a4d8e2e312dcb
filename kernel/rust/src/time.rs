//! Clocks readable in S-mode.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

static TIMEBASE_HZ: AtomicU64 = AtomicU64::new(10_000_000);

pub fn set_timebase(hz: u64) {
    if hz != 0 {
        TIMEBASE_HZ.store(hz, Ordering::Relaxed);
    }
}

pub fn timebase() -> u64 {
    TIMEBASE_HZ.load(Ordering::Relaxed)
}

/// The platform timer (`time` CSR), `timebase()` ticks per second.
#[inline]
pub fn rdtime() -> u64 {
    let t: u64;
    // SAFETY: reading the time CSR has no side effects.
    unsafe { asm!("rdtime {}", out(reg) t, options(nomem, nostack)) };
    t
}

/// The hart's cycle counter (under QEMU without -icount, not a real
/// cycle count: information only).
#[inline]
pub fn rdcycle() -> u64 {
    let c: u64;
    // SAFETY: reading the cycle CSR has no side effects.
    unsafe { asm!("rdcycle {}", out(reg) c, options(nomem, nostack)) };
    c
}

/// Nanoseconds from a tick count (the benchmark's; the checks use the
/// shared `Clock`).
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
pub fn ticks_to_ns(ticks: u64) -> u64 {
    ((ticks as u128) * 1_000_000_000 / timebase() as u128) as u64
}

/// Milliseconds from a tick count.
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
pub fn ticks_to_ms(ticks: u64) -> u64 {
    ticks_to_ns(ticks) / 1_000_000
}
