/* poll.c - echo and kv served from one epoll loop through <lib>_poll: answers, pings
 * and the create outcomes as entries, typed replies run inside poll, entries lent until
 * the next poll, one poller at a time, the host's own descriptor, and destroy waking a
 * blocked poller. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "check.h"
#include "echo_client.h"
#include "kv.h"

#define TIMEOUT_MS 10000

_Static_assert(sizeof(ffid_entry) == 56, "ffid_entry is the runtime's layout");

/* Poll never calls cb: any call of it is a failure. */
static atomic_int cb_calls;
static void never_cb(int ret, const char* msg, size_t len, void* ud) {
    (void)ret; (void)msg; (void)len; (void)ud;
    atomic_fetch_add(&cb_calls, 1);
}

static ffid_options completion_options(uint32_t stale_ping_ms) {
    ffid_options o;
    ffid_options_init(&o);
    o.completion = FFID_COMPLETION_QUEUE;
    o.stale_ping_ms = stale_ping_ms;
    return o;
}

/* What the loop saw of one call. */
typedef struct {
    int answers, pings;
    int status;
    uint64_t id;
    char text[64];
    bool pinged_before_answer;
} seen;

static void take(seen* s, const ffid_entry* e) {
    if (e->kind == FFID_ENTRY_PING) {
        s->pings++;
        s->pinged_before_answer = s->answers == 0;
        return;
    }
    s->answers++;
    s->status = e->status;
    s->id = e->request_id;
    size_t n = e->len < sizeof s->text - 1 ? e->len : sizeof s->text - 1;
    memcpy(s->text, e->payload, n);
    s->text[n] = 0;
}

static pthread_t loop_thread;
static atomic_int typed_replies, typed_on_loop;
static void on_shout(int ret, const char* value, const char* msg, void* ud) {
    (void)msg; (void)ud;
    if (ret == FFID_RET_OK && value && strcmp(value, "e: TYPED") == 0) atomic_fetch_add(&typed_replies, 1);
    if (pthread_equal(pthread_self(), loop_thread)) atomic_fetch_add(&typed_on_loop, 1);
    ffid_free(value);
}

enum { SHOUTS = 20 };

