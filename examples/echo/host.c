/*
 * host.c - a real C host for the echo library.
 *
 * 1. Calls every method in both modes (native and CBOR) from several threads and checks
 *    every answer.
 * 2. Measures, in one run: the floor (a bare atomic ping-pong between two threads), then
 *    synchronous round trips of scalar_check, native and CBOR, from 1..T threads, and an
 *    asynchronous lane (64 calls in flight per thread). Prints calls/s, p50/p99 and the
 *    ratio of the p50 to the floor.
 *
 * Knobs (environment): ECHO_HOST_CALLS (per thread per lane, default 200000),
 * ECHO_HOST_THREADS (highest thread count, default 2), ECHO_HOST_RING (ring capacity,
 * default the runtime's), ECHO_HOST_SPIN_NS (worker spin budget, default the runtime's),
 * ECHO_HOST_RING_KIND (0 tagged ring, the default; 1 ArrayQueue).
 * Exit status: 0 when every answer was right, 1 otherwise.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo_client.h"

#define TIMEOUT_MS 30000

static atomic_int failures;
static void fail(const char* what, const waiter* w) {
    fprintf(stderr, "WRONG: %s (ret=%d %s, msg=\"%s\")\n", what, w->ret, ffid_status_name(w->ret), w->msg);
    atomic_fetch_add(&failures, 1);
}

static int predicate(int64_t a, int64_t b, double x) { return ((a + b + (int64_t)x) & 1) == 0; }

/* ---- 1. every method, both modes, several threads ---------------------------------- */

static int done_and(waiter* w, int ret) {
    return waiter_wait(w, TIMEOUT_MS) == 0 && w->ret == ret && atomic_load(&w->terminals) == 1 && w->nul_ok;
}

static void* every_method(void* arg) {
    ffid_ctx* ctx = (ffid_ctx*)arg;
    waiter w;
    cbor_w r = {0};
    const char* s;
    size_t n;
    uint64_t u;

    waiter_reset(&w);
    EchoShoutArgs sh = {"native call"};
    echo_shout(ctx, waiter_cb, &w, &sh);
    if (!done_and(&w, FFID_RET_OK) || strcmp(w.msg, "host: NATIVE CALL") != 0) fail("shout", &w);
    waiter_reset(&w);
    cbor_map(&r, 1); cbor_text(&r, "text"); cbor_text(&r, "cbor call");
    echo_shout_cbor(ctx, waiter_cb, &w, r.buf, r.len);
    if (!done_and(&w, FFID_RET_OK) || cbor_read_text(w.msg, w.len, &s, &n) || n != 15 || memcmp(s, "host: CBOR CALL", 15))
        fail("shout_cbor", &w);

    for (int i = 0; i < 16; i++) {
        EchoScalarCheckArgs a = {i, 3, i * 0.75};
        int want = predicate(i, 3, i * 0.75);
        waiter_reset(&w);
        echo_scalar_check(ctx, waiter_cb, &w, &a);
        if (!done_and(&w, FFID_RET_OK) || w.len != 1 || w.msg[0] != want) fail("scalar_check", &w);
        cbor_reset(&r);
        cbor_map(&r, 3);
        cbor_text(&r, "a"); cbor_int(&r, i);
        cbor_text(&r, "b"); cbor_int(&r, 3);
        cbor_text(&r, "x"); cbor_f64(&r, i * 0.75);
        waiter_reset(&w);
        echo_scalar_check_cbor(ctx, waiter_cb, &w, r.buf, r.len);
        if (!done_and(&w, FFID_RET_OK) || cbor_read_bool(w.msg, w.len) != want) fail("scalar_check_cbor", &w);
    }

    static uint8_t data[4096];
    data[0] = 1; data[4095] = 2; /* 1 + 2 + 4096: odd -> false */
    EchoPayloadCheckArgs p = {data, sizeof data};
    waiter_reset(&w);
    echo_payload_check(ctx, waiter_cb, &w, &p);
    if (!done_and(&w, FFID_RET_OK) || w.len != 1 || w.msg[0] != 0) fail("payload_check", &w);
    cbor_reset(&r);
    cbor_map(&r, 1); cbor_text(&r, "data"); cbor_bytes(&r, data, sizeof data);
    waiter_reset(&w);
    echo_payload_check_cbor(ctx, waiter_cb, &w, r.buf, r.len);
    if (!done_and(&w, FFID_RET_OK) || cbor_read_bool(w.msg, w.len) != 0) fail("payload_check_cbor", &w);

    waiter_reset(&w);
    echo_count(ctx, waiter_cb, &w);
    if (!done_and(&w, FFID_RET_OK) || w.len != 8) fail("count", &w);
    waiter_reset(&w);
    echo_count_cbor(ctx, waiter_cb, &w, NULL, 0);
    if (!done_and(&w, FFID_RET_OK) || cbor_read_uint(w.msg, w.len, &u)) fail("count_cbor", &w);

    EchoSleepArgs sl = {1};
    waiter_reset(&w);
    echo_sleep(ctx, waiter_cb, &w, &sl);
    if (!done_and(&w, FFID_RET_OK) || w.len != 0) fail("sleep", &w);
    cbor_reset(&r);
    cbor_map(&r, 1); cbor_text(&r, "ms"); cbor_uint(&r, 1);
    waiter_reset(&w);
    echo_sleep_cbor(ctx, waiter_cb, &w, r.buf, r.len);
    if (!done_and(&w, FFID_RET_OK) || w.len != 1 || (uint8_t)w.msg[0] != 0xf6) fail("sleep_cbor", &w);

    EchoFailArgs f = {"on purpose"};
    waiter_reset(&w);
    echo_fail(ctx, waiter_cb, &w, &f);
    if (!done_and(&w, FFID_RET_ERR) || strcmp(w.msg, "on purpose") != 0) fail("fail", &w);
    cbor_reset(&r);
    cbor_map(&r, 1); cbor_text(&r, "message"); cbor_text(&r, "cbor purpose");
    waiter_reset(&w);
    echo_fail_cbor(ctx, waiter_cb, &w, r.buf, r.len);
    if (!done_and(&w, FFID_RET_ERR) || strcmp(w.msg, "cbor purpose") != 0) fail("fail_cbor", &w);

    waiter_reset(&w);
    echo_panic(ctx, waiter_cb, &w);
    if (!done_and(&w, FFID_RET_ERR) || strncmp(w.msg, "handler panicked:", 17) != 0) fail("panic", &w);
    waiter_reset(&w);
    echo_panic_cbor(ctx, waiter_cb, &w, NULL, 0);
    if (!done_and(&w, FFID_RET_ERR) || strncmp(w.msg, "handler panicked:", 17) != 0) fail("panic_cbor", &w);

    cbor_free(&r);
    return NULL;
}

