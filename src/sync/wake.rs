//! The wake protocol between producers (host threads) and the worker.
//!
//! # Worker wake: announce, recheck, park
//!
//! The worker's state word is `RUNNING` or `PARKED`. A producer pays for a wake (a
//! syscall) only when the worker has announced that it is parking; while the worker is
//! busy or spinning, a submit costs a fence and one load of a cache line the worker does
//! not write.
//!
//! ```text
//! worker                                   producer
//! ------                                   --------
//! swap(state, PARKED)       (W1)           ring.push(request)        (P1)
//! fence(SeqCst)                            fence(SeqCst)
//! if work is visible        (W2)           if state == PARKED        (P2)
//!     swap(state, RUNNING); go on              if swap(state, RUNNING) == PARKED
//! else sleep while state == PARKED                 wake the worker
//! ```
//!
//! No lost wakeup: the two fences are totally ordered. If the worker's fence comes first,
//! P2 sees W1 (`PARKED`) and wakes it; if the producer's comes first, W2 sees P1 and the
//! worker does not sleep. The `swap` makes exactly one of several racing producers issue
//! the wake. The sleep itself re-validates `state == PARKED` atomically with going to
//! sleep (futex semantics, or a counting eventfd), so a wake between W2 and the sleep is
//! not lost either. Spurious returns are harmless: the worker loops. The worker's own
//! writes are swaps so that every write to the word is a read-modify-write and the
//! modification order is total even in loom's model (plain stores there lost a wakeup).
//! `scripts/loom.sh` model-checks this protocol and the space wait below.
//!
//! # Space wait (back-pressure `Block`)
//!
//! The mirror image, with the roles swapped: a producer that finds the ring full reads
//! the `epoch`, registers in `waiters`, fences, rechecks "still full", and sleeps while
//! `epoch` is unchanged. The worker, after freeing slots, fences and, only if `waiters`
//! is non-zero, bumps `epoch` and wakes all sleepers. Same argument: either the
//! producer's recheck sees the freed slot, or the worker sees the registration.

use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::sync::{fence, AtomicU32, AtomicU64, Ordering};

const RUNNING: u32 = 0;
const PARKED: u32 = 1;

/// Futex semantics on a 32-bit word: `wait` sleeps only while the word still holds
/// `expected`, checked atomically with going to sleep; `wake_all` wakes every sleeper.
/// The kernel's futex on Linux, called as `std` calls it (so Miri models it too), and
/// no allocation or global table of its own: a library that is unloaded leaves nothing
/// behind.
#[cfg(all(not(loom), target_os = "linux"))]
pub(crate) mod futex {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    /// Sleeps while `word` holds `expected`, for at most `timeout` when one is given.
    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        // As `std` does: FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.
        let deadline = timeout.map(|timeout| {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: a valid clock id and out pointer.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
            let nanos = now.tv_nsec as u64 + timeout.subsec_nanos() as u64;
            libc::timespec {
                tv_sec: now
                    .tv_sec
                    .saturating_add(timeout.as_secs().min(i32::MAX as u64) as libc::time_t)
                    .saturating_add((nanos / 1_000_000_000) as libc::time_t),
                tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
            }
        });
        let deadline_ptr = deadline
            .as_ref()
            .map_or(std::ptr::null(), |d| d as *const libc::timespec);
        // SAFETY: FUTEX_WAIT_BITSET on a live, aligned u32, with no deadline or one that
        // lives for the call; the kernel only reads them. EINTR, EAGAIN, timeouts and
        // spurious returns are fine: every caller loops on its own condition.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word as *const AtomicU32 as *const u32,
                libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG,
                expected,
                deadline_ptr,
                std::ptr::null::<u32>(), // unused by FUTEX_WAIT_BITSET
                !0u32,                   // every bit: a plain FUTEX_WAIT
            );
        }
    }

    pub(crate) fn wake_all(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE on a live, aligned u32; the kernel does not touch memory.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word as *const AtomicU32 as *const u32,
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                i32::MAX,
            );
        }
    }
}

