//! # ffi-dispatch
//!
//! Serve C hosts (and anything with a C FFI) from a Rust library at close to the
//! hardware's cross-core latency.
//!
//! A host thread calls an exported C function; the export copies the arguments into a
//! request envelope and pushes it onto the context's bounded lock-free ring
//! ([`crossbeam_queue::ArrayQueue`]). The context's worker thread, which busy-spins
//! briefly and then parks, pops it, runs the handler and answers through the host's
//! callback `void cb(int ret, const char* msg, size_t len, void* user_data)`.
//!
//! ```text
//! host call -> envelope -> ring -> worker -> handler -> reply -> callback
//! (export)   (envelope)  (ring,  (worker)  (dispatch)  (reply)
//!                         wake)
//! ```
//!
//! Every method is reachable two ways from one definition: a native export (arguments
//! in a C struct, raw result bytes) and a `_cbor` export (arguments as a CBOR map,
//! decoded zero-copy; result as CBOR). The author writes ordinary Rust and annotates it:
//!
//! ```
//! use ffi_dispatch::schema::{header, Exports};
//!
//! /// A running total.
//! pub struct Counter {
//!     total: u64,
//! }
//!
//! #[ffi_dispatch::library(name = "counter")]
//! impl Counter {
//!     /// Starts at `start`.
//!     #[ffi(ctor)]
//!     fn create(start: u64) -> Counter {
//!         Counter { total: start }
//!     }
//!     /// Adds `by`; an error on overflow.
//!     #[ffi]
//!     fn add(&mut self, by: u64) -> Result<u64, String> {
//!         self.total = self.total.checked_add(by).ok_or("overflow")?;
//!         Ok(self.total)
//!     }
//! }
//!
//! // The exports exist (`counter_create`, `counter_add`, `counter_add_cbor`, ...), and
//! // the C header is rendered from the same definition:
//! let h = header(Counter::SCHEMA, "(regenerate command)");
//! assert!(h.contains("typedef struct CounterAddArgs {\n    uint64_t by;\n} CounterAddArgs;"));
//! assert!(h.contains("int counter_add(ffid_ctx* ctx, ffid_callback cb, void* user_data, const CounterAddArgs* args);"));
//! ```
//!
//! [`library`] documents the attribute, [`marshal`] the C form of each type, [`schema`]
//! the header and CDDL generation; `examples/kv` is a complete library and
//! `include/ffi_dispatch.h` the C contract.
//!
//! ## Beyond request/response
//! - Events: `#[ffi(event)] fn on_x(evt: T);` in the `impl` block emits to listeners the
//!   host adds per event or for all; delivered on a per-context event thread
//!   ([`events`]).
//! - Deferred replies: a [`Deferred<T>`] last parameter is the request's reply token, to
//!   answer later from any thread.
//! - Async handlers: `async fn` methods run as tasks on the worker, re-queued through the
//!   ring by their wakers (the library then takes `&self` everywhere).
//! - Progress pings (`RET_STALE_WARN`), cancellation ([`cancel`]), completion mode
//!   ([`drain`]), thread hooks and liveness diagnostics ([`Options`]), and counters
//!   ([`stats`]).
//!
//! ## Panics
//! A handler that panics answers `ERR` with a message starting `handler panicked:` and
//! the worker keeps serving. That needs unwinding: in a build with `panic = "abort"`
//! ([`PANICS_ARE_CAUGHT`] is `false`) a panicking handler aborts the host process.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(target_pointer_width = "64"))]
compile_error!("ffi-dispatch encodes context handles in 64-bit pointers");

// The pipeline, one folder a stage (see the README's "How it works"):
// ffi (the C vocabulary) -> ingress (requests) -> sync (rings, wake) -> worker
// -> egress (answers) -> the host; events beside them; lifecycle on top.
mod egress;
pub mod events;
mod ffi;
mod ingress;
mod lifecycle;
pub mod marshal;
pub mod schema;
mod sync;
mod worker;

pub use egress::reply;
pub use ffi::abi;
pub use ingress::envelope;
pub use marshal::cbor;

use std::borrow::Cow;
use std::ffi::{c_int, c_void};
use std::fmt;
use std::time::Duration;

