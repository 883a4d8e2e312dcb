//! All harts at once: random allocations and frees of random sizes and
//! alignments, page runs, and blocks freed by another hart than the one
//! that allocated them (sent through per-hart mailboxes).
//!
//! Every block carries a header (its size and alignment, so the receiving
//! hart can free it with the right layout) and a fill pattern derived from
//! its address; a block that changed between its allocation and its free
//! is reported.

use alloc::alloc::{alloc, dealloc, Layout};
use alloc::format;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hartalloc::PAGE_SIZE;

use super::{Ctx, Outcome};
use crate::dtb::MAX_HARTS;
use crate::rng::Rng;
use crate::smp::Barrier;
use crate::{ensure, println};

const OPS_PER_HART: usize = 40_000;
const SLOTS: usize = 128;
const MAILBOX: usize = 32;
const SEED_BASE: u64 = 0x4A52_7A11_0C00;

static MAILBOXES: [[AtomicUsize; MAILBOX]; MAX_HARTS] =
    [const { [const { AtomicUsize::new(0) }; MAILBOX] }; MAX_HARTS];
static BARRIER: Barrier = Barrier::new();
static HARTS: AtomicUsize = AtomicUsize::new(1);
/// The kernel's timer (`Clock::now`, a `fn() -> u64`), for the jobs: a
/// job is a plain `fn(usize)` and cannot capture it.
static NOW: AtomicUsize = AtomicUsize::new(0);

fn now() -> u64 {
    let f = NOW.load(Ordering::Acquire);
    // SAFETY: run() stores a `fn() -> u64` before any job starts, and
    // NOW never holds anything else once a job runs.
    let f: fn() -> u64 = unsafe { core::mem::transmute::<usize, fn() -> u64>(f) };
    f()
}

/// The first bad block seen: what, where, its size and alignment, and the
/// first byte found wrong (0: none yet).
static FIRST_BAD: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];

const BAD_MISALIGNED: usize = 1;
const BAD_CONTENT: usize = 2;
const BAD_HEADER: usize = 3;
const BAD_PAGES: usize = 4;

fn report_bad(res: &HartResult, what: usize, ptr: usize, size: usize, align: usize, at: usize) {
    res.corrupt.fetch_add(1, Ordering::Relaxed);
    if FIRST_BAD[0].compare_exchange(0, what, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
        FIRST_BAD[1].store(ptr, Ordering::Relaxed);
        FIRST_BAD[2].store(size, Ordering::Relaxed);
        FIRST_BAD[3].store(align, Ordering::Relaxed);
        FIRST_BAD[4].store(at, Ordering::Release);
    }
}

fn describe_bad() -> alloc::string::String {
    let what = match FIRST_BAD[0].load(Ordering::Acquire) {
        BAD_MISALIGNED => "misaligned",
        BAD_CONTENT => "content changed",
        BAD_HEADER => "header changed",
        BAD_PAGES => "page run changed",
        _ => return alloc::string::String::new(),
    };
    format!(
        "; first: {} at {:#x} (size {}, align {}, byte {:#x})",
        what,
        FIRST_BAD[1].load(Ordering::Relaxed),
        FIRST_BAD[2].load(Ordering::Relaxed),
        FIRST_BAD[3].load(Ordering::Relaxed),
        FIRST_BAD[4].load(Ordering::Relaxed)
    )
}

/// Per-hart results, written by each hart, read by the boot hart after
/// the job.
struct HartResult {
    ops: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    pages: AtomicU64,
    corrupt: AtomicU64,
    nulls: AtomicU64,
    start: AtomicU64,
    end: AtomicU64,
}

static RESULTS: [HartResult; MAX_HARTS] = [const {
    HartResult {
        ops: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        pages: AtomicU64::new(0),
        corrupt: AtomicU64::new(0),
        nulls: AtomicU64::new(0),
        start: AtomicU64::new(0),
        end: AtomicU64::new(0),
    }
}; MAX_HARTS];

