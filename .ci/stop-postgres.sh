#!/usr/bin/env bash
# Stop the throwaway PostgreSQL cluster started by .ci/start-postgres.sh.
#
# usage: .ci/stop-postgres.sh [--rm] [DIR]   (default DIR: $BERTH_PG_DIR or /tmp/berth-pg)
#   --rm   also delete DIR afterwards
set -euo pipefail

remove=no
if [[ "${1:-}" == --rm ]]; then remove=yes; shift; fi
PGROOT="$(realpath -m -- "${1:-${BERTH_PG_DIR:-/tmp/berth-pg}}")"
PGBIN="${BERTH_PG_BIN:-/usr/lib/postgresql/15/bin}"
cd /   # the postgres user may not be able to read the caller's cwd

as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ -f "$PGROOT/data/postmaster.pid" ]] && as_pg "$PGBIN/pg_ctl" -D "$PGROOT/data" status >/dev/null 2>&1; then
  as_pg "$PGBIN/pg_ctl" -D "$PGROOT/data" -m fast -w stop >/dev/null
  echo "stop-postgres: stopped PostgreSQL in $PGROOT/data" >&2
else
  echo "stop-postgres: no PostgreSQL running in $PGROOT/data" >&2
fi

if [[ $remove == yes && -d "$PGROOT" ]]; then
  rm -rf -- "$PGROOT"
  echo "stop-postgres: removed $PGROOT" >&2
fi
