//! The C header renderer: `<name>.h`, with a native and a CBOR export per method.

use std::fmt::Write;

use ffi_dispatch_schema::model::{Field, Function, Library, Type, TypeDef, Value};
use ffi_dispatch_schema::CShape;

use crate::naming::{notation, scalar_c};

// ---- C header ------------------------------------------------------------------------------

/// The C type of one element of a `Vec<T>` (or of a one-field C form).
fn elem_c(t: &Type) -> String {
    match t {
        Type::Str => "const char*".into(),
        Type::Record(c) | Type::Enum(c) => c.clone(),
        s => scalar_c(s).unwrap_or("void").into(),
    }
}

/// A read-only pointer to elements of `t`: `const T*`, or `const char* const*` for text.
fn elem_ptr(t: &Type) -> String {
    match t {
        Type::Str => "const char* const*".into(),
        t => format!("const {}*", elem_c(t)),
    }
}

/// The C declaration(s) of one slot, in the shape [`Type::c_shape`] gives it (the table
/// at `schema::CShape`), each with what it holds.
fn c_fields(name: &str, t: &Type) -> Vec<(String, String)> {
    let (value, absent) = match t {
        Type::Option(inner) => (&**inner, true),
        t => (t, false),
    };
    match t.c_shape() {
        CShape::Pair => {
            let (ptr, what) = match value {
                Type::Vec(e) => (elem_ptr(e), "elements"),
                _ => ("const uint8_t*".to_string(), "bytes"),
            };
            let doc = if absent {
                format!("NULL = absent, else {name}_len {what}")
            } else {
                format!("{name}_len {what}; may be NULL when {name}_len == 0")
            };
            vec![
                (format!("{ptr} {name}"), doc),
                (format!("size_t {name}_len"), format!("length of {name}")),
            ]
        }
        CShape::Flag => vec![
            (
                format!("bool has_{name}"),
                format!("false: {name} is absent"),
            ),
            (
                format!("{} {name}", scalar_c(value).unwrap_or("void")),
                String::new(),
            ),
        ],
        CShape::Single => {
            let (decl, doc) = match value {
                Type::Str if absent => (
                    "const char*".to_string(),
                    "NULL = absent, else NUL-terminated UTF-8".to_string(),
                ),
                Type::Str => (
                    "const char*".to_string(),
                    "NUL-terminated UTF-8, not NULL".to_string(),
                ),
                other if absent => (elem_ptr(other), "NULL = absent".to_string()),
                Type::Record(c) => (c.clone(), String::new()),
                Type::Enum(c) => (c.clone(), format!("one of the {c} values")),
                s => (scalar_c(s).unwrap_or("void").to_string(), String::new()),
            };
            vec![(format!("{decl} {name}"), doc)]
        }
    }
}

/// How a native answer of type `t` arrives in the callback.
fn native_answer(t: &Type) -> String {
    match t {
        Type::Unit => "no value (len == 0)".into(),
        Type::Bool => "1 byte, 0 or 1".into(),
        Type::Str => "UTF-8 text, len bytes (msg is NUL-terminated)".into(),
        Type::Bytes => "the bytes (len of them)".into(),
        Type::Record(c) => {
            format!("msg points to a {c} (len == sizeof({c})), valid during the callback")
        }
        Type::Enum(c) => format!("an int32_t {c} value, native-endian"),
        Type::Vec(inner) => format!(
            "msg points to an array of {0} (len == count * sizeof({0})), valid during the callback",
            elem_c(inner)
        ),
        Type::Option(inner) => format!("len == 0 when absent, else {}", native_answer(inner)),
        s => format!(
            "{} in native byte order (len == {})",
            scalar_c(s).unwrap_or("?"),
            c_size(s)
        ),
    }
}

fn c_size(t: &Type) -> usize {
    match t {
        Type::Bool | Type::U8 | Type::I8 => 1,
        Type::U16 | Type::I16 => 2,
        Type::U32 | Type::I32 | Type::F32 => 4,
        _ => 8,
    }
}

/// Text for inside a C comment: a `*/` in it would end the comment.
fn in_comment(text: &str) -> String {
    text.replace("*/", "*\\/")
}

