//! What the idle worker does until the next request: the idle policy.
//!
//! `Latency` (the default) spins the `spin` bound after every request, then parks.
//! `Power` parks at once. `Balanced` plans each idle period from what it learnt:
//!
//!
//! A parked worker costs the next request a futex wake (tens of µs on a VM, where the
//! idle vCPU halts); a spinning one costs a core. Hosts rarely call back to back: they
//! call on a period. So `Balanced` learns the gaps between requests, as KVM's
//! halt-polling learns wake-up gaps, and plans:
//!
//! ```text
//! idle starts        nap (timed park)          spin            park (untimed)
//! |------------------|-------------------------|===============|-------------...
//!                    wake ~`lead` early        expected arrival +- jitter
//! ```
//!
//! - a gap due within the spin bound is spun through (cheaper than any wake), and every
//!   idle period spins at least as long as a wake costs (within the bound);
//! - a longer gap that comes on a regular period is napped through: the worker sleeps
//!   with a timeout that wakes it `lead` (its own measured oversleep) before the
//!   expected arrival, and spins across the arrival's jitter;
//! - the spin of a plan is held under the cap (a fraction of a core over the gap),
//!   except a spin shorter than a wake, which costs less than the wake it saves;
//! - when the spin ends without work the worker parks; the request then pays the wake;
//! - after a spin that lost its core to another runnable thread (`sync/spin.rs`), the
//!   next idle period parks at once (below).
//!
//! Gaps are learnt from when requests arrived, not from when the worker saw them: after
//! a sleep, the producer that woke the worker stamped the time (`sync/wake.rs`), so a
//! missed request does not teach a later arrival (which would make the next plan miss
//! too).
//!
//! All the tuner's state is the worker's own: no atomics, no allocation.
//!
//! Not yet good enough to be the default. A nap's timer wakes the worker on the core it
//! slept on, and a parked worker is woken onto a core the kernel picks: on 2-vCPU KVM
//! guests, often the waking host's own while the other core idles. Once the worker and
//! the host waiting for its answers share a core, they keep meeting there, and spinning
//! only takes turns with the host. A crowded spin therefore parks, and the next idle
//! period parks at once, so the request's wake preempts the host instead of queueing
//! behind it; but the pair stays on one core, and a periodic request then costs about a
//! futex round trip, not a hot one. A host that pins its threads and the worker's (the
//! thread hooks) apart keeps the plan's catches. The periodic lane of the latency driver
//! shows both.

use std::time::Duration;

use crate::options::IdlePolicy;

/// Gaps longer than this are not planned for: the worker parks (a nap would save a
/// wake's latency, but at periods this long it is a small share of the gap).
const HORIZON: Duration = Duration::from_millis(100);
/// The shortest nap worth its syscall.
const MIN_NAP: Duration = Duration::from_micros(10);
/// The least jitter a plan allows around an expected arrival.
const MIN_JITTER: Duration = Duration::from_micros(3);
/// Gap samples before the tuner plans from them.
const WARM: u32 = 8;

/// An exponentially weighted mean and mean deviation, in ns (weight 1/8).
#[derive(Clone, Copy, Default)]
struct Ewma {
    mean: f64,
    dev: f64,
}

impl Ewma {
    fn add(&mut self, x: f64) {
        let d = x - self.mean;
        self.mean += d / 8.0;
        self.dev += (d.abs() - self.dev) / 8.0;
    }
}

/// One idle period's plan, in time since the worker went idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Sleep with a timeout until then first (`None`: no nap).
    pub(crate) nap_until: Option<Duration>,
    /// Spin until then (after the nap), then park.
    pub(crate) spin_until: Duration,
}

/// What an idle period turned out to be, for the tuner to learn from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seen {
    /// When the next request arrived, since the worker went idle.
    pub(crate) gap: Duration,
    /// How late a nap woke after its deadline: by its own timer, or (an upper bound)
    /// by a request that came after the deadline.
    pub(crate) nap_late: Option<Duration>,
    /// The spin found its core shared with a runnable thread and parked early.
    pub(crate) crowded: bool,
}

