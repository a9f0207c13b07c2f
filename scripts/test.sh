#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian machine: installs what the tests need
# (apt packages, a Python virtualenv with the official Dapr SDK), starts Redis and
# PostgreSQL on free loopback ports, builds, runs the Rust unit and process tests and the
# SDK suites, and stops what it started. Expensive things are cached outside the repo in
# $RDAPR_CACHE (default ~/.cache/rdapr): the cargo target dir, the venv, Go-built tools.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export RDAPR_CACHE="${RDAPR_CACHE:-$HOME/.cache/rdapr}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$RDAPR_CACHE/target}"
mkdir -p "$RDAPR_CACHE"

step() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "system packages"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
python3 -c 'import venv' 2>/dev/null || missing+=(python3-venv)
command -v ip >/dev/null || missing+=(iproute2)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || [ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
command -v nats-server >/dev/null || missing+=(nats-server)
[ -f /usr/include/librdkafka/rdkafka.h ] || missing+=(librdkafka-dev)
command -v java >/dev/null || missing+=(default-jre-headless)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "ok: redis-server, postgresql, sqlite3, python3-venv, iproute2, openssl, curl, mosquitto, rabbitmq-server, nats-server, librdkafka-dev, java"

step "rust toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --version && cargo clippy --version

step "python virtualenv with the official Dapr SDK"
VENV="$RDAPR_CACHE/venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -r tests/sdk/requirements.txt
"$VENV/bin/python" -c 'import dapr.clients, importlib.metadata as m; print("dapr SDK", m.version("dapr"))'

step "the Dapr CLI, built from its Go module (cached)"
DAPR_CLI_BIN="$(tests/cli/build-dapr-cli.sh | tail -n1)"
export DAPR_CLI_BIN
echo "$DAPR_CLI_BIN"

step "Kubernetes binaries (kube-apiserver, kube-controller-manager, kubectl, etcd), built from their Go modules (cached)"
tests/k8s/build-kube.sh

step "helm, built from its Go module (cached)"
tests/k8s/build-helm.sh
HELM_BIN="$RDAPR_CACHE/bin/helm-${HELM_VERSION:-v4.3.2}/helm"
export HELM_BIN
"$HELM_BIN" version --short

step "Jaeger (the trace collector the tracing tests export to), built from its Go module (cached)"
JAEGER_BIN="$(tests/tracing/build-jaeger.sh | tail -n1)"
export JAEGER_BIN
echo "$JAEGER_BIN"

step "Dapr's own daprd (the other half of the mixed-fleet tests), built from its Go module (cached)"
DAPR_DAPRD_BIN="$(tests/mixed/build-dapr-daprd.sh | tail -n1)"
export DAPR_DAPRD_BIN
echo "$DAPR_DAPRD_BIN"

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build"
cargo build --workspace --quiet
cargo test --workspace --no-run --quiet
DAPRD_BIN="$CARGO_TARGET_DIR/debug/daprd"
export DAPRD_BIN
# The Rust process tests find the binaries through test-support, which would otherwise
# check this same build once per test binary.
export RDAPR_BINARIES_BUILT=1

step "tests, inside a private network namespace (loopback only, multicast on)"
scripts/in-netns.sh scripts/run-tests.sh

step "all tests passed"
