/*
 * ffi_dispatch.h - the C contract of the ffi-dispatch runtime.
 *
 * A library built on ffi-dispatch exports functions of two shapes for each method:
 *
 *   int <lib>_<m>(ffid_ctx* ctx, ffid_callback cb, void* user_data, const <Lib><M>Args* args);
 *   int <lib>_<m>_cbor(ffid_ctx* ctx, ffid_callback cb, void* user_data,
 *                      const uint8_t* req, size_t len);
 *
 * (a method without parameters takes no args pointer natively, and its CBOR export
 * accepts an empty buffer or an empty map), a blocking form (see BLOCKING CALLS) and a
 * typed form (see TYPED CALLS):
 *
 *   int <lib>_<m>_sync(ffid_ctx* ctx, const <Lib><M>Args* args, <out parameters>,
 *                      uint32_t timeout_ms);
 *   int <lib>_<m>_async(ffid_ctx* ctx, const <Lib><M>Args* args, <Lib><M>Reply reply,
 *                       void* user_data);
 *
 * This header declares what every such library shares: the callback, the status codes,
 * the handle and the options.
 *
 * BLOCKING CALLS
 *   <lib>_<m>_sync submits the call and waits on the calling thread: a spin of about
 *   20 us, then a futex sleep, until the answer or timeout_ms (0: no limit). Its return:
 *     FFID_RET_OK       the answer is in the out parameters: scalars and enum values by
 *                       value; text, bytes, records and arrays as one block owned by the
 *                       caller, freed with ffid_free (a record's or array's pointers point
 *                       into the same block, freed with it); an optional scalar as a
 *                       has_out flag and the value, any other option as an owned pointer,
 *                       NULL for none (or for empty text, bytes or an empty array); a NULL
 *                       out pointer drops it
 *     FFID_RET_ERR      the method failed, or the arguments were refused (see
 *                       ACCEPTED OR REFUSED), or the context is in completion mode
 *                       (whose queue would hold the answer for a drain, maybe this
 *                       thread's): <lib>_last_error() says which
 *     FFID_RET_TIMEOUT  timeout_ms passed: the call goes on, and its answer, when it
 *                       comes, is freed by the runtime (exactly once, as every answer)
 *     FFID_RET_BUSY     inside a callback, where it would wait for itself; or the ring
 *                       is full and the context rejects rather than waits
 *     any other refusal of ACCEPTED OR REFUSED, for the same reasons
 *   Any number of threads may block on one context at once.
 *
 * TYPED CALLS
 *   <lib>_<m>_async is accepted or refused as <lib>_<m> is (ACCEPTED OR REFUSED: a NULL
 *   reply is FFID_RET_MISSING_CALLBACK), and its reply is called where cb would be, with
 *   the answer as C values in place of (msg, len):
 *     typedef void (*<Lib><M>Reply)(int ret, <values>, const char* msg, void* user_data);
 *   <values> are what the blocking form's out parameters point to (a scalar, a pointer,
 *   or a pointer and a length), owned by the host exactly as a blocking call's answer:
 *   free text, bytes, records and arrays with ffid_free. With FFID_RET_OK msg is NULL;
 *   with FFID_RET_ERR the values are zero or NULL and msg is the error; with
 *   FFID_RET_STALE_WARN (a progress ping, before the one terminal reply) msg is the
 *   elapsed milliseconds; msg is valid during the call only. Typed listeners
 *   (<lib>_listen_<event>) get each event the same way, owned, with no ret or msg.
 *
 * ACCEPTED OR REFUSED
 *   A call function returns FFID_RET_OK when the call is accepted: exactly one terminal
 *   callback (FFID_RET_OK or FFID_RET_ERR) follows, on the context's worker thread,
 *   never zero, never two - also when the context is destroyed while the call waits.
 *   Any other return value means refused: the callback is never invoked, and
 *   <lib>_last_error() gives the calling thread the reason as text, e.g.
 *   "argument `user`, field `name`: invalid UTF-8 at byte 3".
 *     FFID_RET_MISSING_CALLBACK  cb is NULL
 *     FFID_RET_BUSY              the ring is full and the context rejects rather than
 *                                waits; or the ring is full and the caller is inside a
 *                                callback (see INSIDE A CALLBACK: such a call never
 *                                blocks); or, in completion mode, the ring is full while
 *                                the completion queue is too (see COMPLETION MODE)
 *     FFID_RET_CLOSED            the context is being destroyed or was destroyed, or was
 *                                inherited across fork (see FORK)
 *     FFID_RET_INVALID_CTX       ctx is NULL, was never a handle of this library
 *                                (garbage, another library's), or is a context of
 *                                another library sharing this runtime
 *     FFID_RET_TOO_LARGE         the arguments, with everything they point to, take more
 *                                than FFID_MAX_REQUEST_BYTES, or more memory than could
 *                                be had for their copy
 *     FFID_RET_ERR               invalid arguments: args is NULL; req is NULL with
 *                                len > 0; a string, bytes or array pointer is NULL where
 *                                a value is required; a string is not valid UTF-8; an
 *                                enum holds an unknown value; the host changed the
 *                                arguments while the call copied them
 *   Codes may be added (only ever appended): treat an unknown non-zero return as
 *   refused. A handle is told destroyed from garbage by its registry slot, so garbage
 *   that happens to name a slot (1 in 2^15) reads as FFID_RET_CLOSED.
 *
 * LAST ERROR
 *   <lib>_last_error() (and ffid_last_error(), which with two libraries in one process
 *   may reach the other's) is the calling thread's: why its last call was refused (any
 *   non-zero return of a call, cancel, destroy, stats or listener function), its last
 *   create returned NULL, or its last blocking call failed. A create or blocking call
 *   that succeeds empties it; other accepted calls leave it as it is (read it right
 *   after the failure, as errno). The text is owned by the runtime, NUL-terminated,
 *   never NULL, at most 511 bytes, and stays until that thread's next refusal, create
 *   or blocking call.
 *
 * POINTER OWNERSHIP AND LIFETIME
 *   args, every pointer inside it, and req: borrowed for the duration of the call only.
 *     The runtime copies what it needs before returning; the caller may free or reuse
 *     them as soon as the call function returns, accepted or refused.
 *   user_data: never dereferenced; handed back to cb, possibly on another thread. The
 *     caller keeps it valid until the terminal callback of that call has returned.
 *   cb: must stay callable until the terminal callback of that call has returned.
 *   msg (in the callback): owned by the runtime, valid only during the callback;
 *     copy it to keep it. msg is never NULL and msg[len] == 0, so a text answer can be
 *     read as a C string. On FFID_RET_ERR it is a non-empty UTF-8 message.
 *   ffid_ctx*: an opaque handle, never a real pointer. It stays valid until
 *     <lib>_destroy returns; afterwards every use is refused with FFID_RET_CLOSED. It is
 *     meaningful only to the library that made it: another library in the same process
 *     refuses it (FFID_RET_INVALID_CTX).
 *
 * ANSWERS
 *   native: a string as its UTF-8 bytes, an integer or float as its native-endian bytes
 *     (len == its size: memcpy it out), a bool as 1 byte (0 or 1), an enum as an int32_t,
 *     no value as len == 0; a record as a pointer to its C struct (len == sizeof) and an
 *     array as a pointer to its elements (len == count * sizeof), everything they point
 *     to valid only during the callback. Each library's header says what each method
 *     answers.
 *   CBOR: the encoded return value; no value is CBOR null (the single byte 0xf6).
 *   CBOR requests are maps keyed by parameter name; unknown keys are ignored; a missing,
 *   duplicate or mistyped key is answered FFID_RET_ERR naming the key. Malformed CBOR is
 *   accepted (FFID_RET_OK) and answered FFID_RET_ERR.
 *
 * THREADS
 *   Call functions may be called from any thread, concurrently. Requests from one thread
 *   to one context are handled in the order they were accepted. Terminal callbacks run
 *   on the context's worker thread, one at a time - except a deferred method's (its
 *   header says so), which runs on whichever thread the library completes it, and
 *   FFID_RET_STALE_WARN pings, which come from the context's monitor thread while the
 *   request runs. So a cb used with deferred methods or pings must be thread-safe. A
 *   callback may call into the library again (never blocking: a full ring gives
 *   FFID_RET_BUSY), but cannot destroy a context (FFID_RET_BUSY; see INSIDE A CALLBACK).
 *   A context has up to three threads: the worker, the event thread (listeners) and
 *   the monitor (pings, diagnostics; only when some interval is configured). The thread
 *   hooks in ffid_options run first and last on each. They start with the signal mask
 *   of the thread that called <lib>_create (block signals there first to keep them off
 *   the runtime's threads).
 *
 * INSIDE A CALLBACK
 *   Means every call the runtime makes into host code, on any thread: terminal
 *   callbacks and pings (on the worker or the monitor), deferred answers (on the
 *   library's thread), drained completions (on the draining thread), listeners (on the
 *   event thread), diagnostics and thread hooks. From inside a callback <lib>_destroy
 *   returns FFID_RET_BUSY (the context may be waiting for that very callback), and a call
 *   never blocks: where it would wait for ring space it returns FFID_RET_BUSY.
 *   Callbacks must return normally: a C++ exception, longjmp or pthread_exit out of one
 *   aborts the process (it would unwind through Rust frames). Time spent in host
 *   callbacks is not the library's: progress pings and FFID_DIAG_NOT_RESPONDING measure
 *   handlers only, not the callbacks that answer them.
 *
 * PROGRESS PINGS
 *   While a request runs longer than ffid_options.stale_ping_ms (default 5000), its cb
 *   gets FFID_RET_STALE_WARN every interval, msg = the elapsed milliseconds as decimal
 *   text (measured from when the monitor first saw it running, so low by at most an
 *   eighth of the interval). Pings are non-terminal, never follow the terminal callback,
 *   and never cancel anything. Deferred requests are pinged the same way until answered.
 *
 * REQUEST IDS AND CANCELLATION
 *   <lib>_last_request_id() returns the id of the last call the calling thread had
 *   accepted; <lib>_cancel(ctx, id) answers a request the worker has not started
 *   FFID_RET_ERR "cancelled" without running it. Ids are per context, increasing from 1;
 *   the FFID_RING_ARRAY_QUEUE ring gives none (0), and cancel then refuses.
 *
 * EVENTS
 *   A library's events reach listeners added with <lib>_add_<event>_listener (the
 *   event's C struct), ..._listener_cbor (its CBOR) or <lib>_add_event_listener (every
 *   event as {"event": name, "payload": ...}). Listeners run on the event thread in
 *   emission order; msg is valid during the call only. An event goes to the listeners
 *   registered when the event thread delivers it; one emitted while the context has no
 *   listener at all is discarded at once (nothing is queued or counted). A slow listener delays only other
 *   listeners, never the worker. When the event ring is full the new event is dropped and
 *   counted (FFID_EVENTS_DROP_NEWEST) or the emitter waits (FFID_EVENTS_BLOCK). After
 *   <lib>_destroy returns no listener is called again; events queued before destroy are
 *   delivered first.
 *
 * COMPLETION MODE
 *   With ffid_options.completion = FFID_COMPLETION_QUEUE, terminal callbacks (the create
 *   callback, answers, deferred answers) and FFID_RET_STALE_WARN pings are not called on
 *   the context's threads: they queue, and <lib>_completion_fd(ctx) (an eventfd) turns
 *   readable. The host polls it and calls <lib>_drain(ctx, max), which runs them on the
 *   calling thread, in the order they were queued. msg is then valid during that call.
 *   The queue holds max(2 x ring_capacity, 1024) callbacks and never drops: when it is
 *   full, whoever answers (the worker, a deferred answer's thread, the monitor) waits
 *   for a drain, looking again every 100 us. No host thread ever waits for that
 *   space, since it may be the only drainer: a call that finds the ring full while some
 *   answer waits for completion space is refused FFID_RET_BUSY, also under
 *   FFID_BACKPRESSURE_BLOCK (drain, then call again); a drained callback is inside a
 *   callback. <lib>_destroy may be called with the queue full and nothing drained: it
 *   stops bounding the queue, so nothing it waits for waits for the host, answers every
 *   accepted call and runs whatever is left on its own thread before returning (and is
 *   refused inside a drained callback). Listeners still run on the event thread.
 *
 * POLL
 *   A context in completion mode can also be consumed as entries, for an event loop
 *   that dispatches by itself: <lib>_poll(ctx, entries, max, timeout_ms) moves up to
 *   max queued answers and pings into the host's ffid_entry array and returns how many
 *   (set entries[0].struct_size = sizeof(ffid_entry) first: the runtime writes no more
 *   than that of each entry, so a host built with an older header keeps working). Each
 *   entry says its kind (FFID_ENTRY_*), the request id (<lib>_last_request_id; 0 for the
 *   create's outcome), the status, the call's cb and user_data, and the payload: the
 *   answer (as the callback would get it) or the ping's text, len bytes and a NUL. Poll
 *   never calls cb: the entry is the terminal answer (a host may call e.cb itself).
 *   Typed replies (<lib>_<m>_async) are the runtime's own callbacks: poll runs them on
 *   the polling thread (inside a callback) and gives no entry for them.
 *   Lifetime: an entry's payload is lent until the next poll on that context (or its
 *   destroy); nothing needs freeing (a poll with max = 0 only releases the last batch). One consumer at a time: a poll while another thread
 *   polls or drains returns -FFID_RET_BUSY. When nothing waits, poll blocks on the
 *   completion eventfd up to timeout_ms (0: not at all; negative: no limit; inside a
 *   callback it never blocks) and returns 0 if nothing came. Refusals are negative
 *   statuses (-FFID_RET_CLOSED, -FFID_RET_INVALID_CTX, ...; <lib>_last_error() says why).
 *   <lib>_poll_fd(ctx) returns a fresh duplicate (close-on-exec) of the eventfd, owned by
 *   the host: poll/epoll it and call <lib>_poll when readable; close it whenever (the
 *   library never writes to a descriptor the host closed); never read from it (that
 *   would eat the signal). Destroy wakes a poller blocked in <lib>_poll: its batch ends
 *   with one FFID_ENTRY_CLOSED entry (status FFID_RET_CLOSED) and later polls are
 *   refused; answers not polled by then are delivered by destroy to their cb, on the
 *   destroying thread, so every accepted call still gets exactly one terminal answer.
 *   <lib>_drain and <lib>_poll consume the same queue: use one of them.
 *   ffid_options.poll_kinds (completion mode only; anything else makes create return
 *   NULL) sends more through the same queue. FFID_POLL_EVENTS: every event the library
 *   emits becomes an FFID_ENTRY_EVENT entry (request_id = the event's index in the
 *   library's event list, in declaration order; payload = the CBOR map {"event": name,
 *   "payload": <the event's CBOR>}) and no listener is called; when the queue is full an
 *   event is dropped and counted (FFID_EVENTS_DROP_NEWEST) or the emitter waits for a
 *   poll (FFID_EVENTS_BLOCK). FFID_POLL_DIAGNOSTICS: every FFID_DIAG_* report becomes
 *   an FFID_ENTRY_DIAGNOSTIC entry (status = the code, payload = the text) instead of a
 *   call of ffid_options.diagnostic. Events and reports not polled before destroy are
 *   dropped; a drain drops them too.
 *
 * DIAGNOSTICS
 *   ffid_options.diagnostic, if set, is called on the monitor thread with ret = a
 *   FFID_DIAG_* code and msg a human-readable text: FFID_DIAG_NOT_RESPONDING once when
 *   the worker has spent not_responding_ms in one handler, FFID_DIAG_RESPONDING when it
 *   moves on, FFID_DIAG_LISTENER_STUCK once per listener call that lasts
 *   listener_stuck_ms; and FFID_DIAG_PANIC, on the thread that caught it (the worker),
 *   when a handler, the constructor, the teardown or an async handler panicked: msg
 *   names it, gives the panic's message and where it happened.
 *
 * LIFECYCLE
 *   <lib>_create(cb, user_data, cfg) returns a handle at once, or NULL (and no callback)
 *   when it cannot start: invalid options (a ring_capacity or event_ring_capacity of 0 or
 *   above FFID_MAX_RING_CAPACITY, an unknown value, a non-zero reserved), invalid
 *   constructor arguments, a library that serves another interface than the header the
 *   host was built with (<LIB>_INTERFACE_HASH), no memory for the rings, or no thread to
 *   be had; ffid_last_error() then says which. Whatever a failed create had started is stopped
 *   and joined before it returns, thread_stop hooks included: the hooks' user_data may
 *   be freed as soon as it returns NULL. The constructor runs on the new worker thread and reports
 *   through cb: FFID_RET_OK with no value, or FFID_RET_ERR with a message. Calls made
 *   right after create queue behind the constructor; if it failed they are answered
 *   FFID_RET_ERR, and the handle must still be destroyed.
 *   <lib>_destroy(ctx) is synchronous: it refuses new calls, answers every accepted call,
 *   runs the library's teardown, joins the worker, waits up to shutdown_timeout_ms for
 *   deferred replies (then answers the rest FFID_RET_ERR), delivers queued events, joins
 *   the other threads and frees everything. It is refused FFID_RET_CLOSED for a context
 *   already destroyed or being destroyed (a second destroy), FFID_RET_INVALID_CTX for a
 *   handle that is not one of this library's, and FFID_RET_BUSY inside a callback.
 *   A library's static methods run on a context of their own, made
 *   on first use and kept for the life of the process; if it cannot be made (no thread
 *   to be had) the call is refused and the next one tries again.
 *
 * FORK
 *   Contexts do not survive fork(): the child has none of their threads. In the child
 *   every context inherited from the parent is refused (calls and destroy return
 *   FFID_RET_CLOSED, no callback comes; its memory is left as it is). Create new contexts in
 *   the child; static methods make their own. The parent's contexts are unaffected.
 *   Descriptors the parent's contexts own (eventfds) stay open in the child, closed on
 *   exec (they are O_CLOEXEC).
 *
 * UNLOADING
 *   dlclose is safe once every context the host made is destroyed, no call into the
 *   library is in progress, and no callback is running. The library's threads end
 *   inside destroy; a host thread that called in may keep the library loaded until it
 *   exits (glibc unloads a library only once the threads that used its thread-locals
 *   are gone). A library whose static methods were called keeps their context, and
 *   must not be unloaded. Unloaded this way, it leaves no memory behind. At process exit
 *   nothing is freed (other threads may still be inside the library), so a host thread
 *   may keep calling until exit.
 *
 * PANICS
 *   A Rust handler that panics is answered FFID_RET_ERR, "handler panicked: ...", and the
 *   worker keeps serving - unless the library was built with panic = "abort"
 *   (ffid_catches_panics() returns 0), in which case the process aborts. Nothing is
 *   written to the host's stdout or stderr: a caught panic is reported only through
 *   FFID_DIAG_PANIC, if a diagnostic callback is set (RUST_BACKTRACE changes nothing).
 *   Panics on threads the library starts itself are the library's own business.
 */
