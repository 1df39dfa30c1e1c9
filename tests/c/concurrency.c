/* concurrency.c - exactly-once accounting under several producers, both back-pressure
 * policies, destroy with requests in flight, and both wake backends. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "echo_client.h"

#define TIMEOUT_MS 20000

/* One record per submitted request; user_data points at it. */
typedef struct {
    atomic_int hits;     /* terminal callbacks received */
    atomic_int wrong;    /* wrong status or answer */
    int8_t expect;       /* expected bool answer, or -1 for "any OK" */
    uint64_t value;      /* count() answer */
} rec;

static void rec_cb(int ret, const char* msg, size_t len, void* ud) {
    rec* r = (rec*)ud;
    if (ret == FFID_RET_STALE_WARN) return;
    int ok = ret == FFID_RET_OK && msg != NULL && msg[len] == 0;
    if (ok && r->expect >= 0) {
        /* native bool is 1 byte 0/1; CBOR bool is 0xf4/0xf5 */
        int got = len == 1 ? ((uint8_t)msg[0] == 0xf5 ? 1 : (uint8_t)msg[0] == 0xf4 ? 0 : msg[0]) : -1;
        ok = got == r->expect;
    }
    if (ok && r->expect == -2) /* count(): 8 raw bytes natively, a CBOR uint otherwise */
        ok = len == 8 ? (memcpy(&r->value, msg, 8), 1) : cbor_read_uint(msg, len, &r->value) == 0;
    if (!ok) atomic_fetch_add(&r->wrong, 1);
    atomic_fetch_add(&r->hits, 1);
}

static ffid_ctx* make(uint32_t cap, uint32_t policy, uint32_t wake, uint32_t spin_ns) {
    ffid_options o;
    ffid_options_init(&o);
    o.ring_capacity = cap;
    o.backpressure = policy;
    o.wake = wake;
    o.spin_ns = spin_ns;
    waiter w;
    ffid_ctx* ctx = echo_create_waited(&w, "c", &o, TIMEOUT_MS);
    CHECK(ctx != NULL);
    CHECK(ctx && atomic_load(&w.done) && w.ret == FFID_RET_OK);
    return ctx;
}

static int predicate(int64_t a, int64_t b, double x) { return ((a + b + (int64_t)x) & 1) == 0; }

/* Submits scalar_check alternately native and CBOR. */
static int submit_scalar(ffid_ctx* ctx, rec* r, int64_t i, cbor_w* cw) {
    int64_t a = i, b = i / 3;
    double x = (double)(i % 7) + 0.5;
    r->expect = (int8_t)predicate(a, b, x);
    if (i & 1) {
        EchoScalarCheckArgs args = {a, b, x};
        return echo_scalar_check(ctx, rec_cb, r, &args);
    }
    cbor_reset(cw);
    cbor_map(cw, 3);
    cbor_text(cw, "a"); cbor_int(cw, a);
    cbor_text(cw, "b"); cbor_int(cw, b);
    cbor_text(cw, "x"); cbor_f64(cw, x);
    return echo_scalar_check_cbor(ctx, rec_cb, r, cw->buf, cw->len);
}

typedef struct {
    ffid_ctx* ctx;
    rec* recs;
    int n;
    int base;
    int accepted, busy, refused, other;
    int stop_on_refusal;
} producer;

static void* produce(void* arg) {
    producer* p = (producer*)arg;
    cbor_w cw = {0};
    for (int i = 0; i < p->n; i++) {
        int ret = submit_scalar(p->ctx, &p->recs[i], p->base + i, &cw);
        if (ret == FFID_RET_OK) p->accepted++;
        else if (ret == FFID_RET_BUSY) p->busy++;
        else if (ret == FFID_RET_CLOSED) { p->refused++; if (p->stop_on_refusal) break; }
        else p->other++;
    }
    cbor_free(&cw);
    return NULL;
}

