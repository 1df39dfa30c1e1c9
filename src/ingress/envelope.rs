//! The request envelope: what one accepted call carries from the host thread to the worker.
//!
//! An `Envelope` is stored by value in a ring slot. Its payload is a byte buffer that
//! lives inline up to [`INLINE_CAPACITY`] bytes, and above that in a recycled heap buffer
//! (see `pool`). Both request kinds use it:
//!
//! - CBOR: the host's request bytes, copied as they are (decoded on the worker,
//!   zero-copy, borrowing from this buffer).
//! - native: the fields of the host's args struct, copied in declaration order by a
//!   [`FieldWriter`]: scalars as their native-endian bytes (a struct of scalars is thus
//!   a plain memcpy of its fields), strings and byte fields as a length then the bytes.
//!   The host keeps ownership of its struct and strings; the copy is what makes the call
//!   asynchronous. [`FieldReader`] reads the fields back in the same order.

use std::ffi::{c_int, c_void};

use crate::abi::{Callback, Invalid, Refusal, TooLarge, MAX_REQUEST_BYTES};
use crate::ffi::host::UserData;
use crate::CallError;

/// Payloads up to this many bytes travel inside the ring slot (no allocation): as much as
/// fits beside the header in one 128-byte slot (a 64-byte payload field plus its length
/// prefix fits, as do the scalar calls).
pub const INLINE_CAPACITY: usize = 88;

/// The request bytes, inline or on the heap.
pub(crate) enum Payload {
    Inline {
        len: u8,
        bytes: [u8; INLINE_CAPACITY],
    },
    /// A buffer from [`pool`], `len` = the payload's length.
    Heap(Vec<u8>),
}

/// A heap payload's buffer goes back to the pool wherever the payload ends: answered by
/// the worker, dropped with a destroyed ring, or refused before it was queued.
impl Drop for Payload {
    fn drop(&mut self) {
        if let Payload::Heap(buf) = self {
            pool::give(std::mem::take(buf));
        }
    }
}

/// Recycled heap payload buffers: host threads take them, and the worker gives them
/// back after answering, so a steady stream of large calls neither allocates nor frees.
/// Freeing on the worker what a host thread allocated is what the system allocator does
/// worst: glibc trims and regrows its heap, and the page faults cost 50-500 µs here.
/// Buffers come in power-of-two classes from 128 B to 256 KiB, each class keeping at most
/// 512 KiB (and 2 to 64 buffers); larger payloads and a full class use the allocator.
pub(crate) mod pool {
    use crossbeam_queue::ArrayQueue;

    use crate::sync::lazy_box::LazyBox;

    const MIN_SHIFT: u32 = 7;
    const MAX_SHIFT: u32 = 18;
    const CLASS_BYTES: usize = 512 * 1024;

    /// Made on first use; freed only when the library is unloaded ([`release`]), and
    /// forgotten in a fork child ([`forget_after_fork`]).
    static CLASSES: LazyBox<Vec<ArrayQueue<Vec<u8>>>> = LazyBox::new();

    #[inline]
    fn classes() -> &'static [ArrayQueue<Vec<u8>>] {
        CLASSES.get_or_init(|| {
            (MIN_SHIFT..=MAX_SHIFT)
                .map(|shift| ArrayQueue::new((CLASS_BYTES >> shift).clamp(2, 64)))
                .collect()
        })
    }

    /// In a fork child: starts a pool of its own, leaving the parent's as it is (a
    /// parent thread may have been part-way through a push when it forked).
    pub(crate) fn forget_after_fork() {
        CLASSES.forget();
    }

    /// Frees the pool and every buffer in it.
    ///
    /// # Safety
    /// Nothing uses the pool during or after the call: the library is being unloaded
    /// with no context left (see `lifecycle/unload.rs`).
    pub(crate) unsafe fn release() {
        // SAFETY: the caller's contract.
        drop(unsafe { CLASSES.take() });
    }

    /// The class whose buffers hold `len` bytes, if pooled.
    fn class_of(len: usize) -> Option<u32> {
        (len <= 1 << MAX_SHIFT).then(|| len.next_power_of_two().trailing_zeros().max(MIN_SHIFT))
    }

    /// An empty buffer with room for `len` bytes; `None` when no memory can be had.
    pub(super) fn take(len: usize) -> Option<Vec<u8>> {
        let (pooled, room) = match class_of(len) {
            Some(shift) => (classes()[(shift - MIN_SHIFT) as usize].pop(), 1 << shift),
            None => (None, len),
        };
        if let Some(mut buf) = pooled {
            buf.clear();
            return Some(buf);
        }
        let mut buf = Vec::new();
        buf.try_reserve_exact(room).ok()?;
        Some(buf)
    }

    /// Keeps a buffer for reuse if it is one of the pool's sizes and its class has room.
    pub(super) fn give(buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap.is_power_of_two() {
            if let Some(shift) = class_of(cap).filter(|&s| 1 << s == cap) {
                let _ = classes()[(shift - MIN_SHIFT) as usize].push(buf);
            }
        }
    }
}

