//! Reply delivery: turns a handler's result into the bytes of the host's callback.
//!
//! The worker owns one [`Reply`] buffer and reuses it for every request, so a steady
//! stream of calls allocates nothing here. Every answer is followed by a NUL byte that
//! is not counted in `len`, so a host may treat text answers as C strings.

use std::ffi::{c_int, c_void};
use std::fmt::Display;
use std::future::Future;
use std::mem::size_of;
use std::pin::Pin;
use std::sync::Arc;

use minicbor::Encoder;

use crate::abi::{Callback, RET_ERR, RET_OK};
use crate::egress::outbox::Outbox;
use crate::egress::pending::TokenState;
use crate::error::CallError;
use crate::ingress::envelope::{Envelope, Kind};
use crate::marshal::{Arena, Element, Native};

/// An async handler's task, answering through its reply token (see `worker/tasks.rs`).
pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The answer being built for the current request, in the request's view (native or CBOR).
pub struct Reply {
    out: NativeOut,
    kind: Kind,
    /// Where the worker's answers leave (`None` on other threads): what a reply token
    /// needs.
    outbox: Option<Arc<Outbox>>,
    /// The request being handled, while its handler runs.
    request: Option<Current>,
    /// The handler took the reply token.
    deferred: bool,
    /// An async handler's task, for the worker to adopt.
    spawned: Option<TaskFuture>,
    /// The current native answer is handed over as an owned block, as an owned
    /// request's, because it goes to a completion queue: its pointers must stay valid
    /// until the host drains it, after later answers reused this reply.
    queued_native: bool,
}

/// Who answers the current request.
#[derive(Clone, Copy)]
struct Current {
    callback: Callback,
    user_data: *mut c_void,
    id: u64,
}

/// Where a native answer is written: plain bytes, or a C mirror laid out in an arena.
pub struct NativeOut {
    buf: Vec<u8>,
    arena: Arena,
    /// `Some(len)` when the answer is the arena's first `len` bytes (a C mirror).
    mirror_len: Option<usize>,
    /// The answer will be handed over ([`Kind::Owned`]): a mirror is laid out behind an
    /// owned block's header.
    owned: bool,
}

impl NativeOut {
    /// Appends raw answer bytes.
    #[inline]
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Answers with `v`'s C form: the callback's `msg` points to it, `len` is its size,
    /// and everything it points to lives in the same arena until the callback returns.
    pub fn mirror<T: Native>(&mut self, v: &T) {
        let head = self.head::<T::Fields>(1, v.c_extra());
        let c = v.to_c(&mut self.arena);
        // SAFETY: `head` has room for one aligned `T::Fields`.
        unsafe { head.write(c) };
    }

    /// Answers with a C array of `v`'s elements (`len` = `v.len() * sizeof(element)`).
    pub fn mirror_slice<T: Element>(&mut self, v: &[T]) {
        let extra = v.iter().map(Native::c_extra).sum();
        let head = self.head::<T::Fields>(v.len(), extra);
        for (i, item) in v.iter().enumerate() {
            let c = item.to_c(&mut self.arena);
            // SAFETY: `head` has room for `v.len()` elements and `i < v.len()`.
            unsafe { head.add(i).write(c) };
        }
    }

    /// Empties the arena for an answer of `n` values of `T` at its start (so `msg` is
    /// the arena's base), a zero byte after them (`msg[len] == 0`: `reset` zero-fills),
    /// and `extra` bytes of pointed-to data behind.
    fn head<T: Copy>(&mut self, n: usize, extra: usize) -> *mut T {
        assert!(
            std::mem::align_of::<T>() <= 8,
            "C forms are at most 8-byte aligned"
        );
        let len = n * size_of::<T>();
        let bytes = Arena::array_size::<u8>(len + 1) + extra;
        if self.owned {
            self.arena.reset_owned(bytes);
        } else {
            self.arena.reset(bytes);
        }
        self.mirror_len = Some(len);
        // The arena's base is 8-byte aligned, which suffices for `T`.
        self.arena.array::<u8>(len + 1).cast()
    }
}

impl Reply {
    pub(crate) fn new(outbox: Option<Arc<Outbox>>) -> Self {
        Reply {
            out: NativeOut {
                buf: Vec::with_capacity(256),
                arena: Arena::new(),
                mirror_len: None,
                owned: false,
            },
            kind: Kind::Native,
            outbox,
            request: None,
            deferred: false,
            spawned: None,
            queued_native: false,
        }
    }

    /// The worker, after a deferred handler: the task it spawned, if any.
    pub(crate) fn take_spawned(&mut self) -> Option<TaskFuture> {
        self.spawned.take()
    }

    /// An async handler's task, for the worker to adopt when the handler returns.
    pub(crate) fn set_spawned(&mut self, task: TaskFuture) {
        self.spawned = Some(task);
    }

