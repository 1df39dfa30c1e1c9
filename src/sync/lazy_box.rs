//! A `static` value made on first use and freed only when the library is unloaded: a
//! boxed value published once by compare-and-swap. Two threads may both build one on
//! first use; the loser drops its own. The payload buffer pool and the blocking calls'
//! spare slots live in one each.
//!
//! A `std` atomic, not `crate::sync`'s: `static`s need `const` constructors, which
//! loom's atomics lack (see the exceptions in `sync/mod.rs`).

use std::sync::atomic::{AtomicPtr, Ordering};

/// See the module docs.
pub(crate) struct LazyBox<T> {
    ptr: AtomicPtr<T>,
}

impl<T> LazyBox<T> {
    /// Empty.
    pub(crate) const fn new() -> Self {
        LazyBox {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The value, made with `make` the first time.
    #[inline]
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> T) -> &T {
        // Acquire pairs with the publishing CAS in `publish`.
        let current = self.ptr.load(Ordering::Acquire);
        // SAFETY: a non-null pointer is a published, fully built `T` that only `take`
        // frees, when nothing can use it any more (its contract).
        match unsafe { current.as_ref() } {
            Some(v) => v,
            None => self.publish(make()),
        }
    }

    #[cold]
    fn publish(&self, value: T) -> &T {
        let fresh = Box::into_raw(Box::new(value));
        let null = std::ptr::null_mut();
        match self
            .ptr
            .compare_exchange(null, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // SAFETY: just published; see `get_or_init`.
            Ok(_) => unsafe { &*fresh },
            Err(first) => {
                // SAFETY: ours, never published; `first` won and is published.
                unsafe {
                    drop(Box::from_raw(fresh));
                    &*first
                }
            }
        }
    }

    /// Forgets the value without freeing it (a fork child, where a parent thread may
    /// have been using it): the next use makes a new one.
    pub(crate) fn forget(&self) {
        self.ptr.store(std::ptr::null_mut(), Ordering::Relaxed);
    }

    /// Takes the value out, to free it.
    ///
    /// # Safety
    /// Nothing uses the value during or after the call, through a reference
    /// `get_or_init` returned included (the library is being unloaded).
    pub(crate) unsafe fn take(&self) -> Option<Box<T>> {
        let current = self.ptr.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: published by `publish` and unreachable from now on (the contract).
        (!current.is_null()).then(|| unsafe { Box::from_raw(current) })
    }
}