/// Elsewhere, `parking_lot_core`'s address-keyed parking.
#[cfg(all(not(loom), not(target_os = "linux")))]
pub(crate) mod futex {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        let key = word as *const AtomicU32 as usize;
        // SAFETY: the key is the caller's live word; the callbacks only load it.
        unsafe {
            parking_lot_core::park(
                key,
                || word.load(Ordering::Acquire) == expected,
                || {},
                |_, _| {},
                parking_lot_core::DEFAULT_PARK_TOKEN,
                timeout.and_then(|t| std::time::Instant::now().checked_add(t)),
            );
        }
    }

    pub(crate) fn wake_all(word: &AtomicU32) {
        let key = word as *const AtomicU32 as usize;
        // SAFETY: as for `wait`.
        unsafe { parking_lot_core::unpark_all(key, parking_lot_core::DEFAULT_UNPARK_TOKEN) };
    }
}

/// The model-checked stand-in: one lock and condition variable for all words (a
/// spurious wake of another word's sleeper is allowed by the protocol).
#[cfg(loom)]
pub(crate) mod futex {
    use loom::sync::atomic::{AtomicU32, Ordering};
    use loom::sync::{Condvar, Mutex};
    loom::lazy_static! {
        static ref LOT: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }
    /// A timeout is a return the sleeper did not ask for: the model lets it happen at
    /// once, which covers every later moment the protocol could see.
    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<std::time::Duration>) {
        if timeout.is_some() {
            return loom::thread::yield_now();
        }
        let guard = LOT.0.lock().unwrap();
        if word.load(Ordering::Acquire) == expected {
            drop(LOT.1.wait(guard).unwrap());
        }
    }
    pub(crate) fn wake_all(_word: &AtomicU32) {
        let _guard = LOT.0.lock().unwrap();
        LOT.1.notify_all();
    }
}

/// A Linux eventfd: a kernel counter that a reactor can poll, used by the eventfd wake
/// backend and by completion mode's ring.
#[cfg(target_os = "linux")]
pub(crate) struct EventFd(std::os::fd::OwnedFd);

