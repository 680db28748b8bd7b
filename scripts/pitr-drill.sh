#!/usr/bin/env bash
# The point-in-time restore drill (docs/operations.md, "Backups"): proves on this machine that a base backup plus
# archived WAL brings the database back to a chosen moment, with exactly the messages accepted before it.
#
#   bash scripts/pitr-drill.sh
#
# 1. A throwaway cluster under /tmp (fsync on, wal_level=replica, archive_mode=on, an archive_command copying each
#    WAL segment into a folder), the 1601 simulator (gateway1601-sim) and `sms-reseller serve` on it; the fault
#    suite's tenant is made over HTTP.
# 2. Sends (phase a), then `pg_basebackup`, then sends (phase b), one after another, each answer recorded.
# 3. A pause, the target time read from the server's clock, a pause: every send of phase b was answered (so
#    committed) before the target, and no send of phase c starts before it.
# 4. Sends (phase c), `pg_switch_wal()`, and a wait until that segment is archived.
# 5. The base backup copied into a NEW cluster with restore_command, recovery_target_time = the target,
#    recovery_target_action = promote and recovery.signal; it is started and replays the archive up to the target.
# 6. `sms-reseller verify-ledger` on the restored database must pass; the restored messages must be exactly those of
#    phases a and b (the id sets are compared); the service must start on it (dispatcher off, as docs/operations.md
#    says to do after a restore) and answer for a restored message.
#
# Prints a summary and exits non-zero on any failure. Uses SMS_RESELLER_BIN when set (scripts/test.sh sets it), else
# builds (debug); gateway1601-sim is taken from beside it. PITR_SENDS (default 10) is the number of sends per phase.
set -euo pipefail
SCRIPT_NAME=pitr-drill
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

sends=${PITR_SENDS:-10}
[[ $sends =~ ^[0-9]+$ && $sends -ge 1 ]] || die "PITR_SENDS must be a positive whole number"
ensure_base_packages
ensure_packages python3 curl
resolve_sms_reseller_binary
bin=$SMS_RESELLER_BIN
sim_bin="$(dirname "$bin")/gateway1601-sim"
[ -x "$sim_bin" ] || die "no gateway1601-sim beside $bin (swift build --product gateway1601-sim)"
started_at=$SECONDS
pgbin=$(pg_bindir)