static void test_one_epoll_loop_serves_echo_and_kv(void) {
    loop_thread = pthread_self();
    atomic_store(&cb_calls, 0);
    ffid_options eo = completion_options(10), ko = completion_options(0);
    seen created_echo = {0}, created_kv = {0};
    EchoConfig ecfg = {"e"};
    KvConfig kcfg = {"store", false, 0};
    ffid_ctx* echo = echo_create_with_options(never_cb, &created_echo, &ecfg, &eo);
    ffid_ctx* kv = kv_create_with_options(never_cb, &created_kv, &kcfg, &ko);
    CHECK(echo != NULL && kv != NULL);
    int efd = echo_poll_fd(echo), kfd = kv_poll_fd(kv);
    CHECK(efd >= 0 && kfd >= 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0);
    ev.data.u32 = 1;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, kfd, &ev) == 0);

    /* echo: shouts, a failure, a sleep long enough to be pinged, a typed call */
    static seen shouts[SHOUTS];
    memset(shouts, 0, sizeof shouts);
    uint64_t shout_ids[SHOUTS];
    for (int i = 0; i < SHOUTS; i++) {
        EchoShoutArgs s = {"abc"};
        CHECK(echo_shout(echo, never_cb, &shouts[i], &s) == FFID_RET_OK);
        shout_ids[i] = echo_last_request_id();
    }
    seen failed = {0}, slept = {0};
    EchoFailArgs f = {"no"};
    CHECK(echo_fail(echo, never_cb, &failed, &f) == FFID_RET_OK);
    EchoSleepArgs sl = {60};
    CHECK(echo_sleep(echo, never_cb, &slept, &sl) == FFID_RET_OK);
    EchoShoutArgs typed = {"typed"};
    atomic_store(&typed_replies, 0);
    atomic_store(&typed_on_loop, 0);
    CHECK(echo_shout_async(echo, &typed, on_shout, NULL) == FFID_RET_OK);
    /* kv: a put, then a get whose native answer is a record */
    seen put = {0}, got = {0};
    const uint8_t v[] = {'v', '1'};
    KvPutArgs p = {"k", v, 2, KV_KIND_BLOB, NULL, 0, false, 0};
    CHECK(kv_put(kv, never_cb, &put, &p) == FFID_RET_OK);
    KvGetArgs g = {"k"};
    CHECK(kv_get(kv, never_cb, &got, &g) == FFID_RET_OK);
    bool record_ok = false;

    /* the loop: epoll, then poll the ready context without waiting */
    uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    for (;;) {
        bool done = created_echo.answers && created_kv.answers && slept.answers && failed.answers &&
                    put.answers && got.answers && atomic_load(&typed_replies) == 1;
        for (int i = 0; i < SHOUTS; i++) done = done && shouts[i].answers;
        if (done || now_ns() > deadline) break;
        struct epoll_event ready[2];
        int n = epoll_wait(ep, ready, 2, 100);
        for (int r = 0; r < n; r++) {
            bool is_kv = ready[r].data.u32 == 1;
            ffid_entry entries[8];
            entries[0].struct_size = sizeof(ffid_entry);
            int got_n = is_kv ? kv_poll(kv, entries, 8, 0) : echo_poll(echo, entries, 8, 0);
            CHECK(got_n >= 0);
            for (int i = 0; i < got_n; i++) {
                const ffid_entry* e = &entries[i];
                CHECK(e->struct_size == sizeof(ffid_entry) && e->cb == never_cb);
                CHECK(e->payload != NULL && e->payload[e->len] == 0);
                seen* s = (seen*)e->user_data;
                /* the record's pointers are valid until the next poll: read them now */
                if (s == &got && e->status == FFID_RET_OK && e->len == sizeof(KvEntry)) {
                    const KvEntry* rec = (const KvEntry*)e->payload;
                    record_ok = strcmp(rec->key, "k") == 0 && rec->value_len == 2 &&
                                memcmp(rec->value, "v1", 2) == 0 && rec->kind == KV_KIND_BLOB;
                }
                take(s, e);
            }
        }
    }
    CHECK(atomic_load(&cb_calls) == 0);
    /* the create outcomes are request 0 */
    CHECK(created_echo.answers == 1 && created_echo.status == FFID_RET_OK && created_echo.id == 0);
    CHECK(created_kv.answers == 1 && created_kv.status == FFID_RET_OK && created_kv.id == 0);
    bool shouts_ok = true;
    for (int i = 0; i < SHOUTS; i++)
        shouts_ok = shouts_ok && shouts[i].answers == 1 && shouts[i].status == FFID_RET_OK &&
                    shouts[i].id == shout_ids[i] && strcmp(shouts[i].text, "e: ABC") == 0;
    CHECK(shouts_ok);
    CHECK(failed.answers == 1 && failed.status == FFID_RET_ERR && strcmp(failed.text, "no") == 0);
    CHECK(slept.answers == 1 && slept.status == FFID_RET_OK && slept.pings >= 1 && slept.pinged_before_answer);
    CHECK(put.answers == 1 && put.status == FFID_RET_OK);
    CHECK(got.answers == 1 && got.status == FFID_RET_OK && record_ok);
    /* the typed reply ran inside a poll, on this thread, and took no entry */
    CHECK(atomic_load(&typed_replies) == 1 && atomic_load(&typed_on_loop) == 1);

    close(ep);
    close(efd);
    close(kfd);
    CHECK(echo_destroy(echo) == FFID_RET_OK);
    CHECK(kv_destroy(kv) == FFID_RET_OK);
    CHECK(atomic_load(&cb_calls) == 0); /* nothing was left for destroy to deliver */
}

/* ---- one poller, the host's descriptor, old layouts, refusals ------------------------ */

typedef struct {
    ffid_ctx* ctx;
    atomic_int started;
    int ret;
} blocked_poll;

static void* poll_forever(void* arg) {
    blocked_poll* b = (blocked_poll*)arg;
    ffid_entry entries[4];
    entries[0].struct_size = sizeof(ffid_entry);
    atomic_store(&b->started, 1);
    b->ret = echo_poll(b->ctx, entries, 4, -1);
    if (b->ret == 1 && entries[0].kind != FFID_ENTRY_CLOSED) b->ret = -100;
    return NULL;
}

