//! The worker's board: what it is running (for the monitor's pings), the requests a
//! host asked to cancel, and the worker's counters. The worker writes it; the monitor,
//! `cancel` and `stats` read it through the context.

use std::ffi::c_void;

use crossbeam_utils::CachePadded;

use crate::abi::Callback;
use crate::egress::gate::PingGate;
use crate::envelope::{Envelope, Kind, Recipient};
use crate::ffi::host::UserData;
use crate::sync::counter::OwnedCounter;
use crate::sync::{fence, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// The worker's board, one per context.
#[derive(Default)]
pub(crate) struct Board {
    pub(crate) running: CachePadded<Running>,
    pub(crate) cancels: Cancels,
    pub(crate) counters: CachePadded<WorkerCounters>,
}

/// The worker's counters, on their own cache line.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    /// Requests popped.
    pub(crate) popped: OwnedCounter,
    /// Terminal callbacks the worker delivered.
    pub(crate) answered: OwnedCounter,
    pub(crate) high_water: OwnedCounter,
    pub(crate) spin_hits: OwnedCounter,
    pub(crate) parks: OwnedCounter,
    pub(crate) panics: OwnedCounter,
    pub(crate) cancelled: OwnedCounter,
    /// Async tasks' wake markers popped (not host requests).
    pub(crate) task_wakes: OwnedCounter,
    /// Time spun while idle, in ns.
    pub(crate) idle_spin_ns: OwnedCounter,
    /// Sleeps a request ended within `AVOIDABLE_WAKE` (`worker/mod.rs`).
    pub(crate) avoidable_wakes: OwnedCounter,
}

/// The request the worker is running, for the monitor: its gate, and where its pings go.
/// Written by the worker per request (relaxed stores before the gate's `begin`, which
/// publishes them); read by the monitor only while it holds the gate.
pub(crate) struct Running {
    pub(crate) gate: PingGate,
    /// The callback and `user_data`, kept as pointers (not integers) so that they keep
    /// their provenance on the way to the monitor.
    callback: AtomicPtr<c_void>,
    user_data: AtomicPtr<c_void>,
    /// `method | kind << 16`.
    method: AtomicU32,
}

impl Default for Running {
    fn default() -> Self {
        Running {
            gate: PingGate::new(),
            callback: AtomicPtr::new(std::ptr::null_mut()),
            user_data: AtomicPtr::new(std::ptr::null_mut()),
            method: AtomicU32::new(0),
        }
    }
}

impl Running {
    #[inline]
    pub(crate) fn set(&self, env: &Envelope) {
        self.callback
            .store(env.callback as *mut c_void, Ordering::Relaxed);
        self.user_data.store(env.user_data.0, Ordering::Relaxed);
        let kind = env.kind as u32;
        self.method
            .store(env.method as u32 | kind << 16, Ordering::Relaxed);
    }

    /// Where request `id`'s pings go, if it is the running one. Call only while holding
    /// its gate.
    pub(crate) fn target(&self, id: u64) -> Recipient {
        let cb = self.callback.load(Ordering::Relaxed);
        // SAFETY: `set` stored a valid `Callback` (as a pointer, with its provenance)
        // before `begin` published it, and the gate held by the caller keeps the worker
        // from storing another.
        let callback: Callback = unsafe { std::mem::transmute::<*mut c_void, Callback>(cb) };
        Recipient {
            callback,
            user_data: UserData(self.user_data.load(Ordering::Relaxed)),
            id,
            kind: Kind::from_bits((self.method.load(Ordering::Relaxed) >> 16) as u8),
        }
    }

    pub(crate) fn method(&self) -> u16 {
        self.method.load(Ordering::Relaxed) as u16 // the low half
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
