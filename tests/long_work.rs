//! Long and deferred work through `Lab` (`tests/support/lab.rs`): progress pings,
//! deferred replies, destroy with replies outstanding, cancellation, liveness
//! diagnostics, thread hooks and the counters.

mod support;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ffi_dispatch::abi::{
    DIAG_NOT_RESPONDING, DIAG_RESPONDING, THREAD_EVENTS, THREAD_MONITOR, THREAD_WORKER,
};
use ffi_dispatch::{
    HostFn, Options, ThreadHooks, RET_BUSY, RET_CLOSED, RET_ERR, RET_OK, RET_STALE_WARN,
};
use support::lab::*;

fn pings(entries: &[Entry]) -> usize {
    entries.iter().filter(|e| e.ret == RET_STALE_WARN).count()
}

#[test]
fn stale_pings_precede_the_single_terminal_callback() {
    let ctx = lab(Options {
        stale_ping: Some(Duration::from_millis(20)),
        ..Options::default()
    });
    let (key, control) = control();
    let log = Log::all();
    assert_eq!(block(ctx, &log, key), RET_OK);
    let got = log.wait_until("3 pings", |e| pings(e) >= 3);
    let ms: Vec<u64> = got
        .iter()
        .map(|e| e.text().parse().expect("decimal ms"))
        .collect();
    assert!(ms.windows(2).all(|w| w[0] < w[1]), "elapsed grows: {ms:?}");
    assert!(ms[0] >= 20, "the first ping after one interval: {ms:?}");
    assert!(
        got.iter().all(|e| e.thread.ends_with("-mon")),
        "pings come from the monitor"
    );
    control.release();
    let got = log.wait_until("the answer", |e| e.iter().any(|e| e.ret != RET_STALE_WARN));
    let last = got.last().unwrap();
    assert_eq!((last.ret, last.u64()), (RET_OK, key));
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(
        log.snapshot().len(),
        got.len(),
        "nothing after the terminal callback"
    );
    assert!(stats(ctx).stale_pings >= 3);
    // A quick call is never pinged.
    let quick = Log::all();
    assert_eq!(echo(ctx, &quick, 5), RET_OK);
    assert_eq!(quick.wait_len(1)[0].ret, RET_OK);
    assert_eq!(lab_destroy(ctx), RET_OK);
    assert_eq!(quick.snapshot().len(), 1);
}

#[test]
fn a_deferred_reply_frees_the_worker_and_answers_once_from_any_thread() {
    let ctx = lab(Options {
        stale_ping: Some(Duration::from_millis(20)),
        ..Options::default()
    });
    let (key, control) = control();
    let deferred = Log::all();
    assert_eq!(later(ctx, &deferred, key), RET_OK);
    // The worker moved on: another call is answered while the token is out.
    let other = Log::new();
    assert_eq!(echo(ctx, &other, 9), RET_OK);
    assert_eq!(other.wait_len(1)[0].u64(), 9);
    // The outstanding reply is pinged like a running request.
    deferred.wait_until("a ping of the deferred reply", |e| pings(e) >= 1);
    assert_eq!(stats(ctx).deferred_pending, 1);
    let token = control.tokens.lock().unwrap().pop().expect("the token");
    let id = token.request_id();
    std::thread::Builder::new()
        .name("completer".into())
        .spawn(move || token.complete(&42))
        .unwrap()
        .join()
        .unwrap();
    let got = deferred.wait_until("the answer", |e| e.iter().any(|e| e.ret == RET_OK));
    let last = got.last().unwrap();
    assert_eq!((last.u64(), last.thread.as_str()), (42, "completer"));
    assert!(got[..got.len() - 1].iter().all(|e| e.ret == RET_STALE_WARN));
    assert!(id > 0);
    assert_eq!(
        settled_stats(ctx, |s| s.deferred_pending == 0).deferred_pending,
        0
    );
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(
        deferred.snapshot().len(),
        got.len(),
        "no ping after the answer"
    );
    assert_eq!(lab_destroy(ctx), RET_OK);
}

