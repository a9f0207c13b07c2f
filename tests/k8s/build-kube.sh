#!/usr/bin/env bash
# Builds a real Kubernetes control plane for the tests from published Go modules:
# kube-apiserver, kube-controller-manager, kubectl and etcd, one version of each.
#
# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the staging
# modules with local folders), so a scratch module requires it and replaces each
# staging module with its published v0.Y.Z twin. etcd is built from the same module
# at the version Kubernetes itself depends on, so one dependency graph serves all.
# The binaries are cached outside the repo, keyed by version.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
CACHE="${RDAPR_CACHE:-$HOME/.cache/rdapr}"
OUT="$CACHE/kube/$KUBE_VERSION"
BINARIES=(kube-apiserver kube-controller-manager kubectl etcd)

have_all() {
  for b in "${BINARIES[@]}"; do [[ -x "$OUT/bin/$b" ]] || return 1; done
}
if have_all; then
  echo "kube $KUBE_VERSION binaries cached in $OUT/bin"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
SRC="$OUT/src"
rm -rf "$SRC"
mkdir -p "$SRC" "$OUT/bin"
cd "$SRC"

echo "reading k8s.io/kubernetes@$KUBE_VERSION's go.mod"
gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[[ -f "$gomod" ]] || { echo "could not find go.mod of k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }

minor="${KUBE_VERSION#v1.}"        # 34.4
staging_version="v0.$minor"        # v0.34.4
{
  echo "module rdapr.test/kube-build"
  echo
  grep -E '^(go|godebug) ' "$gomod" || true
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  # Every staging module the upstream go.mod points at ./staging/... gets its
  # published twin instead.
  sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod" | sort -u |
    while read -r m; do echo "replace $m => $m $staging_version"; done
} > go.mod
if ! grep -q '^replace' go.mod; then
  echo "found no staging replaces in $gomod" >&2
  exit 1
fi
etcd_version=$(sed -n 's#^[[:space:]]*go.etcd.io/etcd/client/v3 \(v[^ ]*\).*#\1#p' "$gomod" | head -1)
echo "etcd version (from Kubernetes' client): $etcd_version"

cat > tools.go <<'GO'
//go:build tools

package tools
GO

go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" \
  "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBE_VERSION" \
  "k8s.io/kubernetes/cmd/kubectl@$KUBE_VERSION" \
  "go.etcd.io/etcd/server/v3@$etcd_version"

major=1
minor_only="${minor%%.*}"
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor_only"
  ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

for b in kube-apiserver kube-controller-manager kubectl; do
  echo "building $b $KUBE_VERSION"
  go build -trimpath -ldflags "$ldflags" -o "$OUT/bin/$b" "k8s.io/kubernetes/cmd/$b"
done
echo "building etcd $etcd_version"
go build -trimpath -ldflags "-s -w" -o "$OUT/bin/etcd" go.etcd.io/etcd/server/v3
have_all
echo "kube $KUBE_VERSION binaries built in $OUT/bin"
