//! The atomics the concurrency protocols use, in one place, so that a `loom` build can
//! substitute its own model-checked types without touching the protocol code.

pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
