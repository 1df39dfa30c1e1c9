//! The C++17 renderer: `<name>.hpp`, a header-only binding over `<name>.h`, and the
//! support header every such binding includes, `ffi_dispatch.hpp`.
//!
//! The binding calls the C exports only: blocking methods through the `_sync` forms
//! (owned answers, converted to value types, then freed), futures and callables through
//! the native exports with a heap box per call that the terminal callback frees
//! (`ffi_dispatch.hpp` says who owns what). Records become structs of value types (a
//! `Convert` specialisation maps each to its C mirror), enums `enum class`es.

use std::fmt::Write;

use ffi_dispatch_schema::model::{Field, Function, Library, Type, TypeDef, Value};
use ffi_dispatch_schema::names::C_KEYWORDS;
use ffi_dispatch_schema::CShape;

use crate::naming::scalar_c;

/// `ffi_dispatch.hpp`: the result type, subscriptions and the callback adapters.
pub const SUPPORT_HEADER: &str = include_str!("../cpp/ffi_dispatch.hpp");

/// The members `Context` has of its own, which a method of the same name must not hide.
const CONTEXT_MEMBERS: &[&str] = &[
    "Context",
    "native_handle",
    "release_handle",
    "set_progress_hook",
    "ffid_keep",
    "ctx_",
    "progress_",
];

/// A C++ identifier for `name`: itself, or with a `_` after it when C or C++ (see
/// `names::C_KEYWORDS`) or the binding claims it.
fn ident(name: &str) -> String {
    if C_KEYWORDS.contains(&name) || CONTEXT_MEMBERS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// A C++ type name for a record or enum `name`: as [`ident`], and clear of the names the
/// binding declares in the namespace (`Context`, and the `using`s of `ffid`'s types).
fn type_ident(name: &str) -> String {
    const TAKEN: &[&str] = &["Context", "Error", "Result", "Subscription", "detail"];
    if TAKEN.contains(&name) {
        format!("{name}_")
    } else {
        ident(name)
    }
}

/// The namespace of library `name`: itself, or with a `_` after it when it is a C or C++
/// keyword or a name compilers predefine or the binding uses (`linux`, `unix`, `std`,
/// `ffid`, ...).
fn namespace_ident(name: &str) -> String {
    const TAKEN: &[&str] = &["linux", "unix", "i386", "errno", "std", "ffid", "assert"];
    if TAKEN.contains(&name) {
        format!("{name}_")
    } else {
        ident(name)
    }
}

/// A C++ parameter name for `name`: as [`ident`], and clear of the binding's own
/// parameters and locals (`timeout_ms`, `done`, ..., `ffid_*`).
fn param_ident(name: &str) -> String {
    const TAKEN: &[&str] = &["timeout_ms", "done", "progress", "options", "listener"];
    // `create`'s locals are `ffid_*` too, so no constructor parameter meets them.
    if TAKEN.contains(&name) || name.starts_with("ffid_") {
        format!("{name}_")
    } else {
        ident(name)
    }
}

/// What the renderer needs besides a type: the namespace and the record and enum names.
struct Cx<'a> {
    lib: &'a Library,
    ns: String,
}

