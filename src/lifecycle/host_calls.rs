//! What the exports call: create, submit, cancel, destroy, drain, stats, listeners.
//! Each takes the host's raw handle and turns it into a live context, or a refusal,
//! through the registry.

use std::any::TypeId;
use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{ffid_ctx, ffid_entry, Busy, Callback, Invalid, InvalidCtx, Refusal, RET_OK};
use crate::events::ListenerView;
use crate::ffi::host::UserData;
use crate::ingress::envelope::Envelope;
use crate::ingress::request::Request;
use crate::library::Library;
use crate::lifecycle::registry;
use crate::lifecycle::stats::Stats;
use crate::options::Options;
use crate::threads::{must_not_block, ThreadRole};

use super::last_error::{refuse, set_last_error};
use super::{shut_down, Context, LAST_REQUEST_ID};
use crate::sync::wake::Wait;

/// Creates a context for library `L`: starts its threads; the worker runs
/// `L::construct` on `config()` and reports the outcome through `callback`. Returns
/// null, with no callback, when the callback is null, `config` refuses, the options are
/// invalid, or no memory, thread or registry slot can be had. Whatever it had started
/// by then is stopped and joined (the thread hooks' stop calls included) before it
/// returns null.
/// The reason is the calling thread's `ffid_last_error` until its next create.
pub fn create<L: Library>(
    callback: Option<Callback>,
    user_data: *mut c_void,
    options: Option<Options>,
    config: impl FnOnce() -> Result<L::Config, Refusal>,
) -> *mut ffid_ctx {
    match start::<L>(callback, user_data, options, config) {
        Ok(handle) => {
            set_last_error(String::new());
            handle
        }
        Err(why) => {
            set_last_error(why);
            std::ptr::null_mut()
        }
    }
}

/// [`create`] without touching `ffid_last_error` (the static context's maker uses it:
/// a static call is no create of the host's): the handle, or why there is none.
pub(crate) fn start<L: Library>(
    callback: Option<Callback>,
    user_data: *mut c_void,
    options: Option<Options>,
    config: impl FnOnce() -> Result<L::Config, Refusal>,
) -> Result<*mut ffid_ctx, String> {
    let callback = callback.ok_or("cb is NULL")?;
    let options = options.filter(Options::is_valid).ok_or(
        "invalid ffid_options: not made by ffid_options_init, a reserved field set, or a value out of range",
    )?;
    let config = config().map_err(|_| {
        "invalid constructor arguments: a NULL pointer, text that is not UTF-8, an unknown enum value or malformed CBOR"
    })?;
    registry::guard_fork();
    crate::threads::panics::keep_quiet();
    let core = Context::new::<L>(&options)
        .ok_or("could not set up the context: out of memory or file descriptors")?;
    let core = Arc::new(core);
    let Some(handle) = registry::insert(core.clone()) else {
        return Err(format!(
            "too many live contexts (at most {})",
            registry::MAX_CONTEXTS
        ));
    };
    if let Err(e) = start_threads::<L>(&core, &options, callback, UserData(user_data), config) {
        shut_down(&core);
        registry::remove(handle);
        return Err(format!("could not start the context's threads: {e}"));
    }
    Ok(handle.cast())
}

/// Starts a new context's threads: the helpers first, so that if a thread cannot be
/// had no worker has reported to the host yet and NULL keeps the "no callback" promise.
/// Each thread started is handed to `core` at once, for `shut_down` to join.
fn start_threads<L: Library>(
    core: &Arc<Context>,
    options: &Options,
    callback: Callback,
    user_data: UserData,
    config: L::Config,
) -> std::io::Result<()> {
    let keep = |thread| crate::sync::lock(&core.helpers).push(thread);
    keep(
        core.spawn(ThreadRole::Events, format!("ffid-{}-ev", L::NAME), |core| {
            crate::events::run(core.events.clone())
        })?,
    );
    let monitor = crate::lifecycle::monitor::Settings {
        stale_ping: options.stale_ping,
        not_responding: options.not_responding,
        listener_stuck: options.listener_stuck,
        diagnoses: options.diagnostic.is_some() || options.polls(crate::abi::POLL_DIAGNOSTICS),
    };
    if let Some(tick) = monitor.tick() {
        keep(core.spawn(
            ThreadRole::Monitor,
            format!("ffid-{}-mon", L::NAME),
            move |core| crate::lifecycle::monitor::run(core, monitor, tick),
        )?);
    }
    // Claimed here, not on the worker: a context whose ring already had a consumer
    // (never: this is its first and only worker) is refused before any callback.
    let claim = core
        .intake
        .claim_inbox()
        .ok_or_else(|| std::io::Error::other("the ring has a consumer"))?;
    let worker = core.spawn(
        ThreadRole::Worker,
        format!("ffid-{}", L::NAME),
        move |core| {
            let ports = core.worker_ports(claim);
            crate::worker::run::<L>(ports, callback, user_data, config)
        },
    )?;
    *crate::sync::lock(&core.worker) = Some(worker);
    Ok(())
}

