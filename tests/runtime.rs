//! Rust-level tests of the runtime through the author API: a second library type next
//! to `echo`, constructor failures, teardown order, wake accounting, and destroy racing
//! submitters. Callbacks are Rust `extern "C"` functions.

mod support;

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// A library written by hand, as the macros would write it: through the macros'
// contract, `rt`.
use ffi_dispatch::rt::cbor::ArgMap;
use ffi_dispatch::rt::{create, destroy, submit, Method, Request};
use ffi_dispatch::{
    ffid_ctx, stats, CallError, Library, Options, RET_CLOSED, RET_ERR, RET_INVALID_CTX, RET_OK,
};
use support::lab::{Log, RECORD};

/// Waits for the first callback into `log` and returns its status and message.
fn wait(log: &Log) -> (c_int, String) {
    let first = &log.wait_len(1)[0];
    (first.ret, first.text())
}

/// A second library: a log of events shared with the test.
struct Journal {
    log: Arc<Mutex<Vec<String>>>,
}

enum Start {
    Ok,
    Fail,
    Panic,
}

impl Library for Journal {
    const NAME: &'static str = "journal";
    type Config = (Arc<Mutex<Vec<String>>>, Start);
    const METHODS: &'static [Method<Self>] = &[Method {
        name: "note",
        native: |mut l, r, out| out.value(&l.get_mut().note(r.str()?)),
        cbor: |mut l, req, out| {
            let m = ArgMap::parse(req, ["text"])?;
            out.value(&l.get_mut().note(m.get(0)?))
        },
    }];

    fn construct((log, start): Self::Config) -> Result<Self, CallError> {
        match start {
            Start::Ok => Ok(Journal { log }),
            Start::Fail => Err("no journal today".into()),
            Start::Panic => panic!("journal constructor exploded"),
        }
    }

    fn teardown(&mut self) {
        self.log.lock().unwrap().push("teardown".into());
    }
}

impl Journal {
    fn note(&mut self, text: &str) -> u64 {
        let mut log = self.log.lock().unwrap();
        log.push(text.to_owned());
        log.len() as u64
    }
}

fn journal(
    start: Start,
    created: &Arc<Log>,
    options: Options,
) -> (*mut ffid_ctx, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let config = (log.clone(), start);
    let ctx = create::<Journal>(RECORD, created.ud(), Some(options), || Ok(config));
    assert!(!ctx.is_null());
    (ctx, log)
}

fn note(ctx: *mut ffid_ctx, log: &Arc<Log>, text: &'static str) -> c_int {
    submit::<Journal>(ctx, RECORD, log.ud(), 0, || {
        Ok(Request::native(|w| {
            w.str(text);
        }))
    })
}

#[test]
fn a_handle_of_another_library_is_refused() {
    let created = Log::new();
    let (jctx, _) = journal(Start::Ok, &created, Options::default());
    assert_eq!(wait(&created).0, RET_OK);

    // Every callback counts here, progress pings too: a refused call gets none.
    let stray = Log::all();
    // The journal's handle through echo's exports, and the reverse.
    let args = echo::EchoShoutArgs {
        text: c"x".as_ptr(),
    };
    assert_eq!(
        // SAFETY: valid pointers; the handle is only inspected.
        unsafe { echo::echo_shout(jctx, RECORD, stray.ud(), &args) },
        RET_INVALID_CTX
    );
    assert_eq!(echo::echo_destroy(jctx), RET_INVALID_CTX);
    let echo_created = Log::new();
    let cfg = echo::EchoConfig {
        prefix: c"e".as_ptr(),
    };
    // SAFETY: valid config and callback.
    let ectx = unsafe {
        echo::echo_create_checked(
            echo::echo_interface_hash(),
            RECORD,
            echo_created.ud(),
            &cfg,
            std::ptr::null(),
        )
    };
    wait(&echo_created);
    assert_eq!(note(ectx, &stray, "x"), RET_INVALID_CTX);
    assert_eq!(destroy::<Journal>(ectx), RET_INVALID_CTX);

    // Both still work afterwards.
    let seen = Log::new();
    assert_eq!(note(jctx, &seen, "still mine"), RET_OK);
    assert_eq!(
        wait(&seen),
        (
            RET_OK,
            String::from_utf8(1u64.to_ne_bytes().to_vec()).unwrap()
        )
    );
    assert_eq!(destroy::<Journal>(jctx), RET_OK);
    assert_eq!(echo::echo_destroy(ectx), RET_OK);
    assert!(stray.snapshot().is_empty(), "no callback for refused calls");
}

#[test]
fn a_failed_constructor_fails_every_queued_call() {
    for (start, expected) in [
        (Start::Fail, "no journal today"),
        (
            Start::Panic,
            "constructor panicked: journal constructor exploded",
        ),
    ] {
        let created = Log::new();
        let (ctx, log) = journal(start, &created, Options::default());
        let queued: Vec<Arc<Log>> = (0..100).map(|_| Log::new()).collect();
        for s in &queued {
            assert_eq!(
                note(ctx, s, "never"),
                RET_OK,
                "calls queue behind the constructor"
            );
        }
        assert_eq!(wait(&created), (RET_ERR, expected.to_owned()));
        for s in &queued {
            assert_eq!(
                wait(s),
                (RET_ERR, format!("constructor failed: {expected}"))
            );
        }
        assert_eq!(
            destroy::<Journal>(ctx),
            RET_OK,
            "the handle must still be destroyed"
        );
        assert!(
            log.lock().unwrap().is_empty(),
            "no method and no teardown ran"
        );
        assert!(queued.iter().all(|s| s.snapshot().len() == 1));
    }
}

