/* hostile.c - what careless and hostile hosts do, and what they must get: destroy and
 * blocking calls from inside every kind of callback, completion mode left undrained,
 * fork, allocation failure, thread exhaustion, bad options, and a quiet stderr.
 * Each test runs in a child process of its own with an alarm, so that a hang or a crash
 * is a failed test and not a stuck suite (and so that limits and fork stay contained). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "echo_client.h"
#include "kv.h"

#define TIMEOUT_MS 10000
#define CHILD_SECONDS 60

static ffid_options options(void) {
    ffid_options o;
    ffid_options_init(&o);
    return o;
}

static ffid_ctx* make(const ffid_options* o) {
    /* Always waited for: `w` is this frame's (completion-mode tests create their own). */
    waiter w;
    ffid_ctx* ctx = echo_create_waited(&w, "h", o, TIMEOUT_MS);
    CHECK(ctx != NULL);
    if (ctx) CHECK(atomic_load(&w.done) && w.ret == FFID_RET_OK);
    return ctx;
}

/* ---- a callback that acts from inside: destroy, or one more call --------------------- */

typedef struct {
    ffid_ctx* ctx;
    int act;              /* 1: destroy ctx; 2: call echo_count on ctx */
    atomic_int done;      /* the terminal callback ran */
    atomic_int acted_ret; /* what the action returned */
    waiter inner;         /* the inner call's answer, if it was accepted */
} actor;

static void actor_init(actor* a, ffid_ctx* ctx, int act) {
    a->ctx = ctx;
    a->act = act;
    atomic_store(&a->done, 0);
    atomic_store(&a->acted_ret, -1);
    waiter_reset(&a->inner);
}

static void actor_cb(int ret, const char* msg, size_t len, void* ud) {
    (void)msg;
    (void)len;
    actor* a = (actor*)ud;
    if (ret == FFID_RET_STALE_WARN) return;
    int r = a->act == 1 ? echo_destroy(a->ctx) : echo_count(a->ctx, waiter_cb, &a->inner);
    atomic_store(&a->acted_ret, r);
    atomic_store(&a->done, 1);
}

static int wait_flag(atomic_int* f) {
    uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    while (!atomic_load(f)) {
        if (now_ns() > deadline) return -1;
        sleep_ms(1);
    }
    return 0;
}

/* Keeps the worker busy for `ms` and fills the ring behind it (capacity `cap`). */
static void fill_behind_sleep(ffid_ctx* ctx, uint32_t ms, int cap, waiter* sleeper, waiter* fillers) {
    EchoSleepArgs s = {ms};
    waiter_reset(sleeper);
    CHECK(echo_sleep(ctx, waiter_cb, sleeper, &s) == FFID_RET_OK);
    sleep_ms(20); /* the worker has taken the sleep off the ring */
    for (int i = 0; i < cap; i++) {
        waiter_reset(&fillers[i]);
        CHECK(echo_count(ctx, waiter_cb, &fillers[i]) == FFID_RET_OK);
    }
}