    /// The worker, before running a handler: an answer for `env`, request `id`.
    #[inline]
    pub(crate) fn begin(&mut self, env: &Envelope, id: u64) {
        let queued = self.outbox.as_ref().is_some_and(|o| o.queues_completions());
        self.start_answer(env.kind, queued);
        self.request = Some(Current {
            callback: env.callback,
            user_data: env.user_data.0,
            id,
        });
        self.deferred = false;
    }

    /// The worker, after the handler: whether it took the reply token.
    #[inline]
    pub(crate) fn end(&mut self) -> bool {
        self.request = None;
        self.deferred
    }

    /// The current request handed to its reply token ([`Deferred::take`]): the worker
    /// will not answer it.
    ///
    /// # Panics
    /// Outside a handler running on a worker, or when called twice for one request.
    ///
    /// [`Deferred::take`]: crate::Deferred::take
    pub(crate) fn take_request(&mut self) -> (Arc<Outbox>, TokenState) {
        let (Some(outbox), Some(req)) = (&self.outbox, self.request) else {
            panic!("Deferred::take outside a handler");
        };
        assert!(
            !self.deferred,
            "Deferred::take called twice for one request"
        );
        self.deferred = true;
        let state = TokenState::new(req.id, req.callback, req.user_data, self.kind);
        (outbox.clone(), state)
    }

    #[inline]
    pub(crate) fn start(&mut self, kind: Kind) {
        self.start_answer(kind, false);
    }

    /// Starts an answer of `kind` for a context whose answers are `queued` to its
    /// completion queue: a native one is then handed over as an owned block, which
    /// [`Outbox::answer_reply`] marks for the drain to free.
    ///
    /// [`Outbox::answer_reply`]: crate::egress::outbox::Outbox::answer_reply
    #[inline]
    pub(crate) fn start_answer(&mut self, kind: Kind, queued: bool) {
        self.out.buf.clear();
        self.out.mirror_len = None;
        self.queued_native = queued && kind == Kind::Native;
        self.out.owned = kind == Kind::Owned || self.queued_native;
        self.kind = kind;
    }

    /// Answers with a value.
    #[inline]
    pub fn value<T: Answer + ?Sized>(&mut self, v: &T) -> Result<(), CallError> {
        self.out.buf.clear();
        self.out.mirror_len = None;
        match self.kind {
            Kind::Native | Kind::Owned => v.native(&mut self.out),
            Kind::Cbor => v
                .cbor(&mut Encoder::new(&mut self.out.buf))
                .map_err(|e| CallError::new(format!("encoding the result: {e}")))?,
        }
        Ok(())
    }

    /// Answers with a handler's `Result`: `Ok` as [`Reply::value`], `Err` as an error.
    #[inline]
    pub fn result<T: Answer, E: Display>(&mut self, r: Result<T, E>) -> Result<(), CallError> {
        match r {
            Ok(v) => self.value(&v),
            Err(e) => Err(CallError::from_display(e)),
        }
    }

    /// The answer bytes with the NUL terminator after them. For [`Kind::Owned`] (and a
    /// queued native answer) they describe an owned block that the callback (or the
    /// drain) takes over (`egress/owned.rs`).
    #[inline]
    pub(crate) fn ok_bytes(&mut self) -> &[u8] {
        if self.kind == Kind::Owned || self.queued_native {
            return self.owned_bytes();
        }
        if let Some(len) = self.out.mirror_len {
            // SAFETY: `lay_out` reserved at least `len + 1` initialised bytes at the
            // arena's start and left byte `len` zero; the arena is not touched again
            // until the next answer, after the callback has returned.
            return unsafe { std::slice::from_raw_parts(self.out.arena.base(), len + 1) };
        }
        let buf = &mut self.out.buf;
        if self.kind == Kind::Cbor && buf.is_empty() {
            buf.push(0xf6); // CBOR null: the empty answer of a CBOR call
        }
        buf.push(0);
        buf
    }

    /// What the callback of an owned-answer request gets ([`Handover`]): a laid-out
    /// answer's arena handed over as its block, or a flat answer's bytes behind a tag.
    ///
    /// [`Handover`]: crate::egress::owned::Handover
    fn owned_bytes(&mut self) -> &[u8] {
        use crate::egress::owned::Handover;
        let buf = &mut self.out.buf;
        match self.out.mirror_len.take() {
            Some(len) => Handover::block(buf, self.out.arena.detach(), len),
            None => buf.insert(0, Handover::FLAT),
        }
        buf.push(0);
        buf
    }

    /// Overwrites the last answer's bytes (the message and the arena its pointers point
    /// into) with [`POISON_BYTE`](crate::abi::POISON_BYTE), once its callback has
    /// returned: a pointer the host kept reads garbage, not the next answer. A handed-over
    /// answer is the host's, and left alone.
    pub(crate) fn poison(&mut self) {
        use crate::abi::POISON_BYTE;
        self.out.buf.fill(POISON_BYTE);
        if !self.out.owned {
            self.out.arena.poison(POISON_BYTE);
        }
    }

