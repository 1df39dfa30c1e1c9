// check.hpp - the C++ host tests' runner: each TEST runs in order; a failed CHECK
// prints its location and marks the test failed; main prints "N passed, N failed" and
// exits non-zero on any failure.
#ifndef CHECK_HPP
#define CHECK_HPP

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

namespace check {
inline bool failed_now = false;

struct Case {
    const char* name;
    void (*fn)();
};

template <size_t N>
int run(const Case (&cases)[N]) {
    int passed = 0, failed = 0;
    for (const Case& c : cases) {
        failed_now = false;
        c.fn();
        std::printf("%s %s\n", failed_now ? "FAIL" : "ok  ", c.name);
        std::fflush(stdout);
        (failed_now ? failed : passed)++;
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed != 0 ? 1 : 0;
}

// Waits up to 10 s for pred(); true when it held.
template <class Pred>
bool eventually(Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
}

// A callable that counts its live copies (every move leaves one more object to destroy)
// and its calls: the tests check that a binding frees the callable it was given exactly
// once, and when.
struct Counts {
    std::atomic<int> live{0};
    std::atomic<int> calls{0};
    std::atomic<int> pings{0};
};

template <class Arg>
struct Tracked {
    Counts* counts;
    explicit Tracked(Counts* c) : counts(c) { counts->live++; }
    Tracked(const Tracked& o) : counts(o.counts) { counts->live++; }
    Tracked(Tracked&& o) noexcept : counts(o.counts) { counts->live++; }
    Tracked& operator=(const Tracked&) = delete;
    ~Tracked() { counts->live--; }
    void operator()(Arg) const { counts->calls++; }
};
} // namespace check

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::fprintf(stderr, "  CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            check::failed_now = true;                                                 \
        }                                                                             \
    } while (0)

#define TEST(f) {#f, f}

#endif
