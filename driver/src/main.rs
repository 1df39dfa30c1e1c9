//! The latency driver: the main job's engine.
//!
//! It loads `libecho.so` with `dlopen` and calls its C exports exactly as a C host does
//! (the structs below mirror `echo.h`), mirroring the nim-ffi perf harness so that its
//! table compares directly: setups `scalar` (2 x i64 + f64 in, bool out) and
//! `payload N B`, lanes `sync` (blocking round trips, every call timed into an HDR
//! histogram) and `async` (64 calls in flight per thread, throughput only), native and
//! CBOR, at 1, 2 and 4 threads, beside the atomic ping-pong floor measured in the same
//! run (before any context exists). Every reply is checked against the predicate; any
//! wrong or missing reply makes the exit status 1. The `event` lane (one 512 B
//! `on_perf_ping` per round, stamp to listener) is set against its own baseline, a
//! bare three-thread atomic relay, since an event crosses three threads where a call
//! crosses two.
//!
//! Knobs (environment):
//! - `FFID_DRIVER_LIB`: the cdylib (default: `libecho.so` beside this binary);
//! - `FFID_DRIVER_CALLS`: calls per thread per row (default 200000; payload rows scale
//!   it down by size);
//! - `FFID_DRIVER_THREADS`: thread counts (default `1,2,4`);
//! - `FFID_DRIVER_SETUPS`: `scalar,payload64,payload512,payload4096,payload65536`;
//! - `FFID_DRIVER_MODES`: `native,cbor`;  `FFID_DRIVER_LANES`: `sync,async,event`;
//! - `FFID_DRIVER_RING` (capacity), `FFID_DRIVER_RING_KIND` (0 tagged, 1 ArrayQueue),
//!   `FFID_DRIVER_SPIN_NS` (worker spin budget).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

// ---- the C ABI, as echo.h declares it ------------------------------------------------

/// `ffid_options` as `ffi_dispatch.h` declares it (all of it: `ffid_options_init`
/// writes the whole struct).
#[repr(C)]
struct FfidOptions {
    struct_size: u32,
    ring_capacity: u32,
    spin_ns: u32,
    backpressure: u32,
    wake: u32,
    ring: u32,
    stale_ping_ms: u32,
    not_responding_ms: u32,
    listener_stuck_ms: u32,
    event_ring_capacity: u32,
    event_backpressure: u32,
    shutdown_timeout_ms: u32,
    completion: u32,
    reserved: u32,
    diagnostic: Option<Cb>,
    diagnostic_user_data: *mut c_void,
    thread_start: *const c_void,
    thread_stop: *const c_void,
    hook_user_data: *mut c_void,
}
#[repr(C)]
struct TriggerPingArgs {
    count: u32,
    payload_bytes: u32,
    stamp_ns: u64,
    seq_base: u64,
}
/// `EchoPerfPing`, the native event.
#[repr(C)]
struct PerfPing {
    seq_no: u64,
    stamp_ns: u64,
    data: *const u8,
    data_len: usize,
}
#[repr(C)]
struct EchoConfig {
    prefix: *const c_char,
}
#[repr(C)]
struct ScalarArgs {
    a: i64,
    b: i64,
    x: f64,
}
#[repr(C)]
struct PayloadArgs {
    data: *const u8,
    data_len: usize,
}

type Cb = unsafe extern "C" fn(c_int, *const c_char, usize, *mut c_void);
type Ctx = *mut c_void;

