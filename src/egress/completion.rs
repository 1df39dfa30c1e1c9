//! Completion mode, for event-loop hosts: instead of calling the host on the context's
//! threads, terminal callbacks and progress pings are queued to a completion ring,
//! signalled through an eventfd, and run on the host's own thread when it drains.
//!
//! ```text
//! worker / completer / monitor              host thread
//! ----------------------------              -----------
//! push the completion (copy of msg)         poll(fd) says readable
//! if !signalled.swap(true): write(fd, 1)    read(fd); signalled.swap(false)
//!                                           pop and call each completion
//! ```
//!
//! Both sides swap the flag, so the drainer's swap reads (and synchronises with) every
//! producer swap before it: a completion pushed before a swap that saw `true` is popped
//! by the drain that cleared the flag. A push after that drain's swap finds `false` and
//! signals again.
//!
//! The queue never drops. Nothing but a drain frees its space, and the host's thread
//! may be the only drainer, so the rule is that no thread waits for that space where
//! the wait could be the host's own:
//! - a producer (the worker, a deferred completer, the monitor) that finds the ring
//!   full waits, counted in `stalled`; a host call that would wait for *request* ring
//!   space meanwhile is refused `BUSY` instead (`SpaceWait::answers_stalled`, checked
//!   in `Intake::push_full`);
//! - a drained callback is inside a callback: its calls never block, destroy is refused;
//! - destroy first lifts the bound ([`CompletionQueue::unbound`]): from then on what
//!   does not fit waits in an unbounded overflow, so none of the threads destroy joins
//!   can be stuck on a host that is not draining; destroy then runs it all.

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::SegQueue;
use crossbeam_utils::Backoff;

use crate::abi::Callback;
use crate::egress::owned::{Handover, Owned};
use crate::envelope::Payload;
use crate::ffi::host::{deliver, UserData};
use crate::sync::ring::{Ring, TagRing};
use crate::sync::wake::{EventFd, SpaceWait};
use crate::sync::{AtomicBool, Ordering};