/// Submits one call of method `method` of library `L`. Returns `RET_OK` when accepted
/// (exactly one terminal callback follows) or the refusal's code (no callback).
///
/// `request` builds the request from the host's arguments; it runs on the calling
/// thread after the callback check and before the context is entered.
#[inline]
pub fn submit<L: Library>(
    ctx: *mut ffid_ctx,
    callback: Option<Callback>,
    user_data: *mut c_void,
    method: u16,
    request: impl FnOnce() -> Result<Request, Refusal>,
) -> c_int {
    submit_as::<L>(
        ctx,
        callback,
        user_data,
        method,
        request,
        Answering::Borrowed,
    )
}

/// How a request's `RET_OK` answer reaches its callback.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answering {
    /// As the method's native or CBOR bytes, valid during the callback.
    Borrowed,
    /// As an owned block (`egress/owned.rs`) that the callback takes over: a typed
    /// call's.
    Owned,
    /// Owned, for a thread that waits for it: a blocking call's, refused `ERR` in
    /// completion mode, where the answer would wait for a drain that may be the waiting
    /// thread's own.
    OwnedForWaiter,
}

/// [`submit`], answered as `answering` says.
#[inline]
pub(crate) fn submit_as<L: Library>(
    ctx: *mut ffid_ctx,
    callback: Option<Callback>,
    user_data: *mut c_void,
    method: u16,
    request: impl FnOnce() -> Result<Request, Refusal>,
    answering: Answering,
) -> c_int {
    let Some(callback) = callback else {
        return refuse(Refusal::MissingCallback);
    };
    debug_assert!(
        (method as usize) < L::METHODS.len(),
        "method id out of range for {}",
        L::NAME
    );
    let request = match request() {
        Ok(r) => r,
        Err(refusal) => return refused::<L>(ctx, refusal),
    };
    let guard = match registry::acquire(ctx.cast()) {
        Ok(guard) => guard,
        Err(refusal) => return refuse(refusal),
    };
    let core = guard.context();
    if core.library != TypeId::of::<L>() {
        return refuse(Refusal::InvalidCtx(InvalidCtx::OtherLibrary));
    }
    if answering == Answering::OwnedForWaiter && core.outbox.queues_completions() {
        return refuse(Refusal::Unsupported(
            "a blocking call on a context in completion mode: its answer would wait for a drain, maybe this thread's",
        ));
    }
    let env = Envelope {
        callback,
        user_data: UserData(user_data),
        method,
        kind: match answering {
            Answering::Borrowed => request.kind,
            Answering::Owned | Answering::OwnedForWaiter => crate::ingress::envelope::Kind::Owned,
        },
        payload: request.payload,
    };
    match core.intake.push(env) {
        Ok(id) => {
            LAST_REQUEST_ID.with(|c| c.set(id));
            RET_OK
        }
        Err(refusal) => {
            core.intake.refused.bump();
            refuse(refusal)
        }
    }
}

/// Counts a refusal of bad arguments against the context, if it is a live one of `L`.
#[cold]
fn refused<L: Library>(ctx: *mut ffid_ctx, refusal: Refusal) -> c_int {
    if let Ok(guard) = registry::acquire(ctx.cast()) {
        if guard.context().library == TypeId::of::<L>() {
            guard.context().intake.refused.bump();
        }
    }
    refuse(refusal)
}

/// [`submit`] for a `_cbor` export: copies the request buffer (`req` may be null only
/// when `len == 0`).
///
/// # Safety
/// If `len > 0`, `req` is null or points to `len` readable bytes for the duration of
/// this call.
#[inline]
pub unsafe fn submit_cbor<L: Library>(
    ctx: *mut ffid_ctx,
    callback: Option<Callback>,
    user_data: *mut c_void,
    method: u16,
    req: *const u8,
    len: usize,
) -> c_int {
    submit::<L>(ctx, callback, user_data, method, || {
        // SAFETY: forwarded to the caller (`req` holds `len` bytes for the call).
        Request::cbor(unsafe { crate::abi::bytes_field(req, len) }?)
    })
}

