//! The request lanes: a fresh context per row, the `sync`, `async` and `blocking` lanes
//! with their completions and request builder, and the waiting helpers.

use std::ffi::{c_char, c_int, c_void};
use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::ffi::{echo, fail_hard, Api, Cb, Ctx, PayloadArgs, ScalarArgs};
use crate::knobs::{Knobs, Setup};
use crate::report::{histogram, Row};

// ---- the calls --------------------------------------------------------------------------

/// nim-ffi's predicate.
fn predicate(a: i64, b: i64, x: f64) -> bool {
    (a.wrapping_add(b).wrapping_add(x as i64) & 1) == 0
}

/// A sync call's completion: the callback stores the answer and releases `done`.
#[repr(align(64))]
struct Slot {
    done: AtomicBool,
    answer: AtomicU32, // 0 false, 1 true, 2 anything else
}

fn decode_bool(cbor: bool, ret: c_int, msg: *const c_char, len: usize) -> u32 {
    if ret != 0 {
        return 2;
    }
    // SAFETY: the runtime passes `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    match (cbor, bytes) {
        (false, [0]) | (true, [0xf4]) => 0,
        (false, [1]) | (true, [0xf5]) => 1,
        _ => 2,
    }
}

unsafe extern "C" fn sync_native(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: `ud` is the calling thread's `Slot`, alive until it saw `done`.
    let slot = unsafe { &*(ud as *const Slot) };
    slot.answer
        .store(decode_bool(false, ret, msg, len), Ordering::Relaxed);
    slot.done.store(true, Ordering::Release);
}
unsafe extern "C" fn sync_cbor(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: as above.
    let slot = unsafe { &*(ud as *const Slot) };
    slot.answer
        .store(decode_bool(true, ret, msg, len), Ordering::Relaxed);
    slot.done.store(true, Ordering::Release);
}

/// An async thread's window: `user_data` is this struct's address with the expected
/// answer in its lowest bit.
#[repr(align(64))]
struct Window {
    in_flight: AtomicU32,
    completed: AtomicU64,
    wrong: AtomicU64,
}

unsafe fn window_done(cbor: bool, ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    let expected = ud as usize & 1;
    // SAFETY: `ud` minus its tag bit is the thread's `Window`, alive until it drained.
    let w = unsafe { &*((ud as usize & !1) as *const Window) };
    if decode_bool(cbor, ret, msg, len) as usize != expected {
        w.wrong.fetch_add(1, Ordering::Relaxed);
    }
    w.completed.fetch_add(1, Ordering::Relaxed);
    w.in_flight.fetch_sub(1, Ordering::Release);
}
unsafe extern "C" fn async_native(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: forwarded.
    unsafe { window_done(false, ret, msg, len, ud) }
}
unsafe extern "C" fn async_cbor(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: forwarded.
    unsafe { window_done(true, ret, msg, len, ud) }
}

/// One thread's request builder: the native args or the CBOR buffer for call `i`, and
/// the answer it must get.
struct Requests {
    setup: Setup,
    cbor: bool,
    data: Vec<u8>,
    buf: Vec<u8>,
}

impl Requests {
    fn new(setup: Setup, cbor: bool) -> Self {
        let data = match setup {
            Setup::Scalar => Vec::new(),
            Setup::Payload(n) => vec![0x5a; n],
        };
        let buf = match setup {
            // {"data": h'...'}: the header stays, the first and last bytes change per call.
            Setup::Payload(_) => payload_request(&data),
            Setup::Scalar => Vec::new(),
        };
        Requests {
            setup,
            cbor,
            data,
            buf,
        }
    }

    /// Call `i`'s arguments, the same in every lane, and the answer it must get. A
    /// payload call's ends are written into the native and the CBOR buffer alike.
    fn args(&mut self, i: u64) -> (Args, bool) {
        let (a, b) = ((i % 1000) as i64, (i / 1000 % 7) as i64);
        match self.setup {
            Setup::Scalar => {
                let x = (i % 5) as f64 * 0.75;
                (Args::Scalar(ScalarArgs { a, b, x }), predicate(a, b, x))
            }
            Setup::Payload(n) => {
                let (first, last) = (a as u8, (b as u8).wrapping_add(i as u8));
                self.data[0] = first;
                self.data[n - 1] = last;
                let end = self.buf.len() - 1;
                self.buf[end + 1 - n] = first;
                self.buf[end] = last;
                let args = PayloadArgs {
                    data: self.data.as_ptr(),
                    data_len: n,
                };
                (
                    Args::Payload(args),
                    predicate(first as i64, last as i64, n as f64),
                )
            }
        }
    }

