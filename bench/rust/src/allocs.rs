//! The byte allocators under test, each set up over the same arena and
//! reached through `GlobalAlloc`, behind a spinlock where the allocator has
//! no locking of its own: what a kernel would register as its
//! `#[global_allocator]`.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use axallocator::ByteAllocator;
use hartalloc::{HartAlloc, Platform};

/// Every byte allocator in the order the tables list them; hartalloc first.
pub const BYTE_ALLOCATORS: &[&str] = &[
    "hartalloc",
    "talc",
    "rlsf",
    "buddy_system_allocator",
    "linked_list_allocator",
    "arceos-tlsf",
    "arceos-slab",
    "arceos-buddy",
];

/// The hartalloc C heap: one per process, so each trial runs in its own
/// forked child (see main.rs), as do the peers' trials.
static HART: HartAlloc = HartAlloc::new();

/// The part of the arena hartalloc's early allocator gets before the rest
/// becomes a region: the boot sequence a kernel goes through.
const EARLY_SLICE: usize = 256 * 1024;

/// hartalloc's platform for a trial on `threads` threads: a single-thread
/// trial runs the default, [`Platform::SINGLE_HART`] (one CPU, interrupts
/// left alone), as a kernel on one hart does; a multi-thread one gives
/// each thread a CPU of its own ([`Platform::PER_THREAD`]), as harts.
fn hart_platform(threads: usize) -> &'static Platform {
    if threads == 1 {
        &Platform::SINGLE_HART
    } else {
        &Platform::PER_THREAD
    }
}

/// An allocator over `[base, base + size)`, for a trial on `threads`
/// threads, leaked: the child process that made it exits when the trial
/// is over.
///
/// # Safety
///
/// The range is writable memory that nothing else uses; `make` is called
/// at most once per process for "hartalloc".
pub unsafe fn make(name: &str, base: *mut u8, size: usize, threads: usize) -> &'static (dyn GlobalAlloc + Sync) {
    let start = base as usize;
    match name {
        "hartalloc" => {
            hartalloc::set_platform(hart_platform(threads));
            // SAFETY: the caller gives us the arena; the early slice and the
            // region do not overlap.
            unsafe {
                HART.early_init(start, EARLY_SLICE);
                HART.add_region(start + EARLY_SLICE, size - EARLY_SLICE).expect("ha_add_region");
            }
            HART.final_init().expect("ha_final_init");
            &HART
        }
        "talc" => {
            let t: &'static Talc = Box::leak(Box::new(Talc::new(talc::source::Manual)));
            // SAFETY: the arena is ours to give.
            unsafe { t.lock().claim(base, size) }.expect("talc claim");
            t
        }
        "rlsf" => {
            let mut tlsf = RlsfInner::new();
            // SAFETY: the arena is ours to give, for the rest of the process.
            unsafe { tlsf.insert_free_block_ptr(NonNull::new(ptr::slice_from_raw_parts_mut(base, size)).unwrap()) };
            Box::leak(Box::new(Rlsf(spin::Mutex::new(tlsf))))
        }
        "buddy_system_allocator" => {
            let h: &'static buddy_system_allocator::LockedHeap<32> =
                Box::leak(Box::new(buddy_system_allocator::LockedHeap::<32>::empty()));
            // SAFETY: the arena is ours to give.
            unsafe { h.lock().init(start, size) };
            h
        }
        "linked_list_allocator" => {
            let h: &'static linked_list_allocator::LockedHeap =
                Box::leak(Box::new(linked_list_allocator::LockedHeap::empty()));
            // SAFETY: the arena is ours to give.
            unsafe { h.lock().init(base, size) };
            h
        }
        "arceos-tlsf" => arceos(axallocator::TlsfByteAllocator::new(), start, size),
        "arceos-slab" => arceos(axallocator::SlabByteAllocator::new(), start, size),
        "arceos-buddy" => arceos(axallocator::BuddyByteAllocator::new(), start, size),
        _ => panic!("unknown allocator {name}"),
    }
}

type Talc = talc::TalcLock<spinning_top::RawSpinlock, talc::source::Manual>;

/// rlsf with the parameters ArceOS picked for pools of this size (first
/// level up to 2^28 * 32).
type RlsfInner = rlsf::Tlsf<'static, u32, u32, 28, 32>;

struct Rlsf(spin::Mutex<RlsfInner>);

// SAFETY: blocks come from rlsf, which returns memory of the layout's size
// and alignment or None; deallocate/reallocate get blocks it handed out.
unsafe impl GlobalAlloc for Rlsf {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().allocate(layout).map_or(ptr::null_mut(), NonNull::as_ptr)
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: p is a live block with this layout.
        unsafe { self.0.lock().deallocate(NonNull::new_unchecked(p), layout.align()) }
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: p is live, new_size valid for the alignment.
        unsafe {
            let nl = Layout::from_size_align_unchecked(new_size, layout.align());
            self.0.lock().reallocate(NonNull::new_unchecked(p), nl).map_or(ptr::null_mut(), NonNull::as_ptr)
        }
    }
}

