//! The platform hooks the C core calls, exported from Rust.
//!
//! The C library ships weak single-CPU defaults (`c-alloc/src/hooks.c`); the
//! strong definitions below replace them whenever this crate is linked, and
//! forward to the [`Platform`] in force: the one the kernel tied to its heap
//! ([`HartAlloc::with_platform`](crate::HartAlloc::with_platform)) or
//! registered with [`set_platform`].
//! cbindgen turns this file into `c-alloc/include/hartalloc_hooks.h`, which
//! the build compiles together with `hartalloc.h` so that the two
//! declarations of every hook cannot drift apart.

use core::ffi::{c_char, c_uint, c_void, CStr};
use core::sync::atomic::{AtomicPtr, Ordering};

/// What the allocator needs from the kernel it runs in.
///
/// A kernel starts from [`Platform::SINGLE_HART`], replaces the functions
/// that differ with the `const` builder methods, and ties the result to its
/// heap with [`HartAlloc::with_platform`](crate::HartAlloc::with_platform)
/// (or registers it with [`set_platform`]):
///
/// ```
/// use hartalloc::{HartAlloc, Platform};
///
/// fn hart_id() -> usize {
///     // e.g. read from `tp`, where the kernel keeps the hart id
///     0
/// }
///
/// static PLATFORM: Platform = Platform::SINGLE_HART.with_cpu_id(hart_id);
///
/// // In a kernel: #[global_allocator]
/// static HEAP: HartAlloc = HartAlloc::with_platform(&PLATFORM);
/// ```
///
/// The functions run inside the allocator, with its locks held: they must
/// not allocate, and must not block on anything that may be waiting for the
/// allocator.
///
/// The struct is `#[non_exhaustive]` so that it can grow without breaking
/// kernels: build it with the `with_*` methods, not with a struct literal.
/// Its fields stay public for reading.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Platform {
    /// The running CPU's id, `0..HA_MAX_CPUS` (64 unless the C core was
    /// built with a larger `HA_MAX_CPUS`; larger ids are folded onto that
    /// range, which is correct but makes CPUs share a cache). The per-CPU
    /// caches are indexed by it.
    pub cpu_id: fn() -> usize,
    /// Disable interrupts on this CPU and return the previous state. Every
    /// allocator lock is taken inside such a section, so that an interrupt
    /// handler that allocates cannot deadlock against the code it
    /// interrupted.
    pub irq_save: fn() -> usize,
    /// Restore the state [`irq_save`](Platform::irq_save) returned.
    ///
    /// # Safety
    ///
    /// `state` is what `irq_save` returned on this CPU, and sections end in
    /// the reverse order of their start (with the `critical-section`
    /// feature this is `critical_section::release`, whose contract this is).
    pub irq_restore: unsafe fn(state: usize),
    /// Report a fault the C core found (double free, foreign pointer, size
    /// mismatch, corrupted metadata...): the message names the fault, the
    /// address is the pointer concerned. Must not return.
    ///
    /// It runs with allocator locks possibly held, so the heap is given up
    /// first: from then on allocations are served from a small static
    /// reserve (enough for a panic message) and frees are ignored.
    pub fatal: fn(msg: &str, addr: usize) -> !,
}

impl Platform {
    /// One hart, a fault becomes a panic, and interrupts left alone (or,
    /// with the `critical-section` feature, masked by a critical section
    /// around every allocator lock): what a kernel that runs on one hart and
    /// does not allocate in interrupt handlers needs. This is the platform
    /// until a heap made with
    /// [`HartAlloc::with_platform`](crate::HartAlloc::with_platform) is
    /// first used or [`set_platform`] is called.
    pub const SINGLE_HART: Platform = Platform {
        cpu_id: single_hart_cpu_id,
        irq_save: default_irq_save,
        irq_restore: default_irq_restore,
        fatal: panic_on_fatal,
    };

    /// For `std` programs: each thread gets its own CPU id (0, 1, 2... in
    /// the order threads first allocate), so threads use separate per-CPU
    /// caches as harts would. Interrupts do not exist; a fault panics.
    #[cfg(feature = "std")]
    pub const PER_THREAD: Platform = Platform::SINGLE_HART.with_cpu_id(thread_cpu_id);

    /// This platform with `cpu_id` as its [`cpu_id`](Platform::cpu_id).
    #[must_use]
    pub const fn with_cpu_id(self, cpu_id: fn() -> usize) -> Platform {
        Platform { cpu_id, ..self }
    }

