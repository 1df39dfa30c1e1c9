//! What the library gives back when it is unloaded.
//!
//! A cdylib's statics are not dropped by `dlclose`, so whatever they point to on the
//! heap would stay behind, and a host that unloads and reloads the library would leak
//! it each time. The heap-owning statics are the registry's slot chunks and free list,
//! the payload buffer pool, the quiet panic hook, the descriptions handed out, the
//! inline exports' spare answer buffer and the blocking calls' spare answer slots; the futex word and `std`'s mutexes
//! hold no global table (`parking_lot`'s would). A destructor in `.fini_array` frees
//! them at `dlclose`, when no context is live (with one still running, the static
//! methods' context say, the memory is in use and stays).
//!
//! The same destructor also runs at `exit`, where other threads may still be inside
//! the library: there it frees nothing. An `atexit` handler, registered when the library
//! is loaded, tells the two apart: `exit` runs `atexit` handlers before any `.fini_array`,
//! while `dlclose` runs this library's `.fini_array` entry before its `atexit` handlers
//! (`crtbegin`'s `__cxa_finalize` entry, linked first, runs last).

#![cfg_attr(any(miri, not(target_os = "linux")), allow(dead_code))]

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the process is exiting.
static EXITING: AtomicBool = AtomicBool::new(false);

extern "C" fn note_exit() {
    EXITING.store(true, Ordering::SeqCst);
}

/// Runs when the library is loaded.
extern "C" fn watch_exit() {
    // SAFETY: registers a function of this library that only stores to a static; glibc
    // removes it when the library is unloaded (it is registered with its `__dso_handle`).
    unsafe { libc::atexit(note_exit) };
}

/// Runs when the library is unloaded or the process exits.
extern "C" fn release_at_unload() {
    if EXITING.load(Ordering::SeqCst) {
        return; // other threads may still be inside: leave it all to the process's end
    }
    // SAFETY: `dlclose`, and the header's contract for unloading: every context is
    // destroyed and no call or callback is in progress, so nothing reads the registry or
    // the pool any more (a library thread still answering a deferred reply of a
    // destroyed context would: the library must have ended its own threads);
    // `registry::release` itself checks that no context is live.
    unsafe {
        if crate::lifecycle::registry::release() {
            crate::envelope::pool::release();
            crate::threads::panics::release();
            // A blocking call that timed out recycles its slot when its late answer
            // comes, a typed call its pair when its answer comes: only with no context
            // left can none come.
            crate::lifecycle::release_sync();
            crate::lifecycle::release_typed();
        }
    }
    // What no context uses, freed even when one is left (the static context, say): the
    // descriptions handed out, and the inline exports' spare buffer.
    crate::description::release();
    // SAFETY: the same contract: no call into the library, inline ones included, is in
    // progress or will be.
    unsafe { crate::lifecycle::release_inline() };
}

#[cfg(all(target_os = "linux", not(miri)))]
#[used]
#[link_section = ".init_array"]
static WATCH_EXIT: extern "C" fn() = watch_exit;

#[cfg(all(target_os = "linux", not(miri)))]
#[used]
#[link_section = ".fini_array"]
static RELEASE_AT_UNLOAD: extern "C" fn() = release_at_unload;