/// The worker's idle policy and what it has learnt.
#[derive(Clone)]
pub(crate) struct IdleTuner {
    policy: IdlePolicy,
    /// The longest spin at a stretch (`Options::spin`).
    bound: Duration,
    /// The share of a core idle spinning may take.
    cap: f64,
    /// Whether the wake backend can nap (the futex one).
    can_nap: bool,
    gaps: Ewma,
    samples: u32,
    /// How late timed naps wake (the timer's slack and the vCPU's halt exit).
    late: Ewma,
    /// The last idle period's spin was crowded off its core (see `plan`).
    crowded: bool,
}

impl IdleTuner {
    pub(crate) fn new(policy: IdlePolicy, bound: Duration, cap: f32, can_nap: bool) -> Self {
        IdleTuner {
            policy,
            bound,
            cap: cap as f64,
            can_nap,
            gaps: Ewma::default(),
            samples: 0,
            // Until measured: a VM's timer wake, roughly.
            late: Ewma {
                mean: 20_000.0,
                dev: 10_000.0,
            },
            crowded: false,
        }
    }

    /// The plan for the idle period starting now.
    #[inline]
    pub(crate) fn plan(&self) -> Plan {
        let spin_bound = Plan {
            nap_until: None,
            spin_until: self.bound,
        };
        match self.policy {
            // A zero bound means what it always meant: park at once.
            _ if self.bound.is_zero() => spin_bound,
            IdlePolicy::Power => Plan {
                nap_until: None,
                spin_until: Duration::ZERO,
            },
            IdlePolicy::Latency => spin_bound,
            // The worker shares its core with a runnable thread (often the host that
            // waits for its answers: a nap's timer wakes the worker where it slept, so
            // once the two share a core they keep meeting there). Park at once: the
            // next request's wake then preempts the host, where a spinning or napping
            // worker would queue behind it (see the module's last paragraph).
            IdlePolicy::Balanced if self.crowded => Plan {
                nap_until: None,
                spin_until: Duration::ZERO,
            },
            IdlePolicy::Balanced if self.samples < WARM => spin_bound,
            IdlePolicy::Balanced => self.periodic().unwrap_or_else(|| self.soon()),
        }
    }

    /// Balanced, for gaps the tuner cannot nap through: spin through the expected
    /// arrival when it is due within the bound, and in any case for as long as a wake
    /// costs (within the bound): a spin that short costs less than the wake it saves,
    /// and keeps a host whose gaps vary a little hot.
    fn soon(&self) -> Plan {
        let (gap, jitter) = self.expected();
        let until = gap + jitter;
        let free = self.bound.min(self.lead());
        let spin = if until <= self.bound {
            until.max(free)
        } else {
            free
        };
        Plan {
            nap_until: None,
            spin_until: spin,
        }
    }

    /// A nap-then-spin plan for a regular gap longer than the bound, if one fits.
    fn periodic(&self) -> Option<Plan> {
        let (gap, jitter) = self.expected();
        if !self.can_nap || gap <= self.bound || gap > HORIZON {
            return None;
        }
        let hot_to = gap + jitter;
        // Wake `lead` before the window opens, spin across it; within the cap.
        let wake_at = gap.saturating_sub(jitter + self.lead());
        let allowed = gap.mul_f64(self.cap).max(self.lead());
        let wake_at = wake_at.max(hot_to.saturating_sub(allowed));
        if wake_at < MIN_NAP {
            return None;
        }
        Some(Plan {
            nap_until: Some(wake_at),
            spin_until: hot_to,
        })
    }

    /// The expected gap and its jitter allowance.
    fn expected(&self) -> (Duration, Duration) {
        let gap = Duration::from_nanos(self.gaps.mean.max(0.0) as u64);
        let jitter = Duration::from_nanos((2.0 * self.gaps.dev) as u64).max(MIN_JITTER);
        (gap, jitter)
    }

    /// How early a nap must end to be awake in time: its usual oversleep and then some.
    fn lead(&self) -> Duration {
        Duration::from_nanos((self.late.mean + 2.0 * self.late.dev).max(0.0) as u64) + MIN_JITTER
    }

