//! The atomics the concurrency protocols use, in one place, so that a `loom` build
//! (`RUSTFLAGS="--cfg loom"`) substitutes its model-checked types without touching the
//! protocol code. See `scripts/loom.sh`.
//!
//! The exceptions are `static`s, which need `const` constructors that loom's atomics do
//! not have: the registry's chunk table and fork count, the `LazyBox`es (the payload
//! pool's classes, the blocking calls' spares), the static context of a library's
//! static methods, and the unload flags. No model covers
//! them; each is a publish-once pointer or a counter read with its own comment.

pub(crate) mod answer_slot;
pub(crate) mod counter;
pub(crate) mod lazy_box;
pub(crate) mod ring;
pub(crate) mod spares;
pub(crate) mod spin;
pub(crate) mod wake;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

/// Lets another thread run while this one waits for it (a real yield under loom, which
/// needs one in every spin loop).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Runs a loom model and prints how many interleavings it explored.
#[cfg(all(test, loom))]
pub(crate) fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    loom::model(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom model `{name}`: {} interleavings",
        runs.load(Ordering::Relaxed)
    );
}

/// A mutex for the protocols' small tables: `std`'s, or loom's under loom. `std`'s
/// (a futex word on Linux) keeps no global table, so an unloaded library leaves nothing
/// behind; a panic while holding it never poisons the runtime (the tables stay valid).
#[derive(Default)]
pub(crate) struct Mutex<T>(
    #[cfg(not(loom))] std::sync::Mutex<T>,
    #[cfg(loom)] loom::sync::Mutex<T>,
);

impl<T> Mutex<T> {
    #[cfg(not(loom))]
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        lock(&self.0)
    }
    #[cfg(loom)]
    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

/// Locks a `std` mutex, ignoring poison: what the runtime guards stays consistent
/// whatever panicked while holding it.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on a `std` condition variable for at most `timeout`, ignoring poison as
/// [`lock`] does.
pub(crate) fn wait_timeout<'a, T>(
    cv: &std::sync::Condvar,
    guard: std::sync::MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> std::sync::MutexGuard<'a, T> {
    match cv.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}