/* ---- 2. measurements ---------------------------------------------------------------- */

static int cmp_u64(const void* a, const void* b) {
    uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
    return x < y ? -1 : x > y;
}
static uint64_t pct(uint64_t* sorted, size_t n, double p) { return sorted[(size_t)(p * (double)(n - 1))]; }

/* The floor: one thread flips `ball` to 1, the other flips it back to 0. */
static _Atomic uint64_t ball;
static atomic_int pong_stop;
static void* pong(void* arg) {
    (void)arg;
    while (!atomic_load_explicit(&pong_stop, memory_order_relaxed)) {
        if (atomic_load_explicit(&ball, memory_order_acquire) == 1) atomic_store_explicit(&ball, 0, memory_order_release);
        else cpu_relax();
    }
    return NULL;
}
static void floor_pingpong(int n, uint64_t* lat, double* mean_ns) {
    pthread_t t;
    atomic_store(&pong_stop, 0);
    pthread_create(&t, NULL, pong, NULL);
    for (int i = 0; i < 10000; i++) { /* warm up */
        atomic_store_explicit(&ball, 1, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != 0) cpu_relax();
    }
    uint64_t start = now_ns();
    for (int i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        atomic_store_explicit(&ball, 1, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != 0) cpu_relax();
        lat[i] = now_ns() - t0;
    }
    *mean_ns = (double)(now_ns() - start) / n;
    atomic_store(&pong_stop, 1);
    pthread_join(t, NULL);
}

typedef struct {
    ffid_ctx* ctx;
    int cbor;   /* 0 native, 1 CBOR */
    int window; /* 0: synchronous; else calls in flight */
    int n;
    uint64_t* lat;
    int wrong;
} lane_arg;

/* The sync lane's completion record: one cache line, written once by the callback, as a
 * latency-sensitive host would keep it. */
