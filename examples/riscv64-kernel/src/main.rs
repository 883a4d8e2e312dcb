//! A riscv64 kernel (QEMU virt, S-mode under OpenSBI) on hartalloc, from
//! the first instruction to Vec, Box and BTreeMap on the C allocator.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::{boxed::Box, collections::BTreeMap, string::String, vec::Vec};
use core::arch::{asm, global_asm};
use core::fmt::Write;
use hartalloc::{HartAlloc, Platform};

// OpenSBI enters here with a0 = hart id, a1 = device-tree address, the MMU
// off: physical addresses are the kernel's addresses.
global_asm!(
    ".section .text.entry",
    ".globl _start",
    "_start:",
    "    la   sp, _stack_top",
    "    mv   tp, a0", // the hart id, where hart_id() reads it
    "    la   t0, _bss_start",
    "    la   t1, _bss_end",
    "1:  bgeu t0, t1, 2f",
    "    sd   zero, (t0)",
    "    addi t0, t0, 8",
    "    j    1b",
    "2:  call kmain",
);

fn hart_id() -> usize {
    let id: usize;
    // SAFETY: reads tp, which the boot code set to the hart id.
    unsafe { asm!("mv {}, tp", out(reg) id, options(nomem, nostack)) };
    id
}

fn irq_save() -> usize {
    let old: usize;
    // SAFETY: clears sstatus.SIE: masks this hart's S-mode interrupts.
    unsafe { asm!("csrrci {}, sstatus, 2", out(reg) old, options(nomem, nostack)) };
    old & 2
}

fn irq_restore(old: usize) {
    if old != 0 {
        // SAFETY: sets sstatus.SIE again, as it was before irq_save.
        unsafe { asm!("csrsi sstatus, 2", options(nomem, nostack)) };
    }
}

// The platform is tied to the heap: per-hart caches indexed by the hart id,
// allocator locks taken with interrupts masked, a fault is a panic.
static PLATFORM: Platform = Platform::SINGLE_HART.with_cpu_id(hart_id).with_irq(irq_save, irq_restore);

#[global_allocator]
static HEAP: HartAlloc = HartAlloc::with_platform(&PLATFORM);

// Serves the boot path before RAM is known.  In .bss, inside the kernel
// image; what it has not handed out by final_init goes to the page
// allocator.
const EARLY_SIZE: usize = 256 * 1024;
#[repr(C, align(4096))]
struct Early([u8; EARLY_SIZE]);
static mut EARLY: Early = Early([0; EARLY_SIZE]);

extern "C" {
    static _kernel_start: u8;
    static _kernel_end: u8;
}

#[no_mangle]
extern "C" fn kmain(hart: usize, dtb: usize) -> ! {
    // SAFETY: OpenSBI passes a valid device tree, which nothing overwrites.
    let fdt = unsafe { fdt::Fdt::from_ptr(dtb as *const u8) }.expect("device tree");

    // 0. Per-boot entropy for the allocator's secret, before early_init.
    if let Some(seed) = fdt.find_node("/chosen").and_then(|c| c.property("rng-seed")) {
        HEAP.seed(seed.value).expect("seed");
    }

    // 1. Early: allocation works from here on.
    // SAFETY: EARLY is used by nothing but the heap, for good.
    unsafe { HEAP.early_init(&raw mut EARLY as usize, EARLY_SIZE) };
    let mut log = String::from("booting"); // from the early allocator

    // 2. RAM from the device tree, mapped (here: the MMU is off; a
    //    higher-half kernel passes its direct-map addresses) ...
    for r in fdt.memory().regions() {
        let (start, len) = (r.starting_address as usize, r.size.unwrap_or(0));
        // SAFETY: RAM that nothing uses but what is reserved below.
        unsafe { HEAP.add_region(start, len) }.expect("add_region");
    }
    //    ... less what must never be handed out: firmware, kernel, DTB.
    if let Some(reserved) = fdt.find_node("/reserved-memory") {
        for node in reserved.children() {
            for r in node.reg().into_iter().flatten() {
                let (start, len) = (r.starting_address as usize, r.size.unwrap_or(0));
                // SAFETY: reserving only keeps memory away from the heap.
                unsafe { HEAP.reserve(start, len) }.expect("reserve firmware");
            }
        }
    }
    let (k0, k1) = (&raw const _kernel_start as usize, &raw const _kernel_end as usize);
    // SAFETY: as above.
    unsafe { HEAP.reserve(k0, k1 - k0) }.expect("reserve kernel");
    // SAFETY: as above.
    unsafe { HEAP.reserve(dtb, fdt.total_size()) }.expect("reserve dtb");

    // 3. Final: the page and byte allocators take over; `log` stays valid.
    HEAP.final_init().expect("final_init");
    log.push_str(", heap up");

    let v: Vec<u64> = (0..1000).collect();
    let b = Box::new([7u8; 4096]);
    let mut m = BTreeMap::new();
    m.insert(hart, log);
    let frames = HEAP.alloc_pages(4, 16384).expect("page frames"); // freed on drop
    let busy = HEAP.stats();
    drop((v, b, m, frames));
    HEAP.trim(); // cached slabs and arenas back to the page allocator
    let idle = HEAP.stats();
    HEAP.check().expect("heap consistent");
    let _ = writeln!(
        Console,
        "hart {hart}: {} pages used with everything live, {} after trim; {} allocations",
        busy.pages_used, idle.pages_used, idle.allocs
    );
    shutdown(false)
}

/// Output through the SBI console (legacy extension 1).
struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            // SAFETY: an SBI call that writes one byte to the console.
            unsafe { asm!("ecall", inout("a0") byte as usize => _, in("a7") 1, out("a1") _) };
        }
        Ok(())
    }
}

/// SBI system reset (SRST): shut down, `failed` as the reason.
fn shutdown(failed: bool) -> ! {
    // SAFETY: an SBI call that does not return.
    unsafe {
        asm!("ecall", in("a0") 0, in("a1") usize::from(failed), in("a6") 0, in("a7") 0x5352_5354,
             options(noreturn))
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // A heap fault arrives here with hartalloc's message and address.
    let _ = writeln!(Console, "panic: {info}");
    shutdown(true)
}
