//! The alloc collections under load.

use alloc::alloc::{alloc, dealloc, Layout};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{Ctx, Outcome};
use crate::rng::Rng;
use crate::{ensure, println};

const BTREE_ENTRIES: u64 = 100_000;

pub fn btree(ctx: &Ctx) -> Outcome {
    let clock = &ctx.machine.clock;
    let t0 = (clock.now)();
    let mut map = BTreeMap::new();
    // Insert in a scrambled order (multiplication by an odd constant
    // modulo 2^k permutes): the tree splits nodes everywhere.
    for i in 0..BTREE_ENTRIES {
        let k = i.wrapping_mul(0x9E37_79B9) % (1 << 40);
        map.insert(k, i);
    }
    ensure!(map.len() as u64 == BTREE_ENTRIES, "{} entries, expected {}", map.len(), BTREE_ENTRIES);
    for i in (0..BTREE_ENTRIES).step_by(7) {
        let k = i.wrapping_mul(0x9E37_79B9) % (1 << 40);
        ensure!(map.get(&k) == Some(&i), "key {} lost", k);
    }
    let sum: u64 = map.values().sum();
    ensure!(sum == BTREE_ENTRIES * (BTREE_ENTRIES - 1) / 2, "values sum to {}", sum);
    map.retain(|_, v| *v % 2 == 0);
    ensure!(map.len() as u64 == BTREE_ENTRIES / 2, "{} entries after removing the odd ones", map.len());
    let mut prev = None;
    for (&k, &v) in &map {
        ensure!(v % 2 == 0 && prev.is_none_or(|p| p < k), "order or content broken at key {}", k);
        prev = Some(k);
    }
    drop(map);
    Ok(format!("inserted, looked up, halved, walked in order: {} ms", clock.ms_since(t0)))
}

pub fn vec_string_churn() -> Outcome {
    const SEED: u64 = 0x5EED_0001;
    let mut rng = Rng::new(SEED);
    let mut v: Vec<String> = Vec::new();
    let mut total = 0usize;
    for round in 0..40 {
        for _ in 0..500 {
            let n = rng.range(0, 300);
            let s: String = (0..n).map(|j| (b'a' + ((n + j) % 26) as u8) as char).collect();
            v.push(s);
            total += 1;
        }
        // Drop about half, from random places (the Vec shifts, strings move).
        let mut i = 0;
        while i < v.len() {
            if rng.below(2) == 0 {
                v.swap_remove(i);
            } else {
                i += 1;
            }
        }
        for s in &v {
            let n = s.len();
            ensure!(
                s.bytes().enumerate().all(|(j, b)| b == b'a' + ((n + j) % 26) as u8),
                "round {}: a string of length {} changed",
                round,
                n
            );
        }
    }
    let live = v.len();
    drop(v);
    Ok(format!("seed {:#x}: {} strings made, {} live at the end, all intact", SEED, total, live))
}

#[repr(C, align(4096))]
struct PageAligned([u8; 4096]);

pub fn boxes_and_alignments(ctx: &Ctx) -> Outcome {
    let mut big: Box<[u8; 8192]> = Box::new([0u8; 8192]);
    for (i, b) in big.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    ensure!(big.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8), "Box<[u8; 8192]> does not read back");
    ensure!(ctx.in_heap(big.as_ptr() as usize, 8192), "Box<[u8; 8192]> outside the heap");
    drop(big);

    let pa = Box::new(PageAligned([7; 4096]));
    let pa_addr = &*pa as *const PageAligned as usize;
    ensure!(pa_addr.is_multiple_of(4096), "Box of an align(4096) type at {:#x}", pa_addr);
    ensure!(pa.0.iter().all(|&b| b == 7), "align(4096) box does not read back");
    drop(pa);

    let mut n = 0;
    for shift in 0..=12 {
        let align = 1usize << shift;
        for size in [1usize, 7, 24, 100, 1000, 4096, 5000, 70_000] {
            let layout = Layout::from_size_align(size, align).map_err(|_| "bad layout")?;
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { alloc(layout) };
            ensure!(!p.is_null(), "{} bytes at {}: null", size, align);
            ensure!((p as usize).is_multiple_of(align), "{} bytes at {}: got {:p}", size, align, p);
            ensure!(ctx.in_heap(p as usize, size), "{} bytes at {}: {:p} outside the heap", size, align, p);
            // SAFETY: p points to `size` writable bytes just allocated.
            unsafe {
                p.write_bytes(0xA5, size);
                ensure!(*p.add(size - 1) == 0xA5, "last byte of {} at {} lost", size, align);
                dealloc(p, layout);
            }
            n += 1;
        }
    }
    Ok(format!("8 KiB box, align(4096) box, {} size x alignment pairs (alignments 1..4096)", n))
}

/// A Vec of bytes grown by doubling to the target (64 MiB, or less when RAM
/// is small: a moving realloc needs old + new at once) and shrunk back.
pub fn realloc_growth(ctx: &Ctx) -> Outcome {
    const FULL: usize = 64 << 20;
    let ram = ctx.info.ram_bytes();
    let mut target = FULL;
    while target > ram / 4 {
        target /= 2;
    }
    if target < FULL {
        println!("       realloc growth scaled to {} MiB for {} MiB of RAM (64 MiB needs >= 256 MiB)", target >> 20, ram >> 20);
    }
    let clock = &ctx.machine.clock;
    let t0 = (clock.now)();
    let mut v: Vec<u8> = Vec::new();
    let chunk = [0u8; 4096];
    let (mut grows, mut moves, mut last) = (0, 0, 0usize);
    while v.len() < target {
        let cap = v.capacity();
        let start = v.len();
        v.extend_from_slice(&chunk);
        // Mark each 4 KiB step so a move that loses data is seen.
        v[start] = (start >> 12) as u8;
        if v.capacity() != cap {
            grows += 1;
            if v.as_ptr() as usize != last {
                moves += 1;
            }
            last = v.as_ptr() as usize;
        }
    }
    ensure!(v.len() == target, "length {} after growth", v.len());
    ensure!(ctx.in_heap(v.as_ptr() as usize, v.len()), "{} MiB buffer outside the heap", target >> 20);
    let check = |v: &Vec<u8>| (0..v.len()).step_by(4096).all(|i| v[i] == (i >> 12) as u8);
    ensure!(check(&v), "contents lost while growing");
    let grown_ms = clock.ms_since(t0);

    let mut shrinks = 0;
    while v.len() > 4096 {
        v.truncate(v.len() / 2);
        v.shrink_to_fit();
        shrinks += 1;
        ensure!(v.capacity() == v.len(), "shrink_to_fit left capacity {}", v.capacity());
        ensure!(check(&v), "contents lost while shrinking to {} bytes", v.len());
    }
    drop(v);
    Ok(format!(
        "grown to {} MiB in {} reallocs ({} moved, {} in place) in {} ms, shrunk back in {} steps",
        target >> 20,
        grows,
        moves,
        grows - moves,
        grown_ms,
        shrinks
    ))
}
