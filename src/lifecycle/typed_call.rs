//! Typed calls (`<lib>_<m>_async`) and typed listeners (`<lib>_listen_<e>`).
//!
//! A typed call is submitted as an owned-answer request
//! whose callback is the runtime's [`answered`], with the host's typed function and
//! `user_data` in a pair from a pool (`sync/spares.rs`: no allocation once a few calls
//! have been made). `answered` stores the answer into the typed function's values
//! (`egress/typed.rs`) and calls it; the terminal callback gives the pair back first.
//! Exactly one terminal callback per accepted call holds as for every request: the
//! runtime's, which makes exactly one typed call.

use std::ffi::{c_char, c_int, c_void};
use std::ptr::NonNull;

use crate::abi::{ffid_ctx, Refusal, RET_ERR, RET_OK, RET_STALE_WARN};
use crate::egress::owned::{Owned, SyncOut};
use crate::egress::typed::{values, OutSlots};
use crate::events::ListenerView;
use crate::ingress::request::Request;
use crate::library::Library;
use crate::sync::spares::Spares;

use super::host_calls::{add_listener_keeping, submit_as, Answering};
use super::last_error::refuse;

/// The host's typed function (type-erased; [`answered`] knows its type) and its
/// `user_data`.
#[derive(Clone, Copy)]
struct Pair {
    f: *const (),
    user_data: *mut c_void,
}

// SAFETY: the pair only carries the host's pointers to the thread that answers (or
// delivers events), as every request and listener does (see `ffi/host.rs`,
// `UserData`).
unsafe impl Send for Pair {}
// SAFETY: as above; shared, it is only read.
unsafe impl Sync for Pair {}

static PAIRS: Spares<Pair> = Spares::new();

/// At unload: frees the spare pairs.
///
/// # Safety
/// No typed call is outstanding (the library is being unloaded).
pub(crate) unsafe fn release() {
    // SAFETY: forwarded.
    unsafe { PAIRS.release() }
}

/// The typed function as the pair keeps it.
fn erase<F: Copy>(f: F) -> *const () {
    const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*const ()>()) };
    // SAFETY: every `OutSlots::Reply` is a function pointer (the assertion checks its
    // size): its bits are an address.
    unsafe { std::mem::transmute_copy(&f) }
}

/// The typed function back from the pair.
///
/// # Safety
/// `p` came from [`erase`] of an `F`.
unsafe fn restore<F: Copy>(p: *const ()) -> F {
    // SAFETY: the caller's contract; sizes checked in `erase`.
    unsafe { std::mem::transmute_copy(&p) }
}

/// Calls method `method` of library `L`, answering `reply` with the typed values of its
/// answer of type `T`. `RET_OK` when accepted (exactly one terminal `reply` follows),
/// else the refusal's code (no call).
pub fn call_typed<L: Library, T: SyncOut + ?Sized>(
    ctx: *mut ffid_ctx,
    method: u16,
    request: impl FnOnce() -> Result<Request, Refusal>,
    reply: Option<<T::Out as OutSlots>::Reply>,
    user_data: *mut c_void,
) -> c_int
where
    T::Out: OutSlots,
{
    let Some(reply) = reply else {
        return refuse(Refusal::MissingCallback);
    };
    let empty = Pair {
        f: std::ptr::null(),
        user_data: std::ptr::null_mut(),
    };
    let pair = PAIRS.take(|| empty);
    // SAFETY: taken, so ours until given back.
    unsafe {
        pair.as_ptr().write(Pair {
            f: erase(reply),
            user_data,
        })
    };
    let rc = submit_as::<L>(
        ctx,
        Some(answered::<T>),
        pair.as_ptr().cast(),
        method,
        request,
        Answering::Owned,
    );
    if rc != RET_OK {
        // Refused: no callback will take it.
        PAIRS.give(pair);
    }
    rc
}

