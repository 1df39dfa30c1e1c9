//! The ingress ring: a bounded lock-free multi-producer queue, read by one worker.
//!
//! Two implementations sit behind [`Ring`]:
//!
//! - [`TagRing`] (default): the worker never writes a slot. A producer claims a position
//!   `p` by CAS on `tail`, writes the value into slot `p % n` and then the slot's tag
//!   `p + 1`. The worker, at position `h`, polls one thing: slot `h % n`'s tag. When it
//!   reads `h + 1` the value is complete; the worker moves it out and publishes `head`
//!   on its own cache line. Producers read `head` only when they reach `limit`, a bound
//!   they cache beside `tail`, i.e. about once per `capacity` pushes. A round trip thus
//!   moves one slot line to the worker and nothing back, where `ArrayQueue`'s consumer
//!   also writes a stamp into every slot (about 1.7x against 1.25x the floor here).
//! - [`ArrayRing`]: `crossbeam-queue`'s `ArrayQueue`, selectable for comparison.
//!
//! Ordering contract relied on by the wake protocol (`sync/wake.rs`): a `push` that returned
//! `Ok` before a `SeqCst` fence is seen by the worker's `is_empty` after a later
//! `SeqCst` fence, and a `pop` that returned `Some` before a fence is seen by `is_full`
//! after a later one.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

/// A bounded multi-producer queue with a single consumer.
pub(crate) trait Ring<T>: Send + Sync {
    /// Appends `value` and returns its id (its position + 1 for [`TagRing`], 0 for
    /// [`ArrayRing`], which has no positions), or hands it back when the ring is full.
    fn push(&self, value: T) -> Result<u64, T>;
    /// Removes the oldest complete value.
    ///
    /// # Safety
    /// Only one thread at a time may call `pop` (the context's worker).
    unsafe fn pop(&self) -> Option<T>;
    /// True when the consumer has nothing to pop (a snapshot).
    fn is_empty(&self) -> bool;
    /// True when no slot is free (a snapshot).
    fn is_full(&self) -> bool;
    /// Number of queued values, including claimed ones still being written (a snapshot).
    fn len(&self) -> usize;
}

/// The default ring: producers tag slots, the consumer only reads them.
pub(crate) struct TagRing<T> {
    producers: CachePadded<ProducerSide>,
    /// Next position the consumer reads. Written by the consumer after each pop
    /// (Release: the slot's value has been moved out); read by producers rarely.
    head: CachePadded<AtomicU64>,
    slots: Box<[Slot<T>]>,
    /// `slots.len() - 1`; `slots.len()` is `capacity` rounded up to a power of two.
    mask: u64,
    capacity: u64,
}

struct ProducerSide {
    /// Next position to claim.
    tail: AtomicU64,
    /// Positions below `limit` are known free: a cached `head + capacity`.
    limit: AtomicU64,
}

