//! Cost of an alloc/free pair on one hart, for information (QEMU's clocks
//! are not a real machine's: rdtime is wall time, rdcycle not cycles).

use alloc::alloc::{alloc, dealloc, Layout};

use crate::{println, time};

const PAIRS: u64 = 20_000;

pub fn report() {
    for size in [16usize, 64, 256, 1024, 4096, 32 << 10, 256 << 10] {
        let layout = Layout::from_size_align(size, 8).expect("valid layout");
        let (t0, c0) = (time::rdtime(), time::rdcycle());
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
        let (dt, dc) = (time::rdtime() - t0, time::rdcycle() - c0);
        println!(
            "info: alloc+free of {:>6} B: {:>5} ns, {:>5} cycles per pair ({} pairs, rdtime/rdcycle)",
            size,
            time::ticks_to_ns(dt) / n,
            dc / n,
            n
        );
    }
}
