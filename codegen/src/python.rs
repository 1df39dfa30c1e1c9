//! The Python renderer: `<name>.py`, a pure-Python (`ctypes`) module over the library's
//! C exports, and `<name>.pyi`, its type stubs.
//!
//! Nothing is serialized: arguments are laid into `ctypes` mirrors of the C structs
//! (the table at `schema::CShape`), blocking methods go through the `_sync` forms and
//! asyncio ones through the typed `_async` forms in completion mode, whose owned answers
//! are converted to Python values and freed at once. The runtime part every module
//! shares (loading, errors, contexts, subscriptions) is `python/runtime.py`, copied in.

use std::fmt::Write;

use ffi_dispatch_schema::model::{Field, Function, Library, Type, TypeDef, Value};

/// The part of every module that does not depend on the library.
const RUNTIME: &str = include_str!("../python/runtime.py");

/// Python's keywords and the soft ones a name must not take: such a name gets a `_`.
const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "match", "case", "type", "self", "cls",
];

/// The members a context has of its own, which a method must not hide.
const CONTEXT_MEMBERS: &[&str] = &["close", "aclose", "closed", "handle", "stats", "create"];

/// A Python identifier for `name`: itself, or with a `_` after it when Python claims it.
fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// A parameter name: as [`ident`], and clear of the forms' own keyword parameters.
fn param_ident(name: &str) -> String {
    match name {
        "timeout" | "options" | "listener" => format!("{name}_"),
        n => ident(n),
    }
}

/// A method name: as [`ident`], and clear of the context's own members.
fn method_ident(name: &str) -> String {
    if CONTEXT_MEMBERS.contains(&name) {
        format!("{name}_")
    } else {
        ident(name)
    }
}

/// `UPPER_SNAKE` of a Rust variant name (`NotFound` -> `NOT_FOUND`).
fn upper_snake(name: &str) -> String {
    let mut out = String::new();
    let mut after_lower = false;
    for ch in name.chars() {
        if ch.is_uppercase() && after_lower {
            out.push('_');
        }
        after_lower = ch.is_lowercase() || ch.is_ascii_digit();
        out.extend(ch.to_uppercase());
    }
    out
}

fn scalar_ctype(t: &Type) -> Option<&'static str> {
    Some(match t {
        Type::Bool => "ctypes.c_bool",
        Type::U8 => "ctypes.c_uint8",
        Type::U16 => "ctypes.c_uint16",
        Type::U32 => "ctypes.c_uint32",
        Type::U64 => "ctypes.c_uint64",
        Type::I8 => "ctypes.c_int8",
        Type::I16 => "ctypes.c_int16",
        Type::I32 => "ctypes.c_int32",
        Type::I64 => "ctypes.c_int64",
        Type::F32 => "ctypes.c_float",
        Type::F64 => "ctypes.c_double",
        _ => return None,
    })
}

/// The inclusive range of an integer type.
fn int_range(t: &Type) -> Option<(i128, i128)> {
    let bits = |b: u32, signed: bool| {
        if signed {
            (-(1i128 << (b - 1)), (1i128 << (b - 1)) - 1)
        } else {
            (0, (1i128 << b) - 1)
        }
    };
    Some(match t {
        Type::U8 => bits(8, false),
        Type::U16 => bits(16, false),
        Type::U32 => bits(32, false),
        Type::U64 => bits(64, false),
        Type::I8 => bits(8, true),
        Type::I16 => bits(16, true),
        Type::I32 => bits(32, true),
        Type::I64 => bits(64, true),
        _ => return None,
    })
}

/// A Python string literal of `s`.
fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                write!(out, "\\x{:02x}", c as u32).unwrap();
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A docstring body: the text with `"""` and backslashes made harmless.
fn doc_text(doc: &str) -> String {
    doc.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"")
}

fn docstring(o: &mut String, ind: &str, doc: &str) {
    if doc.trim().is_empty() {
        return;
    }
    let body = doc_text(doc.trim());
    let mut lines = body.lines();
    let first = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        writeln!(o, "{ind}\"\"\"{first}\"\"\"").unwrap();
    } else {
        writeln!(o, "{ind}\"\"\"{first}").unwrap();
        for l in rest {
            if l.is_empty() {
                writeln!(o).unwrap();
            } else {
                writeln!(o, "{ind}{l}").unwrap();
            }
        }
        writeln!(o, "{ind}\"\"\"").unwrap();
    }
}

/// What an answer (or an event) is as C values: the blocking form's out parameters
/// (each a ctypes type, and whether it is a pointer type, read as itself rather than
/// through `.value`) and the expression that makes the Python value of `v0`, `v1`,
/// freeing what is owned.
struct Answer {
    outs: Vec<(String, bool)>,
    take: String,
}

/// The renderer's view of a library: its record and enum names in Python.
struct Cx<'a> {
    lib: &'a Library,
}

