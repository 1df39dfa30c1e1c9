//! Context lifecycle: create, submit, cancel, destroy, stats.
//!
//! A context is a [`Core`] (ring, wake words, flags, counters, event hub; not generic)
//! shared by the registry, the host threads that call into it and its threads: the
//! worker, which alone holds the library value, the event thread, and the monitor
//! (pings and diagnostics; only when configured). Destroy is synchronous and ordered so
//! that every accepted request is answered exactly once:
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

pub(crate) mod board;
mod host_calls;
#[cfg(all(test, loom))]
mod loom_models;
pub(crate) mod monitor;
pub(crate) mod panics;
pub(crate) mod registry;
mod static_context;
pub(crate) mod stats;
mod unload;

pub(crate) use board::{Cancels, Running};
#[cfg(target_os = "linux")]
pub use host_calls::wake_fd;
pub use host_calls::{
    add_listener, cancel, completion_fd, create, destroy, drain, remove_listener, stats,
    stats_into, submit, submit_cbor,
};
pub use static_context::{static_context, StaticContext};

use std::any::TypeId;
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::abi::{Callback, Refusal};
use crate::egress::deferred::Pending;
use crate::envelope::Envelope;
use crate::events::EventHub;
use crate::lifecycle::stats::{Counters, Stats};
use crate::sync::ring::{ArrayRing, Ingress, Ring, TagRing};
use crate::sync::wake::{SpaceWait, WakeBackend, WorkerWake};
use crate::sync::{AtomicBool, Ordering};
use crate::threads::{must_not_block, ThreadRole};
use crate::{BackPressure, Library, Options, RingKind, ThreadHooks, WakeKind};

/// The shared, library-independent part of a context.
pub(crate) struct Core {
    pub(crate) ring: Ingress<Envelope>,
    pub(crate) wake: WorkerWake,
    pub(crate) space: SpaceWait,
    /// Intake stopped: blocked producers give up (destroy step 2).
    closed: AtomicBool,
    /// The worker exits once the ring is empty (destroy step 4).
    pub(crate) stop: AtomicBool,
    library: TypeId,
    method_names: fn(u16) -> &'static str,
    policy: BackPressure,
    pub(crate) spin: Duration,
    pub(crate) running: CachePadded<Running>,
    pub(crate) counters: Counters,
    pub(crate) cancels: Cancels,
    pub(crate) deferred: Pending,
    /// Shared with the sinks, which keep only this part alive.
    pub(crate) events: Arc<EventHub>,
    /// `Some` in completion mode (see `egress/completion.rs`).
    #[cfg(target_os = "linux")]
    completions: Option<crate::egress::completion::CompletionQueue>,
    hooks: Option<ThreadHooks>,
    /// The host's `DIAG_*` callback (`DIAG_PANIC` is reported where the panic was caught).
    diagnostic: Option<crate::HostFn<Callback>>,
    pub(crate) shutdown_timeout: Duration,
    /// Task wakes that found the ring full (rare), and the flag the worker checks.
    overflow: crossbeam_queue::SegQueue<u64>,
    pub(crate) overflowed: AtomicBool,
    monitor_stop: Mutex<bool>,
    monitor_wake: std::sync::Condvar,
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

impl Core {
    /// Delivers a terminal callback or a progress ping: now, or into the completion ring.
    /// `msg_nul` ends with the NUL terminator.
    #[inline]
    pub(crate) fn answer(
        &self,
        callback: Callback,
        user_data: *mut c_void,
        ret: c_int,
        msg_nul: &[u8],
    ) {
        #[cfg(target_os = "linux")]
        if let Some(q) = &self.completions {
            return q.push(callback, user_data, ret, msg_nul, || self.space_freed());
        }
        crate::reply::deliver(callback, user_data, ret, msg_nul);
    }