/// Aligned to two cache lines so that the tag, the envelope's header and a small inline
/// payload share the slot's first line.
#[repr(C, align(128))]
struct Slot<T> {
    /// `p + 1` once position `p`'s value is written (0: never written).
    tag: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: a value is written by exactly one producer (the one whose CAS claimed its
// position) and read by exactly one consumer, with the tag's Release/Acquire pair
// ordering the two; values are only moved between threads, so `T: Send` suffices.
unsafe impl<T: Send> Sync for TagRing<T> {}
// SAFETY: as above; the ring owns its values.
unsafe impl<T: Send> Send for TagRing<T> {}

impl<T> TagRing<T> {
    /// A ring of `capacity` (at least 1), or `None` when its memory cannot be had: a
    /// host asking for too much gets a refused create, never an abort.
    pub(crate) fn try_new(capacity: usize) -> Option<Self> {
        let capacity = capacity.max(1);
        let n = capacity.checked_next_power_of_two()?;
        let mut slots = Vec::new();
        slots.try_reserve_exact(n).ok()?;
        slots.extend((0..n).map(|_| Slot {
            tag: AtomicU64::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }));
        Some(TagRing {
            producers: CachePadded::new(ProducerSide {
                tail: AtomicU64::new(0),
                limit: AtomicU64::new(capacity as u64),
            }),
            head: CachePadded::new(AtomicU64::new(0)),
            slots: slots.into_boxed_slice(),
            mask: n as u64 - 1,
            capacity: capacity as u64,
        })
    }

    /// [`TagRing::try_new`] for the tests and models, where memory is not in question.
    #[cfg(test)]
    pub(crate) fn new(capacity: usize) -> Self {
        Self::try_new(capacity).expect("a small ring's memory")
    }

    /// Positions claimed so far: the id of the newest push.
    pub(crate) fn pushed(&self) -> u64 {
        self.producers.tail.load(Ordering::Acquire)
    }

    fn slot(&self, position: u64) -> &Slot<T> {
        &self.slots[(position & self.mask) as usize]
    }
}

impl<T: Send> Ring<T> for TagRing<T> {
    #[inline]
    fn push(&self, value: T) -> Result<u64, T> {
        let p = &self.producers;
        let mut tail = p.tail.load(Ordering::Relaxed);
        loop {
            if tail >= p.limit.load(Ordering::Acquire) {
                // Acquire pairs with the consumer's Release store of `head`: it has moved
                // out every value below `head`, so their slots may be overwritten. The
                // Release store of `limit` passes that on to producers that use it.
                let limit = self.head.load(Ordering::Acquire) + self.capacity;
                p.limit.store(limit, Ordering::Release);
                if tail >= limit {
                    return Err(value);
                }
            }
            match p
                .tail
                .compare_exchange_weak(tail, tail + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => tail = now,
            }
        }
        let slot = self.slot(tail);
        // SAFETY: our CAS claimed position `tail`; no other producer writes it, and the
        // consumer moved out the slot's previous value (position `tail - n`, which is
        // below `head` by the capacity check above) before publishing `head`.
        unsafe { (*slot.value.get()).write(value) };
        slot.tag.store(tail + 1, Ordering::Release);
        Ok(tail + 1)
    }

    #[inline]
    unsafe fn pop(&self) -> Option<T> {
        let head = self.head.load(Ordering::Relaxed); // only the consumer writes it
        let slot = self.slot(head);
        if slot.tag.load(Ordering::Acquire) != head + 1 {
            return None;
        }
        // SAFETY: the tag (Acquire) shows that position `head`'s value is written, and
        // the caller guarantees a single consumer, so it is moved out exactly once.
        let value = unsafe { (*slot.value.get()).assume_init_read() };
        self.head.store(head + 1, Ordering::Release);
        Some(value)
    }

    #[inline]
    fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::Acquire);
        self.slot(head).tag.load(Ordering::Acquire) != head + 1
    }

    // `is_full` and `len` are snapshots: the contract above needs only that they see
    // what a fence before them published, which the fence gives; Acquire costs nothing
    // extra on x86 and keeps them honest elsewhere.
    fn is_full(&self) -> bool {
        let tail = self.producers.tail.load(Ordering::Acquire);
        tail >= self.head.load(Ordering::Acquire) + self.capacity
    }

    fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        self.producers
            .tail
            .load(Ordering::Acquire)
            .saturating_sub(head) as usize
    }
}

impl<T> Drop for TagRing<T> {
    fn drop(&mut self) {
        // With `&mut self` no producer is mid-push: every claimed position is tagged.
        let mut head = self.head.load(Ordering::Relaxed);
        let tail = self.producers.tail.load(Ordering::Relaxed);
        while head < tail {
            let slot = &mut self.slots[(head & self.mask) as usize];
            debug_assert_eq!(slot.tag.load(Ordering::Relaxed), head + 1);
            // SAFETY: positions in head..tail hold written, not yet consumed values.
            unsafe { slot.value.get_mut().assume_init_drop() };
            head += 1;
        }
    }
}

/// [`Ring`] on `crossbeam-queue`'s `ArrayQueue` (its own orderings satisfy the contract:
/// `head`/`tail` change by `SeqCst` read-modify-writes and are read with `SeqCst` loads).
pub(crate) struct ArrayRing<T>(ArrayQueue<T>);

