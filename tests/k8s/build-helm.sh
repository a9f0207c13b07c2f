#!/usr/bin/env bash
# Builds a real `helm` for the chart tests from its published Go module, and caches it
# outside the repo, keyed by version. Prints nothing but progress; the binary lands in
# $RDAPR_CACHE/bin/helm-<version>/helm.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
CACHE="${RDAPR_CACHE:-$HOME/.cache/rdapr}"
OUT="$CACHE/bin/helm-$HELM_VERSION"
if [[ -x "$OUT/helm" ]]; then
  echo "helm $HELM_VERSION cached in $OUT"
  exit 0
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$OUT"
major="${HELM_VERSION%%.*}" # v4
echo "building helm $HELM_VERSION from helm.sh/helm/$major"
GOBIN="$OUT" go install \
  -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
"$OUT/helm" version
