#!/usr/bin/env bash
# Builds Dapr's own sidecar (`daprd` from the Go module github.com/dapr/dapr) for the
# mixed-fleet tests: one of ours and one of theirs side by side. Cached outside the
# repo, keyed by version; the last line printed is the binary's path.
#
# github.com/dapr/dapr has `replace` directives, so it cannot be `go install`ed: a
# throw-away module requires it and repeats its replacements (all of them to published
# modules). As for the CLI, the proxy refuses components-contrib v1.16.3, so the v1.16.5
# patch release of the same line stands in, and one dependency whose assembly our Go
# refuses is replaced by a stand-in of our own (see pidshim/). Dapr builds its sidecar with a component
# set chosen by build tag; `allcomponents` is what its releases ship.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

VERSION="${DAPR_RUNTIME_VERSION:-v1.16.2}"
CONTRIB="${DAPR_RUNTIME_CONTRIB-v1.16.5}"
CACHE="${RDAPR_CACHE:-$HOME/.cache/rdapr}"
OUT="$CACHE/bin/dapr-daprd-$VERSION"
BIN="$OUT/daprd"

if [[ -x "$BIN" ]]; then
  echo "Dapr's daprd $VERSION already built" >&2
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "error: go toolchain not found" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gomod=$(cd "$work" && go mod download -json "github.com/dapr/dapr@$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[[ -f "$gomod" ]] || { echo "could not fetch github.com/dapr/dapr@$VERSION's go.mod" >&2; exit 1; }
{
  echo "module rdapr.local/dapr-daprd-build"
  echo
  grep -E '^go ' "$gomod"
  echo
  echo "require github.com/dapr/dapr $VERSION"
  echo
  # Dapr's own replace blocks, as written (they only point at published modules).
  sed -n '/^replace (/,/^)/p' "$gomod" | grep -v '^[[:space:]]*//'
  # github.com/choleraehyq/pid's assembly does not assemble with our Go; a plain-Go
  # stand-in with its API (tests/mixed/pidshim) takes its place.
  echo "replace github.com/choleraehyq/pid => ./pidshim"
  if [[ -n "$CONTRIB" ]]; then
    echo "replace github.com/dapr/components-contrib => github.com/dapr/components-contrib $CONTRIB"
  fi
} > "$work/go.mod"

cp -r "$HERE/pidshim" "$work/pidshim"

echo "building github.com/dapr/dapr/cmd/daprd@$VERSION with $(go version) ..." >&2
start=$(date +%s)
mkdir -p "$OUT"
(cd "$work" && go build -mod=mod -trimpath -tags allcomponents \
    -ldflags "-X github.com/dapr/dapr/pkg/buildinfo.version=${VERSION#v}" \
    -o "$work/daprd" github.com/dapr/dapr/cmd/daprd)
mv "$work/daprd" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
