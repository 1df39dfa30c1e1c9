//! Live counters of a context, cheap enough to poll.
//!
//! None of them is written on a producer's hot path. `accepted` is derived from what the
//! worker has popped plus what is still queued; the worker's own counters have a single
//! writer, so they are plain relaxed load-and-store pairs on a line only the worker
//! writes; counters that several threads bump (`refused`, deferred completions, dropped
//! events) are touched only on paths that already left the fast lane.

use crossbeam_utils::CachePadded;

use crate::abi::ffid_context_stats;
use crate::sync::{AtomicU64, Ordering};

/// A counter with one writing thread: an increment is a load and a store, no locked
/// instruction. Readers on other threads see a recent value.
#[derive(Default)]
pub(crate) struct OwnedCounter(AtomicU64);

impl OwnedCounter {
    /// Adds one. Only the owning thread may call it.
    #[inline]
    pub(crate) fn bump(&self) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    /// Raises the value to `v` if it is lower. Only the owning thread may call it.
    #[inline]
    pub(crate) fn raise(&self, v: u64) {
        if v > self.0.load(Ordering::Relaxed) {
            self.0.store(v, Ordering::Relaxed);
        }
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A counter any thread may bump (off the hot path).
#[derive(Default)]
pub(crate) struct SharedCounter(AtomicU64);

impl SharedCounter {
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
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
}

/// Every counter of a context.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) worker: CachePadded<WorkerCounters>,
    pub(crate) refused: SharedCounter,
    /// Terminal callbacks delivered by deferred replies (either by their completer or
    /// by destroy).
    pub(crate) deferred_answered: SharedCounter,
    pub(crate) stale_pings: SharedCounter,
}

/// A snapshot of a context's counters: the C struct itself, which the Rust API returns
/// too (see [`ffid_context_stats`] for each field's meaning). `struct_size` is its full
/// size and `reserved` is 0.
pub type Stats = ffid_context_stats;