impl Cx<'_> {
    /// The C++ name of the record or enum of C name `c_name`: `<ns>::<Rust name>`.
    fn named(&self, c_name: &str) -> String {
        let name = match self.lib.type_def(c_name) {
            Some(TypeDef::Record(r)) => &r.name,
            Some(TypeDef::Enum(e)) => &e.name,
            None => c_name,
        };
        format!("{}::{}", self.ns, type_ident(name))
    }

    /// The C++ value type of `t`.
    fn ty(&self, t: &Type) -> String {
        match t {
            Type::Unit => "void".into(),
            Type::Str => "std::string".into(),
            Type::Bytes => "std::vector<uint8_t>".into(),
            Type::Option(inner) => format!("std::optional<{}>", self.ty(inner)),
            Type::Vec(inner) => format!("std::vector<{}>", self.ty(inner)),
            Type::Record(c) | Type::Enum(c) => self.named(c),
            s => scalar_c(s).unwrap_or("void").into(),
        }
    }

    /// How a parameter of type `t` is taken: scalars and enums by value, the rest by
    /// const reference.
    fn param(&self, t: &Type) -> String {
        match t {
            Type::Enum(_) => self.ty(t),
            s if s.is_scalar() => self.ty(t),
            _ => format!("const {}&", self.ty(t)),
        }
    }

    /// Statements filling the C slot(s) `c.<name>` from the C++ value `v` (a view into
    /// it; temporaries go to `ffid_keep`). The table at `schema::CShape`.
    fn write_c(&self, c: &str, v: &str, t: &Type) -> String {
        let (inner, optional) = match t {
            Type::Option(inner) => (&**inner, true),
            t => (t, false),
        };
        match (t.c_shape(), inner, optional) {
            (CShape::Flag, s, _) => format!(
                "{} = {v}.has_value(); {c} = {v}.value_or({}{{}});",
                has(c),
                self.ty(s)
            ),
            (CShape::Pair, Type::Bytes, false) => {
                format!("{c} = {v}.empty() ? nullptr : {v}.data(); {c}_len = {v}.size();")
            }
            (CShape::Pair, Type::Vec(_), false) => {
                format!("{c} = ffid::detail::array_to_c({v}, ffid_keep); {c}_len = {v}.size();")
            }
            (CShape::Pair, Type::Bytes, true) => format!(
                "{c} = {v} ? ({v}->empty() ? ffid_keep.hold(uint8_t{{0}}) : {v}->data()) : nullptr; {c}_len = {v} ? {v}->size() : 0;"
            ),
            (CShape::Pair, Type::Vec(e), true) => format!(
                "{c} = {v} ? ({v}->empty() ? ffid_keep.hold(typename ffid::detail::CElem<{}>::type{{}}) : ffid::detail::array_to_c(*{v}, ffid_keep)) : nullptr; {c}_len = {v} ? {v}->size() : 0;",
                self.ty(e)
            ),
            (_, Type::Str, false) => format!("{c} = {v}.c_str();"),
            (_, Type::Str, true) => format!("{c} = {v} ? {v}->c_str() : nullptr;"),
            (_, Type::Record(r), false) => format!(
                "{c} = ffid::detail::Convert<{}>::to_c({v}, ffid_keep);",
                self.named(r)
            ),
            (_, Type::Record(r), true) => format!(
                "{c} = {v} ? ffid_keep.hold(ffid::detail::Convert<{}>::to_c(*{v}, ffid_keep)) : nullptr;",
                self.named(r)
            ),
            (_, Type::Enum(e), false) => format!("{c} = static_cast<{e}>({v});"),
            (_, Type::Enum(e), true) => {
                format!("{c} = {v} ? ffid_keep.hold(static_cast<{e}>(*{v})) : nullptr;")
            }
            _ => format!("{c} = {v};"),
        }
    }

    /// Statements setting the C++ value `v` from the C slot(s) `c.<name>` (copies of
    /// everything they point to).
    fn read_c(&self, v: &str, c: &str, t: &Type) -> String {
        let (inner, optional) = match t {
            Type::Option(inner) => (&**inner, true),
            t => (t, false),
        };
        let value = |p: &str| self.value_from_c(p, &format!("{c}_len"), inner);
        match (t.c_shape(), optional) {
            (CShape::Flag, _) => format!("if ({}) {v} = {c};", has(c)),
            (_, true) => {
                let deref = match inner {
                    Type::Record(_) | Type::Enum(_) => format!("*{c}"),
                    _ => c.to_string(),
                };
                format!("if ({c} != nullptr) {v} = {};", value(&deref))
            }
            (_, false) => format!("{v} = {};", value(c)),
        }
    }

    /// The C++ value of C slot `c` (with `len` beside it for pairs) of type `t`.
    fn value_from_c(&self, c: &str, len: &str, t: &Type) -> String {
        match t {
            Type::Str => format!("ffid::detail::elem_from_c<std::string>({c})"),
            Type::Bytes => format!("ffid::detail::bytes_from_c({c}, {len})"),
            Type::Vec(e) => format!("ffid::detail::array_from_c<{}>({c}, {len})", self.ty(e)),
            Type::Record(r) => format!("ffid::detail::Convert<{}>::from_c({c})", self.named(r)),
            Type::Enum(e) => format!("static_cast<{}>({c})", self.named(e)),
            _ => c.to_string(),
        }
    }
}

