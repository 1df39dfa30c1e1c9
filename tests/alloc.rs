//! Allocation accounting with a counting global allocator: in steady state a native
//! scalar call and a CBOR call whose request fits inline allocate nothing, on any thread
//! (host or worker); a large payload costs exactly its one copy.
//!
//! One `#[test]` only: the counter is process-wide, and parallel tests would add noise.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU32, Ordering};

use echo::*;
use ffi_dispatch::{ffid_ctx, RET_OK};
use support::alloc::Counting;
use support::cbor::scalar_request;

mod support;

/// Counts every allocation (`alloc` and `realloc`) on any thread.
#[global_allocator]
static GLOBAL: Counting = Counting::new();

/// A completion record the callback fills; no allocation in the callback.
#[derive(Default)]
struct Done {
    flag: AtomicU32,
    ret: AtomicU32,
    first: AtomicU32,
}

impl Done {
    /// The `user_data` that points the callback at this record.
    fn ud(&self) -> *mut c_void {
        self as *const Done as *mut c_void
    }

    /// Spins until the callback has run, and checks that it answered `RET_OK`.
    fn wait_ok(&self) {
        while self.flag.load(Ordering::Acquire) == 0 {
            std::hint::spin_loop();
        }
        assert_eq!(self.ret.load(Ordering::Relaxed), RET_OK as u32);
    }
}

unsafe extern "C" fn on_done(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: `ud` is the `Done` passed with the call, alive until the flag is set.
    let done = unsafe { &*(ud as *const Done) };
    let first = if len > 0 {
        // SAFETY: the runtime passes `len` readable bytes.
        unsafe { *msg.cast::<u8>() }
    } else {
        0xff
    };
    done.first.store(first as u32, Ordering::Relaxed);
    done.ret.store(ret as u32, Ordering::Relaxed);
    done.flag.store(1, Ordering::Release);
}

/// Makes one synchronous call and returns the first answer byte.
fn call(submit: impl FnOnce(*mut c_void) -> c_int) -> u8 {
    let done = Done::default();
    assert_eq!(submit(done.ud()), RET_OK);
    done.wait_ok();
    done.first.load(Ordering::Relaxed) as u8
}

/// Queues `n` calls behind a 20 ms sleep on the worker, then waits for all of them: each
/// queued call holds its own large-payload buffer, and all go back to the pool, which
/// then holds at least `n`. A synchronous caller needs two (the worker gives a buffer
/// back after its callback, so the host's next call may come first); whether a
/// one-at-a-time warm-up ever takes the second depends on that race, and it would then
/// be taken, once, inside the counted loop.
fn fill_pool(ctx: *mut ffid_ctx, n: usize, submit: impl Fn(*mut c_void) -> c_int) {
    let done: Vec<Done> = (0..=n).map(|_| Done::default()).collect();
    let sleep = EchoSleepArgs { ms: 20 };
    // SAFETY: `sleep` and `done[0]` outlive the call (waited for below).
    let slept = unsafe { echo_sleep(ctx, Some(on_done), done[0].ud(), &sleep) };
    assert_eq!(slept, RET_OK);
    for d in &done[1..] {
        assert_eq!(submit(d.ud()), RET_OK);
    }
    done.iter().for_each(Done::wait_ok);
}

/// Allocations per call over `n` calls, after a warm-up. The warm-up lets the worker
/// park and be woken once, so that whatever a first park sets up once (today nothing:
/// the futex is called directly) is not counted against the calls.
fn allocations_per_call(n: u64, mut one: impl FnMut(u64)) -> f64 {
    for i in 0..1000 {
        one(i);
        if i == 500 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let before = GLOBAL.allocations();
    for i in 0..n {
        one(i);
    }
    (GLOBAL.allocations() - before) as f64 / n as f64
}

#[test]
fn steady_state_allocations_per_call() {
    let created = Done::default();
    let cfg = EchoConfig {
        prefix: c"alloc".as_ptr(),
    };
    // SAFETY: valid callback, config and user data that outlives the constructor callback.
    let ctx: *mut ffid_ctx = unsafe {
        echo::echo_create_checked(
            echo::echo_interface_hash(),
            Some(on_done),
            created.ud(),
            &cfg,
            std::ptr::null(),
        )
    };
    assert!(!ctx.is_null());
    created.wait_ok();

    let native = allocations_per_call(20_000, |i| {
        let args = EchoScalarCheckArgs {
            a: i as i64,
            b: 1,
            x: 0.5,
        };
        // SAFETY: valid args for the duration of the call.
        let got = call(|ud| unsafe { echo_scalar_check(ctx, Some(on_done), ud, &args) });
        assert_eq!(got, ((i as i64 + 1) & 1 == 0) as u8);
    });

    // Requests built before counting: the host's encoding is not the runtime's cost.
    let requests: Vec<Vec<u8>> = (0..64).map(|i| scalar_request(i, 3, 1.25)).collect();
    assert!(requests
        .iter()
        .all(|r| r.len() <= ffi_dispatch::INLINE_CAPACITY));
    let cbor = allocations_per_call(20_000, |i| {
        let req = &requests[(i % 64) as usize];
        // SAFETY: `req` holds `req.len()` bytes for the duration of the call.
        let got = call(|ud| unsafe {
            echo_scalar_check_cbor(ctx, Some(on_done), ud, req.as_ptr(), req.len())
        });
        assert_eq!(
            got,
            if ((i % 64) as i64 + 3 + 1) & 1 == 0 {
                0xf5
            } else {
                0xf4
            }
        );
    });

    let big = vec![7u8; 4096];
    let big_args = EchoPayloadCheckArgs {
        data: big.as_ptr(),
        data_len: big.len(),
    };
    // SAFETY: `big` outlives every call.
    let big_native_call = |ud| unsafe { echo_payload_check(ctx, Some(on_done), ud, &big_args) };
    fill_pool(ctx, 4, big_native_call);
    let big_native = allocations_per_call(5_000, |_| {
        call(big_native_call);
    });
    let mut big_req = Vec::new();
    minicbor::Encoder::new(&mut big_req)
        .map(1)
        .unwrap()
        .str("data")
        .unwrap()
        .bytes(&big)
        .unwrap();
    // SAFETY: `big_req` outlives every call.
    let big_cbor_call = |ud| unsafe {
        echo_payload_check_cbor(ctx, Some(on_done), ud, big_req.as_ptr(), big_req.len())
    };
    fill_pool(ctx, 4, big_cbor_call);
    let big_cbor = allocations_per_call(5_000, |_| {
        call(big_cbor_call);
    });

    assert_eq!(echo_destroy(ctx), RET_OK);
    println!("allocations per call: native scalar {native}, CBOR scalar {cbor}, 4 KiB native {big_native}, 4 KiB CBOR {big_cbor}");
    assert_eq!(native, 0.0, "native scalar_check must not allocate");
    assert_eq!(
        cbor, 0.0,
        "a CBOR call with an inline-sized request must not allocate"
    );
    // A large payload is copied into a recycled buffer: the worker gives it back after
    // answering, so in steady state it allocates nothing either (and never more than
    // the one copy).
    assert_eq!(
        big_native, 0.0,
        "a large native payload reuses a recycled buffer"
    );
    assert_eq!(
        big_cbor, 0.0,
        "a large CBOR payload reuses a recycled buffer"
    );
}
