//! Who a thread is, for the calls that must not block or wait on it, and the one place
//! a context's threads start and end.
//!
//! A context's own threads (worker, event thread, monitor) are marked for life; any
//! other thread is marked while the runtime calls host code on it ([`calling_host`]).
//! Either way it is "inside a callback" in the header's words ([`must_not_block`]).

pub(crate) mod panics;

use std::any::Any;
use std::cell::Cell;
use std::ffi::{c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;

use crate::abi::{ThreadHook, THREAD_EVENTS, THREAD_MONITOR, THREAD_WORKER};
use crate::ThreadHooks;

/// What kind of thread this is, for the calls that must not block or wait on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadRole {
    Host,
    Worker,
    Events,
    Monitor,
}

thread_local! {
    /// Set on the context's own threads: calls made there never block, and destroy
    /// must not run there (it would wait for itself).
    static ROLE: Cell<ThreadRole> = const { Cell::new(ThreadRole::Host) };
    /// How many calls into host code this thread is inside, where it is not one of a
    /// context's own threads (those are marked for life by `ROLE`): a library thread
    /// answering a deferred reply, a host thread draining completions or destroying.
    static HOST_CALLS: Cell<u32> = const { Cell::new(0) };
}

pub(crate) fn thread_role() -> ThreadRole {
    ROLE.with(|r| r.get())
}

/// Runs `f`, which calls host code on a thread that is not one of a context's own,
/// marked as inside a callback for its duration: calls made from there never block and
/// destroy is refused ([`must_not_block`]).
pub(crate) fn calling_host<R>(f: impl FnOnce() -> R) -> R {
    struct Unmark;
    impl Drop for Unmark {
        fn drop(&mut self) {
            HOST_CALLS.with(|d| d.set(d.get() - 1));
        }
    }
    HOST_CALLS.with(|d| d.set(d.get() + 1));
    let _unmark = Unmark;
    f()
}

/// In a fork child: its one thread is nobody's context thread and inside no callback,
/// whatever the forking thread was (a host may fork from inside a callback).
pub(crate) fn forget_thread_after_fork() {
    ROLE.with(|r| r.set(ThreadRole::Host));
    HOST_CALLS.with(|d| d.set(0));
}

/// True on a context's own threads (the worker, which also runs handlers, the event
/// thread, the monitor) and inside any callback on any other thread: "inside a
/// callback" in the header. Such a thread must never wait for the runtime, which may be
/// waiting for it: its calls get `BUSY` instead of blocking, and destroy is refused.
pub(crate) fn must_not_block() -> bool {
    thread_role() != ThreadRole::Host || HOST_CALLS.with(|d| d.get()) > 0
}

impl ThreadRole {
    /// The role and name the thread hooks are given (a host thread runs no hooks).
    fn hook_args(self) -> (c_int, &'static CStr) {
        match self {
            ThreadRole::Worker => (THREAD_WORKER, c"ffid-worker"),
            ThreadRole::Events => (THREAD_EVENTS, c"ffid-events"),
            ThreadRole::Monitor => (THREAD_MONITOR, c"ffid-monitor"),
            ThreadRole::Host => (-1, c"host"),
        }
    }
}

/// Runs the host's start or stop hook for a context thread in `role`.
fn run_hook(hooks: Option<ThreadHooks>, start: bool, role: ThreadRole) {
    let Some(hooks) = hooks else { return };
    let hook: Option<ThreadHook> = if start { hooks.start } else { hooks.stop };
    if let Some(hook) = hook {
        let (role, name) = role.hook_args();
        // SAFETY: the host gave this hook in the create options and keeps it callable
        // for the context's life; `name` is a static C string.
        unsafe { hook(role, name.as_ptr(), hooks.user_data) };
    }
}

/// Starts a context thread named `name`: marked with `role` for life, the host's start
/// hook first and its stop hook last, and `body` between. Every panic on the thread is
/// caught: one that escapes `body` goes to `escaped` (the hooks still bracket it).
pub(crate) fn spawn(
    role: ThreadRole,
    name: String,
    hooks: Option<ThreadHooks>,
    body: impl FnOnce() + Send + 'static,
    escaped: impl FnOnce(&str, &(dyn Any + Send)) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            ROLE.with(|r| r.set(role));
            run_hook(hooks, true, role);
            if let Err(panic) = catch_unwind(AssertUnwindSafe(body)) {
                escaped(&format!("the runtime's thread {name}"), &*panic);
            }
            run_hook(hooks, false, role);
        })
}
