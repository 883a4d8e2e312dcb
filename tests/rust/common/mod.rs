//! Shared by the test binaries: a static arena to hand to the heap and a
//! small seeded PRNG (tests print their seeds).

#![allow(dead_code)]

use std::cell::UnsafeCell;

/// N bytes of page-aligned static memory, in .bss (so it reads as zero and
/// costs nothing until touched).
#[repr(C, align(4096))]
pub struct Arena<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the arena is only handed to the heap as a raw range; the test
// never makes references into it.
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Arena<N> {
    pub const fn new() -> Self {
        Arena(UnsafeCell::new([0; N]))
    }

    pub fn base(&self) -> usize {
        self.0.get() as usize
    }

    /// Does `p` point into the arena?
    pub fn contains(&self, p: *const u8) -> bool {
        (p as usize).wrapping_sub(self.base()) < N
    }

    /// Start `heap` over the arena, as a kernel's boot does: its first
    /// `early` bytes to the early allocator, the rest as a zeroed region,
    /// then the final heap.
    ///
    /// # Safety
    ///
    /// Nothing else uses the arena, and it is still zero (.bss).
    pub unsafe fn start_heap(&self, heap: &hartalloc::HartAlloc, early: usize) {
        let base = self.base();
        // SAFETY: the caller's guarantees: the memory is ours to give, zero.
        unsafe {
            heap.early_init(base, early);
            heap.add_region_zeroed(base + early, N - early).expect("add_region");
        }
        heap.final_init().expect("final_init");
    }
}

/// xorshift64*: deterministic for a given seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
