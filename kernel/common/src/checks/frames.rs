//! The page allocator: a freed frame is reused, and aligned contiguous runs.

use alloc::format;

use hartalloc::{Pages, PAGE_SIZE};

use super::{Ctx, Outcome};
use crate::ensure;

pub fn run(ctx: &Ctx) -> Outcome {
    let heap = ctx.machine.heap;
    let before = heap.stats();

    let f1 = heap.alloc_pages(1, PAGE_SIZE).ok_or("frame 1: out of memory")?;
    let f2 = heap.alloc_pages(1, PAGE_SIZE).ok_or("frame 2: out of memory")?;
    let a1 = f1.as_ptr() as usize;
    let a2 = f2.as_ptr() as usize;
    ensure!(a1 != a2, "frames 1 and 2 are both {:#x}", a1);
    ensure!(ctx.in_heap(a1, PAGE_SIZE) && ctx.in_heap(a2, PAGE_SIZE), "frames outside the heap");
    drop(f1);
    let f3 = heap.alloc_pages(1, PAGE_SIZE).ok_or("frame 3: out of memory")?;
    let a3 = f3.as_ptr() as usize;
    ensure!(a3 == a1, "frame 3 at {:#x}, frame 1 was at {:#x}", a3, a1);
    drop(f2);
    drop(f3);

    // Runs of (pages, alignment): each aligned, inside the heap, disjoint
    // from the others, every page writable.
    let shapes: [(usize, usize); 6] =
        [(16, 64 << 10), (1, 4 << 10), (3, 16 << 10), (64, 256 << 10), (256, 1 << 20), (512, 2 << 20)];
    // A fixed array, not a Vec: the byte allocator taking pages for it
    // would blur the page figures compared below.
    let mut runs: [Option<Pages>; 6] = Default::default();
    for (i, &(count, align)) in shapes.iter().enumerate() {
        let p = heap
            .alloc_pages(count, align)
            .ok_or(format!("{} pages at {} KiB: out of memory", count, align >> 10))?;
        let base = p.as_ptr() as usize;
        ensure!(base.is_multiple_of(align), "{} pages at {} KiB alignment: got {:#x}", count, align >> 10, base);
        ensure!(ctx.in_heap(base, count * PAGE_SIZE), "run at {:#x} outside the heap", base);
        for q in runs.iter().flatten() {
            let (qb, qn) = (q.as_ptr() as usize, q.count());
            ensure!(base + count * PAGE_SIZE <= qb || qb + qn * PAGE_SIZE <= base, "runs overlap at {:#x}", base);
        }
        for page in 0..count {
            // SAFETY: the page lies inside the run just allocated.
            unsafe { ((base + page * PAGE_SIZE) as *mut u64).write_volatile((i * 1000 + page) as u64) };
        }
        runs[i] = Some(p);
    }
    for (i, p) in runs.iter().enumerate() {
        let Some(p) = p else { continue };
        let base = p.as_ptr() as usize;
        for page in 0..p.count() {
            // SAFETY: reads back what was written into the live run.
            let v = unsafe { ((base + page * PAGE_SIZE) as *const u64).read_volatile() };
            ensure!(v == (i * 1000 + page) as u64, "run {} page {} reads {} (overwritten)", i, page, v);
        }
    }
    let first = runs[0].as_ref().map_or(0, |p| p.addr());
    drop(runs);

    let after = heap.stats();
    ensure!(
        after.pages_used == before.pages_used,
        "pages used {} after freeing, {} before",
        after.pages_used,
        before.pages_used
    );
    Ok(format!(
        "frame 1 {:#x}, frame 2 {:#x}, frame 3 {:#x} (= frame 1); 16 pages at 64 KiB: {:#x}; {} run shapes",
        a1,
        a2,
        a3,
        first,
        shapes.len()
    ))
}
