//! Console output through the SBI console.  Harts print concurrently, so
//! each print holds a lock for the whole line: lines never interleave.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::sbi;

static LOCK: AtomicBool = AtomicBool::new(false);
/// Hart id + 1 of the lock holder, so a panic while printing cannot
/// deadlock its own hart.
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
                sbi::console_putchar(b'\r');
            }
            sbi::console_putchar(b);
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
    let me = crate::smp::hart_id() + 1;
    if OWNER.load(Ordering::Relaxed) == me {
        return false; // re-entered (a panic while printing): print anyway
    }
    let mut spins: u64 = 0;
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins += 1;
        // A hart that died holding the lock must not silence the report
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
