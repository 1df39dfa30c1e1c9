//! `echo`: the example library, and the fixed C ABI that the C host tests drive.
//!
//! The library itself is the `impl Echo` block: ordinary Rust. Below it, each method
//! gets its two views (native fields, CBOR map) in the method table, and its two C
//! exports, `echo_<m>` and `echo_<m>_cbor`. That glue is what a proc-macro will write.
//! The C declarations are in `include/echo.h`.

#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_char, c_int, c_void};

use ffi_dispatch::abi::{args_ref, bytes_field, ffid_options, str_field};
use ffi_dispatch::cbor::ArgMap;
use ffi_dispatch::{ffid_ctx, CallError, Callback, Library, Method, Options, Request};

/// One context's state.
pub struct Echo {
    prefix: String,
    calls: u64,
}

/// The constructor's arguments, owned.
pub struct EchoSettings {
    /// Put before every `shout` answer.
    pub prefix: String,
}

impl Echo {
    fn tick(&mut self) -> u64 {
        let before = self.calls;
        self.calls += 1;
        before
    }

    /// `"<prefix>: <TEXT>"` with ASCII upper-casing.
    pub fn shout(&mut self, text: &str) -> String {
        self.tick();
        format!("{}: {}", self.prefix, text.to_ascii_uppercase())
    }

    /// The nim-ffi perf predicate: `((a + b + trunc(x)) & 1) == 0`.
    pub fn scalar_check(&mut self, a: i64, b: i64, x: f64) -> bool {
        self.tick();
        predicate(a, b, x)
    }

    /// The predicate on (first byte, last byte, length); the bytes are not walked.
    pub fn payload_check(&mut self, data: &[u8]) -> bool {
        self.tick();
        match (data.first(), data.last()) {
            (Some(&first), Some(&last)) => predicate(first as i64, last as i64, data.len() as f64),
            _ => predicate(0, 0, 0.0),
        }
    }

    /// How many calls this context handled before this one.
    pub fn count(&mut self) -> u64 {
        self.tick()
    }

    /// Sleeps on the worker thread.
    pub fn sleep(&mut self, ms: u32) {
        self.tick();
        std::thread::sleep(std::time::Duration::from_millis(ms as u64));
    }

    /// Always fails, with `message`.
    pub fn fail(&mut self, message: &str) -> Result<(), String> {
        self.tick();
        Err(message.to_owned())
    }

    /// Always panics.
    pub fn panic(&mut self) {
        self.tick();
        panic!("echo was asked to panic");
    }
}

fn predicate(a: i64, b: i64, x: f64) -> bool {
    // `as` truncates toward zero (and saturates), like nim's int64(x); wrapping keeps
    // extreme inputs an answer rather than an overflow panic.
    (a.wrapping_add(b).wrapping_add(x as i64) & 1) == 0
}

impl Library for Echo {
    const NAME: &'static str = "echo";
    type Config = EchoSettings;

    fn construct(config: EchoSettings) -> Result<Self, CallError> {
        Ok(Echo {
            prefix: config.prefix,
            calls: 0,
        })
    }

