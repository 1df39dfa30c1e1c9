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

use std::ffi::c_int;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
use crossbeam_utils::Backoff;

use crate::abi::{
    ffid_entry, ENTRY_ANSWER, ENTRY_CLOSED, ENTRY_DIAGNOSTIC, ENTRY_EVENT, ENTRY_PING, RET_CLOSED,
    RET_ERR, RET_STALE_WARN,
};
use crate::egress::owned::{Handover, Owned};
use crate::envelope::{Payload, Recipient};
use crate::ffi::host::deliver;
use crate::sync::ring::{Ring, TagRing};
use crate::sync::wake::{EventFd, SpaceWait, Wait};
use crate::sync::{fence, AtomicBool, Ordering};

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

    /// A poller that found nothing announces its wait (`poller_waits`), fences and
    /// checks the ring again before it waits on the fd; a producer pushes, fences and
    /// signals if a poller waits (`CompletionQueue::notify`). The poller never waits on
    /// an unsignalled fd with a completion queued. (Without either fence, or with the
    /// check before the announcement, this model fails.)
    #[test]
    fn a_waiting_poller_is_never_left_with_work() {
        crate::sync::model("a poller's announced wait vs a push", || {
            let ring = Arc::new(TagRing::<u32>::new(4));
            let waits = Arc::new(crate::sync::AtomicBool::new(false));
            let signal = Arc::new(Signal::new());
            let fd = Arc::new(AtomicU64::new(0));
            let producer = {
                let (ring, waits, signal, fd) =
                    (ring.clone(), waits.clone(), signal.clone(), fd.clone());
                thread::spawn(move || {
                    ring.push(1).unwrap();
                    crate::sync::fence(Ordering::SeqCst);
                    if waits.load(Ordering::Relaxed) && signal.raise() {
                        fd.fetch_add(1, Ordering::Release);
                    }
                })
            };
            waits.store(true, Ordering::SeqCst);
            crate::sync::fence(Ordering::SeqCst);
            let sees_work = !ring.is_empty();
            producer.join().unwrap();
            if !sees_work {
                assert!(
                    fd.load(Ordering::Acquire) > 0,
                    "the poller waits with work queued"
                );
            }
        });
    }

    /// Destroy sets `closed`, then signals the fd (`CompletionQueue::wake_poller`); a
    /// poller reads `closed` after it last reset the fd (`reset_signal`, at the top of
    /// each round of `CompletionQueue::poll`), and waits on the fd only if it read
    /// `false`. Either it sees destroy, or the fd stays signalled
    /// and its wait returns at once: destroy, waiting for the poller to leave, never
    /// waits for a poller that waits for nothing. (Read `closed` before the reset and the
    /// reset can eat destroy's signal: this model fails.)
    #[test]
    fn destroy_never_leaves_a_poller_waiting() {
        crate::sync::model("destroy's wake vs a poller about to wait", || {
            let closed = Arc::new(crate::sync::AtomicBool::new(false));
            let fd = Arc::new(AtomicU64::new(0));
            let destroyer = {
                let (closed, fd) = (closed.clone(), fd.clone());
                thread::spawn(move || {
                    closed.store(true, Ordering::SeqCst);
                    fd.fetch_add(1, Ordering::Release);
                })
            };
            fd.swap(0, Ordering::Acquire);
            let saw_closed = closed.load(Ordering::SeqCst);
            destroyer.join().unwrap();
            if !saw_closed {
                assert!(
                    fd.load(Ordering::Acquire) > 0,
                    "the poller waits; destroy waits for it"
                );
            }
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

/// Whose a completion is.
#[derive(Clone, Copy)]
enum Origin {
    /// A call's answer or ping, for its callback.
    Call(Recipient),
    /// Event `index` of the library (`POLL_EVENTS`): only a poll hands it out.
    Event(u16),
    /// A `DIAG_*` report (`POLL_DIAGNOSTICS`, `ret` its code): only a poll hands it out.
    Diagnostic,
}

struct Completion {
    origin: Origin,
    ret: c_int,
    /// The message with its NUL terminator.
    msg: Payload,
    /// `msg` hands over an owned answer (`Outbox::answer_reply`): the drain gives the
    /// callback its bytes and frees it after.
    handover: bool,
}

/// What a completion's message is once a handover is resolved.
enum Message<'c> {
    /// The bytes (with their NUL) as queued, or a flat answer's after its tag.
    Bytes(&'c [u8]),
    /// A laid-out answer's block, taken over: its bytes live as long as it.
    Block(Owned),
    /// A handover that held no answer (never: the worker made it).
    Missing,
}

impl Completion {
    /// The message, a handed-over block taken over (once: call this once).
    fn message(&self) -> Message<'_> {
        let msg = self.msg.as_slice();
        if !self.handover {
            return Message::Bytes(msg);
        }
        // A flat answer's bytes (and NUL) follow its tag, copied into this completion
        // already: nothing to take over.
        if msg.first() == Some(&Handover::FLAT) {
            return Message::Bytes(&msg[1..]);
        }
        // A laid-out answer's block: the tag's message without its NUL is what
        // `Owned::adopt` reads.
        let handed = &msg[..msg.len() - 1];
        // SAFETY: a queued native answer's handover (`Outbox::answer_reply`), taken over
        // here, once (the caller's promise).
        match unsafe { Owned::adopt(handed) } {
            Some(answer) => Message::Block(answer),
            None => Message::Missing,
        }
    }

    /// A callback the runtime must call itself, even in a poll (a typed reply's).
    fn is_runtimes(&self) -> bool {
        matches!(self.origin, Origin::Call(to) if !to.is_hosts())
    }

    /// Calls the callback; a handed-over answer is freed after it returns. An event or
    /// a report, which only a poll hands out, is dropped (a drain of a context that
    /// polls them).
    fn deliver(self) {
        let Origin::Call(to) = self.origin else {
            return;
        };
        let (callback, user_data) = (to.callback, to.user_data.0);
        match self.message() {
            Message::Bytes(msg) => deliver(callback, user_data, self.ret, msg),
            Message::Block(answer) => deliver(callback, user_data, self.ret, answer.bytes_nul()),
            Message::Missing => deliver(callback, user_data, RET_ERR, NO_ANSWER),
        }
    }
}

const NO_ANSWER: &[u8] = b"the runtime handed over no answer\0";

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
    /// Whether a producer raised it since the last `clear` (and so wrote the fd).
    pub(crate) fn is_raised(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A context's completion ring and its eventfd.
pub(crate) struct CompletionQueue {
    ring: TagRing<Completion>,
    /// Non-blocking: a drain finding it unsignalled goes on at once.
    fd: EventFd,
    signalled: Signal,
    /// One drainer or poller at a time (the ring has a single consumer), and what the
    /// last poll lent the host.
    draining: std::sync::Mutex<Lent>,
    /// Where producers waiting for room in a full ring are counted (and the callers
    /// blocked on the request ring, which must not wait behind them, are woken).
    space: Arc<SpaceWait>,
    /// The host holds the fd (`completion_fd`, `poll_fd`): every push signals it.
    /// Until then only a poller waiting inside `poll` needs the signal (`poller_waits`),
    /// so a host that polls without waiting costs no syscall per completion.
    watched: AtomicBool,
    /// A poller announced it is about to wait on the fd (see `poll`).
    poller_waits: AtomicBool,
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
            watched: AtomicBool::new(false),
            poller_waits: AtomicBool::new(false),
            draining: std::sync::Mutex::new(Lent::default()),
            space,
            unbounded: AtomicBool::new(false),
            overflow: SegQueue::new(),
        })
    }

    /// The fd, for the host to wait on: from now on every push signals it. A push
    /// that skipped its signal before is seen here (the store-fence-load pair with
    /// `notify`'s push-fence-load), and signalled for.
    pub(crate) fn watched_fd(&self) -> RawFd {
        if !self.watched.swap(true, Ordering::SeqCst) {
            fence(Ordering::SeqCst);
            if !self.is_empty() {
                self.signal();
            }
        }
        self.fd.raw()
    }

    fn is_empty(&self) -> bool {
        self.ring.is_empty() && self.overflow.is_empty()
    }

    /// Destroy: from now on a full ring no longer makes anyone wait.
    pub(crate) fn unbound(&self) {
        self.unbounded.store(true, Ordering::SeqCst);
    }

    /// Queues one host callback (`msg_nul` ends with the NUL terminator). On a full
    /// ring it waits for the host to drain, counted as a stall (which wakes callers
    /// blocked on the request ring, so that they give up with `BUSY` rather than wait
    /// for this producer).
    pub(crate) fn push(&self, to: Recipient, ret: c_int, msg_nul: &[u8]) {
        self.push_as(to, ret, msg_nul, false)
    }

    /// [`CompletionQueue::push`] of a message that may hand over an owned answer.
    pub(crate) fn push_as(&self, to: Recipient, ret: c_int, msg_nul: &[u8], handover: bool) {
        self.queue(Origin::Call(to), ret, msg_nul, handover, true);
    }

    /// Queues event `index` (`msg_nul`: its `{"event", "payload"}` CBOR and a NUL) for
    /// the host's poll. On a full ring it waits as an answer does if `wait`, else drops
    /// it; returns whether it was queued.
    pub(crate) fn push_event(&self, index: u16, msg_nul: &[u8], wait: bool) -> bool {
        self.queue(
            Origin::Event(index),
            crate::abi::RET_OK,
            msg_nul,
            false,
            wait,
        )
    }

    /// Queues a `DIAG_*` report for the host's poll, waiting for room as an answer does.
    pub(crate) fn push_diagnostic(&self, code: c_int, msg_nul: &[u8]) {
        self.queue(Origin::Diagnostic, code, msg_nul, false, true);
    }

    /// Queues a copy of `msg_nul` from `origin`, waiting for room if `wait` (see
    /// `push`); false when it did not fit and must not wait.
    fn queue(
        &self,
        origin: Origin,
        ret: c_int,
        msg_nul: &[u8],
        handover: bool,
        wait: bool,
    ) -> bool {
        let mut c = Completion {
            origin,
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
            if !wait {
                self.signal(); // what is queued: the host is behind
                return false;
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
        self.notify();
        true
    }

    /// After a push: signals the fd if anyone may wait on it, the host (which holds it)
    /// or a poller that announced its wait. The fence orders the push before the loads,
    /// against the announcer's store-fence-check of the ring (`poll`, `watched_fd`).
    fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.watched.load(Ordering::Relaxed) || self.poller_waits.load(Ordering::Relaxed) {
            self.signal();
        }
    }

    /// A consumer, before it pops: resets the fd and the flag if a signal may be in it
    /// (`take` then `clear`: see `Signal`). Unwatched and unsignalled, nothing was
    /// written: no syscall.
    fn reset_signal(&self) {
        if self.watched.load(Ordering::Relaxed) || self.signalled.is_raised() {
            self.fd.take(); // 0 when it was not signalled, which is fine
            self.signalled.clear();
        }
    }

    fn signal(&self) {
        if self.signalled.raise() {
            self.fd.signal();
        }
    }

    /// Destroy began: a poller waiting on the fd wakes (and finds the context closing).
    pub(crate) fn wake_poller(&self) {
        self.fd.signal();
    }

    /// The consumer's side, if no other thread (or a callback of this one) holds it.
    fn try_consume(&self) -> Option<std::sync::MutexGuard<'_, Lent>> {
        match self.draining.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Runs up to `max` queued callbacks on this thread; returns how many ran. Another
    /// thread draining at the same time (or a drained callback draining again) gets 0.
    pub(crate) fn drain(&self, max: usize) -> usize {
        match self.try_consume() {
            Some(_one_drainer) => self.drain_locked(max),
            None => 0,
        }
    }

    /// Destroy: runs everything left, waiting for a concurrent drainer to finish.
    pub(crate) fn drain_all(&self) {
        let mut lent = crate::sync::lock(&self.draining);
        lent.clear();
        self.drain_locked(usize::MAX);
    }

    fn drain_locked(&self, max: usize) -> usize {
        self.reset_signal();
        let ran = crate::threads::calling_host(|| {
            let mut ran = 0;
            while ran < max {
                let Some(c) = self.pop() else {
                    break;
                };
                c.deliver();
                ran += 1;
            }
            ran
        });
        self.stay_readable_if_more(ran == max);
        ran
    }

    /// The next completion. Call only holding `draining`.
    fn pop(&self) -> Option<Completion> {
        // SAFETY: the `draining` lock makes this thread the ring's only consumer.
        (unsafe { self.ring.pop() }).or_else(|| self.overflow.pop())
    }

    /// After a drain or poll that stopped at its limit: signal again if more waits
    /// (for a host that waits on the fd).
    fn stay_readable_if_more(&self, stopped_at_limit: bool) {
        if stopped_at_limit && !self.is_empty() && self.watched.load(Ordering::Relaxed) {
            self.signal();
        }
    }

    /// `<lib>_poll`: hands up to `max` of the host's answers and pings to `emit` as
    /// entries, running the runtime's own callbacks (typed replies) on the way, and
    /// waits on the fd as `wait` allows when there is nothing yet. The previous poll's
    /// entries are released first (they were lent until this call). Returns the number
    /// of entries emitted, or `None` when another thread is draining or polling; with
    /// `max == 0` it returns at once. `closing` ends the wait with an [`ENTRY_CLOSED`]
    /// entry once destroy began.
    pub(crate) fn poll(
        &self,
        max: usize,
        wait: Wait,
        closing: impl Fn() -> bool,
        mut emit: impl FnMut(ffid_entry),
    ) -> Option<usize> {
        let mut lent = self.try_consume()?;
        lent.clear();
        if max == 0 {
            return Some(0); // it only released the last batch
        }
        loop {
            self.reset_signal();
            let mut ran = 0;
            crate::threads::calling_host(|| {
                while lent.completions.len() < max {
                    let Some(c) = self.pop() else { break };
                    if c.is_runtimes() {
                        c.deliver(); // a typed reply: the runtime's adapter calls the host
                        ran += 1;
                    } else {
                        lent.completions.push(c);
                    }
                }
            });
            let got = lent.completions.len();
            self.stay_readable_if_more(got == max);
            let closed = closing();
            if got > 0 || ran > 0 || closed || !self.wait(wait, &closing) {
                lent.lend(&mut emit);
                if closed && got < max {
                    emit(ffid_entry::closed());
                    return Some(got + 1);
                }
                return Some(got);
            }
        }
    }

    /// The poller, finding nothing: announces its wait, checks again, and waits on the
    /// fd until a push (or destroy) signals it or `deadline` passes; false when it
    /// passed. The announcement is the store-fence-load pair against `notify`'s: either
    /// the producer sees `poller_waits` and signals, or this check sees its push.
    fn wait(&self, wait: Wait, closing: &impl Fn() -> bool) -> bool {
        let deadline = match wait {
            Wait::Not => return false,
            Wait::Until(d) if d <= Instant::now() => return false,
            Wait::Until(d) => Some(d),
            Wait::Forever => None,
        };
        self.poller_waits.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let woken = !self.is_empty() || closing() || wait_readable(self.fd.raw(), deadline);
        self.poller_waits.store(false, Ordering::Relaxed);
        woken
    }
}

/// Waits until `fd` is readable or `deadline` passes (`None`: no limit); false when it
/// passed.
fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> bool {
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.as_millis().clamp(1, i32::MAX as u128) as i32,
                _ => return false,
            },
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call's duration.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n > 0 {
            return true;
        }
        // 0: timed out (the loop sees the deadline passed); EINTR: again.
    }
}

