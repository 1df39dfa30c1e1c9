//! The description a built library hands out about itself: owned data, every C name
//! spelled out (by [`crate::names`]), CBOR-encoded by `<lib>_ffid_describe` and decoded
//! by `ffi-dispatch-bindgen`. The renderers print from it and compute no name of their
//! own, so a header always matches the library it was read from.
//!
//! The encoding is a minicbor array per struct (field numbers fixed by `#[n(..)]`):
//! a newer runtime may append fields; [`FORMAT`] changes when it removes or renumbers
//! one.

use minicbor::{Decode, Encode};

use crate::names::CName;
use crate::{ConstValue, EnumDesc, FnDesc, LibraryDesc, RecordDesc, Ty};

/// The version of this encoding.
pub const FORMAT: u32 = 1;

/// Everything a library exports.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Library {
    /// The encoding's version: [`FORMAT`].
    #[n(0)]
    pub format: u32,
    /// Export prefix, e.g. `echo`.
    #[n(1)]
    pub name: String,
    /// C type prefix, e.g. `Echo`.
    #[n(2)]
    pub type_prefix: String,
    /// Doc comment of the `impl` block.
    #[n(3)]
    pub doc: String,
    /// [`Library::compute_interface_hash`] of this description.
    #[n(4)]
    pub interface_hash: u64,
    /// The version of the `ffi-dispatch` runtime the library was built with.
    #[n(5)]
    pub runtime_version: String,
    /// That runtime's C header, `ffi_dispatch.h`, which the library's header includes.
    #[n(6)]
    pub runtime_header: String,
    /// The constructor.
    #[n(7)]
    pub ctor: Function,
    /// Methods on a context, in method-id order.
    #[n(8)]
    pub methods: Vec<Function>,
    /// Static methods (no context; served by the process-wide static context).
    #[n(9)]
    pub statics: Vec<Function>,
    /// Inline exports (no context; run on the calling thread).
    #[n(10)]
    pub inlines: Vec<Function>,
    /// Events, in event-id order.
    #[n(11)]
    pub events: Vec<Event>,
    /// Records and enums the exports reach, each after the types it contains.
    #[n(12)]
    pub types: Vec<TypeDef>,
    /// Constants, in declaration order.
    #[n(13)]
    pub constants: Vec<Constant>,
}

/// A constructor, method, static method or inline export.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Function {
    /// Rust name.
    #[n(0)]
    pub name: String,
    /// Doc comment.
    #[n(1)]
    pub doc: String,
    /// The native export's C name (the constructor's: `<lib>_create_checked`, which
    /// takes the interface hash first and the options last; the header's `static
    /// inline` `<lib>_create` and kin call it).
    #[n(2)]
    pub export: String,
    /// The CBOR export's C name (the constructor's: `<lib>_create_cbor_checked`).
    #[n(3)]
    pub cbor_export: String,
    /// The C name of the args struct; `None` without parameters.
    #[n(4)]
    pub args_struct: Option<String>,
    /// Parameters in order.
    #[n(5)]
    pub params: Vec<Field>,
    /// Result type (the constructor's: `Unit`).
    #[n(6)]
    pub ret: Type,
    /// Whether it may answer `ERR` with a message.
    #[n(7)]
    pub fallible: bool,
    /// Whether it answers through a reply token (later, from any thread).
    #[n(8)]
    pub deferred: bool,
    /// Whether it is an `async fn` (polled on the worker between other requests).
    #[n(9)]
    pub asynchronous: bool,
    /// The blocking form's C name (`<lib>_<f>_sync`): methods and static methods.
    #[n(10)]
    pub sync_export: Option<String>,
    /// The typed form's C name (`<lib>_<f>_async`) and its reply callback's type
    /// (`<Prefix><F>Reply`): methods and static methods.
    #[n(11)]
    pub typed: Option<Typed>,
}

