//! Native marshalling: how each supported Rust type looks in C, and how it crosses.
//!
//! Every parameter or record field of type `T` occupies one or two consecutive fields
//! of a `#[repr(C)]` struct, given by [`Native::Fields`], in the shape the one layout
//! table gives it: [`CShape`](crate::schema::CShape), which the proc-macros and the header
//! renderer follow too (and the generated code checks these types against the structs
//! the macros declare).
//!
//! Two directions use these fields. Into the library, an export copies the host's fields
//! into the request payload with [`Native::write`] (checking pointers, UTF-8 and enum
//! values on the host thread, so bad input is refused before it is queued), and the
//! worker reads the value back with [`ReadNative::read`], borrowing strings and bytes
//! from the payload. Out of the library, a record answer is laid out as its C mirror with
//! [`Native::to_c`], whatever it points to placed in an [`Arena`] owned by the reply.

mod arena;
pub(crate) mod block;
pub mod cbor;

use arena::round8;
pub use arena::Arena;

use std::ffi::{c_char, CStr};
use std::mem::size_of;

use crate::abi::{Invalid, Refusal};
use crate::envelope::{FieldReader, FieldWriter};
use crate::CallError;

/// A type's native C form (see the module docs for the table).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross the native C boundary",
    label = "unsupported FFI type",
    note = "supported: bool, fixed-size integers, f32, f64, &str, String, &[u8], Vec<u8>, Option<T>, Vec<T>, and types deriving `ffi_dispatch::Record` or `ffi_dispatch::Enum`"
)]
pub trait Native: Sized {
    /// The C field, or `(pointer, length)` / `(has, value)` for two-field types.
    type Fields: Copy;

    /// Host thread: checks the host's fields and copies the value into the payload.
    ///
    /// # Safety
    /// Every pointer in `f` is null or valid as the header documents it (readable,
    /// NUL-terminated strings, `len` elements) for the duration of the call.
    unsafe fn write(f: Self::Fields, w: &mut FieldWriter<'_>) -> Result<(), Refusal>;

    /// Bytes of [`Arena`] that [`Native::to_c`] takes for what the fields point to.
    fn c_extra(&self) -> usize;

    /// Lays the value out as its C fields; pointed-to data goes into `arena`, which has
    /// room for [`Native::c_extra`] more bytes.
    fn to_c(&self, arena: &mut Arena) -> Self::Fields;
}

/// Reads a value back from a native payload on the worker, borrowing where it can.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read from a native request",
    label = "unsupported FFI parameter type",
    note = "derive `ffi_dispatch::Record` or `ffi_dispatch::Enum` for your own types"
)]
pub trait ReadNative<'a>: Native {
    /// Reads the value [`Native::write`] wrote.
    fn read(r: &mut FieldReader<'a>) -> Result<Self, CallError>;
}

/// A type whose C form is one field, usable as an array element (`Vec<T>`).
pub trait Element: Native + crate::schema::ArrayElement {}