    // Each method: native view (fields in struct order) and CBOR view (keys = parameter
    // names), both calling the one `impl Echo` method.
    const METHODS: &'static [Method<Echo>] = &[
        Method {
            name: "shout",
            native: |l, r, out| out.value(&l.shout(r.str()?)),
            cbor: |l, req, out| {
                let m = ArgMap::parse(req, ["text"])?;
                out.value(&l.shout(m.get(0)?))
            },
        },
        Method {
            name: "scalar_check",
            native: |l, r, out| out.value(&l.scalar_check(r.scalar()?, r.scalar()?, r.scalar()?)),
            cbor: |l, req, out| {
                let m = ArgMap::parse(req, ["a", "b", "x"])?;
                out.value(&l.scalar_check(m.get(0)?, m.get(1)?, m.get(2)?))
            },
        },
        Method {
            name: "payload_check",
            native: |l, r, out| out.value(&l.payload_check(r.bytes()?)),
            cbor: |l, req, out| {
                let m = ArgMap::parse(req, ["data"])?;
                out.value(&l.payload_check(m.get(0)?))
            },
        },
        Method {
            name: "count",
            native: |l, _, out| out.value(&l.count()),
            cbor: |l, req, out| {
                ArgMap::parse(req, [])?; // an empty buffer or an (ignored) map
                out.value(&l.count())
            },
        },
        Method {
            name: "sleep",
            native: |l, r, out| out.value(&l.sleep(r.scalar()?)),
            cbor: |l, req, out| {
                let m = ArgMap::parse(req, ["ms"])?;
                out.value(&l.sleep(m.get(0)?))
            },
        },
        Method {
            name: "fail",
            native: |l, r, out| out.result(l.fail(r.str()?)),
            cbor: |l, req, out| {
                let m = ArgMap::parse(req, ["message"])?;
                out.result(l.fail(m.get(0)?))
            },
        },
        Method {
            name: "panic",
            native: |l, _, out| out.value(&l.panic()),
            cbor: |l, req, out| {
                ArgMap::parse(req, [])?;
                out.value(&l.panic())
            },
        },
    ];
}

// Method ids: indices into `Echo::METHODS`.
const SHOUT: u16 = 0;
const SCALAR_CHECK: u16 = 1;
const PAYLOAD_CHECK: u16 = 2;
const COUNT: u16 = 3;
const SLEEP: u16 = 4;
const FAIL: u16 = 5;
const PANIC: u16 = 6;

/// `EchoConfig` of `echo.h`.
#[repr(C)]
pub struct EchoConfig {
    /// NUL-terminated UTF-8.
    pub prefix: *const c_char,
}
/// `EchoShoutArgs` of `echo.h`.
#[repr(C)]
pub struct EchoShoutArgs {
    /// NUL-terminated UTF-8.
    pub text: *const c_char,
}
/// `EchoScalarCheckArgs` of `echo.h`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EchoScalarCheckArgs {
    /// First addend.
    pub a: i64,
    /// Second addend.
    pub b: i64,
    /// Truncated toward zero, then added.
    pub x: f64,
}
/// `EchoPayloadCheckArgs` of `echo.h`.
#[repr(C)]
pub struct EchoPayloadCheckArgs {
    /// `data_len` bytes (may be null when `data_len == 0`).
    pub data: *const u8,
    /// Length of `data`.
    pub data_len: usize,
}
/// `EchoSleepArgs` of `echo.h`.
#[repr(C)]
pub struct EchoSleepArgs {
    /// Milliseconds.
    pub ms: u32,
}
/// `EchoFailArgs` of `echo.h`.
#[repr(C)]
pub struct EchoFailArgs {
    /// NUL-terminated UTF-8; empty means "unknown error".
    pub message: *const c_char,
}

// ---- C exports -------------------------------------------------------------------
// Safety contract shared by every export (stated in echo.h): `ctx` is any value (it is
// never dereferenced); a non-null args pointer points to a valid struct whose pointers
// obey the field docs, for the duration of the call; a CBOR buffer holds `len` bytes.

/// Copies the host's config; null or invalid UTF-8 refuses the create.
unsafe fn settings(cfg: *const EchoConfig) -> Result<EchoSettings, ffi_dispatch::Refusal> {
    // SAFETY: the export's contract (see above).
    let cfg = unsafe { args_ref(cfg) }?;
    // SAFETY: as above; `prefix` is a NUL-terminated string.
    Ok(EchoSettings {
        prefix: unsafe { str_field(cfg.prefix) }?.to_owned(),
    })
}

/// `ffid_ctx* echo_create(ffid_callback cb, void* user_data, const EchoConfig* cfg)`.
///
/// # Safety
/// See the export contract at the top of this section.
#[no_mangle]
pub unsafe extern "C" fn echo_create(
    cb: Option<Callback>,
    user_data: *mut c_void,
    cfg: *const EchoConfig,
) -> *mut ffid_ctx {
    // SAFETY: forwarded export contract.
    ffi_dispatch::create::<Echo>(cb, user_data, Some(Options::default()), || unsafe {
        settings(cfg)
    })
}