/// A typed export and the C type of the host function it calls.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Typed {
    /// The export's C name.
    #[n(0)]
    pub export: String,
    /// The callback's C type name.
    #[n(1)]
    pub callback: String,
}

/// A parameter or a record field.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Field {
    /// Name: the C field and the CBOR key.
    #[n(0)]
    pub name: String,
    /// Doc comment.
    #[n(1)]
    pub doc: String,
    /// Type.
    #[n(2)]
    pub ty: Type,
}

/// A type as both wire views see it; records and enums by their C name (their
/// definitions are in [`Library::types`]).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Type {
    /// No value.
    #[n(0)]
    Unit,
    /// `bool`.
    #[n(1)]
    Bool,
    /// `u8`.
    #[n(2)]
    U8,
    /// `u16`.
    #[n(3)]
    U16,
    /// `u32`.
    #[n(4)]
    U32,
    /// `u64`.
    #[n(5)]
    U64,
    /// `i8`.
    #[n(6)]
    I8,
    /// `i16`.
    #[n(7)]
    I16,
    /// `i32`.
    #[n(8)]
    I32,
    /// `i64`.
    #[n(9)]
    I64,
    /// `f32`.
    #[n(10)]
    F32,
    /// `f64`.
    #[n(11)]
    F64,
    /// UTF-8 text.
    #[n(12)]
    Str,
    /// A byte string.
    #[n(13)]
    Bytes,
    /// An optional value.
    #[n(14)]
    Option(#[n(0)] Box<Type>),
    /// A sequence.
    #[n(15)]
    Vec(#[n(0)] Box<Type>),
    /// A record, by C name.
    #[n(16)]
    Record(#[n(0)] String),
    /// A fieldless enum, by C name.
    #[n(17)]
    Enum(#[n(0)] String),
}

/// A record or enum definition.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub enum TypeDef {
    /// A record.
    #[n(0)]
    Record(#[n(0)] Record),
    /// A fieldless enum.
    #[n(1)]
    Enum(#[n(0)] Enum),
}

/// A record type.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Record {
    /// Rust name.
    #[n(0)]
    pub name: String,
    /// C name.
    #[n(1)]
    pub c_name: String,
    /// Doc comment.
    #[n(2)]
    pub doc: String,
    /// Fields in declaration order.
    #[n(3)]
    pub fields: Vec<Field>,
}

/// A fieldless enum.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Enum {
    /// Rust name.
    #[n(0)]
    pub name: String,
    /// C name (an `int32_t` typedef).
    #[n(1)]
    pub c_name: String,
    /// Doc comment.
    #[n(2)]
    pub doc: String,
    /// Its values.
    #[n(3)]
    pub variants: Vec<Variant>,
}

/// One value of an enum.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Variant {
    /// Rust name: the CBOR text.
    #[n(0)]
    pub name: String,
    /// The C constant.
    #[n(1)]
    pub c_name: String,
    /// Its value.
    #[n(2)]
    pub value: i32,
    /// Doc comment.
    #[n(3)]
    pub doc: String,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Event {
    /// Rust name.
    #[n(0)]
    pub name: String,
    /// Doc comment.
    #[n(1)]
    pub doc: String,
    /// Payload type.
    #[n(2)]
    pub ty: Type,
    /// The native listener function's C name.
    #[n(3)]
    pub listener: String,
    /// The CBOR listener function's C name.
    #[n(4)]
    pub cbor_listener: String,
    /// The typed listener function (`<lib>_listen_<e>`) and its listener's type
    /// (`<Prefix><E>Listener`).
    #[n(5)]
    pub typed: Typed,
}

/// A constant.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Constant {
    /// Rust name.
    #[n(0)]
    pub name: String,
    /// C name (a macro).
    #[n(1)]
    pub c_name: String,
    /// Doc comment.
    #[n(2)]
    pub doc: String,
    /// Declared type.
    #[n(3)]
    pub ty: Type,
    /// Value.
    #[n(4)]
    pub value: Value,
}

/// A constant's value.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub enum Value {
    /// An unsigned integer.
    #[n(0)]
    Unsigned(#[n(0)] u64),
    /// A signed integer.
    #[n(1)]
    Signed(#[n(0)] i64),
    /// A float.
    #[n(2)]
    Float(#[n(0)] f64),
    /// A `bool`.
    #[n(3)]
    Bool(#[n(0)] bool),
    /// Text.
    #[n(4)]
    Str(#[n(0)] String),
}

/// Why a description could not be read.
#[derive(Debug)]
pub enum DescriptionError {
    /// The bytes are not a description.
    Malformed(String),
    /// A description of a newer encoding than this reader knows.
    Format(u32),
}

impl std::fmt::Display for DescriptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DescriptionError::Malformed(e) => write!(f, "not a library description: {e}"),
            DescriptionError::Format(v) => write!(
                f,
                "the library's description is of format {v}; this generator reads format {FORMAT}: use the ffi-dispatch-bindgen of the library's ffi-dispatch version"
            ),
        }
    }
}

impl std::error::Error for DescriptionError {}

impl Type {
    /// Whether the type is a C scalar (a number or `bool`).
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Type::Bool
                | Type::U8
                | Type::U16
                | Type::U32
                | Type::U64
                | Type::I8
                | Type::I16
                | Type::I32
                | Type::I64
                | Type::F32
                | Type::F64
        )
    }

    /// The shape of a slot of this type (see [`crate::CShape`]).
    pub fn c_shape(&self) -> crate::CShape {
        use crate::CShape;
        match self {
            Type::Bytes | Type::Vec(_) => CShape::Pair,
            Type::Option(inner) if inner.is_scalar() => CShape::Flag,
            Type::Option(inner) => match inner.c_shape() {
                CShape::Pair => CShape::Pair,
                _ => CShape::Single,
            },
            _ => CShape::Single,
        }
    }

    fn of(prefix: &str, t: &Ty) -> Type {
        match *t {
            Ty::Unit => Type::Unit,
            Ty::Bool => Type::Bool,
            Ty::U8 => Type::U8,
            Ty::U16 => Type::U16,
            Ty::U32 => Type::U32,
            Ty::U64 => Type::U64,
            Ty::I8 => Type::I8,
            Ty::I16 => Type::I16,
            Ty::I32 => Type::I32,
            Ty::I64 => Type::I64,
            Ty::F32 => Type::F32,
            Ty::F64 => Type::F64,
            Ty::Str => Type::Str,
            Ty::Bytes => Type::Bytes,
            Ty::Option(inner) => Type::Option(Box::new(Type::of(prefix, inner))),
            Ty::Vec(inner) => Type::Vec(Box::new(Type::of(prefix, inner))),
            Ty::Record(r) => Type::Record(CName::type_name(prefix, r.name).to_string()),
            Ty::Enum(e) => Type::Enum(CName::type_name(prefix, e.name).to_string()),
        }
    }
}

