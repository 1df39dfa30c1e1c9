//! The echo cdylib as the driver calls it: through its generated Rust client
//! (`examples/echo/bindings/rust/echo.rs`), whose `raw` module mirrors `echo.h` (the
//! args structs, the event's struct and the table of exports the spinning lanes call
//! directly) and whose `Library` loads it and checks its interface.

use std::ffi::{c_char, c_int, c_void};

// Generated, checked current by examples/echo/tests/generated.rs; not formatted here.
#[rustfmt::skip]
#[path = "../../examples/echo/bindings/rust/echo.rs"]
pub(crate) mod echo;

pub(crate) use echo::raw::{
    EchoPayloadCheckArgs as PayloadArgs, EchoPerfPing as PerfPing,
    EchoScalarCheckArgs as ScalarArgs, EchoTriggerPingArgs as TriggerPingArgs,
};

/// The exports the lanes call: echo's table, resolved once at load.
pub(crate) type Api = echo::raw::Exports;
/// A context handle, as the exports take it.
pub(crate) type Ctx = *mut echo::raw::ffid_ctx;
/// A native callback (the exports take it as `Some(cb)`).
pub(crate) type Cb = unsafe extern "C" fn(c_int, *const c_char, usize, *mut c_void);

/// Loads the echo cdylib at `path`, or exits saying why.
pub(crate) fn load(path: &str) -> echo::Library {
    // SAFETY: the driver is pointed at a build of echo (`FFID_DRIVER_LIB` or the
    // libecho.so beside it); the client checks its interface hash.
    match unsafe { echo::Library::load(path) } {
        Ok(lib) => lib,
        Err(e) => fail_hard(&e.to_string()),
    }
}

pub(crate) fn fail_hard(msg: &str) -> ! {
    eprintln!("latency-driver: {msg}");
    std::process::exit(2)
}
