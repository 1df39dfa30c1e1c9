//! Helpers of the benches: the completion record a latency-sensitive host keeps, and
//! a context made through echo's C ABI.
#![allow(dead_code)] // each bench uses a subset

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU32, Ordering};

use crossbeam_utils::CachePadded;
use echo::*;
use ffi_dispatch::{ffid_ctx, Options, RET_OK};

/// The completion record a latency-sensitive host keeps: one cache line.
#[derive(Default)]
pub struct Completion {
    pub done: CachePadded<AtomicU32>,
}

pub unsafe extern "C" fn complete(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    debug_assert!(ret == RET_OK && len >= 1);
    let _ = msg;
    // SAFETY: `ud` is the bench's `Completion`, alive for the whole bench.
    unsafe { &*(ud as *const Completion) }
        .done
        .store(1, Ordering::Release);
}

/// A typed reply (`<lib>_<m>_async`) of a `bool` answer, recording as [`complete`].
pub unsafe extern "C" fn complete_bool(
    ret: c_int,
    value: bool,
    msg: *const c_char,
    ud: *mut c_void,
) {
    debug_assert!(ret == RET_OK && value);
    let _ = msg;
    // SAFETY: as in `complete`.
    unsafe { &*(ud as *const Completion) }
        .done
        .store(1, Ordering::Release);
}

pub fn wait(c: &Completion) {
    while c.done.load(Ordering::Acquire) == 0 {
        std::hint::spin_loop();
    }
    c.done.store(0, Ordering::Relaxed);
}

pub fn make(options: Options) -> *mut ffid_ctx {
    let created = Completion::default();
    let cfg = EchoConfig {
        prefix: c"bench".as_ptr(),
    };
    let opts = options.to_c();
    // SAFETY: valid callback, config and options; `created` outlives its callback.
    let ctx = unsafe {
        echo::echo_create_checked(
            echo::echo_interface_hash(),
            Some(complete),
            &created as *const _ as *mut c_void,
            &cfg,
            &opts,
        )
    };
    assert!(!ctx.is_null());
    wait(&created);
    ctx
}

/// The benches' criterion settings: short warm-up and measurement (these machines are
/// small; compare ratios within one run).
pub fn config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}