impl Library {
    /// The description of the library `desc` describes, as built with runtime
    /// `runtime_version` whose C header is `runtime_header`.
    pub fn of(desc: &LibraryDesc, runtime_version: &str, runtime_header: &str) -> Library {
        let mut lib = Library {
            format: FORMAT,
            name: desc.name.into(),
            type_prefix: desc.type_prefix.into(),
            doc: desc.doc.into(),
            interface_hash: 0,
            runtime_version: runtime_version.into(),
            runtime_header: runtime_header.into(),
            ctor: Function::of(desc, &desc.ctor, Role::Ctor),
            methods: desc
                .methods
                .iter()
                .map(|f| Function::of(desc, f, Role::Queued))
                .collect(),
            statics: desc
                .statics
                .iter()
                .map(|f| Function::of(desc, f, Role::Queued))
                .collect(),
            inlines: desc
                .inlines
                .iter()
                .map(|f| Function::of(desc, f, Role::Inline))
                .collect(),
            events: desc
                .events
                .iter()
                .map(|e| Event {
                    name: e.name.into(),
                    doc: e.doc.into(),
                    ty: Type::of(desc.type_prefix, e.ty),
                    listener: CName::listener(desc.name, e.name, "").to_string(),
                    cbor_listener: CName::listener(desc.name, e.name, "_cbor").to_string(),
                    typed: Typed {
                        export: CName::typed_listener(desc.name, e.name).to_string(),
                        callback: CName::listener_type(desc.type_prefix, e.name).to_string(),
                    },
                })
                .collect(),
            types: named_types(desc),
            constants: desc
                .constants
                .iter()
                .map(|c| Constant {
                    name: c.name.into(),
                    c_name: CName::macro_name(desc.name, c.name).to_string(),
                    doc: c.doc.into(),
                    ty: Type::of(desc.type_prefix, &c.ty),
                    value: match c.value {
                        ConstValue::Unsigned(v) => Value::Unsigned(v),
                        ConstValue::Signed(v) => Value::Signed(v),
                        ConstValue::Float(v) => Value::Float(v),
                        ConstValue::Bool(v) => Value::Bool(v),
                        ConstValue::Str(v) => Value::Str(v.into()),
                    },
                })
                .collect(),
        };
        lib.interface_hash = lib.compute_interface_hash();
        lib
    }

