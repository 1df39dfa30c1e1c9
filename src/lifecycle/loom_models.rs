//! `destroy` racing submits, model-checked with loom (`scripts/loom.sh`). The model runs
//! the real slot state machine, the real intake (push, close, stop) and the worker's
//! real inbox (pop, the stop check, a park) in the order `submit`, the worker
//! loop and `destroy` use them; the registry's static tables and the library are left
//! out, and an answer is a count per request.

use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use crate::ffi::host::UserData;
use crate::ingress::envelope::{Envelope, Kind, Payload};
use crate::ingress::intake::Intake;
use crate::lifecycle::registry::SlotState;
use crate::options::BackPressure;
use crate::sync::ring::{Ingress, TagRing};
use crate::sync::wake::{SpaceWait, WakeBackend, WorkerWake};
use crate::sync::Ordering;
use crate::worker::idle::Plan;
use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use loom::thread;

const GENERATION: u32 = 7;
const PENDING: usize = 0;
const ACCEPTED: usize = 1;
const REFUSED: usize = 2;

struct Model {
    slot: SlotState,
    intake: Intake,
    answers: [AtomicUsize; 2],
    outcome: [AtomicUsize; 2],
    closes_won: AtomicUsize,
}

/// The model's requests are answered by counting, not by calling back.
unsafe extern "C" fn never_called(_: c_int, _: *const c_char, _: usize, _: *mut c_void) {}

impl Model {
    fn new() -> Arc<Self> {
        let slot = SlotState::new(GENERATION as u64);
        slot.open();
        let ring = Ingress::Tag(TagRing::new(4));
        let wake = WorkerWake::new(WakeBackend::Futex);
        Arc::new(Model {
            slot,
            intake: Intake::new(
                ring,
                wake,
                std::sync::Arc::new(SpaceWait::new()),
                BackPressure::Block,
            ),
            answers: [AtomicUsize::new(0), AtomicUsize::new(0)],
            outcome: [AtomicUsize::new(PENDING), AtomicUsize::new(PENDING)],
            closes_won: AtomicUsize::new(0),
        })
    }

    /// `submit`: enter the slot, push (waking the worker), leave; or be refused.
    fn submit(&self, request: usize) {
        if self.slot.enter(GENERATION) {
            let env = Envelope {
                callback: never_called,
                user_data: UserData(request as *mut c_void),
                method: 0,
                kind: Kind::Native,
                payload: Payload::copy_from(&[]),
            };
            assert!(self.intake.push(env).is_ok(), "the ring has room");
            self.outcome[request].store(ACCEPTED, Ordering::Relaxed);
            self.slot.leave();
        } else {
            self.outcome[request].store(REFUSED, Ordering::Relaxed);
        }
    }

    /// The worker loop: drain, exit once stopped and empty, else (no spin) park.
    fn work(&self) {
        let claim = self.intake.claim_inbox().expect("one claim");
        let mut inbox = self.intake.inbox(claim);
        loop {
            while let Some(env) = inbox.pop() {
                self.answers[env.user_data.0 as usize].fetch_add(1, Ordering::Relaxed);
            }
            if inbox.stopped_and_empty() {
                return;
            }
            inbox.wait_for_work(Plan {
                nap_until: None,
                spin_until: Duration::ZERO,
            });
        }
    }

    /// `destroy`: enter, close (one winner), leave, close the intake, wait for callers
    /// to drain, stop the worker. Returns whether this call won the close.
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
        self.intake.close();
        while !self.slot.drained() {
            thread::yield_now();
        }
        self.intake.stop();
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
        let ctx = Model::new();
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
    use crate::worker::board::Cancels;
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
        let ctx = Model::new();
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
