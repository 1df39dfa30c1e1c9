//! Reply delivery: turns a handler's result into the bytes of the host's callback.
//!
//! The worker owns one [`Reply`] buffer and reuses it for every request, so a steady
//! stream of calls allocates nothing here. Every answer is followed by a NUL byte that
//! is not counted in `len`, so a host may treat text answers as C strings.

use std::ffi::{c_int, c_void};
use std::fmt::Display;

use minicbor::Encoder;

use crate::abi::Callback;
use crate::envelope::Kind;
use crate::CallError;

/// Invokes the host's callback. The bytes must end with the NUL terminator, which is
/// not counted in `len`.
#[inline]
pub(crate) fn deliver(callback: Callback, user_data: *mut c_void, ret: c_int, msg_nul: &[u8]) {
    debug_assert_eq!(msg_nul.last(), Some(&0));
    // SAFETY: `callback` is the non-null function pointer the host gave with this request
    // and promised to keep callable until its terminal callback; `msg` points to
    // `len + 1` initialised bytes that stay alive and unchanged for the whole call.
    unsafe { callback(ret, msg_nul.as_ptr().cast(), msg_nul.len() - 1, user_data) };
}

/// The answer being built for the current request, in the request's view (native or CBOR).
pub struct Reply {
    buf: Vec<u8>,
    kind: Kind,
}

impl Reply {
    pub(crate) fn new() -> Self {
        Reply {
            buf: Vec::with_capacity(256),
            kind: Kind::Native,
        }
    }

    #[inline]
    pub(crate) fn start(&mut self, kind: Kind) {
        self.buf.clear();
        self.kind = kind;
    }

    /// Answers with a value.
    #[inline]
    pub fn value<T: Answer + ?Sized>(&mut self, v: &T) -> Result<(), CallError> {
        self.buf.clear();
        match self.kind {
            Kind::Native => v.native(&mut self.buf),
            Kind::Cbor => v
                .cbor(&mut Encoder::new(&mut self.buf))
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

    /// The answer bytes with the NUL terminator appended.
    #[inline]
    pub(crate) fn ok_bytes(&mut self) -> &[u8] {
        if self.kind == Kind::Cbor && self.buf.is_empty() {
            self.buf.push(0xf6); // CBOR null: the empty answer of a CBOR call
        }
        self.buf.push(0);
        &self.buf
    }

    /// An error message with the NUL terminator appended, never empty.
    #[inline]
    pub(crate) fn err_bytes(&mut self, msg: &str) -> &[u8] {
        self.buf.clear();
        let msg = if msg.is_empty() { "unknown error" } else { msg };
        // A message with an interior NUL would be cut short by a C reader: replace it.
        self.buf
            .extend(msg.bytes().map(|b| if b == 0 { b' ' } else { b }));
        self.buf.push(0);
        &self.buf
    }
}

/// A value a handler can answer with, in both views.
pub trait Answer {
    /// Raw bytes for the native view.
    fn native(&self, out: &mut Vec<u8>);
    /// CBOR for the CBOR view.
    fn cbor(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>>;
}

impl Answer for str {
    #[inline]
    fn native(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
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
    fn native(&self, out: &mut Vec<u8>) {
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
    fn native(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
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
    fn native(&self, out: &mut Vec<u8>) {
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
    fn native(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
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
    fn native(&self, _: &mut Vec<u8>) {}
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
            fn native(&self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_ne_bytes()) }
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
    fn native(&self, out: &mut Vec<u8>) {
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
