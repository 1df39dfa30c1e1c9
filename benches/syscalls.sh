#!/usr/bin/env bash
# Counts the system calls one round trip costs, with strace, on the latency driver's
# sync native scalar lane (one host thread):
#   hot:  the worker spins between calls (default budget): target 0 per call;
#   cold: spin budget 0, the worker parks after every call: target the one wake, so
#         two futex calls per round trip: the producer's FUTEX_WAKE and the worker's
#         FUTEX_WAIT (its sleep). The host itself makes none (it spins for its answer).
# Fixed costs (loading the library, threads, the floor) cancel out: each case runs
# twice, with N and 2N calls, and reports (count(2N) - count(N)) / N.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace; }
cargo build -q --release -p echo -p latency-driver
driver=target/release/latency-driver
n=${FFID_SYSCALLS_CALLS:-20000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

count() { # count <spin_ns|default> <calls> -> futex calls, other syscalls (whole run)
    local spin=$1 calls=$2
    local env=(FFID_DRIVER_SETUPS=scalar FFID_DRIVER_MODES=native FFID_DRIVER_LANES=sync
        FFID_DRIVER_THREADS=1 FFID_DRIVER_CALLS="$calls")
    [ "$spin" = default ] || env+=(FFID_DRIVER_SPIN_NS="$spin")
    env "${env[@]}" strace -f -c -o "$out" "$driver" >/dev/null
    awk '$NF == "futex" { f = $4 } $NF == "total" { t = $4 } END { printf "%d %d\n", f, t - f }' "$out"
}

printf '%-6s %18s %18s\n' case "futex per call" "other per call"
for spin in default 0; do
    read -r f1 o1 < <(count "$spin" "$n")
    read -r f2 o2 < <(count "$spin" $((2 * n)))
    name=$([ "$spin" = default ] && echo hot || echo cold)
    # The driver also makes an unmeasured warm-up of calls/10 per row: the 2N run makes
    # 1.1 N more calls than the N run, not N.
    awk -v c="$name" -v f1="$f1" -v f2="$f2" -v o1="$o1" -v o2="$o2" -v n="$n" \
        'BEGIN { d = n * 1.1; printf "%-6s %18.3f %18.3f\n", c, (f2 - f1) / d, (o2 - o1) / d }'
done
