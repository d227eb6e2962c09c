#!/usr/bin/env bash
# The gateway next to bare tonic, the minimal proxy and the bare SDK call, in one run (release build).
# BENCH_SECONDS sets the time per cell (default 3), BENCH_ROUNDS the rounds per cell (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench gateway