#ifndef FFI_DISPATCH_H
#define FFI_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (the first four keep nim-ffi's values). */
#define FFID_RET_OK 0               /* accepted / terminal success */
#define FFID_RET_ERR 1              /* refused / terminal failure, msg says why */
#define FFID_RET_MISSING_CALLBACK 2 /* refused: cb was NULL */
#define FFID_RET_STALE_WARN 3       /* non-terminal progress ping, msg = elapsed ms */
#define FFID_RET_BUSY 4             /* refused: ring full, or a blocking call inside a callback */
#define FFID_RET_TIMEOUT 5          /* a blocking call's timeout passed (see BLOCKING CALLS) */
#define FFID_RET_CLOSED 6           /* refused: the context is destroyed or being destroyed */
#define FFID_RET_INVALID_CTX 7      /* refused: not a context of this library (NULL, garbage) */
#define FFID_RET_TOO_LARGE 8        /* refused: arguments over FFID_MAX_REQUEST_BYTES */

/* The most bytes one request's arguments may take once copied (a native args struct
 * with everything it points to, or a CBOR buffer): 1 GiB. */
#define FFID_MAX_REQUEST_BYTES 1073741824u

/* The host's callback. msg/len: see POINTER OWNERSHIP above. */
typedef void (*ffid_callback)(int ret, const char* msg, size_t len, void* user_data);

