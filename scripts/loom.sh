#!/usr/bin/env bash
# Model-checks the concurrency protocols with loom: the worker wake and the space wait
# (src/sync/wake.rs), destroy racing submits and cancel racing the start
# (src/lifecycle/loom_models.rs), the ping gate of running and deferred requests
# (src/egress/gate.rs), listener removal (src/events/mod.rs), and completion
# mode's fd signal and stall rule (src/egress/completion.rs); each has a
# `loom_models` module. LOOM_MAX_PREEMPTIONS bounds the search;
# raise it for a longer, more thorough run.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}" cargo test --release --lib --target-dir target/loom -- loom_models --nocapture
