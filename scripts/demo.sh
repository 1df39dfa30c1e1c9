#!/usr/bin/env bash
# The main job. Builds the echo example library (release) and
# 1. compiles the C host (examples/echo/host.c) against its cdylib and runs it: every
#    method in both modes from several threads, every answer checked, then its lanes;
# 2. runs the latency driver (driver/), which loads the same cdylib as a C host does and
#    prints the full table: setups scalar and payload 64 B..64 KiB, native and CBOR,
#    sync (p50/p90/p99/p99.9) and async lanes at 1, 2 and 4 threads, beside the atomic
#    ping-pong floor of the same run and nim-ffi's figures;
# 3. runs a Python host of the generated echo module (scripts/python-latency.py): the
#    blocking scalar round trip beside a bare ctypes call of the same run.
# All exit non-zero on any wrong or missing reply. Knobs: ECHO_HOST_* (host.c),
# FFID_DRIVER_* (driver/src/main.rs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -p echo -p latency-driver --quiet
lib="$root/target/release"
out="$root/target/release/echo-host"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -Iexamples/echo/include -Iexamples/echo/c \
  examples/echo/host.c -L"$lib" -lecho -Wl,-rpath,"$lib" -lpthread -o "$out"
echo "== C host (examples/echo/host.c)"
ECHO_HOST_CALLS="${ECHO_HOST_CALLS:-100000}" "$out"
echo
echo "== latency driver"
"$lib/latency-driver"
echo
echo "== Python host (examples/echo/bindings/python, scripts/python-latency.py)"
ECHO_LIBRARY="$lib/libecho.so" python3 scripts/python-latency.py
