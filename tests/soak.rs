//! Soak test with faults (opt-in, bounded in time): many producer threads call echo
//! through its C exports while contexts are destroyed and recreated under them, handlers
//! panic or sleep, and tiny rings run full under both back-pressure policies. The mix
//! includes deferred replies (answered from other threads, dropped, or failed by a
//! destroy with a short shutdown timeout), async handlers, events to listeners, cancels
//! of just-accepted calls, stats polls, and contexts in completion mode that the
//! producers drain now and then.
//!
//! Checks: every accepted call gets exactly one terminal callback and a refused one none;
//! live heap memory returns to its level before the run (a counting allocator); nothing
//! hangs (a watchdog prints every context's state and fails the run when answers stop
//! coming while calls are owed).
//!
//! It is `#[ignore]`d in the normal suite. Run it with
//! `FFID_SOAK_SECS=60 cargo test --release --test soak -- --ignored --nocapture`
//! (CI runs 10 seconds).

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use echo::{
    EchoConfig, EchoEchoAfterArgs, EchoEchoLaterArgs, EchoScalarCheckArgs, EchoShoutArgs,
    EchoSleepArgs, EchoTriggerPingArgs, EchoYieldTimesArgs,
};
use ffi_dispatch::abi::ffid_options;
use ffi_dispatch::{ffid_ctx, Options, RET_BUSY, RET_CLOSED, RET_ERR, RET_OK, RET_STALE_WARN};
use support::alloc::Counting;

mod support;

/// Counts live heap bytes.
#[global_allocator]
static ALLOC: Counting = Counting::new();

static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static ANSWERED: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
static BUSY: AtomicU64 = AtomicU64::new(0);
static PANICS: AtomicU64 = AtomicU64::new(0);
static DESTROYS: AtomicU64 = AtomicU64::new(0);
static EVENTS: AtomicU64 = AtomicU64::new(0);
static CANCELLED: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn listener(ret: c_int, msg: *const c_char, len: usize, _: *mut c_void) {
    // SAFETY: the runtime passes `len` readable bytes and a NUL after them.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len + 1) };
    assert!(ret == RET_OK && bytes[len] == 0);
    EVENTS.fetch_add(1, SeqCst);
}
static OVERANSWERED: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn counted(ret: c_int, msg: *const c_char, len: usize, _: *mut c_void) {
    if ret == RET_STALE_WARN {
        return;
    }
    // SAFETY: the runtime passes `len` readable bytes and a NUL after them.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len + 1) };
    assert_eq!(bytes[len], 0);
    if ret == RET_ERR && bytes.starts_with(b"handler panicked") {
        PANICS.fetch_add(1, SeqCst);
    }
    if ret == RET_ERR && bytes.starts_with(b"cancelled") {
        CANCELLED.fetch_add(1, SeqCst);
    }
    if ANSWERED.fetch_add(1, SeqCst) + 1 > ACCEPTED.load(SeqCst) {
        OVERANSWERED.store(true, SeqCst);
    }
}

/// Counts a call as owed before making it (its callback may come first), and takes it
/// back if it was refused.
fn counted_call(call: impl FnOnce() -> c_int) -> c_int {
    ACCEPTED.fetch_add(1, SeqCst);
    let rc = call();
    if rc != RET_OK {
        ACCEPTED.fetch_sub(1, SeqCst);
        REFUSED.fetch_add(1, SeqCst);
        if rc == RET_BUSY {
            BUSY.fetch_add(1, SeqCst);
        }
    }
    rc
}

/// A small xorshift generator: each thread its own stream, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn create(rng: &mut Rng) -> usize {
    let mut o: ffid_options = Options::default().to_c();
    o.ring_capacity = [2, 4, 16, 64][rng.below(4) as usize];
    o.backpressure = rng.below(2) as u32;
    o.wake = rng.below(2) as u32;
    o.ring = rng.below(2) as u32;
    o.spin_ns = [0, 2_000, 50_000][rng.below(3) as usize];
    o.shutdown_timeout_ms = [0, 2, 5_000][rng.below(3) as usize];
    o.stale_ping_ms = [0, 1, 5_000][rng.below(3) as usize];
    o.event_ring_capacity = [1, 8, 1024][rng.below(3) as usize];
    o.event_backpressure = rng.below(2) as u32;
    o.completion = (rng.below(4) == 0) as u32; // a quarter in completion mode
    let cfg = EchoConfig {
        prefix: c"soak".as_ptr(),
    };
    let mut ctx = std::ptr::null_mut();
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
    assert!(!ctx.is_null(), "create failed");
    for _ in 0..rng.below(3) {
        assert_ne!(
            echo::echo_add_on_perf_ping_listener(ctx, Some(listener), std::ptr::null_mut()),
            0
        );
    }
    if rng.below(2) == 0 {
        assert_ne!(
            echo::echo_add_event_listener(ctx, Some(listener), std::ptr::null_mut()),
            0
        );
    }
    ctx as usize
}