    /// Queues async task `key` to be polled: a marker through the ring, so that tasks
    /// and requests take turns in ring order. Never blocks (a waker may run anywhere):
    /// a full ring puts the key on the overflow queue.
    pub(crate) fn wake_task(&self, key: u64) {
        unsafe extern "C" fn unused(
            _: c_int,
            _: *const std::ffi::c_char,
            _: usize,
            _: *mut c_void,
        ) {
        }
        let marker = Envelope {
            callback: unused,
            user_data: key as usize as *mut c_void,
            method: crate::worker::tasks::TASK_WAKE,
            kind: crate::envelope::Kind::Native,
            payload: crate::envelope::Payload::copy_from(&[]),
        };
        if self.ring.push(marker).is_err() {
            self.overflow.push(key);
            self.overflowed.store(true, Ordering::Release);
        }
        self.wake.notify();
    }

    /// The worker: task keys woken while the ring was full.
    pub(crate) fn take_overflow(&self) -> impl Iterator<Item = u64> + '_ {
        let any = self.overflowed.load(Ordering::Relaxed)
            && self.overflowed.swap(false, Ordering::AcqRel);
        std::iter::from_fn(move || if any { self.overflow.pop() } else { None })
    }

    /// Pushes an envelope, applying the back-pressure policy; wakes the worker if parked.
    /// Returns the request's id.
    #[inline]
    fn push(&self, env: Envelope) -> Result<u64, Refusal> {
        match self.ring.push(env) {
            Ok(id) => {
                self.wake.notify();
                Ok(id)
            }
            Err(env) => self.push_full(env),
        }
    }