pub use abi::{
    ffid_ctx, Callback, Refusal, RET_BUSY, RET_ERR, RET_MISSING_CALLBACK, RET_OK, RET_STALE_WARN,
};
pub use egress::deferred::Deferred;
pub use envelope::{FieldReader, FieldWriter, INLINE_CAPACITY};
pub use events::{EmitError, EventDesc, ListenerView, Sink};
pub use lifecycle::registry::MAX_CONTEXTS;
pub use lifecycle::stats::Stats;
#[cfg(target_os = "linux")]
pub use lifecycle::wake_fd;
pub use lifecycle::{
    add_listener, cancel, completion_fd, create, destroy, drain, last_request_id, remove_listener,
    static_context, stats, stats_into, submit, submit_cbor, StaticContext,
};
pub use reply::{Answer, NativeOut, Reply};

/// Exposes a library: put it on the `impl` block of the library's type.
///
/// `#[ffi_dispatch::library(name = "kv")]` (the name defaults to the type's name in
/// snake case) over `impl Kv { ... }`, where:
/// - exactly one `#[ffi(ctor)]` function builds the value (`-> Self` or
///   `-> Result<Self, E: Display>`); its parameters become `<Prefix>Config`;
/// - each `#[ffi]` method (`&self` or `&mut self`) becomes `<lib>_<m>` with a
///   `<Prefix><M>Args` struct (none without parameters) and `<lib>_<m>_cbor`;
/// - each `#[ffi(static)]` function is served by a process-wide context created on
///   first use; its exports take no handle;
/// - at most one `#[ffi(dtor)]` (`&mut self`) runs when the context is destroyed, after
///   the last request.
///
/// Functions without `#[ffi]` are left alone. Doc comments reach the generated header.
/// The generated items: the args structs, `impl Library`, `impl schema::Exports` and the
/// `#[no_mangle]` exports (`<lib>_create`, `_create_with_options`, `_create_cbor`,
/// `_destroy`, and two per function).
pub use ffi_dispatch_macros::library;
/// Makes a fieldless enum cross both views: an `int32_t` natively, its variant's name
/// as text on the CBOR wire.
pub use ffi_dispatch_macros::Enum;
/// Makes a struct with named fields a record that crosses both views: a `#[repr(C)]`
/// mirror `<Name>C` natively, a map on the CBOR wire.
pub use ffi_dispatch_macros::Record;

/// What the generated code uses; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use minicbor;
}

/// Whether a panicking handler is turned into an `ERR` answer (`true` with
/// `panic = "unwind"`, the default) or aborts the process (`panic = "abort"`).
pub const PANICS_ARE_CAUGHT: bool = cfg!(panic = "unwind");

/// Returns 1 when handler panics become `ERR` answers, 0 when they abort the process
/// (the library was built with `panic = "abort"`).
#[no_mangle]
pub extern "C" fn ffid_catches_panics() -> c_int {
    PANICS_ARE_CAUGHT as c_int
}

/// A library served through ffi-dispatch: one value per context, living on the
/// context's worker thread (so it need not be `Send`).
pub trait Library: Sized + 'static {
    /// Short name, used for the worker thread's name and in messages.
    const NAME: &'static str;
    /// The method table; a method's id is its index.
    const METHODS: &'static [Method<Self>];
    /// The events the library emits; an event's id is its index.
    const EVENTS: &'static [EventDesc] = &[];
    /// Owned constructor arguments, copied on the host thread at create time.
    type Config: Send + 'static;
    /// Builds the value on the worker thread. An error is reported through the create
    /// callback and every call queued behind it is answered `ERR`.
    fn construct(config: Self::Config) -> Result<Self, CallError>;
    /// Runs on the worker thread during destroy, after the last request was answered.
    fn teardown(&mut self) {}
    /// Whether the create callback answers in CBOR (a create through
    /// `<lib>_create_cbor`), so that its "no value" is CBOR null. For generated code.
    #[doc(hidden)]
    fn config_is_cbor(_config: &Self::Config) -> bool {
        false
    }
}