/// Borrows a live context of library `L` for the duration of `f`.
fn with_core<L: Library, R>(
    ctx: *mut ffid_ctx,
    f: impl FnOnce(&Context) -> R,
) -> Result<R, Refusal> {
    let guard = registry::acquire(ctx.cast())?;
    let core = guard.context();
    of_library::<L>(core)?;
    Ok(f(core))
}

/// Refuses a context of another library than `L`.
fn of_library<L: Library>(core: &Context) -> Result<(), Refusal> {
    match core.library == TypeId::of::<L>() {
        true => Ok(()),
        false => Err(Refusal::InvalidCtx(InvalidCtx::OtherLibrary)),
    }
}

/// Cancels request `id` (from [`last_request_id`](super::last_request_id)) of a context of `L` if the worker
/// has not started it: it is then answered `ERR` `"cancelled"` without running, when
/// the worker reaches it, and this returns `RET_OK`. Returns `RET_ERR`, changing
/// nothing, when the request has started or finished or the id is unknown; the
/// handle's refusal code when it is not live.
/// How the worker and a canceller agree is explained at `Cancels`.
pub fn cancel<L: Library>(ctx: *mut ffid_ctx, id: u64) -> c_int {
    let outcome = with_core::<L, _>(ctx, |core| {
        let Some(last_id) = core.intake.last_id() else {
            return Err("the ring kind gives no request ids (FFID_RING_ARRAY_QUEUE)");
        };
        let board = &core.board;
        if id == 0 || id > last_id {
            return Err("no request of that id");
        }
        if id <= board.running.gate.started() || !board.cancels.cancel(id, &board.running.gate) {
            return Err("the request has started or finished");
        }
        Ok(())
    });
    match outcome {
        Ok(Ok(())) => RET_OK,
        Ok(Err(why)) => refuse(Refusal::Unsupported(why)),
        Err(refusal) => refuse(refusal),
    }
}

/// Destroys a context of library `L` (see the module docs for the order of events).
/// Refused `RET_CLOSED` for a context already being destroyed or destroyed,
/// `RET_INVALID_CTX` for an invalid or foreign handle, and `RET_BUSY` when called on one
/// of a context's threads (from inside a handler or callback: it would wait for itself).
pub fn destroy<L: Library>(ctx: *mut ffid_ctx) -> c_int {
    if must_not_block() {
        return refuse(Refusal::Busy(Busy::InsideCallback));
    }
    let handle = ctx.cast();
    let core = match registry::close(handle, of_library::<L>) {
        Ok(core) => core,
        Err(refusal) => return refuse(refusal),
    };
    core.intake.close();
    // A poller waiting for completions holds the handle: it wakes, sees the context
    // closing and leaves.
    #[cfg(target_os = "linux")]
    core.outbox.wake_poller();
    while !registry::drained(handle) {
        std::thread::yield_now();
    }
    shut_down(&core);
    registry::remove(handle);
    RET_OK
}

/// Why a context serves no completion-mode call.
const NOT_COMPLETION_MODE: Refusal =
    Refusal::Unsupported("the context is not in completion mode (FFID_COMPLETION_QUEUE)");

/// Completion mode: runs up to `max` queued callbacks of a context of `L` on this
/// thread and returns how many ran (0 when another thread is draining). `None` for a
/// handle that is not live or a context not in completion mode (the calling thread's
/// `last_error` says which).
pub fn drain<L: Library>(ctx: *mut ffid_ctx, max: usize) -> Option<usize> {
    #[cfg(target_os = "linux")]
    let drained = with_core::<L, _>(ctx, |core| core.outbox.drain(max));
    #[cfg(not(target_os = "linux"))]
    let drained = Ok(None);
    refused_unless(drained, NOT_COMPLETION_MODE).ok()
}

/// Completion mode: the eventfd that is readable while completions wait (poll it; then
/// call [`drain`]). Owned by the context, closed by destroy. `None` otherwise (the
/// calling thread's `last_error` says why).
pub fn completion_fd<L: Library>(ctx: *mut ffid_ctx) -> Option<c_int> {
    #[cfg(target_os = "linux")]
    let fd = with_core::<L, _>(ctx, |core| core.outbox.completion_fd());
    #[cfg(not(target_os = "linux"))]
    let fd = Ok(None);
    refused_unless(fd, NOT_COMPLETION_MODE).ok()
}

