//! What a kernel needs from the device tree its boot firmware or QEMU
//! passes: RAM, the ranges that must never be handed out, the CPUs, the
//! timebase, the test device, the command line and the boot entropy.
//! Parsed before the allocator exists, so everything lands in fixed-size
//! tables.  Nothing here is architecture-specific: the RISC-V kernel gets
//! the tree from OpenSBI in a1, the aarch64 kernel from the start of RAM.

use fdt::Fdt;

pub const MAX_RANGES: usize = 16;
pub const MAX_HARTS: usize = 64;

/// A physical address range `[start, start + len)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub start: usize,
    pub len: usize,
}

impl Range {
    pub const fn end(&self) -> usize {
        self.start + self.len
    }
}

/// A small fixed-capacity list (no heap yet when the tree is read).
#[derive(Clone, Copy)]
pub struct List<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
    /// Items that did not fit: reported, never silently dropped.
    pub overflow: usize,
}

impl<T: Copy + Default, const N: usize> List<T, N> {
    pub fn new() -> Self {
        List { items: [T::default(); N], len: 0, overflow: 0 }
    }
    pub fn push(&mut self, item: T) {
        if self.len < N {
            self.items[self.len] = item;
            self.len += 1;
        } else {
            self.overflow += 1;
        }
    }
    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Copy + Default, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a reserved range is reserved (printed at boot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReserveKind {
    #[default]
    Firmware,
    MemReserve,
    DeviceTree,
    Kernel,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Reserved {
    pub range: Range,
    pub kind: ReserveKind,
}

pub struct MachineInfo {
    /// `device_type = "memory"` nodes.
    pub memory: List<Range, MAX_RANGES>,
    /// `/reserved-memory` children, `/memreserve/` entries and the tree itself.
    pub reserved: List<Reserved, MAX_RANGES>,
    /// Ids of the enabled cpus (`reg`: the hart id on RISC-V, the MPIDR
    /// affinity on aarch64), in device-tree order.
    pub harts: List<usize, MAX_HARTS>,
    pub timebase_hz: u64,
    /// The `sifive_test` device (0: none).
    pub test_device: usize,
    pub bootargs: &'static str,
    /// `/chosen/rng-seed`: entropy for the allocator's secret (empty: none).
    pub rng_seed: &'static [u8],
    pub dtb: Range,
}

impl MachineInfo {
    /// Total RAM in bytes.
    pub fn ram_bytes(&self) -> usize {
        self.memory.as_slice().iter().map(|r| r.len).sum()
    }

    /// Whether the command line has the word `word`.
    pub fn has_arg(&self, word: &str) -> bool {
        self.bootargs.split_ascii_whitespace().any(|w| w == word)
    }
}

pub enum DtbError {
    Bad(fdt::FdtError),
    NoMemory,
}

impl core::fmt::Display for DtbError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DtbError::Bad(e) => write!(f, "not a valid device tree ({:?})", e),
            DtbError::NoMemory => f.write_str("no memory node"),
        }
    }
}

/// Read the tree at `addr`.
///
/// # Safety
/// `addr` must be the device tree the firmware passed, mapped and left
/// untouched for as long as the returned strings are used (the kernel
/// reserves it from the allocator for that reason).
pub unsafe fn parse(addr: usize) -> Result<MachineInfo, DtbError> {
    // SAFETY: the caller guarantees a valid, lasting device tree at addr.
    let fdt = unsafe { Fdt::from_ptr(addr as *const u8) }.map_err(DtbError::Bad)?;
    let mut info = MachineInfo {
        memory: List::new(),
        reserved: List::new(),
        harts: List::new(),
        timebase_hz: 10_000_000,
        test_device: 0,
        bootargs: "",
        rng_seed: &[],
        dtb: Range { start: addr, len: fdt.total_size() },
    };

    for node in fdt.all_nodes() {
        let is_memory = node
            .property("device_type")
            .and_then(|p| p.as_str())
            .is_some_and(|t| t == "memory");
        if !is_memory || !node_enabled(&node) {
            continue;
        }
        for r in node.reg().into_iter().flatten() {
            if let Some(len) = r.size.filter(|&l| l > 0) {
                info.memory.push(Range { start: r.starting_address as usize, len });
            }
        }
    }
    if info.memory.is_empty() {
        return Err(DtbError::NoMemory);
    }

    if let Some(resv) = fdt.find_node("/reserved-memory") {
        for child in resv.children() {
            for r in child.reg().into_iter().flatten() {
                if let Some(len) = r.size.filter(|&l| l > 0) {
                    info.reserved.push(Reserved {
                        range: Range { start: r.starting_address as usize, len },
                        kind: ReserveKind::Firmware,
                    });
                }
            }
        }
    }
    for m in fdt.memory_reservations() {
        if m.size() > 0 {
            info.reserved.push(Reserved {
                range: Range { start: m.address() as usize, len: m.size() },
                kind: ReserveKind::MemReserve,
            });
        }
    }
    info.reserved.push(Reserved { range: info.dtb, kind: ReserveKind::DeviceTree });

    for cpu in fdt.cpus() {
        let enabled = cpu
            .property("status")
            .and_then(|p| p.as_str())
            .is_none_or(|s| s == "okay" || s == "ok");
        if enabled {
            info.harts.push(cpu.ids().first());
        }
        if let Some(tb) = cpu.property("timebase-frequency").and_then(|p| p.as_usize()) {
            info.timebase_hz = tb as u64;
        }
    }
    if let Some(tb) = fdt
        .find_node("/cpus")
        .and_then(|n| n.property("timebase-frequency"))
        .and_then(|p| p.as_usize())
    {
        info.timebase_hz = tb as u64;
    }

    if let Some(test) = fdt.find_compatible(&["sifive,test1", "sifive,test0"]) {
        if let Some(r) = test.reg().and_then(|mut it| it.next()) {
            info.test_device = r.starting_address as usize;
        }
    }

    info.bootargs = fdt
        .find_node("/chosen")
        .and_then(|n| n.property("bootargs"))
        .and_then(|p| p.as_str())
        .unwrap_or("");
    info.rng_seed = fdt
        .find_node("/chosen")
        .and_then(|n| n.property("rng-seed"))
        .map_or(&[], |p| p.value);
    Ok(info)
}

fn node_enabled(node: &fdt::node::FdtNode) -> bool {
    node.property("status")
        .and_then(|p| p.as_str())
        .is_none_or(|s| s == "okay" || s == "ok")
}
