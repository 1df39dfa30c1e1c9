//! The C ABI of the echo cdylib as a C host sees it: mirrors of `echo.h`'s structs, and
//! the `Api` of its exports, loaded with `dlopen`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

// ---- the C ABI, as echo.h declares it ------------------------------------------------

/// `ffid_options` as `ffi_dispatch.h` declares it (all of it: `ffid_options_init`
/// writes the whole struct).
#[repr(C)]
pub(crate) struct FfidOptions {
    pub(crate) struct_size: u32,
    pub(crate) ring_capacity: u32,
    pub(crate) spin_ns: u32,
    backpressure: u32,
    wake: u32,
    pub(crate) ring: u32,
    stale_ping_ms: u32,
    not_responding_ms: u32,
    listener_stuck_ms: u32,
    event_ring_capacity: u32,
    event_backpressure: u32,
    shutdown_timeout_ms: u32,
    completion: u32,
    reserved: u32,
    diagnostic: Option<Cb>,
    diagnostic_user_data: *mut c_void,
    thread_start: *const c_void,
    thread_stop: *const c_void,
    hook_user_data: *mut c_void,
    pub(crate) idle_policy: u32,
    pub(crate) idle_spin_cap_permille: u32,
    poison_replies: u32,
    reserved2: u32,
}
#[repr(C)]
pub(crate) struct TriggerPingArgs {
    pub(crate) count: u32,
    pub(crate) payload_bytes: u32,
    pub(crate) stamp_ns: u64,
    pub(crate) seq_base: u64,
}
/// `EchoPerfPing`, the native event.
#[repr(C)]
pub(crate) struct PerfPing {
    pub(crate) seq_no: u64,
    pub(crate) stamp_ns: u64,
    pub(crate) data: *const u8,
    pub(crate) data_len: usize,
}
#[repr(C)]
pub(crate) struct EchoConfig {
    pub(crate) prefix: *const c_char,
}
#[repr(C)]
pub(crate) struct ScalarArgs {
    pub(crate) a: i64,
    pub(crate) b: i64,
    pub(crate) x: f64,
}
#[repr(C)]
pub(crate) struct PayloadArgs {
    pub(crate) data: *const u8,
    pub(crate) data_len: usize,
}

/// The interface hash of the `echo.h` these mirrors follow (read from it by build.rs).
pub(crate) const ECHO_INTERFACE_HASH: u64 =
    match u64::from_str_radix(env!("ECHO_INTERFACE_HASH"), 16) {
        Ok(h) => h,
        Err(_) => panic!("ECHO_INTERFACE_HASH is not a hex number"),
    };

pub(crate) type Cb = unsafe extern "C" fn(c_int, *const c_char, usize, *mut c_void);
pub(crate) type Ctx = *mut c_void;

pub(crate) struct Api {
    pub(crate) options_init: unsafe extern "C" fn(*mut FfidOptions) -> c_int,
    /// `echo_create_checked`: the interface hash first (see `ECHO_INTERFACE_HASH`).
    pub(crate) create:
        unsafe extern "C" fn(u64, Cb, *mut c_void, *const EchoConfig, *const FfidOptions) -> Ctx,
    pub(crate) last_error: unsafe extern "C" fn() -> *const c_char,
    /// `echo_scalar_check_sync` and `echo_payload_check_sync`: the blocking forms.
    pub(crate) scalar_sync: unsafe extern "C" fn(Ctx, *const ScalarArgs, *mut bool, u32) -> c_int,
    pub(crate) payload_sync: unsafe extern "C" fn(Ctx, *const PayloadArgs, *mut bool, u32) -> c_int,
    pub(crate) destroy: unsafe extern "C" fn(Ctx) -> c_int,
    pub(crate) scalar: unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const ScalarArgs) -> c_int,
    pub(crate) scalar_cbor: unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const u8, usize) -> c_int,
    pub(crate) payload: unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const PayloadArgs) -> c_int,
    pub(crate) payload_cbor: unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const u8, usize) -> c_int,
    pub(crate) trigger_ping:
        unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const TriggerPingArgs) -> c_int,
    pub(crate) add_ping_listener: unsafe extern "C" fn(Ctx, Cb, *mut c_void) -> u64,
    pub(crate) add_ping_listener_cbor: unsafe extern "C" fn(Ctx, Cb, *mut c_void) -> u64,
    pub(crate) remove_listener: unsafe extern "C" fn(Ctx, u64) -> c_int,
}

pub(crate) fn load(path: &str) -> Api {
    let c_path = CString::new(path).expect("library path");
    // SAFETY: dlopen/dlsym with valid C strings; each symbol is cast to the type echo.h
    // declares for it.
    unsafe {
        let handle = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if handle.is_null() {
            let err = CStr::from_ptr(libc::dlerror()).to_string_lossy();
            fail_hard(&format!("cannot load {path}: {err}"));
        }
        Api {
            options_init: sym(handle, path, c"ffid_options_init"),
            create: sym(handle, path, c"echo_create_checked"),
            last_error: sym(handle, path, c"ffid_last_error"),
            scalar_sync: sym(handle, path, c"echo_scalar_check_sync"),
            payload_sync: sym(handle, path, c"echo_payload_check_sync"),
            destroy: sym(handle, path, c"echo_destroy"),
            scalar: sym(handle, path, c"echo_scalar_check"),
            scalar_cbor: sym(handle, path, c"echo_scalar_check_cbor"),
            payload: sym(handle, path, c"echo_payload_check"),
            payload_cbor: sym(handle, path, c"echo_payload_check_cbor"),
            trigger_ping: sym(handle, path, c"echo_trigger_ping"),
            add_ping_listener: sym(handle, path, c"echo_add_on_perf_ping_listener"),
            add_ping_listener_cbor: sym(handle, path, c"echo_add_on_perf_ping_listener_cbor"),
            remove_listener: sym(handle, path, c"echo_remove_listener"),
        }
    }
}

/// Looks up `name` as a function pointer of type `F`.
///
/// # Safety
/// `F` is the function pointer type the library declares for `name`.
unsafe fn sym<F: Copy>(handle: *mut c_void, path: &str, name: &CStr) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: a live handle and a C string.
    let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if p.is_null() {
        fail_hard(&format!("{path} lacks {}", name.to_string_lossy()));
    }
    // SAFETY: same size, and the caller names the symbol's real type.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
}

pub(crate) fn fail_hard(msg: &str) -> ! {
    eprintln!("latency-driver: {msg}");
    std::process::exit(2)
}
