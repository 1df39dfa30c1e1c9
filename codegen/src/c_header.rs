//! The C header renderer: `<name>.h`, with a native and a CBOR export per method.

use std::fmt::Write;

use ffi_dispatch_schema::{CShape, FieldDesc, FnDesc, LibraryDesc, Ty};

use crate::naming::{c_type, named_types, notation, scalar_c, screaming};

// ---- C header ------------------------------------------------------------------------------

/// The C type of one element of a `Vec<T>` (or of a one-field C form).
fn elem_c(lib: &LibraryDesc, t: Ty) -> String {
    match t {
        Ty::Str => "const char*".into(),
        Ty::Record(r) => c_type(lib, r.name),
        Ty::Enum(e) => c_type(lib, e.name),
        s => scalar_c(s).unwrap_or("void").into(),
    }
}

/// A read-only pointer to elements of `t`: `const T*`, or `const char* const*` for text.
fn elem_ptr(lib: &LibraryDesc, t: Ty) -> String {
    match t {
        Ty::Str => "const char* const*".into(),
        t => format!("const {}*", elem_c(lib, t)),
    }
}

/// The C declaration(s) of one slot, in the shape [`Ty::c_shape`] gives it (the table at
/// `schema::CShape`), each with what it holds.
fn c_fields(lib: &LibraryDesc, name: &str, t: Ty) -> Vec<(String, String)> {
    let (value, absent) = match t {
        Ty::Option(inner) => (inner(), true),
        t => (t, false),
    };
    match t.c_shape() {
        CShape::Pair => {
            let (ptr, what) = match value {
                Ty::Vec(e) => (elem_ptr(lib, e()), "elements"),
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
                Ty::Str if absent => (
                    "const char*".to_string(),
                    "NULL = absent, else NUL-terminated UTF-8".to_string(),
                ),
                Ty::Str => (
                    "const char*".to_string(),
                    "NUL-terminated UTF-8, not NULL".to_string(),
                ),
                other if absent => (elem_ptr(lib, other), "NULL = absent".to_string()),
                Ty::Record(r) => (c_type(lib, r.name), String::new()),
                Ty::Enum(e) => (
                    c_type(lib, e.name),
                    format!("one of the {} values", c_type(lib, e.name)),
                ),
                s => (scalar_c(s).unwrap_or("void").to_string(), String::new()),
            };
            vec![(format!("{decl} {name}"), doc)]
        }
    }
}

/// How a native answer of type `t` arrives in the callback.
fn native_answer(lib: &LibraryDesc, t: Ty) -> String {
    match t {
        Ty::Unit => "no value (len == 0)".into(),
        Ty::Bool => "1 byte, 0 or 1".into(),
        Ty::Str => "UTF-8 text, len bytes (msg is NUL-terminated)".into(),
        Ty::Bytes => "the bytes (len of them)".into(),
        Ty::Record(r) => format!(
            "msg points to a {0} (len == sizeof({0})), valid during the callback",
            c_type(lib, r.name)
        ),
        Ty::Enum(e) => format!("an int32_t {} value, native-endian", c_type(lib, e.name)),
        Ty::Vec(inner) => format!(
            "msg points to an array of {0} (len == count * sizeof({0})), valid during the callback",
            elem_c(lib, inner())
        ),
        Ty::Option(inner) => format!("len == 0 when absent, else {}", native_answer(lib, inner())),
        s => format!(
            "{} in native byte order (len == {})",
            scalar_c(s).unwrap_or("?"),
            c_size(s)
        ),
    }
}

fn c_size(t: Ty) -> usize {
    match t {
        Ty::Bool | Ty::U8 | Ty::I8 => 1,
        Ty::U16 | Ty::I16 => 2,
        Ty::U32 | Ty::I32 | Ty::F32 => 4,
        _ => 8,
    }
}

