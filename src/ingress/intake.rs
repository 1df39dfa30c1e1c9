//! The context's intake: the producer side of the request ring, with its back-pressure
//! policy and the worker's wake word, and the one [`Inbox`] (the consumer side) the
//! worker takes from it.
//!
//! Host calls push (`Intake::push`), async task wakers push markers
//! (`Intake::push_task_wake`), and destroy closes it. The worker alone pops: the ring
//! has a single consumer, and [`Intake::claim_inbox`] hands out that role once, as a
//! value the creating thread moves to the worker, which turns it into its [`Inbox`]; so
//! `Inbox::pop` is safe (rtrb's producer/consumer shape).

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;

use crate::abi::{Busy, Refusal};
use crate::ingress::envelope::Envelope;
use crate::options::BackPressure;
use crate::sync::counter::SharedCounter;
use crate::sync::ring::{Ingress, Ring};
use crate::sync::spin::{spin_within, Spin};
use crate::sync::wake::{Nap, SpaceWait, WorkerWake};
use crate::sync::{AtomicBool, Ordering};
use crate::threads::must_not_block;
use crate::worker::idle::Plan;

/// The producer side of a context's request ring.
pub(crate) struct Intake {
    ring: Ingress<Envelope>,
    wake: WorkerWake,
    /// Where producers wait for space, shared with the completion queue (whose stalled
    /// answers they must not wait behind).
    space: Arc<SpaceWait>,
    /// Intake stopped: blocked producers give up (destroy step 2).
    closed: AtomicBool,
    /// The worker exits once the ring is empty (destroy step 4).
    stop: AtomicBool,
    policy: BackPressure,
    /// Task wakes that found the ring full (rare), and the flag the worker checks.
    overflow: SegQueue<u64>,
    overflowed: AtomicBool,
    /// The inbox was claimed.
    inbox_claimed: AtomicBool,
    /// Calls this context refused.
    pub(crate) refused: SharedCounter,
}

impl Intake {
    pub(crate) fn new(
        ring: Ingress<Envelope>,
        wake: WorkerWake,
        space: Arc<SpaceWait>,
        policy: BackPressure,
    ) -> Self {
        Intake {
            ring,
            wake,
            space,
            closed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            policy,
            overflow: SegQueue::new(),
            overflowed: AtomicBool::new(false),
            inbox_claimed: AtomicBool::new(false),
            refused: SharedCounter::default(),
        }
    }

    /// How many requests are queued (a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    /// The id of the last request pushed (`None` for the `ArrayQueue` ring, which gives
    /// no ids).
    pub(crate) fn last_id(&self) -> Option<u64> {
        match &self.ring {
            Ingress::Tag(ring) => Some(ring.pushed()),
            Ingress::Array(_) => None,
        }
    }

    /// How many times the worker was woken from its park.
    pub(crate) fn wakes(&self) -> u64 {
        self.wake.wakes()
    }

