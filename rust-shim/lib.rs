// The README's code blocks are copies of files that `make test` compiles
// (riscv64 kernel crate, host test), checked by
// scripts/check-doc-examples.sh: they are not doctests.
#![cfg_attr(not(doctest), doc = include_str!("README.md"))]
#![cfg_attr(doctest, doc = "See rust-shim/README.md.")]
// Those blocks are whole files, `fn main` included.
#![allow(clippy::needless_doctest_main)]
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(feature = "nightly", feature(allocator_api))]

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_int;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

#[cfg(any(feature = "allocator-api2", feature = "nightly"))]
mod allocator;
#[cfg(feature = "critical-section")]
mod cs;
mod error;
mod heap;
mod pages;
mod platform;
mod stats;
pub mod sys;

pub use error::{CheckError, Error};
pub use pages::Pages;
#[cfg(feature = "std")]
pub use platform::thread_cpu_id;
pub use platform::{panic_on_fatal, platform, set_platform, Platform};
pub use stats::Stats;

/// Size of a page of the page allocator, in bytes.
pub const PAGE_SIZE: usize = sys::HA_PAGE_SIZE as usize;

/// The hartalloc heap, as a Rust global allocator and as the handle to the
/// C core's life cycle and page allocator.
///
/// There is one C heap per program: every `HartAlloc` value drives the same
/// one, and a program has exactly one, its `#[global_allocator]`.
///
/// Two ways to start it:
///
/// * [`HartAlloc::new`] or [`HartAlloc::with_platform`]: the kernel calls
///   [`early_init`](Self::early_init), [`add_region`](Self::add_region),
///   [`reserve`](Self::reserve) and [`final_init`](Self::final_init)
///   itself, before its first allocation.
/// * [`HartAlloc::with_init`] (or
///   [`with_platform_and_init`](Self::with_platform_and_init)): a function
///   that does the same runs by itself, exactly once, just before the first
///   allocation is served; other CPUs that allocate meanwhile wait for it.
///   A `std` program needs this, since its runtime allocates before `main`.
pub struct HartAlloc {
    init: Option<fn(&HartAlloc)>,
    platform: Option<&'static Platform>,
}

impl HartAlloc {
    /// A heap the kernel initialises explicitly, on the platform registered
    /// with [`set_platform`] ([`Platform::SINGLE_HART`] if none). Until
    /// [`early_init`](Self::early_init) (or [`final_init`](Self::final_init)
    /// after regions were added) every allocation fails.
    pub const fn new() -> HartAlloc {
        HartAlloc { init: None, platform: None }
    }

    /// A heap the kernel initialises explicitly, on `platform`: the
    /// platform is tied to the heap where the `#[global_allocator]` is
    /// declared, and registered by the heap's first call (a life-cycle call
    /// such as [`seed`](Self::seed) or [`early_init`](Self::early_init), or
    /// the first allocation), before the C core runs.
    ///
    /// A [`set_platform`] made before that first call wins, and one made
    /// after it replaces the platform.
    ///
    /// ```
    /// use hartalloc::{HartAlloc, Platform};
    ///
    /// fn hart_id() -> usize {
    ///     0 // e.g. from `tp` on RISC-V, `TPIDR_EL1` on AArch64
    /// }
    ///
    /// static PLATFORM: Platform = Platform::SINGLE_HART.with_cpu_id(hart_id);
    ///
    /// // #[global_allocator]
    /// static HEAP: HartAlloc = HartAlloc::with_platform(&PLATFORM);
    /// ```
    pub const fn with_platform(platform: &'static Platform) -> HartAlloc {
        HartAlloc { init: None, platform: Some(platform) }
    }