fn comment(out: &mut String, indent: &str, text: &str) {
    let text = in_comment(text);
    let lines: Vec<&str> = text.lines().collect();
    match lines.as_slice() {
        [] => {}
        [one] => writeln!(out, "{indent}/* {one} */").unwrap(),
        many => {
            writeln!(out, "{indent}/*").unwrap();
            for l in many {
                writeln!(out, "{indent} * {l}").unwrap();
            }
            writeln!(out, "{indent} */").unwrap();
        }
    }
}

fn struct_def(out: &mut String, name: &str, fields: &[Field]) {
    writeln!(out, "typedef struct {name} {{").unwrap();
    for f in fields {
        let decls = c_fields(&f.name, &f.ty);
        // The doc goes on the slot's value field: the second of `has_x; x`, else the first.
        let value_at = usize::from(f.ty.c_shape() == CShape::Flag);
        for (i, (decl, note)) in decls.into_iter().enumerate() {
            let doc = if i == value_at {
                f.doc.lines().next().map(in_comment)
            } else {
                None
            };
            let note = match (doc, note.is_empty()) {
                (Some(d), true) => d.to_string(),
                (Some(d), false) => format!("{d} ({note})"),
                (None, _) => note,
            };
            if note.is_empty() {
                writeln!(out, "    {decl};").unwrap();
            } else {
                writeln!(out, "    {decl}; /* {note} */").unwrap();
            }
        }
    }
    writeln!(out, "}} {name};").unwrap();
}

fn signature(f: &Function, ctor: bool) -> String {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, notation(&p.ty)))
        .collect();
    let ret = match (ctor, f.fallible) {
        (true, true) => " -> context or error".to_string(),
        (true, false) => String::new(),
        (false, true) => format!(" -> {} or error", notation(&f.ret)),
        (false, false) => format!(" -> {}", notation(&f.ret)),
    };
    format!("{}({}){ret}", f.name, params.join(", "))
}

