//! The C names a library's header declares, spelled by one set of `const fn`s: the
//! compile-time collision check ([`check`], which `#[library]` runs in a `const`), the
//! macro's exports and the model ([`crate::model`], which the renderers print) all use
//! them, so the names the check passed are the names the library exports and the header
//! declares. (The runtime exports, [`RUNTIME_EXPORTS`], are `<lib>_<export>` everywhere.)
//!
//! | item | C name |
//! |---|---|
//! | export of function `f` (its CBOR twin, its blocking and typed forms) | `<lib>_<f>` (`<lib>_<f>_cbor`, `<lib>_<f>_sync`, `<lib>_<f>_async`) |
//! | typed reply callback of function `f` | `<Prefix><F>Reply` |
//! | a runtime export (see [`RUNTIME_EXPORTS`]) | `<lib>_<export>` |
//! | listener functions of event `e` | `<lib>_add_<e>_listener` (`_cbor`), typed `<lib>_listen_<e>` |
//! | typed listener of event `e` | `<Prefix><E>Listener` |
//! | record or enum `T` | `<Prefix><T>`, or `T` when it already starts with `<Prefix>` and a capital |
//! | value `V` of enum `T` | `SCREAMING(<C name of T>)_SCREAMING(V)` |
//! | args struct of function `f`, the constructor's | `<Prefix><F>Args`, `<Prefix>Config` (spelled by the macro) |
//! | constant `NAME` | `<LIB>_<NAME>` |
//! | include guard, interface hash | `<LIB>_H`, `<LIB>_INTERFACE_HASH` |
//!
//! `SCREAMING` upper-cases and puts `_` before each capital that follows a lower-case
//! letter or a digit (`KvKind` -> `KV_KIND`, `maxKeys2` -> `MAX_KEYS2`, `MAX_KEYS`
//! stays, and so does a run of capitals: `HTTPGet` -> `HTTPGET`).
//!
//! The library's name may not be `ffid` or `ffi_dispatch` (the macro refuses them): the
//! runtime's header declares `ffid_*`, `FFID_*` and `FFI_DISPATCH_H`.

use crate::{EnumDesc, LibraryDesc, RecordDesc, Ty};

/// The longest C name the check accepts, in bytes.
pub const MAX_LEN: usize = 120;

/// What every library's header declares besides its functions, as `<lib>_<name>` (the
/// exports, and the `static inline` create wrappers); no function, event or type may
/// take these names.
pub const RUNTIME_EXPORTS: &[&str] = &[
    "create",
    "create_cbor",
    "create_with_options",
    "create_cbor_with_options",
    "create_checked",
    "create_cbor_checked",
    "destroy",
    "stats",
    "cancel",
    "last_request_id",
    "drain",
    "completion_fd",
    "add_event_listener",
    "remove_listener",
    "last_error",
    "free",
    "interface_hash",
    "ffid_describe",
];

/// How a piece of a C name is printed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    /// As written.
    Plain,
    /// SCREAMING (see the module docs).
    Screaming,
    /// Camel: `snake_name` -> `SnakeName` (as the macro spells args structs).
    Camel,
}

/// C and C++ keywords (and the names `<stdbool.h>` defines): not usable as field or
/// parameter names, since they become C struct fields (the macros refuse them), and
/// renamed in the C++ binding where a function or type takes one.
pub const C_KEYWORDS: &[&str] = &[
    "alignas",
    "alignof",
    "and",
    "and_eq",
    "asm",
    "auto",
    "bitand",
    "bitor",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "char8_t",
    "char16_t",
    "char32_t",
    "class",
    "co_await",
    "co_return",
    "co_yield",
    "compl",
    "concept",
    "const",
    "const_cast",
    "consteval",
    "constexpr",
    "constinit",
    "continue",
    "decltype",
    "default",
    "delete",
    "do",
    "double",
    "dynamic_cast",
    "else",
    "enum",
    "explicit",
    "export",
    "extern",
    "false",
    "float",
    "for",
    "friend",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "not_eq",
    "nullptr",
    "operator",
    "or",
    "or_eq",
    "private",
    "protected",
    "public",
    "register",
    "reinterpret_cast",
    "requires",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "static_assert",
    "static_cast",
    "struct",
    "switch",
    "template",
    "this",
    "thread_local",
    "throw",
    "true",
    "try",
    "typedef",
    "typeid",
    "typename",
    "typeof",
    "union",
    "unsigned",
    "using",
    "virtual",
    "void",
    "volatile",
    "wchar_t",
    "while",
    "xor",
    "xor_eq",
    "_Alignas",
    "_Alignof",
    "_Atomic",
    "_Bool",
    "_Complex",
    "_Generic",
    "_Imaginary",
    "_Noreturn",
    "_Static_assert",
    "_Thread_local",
];

