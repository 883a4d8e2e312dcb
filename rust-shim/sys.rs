//! The raw C API of `c-alloc/include/hartalloc.h`, one to one.
//!
//! Everything the safe API does goes through these; they are public for
//! kernels that need a call the safe API does not wrap (for example
//! [`ha_usable_size`] or [`ha_free`] on a pointer that came from C code).
//! The C header is the reference for what each function means.
//!
//! The platform hooks (`ha_platform_*`) are not declared here: this crate
//! defines them (see [`crate::Platform`]).

#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, c_uint, c_void};

/// Size of a page of the page allocator, in bytes (`HA_PAGE_SIZE`).
pub const HA_PAGE_SIZE: usize = 4096;

/// Default upper bound on CPU ids (`HA_MAX_CPUS`): larger ids are folded.
pub const HA_MAX_CPUS: usize = 64;

/// `ha_add_region_flags`: the memory is known to read as zero.
pub const HA_REGION_ZEROED: c_uint = 0x1;

/// `enum ha_error`: success.
pub const HA_OK: c_int = 0;
/// Bad argument: NULL base, zero or overflowing length.
pub const HA_EINVAL: c_int = -1;
/// Call not valid in this phase.
pub const HA_ESTATE: c_int = -2;
/// A fixed table is full.
pub const HA_ENOSPC: c_int = -3;
/// The range overlaps a region already added.
pub const HA_EOVERLAP: c_int = -4;
/// `ha_reserve` after `ha_final_init` on memory already in use.
pub const HA_EBUSY: c_int = -5;
/// No usable memory: nothing left after rounding and reserves.
pub const HA_ENOMEM: c_int = -6;

/// `struct ha_stats`, field for field (see [`crate::Stats`] for meanings).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(missing_docs)]
pub struct ha_stats {
    pub bytes_total: usize,
    pub bytes_used: usize,
    pub bytes_free: usize,
    pub bytes_peak: usize,
    pub bytes_meta: usize,
    pub pages_total: usize,
    pub pages_used: usize,
    pub pages_free: usize,
    pub pages_peak: usize,
    pub pages_largest_run: usize,
    pub early_used: usize,
    pub allocs: u64,
    pub frees: u64,
    pub page_allocs: u64,
    pub page_frees: u64,
    pub failures: u64,
}

/// `ha_oom_handler_fn`.
pub type ha_oom_handler_fn = Option<unsafe extern "C" fn(bytes: usize, align: usize) -> c_int>;

#[allow(missing_docs)]
extern "C" {
    pub fn ha_seed(bytes: *const c_void, len: usize) -> c_int;
    pub fn ha_early_init(base: *mut c_void, len: usize) -> c_int;
    pub fn ha_add_region(base: *mut c_void, len: usize) -> c_int;
    pub fn ha_add_region_flags(base: *mut c_void, len: usize, flags: c_uint) -> c_int;
    pub fn ha_reserve(base: *mut c_void, len: usize) -> c_int;
    pub fn ha_final_init() -> c_int;

    pub fn ha_alloc(size: usize, align: usize) -> *mut c_void;
    pub fn ha_alloc_zeroed(size: usize, align: usize) -> *mut c_void;
    pub fn ha_realloc(ptr: *mut c_void, new_size: usize, align: usize) -> *mut c_void;
    pub fn ha_free(ptr: *mut c_void);
    pub fn ha_free_sized(ptr: *mut c_void, size: usize, align: usize);
    pub fn ha_usable_size(ptr: *const c_void) -> usize;

    pub fn ha_alloc_pages(count: usize, align: usize) -> *mut c_void;
    pub fn ha_alloc_pages_zeroed(count: usize, align: usize) -> *mut c_void;
    pub fn ha_free_pages(ptr: *mut c_void, count: usize);

    pub fn ha_get_stats(out: *mut ha_stats);
    pub fn ha_check() -> c_int;
    pub fn ha_check_message() -> *const c_char;
    pub fn ha_trim();
    pub fn ha_set_oom_handler(handler: ha_oom_handler_fn);
}
