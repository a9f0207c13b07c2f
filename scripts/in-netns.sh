#!/usr/bin/env bash
# Runs a command inside a fresh network namespace that has only a loopback interface,
# with multicast enabled on it, and removes the namespace afterwards.
#
# The tests run here so that everything they start (Redis, PostgreSQL, sidecars, a
# Kubernetes control plane) is reachable only from the tests, and so that mDNS, the
# sidecar's default name resolution, multicasts on this private loopback instead of a
# real network. Needs root (or CAP_SYS_ADMIN) and iproute2.
#
#   scripts/in-netns.sh cargo test -p process-tests --test daprd_mdns
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 command [args...]" >&2; exit 2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

NS="rdapr-test-$$"
cleanup() { as_root ip netns delete "$NS" 2>/dev/null || true; }
trap cleanup EXIT
as_root ip netns add "$NS"
as_root ip -n "$NS" link set lo up
as_root ip -n "$NS" link set lo multicast on
as_root ip -n "$NS" route add 224.0.0.0/4 dev lo

# Keep the caller's environment; only the network changes. A non-root caller gets
# their own user back inside.
if [ "$(id -u)" = 0 ]; then
  ip netns exec "$NS" env RDAPR_TEST_NETNS="$NS" CARGO_NET_OFFLINE=true "$@"
else
  sudo --preserve-env ip netns exec "$NS" \
    setpriv --reuid="$(id -u)" --regid="$(id -g)" --init-groups \
    env RDAPR_TEST_NETNS="$NS" CARGO_NET_OFFLINE=true "$@"
fi