/// A C name as up to six pieces, each printed as written, in SCREAMING or in Camel case.
#[derive(Clone, Copy)]
pub struct CName<'a> {
    pieces: [(&'a str, Case); 6],
    count: usize,
}

impl<'a> CName<'a> {
    const fn new() -> Self {
        CName {
            pieces: [("", Case::Plain); 6],
            count: 0,
        }
    }

    const fn then(self, text: &'a str, screaming: bool) -> Self {
        self.piece(
            text,
            if screaming {
                Case::Screaming
            } else {
                Case::Plain
            },
        )
    }

    const fn piece(mut self, text: &'a str, case: Case) -> Self {
        self.pieces[self.count] = (text, case);
        self.count += 1;
        self
    }

    /// `<Prefix><Name>Reply`: the typed reply callback of function `name` (beside its
    /// args struct, `<Prefix><Name>Args`).
    pub const fn reply_type(prefix: &'a str, name: &'a str) -> Self {
        CName::new()
            .then(prefix, false)
            .piece(name, Case::Camel)
            .then("Reply", false)
    }

    /// `<Prefix><Event>Listener`: the typed listener of event `event`.
    pub const fn listener_type(prefix: &'a str, event: &'a str) -> Self {
        CName::new()
            .then(prefix, false)
            .piece(event, Case::Camel)
            .then("Listener", false)
    }

    /// `<lib>_listen_<event>`: adds a typed listener.
    pub const fn typed_listener(lib: &'a str, event: &'a str) -> Self {
        CName::new()
            .then(lib, false)
            .then("_listen_", false)
            .then(event, false)
    }

    /// `<lib>_<name><suffix>`: an export.
    pub const fn export(lib: &'a str, name: &'a str, suffix: &'a str) -> Self {
        CName::new()
            .then(lib, false)
            .then("_", false)
            .then(name, false)
            .then(suffix, false)
    }

    /// `<lib>_add_<event>_listener<suffix>`.
    pub const fn listener(lib: &'a str, event: &'a str, suffix: &'a str) -> Self {
        CName::new()
            .then(lib, false)
            .then("_add_", false)
            .then(event, false)
            .then("_listener", false)
            .then(suffix, false)
    }

    /// The C name of a record or enum: the type prefix, then the Rust name (unless it
    /// already starts with the prefix and a capital).
    pub const fn type_name(prefix: &'a str, rust: &'a str) -> Self {
        let (p, r) = (prefix.as_bytes(), rust.as_bytes());
        if r.len() > p.len() && starts_with(r, p) && r[p.len()].is_ascii_uppercase() {
            CName::new().then(rust, false)
        } else {
            CName::new().then(prefix, false).then(rust, false)
        }
    }

    /// A C name given whole (an args struct the macro spelled).
    pub const fn verbatim(name: &'a str) -> Self {
        CName::new().then(name, false)
    }

    /// The constant of value `variant` of enum `rust`.
    pub const fn enum_value(prefix: &'a str, rust: &'a str, variant: &'a str) -> Self {
        let mut n = CName::type_name(prefix, rust);
        let mut i = 0;
        while i < n.count {
            n.pieces[i].1 = Case::Screaming;
            i += 1;
        }
        n.then("_", false).then(variant, true)
    }

    /// `<LIB>_<NAME>`: a constant or another macro of the header (`H`,
    /// `INTERFACE_HASH`).
    pub const fn macro_name(lib: &'a str, name: &'a str) -> Self {
        CName::new()
            .then(lib, true)
            .then("_", false)
            .then(name, true)
    }

    /// Writes the name into `out`; returns its length.
    ///
    /// # Panics
    /// When it is longer than [`MAX_LEN`] (at compile time: a compile error).
    pub const fn render(&self, out: &mut [u8; MAX_LEN]) -> usize {
        let mut len = 0;
        // Whether the last byte written came from a lower-case letter or a digit: a
        // capital after one starts a new SCREAMING word.
        let mut after_lower = false;
        let mut p = 0;
        while p < self.count {
            let (text, case) = self.pieces[p];
            let screaming = matches!(case, Case::Screaming);
            let bytes = text.as_bytes();
            let mut i = 0;
            // Camel: a letter that starts a word is upper-cased; `_`s are dropped.
            let mut word_start = true;
            while i < bytes.len() {
                let b = bytes[i];
                i += 1;
                if matches!(case, Case::Camel) {
                    if b == b'_' {
                        word_start = true;
                        continue;
                    }
                    let c = if word_start {
                        b.to_ascii_uppercase()
                    } else {
                        b
                    };
                    word_start = false;
                    len = put(out, len, c);
                    continue;
                }
                if screaming && b.is_ascii_uppercase() && after_lower {
                    len = put(out, len, b'_');
                }
                after_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
                len = put(out, len, if screaming { b.to_ascii_uppercase() } else { b });
            }
            p += 1;
        }
        len
    }
}

impl std::fmt::Display for CName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buf = [0; MAX_LEN];
        let len = self.render(&mut buf);
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| std::fmt::Error)?)
    }
}

