//! Runs of pages from the page allocator, freed on drop.

use core::fmt;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ptr::NonNull;

use crate::{heap, sys, PAGE_SIZE};

/// `count()` contiguous pages from
/// [`HartAlloc::alloc_pages`](crate::HartAlloc::alloc_pages), given back to
/// the page allocator when dropped.
///
/// A `Pages` owns its memory the way a `Box` does, but hands out raw
/// pointers rather than references: page frames usually end up in page
/// tables or device rings. [`into_raw`](Pages::into_raw) keeps them for
/// good; [`from_raw`](Pages::from_raw) takes them back.
#[must_use = "dropping a Pages frees its pages at once; keep it, or call into_raw to keep the pages for good"]
pub struct Pages {
    ptr: NonNull<u8>,
    count: usize,
}

// SAFETY: a Pages is the sole owner of its memory, and the C core's
// ha_free_pages may be called from any CPU.
unsafe impl Send for Pages {}
// SAFETY: &Pages only exposes the address and the count.
unsafe impl Sync for Pages {}

impl Pages {
    /// Take ownership of pages from `ha_alloc_pages`.
    ///
    /// # Safety
    ///
    /// `ptr` and `count` are a run of pages from
    /// [`sys::ha_alloc_pages`](crate::sys::ha_alloc_pages) (or an
    /// [`into_raw`](Pages::into_raw)), or a whole-page sub-run of one,
    /// owned by nobody else.
    pub unsafe fn from_raw(ptr: NonNull<u8>, count: usize) -> Pages {
        Pages { ptr, count }
    }

    /// Give up ownership without freeing: the pages stay allocated.
    pub fn into_raw(self) -> (NonNull<u8>, usize) {
        let this = ManuallyDrop::new(self);
        (this.ptr, this.count)
    }

    /// Start of the run.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Start of the run, non-null.
    pub fn as_non_null(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Start of the run, as an address.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Number of pages.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Size of the run in bytes: `count() * PAGE_SIZE`.
    pub fn size_bytes(&self) -> usize {
        self.count * PAGE_SIZE
    }

    /// The pages as bytes that may not be initialised.
    pub fn as_uninit_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: we own size_bytes() bytes at ptr, and &mut self makes this
        // the only reference to them.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.size_bytes()) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if heap::is_given_up() {
            // The C core may hold its locks after a fault: leak.
            return;
        }
        // SAFETY: we own exactly these pages, from ha_alloc_pages.
        unsafe { sys::ha_free_pages(self.ptr.as_ptr().cast(), self.count) }
    }
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages").field("addr", &format_args!("{:#x}", self.addr())).field("count", &self.count).finish()
    }
}