#[cfg(target_os = "linux")]
impl EventFd {
    /// A counter at 0. `nonblocking`: `take` returns 0 at once instead of sleeping
    /// while the counter is 0.
    pub(crate) fn new(nonblocking: bool) -> std::io::Result<EventFd> {
        use std::os::fd::FromRawFd;
        let flags = libc::EFD_CLOEXEC | if nonblocking { libc::EFD_NONBLOCK } else { 0 };
        // SAFETY: plain syscall with constant flags; the result is checked below.
        let fd = unsafe { libc::eventfd(0, flags) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        Ok(EventFd(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    /// Adds 1: the descriptor turns readable.
    pub(crate) fn signal(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a local u64 to a descriptor we own; an eventfd
        // write only fails on counter overflow, which 1 per signal cannot reach.
        unsafe { libc::write(self.raw(), (&one as *const u64).cast(), 8) };
    }

    /// Reads the counter and resets it to 0 (the descriptor turns unreadable). A
    /// blocking eventfd sleeps while the counter is 0; a non-blocking one returns 0.
    /// Interrupted by a signal, it returns 0 too: callers loop on their own state.
    pub(crate) fn take(&self) -> u64 {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into a local u64 from a descriptor we own.
        let n = unsafe { libc::read(self.raw(), (&mut count as *mut u64).cast(), 8) };
        if n == 8 {
            count
        } else {
            0
        }
    }

    /// The descriptor to poll, owned by this value.
    pub(crate) fn raw(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd()
    }
}

/// How a parked worker sleeps and is woken.
pub(crate) enum WakeBackend {
    /// A futex on the state word.
    Futex,
    /// A blocking Linux eventfd, pollable by a reactor that shares the worker thread.
    #[cfg(target_os = "linux")]
    EventFd(EventFd),
}

impl WakeBackend {
    /// Creates the eventfd backend. Fails where eventfd does not exist.
    pub(crate) fn eventfd() -> std::io::Result<WakeBackend> {
        #[cfg(target_os = "linux")]
        {
            EventFd::new(false).map(WakeBackend::EventFd)
        }
        #[cfg(not(target_os = "linux"))]
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "eventfd needs Linux",
        ))
    }
}

/// How a nap ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nap {
    /// Work came: a producer woke the worker, or the recheck found it before any sleep.
    Woken,
    /// The deadline passed; the worker woke `late` after it.
    TimedOut { late: Duration },
}

/// The worker's parking word and the backend that sleeps on it.
pub(crate) struct WorkerWake {
    /// Written by the worker around parking and by the one producer that wakes it; read
    /// by every producer on every submit, so it sits alone on its cache line.
    state: CachePadded<AtomicU32>,
    backend: WakeBackend,
    /// Wakes issued (each one is a syscall). Touched only on the cold path.
    wakes: AtomicU64,
    /// When a producer last found the worker parked, in ns since `epoch`: the arrival
    /// of the request that ends a sleep, which the idle tuner learns gaps from (the
    /// worker itself sees only when it woke, a wake's latency later). Written on the
    /// wake path only, before the swap that takes the word (see `notify`).
    found_parked: AtomicU64,
    epoch: Instant,
}

impl WorkerWake {
    pub(crate) fn new(backend: WakeBackend) -> Self {
        WorkerWake {
            state: CachePadded::new(AtomicU32::new(RUNNING)),
            backend,
            wakes: AtomicU64::new(0),
            found_parked: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Worker side: announces parking, rechecks `has_work`, and sleeps until woken.
    /// Returns without sleeping when `has_work` is already true; true when it slept.
    pub(crate) fn park(&self, has_work: impl Fn() -> bool) -> bool {
        // Both writes are read-modify-writes, not plain stores: they take their place in
        // the state word's modification order after any producer's swap they race with
        // (loom, which orders plain stores only partially against other threads' RMWs,
        // finds a lost wakeup with plain stores here; see `loom_models`).
        self.state.swap(PARKED, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if has_work() {
            // A producer may have swapped to RUNNING and be about to wake us anyway; the
            // stray wake only makes a later park return once, spuriously.
            self.state.swap(RUNNING, Ordering::Relaxed);
            return false;
        }
        while self.state.load(Ordering::Acquire) == PARKED {
            self.sleep();
        }
        true
    }

    /// Worker side: [`park`](Self::park) until `deadline` at the latest (a nap before a
    /// request the worker expects). On the deadline the worker takes the word back
    /// itself; if a producer swapped it first, that producer's wake is on its way (a
    /// stray wake only makes a later sleep return once). Only the futex backend naps:
    /// with the eventfd backend this returns at once, timed out.
    pub(crate) fn nap(&self, has_work: impl Fn() -> bool, deadline: Instant) -> Nap {
        if !matches!(self.backend, WakeBackend::Futex) {
            return Nap::TimedOut {
                late: Duration::ZERO,
            };
        }
        // As `park`: announce, fence, recheck.
        self.state.swap(PARKED, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if has_work() {
            self.state.swap(RUNNING, Ordering::Relaxed);
            return Nap::Woken;
        }
        loop {
            if self.state.load(Ordering::Acquire) != PARKED {
                return Nap::Woken;
            }
            let now = Instant::now();
            if cfg!(loom) || now >= deadline {
                // AcqRel: if a producer's swap came first, this reads it and so sees the
                // work it published before (the caller pops next).
                return match self.state.swap(RUNNING, Ordering::AcqRel) {
                    PARKED => Nap::TimedOut {
                        late: now.saturating_duration_since(deadline),
                    },
                    _ => Nap::Woken,
                };
            }
            futex::wait(&self.state, PARKED, Some(deadline - now));
        }
    }

    /// Producer side: call after publishing work (or a stop request).
    #[inline]
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.state.load(Ordering::Relaxed) == PARKED {
            self.wake_parked();
        }
    }

    /// The cold half of `notify`: the worker announced parking.
    #[cold]
    fn wake_parked(&self) {
        // Stamped before the swap: its release half publishes the stamp to the worker,
        // whose acquire of the word reads this swap. A producer that loses the swap
        // stamps too, a moment later: the stamp is still within the same sleep.
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.found_parked.store(now, Ordering::Relaxed);
        if self.state.swap(RUNNING, Ordering::AcqRel) == PARKED {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            self.wake();
        }
    }

    /// Worker side, after a sleep a producer ended (`park` returned true, or a nap
    /// returned [`Nap::Woken`] after sleeping): when that producer found it parked,
    /// which is when the request that woke it arrived, within a clock read.
    pub(crate) fn found_parked_at(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.found_parked.load(Ordering::Relaxed))
    }

    /// Wakes issued so far.
    pub(crate) fn wakes(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }

    /// The pollable descriptor of the eventfd backend, if that is the backend.
    #[cfg(target_os = "linux")]
    pub(crate) fn fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.backend {
            WakeBackend::EventFd(fd) => Some(fd.raw()),
            WakeBackend::Futex => None,
        }
    }

    fn sleep(&self) {
        match &self.backend {
            WakeBackend::Futex => futex::wait(&self.state, PARKED, None),
            #[cfg(target_os = "linux")]
            WakeBackend::EventFd(fd) => {
                // Returns once the counter is non-zero (a wake happened after the
                // announce, or a stray one is left over: both fine, the caller loops on
                // the state word). EINTR also just loops.
                fd.take();
            }
        }
    }

    fn wake(&self) {
        match &self.backend {
            WakeBackend::Futex => futex::wake_all(&self.state),
            #[cfg(target_os = "linux")]
            WakeBackend::EventFd(fd) => fd.signal(),
        }
    }
}

/// Producers waiting for a free slot (back-pressure `Block`), and the answers that
/// wait for the host (completion mode), which such a producer must not wait behind.
pub(crate) struct SpaceWait {
    waiters: CachePadded<AtomicU32>,
    epoch: AtomicU32,
    /// How many answers wait for room in a full completion queue. `stall_begin` and
    /// the `notify` after it (a fence, then a load of the waiters) are one half of a
    /// store-fence-load pair; `wait`'s registration, fence and the
    /// [`answers_stalled`](Self::answers_stalled) in its recheck are the other, so a
    /// producer that registered to wait either sees the stall or is woken to look again.
    stalled: AtomicU32,
}

impl SpaceWait {
    pub(crate) fn new() -> Self {
        SpaceWait {
            waiters: CachePadded::new(AtomicU32::new(0)),
            epoch: AtomicU32::new(0),
            stalled: AtomicU32::new(0),
        }
    }