const fn put(out: &mut [u8; MAX_LEN], len: usize, b: u8) -> usize {
    if len == MAX_LEN {
        panic!("ffi-dispatch: a C name is longer than 120 bytes; shorten the item's name");
    }
    out[len] = b;
    len + 1
}

const fn starts_with(s: &[u8], prefix: &[u8]) -> bool {
    if s.len() < prefix.len() {
        return false;
    }
    let mut i = 0;
    while i < prefix.len() {
        if s[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && starts_with(a, b)
}

// ---- the check ------------------------------------------------------------------------------

/// The most C names one library may declare (the check's table is this big).
const MAX_NAMES: usize = 1024;

/// Who holds a C name: a description for the error, and for records and enums the type
/// (reached again through another field, it is the same type, not a second holder).
#[derive(Clone, Copy)]
struct Holder<'a> {
    what: &'a str,
    rust: &'a str,
    /// What it belongs to (an enum value's enum), for the error.
    of: Option<&'a str>,
    record: Option<&'a RecordDesc>,
    enumeration: Option<&'a EnumDesc>,
}

impl<'a> Holder<'a> {
    const fn new(what: &'a str, rust: &'a str) -> Self {
        Holder {
            what,
            rust,
            of: None,
            record: None,
            enumeration: None,
        }
    }
}

#[derive(Clone, Copy)]
struct Entry<'a> {
    name: [u8; MAX_LEN],
    len: usize,
    holder: Holder<'a>,
}

struct Table<'a> {
    lib: &'a str,
    entries: [Entry<'a>; MAX_NAMES],
    count: usize,
}

impl<'a> Table<'a> {
    /// Takes `name` for `holder`; a compile error if another item has it.
    const fn claim(&mut self, name: CName<'a>, holder: Holder<'a>) {
        let mut buf = [0; MAX_LEN];
        let len = name.render(&mut buf);
        let mut i = 0;
        while i < self.count {
            let e = &self.entries[i];
            if same(e.name.split_at(e.len).0, buf.split_at(len).0) {
                collision(self.lib, buf.split_at(len).0, &e.holder, &holder);
            }
            i += 1;
        }
        if self.count == MAX_NAMES {
            panic!("ffi-dispatch: a library declares more than 1024 C names");
        }
        self.entries[self.count] = Entry {
            name: buf,
            len,
            holder,
        };
        self.count += 1;
    }

