//! The process-wide context that serves a library's static methods.

use std::ffi::{c_int, c_void};

use crate::abi::ffid_ctx;
use crate::lifecycle::registry;
use crate::sync::Ordering;
use crate::{Library, Options, Request};

use super::host_calls::start;

/// Where a library keeps the handle of its static methods' context (one `static` per
/// library, in generated code). Its atomics are `std`'s, not the loom shim's: a
/// `static` needs `const` constructors.
pub struct StaticContext {
    handle: std::sync::atomic::AtomicUsize,
    /// `registry::forks()` when `handle` was made: a handle from before a fork is the
    /// parent's.
    forks: std::sync::atomic::AtomicU64,
}

impl StaticContext {
    /// The handle, or 0 when there is none of this process yet. `forks` is read first
    /// (Acquire, pairing with the maker's Release stores), then `handle`.
    #[inline]
    fn current(&self) -> usize {
        let forks = self.forks.load(Ordering::Acquire);
        let handle = self.handle.load(Ordering::Acquire);
        if forks == registry::forks() {
            handle
        } else {
            0
        }
    }

    /// An empty cell: the context is made on first use.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        StaticContext {
            handle: std::sync::atomic::AtomicUsize::new(0),
            forks: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// The process-wide context that serves library `L`'s static methods, created on first
/// use and kept for the life of the process (or of a fork child: the child makes its
/// own). Null, and every call refused, while it cannot be created (no thread to be
/// had, say); the next call tries again.
#[inline]
pub fn static_context<L: Library<Config = Request>>(cell: &'static StaticContext) -> *mut ffid_ctx {
    match cell.current() {
        0 => make_static_context::<L>(cell),
        handle => handle as *mut ffid_ctx,
    }
}

#[cold]
fn make_static_context<L: Library<Config = Request>>(
    cell: &'static StaticContext,
) -> *mut ffid_ctx {
    unsafe extern "C" fn created(_: c_int, _: *const std::ffi::c_char, _: usize, _: *mut c_void) {}
    let _one_maker = crate::sync::lock(&registry::STATIC_INIT);
    if let handle @ 1.. = cell.current() {
        return handle as *mut ffid_ctx;
    }
    let ctx = start::<L>(
        Some(created),
        std::ptr::null_mut(),
        Some(Options::default()),
        || Request::native_checked(|_| Ok(())),
    )
    .unwrap_or(std::ptr::null_mut());
    if !ctx.is_null() {
        // Cleared first: a reader that sees the new `forks` sees 0 or the new handle.
        cell.handle.store(0, Ordering::Relaxed);
        cell.forks.store(registry::forks(), Ordering::Release);
        cell.handle.store(ctx as usize, Ordering::Release);
    }
    ctx
}