/* Opaque, generation-checked context handle. */
typedef struct ffid_ctx ffid_ctx;

/* Values of ffid_options.backpressure */
#define FFID_BACKPRESSURE_BLOCK 0  /* a full ring makes the caller wait (default) */
#define FFID_BACKPRESSURE_REJECT 1 /* a full ring refuses with FFID_RET_BUSY */
/* Values of ffid_options.wake */
#define FFID_WAKE_FUTEX 0   /* futex word (default) */
#define FFID_WAKE_EVENTFD 1 /* Linux eventfd */

/* Values of ffid_options.ring */
#define FFID_RING_TAGGED 0      /* producers tag slots, the worker never writes them (default) */
#define FFID_RING_ARRAY_QUEUE 1 /* crossbeam-queue's ArrayQueue, for comparison */

/* Values of ffid_options.event_backpressure */
#define FFID_EVENTS_DROP_NEWEST 0 /* a full event ring drops the new event, counted (default) */
#define FFID_EVENTS_BLOCK 1       /* a full event ring makes the emitter wait */

/* Values of ffid_options.completion */
#define FFID_COMPLETION_CALLBACK 0 /* callbacks run on the context's threads (default) */
#define FFID_COMPLETION_QUEUE 1    /* they queue; the host runs them with <lib>_drain */

