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
}

/// Busy-waits up to `budget` for `ready`. The clock is read only after a first round of
/// polls (a request that arrives at once costs no clock read) and then every few dozen,
/// each time with a `sched_yield`: an idle spinner hands its core to a runnable thread
/// (the event thread, the host) when cores are oversubscribed, and costs one cheap
/// syscall when they are not.
pub(crate) fn spin_until(budget: Duration, ready: impl Fn() -> bool) -> Spin {
    let mut spun = Duration::ZERO;
    if budget.is_zero() {
        return Spin { found: false, spun };
    }
    for _ in 0..64 {
        if ready() {
            return Spin { found: true, spun };
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if ready() {
                return Spin { found: true, spun };
            }
            std::hint::spin_loop();
        }
        spun = start.elapsed();
        if spun >= budget {
            return Spin {
                found: ready(),
                spun,
            };
        }
        std::thread::yield_now();
    }
}