/// The two views of one method. Both decode the same arguments and call the same
/// function; they differ only in how the arguments arrive and the answer is encoded.
pub struct Method<L> {
    /// The method's name (the `<lib>_<name>` export).
    pub name: &'static str,
    /// Native view: fields in the order the export wrote them.
    pub native: NativeHandler<L>,
    /// CBOR view: the request map, borrowed.
    pub cbor: CborHandler<L>,
}

/// A method's native view: the library, the request's fields, the answer.
pub type NativeHandler<L> =
    fn(LibRef<'_, L>, &mut FieldReader<'_>, &mut Reply) -> Result<(), CallError>;

/// A method's CBOR view: the library, the request map, the answer.
pub type CborHandler<L> = fn(LibRef<'_, L>, &[u8], &mut Reply) -> Result<(), CallError>;

/// The library value as a handler receives it: lent shared ([`LibRef::get`]) or
/// exclusive ([`LibRef::get_mut`]) for the duration of the call.
///
/// The worker keeps the value behind a raw pointer and forms a reference only when a
/// handler asks. That is what makes async handlers sound: a suspended task holds a
/// shared reference across calls, and one formed `&mut` in between would invalidate
/// it. So a library with async methods must only ever `get` (the `library` macro makes
/// every method of such a library take `&self`).
pub struct LibRef<'a, L> {
    ptr: std::ptr::NonNull<L>,
    _lent: std::marker::PhantomData<&'a mut L>,
}

impl<'a, L> LibRef<'a, L> {
    /// # Safety
    /// `ptr` points to a live `L` that nothing else borrows exclusively for `'a`.
    pub(crate) unsafe fn new(ptr: std::ptr::NonNull<L>) -> Self {
        LibRef {
            ptr,
            _lent: std::marker::PhantomData,
        }
    }

    /// The value, shared.
    pub fn get(&self) -> &'a L {
        // SAFETY: `new`'s contract: the value is live and not exclusively borrowed.
        unsafe { self.ptr.as_ref() }
    }

    /// The value, exclusive. Never call it in a library that spawns async tasks (see
    /// the type's docs).
    pub fn get_mut(&mut self) -> &'a mut L {
        // SAFETY: `new`'s contract, and the worker lends one `LibRef` at a time; a
        // library with async tasks must not call this (its handlers only `get`).
        unsafe { self.ptr.as_mut() }
    }
}

/// A failed call: the message the host receives with `RET_ERR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError(Cow<'static, str>);

