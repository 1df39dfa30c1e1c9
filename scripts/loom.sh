#!/usr/bin/env bash
# Model-checks the wake protocol and the back-pressure space wait with loom
# (see the loom_models module in src/wake.rs). LOOM_MAX_PREEMPTIONS bounds the search;
# raise it for a longer, more thorough run.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}" cargo test --release --lib --target-dir target/loom -- loom_models --nocapture
