//! Owned answers: what a blocking call (`<lib>_<m>_sync`) hands its host, to keep
//! until the host frees it with `ffid_free`. Nothing in one is valid "during the
//! callback only".
//!
//! An answer with a C layout (a record, an array) is laid out in a fresh arena behind a
//! block header and the arena's memory is handed over as it is ([`Arena::detach`]), so
//! the pointers inside it stay valid; a flat answer (text, bytes, a scalar) is copied
//! by the runtime's callback ([`Handover`]), kept inline while short, and made a block
//! when the host is handed text or bytes. Either way the host gets one pointer and
//! frees it with one call; scalars it gets by value. The block format itself is
//! `marshal/block.rs`; how each answer type fills the export's out parameters is
//! [`SyncOut`].
//!
//! [`Arena::detach`]: crate::marshal::Arena

use std::ffi::c_void;

use crate::marshal::block::{copy, free};

/// `void ffid_free(const void* answer)`: frees an answer a blocking call handed out
/// (text, bytes, a record, an array). NULL is ignored.
///
/// # Safety
/// `answer` is null or an answer pointer a `_sync` export wrote, not freed before.
#[no_mangle]
pub unsafe extern "C" fn ffid_free(answer: *const c_void) {
    // SAFETY: forwarded.
    unsafe { free_answer(answer) }
}

/// `ffid_free` for `<lib>_free`, which must reach this runtime's allocator even when
/// another ffi-dispatch library in the process also exports `ffid_free`.
///
/// # Safety
/// As `ffid_free`.
pub unsafe fn free_answer(answer: *const c_void) {
    // SAFETY: forwarded.
    unsafe { free(answer.cast()) }
}

/// How an owned-answer request's `RET_OK` answer reaches its callback. The message is
/// never the block itself: the thread that calls the callback holds `msg` for the
/// whole call, and the block's new owner may free it before that call returns. So it
/// is a tag and then:
/// - [`Handover::BLOCK`]: the address and length of a laid-out answer (a record, an
///   array) in a block of its own, whose pointers point into that block;
/// - [`Handover::FLAT`]: the answer's bytes themselves (text, bytes, a scalar), which
///   the callback copies before it returns.
pub(crate) struct Handover;

impl Handover {
    /// Tag: a block's address and the answer's length follow.
    pub(crate) const BLOCK: u8 = 0xb7;
    /// Tag: the answer's bytes follow.
    pub(crate) const FLAT: u8 = 0xf7;

    /// Writes the message for a laid-out answer of `len` bytes in `block` into `out`.
    pub(crate) fn block(out: &mut Vec<u8>, block: *const u8, len: usize) {
        out.clear();
        out.push(Handover::BLOCK);
        // The address only: `adopt` exposed the block's provenance.
        out.extend_from_slice(&(block as usize).to_ne_bytes());
        out.extend_from_slice(&len.to_ne_bytes());
    }
}

/// Answers up to this long are kept inline by the blocking caller (no block until
/// one is handed to the host).
const INLINE: usize = 24;

/// One owned answer while the runtime holds it: freed on drop unless handed over.
pub struct Owned {
    repr: Repr,
}

enum Repr {
    /// A block of its own (`ptr` is the answer's address in it).
    Block { ptr: *const u8, len: usize },
    /// A short flat answer (a NUL after it: the array has one byte more).
    Inline { bytes: [u8; INLINE + 1], len: u8 },
}

// SAFETY: a block is plain memory that nothing else references once the worker handed
// it over; whoever holds the `Owned` is its only owner.
unsafe impl Send for Owned {}

impl Owned {
    /// Takes over what an owned-answer request's `RET_OK` message hands over (see
    /// [`Handover`]): `None` for a message that is no handover.
    ///
    /// # Safety
    /// `msg` is the message of an owned-answer request's `RET_OK` callback, taken over
    /// once, during that callback.
    pub(crate) unsafe fn adopt(msg: &[u8]) -> Option<Owned> {
        let w = std::mem::size_of::<usize>();
        let (&tag, rest) = msg.split_first()?;
        let repr = match tag {
            Handover::BLOCK if rest.len() == 2 * w => Repr::Block {
                // The block's address, with the provenance `adopt` exposed.
                ptr: usize::from_ne_bytes(rest[..w].try_into().ok()?) as *const u8,
                len: usize::from_ne_bytes(rest[w..].try_into().ok()?),
            },
            Handover::FLAT if rest.len() <= INLINE => {
                let mut bytes = [0; INLINE + 1];
                bytes[..rest.len()].copy_from_slice(rest);
                Repr::Inline {
                    bytes,
                    len: rest.len() as u8,
                }
            }
            Handover::FLAT => Repr::Block {
                ptr: copy(rest),
                len: rest.len(),
            },
            _ => return None,
        };
        Some(Owned { repr })
    }

