//! `echo`: the example library whose fixed C ABI the C host tests drive.
//!
//! Everything below is ordinary Rust; `#[ffi_dispatch::library]` turns the `impl` block
//! into the exports of `include/echo.h` (native and CBOR), the args structs, the method
//! table and the descriptor the header and `echo.cddl` are generated from.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use ffi_dispatch::rt::events::Sink;
use ffi_dispatch::Deferred;

/// The nim-ffi perf harness's event: sequence number, the host's timestamp, a payload.
#[derive(ffi_dispatch::Record, Clone, Debug, PartialEq)]
pub struct PerfPing {
    /// 0, 1, 2, ... within one `trigger_ping` call, plus its `seq_base`.
    pub seq_no: u64,
    /// The `stamp_ns` the host passed to `trigger_ping`.
    pub stamp_ns: u64,
    /// `payload_bytes` bytes, each `seq_no as u8`.
    pub data: Vec<u8>,
}

/// One context's state.
pub struct Echo {
    prefix: String,
    calls: Cell<u64>,
}

/// Echoes text back, checks the nim-ffi benchmark predicates, and misbehaves on request.
#[ffi_dispatch::library(name = "echo")]
impl Echo {
    /// The longest prefix `create` is meant for, in bytes (not enforced).
    #[ffi]
    pub const MAX_PREFIX: u32 = 64;
    /// A negative constant, for the C tests.
    #[ffi]
    pub const LOWEST: i32 = -7;
    /// A float constant, for the C tests.
    #[ffi]
    pub const RATIO: f64 = 0.25;
    /// A bool constant, for the C tests.
    #[ffi]
    pub const STRICT: bool = true;
    /// A text constant that needs escaping in C.
    #[ffi]
    pub const GREETING: &str = "h\u{e9}llo \"C\"\n";

    /// Creates a context whose `shout` answers start with `prefix`.
    #[ffi(ctor)]
    pub fn create(prefix: &str) -> Echo {
        Echo {
            prefix: prefix.to_owned(),
            calls: Cell::new(0),
        }
    }

    /// `"<prefix>: <TEXT>"`, ASCII upper-cased.
    #[ffi]
    pub fn shout(&self, text: &str) -> String {
        self.tick();
        format!("{}: {}", self.prefix, text.to_ascii_uppercase())
    }

    /// The nim-ffi perf predicate: `((a + b + (int64_t)x) & 1) == 0`, x truncated
    /// toward zero.
    #[ffi]
    pub fn scalar_check(&self, a: i64, b: i64, x: f64) -> bool {
        self.tick();
        predicate(a, b, x)
    }

    /// The predicate on (first byte, last byte, length), (0, 0, 0.0) when empty. The
    /// bytes are not walked.
    #[ffi]
    pub fn payload_check(&self, data: &[u8]) -> bool {
        self.tick();
        match (data.first(), data.last()) {
            (Some(&first), Some(&last)) => predicate(first as i64, last as i64, data.len() as f64),
            _ => predicate(0, 0, 0.0),
        }
    }

    /// How many calls this context handled before this one (the constructor not counted).
    #[ffi]
    pub fn count(&self) -> u64 {
        self.tick()
    }

    /// Sleeps on the worker thread.
    #[ffi]
    pub fn sleep(&self, ms: u32) {
        self.tick();
        std::thread::sleep(std::time::Duration::from_millis(ms as u64));
    }

    /// Never OK: answers FFID_RET_ERR with `message` ("unknown error" if empty).
    #[ffi]
    pub fn fail(&self, message: &str) -> Result<(), String> {
        self.tick();
        Err(message.to_owned())
    }

    /// The sum of the bytes, computed on the calling thread: no context, no queue.
    #[ffi(inline)]
    pub fn byte_sum(data: &[u8]) -> u64 {
        data.iter().map(|&b| b as u64).sum()
    }

    /// Never OK: panics on the calling thread, answered FFID_RET_ERR "handler
    /// panicked: ..." before the call returns.
    #[ffi(inline)]
    pub fn panic_inline() -> bool {
        panic!("echo was asked to panic inline");
    }

    /// Never OK: the handler panics, answered FFID_RET_ERR "handler panicked: ...".
    #[ffi]
    pub fn panic(&self) {
        self.tick();
        panic!("echo was asked to panic");
    }