#[test]
fn deferred_tokens_answer_at_once_dropped_or_panicking() {
    let ctx = lab(Options::default());
    let (now, dropped, panicked) = (Log::new(), Log::new(), Log::new());
    // SAFETY: valid args; the logs outlive their callbacks.
    unsafe {
        assert_eq!(
            lab_at_once(ctx, RECORD, now.ud(), &LabAtOnceArgs { x: 3 }),
            RET_OK
        );
    }
    assert_eq!(lab_drop_token(ctx, RECORD, dropped.ud()), RET_OK);
    assert_eq!(lab_panic_deferred(ctx, RECORD, panicked.ud()), RET_OK);
    let cbor = Log::new();
    let req = [0xa1, 0x61, b'x', 0x07]; // {"x": 7}
    assert_eq!(
        // SAFETY: `req` holds its bytes for the call.
        unsafe { lab_at_once_cbor(ctx, RECORD, cbor.ud(), req.as_ptr(), req.len()) },
        RET_OK
    );
    assert_eq!(lab_destroy(ctx), RET_OK);
    let one = |log: &Arc<Log>| {
        let e = log.snapshot();
        assert_eq!(e.len(), 1, "exactly one callback: {e:?}");
        e[0].clone()
    };
    assert_eq!((one(&now).ret, one(&now).u64()), (RET_OK, 3));
    assert_eq!(
        (one(&dropped).ret, one(&dropped).text()),
        (RET_ERR, "reply dropped".into())
    );
    let p = one(&panicked);
    assert_eq!(p.ret, RET_ERR);
    assert!(p.text().contains("panicked"), "{}", p.text());
    assert_eq!(minicbor::decode::<u64>(&one(&cbor).msg).unwrap(), 7);
}

#[test]
fn destroy_fails_outstanding_deferred_replies_after_the_timeout() {
    let ctx = lab(Options {
        shutdown_timeout: Duration::from_millis(50),
        ..Options::default()
    });
    let (key, control) = control();
    let log = Log::new();
    assert_eq!(later(ctx, &log, key), RET_OK);
    while control.tokens.lock().unwrap().is_empty() {
        std::thread::yield_now();
    }
    let started = std::time::Instant::now();
    assert_eq!(lab_destroy(ctx), RET_OK);
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "destroy waited"
    );
    let got = log.snapshot();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ret, RET_ERR);
    assert!(got[0].text().contains("destroyed"), "{}", got[0].text());
    // The token answered late changes nothing.
    control.tokens.lock().unwrap().pop().unwrap().complete(&1);
    assert_eq!(log.snapshot().len(), 1, "never two");
}

#[test]
fn destroy_waits_for_a_deferred_reply_completed_in_time() {
    let ctx = lab(Options::default());
    let (key, control) = control();
    let log = Log::new();
    assert_eq!(later(ctx, &log, key), RET_OK);
    while control.tokens.lock().unwrap().is_empty() {
        std::thread::yield_now();
    }
    let completer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        control.tokens.lock().unwrap().pop().unwrap().complete(&5);
    });
    assert_eq!(lab_destroy(ctx), RET_OK);
    let got = log.snapshot();
    assert_eq!((got.len(), got[0].ret, got[0].u64()), (1, RET_OK, 5));
    completer.join().unwrap();
}

