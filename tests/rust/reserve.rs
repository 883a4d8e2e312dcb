//! Blocks of the static reserve: an init function that allocates before it
//! starts the C heap gets them, and later frees and reallocs of them must
//! never reach the C core (which would report a foreign pointer).  The
//! free path tells them apart by one flag that the reserve sets before
//! handing out its first block; this binary runs the case where it is set.

use std::sync::atomic::{AtomicPtr, Ordering};

use hartalloc::HartAlloc;

mod common;
use common::Arena;

const ARENA_SIZE: usize = 64 << 20;
const EARLY_SIZE: usize = 1 << 20;
static ARENA: Arena<ARENA_SIZE> = Arena::new();

/// The blocks init made before the heap was up, kept for main.
static EARLY_VEC: AtomicPtr<Vec<u64>> = AtomicPtr::new(std::ptr::null_mut());
static EARLY_BOX: AtomicPtr<[u8; 100]> = AtomicPtr::new(std::ptr::null_mut());

#[global_allocator]
static HEAP: HartAlloc = HartAlloc::with_init(|heap| {
    // Before early_init: these come from the reserve.
    let v: Vec<u64> = (0..10).collect();
    EARLY_VEC.store(Box::into_raw(Box::new(v)), Ordering::Relaxed);
    EARLY_BOX.store(Box::into_raw(Box::new([7u8; 100])), Ordering::Relaxed);
    // SAFETY: the arena is a static used by nothing else, and .bss: zero.
    unsafe { ARENA.start_heap(heap, EARLY_SIZE) };
});

fn in_arena(p: *const u8) -> bool {
    ARENA.contains(p)
}

fn main() {
    // The first allocation runs init.
    drop(Box::new(1u8));
    let used = HEAP.reserve_used();
    assert!(used > 0, "init's blocks did not come from the reserve");

    // SAFETY: init stored these with Box::into_raw; main takes them once.
    let mut v = unsafe { Box::from_raw(EARLY_VEC.load(Ordering::Relaxed)) };
    // SAFETY: as above.
    let b = unsafe { Box::from_raw(EARLY_BOX.load(Ordering::Relaxed)) };
    assert!(!in_arena(v.as_ptr().cast()), "the early Vec is not the reserve's");
    assert!(!in_arena(b.as_ptr()), "the early Box is not the reserve's");
    // SAFETY: a reserve block (not zero-size).
    assert_eq!(unsafe { HEAP.usable_size(b.as_ptr()) }, 0, "usable_size of a reserve block");

    let before = HEAP.stats();
    // Growing the reserve's Vec moves it into the C heap (realloc by
    // moving), contents kept.
    for i in 10..10_000 {
        v.push(i);
    }
    assert!(in_arena(v.as_ptr().cast()), "the Vec did not move to the heap");
    assert!(v.iter().copied().eq(0..10_000));
    // Freeing a reserve block is a no-op: the C core counts no free.
    assert!(b.iter().all(|&x| x == 7));
    let frees = HEAP.stats().frees;
    drop(b);
    assert_eq!(HEAP.stats().frees, frees, "a reserve block's free reached the C core");
    drop(v); // the Vec box itself is the reserve's too
    assert_eq!(HEAP.reserve_used(), used, "the reserve served more after init");
    let after = HEAP.stats();
    assert!(after.allocs > before.allocs);
    assert_eq!(after.bytes_used, before.bytes_used, "a heap block was kept or lost");
    HEAP.check().expect("heap consistent");
    println!("reserve: {used} bytes served to init; a reserve Vec grew into the heap; reserve frees skipped");
}