impl CallError {
    /// An error with this message (an empty one reaches the host as `"unknown error"`).
    pub fn new(msg: impl Into<Cow<'static, str>>) -> Self {
        CallError(msg.into())
    }
    /// An error from anything displayable.
    pub fn from_display(e: impl fmt::Display) -> Self {
        CallError(Cow::Owned(e.to_string()))
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CallError {}

impl From<String> for CallError {
    fn from(s: String) -> Self {
        CallError(Cow::Owned(s))
    }
}

impl From<&'static str> for CallError {
    fn from(s: &'static str) -> Self {
        CallError(Cow::Borrowed(s))
    }
}

/// A request ready for the ring: its view and its copied arguments.
pub struct Request {
    kind: envelope::Kind,
    payload: envelope::Payload,
}

impl Request {
    /// A native request: `write` copies the args struct's fields (it runs twice, to size
    /// the buffer exactly; keep it a plain sequence of writes).
    pub fn native(write: impl Fn(&mut FieldWriter<'_>)) -> Request {
        Request::native_checked(|w| {
            write(w);
            Ok(())
        })
        .expect("an infallible writer never refuses")
    }
    /// A native request whose writer checks the host's input (null pointers, UTF-8,
    /// enum values) and may refuse. It runs twice, as for [`Request::native`].
    pub fn native_checked(
        write: impl Fn(&mut FieldWriter<'_>) -> Result<(), Refusal>,
    ) -> Result<Request, Refusal> {
        Ok(Request {
            kind: envelope::Kind::Native,
            payload: envelope::Payload::from_fields(write)?,
        })
    }
    /// [`Request::native_checked`] for arguments whose payload size is known in advance
    /// (all scalars: the sum of their [`envelope::Scalar::SIZE`]): `write` runs once and
    /// must write exactly `len` bytes, else the call is refused.
    #[inline]
    pub fn native_fixed(
        len: usize,
        write: impl Fn(&mut FieldWriter<'_>) -> Result<(), Refusal>,
    ) -> Result<Request, Refusal> {
        Ok(Request {
            kind: envelope::Kind::Native,
            payload: envelope::Payload::fill(len, write)?,
        })
    }
    /// Whether this is a CBOR request.
    pub fn is_cbor(&self) -> bool {
        self.kind == envelope::Kind::Cbor
    }
    /// A CBOR request: the buffer is copied as it is and decoded on the worker.
    pub fn cbor(bytes: &[u8]) -> Request {
        Request {
            kind: envelope::Kind::Cbor,
            payload: envelope::Payload::copy_from(bytes),
        }
    }
    /// The arguments, for reading on the worker (a generated constructor does this with
    /// the copied constructor arguments).
    pub fn view(&self) -> ArgsView<'_> {
        match self.kind {
            envelope::Kind::Native => ArgsView::Native(FieldReader::new(self.payload.as_slice())),
            envelope::Kind::Cbor => ArgsView::Cbor(self.payload.as_slice()),
        }
    }
}

/// A request's arguments in the view the host chose.
pub enum ArgsView<'r> {
    /// Native fields, in declaration order.
    Native(FieldReader<'r>),
    /// The CBOR request map.
    Cbor(&'r [u8]),
}

/// What a full ring does to a producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackPressure {
    /// Wait for space (spin, then park until the worker frees a slot). Never `BUSY`,
    /// except for calls made on a worker thread, which never block.
    #[default]
    Block,
    /// Refuse at once with `RET_BUSY`.
    Reject,
}

/// How an idle, parked worker is woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WakeKind {
    /// A futex on the worker's state word.
    #[default]
    Futex,
    /// A Linux eventfd, pollable together with other descriptors.
    EventFd,
}

/// Which ring implementation carries a context's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RingKind {
    /// The default: producers tag slots, the worker never writes them (see `sync/ring.rs`).
    #[default]
    Tagged,
    /// `crossbeam-queue`'s `ArrayQueue`, for comparison.
    ArrayQueue,
}

/// What a full event ring does to an emitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EventPolicy {
    /// Drop the new event and count it ([`Stats::events_dropped`]).
    #[default]
    DropNewest,
    /// Wait for the event thread to make room (an emitter on the event thread itself
    /// drops instead: it would wait for itself).
    Block,
}

/// Where a context's terminal callbacks (and progress pings) run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CompletionMode {
    /// On the context's threads, as they happen.
    #[default]
    Callback,
    /// Queued to a completion ring; the host runs them on its own thread with
    /// [`drain`], woken by [`completion_fd`] (an eventfd).
    Queue,
}

/// A host function and the `user_data` it is called with.
#[derive(Clone, Copy, Debug)]
pub struct HostFn<F> {
    /// The function.
    pub f: F,
    /// Its `user_data` argument, never dereferenced by the runtime.
    pub user_data: *mut c_void,
}

// SAFETY: the host's contract (see `ffid_options` in the header): its hooks and
// diagnostic callback may be called, with their `user_data`, from the context's threads.
unsafe impl<F: Send> Send for HostFn<F> {}
// SAFETY: as above; the runtime only copies the pair and calls `f`.
unsafe impl<F: Sync> Sync for HostFn<F> {}

/// Start and stop hooks for the context's threads (to attach them to a VM).
#[derive(Clone, Copy, Debug)]
pub struct ThreadHooks {
    /// Called first on each thread; may be `None`.
    pub start: Option<abi::ThreadHook>,
    /// Called last on each thread; may be `None`.
    pub stop: Option<abi::ThreadHook>,
    /// Passed to both.
    pub user_data: *mut c_void,
}

// SAFETY: as for `HostFn`.
unsafe impl Send for ThreadHooks {}
// SAFETY: as for `HostFn`.
unsafe impl Sync for ThreadHooks {}

