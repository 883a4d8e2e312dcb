//! The workloads. Each takes the allocator under test and a seed, and
//! returns its figure; the same seeds go to every allocator.

use core::alloc::{GlobalAlloc, Layout};
use std::time::{Duration, Instant};

use crate::allocs::Pages;

/// splitmix64: small, fast, and the same stream on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in lo..hi (hi exclusive, hi > lo).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
    /// talc's alignment: `8 << (trailing_zeros(rand u16) / 2)`, 8..2048,
    /// each step half as likely as the one below.
    pub fn talc_align(&mut self) -> usize {
        8 << ((self.next() as u16).trailing_zeros() / 2)
    }
}

#[derive(Clone, Copy)]
struct Block {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: a Block is an address and a layout; the workloads hand blocks to
// other threads only to be freed there.
unsafe impl Send for Block {}

fn alloc(a: &dyn GlobalAlloc, size: usize, align: usize) -> Option<Block> {
    let layout = Layout::from_size_align(size, align).ok()?;
    // SAFETY: nonzero size (every caller asks for at least 1 byte).
    let ptr = unsafe { a.alloc(layout) };
    if ptr.is_null() {
        return None;
    }
    // Touch it, as its user would.
    // SAFETY: a fresh block of at least one byte.
    unsafe { ptr.write_volatile(0xa5) };
    Some(Block { ptr, layout })
}

fn free(a: &dyn GlobalAlloc, b: Block) {
    // SAFETY: b is live and came from a with this layout.
    unsafe { a.dealloc(b.ptr, b.layout) }
}

fn realloc(a: &dyn GlobalAlloc, b: &mut Block, new_size: usize) -> bool {
    // SAFETY: b is live, from a, with this layout; new_size > 0.
    let p = unsafe { a.realloc(b.ptr, b.layout, new_size) };
    if p.is_null() {
        return false;
    }
    b.ptr = p;
    b.layout = Layout::from_size_align(new_size, b.layout.align()).unwrap();
    true
}

/// How often the fixed-time loops look at the clock.
const CLOCK_EVERY: u64 = 16;

/// talc's random actions: blocks of `cap = rand(16..max); size =
/// rand(4..cap)`, talc alignments; realloc 1/7 (to up to 3 * max), free
/// 3/7, alloc 3/7 (always alloc while fewer than 300 blocks are live).
/// Without realloc, the 1/7 goes to alloc and free alike (1/2 each).
/// Returns the successful operations done in `window`; frees what is
/// left at the end.
pub fn random_actions(a: &dyn GlobalAlloc, max: usize, with_realloc: bool, window: Duration, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let mut live: Vec<Block> = Vec::with_capacity(1 << 16);
    let mut score = 0u64;
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        n += 1;
        if n.is_multiple_of(CLOCK_EVERY) && start.elapsed() >= window {
            break;
        }
        let roll = rng.range(0, if with_realloc { 7 } else { 6 });
        if live.len() < 300 || roll < 3 {
            let cap = rng.range(16, max);
            let size = rng.range(4, cap);
            if let Some(b) = alloc(a, size, rng.talc_align()) {
                live.push(b);
                score += 1;
            }
        } else if roll < 6 {
            let i = rng.range(0, live.len());
            free(a, live.swap_remove(i));
            score += 1;
        } else {
            let i = rng.range(0, live.len());
            let new_size = rng.range(4, 3 * max);
            if realloc(a, &mut live[i], new_size) {
                score += 1;
            }
        }
    }
    for b in live {
        free(a, b);
    }
    score
}

