//! What this kernel reads from the device tree beyond the shared
//! `MachineInfo`: the Arm-only parts.

use fdt::Fdt;

/// Where QEMU virt puts the device tree for an ELF kernel without firmware
/// (the start of RAM; x0 is 0 then).  A boot loader that passes the tree
/// in x0, as for a Linux Image, wins.
pub const VIRT_DTB: usize = 0x4000_0000;

const FDT_MAGIC: u32 = 0xd00d_feed;

/// The device tree's address: x0 when it points at one, else QEMU virt's
/// place.  Returns 0 when neither holds a tree.
pub fn find_dtb(x0: usize) -> usize {
    [x0, VIRT_DTB].into_iter().find(|&a| a != 0 && a % 8 == 0 && has_magic(a)).unwrap_or(0)
}

fn has_magic(addr: usize) -> bool {
    // SAFETY: addr is x0 as the loader left it or the start of RAM, both
    // readable with the MMU off; one aligned 4-byte read.
    u32::from_be(unsafe { core::ptr::read_volatile(addr as *const u32) }) == FDT_MAGIC
}

pub struct ArmInfo {
    /// `/psci` `method`: "hvc" or "smc" ("" when there is no PSCI node).
    pub psci_method: &'static str,
    /// The console's PL011 (`/chosen/stdout-path`, else the first PL011).
    pub uart: usize,
}

/// # Safety
/// As for `hartalloc_kernel_common::dtb::parse`: a valid device tree at
/// `addr`, kept intact for as long as the strings are used.
pub unsafe fn parse(addr: usize) -> Option<ArmInfo> {
    // SAFETY: the caller's promise.
    let fdt = unsafe { Fdt::from_ptr(addr as *const u8) }.ok()?;
    let psci_method = fdt
        .find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
        .and_then(|n| n.property("method"))
        .and_then(|p| p.as_str())
        .unwrap_or("");
    let uart_node = fdt
        .find_node("/chosen")
        .and_then(|_| fdt.chosen().stdout())
        .filter(|n| n.compatible().is_some_and(|c| c.all().any(|s| s == "arm,pl011")))
        .or_else(|| fdt.find_compatible(&["arm,pl011"]));
    let uart = uart_node
        .and_then(|n| n.reg())
        .and_then(|mut r| r.next())
        .map_or(0, |r| r.starting_address as usize);
    Some(ArmInfo { psci_method, uart })
}
