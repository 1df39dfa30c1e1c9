//! A Rust host of kv through its generated client (`bindings/rust/kv.rs`): the cdylib
//! loaded at run time, every method blocking and as a future, errors, options,
//! completion mode, many threads, destroy with calls in flight.

#[rustfmt::skip]
#[path = "../bindings/rust/kv.rs"]
mod client;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use client as kv;
use client::{Entry, Error, Kind, Meta};

#[path = "../../../tests/support/cdylib.rs"]
mod cdylib;
use cdylib::cdylib;

fn library() -> kv::Library {
    // SAFETY: the kv cdylib this test run built.
    unsafe { kv::Library::load(cdylib("kv")) }.expect("loading libkv")
}

fn store(lib: &kv::Library) -> kv::Context {
    lib.create("store", None).expect("create")
}

/// Polls `f` to completion on this thread, parking between polls (no executor).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park_timeout(Duration::from_secs(1)),
        }
    }
}

fn entry(key: &str, value: &[u8], kind: Kind) -> Entry {
    Entry {
        key: key.into(),
        value: value.into(),
        kind,
        tags: vec!["a".into(), "b c".into()],
        ttl_ms: Some(500),
        note: Some("n".into()),
        meta: Meta { version: 0, seq: 0 },
    }
}

const T: Option<Duration> = Some(Duration::from_secs(10));

