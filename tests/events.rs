//! Events through the generated exports of `Lab` (`tests/support/lab.rs`): the three
//! listener views, emission order, removal (from other threads and from inside a
//! callback), full-ring policies, the stuck-listener diagnostic, library threads, and
//! destroy.

mod support;

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ffi_dispatch::{EmitError, EventPolicy, HostFn, Options, RET_OK};
use support::lab::*;

/// A listener's state, alive for the rest of the process: a failing test unwinds
/// while the listener may still run.
fn leak<T: Send + Sync + 'static>(v: T) -> &'static T {
    // Owned by a static, so leak checkers (LSan, Miri) see it as reachable.
    static KEPT: std::sync::Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>> =
        std::sync::Mutex::new(Vec::new());
    let kept = Arc::new(v);
    // SAFETY: the `Arc` in `KEPT` keeps the value alive, unmoved and shared, for the
    // rest of the process.
    let v: &'static T = unsafe { &*Arc::as_ptr(&kept) };
    KEPT.lock().unwrap().push(kept);
    v
}

fn ud_of<T>(v: &'static T) -> *mut c_void {
    v as *const T as *mut c_void
}

fn decode_note(cbor: &[u8]) -> Note {
    use ffi_dispatch::rt::cbor::FromCbor;
    Note::decode(&mut minicbor::Decoder::new(cbor)).expect("a Note")
}

#[test]
fn every_view_gets_every_event_in_emission_order() {
    let ctx = lab(Options::default());
    let (native, cbor, all, call) = (Log::new(), Log::new(), Log::new(), Log::new());
    let ids = [
        lab_add_on_note_listener(ctx, RECORD, native.ud()),
        lab_add_on_note_listener_cbor(ctx, RECORD, cbor.ud()),
        lab_add_event_listener(ctx, RECORD, all.ud()),
    ];
    assert!(ids.iter().all(|&id| id != 0));
    assert_eq!(emit(ctx, &call, 5, c"x"), RET_OK);
    assert_eq!(call.wait_len(1)[0].u32(), 5, "5 queued");

    // Native: the C mirror, laid out by the runtime; read as a host would.
    let got = native.wait_len(5);
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.ret, RET_OK);
        assert_eq!(e.msg.len(), std::mem::size_of::<NoteC>());
        assert!(
            e.thread.ends_with("-ev"),
            "delivered on the event thread: {}",
            e.thread
        );
        // The bytes were copied out of the callback, so read the scalar field only.
        let seq = u64::from_ne_bytes(e.msg[..8].try_into().unwrap());
        assert_eq!(seq, i as u64);
    }
    // CBOR: the record's map.
    let got = cbor.wait_len(5);
    let notes: Vec<Note> = got.iter().map(|e| decode_note(&e.msg)).collect();
    let want: Vec<Note> = (0..5)
        .map(|seq| Note {
            seq,
            tag: "x".into(),
        })
        .collect();
    assert_eq!(notes, want);
    // Envelope: every event (5 notes then the count), named.
    let got = all.wait_len(6);
    for (i, e) in got.iter().enumerate() {
        let mut d = minicbor::Decoder::new(&e.msg);
        assert_eq!(d.map().unwrap(), Some(2));
        assert_eq!(d.str().unwrap(), "event");
        let name = d.str().unwrap();
        assert_eq!(d.str().unwrap(), "payload");
        let rest = &e.msg[d.position()..];
        if i < 5 {
            assert_eq!(name, "on_note");
            assert_eq!(decode_note(rest).seq, i as u64);
        } else {
            assert_eq!(name, "on_count");
            assert_eq!(minicbor::decode::<u64>(rest).unwrap(), 5);
        }
    }
    let s = stats(ctx);
    assert_eq!((s.events_emitted, s.events_dropped), (6, 0));
    assert_eq!(s.events_delivered, 5 + 5 + 6);
    assert_eq!(lab_destroy(ctx), RET_OK);
}

#[test]
fn bad_listener_requests_are_refused() {
    let ctx = lab(Options::default());
    let log = Log::new();
    assert_eq!(
        lab_add_on_note_listener(ctx, None, log.ud()),
        0,
        "null callback"
    );
    assert_eq!(
        lab_add_event_listener(std::ptr::null_mut(), RECORD, log.ud()),
        0
    );
    assert_eq!(lab_remove_listener(ctx, 12345), ffi_dispatch::RET_ERR);
    let id = lab_add_on_count_listener(ctx, RECORD, log.ud());
    assert_eq!(lab_remove_listener(ctx, id), RET_OK);
    assert_eq!(lab_remove_listener(ctx, id), ffi_dispatch::RET_ERR, "twice");
    assert_eq!(lab_destroy(ctx), RET_OK);
    assert_eq!(
        lab_add_event_listener(ctx, RECORD, log.ud()),
        0,
        "destroyed"
    );
    assert_eq!(lab_remove_listener(ctx, id), ffi_dispatch::RET_CLOSED);
    // SAFETY: the runtime's thread-local text, NUL-terminated, read before this
    // thread's next refusal.
    let why = unsafe { std::ffi::CStr::from_ptr(ffi_dispatch::rt::last_error()) };
    assert!(why.to_str().unwrap().contains("destroyed"), "{why:?}");
}

