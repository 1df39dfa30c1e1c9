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

pub(crate) mod monitor;
pub(crate) mod panics;
pub(crate) mod registry;
pub(crate) mod stats;
mod unload;

use std::any::TypeId;
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::abi::{ffid_ctx, Callback, Refusal, RET_ERR, RET_OK};
use crate::egress::deferred::Pending;
use crate::envelope::Envelope;
use crate::events::{EventHub, ListenerView};
use crate::lifecycle::monitor::PingGate;
use crate::lifecycle::stats::{Counters, Stats};
use crate::sync::ring::{ArrayRing, Ingress, Ring, TagRing};
use crate::sync::wake::{SpaceWait, WakeBackend, WorkerWake};
use crate::sync::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use crate::threads::{must_not_block, ThreadRole};
use crate::{BackPressure, Library, Options, Request, RingKind, ThreadHooks, UserData, WakeKind};

/// The request the worker is running, for the monitor: its gate, and where its pings go.
/// Written by the worker per request (relaxed stores before the gate's `begin`, which
/// publishes them); read by the monitor only while it holds the gate.
pub(crate) struct Running {
    pub(crate) gate: PingGate,
    /// The callback and `user_data`, kept as pointers (not integers) so that they keep
    /// their provenance on the way to the monitor.
    callback: AtomicPtr<c_void>,
    user_data: AtomicPtr<c_void>,
    method: AtomicU32,
}

impl Running {
    #[inline]
    pub(crate) fn set(&self, env: &Envelope) {
        self.callback
            .store(env.callback as *mut c_void, Ordering::Relaxed);
        self.user_data.store(env.user_data, Ordering::Relaxed);
        self.method.store(env.method as u32, Ordering::Relaxed);
    }

    /// The running request's callback and `user_data`. Call only while holding its gate.
    pub(crate) fn target(&self) -> (Callback, *mut c_void) {
        let cb = self.callback.load(Ordering::Relaxed);
        // SAFETY: `set` stored a valid `Callback` (as a pointer, with its provenance)
        // before `begin` published it, and the gate held by the caller keeps the worker
        // from storing another.
        let cb: Callback = unsafe { std::mem::transmute::<*mut c_void, Callback>(cb) };
        (cb, self.user_data.load(Ordering::Relaxed))
    }

    pub(crate) fn method(&self) -> u16 {
        self.method.load(Ordering::Relaxed) as u16
    }
}

/// Requests a host asked to cancel: ids waiting for the worker to reach them.
///
/// The worker and a canceller agree through a store-load pair, each with a SeqCst fence
/// between its store and its load: the worker stores the started id
/// (`PingGate::begin`) and then loads `pending`; the canceller raises `pending` and then
/// loads the started id. The fences are totally ordered, so at least one of them sees
/// the other's store; whichever then removes the id from the table under its lock
/// decides.
/// `loom_models` checks it.
#[derive(Default)]
pub(crate) struct Cancels {
    /// Non-zero while `ids` may be non-empty: the worker's only cost per request.
    pending: CachePadded<AtomicU64>,
    ids: crate::sync::Mutex<Vec<u64>>,
}

impl Cancels {
    /// Worker, after `begin(id)`: whether `id` was cancelled (removing it).
    #[inline]
    #[must_use]
    pub(crate) fn take(&self, id: u64) -> bool {
        // The fence orders the worker's `begin(id)` store before this load (and the
        // canceller has the mirror image), so one of the two sees the other.
        fence(Ordering::SeqCst);
        if self.pending.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.remove(id)
    }

    /// Canceller: true when request `id`, not started per `gate`, will be answered
    /// "cancelled"; false when it had started (or was already being cancelled).
    #[must_use]
    pub(crate) fn cancel(&self, id: u64, gate: &PingGate) -> bool {
        {
            let mut ids = self.ids.lock();
            if ids.contains(&id) {
                return false;
            }
            ids.push(id);
            self.pending.store(ids.len() as u64, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        // Started before the worker could see the request: take it back, unaffected.
        !(gate.started() >= id && self.remove(id))
    }

    fn remove(&self, id: u64) -> bool {
        let mut ids = self.ids.lock();
        let found = ids.contains(&id);
        // Ids below `id` can never be reached again (the worker has passed them: an id
        // that named an async task's wake marker, never a request): forget them too.
        ids.retain(|&x| x > id);
        self.pending.store(ids.len() as u64, Ordering::Relaxed);
        found
    }
}

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
    // The threads catch handler and teardown panics; a join error can only come from a
    // panic in a library's `Drop`, and the context is gone either way.
    if let Some(t) = thread {
        let _ = t.join();
    }
}

fn method_name<L: Library>(method: u16) -> &'static str {
    L::METHODS.get(method as usize).map_or("?", |m| m.name)
}