    /// Submits call `i` with `cb`/`ud` and returns the expected answer.
    fn submit(
        &mut self,
        api: &Api,
        ctx: Ctx,
        i: u64,
        cb: Cb,
        ud: *mut c_void,
        tag: bool,
    ) -> (c_int, bool) {
        let (args, expected) = self.args(i);
        let ud = tagged(ud, tag && expected);
        // SAFETY: echo.h's contract: args and buffers live for the call.
        let rc = unsafe {
            match (args, self.cbor) {
                (Args::Scalar(ScalarArgs { a, b, x }), true) => {
                    self.buf.clear();
                    scalar_request(&mut self.buf, a, b, x);
                    (api.scalar_check_cbor)(ctx, Some(cb), ud, self.buf.as_ptr(), self.buf.len())
                }
                (Args::Scalar(args), false) => (api.scalar_check)(ctx, Some(cb), ud, &args),
                (Args::Payload(_), true) => {
                    (api.payload_check_cbor)(ctx, Some(cb), ud, self.buf.as_ptr(), self.buf.len())
                }
                (Args::Payload(args), false) => (api.payload_check)(ctx, Some(cb), ud, &args),
            }
        };
        (rc, expected)
    }

    /// Makes call `i` through the blocking form (native only, no time limit), with the
    /// generated client's blocking method: the answer (`None`: refused or failed) and
    /// the answer it must be.
    fn call_blocking(&mut self, ctx: &echo::Context, i: u64) -> (Option<bool>, bool) {
        let (args, expected) = self.args(i);
        let answer = match args {
            Args::Scalar(ScalarArgs { a, b, x }) => ctx.scalar_check(a, b, x, None),
            // `args` points into `self.data`, whose ends `args` just wrote.
            Args::Payload(_) => ctx.payload_check(&self.data, None),
        };
        (answer.ok(), expected)
    }
}

/// One call's native arguments.
enum Args {
    Scalar(ScalarArgs),
    Payload(PayloadArgs),
}

fn tagged(ud: *mut c_void, bit: bool) -> *mut c_void {
    (ud as usize | bit as usize) as *mut c_void
}

/// How long a host waiting for an answer spins before it yields between polls, as the
/// runtime's blocking forms spin before they sleep. A hot worker answers well within
/// it; a longer spin holds a core that the worker may need: with more runnable threads
/// than cores, and whenever the kernel wakes a parked worker onto the waiting host's
/// core (on this kind of VM it often does, and the worker then waits for the host).
const HOST_SPIN: Duration = Duration::from_micros(20);

/// Waits for `ready`: spins up to [`HOST_SPIN`] (a hot round trip is sub-microsecond),
/// then yields between polls.
fn wait_for(ready: impl Fn() -> bool) -> bool {
    // The clock is read only once the answer is late, off the hot round trip's path.
    if spin(512, &ready) {
        return true;
    }
    let since = Instant::now();
    loop {
        if spin(64, &ready) {
            return true;
        }
        if since.elapsed() >= HOST_SPIN {
            return yield_until(ready);
        }
    }
}

/// Spins `spins` polls, then yields between polls (30 s at most).
pub(crate) fn wait_spinning(spins: u32, ready: impl Fn() -> bool) -> bool {
    spin(spins, &ready) || yield_until(ready)
}

/// Polls `ready` up to `spins` times.
fn spin(spins: u32, ready: &impl Fn() -> bool) -> bool {
    for _ in 0..spins {
        if ready() {
            return true;
        }
        spin_loop();
    }
    false
}

/// Yields between polls of `ready` for 30 s at most.
fn yield_until(ready: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// `{"a": a, "b": b, "x": x}` into `out`, as scalar_check's CBOR form takes it.
fn scalar_request(out: &mut Vec<u8>, a: i64, b: i64, x: f64) {
    let mut e = minicbor::Encoder::new(out);
    e.map(3)
        .and_then(|e| e.str("a")?.i64(a)?.str("b")?.i64(b)?.str("x")?.f64(x))
        .expect("encoding into a Vec");
}

/// `{"data": h'...'}`, as payload_check's CBOR form takes it: the bytes last.
fn payload_request(data: &[u8]) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    e.map(1)
        .and_then(|e| e.str("data")?.bytes(data))
        .expect("encoding into a Vec");
    e.into_writer()
}

