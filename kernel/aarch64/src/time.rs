//! Clocks readable at EL1: the generic timer's virtual count (CNTVCT_EL0,
//! CNTFRQ_EL0 ticks per second) and, when the CPU has a PMU, its cycle
//! counter (PMCCNTR_EL0; without it the timer stands in).

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

static PMU_ON: AtomicBool = AtomicBool::new(false);

/// The timer's rate in Hz.
pub fn timer_hz() -> u64 {
    let f: u64;
    // SAFETY: reads a system register; no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack, preserves_flags)) };
    f
}

/// The generic timer's virtual count.
#[inline]
pub fn now() -> u64 {
    let t: u64;
    // SAFETY: isb orders the read after earlier instructions; the read has
    // no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack, preserves_flags)) };
    t
}

/// Start the PMU's cycle counter if the CPU has a PMU (ID_AA64DFR0_EL1.
/// PMUVer neither 0 nor 0xf).  Returns whether it runs.
pub fn start_cycle_counter() -> bool {
    let dfr0: u64;
    // SAFETY: reads an ID register; no side effects.
    unsafe { asm!("mrs {}, id_aa64dfr0_el1", out(reg) dfr0, options(nomem, nostack, preserves_flags)) };
    let pmu_ver = (dfr0 >> 8) & 0xf;
    if pmu_ver == 0 || pmu_ver == 0xf {
        return false;
    }
    // SAFETY: PMCR_EL0.E (enable) and .C (reset the cycle counter), then
    // PMCNTENSET_EL0.C: only the PMU's own state changes.
    unsafe {
        asm!("msr pmcr_el0, {pmcr}", "msr pmcntenset_el0, {en}", "isb",
             pmcr = in(reg) 0b101u64, en = in(reg) 1u64 << 31, options(nomem, nostack, preserves_flags));
    }
    PMU_ON.store(true, Ordering::Relaxed);
    true
}

/// The cycle counter (the timer when there is no PMU).
#[inline]
pub fn cycles() -> u64 {
    if !PMU_ON.load(Ordering::Relaxed) {
        return now();
    }
    let c: u64;
    // SAFETY: the PMU is present and its cycle counter enabled; the read
    // has no side effects.
    unsafe { asm!("mrs {}, pmccntr_el0", out(reg) c, options(nomem, nostack, preserves_flags)) };
    c
}
