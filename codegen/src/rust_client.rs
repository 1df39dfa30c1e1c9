//! The Rust host renderer: `<name>.rs`, a typed client of the library for a Rust host
//! that loads it at run time (`libloading`), in one self-contained module file.
//!
//! The client calls the C exports only, as a C host does: blocking methods through the
//! `_sync` forms and futures through the typed `_async` forms (owned answers, converted
//! to owned Rust values, then freed with `<lib>_free`), events through the typed
//! listeners. Its `raw` module mirrors the header (`#[repr(C)]` structs, the export
//! table) for hosts that call the native callback and CBOR forms themselves. The part
//! that is the same for every library (errors, the one-shot answer, subscriptions) is
//! `rust/support.rs`, appended.

use std::fmt::Write;

use ffi_dispatch_schema::model::{Field, Function, Library, Type, TypeDef, Value};
use ffi_dispatch_schema::CShape;

/// The part of every client that does not depend on the library.
const SUPPORT: &str = include_str!("../rust/support.rs");

/// The part of every client of a library with events: listeners and subscriptions.
const EVENT_SUPPORT: &str = include_str!("../rust/events.rs");

/// Rust's keywords: an identifier spelled so is written raw (`r#type`).
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// A Rust identifier for `name`: itself, raw when a keyword, with a `_` after it when it
/// cannot be raw (`self`, `Self`, `super`, `crate`).
fn ident(name: &str) -> String {
    match name {
        "self" | "Self" | "super" | "crate" | "_" => format!("{name}_"),
        n if RUST_KEYWORDS.contains(&n) => format!("r#{n}"),
        n => n.to_string(),
    }
}

/// A parameter name: as [`ident`], and clear of the client's own parameters and locals
/// (`timeout`, `listener`, `ffid_*`).
fn param_ident(name: &str) -> String {
    if name == "timeout" || name == "listener" || name.starts_with("ffid_") {
        format!("{name}_")
    } else {
        ident(name)
    }
}

/// A type name for a record or enum: as [`ident`], and clear of the client's own types.
fn type_ident(name: &str) -> String {
    const TAKEN: &[&str] = &[
        "Library",
        "Context",
        "Error",
        "Pending",
        "Subscription",
        "Loaded",
        "Keep",
        "Oneshot",
        "Answer",
        "Reply",
        "Created",
        "Listener",
        "ListenerHeader",
        "Result",
        "Option",
        "String",
        "Vec",
        "Box",
    ];
    if TAKEN.contains(&name) {
        format!("{name}_")
    } else {
        ident(name)
    }
}

/// A method name of `Context` (`taken`: the members it has of its own) or `Library`.
fn member_ident(name: &str, taken: &[&str]) -> String {
    if taken.contains(&name) {
        format!("{name}_")
    } else {
        ident(name)
    }
}

const CONTEXT_MEMBERS: &[&str] = &[
    "handle",
    "library",
    "destroy",
    "drain",
    "completion_fd",
    "stats",
];
const LIBRARY_MEMBERS: &[&str] = &[
    "load",
    "raw",
    "options",
    "create",
    "create_with_options",
    "clone",
];

fn scalar(t: &Type) -> Option<&'static str> {
    Some(match t {
        Type::Bool => "bool",
        Type::U8 => "u8",
        Type::U16 => "u16",
        Type::U32 => "u32",
        Type::U64 => "u64",
        Type::I8 => "i8",
        Type::I16 => "i16",
        Type::I32 => "i32",
        Type::I64 => "i64",
        Type::F32 => "f32",
        Type::F64 => "f64",
        _ => return None,
    })
}

/// `text` as `///` doc lines at `indent`.
fn doc(o: &mut String, indent: &str, text: &str) {
    for l in text.lines() {
        let l = l.trim_end();
        if l.is_empty() {
            writeln!(o, "{indent}///").unwrap();
        } else {
            writeln!(o, "{indent}/// {l}").unwrap();
        }
    }
}

/// The first line of a doc, or `fallback`.
fn summary(text: &str, fallback: &str) -> String {
    match text.lines().next().map(str::trim) {
        Some(l) if !l.is_empty() => l.to_string(),
        _ => fallback.to_string(),
    }
}

/// `(a, b)` for a list of parameters (`ffid_x: T`) or arguments.
fn list(items: &[String]) -> String {
    items.join(", ")
}

struct Cx<'a> {
    lib: &'a Library,
}