/// Per-context runtime options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Ring capacity in requests, 1 to [`MAX_RING_CAPACITY`]. Default 4096.
    pub ring_capacity: usize,
    /// How long an idle worker busy-spins before parking. Default 50 µs; zero parks at once.
    pub spin: Duration,
    /// Full-ring policy. Default [`BackPressure::Block`].
    pub backpressure: BackPressure,
    /// Wake backend. Default [`WakeKind::Futex`].
    pub wake: WakeKind,
    /// Ring implementation. Default [`RingKind::Tagged`].
    pub ring: RingKind,
    /// Interval of `RET_STALE_WARN` pings to a request still running. Default 5 s;
    /// `None` never pings.
    pub stale_ping: Option<Duration>,
    /// When the worker has spent this long in one handler, `DIAG_NOT_RESPONDING` is
    /// reported (once; `DIAG_RESPONDING` when it moves on). Default 10 s.
    pub not_responding: Option<Duration>,
    /// When one listener call lasts this long, `DIAG_LISTENER_STUCK` is reported once.
    /// Default 1 s.
    pub listener_stuck: Option<Duration>,
    /// Events the event ring holds, 1 to [`MAX_RING_CAPACITY`]. Default 1024.
    pub event_ring_capacity: usize,
    /// Full-event-ring policy. Default [`EventPolicy::DropNewest`].
    pub event_policy: EventPolicy,
    /// How long destroy waits for outstanding deferred replies before failing them.
    /// Default 5 s.
    pub shutdown_timeout: Duration,
    /// Where terminal callbacks run. Default [`CompletionMode::Callback`].
    pub completion: CompletionMode,
    /// Receives the `DIAG_*` reports: on the context's monitor thread, `DIAG_PANIC` on the
    /// thread that caught the panic (the worker).
    pub diagnostic: Option<HostFn<Callback>>,
    /// Hooks run on each of the context's threads as it starts and stops.
    pub thread_hooks: Option<ThreadHooks>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ring_capacity: 4096,
            spin: Duration::from_micros(50),
            backpressure: BackPressure::Block,
            wake: WakeKind::Futex,
            ring: RingKind::Tagged,
            stale_ping: Some(Duration::from_secs(5)),
            not_responding: Some(Duration::from_secs(10)),
            listener_stuck: Some(Duration::from_secs(1)),
            event_ring_capacity: 1024,
            event_policy: EventPolicy::DropNewest,
            shutdown_timeout: Duration::from_secs(5),
            completion: CompletionMode::Callback,
            diagnostic: None,
            thread_hooks: None,
        }
    }
}

fn millis(d: Option<Duration>) -> u32 {
    d.map_or(0, |d| d.as_millis().clamp(1, u32::MAX as u128) as u32)
}

fn from_millis(ms: u32) -> Option<Duration> {
    (ms != 0).then(|| Duration::from_millis(ms as u64))
}

/// The largest `ring_capacity` and `event_ring_capacity` a create accepts
/// (`FFID_MAX_RING_CAPACITY`): 2^20 requests take 128 MiB of ring.
pub const MAX_RING_CAPACITY: usize = abi::MAX_RING_CAPACITY as usize;

impl Options {
    /// Whether a create accepts these options: both ring capacities in
    /// `1..=MAX_RING_CAPACITY`.
    pub fn is_valid(&self) -> bool {
        let ring = 1..=MAX_RING_CAPACITY;
        ring.contains(&self.ring_capacity) && ring.contains(&self.event_ring_capacity)
    }

