//! Async handlers: futures polled on the worker thread, between requests.
//!
//! An `async fn` method becomes a task: its future, holding the method's reply token
//! ([`Deferred`]), lives in the worker's task table. The worker polls it once at once;
//! when it is pending, its waker asks the task's home ([`Requeue`]) to push a marker
//! envelope through the context's own ring, and the worker polls it again when it pops
//! that marker. So async and sync handlers interleave on one thread in ring order, with
//! no second runtime.
//!
//! A task answers through its token, which gives it progress pings, exactly-once and
//! destroy's handling for free. At destroy the worker keeps polling tasks for up to the
//! context's `shutdown_timeout` after the last request, then drops the rest: their
//! tokens answer `ERR`.
//!
//! Soundness: a future borrows the library (`&'static L`, extended from the worker's
//! borrow) across `.await`s while other requests run. That is sound only if nothing
//! takes `&mut L` while tasks live: [`spawn_handler`] is `unsafe` with that contract,
//! which the `library` macro upholds by requiring `&self` of every method of a library
//! that has async methods, and the worker drops every task before the library's
//! teardown and drop.

use std::any::Any;
use std::fmt::Display;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};

use crate::egress::deferred::{with_drop_reason, Deferred};
use crate::egress::reply::{Answer, Reply, TaskFuture};
use crate::library::LibRef;
use crate::sync::{AtomicBool, Ordering};

/// Where a woken task goes to be polled again: implemented by the context, which
/// queues the task's key behind the requests already in its ring. It never blocks (a
/// waker may run on any thread, also inside a callback).
pub(crate) trait Requeue: Send + Sync {
    fn requeue(&self, key: u64);
}

/// Runs an async handler: `make` builds its future from the library, and the worker
/// polls it between requests until it answers (through the request's reply token, so
/// its `Ok` answers `RET_OK` and its `Err` answers `ERR`). Generated for `async fn`
/// methods.
///
/// # Safety
/// While any task lives, nothing borrows the library mutably: none of its handlers
/// calls [`LibRef::get_mut`] (every method of the library takes `&self`; the `library`
/// macro checks it). Its teardown runs after the tasks are gone.
pub unsafe fn spawn_handler<L, T, E, F>(
    reply: &mut Reply,
    lib: LibRef<'_, L>,
    make: impl FnOnce(&'static L) -> F,
) where
    L: 'static,
    T: Answer + 'static,
    E: Display + 'static,
    F: std::future::Future<Output = Result<T, E>> + 'static,
{
    let token = Deferred::<T>::take(reply);
    // SAFETY: the library outlives every task (the worker drops them before it) and is
    // only shared while they live, per this function's contract.
    let lib: &'static L = unsafe { &*(lib.get() as *const L) };
    let future = make(lib);
    reply.set_spawned(Box::pin(async move {
        match future.await {
            Ok(v) => token.complete(&v),
            Err(e) => token.fail(e),
        }
    }));
}

/// What the worker does with a task's panic before the task is dropped: count it, and
/// make the `DIAG_PANIC` report (if any) to send once the task's token has answered.
pub(crate) type OnPanic<'a> = &'a dyn Fn(&(dyn Any + Send)) -> Option<String>;

/// Wakes one task by queueing its marker (at most one marker per task at a time).
/// It holds its home weakly: a waker a future stashed somewhere does not keep a
/// destroyed context's rings alive, and waking it then does nothing.
struct TaskWaker {
    home: Weak<dyn Requeue>,
    key: u64,
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // One marker per task in the ring at a time. AcqRel pairs with the worker's
        // Release clear before it polls: a wake after that clear queues a new marker,
        // and sees whatever the poll before the clear wrote.
        if !self.queued.swap(true, Ordering::AcqRel) {
            if let Some(home) = self.home.upgrade() {
                home.requeue(self.key);
            }
        }
    }
}

struct Task {
    future: TaskFuture,
    waker: Arc<TaskWaker>,
}

/// The worker's live tasks, by key `generation << 32 | index`.
pub(crate) struct Tasks {
    home: Weak<dyn Requeue>,
    slots: Vec<(u32, Option<Task>)>,
    free: Vec<u32>,
    live: usize,
}

impl Tasks {
    /// No tasks yet; their wakers will requeue them at `home`.
    pub(crate) fn new(home: Arc<dyn Requeue>) -> Self {
        Tasks {
            home: Arc::downgrade(&home),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds a task and polls it once (see [`Tasks::poll`] for `on_panic`).
    pub(crate) fn spawn(&mut self, future: TaskFuture, on_panic: OnPanic<'_>) -> Option<String> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.0 = slot.0.wrapping_add(1);
        let key = (slot.0 as u64) << 32 | index as u64;
        slot.1 = Some(Task {
            future,
            waker: Arc::new(TaskWaker {
                home: self.home.clone(),
                key,
                queued: AtomicBool::new(false),
            }),
        });
        self.live += 1;
        self.poll(key, on_panic)
    }

    /// Polls the task `key` names; a stale key (the task finished) is ignored. A task
    /// that panics is first shown to `on_panic` (which counts it and makes its report,
    /// as for a sync handler, before the answer), then dropped: its token answers `ERR`.
    /// Returns the report, for the worker to send after that answer.
    pub(crate) fn poll(&mut self, key: u64, on_panic: OnPanic<'_>) -> Option<String> {
        let (index, generation) = (key as u32 as usize, (key >> 32) as u32);
        let Some((slot_gen, Some(task))) = self.slots.get_mut(index) else {
            return None;
        };
        if *slot_gen != generation {
            return None;
        }
        // Cleared before polling: a wake during the poll queues a new marker.
        task.waker.queued.store(false, Ordering::Release);
        let waker = Waker::from(task.waker.clone());
        let mut cx = Context::from_waker(&waker);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            task.future.as_mut().poll(&mut cx)
        }));
        match outcome {
            Ok(Poll::Pending) => None,
            Ok(Poll::Ready(())) => {
                self.remove(index);
                None
            }
            Err(panic) => {
                let report = on_panic(&*panic);
                with_drop_reason("async handler panicked", || self.remove(index));
                report
            }
        }
    }

    fn remove(&mut self, index: usize) {
        if let Some((_, task)) = self.slots.get_mut(index) {
            if task.take().is_some() {
                self.live -= 1;
                self.free.push(index as u32);
            }
        }
    }

    /// Destroy, after the timeout: drops every task (their tokens answer `ERR`).
    pub(crate) fn fail_all(&mut self) {
        with_drop_reason(
            "context destroyed before the async handler finished",
            || {
                for i in 0..self.slots.len() {
                    self.remove(i);
                }
            },
        );
    }
}
