//! The macros over every supported shape, driven from Rust exactly as a C host drives
//! them: C mirrors built in memory, the generated exports called with Rust `extern "C"`
//! callbacks, answers read through the pointers they carry. Both views must round-trip
//! the same values.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ffi_dispatch::rt::cbor::FromCbor;
use ffi_dispatch::rt::marshal::{Arena, Native, ReadNative};
use ffi_dispatch::rt::{ArgsView, Request};
use ffi_dispatch::{Answer, RET_ERR, RET_OK};
use ffi_dispatch_codegen::{cddl, header};
use minicbor::{Decoder, Encoder};

/// Explicit and implicit C values, one negative.
#[derive(ffi_dispatch::Enum, Clone, Copy, Debug, PartialEq)]
pub enum Level {
    /// Below.
    Low = -1,
    /// Middle.
    Mid = 5,
    /// Above (6).
    High,
}

/// Small scalars and enums.
#[derive(ffi_dispatch::Record, Clone, Debug, PartialEq)]
pub struct Inner {
    pub flag: bool,
    pub small: i8,
    pub ratio: f32,
    pub level: Level,
    pub opt_level: Option<Level>,
}

/// Everything else a record can hold.
#[derive(ffi_dispatch::Record, Clone, Debug, PartialEq)]
pub struct Outer {
    pub name: String,
    pub inner: Inner,
    pub inners: Vec<Inner>,
    pub maybe: Option<Inner>,
    pub words: Option<Vec<String>>,
    pub blob: Option<Vec<u8>>,
    pub n16: Option<u16>,
    pub yes: Option<bool>,
}

/// A record whose name the C++ binding takes for itself (renamed `Context_` there), and
/// an array of bools (no `std::vector<bool>::data()`).
#[derive(ffi_dispatch::Record, Clone, Debug, PartialEq)]
pub struct Context {
    pub flags: Vec<bool>,
    pub maybe_flags: Option<Vec<bool>>,
}

pub struct Shapes {
    kept: Vec<Inner>,
}

#[ffi_dispatch::library(name = "shapes")]
impl Shapes {
    #[ffi(ctor)]
    fn create() -> Shapes {
        Shapes { kept: Vec::new() }
    }

    /// Answers its argument, and keeps its inners for `kept`.
    #[ffi]
    fn echo_outer(&mut self, o: Outer) -> Outer {
        self.kept = o.inners.clone();
        o
    }

    #[ffi]
    fn echo_opt(&self, o: Option<Outer>) -> Option<Outer> {
        o
    }

    /// Answers the flags, negated.
    #[ffi]
    fn flags(&self, c: Context) -> Vec<bool> {
        c.flags.iter().map(|f| !f).collect()
    }

    #[ffi]
    fn levels(&self, l: Vec<Level>) -> Vec<Level> {
        l.into_iter().rev().collect()
    }

    /// A slice answer borrowing the context's value.
    #[ffi]
    fn kept(&self) -> &[Inner] {
        &self.kept
    }

    #[ffi]
    fn describe(
        &self,
        data: Option<&[u8]>,
        n: Option<i64>,
        flag: Option<bool>,
        s: Option<&str>,
    ) -> String {
        format!("{data:?} {n:?} {flag:?} {s:?}")
    }
}

fn sample() -> Outer {
    let inner = |i: i8| Inner {
        flag: i % 2 == 0,
        small: -i,
        ratio: i as f32 / 4.0,
        level: [Level::Low, Level::Mid, Level::High][i as usize % 3],
        opt_level: (i % 2 == 1).then_some(Level::High),
    };
    Outer {
        name: "nämé".into(),
        inner: inner(1),
        inners: (0..4).map(inner).collect(),
        maybe: Some(inner(2)),
        words: Some(vec!["a".into(), String::new(), "ccc".into()]),
        blob: None,
        n16: Some(65535),
        yes: Some(false),
    }
}

fn sparse() -> Outer {
    Outer {
        name: String::new(),
        inner: sample().inner,
        inners: Vec::new(),
        maybe: None,
        words: None,
        blob: Some(Vec::new()),
        n16: None,
        yes: None,
    }
}

/// One call's outcome: the callback decodes the answer while its pointers are valid.
struct Call<T> {
    decode: fn(c_int, &[u8]) -> T,
    out: Mutex<Option<(c_int, T)>>,
    done: AtomicBool,
}

unsafe extern "C" fn on_answer<T>(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: `ud` is the `Call<T>` the test keeps alive until `done`.
    let call = unsafe { &*(ud as *const Call<T>) };
    // SAFETY: the runtime passes `len` readable bytes followed by a NUL.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len + 1) };
    assert_eq!(bytes[len], 0);
    let value = (call.decode)(ret, &bytes[..len]);
    *call.out.lock().unwrap() = Some((ret, value));
    call.done.store(true, Ordering::Release);
}

