//! The worker loop: construct the library, then drain the ring in batches, spin while
//! idle for the configured budget, and park (see `sync/wake.rs`) when the budget runs out.

pub(crate) mod tasks;

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{Callback, RET_ERR, RET_OK};
use crate::envelope::{Envelope, FieldReader, Kind};
use crate::lifecycle::panics;
use crate::lifecycle::Core;
use crate::reply::Reply;
use crate::sync::ring::Ring;
use crate::sync::spin::spin_until;
use crate::sync::Ordering;
use crate::worker::tasks::{Tasks, TASK_WAKE};
use crate::{CallError, LibRef, Library, UserData};

/// Requests handled between two checks for blocked producers.
const BATCH: usize = 64;

pub(crate) fn run<L: Library>(
    core: Arc<Core>,
    callback: Callback,
    user_data: UserData,
    config: L::Config,
) {
    // Handlers (and the constructor) emit events into this context.
    crate::events::bind(Some(core.events.clone()));
    let mut reply = Reply::new(Some(core.clone()));
    // A create from `<lib>_create_cbor` answers in CBOR: its "no value" is CBOR null.
    let answer_kind = if L::config_is_cbor(&config) {
        Kind::Cbor
    } else {
        Kind::Native
    };
    let constructed = match catch_unwind(AssertUnwindSafe(|| L::construct(config))) {
        Ok(result) => result,
        Err(panic) => {
            core.report_panic("constructor", &*panic);
            Err(CallError::new(format!(
                "constructor panicked: {}",
                panics::message(&*panic)
            )))
        }
    };
    // Behind a raw pointer from here on: handlers get references through `LibRef`, so
    // the worker itself never forms a `&mut L` that would invalidate an async task's
    // `&L` (see `LibRef`).
    let mut library = constructed.map(|l| NonNull::from(Box::leak(Box::new(l))));
    match &library {
        Ok(_) => {
            reply.start(answer_kind);
            core.answer(callback, user_data.0, RET_OK, reply.ok_bytes());
        }
        Err(e) => core.answer(callback, user_data.0, RET_ERR, reply.err_bytes(e.message())),
    }

    let counters = &core.counters.worker;
    let mut tasks = Tasks::default();
    // Request ids: the worker pops in ring order, so its count is the ring position + 1,
    // the id the producer was given.
    let mut id = 0u64;
    let mut shutdown_deadline = None;
    loop {
        let mut handled = 0;
        // SAFETY: this thread is the context's only consumer: the worker is the one
        // thread that pops, for the whole life of the ring.
        while let Some(env) = unsafe { core.ring.pop() } {
            id += 1;
            counters.popped.bump();
            handled += 1;
            if handled == 2 {
                // A backlog: sample the queue's depth (never on the one-at-a-time path,
                // where reading the producers' line would cost a cache miss).
                counters.high_water.raise(core.ring.len() as u64 + 2);
            }
            if env.method == TASK_WAKE {
                counters.task_wakes.bump();
                tasks.poll(env.user_data as usize as u64);
            } else {
                handle::<L>(&core, &mut library, &env, id, &mut reply);
                if let Some(task) = reply.take_spawned() {
                    tasks.spawn(&core, task);
                }
            }
            if handled == BATCH {
                break;
            }
        }
        for key in core.take_overflow() {
            tasks.poll(key);
        }
        if handled > 0 {
            // After the answers, not before: a blocked producer is never on the
            // critical path of the request just answered.
            core.space_freed();
            if core.events.take_fresh() {
                // This batch emitted events: with more runnable threads than cores, the
                // event thread we just woke needs a core now more than we do.
                std::thread::yield_now();
            }
            continue;
        }
        // `stop` first: it is set after every producer left, so once it reads true an
        // empty ring stays empty (but for task wakes).
        if core.stop.load(Ordering::Acquire) && core.ring.is_empty() {
            if tasks.is_empty() {
                break;
            }
            // Destroy with async handlers running: give them `shutdown_timeout`.
            let deadline =
                *shutdown_deadline.get_or_insert_with(|| Instant::now() + core.shutdown_timeout);
            if Instant::now() >= deadline {
                tasks.fail_all();
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        // Relaxed while spinning; SeqCst in the park's recheck (see `sync/wake.rs`).
        let has_work =
            |order| !core.ring.is_empty() || core.stop.load(order) || core.overflowed.load(order);
        if spin_until(core.spin, || has_work(Ordering::Relaxed)) {
            counters.spin_hits.bump();
        } else {
            counters.parks.bump();
            core.wake.park(|| has_work(Ordering::SeqCst));
        }
    }

    // Every task is gone before the library is torn down and dropped (see `worker/tasks.rs`).
    tasks.fail_all();
    drop(tasks);
    let mut library = library.map(|ptr| {
        // SAFETY: from `Box::leak` above; no task or handler holds a reference now.
        unsafe { Box::from_raw(ptr.as_ptr()) }
    });
    if let Ok(lib) = &mut library {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| lib.teardown())) {
            core.report_panic("teardown", &*panic);
        }
    }
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| drop(library))) {
        core.report_panic("the library's drop", &*panic);
    }
    drop(reply);
    crate::events::bind(None);
}

