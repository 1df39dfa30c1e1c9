//! C ABI types and status codes: the vocabulary shared with `include/ffi_dispatch.h`.
//!
//! Everything here is `#[repr(C)]` or a plain integer so that the header can mirror it
//! field for field. The raw-pointer readers at the bottom turn the pointers an export
//! is given (its args struct, a CBOR buffer, a string or bytes field) into Rust
//! references; `marshal` reads the fields inside an args struct (nested records,
//! arrays, C strings) with its own `unsafe`, each block arguing the same contract.

use std::ffi::{c_char, c_int, c_void, CStr};

pub use super::status::{
    RET_BUSY, RET_CLOSED, RET_ERR, RET_INVALID_CTX, RET_MISSING_CALLBACK, RET_OK, RET_STALE_WARN,
    RET_TIMEOUT, RET_TOO_LARGE,
};

/// The host's callback: `ret` is a status code, `msg`/`len` the answer (valid only for
/// the duration of the call, `msg[len] == 0` always), `user_data` the host's pointer.
pub type Callback =
    unsafe extern "C" fn(ret: c_int, msg: *const c_char, len: usize, user_data: *mut c_void);

/// Opaque context handle as the host sees it. Never dereferenced: its bits encode a
/// registry slot and a generation (see `lifecycle/registry.rs`).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct ffid_ctx {
    _private: [u8; 0],
}

/// Back-pressure policy value for [`ffid_options::backpressure`]: wait for space.
pub const BACKPRESSURE_BLOCK: u32 = 0;
/// Back-pressure policy value for [`ffid_options::backpressure`]: refuse with `BUSY`.
pub const BACKPRESSURE_REJECT: u32 = 1;
/// Wake backend value for [`ffid_options::wake`]: a futex on the worker's state word.
pub const WAKE_FUTEX: u32 = 0;
/// Wake backend value for [`ffid_options::wake`]: Linux `eventfd`.
pub const WAKE_EVENTFD: u32 = 1;

/// Ring value for [`ffid_options::ring`]: the tagged ring (default).
pub const RING_TAGGED: u32 = 0;
/// Ring value for [`ffid_options::ring`]: `crossbeam-queue`'s `ArrayQueue`.
pub const RING_ARRAY_QUEUE: u32 = 1;

/// Event-ring policy value for [`ffid_options::event_backpressure`]: a full event ring
/// drops the new event and counts it (`ffid_context_stats::events_dropped`).
pub const EVENTS_DROP_NEWEST: u32 = 0;
/// Event-ring policy value for [`ffid_options::event_backpressure`]: a full event ring
/// makes the emitter wait (except on the event thread, which drops).
pub const EVENTS_BLOCK: u32 = 1;

/// Completion value for [`ffid_options::completion`]: callbacks run on the context's
/// threads (default).
pub const COMPLETION_CALLBACK: u32 = 0;
/// Completion value for [`ffid_options::completion`]: terminal callbacks and pings
/// queue to a completion ring that the host drains on its own thread.
pub const COMPLETION_QUEUE: u32 = 1;

/// Idle policy for [`ffid_options::idle_policy`]: spin the whole `spin_ns` bound after
/// every request, then park (the default).
pub const IDLE_LATENCY: u32 = 0;
/// Idle policy: learn the gaps between requests, spin when the next is due soon, nap
/// until just before one that comes on a regular period, and keep idle spinning under
/// the cap (default 50% of a core). Experimental (see `worker/idle.rs`).
pub const IDLE_BALANCED: u32 = 1;
/// Idle policy: never spin; park at once (every request after an idle gap pays a wake).
pub const IDLE_POWER: u32 = 2;

/// Size of the second version of [`ffid_options`] (up to `hook_user_data`), still
/// accepted.
pub const OPTIONS_V2_SIZE: usize = 96;
/// Size of the third version of [`ffid_options`] (up to `idle_spin_cap_permille`),
/// still accepted.
pub const OPTIONS_V3_SIZE: usize = 104;

/// Diagnostic code: the worker has been inside one handler longer than
/// `not_responding_ms`.
pub const DIAG_NOT_RESPONDING: c_int = 1;
/// Diagnostic code: the worker left the handler reported by [`DIAG_NOT_RESPONDING`].
pub const DIAG_RESPONDING: c_int = 2;
/// Diagnostic code: one listener call has lasted longer than `listener_stuck_ms`.
pub const DIAG_LISTENER_STUCK: c_int = 3;

