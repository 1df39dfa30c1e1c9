//! Typed callbacks: an answer handed to a host function whose parameters are the
//! answer's C values, not `(msg, len)`. The values are the pointees of the blocking
//! form's out parameters ([`SyncOut::Out`]): an answer stored into locals through
//! them is what the typed callback receives, owned by the host exactly as a blocking
//! call's (`ffid_free` frees text, bytes, records and arrays).
//!
//! ```text
//! SyncOut::Out           values            typed reply                      typed listener
//! ()                     ()                fn(ret, msg, ud)                 fn(ud)
//! *mut T                 T                 fn(ret, T, msg, ud)              fn(T, ud)
//! (*mut A, *mut B)       (A, B)            fn(ret, A, B, msg, ud)           fn(A, B, ud)
//! ```
//!
//! `msg` is NULL with `FFID_RET_OK`, the error text with `FFID_RET_ERR` and the elapsed
//! milliseconds with `FFID_RET_STALE_WARN` (the values are then zero, NULL or false).

use std::ffi::{c_char, c_int, c_void};

use super::owned::{Owned, SyncOut};

/// A value a typed callback may receive: it has an all-zero "nothing" (0, `false`,
/// NULL).
pub trait Zero: Copy {
    /// The nothing.
    const ZERO: Self;
}

macro_rules! zero {
    ($($t:ty),*) => {$(impl Zero for $t { const ZERO: Self = 0 as $t; })*};
}
zero!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, usize);
impl Zero for bool {
    const ZERO: Self = false;
}
impl<T> Zero for *const T {
    const ZERO: Self = std::ptr::null();
}

/// The out parameters of an answer's blocking form, seen as the locals that a typed
/// callback's values are read from (see the module docs).
pub trait OutSlots: Copy {
    /// The values (all [`Zero`]).
    type Values: Copy;
    /// The typed reply callback.
    type Reply: Copy;
    /// The typed listener.
    type Listener: Copy;
    /// Nothing: the values a callback gets without an answer.
    const NONE: Self::Values;
    /// The out parameters writing into `values`.
    fn slots(values: &mut Self::Values) -> Self;
    /// Calls `f`.
    ///
    /// # Safety
    /// `f` is the host's function of this type; the values are what the answer left.
    unsafe fn reply(
        f: Self::Reply,
        ret: c_int,
        values: Self::Values,
        msg: *const c_char,
        ud: *mut c_void,
    );
    /// Calls `f`.
    ///
    /// # Safety
    /// As [`OutSlots::reply`].
    unsafe fn listen(f: Self::Listener, values: Self::Values, ud: *mut c_void);
}

impl OutSlots for () {
    type Values = ();
    type Reply = unsafe extern "C" fn(c_int, *const c_char, *mut c_void);
    type Listener = unsafe extern "C" fn(*mut c_void);
    const NONE: () = ();
    fn slots(_: &mut ()) {}
    unsafe fn reply(f: Self::Reply, ret: c_int, _: (), msg: *const c_char, ud: *mut c_void) {
        // SAFETY: forwarded.
        unsafe { f(ret, msg, ud) }
    }
    unsafe fn listen(f: Self::Listener, _: (), ud: *mut c_void) {
        // SAFETY: forwarded.
        unsafe { f(ud) }
    }
}

impl<T: Zero> OutSlots for *mut T {
    type Values = T;
    type Reply = unsafe extern "C" fn(c_int, T, *const c_char, *mut c_void);
    type Listener = unsafe extern "C" fn(T, *mut c_void);
    const NONE: T = T::ZERO;
    fn slots(values: &mut T) -> Self {
        values
    }
    unsafe fn reply(f: Self::Reply, ret: c_int, v: T, msg: *const c_char, ud: *mut c_void) {
        // SAFETY: forwarded.
        unsafe { f(ret, v, msg, ud) }
    }
    unsafe fn listen(f: Self::Listener, v: T, ud: *mut c_void) {
        // SAFETY: forwarded.
        unsafe { f(v, ud) }
    }
}

impl<A: Zero, B: Zero> OutSlots for (*mut A, *mut B) {
    type Values = (A, B);
    type Reply = unsafe extern "C" fn(c_int, A, B, *const c_char, *mut c_void);
    type Listener = unsafe extern "C" fn(A, B, *mut c_void);
    const NONE: (A, B) = (A::ZERO, B::ZERO);
    fn slots((a, b): &mut (A, B)) -> Self {
        (a, b)
    }
    unsafe fn reply(
        f: Self::Reply,
        ret: c_int,
        (a, b): (A, B),
        msg: *const c_char,
        ud: *mut c_void,
    ) {
        // SAFETY: forwarded.
        unsafe { f(ret, a, b, msg, ud) }
    }
    unsafe fn listen(f: Self::Listener, (a, b): (A, B), ud: *mut c_void) {
        // SAFETY: forwarded.
        unsafe { f(a, b, ud) }
    }
}

/// The values an owned answer of type `T` gives a typed callback: the answer stored
/// through the out parameters into locals (the host owns what they point to).
pub(crate) fn values<T: SyncOut + ?Sized>(answer: Owned) -> <T::Out as OutSlots>::Values
where
    T::Out: OutSlots,
{
    let mut values = <T::Out as OutSlots>::NONE;
    let out = <T::Out as OutSlots>::slots(&mut values);
    // SAFETY: every out pointer points into `values`, writable.
    unsafe { T::store(answer, out) };
    values
}
