/* sync.c - the blocking forms (<lib>_<m>_sync) of echo and kv as a C host uses them:
 * answers owned by the caller, errors and refusals with their reason, timeouts whose
 * late answers the runtime frees, deferred and async methods, many blocking threads on
 * one context, and destroy while threads block. Run under valgrind and ASan in CI: a
 * leaked or doubly freed answer fails there. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "echo_client.h"
#include "kv.h"

#define TIMEOUT_MS 10000

static ffid_ctx* make_echo(void) {
    waiter w;
    ffid_ctx* ctx = echo_create_waited(&w, "p", NULL, TIMEOUT_MS);
    CHECK(ctx != NULL && w.ret == FFID_RET_OK);
    return ctx;
}

static void test_answers_come_by_value_or_owned(void) {
    ffid_ctx* ctx = make_echo();
    EchoScalarCheckArgs sc = {41, 1, 0.5};
    bool even = false;
    CHECK(echo_scalar_check_sync(ctx, &sc, &even, TIMEOUT_MS) == FFID_RET_OK && even);
    CHECK(strcmp(echo_last_error(), "") == 0);

    EchoShoutArgs sh = {"hello"};
    const char* text = NULL;
    CHECK(echo_shout_sync(ctx, &sh, &text, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(text != NULL && strcmp(text, "p: HELLO") == 0);
    /* Owned: still valid after more calls, until freed. */
    uint64_t count = 0;
    CHECK(echo_count_sync(ctx, &count, TIMEOUT_MS) == FFID_RET_OK && count == 2);
    CHECK(strcmp(text, "p: HELLO") == 0);
    ffid_free(text);

    /* A NULL out pointer drops the answer (valgrind sees it freed). */
    CHECK(echo_shout_sync(ctx, &sh, NULL, TIMEOUT_MS) == FFID_RET_OK);
    /* No value to write. */
    EchoSleepArgs nap = {1};
    CHECK(echo_sleep_sync(ctx, &nap, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void test_errors_and_refusals_say_why(void) {
    ffid_ctx* ctx = make_echo();
    EchoFailArgs f = {"no luck"};
    CHECK(echo_fail_sync(ctx, &f, TIMEOUT_MS) == FFID_RET_ERR);
    CHECK(strcmp(echo_last_error(), "no luck") == 0);
    CHECK(echo_panic_sync(ctx, TIMEOUT_MS) == FFID_RET_ERR);
    CHECK(strstr(echo_last_error(), "handler panicked") != NULL);
    CHECK(echo_drop_reply_sync(ctx, TIMEOUT_MS) == FFID_RET_ERR);
    CHECK(strcmp(echo_last_error(), "reply dropped") == 0);

    /* Refused: NULL args, a NULL or stale handle. */
    const char* text = (const char*)1;
    CHECK(echo_shout_sync(ctx, NULL, &text, TIMEOUT_MS) == FFID_RET_ERR);
    CHECK(strcmp(echo_last_error(), "the args pointer is NULL") == 0);
    CHECK(text == (const char*)1); /* untouched */
    EchoShoutArgs sh = {"x"};
    CHECK(echo_shout_sync(NULL, &sh, &text, TIMEOUT_MS) == FFID_RET_INVALID_CTX);
    CHECK(strcmp(echo_last_error(), "ctx is NULL") == 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(echo_shout_sync(ctx, &sh, &text, TIMEOUT_MS) == FFID_RET_CLOSED);
    CHECK(text == (const char*)1);
}

static void test_a_timeout_leaves_the_call_running_and_frees_its_answer(void) {
    ffid_ctx* ctx = make_echo();
    EchoEchoLaterArgs later = {"late", 150};
    const char* text = (const char*)1;
    uint64_t t0 = now_ns();
    CHECK(echo_echo_later_sync(ctx, &later, &text, 20) == FFID_RET_TIMEOUT);
    uint64_t waited_ms = (now_ns() - t0) / 1000000;
    CHECK(waited_ms >= 19 && waited_ms < 5000);
    CHECK(strstr(echo_last_error(), "timed out after 20 ms") != NULL);
    CHECK(text == (const char*)1);
    /* The late (deferred) answer arrives and is freed by the runtime. */
    ffid_context_stats s;
    uint64_t deadline = now_ns() + 5000000000ull;
    do {
        sleep_ms(10);
        s.struct_size = sizeof s;
        CHECK(echo_stats(ctx, &s) == FFID_RET_OK);
    } while (s.deferred_pending > 0 && now_ns() < deadline);
    CHECK(s.deferred_pending == 0);
    /* The context serves on. */
    EchoShoutArgs sh = {"after"};
    CHECK(echo_shout_sync(ctx, &sh, &text, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(strcmp(text, "p: AFTER") == 0);
    ffid_free(text);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void test_deferred_and_async_methods_block_too(void) {
    ffid_ctx* ctx = make_echo();
    EchoEchoLaterArgs later = {"from a thread", 5};
    const char* text = NULL;
    CHECK(echo_echo_later_sync(ctx, &later, &text, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(text && strcmp(text, "from a thread") == 0);
    ffid_free(text);
    EchoEchoAfterArgs after = {"async", 5};
    CHECK(echo_echo_after_sync(ctx, &after, &text, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(text && strcmp(text, "async") == 0);
    ffid_free(text);
    EchoYieldTimesArgs y = {100};
    uint32_t n = 0;
    CHECK(echo_yield_times_sync(ctx, &y, &n, TIMEOUT_MS) == FFID_RET_OK && n == 100);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

typedef struct {
    ffid_ctx* ctx;
    int rc;
} inside;

/* A blocking call from inside a callback would wait for the thread it runs on. */
static void call_inside(int ret, const char* msg, size_t len, void* user_data) {
    (void)ret;
    (void)msg;
    (void)len;
    inside* in = (inside*)user_data;
    uint64_t count = 0;
    in->rc = echo_count_sync(in->ctx, &count, TIMEOUT_MS);
}

static void test_inside_a_callback_it_is_busy(void) {
    inside in = {make_echo(), -1};
    EchoShoutArgs sh = {"x"};
    CHECK(echo_shout(in.ctx, call_inside, &in, &sh) == FFID_RET_OK);
    CHECK(echo_destroy(in.ctx) == FFID_RET_OK); /* answers the call first */
    CHECK(in.rc == FFID_RET_BUSY);
}

static void test_completion_mode_refuses_blocking_calls(void) {
    ffid_options o;
    ffid_options_init(&o);
    o.completion = FFID_COMPLETION_QUEUE;
    waiter w;
    waiter_reset(&w);
    EchoConfig cfg = {"q"};
    ffid_ctx* ctx = echo_create_with_options(waiter_cb, &w, &cfg, &o);
    CHECK(ctx != NULL);
    uint64_t count = 0;
    CHECK(echo_count_sync(ctx, &count, TIMEOUT_MS) == FFID_RET_ERR);
    CHECK(strstr(echo_last_error(), "completion mode") != NULL);
    while (echo_drain(ctx, 16) > 0) {
    }
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

#define THREADS 4

/* Calls per thread: SYNC_CALLS, or 2000. */
static int calls(void) {
    const char* s = getenv("SYNC_CALLS");
    int n = s ? atoi(s) : 0;
    return n > 0 ? n : 2000;
}

typedef struct {
    ffid_ctx* ctx;
    int ok;
} blocker;

static void* count_many(void* arg) {
    blocker* b = (blocker*)arg;
    for (int i = 0, n = calls(); i < n; i++) {
        uint64_t c = 0;
        if (echo_count_sync(b->ctx, &c, TIMEOUT_MS) != FFID_RET_OK) return NULL;
    }
    b->ok = 1;
    return NULL;
}

static void test_many_threads_block_on_one_context(void) {
    ffid_ctx* ctx = make_echo();
    pthread_t t[THREADS];
    blocker b[THREADS];
    for (int i = 0; i < THREADS; i++) {
        b[i] = (blocker){ctx, 0};
        CHECK(pthread_create(&t[i], NULL, count_many, &b[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK(b[i].ok);
    }
    uint64_t count = 0;
    CHECK(echo_count_sync(ctx, &count, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(count == (uint64_t)THREADS * (uint64_t)calls());
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

typedef struct {
    ffid_ctx* ctx;
    atomic_int started;
    int rc;
} sleeper;

static void* sleep_blocking(void* arg) {
    sleeper* s = (sleeper*)arg;
    EchoSleepArgs nap = {50};
    atomic_fetch_add(&s->started, 1);
    s->rc = echo_sleep_sync(s->ctx, &nap, 0); /* no timeout */
    return NULL;
}

static void test_destroy_answers_threads_that_block(void) {
    ffid_ctx* ctx = make_echo();
    pthread_t t[THREADS];
    sleeper s[THREADS];
    for (int i = 0; i < THREADS; i++) {
        s[i].ctx = ctx;
        atomic_store(&s[i].started, 0);
        s[i].rc = -1;
        CHECK(pthread_create(&t[i], NULL, sleep_blocking, &s[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        while (!atomic_load(&s[i].started)) sleep_ms(1);
    }
    sleep_ms(10); /* let them submit */
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    int ok = 0, err = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        if (s[i].rc == FFID_RET_OK) ok++;
        if (s[i].rc == FFID_RET_ERR) err++;
    }
    /* Every blocked thread returned: served, or refused by the closing context. */
    CHECK(ok + err == THREADS);
}

static void test_kv_records_arrays_and_options_are_owned(void) {
    waiter w;
    waiter_reset(&w);
    KvConfig cfg = {"sync", false, 0};
    ffid_ctx* kv = kv_create(waiter_cb, &w, &cfg);
    CHECK(kv != NULL && waiter_wait(&w, TIMEOUT_MS) == 0 && w.ret == FFID_RET_OK);

    const char* tags[] = {"a", "bb"};
    KvPutArgs put = {"k1", (const uint8_t*)"v1", 2, KV_KIND_TEXT, tags, 2, true, 500};
    const KvEntry* replaced = (const KvEntry*)1;
    CHECK(kv_put_sync(kv, &put, &replaced, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(replaced == NULL); /* none before */
    KvPutArgs put2 = {"k2", (const uint8_t*)"value2", 6, KV_KIND_BLOB, NULL, 0, false, 0};
    CHECK(kv_put_sync(kv, &put2, NULL, TIMEOUT_MS) == FFID_RET_OK);

    KvGetArgs get = {"k1"};
    const KvEntry* e = NULL;
    CHECK(kv_get_sync(kv, &get, &e, TIMEOUT_MS) == FFID_RET_OK && e != NULL);
    /* Another call in between: the owned entry is untouched. */
    KvGetArgs get2 = {"k2"};
    const KvEntry* e2 = NULL;
    CHECK(kv_get_sync(kv, &get2, &e2, TIMEOUT_MS) == FFID_RET_OK && e2 != NULL);
    CHECK(strcmp(e->key, "k1") == 0 && e->value_len == 2 && memcmp(e->value, "v1", 2) == 0);
    CHECK(e->tags_len == 2 && strcmp(e->tags[0], "a") == 0 && strcmp(e->tags[1], "bb") == 0);
    CHECK(e->has_ttl_ms && e->ttl_ms == 500 && e->kind == KV_KIND_TEXT && e->note == NULL);
    CHECK(strcmp(e2->key, "k2") == 0 && e2->kind == KV_KIND_BLOB);
    ffid_free(e);
    kv_free(e2);

    KvGetArgs missing = {"nope"};
    CHECK(kv_get_sync(kv, &missing, &e, TIMEOUT_MS) == FFID_RET_ERR);
    CHECK(strstr(kv_last_error(), "nope") != NULL);
    KvFindArgs find = {"nope"};
    e = (const KvEntry*)1;
    CHECK(kv_find_sync(kv, &find, &e, TIMEOUT_MS) == FFID_RET_OK && e == NULL);

    KvListArgs all = {NULL, NULL, false, 0};
    const KvEntry* list = NULL;
    size_t n = 0;
    CHECK(kv_list_sync(kv, &all, &list, &n, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(n == 2 && strcmp(list[0].key, "k1") == 0 && strcmp(list[1].key, "k2") == 0);
    CHECK(list[0].tags_len == 2 && strcmp(list[0].tags[1], "bb") == 0);
    ffid_free(list);

    const char* const* keys = NULL;
    CHECK(kv_keys_sync(kv, &keys, &n, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(n == 2 && strcmp(keys[0], "k1") == 0 && strcmp(keys[1], "k2") == 0);
    ffid_free(keys);

    const KvUsage* u = NULL;
    CHECK(kv_usage_sync(kv, &u, TIMEOUT_MS) == FFID_RET_OK);
    CHECK(u->entries == 2 && u->bytes == 8 && u->largest && strcmp(u->largest->key, "k2") == 0);
    ffid_free(u);

    KvIncrArgs incr = {"c", 5};
    int64_t v = 0;
    CHECK(kv_incr_sync(kv, &incr, &v, TIMEOUT_MS) == FFID_RET_OK && v == 5);
    KvAnnotateArgs note = {"k1", "hi"};
    CHECK(kv_annotate_sync(kv, &note, TIMEOUT_MS) == FFID_RET_OK);
    KvDeleteArgs del = {"k1"};
    bool was = false;
    CHECK(kv_delete_sync(kv, &del, &was, TIMEOUT_MS) == FFID_RET_OK && was);
    CHECK(kv_delete_sync(kv, &del, &was, TIMEOUT_MS) == FFID_RET_OK && !was);
    const char* name = NULL;
    CHECK(kv_name_sync(kv, &name, TIMEOUT_MS) == FFID_RET_OK && strcmp(name, "sync") == 0);
    ffid_free(name);
    const char* version = NULL;
    CHECK(kv_version_sync(&version, TIMEOUT_MS) == FFID_RET_OK && strcmp(version, "0.1.0") == 0);
    ffid_free(version);
    CHECK(kv_destroy(kv) == FFID_RET_OK);
}

int main(void) {
    static const test_case tests[] = {
        TEST_ENTRY(test_answers_come_by_value_or_owned),
        TEST_ENTRY(test_errors_and_refusals_say_why),
        TEST_ENTRY(test_a_timeout_leaves_the_call_running_and_frees_its_answer),
        TEST_ENTRY(test_deferred_and_async_methods_block_too),
        TEST_ENTRY(test_inside_a_callback_it_is_busy),
        TEST_ENTRY(test_completion_mode_refuses_blocking_calls),
        TEST_ENTRY(test_many_threads_block_on_one_context),
        TEST_ENTRY(test_destroy_answers_threads_that_block),
        TEST_ENTRY(test_kv_records_arrays_and_options_are_owned),
    };
    return run_tests(tests, sizeof tests / sizeof tests[0]);
}