impl Cx<'_> {
    /// The Python class of record or enum `c_name`.
    fn class(&self, c_name: &str) -> String {
        let name = match self.lib.type_def(c_name) {
            Some(TypeDef::Record(r)) => &r.name,
            Some(TypeDef::Enum(e)) => &e.name,
            None => c_name,
        };
        self.class_ident(name)
    }

    /// A class name clear of the module's own.
    fn class_ident(&self, name: &str) -> String {
        let p = &self.lib.type_prefix;
        let taken = [
            "Context".to_string(),
            "AsyncContext".to_string(),
            "Subscription".to_string(),
            format!("{p}Error"),
            format!("{p}TimeoutError"),
        ];
        if taken.iter().any(|t| t == name) {
            format!("{name}_")
        } else {
            ident(name)
        }
    }

    /// The type annotation of `t`.
    fn annotation(&self, t: &Type) -> String {
        match t {
            Type::Unit => "None".into(),
            Type::Bool => "bool".into(),
            Type::F32 | Type::F64 => "float".into(),
            Type::Str => "str".into(),
            Type::Bytes => "bytes".into(),
            Type::Option(inner) => format!("Optional[{}]", self.annotation(inner)),
            Type::Vec(inner) => format!("List[{}]", self.annotation(inner)),
            Type::Record(c) | Type::Enum(c) => self.class(c),
            _ => "int".into(),
        }
    }

    /// The ctypes type of one element of an array of `t`.
    fn elem_ctype(&self, t: &Type) -> String {
        match t {
            Type::Str => "ctypes.c_char_p".into(),
            Type::Record(c) => format!("_{c}"),
            Type::Enum(_) => "ctypes.c_int32".into(),
            s => scalar_ctype(s).unwrap_or("ctypes.c_void_p").into(),
        }
    }

    /// The ctypes fields of a slot `name` of type `t`, in the shape `CShape` gives it.
    fn slot_fields(&self, name: &str, t: &Type) -> Vec<(String, String)> {
        let n = ident(name);
        let pair = |ptr: String| {
            vec![
                (n.clone(), ptr),
                (format!("{n}_len"), "ctypes.c_size_t".into()),
            ]
        };
        let value = match t {
            Type::Option(inner) => &**inner,
            t => t,
        };
        match (t, value) {
            (_, Type::Bytes) => pair("_PU8".into()),
            (_, Type::Vec(e)) => pair(format!("ctypes.POINTER({})", self.elem_ctype(e))),
            (Type::Option(_), s) if s.is_scalar() => vec![
                (format!("has_{n}"), "ctypes.c_bool".into()),
                (n, scalar_ctype(s).unwrap_or_default().into()),
            ],
            (Type::Option(_), Type::Str) => vec![(n, "ctypes.c_char_p".into())],
            (Type::Option(_), Type::Record(c)) => vec![(n, format!("ctypes.POINTER(_{c})"))],
            (Type::Option(_), Type::Enum(_)) => vec![(n, "ctypes.POINTER(ctypes.c_int32)".into())],
            (_, v) => vec![(n, self.elem_ctype(v))],
        }
    }

    /// Python expression converting element `v` of an array of `t` to its C element.
    fn elem_in(&self, t: &Type, v: &str) -> String {
        match t {
            Type::Str => format!("_text({v})"),
            Type::Record(c) => format!("_{c}_to_c({v}, keep)"),
            Type::Enum(c) => format!("int({}({v}))", self.class(c)),
            Type::Bool => format!("bool({v})"),
            _ => v.to_string(),
        }
    }

    /// The function that converts a C element of an array of `t` to Python (`None`:
    /// already a Python value).
    fn elem_out(&self, t: &Type) -> Option<String> {
        match t {
            Type::Str => Some("_dec".into()),
            Type::Record(c) => Some(format!("_{c}_from_c")),
            Type::Enum(c) => Some(self.class(c)),
            _ => None,
        }
    }

    /// Statements setting slot `name` of struct `target` from the Python value `e`.
    /// `keep` is the list that keeps what the C struct points to alive for the call.
    fn set_slot(&self, o: &mut String, ind: &str, target: &str, name: &str, t: &Type, e: &str) {
        let n = ident(name);
        let check = |o: &mut String, ind: &str, t: &Type, v: &str| {
            if let Some((lo, hi)) = int_range(t) {
                writeln!(
                    o,
                    "{ind}if not {lo} <= {v} <= {hi}:\n{ind}    _range({}, {v}, {lo}, {hi})",
                    py_str(name)
                )
                .unwrap();
            }
        };
        match t {
            Type::Bool => writeln!(o, "{ind}{target}.{n} = bool({e})").unwrap(),
            s if s.is_scalar() => {
                check(o, ind, s, e);
                writeln!(o, "{ind}{target}.{n} = {e}").unwrap();
            }
            Type::Str => writeln!(o, "{ind}{target}.{n} = _kept(_text({e}), keep)").unwrap(),
            Type::Bytes => writeln!(
                o,
                "{ind}{target}.{n}, {target}.{n}_len = _bytes_in({e}, keep)"
            )
            .unwrap(),
            Type::Vec(el) => writeln!(
                o,
                "{ind}{target}.{n}, {target}.{n}_len = _array_in({}, [{} for _x in {e}], keep)",
                self.elem_ctype(el),
                self.elem_in(el, "_x")
            )
            .unwrap(),
            Type::Record(c) => writeln!(o, "{ind}{target}.{n} = _{c}_to_c({e}, keep)").unwrap(),
            Type::Enum(c) => {
                writeln!(o, "{ind}{target}.{n} = int({}({e}))", self.class(c)).unwrap()
            }
            Type::Option(inner) => {
                writeln!(o, "{ind}if {e} is not None:").unwrap();
                let deeper = format!("{ind}    ");
                match &**inner {
                    Type::Bool => writeln!(
                        o,
                        "{deeper}{target}.has_{n} = True\n{deeper}{target}.{n} = bool({e})"
                    )
                    .unwrap(),
                    s if s.is_scalar() => {
                        writeln!(o, "{deeper}{target}.has_{n} = True").unwrap();
                        check(o, &deeper, s, e);
                        writeln!(o, "{deeper}{target}.{n} = {e}").unwrap();
                    }
                    Type::Record(c) => {
                        writeln!(o, "{deeper}{target}.{n} = _ref(_{c}_to_c({e}, keep), keep)")
                            .unwrap()
                    }
                    Type::Enum(c) => writeln!(
                        o,
                        "{deeper}{target}.{n} = _ref(ctypes.c_int32(int({}({e}))), keep)",
                        self.class(c)
                    )
                    .unwrap(),
                    other => self.set_slot(o, &deeper, target, name, other, e),
                }
            }
            Type::Unit => {}
            _ => unreachable!("every type is handled above"),
        }
    }

    /// The Python value of slot `name` of the C struct `c`.
    fn read_slot(&self, c: &str, name: &str, t: &Type) -> String {
        let n = ident(name);
        let f = format!("{c}.{n}");
        let len = format!("{c}.{n}_len");
        match t {
            s if s.is_scalar() => f,
            Type::Str => format!("_dec({f})"),
            Type::Bytes => format!("_bytes_of({f}, {len})"),
            Type::Vec(el) => match self.elem_out(el) {
                Some(conv) => format!("[{conv}({f}[_i]) for _i in range({len})]"),
                None => format!("({f}[:{len}] if {len} else [])"),
            },
            Type::Record(r) => format!("_{r}_from_c({f})"),
            Type::Enum(e) => format!("{}({f})", self.class(e)),
            Type::Option(inner) => match &**inner {
                s if s.is_scalar() => format!("({f} if {c}.has_{n} else None)"),
                Type::Str => format!("(None if {f} is None else {f}.decode())"),
                Type::Record(r) => format!("(_{r}_from_c({f}[0]) if {f} else None)"),
                Type::Enum(e) => format!("({}({f}[0]) if {f} else None)", self.class(e)),
                other => format!("({} if {f} else None)", self.read_slot(c, name, other)),
            },
            Type::Unit => "None".into(),
            _ => unreachable!("every type is handled above"),
        }
    }

    /// An owned answer of type `t` (the C header's `sync_outs` table).
    fn answer(&self, t: &Type) -> Answer {
        let val = |ct: String, take: String| Answer {
            outs: vec![(ct, false)],
            take,
        };
        let pair = |ptr: (String, bool), take: String| Answer {
            outs: vec![ptr, ("ctypes.c_size_t".into(), false)],
            take,
        };
        let list = |el: &Type| {
            let conv = self.elem_out(el).unwrap_or_else(|| "None".into());
            pair(
                (format!("ctypes.POINTER({})", self.elem_ctype(el)), true),
                format!("_take_list(v0, v1, {conv})"),
            )
        };
        match t {
            Type::Unit => Answer {
                outs: Vec::new(),
                take: "None".into(),
            },
            Type::Str => val("ctypes.c_void_p".into(), "_take_text(v0)".into()),
            Type::Bytes => pair(
                ("ctypes.c_void_p".into(), false),
                "_take_bytes(v0, v1)".into(),
            ),
            Type::Record(c) => Answer {
                outs: vec![(format!("ctypes.POINTER(_{c})"), true)],
                take: format!("_take_opt(v0, _{c}_from_c)"),
            },
            Type::Enum(c) => val("ctypes.c_int32".into(), format!("{}(v0)", self.class(c))),
            Type::Vec(el) => list(el),
            Type::Option(inner) => match &**inner {
                s if s.is_scalar() => Answer {
                    outs: vec![
                        ("ctypes.c_bool".into(), false),
                        (scalar_ctype(s).unwrap_or_default().into(), false),
                    ],
                    take: "(v1 if v0 else None)".into(),
                },
                Type::Enum(c) => Answer {
                    outs: vec![("ctypes.POINTER(ctypes.c_int32)".into(), true)],
                    take: format!("_take_opt(v0, {})", self.class(c)),
                },
                Type::Record(c) => Answer {
                    outs: vec![(format!("ctypes.POINTER(_{c})"), true)],
                    take: format!("_take_opt(v0, _{c}_from_c)"),
                },
                Type::Str => val("ctypes.c_void_p".into(), "_take_opt_text(v0)".into()),
                Type::Bytes => pair(
                    ("ctypes.c_void_p".into(), false),
                    "(_take_bytes(v0, v1) if v0 else None)".into(),
                ),
                Type::Vec(el) => {
                    let mut a = list(el);
                    a.take = format!("({} if v0 else None)", a.take);
                    a
                }
                _ => unreachable!("options of options are refused by the macros"),
            },
            s => val(scalar_ctype(s).unwrap_or_default().into(), "v0".into()),
        }
    }

    /// The Python value of a native answer of type `t` (`msg`, `n`: the callback's
    /// pointer and length), for inline exports.
    fn native(&self, t: &Type) -> String {
        match t {
            Type::Unit => "None".into(),
            s if s.is_scalar() => format!(
                "{}.from_address(msg).value",
                scalar_ctype(s).unwrap_or_default()
            ),
            Type::Str => "ctypes.string_at(msg, n).decode()".into(),
            Type::Bytes => "ctypes.string_at(msg, n)".into(),
            Type::Enum(c) => format!("{}(ctypes.c_int32.from_address(msg).value)", self.class(c)),
            Type::Record(c) => format!("_{c}_from_c(_{c}.from_address(msg))"),
            Type::Vec(el) => {
                let ct = self.elem_ctype(el);
                let arr = format!("({ct} * (n // ctypes.sizeof({ct}))).from_address(msg)");
                match self.elem_out(el) {
                    Some(conv) => format!("[{conv}(_x) for _x in {arr}]"),
                    None => format!("list({arr})"),
                }
            }
            Type::Option(inner) => format!("(None if n == 0 else {})", self.native(inner)),
            _ => unreachable!("every type is handled above"),
        }
    }

    /// The parameter list of `params` (`name: type`, trailing options defaulting to
    /// `None`).
    fn params(&self, params: &[Field]) -> Vec<String> {
        let optional_from = params
            .iter()
            .rposition(|p| !matches!(p.ty, Type::Option(_)))
            .map_or(0, |i| i + 1);
        params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let d = if i >= optional_from { " = None" } else { "" };
                format!("{}: {}{d}", param_ident(&p.name), self.annotation(&p.ty))
            })
            .collect()
    }

    /// The parameters of a call: `params`, then for a blocking one the keyword-only
    /// `timeout` (seconds).
    fn call_params(&self, params: &[Field], blocking: bool) -> Vec<String> {
        let mut ps = self.params(params);
        if blocking {
            ps.push("*".into());
            ps.push("timeout: Optional[float] = None".into());
        }
        ps
    }

    /// The constructor's parameters, then the keyword-only `options`.
    fn ctor_params(&self) -> Vec<String> {
        let mut ps = self.params(&self.lib.ctor.params);
        ps.push("*".into());
        ps.push("options: Optional[Dict[str, int]] = None".into());
        ps
    }

    /// Statements building `_args` (the args struct) from the parameters; `None` when
    /// the function takes none.
    fn args(&self, o: &mut String, ind: &str, f: &Function) -> bool {
        let Some(s) = &f.args_struct else {
            return false;
        };
        // Plain numbers (the hot case) go in through the constructor, after their range
        // checks; anything that points somewhere needs `keep` for the call.
        if f.params.iter().all(|p| p.ty.is_scalar()) {
            for p in &f.params {
                if let Some((lo, hi)) = int_range(&p.ty) {
                    let v = param_ident(&p.name);
                    writeln!(
                        o,
                        "{ind}if not {lo} <= {v} <= {hi}:\n{ind}    _range({}, {v}, {lo}, {hi})",
                        py_str(&p.name)
                    )
                    .unwrap();
                }
            }
            let values: Vec<String> = f.params.iter().map(|p| param_ident(&p.name)).collect();
            writeln!(o, "{ind}_args = _{s}({})", values.join(", ")).unwrap();
            return true;
        }
        writeln!(o, "{ind}keep = []\n{ind}_args = _{s}()").unwrap();
        for p in &f.params {
            self.set_slot(o, ind, "_args", &p.name, &p.ty, &param_ident(&p.name));
        }
        true
    }
}

