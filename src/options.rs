//! Per-context options: the Rust form of `ffid_options`, its policies, and the host
//! functions a context calls besides the callbacks.

use std::ffi::c_int;
use std::time::Duration;

use crate::abi::{self, Callback};
use crate::ffi::host::{HostFn, ThreadHooks};

/// What a full ring does to a producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackPressure {
    /// Wait for space (spin, then park until the worker frees a slot). Never `BUSY`,
    /// except for calls made on a worker thread, which never block.
    #[default]
    Block,
    /// Refuse at once with `RET_BUSY`.
    Reject,
}

/// How an idle, parked worker is woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WakeKind {
    /// A futex on the worker's state word.
    #[default]
    Futex,
    /// A Linux eventfd, pollable together with other descriptors.
    EventFd,
}

/// Which ring implementation carries a context's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RingKind {
    /// The default: producers tag slots, the worker never writes them (see `sync/ring.rs`).
    #[default]
    Tagged,
    /// `crossbeam-queue`'s `ArrayQueue`, for comparison.
    ArrayQueue,
}

/// What a full event ring does to an emitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EventPolicy {
    /// Drop the new event and count it ([`Stats::events_dropped`](crate::Stats::events_dropped)).
    #[default]
    DropNewest,
    /// Wait for the event thread to make room (an emitter on the event thread itself
    /// drops instead: it would wait for itself).
    Block,
}

/// Where a context's terminal callbacks (and progress pings) run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CompletionMode {
    /// On the context's threads, as they happen.
    #[default]
    Callback,
    /// Queued to a completion ring; the host runs them on its own thread with
    /// [`drain`](crate::drain), woken by [`completion_fd`](crate::completion_fd) (an eventfd).
    Queue,
}

/// What an idle worker does between requests: the CPU it spends to answer the next one
/// without a wake (see `worker/idle.rs`). [`Stats::idle_spin_ns`](crate::Stats) shows
/// what a policy costs, [`Stats::avoidable_wakes`](crate::Stats) what it leaves to pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IdlePolicy {
    /// Stay hot: spin the whole [`Options::spin`] bound after every request, then park.
    #[default]
    Latency,
    /// Learn the gaps between requests: spin when the next is due soon, nap until just
    /// before one that comes on a regular period, and keep idle spinning under the cap
    /// (default 50% of a core). Experimental: see `worker/idle.rs` for what it does not
    /// do well yet.
    Balanced,
    /// Never spin: park at once. Every request after an idle gap pays a wake.
    Power,
}

