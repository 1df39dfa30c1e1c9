//! Context lifecycle: create, submit, cancel, destroy, stats.
//!
//! A context is a [`Context`] (its intake, the worker's board, the outbox and the event
//! hub; not generic) shared by the registry, the host threads that call into it and its
//! threads: the worker, which alone holds the library value, the event thread, and the
//! monitor (pings and diagnostics; only when configured). Destroy is synchronous and
//! ordered so that every accepted request is answered exactly once:
//!
//! 1. mark the registry slot closing: new calls (and a second destroy) are refused;
//! 2. set `closed` and wake producers blocked on a full ring: they give up, refused;
//! 3. wait until no call is inside the context (its registry users reach 0): from now
//!    on nobody can push;
//! 4. in completion mode, lift the completion queue's bound (nothing waits for the
//!    host's drain from here on); set `stop` and wake the worker, which drains the
//!    ring, answering each request, runs teardown and exits; join it;
//! 5. wait up to `shutdown_timeout` for deferred replies, then answer the rest `ERR`;
//! 6. close the event ring, let the event thread deliver what is queued, join it, and
//!    forget the listeners; stop and join the monitor; in completion mode, run what the
//!    host left undrained, on destroy's thread;
//! 7. free the slot: the handle is stale from here on.

mod host_calls;
mod inline;
mod last_error;
#[cfg(all(test, loom))]
mod loom_models;
pub(crate) mod monitor;
pub(crate) mod registry;
mod static_context;
pub(crate) mod stats;
mod sync_call;
mod typed_call;
mod unload;

#[cfg(target_os = "linux")]
pub use host_calls::wake_fd;
pub use host_calls::{
    add_listener, cancel, completion_fd, create, destroy, drain, poll, poll_fd, remove_listener,
    stats, stats_into, submit, submit_cbor,
};
pub use inline::call_inline;
pub(crate) use inline::release as release_inline;
pub use last_error::last_error;
pub(crate) use last_error::set_last_error;
pub use static_context::{static_context, StaticContext};
pub use sync_call::call_sync;
pub(crate) use sync_call::release as release_sync;
pub(crate) use typed_call::release as release_typed;
pub use typed_call::{add_typed_listener, call_typed};

use std::any::TypeId;
use std::cell::Cell;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::egress::outbox::{Completions, Outbox};
use crate::events::EventHub;
use crate::ffi::host::ThreadHooks;
use crate::ingress::intake::{InboxClaim, Intake};
use crate::library::Library;
use crate::options::{Options, RingKind, WakeKind};
use crate::sync::ring::{ArrayRing, Ingress, TagRing};
use crate::sync::wake::{SpaceWait, WakeBackend, WorkerWake};
use crate::threads::ThreadRole;
use crate::worker::board::Board;
use crate::worker::idle::IdleTuner;
use crate::worker::tasks::Requeue;
use crate::worker::Ports;

/// A context: its parts, each with its owner, and its threads. The registry holds it
/// (`Arc<Context>`); host calls borrow it through the registry, its threads own a clone.
///
/// | part | written by | read by |
/// |---|---|---|
/// | `intake` | host calls (push), task wakers, destroy (close, stop) | the worker, through its one `Inbox`; `cancel` and `stats` (ids, length) |
/// | `board` | the worker; `cancel` (its cancel table) | the monitor, `cancel`, `stats` |
/// | `outbox` | every answerer: worker, reply tokens, monitor, destroy | the host's drain (completion mode) |
/// | `events` | handlers (emit), listener exports | the event thread |
/// | the rest | create (once) | destroy, the spawn helper |
pub(crate) struct Context {
    pub(crate) intake: Intake,
    pub(crate) board: Board,
    /// Shared with reply tokens, which keep only this part alive.
    pub(crate) outbox: Arc<Outbox>,
    /// Shared with the sinks, which keep only this part alive.
    pub(crate) events: Arc<EventHub>,
    library: TypeId,
    method_names: fn(u16) -> &'static str,
    /// The worker's idle policy, as the options set it (the worker's copy learns).
    idle: IdleTuner,
    shutdown_timeout: Duration,
    hooks: Option<ThreadHooks>,
    monitor_stop: Mutex<bool>,
    monitor_wake: Condvar,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// The event thread and the monitor.
    helpers: Mutex<Vec<JoinHandle<()>>>,
}

thread_local! {
    /// The id of the last call this thread had accepted (`<lib>_last_request_id`).
    static LAST_REQUEST_ID: Cell<u64> = const { Cell::new(0) };
}

/// The id of the last call this thread had accepted (0 if none, or if the context uses
/// the `ArrayQueue` ring, which gives no ids).
pub fn last_request_id() -> u64 {
    LAST_REQUEST_ID.with(|c| c.get())
}

/// A woken async task waits its turn in the context's ring.
impl Requeue for Context {
    fn requeue(&self, key: u64) {
        self.intake.push_task_wake(key);
    }
}