    /// This platform with `save` and `restore` as its
    /// [`irq_save`](Platform::irq_save) and
    /// [`irq_restore`](Platform::irq_restore).
    #[must_use]
    pub const fn with_irq(self, save: fn() -> usize, restore: unsafe fn(usize)) -> Platform {
        Platform { irq_save: save, irq_restore: restore, ..self }
    }

    /// This platform with interrupts masked by the `critical-section`
    /// crate's critical sections: [`irq_save`](Platform::irq_save) is
    /// `critical_section::acquire`, [`irq_restore`](Platform::irq_restore)
    /// its `release`. The program supplies the implementation (a HAL's, or
    /// for one hart the `riscv` crate's `critical-section-single-hart`
    /// feature, for example). Already the case for
    /// [`Platform::SINGLE_HART`] when the feature is on.
    #[cfg(feature = "critical-section")]
    #[cfg_attr(docsrs, doc(cfg(feature = "critical-section")))]
    #[must_use]
    pub const fn with_critical_section(self) -> Platform {
        Platform { irq_save: crate::cs::irq_save, irq_restore: crate::cs::irq_restore, ..self }
    }

    /// This platform with `fatal` as its [`fatal`](Platform::fatal).
    #[must_use]
    pub const fn with_fatal(self, fatal: fn(msg: &str, addr: usize) -> !) -> Platform {
        Platform { fatal, ..self }
    }
}

impl Default for Platform {
    fn default() -> Platform {
        Platform::SINGLE_HART
    }
}

// The no-op defaults are never inlined, so that every crate's function
// pointer to one is the same address (small functions are otherwise
// instantiated in each crate that uses them), which trivial_hooks compares.
#[inline(never)]
fn single_hart_cpu_id() -> usize {
    0
}

#[cfg(not(feature = "critical-section"))]
#[inline(never)]
fn default_irq_save() -> usize {
    0
}

#[cfg(not(feature = "critical-section"))]
#[inline(never)]
fn default_irq_restore(_state: usize) {}

#[cfg(feature = "critical-section")]
use crate::cs::{irq_restore as default_irq_restore, irq_save as default_irq_save};

/// The default fatal report: a panic with the C core's message and the
/// address, e.g. `hartalloc: double free (block already freed) at 0x8021f040`.
pub fn panic_on_fatal(msg: &str, addr: usize) -> ! {
    // The checked build's heap walk reports messages that name the address
    // already.
    if msg.contains(" at 0x") {
        panic!("{msg}")
    }
    panic!("{msg} at {addr:#x}")
}

/// The calling thread's id for [`Platform::PER_THREAD`]: given out in the
/// order threads first ask, and kept for the thread's life.
#[cfg(feature = "std")]
pub fn thread_cpu_id() -> usize {
    extern crate std;
    use core::cell::Cell;
    use core::sync::atomic::AtomicUsize;

    // A const-initialised thread-local without a destructor: reading it
    // never allocates (we run inside the allocator) and still works while
    // the thread's other thread-locals are being destroyed.
    std::thread_local!(static ID: Cell<usize> = const { Cell::new(usize::MAX) });
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    ID.try_with(|id| {
        if id.get() == usize::MAX {
            id.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        id.get()
    })
    .unwrap_or(0)
}

/// The platform in force; null until one is registered, which means
/// [`Platform::SINGLE_HART`].
static PLATFORM: AtomicPtr<Platform> = AtomicPtr::new(core::ptr::null_mut());

/// Register the kernel's platform functions, replacing those in force
/// (including a platform given to
/// [`HartAlloc::with_platform`](crate::HartAlloc::with_platform)).
///
/// Call it before other harts start allocating. Changing the platform while
/// another CPU is inside the allocator is allowed, but an `irq_save` of one
/// platform may then be paired with the `irq_restore` of the other.
pub fn set_platform(platform: &'static Platform) {
    PLATFORM.store(platform as *const Platform as *mut Platform, Ordering::Release);
    declare_trivial_hooks();
}

/// Register `platform` unless one is registered already: what a heap made
/// with [`HartAlloc::with_platform`](crate::HartAlloc::with_platform) does
/// on its first use, so that an earlier [`set_platform`] wins.
pub(crate) fn register_default(platform: &'static Platform) {
    let p = platform as *const Platform as *mut Platform;
    if PLATFORM.load(Ordering::Relaxed).is_null() {
        let _ = PLATFORM.compare_exchange(core::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Relaxed);
    }
    declare_trivial_hooks();
}

/// The hooks of `p` that do nothing, as the C core's `HA_TRIVIAL_*` mask:
/// those that are this crate's own no-op defaults.
///
/// Function addresses are compared.  Two distinct functions may share an
/// address only if the compiler merged them, which it does only for
/// identical code, so a function equal to a no-op default is one; a default
/// duplicated across codegen units only loses the saving.
fn trivial_hooks(p: &Platform) -> c_uint {
    let mut mask = 0;
    if p.cpu_id as usize == single_hart_cpu_id as fn() -> usize as usize {
        mask |= crate::sys::HA_TRIVIAL_CPU_ID;
    }
    #[cfg(not(feature = "critical-section"))]
    {
        if p.irq_save as usize == default_irq_save as fn() -> usize as usize {
            mask |= crate::sys::HA_TRIVIAL_IRQ_SAVE;
        }
        if p.irq_restore as usize == default_irq_restore as unsafe fn(usize) as usize {
            mask |= crate::sys::HA_TRIVIAL_IRQ_RESTORE;
        }
    }
    mask
}

/// Tell the C core which hooks of the platform in force do nothing
/// (`ha_set_trivial_hooks`), so that its fast paths leave them out: with
/// [`Platform::SINGLE_HART`] they call no hook at all.  Called whenever the
/// platform may have changed.  It declares, then looks again: if another
/// CPU changed the platform meanwhile, it declares that one, so the last
/// declaration is always of the last platform.
pub(crate) fn declare_trivial_hooks() {
    loop {
        let p = PLATFORM.load(Ordering::Acquire);
        // SAFETY: ha_set_trivial_hooks stores the mask and nothing else; the
        // mask is true of the platform read, whose hooks then do nothing.
        unsafe { crate::sys::ha_set_trivial_hooks(trivial_hooks(platform_at(p))) };
        if PLATFORM.load(Ordering::Acquire) == p {
            return;
        }
    }
}

/// The platform in force.
pub fn platform() -> &'static Platform {
    platform_at(PLATFORM.load(Ordering::Acquire))
}

