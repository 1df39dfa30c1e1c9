//! The blocking forms (`<lib>_<m>_sync`) from Rust, as a C host calls them: owned answers
//! read after later calls and freed, a timed-out call whose late answer the runtime frees,
//! and a refusal. Miri and the sanitizers run this file (the owned blocks and the answer
//! slot are unsafe code); `tests/c/sync.c` covers the rest from C.

use std::ffi::CStr;
use std::time::{Duration, Instant};

use echo::*;
use ffi_dispatch::{ffid_ctx, RET_ERR, RET_OK, RET_TIMEOUT};
use kv::*;

mod support;
use support::lab::{Log, RECORD};

fn echo_context() -> *mut ffid_ctx {
    let created = Log::new();
    let cfg = EchoConfig {
        prefix: c"b".as_ptr(),
    };
    // SAFETY: valid config and callback; the log outlives the create callback.
    let ctx = unsafe {
        echo_create_checked(
            echo_interface_hash(),
            RECORD,
            created.ud(),
            &cfg,
            std::ptr::null(),
        )
    };
    assert!(!ctx.is_null());
    assert_eq!(created.wait_len(1)[0].ret, RET_OK);
    ctx
}

fn text(p: *const std::ffi::c_char) -> String {
    // SAFETY: an owned, NUL-terminated answer.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

#[test]
fn owned_answers_outlive_later_calls_and_are_freed() {
    let ctx = echo_context();
    let args = EchoShoutArgs {
        text: c"one".as_ptr(),
    };
    let mut first = std::ptr::null();
    // SAFETY: valid args and out pointer.
    let rc = unsafe { echo_shout_sync(ctx, &args, &mut first, 10_000) };
    assert_eq!(rc, RET_OK);
    let args = EchoShoutArgs {
        text: c"two".as_ptr(),
    };
    let mut second = std::ptr::null();
    // SAFETY: as above.
    let rc = unsafe { echo_shout_sync(ctx, &args, &mut second, 10_000) };
    assert_eq!(rc, RET_OK);
    assert_eq!(
        (text(first), text(second)),
        ("b: ONE".into(), "b: TWO".into())
    );
    // SAFETY: answers handed out by `_sync`, each freed once.
    unsafe {
        echo_free(first.cast());
        echo_free(second.cast());
    }
    let mut n = 0u64;
    // SAFETY: a valid out pointer.
    let rc = unsafe { echo_count_sync(ctx, &mut n, 10_000) };
    assert_eq!(rc, RET_OK);
    assert_eq!(n, 2);
    // Refused: NULL args; the out pointer is left alone.
    let mut untouched = std::ptr::null();
    // SAFETY: a null args pointer is refused before anything is read.
    let rc = unsafe { echo_shout_sync(ctx, std::ptr::null(), &mut untouched, 10) };
    assert_eq!(rc, RET_ERR);
    assert!(untouched.is_null());
    assert_eq!(echo_destroy(ctx), RET_OK);
}

#[test]
fn a_timed_out_call_goes_on_and_its_answer_is_freed() {
    let ctx = echo_context();
    let args = EchoEchoLaterArgs {
        text: c"late".as_ptr(),
        ms: 300,
    };
    let mut out = std::ptr::null();
    // SAFETY: valid args and out pointer.
    let rc = unsafe { echo_echo_later_sync(ctx, &args, &mut out, 10) };
    assert_eq!(rc, RET_TIMEOUT);
    assert!(out.is_null());
    // SAFETY: the runtime's thread-local text.
    let why = unsafe { CStr::from_ptr(echo_last_error()) }
        .to_string_lossy()
        .into_owned();
    assert!(why.contains("timed out after 10 ms"), "{why}");
    // The late answer reaches the runtime's callback, which frees it (ASan and Miri
    // see a leak or a double free otherwise); destroy waits for nothing then.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut s = ffi_dispatch::abi::ffid_context_stats {
            struct_size: std::mem::size_of::<ffi_dispatch::abi::ffid_context_stats>() as u32,
            ..Default::default()
        };
        // SAFETY: a valid stats struct of its own size.
        let rc = unsafe { echo_stats(ctx, &mut s) };
        assert_eq!(rc, RET_OK);
        if s.deferred_pending == 0 || Instant::now() > deadline {
            assert_eq!(s.deferred_pending, 0);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(echo_destroy(ctx), RET_OK);
}

#[test]
fn a_record_answer_is_one_owned_block() {
    let created = Log::new();
    let cfg = KvConfig {
        name: c"b".as_ptr(),
        has_max_entries: 0,
        max_entries: 0,
    };
    // SAFETY: valid config and callback; the log outlives the create callback.
    let ctx = unsafe {
        kv_create_checked(
            kv_interface_hash(),
            RECORD,
            created.ud(),
            &cfg,
            std::ptr::null(),
        )
    };
    assert_eq!(created.wait_len(1)[0].ret, RET_OK);
    let tags = [c"t".as_ptr()];
    let put = KvPutArgs {
        key: c"k".as_ptr(),
        value: b"vv".as_ptr(),
        value_len: 2,
        kind: 0,
        tags: tags.as_ptr(),
        tags_len: 1,
        has_ttl_ms: 0,
        ttl_ms: 0,
    };
    // SAFETY: valid args; a null out pointer drops the (absent) answer.
    let rc = unsafe { kv_put_sync(ctx, &put, std::ptr::null_mut(), 10_000) };
    assert_eq!(rc, RET_OK);
    let mut entry: *const EntryC = std::ptr::null();
    let get = KvGetArgs { key: c"k".as_ptr() };
    // SAFETY: valid args and out pointer.
    let rc = unsafe { kv_get_sync(ctx, &get, &mut entry, 10_000) };
    assert_eq!(rc, RET_OK);
    // Another answer in between reuses nothing of it.
    // SAFETY: as above.
    let rc = unsafe { kv_get_sync(ctx, &get, std::ptr::null_mut(), 10_000) };
    assert_eq!(rc, RET_OK);
    // SAFETY: an owned `KvEntry` and what it points to, in one block.
    unsafe {
        let e = &*entry;
        assert_eq!(text(e.key), "k");
        assert_eq!(std::slice::from_raw_parts(e.value, e.value_len), b"vv");
        assert_eq!(e.tags_len, 1);
        assert_eq!(text(*e.tags), "t");
        kv_free(entry.cast());
    }
    assert_eq!(kv_destroy(ctx), RET_OK);
}

/// What a typed reply left: its status and the answer's text.
struct TypedSeen {
    done: std::sync::Mutex<Option<(i32, String)>>,
    cv: std::sync::Condvar,
}

impl TypedSeen {
    fn new() -> Self {
        TypedSeen {
            done: std::sync::Mutex::new(None),
            cv: std::sync::Condvar::new(),
        }
    }

    fn wait(&self) -> (i32, String) {
        let guard = self.done.lock().unwrap();
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, Duration::from_secs(10), |d| d.is_none())
            .unwrap();
        guard.clone().expect("the typed reply came")
    }
}

