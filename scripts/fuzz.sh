#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 30 s each; CI uses 20).
#   scripts/fuzz.sh [seconds] [target...]
# Targets: cbor_requests (bytes into every _cbor export, exactly one callback each),
# cbor_decode (the decoders directly, with a decode/encode/decode round trip), ops
# (create/call/destroy/stale-handle sequences with exactly-once accounting).
# New inputs go to fuzz/corpus/<target> (not checked in); the checked-in seeds in
# fuzz/seeds/<target> are read only. A crash leaves its input in fuzz/artifacts/<target>;
# replay it with (from fuzz/, after `source ../scripts/nightly.sh`):
#   cargo +"$FFID_NIGHTLY" fuzz run <target> artifacts/<target>/<file>
# A failing run prints its whole log (a leak report's stacks come after the crash line and
# a tail would cut them) and keeps it as fuzz/artifacts/<target>/fuzz-<target>.log; a
# passing run prints only its final stats and its log is dropped.
# For a long run: scripts/fuzz.sh 3600 cbor_requests (or -jobs/-workers flags by hand).
# Toolchain: the pinned nightly of scripts/nightly.sh ($FFID_NIGHTLY, the toolchain alone;
# installed when missing, never updated); moving the date is a deliberate edit of that one
# file. cargo-fuzz itself comes from crates.io (cargo install --locked) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cbor_requests cbor_decode ops description)
# shellcheck source=scripts/nightly.sh
source ../scripts/nightly.sh
# shellcheck disable=SC2119 # the toolchain alone: cargo-fuzz needs no component
ffid_nightly_install
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== fuzz $t for ${secs}s"
    if cargo +"$FFID_NIGHTLY" fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
        :
    else
        rc=$?
        mkdir -p "artifacts/$t"
        kept="artifacts/$t/fuzz-$t.log"
        echo "---- whole log of fuzz target $t (exit $rc) ----"
        tee "$kept" <"$log"
        echo "---- end of the log of fuzz target $t ----"
        echo "fuzz target $t failed (exit $rc); the log above is kept in fuzz/$kept;" \
            "a crashing or leaking input, if it got that far, is beside it in fuzz/artifacts/$t" >&2
        exit 1
    fi
    grep -E "^Done|stat::number_of_executed_units" "$log"
done