/// The platform a value of PLATFORM stands for.
#[inline]
fn platform_at(p: *mut Platform) -> &'static Platform {
    if p.is_null() {
        return &Platform::SINGLE_HART;
    }
    // SAFETY: PLATFORM only ever holds null or pointers made from
    // `&'static Platform` references (set_platform, register_default).
    unsafe { &*p }
}

// ---------------------------------------------------------------------------
// The hooks as the C core sees them.  Declared in c-alloc/include/hartalloc.h;
// the generated hartalloc_hooks.h repeats these signatures.

/// The running CPU, 0 .. HA_MAX_CPUS-1 (larger values are folded): the
/// registered [`Platform::cpu_id`].
#[no_mangle]
pub extern "C" fn ha_platform_cpu_id() -> c_uint {
    // Saturate rather than wrap: the C core folds any large id.
    c_uint::try_from((platform().cpu_id)()).unwrap_or(c_uint::MAX)
}

/// Disable interrupts on this CPU; return the previous state: the
/// registered [`Platform::irq_save`].
#[no_mangle]
pub extern "C" fn ha_platform_irq_save() -> usize {
    (platform().irq_save)()
}

/// Restore the state returned by ha_platform_irq_save: the registered
/// [`Platform::irq_restore`].
#[no_mangle]
pub extern "C" fn ha_platform_irq_restore(state: usize) {
    // SAFETY: the C core passes back what ha_platform_irq_save returned on
    // this CPU, and ends its sections in the reverse order of their start.
    unsafe { (platform().irq_restore)(state) }
}

/// Report a fault (bad free, corrupted metadata) at addr; does not return.
/// Gives up the heap, then calls the registered [`Platform::fatal`] (a
/// panic by default).
///
/// # Safety
///
/// `msg` is null or a NUL-terminated string; the C core passes one of its
/// static messages.
//
// This is `extern "C"`, not `extern "C-unwind"`, on purpose: the C core
// calls it with spinlocks held and interrupts disabled, and its frames are
// not built to be unwound through, so unwinding back into it could only
// leave a heap that deadlocks or corrupts memory later.  A panic that tries
// to leave this function aborts the program instead (after the panic hook
// has printed the message), which on std is the right end for a program
// whose heap is known to be damaged; a kernel's panic handler runs as usual.
#[no_mangle]
pub unsafe extern "C" fn ha_platform_fatal(msg: *const c_char, addr: *const c_void) -> ! {
    crate::heap::give_up_heap();
    let text = if msg.is_null() {
        "hartalloc: fatal error (no message)"
    } else {
        // SAFETY: the caller passes a NUL-terminated string.
        unsafe { CStr::from_ptr(msg) }.to_str().unwrap_or("hartalloc: fatal error (message not UTF-8)")
    };
    (platform().fatal)(text, addr as usize)
}
