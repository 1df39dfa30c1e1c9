//! What the library gives back when it is unloaded.
//!
//! A cdylib's statics are not dropped by `dlclose`, so whatever they point to on the
//! heap would stay behind, and a host that unloads and reloads the library would leak
//! it each time. The heap-owning statics are the registry's slot chunks and free list,
//! the payload buffer pool and the quiet panic hook; the futex word and `std`'s mutexes
//! hold no global table (`parking_lot`'s would). A destructor in `.fini_array` (run by
//! `dlclose`, and by `exit`) frees them, but only when no context is live: with one still
//! running (the static methods' context lives for the process) the memory is in use and
//! stays.

/// Runs when the shared object is unloaded or the process exits (registered only on
/// Linux, outside Miri, which models no `.fini_array`).
#[cfg_attr(any(miri, not(target_os = "linux")), allow(dead_code))]
extern "C" fn release_at_unload() {
    // SAFETY: the header's contract for unloading: every context is destroyed and no
    // call is in progress, so nothing reads the registry or the pool any more (a
    // library thread still answering a deferred reply of a destroyed context would:
    // the library must have ended its own threads); `registry::release` itself checks
    // that no context is live.
    unsafe {
        if crate::registry::release() {
            crate::envelope::pool::release();
            crate::panics::release();
        }
    }
}

#[cfg(all(target_os = "linux", not(miri)))]
#[used]
#[link_section = ".fini_array"]
static RELEASE_AT_UNLOAD: extern "C" fn() = release_at_unload;