/// A fresh context of `lib` with the knobs' options (created by the generated client,
/// which waits for the constructor).
pub(crate) fn make_context(lib: &echo::Library, knobs: &Knobs) -> echo::Context {
    create(lib, knobs, |_| {})
}

/// A fresh context whose answers and events come through `<lib>_poll` (completion mode,
/// `FFID_POLL_EVENTS`), with the knobs' options.
pub(crate) fn make_poll_context(lib: &echo::Library, knobs: &Knobs) -> echo::Context {
    create(lib, knobs, |opts| {
        opts.completion = echo::raw::FFID_COMPLETION_QUEUE;
        opts.poll_kinds = echo::raw::FFID_POLL_EVENTS;
    })
}

/// A context with the knobs' options, then `mode`'s.
fn create(
    lib: &echo::Library,
    knobs: &Knobs,
    mode: impl FnOnce(&mut echo::raw::ffid_options),
) -> echo::Context {
    let mut opts = lib.options();
    assert_eq!(
        opts.struct_size as usize,
        std::mem::size_of::<echo::raw::ffid_options>()
    );
    if let Some(r) = knobs.ring {
        opts.ring_capacity = r;
    }
    if let Some(k) = knobs.ring_kind {
        opts.ring = k;
    }
    if let Some(s) = knobs.spin_ns {
        opts.spin_ns = s;
    }
    if let Some(p) = knobs.idle {
        opts.idle_policy = p;
    }
    mode(&mut opts);
    match lib.create_with_options("driver", Some(&opts)) {
        Ok(ctx) => ctx,
        Err(e) => fail_hard(&format!("creating an echo context failed: {e}")),
    }
}

/// One host thread's blocking caller: its completion slot and request builder.
pub(crate) struct SyncCaller {
    slot: Box<Slot>,
    req: Requests,
    cb: Cb,
}

impl SyncCaller {
    pub(crate) fn new(setup: Setup, cbor: bool) -> Self {
        SyncCaller {
            slot: Box::new(Slot {
                done: AtomicBool::new(false),
                answer: AtomicU32::new(9),
            }),
            req: Requests::new(setup, cbor),
            cb: if cbor { sync_cbor } else { sync_native },
        }
    }

    /// Makes call `i` and waits for its answer: its round trip in ns and whether the
    /// answer was right (`None` when refused). Exits the process if it never comes.
    pub(crate) fn call(&mut self, api: &Api, ctx: Ctx, i: u64) -> Option<(u64, bool)> {
        let slot = &*self.slot;
        let ud = slot as *const Slot as *mut c_void;
        slot.done.store(false, Ordering::Relaxed);
        let t0 = Instant::now();
        let (rc, expected) = self.req.submit(api, ctx, i, self.cb, ud, false);
        if rc != 0 {
            return None;
        }
        if !wait_for(|| slot.done.load(Ordering::Acquire)) {
            eprintln!("latency-driver: a reply never came");
            std::process::exit(1);
        }
        let ns = t0.elapsed().as_nanos() as u64;
        Some((ns, slot.answer.load(Ordering::Relaxed) == expected as u32))
    }
}