impl Cx<'_> {
    /// The Rust name of the record or enum of C name `c`.
    fn named(&self, c: &str) -> String {
        match self.lib.type_def(c) {
            Some(TypeDef::Record(r)) => type_ident(&r.name),
            Some(TypeDef::Enum(e)) => type_ident(&e.name),
            None => type_ident(c),
        }
    }

    /// The owned Rust type of `t`.
    fn owned(&self, t: &Type) -> String {
        match t {
            Type::Unit => "()".into(),
            Type::Str => "String".into(),
            Type::Bytes => "Vec<u8>".into(),
            Type::Option(i) => format!("Option<{}>", self.owned(i)),
            Type::Vec(i) => format!("Vec<{}>", self.owned(i)),
            Type::Record(c) | Type::Enum(c) => self.named(c),
            s => scalar(s).unwrap_or("()").into(),
        }
    }

    /// How a parameter of type `t` is taken: borrowed views of text, bytes, arrays and
    /// records; scalars and enums by value.
    fn view(&self, t: &Type) -> String {
        match t {
            Type::Str => "&str".into(),
            Type::Bytes => "&[u8]".into(),
            Type::Vec(i) => match &**i {
                Type::Str => "&[&str]".into(),
                i => format!("&[{}]", self.owned(i)),
            },
            Type::Record(c) => format!("&{}", self.named(c)),
            Type::Option(i) => format!("Option<{}>", self.view(i)),
            t => self.owned(t),
        }
    }

    /// The C type of one element of an array of `t` (`q`: the path to `raw`).
    fn c_elem(&self, t: &Type, q: &str) -> String {
        match t {
            Type::Str => "*const c_char".into(),
            Type::Record(c) | Type::Enum(c) => format!("{q}{c}"),
            s => scalar(s).unwrap_or("u8").into(),
        }
    }

    /// The C fields of slot `name` of type `t`, as `schema::CShape` lays them out.
    fn c_fields(&self, name: &str, t: &Type, q: &str) -> Vec<(String, String)> {
        let (inner, optional) = match t {
            Type::Option(i) => (&**i, true),
            t => (t, false),
        };
        match t.c_shape() {
            CShape::Pair => {
                let ptr = match inner {
                    Type::Vec(e) => format!("*const {}", self.c_elem(e, q)),
                    _ => "*const u8".into(),
                };
                vec![(name.into(), ptr), (format!("{name}_len"), "usize".into())]
            }
            CShape::Flag => vec![
                (format!("has_{name}"), "bool".into()),
                (name.into(), scalar(inner).unwrap_or("u8").into()),
            ],
            CShape::Single => {
                let ty = match inner {
                    Type::Str => "*const c_char".into(),
                    other if optional => format!("*const {}", self.c_elem(other, q)),
                    other => self.c_elem(other, q),
                };
                vec![(name.into(), ty)]
            }
        }
    }

    /// Struct-literal fields filling slot `name` from the Rust value `v` (an owned
    /// field or a parameter's view); may use `ffid_keep` and `?`.
    fn to_c(&self, name: &str, v: &str, t: &Type, field: bool) -> Vec<(String, String)> {
        let len = format!("{name}_len");
        let elems = |e: &Type, v: &str| -> String {
            match e {
                Type::Str => format!(
                    "{{ let ffid_a = {v}.iter().map(|e| ffid_keep.text(e, {name:?})).collect::<Result<Vec<_>, Error>>()?; ffid_keep.array(ffid_a) }}"
                ),
                Type::Record(_) => format!(
                    "{{ let ffid_a = {v}.iter().map(|e| e.to_c(ffid_keep)).collect::<Result<Vec<_>, Error>>()?; ffid_keep.array(ffid_a) }}"
                ),
                Type::Enum(c) => format!(
                    "{{ let ffid_a: Vec<raw::{c}> = {v}.iter().map(|e| e.to_c()).collect(); ffid_keep.array(ffid_a) }}"
                ),
                _ => format!("{v}.as_ptr()"),
            }
        };
        match t {
            Type::Str => {
                let text = if field { format!("&{v}") } else { v.to_string() };
                vec![(name.into(), format!("ffid_keep.text({text}, {name:?})?"))]
            }
            Type::Bytes => vec![
                (name.into(), format!("{v}.as_ptr()")),
                (len, format!("{v}.len()")),
            ],
            Type::Vec(e) => vec![(name.into(), elems(e, v)), (len, format!("{v}.len()"))],
            Type::Record(_) => vec![(name.into(), format!("{v}.to_c(ffid_keep)?"))],
            Type::Enum(_) => vec![(name.into(), format!("{v}.to_c()"))],
            Type::Option(i) => match &**i {
                s if s.is_scalar() => vec![
                    (format!("has_{name}"), format!("{v}.is_some()")),
                    (name.into(), format!("{v}.unwrap_or_default()")),
                ],
                Type::Str => vec![(
                    name.into(),
                    format!(
                        "match &{v} {{ Some(s) => ffid_keep.text(s, {name:?})?, None => std::ptr::null() }}"
                    ),
                )],
                Type::Record(_) => vec![(
                    name.into(),
                    format!(
                        "match &{v} {{ Some(r) => {{ let ffid_c = r.to_c(ffid_keep)?; ffid_keep.one(ffid_c) }} None => std::ptr::null() }}"
                    ),
                )],
                Type::Enum(_) => vec![(
                    name.into(),
                    format!(
                        "match {v} {{ Some(e) => ffid_keep.one(e.to_c()), None => std::ptr::null() }}"
                    ),
                )],
                Type::Bytes => vec![
                    (
                        name.into(),
                        format!("{v}.as_ref().map_or(std::ptr::null(), |a| a.as_ptr())"),
                    ),
                    (len, format!("{v}.as_ref().map_or(0, |a| a.len())")),
                ],
                Type::Vec(e) => vec![
                    (
                        name.into(),
                        format!(
                            "match &{v} {{ Some(ffid_v) => {}, None => std::ptr::null() }}",
                            elems(e, "ffid_v")
                        ),
                    ),
                    (len, format!("{v}.as_ref().map_or(0, |a| a.len())")),
                ],
                _ => Vec::new(),
            },
            _ => vec![(name.into(), v.to_string())],
        }
    }

    /// The owned Rust value of the array at `p` with `len` elements of `e`.
    fn array_from_c(&self, p: &str, len: &str, e: &Type) -> String {
        match e {
            Type::Str => format!("ffid_slice({p}, {len}).iter().map(|&p| ffid_text(p)).collect()"),
            Type::Record(c) => format!(
                "ffid_slice({p}, {len}).iter().map(|r| {}::from_c(r)).collect()",
                self.named(c)
            ),
            Type::Enum(c) => format!(
                "ffid_slice({p}, {len}).iter().map(|&e| {}::from_c(e)).collect()",
                self.named(c)
            ),
            _ => format!("ffid_slice({p}, {len}).to_vec()"),
        }
    }

    /// The owned Rust value of a record's field `name` (in the mirror `c`).
    fn field_from_c(&self, name: &str, t: &Type) -> String {
        let c = format!("c.{}", ident(name));
        let len = format!("c.{name}_len");
        let pair = |t: &Type| match t {
            Type::Vec(e) => self.array_from_c(&c, &len, e),
            _ => format!("ffid_slice({c}, {len}).to_vec()"),
        };
        match t {
            Type::Str => format!("ffid_text({c})"),
            Type::Bytes | Type::Vec(_) => pair(t),
            Type::Record(r) => format!("{}::from_c(&{c})", self.named(r)),
            Type::Enum(e) => format!("{}::from_c({c})", self.named(e)),
            Type::Option(i) => match &**i {
                s if s.is_scalar() => format!("c.has_{name}.then_some({c})"),
                Type::Str => format!("ffid_opt_text({c})"),
                Type::Record(r) => {
                    format!("{c}.as_ref().map(|r| {}::from_c(r))", self.named(r))
                }
                Type::Enum(e) => format!("{c}.as_ref().map(|&e| {}::from_c(e))", self.named(e)),
                i => format!("(!{c}.is_null()).then(|| {})", pair(i)),
            },
            _ => c,
        }
    }

    /// An answer's C values (a blocking form's out parameters' pointees, a typed
    /// reply's or listener's values), named after `v` (`v`, `v_len`, `has_v`).
    fn answer_c(&self, t: &Type, v: &str) -> Vec<(String, String)> {
        match t {
            Type::Unit => Vec::new(),
            Type::Record(c) => vec![(v.into(), format!("*const raw::{c}"))],
            Type::Enum(c) => vec![(v.into(), format!("raw::{c}"))],
            Type::Option(i) if matches!(**i, Type::Enum(_)) => {
                vec![(v.into(), format!("*const {}", self.c_elem(i, "raw::")))]
            }
            t => self.c_fields(v, t, "raw::"),
        }
    }

    /// The expression (a `Result<T, Error>`) making the owned answer of type `t` from
    /// its C values named after `v`, and the block to free after it, if any.
    fn answer_from_c(&self, t: &Type, v: &str) -> (String, Option<String>) {
        let len = format!("{v}_len");
        let pair = |t: &Type| match t {
            Type::Vec(e) => self.array_from_c(v, &len, e),
            _ => format!("ffid_slice({v}, {len}).to_vec()"),
        };
        let block = Some(v.to_string());
        match t {
            Type::Unit => ("Ok(())".into(), None),
            Type::Enum(e) => (format!("Ok({}::from_c({v}))", self.named(e)), None),
            Type::Str => (format!("Ok(ffid_text({v}))"), block),
            Type::Bytes | Type::Vec(_) => (format!("Ok({})", pair(t)), block),
            Type::Record(r) => (
                format!(
                    "{v}.as_ref().map(|r| {}::from_c(r)).ok_or_else(Error::no_answer)",
                    self.named(r)
                ),
                block,
            ),
            Type::Option(i) => match &**i {
                s if s.is_scalar() => (format!("Ok(has_{v}.then_some({v}))"), None),
                Type::Str => (format!("Ok(ffid_opt_text({v}))"), block),
                Type::Record(r) => (
                    format!("Ok({v}.as_ref().map(|r| {}::from_c(r)))", self.named(r)),
                    block,
                ),
                Type::Enum(e) => (
                    format!("Ok({v}.as_ref().map(|&e| {}::from_c(e)))", self.named(e)),
                    block,
                ),
                i => (format!("Ok((!{v}.is_null()).then(|| {}))", pair(i)), block),
            },
            _ => (format!("Ok({v})"), None),
        }
    }

    /// The expression (a `Result<T, Error>`) reading a native answer of type `t` from
    /// the bytes `m` (an inline export's callback).
    fn native_from_bytes(&self, t: &Type, m: &str) -> String {
        match t {
            Type::Unit => "Ok(())".into(),
            Type::Bool => format!("Ok({m}.first().is_some_and(|&b| b != 0))"),
            Type::Str => format!("Ok(String::from_utf8_lossy({m}).into_owned())"),
            Type::Bytes => format!("Ok({m}.to_vec())"),
            Type::Enum(e) => format!(
                "Ok({}::from_c(i32::from_ne_bytes(ffid_ne_bytes({m})?)))",
                self.named(e)
            ),
            Type::Record(r) => format!(
                "ffid_read_mirror::<raw::{r}>({m}).map(|r| {}::from_c(&r))",
                self.named(r)
            ),
            Type::Vec(e) => {
                let el = self.c_elem(e, "raw::");
                let conv = match &**e {
                    Type::Str => ".iter().map(|&p| ffid_text(p)).collect()".to_string(),
                    Type::Record(c) => {
                        format!(".iter().map(|r| {}::from_c(r)).collect()", self.named(c))
                    }
                    Type::Enum(c) => {
                        format!(".iter().map(|&e| {}::from_c(e)).collect()", self.named(c))
                    }
                    _ => String::new(),
                };
                format!("Ok(ffid_read_mirrors::<{el}>({m}){conv})")
            }
            Type::Option(i) => format!(
                "if {m}.is_empty() {{ Ok(None) }} else {{ ({}).map(Some) }}",
                self.native_from_bytes(i, m)
            ),
            s => format!(
                "Ok({}::from_ne_bytes(ffid_ne_bytes({m})?))",
                scalar(s).unwrap_or("u8")
            ),
        }
    }
}

/// Whether filling slot type `t` needs `ffid_keep` (text, records, arrays of either or
/// of enums, optional enums).
fn needs_keep(t: &Type) -> bool {
    match t {
        Type::Str | Type::Record(_) => true,
        Type::Vec(e) => !e.is_scalar(),
        Type::Option(i) => match &**i {
            Type::Enum(_) => true,
            i => needs_keep(i),
        },
        _ => false,
    }
}

