//! A Rust event loop over echo and kv through `<lib>_poll`: both contexts' descriptors in
//! one epoll set, CBOR calls whose answers come back as entries (decoded from the lent
//! payload before the next poll), and the request ids tying each entry to its call.

mod support;

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use echo::*;
use ffi_dispatch::abi::{ffid_entry, ffid_options, COMPLETION_QUEUE, ENTRY_ANSWER};
use ffi_dispatch::{ffid_ctx, RET_CLOSED, RET_ERR, RET_OK};
use kv::*;

/// Poll never calls a call's callback: counted here, and expected to stay 0.
static CALLED: AtomicUsize = AtomicUsize::new(0);
unsafe extern "C" fn never(_: c_int, _: *const c_char, _: usize, _: *mut c_void) {
    CALLED.fetch_add(1, Ordering::SeqCst);
}

fn completion_options() -> ffid_options {
    let mut o = std::mem::MaybeUninit::<ffid_options>::uninit();
    // SAFETY: writable memory for one ffid_options.
    let rc = unsafe { ffi_dispatch::ffid_options_init(o.as_mut_ptr()) };
    assert_eq!(rc, RET_OK);
    // SAFETY: initialised just above.
    let mut o = unsafe { o.assume_init() };
    o.completion = COMPLETION_QUEUE;
    o
}

fn text_request(key: &str, value: &str) -> Vec<u8> {
    let mut v = Vec::new();
    let mut e = minicbor::Encoder::new(&mut v);
    e.map(1).unwrap().str(key).unwrap().str(value).unwrap();
    v
}

/// Which library's exports take a context.
#[derive(Clone, Copy)]
enum Lib {
    Echo,
    Kv,
}

/// One `<lib>_poll` of up to 8 entries: each entry with its payload copied (it is lent
/// until the next poll), or the refusal's negative status.
fn poll_once(
    lib: Lib,
    ctx: *mut ffid_ctx,
    timeout_ms: i32,
) -> Result<Vec<(ffid_entry, Vec<u8>)>, c_int> {
    let mut entries = [std::mem::MaybeUninit::<ffid_entry>::uninit(); 8];
    let first = entries.as_mut_ptr().cast::<ffid_entry>();
    // SAFETY: eight writable entries, the first's struct_size set first.
    let got = unsafe {
        first
            .cast::<u32>()
            .write(std::mem::size_of::<ffid_entry>() as u32);
        match lib {
            Lib::Echo => echo_poll(ctx, first, 8, timeout_ms),
            Lib::Kv => kv_poll(ctx, first, 8, timeout_ms),
        }
    };
    if got < 0 {
        return Err(got);
    }
    Ok(entries[..got as usize]
        .iter()
        .map(|e| {
            // SAFETY: `got` entries were written in full.
            let e = unsafe { e.assume_init() };
            // SAFETY: the payload holds `len` bytes until the next poll.
            let bytes = unsafe { std::slice::from_raw_parts(e.payload, e.len) }.to_vec();
            (e, bytes)
        })
        .collect())
}

/// One loop over both contexts until `want` answers came; returns them by (library,
/// request id): status and the answer's bytes, copied before the next poll.
fn serve(
    contexts: [(*mut ffid_ctx, Lib); 2],
    want: usize,
) -> HashMap<(usize, u64), (c_int, Vec<u8>)> {
    // SAFETY: plain epoll calls on descriptors this function owns and closes.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0);
    let mut fds = Vec::new();
    for (i, &(ctx, lib)) in contexts.iter().enumerate() {
        let fd = match lib {
            Lib::Echo => echo_poll_fd(ctx),
            Lib::Kv => kv_poll_fd(ctx),
        };
        assert!(fd >= 0, "poll_fd: {fd}");
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: a live epoll and descriptor, a valid event.
        let rc = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        assert_eq!(rc, 0);
        fds.push(fd);
    }
    let mut answers = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while answers.len() < want && Instant::now() < deadline {
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 2];
        // SAFETY: room for two events.
        let n = unsafe { libc::epoll_wait(ep, ready.as_mut_ptr(), 2, 100) };
        for ev in &ready[..n.max(0) as usize] {
            let which = ev.u64 as usize;
            let (ctx, lib) = contexts[which];
            let entries = poll_once(lib, ctx, 0).expect("a live context's poll");
            for (e, bytes) in entries {
                assert_eq!(e.kind, ENTRY_ANSWER);
                let old = answers.insert((which, e.request_id), (e.status, bytes));
                assert!(old.is_none(), "a second answer to request {}", e.request_id);
            }
        }
    }
    for fd in fds {
        // SAFETY: the descriptors poll_fd gave are ours to close.
        unsafe { libc::close(fd) };
    }
    // SAFETY: ours.
    unsafe { libc::close(ep) };
    answers
}

