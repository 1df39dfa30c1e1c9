/* features.c - events, deferred replies, progress pings, cancellation, live stats,
 * thread hooks and diagnostics, through echo.h as a C host uses them. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "echo_client.h"

#define TIMEOUT_MS 10000

/* ---- a recorder: every callback, in order ---------------------------------------- */

#define MAX_ENTRIES 4096

typedef struct {
    int ret;
    size_t len;
    uint8_t head[64]; /* the first bytes of msg */
    uint64_t seq;     /* native pings: the event's fields, read inside the callback */
    uint64_t stamp;
    int data_ok;
} entry;

typedef struct {
    pthread_mutex_t lock;
    atomic_int count;
    entry e[MAX_ENTRIES];
} recorder;

static void rec_init(recorder* r) {
    pthread_mutex_init(&r->lock, NULL);
    atomic_store(&r->count, 0);
}

static entry* rec_push(recorder* r, int ret, const char* msg, size_t len) {
    pthread_mutex_lock(&r->lock);
    int i = atomic_load(&r->count);
    entry* e = i < MAX_ENTRIES ? &r->e[i] : NULL;
    if (e) {
        e->ret = ret;
        e->len = len;
        memcpy(e->head, msg, len < 64 ? len : 64);
        e->data_ok = msg[len] == 0;
    }
    return e;
}

static void rec_done(recorder* r) {
    atomic_fetch_add(&r->count, 1);
    pthread_mutex_unlock(&r->lock);
}

static void rec_cb(int ret, const char* msg, size_t len, void* ud) {
    recorder* r = (recorder*)ud;
    rec_push(r, ret, msg, len);
    rec_done(r);
}

/* A native on_perf_ping listener: reads the EchoPerfPing while it is valid. */
static void ping_cb(int ret, const char* msg, size_t len, void* ud) {
    recorder* r = (recorder*)ud;
    entry* e = rec_push(r, ret, msg, len);
    if (e && len == sizeof(EchoPerfPing)) {
        const EchoPerfPing* p = (const EchoPerfPing*)msg;
        e->seq = p->seq_no;
        e->stamp = p->stamp_ns;
        int ok = e->data_ok;
        for (size_t i = 0; i < p->data_len; i++) ok &= p->data[i] == (uint8_t)p->seq_no;
        e->data_ok = ok;
    }
    rec_done(r);
}

static int rec_wait(recorder* r, int n) {
    uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    while (atomic_load(&r->count) < n) {
        if (now_ns() > deadline) return -1;
        sleep_ms(1);
    }
    return 0;
}

static ffid_ctx* make_with(const ffid_options* o) {
    waiter w;
    ffid_ctx* ctx = echo_create_waited(&w, "f", o, TIMEOUT_MS);
    CHECK(ctx != NULL);
    if (!ctx) return NULL;
    CHECK(atomic_load(&w.done) && w.ret == FFID_RET_OK);
    return ctx;
}

static ffid_ctx* make(void) { return make_with(NULL); }

/* The counters once `completed` reached n: it moves as each terminal callback starts. */
static void stats_after(ffid_ctx* ctx, ffid_context_stats* st, uint64_t n) {
    uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    for (;;) {
        st->struct_size = sizeof *st;
        CHECK(echo_stats(ctx, st) == FFID_RET_OK);
        if (st->completed >= n || now_ns() > deadline) return;
        sleep_ms(1);
    }
}

static void expect_ok(waiter* w) {
    CHECK(waiter_wait(w, TIMEOUT_MS) == 0);
    CHECK(w->ret == FFID_RET_OK);
    if (w->ret != FFID_RET_OK) fprintf(stderr, "    got %d \"%s\"\n", w->ret, w->msg);
}

/* ---- events ------------------------------------------------------------------------ */

