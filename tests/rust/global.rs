//! hartalloc as this test binary's own global allocator: everything the
//! test harness and std do allocates through the C core, over a static
//! arena set up by `HartAlloc::with_init` before std's first allocation.
//!
//! The tests of this binary run concurrently (libtest's threads), each
//! thread with its own CPU id (`Platform::PER_THREAD`), so they only assert
//! what holds whatever the others do; exact statistics are checked in
//! `lifecycle.rs`, which runs alone.

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, GlobalAlloc, Layout};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::thread;

use hartalloc::{HartAlloc, Platform, PAGE_SIZE};

mod common;
use common::{Arena, Rng};

// Smaller in the checked build, whose heap walk on every call costs time
// in proportion to the heap.
const ARENA_SIZE: usize = if cfg!(feature = "checked") { 192 << 20 } else { 512 << 20 };
const EARLY_SIZE: usize = 4 << 20;
static ARENA: Arena<ARENA_SIZE> = Arena::new();

/// Work per test, in percent: the checked build walks the whole heap on
/// every call.
const SCALE: usize = if cfg!(feature = "checked") { 5 } else { 100 };

fn scaled(n: usize) -> usize {
    (n * SCALE / 100).max(1)
}

#[global_allocator]
static HEAP: HartAlloc = HartAlloc::with_init(init_heap);

fn init_heap(heap: &HartAlloc) {
    // The checked build runs a full heap walk on every call, and that walk
    // can miss a CPU cache created while it runs (a thread's first
    // allocation), which it then reports as lost objects.  One CPU id for
    // all threads keeps a single cache, created here, and still runs the
    // threads against each other on its lock.
    if cfg!(feature = "checked") {
        hartalloc::set_platform(&Platform::SINGLE_HART);
    } else {
        hartalloc::set_platform(&Platform::PER_THREAD);
    }
    // SAFETY: the arena is a static used by nothing else, and .bss: zero.
    unsafe { ARENA.start_heap(heap, EARLY_SIZE) };
}

fn in_arena(p: *const u8) -> bool {
    ARENA.contains(p)
}

#[test]
fn std_allocations_come_from_the_arena() {
    let b = Box::new(7u64);
    let v: Vec<u8> = vec![1; 100_000];
    assert!(in_arena(&*b as *const u64 as *const u8));
    assert!(in_arena(v.as_ptr()));
    // Nothing went to the static reserve: the heap was up before std's
    // first allocation.
    assert_eq!(HEAP.reserve_used(), 0);
    assert!(HEAP.stats().allocs > 0);
}

#[test]
fn collections() {
    let seed = 0x5eed_0001;
    println!("seed {seed:#x}");
    let mut rng = Rng::new(seed);

    let mut v: Vec<u64> = Vec::new();
    let n = scaled(100_000) as u64;
    for i in 0..n {
        v.push(i * 3);
    }
    assert_eq!(v.iter().sum::<u64>(), 3 * (n * (n - 1) / 2));

    let mut s = String::new();
    for i in 0..scaled(10_000) {
        s.push_str(&i.to_string());
        s.push(',');
    }
    assert_eq!(s.split(',').filter(|x| !x.is_empty()).count(), scaled(10_000));
    assert!(s.starts_with("0,1,2,3,"));

    let mut bt = BTreeMap::new();
    let mut hm = HashMap::new();
    let mut model = Vec::new();
    for _ in 0..scaled(20_000) {
        let k = rng.below(5_000);
        let val = format!("value-{}", rng.next());
        bt.insert(k, val.clone());
        hm.insert(k, val.clone());
        model.push((k, val));
        if rng.below(4) == 0 {
            let d = rng.below(5_000);
            bt.remove(&d);
            hm.remove(&d);
            model.push((d, String::new()));
        }
    }
    // Replay the model: last write wins, empty value means removed.
    let mut expect = BTreeMap::new();
    for (k, val) in model {
        if val.is_empty() {
            expect.remove(&k);
        } else {
            expect.insert(k, val);
        }
    }
    assert_eq!(bt, expect);
    assert_eq!(hm.len(), expect.len());
    for (k, val) in &expect {
        assert_eq!(hm.get(k), Some(val));
    }
}

