//! A bare-metal program that allocates through hartalloc: `_start` puts the
//! heap on a static arena and fills a `Vec`.  It is only built and linked,
//! never run; the link proves that the C core's objects fit the target's
//! Rust objects and need nothing the target does not provide.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

use alloc::vec::Vec;
use core::panic::PanicInfo;
use core::ptr::addr_of_mut;
use hartalloc::HartAlloc;

#[global_allocator]
static HEAP: HartAlloc = HartAlloc::new();

#[repr(C, align(4096))]
struct Arena([u8; 1 << 16]);
static mut ARENA: Arena = Arena([0; 1 << 16]);

/// Sums a vector that grows past its first allocation.
#[inline(never)]
fn sum_of_squares(n: u64) -> u64 {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(i * i);
    }
    v.iter().sum()
}

/// The entry point a kernel's boot code would jump to.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let arena = addr_of_mut!(ARENA);
    // SAFETY: ARENA is used by nothing but the heap, from here on, and
    // `_start` runs once.
    unsafe { HEAP.early_init(arena as usize, core::mem::size_of::<Arena>()) };
    let s = sum_of_squares(100);
    // Keep the result alive so the allocation is not optimised away.
    core::hint::black_box(s);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {}
}