/// A constant's C value: integers through `<stdint.h>`'s `UINT32_C(..)` and kin, which
/// give the declared width and stay usable in `#if`.
fn c_value(ty: &Type, v: &Value) -> String {
    let width = scalar_c(ty)
        .unwrap_or("int64_t")
        .trim_end_matches("_t")
        .to_ascii_uppercase();
    match v {
        Value::Unsigned(u) => format!("{width}_C({u})"),
        Value::Signed(i) if *i == i64::MIN => "(-INT64_C(9223372036854775807) - 1)".into(),
        Value::Signed(i) if *i < 0 => format!("(-{width}_C({}))", i.unsigned_abs()),
        Value::Signed(i) => format!("{width}_C({i})"),
        Value::Float(f) if ty == &Type::F32 => format!("{:?}f", *f as f32),
        Value::Float(f) => format!("{f:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Str(s) => c_string(s),
    }
}

/// A C string literal of `s`: printable ASCII as it is, everything else as octal
/// escapes (which, unlike `\x`, end after three digits).
fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            // `??` could start a trigraph in old compilers.
            b'?' => out.push_str("\\?"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

/// Renders the library's C header, `<name>.h`. It includes `ffi_dispatch.h`, the
/// runtime's header ([`runtime_header`]), which ships beside it.
pub fn header(lib: &Library) -> String {
    let mut o = String::new();
    let guard = lib.macro_name("H");
    let n = &lib.name;
    writeln!(o, "/*").unwrap();
    writeln!(
        o,
        " * {n}.h - generated by ffi-dispatch-bindgen from the built library (ffi-dispatch {}).\n \
         * Do not edit; regenerate it with ffi-dispatch-bindgen.",
        lib.runtime_version
    )
    .unwrap();
    if !lib.doc.is_empty() {
        writeln!(o, " *").unwrap();
        for l in in_comment(&lib.doc).lines() {
            writeln!(o, " * {l}").unwrap();
        }
    }
    o.push_str(&format!(
        " *
 * Every method has a native export (arguments in a struct passed by pointer) and a CBOR
 * export (arguments as a CBOR map keyed by parameter name; schema in {n}.cddl); methods
 * and static methods also a blocking form (_sync: the answer in out parameters, owned
 * by the caller) and a typed form (_async: a typed reply callback gets the answer as C
 * values, owned by the host). The rules of ffi_dispatch.h apply to all of them:
 * FFID_RET_OK = accepted, exactly one terminal callback follows (an inline export's has
 * come before it returns); anything else = refused, no callback. C++ hosts: {n}.hpp.
 *
 * Pointers: every pointer passed in (args structs, the text, bytes and arrays they point
 * to, CBOR buffers) is borrowed for the duration of the call only: the runtime copies
 * what it needs before the call returns, and never writes through it. Every pointer in an
 * answer (msg, and whatever a record or array in it points to) is owned by the runtime
 * and valid only until the callback returns: copy what you keep. ffid_ctx handles are
 * owned by the host from create until destroy returns.
 *
 * Native answers are raw bytes as each method says; CBOR answers are the CBOR encoding
 * of the value (no value is 0xf6). An error answer (FFID_RET_ERR) is a text message.
 */
#ifndef {guard}
#define {guard}

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include \"ffi_dispatch.h\"

#ifdef __cplusplus
extern \"C\" {{
#endif
"
    ));
    writeln!(
        o,
        "\n/* The interface this header describes. Create passes it to the library, which\n \
         * refuses (NULL; ffid_last_error says why) when it serves another interface: a header\n \
         * from another version of the library. */\n#define {} UINT64_C({:#018x})",
        lib.macro_name("INTERFACE_HASH"),
        lib.interface_hash
    )
    .unwrap();
    constants_section(&mut o, lib);
    types_section(&mut o, lib);
    context_section(&mut o, lib);
    let sections = [
        ("methods", &lib.methods, "ffid_ctx* ctx, "),
        ("static methods (no context)", &lib.statics, ""),
        (
            "inline exports (no context; run on the calling thread, which the callback is\n   called on before the export returns)",
            &lib.inlines,
            "",
        ),
    ];
    for (title, fns, ctx) in sections {
        if fns.is_empty() {
            continue;
        }
        writeln!(o, "\n/* ---- {title} ---- */").unwrap();
        for f in fns {
            function(&mut o, &lib.name, f, ctx);
        }
    }
    runtime_section(&mut o, lib);
    writeln!(
        o,
        "\n#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {guard} */"
    )
    .unwrap();
    o
}

/// The runtime's header, `ffi_dispatch.h`, of the runtime the library was built with:
/// the library's header includes it, so it ships beside that header.
pub fn runtime_header(lib: &Library) -> &str {
    &lib.runtime_header
}

fn constants_section(o: &mut String, lib: &Library) {
    if lib.constants.is_empty() {
        return;
    }
    writeln!(o, "\n/* ---- constants ---- */\n").unwrap();
    for c in &lib.constants {
        let value = c_value(&c.ty, &c.value);
        match c.doc.lines().next().map(in_comment) {
            Some(d) => writeln!(o, "#define {} {value} /* {d} */", c.c_name).unwrap(),
            None => writeln!(o, "#define {} {value}", c.c_name).unwrap(),
        }
    }
}

fn types_section(o: &mut String, lib: &Library) {
    if lib.types.is_empty() {
        return;
    }
    writeln!(o, "\n/* ---- types ---- */").unwrap();
    for t in &lib.types {
        writeln!(o).unwrap();
        match t {
            TypeDef::Enum(e) => {
                comment(o, "", &e.doc);
                writeln!(o, "typedef int32_t {};", e.c_name).unwrap();
                writeln!(o, "enum {{").unwrap();
                for v in &e.variants {
                    match v.doc.lines().next().map(in_comment) {
                        Some(d) => writeln!(o, "    {} = {}, /* {d} */", v.c_name, v.value),
                        None => writeln!(o, "    {} = {},", v.c_name, v.value),
                    }
                    .unwrap();
                }
                writeln!(o, "}};").unwrap();
            }
            TypeDef::Record(r) => {
                comment(o, "", &r.doc);
                struct_def(o, &r.c_name, &r.fields);
            }
        }
    }
}

fn context_section(o: &mut String, lib: &Library) {
    let n = &lib.name;
    let hash = lib.macro_name("INTERFACE_HASH");
    writeln!(o, "\n/* ---- context ---- */\n").unwrap();
    let ctor = &lib.ctor;
    let (create, create_cbor) = (&ctor.export, &ctor.cbor_export);
    let mut doc = ctor.doc.clone();
    if !doc.is_empty() {
        doc.push('\n');
    }
    doc.push_str(&signature(ctor, true));
    doc.push_str(
        &format!("\nReturns NULL, with no callback, when cb is NULL, an argument is invalid (NULL\n\
         pointer, text not UTF-8, an unknown enum value, malformed CBOR), the options are\n\
         invalid, the library serves another interface than this header's or no worker could\n\
         be started; {n}_last_error() then says why. Otherwise cb reports the constructor's outcome (FFID_RET_OK with no\n\
         value, or FFID_RET_ERR) on the context's worker thread. opts may be NULL for the\n\
         defaults; it is read during the call only."),
    );
    comment(o, "", &doc);
    let (cfg_param, cfg_arg) = match &ctor.args_struct {
        Some(s) => {
            struct_def(o, s, &ctor.params);
            (format!(", const {s}* cfg"), ", cfg")
        }
        None => (String::new(), ""),
    };
    writeln!(
        o,
        "ffid_ctx* {create}(uint64_t interface_hash, ffid_callback cb, void* user_data{cfg_param},\n    const ffid_options* opts);"
    )
    .unwrap();
    writeln!(
        o,
        "ffid_ctx* {create_cbor}(uint64_t interface_hash, ffid_callback cb, void* user_data,\n    const uint8_t* req, size_t len, const ffid_options* opts);"
    )
    .unwrap();
    let wrappers = [
        (
            format!("{n}_create(ffid_callback cb, void* user_data{cfg_param})"),
            format!("{create}({hash}, cb, user_data{cfg_arg}, NULL)"),
        ),
        (
            format!("{n}_create_with_options(ffid_callback cb, void* user_data{cfg_param},\n    const ffid_options* opts)"),
            format!("{create}({hash}, cb, user_data{cfg_arg}, opts)"),
        ),
        (
            format!("{n}_create_cbor(ffid_callback cb, void* user_data, const uint8_t* req, size_t len)"),
            format!("{create_cbor}({hash}, cb, user_data, req, len, NULL)"),
        ),
        (
            format!("{n}_create_cbor_with_options(ffid_callback cb, void* user_data,\n    const uint8_t* req, size_t len, const ffid_options* opts)"),
            format!("{create_cbor}({hash}, cb, user_data, req, len, opts)"),
        ),
    ];
    for (decl, call) in wrappers {
        writeln!(
            o,
            "static inline ffid_ctx* {decl} {{\n    return {call};\n}}"
        )
        .unwrap();
    }
    writeln!(
        o,
        "\n/* Synchronous: answers every accepted call, then frees the context. FFID_RET_OK, or\n \
         * refused: FFID_RET_CLOSED for a context destroyed or being destroyed, FFID_RET_INVALID_CTX\n \
         * for a handle that is not one of this library's, FFID_RET_BUSY inside a callback. */"
    )
    .unwrap();
    writeln!(o, "int {n}_destroy(ffid_ctx* ctx);").unwrap();
}

fn function(o: &mut String, n: &str, f: &Function, ctx: &str) {
    writeln!(o).unwrap();
    let mut doc = f.doc.clone();
    if !doc.is_empty() {
        doc.push('\n');
    }
    doc.push_str(&signature(f, false));
    doc.push_str(&format!("\nNative answer: {}.", native_answer(&f.ret)));
    if f.fallible {
        doc.push_str("\nMay answer FFID_RET_ERR with a message.");
    }
    if f.asynchronous {
        doc.push_str(
            "\nAsync: runs on the worker between other requests and answers when it\n\
             completes; destroy gives it shutdown_timeout_ms, then answers FFID_RET_ERR.",
        );
    } else if f.deferred {
        doc.push_str(
            "\nDeferred: answered later, possibly on another thread; FFID_RET_ERR\n\
             \"reply dropped\" if the library drops the reply unanswered.",
        );
    }
    comment(o, "", &doc);
    let args = match &f.args_struct {
        Some(s) => {
            struct_def(o, s, &f.params);
            format!(", const {s}* args")
        }
        None => String::new(),
    };
    writeln!(
        o,
        "int {}({ctx}ffid_callback cb, void* user_data{args});",
        f.export
    )
    .unwrap();
    writeln!(
        o,
        "int {}({ctx}ffid_callback cb, void* user_data, const uint8_t* req, size_t len);",
        f.cbor_export
    )
    .unwrap();
    if let Some(sync) = &f.sync_export {
        let (outs, how) = sync_outs(&f.ret);
        let doc = format!(
            "Blocking form: waits up to timeout_ms (0: no limit) on this thread (a spin of a few \
             microseconds, then asleep). FFID_RET_OK: {how}. FFID_RET_ERR: the method's error, \
             or a refusal (also in completion mode); FFID_RET_TIMEOUT: the call goes on and its \
             answer is dropped; FFID_RET_BUSY: inside a callback, or a full ring that rejects. \
             {n}_last_error() says why. A NULL out pointer drops what it would get."
        );
        comment(o, "", &wrap(&doc, 86));
        let args = match &f.args_struct {
            Some(s) => format!("const {s}* args, "),
            None => String::new(),
        };
        let outs: String = outs.iter().map(|o| format!("{o}, ")).collect();
        let ctx = ctx.trim_end_matches(' ');
        let ctx = if ctx.is_empty() {
            String::new()
        } else {
            format!("{ctx} ")
        };
        writeln!(o, "int {sync}({ctx}{args}{outs}uint32_t timeout_ms);").unwrap();
    }
    if let Some(typed) = &f.typed {
        let (outs, how) = sync_outs(&f.ret);
        let how = how
            .replace("*out_len", "value_len")
            .replace("*has_out", "has_value")
            .replace("*out", "value");
        let doc = format!(
            "Typed form: accepted or refused as {export}; reply then gets ret and the answer's \
             values. FFID_RET_OK: {how}; msg is NULL. FFID_RET_ERR: the values are zero or NULL, \
             msg the error (valid during the call). FFID_RET_STALE_WARN: a progress ping, msg \
             the elapsed milliseconds. Called where cb would be.",
            export = f.export
        );
        comment(o, "", &wrap(&doc, 86));
        let t = &typed.callback;
        let values = typed_values(&outs, "value");
        writeln!(
            o,
            "typedef void (*{t})(int ret, {values}const char* msg, void* user_data);"
        )
        .unwrap();
        let args = match &f.args_struct {
            Some(s) => format!("const {s}* args, "),
            None => String::new(),
        };
        writeln!(
            o,
            "int {}({ctx}{args}{t} reply, void* user_data);",
            typed.export
        )
        .unwrap();
    }
}

/// A typed callback's value parameters (each followed by `, `): the pointees of a
/// blocking form's out parameters, `out` renamed `name`.
fn typed_values(outs: &[String], name: &str) -> String {
    outs.iter()
        .map(|o| {
            let (ty, param) = o.rsplit_once(' ').unwrap_or((o, ""));
            let ty = ty.strip_suffix('*').unwrap_or(ty);
            format!("{ty} {}, ", param.replace("out", name))
        })
        .collect()
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}

/// The out parameters of a blocking form for an answer of type `t`, and what they hold.
fn sync_outs(t: &Type) -> (Vec<String>, String) {
    const OWNED: &str = "owned by the caller: free it with ffid_free";
    let value = |c: &str| (vec![format!("{c}* out")], "*out is the answer".to_string());
    let owned = |c: &str, what: &str| {
        (
            vec![format!("const {c}** out")],
            format!("*out is {what}, {OWNED}"),
        )
    };
    let pair = |ptr: String, what: &str| {
        (
            vec![format!("{ptr}* out"), "size_t* out_len".to_string()],
            format!("*out holds *out_len {what}, {OWNED}"),
        )
    };
    match t {
        Type::Unit => (Vec::new(), "no value".into()),
        Type::Str => owned("char", "the NUL-terminated UTF-8 text"),
        Type::Bytes => pair("const uint8_t*".into(), "bytes"),
        Type::Record(c) => owned(c, &format!("a {c}, with everything it points to")),
        Type::Enum(c) => value(c),
        Type::Vec(e) => pair(elem_ptr(e), "elements (and what they point to)"),
        Type::Option(inner) => match &**inner {
            s if s.is_scalar() => (
                vec![
                    "bool* has_out".to_string(),
                    format!("{}* out", scalar_c(s).unwrap_or("void")),
                ],
                "*has_out says whether there is a value, *out is it (0 when none)".into(),
            ),
            Type::Enum(c) => owned(c, "NULL for none, else the value"),
            Type::Record(c) => owned(c, &format!("NULL for none, else a {c}")),
            Type::Str => owned("char", "NULL for none (or empty text), else the text"),
            Type::Bytes => pair(
                "const uint8_t*".into(),
                "bytes (NULL for none or none at all)",
            ),
            Type::Vec(e) => pair(elem_ptr(e), "elements (NULL for none or none at all)"),
            other => value(scalar_c(other).unwrap_or("void")),
        },
        s => value(scalar_c(s).unwrap_or("void")),
    }
}

/// The per-library runtime functions and the event listeners.
fn runtime_section(o: &mut String, lib: &Library) {
    let n = &lib.name;
    writeln!(o, "\n/* ---- runtime ---- */\n").unwrap();
    comment(
        o,
        "",
        "Copies the context's counters into *out (see ffid_context_stats in ffi_dispatch.h);\n\
         set out->struct_size = sizeof(ffid_context_stats) first. FFID_RET_OK; FFID_RET_ERR for\n\
         a NULL out; FFID_RET_CLOSED or FFID_RET_INVALID_CTX for a handle that is not live.",
    );
    writeln!(o, "int {n}_stats(ffid_ctx* ctx, ffid_context_stats* out);").unwrap();
    comment(
        o,
        "",
        &format!(
            "The id of the last call this thread had accepted (0 if none). Read it right after\n\
             an FFID_RET_OK return to name that request in {n}_cancel."
        ),
    );
    writeln!(o, "uint64_t {n}_last_request_id(void);").unwrap();
    comment(
        o,
        "",
        "Why this thread's last call of this library was refused (any non-zero return), its\n\
         last create returned NULL or its last blocking call failed (see LAST ERROR in\n\
         ffi_dispatch.h): ffid_last_error() of this library's runtime. Owned by the runtime;\n\
         stays until this thread's next refusal, create or blocking call. Never NULL.",
    );
    writeln!(o, "const char* {n}_last_error(void);").unwrap();
    comment(
        o,
        "",
        "Frees an answer a blocking call (<lib>_<m>_sync) of this library handed out: text,\n\
         bytes, a record or an array, one block each. NULL is ignored. ffid_free() of this\n\
         library's runtime.",
    );
    writeln!(o, "void {n}_free(const void* answer);").unwrap();
    comment(
        o,
        "",
        "Cancels a request the worker has not started: it is answered FFID_RET_ERR\n\
         \"cancelled\" (when the worker reaches it) and its method never runs; returns\n\
         FFID_RET_OK. FFID_RET_ERR, changing nothing, when it has started or finished or the id\n\
         is unknown; FFID_RET_CLOSED or FFID_RET_INVALID_CTX for a handle that is not live.",
    );
    writeln!(o, "int {n}_cancel(ffid_ctx* ctx, uint64_t request_id);").unwrap();
    comment(
        o,
        "",
        "Completion mode (ffid_options.completion = FFID_COMPLETION_QUEUE): runs up to max\n\
         queued callbacks on the calling thread and returns how many ran (0 if another\n\
         thread is draining), or -1 for a handle that is not live or not in that mode\n\
         (<lib>_last_error() says which).",
    );
    writeln!(o, "int {n}_drain(ffid_ctx* ctx, uint32_t max);").unwrap();
    comment(
        o,
        "",
        "Completion mode: an eventfd, readable while completions wait (poll it, then drain).\n\
         Owned by the context and closed by destroy; -1 when not in that mode.",
    );
    writeln!(o, "int {n}_completion_fd(ffid_ctx* ctx);").unwrap();
    comment(
        o,
        "",
        "Completion mode, for an event loop: hands up to max queued answers and pings (and\n\
         events and diagnostics, as ffid_options.poll_kinds asks) to the host as entries\n\
         (see POLL in ffi_dispatch.h): entries[0].struct_size =\n\
         sizeof(ffid_entry) first; each entry's payload is lent until this context's next\n\
         poll. Waits up to timeout_ms (negative: no limit; never inside a callback) when\n\
         there is nothing yet. Returns how many entries it wrote (0: the timeout passed),\n\
         or a refusal as a negative status: -FFID_RET_BUSY when another thread polls or\n\
         drains; <lib>_last_error() says why.",
    );
    writeln!(
        o,
        "int {n}_poll(ffid_ctx* ctx, ffid_entry* entries, uint32_t max, int32_t timeout_ms);"
    )
    .unwrap();
    comment(
        o,
        "",
        "Completion mode: a fresh duplicate of the context's eventfd (close-on-exec), readable\n\
         while entries wait: the caller owns it and closes it (any time; destroy does not).\n\
         Poll it, never read it. A negative status when refused.",
    );
    writeln!(o, "int {n}_poll_fd(ffid_ctx* ctx);").unwrap();
    comment(
        o,
        "",
        &format!(
            "The interface hash of the library as built (what create compares with\n\
             {}).",
            lib.macro_name("INTERFACE_HASH")
        ),
    );
    writeln!(o, "uint64_t {n}_interface_hash(void);").unwrap();
    comment(
        o,
        "",
        "The library's description (what ffi-dispatch-bindgen reads): *len bytes of CBOR at\n\
         the returned address, owned by the library and valid until it is unloaded. NULL\n\
         when len is NULL.",
    );
    writeln!(o, "const uint8_t* {n}_ffid_describe(size_t* len);").unwrap();
    if lib.events.is_empty() {
        return;
    }
    writeln!(o, "\n/* ---- events ---- */").unwrap();
    comment(
        o,
        "",
        "Listeners run on the context's event thread, one call at a time, in emission\n\
         order, with ret = FFID_RET_OK and msg/len the event (valid during the call, msg[len]\n\
         == 0). Each add returns a listener id, or 0 when refused (NULL cb, handle not live).\n\
         A listener may add and remove listeners, itself included, from its callback.",
    );
    for e in &lib.events {
        writeln!(o).unwrap();
        let mut doc = e.doc.clone();
        if !doc.is_empty() {
            doc.push('\n');
        }
        doc.push_str(&format!(
            "Event {}: {}. Native listener: {}.",
            e.name,
            notation(&e.ty),
            native_answer(&e.ty)
        ));
        comment(o, "", &doc);
        writeln!(
            o,
            "uint64_t {}(ffid_ctx* ctx, ffid_callback cb, void* user_data);",
            e.listener
        )
        .unwrap();
        writeln!(
            o,
            "uint64_t {}(ffid_ctx* ctx, ffid_callback cb, void* user_data);",
            e.cbor_listener
        )
        .unwrap();
        let (outs, how) = sync_outs(&e.ty);
        comment(
            o,
            "",
            &wrap(
                &format!(
                    "Typed listener: called on the event thread with the event's values: {}. A NULL \
                     listener is refused (0); an event the library fails to encode is not \
                     delivered to it.",
                    how.replace("*out_len", "event_len").replace("*has_out", "has_event").replace("*out", "event")
                ),
                86,
            ),
        );
        let t = &e.typed.callback;
        let values = typed_values(&outs, "event");
        writeln!(o, "typedef void (*{t})({values}void* user_data);").unwrap();
        writeln!(
            o,
            "uint64_t {}(ffid_ctx* ctx, {t} listener, void* user_data);",
            e.typed.export
        )
        .unwrap();
    }
    writeln!(o).unwrap();
    comment(
        o,
        "",
        "Every event, as the CBOR map {\"event\": name, \"payload\": <the event's CBOR>}.",
    );
    writeln!(
        o,
        "uint64_t {n}_add_event_listener(ffid_ctx* ctx, ffid_callback cb, void* user_data);"
    )
    .unwrap();
    comment(
        o,
        "",
        "FFID_RET_OK if the listener was registered. Once this returns the listener is never\n\
         called again (called from that listener's own callback: once the callback returns).",
    );
    writeln!(
        o,
        "int {n}_remove_listener(ffid_ctx* ctx, uint64_t listener_id);"
    )
    .unwrap();
}