/// Creates a context for library `L`: starts its threads; the worker runs
/// `L::construct` on `config()` and reports the outcome through `callback`. Returns
/// null, with no callback, when the callback is null, `config` refuses, the options are
/// invalid, or no memory, thread or registry slot can be had. Whatever it had started
/// by then is stopped and joined (the thread hooks' stop calls included) before it
/// returns null.
pub fn create<L: Library>(
    callback: Option<Callback>,
    user_data: *mut c_void,
    options: Option<Options>,
    config: impl FnOnce() -> Result<L::Config, Refusal>,
) -> *mut ffid_ctx {
    let (Some(callback), Some(options)) = (callback, options) else {
        return std::ptr::null_mut();
    };
    if !options.is_valid() {
        return std::ptr::null_mut();
    }
    let Ok(config) = config() else {
        return std::ptr::null_mut();
    };
    registry::guard_fork();
    crate::lifecycle::panics::keep_quiet();
    let Some(core) = Core::new::<L>(&options) else {
        return std::ptr::null_mut();
    };
    let core = Arc::new(core);
    let Some(handle) = registry::insert(core.clone()) else {
        return std::ptr::null_mut();
    };
    if start_threads::<L>(&core, &options, callback, UserData(user_data), config).is_err() {
        shut_down(&core);
        registry::remove(handle);
        return std::ptr::null_mut();
    }
    handle.cast()
}

