//! Console output, one whole line at a time.  CPUs print concurrently, so
//! each print holds a lock for the whole line: lines never interleave.  The
//! kernel registers how a byte goes out (SBI console, PL011 UART) and which
//! CPU is running with [`init`]; the macros `print!`, `println!` and
//! `println_force!` of this crate then work from anywhere.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The registered `fn(u8)` and `fn() -> usize`, as addresses (0: none yet).
static PUTCHAR: AtomicUsize = AtomicUsize::new(0);
static CPU_ID: AtomicUsize = AtomicUsize::new(0);

/// Where output goes: `putchar` writes one byte, `cpu_id` names the CPU
/// printing (the lock owner, so a panic while printing cannot deadlock its
/// own CPU).  Call it before the first print; until then prints are lost.
pub fn init(putchar: fn(u8), cpu_id: fn() -> usize) {
    CPU_ID.store(cpu_id as usize, Ordering::Relaxed);
    PUTCHAR.store(putchar as usize, Ordering::Release);
}

fn putchar(b: u8) {
    let f = PUTCHAR.load(Ordering::Acquire);
    if f != 0 {
        // SAFETY: PUTCHAR only ever holds 0 or a `fn(u8)` stored by init.
        let f: fn(u8) = unsafe { core::mem::transmute::<usize, fn(u8)>(f) };
        f(b);
    }
}

fn cpu_id() -> usize {
    let f = CPU_ID.load(Ordering::Relaxed);
    if f == 0 {
        return 0;
    }
    // SAFETY: CPU_ID only ever holds 0 or a `fn() -> usize` stored by init.
    let f: fn() -> usize = unsafe { core::mem::transmute::<usize, fn() -> usize>(f) };
    f()
}

static LOCK: AtomicBool = AtomicBool::new(false);
/// CPU id + 1 of the lock holder, so a panic while printing cannot
/// deadlock its own CPU.
static OWNER: AtomicUsize = AtomicUsize::new(0);

/// A line is built here before it is written (no heap: the console must
/// work before the allocator and when it is broken).
struct LineBuf {
    buf: [u8; 256],
    len: usize,
}

impl LineBuf {
    fn flush(&mut self) {
        for &b in &self.buf[..self.len] {
            if b == b'\n' {
                putchar(b'\r');
            }
            putchar(b);
        }
        self.len = 0;
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

fn lock(force: bool) -> bool {
    let me = cpu_id() + 1;
    if OWNER.load(Ordering::Relaxed) == me {
        return false; // re-entered (a panic while printing): print anyway
    }
    let mut spins: u64 = 0;
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins += 1;
        // A CPU that died holding the lock must not silence the report
        // of why: a forced print takes over after a while.
        if force && spins > 10_000_000 {
            return false;
        }
        core::hint::spin_loop();
    }
    OWNER.store(me, Ordering::Relaxed);
    true
}

fn unlock() {
    OWNER.store(0, Ordering::Relaxed);
    LOCK.store(false, Ordering::Release);
}

#[doc(hidden)]
pub fn print_fmt(args: fmt::Arguments, force: bool) {
    let held = lock(force);
    let mut line = LineBuf { buf: [0; 256], len: 0 };
    let _ = line.write_fmt(args);
    line.flush();
    if held {
        unlock();
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!($($arg)*), false) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {
        $crate::console::print_fmt(format_args!("{}\n", format_args!($($arg)*)), false)
    };
}

/// For panics and traps: prints even if the console lock is stuck.
#[macro_export]
macro_rules! println_force {
    ($($arg:tt)*) => {
        $crate::console::print_fmt(format_args!("{}\n", format_args!($($arg)*)), true)
    };
}

/// The panic report both kernels print: `kernel panicked on <cpu_word>
/// <id>: <message> (<file>:<line>)`.  Forced: it gets out even when the
/// console lock is stuck.
pub fn report_panic(info: &core::panic::PanicInfo, cpu_word: &str, id: usize) {
    match info.location() {
        Some(l) => crate::println_force!(
            "kernel panicked on {} {}: {} ({}:{})",
            cpu_word,
            id,
            info.message(),
            l.file(),
            l.line()
        ),
        None => crate::println_force!("kernel panicked on {} {}: {}", cpu_word, id, info.message()),
    }
}
