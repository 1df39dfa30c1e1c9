//! The worker loop: construct the library, then drain the ring in batches, spin while
//! idle for the configured budget, and park (see `wake.rs`) when the budget runs out.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{Callback, RET_ERR, RET_OK};
use crate::context::Core;
use crate::envelope::{Envelope, FieldReader, Kind};
use crate::reply::{deliver, Reply};
use crate::ring::Ring;
use crate::sync::Ordering;
use crate::{CallError, Library, UserData};

/// Requests handled between two checks for blocked producers.
const BATCH: usize = 64;

pub(crate) fn run<L: Library>(
    core: Arc<Core>,
    callback: Callback,
    user_data: UserData,
    config: L::Config,
) {
    crate::context::mark_worker_thread();
    let mut reply = Reply::new();
    let mut library = match catch_unwind(AssertUnwindSafe(|| L::construct(config))) {
        Ok(result) => result,
        Err(panic) => Err(CallError::new(format!(
            "constructor panicked: {}",
            panic_message(&*panic)
        ))),
    };
    match &library {
        Ok(_) => {
            reply.start(Kind::Native);
            deliver(callback, user_data.0, RET_OK, reply.ok_bytes());
        }
        Err(e) => deliver(callback, user_data.0, RET_ERR, reply.err_bytes(e.message())),
    }

    loop {
        let mut handled = 0;
        // SAFETY: this thread is the context's only consumer: the worker is the one
        // thread that pops, for the whole life of the ring.
        while let Some(env) = unsafe { core.ring.pop() } {
            handle::<L>(&mut library, &env, &mut reply);
            handled += 1;
            if handled == BATCH {
                break;
            }
        }
        if handled > 0 {
            // After the answers, not before: a blocked producer is never on the
            // critical path of the request just answered.
            core.space_freed();
            continue;
        }
        // `stop` first: it is set after every producer left, so once it reads true an
        // empty ring stays empty.
        if core.stop.load(Ordering::Acquire) && core.ring.is_empty() {
            break;
        }
        if !spin_until(core.spin, || {
            !core.ring.is_empty() || core.stop.load(Ordering::Relaxed)
        }) {
            core.wake
                .park(|| !core.ring.is_empty() || core.stop.load(Ordering::SeqCst));
        }
    }

    if let Ok(lib) = &mut library {
        let _ = catch_unwind(AssertUnwindSafe(|| lib.teardown()));
    }
}

/// Busy-waits up to `budget` for `ready`. The clock is read only after a first round of
/// polls (a request that arrives at once costs no clock read) and then every few dozen.
fn spin_until(budget: Duration, ready: impl Fn() -> bool) -> bool {
    if budget.is_zero() {
        return false;
    }
    for _ in 0..64 {
        if ready() {
            return true;
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= budget {
            return ready();
        }
    }
}

/// Runs one request and answers it exactly once.
fn handle<L: Library>(library: &mut Result<L, CallError>, env: &Envelope, reply: &mut Reply) {
    let lib = match library {
        Ok(lib) => lib,
        Err(e) => {
            let msg = format!("constructor failed: {}", e.message());
            return env.answer(RET_ERR, reply.err_bytes(&msg));
        }
    };
    let Some(method) = L::METHODS.get(env.method as usize) else {
        return env.answer(RET_ERR, reply.err_bytes("unknown method id"));
    };
    reply.start(env.kind);
    let payload = env.payload.as_slice();
    let outcome = catch_unwind(AssertUnwindSafe(|| match env.kind {
        Kind::Native => (method.native)(lib, &mut FieldReader::new(payload), reply),
        Kind::Cbor => (method.cbor)(lib, payload, reply),
    }));
    match outcome {
        Ok(Ok(())) => env.answer(RET_OK, reply.ok_bytes()),
        Ok(Err(e)) => env.answer(RET_ERR, reply.err_bytes(e.message())),
        Err(panic) => {
            let msg = format!("handler panicked: {}", panic_message(&*panic));
            env.answer(RET_ERR, reply.err_bytes(&msg))
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}
