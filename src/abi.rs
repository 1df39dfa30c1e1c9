//! C ABI types and status codes: the vocabulary shared with `include/ffi_dispatch.h`.
//!
//! Everything here is `#[repr(C)]` or a plain integer so that the header can mirror it
//! field for field. The raw-pointer readers at the bottom are the only place where an
//! export turns host memory into Rust references.

use std::ffi::{c_char, c_int, c_void, CStr};

/// Accepted; or, in a callback, the terminal success answer.
pub const RET_OK: c_int = 0;
/// Refused (return value) or failed (terminal callback); `msg` says why.
pub const RET_ERR: c_int = 1;
/// Refused: the callback pointer was null.
pub const RET_MISSING_CALLBACK: c_int = 2;
/// Non-terminal progress ping (reserved for long-running requests).
pub const RET_STALE_WARN: c_int = 3;
/// Refused: the ring is full and the context's policy is `Reject`
/// (or the caller is a worker thread, which never blocks).
pub const RET_BUSY: c_int = 4;

/// The host's callback: `ret` is a status code, `msg`/`len` the answer (valid only for
/// the duration of the call, `msg[len] == 0` always), `user_data` the host's pointer.
pub type Callback =
    unsafe extern "C" fn(ret: c_int, msg: *const c_char, len: usize, user_data: *mut c_void);

/// Opaque context handle as the host sees it. Never dereferenced: its bits encode a
/// registry slot and a generation (see `registry.rs`).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct ffid_ctx {
    _private: [u8; 0],
}

/// Back-pressure policy value for [`ffid_options::backpressure`]: wait for space.
pub const BACKPRESSURE_BLOCK: u32 = 0;
/// Back-pressure policy value for [`ffid_options::backpressure`]: refuse with `BUSY`.
pub const BACKPRESSURE_REJECT: u32 = 1;
/// Wake backend value for [`ffid_options::wake`]: futex word (parking_lot_core).
pub const WAKE_FUTEX: u32 = 0;
/// Wake backend value for [`ffid_options::wake`]: Linux `eventfd`.
pub const WAKE_EVENTFD: u32 = 1;

/// Ring value for [`ffid_options::ring`]: the tagged ring (default).
pub const RING_TAGGED: u32 = 0;
/// Ring value for [`ffid_options::ring`]: `crossbeam-queue`'s `ArrayQueue`.
pub const RING_ARRAY_QUEUE: u32 = 1;

/// Runtime options a host may pass at create time. Initialise with [`ffid_options_init`]
/// and then change fields; `struct_size` lets later versions add fields compatibly.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ffid_options {
    /// `sizeof(ffid_options)` as the host compiled it.
    pub struct_size: u32,
    /// Ring capacity in requests (rounded to at least 1). Default 4096.
    pub ring_capacity: u32,
    /// How long the idle worker busy-spins before it parks, in nanoseconds. 0 parks at once.
    pub spin_ns: u32,
    /// [`BACKPRESSURE_BLOCK`] (default) or [`BACKPRESSURE_REJECT`].
    pub backpressure: u32,
    /// [`WAKE_FUTEX`] (default) or [`WAKE_EVENTFD`].
    pub wake: u32,
    /// [`RING_TAGGED`] (default) or [`RING_ARRAY_QUEUE`].
    pub ring: u32,
}

/// Human-readable name of a status code (`"OK"`, `"ERR"`, ...); `"UNKNOWN"` otherwise.
/// The returned string is static.
#[no_mangle]
pub extern "C" fn ffid_status_name(code: c_int) -> *const c_char {
    let name: &'static CStr = match code {
        RET_OK => c"OK",
        RET_ERR => c"ERR",
        RET_MISSING_CALLBACK => c"MISSING_CALLBACK",
        RET_STALE_WARN => c"STALE_WARN",
        RET_BUSY => c"BUSY",
        _ => c"UNKNOWN",
    };
    name.as_ptr()
}

/// Fills `*opts` with the defaults. Returns `RET_ERR` for a null pointer.
///
/// # Safety
/// `opts` is null or points to writable memory for one `ffid_options`.
#[no_mangle]
pub unsafe extern "C" fn ffid_options_init(opts: *mut ffid_options) -> c_int {
    if opts.is_null() {
        return RET_ERR;
    }
    // SAFETY: non-null and, by this function's contract, valid for one write.
    unsafe { opts.write(crate::Options::default().to_c()) };
    RET_OK
}

/// Why a call was refused before it reached the ring: the status code the export
/// returns. No callback follows a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Null callback.
    MissingCallback,
    /// Bad handle, destroyed or closing context, null or invalid arguments.
    Err,
    /// Ring full under `Reject`, or the caller is a worker thread.
    Busy,
}

impl Refusal {
    /// The status code an export returns for this refusal.
    #[inline]
    pub fn code(self) -> c_int {
        match self {
            Refusal::MissingCallback => RET_MISSING_CALLBACK,
            Refusal::Err => RET_ERR,
            Refusal::Busy => RET_BUSY,
        }
    }
}

/// Borrows the host's args struct, refusing a null pointer.
///
/// # Safety
/// `args` is null or points to a valid, initialised `T` that stays alive and unchanged
/// for `'a` (exports use `'a` = the duration of the export call).
#[inline]
pub unsafe fn args_ref<'a, T>(args: *const T) -> Result<&'a T, Refusal> {
    // SAFETY: null is handled by `as_ref`; otherwise the caller guarantees validity.
    unsafe { args.as_ref() }.ok_or(Refusal::Err)
}

/// Reads a NUL-terminated UTF-8 string field, refusing null and invalid UTF-8.
///
/// # Safety
/// `s` is null or points to a NUL-terminated string alive for `'a`.
#[inline]
pub unsafe fn str_field<'a>(s: *const c_char) -> Result<&'a str, Refusal> {
    if s.is_null() {
        return Err(Refusal::Err);
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    let c = unsafe { CStr::from_ptr(s) };
    c.to_str().map_err(|_| Refusal::Err)
}

/// Reads a `(pointer, length)` byte field. A null pointer is accepted only with length 0.
///
/// # Safety
/// If `len > 0`, `p` points to `len` readable bytes alive for `'a`.
#[inline]
pub unsafe fn bytes_field<'a>(p: *const u8, len: usize) -> Result<&'a [u8], Refusal> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() || len > isize::MAX as usize {
        return Err(Refusal::Err);
    }
    // SAFETY: non-null, `len` bytes readable by the caller's contract, len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}
