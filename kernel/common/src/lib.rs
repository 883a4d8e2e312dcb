//! What the hartalloc demo kernels share, whatever their architecture.
//!
//! A kernel provides the machine (entry code, console output, clocks, how
//! to end the run, the allocator's platform hooks) and calls into this
//! crate for the rest: reading RAM and reserved ranges from the device
//! tree ([`dtb`]), starting the heap in the documented order ([`heap`]),
//! printing whole lines from any CPU ([`console`]), and the allocator
//! checks with their `[ ok ]` / `[FAIL]` lines and summary ([`checks`]),
//! the SMP stress among them, which runs on the CPUs the kernel started.
//! The RISC-V kernel (`kernel/rust`) and the aarch64 kernel
//! (`kernel/aarch64`) both depend on it by path.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod checks;
pub mod clock;
pub mod console;
pub mod dtb;
pub mod heap;
pub mod rng;
pub mod smp;

/// Exit codes of a failed run (QEMU's exit status), one per cause, the
/// same on every architecture.
pub const EXIT_CHECKS_FAILED: u32 = 1;
pub const EXIT_PANIC: u32 = 2;
pub const EXIT_TRAP: u32 = 3;

// For `ensure!`, which expands in the kernels' crates.
#[doc(hidden)]
pub use alloc::format as __format;