#[test]
fn teardown_runs_after_the_last_request() {
    let created = Log::new();
    let (ctx, log) = journal(Start::Ok, &created, Options::default());
    let seen: Vec<Arc<Log>> = (0..50).map(|_| Log::new()).collect();
    for s in &seen {
        assert_eq!(note(ctx, s, "n"), RET_OK);
    }
    assert_eq!(destroy::<Journal>(ctx), RET_OK);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 51);
    assert_eq!(log.last().map(String::as_str), Some("teardown"));
    assert!(seen.iter().all(|s| s.snapshot().len() == 1));
}

/// A hot worker is never woken (no syscall per submit); a worker that parks at once
/// needs a wake for calls that find it parked, and never more than one per call.
#[test]
fn wakes_only_when_the_worker_announced_parking() {
    let hot = Options {
        spin: Duration::from_secs(30),
        ..Options::default()
    };
    let cold = Options {
        spin: Duration::ZERO,
        ..Options::default()
    };
    for (options, calls) in [(hot, 2000u64), (cold, 200)] {
        let created = Log::new();
        let (ctx, _) = journal(Start::Ok, &created, options.clone());
        wait(&created);
        for i in 0..calls {
            let seen = Log::new();
            assert_eq!(note(ctx, &seen, "w"), RET_OK);
            wait(&seen);
            if options.spin.is_zero() && i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1)); // the worker parks
            }
        }
        let s = stats(ctx).unwrap();
        let wakes = s.wakeups;
        assert_eq!(destroy::<Journal>(ctx), RET_OK);
        if options.spin.is_zero() {
            assert!(
                (calls / 10..=calls).contains(&wakes),
                "{wakes} wakes for {calls} calls"
            );
        } else {
            // It parks only when its spin shares a core with a runnable thread (this
            // test's host, say), and is woken only after it announced it.
            assert!(wakes <= s.parks, "{wakes} wakes for {} parks", s.parks);
        }
    }
}

#[test]
fn the_eventfd_backend_exposes_its_descriptor() {
    let created = Log::new();
    let options = Options {
        wake: ffi_dispatch::WakeKind::EventFd,
        spin: Duration::ZERO,
        ..Options::default()
    };
    let (ctx, _) = journal(Start::Ok, &created, options);
    wait(&created);
    let fd = ffi_dispatch::wake_fd(ctx).expect("an eventfd context has a descriptor");
    // SAFETY: fcntl on a descriptor the context owns; F_GETFD only reads its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0, "a live descriptor");
    let seen = Log::new();
    assert_eq!(note(ctx, &seen, "through eventfd"), RET_OK);
    assert_eq!(wait(&seen).0, RET_OK);
    assert_eq!(destroy::<Journal>(ctx), RET_OK);
    assert_eq!(ffi_dispatch::wake_fd(ctx), None, "stale handle");

    let created = Log::new();
    let (futex, _) = journal(Start::Ok, &created, Options::default());
    wait(&created);
    assert_eq!(
        ffi_dispatch::wake_fd(futex),
        None,
        "the futex backend has no descriptor"
    );
    assert_eq!(destroy::<Journal>(futex), RET_OK);
}

/// Submitters hammer a context while it is destroyed: accepted calls get exactly one
/// callback, refused ones none, and destroy returns only after the last callback.
#[test]
fn destroy_racing_submitters_is_exactly_once() {
    static CALLBACKS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn count(_: c_int, _: *const c_char, _: usize, _: *mut c_void) {
        CALLBACKS.fetch_add(1, Ordering::SeqCst);
    }
    for round in 0..20 {
        CALLBACKS.store(0, Ordering::SeqCst);
        let created = Log::new();
        let options = Options {
            ring_capacity: 64,
            ..Options::default()
        };
        let (ctx, _) = journal(Start::Ok, &created, options);
        let ctx_bits = ctx as usize;
        let submitters: Vec<_> = (0..3)
            .map(|_| {
                std::thread::spawn(move || {
                    let ctx = ctx_bits as *mut ffid_ctx;
                    let mut accepted = 0usize;
                    loop {
                        let ret =
                            submit::<Journal>(ctx, Some(count), std::ptr::null_mut(), 0, || {
                                Ok(Request::native(|w| {
                                    w.str("r");
                                }))
                            });
                        match ret {
                            RET_OK => accepted += 1,
                            RET_CLOSED => return accepted, // destroyed (or being destroyed)
                            other => panic!("unexpected status {other}"),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_micros(200 * (round % 5)));
        assert_eq!(destroy::<Journal>(ctx), RET_OK);
        let at_destroy = CALLBACKS.load(Ordering::SeqCst);
        let accepted: usize = submitters.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(
            at_destroy, accepted,
            "round {round}: every accepted call answered before destroy returned"
        );
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(
            CALLBACKS.load(Ordering::SeqCst),
            accepted,
            "round {round}: nothing after destroy"
        );
    }
}