/// Room for a request of `len` bytes (more than fit inline).
fn request_buffer(len: usize) -> Result<Vec<u8>, Refusal> {
    if len > MAX_REQUEST_BYTES {
        return Err(Refusal::TooLarge(TooLarge::OverLimit { len }));
    }
    pool::take(len).ok_or(Refusal::TooLarge(TooLarge::NoMemory { len }))
}

impl Payload {
    /// Copies `src`: inline when it fits, else into a pooled buffer. For the runtime's
    /// own copies (an answer, an event); a host's request goes through
    /// [`Payload::copy_request`].
    #[inline]
    pub(crate) fn copy_from(src: &[u8]) -> Payload {
        Payload::copy_into(src, pool::take(src.len()).unwrap_or_default())
    }

    /// Copies a host's request bytes, refusing what is over [`MAX_REQUEST_BYTES`] or
    /// what no memory can hold.
    #[inline]
    pub(crate) fn copy_request(src: &[u8]) -> Result<Payload, Refusal> {
        if src.len() <= INLINE_CAPACITY {
            return Ok(Payload::copy_into(src, Vec::new()));
        }
        Ok(Payload::copy_into(src, request_buffer(src.len())?))
    }

    /// `src` inline when it fits, else appended to `buf` (grown if it has no room).
    #[inline]
    fn copy_into(src: &[u8], mut buf: Vec<u8>) -> Payload {
        if src.len() <= INLINE_CAPACITY {
            let mut bytes = [0u8; INLINE_CAPACITY];
            bytes[..src.len()].copy_from_slice(src);
            Payload::Inline {
                len: src.len() as u8,
                bytes,
            }
        } else {
            buf.extend_from_slice(src);
            Payload::Heap(buf)
        }
    }

    /// Builds a payload from native fields. `write` runs twice: once to measure (and
    /// check the host's input), once to fill a buffer of exactly that size, so a large
    /// payload is written once. A second pass that disagrees with the first (the
    /// host changed its memory during the call) refuses instead of writing out of bounds.
    #[inline]
    pub(crate) fn from_fields(
        write: impl Fn(&mut FieldWriter<'_>) -> Result<(), Refusal>,
    ) -> Result<Payload, Refusal> {
        let mut measure = FieldWriter {
            out: Target::Measure,
            pos: 0,
        };
        write(&mut measure)?;
        Payload::fill(measure.pos, write)
    }

    /// The filling pass alone, for arguments whose size is known in advance (only
    /// scalars): `write` runs once, and must write exactly `len` bytes.
    #[inline]
    pub(crate) fn fill(
        len: usize,
        write: impl Fn(&mut FieldWriter<'_>) -> Result<(), Refusal>,
    ) -> Result<Payload, Refusal> {
        // Inline: zeroed bytes, overwritten. Heap: a pooled buffer appended to, not
        // zero-filled first, so a large payload is written once.
        let mut payload = if len <= INLINE_CAPACITY {
            Payload::Inline {
                len: len as u8,
                bytes: [0u8; INLINE_CAPACITY],
            }
        } else {
            Payload::Heap(request_buffer(len)?)
        };
        let out = match &mut payload {
            Payload::Inline { bytes, .. } => Target::Inline(&mut bytes[..len]),
            Payload::Heap(buf) => Target::Heap(buf, len),
        };
        let mut fill = FieldWriter { out, pos: 0 };
        write(&mut fill)?;
        if fill.pos != len || payload.as_slice().len() != len {
            return Err(Refusal::invalid(Invalid::ChangedDuringCall));
        }
        Ok(payload)
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Inline { len, bytes } => &bytes[..*len as usize],
            Payload::Heap(b) => b,
        }
    }
}

/// Which view of a method the request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Native,
    Cbor,
    /// The native view, its `RET_OK` answer made an owned block that the callback takes
    /// over (`egress/owned.rs`): a blocking call's.
    Owned,
}

