/* interface.c - what a host gets from the generated header beyond the calls: the
 * interface check at create (and ffid_last_error), constants, inline exports, and the
 * library's description, through echo.h as a C host uses them. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "echo_client.h"

#define TIMEOUT_MS 10000

static void test_create_refuses_another_interface(void) {
    CHECK(echo_interface_hash() == ECHO_INTERFACE_HASH);
    EchoConfig cfg = {"p"};
    waiter w;
    waiter_reset(&w);
    /* A header of another version of the library: refused before anything starts. */
    ffid_ctx* ctx = echo_create_checked(ECHO_INTERFACE_HASH ^ 1, waiter_cb, &w, &cfg, NULL);
    CHECK(ctx == NULL);
    CHECK(strstr(ffid_last_error(), "interface mismatch") != NULL);
    CHECK(strstr(ffid_last_error(), "regenerate the header") != NULL);
    CHECK(echo_last_error() == ffid_last_error()); /* one library: one runtime */
    ctx = echo_create_cbor_checked(0, waiter_cb, &w, NULL, 0, NULL);
    CHECK(ctx == NULL && strstr(ffid_last_error(), "interface mismatch") != NULL);
    sleep_ms(20);
    CHECK(atomic_load(&w.terminals) == 0); /* refused: no callback */

    /* The header's own hash: created, and the last error is cleared. */
    ctx = echo_create(waiter_cb, &w, &cfg);
    CHECK(ctx != NULL);
    CHECK(strcmp(ffid_last_error(), "") == 0);
    CHECK(waiter_wait(&w, TIMEOUT_MS) == 0 && w.ret == FFID_RET_OK);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void test_last_error_names_each_refusal(void) {
    EchoConfig cfg = {"p"}, no_prefix = {NULL};
    waiter w;
    waiter_reset(&w);
    CHECK(echo_create(NULL, &w, &cfg) == NULL);
    CHECK(strstr(ffid_last_error(), "cb is NULL") != NULL);
    CHECK(echo_create(waiter_cb, &w, &no_prefix) == NULL);
    CHECK(strstr(ffid_last_error(), "constructor arguments") != NULL);
    ffid_options o;
    ffid_options_init(&o);
    o.ring_capacity = 0;
    CHECK(echo_create_with_options(waiter_cb, &w, &cfg, &o) == NULL);
    CHECK(strstr(ffid_last_error(), "ffid_options") != NULL);
    const uint8_t not_a_map[] = {0x01};
    CHECK(echo_create_cbor(waiter_cb, &w, not_a_map, sizeof not_a_map) == NULL);
    CHECK(strstr(ffid_last_error(), "constructor arguments") != NULL);
    CHECK(atomic_load(&w.terminals) == 0);
}

static void* other_thread_error(void* arg) {
    (void)arg;
    return (void*)(intptr_t)(strcmp(ffid_last_error(), "") == 0);
}

static void test_last_error_is_per_thread(void) {
    CHECK(echo_create(NULL, NULL, NULL) == NULL);
    CHECK(strcmp(ffid_last_error(), "") != 0);
    pthread_t t;
    void* clean = NULL;
    CHECK(pthread_create(&t, NULL, other_thread_error, NULL) == 0);
    pthread_join(t, &clean);
    CHECK(clean == (void*)1);
}

/* Integer constants are integer constant expressions, usable by the preprocessor. */
#if ECHO_MAX_PREFIX != 64 || ECHO_LOWEST != -7
#error "ECHO_MAX_PREFIX or ECHO_LOWEST is not what echo declares"
#endif

static void test_constants(void) {
    CHECK(ECHO_MAX_PREFIX == 64u);
    CHECK(ECHO_LOWEST == -7 && ECHO_LOWEST < 0);
    CHECK(ECHO_RATIO == 0.25);
    CHECK(ECHO_STRICT == true);
    static const char greeting[] = ECHO_GREETING;
    CHECK(sizeof greeting == 12); /* "h", two bytes of U+00E9, "llo \"C\"\n", NUL */
    CHECK(memcmp(greeting, "h\xc3\xa9llo \"C\"\n", 11) == 0);
    uint32_t sized[ECHO_MAX_PREFIX]; /* an integer constant expression */
    CHECK(sizeof sized == 64 * sizeof(uint32_t));
}

typedef struct {
    waiter w;
    pthread_t thread; /* the thread the callback ran on */
} on_thread;

static void on_thread_cb(int ret, const char* msg, size_t len, void* user_data) {
    on_thread* t = (on_thread*)user_data;
    t->thread = pthread_self();
    waiter_cb(ret, msg, len, &t->w);
}

