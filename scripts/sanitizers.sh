#!/usr/bin/env bash
# Runs the test suite under a sanitizer, or the C hosts under valgrind.
#   scripts/sanitizers.sh asan       AddressSanitizer + LeakSanitizer (-Zbuild-std)
#   scripts/sanitizers.sh tsan       ThreadSanitizer (-Zbuild-std), then a short soak under it
#   scripts/sanitizers.sh valgrind   memcheck over the C host demo and the contract, kv, features, interface, sync, typed and reload suites
#   scripts/sanitizers.sh all
# Rust side: the runtime's unit tests, tests/runtime.rs, tests/macros.rs, tests/events.rs,
# tests/long_work.rs, tests/async_handlers.rs and, for ASan,
# the allocation-accounting test, with std itself instrumented (-Zbuild-std), so a report
# can only mean a real problem. TSan then runs the soak (tests/soak.rs, its #[ignore]d
# fault-injecting load) with the same flags and build, for FFID_TSAN_SOAK_SECS seconds
# (default 5; the soak's own watchdog still fails a run whose answers stop). The C hosts
# run against the same cdylibs under valgrind (gcc's sanitizer runtimes and rustc's are
# different builds and do not mix in one process, so the C programs use valgrind instead).
# Any report fails the run. No suppressions are used.
# Toolchain: the sanitizers build on the pinned nightly of scripts/nightly.sh
# ($FFID_NIGHTLY, with rust-src for -Zbuild-std; installed when missing, never updated);
# moving the date is a deliberate edit of that one file. valgrind needs no nightly.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')

source scripts/nightly.sh

sanitize() { # sanitize <address|thread> <test args...>
    local kind=$1
    shift
    ffid_nightly_install rust-src
    echo "== ${kind} sanitizer: $*"
    RUSTFLAGS="-Zsanitizer=${kind} ${RUSTFLAGS:-}" RUSTDOCFLAGS="-Zsanitizer=${kind}" \
        cargo +"$FFID_NIGHTLY" test -Zbuild-std --target "$target" --target-dir "target/san-${kind}" \
        -p ffi-dispatch "$@"
}

asan() {
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}" \
        sanitize address --lib --test runtime --test macros --test alloc --test events --test long_work --test async_handlers --test blocking --test poll
}

tsan() {
    # The loom-free protocols use fences, which TSan understands since LLVM 13.
    export TSAN_OPTIONS="halt_on_error=1:${TSAN_OPTIONS:-}"
    sanitize thread --lib --test runtime --test macros --test events --test long_work --test async_handlers --test blocking --test poll
    # The soak, bounded in time; same flags and target dir, so only its own binary builds.
    FFID_SOAK_SECS="${FFID_TSAN_SOAK_SECS:-5}" \
        sanitize thread --test soak -- --ignored --nocapture
}

valgrind_hosts() {
    command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
    echo "== valgrind over the C hosts"
    cargo build -q -p echo -p kv
    local lib="$PWD/target/debug" out="target/valgrind"
    mkdir -p "$out"
    local flags=(-std=c11 -O1 -g -Wall -Wextra -Werror -Iexamples/echo/include
        -Iexamples/kv/include -Iexamples/echo/c -Itests/c)
    cc "${flags[@]}" examples/echo/host.c -L"$lib" -lecho -Wl,-rpath,"$lib" -lpthread -o "$out/echo-host"
    cc "${flags[@]}" tests/c/contract.c -L"$lib" -lecho -Wl,-rpath,"$lib" -lpthread -o "$out/contract"
    cc "${flags[@]}" tests/c/kv.c -L"$lib" -lkv -lecho -Wl,-rpath,"$lib" -lpthread -o "$out/kv"
    cc "${flags[@]}" tests/c/features.c -L"$lib" -lecho -Wl,-rpath,"$lib" -lpthread -o "$out/features"
    cc "${flags[@]}" tests/c/interface.c -L"$lib" -lecho -Wl,-rpath,"$lib" -lpthread -o "$out/interface"
    cc "${flags[@]}" tests/c/sync.c -L"$lib" -lkv -lecho -Wl,-rpath,"$lib" -lpthread -o "$out/sync"
    cc "${flags[@]}" tests/c/typed.c -L"$lib" -lkv -lecho -Wl,-rpath,"$lib" -lpthread -o "$out/typed"
    cc "${flags[@]}" tests/c/poll.c -L"$lib" -lkv -lecho -Wl,-rpath,"$lib" -lpthread -o "$out/poll"
    cc "${flags[@]}" tests/c/reload.c -ldl -lpthread -o "$out/reload"
    # Leaks that count: definite and indirect. "Possibly lost" is reported but allowed for
    # the threads of the static-method context (kv_version: worker, event thread,
    # monitor), which live until the process exits by design and hold their thread
    # blocks when valgrind takes stock.
    local vg=(valgrind --quiet --error-exitcode=1 --leak-check=full
        --errors-for-leak-kinds=definite,indirect --fair-sched=yes)
    # Small counts: valgrind serialises threads, and spinning peers wait on the scheduler.
    ECHO_HOST_CALLS=200 ECHO_HOST_THREADS=2 ECHO_HOST_SPIN_NS=0 "${vg[@]}" "$out/echo-host" >/dev/null
    echo "echo host: no valgrind errors"
    "${vg[@]}" "$out/contract" | tail -n 1
    "${vg[@]}" "$out/kv" | tail -n 1
    "${vg[@]}" "$out/features" | tail -n 1
    "${vg[@]}" "$out/interface" | tail -n 1
    # Every owned answer freed once, the late answers of timed-out calls included.
    SYNC_CALLS=100 "${vg[@]}" "$out/sync" | tail -n 1
    # Every typed answer and event the host's to free, once.
    "${vg[@]}" "$out/typed" | tail -n 1
    # Entries read while lent (until the next poll), and freed after it.
    "${vg[@]}" "$out/poll" | tail -n 1
    # Load, use and unload the library 24 times: a block it leaves behind at unload is
    # "definitely lost" here (the program's own heap check is coarser).
    "${vg[@]}" "$out/reload" "$lib/libecho.so" | tail -n 1
}

case "${1:-all}" in
    asan) asan ;;
    tsan) tsan ;;
    valgrind) valgrind_hosts ;;
    # One per line, not `a && b`: set -e does not apply inside a function on the left of &&,
    # so a failing step inside it would go unnoticed.
    all)
        asan
        tsan
        valgrind_hosts
        ;;
    *) echo "usage: $0 asan|tsan|valgrind|all" >&2; exit 2 ;;
esac
