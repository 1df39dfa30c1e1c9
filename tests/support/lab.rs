//! `Lab`: a library whose handlers the test controls (block until released, keep reply
//! tokens, emit events), and `Log`, a callback recorder (`RECORD` + `Log::ud`) any test
//! can pass to any library's exports.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ffi_dispatch::rt::events::Sink;
use ffi_dispatch::{ffid_ctx, Callback, Deferred, Options};

/// How long a test waits for something that should come (Miri interprets the runtime
/// a thousand times slower).
pub const PATIENCE: Duration = Duration::from_secs(if cfg!(miri) { 900 } else { 20 });

/// A test's handle on what its handlers do, found by key (tests run in parallel).
#[derive(Default)]
pub struct Control {
    released: Mutex<bool>,
    changed: Condvar,
    pub tokens: Mutex<Vec<Deferred<u64>>>,
    pub sink: Mutex<Option<Sink>>,
}

impl Control {
    pub fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.changed.notify_all();
    }
    fn wait_released(&self) {
        let mut r = self.released.lock().unwrap();
        let deadline = Instant::now() + PATIENCE;
        while !*r && Instant::now() < deadline {
            r = self
                .changed
                .wait_timeout(r, Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }
}

fn controls() -> &'static Mutex<HashMap<u64, Arc<Control>>> {
    static C: OnceLock<Mutex<HashMap<u64, Arc<Control>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// A fresh control under a unique key.
pub fn control() -> (u64, Arc<Control>) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let key = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let c = Arc::new(Control::default());
    controls().lock().unwrap().insert(key, c.clone());
    (key, c)
}

fn get(key: u64) -> Arc<Control> {
    controls().lock().unwrap()[&key].clone()
}

/// An event payload.
#[derive(ffi_dispatch::Record, Clone, Debug, PartialEq)]
pub struct Note {
    pub seq: u64,
    pub tag: String,
}

pub struct Lab;

#[ffi_dispatch::library(name = "lab")]
impl Lab {
    #[ffi(ctor)]
    fn create() -> Lab {
        Lab
    }

    /// Blocks the worker until the test releases `key`; answers `key`.
    #[ffi]
    fn block(&mut self, key: u64) -> u64 {
        get(key).wait_released();
        key
    }

    /// Answers `x`.
    #[ffi]
    fn echo(&mut self, x: u64) -> u64 {
        x
    }

    /// Keeps the reply token in the control; the test answers it.
    #[ffi]
    fn later(&mut self, key: u64, reply: Deferred<u64>) {
        get(key).tokens.lock().unwrap().push(reply);
    }

    /// Answers through the token at once, on the worker.
    #[ffi]
    fn at_once(&mut self, x: u64, reply: Deferred<u64>) {
        reply.complete(&x);
    }

    /// Drops the token.
    #[ffi]
    fn drop_token(&mut self, reply: Deferred<u64>) {
        drop(reply);
    }

    /// Panics after taking the token.
    #[ffi]
    fn panic_deferred(&mut self, reply: Deferred<u64>) {
        let _keep = reply;
        panic!("deferred handler exploded");
    }

    /// Emits `on_note` `n` times (seq 0..n) tagged `tag`, then `on_count(n)`. Answers
    /// how many `on_note` were queued.
    #[ffi]
    fn emit(&mut self, n: u32, tag: &str) -> u32 {
        let queued = (0..n as u64)
            .filter(|&seq| {
                Lab::on_note(Note {
                    seq,
                    tag: tag.to_owned(),
                })
                .is_ok()
            })
            .count() as u32;
        let _ = Lab::on_count(n as u64);
        queued
    }

    /// Stores a sink for the test to emit from its own thread.
    #[ffi]
    fn keep_sink(&mut self, key: u64) {
        *get(key).sink.lock().unwrap() = Sink::current();
    }

    /// A note happened.
    #[ffi(event)]
    pub fn on_note(evt: Note);

    /// A count.
    #[ffi(event)]
    pub fn on_count(n: u64);
}

/// Emits a note through a sink, from any thread (the test's).
pub fn emit_through(sink: &Sink, seq: u64) -> Result<(), ffi_dispatch::EmitError> {
    let _bound = sink.enter();
    Lab::on_note(Note {
        seq,
        tag: "sink".into(),
    })
}

/// One callback as the recorder saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub ret: c_int,
    pub msg: Vec<u8>,
    pub thread: String,
}

impl Entry {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.msg).into_owned()
    }
    pub fn u32(&self) -> u32 {
        u32::from_ne_bytes(self.msg[..4].try_into().expect("4 bytes"))
    }
    pub fn u64(&self) -> u64 {
        u64::from_ne_bytes(self.msg[..8].try_into().expect("8 bytes"))
    }
}

/// Records every callback made with it.
#[derive(Default)]
pub struct Log {
    pub entries: Mutex<Vec<Entry>>,
    changed: Condvar,
    kept: std::sync::atomic::AtomicBool,
    /// Record `RET_STALE_WARN` pings too (a slow run can ping any call after 5 s).
    pings: bool,
}

