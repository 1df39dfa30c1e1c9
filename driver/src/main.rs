//! The latency driver: the main job's engine.
//!
//! It loads `libecho.so` at run time through echo's generated Rust client and calls its C
//! exports exactly as a C host does (the spinning lanes through the client's `raw`
//! mirrors of `echo.h` and export table, the blocking lane through its blocking
//! methods), mirroring the nim-ffi perf harness so that its
//! table compares directly: setups `scalar` (2 x i64 + f64 in, bool out) and
//! `payload N B`, lanes `sync` (blocking round trips, every call timed into an HDR
//! histogram) and `async` (64 calls in flight per thread, throughput only), native and
//! CBOR, at 1, 2 and 4 threads, beside the atomic ping-pong floor measured in the same
//! run (before any context exists), and `blocking` (native only: the `_sync` forms, the
//! runtime waiting for the answer, a spin of up to 20 µs then a futex sleep), set against a futex ping-pong of the same run (both
//! sides sleeping). Every reply is checked against the predicate; any
//! wrong or missing reply makes the exit status 1. The `event` lane (one 512 B
//! `on_perf_ping` per round, stamp to listener) is set against its own baseline, a
//! bare three-thread atomic relay, since an event crosses three threads where a call
//! crosses two.
//!
//! Knobs (environment):
//! - `FFID_DRIVER_LIB`: the cdylib (default: `libecho.so` beside this binary);
//! - `FFID_DRIVER_CALLS`: calls per thread per row (default 200000; payload rows scale
//!   it down by size);
//! - `FFID_DRIVER_THREADS`: thread counts (default `1,2,4`);
//! - `FFID_DRIVER_SETUPS`: `scalar,payload64,payload512,payload4096,payload65536`;
//! - `FFID_DRIVER_MODES`: `native,cbor`;  `FFID_DRIVER_LANES`:
//!   `sync,async,blocking,event,periodic`;
//! - `FFID_DRIVER_RING` (capacity), `FFID_DRIVER_RING_KIND` (0 tagged, 1 ArrayQueue),
//!   `FFID_DRIVER_SPIN_NS` (worker spin budget);
//! - `FFID_DRIVER_IDLE`: every context's idle policy (`latency`, the default,
//!   `balanced` or `power`);
//! - `FFID_DRIVER_PERIODS_US` (the periodic lane's periods, default `10,100,1000,10000`),
//!   `FFID_DRIVER_PERIOD_MS` (its wall time per period, default 1000) and
//!   `FFID_DRIVER_PERIODIC_IDLE` (the policies it runs, default all three).
//!
//! The `periodic` lane calls once every period from one host thread and prints its own
//! table: p50/p99 against the hot round trip and a bare futex wake round trip after the
//! same idle time, both measured in the same run, and the CPU the other threads (the
//! idle worker, in effect) spent per call.

// The modules, in the order of a run:
// - `knobs`: the environment's knobs and the setups they name;
// - `ffi`: echo's generated client (the C ABI as `echo.h` declares it) and loading it;
// - `lanes`: contexts, the `sync`, `async` and `blocking` lanes, the CBOR requests and
//   the waiting helpers;
// - `floors`: the ping-pong floor, the futex floor and the event relay baseline;
// - `events`: the event lane;
// - `periodic`: the periodic-caller lane and its futex baseline;
// - `anchors`: nim-ffi's figures;
// - `report`: rows, histograms and printing.
mod anchors;
mod events;
mod ffi;
mod floors;
mod knobs;
mod lanes;
mod periodic;
mod report;
mod scale;

use anchors::{nim_ffi, nim_ffi_events};
use events::{run_events, run_poll_events};
use ffi::{fail_hard, load};
use floors::{floor, futex_floor, p50_ns, relay_floor};
use knobs::{knobs, Setup};
use lanes::{make_context, make_poll_context, run_async, run_blocking, run_sync};
use periodic::{calls_for, print_periodic, run_periodic};
use report::print_row;

/// Destroys a row's context (no call in flight), or exits saying why.
fn destroy(context: ffi::echo::Context) {
    if let Err(e) = context.destroy() {
        fail_hard(&format!("echo_destroy failed: {e}"));
    }
}