/// Runs `submit(callback, user_data)` and waits for the decoded answer.
fn call<T>(
    decode: fn(c_int, &[u8]) -> T,
    submit: impl FnOnce(Option<ffi_dispatch::Callback>, *mut c_void) -> c_int,
) -> (c_int, T) {
    let call = Call {
        decode,
        out: Mutex::new(None),
        done: AtomicBool::new(false),
    };
    let rc = submit(Some(on_answer::<T>), &call as *const Call<T> as *mut c_void);
    assert_eq!(rc, RET_OK, "the call was refused");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !call.done.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "no answer within 20 s");
        std::thread::yield_now();
    }
    let out = call.out.lock().unwrap().take();
    out.expect("answer recorded")
}

/// Reads a C mirror back into Rust through the same path an export uses.
fn from_c<T: for<'a> ReadNative<'a>>(fields: T::Fields) -> T {
    // SAFETY: `fields` points into memory that is alive for this call.
    let req = Request::native_checked(|w| unsafe { T::write(fields, w) }).expect("valid C form");
    match req.view() {
        ArgsView::Native(mut r) => T::read(&mut r).expect("reads back"),
        ArgsView::Cbor(_) => unreachable!(),
    }
}

fn native_outer(ret: c_int, msg: &[u8]) -> Option<Outer> {
    assert_eq!(ret, RET_OK, "{}", String::from_utf8_lossy(msg));
    if msg.is_empty() {
        return None;
    }
    assert_eq!(msg.len(), std::mem::size_of::<OuterC>());
    // SAFETY: a native record answer is a valid, aligned `OuterC` during the callback.
    Some(from_c::<Outer>(unsafe { *(msg.as_ptr() as *const OuterC) }))
}

fn cbor_value<T: for<'b> FromCbor<'b>>(ret: c_int, msg: &[u8]) -> T {
    assert_eq!(ret, RET_OK, "{}", String::from_utf8_lossy(msg));
    let mut d = Decoder::new(msg);
    let v = T::decode(&mut d).expect("the answer decodes");
    assert_eq!(d.position(), msg.len(), "nothing after the answer");
    v
}

fn cbor_request(key: &str, value: &impl Answer) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut e = Encoder::new(&mut buf);
    e.map(1).unwrap().str(key).unwrap();
    value.cbor(&mut e).unwrap();
    buf
}

fn context() -> *mut ffi_dispatch::ffid_ctx {
    let mut ctx = std::ptr::null_mut();
    call(
        |ret, _| assert_eq!(ret, RET_OK, "the constructor succeeds"),
        |cb, ud| {
            // SAFETY: no arguments; `ud` outlives the callback.
            ctx =
                unsafe { shapes_create_checked(shapes_interface_hash(), cb, ud, std::ptr::null()) };
            if ctx.is_null() {
                RET_ERR
            } else {
                RET_OK
            }
        },
    );
    ctx
}

#[test]
fn records_round_trip_natively() {
    let ctx = context();
    for value in [sample(), sparse()] {
        let mut arena = Arena::new();
        arena.reset(value.c_extra());
        let args = ShapesEchoOuterArgs {
            o: value.to_c(&mut arena),
        };
        // SAFETY: `args` and the arena it points into outlive the call.
        let (_, got) = call(native_outer, |cb, ud| unsafe {
            shapes_echo_outer(ctx, cb, ud, &args)
        });
        assert_eq!(got, Some(value));
    }
    // An optional record parameter: NULL is None, a pointer is Some; the answer likewise.
    let value = sample();
    let mut arena = Arena::new();
    arena.reset(Some(value.clone()).c_extra());
    let some = ShapesEchoOptArgs {
        o: Some(value.clone()).to_c(&mut arena),
    };
    let none = ShapesEchoOptArgs {
        o: std::ptr::null(),
    };
    // SAFETY: as above.
    let (_, got) = call(native_outer, |cb, ud| unsafe {
        shapes_echo_opt(ctx, cb, ud, &some)
    });
    assert_eq!(got, Some(value.clone()));
    // SAFETY: as above.
    let (_, got) = call(native_outer, |cb, ud| unsafe {
        shapes_echo_opt(ctx, cb, ud, &none)
    });
    assert_eq!(got, None, "None answers len == 0");

    // A slice of records answers a C array.
    let (_, kept) = call(
        |_, msg| {
            let n = msg.len() / std::mem::size_of::<InnerC>();
            assert_eq!(msg.len() % std::mem::size_of::<InnerC>(), 0);
            let p = msg.as_ptr() as *const InnerC;
            // SAFETY: the answer is an array of `n` mirrors, valid during the callback.
            (0..n)
                .map(|i| from_c::<Inner>(unsafe { *p.add(i) }))
                .collect::<Vec<_>>()
        },
        |cb, ud| shapes_kept(ctx, cb, ud),
    );
    assert_eq!(
        kept,
        sparse().inners,
        "the last echo_outer was the sparse value"
    );
    assert_eq!(ffi_dispatch::rt::destroy::<Shapes>(ctx), RET_OK);
}

