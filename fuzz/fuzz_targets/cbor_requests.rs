//! Arbitrary bytes into every `_cbor` export of the example libraries, called as a C host
//! calls them: each accepted call gets exactly one callback, nothing crashes or hangs.
//! (echo's `sleep` and `panic` are left out: they hang and panic by design.)
#![no_main]

use std::ffi::{c_int, c_void};
use std::sync::Mutex;

use ffi_dispatch::{ffid_ctx, Callback};
use libfuzzer_sys::fuzz_target;

#[path = "accounting.rs"]
mod accounting;
use accounting::{counted, counted_call, settle};

type CborExport =
    unsafe extern "C" fn(*mut ffid_ctx, Option<Callback>, *mut c_void, *const u8, usize) -> c_int;
type StaticCborExport =
    unsafe extern "C" fn(Option<Callback>, *mut c_void, *const u8, usize) -> c_int;

const ECHO: &[CborExport] = &[
    echo::echo_shout_cbor,
    echo::echo_scalar_check_cbor,
    echo::echo_payload_check_cbor,
    echo::echo_count_cbor,
    echo::echo_fail_cbor,
    echo::echo_trigger_ping_cbor,
    echo::echo_drop_reply_cbor,
    echo::echo_yield_times_cbor,
];
const KV: &[CborExport] = &[
    kv::kv_put_cbor,
    kv::kv_put_many_cbor,
    kv::kv_get_cbor,
    kv::kv_find_cbor,
    kv::kv_delete_cbor,
    kv::kv_list_cbor,
    kv::kv_keys_cbor,
    kv::kv_incr_cbor,
    kv::kv_annotate_cbor,
    kv::kv_usage_cbor,
    kv::kv_name_cbor,
];
const KV_STATIC: &[StaticCborExport] = &[kv::kv_version_cbor, kv::kv_check_key_cbor];

struct Contexts {
    echo: usize,
    kv: usize,
    calls: u64,
}

static CONTEXTS: Mutex<Option<Contexts>> = Mutex::new(None);

/// Creates a context; its constructor's outcome is one callback.
fn make(create: impl FnOnce(Option<Callback>) -> *mut ffid_ctx) -> usize {
    let mut ctx = std::ptr::null_mut();
    counted_call(|| {
        ctx = create(Some(counted));
        if ctx.is_null() {
            ffi_dispatch::RET_ERR
        } else {
            ffi_dispatch::RET_OK
        }
    });
    assert!(!ctx.is_null());
    ctx as usize
}

fn contexts() -> (usize, usize) {
    let mut guard = CONTEXTS.lock().unwrap();
    let c = guard.get_or_insert_with(|| Contexts {
        echo: make(|cb| unsafe {
            echo::echo_create_checked(
                echo::echo_interface_hash(),
                cb,
                std::ptr::null_mut(),
                &echo::EchoConfig {
                    prefix: c"p".as_ptr(),
                },
                std::ptr::null(),
            )
        }),
        kv: 0,
        calls: 0,
    });
    // A fresh store now and then, so the fuzzer's puts cannot grow it without bound.
    if c.calls % 1000 == 0 {
        if c.kv != 0 {
            settle();
            assert_eq!(kv::kv_destroy(c.kv as *mut ffid_ctx), ffi_dispatch::RET_OK);
        }
        c.kv = make(|cb| unsafe {
            kv::kv_create_checked(
                kv::kv_interface_hash(),
                cb,
                std::ptr::null_mut(),
                &kv::KvConfig {
                    name: c"fuzz".as_ptr(),
                    has_max_entries: 1,
                    max_entries: 256,
                },
                std::ptr::null(),
            )
        });
    }
    c.calls += 1;
    (c.echo, c.kv)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, req)) = data.split_first() else {
        return;
    };
    let (echo_ctx, kv_ctx) = contexts();
    let n = (ECHO.len() + KV.len() + KV_STATIC.len()) as u8;
    let i = (selector % n) as usize;
    let ud = std::ptr::null_mut();
    // SAFETY: `req` is readable for its length during the call; the contexts are live.
    let rc = counted_call(|| unsafe {
        if i < ECHO.len() {
            ECHO[i](
                echo_ctx as *mut ffid_ctx,
                Some(counted),
                ud,
                req.as_ptr(),
                req.len(),
            )
        } else if i < ECHO.len() + KV.len() {
            KV[i - ECHO.len()](
                kv_ctx as *mut ffid_ctx,
                Some(counted),
                ud,
                req.as_ptr(),
                req.len(),
            )
        } else {
            KV_STATIC[i - ECHO.len() - KV.len()](Some(counted), ud, req.as_ptr(), req.len())
        }
    });
    assert_eq!(
        rc,
        ffi_dispatch::RET_OK,
        "a well-formed call on a live context is accepted"
    );
    settle();
});