    /// A handler's outcome as what its callback gets: `RET_OK` and the answer written,
    /// or `RET_ERR` and the error's message (both NUL-terminated).
    #[inline]
    pub(crate) fn outcome(&mut self, result: Result<(), CallError>) -> (c_int, &[u8]) {
        match result {
            Ok(()) => (RET_OK, self.ok_bytes()),
            Err(e) => (RET_ERR, self.err_bytes(e.message())),
        }
    }

    /// An error message with the NUL terminator appended, never empty.
    #[inline]
    pub(crate) fn err_bytes(&mut self, msg: &str) -> &[u8] {
        let buf = &mut self.out.buf;
        buf.clear();
        self.out.mirror_len = None;
        let msg = if msg.is_empty() { "unknown error" } else { msg };
        // A message with an interior NUL would be cut short by a C reader: replace it.
        buf.extend(msg.bytes().map(|b| if b == 0 { b' ' } else { b }));
        buf.push(0);
        buf
    }
}

/// A value a handler can answer with, in both views.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a method's result",
    label = "unsupported FFI result type",
    note = "supported: (), bool, fixed-size integers, f32, f64, &str, String, &[u8], Vec<u8>, Option<T>, Vec<T>, and types deriving `ffi_dispatch::Record` or `ffi_dispatch::Enum`"
)]
pub trait Answer {
    /// Raw bytes for the native view.
    fn native(&self, out: &mut NativeOut);
    /// CBOR for the CBOR view.
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>>;
}

impl Answer for str {
    #[inline]
    fn native(&self, out: &mut NativeOut) {
        out.bytes(self.as_bytes());
    }
    #[inline]
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        e.str(self).map(drop)
    }
}

impl Answer for String {
    #[inline]
    fn native(&self, out: &mut NativeOut) {
        self.as_str().native(out)
    }
    #[inline]
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        self.as_str().cbor(e)
    }
}

impl Answer for [u8] {
    #[inline]
    fn native(&self, out: &mut NativeOut) {
        out.bytes(self);
    }
    #[inline]
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        e.bytes(self).map(drop)
    }
}

impl Answer for Vec<u8> {
    #[inline]
    fn native(&self, out: &mut NativeOut) {
        self.as_slice().native(out)
    }
    #[inline]
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        self.as_slice().cbor(e)
    }
}

impl Answer for bool {
    #[inline]
    fn native(&self, out: &mut NativeOut) {
        out.bytes(&[*self as u8]);
    }
    #[inline]
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        e.bool(*self).map(drop)
    }
}

/// No value: `len == 0` natively, CBOR null on the wire.
impl Answer for () {
    #[inline]
    fn native(&self, _: &mut NativeOut) {}
    #[inline]
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        e.null().map(drop)
    }
}

macro_rules! int_answer {
    ($($t:ty => $enc:ident),*) => {$(
        /// Natively its native-endian bytes; an integer on the CBOR wire.
        impl Answer for $t {
            #[inline]
            fn native(&self, out: &mut NativeOut) { out.bytes(&self.to_ne_bytes()) }
            #[inline]
            fn cbor(&self, e: &mut Encoder<&mut Vec<u8>>) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
                e.$enc(*self).map(drop)
            }
        }
    )*};
}
int_answer!(u8 => u8, u16 => u16, u32 => u32, u64 => u64, i8 => i8, i16 => i16, i32 => i32, i64 => i64, f32 => f32, f64 => f64);

impl<T: Answer + ?Sized> Answer for &T {
    #[inline]
    fn native(&self, out: &mut NativeOut) {
        (**self).native(out)
    }
    #[inline]
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        (**self).cbor(e)
    }
}

/// Natively `None` is an empty answer (`len == 0`) and `Some(v)` is `v`'s answer; on the
/// CBOR wire `None` is null. (Natively an empty string, byte string or array inside
/// `Some` also has `len == 0`: use the CBOR view where that difference matters.)
impl<T: Answer> Answer for Option<T> {
    #[inline]
    fn native(&self, out: &mut NativeOut) {
        if let Some(v) = self {
            v.native(out)
        }
    }
    #[inline]
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        match self {
            Some(v) => v.cbor(e),
            None => e.null().map(drop),
        }
    }
}

/// Natively a C array of the elements' C forms (`len` = count x element size); a CBOR
/// array on the wire.
impl<T: Element + Answer> Answer for [T] {
    fn native(&self, out: &mut NativeOut) {
        out.mirror_slice(self)
    }
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        e.array(self.len() as u64)?;
        self.iter().try_for_each(|v| v.cbor(e))
    }
}

impl<T: Element + Answer> Answer for Vec<T> {
    fn native(&self, out: &mut NativeOut) {
        self.as_slice().native(out)
    }
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        self.as_slice().cbor(e)
    }
}
