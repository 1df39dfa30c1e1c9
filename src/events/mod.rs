//! Events: library -> host notifications, delivered on a per-context event thread.
//!
//! ```text
//! emitter (handler, any library thread)      event thread
//! -------                                    ------------
//! encode the value as CBOR (pooled buffer)   pop an event
//! push onto the event ring, wake             build each view a listener needs once:
//!   (full: drop and count, or wait)            native C struct, CBOR, {"event", "payload"}
//!                                            call each live listener, in the order added
//! ```
//!
//! With `POLL_EVENTS` (completion mode) an event skips all of this: the emitter encodes
//! it as `{"event", "payload"}` CBOR into the completion queue, for the host's poll.
//!
//! The event ring is a `TagRing` with its own `WorkerWake`, so a slow listener
//! stalls only the event thread, never the worker. Listeners are kept in a table under
//! a mutex that the event thread never holds while calling out: it works from a
//! snapshot, refreshed when the table's version changes, so a listener may add or
//! remove listeners (itself included) from inside its callback.
//!
//! # Remove: never called again once `remove` returns
//!
//! ```text
//! event thread                              remover (another thread)
//! ------------                              -------
//! calling = id                              active = false
//! fence(SeqCst)                             fence(SeqCst)
//! if active: call the listener              wait while calling == id (Acquire)
//! calling = 0             (Release)
//! ```
//!
//! A store-load pair on each side: the fences are totally ordered, so either the event
//! thread sees `active == false` and skips the call, or the remover sees `calling ==
//! id` and waits for the call to end. `loom_models` checks it.
//! A remove from inside the listener's own callback (on the event thread) cannot wait
//! for itself and need not: the thread checks `active` again before any later call.

use std::any::TypeId;
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use minicbor::Encoder;

use crate::abi::{Callback, RET_OK};
use crate::egress::outbox::Outbox;
use crate::egress::reply::{Answer, Reply};
use crate::ffi::host::{deliver, UserData};
use crate::ingress::envelope::{Kind, Payload};
pub use crate::library::EventDesc;
use crate::library::Library;
use crate::options::EventPolicy;
use crate::sync::counter::{OwnedCounter, SharedCounter};
use crate::sync::ring::{Ring, TagRing};
use crate::sync::wake::{SpaceWait, WakeBackend, WorkerWake};
use crate::sync::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::threads::{thread_role, ThreadRole};

/// How a listener receives its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerView {
    /// The event's C struct (`msg` points to it, `len == sizeof`).
    Native,
    /// The event's payload as CBOR.
    Cbor,
    /// Every event, as the CBOR map `{"event": name, "payload": ...}`.
    Envelope,
    /// The event's C value as an owned block, which the callback takes over (a typed
    /// listener's: encoded afresh for each such listener).
    Owned,
}

/// What a listener owns besides its callback, freed with it (a typed listener's pair of
/// host function and `user_data`).
pub(crate) type Keep = Box<dyn std::any::Any + Send + Sync>;

/// Why an event was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitError {
    /// This thread is not bound to a context (see [`Sink`]).
    NoContext,
    /// The bound context serves another library.
    WrongLibrary,
    /// The context is being destroyed.
    Closed,
    /// The event ring was full under [`EventPolicy::DropNewest`] (counted).
    Dropped,
    /// The event could not be encoded.
    Encode,
}

impl std::fmt::Display for EmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EmitError::NoContext => "no context is bound to this thread",
            EmitError::WrongLibrary => "the bound context serves another library",
            EmitError::Closed => "the context is being destroyed",
            EmitError::Dropped => "the event ring is full: event dropped",
            EmitError::Encode => "the event could not be encoded",
        })
    }
}

impl std::error::Error for EmitError {}

struct Listener {
    id: u64,
    /// `None`: every event.
    event: Option<u16>,
    view: ListenerView,
    callback: Callback,
    user_data: UserData,
    active: AtomicBool,
    /// Freed with the listener: once removed, after the event thread's snapshot that
    /// may be calling it is gone.
    _keep: Option<Keep>,
}