#[test]
fn records_round_trip_through_cbor() {
    let ctx = context();
    for value in [sample(), sparse()] {
        let req = cbor_request("o", &value);
        // SAFETY: `req` outlives the call.
        let (_, got) = call(cbor_value::<Outer>, |cb, ud| unsafe {
            shapes_echo_outer_cbor(ctx, cb, ud, req.as_ptr(), req.len())
        });
        assert_eq!(got, value);
    }
    // An absent optional key and a null one are both None; None answers null.
    for req in [vec![0xa0], cbor_request("o", &None::<Outer>)] {
        // SAFETY: `req` outlives the call.
        let (_, got) = call(cbor_value::<Option<Outer>>, |cb, ud| unsafe {
            shapes_echo_opt_cbor(ctx, cb, ud, req.as_ptr(), req.len())
        });
        assert_eq!(got, None);
    }
    // Enums travel as names; an array of them comes back reversed.
    let levels = vec![Level::Low, Level::High, Level::Mid];
    let req = cbor_request("l", &levels);
    assert!(
        req.windows(4).any(|w| w == b"High"),
        "enums are text on the wire"
    );
    // SAFETY: `req` outlives the call.
    let (_, got) = call(cbor_value::<Vec<Level>>, |cb, ud| unsafe {
        shapes_levels_cbor(ctx, cb, ud, req.as_ptr(), req.len())
    });
    assert_eq!(got, [Level::Mid, Level::High, Level::Low]);
    assert_eq!(ffi_dispatch::rt::destroy::<Shapes>(ctx), RET_OK);
}

#[test]
fn optional_scalars_bytes_and_enums_natively() {
    let ctx = context();
    let text = |_: c_int, msg: &[u8]| String::from_utf8(msg.to_vec()).unwrap();
    let args = ShapesDescribeArgs {
        data: b"ab".as_ptr(),
        data_len: 2,
        has_n: 1,
        n: -9,
        has_flag: 3, // any non-zero byte is true
        flag: 1,
        s: c"x".as_ptr(),
    };
    // SAFETY: `args` and what it points to outlive the call.
    let (_, got) = call(text, |cb, ud| unsafe {
        shapes_describe(ctx, cb, ud, &args)
    });
    assert_eq!(got, "Some([97, 98]) Some(-9) Some(true) Some(\"x\")");
    let absent = ShapesDescribeArgs {
        data: std::ptr::null(),
        data_len: 7, // ignored when the pointer is NULL: the option is absent
        has_n: 0,
        n: 1,
        has_flag: 0,
        flag: 1,
        s: std::ptr::null(),
    };
    // SAFETY: as above.
    let (_, got) = call(text, |cb, ud| unsafe {
        shapes_describe(ctx, cb, ud, &absent)
    });
    assert_eq!(got, "None None None None");

    let levels = [-1i32, 6, 5];
    let args = ShapesLevelsArgs {
        l: levels.as_ptr(),
        l_len: 3,
    };
    let (_, got) = call(
        |_, msg| {
            msg.chunks(4)
                .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>()
        },
        // SAFETY: as above.
        |cb, ud| unsafe { shapes_levels(ctx, cb, ud, &args) },
    );
    assert_eq!(got, [5, 6, -1], "an enum array answers its C values");
    let unknown = [0i32];
    let bad = ShapesLevelsArgs {
        l: unknown.as_ptr(),
        l_len: 1,
    };
    // SAFETY: as above; the call is refused before anything is queued.
    let rc = unsafe { shapes_levels(ctx, Some(never), std::ptr::null_mut(), &bad) };
    assert_eq!(rc, RET_ERR, "0 is not a Level value");
    assert_eq!(ffi_dispatch::rt::destroy::<Shapes>(ctx), RET_OK);
}

unsafe extern "C" fn never(_: c_int, _: *const c_char, _: usize, _: *mut c_void) {
    panic!("a refused call must not be answered");
}

/// The description the library hands out (what `ffi-dispatch-bindgen` reads).
fn described() -> ffi_dispatch::schema::model::Library {
    let mut len = 0;
    // SAFETY: the library's own export; `len` is writable.
    let ptr = unsafe { shapes_ffid_describe(&mut len) };
    // SAFETY: it hands out `len` bytes at `ptr`, valid for the life of the process.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    ffi_dispatch::schema::model::Library::decode(bytes).expect("a valid description")
}

