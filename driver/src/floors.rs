//! The baselines measured in the same run: the atomic ping-pong floor and the
//! three-thread relay that the event lane is set against.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::ffi::fail_hard;
use crate::lanes::wait_spinning;
use crate::report::{histogram, Row};

/// The floor: a bare atomic ping-pong between two threads, timed per round trip the
/// same way as the sync lane.
pub(crate) fn floor(rounds: u64) -> Row {
    let flag = Arc::new(AtomicU64::new(0));
    let peer = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            for i in 0..rounds {
                while flag.load(Ordering::Acquire) != 2 * i + 1 {
                    spin_loop();
                }
                flag.store(2 * i + 2, Ordering::Release);
            }
        })
    };
    let row = timed_rounds("floor", "ping-pong", 0..rounds, |i| {
        flag.store(2 * i + 1, Ordering::Release);
        while flag.load(Ordering::Acquire) != 2 * i + 2 {
            spin_loop();
        }
    });
    peer.join().expect("ping-pong peer");
    row
}

/// A futex operation on `word` (`FUTEX_WAIT` while it holds `value`, or `FUTEX_WAKE` of
/// `value` sleepers).
pub(crate) fn futex(word: &AtomicU32, op: libc::c_int, value: u32) {
    // SAFETY: a live, aligned 32-bit word; no timeout; the kernel only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op | libc::FUTEX_PRIVATE_FLAG,
            value,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// The blocking lane's floor: a futex ping-pong between two threads that both sleep
/// while they wait (each round trip is two wakes), as a blocking host and a parked
/// worker do at worst.
pub(crate) fn futex_floor(rounds: u64) -> Row {
    // [to the peer, back to this thread]
    let words = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
    let peer = {
        let words = words.clone();
        std::thread::spawn(move || {
            for _ in 0..rounds {
                while words[0].swap(0, Ordering::Acquire) == 0 {
                    futex(&words[0], libc::FUTEX_WAIT, 0);
                }
                words[1].store(1, Ordering::Release);
                futex(&words[1], libc::FUTEX_WAKE, 1);
            }
        })
    };
    let row = timed_rounds("floor", "futex", 0..rounds, |_| {
        words[0].store(1, Ordering::Release);
        futex(&words[0], libc::FUTEX_WAKE, 1);
        while words[1].swap(0, Ordering::Acquire) == 0 {
            futex(&words[1], libc::FUTEX_WAIT, 0);
        }
    });
    peer.join().expect("futex peer");
    row
}

/// A baseline row's p50 in ns (at least 1: it divides).
pub(crate) fn p50_ns(row: &Row) -> u64 {
    row.hist
        .as_ref()
        .map_or(1, |h| h.value_at_quantile(0.5))
        .max(1)
}

/// Times each round of a bare baseline on this thread into a row.
fn timed_rounds(
    setup: &str,
    lane: &'static str,
    rounds: std::ops::Range<u64>,
    mut round: impl FnMut(u64),
) -> Row {
    let count = rounds.end - rounds.start;
    let mut hist = histogram();
    let start = Instant::now();
    for i in rounds {
        let t0 = Instant::now();
        round(i);
        hist.record((t0.elapsed().as_nanos() as u64).max(1))
            .expect("in range");
    }
    Row {
        setup: setup.into(),
        mode: "-",
        lane,
        threads: 1,
        calls_per_s: count as f64 / start.elapsed().as_secs_f64(),
        hist: Some(hist),
        wrong: 0,
    }
}

/// The event lane's baseline: a bare atomic relay host -> A -> B -> host over three
/// threads, which is the path an event takes (host -> worker -> event thread -> host
/// listener). The relays wait as the runtime's idle threads do (spin, then
/// `sched_yield` between polls) and the host as the event lane does, so on a machine
/// with fewer cores than three this row shows what sharing a core costs by itself. It
/// is a baseline rather than a strict floor: the runtime's event thread parks when idle
/// and can beat it.
pub(crate) fn relay_floor(rounds: u64) -> Row {
    let stage = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let relays: Vec<_> = (0..2)
        .map(|hop| {
            let stage = stage.clone();
            std::thread::spawn(move || {
                for i in 1..=rounds {
                    let ready = || stage[hop].load(Ordering::Acquire) == i;
                    if !wait_spinning(64, ready) {
                        fail_hard("relay floor: a hop never came");
                    }
                    stage[hop + 1].store(i, Ordering::Release);
                }
            })
        })
        .collect();
    let row = timed_rounds("event relay", "relay", 1..rounds + 1, |i| {
        stage[0].store(i, Ordering::Release);
        if !wait_spinning(256, || stage[2].load(Ordering::Acquire) == i) {
            fail_hard("relay floor: the round never came back");
        }
    });
    for r in relays {
        r.join().expect("relay thread");
    }
    row
}
