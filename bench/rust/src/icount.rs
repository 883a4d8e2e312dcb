//! Instruction counts under callgrind (run by bench/icount.py): the same
//! four workloads and sequences as cbench's `--icount`, on the Rust peers.
//!
//!   hartalloc-bench --icount ALLOCATOR OPS
//!
//! Each workload's sequence (fixed seed) runs twice through the same loop:
//! untimed by `icount_warmup` (first-use set-up, caches filled), then by
//! `icount_run`, the only function callgrind counts
//! (`--toggle-collect=*icount_run*`; `--dump-after` writes one total per
//! workload, in this order).  The `null` allocator measures the loop
//! alone, to be subtracted.

use core::alloc::{GlobalAlloc, Layout};
use core::hint::black_box;

use crate::work::Rng;

/// The workloads, in the order their totals are dumped.
const CHURN: usize = 0;
const PAIR64: usize = 1;
const MID: usize = 2;
const FRAME: usize = 3;
const KINDS: usize = 4;
const SLOTS: usize = 1024;

/// Allocators measured here (besides `null`).
pub const ALLOCATORS: &[&str] = &["hartalloc", "talc", "rlsf", "buddy_system_allocator"];

#[derive(Clone, Copy)]
pub struct Op {
    slot: u32,
    size: u32,
}

/// What the loop calls: bytes at alignment 8, and one 4 KiB page.
trait Subject {
    fn alloc(&self, size: u32) -> *mut u8;
    fn free(&self, p: *mut u8, size: u32);
    fn frame_alloc(&self) -> *mut u8;
    fn frame_free(&self, p: *mut u8);
}

fn layout(size: u32) -> Layout {
    // SAFETY: sizes are 8..=16 KiB, the alignment 8: always valid.
    unsafe { Layout::from_size_align_unchecked(size as usize, 8) }
}

const FRAME_LAYOUT: Layout = match Layout::from_size_align(4096, 4096) {
    Ok(l) => l,
    Err(_) => panic!("4 KiB at 4 KiB"),
};