    /// The ring was full. Kept out of line so that the hot path carries none of it
    /// (thread-local lookup, backoff, parking).
    #[cold]
    #[inline(never)]
    fn push_full(&self, mut env: Envelope) -> Result<u64, Refusal> {
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            // A caller in completion mode must not wait for ring space while the
            // completion queue is full: the worker waits for a drain, which may be this
            // very thread's next step (a single-threaded event loop).
            if self.policy == BackPressure::Reject || must_not_block() || self.answers_stalled() {
                return Err(Refusal::Busy);
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(Refusal::Err);
            }
            if backoff.is_completed() {
                self.space.wait(|| {
                    self.ring.is_full()
                        && !self.closed.load(Ordering::Relaxed)
                        && !self.answers_stalled()
                });
            } else {
                backoff.snooze();
            }
            match self.ring.push(env) {
                Ok(id) => {
                    self.wake.notify();
                    return Ok(id);
                }
                Err(back) => env = back,
            }
        }
    }

    /// Wakes producers blocked on a full ring: the worker calls it after popping a batch.
    pub(crate) fn space_freed(&self) {
        self.space.notify();
    }

    /// Completion mode: some answer is waiting for room in the completion queue, which
    /// only the host's drain frees (the protocol with a blocked caller is at
    /// `completion::Stalls`).
    fn answers_stalled(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.completions.as_ref().is_some_and(|q| q.stalled());
        #[cfg(not(target_os = "linux"))]
        false
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
        body: impl FnOnce(Arc<Core>) + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        let (core, reporter) = (self.clone(), self.clone());
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

impl Core {
    /// The parts of a new context, or `None` when a descriptor or the rings' memory
    /// cannot be had.
    fn new<L: Library>(options: &Options) -> Option<Core> {
        let backend = match options.wake {
            WakeKind::Futex => WakeBackend::Futex,
            WakeKind::EventFd => WakeBackend::eventfd().ok()?,
        };
        #[cfg(target_os = "linux")]
        let completions = match options.completion {
            crate::CompletionMode::Callback => None,
            crate::CompletionMode::Queue => {
                let capacity = options.ring_capacity.saturating_mul(2).max(1024);
                Some(crate::egress::completion::CompletionQueue::new(capacity).ok()?)
            }
        };
        #[cfg(not(target_os = "linux"))]
        if options.completion == crate::CompletionMode::Queue {
            return None; // needs eventfd
        }
        Some(Core {
            ring: match options.ring {
                RingKind::Tagged => Ingress::Tag(TagRing::try_new(options.ring_capacity)?),
                RingKind::ArrayQueue => Ingress::Array(ArrayRing::try_new(options.ring_capacity)?),
            },
            wake: WorkerWake::new(backend),
            space: SpaceWait::new(),
            closed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            library: TypeId::of::<L>(),
            method_names: method_name::<L>,
            policy: options.backpressure,
            spin: options.spin,
            running: CachePadded::new(Running::new()),
            counters: Counters::default(),
            cancels: Cancels::default(),
            deferred: Pending::default(),
            events: Arc::new(EventHub::new::<L>(
                options.event_ring_capacity,
                options.event_policy,
                options.spin,
            )?),
            #[cfg(target_os = "linux")]
            completions,
            hooks: options.thread_hooks,
            diagnostic: options.diagnostic,
            shutdown_timeout: options.shutdown_timeout,
            overflow: crossbeam_queue::SegQueue::new(),
            overflowed: AtomicBool::new(false),
            monitor_stop: Mutex::new(false),
            monitor_wake: std::sync::Condvar::new(),
            worker: Mutex::new(None),
            helpers: Mutex::new(Vec::new()),
        })
    }

    /// Reports a panic the runtime caught on one of its threads (`DIAG_PANIC`), in
    /// place of the default hook's report on the host's stderr (`lifecycle/panics.rs`).
    pub(crate) fn report_panic(&self, what: &str, panic: &(dyn std::any::Any + Send)) {
        if let Some(report) = self.panic_report(what, panic) {
            self.send_panic_report(report);
        }
    }

    /// The `DIAG_PANIC` text for a caught panic (with its NUL), if a host listens; for
    /// [`Core::send_panic_report`] once the request's gate is closed.
    pub(crate) fn panic_report(
        &self,
        what: &str,
        panic: &(dyn std::any::Any + Send),
    ) -> Option<String> {
        self.diagnostic?;
        let mut msg = format!(
            "{what} panicked: {}",
            crate::lifecycle::panics::message(panic)
        );
        if let Some(at) = crate::lifecycle::panics::take_location() {
            msg.push_str(" (at ");
            msg.push_str(&at);
            msg.push(')');
        }
        msg.push('\0');
        Some(msg)
    }

    pub(crate) fn send_panic_report(&self, report: String) {
        if let Some(d) = self.diagnostic {
            crate::reply::deliver(d.f, d.user_data, crate::abi::DIAG_PANIC, report.as_bytes());
        }
    }
}

/// Stops a context's threads and answers everything still owed (destroy steps 4-6).
fn shut_down(core: &Core) {
    // Completion mode: from here on nothing waits for the host to drain (the worker,
    // deferred completers and the monitor may all be waiting for it now); what does
    // not fit queues beside the ring and runs at the end, on this thread.
    #[cfg(target_os = "linux")]
    if let Some(q) = &core.completions {
        q.unbound();
    }
    core.stop.store(true, Ordering::SeqCst);
    core.wake.notify();
    join(crate::sync::lock(&core.worker).take());
    core.deferred.shut_down(core, core.shutdown_timeout);
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
    if let Some(q) = &core.completions {
        q.drain_all();
    }
}

impl Core {
    fn stats(&self) -> Stats {
        let w = &self.counters.worker;
        let queued = self.ring.len() as u64;
        let (events_emitted, events_dropped, events_delivered) = self.events.counts();
        Stats {
            struct_size: std::mem::size_of::<Stats>() as u32,
            reserved: 0,
            accepted: w.popped.get() - w.task_wakes.get() + queued,
            completed: w.answered.get() + self.counters.deferred_answered.get(),
            refused: self.counters.refused.get(),
            queue_depth: queued,
            high_water: w.high_water.get().max(queued),
            wakeups: self.wake.wakes(),
            spin_hits: w.spin_hits.get(),
            parks: w.parks.get(),
            panics: w.panics.get(),
            deferred_pending: self.deferred.len() as u64,
            cancelled: w.cancelled.get(),
            stale_pings: self.counters.stale_pings.get(),
            events_emitted,
            events_dropped,
            events_delivered,
        }
    }
}
