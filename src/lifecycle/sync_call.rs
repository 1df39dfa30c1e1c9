//! Blocking calls (`<lib>_<m>_sync`): the call is submitted as an owned-answer request
//! (its `RET_OK` answer is handed over, `egress/owned.rs`) and the calling thread waits
//! for it in an [`AnswerSlot`]: a short spin, then a futex sleep until the answer or the
//! deadline. At the deadline the call returns `RET_TIMEOUT` and the request goes on; its
//! answer, when it comes, is freed by the thread that delivers it. Exactly one terminal
//! callback per accepted request still holds: it is the runtime's own.

use std::ffi::{c_char, c_int, c_void};
use std::ptr::NonNull;
use std::time::Duration;

use crate::abi::{ffid_ctx, Busy, Refusal, RET_OK, RET_STALE_WARN, RET_TIMEOUT};
use crate::egress::owned::Owned;
use crate::ingress::request::Request;
use crate::library::Library;
use crate::sync::answer_slot::AnswerSlot;
use crate::sync::spares::Spares;
use crate::threads::must_not_block;

use super::host_calls::{submit_as, Answering};
use super::last_error::{refuse, set_last_error};

/// How long a blocking caller spins before it sleeps: a hot worker answers well
/// within it; a parked one takes a futex wake, and the caller sleeps meanwhile.
const SPIN: Duration = Duration::from_micros(20);

/// What the answering thread leaves in the slot.
enum Outcome {
    Answer(Owned),
    Failed(String),
}

type Slot = AnswerSlot<Outcome>;

// ---- spare slots ----------------------------------------------------------------------------

/// Slots live until the unload, recycled between calls (`sync/spares.rs`): a blocking
/// call allocates nothing once a few have been made, and no slot is freed while its
/// filler may still be inside `fill` (see `sync/answer_slot.rs`).
static SPARES: Spares<Slot> = Spares::new();

fn take_slot() -> NonNull<Slot> {
    SPARES.take(Slot::new)
}

/// Gives a slot its owner is done with back to the spares.
///
/// # Safety
/// The caller owns `slot` (see `sync/answer_slot.rs`) and its value was taken.
unsafe fn give_slot(slot: NonNull<Slot>) {
    // SAFETY: slots are never freed before the unload.
    unsafe { slot.as_ref() }.reset();
    SPARES.give(slot);
}

/// At unload: frees the spare slots.
///
/// # Safety
/// No blocking call is in progress or will be (the library is being unloaded), so
/// every slot is a spare.
pub(crate) unsafe fn release() {
    // SAFETY: forwarded.
    unsafe { SPARES.release() }
}

/// The runtime's own callback of a blocking call: fills the caller's slot.
unsafe extern "C" fn answered(ret: c_int, msg: *const c_char, len: usize, user_data: *mut c_void) {
    if ret == RET_STALE_WARN {
        return; // non-terminal
    }
    // SAFETY: `user_data` is the slot `call_sync` gave this request; slots live until
    // the unload.
    let slot = unsafe { NonNull::new_unchecked(user_data.cast::<Slot>()) };
    // SAFETY: the runtime's answer: `len` readable bytes during the call.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    let outcome = if ret == RET_OK {
        // SAFETY: an owned-answer request's `RET_OK` message, taken over here, once.
        match unsafe { Owned::adopt(bytes) } {
            Some(answer) => Outcome::Answer(answer),
            None => Outcome::Failed("the runtime handed over no answer".into()),
        }
    } else {
        Outcome::Failed(String::from_utf8_lossy(bytes).into_owned())
    };
    // SAFETY: as above.
    let handed_back = unsafe { slot.as_ref() }.fill(outcome);
    if let Some(late) = handed_back {
        // The caller gave up: the answer is freed here, and the slot is ours to recycle
        // now that `fill` has returned.
        drop(late);
        // SAFETY: the waiter abandoned the slot; its value was taken back.
        unsafe { give_slot(slot) };
    }
}

/// Calls method `method` of library `L` and waits for its answer: `Ok` with the owned
/// answer, or `Err` with the status (`RET_ERR`, `RET_TIMEOUT`, or the refusal's code),
/// whose reason is then the thread's `ffid_last_error`. `timeout_ms == 0` waits as long
/// as it takes.
pub fn call_sync<L: Library>(
    ctx: *mut ffid_ctx,
    method: u16,
    request: impl FnOnce() -> Result<Request, Refusal>,
    timeout_ms: u32,
) -> Result<Owned, c_int> {
    if must_not_block() {
        return Err(refuse(Refusal::Busy(Busy::InsideCallback)));
    }
    let slot_ptr = take_slot();
    let user_data = slot_ptr.as_ptr().cast::<c_void>();
    let rc = submit_as::<L>(
        ctx,
        Some(answered),
        user_data,
        method,
        request,
        Answering::OwnedForWaiter,
    );
    if rc != RET_OK {
        // SAFETY: refused, so no callback will fill it: still ours, empty. The
        // refusal's text is the thread's last error already.
        unsafe { give_slot(slot_ptr) };
        return Err(rc);
    }
    let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms.into()));
    // SAFETY: slots live until the unload.
    let outcome = unsafe { slot_ptr.as_ref() }.wait(SPIN, timeout);
    if outcome.is_some() {
        // SAFETY: the value came: the slot is ours again (the filler may be returning
        // from its wake, which names only the address of memory that stays).
        unsafe { give_slot(slot_ptr) };
    }
    match outcome {
        Some(Outcome::Answer(answer)) => {
            set_last_error(String::new());
            Ok(answer)
        }
        Some(Outcome::Failed(why)) => {
            set_last_error(why);
            Err(crate::abi::RET_ERR)
        }
        None => {
            set_last_error(format!(
                "timed out after {timeout_ms} ms: the call goes on, and its answer will be dropped"
            ));
            Err(RET_TIMEOUT)
        }
    }
}
