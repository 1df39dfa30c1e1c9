/* typed.c - the typed forms (<lib>_<m>_async with a <Lib><M>Reply, <lib>_listen_<e>
 * with a <Lib><E>Listener) as a C host uses them: answers as C values owned by the
 * host (freed with <lib>_free), errors and pings with their text, refusals that never
 * call back, exactly one reply per accepted call also when destroy comes first, typed
 * listeners owning their events, and completion mode. Run under valgrind in CI: a
 * leaked or doubly freed answer fails there. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "echo_client.h"
#include "kv.h"

#define TIMEOUT_MS 10000

/* Waits up to 10 s for *flag to reach want. */
static int wait_for(atomic_int* flag, int want) {
    for (int i = 0; i < 100000 && atomic_load(flag) < want; i++) {
        struct timespec t = {0, 100000};
        nanosleep(&t, NULL);
    }
    return atomic_load(flag) >= want;
}

/* What one reply left. */
typedef struct {
    atomic_int replies;
    atomic_int pings;
    int ret;
    char msg[128];
    const KvEntry* entry;
    const KvEntry* entries;
    size_t count;
    const char* const* keys;
    int64_t number;
    bool flag;
} seen;

static void keep_msg(seen* s, int ret, const char* msg) {
    s->ret = ret;
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "(null)");
}

static void on_entry(int ret, const KvEntry* value, const char* msg, void* ud) {
    seen* s = ud;
    keep_msg(s, ret, msg);
    s->entry = value;
    atomic_fetch_add(&s->replies, 1);
}

static void on_list(int ret, const KvEntry* value, size_t value_len, const char* msg, void* ud) {
    seen* s = ud;
    keep_msg(s, ret, msg);
    s->entries = value;
    s->count = value_len;
    atomic_fetch_add(&s->replies, 1);
}

static void on_keys(int ret, const char* const* value, size_t value_len, const char* msg, void* ud) {
    seen* s = ud;
    keep_msg(s, ret, msg);
    s->keys = value;
    s->count = value_len;
    atomic_fetch_add(&s->replies, 1);
}

static void on_i64(int ret, int64_t value, const char* msg, void* ud) {
    seen* s = ud;
    keep_msg(s, ret, msg);
    s->number = value;
    atomic_fetch_add(&s->replies, 1);
}

static void on_bool(int ret, bool value, const char* msg, void* ud) {
    seen* s = ud;
    keep_msg(s, ret, msg);
    s->flag = value;
    atomic_fetch_add(&s->replies, 1);
}

static void on_unit(int ret, const char* msg, void* ud) {
    seen* s = ud;
    if (ret == FFID_RET_STALE_WARN) {
        CHECK(msg != NULL && atoi(msg) > 0);
        atomic_fetch_add(&s->pings, 1);
        return;
    }
    keep_msg(s, ret, msg);
    atomic_fetch_add(&s->replies, 1);
}

/* Text answers of both libraries: freed by the one that made them (<lib>_free; with two
 * ffi-dispatch libraries in one process, ffid_free is whichever the linker picked). */
static void on_text_of(int ret, const char* value, const char* msg, void* ud, void (*free_answer)(const void*)) {
    seen* s = ud;
    keep_msg(s, ret, ret == FFID_RET_OK ? value : msg);
    free_answer(value);
    atomic_fetch_add(&s->replies, 1);
}

static void on_kv_text(int ret, const char* value, const char* msg, void* ud) {
    on_text_of(ret, value, msg, ud, kv_free);
}

static void on_echo_text(int ret, const char* value, const char* msg, void* ud) {
    on_text_of(ret, value, msg, ud, echo_free);
}

static void created(int ret, const char* msg, size_t len, void* ud) {
    (void)msg;
    (void)len;
    atomic_store((atomic_int*)ud, ret == FFID_RET_OK ? 1 : -1);
}

static ffid_ctx* make_kv(void) {
    atomic_int ok = 0;
    KvConfig cfg = {"typed", false, 0};
    ffid_ctx* ctx = kv_create(created, &ok, &cfg);
    CHECK(ctx != NULL && wait_for(&ok, 1) && atomic_load(&ok) == 1);
    return ctx;
}