/* Runs `threads` producers of `per` calls each; returns totals in *out. */
static void run_producers(ffid_ctx* ctx, rec* recs, int threads, int per, int stop_on_refusal, producer* ps) {
    pthread_t t[16];
    for (int i = 0; i < threads; i++) {
        ps[i] = (producer){ctx, recs + i * per, per, i * per, 0, 0, 0, 0, stop_on_refusal};
        pthread_create(&t[i], NULL, produce, &ps[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
}

/* After destroy: every accepted request answered exactly once and correctly, every
 * refused one never. `accepted_of(i)` is known from the return codes. */
static void check_accounting(rec* recs, int total, int expected_accepted) {
    int once = 0, never = 0, more = 0, wrong = 0;
    for (int i = 0; i < total; i++) {
        int h = atomic_load(&recs[i].hits);
        once += h == 1;
        never += h == 0;
        more += h > 1;
        wrong += atomic_load(&recs[i].wrong);
    }
    CHECK(more == 0);
    CHECK(wrong == 0);
    CHECK(once == expected_accepted);
    CHECK(once + never == total);
    if (more || wrong || once != expected_accepted)
        fprintf(stderr, "    once=%d never=%d more=%d wrong=%d expected=%d\n", once, never, more, wrong, expected_accepted);
}

static void test_block_policy_never_busy_exactly_once(void) {
    enum { T = 4, PER = 20000 };
    static rec recs[T * PER];
    memset(recs, 0, sizeof recs);
    ffid_ctx* ctx = make(8, FFID_BACKPRESSURE_BLOCK, FFID_WAKE_FUTEX, 50000);
    producer ps[T];
    run_producers(ctx, recs, T, PER, 0, ps);
    int accepted = 0;
    for (int i = 0; i < T; i++) {
        accepted += ps[i].accepted;
        CHECK(ps[i].busy == 0 && ps[i].refused == 0 && ps[i].other == 0);
    }
    CHECK(accepted == T * PER);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    check_accounting(recs, T * PER, accepted);
}

static void test_reject_policy_busy_is_exact(void) {
    /* Deterministic part: a sleeping worker and a ring of 4 -> exactly 4 more fit. */
    ffid_ctx* ctx = make(4, FFID_BACKPRESSURE_REJECT, FFID_WAKE_FUTEX, 50000);
    waiter sleeper;
    waiter_reset(&sleeper);
    EchoSleepArgs sl = {150};
    CHECK(echo_sleep(ctx, waiter_cb, &sleeper, &sl) == FFID_RET_OK);
    sleep_ms(30); /* the worker has popped the sleep and is inside it */
    static rec few[8];
    memset(few, 0, sizeof few);
    cbor_w cw = {0};
    int codes[8];
    for (int i = 0; i < 8; i++) codes[i] = submit_scalar(ctx, &few[i], i, &cw);
    cbor_free(&cw);
    for (int i = 0; i < 8; i++) CHECK(codes[i] == (i < 4 ? FFID_RET_OK : FFID_RET_BUSY));
    CHECK(waiter_wait(&sleeper, TIMEOUT_MS) == 0);

    /* Under load: whatever the split, accepted ones are answered once, busy ones never. */
    enum { T = 4, PER = 20000 };
    static rec recs[T * PER];
    memset(recs, 0, sizeof recs);
    producer ps[T];
    run_producers(ctx, recs, T, PER, 0, ps);
    int accepted = 0, busy = 0;
    for (int i = 0; i < T; i++) {
        accepted += ps[i].accepted;
        busy += ps[i].busy;
        CHECK(ps[i].refused == 0 && ps[i].other == 0);
    }
    CHECK(accepted + busy == T * PER);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    check_accounting(few, 8, 4);
    check_accounting(recs, T * PER, accepted);
    printf("    reject policy under load: %d accepted, %d busy\n", accepted, busy);
}

static void test_destroy_answers_everything_in_flight(void) {
    enum { T = 2, PER = 5000 };
    static rec recs[T * PER];
    memset(recs, 0, sizeof recs);
    ffid_ctx* ctx = make(T * PER + 8, FFID_BACKPRESSURE_BLOCK, FFID_WAKE_FUTEX, 50000);
    waiter sleeper;
    waiter_reset(&sleeper);
    EchoSleepArgs sl = {50};
    CHECK(echo_sleep(ctx, waiter_cb, &sleeper, &sl) == FFID_RET_OK);
    producer ps[T];
    run_producers(ctx, recs, T, PER, 0, ps);
    int accepted = ps[0].accepted + ps[1].accepted;
    CHECK(accepted == T * PER);
    /* The worker is still asleep, so thousands of requests are queued right now. */
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    /* Synchronous: all answered by the time destroy returned... */
    CHECK(atomic_load(&sleeper.terminals) == 1);
    check_accounting(recs, T * PER, accepted);
    /* ...and nothing arrives afterwards. */
    sleep_ms(20);
    check_accounting(recs, T * PER, accepted);
    CHECK(atomic_load(&sleeper.terminals) == 1);
}

static void test_destroy_releases_blocked_producers(void) {
    enum { T = 3, PER = 200 };
    static rec recs[T * PER];
    memset(recs, 0, sizeof recs);
    ffid_ctx* ctx = make(4, FFID_BACKPRESSURE_BLOCK, FFID_WAKE_FUTEX, 50000);
    waiter sleeper;
    waiter_reset(&sleeper);
    EchoSleepArgs sl = {300};
    CHECK(echo_sleep(ctx, waiter_cb, &sleeper, &sl) == FFID_RET_OK);
    producer ps[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        ps[i] = (producer){ctx, recs + i * PER, PER, i * PER, 0, 0, 0, 0, 1};
        pthread_create(&t[i], NULL, produce, &ps[i]);
    }
    sleep_ms(60); /* producers fill the ring and block */
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    int accepted = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL); /* would hang if a blocked producer were never released */
        accepted += ps[i].accepted;
        CHECK(ps[i].busy == 0 && ps[i].other == 0);
        CHECK(ps[i].refused == 1); /* each gave up with CLOSED once destroy began */
    }
    CHECK(accepted >= 4 && accepted < T * PER);
    /* Records past a producer's refusal were never submitted: zero hits as well. */
    check_accounting(recs, T * PER, accepted);
    CHECK(atomic_load(&sleeper.terminals) == 1);
}

/* Sync round trips with a worker that parks at once: every call needs a wake. A lost
 * wakeup shows up as a waiter timeout. */
typedef struct {
    ffid_ctx* ctx;
    int n;
    int failures;
} syncer;

static void* sync_calls(void* arg) {
    syncer* s = (syncer*)arg;
    waiter w;
    for (int i = 0; i < s->n; i++) {
        waiter_reset(&w);
        EchoScalarCheckArgs a = {i, 1, 0.0};
        if (echo_scalar_check(s->ctx, waiter_cb, &w, &a) != FFID_RET_OK || waiter_wait(&w, TIMEOUT_MS) != 0 ||
            w.ret != FFID_RET_OK || w.len != 1 || w.msg[0] != predicate(i, 1, 0.0))
            s->failures++;
        if (i % 64 == 0) sleep_ms(0); /* let the worker really park now and then */
    }
    return NULL;
}

static void park_at_once(uint32_t wake) {
    ffid_ctx* ctx = make(64, FFID_BACKPRESSURE_BLOCK, wake, 0);
    enum { T = 2 };
    syncer s[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        s[i] = (syncer){ctx, 5000, 0};
        pthread_create(&t[i], NULL, sync_calls, &s[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        CHECK(s[i].failures == 0);
    }
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

static void test_futex_park_at_once_no_lost_wakeup(void) { park_at_once(FFID_WAKE_FUTEX); }
static void test_eventfd_park_at_once_no_lost_wakeup(void) { park_at_once(FFID_WAKE_EVENTFD); }

/* count() answers are per-context sequence numbers: per producer they must increase. */
typedef struct {
    ffid_ctx* ctx;
    rec* recs;
    int n;
} counter;

static void* count_calls(void* arg) {
    counter* c = (counter*)arg;
    for (int i = 0; i < c->n; i++) {
        c->recs[i].expect = -2;
        if (i & 1) {
            if (echo_count(c->ctx, rec_cb, &c->recs[i]) != FFID_RET_OK) atomic_fetch_add(&c->recs[i].wrong, 1);
        } else if (echo_count_cbor(c->ctx, rec_cb, &c->recs[i], NULL, 0) != FFID_RET_OK) {
            atomic_fetch_add(&c->recs[i].wrong, 1);
        }
    }
    return NULL;
}

static void test_fifo_per_producer(void) {
    enum { T = 3, PER = 3000 };
    static rec recs[T * PER];
    memset(recs, 0, sizeof recs);
    ffid_ctx* ctx = make(16, FFID_BACKPRESSURE_BLOCK, FFID_WAKE_FUTEX, 50000);
    counter c[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        c[i] = (counter){ctx, recs + i * PER, PER};
        pthread_create(&t[i], NULL, count_calls, &c[i]);
    }
    for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    check_accounting(recs, T * PER, T * PER);
    int increasing = 1;
    for (int p = 0; p < T; p++)
        for (int i = 1; i < PER; i++) increasing &= recs[p * PER + i].value > recs[p * PER + i - 1].value;
    CHECK(increasing);
}

static void* churn(void* arg) {
    int* failures = (int*)arg;
    for (int i = 0; i < 100; i++) {
        waiter w;
        waiter_reset(&w);
        EchoConfig cfg = {"churn"};
        ffid_ctx* ctx = echo_create(waiter_cb, &w, &cfg);
        if (!ctx || waiter_wait(&w, TIMEOUT_MS) != 0) { (*failures)++; continue; }
        waiter_reset(&w);
        EchoShoutArgs s = {"x"};
        if (echo_shout(ctx, waiter_cb, &w, &s) != FFID_RET_OK || waiter_wait(&w, TIMEOUT_MS) != 0 ||
            strcmp(w.msg, "churn: X") != 0)
            (*failures)++;
        if (echo_destroy(ctx) != FFID_RET_OK) (*failures)++;
        if (echo_shout(ctx, waiter_cb, &w, &s) != FFID_RET_CLOSED) (*failures)++; /* stale now */
    }
    return NULL;
}

static void test_create_destroy_churn(void) {
    int failures[2] = {0, 0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, churn, &failures[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(failures[0] == 0 && failures[1] == 0);
}

int main(void) {
    static const test_case tests[] = {
        TEST_ENTRY(test_block_policy_never_busy_exactly_once),
        TEST_ENTRY(test_reject_policy_busy_is_exact),
        TEST_ENTRY(test_destroy_answers_everything_in_flight),
        TEST_ENTRY(test_destroy_releases_blocked_producers),
        TEST_ENTRY(test_futex_park_at_once_no_lost_wakeup),
        TEST_ENTRY(test_eventfd_park_at_once_no_lost_wakeup),
        TEST_ENTRY(test_fifo_per_producer),
        TEST_ENTRY(test_create_destroy_churn),
    };
    return run_tests(tests, sizeof tests / sizeof tests[0]);
}