/// Per-context runtime options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Ring capacity in requests, 1 to [`MAX_RING_CAPACITY`]. Default 4096.
    pub ring_capacity: usize,
    /// How long an idle worker busy-spins before parking. Default 50 µs; zero parks at once.
    pub spin: Duration,
    /// Full-ring policy. Default [`BackPressure::Block`].
    pub backpressure: BackPressure,
    /// Wake backend. Default [`WakeKind::Futex`].
    pub wake: WakeKind,
    /// Ring implementation. Default [`RingKind::Tagged`].
    pub ring: RingKind,
    /// Interval of `RET_STALE_WARN` pings to a request still running. Default 5 s;
    /// `None` never pings.
    pub stale_ping: Option<Duration>,
    /// When the worker has spent this long in one handler, `DIAG_NOT_RESPONDING` is
    /// reported (once; `DIAG_RESPONDING` when it moves on). Default 10 s.
    pub not_responding: Option<Duration>,
    /// When one listener call lasts this long, `DIAG_LISTENER_STUCK` is reported once.
    /// Default 1 s.
    pub listener_stuck: Option<Duration>,
    /// Events the event ring holds, 1 to [`MAX_RING_CAPACITY`]. Default 1024.
    pub event_ring_capacity: usize,
    /// Full-event-ring policy. Default [`EventPolicy::DropNewest`].
    pub event_policy: EventPolicy,
    /// How long destroy waits for outstanding deferred replies before failing them.
    /// Default 5 s.
    pub shutdown_timeout: Duration,
    /// Where terminal callbacks run. Default [`CompletionMode::Callback`].
    pub completion: CompletionMode,
    /// What the idle worker does between requests. Default [`IdlePolicy::Latency`].
    pub idle_policy: IdlePolicy,
    /// Balanced: the most its idle spinning may cost, as a fraction of one core in
    /// `(0, 1]`; `None` takes the default, 0.5.
    pub idle_spin_cap: Option<f32>,
    /// Receives the `DIAG_*` reports: on the context's monitor thread, `DIAG_PANIC` on the
    /// thread that caught the panic (the worker).
    pub diagnostic: Option<HostFn<Callback>>,
    /// Hooks run on each of the context's threads as it starts and stops.
    pub thread_hooks: Option<ThreadHooks>,
    /// Overwrite each borrowed answer with `0xa5` bytes once its callback has returned,
    /// so that a pointer kept past the callback reads visible garbage (not the next
    /// answer). Default: on in debug builds of the library.
    pub poison_replies: bool,
    /// Completion mode: what else comes through `<lib>_poll` as entries
    /// (`abi::POLL_EVENTS`, `abi::POLL_DIAGNOSTICS`). Default none.
    pub poll_kinds: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ring_capacity: 4096,
            spin: Duration::from_micros(50),
            backpressure: BackPressure::Block,
            wake: WakeKind::Futex,
            ring: RingKind::Tagged,
            stale_ping: Some(Duration::from_secs(5)),
            not_responding: Some(Duration::from_secs(10)),
            listener_stuck: Some(Duration::from_secs(1)),
            event_ring_capacity: 1024,
            event_policy: EventPolicy::DropNewest,
            shutdown_timeout: Duration::from_secs(5),
            completion: CompletionMode::Callback,
            idle_policy: IdlePolicy::Latency,
            idle_spin_cap: None,
            diagnostic: None,
            thread_hooks: None,
            poison_replies: cfg!(debug_assertions),
            poll_kinds: 0,
        }
    }
}

fn millis(d: Option<Duration>) -> u32 {
    d.map_or(0, |d| d.as_millis().clamp(1, u32::MAX as u128) as u32)
}

fn from_millis(ms: u32) -> Option<Duration> {
    (ms != 0).then(|| Duration::from_millis(ms as u64))
}

/// The largest `ring_capacity` and `event_ring_capacity` a create accepts
/// (`FFID_MAX_RING_CAPACITY`): 2^20 requests take 128 MiB of ring.
pub const MAX_RING_CAPACITY: usize = abi::MAX_RING_CAPACITY as usize;

impl Options {
    /// Whether a create accepts these options: both ring capacities in
    /// `1..=MAX_RING_CAPACITY`, a spin cap (if given) in `(0, 1]`, and poll kinds (if
    /// any) known and in completion mode.
    pub fn is_valid(&self) -> bool {
        let ring = 1..=MAX_RING_CAPACITY;
        ring.contains(&self.ring_capacity)
            && ring.contains(&self.event_ring_capacity)
            && self.idle_spin_cap.is_none_or(|c| c > 0.0 && c <= 1.0)
            && self.poll_kinds & !(abi::POLL_EVENTS | abi::POLL_DIAGNOSTICS) == 0
            && (self.poll_kinds == 0 || self.completion == CompletionMode::Queue)
    }

    /// Whether `<lib>_poll` hands out this kind (`abi::POLL_*`).
    pub fn polls(&self, kind: u32) -> bool {
        self.poll_kinds & kind != 0
    }

    /// The spin cap `Balanced` plans with: the option, or half a core.
    pub fn balanced_spin_cap(&self) -> f32 {
        self.idle_spin_cap.unwrap_or(0.5)
    }