/// Whether reading a record field of type `t` from its mirror reads through pointers.
fn reads_pointers(t: &Type) -> bool {
    match t {
        Type::Enum(_) => false,
        Type::Option(i) => !i.is_scalar(),
        t => !t.is_scalar(),
    }
}

/// Whether reading a native answer of type `t` reads through pointers.
fn native_reads_pointers(t: &Type) -> bool {
    match t {
        Type::Record(_) | Type::Vec(_) => true,
        Type::Option(i) => native_reads_pointers(i),
        _ => false,
    }
}

/// Renders `<name>.rs` for `lib`.
pub fn rust_client(lib: &Library) -> String {
    let cx = Cx { lib };
    let n = &lib.name;
    let mut o = String::new();
    writeln!(
        o,
        "//! {n}.rs - Rust client of the {n} library, generated by ffi-dispatch-bindgen from the\n\
         //! built library (ffi-dispatch {}). Do not edit; regenerate it with\n\
         //! `ffi-dispatch-bindgen <lib{n}.so> --out <dir> --lang rust`.\n//!",
        lib.runtime_version
    )
    .unwrap();
    for l in lib.doc.lines() {
        writeln!(o, "//! {}", l.trim_end()).unwrap();
    }
    if !lib.doc.is_empty() {
        writeln!(o, "//!").unwrap();
    }
    o.push_str(&format!(
        "//! A module of its own (`#[path = \"{n}.rs\"] mod {n};`) whose one dependency is
//! `libloading`. [`Library::load`] loads a build of the library at run time and checks
//! that it serves this client's interface; [`Library::create`] makes a [`Context`] and
//! waits for the constructor. Each method `m` comes as
//! - `m(args..., timeout) -> Result<T, Error>`: blocking (the runtime waits: a short spin,
//!   then asleep; `None`: no limit; [`Error::Timeout`] leaves the call running);
//! - `m_async(args...) -> Pending<T>`: a future (any executor, no thread per call).
//!
//!{events}
//! Arguments are borrowed for the call; answers are owned Rust values (the
//! library's blocks are copied, then freed). Records are structs of owned fields, enums
//! Rust enums (with `Unknown` for a value this client does not know). [`raw`] mirrors
//! the C header for the zero-copy native callback and CBOR forms.

#![allow(dead_code, clippy::too_many_arguments)]

use std::ffi::{{c_char, c_int, c_void, CStr, CString}};
use std::future::Future;
use std::pin::Pin;
use std::sync::{{Arc, Condvar, Mutex, MutexGuard}};
use std::task::{{Poll, Waker}};

/// The interface this client was generated for (`{}` in {n}.h): a library serving
/// another one is refused at load and at create.
pub const INTERFACE_HASH: u64 = {:#018x};
",
        lib.macro_name("INTERFACE_HASH"),
        lib.interface_hash,
        events = if lib.events.is_empty() {
            ""
        } else {
            "\n//! Events come to a closure until the [`Subscription`] `listen_<event>` returns is\n//! dropped."
        }
    ));
    constants(&mut o, lib);
    raw_module(&mut o, &cx);
    types(&mut o, &cx);
    library(&mut o, &cx);
    context(&mut o, &cx);
    helpers(&mut o, &cx);
    o.push_str(SUPPORT);
    if !lib.events.is_empty() {
        o.push_str(EVENT_SUPPORT);
    }
    o
}

fn constants(o: &mut String, lib: &Library) {
    for c in &lib.constants {
        writeln!(o).unwrap();
        doc(o, "", &summary(&c.doc, &format!("`{}`.", c.c_name)));
        let (ty, value) = match &c.value {
            Value::Str(s) => ("&str".to_string(), format!("{s:?}")),
            Value::Bool(b) => ("bool".into(), b.to_string()),
            Value::Float(f) if c.ty == Type::F32 => ("f32".into(), format!("{:?}", *f as f32)),
            Value::Float(f) => ("f64".into(), format!("{f:?}")),
            Value::Unsigned(v) => (scalar(&c.ty).unwrap_or("u64").into(), v.to_string()),
            Value::Signed(v) => (scalar(&c.ty).unwrap_or("i64").into(), v.to_string()),
        };
        writeln!(o, "pub const {}: {ty} = {value};", ident(&c.name)).unwrap();
    }
}

/// The C signature of a function pointer: `unsafe extern "C" fn(params) -> ret`.
fn c_fn(params: &[String], ret: &str) -> String {
    let ret = if ret.is_empty() {
        String::new()
    } else {
        format!(" -> {ret}")
    };
    format!("unsafe extern \"C\" fn({}){ret}", params.join(", "))
}

/// The exports of `lib`: (field, C name, type, doc), in header order.
fn exports(cx: &Cx, lib: &Library) -> Vec<(String, String, String, String)> {
    let strip = |c: &str| {
        ident(
            c.strip_prefix(&format!("{}_", lib.name))
                .unwrap_or(c)
                .trim_start_matches("ffid_"),
        )
    };
    let mut out = Vec::new();
    let mut push = |c: &str, ty: String, d: String| out.push((strip(c), c.to_string(), ty, d));
    let ctx = "*mut ffid_ctx".to_string();
    let cb = |with_ctx: bool| {
        let mut p = Vec::new();
        if with_ctx {
            p.push(ctx.clone());
        }
        p.push("ffid_callback".into());
        p.push("*mut c_void".into());
        p
    };
    // The constructor.
    let ctor = &lib.ctor;
    let mut p = vec![
        "u64".to_string(),
        "ffid_callback".into(),
        "*mut c_void".into(),
    ];
    if let Some(s) = &ctor.args_struct {
        p.push(format!("*const {s}"));
    }
    p.push("*const ffid_options".into());
    push(
        &ctor.export,
        c_fn(&p, "*mut ffid_ctx"),
        "The constructor, native: (interface hash, callback, user data, config, options).".into(),
    );
    let p = [
        "u64",
        "ffid_callback",
        "*mut c_void",
        "*const u8",
        "usize",
        "*const ffid_options",
    ]
    .map(String::from);
    push(
        &ctor.cbor_export,
        c_fn(&p, "*mut ffid_ctx"),
        "The constructor, its config as CBOR.".into(),
    );
    push(
        &format!("{}_destroy", lib.name),
        c_fn(std::slice::from_ref(&ctx), "c_int"),
        "Destroys a context (synchronous).".into(),
    );
    let queued = lib.methods.iter().map(|f| (f, true));
    let statics = lib.statics.iter().map(|f| (f, false));
    for (f, with_ctx) in queued
        .chain(statics)
        .chain(lib.inlines.iter().map(|f| (f, false)))
    {
        let mut p = cb(with_ctx);
        if let Some(s) = &f.args_struct {
            p.push(format!("*const {s}"));
        }
        push(
            &f.export,
            c_fn(&p, "c_int"),
            format!("`{}`, the native callback form.", f.name),
        );
        let mut p = cb(with_ctx);
        p.extend(["*const u8".to_string(), "usize".into()]);
        push(
            &f.cbor_export,
            c_fn(&p, "c_int"),
            format!("`{}`, the CBOR form.", f.name),
        );
        let args: Vec<String> = f
            .args_struct
            .iter()
            .map(|s| format!("*const {s}"))
            .collect();
        let with = |extra: Vec<String>| {
            let mut p: Vec<String> = if with_ctx { vec![ctx.clone()] } else { vec![] };
            p.extend(args.iter().cloned());
            p.extend(extra);
            p
        };
        if let Some(sync) = &f.sync_export {
            let mut extra: Vec<String> = cx
                .answer_c(&f.ret, "out")
                .into_iter()
                .map(|(_, t)| format!("*mut {}", t.replace("raw::", "")))
                .collect();
            extra.push("u32".into());
            push(
                sync,
                c_fn(&with(extra), "c_int"),
                format!("`{}`, the blocking form.", f.name),
            );
        }
        if let Some(typed) = &f.typed {
            push(
                &typed.export,
                c_fn(
                    &with(vec![typed.callback.clone(), "*mut c_void".into()]),
                    "c_int",
                ),
                format!("`{}`, the typed form.", f.name),
            );
        }
    }
    let n = &lib.name;
    let fixed: [(&str, Vec<&str>, &str, &str); 10] = [
        (
            "stats",
            vec!["*mut ffid_ctx", "*mut ffid_context_stats"],
            "c_int",
            "Copies a context's counters.",
        ),
        (
            "last_request_id",
            vec![],
            "u64",
            "The id of this thread's last accepted call.",
        ),
        (
            "last_error",
            vec![],
            "*const c_char",
            "Why this thread's last call was refused, or its create or blocking call failed.",
        ),
        (
            "free",
            vec!["*const c_void"],
            "",
            "Frees an owned answer (of a blocking call, a typed reply or listener).",
        ),
        (
            "cancel",
            vec!["*mut ffid_ctx", "u64"],
            "c_int",
            "Cancels a request the worker has not started.",
        ),
        (
            "drain",
            vec!["*mut ffid_ctx", "u32"],
            "c_int",
            "Completion mode: runs queued callbacks on the calling thread.",
        ),
        (
            "completion_fd",
            vec!["*mut ffid_ctx"],
            "c_int",
            "Completion mode: the eventfd readable while callbacks are queued.",
        ),
        (
            "poll",
            vec!["*mut ffid_ctx", "*mut ffid_entry", "u32", "i32"],
            "c_int",
            "Completion mode: queued answers and pings as entries, lent until the next poll.",
        ),
        (
            "poll_fd",
            vec!["*mut ffid_ctx"],
            "c_int",
            "Completion mode: a fresh duplicate of the eventfd, the caller's to close.",
        ),
        (
            "interface_hash",
            vec![],
            "u64",
            "The interface hash of the library as built.",
        ),
    ];
    for (name, p, ret, d) in fixed {
        let p: Vec<String> = p.into_iter().map(String::from).collect();
        push(&format!("{n}_{name}"), c_fn(&p, ret), d.into());
    }
    push(
        "ffid_options_init",
        c_fn(&["*mut ffid_options".to_string()], "c_int"),
        "Fills an `ffid_options` with the defaults (this library's runtime's).".into(),
    );
    if !lib.events.is_empty() {
        for e in &lib.events {
            let p = [ctx.clone(), "ffid_callback".into(), "*mut c_void".into()];
            push(
                &e.listener,
                c_fn(&p, "u64"),
                format!("Adds a native listener of `{}`.", e.name),
            );
            push(
                &e.cbor_listener,
                c_fn(&p, "u64"),
                format!("Adds a CBOR listener of `{}`.", e.name),
            );
            let p = [ctx.clone(), e.typed.callback.clone(), "*mut c_void".into()];
            push(
                &e.typed.export,
                c_fn(&p, "u64"),
                format!("Adds a typed listener of `{}`.", e.name),
            );
        }
        let p = [ctx.clone(), "ffid_callback".into(), "*mut c_void".into()];
        push(
            &format!("{n}_add_event_listener"),
            c_fn(&p, "u64"),
            "Adds a listener of every event (CBOR `{\"event\": name, \"payload\": ...}`).".into(),
        );
        push(
            &format!("{n}_remove_listener"),
            c_fn(&[ctx.clone(), "u64".into()], "c_int"),
            "Removes a listener.".into(),
        );
    }
    out
}

/// `pub mod raw`: the header's C ABI.
fn raw_module(o: &mut String, cx: &Cx) {
    let lib = cx.lib;
    let n = &lib.name;
    o.push_str(&format!(
        "
/// The C ABI of `{n}.h` and `ffi_dispatch.h`, mirrored: status codes, `#[repr(C)]`
/// structs (C names), callback types and the table of the library's exports. For hosts
/// that call the native callback and CBOR forms themselves: every pointer passed in is
/// borrowed for the call only, and an answer's `msg` is valid during its callback only
/// (`ffi_dispatch.h` says all of it).
#[allow(non_camel_case_types)]
pub mod raw {{
    use std::ffi::{{c_char, c_int, c_void}};

    use super::Error;
{RAW_RUNTIME}"
    ));
    // Enums and records.
    for t in &lib.types {
        writeln!(o).unwrap();
        match t {
            TypeDef::Enum(e) => {
                doc(o, "    ", &summary(&e.doc, &format!("`{}`.", e.c_name)));
                writeln!(o, "    pub type {} = i32;", e.c_name).unwrap();
                for v in &e.variants {
                    doc(
                        o,
                        "    ",
                        &summary(&v.doc, &format!("`{}::{}`.", e.name, v.name)),
                    );
                    writeln!(o, "    pub const {}: {} = {};", v.c_name, e.c_name, v.value).unwrap();
                }
            }
            TypeDef::Record(r) => mirror(
                o,
                cx,
                &r.c_name,
                &summary(&r.doc, &format!("`{}`.", r.c_name)),
                &r.fields,
            ),
        }
    }
    // Args structs, reply and listener types.
    for f in lib.functions() {
        if let Some(s) = &f.args_struct {
            writeln!(o).unwrap();
            mirror(
                o,
                cx,
                s,
                &format!("The arguments of `{}`.", f.name),
                &f.params,
            );
        }
        if let Some(typed) = &f.typed {
            let mut p = vec!["c_int".to_string()];
            p.extend(
                cx.answer_c(&f.ret, "value")
                    .into_iter()
                    .map(|(_, t)| t.replace("raw::", "")),
            );
            p.extend(["*const c_char".to_string(), "*mut c_void".into()]);
            writeln!(
                o,
                "\n    /// The reply of `{}`'s typed form: (ret, the answer's values, msg, user data).\n    pub type {} = Option<{}>;",
                f.name,
                typed.callback,
                c_fn(&p, "")
            )
            .unwrap();
        }
    }
    for e in &lib.events {
        let mut p: Vec<String> = cx
            .answer_c(&e.ty, "event")
            .into_iter()
            .map(|(_, t)| t.replace("raw::", ""))
            .collect();
        p.push("*mut c_void".into());
        writeln!(
            o,
            "\n    /// A typed listener of `{}`: (the event's values, owned, user data).\n    pub type {} = Option<{}>;",
            e.name,
            e.typed.callback,
            c_fn(&p, "")
        )
        .unwrap();
    }
    // The export table.
    let ex = exports(cx, lib);
    writeln!(
        o,
        "\n    /// The library's exports, resolved at load (the header's declarations).\n    #[allow(clippy::type_complexity)]\n    pub struct Exports {{"
    )
    .unwrap();
    for (field, c, ty, d) in &ex {
        writeln!(o, "        /// `{c}`: {d}\n        pub {field}: {ty},").unwrap();
    }
    writeln!(
        o,
        "    }}\n\n    impl Exports {{\n        /// Resolves every export of `file`.\n        ///\n        /// # Safety\n        /// `file` is a build of the {n} library: each symbol has the type declared here.\n        pub(super) unsafe fn resolve(file: &libloading::Library) -> Result<Exports, Error> {{\n            // SAFETY: the caller's promise: each type is the symbol's.\n            unsafe {{\n                Ok(Exports {{"
    )
    .unwrap();
    for (field, c, _, _) in &ex {
        writeln!(
            o,
            "                    {field}: super::ffid_export(file, b\"{c}\\0\")?,"
        )
        .unwrap();
    }
    writeln!(
        o,
        "                }})\n            }}\n        }}\n    }}\n}}"
    )
    .unwrap();
}

/// A `#[repr(C)]` mirror of a C struct of `fields`.
fn mirror(o: &mut String, cx: &Cx, name: &str, d: &str, fields: &[Field]) {
    doc(o, "    ", d);
    writeln!(
        o,
        "    #[repr(C)]\n    #[derive(Clone, Copy, Debug)]\n    pub struct {name} {{"
    )
    .unwrap();
    for f in fields {
        for (field, ty) in cx.c_fields(&f.name, &f.ty, "") {
            let d = if field == f.name {
                summary(&f.doc, &format!("`{}`.", f.name))
            } else if field.starts_with("has_") && field != f.name {
                format!("Whether `{}` is present.", f.name)
            } else {
                format!("The length of `{}`.", f.name)
            };
            writeln!(o, "        /// {d}\n        pub {}: {ty},", ident(&field)).unwrap();
        }
    }
    writeln!(o, "    }}").unwrap();
}

/// The owned records and enums, with their conversions.
fn types(o: &mut String, cx: &Cx) {
    for t in &cx.lib.types {
        writeln!(o).unwrap();
        match t {
            TypeDef::Enum(e) => {
                let name = type_ident(&e.name);
                let unknown = if e.variants.iter().any(|v| v.name == "Unknown") {
                    "Unknown_"
                } else {
                    "Unknown"
                };
                doc(
                    o,
                    "",
                    if e.doc.is_empty() {
                        "An enum of the library."
                    } else {
                        e.doc.as_str()
                    },
                );
                writeln!(
                    o,
                    "#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]\npub enum {name} {{"
                )
                .unwrap();
                for v in &e.variants {
                    doc(o, "    ", &summary(&v.doc, &format!("`{}`.", v.c_name)));
                    writeln!(o, "    {},", ident(&v.name)).unwrap();
                }
                writeln!(
                    o,
                    "    /// A value this client does not know (from another version of the library);\n    /// passed on as it is (the library refuses values it does not know).\n    {unknown}(i32),\n}}\n\nimpl {name} {{\n    /// The C value (`raw::{}`).\n    pub fn to_c(self) -> i32 {{\n        match self {{",
                    e.c_name
                )
                .unwrap();
                for v in &e.variants {
                    writeln!(
                        o,
                        "            {name}::{} => raw::{},",
                        ident(&v.name),
                        v.c_name
                    )
                    .unwrap();
                }
                writeln!(
                    o,
                    "            {name}::{unknown}(v) => v,\n        }}\n    }}\n\n    /// The variant of C value `v`.\n    pub fn from_c(v: i32) -> {name} {{\n        match v {{"
                )
                .unwrap();
                for v in &e.variants {
                    writeln!(
                        o,
                        "            raw::{} => {name}::{},",
                        v.c_name,
                        ident(&v.name)
                    )
                    .unwrap();
                }
                writeln!(
                    o,
                    "            v => {name}::{unknown}(v),\n        }}\n    }}\n}}"
                )
                .unwrap();
            }
            TypeDef::Record(r) => {
                let name = type_ident(&r.name);
                doc(
                    o,
                    "",
                    if r.doc.is_empty() {
                        "A record of the library."
                    } else {
                        r.doc.as_str()
                    },
                );
                writeln!(
                    o,
                    "#[derive(Clone, Debug, PartialEq)]\npub struct {name} {{"
                )
                .unwrap();
                for f in &r.fields {
                    doc(o, "    ", &summary(&f.doc, &format!("`{}`.", f.name)));
                    writeln!(o, "    pub {}: {},", ident(&f.name), cx.owned(&f.ty)).unwrap();
                }
                writeln!(o, "}}\n\nimpl {name} {{").unwrap();
                // from_c
                let pointers = r.fields.iter().any(|f| reads_pointers(&f.ty));
                let (open, close) = if pointers {
                    (
                        "// SAFETY: the caller's promise.\n        unsafe {\n            ",
                        "\n        }",
                    )
                } else {
                    ("", "")
                };
                writeln!(
                    o,
                    "    /// A copy of the C form `c`.\n    ///\n    /// # Safety\n    /// `c` and everything it points to is a valid `{}`.\n    unsafe fn from_c(c: &raw::{}) -> {name} {{\n        {open}{name} {{",
                    r.c_name, r.c_name
                )
                .unwrap();
                for f in &r.fields {
                    writeln!(
                        o,
                        "            {}: {},",
                        ident(&f.name),
                        cx.field_from_c(&f.name, &f.ty)
                    )
                    .unwrap();
                }
                writeln!(o, "        }}{close}\n    }}\n").unwrap();
                // to_c
                let keep = if r.fields.iter().any(|f| needs_keep(&f.ty)) {
                    "ffid_keep"
                } else {
                    "_ffid_keep"
                };
                writeln!(
                    o,
                    "    /// The C form, pointing into `self` and `{keep}`.\n    fn to_c(&self, {keep}: &mut Keep) -> Result<raw::{}, Error> {{\n        Ok(raw::{} {{",
                    r.c_name, r.c_name
                )
                .unwrap();
                for f in &r.fields {
                    for (field, e) in
                        cx.to_c(&f.name, &format!("self.{}", ident(&f.name)), &f.ty, true)
                    {
                        writeln!(o, "            {}: {e},", ident(&field)).unwrap();
                    }
                }
                writeln!(o, "        }})\n    }}\n}}").unwrap();
            }
        }
    }
}

/// The Rust parameters of `f` (`name: view`).
fn params(cx: &Cx, f: &Function) -> Vec<String> {
    f.params
        .iter()
        .map(|p| format!("{}: {}", param_ident(&p.name), cx.view(&p.ty)))
        .collect()
}

fn arg_names(f: &Function) -> Vec<String> {
    f.params.iter().map(|p| param_ident(&p.name)).collect()
}

/// The lines making `f`'s args struct `ffid_args` (`fail`: what a conversion error
/// does: `?` or a return), none without parameters.
fn args_lines(f: &Function, ind: &str, fail: &str) -> String {
    if f.args_struct.is_none() {
        return String::new();
    }
    let mut a = arg_names(f);
    a.push("&mut ffid_keep".into());
    let call = format!("ffid_args_{}({})", f.name, list(&a));
    let call = if fail == "?" {
        format!("{call}?")
    } else {
        format!("match {call} {{\n{ind}    Ok(a) => a,\n{ind}    Err(e) => {fail},\n{ind}}}")
    };
    format!("{ind}let mut ffid_keep = Keep::default();\n{ind}let ffid_args = {call};\n")
}

/// The function documentation of `f`, with `extra` after it.
fn fn_doc(o: &mut String, ind: &str, f: &Function, extra: &str) {
    let mut d = f.doc.trim_end().to_string();
    if !d.is_empty() {
        d.push_str("\n\n");
    }
    d.push_str(extra);
    doc(o, ind, &d);
}

/// The blocking and future forms of a method (`ctx`: on a context) or static method.
fn queued(o: &mut String, cx: &Cx, f: &Function, ctx: bool) {
    let ind = "    ";
    let taken = if ctx {
        CONTEXT_MEMBERS
    } else {
        LIBRARY_MEMBERS
    };
    let name = member_ident(&f.name, taken);
    let ret = cx.owned(&f.ret);
    let loaded = if ctx {
        "self.lib.loaded"
    } else {
        "self.loaded"
    };
    let ctx_arg = if ctx { "self.ctx, " } else { "" };
    // A static method starts the library's static context, which is never unloaded.
    let pin = if ctx {
        ""
    } else {
        "        ffid_loaded.keep_loaded();\n"
    };
    let args_arg = if f.args_struct.is_some() {
        "&ffid_args, "
    } else {
        ""
    };
    let fallible = if f.fallible {
        " A method error is [`Error::Failed`]."
    } else {
        ""
    };
    // Blocking.
    if let Some(sync) = &f.sync_export {
        let field = ident(
            sync.strip_prefix(&format!("{}_", cx.lib.name))
                .unwrap_or(sync),
        );
        fn_doc(
            o,
            ind,
            f,
            &format!(
                "Blocking: waits up to `timeout` (`None`: no limit) on this thread.{fallible}"
            ),
        );
        let mut ps = params(cx, f);
        ps.push("timeout: Option<std::time::Duration>".into());
        writeln!(
            o,
            "{ind}pub fn {name}(&self, {}) -> Result<{ret}, Error> {{",
            list(&ps)
        )
        .unwrap();
        o.push_str(&args_lines(f, "        ", "?"));
        let outs = cx.answer_c(&f.ret, "ffid_out");
        for (v, t) in &outs {
            let init = if t.starts_with('*') {
                "std::ptr::null()"
            } else {
                "Default::default()"
            };
            writeln!(o, "        let mut {v}: {t} = {init};").unwrap();
        }
        let out_args: String = outs.iter().map(|(v, _)| format!("&mut {v}, ")).collect();
        writeln!(
            o,
            "        let ffid_loaded = &{loaded};\n{pin}        // SAFETY: a handle of this library (one not live is refused), the args struct and\n        // what it points to live across the call, the out pointers are writable.\n        let ffid_rc = unsafe {{\n            (ffid_loaded.exports.{field})({ctx_arg}{args_arg}{out_args}ffid_timeout_ms(timeout))\n        }};\n        if ffid_rc != raw::FFID_RET_OK {{\n            return Err(ffid_loaded.last_error(ffid_rc));\n        }}"
        )
        .unwrap();
        let (value, block) = cx.answer_from_c(&f.ret, "ffid_out");
        match block {
            Some(b) => writeln!(
                o,
                "        // SAFETY: OK: the out values are the answer, ours: read, then freed once.\n        unsafe {{\n            let ffid_value = {value};\n            (ffid_loaded.exports.free)({b}.cast());\n            ffid_value\n        }}"
            ),
            None => writeln!(o, "        {value}"),
        }
        .unwrap();
        writeln!(o, "{ind}}}\n").unwrap();
    }
    // Future.
    if let Some(typed) = &f.typed {
        let field = ident(
            typed
                .export
                .strip_prefix(&format!("{}_", cx.lib.name))
                .unwrap_or(&typed.export),
        );
        fn_doc(
            o,
            ind,
            f,
            &format!("Asynchronous: the answer comes as a future (a refusal at once).{fallible}"),
        );
        writeln!(
            o,
            "{ind}pub fn {}_async(&self{}) -> Pending<{ret}> {{",
            f.name,
            params(cx, f)
                .iter()
                .map(|p| format!(", {p}"))
                .collect::<String>()
        )
        .unwrap();
        o.push_str(&args_lines(f, "        ", "return Pending::refused(e)"));
        writeln!(
            o,
            "        let ffid_loaded = &{loaded};\n{pin}        ffid_submit(ffid_loaded, |ffid_ud| {{\n            // SAFETY: as the blocking form; the reply gets the box `submit` made.\n            unsafe {{ (ffid_loaded.exports.{field})({ctx_arg}{args_arg}Some(ffid_reply_{}), ffid_ud) }}\n        }})\n{ind}}}\n",
            f.name
        )
        .unwrap();
    }
}

/// An inline export: answered on the calling thread before the export returns.
fn inline(o: &mut String, cx: &Cx, f: &Function) {
    let name = member_ident(&f.name, LIBRARY_MEMBERS);
    let ret = cx.owned(&f.ret);
    let field = ident(
        f.export
            .strip_prefix(&format!("{}_", cx.lib.name))
            .unwrap_or(&f.export),
    );
    fn_doc(
        o,
        "    ",
        f,
        "Inline: runs on this thread, answered before it returns.",
    );
    writeln!(
        o,
        "    pub fn {name}(&self, {}) -> Result<{ret}, Error> {{",
        list(&params(cx, f))
    )
    .unwrap();
    o.push_str(&args_lines(f, "        ", "?"));
    let args_arg = if f.args_struct.is_some() {
        ", &ffid_args"
    } else {
        ""
    };
    writeln!(
        o,
        "        let mut ffid_answer: Option<Result<{ret}, Error>> = None;\n        let ffid_ud = &mut ffid_answer as *mut Option<Result<{ret}, Error>> as *mut c_void;\n        // SAFETY: valid arguments; the callback comes before the export returns, while\n        // `ffid_answer` lives.\n        let ffid_rc = unsafe {{ (self.loaded.exports.{field})(Some(ffid_inline_{}), ffid_ud{args_arg}) }};\n        if ffid_rc != raw::FFID_RET_OK {{\n            return Err(self.loaded.last_error(ffid_rc));\n        }}\n        ffid_answer.unwrap_or_else(|| Err(Error::no_answer()))\n    }}\n",
        f.name
    )
    .unwrap();
}

fn library(o: &mut String, cx: &Cx) {
    let lib = cx.lib;
    let n = &lib.name;
    writeln!(
        o,
        "
/// The {n} library, loaded: makes contexts and serves the static methods and inline
/// exports. Cheap to clone; the file stays loaded while a clone, a context or a
/// subscription lives, and for good once a static method ran (its static context
/// lives on) or a destroy was refused (its context lives on).
#[derive(Clone)]
pub struct Library {{
    loaded: Arc<Loaded>,
}}

impl Library {{
    /// Loads the library at `path` (e.g. `lib{n}.so`) and checks that it serves this
    /// client's interface ([`INTERFACE_HASH`]).
    ///
    /// # Safety
    /// Loading runs the file's initialisers, and this client calls its exports with the
    /// types of `{n}.h`: `path` must be a build of the {n} library (an ffi-dispatch
    /// library whose interface hash matches is one).
    pub unsafe fn load(path: impl AsRef<std::ffi::OsStr>) -> Result<Library, Error> {{
        let path = path.as_ref();
        // SAFETY: the caller's promise.
        let file = unsafe {{ libloading::Library::new(path) }}
            .map_err(|e| Error::Load(format!(\"cannot load {{}}: {{e}}\", path.to_string_lossy())))?;
        // SAFETY: the caller's promise: a build of the library, so each export has the
        // header's type.
        let exports = unsafe {{ raw::Exports::resolve(&file) }}
            .map_err(|e| Error::Load(format!(\"{{}}: {{e}}\", path.to_string_lossy())))?;
        // SAFETY: takes nothing.
        let served = unsafe {{ (exports.interface_hash)() }};
        if served != INTERFACE_HASH {{
            return Err(Error::Load(format!(
                \"{{}} serves interface {{served:#018x}}, this client {{INTERFACE_HASH:#018x}}: regenerate the client from the library\",
                path.to_string_lossy()
            )));
        }}
        Ok(Library {{
            loaded: Arc::new(Loaded {{ exports, _file: file, kept: std::sync::Once::new() }}),
        }})
    }}
"
    )
    .unwrap();
    // create
    let ctor = &lib.ctor;
    let ps = params(cx, ctor);
    let names = arg_names(ctor);
    fn_doc(
        o,
        "    ",
        ctor,
        "Creates a context with the default options and waits for the constructor's outcome.",
    );
    writeln!(
        o,
        "    pub fn create(&self, {}) -> Result<Context, Error> {{\n        self.create_with_options({}None)\n    }}\n",
        list(&ps),
        names.iter().map(|a| format!("{a}, ")).collect::<String>()
    )
    .unwrap();
    doc(
        o,
        "    ",
        "Creates a context with `options` (`None`: the defaults; see [`Library::options`]) and\n\
         waits for the constructor's outcome (in completion mode draining meanwhile).",
    );
    let mut ps2 = ps.clone();
    ps2.push("options: Option<&raw::ffid_options>".into());
    writeln!(
        o,
        "    pub fn create_with_options(&self, {}) -> Result<Context, Error> {{",
        list(&ps2)
    )
    .unwrap();
    o.push_str(&args_lines(ctor, "        ", "?"));
    let cfg = if ctor.args_struct.is_some() {
        ", &ffid_args"
    } else {
        ""
    };
    let field = ident(
        ctor.export
            .strip_prefix(&format!("{n}_"))
            .unwrap_or(&ctor.export),
    );
    writeln!(
        o,
        "        let ffid_opts = options.map_or(std::ptr::null(), |o| o as *const raw::ffid_options);\n        ffid_create_context(self, options, |ffid_hash, ffid_cb, ffid_ud| {{\n            // SAFETY: a valid config, options and callback; the callback gets the box\n            // `create_context` made.\n            unsafe {{ (self.loaded.exports.{field})(ffid_hash, ffid_cb, ffid_ud{cfg}, ffid_opts) }}\n        }})\n    }}"
    )
    .unwrap();
    for f in &lib.statics {
        writeln!(o).unwrap();
        queued(o, cx, f, false);
    }
    for f in &lib.inlines {
        writeln!(o).unwrap();
        inline(o, cx, f);
    }
    writeln!(o, "}}").unwrap();
}

fn context(o: &mut String, cx: &Cx) {
    let lib = cx.lib;
    writeln!(o, "\nimpl Context {{").unwrap();
    for f in &lib.methods {
        queued(o, cx, f, true);
    }
    for e in &lib.events {
        let ty = cx.owned(&e.ty);
        let field = ident(
            e.typed
                .export
                .strip_prefix(&format!("{}_", lib.name))
                .unwrap_or(&e.typed.export),
        );
        let mut d = e.doc.trim_end().to_string();
        if !d.is_empty() {
            d.push_str("\n\n");
        }
        d.push_str(&format!(
            "Calls `listener` with each `{}` event (on the context's event thread, one call at\n\
             a time, in emission order) until the subscription is dropped.",
            e.name
        ));
        doc(o, "    ", &d);
        writeln!(
            o,
            "    pub fn listen_{}<F: FnMut({ty}) + Send + 'static>(&self, listener: F) -> Result<Subscription, Error> {{\n        let ffid_loaded = &self.lib.loaded;\n        let ffid_ud = ffid_listener_box(ffid_loaded.exports.free, listener);\n        ffid_subscribe::<F>(self, ffid_ud, |ffid_ud| {{\n            // SAFETY: our handle; the listener gets the box made for it.\n            unsafe {{ (ffid_loaded.exports.{field})(self.ctx, Some(ffid_listener_{}::<F>), ffid_ud) }}\n        }})\n    }}\n",
            e.name, e.name
        )
        .unwrap();
    }
    // Trim the blank line before the closing brace.
    while o.ends_with("\n\n") {
        o.pop();
    }
    writeln!(o, "}}").unwrap();
}

/// The args builders and the trampolines the runtime calls.
fn helpers(o: &mut String, cx: &Cx) {
    let lib = cx.lib;
    writeln!(
        o,
        "\n// ---- args builders and the functions the library calls back ----"
    )
    .unwrap();
    for f in lib.functions() {
        let Some(s) = &f.args_struct else { continue };
        let keep = if f.params.iter().any(|p| needs_keep(&p.ty)) {
            "ffid_keep"
        } else {
            "_ffid_keep"
        };
        let mut ps = params(cx, f);
        ps.push(format!("{keep}: &mut Keep"));
        writeln!(
            o,
            "\n/// `{}`'s C arguments, pointing into the parameters and `{keep}`.\nfn ffid_args_{}({}) -> Result<raw::{s}, Error> {{\n    Ok(raw::{s} {{",
            f.name,
            f.name,
            list(&ps)
        )
        .unwrap();
        for p in &f.params {
            for (field, e) in cx.to_c(&p.name, &param_ident(&p.name), &p.ty, false) {
                if e == ident(&field) {
                    writeln!(o, "        {e},").unwrap();
                } else {
                    writeln!(o, "        {}: {e},", ident(&field)).unwrap();
                }
            }
        }
        writeln!(o, "    }})\n}}").unwrap();
    }
    let queued = lib.methods.iter().chain(&lib.statics);
    for f in queued.filter(|f| f.typed.is_some()) {
        let ret = cx.owned(&f.ret);
        let values = cx.answer_c(&f.ret, "value");
        let vp: String = values.iter().map(|(v, t)| format!("{v}: {t}, ")).collect();
        let (value, block) = cx.answer_from_c(&f.ret, "value");
        let ok = match block {
            Some(b) => format!(
                "// SAFETY: OK: the values are the answer, ours: read, then freed once.\n        unsafe {{\n            let ffid_value = {value};\n            (reply.free)({b}.cast());\n            ffid_value\n        }}"
            ),
            None => value,
        };
        writeln!(
            o,
            "\n/// `{}`'s typed reply: the answer to the call's future.\nunsafe extern \"C\" fn ffid_reply_{}(ret: c_int, {vp}msg: *const c_char, ud: *mut c_void) {{\n    // SAFETY: `ud` is the box `submit` gave this call; its terminal reply comes once.\n    let Some(reply) = (unsafe {{ ffid_take_reply::<{ret}>(ret, ud) }}) else {{\n        return;\n    }};\n    let answer = if ret == raw::FFID_RET_OK {{\n        {ok}\n    }} else {{\n        // SAFETY: `msg` is the error's text, valid during this call.\n        Err(Error::from_status(ret, unsafe {{ ffid_text(msg) }}))\n    }};\n    reply.answer.complete(answer);\n}}",
            f.name, f.name
        )
        .unwrap();
    }
    for f in &lib.inlines {
        let ret = cx.owned(&f.ret);
        let value = cx.native_from_bytes(&f.ret, "ffid_msg");
        let (unsafe_fn, safety, call) = if native_reads_pointers(&f.ret) {
            (
                "unsafe ",
                "\n///\n/// # Safety\n/// The pointers in `ffid_msg` are valid (the runtime's, during its callback).",
                format!("// SAFETY: a native answer of the declared type, valid during this call.\n        unsafe {{ ffid_native_{}(ffid_msg) }}", f.name),
            )
        } else {
            ("", "", format!("ffid_native_{}(ffid_msg)", f.name))
        };
        writeln!(
            o,
            "\n/// `{}`'s native answer, read.{safety}\n{unsafe_fn}fn ffid_native_{}({msg}: &[u8]) -> Result<{ret}, Error> {{\n    {value}\n}}",
            f.name, f.name, msg = if f.ret == Type::Unit { "_ffid_msg" } else { "ffid_msg" }
        )
        .unwrap();
        writeln!(
            o,
            "\n/// `{}`'s callback: its answer into the caller's slot.\nunsafe extern \"C\" fn ffid_inline_{}(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {{\n    // SAFETY: `ud` is the caller's answer slot, alive: an inline export answers\n    // before it returns, on the caller's thread.\n    let slot = unsafe {{ &mut *(ud as *mut Option<Result<{ret}, Error>>) }};\n    // SAFETY: the runtime's `msg`: `len` bytes (the native answer), valid during this call.\n    let ffid_msg = unsafe {{ ffid_slice(msg.cast::<u8>(), len) }};\n    *slot = Some(if ret == raw::FFID_RET_OK {{\n        {call}\n    }} else {{\n        Err(Error::from_status(ret, String::from_utf8_lossy(ffid_msg).into_owned()))\n    }});\n}}",
            f.name, f.name
        )
        .unwrap();
    }
    for e in &lib.events {
        let ty = cx.owned(&e.ty);
        let values = cx.answer_c(&e.ty, "event");
        let vp: String = values.iter().map(|(v, t)| format!("{v}: {t}, ")).collect();
        let (value, block) = cx.answer_from_c(&e.ty, "event");
        let read = match block {
            Some(b) => format!(
                "// SAFETY: the event's values, ours: read, then freed once (the listener box's\n    // header is at its start).\n    let value: Result<{ty}, Error> = unsafe {{\n        let ffid_value = {value};\n        ((*ud.cast::<ListenerHeader>()).free)({b}.cast());\n        ffid_value\n    }};"
            ),
            None => format!("let value: Result<{ty}, Error> = {value};"),
        };
        writeln!(
            o,
            "\n/// `{}`'s typed listener: the event to the subscription's closure.\nunsafe extern \"C\" fn ffid_listener_{}<F: FnMut({ty}) + Send + 'static>({vp}ud: *mut c_void) {{\n    {read}\n    if let Ok(value) = value {{\n        // SAFETY: `ud` is this listener's box, live until it is removed (after which\n        // the runtime never calls this); this is the runtime's call of it.\n        unsafe {{ ffid_call_listener::<{ty}, F>(ud, value) }};\n    }}\n}}",
            e.name, e.name
        )
        .unwrap();
    }
}

/// The runtime header's part of `raw`: status codes, option values, `ffid_options` and
/// `ffid_context_stats` as `ffi_dispatch.h` declares them.
const RAW_RUNTIME: &str = r#"
    /// Accepted / terminal success.
    pub const FFID_RET_OK: c_int = 0;
    /// Refused for invalid arguments / terminal failure; msg says why.
    pub const FFID_RET_ERR: c_int = 1;
    /// Refused: the callback was NULL.
    pub const FFID_RET_MISSING_CALLBACK: c_int = 2;
    /// A non-terminal progress ping; msg = elapsed ms.
    pub const FFID_RET_STALE_WARN: c_int = 3;
    /// Refused: ring full, or a blocking call inside a callback.
    pub const FFID_RET_BUSY: c_int = 4;
    /// A blocking call's timeout passed.
    pub const FFID_RET_TIMEOUT: c_int = 5;
    /// Refused: the context is being destroyed or was destroyed.
    pub const FFID_RET_CLOSED: c_int = 6;
    /// Refused: not a context of this library.
    pub const FFID_RET_INVALID_CTX: c_int = 7;
    /// Refused: the arguments are over `FFID_MAX_REQUEST_BYTES`.
    pub const FFID_RET_TOO_LARGE: c_int = 8;
    /// `ffid_options::backpressure`: a full ring makes the caller wait (default).
    pub const FFID_BACKPRESSURE_BLOCK: u32 = 0;
    /// `ffid_options::backpressure`: a full ring refuses with `FFID_RET_BUSY`.
    pub const FFID_BACKPRESSURE_REJECT: u32 = 1;
    /// `ffid_options::wake`: futex word (default).
    pub const FFID_WAKE_FUTEX: u32 = 0;
    /// `ffid_options::wake`: Linux eventfd.
    pub const FFID_WAKE_EVENTFD: u32 = 1;
    /// `ffid_options::ring`: the tagged ring (default).
    pub const FFID_RING_TAGGED: u32 = 0;
    /// `ffid_options::ring`: crossbeam-queue's ArrayQueue, for comparison.
    pub const FFID_RING_ARRAY_QUEUE: u32 = 1;
    /// `ffid_options::event_backpressure`: a full event ring drops the new event (default).
    pub const FFID_EVENTS_DROP_NEWEST: u32 = 0;
    /// `ffid_options::event_backpressure`: a full event ring makes the emitter wait.
    pub const FFID_EVENTS_BLOCK: u32 = 1;
    /// `ffid_options::completion`: callbacks run on the context's threads (default).
    pub const FFID_COMPLETION_CALLBACK: u32 = 0;
    /// `ffid_options::completion`: callbacks queue; the host runs them with `drain`.
    pub const FFID_COMPLETION_QUEUE: u32 = 1;
    /// `ffid_options::idle_policy`: spin the bound, then park (default).
    pub const FFID_IDLE_LATENCY: u32 = 0;
    /// `ffid_options::idle_policy`: learn the gaps and nap before a periodic request.
    pub const FFID_IDLE_BALANCED: u32 = 1;
    /// `ffid_options::idle_policy`: park at once.
    pub const FFID_IDLE_POWER: u32 = 2;
    /// `ffid_options::poison_replies`: on in debug builds of the library.
    pub const FFID_POISON_DEFAULT: u32 = 0;
    /// `ffid_options::poison_replies`: on.
    pub const FFID_POISON_ON: u32 = 1;
    /// `ffid_options::poison_replies`: off.
    pub const FFID_POISON_OFF: u32 = 2;

    /// The host's callback: (ret, msg, len, user data).
    pub type ffid_callback = Option<unsafe extern "C" fn(c_int, *const c_char, usize, *mut c_void)>;
    /// A thread hook: (role, name, user data).
    pub type ffid_thread_hook = Option<unsafe extern "C" fn(c_int, *const c_char, *mut c_void)>;

    /// An opaque, generation-checked context handle.
    #[repr(C)]
    pub struct ffid_ctx {
        _opaque: [u8; 0],
    }

    /// Runtime options for a create; fill with [`super::Library::options`].
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct ffid_options {
        /// `sizeof(ffid_options)`, set by `ffid_options_init`.
        pub struct_size: u32,
        /// Requests the ring holds; default 4096.
        pub ring_capacity: u32,
        /// The idle worker busy-spins this long before parking, ns; default 50000.
        pub spin_ns: u32,
        /// `FFID_BACKPRESSURE_*`.
        pub backpressure: u32,
        /// `FFID_WAKE_*`.
        pub wake: u32,
        /// `FFID_RING_*`.
        pub ring: u32,
        /// Ping interval for running requests, ms; default 5000; 0 = off.
        pub stale_ping_ms: u32,
        /// `FFID_DIAG_NOT_RESPONDING` threshold, ms; default 10000; 0 = off.
        pub not_responding_ms: u32,
        /// `FFID_DIAG_LISTENER_STUCK` threshold, ms; default 1000; 0 = off.
        pub listener_stuck_ms: u32,
        /// Events queued at most; default 1024.
        pub event_ring_capacity: u32,
        /// `FFID_EVENTS_*`.
        pub event_backpressure: u32,
        /// Destroy waits this long for deferred replies, ms; default 5000.
        pub shutdown_timeout_ms: u32,
        /// `FFID_COMPLETION_*`.
        pub completion: u32,
        /// Must be 0.
        pub reserved: u32,
        /// `FFID_DIAG_*` reports; may be `None`.
        pub diagnostic: ffid_callback,
        /// Passed to `diagnostic`.
        pub diagnostic_user_data: *mut c_void,
        /// Runs first on each of a context's threads; may be `None`.
        pub thread_start: ffid_thread_hook,
        /// Runs last on each of a context's threads; may be `None`.
        pub thread_stop: ffid_thread_hook,
        /// Passed to both hooks.
        pub hook_user_data: *mut c_void,
        /// `FFID_IDLE_*`; default `FFID_IDLE_LATENCY`.
        pub idle_policy: u32,
        /// `FFID_IDLE_BALANCED`: the most idle spinning may cost, thousandths of a core.
        pub idle_spin_cap_permille: u32,
        /// `FFID_POISON_*`.
        pub poison_replies: u32,
        /// `FFID_POLL_*` bits: what else `<lib>_poll` hands out (completion mode).
        pub poll_kinds: u32,
    }

    /// A context's counters (see `ffid_context_stats` in `ffi_dispatch.h`).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct ffid_context_stats {
        /// `sizeof(ffid_context_stats)`, set by the host.
        pub struct_size: u32,
        /// Reserved.
        pub reserved: u32,
        /// Calls accepted onto the ring.
        pub accepted: u64,
        /// Terminal callbacks delivered.
        pub completed: u64,
        /// Calls this live context refused.
        pub refused: u64,
        /// Requests queued now.
        pub queue_depth: u64,
        /// Deepest queue the worker has seen.
        pub high_water: u64,
        /// Producer wakes of the parked worker.
        pub wakeups: u64,
        /// Idle spins that found work before parking.
        pub spin_hits: u64,
        /// Times the worker parked.
        pub parks: u64,
        /// Handlers that panicked.
        pub panics: u64,
        /// Deferred replies not yet answered.
        pub deferred_pending: u64,
        /// Requests answered "cancelled".
        pub cancelled: u64,
        /// `FFID_RET_STALE_WARN` pings delivered.
        pub stale_pings: u64,
        /// Events queued for the event thread.
        pub events_emitted: u64,
        /// Events dropped on a full event ring.
        pub events_dropped: u64,
        /// Listener calls made.
        pub events_delivered: u64,
        /// Time the idle worker spun for work, ns.
        pub idle_spin_ns: u64,
        /// Sleeps a request ended within 1 ms.
        pub avoidable_wakes: u64,
    }

    /// `ffid_entry::kind`: a call's terminal answer.
    pub const FFID_ENTRY_ANSWER: u32 = 1;
    /// `ffid_entry::kind`: a progress ping.
    pub const FFID_ENTRY_PING: u32 = 2;
    /// `ffid_entry::kind`: destroy began; the last entry.
    pub const FFID_ENTRY_CLOSED: u32 = 3;
    /// `ffid_entry::kind`: an event (`FFID_POLL_EVENTS`).
    pub const FFID_ENTRY_EVENT: u32 = 4;
    /// `ffid_entry::kind`: a diagnostic report (`FFID_POLL_DIAGNOSTICS`).
    pub const FFID_ENTRY_DIAGNOSTIC: u32 = 5;
    /// `ffid_options::poll_kinds`: events come through `<lib>_poll`, not listeners.
    pub const FFID_POLL_EVENTS: u32 = 1;
    /// `ffid_options::poll_kinds`: diagnostics come through `<lib>_poll`.
    pub const FFID_POLL_DIAGNOSTICS: u32 = 2;

    /// One entry of `<lib>_poll` (see POLL in `ffi_dispatch.h`).
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct ffid_entry {
        /// The first entry's: `sizeof(ffid_entry)`, set by the host; each: bytes written.
        pub struct_size: u32,
        /// `FFID_ENTRY_*`.
        pub kind: u32,
        /// The call's id; 0 for the create's outcome.
        pub request_id: u64,
        /// `FFID_RET_*` of the answer, `FFID_RET_STALE_WARN` for a ping.
        pub status: c_int,
        /// Zero.
        pub reserved: u32,
        /// The callback the call was made with (poll never calls it).
        pub cb: ffid_callback,
        /// The call's `user_data`.
        pub user_data: *mut c_void,
        /// `len` bytes and a NUL, lent until the context's next poll.
        pub payload: *const u8,
        /// Bytes at `payload`, the NUL not counted.
        pub len: usize,
    }
"#;

#[cfg(test)]
mod tests {
    use super::RAW_RUNTIME;

    /// The fields of C struct `name` in `header`, in order.
    fn c_struct_fields(header: &str, name: &str) -> Vec<String> {
        let start = header
            .find(&format!("typedef struct {name} {{"))
            .expect("the struct");
        let body = &header[start..header[start..].find(&format!("}} {name};")).unwrap() + start];
        body.lines()
            .skip(1)
            .filter_map(|l| {
                let decl = l.split("/*").next()?.trim();
                let decl = decl.strip_suffix(';')?;
                Some(decl.rsplit([' ', '*']).next()?.to_string())
            })
            .collect()
    }

    /// The fields of Rust struct `name` in `RAW_RUNTIME`, in order.
    fn rust_struct_fields(name: &str) -> Vec<String> {
        let start = RAW_RUNTIME
            .find(&format!("pub struct {name} {{"))
            .expect("the struct");
        let rest = &RAW_RUNTIME[start..];
        let body = &rest[..rest.find("\n    }").unwrap()];
        body.lines()
            .skip(1)
            .filter_map(|l| l.trim().strip_prefix("pub ")?.split(':').next())
            .map(String::from)
            .collect()
    }

    #[test]
    fn the_runtime_mirrors_match_ffi_dispatch_h() {
        let header = include_str!("../../include/ffi_dispatch.h");
        for name in ["ffid_options", "ffid_context_stats", "ffid_entry"] {
            let c = c_struct_fields(header, name);
            assert!(c.len() > 5, "{name}: {c:?}");
            assert_eq!(rust_struct_fields(name), c, "{name}");
        }
    }
}