fn call(ctx: *mut ffid_ctx, rng: &mut Rng) -> c_int {
    let ud = std::ptr::null_mut();
    let pick = rng.below(100);
    // SAFETY: the args structs live for the call; the handle may be stale (refused).
    unsafe {
        match pick {
            0..=44 => {
                let a = EchoScalarCheckArgs {
                    a: pick as i64,
                    b: 1,
                    x: 0.5,
                };
                echo::echo_scalar_check(ctx, Some(counted), ud, &a)
            }
            45..=59 => {
                let a = EchoShoutArgs {
                    text: c"soak".as_ptr(),
                };
                echo::echo_shout(ctx, Some(counted), ud, &a)
            }
            60..=64 => {
                let req = [0xa1, 0x61, b'a', 0x01]; // {"a": 1}: `b` and `x` missing: ERR
                echo::echo_scalar_check_cbor(ctx, Some(counted), ud, req.as_ptr(), req.len())
            }
            65..=68 => echo::echo_panic(ctx, Some(counted), ud),
            69..=71 => {
                let a = EchoSleepArgs { ms: 1 };
                echo::echo_sleep(ctx, Some(counted), ud, &a)
            }
            72..=76 => {
                let a = EchoEchoLaterArgs {
                    text: c"later".as_ptr(),
                    ms: rng.below(3) as u32,
                };
                echo::echo_echo_later(ctx, Some(counted), ud, &a)
            }
            77..=78 => echo::echo_drop_reply(ctx, Some(counted), ud),
            79..=83 => {
                let a = EchoEchoAfterArgs {
                    text: c"after".as_ptr(),
                    ms: rng.below(3) as u32,
                };
                echo::echo_echo_after(ctx, Some(counted), ud, &a)
            }
            84..=87 => {
                let a = EchoYieldTimesArgs {
                    n: rng.below(20) as u32,
                };
                echo::echo_yield_times(ctx, Some(counted), ud, &a)
            }
            _ => {
                let a = EchoTriggerPingArgs {
                    count: rng.below(8) as u32,
                    payload_bytes: rng.below(200) as u32,
                    stamp_ns: 0,
                    seq_base: 0,
                };
                echo::echo_trigger_ping(ctx, Some(counted), ud, &a)
            }
        }
    }
}

/// Now and then, on a context that may be stale: cancel this thread's last call, poll
/// the counters, drain completions. None of these may crash or double an answer.
fn side_ops(ctx: *mut ffid_ctx, rng: &mut Rng) {
    match rng.below(20) {
        0..=1 => {
            let rc = echo::echo_cancel(ctx, echo::echo_last_request_id());
            // ERR: started, finished or unknown; CLOSED: the context was destroyed.
            assert!(
                rc == RET_OK || rc == RET_ERR || rc == RET_CLOSED,
                "cancel: {rc}"
            );
        }
        2 => {
            let mut st = ffi_dispatch::abi::ffid_context_stats {
                struct_size: std::mem::size_of::<ffi_dispatch::abi::ffid_context_stats>() as u32,
                ..Default::default()
            };
            // SAFETY: a writable struct of the size it names.
            let rc = unsafe { echo::echo_stats(ctx, &mut st) };
            assert!(rc == RET_OK || rc == RET_CLOSED, "stats: {rc}");
        }
        3..=6 => {
            assert!(echo::echo_drain(ctx, 32) >= -1);
        }
        _ => {}
    }
}

fn dump(contexts: &[usize]) {
    eprintln!(
        "watchdog: accepted {} answered {} refused {} destroys {}",
        ACCEPTED.load(SeqCst),
        ANSWERED.load(SeqCst),
        REFUSED.load(SeqCst),
        DESTROYS.load(SeqCst)
    );
    for &c in contexts {
        eprintln!(
            "  context {c:#x}: {:?}",
            ffi_dispatch::stats(c as *mut ffid_ctx)
        );
    }
}

