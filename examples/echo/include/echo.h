/*
 * echo.h - the example library served through ffi-dispatch.
 *
 * Every method has a native export (args in a struct) and a CBOR export (args as a map
 * keyed by parameter name). The rules of ffi_dispatch.h apply to all of them: return
 * FFID_RET_OK = accepted, exactly one terminal callback follows; anything else =
 * refused, no callback. All pointers passed in are borrowed for the duration of the
 * call only (the runtime copies what it needs).
 *
 * Native answers: strings as UTF-8 bytes, u64 as 8 native-endian bytes, bool as 1 byte,
 * no value as len == 0. CBOR answers: the CBOR encoding of the value; no value is 0xf6.
 */
#ifndef ECHO_H
#define ECHO_H

#include <stddef.h>
#include <stdint.h>

#include "ffi_dispatch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Constructor arguments. CBOR: {"prefix": tstr} */
typedef struct EchoConfig {
    const char* prefix; /* NUL-terminated UTF-8, borrowed for the call */
} EchoConfig;

/* Create a context. Returns NULL with no callback when cb or cfg is NULL, a string is
 * not UTF-8 (CBOR: the request is malformed), or no worker could be started. Otherwise
 * cb reports the constructor's outcome (FFID_RET_OK with no value, or FFID_RET_ERR). */
ffid_ctx* echo_create(ffid_callback cb, void* user_data, const EchoConfig* cfg);
ffid_ctx* echo_create_cbor(ffid_callback cb, void* user_data, const uint8_t* req, size_t len);
/* As echo_create, with runtime options (opts may be NULL for the defaults; options not
 * made by ffid_options_init, or with out-of-range values, make create return NULL). */
ffid_ctx* echo_create_with_options(ffid_callback cb, void* user_data, const EchoConfig* cfg,
                                   const ffid_options* opts);

/* Synchronous: answers every accepted call, then frees the context. FFID_RET_OK, or
 * FFID_RET_ERR for a handle that is not live or a call from inside a callback. */
int echo_destroy(ffid_ctx* ctx);

/* shout(text: str) -> str: "<prefix>: <TEXT>" (ASCII upper-cased). */
typedef struct EchoShoutArgs {
    const char* text; /* NUL-terminated UTF-8 */
} EchoShoutArgs;
int echo_shout(ffid_ctx* ctx, ffid_callback cb, void* user_data, const EchoShoutArgs* args);
int echo_shout_cbor(ffid_ctx* ctx, ffid_callback cb, void* user_data, const uint8_t* req, size_t len);

/* scalar_check(a: i64, b: i64, x: f64) -> bool: ((a + b + (int64_t)x) & 1) == 0,
 * x truncated toward zero. */
typedef struct EchoScalarCheckArgs {
    int64_t a;
    int64_t b;
    double x;
} EchoScalarCheckArgs;
int echo_scalar_check(ffid_ctx* ctx, ffid_callback cb, void* user_data, const EchoScalarCheckArgs* args);
int echo_scalar_check_cbor(ffid_ctx* ctx, ffid_callback cb, void* user_data, const uint8_t* req, size_t len);

/* payload_check(data: bytes) -> bool: the scalar_check predicate on
 * (first byte, last byte, length), (0, 0, 0.0) when empty. The bytes are not walked. */
typedef struct EchoPayloadCheckArgs {
    const uint8_t* data; /* data_len bytes; may be NULL when data_len == 0 */
    size_t data_len;
} EchoPayloadCheckArgs;
int echo_payload_check(ffid_ctx* ctx, ffid_callback cb, void* user_data, const EchoPayloadCheckArgs* args);
int echo_payload_check_cbor(ffid_ctx* ctx, ffid_callback cb, void* user_data, const uint8_t* req, size_t len);

/* count() -> u64: how many calls this context handled before this one (the constructor
 * not counted). */
int echo_count(ffid_ctx* ctx, ffid_callback cb, void* user_data);
int echo_count_cbor(ffid_ctx* ctx, ffid_callback cb, void* user_data, const uint8_t* req, size_t len);

/* sleep(ms: u32) -> no value: sleeps on the worker thread. */
typedef struct EchoSleepArgs {
    uint32_t ms;
} EchoSleepArgs;
int echo_sleep(ffid_ctx* ctx, ffid_callback cb, void* user_data, const EchoSleepArgs* args);
int echo_sleep_cbor(ffid_ctx* ctx, ffid_callback cb, void* user_data, const uint8_t* req, size_t len);

/* fail(message: str) -> never OK: FFID_RET_ERR with message ("unknown error" if empty). */
typedef struct EchoFailArgs {
    const char* message; /* NUL-terminated UTF-8 */
} EchoFailArgs;
int echo_fail(ffid_ctx* ctx, ffid_callback cb, void* user_data, const EchoFailArgs* args);
int echo_fail_cbor(ffid_ctx* ctx, ffid_callback cb, void* user_data, const uint8_t* req, size_t len);

/* panic() -> never OK: the handler panics; answered FFID_RET_ERR "handler panicked: ...". */
int echo_panic(ffid_ctx* ctx, ffid_callback cb, void* user_data);
int echo_panic_cbor(ffid_ctx* ctx, ffid_callback cb, void* user_data, const uint8_t* req, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ECHO_H */