static void test_events_reach_every_view_in_order(void) {
    ffid_ctx* ctx = make();
    static recorder native, cbor, all;
    rec_init(&native); rec_init(&cbor); rec_init(&all);
    uint64_t a = echo_add_on_perf_ping_listener(ctx, ping_cb, &native);
    uint64_t b = echo_add_on_perf_ping_listener_cbor(ctx, rec_cb, &cbor);
    uint64_t c = echo_add_event_listener(ctx, rec_cb, &all);
    CHECK(a && b && c && a != b && b != c);

    waiter w;
    waiter_reset(&w);
    EchoTriggerPingArgs t = {5, 16, 777, 100};
    CHECK(echo_trigger_ping(ctx, waiter_cb, &w, &t) == FFID_RET_OK);
    expect_ok(&w);
    uint32_t queued;
    memcpy(&queued, w.msg, 4);
    CHECK(w.len == 4 && queued == 5);

    CHECK(rec_wait(&native, 5) == 0 && rec_wait(&cbor, 5) == 0 && rec_wait(&all, 5) == 0);
    for (int i = 0; i < 5; i++) {
        entry* e = &native.e[i];
        CHECK(e->ret == FFID_RET_OK && e->len == sizeof(EchoPerfPing));
        CHECK(e->seq == 100u + (uint64_t)i && e->stamp == 777 && e->data_ok);
        /* CBOR: the record as a 3-entry map */
        CHECK(cbor.e[i].ret == FFID_RET_OK && cbor.e[i].head[0] == 0xa3 && cbor.e[i].data_ok);
        /* the envelope: {"event": "on_perf_ping", "payload": {...}} */
        static const uint8_t head[] = "\xa2\x65" "event" "\x6c" "on_perf_ping" "\x67" "payload" "\xa3";
        CHECK(all.e[i].len > sizeof head - 1 && memcmp(all.e[i].head, head, sizeof head - 1) == 0);
    }
    ffid_context_stats s;
    memset(&s, 0xff, sizeof s); /* every field the runtime writes stops reading all-ones */
    s.struct_size = sizeof s;
    CHECK(echo_stats(ctx, &s) == FFID_RET_OK);
    CHECK(s.struct_size == sizeof s && s.reserved == 0);
    CHECK(s.events_emitted == 5 && s.events_dropped == 0 && s.events_delivered == 15);
    /* the idle counters at the struct's end are written too (the layouts agree) */
    CHECK(s.idle_spin_ns != UINT64_MAX && s.avoidable_wakes != UINT64_MAX);
    CHECK(s.avoidable_wakes <= s.parks);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    /* after destroy: no listener is called, and the handle is refused */
    CHECK(atomic_load(&native.count) == 5);
    CHECK(echo_add_event_listener(ctx, rec_cb, &all) == 0);
}

