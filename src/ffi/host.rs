//! Calling host code: the host's opaque pointers and the one place a reply callback is
//! invoked.
//!
//! A host hands the runtime function pointers and `user_data` pointers that the runtime
//! never dereferences, only passes back. The header's contract lets the runtime call
//! them from the context's threads (and, in completion mode, from the host's drain), so
//! moving them between threads is the host's promise, argued here once for
//! [`UserData`]. The structs that carry a `user_data` to another thread hold it as one
//! (the envelope, a deferred token, a queued completion, a listener); the two public
//! pairs ([`HostFn`], [`ThreadHooks`]) refer to that argument. Two keep a raw pointer
//! for a reason: the worker's board publishes it through an `AtomicPtr` (with its
//! provenance) to the monitor, and the reply's current request never leaves the worker.

use std::ffi::{c_int, c_void};

use crate::abi::{Callback, ThreadHook};

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
/// `UserData(ptr)` is made where the host hands the pointer over, `.0` read where it
/// is passed back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the runtime never dereferences `user_data`; the host's documented contract is
// that it is passed back to its callback on whichever thread answers (the worker, a
// deferred completer, the monitor, the event thread, the host's own drain, or the
// thread that destroys the context, for what is still owed then).
unsafe impl Send for UserData {}
// SAFETY: as above: shared references only copy the pointer.
unsafe impl Sync for UserData {}

/// A host function and the `user_data` it is called with.
#[derive(Clone, Copy, Debug)]
pub struct HostFn<F> {
    /// The function.
    pub f: F,
    /// Its `user_data` argument, never dereferenced by the runtime.
    pub user_data: *mut c_void,
}

// SAFETY: as for `UserData`: the runtime only copies the pair and calls `f` on the
// threads the header names (`ffid_options`: hooks and the diagnostic callback run on the
// context's threads).
unsafe impl<F: Send> Send for HostFn<F> {}
// SAFETY: as above.
unsafe impl<F: Sync> Sync for HostFn<F> {}

/// Start and stop hooks for the context's threads (to attach them to a VM).
#[derive(Clone, Copy, Debug)]
pub struct ThreadHooks {
    /// Called first on each thread; may be `None`.
    pub start: Option<ThreadHook>,
    /// Called last on each thread; may be `None`.
    pub stop: Option<ThreadHook>,
    /// Passed to both.
    pub user_data: *mut c_void,
}

// SAFETY: as for `UserData` (the hooks run on the context's own threads).
unsafe impl Send for ThreadHooks {}
// SAFETY: as above.
unsafe impl Sync for ThreadHooks {}