struct Api {
    options_init: unsafe extern "C" fn(*mut FfidOptions) -> c_int,
    create: unsafe extern "C" fn(Cb, *mut c_void, *const EchoConfig, *const FfidOptions) -> Ctx,
    destroy: unsafe extern "C" fn(Ctx) -> c_int,
    scalar: unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const ScalarArgs) -> c_int,
    scalar_cbor: unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const u8, usize) -> c_int,
    payload: unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const PayloadArgs) -> c_int,
    payload_cbor: unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const u8, usize) -> c_int,
    trigger_ping: unsafe extern "C" fn(Ctx, Cb, *mut c_void, *const TriggerPingArgs) -> c_int,
    add_ping_listener: unsafe extern "C" fn(Ctx, Cb, *mut c_void) -> u64,
    add_ping_listener_cbor: unsafe extern "C" fn(Ctx, Cb, *mut c_void) -> u64,
    remove_listener: unsafe extern "C" fn(Ctx, u64) -> c_int,
}

fn load(path: &str) -> Api {
    let c_path = CString::new(path).expect("library path");
    // SAFETY: dlopen/dlsym with valid C strings; each symbol is cast to the type echo.h
    // declares for it.
    unsafe {
        let handle = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if handle.is_null() {
            let err = CStr::from_ptr(libc::dlerror()).to_string_lossy();
            fail_hard(&format!("cannot load {path}: {err}"));
        }
        Api {
            options_init: sym(handle, path, c"ffid_options_init"),
            create: sym(handle, path, c"echo_create_with_options"),
            destroy: sym(handle, path, c"echo_destroy"),
            scalar: sym(handle, path, c"echo_scalar_check"),
            scalar_cbor: sym(handle, path, c"echo_scalar_check_cbor"),
            payload: sym(handle, path, c"echo_payload_check"),
            payload_cbor: sym(handle, path, c"echo_payload_check_cbor"),
            trigger_ping: sym(handle, path, c"echo_trigger_ping"),
            add_ping_listener: sym(handle, path, c"echo_add_on_perf_ping_listener"),
            add_ping_listener_cbor: sym(handle, path, c"echo_add_on_perf_ping_listener_cbor"),
            remove_listener: sym(handle, path, c"echo_remove_listener"),
        }
    }
}

/// Looks up `name` as a function pointer of type `F`.
///
/// # Safety
/// `F` is the function pointer type the library declares for `name`.
unsafe fn sym<F: Copy>(handle: *mut c_void, path: &str, name: &CStr) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: a live handle and a C string.
    let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if p.is_null() {
        fail_hard(&format!("{path} lacks {}", name.to_string_lossy()));
    }
    // SAFETY: same size, and the caller names the symbol's real type.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
}

fn fail_hard(msg: &str) -> ! {
    eprintln!("latency-driver: {msg}");
    std::process::exit(2)
}

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

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Scalar,
    Payload(usize),
}

impl Setup {
    fn name(self) -> String {
        match self {
            Setup::Scalar => "scalar".into(),
            Setup::Payload(n) => format!("payload {n} B"),
        }
    }
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
        let mut buf = Vec::new();
        if let Setup::Payload(n) = setup {
            // {"data": h'...'}: the header stays, the first and last bytes change per call.
            buf.extend_from_slice(&[0xa1, 0x64, b'd', b'a', b't', b'a']);
            cbor_head(&mut buf, 2, n as u64);
            buf.extend_from_slice(&data);
        }
        Requests {
            setup,
            cbor,
            data,
            buf,
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
        let (a, b) = ((i % 1000) as i64, (i / 1000 % 7) as i64);
        match self.setup {
            Setup::Scalar => {
                let x = (i % 5) as f64 * 0.75;
                let expected = predicate(a, b, x);
                let ud = tagged(ud, tag && expected);
                // SAFETY: echo.h's contract: args/buffers live for the call.
                let rc = unsafe {
                    if self.cbor {
                        self.buf.clear();
                        self.buf.extend_from_slice(&[0xa3, 0x61, b'a']);
                        cbor_int(&mut self.buf, a);
                        self.buf.extend_from_slice(&[0x61, b'b']);
                        cbor_int(&mut self.buf, b);
                        self.buf.extend_from_slice(&[0x61, b'x', 0xfb]);
                        self.buf.extend_from_slice(&x.to_be_bytes());
                        (api.scalar_cbor)(ctx, cb, ud, self.buf.as_ptr(), self.buf.len())
                    } else {
                        (api.scalar)(ctx, cb, ud, &ScalarArgs { a, b, x })
                    }
                };
                (rc, expected)
            }
            Setup::Payload(n) => {
                let (first, last) = (a as u8, (b as u8).wrapping_add(i as u8));
                let expected = predicate(first as i64, last as i64, n as f64);
                let ud = tagged(ud, tag && expected);
                // SAFETY: as above.
                let rc = unsafe {
                    if self.cbor {
                        let end = self.buf.len() - 1;
                        let start = end + 1 - n;
                        self.buf[start] = first;
                        self.buf[end] = last;
                        (api.payload_cbor)(ctx, cb, ud, self.buf.as_ptr(), self.buf.len())
                    } else {
                        self.data[0] = first;
                        self.data[n - 1] = last;
                        let args = PayloadArgs {
                            data: self.data.as_ptr(),
                            data_len: n,
                        };
                        (api.payload)(ctx, cb, ud, &args)
                    }
                };
                (rc, expected)
            }
        }
    }
}

