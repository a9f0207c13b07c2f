#!/usr/bin/env bash
# Builds Jaeger (v2, on the OpenTelemetry Collector) from its published Go module: the
# real trace collector the tracing tests export to, over OTLP gRPC, OTLP HTTP and
# Zipkin, and query back through its HTTP API. Cached outside the repo, keyed by
# version; the last line printed is the binary's path.
#
# `go install` would also fetch the module's version list, which the module proxy
# reachable from our machines may refuse, so the same package is built from a
# throw-away module that requires it (MVS then picks Jaeger's own dependency versions).
set -euo pipefail

VERSION="${JAEGER_VERSION:-v1.75.0}"
CACHE="${RDAPR_CACHE:-$HOME/.cache/rdapr}"
OUT="$CACHE/bin/jaeger-$VERSION"
BIN="$OUT/jaeger"

if [[ -x "$BIN" ]]; then
  echo "jaeger $VERSION already built" >&2
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "error: go toolchain not found" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf 'module rdapr.local/jaeger-build\n\ngo 1.25\n\nrequire github.com/jaegertracing/jaeger %s\n' "$VERSION" > "$work/go.mod"

echo "building github.com/jaegertracing/jaeger/cmd/jaeger@$VERSION with $(go version) ..." >&2
start=$(date +%s)
mkdir -p "$OUT"
(cd "$work" && go build -mod=mod -trimpath -o "$work/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger)
mv "$work/jaeger" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "built in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
