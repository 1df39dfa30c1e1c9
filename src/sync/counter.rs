//! Counters for the stats: a context's figures, cheap enough to keep on every path.

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
    /// Adds `n`. Only the owning thread may call it.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        if n > 0 {
            self.0
                .store(self.0.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        }
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
