//! Context lifecycle: create, submit, destroy.
//!
//! A context is a [`Core`] (ring, wake words, flags; not generic) shared by the
//! registry, the host threads that call into it and its worker thread, which alone
//! holds the library value. Destroy is synchronous and ordered so that every accepted
//! request is answered exactly once:
//!
//! 1. mark the registry slot closing: new calls (and a second destroy) are refused;
//! 2. set `closed` and wake producers blocked on a full ring: they give up, refused;
//! 3. wait until no call is inside the context (its registry users reach 0): from now
//!    on nobody can push;
//! 4. set `stop` and wake the worker, which drains the ring, answering each request,
//!    runs teardown and exits; join it;
//! 5. free the slot: the handle is stale from here on.

use std::any::TypeId;
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::abi::{ffid_ctx, Callback, Refusal, RET_ERR, RET_OK};
use crate::envelope::Envelope;
use crate::registry;
use crate::ring::{ArrayRing, Ingress, Ring, TagRing};
use crate::sync::{AtomicBool, Ordering};
use crate::wake::{SpaceWait, WakeBackend, WorkerWake};
use crate::{BackPressure, Library, Options, Request, RingKind, UserData, WakeKind};

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
    policy: BackPressure,
    pub(crate) spin: Duration,
    worker: Mutex<Option<JoinHandle<()>>>,
}

thread_local! {
    /// Set on worker threads: calls made from a handler or callback must never block,
    /// and destroy must not run there (it would wait for itself).
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn mark_worker_thread() {
    ON_WORKER.with(|w| w.set(true));
}

fn on_worker_thread() -> bool {
    ON_WORKER.with(|w| w.get())
}

impl Core {
    /// Pushes an envelope, applying the back-pressure policy; wakes the worker if parked.
    #[inline]
    fn push(&self, env: Envelope) -> Result<(), Refusal> {
        match self.ring.push(env) {
            Ok(()) => {
                self.wake.notify();
                Ok(())
            }
            Err(env) => self.push_full(env),
        }
    }

    /// The ring was full. Kept out of line so that the hot path carries none of it
    /// (thread-local lookup, backoff, parking).
    #[cold]
    #[inline(never)]
    fn push_full(&self, mut env: Envelope) -> Result<(), Refusal> {
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            if self.policy == BackPressure::Reject || on_worker_thread() {
                return Err(Refusal::Busy);
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(Refusal::Err);
            }
            if backoff.is_completed() {
                self.space
                    .wait(|| self.ring.is_full() && !self.closed.load(Ordering::Relaxed));
            } else {
                backoff.snooze();
            }
            match self.ring.push(env) {
                Ok(()) => {
                    self.wake.notify();
                    return Ok(());
                }
                Err(back) => env = back,
            }
        }
    }

    /// Wakes producers blocked on a full ring: the worker calls it after popping a batch.
    pub(crate) fn space_freed(&self) {
        self.space.notify();
    }
}

/// Creates a context for library `L`: starts its worker, which runs `L::construct` on
/// `config()` and reports the outcome through `callback`. Returns null, with no
/// callback, when the callback is null, `config` refuses, the options are invalid, or
/// no thread or registry slot can be had.
pub fn create<L: Library>(
    callback: Option<Callback>,
    user_data: *mut c_void,
    options: Option<Options>,
    config: impl FnOnce() -> Result<L::Config, Refusal>,
) -> *mut ffid_ctx {
    let (Some(callback), Some(options)) = (callback, options) else {
        return std::ptr::null_mut();
    };
    let Ok(config) = config() else {
        return std::ptr::null_mut();
    };
    let backend = match options.wake {
        WakeKind::Futex => WakeBackend::Futex,
        WakeKind::EventFd => match WakeBackend::eventfd() {
            Ok(b) => b,
            Err(_) => return std::ptr::null_mut(),
        },
    };
    let core = Arc::new(Core {
        ring: match options.ring {
            RingKind::Tagged => Ingress::Tag(TagRing::new(options.ring_capacity)),
            RingKind::ArrayQueue => Ingress::Array(ArrayRing::new(options.ring_capacity)),
        },
        wake: WorkerWake::new(backend),
        space: SpaceWait::new(),
        closed: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        library: TypeId::of::<L>(),
        policy: options.backpressure,
        spin: options.spin,
        worker: Mutex::new(None),
    });
    let Some(handle) = registry::insert(core.clone()) else {
        return std::ptr::null_mut();
    };
    let user_data = UserData(user_data);
    let worker_core = core.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("ffid-{}", L::NAME))
        .spawn(move || crate::worker::run::<L>(worker_core, callback, user_data, config));
    match spawned {
        Ok(join) => *core.worker.lock().unwrap_or_else(|e| e.into_inner()) = Some(join),
        Err(_) => {
            // Nothing was accepted yet and the handle never reached the host.
            let _ = registry::close(handle, |_| true);
            registry::remove(handle);
            return std::ptr::null_mut();
        }
    }
    handle.cast()
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
        Err(refusal) => return refusal.code(),
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
        Ok(()) => RET_OK,
        Err(refusal) => refusal.code(),
    }
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
    // SAFETY: forwarded to the caller.
    submit::<L>(ctx, callback, user_data, method, || {
        Ok(Request::cbor(unsafe { crate::abi::bytes_field(req, len) }?))
    })
}

/// The process-wide context that serves library `L`'s static methods, created on first
/// use and kept for the life of the process. Null (every call refused) if it could not
/// be created.
pub fn static_context<L: Library<Config = Request>>(
    cell: &'static std::sync::OnceLock<usize>,
) -> *mut ffid_ctx {
    unsafe extern "C" fn created(_: c_int, _: *const std::ffi::c_char, _: usize, _: *mut c_void) {}
    let handle = *cell.get_or_init(|| {
        let ctx = create::<L>(
            Some(created),
            std::ptr::null_mut(),
            Some(Options::default()),
            || Request::native_checked(|_| Ok(())),
        );
        ctx as usize
    });
    handle as *mut ffid_ctx
}

/// Destroys a context of library `L` (see the module docs for the order of events).
/// Returns `RET_ERR` for a stale, invalid or foreign handle, for a second destroy, and
/// when called on a worker thread (from inside a handler or callback).
pub fn destroy<L: Library>(ctx: *mut ffid_ctx) -> c_int {
    if on_worker_thread() {
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
    core.stop.store(true, Ordering::SeqCst);
    core.wake.notify();
    if let Some(join) = core.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
        // The worker catches handler and teardown panics; a join error can only come
        // from a panic in a library's `Drop`, and the context is gone either way.
        let _ = join.join();
    }
    registry::remove(handle);
    RET_OK
}

/// A snapshot of a context's counters (cheap: a few relaxed loads).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests queued and not yet popped by the worker.
    pub queued: usize,
    /// Times a producer woke the parked worker (each is one syscall).
    pub worker_wakes: u64,
}

/// Reads a live context's counters; `None` for a stale or invalid handle.
pub fn stats(ctx: *mut ffid_ctx) -> Option<Stats> {
    let guard = registry::acquire(ctx.cast())?;
    let core = guard.core();
    Some(Stats {
        queued: core.ring.len(),
        worker_wakes: core.wake.wakes(),
    })
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
    use crate::registry::SlotState;
    use crate::ring::{Ring, TagRing};
    use crate::sync::{AtomicBool, Ordering};
    use crate::wake::{WakeBackend, WorkerWake};
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
