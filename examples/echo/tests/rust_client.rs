//! A Rust host of echo through its generated client (`bindings/rust/echo.rs`): timeouts,
//! events and subscriptions, deferred and async handlers, panics, inline exports,
//! destroy with calls in flight, threads blocking on one context.

#[rustfmt::skip]
#[path = "../bindings/rust/echo.rs"]
mod client;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::{Error, PerfPing};

#[path = "../../../tests/support/cdylib.rs"]
mod cdylib;

fn library() -> client::Library {
    // SAFETY: the echo cdylib this test run built.
    unsafe { client::Library::load(cdylib::cdylib("echo")) }.expect("loading libecho")
}

const T: Option<Duration> = Some(Duration::from_secs(10));

#[test]
#[cfg_attr(miri, ignore)]
fn calls_answers_and_errors() {
    let lib = library();
    let ctx = lib.create("rs").unwrap();
    assert_eq!(ctx.shout("hi", T).unwrap(), "rs: HI");
    assert!(ctx.scalar_check(1, 1, 0.5, T).unwrap());
    assert!(!ctx.scalar_check(1, 2, 0.0, T).unwrap());
    assert!(ctx.payload_check(&[], T).unwrap());
    assert_eq!(ctx.count(T).unwrap(), 4);
    assert_eq!(ctx.fail("boom", T), Err(Error::Failed("boom".into())));
    assert!(matches!(ctx.panic(T), Err(Error::Failed(m)) if m.starts_with("handler panicked")));
    assert_eq!(
        ctx.drop_reply(T),
        Err(Error::Failed("reply dropped".into()))
    );
    assert_eq!(ctx.echo_later("later", 5, T).unwrap(), "later");
    assert_eq!(ctx.echo_after("after", 5, T).unwrap(), "after");
    assert_eq!(ctx.yield_times(3, T).unwrap(), 3);
    assert!(
        matches!(ctx.yield_times(2_000_000, T), Err(Error::Failed(m)) if m.contains("too many"))
    );
    assert_eq!(lib.byte_sum(&[1, 2, 250]).unwrap(), 253);
    assert!(
        matches!(lib.panic_inline(), Err(Error::Failed(m)) if m.starts_with("handler panicked"))
    );
    assert_eq!(client::GREETING, "h\u{e9}llo \"C\"\n");
    // The futures of the same calls.
    assert_eq!(ctx.shout_async("x").wait().unwrap(), "rs: X");
    assert_eq!(ctx.fail_async("no").wait(), Err(Error::Failed("no".into())));
    assert_eq!(ctx.echo_later_async("l", 1).wait().unwrap(), "l");
    assert_eq!(ctx.echo_after_async("a", 1).wait().unwrap(), "a");
    assert_eq!(
        ctx.drop_reply_async().wait(),
        Err(Error::Failed("reply dropped".into()))
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn refusals_carry_their_code_and_the_runtime_s_reason() {
    let lib = library();
    let ctx = lib.create("r").unwrap();
    // Over FFID_MAX_REQUEST_BYTES: refused before the copy (the zeroed pages are never
    // touched), in every form.
    let big = vec![0u8; (1 << 30) + 1];
    let too_large = |e: &Result<bool, Error>| matches!(e, Err(Error::TooLarge(m)) if m.contains("over FFID_MAX_REQUEST_BYTES"));
    assert!(too_large(&ctx.payload_check(&big, T)));
    assert!(too_large(&ctx.payload_check_async(&big).wait()));
    drop(big);
    assert_eq!(
        Error::TooLarge(String::new()).code(),
        client::raw::FFID_RET_TOO_LARGE
    );
    // A destroyed handle through the raw exports: CLOSED, and no callback.
    static CALLED: AtomicU64 = AtomicU64::new(0);
    unsafe extern "C" fn never(
        _: std::ffi::c_int,
        _: *const std::ffi::c_char,
        _: usize,
        _: *mut std::ffi::c_void,
    ) {
        CALLED.fetch_add(1, Ordering::SeqCst);
    }
    let handle = ctx.handle();
    let raw = lib.raw();
    ctx.destroy().unwrap();
    // SAFETY: a handle is never dereferenced; the export refuses it.
    let rc = unsafe { (raw.count)(handle, Some(never), std::ptr::null_mut()) };
    assert_eq!(rc, client::raw::FFID_RET_CLOSED);
    // SAFETY: as above.
    assert_eq!(
        unsafe { (raw.destroy)(handle) },
        client::raw::FFID_RET_CLOSED,
        "a second destroy"
    );
    assert_eq!(CALLED.load(Ordering::SeqCst), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_timeout_leaves_the_call_running() {
    let lib = library();
    let ctx = lib.create("t").unwrap();
    let t0 = Instant::now();
    assert_eq!(
        ctx.sleep(300, Some(Duration::from_millis(20))),
        Err(Error::Timeout)
    );
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(Error::Timeout.code(), client::raw::FFID_RET_TIMEOUT);
    // The sleep still runs: the next call queues behind it.
    assert_eq!(ctx.count(None).unwrap(), 1);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    // A sub-millisecond timeout still waits (at least 1 ms), never "no limit".
    assert_eq!(
        ctx.sleep(200, Some(Duration::from_nanos(1))),
        Err(Error::Timeout)
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn events_reach_the_closure_until_the_subscription_is_dropped() {
    let lib = library();
    let ctx = lib.create("e").unwrap();
    let (tx, rx) = channel::<PerfPing>();
    let tx = Mutex::new(tx);
    let sub = ctx
        .listen_on_perf_ping(move |p| tx.lock().unwrap().send(p).unwrap())
        .unwrap();
    assert_ne!(sub.id(), 0);
    assert_eq!(ctx.trigger_ping(3, 4, 77, 10, T).unwrap(), 3);
    let got: Vec<PerfPing> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    for (i, p) in got.iter().enumerate() {
        assert_eq!((p.seq_no, p.stamp_ns), (10 + i as u64, 77));
        assert_eq!(p.data, vec![(10 + i) as u8; 4]);
    }
    drop(sub);
    assert_eq!(ctx.trigger_ping(2, 0, 0, 0, T).unwrap(), 2);
    // Emitted events reach listeners on the event thread; a blocking call after them
    // plus a moment is enough to see that none came.
    ctx.count(T).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err(), "a removed listener was called");
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_listener_may_drop_its_own_subscription_and_may_panic() {
    let lib = library();
    let ctx = lib.create("e").unwrap();
    // The subscription handed into its own closure, which drops it at the first event.
    let slot: Arc<Mutex<Option<client::Subscription>>> = Arc::default();
    let calls = Arc::new(AtomicU64::new(0));
    let (s2, c2) = (Arc::clone(&slot), Arc::clone(&calls));
    let sub = ctx
        .listen_on_perf_ping(move |_| {
            c2.fetch_add(1, Ordering::SeqCst);
            drop(s2.lock().unwrap().take());
        })
        .unwrap();
    *slot.lock().unwrap() = Some(sub);
    // A listener that panics at every event: caught, the others still run.
    let panics = ctx
        .listen_on_perf_ping(|p| panic!("a deliberate listener panic (event {})", p.seq_no))
        .unwrap();
    let (tx, rx) = channel::<u64>();
    let tx = Mutex::new(tx);
    let counter = ctx
        .listen_on_perf_ping(move |p| tx.lock().unwrap().send(p.seq_no).unwrap())
        .unwrap();
    assert_eq!(ctx.trigger_ping(5, 0, 0, 0, T).unwrap(), 5);
    let seen: Vec<u64> = (0..5)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "called again after dropping itself"
    );
    assert!(slot.lock().unwrap().is_none());
    drop((panics, counter));
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_subscription_may_outlive_its_context() {
    let lib = library();
    let ctx = lib.create("e").unwrap();
    let (tx, rx) = channel::<u64>();
    let tx: Mutex<Sender<u64>> = Mutex::new(tx);
    let sub = ctx
        .listen_on_perf_ping(move |p| tx.lock().unwrap().send(p.seq_no).unwrap())
        .unwrap();
    ctx.trigger_ping(1, 0, 0, 0, T).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 0);
    ctx.destroy().unwrap();
    // The closure (and its sender) lives until the subscription goes, and no event
    // comes after destroy.
    assert_eq!(rx.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty));
    drop(sub);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn destroy_answers_calls_in_flight_and_threads_block_together() {
    let lib = library();
    let ctx = lib.create("d").unwrap();
    let slow: Vec<_> = (0..3).map(|_| ctx.sleep_async(30)).collect();
    let later = ctx.echo_later_async("x", 10_000);
    let t0 = Instant::now();
    drop(ctx);
    // The sleeps ran (or were answered ERR); the deferred reply that would come in 10 s
    // was failed by destroy after the shutdown timeout at the latest.
    for p in slow {
        assert!(matches!(p.wait(), Ok(()) | Err(Error::Failed(_))));
    }
    assert!(matches!(later.wait(), Err(Error::Failed(_))));
    assert!(t0.elapsed() < Duration::from_secs(9));
    // Four threads blocking on one context.
    let ctx = lib.create("m").unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let ctx = &ctx;
            s.spawn(move || {
                for i in 0..200 {
                    let text = format!("t{t}i{i}");
                    assert_eq!(
                        ctx.shout(&text, T).unwrap(),
                        format!("m: {}", text.to_uppercase())
                    );
                }
            });
        }
    });
    assert_eq!(ctx.count(T).unwrap(), 800);
}

#[test]
#[cfg_attr(miri, ignore)]
fn the_raw_forms_are_the_library_exports() {
    use std::ffi::{c_char, c_int, c_void};
    unsafe extern "C" fn got(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
        // SAFETY: `msg` holds `len` bytes during the call; `ud` is the test's sender.
        let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) }.to_vec();
        let tx = unsafe { &*(ud as *const Sender<(c_int, Vec<u8>)>) };
        tx.send((ret, bytes)).unwrap();
    }
    // Made before the context, so dropped after it: destroy joins the worker, so `got`
    // has returned from its last `send` before `tx` goes (receiving the message alone
    // does not say that).
    let (tx, rx) = channel();
    let lib = library();
    let ctx = lib.create("raw").unwrap();
    let ud = &tx as *const Sender<(c_int, Vec<u8>)> as *mut c_void;
    let args = client::raw::EchoScalarCheckArgs { a: 2, b: 2, x: 0.0 };
    // SAFETY: a live handle, valid args, a callback; `tx` outlives the context.
    let rc = unsafe { (lib.raw().scalar_check)(ctx.handle(), Some(got), ud, &args) };
    assert_eq!(rc, client::raw::FFID_RET_OK);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        (0, vec![1])
    );
    // {"text": "cbor"}
    let req = [
        0xa1, 0x64, b't', b'e', b'x', b't', 0x64, b'c', b'b', b'o', b'r',
    ];
    // SAFETY: as above, with a CBOR request.
    let rc =
        unsafe { (lib.raw().shout_cbor)(ctx.handle(), Some(got), ud, req.as_ptr(), req.len()) };
    assert_eq!(rc, client::raw::FFID_RET_OK);
    let (ret, answer) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((ret, &answer[..]), (0, &b"\x69raw: CBOR"[..]));
    // A NULL callback is refused and never called.
    // SAFETY: as above.
    let rc = unsafe { (lib.raw().scalar_check)(ctx.handle(), None, ud, &args) };
    assert_eq!(rc, client::raw::FFID_RET_MISSING_CALLBACK);
}

#[test]
#[cfg_attr(miri, ignore)]
fn progress_pings_come_before_the_one_answer() {
    let lib = library();
    let mut opts = lib.options();
    opts.stale_ping_ms = 10;
    let ctx = lib.create_with_options("p", Some(&opts)).unwrap();
    // Each slow call gets pings first (not terminal: the call's box stays), then its
    // answer, once.
    let slow: Vec<_> = (0..3).map(|_| ctx.sleep_async(60)).collect();
    let later = ctx.echo_later_async("late", 80);
    for p in slow {
        assert_eq!(p.wait(), Ok(()));
    }
    assert_eq!(later.wait().unwrap(), "late");
    assert_eq!(ctx.sleep(60, T), Ok(()));
    let stats = ctx.stats().unwrap();
    assert!(stats.stale_pings >= 4, "{stats:?}");
    assert_eq!(stats.completed, stats.accepted);
}
