#!/usr/bin/env bash
# Runs a command inside a fresh network namespace that has a loopback interface with
# multicast enabled on it and a private veth pair (a host's second interface), and
# removes the namespace afterwards.
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
cleanup() {
  as_root ip netns delete "$NS" 2>/dev/null || true
  as_root rm -rf "/etc/netns/$NS"
}
trap cleanup EXIT
as_root ip netns add "$NS"
# Inside the namespace the control plane's Service names resolve to loopback, as cluster
# DNS would resolve them to the Services: `ip netns exec` mounts /etc/netns/<ns>/hosts
# over /etc/hosts. A webhook can then be called by the name in its certificate.
as_root mkdir -p "/etc/netns/$NS"
{
  cat /etc/hosts
  echo "127.0.0.1 dapr-sidecar-injector.dapr-system.svc dapr-webhook.dapr-system.svc dapr-sentry.dapr-system.svc dapr-api.dapr-system.svc"
  # The full names the injector writes into sidecars, each on an address of its own as a
  # ClusterIP would be, so that Sentry and the operator can both listen on port 443.
  echo "127.0.0.2 dapr-sentry.dapr-system.svc.cluster.local"
  echo "127.0.0.3 dapr-api.dapr-system.svc.cluster.local"
  echo "127.0.0.4 dapr-placement-server.dapr-system.svc.cluster.local"
} | as_root tee "/etc/netns/$NS/hosts" >/dev/null
as_root ip -n "$NS" link set lo up
as_root ip -n "$NS" link set lo multicast on
as_root ip -n "$NS" route add 224.0.0.0/4 dev lo
# A second interface, as real hosts have: a veth pair with private addresses, multicast
# on. A sidecar that announces an interface address while it listens on loopback only is
# then unreachable here, as it would be on a real host.
as_root ip -n "$NS" link add rdapr0 type veth peer name rdapr1
as_root ip -n "$NS" addr add 10.213.0.1/24 dev rdapr0
as_root ip -n "$NS" addr add 10.213.0.2/24 dev rdapr1
for dev in rdapr0 rdapr1; do
  as_root ip -n "$NS" link set "$dev" multicast on up
done

# Keep the caller's environment; only the network changes. A non-root caller gets
# their own user back inside.
if [ "$(id -u)" = 0 ]; then
  ip netns exec "$NS" env RDAPR_TEST_NETNS="$NS" CARGO_NET_OFFLINE=true "$@"
else
  sudo --preserve-env ip netns exec "$NS" \
    setpriv --reuid="$(id -u)" --regid="$(id -g)" --init-groups \
    env RDAPR_TEST_NETNS="$NS" CARGO_NET_OFFLINE=true "$@"
fi