impl Kind {
    /// The kind `kind as u8` was.
    pub(crate) fn from_bits(bits: u8) -> Kind {
        match bits {
            0 => Kind::Native,
            1 => Kind::Cbor,
            _ => Kind::Owned,
        }
    }
}

/// Who an answer or a ping goes to: the request's callback and `user_data`, its id (0 for
/// a create's outcome, and with the `ArrayQueue` ring) and the view it was made in (an
/// `Owned` request's callback is the runtime's own: a typed or blocking call's).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recipient {
    pub(crate) callback: Callback,
    pub(crate) user_data: UserData,
    pub(crate) id: u64,
    pub(crate) kind: Kind,
}

impl Recipient {
    /// Whether the callback is the host's own (not a typed reply's or a blocking call's
    /// adapter).
    pub(crate) fn is_hosts(&self) -> bool {
        self.kind != Kind::Owned
    }
}

/// One accepted request. `repr(C)` keeps the header first, so the ring slot's first
/// cache line holds the header and a small inline payload.
#[repr(C)]
pub(crate) struct Envelope {
    pub(crate) callback: Callback,
    pub(crate) user_data: UserData,
    pub(crate) method: u16,
    pub(crate) kind: Kind,
    pub(crate) payload: Payload,
}

// An envelope and the ring's 8-byte tag fill one 128-byte slot, no more.
const _: () = assert!(std::mem::size_of::<Envelope>() + 8 <= 128);

/// The method id of an async task's wake marker: no method has it (a library has at
/// most `u16::MAX` methods, ids from 0).
const TASK_WAKE: u16 = u16::MAX;

impl Envelope {
    /// Where request `id`'s answer and pings go.
    #[inline]
    pub(crate) fn recipient(&self, id: u64) -> Recipient {
        Recipient {
            callback: self.callback,
            user_data: self.user_data,
            id,
            kind: self.kind,
        }
    }

    /// A marker asking the worker to poll async task `key` again (see
    /// `worker/tasks.rs`): it takes its turn in ring order, behind the requests queued
    /// before it. Its callback is never called.
    pub(crate) fn task_wake(key: u64) -> Envelope {
        unsafe extern "C" fn never_called(
            _: c_int,
            _: *const std::ffi::c_char,
            _: usize,
            _: *mut c_void,
        ) {
        }
        Envelope {
            callback: never_called,
            user_data: UserData(key as usize as *mut c_void),
            method: TASK_WAKE,
            kind: Kind::Native,
            payload: Payload::copy_from(&[]),
        }
    }

    /// The task key, when this is a task wake marker.
    #[inline]
    pub(crate) fn task_key(&self) -> Option<u64> {
        (self.method == TASK_WAKE).then_some(self.user_data.0 as usize as u64)
    }
}

/// A scalar that crosses the native boundary as its native-endian bytes.
pub trait Scalar: Copy {
    /// Size in bytes.
    const SIZE: usize;
    /// Writes the native-endian bytes into `out` (`out.len() == SIZE`).
    fn put(self, out: &mut [u8]);
    /// Reads a value from `SIZE` native-endian bytes.
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn put(self, out: &mut [u8]) { out.copy_from_slice(&self.to_ne_bytes()) }
            #[inline]
            fn get(bytes: &[u8]) -> Self {
                <$t>::from_ne_bytes(bytes.try_into().expect("caller passes SIZE bytes"))
            }
        }
    )*};
}
scalar!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

impl Scalar for bool {
    const SIZE: usize = 1;
    #[inline]
    fn put(self, out: &mut [u8]) {
        out[0] = self as u8;
    }
    #[inline]
    fn get(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
}

/// Copies native fields into a payload (host side), through [`crate::Request::native`];
/// the generated exports drive it through [`crate::marshal::Native::write`].
pub struct FieldWriter<'a> {
    out: Target<'a>,
    pos: usize,
}