    /// The answer's bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.repr {
            // SAFETY: the block holds `len` initialised bytes at `ptr` while owned.
            Repr::Block { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            Repr::Inline { bytes, len } => &bytes[..*len as usize],
        }
    }

    /// The answer's bytes and the NUL after them (every block and inline answer has
    /// one: `marshal/block.rs`, and the arena's layout of a mirror).
    pub(crate) fn bytes_nul(&self) -> &[u8] {
        match &self.repr {
            // SAFETY: a block holds `len` bytes at `ptr` and a NUL after them.
            Repr::Block { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr, *len + 1) },
            Repr::Inline { bytes, len } => &bytes[..*len as usize + 1],
        }
    }

    /// The answer's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether the answer has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands the answer to the host as a block (made now for a short one, with the
    /// NUL after it): the address it frees with `ffid_free`.
    pub fn into_raw(self) -> *const u8 {
        let this = std::mem::ManuallyDrop::new(self);
        match &this.repr {
            Repr::Block { ptr, .. } => *ptr,
            Repr::Inline { bytes, len } => copy(&bytes[..*len as usize]),
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Repr::Block { ptr, .. } = self.repr {
            // SAFETY: ours, handed over by the worker, freed once.
            unsafe { free(ptr) }
        }
    }
}

// ---- the out parameters of a blocking call -------------------------------------------------

/// How a blocking call writes an answer of this type into the host's out parameters:
/// the C types the `_sync` export takes (`Out`: one pointer, or two as a tuple), as the
/// header declares them. Scalars are copied out by value and their block freed; text,
/// bytes, records and arrays are handed over as the block itself, which the host frees
/// with `ffid_free`. A null out pointer drops the answer.
///
/// `OptOut` is what `Option<Self>` takes: the same pointers with NULL for none, or a
/// `bool has_x` flag before a scalar.
pub trait SyncOut {
    /// The out parameter(s).
    type Out: Copy;
    /// The out parameter(s) of `Option<Self>`.
    type OptOut: Copy;
    /// Writes `answer` out.
    ///
    /// # Safety
    /// Each pointer in `out` is null or writable.
    unsafe fn store(answer: Owned, out: Self::Out);
    /// Writes `Option<Self>`'s answer out (`None`: no answer bytes).
    ///
    /// # Safety
    /// As [`SyncOut::store`].
    unsafe fn store_opt(answer: Option<Owned>, out: Self::OptOut);
}

/// Writes `v` through `p` unless `p` is null.
///
/// # Safety
/// `p` is null or writable.
unsafe fn put<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { p.write(v) };
    }
}

/// Hands the block over through `p`, or frees it when `p` is null.
///
/// # Safety
/// `p` is null or writable.
unsafe fn hand<T>(p: *mut *const T, answer: Owned) {
    if !p.is_null() {
        // SAFETY: as `put`.
        unsafe { p.write(answer.into_raw().cast()) };
    }
}

impl SyncOut for () {
    type Out = ();
    type OptOut = ();
    unsafe fn store(_: Owned, _: ()) {}
    unsafe fn store_opt(_: Option<Owned>, _: ()) {}
}

macro_rules! scalar_out {
    ($($t:ty),*) => {$(
        impl SyncOut for $t {
            type Out = *mut $t;
            type OptOut = (*mut bool, *mut $t);
            unsafe fn store(answer: Owned, out: *mut $t) {
                let mut v = [0u8; std::mem::size_of::<$t>()];
                let n = v.len().min(answer.len());
                v[..n].copy_from_slice(&answer.bytes()[..n]);
                // SAFETY: forwarded.
                unsafe { put(out, <$t>::from_ne_bytes(v)) };
            }
            unsafe fn store_opt(answer: Option<Owned>, (has, out): (*mut bool, *mut $t)) {
                // SAFETY: forwarded.
                unsafe {
                    put(has, answer.is_some());
                    match answer {
                        Some(a) => Self::store(a, out),
                        None => put(out, 0 as $t),
                    }
                }
            }
        }
    )*};
}
scalar_out!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

impl SyncOut for bool {
    type Out = *mut bool;
    type OptOut = (*mut bool, *mut bool);
    unsafe fn store(answer: Owned, out: *mut bool) {
        // SAFETY: forwarded.
        unsafe { put(out, answer.bytes().first().is_some_and(|&b| b != 0)) };
    }
    unsafe fn store_opt(answer: Option<Owned>, (has, out): (*mut bool, *mut bool)) {
        // SAFETY: forwarded.
        unsafe {
            put(has, answer.is_some());
            match answer {
                Some(a) => Self::store(a, out),
                None => put(out, false),
            }
        }
    }
}