    /// The eventfd the parked worker sleeps on (`None` for the futex backend).
    #[cfg(target_os = "linux")]
    pub(crate) fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        self.wake.fd()
    }

    /// Pushes an envelope, applying the back-pressure policy; wakes the worker if parked.
    /// Returns the request's id.
    #[inline]
    pub(crate) fn push(&self, env: Envelope) -> Result<u64, Refusal> {
        match self.ring.push(env) {
            Ok(id) => {
                self.wake.notify();
                Ok(id)
            }
            Err(env) => self.push_full(env),
        }
    }

    /// The ring was full. Kept out of line so that the hot path carries none of it
    /// (thread-local lookup, backoff, parking).
    #[cold]
    #[inline(never)]
    fn push_full(&self, mut env: Envelope) -> Result<u64, Refusal> {
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            // A caller in completion mode must not wait for ring space while an answer
            // waits for the completion queue's drain, which may be this very thread's
            // next step (a single-threaded event loop).
            if self.policy == BackPressure::Reject {
                return Err(Refusal::Busy(Busy::RingFull));
            }
            if must_not_block() {
                return Err(Refusal::Busy(Busy::InsideCallback));
            }
            if self.space.answers_stalled() {
                return Err(Refusal::Busy(Busy::AwaitingDrain));
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(Refusal::Closed);
            }
            if backoff.is_completed() {
                self.space.wait(|| {
                    self.ring.is_full()
                        && !self.closed.load(Ordering::Relaxed)
                        && !self.space.answers_stalled()
                });
            } else {
                backoff.snooze();
            }
            match self.ring.push(env) {
                Ok(id) => {
                    self.wake.notify();
                    return Ok(id);
                }
                Err(back) => env = back,
            }
        }
    }

    /// Queues async task `key` to be polled: a marker through the ring, so that tasks
    /// and requests take turns in ring order. Never blocks (a waker may run anywhere):
    /// a full ring puts the key on the overflow queue.
    pub(crate) fn push_task_wake(&self, key: u64) {
        if self.ring.push(Envelope::task_wake(key)).is_err() {
            self.overflow.push(key);
            // After the push (the queue synchronises its own contents): a worker that
            // swaps the flag off then finds the key. Release/AcqRel keep the flag from
            // being seen before the key is queued.
            self.overflowed.store(true, Ordering::Release);
        }
        self.wake.notify();
    }

    /// Destroy step 2: new pushes that would wait give up, and the producers waiting
    /// now are woken to see it.
    pub(crate) fn close(&self) {
        // SeqCst store, then `notify`'s SeqCst fence and load of the waiters: a producer
        // that registered to wait and then re-checks `closed` either sees it or is
        // woken (the space wait's store-fence-load pair, `sync/wake.rs`).
        self.closed.store(true, Ordering::SeqCst);
        self.space.notify();
    }

    /// Whether destroy began (step 2).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Destroy step 4, once no producer is left: the worker drains the ring and exits.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify();
    }

    /// The right to the consumer side, once: `None` if it was claimed before. `create`
    /// claims it before it starts the worker, and moves the claim to it.
    pub(crate) fn claim_inbox(&self) -> Option<InboxClaim> {
        (!self.inbox_claimed.swap(true, Ordering::AcqRel)).then_some(InboxClaim(()))
    }

    /// The consumer side, for the thread the claim was moved to. A claim is for the
    /// intake that gave it (each is made for its own context in `create`).
    pub(crate) fn inbox(&self, _claim: InboxClaim) -> Inbox<'_> {
        Inbox {
            intake: self,
            _not_sync: PhantomData,
        }
    }
}

/// The one claim on an intake's consumer side ([`Intake::claim_inbox`]); not `Clone`,
/// so there is at most one [`Inbox`] per intake.
#[must_use = "an unused claim leaves the ring without a consumer"]
pub(crate) struct InboxClaim(());

/// How an idle wait ended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Idle {
    /// How long the worker spun (see [`Spin::spun`]).
    pub(crate) spun: Duration,
    /// `None` when a spin found work; else it slept until a producer woke it (a nap or
    /// a park), for this long (zero: the recheck found work at once).
    pub(crate) slept: Option<Duration>,
    /// When the work arrived, since the worker went idle: when a spin found it, or,
    /// after a sleep, when the producer that woke the worker found it parked (a wake's
    /// latency before the worker woke).
    pub(crate) gap: Duration,
    /// How late a nap that ran to its deadline woke.
    pub(crate) nap_late: Option<Duration>,
    /// The spin gave up its core to another runnable thread (see [`Spin::crowded`])
    /// and parked early.
    pub(crate) crowded: bool,
}

