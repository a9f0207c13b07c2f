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
# fails checksum-database verification); it needs go >= 1.24.9.
#
# Two workarounds for gaps in that proxy, both documented in README.md:
#  * `go install github.com/dapr/cli@VERSION` fails: go install also fetches the
#    module's version list (deprecation check) and the proxy answers it with 403.
#    So we build the same package from a throw-away wrapper module that requires
#    github.com/dapr/cli@VERSION -- MVS then selects exactly the dependency
#    versions of the CLI's own go.mod (checksums verified as usual).
#  * the proxy refuses github.com/dapr/components-contrib v1.16.3 (pinned by CLI
#    v1.16.5), so it is replaced by the v1.16.5 patch release of the same line.
#    The CLI only uses it indirectly (component types via dapr/dapr's loader).
set -euo pipefail

VERSION="${DAPR_CLI_VERSION:-v1.16.5}"
CONTRIB_REPLACE="${DAPR_CLI_CONTRIB_REPLACE-v1.16.5}"   # set empty to disable
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

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
{
    echo "module rdapr.local/dapr-cli-build"
    echo
    echo "go 1.24.9"
    echo
    echo "require github.com/dapr/cli ${VERSION}"
    if [[ -n "${CONTRIB_REPLACE}" ]]; then
        echo
        echo "replace github.com/dapr/components-contrib => github.com/dapr/components-contrib ${CONTRIB_REPLACE}"
    fi
} > "${work}/go.mod"

echo "building github.com/dapr/cli@${VERSION} with $(go version) ..." >&2
start=$(date +%s)
mkdir -p "${OUT_DIR}"
(
    cd "${work}"
    go build -mod=mod -trimpath \
        -ldflags "-X main.version=${VERSION#v}" \
        -o "${work}/dapr" github.com/dapr/cli
)
mv "${work}/dapr" "${BIN}.tmp"
mv "${BIN}.tmp" "${BIN}"
echo "built in $(( $(date +%s) - start ))s" >&2
echo "${BIN}"