static void test_answers_are_c_values_the_host_owns(void) {
    ffid_ctx* ctx = make_kv();
    const char* tags[] = {"a", "b"};
    KvPutArgs put = {"k", (const uint8_t*)"vv", 2, KV_KIND_BLOB, tags, 2, true, 9};
    seen s = {0};
    CHECK(kv_put_async(ctx, &put, on_entry, &s) == FFID_RET_OK);
    CHECK(wait_for(&s.replies, 1) && s.ret == FFID_RET_OK && s.entry == NULL);
    CHECK(strcmp(s.msg, "(null)") == 0);

    seen g = {0};
    KvGetArgs get = {"k"};
    CHECK(kv_get_async(ctx, &get, on_entry, &g) == FFID_RET_OK);
    CHECK(wait_for(&g.replies, 1) && g.ret == FFID_RET_OK && g.entry != NULL);
    /* Owned: still intact after more calls, until freed. */
    seen n = {0};
    KvIncrArgs incr = {"n", 5};
    CHECK(kv_incr_async(ctx, &incr, on_i64, &n) == FFID_RET_OK);
    CHECK(wait_for(&n.replies, 1) && n.ret == FFID_RET_OK && n.number == 5);
    if (g.entry) {
        CHECK(strcmp(g.entry->key, "k") == 0 && g.entry->value_len == 2);
        CHECK(memcmp(g.entry->value, "vv", 2) == 0 && g.entry->kind == KV_KIND_BLOB);
        CHECK(g.entry->tags_len == 2 && strcmp(g.entry->tags[1], "b") == 0);
        CHECK(g.entry->has_ttl_ms && g.entry->ttl_ms == 9 && g.entry->note == NULL);
        kv_free(g.entry);
    }

    seen l = {0};
    KvListArgs list = {NULL, NULL, false, 0};
    CHECK(kv_list_async(ctx, &list, on_list, &l) == FFID_RET_OK);
    CHECK(wait_for(&l.replies, 1) && l.ret == FFID_RET_OK && l.count == 2);
    if (l.entries && l.count == 2) CHECK(strcmp(l.entries[0].key, "k") == 0 && strcmp(l.entries[1].key, "n") == 0);
    kv_free(l.entries);

    seen k = {0};
    CHECK(kv_keys_async(ctx, on_keys, &k) == FFID_RET_OK);
    CHECK(wait_for(&k.replies, 1) && k.count == 2 && k.keys && strcmp(k.keys[1], "n") == 0);
    kv_free(k.keys);

    seen d = {0};
    KvDeleteArgs del = {"k"};
    CHECK(kv_delete_async(ctx, &del, on_bool, &d) == FFID_RET_OK);
    CHECK(wait_for(&d.replies, 1) && d.ret == FFID_RET_OK && d.flag);

    seen v = {0};
    CHECK(kv_version_async(on_kv_text, &v) == FFID_RET_OK);
    CHECK(wait_for(&v.replies, 1) && v.ret == FFID_RET_OK && strlen(v.msg) > 0);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
}

static void test_errors_and_refusals(void) {
    ffid_ctx* ctx = make_kv();
    seen e = {0};
    KvGetArgs get = {"missing"};
    CHECK(kv_get_async(ctx, &get, on_entry, &e) == FFID_RET_OK);
    CHECK(wait_for(&e.replies, 1) && e.ret == FFID_RET_ERR && e.entry == NULL);
    CHECK(strcmp(e.msg, "not found: missing") == 0);

    /* Refused: no reply, never called. */
    seen r = {0};
    CHECK(kv_get_async(ctx, &get, NULL, &r) == FFID_RET_MISSING_CALLBACK);
    CHECK(kv_get_async(ctx, NULL, on_entry, &r) == FFID_RET_ERR);
    KvGetArgs bad = {NULL};
    CHECK(kv_get_async(ctx, &bad, on_entry, &r) == FFID_RET_ERR);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
    CHECK(kv_get_async(ctx, &get, on_entry, &r) == FFID_RET_CLOSED);
    struct timespec t = {0, 20000000};
    nanosleep(&t, NULL);
    CHECK(atomic_load(&r.replies) == 0);
}