fn main() {
    let knobs = knobs();
    let lib = std::env::var("FFID_DRIVER_LIB").unwrap_or_else(|_| {
        let exe = std::env::current_exe().expect("own path");
        exe.with_file_name("libecho.so")
            .to_string_lossy()
            .into_owned()
    });
    let lib = load(&lib);
    let api = lib.raw();

    println!(
        "{:<16} {:<6} {:<9} {:>2} {:>12} {:>8} {:>8} {:>8} {:>8} {:>7}  nim-ffi (calls/s, ours as a multiple)",
        "setup", "mode", "lane", "th", "calls/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "p50/fl"
    );
    // The floor first: before any context (and its worker) exists.
    let fl = floor(knobs.calls.max(10_000));
    let floor_p50 = p50_ns(&fl);
    print_row(&fl, floor_p50, None);
    // The blocking lane's rows are set against a futex ping-pong of the same run.
    let futex_p50 = knobs.lanes.iter().any(|l| l == "blocking").then(|| {
        let f = futex_floor((knobs.calls / 4).clamp(1_000, 50_000));
        let p50 = p50_ns(&f);
        print_row(&f, p50, None);
        p50
    });

    let mut wrong = 0;
    for &setup in &knobs.setups {
        let calls = match setup {
            Setup::Scalar => knobs.calls,
            Setup::Payload(n) => (knobs.calls * 64 / n.max(64) as u64).max(200),
        };
        for &cbor in &knobs.modes {
            for lane in knobs
                .lanes
                .iter()
                .filter(|l| !matches!(l.as_str(), "event" | "periodic" | "footprint" | "contexts"))
            {
                if lane == "blocking" && cbor {
                    continue; // the blocking forms are native
                }
                for &threads in &knobs.threads {
                    // A fresh context per row, so that no row inherits another's state,
                    // and an unmeasured warm-up, so that the scheduler has placed the new
                    // worker thread (on 2 cores it may start beside its host thread).
                    let context = make_context(&lib, &knobs);
                    let ctx = context.handle();
                    run_sync(api, ctx, setup, cbor, threads, (calls / 10).max(100));
                    let row = match lane.as_str() {
                        "sync" => run_sync(api, ctx, setup, cbor, threads, calls),
                        "async" => run_async(api, ctx, setup, cbor, threads, calls),
                        "blocking" => run_blocking(&context, setup, threads, calls),
                        other => fail_hard(&format!("unknown lane {other}")),
                    };
                    destroy(context);
                    wrong += row.wrong;
                    let nim = if cbor {
                        None
                    } else {
                        nim_ffi(setup, lane, threads)
                    };
                    let base = match (lane.as_str(), futex_p50) {
                        ("blocking", Some(f)) => f,
                        _ => floor_p50,
                    };
                    print_row(&row, base, nim);
                }
            }
        }
    }
    if knobs.lanes.iter().any(|l| l == "event") {
        // Event rows take their p50/fl against the relay: an event crosses three
        // threads where a call crosses two.
        let relay = relay_floor((knobs.calls / 4).max(1_000));
        print_row(&relay, floor_p50, None);
        let relay_p50 = p50_ns(&relay);
        for &cbor in &knobs.modes {
            for &threads in &knobs.threads {
                let context = make_context(&lib, &knobs);
                let ctx = context.handle();
                let events = knobs.calls / 4;
                run_events(api, ctx, cbor, threads, (events / 10).max(100), 512);
                let row = run_events(api, ctx, cbor, threads, events.max(100), 512);
                destroy(context);
                wrong += row.wrong;
                let nim = if cbor { None } else { nim_ffi_events(threads) };
                print_row(&row, relay_p50, nim);
            }
        }
        // Through the host's poll: no event thread; its p50/fl is against the floor.
        // The empty event shows the path's own cost, the 512 B one the harness's.
        for payload in [0, 512] {
            let context = make_poll_context(&lib, &knobs);
            let ctx = context.handle();
            let events = (knobs.calls / 4).max(100);
            run_poll_events(api, ctx, (events / 10).max(100), payload);
            let row = run_poll_events(api, ctx, events, payload);
            destroy(context);
            wrong += row.wrong;
            print_row(&row, floor_p50, None);
        }
    }
    if knobs.lanes.iter().any(|l| l == "periodic") {
        for (name, policy) in &knobs.periodic_policies {
            let knobs = knobs::Knobs {
                idle: Some(*policy),
                ..knobs.clone()
            };
            let context = make_context(&lib, &knobs);
            let ctx = context.handle();
            // The hot round trip of the same context: calls back to back.
            let hot_calls = knobs.calls.clamp(1_000, 50_000);
            run_sync(api, ctx, Setup::Scalar, false, 1, hot_calls / 10);
            let hot = run_sync(api, ctx, Setup::Scalar, false, 1, hot_calls);
            wrong += hot.wrong;
            let rows: Vec<_> = knobs
                .periods
                .iter()
                .map(|&period| {
                    let calls = calls_for(period, knobs.period_budget, 20_000);
                    run_periodic(api, &context, period, calls)
                })
                .collect();
            destroy(context);
            wrong += rows.iter().map(|r| r.wrong).sum::<u64>();
            print_periodic(&rows, p50_ns(&hot), &format!("idle policy {name}"));
        }
    }
    if knobs.lanes.iter().any(|l| l == "footprint") {
        scale::run_footprint(&lib, &knobs, knobs.contexts);
    }
    if knobs.lanes.iter().any(|l| l == "contexts") {
        wrong += scale::run_contexts(&lib, &knobs, knobs.contexts, floor_p50);
    }
    if wrong > 0 {
        eprintln!("WRONG: {wrong} replies were wrong or missing");
        std::process::exit(1);
    }
    println!("OK: every reply verified");
}