#[test]
#[ignore = "soak test: FFID_SOAK_SECS=10 cargo test --release --test soak -- --ignored"]
fn soak_with_faults() {
    let secs: u64 = std::env::var("FFID_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let expected = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.contains("asked to panic"));
        if !expected {
            default_hook(info);
        }
    }));

    // Warm up once so that lazily allocated statics (registry chunks, thread-local
    // buffers of this thread) are in the baseline.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let warm: Vec<usize> = (0..4).map(|_| create(&mut rng)).collect();
    for &c in &warm {
        for _ in 0..16 {
            counted_call(|| call(c as *mut ffid_ctx, &mut rng));
        }
        assert_eq!(echo::echo_destroy(c as *mut ffid_ctx), RET_OK);
    }
    let baseline = ALLOC.live_bytes();

    const SLOTS: usize = 4;
    let contexts: Mutex<Vec<usize>> = Mutex::new((0..SLOTS).map(|_| create(&mut rng)).collect());
    let stop = AtomicBool::new(false);
    let end = Instant::now() + Duration::from_secs(secs);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (contexts, stop) = (&contexts, &stop);
            s.spawn(move || {
                let mut rng = Rng(0x1234_5678_9abc_def1 ^ ((t + 1) * 0x9e37_79b9));
                while !stop.load(SeqCst) {
                    let ctx = {
                        let list = contexts.lock().unwrap();
                        list[rng.below(SLOTS as u64) as usize]
                    };
                    // The handle may be destroyed before the call: then it is refused
                    // CLOSED (ERR: a blocking form on a context in completion mode).
                    let rc = counted_call(|| call(ctx as *mut ffid_ctx, &mut rng));
                    assert!(
                        rc == RET_OK || rc == RET_BUSY || rc == RET_ERR || rc == RET_CLOSED,
                        "unexpected return {rc}"
                    );
                    side_ops(ctx as *mut ffid_ctx, &mut rng);
                    if rc == RET_BUSY {
                        std::thread::yield_now();
                    }
                }
            });
        }
        // Destroyer: replaces a random context every few milliseconds.
        let (contexts, stop) = (&contexts, &stop);
        s.spawn(move || {
            let mut rng = Rng(0xdead_beef_cafe_f00d);
            while Instant::now() < end {
                std::thread::sleep(Duration::from_millis(1 + rng.below(5)));
                let fresh = create(&mut rng);
                let old = {
                    let mut list = contexts.lock().unwrap();
                    std::mem::replace(&mut list[rng.below(SLOTS as u64) as usize], fresh)
                };
                assert_eq!(echo::echo_destroy(old as *mut ffid_ctx), RET_OK);
                DESTROYS.fetch_add(1, SeqCst);
            }
            stop.store(true, SeqCst);
        });
        // Watchdog: answers must keep coming while calls are owed.
        s.spawn(move || {
            let mut last = (ANSWERED.load(SeqCst), Instant::now());
            while !stop.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                let answered = ANSWERED.load(SeqCst);
                if answered != last.0 || answered >= ACCEPTED.load(SeqCst) {
                    last = (answered, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(20) {
                    dump(&contexts.lock().unwrap());
                    eprintln!("watchdog: no answer for 20 s while calls are owed");
                    std::process::exit(101);
                }
            }
        });
    });
    for c in contexts.into_inner().unwrap() {
        assert_eq!(echo::echo_destroy(c as *mut ffid_ctx), RET_OK);
        DESTROYS.fetch_add(1, SeqCst);
    }
    // Destroy is synchronous: every accepted call has been answered by now.
    let (accepted, answered) = (ACCEPTED.load(SeqCst), ANSWERED.load(SeqCst));
    println!(
        "soak {secs}s: {accepted} calls accepted and answered, {} refused ({} busy), {} handler panics survived, {} cancelled, {} listener calls, {} destroys",
        REFUSED.load(SeqCst),
        BUSY.load(SeqCst),
        PANICS.load(SeqCst),
        CANCELLED.load(SeqCst),
        EVENTS.load(SeqCst),
        DESTROYS.load(SeqCst)
    );
    assert!(!OVERANSWERED.load(SeqCst), "a callback nobody was owed");
    assert_eq!(
        answered, accepted,
        "every accepted call answered exactly once"
    );
    assert!(accepted > 1000, "the soak made progress ({accepted} calls)");
    assert!(PANICS.load(SeqCst) > 0 && DESTROYS.load(SeqCst) > 10);
    let _ = std::panic::take_hook();
    // Library threads of deferred and async calls failed by a destroy may still be
    // finishing their sleeps (a few ms): let them end before taking stock.
    std::thread::sleep(Duration::from_millis(200));
    // What may stay: the payload pool keeps up to 64 buffers per size class, and the
    // only payloads here too big to travel inline (events of up to 199 data bytes) use
    // the 128 B and 256 B classes, 24 KiB at most. A leak grows with the run; the pool
    // does not.
    let leaked = ALLOC.live_bytes() - baseline;
    println!("live heap after the run: {leaked:+} bytes against the baseline");
    assert!(
        leaked.abs() < 64 * 1024,
        "heap grew by {leaked} bytes over the run"
    );
}