/// A listener that is inside its callback for a while; remove from another thread must
/// wait for it to leave, and it is never called after.
struct Slow {
    inside: AtomicBool,
    calls: AtomicU64,
}

unsafe extern "C" fn slow(_: c_int, _: *const c_char, _: usize, ud: *mut c_void) {
    // SAFETY: `ud` is a `Slow` the test keeps alive.
    let s = unsafe { &*(ud as *const Slow) };
    s.inside.store(true, Ordering::SeqCst);
    s.calls.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(30));
    s.inside.store(false, Ordering::SeqCst);
}

#[test]
fn once_remove_returns_the_listener_is_never_called_again() {
    let ctx = lab(Options::default());
    let s = leak(Slow {
        inside: AtomicBool::new(false),
        calls: AtomicU64::new(0),
    });
    let id = lab_add_on_note_listener(ctx, Some(slow), ud_of(s));
    let call = Log::new();
    assert_eq!(emit(ctx, &call, 20, c"slow"), RET_OK);
    while !s.inside.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    assert_eq!(lab_remove_listener(ctx, id), RET_OK);
    assert!(
        !s.inside.load(Ordering::SeqCst),
        "remove waited for the call in progress"
    );
    let after = s.calls.load(Ordering::SeqCst);
    assert!(after < 20, "removed before the last of 20 slow events");
    // Everything queued is delivered to the others; this one stays silent.
    let marker = Log::new();
    lab_add_on_count_listener(ctx, RECORD, marker.ud());
    assert_eq!(emit(ctx, &call, 3, c"more"), RET_OK);
    marker.wait_len(1);
    assert_eq!(s.calls.load(Ordering::SeqCst), after);
    assert_eq!(lab_destroy(ctx), RET_OK);
}

/// A listener that removes itself and adds a replacement, from its callback.
struct Relay {
    ctx: AtomicU64,
    own_id: AtomicU64,
    calls: AtomicU64,
    next: Arc<Log>,
}

unsafe extern "C" fn relay(_: c_int, _: *const c_char, _: usize, ud: *mut c_void) {
    // SAFETY: `ud` is a `Relay` the test keeps alive.
    let r = unsafe { &*(ud as *const Relay) };
    r.calls.fetch_add(1, Ordering::SeqCst);
    let ctx = r.ctx.load(Ordering::SeqCst) as *mut ffi_dispatch::ffid_ctx;
    assert_eq!(
        lab_remove_listener(ctx, r.own_id.load(Ordering::SeqCst)),
        RET_OK
    );
    assert_ne!(lab_add_on_note_listener(ctx, RECORD, r.next.ud()), 0);
    // A call from the event thread never blocks and destroy is refused here.
    assert_eq!(lab_destroy(ctx), ffi_dispatch::RET_BUSY);
}

#[test]
fn a_listener_can_remove_itself_and_add_another_from_its_callback() {
    let ctx = lab(Options::default());
    let r = leak(Relay {
        ctx: AtomicU64::new(ctx as u64),
        own_id: AtomicU64::new(0),
        calls: AtomicU64::new(0),
        next: Log::new(),
    });
    // A listener for the whole test: the context never has none, so every event is
    // queued (with none at all, an emit is dropped at once) and reaches whoever listens
    // when it is delivered.
    let all = Log::new();
    lab_add_event_listener(ctx, RECORD, all.ud());
    let id = lab_add_on_note_listener(ctx, Some(relay), ud_of(r));
    r.own_id.store(id, Ordering::SeqCst);
    let call = Log::new();
    assert_eq!(emit(ctx, &call, 4, c"r"), RET_OK);
    // The replacement sees the events after the first (added during event 0).
    let got = r.next.wait_len(3);
    let seqs: Vec<u64> = got
        .iter()
        .map(|e| u64::from_ne_bytes(e.msg[..8].try_into().unwrap()))
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(
        r.calls.load(Ordering::SeqCst),
        1,
        "removed itself after one call"
    );
    assert_eq!(lab_destroy(ctx), RET_OK);
}

/// Blocks the event thread until released.
struct Gate(AtomicBool);

