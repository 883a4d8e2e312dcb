//! The `Allocator` trait for `&HartAlloc`: allocator-api2's on stable
//! (feature `allocator-api2`), `core::alloc::Allocator` on nightly (feature
//! `nightly`), so that collections can be placed on the heap explicitly
//! (`Vec::new_in(&HEAP)`, `Box::new_in(x, &HEAP)`).
//!
//! Both traits have the same methods; one macro implements them, on top of
//! the `GlobalAlloc` methods.  A block's slice is exactly the size asked
//! for: the sized free checks the size it is given against the block, and
//! the trait lets a caller free with any size up to the slice's length.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use crate::HartAlloc;

/// A non-null result as the trait's slice, or the trait's error.
#[inline]
fn block(ptr: *mut u8, size: usize) -> Option<NonNull<[u8]>> {
    NonNull::new(ptr).map(|p| NonNull::slice_from_raw_parts(p, size))
}

/// Move a block to a layout of another alignment: allocate, copy, free.
///
/// # Safety
///
/// `ptr` is a live block of the heap with layout `old`.
unsafe fn move_block(heap: &HartAlloc, ptr: NonNull<u8>, old: Layout, new: Layout, zeroed: bool) -> *mut u8 {
    // SAFETY: GlobalAlloc's alloc takes any layout (zero sizes included).
    let q = unsafe { if zeroed { heap.alloc_zeroed(new) } else { heap.alloc(new) } };
    if !q.is_null() {
        // SAFETY: both blocks are live and distinct, and at least this long.
        unsafe { core::ptr::copy_nonoverlapping(ptr.as_ptr(), q, old.size().min(new.size())) };
        // SAFETY: ptr is live with layout `old` (the caller's promise).
        unsafe { heap.dealloc(ptr.as_ptr(), old) };
    }
    q
}

/// Resize `ptr` from `old` to `new`: in place or moved by the C core's
/// realloc when the alignment stays, else moved here.
///
/// # Safety
///
/// `ptr` is a live block of the heap with layout `old`.
unsafe fn resize(heap: &HartAlloc, ptr: NonNull<u8>, old: Layout, new: Layout) -> *mut u8 {
    if new.align() == old.align() && new.size() != 0 {
        // SAFETY: ptr is live with layout `old`; new.size() is nonzero and,
        // being a Layout's size, does not overflow isize when rounded up to
        // the alignment.
        unsafe { heap.realloc(ptr.as_ptr(), old, new.size()) }
    } else {
        // SAFETY: the caller's promise, passed on.
        unsafe { move_block(heap, ptr, old, new, false) }
    }
}

macro_rules! impl_allocator {
    ($Allocator:path, $AllocError:path) => {
        // SAFETY: blocks come from the GlobalAlloc methods, whose blocks stay
        // valid until freed, whoever holds the `&HartAlloc` (there is one C
        // heap per program, so copies of the reference all name the same
        // heap); slices are exactly the size asked for, so any size a caller
        // may pass back to `deallocate` is the block's own.
        unsafe impl $Allocator for &HartAlloc {
            #[inline]
            fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, $AllocError> {
                // SAFETY: GlobalAlloc's alloc takes any layout; a zero size
                // gives an aligned dangling pointer.
                block(unsafe { (**self).alloc(layout) }, layout.size()).ok_or($AllocError)
            }

            #[inline]
            fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, $AllocError> {
                // SAFETY: as in allocate.
                block(unsafe { (**self).alloc_zeroed(layout) }, layout.size()).ok_or($AllocError)
            }

            #[inline]
            unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
                // SAFETY: the trait's caller passes a live block of ours and
                // its layout.
                unsafe { (**self).dealloc(ptr.as_ptr(), layout) }
            }

            unsafe fn grow(
                &self,
                ptr: NonNull<u8>,
                old_layout: Layout,
                new_layout: Layout,
            ) -> Result<NonNull<[u8]>, $AllocError> {
                // SAFETY: the trait's caller passes a live block and its
                // layout; new_layout is at least as large.
                block(unsafe { resize(self, ptr, old_layout, new_layout) }, new_layout.size()).ok_or($AllocError)
            }

            unsafe fn grow_zeroed(
                &self,
                ptr: NonNull<u8>,
                old_layout: Layout,
                new_layout: Layout,
            ) -> Result<NonNull<[u8]>, $AllocError> {
                // SAFETY: as in grow.
                let p = unsafe { resize(self, ptr, old_layout, new_layout) };
                if !p.is_null() {
                    // SAFETY: the block is new_layout.size() bytes long; the
                    // bytes past the old size are the new ones.
                    unsafe { p.add(old_layout.size()).write_bytes(0, new_layout.size() - old_layout.size()) };
                }
                block(p, new_layout.size()).ok_or($AllocError)
            }

            unsafe fn shrink(
                &self,
                ptr: NonNull<u8>,
                old_layout: Layout,
                new_layout: Layout,
            ) -> Result<NonNull<[u8]>, $AllocError> {
                // SAFETY: the trait's caller passes a live block and its
                // layout; new_layout is at most as large.
                block(unsafe { resize(self, ptr, old_layout, new_layout) }, new_layout.size()).ok_or($AllocError)
            }
        }
    };
}

#[cfg(feature = "allocator-api2")]
impl_allocator!(allocator_api2::alloc::Allocator, allocator_api2::alloc::AllocError);

#[cfg(feature = "nightly")]
impl_allocator!(core::alloc::Allocator, core::alloc::AllocError);