/// A type with an `Option` form (see the module docs).
pub trait Nullable: Native {
    /// The C fields of `Option<Self>`.
    type OptFields: Copy;
    /// [`Native::write`] for `Option<Self>`: a presence byte, then the value.
    ///
    /// # Safety
    /// As for [`Native::write`].
    unsafe fn write_opt(f: Self::OptFields, w: &mut FieldWriter<'_>) -> Result<(), Refusal>;
    /// [`Native::c_extra`] for `Option<Self>`.
    fn opt_extra(v: Option<&Self>) -> usize;
    /// [`Native::to_c`] for `Option<Self>`.
    fn opt_to_c(v: Option<&Self>, arena: &mut Arena) -> Self::OptFields;
}

/// The two halves of a two-field C form: the generated structs name them
/// `<<T as Native>::Fields as Pair>::A` and `::B`.
pub trait Pair {
    /// First field (`x` of `x; x_len`, `has_x` of `has_x; x`).
    type A;
    /// Second field.
    type B;
}
impl<A, B> Pair for (A, B) {
    type A = A;
    type B = B;
}

/// A one-field C form. The generated structs assert it for every field they declare as
/// one field, so a type alias can never smuggle a Rust tuple into a C struct.
pub trait SingleField: Copy {}

/// Compile-time check used by the generated code (see [`SingleField`]).
pub const fn assert_single_field<T: SingleField>() {}

// ---- scalars ------------------------------------------------------------------------

macro_rules! scalar_native {
    ($($t:ty),*) => {$(
        impl Native for $t {
            type Fields = $t;
            #[inline]
            unsafe fn write(f: $t, w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
                w.scalar(f);
                Ok(())
            }
            #[inline]
            fn c_extra(&self) -> usize { 0 }
            #[inline]
            fn to_c(&self, _: &mut Arena) -> $t { *self }
        }
        impl<'a> ReadNative<'a> for $t {
            #[inline]
            fn read(r: &mut FieldReader<'a>) -> Result<Self, CallError> { r.scalar() }
        }
        impl SingleField for $t {}
        impl Nullable for $t {
            /// `has_x` is read as a byte (any non-zero byte is true), like `bool` fields.
            type OptFields = (u8, $t);
            #[inline]
            unsafe fn write_opt(f: (u8, $t), w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
                w.scalar(f.0 != 0);
                if f.0 != 0 {
                    w.scalar(f.1);
                }
                Ok(())
            }
            fn opt_extra(_: Option<&Self>) -> usize { 0 }
            fn opt_to_c(v: Option<&Self>, _: &mut Arena) -> (u8, $t) {
                v.map_or((0, <$t>::default()), |v| (1, *v))
            }
        }
    )*};
}
scalar_native!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

macro_rules! elements {
    ($($t:ty),*) => {$( impl Element for $t {} )*};
}
// `u8` is not an element: `Vec<u8>` is a byte field.
elements!(i8, u16, i16, u32, i32, u64, i64, f32, f64, bool);

/// A C `bool` arrives as a byte: any non-zero byte is true (a Rust `bool` may only hold
/// 0 or 1, which the host's memory does not promise).
impl Native for bool {
    type Fields = u8;
    #[inline]
    unsafe fn write(f: u8, w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
        w.scalar(f != 0);
        Ok(())
    }
    fn c_extra(&self) -> usize {
        0
    }
    fn to_c(&self, _: &mut Arena) -> u8 {
        *self as u8
    }
}
impl<'a> ReadNative<'a> for bool {
    #[inline]
    fn read(r: &mut FieldReader<'a>) -> Result<Self, CallError> {
        r.scalar()
    }
}
impl Nullable for bool {
    type OptFields = (u8, u8);
    unsafe fn write_opt(f: (u8, u8), w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
        w.scalar(f.0 != 0);
        if f.0 != 0 {
            w.scalar(f.1 != 0);
        }
        Ok(())
    }
    fn opt_extra(_: Option<&Self>) -> usize {
        0
    }
    fn opt_to_c(v: Option<&Self>, _: &mut Arena) -> (u8, u8) {
        v.map_or((0, 0), |v| (1, *v as u8))
    }
}

impl<T> SingleField for *const T {}

// ---- strings --------------------------------------------------------------------------

/// Reads a host string: null and invalid UTF-8 refuse. The UTF-8 check runs in the
/// measuring pass only; the worker's reader checks the copy again.
///
/// # Safety
/// `p` is null or a NUL-terminated string, readable for the call.
unsafe fn write_c_str(p: *const c_char, w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
    if p.is_null() {
        return Err(Refusal::invalid(Invalid::Null));
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if w.is_measuring() {
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(Refusal::invalid(Invalid::NotUtf8 {
                at: e.valid_up_to(),
            }));
        }
    }
    w.bytes(bytes);
    Ok(())
}

macro_rules! string_native {
    ($t:ty) => {
        impl Native for $t {
            type Fields = *const c_char;
            #[inline]
            unsafe fn write(f: *const c_char, w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
                // SAFETY: forwarded contract.
                unsafe { write_c_str(f, w) }
            }
            fn c_extra(&self) -> usize {
                round8(self.len() + 1)
            }
            fn to_c(&self, arena: &mut Arena) -> *const c_char {
                arena.put_str(self)
            }
        }
        impl Element for $t {}
        impl Nullable for $t {
            type OptFields = *const c_char;
            unsafe fn write_opt(f: *const c_char, w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
                w.scalar(!f.is_null());
                if f.is_null() {
                    return Ok(());
                }
                // SAFETY: forwarded contract.
                unsafe { write_c_str(f, w) }
            }
            fn opt_extra(v: Option<&Self>) -> usize {
                v.map_or(0, |v| v.c_extra())
            }
            fn opt_to_c(v: Option<&Self>, arena: &mut Arena) -> *const c_char {
                v.map_or(std::ptr::null(), |v| v.to_c(arena))
            }
        }
    };
}
string_native!(&str);
string_native!(String);

impl<'a> ReadNative<'a> for &'a str {
    #[inline]
    fn read(r: &mut FieldReader<'a>) -> Result<Self, CallError> {
        r.str()
    }
}
impl<'a> ReadNative<'a> for String {
    fn read(r: &mut FieldReader<'a>) -> Result<Self, CallError> {
        r.str().map(str::to_owned)
    }
}

/// `Option` of a `(pointer, length)` type: the same two fields, a null pointer for `None`.
macro_rules! nullable_pair {
    () => {
        type OptFields = <Self as Native>::Fields;
        unsafe fn write_opt(f: Self::OptFields, w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
            w.scalar(!f.0.is_null());
            if f.0.is_null() {
                return Ok(());
            }
            // SAFETY: forwarded contract.
            unsafe { Self::write(f, w) }
        }
        fn opt_extra(v: Option<&Self>) -> usize {
            v.map_or(0, Native::c_extra)
        }
        fn opt_to_c(v: Option<&Self>, arena: &mut Arena) -> Self::OptFields {
            v.map_or((std::ptr::null(), 0), |v| v.to_c(arena))
        }
    };
}

// ---- bytes ----------------------------------------------------------------------------

macro_rules! bytes_native {
    ($t:ty) => {
        impl Native for $t {
            type Fields = (*const u8, usize);
            #[inline]
            unsafe fn write(f: (*const u8, usize), w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
                // SAFETY: forwarded contract (`f.0` holds `f.1` bytes).
                w.bytes(unsafe { crate::abi::bytes_field(f.0, f.1) }?);
                Ok(())
            }
            fn c_extra(&self) -> usize {
                round8(self.len())
            }
            fn to_c(&self, arena: &mut Arena) -> (*const u8, usize) {
                (arena.put_bytes(self), self.len())
            }
        }
        impl Nullable for $t {
            nullable_pair!();
        }
    };
}
bytes_native!(&[u8]);
bytes_native!(Vec<u8>);

impl<'a> ReadNative<'a> for &'a [u8] {
    #[inline]
    fn read(r: &mut FieldReader<'a>) -> Result<Self, CallError> {
        r.bytes()
    }
}
impl<'a> ReadNative<'a> for Vec<u8> {
    fn read(r: &mut FieldReader<'a>) -> Result<Self, CallError> {
        r.bytes().map(<[u8]>::to_vec)
    }
}

