//! The bounded busy-wait the worker and the event thread use before they park.

use std::time::{Duration, Instant};

/// Busy-waits up to `budget` for `ready`. The clock is read only after a first round of
/// polls (a request that arrives at once costs no clock read) and then every few dozen,
/// each time with a `sched_yield`: an idle spinner hands its core to a runnable thread
/// (the event thread, the host) when cores are oversubscribed, and costs one cheap
/// syscall when they are not.
pub(crate) fn spin_until(budget: Duration, ready: impl Fn() -> bool) -> bool {
    if budget.is_zero() {
        return false;
    }
    for _ in 0..64 {
        if ready() {
            return true;
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= budget {
            return ready();
        }
        std::thread::yield_now();
    }
}