#[derive(Clone, Copy)]
enum Block {
    Empty,
    Bytes { ptr: usize, layout: Layout },
    Pages { ptr: usize, count: usize },
}

/// Size and alignment at the start of every block; blocks are larger, so
/// the pattern (last byte included) never overlaps it.
const HEADER: usize = 16;

fn pattern(addr: usize) -> u8 {
    ((addr >> 4) ^ (addr >> 12)) as u8 | 1
}

/// Write the header and the pattern: all of a small block, every 64th
/// byte and the last of a large one (filling megabytes would measure
/// memset, not the allocator).
///
/// # Safety
/// `ptr` points to `layout.size() >= HEADER` writable bytes.
unsafe fn fill(ptr: usize, layout: Layout) {
    let p = ptr as *mut u8;
    let size = layout.size();
    // SAFETY: the caller guarantees `size` writable bytes at ptr, aligned
    // to at least 8 (every layout used here is).
    unsafe {
        (p as *mut usize).write(size);
        (p as *mut usize).add(1).write(layout.align());
        let step = if size <= 512 { 1 } else { 64 };
        let mut i = HEADER;
        while i < size {
            p.add(i).write(pattern(ptr + i));
            i += step;
        }
        p.add(size - 1).write(pattern(ptr + size - 1));
    }
}

/// Check what `fill` wrote; read the layout back from the header.
///
/// # Safety
/// `ptr` is a live block written by `fill`.
unsafe fn verify(ptr: usize) -> Result<Layout, usize> {
    let p = ptr as *const u8;
    // SAFETY: the block is live and starts with its header.
    let (size, align) = unsafe { ((p as *const usize).read(), (p as *const usize).add(1).read()) };
    let layout = Layout::from_size_align(size, align).map_err(|_| ptr)?;
    let step = if size <= 512 { 1 } else { 64 };
    let mut i = HEADER;
    while i < size {
        // SAFETY: i < size, inside the live block.
        if unsafe { p.add(i).read() } != pattern(ptr + i) {
            return Err(ptr + i);
        }
        i += step;
    }
    // SAFETY: size - 1 is the block's last byte.
    if unsafe { p.add(size - 1).read() } != pattern(ptr + size - 1) {
        return Err(ptr + size - 1);
    }
    Ok(layout)
}

fn random_layout(rng: &mut Rng) -> Layout {
    let r = rng.below(100);
    let size = match r {
        0..70 => rng.range(HEADER + 1, 256),
        70..90 => rng.range(257, 4096),
        90..98 => rng.range(4097, 64 << 10),
        _ => rng.range(64 << 10, 256 << 10),
    };
    let align = if rng.below(10) == 0 { 1 << rng.range(3, 12) } else { 8 << rng.below(2) };
    Layout::from_size_align(size, align).expect("valid layout")
}

fn free_block(b: Block, res: &HartResult) {
    match b {
        Block::Empty => {}
        Block::Bytes { ptr, layout } => {
            // SAFETY: ptr is a live block this hart allocated with `layout`
            // and filled.
            match unsafe { verify(ptr) } {
                Ok(l) if l == layout => {}
                Ok(_) => report_bad(res, BAD_HEADER, ptr, layout.size(), layout.align(), ptr),
                Err(at) => report_bad(res, BAD_CONTENT, ptr, layout.size(), layout.align(), at),
            }
            // SAFETY: freed once, with the layout it was allocated with.
            unsafe { dealloc(ptr as *mut u8, layout) };
        }
        Block::Pages { ptr, count } => {
            // SAFETY: the run's first word was written at allocation.
            if unsafe { (ptr as *const usize).read() } != ptr ^ count {
                report_bad(res, BAD_PAGES, ptr, count * PAGE_SIZE, PAGE_SIZE, ptr);
            }
            // SAFETY: a live run of `count` pages from ha_alloc_pages.
            unsafe { hartalloc::sys::ha_free_pages(ptr as *mut _, count) };
        }
    }
}

