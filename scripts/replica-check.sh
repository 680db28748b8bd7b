#!/usr/bin/env bash
# Reports and exports from a streaming replica (docs/operations.md, "Read replica"), checked with a real one.
#
#   bash scripts/replica-check.sh
#
# 1. A throwaway primary, and `pg_basebackup -R` of it started as a hot standby streaming from it (both under /tmp).
# 2. `sms-reseller serve` with DATABASE_URL on the primary and REPORTS_DATABASE_URL on the standby, the simulator;
#    the fault suite's tenant is made over HTTP and REPLICA_SENDS messages (default 10) are sent and settled.
# 3. The usage report (accepted view) and a messages export are read: they count every message, carry dataAsOf /
#    replicationLagSeconds and X-Data-As-Of.
# 4. Replay is paused on the standby (`pg_wal_replay_pause()`), more messages are sent (they go to the primary and
#    are accepted): the report still counts the old number, its dataAsOf is before those sends and its lag grows.
# 5. Replay resumes: the report counts every message again.
# 6. With REPLICA_SWIFT_TEST=1 (and a build with tests), `swift test --skip-build --filter ReadReplicaTests` with
#    TEST_DATABASE_URL on the primary and REPLICA_DATABASE_URL on the standby.
#
# Uses SMS_RESELLER_BIN when set, else builds (debug); gateway1601-sim is taken from beside it.
set -euo pipefail
SCRIPT_NAME=replica-check
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

sends=${REPLICA_SENDS:-10}
ensure_base_packages
ensure_packages python3 curl
resolve_sms_reseller_binary
bin=$SMS_RESELLER_BIN
sim_bin="$(dirname "$bin")/gateway1601-sim"
[ -x "$sim_bin" ] || die "no gateway1601-sim beside $bin (swift build --product gateway1601-sim)"
pgbin=$(pg_bindir)
psql_at() { "$pgbin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

start_throwaway_cluster replica fsync=off wal_level=replica max_wal_senders=4
PRIMARY_URL="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/postgres"
standby_port=$(free_port)
while [ "$standby_port" = "$THROWAWAY_PORT" ]; do standby_port=$(free_port); done
as_postgres "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$THROWAWAY_PORT" -U postgres -D "$THROWAWAY_DIR/standby" -R \
    -X stream -c fast >/dev/null || die "pg_basebackup -R failed"
at_exit "pg_stop $(printf %q "$THROWAWAY_DIR/standby")"
pg_start "$THROWAWAY_DIR/standby" "$standby_port" "$THROWAWAY_DIR" "$THROWAWAY_DIR/standby.log" fsync=off hot_standby=on
STANDBY_URL="postgresql://postgres@127.0.0.1:$standby_port/postgres"
[ "$(psql_at "$STANDBY_URL" "SELECT pg_is_in_recovery()")" = t ] || die "the standby is not in recovery"
log "primary on 127.0.0.1:$THROWAWAY_PORT, streaming standby on 127.0.0.1:$standby_port"
work=$THROWAWAY_DIR/check
mkdir -p "$work"

export DATABASE_URL=$PRIMARY_URL
"$bin" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate failed"; }
admin=$("$bin" admin create-key --name "replica check" 2>>"$work/migrate.log" | tail -n 1)
sim_port=$(free_port)
"$sim_bin" --port "$sim_port" --log-level warning >"$work/simulator.log" 2>&1 &
sim_pid=$!
at_exit "kill $sim_pid 2>/dev/null; wait $sim_pid 2>/dev/null"
SIM="http://127.0.0.1:$sim_port"
service_port=$(free_port)
API="http://127.0.0.1:$service_port"
REPORTS_DATABASE_URL=$STANDBY_URL PORT=$service_port UPSTREAM_1601_URL=$SIM UPSTREAM_1601_USERNAME=sandbox \
    UPSTREAM_1601_PASSWORD=sandbox LOG_LEVEL=notice "$bin" serve >"$work/service.log" 2>&1 &
service_pid=$!
at_exit "stop_service $service_pid"
wait_until_ready "$service_pid" "$work/service.log"
python3 scripts/lib/drill_client.py setup "$API" "$SIM" "$admin" "$API" >"$work/state.json"

# settle: waits until no message is queued or submitted (on the primary) and the standby has replayed everything.
settle() {
    local tries=0
    until [ "$(psql_at "$PRIMARY_URL" "SELECT count(*) FROM message WHERE status IN ('queued', 'submitted')")" = 0 ]; do
        tries=$((tries + 1)); [ $tries -lt 600 ] || die "messages are not final after 120 s"; sleep 0.2
    done
    local lsn
    lsn=$(psql_at "$PRIMARY_URL" "SELECT pg_current_wal_lsn()")
    tries=0
    until [ "$(psql_at "$STANDBY_URL" "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ]; do
        tries=$((tries + 1)); [ $tries -lt 600 ] || die "the standby did not catch up within 120 s"; sleep 0.2
    done
}
# report: "MESSAGES DATA_AS_OF LAG" from the usage report (accepted view) as the admin sees it.
report() {
    curl -sf -H "Authorization: Bearer $admin" \
        "$API/reports/usage?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&view=accepted" \
        | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["totals"]["messages"], r["dataAsOf"], r["replicationLagSeconds"])'
}