/* Values of ffid_options.idle_policy: what the idle worker spends to answer the next
 * request without a wake (a futex wake costs tens of µs on a VM). What a policy costs
 * shows in ffid_context_stats.idle_spin_ns, what it leaves to pay in avoidable_wakes.
 * LATENCY spins the whole spin_ns bound after every request, then parks: up to
 *   spin_ns of a core per idle gap (the default).
 * BALANCED (experimental) learns the gaps between requests: it spins when the next is
 *   due within the spin_ns bound, naps until just before a request that comes on a
 *   regular period and spins through its expected arrival, and keeps idle spinning
 *   under idle_spin_cap_permille (default half a core). On a 2-vCPU VM its naps can
 *   still cost a request the host thread's time slice, when the host spins for the
 *   answer on the core the worker wakes on.
 * POWER never spins: the worker parks at once, and every request after an idle gap
 *   pays a wake (no idle CPU at all). */
#define FFID_IDLE_LATENCY 0
#define FFID_IDLE_BALANCED 1
#define FFID_IDLE_POWER 2

/* Values of ffid_options.poison_replies: once the callback of a context's call returns
 * (the raw native or CBOR forms: msg, and whatever a record or array in it points to),
 * the runtime overwrites those bytes with 0xa5, so that a pointer kept past the callback
 * reads visible garbage instead of, silently, the next answer's data. Owned answers
 * (blocking and typed forms) are the host's and never touched. Not poisoned: inline
 * exports' answers and listeners' events, and, in completion mode, drained answers
 * (each a copy, or a block freed after its callback). */
