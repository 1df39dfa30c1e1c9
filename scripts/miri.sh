#!/usr/bin/env bash
# Runs the Rust-side tests that exercise the unsafe code under Miri: the runtime's unit
# tests (envelope ownership and inline payloads, rings, handle registry, reply buffers and
# arenas, marshalling), `tests/macros.rs` (every generated export driven with Rust
# callbacks, real worker threads), `tests/runtime.rs`, and the events, long-work and
# async suites (listeners, deferred replies, pings, cancel, async tasks holding the
# library across .await: Miri's Stacked Borrows checks that last one).
#
# Toolchain: the pinned nightly of scripts/nightly.sh ($FFID_NIGHTLY, with the miri and
# rust-src components; installed when missing, never updated). A new nightly brings a new
# Miri with new checks, so moving the date is a deliberate edit of that one file.
#
# Not run under Miri, and why:
# - tests/c_host.rs: runs C programs (Miri interprets Rust only);
# - tests/compile_fail.rs: runs the compiler;
# - tests/alloc.rs: counts allocations per call over thousands of calls; it holds no
#   unsafe code of its own beyond the allocator shim and is far too slow interpreted;
# - runtime.rs's eventfd test: Miri does not model eventfd reads and writes by epoll
#   hosts (the futex backend, the default, is covered);
# - loom models: they need `--cfg loom` (scripts/loom.sh);
# - long_work.rs's completion-mode test: Miri does not model poll(2) (marked ignore);
# - tests/idle.rs: interpreted, no wake comes within 1 ms, and it needs eventfd.
# Isolation is off because the worker reads the clock (its spin budget) and the
# registry seeds its generations from it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nightly.sh
ffid_nightly_install miri rust-src
export MIRIFLAGS="-Zmiri-disable-isolation ${MIRIFLAGS:-}"
cargo +"$FFID_NIGHTLY" miri test -p ffi-dispatch --lib
cargo +"$FFID_NIGHTLY" miri test -p ffi-dispatch --test macros
cargo +"$FFID_NIGHTLY" miri test -p ffi-dispatch --test runtime -- --skip eventfd
cargo +"$FFID_NIGHTLY" miri test -p ffi-dispatch --test events
cargo +"$FFID_NIGHTLY" miri test -p ffi-dispatch --test long_work
cargo +"$FFID_NIGHTLY" miri test -p ffi-dispatch --test async_handlers
cargo +"$FFID_NIGHTLY" miri test -p ffi-dispatch --test blocking
