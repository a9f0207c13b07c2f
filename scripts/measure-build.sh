#!/usr/bin/env bash
# Measures what a release profile costs and gives: a clean release build of `daprd`
# (wall and CPU time), an incremental rebuild after touching one backend (the Redis
# state store), the binary's size, and the idle RSS of the sidecar on its embedded
# defaults. Run it on a quiet machine: the figures are only comparable run against run.
#
#   scripts/measure-build.sh <label> [<git rev>] [-- <extra cargo env, e.g. CARGO_PROFILE_RELEASE_LTO=thin>]
#
# Each run builds in its own worktree and target dir under $RDAPR_CACHE/measure, so it
# never disturbs the test cache. Results go to stdout as one `key=value` line per figure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
label="$1"; shift
rev="HEAD"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then rev="$1"; shift; fi
[ "${1:-}" = "--" ] && shift
profile_env=("$@")

base="${RDAPR_CACHE:-$HOME/.cache/rdapr}/measure/$label"
rm -rf "$base"; mkdir -p "$base"
git -C "$ROOT" worktree add --detach -f "$base/src" "$rev" >/dev/null 2>&1
trap 'git -C "$ROOT" worktree remove --force "$base/src" >/dev/null 2>&1 || true' EXIT
cd "$base/src"
export CARGO_TARGET_DIR="$base/target"
cargo fetch -q

timed() { # prints wall seconds and user+sys CPU seconds of "$@"
  local out; out="$(mktemp)"
  /usr/bin/env time -f '%e %U %S' -o "$out" env "${profile_env[@]}" "$@" >/dev/null 2>&1
  awk '{printf "%s %.1f\n", $1, $2 + $3}' "$out"; rm -f "$out"
}

read -r wall cpu < <(timed cargo build --release -q -p daprd --bin daprd)
echo "label=$label rev=$(git rev-parse --short HEAD) env=${profile_env[*]:-default}"
echo "clean_build_wall_s=$wall clean_build_cpu_s=$cpu"

redis_state="$(ls sidecar/components/redis/src/state.rs 2>/dev/null || ls sidecar/src/components/state/redis.rs 2>/dev/null || find . -path ./target -prune -o -name 'redis*.rs' -print | head -n1)"
touch "$redis_state"
read -r wall cpu < <(timed cargo build --release -q -p daprd --bin daprd)
echo "incremental_release_wall_s=$wall incremental_release_cpu_s=$cpu touched=$redis_state"

bin="$CARGO_TARGET_DIR/release/daprd"
echo "binary_bytes=$(stat -c %s "$bin")"

# Idle RSS: the sidecar on its embedded defaults, healthy, after a settle.
rss="$("$ROOT/scripts/in-netns.sh" bash -c '
  set -e
  home="$(mktemp -d)"; mkdir -p "$home/components"
  HOME="$home" "'"$bin"'" --app-id idle --dapr-http-port 3500 --dapr-grpc-port 50001 \
     --resources-path "$home/components" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:3500/v1.0/healthz/outbound && break; sleep 0.1; done
  sleep 2
  awk "/VmRSS/ {print \$2}" /proc/$pid/status
  kill $pid')"
echo "idle_rss_kib=$rss"