/// An ArceOS byte allocator as its `axalloc` uses it: behind a lock; no
/// realloc of its own (GlobalAlloc's default moves).
struct ArceOs<A>(spin::Mutex<A>);

fn arceos<A: ByteAllocator + Send + 'static>(mut a: A, start: usize, size: usize) -> &'static (dyn GlobalAlloc + Sync) {
    a.init(start, size);
    Box::leak(Box::new(ArceOs(spin::Mutex::new(a))))
}

// SAFETY: blocks come from the ArceOS allocator, which returns memory of
// the layout or an error; dealloc passes back what it handed out.
unsafe impl<A: ByteAllocator + Send> GlobalAlloc for ArceOs<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().alloc(layout).map_or(ptr::null_mut(), NonNull::as_ptr)
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: p is a live, non-null block.
        self.0.lock().dealloc(unsafe { NonNull::new_unchecked(p) }, layout)
    }
}

// ----------------------------------------------------------------- pages

/// Page allocators under test.
pub const PAGE_ALLOCATORS: &[&str] = &["hartalloc", "buddy_system_allocator::FrameAllocator", "bitmap-allocator"];

/// A page allocator: runs of pages at a page-multiple alignment, page
/// numbers relative to the arena start.
pub trait Pages {
    fn alloc(&mut self, count: usize, align_pages: usize) -> Option<usize>;
    fn free(&mut self, page: usize, count: usize, align_pages: usize);
}

struct HartPages {
    base: usize,
}

impl Pages for HartPages {
    fn alloc(&mut self, count: usize, align_pages: usize) -> Option<usize> {
        // SAFETY: plain arguments, checked by the C core.
        let p = unsafe { hartalloc::sys::ha_alloc_pages(count, align_pages * hartalloc::PAGE_SIZE) };
        (!p.is_null()).then(|| (p as usize - self.base) / hartalloc::PAGE_SIZE)
    }
    fn free(&mut self, page: usize, count: usize, _align_pages: usize) {
        // SAFETY: a run this trait handed out, as it was handed out.
        unsafe { hartalloc::sys::ha_free_pages((self.base + page * hartalloc::PAGE_SIZE) as *mut _, count) }
    }
}

/// rCore's frame allocator: free lists of buddy blocks in BTreeSets on the
/// (system) heap, block sizes powers of two.
struct BuddyFrames(buddy_system_allocator::FrameAllocator<32>);

impl Pages for BuddyFrames {
    fn alloc(&mut self, count: usize, align_pages: usize) -> Option<usize> {
        if align_pages <= 1 {
            self.0.alloc(count)
        } else {
            self.0.alloc_aligned(Layout::from_size_align(count, align_pages).ok()?)
        }
    }
    fn free(&mut self, page: usize, count: usize, align_pages: usize) {
        if align_pages <= 1 {
            self.0.dealloc(page, count)
        } else {
            // alloc_aligned took max(count rounded up, align) frames.
            self.0.dealloc_aligned(page, Layout::from_size_align(count, align_pages).unwrap())
        }
    }
}

/// rCore's `BitAlloc`: a 16-ary tree of bitmaps (64 Ki pages = 256 MiB).
struct Bitmap(Box<bitmap_allocator::BitAlloc64K>);

impl Pages for Bitmap {
    fn alloc(&mut self, count: usize, align_pages: usize) -> Option<usize> {
        use bitmap_allocator::BitAlloc;
        if count == 1 && align_pages <= 1 {
            self.0.alloc()
        } else {
            self.0.alloc_contiguous(None, count, align_pages.trailing_zeros() as usize)
        }
    }
    fn free(&mut self, page: usize, count: usize, _align_pages: usize) {
        use bitmap_allocator::BitAlloc;
        if count == 1 {
            self.0.dealloc(page);
        } else {
            self.0.dealloc_contiguous(page, count);
        }
    }
}

/// A page allocator over `[base, base + size)` (page-aligned).
///
/// # Safety
///
/// As for [`make`].
pub unsafe fn make_pages(name: &str, base: *mut u8, size: usize) -> Box<dyn Pages> {
    let npages = size / hartalloc::PAGE_SIZE;
    match name {
        "hartalloc" => {
            hartalloc::set_platform(hart_platform(1));
            // SAFETY: the arena is ours to give; hartalloc's metadata (1 bit
            // per page plus the kind map) lives inside it, while the peers
            // keep theirs outside: the figure in the report says so.
            unsafe {
                HART.early_init(base as usize, EARLY_SLICE);
                HART.add_region(base as usize + EARLY_SLICE, size - EARLY_SLICE).expect("ha_add_region");
            }
            HART.final_init().expect("ha_final_init");
            Box::new(HartPages { base: base as usize })
        }
        "buddy_system_allocator::FrameAllocator" => {
            let mut f = buddy_system_allocator::FrameAllocator::<32>::new();
            f.add_frame(0, npages);
            Box::new(BuddyFrames(f))
        }
        "bitmap-allocator" => {
            use bitmap_allocator::BitAlloc;
            let mut b = Box::new(bitmap_allocator::BitAlloc64K::DEFAULT);
            b.insert(0..npages);
            Box::new(Bitmap(b))
        }
        _ => panic!("unknown page allocator {name}"),
    }
}