impl Listener {
    /// Event thread: announces the call, then checks that the listener is still live.
    /// End the call with `calling.store(0, Release)`.
    #[inline]
    fn begin_call(&self, calling: &AtomicU64) -> bool {
        // Release: a monitor that reads this id (Acquire) also sees the call's number,
        // stored just before (see `EventHub::current_call`).
        calling.store(self.id, Ordering::Release);
        fence(Ordering::SeqCst);
        self.active.load(Ordering::Relaxed)
    }

    /// Remover: marks the listener dead, then (`wait`) waits out a call in progress.
    fn deactivate(&self, calling: &AtomicU64, wait: bool) {
        self.active.store(false, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        // Acquire pairs with the Release that ends a call: the call happened before
        // remove returns.
        while wait && calling.load(Ordering::Acquire) == self.id {
            crate::sync::yield_now();
        }
    }
}

struct Event {
    id: u16,
    payload: Payload,
}

/// A context's event ring, listeners and delivery state.
pub(crate) struct EventHub {
    ring: TagRing<Event>,
    wake: WorkerWake,
    space: SpaceWait,
    policy: EventPolicy,
    spin: Duration,
    /// Emitting refused (destroy).
    closed: AtomicBool,
    /// The event thread exits once the ring is empty.
    stop: AtomicBool,
    library: TypeId,
    descs: &'static [EventDesc],
    listeners: std::sync::Mutex<Vec<Arc<Listener>>>,
    /// Bumped on every change of `listeners`.
    version: AtomicU64,
    live: AtomicUsize,
    next_id: AtomicU64,
    /// The listener being called (its id), 0 between calls.
    calling: CachePadded<AtomicU64>,
    /// Events popped, and listener calls made (the event thread's).
    popped: OwnedCounter,
    delivered: OwnedCounter,
    dropped: SharedCounter,
    /// Set by emitters, cleared by the worker (see `take_fresh`).
    fresh: AtomicBool,
    /// Numbers the listener calls (see `current_call`).
    call_seq: OwnedCounter,
    /// `POLL_EVENTS`: events go to the host's poll through this outbox, not to the ring
    /// and its listeners.
    to_poll: Option<Arc<Outbox>>,
    /// Events queued for the host's poll.
    polled: SharedCounter,
}

impl EventHub {
    pub(crate) fn new<L: Library>(
        capacity: usize,
        policy: EventPolicy,
        spin: Duration,
        to_poll: Option<Arc<Outbox>>,
    ) -> Option<EventHub> {
        Some(EventHub {
            ring: TagRing::try_new(capacity)?,
            wake: WorkerWake::new(WakeBackend::Futex),
            space: SpaceWait::new(),
            policy,
            spin,
            closed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            library: TypeId::of::<L>(),
            descs: L::EVENTS,
            listeners: std::sync::Mutex::new(Vec::new()),
            version: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            calling: CachePadded::new(AtomicU64::new(0)),
            popped: OwnedCounter::default(),
            delivered: OwnedCounter::default(),
            dropped: SharedCounter::default(),
            fresh: AtomicBool::new(false),
            call_seq: OwnedCounter::default(),
            to_poll,
            polled: SharedCounter::default(),
        })
    }

    /// Whether events were queued since the last call (the worker's question, after
    /// each batch: a load of a line it rarely shares, and a store only when true).
    #[inline]
    pub(crate) fn take_fresh(&self) -> bool {
        let fresh = self.fresh.load(Ordering::Relaxed);
        if fresh {
            self.fresh.store(false, Ordering::Relaxed);
        }
        fresh
    }

    /// (emitted, dropped, delivered) for the stats.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let emitted = self.popped.get() + self.ring.len() as u64 + self.polled.get();
        (emitted, self.dropped.get(), self.delivered.get())
    }

    /// The listener call in progress, for the monitor's stuck-listener check: (the
    /// call's sequence number, the listener's id). The number is published before the
    /// call starts, so it stays the same for the whole call.
    pub(crate) fn current_call(&self) -> Option<(u64, u64)> {
        let id = self.calling.load(Ordering::Acquire);
        (id != 0).then(|| (self.call_seq.get(), id))
    }