/// Runs `threads` host threads of `calls` timed calls each: `call(t)` makes thread `t`'s
/// caller, which makes call `i` and returns its round trip in ns and whether its answer
/// was right (`None`: refused). The row of them all.
fn timed_calls<C: FnMut(u64) -> Option<(u64, bool)>>(
    threads: usize,
    calls: u64,
    call: impl Fn(usize) -> C + Sync,
    (setup, mode, lane): (Setup, &'static str, &'static str),
) -> Row {
    let start = Instant::now();
    let results: Vec<(Histogram<u64>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let call = &call;
                s.spawn(move || {
                    let mut hist = histogram();
                    let mut wrong = 0;
                    let mut one = call(t);
                    for i in 0..calls {
                        match one(i + t as u64 * 7919) {
                            Some((ns, right)) => {
                                hist.record(ns.max(1)).expect("in range");
                                wrong += u64::from(!right);
                            }
                            None => wrong += 1,
                        }
                    }
                    (hist, wrong)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("driver thread"))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut hist = histogram();
    let mut wrong = 0;
    for (h, w) in results {
        hist.add(&h).expect("same bounds");
        wrong += w;
    }
    Row {
        setup: setup.name(),
        mode,
        lane,
        threads,
        calls_per_s: (calls * threads as u64) as f64 / elapsed,
        hist: Some(hist),
        wrong,
    }
}

pub(crate) fn run_sync(
    api: &Api,
    ctx: Ctx,
    setup: Setup,
    cbor: bool,
    threads: usize,
    calls: u64,
) -> Row {
    let ctx = ctx as usize;
    let mode = if cbor { "cbor" } else { "native" };
    timed_calls(
        threads,
        calls,
        |_| {
            let mut caller = SyncCaller::new(setup, cbor);
            move |i| caller.call(api, ctx as Ctx, i)
        },
        (setup, mode, "sync"),
    )
}

/// The `blocking` lane: each host thread calls the blocking form (`_sync`) back to back,
/// every call timed; the runtime does the waiting (a spin of up to 20 µs, then a futex
/// sleep), so a host thread spins against the worker for the cores only that long.
pub(crate) fn run_blocking(ctx: &echo::Context, setup: Setup, threads: usize, calls: u64) -> Row {
    run_blocking_on(&[ctx], setup, threads, calls, "blocking")
}

/// [`run_blocking`] with host thread `t` calling `contexts[t % contexts.len()]`: the
/// `contexts` lane gives each thread a context of its own.
pub(crate) fn run_blocking_on(
    contexts: &[&echo::Context],
    setup: Setup,
    threads: usize,
    calls: u64,
    lane: &'static str,
) -> Row {
    timed_calls(
        threads,
        calls,
        |t| {
            let ctx = contexts[t % contexts.len()];
            let mut req = Requests::new(setup, false);
            move |i| {
                let t0 = Instant::now();
                let (answer, expected) = req.call_blocking(ctx, i);
                let ns = t0.elapsed().as_nanos() as u64;
                answer.map(|answer| (ns, answer == expected))
            }
        },
        (setup, "native", lane),
    )
}

pub(crate) fn run_async(
    api: &Api,
    ctx: Ctx,
    setup: Setup,
    cbor: bool,
    threads: usize,
    calls: u64,
) -> Row {
    const WINDOW: u32 = 64;
    let start = Instant::now();
    let wrong: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ctx = ctx as usize;
                s.spawn(move || {
                    let ctx = ctx as Ctx;
                    let w = Arc::new(Window {
                        in_flight: AtomicU32::new(0),
                        completed: AtomicU64::new(0),
                        wrong: AtomicU64::new(0),
                    });
                    let ud = Arc::as_ptr(&w) as *mut c_void;
                    let cb: Cb = if cbor { async_cbor } else { async_native };
                    let mut req = Requests::new(setup, cbor);
                    let mut refused = 0;
                    for i in 0..calls {
                        while w.in_flight.load(Ordering::Acquire) >= WINDOW {
                            spin_loop();
                        }
                        w.in_flight.fetch_add(1, Ordering::Relaxed);
                        let (rc, _) = req.submit(api, ctx, i + t as u64 * 7919, cb, ud, true);
                        if rc != 0 {
                            w.in_flight.fetch_sub(1, Ordering::Relaxed);
                            refused += 1;
                        }
                    }
                    if !wait_for(|| w.in_flight.load(Ordering::Acquire) == 0) {
                        eprintln!("latency-driver: async replies missing");
                        std::process::exit(1);
                    }
                    let missing = calls - refused - w.completed.load(Ordering::Relaxed);
                    w.wrong.load(Ordering::Relaxed) + refused + missing
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("driver thread"))
            .sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    Row {
        setup: setup.name(),
        mode: if cbor { "cbor" } else { "native" },
        lane: "async",
        threads,
        calls_per_s: (calls * threads as u64) as f64 / elapsed,
        hist: None,
        wrong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CBOR requests are byte for byte what the hand-written encoder made before
    /// the driver used minicbor: the CBOR lanes measure the same calls.
    #[test]
    fn the_cbor_requests_keep_their_bytes() {
        let mut buf = Vec::new();
        scalar_request(&mut buf, 999, -3, 0.75);
        let mut want = vec![0xa3, 0x61, b'a', 0x19, 0x03, 0xe7, 0x61, b'b', 0x22];
        want.extend_from_slice(&[0x61, b'x', 0xfb]);
        want.extend_from_slice(&0.75f64.to_be_bytes());
        assert_eq!(buf, want);
        let req = payload_request(&[7; 300]);
        assert_eq!(
            req[..9],
            [0xa1, 0x64, b'd', b'a', b't', b'a', 0x59, 0x01, 0x2c]
        );
        assert_eq!(req.len(), 9 + 300);
        assert_eq!(payload_request(&[1; 5])[6..], [0x45, 1, 1, 1, 1, 1]);
    }
}
