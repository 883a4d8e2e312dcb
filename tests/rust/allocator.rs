//! The `Allocator` trait for `&HartAlloc`: collections placed on the heap
//! explicitly, allocator-api2's on stable, `core::alloc::Allocator` with the
//! `nightly` feature.  The heap is also this binary's global allocator, so
//! the blocks the tests place explicitly share it with everything else.

#![cfg_attr(feature = "nightly", feature(allocator_api))]

use core::alloc::Layout;

use allocator_api2::alloc::Allocator as _;
use hartalloc::{HartAlloc, Platform};

mod common;
use common::Arena;

const ARENA_SIZE: usize = 64 << 20;
static ARENA: Arena<ARENA_SIZE> = Arena::new();

#[global_allocator]
static HEAP: HartAlloc = HartAlloc::with_platform_and_init(&Platform::PER_THREAD, |heap| {
    // SAFETY: the arena is a static used by nothing else, and .bss: zero.
    unsafe { heap.add_region_zeroed(ARENA.base(), ARENA_SIZE) }.expect("add_region");
    heap.final_init().expect("final_init");
});

fn in_arena(p: *const u8) -> bool {
    (p as usize).wrapping_sub(ARENA.base()) < ARENA_SIZE
}

#[test]
fn vec_new_in() {
    let mut v = allocator_api2::vec::Vec::new_in(&HEAP);
    for i in 0..10_000u32 {
        v.push(i);
    }
    assert!(in_arena(v.as_ptr().cast()));
    assert_eq!(v.iter().map(|&x| u64::from(x)).sum::<u64>(), 49_995_000);
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    HEAP.check().unwrap();
}

#[test]
fn box_new_in() {
    let b = allocator_api2::boxed::Box::new_in([7u64; 512], &HEAP);
    assert!(in_arena(b.as_ptr().cast()));
    assert!(b.iter().all(|&x| x == 7));
    let z = allocator_api2::boxed::Box::new_in((), &HEAP);
    drop((b, z));
    HEAP.check().unwrap();
}

#[test]
fn grow_shrink_keep_contents_and_alignment() {
    let a = &HEAP;
    let old = Layout::from_size_align(100, 8).unwrap();
    // Same alignment: the C core's realloc; another one: moved.
    for (size, align) in [(5000, 8), (6000, 4096), (64, 8), (64, 64), (0, 8)] {
        let p = a.allocate(old).unwrap();
        assert_eq!(p.len(), 100);
        let p = p.cast::<u8>();
        // SAFETY: the block is 100 bytes long.
        unsafe { p.as_ptr().write_bytes(0xab, 100) };
        let new = Layout::from_size_align(size, align).unwrap();
        // SAFETY: `p` is live with layout `old`; `new` is larger for grow,
        // smaller for shrink.
        let q = unsafe { if size >= old.size() { a.grow(p, old, new) } else { a.shrink(p, old, new) } }.unwrap();
        assert_eq!(q.len(), size);
        let q = q.cast::<u8>();
        assert_eq!(q.as_ptr() as usize % align, 0, "{size}@{align} misaligned");
        assert!(size == 0 || in_arena(q.as_ptr()));
        let kept = old.size().min(size);
        // SAFETY: at least `kept` bytes were carried over.
        let bytes = unsafe { core::slice::from_raw_parts(q.as_ptr(), kept) };
        assert!(bytes.iter().all(|&x| x == 0xab), "contents lost resizing to {size}@{align}");
        // SAFETY: q is live with layout `new`.
        unsafe { a.deallocate(q, new) };
    }
    HEAP.check().unwrap();
}

#[test]
fn grow_zeroed_clears_the_new_bytes() {
    let a = &HEAP;
    let old = Layout::from_size_align(48, 16).unwrap();
    let p = a.allocate(old).unwrap().cast::<u8>();
    // SAFETY: 48 bytes.
    unsafe { p.as_ptr().write_bytes(0x5a, 48) };
    let new = Layout::from_size_align(3000, 16).unwrap();
    // SAFETY: p is live with `old`.
    let q = unsafe { a.grow_zeroed(p, old, new) }.unwrap().cast::<u8>();
    // SAFETY: 3000 bytes.
    let bytes = unsafe { core::slice::from_raw_parts(q.as_ptr(), 3000) };
    assert!(bytes[..48].iter().all(|&x| x == 0x5a));
    assert!(bytes[48..].iter().all(|&x| x == 0));
    // SAFETY: q is live with `new`.
    unsafe { a.deallocate(q, new) };
    let z = a.allocate_zeroed(Layout::from_size_align(10_000, 8).unwrap()).unwrap();
    // SAFETY: 10 000 bytes.
    assert!(unsafe { z.as_ref() }.iter().all(|&x| x == 0));
    // SAFETY: z is live with this layout.
    unsafe { a.deallocate(z.cast(), Layout::from_size_align(10_000, 8).unwrap()) };
}

#[test]
fn out_of_memory_is_an_error() {
    let huge = Layout::from_size_align(ARENA_SIZE * 2, 8).unwrap();
    assert!((&HEAP).allocate(huge).is_err());
}

#[cfg(feature = "nightly")]
#[test]
fn core_allocator_on_nightly() {
    let mut v: Vec<u64, &HartAlloc> = Vec::new_in(&HEAP);
    v.extend(0..1000);
    assert!(in_arena(v.as_ptr().cast()));
    let b = Box::new_in([1u8; 4096], &HEAP);
    assert!(in_arena(b.as_ptr()));
    assert_eq!(v.iter().sum::<u64>(), 499_500);
    drop((v, b));
    HEAP.check().unwrap();
}
