//! Deferred replies: a handler takes its request's reply token and answers later, from
//! any thread, while the worker moves on.
//!
//! A token owns the request's terminal callback. It answers through [`PingGate::claim`],
//! which succeeds once per request, so exactly-once holds however the token ends:
//! `complete`/`fail`, dropped unanswered (`ERR "reply dropped"`), or failed by destroy
//! after the context's `shutdown_timeout`. Outstanding tokens are listed in the
//! context's [`Pending`] table, which the monitor walks for progress pings and destroy
//! waits on.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt::Display;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::abi::{Callback, RET_ERR};
use crate::egress::gate::PingGate;
use crate::envelope::Kind;
use crate::lifecycle::Core;
use crate::reply::{Answer, Reply};
use crate::sync::lock;
use crate::threads::calling_host;
use crate::CallError;

/// One outstanding deferred reply.
pub(crate) struct TokenState {
    /// The request's id.
    pub(crate) id: u64,
    pub(crate) gate: PingGate,
    pub(crate) callback: Callback,
    pub(crate) user_data: *mut c_void,
    kind: Kind,
    created: Instant,
    /// When the monitor pings next, in ms since `created` (the monitor's alone).
    next_ping_ms: AtomicU64,
}

// SAFETY: `user_data` is the host's opaque token; the header's contract lets the runtime
// hand it back to the callback on any thread that answers the request.
unsafe impl Send for TokenState {}
// SAFETY: as above; the other fields are atomics or immutable.
unsafe impl Sync for TokenState {}

/// The table of a context's outstanding deferred replies.
#[derive(Default)]
pub(crate) struct Pending {
    tokens: Mutex<Tokens>,
    /// Signalled when the table becomes empty while destroy waits on it.
    emptied: Condvar,
}

#[derive(Default)]
struct Tokens {
    by_id: HashMap<u64, Arc<TokenState>>,
    /// Destroy waits for the table to empty: only then is `emptied` signalled (a
    /// notify is a syscall even with nobody waiting).
    awaited: bool,
}

impl Pending {
    fn insert(&self, token: Arc<TokenState>) {
        lock(&self.tokens).by_id.insert(token.id, token);
    }

    fn remove(&self, id: u64) {
        let mut tokens = lock(&self.tokens);
        tokens.by_id.remove(&id);
        if tokens.by_id.is_empty() && tokens.awaited {
            self.emptied.notify_all();
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.tokens).by_id.len()
    }

    /// Destroy: waits until the table is empty or `deadline` passes, with the lock held
    /// on return.
    fn wait_empty(&self, deadline: Option<Instant>) -> std::sync::MutexGuard<'_, Tokens> {
        let mut tokens = lock(&self.tokens);
        tokens.awaited = true;
        while !tokens.by_id.is_empty() {
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => left,
                    None => break,
                },
                None => Duration::from_secs(3600),
            };
            tokens = crate::sync::wait_timeout(&self.emptied, tokens, wait);
        }
        tokens
    }

    /// The tokens whose next progress ping is due, with their age.
    pub(crate) fn due(&self, now: Instant, interval: Duration) -> Vec<(Arc<TokenState>, Duration)> {
        let tokens = lock(&self.tokens);
        if tokens.by_id.is_empty() {
            return Vec::new();
        }
        let interval_ms = interval.as_millis().max(1) as u64;
        tokens
            .by_id
            .values()
            .filter_map(|t| {
                let age = now.saturating_duration_since(t.created);
                let next = t.next_ping_ms.load(Ordering::Relaxed);
                let next = if next == 0 { interval_ms } else { next };
                if (age.as_millis() as u64) < next {
                    return None;
                }
                t.next_ping_ms.store(next + interval_ms, Ordering::Relaxed);
                Some((t.clone(), age))
            })
            .collect()
    }

    /// Destroy: waits up to `timeout` for the outstanding replies, then answers each
    /// one still outstanding `ERR`. Returns when the table is empty.
    pub(crate) fn shut_down(&self, core: &Core, timeout: Duration) {
        let tokens = self.wait_empty(Instant::now().checked_add(timeout));
        let late: Vec<Arc<TokenState>> = tokens.by_id.values().cloned().collect();
        drop(tokens);
        for token in late {
            if token.gate.claim(token.id) {
                let msg = *b"context destroyed before the deferred reply\0";
                calling_host(|| core.answer(token.callback, token.user_data, RET_ERR, &msg));
                core.counters.deferred_answered.bump();
                self.remove(token.id);
            }
        }
        // A completer that won its claim removes its token after its callback returns.
        drop(self.wait_empty(None));
    }
}

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
/// type is `T`), or with [`Reply::defer`] in a hand-written handler.
#[must_use = "dropping a reply token answers ERR \"reply dropped\""]
pub struct Deferred<T: ?Sized> {
    state: Option<Arc<TokenState>>,
    core: Arc<Core>,
    _answer: PhantomData<fn(&T)>,
}

impl<T: Answer + ?Sized> Deferred<T> {
    pub(crate) fn new(
        core: Arc<Core>,
        id: u64,
        callback: Callback,
        user_data: *mut c_void,
        kind: Kind,
    ) -> Self {
        let state = Arc::new(TokenState {
            id,
            gate: PingGate::new(),
            callback,
            user_data,
            kind,
            created: Instant::now(),
            next_ping_ms: AtomicU64::new(0),
        });
        state.gate.begin(id);
        core.deferred.insert(state.clone());
        Deferred {
            state: Some(state),
            core,
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
                reply.start(state.kind);
                // The answer's encoding is the library's code: if it panics, the host
                // still gets its one answer (and destroy does not wait for this token).
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(&mut *reply)))
                        .unwrap_or_else(|panic| {
                            Err(CallError::new(format!(
                                "the deferred answer panicked: {}",
                                crate::lifecycle::panics::message(&*panic)
                            )))
                        });
                let (ret, msg) = reply.outcome(result);
                // Any thread may answer: mark it as inside a callback meanwhile.
                calling_host(|| self.core.answer(state.callback, state.user_data, ret, msg));
            });
            self.core.counters.deferred_answered.bump();
        }
        self.core.deferred.remove(state.id);
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