/* 1. destroy from a deferred answer's callback (a library thread) returns BUSY. */
static void test_destroy_inside_deferred_callback_is_refused(void) {
    ffid_options o = options();
    ffid_ctx* ctx = make(&o);
    actor a;
    actor_init(&a, ctx, 1);
    EchoEchoLaterArgs later = {"x", 5};
    CHECK(echo_echo_later(ctx, actor_cb, &a, &later) == FFID_RET_OK);
    CHECK(wait_flag(&a.done) == 0);
    CHECK(atomic_load(&a.acted_ret) == FFID_RET_BUSY);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

/* 2a. a call from a deferred answer's callback on a full ring under Block: BUSY, not a wait. */
static void test_call_inside_deferred_callback_never_blocks(void) {
    ffid_options o = options();
    o.ring_capacity = 4;
    ffid_ctx* ctx = make(&o);
    actor a;
    actor_init(&a, ctx, 2);
    EchoEchoLaterArgs later = {"x", 300};
    CHECK(echo_echo_later(ctx, actor_cb, &a, &later) == FFID_RET_OK);
    waiter sleeper, fillers[4];
    fill_behind_sleep(ctx, 1500, 4, &sleeper, fillers); /* full while the answer comes */
    CHECK(wait_flag(&a.done) == 0);
    CHECK(atomic_load(&a.acted_ret) == FFID_RET_BUSY);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    for (int i = 0; i < 4; i++) CHECK(atomic_load(&fillers[i].terminals) == 1);
}

/* 2b. the same from a drained completion callback (the create callback, drained once
 * the ring is full). */
static void test_call_inside_drained_callback_never_blocks(void) {
    ffid_options o = options();
    o.ring_capacity = 4;
    o.completion = FFID_COMPLETION_QUEUE;
    actor a;
    EchoConfig cfg = {"h"};
    ffid_ctx* ctx = echo_create_with_options(actor_cb, &a, &cfg, &o);
    CHECK(ctx != NULL);
    actor_init(&a, ctx, 2);
    waiter sleeper, fillers[4];
    fill_behind_sleep(ctx, 1500, 4, &sleeper, fillers); /* full while the drain runs */
    uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    while (!atomic_load(&a.done) && now_ns() < deadline) echo_drain(ctx, 1);
    CHECK(atomic_load(&a.acted_ret) == FFID_RET_BUSY);
    CHECK(echo_destroy(ctx) == FFID_RET_OK); /* runs the rest on this thread */
    for (int i = 0; i < 4; i++) CHECK(atomic_load(&fillers[i].terminals) == 1);
    CHECK(atomic_load(&sleeper.terminals) == 1);
}

/* ---- completion mode, not drained -------------------------------------------------- */

static atomic_int answered;
static void count_cb(int ret, const char* msg, size_t len, void* ud) {
    (void)msg;
    (void)len;
    (void)ud;
    if (ret != FFID_RET_STALE_WARN) atomic_fetch_add(&answered, 1);
}

/* With a 4-slot ring and nothing drained, what goes in before the worker waits for a
 * drain: 1023 answers behind the create callback in the completion queue (1024), the
 * one the worker holds, and 4 in the ring. */
#define UNDRAINED_MAX 1028

/* Submits up to `n` calls without draining. A BUSY is retried until at least `min`
 * were accepted (a descheduled worker makes the ring look stuck for a while); after
 * that the first BUSY that a 200 ms retry does not clear ends it. Returns how many
 * were accepted. */
static int submit_undrained(ffid_ctx* ctx, int n, int min) {
    int accepted = 0;
    uint64_t busy_since = 0, deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    while (accepted < n && now_ns() < deadline) {
        int r = echo_count(ctx, count_cb, NULL);
        if (r == FFID_RET_OK) {
            accepted++;
            busy_since = 0;
            continue;
        }
        CHECK(r == FFID_RET_BUSY);
        if (!busy_since) busy_since = now_ns();
        if (accepted >= min && now_ns() - busy_since > 200000000ull) break;
        sleep_ms(1);
    }
    return accepted;
}

/* 3a. destroy of a context whose host stopped draining with the queue full returns,
 * and every accepted call is answered once. */
static void test_destroy_with_undrained_full_completion_queue(void) {
    ffid_options o = options();
    o.ring_capacity = 4;
    o.backpressure = FFID_BACKPRESSURE_REJECT;
    o.completion = FFID_COMPLETION_QUEUE;
    atomic_store(&answered, 0);
    ffid_ctx* ctx = echo_create_with_options(count_cb, NULL, &(EchoConfig){"h"}, &o);
    CHECK(ctx != NULL);
    int accepted = submit_undrained(ctx, 2000, UNDRAINED_MAX);
    CHECK(accepted == UNDRAINED_MAX); /* both queues full, the worker waiting */
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&answered) == accepted + 1); /* + the create callback */
}

/* 3b. a drained callback that calls in while the completion queue and the ring are
 * both full returns at once (OK if a slot freed meanwhile, else BUSY), while another
 * host thread keeps submitting under Block: the drainer is never stuck behind the
 * worker, which waits for that very drain. */
