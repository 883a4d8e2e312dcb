//! The heap's state as the Rust side sees it: initialised or not, given up
//! after a fault, and the small static reserve that serves allocations when
//! the C heap cannot.
//!
//! The C heap is one per program, so this state is global, not per
//! [`HartAlloc`](crate::HartAlloc) value.
//!
//! States, and who moves between them:
//!
//! ```text
//!   UNINIT --first allocation--> RUNNING --init fn returns--> READY
//!      \                                                        |
//!       +------------- ha_platform_fatal (any state) -------> FATAL
//! ```
//!
//! The fast path of every allocation is one load that compares equal to
//! READY; everything else is in the slow paths here.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::platform::platform;

pub(crate) const UNINIT: usize = 0;
pub(crate) const RUNNING: usize = 1;
pub(crate) const READY: usize = 2;
pub(crate) const FATAL: usize = 3;

pub(crate) static STATE: AtomicUsize = AtomicUsize::new(UNINIT);

/// The CPU that runs the init function, so that an allocation it makes
/// itself (directly, or by panicking) is told apart from another CPU that
/// must wait.
static INIT_CPU: AtomicUsize = AtomicUsize::new(usize::MAX);

pub(crate) enum Slow {
    /// Call the C core.
    UseHeap,
    /// The C heap cannot serve this call: use the reserve.
    UseReserve,
}

/// Called when STATE was not READY.  Runs the init function if nobody has,
/// waits for another CPU's, and says where the allocation should go.
pub(crate) fn slow_path(init: Option<fn(&crate::HartAlloc)>, heap: &crate::HartAlloc) -> Slow {
    loop {
        match STATE.load(Ordering::Acquire) {
            READY => return Slow::UseHeap,
            FATAL => return Slow::UseReserve,
            UNINIT => {
                if STATE.compare_exchange(UNINIT, RUNNING, Ordering::Acquire, Ordering::Acquire).is_ok() {
                    INIT_CPU.store((platform().cpu_id)(), Ordering::Relaxed);
                    run_init(init, heap);
                    // Only READY if no fault was reported meanwhile.
                    let _ = STATE.compare_exchange(RUNNING, READY, Ordering::Release, Ordering::Relaxed);
                }
            }
            _ => {
                // RUNNING.  From the CPU running init, this is init itself
                // allocating: let the C heap try (init may have started
                // it already); the caller falls back to the reserve.
                if INIT_CPU.load(Ordering::Relaxed) == (platform().cpu_id)() {
                    return Slow::UseHeap;
                }
                core::hint::spin_loop();
            }
        }
    }
}

fn run_init(init: Option<fn(&crate::HartAlloc)>, heap: &crate::HartAlloc) {
    // GlobalAlloc methods must not unwind.  A panic in the init function
    // reaches this guard, whose own panic during unwinding aborts (std)
    // or ends in the kernel's panic handler (no_std, panic=abort).
    struct AbortOnUnwind;
    impl Drop for AbortOnUnwind {
        fn drop(&mut self) {
            panic!("hartalloc: the heap's init function panicked");
        }
    }
    if let Some(f) = init {
        let guard = AbortOnUnwind;
        f(heap);
        core::mem::forget(guard);
    }
}

/// After a fault: the C core may hold its locks and its metadata is
/// suspect, so nothing may enter it again.
pub(crate) fn give_up_heap() {
    DETOUR.store(true, Ordering::Relaxed);
    STATE.store(FATAL, Ordering::Release);
}

/// Set before the reserve hands out its first block and when the heap is
/// given up: until then a free or a realloc can skip both tests
/// ([`reserve_owns`], [`is_given_up`]) for one load.  A block of the
/// reserve reaches another CPU only after the store that set it, through
/// whatever handed the pointer over, so a relaxed load there sees it.
static DETOUR: AtomicBool = AtomicBool::new(false);

/// Must a free or a realloc of `ptr` look at the reserve or the given-up
/// heap?  Either, once [`DETOUR`] is set: `ptr` belongs to the reserve, or
/// nothing may enter the C core.
#[inline]
pub(crate) fn free_detour(ptr: *const u8) -> bool {
    DETOUR.load(Ordering::Relaxed) && (reserve_owns(ptr) || is_given_up())
}

#[inline]
pub(crate) fn is_given_up() -> bool {
    STATE.load(Ordering::Relaxed) == FATAL
}

// ---------------------------------------------------------------------------
// The reserve: a bump allocator over a static buffer, for the few
// allocations of a panic after a fault, and for an init function that
// allocates before the C heap can.  Never freed: it only serves a program
// that is about to stop, or a handful of boot-time objects.

const RESERVE_SIZE: usize = 32 * 1024;

#[repr(C, align(4096))]
struct Reserve {
    bytes: UnsafeCell<[u8; RESERVE_SIZE]>,
    used: AtomicUsize,
}

// SAFETY: the bytes are only reached through `reserve_alloc`, which hands
// every byte out at most once (the atomic bump below), so no two users
// share a byte.
unsafe impl Sync for Reserve {}

static RESERVE: Reserve = Reserve { bytes: UnsafeCell::new([0; RESERVE_SIZE]), used: AtomicUsize::new(0) };

/// Memory of `size` bytes at `align` from the reserve, zeroed (it is never
/// reused), or null once it is exhausted.
pub(crate) fn reserve_alloc(size: usize, align: usize) -> *mut u8 {
    DETOUR.store(true, Ordering::Relaxed);
    let base = RESERVE.bytes.get() as *mut u8;
    let mut used = RESERVE.used.load(Ordering::Relaxed);
    loop {
        let start = match (base as usize).checked_add(used) {
            Some(a) => a.checked_add(align - 1).map(|a| a & !(align - 1)),
            None => None,
        };
        let Some(start) = start else { return core::ptr::null_mut() };
        let offset = start - base as usize;
        let Some(end) = offset.checked_add(size.max(1)) else { return core::ptr::null_mut() };
        if end > RESERVE_SIZE {
            return core::ptr::null_mut();
        }
        match RESERVE.used.compare_exchange_weak(used, end, Ordering::Relaxed, Ordering::Relaxed) {
            // SAFETY: offset + size <= RESERVE_SIZE, so the result stays
            // inside the buffer.
            Ok(_) => return unsafe { base.add(offset) },
            Err(now) => used = now,
        }
    }
}

/// Does `ptr` point into the reserve?  Such blocks are never given to C.
#[inline]
pub(crate) fn reserve_owns(ptr: *const u8) -> bool {
    let base = RESERVE.bytes.get() as usize;
    (ptr as usize).wrapping_sub(base) < RESERVE_SIZE
}

/// Bytes of the reserve handed out (for tests and diagnostics).
pub(crate) fn reserve_used() -> usize {
    RESERVE.used.load(Ordering::Relaxed)
}