    /// The interface hash: FNV-1a (64 bits) of this description's encoding with the
    /// docs, the runtime's version and header and the hash itself left out. Two
    /// libraries with the same hash have the same C and CBOR interface: the same
    /// exports, argument and answer types, records, enum values and constants.
    pub fn compute_interface_hash(&self) -> u64 {
        let mut bare = self.clone();
        bare.interface_hash = 0;
        bare.runtime_version.clear();
        bare.runtime_header.clear();
        bare.strip_docs();
        let bytes = bare.encode();
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    fn strip_docs(&mut self) {
        fn fields(fs: &mut [Field]) {
            fs.iter_mut().for_each(|f| f.doc.clear());
        }
        self.doc.clear();
        let fns = std::iter::once(&mut self.ctor)
            .chain(&mut self.methods)
            .chain(&mut self.statics)
            .chain(&mut self.inlines);
        for f in fns {
            f.doc.clear();
            fields(&mut f.params);
        }
        self.events.iter_mut().for_each(|e| e.doc.clear());
        self.constants.iter_mut().for_each(|c| c.doc.clear());
        for t in &mut self.types {
            match t {
                TypeDef::Record(r) => {
                    r.doc.clear();
                    fields(&mut r.fields);
                }
                TypeDef::Enum(e) => {
                    e.doc.clear();
                    e.variants.iter_mut().for_each(|v| v.doc.clear());
                }
            }
        }
    }

    /// The CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        minicbor::to_vec(self).unwrap_or_default()
    }

    /// Reads an encoding made by [`Library::encode`] (of this or an older format).
    pub fn decode(bytes: &[u8]) -> Result<Library, DescriptionError> {
        // The format is the first field: read it alone first, so a newer description
        // is reported as such rather than as malformed.
        let mut d = minicbor::Decoder::new(bytes);
        let format = d
            .array()
            .and_then(|_| d.u32())
            .map_err(|e| DescriptionError::Malformed(e.to_string()))?;
        if format > FORMAT {
            return Err(DescriptionError::Format(format));
        }
        minicbor::decode(bytes).map_err(|e| DescriptionError::Malformed(e.to_string()))
    }

