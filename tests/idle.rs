//! The idle policy's counters: what the idle worker spends spinning, and the wakes it
//! leaves the next request to pay.

mod support;

use std::time::Duration;

use ffi_dispatch::{IdlePolicy, Options, WakeKind, RET_OK};
use support::lab::*;

/// The idle counters: time spun while idle, and sleeps a request ended within 1 ms.
/// Only bounds that hold whatever the scheduling are asserted (a loaded machine can
/// delay the worker anywhere).
#[test]
// Interpreted, every wake takes well over 1 ms, and the eventfd backend is not modelled.
#[cfg_attr(miri, ignore)]
fn idle_counters_say_what_spinning_and_parking_cost() {
    let calls_after = |ctx, gap: Duration, n: u64| {
        let log = Log::new();
        for i in 0..n {
            std::thread::sleep(gap);
            assert_eq!(echo(ctx, &log, i), RET_OK);
            log.wait_len(i as usize + 1);
        }
    };
    // A zero spin bound parks at once: no idle spin at all.
    let ctx = lab(Options {
        spin: Duration::ZERO,
        ..Options::default()
    });
    let before = settled_stats(ctx, |_| true);
    calls_after(ctx, Duration::from_millis(2), 10);
    let s = settled_stats(ctx, |s| s.completed >= before.completed + 10);
    assert_eq!(s.idle_spin_ns, 0, "a zero spin bound spins for nothing");
    // A park per idle period as a rule, but a loaded machine can keep the worker from
    // reaching its park before the next call comes (it then takes it without waiting).
    let parks = s.parks - before.parks;
    assert!(parks >= 1, "{parks} parks for 10 calls");
    assert!(s.avoidable_wakes <= s.parks);
    // Calls 100 µs apart wake a parked worker well within 1 ms (one of 50 suffices).
    calls_after(ctx, Duration::from_micros(100), 50);
    let s = settled_stats(ctx, |s| s.avoidable_wakes > before.avoidable_wakes);
    assert!(s.avoidable_wakes > before.avoidable_wakes, "{s:?}");
    assert_eq!(lab_destroy(ctx), RET_OK);

    // Latency with a 2 ms bound before 5 ms gaps, and no naps (the eventfd backend
    // cannot): the idle worker spins, and never longer than the phase lasted.
    let ctx = lab(Options {
        spin: Duration::from_millis(2),
        idle_policy: IdlePolicy::Latency,
        wake: WakeKind::EventFd,
        ..Options::default()
    });
    let before = settled_stats(ctx, |_| true);
    let start = std::time::Instant::now();
    calls_after(ctx, Duration::from_millis(5), 10);
    let s = settled_stats(ctx, |s| s.completed >= before.completed + 10);
    let spun = Duration::from_nanos(s.idle_spin_ns - before.idle_spin_ns);
    assert!(
        spun > Duration::ZERO && spun <= start.elapsed(),
        "spun {spun:?} in {:?}",
        start.elapsed()
    );
    assert_eq!(lab_destroy(ctx), RET_OK);
}