/// The presence flag beside C slot `c` (`a.x` -> `a.has_x`).
fn has(c: &str) -> String {
    match c.rsplit_once('.') {
        Some((base, field)) => format!("{base}.has_{field}"),
        None => format!("has_{c}"),
    }
}

/// `text` as `//` comment lines at `indent` (a backslash ending a line is dropped: it would
/// continue the comment onto the next line of the header).
fn comment(o: &mut String, indent: &str, text: &str) {
    for l in text.lines().map(one_line) {
        if l.is_empty() {
            writeln!(o, "{indent}//").unwrap();
        } else {
            writeln!(o, "{indent}// {l}").unwrap();
        }
    }
}

/// A doc line for a `//` comment: without a backslash at its end (see [`comment`]).
fn one_line(l: &str) -> &str {
    l.trim_end().trim_end_matches('\\').trim_end()
}

/// The C++ type of a constant.
fn constant_ty(ty: &Type, v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "std::string_view",
        _ => scalar_c(ty).unwrap_or("int"),
    }
}

/// Renders `<name>.hpp` for `lib`.
pub fn cpp_header(lib: &Library) -> String {
    let n = &lib.name;
    let ns = namespace_ident(n);
    let cx = Cx {
        lib,
        ns: ns.clone(),
    };
    let guard = lib.macro_name("HPP");
    let mut o = String::new();
    writeln!(
        o,
        "// {n}.hpp - C++17 binding of {n}.h, generated by ffi-dispatch-bindgen from the built\n\
         // library (ffi-dispatch {}). Do not edit; regenerate it with ffi-dispatch-bindgen.\n//",
        lib.runtime_version
    )
    .unwrap();
    if !lib.doc.is_empty() {
        comment(&mut o, "", &lib.doc);
        writeln!(o, "//").unwrap();
    }
    o.push_str(&format!(
        "// Header-only, over the C exports of {n}.h (link the library as for C). Everything is
// in namespace {ns}:
//   - {ns}::Context owns a context (move-only; its destructor destroys it, answering every
//     call still in flight first). Context::create waits for the constructor's outcome.
//   - records are structs of value types (std::string, std::vector, std::optional), owning
//     everything; enums are enum classes of the C values.
//   - each method m comes as
//       Result<T> m(args..., uint32_t timeout_ms = 0)    blocking (the runtime waits: a
//                                                        short spin, then asleep)
//       std::future<Result<T>> m_async(args...)         no thread per call
//       int m(args..., F&& done)                         done(Result<T>) once, on the
//       int m(args..., F&& done, P&& progress)           answering thread; progress(ms)
//                                                        at each FFID_RET_STALE_WARN ping
//     The callable forms return FFID_RET_OK when accepted, else the refusal's code, and
//     then have freed done and progress without calling them.
//   - events: Context::<event>(F&& listener) returns an ffid::Subscription that removes the
//     listener when destroyed.
// Arguments are read during the call only. Results own their data (nothing points into
// the library). Errors are ffid::Error {{code, message}}; see ffi_dispatch.hpp.
#ifndef {guard}
#define {guard}

#include \"ffi_dispatch.hpp\"
#include \"{n}.h\"

namespace {ns} {{

using ffid::Error;
using ffid::Result;
using ffid::Subscription;
"
    ));
    constants(&mut o, lib);
    types(&mut o, &cx);
    writeln!(o, "\n}} // namespace {ns}").unwrap();
    converts(&mut o, &cx);
    writeln!(o, "\nnamespace {ns} {{").unwrap();
    context(&mut o, &cx);
    for f in &lib.statics {
        writeln!(o).unwrap();
        method(&mut o, &cx, f, false);
    }
    for f in &lib.inlines {
        writeln!(o).unwrap();
        inline(&mut o, &cx, f);
    }
    writeln!(o, "\n}} // namespace {ns}\n\n#endif // {guard}").unwrap();
    o
}

fn constants(o: &mut String, lib: &Library) {
    if lib.constants.is_empty() {
        return;
    }
    writeln!(o).unwrap();
    for c in &lib.constants {
        let ty = constant_ty(&c.ty, &c.value);
        if let Some(d) = c.doc.lines().next().map(one_line) {
            writeln!(o, "// {d}").unwrap();
        }
        writeln!(
            o,
            "inline constexpr {ty} {} = {};",
            ident(&c.name),
            c.c_name
        )
        .unwrap();
    }
}

fn types(o: &mut String, cx: &Cx) {
    for t in &cx.lib.types {
        writeln!(o).unwrap();
        match t {
            TypeDef::Enum(e) => {
                comment(o, "", &e.doc);
                writeln!(o, "enum class {} : int32_t {{", type_ident(&e.name)).unwrap();
                for v in &e.variants {
                    match v.doc.lines().next().map(one_line) {
                        Some(d) => writeln!(o, "    {} = {}, // {d}", ident(&v.name), v.c_name),
                        None => writeln!(o, "    {} = {},", ident(&v.name), v.c_name),
                    }
                    .unwrap();
                }
                writeln!(o, "}};").unwrap();
            }
            TypeDef::Record(r) => {
                comment(o, "", &r.doc);
                writeln!(o, "struct {} {{", type_ident(&r.name)).unwrap();
                for f in &r.fields {
                    match f.doc.lines().next().map(one_line) {
                        Some(d) => {
                            writeln!(o, "    {} {}{{}}; // {d}", cx.ty(&f.ty), ident(&f.name))
                        }
                        None => writeln!(o, "    {} {}{{}};", cx.ty(&f.ty), ident(&f.name)),
                    }
                    .unwrap();
                }
                writeln!(o, "}};").unwrap();
            }
        }
    }
}

/// The `ffid::detail::Convert` specialisation of each record.
fn converts(o: &mut String, cx: &Cx) {
    let records: Vec<_> = cx
        .lib
        .types
        .iter()
        .filter_map(|t| match t {
            TypeDef::Record(r) => Some(r),
            TypeDef::Enum(_) => None,
        })
        .collect();
    if records.is_empty() {
        return;
    }
    writeln!(o, "\nnamespace ffid {{\nnamespace detail {{").unwrap();
    for r in records {
        let cpp = cx.named(&r.c_name);
        let c = &r.c_name;
        writeln!(
            o,
            "\ntemplate <>\nstruct Convert<{cpp}> {{\n    using C = {c};"
        )
        .unwrap();
        writeln!(
            o,
            "    static {cpp} from_c(const {c}& c) {{\n        {cpp} v;"
        )
        .unwrap();
        for f in &r.fields {
            let line = cx.read_c(
                &format!("v.{}", ident(&f.name)),
                &format!("c.{}", f.name),
                &f.ty,
            );
            writeln!(o, "        {line}").unwrap();
        }
        writeln!(o, "        return v;\n    }}").unwrap();
        let keep = if r.fields.iter().any(|f| needs_keep(&f.ty)) {
            "ffid_keep"
        } else {
            "/*ffid_keep*/"
        };
        writeln!(
            o,
            "    static {c} to_c(const {cpp}& v, Keep& {keep}) {{\n        {c} c{{}};"
        )
        .unwrap();
        for f in &r.fields {
            let line = cx.write_c(
                &format!("c.{}", f.name),
                &format!("v.{}", ident(&f.name)),
                &f.ty,
            );
            writeln!(o, "        {line}").unwrap();
        }
        writeln!(o, "        return c;\n    }}\n}};").unwrap();
    }
    writeln!(o, "\n}} // namespace detail\n}} // namespace ffid").unwrap();
}

/// Whether the C form of `t` may need temporaries.
fn needs_keep(t: &Type) -> bool {
    match t {
        Type::Vec(_) | Type::Record(_) => true,
        Type::Option(inner) => !inner.is_scalar() && !matches!(**inner, Type::Str),
        _ => false,
    }
}

/// The C++ parameter list of `params`.
fn params(cx: &Cx, params: &[Field]) -> Vec<String> {
    params
        .iter()
        .map(|p| format!("{} {}", cx.param(&p.ty), param_ident(&p.name)))
        .collect()
}

fn names(params: &[Field]) -> Vec<String> {
    params.iter().map(|p| param_ident(&p.name)).collect()
}

/// `static <Args> <m>_args(params..., Keep&)`: the C args struct as a view into the
/// parameters.
fn args_builder(o: &mut String, cx: &Cx, f: &Function, fname: &str, indent: &str) {
    let Some(s) = &f.args_struct else { return };
    let mut ps = params(cx, &f.params);
    let keep = if f.params.iter().any(|p| needs_keep(&p.ty)) {
        "ffid_keep"
    } else {
        "/*ffid_keep*/"
    };
    ps.push(format!("ffid::detail::Keep& {keep}"));
    writeln!(
        o,
        "{indent}static {s} {fname}_args({}) {{\n{indent}    {s} ffid_c{{}};",
        ps.join(", ")
    )
    .unwrap();
    for p in &f.params {
        writeln!(
            o,
            "{indent}    {}",
            cx.write_c(&format!("ffid_c.{}", p.name), &param_ident(&p.name), &p.ty)
        )
        .unwrap();
    }
    writeln!(o, "{indent}    return ffid_c;\n{indent}}}").unwrap();
}

/// A free function's args builder, in the namespace's `detail` (a member's is a private
/// static of `Context`).
fn detail_args_builder(o: &mut String, cx: &Cx, f: &Function) {
    let mut b = String::new();
    args_builder(&mut b, cx, f, &f.name, "");
    if !b.is_empty() {
        writeln!(
            o,
            "namespace detail {{\n{}}} // namespace detail\n",
            b.replace("static ", "inline ")
        )
        .unwrap();
    }
}

/// The lines making a call's C args struct `local` (a view into the parameters, with
/// its temporaries in `ffid_keep`) with `builder`; none for a function without
/// parameters.
fn args_view(f: &Function, ind: &str, builder: &str, local: &str) -> String {
    let Some(s) = &f.args_struct else {
        return String::new();
    };
    let args: Vec<String> = names(&f.params)
        .into_iter()
        .chain(["ffid_keep".to_string()])
        .collect();
    format!(
        "{ind}    ffid::detail::Keep ffid_keep;\n{ind}    const {s} {local} = {builder}({});\n",
        args.join(", ")
    )
}

/// The out locals of a blocking form, its out arguments, the C++ value made of them,
/// and whether they are a block to free.
fn sync_outs(cx: &Cx, t: &Type) -> (Vec<String>, String, String, bool) {
    let ptr = |c: String| {
        (
            vec![format!("const {c}* ffid_out = nullptr;")],
            "&ffid_out".to_string(),
        )
    };
    let pair = |c: String| {
        (
            vec![
                format!("{c} ffid_out = nullptr;"),
                "size_t ffid_out_len = 0;".to_string(),
            ],
            "&ffid_out, &ffid_out_len".to_string(),
        )
    };
    let elem_ptr = |e: &Type| match e {
        Type::Str => "const char* const*".to_string(),
        Type::Record(c) | Type::Enum(c) => format!("const {c}*"),
        s => format!("const {}*", scalar_c(s).unwrap_or("void")),
    };
    let (inner, optional) = match t {
        Type::Option(inner) => (&**inner, true),
        t => (t, false),
    };
    let ((decls, args), value) = match inner {
        Type::Unit => ((Vec::new(), String::new()), String::new()),
        s if s.is_scalar() && optional => (
            (
                vec![
                    "bool ffid_has_out = false;".to_string(),
                    format!("{} ffid_out{{}};", cx.ty(s)),
                ],
                "&ffid_has_out, &ffid_out".to_string(),
            ),
            format!("ffid_has_out ? {}(ffid_out) : std::nullopt", cx.ty(t)),
        ),
        s if s.is_scalar() => (
            (
                vec![format!("{} ffid_out{{}};", cx.ty(s))],
                "&ffid_out".to_string(),
            ),
            "ffid_out".to_string(),
        ),
        Type::Enum(c) if !optional => (
            (vec![format!("{c} ffid_out{{}};")], "&ffid_out".to_string()),
            format!("static_cast<{}>(ffid_out)", cx.named(c)),
        ),
        Type::Enum(c) | Type::Record(c) => {
            (ptr(c.clone()), cx.value_from_c("*ffid_out", "", inner))
        }
        Type::Str => (ptr("char".into()), cx.value_from_c("ffid_out", "", inner)),
        Type::Bytes => (
            pair("const uint8_t*".into()),
            cx.value_from_c("ffid_out", "ffid_out_len", inner),
        ),
        Type::Vec(e) => (
            pair(elem_ptr(e)),
            cx.value_from_c("ffid_out", "ffid_out_len", inner),
        ),
        _ => ((Vec::new(), String::new()), String::new()),
    };
    let block = args.contains("&ffid_out") && !decls.iter().any(|d| d.ends_with("ffid_out{};"));
    let value = match (optional, block) {
        (true, true) => format!(
            "ffid_out == nullptr ? {}() : {}({value})",
            cx.ty(t),
            cx.ty(t)
        ),
        _ => value,
    };
    (decls, args, value, block)
}

/// The blocking, future and callable forms of a method (`member`) or static method.
fn method(o: &mut String, cx: &Cx, f: &Function, member: bool) {
    let n = &cx.lib.name;
    let name = ident(&f.name);
    let ind = if member { "    " } else { "" };
    let (stat, cnst, ctx_arg) = if member {
        ("", " const", "ctx_, ")
    } else {
        ("inline ", "", "")
    };
    let ret = cx.ty(&f.ret);
    let res = format!("Result<{ret}>");
    let ps = params(cx, &f.params);
    let with = |extra: &[&str]| {
        let mut all = ps.clone();
        all.extend(extra.iter().map(|s| s.to_string()));
        all.join(", ")
    };
    let builder = if member {
        format!("{}_args", f.name)
    } else {
        format!("detail::{}_args", f.name)
    };
    let args_line = args_view(f, ind, &builder, "ffid_a");
    let a = if f.args_struct.is_some() {
        ", &ffid_a"
    } else {
        ""
    };
    let a_first = if f.args_struct.is_some() {
        "&ffid_a, "
    } else {
        ""
    };
    // The shared args builder (private for a member: emitted by `context`).
    if !member {
        detail_args_builder(o, cx, f);
    }
    let mut doc = f.doc.clone();
    if f.fallible {
        doc.push_str(if doc.is_empty() { "" } else { "\n" });
        doc.push_str("May fail with the method's error (Error::code == FFID_RET_ERR).");
    }
    comment(o, ind, &doc);
    // Blocking.
    if let Some(sync) = &f.sync_export {
        let (decls, outs, value, block) = sync_outs(cx, &f.ret);
        write!(
            o,
            "{ind}{stat}{res} {name}({}){cnst} {{\n{args_line}",
            with(&["uint32_t timeout_ms = 0"]),
        )
        .unwrap();
        for d in &decls {
            writeln!(o, "{ind}    {d}").unwrap();
        }
        let outs = if outs.is_empty() {
            String::new()
        } else {
            format!("{outs}, ")
        };
        writeln!(
            o,
            "{ind}    int ffid_rc = {sync}({ctx_arg}{a_first}{outs}timeout_ms);\n\
             {ind}    if (ffid_rc != FFID_RET_OK) return Error{{ffid_rc, {n}_last_error()}};"
        )
        .unwrap();
        if ret == "void" {
            writeln!(o, "{ind}    return {{}};").unwrap();
        } else if block {
            writeln!(
                o,
                "{ind}    {ret} ffid_value = {value};\n{ind}    {n}_free(ffid_out);\n{ind}    return ffid_value;"
            )
            .unwrap();
        } else {
            writeln!(o, "{ind}    return {value};").unwrap();
        }
        writeln!(o, "{ind}}}").unwrap();
    }
    let submit = format!(
        "[&](ffid_callback ffid_cb, void* ffid_ud) {{ return {}({ctx_arg}ffid_cb, ffid_ud{a}); }}",
        f.export
    );
    let hook = if member { "progress_" } else { "nullptr" };
    // Future.
    writeln!(
        o,
        "{ind}{stat}std::future<{res}> {}_async({}){cnst} {{\n{args_line}{ind}    return ffid::detail::call_future<{ret}>({submit}, {hook}, &{n}_last_error);\n{ind}}}",
        f.name,
        with(&[])
    )
    .unwrap();
    // Callables.
    let inv = format!("std::is_invocable_v<F&, {res}>");
    writeln!(
        o,
        "{ind}template <class F, class = std::enable_if_t<{inv}>>\n{ind}[[nodiscard]] {stat}int {name}({}){cnst} {{\n{args_line}{ind}    return ffid::detail::call<{ret}>({submit}, std::forward<F>(done), ffid::detail::NoProgress{{}});\n{ind}}}",
        with(&["F&& done"])
    )
    .unwrap();
    writeln!(
        o,
        "{ind}template <class F, class P, class = std::enable_if_t<{inv} && std::is_invocable_v<P&, std::string_view>>>\n{ind}[[nodiscard]] {stat}int {name}({}){cnst} {{\n{args_line}{ind}    return ffid::detail::call<{ret}>({submit}, std::forward<F>(done), std::forward<P>(progress));\n{ind}}}",
        with(&["F&& done", "P&& progress"])
    )
    .unwrap();
}

/// An inline export: answered on the calling thread, so a plain `Result<T>`.
fn inline(o: &mut String, cx: &Cx, f: &Function) {
    let n = &cx.lib.name;
    detail_args_builder(o, cx, f);
    let ret = cx.ty(&f.ret);
    comment(o, "", &f.doc);
    let args_line = args_view(f, "", &format!("detail::{}_args", f.name), "ffid_a");
    let a = if f.args_struct.is_some() {
        ", &ffid_a"
    } else {
        ""
    };
    writeln!(
        o,
        "inline Result<{ret}> {}({}) {{\n{args_line}    return ffid::detail::call_inline<{ret}>([&](ffid_callback ffid_cb, void* ffid_ud) {{ return {}(ffid_cb, ffid_ud{a}); }}, &{n}_last_error);\n}}",
        ident(&f.name),
        params(cx, &f.params).join(", "),
        f.export
    )
    .unwrap();
}

/// `class Context`: create, destroy, the methods and the event subscriptions.
fn context(o: &mut String, cx: &Cx) {
    let lib = cx.lib;
    let n = &lib.name;
    let ctor = &lib.ctor;
    writeln!(o, "\n// A context of the {n} library: move-only; destroyed (every call in flight answered\n// first) by its destructor or destroy().").unwrap();
    writeln!(o, "class Context {{\npublic:").unwrap();
    // create
    comment(o, "    ", &ctor.doc);
    comment(
        o,
        "    ",
        "Creates a context and waits for the constructor's outcome (in completion mode\n\
         draining meanwhile). options may be null for the defaults; read during the call only.",
    );
    let mut ps = params(cx, &ctor.params);
    ps.push("const ffid_options* options = nullptr".into());
    writeln!(o, "    static Result<Context> create({}) {{", ps.join(", ")).unwrap();
    o.push_str(&args_view(ctor, "    ", "create_args", "ffid_cfg"));
    let cfg = if ctor.args_struct.is_some() {
        ", &ffid_cfg"
    } else {
        ""
    };
    writeln!(
        o,
        "        auto ffid_created = std::make_unique<ffid::detail::Created>();\n\
         \x20       std::future<Result<void>> ffid_outcome = ffid_created->promise.get_future();\n\
         \x20       ffid_ctx* ffid_handle = {create}({hash}, &ffid::detail::Created::callback, ffid_created.get(){cfg}, options);\n\
         \x20       if (ffid_handle == nullptr) return Error{{FFID_RET_ERR, {n}_last_error()}};\n\
         \x20       ffid_created.release(); // the create callback frees it\n\
         \x20       Context ffid_context(ffid_handle);\n\
         \x20       Result<void> ffid_ok = ffid::detail::wait_created(ffid_outcome, ffid_handle, options, &{n}_drain);\n\
         \x20       if (!ffid_ok) return ffid_ok.error(); // the handle is destroyed with ffid_context\n\
         \x20       return Result<Context>(std::move(ffid_context));\n    }}\n",
        create = ctor.export,
        hash = lib.macro_name("INTERFACE_HASH"),
    )
    .unwrap();
    writeln!(
        o,
        "    Context(Context&& other) noexcept\n\
         \x20       : ctx_(std::exchange(other.ctx_, nullptr)), progress_(std::move(other.progress_)) {{}}\n\
         \x20   Context& operator=(Context&& other) noexcept {{\n\
         \x20       if (this != &other) {{\n\
         \x20           destroy();\n\
         \x20           ctx_ = std::exchange(other.ctx_, nullptr);\n\
         \x20           progress_ = std::move(other.progress_);\n\
         \x20       }}\n\
         \x20       return *this;\n    }}\n\
         \x20   Context(const Context&) = delete;\n\
         \x20   Context& operator=(const Context&) = delete;\n\
         \x20   ~Context() {{ destroy(); }}\n\n\
         \x20   // Destroys the context now ({n}_destroy): answers every accepted call, then frees it.\n\
         \x20   // FFID_RET_OK; FFID_RET_INVALID_CTX when there is none (moved from, destroyed);\n\
         \x20   // FFID_RET_BUSY inside a callback, where it cannot wait (the context is then kept,\n\
         \x20   // and leaks if this Context is destroyed there).\n\
         \x20   int destroy() noexcept {{\n\
         \x20       if (ctx_ == nullptr) return FFID_RET_INVALID_CTX;\n\
         \x20       int rc = {n}_destroy(ctx_);\n\
         \x20       if (rc == FFID_RET_OK) ctx_ = nullptr;\n\
         \x20       return rc;\n    }}\n\n\
         \x20   // The C handle, for the functions of {n}.h; still owned by this Context.\n\
         \x20   ffid_ctx* native_handle() const noexcept {{ return ctx_; }}\n\
         \x20   // Gives the C handle up: the caller destroys it with {n}_destroy.\n\
         \x20   ffid_ctx* release_handle() noexcept {{ return std::exchange(ctx_, nullptr); }}\n\
         \x20   // Called with each FFID_RET_STALE_WARN ping of the futures made after this (on the\n\
         \x20   // monitor thread). Set it before making calls: it is not synchronised with them.\n\
         \x20   void set_progress_hook(ffid::ProgressHook hook) {{\n\
         \x20       progress_ = std::make_shared<const ffid::ProgressHook>(std::move(hook));\n    }}"
    )
    .unwrap();
    for f in &lib.methods {
        writeln!(o).unwrap();
        method(o, cx, f, true);
    }
    for e in &lib.events {
        writeln!(o).unwrap();
        comment(o, "    ", &e.doc);
        comment(
            o,
            "    ",
            &format!(
                "Calls listener(const {}&) with each {} event, on the event thread, until the\nsubscription is destroyed.",
                cx.ty(&e.ty),
                e.name
            ),
        );
        writeln!(
            o,
            "    template <class F, class = std::enable_if_t<std::is_invocable_v<F&, const {ty}&>>>\n\
             \x20   Subscription {}(F&& listener) const {{\n\
             \x20       return ffid::detail::listen<{ty}>(ctx_, &{}, &{n}_remove_listener, std::forward<F>(listener));\n    }}",
            ident(&e.name),
            e.listener,
            ty = cx.ty(&e.ty)
        )
        .unwrap();
    }
    writeln!(
        o,
        "\nprivate:\n    explicit Context(ffid_ctx* ctx) noexcept : ctx_(ctx) {{}}"
    )
    .unwrap();
    if let Some(_s) = &ctor.args_struct {
        args_builder(o, cx, ctor, "create", "    ");
    }
    for f in &lib.methods {
        args_builder(o, cx, f, &f.name, "    ");
    }
    writeln!(
        o,
        "\n    ffid_ctx* ctx_ = nullptr;\n    std::shared_ptr<const ffid::ProgressHook> progress_;\n}};"
    )
    .unwrap();
}
