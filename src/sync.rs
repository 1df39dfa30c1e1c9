//! The atomics the concurrency protocols use, in one place, so that a `loom` build
//! (`RUSTFLAGS="--cfg loom"`) substitutes its model-checked types without touching the
//! protocol code. See `scripts/loom.sh`.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