typedef struct {
    ffid_ctx* ctx;
    atomic_int accepted;
    atomic_int stop;
} burster;

static void* burst(void* arg) {
    burster* b = (burster*)arg;
    while (!atomic_load(&b->stop)) {
        if (echo_count(b->ctx, count_cb, NULL) == FFID_RET_OK) atomic_fetch_add(&b->accepted, 1);
        else sleep_ms(1);
    }
    return NULL;
}

static void test_drained_callback_calls_with_both_queues_full(void) {
    ffid_options o = options();
    o.ring_capacity = 4;
    o.completion = FFID_COMPLETION_QUEUE;
    atomic_store(&answered, 0);
    actor a;
    ffid_ctx* ctx = echo_create_with_options(actor_cb, &a, &(EchoConfig){"h"}, &o);
    CHECK(ctx != NULL);
    actor_init(&a, ctx, 2); /* before the first drain: the create callback waits for it */
    burster b = {ctx, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, burst, &b);
    uint64_t deadline = now_ns() + TIMEOUT_MS * 1000000ull;
    while (atomic_load(&b.accepted) < UNDRAINED_MAX && now_ns() < deadline) sleep_ms(1);
    CHECK(atomic_load(&b.accepted) == UNDRAINED_MAX);
    CHECK(echo_drain(ctx, 1) == 1); /* the create callback, which calls in */
    CHECK(atomic_load(&a.done));
    int inner = atomic_load(&a.acted_ret);
    CHECK(inner == FFID_RET_BUSY || inner == FFID_RET_OK);
    atomic_store(&b.stop, 1);
    pthread_join(t, NULL);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&answered) == atomic_load(&b.accepted));
    CHECK(atomic_load(&a.inner.terminals) == (inner == FFID_RET_OK ? 1 : 0));
}

/* 3c. a single-threaded event loop under Block that bursts before it drains gets BUSY
 * instead of blocking itself; once drained, its calls go in again. */
static void test_event_loop_burst_under_block_never_blocks_itself(void) {
    ffid_options o = options();
    o.ring_capacity = 4;
    o.completion = FFID_COMPLETION_QUEUE;
    atomic_store(&answered, 0);
    ffid_ctx* ctx = echo_create_with_options(count_cb, NULL, &(EchoConfig){"h"}, &o);
    CHECK(ctx != NULL);
    int accepted = submit_undrained(ctx, 20000, UNDRAINED_MAX);
    CHECK(accepted == UNDRAINED_MAX);
    CHECK(echo_count(ctx, count_cb, NULL) == FFID_RET_BUSY); /* still full: still refused */
    int fd = echo_completion_fd(ctx);
    while (atomic_load(&answered) < accepted + 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, TIMEOUT_MS) != 1) break;
        echo_drain(ctx, 64);
    }
    CHECK(atomic_load(&answered) == accepted + 1); /* + the create callback */
    CHECK(echo_count(ctx, count_cb, NULL) == FFID_RET_OK);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&answered) == accepted + 2);
}

/* ---- answers, options, limits ------------------------------------------------------ */

