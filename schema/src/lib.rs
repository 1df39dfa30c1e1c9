//! Descriptions of a library's exports: what `ffi-dispatch`'s macros record, what a
//! built library hands out about itself, and what its generators render from (UniFFI's
//! `uniffi_meta`, Diplomat's `core`).
//!
//! Two forms, one content:
//! - **Descriptors** (this module): `const` tables the macros write.
//!   `#[ffi_dispatch::library]` records every export in a [`LibraryDesc`] (reachable as
//!   [`Exports::SCHEMA`]); `#[derive(Record)]` and `#[derive(Enum)]` describe their types
//!   through [`Describe::TY`]. Being `const`, they are checked at compile time:
//!   [`names::check`] refuses two items with one C name.
//! - **The model** ([`model::Library`]): the same description as owned data, with every
//!   C name spelled out and the interface hash. A library builds it from its descriptors
//!   and exports it CBOR-encoded (`<lib>_ffid_describe`); `ffi-dispatch-bindgen` reads it
//!   from the built library and `ffi-dispatch-codegen` renders the C header and the
//!   CDDL schema from it.
//!
//! The runtime re-exports this crate as `ffi_dispatch::schema`.

pub mod model;
pub mod names;

/// A type as the two wire views see it.
#[derive(Clone, Copy)]
pub enum Ty {
    /// No value.
    Unit,
    /// `bool`.
    Bool,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// UTF-8 text.
    Str,
    /// A byte string.
    Bytes,
    /// An optional value.
    Option(&'static Ty),
    /// A sequence.
    Vec(&'static Ty),
    /// A record (`#[derive(Record)]`).
    Record(&'static RecordDesc),
    /// A fieldless enum (`#[derive(Enum)]`).
    Enum(&'static EnumDesc),
}

/// How a slot (a parameter or a record field) of a type is laid out in a C struct: the
/// one table the macros (which declare the `#[repr(C)]` structs), the runtime's
/// marshalling (`ffi_dispatch::marshal`, whose types the generated code checks against
/// these structs) and the header renderer ([`model::Type::c_shape`]) all follow.
///
/// | type | shape | C fields |
/// |---|---|---|
/// | `bool`, `u8`..`u64`, `i8`..`i64`, `f32`, `f64` | single | the C scalar (`bool` is one byte) |
/// | `&str`, `String` | single | `const char* x` (NUL-terminated UTF-8, not null) |
/// | `&[u8]`, `Vec<u8>` | pair | `const uint8_t* x; size_t x_len` (null only when `x_len == 0`) |
/// | `Vec<T>` | pair | `const T* x; size_t x_len`, `T` the element's C form |
/// | record | single | its `#[repr(C)]` mirror, by value |
/// | fieldless enum | single | the C enum (`int32_t`) |
/// | `Option<scalar>` | flag | `bool has_x; T x` |
/// | `Option<&str>`, `Option<record>`, `Option<enum>` | single | a pointer, null for `None` |
/// | `Option<bytes>`, `Option<Vec<T>>` | pair | `x; x_len`, `x` null for `None` |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CShape {
    /// One field `x`.
    Single,
    /// `x; x_len`: a pointer and a length.
    Pair,
    /// `has_x; x`: a presence flag and the value.
    Flag,
}

/// A named, documented, typed slot: a parameter or a record field.
pub struct FieldDesc {
    /// Name (the CBOR key and the C field).
    pub name: &'static str,
    /// Doc comment.
    pub doc: &'static str,
    /// Type.
    pub ty: &'static Ty,
}

/// A record type.
pub struct RecordDesc {
    /// Rust name.
    pub name: &'static str,
    /// Doc comment.
    pub doc: &'static str,
    /// Fields in declaration order.
    pub fields: &'static [FieldDesc],
}

/// A fieldless enum.
pub struct EnumDesc {
    /// Rust name.
    pub name: &'static str,
    /// Doc comment.
    pub doc: &'static str,
    /// Variants: name (the CBOR text), C value, doc.
    pub variants: &'static [(&'static str, i32, &'static str)],
}

/// One export: a constructor, a method or a static method.
pub struct FnDesc {
    /// Rust name (the export is `<lib>_<name>`).
    pub name: &'static str,
    /// Doc comment.
    pub doc: &'static str,
    /// Parameters in order.
    pub params: &'static [FieldDesc],
    /// Result type.
    pub ret: &'static Ty,
    /// Whether it returns a `Result` (may answer `ERR`).
    pub fallible: bool,
    /// Whether it answers through a `Deferred` reply token (later, from any thread).
    pub deferred: bool,
    /// Whether it is an `async fn` (polled on the worker, between other requests).
    pub asynchronous: bool,
    /// The C name of its args struct (unused without parameters).
    pub args_struct: &'static str,
}

/// One event (`#[ffi(event)]`).
pub struct EventSchema {
    /// Rust name (listeners: `<lib>_add_<name>_listener`).
    pub name: &'static str,
    /// Doc comment.
    pub doc: &'static str,
    /// Payload type.
    pub ty: &'static Ty,
}

/// A constant (`#[ffi] const NAME: T = ...;` in the library's `impl` block): a `#define`
/// in the header.
pub struct ConstDesc {
    /// Rust name (the C name is `<LIB>_<NAME>`).
    pub name: &'static str,
    /// Doc comment.
    pub doc: &'static str,
    /// Its declared type: an integer, a float, `bool` or `&str`.
    pub ty: Ty,
    /// Its value.
    pub value: ConstValue,
}

/// A constant's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConstValue {
    /// An unsigned integer.
    Unsigned(u64),
    /// A signed integer.
    Signed(i64),
    /// A float (`f32` ones widened).
    Float(f64),
    /// A `bool`.
    Bool(bool),
    /// Text.
    Str(&'static str),
}

/// Everything a library exports.
pub struct LibraryDesc {
    /// Export prefix, e.g. `echo`.
    pub name: &'static str,
    /// C type prefix, e.g. `Echo`.
    pub type_prefix: &'static str,
    /// Doc comment of the `impl` block.
    pub doc: &'static str,
    /// The constructor.
    pub ctor: FnDesc,
    /// Methods on a context, in method-id order.
    pub methods: &'static [FnDesc],
    /// Static methods (no context), served by the process-wide static context.
    pub statics: &'static [FnDesc],
    /// Inline exports (no context, run on the calling thread).
    pub inlines: &'static [FnDesc],
    /// Events, in event-id order.
    pub events: &'static [EventSchema],
    /// Constants, in declaration order.
    pub constants: &'static [ConstDesc],
}

/// A library generated by `#[ffi_dispatch::library]`.
pub trait Exports {
    /// Its descriptor.
    const SCHEMA: &'static LibraryDesc;
}

/// A type's [`Ty`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no FFI description",
    label = "unsupported FFI type",
    note = "derive `ffi_dispatch::Record` or `ffi_dispatch::Enum` for your own types"
)]
pub trait Describe {
    /// The description.
    const TY: Ty;
}

macro_rules! describe {
    ($($t:ty => $v:ident),*) => {$( impl Describe for $t { const TY: Ty = Ty::$v; } )*};
}
describe!(() => Unit, bool => Bool, u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8,
    i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64, str => Str, String => Str,
    [u8] => Bytes, Vec<u8> => Bytes);

impl<T: Describe + ?Sized> Describe for &T {
    const TY: Ty = T::TY;
}
impl<T: Describe> Describe for Option<T> {
    const TY: Ty = Ty::Option(&T::TY);
}
/// A type that can be an element of a sequence (`Vec<T>`, `[T]`): every described type
/// but `u8` (`Vec<u8>` is a byte string), `()` and the `Option`s and sequences
/// themselves. The runtime's `marshal::Element` (the C form of an array element)
/// requires it, so the two lists cannot drift apart.
pub trait ArrayElement: Describe {}

macro_rules! array_elements {
    ($($t:ty),*) => {$( impl ArrayElement for $t {} )*};
}
array_elements!(bool, u16, u32, u64, i8, i16, i32, i64, f32, f64, str, String);
impl<T: ArrayElement + ?Sized> ArrayElement for &T {}

impl<T: Describe + ArrayElement> Describe for Vec<T> {
    const TY: Ty = Ty::Vec(&T::TY);
}
impl<T: Describe + ArrayElement> Describe for [T] {
    const TY: Ty = Ty::Vec(&T::TY);
}