    /// An answer starts waiting for the host to drain; wakes the waiting producers so
    /// that they give up rather than wait behind it.
    pub(crate) fn stall_begin(&self) {
        self.stalled.fetch_add(1, Ordering::SeqCst);
        self.notify();
    }

    /// That answer found room.
    pub(crate) fn stall_end(&self) {
        self.stalled.fetch_sub(1, Ordering::Release);
    }

    /// Whether some answer waits for the host to drain.
    pub(crate) fn answers_stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed) > 0
    }

    /// Producer side: sleeps until the worker frees space or `notify` is called for
    /// another reason, unless `still_blocked` turns false after registering.
    pub(crate) fn wait(&self, still_blocked: impl Fn() -> bool) {
        let epoch = self.epoch.load(Ordering::Acquire);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if still_blocked() {
            futex::wait(&self.epoch, epoch, None);
        }
        self.waiters.fetch_sub(1, Ordering::Release);
    }

    /// Worker (after popping) or destroy (after closing): wakes every waiting producer,
    /// at the cost of one load when nobody waits.
    #[inline]
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.epoch.fetch_add(1, Ordering::Release);
            futex::wake_all(&self.epoch);
        }
    }
}

/// How long a consumer may wait for something to come (a poll's timeout).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Not at all (a timeout of 0, or inside a callback): no clock is read.
    Not,
    /// Until then.
    Until(Instant),
    /// As long as it takes (a negative timeout).
    Forever,
}

