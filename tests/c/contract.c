/* contract.c - the C contract of echo, method by method and refusal by refusal. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "echo_client.h"

#define TIMEOUT_MS 10000

static ffid_ctx* make(const char* prefix) {
    waiter w;
    waiter_reset(&w);
    EchoConfig cfg = {prefix};
    ffid_ctx* ctx = echo_create(waiter_cb, &w, &cfg);
    CHECK(ctx != NULL);
    if (!ctx) return NULL;
    CHECK(waiter_wait(&w, TIMEOUT_MS) == 0);
    CHECK(w.ret == FFID_RET_OK && w.len == 0 && w.nul_ok);
    return ctx;
}

/* Waits for w and checks exactly one terminal callback with the given status. */
static void expect(waiter* w, int ret) {
    CHECK(waiter_wait(w, TIMEOUT_MS) == 0);
    sleep_ms(1); /* a second terminal callback would show up in `terminals` */
    CHECK(atomic_load(&w->terminals) == 1);
    CHECK(w->ret == ret);
    CHECK(w->nul_ok);
    if (w->ret != ret) fprintf(stderr, "    got %d (%s) \"%s\"\n", w->ret, ffid_status_name(w->ret), w->msg);
}

static void test_status_names(void) {
    CHECK(strcmp(ffid_status_name(FFID_RET_OK), "OK") == 0);
    CHECK(strcmp(ffid_status_name(FFID_RET_ERR), "ERR") == 0);
    CHECK(strcmp(ffid_status_name(FFID_RET_MISSING_CALLBACK), "MISSING_CALLBACK") == 0);
    CHECK(strcmp(ffid_status_name(FFID_RET_STALE_WARN), "STALE_WARN") == 0);
    CHECK(strcmp(ffid_status_name(FFID_RET_BUSY), "BUSY") == 0);
    CHECK(strcmp(ffid_status_name(FFID_RET_TIMEOUT), "TIMEOUT") == 0);
    CHECK(strcmp(ffid_status_name(FFID_RET_CLOSED), "CLOSED") == 0);
    CHECK(strcmp(ffid_status_name(FFID_RET_INVALID_CTX), "INVALID_CTX") == 0);
    CHECK(strcmp(ffid_status_name(FFID_RET_TOO_LARGE), "TOO_LARGE") == 0);
    CHECK(strcmp(ffid_status_name(-7), "UNKNOWN") == 0);
    CHECK(ffid_catches_panics() == 1);
    ffid_options o;
    CHECK(ffid_options_init(&o) == FFID_RET_OK);
    CHECK(o.struct_size == sizeof(ffid_options) && o.ring_capacity == 4096 && o.backpressure == FFID_BACKPRESSURE_BLOCK);
    CHECK(ffid_options_init(NULL) == FFID_RET_ERR);
}