    /// Learns from an idle period that ended.
    #[inline]
    pub(crate) fn learn(&mut self, seen: Seen) {
        if self.policy != IdlePolicy::Balanced {
            return;
        }
        self.crowded = seen.crowded;
        self.gaps.add(seen.gap.as_nanos() as f64);
        self.samples = self.samples.saturating_add(1);
        if let Some(late) = seen.nap_late {
            self.late.add(late.as_nanos() as f64);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    fn tuned(policy: IdlePolicy, gap: Duration) -> IdleTuner {
        let mut t = IdleTuner::new(
            policy,
            50 * US,
            if policy == IdlePolicy::Latency {
                1.0
            } else {
                0.5
            },
            true,
        );
        for _ in 0..64 {
            t.learn(Seen {
                gap,
                nap_late: Some(10 * US),
                crowded: false,
            });
        }
        t
    }

    #[test]
    fn power_never_spins_and_latency_always_spins_its_bound() {
        let t = IdleTuner::new(IdlePolicy::Power, 50 * US, 0.0, true);
        assert_eq!(
            t.plan(),
            Plan {
                nap_until: None,
                spin_until: Duration::ZERO
            }
        );
        let t = IdleTuner::new(IdlePolicy::Latency, 50 * US, 1.0, true);
        assert_eq!(
            t.plan(),
            Plan {
                nap_until: None,
                spin_until: 50 * US
            }
        );
        assert_eq!(
            tuned(IdlePolicy::Power, 100 * US).plan().spin_until,
            Duration::ZERO
        );
        for gap in [US, 100 * US, 10_000 * US] {
            let p = tuned(IdlePolicy::Latency, gap).plan();
            assert_eq!((p.nap_until, p.spin_until), (None, 50 * US), "{gap:?}");
        }
    }

    #[test]
    fn after_a_crowded_spin_balanced_parks_at_once_for_one_idle_period() {
        let seen = |crowded| Seen {
            gap: 1000 * US,
            nap_late: None,
            crowded,
        };
        let mut b = tuned(IdlePolicy::Balanced, 1000 * US);
        let napping = b.plan();
        assert!(napping.nap_until.is_some(), "{napping:?}");
        b.learn(seen(true));
        assert_eq!(
            b.plan(),
            Plan {
                nap_until: None,
                spin_until: Duration::ZERO
            }
        );
        b.learn(seen(false));
        assert!(b.plan().nap_until.is_some(), "{:?}", b.plan());
        // Latency keeps its bound: its crowded spin already ended in a park.
        let mut l = tuned(IdlePolicy::Latency, 1000 * US);
        l.learn(seen(true));
        assert_eq!(l.plan().spin_until, 50 * US);
    }

    #[test]
    fn back_to_back_and_short_gaps_are_spun_through() {
        for policy in [IdlePolicy::Balanced, IdlePolicy::Latency] {
            for gap in [Duration::ZERO, US, 10 * US] {
                let p = tuned(policy, gap).plan();
                assert_eq!(p.nap_until, None, "{policy:?} {gap:?}");
                assert!(p.spin_until > gap, "{policy:?} {gap:?}: {p:?}");
            }
        }
    }

    #[test]
    fn a_regular_period_is_napped_through_and_the_spin_stays_under_the_cap() {
        for gap in [100 * US, 1000 * US, 10_000 * US] {
            let p = tuned(IdlePolicy::Balanced, gap).plan();
            let nap = p.nap_until.expect("naps");
            assert!(nap < gap && p.spin_until > gap, "{gap:?}: {p:?}");
            let spin = p.spin_until - nap;
            assert!(
                spin.as_secs_f64() <= 0.5 * gap.as_secs_f64() + 1e-9,
                "{gap:?}: {p:?}"
            );
        }
    }

    #[test]
    fn gaps_past_the_horizon_spin_a_wake_s_cost_then_park_under_balanced() {
        let t = tuned(IdlePolicy::Balanced, 2 * HORIZON);
        let p = t.plan();
        assert_eq!(p.nap_until, None);
        assert_eq!(p.spin_until, t.lead().min(50 * US));
    }

    #[test]
    fn without_naps_a_long_gap_spins_less_under_balanced_than_under_latency() {
        let mut b = IdleTuner::new(IdlePolicy::Balanced, 50 * US, 0.5, false);
        let mut l = IdleTuner::new(IdlePolicy::Latency, 50 * US, 1.0, false);
        for _ in 0..64 {
            let seen = Seen {
                gap: 1000 * US,
                nap_late: None,
                crowded: false,
            };
            b.learn(seen);
            l.learn(seen);
        }
        let p = b.plan();
        assert!(p.nap_until.is_none() && p.spin_until <= b.lead(), "{p:?}");
        assert_eq!(
            l.plan(),
            Plan {
                nap_until: None,
                spin_until: 50 * US
            }
        );
    }
}