/* 4. create_cbor's "no value" is CBOR null. */
static void test_create_cbor_answers_cbor_null(void) {
    cbor_w req = {0};
    cbor_map(&req, 1);
    cbor_text(&req, "prefix");
    cbor_text(&req, "c");
    waiter w;
    waiter_reset(&w);
    ffid_ctx* ctx = echo_create_cbor(waiter_cb, &w, req.buf, req.len);
    cbor_free(&req);
    CHECK(ctx != NULL);
    CHECK(waiter_wait(&w, TIMEOUT_MS) == 0);
    CHECK(w.ret == FFID_RET_OK && w.len == 1 && (uint8_t)w.msg[0] == 0xf6 && w.nul_ok);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

/* 5. fork: the child refuses inherited contexts (no callback, no abort) and makes its
 * own; the parent's context goes on. */
static void test_fork_child_refuses_inherited_contexts(void) {
    ffid_options o = options();
    ffid_ctx* ctx = make(&o);
    waiter v;
    waiter_reset(&v); /* the parent's static context exists before the fork */
    CHECK(kv_version(waiter_cb, &v) == FFID_RET_OK && waiter_wait(&v, TIMEOUT_MS) == 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = 1;
        waiter w;
        waiter_reset(&w);
        ok &= echo_count(ctx, waiter_cb, &w) == FFID_RET_CLOSED;
        ok &= echo_destroy(ctx) == FFID_RET_CLOSED;
        sleep_ms(20);
        ok &= atomic_load(&w.terminals) == 0;
        ffid_ctx* mine = make(&o);
        waiter_reset(&w);
        ok &= mine && echo_count(mine, waiter_cb, &w) == FFID_RET_OK && waiter_wait(&w, TIMEOUT_MS) == 0 &&
              w.ret == FFID_RET_OK;
        ok &= mine && echo_destroy(mine) == FFID_RET_OK;
        /* kv's static methods make their own context in the child too */
        waiter_reset(&w);
        ok &= kv_version(waiter_cb, &w) == FFID_RET_OK && waiter_wait(&w, TIMEOUT_MS) == 0 &&
              w.ret == FFID_RET_OK;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    waiter w;
    waiter_reset(&w);
    CHECK(echo_count(ctx, waiter_cb, &w) == FFID_RET_OK && waiter_wait(&w, TIMEOUT_MS) == 0);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
}

/* 6. huge rings and a small address space: create returns NULL or works, never aborts. */
static void test_allocation_failure_refuses_create(void) {
    ffid_options o = options();
    waiter w;
    uint32_t huge[] = {FFID_MAX_RING_CAPACITY + 1, 1u << 31, UINT32_MAX};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        o = options();
        o.ring_capacity = huge[i];
        CHECK(echo_create_with_options(waiter_cb, &w, &(EchoConfig){"h"}, &o) == NULL);
        o = options();
        o.event_ring_capacity = huge[i];
        CHECK(echo_create_with_options(waiter_cb, &w, &(EchoConfig){"h"}, &o) == NULL);
    }
    /* The largest ring accepted, under address-space limits from 128 MiB to 768 MiB. */
    for (rlim_t mib = 128; mib <= 768; mib += 128) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            struct rlimit lim = {mib << 20, mib << 20};
            setrlimit(RLIMIT_AS, &lim);
            ffid_options big = options();
            big.ring_capacity = FFID_MAX_RING_CAPACITY;
            for (int round = 0; round < 4; round++) {
                waiter_reset(&w);
                ffid_ctx* ctx = echo_create_with_options(waiter_cb, &w, &(EchoConfig){"h"}, &big);
                if (ctx) {
                    if (waiter_wait(&w, TIMEOUT_MS) != 0 || echo_destroy(ctx) != FFID_RET_OK) _exit(1);
                }
            }
            _exit(0);
        }
        int status = 0;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (!WIFEXITED(status)) fprintf(stderr, "    RLIMIT_AS %lu MiB: signal %d\n", (unsigned long)mib, WTERMSIG(status));
    }
}

/* Lowers the thread limit of a child: root drops to an unprivileged user first (the
 * limit does not bind root). Returns 0 when it holds. */
static int limit_threads(rlim_t soft) {
    /* Elsewhere the user's other processes count against the limit too. */
    if (geteuid() != 0 || setgid(65534) != 0 || setuid(65534) != 0) return -1;
    struct rlimit lim = {soft, RLIM_INFINITY};
    if (getrlimit(RLIMIT_NPROC, &lim) == 0) lim.rlim_cur = soft;
    return setrlimit(RLIMIT_NPROC, &lim);
}

static int raise_threads(void) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_NPROC, &lim) != 0) return -1;
    lim.rlim_cur = lim.rlim_max;
    return setrlimit(RLIMIT_NPROC, &lim);
}

