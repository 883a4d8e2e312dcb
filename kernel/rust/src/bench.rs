//! The in-QEMU benchmark (cargo feature `bench`): hartalloc against rCore's
//! `buddy_system_allocator` and against talc in the same boot, on the same
//! workloads, with the same seeds; it runs instead of the checks and ends
//! QEMU with exit status 0 (1 when an allocation failed or the heap is
//! inconsistent).
//!
//! hartalloc is the global allocator, set up the normal way.  Three 32 MiB
//! runs of its pages are handed to the peers: one to buddy's
//! `LockedHeap<32>` (its byte allocator), one as the frame numbers of a
//! `LockedFrameAllocator<32>` (its frame allocator, whose free lists are
//! `BTreeSet`s served by the global allocator, as in rCore), one to talc
//! behind a spin lock (`TalcLock<RawSpinlock, Manual>`, as a no_std kernel
//! registers it; talc has no page API, so its frames are 4 KiB blocks at
//! 4 KiB alignment).  All are called through the same functions
//! (`GlobalAlloc::alloc`/`dealloc`, or one frame at a time),
//! monomorphised per allocator.
//!
//! Modes, named by the command line:
//! - `icount` (QEMU `-icount shift=0`, 1 hart): `rdcycle` counts
//!   instructions, so cycles/op are exact and repeat run to run.
//! - otherwise (plain TCG, any number of harts): wall time from `rdtime`,
//!   best of `TCG_REPS`; each workload alone on 1 hart, then on all harts at
//!   once (the peer behind its spin lock, hartalloc with per-CPU caches).
//!
//! The numbers are QEMU's: the ratios peer/hartalloc (>1: hartalloc
//! faster) are the result, not the absolute figures.

use alloc::alloc::{GlobalAlloc, Layout};
use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use buddy_system_allocator::{LockedFrameAllocator, LockedHeap};
use hartalloc::{sys, PAGE_SIZE};
use spinning_top::RawSpinlock;
use talc::source::Manual;
use talc::TalcLock;

use crate::dtb::{MachineInfo, MAX_HARTS};
use crate::heap::HEAP;
use crate::rng::Rng;
use crate::smp::{self, Barrier};
use crate::{platform, println, time};

/// rCore's configuration: blocks up to 2^31 bytes.
static BUDDY: LockedHeap<32> = LockedHeap::new();
static BUDDY_FRAMES: LockedFrameAllocator<32> = LockedFrameAllocator::new();
/// talc as a kernel's global allocator would be: one heap behind a spin
/// lock, memory claimed by hand.
static TALC: TalcLock<RawSpinlock, Manual> = TalcLock::new(Manual);

/// Each peer region: 32 MiB, aligned to its size so that the buddy starts
/// with whole top-order blocks.
const PEER_REGION: usize = 32 << 20;

const SEED: u64 = 0xBE4C_0005;
/// Timed operations per hart and workload (`OPS`); the first `WARM`
/// operations of each trace run untimed, so that neither allocator is
/// measured while it first carves its memory.
/// Under -icount the counts are exact, so a short run is enough; under
/// plain TCG a run must be long against the host's scheduling (several
/// harts share few host CPUs) for the best of `TCG_REPS` to be stable.
const OPS_ICOUNT: usize = 20_000;
const OPS_TCG: usize = 100_000;
const WARM: usize = 2_000;
static OPS: AtomicUsize = AtomicUsize::new(OPS_ICOUNT);
const TCG_REPS: usize = 5;

/// One workload: what is live at once and the sizes it asks for.
#[derive(Clone, Copy)]
enum Kind {
    /// alloc then free of one size, nothing else live.
    Pairs(usize),
    /// `live` blocks; each op frees a random one and allocates a new one of
    /// a log-uniform size in `lo..=hi`.
    Churn { live: usize, lo: usize, hi: usize },
    /// `live` single-page frames, churned the same way.
    Frames { live: usize },
}

struct Workload {
    name: &'static str,
    kind: Kind,
}