#[test]
#[cfg_attr(miri, ignore)] // epoll
fn one_loop_serves_echo_and_kv_through_poll() {
    let o = completion_options();
    let ecfg = EchoConfig {
        prefix: c"r".as_ptr(),
    };
    let kcfg = KvConfig {
        name: c"rs".as_ptr(),
        has_max_entries: 0,
        max_entries: 0,
    };
    // SAFETY: valid configs, options and callbacks.
    let (e, k) = unsafe {
        (
            echo_create_checked(
                echo_interface_hash(),
                Some(never),
                std::ptr::null_mut(),
                &ecfg,
                &o,
            ),
            kv_create_checked(
                kv_interface_hash(),
                Some(never),
                std::ptr::null_mut(),
                &kcfg,
                &o,
            ),
        )
    };
    assert!(!e.is_null() && !k.is_null());
    let mut ids = Vec::new();
    for word in ["one", "two", "three"] {
        let req = text_request("text", word);
        // SAFETY: the request buffer lives across the call.
        let rc = unsafe {
            echo_shout_cbor(
                e,
                Some(never),
                std::ptr::null_mut(),
                req.as_ptr(),
                req.len(),
            )
        };
        assert_eq!(rc, RET_OK);
        ids.push((word, echo_last_request_id()));
    }
    let fail = text_request("message", "nope");
    // SAFETY: as above.
    let rc = unsafe {
        echo_fail_cbor(
            e,
            Some(never),
            std::ptr::null_mut(),
            fail.as_ptr(),
            fail.len(),
        )
    };
    assert_eq!(rc, RET_OK);
    let fail_id = echo_last_request_id();
    // The empty map: `name` takes no arguments.
    let name = [0xa0u8];
    // SAFETY: as above.
    let rc = unsafe { kv_name_cbor(k, Some(never), std::ptr::null_mut(), name.as_ptr(), 1) };
    assert_eq!(rc, RET_OK);
    let name_id = kv_last_request_id();

    // Two create outcomes (request 0 of each), three shouts, a failure, kv's name.
    let answers = serve([(e, Lib::Echo), (k, Lib::Kv)], 7);
    assert_eq!(answers.len(), 7);
    assert_eq!(answers[&(0, 0)].0, RET_OK, "echo created");
    assert_eq!(answers[&(1, 0)].0, RET_OK, "kv created");
    for (word, id) in ids {
        let (status, bytes) = &answers[&(0, id)];
        let text: String = minicbor::decode(bytes).unwrap();
        assert_eq!(
            (*status, text),
            (RET_OK, format!("r: {}", word.to_uppercase()))
        );
    }
    assert_eq!(answers[&(0, fail_id)], (RET_ERR, b"nope".to_vec()));
    let (status, bytes) = &answers[&(1, name_id)];
    let name: String = minicbor::decode(bytes).unwrap();
    assert_eq!((*status, name.as_str()), (RET_OK, "rs"));

    assert_eq!(echo_destroy(e), RET_OK);
    assert_eq!(kv_destroy(k), RET_OK);
    assert_eq!(
        poll_once(Lib::Echo, e, 0).err(),
        Some(-RET_CLOSED),
        "a destroyed context is refused"
    );
    assert_eq!(
        CALLED.load(Ordering::SeqCst),
        0,
        "nothing was left for destroy"
    );
}

#[test]
#[cfg_attr(miri, ignore)] // eventfd
fn events_come_as_entries_when_asked() {
    let mut o = completion_options();
    o.poll_kinds = ffi_dispatch::abi::POLL_EVENTS;
    let cfg = EchoConfig {
        prefix: c"ev".as_ptr(),
    };
    // SAFETY: valid config, options and callback.
    let ctx = unsafe {
        echo_create_checked(
            echo_interface_hash(),
            Some(never),
            std::ptr::null_mut(),
            &cfg,
            &o,
        )
    };
    assert!(!ctx.is_null());
    let args = EchoTriggerPingArgs {
        count: 3,
        payload_bytes: 0,
        stamp_ns: 9,
        seq_base: 40,
    };
    // SAFETY: valid args and callback.
    let rc = unsafe { echo_trigger_ping(ctx, Some(never), std::ptr::null_mut(), &args) };
    assert_eq!(rc, RET_OK);
    let mut seqs = Vec::new();
    let mut answered = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answered && Instant::now() < deadline {
        for (e, bytes) in poll_once(Lib::Echo, ctx, 100).expect("a live context's poll") {
            match e.kind {
                ffi_dispatch::abi::ENTRY_EVENT => {
                    // {"event": name, "payload": {"seq_no": ..., ...}}
                    let mut d = minicbor::Decoder::new(&bytes);
                    assert_eq!(d.map().unwrap(), Some(2));
                    assert_eq!(d.str().unwrap(), "event");
                    assert_eq!(d.str().unwrap(), "on_perf_ping");
                    assert_eq!(d.str().unwrap(), "payload");
                    let fields = d.map().unwrap().unwrap();
                    for _ in 0..fields {
                        if d.str().unwrap() == "seq_no" {
                            seqs.push(d.u64().unwrap());
                        } else {
                            d.skip().unwrap();
                        }
                    }
                }
                ENTRY_ANSWER if e.request_id != 0 => {
                    assert_eq!(e.status, RET_OK);
                    answered = true;
                }
                _ => {}
            }
        }
    }
    assert!(answered);
    assert_eq!(
        seqs,
        [40, 41, 42],
        "every event, in order, before the answer"
    );
    assert_eq!(echo_destroy(ctx), RET_OK);
    assert_eq!(CALLED.load(Ordering::SeqCst), 0);
}