/// A def line's parts: the name, the parameters after `self`, the return annotation.
struct Sig {
    name: String,
    params: Vec<String>,
    ret: String,
    asynchronous: bool,
}

impl Sig {
    fn line(&self, method: bool) -> String {
        let mut ps = Vec::new();
        if method {
            ps.push("self".to_string());
        }
        ps.extend(self.params.iter().cloned());
        let a = if self.asynchronous { "async " } else { "" };
        format!("{a}def {}({}) -> {}:", self.name, ps.join(", "), self.ret)
    }
}

/// `<name>.py`: the module.
pub fn python_module(lib: &Library) -> String {
    let cx = Cx { lib };
    let n = &lib.name;
    let p = &lib.type_prefix;
    let mut o = String::new();
    writeln!(
        o,
        "# Generated by ffi-dispatch-bindgen from the {n} library's description. Do not edit.\n\
         # Regenerate: ffi-dispatch-bindgen <path to lib{n}> --out <dir> --lang python"
    )
    .unwrap();
    writeln!(o, "\"\"\"{}", doc_text(lib.doc.trim())).unwrap();
    writeln!(
        o,
        "\nPython bindings of the `{n}` library (ffi-dispatch {}): ctypes only, nothing\n\
         serialized. `Context` is for threads (methods block the calling thread, not the GIL),\n\
         `AsyncContext` for asyncio (completion mode: answers reach the loop's thread). The\n\
         library is found by `load(path)`, else ${}_LIBRARY, else the platform's loader.\n\
         Errors raise `{p}Error` (`.code`, `.message`); timeouts `{p}TimeoutError`, which is\n\
         also a `TimeoutError`.\n\"\"\"",
        lib.runtime_version,
        n.to_uppercase()
    )
    .unwrap();
    o.push_str(
        "\nfrom __future__ import annotations\n\n\
         import asyncio\nimport concurrent.futures\nimport ctypes\nimport ctypes.util\nimport dataclasses\n\
         import enum\nimport itertools\nimport math\nimport os\nimport sys\nimport threading\n\
         from typing import Callable, Dict, List, Optional\n\n",
    );
    writeln!(
        o,
        "_LIB = {}\nINTERFACE_HASH = {:#018x}\n",
        py_str(n),
        lib.interface_hash
    )
    .unwrap();
    writeln!(
        o,
        "\nclass {p}Error(Exception):\n    \"\"\"A call that did not answer OK: `code` is the FFID_RET_* status, `message` why.\"\"\"\n\n\
         \x20   def __init__(self, code: int, message: str):\n        super().__init__(message)\n\
         \x20       self.code = code\n        self.message = message\n\n\n\
         class {p}TimeoutError({p}Error, TimeoutError):\n    \"\"\"A blocking call's timeout passed: the call goes on, its answer is dropped.\"\"\"\n\n\
         \x20   def __init__(self, code: int, message: str):\n        {p}Error.__init__(self, code, message)\n\n\n\
         _Error = {p}Error\n_Timeout = {p}TimeoutError\n"
    )
    .unwrap();
    o.push_str(RUNTIME);
    constants(&mut o, lib);
    types(&mut o, &cx);
    prototypes(&mut o, &cx);
    replies(&mut o, &cx);
    contexts(&mut o, &cx);
    free_functions(&mut o, &cx);
    o
}

