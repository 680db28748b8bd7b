#!/usr/bin/env bash
# Installs what is missing, checks the formatting (`swift format lint --strict`, rules in .swift-format) and the alert
# rules and dashboard (`scripts/alerts-check.sh`: promtool's checks and rule tests, metric names), starts a throwaway
# PostgreSQL cluster under /tmp, builds, runs the whole test suite against it (a run that prints nothing for
# STALL_SECONDS, 480, is reported and killed: scripts/lib/stall-watch.sh), then, once the tests pass, `bash
# scripts/schema.sh --check` (Migrations/schema.sql is what the migrations make) and `bash scripts/quickstart.sh`
# (README.md's quickstart against a fresh service), both in the same cluster (TEST_DATABASE_URL) with the binary just
# built (SMS_RESELLER_BIN), `bash scripts/fault-suite.sh --short` (crashes and upstream faults under load; its own
# cluster), `bash scripts/pitr-drill.sh` (a point-in-time restore; its own clusters), a short
# `scripts/contract-fuzz.sh` (schemathesis against openapi.yaml, once per role), `bash scripts/deploy-check.sh`
# (deploy/ checked statically), `bash scripts/citus-check.sh` (docs/sharding.md's Citus mapping against schema.sql),
# `bash scripts/lb-check.sh` (two instances behind nginx under a stop and a kill; its own cluster) and `bash
# scripts/partition-rollover.sh` (a month rollover under traffic, the clocks moved with libfaketime; its own cluster).
# Stops and removes the cluster, and exits non-zero on any failure; the last line is the test run's summary, or the
# check that failed.
# Extra arguments go to `swift test` (e.g. --filter PoolTests).
set -euo pipefail
SCRIPT_NAME=test
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_base_packages
ensure_test_packages
ensure_swift

# Durability settings are off: this cluster lives for one test run only.
start_throwaway_cluster test \
    fsync=off synchronous_commit=off full_page_writes=off max_connections=400 shared_buffers=256MB

export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/postgres"
# Formatting first: it takes seconds and needs no build (.swift-format holds the rules).
log "checking formatting (swift format lint --strict)"
swift format lint --strict --recursive --parallel Sources Tests Package.swift
# Seconds, and no build either (installs Debian's prometheus package for promtool the first time).
log "checking the alert rules and the dashboard (scripts/alerts-check.sh)"
bash scripts/alerts-check.sh

log "building"
swift build --build-tests
SMS_RESELLER_BIN="$(swift build --show-bin-path)/sms-reseller"
[ -x "$SMS_RESELLER_BIN" ] || die "the build made no $SMS_RESELLER_BIN"
export SMS_RESELLER_BIN

log "running the tests"
test_log="$THROWAWAY_DIR/swift-test.log"
stall_report="$THROWAWAY_DIR/stall-report.txt"
# A hang fails the run after STALL_SECONDS of silence, saying what hung (scripts/lib/stall-watch.sh), instead of
# running into CI's time limit.
bash scripts/lib/stall-watch.sh $$ "$test_log" "$stall_report" "$TEST_DATABASE_URL" &
watcher=$!
at_exit "kill $watcher 2>/dev/null"
status=0
swift test --skip-build "$@" 2>&1 | tee "$test_log" || status=$?
kill "$watcher" 2>/dev/null || true
# The test run's closing summary, without colours: Swift Testing's, else XCTest's.
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$test_log" | grep -E 'Test run with [0-9]+ tests?' | tail -n 1 || true)
[ -n "$summary" ] || summary=$(grep -E 'Executed [0-9]+ tests?' "$test_log" | tail -n 1 || true)
if [ "$status" -ne 0 ]; then
    [ ! -s "$stall_report" ] || cat "$stall_report"
    log "swift test failed (exit $status); schema.sh --check, quickstart.sh, fault-suite.sh, pitr-drill.sh, contract-fuzz.sh, deploy-check.sh, citus-check.sh, lb-check.sh and partition-rollover.sh were not run"
    [ -z "$summary" ] || printf '%s\n' "$summary"
    exit "$status"
fi

failed=()
log "checking Migrations/schema.sql (scripts/schema.sh --check)"
bash scripts/schema.sh --check || failed+=("bash scripts/schema.sh --check")
log "running the quickstart (scripts/quickstart.sh)"
bash scripts/quickstart.sh || failed+=("bash scripts/quickstart.sh")
log "running the fault suite, short (scripts/fault-suite.sh --short)"
bash scripts/fault-suite.sh --short || failed+=("bash scripts/fault-suite.sh --short")
log "restoring to a point in time (scripts/pitr-drill.sh)"
bash scripts/pitr-drill.sh || failed+=("bash scripts/pitr-drill.sh")
log "fuzzing the contract, short (MAX_EXAMPLES=5 scripts/contract-fuzz.sh --max-time 45)"
MAX_EXAMPLES=5 bash scripts/contract-fuzz.sh --max-time 45 || failed+=("MAX_EXAMPLES=5 bash scripts/contract-fuzz.sh --max-time 45")
log "checking deploy/ statically (scripts/deploy-check.sh)"
bash scripts/deploy-check.sh || failed+=("bash scripts/deploy-check.sh")
log "checking the Citus mapping against the schema (scripts/citus-check.sh)"
bash scripts/citus-check.sh || failed+=("bash scripts/citus-check.sh")
log "two instances behind nginx, one stopped and one killed under traffic (scripts/lb-check.sh)"
GATEWAY_SIM_BIN="$(dirname "$SMS_RESELLER_BIN")/gateway1601-sim" bash scripts/lb-check.sh || failed+=("bash scripts/lb-check.sh")
log "a month rollover under traffic (scripts/partition-rollover.sh)"
bash scripts/partition-rollover.sh || failed+=("bash scripts/partition-rollover.sh")

if [ ${#failed[@]} -gt 0 ]; then
    printf '%s\n' "${summary:-swift test passed}"
    for check in "${failed[@]}"; do printf 'FAILED after the tests passed: %s\n' "$check"; done
    exit 1
fi
log "schema.sql is up to date; the quickstart, the fault suite, the restore drill, the contract fuzzing, the deploy check, the Citus check, the lb check and the month rollover passed"
printf '%s\n' "${summary:-swift test passed}"
