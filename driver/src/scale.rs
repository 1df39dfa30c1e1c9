//! The scale lanes, the scale issue's baseline figures in one run:
//! - `footprint`: what an idle context costs (RSS and threads each, the CPU idle
//!   contexts burn) and how long create (to the constructor's answer) and destroy take,
//!   beside a bare thread spawn+join measured in the same run;
//! - `contexts`: contexts with a host thread each (64 unless `FFID_DRIVER_CONTEXTS`)
//!   making blocking calls, their total calls/s against one context and one thread.

use std::time::{Duration, Instant};

use crate::ffi::{echo, fail_hard};
use crate::knobs::{Knobs, Setup};
use crate::lanes::{make_context, run_blocking_on};
use crate::report::{histogram, print_row};

/// Resident memory of this process, in KiB (Linux: `/proc/self/statm`).
fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()? / 1024)
}

/// Threads of this process (Linux: `/proc/self/status`).
fn threads() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time this process has used (user + system).
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: a writable rusage for the call to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage succeeded and filled it (and all zeroes is valid anyway).
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn p50_us(h: &hdrhistogram::Histogram<u64>) -> f64 {
    h.value_at_quantile(0.5) as f64 / 1000.0
}

/// The `footprint` lane over `count` contexts (it makes no calls): prints its lines.
pub(crate) fn run_footprint(lib: &echo::Library, knobs: &Knobs, count: usize) {
    // Warm the library and the allocator first, so the first create is not measured as
    // everything's start-up.
    drop(make_context(lib, knobs));
    let mut spawn = histogram();
    for _ in 0..count {
        let t0 = Instant::now();
        std::thread::spawn(|| {}).join().expect("an empty thread");
        spawn
            .record(t0.elapsed().as_nanos().max(1) as u64)
            .expect("in range");
    }
    let (rss0, threads0) = (rss_kib(), threads());
    let mut create = histogram();
    let contexts: Vec<echo::Context> = (0..count)
        .map(|_| {
            let t0 = Instant::now();
            let ctx = make_context(lib, knobs);
            create
                .record(t0.elapsed().as_nanos().max(1) as u64)
                .expect("in range");
            ctx
        })
        .collect();
    // Let the workers finish their spin and park, then watch them idle.
    std::thread::sleep(Duration::from_millis(100));
    let (rss1, threads1) = (rss_kib(), threads());
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_millis(500));
    let idle_core = (cpu_time() - cpu0).as_secs_f64() / wall0.elapsed().as_secs_f64();
    let mut destroy = histogram();
    for ctx in contexts {
        let t0 = Instant::now();
        if let Err(e) = ctx.destroy() {
            fail_hard(&format!("echo_destroy failed: {e}"));
        }
        destroy
            .record(t0.elapsed().as_nanos().max(1) as u64)
            .expect("in range");
    }
    let per = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.1}", b.saturating_sub(a) as f64 / count as f64),
        _ => "?".into(),
    };
    let (rss, thr) = (per(rss0, rss1), per(threads0, threads1));
    let (c, d, sj) = (p50_us(&create), p50_us(&destroy), p50_us(&spawn));
    println!(
        "footprint: {count} idle contexts: {rss} KiB RSS and {thr} threads each; together {:.1}% of a core idle",
        idle_core * 100.0
    );
    println!(
        "footprint: create p50 {c:.1} us (p99 {:.1}), destroy p50 {d:.1} us (p99 {:.1}); bare thread spawn+join p50 {sj:.1} us: create+destroy = {:.1}x it",
        create.value_at_quantile(0.99) as f64 / 1000.0,
        destroy.value_at_quantile(0.99) as f64 / 1000.0,
        (c + d) / sj
    );
    println!(
        "csv,footprint,{count},{rss},{thr},{:.4},{:.0},{:.0},{:.0}",
        idle_core,
        c * 1000.0,
        d * 1000.0,
        sj * 1000.0
    );
}

/// The `contexts` lane: `count` contexts with a host thread each, blocking scalar calls,
/// beside one context and one thread; returns the wrong replies.
pub(crate) fn run_contexts(
    lib: &echo::Library,
    knobs: &Knobs,
    count: usize,
    floor_p50: u64,
) -> u64 {
    let calls = (knobs.calls / count as u64).max(200);
    let one = make_context(lib, knobs);
    run_blocking_on(&[&one], Setup::Scalar, 1, calls / 10 + 1, "contexts");
    let single = run_blocking_on(&[&one], Setup::Scalar, 1, calls * count as u64, "contexts");
    drop(one);
    let contexts: Vec<echo::Context> = (0..count).map(|_| make_context(lib, knobs)).collect();
    let refs: Vec<&echo::Context> = contexts.iter().collect();
    run_blocking_on(&refs, Setup::Scalar, count, calls / 10 + 1, "contexts");
    let many = run_blocking_on(&refs, Setup::Scalar, count, calls, "contexts");
    drop(contexts);
    print_row(&single, floor_p50, None);
    print_row(&many, floor_p50, None);
    println!(
        "contexts: {count} contexts x 1 thread: {:.0} calls/s in total, {:.2}x one context with one thread",
        many.calls_per_s,
        many.calls_per_s / single.calls_per_s
    );
    single.wrong + many.wrong
}