/// `int <lib>_poll(ffid_ctx*, ffid_entry* entries, uint32_t max, int32_t timeout_ms)`:
/// completion mode's answers and pings as entries (see `CompletionQueue::poll`). Returns
/// how many entries it wrote, or a refusal as a negative status (`-RET_BUSY` when
/// another thread polls or drains), its reason in the thread's `last_error`. Waits up to
/// `timeout_ms` (negative: no limit) for something to come; never inside a callback.
///
/// # Safety
/// `entries` is null only when `max == 0`; otherwise it points to `max` writable
/// entries of `entries->struct_size` bytes each (the host sets it in the first), which
/// the host does not touch during the call.
pub unsafe fn poll<L: Library>(
    ctx: *mut ffid_ctx,
    entries: *mut ffid_entry,
    max: u32,
    timeout_ms: i32,
) -> c_int {
    let stride = match max {
        0 => 0,
        _ if entries.is_null() => {
            return -refuse(Refusal::invalid(Invalid::Null).in_field("entries"));
        }
        // SAFETY: non-null, and the first entry's `struct_size` is the host's to set.
        _ => (unsafe { entries.cast::<u32>().read_unaligned() }) as usize,
    };
    if max > 0 && stride < ENTRY_MIN_SIZE {
        return -refuse(Refusal::Unsupported(
            "entries->struct_size is below 16: set it to sizeof(ffid_entry)",
        ));
    }
    let max = max.min(i32::MAX as u32) as usize;
    // Inside a callback a call never waits. A poll that does not wait reads no clock.
    let wait = match timeout_ms {
        _ if must_not_block() => Wait::Not,
        0 => Wait::Not,
        ..0 => Wait::Forever,
        ms => Wait::Until(Instant::now() + Duration::from_millis(ms as u64)),
    };
    let mut written = 0;
    let polled = with_core::<L, _>(ctx, |core| {
        poll_outbox(core, max, wait, |mut entry| {
            let n = stride.min(std::mem::size_of::<ffid_entry>());
            entry.struct_size = n as u32;
            // SAFETY: entry `written < max` of the host's array holds `stride >= n`
            // writable bytes (the contract above); the source is a local of `n` bytes.
            unsafe {
                let at = entries.cast::<u8>().add(written * stride);
                std::ptr::copy_nonoverlapping((&entry as *const ffid_entry).cast::<u8>(), at, n);
            }
            written += 1;
        })
    });
    match refused_unless(polled, NOT_COMPLETION_MODE) {
        Ok(Some(n)) => n as c_int,
        Ok(None) => -refuse(Refusal::Busy(Busy::AnotherConsumer)),
        Err(code) => -code,
    }
}

/// [`Outbox::poll`](crate::egress::outbox::Outbox::poll), ended by destroy.
#[cfg(target_os = "linux")]
fn poll_outbox(
    core: &Context,
    max: usize,
    wait: Wait,
    emit: impl FnMut(ffid_entry),
) -> Option<Option<usize>> {
    core.outbox
        .poll(max, wait, || core.intake.is_closed(), emit)
}

/// Completion mode needs eventfd: there is nothing to poll.
#[cfg(not(target_os = "linux"))]
fn poll_outbox(_: &Context, _: usize, _: Wait, _: impl FnMut(ffid_entry)) -> Option<Option<usize>> {
    None
}

/// The smallest entry stride `poll` accepts: `struct_size`, `kind` and `request_id`.
const ENTRY_MIN_SIZE: usize = 16;

/// `int <lib>_poll_fd(ffid_ctx*)`: a fresh duplicate of completion mode's eventfd,
/// readable while entries (or completions) wait. The host owns it and closes it; it
/// only polls it (reading it would eat the signal). A negative status when refused.
pub fn poll_fd<L: Library>(ctx: *mut ffid_ctx) -> c_int {
    #[cfg(target_os = "linux")]
    let fd = with_core::<L, _>(ctx, |core| {
        core.outbox.completion_fd().map(|fd| {
            // SAFETY: F_DUPFD_CLOEXEC on a descriptor the context owns and keeps open
            // while this call holds the context.
            unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }
        })
    });
    #[cfg(not(target_os = "linux"))]
    let fd = with_core::<L, _>(ctx, |_| None::<c_int>);
    match refused_unless(fd, NOT_COMPLETION_MODE) {
        Ok(fd) if fd >= 0 => fd,
        Ok(_) => -refuse(Refusal::Unsupported(
            "could not duplicate the descriptor (out of file descriptors)",
        )),
        Err(code) => -code,
    }
}

/// What a live context gave, or the refusal's code, its reason the calling thread's
/// `last_error`: the handle's refusal, or `absent` when the context had nothing to give
/// (not in completion mode, say).
fn refused_unless<T>(found: Result<Option<T>, Refusal>, absent: Refusal) -> Result<T, c_int> {
    match found {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(refuse(absent)),
        Err(refusal) => Err(refuse(refusal)),
    }
}

