//! The worker loop: construct the library, then drain the ring in batches, spin while
//! idle for the configured budget, and park (see `sync/wake.rs`) when the budget runs out.
//!
//! The worker names no lifecycle type: it gets its [`Ports`] (the ring's consumer side,
//! its board, the outbox, the event hub, and where async tasks are requeued).

pub(crate) mod board;
pub(crate) mod idle;
pub(crate) mod tasks;

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{Callback, RET_ERR, RET_OK};
use crate::egress::outbox::Outbox;
use crate::egress::reply::Reply;
use crate::error::CallError;
use crate::events::EventHub;
use crate::ffi::host::UserData;
use crate::ingress::envelope::{Envelope, FieldReader, Kind, Recipient};
use crate::ingress::intake::Inbox;
use crate::library::{LibRef, Library};
use crate::threads::panics;
use crate::worker::board::Board;
use crate::worker::idle::{IdleTuner, Seen};
use crate::worker::tasks::{Requeue, Tasks};

/// Requests handled between two checks for blocked producers.
const BATCH: usize = 64;

/// A wake that came this soon after the worker went to sleep is counted as one a
/// spin that long would have saved (`avoidable_wakes`).
const AVOIDABLE_WAKE: Duration = Duration::from_millis(1);

/// The parts of a context the worker uses, each named by what it does with it. The
/// lifecycle builds them from its context inside the worker's thread.
pub(crate) struct Ports<'a> {
    /// The request ring's consumer side: the worker's alone.
    pub(crate) inbox: Inbox<'a>,
    /// What the worker is running, cancellations, its counters.
    pub(crate) board: &'a Board,
    /// Where answers leave; reply tokens keep a clone.
    pub(crate) outbox: &'a Arc<Outbox>,
    /// Handlers emit events into it (bound to the worker's thread).
    pub(crate) events: &'a Arc<EventHub>,
    /// Where woken async tasks are queued again.
    pub(crate) tasks_home: Arc<dyn Requeue>,
    /// What the worker does when idle.
    pub(crate) idle: IdleTuner,
    /// How long destroy gives async handlers after the last request.
    pub(crate) shutdown_timeout: Duration,
}

/// The worker thread's body: constructs the library (answering `callback`), serves
/// requests until destroy stops it, then tears the library down.
pub(crate) fn run<L: Library>(
    ports: Ports<'_>,
    callback: Callback,
    user_data: UserData,
    config: L::Config,
) {
    let Ports {
        mut inbox,
        board,
        outbox,
        events,
        tasks_home,
        mut idle,
        shutdown_timeout,
    } = ports;
    #[cfg(all(target_os = "linux", not(miri)))]
    // SAFETY: PR_SET_TIMERSLACK on the calling thread (the worker's own) takes a plain
    // integer; timed naps then wake when asked, not up to 50 µs later.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong)
    };
    // Handlers (and the constructor) emit events into this context.
    crate::events::bind(Some(events.clone()));
    let mut reply = Reply::new(Some(outbox.clone()));
    // A create from `<lib>_create_cbor` answers in CBOR: its "no value" is CBOR null.
    let answer_kind = if L::config_is_cbor(&config) {
        Kind::Cbor
    } else {
        Kind::Native
    };
    // The create's outcome is request 0's answer.
    let created = Recipient {
        callback,
        user_data,
        id: 0,
        kind: answer_kind,
    };
    let constructed = match catch_unwind(AssertUnwindSafe(|| L::construct(config))) {
        Ok(result) => result,
        Err(panic) => {
            outbox.report_panic("constructor", &*panic);
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
            reply.start_answer(answer_kind, outbox.queues_completions());
            let msg = reply.ok_bytes();
            outbox.answer_reply(created, RET_OK, msg);
            if outbox.poison_replies {
                reply.poison();
            }
        }
        Err(e) => outbox.answer(created, RET_ERR, reply.err_bytes(e.message())),
    }

    let counters = &board.counters;
    let mut tasks = Tasks::new(tasks_home);
    // A task's panic is counted and its report made before its token answers `ERR`,
    // and the report sent after, as for a sync handler.
    let on_panic = |panic: &(dyn std::any::Any + Send)| {
        counters.panics.bump();
        outbox.panic_report("async handler", panic)
    };
    let send_report = |report: Option<String>| {
        if let Some(report) = report {
            outbox.send_panic_report(report);
        }
    };
    // Request ids: the worker pops in ring order, so its count is the ring position + 1,
    // the id the producer was given.
    let mut id = 0u64;
    let mut shutdown_deadline = None;
    loop {
        let mut handled = 0;
        while let Some(env) = inbox.pop() {
            id += 1;
            counters.popped.bump();
            handled += 1;
            if handled == 2 {
                // A backlog: sample the queue's depth (never on the one-at-a-time path,
                // where reading the producers' line would cost a cache miss).
                counters.high_water.raise(inbox.len() as u64 + 2);
            }
            if let Some(key) = env.task_key() {
                counters.task_wakes.bump();
                send_report(tasks.poll(key, &on_panic));
            } else {
                handle::<L>(board, outbox, &mut library, &env, id, &mut reply);
                if let Some(task) = reply.take_spawned() {
                    send_report(tasks.spawn(task, &on_panic));
                }
            }
            if handled == BATCH {
                break;
            }
        }
        for key in inbox.take_overflow() {
            send_report(tasks.poll(key, &on_panic));
        }
        if handled > 0 {
            // After the answers, not before: a blocked producer is never on the
            // critical path of the request just answered.
            inbox.space_freed();
            if events.take_fresh() {
                // This batch emitted events: with more runnable threads than cores, the
                // event thread we just woke needs a core now more than we do.
                std::thread::yield_now();
            }
            continue;
        }
        if inbox.stopped_and_empty() {
            if tasks.is_empty() {
                break;
            }
            // Destroy with async handlers running: give them `shutdown_timeout`.
            let deadline =
                *shutdown_deadline.get_or_insert_with(|| Instant::now() + shutdown_timeout);
            if Instant::now() >= deadline {
                tasks.fail_all();
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let waited = inbox.wait_for_work(idle.plan());
        idle.learn(Seen {
            gap: waited.gap,
            nap_late: waited.nap_late,
            crowded: waited.crowded,
        });
        counters.idle_spin_ns.add(waited.spun.as_nanos() as u64);
        match waited.slept {
            None => counters.spin_hits.bump(),
            Some(slept) => {
                counters.parks.bump();
                if !slept.is_zero() && slept <= AVOIDABLE_WAKE {
                    counters.avoidable_wakes.bump();
                }
            }
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
            outbox.report_panic("teardown", &*panic);
        }
    }
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| drop(library))) {
        outbox.report_panic("the library's drop", &*panic);
    }
    drop(reply);
    crate::events::bind(None);
}

