//! The status codes of `include/ffi_dispatch.h` (`FFID_RET_*`): what an export returns
//! and what a callback's `ret` says. Only ever appended to.

use std::ffi::c_int;

/// Accepted; or, in a callback, the terminal success answer.
pub const RET_OK: c_int = 0;
/// Refused for invalid arguments (return value; `<lib>_last_error` says which), or
/// failed (terminal callback; `msg` says why).
pub const RET_ERR: c_int = 1;
/// Refused: the callback pointer was null.
pub const RET_MISSING_CALLBACK: c_int = 2;
/// Non-terminal progress ping: the request has run longer than the context's
/// `stale_ping_ms`; `msg` is the elapsed milliseconds as decimal text.
pub const RET_STALE_WARN: c_int = 3;
/// Refused: the ring is full and the context's policy is `Reject`, or the caller must
/// not wait (inside a callback, or in completion mode while the completion queue is full).
pub const RET_BUSY: c_int = 4;
/// A blocking call's deadline passed: the call goes on and its answer is dropped.
pub const RET_TIMEOUT: c_int = 5;
/// Refused: the context is being destroyed or was destroyed (or was inherited across
/// fork).
pub const RET_CLOSED: c_int = 6;
/// Refused: not a handle of a context of this library (NULL, garbage, another
/// library's).
pub const RET_INVALID_CTX: c_int = 7;
/// Refused: the arguments take more than `FFID_MAX_REQUEST_BYTES`, or more memory than
/// could be had.
pub const RET_TOO_LARGE: c_int = 8;
