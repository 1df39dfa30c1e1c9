//! Exactly-once accounting shared by the targets that call the C exports: every
//! accepted call must get one terminal callback, a refused one none.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ffi_dispatch::{RET_OK, RET_STALE_WARN};

pub static ACCEPTED: AtomicU64 = AtomicU64::new(0);
pub static ANSWERED: AtomicU64 = AtomicU64::new(0);

/// The callback of every fuzzed call: checks `msg[len] == 0` and counts, aborting on a
/// callback that no accepted call is owed.
pub unsafe extern "C" fn counted(ret: c_int, msg: *const c_char, len: usize, _: *mut c_void) {
    assert!(!msg.is_null(), "msg is never NULL");
    // SAFETY: the runtime passes `len` readable bytes and a NUL after them.
    assert_eq!(unsafe { *msg.add(len) }, 0, "msg[len] == 0");
    if ret == RET_STALE_WARN {
        return;
    }
    let answered = ANSWERED.fetch_add(1, Ordering::SeqCst) + 1;
    assert!(
        answered <= ACCEPTED.load(Ordering::SeqCst),
        "a callback nobody was owed: a second terminal callback, or one for a refused call"
    );
}

/// Makes one call: it is counted as owed a callback before it is made (the callback
/// may come before the call returns) and uncounted if it was refused. A callback for a
/// refused call then shows up as one answer too many in `settle`.
pub fn counted_call(call: impl FnOnce() -> c_int) -> c_int {
    ACCEPTED.fetch_add(1, Ordering::SeqCst);
    let rc = call();
    if rc != RET_OK {
        ACCEPTED.fetch_sub(1, Ordering::SeqCst);
    }
    rc
}

/// Waits until every accepted call was answered; a hang is a failure (10 s).
#[allow(dead_code)]
pub fn settle() {
    settle_draining(|| {});
}

/// [`settle`], running `drain` while it waits: answers of contexts in completion mode
/// wait for the host to drain them.
pub fn settle_draining(drain: impl Fn()) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ANSWERED.load(Ordering::SeqCst) < ACCEPTED.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "an accepted call was never answered"
        );
        drain();
        std::thread::yield_now();
    }
    assert_eq!(
        ANSWERED.load(Ordering::SeqCst),
        ACCEPTED.load(Ordering::SeqCst)
    );
}