const WORKLOADS: [Workload; 4] = [
    Workload { name: "alloc+free 64 B", kind: Kind::Pairs(64) },
    Workload { name: "churn 300 live, 16..4096 B", kind: Kind::Churn { live: 300, lo: 16, hi: 4096 } },
    Workload { name: "churn 32 live, 4..64 KiB", kind: Kind::Churn { live: 32, lo: 4096, hi: 64 << 10 } },
    Workload { name: "frames: 256 live 4 KiB pages", kind: Kind::Frames { live: 256 } },
];

/// An allocator under test, as static functions so that a job is a plain
/// `fn(usize)` for `smp::run_on_all`.
trait Subject {
    /// # Safety
    /// As `GlobalAlloc::alloc` (non-zero size).
    unsafe fn alloc(layout: Layout) -> *mut u8;
    /// # Safety
    /// As `GlobalAlloc::dealloc`: `ptr` came from `alloc` with `layout`.
    unsafe fn dealloc(ptr: *mut u8, layout: Layout);
    /// One page frame's address, 0 when none is left.
    fn frame_alloc() -> usize;
    /// # Safety
    /// `addr` came from `frame_alloc` and is freed once.
    unsafe fn frame_free(addr: usize);
}

struct Hart;
struct Buddy;
struct Talc;
/// The harness alone: what the loop costs without an allocator (included
/// in both allocators' figures).
struct Harness;

impl Subject for Hart {
    #[inline]
    unsafe fn alloc(layout: Layout) -> *mut u8 {
        // SAFETY: the caller keeps GlobalAlloc's contract.
        unsafe { HEAP.alloc(layout) }
    }
    #[inline]
    unsafe fn dealloc(ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller keeps GlobalAlloc's contract.
        unsafe { HEAP.dealloc(ptr, layout) }
    }
    #[inline]
    fn frame_alloc() -> usize {
        // SAFETY: plain arguments; the C core checks them.
        unsafe { sys::ha_alloc_pages(1, PAGE_SIZE) as usize }
    }
    #[inline]
    unsafe fn frame_free(addr: usize) {
        // SAFETY: the caller passes a frame from ha_alloc_pages(1), once.
        unsafe { sys::ha_free_pages(addr as *mut _, 1) }
    }
}

impl Subject for Buddy {
    #[inline]
    unsafe fn alloc(layout: Layout) -> *mut u8 {
        // SAFETY: the caller keeps GlobalAlloc's contract.
        unsafe { BUDDY.alloc(layout) }
    }
    #[inline]
    unsafe fn dealloc(ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller keeps GlobalAlloc's contract.
        unsafe { BUDDY.dealloc(ptr, layout) }
    }
    #[inline]
    fn frame_alloc() -> usize {
        BUDDY_FRAMES.lock().alloc(1).map_or(0, |f| f * PAGE_SIZE)
    }
    #[inline]
    unsafe fn frame_free(addr: usize) {
        BUDDY_FRAMES.lock().dealloc(addr / PAGE_SIZE, 1)
    }
}

/// A 4 KiB block at 4 KiB alignment: talc's nearest to a frame.
const FRAME: Layout = match Layout::from_size_align(PAGE_SIZE, PAGE_SIZE) {
    Ok(l) => l,
    Err(_) => panic!("4 KiB at 4 KiB is a valid layout"),
};

impl Subject for Talc {
    #[inline]
    unsafe fn alloc(layout: Layout) -> *mut u8 {
        // SAFETY: the caller keeps GlobalAlloc's contract.
        unsafe { TALC.alloc(layout) }
    }
    #[inline]
    unsafe fn dealloc(ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller keeps GlobalAlloc's contract.
        unsafe { TALC.dealloc(ptr, layout) }
    }
    #[inline]
    fn frame_alloc() -> usize {
        // SAFETY: a non-zero size.
        unsafe { TALC.alloc(FRAME) as usize }
    }
    #[inline]
    unsafe fn frame_free(addr: usize) {
        // SAFETY: the caller passes a block from frame_alloc, once.
        unsafe { TALC.dealloc(addr as *mut u8, FRAME) }
    }
}

