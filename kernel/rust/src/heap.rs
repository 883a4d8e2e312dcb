//! The kernel heap: hartalloc as the global allocator, started the way its
//! docs teach: early allocator on a small static range, then the RAM of the
//! device tree, less what must never be handed out, then the final
//! allocators.

use alloc::vec::Vec;

use hartalloc::{HartAlloc, Platform};

use crate::dtb::{MachineInfo, Range, ReserveKind, Reserved};
use crate::{platform, smp};

#[global_allocator]
pub static HEAP: HartAlloc = HartAlloc::new();

/// What the allocator calls back into: per-hart cache index, interrupt
/// masking, and faults as panics carrying the C core's message.
static PLATFORM: Platform = Platform::SINGLE_HART
    .with_cpu_id(smp::cpu_index)
    .with_irq(platform::irq_save, platform::irq_restore)
    .with_fatal(hartalloc::panic_on_fatal);

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

/// Start the heap.  Returns the reserved ranges (an allocation of the
/// early allocator that outlives the switch to the final allocators: the
/// boot path's data stays valid).
pub fn init(info: &MachineInfo) -> Result<Vec<Reserved>, hartalloc::Error> {
    hartalloc::set_platform(&PLATFORM);

    let early = core::ptr::addr_of_mut!(EARLY_AREA) as usize;
    // SAFETY: EARLY_AREA is used by nothing else: handing it to the
    // allocator once, before any allocation, is its only use.
    unsafe { HEAP.try_early_init(early, EARLY_SIZE) }?;
    crate::println!("heap: early allocator on {:#x}..{:#x} ({} KiB, in .bss)", early, early + EARLY_SIZE, EARLY_SIZE / 1024);

    // Served by the early allocator: the device tree is read, RAM not yet
    // known to the allocator.
    let mut reserved: Vec<Reserved> = info.reserved.as_slice().to_vec();
    reserved.push(Reserved { range: kernel_image(), kind: ReserveKind::Kernel });

    for r in info.memory.as_slice() {
        // SAFETY: the device tree names this RAM; nothing else of the
        // kernel uses it except what is reserved below before final_init.
        unsafe { HEAP.add_region(r.start, r.len) }?;
        crate::println!("heap: region {:#x}..{:#x} ({} MiB)", r.start, r.end(), r.len >> 20);
    }
    for r in &reserved {
        if !info.memory.as_slice().iter().any(|m| r.range.start < m.end() && m.start < r.range.end()) {
            continue; // outside RAM: nothing to keep out
        }
        // SAFETY: reserving only takes memory away from the allocator.
        unsafe { HEAP.reserve(r.range.start, r.range.len) }?;
        crate::println!("heap: reserve {:#x}..{:#x} ({:?})", r.range.start, r.range.end(), r.kind);
    }
    HEAP.final_init()?;
    Ok(reserved)
}

/// A stack of `pages` pages for a secondary hart: returns its top.  Never
/// freed: the hart runs until the machine stops.
pub fn alloc_stack(pages: usize) -> Option<usize> {
    let (base, count) = HEAP.alloc_pages(pages, hartalloc::PAGE_SIZE)?.into_raw();
    Some(base.as_ptr() as usize + count * hartalloc::PAGE_SIZE)
}

/// The early allocator's range.
pub fn early_range() -> Range {
    Range { start: core::ptr::addr_of!(EARLY_AREA) as usize, len: EARLY_SIZE }
}
