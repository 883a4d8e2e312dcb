//! hartalloc as the global allocator of a std program.
use hartalloc::{HartAlloc, Platform};
use std::cell::UnsafeCell;

// The heap's memory: here a static array (in a kernel, the RAM it owns).
const ARENA_SIZE: usize = 64 << 20;
#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);
// SAFETY: the array is only handed to the heap, as a raw range.
unsafe impl Sync for Arena {}
static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_SIZE]));

// std allocates before main: the init function runs at the first allocation.
#[global_allocator]
static HEAP: HartAlloc = HartAlloc::with_platform_and_init(&Platform::PER_THREAD, |heap| {
    let base = ARENA.0.get() as usize;
    // SAFETY: the arena is used by nothing else, and reads as zero (.bss).
    unsafe { heap.add_region_zeroed(base, ARENA_SIZE) }.expect("add_region");
    heap.final_init().expect("final_init");
});

fn main() {
    let words: Vec<String> = (0..1000).map(|i| format!("word {i}")).collect();
    let frames = HEAP.alloc_pages(2, 8192).expect("two pages"); // freed on drop
    assert_eq!(frames.addr() % 8192, 0);

    // With the allocator-api2 feature, collections on an explicit heap.
    let mut v = allocator_api2::vec::Vec::new_in(&HEAP);
    v.extend_from_slice(&[1u32, 2, 3]);

    let s = HEAP.stats();
    println!("{} allocations, {} bytes in use, {} pages used", s.allocs, s.bytes_used, s.pages_used);
    drop((words, frames, v));
    HEAP.trim(); // cached slabs and arenas back to the page allocator
    HEAP.check().expect("heap consistent");
}