fn constants(o: &mut String, lib: &Library) {
    if lib.constants.is_empty() {
        return;
    }
    writeln!(o, "\n# ---- constants ----\n").unwrap();
    for c in &lib.constants {
        let v = match &c.value {
            Value::Unsigned(u) => u.to_string(),
            Value::Signed(i) => i.to_string(),
            Value::Float(f) if f.is_nan() => "math.nan".into(),
            Value::Float(f) if f.is_infinite() => {
                format!("{}math.inf", if *f < 0.0 { "-" } else { "" })
            }
            Value::Float(f) => format!("{f:?}"),
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::Str(s) => py_str(s),
        };
        writeln!(o, "{} = {v}", ident(&c.name)).unwrap();
        docstring(o, "", &c.doc);
    }
}

fn types(o: &mut String, cx: &Cx) {
    writeln!(o, "\n# ---- types ----").unwrap();
    for t in &cx.lib.types {
        match t {
            TypeDef::Enum(e) => {
                writeln!(o, "\n\nclass {}(enum.IntEnum):", cx.class_ident(&e.name)).unwrap();
                docstring(o, "    ", &e.doc);
                for v in &e.variants {
                    writeln!(o, "    {} = {}", upper_snake(&v.name), v.value).unwrap();
                    docstring(o, "    ", &v.doc);
                }
            }
            TypeDef::Record(r) => {
                let c = &r.c_name;
                let class = cx.class_ident(&r.name);
                // The C mirror.
                writeln!(o, "\n\nclass _{c}(ctypes.Structure):\n    \"\"\"{c}, as the C header declares it.\"\"\"\n").unwrap();
                writeln!(o, "    _fields_ = [").unwrap();
                for f in &r.fields {
                    for (name, ct) in cx.slot_fields(&f.name, &f.ty) {
                        writeln!(o, "        ({}, {ct}),", py_str(&name)).unwrap();
                    }
                }
                writeln!(o, "    ]").unwrap();
                // The Python value.
                writeln!(o, "\n\n@dataclasses.dataclass\nclass {class}:").unwrap();
                docstring(o, "    ", &r.doc);
                let optional_from = r
                    .fields
                    .iter()
                    .rposition(|f| !matches!(f.ty, Type::Option(_)))
                    .map_or(0, |i| i + 1);
                for (i, f) in r.fields.iter().enumerate() {
                    let d = if i >= optional_from { " = None" } else { "" };
                    writeln!(o, "    {}: {}{d}", ident(&f.name), cx.annotation(&f.ty)).unwrap();
                    docstring(o, "    ", &f.doc);
                }
                if r.fields.is_empty() {
                    writeln!(o, "    pass").unwrap();
                }
                // Both ways.
                writeln!(o, "\n\ndef _{c}_to_c(v, keep):\n    c = _{c}()").unwrap();
                for f in &r.fields {
                    cx.set_slot(
                        o,
                        "    ",
                        "c",
                        &f.name,
                        &f.ty,
                        &format!("v.{}", ident(&f.name)),
                    );
                }
                writeln!(
                    o,
                    "    return c\n\n\ndef _{c}_from_c(c):\n    return {class}("
                )
                .unwrap();
                for f in &r.fields {
                    writeln!(o, "        {},", cx.read_slot("c", &f.name, &f.ty)).unwrap();
                }
                writeln!(o, "    )").unwrap();
            }
        }
    }
    // The args structs.
    for f in cx.lib.functions() {
        let Some(s) = &f.args_struct else { continue };
        writeln!(o, "\n\nclass _{s}(ctypes.Structure):\n    _fields_ = [").unwrap();
        for p in &f.params {
            for (name, ct) in cx.slot_fields(&p.name, &p.ty) {
                writeln!(o, "        ({}, {ct}),", py_str(&name)).unwrap();
            }
        }
        writeln!(o, "    ]").unwrap();
    }
}