impl Subject for Harness {
    #[inline]
    unsafe fn alloc(layout: Layout) -> *mut u8 {
        // Never written: the workloads do not touch their blocks.
        core::hint::black_box(core::ptr::without_provenance_mut(layout.align()))
    }
    #[inline]
    unsafe fn dealloc(ptr: *mut u8, _layout: Layout) {
        core::hint::black_box(ptr);
    }
    #[inline]
    fn frame_alloc() -> usize {
        core::hint::black_box(PAGE_SIZE)
    }
    #[inline]
    unsafe fn frame_free(addr: usize) {
        core::hint::black_box(addr);
    }
}

// ------------------------------------------------------------------ a job

/// What the harts run next: the workload's index and how many harts take
/// part (the others return at once).
static WORKLOAD: AtomicUsize = AtomicUsize::new(0);
static ACTIVE: AtomicUsize = AtomicUsize::new(1);
static START: Barrier = Barrier::new();

/// Per hart: rdtime and rdcycle around its timed operations, and how many
/// allocations failed.
struct HartTimes {
    t0: AtomicU64,
    t1: AtomicU64,
    c0: AtomicU64,
    c1: AtomicU64,
    failed: AtomicU64,
}

static TIMES: [HartTimes; MAX_HARTS] = [const {
    HartTimes {
        t0: AtomicU64::new(0),
        t1: AtomicU64::new(0),
        c0: AtomicU64::new(0),
        c1: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    }
}; MAX_HARTS];

/// One step of a churn trace: which live slot is replaced, by what size.
#[derive(Clone, Copy)]
struct Step {
    slot: u32,
    size: u32,
}

/// Log-uniform in `lo..=hi` (both powers of two): small blocks are as
/// likely as large ones per doubling, as in a kernel's heap.
fn log_uniform(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    let (e_lo, e_hi) = (lo.trailing_zeros() as usize, hi.trailing_zeros() as usize);
    if e_lo == e_hi {
        return lo;
    }
    let e = rng.range(e_lo, e_hi - 1);
    rng.range(1 << e, 2 << e)
}

/// The same trace for every allocator: it depends on the seed and the hart
/// only.  Built before the timed part, on the global allocator.
fn trace(kind: Kind, cpu: usize) -> Vec<Step> {
    let mut rng = Rng::new(SEED ^ ((cpu as u64) << 32));
    let (live, lo, hi) = match kind {
        Kind::Pairs(_) => return Vec::new(),
        Kind::Churn { live, lo, hi } => (live, lo, hi),
        Kind::Frames { live } => (live, PAGE_SIZE, PAGE_SIZE),
    };
    // The first `live` steps fill the slots, in order.
    (0..live + WARM + OPS.load(Ordering::Relaxed))
        .map(|i| Step {
            slot: if i < live { i as u32 } else { rng.below(live) as u32 },
            size: log_uniform(&mut rng, lo, hi) as u32,
        })
        .collect()
}

#[inline(always)]
fn layout_of(size: u32) -> Layout {
    // Every size is in 16..=64 KiB, the alignment 8: always a valid layout.
    Layout::from_size_align(size as usize, 8).unwrap_or(Layout::new::<u64>())
}

/// Run `steps` of a churn trace over `slots` (0: empty).  Returns the
/// number of failed allocations.
///
/// # Safety
/// Every non-zero slot holds a live block of `S` with the layout of its
/// size in `sizes`.
#[inline(always)]
unsafe fn churn<S: Subject>(steps: &[Step], slots: &mut [usize], sizes: &mut [u32]) -> u64 {
    let mut failed = 0;
    for st in steps {
        let i = st.slot as usize;
        if slots[i] != 0 {
            // SAFETY: a live block of S with this layout (the contract).
            unsafe { S::dealloc(slots[i] as *mut u8, layout_of(sizes[i])) };
        }
        // SAFETY: a non-zero size.
        let p = unsafe { S::alloc(layout_of(st.size)) } as usize;
        failed += (p == 0) as u64;
        slots[i] = p;
        sizes[i] = st.size;
    }
    failed
}