    /// The C mirror of these options.
    pub fn to_c(&self) -> abi::ffid_options {
        abi::ffid_options {
            struct_size: std::mem::size_of::<abi::ffid_options>() as u32,
            ring_capacity: self.ring_capacity.min(u32::MAX as usize) as u32,
            spin_ns: self.spin.as_nanos().min(u32::MAX as u128) as u32,
            backpressure: match self.backpressure {
                BackPressure::Block => abi::BACKPRESSURE_BLOCK,
                BackPressure::Reject => abi::BACKPRESSURE_REJECT,
            },
            wake: match self.wake {
                WakeKind::Futex => abi::WAKE_FUTEX,
                WakeKind::EventFd => abi::WAKE_EVENTFD,
            },
            ring: match self.ring {
                RingKind::Tagged => abi::RING_TAGGED,
                RingKind::ArrayQueue => abi::RING_ARRAY_QUEUE,
            },
            stale_ping_ms: millis(self.stale_ping),
            not_responding_ms: millis(self.not_responding),
            listener_stuck_ms: millis(self.listener_stuck),
            event_ring_capacity: self.event_ring_capacity.min(u32::MAX as usize) as u32,
            event_backpressure: match self.event_policy {
                EventPolicy::DropNewest => abi::EVENTS_DROP_NEWEST,
                EventPolicy::Block => abi::EVENTS_BLOCK,
            },
            shutdown_timeout_ms: self.shutdown_timeout.as_millis().min(u32::MAX as u128) as u32,
            completion: match self.completion {
                CompletionMode::Callback => abi::COMPLETION_CALLBACK,
                CompletionMode::Queue => abi::COMPLETION_QUEUE,
            },
            reserved: 0,
            diagnostic: self.diagnostic.map(|d| d.f),
            diagnostic_user_data: self
                .diagnostic
                .map_or(std::ptr::null_mut(), |d| d.user_data),
            thread_start: self.thread_hooks.and_then(|h| h.start),
            thread_stop: self.thread_hooks.and_then(|h| h.stop),
            hook_user_data: self
                .thread_hooks
                .map_or(std::ptr::null_mut(), |h| h.user_data),
        }
    }

    /// Reads host options; `None` for a wrong `struct_size`, a non-zero `reserved` or
    /// out-of-range values.
    pub fn from_c(o: &abi::ffid_options) -> Option<Options> {
        if o.struct_size as usize != std::mem::size_of::<abi::ffid_options>() || o.reserved != 0 {
            return None;
        }
        let options = Options {
            ring_capacity: o.ring_capacity as usize,
            spin: Duration::from_nanos(o.spin_ns as u64),
            backpressure: match o.backpressure {
                abi::BACKPRESSURE_BLOCK => BackPressure::Block,
                abi::BACKPRESSURE_REJECT => BackPressure::Reject,
                _ => return None,
            },
            wake: match o.wake {
                abi::WAKE_FUTEX => WakeKind::Futex,
                abi::WAKE_EVENTFD => WakeKind::EventFd,
                _ => return None,
            },
            ring: match o.ring {
                abi::RING_TAGGED => RingKind::Tagged,
                abi::RING_ARRAY_QUEUE => RingKind::ArrayQueue,
                _ => return None,
            },
            stale_ping: from_millis(o.stale_ping_ms),
            not_responding: from_millis(o.not_responding_ms),
            listener_stuck: from_millis(o.listener_stuck_ms),
            event_ring_capacity: o.event_ring_capacity as usize,
            event_policy: match o.event_backpressure {
                abi::EVENTS_DROP_NEWEST => EventPolicy::DropNewest,
                abi::EVENTS_BLOCK => EventPolicy::Block,
                _ => return None,
            },
            shutdown_timeout: Duration::from_millis(o.shutdown_timeout_ms as u64),
            completion: match o.completion {
                abi::COMPLETION_CALLBACK => CompletionMode::Callback,
                abi::COMPLETION_QUEUE => CompletionMode::Queue,
                _ => return None,
            },
            diagnostic: o.diagnostic.map(|f| HostFn {
                f,
                user_data: o.diagnostic_user_data,
            }),
            thread_hooks: (o.thread_start.is_some() || o.thread_stop.is_some()).then_some(
                ThreadHooks {
                    start: o.thread_start,
                    stop: o.thread_stop,
                    user_data: o.hook_user_data,
                },
            ),
        };
        options.is_valid().then_some(options)
    }