#[test]
fn a_queued_request_can_be_cancelled_a_started_one_cannot() {
    let ctx = lab(Options::default());
    let (key, control) = control();
    let (blocked, a, b, c) = (Log::new(), Log::new(), Log::new(), Log::new());
    assert_eq!(block(ctx, &blocked, key), RET_OK);
    let running = lab_last_request_id();
    let mut ids = Vec::new();
    for (log, x) in [(&a, 1), (&b, 2), (&c, 3)] {
        assert_eq!(echo(ctx, log, x), RET_OK);
        ids.push(lab_last_request_id());
    }
    assert_eq!(ids, [running + 1, running + 2, running + 3], "ids count up");
    // Wait until the blocking call has surely started.
    while stats(ctx).queue_depth > 3 {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(lab_cancel(ctx, running), RET_ERR, "started");
    assert_eq!(lab_cancel(ctx, ids[1]), RET_OK);
    assert_eq!(lab_cancel(ctx, ids[1]), RET_ERR, "already cancelled");
    assert_eq!(lab_cancel(ctx, ids[2] + 100), RET_ERR, "unknown id");
    assert_eq!(lab_cancel(ctx, 0), RET_ERR);
    control.release();
    assert_eq!(a.wait_len(1)[0].u64(), 1);
    let got = b.wait_len(1);
    assert_eq!((got[0].ret, got[0].text()), (RET_ERR, "cancelled".into()));
    assert_eq!(c.wait_len(1)[0].u64(), 3);
    assert_eq!(lab_cancel(ctx, ids[2]), RET_ERR, "finished");
    let s = settled_stats(ctx, |s| s.completed == 4);
    assert_eq!((s.cancelled, s.completed, s.accepted), (1, 4, 4));
    assert_eq!(lab_destroy(ctx), RET_OK);
    assert_eq!(lab_cancel(ctx, ids[2]), RET_CLOSED, "destroyed");
    assert_eq!(b.snapshot().len(), 1);
}

#[test]
fn cancel_racing_the_worker_decides_exactly_once() {
    // Many cancels of requests the worker is racing through: each request is either
    // cancelled (cancel said OK, answered "cancelled") or ran (cancel said ERR).
    let ctx = lab(Options::default());
    for _ in 0..200 {
        let log = Log::new();
        assert_eq!(echo(ctx, &log, 1), RET_OK);
        let id = lab_last_request_id();
        let cancelled = lab_cancel(ctx, id) == RET_OK;
        let e = log.wait_len(1);
        assert_eq!(e[0].ret == RET_ERR, cancelled, "{e:?}");
        if cancelled {
            assert_eq!(e[0].text(), "cancelled");
        }
    }
    assert_eq!(lab_destroy(ctx), RET_OK);
}

#[test]
fn a_wedged_worker_is_reported_once_and_its_recovery_too() {
    let diag = Log::all();
    let ctx = lab(Options {
        not_responding: Some(Duration::from_millis(30)),
        stale_ping: None,
        diagnostic: Some(HostFn {
            f: RECORD.unwrap(),
            user_data: diag.ud(),
        }),
        ..Options::default()
    });
    let (key, control) = control();
    let log = Log::new();
    assert_eq!(block(ctx, &log, key), RET_OK);
    let got = diag.wait_len(1);
    assert_eq!(got[0].ret, DIAG_NOT_RESPONDING);
    assert!(
        got[0].text().contains("`block`"),
        "names the method: {}",
        got[0].text()
    );
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(diag.snapshot().len(), 1, "once");
    control.release();
    let got = diag.wait_len(2);
    assert_eq!(got[1].ret, DIAG_RESPONDING);
    assert_eq!(
        log.wait_len(1)[0].ret,
        RET_OK,
        "no pings: stale_ping is off"
    );
    assert_eq!(lab_destroy(ctx), RET_OK);
}

static HOOKS: Mutex<Vec<(bool, c_int, String, usize)>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_start(role: c_int, name: *const c_char, ud: *mut c_void) {
    // SAFETY: the runtime passes a valid C string for the call.
    let name = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    HOOKS.lock().unwrap().push((true, role, name, ud as usize));
}

unsafe extern "C" fn on_stop(role: c_int, name: *const c_char, ud: *mut c_void) {
    // SAFETY: as above.
    let name = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    HOOKS.lock().unwrap().push((false, role, name, ud as usize));
}

#[test]
fn thread_hooks_run_first_and_last_on_every_context_thread() {
    let ctx = lab(Options {
        thread_hooks: Some(ThreadHooks {
            start: Some(on_start),
            stop: Some(on_stop),
            user_data: 77 as *mut c_void,
        }),
        ..Options::default()
    });
    assert_eq!(lab_destroy(ctx), RET_OK);
    let mut seen: Vec<_> = HOOKS.lock().unwrap().clone();
    assert!(seen.iter().all(|h| h.3 == 77), "user_data passed");
    seen.sort_by_key(|h| (h.1, !h.0));
    let roles: Vec<(bool, c_int)> = seen.iter().map(|h| (h.0, h.1)).collect();
    assert_eq!(
        roles,
        [
            (true, THREAD_WORKER),
            (false, THREAD_WORKER),
            (true, THREAD_EVENTS),
            (false, THREAD_EVENTS),
            (true, THREAD_MONITOR),
            (false, THREAD_MONITOR),
        ],
        "start and stop once per thread, by the default options' monitor too"
    );
}

#[test]
fn counters_follow_accepted_completed_refused_and_panics() {
    let ctx = lab(Options::default());
    let log = Log::new();
    for x in 0..10 {
        assert_eq!(echo(ctx, &log, x), RET_OK);
    }
    assert_eq!(
        // SAFETY: a null args pointer is refused before anything is read.
        unsafe { lab_echo(ctx, RECORD, log.ud(), std::ptr::null()) },
        RET_ERR
    );
    assert_eq!(lab_panic_deferred(ctx, RECORD, log.ud()), RET_OK);
    log.wait_len(11);
    let s = settled_stats(ctx, |s| s.completed == 11 && s.panics == 1);
    assert_eq!(
        (s.accepted, s.completed, s.refused, s.panics),
        (11, 11, 1, 1)
    );
    assert!(s.high_water <= 11 && s.queue_depth == 0);
    // The C view: struct_size limits what is written.
    let mut c = ffi_dispatch::abi::ffid_context_stats {
        struct_size: std::mem::size_of::<ffi_dispatch::abi::ffid_context_stats>() as u32,
        ..Default::default()
    };
    // SAFETY: `c` is a writable struct of the size it names.
    assert_eq!(unsafe { lab_stats(ctx, &mut c) }, RET_OK);
    assert_eq!(
        (c.accepted, c.completed, c.refused, c.panics),
        (11, 11, 1, 1)
    );
    let mut short = [0u64; 2];
    short[0] = 16; // struct_size 16: the header and `accepted`
                   // SAFETY: 16 writable bytes.
    assert_eq!(unsafe { lab_stats(ctx, short.as_mut_ptr().cast()) }, RET_OK);
    assert_eq!(short[1], 11, "accepted written, nothing past the 16 bytes");
    assert_eq!(short[0] as u32, 16, "struct_size kept");
    assert_eq!(lab_destroy(ctx), RET_OK);
    // SAFETY: as above.
    assert_eq!(unsafe { lab_stats(ctx, &mut c) }, RET_CLOSED);
}

#[test]
#[cfg_attr(miri, ignore = "Miri does not model poll(2) on the eventfd")]
fn completion_mode_runs_every_callback_on_the_draining_thread() {
    let ctx = lab(Options {
        completion: ffi_dispatch::CompletionMode::Queue,
        stale_ping: Some(Duration::from_millis(20)),
        ..Options::default()
    });
    let fd = lab_completion_fd(ctx);
    assert!(fd >= 0);
    let readable = |timeout_ms: i32| {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 }
    };
    let log = Log::new();
    for x in 0..5 {
        assert_eq!(echo(ctx, &log, x), RET_OK);
    }
    assert!(readable(10_000), "the fd turns readable");
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        log.snapshot().is_empty(),
        "nothing runs until the host drains"
    );
    let mut ran = 0;
    while ran < 5 {
        ran += lab_drain(ctx, 2) as usize;
        if ran < 5 {
            assert!(readable(10_000));
        }
    }
    let got = log.snapshot();
    let me = std::thread::current().name().unwrap_or("?").to_owned();
    assert_eq!(
        got.iter().map(Entry::u64).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert!(got.iter().all(|e| e.thread == me), "on the draining thread");
    // A blocked call's pings queue too, ahead of its answer.
    let (key, control) = control();
    let slow = Log::all();
    assert_eq!(block(ctx, &slow, key), RET_OK);
    std::thread::sleep(Duration::from_millis(70));
    control.release();
    while !slow.snapshot().iter().any(|e| e.ret == RET_OK) {
        assert!(readable(10_000));
        lab_drain(ctx, 100);
    }
    let got = slow.snapshot();
    assert!(pings(&got) >= 1 && got.last().unwrap().ret == RET_OK);
    // Left undrained, destroy runs them on its own thread.
    let left = Log::new();
    assert_eq!(echo(ctx, &left, 9), RET_OK);
    assert_eq!(lab_destroy(ctx), RET_OK);
    let got = left.snapshot();
    assert_eq!(
        (got.len(), got[0].u64(), got[0].thread.as_str()),
        (1, 9, me.as_str())
    );
    assert_eq!(lab_drain(ctx, 1), -1, "destroyed");
}