/// The signal protocol with the tagged ring, model-checked with loom: no completion is
/// left in the ring with the fd unsignalled (the host would never drain it). And the
/// stall protocol: a caller waiting for request ring space never misses an answer that
/// stalls on a full completion queue (it would wait for a drain it is to do itself).
#[cfg(all(test, loom))]
mod loom_models {
    use super::Signal;
    use crate::sync::ring::{Ring, TagRing};
    use crate::sync::wake::SpaceWait;
    use crate::sync::{AtomicU64, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn a_caller_waiting_for_space_sees_a_stalled_answer() {
        crate::sync::model("stalled answer vs a caller waiting for ring space", || {
            let ring = Arc::new(TagRing::<u32>::new(1));
            ring.push(0).unwrap(); // full, and nobody pops: only the stall ends the wait
            let space = Arc::new(SpaceWait::new());
            let answerer = {
                let space = space.clone();
                // As `CompletionQueue::push` on a full queue.
                thread::spawn(move || space.stall_begin())
            };
            // As `Intake::push_full` under `Block`: refused once an answer is stalled.
            while !space.answers_stalled() {
                space.wait(|| ring.is_full() && !space.answers_stalled());
            }
            answerer.join().unwrap();
        });
    }

    #[test]
    fn no_completion_is_stranded_unsignalled() {
        crate::sync::model("completion signal, 2 producers vs a drainer", || {
            let ring = Arc::new(TagRing::<u32>::new(4));
            let signal = Arc::new(Signal::new());
            let fd = Arc::new(AtomicU64::new(0)); // the eventfd's counter
            let producers: Vec<_> = (0..2)
                .map(|i| {
                    let (ring, signal, fd) = (ring.clone(), signal.clone(), fd.clone());
                    thread::spawn(move || {
                        ring.push(i).unwrap();
                        if signal.raise() {
                            fd.fetch_add(1, Ordering::Release);
                        }
                    })
                })
                .collect();
            // One drain, as a host would run it when the fd is readable (or not yet).
            let mut drained = 0;
            fd.swap(0, Ordering::Acquire);
            signal.clear();
            // SAFETY: this thread is the only consumer.
            while unsafe { ring.pop() }.is_some() {
                drained += 1;
            }
            for p in producers {
                p.join().unwrap();
            }
            // Whatever this drain missed, the fd says so: the host will drain again.
            let left = 2 - drained;
            if left > 0 {
                assert!(
                    fd.load(Ordering::Acquire) > 0,
                    "{left} completions stranded"
                );
            }
        });
    }
}

struct Completion {
    callback: Callback,
    user_data: UserData,
    ret: c_int,
    /// The message with its NUL terminator.
    msg: Payload,
    /// `msg` hands over an owned answer (`Outbox::answer_reply`): the drain gives the
    /// callback its bytes and frees it after.
    handover: bool,
}

impl Completion {
    /// Calls the host's callback; a handed-over answer is freed after it returns.
    fn deliver(self) {
        let msg = self.msg.as_slice();
        if !self.handover {
            return deliver(self.callback, self.user_data.0, self.ret, msg);
        }
        // A flat answer's bytes (and NUL) follow its tag, copied into this completion
        // already: nothing to take over.
        if msg.first() == Some(&Handover::FLAT) {
            return deliver(self.callback, self.user_data.0, self.ret, &msg[1..]);
        }
        // A laid-out answer's block: the tag's message without its NUL is what
        // `Owned::adopt` reads.
        let handed = &msg[..msg.len() - 1];
        // SAFETY: a queued native answer's handover (`Outbox::answer_reply`), taken over
        // here, once.
        match unsafe { Owned::adopt(handed) } {
            Some(answer) => {
                deliver(
                    self.callback,
                    self.user_data.0,
                    self.ret,
                    answer.bytes_nul(),
                );
                drop(answer);
            }
            None => deliver(
                self.callback,
                self.user_data.0,
                crate::abi::RET_ERR,
                b"the runtime handed over no answer\0",
            ),
        }
    }
}

/// Whether the host has been told (through the fd) that completions wait.
pub(crate) struct Signal(AtomicBool);

impl Signal {
    pub(crate) fn new() -> Self {
        Signal(AtomicBool::new(false))
    }
    /// Producer, after its push: true when it must signal the fd.
    pub(crate) fn raise(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }
    /// Drainer, after resetting the fd and before popping.
    pub(crate) fn clear(&self) {
        self.0.swap(false, Ordering::AcqRel);
    }
}

/// A context's completion ring and its eventfd.
pub(crate) struct CompletionQueue {
    ring: TagRing<Completion>,
    /// Non-blocking: a drain finding it unsignalled goes on at once.
    fd: EventFd,
    signalled: Signal,
    /// One drainer at a time (the ring has a single consumer).
    draining: std::sync::Mutex<()>,
    /// Where producers waiting for room in a full ring are counted (and the callers
    /// blocked on the request ring, which must not wait behind them, are woken).
    space: Arc<SpaceWait>,
    /// Set by destroy: a full ring no longer makes producers wait.
    unbounded: AtomicBool,
    /// What did not fit once `unbounded` was set; drained after the ring.
    overflow: SegQueue<Completion>,
}

impl CompletionQueue {
    pub(crate) fn new(capacity: usize, space: Arc<SpaceWait>) -> std::io::Result<Self> {
        Ok(CompletionQueue {
            ring: TagRing::try_new(capacity).ok_or(std::io::ErrorKind::OutOfMemory)?,
            fd: EventFd::new(true)?,
            signalled: Signal::new(),
            draining: std::sync::Mutex::new(()),
            space,
            unbounded: AtomicBool::new(false),
            overflow: SegQueue::new(),
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.raw()
    }

    /// Destroy: from now on a full ring no longer makes anyone wait.
    pub(crate) fn unbound(&self) {
        self.unbounded.store(true, Ordering::SeqCst);
    }

    /// Queues one host callback (`msg_nul` ends with the NUL terminator). On a full
    /// ring it waits for the host to drain, counted as a stall (which wakes callers
    /// blocked on the request ring, so that they give up with `BUSY` rather than wait
    /// for this producer).
    pub(crate) fn push(
        &self,
        callback: Callback,
        user_data: *mut c_void,
        ret: c_int,
        msg_nul: &[u8],
    ) {
        self.push_as(callback, user_data, ret, msg_nul, false)
    }

    /// [`CompletionQueue::push`] of a message that may hand over an owned answer.
    pub(crate) fn push_as(
        &self,
        callback: Callback,
        user_data: *mut c_void,
        ret: c_int,
        msg_nul: &[u8],
        handover: bool,
    ) {
        let mut c = Completion {
            callback,
            user_data: UserData(user_data),
            ret,
            msg: Payload::copy_from(msg_nul),
            handover,
        };
        let mut stalled = false;
        let backoff = Backoff::new();
        loop {
            let unbounded = self.unbounded.load(Ordering::Acquire);
            // Behind an overflow that is not empty: stay in order.
            if !unbounded || self.overflow.is_empty() {
                match self.ring.push(c) {
                    Ok(_) => break,
                    Err(back) => c = back,
                }
            }
            if unbounded {
                self.overflow.push(c);
                break;
            }
            if !stalled {
                stalled = true;
                self.space.stall_begin();
            }
            self.signal(); // make sure the host knows there is something to drain
            if backoff.is_completed() {
                // The host is not draining: wait without taking a core from it.
                std::thread::sleep(Duration::from_micros(100));
            } else {
                backoff.snooze();
            }
        }
        if stalled {
            self.space.stall_end();
        }
        self.signal();
    }

    fn signal(&self) {
        if self.signalled.raise() {
            self.fd.signal();
        }
    }

    /// Runs up to `max` queued callbacks on this thread; returns how many ran. Another
    /// thread draining at the same time (or a drained callback draining again) gets 0.
    pub(crate) fn drain(&self, max: usize) -> usize {
        let _one_drainer = match self.draining.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return 0,
        };
        self.drain_locked(max)
    }

    /// Destroy: runs everything left, waiting for a concurrent drainer to finish.
    pub(crate) fn drain_all(&self) {
        let _one_drainer = crate::sync::lock(&self.draining);
        self.drain_locked(usize::MAX);
    }

    fn drain_locked(&self, max: usize) -> usize {
        self.fd.take(); // 0 when it was not signalled, which is fine
        self.signalled.clear();
        let ran = crate::threads::calling_host(|| {
            let mut ran = 0;
            while ran < max {
                // SAFETY: the `draining` lock makes this thread the ring's only consumer.
                let Some(c) = (unsafe { self.ring.pop() }).or_else(|| self.overflow.pop()) else {
                    break;
                };
                c.deliver();
                ran += 1;
            }
            ran
        });
        if ran == max && !(self.ring.is_empty() && self.overflow.is_empty()) {
            self.signal(); // more than `max` waited: stay readable
        }
        ran
    }
}
