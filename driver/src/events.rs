//! The event lane: `on_perf_ping` triggered from each thread and timed from its stamp to
//! the listener.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::ffi::echo::raw::{
    ffid_entry as Entry, FFID_ENTRY_ANSWER as ENTRY_ANSWER, FFID_ENTRY_EVENT as ENTRY_EVENT,
};
use crate::ffi::{fail_hard, Api, Ctx, PerfPing, TriggerPingArgs};
use crate::lanes::wait_spinning;
use crate::report::{histogram, Row};

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
    /// A sink for `threads` triggering threads' events of `payload` bytes.
    fn new(threads: usize, payload: usize) -> Self {
        EventSink {
            base: Instant::now(),
            payload,
            latest: (0..threads).map(|_| AtomicU64::new(u64::MAX)).collect(),
            hist: std::sync::Mutex::new(histogram()),
            wrong: AtomicU64::new(0),
        }
    }

    /// The lane's row: `events` delivered in `elapsed` seconds, as this sink saw them.
    fn row(
        &self,
        (mode, lane): (&'static str, &'static str),
        threads: usize,
        events: u64,
        elapsed: f64,
    ) -> Row {
        Row {
            setup: format!("event {} B", self.payload),
            mode,
            lane,
            threads,
            calls_per_s: events as f64 / elapsed,
            hist: Some(self.hist.lock().unwrap().clone()),
            wrong: self.wrong.load(Ordering::Relaxed),
        }
    }

    fn deliver(&self, seq_no: u64, stamp_ns: u64, data: &[u8]) {
        self.deliver_at(now_ns(self.base), seq_no, stamp_ns, data);
    }

    /// [`EventSink::deliver`] of an event that reached the host at `arrived_ns`.
    fn deliver_at(&self, arrived_ns: u64, seq_no: u64, stamp_ns: u64, data: &[u8]) {
        let latency = arrived_ns.saturating_sub(stamp_ns);
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

/// `{"seq_no": u, "stamp_ns": u, "data": bstr}` in any key order (the `on_perf_ping`
/// event's CBOR); `None` for anything else.
fn decode_ping(b: &[u8]) -> Option<(u64, u64, &[u8])> {
    let mut d = minicbor::Decoder::new(b);
    let n = d.map().ok()??;
    let (mut seq, mut stamp, mut data) = (None, None, None);
    for _ in 0..n {
        match d.str().ok()? {
            "seq_no" => seq = Some(d.u64().ok()?),
            "stamp_ns" => stamp = Some(d.u64().ok()?),
            "data" => data = Some(d.bytes().ok()?),
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
pub(crate) fn run_events(
    api: &Api,
    ctx: Ctx,
    cbor: bool,
    threads: usize,
    events: u64,
    payload: usize,
) -> Row {
    let sink = EventSink::new(threads, payload);
    let ud = &sink as *const EventSink as *mut c_void;
    // SAFETY: a live context; `sink` outlives the listener (removed below).
    let listener = unsafe {
        if cbor {
            (api.add_on_perf_ping_listener_cbor)(ctx, Some(ping_cbor), ud)
        } else {
            (api.add_on_perf_ping_listener)(ctx, Some(ping_native), ud)
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
                    let rc =
                        unsafe { (api.trigger_ping)(ctx as Ctx, Some(trigger_done), ud, &args) };
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
    let mode = if cbor { "cbor" } else { "native" };
    sink.row((mode, "event"), threads, events * threads as u64, elapsed)
}

// ---- the poll event lane -------------------------------------------------------------

/// The payload of an event entry, `{"event": "on_perf_ping", "payload": <ping>}`.
fn decode_envelope(b: &[u8]) -> Option<&[u8]> {
    let mut d = minicbor::Decoder::new(b);
    if d.map().ok()? != Some(2) || d.str().ok()? != "event" || d.str().ok()? != "on_perf_ping" {
        return None;
    }
    (d.str().ok()? == "payload").then(|| &b[d.position()..])
}

/// The event lane through `<lib>_poll` (`FFID_POLL_EVENTS`): one host thread triggers
/// an `on_perf_ping` and polls the context, spinning (timeout 0), until the event's entry
/// comes; latency is stamp to entry (read as `poll` returns it, before it is decoded). No event thread and no listener: the worker queues
/// the event where the host polls. `ctx` is in completion mode with events polled.
pub(crate) fn run_poll_events(api: &Api, ctx: Ctx, events: u64, payload: usize) -> Row {
    let sink = EventSink::new(1, payload);
    let ud = &sink as *const EventSink as *mut c_void;
    let mut entries = [std::mem::MaybeUninit::<Entry>::uninit(); 8];
    let start = Instant::now();
    for seq_base in 0..events {
        let args = TriggerPingArgs {
            count: 1,
            payload_bytes: payload as u32,
            stamp_ns: now_ns(sink.base),
            seq_base,
        };
        // SAFETY: valid args; the answer comes as an entry (poll never calls the cb).
        if unsafe { (api.trigger_ping)(ctx, Some(trigger_done), ud, &args) } != 0 {
            fail_hard("trigger_ping was refused");
        }
        let (mut event, mut answer) = (false, false);
        while !(event && answer) {
            let first = entries.as_mut_ptr().cast::<Entry>();
            // SAFETY: eight writable entries; the first's struct_size set first.
            let n = unsafe {
                first
                    .cast::<u32>()
                    .write(std::mem::size_of::<Entry>() as u32);
                (api.poll)(ctx, first, entries.len() as u32, 0)
            };
            if n < 0 {
                fail_hard(&format!("poll was refused ({n})"));
            }
            if n == 0 {
                continue;
            }
            // The entries are in the host's hands now: decoding them is the host's time.
            let arrived_ns = now_ns(sink.base);
            for e in &entries[..n as usize] {
                // SAFETY: `n` entries were written in full.
                let e = unsafe { e.assume_init() };
                // SAFETY: the payload holds `len` bytes until the next poll.
                let bytes = unsafe { std::slice::from_raw_parts(e.payload, e.len) };
                match e.kind {
                    ENTRY_EVENT => match decode_envelope(bytes).and_then(decode_ping) {
                        Some((seq_no, stamp_ns, data)) => {
                            sink.deliver_at(arrived_ns, seq_no, stamp_ns, data);
                            event = true;
                        }
                        None => {
                            sink.wrong.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    ENTRY_ANSWER => {
                        // SAFETY: the answer's bytes, as its callback would get them.
                        unsafe { trigger_done(e.status, e.payload.cast(), e.len, ud) };
                        answer = true;
                    }
                    _ => {}
                }
            }
        }
    }
    sink.row(
        ("cbor", "poll ev"),
        1,
        events,
        start.elapsed().as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use super::{decode_envelope, decode_ping};

    #[test]
    fn an_event_entry_unwraps_to_its_ping() {
        // {"event": "on_perf_ping", "payload": {"seq_no": 1, "stamp_ns": 2, "data": h''}}
        let mut b = vec![0xa2, 0x65, b'e', b'v', b'e', b'n', b't', 0x6c];
        b.extend_from_slice(b"on_perf_ping");
        b.extend_from_slice(&[0x67, b'p', b'a', b'y', b'l', b'o', b'a', b'd', 0xa3]);
        b.extend_from_slice(&[0x66, b's', b'e', b'q', b'_', b'n', b'o', 0x01]);
        b.extend_from_slice(&[0x68, b's', b't', b'a', b'm', b'p', b'_', b'n', b's', 0x02]);
        b.extend_from_slice(&[0x64, b'd', b'a', b't', b'a', 0x40]);
        assert_eq!(
            decode_envelope(&b).and_then(decode_ping),
            Some((1, 2, &[][..]))
        );
        b[8] = b'x'; // another event's name
        assert_eq!(decode_envelope(&b), None);
    }

    #[test]
    fn a_ping_decodes_in_any_key_order() {
        // {"data": h'0102', "seq_no": 5, "stamp_ns": 300}
        let mut b = vec![0xa3, 0x64, b'd', b'a', b't', b'a', 0x42, 1, 2];
        b.extend_from_slice(&[0x66, b's', b'e', b'q', b'_', b'n', b'o', 0x05]);
        b.extend_from_slice(&[0x68, b's', b't', b'a', b'm', b'p', b'_', b'n', b's']);
        b.extend_from_slice(&[0x19, 0x01, 0x2c]);
        assert_eq!(decode_ping(&b), Some((5, 300, &[1u8, 2][..])));
        assert_eq!(decode_ping(&b[..b.len() - 1]), None);
        assert_eq!(decode_ping(&[0xa1, 0x61, b'z', 0x00]), None);
        assert_eq!(decode_ping(&[0x80]), None);
    }
}