#define FFID_POISON_DEFAULT 0 /* on when the library is a debug build, off otherwise */
#define FFID_POISON_ON 1
#define FFID_POISON_OFF 2
#define FFID_POISON_BYTE 0xa5

/* Diagnostic codes (the ret of ffid_options.diagnostic) */
#define FFID_DIAG_NOT_RESPONDING 1 /* the worker is stuck in one handler */
#define FFID_DIAG_RESPONDING 2     /* ... and has moved on */
#define FFID_DIAG_LISTENER_STUCK 3 /* one listener call is taking too long */
#define FFID_DIAG_PANIC 4          /* Rust code panicked on a context thread; msg says where */

/* The largest ring_capacity and event_ring_capacity a create accepts (2^20). Each slot
 * takes 128 bytes: a request ring that large takes 128 MiB, and in completion mode the
 * completion queue (twice the ring) 256 MiB more. */
#define FFID_MAX_RING_CAPACITY 1048576u

/* Thread roles (the role of ffid_thread_hook) */
#define FFID_THREAD_WORKER 0
#define FFID_THREAD_EVENTS 1
#define FFID_THREAD_MONITOR 2

/* Runs first (thread_start) or last (thread_stop) on each of a context's threads, e.g.
 * to attach it to a VM. name: the thread's name, valid during the call. */