#[test]
fn header_and_schema_describe_every_shape() {
    let lib = described();
    let h = header(&lib);
    for expected in [
        "typedef int32_t ShapesLevel;",
        "SHAPES_LEVEL_LOW = -1,",
        "SHAPES_LEVEL_HIGH = 6,",
        "    bool flag;",
        "    int8_t small;",
        "    float ratio;",
        "    const ShapesLevel* opt_level;",
        "    ShapesInner inner;",
        "    const ShapesInner* inners;",
        "    size_t inners_len;",
        "    const ShapesInner* maybe;",
        "    const char* const* words;",
        "    bool has_n16;",
        "    uint16_t n16;",
        "    bool has_yes;",
        "int shapes_kept(ffid_ctx* ctx, ffid_callback cb, void* user_data);",
        "static inline ffid_ctx* shapes_create(ffid_callback cb, void* user_data) {",
        "static inline ffid_ctx* shapes_create_with_options(ffid_callback cb, void* user_data,\n    const ffid_options* opts) {",
        "ffid_ctx* shapes_create_checked(uint64_t interface_hash, ffid_callback cb, void* user_data,\n    const ffid_options* opts);",
    ] {
        assert!(h.contains(expected), "header lacks `{expected}`:\n{h}");
    }
    // Nested types come before the types that hold them.
    assert!(h.find("} ShapesInner;").unwrap() < h.find("typedef struct ShapesOuter").unwrap());
    assert!(
        h.find("typedef int32_t ShapesLevel;").unwrap()
            < h.find("typedef struct ShapesInner").unwrap()
    );
    let c = cddl(&lib);
    for expected in [
        "ShapesLevel = \"Low\" / \"Mid\" / \"High\"",
        "  ? maybe: ShapesInner / null,",
        "  ? words: [* tstr] / null,",
        "shapes_kept-response = [* ShapesInner]",
        "shapes_echo_opt-response = ShapesOuter / null",
    ] {
        assert!(c.contains(expected), "schema lacks `{expected}`:\n{c}");
    }
}

/// The C++ binding of every shape compiles, with every warning an error, as C++17 and
/// C++20, its callable forms instantiated too (the examples' suites run theirs).
#[test]
#[cfg_attr(miri, ignore = "runs the C++ compiler")]
fn cpp_binding_of_every_shape_compiles() {
    let lib = described();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shapes-cpp");
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in [
        ("shapes.h", header(&lib)),
        ("ffi_dispatch.h", lib.runtime_header.clone()),
        ("shapes.hpp", ffi_dispatch_codegen::cpp_header(&lib)),
        (
            "ffi_dispatch.hpp",
            ffi_dispatch_codegen::CPP_SUPPORT_HEADER.to_string(),
        ),
        (
            "probe.cpp",
            r#"#include "shapes.hpp"
// Every form of every method, instantiated (never run: -fsyntax-only).
void probe(const shapes::Context& c) {
    shapes::Outer o;
    o.words = std::vector<std::string>{"a"};
    o.blob = std::vector<uint8_t>{};
    o.inners.push_back(shapes::Inner{});
    shapes::Result<shapes::Outer> r = c.echo_outer(o, 100);
    (void)r;
    auto f = c.echo_opt_async(std::optional<shapes::Outer>(o));
    (void)f;
    (void)c.levels({shapes::Level::Low, shapes::Level::High}, [](shapes::Result<std::vector<shapes::Level>>) {});
    shapes::Context_ flags;
    flags.flags = {true, false};
    flags.maybe_flags = std::vector<bool>{};
    shapes::Result<std::vector<bool>> negated = c.flags(flags);
    (void)negated;
    (void)c.kept([](shapes::Result<std::vector<shapes::Inner>>) {}, [](std::string_view) {});
    shapes::Result<std::string> d = c.describe(std::nullopt, int64_t{1}, true, std::string("s"));
    (void)d;
}
int main() { return shapes::Context::create().ok() ? 0 : 1; }
"#
            .to_string(),
        ),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
    let target = env!("FFID_BUILD_TARGET");
    for std in ["-std=c++17", "-std=c++20"] {
        let mut cmd = cc::Build::new()
            .cpp(true)
            .target(target)
            .host(target)
            .opt_level(0)
            .cargo_metadata(false)
            .cargo_warnings(false)
            .get_compiler()
            .to_command();
        cmd.args([
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
        ])
        .arg(format!("-I{}", dir.display()))
        .arg(dir.join("probe.cpp"));
        let status = cmd.status().expect("running the C++ compiler");
        assert!(
            status.success(),
            "shapes.hpp does not compile as {std}: {cmd:?}"
        );
    }
}
