//! Box and Vec on the heap; the heap check and the leak check.

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

use hartalloc::Stats;

use super::{Ctx, Outcome};
use crate::ensure;

pub fn run(ctx: &Ctx) -> Outcome {
    let heap = ctx.machine.heap;
    let before = heap.stats();
    let b = Box::new(5u64);
    let b_addr = &*b as *const u64 as usize;
    ensure!(*b == 5, "Box::new(5) reads back {}", *b);
    ensure!(ctx.in_heap(b_addr, 8), "Box at {:#x} is outside the heap", b_addr);

    let v: Vec<u32> = (0..500).collect();
    let v_addr = v.as_ptr() as usize;
    ensure!(v.iter().enumerate().all(|(i, &x)| x == i as u32), "Vec 0..500 does not read back");
    ensure!(ctx.in_heap(v_addr, v.len() * 4), "Vec at {:#x} is outside the heap", v_addr);
    let during = heap.stats();
    ensure!(during.bytes_used > before.bytes_used, "bytes_used did not grow ({} -> {})", before.bytes_used, during.bytes_used);

    drop(b);
    drop(v);
    let after = heap.stats();
    ensure!(
        after.bytes_used == before.bytes_used,
        "bytes_used {} after the drops, {} before",
        after.bytes_used,
        before.bytes_used
    );
    ensure!(
        after.allocs - before.allocs == after.frees - before.frees,
        "{} allocs but {} frees",
        after.allocs - before.allocs,
        after.frees - before.frees
    );
    Ok(format!(
        "Box at {:#x}, Vec at {:#x}; bytes used {} -> {} -> {}",
        b_addr, v_addr, before.bytes_used, during.bytes_used, after.bytes_used
    ))
}

pub fn check_clean(ctx: &Ctx) -> Outcome {
    match ctx.machine.heap.check() {
        Ok(()) => Ok("consistent".into()),
        Err(e) => Err(format!("{}", e)),
    }
}

/// Everything the checks allocated is freed: live bytes, block and page
/// counts are back where they were.
pub fn no_leaks(ctx: &Ctx, baseline: &Stats) -> Outcome {
    let heap = ctx.machine.heap;
    let s = heap.stats();
    let live_blocks = |s: &Stats| s.allocs as i64 - s.frees as i64;
    let live_runs = |s: &Stats| s.page_allocs as i64 - s.page_frees as i64;
    ensure!(
        s.bytes_used == baseline.bytes_used,
        "bytes used {} now, {} at the start",
        s.bytes_used,
        baseline.bytes_used
    );
    ensure!(
        live_blocks(&s) == live_blocks(baseline),
        "{} live blocks now, {} at the start",
        live_blocks(&s),
        live_blocks(baseline)
    );
    ensure!(
        live_runs(&s) == live_runs(baseline),
        "{} live page runs now, {} at the start",
        live_runs(&s),
        live_runs(baseline)
    );
    heap.trim();
    let t = heap.stats();
    Ok(format!(
        "bytes used {}, {} live blocks; pages used {} (after trim {}, at the start {})",
        s.bytes_used,
        live_blocks(&s),
        s.pages_used,
        t.pages_used,
        baseline.pages_used
    ))
}
