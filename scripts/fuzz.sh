#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 30 s each; CI uses 20).
#   scripts/fuzz.sh [seconds] [target...]
# Targets: cbor_requests (bytes into every _cbor export, exactly one callback each),
# cbor_decode (the decoders directly, with a decode/encode/decode round trip), ops
# (create/call/destroy/stale-handle sequences with exactly-once accounting).
# New inputs go to fuzz/corpus/<target> (not checked in); the checked-in seeds in
# fuzz/seeds/<target> are read only. A crash leaves its input in fuzz/artifacts/<target>;
# replay it with: cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# For a long run: scripts/fuzz.sh 3600 cbor_requests (or -jobs/-workers flags by hand).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cbor_requests cbor_decode ops)
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== fuzz $t for ${secs}s"
    if ! cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz target $t failed; the input is in fuzz/artifacts/$t" >&2
        exit 1
    fi
    grep -E "^Done|stat::number_of_executed_units" "$log"
done
