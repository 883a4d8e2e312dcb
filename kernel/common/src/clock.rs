//! A free-running counter and its rate, as the checks see the machine's
//! clocks (RISC-V `rdtime`/`rdcycle`, aarch64 `cntvct_el0`/`pmccntr_el0`).

/// The kernel's clocks.  Under QEMU neither is a real machine's: the timer
/// follows wall time, the cycle counter is not cycles (without `-icount`).
#[derive(Clone, Copy)]
pub struct Clock {
    /// The timer, `hz` ticks per second.
    pub now: fn() -> u64,
    /// A cycle counter (information only).
    pub cycles: fn() -> u64,
    pub hz: u64,
    /// How the two are read, for the printed figures ("rdtime/rdcycle").
    pub sources: &'static str,
}

impl Clock {
    /// Nanoseconds from a tick count.
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        ((ticks as u128) * 1_000_000_000 / self.hz.max(1) as u128) as u64
    }

    /// Milliseconds from a tick count.
    pub fn ticks_to_ms(&self, ticks: u64) -> u64 {
        self.ticks_to_ns(ticks) / 1_000_000
    }

    /// Milliseconds since `t0` (a value of `now`).
    pub fn ms_since(&self, t0: u64) -> u64 {
        self.ticks_to_ms((self.now)().wrapping_sub(t0))
    }
}