/// `echo_create` with runtime options (`opts` may be null for the defaults).
///
/// # Safety
/// See the export contract; `opts` is null or a valid `ffid_options`.
#[no_mangle]
pub unsafe extern "C" fn echo_create_with_options(
    cb: Option<Callback>,
    user_data: *mut c_void,
    cfg: *const EchoConfig,
    opts: *const ffid_options,
) -> *mut ffid_ctx {
    // SAFETY: forwarded export contract.
    let options = unsafe { Options::from_c_ptr(opts) };
    // SAFETY: forwarded export contract.
    ffi_dispatch::create::<Echo>(cb, user_data, options, || unsafe { settings(cfg) })
}

/// `ffid_ctx* echo_create_cbor(cb, user_data, req, len)` with the map `{"prefix": tstr}`.
///
/// # Safety
/// See the export contract.
#[no_mangle]
pub unsafe extern "C" fn echo_create_cbor(
    cb: Option<Callback>,
    user_data: *mut c_void,
    req: *const u8,
    len: usize,
) -> *mut ffid_ctx {
    ffi_dispatch::create::<Echo>(cb, user_data, Some(Options::default()), || {
        // SAFETY: forwarded export contract.
        let req = unsafe { bytes_field(req, len) }?;
        let map = ArgMap::parse(req, ["prefix"]).map_err(|_| ffi_dispatch::Refusal::Err)?;
        let prefix: &str = map.get(0).map_err(|_| ffi_dispatch::Refusal::Err)?;
        Ok(EchoSettings {
            prefix: prefix.to_owned(),
        })
    })
}

/// `int echo_destroy(ffid_ctx* ctx)`.
#[no_mangle]
pub extern "C" fn echo_destroy(ctx: *mut ffid_ctx) -> c_int {
    ffi_dispatch::destroy::<Echo>(ctx)
}

/// Declares a method's CBOR export: `int echo_<m>_cbor(ctx, cb, user_data, req, len)`.
macro_rules! cbor_export {
    ($name:ident, $id:expr) => {
        /// CBOR export; see `echo.h`.
        ///
        /// # Safety
        /// See the export contract.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            ctx: *mut ffid_ctx,
            cb: Option<Callback>,
            user_data: *mut c_void,
            req: *const u8,
            len: usize,
        ) -> c_int {
            // SAFETY: forwarded export contract.
            unsafe { ffi_dispatch::submit_cbor::<Echo>(ctx, cb, user_data, $id, req, len) }
        }
    };
}
cbor_export!(echo_shout_cbor, SHOUT);
cbor_export!(echo_scalar_check_cbor, SCALAR_CHECK);
cbor_export!(echo_payload_check_cbor, PAYLOAD_CHECK);
cbor_export!(echo_count_cbor, COUNT);
cbor_export!(echo_sleep_cbor, SLEEP);
cbor_export!(echo_fail_cbor, FAIL);
cbor_export!(echo_panic_cbor, PANIC);

/// Native export of `shout`.
///
/// # Safety
/// See the export contract.
#[no_mangle]
pub unsafe extern "C" fn echo_shout(
    ctx: *mut ffid_ctx,
    cb: Option<Callback>,
    user_data: *mut c_void,
    args: *const EchoShoutArgs,
) -> c_int {
    ffi_dispatch::submit::<Echo>(ctx, cb, user_data, SHOUT, || {
        // SAFETY: forwarded export contract.
        let text = unsafe { str_field(args_ref(args)?.text) }?;
        Ok(Request::native(|w| {
            w.str(text);
        }))
    })
}

/// Native export of `scalar_check`.
///
/// # Safety
/// See the export contract.
#[no_mangle]
pub unsafe extern "C" fn echo_scalar_check(
    ctx: *mut ffid_ctx,
    cb: Option<Callback>,
    user_data: *mut c_void,
    args: *const EchoScalarCheckArgs,
) -> c_int {
    ffi_dispatch::submit::<Echo>(ctx, cb, user_data, SCALAR_CHECK, || {
        // SAFETY: forwarded export contract.
        let a = unsafe { args_ref(args) }?;
        Ok(Request::native(|w| {
            w.scalar(a.a).scalar(a.b).scalar(a.x);
        }))
    })
}

