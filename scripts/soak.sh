#!/usr/bin/env bash
# Soak: 3 gateway replicas + Redis under mixed load, a replica and Redis killed and restarted, one
# embedded CloudTrail at AWS's quotas behind them all. SOAK_SECONDS sets the length (default 600).
# Not in the default test suite (it takes 10 minutes); needs redis-server (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench soak -- --soak