/// Diagnostic code: a handler, the constructor, the teardown or an async task
/// panicked; `msg` names it and gives the panic's message. Reported on the thread that
/// caught the panic (the worker), in place of any output on the host's stderr.
pub const DIAG_PANIC: c_int = 4;

/// The largest ring capacity (requests or events) a create accepts.
pub const MAX_RING_CAPACITY: u32 = 1 << 20;

/// Thread role passed to the thread hooks: the context's worker.
pub const THREAD_WORKER: c_int = 0;
/// Thread role passed to the thread hooks: the context's event thread.
pub const THREAD_EVENTS: c_int = 1;
/// Thread role passed to the thread hooks: the context's monitor (pings, diagnostics).
pub const THREAD_MONITOR: c_int = 2;

/// A thread hook: `role` is a `THREAD_*` value, `name` the thread's NUL-terminated name
/// (valid during the call), `user_data` the options' `hook_user_data`.
pub type ThreadHook =
    unsafe extern "C" fn(role: c_int, name: *const c_char, user_data: *mut c_void);

/// Size of the first version of [`ffid_options`] (six `uint32_t`), still accepted.
pub const OPTIONS_V1_SIZE: usize = 24;

/// Runtime options a host may pass at create time. Initialise with [`ffid_options_init`](crate::ffid_options_init)
/// and then change fields; `struct_size` lets later versions add fields compatibly.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ffid_options {
    /// `sizeof(ffid_options)` as the host compiled it.
    pub struct_size: u32,
    /// Ring capacity in requests, 1 to [`MAX_RING_CAPACITY`]. Default 4096.
    pub ring_capacity: u32,
    /// How long the idle worker busy-spins before it parks, in nanoseconds. 0 parks at once.
    pub spin_ns: u32,
    /// [`BACKPRESSURE_BLOCK`] (default) or [`BACKPRESSURE_REJECT`].
    pub backpressure: u32,
    /// [`WAKE_FUTEX`] (default) or [`WAKE_EVENTFD`].
    pub wake: u32,
    /// [`RING_TAGGED`] (default) or [`RING_ARRAY_QUEUE`].
    pub ring: u32,
    /// A running request's callback gets a `RET_STALE_WARN` ping every this many
    /// milliseconds. Default 5000; 0 never pings.
    pub stale_ping_ms: u32,
    /// `DIAG_NOT_RESPONDING` fires when the worker has spent this long in one handler.
    /// Default 10000; 0 never fires. Needs `diagnostic`.
    pub not_responding_ms: u32,
    /// `DIAG_LISTENER_STUCK` fires when one listener call lasts this long. Default 1000;
    /// 0 never fires. Needs `diagnostic`.
    pub listener_stuck_ms: u32,
    /// Events the event ring holds, 1 to [`MAX_RING_CAPACITY`]. Default 1024.
    pub event_ring_capacity: u32,
    /// [`EVENTS_DROP_NEWEST`] (default) or [`EVENTS_BLOCK`].
    pub event_backpressure: u32,
    /// How long destroy waits for deferred replies before failing them. Default 5000.
    pub shutdown_timeout_ms: u32,
    /// [`COMPLETION_CALLBACK`] (default) or [`COMPLETION_QUEUE`].
    pub completion: u32,
    /// Must be zero: anything else refuses the create.
    pub reserved: u32,
    /// Receives `DIAG_*` reports on the monitor thread, and `DIAG_PANIC` on the thread
    /// that caught the panic (may be null).
    pub diagnostic: Option<Callback>,
    /// Passed to `diagnostic`.
    pub diagnostic_user_data: *mut c_void,
    /// Called first thing on each of the context's threads (may be null).
    pub thread_start: Option<ThreadHook>,
    /// Called last thing on each of the context's threads (may be null).
    pub thread_stop: Option<ThreadHook>,
    /// Passed to both thread hooks.
    pub hook_user_data: *mut c_void,
    /// [`IDLE_LATENCY`] (default), [`IDLE_BALANCED`] or [`IDLE_POWER`].
    pub idle_policy: u32,
    /// Balanced: the most its idle spinning may cost, in thousandths of a core, 1 to
    /// 1000; 0 takes the default, 500.
    pub idle_spin_cap_permille: u32,
    /// [`POISON_DEFAULT`] (on when the library is a debug build), [`POISON_ON`] or
    /// [`POISON_OFF`]: whether a borrowed answer's bytes are overwritten once its
    /// callback returns.
    pub poison_replies: u32,
    /// `POLL_*` bits: what else comes through `<lib>_poll` as entries (completion mode
    /// only; 0 before this field had a name, and by default).
    pub poll_kinds: u32,
}

