//! Progress pings and liveness: the ping gate and the context's monitor thread.
//!
//! # Ping gate: a ping never follows the terminal callback
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
//! only grows (see `context::Cancels` for how a canceller and the worker agree).
//!
//! # Monitor thread
//!
//! Off every hot path: it wakes every `tick` (a fraction of the shortest configured
//! interval), reads the worker's gate, the deferred replies and the event thread's
//! current call, and sends pings and diagnostics. Time is measured here, not by the
//! worker: a request is timed from the first tick that saw it running, so the reported
//! elapsed time is low by less than one tick, and the worker reads no clock per request.

use std::ffi::{c_int, c_void};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{
    Callback, DIAG_LISTENER_STUCK, DIAG_NOT_RESPONDING, DIAG_RESPONDING, RET_STALE_WARN,
};
use crate::lifecycle::Core;
use crate::sync::{AtomicU64, Ordering};
use crate::HostFn;

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

/// Sends one progress ping (the elapsed milliseconds as decimal text) to request `id`
/// if its gate still lets it: not answered, not being answered. `target` is read while
/// the gate is held, so it is still this request's. Returns whether it pinged.
fn ping(
    core: &Core,
    gate: &PingGate,
    id: u64,
    target: impl FnOnce() -> (Callback, *mut c_void),
    elapsed: Duration,
) -> bool {
    if !gate.try_ping(id) {
        return false;
    }
    let (callback, user_data) = target();
    let mut text = [0u8; 24];
    let mut w = &mut text[..];
    let _ = write!(w, "{}\0", elapsed.as_millis());
    let len = 24 - w.len();
    core.answer(callback, user_data, RET_STALE_WARN, &text[..len]);
    gate.end_ping(id);
    core.counters.stale_pings.bump();
    true
}

/// What the monitor watches for, from the context's options.
#[derive(Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) stale_ping: Option<Duration>,
    pub(crate) not_responding: Option<Duration>,
    pub(crate) listener_stuck: Option<Duration>,
    pub(crate) diagnostic: Option<HostFn<Callback>>,
}

impl Settings {
    /// How often the monitor looks: an eighth of the shortest interval it serves, from
    /// 1 ms to 250 ms. `None` when it has nothing to do (no thread is started).
    pub(crate) fn tick(&self) -> Option<Duration> {
        let diag = |d: Option<Duration>| d.filter(|_| self.diagnostic.is_some());
        [
            self.stale_ping,
            diag(self.not_responding),
            diag(self.listener_stuck),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|d| (d / 8).clamp(Duration::from_millis(1), Duration::from_millis(250)))
    }

    fn report(&self, code: c_int, text: &str) {
        if let Some(d) = self.diagnostic {
            let mut msg = Vec::with_capacity(text.len() + 1);
            msg.extend_from_slice(text.as_bytes());
            msg.push(0);
            crate::reply::deliver(d.f, d.user_data, code, &msg);
        }
    }
}

/// The monitor's view of one thing that may run long: which id it saw and since when.
#[derive(Default)]
struct Watch {
    id: u64,
    since: Option<Instant>,
    next_ping: Duration,
    reported: bool,
}

impl Watch {
    /// Records that `id` is current at `now`; returns how long it has been, and whether
    /// it is new (the previous one ended).
    fn observe(&mut self, id: u64, now: Instant, first_ping: Duration) -> (Duration, bool) {
        if id != self.id || self.since.is_none() {
            *self = Watch {
                id,
                since: Some(now),
                next_ping: first_ping,
                reported: false,
            };
            return (Duration::ZERO, true);
        }
        (now - self.since.unwrap_or(now), false)
    }
}

/// The monitor thread's body: runs until destroy sets `core.monitor_stop`.
pub(crate) fn run(core: Arc<Core>, settings: Settings, tick: Duration) {
    let interval = settings.stale_ping.unwrap_or(Duration::MAX);
    let mut worker = Watch::default();
    let mut worker_responding = true;
    let mut listener = Watch::default();
    while core.monitor_sleep(tick) {
        let now = Instant::now();

        // The worker's current request: pings and liveness.
        match core.running.gate.running() {
            Some(id) => {
                let (elapsed, new) = worker.observe(id, now, interval);
                if new && !worker_responding {
                    worker_responding = true;
                    settings.report(DIAG_RESPONDING, "worker is responding again");
                }
                if settings.stale_ping.is_some()
                    && elapsed >= worker.next_ping
                    && ping(
                        &core,
                        &core.running.gate,
                        id,
                        || core.running.target(),
                        elapsed,
                    )
                {
                    worker.next_ping = elapsed + interval;
                }
                if let Some(limit) = settings.not_responding {
                    if worker_responding && elapsed >= limit {
                        worker_responding = false;
                        let method = core.method_name(core.running.method());
                        settings.report(
                            DIAG_NOT_RESPONDING,
                            &format!(
                                "worker has been inside `{method}` for {} ms",
                                elapsed.as_millis()
                            ),
                        );
                    }
                }
            }
            None => {
                worker = Watch::default();
                if !worker_responding {
                    worker_responding = true;
                    settings.report(DIAG_RESPONDING, "worker is responding again");
                }
            }
        }

        // Deferred replies not answered yet.
        if settings.stale_ping.is_some() {
            for (token, elapsed) in core.deferred.due(now, interval) {
                let target = || (token.callback, token.user_data);
                ping(&core, &token.gate, token.id, target, elapsed);
            }
        }

        // The event thread's current listener call.
        if let Some(limit) = settings.listener_stuck {
            match core.events.current_call() {
                Some((call, listener_id)) => {
                    let (elapsed, _) = listener.observe(call, now, Duration::MAX);
                    if !listener.reported && elapsed >= limit {
                        listener.reported = true;
                        settings.report(
                            DIAG_LISTENER_STUCK,
                            &format!(
                                "listener {listener_id} has been running for {} ms",
                                elapsed.as_millis()
                            ),
                        );
                    }
                }
                None => listener = Watch::default(),
            }
        }
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