    /// The C mirror of these options.
    pub fn to_c(&self) -> abi::ffid_options {
        abi::ffid_options {
            struct_size: std::mem::size_of::<abi::ffid_options>() as u32,
            ring_capacity: self.ring_capacity.min(u32::MAX as usize) as u32,
            spin_ns: self.spin.as_nanos().min(u32::MAX as u128) as u32,
            backpressure: match self.backpressure {
                BackPressure::Block => abi::BACKPRESSURE_BLOCK,
                BackPressure::Reject => abi::BACKPRESSURE_REJECT,
            },
            wake: match self.wake {
                WakeKind::Futex => abi::WAKE_FUTEX,
                WakeKind::EventFd => abi::WAKE_EVENTFD,
            },
            ring: match self.ring {
                RingKind::Tagged => abi::RING_TAGGED,
                RingKind::ArrayQueue => abi::RING_ARRAY_QUEUE,
            },
            stale_ping_ms: millis(self.stale_ping),
            not_responding_ms: millis(self.not_responding),
            listener_stuck_ms: millis(self.listener_stuck),
            event_ring_capacity: self.event_ring_capacity.min(u32::MAX as usize) as u32,
            event_backpressure: match self.event_policy {
                EventPolicy::DropNewest => abi::EVENTS_DROP_NEWEST,
                EventPolicy::Block => abi::EVENTS_BLOCK,
            },
            shutdown_timeout_ms: self.shutdown_timeout.as_millis().min(u32::MAX as u128) as u32,
            completion: match self.completion {
                CompletionMode::Callback => abi::COMPLETION_CALLBACK,
                CompletionMode::Queue => abi::COMPLETION_QUEUE,
            },
            reserved: 0,
            diagnostic: self.diagnostic.map(|d| d.f),
            diagnostic_user_data: self
                .diagnostic
                .map_or(std::ptr::null_mut(), |d| d.user_data),
            thread_start: self.thread_hooks.and_then(|h| h.start),
            thread_stop: self.thread_hooks.and_then(|h| h.stop),
            hook_user_data: self
                .thread_hooks
                .map_or(std::ptr::null_mut(), |h| h.user_data),
            idle_policy: match self.idle_policy {
                IdlePolicy::Balanced => abi::IDLE_BALANCED,
                IdlePolicy::Latency => abi::IDLE_LATENCY,
                IdlePolicy::Power => abi::IDLE_POWER,
            },
            idle_spin_cap_permille: self
                .idle_spin_cap
                .map_or(0, |c| (c * 1000.0).round().clamp(1.0, 1000.0) as u32),
            poison_replies: if self.poison_replies {
                abi::POISON_ON
            } else {
                abi::POISON_OFF
            },
            poll_kinds: self.poll_kinds,
        }
    }

    /// Reads host options; `None` for a wrong `struct_size`, a non-zero `reserved` or
    /// out-of-range values.
    pub fn from_c(o: &abi::ffid_options) -> Option<Options> {
        if o.struct_size as usize != std::mem::size_of::<abi::ffid_options>() || o.reserved != 0 {
            return None;
        }
        let options = Options {
            ring_capacity: o.ring_capacity as usize,
            spin: Duration::from_nanos(o.spin_ns as u64),
            backpressure: match o.backpressure {
                abi::BACKPRESSURE_BLOCK => BackPressure::Block,
                abi::BACKPRESSURE_REJECT => BackPressure::Reject,
                _ => return None,
            },
            wake: match o.wake {
                abi::WAKE_FUTEX => WakeKind::Futex,
                abi::WAKE_EVENTFD => WakeKind::EventFd,
                _ => return None,
            },
            ring: match o.ring {
                abi::RING_TAGGED => RingKind::Tagged,
                abi::RING_ARRAY_QUEUE => RingKind::ArrayQueue,
                _ => return None,
            },
            stale_ping: from_millis(o.stale_ping_ms),
            not_responding: from_millis(o.not_responding_ms),
            listener_stuck: from_millis(o.listener_stuck_ms),
            event_ring_capacity: o.event_ring_capacity as usize,
            event_policy: match o.event_backpressure {
                abi::EVENTS_DROP_NEWEST => EventPolicy::DropNewest,
                abi::EVENTS_BLOCK => EventPolicy::Block,
                _ => return None,
            },
            shutdown_timeout: Duration::from_millis(o.shutdown_timeout_ms as u64),
            completion: match o.completion {
                abi::COMPLETION_CALLBACK => CompletionMode::Callback,
                abi::COMPLETION_QUEUE => CompletionMode::Queue,
                _ => return None,
            },
            idle_policy: match o.idle_policy {
                abi::IDLE_BALANCED => IdlePolicy::Balanced,
                abi::IDLE_LATENCY => IdlePolicy::Latency,
                abi::IDLE_POWER => IdlePolicy::Power,
                _ => return None,
            },
            idle_spin_cap: match o.idle_spin_cap_permille {
                0 => None,
                p @ 1..=1000 => Some(p as f32 / 1000.0),
                _ => return None,
            },
            diagnostic: o.diagnostic.map(|f| HostFn {
                f,
                user_data: o.diagnostic_user_data,
            }),
            thread_hooks: (o.thread_start.is_some() || o.thread_stop.is_some()).then_some(
                ThreadHooks {
                    start: o.thread_start,
                    stop: o.thread_stop,
                    user_data: o.hook_user_data,
                },
            ),
            poison_replies: match o.poison_replies {
                abi::POISON_DEFAULT => cfg!(debug_assertions),
                abi::POISON_ON => true,
                abi::POISON_OFF => false,
                _ => return None,
            },
            poll_kinds: o.poll_kinds,
        };
        options.is_valid().then_some(options)
    }

