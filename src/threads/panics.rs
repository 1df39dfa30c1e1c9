//! Panics caught on the runtime's threads stay off the host's stderr.
//!
//! A library embedded in a host must not write to the host's stderr uninvited, but
//! Rust's default panic hook prints every panic there (with a backtrace under
//! `RUST_BACKTRACE`), also those the runtime catches and answers `ERR`. So the first
//! create installs a hook, once per copy of this crate (each cdylib has its own `std`
//! and so its own hook): on a context's own threads it only notes where the panic
//! happened, for the `DIAG_PANIC` report the catching site sends
//! (`Outbox::report_panic`). Every panic on those threads is
//! caught: by the handler, constructor, teardown and task sites, and by the thread's
//! body as a last resort (`threads::spawn`). A host thread running an inline export's
//! handler counts as one of those threads for as long (`quietly`). Any other thread's panic, and every panic
//! with `panic = "abort"` (which ends the process), goes to the hook that was installed
//! before, as if this one were not there.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::Once;

use crate::threads::{thread_role, ThreadRole};

thread_local! {
    /// Where the last panic on this context thread happened, until reported.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Set while a host thread runs a handler of an inline export, whose panics are
    /// caught and answered like the worker's.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a handler, under `catch_unwind`) on a host thread with its panics kept
/// off the host's stderr.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let before = QUIET.with(|q| q.replace(true));
    let r = f();
    QUIET.with(|q| q.set(before));
    r
}

/// Installs the quiet hook (once).
pub(crate) fn keep_quiet() {
    static INSTALL: Once = Once::new();
    if std::thread::panicking() {
        return; // `set_hook` may not run while panicking; a later create installs it
    }
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // With `panic = "abort"` nothing is caught and the process ends here: say why.
            let host = thread_role() == ThreadRole::Host;
            let quiet = QUIET.with(|q| q.get());
            if (host && !quiet) || cfg!(panic = "abort") {
                return previous(info);
            }
            if host {
                // An inline export's handler: its answer says what panicked, and a
                // location kept here would leave a thread-local destructor on the
                // host's thread (which keeps the library loaded while it lives).
                return;
            }
            let at = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            LOCATION.with(|cell| {
                if let Ok(mut slot) = cell.try_borrow_mut() {
                    *slot = at;
                }
            });
        }));
    });
}

/// At unload: puts the default hook back, freeing this one (see `lifecycle/unload.rs`).
pub(crate) fn release() {
    if !std::thread::panicking() {
        drop(std::panic::take_hook());
    }
}

/// Where the panic being reported happened, if the hook saw it.
pub(crate) fn take_location() -> Option<String> {
    LOCATION.with(|cell| cell.try_borrow_mut().ok().and_then(|mut slot| slot.take()))
}

/// A panic payload's message.
pub(crate) fn message(panic: &(dyn Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}
