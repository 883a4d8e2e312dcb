//! The set-up a kernel goes through, as a std program: the heap starts on an
//! early range only (std's first allocations come from it), then RAM
//! "found in the device tree" is added with a reserved hole, then
//! final_init.  Runs alone (no libtest threads), so statistics are checked
//! exactly.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use hartalloc::{Error, HartAlloc, Platform, PAGE_SIZE};

mod common;
use common::Arena;

const EARLY_SIZE: usize = 8 << 20;
const RAM_SIZE: usize = 64 << 20;
const SPARE_SIZE: usize = 96 << 20;
static EARLY: Arena<EARLY_SIZE> = Arena::new();
static RAM: Arena<RAM_SIZE> = Arena::new();
static SPARE: Arena<SPARE_SIZE> = Arena::new();

/// The "device tree blob" inside RAM, which the heap must never hand out.
const HOLE_OFFSET: usize = 16 << 20;
const HOLE_SIZE: usize = 64 << 10;

#[global_allocator]
static HEAP: HartAlloc = HartAlloc::with_init(|heap| {
    hartalloc::set_platform(&Platform::PER_THREAD);
    // SAFETY: EARLY is a static that nothing else uses.
    unsafe { heap.early_init(EARLY.base(), EARLY_SIZE) };
});

static CHECKS: AtomicUsize = AtomicUsize::new(0);

macro_rules! check {
    ($cond:expr $(, $($fmt:tt)*)?) => {{
        assert!($cond $(, $($fmt)*)?);
        CHECKS.fetch_add(1, Ordering::Relaxed);
    }};
}

fn main() {
    early_phase_then_final();
    exact_statistics();
    pages_never_come_from_the_reserved_hole();
    threads_then_a_full_check();
    oom_handler_adds_memory();
    hooks_follow_the_platform();
    println!("lifecycle: {} checks passed", CHECKS.load(Ordering::Relaxed));
}

fn early_phase_then_final() {
    let s = HEAP.stats();
    check!(s.early_used > 0, "std's start-up allocations came from the early range: {s:?}");
    check!(s.pages_total == 0, "no page allocator before final_init: {s:?}");

    let early_box = Box::new([7u8; 1000]);
    let early_vec: Vec<u32> = (0..5000).collect();
    let early_addr = &*early_box as *const _ as usize;
    check!((early_addr - EARLY.base()) < EARLY_SIZE);

    // SAFETY: RAM is a static that nothing else uses; the hole is reserved
    // before final_init builds the region.
    unsafe {
        HEAP.add_region(RAM.base(), RAM_SIZE).expect("add_region");
        HEAP.reserve(RAM.base() + HOLE_OFFSET, HOLE_SIZE).expect("reserve");
        check!(HEAP.add_region(0, PAGE_SIZE) == Err(Error::InvalidArgument));
        let r = HEAP.add_region(RAM.base() + (1 << 20), 1 << 20);
        check!(r == Err(Error::Overlap), "overlapping add_region: {r:?}");
    }
    HEAP.final_init().expect("final_init");
    check!(HEAP.final_init() == Err(Error::WrongPhase));
    check!(Error::WrongPhase.code() == hartalloc::sys::HA_ESTATE);

    // Early blocks stay valid and can be freed after the switch.
    check!(early_box.iter().all(|&b| b == 7));
    check!(early_vec.iter().enumerate().all(|(i, &x)| x == i as u32));
    drop(early_box);
    drop(early_vec);

    let late = Box::new(42u64);
    let late_addr = &*late as *const u64 as usize;
    check!(late_addr.wrapping_sub(RAM.base()) < RAM_SIZE || late_addr.wrapping_sub(EARLY.base()) < EARLY_SIZE);
    let s = HEAP.stats();
    check!(s.pages_total > 0 && s.bytes_total >= RAM_SIZE, "{s:?}");
    HEAP.check().expect("consistent after final_init");
}

fn exact_statistics() {
    let layout = Layout::from_size_align(100, 8).unwrap();
    let s0 = HEAP.stats();
    // SAFETY: nonzero size; freed below with the same layout.
    let p = unsafe { HEAP.alloc(layout) };
    check!(!p.is_null());
    let s1 = HEAP.stats();
    // SAFETY: p is a live block.
    let usable = unsafe { HEAP.usable_size(p) };
    check!(usable >= 100);
    check!(s1.allocs == s0.allocs + 1, "{s0:?} -> {s1:?}");
    if cfg!(feature = "checked") {
        // The checked build counts its red zone as used too.
        check!(s1.bytes_used >= s0.bytes_used + usable);
    } else {
        check!(s1.bytes_used == s0.bytes_used + usable, "{s0:?} -> {s1:?}, usable {usable}");
    }
    check!(s1.bytes_peak >= s1.bytes_used);
    // SAFETY: p was allocated with layout.
    unsafe { HEAP.dealloc(p, layout) };
    let s2 = HEAP.stats();
    check!(s2.frees == s1.frees + 1);
    check!(s2.bytes_used == s0.bytes_used, "{s0:?} -> {s2:?}");

    let pages = HEAP.alloc_pages(3, 0).expect("3 pages");
    let s3 = HEAP.stats();
    check!(s3.page_allocs == s2.page_allocs + 1);
    check!(s3.pages_used == s2.pages_used + 3, "{s2:?} -> {s3:?}");
    check!(s3.pages_free + 3 == s2.pages_free);
    drop(pages);
    let s4 = HEAP.stats();
    check!(s4.page_frees == s3.page_frees + 1);
    check!(s4.pages_used == s2.pages_used && s4.pages_free == s2.pages_free, "{s2:?} -> {s4:?}");

    // A failed allocation is counted and leaves the heap usable.
    let huge = Layout::from_size_align(1 << 40, 8).unwrap();
    // SAFETY: nonzero size.
    check!(unsafe { HEAP.alloc(huge) }.is_null());
    check!(HEAP.stats().failures == s4.failures + 1);
    check!(HEAP.alloc_pages(1, 0).is_some());
}