    /// Reads an optional host options pointer: null means the defaults. A struct of an
    /// earlier layout (`struct_size` 24: six `uint32_t`; 96: up to `hook_user_data`; 104:
    /// up to `idle_spin_cap_permille`) is
    /// read as far as it goes, the newer fields taking their defaults.
    ///
    /// # Safety
    /// `opts` is null or points to a readable `ffid_options` of the layout its
    /// `struct_size` names.
    pub unsafe fn from_c_ptr(opts: *const abi::ffid_options) -> Option<Options> {
        if opts.is_null() {
            return Some(Options::default());
        }
        // SAFETY: `struct_size` is the first field of every layout.
        let size = unsafe { opts.cast::<u32>().read_unaligned() } as usize;
        let mut o = Options::default().to_c();
        if [
            abi::OPTIONS_V1_SIZE,
            abi::OPTIONS_V2_SIZE,
            abi::OPTIONS_V3_SIZE,
        ]
        .contains(&size)
        {
            // SAFETY: the host's struct holds `size` readable bytes, a prefix of the
            // current layout (asserted in `abi`).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    opts.cast::<u8>(),
                    (&mut o as *mut abi::ffid_options).cast::<u8>(),
                    size,
                )
            };
            o.struct_size = std::mem::size_of::<abi::ffid_options>() as u32;
        } else if size == std::mem::size_of::<abi::ffid_options>() {
            // SAFETY: the caller guarantees a valid struct of the size it names.
            o = unsafe { opts.read_unaligned() };
        } else {
            return None; // an unknown layout: only its first field was read
        }
        Options::from_c(&o)
    }
}