fn comment(out: &mut String, indent: &str, text: &str) {
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

fn struct_def(out: &mut String, lib: &LibraryDesc, name: &str, fields: &[FieldDesc]) {
    writeln!(out, "typedef struct {name} {{").unwrap();
    for f in fields {
        let decls = c_fields(lib, f.name, (f.ty)());
        // The doc goes on the slot's value field: the second of `has_x; x`, else the first.
        let value_at = usize::from(decls[0].0.starts_with("bool has_"));
        for (i, (decl, note)) in decls.into_iter().enumerate() {
            let doc = if i == value_at {
                f.doc.lines().next()
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

fn signature(lib: &LibraryDesc, f: &FnDesc, ctor: bool) -> String {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, notation(lib, (p.ty)())))
        .collect();
    let ret = match (ctor, f.fallible) {
        (true, true) => " -> context or error".to_string(),
        (true, false) => String::new(),
        (false, true) => format!(" -> {} or error", notation(lib, (f.ret)())),
        (false, false) => format!(" -> {}", notation(lib, (f.ret)())),
    };
    format!("{}({}){ret}", f.name, params.join(", "))
}

/// Renders the library's C header. `regenerate` is the command that rewrites it, quoted
/// in the header's first lines.
pub fn header(lib: &LibraryDesc, regenerate: &str) -> String {
    let mut o = String::new();
    let guard = format!("{}_H", lib.name.to_ascii_uppercase());
    let n = lib.name;
    writeln!(o, "/*").unwrap();
    writeln!(
        o,
        " * {n}.h - generated by ffi-dispatch from the library's Rust source. Do not edit;"
    )
    .unwrap();
    writeln!(o, " * regenerate with: {regenerate}").unwrap();
    if !lib.doc.is_empty() {
        writeln!(o, " *").unwrap();
        for l in lib.doc.lines() {
            writeln!(o, " * {l}").unwrap();
        }
    }
    o.push_str(&format!(
        " *
 * Every method has a native export (arguments in a struct passed by pointer) and a CBOR
 * export (arguments as a CBOR map keyed by parameter name; schema in {n}.cddl). The rules
 * of ffi_dispatch.h apply to all of them: FFID_RET_OK = accepted, exactly one terminal
 * callback follows; anything else = refused, no callback. Every pointer passed in is
 * borrowed for the duration of the call only (the runtime copies what it needs), and
 * every pointer in an answer is valid only until the callback returns.
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

    let types = named_types(lib);
    if !types.is_empty() {
        writeln!(o, "\n/* ---- types ---- */").unwrap();
    }
    for t in types {
        writeln!(o).unwrap();
        match t {
            Ty::Enum(e) => {
                let c = c_type(lib, e.name);
                comment(&mut o, "", e.doc);
                writeln!(o, "typedef int32_t {c};").unwrap();
                writeln!(o, "enum {{").unwrap();
                for (name, value, doc) in e.variants {
                    let konst = format!("{}_{}", screaming(&c), screaming(name));
                    match doc.lines().next() {
                        Some(d) => writeln!(o, "    {konst} = {value}, /* {d} */").unwrap(),
                        None => writeln!(o, "    {konst} = {value},").unwrap(),
                    }
                }
                writeln!(o, "}};").unwrap();
            }
            Ty::Record(r) => {
                comment(&mut o, "", r.doc);
                struct_def(&mut o, lib, &c_type(lib, r.name), r.fields);
            }
            _ => {}
        }
    }

    writeln!(o, "\n/* ---- context ---- */\n").unwrap();
    let ctor = &lib.ctor;
    let mut doc = String::from(ctor.doc);
    if !doc.is_empty() {
        doc.push('\n');
    }
    doc.push_str(&signature(lib, ctor, true));
    doc.push_str(
        "\nReturns NULL, with no callback, when cb is NULL, an argument is invalid (NULL\n\
         pointer, text not UTF-8, malformed CBOR) or no worker could be started. Otherwise cb\n\
         reports the constructor's outcome (FFID_RET_OK with no value, or FFID_RET_ERR).",
    );
    comment(&mut o, "", &doc);
    let cfg = if ctor.params.is_empty() {
        String::new()
    } else {
        struct_def(&mut o, lib, ctor.args_struct, ctor.params);
        format!(", const {}* cfg", ctor.args_struct)
    };
    writeln!(
        o,
        "ffid_ctx* {n}_create(ffid_callback cb, void* user_data{cfg});"
    )
    .unwrap();
    writeln!(
        o,
        "ffid_ctx* {n}_create_cbor(ffid_callback cb, void* user_data, const uint8_t* req, size_t len);"
    )
    .unwrap();
    writeln!(
        o,
        "/* As {n}_create, with runtime options (opts may be NULL for the defaults; options not\n \
         * made by ffid_options_init, or with out-of-range values, make create return NULL). */"
    )
    .unwrap();
    writeln!(
        o,
        "ffid_ctx* {n}_create_with_options(ffid_callback cb, void* user_data{cfg},\n    const ffid_options* opts);"
    )
    .unwrap();
    writeln!(
        o,
        "\n/* Synchronous: answers every accepted call, then frees the context. FFID_RET_OK, or\n \
         * FFID_RET_ERR for a handle that is not live or a call from inside a callback. */"
    )
    .unwrap();
    writeln!(o, "int {n}_destroy(ffid_ctx* ctx);").unwrap();

    let sections = [
        ("methods", lib.methods, "ffid_ctx* ctx, "),
        ("static methods (no context)", lib.statics, ""),
    ];
    for (title, fns, ctx) in sections {
        if fns.is_empty() {
            continue;
        }
        writeln!(o, "\n/* ---- {title} ---- */").unwrap();
        for f in fns {
            writeln!(o).unwrap();
            let mut doc = String::from(f.doc);
            if !doc.is_empty() {
                doc.push('\n');
            }
            doc.push_str(&signature(lib, f, false));
            doc.push_str(&format!(
                "\nNative answer: {}.",
                native_answer(lib, (f.ret)())
            ));
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
            comment(&mut o, "", &doc);
            let args = if f.params.is_empty() {
                String::new()
            } else {
                let s = f.args_struct;
                struct_def(&mut o, lib, s, f.params);
                format!(", const {s}* args")
            };
            writeln!(
                o,
                "int {n}_{}({ctx}ffid_callback cb, void* user_data{args});",
                f.name
            )
            .unwrap();
            writeln!(
                o,
                "int {n}_{}_cbor({ctx}ffid_callback cb, void* user_data, const uint8_t* req, size_t len);",
                f.name
            )
            .unwrap();
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

/// The per-library runtime functions and the event listeners.
fn runtime_section(o: &mut String, lib: &LibraryDesc) {
    let n = lib.name;
    writeln!(o, "\n/* ---- runtime ---- */\n").unwrap();
    comment(
        o,
        "",
        "Copies the context's counters into *out (see ffid_context_stats in ffi_dispatch.h);\n\
         set out->struct_size = sizeof(ffid_context_stats) first. FFID_RET_OK, or FFID_RET_ERR\n\
         for a handle that is not live or a NULL out.",
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
        "Cancels a request the worker has not started: it is answered FFID_RET_ERR\n\
         \"cancelled\" (when the worker reaches it) and its method never runs; returns\n\
         FFID_RET_OK. FFID_RET_ERR, changing nothing, when it has started or finished, the id\n\
         is unknown, or the handle is not live.",
    );
    writeln!(o, "int {n}_cancel(ffid_ctx* ctx, uint64_t request_id);").unwrap();
    comment(
        o,
        "",
        "Completion mode (ffid_options.completion = FFID_COMPLETION_QUEUE): runs up to max\n\
         queued callbacks on the calling thread and returns how many ran (0 if another\n\
         thread is draining), or -1 for a handle that is not live or not in that mode.",
    );
    writeln!(o, "int {n}_drain(ffid_ctx* ctx, uint32_t max);").unwrap();
    comment(
        o,
        "",
        "Completion mode: an eventfd, readable while completions wait (poll it, then drain).\n\
         Owned by the context and closed by destroy; -1 when not in that mode.",
    );
    writeln!(o, "int {n}_completion_fd(ffid_ctx* ctx);").unwrap();
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
    for e in lib.events {
        writeln!(o).unwrap();
        let mut doc = String::from(e.doc);
        if !doc.is_empty() {
            doc.push('\n');
        }
        doc.push_str(&format!(
            "Event {}: {}. Native listener: {}.",
            e.name,
            notation(lib, (e.ty)()),
            native_answer(lib, (e.ty)())
        ));
        comment(o, "", &doc);
        writeln!(
            o,
            "uint64_t {n}_add_{}_listener(ffid_ctx* ctx, ffid_callback cb, void* user_data);",
            e.name
        )
        .unwrap();
        writeln!(
            o,
            "uint64_t {n}_add_{}_listener_cbor(ffid_ctx* ctx, ffid_callback cb, void* user_data);",
            e.name
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