macro_rules! aligned_boxes {
    ($($name:ident = $align:literal),*) => {$(
        #[repr(C, align($align))]
        struct $name([u8; $align]);
        {
            let mut boxes = Vec::new();
            for i in 0..16u8 {
                let b = Box::new($name([i; $align]));
                assert_eq!(&*b as *const $name as usize % $align, 0, "Box align {}", $align);
                boxes.push(b);
            }
            for (i, b) in boxes.iter().enumerate() {
                assert!(b.0.iter().all(|&x| x == i as u8));
            }
            let slice: Box<[$name]> = (0..5u8).map(|i| $name([i; $align])).collect();
            assert_eq!(slice.as_ptr() as usize % $align, 0);
            assert_eq!(slice[4].0[$align - 1], 4);
        }
    )*};
}

#[test]
#[allow(clippy::modulo_one)] // the align-1 case of the macro
fn boxes_and_slices_at_every_alignment_up_to_4096() {
    aligned_boxes!(A1 = 1, A2 = 2, A4 = 4, A8 = 8, A16 = 16, A32 = 32, A64 = 64, A128 = 128,
                   A256 = 256, A512 = 512, A1024 = 1024, A2048 = 2048, A4096 = 4096);

    let b: Box<[u8]> = vec![0xab; 12345].into_boxed_slice();
    assert!(b.iter().all(|&x| x == 0xab));

    // Raw layouts: every size class boundary at every alignment, and the
    // large tier.
    let sizes = [1, 15, 16, 17, 100, 1000, 1024, 1025, 4096, 5000, 65536, 131072, 131073, 1 << 20];
    let mut live = Vec::new();
    for align_shift in 0..=12 {
        let align = 1usize << align_shift;
        for &size in &sizes {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: nonzero size.
            let p = unsafe { alloc(layout) };
            assert!(!p.is_null(), "alloc({size}, {align})");
            assert_eq!(p as usize % align, 0, "alloc({size}, {align}) misaligned");
            // SAFETY: p is size bytes we own.
            unsafe {
                p.write(align_shift as u8);
                p.add(size - 1).write(align_shift as u8);
            }
            live.push((p, layout));
        }
    }
    for (p, layout) in live {
        // SAFETY: p is live, allocated with layout.
        unsafe {
            assert_eq!(*p, layout.align().trailing_zeros() as u8);
            assert_eq!(*p.add(layout.size() - 1), layout.align().trailing_zeros() as u8);
            dealloc(p, layout);
        }
    }
}

#[test]
fn larger_alignments_than_a_page() {
    for shift in 13..=21 {
        let layout = Layout::from_size_align(3000, 1 << shift).unwrap();
        // SAFETY: nonzero size.
        let p = unsafe { alloc(layout) };
        assert!(!p.is_null());
        assert_eq!(p as usize % (1 << shift), 0);
        // SAFETY: p was allocated with layout.
        unsafe { dealloc(p, layout) };
    }
}

#[test]
fn vec_growth_and_shrink_to_fit() {
    let mut v: Vec<u32> = Vec::with_capacity(10);
    assert!(v.capacity() >= 10);
    for i in 0..scaled(1_000_000) as u32 {
        v.push(i);
    }
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    v.truncate(1000);
    v.shrink_to_fit();
    assert_eq!(v.capacity(), 1000);
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    v.truncate(3);
    v.shrink_to_fit();
    assert_eq!(v, [0, 1, 2]);

    let mut s = String::with_capacity(1);
    for _ in 0..5000 {
        s.push_str("hart");
    }
    s.shrink_to_fit();
    assert_eq!(s.len(), 20_000);
    assert_eq!(s.capacity(), 20_000);
}