// ---- Option ---------------------------------------------------------------------------

impl<T: Nullable> Native for Option<T> {
    type Fields = T::OptFields;
    #[inline]
    unsafe fn write(f: T::OptFields, w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
        // SAFETY: forwarded contract.
        unsafe { T::write_opt(f, w) }
    }
    fn c_extra(&self) -> usize {
        T::opt_extra(self.as_ref())
    }
    fn to_c(&self, arena: &mut Arena) -> T::OptFields {
        T::opt_to_c(self.as_ref(), arena)
    }
}
impl<'a, T: Nullable + ReadNative<'a>> ReadNative<'a> for Option<T> {
    fn read(r: &mut FieldReader<'a>) -> Result<Self, CallError> {
        if r.scalar::<bool>()? {
            T::read(r).map(Some)
        } else {
            Ok(None)
        }
    }
}

// ---- Vec<T> ---------------------------------------------------------------------------

/// Writes `n` elements read from the host's array `p`.
///
/// # Safety
/// `p` is null only when `n == 0`, else points to `n` valid elements.
unsafe fn write_array<T: Element>(
    p: *const T::Fields,
    n: usize,
    w: &mut FieldWriter<'_>,
) -> Result<(), Refusal> {
    if n > 0 && p.is_null() {
        return Err(Refusal::invalid(Invalid::Null));
    }
    if n > isize::MAX as usize / size_of::<T::Fields>().max(1) {
        return Err(Refusal::invalid(Invalid::Length));
    }
    w.scalar(n as u64);
    for i in 0..n {
        // SAFETY: `i < n` elements are readable by the caller's contract.
        unsafe { T::write(p.add(i).read(), w) }?;
    }
    Ok(())
}