typedef struct {
    _Alignas(64) atomic_int done;
    int ret;
    size_t len;
    char first; /* the answer's first byte (a bool answer is one byte in both modes) */
} completion;
static void completion_cb(int ret, const char* msg, size_t len, void* ud) {
    completion* c = (completion*)ud;
    c->ret = ret;
    c->len = len;
    c->first = len ? msg[0] : 0;
    atomic_store_explicit(&c->done, 1, memory_order_release);
}

/* One completion slot of the async lane. */
typedef struct {
    atomic_int* outstanding;
    atomic_int* wrong;
    int8_t expect;
} async_slot;
static void async_cb(int ret, const char* msg, size_t len, void* ud) {
    async_slot* s = (async_slot*)ud;
    if (ret != FFID_RET_OK || len != 1 || msg[0] != s->expect) atomic_fetch_add(s->wrong, 1);
    atomic_fetch_sub_explicit(s->outstanding, 1, memory_order_release);
}

static void* lane(void* arg) {
    lane_arg* l = (lane_arg*)arg;
    cbor_w r = {0};
    if (l->window == 0) {
        completion c;
        for (int i = 0; i < l->n; i++) {
            int64_t a = i, b = i >> 1;
            double x = (double)(i & 7);
            int want = predicate(a, b, x);
            if (l->cbor) { /* request encoded outside the timed region */
                cbor_reset(&r);
                cbor_map(&r, 3);
                cbor_text(&r, "a"); cbor_int(&r, a);
                cbor_text(&r, "b"); cbor_int(&r, b);
                cbor_text(&r, "x"); cbor_f64(&r, x);
            }
            atomic_store_explicit(&c.done, 0, memory_order_relaxed);
            uint64_t t0 = now_ns();
            int accepted;
            if (l->cbor) {
                accepted = echo_scalar_check_cbor(l->ctx, completion_cb, &c, r.buf, r.len);
            } else {
                EchoScalarCheckArgs args = {a, b, x};
                accepted = echo_scalar_check(l->ctx, completion_cb, &c, &args);
            }
            while (accepted == FFID_RET_OK && !atomic_load_explicit(&c.done, memory_order_acquire)) cpu_relax();
            l->lat[i] = now_ns() - t0;
            int got = l->cbor ? cbor_read_bool(&c.first, c.len) : (c.len == 1 ? c.first : -1);
            if (accepted != FFID_RET_OK || c.ret != FFID_RET_OK || got != want) l->wrong++;
        }
    } else {
        atomic_int outstanding = 0, wrong = 0;
        async_slot* slots = (async_slot*)calloc((size_t)l->window, sizeof *slots);
        for (int i = 0; i < l->n; i++) {
            while (atomic_load_explicit(&outstanding, memory_order_acquire) >= l->window) cpu_relax();
            async_slot* s = &slots[i % l->window];
            /* slot reuse is safe: at most `window` are outstanding and completions are FIFO */
            s->outstanding = &outstanding;
            s->wrong = &wrong;
            EchoScalarCheckArgs args = {i, 1, 0.0};
            s->expect = (int8_t)predicate(i, 1, 0.0);
            atomic_fetch_add_explicit(&outstanding, 1, memory_order_relaxed);
            if (echo_scalar_check(l->ctx, async_cb, s, &args) != FFID_RET_OK) {
                atomic_fetch_sub(&outstanding, 1);
                l->wrong++;
            }
        }
        while (atomic_load_explicit(&outstanding, memory_order_acquire) > 0) cpu_relax();
        l->wrong += atomic_load(&wrong);
        free(slots);
    }
    cbor_free(&r);
    return NULL;
}

