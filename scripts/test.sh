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

# Durability settings are off: this cluster lives for one test run only.
start_throwaway_cluster test \
    fsync=off synchronous_commit=off full_page_writes=off max_connections=400 shared_buffers=256MB

export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/postgres"
log "building"
swift build --build-tests
log "running the tests"
swift test --skip-build "$@"