/// The export prototypes `_Api` sets, and the typed callbacks' function types.
fn prototypes(o: &mut String, cx: &Cx) {
    let lib = cx.lib;
    let n = &lib.name;
    writeln!(o, "\n\n# ---- exports ----\n").unwrap();
    for f in lib.methods.iter().chain(&lib.statics) {
        let Some(typed) = &f.typed else { continue };
        let mut ts = vec!["None".to_string(), "ctypes.c_int".into()];
        ts.extend(reply_value_types(cx, &f.ret));
        ts.extend(["ctypes.c_void_p".into(), "ctypes.c_void_p".into()]);
        writeln!(
            o,
            "_{} = ctypes.CFUNCTYPE({})",
            typed.callback,
            ts.join(", ")
        )
        .unwrap();
    }
    for e in &lib.events {
        let mut ts = vec!["None".to_string()];
        ts.extend(reply_value_types(cx, &e.ty));
        ts.push("ctypes.c_void_p".into());
        writeln!(
            o,
            "_{} = ctypes.CFUNCTYPE({})",
            e.typed.callback,
            ts.join(", ")
        )
        .unwrap();
    }
    writeln!(o, "\n_PROTOTYPES = [").unwrap();
    // The call forms, which the module calls with ctypes objects (see `_Api`).
    let hot: Vec<&str> = lib
        .methods
        .iter()
        .chain(&lib.statics)
        .flat_map(|f| {
            [
                f.sync_export.as_deref(),
                f.typed.as_ref().map(|t| t.export.as_str()),
            ]
        })
        .flatten()
        .collect();
    let mut proto = |name: &str, ret: &str, args: &[String]| {
        let hot = if hot.contains(&name) { "True" } else { "False" };
        writeln!(
            o,
            "    ({}, {ret}, [{}], {hot}),",
            py_str(name),
            args.join(", ")
        )
        .unwrap();
    };
    let s = |v: &str| v.to_string();
    proto(
        "ffid_options_init",
        "ctypes.c_int",
        &[s("ctypes.POINTER(_Options)")],
    );
    proto(&format!("{n}_interface_hash"), "ctypes.c_uint64", &[]);
    proto(&format!("{n}_last_error"), "ctypes.c_char_p", &[]);
    proto(&format!("{n}_free"), "None", &[s("ctypes.c_void_p")]);
    proto(&format!("{n}_last_request_id"), "ctypes.c_uint64", &[]);
    proto(
        &format!("{n}_cancel"),
        "ctypes.c_int",
        &[s("ctypes.c_void_p"), s("ctypes.c_uint64")],
    );
    proto(
        &format!("{n}_destroy"),
        "ctypes.c_int",
        &[s("ctypes.c_void_p")],
    );
    proto(
        &format!("{n}_drain"),
        "ctypes.c_int",
        &[s("ctypes.c_void_p"), s("ctypes.c_uint32")],
    );
    proto(
        &format!("{n}_completion_fd"),
        "ctypes.c_int",
        &[s("ctypes.c_void_p")],
    );
    proto(
        &format!("{n}_stats"),
        "ctypes.c_int",
        &[s("ctypes.c_void_p"), s("ctypes.POINTER(_Stats)")],
    );
    if !lib.events.is_empty() {
        proto(
            &format!("{n}_remove_listener"),
            "ctypes.c_int",
            &[s("ctypes.c_void_p"), s("ctypes.c_uint64")],
        );
    }
    let ctor = &lib.ctor;
    let mut args = vec![s("ctypes.c_uint64"), s("_Callback"), s("ctypes.c_void_p")];
    if let Some(a) = &ctor.args_struct {
        args.push(format!("ctypes.POINTER(_{a})"));
    }
    args.push(s("ctypes.POINTER(_Options)"));
    proto(&ctor.export, "ctypes.c_void_p", &args);
    for (f, has_ctx) in lib
        .methods
        .iter()
        .map(|f| (f, true))
        .chain(lib.statics.iter().map(|f| (f, false)))
    {
        let head = |tail: Vec<String>| {
            let mut a = Vec::new();
            if has_ctx {
                a.push(s("ctypes.c_void_p"));
            }
            if let Some(st) = &f.args_struct {
                a.push(format!("ctypes.POINTER(_{st})"));
            }
            a.extend(tail);
            a
        };
        if let Some(sync) = &f.sync_export {
            let mut tail: Vec<String> = cx
                .answer(&f.ret)
                .outs
                .iter()
                .map(|(t, _)| format!("ctypes.POINTER({t})"))
                .collect();
            tail.push(s("ctypes.c_uint32"));
            proto(sync, "ctypes.c_int", &head(tail));
        }
        if let Some(typed) = &f.typed {
            proto(
                &typed.export,
                "ctypes.c_int",
                &head(vec![format!("_{}", typed.callback), s("ctypes.c_void_p")]),
            );
        }
    }
    for f in &lib.inlines {
        let mut a = vec![s("_Callback"), s("ctypes.c_void_p")];
        if let Some(st) = &f.args_struct {
            a.push(format!("ctypes.POINTER(_{st})"));
        }
        proto(&f.export, "ctypes.c_int", &a);
    }
    for e in &lib.events {
        proto(
            &e.typed.export,
            "ctypes.c_uint64",
            &[
                s("ctypes.c_void_p"),
                format!("_{}", e.typed.callback),
                s("ctypes.c_void_p"),
            ],
        );
    }
    writeln!(o, "]").unwrap();
}