unsafe extern "C" fn gated(_: c_int, _: *const c_char, _: usize, ud: *mut c_void) {
    // SAFETY: `ud` is a `Gate` the test keeps alive.
    let g = unsafe { &*(ud as *const Gate) };
    while !g.0.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_full_event_ring_drops_newest_and_counts_or_blocks_the_emitter() {
    for policy in [EventPolicy::DropNewest, EventPolicy::Block] {
        let ctx = lab(Options {
            event_ring_capacity: 2,
            event_policy: policy,
            ..Options::default()
        });
        let gate = leak(Gate(AtomicBool::new(false)));
        lab_add_on_note_listener(ctx, Some(gated), ud_of(gate));
        let seen = Log::new();
        lab_add_on_note_listener_cbor(ctx, RECORD, seen.ud());
        let call = Log::new();
        assert_eq!(emit(ctx, &call, 10, c"full"), RET_OK);
        if policy == EventPolicy::DropNewest {
            let queued = call.wait_len(1)[0].u32();
            assert!(queued < 10, "some were dropped ({queued} queued)");
            gate.0.store(true, Ordering::SeqCst);
            let s = stats(ctx);
            assert!(s.events_dropped >= (10 - queued) as u64, "{s:?}");
            seen.wait_len(queued as usize);
        } else {
            // The worker waits for room: no answer while the listener holds the ring.
            std::thread::sleep(Duration::from_millis(50));
            assert!(call.snapshot().is_empty(), "the emitter is blocked");
            gate.0.store(true, Ordering::SeqCst);
            assert_eq!(call.wait_len(1)[0].u32(), 10, "all 10 queued");
            let got = seen.wait_len(10);
            let seqs: Vec<u64> = got.iter().map(|e| decode_note(&e.msg).seq).collect();
            assert_eq!(seqs, (0..10).collect::<Vec<_>>());
            assert_eq!(stats(ctx).events_dropped, 0);
        }
        assert_eq!(lab_destroy(ctx), RET_OK);
    }
}

#[test]
fn a_stuck_listener_is_reported_once() {
    let diag = Log::all();
    let ctx = lab(Options {
        listener_stuck: Some(Duration::from_millis(20)),
        diagnostic: Some(HostFn {
            f: RECORD.unwrap(),
            user_data: diag.ud(),
        }),
        ..Options::default()
    });
    let gate = leak(Gate(AtomicBool::new(false)));
    lab_add_on_count_listener(ctx, Some(gated), ud_of(gate));
    let call = Log::new();
    assert_eq!(emit(ctx, &call, 0, c""), RET_OK);
    let got = diag.wait_len(1);
    assert_eq!(got[0].ret, ffi_dispatch::abi::DIAG_LISTENER_STUCK);
    assert!(
        got[0].text().contains("has been running for"),
        "{}",
        got[0].text()
    );
    assert!(got[0].thread.ends_with("-mon"), "{}", got[0].thread);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(diag.snapshot().len(), 1, "reported once");
    gate.0.store(true, Ordering::SeqCst);
    assert_eq!(lab_destroy(ctx), RET_OK);
}

#[test]
fn library_threads_emit_through_a_sink_until_destroy() {
    let ctx = lab(Options::default());
    let (key, control) = control();
    let call = Log::new();
    assert_eq!(
        // SAFETY: valid args; the log outlives the callback.
        unsafe { lab_keep_sink(ctx, RECORD, call.ud(), &LabKeepSinkArgs { key }) },
        RET_OK
    );
    call.wait_len(1);
    let sink = control.sink.lock().unwrap().clone().expect("a sink");
    assert_eq!(
        emit_through(&sink, 7),
        Ok(()),
        "nobody listens yet: nothing queued"
    );
    let notes = Log::new();
    lab_add_on_note_listener_cbor(ctx, RECORD, notes.ud());
    let emitter = {
        let sink = sink.clone();
        std::thread::spawn(move || (0..100).map(|i| emit_through(&sink, i)).all(|r| r.is_ok()))
    };
    assert!(emitter.join().unwrap());
    let seqs: Vec<u64> = notes
        .wait_len(100)
        .iter()
        .map(|e| decode_note(&e.msg).seq)
        .collect();
    assert_eq!(
        seqs,
        (0..100).collect::<Vec<_>>(),
        "one thread's events stay in order"
    );
    // Unbound threads have no context.
    assert_eq!(
        Lab::on_note_unbound_check(),
        Err(EmitError::NoContext),
        "outside a handler or sink"
    );
    let delivered = notes.snapshot().len();
    assert_eq!(lab_destroy(ctx), RET_OK);
    assert_eq!(emit_through(&sink, 1000), Err(EmitError::Closed));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        notes.snapshot().len(),
        delivered,
        "no listener runs after destroy"
    );
}

impl Lab {
    fn on_note_unbound_check() -> Result<(), EmitError> {
        Lab::on_note(Note {
            seq: 0,
            tag: String::new(),
        })
    }
}

#[test]
fn events_queued_before_destroy_are_delivered_and_none_after() {
    let ctx = lab(Options::default());
    let notes = Log::new();
    lab_add_on_note_listener_cbor(ctx, RECORD, notes.ud());
    let call = Log::new();
    for _ in 0..10 {
        assert_eq!(emit(ctx, &call, 50, c"bulk"), RET_OK);
    }
    assert_eq!(lab_destroy(ctx), RET_OK);
    let n = notes.snapshot().len();
    assert_eq!(
        n, 500,
        "the worker answered all 10 calls, so all 500 events were queued"
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(notes.snapshot().len(), n);
}