unsafe extern "C" fn typed_text(
    ret: i32,
    value: *const std::ffi::c_char,
    msg: *const std::ffi::c_char,
    ud: *mut std::ffi::c_void,
) {
    // SAFETY: `ud` is the test's `TypedSeen`, alive until the reply came.
    let seen = unsafe { &*ud.cast::<TypedSeen>() };
    let what = if ret == RET_OK { value } else { msg };
    let got = text(what);
    // SAFETY: an owned answer (NULL on error: ignored).
    unsafe { echo_free(value.cast()) };
    *seen.done.lock().unwrap() = Some((ret, got));
    seen.cv.notify_all();
}

#[test]
fn typed_replies_hand_over_the_answer_and_refusals_never_call() {
    let ctx = echo_context();
    let args = EchoShoutArgs {
        text: c"typed".as_ptr(),
    };
    // One record for every call, alive until destroy has joined the worker: a reply may
    // still be inside `notify_all` when its waiter moves on.
    let seen = TypedSeen::new();
    for _ in 0..3 {
        // Recycled pairs: the second and third call take the first's back.
        *seen.done.lock().unwrap() = None;
        let ud: *const TypedSeen = &seen;
        // SAFETY: valid args; `seen` outlives the reply (waited for below).
        let rc = unsafe { echo_shout_async(ctx, &args, Some(typed_text), ud.cast_mut().cast()) };
        assert_eq!(rc, RET_OK);
        assert_eq!(seen.wait(), (RET_OK, "b: TYPED".into()));
    }
    let fail = EchoFailArgs {
        message: c"no".as_ptr(),
    };
    *seen.done.lock().unwrap() = None;
    let ud: *const TypedSeen = &seen;
    unsafe extern "C" fn typed_unit(
        ret: i32,
        msg: *const std::ffi::c_char,
        ud: *mut std::ffi::c_void,
    ) {
        // SAFETY: as in `typed_text`.
        let seen = unsafe { &*ud.cast::<TypedSeen>() };
        *seen.done.lock().unwrap() = Some((ret, text(msg)));
        seen.cv.notify_all();
    }
    // SAFETY: as above.
    let rc = unsafe { echo_fail_async(ctx, &fail, Some(typed_unit), ud.cast_mut().cast()) };
    assert_eq!(rc, RET_OK);
    assert_eq!(seen.wait(), (RET_ERR, "no".into()));
    // SAFETY: refused before anything is kept: no reply.
    let rc = unsafe {
        echo_shout_async(
            ctx,
            std::ptr::null(),
            Some(typed_text),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, RET_ERR);
    assert_eq!(echo_destroy(ctx), RET_OK);
}

#[test]
fn typed_listeners_get_owned_events() {
    let ctx = echo_context();
    let seen = std::sync::Mutex::new(Vec::<(u64, Vec<u8>)>::new());
    unsafe extern "C" fn on_ping(event: *const PerfPingC, ud: *mut std::ffi::c_void) {
        // SAFETY: `ud` is the test's list; the event is an owned `EchoPerfPing`.
        unsafe {
            let seen = &*ud.cast::<std::sync::Mutex<Vec<(u64, Vec<u8>)>>>();
            let e = &*event;
            let data = std::slice::from_raw_parts(e.data, e.data_len).to_vec();
            seen.lock().unwrap().push((e.seq_no, data));
            echo_free(event.cast());
        }
    }
    let ud: *const _ = &seen;
    let id = echo_listen_on_perf_ping(ctx, Some(on_ping), ud.cast_mut().cast());
    assert_ne!(id, 0);
    let trigger = EchoTriggerPingArgs {
        count: 3,
        payload_bytes: 2,
        stamp_ns: 0,
        seq_base: 7,
    };
    let mut queued = 0u32;
    // SAFETY: valid args and out pointer.
    let rc = unsafe { echo_trigger_ping_sync(ctx, &trigger, &mut queued, 10_000) };
    assert_eq!((rc, queued), (RET_OK, 3));
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(7, vec![7, 7]), (8, vec![8, 8]), (9, vec![9, 9])]
    );
    // Destroy removes it and frees its pair.
    assert_eq!(echo_destroy(ctx), RET_OK);
}
