#!/usr/bin/env bash
# The service behind a real PgBouncer in transaction pooling (docs/operations.md, "PgBouncer"): Debian's pgbouncer
# (1.18 on Debian 12) with its configuration under /tmp, in front of a throwaway cluster.
#
#   bash scripts/pgbouncer-check.sh
#
# 1. A throwaway cluster; the database sms_reseller gets the session settings the service otherwise sends in the
#    startup packet (`ALTER DATABASE … SET`), because PgBouncer 1.18 refuses the `options` startup parameter and is
#    told to ignore it (ignore_startup_parameters = options).
# 2. PgBouncer on a free port: pool_mode = transaction, auth_type = trust; the database sms_reseller (pool_size 4)
#    and pooled_one (the postgres database, pool_size 1, for the Swift test). Two `sms-reseller migrate` at once
#    through it (the migrator's advisory locks are transaction-scoped: each migration must be applied once, by one of
#    them), then the first admin key.
# 3. `sms-reseller serve` through PgBouncer with DB_PREPARED_STATEMENTS=off and the simulator: the fault suite's
#    tenant is made over HTTP, PGBOUNCER_SENDS messages (default 40) are sent from 4 clients at once, and it waits
#    until each has its delivery report; then the usage report, the balance report and an export are read through it, and
#    `sms-reseller verify-ledger` (through it too) must pass.
# 4. With PGBOUNCER_SWIFT_TEST=1 (and a build with tests), `swift test --skip-build --filter PgBouncerTests` with
#    PGBOUNCER_URL pointing at pooled_one: named prepared statements fail there, unnamed ones pass.
#
# Uses SMS_RESELLER_BIN when set, else builds (debug); gateway1601-sim is taken from beside it.
set -euo pipefail
SCRIPT_NAME=pgbouncer-check
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

sends=${PGBOUNCER_SENDS:-40}
ensure_base_packages
ensure_packages python3 curl pgbouncer
resolve_sms_reseller_binary
bin=$SMS_RESELLER_BIN
sim_bin="$(dirname "$bin")/gateway1601-sim"
[ -x "$sim_bin" ] || die "no gateway1601-sim beside $bin (swift build --product gateway1601-sim)"
pgbin=$(pg_bindir)
psql_at() { "$pgbin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

start_throwaway_cluster pgbouncer fsync=off synchronous_commit=off
work=$THROWAWAY_DIR/check
mkdir -p "$work"
give_to_postgres "$work"
passed=false
at_exit '$passed || { cp -r "$work" "/tmp/pgbouncer-check-logs.$$" && log "logs kept in /tmp/pgbouncer-check-logs.$$"; }'
DIRECT_URL="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/sms_reseller"
psql_at "postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/postgres" "CREATE DATABASE sms_reseller"
for database in sms_reseller postgres; do
    psql_at "postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/postgres" "
        ALTER DATABASE $database SET TimeZone = 'UTC';
        ALTER DATABASE $database SET DateStyle = 'ISO';
        ALTER DATABASE $database SET bytea_output = 'hex';
        ALTER DATABASE $database SET extra_float_digits = 3;
        ALTER DATABASE $database SET statement_timeout = '30s';"
done

bouncer_port=$(free_port)
cat >"$work/pgbouncer.ini" <<EOF
[databases]
sms_reseller = host=127.0.0.1 port=$THROWAWAY_PORT dbname=sms_reseller pool_size=4
pooled_one = host=127.0.0.1 port=$THROWAWAY_PORT dbname=postgres pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir = $work
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = transaction
ignore_startup_parameters = options
max_client_conn = 200
server_reset_query =
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
EOF
printf '"postgres" ""\n' >"$work/userlist.txt"
give_to_postgres "$work"
as_postgres pgbouncer -d "$work/pgbouncer.ini" || die "pgbouncer did not start"
at_exit "kill \$(cat $(printf %q "$work/pgbouncer.pid") 2>/dev/null) 2>/dev/null"
BOUNCER_URL="postgresql://postgres@127.0.0.1:$bouncer_port/sms_reseller"
tries=0
until psql_at "$BOUNCER_URL" "SELECT 1" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ $tries -lt 100 ] || { cat "$work/pgbouncer.log" >&2; die "pgbouncer does not answer"; }
    sleep 0.1
done
log "$(pgbouncer --version | head -n 1) on 127.0.0.1:$bouncer_port, pool_mode = transaction, in front of 127.0.0.1:$THROWAWAY_PORT"

log "two migrate at once through PgBouncer"
DATABASE_URL=$BOUNCER_URL DB_PREPARED_STATEMENTS=off "$bin" migrate >"$work/migrate-1.log" 2>&1 &
first=$!
DATABASE_URL=$BOUNCER_URL DB_PREPARED_STATEMENTS=off "$bin" migrate >"$work/migrate-2.log" 2>&1 \
    || { cat "$work/migrate-2.log" >&2; die "migrate (2) failed through PgBouncer"; }