#[test]
fn completion_calls_are_refused_outside_completion_mode() {
    let ctx = lab(Options::default());
    assert_eq!(lab_drain(ctx, 1), -1);
    assert_eq!(lab_completion_fd(ctx), -1);
    assert_eq!(lab_destroy(ctx), RET_OK);
}

/// What a callback did from inside: destroy's answer and a call's answer.
#[derive(Default)]
struct Inside {
    ctx: std::sync::atomic::AtomicUsize,
    destroyed: std::sync::atomic::AtomicI32,
    called: std::sync::atomic::AtomicI32,
    calls: Arc<Log>,
    done: Log,
}

/// Tries destroy and one more call from inside the callback.
unsafe extern "C" fn act_inside(ret: c_int, _: *const c_char, _: usize, ud: *mut c_void) {
    use std::sync::atomic::Ordering::SeqCst;
    // SAFETY: `ud` is an `Inside` the test keeps alive until `done` is pushed.
    let inside = unsafe { &*(ud as *const Inside) };
    let ctx = inside.ctx.load(SeqCst) as *mut ffi_dispatch::ffid_ctx;
    inside.destroyed.store(lab_destroy(ctx), SeqCst);
    inside.called.store(echo(ctx, &inside.calls, 1), SeqCst);
    inside.done.push(ret, Vec::new());
}

