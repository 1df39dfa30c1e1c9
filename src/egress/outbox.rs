//! The one place answers leave: every terminal callback and progress ping, from the
//! worker, a deferred reply's completer, the monitor or destroy, goes through
//! [`Outbox::answer`], which calls the host now or queues it for the host's drain
//! (completion mode). The outbox also keeps the table of outstanding deferred replies,
//! their counters, and the host's diagnostic callback for caught panics.
//!
//! Reply tokens hold the outbox (`Arc<Outbox>`), not the context: a token kept past
//! destroy pins this, not the request ring.

use std::any::Any;
use std::ffi::c_int;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{Callback, DIAG_PANIC, POLL_DIAGNOSTICS, RET_ERR, RET_OK};
use crate::egress::owned::Handover;
use crate::egress::pending::{Pending, TokenState};
use crate::ffi::host::deliver;
use crate::ingress::envelope::{Kind, Recipient};
use crate::sync::counter::SharedCounter;
use crate::threads::{calling_host, panics};
use crate::HostFn;

/// Where a context's answers leave.
pub(crate) struct Outbox {
    /// `Some` in completion mode (see `egress/completion.rs`).
    #[cfg(target_os = "linux")]
    completions: Option<crate::egress::completion::CompletionQueue>,
    /// Outstanding deferred replies.
    pub(crate) pending: Pending,
    /// Terminal callbacks delivered by deferred replies (by their completer or destroy).
    pub(crate) deferred_answered: SharedCounter,
    pub(crate) stale_pings: SharedCounter,
    /// The host's `DIAG_*` callback (`DIAG_PANIC` is reported where the panic was caught).
    diagnostic: Option<HostFn<Callback>>,
    /// `Options::poison_replies`: borrowed answers are overwritten once their callback
    /// has returned (`Reply::poison`).
    pub(crate) poison_replies: bool,
    /// `Options::poll_kinds`: what else the host's poll hands out (events, reports).
    poll_kinds: u32,
}

/// Completion mode's queue, where the platform has it.
#[cfg(target_os = "linux")]
pub(crate) type Completions = Option<crate::egress::completion::CompletionQueue>;
/// Completion mode's queue, where the platform has it (it needs eventfd).
#[cfg(not(target_os = "linux"))]
pub(crate) type Completions = ();

impl Outbox {
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub(crate) fn new(
        completions: Completions,
        diagnostic: Option<HostFn<Callback>>,
        poison_replies: bool,
        poll_kinds: u32,
    ) -> Self {
        Outbox {
            poison_replies,
            poll_kinds,
            #[cfg(target_os = "linux")]
            completions,
            pending: Pending::default(),
            deferred_answered: SharedCounter::default(),
            stale_pings: SharedCounter::default(),
            diagnostic,
        }
    }

