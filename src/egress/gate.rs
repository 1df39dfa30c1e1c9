//! The ping gate: a ping never follows the terminal callback.
//!
//! A request that is running (on the worker, or deferred and not yet answered) owns a
//! [`PingGate`], a word holding `id << 2 | flags`. The monitor thread pings it only
//! while holding the gate; the answering thread claims it before the terminal
//! callback:
//!
//! ```text
//! answering thread                          monitor
//! ----------------                          -------
//! begin: state = id<<2              (A1)
//! ... handler runs ...                      CAS id<<2 -> id<<2|PINGING   (M1)
//!                                           deliver RET_STALE_WARN
//!                                           clear PINGING               (M2)
//! claim: fetch_or(DONE)             (A2)
//!   if PINGING was set: wait for M2
//! deliver the terminal callback
//! ```
//!
//! All of these are read-modify-writes of one word, so they are totally ordered: if M1
//! comes first, A2 sees `PINGING` and waits until the ping has returned; if A2 comes
//! first, M1 fails for good (`DONE` is final for this id). Two claimers (a deferred
//! reply's completer and destroy) race on `fetch_or`: exactly one sees `DONE` unset and
//! answers; the other returns at once, so at most one thread ever waits. `loom_models`
//! at the bottom checks these claims.
//!
//! The gate's id is also the worker's started-watermark, which cancellation uses: `id`
//! only grows (see `worker::board::Cancels` for how a canceller and the worker agree).
//!

use crate::sync::{AtomicU64, Ordering};

const PINGING: u64 = 1;
const DONE: u64 = 2;

/// The word that orders pings before a request's terminal callback.
pub(crate) struct PingGate(AtomicU64);

impl PingGate {
    pub(crate) fn new() -> Self {
        PingGate(AtomicU64::new(DONE))
    }

    /// Marks request `id` (non-zero, larger than any earlier id) running.
    #[inline]
    pub(crate) fn begin(&self, id: u64) {
        // Release: publishes what the worker stored about the request (`Running`) to a
        // monitor that acquires the gate.
        self.0.store(id << 2, Ordering::Release);
    }

    /// Takes the right to answer request `id`: true exactly once per id. The winner
    /// waits while a ping is being delivered; a loser returns at once.
    #[inline]
    #[must_use]
    pub(crate) fn claim(&self, id: u64) -> bool {
        let before = self.0.fetch_or(DONE, Ordering::SeqCst);
        debug_assert_eq!(before >> 2, id, "claimed the gate of another request");
        if before & DONE != 0 {
            return false;
        }
        // SeqCst loads read the newest value (loom relies on that to see the ping end).
        while before & PINGING != 0 && self.0.load(Ordering::SeqCst) & PINGING != 0 {
            crate::sync::yield_now();
        }
        true
    }

    /// Holds off the claim while a ping for `id` is delivered; false if `id` is no
    /// longer running (or another ping is in progress).
    #[must_use]
    pub(crate) fn try_ping(&self, id: u64) -> bool {
        let running = id << 2;
        self.0
            .compare_exchange(
                running,
                running | PINGING,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Ends the ping that `try_ping(id)` started (keeping a claim made meanwhile).
    pub(crate) fn end_ping(&self, id: u64) {
        let before = self.0.fetch_and(!PINGING, Ordering::SeqCst);
        debug_assert_eq!(before >> 2, id);
    }

    /// The running request's id, if one is running.
    pub(crate) fn running(&self) -> Option<u64> {
        let s = self.0.load(Ordering::Acquire);
        (s & DONE == 0 && s >> 2 != 0).then_some(s >> 2)
    }

    /// The largest id begun so far (0: none).
    pub(crate) fn started(&self) -> u64 {
        self.0.load(Ordering::Acquire) >> 2
    }
}

/// The ping gate's claims, model-checked with loom (`scripts/loom.sh`).
#[cfg(all(test, loom))]
mod loom_models {
    use super::PingGate;
    use crate::sync::{AtomicU64, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    /// What the host saw: pings and terminal callbacks in order.
    struct Host {
        terminal: AtomicU64,
        ping_after_terminal: AtomicU64,
    }

    impl Host {
        fn new() -> Self {
            Host {
                terminal: AtomicU64::new(0),
                ping_after_terminal: AtomicU64::new(0),
            }
        }
        fn ping(&self) {
            if self.terminal.load(Ordering::SeqCst) != 0 {
                self.ping_after_terminal.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn answer(&self) {
            self.terminal.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn monitor(gate: &PingGate, host: &Host, id: u64) {
        if gate.try_ping(id) {
            host.ping();
            gate.end_ping(id);
        }
    }

    /// A request on the worker: the monitor pings twice while the worker answers.
    #[test]
    fn a_ping_never_follows_the_worker_answer() {
        crate::sync::model("stale ping vs worker answer", || {
            let gate = Arc::new(PingGate::new());
            let host = Arc::new(Host::new());
            gate.begin(1);
            let pinger = {
                let (gate, host) = (gate.clone(), host.clone());
                thread::spawn(move || {
                    monitor(&gate, &host, 1);
                    monitor(&gate, &host, 1);
                })
            };
            assert!(gate.claim(1));
            host.answer();
            // The worker moves on to request 2: the monitor's late attempts on 1 fail.
            gate.begin(2);
            pinger.join().unwrap();
            assert_eq!(host.terminal.load(Ordering::SeqCst), 1);
            assert_eq!(host.ping_after_terminal.load(Ordering::SeqCst), 0);
            assert_eq!(gate.running(), Some(2));
        });
    }

    /// A deferred reply: its completer, destroy's fail-over and the monitor race; one
    /// terminal callback, no ping after it.
    #[test]
    fn a_deferred_reply_is_answered_once_and_never_pinged_after() {
        crate::sync::model("deferred reply: completer vs destroy vs ping", || {
            let gate = Arc::new(PingGate::new());
            let host = Arc::new(Host::new());
            gate.begin(7);
            let answer = |gate: &PingGate, host: &Host| {
                if gate.claim(7) {
                    host.answer();
                }
            };
            let completer = {
                let (gate, host) = (gate.clone(), host.clone());
                thread::spawn(move || answer(&gate, &host))
            };
            let pinger = {
                let (gate, host) = (gate.clone(), host.clone());
                thread::spawn(move || monitor(&gate, &host, 7))
            };
            answer(&gate, &host); // destroy failing it
            completer.join().unwrap();
            pinger.join().unwrap();
            assert_eq!(host.terminal.load(Ordering::SeqCst), 1, "exactly once");
            assert_eq!(host.ping_after_terminal.load(Ordering::SeqCst), 0);
            assert_eq!(gate.running(), None);
        });
    }
}
