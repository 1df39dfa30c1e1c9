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
//! signals again. The ring never drops: a full ring makes the producer wait until the
//! host drains, so a host in this mode must keep draining.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;

use crate::abi::Callback;
use crate::envelope::Payload;
use crate::reply::deliver;
use crate::ring::{Ring, TagRing};
use crate::sync::{AtomicBool, Ordering};
use crate::wake::EventFd;

/// The signal protocol with the tagged ring, model-checked with loom: no completion is
/// left in the ring with the fd unsignalled (the host would never drain it).
#[cfg(all(test, loom))]
mod loom_models {
    use super::Signal;
    use crate::ring::{Ring, TagRing};
    use crate::sync::{AtomicU64, Ordering};
    use loom::sync::Arc;
    use loom::thread;

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
    user_data: *mut c_void,
    ret: c_int,
    /// The message with its NUL terminator.
    msg: Payload,
}

// SAFETY: `user_data` is the host's opaque token, handed back to its callback on the
// host's thread as the header documents; the payload is owned.
unsafe impl Send for Completion {}

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
    draining: parking_lot::Mutex<()>,
}

thread_local! {
    /// Set while this thread runs drained callbacks (destroy is refused there).
    static IN_DRAIN: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside a drained callback.
pub(crate) fn in_drain() -> bool {
    IN_DRAIN.with(|d| d.get())
}

impl CompletionQueue {
    pub(crate) fn new(capacity: usize) -> std::io::Result<Self> {
        Ok(CompletionQueue {
            ring: TagRing::new(capacity),
            fd: EventFd::new(true)?,
            signalled: Signal::new(),
            draining: parking_lot::Mutex::new(()),
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.raw()
    }

    /// Queues one host callback (`msg_nul` ends with the NUL terminator).
    pub(crate) fn push(
        &self,
        callback: Callback,
        user_data: *mut c_void,
        ret: c_int,
        msg_nul: &[u8],
    ) {
        let mut c = Completion {
            callback,
            user_data,
            ret,
            msg: Payload::copy_from(msg_nul),
        };
        while let Err(back) = self.ring.push(c) {
            c = back;
            self.signal(); // make sure the host knows there is something to drain
            crate::sync::yield_now();
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
        let Some(_one_drainer) = self.draining.try_lock() else {
            return 0;
        };
        self.drain_locked(max)
    }

    /// Destroy: runs everything left, waiting for a concurrent drainer to finish.
    pub(crate) fn drain_all(&self) {
        let _one_drainer = self.draining.lock();
        self.drain_locked(usize::MAX);
    }

    fn drain_locked(&self, max: usize) -> usize {
        self.fd.take(); // 0 when it was not signalled, which is fine
        self.signalled.clear();
        let was = IN_DRAIN.with(|d| d.replace(true));
        let mut ran = 0;
        while ran < max {
            // SAFETY: the `draining` lock makes this thread the ring's only consumer.
            let Some(c) = (unsafe { self.ring.pop() }) else {
                break;
            };
            deliver(c.callback, c.user_data, c.ret, c.msg.as_slice());
            ran += 1;
        }
        IN_DRAIN.with(|d| d.set(was));
        if ran == max && !self.ring.is_empty() {
            self.signal(); // more than `max` waited: stay readable
        }
        ran
    }
}
