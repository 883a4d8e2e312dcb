//! A fault the C core detects becomes a Rust panic with the C core's
//! message.
//!
//! ha_platform_fatal is `extern "C"` (see rust-shim/platform.rs for why not
//! "C-unwind"), so the panic cannot unwind out of it and the process aborts
//! after printing the message: each scenario therefore runs in a child
//! process (this binary re-executed with HARTALLOC_FATAL_SCENARIO set), and
//! the parent checks its exit and its stderr.

use std::alloc::{GlobalAlloc, Layout};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hartalloc::{sys, HartAlloc, Platform};

mod common;
use common::Arena;

const ARENA_SIZE: usize = 32 << 20;
static ARENA: Arena<ARENA_SIZE> = Arena::new();

#[global_allocator]
static HEAP: HartAlloc = HartAlloc::with_init(|heap| {
    // SAFETY: ARENA is a static nothing else uses.
    unsafe { heap.add_region(ARENA.base(), ARENA_SIZE) }.expect("add_region");
    heap.final_init().expect("final_init");
});

const ENV: &str = "HARTALLOC_FATAL_SCENARIO";

fn main() {
    match std::env::var(ENV) {
        Ok(s) => child(&s),
        Err(_) => parent(),
    }
}

/// Each scenario prints the address it frees (stdout), then faults.
fn child(scenario: &str) {
    let out = std::io::stdout();
    match scenario {
        "double-free" => {
            // SAFETY: deliberately wrong: the second ha_free is the fault
            // under test, reported before the heap changes.
            unsafe {
                let p = sys::ha_alloc(64, 8);
                writeln!(out.lock(), "addr {:#x}", p as usize).unwrap();
                sys::ha_free(p);
                sys::ha_free(p);
            }
        }
        "size-mismatch" => {
            let layout = Layout::from_size_align(2000, 8).unwrap();
            // SAFETY: deliberately wrong: freed with another size.
            unsafe {
                let p = HEAP.alloc(layout);
                writeln!(out.lock(), "addr {:#x}", p as usize).unwrap();
                HEAP.dealloc(p, Layout::from_size_align(100, 8).unwrap());
            }
        }
        "custom-platform" => {
            static CUSTOM: Platform = Platform::SINGLE_HART.with_fatal(exit_42);
            hartalloc::set_platform(&CUSTOM);
            // SAFETY: deliberately wrong: a pointer the heap never handed out.
            unsafe {
                let local = 0u64;
                let p = &local as *const u64 as *mut core::ffi::c_void;
                writeln!(out.lock(), "addr {:#x}", p as usize).unwrap();
                sys::ha_free(p);
            }
        }
        other => panic!("unknown scenario {other}"),
    }
    // Not reached when the fault is reported.
    std::process::exit(3);
}

fn exit_42(msg: &str, addr: usize) -> ! {
    eprintln!("custom fatal: {msg} [{addr:#x}]");
    std::process::exit(42);
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(scenario: &str) -> Outcome {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ENV, scenario)
        // The default RUST_BACKTRACE=1 of some shells would only add noise.
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    // A fatal hook that hung (a lock never released) must fail the test,
    // not stall it.
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("scenario {scenario}: child hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn addr_of(o: &Outcome) -> String {
    o.stdout.lines().find_map(|l| l.strip_prefix("addr ")).expect("child printed its address").to_string()
}

fn parent() {
    let mut passed = 0;

    let o = run("double-free");
    let addr = addr_of(&o);
    assert_ne!(o.code, Some(0), "double free: child succeeded");
    assert_ne!(o.code, Some(3), "double free: not reported\n{}", o.stderr);
    let expect = format!("hartalloc: double free (block already freed) at {addr}");
    assert!(o.stderr.contains("panicked at"), "no panic:\n{}", o.stderr);
    assert!(o.stderr.contains(&expect), "expected '{expect}' in:\n{}", o.stderr);
    println!("double free -> panic '{expect}'");
    passed += 1;

    let o = run("size-mismatch");
    let addr = addr_of(&o);
    assert_ne!(o.code, Some(0));
    assert_ne!(o.code, Some(3), "size mismatch: not reported\n{}", o.stderr);
    let expect = format!("size does not match the block at {addr}");
    assert!(o.stderr.contains(&expect), "expected '{expect}' in:\n{}", o.stderr);
    println!("sized free with the wrong size -> panic '...{expect}'");
    passed += 1;

    let o = run("custom-platform");
    let addr = addr_of(&o);
    assert_eq!(o.code, Some(42), "custom fatal hook not used:\n{}", o.stderr);
    assert!(o.stderr.contains("custom fatal: hartalloc: free of a pointer"), "{}", o.stderr);
    assert!(o.stderr.contains(&format!("[{addr}]")), "{}", o.stderr);
    println!("registered Platform::fatal called with the message and the address");
    passed += 1;

    println!("{passed} passed, 0 failed");
}
