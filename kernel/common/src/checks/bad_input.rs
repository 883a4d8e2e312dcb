//! Bad input: a deliberate double free.  The allocator must catch it and
//! report it through its fatal hook, which this kernel turns into a panic
//! carrying the C core's message; reaching the end of this function is the
//! failure.

use alloc::alloc::{dealloc, Layout};
use alloc::boxed::Box;

use super::Ctx;
use crate::println;

pub fn double_free(ctx: &Ctx) -> ! {
    let layout = Layout::new::<[u64; 4]>();
    let p = Box::into_raw(Box::new([0x1234u64; 4]));
    // SAFETY: p came from Box::into_raw just above: this is its one
    // legitimate free.
    drop(unsafe { Box::from_raw(p) });
    let p = core::hint::black_box(p as *mut u8);
    println!("bad input: freeing {:p} a second time; the allocator must panic", p);
    // SAFETY: none: this free is the deliberate bug under test.  The
    // allocator must detect it before it touches any of its structures.
    unsafe { dealloc(p, layout) };
    println!("[FAIL] bad input: the double free of {:p} was not detected", p);
    (ctx.machine.exit_failure)(crate::EXIT_CHECKS_FAILED)
}
