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
 * accepts an empty buffer or an empty map). This header declares what every such
 * library shares: the callback, the status codes, the handle and the options.
 *
 * ACCEPTED OR REFUSED
 *   A call function returns FFID_RET_OK when the call is accepted: exactly one terminal
 *   callback (FFID_RET_OK or FFID_RET_ERR) follows, on the context's worker thread,
 *   never zero, never two - also when the context is destroyed while the call waits.
 *   Any other return value means refused: the callback is never invoked.
 *     FFID_RET_MISSING_CALLBACK  cb is NULL
 *     FFID_RET_BUSY              the ring is full and the context rejects rather than
 *                                waits, or the caller is a worker thread (a call made
 *                                from inside a callback never blocks)
 *     FFID_RET_ERR               ctx is NULL, garbage, destroyed, being destroyed, or of
 *                                another library; args is NULL; req is NULL with len > 0;
 *                                a string field is NULL or not valid UTF-8
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
 *     <lib>_destroy returns; afterwards every use is refused with FFID_RET_ERR. It is
 *     meaningful only to the library that made it: another library in the same process
 *     refuses it.
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
 *   to one context are handled in the order they were accepted. Callbacks run on the
 *   context's worker thread, one at a time; a callback may call into the library again
 *   (never blocking: a full ring gives FFID_RET_BUSY), but must not destroy a context.
 *
 * LIFECYCLE
 *   <lib>_create(cb, user_data, cfg) returns a handle at once, or NULL (and no callback)
 *   when it cannot start. The constructor runs on the new worker thread and reports
 *   through cb: FFID_RET_OK with no value, or FFID_RET_ERR with a message. Calls made
 *   right after create queue behind the constructor; if it failed they are answered
 *   FFID_RET_ERR, and the handle must still be destroyed.
 *   <lib>_destroy(ctx) is synchronous: it refuses new calls, answers every accepted call,
 *   runs the library's teardown, joins the worker and frees everything. It returns
 *   FFID_RET_ERR for a handle that is not live (e.g. a second destroy) and when called
 *   from a worker thread (inside any callback).
 *
 * PANICS
 *   A Rust handler that panics is answered FFID_RET_ERR, "handler panicked: ...", and the
 *   worker keeps serving - unless the library was built with panic = "abort"
 *   (ffid_catches_panics() returns 0), in which case the process aborts.
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
#define FFID_RET_STALE_WARN 3       /* non-terminal progress ping (reserved) */
#define FFID_RET_BUSY 4             /* refused: ring full */

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

/* Runtime options for <lib>_create_with_options. Always fill with ffid_options_init
 * first, then change fields: struct_size identifies the layout the host compiled. */
typedef struct ffid_options {
    uint32_t struct_size;   /* sizeof(ffid_options), set by ffid_options_init */
    uint32_t ring_capacity; /* requests the ring holds; default 4096; 0 is invalid */
    uint32_t spin_ns;       /* idle worker busy-spins this long before parking; default 50000 */
    uint32_t backpressure;  /* FFID_BACKPRESSURE_* */
    uint32_t wake;          /* FFID_WAKE_* */
    uint32_t ring;          /* FFID_RING_* */
} ffid_options;

/* Fills *opts with the defaults. Returns FFID_RET_OK, or FFID_RET_ERR for NULL.
 * opts: borrowed for the call, written once. */
int ffid_options_init(ffid_options* opts);

/* Static name of a status code ("OK", "ERR", "MISSING_CALLBACK", "STALE_WARN", "BUSY",
 * or "UNKNOWN"). The string is never freed. */
const char* ffid_status_name(int code);

/* 1 when handler panics are answered FFID_RET_ERR, 0 when they abort the process. */
int ffid_catches_panics(void);

#ifdef __cplusplus
}
#endif

#endif /* FFI_DISPATCH_H */