/// Model checks of both protocols with the tagged ring (`scripts/loom.sh`). A lost
/// wakeup shows up as loom reporting a deadlock; a lost request as a failed assert.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::sync::ring::{Ring, TagRing};
    use loom::sync::Arc;
    use loom::thread;

    /// Two producers push one request each and notify, while this thread, the worker,
    /// pops until it has both: idling with `idle` (given whether it idled before) when
    /// the ring is empty. Nothing may be lost.
    fn two_producers_one_worker(idle: impl Fn(&WorkerWake, &TagRing<u32>, bool)) {
        let ring = Arc::new(TagRing::<u32>::new(4));
        let wake = Arc::new(WorkerWake::new(WakeBackend::Futex));
        let producers: Vec<_> = (0..2)
            .map(|i| {
                let (ring, wake) = (ring.clone(), wake.clone());
                thread::spawn(move || {
                    ring.push(i).unwrap();
                    wake.notify();
                })
            })
            .collect();
        let mut got = Vec::new();
        let mut idled = false;
        while got.len() < 2 {
            // SAFETY: this thread is the only consumer.
            match unsafe { ring.pop() } {
                Some(v) => got.push(v),
                None => {
                    idle(&wake, &ring, idled);
                    idled = true;
                }
            }
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        for p in producers {
            p.join().unwrap();
        }
    }

    /// Two producers push and notify while the worker drains and parks.
    #[test]
    fn worker_wake_loses_no_request_with_two_producers() {
        crate::sync::model("worker wake, 2 producers", || {
            two_producers_one_worker(|wake, ring, _| {
                wake.park(|| !ring.is_empty());
            });
        });
    }

    /// A worker that naps first (with a timeout, which the model lets expire at any
    /// moment), then parks, loses no request either.
    #[test]
    fn a_napping_worker_loses_no_request() {
        crate::sync::model("worker nap, 2 producers", || {
            two_producers_one_worker(|wake, ring, idled| {
                if idled {
                    wake.park(|| !ring.is_empty());
                } else {
                    let _ = wake.nap(|| !ring.is_empty(), Instant::now());
                }
            });
        });
    }

    /// Back-pressure `Block`: a producer facing a full ring waits for space and is
    /// woken when the worker frees a slot; the worker is woken for its request.
    #[test]
    fn blocked_producer_is_woken_when_space_frees() {
        crate::sync::model("space wait, blocked producer", || {
            let ring = Arc::new(TagRing::<u32>::new(1));
            let space = Arc::new(SpaceWait::new());
            let wake = Arc::new(WorkerWake::new(WakeBackend::Futex));
            ring.push(0).unwrap();
            let producer = {
                let (ring, space, wake) = (ring.clone(), space.clone(), wake.clone());
                thread::spawn(move || {
                    let mut value = 1;
                    loop {
                        match ring.push(value) {
                            Ok(_) => return wake.notify(),
                            Err(back) => {
                                value = back;
                                space.wait(|| ring.is_full());
                            }
                        }
                    }
                })
            };
            let mut got = Vec::new();
            while got.len() < 2 {
                // SAFETY: this thread is the only consumer.
                match unsafe { ring.pop() } {
                    Some(v) => {
                        got.push(v);
                        space.notify();
                    }
                    None => {
                        wake.park(|| !ring.is_empty());
                    }
                }
            }
            assert_eq!(got, [0, 1], "FIFO, nothing lost");
            producer.join().unwrap();
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    /// After a sleep a producer ended, the worker learns when that producer found it
    /// parked: after the producer started its notify and before that notify returned,
    /// however long the wake itself took. (Bounds by causality, not by timing.)
    #[test]
    fn a_woken_worker_learns_when_its_producer_came() {
        let mut backends = vec![WakeBackend::Futex];
        if cfg!(all(target_os = "linux", not(miri))) {
            // Miri's eventfd is not the kernel's (the runtime tests skip it there too).
            backends.push(WakeBackend::eventfd().expect("eventfd"));
        }
        for backend in backends {
            let wake = Arc::new(WorkerWake::new(backend));
            let work = Arc::new(AtomicU32::new(0));
            let producer = {
                let (wake, work) = (wake.clone(), work.clone());
                std::thread::spawn(move || {
                    // Come once the worker announced parking (if its recheck still
                    // finds the work, it does not sleep and the stamp is not asserted).
                    while wake.state.load(Ordering::Acquire) != PARKED {
                        std::thread::yield_now();
                    }
                    let before = Instant::now();
                    work.store(1, Ordering::Release);
                    wake.notify();
                    (before, Instant::now())
                })
            };
            let slept = wake.park(|| work.load(Ordering::Acquire) == 1);
            let (before, after) = producer.join().expect("producer");
            if slept {
                let at = wake.found_parked_at();
                assert!(before <= at && at <= after, "{before:?} {at:?} {after:?}");
            }
        }
    }
}
