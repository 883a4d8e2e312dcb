//! hartalloc against the `no_std` allocators kernels use, on talc's and
//! ArceOS's published workloads plus page and SMP ones.
//!
//!   hartalloc-bench [--quick] [--only WORKLOAD,...] [--alloc ALLOCATOR,...] --out FILE.csv
//!   hartalloc-bench --icount ALLOCATOR OPS   (under callgrind: icount.rs)
//!
//! Every trial runs in a forked child with a fresh allocator over the same
//! 128 MiB arena (mapped and populated once, before any clock starts):
//! hartalloc's heap can be started once per process, and the peers get the
//! same treatment so that no allocator runs on a heap another trial aged.
//! Each child writes its figures to a pipe; the parent writes one CSV row
//! per figure: harness,workload,param,allocator,trial,metric,value.
//! Trials go round the allocators (trial 0 of each, then trial 1, ...), so
//! that a busy spell of a shared machine falls on all of them alike.
#![deny(unsafe_op_in_unsafe_fn)]

mod allocs;
mod icount;
mod work;

use core::alloc::{GlobalAlloc, Layout};
use std::alloc::System;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Size of every arena: talc's and ArceOS's benchmarks use 128 MiB.
const ARENA: usize = 128 << 20;
/// Heap efficiency fills the arena to the first failure, 300 times per
/// allocator and arena: 32 MiB (a quarter of the arena, which fits the time
/// budget of `make bench`) and 4 MiB, the size of a small kernel's heap
/// (rCore's is 3 to 8 MiB), where what a slab class costs before it holds
/// much is a larger share.
const EFF_ARENAS: [usize; 2] = [4 << 20, 32 << 20];
/// Base of the seeds: trial t of every allocator uses SEED + t.
const SEED: u64 = 0x6861_7274_0000;

// ------------------------------------------------------ the global allocator
// The collections workloads use Vec and BTreeMap as a kernel would, through
// the global allocator. In a child that runs one, the global allocator
// routes to the allocator under test; blocks are told apart by address, so
// memory the runtime got from System earlier is still freed there.

static ROUTE: OnceLock<&'static (dyn GlobalAlloc + Sync)> = OnceLock::new();
static ARENA_LO: AtomicUsize = AtomicUsize::new(0);
static ARENA_HI: AtomicUsize = AtomicUsize::new(0);

struct Router;

fn in_arena(p: *mut u8) -> bool {
    let a = p as usize;
    a >= ARENA_LO.load(Ordering::Relaxed) && a < ARENA_HI.load(Ordering::Relaxed)
}

// SAFETY: every block is served by System or by the allocator under test,
// and handed back to the one that owns its address.
unsafe impl GlobalAlloc for Router {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's promises.
        unsafe {
            match ROUTE.get() {
                Some(a) => a.alloc(l),
                None => System.alloc(l),
            }
        }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded to the allocator that owns p.
        unsafe {
            match ROUTE.get() {
                Some(a) if in_arena(p) => a.dealloc(p, l),
                _ => System.dealloc(p, l),
            }
        }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        // SAFETY: forwarded to the allocator that owns p.
        unsafe {
            match ROUTE.get() {
                Some(a) if in_arena(p) => a.realloc(p, l, n),
                _ => System.realloc(p, l, n),
            }
        }
    }
}

#[global_allocator]
static GLOBAL: Router = Router;

// ------------------------------------------------------------- the settings

struct Settings {
    window: Duration,
    trials: u64,
    eff_rounds: u64,
    lat_samples: usize,
    /// Divides the collections' element counts (1 for the real figures).
    coll_div: usize,
    coll_iters: u32,
    /// Trials of the collections benchmarks: fewer, since the peers whose
    /// free is linear in the free blocks (buddy_system_allocator,
    /// linked_list_allocator) take seconds per iteration.
    coll_trials: u64,
}