static void run_lane(ffid_ctx* ctx, const char* name, int cbor, int window, int threads, int n, double floor_p50) {
    lane_arg args[16];
    pthread_t t[16];
    uint64_t* all = (uint64_t*)malloc(sizeof(uint64_t) * (size_t)n * (size_t)threads);
    uint64_t start = now_ns();
    for (int i = 0; i < threads; i++) {
        args[i] = (lane_arg){ctx, cbor, window, n, all + (size_t)i * (size_t)n, 0};
        pthread_create(&t[i], NULL, lane, &args[i]);
    }
    int wrong = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        wrong += args[i].wrong;
    }
    double secs = (double)(now_ns() - start) / 1e9;
    double rate = (double)n * threads / secs;
    if (wrong) {
        fprintf(stderr, "WRONG: %d bad answers in lane %s\n", wrong, name);
        atomic_fetch_add(&failures, wrong);
    }
    if (window == 0) {
        size_t total = (size_t)n * (size_t)threads;
        qsort(all, total, sizeof *all, cmp_u64);
        double p50 = (double)pct(all, total, 0.50), p99 = (double)pct(all, total, 0.99);
        printf("%-22s %7d %12.0f %10.2f %10.2f %9.2fx\n", name, threads, rate, p50 / 1000, p99 / 1000, p50 / floor_p50);
        printf("csv,%s,%d,%.0f,%.0f,%.0f,%.3f\n", name, threads, rate, p50, p99, p50 / floor_p50);
    } else {
        printf("%-22s %7d %12.0f %10s %10s %10s\n", name, threads, rate, "-", "-", "-");
        printf("csv,%s,%d,%.0f,,,\n", name, threads, rate);
    }
    fflush(stdout);
    free(all);
}

static int env_int(const char* name, int dflt) {
    const char* v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : dflt;
}

int main(void) {
    int n = env_int("ECHO_HOST_CALLS", 200000);
    int max_threads = env_int("ECHO_HOST_THREADS", 2);
    if (max_threads > 16) max_threads = 16;

    /* The floor first, before any worker thread exists. */
    uint64_t* lat = (uint64_t*)malloc(sizeof(uint64_t) * (size_t)n);
    double floor_mean;
    floor_pingpong(n, lat, &floor_mean);
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    double floor_p50 = (double)pct(lat, (size_t)n, 0.5);
    double floor_p99 = (double)pct(lat, (size_t)n, 0.99);
    free(lat);

    waiter w;
    waiter_reset(&w);
    EchoConfig cfg = {"host"};
    ffid_options opts;
    ffid_options_init(&opts);
    opts.ring_capacity = (uint32_t)env_int("ECHO_HOST_RING", (int)opts.ring_capacity);
    if (getenv("ECHO_HOST_RING_KIND")) opts.ring = (uint32_t)atoi(getenv("ECHO_HOST_RING_KIND"));
    if (getenv("ECHO_HOST_SPIN_NS")) opts.spin_ns = (uint32_t)atoi(getenv("ECHO_HOST_SPIN_NS"));
    ffid_ctx* ctx = echo_create_with_options(waiter_cb, &w, &cfg, &opts);
    if (!ctx || waiter_wait(&w, TIMEOUT_MS) != 0 || w.ret != FFID_RET_OK) {
        fprintf(stderr, "echo_create failed\n");
        return 1;
    }

    printf("every method, both modes, 4 threads (echo_panic makes its handler panic on purpose, 8 times:\n"
           "each is answered FFID_RET_ERR, and the runtime keeps them off stderr)\n");
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, every_method, ctx);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("every method, both modes, 4 threads: %s\n\n", atomic_load(&failures) ? "WRONG ANSWERS" : "all answers right");

    printf("%-22s %7s %12s %10s %10s %10s\n", "lane", "threads", "calls/s", "p50 us", "p99 us", "p50/floor");
    printf("%-22s %7d %12.0f %10.2f %10.2f %9.2fx   (mean %.0f ns)\n", "floor (atomic ping-pong)", 1, 1e9 / floor_mean,
           floor_p50 / 1000, floor_p99 / 1000, 1.0, floor_mean);
    printf("csv,floor,1,%.0f,%.0f,%.0f,1.000\n", 1e9 / floor_mean, floor_p50, floor_p99);
    for (int threads = 1; threads <= max_threads; threads *= 2) {
        run_lane(ctx, "sync native scalar", 0, 0, threads, n, floor_p50);
        run_lane(ctx, "sync cbor scalar", 1, 0, threads, n, floor_p50);
        run_lane(ctx, "async native (64)", 0, 64, threads, n, floor_p50);
    }

    if (echo_destroy(ctx) != FFID_RET_OK) {
        fprintf(stderr, "echo_destroy failed\n");
        return 1;
    }
    int bad = atomic_load(&failures);
    printf("\n%s\n", bad ? "FAILED: wrong or missing answers" : "OK: every answer verified");
    return bad ? 1 : 0;
}
