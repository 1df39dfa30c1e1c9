//! What both renderers say about a type: its C spelling and its one-line notation.

use ffi_dispatch_schema::model::Type;

pub(crate) fn scalar_c(t: &Type) -> Option<&'static str> {
    Some(match t {
        Type::Bool => "bool",
        Type::U8 => "uint8_t",
        Type::U16 => "uint16_t",
        Type::U32 => "uint32_t",
        Type::U64 => "uint64_t",
        Type::I8 => "int8_t",
        Type::I16 => "int16_t",
        Type::I32 => "int32_t",
        Type::I64 => "int64_t",
        Type::F32 => "float",
        Type::F64 => "double",
        _ => return None,
    })
}

/// The one-line type of a slot, in the notation of the docs (`str`, `[Entry]`, `u32?`).
pub(crate) fn notation(t: &Type) -> String {
    match t {
        Type::Unit => "()".into(),
        Type::Bool => "bool".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::Str => "str".into(),
        Type::Bytes => "bytes".into(),
        Type::Option(inner) => format!("{}?", notation(inner)),
        Type::Vec(inner) => format!("[{}]", notation(inner)),
        Type::Record(c) | Type::Enum(c) => c.clone(),
        s => scalar_c(s)
            .unwrap_or_default()
            .trim_end_matches("_t")
            .replace("uint", "u")
            .replace("int", "i"),
    }
}
