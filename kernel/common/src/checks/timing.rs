//! Cost of an alloc/free pair on one CPU, for information (QEMU's clocks
//! are not a real machine's: the timer is wall time, the cycle counter not
//! cycles).

use alloc::alloc::{alloc, dealloc, Layout};

use super::Ctx;
use crate::println;

const PAIRS: u64 = 20_000;

pub fn report(ctx: &Ctx) {
    let clock = &ctx.machine.clock;
    for size in [16usize, 64, 256, 1024, 4096, 32 << 10, 256 << 10] {
        let layout = Layout::from_size_align(size, 8).expect("valid layout");
        let (t0, c0) = ((clock.now)(), (clock.cycles)());
        let n = if size > 4096 { PAIRS / 10 } else { PAIRS };
        for _ in 0..n {
            // SAFETY: non-zero size; the block is freed with its layout.
            unsafe {
                let p = core::hint::black_box(alloc(layout));
                if p.is_null() {
                    println!("info: alloc+free of {} bytes: out of memory", size);
                    return;
                }
                dealloc(p, layout);
            }
        }
        let (dt, dc) = ((clock.now)() - t0, (clock.cycles)() - c0);
        println!(
            "info: alloc+free of {:>6} B: {:>5} ns, {:>5} cycles per pair ({} pairs, {})",
            size,
            clock.ticks_to_ns(dt) / n,
            dc / n,
            n,
            clock.sources
        );
    }
}