static atomic_int hook_starts, hook_stops;
static void on_start(int role, const char* name, void* ud) {
    (void)role; (void)name; (void)ud;
    atomic_fetch_add(&hook_starts, 1);
}
static void on_stop(int role, const char* name, void* ud) {
    (void)role; (void)name; (void)ud;
    sleep_ms(100); /* a thread left running would still be here when create returns */
    atomic_fetch_add(&hook_stops, 1);
}

/* Runs `body` in a child under a thread limit of `soft`; returns the child's status. */
static int in_limited_child(rlim_t soft, int (*body)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(limit_threads(soft) != 0 ? 77 : body());
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

/* 7. a create that fails for want of a thread has stopped (and joined) every thread it
 * started, their stop hooks included, before it returns NULL. */
static int failed_create_body(void) {
    ffid_options o = options();
    o.thread_start = on_start;
    o.thread_stop = on_stop;
    o.stale_ping_ms = 1000; /* a monitor thread too: three threads, two of them helpers */
    waiter w;
    waiter_reset(&w);
    ffid_ctx* ctx = echo_create_with_options(waiter_cb, &w, &(EchoConfig){"h"}, &o);
    int starts = atomic_load(&hook_starts), stops = atomic_load(&hook_stops);
    sleep_ms(300); /* a thread left behind would start or stop meanwhile */
    int later_starts = atomic_load(&hook_starts), later_stops = atomic_load(&hook_stops);
    if (ctx != NULL) return 2;         /* the limit let every thread start */
    if (later_starts == 0) return 77;  /* the limit left room for none: nothing to test */
    if (starts != stops || later_starts != starts || later_stops != stops) return 1;
    return atomic_load(&w.terminals) == 0 ? 0 : 3;
}

static void test_failed_create_joins_its_threads(void) {
    int status = in_limited_child(2, failed_create_body); /* the main thread and one more */
    if (status == 77) {
        printf("    (skipped: cannot lower the thread limit here)\n");
        return;
    }
    CHECK(status == 0);
}

/* 8. the static methods' context recovers once threads can be had again. */
static int static_recovery_body(void) {
    waiter w;
    waiter_reset(&w);
    if (kv_version(waiter_cb, &w) == FFID_RET_OK) return 2; /* no thread should start */
    if (raise_threads() != 0) return 3;
    waiter_reset(&w);
    if (kv_version(waiter_cb, &w) != FFID_RET_OK || waiter_wait(&w, TIMEOUT_MS) != 0) return 1;
    return w.ret == FFID_RET_OK && w.len > 0 ? 0 : 1;
}

static void test_static_context_recovers_after_thread_exhaustion(void) {
    int status = in_limited_child(1, static_recovery_body);
    if (status == 77) {
        printf("    (skipped: cannot lower the thread limit here)\n");
        return;
    }
    CHECK(status == 0);
}

/* 9. a non-zero reserved field is refused. */
static void test_nonzero_reserved_is_refused(void) {
    ffid_options o = options();
    o.reserved = 1;
    waiter w;
    CHECK(echo_create_with_options(waiter_cb, &w, &(EchoConfig){"h"}, &o) == NULL);
}

/* 14. the runtime's threads start with the creating thread's signal mask. */
static atomic_int masked_threads, unmasked_threads;
static void check_mask(int role, const char* name, void* ud) {
    (void)role; (void)name; (void)ud;
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    atomic_fetch_add(sigismember(&now, SIGUSR1) ? &masked_threads : &unmasked_threads, 1);
}

static void test_runtime_threads_inherit_the_signal_mask(void) {
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &block, NULL) == 0);
    ffid_options o = options();
    o.thread_start = check_mask;
    o.stale_ping_ms = 1000; /* worker, event thread and monitor */
    ffid_ctx* ctx = make(&o);
    CHECK(echo_destroy(ctx) == FFID_RET_OK);
    CHECK(atomic_load(&masked_threads) == 3 && atomic_load(&unmasked_threads) == 0);
}

/* ---- panics stay off stderr ---------------------------------------------------------- */

