/*
 * echo_client.h - small helpers shared by the C host demo and the C tests:
 * a minimal CBOR writer/reader (just what echo's requests and answers use) and a
 * "waiter" that turns an asynchronous call into a synchronous one.
 * Header-only, C11 + POSIX (define _GNU_SOURCE or _POSIX_C_SOURCE >= 199309L first).
 */
#ifndef ECHO_CLIENT_H
#define ECHO_CLIENT_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sched.h>

#include "echo.h"

/* ---- CBOR writer ---------------------------------------------------------------- */

typedef struct {
    uint8_t* buf;
    size_t len, cap;
} cbor_w;

static inline void cbor_reserve(cbor_w* w, size_t more) {
    if (w->len + more <= w->cap) return;
    size_t cap = w->cap ? w->cap * 2 : 64;
    while (cap < w->len + more) cap *= 2;
    w->buf = (uint8_t*)realloc(w->buf, cap);
    if (!w->buf) abort();
    w->cap = cap;
}
static inline void cbor_put(cbor_w* w, const void* p, size_t n) {
    cbor_reserve(w, n);
    if (n) memcpy(w->buf + w->len, p, n);
    w->len += n;
}
static inline void cbor_head(cbor_w* w, uint8_t major, uint64_t v) {
    uint8_t h[9];
    size_t n;
    if (v < 24) { h[0] = (uint8_t)(major << 5 | v); n = 1; }
    else if (v <= 0xff) { h[0] = (uint8_t)(major << 5 | 24); h[1] = (uint8_t)v; n = 2; }
    else if (v <= 0xffff) { h[0] = (uint8_t)(major << 5 | 25); h[1] = (uint8_t)(v >> 8); h[2] = (uint8_t)v; n = 3; }
    else if (v <= 0xffffffffu) {
        h[0] = (uint8_t)(major << 5 | 26);
        for (int i = 0; i < 4; i++) h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
        n = 5;
    } else {
        h[0] = (uint8_t)(major << 5 | 27);
        for (int i = 0; i < 8; i++) h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
        n = 9;
    }
    cbor_put(w, h, n);
}
static inline void cbor_map(cbor_w* w, uint64_t n) { cbor_head(w, 5, n); }
static inline void cbor_text(cbor_w* w, const char* s) { size_t n = strlen(s); cbor_head(w, 3, n); cbor_put(w, s, n); }
static inline void cbor_bytes(cbor_w* w, const uint8_t* p, size_t n) { cbor_head(w, 2, n); cbor_put(w, p, n); }
static inline void cbor_uint(cbor_w* w, uint64_t v) { cbor_head(w, 0, v); }
static inline void cbor_int(cbor_w* w, int64_t v) {
    if (v >= 0) cbor_head(w, 0, (uint64_t)v);
    else cbor_head(w, 1, (uint64_t)(-(v + 1)));
}
static inline void cbor_f64(cbor_w* w, double d) {
    uint64_t bits;
    memcpy(&bits, &d, 8);
    uint8_t h[9] = {0xfb};
    for (int i = 0; i < 8; i++) h[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
    cbor_put(w, h, 9);
}
static inline void cbor_reset(cbor_w* w) { w->len = 0; }
static inline void cbor_free(cbor_w* w) { free(w->buf); w->buf = NULL; w->len = w->cap = 0; }

/* ---- CBOR reader (answers) ------------------------------------------------------- */

/* Reads a head of major type `major`; returns the argument and advances *p, or -1. */
static inline int cbor_read_head(const uint8_t** p, const uint8_t* end, uint8_t major, uint64_t* out) {
    if (*p >= end || (**p >> 5) != major) return -1;
    uint8_t info = **p & 31;
    (*p)++;
    size_t n = info < 24 ? 0 : info == 24 ? 1 : info == 25 ? 2 : info == 26 ? 4 : info == 27 ? 8 : 99;
    if (n == 99 || (size_t)(end - *p) < n) return -1;
    uint64_t v = info < 24 ? info : 0;
    for (size_t i = 0; i < n; i++) v = v << 8 | (*p)[i];
    *p += n;
    *out = v;
    return 0;
}
/* A text answer: points s and n at the bytes (not NUL-terminated). */
static inline int cbor_read_text(const char* msg, size_t len, const char** s, size_t* n) {
    const uint8_t* p = (const uint8_t*)msg;
    const uint8_t* end = p + len;
    uint64_t v;
    if (cbor_read_head(&p, end, 3, &v) != 0 || (uint64_t)(end - p) != v) return -1;
    *s = (const char*)p;
    *n = (size_t)v;
    return 0;
}
static inline int cbor_read_uint(const char* msg, size_t len, uint64_t* out) {
    const uint8_t* p = (const uint8_t*)msg;
    const uint8_t* end = p + len;
    if (cbor_read_head(&p, end, 0, out) != 0 || p != end) return -1;
    return 0;
}
/* 1 for true, 0 for false, -1 for anything else. */
static inline int cbor_read_bool(const char* msg, size_t len) {
    if (len != 1) return -1;
    uint8_t b = (uint8_t)msg[0];
    return b == 0xf5 ? 1 : b == 0xf4 ? 0 : -1;
}

/* ---- waiter: a synchronous call ---------------------------------------------------- */

#define WAITER_INLINE 256

typedef struct {
    atomic_int done;       /* 0 until the terminal callback */
    atomic_int terminals;  /* terminal callbacks seen (must end at exactly 1) */
    int ret;
    size_t len;
    char msg[WAITER_INLINE + 1]; /* first bytes of the answer, NUL-terminated */
    int nul_ok;                  /* the runtime's msg[len] was 0 and msg was non-NULL */
} waiter;

static inline void waiter_reset(waiter* w) {
    atomic_store(&w->done, 0);
    atomic_store(&w->terminals, 0);
    w->ret = -1;
    w->len = 0;
    w->msg[0] = 0;
    w->nul_ok = 0;
}

static inline void waiter_cb(int ret, const char* msg, size_t len, void* user_data) {
    waiter* w = (waiter*)user_data;
    if (ret == FFID_RET_STALE_WARN) return; /* non-terminal */
    w->ret = ret;
    w->len = len;
    w->nul_ok = msg != NULL && msg[len] == 0;
    size_t n = len < WAITER_INLINE ? len : WAITER_INLINE;
    if (msg) memcpy(w->msg, msg, n);
    w->msg[n] = 0;
    atomic_fetch_add(&w->terminals, 1);
    atomic_store_explicit(&w->done, 1, memory_order_release);
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Waits for the terminal callback: spins ~50 us, then yields. Returns 0, or -1 after
 * timeout_ms. */
static inline int waiter_wait(waiter* w, uint64_t timeout_ms) {
    for (int i = 0; i < 2000; i++) {
        if (atomic_load_explicit(&w->done, memory_order_acquire)) return 0;
        cpu_relax();
    }
    uint64_t deadline = now_ns() + timeout_ms * 1000000ull;
    while (!atomic_load_explicit(&w->done, memory_order_acquire)) {
        if (now_ns() > deadline) return -1;
        sched_yield();
    }
    return 0;
}

/* Creates an echo context with options opts (NULL: the defaults) whose create callback
 * reports into *w, and waits up to timeout_ms for that callback. Returns the context, or
 * NULL when create refused it (no callback). Afterwards w->done says whether the callback
 * came and w->ret is its status. *w must stay valid until the callback has run: a caller
 * whose wait timed out must not let *w go. */
static inline ffid_ctx* echo_create_waited(waiter* w, const char* prefix, const ffid_options* opts,
                                           uint64_t timeout_ms) {
    waiter_reset(w);
    EchoConfig cfg = {prefix};
    ffid_ctx* ctx = echo_create_with_options(waiter_cb, w, &cfg, opts);
    if (ctx) waiter_wait(w, timeout_ms);
    return ctx;
}

#endif /* ECHO_CLIENT_H */