fn pages_never_come_from_the_reserved_hole() {
    let hole = RAM.base() + HOLE_OFFSET..RAM.base() + HOLE_OFFSET + HOLE_SIZE;
    let mut all = Vec::with_capacity(RAM_SIZE / PAGE_SIZE);
    while let Some(p) = HEAP.alloc_pages(1, 0) {
        assert!(!hole.contains(&p.addr()), "page {:#x} inside the reserved hole", p.addr());
        all.push(p);
    }
    check!(all.len() > (RAM_SIZE - (EARLY_SIZE + (1 << 20))) / PAGE_SIZE / 2, "only {} pages", all.len());
    let before = HEAP.stats();
    let n = all.len();
    // Also frees the Vec's own buffer, a large block on pages of its own.
    drop(all);
    let after = HEAP.stats();
    check!(after.pages_used + n <= before.pages_used, "{n} pages: {before:?} -> {after:?}");
    check!(after.page_frees == before.page_frees + n as u64);
    HEAP.check().expect("consistent after exhausting the pages");
}

fn threads_then_a_full_check() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                let mut v: Vec<Box<[u8]>> = Vec::new();
                for i in 0..2000usize {
                    v.push(vec![t as u8; 1 + (i * 37) % 3000].into_boxed_slice());
                    if i % 3 == 0 {
                        v.swap_remove(i % v.len());
                    }
                }
                v
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (t, v) in results.iter().enumerate() {
        check!(v.iter().all(|b| b.iter().all(|&x| x == t as u8)));
    }
    // Dropped on this thread: every block goes back across CPUs.
    drop(results);
    HEAP.check().expect("consistent after threads and cross-thread frees");
}

static OOM_CALLS: AtomicUsize = AtomicUsize::new(0);

fn add_spare(bytes: usize, _align: usize) -> bool {
    if OOM_CALLS.fetch_add(1, Ordering::Relaxed) > 0 || bytes > SPARE_SIZE {
        return false;
    }
    // SAFETY: SPARE is a static nothing else uses, given to the heap once.
    unsafe { HEAP.add_region_zeroed(SPARE.base(), SPARE_SIZE) }.is_ok()
}

fn oom_handler_adds_memory() {
    HEAP.set_oom_handler(Some(add_spare));
    // More than RAM holds: only the spare region can serve it.
    let big: Vec<u8> = vec![5; 80 << 20];
    check!(OOM_CALLS.load(Ordering::Relaxed) == 1);
    check!((big.as_ptr() as usize).wrapping_sub(SPARE.base()) < SPARE_SIZE);
    check!(big[(80 << 20) - 1] == 5);
    drop(big);
    HEAP.set_oom_handler(None);
    HEAP.check().expect("consistent after the OOM handler");
}

static CPU_CALLS: AtomicUsize = AtomicUsize::new(0);
static SAVE_CALLS: AtomicUsize = AtomicUsize::new(0);
static RESTORE_CALLS: AtomicUsize = AtomicUsize::new(0);

fn counted_cpu_id() -> usize {
    CPU_CALLS.fetch_add(1, Ordering::Relaxed);
    0
}

fn counted_irq_save() -> usize {
    SAVE_CALLS.fetch_add(1, Ordering::Relaxed);
    0
}

fn counted_irq_restore(_state: usize) {
    RESTORE_CALLS.fetch_add(1, Ordering::Relaxed);
}

static COUNTED: Platform =
    Platform::SINGLE_HART.with_cpu_id(counted_cpu_id).with_irq(counted_irq_save, counted_irq_restore);
static COUNTED_CPU: Platform = Platform::SINGLE_HART.with_cpu_id(counted_cpu_id);

/// Allocations and frees of every tier, warm caches included; the calls
/// each hook got meanwhile (cpu_id, irq_save, irq_restore).
fn churn() -> [usize; 3] {
    let calls = || [&CPU_CALLS, &SAVE_CALLS, &RESTORE_CALLS].map(|c| c.load(Ordering::Relaxed));
    let before = calls();
    for _ in 0..3 {
        let v: Vec<Vec<u8>> = [24usize, 3000, 20000, 300_000].iter().map(|&n| vec![1u8; n]).collect();
        drop(HEAP.alloc_pages(1, PAGE_SIZE).expect("a page"));
        drop(v);
    }
    let after = calls();
    [0, 1, 2].map(|i| after[i] - before[i])
}

/// The C core leaves out the hooks that do nothing (all of
/// Platform::SINGLE_HART's), and calls every other: set_platform declares
/// them anew each time, in both directions.
fn hooks_follow_the_platform() {
    for round in 0..2 {
        // Every hook trivial: the C core's fast paths call none.
        hartalloc::set_platform(&Platform::SINGLE_HART);
        churn();

        hartalloc::set_platform(&COUNTED);
        let [cpu, save, restore] = churn();
        check!(cpu >= 10 && save >= 10, "round {round}: hooks called {cpu} / {save} times");
        check!(save == restore, "round {round}: {save} saves, {restore} restores");

        // Only cpu_id does something: it is called, the others not.
        hartalloc::set_platform(&COUNTED_CPU);
        let [cpu, save, restore] = churn();
        check!(cpu >= 10 && save == 0 && restore == 0, "round {round}: {cpu} / {save} / {restore} calls");
    }
    check!(HEAP.check().is_ok(), "heap consistent after the platform changes");
    hartalloc::set_platform(&Platform::PER_THREAD);
}
