//! The trait a served library implements (the `library` macro writes it), its method
//! table, and how the worker lends the library value to a handler.

use std::ffi::c_int;

use crate::egress::reply::Reply;
use crate::error::CallError;
use crate::ingress::envelope::FieldReader;

/// Whether a panicking handler is turned into an `ERR` answer (`true` with
/// `panic = "unwind"`, the default) or aborts the process (`panic = "abort"`).
pub const PANICS_ARE_CAUGHT: bool = cfg!(panic = "unwind");

/// Returns 1 when handler panics become `ERR` answers, 0 when they abort the process
/// (the library was built with `panic = "abort"`).
#[no_mangle]
pub extern "C" fn ffid_catches_panics() -> c_int {
    PANICS_ARE_CAUGHT as c_int
}

/// One event a library declares (`#[ffi(event)]`): its name and how its CBOR payload
/// becomes the native view.
pub struct EventDesc {
    /// The event's name (the `<lib>_add_<name>_listener` export).
    pub name: &'static str,
    /// Decodes the CBOR payload and answers its native form into the reply.
    pub native: fn(&[u8], &mut Reply) -> Result<(), CallError>,
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
