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
//! use ffi_dispatch::schema::model::Library;
//! use ffi_dispatch_codegen::header; // the renderer: a build- and test-time crate
//!
//! /// A running total.
//! pub struct Counter {
//!     total: u64,
//! }
//!
//! #[ffi_dispatch::library(name = "counter")]
//! impl Counter {
//!     /// The largest step `add` takes.
//!     #[ffi]
//!     const MAX_STEP: u64 = 1000;
//!
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
//!     /// Whether `by` is a step `add` takes: answered on the calling thread.
//!     #[ffi(inline)]
//!     fn valid_step(by: u64) -> bool {
//!         by <= Self::MAX_STEP
//!     }
//! }
//!
//! // The exports exist (`counter_create_checked`, `counter_add`, `counter_add_cbor`,
//! // ...), and the library describes itself: `ffi-dispatch-bindgen` reads that from the
//! // built cdylib and renders the C header from it.
//! let mut len = 0;
//! // SAFETY: the library's describing export; it hands out `len` bytes.
//! let bytes = unsafe { std::slice::from_raw_parts(counter_ffid_describe(&mut len), len) };
//! let h = header(&Library::decode(bytes).unwrap());
//! assert!(h.contains("typedef struct CounterAddArgs {\n    uint64_t by;\n} CounterAddArgs;"));
//! assert!(h.contains("int counter_add(ffid_ctx* ctx, ffid_callback cb, void* user_data, const CounterAddArgs* args);"));
//! assert!(h.contains("#define COUNTER_MAX_STEP UINT64_C(1000)"));
//! ```
//!
//! ## A map of the crate
//! - Writing a library: [`library`] (the attribute), [`Record`] and [`Enum`] (your own
//!   types), [`Deferred`], [`Sink`], [`CallError`], [`Answer`]; [`Library`] is the trait
//!   the attribute implements.
//! - Configuring and watching a context: [`Options`] and its policies, [`HostFn`],
//!   [`ThreadHooks`], [`stats`], [`wake_fd`].
//! - The C side: [`abi`] (mirrors `include/ffi_dispatch.h`, the C contract) and
//!   [`schema`] (the descriptors, and the description each built library hands out,
//!   which the `ffi-dispatch-bindgen` command renders the header and CDDL from).
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
mod description;
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
    ffid_ctx, Callback, RET_BUSY, RET_CLOSED, RET_ERR, RET_INVALID_CTX, RET_MISSING_CALLBACK,
    RET_OK, RET_STALE_WARN, RET_TIMEOUT, RET_TOO_LARGE,
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
    pub use crate::description::{Description, RUNTIME_HEADER};
    pub use crate::egress::deferred::Deferred;
    pub use crate::egress::owned::{free_answer, store_mirror, store_opt_mirror, Owned, SyncOut};
    pub use crate::egress::reply::{self, Answer, NativeOut, Reply};
    pub use crate::egress::typed::{OutSlots, Zero};
    pub use crate::events::{self, emit, EmitError, EventDesc, ListenerView};
    pub use crate::ingress::envelope::{self, FieldReader, FieldWriter, Scalar};
    pub use crate::ingress::request::{ArgsView, Request};
    pub use crate::library::{ffid_catches_panics, CborHandler, Library, Method, NativeHandler};
    pub use crate::lifecycle::{
        add_listener, add_typed_listener, call_inline, call_sync, call_typed, cancel,
        completion_fd, create, destroy, drain, last_error, last_request_id, poll, poll_fd,
        remove_listener, static_context, stats_into, submit, submit_cbor, StaticContext,
    };
    pub use crate::marshal::{self, cbor};
    pub use crate::options::Options;
    pub use crate::schema;
    pub use crate::worker::tasks::spawn_handler;
    pub use crate::CallError;
    pub use minicbor;
}

#[doc = include_str!("../docs/library.md")]
pub use ffi_dispatch_macros::library;
#[doc = include_str!("../docs/enum.md")]
pub use ffi_dispatch_macros::Enum;
#[doc = include_str!("../docs/record.md")]
pub use ffi_dispatch_macros::Record;