    /// Reads an optional host options pointer: null means the defaults. A struct of the
    /// first layout (`struct_size == 24`, six `uint32_t`) is read as far as it goes,
    /// the newer fields taking their defaults.
    ///
    /// # Safety
    /// `opts` is null or points to a readable `ffid_options` of the layout its
    /// `struct_size` names.
    pub unsafe fn from_c_ptr(opts: *const abi::ffid_options) -> Option<Options> {
        if opts.is_null() {
            return Some(Options::default());
        }
        // SAFETY: `struct_size` is the first field of every layout.
        let size = unsafe { opts.cast::<u32>().read_unaligned() } as usize;
        let mut o = Options::default().to_c();
        if size == abi::OPTIONS_V1_SIZE {
            // SAFETY: the host's struct holds `OPTIONS_V1_SIZE` readable bytes, the
            // prefix of the current layout (asserted in `abi`).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    opts.cast::<u8>(),
                    (&mut o as *mut abi::ffid_options).cast::<u8>(),
                    abi::OPTIONS_V1_SIZE,
                )
            };
            o.struct_size = std::mem::size_of::<abi::ffid_options>() as u32;
        } else if size == std::mem::size_of::<abi::ffid_options>() {
            // SAFETY: the caller guarantees a valid struct of the size it names.
            o = unsafe { opts.read_unaligned() };
        } else {
            return None; // an unknown layout: only its first field was read
        }
        Options::from_c(&o)
    }
}

/// A `*mut c_void` that may cross to the worker thread (the host's `user_data`).
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: `user_data` is never dereferenced by the runtime; the host's documented
// contract is that it may be passed back to its callback on the worker thread.
unsafe impl Send for UserData {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_through_c() {
        unsafe extern "C" fn hook(_: c_int, _: *const std::ffi::c_char, _: *mut c_void) {}
        unsafe extern "C" fn diag(_: c_int, _: *const std::ffi::c_char, _: usize, _: *mut c_void) {}
        let o = Options {
            ring_capacity: 8,
            spin: Duration::ZERO,
            backpressure: BackPressure::Reject,
            wake: WakeKind::EventFd,
            ring: RingKind::ArrayQueue,
            stale_ping: None,
            not_responding: Some(Duration::from_millis(7)),
            listener_stuck: Some(Duration::from_millis(9)),
            event_ring_capacity: 3,
            event_policy: EventPolicy::Block,
            shutdown_timeout: Duration::from_millis(11),
            completion: CompletionMode::Queue,
            diagnostic: Some(HostFn {
                f: diag,
                user_data: 5 as *mut c_void,
            }),
            thread_hooks: Some(ThreadHooks {
                start: Some(hook),
                stop: None,
                user_data: 6 as *mut c_void,
            }),
        };
        // Function pointers have no meaningful `==`; their Debug form is their address.
        let back = Options::from_c(&o.to_c()).map(|b| format!("{b:?}"));
        assert_eq!(back, Some(format!("{o:?}")));
        let mut bad = Options::default().to_c();
        bad.backpressure = 9;
        assert!(Options::from_c(&bad).is_none());
        let mut bad = Options::default().to_c();
        bad.event_backpressure = 2;
        assert!(Options::from_c(&bad).is_none());
        let mut small = Options::default().to_c();
        small.struct_size = 4;
        assert!(Options::from_c(&small).is_none());
        // SAFETY: `small` is a valid struct; its size field is what is under test.
        assert!(unsafe { Options::from_c_ptr(&small) }.is_none());
    }

    #[test]
    fn first_layout_options_are_read_with_defaults_for_the_rest() {
        // A host built against the first header: six uint32_t.
        let v1: [u32; 6] = [
            abi::OPTIONS_V1_SIZE as u32,
            16,
            0,
            abi::BACKPRESSURE_REJECT,
            abi::WAKE_FUTEX,
            abi::RING_TAGGED,
        ];
        // SAFETY: `v1` is a readable struct of the size its first field names.
        let o = unsafe { Options::from_c_ptr(v1.as_ptr().cast()) }.expect("v1 accepted");
        assert_eq!(o.ring_capacity, 16);
        assert_eq!(o.backpressure, BackPressure::Reject);
        assert_eq!(o.stale_ping, Options::default().stale_ping);
        assert_eq!(o.event_ring_capacity, 1024);
    }

    #[test]
    fn status_names() {
        // SAFETY: ffid_status_name returns static NUL-terminated strings.
        let name = |c| {
            unsafe { std::ffi::CStr::from_ptr(abi::ffid_status_name(c)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(
            [0, 1, 2, 3, 4, 99].map(name),
            [
                "OK",
                "ERR",
                "MISSING_CALLBACK",
                "STALE_WARN",
                "BUSY",
                "UNKNOWN"
            ]
        );
    }
}
