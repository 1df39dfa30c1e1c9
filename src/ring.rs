//! The ingress ring: a bounded lock-free multi-producer queue, read by one worker.
//!
//! The runtime talks to the ring only through [`Ring`], so a ring tuned for this use
//! (for example one where the consumer never writes the slots) can replace
//! [`ArrayRing`] without touching the submit path or the worker.
//!
//! Ordering contract relied on by the wake protocol (`wake.rs`): a `push` that returned
//! `Ok` before a `SeqCst` fence is seen by `is_empty` after a later `SeqCst` fence, and a
//! `pop` that returned `Some` before a fence is seen by `is_full` after a later one.
//! `ArrayQueue` updates `head`/`tail` with `SeqCst` read-modify-writes and reads them with
//! `SeqCst` loads in `is_empty`/`is_full`, which satisfies this.

use crossbeam_queue::ArrayQueue;

/// A bounded multi-producer queue with a single consumer.
pub(crate) trait Ring<T>: Send + Sync {
    /// Appends `value`, or hands it back when the ring is full.
    fn push(&self, value: T) -> Result<(), T>;
    /// Removes the oldest value. Called only by the worker.
    fn pop(&self) -> Option<T>;
    /// True when nothing is queued (a snapshot).
    fn is_empty(&self) -> bool;
    /// True when no slot is free (a snapshot).
    fn is_full(&self) -> bool;
    /// Number of queued values (a snapshot).
    fn len(&self) -> usize;
}

/// [`Ring`] on `crossbeam-queue`'s `ArrayQueue`.
pub(crate) struct ArrayRing<T>(ArrayQueue<T>);

impl<T> ArrayRing<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        ArrayRing(ArrayQueue::new(capacity.max(1)))
    }
}

impl<T: Send> Ring<T> for ArrayRing<T> {
    #[inline]
    fn push(&self, value: T) -> Result<(), T> {
        self.0.push(value)
    }
    #[inline]
    fn pop(&self) -> Option<T> {
        self.0.pop()
    }
    #[inline]
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    #[inline]
    fn is_full(&self) -> bool {
        self.0.is_full()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}