static void test_remove_listener(void) {
    ffid_ctx* ctx = make();
    static recorder r, other;
    rec_init(&r); rec_init(&other);
    CHECK(echo_add_on_perf_ping_listener(ctx, NULL, &r) == 0);
    uint64_t id = echo_add_on_perf_ping_listener(ctx, ping_cb, &r);
    uint64_t keep = echo_add_on_perf_ping_listener(ctx, ping_cb, &other);
    waiter w;
    waiter_reset(&w);
    EchoTriggerPingArgs t = {3, 0, 0, 0};
    CHECK(echo_trigger_ping(ctx, waiter_cb, &w, &t) == FFID_RET_OK);
    expect_ok(&w);
    CHECK(rec_wait(&r, 3) == 0);
    CHECK(echo_remove_listener(ctx, id) == FFID_RET_OK);
    CHECK(echo_remove_listener(ctx, id) == FFID_RET_ERR);
    waiter_reset(&w);
    CHECK(echo_trigger_ping(ctx, waiter_cb, &w, &t) == FFID_RET_OK);
    expect_ok(&w);
    CHECK(rec_wait(&other, 6) == 0);
    CHECK(atomic_load(&r.count) == 3);
    CHECK(echo_remove_listener(ctx, keep) == FFID_RET_OK);
    CHECK(echo_remove_listener(ctx, keep) == FFID_RET_ERR);
    CHECK(strcmp(echo_last_error(), "no listener of that id") == 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(echo_remove_listener(ctx, keep) == FFID_RET_CLOSED);
}

static void test_events_from_a_library_thread(void) {
    ffid_ctx* ctx = make();
    static recorder r;
    rec_init(&r);
    echo_add_on_perf_ping_listener(ctx, ping_cb, &r);
    waiter w;
    waiter_reset(&w);
    EchoPingFromThreadArgs a = {200};
    CHECK(echo_ping_from_thread(ctx, waiter_cb, &w, &a) == FFID_RET_OK);
    expect_ok(&w);
    uint32_t queued;
    memcpy(&queued, w.msg, 4);
    CHECK(queued == 200);
    CHECK(rec_wait(&r, 200) == 0);
    int ordered = 1;
    for (int i = 0; i < 200; i++) ordered &= r.e[i].seq == (uint64_t)i;
    CHECK(ordered);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

/* ---- deferred replies, pings, cancel ------------------------------------------------ */

static void test_deferred_replies(void) {
    ffid_ctx* ctx = make();
    waiter later, count, dropped;
    waiter_reset(&later); waiter_reset(&count); waiter_reset(&dropped);
    EchoEchoLaterArgs l = {"see you", 100};
    CHECK(echo_echo_later(ctx, waiter_cb, &later, &l) == FFID_RET_OK);
    /* the worker is free at once: this is answered first */
    CHECK(echo_count(ctx, waiter_cb, &count) == FFID_RET_OK);
    expect_ok(&count);
    CHECK(atomic_load(&later.done) == 0);
    expect_ok(&later);
    CHECK(strcmp(later.msg, "see you") == 0 && atomic_load(&later.terminals) == 1);
    CHECK(echo_drop_reply(ctx, waiter_cb, &dropped) == FFID_RET_OK);
    CHECK(waiter_wait(&dropped, TIMEOUT_MS) == 0);
    CHECK(dropped.ret == FFID_RET_ERR && strcmp(dropped.msg, "reply dropped") == 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void test_async_handlers(void) {
    ffid_ctx* ctx = make();
    waiter after, count, yields, bad;
    waiter_reset(&after); waiter_reset(&count); waiter_reset(&yields); waiter_reset(&bad);
    EchoEchoAfterArgs a = {"async hello", 80};
    CHECK(echo_echo_after(ctx, waiter_cb, &after, &a) == FFID_RET_OK);
    EchoYieldTimesArgs y = {1000};
    CHECK(echo_yield_times(ctx, waiter_cb, &yields, &y) == FFID_RET_OK);
    CHECK(echo_count(ctx, waiter_cb, &count) == FFID_RET_OK);
    expect_ok(&count); /* served while both tasks are pending */
    expect_ok(&yields);
    uint32_t n;
    memcpy(&n, yields.msg, 4);
    CHECK(yields.len == 4 && n == 1000);
    CHECK(atomic_load(&after.done) == 0);
    expect_ok(&after);
    CHECK(strcmp(after.msg, "async hello") == 0 && atomic_load(&after.terminals) == 1);
    EchoYieldTimesArgs too_many = {2000000};
    CHECK(echo_yield_times(ctx, waiter_cb, &bad, &too_many) == FFID_RET_OK);
    CHECK(waiter_wait(&bad, TIMEOUT_MS) == 0 && bad.ret == FFID_RET_ERR);
    CHECK(strstr(bad.msg, "too many") != NULL);
    /* destroy with a task still sleeping: it finishes within the default timeout */
    waiter late;
    waiter_reset(&late);
    EchoEchoAfterArgs l = {"just in time", 30};
    CHECK(echo_echo_after(ctx, waiter_cb, &late, &l) == FFID_RET_OK);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&late.done) == 1 && late.ret == FFID_RET_OK && strcmp(late.msg, "just in time") == 0);
}

static void test_destroy_fails_late_deferred_replies(void) {
    ffid_options o;
    ffid_options_init(&o);
    o.shutdown_timeout_ms = 20;
    ffid_ctx* ctx = make_with(&o);
    static recorder r;
    rec_init(&r);
    EchoEchoLaterArgs l = {"too late", 300};
    CHECK(echo_echo_later(ctx, rec_cb, &r, &l) == FFID_RET_OK);
    sleep_ms(5);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&r.count) == 1 && r.e[0].ret == FFID_RET_ERR);
    CHECK(memcmp(r.e[0].head, "context destroyed", 17) == 0);
    sleep_ms(400); /* the library's thread answers now: nothing reaches the host */
    CHECK(atomic_load(&r.count) == 1);
}