#[test]
fn realloc_in_place_keeps_the_pointer() {
    // Within a size class (33 and 40 bytes share the 48-byte class in the
    // plain and the checked build): in place by construction.
    let layout = Layout::from_size_align(33, 8).unwrap();
    // SAFETY: nonzero sizes; each pointer is live with the layout given.
    unsafe {
        let p = alloc(layout);
        assert!(!p.is_null());
        p.write_bytes(0x5a, 33);
        let q = realloc(p, layout, 40);
        assert_eq!(q, p, "grow within the class moved the block");
        assert!(std::slice::from_raw_parts(q, 33).iter().all(|&x| x == 0x5a));
        let r = realloc(q, Layout::from_size_align(40, 8).unwrap(), 20);
        assert!(!r.is_null());
        dealloc(r, Layout::from_size_align(20, 8).unwrap());
    }

    // A mid-size block shrunk: TLSF splits it where it lies.
    let big = Layout::from_size_align(64 * 1024, 16).unwrap();
    // SAFETY: as above.
    unsafe {
        let p = alloc(big);
        assert!(!p.is_null());
        p.write_bytes(0x3c, big.size());
        let q = realloc(p, big, 40 * 1024);
        assert_eq!(q, p, "shrinking a TLSF block moved it");
        assert!(std::slice::from_raw_parts(q, 40 * 1024).iter().all(|&x| x == 0x3c));
        dealloc(q, Layout::from_size_align(40 * 1024, 16).unwrap());
    }

    // A move keeps the contents and the alignment.
    let l = Layout::from_size_align(100, 256).unwrap();
    // SAFETY: as above.
    unsafe {
        let p = alloc(l);
        for i in 0..100 {
            p.add(i).write(i as u8);
        }
        let q = realloc(p, l, 300_000);
        assert!(!q.is_null());
        assert_eq!(q as usize % 256, 0);
        assert!((0..100).all(|i| *q.add(i) == i as u8));
        dealloc(q, Layout::from_size_align(300_000, 256).unwrap());
    }
}

#[test]
fn alloc_zeroed_is_zeroed() {
    let seed = 0x5eed_0002;
    println!("seed {seed:#x}");
    let mut rng = Rng::new(seed);
    for round in 0..scaled(200) {
        let size = match round % 4 {
            0 => 1 + rng.below(1024) as usize,
            1 => 1025 + rng.below(128 * 1024) as usize,
            2 => 128 * 1024 + rng.below(1 << 20) as usize,
            _ => PAGE_SIZE * (1 + rng.below(8) as usize),
        };
        let align = 1usize << rng.below(13);
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: nonzero size; each block is freed with its layout.
        unsafe {
            // Dirty memory first, so that a reused block would show it.
            let dirty = alloc(layout);
            assert!(!dirty.is_null(), "alloc({size}, {align}) failed: {:?}", HEAP.stats());
            dirty.write_bytes(0xee, size);
            dealloc(dirty, layout);
            let p = alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            assert!(std::slice::from_raw_parts(p, size).iter().all(|&x| x == 0), "alloc_zeroed({size}, {align})");
            dealloc(p, layout);
        }
    }
    let v = vec![0u64; 1 << 18]; // vec! of zeros uses alloc_zeroed
    assert!(v.iter().all(|&x| x == 0));
}

#[test]
fn zero_size_never_reaches_c() {
    let before = HEAP.stats();
    let layout = Layout::from_size_align(0, 64).unwrap();
    // SAFETY: GlobalAlloc on a zero-size layout is outside the trait's
    // contract but defined by hartalloc: an aligned dangling pointer.
    let p = unsafe { HEAP.alloc(layout) };
    assert!(!p.is_null());
    assert_eq!(p as usize % 64, 0);
    // SAFETY: as above.
    unsafe { HEAP.dealloc(p, layout) };
    let units: Vec<()> = vec![(); 1000];
    assert_eq!(units.len(), 1000);
    let _zst = Box::new(());
    // Only the failure counter is exact under concurrency: a zero-size
    // request that reached C would not fail, but a bad one would.
    assert_eq!(HEAP.stats().failures, before.failures);
}