/// Free what other harts sent this one.
fn drain_mailbox(me: usize, res: &HartResult) {
    for slot in &MAILBOXES[me] {
        let ptr = slot.swap(0, Ordering::Acquire);
        if ptr == 0 {
            continue;
        }
        // SAFETY: a sender put a live, filled block here and gave it up.
        match unsafe { verify(ptr) } {
            // SAFETY: the layout is the one the block was allocated with.
            Ok(layout) => unsafe { dealloc(ptr as *mut u8, layout) },
            Err(at) => {
                // The header itself may be damaged: leak rather than free
                // with a wrong layout.
                report_bad(res, BAD_CONTENT, ptr, 0, 0, at);
            }
        }
        res.received.fetch_add(1, Ordering::Relaxed);
    }
}

/// Give `ptr` to another hart; false when its mailbox is full.
fn send(to: usize, ptr: usize) -> bool {
    MAILBOXES[to]
        .iter()
        .any(|slot| slot.compare_exchange(0, ptr, Ordering::Release, Ordering::Relaxed).is_ok())
}

fn hart_job(cpu: usize) {
    let harts = HARTS.load(Ordering::Relaxed);
    let res = &RESULTS[cpu];
    let seed = SEED_BASE + cpu as u64;
    let mut rng = Rng::new(seed);
    let mut slots = [Block::Empty; SLOTS];
    BARRIER.wait(harts);
    res.start.store(now(), Ordering::Relaxed);
    for op in 0..OPS_PER_HART {
        let i = rng.below(SLOTS);
        match slots[i] {
            Block::Empty if rng.below(20) == 0 => {
                let count = rng.range(1, 8);
                let align = PAGE_SIZE << rng.below(3);
                // SAFETY: plain C call; the run is freed by free_block.
                let p = unsafe { hartalloc::sys::ha_alloc_pages(count, align) } as usize;
                if p == 0 {
                    res.nulls.fetch_add(1, Ordering::Relaxed);
                } else {
                    if !p.is_multiple_of(align) {
                        report_bad(res, BAD_MISALIGNED, p, count * PAGE_SIZE, align, p);
                    }
                    // SAFETY: the run's first page is ours.
                    unsafe { (p as *mut usize).write(p ^ count) };
                    slots[i] = Block::Pages { ptr: p, count };
                    res.pages.fetch_add(1, Ordering::Relaxed);
                }
            }
            Block::Empty => {
                let layout = random_layout(&mut rng);
                // SAFETY: non-zero size (>= HEADER).
                let p = unsafe { alloc(layout) } as usize;
                if p == 0 {
                    res.nulls.fetch_add(1, Ordering::Relaxed);
                } else {
                    if !p.is_multiple_of(layout.align()) {
                        report_bad(res, BAD_MISALIGNED, p, layout.size(), layout.align(), p);
                    }
                    // SAFETY: a fresh block of layout.size() >= HEADER bytes.
                    unsafe { fill(p, layout) };
                    slots[i] = Block::Bytes { ptr: p, layout };
                }
            }
            Block::Bytes { ptr, .. } if harts > 1 && rng.below(4) == 0 => {
                // Cross-hart free: another hart frees what this one made.
                let to = (cpu + 1 + rng.below(harts - 1)) % harts;
                if send(to, ptr) {
                    res.sent.fetch_add(1, Ordering::Relaxed);
                } else {
                    free_block(slots[i], res);
                }
                slots[i] = Block::Empty;
            }
            b => {
                free_block(b, res);
                slots[i] = Block::Empty;
            }
        }
        if op % 16 == 0 {
            drain_mailbox(cpu, res);
        }
    }
    for b in slots.iter_mut() {
        free_block(*b, res);
        *b = Block::Empty;
    }
    res.end.store(now(), Ordering::Relaxed);
    res.ops.store(OPS_PER_HART as u64, Ordering::Relaxed);
    // Nobody sends after this barrier: the last drain empties every box.
    BARRIER.wait(harts);
    drain_mailbox(cpu, res);
    BARRIER.wait(harts);
}