    /// Every function with exports of its own: the constructor, the methods, the
    /// statics and the inline exports.
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        std::iter::once(&self.ctor)
            .chain(&self.methods)
            .chain(&self.statics)
            .chain(&self.inlines)
    }

    /// The definition of the record or enum of C name `c_name`.
    pub fn type_def(&self, c_name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| match t {
            TypeDef::Record(r) => r.c_name == c_name,
            TypeDef::Enum(e) => e.c_name == c_name,
        })
    }

    /// A C macro name of this library: `<LIB>_<name>`.
    pub fn macro_name(&self, name: &str) -> String {
        CName::macro_name(&self.name, name).to_string()
    }
}

/// What a function is, for the exports it gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Ctor,
    /// A method or static method: answered through the queue, so with a blocking form.
    Queued,
    Inline,
}

impl Function {
    fn of(lib: &LibraryDesc, f: &FnDesc, role: Role) -> Function {
        let (native, cbor) = if role == Role::Ctor {
            (
                CName::export(lib.name, "create_checked", ""),
                CName::export(lib.name, "create_cbor_checked", ""),
            )
        } else {
            (
                CName::export(lib.name, f.name, ""),
                CName::export(lib.name, f.name, "_cbor"),
            )
        };
        Function {
            name: f.name.into(),
            doc: f.doc.into(),
            export: native.to_string(),
            cbor_export: cbor.to_string(),
            args_struct: (!f.params.is_empty()).then(|| f.args_struct.to_string()),
            params: fields(lib.type_prefix, f.params),
            ret: Type::of(lib.type_prefix, f.ret),
            fallible: f.fallible,
            deferred: f.deferred,
            asynchronous: f.asynchronous,
            sync_export: (role == Role::Queued)
                .then(|| CName::export(lib.name, f.name, "_sync").to_string()),
            typed: (role == Role::Queued).then(|| Typed {
                export: CName::export(lib.name, f.name, "_async").to_string(),
                callback: CName::reply_type(lib.type_prefix, f.name).to_string(),
            }),
        }
    }
}

fn fields(prefix: &str, fs: &[crate::FieldDesc]) -> Vec<Field> {
    fs.iter()
        .map(|f| Field {
            name: f.name.into(),
            doc: f.doc.into(),
            ty: Type::of(prefix, f.ty),
        })
        .collect()
}

/// Records and enums reachable from the library, each after the types it contains.
fn named_types(lib: &LibraryDesc) -> Vec<TypeDef> {
    fn visit(prefix: &str, t: &Ty, out: &mut Vec<TypeDef>, seen: &mut Vec<&'static str>) {
        match *t {
            Ty::Option(i) | Ty::Vec(i) => visit(prefix, i, out, seen),
            Ty::Record(r) if !seen.contains(&r.name) => {
                seen.push(r.name);
                for f in r.fields {
                    visit(prefix, f.ty, out, seen);
                }
                out.push(TypeDef::Record(record(prefix, r)));
            }
            Ty::Enum(e) if !seen.contains(&e.name) => {
                seen.push(e.name);
                out.push(TypeDef::Enum(enumeration(prefix, e)));
            }
            _ => {}
        }
    }
    let (mut out, mut seen) = (Vec::new(), Vec::new());
    let p = lib.type_prefix;
    let all = std::iter::once(&lib.ctor)
        .chain(lib.methods)
        .chain(lib.statics)
        .chain(lib.inlines);
    for f in all {
        for param in f.params {
            visit(p, param.ty, &mut out, &mut seen);
        }
        visit(p, f.ret, &mut out, &mut seen);
    }
    for e in lib.events {
        visit(p, e.ty, &mut out, &mut seen);
    }
    out
}

fn record(prefix: &str, r: &RecordDesc) -> Record {
    Record {
        name: r.name.into(),
        c_name: CName::type_name(prefix, r.name).to_string(),
        doc: r.doc.into(),
        fields: fields(prefix, r.fields),
    }
}

