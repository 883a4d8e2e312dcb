//! The `critical-section` feature: the default platform's interrupt
//! save/restore are critical sections of the implementation the program
//! links (here the `critical-section` crate's `std` one, a global lock).
//!
//! Runs alone (no harness) so that nothing else holds the heap's locks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use hartalloc::{HartAlloc, Platform};

mod common;
use common::Arena;

const ARENA_SIZE: usize = 32 << 20;
static ARENA: Arena<ARENA_SIZE> = Arena::new();

fn no_irq_save() -> usize {
    0
}

fn no_irq_restore(_: usize) {}

/// A platform that leaves interrupts alone, then takes critical sections
/// again: the builder order must not matter.
static PLATFORM: Platform =
    Platform::SINGLE_HART.with_irq(no_irq_save, no_irq_restore).with_critical_section();

#[global_allocator]
static HEAP: HartAlloc = HartAlloc::with_platform_and_init(&PLATFORM, |heap| {
    // SAFETY: the arena is a static used by nothing else.
    unsafe { heap.add_region(ARENA.base(), ARENA_SIZE) }.expect("add_region");
    heap.final_init().expect("final_init");
});

fn main() {
    // The heap's platform is the one registered.
    HEAP.ensure_init();
    assert!(core::ptr::eq(hartalloc::platform(), &PLATFORM), "with_platform did not register the platform");
    // set_platform replaces it, and the heap's later calls leave that be.
    static OTHER: Platform = Platform::SINGLE_HART;
    hartalloc::set_platform(&OTHER);
    let _ = HEAP.stats();
    assert!(core::ptr::eq(hartalloc::platform(), &OTHER), "the heap re-registered its platform over set_platform");
    hartalloc::set_platform(&PLATFORM);

    // irq_save enters a critical section: another thread cannot enter one
    // until irq_restore.  (Allocating meanwhile on this thread nests.)
    let entered = Arc::new(AtomicBool::new(false));
    let state = (PLATFORM.irq_save)();
    let v: Vec<u64> = (0..1000).collect();
    let t = {
        let entered = entered.clone();
        thread::spawn(move || critical_section::with(|_| entered.store(true, Ordering::SeqCst)))
    };
    thread::sleep(Duration::from_millis(200));
    assert!(!entered.load(Ordering::SeqCst), "a critical section ran inside irq_save .. irq_restore");
    // SAFETY: the state irq_save returned on this thread, last in first out.
    unsafe { (PLATFORM.irq_restore)(state) };
    t.join().unwrap();
    assert!(entered.load(Ordering::SeqCst));
    println!("irq_save .. irq_restore is a critical section");

    // The default platform takes critical sections too.
    let s = (Platform::SINGLE_HART.irq_save)();
    // SAFETY: as above.
    unsafe { (Platform::SINGLE_HART.irq_restore)(s) };

    // The heap works across threads with critical sections as its
    // interrupt masking.
    let workers: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                let mut keep = Vec::new();
                for n in 0..2000usize {
                    keep.push(vec![i as u8; 1 + (n * 37) % 3000]);
                    if n % 3 == 0 {
                        keep.swap_remove(n % keep.len());
                    }
                }
                keep.iter().map(|b| b.len()).sum::<usize>()
            })
        })
        .collect();
    let total: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(total > 0);
    drop(v);
    HEAP.check().expect("heap consistent");
    println!("4 threads allocated under critical sections; heap consistent");
    println!("1 passed, 0 failed");
}
