#!/usr/bin/env bash
# Builds daprd and the benchmarks in release mode, then runs them, state-bench first:
#
# - state-bench: daprd start-to-healthy time, idle memory, and state GET/SAVE latency and
#   throughput through the sidecar's HTTP and gRPC APIs next to the same operations sent
#   directly to Redis. It starts its own redis-server on a free port (unless --redis-port
#   is given) and stops it at the end.
# - invoke-bench: two-hop service invocation (load generator -> daprd -> daprd -> app)
#   next to direct calls to the same app, HTTP and gRPC, at a fixed rate and at maximum
#   throughput, with each sidecar's RSS and CPU. It starts its own echo app and sidecars.
#
# Nothing else needs to be running. Missed targets are reported, not turned into a
# failing exit code.
#
# Usage:
#   scripts/bench.sh                    both benchmarks with their defaults
#   scripts/bench.sh state [flags]      state-bench only, e.g. state --ops 50000 --seconds 10
#   scripts/bench.sh invoke [flags]     invoke-bench only, e.g. invoke --seconds 5 --protocols grpc
#   scripts/bench.sh sentry [flags]     sentry-bench only: CSR signing throughput, first mTLS call
#   scripts/bench.sh state --help       (or invoke --help) every flag of one benchmark
#   scripts/bench.sh --ops 50000 ...    flags with no benchmark name go to state-bench, as before
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-all}" in
  all) [ $# -le 1 ] || { echo "usage: $0 [state|invoke [flags]]" >&2; exit 2; }
       benches=(state invoke sentry); set -- ;;
  state | invoke) benches=("$1"); shift ;;
  sentry) benches=(sentry); shift ;;
  *) benches=(state) ;;
esac

cargo build --release -p daprd -p sentry -p bench
TARGET="${CARGO_TARGET_DIR:-target}"

status=0
for bench in "${benches[@]}"; do
  [ "${#benches[@]}" -eq 1 ] || printf '\n==> %s-bench\n' "$bench" >&2
  # A failing benchmark (e.g. no redis-server for state-bench) does not stop the next.
  extra=()
  [ "$bench" = sentry ] && extra=(--sentry "$TARGET/release/sentry")
  "$TARGET/release/$bench-bench" --daprd "$TARGET/release/daprd" "${extra[@]}" "$@" || status=$?
done
exit "$status"
