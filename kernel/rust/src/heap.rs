//! The kernel heap: hartalloc as the global allocator, with this kernel's
//! platform hooks.  The start-up sequence itself (early allocator, the
//! device tree's RAM less the reserves, final allocators) is shared with
//! the aarch64 kernel: `hartalloc_kernel_common::heap`.

use alloc::vec::Vec;

use hartalloc::{HartAlloc, Platform};

use crate::dtb::{MachineInfo, Reserved};
use crate::{platform, smp};

#[global_allocator]
pub static HEAP: HartAlloc = HartAlloc::new();

/// What the allocator calls back into: per-hart cache index, interrupt
/// masking, and faults as panics carrying the C core's message.
static PLATFORM: Platform = Platform::SINGLE_HART
    .with_cpu_id(smp::cpu_index)
    .with_irq(platform::irq_save, platform::irq_restore)
    .with_fatal(hartalloc::panic_on_fatal);

/// Start the heap.  Returns the reserved ranges (an allocation of the
/// early allocator that outlives the switch to the final allocators: the
/// boot path's data stays valid).
pub fn init(info: &MachineInfo) -> Result<Vec<Reserved>, hartalloc::Error> {
    crate::common::heap::start(&HEAP, &PLATFORM, info)
}

/// A stack of `pages` pages for a secondary hart: returns its top.  Never
/// freed: the hart runs until the machine stops.
pub fn alloc_stack(pages: usize) -> Option<usize> {
    let (base, count) = HEAP.alloc_pages(pages, hartalloc::PAGE_SIZE)?.into_raw();
    Some(base.as_ptr() as usize + count * hartalloc::PAGE_SIZE)
}
