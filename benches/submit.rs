//! Submit throughput into one context from 1, 2, 4 and 8 producer threads.
//!
//! `submit`: the submit phase only. Each measured batch fits in the ring (no producer
//! ever waits for space), so the figure is the cost of accepting a call; the worker
//! drains between batches, untimed. `complete`: end to end, each thread keeping 64
//! calls in flight, until every callback has arrived.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use echo::*;
use ffi_dispatch::{ffid_ctx, Options, RET_OK};

mod shared;

const RING: usize = 1 << 16;
const WINDOW: u64 = 64;

static ANSWERED: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn count(ret: c_int, _: *const c_char, _: usize, ud: *mut c_void) {
    debug_assert_eq!(ret, RET_OK);
    if !ud.is_null() {
        // SAFETY: a non-null `ud` is the submitting thread's own answer counter, alive
        // until it has seen all its answers.
        unsafe { &*(ud as *const AtomicU64) }.fetch_add(1, Ordering::Release);
    }
    ANSWERED.fetch_add(1, Ordering::Release);
}

fn submit_one(ctx: *mut ffid_ctx, i: u64) {
    submit_counted(ctx, i, std::ptr::null_mut());
}

fn submit_counted(ctx: *mut ffid_ctx, i: u64, ud: *mut c_void) {
    let args = EchoScalarCheckArgs {
        a: i as i64,
        b: 1,
        x: 0.5,
    };
    // SAFETY: `args` lives for the call; the context is live.
    let rc = unsafe { echo_scalar_check(ctx, Some(count), ud, &args) };
    assert_eq!(rc, RET_OK);
}

fn drain(expected: u64) {
    while ANSWERED.load(Ordering::Acquire) < expected {
        std::thread::yield_now();
    }
}

/// Runs `iters` calls split over `threads` producers; `body(ctx, n)` makes one
/// producer's `n` calls and is what is timed (from the common start to the last
/// producer's end).
fn producers(
    ctx: *mut ffid_ctx,
    threads: u64,
    n: u64,
    body: impl Fn(*mut ffid_ctx, u64) + Sync,
) -> Duration {
    let barrier = Barrier::new(threads as usize + 1);
    let ctx = ctx as usize;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (barrier, body) = (&barrier, &body);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    body(ctx as *mut ffid_ctx, n);
                    (start, Instant::now())
                })
            })
            .collect();
        barrier.wait();
        // From the first producer's start to the last one's end.
        let spans: Vec<(Instant, Instant)> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        let start = spans.iter().map(|s| s.0).min().unwrap();
        let end = spans.iter().map(|s| s.1).max().unwrap();
        end - start
    })
}

fn submit(c: &mut Criterion) {
    let ctx = shared::make(Options {
        ring_capacity: RING,
        ..Options::default()
    });
    let mut group = c.benchmark_group("submit");
    group.throughput(Throughput::Elements(1));
    for threads in [1u64, 2, 4, 8] {
        group.bench_with_input(
            BenchmarkId::new("submit phase", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        // A batch that fits in the ring, split over the producers.
                        let per = (left.min(RING as u64 / 2) / t).max(1);
                        let before = ANSWERED.load(Ordering::Acquire);
                        total += producers(ctx, t, per, |ctx, n| {
                            (0..n).for_each(|i| submit_one(ctx, i))
                        });
                        drain(before + per * t);
                        left = left.saturating_sub(per * t);
                    }
                    total
                })
            },
        );
    }
    for threads in [1u64, 2, 4, 8] {
        group.bench_with_input(
            BenchmarkId::new("complete, 64 in flight", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    let per = (iters / t).max(1);
                    let start_count = ANSWERED.load(Ordering::Acquire);
                    let start = Instant::now();
                    // Each producer keeps at most WINDOW of its own calls unanswered, and
                    // yields while it waits: on 2 cores a spinning producer would starve
                    // the worker it waits for.
                    producers(ctx, t, per, |ctx, n| {
                        let answered = AtomicU64::new(0);
                        let ud = &answered as *const AtomicU64 as *mut c_void;
                        for i in 0..n {
                            while i >= answered.load(Ordering::Acquire) + WINDOW {
                                std::thread::yield_now();
                            }
                            submit_counted(ctx, i, ud);
                        }
                        while answered.load(Ordering::Acquire) < n {
                            std::thread::yield_now();
                        }
                    });
                    drain(start_count + per * t);
                    start.elapsed()
                })
            },
        );
    }
    group.finish();
    assert_eq!(echo_destroy(ctx), RET_OK);
}

/// What a host pays to poll a context's counters (`echo_stats`), idle and while a
/// producer keeps the worker busy (the counters' lines then move between cores).
fn stats(c: &mut Criterion) {
    let ctx = shared::make(Options::default());
    let mut group = c.benchmark_group("stats");
    let mut out = ffi_dispatch::abi::ffid_context_stats {
        struct_size: std::mem::size_of::<ffi_dispatch::abi::ffid_context_stats>() as u32,
        ..Default::default()
    };
    group.bench_function("poll/idle", |b| {
        // SAFETY: a writable struct of the size it names.
        b.iter(|| unsafe { echo::echo_stats(ctx, &mut out) })
    });
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let (stop, ctx_addr) = (&stop, ctx as usize);
        s.spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                submit_one(ctx_addr as *mut ffid_ctx, i);
                i += 1;
            }
        });
        group.bench_function("poll/busy", |b| {
            // SAFETY: as above.
            b.iter(|| unsafe { echo::echo_stats(ctx, &mut out) })
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    group.finish();
    assert_eq!(echo_destroy(ctx), RET_OK);
}

criterion_group! {
    name = benches;
    config = shared::config();
    targets = submit, stats
}
criterion_main!(benches);