/// The values a typed reply or listener gets for an answer of type `t`, as ctypes
/// types: what the blocking form's out parameters point to.
fn reply_value_types(cx: &Cx, t: &Type) -> Vec<String> {
    cx.answer(t).outs.into_iter().map(|(t, _)| t).collect()
}

/// The typed replies of the asyncio methods and the listeners' adapters.
fn replies(o: &mut String, cx: &Cx) {
    let lib = cx.lib;
    writeln!(o, "\n\n# ---- typed replies (run where the answer is delivered: in completion mode, the draining loop) ----").unwrap();
    for f in lib.methods.iter().chain(&lib.statics) {
        let Some(typed) = &f.typed else { continue };
        let a = cx.answer(&f.ret);
        let vs: Vec<String> = (0..a.outs.len()).map(|i| format!("v{i}")).collect();
        let vals = vs.iter().map(|v| format!("{v}, ")).collect::<String>();
        let key = typed.export.to_uppercase();
        writeln!(
            o,
            "\n\ndef _{exp}_reply(ret, {vals}msg, ud):\n\
             \x20   if ret == RET_STALE_WARN:\n        return\n\
             \x20   try:\n        value = {take} if ret == RET_OK else None\n\
             \x20   except BaseException as e:  # an answer Python cannot hold (never raised into ctypes)\n\
             \x20       _settle_raised(ud, e)\n        return\n\
             \x20   _settle(ud, ret, value, _message(msg))\n\n\n\
             _{key} = _{cb}(_{exp}_reply)",
            exp = typed.export,
            take = a.take,
            cb = typed.callback,
        )
        .unwrap();
    }
    for e in &lib.events {
        let a = cx.answer(&e.ty);
        let vs: Vec<String> = (0..a.outs.len()).map(|i| format!("v{i}")).collect();
        let vals = vs.iter().map(|v| format!("{v}, ")).collect::<String>();
        writeln!(
            o,
            "\n\ndef _{exp}_adapter(fn):\n    # Frees the event's owned values, then hands the Python value to fn.\n\
             \x20   def listener({vals}ud):\n        _call_listener(fn, {take})\n\n    return _{cb}(listener)",
            exp = e.typed.export,
            take = a.take,
            cb = e.typed.callback,
        )
        .unwrap();
    }
}