fn tagged(ud: *mut c_void, bit: bool) -> *mut c_void {
    (ud as usize | bit as usize) as *mut c_void
}

fn cbor_head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    match v {
        0..=23 => out.push(m | v as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, v as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(v as u16).to_be_bytes())
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(v as u32).to_be_bytes())
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&v.to_be_bytes())
        }
    }
}

fn cbor_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        cbor_head(out, 0, v as u64)
    } else {
        cbor_head(out, 1, (-1 - v) as u64)
    }
}

/// Waits for `ready`, spinning first (a round trip is sub-microsecond), then yielding.
fn wait_for(ready: impl Fn() -> bool) -> bool {
    wait_spinning(20_000, ready)
}

/// Spins `spins` polls, then yields between polls (30 s at most).
fn wait_spinning(spins: u32, ready: impl Fn() -> bool) -> bool {
    for _ in 0..spins {
        if ready() {
            return true;
        }
        spin_loop();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

struct Row {
    setup: String,
    mode: &'static str,
    lane: &'static str,
    threads: usize,
    calls_per_s: f64,
    hist: Option<Histogram<u64>>,
    wrong: u64,
}

fn make_context(api: &Api, knobs: &Knobs) -> Ctx {
    let mut opts = std::mem::MaybeUninit::<FfidOptions>::zeroed();
    // SAFETY: a valid out pointer to a whole `ffid_options`; init fills every field.
    let mut opts = unsafe {
        if (api.options_init)(opts.as_mut_ptr()) != 0 {
            fail_hard("ffid_options_init failed");
        }
        opts.assume_init()
    };
    assert_eq!(
        opts.struct_size as usize,
        std::mem::size_of::<FfidOptions>()
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
    let slot = Slot {
        done: AtomicBool::new(false),
        answer: AtomicU32::new(9),
    };
    let cfg = EchoConfig {
        prefix: c"driver".as_ptr(),
    };
    // SAFETY: valid config, options and callback; `slot` outlives the create callback.
    let ctx = unsafe {
        (api.create)(
            sync_native,
            &slot as *const Slot as *mut c_void,
            &cfg,
            &opts,
        )
    };
    if ctx.is_null() || !wait_for(|| slot.done.load(Ordering::Acquire)) {
        fail_hard("echo_create_with_options failed");
    }
    ctx
}

fn run_sync(api: &Api, ctx: Ctx, setup: Setup, cbor: bool, threads: usize, calls: u64) -> Row {
    let start = Instant::now();
    let results: Vec<(Histogram<u64>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ctx = ctx as usize;
                s.spawn(move || {
                    let ctx = ctx as Ctx;
                    let mut hist = histogram();
                    let mut wrong = 0;
                    let slot = Slot {
                        done: AtomicBool::new(false),
                        answer: AtomicU32::new(9),
                    };
                    let ud = &slot as *const Slot as *mut c_void;
                    let cb: Cb = if cbor { sync_cbor } else { sync_native };
                    let mut req = Requests::new(setup, cbor);
                    for i in 0..calls {
                        slot.done.store(false, Ordering::Relaxed);
                        let t0 = Instant::now();
                        let (rc, expected) =
                            req.submit(api, ctx, i + t as u64 * 7919, cb, ud, false);
                        if rc != 0 {
                            wrong += 1;
                            continue;
                        }
                        if !wait_for(|| slot.done.load(Ordering::Acquire)) {
                            eprintln!("latency-driver: a reply never came");
                            std::process::exit(1);
                        }
                        let ns = t0.elapsed().as_nanos() as u64;
                        hist.record(ns.max(1)).expect("in range");
                        if slot.answer.load(Ordering::Relaxed) != expected as u32 {
                            wrong += 1;
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
        mode: if cbor { "cbor" } else { "native" },
        lane: "sync",
        threads,
        calls_per_s: (calls * threads as u64) as f64 / elapsed,
        hist: Some(hist),
        wrong,
    }
}

fn run_async(api: &Api, ctx: Ctx, setup: Setup, cbor: bool, threads: usize, calls: u64) -> Row {
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

/// The floor: a bare atomic ping-pong between two threads, timed per round trip the
/// same way as the sync lane.
fn floor(rounds: u64) -> Row {
    let flag = Arc::new(AtomicU64::new(0));
    let peer = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            for i in 0..rounds {
                while flag.load(Ordering::Acquire) != 2 * i + 1 {
                    spin_loop();
                }
                flag.store(2 * i + 2, Ordering::Release);
            }
        })
    };
    let row = timed_rounds("floor", "ping-pong", 0..rounds, |i| {
        flag.store(2 * i + 1, Ordering::Release);
        while flag.load(Ordering::Acquire) != 2 * i + 2 {
            spin_loop();
        }
    });
    peer.join().expect("ping-pong peer");
    row
}

/// A baseline row's p50 in ns (at least 1: it divides).
fn p50_ns(row: &Row) -> u64 {
    row.hist
        .as_ref()
        .map_or(1, |h| h.value_at_quantile(0.5))
        .max(1)
}

/// Times each round of a bare baseline on this thread into a row.
fn timed_rounds(
    setup: &str,
    lane: &'static str,
    rounds: std::ops::Range<u64>,
    mut round: impl FnMut(u64),
) -> Row {
    let count = rounds.end - rounds.start;
    let mut hist = histogram();
    let start = Instant::now();
    for i in rounds {
        let t0 = Instant::now();
        round(i);
        hist.record((t0.elapsed().as_nanos() as u64).max(1))
            .expect("in range");
    }
    Row {
        setup: setup.into(),
        mode: "-",
        lane,
        threads: 1,
        calls_per_s: count as f64 / start.elapsed().as_secs_f64(),
        hist: Some(hist),
        wrong: 0,
    }
}

/// The event lane's baseline: a bare atomic relay host -> A -> B -> host over three
/// threads, which is the path an event takes (host -> worker -> event thread -> host
/// listener). The relays wait as the runtime's idle threads do (spin, then
/// `sched_yield` between polls) and the host as the event lane does, so on a machine
/// with fewer cores than three this row shows what sharing a core costs by itself. It
/// is a baseline rather than a strict floor: the runtime's event thread parks when idle
/// and can beat it.
fn relay_floor(rounds: u64) -> Row {
    let stage = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let relays: Vec<_> = (0..2)
        .map(|hop| {
            let stage = stage.clone();
            std::thread::spawn(move || {
                for i in 1..=rounds {
                    let ready = || stage[hop].load(Ordering::Acquire) == i;
                    if !wait_spinning(64, ready) {
                        fail_hard("relay floor: a hop never came");
                    }
                    stage[hop + 1].store(i, Ordering::Release);
                }
            })
        })
        .collect();
    let row = timed_rounds("event relay", "relay", 1..rounds + 1, |i| {
        stage[0].store(i, Ordering::Release);
        if !wait_spinning(256, || stage[2].load(Ordering::Acquire) == i) {
            fail_hard("relay floor: the round never came back");
        }
    });
    for r in relays {
        r.join().expect("relay thread");
    }
    row
}

// ---- the event lane ------------------------------------------------------------------

/// The time base of `stamp_ns`: the host's clock, shared by every thread of this run.
fn now_ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// What the event listener shares with the triggering threads.
struct EventSink {
    base: Instant,
    payload: usize,
    /// Per thread: the newest `seq_no` delivered.
    latest: Vec<AtomicU64>,
    hist: std::sync::Mutex<Histogram<u64>>,
    wrong: AtomicU64,
}

impl EventSink {
    fn deliver(&self, seq_no: u64, stamp_ns: u64, data: &[u8]) {
        let latency = now_ns(self.base).saturating_sub(stamp_ns);
        self.hist
            .lock()
            .unwrap()
            .record(latency.max(1))
            .expect("in range");
        if data.len() != self.payload || data.iter().any(|&b| b != seq_no as u8) {
            self.wrong.fetch_add(1, Ordering::Relaxed);
        }
        let thread = (seq_no >> 40) as usize;
        match self.latest.get(thread) {
            Some(slot) => slot.store(seq_no, Ordering::Release),
            None => {
                self.wrong.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

unsafe extern "C" fn ping_native(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: `ud` is the lane's `EventSink`, alive until the listener is removed.
    let sink = unsafe { &*(ud as *const EventSink) };
    if ret != 0 || len != std::mem::size_of::<PerfPing>() {
        sink.wrong.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // SAFETY: a native listener's msg is the event's C struct, valid during the call.
    let ev = unsafe { &*(msg as *const PerfPing) };
    let data = if ev.data_len == 0 {
        &[][..]
    } else {
        // SAFETY: `data` points to `data_len` bytes for the duration of the call.
        unsafe { std::slice::from_raw_parts(ev.data, ev.data_len) }
    };
    sink.deliver(ev.seq_no, ev.stamp_ns, data);
}

unsafe extern "C" fn ping_cbor(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: as for `ping_native`.
    let sink = unsafe { &*(ud as *const EventSink) };
    // SAFETY: msg holds len bytes during the call.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    match (ret, decode_ping(bytes)) {
        (0, Some((seq_no, stamp_ns, data))) => sink.deliver(seq_no, stamp_ns, data),
        _ => {
            sink.wrong.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Reads one CBOR head at `*pos`: (major type, argument).
fn cbor_read_head(b: &[u8], pos: &mut usize) -> Option<(u8, u64)> {
    let first = *b.get(*pos)?;
    *pos += 1;
    let (major, info) = (first >> 5, first & 0x1f);
    let n = match info {
        0..=23 => return Some((major, info as u64)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let bytes = b.get(*pos..*pos + n)?;
    *pos += n;
    Some((major, bytes.iter().fold(0, |v, &x| v << 8 | x as u64)))
}

/// `{"seq_no": u, "stamp_ns": u, "data": bstr}` in any key order.
fn decode_ping(b: &[u8]) -> Option<(u64, u64, &[u8])> {
    let mut pos = 0;
    let (major, n) = cbor_read_head(b, &mut pos)?;
    if major != 5 {
        return None;
    }
    let (mut seq, mut stamp, mut data) = (None, None, None);
    for _ in 0..n {
        let (kmaj, klen) = cbor_read_head(b, &mut pos)?;
        if kmaj != 3 {
            return None;
        }
        let key = b.get(pos..pos + klen as usize)?;
        pos += klen as usize;
        let (vmaj, v) = cbor_read_head(b, &mut pos)?;
        match (key, vmaj) {
            (b"seq_no", 0) => seq = Some(v),
            (b"stamp_ns", 0) => stamp = Some(v),
            (b"data", 2) => {
                data = Some(b.get(pos..pos + v as usize)?);
                pos += v as usize;
            }
            _ => return None,
        }
    }
    Some((seq?, stamp?, data?))
}

unsafe extern "C" fn trigger_done(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: `ud` is the lane's `EventSink`.
    let sink = unsafe { &*(ud as *const EventSink) };
    // The answer: how many events were queued (1 each time here).
    // SAFETY: msg holds len bytes during the call.
    let ok = ret == 0 && len == 4 && unsafe { msg.cast::<u32>().read_unaligned() } == 1;
    if !ok {
        sink.wrong.fetch_add(1, Ordering::Relaxed);
    }
}

/// The nim-ffi harness's event lane: each thread triggers one `on_perf_ping` of
/// `payload` bytes stamped with the host's clock and waits until its listener has it;
/// the listener records the delivery latency (stamp to listener).
fn run_events(api: &Api, ctx: Ctx, cbor: bool, threads: usize, events: u64, payload: usize) -> Row {
    let sink = EventSink {
        base: Instant::now(),
        payload,
        latest: (0..threads).map(|_| AtomicU64::new(u64::MAX)).collect(),
        hist: std::sync::Mutex::new(histogram()),
        wrong: AtomicU64::new(0),
    };
    let ud = &sink as *const EventSink as *mut c_void;
    // SAFETY: a live context; `sink` outlives the listener (removed below).
    let listener = unsafe {
        if cbor {
            (api.add_ping_listener_cbor)(ctx, ping_cbor, ud)
        } else {
            (api.add_ping_listener)(ctx, ping_native, ud)
        }
    };
    if listener == 0 {
        fail_hard("adding the listener failed");
    }
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (ctx, sink) = (ctx as usize, &sink);
            s.spawn(move || {
                for i in 0..events {
                    let seq_base = (t as u64) << 40 | i;
                    let args = TriggerPingArgs {
                        count: 1,
                        payload_bytes: payload as u32,
                        stamp_ns: now_ns(sink.base),
                        seq_base,
                    };
                    let ud = sink as *const EventSink as *mut c_void;
                    // SAFETY: valid args; `sink` outlives the call's callback.
                    let rc = unsafe { (api.trigger_ping)(ctx as Ctx, trigger_done, ud, &args) };
                    if rc != 0 {
                        sink.wrong.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // An event crosses two runtime threads (worker, event thread), so
                    // with more threads than cores a waiter that spins long holds off
                    // the very thread it waits for: spin briefly, then yield.
                    if !wait_spinning(256, || sink.latest[t].load(Ordering::Acquire) == seq_base) {
                        eprintln!("latency-driver: an event never came");
                        std::process::exit(1);
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    // SAFETY: a live context and a listener it returned.
    if unsafe { (api.remove_listener)(ctx, listener) } != 0 {
        fail_hard("removing the listener failed");
    }
    let hist = sink.hist.lock().unwrap().clone();
    Row {
        setup: format!("event {payload} B"),
        mode: if cbor { "cbor" } else { "native" },
        lane: "event",
        threads,
        calls_per_s: (events * threads as u64) as f64 / elapsed,
        hist: Some(hist),
        wrong: sink.wrong.load(Ordering::Relaxed),
    }
}

/// nim-ffi's event delivery figures (events/s, p50 µs), 512 B payloads.
fn nim_ffi_events(threads: usize) -> Option<(f64, Option<f64>)> {
    Some(match threads {
        1 => (42_600.0, Some(17.7)),
        2 => (69_800.0, Some(31.5)),
        4 => (86_000.0, Some(38.9)),
        _ => return None,
    })
}

/// nim-ffi's figure for a row (calls/s, p50 µs), from `../shared/anchors.md`.
fn nim_ffi(setup: Setup, lane: &str, threads: usize) -> Option<(f64, Option<f64>)> {
    let sync = lane == "sync";
    Some(match (setup, sync, threads) {
        (Setup::Scalar, true, 1) => (76_800.0, Some(13.6)),
        (Setup::Scalar, true, 2) => (114_000.0, Some(13.3)),
        (Setup::Scalar, true, 4) => (143_000.0, Some(23.3)),
        (Setup::Scalar, false, 1) => (66_700.0, None),
        (Setup::Scalar, false, 2) => (62_800.0, None),
        (Setup::Scalar, false, 4) => (58_200.0, None),
        (Setup::Payload(64), true, 1) => (76_600.0, Some(11.1)),
        (Setup::Payload(512), true, 1) => (66_800.0, Some(15.3)),
        (Setup::Payload(4096), true, 1) => (31_000.0, Some(32.3)),
        (Setup::Payload(65536), true, 1) => (3_100.0, Some(318.0)),
        (Setup::Payload(64), false, 1) => (63_400.0, None),
        (Setup::Payload(512), false, 1) => (60_000.0, None),
        (Setup::Payload(4096), false, 1) => (34_100.0, None),
        (Setup::Payload(65536), false, 1) => (3_190.0, None),
        _ => return None,
    })
}

struct Knobs {
    calls: u64,
    threads: Vec<usize>,
    setups: Vec<Setup>,
    modes: Vec<bool>,
    lanes: Vec<String>,
    ring: Option<u32>,
    ring_kind: Option<u32>,
    spin_ns: Option<u32>,
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn knobs() -> Knobs {
    let setups = env_list(
        "FFID_DRIVER_SETUPS",
        "scalar,payload64,payload512,payload4096,payload65536",
    )
    .iter()
    .map(|s| match s.as_str() {
        "scalar" => Setup::Scalar,
        p => Setup::Payload(
            p.strip_prefix("payload")
                .and_then(|n| n.parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or_else(|| fail_hard(&format!("unknown setup {p}"))),
        ),
    })
    .collect();
    Knobs {
        calls: env_num("FFID_DRIVER_CALLS").unwrap_or(200_000),
        threads: env_list("FFID_DRIVER_THREADS", "1,2,4")
            .iter()
            .map(|t| {
                t.parse()
                    .unwrap_or_else(|_| fail_hard("FFID_DRIVER_THREADS: numbers"))
            })
            .collect(),
        setups,
        modes: env_list("FFID_DRIVER_MODES", "native,cbor")
            .iter()
            .map(|m| m == "cbor")
            .collect(),
        lanes: env_list("FFID_DRIVER_LANES", "sync,async,event"),
        ring: env_num("FFID_DRIVER_RING"),
        ring_kind: env_num("FFID_DRIVER_RING_KIND"),
        spin_ns: env_num("FFID_DRIVER_SPIN_NS"),
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn print_row(r: &Row, floor_p50: u64, nim: Option<(f64, Option<f64>)>) {
    let (p50, p90, p99, p999) = match &r.hist {
        Some(h) => (
            format!("{:.2}", us(h.value_at_quantile(0.5))),
            format!("{:.2}", us(h.value_at_quantile(0.9))),
            format!("{:.2}", us(h.value_at_quantile(0.99))),
            format!("{:.2}", us(h.value_at_quantile(0.999))),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    let ratio = r
        .hist
        .as_ref()
        .map(|h| format!("{:.2}x", h.value_at_quantile(0.5) as f64 / floor_p50 as f64))
        .unwrap_or_else(|| "-".into());
    let nim_text = match nim {
        Some((rate, _)) => format!("{:>8.0}/s  {:>6.0}x", rate, r.calls_per_s / rate),
        None => String::new(),
    };
    println!(
        "{:<16} {:<6} {:<9} {:>2} {:>12.0} {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
        r.setup, r.mode, r.lane, r.threads, r.calls_per_s, p50, p90, p99, p999, ratio, nim_text
    );
    let q = |q: f64| {
        r.hist
            .as_ref()
            .map(|h| h.value_at_quantile(q).to_string())
            .unwrap_or_default()
    };
    println!(
        "csv,{},{},{},{},{:.0},{},{},{},{},{},{}",
        r.setup,
        r.mode,
        r.lane,
        r.threads,
        r.calls_per_s,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        floor_p50,
        nim.map(|(rate, _)| format!("{rate:.0}"))
            .unwrap_or_default()
    );
}

fn main() {
    let knobs = knobs();
    let lib = std::env::var("FFID_DRIVER_LIB").unwrap_or_else(|_| {
        let exe = std::env::current_exe().expect("own path");
        exe.with_file_name("libecho.so")
            .to_string_lossy()
            .into_owned()
    });
    let api = load(&lib);

    println!(
        "{:<16} {:<6} {:<9} {:>2} {:>12} {:>8} {:>8} {:>8} {:>8} {:>7}  nim-ffi (calls/s, ours as a multiple)",
        "setup", "mode", "lane", "th", "calls/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "p50/fl"
    );
    // The floor first: before any context (and its worker) exists.
    let fl = floor(knobs.calls.max(10_000));
    let floor_p50 = p50_ns(&fl);
    print_row(&fl, floor_p50, None);

    let mut wrong = 0;
    for &setup in &knobs.setups {
        let calls = match setup {
            Setup::Scalar => knobs.calls,
            Setup::Payload(n) => (knobs.calls * 64 / n.max(64) as u64).max(200),
        };
        for &cbor in &knobs.modes {
            for lane in knobs.lanes.iter().filter(|l| *l != "event") {
                for &threads in &knobs.threads {
                    // A fresh context per row, so that no row inherits another's state,
                    // and an unmeasured warm-up, so that the scheduler has placed the new
                    // worker thread (on 2 cores it may start beside its host thread).
                    let ctx = make_context(&api, &knobs);
                    run_sync(&api, ctx, setup, cbor, threads, (calls / 10).max(100));
                    let row = match lane.as_str() {
                        "sync" => run_sync(&api, ctx, setup, cbor, threads, calls),
                        "async" => run_async(&api, ctx, setup, cbor, threads, calls),
                        other => fail_hard(&format!("unknown lane {other}")),
                    };
                    // SAFETY: a live context, no call in flight.
                    if unsafe { (api.destroy)(ctx) } != 0 {
                        fail_hard("echo_destroy failed");
                    }
                    wrong += row.wrong;
                    let nim = if cbor {
                        None
                    } else {
                        nim_ffi(setup, lane, threads)
                    };
                    print_row(&row, floor_p50, nim);
                }
            }
        }
    }
    if knobs.lanes.iter().any(|l| l == "event") {
        // Event rows take their p50/fl against the relay: an event crosses three
        // threads where a call crosses two.
        let relay = relay_floor((knobs.calls / 4).max(1_000));
        print_row(&relay, floor_p50, None);
        let relay_p50 = p50_ns(&relay);
        for &cbor in &knobs.modes {
            for &threads in &knobs.threads {
                let ctx = make_context(&api, &knobs);
                let events = knobs.calls / 4;
                run_events(&api, ctx, cbor, threads, (events / 10).max(100), 512);
                let row = run_events(&api, ctx, cbor, threads, events.max(100), 512);
                // SAFETY: a live context, no call in flight.
                if unsafe { (api.destroy)(ctx) } != 0 {
                    fail_hard("echo_destroy failed");
                }
                wrong += row.wrong;
                let nim = if cbor { None } else { nim_ffi_events(threads) };
                print_row(&row, relay_p50, nim);
            }
        }
    }
    if wrong > 0 {
        eprintln!("WRONG: {wrong} replies were wrong or missing");
        std::process::exit(1);
    }
    println!("OK: every reply verified");
}