wait "$first" || { cat "$work/migrate-1.log" >&2; die "migrate (1) failed through PgBouncer"; }
applied_once=$(psql_at "$DIRECT_URL" "SELECT count(*) = count(DISTINCT version) AND count(*) > 0 FROM schema_migrations")
by_either=$(cat "$work/migrate-1.log" "$work/migrate-2.log" | grep -c "applied migration" || true)
[ "$applied_once" = t ] && [ "$by_either" = "$(psql_at "$DIRECT_URL" "SELECT count(*) FROM schema_migrations")" ] \
    || die "the two migrate runs did not apply each migration once (applied lines: $by_either)"
log "each of the $by_either migrations applied once, by one of the two ($(grep -c "applied migration" "$work/migrate-1.log" || true) and $(grep -c "applied migration" "$work/migrate-2.log" || true))"
admin=$(DATABASE_URL=$BOUNCER_URL DB_PREPARED_STATEMENTS=off "$bin" admin create-key --name "pgbouncer check" \
    2>>"$work/migrate-1.log" | tail -n 1)

sim_port=$(free_port)
"$sim_bin" --port "$sim_port" --log-level warning >"$work/simulator.log" 2>&1 &
sim_pid=$!
at_exit "kill $sim_pid 2>/dev/null; wait $sim_pid 2>/dev/null"
SIM="http://127.0.0.1:$sim_port"
service_port=$(free_port)
API="http://127.0.0.1:$service_port"
DATABASE_URL=$BOUNCER_URL PORT=$service_port DB_PREPARED_STATEMENTS=off DB_POOL_MAX=12 UPSTREAM_1601_URL=$SIM \
    UPSTREAM_1601_USERNAME=sandbox UPSTREAM_1601_PASSWORD=sandbox LOG_LEVEL=notice \
    "$bin" serve >"$work/service.log" 2>&1 &
service_pid=$!
at_exit "stop_service $service_pid"
wait_until_ready "$service_pid" "$work/service.log"

python3 scripts/lib/drill_client.py setup "$API" "$SIM" "$admin" "$API" >"$work/state.json"
per_client=$(( (sends + 3) / 4 ))
log "sending $((per_client * 4)) messages from 4 clients at once, through PgBouncer"
client_pids=()
for client in 1 2 3 4; do
    python3 scripts/lib/drill_client.py send "$work/state.json" "$API" "$per_client" "$work/sent-$client.jsonl" "c$client" &
    client_pids+=($!)
done
for pid in "${client_pids[@]}"; do wait "$pid" || die "a client's send failed (service log: $work/service.log)"; done
accepted=$(cat "$work"/sent-*.jsonl | wc -l)
tries=0
delivered=0
# The simulator's outcomes: 90 % DELIVERED, 7 % NOT DELIVERED, 3 % REJECTED (docs/simulator.md).
until [ "$delivered" -ge "$accepted" ]; do
    delivered=$(psql_at "$DIRECT_URL" "SELECT count(*) FROM message WHERE status IN ('delivered', 'not_delivered', 'rejected')")
    tries=$((tries + 1))
    [ $tries -lt 600 ] || die "only $delivered of $accepted messages have their final report after 120 s"
    sleep 0.2
done
usage=$(curl -s -o "$work/usage.json" -w '%{http_code}' -H "Authorization: Bearer $admin" \
    "$API/reports/usage?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&groupBy=country")
reported=$(python3 -c 'import json,sys; print(sum(r["figures"]["messages"] for r in json.load(open(sys.argv[1]))["rows"]))' \
    "$work/usage.json" 2>/dev/null || echo "?")
balances=$(curl -s -o "$work/balances.json" -w '%{http_code}' -H "Authorization: Bearer $admin" "$API/reports/balances")
export_status=$(curl -s -o "$work/messages.csv" -w '%{http_code}' -H "Authorization: Bearer $admin" \
    "$API/exports/messages?from=2026-01-01T00:00:00Z&to=2100-01-01T00:00:00Z")
exported=$(( $(wc -l <"$work/messages.csv") - 1 ))
verify=$(DATABASE_URL=$BOUNCER_URL DB_PREPARED_STATEMENTS=off "$bin" verify-ledger 2>>"$work/verify.log" | tail -n 1) || true
server_errors=$(grep -c ' error ' "$work/service.log" || true)
printf 'pgbouncer-check: accepted=%s reported=%s usage=%s (%s messages) balances=%s export=%s (%s rows) %s service_log_errors=%s\n' \
    "$accepted" "$delivered" "$usage" "$reported" "$balances" "$export_status" "$exported" "$verify" "$server_errors"
[ "$usage" = 200 ] && [ "$reported" = "$accepted" ] && [ "$balances" = 200 ] && [ "$export_status" = 200 ] \
    && [ "$exported" = "$accepted" ] && [ "$verify" = invariants=ok ] \
    || die "the service did not work through PgBouncer (logs in $work)"

if [ "${PGBOUNCER_SWIFT_TEST:-0}" = 1 ]; then
    log "swift test --filter PgBouncerTests through pooled_one (pool_size 1)"
    PGBOUNCER_URL="postgresql://postgres@127.0.0.1:$bouncer_port/pooled_one" \
        swift test --skip-build --filter PgBouncerTests
fi
passed=true
log "sends, reports, exports and verify-ledger work through PgBouncer in transaction pooling"