    /// A heap initialised by `init` on first use.
    ///
    /// `init` runs once, on the first allocation (or the first
    /// [`alloc_pages`](Self::alloc_pages), or [`ensure_init`](Self::ensure_init)),
    /// before that allocation is served, and typically calls
    /// [`early_init`](Self::early_init) or [`add_region`](Self::add_region)
    /// and [`final_init`](Self::final_init) on the heap it is given.
    /// Allocations made by `init` itself are served by the C heap once it is
    /// started, before that by a small static reserve (never freed). A
    /// panic in `init` aborts (a global allocator must not unwind).
    ///
    /// ```
    /// use hartalloc::HartAlloc;
    ///
    /// static HEAP: HartAlloc = HartAlloc::with_init(|heap| {
    ///     // Where the memory comes from is the kernel's business; here,
    ///     // a static array.
    ///     #[repr(align(4096))]
    ///     struct Arena([u8; 1 << 20]);
    ///     static mut ARENA: Arena = Arena([0; 1 << 20]);
    ///     let start = &raw mut ARENA as usize;
    ///     // SAFETY: ARENA is used by nothing else.
    ///     unsafe { heap.add_region(start, 1 << 20) }.expect("region");
    ///     heap.final_init().expect("final_init");
    /// });
    ///
    /// let frames = HEAP.alloc_pages(2, 8192).expect("two pages");
    /// assert_eq!(frames.addr() % 8192, 0);
    /// ```
    pub const fn with_init(init: fn(&HartAlloc)) -> HartAlloc {
        HartAlloc { init: Some(init), platform: None }
    }

    /// [`with_init`](Self::with_init) on `platform`, which is registered
    /// (as [`with_platform`](Self::with_platform) says) before `init` runs.
    pub const fn with_platform_and_init(platform: &'static Platform, init: fn(&HartAlloc)) -> HartAlloc {
        HartAlloc { init: Some(init), platform: Some(platform) }
    }

    /// Register this heap's platform, if it has one and none is registered:
    /// before every call that may enter the C core on a cold path.
    #[inline]
    fn use_platform(&self) {
        match self.platform {
            Some(p) => platform::register_default(p),
            // Platform::SINGLE_HART until one is registered: declare its
            // hooks trivial.
            None => platform::declare_trivial_hooks(),
        }
    }

    /// Run the init function given to [`with_init`](Self::with_init) now,
    /// unless it has run (or is running on another CPU: then wait for it).
    /// Nothing for a heap made with [`new`](Self::new).
    pub fn ensure_init(&self) {
        self.ready();
    }

    /// Is the C heap usable from here?  Runs init or waits for it.
    #[inline]
    fn ready(&self) -> bool {
        heap::STATE.load(Ordering::Acquire) == heap::READY || self.ready_slow()
    }

    #[cold]
    fn ready_slow(&self) -> bool {
        self.use_platform();
        matches!(heap::slow_path(self.init, self), heap::Slow::UseHeap)
    }

    // ----------------------------------------------------------- life cycle

    /// Mix per-boot entropy into the secret that keys what the allocator
    /// keeps inside freed memory (free-list links, free tags, check words),
    /// so that a stray write cannot forge them: pass e.g. the device tree's
    /// `/chosen/rng-seed` bytes. Call it before [`early_init`](Self::early_init)
    /// (`Err(Error::WrongPhase)` after, `Err(Error::InvalidArgument)` for no bytes).
    /// Without it a fixed key is used.
    pub fn seed(&self, entropy: &[u8]) -> Result<(), Error> {
        self.use_platform();
        // SAFETY: the pointer and length describe a live slice, read only.
        Error::from_code(unsafe { sys::ha_seed(entropy.as_ptr().cast(), entropy.len()) })
    }

    /// Start the early allocator on `[start, start + len)`: from now on
    /// allocations work, before the machine's RAM is known.
    ///
    /// Panics if the C core refuses (a null or empty range, or a second
    /// call); [`try_early_init`](Self::try_early_init) returns the error
    /// instead.
    ///
    /// # Safety
    ///
    /// The range is memory the caller owns, readable and writable, and
    /// used by nothing else from now on: it belongs to the heap for the
    /// rest of the program.
    #[track_caller]
    pub unsafe fn early_init(&self, start: usize, len: usize) {
        // SAFETY: the caller's promise is the one try_early_init needs.
        if let Err(e) = unsafe { self.try_early_init(start, len) } {
            panic!("hartalloc: early_init({start:#x}, {len:#x}) failed: {e}");
        }
    }

    /// [`early_init`](Self::early_init) returning the C core's error.
    ///
    /// # Safety
    ///
    /// As for [`early_init`](Self::early_init).
    pub unsafe fn try_early_init(&self, start: usize, len: usize) -> Result<(), Error> {
        self.use_platform();
        // SAFETY: the caller gives the range to the heap.
        Error::from_code(unsafe { sys::ha_early_init(start as *mut _, len) })
    }

