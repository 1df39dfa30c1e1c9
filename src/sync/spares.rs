//! A `static` pool of heap cells that live until the library is unloaded: taken by a
//! call, given back when its answer is done with it, so that a steady stream of calls
//! allocates nothing. A bounded lock-free queue holds the spares; more at once than it
//! has room for go to a mutex-guarded overflow list. No cell is ever freed before
//! [`Spares::release`], so a thread still returning from a cell's last use (a futex wake
//! naming its address) never touches freed memory.
//!
//! The blocking calls' answer slots and the typed calls' callback pairs live in one each.

use std::ptr::NonNull;
use std::sync::Mutex;

use crossbeam_queue::ArrayQueue;

use super::lazy_box::LazyBox;

/// How many spares the lock-free queue holds.
const QUEUE: usize = 256;

/// A cell's address, handed from owner to owner whole.
struct Cell<T>(NonNull<T>);

// SAFETY: a cell is handed on whole (one owner at a time, see the module docs), and
// `T: Send` moves with it.
unsafe impl<T: Send> Send for Cell<T> {}

/// See the module docs.
pub(crate) struct Spares<T> {
    queue: LazyBox<ArrayQueue<Cell<T>>>,
    overflow: Mutex<Vec<Cell<T>>>,
}

impl<T: Send> Spares<T> {
    /// Empty.
    pub(crate) const fn new() -> Self {
        Spares {
            queue: LazyBox::new(),
            overflow: Mutex::new(Vec::new()),
        }
    }

    fn queue(&self) -> &ArrayQueue<Cell<T>> {
        self.queue.get_or_init(|| ArrayQueue::new(QUEUE))
    }

    /// A spare cell, or a new one made by `make`. The caller owns it until it gives it
    /// back.
    pub(crate) fn take(&self, make: impl FnOnce() -> T) -> NonNull<T> {
        let spare = self
            .queue()
            .pop()
            .or_else(|| super::lock(&self.overflow).pop());
        match spare {
            Some(c) => c.0,
            None => NonNull::from(Box::leak(Box::new(make()))),
        }
    }

    /// Gives back a cell the caller owns (reset to the state `take`'s callers expect).
    pub(crate) fn give(&self, cell: NonNull<T>) {
        if let Err(c) = self.queue().push(Cell(cell)) {
            super::lock(&self.overflow).push(c);
        }
    }

    /// At unload: frees the spares.
    ///
    /// # Safety
    /// No cell is in use or will be (the library is being unloaded): every cell taken
    /// was given back.
    pub(crate) unsafe fn release(&self) {
        let mut cells: Vec<Cell<T>> = std::mem::take(&mut *super::lock(&self.overflow));
        // SAFETY: nothing uses the queue any more (the contract above).
        if let Some(q) = unsafe { self.queue.take() } {
            cells.extend(std::iter::from_fn(|| q.pop()));
        }
        for c in cells {
            // SAFETY: each was made by `take` with `Box::leak` and is no one's now.
            drop(unsafe { Box::from_raw(c.0.as_ptr()) });
        }
    }
}