/// Runs one request and answers it exactly once: here, or through the reply token the
/// handler took (see `egress/deferred.rs`).
fn handle<L: Library>(
    board: &Board,
    outbox: &Outbox,
    library: &mut Result<NonNull<L>, CallError>,
    env: &Envelope,
    id: u64,
    reply: &mut Reply,
) {
    let running = &board.running;
    running.set(env);
    running.gate.begin(id);
    // A panic's report goes out once the request's gate is closed: pings and liveness
    // time handlers, not the host's diagnostic callback.
    let mut panic_report = None;
    let answer = if board.cancels.take(id) {
        board.counters.cancelled.bump();
        Some((RET_ERR, reply.err_bytes("cancelled")))
    } else {
        run_handler(board, outbox, library, env, id, reply, &mut panic_report)
    };
    match answer {
        // Only the monitor competes for the gate, and it never claims: this succeeds,
        // after any ping in flight has returned.
        Some((ret, msg)) => {
            let claimed = running.gate.claim(id);
            // Not claiming would drop the answer, an owned one's block with it.
            debug_assert!(claimed, "the worker's gate claim failed");
            if claimed {
                // Counted first: a host that has its answer sees it in `completed`.
                board.counters.answered.bump();
                outbox.answer_reply(env.recipient(id), ret, msg);
                if outbox.poison_replies {
                    reply.poison();
                }
            }
        }
        // Deferred: the token answers. Closing the gate stops the worker's pings; the
        // token's own gate takes over. (Only the monitor competes, and never claims.)
        None => {
            let _closed = running.gate.claim(id);
        }
    }
    if let Some(report) = panic_report {
        outbox.send_panic_report(report);
    }
}

/// The handler's answer, or `None` when it deferred it.
fn run_handler<'r, L: Library>(
    board: &Board,
    outbox: &Outbox,
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
        Kind::Native | Kind::Owned => (method.native)(lib, &mut FieldReader::new(payload), reply),
        Kind::Cbor => (method.cbor)(lib, payload, reply),
    }));
    if let Err(panic) = &outcome {
        board.counters.panics.bump();
        *panic_report = outbox.panic_report(method.name, &**panic);
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