/// The consumer side of a context's request ring: the worker's alone (there is one
/// per [`Intake`]), so popping needs no promise from the caller.
pub(crate) struct Inbox<'a> {
    intake: &'a Intake,
    /// Popping through a shared reference from two threads would break the ring's
    /// single-consumer rule: an inbox may move to another thread, never be shared.
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl<'a> Inbox<'a> {
    /// The next request (or task wake marker), in ring order.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Envelope> {
        // SAFETY: this inbox is its intake's only consumer (`claim_inbox` hands out one
        // claim, and a claim makes one inbox),
        // and `&mut self` keeps its pops on one thread at a time.
        unsafe { self.intake.ring.pop() }
    }

    /// How many requests are queued (a read of the producers' line: off the
    /// one-at-a-time path).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.intake.ring.len()
    }

    /// Task keys woken while the ring was full.
    #[inline]
    pub(crate) fn take_overflow(&mut self) -> impl Iterator<Item = u64> + 'a {
        let intake = self.intake;
        let overflowed = &intake.overflowed;
        let any = overflowed.load(Ordering::Relaxed) && overflowed.swap(false, Ordering::AcqRel);
        std::iter::from_fn(move || if any { intake.overflow.pop() } else { None })
    }

    /// Wakes producers blocked on a full ring: the worker calls it after popping a batch.
    #[inline]
    pub(crate) fn space_freed(&self) {
        self.intake.space.notify();
    }

    /// Destroy asked the worker to stop and the ring is empty. `stop` is read first: it
    /// is set after every producer left, so once it reads true an empty ring stays
    /// empty (but for task wakes).
    #[inline]
    pub(crate) fn stopped_and_empty(&self) -> bool {
        self.intake.stop.load(Ordering::Acquire) && self.intake.ring.is_empty()
    }

    /// Idle: carries out the idle policy's plan (`worker/idle.rs`): nap until
    /// `plan.nap_until`, spin until `plan.spin_until` (both since now), then park until
    /// a producer wakes the worker. Returns as soon as work is there.
    #[inline]
    pub(crate) fn wait_for_work(&self, plan: Plan) -> Idle {
        let intake = self.intake;
        // Relaxed while spinning; SeqCst in the park's recheck (see `sync/wake.rs`).
        let has_work = |order| {
            !intake.ring.is_empty() || intake.stop.load(order) || intake.overflowed.load(order)
        };
        // Time since the worker went idle, as far as the spin and the sleeps measure it:
        // the clock is read only for a nap (its deadline) and around a sleep, never on
        // the way from a spin to the work it found.
        let mut spin_from = Duration::ZERO;
        let mut nap_late = None;
        if let Some(nap) = plan.nap_until {
            // Read as the worker goes idle, just after it answered: off the next
            // request's path (its host is still in the callback).
            let start = Instant::now();
            match intake.wake.nap(|| has_work(Ordering::SeqCst), start + nap) {
                Nap::TimedOut { late } => {
                    nap_late = Some(late);
                    spin_from = start.elapsed();
                }
                Nap::Woken => {
                    let woke = start.elapsed();
                    // A stamp from before this nap (the recheck found work, no producer
                    // woke it) saturates to zero: the work was there at once.
                    let gap = intake
                        .wake
                        .found_parked_at()
                        .saturating_duration_since(start);
                    return Idle {
                        spun: Duration::ZERO,
                        slept: Some(woke),
                        gap,
                        // Woken after the deadline: the nap overslept by at most this.
                        nap_late: woke.checked_sub(nap),
                        crowded: false,
                    };
                }
            }
        }
        let budget = plan.spin_until.saturating_sub(spin_from);
        let Spin {
            found,
            spun,
            crowded,
        } = spin_within(budget, true, || has_work(Ordering::Relaxed));
        if found {
            return Idle {
                spun,
                slept: None,
                gap: spin_from + spun,
                nap_late,
                crowded,
            };
        }
        // A wake costs tens of µs, the clock reads around it tens of ns.
        let parked_at = Instant::now();
        let slept = intake.wake.park(|| has_work(Ordering::SeqCst));
        let parked = parked_at.elapsed();
        let arrived = if slept {
            intake
                .wake
                .found_parked_at()
                .saturating_duration_since(parked_at)
        } else {
            parked
        };
        Idle {
            spun,
            // Announced, so counted as a park even when the recheck found work: a
            // producer may have read the announcement and woken it (stats: wakes <= parks).
            slept: Some(if slept { parked } else { Duration::ZERO }),
            gap: spin_from + spun + arrived,
            nap_late,
            crowded,
        }
    }
}