#[test]
#[cfg_attr(miri, ignore)]
fn load_checks_the_file_and_its_interface() {
    // SAFETY: the path does not exist; nothing is loaded.
    let missing = unsafe { kv::Library::load("/nonexistent/libkv.so") };
    assert!(
        matches!(missing, Err(Error::Load(ref m)) if m.contains("cannot load")),
        "{:?}",
        missing.err()
    );
    // Echo is an ffi-dispatch library, but not kv: its exports are not kv's.
    // SAFETY: echo's cdylib; the client resolves kv's exports by name and finds none.
    let echo = unsafe { kv::Library::load(cdylib("echo")) };
    assert!(
        matches!(echo, Err(Error::Load(ref m)) if m.contains("lacks kv_")),
        "{:?}",
        echo.err()
    );
    assert_eq!(kv::MAX_KEY_LEN, 256);
    assert_eq!(kv::PROTOCOL, "kv/1");
    // SAFETY: the export takes nothing.
    assert_eq!(
        unsafe { (library().raw().interface_hash)() },
        kv::INTERFACE_HASH
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn create_waits_for_the_constructor_and_reports_its_error() {
    let lib = library();
    match lib.create("", Some(3)) {
        Err(Error::Failed(m)) => assert_eq!(m, "the store needs a name"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert!(
        matches!(lib.create("a\0b", None), Err(Error::InvalidArgument(m)) if m.contains("name"))
    );
    let s = store(&lib);
    assert_eq!(s.name(T).unwrap(), "store");
    // Bad options are refused before any constructor runs, with the runtime's reason.
    let mut opts = lib.options();
    opts.reserved = 1;
    match lib.create_with_options("x", None, Some(&opts)) {
        Err(Error::Failed(m)) => assert!(!m.is_empty()),
        other => panic!("{:?}", other.map(|_| ())),
    }
    s.destroy().unwrap();
}

#[test]
#[cfg_attr(miri, ignore)]
fn every_method_blocking() {
    let lib = library();
    let s = store(&lib);
    // put: nothing replaced, then the first entry back with its bookkeeping.
    assert_eq!(
        s.put("k", &[1, 2, 3], Kind::Blob, &["t1", "t2"], Some(7), T)
            .unwrap(),
        None
    );
    let old = s
        .put("k", b"new", Kind::Text, &[], None, T)
        .unwrap()
        .unwrap();
    assert_eq!(old.value, [1, 2, 3]);
    assert_eq!(
        (old.kind, old.tags.as_slice(), old.ttl_ms),
        (Kind::Blob, &["t1".to_string(), "t2".into()][..], Some(7))
    );
    assert_eq!(old.meta, Meta { version: 1, seq: 1 });
    // get / find.
    let e = s.get("k", T).unwrap();
    assert_eq!(
        (e.key.as_str(), e.value.as_slice(), e.kind),
        ("k", &b"new"[..], Kind::Text)
    );
    assert_eq!((e.tags.len(), e.ttl_ms, e.note.as_deref()), (0, None, None));
    assert_eq!(e.meta, Meta { version: 2, seq: 2 });
    assert_eq!(s.find("k", T).unwrap(), Some(e.clone()));
    assert_eq!(s.find("none", T).unwrap(), None);
    assert_eq!(
        s.get("none", T),
        Err(Error::Failed("not found: none".into()))
    );
    // put_many: records with every kind of field, in an array.
    let many = [
        entry("m1", b"1", Kind::Text),
        entry("m2", b"", Kind::Blob),
        entry("m3", &[9; 100], Kind::Blob),
    ];
    assert_eq!(s.put_many(&many[..], T).unwrap(), 3);
    let m1 = s.get("m1", T).unwrap();
    assert_eq!(
        (m1.tags, m1.ttl_ms, m1.note),
        (
            vec!["a".to_string(), "b c".into()],
            Some(500),
            Some("n".into())
        )
    );
    assert_eq!(s.put_many(&[], T).unwrap(), 0);
    assert!(
        matches!(s.put_many(&[entry("", b"", Kind::Text)], T), Err(Error::Failed(m)) if m == "keys are 1 to 256 bytes")
    );
    // list with every filter, keys.
    let all: Vec<String> = s
        .list(None, None, None, T)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(all, ["k", "m1", "m2", "m3"]);
    let blobs = s.list(Some("m"), Some(Kind::Blob), Some(1), T).unwrap();
    assert_eq!(blobs.len(), 1);
    assert_eq!((blobs[0].key.as_str(), blobs[0].value.len()), ("m2", 0));
    assert_eq!(s.keys(T).unwrap(), ["k", "m1", "m2", "m3"]);
    // incr: a counter, then errors.
    assert_eq!(s.incr("n", 5, T).unwrap(), 5);
    assert_eq!(s.incr("n", -7, T).unwrap(), -2);
    assert_eq!(
        s.incr("k", 1, T),
        Err(Error::Failed("not a counter: k".into()))
    );
    assert_eq!(s.incr("n", i64::MAX, T).unwrap(), i64::MAX - 2);
    assert_eq!(
        s.incr("n", 3, T),
        Err(Error::Failed("counter overflow".into()))
    );
    // annotate, with and without a note.
    s.annotate("k", Some("hello"), T).unwrap();
    assert_eq!(s.get("k", T).unwrap().note.as_deref(), Some("hello"));
    s.annotate("k", None, T).unwrap();
    assert_eq!(s.get("k", T).unwrap().note, None);
    assert_eq!(
        s.annotate("zz", None, T),
        Err(Error::Failed("not found: zz".into()))
    );
    // usage: a record holding an optional record.
    let u = s.usage(T).unwrap();
    assert_eq!((u.entries, u.bytes), (5, 3 + 1 + 100 + 8));
    assert_eq!(u.largest.map(|e| e.key).as_deref(), Some("m3"));
    // delete.
    assert!(s.delete("m3", T).unwrap());
    assert!(!s.delete("m3", T).unwrap());
    // The static method and the inline export.
    assert_eq!(lib.version(T).unwrap(), "0.1.0");
    assert_eq!(lib.check_key("ok"), Ok(()));
    assert_eq!(
        lib.check_key(""),
        Err(Error::Failed("keys are 1 to 256 bytes".into()))
    );
    assert!(matches!(
        lib.check_key("a\0"),
        Err(Error::InvalidArgument(_))
    ));
    // Text with a NUL byte never reaches the library.
    assert!(matches!(s.get("a\0b", T), Err(Error::InvalidArgument(m)) if m.contains("key")));
    assert!(
        matches!(s.put("k", b"", Kind::Text, &["x\0"], None, T), Err(Error::InvalidArgument(m)) if m.contains("tags"))
    );
    let stats = s.stats().unwrap();
    assert!(
        stats.accepted >= 25 && stats.completed == stats.accepted,
        "{stats:?}"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn every_method_as_a_future() {
    let lib = library();
    let s = store(&lib);
    assert_eq!(
        block_on(s.put_async("k", b"v", Kind::Text, &["t"], Some(1))).unwrap(),
        None
    );
    let e = block_on(s.get_async("k")).unwrap();
    assert_eq!(
        (e.value.as_slice(), e.tags.as_slice(), e.ttl_ms),
        (&b"v"[..], &["t".to_string()][..], Some(1))
    );
    assert_eq!(
        block_on(s.get_async("no")),
        Err(Error::Failed("not found: no".into()))
    );
    assert_eq!(block_on(s.find_async("k")).unwrap(), Some(e.clone()));
    assert_eq!(block_on(s.find_async("no")).unwrap(), None);
    assert_eq!(
        block_on(s.put_many_async(&[entry("x", b"12", Kind::Blob)])).unwrap(),
        1
    );
    assert_eq!(
        block_on(s.list_async(None, Some(Kind::Blob), None))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(block_on(s.keys_async()).unwrap(), ["k", "x"]);
    assert_eq!(block_on(s.incr_async("c", 2)).unwrap(), 2);
    assert!(matches!(
        block_on(s.incr_async("k", 2)),
        Err(Error::Failed(_))
    ));
    block_on(s.annotate_async("k", Some("note"))).unwrap();
    assert_eq!(s.get("k", T).unwrap().note.as_deref(), Some("note"));
    assert_eq!(block_on(s.usage_async()).unwrap().entries, 3);
    assert_eq!(block_on(s.name_async()).unwrap(), "store");
    assert!(block_on(s.delete_async("x")).unwrap());
    assert_eq!(block_on(lib.version_async()).unwrap(), "0.1.0");
    // Pending::wait blocks instead of polling.
    assert_eq!(s.incr_async("c", 1).wait().unwrap(), 3);
    // An argument the client cannot pass fails at once, before any call.
    assert!(matches!(
        block_on(s.get_async("\0")),
        Err(Error::InvalidArgument(_))
    ));
    // Many in flight, awaited in another order than made.
    let pending: Vec<_> = (0..200)
        .map(|i| s.incr_async(&format!("p{}", i % 10), 1))
        .collect();
    let mut last = [0i64; 10];
    for (i, p) in pending.into_iter().enumerate().rev() {
        let v = block_on(p).unwrap();
        assert!((1..=20).contains(&v));
        last[i % 10] = last[i % 10].max(v);
    }
    assert_eq!(last, [20; 10]);
    // A future dropped unawaited: its call still runs and is answered (its answer
    // dropped then).
    let before = s.stats().unwrap().accepted;
    drop(s.put_async("dropped", b"", Kind::Text, &[], None));
    assert_eq!(s.get("dropped", T).unwrap().key, "dropped");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let st = s.stats().unwrap();
        assert_eq!(st.accepted, before + 2);
        if st.completed == st.accepted {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{st:?}");
        std::thread::yield_now();
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn many_threads_share_one_context() {
    let lib = library();
    let s = store(&lib);
    const THREADS: i64 = 4;
    const CALLS: i64 = 500;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let s = &s;
            scope.spawn(move || {
                for i in 0..CALLS {
                    if (i + t) % 2 == 0 {
                        s.incr("shared", 1, T).unwrap();
                    } else {
                        block_on(s.incr_async("shared", 1)).unwrap();
                    }
                    let key = format!("t{t}");
                    s.put(&key, &i.to_le_bytes(), Kind::Blob, &[], None, T)
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(s.incr("shared", 0, T).unwrap(), THREADS * CALLS);
    for t in 0..THREADS {
        let e = s.get(&format!("t{t}"), T).unwrap();
        assert_eq!(e.value, (CALLS - 1).to_le_bytes());
        assert_eq!(e.meta.version as i64, CALLS);
    }
    // A context moves to another thread and is dropped there.
    std::thread::spawn(move || drop(s)).join().unwrap();
}

#[test]
#[cfg_attr(miri, ignore)]
fn destroy_answers_every_call_in_flight() {
    let lib = library();
    for round in 0..20 {
        let s = store(&lib);
        let pending: Vec<_> = (0..300).map(|i| s.incr_async("n", i)).collect();
        if round % 2 == 0 {
            drop(s);
        } else {
            s.destroy().unwrap();
        }
        // Every future completes (answered before destroy returned): the calls that ran
        // answer the running sum, in order, and any refused at teardown come after them.
        let mut refused = false;
        for (i, p) in pending.into_iter().enumerate() {
            match block_on(p) {
                Ok(v) => {
                    assert!(!refused, "call {i} ran after a refused one");
                    let i = i as i64;
                    assert_eq!(v, i * (i + 1) / 2);
                }
                Err(Error::Failed(_)) => refused = true,
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn completion_mode_runs_answers_on_the_draining_thread() {
    let lib = library();
    let mut opts = lib.options();
    opts.completion = kv::raw::FFID_COMPLETION_QUEUE;
    // Create drains its own queue while it waits for the constructor.
    let s = lib
        .create_with_options("queued", Some(2), Some(&opts))
        .unwrap();
    assert!(s.completion_fd().is_some());
    // Blocking forms are refused in completion mode.
    assert!(matches!(s.name(T), Err(Error::Failed(_))));
    let mut p = s.put_async("a", b"1", Kind::Text, &[], None);
    let q = s.put_async("b", b"2", Kind::Text, &[], None);
    let r = s.put_async("c", b"3", Kind::Text, &[], None);
    // Answered or not, nothing reaches a future before this thread drains.
    std::thread::sleep(Duration::from_millis(50));
    let mut poll = TaskContext::from_waker(Waker::noop());
    assert!(std::pin::Pin::new(&mut p).poll(&mut poll).is_pending());
    let mut ran = 0;
    while ran < 3 {
        ran += s.drain(16).unwrap();
    }
    assert_eq!(p.wait().unwrap(), None);
    assert_eq!(q.wait().unwrap(), None);
    // The store was created with max_entries = 2.
    assert_eq!(
        r.wait(),
        Err(Error::Failed("store full (2 entries)".into()))
    );
    // In the default mode there is nothing to drain.
    assert_eq!(store(&lib).drain(1), None);
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_full_rejecting_ring_refuses_with_busy() {
    let lib = library();
    let mut opts = lib.options();
    opts.ring_capacity = 1;
    opts.backpressure = kv::raw::FFID_BACKPRESSURE_REJECT;
    opts.spin_ns = 0;
    let s = lib.create_with_options("tiny", None, Some(&opts)).unwrap();
    let big: Vec<Entry> = (0..2000)
        .map(|i| entry(&format!("k{i}"), &[0; 64], Kind::Blob))
        .collect();
    // Keep the worker busy, then pile calls onto the one-slot ring.
    let first = s.put_many_async(&big);
    let pending: Vec<_> = (0..1000).map(|_| s.incr_async("n", 1)).collect();
    let mut busy = 0;
    assert_eq!(block_on(first).unwrap(), 2000);
    for p in pending {
        match block_on(p) {
            Err(Error::Busy(_)) => busy += 1,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(busy > 0, "no call met the full ring");
    assert_eq!(s.stats().unwrap().refused, busy);
}