static void test_every_method_native(void) {
    ffid_ctx* ctx = make("hey");
    waiter w;

    waiter_reset(&w);
    EchoShoutArgs s = {"hello, world"};
    CHECK(echo_shout(ctx, waiter_cb, &w, &s) == FFID_RET_OK);
    expect(&w, FFID_RET_OK);
    CHECK(w.len == strlen("hey: HELLO, WORLD") && strcmp(w.msg, "hey: HELLO, WORLD") == 0);

    EchoScalarCheckArgs sc[] = {{1, 1, 0.0}, {1, 2, 0.0}, {1, 2, 1.9}, {0, 0, -1.0}, {-3, 1, 2.5}};
    int want[] = {1, 0, 1, 0, 1};
    for (int i = 0; i < 5; i++) {
        waiter_reset(&w);
        CHECK(echo_scalar_check(ctx, waiter_cb, &w, &sc[i]) == FFID_RET_OK);
        expect(&w, FFID_RET_OK);
        CHECK(w.len == 1 && w.msg[0] == want[i]);
    }

    static uint8_t big[100000];
    big[0] = 3; big[sizeof big - 1] = 4; /* 3 + 4 + 100000 = odd -> false */
    EchoPayloadCheckArgs p[] = {{NULL, 0}, {big, 1}, {big, sizeof big}, {big + 1, 2}};
    int pwant[] = {1, 0, 0, 1}; /* (0,0,0) (3,3,1) (3,4,100000) (0,0,2) */
    for (int i = 0; i < 4; i++) {
        waiter_reset(&w);
        CHECK(echo_payload_check(ctx, waiter_cb, &w, &p[i]) == FFID_RET_OK);
        expect(&w, FFID_RET_OK);
        CHECK(w.len == 1 && w.msg[0] == pwant[i]);
    }

    waiter_reset(&w);
    CHECK(echo_count(ctx, waiter_cb, &w) == FFID_RET_OK);
    expect(&w, FFID_RET_OK);
    uint64_t n;
    memcpy(&n, w.msg, 8);
    CHECK(w.len == 8 && n == 10); /* 1 shout + 5 scalar + 4 payload before it */

    waiter_reset(&w);
    EchoSleepArgs sl = {5};
    uint64_t t0 = now_ns();
    CHECK(echo_sleep(ctx, waiter_cb, &w, &sl) == FFID_RET_OK);
    expect(&w, FFID_RET_OK);
    CHECK(w.len == 0 && now_ns() - t0 >= 5000000ull);

    waiter_reset(&w);
    EchoFailArgs f = {"disk on fire"};
    CHECK(echo_fail(ctx, waiter_cb, &w, &f) == FFID_RET_OK);
    expect(&w, FFID_RET_ERR);
    CHECK(strcmp(w.msg, "disk on fire") == 0);

    waiter_reset(&w);
    EchoFailArgs empty = {""};
    CHECK(echo_fail(ctx, waiter_cb, &w, &empty) == FFID_RET_OK);
    expect(&w, FFID_RET_ERR);
    CHECK(strcmp(w.msg, "unknown error") == 0);

    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void cbor_call(int (*fn)(ffid_ctx*, ffid_callback, void*, const uint8_t*, size_t), ffid_ctx* ctx,
                      cbor_w* req, waiter* w, int ret) {
    waiter_reset(w);
    CHECK(fn(ctx, waiter_cb, w, req->buf, req->len) == FFID_RET_OK);
    expect(w, ret);
    cbor_reset(req);
}

static void test_every_method_cbor(void) {
    ffid_ctx* ctx = make("cb");
    waiter w;
    cbor_w r = {0};
    const char* s;
    size_t sn;

    cbor_map(&r, 2);
    cbor_text(&r, "ignored"); cbor_uint(&r, 7); /* unknown keys are ignored */
    cbor_text(&r, "text"); cbor_text(&r, "abc xyz");
    cbor_call(echo_shout_cbor, ctx, &r, &w, FFID_RET_OK);
    CHECK(cbor_read_text(w.msg, w.len, &s, &sn) == 0 && sn == 11 && memcmp(s, "cb: ABC XYZ", 11) == 0);

    cbor_map(&r, 3);
    cbor_text(&r, "a"); cbor_int(&r, -3);
    cbor_text(&r, "b"); cbor_int(&r, 1);
    cbor_text(&r, "x"); cbor_f64(&r, 2.5);
    cbor_call(echo_scalar_check_cbor, ctx, &r, &w, FFID_RET_OK);
    CHECK(cbor_read_bool(w.msg, w.len) == 1);

    uint8_t data[5000];
    memset(data, 0, sizeof data);
    data[0] = 1; /* 1 + 0 + 5000 = odd */
    cbor_map(&r, 1);
    cbor_text(&r, "data"); cbor_bytes(&r, data, sizeof data);
    cbor_call(echo_payload_check_cbor, ctx, &r, &w, FFID_RET_OK);
    CHECK(cbor_read_bool(w.msg, w.len) == 0);

    /* count accepts an empty buffer, even a NULL one, and an empty map */
    waiter_reset(&w);
    CHECK(echo_count_cbor(ctx, waiter_cb, &w, NULL, 0) == FFID_RET_OK);
    expect(&w, FFID_RET_OK);
    uint64_t n = 99;
    CHECK(cbor_read_uint(w.msg, w.len, &n) == 0 && n == 3);
    cbor_map(&r, 0);
    cbor_call(echo_count_cbor, ctx, &r, &w, FFID_RET_OK);
    CHECK(cbor_read_uint(w.msg, w.len, &n) == 0 && n == 4);

    cbor_map(&r, 1);
    cbor_text(&r, "ms"); cbor_uint(&r, 1);
    cbor_call(echo_sleep_cbor, ctx, &r, &w, FFID_RET_OK);
    CHECK(w.len == 1 && (uint8_t)w.msg[0] == 0xf6); /* no value is CBOR null */

    cbor_map(&r, 1);
    cbor_text(&r, "message"); cbor_text(&r, "nope");
    cbor_call(echo_fail_cbor, ctx, &r, &w, FFID_RET_ERR);
    CHECK(strcmp(w.msg, "nope") == 0); /* errors are plain text, also for CBOR calls */

    cbor_call(echo_panic_cbor, ctx, &r, &w, FFID_RET_ERR);
    CHECK(strncmp(w.msg, "handler panicked:", 17) == 0);

    cbor_free(&r);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void test_cbor_errors_name_the_key(void) {
    ffid_ctx* ctx = make("e");
    waiter w;
    cbor_w r = {0};

    cbor_map(&r, 1);
    cbor_text(&r, "txt"); cbor_text(&r, "typo");
    cbor_call(echo_shout_cbor, ctx, &r, &w, FFID_RET_ERR);
    CHECK(strcmp(w.msg, "missing key `text`") == 0);

    cbor_map(&r, 3);
    cbor_text(&r, "a"); cbor_text(&r, "one");
    cbor_text(&r, "b"); cbor_int(&r, 1);
    cbor_text(&r, "x"); cbor_f64(&r, 0);
    cbor_call(echo_scalar_check_cbor, ctx, &r, &w, FFID_RET_ERR);
    CHECK(strstr(w.msg, "key `a`") != NULL);

    uint8_t garbage[] = {0xff, 0x00, 0x13};
    waiter_reset(&w);
    CHECK(echo_shout_cbor(ctx, waiter_cb, &w, garbage, sizeof garbage) == FFID_RET_OK);
    expect(&w, FFID_RET_ERR);
    CHECK(strncmp(w.msg, "malformed CBOR request", 22) == 0);

    uint8_t bad_utf8[] = {0xa1, 0x64, 't', 'e', 'x', 't', 0x62, 0xc3, 0x28};
    waiter_reset(&w);
    CHECK(echo_shout_cbor(ctx, waiter_cb, &w, bad_utf8, sizeof bad_utf8) == FFID_RET_OK);
    expect(&w, FFID_RET_ERR);
    CHECK(strncmp(w.msg, "malformed CBOR request: key `text`", 34) == 0);

    /* NULL buffer with len 0 is an empty map: shout then lacks its key */
    waiter_reset(&w);
    CHECK(echo_shout_cbor(ctx, waiter_cb, &w, NULL, 0) == FFID_RET_OK);
    expect(&w, FFID_RET_ERR);
    CHECK(strcmp(w.msg, "missing key `text`") == 0);

    cbor_free(&r);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

/* A refusal: its code, and this thread's last_error naming why. */
static int refused(int rc, int code, const char* why) {
    if (rc == code && strstr(echo_last_error(), why) != NULL) return 1;
    fprintf(stderr, "    refused %d (%s) \"%s\", expected %s and \"%s\"\n", rc, ffid_status_name(rc),
            echo_last_error(), ffid_status_name(code), why);
    return 0;
}

static atomic_int stray_callbacks;
static void stray_cb(int ret, const char* msg, size_t len, void* ud) {
    (void)ret; (void)msg; (void)len; (void)ud;
    atomic_fetch_add(&stray_callbacks, 1);
}

static void test_refusals_never_call_back(void) {
    ffid_ctx* ctx = make("r");
    EchoShoutArgs s = {"x"};
    EchoScalarCheckArgs sc = {1, 1, 1};
    EchoPayloadCheckArgs pnull = {NULL, 5};
    EchoSleepArgs sl = {0};
    EchoFailArgs f = {"m"};
    uint8_t req[] = {0xa0};
    ffid_ctx* garbage = (ffid_ctx*)(uintptr_t)0xdeadbeefu;

    /* null callback: MISSING_CALLBACK, checked first, for every export */
    CHECK(echo_shout(ctx, NULL, NULL, &s) == FFID_RET_MISSING_CALLBACK);
    CHECK(echo_scalar_check(ctx, NULL, NULL, &sc) == FFID_RET_MISSING_CALLBACK);
    CHECK(echo_payload_check(NULL, NULL, NULL, NULL) == FFID_RET_MISSING_CALLBACK);
    CHECK(echo_count(ctx, NULL, NULL) == FFID_RET_MISSING_CALLBACK);
    CHECK(echo_sleep(ctx, NULL, NULL, &sl) == FFID_RET_MISSING_CALLBACK);
    CHECK(echo_fail(ctx, NULL, NULL, &f) == FFID_RET_MISSING_CALLBACK);
    CHECK(echo_panic(ctx, NULL, NULL) == FFID_RET_MISSING_CALLBACK);
    CHECK(echo_shout_cbor(ctx, NULL, NULL, req, 1) == FFID_RET_MISSING_CALLBACK);
    CHECK(echo_count_cbor(ctx, NULL, NULL, req, 1) == FFID_RET_MISSING_CALLBACK);

    /* bad handles: garbage names no slot of this library (1 in 2^15 it would, and read
     * as CLOSED) */
    CHECK(refused(echo_shout(NULL, stray_cb, NULL, &s), FFID_RET_INVALID_CTX, "ctx is NULL"));
    CHECK(refused(echo_shout(garbage, stray_cb, NULL, &s), FFID_RET_INVALID_CTX, "not a handle"));
    CHECK(echo_count((ffid_ctx*)(uintptr_t)UINTPTR_MAX, stray_cb, NULL) == FFID_RET_INVALID_CTX);
    CHECK(echo_shout_cbor(garbage, stray_cb, NULL, req, 1) == FFID_RET_INVALID_CTX);
    CHECK(refused(echo_destroy(NULL), FFID_RET_INVALID_CTX, "ctx is NULL"));
    CHECK(echo_destroy(garbage) == FFID_RET_INVALID_CTX);

    /* bad arguments, each named */
    CHECK(refused(echo_shout(ctx, stray_cb, NULL, NULL), FFID_RET_ERR, "the args pointer is NULL"));
    CHECK(echo_scalar_check(ctx, stray_cb, NULL, NULL) == FFID_RET_ERR);
    CHECK(refused(echo_payload_check(ctx, stray_cb, NULL, &pnull), FFID_RET_ERR,
                  "argument `data`: NULL where a value is required"));
    EchoPayloadCheckArgs huge = {NULL, SIZE_MAX};
    CHECK(echo_payload_check(ctx, stray_cb, NULL, &huge) == FFID_RET_ERR);
    CHECK(refused(echo_shout_cbor(ctx, stray_cb, NULL, NULL, 3), FFID_RET_ERR, "NULL where a value"));
    CHECK(refused(echo_shout_cbor(ctx, stray_cb, NULL, NULL, SIZE_MAX), FFID_RET_ERR, "NULL where a value"));
    EchoShoutArgs nulltext = {NULL};
    CHECK(refused(echo_shout(ctx, stray_cb, NULL, &nulltext), FFID_RET_ERR,
                  "argument `text`: NULL where a value is required"));
    EchoShoutArgs bad = {"ok \xc3\x28 not utf-8"};
    CHECK(refused(echo_shout(ctx, stray_cb, NULL, &bad), FFID_RET_ERR,
                  "argument `text`: invalid UTF-8 at byte 3"));
    EchoFailArgs badf = {"\xff"};
    CHECK(refused(echo_fail(ctx, stray_cb, NULL, &badf), FFID_RET_ERR,
                  "argument `message`: invalid UTF-8 at byte 0"));
    /* an accepted call leaves the last refusal's text in place (errno's rule) */
    waiter ok;
    waiter_reset(&ok);
    CHECK(echo_count(ctx, waiter_cb, &ok) == FFID_RET_OK);
    expect(&ok, FFID_RET_OK);
    CHECK(strstr(echo_last_error(), "invalid UTF-8 at byte 0") != NULL);

    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    /* stale handle, second destroy */
    CHECK(refused(echo_shout(ctx, stray_cb, NULL, &s), FFID_RET_CLOSED, "destroyed"));
    CHECK(echo_count_cbor(ctx, stray_cb, NULL, NULL, 0) == FFID_RET_CLOSED);
    CHECK(refused(echo_destroy(ctx), FFID_RET_CLOSED, "destroyed"));
    sleep_ms(20);
    CHECK(atomic_load(&stray_callbacks) == 0);
}

static void test_create_refusals(void) {
    atomic_store(&stray_callbacks, 0);
    EchoConfig ok = {"p"}, nullp = {NULL}, bad = {"\xfe"};
    CHECK(echo_create(NULL, NULL, &ok) == NULL);
    CHECK(echo_create(stray_cb, NULL, NULL) == NULL);
    CHECK(echo_create(stray_cb, NULL, &nullp) == NULL);
    CHECK(echo_create(stray_cb, NULL, &bad) == NULL);
    uint8_t garbage[] = {0x13, 0x37};
    CHECK(echo_create_cbor(stray_cb, NULL, garbage, sizeof garbage) == NULL);
    CHECK(echo_create_cbor(stray_cb, NULL, NULL, 0) == NULL); /* prefix is required */
    CHECK(echo_create_cbor(stray_cb, NULL, NULL, 4) == NULL);
    ffid_options o;
    ffid_options_init(&o);
    o.struct_size = 8;
    CHECK(echo_create_with_options(stray_cb, NULL, &ok, &o) == NULL);
    ffid_options_init(&o);
    o.ring_capacity = 0;
    CHECK(echo_create_with_options(stray_cb, NULL, &ok, &o) == NULL);
    ffid_options_init(&o);
    o.wake = 77;
    CHECK(echo_create_with_options(stray_cb, NULL, &ok, &o) == NULL);
    sleep_ms(20);
    CHECK(atomic_load(&stray_callbacks) == 0);

    /* create_cbor that works, and options that work */
    waiter w;
    waiter_reset(&w);
    cbor_w r = {0};
    cbor_map(&r, 1);
    cbor_text(&r, "prefix"); cbor_text(&r, "from-cbor");
    ffid_ctx* ctx = echo_create_cbor(waiter_cb, &w, r.buf, r.len);
    CHECK(ctx != NULL);
    expect(&w, FFID_RET_OK);
    EchoShoutArgs s = {"x"};
    waiter_reset(&w);
    CHECK(echo_shout(ctx, waiter_cb, &w, &s) == FFID_RET_OK);
    expect(&w, FFID_RET_OK);
    CHECK(strcmp(w.msg, "from-cbor: X") == 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    cbor_free(&r);

    ffid_options_init(&o);
    o.ring_capacity = 2;
    o.spin_ns = 0;
    o.wake = FFID_WAKE_EVENTFD;
    waiter_reset(&w);
    ctx = echo_create_with_options(waiter_cb, &w, &ok, &o);
    CHECK(ctx != NULL);
    expect(&w, FFID_RET_OK);
    waiter_reset(&w);
    CHECK(echo_shout(ctx, waiter_cb, &w, &s) == FFID_RET_OK);
    expect(&w, FFID_RET_OK);
    CHECK(strcmp(w.msg, "p: X") == 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void test_panic_then_normal_calls(void) {
    ffid_ctx* ctx = make("after");
    waiter w;
    for (int i = 0; i < 3; i++) {
        waiter_reset(&w);
        CHECK(echo_panic(ctx, waiter_cb, &w) == FFID_RET_OK);
        expect(&w, FFID_RET_ERR);
        CHECK(strcmp(w.msg, "handler panicked: echo was asked to panic") == 0);
        waiter_reset(&w);
        EchoShoutArgs s = {"still here"};
        CHECK(echo_shout(ctx, waiter_cb, &w, &s) == FFID_RET_OK);
        expect(&w, FFID_RET_OK);
        CHECK(strcmp(w.msg, "after: STILL HERE") == 0);
    }
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

/* Pipelining: calls made right after create queue behind the constructor. */
static atomic_int order_seq;
typedef struct { waiter w; int seen_at; } ordered;
static void ordered_cb(int ret, const char* msg, size_t len, void* ud) {
    ordered* o = (ordered*)ud;
    o->seen_at = atomic_fetch_add(&order_seq, 1);
    waiter_cb(ret, msg, len, &o->w);
}

static void test_pipelined_after_create(void) {
    enum { N = 1000 };
    static ordered calls[N + 1];
    atomic_store(&order_seq, 0);
    for (int i = 0; i <= N; i++) waiter_reset(&calls[i].w);
    EchoConfig cfg = {"pipe"};
    ffid_ctx* ctx = echo_create(ordered_cb, &calls[0], &cfg);
    CHECK(ctx != NULL);
    int accepted = 0;
    for (int i = 1; i <= N; i++) accepted += echo_count(ctx, ordered_cb, &calls[i]) == FFID_RET_OK;
    CHECK(accepted == N);
    for (int i = 0; i <= N; i++) CHECK(waiter_wait(&calls[i].w, TIMEOUT_MS) == 0);
    CHECK(calls[0].seen_at == 0 && calls[0].w.ret == FFID_RET_OK); /* constructor first */
    int in_order = 1;
    for (int i = 1; i <= N; i++) {
        uint64_t n;
        memcpy(&n, calls[i].w.msg, 8);
        in_order &= calls[i].w.ret == FFID_RET_OK && n == (uint64_t)(i - 1) && calls[i].seen_at == i;
    }
    CHECK(in_order);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

/* Calls and destroy from inside a callback. */
typedef struct {
    ffid_ctx* ctx;
    int destroy_ret;
    int call_ret;
    waiter inner;
    waiter outer;
} reentrant;

static void reentrant_cb(int ret, const char* msg, size_t len, void* ud) {
    reentrant* r = (reentrant*)ud;
    r->destroy_ret = echo_destroy(r->ctx);
    EchoShoutArgs s = {"inner"};
    r->call_ret = echo_shout(r->ctx, waiter_cb, &r->inner, &s);
    waiter_cb(ret, msg, len, &r->outer);
}

static void test_calls_from_inside_a_callback(void) {
    reentrant r;
    r.ctx = make("re");
    waiter_reset(&r.inner);
    waiter_reset(&r.outer);
    CHECK(echo_count(r.ctx, reentrant_cb, &r) == FFID_RET_OK);
    expect(&r.outer, FFID_RET_OK);
    CHECK(r.destroy_ret == FFID_RET_BUSY); /* refused, not a deadlock */
    CHECK(r.call_ret == FFID_RET_OK);
    expect(&r.inner, FFID_RET_OK);
    CHECK(strcmp(r.inner.msg, "re: INNER") == 0);
    CHECK(echo_destroy(r.ctx) == FFID_RET_OK);
}

/* A handle outlives its context: a new context in the recycled slot does not revive it. */
static void test_stale_handle_after_slot_reuse(void) {
    ffid_ctx* old = make("old");
    CHECK(echo_destroy(old) == FFID_RET_OK);
    ffid_ctx* fresh = make("new");
    CHECK(fresh != old);
    waiter w;
    EchoShoutArgs s = {"x"};
    CHECK(echo_shout(old, stray_cb, NULL, &s) == FFID_RET_CLOSED);
    CHECK(echo_destroy(old) == FFID_RET_CLOSED);
    waiter_reset(&w);
    CHECK(echo_shout(fresh, waiter_cb, &w, &s) == FFID_RET_OK);
    expect(&w, FFID_RET_OK);
    CHECK(strcmp(w.msg, "new: X") == 0);
    CHECK(echo_destroy(fresh) == FFID_RET_OK);
}

/* Arguments over FFID_MAX_REQUEST_BYTES are refused before anything is copied: the
 * buffer is reserved, never touched (its pages are never faulted in). */
static void test_too_large_is_refused_before_the_copy(void) {
    ffid_ctx* ctx = make("big");
    size_t len = (size_t)FFID_MAX_REQUEST_BYTES + 1;
    uint8_t* big = malloc(len);
    CHECK(big != NULL);
    if (big != NULL) {
        EchoPayloadCheckArgs p = {big, len};
        CHECK(refused(echo_payload_check(ctx, stray_cb, NULL, &p), FFID_RET_TOO_LARGE,
                      "over FFID_MAX_REQUEST_BYTES"));
        CHECK(refused(echo_shout_cbor(ctx, stray_cb, NULL, big, len), FFID_RET_TOO_LARGE,
                      "1073741825 bytes"));
        free(big);
    }
    /* and the context goes on */
    waiter w;
    waiter_reset(&w);
    EchoShoutArgs s = {"after"};
    CHECK(echo_shout(ctx, waiter_cb, &w, &s) == FFID_RET_OK);
    expect(&w, FFID_RET_OK);
    ffid_context_stats st = {.struct_size = sizeof st};
    CHECK(echo_stats(ctx, &st) == FFID_RET_OK && st.refused == 2);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&stray_callbacks) == 0);
}

int main(void) {
    static const test_case tests[] = {
        TEST_ENTRY(test_status_names),
        TEST_ENTRY(test_every_method_native),
        TEST_ENTRY(test_every_method_cbor),
        TEST_ENTRY(test_cbor_errors_name_the_key),
        TEST_ENTRY(test_refusals_never_call_back),
        TEST_ENTRY(test_create_refusals),
        TEST_ENTRY(test_panic_then_normal_calls),
        TEST_ENTRY(test_pipelined_after_create),
        TEST_ENTRY(test_calls_from_inside_a_callback),
        TEST_ENTRY(test_stale_handle_after_slot_reuse),
        TEST_ENTRY(test_too_large_is_refused_before_the_copy),
    };
    return run_tests(tests, sizeof tests / sizeof tests[0]);
}