/// Runs one request and answers it exactly once: here, or through the reply token the
/// handler took (see `egress/deferred.rs`).
fn handle<L: Library>(
    core: &Core,
    library: &mut Result<NonNull<L>, CallError>,
    env: &Envelope,
    id: u64,
    reply: &mut Reply,
) {
    let running = &core.running;
    running.set(env);
    running.gate.begin(id);
    // A panic's report goes out once the request's gate is closed: pings and liveness
    // time handlers, not the host's diagnostic callback.
    let mut panic_report = None;
    let answer = if core.cancels.take(id) {
        core.counters.worker.cancelled.bump();
        Some((RET_ERR, reply.err_bytes("cancelled")))
    } else {
        run_handler(core, library, env, id, reply, &mut panic_report)
    };
    match answer {
        // Only the monitor competes for the gate, and it never claims: this succeeds,
        // after any ping in flight has returned.
        Some((ret, msg)) => {
            if running.gate.claim(id) {
                core.answer(env.callback, env.user_data, ret, msg);
                core.counters.worker.answered.bump();
            }
        }
        // Deferred: the token answers. Closing the gate stops the worker's pings; the
        // token's own gate takes over. (Only the monitor competes, and never claims.)
        None => {
            let _closed = running.gate.claim(id);
        }
    }
    if let Some(report) = panic_report {
        core.send_panic_report(report);
    }
}

/// The handler's answer, or `None` when it deferred it.
fn run_handler<'r, L: Library>(
    core: &Core,
    library: &mut Result<NonNull<L>, CallError>,
    env: &Envelope,
    id: u64,
    reply: &'r mut Reply,
    panic_report: &mut Option<String>,
) -> Option<(c_int, &'r [u8])> {
    let lib = match library {
        // SAFETY: the value lives until the worker's end and is lent to one handler at
        // a time.
        Ok(ptr) => unsafe { LibRef::new(*ptr) },
        Err(e) => {
            let msg = format!("constructor failed: {}", e.message());
            return Some((RET_ERR, reply.err_bytes(&msg)));
        }
    };
    let Some(method) = L::METHODS.get(env.method as usize) else {
        return Some((RET_ERR, reply.err_bytes("unknown method id")));
    };
    reply.begin(env, id);
    let payload = env.payload.as_slice();
    let outcome = catch_unwind(AssertUnwindSafe(|| match env.kind {
        Kind::Native => (method.native)(lib, &mut FieldReader::new(payload), reply),
        Kind::Cbor => (method.cbor)(lib, payload, reply),
    }));
    if let Err(panic) = &outcome {
        core.counters.worker.panics.bump();
        *panic_report = core.panic_report(method.name, &**panic);
    }
    if reply.end() {
        return None;
    }
    Some(match outcome {
        Ok(result) => reply.outcome(result),
        Err(panic) => {
            let msg = format!("handler panicked: {}", panics::message(&*panic));
            (RET_ERR, reply.err_bytes(&msg))
        }
    })
}