#[test]
fn threads_with_cross_thread_drops() {
    const THREADS: usize = 8;
    let rounds = scaled(5_000) & !1;
    let seed = 0x5eed_0003;
    println!("seed {seed:#x}");
    // Each thread sends every other object it makes to the next thread,
    // which checks and drops it: frees land on other CPUs' caches.
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel::<Box<[u64]>>()).unzip();
    let mut handles = Vec::new();
    for (t, rx) in receivers.into_iter().enumerate() {
        let tx = senders[(t + 1) % THREADS].clone();
        handles.push(thread::spawn(move || {
            let mut rng = Rng::new(seed + t as u64);
            let mut mine = Vec::new();
            let mut received = 0usize;
            for i in 0..rounds {
                let len = 1 + rng.below(if i % 50 == 0 { 50_000 } else { 200 }) as usize;
                let tag = (t as u64) << 32 | i as u64;
                let b: Box<[u64]> = vec![tag; len].into_boxed_slice();
                if i % 2 == 0 {
                    tx.send(b).unwrap();
                } else {
                    mine.push(b);
                    if mine.len() > 64 {
                        let idx = rng.below(mine.len() as u64) as usize;
                        let old = mine.swap_remove(idx);
                        assert!(old.iter().all(|&x| x == old[0]));
                    }
                }
                while let Ok(b) = rx.try_recv() {
                    assert!(b.iter().all(|&x| x == b[0]));
                    assert_eq!((b[0] >> 32) as usize, (t + THREADS - 1) % THREADS);
                    received += 1;
                }
            }
            drop(tx);
            (received, rx)
        }));
    }
    drop(senders);
    let mut total = 0;
    let mut rest = Vec::new();
    for h in handles {
        let (received, rx) = h.join().unwrap();
        total += received;
        rest.push(rx);
    }
    for rx in rest {
        total += rx.into_iter().map(|b| assert!(b.iter().all(|&x| x == b[0]))).count();
    }
    assert_eq!(total, THREADS * rounds / 2);
    // (No HEAP.check() here: other tests' threads may be creating their CPU
    // caches meanwhile; lifecycle.rs checks after threads, alone.)
}

#[test]
fn pages_are_freed_on_drop() {
    let p = HEAP.alloc_pages(3, 16 * 1024).expect("3 pages");
    assert_eq!(p.count(), 3);
    assert_eq!(p.addr() % (16 * 1024), 0);
    assert!(in_arena(p.as_ptr()));
    let z = HEAP.alloc_pages_zeroed(5, 0).expect("5 zeroed pages");
    // SAFETY: z owns 5 pages.
    assert!(unsafe { std::slice::from_raw_parts(z.as_ptr(), z.size_bytes()) }.iter().all(|&b| b == 0));
    let before = HEAP.stats().page_frees;
    drop(p);
    drop(z);
    // Page frees of other tests can only add to the count.
    assert!(HEAP.stats().page_frees >= before + 2);
    assert!(HEAP.alloc_pages(0, 0).is_none());
    assert!(HEAP.alloc_pages(1, 3 * PAGE_SIZE).is_none(), "non-power-of-two alignment");
    let (raw, n) = HEAP.alloc_pages(2, 0).unwrap().into_raw();
    // SAFETY: raw/n came from into_raw just above.
    drop(unsafe { hartalloc::Pages::from_raw(raw, n) });
}

#[test]
fn stats_follow_a_large_allocation() {
    // Under concurrency only large effects are visible: 64 MiB live moves
    // bytes_used by at least that much.
    let before = HEAP.stats();
    let v: Vec<u8> = vec![1; 64 << 20];
    let during = HEAP.stats();
    assert!(during.bytes_used >= 64 << 20, "{before:?} -> {during:?}");
    assert!(during.bytes_peak >= during.bytes_used);
    assert!(during.allocs > before.allocs);
    assert!(during.bytes_total >= ARENA_SIZE - 2 * PAGE_SIZE && during.bytes_total <= ARENA_SIZE);
    drop(v);
    let after = HEAP.stats();
    assert!(after.frees > during.frees);
    // Other tests hold well under 24 MiB at any time.
    assert!(after.bytes_used + (40 << 20) <= during.bytes_used, "{during:?} -> {after:?}");
}

#[test]
fn trim_keeps_live_data() {
    let junk: Vec<Vec<u8>> = (0..1000).map(|i| vec![i as u8; i * 7 + 1]).collect();
    let keep: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; i * 13 + 1]).collect();
    drop(junk);
    HEAP.trim();
    for (i, v) in keep.iter().enumerate() {
        assert!(v.iter().all(|&x| x == i as u8));
    }
}