python3 scripts/lib/drill_client.py send "$work/state.json" "$API" "$sends" "$work/sent.jsonl" first
settle
read -r counted as_of lag <<<"$(report)"
export_headers=$(curl -s -o "$work/messages.csv" -D - -H "Authorization: Bearer $admin" \
    "$API/exports/messages?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z" | tr -d '\r')
exported=$(( $(wc -l <"$work/messages.csv") - 1 ))
export_as_of=$(printf '%s\n' "$export_headers" | sed -n 's/^[Xx]-[Dd]ata-[Aa]s-[Oo]f: //p')
log "caught up: report counts $counted of $sends (dataAsOf $as_of, lag $lag s); export $exported rows, X-Data-As-Of $export_as_of"
[ "$counted" = "$sends" ] && [ "$exported" = "$sends" ] && [ -n "$export_as_of" ] || die "the replica's report or export is wrong"

psql_at "$STANDBY_URL" "SELECT pg_wal_replay_pause()" >/dev/null
paused_at=$(date -u +%Y-%m-%dT%H:%M:%S)
sleep 1
python3 scripts/lib/drill_client.py send "$work/state.json" "$API" "$sends" "$work/sent.jsonl" second
sleep 2
read -r counted_paused as_of_paused lag_paused <<<"$(report)"
primary_count=$(psql_at "$PRIMARY_URL" "SELECT count(*) FROM message")
log "replay paused at $paused_at: the primary holds $primary_count messages, the report counts $counted_paused (dataAsOf $as_of_paused, lag $lag_paused s)"
[ "$counted_paused" = "$sends" ] && [ "$primary_count" = $((2 * sends)) ] \
    && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 2 else 1)' "$lag_paused" \
    || die "the report did not come from the paused replica, or its lag does not show it"

psql_at "$STANDBY_URL" "SELECT pg_wal_replay_resume()" >/dev/null
settle
read -r counted_resumed as_of_resumed lag_resumed <<<"$(report)"
printf 'replica-check: caught up %s/%s, paused %s/%s (lag %s s), resumed %s/%s (lag %s s); export %s rows, X-Data-As-Of %s\n' \
    "$counted" "$sends" "$counted_paused" "$primary_count" "$lag_paused" "$counted_resumed" "$primary_count" \
    "$lag_resumed" "$exported" "$export_as_of"
[ "$counted_resumed" = "$primary_count" ] || die "the report did not catch up after replay resumed"

if [ "${REPLICA_SWIFT_TEST:-0}" = 1 ]; then
    log "swift test --filter ReadReplicaTests with the standby"
    TEST_DATABASE_URL=$PRIMARY_URL REPLICA_DATABASE_URL=$STANDBY_URL swift test --skip-build --filter ReadReplicaTests
fi
log "reports and exports read from the replica and say how current they are"