    /// Whether answers wait in a completion queue for the host's drain (completion
    /// mode), rather than reaching the callback at once.
    pub(crate) fn queues_completions(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.completions.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Delivers a terminal callback or a progress ping: now, or into the completion
    /// queue. `msg_nul` ends with the NUL terminator.
    #[inline]
    pub(crate) fn answer(&self, to: Recipient, ret: c_int, msg_nul: &[u8]) {
        #[cfg(target_os = "linux")]
        if let Some(q) = &self.completions {
            return q.push(to, ret, msg_nul);
        }
        deliver(to.callback, to.user_data.0, ret, msg_nul);
    }

    /// [`Outbox::answer`] for what a [`Reply`] started for a request of `kind` made. In
    /// completion mode a native `RET_OK` answer is an owned block's handover
    /// (`Reply::start_answer`): the drain gives the callback the block's answer and frees
    /// it after, so that it outlives the reply's later answers.
    ///
    /// [`Reply`]: crate::egress::reply::Reply
    #[inline]
    pub(crate) fn answer_reply(&self, to: Recipient, ret: c_int, msg_nul: &[u8]) {
        #[cfg(target_os = "linux")]
        if let Some(q) = &self.completions {
            // The same test as `Reply::start_answer`'s, with the same outbox.
            let handover = ret == RET_OK && to.kind == Kind::Native;
            debug_assert!(
                !handover || matches!(msg_nul.first(), Some(&(Handover::BLOCK | Handover::FLAT))),
                "a queued native answer that is no handover"
            );
            return q.push_as(to, ret, msg_nul, handover);
        }
        deliver(to.callback, to.user_data.0, ret, msg_nul);
    }

    /// A deferred reply's answer, on whichever thread completes it (marked as inside a
    /// callback meanwhile); the token's gate was claimed. Counted before the callback, as
    /// the worker counts its answers.
    pub(crate) fn answer_deferred(&self, token: &TokenState, ret: c_int, msg_nul: &[u8]) {
        self.deferred_answered.bump();
        calling_host(|| self.answer_reply(token.recipient(), ret, msg_nul));
    }

    /// Destroy: waits up to `timeout` for the outstanding deferred replies, then answers
    /// each one still outstanding `ERR`. Returns when the table is empty.
    pub(crate) fn shut_down_deferred(&self, timeout: Duration) {
        let tokens = self.pending.wait_empty(Instant::now().checked_add(timeout));
        let late: Vec<Arc<TokenState>> = tokens.by_id.values().cloned().collect();
        drop(tokens);
        for token in late {
            if token.gate.claim(token.id) {
                let msg = *b"context destroyed before the deferred reply\0";
                self.answer_deferred(&token, RET_ERR, &msg);
                self.pending.remove(token.id);
            }
        }
        // A completer that won its claim removes its token after its callback returns.
        drop(self.pending.wait_empty(None));
    }

    /// Reports a panic the runtime caught on one of its threads (`DIAG_PANIC`), in
    /// place of the default hook's report on the host's stderr (`threads/panics.rs`).
    pub(crate) fn report_panic(&self, what: &str, panic: &(dyn Any + Send)) {
        if let Some(report) = self.panic_report(what, panic) {
            self.send_panic_report(report);
        }
    }

    /// The `DIAG_PANIC` text for a caught panic (with its NUL), if a host listens; for
    /// [`Outbox::send_panic_report`] once the request's gate is closed.
    pub(crate) fn panic_report(&self, what: &str, panic: &(dyn Any + Send)) -> Option<String> {
        if !self.diagnoses() {
            return None;
        }
        let mut msg = format!("{what} panicked: {}", panics::message(panic));
        if let Some(at) = panics::take_location() {
            msg.push_str(" (at ");
            msg.push_str(&at);
            msg.push(')');
        }
        msg.push('\0');
        Some(msg)
    }

    pub(crate) fn send_panic_report(&self, report: String) {
        self.diagnose(DIAG_PANIC, report.as_bytes());
    }

    /// Whether anyone hears `DIAG_*` reports: the diagnostic callback, or the host's
    /// poll (`POLL_DIAGNOSTICS`).
    pub(crate) fn diagnoses(&self) -> bool {
        self.diagnostic.is_some() || self.polls(POLL_DIAGNOSTICS)
    }

    /// Reports `DIAG_*` `code` (`msg_nul` its text and a NUL): as an entry of the host's
    /// poll, or to the diagnostic callback on this thread, or to nobody.
    pub(crate) fn diagnose(&self, code: c_int, msg_nul: &[u8]) {
        #[cfg(target_os = "linux")]
        if let Some(q) = self
            .completions
            .as_ref()
            .filter(|_| self.polls(POLL_DIAGNOSTICS))
        {
            return q.push_diagnostic(code, msg_nul);
        }
        if let Some(d) = self.diagnostic {
            deliver(d.f, d.user_data, code, msg_nul);
        }
    }

    /// Whether the host's poll hands out `kind` (`POLL_*`).
    pub(crate) fn polls(&self, kind: u32) -> bool {
        self.poll_kinds & kind != 0
    }

    /// `POLL_EVENTS`: queues event `index` (its `{"event", "payload"}` CBOR and a NUL)
    /// for the host's poll, waiting for room if `wait`; false when it was dropped.
    pub(crate) fn queue_event(&self, index: u16, msg_nul: &[u8], wait: bool) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(q) = &self.completions {
            return q.push_event(index, msg_nul, wait);
        }
        let _ = (index, msg_nul, wait);
        false
    }
}

/// Completion mode's host-facing side.
#[cfg(target_os = "linux")]
impl Outbox {
    /// Destroy, first: nothing waits for the host's drain from here on.
    pub(crate) fn unbound(&self) {
        if let Some(q) = &self.completions {
            q.unbound();
        }
    }

    /// Destroy, last: what the host has not drained runs here, on its thread.
    pub(crate) fn drain_all(&self) {
        if let Some(q) = &self.completions {
            q.drain_all();
        }
    }

    /// `<lib>_drain`: `None` when the context is not in completion mode.
    pub(crate) fn drain(&self, max: usize) -> Option<usize> {
        self.completions.as_ref().map(|q| q.drain(max))
    }

    /// `<lib>_completion_fd`: `None` when the context is not in completion mode.
    pub(crate) fn completion_fd(&self) -> Option<std::os::fd::RawFd> {
        self.completions.as_ref().map(|q| q.watched_fd())
    }

    /// `<lib>_poll` (see `CompletionQueue::poll`): `None` when the context is not in
    /// completion mode; `Some(None)` when another thread drains or polls.
    pub(crate) fn poll(
        &self,
        max: usize,
        wait: crate::sync::wake::Wait,
        closing: impl Fn() -> bool,
        emit: impl FnMut(crate::abi::ffid_entry),
    ) -> Option<Option<usize>> {
        let q = self.completions.as_ref()?;
        Some(q.poll(max, wait, closing, emit))
    }

    /// Destroy began: a poller waiting for completions wakes to see it.
    pub(crate) fn wake_poller(&self) {
        if let Some(q) = &self.completions {
            q.wake_poller();
        }
    }
}
