//! Async handlers: `async fn` methods polled on the worker, re-queued through the ring
//! by their wakers, interleaved with sync requests; errors, panics, the full-ring wake
//! path, and destroy with tasks still running.

mod support;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ffi_dispatch::{Options, RET_ERR, RET_OK};
use support::lab::{settled_stats, Log, RECORD};

/// A timer future: a thread sleeps, then wakes the task.
struct Sleep(Arc<Mutex<(bool, Option<Waker>)>>);

fn sleep(ms: u32) -> Sleep {
    let state = Arc::new(Mutex::new((false, None::<Waker>)));
    let timer = state.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms as u64));
        let mut s = timer.lock().unwrap();
        s.0 = true;
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    Sleep(state)
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.lock().unwrap();
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Pending once, waking itself at once.
struct Yield(bool);

impl Future for Yield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Never ready, never wakes.
struct Never;

impl Future for Never {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

pub struct Aio {
    journal: RefCell<Vec<String>>,
}

#[ffi_dispatch::library(name = "aio")]
impl Aio {
    #[ffi(ctor)]
    fn create() -> Aio {
        Aio {
            journal: RefCell::new(Vec::new()),
        }
    }

    /// Answers `x` after `ms`.
    #[ffi]
    async fn after(&self, ms: u32, x: u64) -> u64 {
        sleep(ms).await;
        x
    }

    /// Yields `n` times, noting each step.
    #[ffi]
    async fn yields(&self, n: u32) -> u32 {
        for i in 0..n {
            self.journal.borrow_mut().push(format!("y{i}"));
            Yield(false).await;
        }
        self.journal.borrow_mut().push("done".into());
        n
    }

    /// Notes `text` (sync).
    #[ffi]
    fn note(&self, text: String) {
        self.journal.borrow_mut().push(text);
    }

    /// Blocks the worker (sync).
    #[ffi]
    fn hold(&self, ms: u32) {
        std::thread::sleep(Duration::from_millis(ms as u64));
    }

    /// The notes so far.
    #[ffi]
    fn journal(&self) -> Vec<String> {
        self.journal.borrow().clone()
    }

    #[ffi]
    async fn fails(&self) -> Result<u64, String> {
        Yield(false).await;
        Err("async failure".into())
    }

    #[ffi]
    async fn explode(&self) -> u64 {
        Yield(false).await;
        panic!("async handler exploded");
    }

    #[ffi]
    async fn never(&self) -> u64 {
        Never.await;
        0
    }