    fn emit(&self, event: u16, write: impl FnOnce(&mut Vec<u8>) -> bool) -> Result<(), EmitError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(EmitError::Closed);
        }
        if let Some(outbox) = &self.to_poll {
            return self.emit_to_poll(outbox, event, write);
        }
        if self.live.load(Ordering::Relaxed) == 0 {
            return Ok(()); // nobody listens: nothing to deliver
        }
        let payload = SCRATCH.with(|s| {
            let mut buf = s.borrow_mut();
            buf.clear();
            write(&mut buf).then(|| Payload::copy_from(&buf))
        });
        let mut ev = Event {
            id: event,
            payload: payload.ok_or(EmitError::Encode)?,
        };
        loop {
            match self.ring.push(ev) {
                Ok(_) => {
                    self.wake.notify();
                    if !self.fresh.load(Ordering::Relaxed) {
                        self.fresh.store(true, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Err(back) => ev = back,
            }
            if self.policy == EventPolicy::DropNewest || thread_role() == ThreadRole::Events {
                self.dropped.bump();
                return Err(EmitError::Dropped);
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(EmitError::Closed);
            }
            self.space
                .wait(|| self.ring.is_full() && !self.closed.load(Ordering::Relaxed));
        }
    }

    /// `POLL_EVENTS`: queues the event, as its `{"event", "payload"}` CBOR, for the
    /// host's poll. A full completion queue drops it under `DropNewest` and makes the
    /// emitter wait for the host's poll under `Block`.
    fn emit_to_poll(
        &self,
        outbox: &Outbox,
        event: u16,
        write: impl FnOnce(&mut Vec<u8>) -> bool,
    ) -> Result<(), EmitError> {
        let name = self.descs[event as usize].name;
        SCRATCH.with(|s| {
            let mut buf = s.borrow_mut();
            buf.clear();
            let head = Encoder::new(&mut *buf)
                .map(2)
                .and_then(|e| e.str("event")?.str(name)?.str("payload"))
                .is_ok();
            if !head || !write(&mut buf) {
                return Err(EmitError::Encode);
            }
            buf.push(0);
            if outbox.queue_event(event, &buf, self.policy == EventPolicy::Block) {
                self.polled.bump();
                Ok(())
            } else {
                self.dropped.bump();
                Err(EmitError::Dropped)
            }
        })
    }

    /// Adds a listener; returns its id (never 0).
    pub(crate) fn add(
        &self,
        event: Option<u16>,
        view: ListenerView,
        callback: Callback,
        user_data: *mut c_void,
        keep: Option<Keep>,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let listener = Arc::new(Listener {
            id,
            event,
            view,
            callback,
            user_data: UserData(user_data),
            active: AtomicBool::new(true),
            _keep: keep,
        });
        let mut table = crate::sync::lock(&self.listeners);
        table.push(listener);
        self.live.store(table.len(), Ordering::Relaxed);
        // Relaxed would do: the event thread reads the table under the lock, which
        // orders its contents; the version only says a re-read is due.
        self.version.fetch_add(1, Ordering::Relaxed);
        id
    }

    /// Removes a listener. Once this returns, it is never called again.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut table = crate::sync::lock(&self.listeners);
        let Some(i) = table.iter().position(|l| l.id == id) else {
            return false;
        };
        let listener = table.remove(i);
        self.live.store(table.len(), Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Relaxed); // as in `add`
        drop(table);
        // On the event thread (inside a callback) there is nothing to wait for: the
        // thread checks `active` before every later call.
        let wait = thread_role() != ThreadRole::Events;
        listener.deactivate(&self.calling, wait);
        true
    }

    /// Destroy, once the worker is gone: refuse emitters, release the blocked ones, and
    /// tell the event thread to deliver what is queued and exit.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.space.notify();
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify();
    }

    /// After the event thread is joined: forget every listener.
    pub(crate) fn clear(&self) {
        let mut table = crate::sync::lock(&self.listeners);
        for l in table.iter() {
            l.active.store(false, Ordering::SeqCst);
        }
        table.clear();
        self.live.store(0, Ordering::Relaxed);
    }
}

