//! Calling host code: the host's opaque pointers and the one place a reply callback is
//! invoked.
//!
//! A host hands the runtime function pointers and `user_data` pointers that the runtime
//! never dereferences, only passes back. The header's contract lets the runtime call
//! them from the context's threads (and, in completion mode, from the host's drain), so
//! moving them between threads is the host's promise, argued here once for
//! [`UserData`].

use std::ffi::{c_int, c_void};

use crate::abi::Callback;

/// Invokes the host's callback. The bytes must end with the NUL terminator, which is
/// not counted in `len`.
#[inline]
pub(crate) fn deliver(callback: Callback, user_data: *mut c_void, ret: c_int, msg_nul: &[u8]) {
    debug_assert_eq!(msg_nul.last(), Some(&0));
    // SAFETY: `callback` is the non-null function pointer the host gave with this request
    // and promised to keep callable until its terminal callback; `msg` points to
    // `len + 1` initialised bytes that stay alive and unchanged for the whole call.
    unsafe { callback(ret, msg_nul.as_ptr().cast(), msg_nul.len() - 1, user_data) };
}

/// The host's `user_data`: a `*mut c_void` that may cross to the thread that answers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the runtime never dereferences `user_data`; the host's documented contract is
// that it is passed back to its callback on whichever thread answers (the worker, a
// deferred completer, the monitor, the event thread, or the host's own drain).
unsafe impl Send for UserData {}
// SAFETY: as above: shared references only copy the pointer.
unsafe impl Sync for UserData {}