static void test_pings_then_one_reply(void) {
    ffid_options opts;
    ffid_options_init(&opts);
    opts.stale_ping_ms = 10;
    waiter w;
    ffid_ctx* ctx = echo_create_waited(&w, "p", &opts, TIMEOUT_MS);
    CHECK(ctx != NULL);
    seen s = {0};
    EchoSleepArgs nap = {120};
    CHECK(echo_sleep_async(ctx, &nap, on_unit, &s) == FFID_RET_OK);
    CHECK(wait_for(&s.replies, 1) && s.ret == FFID_RET_OK);
    CHECK(atomic_load(&s.pings) >= 1);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void test_destroy_answers_each_typed_call_once(void) {
    waiter w;
    ffid_ctx* ctx = echo_create_waited(&w, "p", NULL, TIMEOUT_MS);
    enum { N = 50 };
    static seen s[N];
    memset(s, 0, sizeof s);
    EchoEchoLaterArgs later = {"late", 30};
    EchoShoutArgs shout = {"x"};
    for (int i = 0; i < N; i++) {
        if (i % 2) CHECK(echo_echo_later_async(ctx, &later, on_echo_text, &s[i]) == FFID_RET_OK);
        else CHECK(echo_shout_async(ctx, &shout, on_echo_text, &s[i]) == FFID_RET_OK);
    }
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    for (int i = 0; i < N; i++) CHECK(atomic_load(&s[i].replies) == 1);
}

typedef struct {
    atomic_int events;
    uint64_t last_seq;
    size_t last_len;
} pings_seen;

static void on_ping(const EchoPerfPing* event, void* ud) {
    pings_seen* p = ud;
    p->last_seq = event->seq_no;
    p->last_len = event->data_len;
    echo_free(event);
    atomic_fetch_add(&p->events, 1);
}

static void test_typed_listeners_own_their_events(void) {
    waiter w;
    ffid_ctx* ctx = echo_create_waited(&w, "p", NULL, TIMEOUT_MS);
    pings_seen p = {0};
    uint64_t id = echo_listen_on_perf_ping(ctx, on_ping, &p);
    CHECK(id != 0);
    CHECK(echo_listen_on_perf_ping(ctx, NULL, &p) == 0);
    EchoTriggerPingArgs trig = {10, 64, 5, 1000};
    seen t = {0};
    CHECK(echo_trigger_ping_async(ctx, &trig, NULL, &t) == FFID_RET_MISSING_CALLBACK);
    uint32_t queued = 0;
    CHECK(echo_trigger_ping_sync(ctx, &trig, &queued, TIMEOUT_MS) == FFID_RET_OK && queued == 10);
    CHECK(wait_for(&p.events, 10) && p.last_seq == 1009 && p.last_len == 64);
    CHECK(echo_remove_listener(ctx, id) == FFID_RET_OK);
    /* Added and never removed: destroy frees it. */
    CHECK(echo_listen_on_perf_ping(ctx, on_ping, &p) != 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(echo_listen_on_perf_ping(ctx, on_ping, &p) == 0);
}

static void test_completion_mode_runs_replies_in_drain(void) {
    ffid_options opts;
    ffid_options_init(&opts);
    opts.completion = FFID_COMPLETION_QUEUE;
    atomic_int ok = 0;
    KvConfig cfg = {"queued", false, 0};
    ffid_ctx* ctx = kv_create_with_options(created, &ok, &cfg, &opts);
    CHECK(ctx != NULL);
    seen n = {0};
    KvIncrArgs incr = {"n", 3};
    CHECK(kv_incr_async(ctx, &incr, on_i64, &n) == FFID_RET_OK);
    for (int i = 0; i < 100000 && atomic_load(&n.replies) == 0; i++) {
        kv_drain(ctx, 8);
        struct timespec t = {0, 100000};
        nanosleep(&t, NULL);
    }
    CHECK(atomic_load(&ok) == 1 && atomic_load(&n.replies) == 1 && n.number == 3);
    /* Left undrained: destroy runs it. */
    seen late = {0};
    CHECK(kv_incr_async(ctx, &incr, on_i64, &late) == FFID_RET_OK);
    CHECK(kv_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&late.replies) == 1 && late.number == 6);
}

int main(void) {
    const test_case tests[] = {
        TEST_ENTRY(test_answers_are_c_values_the_host_owns),
        TEST_ENTRY(test_errors_and_refusals),
        TEST_ENTRY(test_pings_then_one_reply),
        TEST_ENTRY(test_destroy_answers_each_typed_call_once),
        TEST_ENTRY(test_typed_listeners_own_their_events),
        TEST_ENTRY(test_completion_mode_runs_replies_in_drain),
    };
    return run_tests(tests, sizeof tests / sizeof tests[0]);
}
