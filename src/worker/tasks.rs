//! Async handlers: futures polled on the worker thread, between requests.
//!
//! An `async fn` method becomes a task: its future, holding the method's reply token
//! ([`Deferred`]), lives in the worker's task table. The worker polls it once at once;
//! when it is pending, its waker pushes a marker envelope ([`TASK_WAKE`]) through the
//! context's own ring, and the worker polls it again when it pops that marker. So async
//! and sync handlers interleave on one thread in ring order, with no second runtime.
//!
//! A task answers through its token, which gives it progress pings, exactly-once and
//! destroy's handling for free. At destroy the worker keeps polling tasks for up to the
//! context's `shutdown_timeout` after the last request, then drops the rest: their
//! tokens answer `ERR`.
//!
//! Soundness: a future borrows the library (`&'static L`, extended from the worker's
//! borrow) across `.await`s while other requests run. That is sound only if nothing
//! takes `&mut L` while tasks live: [`Reply::spawn`] is `unsafe` with that contract,
//! which the `library` macro upholds by requiring `&self` of every method of a library
//! that has async methods, and the worker drops every task before the library's
//! teardown and drop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::lifecycle::Core;
use crate::sync::{AtomicBool, Ordering};

/// The method id of a task's wake marker in the ring.
pub(crate) const TASK_WAKE: u16 = u16::MAX;

pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = ()>>>;

/// Wakes one task by queueing its marker (at most one marker per task at a time).
struct TaskWaker {
    core: Arc<Core>,
    key: u64,
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.core.wake_task(self.key);
        }
    }
}

struct Task {
    future: TaskFuture,
    waker: Arc<TaskWaker>,
}

/// The worker's live tasks, by key `generation << 32 | index`.
#[derive(Default)]
pub(crate) struct Tasks {
    slots: Vec<(u32, Option<Task>)>,
    free: Vec<u32>,
    live: usize,
}

impl Tasks {
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds a task and polls it once.
    pub(crate) fn spawn(&mut self, core: &Arc<Core>, future: TaskFuture) {
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
                core: core.clone(),
                key,
                queued: AtomicBool::new(false),
            }),
        });
        self.live += 1;
        self.poll(key);
    }

    /// Polls the task `key` names; a stale key (the task finished) is ignored.
    pub(crate) fn poll(&mut self, key: u64) {
        let (index, generation) = (key as u32 as usize, (key >> 32) as u32);
        let Some((slot_gen, Some(task))) = self.slots.get_mut(index) else {
            return;
        };
        if *slot_gen != generation {
            return;
        }
        // Cleared before polling: a wake during the poll queues a new marker.
        task.waker.queued.store(false, Ordering::Release);
        let waker = Waker::from(task.waker.clone());
        let mut cx = Context::from_waker(&waker);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            task.future.as_mut().poll(&mut cx)
        }));
        match outcome {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(())) => self.remove(index),
            Err(panic) => {
                task.waker.core.counters.worker.panics.bump();
                task.waker.core.report_panic("async handler", &*panic);
                crate::egress::deferred::with_drop_reason("async handler panicked", || {
                    self.remove(index)
                });
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
        crate::egress::deferred::with_drop_reason(
            "context destroyed before the async handler finished",
            || {
                for i in 0..self.slots.len() {
                    self.remove(i);
                }
            },
        );
    }
}