typedef void (*ffid_thread_hook)(int role, const char* name, void* user_data);

/* Runtime options for <lib>_create_with_options. Always fill with ffid_options_init
 * first, then change fields: struct_size identifies the layout the host compiled (the
 * earlier layouts, up to ring, hook_user_data or idle_spin_cap_permille, are still
 * accepted). Function pointers and
 * user_data here must stay valid until destroy returns; they are called on the
 * context's threads. */
typedef struct ffid_options {
    uint32_t struct_size;   /* sizeof(ffid_options), set by ffid_options_init */
    uint32_t ring_capacity; /* requests the ring holds; default 4096; 1..FFID_MAX_RING_CAPACITY */
    uint32_t spin_ns;       /* idle worker busy-spins this long before parking; default 50000 */
    uint32_t backpressure;  /* FFID_BACKPRESSURE_* */
    uint32_t wake;          /* FFID_WAKE_* */
    uint32_t ring;          /* FFID_RING_* */
    uint32_t stale_ping_ms;       /* ping interval for running requests; default 5000; 0 = off */
    uint32_t not_responding_ms;   /* FFID_DIAG_NOT_RESPONDING threshold; default 10000; 0 = off */
    uint32_t listener_stuck_ms;   /* FFID_DIAG_LISTENER_STUCK threshold; default 1000; 0 = off */
    uint32_t event_ring_capacity; /* events queued at most; default 1024; 1..FFID_MAX_RING_CAPACITY */
    uint32_t event_backpressure;  /* FFID_EVENTS_* */
    uint32_t shutdown_timeout_ms; /* destroy waits this long for deferred replies; default 5000 */
    uint32_t completion;          /* FFID_COMPLETION_* */
    uint32_t reserved;            /* must be 0: anything else makes create return NULL */
    ffid_callback diagnostic;     /* FFID_DIAG_* reports, on the monitor thread (FFID_DIAG_PANIC
                                     on the worker); may be NULL */
    void* diagnostic_user_data;   /* passed to diagnostic */
    ffid_thread_hook thread_start; /* may be NULL */
    ffid_thread_hook thread_stop;  /* may be NULL */
    void* hook_user_data;          /* passed to both hooks */
    uint32_t idle_policy;            /* FFID_IDLE_*; default FFID_IDLE_LATENCY */
    uint32_t idle_spin_cap_permille; /* BALANCED: the most idle spinning may cost, 1..1000
                                        thousandths of a core; 0 = 500 */
    uint32_t poison_replies;         /* FFID_POISON_*; default FFID_POISON_DEFAULT */
    uint32_t poll_kinds;             /* FFID_POLL_* bits (completion mode only); default 0 */
} ffid_options;

