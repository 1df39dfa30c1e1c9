#!/usr/bin/env bash
# Builds the echo example library (release), compiles the C host against its cdylib
# and runs it: every method in both modes, then latency and throughput beside the
# atomic ping-pong floor measured in the same run. Knobs: ECHO_HOST_CALLS, ECHO_HOST_THREADS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -p echo --quiet
lib="$root/target/release"
out="$root/target/release/echo-host"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -Iinclude -Iexamples/echo/include -Iexamples/echo/c \
  examples/echo/host.c -L"$lib" -lecho -Wl,-rpath,"$lib" -lpthread -o "$out"
exec "$out"
