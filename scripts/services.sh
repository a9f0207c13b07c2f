#!/usr/bin/env bash
# Starts the real backends the tests need (Redis, PostgreSQL, and each broker in
# scripts/services.d/) on free loopback ports, under a private state directory. Source it:
# it exports REDIS_PORT, PG_PORT, PG_URL (and each broker's variables) and defines
# `stop_services`. Nothing here touches system-wide service configuration.
#
# A file scripts/services.d/<name>.sh defines `start_<name>` (exporting what tests read)
# and `stop_<name>`; each is started after Redis and PostgreSQL and stopped before them.
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-$(mktemp -d /tmp/rdapr-services.XXXXXX)}"
export SERVICES_DIR

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  echo "postgresql server binaries not found (apt-get install postgresql)" >&2
  return 1
}

start_redis() {
  REDIS_PORT="$(free_port)"
  export REDIS_PORT
  mkdir -p "$SERVICES_DIR/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$SERVICES_DIR/redis" --daemonize yes --pidfile "$SERVICES_DIR/redis/redis.pid" \
    --logfile "$SERVICES_DIR/redis/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis did not start; log:" >&2; cat "$SERVICES_DIR/redis/redis.log" >&2; return 1
}

start_postgres() {
  local bin user
  bin="$(pg_bin)"
  PG_PORT="$(free_port)"
  export PG_PORT
  local data="$SERVICES_DIR/pg"
  # initdb refuses to run as root, so the cluster belongs to the postgres system user.
  user="$(id -un)"
  mkdir -p "$data"
  if [ "$user" = root ]; then
    chown postgres "$SERVICES_DIR" "$data"
    chmod 755 "$SERVICES_DIR"
    run_pg() { su postgres -s /bin/sh -c "$*"; }
  else
    run_pg() { sh -c "$*"; }
  fi
  run_pg "'$bin/initdb' -D '$data/db' -U postgres --auth=trust -E UTF8 >'$data/initdb.log' 2>&1"
  run_pg "'$bin/pg_ctl' -D '$data/db' -l '$data/pg.log' -w -t 30 -o \"-c listen_addresses=127.0.0.1 -p $PG_PORT -k '$data' -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start >/dev/null"
  psql "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" -qc "CREATE DATABASE dapr_test" >/dev/null
  PG_URL="host=127.0.0.1 port=$PG_PORT user=postgres dbname=dapr_test"
  export PG_URL
  PG_CTL="$bin/pg_ctl"
}

EXTRA_SERVICES=()
for f in "$(dirname "${BASH_SOURCE[0]}")"/services.d/*.sh; do
  [ -e "$f" ] || continue
  # shellcheck source=/dev/null
  source "$f"
  EXTRA_SERVICES+=("$(basename "$f" .sh)")
done

stop_services() {
  local s
  for s in "${EXTRA_SERVICES[@]}"; do
    "stop_$s" >/dev/null 2>&1 || true
  done
  if [ -f "$SERVICES_DIR/redis/redis.pid" ]; then
    kill "$(cat "$SERVICES_DIR/redis/redis.pid")" 2>/dev/null || true
  fi
  if [ -n "${PG_CTL:-}" ] && [ -d "$SERVICES_DIR/pg/db" ]; then
    if [ "$(id -un)" = root ]; then
      su postgres -s /bin/sh -c "'$PG_CTL' -D '$SERVICES_DIR/pg/db' -m fast stop" >/dev/null 2>&1 || true
    else
      "$PG_CTL" -D "$SERVICES_DIR/pg/db" -m fast stop >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$SERVICES_DIR"
}

start_redis
start_postgres
echo "services: redis 127.0.0.1:$REDIS_PORT, postgresql 127.0.0.1:$PG_PORT (state in $SERVICES_DIR)"
for s in "${EXTRA_SERVICES[@]}"; do
  "start_$s"
done
