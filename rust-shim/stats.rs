//! Heap statistics.

use crate::sys;

/// A snapshot of the heap's figures (`struct ha_stats`), from
/// [`HartAlloc::stats`](crate::HartAlloc::stats).
///
/// Byte figures count what the byte allocator hands out (the usable size of
/// live blocks, which may exceed what was asked for); page figures count the
/// page allocator's pages, whoever holds them ([`Pages`](crate::Pages) or the
/// byte allocator). The counters are summed over CPUs without stopping them,
/// so a snapshot taken while other CPUs allocate is only approximately
/// consistent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes under management: every region and the early range.
    pub bytes_total: usize,
    /// Usable bytes of live blocks from the byte allocator.
    pub bytes_used: usize,
    /// Bytes that can still be handed out: free pages plus free space held
    /// by the byte allocator.
    pub bytes_free: usize,
    /// High-water mark of `bytes_used` (exact on one CPU; on several,
    /// sampled whenever a CPU's own share passes its high-water mark).
    pub bytes_peak: usize,
    /// Allocator metadata: page bitmaps, slab headers, block headers.
    pub bytes_meta: usize,
    /// Pages owned by the page allocator (regions less reserves and
    /// metadata).
    pub pages_total: usize,
    /// Pages out of the page allocator: [`Pages`](crate::Pages) runs, and
    /// the byte allocator's pages, including those it keeps cached for reuse
    /// (per-CPU object caches, empty slabs, spare arenas), so this stays
    /// above zero after everything is freed, until
    /// [`HartAlloc::trim`](crate::HartAlloc::trim) gives them back.
    pub pages_used: usize,
    /// Pages free: in the page allocator's free lists and in the CPUs'
    /// frame caches.
    pub pages_free: usize,
    /// High-water mark of `pages_used` (sampled as `bytes_peak` is).
    pub pages_peak: usize,
    /// The largest run of pages the page allocator can return at once.
    pub pages_largest_run: usize,
    /// Bytes of the early range handed out and not yet given back.
    pub early_used: usize,
    /// Successful allocations (including reallocations that moved).
    pub allocs: u64,
    /// Frees of live blocks.
    pub frees: u64,
    /// Successful page allocations.
    pub page_allocs: u64,
    /// Page frees.
    pub page_frees: u64,
    /// Allocating calls that returned null (out of memory or bad argument).
    pub failures: u64,
}

impl From<sys::ha_stats> for Stats {
    fn from(s: sys::ha_stats) -> Stats {
        Stats {
            bytes_total: s.bytes_total,
            bytes_used: s.bytes_used,
            bytes_free: s.bytes_free,
            bytes_peak: s.bytes_peak,
            bytes_meta: s.bytes_meta,
            pages_total: s.pages_total,
            pages_used: s.pages_used,
            pages_free: s.pages_free,
            pages_peak: s.pages_peak,
            pages_largest_run: s.pages_largest_run,
            early_used: s.early_used,
            allocs: s.allocs,
            frees: s.frees,
            page_allocs: s.page_allocs,
            page_frees: s.page_frees,
            failures: s.failures,
        }
    }
}