    /// Never ready: leaves its waker in `STASHED`, as a future handing it to an I/O
    /// library would.
    #[ffi]
    async fn stash(&self) -> u64 {
        Stash.await;
        0
    }
}

static STASHED: Mutex<Option<Waker>> = Mutex::new(None);

/// Never ready; keeps its waker where the test can reach it.
struct Stash;

impl Future for Stash {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *STASHED.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn aio(options: Options) -> *mut ffi_dispatch::ffid_ctx {
    let created = Log::new();
    let o = options.to_c();
    // SAFETY: valid options; the log is kept alive by `ud()`.
    let ctx = unsafe { aio_create_checked(aio_interface_hash(), RECORD, created.ud(), &o) };
    assert!(!ctx.is_null());
    assert_eq!(created.wait_len(1)[0].ret, RET_OK);
    ctx
}

fn after(ctx: *mut ffi_dispatch::ffid_ctx, log: &Arc<Log>, ms: u32, x: u64) -> i32 {
    // SAFETY: valid args; the log outlives its callback.
    unsafe { aio_after(ctx, RECORD, log.ud(), &AioAfterArgs { ms, x }) }
}

fn hold(ctx: *mut ffi_dispatch::ffid_ctx, log: &Arc<Log>, ms: u32) -> i32 {
    // SAFETY: as above.
    unsafe { aio_hold(ctx, RECORD, log.ud(), &AioHoldArgs { ms }) }
}

#[test]
fn an_async_handler_frees_the_worker_while_it_waits() {
    let ctx = aio(Options::default());
    let (slow, quick) = (Log::new(), Log::new());
    assert_eq!(after(ctx, &slow, 100, 7), RET_OK);
    assert_eq!(hold(ctx, &quick, 0), RET_OK);
    quick.wait_len(1);
    assert!(
        slow.snapshot().is_empty(),
        "the sync call was answered first"
    );
    let got = slow.wait_len(1);
    assert_eq!((got[0].ret, got[0].u64()), (RET_OK, 7));
    assert!(
        got[0].thread.starts_with("ffid-aio"),
        "polled on the worker: {}",
        got[0].thread
    );
    // CBOR view of the same method: {"ms": 1, "x": 9}
    let cbor = Log::new();
    let req = [0xa2, 0x62, b'm', b's', 0x01, 0x61, b'x', 0x09];
    assert_eq!(
        // SAFETY: `req` holds its bytes for the call.
        unsafe { aio_after_cbor(ctx, RECORD, cbor.ud(), req.as_ptr(), req.len()) },
        RET_OK
    );
    assert_eq!(
        minicbor::decode::<u64>(&cbor.wait_len(1)[0].msg).unwrap(),
        9
    );
    assert_eq!(aio_destroy(ctx), RET_OK);
    assert_eq!(slow.snapshot().len(), 1);
}

#[test]
fn tasks_and_requests_take_turns_in_ring_order() {
    let ctx = aio(Options::default());
    let (h, y, n, j) = (Log::new(), Log::new(), Log::new(), Log::new());
    // The worker is held, so the ring reads [yields(3), note("a")] when it comes back.
    assert_eq!(hold(ctx, &h, 30), RET_OK);
    // SAFETY: valid args; the logs outlive their callbacks.
    unsafe {
        assert_eq!(
            aio_yields(ctx, RECORD, y.ud(), &AioYieldsArgs { n: 3 }),
            RET_OK
        );
        let a = std::ffi::CString::new("a").unwrap();
        let text = a.as_ptr();
        assert_eq!(aio_note(ctx, RECORD, n.ud(), &AioNoteArgs { text }), RET_OK);
    }
    assert_eq!(y.wait_len(1)[0].u32(), 3);
    assert_eq!(aio_journal(ctx, RECORD, j.ud()), RET_OK);
    // Native Vec<String>: an array of `const char*`; read it through the CBOR view.
    let cbor = Log::new();
    assert_eq!(
        // SAFETY: an empty request.
        unsafe { aio_journal_cbor(ctx, RECORD, cbor.ud(), std::ptr::null(), 0) },
        RET_OK
    );
    let journal: Vec<String> = minicbor::decode(&cbor.wait_len(1)[0].msg).unwrap();
    assert_eq!(
        journal,
        ["y0", "a", "y1", "y2", "done"],
        "the note ran between the yields"
    );
    let s = ffi_dispatch::stats(ctx).unwrap();
    assert_eq!(
        s.accepted, 5,
        "wake markers are not counted as calls: {s:?}"
    );
    assert_eq!(aio_destroy(ctx), RET_OK);
}

#[test]
fn async_errors_and_panics_answer_err_once() {
    let ctx = aio(Options::default());
    let (f, p) = (Log::new(), Log::new());
    assert_eq!(aio_fails(ctx, RECORD, f.ud()), RET_OK);
    assert_eq!(aio_explode(ctx, RECORD, p.ud()), RET_OK);
    let got = f.wait_len(1);
    assert_eq!(
        (got[0].ret, got[0].text()),
        (RET_ERR, "async failure".into())
    );
    let got = p.wait_len(1);
    assert_eq!(got[0].ret, RET_ERR);
    assert!(got[0].text().contains("panicked"), "{}", got[0].text());
    let ok = Log::new();
    assert_eq!(after(ctx, &ok, 0, 1), RET_OK, "the worker goes on");
    assert_eq!(ok.wait_len(1)[0].u64(), 1);
    assert_eq!(settled_stats(ctx, |s| s.panics == 1).panics, 1);
    assert_eq!(aio_destroy(ctx), RET_OK);
    assert_eq!((f.snapshot().len(), p.snapshot().len()), (1, 1));
}

#[test]
fn a_wake_that_finds_the_ring_full_is_not_lost() {
    let ctx = aio(Options {
        ring_capacity: 1,
        ..Options::default()
    });
    let (t, h, n) = (Log::new(), Log::new(), Log::new());
    assert_eq!(after(ctx, &t, 20, 5), RET_OK);
    // Hold the worker past the timer, with the one-slot ring full behind it.
    assert_eq!(hold(ctx, &h, 80), RET_OK);
    let text = std::ffi::CString::new("behind").unwrap();
    // SAFETY: valid args.
    let rc = unsafe {
        aio_note(
            ctx,
            RECORD,
            n.ud(),
            &AioNoteArgs {
                text: text.as_ptr(),
            },
        )
    };
    assert_eq!(rc, RET_OK);
    assert_eq!(t.wait_len(1)[0].u64(), 5);
    n.wait_len(1);
    assert_eq!(aio_destroy(ctx), RET_OK);
}

#[test]
fn destroy_gives_running_tasks_the_timeout_then_fails_them() {
    let ctx = aio(Options {
        shutdown_timeout: Duration::from_millis(300),
        ..Options::default()
    });
    let (stuck, soon) = (Log::new(), Log::new());
    assert_eq!(aio_never(ctx, RECORD, stuck.ud()), RET_OK);
    assert_eq!(after(ctx, &soon, 50, 3), RET_OK);
    let start = Instant::now();
    assert_eq!(aio_destroy(ctx), RET_OK);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "waited the timeout"
    );
    let got = soon.snapshot();
    assert_eq!(
        (got.len(), got[0].ret, got[0].u64()),
        (1, RET_OK, 3),
        "finished in time"
    );
    let got = stuck.snapshot();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ret, RET_ERR);
    assert!(got[0].text().contains("destroyed"), "{}", got[0].text());
}

#[test]
fn a_waker_kept_past_destroy_wakes_nothing() {
    let ctx = aio(Options {
        shutdown_timeout: Duration::from_millis(50),
        ..Options::default()
    });
    let stuck = Log::new();
    assert_eq!(aio_stash(ctx, RECORD, stuck.ud()), RET_OK);
    let deadline = Instant::now() + support::lab::PATIENCE;
    while STASHED.lock().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the task never ran");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(aio_destroy(ctx), RET_OK);
    let got = stuck.snapshot();
    assert_eq!((got.len(), got[0].ret), (1, RET_ERR), "failed by destroy");
    // The waker outlived its task and its context: waking it (by reference, by value,
    // and through a clone dropped unwoken) finds no context and does nothing.
    let waker = STASHED.lock().unwrap().take().expect("stashed");
    waker.wake_by_ref();
    drop(waker.clone());
    waker.wake();
    // A new context is unaffected by the old one's waker.
    let ctx = aio(Options::default());
    let log = Log::new();
    assert_eq!(after(ctx, &log, 1, 9), RET_OK);
    assert_eq!(log.wait_len(1)[0].u64(), 9);
    assert_eq!(aio_destroy(ctx), RET_OK);
}
