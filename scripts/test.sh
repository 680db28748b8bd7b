#!/usr/bin/env bash
# Installs what is missing, starts a throwaway PostgreSQL cluster under /tmp, runs the whole
# test suite against it, stops and removes the cluster, and exits non-zero on any failure.
# Extra arguments go to `swift test` (e.g. --filter PoolTests).
set -euo pipefail
SCRIPT_NAME=test
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_base_packages
ensure_swift

work=$(mktemp -d /tmp/sms-reseller-test.XXXXXX)
chmod 755 "$work"
give_to_postgres "$work"
port=$(free_port)
cleanup() {
    pg_stop "$work/data"
    rm -rf "$work"
}
trap cleanup EXIT

log "throwaway PostgreSQL on 127.0.0.1:$port in $work"
as_postgres "$(pg_bindir)/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
# Durability settings are off: this cluster lives for one test run only.
pg_start "$work/data" "$port" "$work" "$work/postgres.log" \
    fsync=off synchronous_commit=off full_page_writes=off max_connections=400 shared_buffers=256MB

export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
log "building"
swift build --build-tests
log "running the tests"
swift test --skip-build "$@"
