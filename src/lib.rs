//! # ffi-dispatch
//!
//! Serve C hosts (and anything with a C FFI) from a Rust library at close to the
//! hardware's cross-core latency.
//!
//! A host thread calls an exported C function; the export copies the arguments into a
//! request envelope and pushes it onto the context's bounded lock-free ring (a tagged
//! ring whose consumer never writes its slots; `crossbeam-queue`'s `ArrayQueue` can be
//! chosen instead, for comparison). The context's worker thread, which busy-spins
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
//! use ffi_dispatch::schema::Exports;
//! use ffi_dispatch_codegen::header; // the renderer: a build- and test-time crate
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
//! ## A map of the crate
//! - Writing a library: [`library`] (the attribute), [`Record`] and [`Enum`] (your own
//!   types), [`Deferred`], [`Sink`], [`CallError`], [`Answer`]; [`Library`] is the trait
//!   the attribute implements.
//! - Configuring and watching a context: [`Options`] and its policies, [`HostFn`],
//!   [`ThreadHooks`], [`stats`], [`wake_fd`].
//! - The C side: [`abi`] (mirrors `include/ffi_dispatch.h`, the C contract) and
//!   [`schema`] (the descriptors the header and CDDL are rendered from, by the
//!   `ffi-dispatch-codegen` crate).
//! - The macros' contract with the runtime is the hidden module `rt`: not a stable API.
//!
//! `examples/kv` is a complete library.
//!
//! ## Beyond request/response
//! - Events: `#[ffi(event)] fn on_x(evt: T);` in the `impl` block emits to listeners the
//!   host adds per event or for all; delivered on a per-context event thread.
//! - Deferred replies: a [`Deferred<T>`] last parameter is the request's reply token, to
//!   answer later from any thread.
//! - Async handlers: `async fn` methods run as tasks on the worker, re-queued through the
//!   ring by their wakers (the library then takes `&self` everywhere).
//! - Progress pings (`RET_STALE_WARN`), cancellation (`<lib>_cancel`), completion mode
//!   (`<lib>_drain`), thread hooks and liveness diagnostics ([`Options`]), and counters
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
mod error;
#[doc(hidden)] // through `rt`, and `Sink` and its kin at the root
pub mod events;
mod ffi;
mod ingress;
mod library;
mod lifecycle;
#[doc(hidden)] // through `rt`
pub mod marshal;
mod options;
mod sync;
mod threads;
mod worker;

// ## The C side
pub use abi::{
    ffid_ctx, Callback, RET_BUSY, RET_ERR, RET_MISSING_CALLBACK, RET_OK, RET_STALE_WARN,
};
pub use ffi::abi;
pub use ffi_dispatch_schema as schema;

// ## Writing a library
pub use egress::deferred::Deferred;
pub use egress::reply::Answer;
pub use error::CallError;
pub use events::{EmitError, ListenerView, Sink, SinkGuard};
pub use library::{LibRef, Library, PANICS_ARE_CAUGHT};

// ## Configuring and watching a context
pub use ffi::host::{HostFn, ThreadHooks};
pub use ingress::envelope::INLINE_CAPACITY;
pub use lifecycle::registry::MAX_CONTEXTS;
pub use lifecycle::stats;
pub use lifecycle::stats::Stats;
#[cfg(target_os = "linux")]
pub use lifecycle::wake_fd;
pub use options::{
    ffid_options_init, BackPressure, CompletionMode, EventPolicy, IdlePolicy, Options, RingKind,
    WakeKind, MAX_RING_CAPACITY,
};

// Inside the crate, the contract's names are at the root too (`crate::Request`, ...).
#[allow(unused_imports)]
pub(crate) use rt::*;

/// The macros' contract with the runtime: everything the generated code (and a library
/// that implements [`Library`] by hand) names. Not a stable API: it changes with the
/// macros.
#[doc(hidden)]
pub mod rt {
    pub use crate::abi::{self, ffid_ctx, Callback, Refusal};
    pub use crate::egress::deferred::Deferred;
    pub use crate::egress::reply::{self, Answer, NativeOut, Reply};
    pub use crate::events::{self, emit, EmitError, EventDesc, ListenerView};
    pub use crate::ingress::envelope::{self, FieldReader, FieldWriter, Scalar};
    pub use crate::ingress::request::{ArgsView, Request};
    pub use crate::library::{ffid_catches_panics, CborHandler, Library, Method, NativeHandler};
    pub use crate::lifecycle::{
        add_listener, cancel, completion_fd, create, destroy, drain, last_request_id,
        remove_listener, static_context, stats_into, submit, submit_cbor, StaticContext,
    };
    pub use crate::marshal::{self, cbor};
    pub use crate::options::Options;
    pub use crate::schema;
    pub use crate::worker::tasks::spawn_handler;
    pub use crate::CallError;
    pub use minicbor;
}

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
