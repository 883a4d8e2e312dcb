//! Starting the heap the way hartalloc's docs teach, on any architecture:
//! the early allocator on a small static range, then the RAM of the device
//! tree less what must never be handed out, then the final allocators.
//!
//! The kernel owns the `#[global_allocator]` static and its platform hooks
//! (CPU index, interrupt masking are architecture-specific) and passes both
//! in.  Its linker script defines `_kernel_start` and `_kernel_end` around
//! the whole image, `.bss` included.

use alloc::vec::Vec;

use hartalloc::{HartAlloc, Platform};

use crate::dtb::{MachineInfo, Range, ReserveKind, Reserved};

/// The early range: serves the boot path before RAM is known.  In .bss,
/// so inside the kernel image (which is reserved); hartalloc keeps it
/// apart from the reserve and gives its unused rest to the page allocator.
const EARLY_SIZE: usize = 128 * 1024;

#[repr(C, align(4096))]
struct EarlyArea([u8; EARLY_SIZE]);

static mut EARLY_AREA: EarlyArea = EarlyArea([0; EARLY_SIZE]);

extern "C" {
    static _kernel_start: u8;
    static _kernel_end: u8;
}

/// The kernel image, .bss and boot stack included.
pub fn kernel_image() -> Range {
    // Only the symbols' addresses are taken: no read, nothing unsafe.
    let (start, end) = (&raw const _kernel_start as usize, &raw const _kernel_end as usize);
    Range { start, len: end - start }
}

/// The early allocator's range.
pub fn early_range() -> Range {
    Range { start: core::ptr::addr_of!(EARLY_AREA) as usize, len: EARLY_SIZE }
}

/// Start `heap`.  Returns the reserved ranges (an allocation of the early
/// allocator that outlives the switch to the final allocators: the boot
/// path's data stays valid).  Call it once, on one CPU, before any
/// allocation.
pub fn start(heap: &HartAlloc, platform: &'static Platform, info: &MachineInfo) -> Result<Vec<Reserved>, hartalloc::Error> {
    hartalloc::set_platform(platform);

    // The secret that guards the allocator's free lists is keyed per boot
    // when the tree carries entropy; before early_init, as the API asks.
    if !info.rng_seed.is_empty() {
        heap.seed(info.rng_seed)?;
    }

    let early = early_range();
    // SAFETY: EARLY_AREA is used by nothing else: handing it to the
    // allocator once, before any allocation, is its only use.
    unsafe { heap.try_early_init(early.start, early.len) }?;
    crate::println!("heap: early allocator on {:#x}..{:#x} ({} KiB, in .bss)", early.start, early.end(), early.len / 1024);

    // Served by the early allocator: the device tree is read, RAM not yet
    // known to the allocator.
    let mut reserved: Vec<Reserved> = info.reserved.as_slice().to_vec();
    reserved.push(Reserved { range: kernel_image(), kind: ReserveKind::Kernel });

    for r in info.memory.as_slice() {
        // SAFETY: the device tree names this RAM; nothing else of the
        // kernel uses it except what is reserved below before final_init.
        unsafe { heap.add_region(r.start, r.len) }?;
        crate::println!("heap: region {:#x}..{:#x} ({} MiB)", r.start, r.end(), r.len >> 20);
    }
    for r in &reserved {
        if !info.memory.as_slice().iter().any(|m| r.range.start < m.end() && m.start < r.range.end()) {
            continue; // outside RAM: nothing to keep out
        }
        // SAFETY: reserving only takes memory away from the allocator.
        unsafe { heap.reserve(r.range.start, r.range.len) }?;
        crate::println!("heap: reserve {:#x}..{:#x} ({:?})", r.range.start, r.range.end(), r.kind);
    }
    heap.final_init()?;
    let s = heap.stats();
    crate::println!(
        "heap: final allocators up: {} MiB managed, {} pages free, largest run {} pages",
        s.bytes_total >> 20,
        s.pages_free,
        s.pages_largest_run
    );
    Ok(reserved)
}