    /// Emits `count` `on_perf_ping` events numbered `seq_base`, `seq_base + 1`, ...,
    /// each carrying `stamp_ns` and `payload_bytes` bytes. Answers how many were queued
    /// (fewer when the event ring dropped some; all of them when nobody listens). Fails
    /// for more than 100000 events or 1 MiB payloads.
    #[ffi]
    pub fn trigger_ping(
        &self,
        count: u32,
        payload_bytes: u32,
        stamp_ns: u64,
        seq_base: u64,
    ) -> Result<u32, String> {
        self.tick();
        if count > 100_000 || payload_bytes > 1 << 20 {
            return Err(format!(
                "{count} events of {payload_bytes} bytes is too many"
            ));
        }
        Ok((0..count as u64)
            .filter(|i| {
                let seq_no = seq_base.wrapping_add(*i);
                Echo::on_perf_ping(PerfPing {
                    seq_no,
                    stamp_ns,
                    data: vec![seq_no as u8; payload_bytes as usize],
                })
                .is_ok()
            })
            .count() as u32)
    }

    /// Emits `count` (at most 100000) `on_perf_ping` events (no payload) from a thread of
    /// the library's own, then answers (deferred, from that thread) how many were queued.
    #[ffi]
    pub fn ping_from_thread(&self, count: u32, reply: Deferred<u32>) {
        self.tick();
        let count = count.min(100_000);
        let sink = Sink::current().expect("handlers run bound to their context");
        std::thread::spawn(move || {
            let _bound = sink.enter();
            let queued = (0..count as u64)
                .filter(|&seq_no| {
                    Echo::on_perf_ping(PerfPing {
                        seq_no,
                        stamp_ns: 0,
                        data: Vec::new(),
                    })
                    .is_ok()
                })
                .count() as u32;
            reply.complete(&queued);
        });
    }

    /// Answers `text` after `ms` milliseconds, from another thread (a deferred reply):
    /// the worker serves other calls meanwhile.
    #[ffi]
    pub fn echo_later(&self, text: &str, ms: u32, reply: Deferred<String>) {
        self.tick();
        let text = text.to_owned();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(ms as u64));
            reply.complete(&text);
        });
    }

    /// Takes the reply token and drops it: answered FFID_RET_ERR "reply dropped".
    #[ffi]
    pub fn drop_reply(&self, reply: Deferred<()>) {
        self.tick();
        drop(reply);
    }

    /// Answers `text` after `ms` milliseconds, as an async handler: the worker serves
    /// other calls while it waits (a timer thread wakes it).
    #[ffi]
    pub async fn echo_after(&self, text: String, ms: u32) -> String {
        self.tick();
        Sleep::new(std::time::Duration::from_millis(ms as u64)).await;
        text
    }

    /// Yields to the worker `n` times (each time its waker queues it behind the requests
    /// that arrived meanwhile), then answers `n`. Fails for `n` > 1000000.
    #[ffi]
    pub async fn yield_times(&self, n: u32) -> Result<u32, String> {
        self.tick();
        if n > 1_000_000 {
            return Err(format!("{n} yields is too many"));
        }
        for _ in 0..n {
            YieldNow(false).await;
        }
        Ok(n)
    }

    /// A perf-harness event (see `trigger_ping`).
    #[ffi(event)]
    fn on_perf_ping(evt: PerfPing);

    fn tick(&self) -> u64 {
        let before = self.calls.get();
        self.calls.set(before + 1);
        before
    }
}

/// A timer future: a thread sleeps, then wakes the task (no runtime needed).
struct Sleep {
    state: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl Sleep {
    fn new(d: std::time::Duration) -> Sleep {
        let state = Arc::new(Mutex::new((false, None::<Waker>)));
        let timer = state.clone();
        std::thread::spawn(move || {
            std::thread::sleep(d);
            let mut s = timer.lock().unwrap_or_else(|e| e.into_inner());
            s.0 = true;
            if let Some(w) = s.1.take() {
                w.wake();
            }
        });
        Sleep { state }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Pending once, waking itself at once: a cooperative yield.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn predicate(a: i64, b: i64, x: f64) -> bool {
    // `as` truncates toward zero (and saturates), like nim's int64(x); wrapping keeps
    // extreme inputs an answer rather than an overflow panic.
    (a.wrapping_add(b).wrapping_add(x as i64) & 1) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffi_dispatch::Library;

    #[test]
    fn method_ids_match_the_header_order() {
        let names: Vec<&str> = Echo::METHODS.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "shout",
                "scalar_check",
                "payload_check",
                "count",
                "sleep",
                "fail",
                "panic",
                "trigger_ping",
                "ping_from_thread",
                "echo_later",
                "drop_reply",
                "echo_after",
                "yield_times"
            ]
        );
    }

    #[test]
    fn predicate_matches_nim_ffi() {
        assert!(predicate(1, 1, 0.0));
        assert!(!predicate(1, 2, 0.0));
        assert!(predicate(1, 2, 1.9), "1.9 truncates to 1");
        assert!(
            !predicate(0, 0, -1.5),
            "-1.5 truncates toward zero, to -1: odd"
        );
        assert!(
            predicate(i64::MAX, 1, f64::NAN),
            "wraps to i64::MIN and NaN saturates to 0: even, no panic"
        );
    }
}