    /// Whether this record or enum was claimed already (reached through another slot).
    const fn has_type(&self, record: Option<&RecordDesc>, enumeration: Option<&EnumDesc>) -> bool {
        let mut i = 0;
        while i < self.count {
            let h = &self.entries[i].holder;
            match (record, h.record) {
                (Some(a), Some(b)) if same_record(a, b) => return true,
                _ => {}
            }
            match (enumeration, h.enumeration) {
                (Some(a), Some(b)) if same_enum(a, b) => return true,
                _ => {}
            }
            i += 1;
        }
        false
    }

    const fn ty(&mut self, prefix: &'a str, t: &'a Ty) {
        match t {
            Ty::Option(inner) | Ty::Vec(inner) => self.ty(prefix, inner),
            Ty::Record(r) => {
                if self.has_type(Some(r), None) {
                    return;
                }
                let mut holder = Holder::new("record", r.name);
                holder.record = Some(r);
                self.claim(CName::type_name(prefix, r.name), holder);
                let mut i = 0;
                while i < r.fields.len() {
                    self.ty(prefix, r.fields[i].ty);
                    i += 1;
                }
            }
            Ty::Enum(e) => {
                if self.has_type(None, Some(e)) {
                    return;
                }
                let mut holder = Holder::new("enum", e.name);
                holder.enumeration = Some(e);
                self.claim(CName::type_name(prefix, e.name), holder);
                let mut i = 0;
                while i < e.variants.len() {
                    let v = e.variants[i].0;
                    let name = CName::enum_value(prefix, e.name, v);
                    let mut value = Holder::new("value", v);
                    value.of = Some(e.name);
                    self.claim(name, value);
                    i += 1;
                }
            }
            _ => {}
        }
    }

    const fn function(
        &mut self,
        lib: &'a LibraryDesc,
        f: &'a crate::FnDesc,
        what: &'a str,
        blocking: bool,
    ) {
        self.claim(
            CName::export(lib.name, f.name, ""),
            Holder::new(what, f.name),
        );
        let cbor = Holder::new("the CBOR export of", f.name);
        self.claim(CName::export(lib.name, f.name, "_cbor"), cbor);
        if blocking {
            let sync = Holder::new("the blocking export of", f.name);
            self.claim(CName::export(lib.name, f.name, "_sync"), sync);
            let typed = Holder::new("the typed export of", f.name);
            self.claim(CName::export(lib.name, f.name, "_async"), typed);
            let reply = Holder::new("the typed reply callback of", f.name);
            self.claim(CName::reply_type(lib.type_prefix, f.name), reply);
        }
        if !f.params.is_empty() {
            let args = Holder::new("the args struct of", f.name);
            self.claim(CName::verbatim(f.args_struct), args);
        }
        let mut i = 0;
        while i < f.params.len() {
            self.ty(lib.type_prefix, f.params[i].ty);
            i += 1;
        }
        self.ty(lib.type_prefix, f.ret);
    }
}

const fn has_nul(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == 0 {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether two records are one type reached twice: the same name, field names and
/// field types (records and enums inside compared by name).
const fn same_record(a: &RecordDesc, b: &RecordDesc) -> bool {
    if !same(a.name.as_bytes(), b.name.as_bytes()) || a.fields.len() != b.fields.len() {
        return false;
    }
    let mut i = 0;
    while i < a.fields.len() {
        let (x, y) = (&a.fields[i], &b.fields[i]);
        if !same(x.name.as_bytes(), y.name.as_bytes()) || !same_ty(x.ty, y.ty) {
            return false;
        }
        i += 1;
    }
    true
}

const fn same_ty(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Option(x), Ty::Option(y)) | (Ty::Vec(x), Ty::Vec(y)) => same_ty(x, y),
        (Ty::Record(x), Ty::Record(y)) => same(x.name.as_bytes(), y.name.as_bytes()),
        (Ty::Enum(x), Ty::Enum(y)) => same(x.name.as_bytes(), y.name.as_bytes()),
        (Ty::Option(_) | Ty::Vec(_) | Ty::Record(_) | Ty::Enum(_), _)
        | (_, Ty::Option(_) | Ty::Vec(_) | Ty::Record(_) | Ty::Enum(_)) => false,
        // Both plain: the same variant.
        _ => scalar_code(a) == scalar_code(b),
    }
}