/// What the last poll lent the host: its completions (their messages) and the
/// handed-over answers taken from them, until the next poll.
#[derive(Default)]
struct Lent {
    completions: Vec<Completion>,
    answers: Vec<Owned>,
}

impl Lent {
    /// The host is done with them (its next poll, or destroy).
    fn clear(&mut self) {
        self.completions.clear();
        self.answers.clear();
    }

    /// Emits one entry per completion, pointing into what `self` keeps.
    fn lend(&mut self, emit: &mut impl FnMut(ffid_entry)) {
        self.answers.reserve(self.completions.len());
        for c in &self.completions {
            let (status, msg) = match c.message() {
                Message::Bytes(msg) => (c.ret, msg.as_ptr_range()),
                Message::Block(answer) => {
                    let range = answer.bytes_nul().as_ptr_range();
                    self.answers.push(answer); // the block stays where it is
                    (c.ret, range)
                }
                Message::Missing => (RET_ERR, NO_ANSWER.as_ptr_range()),
            };
            emit(ffid_entry::of(c, status, msg));
        }
    }
}

impl ffid_entry {
    /// The entry of completion `c`: `msg` is its message with the NUL.
    fn of(c: &Completion, status: c_int, msg: std::ops::Range<*const u8>) -> ffid_entry {
        let len = (msg.end as usize - msg.start as usize).saturating_sub(1);
        let (kind, request_id, cb, user_data) = match c.origin {
            Origin::Call(to) => {
                let kind = match c.ret {
                    RET_STALE_WARN => ENTRY_PING,
                    _ => ENTRY_ANSWER,
                };
                (kind, to.id, Some(to.callback), to.user_data.0)
            }
            Origin::Event(index) => (ENTRY_EVENT, index as u64, None, std::ptr::null_mut()),
            Origin::Diagnostic => (ENTRY_DIAGNOSTIC, 0, None, std::ptr::null_mut()),
        };
        ffid_entry {
            struct_size: std::mem::size_of::<ffid_entry>() as u32,
            kind,
            request_id,
            status,
            reserved: 0,
            cb,
            user_data,
            payload: msg.start,
            len,
        }
    }

    /// The last entry a poll gives once the context is being destroyed.
    fn closed() -> ffid_entry {
        ffid_entry {
            struct_size: std::mem::size_of::<ffid_entry>() as u32,
            kind: ENTRY_CLOSED,
            request_id: 0,
            status: RET_CLOSED,
            reserved: 0,
            cb: None,
            user_data: std::ptr::null_mut(),
            payload: c"".as_ptr().cast(),
            len: 0,
        }
    }
}