/// Run the stress on `harts` CPUs at once through the kernel's
/// `run_on_all` (which runs `f(cpu index)` on every online CPU, the
/// caller's included, and returns when all have finished).
pub fn run(ctx: &Ctx, run_on_all: fn(fn(usize)), harts: usize) -> Outcome {
    let heap = ctx.machine.heap;
    let clock = &ctx.machine.clock;
    let before = heap.stats();
    HARTS.store(harts, Ordering::Relaxed);
    NOW.store(clock.now as usize, Ordering::Release);
    println!(
        "       {} harts x {} ops, seeds {:#x}..{:#x} (hart index i uses {:#x} + i)",
        harts,
        OPS_PER_HART,
        SEED_BASE,
        SEED_BASE + harts as u64 - 1,
        SEED_BASE
    );
    run_on_all(hart_job);

    let mut total_ops = 0;
    let (mut sent, mut received, mut corrupt, mut nulls) = (0, 0, 0, 0);
    let (mut latest_start, mut earliest_end) = (0u64, u64::MAX);
    for (i, r) in RESULTS[..harts].iter().enumerate() {
        let ops = r.ops.load(Ordering::Relaxed);
        let (s, e) = (r.start.load(Ordering::Relaxed), r.end.load(Ordering::Relaxed));
        println!(
            "       cpu {}: seed {:#x}: {} ops in {} ms ({} ns/op), {} page runs, {} sent to other harts, {} received",
            i,
            SEED_BASE + i as u64,
            ops,
            clock.ticks_to_ms(e - s),
            clock.ticks_to_ns(e - s) / ops.max(1),
            r.pages.load(Ordering::Relaxed),
            r.sent.load(Ordering::Relaxed),
            r.received.load(Ordering::Relaxed)
        );
        total_ops += ops;
        sent += r.sent.load(Ordering::Relaxed);
        received += r.received.load(Ordering::Relaxed);
        corrupt += r.corrupt.load(Ordering::Relaxed);
        nulls += r.nulls.load(Ordering::Relaxed);
        latest_start = latest_start.max(s);
        earliest_end = earliest_end.min(e);
    }
    ensure!(total_ops == (harts * OPS_PER_HART) as u64, "only {} of {} ops ran", total_ops, harts * OPS_PER_HART);
    ensure!(corrupt == 0, "{} blocks were corrupted or misaligned{}", corrupt, describe_bad());
    ensure!(nulls == 0, "{} allocations failed", nulls);
    ensure!(sent == received, "{} blocks sent to other harts, {} freed there", sent, received);
    ensure!(harts == 1 || sent > 0, "no cross-hart frees happened");
    ensure!(latest_start < earliest_end, "the harts did not run at the same time");
    if let Err(e) = heap.check() {
        return Err(format!("ha_check after the stress: {}", e));
    }
    let after = heap.stats();
    ensure!(after.bytes_used == before.bytes_used, "bytes used {} after, {} before: leaked", after.bytes_used, before.bytes_used);
    ensure!(
        after.allocs - before.allocs == after.frees - before.frees,
        "{} allocs, {} frees",
        after.allocs - before.allocs,
        after.frees - before.frees
    );
    ensure!(
        after.page_allocs - before.page_allocs == after.page_frees - before.page_frees,
        "{} page allocs, {} page frees",
        after.page_allocs - before.page_allocs,
        after.page_frees - before.page_frees
    );
    Ok(format!(
        "{} ops, {} cross-hart frees, all harts overlapped, ha_check clean, nothing leaked ({} allocs = {} frees)",
        total_ops,
        sent,
        after.allocs - before.allocs,
        after.frees - before.frees
    ))
}
