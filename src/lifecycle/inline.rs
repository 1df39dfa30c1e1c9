//! Inline exports (`#[ffi(inline)]`): the handler runs on the calling thread and the
//! callback is called before the export returns; no context, ring or worker is involved.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::last_error::refuse;
use crate::abi::{Callback, Refusal, RET_ERR, RET_OK};
use crate::egress::reply::Reply;
use crate::ffi::host::deliver;
use crate::ingress::request::{ArgsView, Request};
use crate::library::{LibRef, Library};
use crate::threads::{calling_host, panics};

/// A spare answer buffer, which inline calls take and give back, so that a host calling
/// them one at a time allocates nothing after its first call. (A thread-local buffer
/// would register a destructor that keeps the library loaded as long as the host's
/// thread lives.) Freed at unload ([`release`]).
static SPARE: AtomicPtr<Reply> = AtomicPtr::new(std::ptr::null_mut());

fn take_spare() -> Box<Reply> {
    // Acquire pairs with the release in `give_back`: the buffer's contents are visible.
    let spare = SPARE.swap(std::ptr::null_mut(), Ordering::Acquire);
    if spare.is_null() {
        return Box::new(Reply::new(None));
    }
    // SAFETY: a non-null `SPARE` is a `Box<Reply>` that `give_back` leaked and nobody
    // else holds: the swap took it out. It holds buffers only (no outbox, and no task:
    // inline handlers are neither async nor deferred), so it may move between threads.
    unsafe { Box::from_raw(spare) }
}

fn give_back(reply: Box<Reply>) {
    let reply = Box::into_raw(reply);
    let null = std::ptr::null_mut();
    if SPARE
        .compare_exchange(null, reply, Ordering::Release, Ordering::Relaxed)
        .is_err()
    {
        // Another call gave its buffer back first.
        // SAFETY: `reply` was never published.
        drop(unsafe { Box::from_raw(reply) });
    }
}

/// At unload: frees the spare buffer.
///
/// # Safety
/// No inline call is in progress or will be (the library is being unloaded).
pub(crate) unsafe fn release() {
    let spare = SPARE.swap(std::ptr::null_mut(), Ordering::Acquire);
    if !spare.is_null() {
        // SAFETY: as in `take_spare`; the caller's contract keeps others away.
        drop(unsafe { Box::from_raw(spare) });
    }
}

/// Runs method `method` of `L` (an inline table: a stateless `Default` type) on the
/// calling thread and answers through `callback` before returning `RET_OK`. Refused
/// (non-zero, no callback) when the callback is null or `request` refuses the arguments.
/// A panicking handler is answered `ERR`, without a word on the host's stderr.
pub fn call_inline<L: Library + Default>(
    callback: Option<Callback>,
    user_data: *mut c_void,
    method: u16,
    request: impl FnOnce() -> Result<Request, Refusal>,
) -> c_int {
    let Some(callback) = callback else {
        return refuse(Refusal::MissingCallback);
    };
    let request = match request() {
        Ok(r) => r,
        Err(refusal) => return refuse(refusal),
    };
    let Some(handler) = L::METHODS.get(method as usize) else {
        return refuse(Refusal::Unsupported("unknown method id"));
    };
    panics::keep_quiet();
    // A callback that makes another inline call finds the spare taken: that call answers
    // from a buffer of its own.
    let mut reply = take_spare();
    reply.start(request.kind);
    let mut value = L::default();
    let outcome = panics::quietly(|| {
        catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `value` is a live local, lent to this one handler call only.
            let lib = unsafe { LibRef::new(NonNull::from(&mut value)) };
            match request.view() {
                ArgsView::Native(mut fields) => (handler.native)(lib, &mut fields, &mut reply),
                ArgsView::Cbor(bytes) => (handler.cbor)(lib, bytes, &mut reply),
            }
        }))
    });
    let (ret, msg) = match outcome {
        Ok(result) => reply.outcome(result),
        Err(panic) => {
            let msg = format!("handler panicked: {}", panics::message(&*panic));
            (RET_ERR, reply.err_bytes(&msg))
        }
    };
    calling_host(|| deliver(callback, user_data, ret, msg));
    give_back(reply);
    RET_OK
}
