#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1 for the store tests and prints its URL.
# The cluster lives in /tmp (the postgres user must reach it) and is stopped by `scripts/test-postgres.sh stop`.
set -euo pipefail

dir="${TMPDIR:-/tmp}/sipprov-test-postgres"
port=${SIPPROV_TEST_PG_PORT:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ "${1:-start}" = stop ]; then
  [ -d "$dir/data" ] && su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -m fast stop" >/dev/null 2>&1 || true
  exit 0
fi
if [ ! -d "$dir/data" ]; then
  mkdir -p "$dir" && chown postgres "$dir"
  su postgres -s /bin/sh -c "$bin/initdb -D '$dir/data' -A trust -U postgres" >/dev/null
fi
su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -o '-p $port -k $dir -c listen_addresses=127.0.0.1' -l '$dir/log' -w start" >/dev/null 2>&1 || true
su postgres -s /bin/sh -c "$bin/psql -h 127.0.0.1 -p $port -U postgres -tc \"SELECT 1 FROM pg_database WHERE datname='sipprov_test'\"" | grep -q 1 \
  || su postgres -s /bin/sh -c "$bin/createdb -h 127.0.0.1 -p $port -U postgres sipprov_test"
echo "postgres://postgres@127.0.0.1:$port/sipprov_test"