static void test_one_poller_at_a_time_on_the_host_s_descriptor(void) {
    ffid_options o = completion_options(0);
    EchoConfig cfg = {"p"};
    ffid_ctx* ctx = echo_create_with_options(never_cb, NULL, &cfg, &o);
    CHECK(ctx != NULL);
    /* each call gives a descriptor of the host's own */
    int a = echo_poll_fd(ctx), b = echo_poll_fd(ctx);
    CHECK(a >= 0 && b >= 0 && a != b);
    CHECK(close(a) == 0);
    /* the create's outcome makes b readable, closed a notwithstanding */
    struct pollfd pfd = {b, POLLIN, 0};
    CHECK(poll(&pfd, 1, TIMEOUT_MS) == 1);
    /* an older, shorter entry layout: nothing past its struct_size is written */
    struct {
        ffid_entry e;
        uint64_t guard;
    } small;
    memset(&small, 0xab, sizeof small);
    small.e.struct_size = 16;
    CHECK(echo_poll(ctx, &small.e, 1, TIMEOUT_MS) == 1);
    CHECK(small.e.struct_size == 16 && small.e.kind == FFID_ENTRY_ANSWER && small.e.request_id == 0);
    const unsigned char* past = (const unsigned char*)&small.e + 16;
    bool untouched = true;
    for (size_t i = 0; i < sizeof small - 16; i++) untouched = untouched && past[i] == 0xab;
    CHECK(untouched);
    /* nothing queued: a zero timeout returns at once */
    ffid_entry e[2];
    e[0].struct_size = sizeof(ffid_entry);
    CHECK(echo_poll(ctx, e, 2, 0) == 0);
    CHECK(echo_poll(ctx, e, 2, 20) == 0);
    /* max 0 returns at once, whatever waits (it only releases the last batch) */
    EchoShoutArgs s = {"q"};
    CHECK(echo_shout(ctx, never_cb, NULL, &s) == FFID_RET_OK);
    CHECK(echo_poll(ctx, NULL, 0, -1) == 0);
    CHECK(echo_poll(ctx, e, 2, TIMEOUT_MS) == 1 && e[0].kind == FFID_ENTRY_ANSWER);
    /* a second poller is refused while the first waits */
    blocked_poll bp = {ctx, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, poll_forever, &bp);
    while (!atomic_load(&bp.started)) sleep_ms(1);
    sleep_ms(20); /* inside its wait now (or about to be: then this poll is refused later) */
    int busy = 0;
    for (int i = 0; i < 200 && busy == 0; i++) {
        int rc = echo_poll(ctx, e, 2, 0);
        if (rc == -FFID_RET_BUSY) busy = 1;
        else sleep_ms(1);
    }
    CHECK(busy && strstr(echo_last_error(), "another thread is polling") != NULL);
    /* a drain is the same consumer: refused too (0 ran) */
    CHECK(echo_drain(ctx, 8) == 0);
    /* destroy wakes the blocked poller: its batch ends with FFID_ENTRY_CLOSED */
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    pthread_join(t, NULL);
    CHECK(bp.ret == 1);
    CHECK(echo_poll(ctx, e, 2, 0) == -FFID_RET_CLOSED);
    CHECK(echo_poll_fd(ctx) == -FFID_RET_CLOSED);
    /* the host's descriptor outlives the context: it is b's to close */
    CHECK(close(b) == 0);

    /* refusals: not in completion mode, a bad handle, bad arguments */
    ffid_ctx* plain = echo_create(never_cb, NULL, &cfg);
    CHECK(echo_poll(plain, e, 2, 0) == -FFID_RET_ERR);
    CHECK(strstr(echo_last_error(), "not in completion mode") != NULL);
    CHECK(echo_poll_fd(plain) == -FFID_RET_ERR);
    CHECK(echo_poll(NULL, e, 2, 0) == -FFID_RET_INVALID_CTX);
    ffid_ctx* q = echo_create_with_options(never_cb, NULL, &cfg, &o);
    CHECK(echo_poll(q, NULL, 2, 0) == -FFID_RET_ERR);
    CHECK(strcmp(echo_last_error(), "argument `entries`: NULL where a value is required") == 0);
    e[0].struct_size = 8;
    CHECK(echo_poll(q, e, 2, 0) == -FFID_RET_ERR);
    CHECK(echo_destroy(q) == FFID_RET_OK);
    CHECK(echo_destroy(plain) == FFID_RET_OK);
}

/* What was not polled before destroy reaches cb, on the destroying thread. */
static atomic_int late_calls;
static void late_cb(int ret, const char* msg, size_t len, void* ud) {
    (void)msg; (void)len;
    if (ret == FFID_RET_OK && pthread_equal(pthread_self(), *(pthread_t*)ud)) atomic_fetch_add(&late_calls, 1);
}

static void test_destroy_delivers_what_was_not_polled(void) {
    ffid_options o = completion_options(0);
    EchoConfig cfg = {"d"};
    pthread_t me = pthread_self();
    atomic_store(&late_calls, 0);
    ffid_ctx* ctx = echo_create_with_options(late_cb, &me, &cfg, &o);
    CHECK(ctx != NULL);
    EchoShoutArgs s = {"x"};
    for (int i = 0; i < 5; i++) CHECK(echo_shout(ctx, late_cb, &me, &s) == FFID_RET_OK);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&late_calls) == 6); /* the create outcome and the five answers */
}

/* ---- events and reports as entries (ffid_options.poll_kinds) ------------------------- */