    /// Give RAM to the page allocator (bounds are rounded inward to pages).
    /// May be called many times, before or after
    /// [`final_init`](Self::final_init); afterwards the memory is usable at
    /// once. Before `final_init` nothing is written to it.
    ///
    /// # Safety
    ///
    /// The range is RAM the caller owns, readable and writable, that
    /// nothing else uses from `final_init` on (or from now on, after
    /// `final_init`), except for the parts [`reserve`](Self::reserve)d
    /// before `final_init`.
    pub unsafe fn add_region(&self, start: usize, len: usize) -> Result<(), Error> {
        self.use_platform();
        // SAFETY: the caller gives the range to the heap.
        Error::from_code(unsafe { sys::ha_add_region(start as *mut _, len) })
    }

    /// [`add_region`](Self::add_region) for memory known to read as zero
    /// (fresh RAM, a new anonymous mapping): zeroed allocations from it
    /// skip clearing pages that were never handed out.
    ///
    /// # Safety
    ///
    /// As for [`add_region`](Self::add_region), and every byte of the range
    /// reads as zero.
    pub unsafe fn add_region_zeroed(&self, start: usize, len: usize) -> Result<(), Error> {
        self.use_platform();
        // SAFETY: the caller gives the range, all zero, to the heap.
        Error::from_code(unsafe { sys::ha_add_region_flags(start as *mut _, len, sys::HA_REGION_ZEROED) })
    }

    /// Never hand out `[start, start + len)` (rounded outward to pages):
    /// the kernel image, the device tree, firmware memory. Before
    /// [`final_init`](Self::final_init) it may name memory of regions added
    /// before or after it; after `final_init` the pages must be free, else
    /// [`Error::Busy`].
    ///
    /// # Safety
    ///
    /// Reserves are part of the promise made by
    /// [`add_region`](Self::add_region): memory the heap must not write is
    /// only safe inside a region if it is reserved before `final_init`
    /// builds the region (which writes its metadata into it).
    pub unsafe fn reserve(&self, start: usize, len: usize) -> Result<(), Error> {
        self.use_platform();
        // SAFETY: ha_reserve only records the range or takes free pages.
        Error::from_code(unsafe { sys::ha_reserve(start as *mut _, len) })
    }

    /// Build the page and byte allocators over the regions, less the
    /// reserves, and hand the early range's unused remainder to them.
    /// Blocks from the early allocator stay valid and may still be freed.
    pub fn final_init(&self) -> Result<(), Error> {
        self.use_platform();
        // SAFETY: no arguments; the memory it writes was promised by the
        // unsafe add_region/early_init calls.
        Error::from_code(unsafe { sys::ha_final_init() })
    }

    // ---------------------------------------------------------------- pages

    /// `count` contiguous pages aligned to `align` bytes (a power of two;
    /// anything up to [`PAGE_SIZE`], 0 included, means a page), freed when
    /// the [`Pages`] is dropped. `None` when out of memory, for `count == 0`,
    /// or for an `align` that is not a power of two.
    pub fn alloc_pages(&self, count: usize, align: usize) -> Option<Pages> {
        self.pages(count, align, false)
    }

    /// [`alloc_pages`](Self::alloc_pages) with the pages cleared (unless
    /// known to be zero already).
    pub fn alloc_pages_zeroed(&self, count: usize, align: usize) -> Option<Pages> {
        self.pages(count, align, true)
    }

    fn pages(&self, count: usize, align: usize, zeroed: bool) -> Option<Pages> {
        if count == 0 || !self.ready() {
            return None;
        }
        // SAFETY: plain arguments; the C core checks them.
        let p = unsafe {
            if zeroed {
                sys::ha_alloc_pages_zeroed(count, align)
            } else {
                sys::ha_alloc_pages(count, align)
            }
        };
        // SAFETY: a non-null result is `count` pages that we now own.
        NonNull::new(p.cast()).map(|ptr| unsafe { Pages::from_raw(ptr, count) })
    }

    // ---------------------------------------------------------- maintenance

    /// The heap's figures now.
    pub fn stats(&self) -> Stats {
        self.use_platform();
        let mut raw = sys::ha_stats::default();
        // SAFETY: `raw` is a valid, writable ha_stats.
        unsafe { sys::ha_get_stats(&mut raw) };
        raw.into()
    }