static void test_stale_pings_come_before_the_answer(void) {
    ffid_options o;
    ffid_options_init(&o);
    o.stale_ping_ms = 20;
    ffid_ctx* ctx = make_with(&o);
    static recorder r;
    rec_init(&r);
    EchoSleepArgs s = {150};
    CHECK(echo_sleep(ctx, rec_cb, &r, &s) == FFID_RET_OK);
    uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    int n;
    for (;;) {
        n = atomic_load(&r.count);
        if ((n > 0 && r.e[n - 1].ret != FFID_RET_STALE_WARN) || now_ns() > deadline) break;
        sleep_ms(1);
    }
    CHECK(n >= 4);
    long last_ms = 0;
    for (int i = 0; i < n - 1; i++) {
        CHECK(r.e[i].ret == FFID_RET_STALE_WARN && r.e[i].data_ok);
        long ms = strtol((const char*)r.e[i].head, NULL, 10);
        CHECK(ms >= 20 && ms > last_ms);
        last_ms = ms;
    }
    CHECK(r.e[n - 1].ret == FFID_RET_OK);
    sleep_ms(60);
    CHECK(atomic_load(&r.count) == n);
    ffid_context_stats st = {.struct_size = sizeof st};
    CHECK(ffid_stats(ctx, &st) == FFID_RET_OK && st.stale_pings >= 3);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void test_cancel_a_queued_request(void) {
    ffid_ctx* ctx = make();
    waiter sleeping, w[3];
    waiter_reset(&sleeping);
    EchoSleepArgs s = {60};
    CHECK(echo_sleep(ctx, waiter_cb, &sleeping, &s) == FFID_RET_OK);
    uint64_t sleep_id = echo_last_request_id();
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        waiter_reset(&w[i]);
        CHECK(echo_count(ctx, waiter_cb, &w[i]) == FFID_RET_OK);
        ids[i] = echo_last_request_id();
    }
    CHECK(ids[0] == sleep_id + 1 && ids[2] == sleep_id + 3);
    sleep_ms(10); /* the sleep has started */
    CHECK(echo_cancel(ctx, sleep_id) == FFID_RET_ERR);
    CHECK(echo_cancel(ctx, ids[1]) == FFID_RET_OK);
    CHECK(echo_cancel(ctx, ids[1]) == FFID_RET_ERR);
    CHECK(echo_cancel(ctx, 0) == FFID_RET_ERR);
    expect_ok(&sleeping);
    expect_ok(&w[0]);
    CHECK(waiter_wait(&w[1], TIMEOUT_MS) == 0);
    CHECK(w[1].ret == FFID_RET_ERR && strcmp(w[1].msg, "cancelled") == 0);
    expect_ok(&w[2]);
    /* count ran twice after the sleep's tick: the cancelled call never ran */
    uint64_t c0, c2;
    memcpy(&c0, w[0].msg, 8);
    memcpy(&c2, w[2].msg, 8);
    CHECK(c2 == c0 + 1);
    ffid_context_stats st;
    stats_after(ctx, &st, 4);
    CHECK(st.cancelled == 1 && st.accepted == 4 && st.completed == 4 && st.queue_depth == 0);
    CHECK(echo_cancel(ctx, ids[2]) == FFID_RET_ERR);
    CHECK(strcmp(echo_last_error(), "the request has started or finished") == 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(echo_cancel(ctx, ids[2]) == FFID_RET_CLOSED);
}

static void test_stats_refusals_and_bad_input(void) {
    ffid_ctx* ctx = make();
    waiter w;
    waiter_reset(&w);
    CHECK(echo_shout(ctx, waiter_cb, &w, NULL) == FFID_RET_ERR);
    EchoShoutArgs bad = {"\xff"};
    CHECK(echo_shout(ctx, waiter_cb, &w, &bad) == FFID_RET_ERR);
    CHECK(echo_panic(ctx, waiter_cb, &w) == FFID_RET_OK);
    CHECK(waiter_wait(&w, TIMEOUT_MS) == 0);
    ffid_context_stats st;
    stats_after(ctx, &st, 1);
    CHECK(st.refused == 2 && st.panics == 1 && st.accepted == 1 && st.completed == 1);
    CHECK(st.struct_size == sizeof st);
    CHECK(echo_stats(ctx, NULL) == FFID_RET_ERR);
    ffid_context_stats tiny = {.struct_size = 4};
    CHECK(echo_stats(ctx, &tiny) == FFID_RET_ERR);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(echo_stats(ctx, &st) == FFID_RET_CLOSED);
}

/* ---- completion mode --------------------------------------------------------------- */

static pthread_t drainer;

static void on_drainer_thread(int ret, const char* msg, size_t len, void* ud) {
    recorder* r = (recorder*)ud;
    entry* e = rec_push(r, ret, msg, len);
    if (e) e->seq = pthread_equal(pthread_self(), drainer) ? 1 : 0;
    rec_done(r);
}

static void test_completion_mode_event_loop(void) {
    ffid_options o;
    ffid_options_init(&o);
    o.completion = FFID_COMPLETION_QUEUE;
    drainer = pthread_self();
    static recorder created, r;
    rec_init(&created); rec_init(&r);
    EchoConfig cfg = {"loop"};
    ffid_ctx* ctx = echo_create_with_options(on_drainer_thread, &created, &cfg, &o);
    CHECK(ctx != NULL);
    int fd = echo_completion_fd(ctx);
    CHECK(fd >= 0);
    for (int i = 0; i < 20; i++) {
        EchoShoutArgs s = {"abc"};
        CHECK(echo_shout(ctx, on_drainer_thread, &r, &s) == FFID_RET_OK);
    }
    /* the event loop: poll, drain, until all 20 answers and the create callback ran */
    uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    while ((atomic_load(&r.count) < 20 || atomic_load(&created.count) < 1) && now_ns() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) == 1) CHECK(echo_drain(ctx, 8) >= 0);
    }
    CHECK(atomic_load(&created.count) == 1 && created.e[0].ret == FFID_RET_OK && created.e[0].seq == 1);
    CHECK(atomic_load(&r.count) == 20);
    int all_here = 1;
    for (int i = 0; i < 20; i++) all_here &= r.e[i].seq == 1 && r.e[i].ret == FFID_RET_OK && memcmp(r.e[i].head, "loop: ABC", 9) == 0;
    CHECK(all_here);
    /* undrained answers run inside destroy, on this thread */
    waiter w;
    waiter_reset(&w);
    CHECK(echo_count(ctx, waiter_cb, &w) == FFID_RET_OK);
    sleep_ms(5);
    CHECK(atomic_load(&w.done) == 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&w.done) == 1 && w.ret == FFID_RET_OK);
    CHECK(echo_drain(ctx, 1) == -1 && echo_completion_fd(ctx) == -1);
}