work=$(mktemp -d /tmp/sms-reseller-pitr.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/archive" "$work/client"
give_to_postgres "$work"
at_exit "rm -rf $(printf %q "$work")"
port=$(free_port)
restored_port=$(free_port)
while [ "$restored_port" = "$port" ]; do restored_port=$(free_port); done
at_exit "pg_stop $(printf %q "$work/primary")"
at_exit "pg_stop $(printf %q "$work/restored")"

log "primary cluster on 127.0.0.1:$port (fsync on, WAL archived to $work/archive)"
as_postgres "$pgbin/initdb" -D "$work/primary" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >>"$work/primary/postgresql.conf" <<EOF
# pitr-drill
fsync = on
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $work/archive/%f && cp %p $work/archive/%f'
max_wal_senders = 4
EOF
pg_start "$work/primary" "$port" "$work" "$work/primary.log"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
psql_at() { "$pgbin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

sim_port=$(free_port)
"$sim_bin" --port "$sim_port" --log-level warning >"$work/client/simulator.log" 2>&1 &
sim_pid=$!
at_exit "kill $sim_pid 2>/dev/null; wait $sim_pid 2>/dev/null"
SIM="http://127.0.0.1:$sim_port"

# serve_on URL PORT LOG [VAR=value…]: the service on the database URL, waited for until ready; sets SERVICE_PID.
serve_on() {
    local url=$1 service_port=$2 logfile=$3 tries=0
    shift 3
    env DATABASE_URL="$url" PORT="$service_port" UPSTREAM_1601_URL="$SIM" UPSTREAM_1601_USERNAME=sandbox \
        UPSTREAM_1601_PASSWORD=sandbox LOG_LEVEL=notice "$@" "$bin" serve >>"$logfile" 2>&1 &
    SERVICE_PID=$!
    at_exit "kill $SERVICE_PID 2>/dev/null; wait $SERVICE_PID 2>/dev/null"
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$service_port/health/ready" || true)" = 200 ]; do
        tries=$((tries + 1))
        [ $tries -lt 300 ] || { tail -n 30 "$logfile" >&2; die "the service did not become ready"; }
        kill -0 "$SERVICE_PID" 2>/dev/null || { tail -n 30 "$logfile" >&2; die "the service exited"; }
        sleep 0.2
    done
}

"$bin" migrate >"$work/client/migrate.log" 2>&1 || { cat "$work/client/migrate.log" >&2; die "migrate failed"; }
admin=$("$bin" admin create-key --name "pitr drill" 2>>"$work/client/migrate.log" | tail -n 1)
service_port=$(free_port)
serve_on "$DATABASE_URL" "$service_port" "$work/client/service.log"
API="http://127.0.0.1:$service_port"
python3 scripts/lib/drill_client.py setup "$API" "$SIM" "$admin" "$API" >"$work/client/state.json"
sent="$work/client/sent.jsonl"

log "phase a: $sends sends, then pg_basebackup"
python3 scripts/lib/drill_client.py send "$work/client/state.json" "$API" "$sends" "$sent" a
as_postgres "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$work/base" -X stream -c fast \
    >"$work/client/basebackup.log" 2>&1 || { cat "$work/client/basebackup.log" >&2; die "pg_basebackup failed"; }
log "phase b: $sends sends after the base backup"
python3 scripts/lib/drill_client.py send "$work/client/state.json" "$API" "$sends" "$sent" b
# Every send of phases a and b has been answered, so committed; the pauses keep the target apart from both sides.
sleep 1
target=$(psql_at "$DATABASE_URL" "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 1
log "target time $target; phase c: $sends sends after it"
python3 scripts/lib/drill_client.py send "$work/client/state.json" "$API" "$sends" "$sent" c
last_segment=$(psql_at "$DATABASE_URL" "SELECT pg_walfile_name(pg_switch_wal())")
tries=0
until [ "$(psql_at "$DATABASE_URL" "SELECT last_archived_wal >= '$last_segment' FROM pg_stat_archiver")" = t ]; do
    tries=$((tries + 1))
    [ $tries -lt 300 ] || die "WAL segment $last_segment was not archived within 60 s"
    sleep 0.2
done
primary_messages=$(psql_at "$DATABASE_URL" "SELECT count(*) FROM message")
kill "$SERVICE_PID" 2>/dev/null || true
wait "$SERVICE_PID" 2>/dev/null || true
log "archived up to $last_segment ($(ls "$work/archive" | wc -l) files); the primary holds $primary_messages messages"

log "restoring the base backup into a new cluster on 127.0.0.1:$restored_port, up to $target"
cp -a "$work/base" "$work/restored"
cat >>"$work/restored/postgresql.conf" <<EOF
# pitr-drill: the restore
archive_mode = off
restore_command = 'cp $work/archive/%f %p'
recovery_target_time = '$target'
recovery_target_action = 'promote'
EOF
as_postgres touch "$work/restored/recovery.signal"
pg_start "$work/restored" "$restored_port" "$work" "$work/restored.log"
RESTORED_URL="postgresql://postgres@127.0.0.1:$restored_port/postgres"
tries=0
until [ "$(psql_at "$RESTORED_URL" "SELECT pg_is_in_recovery()" 2>/dev/null || true)" = f ]; do
    tries=$((tries + 1))
    [ $tries -lt 600 ] || { tail -n 20 "$work/restored.log" >&2; die "the restored cluster did not finish recovery"; }
    sleep 0.2
done
recovery_line=$(grep -E "recovery stopping|last completed transaction" "$work/restored.log" | tail -n 2 | tr '\n' ' ')

verify_output=$(DATABASE_URL=$RESTORED_URL "$bin" verify-ledger 2>>"$work/client/verify.log") \
    || { printf '%s\n' "$verify_output" >&2; die "verify-ledger failed on the restored database"; }
verdict=$(printf '%s\n' "$verify_output" | tail -n 1)

python3 scripts/lib/drill_client.py ids "$sent" a b >"$work/client/expected.txt"
python3 scripts/lib/drill_client.py ids "$sent" c >"$work/client/after.txt"
psql_at "$RESTORED_URL" "SELECT id FROM message ORDER BY id" | sort >"$work/client/restored.txt"
missing=$(comm -23 "$work/client/expected.txt" "$work/client/restored.txt" | wc -l)
extra=$(comm -13 "$work/client/expected.txt" "$work/client/restored.txt" | wc -l)
after_target=$(comm -12 "$work/client/after.txt" "$work/client/restored.txt" | wc -l)

restored_service_port=$(free_port)
serve_on "$RESTORED_URL" "$restored_service_port" "$work/client/restored-service.log" DISPATCHER=off
sub=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["subAccount"])' "$work/client/state.json")
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["subAccountKey"])' "$work/client/state.json")
probe=$(tail -n 1 "$work/client/expected.txt")
probe_status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" \
    "http://127.0.0.1:$restored_service_port/sub-accounts/$sub/messages/$probe")

printf 'pitr-drill: target %s; %s\n' "$target" "$recovery_line"
printf 'pitr-drill: accepted before the target %s, after it %s; the primary held %s messages, the restore holds %s\n' \
    "$(wc -l <"$work/client/expected.txt")" "$(wc -l <"$work/client/after.txt")" "$primary_messages" \
    "$(wc -l <"$work/client/restored.txt")"
printf 'pitr-drill: missing=%s extra=%s after_target_restored=%s verify-ledger: %s; restored service GET message: %s; %s s\n' \
    "$missing" "$extra" "$after_target" "$verdict" "$probe_status" "$((SECONDS - started_at))"
[ "$missing" = 0 ] && [ "$extra" = 0 ] && [ "$after_target" = 0 ] && [ "$verdict" = invariants=ok ] \
    && [ "$probe_status" = 200 ] || die "the restore is not what was accepted before the target"
log "the restore holds exactly the messages accepted before the target, and its books hold"
