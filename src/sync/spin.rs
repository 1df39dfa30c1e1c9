//! The bounded busy-wait the worker and the event thread use before they park.

use std::time::{Duration, Instant};

/// How a spin ended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spin {
    /// `ready` turned true.
    pub(crate) found: bool,
    /// How long it spun, as of its last clock read (zero when it found work before the
    /// first: the figure never costs a clock read on the way to the work).
    pub(crate) spun: Duration,
    /// The spin stopped early because its core is shared: between two clock reads the
    /// thread lost its core for longer than [`CROWDED`] (a yield ran another thread, or
    /// it was preempted). Spinning on would only take turns with a runnable thread, the
    /// host waiting for this very answer perhaps.
    pub(crate) crowded: bool,
}

/// A gap between two clock reads of a spin that says another thread had the core: a
/// round of polls and a `sched_yield` that runs nobody take a few µs at most.
const CROWDED: Duration = Duration::from_micros(25);

/// Busy-waits up to `budget` for `ready`. The clock is read only after a first round of
/// polls (a request that arrives at once costs no clock read) and then every few dozen,
/// each time with a `sched_yield`: an idle spinner hands its core to a runnable thread
/// (the event thread, the host) when cores are oversubscribed, and costs one cheap
/// syscall when they are not.
pub(crate) fn spin_until(budget: Duration, ready: impl Fn() -> bool) -> Spin {
    spin_within(budget, false, ready)
}

/// [`spin_until`], which also gives up when `stop_when_crowded` and a yield ran
/// another thread ([`Spin::crowded`]): the worker's idle spin, which only takes turns
/// with the thread it shares its core with (the host waiting for it, often).
pub(crate) fn spin_within(
    budget: Duration,
    stop_when_crowded: bool,
    ready: impl Fn() -> bool,
) -> Spin {
    let mut spun = Duration::ZERO;
    let stop = |found, spun, crowded| Spin {
        found,
        spun,
        crowded,
    };
    if budget.is_zero() {
        return stop(false, spun, false);
    }
    for _ in 0..64 {
        if ready() {
            return stop(true, spun, false);
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if ready() {
                return stop(true, spun, false);
            }
            std::hint::spin_loop();
        }
        // The clock is read just after the yield, so that a yield which ran another
        // thread is seen before the next polls (which might find work and return).
        std::thread::yield_now();
        let before = spun;
        spun = start.elapsed();
        if stop_when_crowded && spun - before > CROWDED {
            return stop(ready(), spun, true);
        }
        if spun >= budget {
            return stop(ready(), spun, false);
        }
    }
}

#[cfg(all(test, not(loom), not(miri), target_os = "linux"))]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Pins the calling thread to `cpu`.
    fn pin(cpu: usize) {
        // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes our own set;
        // pid 0 is the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                0
            );
        }
    }

    /// A spinner that shares its only core with a busy thread gives up long before its
    /// budget and says why. (Alone it would spin the budget out, unless the machine is
    /// busy: not asserted, tests share the machine.)
    #[test]
    fn a_spin_that_shares_its_core_stops_crowded() {
        // SAFETY: sched_getcpu takes nothing.
        let cpu = unsafe { libc::sched_getcpu() }.max(0) as usize;
        let (started, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let busy = {
            let (started, stop) = (started.clone(), stop.clone());
            std::thread::spawn(move || {
                pin(cpu);
                started.store(true, Ordering::Release);
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        let spinner = std::thread::spawn(move || {
            pin(cpu);
            while !started.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            spin_within(Duration::from_secs(10), true, || false)
        });
        let crowded = spinner.join().expect("spinner");
        stop.store(true, Ordering::Relaxed);
        busy.join().expect("busy thread");
        assert!(crowded.crowded && !crowded.found, "{crowded:?}");
        assert!(crowded.spun < Duration::from_secs(10), "{crowded:?}");
    }
}