fn enumeration(prefix: &str, e: &EnumDesc) -> Enum {
    Enum {
        name: e.name.into(),
        c_name: CName::type_name(prefix, e.name).to_string(),
        doc: e.doc.into(),
        variants: e
            .variants
            .iter()
            .map(|&(name, value, doc)| Variant {
                name: name.into(),
                c_name: CName::enum_value(prefix, e.name, name).to_string(),
                value,
                doc: doc.into(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConstDesc, Describe, EventSchema, FieldDesc};

    struct Point;
    impl Describe for Point {
        const TY: Ty = Ty::Record(&RecordDesc {
            name: "Point",
            doc: "A point.",
            fields: &[FieldDesc {
                name: "x",
                doc: "Across.",
                ty: &<Option<u32> as Describe>::TY,
            }],
        });
    }
    impl crate::ArrayElement for Point {}

    const fn function(name: &'static str, doc: &'static str) -> FnDesc {
        FnDesc {
            name,
            doc,
            params: &[FieldDesc {
                name: "p",
                doc: "",
                ty: &<Point as Describe>::TY,
            }],
            ret: &<Vec<Point> as Describe>::TY,
            fallible: true,
            deferred: false,
            asynchronous: false,
            args_struct: "GeoMoveArgs",
        }
    }

    const fn library(doc: &'static str) -> LibraryDesc {
        LibraryDesc {
            name: "geo",
            type_prefix: "Geo",
            doc,
            ctor: function("create", doc),
            methods: &[],
            statics: &[],
            inlines: &[],
            events: &[EventSchema {
                name: "on_move",
                doc: "",
                ty: &<Point as Describe>::TY,
            }],
            constants: &[ConstDesc {
                name: "MAX",
                doc: "",
                ty: Ty::U32,
                value: ConstValue::Unsigned(7),
            }],
        }
    }

    const GEO: LibraryDesc = library("Geometry.");
    // The names check passes for it.
    const _: () = crate::names::check(&GEO);

    #[test]
    fn a_description_round_trips_and_spells_c_names() {
        let lib = Library::of(&GEO, "9.9.9", "/* header */");
        assert_eq!(Library::decode(&lib.encode()).unwrap(), lib);
        assert_eq!(lib.ctor.export, "geo_create_checked");
        assert_eq!(lib.ctor.args_struct.as_deref(), Some("GeoMoveArgs"));
        assert_eq!(
            lib.ctor.ret,
            Type::Vec(Box::new(Type::Record("GeoPoint".into())))
        );
        assert_eq!(lib.events[0].listener, "geo_add_on_move_listener");
        assert_eq!(lib.constants[0].c_name, "GEO_MAX");
        assert_eq!(lib.types.len(), 1);
        assert!(lib.type_def("GeoPoint").is_some());
        assert_eq!(lib.interface_hash, lib.compute_interface_hash());
    }

    #[test]
    fn the_interface_hash_ignores_docs_and_the_runtime() {
        const OTHER_DOCS: LibraryDesc = library("Other words.");
        let a = Library::of(&GEO, "1.0.0", "a");
        let b = Library::of(&OTHER_DOCS, "2.0.0", "b");
        assert_ne!(a, b);
        assert_eq!(a.interface_hash, b.interface_hash);
        let mut renamed = a.clone();
        renamed.constants[0].c_name = "GEO_MIN".into();
        assert_ne!(renamed.compute_interface_hash(), a.interface_hash);
    }

    #[test]
    fn a_newer_format_or_garbage_is_refused_clearly() {
        let mut lib = Library::of(&GEO, "1", "");
        lib.format = FORMAT + 1;
        let err = Library::decode(&lib.encode()).unwrap_err();
        assert!(matches!(err, DescriptionError::Format(v) if v == FORMAT + 1));
        assert!(err
            .to_string()
            .contains("ffi-dispatch-bindgen of the library's"));
        assert!(matches!(
            Library::decode(b"\x01\x02"),
            Err(DescriptionError::Malformed(_))
        ));
    }
}