    /// Walk every structure of the heap and cross-check them: `Ok` when
    /// consistent. Takes time proportional to the heap; meant for tests and
    /// debugging.
    pub fn check(&self) -> Result<(), CheckError> {
        if heap::is_given_up() {
            // The C core may hold its locks: walking would hang.
            // SAFETY: a static NUL-terminated string.
            return Err(unsafe { CheckError::new(-1, c"heap given up after a fatal fault".as_ptr()) });
        }
        self.use_platform();
        // SAFETY: no arguments.
        let code = unsafe { sys::ha_check() };
        if code == 0 {
            return Ok(());
        }
        // SAFETY: ha_check_message returns a NUL-terminated string that
        // stays valid until the next check; CheckError copies it.
        Err(unsafe { CheckError::new(code, sys::ha_check_message()) })
    }

    /// Give back to the page allocator what the byte allocator holds but
    /// does not need: every CPU's cached objects, empty slabs and arenas.
    pub fn trim(&self) {
        if self.ready() {
            // SAFETY: no arguments.
            unsafe { sys::ha_trim() }
        }
    }

    /// Bytes usable at `ptr`: at least what was asked for.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of this heap from the global allocator (not a
    /// zero-size allocation) or from [`sys::ha_alloc`]; anything else is a
    /// fatal fault.
    pub unsafe fn usable_size(&self, ptr: *const u8) -> usize {
        if heap::reserve_owns(ptr) {
            return 0;
        }
        // SAFETY: the caller passes a live block.
        unsafe { sys::ha_usable_size(ptr.cast()) }
    }

    /// Install (or with `None`, remove) the out-of-memory handler: called,
    /// with no allocator lock held, when a request of `bytes` at `align`
    /// cannot be served. It may add memory with
    /// [`add_region`](Self::add_region) and return `true` to have the
    /// request tried again (a few times at most), or return `false` to
    /// fail it. It must not panic (the C core is below it on the stack: a
    /// panic there aborts).
    pub fn set_oom_handler(&self, handler: Option<fn(bytes: usize, align: usize) -> bool>) {
        match handler {
            Some(f) => {
                OOM_HANDLER.store(f as *mut (), Ordering::Release);
                // SAFETY: oom_trampoline has the C signature of
                // ha_oom_handler_fn.
                unsafe { sys::ha_set_oom_handler(Some(oom_trampoline)) };
            }
            None => {
                // SAFETY: NULL removes the hook.
                unsafe { sys::ha_set_oom_handler(None) };
                OOM_HANDLER.store(ptr::null_mut(), Ordering::Release);
            }
        }
    }

    // ------------------------------------------------------- byte slow path

    #[cold]
    fn alloc_slow(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        self.use_platform();
        match heap::slow_path(self.init, self) {
            heap::Slow::UseHeap => {
                let p = c_alloc(layout, zeroed);
                if p.is_null() && heap::STATE.load(Ordering::Acquire) == heap::RUNNING {
                    // init allocating before it started the C heap.
                    return heap::reserve_alloc(layout.size(), layout.align());
                }
                p
            }
            heap::Slow::UseReserve => {
                let p = heap::reserve_alloc(layout.size(), layout.align());
                #[cfg(feature = "std")]
                if p.is_null() && heap::is_given_up() {
                    // After a fault std's panic machinery symbolises a
                    // backtrace, which needs far more than the reserve; its
                    // allocation-failure hook would then wait for the
                    // backtrace lock that its own thread holds.  The message
                    // is printed by now: end here instead of hanging.
                    extern crate std;
                    std::process::abort();
                }
                p
            }
        }
    }

    /// Move a block that the C core cannot resize: from the reserve, or
    /// any block once the heap is given up.
    #[cold]
    unsafe fn realloc_by_moving(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: align is the old layout's, a power of two; new_size > 0
        // and no larger than the caller's GlobalAlloc contract allows.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: new_layout has a nonzero size.
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe { ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size)) };
            // SAFETY: ptr was allocated with layout, and is ours to free.
            unsafe { self.dealloc(ptr, layout) };
        }
        q
    }

    /// Bytes of the static reserve handed out so far: nonzero only if the
    /// init function allocated before the C heap was up, or after a fatal
    /// fault.
    pub fn reserve_used(&self) -> usize {
        heap::reserve_used()
    }
}