impl<T> ArrayRing<T> {
    /// As [`TagRing::try_new`]. `ArrayQueue` allocates infallibly, so its memory is
    /// first tried with a fallible allocation of the same size, freed at once: a create
    /// that could not have it is refused instead of aborting (short of another thread
    /// taking the memory in between).
    pub(crate) fn try_new(capacity: usize) -> Option<Self> {
        let capacity = capacity.max(1);
        let bytes = capacity.checked_mul(std::mem::size_of::<T>() + 8)?;
        Vec::<u8>::new().try_reserve_exact(bytes).ok()?;
        Some(ArrayRing(ArrayQueue::new(capacity)))
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn new(capacity: usize) -> Self {
        Self::try_new(capacity).expect("a small ring's memory")
    }
}

impl<T: Send> Ring<T> for ArrayRing<T> {
    #[inline]
    fn push(&self, value: T) -> Result<u64, T> {
        self.0.push(value).map(|()| 0)
    }
    #[inline]
    unsafe fn pop(&self) -> Option<T> {
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

/// The ring a context uses, chosen at create time (see [`crate::RingKind`]).
pub(crate) enum Ingress<T> {
    Tag(TagRing<T>),
    Array(ArrayRing<T>),
}

macro_rules! each_ring {
    ($self:ident, $r:ident => $e:expr) => {
        match $self {
            Ingress::Tag($r) => $e,
            Ingress::Array($r) => $e,
        }
    };
}

impl<T: Send> Ring<T> for Ingress<T> {
    #[inline]
    fn push(&self, value: T) -> Result<u64, T> {
        each_ring!(self, r => r.push(value))
    }
    #[inline]
    unsafe fn pop(&self) -> Option<T> {
        // SAFETY: forwarded single-consumer contract.
        each_ring!(self, r => unsafe { r.pop() })
    }
    #[inline]
    fn is_empty(&self) -> bool {
        each_ring!(self, r => r.is_empty())
    }
    #[inline]
    fn is_full(&self) -> bool {
        each_ring!(self, r => r.is_full())
    }
    fn len(&self) -> usize {
        each_ring!(self, r => r.len())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn rings(capacity: usize) -> [Ingress<Box<u64>>; 2] {
        [
            Ingress::Tag(TagRing::new(capacity)),
            Ingress::Array(ArrayRing::new(capacity)),
        ]
    }

    #[test]
    fn capacity_is_exact_and_fifo() {
        for ring in rings(3) {
            assert!(ring.is_empty());
            for i in 0..3 {
                ring.push(Box::new(i)).unwrap();
            }
            assert!(ring.is_full());
            assert_eq!(*ring.push(Box::new(9)).unwrap_err(), 9);
            assert_eq!(ring.len(), 3);
            // SAFETY: this test is the only consumer.
            assert_eq!(unsafe { ring.pop() }.map(|b| *b), Some(0));
            ring.push(Box::new(3)).unwrap();
            // SAFETY: as above.
            let rest: Vec<u64> = std::iter::from_fn(|| unsafe { ring.pop() })
                .map(|b| *b)
                .collect();
            assert_eq!(rest, [1, 2, 3]);
            assert!(ring.is_empty() && !ring.is_full());
        }
    }

    #[test]
    fn drop_frees_unconsumed_values() {
        // Miri and the sanitizers report a leak or double free here if Drop is wrong.
        for ring in rings(5) {
            for i in 0..4 {
                ring.push(Box::new(i)).unwrap();
            }
            // SAFETY: single consumer.
            drop(unsafe { ring.pop() });
        }
    }

    #[test]
    fn many_producers_one_consumer_lose_nothing() {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = if cfg!(miri) { 50 } else { 20_000 };
        for ring in rings(16) {
            let ring = Arc::new(ring);
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let ring = ring.clone();
                    std::thread::spawn(move || {
                        for i in 0..EACH {
                            let mut v = Box::new(p << 32 | i);
                            while let Err(back) = ring.push(v) {
                                v = back;
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            let mut next = [0u64; PRODUCERS as usize];
            let mut got = 0;
            while got < PRODUCERS * EACH {
                // SAFETY: this thread is the only consumer.
                match unsafe { ring.pop() } {
                    Some(v) => {
                        let (p, i) = ((*v >> 32) as usize, *v & 0xffff_ffff);
                        assert_eq!(i, next[p], "per-producer FIFO");
                        next[p] += 1;
                        got += 1;
                    }
                    None => std::thread::yield_now(),
                }
            }
            for t in producers {
                t.join().unwrap();
            }
            assert!(ring.is_empty());
        }
    }
}