/// A byte allocator; a page is its aligned alloc of 4096 at 4096 (the
/// peers have no page API).
struct Bytes(&'static (dyn GlobalAlloc + Sync));

impl Subject for Bytes {
    fn alloc(&self, size: u32) -> *mut u8 {
        // SAFETY: a non-zero size; the loop frees what it got, once.
        unsafe { self.0.alloc(layout(size)) }
    }
    fn free(&self, p: *mut u8, size: u32) {
        // SAFETY: a block from alloc with this size, freed once.
        unsafe { self.0.dealloc(p, layout(size)) }
    }
    fn frame_alloc(&self) -> *mut u8 {
        // SAFETY: a non-zero size.
        unsafe { self.0.alloc(FRAME_LAYOUT) }
    }
    fn frame_free(&self, p: *mut u8) {
        // SAFETY: a block from frame_alloc, freed once.
        unsafe { self.0.dealloc(p, FRAME_LAYOUT) }
    }
}

/// hartalloc: its GlobalAlloc for bytes, its page API for pages.
struct Hart(&'static (dyn GlobalAlloc + Sync));

impl Subject for Hart {
    fn alloc(&self, size: u32) -> *mut u8 {
        // SAFETY: as for Bytes.
        unsafe { self.0.alloc(layout(size)) }
    }
    fn free(&self, p: *mut u8, size: u32) {
        // SAFETY: as for Bytes.
        unsafe { self.0.dealloc(p, layout(size)) }
    }
    fn frame_alloc(&self) -> *mut u8 {
        // SAFETY: plain arguments, checked by the C core.
        unsafe { hartalloc::sys::ha_alloc_pages(1, hartalloc::PAGE_SIZE).cast() }
    }
    fn frame_free(&self, p: *mut u8) {
        // SAFETY: a page from ha_alloc_pages(1), freed once.
        unsafe { hartalloc::sys::ha_free_pages(p.cast(), 1) }
    }
}

/// The loop alone: one fixed block (never written), frees do nothing.
struct Null;

#[repr(align(4096))]
struct Page([u8; 4096]);
static NULL_BLOCK: Page = Page([0; 4096]);

impl Subject for Null {
    fn alloc(&self, _size: u32) -> *mut u8 {
        NULL_BLOCK.0.as_ptr().cast_mut()
    }
    fn free(&self, _p: *mut u8, _size: u32) {}
    fn frame_alloc(&self) -> *mut u8 {
        NULL_BLOCK.0.as_ptr().cast_mut()
    }
    fn frame_free(&self, _p: *mut u8) {}
}

/// One workload's loop; blocks are never written: only the allocator's
/// work is counted.
#[inline(always)]
fn ic_loop(a: &dyn Subject, kind: usize, ops: &[Op], slots: &mut [*mut u8], sizes: &mut [u32]) {
    match kind {
        CHURN => {
            for op in ops {
                let s = op.slot as usize;
                if !slots[s].is_null() {
                    a.free(slots[s], sizes[s]);
                    slots[s] = core::ptr::null_mut();
                } else {
                    slots[s] = a.alloc(op.size);
                    sizes[s] = op.size;
                }
            }
        }
        PAIR64 | MID => {
            for op in ops {
                let p = black_box(a.alloc(op.size));
                a.free(p, op.size);
            }
        }
        FRAME => {
            for _ in ops {
                let p = black_box(a.frame_alloc());
                a.frame_free(p);
            }
        }
        _ => {}
    }
}

#[inline(never)]
fn icount_warmup(a: &dyn Subject, kind: usize, ops: &[Op], slots: &mut [*mut u8], sizes: &mut [u32]) {
    // black_box: a body of its own, or LLVM merges the two identical
    // functions and callgrind would count the warm-up too.
    ic_loop(a, black_box(kind), ops, slots, sizes)
}

#[inline(never)]
fn icount_run(a: &dyn Subject, kind: usize, ops: &[Op], slots: &mut [*mut u8], sizes: &mut [u32]) {
    ic_loop(a, kind, ops, slots, sizes)
}

/// The sequence of one workload, as cbench's ic_sequence: 2n ops.
fn sequence(kind: usize, n: usize, seed: u64) -> Vec<Op> {
    let mut r = Rng::new(seed + kind as u64);
    (0..2 * n)
        .map(|_| match kind {
            CHURN => {
                let slot = r.range(0, SLOTS) as u32;
                Op { slot, size: r.range(8, 4097) as u32 }
            }
            PAIR64 => Op { slot: 0, size: 64 },
            MID => Op { slot: 0, size: r.range(1024, 16 * 1024 + 1) as u32 },
            _ => Op { slot: 0, size: 4096 },
        })
        .collect()
}

/// Run the four workloads on `name` (`null` or one of [`ALLOCATORS`]).
pub fn main(name: &str, n: usize, seed: u64, make: impl FnOnce(&str) -> &'static (dyn GlobalAlloc + Sync)) -> i32 {
    if n == 0 || !(name == "null" || ALLOCATORS.contains(&name)) {
        eprintln!("hartalloc-bench --icount: unknown allocator '{name}' or no ops");
        return 2;
    }
    let subject: Box<dyn Subject> = match name {
        "null" => Box::new(Null),
        "hartalloc" => Box::new(Hart(make(name))),
        _ => Box::new(Bytes(make(name))),
    };
    println!("hartalloc-bench --icount {name}: {n} ops per workload after {n} untimed, seed {seed:#x}+workload");
    let mut slots = vec![core::ptr::null_mut::<u8>(); SLOTS];
    let mut sizes = vec![0u32; SLOTS];
    for kind in 0..KINDS {
        let ops = sequence(kind, n, seed);
        icount_warmup(&*subject, kind, &ops[..n], &mut slots, &mut sizes);
        icount_run(&*subject, kind, &ops[n..], &mut slots, &mut sizes);
        for (p, &size) in slots.iter_mut().zip(sizes.iter()) {
            if !p.is_null() {
                subject.free(*p, size);
                *p = core::ptr::null_mut();
            }
        }
    }
    0
}
