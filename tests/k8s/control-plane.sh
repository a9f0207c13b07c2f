#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the tests: etcd, kube-apiserver and
# kube-controller-manager (so that Deployments create ReplicaSets and Pods, and namespaces
# get their default ServiceAccount). There is no kubelet and no scheduler: Pods are
# created and stay Pending, which is all the control-plane tests need.
#
# Source it (after tests/k8s/build-kube.sh has cached the binaries): it exports KUBECONFIG,
# KUBECTL, KUBE_APISERVER_URL and KUBE_DIR, and defines `stop_kube`.
#
#   source tests/k8s/control-plane.sh
#   $KUBECTL get namespaces
#   stop_kube
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
KUBE_BIN="${KUBE_BIN:-${RDAPR_CACHE:-$HOME/.cache/rdapr}/kube/$KUBE_VERSION/bin}"
KUBE_DIR="${KUBE_DIR:-$(mktemp -d /tmp/rdapr-kube.XXXXXX)}"
export KUBE_DIR KUBE_BIN

kube_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

kube_wait() { # what, seconds, command...
  local what="$1" secs="$2"
  shift 2
  for _ in $(seq 1 $((secs * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$what did not become ready; logs in $KUBE_DIR" >&2
  tail -n 30 "$KUBE_DIR"/*.log >&2 || true
  return 1
}

start_kube() {
  for b in etcd kube-apiserver kube-controller-manager kubectl; do
    [ -x "$KUBE_BIN/$b" ] || { echo "missing $KUBE_BIN/$b: run tests/k8s/build-kube.sh" >&2; return 1; }
  done
  local etcd_port etcd_peer api_port pki="$KUBE_DIR/pki"
  etcd_port="$(kube_free_port)"
  etcd_peer="$(kube_free_port)"
  api_port="$(kube_free_port)"
  mkdir -p "$pki"

  "$KUBE_BIN/etcd" --name test --data-dir "$KUBE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "test=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync --log-level warn >"$KUBE_DIR/etcd.log" 2>&1 &
  echo $! >"$KUBE_DIR/etcd.pid"

  # Service-account tokens are signed with this key; the admin is a static token in
  # system:masters; the apiserver makes its own self-signed serving certificate.
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key" 2>/dev/null
  openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  KUBE_ADMIN_TOKEN="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "$KUBE_ADMIN_TOKEN,admin,admin,system:masters" >"$pki/tokens.csv"

  kube_wait etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

  "$KUBE_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$pki" \
    --token-auth-file "$pki/tokens.csv" \
    --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged \
    --enable-priority-and-fairness=false \
    --profiling=false \
    --v 1 >"$KUBE_DIR/kube-apiserver.log" 2>&1 &
  echo $! >"$KUBE_DIR/kube-apiserver.pid"

  KUBE_APISERVER_URL="https://127.0.0.1:$api_port"
  KUBECONFIG="$KUBE_DIR/kubeconfig"
  cat >"$KUBECONFIG" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $KUBE_APISERVER_URL
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: $KUBE_ADMIN_TOKEN
contexts:
- name: test
  context:
    cluster: test
    user: admin
    namespace: default
current-context: test
YAML
  KUBECTL="$KUBE_BIN/kubectl"
  export KUBECONFIG KUBECTL KUBE_APISERVER_URL
  kube_wait kube-apiserver 60 "$KUBECTL" get --raw /readyz

  "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG" \
    --authentication-kubeconfig "$KUBECONFIG" --authorization-kubeconfig "$KUBECONFIG" \
    --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/apiserver.crt" \
    --use-service-account-credentials=false \
    --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port 0 \
    --controllers '*' \
    --v 1 >"$KUBE_DIR/kube-controller-manager.log" 2>&1 &
  echo $! >"$KUBE_DIR/kube-controller-manager.pid"
  kube_wait "the default ServiceAccount" 60 "$KUBECTL" get serviceaccount default -n default
  echo "kubernetes $KUBE_VERSION: apiserver $KUBE_APISERVER_URL, KUBECONFIG=$KUBECONFIG"
}

stop_kube() {
  local p
  for p in kube-controller-manager kube-apiserver etcd; do
    if [ -f "$KUBE_DIR/$p.pid" ]; then
      kill "$(cat "$KUBE_DIR/$p.pid")" 2>/dev/null || true
    fi
  done
  for p in kube-controller-manager kube-apiserver etcd; do
    if [ -f "$KUBE_DIR/$p.pid" ]; then
      while kill -0 "$(cat "$KUBE_DIR/$p.pid")" 2>/dev/null; do sleep 0.1; done
    fi
  done
  rm -rf "$KUBE_DIR"
}

start_kube