thread_local! {
    /// The event hub this thread emits into: its context's, set on the worker for its
    /// whole life, and on any thread inside [`Sink::enter`].
    static CURRENT: RefCell<Option<Arc<EventHub>>> = const { RefCell::new(None) };
    /// The emitter's encoding buffer.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Binds this thread to `hub` and returns the previous binding.
pub(crate) fn bind(hub: Option<Arc<EventHub>>) -> Option<Arc<EventHub>> {
    CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), hub))
}

/// Emits event `event` (an index into `L::EVENTS`) on the context bound to this
/// thread. The generated `#[ffi(event)]` functions call this.
pub fn emit<L: Library, T: Answer + ?Sized>(event: u16, value: &T) -> Result<(), EmitError> {
    CURRENT.with(|c| {
        let bound = c.borrow();
        let hub = bound.as_ref().ok_or(EmitError::NoContext)?;
        if hub.library != TypeId::of::<L>() || event as usize >= hub.descs.len() {
            return Err(EmitError::WrongLibrary);
        }
        hub.emit(event, |buf| value.cbor(&mut Encoder::new(buf)).is_ok())
    })
}

/// A handle on a context's events that a library moves to its own threads, so that
/// the `#[ffi(event)]` functions work there too: take it with [`Sink::current`] in a
/// handler (or the constructor), then call [`Sink::enter`] on the other thread.
///
/// A sink keeps the context's event hub (its event ring and listener table) alive, not
/// the context: once the context is destroyed, emitting through it fails with
/// [`EmitError::Closed`].
#[derive(Clone)]
pub struct Sink(Arc<EventHub>);

impl Sink {
    /// The context bound to this thread (inside a handler: the handler's context).
    pub fn current() -> Option<Sink> {
        CURRENT.with(|c| c.borrow().clone().map(Sink))
    }