const _: () = assert!(std::mem::offset_of!(ffid_options, stale_ping_ms) == OPTIONS_V1_SIZE);
const _: () = assert!(std::mem::offset_of!(ffid_options, idle_policy) == OPTIONS_V2_SIZE);
const _: () = assert!(std::mem::offset_of!(ffid_options, poison_replies) == OPTIONS_V3_SIZE);

/// Poison value for [`ffid_options::poison_replies`]: on when the library was built
/// with debug assertions (a debug build), off otherwise.
pub const POISON_DEFAULT: u32 = 0;
/// Poison value: overwrite every borrowed answer (the callback's `msg` and whatever a
/// record or array in it points to) with [`POISON_BYTE`] once its callback returns.
pub const POISON_ON: u32 = 1;
/// Poison value: never.
pub const POISON_OFF: u32 = 2;
/// What poisoned answer bytes read as.
pub const POISON_BYTE: u8 = 0xa5;

/// Human-readable name of a status code (`"OK"`, `"ERR"`, ...); `"UNKNOWN"` otherwise.
/// The returned string is static.
#[no_mangle]
pub extern "C" fn ffid_status_name(code: c_int) -> *const c_char {
    let name: &'static CStr = match code {
        RET_OK => c"OK",
        RET_ERR => c"ERR",
        RET_MISSING_CALLBACK => c"MISSING_CALLBACK",
        RET_STALE_WARN => c"STALE_WARN",
        RET_BUSY => c"BUSY",
        RET_TIMEOUT => c"TIMEOUT",
        RET_CLOSED => c"CLOSED",
        RET_INVALID_CTX => c"INVALID_CTX",
        RET_TOO_LARGE => c"TOO_LARGE",
        _ => c"UNKNOWN",
    };
    name.as_ptr()
}

/// A snapshot of a context's counters, filled by `ffid_stats` / `<lib>_stats`. Set
/// `struct_size` to `sizeof(ffid_context_stats)` before the call: the runtime writes no more
/// than that, so a host built against an older header keeps working.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ffid_context_stats {
    /// Set by the host: the size of the struct it passes.
    pub struct_size: u32,
    /// Padding; written as 0.
    pub reserved: u32,
    /// Calls accepted onto the ring.
    pub accepted: u64,
    /// Terminal callbacks made (by the worker, by deferred replies, by cancel), each
    /// counted as it starts: a host holding an answer sees it counted.
    pub completed: u64,
    /// Calls this live context refused (full ring, bad arguments, closing).
    pub refused: u64,
    /// Requests queued now, not yet started.
    pub queue_depth: u64,
    /// The deepest queue the worker has seen (sampled when it finds a backlog).
    pub high_water: u64,
    /// Times a producer woke the parked worker (one syscall each).
    pub wakeups: u64,
    /// Times the idle worker found work while spinning, before parking.
    pub spin_hits: u64,
    /// Times the worker announced parking (it may have found work in its recheck).
    pub parks: u64,
    /// Handlers that panicked.
    pub panics: u64,
    /// Deferred replies taken and not yet answered.
    pub deferred_pending: u64,
    /// Requests answered `"cancelled"`.
    pub cancelled: u64,
    /// `RET_STALE_WARN` pings delivered.
    pub stale_pings: u64,
    /// Events queued for the event thread.
    pub events_emitted: u64,
    /// Events dropped because the event ring was full.
    pub events_dropped: u64,
    /// Listener calls made.
    pub events_delivered: u64,
    /// Time the idle worker spent spinning for work, in ns (what staying hot costs).
    pub idle_spin_ns: u64,
    /// Times the worker slept and a request woke it within 1 ms: wakes that a spin of
    /// that length would have saved (what parking costs).
    pub avoidable_wakes: u64,
}