impl Default for HartAlloc {
    fn default() -> HartAlloc {
        HartAlloc::new()
    }
}

impl core::fmt::Debug for HartAlloc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HartAlloc")
            .field("with_init", &self.init.is_some())
            .field("with_platform", &self.platform.is_some())
            .finish()
    }
}

static OOM_HANDLER: AtomicPtr<()> = AtomicPtr::new(ptr::null_mut());

extern "C" fn oom_trampoline(bytes: usize, align: usize) -> c_int {
    let f = OOM_HANDLER.load(Ordering::Acquire);
    if f.is_null() {
        return 0;
    }
    // SAFETY: OOM_HANDLER only ever holds null or a `fn(usize, usize) ->
    // bool` stored by set_oom_handler.
    let f: fn(usize, usize) -> bool = unsafe { core::mem::transmute::<*mut (), fn(usize, usize) -> bool>(f) };
    c_int::from(f(bytes, align))
}

/// A call into the C core for a nonzero-size layout.
#[inline]
fn c_alloc(layout: Layout, zeroed: bool) -> *mut u8 {
    // SAFETY: plain arguments; align is a power of two (Layout's
    // invariant), size > 0 (callers route zero sizes elsewhere).
    unsafe {
        if zeroed {
            sys::ha_alloc_zeroed(layout.size(), layout.align()).cast()
        } else if layout.align() <= sys::HA_MIN_ALIGN as usize {
            // Every block is that aligned: the call without the alignment
            // test (the branch folds away for a constant layout).
            sys::ha_alloc_min_align(layout.size()).cast()
        } else {
            sys::ha_alloc(layout.size(), layout.align()).cast()
        }
    }
}

/// The address handed out for a zero-size layout: aligned, non-null, never
/// dereferenced, never given to C (so `dealloc` recognises it by the size).
#[inline]
fn zero_size_block(layout: Layout) -> *mut u8 {
    ptr::without_provenance_mut(layout.align())
}

// SAFETY: every block comes from the C core (which returns memory of at
// least `size` bytes at `align`, or null) or from the static reserve (same
// guarantee); zero-size layouts get a dangling aligned pointer and are
// never passed on.  dealloc passes the layout's size and alignment to the
// sized free, which the C core checks against the block.  No path panics
// (the init function runs under an abort-on-unwind guard).
unsafe impl GlobalAlloc for HartAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() == 0 {
            return zero_size_block(layout);
        }
        if heap::STATE.load(Ordering::Acquire) == heap::READY {
            return c_alloc(layout, false);
        }
        self.alloc_slow(layout, false)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() == 0 {
            return zero_size_block(layout);
        }
        if heap::STATE.load(Ordering::Acquire) == heap::READY {
            return c_alloc(layout, true);
        }
        // The reserve is never reused, hence still zero.
        self.alloc_slow(layout, true)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // A reserve block is never freed; after a fault the C core may
        // hold its locks: leak.
        if layout.size() == 0 || heap::free_detour(ptr) {
            return;
        }
        // SAFETY: the caller passes a live block of ours with the layout it
        // was allocated (or last reallocated) with.
        unsafe {
            if layout.align() <= sys::HA_MIN_ALIGN as usize {
                sys::ha_free_sized_min_align(ptr.cast(), layout.size())
            } else {
                sys::ha_free_sized(ptr.cast(), layout.size(), layout.align())
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() == 0 {
            // SAFETY: the caller guarantees new_size, rounded up to align,
            // does not overflow isize.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: forwarding; alloc handles a zero new_size too.
            return unsafe { self.alloc(new_layout) };
        }
        if new_size == 0 {
            // Outside GlobalAlloc's contract, but cheap to get right.
            // SAFETY: ptr is a live block with this layout.
            unsafe { self.dealloc(ptr, layout) };
            return zero_size_block(layout);
        }
        if heap::free_detour(ptr) {
            // SAFETY: the caller's guarantees, passed on.
            return unsafe { self.realloc_by_moving(ptr, layout, new_size) };
        }
        // SAFETY: ptr is a live C block; the C core resizes in place when
        // it can, else moves it (keeping `align`), and leaves ptr valid on
        // failure.
        unsafe { sys::ha_realloc(ptr.cast(), new_size, layout.align()).cast() }
    }
}