static void test_inline_exports_answer_before_returning(void) {
    const uint8_t data[] = {1, 2, 3, 250};
    EchoByteSumArgs args = {data, sizeof data};
    on_thread t;
    waiter_reset(&t.w);
    CHECK(echo_byte_sum(on_thread_cb, &t, &args) == FFID_RET_OK);
    /* Answered already, on this thread. */
    CHECK(atomic_load(&t.w.terminals) == 1 && t.w.ret == FFID_RET_OK);
    CHECK(pthread_equal(t.thread, pthread_self()));
    uint64_t sum = 0;
    CHECK(t.w.len == sizeof sum);
    memcpy(&sum, t.w.msg, sizeof sum);
    CHECK(sum == 256);

    /* The CBOR twin: {"data": h'0102'} answers the CBOR uint 3. */
    const uint8_t req[] = {0xa1, 0x64, 'd', 'a', 't', 'a', 0x42, 1, 2};
    waiter_reset(&t.w);
    CHECK(echo_byte_sum_cbor(on_thread_cb, &t, req, sizeof req) == FFID_RET_OK);
    CHECK(atomic_load(&t.w.terminals) == 1 && t.w.len == 1 && (uint8_t)t.w.msg[0] == 0x03);

    /* Refused calls: a non-zero return and no callback. */
    waiter_reset(&t.w);
    CHECK(echo_byte_sum(NULL, &t, &args) == FFID_RET_MISSING_CALLBACK);
    CHECK(echo_byte_sum(on_thread_cb, &t, NULL) == FFID_RET_ERR);
    EchoByteSumArgs bad = {NULL, 3};
    CHECK(echo_byte_sum(on_thread_cb, &t, &bad) == FFID_RET_ERR);
    const uint8_t garbage[] = {0xff};
    CHECK(echo_byte_sum_cbor(on_thread_cb, &t, garbage, sizeof garbage) == FFID_RET_OK);
    CHECK(atomic_load(&t.w.terminals) == 1 && t.w.ret == FFID_RET_ERR); /* decoded in the handler */
}

typedef struct {
    waiter outer, inner;
    int inner_rc;
} nested;

/* An inline call made from inside another inline call's callback. */
static void nested_cb(int ret, const char* msg, size_t len, void* user_data) {
    nested* n = (nested*)user_data;
    const uint8_t one[] = {7};
    EchoByteSumArgs args = {one, 1};
    n->inner_rc = echo_byte_sum(waiter_cb, &n->inner, &args);
    waiter_cb(ret, msg, len, &n->outer);
}

static void test_inline_exports_from_inside_a_callback(void) {
    nested n;
    waiter_reset(&n.outer);
    waiter_reset(&n.inner);
    const uint8_t two[] = {1, 1};
    EchoByteSumArgs args = {two, 2};
    CHECK(echo_byte_sum(nested_cb, &n, &args) == FFID_RET_OK);
    CHECK(n.inner_rc == FFID_RET_OK);
    CHECK(atomic_load(&n.inner.terminals) == 1 && atomic_load(&n.outer.terminals) == 1);
    uint64_t inner = 0, outer = 0;
    memcpy(&inner, n.inner.msg, 8);
    memcpy(&outer, n.outer.msg, 8);
    CHECK(inner == 7 && outer == 2);
}

static void test_inline_panic_is_an_error_and_quiet(void) {
    /* The panic goes to no stream of the host's: stderr is a file for the call. */
    char path[] = "/tmp/ffid-inline-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    waiter w;
    waiter_reset(&w);
    int rc = echo_panic_inline(waiter_cb, &w);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t written = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(path);
    CHECK(rc == FFID_RET_OK);
    CHECK(atomic_load(&w.terminals) == 1 && w.ret == FFID_RET_ERR);
    CHECK(strstr(w.msg, "handler panicked: echo was asked to panic inline") != NULL);
    CHECK(written == 0);
}

static void test_the_library_describes_itself(void) {
    size_t len = 0;
    const uint8_t* d = echo_ffid_describe(&len);
    CHECK(d != NULL && len > 100);
    CHECK((d[0] & 0xe0) == 0x80); /* a CBOR array: the description's fields */
    size_t again = 0;
    CHECK(echo_ffid_describe(&again) == d && again == len); /* built once, kept */
    CHECK(echo_ffid_describe(NULL) == NULL);
}

int main(void) {
    static const test_case tests[] = {
        TEST_ENTRY(test_create_refuses_another_interface),
        TEST_ENTRY(test_last_error_names_each_refusal),
        TEST_ENTRY(test_last_error_is_per_thread),
        TEST_ENTRY(test_constants),
        TEST_ENTRY(test_inline_exports_answer_before_returning),
        TEST_ENTRY(test_inline_exports_from_inside_a_callback),
        TEST_ENTRY(test_inline_panic_is_an_error_and_quiet),
        TEST_ENTRY(test_the_library_describes_itself),
    };
    return run_tests(tests, sizeof tests / sizeof tests[0]);
}