impl Context {
    /// The worker's ports, from the claim on the intake's consumer side.
    fn worker_ports(self: &Arc<Self>, claim: InboxClaim) -> Ports<'_> {
        Ports {
            inbox: self.intake.inbox(claim),
            board: &self.board,
            outbox: &self.outbox,
            events: &self.events,
            tasks_home: self.clone(),
            idle: self.idle.clone(),
            shutdown_timeout: self.shutdown_timeout,
        }
    }

    pub(crate) fn method_name(&self, method: u16) -> &'static str {
        (self.method_names)(method)
    }

    /// The monitor's sleep between ticks: false once destroy asked it to stop.
    pub(crate) fn monitor_sleep(&self, tick: Duration) -> bool {
        let mut stop = crate::sync::lock(&self.monitor_stop);
        if !*stop {
            stop = crate::sync::wait_timeout(&self.monitor_wake, stop, tick);
        }
        !*stop
    }

    /// Starts one of the context's threads (see `threads::spawn`): a panic that
    /// escapes its body is reported as `DIAG_PANIC`.
    fn spawn(
        self: &Arc<Self>,
        role: ThreadRole,
        name: String,
        body: impl FnOnce(Arc<Context>) + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        let (core, reporter) = (self.clone(), self.outbox.clone());
        crate::threads::spawn(
            role,
            name,
            self.hooks,
            move || body(core),
            move |what, panic| reporter.report_panic(what, panic),
        )
    }
}

fn join(thread: Option<JoinHandle<()>>) {
    // Every panic on a context thread is caught there (`threads::spawn`), so a join
    // does not fail; the context is gone either way.
    if let Some(t) = thread {
        let _ = t.join();
    }
}

fn method_name<L: Library>(method: u16) -> &'static str {
    L::METHODS.get(method as usize).map_or("?", |m| m.name)
}

impl Context {
    /// The parts of a new context, or `None` when a descriptor or the rings' memory
    /// cannot be had.
    fn new<L: Library>(options: &Options) -> Option<Context> {
        let backend = match options.wake {
            WakeKind::Futex => WakeBackend::Futex,
            WakeKind::EventFd => WakeBackend::eventfd().ok()?,
        };
        let space = Arc::new(SpaceWait::new());
        let ring = match options.ring {
            RingKind::Tagged => Ingress::Tag(TagRing::try_new(options.ring_capacity)?),
            RingKind::ArrayQueue => Ingress::Array(ArrayRing::try_new(options.ring_capacity)?),
        };
        let outbox = Arc::new(Outbox::new(
            completions(options, space.clone())?,
            options.diagnostic,
            options.poison_replies,
            options.poll_kinds,
        ));
        let events_to_poll = options
            .polls(crate::abi::POLL_EVENTS)
            .then(|| outbox.clone());
        Some(Context {
            intake: Intake::new(ring, WorkerWake::new(backend), space, options.backpressure),
            board: Board::default(),
            outbox,
            events: Arc::new(EventHub::new::<L>(
                options.event_ring_capacity,
                options.event_policy,
                options.spin,
                events_to_poll,
            )?),
            library: TypeId::of::<L>(),
            method_names: method_name::<L>,
            idle: IdleTuner::new(
                options.idle_policy,
                options.spin,
                options.balanced_spin_cap(),
                options.wake == WakeKind::Futex,
            ),
            shutdown_timeout: options.shutdown_timeout,
            hooks: options.thread_hooks,
            monitor_stop: Mutex::new(false),
            monitor_wake: Condvar::new(),
            worker: Mutex::new(None),
            helpers: Mutex::new(Vec::new()),
        })
    }
}

/// Completion mode's queue, if the options ask for it (`None`: it cannot be had).
#[cfg(target_os = "linux")]
fn completions(options: &Options, space: Arc<SpaceWait>) -> Option<Completions> {
    match options.completion {
        crate::CompletionMode::Callback => Some(None),
        crate::CompletionMode::Queue => {
            let capacity = options.ring_capacity.saturating_mul(2).max(1024);
            let queue = crate::egress::completion::CompletionQueue::new(capacity, space);
            Some(Some(queue.ok()?))
        }
    }
}

/// Completion mode needs eventfd: refused here.
#[cfg(not(target_os = "linux"))]
fn completions(options: &Options, _: Arc<SpaceWait>) -> Option<Completions> {
    (options.completion == crate::CompletionMode::Callback).then_some(())
}

/// Stops a context's threads and answers everything still owed (destroy steps 4-6).
fn shut_down(core: &Context) {
    // Completion mode: from here on nothing waits for the host to drain (the worker,
    // deferred completers and the monitor may all be waiting for it now); what does
    // not fit queues beside the ring and runs at the end, on this thread.
    #[cfg(target_os = "linux")]
    core.outbox.unbound();
    core.intake.stop();
    join(crate::sync::lock(&core.worker).take());
    core.outbox.shut_down_deferred(core.shutdown_timeout);
    core.events.close();
    *crate::sync::lock(&core.monitor_stop) = true;
    core.monitor_wake.notify_all();
    let helpers = std::mem::take(&mut *crate::sync::lock(&core.helpers));
    for t in helpers {
        join(Some(t));
    }
    core.events.clear();
    // Completion mode: what the host has not drained runs here, on its thread.
    #[cfg(target_os = "linux")]
    core.outbox.drain_all();
}