/// Starts a new context's threads: the helpers first, so that if a thread cannot be
/// had no worker has reported to the host yet and NULL keeps the "no callback" promise.
/// Each thread started is handed to `core` at once, for `shut_down` to join.
fn start_threads<L: Library>(
    core: &Arc<Core>,
    options: &Options,
    callback: Callback,
    user_data: UserData,
    config: L::Config,
) -> std::io::Result<()> {
    let keep = |thread| crate::sync::lock(&core.helpers).push(thread);
    keep(core.spawn(
        ThreadRole::Events,
        format!("ffid-{}-ev", L::NAME),
        crate::events::run,
    )?);
    let monitor = crate::lifecycle::monitor::Settings {
        stale_ping: options.stale_ping,
        not_responding: options.not_responding,
        listener_stuck: options.listener_stuck,
        diagnostic: options.diagnostic,
    };
    if let Some(tick) = monitor.tick() {
        keep(core.spawn(
            ThreadRole::Monitor,
            format!("ffid-{}-mon", L::NAME),
            move |core| crate::lifecycle::monitor::run(core, monitor, tick),
        )?);
    }
    let worker = core.spawn(
        ThreadRole::Worker,
        format!("ffid-{}", L::NAME),
        move |core| crate::worker::run::<L>(core, callback, user_data, config),
    )?;
    *crate::sync::lock(&core.worker) = Some(worker);
    Ok(())
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
            running: CachePadded::new(Running {
                gate: PingGate::new(),
                callback: AtomicPtr::new(std::ptr::null_mut()),
                user_data: AtomicPtr::new(std::ptr::null_mut()),
                method: AtomicU32::new(0),
            }),
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

/// Submits one call of method `method` of library `L`. Returns `RET_OK` when accepted
/// (exactly one terminal callback follows) or the refusal's code (no callback).
///
/// `request` builds the request from the host's arguments; it runs on the calling
/// thread after the callback check and before the context is entered.
#[inline]
pub fn submit<L: Library>(
    ctx: *mut ffid_ctx,
    callback: Option<Callback>,
    user_data: *mut c_void,
    method: u16,
    request: impl FnOnce() -> Result<Request, Refusal>,
) -> c_int {
    let Some(callback) = callback else {
        return Refusal::MissingCallback.code();
    };
    debug_assert!(
        (method as usize) < L::METHODS.len(),
        "method id out of range for {}",
        L::NAME
    );
    let request = match request() {
        Ok(r) => r,
        Err(refusal) => return refused::<L>(ctx, refusal),
    };
    let Some(guard) = registry::acquire(ctx.cast()) else {
        return RET_ERR;
    };
    let core = guard.core();
    if core.library != TypeId::of::<L>() {
        return RET_ERR;
    }
    let env = Envelope {
        callback,
        user_data,
        method,
        kind: request.kind,
        payload: request.payload,
    };
    match core.push(env) {
        Ok(id) => {
            LAST_REQUEST_ID.with(|c| c.set(id));
            RET_OK
        }
        Err(refusal) => {
            core.counters.refused.bump();
            refusal.code()
        }
    }
}

/// Counts a refusal of bad arguments against the context, if it is a live one of `L`.
#[cold]
fn refused<L: Library>(ctx: *mut ffid_ctx, refusal: Refusal) -> c_int {
    if let Some(guard) = registry::acquire(ctx.cast()) {
        if guard.core().library == TypeId::of::<L>() {
            guard.core().counters.refused.bump();
        }
    }
    refusal.code()
}

/// [`submit`] for a `_cbor` export: copies the request buffer (`req` may be null only
/// when `len == 0`).
///
/// # Safety
/// If `len > 0`, `req` is null or points to `len` readable bytes for the duration of
/// this call.
#[inline]
pub unsafe fn submit_cbor<L: Library>(
    ctx: *mut ffid_ctx,
    callback: Option<Callback>,
    user_data: *mut c_void,
    method: u16,
    req: *const u8,
    len: usize,
) -> c_int {
    submit::<L>(ctx, callback, user_data, method, || {
        // SAFETY: forwarded to the caller (`req` holds `len` bytes for the call).
        Ok(Request::cbor(unsafe { crate::abi::bytes_field(req, len) }?))
    })
}

/// Where a library keeps the handle of its static methods' context (one `static` per
/// library, in generated code). Its atomics are `std`'s, not the loom shim's: a
/// `static` needs `const` constructors.
pub struct StaticContext {
    handle: std::sync::atomic::AtomicUsize,
    /// `registry::forks()` when `handle` was made: a handle from before a fork is the
    /// parent's.
    forks: std::sync::atomic::AtomicU64,
}

impl StaticContext {
    /// The handle, or 0 when there is none of this process yet. `forks` is read first
    /// (Acquire, pairing with the maker's Release stores), then `handle`.
    #[inline]
    fn current(&self) -> usize {
        let forks = self.forks.load(Ordering::Acquire);
        let handle = self.handle.load(Ordering::Acquire);
        if forks == registry::forks() {
            handle
        } else {
            0
        }
    }

    /// An empty cell: the context is made on first use.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        StaticContext {
            handle: std::sync::atomic::AtomicUsize::new(0),
            forks: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// The process-wide context that serves library `L`'s static methods, created on first
/// use and kept for the life of the process (or of a fork child: the child makes its
/// own). Null, and every call refused, while it cannot be created (no thread to be
/// had, say); the next call tries again.
#[inline]
pub fn static_context<L: Library<Config = Request>>(cell: &'static StaticContext) -> *mut ffid_ctx {
    match cell.current() {
        0 => make_static_context::<L>(cell),
        handle => handle as *mut ffid_ctx,
    }
}

#[cold]
fn make_static_context<L: Library<Config = Request>>(
    cell: &'static StaticContext,
) -> *mut ffid_ctx {
    unsafe extern "C" fn created(_: c_int, _: *const std::ffi::c_char, _: usize, _: *mut c_void) {}
    let _one_maker = crate::sync::lock(&registry::STATIC_INIT);
    if let handle @ 1.. = cell.current() {
        return handle as *mut ffid_ctx;
    }
    let ctx = create::<L>(
        Some(created),
        std::ptr::null_mut(),
        Some(Options::default()),
        || Request::native_checked(|_| Ok(())),
    );
    if !ctx.is_null() {
        // Cleared first: a reader that sees the new `forks` sees 0 or the new handle.
        cell.handle.store(0, Ordering::Relaxed);
        cell.forks.store(registry::forks(), Ordering::Release);
        cell.handle.store(ctx as usize, Ordering::Release);
    }
    ctx
}

/// Borrows a live context of library `L` for the duration of `f`.
fn with_core<L: Library, R>(ctx: *mut ffid_ctx, f: impl FnOnce(&Core) -> R) -> Option<R> {
    let guard = registry::acquire(ctx.cast())?;
    let core = guard.core();
    (core.library == TypeId::of::<L>()).then(|| f(core))
}

/// Cancels request `id` (from [`last_request_id`]) of a context of `L` if the worker
/// has not started it: it is then answered `ERR` `"cancelled"` without running, when
/// the worker reaches it, and this returns `RET_OK`. Returns `RET_ERR`, changing
/// nothing, when the request has started or finished, the id is unknown, or the handle
/// is not live.
/// How the worker and a canceller agree is explained at `Cancels`.
pub fn cancel<L: Library>(ctx: *mut ffid_ctx, id: u64) -> c_int {
    with_core::<L, _>(ctx, |core| {
        let Ingress::Tag(ring) = &core.ring else {
            return RET_ERR; // the ArrayQueue ring gives no ids
        };
        if id == 0 || id > ring.pushed() || id <= core.running.gate.started() {
            return RET_ERR;
        }
        if core.cancels.cancel(id, &core.running.gate) {
            RET_OK
        } else {
            RET_ERR
        }
    })
    .unwrap_or(RET_ERR)
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

/// Destroys a context of library `L` (see the module docs for the order of events).
/// Returns `RET_ERR` for a stale, invalid or foreign handle, for a second destroy, and
/// when called on one of a context's threads (from inside a handler or callback).
pub fn destroy<L: Library>(ctx: *mut ffid_ctx) -> c_int {
    if must_not_block() {
        return RET_ERR;
    }
    let handle = ctx.cast();
    let Some(core) = registry::close(handle, |core| core.library == TypeId::of::<L>()) else {
        return RET_ERR;
    };
    core.closed.store(true, Ordering::SeqCst);
    core.space_freed();
    while !registry::drained(handle) {
        std::thread::yield_now();
    }
    shut_down(&core);
    registry::remove(handle);
    RET_OK
}

/// Completion mode: runs up to `max` queued callbacks of a context of `L` on this
/// thread and returns how many ran (0 when another thread is draining). `None` for a
/// handle that is not live or a context not in completion mode.
pub fn drain<L: Library>(ctx: *mut ffid_ctx, max: usize) -> Option<usize> {
    #[cfg(target_os = "linux")]
    return with_core::<L, _>(ctx, |core| core.completions.as_ref().map(|q| q.drain(max)))
        .flatten();
    #[cfg(not(target_os = "linux"))]
    None
}

/// Completion mode: the eventfd that is readable while completions wait (poll it; then
/// call [`drain`]). Owned by the context, closed by destroy. `None` otherwise.
pub fn completion_fd<L: Library>(ctx: *mut ffid_ctx) -> Option<c_int> {
    #[cfg(target_os = "linux")]
    return with_core::<L, _>(ctx, |core| core.completions.as_ref().map(|q| q.fd())).flatten();
    #[cfg(not(target_os = "linux"))]
    None
}

/// Reads a live context's counters; `None` for a stale or invalid handle.
pub fn stats(ctx: *mut ffid_ctx) -> Option<Stats> {
    let guard = registry::acquire(ctx.cast())?;
    Some(guard.core().stats())
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

/// Writes a context's counters into the host's struct (`ffid_context_stats`, `<lib>_stats`).
/// `RET_ERR` for a stale handle, a null `out` or a `struct_size` smaller than 8.
///
/// # Safety
/// `out` is null or points to writable memory of `out->struct_size` bytes.
pub unsafe fn stats_into(ctx: *mut ffid_ctx, out: *mut crate::abi::ffid_context_stats) -> c_int {
    if out.is_null() {
        return RET_ERR;
    }
    // SAFETY: non-null; `struct_size` is the first field of every layout.
    let size = unsafe { out.cast::<u32>().read_unaligned() } as usize;
    if size < 8 {
        return RET_ERR;
    }
    let Some(s) = stats(ctx) else {
        return RET_ERR;
    };
    let n = size.min(std::mem::size_of_val(&s));
    // SAFETY: the host's struct holds `size >= n` writable bytes (the contract above);
    // the source is a local of at least `n` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping((&s as *const Stats).cast::<u8>(), out.cast::<u8>(), n)
    };
    // The host keeps its own size in the first field.
    // SAFETY: as above, `size >= 8`.
    unsafe { out.cast::<u32>().write_unaligned(size as u32) };
    RET_OK
}

/// `int ffid_stats(ffid_ctx* ctx, ffid_context_stats* out)`: [`stats_into`]. With two
/// libraries in one process this symbol resolves to one of them; `<lib>_stats` always
/// reaches the right one.
///
/// # Safety
/// As [`stats_into`].
#[no_mangle]
pub unsafe extern "C" fn ffid_stats(
    ctx: *mut ffid_ctx,
    out: *mut crate::abi::ffid_context_stats,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { stats_into(ctx, out) }
}

/// Adds a listener to a context of `L`: `event` is an index into `L::EVENTS`, or `None`
/// for every event (`view` must then be [`ListenerView::Envelope`]). Returns its id, or
/// 0 (refused) for a null callback, a bad event, or a handle that is not live.
pub fn add_listener<L: Library>(
    ctx: *mut ffid_ctx,
    event: Option<u16>,
    view: ListenerView,
    callback: Option<Callback>,
    user_data: *mut c_void,
) -> u64 {
    let Some(callback) = callback else { return 0 };
    let valid = match event {
        Some(e) => (e as usize) < L::EVENTS.len() && view != ListenerView::Envelope,
        None => view == ListenerView::Envelope,
    };
    if !valid {
        return 0;
    }
    with_core::<L, _>(ctx, |core| {
        core.events.add(event, view, callback, user_data)
    })
    .unwrap_or(0)
}

/// Removes a listener. `RET_OK` when it was registered; once this returns it is never
/// called again (from a listener's own callback: after that callback returns).
pub fn remove_listener<L: Library>(ctx: *mut ffid_ctx, id: u64) -> c_int {
    match with_core::<L, _>(ctx, |core| core.events.remove(id)) {
        Some(true) => RET_OK,
        _ => RET_ERR,
    }
}

/// The eventfd a context's parked worker sleeps on, for a library whose worker thread
/// also polls its own descriptors (epoll) and wants ingress in the same set. `None` for
/// the futex backend, a stale handle, or a platform without eventfd. The descriptor
/// stays owned by the context and is closed when it is destroyed.
#[cfg(target_os = "linux")]
pub fn wake_fd(ctx: *mut ffid_ctx) -> Option<std::os::fd::RawFd> {
    registry::acquire(ctx.cast())?.core().wake.fd()
}

/// `destroy` racing submits, model-checked with loom (`scripts/loom.sh`). The model runs
/// the real slot state machine, ring and wake protocol in the order `submit` and
/// `destroy` use them; the registry's static tables and the library are left out.
#[cfg(all(test, loom))]
mod loom_models {
    use crate::lifecycle::registry::SlotState;
    use crate::sync::ring::{Ring, TagRing};
    use crate::sync::wake::{WakeBackend, WorkerWake};
    use crate::sync::{AtomicBool, Ordering};
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;
    use loom::thread;

    const GENERATION: u32 = 7;
    const PENDING: usize = 0;
    const ACCEPTED: usize = 1;
    const REFUSED: usize = 2;

    struct Context {
        slot: SlotState,
        ring: TagRing<usize>,
        wake: WorkerWake,
        stop: AtomicBool,
        answers: [AtomicUsize; 2],
        outcome: [AtomicUsize; 2],
        closes_won: AtomicUsize,
    }

    impl Context {
        fn new() -> Arc<Self> {
            let slot = SlotState::new(GENERATION as u64);
            slot.open();
            Arc::new(Context {
                slot,
                ring: TagRing::new(4),
                wake: WorkerWake::new(WakeBackend::Futex),
                stop: AtomicBool::new(false),
                answers: [AtomicUsize::new(0), AtomicUsize::new(0)],
                outcome: [AtomicUsize::new(PENDING), AtomicUsize::new(PENDING)],
                closes_won: AtomicUsize::new(0),
            })
        }

        /// `submit`: enter the slot, push, leave, wake; or be refused.
        fn submit(&self, request: usize) {
            if self.slot.enter(GENERATION) {
                self.ring.push(request).expect("the ring has room");
                self.wake.notify();
                self.outcome[request].store(ACCEPTED, Ordering::Relaxed);
                self.slot.leave();
            } else {
                self.outcome[request].store(REFUSED, Ordering::Relaxed);
            }
        }

        /// The worker loop: drain, exit once stopped and empty, else park.
        fn work(&self) {
            loop {
                // SAFETY: the model's worker thread is the only consumer.
                while let Some(r) = unsafe { self.ring.pop() } {
                    self.answers[r].fetch_add(1, Ordering::Relaxed);
                }
                if self.stop.load(Ordering::Acquire) && self.ring.is_empty() {
                    return;
                }
                self.wake
                    .park(|| !self.ring.is_empty() || self.stop.load(Ordering::SeqCst));
            }
        }

        /// `destroy`: enter, close (one winner), leave, wait for callers to drain, stop
        /// the worker. Returns whether this call won the close.
        fn destroy(&self) -> bool {
            if !self.slot.enter(GENERATION) {
                return false;
            }
            let won = self.slot.close();
            self.slot.leave();
            if !won {
                return false;
            }
            self.closes_won.fetch_add(1, Ordering::Relaxed);
            while !self.slot.drained() {
                thread::yield_now();
            }
            self.stop.store(true, Ordering::SeqCst);
            self.wake.notify();
            true
        }

        /// Every accepted request answered exactly once, every refused one never.
        fn check(&self, requests: usize) {
            for r in 0..requests {
                let answers = self.answers[r].load(Ordering::Relaxed);
                match self.outcome[r].load(Ordering::Relaxed) {
                    ACCEPTED => assert_eq!(answers, 1, "accepted request {r}"),
                    REFUSED => assert_eq!(answers, 0, "refused request {r}"),
                    _ => panic!("request {r} neither accepted nor refused"),
                }
            }
            assert_eq!(self.closes_won.load(Ordering::Relaxed), 1, "one close wins");
        }
    }

    #[test]
    fn destroy_racing_two_submitters_answers_each_accepted_call_once() {
        crate::sync::model("destroy racing 2 submitters", || {
            let ctx = Context::new();
            let worker = {
                let ctx = ctx.clone();
                thread::spawn(move || ctx.work())
            };
            let producers: Vec<_> = (0..2)
                .map(|r| {
                    let ctx = ctx.clone();
                    thread::spawn(move || ctx.submit(r))
                })
                .collect();
            assert!(ctx.destroy());
            worker.join().unwrap();
            for p in producers {
                p.join().unwrap();
            }
            ctx.check(2);
        });
    }

    /// `cancel` racing the worker starting the request: it is cancelled exactly when
    /// the canceller was told so.
    #[test]
    fn cancel_racing_the_start_decides_once() {
        use crate::lifecycle::monitor::PingGate;
        use crate::lifecycle::Cancels;
        crate::sync::model("cancel racing the start", || {
            let cancels = Arc::new(Cancels::default());
            let gate = Arc::new(PingGate::new());
            let worker = {
                let (cancels, gate) = (cancels.clone(), gate.clone());
                thread::spawn(move || {
                    gate.begin(1);
                    let cancelled = cancels.take(1);
                    let _answered = gate.claim(1);
                    cancelled
                })
            };
            let told_cancelled = gate.started() < 1 && cancels.cancel(1, &gate);
            let cancelled = worker.join().unwrap();
            assert_eq!(cancelled, told_cancelled, "the host is told the truth");
        });
    }

    #[test]
    fn two_destroys_racing_a_submitter_free_once() {
        crate::sync::model("two destroys racing 1 submitter", || {
            let ctx = Context::new();
            let worker = {
                let ctx = ctx.clone();
                thread::spawn(move || ctx.work())
            };
            let producer = {
                let ctx = ctx.clone();
                thread::spawn(move || ctx.submit(0))
            };
            let second = {
                let ctx = ctx.clone();
                thread::spawn(move || ctx.destroy())
            };
            let first = ctx.destroy();
            let second = second.join().unwrap();
            assert!(first != second, "exactly one destroy succeeds");
            worker.join().unwrap();
            producer.join().unwrap();
            ctx.outcome[1].store(REFUSED, Ordering::Relaxed); // only request 0 exists
            ctx.check(2);
        });
    }
}
