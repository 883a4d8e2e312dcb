//! `String` and `format!` on the heap, and the boot path's early blocks.

use alloc::format;
use alloc::string::{String, ToString};

use super::{Ctx, Outcome};
use crate::{ensure, println};

pub fn run() -> Outcome {
    let name = String::from("hartalloc");
    let line = format!("Hello, {}! [from String]", name);
    println!("{}", line);
    ensure!(line == "Hello, hartalloc! [from String]", "format! produced {:?}", line);
    let mut grown = String::new();
    for i in 0..100 {
        grown.push_str(&i.to_string());
    }
    ensure!(grown.len() == 190 && grown.ends_with("9899"), "String growth: {:?}", grown);
    Ok(String::new())
}

/// The reserved-range list was allocated by the early allocator before the
/// final allocators existed: it must be intact and lie in the early range.
pub fn early_blocks(ctx: &Ctx) -> Outcome {
    let ptr = ctx.reserved.as_ptr() as usize;
    ensure!(
        ptr >= ctx.early.start && ptr < ctx.early.end(),
        "the boot path's Vec at {:#x} is not in the early range {:#x}..{:#x}",
        ptr,
        ctx.early.start,
        ctx.early.end()
    );
    let dt = ctx.info.reserved.as_slice();
    ensure!(ctx.reserved.len() == dt.len() + 1, "length {} changed", ctx.reserved.len());
    for (a, b) in ctx.reserved.iter().zip(dt) {
        ensure!(a.range == b.range, "entry changed: {:?} vs {:?}", a.range, b.range);
    }
    Ok(format!("{} reserved ranges read back from {:#x}", ctx.reserved.len(), ptr))
}