    /// Binds this thread to the sink's context until the guard is dropped.
    pub fn enter(&self) -> SinkGuard {
        SinkGuard(bind(Some(self.0.clone())))
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

/// Restores the thread's previous binding when dropped.
#[must_use = "the thread is bound only while the guard lives"]
pub struct SinkGuard(Option<Arc<EventHub>>);

impl Drop for SinkGuard {
    fn drop(&mut self) {
        bind(self.0.take());
    }
}

/// The event thread's body: deliver until destroy stops it and the ring is empty.
pub(crate) fn run(hub: Arc<EventHub>) {
    let hub = &*hub;
    let mut delivery = Delivery {
        snapshot: Vec::new(),
        version: u64::MAX,
        native: Reply::new(None),
        owned: Reply::new(None),
        cbor: Vec::new(),
        envelope: Vec::new(),
    };
    // Spin only right after delivering: an event thread that has had nothing to do
    // parks at once, so that it never holds a core that the worker or the host needs
    // (at create, its spin would push the new worker onto the host's core).
    let mut busy = false;
    loop {
        let mut handled = 0;
        // SAFETY: this thread is the event ring's only consumer.
        while let Some(ev) = unsafe { hub.ring.pop() } {
            hub.popped.bump();
            delivery.deliver(hub, &ev);
            handled += 1;
            if handled == 64 {
                break;
            }
        }
        if handled > 0 {
            hub.space.notify();
            busy = true;
            continue;
        }
        if hub.stop.load(Ordering::Acquire) && hub.ring.is_empty() {
            break;
        }
        let spin = if std::mem::take(&mut busy) {
            hub.spin
        } else {
            Duration::ZERO
        };
        if !crate::sync::spin::spin_until(spin, || {
            !hub.ring.is_empty() || hub.stop.load(Ordering::Relaxed)
        })
        .found
        {
            hub.wake
                .park(|| !hub.ring.is_empty() || hub.stop.load(Ordering::SeqCst));
        }
    }
}

/// The event thread's reusable buffers and listener snapshot.
struct Delivery {
    snapshot: Vec<Arc<Listener>>,
    version: u64,
    native: Reply,
    /// Encodes the owned blocks of typed listeners.
    owned: Reply,
    cbor: Vec<u8>,
    envelope: Vec<u8>,
}

impl Delivery {
    fn deliver(&mut self, hub: &EventHub, ev: &Event) {
        // Relaxed: a change is seen by a later event at the latest, and the lock orders
        // the table's contents. `remove` does not rely on it: it waits on `calling` and
        // clears `active`, which the thread checks before every call.
        let version = hub.version.load(Ordering::Relaxed);
        if version != self.version {
            self.snapshot = crate::sync::lock(&hub.listeners).clone();
            self.version = version;
        }
        let wants = |v: ListenerView| {
            self.snapshot
                .iter()
                .any(|l| l.view == v && l.event.is_none_or(|e| e == ev.id))
        };
        let (want_native, want_cbor, want_envelope) = (
            wants(ListenerView::Native),
            wants(ListenerView::Cbor),
            wants(ListenerView::Envelope),
        );
        let desc = &hub.descs[ev.id as usize];
        let payload = ev.payload.as_slice();
        if want_cbor {
            self.cbor.clear();
            self.cbor.extend_from_slice(payload);
            self.cbor.push(0);
        }
        if want_envelope {
            self.envelope.clear();
            let mut e = Encoder::new(&mut self.envelope);
            let _ = e
                .map(2)
                .and_then(|e| e.str("event")?.str(desc.name)?.str("payload"));
            self.envelope.extend_from_slice(payload);
            self.envelope.push(0);
        }
        let native: (c_int, &[u8]) = if want_native {
            self.native.start(Kind::Native);
            let result = (desc.native)(payload, &mut self.native);
            self.native.outcome(result)
        } else {
            (RET_OK, &[0])
        };
        for l in &self.snapshot {
            if l.event.is_some_and(|e| e != ev.id) {
                continue;
            }
            // A typed listener's block is encoded for this call only (the callback takes
            // it over), before the call is announced: the encoding is the library's code.
            let owned = (l.view == ListenerView::Owned).then(|| {
                self.owned.start(Kind::Owned);
                let result = (desc.native)(payload, &mut self.owned);
                self.owned.outcome(result)
            });
            let (ret, bytes) = match (l.view, owned) {
                (_, Some(owned)) => owned,
                (ListenerView::Native, _) => native,
                (ListenerView::Cbor, _) => (RET_OK, &self.cbor[..]),
                (ListenerView::Envelope | ListenerView::Owned, _) => (RET_OK, &self.envelope[..]),
            };
            hub.call_seq.bump();
            if l.begin_call(&hub.calling) {
                hub.delivered.bump();
                deliver(l.callback, l.user_data.0, ret, bytes);
            } else if l.view == ListenerView::Owned && ret == RET_OK {
                // Removed meanwhile: the block is nobody's; free it.
                // SAFETY: the owned view's message, never handed to the callback.
                drop(unsafe { crate::egress::owned::Owned::adopt(&bytes[..bytes.len() - 1]) });
            }
            hub.calling.store(0, Ordering::Release);
        }
    }
}

/// The remove handshake, model-checked with loom (`scripts/loom.sh`).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    unsafe extern "C" fn never(_: c_int, _: *const std::ffi::c_char, _: usize, _: *mut c_void) {}

    #[test]
    fn a_removed_listener_is_never_called_after_remove_returns() {
        crate::sync::model("listener call vs remove", || {
            let listener = Arc::new(Listener {
                id: 1,
                event: None,
                view: ListenerView::Cbor,
                callback: never,
                user_data: UserData(std::ptr::null_mut()),
                active: AtomicBool::new(true),
                _keep: None,
            });
            let calling = Arc::new(AtomicU64::new(0));
            let removed = Arc::new(AtomicBool::new(false));
            let events = {
                let (listener, calling, removed) =
                    (listener.clone(), calling.clone(), removed.clone());
                thread::spawn(move || {
                    for _ in 0..2 {
                        if listener.begin_call(&calling) {
                            // The "callback": it must not run once remove has returned.
                            assert!(!removed.load(Ordering::SeqCst), "called after remove");
                        }
                        calling.store(0, Ordering::Release);
                    }
                })
            };
            listener.deactivate(&calling, true);
            removed.store(true, Ordering::SeqCst);
            events.join().unwrap();
        });
    }
}