impl<T: Element> Native for Vec<T> {
    type Fields = (*const T::Fields, usize);
    unsafe fn write(f: Self::Fields, w: &mut FieldWriter<'_>) -> Result<(), Refusal> {
        // SAFETY: forwarded contract.
        unsafe { write_array::<T>(f.0, f.1, w) }
    }
    fn c_extra(&self) -> usize {
        slice_extra(self)
    }
    fn to_c(&self, arena: &mut Arena) -> Self::Fields {
        (slice_to_c(self, arena), self.len())
    }
}
impl<'a, T: Element + ReadNative<'a>> ReadNative<'a> for Vec<T> {
    fn read(r: &mut FieldReader<'a>) -> Result<Self, CallError> {
        let n = r.scalar::<u64>()?;
        // Every element takes at least one payload byte: a length beyond the payload is
        // not ours (and must not size an allocation).
        if n > r.remaining() as u64 {
            return Err(CallError::new("native array length exceeds the request"));
        }
        (0..n).map(|_| T::read(r)).collect()
    }
}
impl<T: Element> Nullable for Vec<T> {
    nullable_pair!();
}

/// [`Native::c_extra`] of a slice of elements laid out as a C array.
pub fn slice_extra<T: Element>(v: &[T]) -> usize {
    Arena::array_size::<T::Fields>(v.len()) + v.iter().map(Native::c_extra).sum::<usize>()
}

/// Lays out a slice of elements as a C array in the arena and returns its address.
pub fn slice_to_c<T: Element>(v: &[T], arena: &mut Arena) -> *const T::Fields {
    let array = arena.array::<T::Fields>(v.len());
    for (i, item) in v.iter().enumerate() {
        let c = item.to_c(arena);
        // SAFETY: `array` has room for `v.len()` elements and `i < v.len()`.
        unsafe { array.add(i).write(c) };
    }
    array
}

// ---- records and enums: helpers for the derives ---------------------------------------

/// `Option<record>` / `Option<enum>` as a nullable pointer: the derives' `write_opt`.
///
/// # Safety
/// `p` is null or points to a valid `T::Fields` whose own pointers obey the contract.
pub unsafe fn write_opt_ptr<T: Native>(
    p: *const T::Fields,
    w: &mut FieldWriter<'_>,
) -> Result<(), Refusal> {
    w.scalar(!p.is_null());
    if p.is_null() {
        return Ok(());
    }
    // SAFETY: non-null, valid by the caller's contract.
    unsafe { T::write(p.read(), w) }
}

/// [`Nullable::opt_extra`] for pointer-shaped options.
pub fn opt_ptr_extra<T: Native>(v: Option<&T>) -> usize {
    v.map_or(0, |v| Arena::array_size::<T::Fields>(1) + v.c_extra())
}

/// [`Nullable::opt_to_c`] for pointer-shaped options.
pub fn opt_ptr_to_c<T: Native>(v: Option<&T>, arena: &mut Arena) -> *const T::Fields {
    match v {
        None => std::ptr::null(),
        Some(v) => {
            let slot = arena.array::<T::Fields>(1);
            let c = v.to_c(arena);
            // SAFETY: `slot` has room for one `T::Fields`.
            unsafe { slot.write(c) };
            slot
        }
    }
}

