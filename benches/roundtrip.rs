//! One host thread: call + wait for the callback, through the C ABI of `echo`, beside
//! the floor (a bare atomic ping-pong between two threads) and two plain baselines (a
//! std `mpsc` or `crossbeam-channel` channel + worker thread answering through the same
//! kind of completion flag).
//!
//! The `_sync` rows are the blocking form: the runtime waits (spin, then futex) and
//! hands over the answer, instead of the bench's own spin on a completion flag. The
//! `_async` rows are the typed form: the bench's spin, a typed reply (an owned answer
//! and a pooled callback pair) in place of the raw callback.
//!
//! `inline`: an inline export (`byte_sum`), answered on the calling thread before it
//! returns: no ring, no worker, the cost of the export's copy, handler and callback.
//!
//! `hot`: the worker is spinning when the call arrives. `cold`: the host sleeps 200 µs
//! (untimed) before each call so the worker has parked (spin budget 0 for ffi-dispatch;
//! std's `recv` blocks after its own brief spin). Compare ratios within one run only.

use std::ffi::c_void;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use cbor::scalar_request;
use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_utils::CachePadded;
use echo::*;
use ffi_dispatch::{Options, RingKind, RET_OK};

#[path = "../tests/support/cbor.rs"]
mod cbor;
mod shared;
use shared::{complete, complete_bool, make, wait, Completion};

const COLD_GAP: Duration = Duration::from_micros(200);

/// Times `iters` round trips of `one`, each after `gap` (untimed) when given.
fn timed(iters: u64, gap: Option<Duration>, mut one: impl FnMut()) -> Duration {
    match gap {
        None => {
            let start = Instant::now();
            for _ in 0..iters {
                one();
            }
            start.elapsed()
        }
        Some(gap) => (0..iters)
            .map(|_| {
                std::thread::sleep(gap);
                let start = Instant::now();
                one();
                start.elapsed()
            })
            .sum(),
    }
}

fn floor(c: &mut Criterion) {
    let ball = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let (b, s) = (ball.clone(), stop.clone());
    let pong = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            if b.load(Ordering::Acquire) == 1 {
                b.store(0, Ordering::Release);
            } else {
                std::hint::spin_loop();
            }
        }
    });
    c.bench_function("floor/atomic ping-pong", |bench| {
        bench.iter_custom(|iters| {
            timed(iters, None, || {
                ball.store(1, Ordering::Release);
                while ball.load(Ordering::Acquire) != 0 {
                    std::hint::spin_loop();
                }
            })
        })
    });
    stop.store(true, Ordering::Relaxed);
    pong.join().unwrap();
}

fn ffi_dispatch_lanes(c: &mut Criterion, state: &str, gap: Option<Duration>) {
    let spin = if gap.is_some() {
        Duration::ZERO
    } else {
        Options::default().spin
    };
    let mut group = c.benchmark_group(format!("roundtrip/{state}"));
    if gap.is_some() {
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(4));
    }
    for (name, ring) in [
        ("tagged", RingKind::Tagged),
        ("array_queue", RingKind::ArrayQueue),
    ] {
        let ctx = make(Options {
            spin,
            ring,
            ..Options::default()
        });
        let done = Completion::default();
        let ud = &done as *const Completion as *mut c_void;
        let args = EchoScalarCheckArgs {
            a: 41,
            b: 1,
            x: 0.5,
        };
        group.bench_function(format!("native scalar_check ({name})"), |bench| {
            bench.iter_custom(|iters| {
                timed(iters, gap, || {
                    let accepted =
                        // SAFETY: valid args and user data for the duration of the call.
                        unsafe { echo_scalar_check(ctx, Some(complete), ud, black_box(&args)) };
                    assert_eq!(accepted, RET_OK);
                    wait(&done);
                })
            })
        });
        group.bench_function(format!("native scalar_check _sync ({name})"), |bench| {
            bench.iter_custom(|iters| {
                timed(iters, gap, || {
                    let mut even = false;
                    // SAFETY: valid args and out pointer for the duration of the call.
                    let ret =
                        unsafe { echo_scalar_check_sync(ctx, black_box(&args), &mut even, 10_000) };
                    assert_eq!(ret, RET_OK);
                    assert!(even);
                })
            })
        });
        group.bench_function(format!("native scalar_check _async ({name})"), |bench| {
            bench.iter_custom(|iters| {
                timed(iters, gap, || {
                    let accepted =
                        // SAFETY: valid args and user data for the duration of the call.
                        unsafe { echo_scalar_check_async(ctx, black_box(&args), Some(complete_bool), ud) };
                    assert_eq!(accepted, RET_OK);
                    wait(&done);
                })
            })
        });
        let req = scalar_request(41, 1, 0.5);
        group.bench_function(format!("cbor scalar_check ({name})"), |bench| {
            bench.iter_custom(|iters| {
                timed(iters, gap, || {
                    // SAFETY: `req` holds `req.len()` bytes for the duration of the call.
                    let ret = unsafe {
                        echo_scalar_check_cbor(ctx, Some(complete), ud, req.as_ptr(), req.len())
                    };
                    assert_eq!(ret, RET_OK);
                    wait(&done);
                })
            })
        });
        assert_eq!(echo_destroy(ctx), RET_OK);
    }
    group.finish();
}

