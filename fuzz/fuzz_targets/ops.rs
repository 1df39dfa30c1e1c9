//! Create / call / destroy / stale-handle sequences from a byte stream, with the
//! exactly-once accounting checked after every destroy (destroy returns only once every
//! call it accepted was answered) and at the end.
#![no_main]

use ffi_dispatch::{
    abi::ffid_options, ffid_ctx, RET_BUSY, RET_CLOSED, RET_ERR, RET_MISSING_CALLBACK, RET_OK,
};
use libfuzzer_sys::fuzz_target;

#[path = "accounting.rs"]
mod accounting;
use accounting::{counted, counted_call, settle, settle_draining};

fn create(arg: u8) -> *mut ffid_ctx {
    let mut o: ffid_options = ffi_dispatch::Options::default().to_c();
    o.ring_capacity = 1 + (arg & 7) as u32; // tiny rings: back-pressure on most calls
    o.backpressure = ((arg >> 3) & 1) as u32;
    o.wake = ((arg >> 4) & 1) as u32;
    o.ring = ((arg >> 5) & 1) as u32;
    o.spin_ns = if arg & 0x40 != 0 { 0 } else { 20_000 };
    // Completion mode: answers wait for a drain (or for destroy, which drains).
    o.completion = (arg >> 7) as u32;
    o.shutdown_timeout_ms = (arg & 3) as u32; // destroy fails late deferred replies fast
    let cfg = echo::EchoConfig {
        prefix: c"p".as_ptr(),
    };
    let mut ctx = std::ptr::null_mut();
    // The constructor's outcome is one callback.
    counted_call(|| {
        // SAFETY: valid config and options for the call.
        ctx = unsafe {
            echo::echo_create_checked(
                echo::echo_interface_hash(),
                Some(counted),
                std::ptr::null_mut(),
                &cfg,
                &o,
            )
        };
        if ctx.is_null() {
            RET_ERR
        } else {
            RET_OK
        }
    });
    assert!(!ctx.is_null());
    if arg & 1 != 0 {
        assert_ne!(
            echo::echo_add_on_perf_ping_listener(ctx, Some(listener), std::ptr::null_mut()),
            0
        );
    }
    ctx
}

unsafe extern "C" fn listener(
    ret: i32,
    msg: *const std::ffi::c_char,
    len: usize,
    _: *mut std::ffi::c_void,
) {
    assert_eq!(ret, RET_OK);
    // SAFETY: the runtime passes `len` bytes and a NUL.
    assert_eq!(unsafe { *msg.add(len) }, 0);
}

fn call(ctx: *mut ffid_ctx, arg: u8) -> i32 {
    let ud = std::ptr::null_mut();
    // SAFETY: the args structs and buffers live for the call.
    unsafe {
        match arg % 9 {
            0 => echo::echo_scalar_check(
                ctx,
                Some(counted),
                ud,
                &echo::EchoScalarCheckArgs {
                    a: arg as i64,
                    b: 1,
                    x: 0.5,
                },
            ),
            1 => echo::echo_count(ctx, Some(counted), ud),
            2 => echo::echo_sleep(
                ctx,
                Some(counted),
                ud,
                &echo::EchoSleepArgs {
                    ms: (arg & 1) as u32,
                },
            ),
            3 => echo::echo_echo_later(
                ctx,
                Some(counted),
                ud,
                &echo::EchoEchoLaterArgs {
                    text: c"l".as_ptr(),
                    ms: (arg & 1) as u32,
                },
            ),
            4 => echo::echo_drop_reply(ctx, Some(counted), ud),
            5 => echo::echo_echo_after(
                ctx,
                Some(counted),
                ud,
                &echo::EchoEchoAfterArgs {
                    text: c"a".as_ptr(),
                    ms: (arg & 1) as u32,
                },
            ),
            6 => echo::echo_yield_times(
                ctx,
                Some(counted),
                ud,
                &echo::EchoYieldTimesArgs {
                    n: (arg & 7) as u32,
                },
            ),
            7 => echo::echo_trigger_ping(
                ctx,
                Some(counted),
                ud,
                &echo::EchoTriggerPingArgs {
                    count: (arg & 7) as u32,
                    payload_bytes: arg as u32,
                    stamp_ns: 0,
                    seq_base: 0,
                },
            ),
            _ => echo::echo_shout_cbor(
                ctx,
                Some(counted),
                ud,
                [0xa1, 0x64, b't', b'e', b'x', b't', 0x61, arg].as_ptr(),
                8,
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut live: Vec<*mut ffid_ctx> = Vec::new();
    let mut dead: Vec<*mut ffid_ctx> = Vec::new();
    for op in data.chunks(2) {
        let (code, arg) = (op[0], op.get(1).copied().unwrap_or(0));
        match code % 8 {
            0 if live.len() < 3 => live.push(create(arg)),
            1 | 2 if !live.is_empty() => {
                let ctx = live[arg as usize % live.len()];
                let rc = counted_call(|| call(ctx, arg));
                assert!(
                    rc == RET_OK || rc == RET_BUSY,
                    "a live context accepts or is busy: {rc}"
                );
            }
            3 if !live.is_empty() => {
                let ctx = live.swap_remove(arg as usize % live.len());
                assert_eq!(echo::echo_destroy(ctx), RET_OK);
                // Synchronous destroy: every call accepted so far has been answered (the
                // live contexts in completion mode once drained).
                settle_draining(|| {
                    for &c in &live {
                        echo::echo_drain(c, u32::MAX);
                    }
                });
                dead.push(ctx);
            }
            4 if !dead.is_empty() => {
                let ctx = dead[arg as usize % dead.len()];
                let rc = counted_call(|| call(ctx, arg));
                assert_eq!(rc, RET_CLOSED, "a destroyed handle is refused");
                assert_eq!(
                    echo::echo_destroy(ctx),
                    RET_CLOSED,
                    "a second destroy is refused"
                );
            }
            5 if !live.is_empty() => {
                let ctx = live[arg as usize % live.len()];
                let rc = counted_call(|| echo::echo_count(ctx, None, std::ptr::null_mut()));
                assert_eq!(rc, RET_MISSING_CALLBACK);
            }
            6 if !live.is_empty() => {
                // Cancel this thread's last call: either it is answered "cancelled" or it
                // runs; exactly one answer either way (checked at the next destroy).
                let ctx = live[arg as usize % live.len()];
                let rc = echo::echo_cancel(ctx, echo::echo_last_request_id());
                assert!(rc == RET_OK || rc == RET_ERR);
            }
            7 if !live.is_empty() => {
                let ctx = live[arg as usize % live.len()];
                assert!(echo::echo_drain(ctx, (arg % 8) as u32) >= -1);
            }
            _ => {}
        }
    }
    for ctx in live {
        assert_eq!(echo::echo_destroy(ctx), RET_OK);
    }
    settle();
    // echo_later / echo_after run on the library's own threads (up to 1 ms of sleep):
    // let them finish before libFuzzer's leak check looks at this input's heap.
    if data
        .chunks(2)
        .any(|op| matches!(op.get(1).map(|a| a % 9), Some(3 | 5)))
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
});