/// The runtime's callback of a typed call.
unsafe extern "C" fn answered<T: SyncOut + ?Sized>(
    ret: c_int,
    msg: *const c_char,
    len: usize,
    user_data: *mut c_void,
) where
    T::Out: OutSlots,
{
    // SAFETY: `user_data` is the pair `call_typed` gave this request, live until its
    // terminal callback gives it back (pings come before it, never after: the gate).
    let pair_ptr = unsafe { NonNull::new_unchecked(user_data.cast::<Pair>()) };
    // SAFETY: as above.
    let pair = unsafe { *pair_ptr.as_ref() };
    // SAFETY: `call_typed::<_, T>` erased a `Reply` of this `T`.
    let f: <T::Out as OutSlots>::Reply = unsafe { restore(pair.f) };
    let none = <T::Out as OutSlots>::NONE;
    if ret == RET_STALE_WARN {
        // SAFETY: the host's typed function, with its user_data; `msg` is the ping's text.
        unsafe { <T::Out as OutSlots>::reply(f, ret, none, msg, pair.user_data) };
        return;
    }
    // The terminal callback: the pair is read; recycled before the host runs.
    PAIRS.give(pair_ptr);
    if ret != RET_OK {
        // SAFETY: as above; `msg` is the error text, NUL-terminated.
        unsafe { <T::Out as OutSlots>::reply(f, ret, none, msg, pair.user_data) };
        return;
    }
    // SAFETY: the runtime's answer: `len` readable bytes during the call.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    // SAFETY: an owned-answer request's `RET_OK` message, taken over here, once.
    match unsafe { Owned::adopt(bytes) } {
        // SAFETY: as above; the values' blocks are the host's now.
        Some(answer) => unsafe {
            <T::Out as OutSlots>::reply(
                f,
                RET_OK,
                values::<T>(answer),
                std::ptr::null(),
                pair.user_data,
            )
        },
        // SAFETY: as above.
        None => unsafe {
            let why = c"the runtime handed over no answer";
            <T::Out as OutSlots>::reply(f, RET_ERR, none, why.as_ptr(), pair.user_data)
        },
    }
}

/// Adds a listener of event `event` of library `L` (payload type `T`) that receives the
/// typed values of each event, owned by the host as a typed call's answer. Returns its
/// id, or 0 when refused (no listener, an unknown event, a handle that is not live).
pub fn add_typed_listener<L: Library, T: SyncOut + ?Sized>(
    ctx: *mut ffid_ctx,
    event: u16,
    listener: Option<<T::Out as OutSlots>::Listener>,
    user_data: *mut c_void,
) -> u64
where
    T::Out: OutSlots,
{
    let Some(f) = listener else { return 0 };
    let pair = OwnedPair::new(Pair {
        f: erase(f),
        user_data,
    });
    let ud = pair.0.as_ptr().cast();
    add_listener_keeping::<L>(
        ctx,
        Some(event),
        ListenerView::Owned,
        Some(delivered::<T>),
        ud,
        Some(Box::new(pair)),
    )
}

/// A typed listener's pair, freed when its listener is: held by address, so that the
/// listener's `user_data` (the same address) stays valid however the owner moves.
struct OwnedPair(NonNull<Pair>);

impl OwnedPair {
    fn new(pair: Pair) -> Self {
        OwnedPair(NonNull::from(Box::leak(Box::new(pair))))
    }
}

impl Drop for OwnedPair {
    fn drop(&mut self) {
        // SAFETY: made by `new` from a `Box`, freed once, here; the listener that reads
        // it is gone with its owner.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

// SAFETY: as for `Pair`, which it owns.
unsafe impl Send for OwnedPair {}
// SAFETY: as above; shared, it is only read.
unsafe impl Sync for OwnedPair {}

/// The runtime's listener of a typed listener: `user_data` is its pair, owned by the
/// listener (so live while it is called).
unsafe extern "C" fn delivered<T: SyncOut + ?Sized>(
    ret: c_int,
    msg: *const c_char,
    len: usize,
    user_data: *mut c_void,
) where
    T::Out: OutSlots,
{
    // SAFETY: the pair `add_typed_listener` gave the listener, which keeps it.
    let pair = unsafe { *user_data.cast::<Pair>() };
    // SAFETY: the runtime's event bytes: `len` readable bytes during the call.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    // SAFETY: an owned view's message, taken over here, once (an encoding failure,
    // `ret != RET_OK`, hands nothing over).
    let Some(event) = (ret == RET_OK)
        .then(|| unsafe { Owned::adopt(bytes) })
        .flatten()
    else {
        return;
    };
    // SAFETY: `add_typed_listener::<_, T>` erased a `Listener` of this `T`.
    let f: <T::Out as OutSlots>::Listener = unsafe { restore(pair.f) };
    // SAFETY: the host's typed listener with its user_data; the values are its own.
    unsafe { <T::Out as OutSlots>::listen(f, values::<T>(event), pair.user_data) };
}