/// An inline export: the callback runs on this thread before the call returns.
fn inline_lane(c: &mut Criterion) {
    let mut group = c.benchmark_group("roundtrip/inline");
    let done = Completion::default();
    let ud = &done as *const Completion as *mut c_void;
    let data = [7u8; 8];
    let args = EchoByteSumArgs {
        data: data.as_ptr(),
        data_len: data.len(),
    };
    group.bench_function("native byte_sum (calling thread)", |bench| {
        bench.iter(|| {
            // SAFETY: valid args and user data for the duration of the call.
            let accepted = unsafe { echo_byte_sum(Some(complete), ud, black_box(&args)) };
            assert_eq!(accepted, RET_OK);
            wait(&done);
        })
    });
    group.finish();
}

/// A plain channel baseline's request: the same predicate, answered through the same
/// kind of completion flag.
struct Req {
    a: i64,
    b: i64,
    x: f64,
    done: *const Completion,
    answer: *const AtomicBool,
}
// SAFETY: the pointers refer to the bench's own records, alive until the worker exits.
unsafe impl Send for Req {}

fn serve(r: Req) {
    let ok = ((r.a + r.b + r.x as i64) & 1) == 0;
    // SAFETY: see `Req`.
    unsafe {
        (*r.answer).store(ok, Ordering::Relaxed);
        (*r.done).done.store(1, Ordering::Release);
    }
}

/// The naive baselines: requests over a channel to a worker thread blocked in `recv`
/// (std `mpsc`, then `crossbeam-channel`).
fn channel_baselines(c: &mut Criterion, state: &str, gap: Option<Duration>) {
    let (std_tx, std_rx) = mpsc::channel::<Req>();
    let std_worker = std::thread::spawn(move || std_rx.iter().for_each(serve));
    channel_baseline(c, state, gap, "baseline std mpsc + worker", |r| {
        std_tx.send(r).unwrap()
    });
    drop(std_tx);
    std_worker.join().unwrap();

    let (cb_tx, cb_rx) = crossbeam_channel::unbounded::<Req>();
    let cb_worker = std::thread::spawn(move || cb_rx.iter().for_each(serve));
    channel_baseline(c, state, gap, "baseline crossbeam-channel + worker", |r| {
        cb_tx.send(r).unwrap()
    });
    drop(cb_tx);
    cb_worker.join().unwrap();
}

fn channel_baseline(
    c: &mut Criterion,
    state: &str,
    gap: Option<Duration>,
    name: &str,
    send: impl Fn(Req),
) {
    let done = Completion::default();
    let answer = AtomicBool::new(false);
    let mut group = c.benchmark_group(format!("roundtrip/{state}"));
    if gap.is_some() {
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(4));
    }
    group.bench_function(name, |bench| {
        bench.iter_custom(|iters| {
            timed(iters, gap, || {
                send(Req {
                    a: 41,
                    b: 1,
                    x: 0.5,
                    done: &done,
                    answer: &answer,
                });
                wait(&done);
            })
        })
    });
    group.finish();
}

fn roundtrip(c: &mut Criterion) {
    // The floor first, before any worker thread exists.
    floor(c);
    inline_lane(c);
    ffi_dispatch_lanes(c, "hot", None);
    channel_baselines(c, "hot", None);
    ffi_dispatch_lanes(c, "cold", Some(COLD_GAP));
    channel_baselines(c, "cold", Some(COLD_GAP));
}

criterion_group! {
    name = benches;
    config = shared::config();
    targets = roundtrip
}
criterion_main!(benches);