/// Reads a live context's counters, or why the handle is not live.
pub fn stats(ctx: *mut ffid_ctx) -> Result<Stats, Refusal> {
    let guard = registry::acquire(ctx.cast())?;
    Ok(guard.context().stats())
}

/// Writes a context's counters into the host's struct (`ffid_context_stats`, `<lib>_stats`).
/// `RET_ERR` for a null `out` or a `struct_size` smaller than 8; the handle's refusal
/// code when it is not live.
///
/// # Safety
/// `out` is null or points to writable memory of `out->struct_size` bytes.
pub unsafe fn stats_into(ctx: *mut ffid_ctx, out: *mut crate::abi::ffid_context_stats) -> c_int {
    if out.is_null() {
        return refuse(Refusal::invalid(Invalid::Null).in_field("out"));
    }
    // SAFETY: non-null; `struct_size` is the first field of every layout.
    let size = unsafe { out.cast::<u32>().read_unaligned() } as usize;
    if size < 8 {
        return refuse(Refusal::Unsupported(
            "out->struct_size is below 8: set it to sizeof(ffid_context_stats)",
        ));
    }
    let s = match stats(ctx) {
        Ok(s) => s,
        Err(refusal) => return refuse(refusal),
    };
    let n = size.min(std::mem::size_of_val(&s));
    // SAFETY: the host's struct holds `size >= n` writable bytes (the contract above);
    // the source is a local of at least `n` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping((&s as *const Stats).cast::<u8>(), out.cast::<u8>(), n)
    };
    // The host keeps its own size in the first field.
    // SAFETY: as above, `size >= 8`.
    unsafe { out.cast::<u32>().write_unaligned(size as u32) };
    RET_OK
}

/// `int ffid_stats(ffid_ctx* ctx, ffid_context_stats* out)`: [`stats_into`]. With two
/// libraries in one process this symbol resolves to one of them; `<lib>_stats` always
/// reaches the right one.
///
/// # Safety
/// As [`stats_into`].
#[no_mangle]
pub unsafe extern "C" fn ffid_stats(
    ctx: *mut ffid_ctx,
    out: *mut crate::abi::ffid_context_stats,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { stats_into(ctx, out) }
}

/// Adds a listener to a context of `L`: `event` is an index into `L::EVENTS`, or `None`
/// for every event (`view` must then be [`ListenerView::Envelope`]). Returns its id, or
/// 0 (refused) for a null callback, a bad event, or a handle that is not live.
pub fn add_listener<L: Library>(
    ctx: *mut ffid_ctx,
    event: Option<u16>,
    view: ListenerView,
    callback: Option<Callback>,
    user_data: *mut c_void,
) -> u64 {
    match view {
        ListenerView::Owned => 0, // only typed listeners take blocks over
        _ => add_listener_keeping::<L>(ctx, event, view, callback, user_data, None),
    }
}

/// [`add_listener`], the listener owning `keep` (freed with it).
pub(crate) fn add_listener_keeping<L: Library>(
    ctx: *mut ffid_ctx,
    event: Option<u16>,
    view: ListenerView,
    callback: Option<Callback>,
    user_data: *mut c_void,
    keep: Option<crate::events::Keep>,
) -> u64 {
    let Some(callback) = callback else { return 0 };
    let valid = match event {
        Some(e) => (e as usize) < L::EVENTS.len() && view != ListenerView::Envelope,
        None => view == ListenerView::Envelope,
    };
    if !valid {
        return 0;
    }
    match with_core::<L, _>(ctx, |core| {
        core.events.add(event, view, callback, user_data, keep)
    }) {
        Ok(id) => id,
        Err(refusal) => {
            refuse(refusal);
            0
        }
    }
}

/// Removes a listener. `RET_OK` when it was registered; once this returns it is never
/// called again (from a listener's own callback: after that callback returns).
pub fn remove_listener<L: Library>(ctx: *mut ffid_ctx, id: u64) -> c_int {
    match with_core::<L, _>(ctx, |core| core.events.remove(id)) {
        Ok(true) => RET_OK,
        Ok(false) => refuse(Refusal::Unsupported("no listener of that id")),
        Err(refusal) => refuse(refusal),
    }
}

/// The eventfd a context's parked worker sleeps on, for a library whose worker thread
/// also polls its own descriptors (epoll) and wants ingress in the same set. `None` for
/// the futex backend, a stale handle, or a platform without eventfd. The descriptor
/// stays owned by the context and is closed when it is destroyed.
#[cfg(target_os = "linux")]
pub fn wake_fd(ctx: *mut ffid_ctx) -> Option<std::os::fd::RawFd> {
    registry::acquire(ctx.cast())
        .ok()?
        .context()
        .intake
        .wake_fd()
}