/// Fills `*opts` with the defaults. Returns `RET_ERR` for a null pointer.
///
/// # Safety
/// `opts` is null or points to writable memory for one `ffid_options`.
#[no_mangle]
pub unsafe extern "C" fn ffid_options_init(opts: *mut abi::ffid_options) -> c_int {
    if opts.is_null() {
        return abi::RET_ERR;
    }
    // SAFETY: non-null and, by this function's contract, valid for one write.
    unsafe { opts.write(Options::default().to_c()) };
    abi::RET_OK
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::ffi::{c_int, c_void};

    #[test]
    fn options_round_trip_through_c() {
        unsafe extern "C" fn hook(_: c_int, _: *const std::ffi::c_char, _: *mut c_void) {}
        unsafe extern "C" fn diag(_: c_int, _: *const std::ffi::c_char, _: usize, _: *mut c_void) {}
        let o = Options {
            ring_capacity: 8,
            spin: Duration::ZERO,
            backpressure: BackPressure::Reject,
            wake: WakeKind::EventFd,
            ring: RingKind::ArrayQueue,
            stale_ping: None,
            not_responding: Some(Duration::from_millis(7)),
            listener_stuck: Some(Duration::from_millis(9)),
            event_ring_capacity: 3,
            event_policy: EventPolicy::Block,
            shutdown_timeout: Duration::from_millis(11),
            completion: CompletionMode::Queue,
            idle_policy: IdlePolicy::Latency,
            idle_spin_cap: Some(0.25),
            diagnostic: Some(HostFn {
                f: diag,
                user_data: 5 as *mut c_void,
            }),
            thread_hooks: Some(ThreadHooks {
                start: Some(hook),
                stop: None,
                user_data: 6 as *mut c_void,
            }),
            poison_replies: !cfg!(debug_assertions),
            poll_kinds: abi::POLL_EVENTS | abi::POLL_DIAGNOSTICS,
        };
        // Function pointers have no meaningful `==`; their Debug form is their address.
        let back = Options::from_c(&o.to_c()).map(|b| format!("{b:?}"));
        assert_eq!(back, Some(format!("{o:?}")));
        let mut bad = Options::default().to_c();
        bad.backpressure = 9;
        assert!(Options::from_c(&bad).is_none());
        let mut bad = Options::default().to_c();
        bad.event_backpressure = 2;
        assert!(Options::from_c(&bad).is_none());
        let mut bad = Options::default().to_c();
        bad.idle_policy = 3;
        assert!(Options::from_c(&bad).is_none());
        let mut bad = Options::default().to_c();
        bad.idle_spin_cap_permille = 1001;
        assert!(Options::from_c(&bad).is_none());
        let mut bad = Options::default().to_c();
        bad.poison_replies = 3;
        assert!(Options::from_c(&bad).is_none());
        // Poll kinds: only the known bits, and only in completion mode.
        let mut bad = o.to_c();
        bad.poll_kinds = 4;
        assert!(Options::from_c(&bad).is_none());
        let mut bad = Options::default().to_c();
        bad.poll_kinds = abi::POLL_EVENTS;
        assert!(Options::from_c(&bad).is_none(), "not in completion mode");
        // A host built against the third header (no poison field) gets the default.
        let mut v3 = o.to_c();
        v3.struct_size = abi::OPTIONS_V3_SIZE as u32;
        // SAFETY: `v3` is a whole struct; its first `OPTIONS_V3_SIZE` bytes are read.
        let read = unsafe { Options::from_c_ptr(&v3) }.expect("the third layout");
        assert_eq!(
            (read.poison_replies, read.idle_spin_cap),
            (cfg!(debug_assertions), Some(0.25))
        );
        // A host built against the second header (no idle fields) gets the defaults.
        let mut v2 = o.to_c();
        v2.struct_size = abi::OPTIONS_V2_SIZE as u32;
        // SAFETY: `v2` is a whole struct; its first `OPTIONS_V2_SIZE` bytes are read.
        let read = unsafe { Options::from_c_ptr(&v2) }.expect("the second layout");
        assert_eq!(
            (read.idle_policy, read.idle_spin_cap),
            (IdlePolicy::Latency, None)
        );
        assert_eq!(read.ring_capacity, 8);
        let mut small = Options::default().to_c();
        small.struct_size = 4;
        assert!(Options::from_c(&small).is_none());
        // SAFETY: `small` is a valid struct; its size field is what is under test.
        assert!(unsafe { Options::from_c_ptr(&small) }.is_none());
    }

    #[test]
    fn first_layout_options_are_read_with_defaults_for_the_rest() {
        // A host built against the first header: six uint32_t.
        let v1: [u32; 6] = [
            abi::OPTIONS_V1_SIZE as u32,
            16,
            0,
            abi::BACKPRESSURE_REJECT,
            abi::WAKE_FUTEX,
            abi::RING_TAGGED,
        ];
        // SAFETY: `v1` is a readable struct of the size its first field names.
        let o = unsafe { Options::from_c_ptr(v1.as_ptr().cast()) }.expect("v1 accepted");
        assert_eq!(o.ring_capacity, 16);
        assert_eq!(o.backpressure, BackPressure::Reject);
        assert_eq!(o.stale_ping, Options::default().stale_ping);
        assert_eq!(o.event_ring_capacity, 1024);
    }

    #[test]
    fn status_names() {
        let name = |c| {
            // SAFETY: ffid_status_name returns static NUL-terminated strings.
            unsafe { std::ffi::CStr::from_ptr(abi::ffid_status_name(c)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(
            [0, 1, 2, 3, 4, 99].map(name),
            [
                "OK",
                "ERR",
                "MISSING_CALLBACK",
                "STALE_WARN",
                "BUSY",
                "UNKNOWN"
            ]
        );
    }
}
