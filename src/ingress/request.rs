//! A request as the exports build it on the host's thread: its view and its copied
//! arguments.

use super::envelope::{self, FieldReader, FieldWriter};
use crate::Refusal;

/// A request ready for the ring: its view and its copied arguments.
pub struct Request {
    pub(crate) kind: envelope::Kind,
    pub(crate) payload: envelope::Payload,
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
    /// A CBOR request: the buffer is copied as it is and decoded on the worker. Refused
    /// `TooLarge` over [`MAX_REQUEST_BYTES`](crate::abi::MAX_REQUEST_BYTES) or without
    /// the memory for the copy.
    pub fn cbor(bytes: &[u8]) -> Result<Request, Refusal> {
        Ok(Request {
            kind: envelope::Kind::Cbor,
            payload: envelope::Payload::copy_request(bytes)?,
        })
    }
    /// The arguments, for reading on the worker (a generated constructor does this with
    /// the copied constructor arguments).
    pub fn view(&self) -> ArgsView<'_> {
        match self.kind {
            envelope::Kind::Native | envelope::Kind::Owned => {
                ArgsView::Native(FieldReader::new(self.payload.as_slice()))
            }
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
