//! Deferred replies: a handler takes its request's reply token and answers later, from
//! any thread, while the worker moves on.
//!
//! A token owns the request's terminal callback. It answers through [`PingGate::claim`],
//! which succeeds once per request, so exactly-once holds however the token ends:
//! `complete`/`fail`, dropped unanswered (`ERR "reply dropped"`), or failed by destroy
//! after the context's `shutdown_timeout`. Outstanding tokens are listed in the
//! outbox's [`Pending`](crate::egress::pending::Pending) table, which the monitor walks
//! for progress pings and destroy waits on.

use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::egress::outbox::Outbox;
use crate::egress::pending::TokenState;
use crate::egress::reply::{Answer, Reply};
use crate::error::CallError;

thread_local! {
    /// The answer buffer of threads that complete deferred replies.
    static REPLY: RefCell<Option<Reply>> = const { RefCell::new(None) };
    /// Why tokens dropped now go unanswered (set around dropping async tasks).
    static DROP_REASON: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Runs `f` (which drops tokens) with `reason` as the `ERR` message of every token it
/// drops unanswered.
pub(crate) fn with_drop_reason<R>(reason: &'static str, f: impl FnOnce() -> R) -> R {
    let before = DROP_REASON.with(|r| r.replace(Some(reason)));
    let out = f();
    DROP_REASON.with(|r| r.set(before));
    out
}

/// The reply token of a deferred request: answer it once with [`Deferred::complete`],
/// [`Deferred::result`] or [`Deferred::fail`], on any thread. Dropped unanswered, it
/// answers `ERR` `"reply dropped"` (`"handler panicked"` while unwinding).
///
/// Take it with a `Deferred<T>` parameter in an `#[ffi]` method (the method's answer
/// type is `T`), or with [`Deferred::take`] in a hand-written handler.
#[must_use = "dropping a reply token answers ERR \"reply dropped\""]
pub struct Deferred<T: ?Sized> {
    state: Option<Arc<TokenState>>,
    /// Where the answer leaves (not the context: a token kept past destroy pins only
    /// this).
    outbox: Arc<Outbox>,
    _answer: PhantomData<fn(&T)>,
}

impl<T: Answer + ?Sized> Deferred<T> {
    /// Takes the current request's reply token: the worker will not answer it, the
    /// token will. The handler's own return value is then ignored.
    ///
    /// # Panics
    /// Outside a handler running on a worker, or when called twice for one request.
    pub fn take(reply: &mut Reply) -> Self {
        let (outbox, state) = reply.take_request();
        let state = Arc::new(state);
        outbox.pending.insert(state.clone());
        Deferred {
            state: Some(state),
            outbox,
            _answer: PhantomData,
        }
    }

    /// The request's id (as `<lib>_last_request_id` returned it to the caller).
    pub fn request_id(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.id)
    }

    /// Answers `RET_OK` with `value`.
    pub fn complete(mut self, value: &T) {
        self.answer(|r| r.value(value));
    }

    /// Answers `ERR` with `message`.
    pub fn fail(mut self, message: impl Display) {
        self.answer(|_| Err(CallError::from_display(message)));
    }

    /// Answers with a `Result`, as a method returning it would.
    pub fn result<E: Display>(mut self, r: Result<&T, E>) {
        self.answer(|reply| match r {
            Ok(v) => reply.value(v),
            Err(e) => Err(CallError::from_display(e)),
        });
    }
}

impl<T: ?Sized> Deferred<T> {
    fn answer(&mut self, build: impl FnOnce(&mut Reply) -> Result<(), CallError>) {
        let Some(state) = self.state.take() else {
            return;
        };
        if state.gate.claim(state.id) {
            with_reply(|reply| {
                reply.start_answer(state.kind, self.outbox.queues_completions());
                // The answer's encoding is the library's code: if it panics, the host
                // still gets its one answer (and destroy does not wait for this token).
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(&mut *reply)))
                        .unwrap_or_else(|panic| {
                            Err(CallError::new(format!(
                                "the deferred answer panicked: {}",
                                crate::threads::panics::message(&*panic)
                            )))
                        });
                let (ret, msg) = reply.outcome(result);
                self.outbox.answer_deferred(&state, ret, msg);
                if self.outbox.poison_replies {
                    reply.poison();
                }
            });
        }
        self.outbox.pending.remove(state.id);
    }
}

impl<T: ?Sized> Drop for Deferred<T> {
    fn drop(&mut self) {
        let msg = DROP_REASON
            .with(|r| r.get())
            .unwrap_or(if std::thread::panicking() {
                "handler panicked before answering its deferred reply"
            } else {
                "reply dropped"
            });
        self.answer(|_| Err(CallError::new(msg)));
    }
}

impl<T: ?Sized> std::fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("request_id", &self.state.as_ref().map(|s| s.id))
            .finish()
    }
}

/// Runs `f` with this thread's answer buffer (a fresh one if a callback re-entered).
fn with_reply(f: impl FnOnce(&mut Reply)) {
    REPLY.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => f(slot.get_or_insert_with(|| Reply::new(None))),
        Err(_) => f(&mut Reply::new(None)),
    })
}
