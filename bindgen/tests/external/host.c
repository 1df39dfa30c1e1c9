/* A C host of the greeter library, compiled with -I <bindgen's output folder> alone. */
#define _POSIX_C_SOURCE 199309L
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "greeter.h"

typedef struct {
    atomic_int done;
    int ret;
    char text[64];
    uint64_t ordinal;
} answer;

static void on_answer(int ret, const char* msg, size_t len, void* user_data) {
    answer* a = (answer*)user_data;
    a->ret = ret;
    if (ret == FFID_RET_OK && len == sizeof(GreeterGreeting)) {
        const GreeterGreeting* g = (const GreeterGreeting*)msg; /* valid during the call */
        snprintf(a->text, sizeof a->text, "%s", g->text);
        a->ordinal = g->ordinal;
    } else {
        snprintf(a->text, sizeof a->text, "%.*s", (int)len, msg);
    }
    atomic_store(&a->done, 1);
}

static int wait_for(answer* a) {
    for (long i = 0; i < 10000000 && !atomic_load(&a->done); i++) {
        struct timespec ts = {0, 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&a->done);
}

#define EXPECT(cond)                                                  \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "greeter host: failed: %s\n", #cond);    \
            return 1;                                                 \
        }                                                             \
    } while (0)

int main(void) {
    EXPECT(GREETER_MAX_NAME == 16u);
    EXPECT(strcmp(GREETER_DEFAULT_GREETING, "Hello") == 0);
    EXPECT(greeter_interface_hash() == GREETER_INTERFACE_HASH);

    answer a = {0};
    EXPECT(greeter_version(on_answer, &a) == FFID_RET_OK);
    EXPECT(atomic_load(&a.done) && a.ret == FFID_RET_OK && strcmp(a.text, "0.3.0") == 0);

    GreeterConfig cfg = {GREETER_DEFAULT_GREETING};
    answer created = {0};
    ffid_ctx* ctx = greeter_create(on_answer, &created, &cfg);
    EXPECT(ctx != NULL && wait_for(&created) && created.ret == FFID_RET_OK);

    GreeterGreetArgs args = {"Ada", GREETER_VOLUME_NORMAL};
    answer g = {0};
    EXPECT(greeter_greet(ctx, on_answer, &g, &args) == FFID_RET_OK);
    EXPECT(wait_for(&g) && g.ret == FFID_RET_OK && strcmp(g.text, "Hello, Ada!") == 0);
    EXPECT(g.ordinal == 0);

    GreeterGreetArgs loud = {"Bob", GREETER_VOLUME_LOUD};
    answer l = {0};
    EXPECT(greeter_greet(ctx, on_answer, &l, &loud) == FFID_RET_OK);
    EXPECT(wait_for(&l) && strcmp(l.text, "HELLO, BOB!") == 0 && l.ordinal == 1);

    GreeterGreetArgs empty = {"", GREETER_VOLUME_NORMAL};
    answer e = {0};
    EXPECT(greeter_greet(ctx, on_answer, &e, &empty) == FFID_RET_OK);
    EXPECT(wait_for(&e) && e.ret == FFID_RET_ERR && strcmp(e.text, "a name is 1 to 16 bytes") == 0);
    EXPECT(greeter_destroy(ctx) == FFID_RET_OK);

    /* A header of another build of the library is refused at create, with the reason. */
    answer never = {0};
    EXPECT(greeter_create_checked(GREETER_INTERFACE_HASH + 1, on_answer, &never, &cfg, NULL) == NULL);
    EXPECT(strstr(ffid_last_error(), "interface mismatch") != NULL);
    printf("greeter host: ok\n");
    return 0;
}
