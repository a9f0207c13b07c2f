#!/usr/bin/env bash
# Builds daprd and the state-bench benchmark in release mode, then runs the benchmark:
# daprd start-to-healthy time, idle memory, and state GET/SAVE latency and throughput
# through the sidecar's HTTP and gRPC APIs next to the same operations sent directly to
# Redis. state-bench starts its own redis-server on a free port (unless --redis-port is
# given) and stops it at the end, so nothing else needs to be running.
#
# Usage: scripts/bench.sh [state-bench flags], e.g.
#   scripts/bench.sh --ops 50000 --concurrency 32 --seconds 10
#   scripts/bench.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p sidecar -p bench
TARGET="${CARGO_TARGET_DIR:-target}"
exec "$TARGET/release/state-bench" --daprd "$TARGET/release/daprd" "$@"