/// # Safety
/// Every non-zero slot holds a live frame of `S`.
#[inline(always)]
unsafe fn frames<S: Subject>(steps: &[Step], slots: &mut [usize]) -> u64 {
    let mut failed = 0;
    for st in steps {
        let i = st.slot as usize;
        if slots[i] != 0 {
            // SAFETY: a live frame of S (the contract), freed once.
            unsafe { S::frame_free(slots[i]) };
        }
        let f = S::frame_alloc();
        failed += (f == 0) as u64;
        slots[i] = f;
    }
    failed
}

fn pairs<S: Subject>(size: usize, n: usize) -> u64 {
    let layout = layout_of(size as u32);
    let mut failed = 0;
    for _ in 0..n {
        // SAFETY: a non-zero size; the block is freed at once with it.
        unsafe {
            let p = core::hint::black_box(S::alloc(layout));
            if p.is_null() {
                failed += 1;
            } else {
                S::dealloc(p, layout);
            }
        }
    }
    failed
}

/// The job every taking-part hart runs: build its trace, warm up, meet the
/// others, time `OPS` operations, free what is left.
fn job<S: Subject>(cpu: usize) {
    let harts = ACTIVE.load(Ordering::Acquire);
    if cpu >= harts {
        return;
    }
    let kind = WORKLOADS[WORKLOAD.load(Ordering::Acquire)].kind;
    let steps = trace(kind, cpu);
    let ops = OPS.load(Ordering::Relaxed);
    let live = steps.len().saturating_sub(WARM + ops);
    let mut slots = vec![0usize; live];
    let mut sizes = vec![0u32; live];
    let run = |part: &[Step], slots: &mut [usize], sizes: &mut [u32], n: usize| -> u64 {
        match kind {
            Kind::Pairs(size) => pairs::<S>(size, n),
            // SAFETY: the slots only ever hold S's live blocks or frames
            // (each workload starts from empty slots and ends freeing them).
            Kind::Churn { .. } => unsafe { churn::<S>(part, slots, sizes) },
            // SAFETY: as above.
            Kind::Frames { .. } => unsafe { frames::<S>(part, slots) },
        }
    };
    // A pairs workload has no trace: only the counts matter.
    let warm_end = if steps.is_empty() { 0 } else { live + WARM };
    let mut failed = run(&steps[..warm_end], &mut slots, &mut sizes, WARM);

    START.wait(harts);
    let t = &TIMES[cpu];
    t.t0.store(time::rdtime(), Ordering::Relaxed);
    t.c0.store(time::rdcycle(), Ordering::Relaxed);
    failed += run(&steps[warm_end..], &mut slots, &mut sizes, ops);
    t.c1.store(time::rdcycle(), Ordering::Relaxed);
    t.t1.store(time::rdtime(), Ordering::Relaxed);

    for (i, &p) in slots.iter().enumerate() {
        if p == 0 {
            continue;
        }
        // SAFETY: the slot holds a live block or frame of S, freed once.
        unsafe {
            match kind {
                Kind::Frames { .. } => S::frame_free(p),
                _ => S::dealloc(p as *mut u8, layout_of(sizes[i])),
            }
        }
    }
    t.failed.store(failed, Ordering::Release);
}

/// What one measurement gave: wall ticks from the first start to the last
/// end, cycles (meaningful with one hart), total operations, failures.
#[derive(Clone, Copy)]
struct Measure {
    ticks: u64,
    cycles: u64,
    ops: u64,
    failed: u64,
}

fn measure(f: fn(usize), workload: usize, harts: usize) -> Measure {
    WORKLOAD.store(workload, Ordering::Release);
    ACTIVE.store(harts, Ordering::Release);
    smp::run_on_all(f);
    let ts = &TIMES[..harts];
    let start = ts.iter().map(|t| t.t0.load(Ordering::Acquire)).min().unwrap_or(0);
    let end = ts.iter().map(|t| t.t1.load(Ordering::Acquire)).max().unwrap_or(0);
    Measure {
        ticks: end - start,
        cycles: ts.iter().map(|t| t.c1.load(Ordering::Acquire) - t.c0.load(Ordering::Acquire)).max().unwrap_or(0),
        ops: (OPS.load(Ordering::Relaxed) * harts) as u64,
        failed: ts.iter().map(|t| t.failed.load(Ordering::Acquire)).sum(),
    }
}