/* A context's counters. Set struct_size = sizeof(ffid_context_stats) before the call;
 * the runtime writes at most that many bytes. Cheap to poll: relaxed loads. */
typedef struct ffid_context_stats {
    uint32_t struct_size;      /* set by the host */
    uint32_t reserved;
    uint64_t accepted;         /* calls accepted onto the ring */
    uint64_t completed;        /* terminal callbacks made, counted as each starts */
    uint64_t refused;          /* calls this live context refused (full, bad args, closing) */
    uint64_t queue_depth;      /* requests queued now */
    uint64_t high_water;       /* deepest queue the worker has seen */
    uint64_t wakeups;          /* producer wakes of the parked worker (syscalls) */
    uint64_t spin_hits;        /* idle spins that found work before parking */
    uint64_t parks;            /* times the worker announced parking (>= wakeups) */
    uint64_t panics;           /* handlers that panicked */
    uint64_t deferred_pending; /* deferred replies not yet answered */
    uint64_t cancelled;        /* requests answered "cancelled" */
    uint64_t stale_pings;      /* FFID_RET_STALE_WARN pings delivered */
    uint64_t events_emitted;   /* events queued for the event thread */
    uint64_t events_dropped;   /* events dropped on a full event ring */
    uint64_t events_delivered; /* listener calls made */
    uint64_t idle_spin_ns;     /* time the idle worker spun for work, ns (what staying hot costs) */
    uint64_t avoidable_wakes;  /* sleeps a request ended within 1 ms: wakes a spin that long
                                  would have saved (what parking costs) */
} ffid_context_stats;