/// Checks an enum value from the host: unknown values refuse.
pub fn enum_value(value: i32, known: &[i32]) -> Result<i32, Refusal> {
    if known.contains(&value) {
        Ok(value)
    } else {
        Err(Refusal::invalid(Invalid::UnknownEnum { value }))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::envelope::Payload;

    fn round_trip<T>(f: T::Fields) -> Result<T, String>
    where
        T: for<'a> ReadNative<'a>,
    {
        // SAFETY: the tests pass valid host-style fields.
        let p =
            Payload::from_fields(|w| unsafe { T::write(f, w) }).map_err(|e| format!("{e:?}"))?;
        let mut r = FieldReader::new(p.as_slice());
        let v = T::read(&mut r).map_err(|e| e.to_string())?;
        assert_eq!(
            r.remaining(),
            0,
            "the reader takes exactly what the writer wrote"
        );
        Ok(v)
    }

    #[test]
    fn strings_bytes_and_options_round_trip() {
        assert_eq!(round_trip::<String>(c"héllo".as_ptr()).unwrap(), "héllo");
        assert!(
            round_trip::<String>(std::ptr::null()).is_err(),
            "null string refused"
        );
        let bad = b"\xc3\x28\0";
        assert!(
            round_trip::<String>(bad.as_ptr().cast()).is_err(),
            "bad UTF-8 refused"
        );
        assert_eq!(
            round_trip::<Option<String>>(std::ptr::null()).unwrap(),
            None
        );
        assert_eq!(round_trip::<Vec<u8>>((b"abc".as_ptr(), 3)).unwrap(), b"abc");
        assert_eq!(round_trip::<Vec<u8>>((std::ptr::null(), 0)).unwrap(), b"");
        assert!(round_trip::<Vec<u8>>((std::ptr::null(), 1)).is_err());
        assert!(round_trip::<Vec<u8>>((std::ptr::null(), usize::MAX)).is_err());
        assert_eq!(
            round_trip::<Option<Vec<u8>>>((std::ptr::null(), 0)).unwrap(),
            None
        );
        assert_eq!(
            round_trip::<Option<Vec<u8>>>((b"".as_ptr(), 0)).unwrap(),
            Some(vec![]),
            "a non-null pointer with length 0 is Some(empty)"
        );
        assert_eq!(round_trip::<Option<i64>>((1, -3)).unwrap(), Some(-3));
        assert_eq!(round_trip::<Option<i64>>((0, 99)).unwrap(), None);
        assert_eq!(
            round_trip::<Option<u16>>((7, 9)).unwrap(),
            Some(9),
            "any non-zero has-byte"
        );
        assert_eq!(round_trip::<Option<bool>>((1, 7)).unwrap(), Some(true));
        assert!(round_trip::<bool>(2).unwrap(), "any non-zero byte is true");
    }

    #[test]
    fn vectors_round_trip_and_check_their_pointer() {
        let words = [c"a".as_ptr(), c"bc".as_ptr()];
        assert_eq!(
            round_trip::<Vec<String>>((words.as_ptr(), 2)).unwrap(),
            ["a", "bc"]
        );
        let nums = [1i64, -2, 3];
        assert_eq!(round_trip::<Vec<i64>>((nums.as_ptr(), 3)).unwrap(), nums);
        assert!(round_trip::<Vec<i64>>((std::ptr::null(), 2)).is_err());
        assert!(round_trip::<Vec<i64>>((std::ptr::null(), usize::MAX)).is_err());
        assert_eq!(
            round_trip::<Option<Vec<i64>>>((std::ptr::null(), 5)).unwrap(),
            None
        );
    }

    #[test]
    fn to_c_lays_out_inside_the_arena() {
        let v = vec!["x".to_string(), "yz".to_string()];
        let mut arena = Arena::new();
        arena.reset(v.c_extra());
        let (p, n) = v.to_c(&mut arena);
        assert_eq!(n, 2);
        // SAFETY: `p` points to two C strings in the arena, which is alive.
        let got: Vec<&str> = (0..n)
            .map(|i| unsafe { CStr::from_ptr(*p.add(i)) }.to_str().unwrap())
            .collect();
        assert_eq!(got, ["x", "yz"]);
        assert_eq!(arena.unused(), 0, "c_extra was exact");
    }
}
