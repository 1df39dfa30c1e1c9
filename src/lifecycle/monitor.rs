//! Progress pings and liveness: the context's monitor thread (pings go through each
//! request's `egress::gate::PingGate`).
//!
//! # Monitor thread
//!
//! Off every hot path: it wakes every `tick` (a fraction of the shortest configured
//! interval), reads the worker's gate, the deferred replies and the event thread's
//! current call, and sends pings and diagnostics. Time is measured here, not by the
//! worker: a request is timed from the first tick that saw it running, so the reported
//! elapsed time is low by less than one tick, and the worker reads no clock per request.

use std::ffi::c_int;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{DIAG_LISTENER_STUCK, DIAG_NOT_RESPONDING, DIAG_RESPONDING, RET_STALE_WARN};
use crate::egress::gate::PingGate;
use crate::envelope::Recipient;
use crate::lifecycle::Context;

/// Sends one progress ping (the elapsed milliseconds as decimal text) to request `id`
/// if its gate still lets it: not answered, not being answered. `target` is read while
/// the gate is held, so it is still this request's. Returns whether it pinged.
fn ping(
    core: &Context,
    gate: &PingGate,
    id: u64,
    target: impl FnOnce() -> Recipient,
    elapsed: Duration,
) -> bool {
    if !gate.try_ping(id) {
        return false;
    }
    let to = target();
    let mut text = [0u8; 24];
    let mut w = &mut text[..];
    let _ = write!(w, "{}\0", elapsed.as_millis());
    let len = 24 - w.len();
    core.outbox.answer(to, RET_STALE_WARN, &text[..len]);
    gate.end_ping(id);
    core.outbox.stale_pings.bump();
    true
}

/// What the monitor watches for, from the context's options.
#[derive(Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) stale_ping: Option<Duration>,
    pub(crate) not_responding: Option<Duration>,
    pub(crate) listener_stuck: Option<Duration>,
    /// Someone hears `DIAG_*` reports: a diagnostic callback, or the host's poll.
    pub(crate) diagnoses: bool,
}

impl Settings {
    /// How often the monitor looks: an eighth of the shortest interval it serves, from
    /// 1 ms to 250 ms. `None` when it has nothing to do (no thread is started).
    pub(crate) fn tick(&self) -> Option<Duration> {
        let diag = |d: Option<Duration>| d.filter(|_| self.diagnoses);
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
}

/// Reports `DIAG_*` `code` to whoever hears them (see `Outbox::diagnose`).
fn report(core: &Context, code: c_int, text: &str) {
    let mut msg = Vec::with_capacity(text.len() + 1);
    msg.extend_from_slice(text.as_bytes());
    msg.push(0);
    core.outbox.diagnose(code, &msg);
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
pub(crate) fn run(core: Arc<Context>, settings: Settings, tick: Duration) {
    let interval = settings.stale_ping.unwrap_or(Duration::MAX);
    let mut worker = Watch::default();
    let mut worker_responding = true;
    let mut listener = Watch::default();
    while core.monitor_sleep(tick) {
        let now = Instant::now();

        // The worker's current request: pings and liveness.
        match core.board.running.gate.running() {
            Some(id) => {
                let (elapsed, new) = worker.observe(id, now, interval);
                if new && !worker_responding {
                    worker_responding = true;
                    report(&core, DIAG_RESPONDING, "worker is responding again");
                }
                if settings.stale_ping.is_some()
                    && elapsed >= worker.next_ping
                    && ping(
                        &core,
                        &core.board.running.gate,
                        id,
                        || core.board.running.target(id),
                        elapsed,
                    )
                {
                    worker.next_ping = elapsed + interval;
                }
                if let Some(limit) = settings.not_responding {
                    if worker_responding && elapsed >= limit {
                        worker_responding = false;
                        let method = core.method_name(core.board.running.method());
                        report(
                            &core,
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
                    report(&core, DIAG_RESPONDING, "worker is responding again");
                }
            }
        }

        // Deferred replies not answered yet.
        if settings.stale_ping.is_some() {
            for (token, elapsed) in core.outbox.pending.due(now, interval) {
                let target = || token.recipient();
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
                        report(
                            &core,
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
