//! `destroy` racing submits, model-checked with loom (`scripts/loom.sh`). The model runs
//! the real slot state machine, ring and wake protocol in the order `submit` and
//! `destroy` use them; the registry's static tables and the library are left out.

use crate::lifecycle::registry::SlotState;
use crate::sync::ring::{Ring, TagRing};
use crate::sync::wake::{WakeBackend, WorkerWake};
use crate::sync::{AtomicBool, Ordering};
use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use loom::thread;

const GENERATION: u32 = 7;
const PENDING: usize = 0;
const ACCEPTED: usize = 1;
const REFUSED: usize = 2;

struct Context {
    slot: SlotState,
    ring: TagRing<usize>,
    wake: WorkerWake,
    stop: AtomicBool,
    answers: [AtomicUsize; 2],
    outcome: [AtomicUsize; 2],
    closes_won: AtomicUsize,
}

impl Context {
    fn new() -> Arc<Self> {
        let slot = SlotState::new(GENERATION as u64);
        slot.open();
        Arc::new(Context {
            slot,
            ring: TagRing::new(4),
            wake: WorkerWake::new(WakeBackend::Futex),
            stop: AtomicBool::new(false),
            answers: [AtomicUsize::new(0), AtomicUsize::new(0)],
            outcome: [AtomicUsize::new(PENDING), AtomicUsize::new(PENDING)],
            closes_won: AtomicUsize::new(0),
        })
    }

    /// `submit`: enter the slot, push, leave, wake; or be refused.
    fn submit(&self, request: usize) {
        if self.slot.enter(GENERATION) {
            self.ring.push(request).expect("the ring has room");
            self.wake.notify();
            self.outcome[request].store(ACCEPTED, Ordering::Relaxed);
            self.slot.leave();
        } else {
            self.outcome[request].store(REFUSED, Ordering::Relaxed);
        }
    }

    /// The worker loop: drain, exit once stopped and empty, else park.
    fn work(&self) {
        loop {
            // SAFETY: the model's worker thread is the only consumer.
            while let Some(r) = unsafe { self.ring.pop() } {
                self.answers[r].fetch_add(1, Ordering::Relaxed);
            }
            if self.stop.load(Ordering::Acquire) && self.ring.is_empty() {
                return;
            }
            self.wake
                .park(|| !self.ring.is_empty() || self.stop.load(Ordering::SeqCst));
        }
    }

    /// `destroy`: enter, close (one winner), leave, wait for callers to drain, stop
    /// the worker. Returns whether this call won the close.
    fn destroy(&self) -> bool {
        if !self.slot.enter(GENERATION) {
            return false;
        }
        let won = self.slot.close();
        self.slot.leave();
        if !won {
            return false;
        }
        self.closes_won.fetch_add(1, Ordering::Relaxed);
        while !self.slot.drained() {
            thread::yield_now();
        }
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify();
        true
    }

    /// Every accepted request answered exactly once, every refused one never.
    fn check(&self, requests: usize) {
        for r in 0..requests {
            let answers = self.answers[r].load(Ordering::Relaxed);
            match self.outcome[r].load(Ordering::Relaxed) {
                ACCEPTED => assert_eq!(answers, 1, "accepted request {r}"),
                REFUSED => assert_eq!(answers, 0, "refused request {r}"),
                _ => panic!("request {r} neither accepted nor refused"),
            }
        }
        assert_eq!(self.closes_won.load(Ordering::Relaxed), 1, "one close wins");
    }
}

#[test]
fn destroy_racing_two_submitters_answers_each_accepted_call_once() {
    crate::sync::model("destroy racing 2 submitters", || {
        let ctx = Context::new();
        let worker = {
            let ctx = ctx.clone();
            thread::spawn(move || ctx.work())
        };
        let producers: Vec<_> = (0..2)
            .map(|r| {
                let ctx = ctx.clone();
                thread::spawn(move || ctx.submit(r))
            })
            .collect();
        assert!(ctx.destroy());
        worker.join().unwrap();
        for p in producers {
            p.join().unwrap();
        }
        ctx.check(2);
    });
}

/// `cancel` racing the worker starting the request: it is cancelled exactly when
/// the canceller was told so.
#[test]
fn cancel_racing_the_start_decides_once() {
    use crate::egress::gate::PingGate;
    use crate::lifecycle::Cancels;
    crate::sync::model("cancel racing the start", || {
        let cancels = Arc::new(Cancels::default());
        let gate = Arc::new(PingGate::new());
        let worker = {
            let (cancels, gate) = (cancels.clone(), gate.clone());
            thread::spawn(move || {
                gate.begin(1);
                let cancelled = cancels.take(1);
                let _answered = gate.claim(1);
                cancelled
            })
        };
        let told_cancelled = gate.started() < 1 && cancels.cancel(1, &gate);
        let cancelled = worker.join().unwrap();
        assert_eq!(cancelled, told_cancelled, "the host is told the truth");
    });
}

#[test]
fn two_destroys_racing_a_submitter_free_once() {
    crate::sync::model("two destroys racing 1 submitter", || {
        let ctx = Context::new();
        let worker = {
            let ctx = ctx.clone();
            thread::spawn(move || ctx.work())
        };
        let producer = {
            let ctx = ctx.clone();
            thread::spawn(move || ctx.submit(0))
        };
        let second = {
            let ctx = ctx.clone();
            thread::spawn(move || ctx.destroy())
        };
        let first = ctx.destroy();
        let second = second.join().unwrap();
        assert!(first != second, "exactly one destroy succeeds");
        worker.join().unwrap();
        producer.join().unwrap();
        ctx.outcome[1].store(REFUSED, Ordering::Relaxed); // only request 0 exists
        ctx.check(2);
    });
}
