#!/usr/bin/env bash
# The test suites themselves, once everything is installed and built (scripts/test.sh
# does that, then runs this inside scripts/in-netns.sh). Starts the backends on loopback,
# runs the Rust tests, the official SDK suites and the Dapr CLI suite, and stops what it
# started.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
step() { printf '\n==> %s\n' "$*"; }
VENV="${RDAPR_CACHE:-$HOME/.cache/rdapr}/venv"

step "backends on loopback"
# shellcheck source=scripts/services.sh
source scripts/services.sh
trap stop_services EXIT

step "a Kubernetes control plane on loopback (etcd, kube-apiserver, kube-controller-manager)"
# shellcheck source=tests/k8s/control-plane.sh
source tests/k8s/control-plane.sh
trap 'stop_kube; stop_services' EXIT

step "rust tests (unit, conformance against real Redis/PostgreSQL/SQLite, daprd processes)"
cargo test --workspace --quiet --no-fail-fast

step "python SDK suite against daprd (in-memory, Redis, PostgreSQL, SQLite)"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/sdk

step "the Dapr CLI runs daprd (dapr run --runtime-path)"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/cli