/// The best (shortest) of `reps` runs; failures of all of them.
fn best(f: fn(usize), workload: usize, harts: usize, reps: usize) -> Measure {
    let mut b = measure(f, workload, harts);
    for _ in 1..reps {
        let m = measure(f, workload, harts);
        let failed = b.failed + m.failed;
        if m.ticks < b.ticks {
            b = m;
        }
        b.failed = failed;
    }
    b
}

/// `num / den` with `dec` decimals.
fn fixed(num: u64, den: u64, dec: u32) -> String {
    if den == 0 {
        return String::from("-");
    }
    let scale = 10u64.pow(dec);
    let v = (num as u128 * scale as u128 + den as u128 / 2) / den as u128;
    let (int, frac) = (v / scale as u128, v % scale as u128);
    if dec == 0 {
        format!("{}", int)
    } else {
        format!("{}.{:0w$}", int, frac, w = dec as usize)
    }
}

// ---------------------------------------------------------------- set-up

/// Hand the peer its two regions, from hartalloc's pages (never given
/// back: the run ends with the benchmark).
fn set_up_peer() -> Result<(), String> {
    let (heap, _) = HEAP
        .alloc_pages(PEER_REGION / PAGE_SIZE, PEER_REGION)
        .ok_or("no 32 MiB run for the buddy heap")?
        .into_raw();
    let (fr, _) = HEAP
        .alloc_pages(PEER_REGION / PAGE_SIZE, PEER_REGION)
        .ok_or("no 32 MiB run for the buddy frames")?
        .into_raw();
    let heap = heap.as_ptr() as usize;
    // SAFETY: these 32 MiB were just taken from hartalloc for good; nothing
    // else uses them.
    unsafe { BUDDY.lock().init(heap, PEER_REGION) };
    let fr = fr.as_ptr() as usize;
    BUDDY_FRAMES.lock().add_frame(fr / PAGE_SIZE, (fr + PEER_REGION) / PAGE_SIZE);
    println!(
        "bench: buddy_system_allocator LockedHeap<32> on {:#x}..{:#x}, LockedFrameAllocator<32> on frames of {:#x}..{:#x}",
        heap,
        heap + PEER_REGION,
        fr,
        fr + PEER_REGION
    );
    let (th, _) = HEAP
        .alloc_pages(PEER_REGION / PAGE_SIZE, PEER_REGION)
        .ok_or("no 32 MiB run for talc")?
        .into_raw();
    // SAFETY: these 32 MiB were just taken from hartalloc for good; nothing
    // else uses them.
    unsafe { TALC.lock().claim(th.as_ptr(), PEER_REGION) }.ok_or("talc could not claim its 32 MiB")?;
    let th = th.as_ptr() as usize;
    println!(
        "bench: talc 5 TalcLock<RawSpinlock, Manual> on {:#x}..{:#x} (frames: 4 KiB blocks at 4 KiB alignment)",
        th,
        th + PEER_REGION
    );
    Ok(())
}

/// Run the benchmark instead of the checks; end QEMU.
pub fn run(info: &MachineInfo) -> ! {
    let icount = info.has_arg("icount");
    let harts = smp::online();
    OPS.store(if icount { OPS_ICOUNT } else { OPS_TCG }, Ordering::Relaxed);
    if let Err(e) = set_up_peer() {
        println!("[FAIL] bench: {}", e);
        platform::exit_failure(platform::EXIT_CHECKS_FAILED);
    }
    println!(
        "bench: seed {:#x} (hart i: seed ^ i << 32), {} timed ops per hart and workload after {} untimed",
        SEED,
        OPS.load(Ordering::Relaxed),
        WARM
    );
    let failed = if icount { table_icount() } else { table_tcg(harts) };

    let check = HEAP.check();
    if let Err(e) = &check {
        println!("[FAIL] bench: ha_check after the benchmark: {}", e);
    }
    if failed > 0 {
        println!("[FAIL] bench: {} allocations failed", failed);
    }
    if failed > 0 || check.is_err() {
        platform::exit_failure(platform::EXIT_CHECKS_FAILED);
    }
    println!("bench: done, ha_check consistent");
    platform::exit_success()
}

