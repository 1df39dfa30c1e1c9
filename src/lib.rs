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
//! ## Panics
//! A handler that panics answers `ERR` with a message starting `handler panicked:` and
//! the worker keeps serving. That needs unwinding: in a build with `panic = "abort"`
//! ([`PANICS_ARE_CAUGHT`] is `false`) a panicking handler aborts the host process.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(target_pointer_width = "64"))]
compile_error!("ffi-dispatch encodes context handles in 64-bit pointers");

pub mod abi;
pub mod cbor;
mod context;
pub mod envelope;
pub mod marshal;
mod registry;
pub mod reply;
mod ring;
pub mod schema;
mod sync;
mod wake;
mod worker;

use std::borrow::Cow;
use std::ffi::{c_int, c_void};
use std::fmt;
use std::time::Duration;

pub use abi::{
    ffid_ctx, Callback, Refusal, RET_BUSY, RET_ERR, RET_MISSING_CALLBACK, RET_OK, RET_STALE_WARN,
};
#[cfg(target_os = "linux")]
pub use context::wake_fd;
pub use context::{create, destroy, static_context, stats, submit, submit_cbor, Stats};
pub use envelope::{FieldReader, FieldWriter, INLINE_CAPACITY};
pub use registry::MAX_CONTEXTS;
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
    /// Owned constructor arguments, copied on the host thread at create time.
    type Config: Send + 'static;
    /// Builds the value on the worker thread. An error is reported through the create
    /// callback and every call queued behind it is answered `ERR`.
    fn construct(config: Self::Config) -> Result<Self, CallError>;
    /// Runs on the worker thread during destroy, after the last request was answered.
    fn teardown(&mut self) {}
}

/// The two views of one method. Both decode the same arguments and call the same
/// function; they differ only in how the arguments arrive and the answer is encoded.
pub struct Method<L> {
    /// The method's name (the `<lib>_<name>` export).
    pub name: &'static str,
    /// Native view: fields in the order the export wrote them.
    pub native: fn(&mut L, &mut FieldReader<'_>, &mut Reply) -> Result<(), CallError>,
    /// CBOR view: the request map, borrowed.
    pub cbor: fn(&mut L, &[u8], &mut Reply) -> Result<(), CallError>,
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
    /// A futex word (`parking_lot_core`).
    #[default]
    Futex,
    /// A Linux eventfd, pollable together with other descriptors.
    EventFd,
}

/// Which ring implementation carries a context's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RingKind {
    /// The default: producers tag slots, the worker never writes them (see `ring.rs`).
    #[default]
    Tagged,
    /// `crossbeam-queue`'s `ArrayQueue`, for comparison.
    ArrayQueue,
}

/// Per-context runtime options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Ring capacity in requests. Default 4096.
    pub ring_capacity: usize,
    /// How long an idle worker busy-spins before parking. Default 50 µs; zero parks at once.
    pub spin: Duration,
    /// Full-ring policy. Default [`BackPressure::Block`].
    pub backpressure: BackPressure,
    /// Wake backend. Default [`WakeKind::Futex`].
    pub wake: WakeKind,
    /// Ring implementation. Default [`RingKind::Tagged`].
    pub ring: RingKind,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ring_capacity: 4096,
            spin: Duration::from_micros(50),
            backpressure: BackPressure::Block,
            wake: WakeKind::Futex,
            ring: RingKind::Tagged,
        }
    }
}

impl Options {
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
        }
    }

    /// Reads host options; `None` for an unknown `struct_size` or out-of-range values.
    pub fn from_c(o: &abi::ffid_options) -> Option<Options> {
        if o.struct_size as usize != std::mem::size_of::<abi::ffid_options>()
            || o.ring_capacity == 0
        {
            return None;
        }
        Some(Options {
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
        })
    }

    /// Reads an optional host options pointer: null means the defaults.
    ///
    /// # Safety
    /// `opts` is null or points to a valid `ffid_options`.
    pub unsafe fn from_c_ptr(opts: *const abi::ffid_options) -> Option<Options> {
        // SAFETY: forwarded to the caller.
        match unsafe { opts.as_ref() } {
            None => Some(Options::default()),
            Some(o) => Options::from_c(o),
        }
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
        let o = Options {
            ring_capacity: 8,
            spin: Duration::ZERO,
            backpressure: BackPressure::Reject,
            wake: WakeKind::EventFd,
            ring: RingKind::ArrayQueue,
        };
        assert_eq!(Options::from_c(&o.to_c()), Some(o));
        let mut bad = Options::default().to_c();
        bad.backpressure = 9;
        assert_eq!(Options::from_c(&bad), None);
        let mut small = Options::default().to_c();
        small.struct_size = 4;
        assert_eq!(Options::from_c(&small), None);
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