/// Text: the block is the NUL-terminated UTF-8 itself.
impl SyncOut for str {
    type Out = *mut *const std::ffi::c_char;
    type OptOut = *mut *const std::ffi::c_char;
    unsafe fn store(answer: Owned, out: Self::Out) {
        // SAFETY: forwarded.
        unsafe { hand(out, answer) };
    }
    unsafe fn store_opt(answer: Option<Owned>, out: Self::OptOut) {
        // SAFETY: forwarded.
        unsafe {
            match answer {
                Some(a) => hand(out, a),
                None => put(out, std::ptr::null()),
            }
        }
    }
}

/// `Option` of a pointer-and-length answer: NULL and 0 for none.
///
/// # Safety
/// As [`SyncOut::store`].
unsafe fn store_pair_opt<T: SyncOut<Out = (*mut *const E, *mut usize)> + ?Sized, E>(
    answer: Option<Owned>,
    (out, out_len): (*mut *const E, *mut usize),
) {
    // SAFETY: forwarded.
    unsafe {
        match answer {
            Some(a) => T::store(a, (out, out_len)),
            None => {
                put(out, std::ptr::null());
                put(out_len, 0);
            }
        }
    }
}

/// Bytes: the block and its length.
impl SyncOut for [u8] {
    type Out = (*mut *const u8, *mut usize);
    type OptOut = (*mut *const u8, *mut usize);
    unsafe fn store(answer: Owned, (out, out_len): Self::Out) {
        // SAFETY: forwarded.
        unsafe {
            put(out_len, answer.len());
            hand(out, answer);
        }
    }
    unsafe fn store_opt(answer: Option<Owned>, out: Self::OptOut) {
        // SAFETY: forwarded.
        unsafe { store_pair_opt::<Self, _>(answer, out) }
    }
}

/// Arrays: the block is the C array (its elements' pointers into the same block).
impl<T: crate::marshal::Element> SyncOut for [T] {
    type Out = (*mut *const T::Fields, *mut usize);
    type OptOut = (*mut *const T::Fields, *mut usize);
    unsafe fn store(answer: Owned, (out, out_len): Self::Out) {
        let size = std::mem::size_of::<T::Fields>().max(1);
        // SAFETY: forwarded.
        unsafe {
            put(out_len, answer.len() / size);
            hand(out, answer);
        }
    }
    unsafe fn store_opt(answer: Option<Owned>, out: Self::OptOut) {
        // SAFETY: forwarded.
        unsafe { store_pair_opt::<Self, _>(answer, out) }
    }
}

/// Forwards `SyncOut` from `$from` (a borrowed or owned spelling) to `$to`.
macro_rules! same_out {
    ($([$($g:tt)*] $from:ty => $to:ty),* $(,)?) => {$(
        impl<$($g)*> SyncOut for $from {
            type Out = <$to as SyncOut>::Out;
            type OptOut = <$to as SyncOut>::OptOut;
            unsafe fn store(answer: Owned, out: Self::Out) {
                // SAFETY: forwarded.
                unsafe { <$to as SyncOut>::store(answer, out) }
            }
            unsafe fn store_opt(answer: Option<Owned>, out: Self::OptOut) {
                // SAFETY: forwarded.
                unsafe { <$to as SyncOut>::store_opt(answer, out) }
            }
        }
    )*};
}
same_out!(
    [] String => str,
    [] Vec<u8> => [u8],
    [T: crate::marshal::Element] Vec<T> => [T],
    ['a, T: SyncOut + ?Sized] &'a T => T,
);

impl<T: SyncOut> SyncOut for Option<T> {
    type Out = T::OptOut;
    // Options do not nest (the macros refuse them).
    type OptOut = ();
    unsafe fn store(answer: Owned, out: Self::Out) {
        let answer = (!answer.is_empty()).then_some(answer);
        // SAFETY: forwarded.
        unsafe { T::store_opt(answer, out) }
    }
    unsafe fn store_opt(_: Option<Owned>, _: ()) {}
}

/// A record's answer: the block is its C mirror. (Enums answer an `int32_t`.) The
/// derives implement [`SyncOut`] through these.
///
/// # Safety
/// As [`SyncOut::store`].
pub unsafe fn store_mirror<F>(answer: Owned, out: *mut *const F) {
    // SAFETY: forwarded.
    unsafe { hand(out, answer) }
}

/// `Option<record>`: the mirror, or NULL.
///
/// # Safety
/// As [`SyncOut::store`].
pub unsafe fn store_opt_mirror<F>(answer: Option<Owned>, out: *mut *const F) {
    // SAFETY: forwarded.
    unsafe {
        match answer {
            Some(a) => hand(out, a),
            None => put(out, std::ptr::null()),
        }
    }
}