unsafe extern "C" fn record(ret: c_int, msg: *const c_char, len: usize, ud: *mut c_void) {
    // SAFETY: `ud` is a `Log` the test keeps alive past every callback made with it.
    let log = unsafe { &*(ud as *const Log) };
    // SAFETY: the runtime passes `len` readable bytes followed by a NUL.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len + 1) };
    assert_eq!(bytes[len], 0, "msg[len] == 0");
    log.push(ret, bytes[..len].to_vec());
}

pub const RECORD: Option<Callback> = Some(record);

impl Log {
    /// A log of terminal callbacks and events (pings are left out).
    pub fn new() -> Arc<Log> {
        Arc::new(Log::default())
    }
    /// A log that records every callback, progress pings (and diagnostics with the same
    /// code) included.
    pub fn all() -> Arc<Log> {
        Arc::new(Log {
            pings: true,
            ..Log::default()
        })
    }
    /// The `user_data` for callbacks into this log. A host must keep `user_data` valid
    /// until the callback has *returned*, which a test cannot observe: the log is kept
    /// for the life of the process instead.
    pub fn ud(self: &Arc<Self>) -> *mut c_void {
        static KEPT: Mutex<Vec<Arc<Log>>> = Mutex::new(Vec::new());
        if !self.kept.swap(true, std::sync::atomic::Ordering::Relaxed) {
            KEPT.lock().unwrap().push(self.clone());
        }
        Arc::as_ptr(self) as *mut c_void
    }
    pub fn push(&self, ret: c_int, msg: Vec<u8>) {
        if ret == ffi_dispatch::RET_STALE_WARN && !self.pings {
            return;
        }
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        self.entries
            .lock()
            .unwrap()
            .push(Entry { ret, msg, thread });
        self.changed.notify_all();
    }
    /// Waits until `pred` holds over the entries (`PATIENCE` at most), and returns them.
    pub fn wait_until(&self, what: &str, pred: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
        let deadline = Instant::now() + PATIENCE;
        let mut e = self.entries.lock().unwrap();
        while !pred(&e) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {e:?}"
            );
            e = self
                .changed
                .wait_timeout(e, Duration::from_millis(20))
                .unwrap()
                .0;
        }
        e.clone()
    }
    pub fn wait_len(&self, n: usize) -> Vec<Entry> {
        self.wait_until(&format!("{n} callbacks"), |e| e.len() >= n)
    }
    pub fn snapshot(&self) -> Vec<Entry> {
        self.entries.lock().unwrap().clone()
    }
}

/// A live `Lab` context with the given options; its create callback is checked.
pub fn lab(options: Options) -> *mut ffid_ctx {
    let created = Log::new();
    let opts = options.to_c();
    // SAFETY: `opts` is a valid options struct; the create callback's log outlives it
    // (waited for below).
    let ctx = unsafe { lab_create_checked(lab_interface_hash(), RECORD, created.ud(), &opts) };
    assert!(!ctx.is_null());
    if options.completion == ffi_dispatch::CompletionMode::Queue {
        // The create callback is queued like every other: drain until it ran.
        let deadline = Instant::now() + PATIENCE;
        while created.snapshot().is_empty() && Instant::now() < deadline {
            lab_drain(ctx, 1);
            std::thread::yield_now();
        }
    }
    assert_eq!(created.wait_len(1)[0].ret, ffi_dispatch::RET_OK);
    ctx
}

/// Native call helpers.
pub fn block(ctx: *mut ffid_ctx, log: &Arc<Log>, key: u64) -> c_int {
    // SAFETY: a valid args struct for the call; the log outlives its callback.
    unsafe { lab_block(ctx, RECORD, log.ud(), &LabBlockArgs { key }) }
}

pub fn echo(ctx: *mut ffid_ctx, log: &Arc<Log>, x: u64) -> c_int {
    // SAFETY: as above.
    unsafe { lab_echo(ctx, RECORD, log.ud(), &LabEchoArgs { x }) }
}

pub fn later(ctx: *mut ffid_ctx, log: &Arc<Log>, key: u64) -> c_int {
    // SAFETY: as above.
    unsafe { lab_later(ctx, RECORD, log.ud(), &LabLaterArgs { key }) }
}

pub fn emit(ctx: *mut ffid_ctx, log: &Arc<Log>, n: u32, tag: &std::ffi::CStr) -> c_int {
    // SAFETY: as above; `tag` is NUL-terminated.
    unsafe {
        lab_emit(
            ctx,
            RECORD,
            log.ud(),
            &LabEmitArgs {
                n,
                tag: tag.as_ptr(),
            },
        )
    }
}

pub fn stats(ctx: *mut ffid_ctx) -> ffi_dispatch::Stats {
    ffi_dispatch::stats(ctx).expect("a live context")
}

/// The counters once `pred` holds (they move just after the callbacks they count have
/// returned), or as they are after 20 s.
pub fn settled_stats(
    ctx: *mut ffid_ctx,
    pred: impl Fn(&ffi_dispatch::Stats) -> bool,
) -> ffi_dispatch::Stats {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = stats(ctx);
        if pred(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::yield_now();
    }
}