/// Where a [`FieldWriter`] pass writes.
enum Target<'a> {
    /// The first pass: only counts.
    Measure,
    /// An inline payload of exactly the measured size.
    Inline(&'a mut [u8]),
    /// A heap payload appended to, up to the measured size.
    Heap(&'a mut Vec<u8>, usize),
}

impl FieldWriter<'_> {
    /// Whether this is the measuring pass (the one that checks the host's input).
    #[inline]
    pub fn is_measuring(&self) -> bool {
        matches!(self.out, Target::Measure)
    }

    #[inline]
    fn put_raw(&mut self, src: &[u8]) {
        match &mut self.out {
            Target::Measure => {}
            Target::Inline(out) => {
                // Out of room only if the host changed its memory between the two
                // passes; `from_fields` then sees the position disagree and refuses.
                if let Some(dst) = out.get_mut(self.pos..self.pos.saturating_add(src.len())) {
                    dst.copy_from_slice(src);
                }
            }
            Target::Heap(out, limit) => {
                // Past the measured size only in the same case; never reallocate.
                if out.len() + src.len() <= *limit {
                    out.extend_from_slice(src);
                }
            }
        }
        self.pos = self.pos.saturating_add(src.len());
    }

    /// Appends a scalar.
    #[inline]
    pub fn scalar<T: Scalar>(&mut self, v: T) -> &mut Self {
        let mut bytes = [0u8; 8];
        v.put(&mut bytes[..T::SIZE]);
        self.put_raw(&bytes[..T::SIZE]);
        self
    }

    /// Appends a byte field (length, then bytes).
    #[inline]
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.scalar(b.len() as u64);
        self.put_raw(b);
        self
    }

    /// Appends a string field.
    #[inline]
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
}

/// Reads native fields back on the worker, in the order they were written. Borrowed
/// fields point into the request's payload.
pub struct FieldReader<'a> {
    rest: &'a [u8],
}

impl<'a> FieldReader<'a> {
    #[inline]
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        FieldReader { rest: bytes }
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], CallError> {
        if self.rest.len() < n {
            // Only reachable when an export's writer and its handler's reader disagree.
            return Err(CallError::new("native arguments do not match the method"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads a scalar.
    #[inline]
    pub fn scalar<T: Scalar>(&mut self) -> Result<T, CallError> {
        self.take(T::SIZE).map(T::get)
    }

    /// Reads a byte field, borrowed from the payload.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], CallError> {
        let len = self.scalar::<u64>()?;
        let len = usize::try_from(len).map_err(|_| CallError::new("native byte field too long"))?;
        self.take(len)
    }

    /// Reads a string field, borrowed from the payload. The export checks UTF-8 in its
    /// measuring pass and copies the bytes in the filling pass; this check is what stops
    /// a host that changed its string between the two passes (a contract breach) from
    /// handing the handler invalid UTF-8.
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, CallError> {
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| CallError::new("native string field is not UTF-8"))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_inline_and_heap() {
        for text_len in [0usize, 3, 40, 1000] {
            let text = "x".repeat(text_len);
            let p = Payload::from_fields(|w| {
                w.scalar(-5i64).scalar(2.5f64).str(&text).scalar(true);
                Ok(())
            })
            .unwrap();
            // i64 + f64 + (length + text) + bool
            let size = 8 + 8 + (8 + text_len) + 1;
            assert_eq!(matches!(p, Payload::Inline { .. }), size <= INLINE_CAPACITY);
            let mut r = FieldReader::new(p.as_slice());
            assert_eq!(r.scalar::<i64>().unwrap(), -5);
            assert_eq!(r.scalar::<f64>().unwrap(), 2.5);
            assert_eq!(r.str().unwrap(), text);
            assert!(r.scalar::<bool>().unwrap());
            assert!(
                r.scalar::<u8>().is_err(),
                "reading past the end is an error, not a panic"
            );
        }
    }

    #[test]
    fn copy_from_keeps_bytes() {
        for n in [0usize, 1, INLINE_CAPACITY, INLINE_CAPACITY + 1, 70_000] {
            let src: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let p = Payload::copy_from(&src);
            assert_eq!(p.as_slice(), &src[..]);
            assert_eq!(matches!(p, Payload::Heap(_)), n > INLINE_CAPACITY);
        }
    }
}