const fn scalar_code(t: &Ty) -> u8 {
    match t {
        Ty::Unit => 0,
        Ty::Bool => 1,
        Ty::U8 => 2,
        Ty::U16 => 3,
        Ty::U32 => 4,
        Ty::U64 => 5,
        Ty::I8 => 6,
        Ty::I16 => 7,
        Ty::I32 => 8,
        Ty::I64 => 9,
        Ty::F32 => 10,
        Ty::F64 => 11,
        Ty::Str => 12,
        Ty::Bytes => 13,
        _ => 255,
    }
}

const fn same_enum(a: &EnumDesc, b: &EnumDesc) -> bool {
    if !same(a.name.as_bytes(), b.name.as_bytes()) || a.variants.len() != b.variants.len() {
        return false;
    }
    let mut i = 0;
    while i < a.variants.len() {
        let (x, y) = (&a.variants[i], &b.variants[i]);
        if !same(x.0.as_bytes(), y.0.as_bytes()) || x.1 != y.1 {
            return false;
        }
        i += 1;
    }
    true
}

/// A message of up to 512 bytes, built at compile time.
struct Message {
    buf: [u8; 512],
    len: usize,
}

impl Message {
    const fn push(mut self, s: &[u8]) -> Self {
        let mut i = 0;
        while i < s.len() && self.len < self.buf.len() {
            self.buf[self.len] = s[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    const fn holder(self, h: &Holder<'_>) -> Self {
        let m = self
            .push(h.what.as_bytes())
            .push(b" `")
            .push(h.rust.as_bytes())
            .push(b"`");
        match h.of {
            Some(e) => m.push(b" of enum `").push(e.as_bytes()).push(b"`"),
            None => m,
        }
    }

    const fn panic(self) -> ! {
        match std::str::from_utf8(self.buf.split_at(self.len).0) {
            Ok(text) => panic!("{}", text),
            Err(_) => panic!("ffi-dispatch: a C name check failed"),
        }
    }
}

const fn collision(lib: &str, name: &[u8], first: &Holder<'_>, second: &Holder<'_>) -> ! {
    let m = Message {
        buf: [0; 512],
        len: 0,
    }
    .push(b"ffi-dispatch: two items of library `")
    .push(lib.as_bytes())
    .push(b"` have the C name `")
    .push(name)
    .push(b"`: ")
    .holder(first)
    .push(b" and ")
    .holder(second)
    .push(b". Rename one of them.");
    m.panic()
}

/// A constant C cannot spell: a compile error naming it.
const fn bad_constant(lib: &str, name: &str, why: &str) -> ! {
    Message {
        buf: [0; 512],
        len: 0,
    }
    .push(b"ffi-dispatch: constant `")
    .push(name.as_bytes())
    .push(b"` of library `")
    .push(lib.as_bytes())
    .push(b"` ")
    .push(why.as_bytes())
    .panic()
}

/// Fails (at compile time, in a `const`) when two items of `lib` would have the same C
/// name: exports, listener functions, records, enums and their values, args structs,
/// constants. The error names both items and the C name. Also refuses a float constant
/// that is not finite.
pub const fn check(lib: &LibraryDesc) {
    let empty = Entry {
        name: [0; MAX_LEN],
        len: 0,
        holder: Holder::new("", ""),
    };
    let mut t = Table {
        lib: lib.name,
        entries: [empty; MAX_NAMES],
        count: 0,
    };
    let mut i = 0;
    while i < RUNTIME_EXPORTS.len() {
        let name = CName::export(lib.name, RUNTIME_EXPORTS[i], "");
        t.claim(name, Holder::new("the runtime export", RUNTIME_EXPORTS[i]));
        i += 1;
    }
    t.claim(
        CName::macro_name(lib.name, "H"),
        Holder::new("the header's", "include guard"),
    );
    let hash = Holder::new("the header's", "interface hash");
    t.claim(CName::macro_name(lib.name, "INTERFACE_HASH"), hash);
    if !lib.ctor.params.is_empty() {
        let cfg = Holder::new("the config struct of the constructor", lib.ctor.name);
        t.claim(CName::verbatim(lib.ctor.args_struct), cfg);
    }
    let mut i = 0;
    while i < lib.ctor.params.len() {
        t.ty(lib.type_prefix, lib.ctor.params[i].ty);
        i += 1;
    }
    // Methods and static methods have a blocking form; inline exports answer before
    // they return anyway.
    let groups: [(&[crate::FnDesc], &str, bool); 3] = [
        (lib.methods, "method", true),
        (lib.statics, "static method", true),
        (lib.inlines, "inline export", false),
    ];
    let mut g = 0;
    while g < groups.len() {
        let (fns, what, blocking) = groups[g];
        let mut i = 0;
        while i < fns.len() {
            t.function(lib, &fns[i], what, blocking);
            i += 1;
        }
        g += 1;
    }
    let mut i = 0;
    while i < lib.events.len() {
        let e = &lib.events[i];
        let listener = Holder::new("the listener function of event", e.name);
        t.claim(CName::listener(lib.name, e.name, ""), listener);
        let cbor = Holder::new("the CBOR listener function of event", e.name);
        t.claim(CName::listener(lib.name, e.name, "_cbor"), cbor);
        let typed = Holder::new("the typed listener function of event", e.name);
        t.claim(CName::typed_listener(lib.name, e.name), typed);
        let typedef = Holder::new("the typed listener of event", e.name);
        t.claim(CName::listener_type(lib.type_prefix, e.name), typedef);
        t.ty(lib.type_prefix, e.ty);
        i += 1;
    }
    let mut i = 0;
    while i < lib.constants.len() {
        let c = &lib.constants[i];
        match c.value {
            crate::ConstValue::Float(f) if !f.is_finite() => bad_constant(
                lib.name,
                c.name,
                "is not finite: C has no portable literal for infinity or NaN",
            ),
            crate::ConstValue::Str(s) if has_nul(s.as_bytes()) => bad_constant(
                lib.name,
                c.name,
                "holds a NUL byte, where its C string would end",
            ),
            _ => {}
        }
        t.claim(
            CName::macro_name(lib.name, c.name),
            Holder::new("constant", c.name),
        );
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::CName;

    #[test]
    fn names_are_spelled_as_the_table_says() {
        assert_eq!(
            CName::export("kv", "get", "_cbor").to_string(),
            "kv_get_cbor"
        );
        assert_eq!(
            CName::listener("kv", "on_x", "").to_string(),
            "kv_add_on_x_listener"
        );
        assert_eq!(CName::type_name("Kv", "Entry").to_string(), "KvEntry");
        // Already prefixed (and then a capital): kept as it is.
        assert_eq!(CName::type_name("Kv", "KvKind").to_string(), "KvKind");
        assert_eq!(CName::type_name("Kv", "Kvetch").to_string(), "KvKvetch");
        assert_eq!(
            CName::enum_value("Kv", "Kind", "Counter").to_string(),
            "KV_KIND_COUNTER"
        );
        assert_eq!(
            CName::enum_value("Kv", "KvKind", "BigBlob").to_string(),
            "KV_KIND_BIG_BLOB"
        );
        assert_eq!(
            CName::macro_name("my_kv", "MAX_KEYS").to_string(),
            "MY_KV_MAX_KEYS"
        );
        assert_eq!(
            CName::macro_name("kv", "maxKeys2").to_string(),
            "KV_MAX_KEYS2"
        );
        assert_eq!(
            CName::enum_value("Io", "Mode", "HTTPGet").to_string(),
            "IO_MODE_HTTPGET"
        );
    }
}
