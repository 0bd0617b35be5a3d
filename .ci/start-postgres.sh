#!/usr/bin/env bash
# Start a throwaway PostgreSQL 15 cluster for tests and print its DSN on stdout
# (all other messages go to stderr), e.g.
#
#   BERTH_TEST_POSTGRES_DSN=$(.ci/start-postgres.sh)
#
# usage: .ci/start-postgres.sh [DIR]      (default DIR: $BERTH_PG_DIR or /tmp/berth-pg)
#
# The cluster lives in DIR/data, logs to DIR/postgres.log, keeps its Unix socket
# in DIR and listens on 127.0.0.1:${BERTH_PG_PORT:-55432} with trust auth.
# It runs as the OS user postgres when started as root. Durability is switched
# off (fsync=off etc.): the data is disposable. Idempotent: if a server already
# answers on the port, it only makes sure the database exists and prints the DSN.
# Stop it with .ci/stop-postgres.sh.
set -euo pipefail

PGROOT="$(realpath -m -- "${1:-${BERTH_PG_DIR:-/tmp/berth-pg}}")"
PORT="${BERTH_PG_PORT:-55432}"
DB=berth_test
PGBIN="${BERTH_PG_BIN:-/usr/lib/postgresql/15/bin}"
DSN="postgres://postgres@127.0.0.1:$PORT/$DB?sslmode=disable"

log() { printf 'start-postgres: %s\n' "$*" >&2; }
cd /   # the postgres user may not be able to read the caller's cwd
[[ -x "$PGBIN/initdb" ]] || { log "$PGBIN/initdb not found (run .ci/install-tools.sh postgresql)"; exit 1; }

# Run a command as the postgres OS user when we are root, else as ourselves.
as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
psql_admin() { "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  log "a server is already running on 127.0.0.1:$PORT"
else
  mkdir -p "$PGROOT"
  if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$PGROOT"; fi   # data, log and socket dir must be postgres-owned
  if [[ ! -f "$PGROOT/data/PG_VERSION" ]]; then
    as_pg "$PGBIN/initdb" -D "$PGROOT/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PGROOT/initdb.log" 2>&1 ||
      { cat "$PGROOT/initdb.log" >&2; exit 1; }
  fi
  opts="-c listen_addresses=127.0.0.1 -p $PORT -k $PGROOT -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/postgres.log" -o "$opts" -w -t 60 start >/dev/null; then
    tail -n 20 "$PGROOT/postgres.log" >&2 || true
    exit 1
  fi
  log "started PostgreSQL on 127.0.0.1:$PORT (data: $PGROOT/data, log: $PGROOT/postgres.log)"
fi

if [[ -z "$(psql_admin -tAc "select 1 from pg_database where datname = '$DB'")" ]]; then
  psql_admin -c "create database $DB"
fi
printf '%s\n' "$DSN"