/* ---- hooks and diagnostics ------------------------------------------------------- */

static atomic_int starts[3], stops[3];

static void on_start(int role, const char* name, void* ud) {
    if (role >= 0 && role < 3 && name && name[0] && ud == (void*)starts) atomic_fetch_add(&starts[role], 1);
}
static void on_stop(int role, const char* name, void* ud) {
    if (role >= 0 && role < 3 && name && name[0] && ud == (void*)starts) atomic_fetch_add(&stops[role], 1);
}

static void test_hooks_and_liveness(void) {
    static recorder diag;
    rec_init(&diag);
    ffid_options o;
    ffid_options_init(&o);
    o.thread_start = on_start;
    o.thread_stop = on_stop;
    o.hook_user_data = starts;
    o.not_responding_ms = 30;
    o.stale_ping_ms = 0;
    o.diagnostic = rec_cb;
    o.diagnostic_user_data = &diag;
    ffid_ctx* ctx = make_with(&o);
    /* The worker's start hook runs before the constructor, so before create reports;
     * the other threads' hooks may still be on their way (all are counted after
     * destroy, which joins them). */
    CHECK(atomic_load(&starts[FFID_THREAD_WORKER]) == 1);
    waiter w;
    waiter_reset(&w);
    EchoSleepArgs s = {150};
    CHECK(echo_sleep(ctx, waiter_cb, &w, &s) == FFID_RET_OK);
    expect_ok(&w);
    CHECK(rec_wait(&diag, 2) == 0);
    CHECK(diag.e[0].ret == FFID_DIAG_NOT_RESPONDING && diag.e[1].ret == FFID_DIAG_RESPONDING);
    CHECK(strstr((const char*)diag.e[0].head, "`sleep`") != NULL);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&diag.count) == 2);
    for (int role = 0; role < 3; role++) {
        CHECK(atomic_load(&starts[role]) == 1 && atomic_load(&stops[role]) == 1);
    }
}

int main(void) {
    static const test_case tests[] = {
        TEST_ENTRY(test_events_reach_every_view_in_order),
        TEST_ENTRY(test_remove_listener),
        TEST_ENTRY(test_events_from_a_library_thread),
        TEST_ENTRY(test_deferred_replies),
        TEST_ENTRY(test_async_handlers),
        TEST_ENTRY(test_destroy_fails_late_deferred_replies),
        TEST_ENTRY(test_stale_pings_come_before_the_answer),
        TEST_ENTRY(test_cancel_a_queued_request),
        TEST_ENTRY(test_stats_refusals_and_bad_input),
        TEST_ENTRY(test_completion_mode_event_loop),
        TEST_ENTRY(test_hooks_and_liveness),
    };
    return run_tests(tests, sizeof tests / sizeof tests[0]);
}