/// talc's heap efficiency: alloc 50% (up to 10000 bytes), free 10%,
/// realloc 40% (up to 100000 bytes) until the first request that fails;
/// the figure is the bytes then requested by live blocks over the arena.
pub fn heap_efficiency(a: &dyn GlobalAlloc, arena: usize, seed: u64) -> f64 {
    let mut rng = Rng::new(seed);
    let mut live: Vec<Block> = Vec::new();
    let mut requested = 0usize;
    loop {
        let roll = rng.range(0, 10);
        if live.is_empty() || roll < 5 {
            let size = rng.range(1, 10_001);
            match alloc(a, size, rng.talc_align()) {
                Some(b) => {
                    requested += size;
                    live.push(b);
                }
                None => break,
            }
        } else if roll < 6 {
            let b = live.swap_remove(rng.range(0, live.len()));
            requested -= b.layout.size();
            free(a, b);
        } else {
            let i = rng.range(0, live.len());
            let old = live[i].layout.size();
            let new_size = rng.range(1, 100_001);
            if !realloc(a, &mut live[i], new_size) {
                break;
            }
            requested = requested - old + new_size;
        }
    }
    requested as f64 / arena as f64
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn cycles() -> u64 {
    // SAFETY: lfence and rdtsc exist on every x86_64; the fence keeps the
    // measured work from leaking past the reading.
    unsafe {
        core::arch::x86_64::_mm_lfence();
        let t = core::arch::x86_64::_rdtsc();
        core::arch::x86_64::_mm_lfence();
        t
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn cycles() -> u64 {
    use std::sync::OnceLock;
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Cycles for one free and one alloc, in a heap of 300 live blocks sized
/// as random actions sizes them; `samples` pairs, sorted.
pub fn latency(a: &dyn GlobalAlloc, max: usize, samples: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let mut live: Vec<Block> = Vec::with_capacity(300);
    let layout = |rng: &mut Rng| {
        let cap = rng.range(16, max);
        (rng.range(4, cap), rng.talc_align())
    };
    while live.len() < 300 {
        let (s, al) = layout(&mut rng);
        live.push(alloc(a, s, al).expect("300 blocks fit"));
    }
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let i = rng.range(0, live.len());
        let (s, al) = layout(&mut rng);
        let nl = Layout::from_size_align(s, al).unwrap();
        let old = live[i];
        let t0 = cycles();
        // SAFETY: old is live, from a; nl has a nonzero size.
        let p = unsafe {
            a.dealloc(old.ptr, old.layout);
            a.alloc(nl)
        };
        let t1 = cycles();
        assert!(!p.is_null(), "out of memory with 300 small blocks");
        live[i] = Block { ptr: p, layout: nl };
        out.push(t1 - t0);
    }
    for b in live {
        free(a, b);
    }
    out.sort_unstable();
    out
}

// --------------------------------------------------------------- collections
// ArceOS's allocator benchmarks (axallocator benches/collections.rs), on
// the global allocator, which main.rs routes to the allocator under test.

// One push at a time, as ArceOS's benchmark does: the growth is what it
// measures, not the fill.
#[allow(clippy::same_item_push)]
pub fn vec_push(n: usize) {
    let mut v: Vec<u32> = Vec::new();
    for _ in 0..n {
        v.push(0xdead_beef);
    }
    std::hint::black_box(&v);
}

pub fn vec_rand_free(n: usize, blk: usize) {
    let mut v: Vec<Vec<u64>> = Vec::new();
    for _ in 0..n {
        v.push(Vec::with_capacity(blk));
    }
    let mut rng = Rng::new(0xdead_beef);
    let mut index: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        index.swap(i, rng.range(0, i + 1));
    }
    for i in index {
        v[i] = Vec::new();
    }
    std::hint::black_box(&v);
}

pub fn btree_map(n: usize) {
    use std::io::Write;
    let mut rng = Rng::new(0xdead_beef);
    let mut m = std::collections::BTreeMap::new();
    for _ in 0..n {
        let r = rng.next() as u32;
        if r.is_multiple_of(5) && !m.is_empty() {
            m.pop_first();
        } else {
            let value = rng.next() as u32;
            let mut key = Vec::new();
            write!(&mut key, "key_{value}").unwrap();
            m.insert(key, value);
        }
    }
    m.clear();
    std::hint::black_box(&m);
}

// --------------------------------------------------------------------- pages

/// Single pages: 4096 held, then free a random one and take a new one, for
/// `window`. Returns operations (each alloc and each free counts one).
pub fn page_churn(p: &mut dyn Pages, window: Duration, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let mut live: Vec<usize> = (0..4096).map(|_| p.alloc(1, 1).expect("4096 pages")).collect();
    let start = Instant::now();
    let mut ops = 0u64;
    while !ops.is_multiple_of(2 * CLOCK_EVERY) || start.elapsed() < window {
        let i = rng.range(0, live.len());
        p.free(live[i], 1, 1);
        live[i] = p.alloc(1, 1).expect("a page just freed");
        ops += 2;
    }
    for pg in live {
        p.free(pg, 1, 1);
    }
    ops
}

/// Runs of 1..=64 pages at power-of-two alignments up to the run's size
/// rounded up, the heap kept between a quarter and about half full, for
/// `window`; then, with those runs still held, the largest run that can
/// still be had (binary search by allocating and freeing). Returns
/// (operations, failed allocations, largest run in pages).
pub fn page_runs(p: &mut dyn Pages, npages: usize, window: Duration, seed: u64) -> (u64, u64, usize) {
    let mut rng = Rng::new(seed);
    let mut live: Vec<(usize, usize, usize)> = Vec::new();
    let mut held = 0usize;
    let (mut ops, mut failed) = (0u64, 0u64);
    let start = Instant::now();
    while ops % CLOCK_EVERY != 0 || start.elapsed() < window {
        let want_alloc = held < npages / 4 || (held < npages / 2 && rng.next().is_multiple_of(2));
        if want_alloc || live.is_empty() {
            let count = rng.range(1, 65);
            let max_log = count.next_power_of_two().trailing_zeros() as usize;
            let align = 1usize << rng.range(0, max_log + 1);
            match p.alloc(count, align) {
                Some(pg) => {
                    live.push((pg, count, align));
                    held += count;
                }
                None => failed += 1,
            }
        } else {
            let (pg, count, align) = live.swap_remove(rng.range(0, live.len()));
            p.free(pg, count, align);
            held -= count;
        }
        ops += 1;
    }
    let (mut lo, mut hi) = (0usize, npages);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match p.alloc(mid, 1) {
            Some(pg) => {
                p.free(pg, mid, 1);
                lo = mid;
            }
            None => hi = mid - 1,
        }
    }
    for (pg, count, align) in live {
        p.free(pg, count, align);
    }
    (ops, failed, lo)
}

// ---------------------------------------------------------------- SMP churn

/// Small objects (8..=256 bytes) on `threads` threads: each round a thread
/// allocates 32, frees 16 of them itself, hands 16 to the next thread and
/// frees what the previous one handed it. Returns operations (allocs and
/// frees) of all threads in `window`.
pub fn smp_churn(a: &'static (dyn GlobalAlloc + Sync), threads: usize, window: Duration, seed: u64) -> u64 {
    let inboxes: Vec<spin::Mutex<Vec<Block>>> = (0..threads).map(|_| spin::Mutex::new(Vec::new())).collect();
    let inboxes = &inboxes;
    let total: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut rng = Rng::new(seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9));
                    let mut mine: Vec<Block> = Vec::with_capacity(32);
                    let mut got: Vec<Block> = Vec::with_capacity(1024);
                    let mut ops = 0u64;
                    let start = Instant::now();
                    let mut rounds = 0u64;
                    while !rounds.is_multiple_of(4) || start.elapsed() < window {
                        rounds += 1;
                        for _ in 0..32 {
                            mine.push(alloc(a, rng.range(8, 257), 8).expect("small object"));
                        }
                        ops += 32;
                        for b in mine.drain(16..) {
                            free(a, b);
                            ops += 1;
                        }
                        inboxes[(t + 1) % threads].lock().append(&mut mine);
                        std::mem::swap(&mut got, &mut *inboxes[t].lock());
                        for b in got.drain(..) {
                            free(a, b);
                            ops += 1;
                        }
                    }
                    ops
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    for inbox in inboxes {
        for b in inbox.lock().drain(..) {
            free(a, b);
        }
    }
    total
}