const FULL: Settings = Settings {
    window: Duration::from_millis(200),
    trials: 7,
    eff_rounds: 300,
    lat_samples: 50_000,
    coll_div: 1,
    coll_iters: 1,
    coll_trials: 5,
};

const QUICK: Settings = Settings {
    window: Duration::from_millis(5),
    trials: 2,
    eff_rounds: 2,
    lat_samples: 2_000,
    coll_div: 100,
    coll_iters: 1,
    coll_trials: 2,
};

// ---------------------------------------------------------- child processes

/// The arena: one shared mapping, populated once in the parent, that every
/// child inherits as it is: no child pays page faults (a kernel's RAM is
/// mapped before its heap starts) and children run one at a time, each
/// building a fresh allocator over it. No allocator is told the memory is
/// zeroed, so what a previous child left in it does not matter.
fn arena() -> *mut u8 {
    static BASE: AtomicUsize = AtomicUsize::new(0);
    let b = BASE.load(Ordering::Relaxed);
    if b != 0 {
        return b as *mut u8;
    }
    // SAFETY: an anonymous shared mapping; failure is checked.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            ARENA,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap of the arena failed");
    BASE.store(p as usize, Ordering::Relaxed);
    ARENA_LO.store(p as usize, Ordering::Relaxed);
    ARENA_HI.store(p as usize + ARENA, Ordering::Relaxed);
    p.cast()
}

/// Run `f` in a forked child; its figures (metric, value) come back
/// through a pipe. None when the child failed (its message is on stderr).
fn in_child(timeout_s: u32, f: impl FnOnce() -> Vec<(String, f64)>) -> Option<Vec<(String, f64)>> {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    std::io::stdout().flush().ok();
    // SAFETY: the parent is single-threaded (children start the threads).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain libc calls in the child; _exit skips the parent's
        // atexit handlers and buffers.
        unsafe {
            libc::close(fds[0]);
            libc::alarm(timeout_s);
        }
        let out = f();
        let mut text = String::new();
        for (m, v) in out {
            text += &format!("{m} {v}\n");
        }
        // SAFETY: fds[1] is the pipe's write end, text a valid buffer.
        unsafe {
            let mut off = 0;
            while off < text.len() {
                let n = libc::write(fds[1], text.as_ptr().add(off).cast(), text.len() - off);
                if n <= 0 {
                    libc::_exit(3);
                }
                off += n as usize;
            }
            libc::_exit(0);
        }
    }
    // SAFETY: fds[1] is ours to close; fds[0] becomes a File that closes it.
    unsafe { libc::close(fds[1]) };
    // SAFETY: fds[0] is an open descriptor nothing else owns.
    let mut rd = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    let mut text = String::new();
    rd.read_to_string(&mut text).ok();
    let mut status = 0;
    // SAFETY: pid is our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return None;
    }
    Some(
        text.lines()
            .filter_map(|l| l.split_once(' ').map(|(m, v)| (m.to_string(), v.parse().unwrap_or(f64::NAN))))
            .collect(),
    )
}

/// A byte allocator for a trial on `threads` threads.
fn byte_alloc(name: &str, threads: usize) -> &'static (dyn GlobalAlloc + Sync) {
    let base = arena();
    // SAFETY: a fresh arena nothing else uses; one allocator per child.
    unsafe { allocs::make(name, base, ARENA, threads) }
}

struct Out {
    csv: std::fs::File,
    failures: Vec<String>,
}

impl Out {
    fn record(&mut self, workload: &str, param: &str, alloc: &str, trial: u64, figs: Option<Vec<(String, f64)>>) {
        match figs {
            Some(figs) if !figs.is_empty() && figs.iter().all(|(_, v)| v.is_finite()) => {
                for (m, v) in figs {
                    writeln!(self.csv, "rust,{workload},{param},{alloc},{trial},{m},{v}").unwrap();
                }
            }
            _ => {
                let what = format!("{workload} {param} {alloc} trial {trial}");
                eprintln!("  FAILED: {what}");
                writeln!(self.csv, "rust,{workload},{param},{alloc},{trial},failed,1").unwrap();
                self.failures.push(what);
            }
        }
    }
}