/// One hart under `-icount shift=0`: exact instruction counts.
fn table_icount() -> u64 {
    println!("bench: mode icount: 1 hart, QEMU -icount shift=0; rdcycle counts instructions (exact, repeatable)");
    println!();
    println!(
        "| workload (1 hart, icount) | hartalloc cycles/op | buddy cycles/op | talc cycles/op \
         | buddy/hartalloc | talc/hartalloc | harness cycles/op (in all) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut failed = 0;
    let (mut buddy, mut talc) = (Vec::new(), Vec::new());
    for (w, wl) in WORKLOADS.iter().enumerate() {
        let h = measure(job::<Hart>, w, 1);
        let b = measure(job::<Buddy>, w, 1);
        let t = measure(job::<Talc>, w, 1);
        let n = measure(job::<Harness>, w, 1);
        failed += h.failed + b.failed + t.failed;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            wl.name,
            fixed(h.cycles, h.ops, 1),
            fixed(b.cycles, b.ops, 1),
            fixed(t.cycles, t.ops, 1),
            fixed(b.cycles, h.cycles, 2),
            fixed(t.cycles, h.cycles, 2),
            fixed(n.cycles, n.ops, 1)
        );
        buddy.push(fixed(b.cycles, h.cycles, 2));
        talc.push(fixed(t.cycles, h.cycles, 2));
    }
    println!();
    println!(
        "bench-qemu: 1 hart icount, cycles buddy/hartalloc: {}; talc/hartalloc: {}",
        summary(&buddy),
        summary(&talc)
    );
    failed
}

/// Plain TCG: wall time, each workload on 1 hart and on all harts at once.
fn table_tcg(harts: usize) -> u64 {
    println!(
        "bench: mode tcg: {} harts online, plain TCG (no -icount); wall time from rdtime ({} Hz), best of {}; \
         with N harts ns/op = wall time / all harts' ops (inverse throughput)",
        harts,
        time::timebase(),
        TCG_REPS
    );
    println!();
    println!(
        "| workload (TCG) | harts | hartalloc ns/op | buddy ns/op | talc ns/op | buddy/hartalloc | talc/hartalloc |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut failed = 0;
    let (mut buddy, mut talc) = (Vec::new(), Vec::new());
    for (w, wl) in WORKLOADS.iter().enumerate() {
        let mut counts = vec![1];
        if harts > 1 {
            counts.push(harts);
        }
        for &n in &counts {
            let h = best(job::<Hart>, w, n, TCG_REPS);
            let b = best(job::<Buddy>, w, n, TCG_REPS);
            let t = best(job::<Talc>, w, n, TCG_REPS);
            failed += h.failed + b.failed + t.failed;
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                wl.name,
                n,
                fixed(time::ticks_to_ns(h.ticks), h.ops, 1),
                fixed(time::ticks_to_ns(b.ticks), b.ops, 1),
                fixed(time::ticks_to_ns(t.ticks), t.ops, 1),
                fixed(b.ticks, h.ticks, 2),
                fixed(t.ticks, h.ticks, 2)
            );
            if n == harts {
                buddy.push(fixed(b.ticks, h.ticks, 2));
                talc.push(fixed(t.ticks, h.ticks, 2));
            }
        }
    }
    println!();
    println!(
        "bench-qemu: {} harts tcg, wall time buddy/hartalloc: {}; talc/hartalloc: {}",
        harts,
        summary(&buddy),
        summary(&talc)
    );
    failed
}

fn summary(ratios: &[String]) -> String {
    let names = ["pairs64", "churn16-4K", "churn4K-64K", "frames"];
    let parts: Vec<String> = names.iter().zip(ratios).map(|(n, r)| format!("{} {}", n, r)).collect();
    parts.join(", ")
}