/// Native export of `payload_check`.
///
/// # Safety
/// See the export contract.
#[no_mangle]
pub unsafe extern "C" fn echo_payload_check(
    ctx: *mut ffid_ctx,
    cb: Option<Callback>,
    user_data: *mut c_void,
    args: *const EchoPayloadCheckArgs,
) -> c_int {
    ffi_dispatch::submit::<Echo>(ctx, cb, user_data, PAYLOAD_CHECK, || {
        // SAFETY: forwarded export contract.
        let a = unsafe { args_ref(args) }?;
        // SAFETY: forwarded export contract (`data` holds `data_len` bytes).
        let data = unsafe { bytes_field(a.data, a.data_len) }?;
        Ok(Request::native(|w| {
            w.bytes(data);
        }))
    })
}

/// Native export of `count` (no parameters, so no args pointer).
#[no_mangle]
pub extern "C" fn echo_count(
    ctx: *mut ffid_ctx,
    cb: Option<Callback>,
    user_data: *mut c_void,
) -> c_int {
    ffi_dispatch::submit::<Echo>(ctx, cb, user_data, COUNT, || Ok(Request::native(|_| {})))
}

/// Native export of `sleep`.
///
/// # Safety
/// See the export contract.
#[no_mangle]
pub unsafe extern "C" fn echo_sleep(
    ctx: *mut ffid_ctx,
    cb: Option<Callback>,
    user_data: *mut c_void,
    args: *const EchoSleepArgs,
) -> c_int {
    ffi_dispatch::submit::<Echo>(ctx, cb, user_data, SLEEP, || {
        // SAFETY: forwarded export contract.
        let a = unsafe { args_ref(args) }?;
        Ok(Request::native(|w| {
            w.scalar(a.ms);
        }))
    })
}

/// Native export of `fail`.
///
/// # Safety
/// See the export contract.
#[no_mangle]
pub unsafe extern "C" fn echo_fail(
    ctx: *mut ffid_ctx,
    cb: Option<Callback>,
    user_data: *mut c_void,
    args: *const EchoFailArgs,
) -> c_int {
    ffi_dispatch::submit::<Echo>(ctx, cb, user_data, FAIL, || {
        // SAFETY: forwarded export contract.
        let message = unsafe { str_field(args_ref(args)?.message) }?;
        Ok(Request::native(|w| {
            w.str(message);
        }))
    })
}

/// Native export of `panic` (no parameters).
#[no_mangle]
pub extern "C" fn echo_panic(
    ctx: *mut ffid_ctx,
    cb: Option<Callback>,
    user_data: *mut c_void,
) -> c_int {
    ffi_dispatch::submit::<Echo>(ctx, cb, user_data, PANIC, || Ok(Request::native(|_| {})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_ids_match_the_table() {
        let names: Vec<&str> = Echo::METHODS.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "shout",
                "scalar_check",
                "payload_check",
                "count",
                "sleep",
                "fail",
                "panic"
            ]
        );
        for (id, name) in [
            (SHOUT, "shout"),
            (SCALAR_CHECK, "scalar_check"),
            (PAYLOAD_CHECK, "payload_check"),
            (COUNT, "count"),
            (SLEEP, "sleep"),
            (FAIL, "fail"),
            (PANIC, "panic"),
        ] {
            assert_eq!(Echo::METHODS[id as usize].name, name);
        }
    }

    #[test]
    fn predicate_matches_nim_ffi() {
        assert!(predicate(1, 1, 0.0));
        assert!(!predicate(1, 2, 0.0));
        assert!(predicate(1, 2, 1.9), "1.9 truncates to 1");
        assert!(
            !predicate(0, 0, -1.5),
            "-1.5 truncates toward zero, to -1: odd"
        );
        assert!(
            predicate(i64::MAX, 1, f64::NAN),
            "wraps to i64::MIN and NaN saturates to 0: even, no panic"
        );
    }
}
