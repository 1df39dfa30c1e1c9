//! The periodic-caller lane: one host thread calling every 10 µs, 100 µs, 1 ms and
//! 10 ms, as latency-sensitive hosts do (market data, frames, control loops), with the
//! worker's CPU per call, beside the two figures it is judged against, measured in the
//! same run: the hot round trip (calls back to back) and a bare futex wake round trip
//! after the same idle time (what a parked worker costs at best).

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::ffi::{echo, fail_hard, Api, Ctx};
use crate::floors::futex;
use crate::knobs::Setup;
use crate::lanes::SyncCaller;
use crate::report::histogram;

/// One period's figures.
pub(crate) struct PeriodRow {
    pub(crate) period: Duration,
    pub(crate) calls: u64,
    pub(crate) hist: Histogram<u64>,
    pub(crate) futex: Histogram<u64>,
    /// CPU time of every thread but the caller's, per call (the worker's, in effect:
    /// the context's other threads are parked).
    pub(crate) others_cpu_per_call: Duration,
    /// The same as a share of one core over the lane's wall time.
    pub(crate) others_core_share: f64,
    /// What the worker's idle periods were, from the context's counters.
    pub(crate) idle: IdleCounts,
    pub(crate) wrong: u64,
}

/// The context's idle counters over one period's calls.
#[derive(Clone, Copy, Default)]
pub(crate) struct IdleCounts {
    /// Idle periods a spin ended (the request found the worker hot).
    pub(crate) spin_hits: u64,
    /// Idle periods that ended in a sleep (the request paid a wake).
    pub(crate) parks: u64,
    /// Of those, sleeps a request ended within 1 ms.
    pub(crate) avoidable_wakes: u64,
}

impl IdleCounts {
    fn read(context: &echo::Context) -> Self {
        let s = context
            .stats()
            .unwrap_or_else(|e| fail_hard(&format!("stats: {e}")));
        IdleCounts {
            spin_hits: s.spin_hits,
            parks: s.parks,
            avoidable_wakes: s.avoidable_wakes,
        }
    }

    fn since(self, before: Self) -> Self {
        IdleCounts {
            spin_hits: self.spin_hits - before.spin_hits,
            parks: self.parks - before.parks,
            avoidable_wakes: self.avoidable_wakes - before.avoidable_wakes,
        }
    }
}

/// How many calls a period gets: about `budget` of wall time, at least 100.
pub(crate) fn calls_for(period: Duration, budget: Duration, cap: u64) -> u64 {
    (budget.as_nanos() / period.as_nanos().max(1)).clamp(100, cap as u128) as u64
}

/// Waits until `deadline` as a periodic host would: sleeping while more than 200 µs
/// remain (the kernel wakes a sleeper late by tens of µs), then spinning.
fn wait_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > Duration::from_micros(200) {
            std::thread::sleep(left - Duration::from_micros(150));
        } else {
            spin_loop();
        }
    }
}

fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and out pointer.
    if unsafe { libc::clock_gettime(clock, &mut t) } != 0 {
        fail_hard("clock_gettime failed");
    }
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Calls `ctx` once every `period` (native scalar, blocking) `calls` times; each call
/// is timed, and every other thread's CPU is measured over the lane.
pub(crate) fn run_periodic(
    api: &Api,
    context: &echo::Context,
    period: Duration,
    calls: u64,
) -> PeriodRow {
    let ctx: Ctx = context.handle();
    let idle0 = IdleCounts::read(context);
    let mut caller = SyncCaller::new(Setup::Scalar, false);
    let mut hist = histogram();
    let mut wrong = 0;
    let (cpu0, own0) = (
        cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID),
        cpu_time(libc::CLOCK_THREAD_CPUTIME_ID),
    );
    let start = Instant::now();
    for i in 0..calls {
        wait_until(start + period * (i as u32 + 1));
        match caller.call(api, ctx, i) {
            Some((ns, right)) => {
                hist.record(ns.max(1)).expect("in range");
                wrong += u64::from(!right);
            }
            None => wrong += 1,
        }
    }
    let wall = start.elapsed();
    let (cpu1, own1) = (
        cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID),
        cpu_time(libc::CLOCK_THREAD_CPUTIME_ID),
    );
    let others = (cpu1 - cpu0).saturating_sub(own1 - own0);
    let idle = IdleCounts::read(context).since(idle0);
    PeriodRow {
        period,
        calls,
        hist,
        futex: futex_round_trips(period, calls.min(2_000)),
        others_cpu_per_call: others / calls as u32,
        others_core_share: others.as_secs_f64() / wall.as_secs_f64(),
        idle,
        wrong,
    }
}

