//! A one-shot answer slot: a blocking call's host thread waits on it; the thread that
//! answers the request (the worker, or whoever completes a deferred reply) fills it.
//! The waiter may give up at its deadline; then the value filled later goes back to the
//! filler to dispose of. Either way the value has exactly one owner.
//!
//! ```text
//!   PENDING --waiter, about to sleep--> SLEEPING
//!   PENDING | SLEEPING --filler--> DONE              (the filler wakes a SLEEPING waiter)
//!   PENDING | SLEEPING --waiter, past its deadline--> ABANDONED
//!   DONE --waiter, past its deadline, finding the value came--> ABANDONED (the waiter
//!        takes the value all the same: its swap saw DONE)
//! ```
//!
//! Who touches `value`: the filler writes it before its swap to `DONE` (Release); the
//! waiter reads it only after seeing `DONE` (Acquire). When the filler's swap finds
//! `ABANDONED` the waiter is gone for good and the filler takes the value back.
//!
//! The slot itself changes hands the same way: after `DONE` it is the waiter's (the
//! filler may still be returning from its futex wake, which only names the word's
//! address), after `ABANDONED` the filler's, once `fill` has returned. Its memory must
//! outlive both, so the owner recycles a slot rather than freeing it while a filler
//! might still be inside `fill` (`lifecycle/sync_call.rs` keeps spares).

use std::cell::UnsafeCell;
use std::time::{Duration, Instant};

use crate::sync::wake::futex;
use crate::sync::{AtomicU32, Ordering};

const PENDING: u32 = 0;
const SLEEPING: u32 = 1;
const DONE: u32 = 2;
const ABANDONED: u32 = 3;

/// See the module docs.
pub(crate) struct AnswerSlot<T> {
    state: AtomicU32,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: `value` is written by the filler before its Release swap to `DONE` and read
// by the waiter after its Acquire load of `DONE`, or taken back by the filler when the
// waiter abandoned the slot; never by both. `T` crosses threads once.
unsafe impl<T: Send> Sync for AnswerSlot<T> {}

impl<T> AnswerSlot<T> {
    pub(crate) fn new() -> Self {
        AnswerSlot {
            state: AtomicU32::new(PENDING),
            value: UnsafeCell::new(None),
        }
    }

    /// Makes a slot whose value was taken ready for another call. Its owner calls it:
    /// the waiter that took the value, or the filler the waiter left it to.
    pub(crate) fn reset(&self) {
        self.state.store(PENDING, Ordering::Relaxed);
    }

    /// Fills the slot (once). Returns the value back when the waiter gave up; the slot
    /// is then the filler's.
    pub(crate) fn fill(&self, v: T) -> Option<T> {
        // SAFETY: before `DONE` only the filler touches `value` (module docs).
        unsafe { *self.value.get() = Some(v) };
        // Release publishes `value`; Acquire pairs with the waiter's abandoning swap.
        match self.state.swap(DONE, Ordering::AcqRel) {
            SLEEPING => {
                futex::wake_all(&self.state);
                None
            }
            // SAFETY: the waiter abandoned the slot and never reads it again.
            ABANDONED => unsafe { (*self.value.get()).take() },
            _ => None,
        }
    }

    /// Waits for the value: spins for up to `spin`, then sleeps on the futex until it
    /// comes or `timeout` (from the call; `None`: none) has passed. `None` when it
    /// passed: the slot is abandoned and the value, when it comes, goes back to the
    /// filler. The clock is read only once the spin is over (a quick answer costs no
    /// clock read).
    pub(crate) fn wait(&self, spin: Duration, timeout: Option<Duration>) -> Option<T> {
        let done = || self.state.load(Ordering::Acquire) == DONE;
        let spun = crate::sync::spin::spin_until(spin, done);
        if spun.found {
            return self.take();
        }
        let deadline = timeout.map(|t| {
            let now = Instant::now();
            now.checked_add(t.saturating_sub(spun.spun)).unwrap_or(now)
        });
        self.sleep(deadline)
    }

    #[cold]
    fn sleep(&self, deadline: Option<Instant>) -> Option<T> {
        loop {
            match self.state.compare_exchange(
                PENDING,
                SLEEPING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) | Err(SLEEPING) => {}
                Err(_) => return self.take(), // DONE
            }
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return self.give_up(),
                },
            };
            futex::wait(&self.state, SLEEPING, left);
            if self.state.load(Ordering::Acquire) == DONE {
                return self.take();
            }
        }
    }

    /// Past the deadline: abandons the slot, unless the value came meanwhile.
    fn give_up(&self) -> Option<T> {
        // Acquire: a `DONE` seen here published `value`.
        match self.state.swap(ABANDONED, Ordering::AcqRel) {
            DONE => self.take(),
            _ => None,
        }
    }

    fn take(&self) -> Option<T> {
        // SAFETY: `DONE` was seen with Acquire: the filler wrote `value` and is done
        // with it; the waiter is its only reader.
        unsafe { (*self.value.get()).take() }
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;

    /// The filler races a waiter whose deadline may pass at any moment (loom's futex
    /// returns at once for a timed wait): the value ends with exactly one owner.
    #[test]
    fn a_filled_value_has_exactly_one_owner() {
        crate::sync::model("answer slot, filler vs a waiter that may time out", || {
            let slot = Arc::new(AnswerSlot::<u32>::new());
            let filler = {
                let slot = slot.clone();
                loom::thread::spawn(move || slot.fill(7))
            };
            let waited = slot.wait(Duration::ZERO, Some(Duration::ZERO));
            let returned = filler.join().unwrap();
            assert!(
                waited.is_some() != returned.is_some(),
                "waited {waited:?}, returned {returned:?}"
            );
            assert_eq!(waited.or(returned), Some(7));
        });
    }

    /// Without a deadline the waiter always gets the value (and sleeps through no
    /// lost wake).
    #[test]
    fn a_waiter_without_deadline_gets_the_value() {
        crate::sync::model("answer slot, filler vs a patient waiter", || {
            let slot = Arc::new(AnswerSlot::<u32>::new());
            let filler = {
                let slot = slot.clone();
                loom::thread::spawn(move || slot.fill(7))
            };
            assert_eq!(slot.wait(Duration::ZERO, None), Some(7));
            assert_eq!(filler.join().unwrap(), None);
        });
    }
}
