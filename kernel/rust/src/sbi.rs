//! The few SBI calls the kernel needs (OpenSBI, SBI v0.2+ calling
//! convention: a7 = extension, a6 = function, result in a0/a1).

use core::arch::asm;

const EID_LEGACY_PUTCHAR: usize = 0x01;
const EID_BASE: usize = 0x10;
const EID_HSM: usize = 0x48_534D;
const EID_SRST: usize = 0x5352_5354;

/// An SBI error code (negative values of a0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SbiError(pub isize);

#[inline]
fn ecall(eid: usize, fid: usize, a0: usize, a1: usize, a2: usize) -> Result<usize, SbiError> {
    let (err, val): (isize, usize);
    // SAFETY: an SBI call traps to M-mode firmware, which only touches the
    // argument registers it returns in (a0, a1); none of the calls used here
    // write our memory.
    unsafe {
        asm!("ecall",
             inlateout("a0") a0 => err, inlateout("a1") a1 => val,
             in("a2") a2, in("a6") fid, in("a7") eid,
             options(nostack));
    }
    if err == 0 {
        Ok(val)
    } else {
        Err(SbiError(err))
    }
}

/// Write one byte to the firmware console (legacy extension: present in
/// every OpenSBI; returns no error code worth checking).
pub fn console_putchar(c: u8) {
    let _ = ecall(EID_LEGACY_PUTCHAR, 0, c as usize, 0, 0);
}

/// The SBI specification version (major << 24 | minor).
pub fn spec_version() -> usize {
    ecall(EID_BASE, 0, 0, 0, 0).unwrap_or(0)
}

/// Whether the firmware implements extension `eid`.
pub fn probe_extension(eid: usize) -> bool {
    matches!(ecall(EID_BASE, 3, eid, 0, 0), Ok(v) if v != 0)
}

pub fn has_hsm() -> bool {
    probe_extension(EID_HSM)
}

/// HSM hart_start: `hart` starts at `entry` in S-mode with a0 = hart id,
/// a1 = `opaque`.
pub fn hart_start(hart: usize, entry: usize, opaque: usize) -> Result<(), SbiError> {
    ecall(EID_HSM, 0, hart, entry, opaque).map(|_| ())
}

/// HSM hart_get_status: 0 started, 1 stopped, 2 start pending, ...
pub fn hart_status(hart: usize) -> Result<usize, SbiError> {
    ecall(EID_HSM, 2, hart, 0, 0)
}

/// System reset: shutdown.  QEMU exits 0 whatever the reason, so failures
/// go through the test device first (see platform::exit).
pub fn shutdown(failure: bool) -> ! {
    let reason = if failure { 1 } else { 0 };
    let _ = ecall(EID_SRST, 0, 0, reason, 0);
    loop {
        core::hint::spin_loop();
    }
}
