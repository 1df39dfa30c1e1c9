//! Naming shared by the renderers: the C names of types, their one-line notation, and
//! the records and enums a library reaches.

use ffi_dispatch_schema::{LibraryDesc, Ty};

// ---- naming -----------------------------------------------------------------------------

pub(crate) fn scalar_c(t: Ty) -> Option<&'static str> {
    Some(match t {
        Ty::Bool => "bool",
        Ty::U8 => "uint8_t",
        Ty::U16 => "uint16_t",
        Ty::U32 => "uint32_t",
        Ty::U64 => "uint64_t",
        Ty::I8 => "int8_t",
        Ty::I16 => "int16_t",
        Ty::I32 => "int32_t",
        Ty::I64 => "int64_t",
        Ty::F32 => "float",
        Ty::F64 => "double",
        _ => return None,
    })
}

/// The C name of a record or enum: the library's type prefix, then the Rust name
/// (unless it already starts with the prefix).
pub(crate) fn c_type(lib: &LibraryDesc, rust: &str) -> String {
    let p = lib.type_prefix;
    if rust.len() > p.len()
        && rust.starts_with(p)
        && rust[p.len()..].starts_with(|c: char| c.is_ascii_uppercase())
    {
        rust.to_string()
    } else {
        format!("{p}{rust}")
    }
}

/// `KvKind` -> `KV_KIND`, `ScalarCheck` -> `SCALAR_CHECK`, `name` -> `NAME`.
pub(crate) fn screaming(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !out.ends_with('_') {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The one-line type of a slot, in the notation of the docs (`str`, `[Entry]`, `u32?`).
pub(crate) fn notation(lib: &LibraryDesc, t: Ty) -> String {
    match t {
        Ty::Unit => "()".into(),
        Ty::Str => "str".into(),
        Ty::Bytes => "bytes".into(),
        Ty::Option(inner) => format!("{}?", notation(lib, inner())),
        Ty::Vec(inner) => format!("[{}]", notation(lib, inner())),
        Ty::Record(r) => c_type(lib, r.name),
        Ty::Enum(e) => c_type(lib, e.name),
        s => scalar_c(s)
            .map(|c| match c {
                "double" => "f64".into(),
                "float" => "f32".into(),
                "bool" => "bool".into(),
                c => c
                    .trim_end_matches("_t")
                    .replace("uint", "u")
                    .replace("int", "i"),
            })
            .unwrap_or_default(),
    }
}

/// Records and enums reachable from the library, each after the types it contains.
pub(crate) fn named_types(lib: &LibraryDesc) -> Vec<Ty> {
    fn visit(t: Ty, out: &mut Vec<Ty>, seen: &mut Vec<&'static str>) {
        match t {
            Ty::Option(i) | Ty::Vec(i) => visit(i(), out, seen),
            Ty::Record(r) if !seen.contains(&r.name) => {
                seen.push(r.name);
                for f in r.fields {
                    visit((f.ty)(), out, seen);
                }
                out.push(t);
            }
            Ty::Enum(e) if !seen.contains(&e.name) => {
                seen.push(e.name);
                out.push(t);
            }
            _ => {}
        }
    }
    let (mut out, mut seen) = (Vec::new(), Vec::new());
    let all = std::iter::once(&lib.ctor)
        .chain(lib.methods)
        .chain(lib.statics);
    for f in all {
        for p in f.params {
            visit((p.ty)(), &mut out, &mut seen);
        }
        visit((f.ret)(), &mut out, &mut seen);
    }
    for e in lib.events {
        visit((e.ty)(), &mut out, &mut seen);
    }
    out
}