#[test]
fn inside_a_deferred_answer_destroy_is_refused_and_a_call_never_blocks() {
    use std::sync::atomic::Ordering::SeqCst;
    let ctx = lab(Options {
        ring_capacity: 2,
        ..Options::default()
    });
    let inside = Arc::new(Inside::default());
    inside.ctx.store(ctx as usize, SeqCst);
    let (later_key, later_control) = control();
    // SAFETY: valid args; `inside` outlives the callback (waited for below).
    let accepted = unsafe {
        lab_later(
            ctx,
            Some(act_inside),
            Arc::as_ptr(&inside) as *mut c_void,
            &LabLaterArgs { key: later_key },
        )
    };
    assert_eq!(accepted, RET_OK);
    let token = loop {
        if let Some(t) = later_control.tokens.lock().unwrap().pop() {
            break t;
        }
        std::thread::yield_now();
    };
    // The worker held in a handler and the ring full behind it (Block policy).
    let (key, control) = control();
    let held = Log::new();
    assert_eq!(block(ctx, &held, key), RET_OK);
    while stats(ctx).queue_depth > 0 {
        std::thread::yield_now();
    }
    let queued = Log::new();
    assert_eq!(echo(ctx, &queued, 7), RET_OK);
    assert_eq!(echo(ctx, &queued, 8), RET_OK);
    // Answered on a library thread of its own: inside a callback there.
    std::thread::spawn(move || token.complete(&5))
        .join()
        .unwrap();
    inside.done.wait_len(1);
    assert_eq!(
        inside.destroyed.load(SeqCst),
        RET_BUSY,
        "destroy inside a callback"
    );
    assert_eq!(
        inside.called.load(SeqCst),
        ffi_dispatch::RET_BUSY,
        "no wait inside"
    );
    control.release();
    assert_eq!(lab_destroy(ctx), RET_OK);
    assert_eq!(queued.snapshot().len(), 2);
    assert!(
        inside.calls.snapshot().is_empty(),
        "the refused call is never answered"
    );
}

#[test]
fn undrained_completion_mode_refuses_instead_of_waiting_and_destroy_answers_all() {
    let ctx = lab(Options {
        ring_capacity: 4,
        completion: ffi_dispatch::CompletionMode::Queue,
        ..Options::default()
    });
    let log = Log::new();
    // Never drained: the completion queue (1024) fills, the worker waits for a drain,
    // the ring fills; from then on the host is refused, also under Block.
    let mut accepted = 0;
    let mut busy_since = None;
    loop {
        match echo(ctx, &log, accepted) {
            RET_OK => {
                accepted += 1;
                busy_since = None;
            }
            ffi_dispatch::RET_BUSY => {
                let since = *busy_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > Duration::from_millis(100) {
                    break;
                }
                std::thread::yield_now();
            }
            other => panic!("call {accepted} refused with {other}"),
        }
    }
    assert!(accepted > 1024, "the queue and the ring took {accepted}");
    assert!(log.snapshot().is_empty(), "nothing runs until a drain");
    // Destroy with everything undrained: it returns, and answers each call once, in order.
    assert_eq!(lab_destroy(ctx), RET_OK);
    let got = log.snapshot();
    assert_eq!(got.len() as u64, accepted);
    assert!(
        got.iter().map(Entry::u64).eq(0..accepted),
        "in order, once each"
    );
}