static void test_events_and_reports_come_as_entries(void) {
    ffid_options o = completion_options(0);
    o.poll_kinds = FFID_POLL_EVENTS | FFID_POLL_DIAGNOSTICS;
    o.not_responding_ms = 20;
    EchoConfig cfg = {"ev"};
    atomic_store(&cb_calls, 0);
    ffid_ctx* ctx = echo_create_with_options(never_cb, NULL, &cfg, &o);
    CHECK(ctx != NULL);
    /* a listener is never called: the events go to the poll */
    CHECK(echo_add_event_listener(ctx, never_cb, NULL) != 0);
    seen trig = {0}, slept = {0}, panicked = {0};
    EchoTriggerPingArgs t = {5, 2, 7, 100};
    CHECK(echo_trigger_ping(ctx, never_cb, &trig, &t) == FFID_RET_OK);
    EchoSleepArgs sl = {100};
    CHECK(echo_sleep(ctx, never_cb, &slept, &sl) == FFID_RET_OK);
    CHECK(echo_panic(ctx, never_cb, &panicked) == FFID_RET_OK);

    int events = 0, in_order = 1, answered_after_events = 0, not_responding = 0, responding = 0,
        panic_report = 0;
    uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    while (!(trig.answers && slept.answers && panicked.answers && responding && panic_report) &&
           now_ns() < deadline) {
        ffid_entry e[8];
        e[0].struct_size = sizeof(ffid_entry);
        int n = echo_poll(ctx, e, 8, 100);
        CHECK(n >= 0);
        for (int i = 0; i < n; i++) {
            if (e[i].kind == FFID_ENTRY_EVENT) {
                /* {"event": "on_perf_ping", "payload": {... "seq_no": 100 + k ...}} */
                static const uint8_t head[] = "\xa2\x65" "event" "\x6c" "on_perf_ping" "\x67" "payload";
                uint8_t seq[] = {0x66, 's', 'e', 'q', '_', 'n', 'o', 0x18, (uint8_t)(100 + events)};
                CHECK(e[i].request_id == 0 && e[i].status == FFID_RET_OK && e[i].cb == NULL);
                in_order &= e[i].len > sizeof head - 1 && memcmp(e[i].payload, head, sizeof head - 1) == 0 &&
                            memmem(e[i].payload, e[i].len, seq, sizeof seq) != NULL;
                events++;
            } else if (e[i].kind == FFID_ENTRY_DIAGNOSTIC) {
                const char* text = (const char*)e[i].payload;
                if (e[i].status == FFID_DIAG_NOT_RESPONDING && strstr(text, "inside `sleep`")) not_responding++;
                if (e[i].status == FFID_DIAG_RESPONDING && not_responding) responding++;
                if (e[i].status == FFID_DIAG_PANIC && strstr(text, "echo was asked to panic")) panic_report++;
            } else if (e[i].kind == FFID_ENTRY_ANSWER && e[i].user_data != NULL) {
                seen* s = (seen*)e[i].user_data;
                if (s == &trig) answered_after_events = events == 5;
                take(s, &e[i]);
            }
        }
    }
    CHECK(events == 5 && in_order && answered_after_events);
    CHECK(trig.answers == 1 && trig.status == FFID_RET_OK);
    CHECK(not_responding == 1 && responding >= 1 && panic_report == 1);
    if (!(not_responding == 1 && responding >= 1 && panic_report == 1))
        fprintf(stderr, "    reports: not responding %d, responding %d, panic %d\n", not_responding, responding, panic_report);
    CHECK(slept.answers == 1 && panicked.answers == 1 && panicked.status == FFID_RET_ERR);
    ffid_context_stats st = {.struct_size = sizeof st};
    CHECK(echo_stats(ctx, &st) == FFID_RET_OK && st.events_emitted == 5 && st.events_delivered == 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&cb_calls) == 0);

    /* poll kinds need completion mode, and only the known bits */
    ffid_options bad = completion_options(0);
    bad.poll_kinds = 4;
    CHECK(echo_create_with_options(never_cb, NULL, &cfg, &bad) == NULL);
    bad = completion_options(0);
    bad.completion = FFID_COMPLETION_CALLBACK;
    bad.poll_kinds = FFID_POLL_EVENTS;
    CHECK(echo_create_with_options(never_cb, NULL, &cfg, &bad) == NULL);
}

int main(void) {
    alarm(120); /* a hang is a failure, not a stuck suite */
    static const test_case tests[] = {
        TEST_ENTRY(test_one_epoll_loop_serves_echo_and_kv),
        TEST_ENTRY(test_one_poller_at_a_time_on_the_host_s_descriptor),
        TEST_ENTRY(test_destroy_delivers_what_was_not_polled),
        TEST_ENTRY(test_events_and_reports_come_as_entries),
    };
    return run_tests(tests, sizeof tests / sizeof tests[0]);
}