static atomic_int panic_diags;
static char panic_text[512];
static void diag_cb(int code, const char* msg, size_t len, void* ud) {
    (void)ud;
    if (code != FFID_DIAG_PANIC) return;
    size_t n = len < sizeof panic_text - 1 ? len : sizeof panic_text - 1;
    memcpy(panic_text, msg, n);
    panic_text[n] = 0;
    atomic_fetch_add(&panic_diags, 1);
}

/* 13. a panicking handler writes nothing to stderr (also with RUST_BACKTRACE=1) and is
 * reported through the diagnostic callback, naming the method and the message. */
static void test_handler_panic_is_quiet_and_reported(void) {
    setenv("RUST_BACKTRACE", "1", 1);
    char path[] = "/tmp/ffid-stderr-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    ffid_options o = options();
    o.diagnostic = diag_cb;
    ffid_ctx* ctx = make(&o);
    waiter w;
    waiter_reset(&w);
    int r = echo_panic(ctx, waiter_cb, &w);
    int waited = waiter_wait(&w, TIMEOUT_MS);
    int destroyed = echo_destroy(ctx);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECK(r == FFID_RET_OK && waited == 0 && destroyed == FFID_RET_OK);
    CHECK(w.ret == FFID_RET_ERR && strstr(w.msg, "echo was asked to panic") != NULL);
    off_t written = lseek(fd, 0, SEEK_END);
    close(fd);
    CHECK(written == 0);
    CHECK(atomic_load(&panic_diags) == 1);
    CHECK(strstr(panic_text, "panic") != NULL && strstr(panic_text, "echo was asked to panic") != NULL);
    if (written != 0) fprintf(stderr, "    %ld bytes reached stderr\n", (long)written);
}

/* ---- runner: every test in a child of its own ------------------------------------- */

static void run_isolated(test_fn fn) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(CHILD_SECONDS);
        check_failed_now = 0;
        fn();
        fflush(stdout);
        _exit(check_failed_now ? 1 : 0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        check_failed_now = 1;
        return;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "  died of signal %d%s\n", WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (hung: the alarm fired)" : "");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) check_failed_now = 1;
}

#define ISOLATED(f)                                   \
    static void f##_isolated(void) { run_isolated(f); } \
    static const test_case f##_case = {#f, f##_isolated};

ISOLATED(test_destroy_inside_deferred_callback_is_refused)
ISOLATED(test_call_inside_deferred_callback_never_blocks)
ISOLATED(test_call_inside_drained_callback_never_blocks)
ISOLATED(test_destroy_with_undrained_full_completion_queue)
ISOLATED(test_drained_callback_calls_with_both_queues_full)
ISOLATED(test_event_loop_burst_under_block_never_blocks_itself)
ISOLATED(test_create_cbor_answers_cbor_null)
ISOLATED(test_fork_child_refuses_inherited_contexts)
ISOLATED(test_allocation_failure_refuses_create)
ISOLATED(test_failed_create_joins_its_threads)
ISOLATED(test_static_context_recovers_after_thread_exhaustion)
ISOLATED(test_nonzero_reserved_is_refused)
ISOLATED(test_handler_panic_is_quiet_and_reported)
ISOLATED(test_runtime_threads_inherit_the_signal_mask)

int main(void) {
    const test_case tests[] = {
        test_destroy_inside_deferred_callback_is_refused_case,
        test_call_inside_deferred_callback_never_blocks_case,
        test_call_inside_drained_callback_never_blocks_case,
        test_destroy_with_undrained_full_completion_queue_case,
        test_drained_callback_calls_with_both_queues_full_case,
        test_event_loop_burst_under_block_never_blocks_itself_case,
        test_create_cbor_answers_cbor_null_case,
        test_fork_child_refuses_inherited_contexts_case,
        test_allocation_failure_refuses_create_case,
        test_failed_create_joins_its_threads_case,
        test_static_context_recovers_after_thread_exhaustion_case,
        test_nonzero_reserved_is_refused_case,
        test_handler_panic_is_quiet_and_reported_case,
        test_runtime_threads_inherit_the_signal_mask_case,
    };
    return run_tests(tests, sizeof tests / sizeof tests[0]);
}
