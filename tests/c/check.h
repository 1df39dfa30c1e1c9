/* check.h - a minimal test runner for the C host tests. Each TEST runs in order; a
 * failed CHECK prints its location and marks the test failed. main prints
 * "N passed, N failed" and exits non-zero on any failure. */
#ifndef CHECK_H
#define CHECK_H
#include <stdio.h>

static int check_failed_now;
#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "  CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            check_failed_now = 1;                                                     \
        }                                                                             \
    } while (0)

typedef void (*test_fn)(void);
typedef struct { const char* name; test_fn fn; } test_case;

static int run_tests(const test_case* tests, size_t n) {
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        check_failed_now = 0;
        tests[i].fn();
        printf("%s %s\n", check_failed_now ? "FAIL" : "ok  ", tests[i].name);
        fflush(stdout);
        if (check_failed_now) failed++; else passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
#define TEST_ENTRY(f) { #f, f }
#endif