/// `Context` and `AsyncContext`.
fn contexts(o: &mut String, cx: &Cx) {
    let lib = cx.lib;
    let ctor = &lib.ctor;
    for asynchronous in [false, true] {
        let (class, base) = if asynchronous {
            ("AsyncContext", "_AsyncContext")
        } else {
            ("Context", "_Context")
        };
        writeln!(o, "\n\nclass {class}({base}):").unwrap();
        docstring(
            o,
            "    ",
            &format!("{}\n\n{}", lib.doc.trim(), base_doc(asynchronous)),
        );
        // The constructor.
        let ps = cx.ctor_params();
        writeln!(o, "\n    def __init__(self, {}) -> None:", ps.join(", ")).unwrap();
        docstring(
            o,
            "        ",
            &format!(
                "{}\n\noptions: ffid_options fields by name (OPTION_NAMES), e.g. {{\"ring_capacity\": 64}}.{}",
                ctor.doc.trim(),
                if asynchronous {
                    " Needs a running loop; await the context (or `async with` it) for the constructor's outcome."
                } else {
                    " Waits for the constructor's outcome: raises its error."
                }
            ),
        );
        let has_args = cx.args(o, "        ", ctor);
        let cfg = if has_args { "_byref(_args), " } else { "" };
        writeln!(
            o,
            "        self._create(lambda cb, ud, opts: _A.{}(INTERFACE_HASH, cb, ud, {cfg}opts), options)",
            ctor.export
        )
        .unwrap();
        if asynchronous {
            writeln!(
                o,
                "\n    @classmethod\n    async def create(cls, {}) -> \"AsyncContext\":\n        \"\"\"Creates a context and waits for the constructor's outcome.\"\"\"\n        return await cls({}options=options)",
                ps.join(", "),
                ctor.params.iter().map(|p| format!("{}, ", param_ident(&p.name))).collect::<String>()
            )
            .unwrap();
        }
        for f in &lib.methods {
            method(o, cx, f, asynchronous);
        }
        for e in &lib.events {
            let name = format!("listen_{}", e.name);
            writeln!(
                o,
                "\n    def {name}(self, listener: Callable[[{}], None]) -> Subscription:",
                cx.annotation(&e.ty)
            )
            .unwrap();
            docstring(
                o,
                "        ",
                &format!(
                    "{}\n\nCalls listener with each event until the subscription is closed.{}",
                    e.doc.trim(),
                    if asynchronous {
                        " It runs on the loop's thread."
                    } else {
                        " It runs on the context's event thread (with the GIL)."
                    }
                ),
            );
            writeln!(
                o,
                "        return self._listen_with(_A.{}, _{}_adapter, listener)",
                e.typed.export, e.typed.export
            )
            .unwrap();
        }
    }
}

fn base_doc(asynchronous: bool) -> &'static str {
    if asynchronous {
        "A context for asyncio: its methods are coroutines answered on the loop's thread (completion mode)."
    } else {
        "A context for threads: its methods block the calling thread (the GIL is released) until the answer; `timeout` is in seconds (None: no limit)."
    }
}

/// One method on `Context` (blocking) or `AsyncContext` (a coroutine).
fn method(o: &mut String, cx: &Cx, f: &Function, asynchronous: bool) {
    let sig = Sig {
        name: method_ident(&f.name),
        params: cx.call_params(&f.params, !asynchronous),
        ret: cx.annotation(&f.ret),
        asynchronous,
    };
    writeln!(o, "\n    {}", sig.line(true)).unwrap();
    docstring(o, "        ", &f.doc);
    let has_args = cx.args(o, "        ", f);
    let args = if has_args { "_byref(_args), " } else { "" };
    if asynchronous {
        let typed = f.typed.as_ref().expect("every method has a typed form");
        writeln!(
            o,
            "        return await self._call(lambda ctx, ud: _A.{}(ctx, {args}_{}, ud))",
            typed.export,
            typed.export.to_uppercase()
        )
        .unwrap();
    } else {
        blocking_call(o, "        ", cx, f, "self._cv, ", args);
    }
}

/// The body of a blocking call through the `_sync` form.
fn blocking_call(o: &mut String, ind: &str, cx: &Cx, f: &Function, ctx: &str, args: &str) {
    let sync = f
        .sync_export
        .as_ref()
        .expect("every method has a blocking form");
    let a = cx.answer(&f.ret);
    let mut outs = String::new();
    for (i, (t, _)) in a.outs.iter().enumerate() {
        writeln!(o, "{ind}_o{i} = {t}()").unwrap();
        write!(outs, "_byref(_o{i}), ").unwrap();
    }
    writeln!(
        o,
        "{ind}_rc = _A.{sync}({ctx}{args}{outs}0 if timeout is None else _ms(timeout))\n{ind}if _rc:\n{ind}    _fail(_rc)"
    )
    .unwrap();
    for (i, (_, pointer)) in a.outs.iter().enumerate() {
        let v = if *pointer {
            format!("_o{i}")
        } else {
            format!("_o{i}.value")
        };
        writeln!(o, "{ind}v{i} = {v}").unwrap();
    }
    writeln!(o, "{ind}return {}", a.take).unwrap();
}

/// Static methods (blocking, no context) and inline exports.
fn free_functions(o: &mut String, cx: &Cx) {
    let lib = cx.lib;
    if !lib.statics.is_empty() || !lib.inlines.is_empty() {
        writeln!(o, "\n\n# ---- functions without a context ----").unwrap();
    }
    for f in &lib.statics {
        writeln!(
            o,
            "\n\ndef {}({}) -> {}:",
            ident(&f.name),
            cx.call_params(&f.params, true).join(", "),
            cx.annotation(&f.ret)
        )
        .unwrap();
        docstring(
            o,
            "    ",
            &format!(
                "{}\n\nBlocks until the answer (served by the library's static context).",
                f.doc.trim()
            ),
        );
        writeln!(o, "    _api()").unwrap();
        let has_args = cx.args(o, "    ", f);
        let args = if has_args { "_byref(_args), " } else { "" };
        blocking_call(o, "    ", cx, f, "", args);
    }
    for f in &lib.inlines {
        let ps = cx.params(&f.params);
        let key = f.export.to_uppercase();
        writeln!(
            o,
            "\n\ndef _{exp}_answer(ret, msg, n, ud):\n    # Called on the calling thread before the export returns.\n\
             \x20   try:\n        _INLINE.answer = (ret, {value} if ret == RET_OK else _message(msg, n))\n\
             \x20   except BaseException as e:\n        _INLINE.answer = (RET_ERR, f\"undecodable answer: {{e}}\")\n\n\n\
             _{key} = _Callback(_{exp}_answer)",
            exp = f.export,
            value = cx.native(&f.ret),
        )
        .unwrap();
        writeln!(
            o,
            "\n\ndef {}({}) -> {}:",
            ident(&f.name),
            ps.join(", "),
            cx.annotation(&f.ret)
        )
        .unwrap();
        docstring(
            o,
            "    ",
            &format!(
                "{}\n\nInline: answered on the calling thread.",
                f.doc.trim()
            ),
        );
        writeln!(o, "    _api()").unwrap();
        let has_args = cx.args(o, "    ", f);
        let args = if has_args { ", _byref(_args)" } else { "" };
        writeln!(
            o,
            "    _INLINE.answer = None\n    _rc = _A.{}(_{key}, None{args})\n    if _rc:\n        raise _refused(_rc)\n\
             \x20   ret, value = _INLINE.answer\n    if ret != RET_OK:\n        raise _Error(ret, value)\n    return value",
            f.export
        )
        .unwrap();
    }
}