/// The bare futex wake round trip after `period` idle: a thread parked on a futex word
/// is woken, acks through a second word this thread spins on, and parks again (the
/// shape of `../shared/probes/futexrtt.c`). The caller waits between rounds as the
/// periodic lane does.
pub(crate) fn futex_round_trips(period: Duration, rounds: u64) -> Histogram<u64> {
    // [word, ack, parked]
    let words = Arc::new([AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)]);
    let peer = {
        let words = words.clone();
        std::thread::spawn(move || {
            for _ in 0..rounds {
                words[2].store(1, Ordering::Release);
                while words[0].load(Ordering::Acquire) == 0 {
                    futex(&words[0], libc::FUTEX_WAIT, 0);
                }
                words[0].store(0, Ordering::Relaxed);
                words[1].store(1, Ordering::Release);
            }
        })
    };
    let mut hist = histogram();
    let start = Instant::now();
    for i in 0..rounds {
        while words[2].load(Ordering::Acquire) == 0 {
            spin_loop();
        }
        wait_until(start + period * (i as u32 + 1));
        words[2].store(0, Ordering::Relaxed);
        let t0 = Instant::now();
        words[0].store(1, Ordering::Release);
        futex(&words[0], libc::FUTEX_WAKE, 1);
        while words[1].load(Ordering::Acquire) == 0 {
            spin_loop();
        }
        hist.record((t0.elapsed().as_nanos() as u64).max(1))
            .expect("in range");
        words[1].store(0, Ordering::Relaxed);
    }
    peer.join().expect("futex peer");
    hist
}

/// Prints the lane's table: each period's latency against the hot round trip and the
/// futex round trip of the same run, and what the idle worker cost.
pub(crate) fn print_periodic(rows: &[PeriodRow], hot_p50: u64, label: &str) {
    println!();
    println!("periodic caller ({label}): one host thread, native scalar, blocking; hot round trip p50 {:.2} us", hot_p50 as f64 / 1e3);
    println!(
        "{:>9} {:>7} {:>8} {:>8} {:>8} {:>10} {:>10} {:>11} {:>12} {:>10} {:>6} {:>6} {:>6}",
        "period",
        "calls",
        "p50 us",
        "p99 us",
        "p50/hot",
        "futex p50",
        "p50/futex",
        "futex p99",
        "cpu/call us",
        "cpu % core",
        "hot %",
        "park %",
        "avoid"
    );
    for r in rows {
        let (p50, p99) = (
            r.hist.value_at_quantile(0.5),
            r.hist.value_at_quantile(0.99),
        );
        let (f50, f99) = (
            r.futex.value_at_quantile(0.5),
            r.futex.value_at_quantile(0.99),
        );
        println!(
            "{:>7}us {:>7} {:>8.2} {:>8.2} {:>7.1}x {:>10.2} {:>9.2}x {:>11.2} {:>12.2} {:>9.1}% {:>5.0}% {:>5.0}% {:>6}",
            r.period.as_micros(),
            r.calls,
            p50 as f64 / 1e3,
            p99 as f64 / 1e3,
            p50 as f64 / hot_p50.max(1) as f64,
            f50 as f64 / 1e3,
            p50 as f64 / f50.max(1) as f64,
            f99 as f64 / 1e3,
            r.others_cpu_per_call.as_secs_f64() * 1e6,
            r.others_core_share * 100.0,
            percent(r.idle.spin_hits, r.calls),
            percent(r.idle.parks, r.calls),
            r.idle.avoidable_wakes,
        );
        println!(
            "csv,periodic,{label},{},{},{p50},{p99},{hot_p50},{f50},{f99},{},{:.4},{},{},{}",
            r.period.as_micros(),
            r.calls,
            r.others_cpu_per_call.as_nanos(),
            r.others_core_share,
            r.idle.spin_hits,
            r.idle.parks,
            r.idle.avoidable_wakes
        );
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}