/// `ffid_entry::kind`: a call's terminal answer (`status` `RET_OK` or `RET_ERR`).
pub const ENTRY_ANSWER: u32 = 1;
/// `ffid_entry::kind`: a progress ping (`status` `RET_STALE_WARN`, the payload the
/// elapsed milliseconds as decimal text).
pub const ENTRY_PING: u32 = 2;
/// `ffid_options::poll_kinds`: events come through `<lib>_poll` as [`ENTRY_EVENT`]
/// entries instead of reaching listeners.
pub const POLL_EVENTS: u32 = 1;
/// `ffid_options::poll_kinds`: `DIAG_*` reports come through `<lib>_poll` as
/// [`ENTRY_DIAGNOSTIC`] entries instead of the diagnostic callback.
pub const POLL_DIAGNOSTICS: u32 = 2;
/// `ffid_entry::kind`: an event (`request_id` its index in the library's events,
/// the payload the CBOR map `{"event": name, "payload": ...}`).
pub const ENTRY_EVENT: u32 = 4;
/// `ffid_entry::kind`: a diagnostic report (`status` its `DIAG_*` code, the payload its
/// text).
pub const ENTRY_DIAGNOSTIC: u32 = 5;
/// `ffid_entry::kind`: the context is being destroyed (`status` `RET_CLOSED`): the last
/// entry of the last poll; what was not polled by then, destroy delivers to `cb`.
pub const ENTRY_CLOSED: u32 = 3;

/// One entry of `<lib>_poll`. `repr(C)`, mirrored by `ffid_entry` in the header; only
/// ever appended to (`struct_size` says which layout the host has).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ffid_entry {
    /// The size of the layout the runtime wrote.
    pub struct_size: u32,
    /// `ENTRY_*`.
    pub kind: u32,
    /// The request's id (`<lib>_last_request_id`); 0 for a create's outcome.
    pub request_id: u64,
    /// `RET_*`: the answer's status, `RET_STALE_WARN` for a ping.
    pub status: c_int,
    /// Zero.
    pub reserved: u32,
    /// The `cb` the call was made with: poll never calls it (destroy does, for what was
    /// not polled).
    pub cb: Option<Callback>,
    /// The call's `user_data`.
    pub user_data: *mut c_void,
    /// The answer or ping text, `len` bytes and a NUL; lent until the next poll.
    pub payload: *const u8,
    /// Bytes at `payload`, the NUL not counted.
    pub len: usize,
}

pub use super::refusal::{Busy, Invalid, InvalidCtx, Refusal, TooLarge, MAX_REQUEST_BYTES};

/// Borrows the host's args struct, refusing a null pointer.
///
/// # Safety
/// `args` is null or points to a valid, initialised `T` that stays alive and unchanged
/// for `'a` (exports use `'a` = the duration of the export call).
#[inline]
pub unsafe fn args_ref<'a, T>(args: *const T) -> Result<&'a T, Refusal> {
    // SAFETY: null is handled by `as_ref`; otherwise the caller guarantees validity.
    unsafe { args.as_ref() }.ok_or(Refusal::invalid(Invalid::NullArgs))
}

/// Reads a NUL-terminated UTF-8 string field, refusing null and invalid UTF-8.
///
/// # Safety
/// `s` is null or points to a NUL-terminated string alive for `'a`.
#[inline]
pub unsafe fn str_field<'a>(s: *const c_char) -> Result<&'a str, Refusal> {
    if s.is_null() {
        return Err(Refusal::invalid(Invalid::Null));
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    let c = unsafe { CStr::from_ptr(s) };
    c.to_str().map_err(|e| {
        Refusal::invalid(Invalid::NotUtf8 {
            at: e.valid_up_to(),
        })
    })
}

/// Reads a `(pointer, length)` byte field. A null pointer is accepted only with length 0.
///
/// # Safety
/// If `len > 0`, `p` points to `len` readable bytes alive for `'a`.
#[inline]
pub unsafe fn bytes_field<'a>(p: *const u8, len: usize) -> Result<&'a [u8], Refusal> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Refusal::invalid(Invalid::Null));
    }
    if len > isize::MAX as usize {
        return Err(Refusal::invalid(Invalid::Length));
    }
    // SAFETY: non-null, `len` bytes readable by the caller's contract, len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}
