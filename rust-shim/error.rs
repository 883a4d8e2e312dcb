//! Errors of the life-cycle calls and of the heap check.

use core::ffi::{c_int, CStr};
use core::fmt;

use crate::sys;

/// Why a life-cycle call (`add_region`, `reserve`, `final_init`, ...) failed:
/// the C core's `enum ha_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Bad argument: null base, zero or overflowing length (`HA_EINVAL`).
    InvalidArgument,
    /// The call is not valid in this phase, e.g. a second `final_init`
    /// (`HA_ESTATE`).
    WrongPhase,
    /// A fixed table is full: too many regions or reserved ranges
    /// (`HA_ENOSPC`).
    TableFull,
    /// The range overlaps a region already added (`HA_EOVERLAP`).
    Overlap,
    /// `reserve` after `final_init` on memory already in use (`HA_EBUSY`).
    Busy,
    /// No usable memory: nothing left after rounding and reserves
    /// (`HA_ENOMEM`).
    NoMemory,
    /// A code this version of the crate does not know.
    Other(i32),
}

impl Error {
    /// The C code (`HA_E*`, negative) this error stands for.
    pub const fn code(self) -> i32 {
        match self {
            Error::InvalidArgument => sys::HA_EINVAL,
            Error::WrongPhase => sys::HA_ESTATE,
            Error::TableFull => sys::HA_ENOSPC,
            Error::Overlap => sys::HA_EOVERLAP,
            Error::Busy => sys::HA_EBUSY,
            Error::NoMemory => sys::HA_ENOMEM,
            Error::Other(c) => c,
        }
    }

    /// `Ok(())` for `HA_OK`, else the error of `code`.
    pub const fn from_code(code: i32) -> Result<(), Error> {
        Err(match code {
            sys::HA_OK => return Ok(()),
            sys::HA_EINVAL => Error::InvalidArgument,
            sys::HA_ESTATE => Error::WrongPhase,
            sys::HA_ENOSPC => Error::TableFull,
            sys::HA_EOVERLAP => Error::Overlap,
            sys::HA_EBUSY => Error::Busy,
            sys::HA_ENOMEM => Error::NoMemory,
            other => Error::Other(other),
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument => f.write_str("invalid argument (null base, zero or overflowing length)"),
            Error::WrongPhase => f.write_str("call not valid in this phase of the allocator's life cycle"),
            Error::TableFull => f.write_str("too many regions or reserved ranges"),
            Error::Overlap => f.write_str("range overlaps a region already added"),
            Error::Busy => f.write_str("range is already in use"),
            Error::NoMemory => f.write_str("no usable memory left after rounding and reserves"),
            Error::Other(c) => write!(f, "unknown hartalloc error {c}"),
        }
    }
}

impl core::error::Error for Error {}

/// What [`HartAlloc::check`](crate::HartAlloc::check) found wrong: the C
/// core's code and its description of the first inconsistency.
///
/// The message is copied out of the C core (which reuses its buffer on the
/// next check), so the error stays valid.
#[derive(Clone)]
pub struct CheckError {
    code: i32,
    len: u8,
    message: [u8; CheckError::CAPACITY],
}

impl CheckError {
    // Small enough for a Result that clippy accepts (under 128 bytes);
    // the C core's messages are well under this.
    const CAPACITY: usize = 112;

    /// # Safety
    /// `msg` is null or a NUL-terminated string valid for this call.
    pub(crate) unsafe fn new(code: c_int, msg: *const core::ffi::c_char) -> CheckError {
        let mut e = CheckError { code, len: 0, message: [0; Self::CAPACITY] };
        if msg.is_null() {
            return e;
        }
        // SAFETY: the caller guarantees a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(msg) }.to_bytes();
        let mut n = bytes.len().min(Self::CAPACITY);
        // Cut on a character boundary so that message() is valid UTF-8.
        while core::str::from_utf8(&bytes[..n]).is_err() {
            n -= 1;
        }
        e.message[..n].copy_from_slice(&bytes[..n]);
        e.len = n as u8;
        e
    }

    /// The C core's code (negative).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The first inconsistency found, as the C core describes it (may be
    /// cut to 112 bytes).
    pub fn message(&self) -> &str {
        core::str::from_utf8(&self.message[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckError").field("code", &self.code).field("message", &self.message()).finish()
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "heap check failed ({}): {}", self.code, self.message())
    }
}

impl core::error::Error for CheckError {}
