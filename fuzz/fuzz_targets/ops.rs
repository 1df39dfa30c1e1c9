//! Create / call / destroy / stale-handle sequences from a byte stream, with the
//! exactly-once accounting checked after every destroy (destroy returns only once every
//! call it accepted was answered) and at the end.
#![no_main]

use ffi_dispatch::{abi::ffid_options, ffid_ctx, RET_BUSY, RET_ERR, RET_MISSING_CALLBACK, RET_OK};
use libfuzzer_sys::fuzz_target;

#[path = "accounting.rs"]
mod accounting;
use accounting::{counted, counted_call, settle};

fn create(arg: u8) -> *mut ffid_ctx {
    let mut o: ffid_options = ffi_dispatch::Options::default().to_c();
    o.ring_capacity = 1 + (arg & 7) as u32; // tiny rings: back-pressure on most calls
    o.backpressure = ((arg >> 3) & 1) as u32;
    o.wake = ((arg >> 4) & 1) as u32;
    o.ring = ((arg >> 5) & 1) as u32;
    o.spin_ns = if arg & 0x40 != 0 { 0 } else { 20_000 };
    let cfg = echo::EchoConfig { prefix: c"p".as_ptr() };
    let mut ctx = std::ptr::null_mut();
    // The constructor's outcome is one callback.
    counted_call(|| {
        // SAFETY: valid config and options for the call.
        ctx = unsafe { echo::echo_create_with_options(Some(counted), std::ptr::null_mut(), &cfg, &o) };
        if ctx.is_null() { RET_ERR } else { RET_OK }
    });
    assert!(!ctx.is_null());
    ctx
}

fn call(ctx: *mut ffid_ctx, arg: u8) -> i32 {
    let ud = std::ptr::null_mut();
    // SAFETY: the args structs and buffers live for the call.
    unsafe {
        match arg % 4 {
            0 => echo::echo_scalar_check(ctx, Some(counted), ud, &echo::EchoScalarCheckArgs { a: arg as i64, b: 1, x: 0.5 }),
            1 => echo::echo_count(ctx, Some(counted), ud),
            2 => echo::echo_sleep(ctx, Some(counted), ud, &echo::EchoSleepArgs { ms: (arg & 1) as u32 }),
            _ => echo::echo_shout_cbor(ctx, Some(counted), ud, [0xa1, 0x64, b't', b'e', b'x', b't', 0x61, arg].as_ptr(), 8),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut live: Vec<*mut ffid_ctx> = Vec::new();
    let mut dead: Vec<*mut ffid_ctx> = Vec::new();
    for op in data.chunks(2) {
        let (code, arg) = (op[0], op.get(1).copied().unwrap_or(0));
        match code % 6 {
            0 if live.len() < 3 => live.push(create(arg)),
            1 | 2 if !live.is_empty() => {
                let ctx = live[arg as usize % live.len()];
                let rc = counted_call(|| call(ctx, arg));
                assert!(rc == RET_OK || rc == RET_BUSY, "a live context accepts or is busy: {rc}");
            }
            3 if !live.is_empty() => {
                let ctx = live.swap_remove(arg as usize % live.len());
                assert_eq!(echo::echo_destroy(ctx), RET_OK);
                // Synchronous destroy: every call accepted so far has been answered.
                settle();
                dead.push(ctx);
            }
            4 if !dead.is_empty() => {
                let ctx = dead[arg as usize % dead.len()];
                let rc = counted_call(|| call(ctx, arg));
                assert_eq!(rc, RET_ERR, "a destroyed handle is refused");
                assert_eq!(echo::echo_destroy(ctx), RET_ERR, "a second destroy is refused");
            }
            5 if !live.is_empty() => {
                let ctx = live[arg as usize % live.len()];
                let rc = counted_call(|| echo::echo_count(ctx, None, std::ptr::null_mut()));
                assert_eq!(rc, RET_MISSING_CALLBACK);
            }
            _ => {}
        }
    }
    for ctx in live {
        assert_eq!(echo::echo_destroy(ctx), RET_OK);
    }
    settle();
});