fn percentiles(sorted: &[u64]) -> Vec<(String, f64)> {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64;
    vec![
        ("p1".into(), at(0.01)),
        ("p25".into(), at(0.25)),
        ("p50".into(), at(0.50)),
        ("p75".into(), at(0.75)),
        ("p99".into(), at(0.99)),
        ("p99.9".into(), at(0.999)),
        ("max".into(), *sorted.last().unwrap() as f64),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "--icount" {
        let n = args[3].parse().unwrap_or(0);
        std::process::exit(icount::main(&args[2], n, SEED, |name| byte_alloc(name, 1)));
    }
    let quick = args.iter().any(|a| a == "--quick");
    let arg_after = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    // No default file: a run from the wrong directory would leave a stray
    // CSV behind.
    let Some(out_path) = arg_after("--out") else {
        eprintln!("usage: hartalloc-bench [--quick] [--only WORKLOAD,...] [--alloc ALLOCATOR,...] --out FILE.csv");
        std::process::exit(2);
    };
    let only: Option<Vec<String>> = arg_after("--only").map(|s| s.split(',').map(str::to_string).collect());
    let want = |w: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));
    // Some allocators only, e.g. one under `perf record`.
    let allocs_only: Option<Vec<String>> = arg_after("--alloc").map(|s| s.split(',').map(str::to_string).collect());
    let byte_allocs: Vec<&'static str> = allocs::BYTE_ALLOCATORS
        .iter()
        .copied()
        .filter(|n| allocs_only.as_ref().is_none_or(|o| o.iter().any(|x| x == n)))
        .collect();
    let page_allocs: Vec<&'static str> = allocs::PAGE_ALLOCATORS
        .iter()
        .copied()
        .filter(|n| allocs_only.as_ref().is_none_or(|o| o.iter().any(|x| x == n)))
        .collect();
    let s = if quick { &QUICK } else { &FULL };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);

    println!(
        "hartalloc-bench: arena {} MiB, {} trials, window {} ms, seeds {SEED:#x}+trial, {threads} threads for the MT runs",
        ARENA >> 20,
        s.trials,
        s.window.as_millis()
    );
    let mut out = Out { csv: std::fs::File::create(&out_path).expect("create the CSV"), failures: Vec::new() };
    let t0 = Instant::now();
    arena(); // mapped before the first fork, so that every child shares it
    let maxes = [200usize, 1000, 3000, 10000, 30000];

    for (wl, realloc, mt) in
        [("random_actions", true, false), ("random_actions_norealloc", false, false), ("random_actions_mt", true, true)]
    {
        if !want(wl) {
            continue;
        }
        println!("{wl}...");
        for &max in &maxes {
            for t in 0..s.trials {
                for &name in &byte_allocs {
                    let figs = in_child(60, || {
                        let a = byte_alloc(name, if mt { threads } else { 1 });
                        let ops = if mt {
                            std::thread::scope(|sc| {
                                let hs: Vec<_> = (0..threads)
                                    .map(|i| {
                                        sc.spawn(move || {
                                            work::random_actions(a, max, realloc, s.window, SEED + t + 1000 * i as u64)
                                        })
                                    })
                                    .collect();
                                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                            })
                        } else {
                            work::random_actions(a, max, realloc, s.window, SEED + t)
                        };
                        vec![("ops_per_s".into(), ops as f64 / s.window.as_secs_f64())]
                    });
                    out.record(wl, &format!("max={max}"), name, t, figs);
                }
            }
        }
    }

    if want("heap_efficiency") {
        println!("heap_efficiency...");
        for &size in &EFF_ARENAS {
            let param = format!("arena={}MiB", size >> 20);
            for &name in &byte_allocs {
                for r in 0..s.eff_rounds {
                    let figs = in_child(60, || {
                        let base = arena();
                        // SAFETY: the first `size` bytes of a fresh arena; one allocator per child.
                        let a = unsafe { allocs::make(name, base, size, 1) };
                        vec![("efficiency".into(), work::heap_efficiency(a, size, SEED + r))]
                    });
                    out.record("heap_efficiency", &param, name, r, figs);
                }
            }
        }
    }

    if want("latency") {
        println!("latency...");
        for max in [1000usize, 30000] {
            for t in 0..s.trials {
                for &name in &byte_allocs {
                    let figs = in_child(60, || {
                        let a = byte_alloc(name, 1);
                        percentiles(&work::latency(a, max, s.lat_samples, SEED + t))
                    });
                    out.record("latency", &format!("max={max}"), name, t, figs);
                }
            }
        }
    }

    if want("collections") {
        println!("collections...");
        let d = s.coll_div;
        type Bench = (&'static str, fn(usize));
        let benches: [Bench; 4] = [
            ("vec_push_3M", |d| work::vec_push(3_000_000 / d)),
            ("vec_rand_free_25K_64", |d| work::vec_rand_free(25_000 / d, 64)),
            ("vec_rand_free_7500_520", |d| work::vec_rand_free(7_500 / d, 520)),
            ("btree_map_50K", |d| work::btree_map(50_000 / d)),
        ];
        for (bench, f) in benches {
            for t in 0..s.coll_trials {
                for &name in &byte_allocs {
                    let figs = in_child(120, || {
                        let a = byte_alloc(name, 1);
                        ROUTE.set(a).ok().expect("one route per child");
                        f(d); // warm-up, as Criterion's
                        let start = Instant::now();
                        for _ in 0..s.coll_iters {
                            f(d);
                        }
                        vec![("ms".into(), start.elapsed().as_secs_f64() * 1e3 / s.coll_iters as f64)]
                    });
                    out.record("collections", bench, name, t, figs);
                }
            }
        }
    }

    if want("pages") {
        println!("pages...");
        for t in 0..s.trials {
            for &name in &page_allocs {
                let figs = in_child(60, || {
                    let base = arena();
                    // SAFETY: a fresh arena; one allocator per child.
                    let mut p = unsafe { allocs::make_pages(name, base, ARENA) };
                    let ops = work::page_churn(&mut *p, s.window, SEED + t);
                    vec![("ops_per_s".into(), ops as f64 / s.window.as_secs_f64())]
                });
                out.record("pages", "single", name, t, figs);
                let figs = in_child(60, || {
                    let base = arena();
                    // SAFETY: as above.
                    let mut p = unsafe { allocs::make_pages(name, base, ARENA) };
                    let (ops, failed, largest) = work::page_runs(&mut *p, ARENA / 4096, s.window, SEED + t);
                    vec![
                        ("ops_per_s".into(), ops as f64 / s.window.as_secs_f64()),
                        ("failed_allocs".into(), failed as f64),
                        ("largest_run_pages".into(), largest as f64),
                    ]
                });
                out.record("pages", "runs_1_64", name, t, figs);
            }
        }
    }

    if want("smp") {
        println!("smp...");
        for nt in [1usize, threads] {
            for t in 0..s.trials {
                for &name in &byte_allocs {
                    let figs = in_child(60, || {
                        // Threads as harts even when there is one: the
                        // per-CPU machinery is what this measures.
                        let a = byte_alloc(name, threads);
                        let ops = work::smp_churn(a, nt, s.window, SEED + t);
                        vec![("ops_per_s".into(), ops as f64 / s.window.as_secs_f64())]
                    });
                    out.record("smp", &format!("threads={nt}"), name, t, figs);
                }
            }
        }
    }

    println!("hartalloc-bench: done in {:.1} s, {} failed trials", t0.elapsed().as_secs_f64(), out.failures.len());
    if !out.failures.is_empty() {
        std::process::exit(1);
    }
}