/// Parameters as a stub spells them: defaults as `...`.
fn stub(params: Vec<String>) -> Vec<String> {
    params
        .into_iter()
        .map(|p| p.replace(" = None", " = ..."))
        .collect()
}

/// `<name>.pyi`: the module's type stubs.
pub fn python_stubs(lib: &Library) -> String {
    let cx = Cx { lib };
    let p = &lib.type_prefix;
    let mut o = String::new();
    writeln!(
        o,
        "# Type stubs of {n}.py, generated by ffi-dispatch-bindgen. Do not edit.\n\n\
         import enum\nfrom typing import Any, Callable, Dict, List, Optional, Tuple\n\n\
         INTERFACE_HASH: int\nRET_OK: int\nRET_ERR: int\nRET_MISSING_CALLBACK: int\nRET_STALE_WARN: int\n\
         RET_BUSY: int\nRET_TIMEOUT: int\nRET_CLOSED: int\nRET_INVALID_CTX: int\nRET_TOO_LARGE: int\nOPTION_NAMES: Tuple[str, ...]\n\n\
         def load(path: Optional[str] = ...) -> str: ...\n\n\
         class {p}Error(Exception):\n    code: int\n    message: str\n    def __init__(self, code: int, message: str) -> None: ...\n\n\
         class {p}TimeoutError({p}Error, TimeoutError): ...\n\n\
         class Subscription:\n    @property\n    def active(self) -> bool: ...\n    def close(self) -> None: ...\n\
         \x20   def __enter__(self) -> Subscription: ...\n    def __exit__(self, *exc: Any) -> None: ...\n",
        n = lib.name
    )
    .unwrap();
    for c in &lib.constants {
        let t = match &c.value {
            Value::Unsigned(_) | Value::Signed(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Str(_) => "str",
        };
        writeln!(o, "{}: {t}", ident(&c.name)).unwrap();
    }
    for t in &lib.types {
        match t {
            TypeDef::Enum(e) => {
                writeln!(o, "\nclass {}(enum.IntEnum):", cx.class_ident(&e.name)).unwrap();
                for v in &e.variants {
                    writeln!(o, "    {} = {}", upper_snake(&v.name), v.value).unwrap();
                }
            }
            TypeDef::Record(r) => {
                writeln!(o, "\nclass {}:", cx.class_ident(&r.name)).unwrap();
                for f in &r.fields {
                    writeln!(o, "    {}: {}", ident(&f.name), cx.annotation(&f.ty)).unwrap();
                }
                let ps = stub(cx.params(&r.fields));
                writeln!(o, "    def __init__(self, {}) -> None: ...", ps.join(", ")).unwrap();
            }
        }
    }
    let common = "    @property\n    def handle(self) -> Optional[int]: ...\n    @property\n    def closed(self) -> bool: ...\n\
                  \x20   def stats(self) -> Dict[str, int]: ...\n    def close(self) -> None: ...\n";
    let ctor = stub(cx.ctor_params()).join(", ");
    for asynchronous in [false, true] {
        let class = if asynchronous {
            "AsyncContext"
        } else {
            "Context"
        };
        writeln!(
            o,
            "\nclass {class}:\n    def __init__(self, {ctor}) -> None: ...\n{common}"
        )
        .unwrap();
        if asynchronous {
            writeln!(
                o,
                "    @classmethod\n    async def create(cls, {ctor}) -> AsyncContext: ...\n\
                 \x20   async def aclose(self) -> None: ...\n\
                 \x20   def __await__(self) -> Any: ...\n\
                 \x20   async def __aenter__(self) -> AsyncContext: ...\n\
                 \x20   async def __aexit__(self, *exc: Any) -> None: ..."
            )
            .unwrap();
        } else {
            writeln!(o, "    def __enter__(self) -> Context: ...\n    def __exit__(self, *exc: Any) -> None: ...").unwrap();
        }
        for f in &lib.methods {
            let sig = Sig {
                name: method_ident(&f.name),
                params: stub(cx.call_params(&f.params, !asynchronous)),
                ret: cx.annotation(&f.ret),
                asynchronous,
            };
            writeln!(o, "    {} ...", sig.line(true)).unwrap();
        }
        for e in &lib.events {
            writeln!(
                o,
                "    def listen_{}(self, listener: Callable[[{}], None]) -> Subscription: ...",
                e.name,
                cx.annotation(&e.ty)
            )
            .unwrap();
        }
    }
    let free = lib.statics.iter().map(|f| (f, true));
    for (f, blocking) in free.chain(lib.inlines.iter().map(|f| (f, false))) {
        let ps = stub(cx.call_params(&f.params, blocking));
        writeln!(
            o,
            "\ndef {}({}) -> {}: ...",
            ident(&f.name),
            ps.join(", "),
            cx.annotation(&f.ret)
        )
        .unwrap();
    }
    o
}
