#!/usr/bin/env bash
# Build Dapr's own CLI (Go module github.com/dapr/cli) from the published module
# into a cache directory keyed by version. Idempotent: when the binary already
# exists nothing is rebuilt. The last line printed is the binary's path.
#
# Usage: tests/cli/build-dapr-cli.sh                       # pinned version
#        DAPR_CLI_VERSION=v1.x.y tests/cli/build-dapr-cli.sh
#
# Pinned to v1.16.5: the newest released v1.x that the Go module proxy reachable
# from our machines serves (v1.17.0 and v1.18.0 are refused with 403, v1.17.1
# fails checksum-database verification) and it builds with go >= 1.24.9.
#
# Why not `go install github.com/dapr/cli@VERSION`: `go install pkg@version`
# also fetches the module's version list to look for a deprecation notice, and
# the proxy here answers that list with 403, which makes go install fail. So the
# module is fetched with `go mod download` (same proxy, same checksum checks) and
# built from its own go.mod/go.sum, which is what go install would do.
set -euo pipefail

VERSION="${DAPR_CLI_VERSION:-v1.16.5}"
CACHE_ROOT="${RDAPR_CACHE:-/root/.cache/rdapr}"
OUT_DIR="${CACHE_ROOT}/bin/dapr-cli-${VERSION}"
BIN="${OUT_DIR}/dapr"

if [[ -x "${BIN}" ]]; then
    echo "dapr CLI ${VERSION} already built" >&2
    echo "${BIN}"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "error: go toolchain not found" >&2; exit 1; }

export CGO_ENABLED=0
# -p=1 keeps the build on one core (the machine has two).
export GOFLAGS="-p=1 -buildvcs=false"

echo "fetching github.com/dapr/cli@${VERSION} ..." >&2
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
# Run outside any module so a caller's go.mod cannot interfere.
src="$(cd "${work}" && go mod download -json "github.com/dapr/cli@${VERSION}" \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); e=d.get("Error"); print(d["Dir"]) if not e else sys.exit("go mod download: "+e)')"
[[ -f "${src}/go.mod" ]] || { echo "error: module source not found at ${src}" >&2; exit 1; }

echo "building dapr CLI ${VERSION} from ${src} with $(go version) ..." >&2
start=$(date +%s)
mkdir -p "${OUT_DIR}"
(
    cd "${src}"
    go build -trimpath -mod=readonly \
        -ldflags "-X main.version=${VERSION#v}" \
        -o "${work}/dapr" .
)
mv "${work}/dapr" "${BIN}.tmp"
mv "${BIN}.tmp" "${BIN}"
echo "built in $(( $(date +%s) - start ))s" >&2
echo "${BIN}"