/* Kinds of ffid_entry (more may be added: skip kinds you do not know) */
#define FFID_ENTRY_ANSWER 1 /* a call's terminal answer: status FFID_RET_OK or FFID_RET_ERR */
#define FFID_ENTRY_PING 2   /* a progress ping: status FFID_RET_STALE_WARN, payload = elapsed ms */
#define FFID_ENTRY_CLOSED 3 /* destroy began: the last entry; status FFID_RET_CLOSED */
#define FFID_ENTRY_EVENT 4  /* an event (FFID_POLL_EVENTS): request_id = its index in the
                               library's events, payload = CBOR {"event": name, "payload": ...} */
#define FFID_ENTRY_DIAGNOSTIC 5 /* a report (FFID_POLL_DIAGNOSTICS): status = FFID_DIAG_*,
                                   payload = its text */

/* Bits of ffid_options.poll_kinds: what else <lib>_poll hands out (see POLL) */
#define FFID_POLL_EVENTS 1      /* events, instead of reaching listeners */
#define FFID_POLL_DIAGNOSTICS 2 /* FFID_DIAG_* reports, instead of the diagnostic callback */

/* One entry of <lib>_poll (see POLL). Only ever appended to. */
typedef struct ffid_entry {
    uint32_t struct_size;   /* entries[0]: set by the host; each entry: the bytes written */
    uint32_t kind;          /* FFID_ENTRY_* */
    uint64_t request_id;    /* the call's id (<lib>_last_request_id); 0: the create's outcome */
    int32_t status;         /* FFID_RET_*: the answer's status, FFID_RET_STALE_WARN for a ping */
    uint32_t reserved;      /* 0 */
    ffid_callback cb;       /* the cb the call was made with (never called by poll); NULL if CLOSED */
    void* user_data;        /* the call's user_data */
    const uint8_t* payload; /* len bytes and a NUL, lent until this context's next poll */
    size_t len;             /* bytes at payload, the NUL not counted */
} ffid_entry;

/* Copies the counters of ctx into *out. FFID_RET_OK; FFID_RET_ERR for NULL out or
 * out->struct_size < 8; FFID_RET_CLOSED or FFID_RET_INVALID_CTX for a handle that is not
 * live. With two ffi-dispatch libraries in one
 * process this symbol belongs to one of them: prefer <lib>_stats, which always works. */
int ffid_stats(ffid_ctx* ctx, ffid_context_stats* out);

/* Fills *opts with the defaults. Returns FFID_RET_OK, or FFID_RET_ERR for NULL.
 * opts: borrowed for the call, written once. */
int ffid_options_init(ffid_options* opts);

/* Static name of a status code ("OK", "ERR", "MISSING_CALLBACK", "STALE_WARN", "BUSY",
 * "TIMEOUT", "CLOSED", "INVALID_CTX", "TOO_LARGE", or "UNKNOWN"). The string is never
 * freed. */
const char* ffid_status_name(int code);

/* 1 when handler panics are answered FFID_RET_ERR, 0 when they abort the process. */
int ffid_catches_panics(void);

/* Why the calling thread's last call was refused, its last <lib>_create* returned NULL,
 * or its last blocking call (<lib>_<m>_sync) did not answer FFID_RET_OK (see LAST
 * ERROR). Never NULL. The text is owned by the runtime and stays until this thread's
 * next refusal, create or blocking call. With two ffi-dispatch libraries in one process this symbol belongs to one of
 * them (each library's runtime keeps its own): prefer <lib>_last_error, which always
 * reaches the right one. */
const char* ffid_last_error(void);

/* Frees an answer a blocking call handed out (text, bytes, a record, an array: each one
 * block). NULL is ignored. Free each answer once. With two ffi-dispatch libraries in one
 * process this symbol belongs to one of them: <lib>_free frees that library's answers
 * always. */
void ffid_free(const void* answer);

#ifdef __cplusplus
}
#endif

#endif /* FFI_DISPATCH_H */
