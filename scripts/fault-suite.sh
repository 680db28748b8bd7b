#!/usr/bin/env bash
# The fault suite (docs/testing.md, "The fault suite"): two service instances as separate processes on one PostgreSQL,
# the 1601 simulator as a third with injected faults (latency, ERROR 120 and 150, connection resets, hangs, answers
# lost after the send was carried out, duplicate, out-of-order and lost delivery reports), and careful clients sending
# single and bulk messages, retrying with the same Idempotency-Key after any error. Meanwhile one instance is killed
# with SIGKILL twice at random moments (and restarted), and PostgreSQL is stopped in immediate mode and restarted once.
# Then the faults stop, it waits until every message is in a final state, and checks: every accepted message exists,
# no key was accepted twice, nothing was charged twice, each message reached the simulator at most once, and
# `sms-reseller verify-ledger` finds every invariant holding. It prints one line,
#   accepted=N lost=0 double_accepted=0 double_charged=0 duplicate_sends=0 invariants=ok
# and exits non-zero when any figure is not zero (or something is not final, or a client got no final answer).
#
#   bash scripts/fault-suite.sh [--short]
#
# --short (what CI runs): 45 s of load, 8 clients. Otherwise 180 s, 16 clients. FAULT_SUITE_SECONDS,
# FAULT_SUITE_CLIENTS and FAULT_SUITE_SEED override (the seed picks the clients' messages, the moments of the kills
# and the simulator's faults). Uses SMS_RESELLER_BIN when set (scripts/test.sh sets it), else builds (debug).
# Logs stay in the work folder printed at the start when the suite fails.
set -euo pipefail
SCRIPT_NAME=fault-suite
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

short=false
case "${1:-}" in
    --short) short=true ;;
    "") ;;
    *) die "usage: bash scripts/fault-suite.sh [--short]" ;;
esac
seconds=${FAULT_SUITE_SECONDS:-$($short && echo 45 || echo 180)}
clients=${FAULT_SUITE_CLIENTS:-$($short && echo 8 || echo 16)}
seed=${FAULT_SUITE_SEED:-$(( (RANDOM << 15) | RANDOM ))}
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 20 ]] || die "FAULT_SUITE_SECONDS must be a whole number, at least 20"
[[ $clients =~ ^[0-9]+$ && $clients -ge 1 ]] || die "FAULT_SUITE_CLIENTS must be a positive whole number"
[[ $seed =~ ^[0-9]+$ ]] || die "FAULT_SUITE_SEED must be a whole number"

ensure_base_packages
ensure_packages python3 curl
resolve_sms_reseller_binary
bin=$SMS_RESELLER_BIN
sim_bin="$(dirname "$bin")/gateway1601-sim"
if [ ! -x "$sim_bin" ]; then
    ensure_swift
    log "building gateway1601-sim"
    swift build -c "${BUILD_CONFIGURATION:-debug}" --product gateway1601-sim
    sim_bin="$(swift build -c "${BUILD_CONFIGURATION:-debug}" --show-bin-path)/gateway1601-sim"
fi

# Its own cluster: the suite stops it in immediate mode. Commits are durable as in production (fsync is off: an
# immediate stop loses nothing the operating system holds).
start_throwaway_cluster fault fsync=off max_connections=200
work=$THROWAWAY_DIR/suite
mkdir -p "$work"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/postgres"
log "seed $seed, $seconds s, $clients clients; work folder $work"
failed_keep() { log "the suite failed: logs in $work (kept)"; cp -r "$work" "/tmp/fault-suite-$seed-$$"; log "copied to /tmp/fault-suite-$seed-$$"; }

rng_state=$seed
# random LOW HIGH: a whole number in [LOW, HIGH], from the seed.
random_between() {
    rng_state=$(( (rng_state * 1103515245 + 12345) % 2147483648 ))
    echo $(( $1 + rng_state % ($2 - $1 + 1) ))
}

sim_port=$(free_port)
"$sim_bin" --port "$sim_port" --seed "$seed" --log-level warning >"$work/simulator.log" 2>&1 &
sim_pid=$!
at_exit "kill $sim_pid 2>/dev/null; wait $sim_pid 2>/dev/null"
SIM="http://127.0.0.1:$sim_port"

port_a=$(free_port)
port_b=$(free_port)
while [ "$port_b" = "$port_a" ]; do port_b=$(free_port); done
declare -A pids
# start_instance NAME PORT: a service instance with short leases and waits, logging to $work/NAME.log.
start_instance() {
    local name=$1 port=$2
    PORT=$port UPSTREAM_1601_URL=$SIM UPSTREAM_1601_USERNAME=sandbox UPSTREAM_1601_PASSWORD=sandbox \
        DISPATCHER_LEASE_SECONDS=30 DISPATCHER_IN_DOUBT_SETTLE_SECONDS=5 DISPATCHER_BACKOFF_CAP_SECONDS=5 \
        DISPATCHER_RETRY_DEADLINE_MINUTES=5 \
        REPORT_POLL_AFTER_MINUTES=1 DB_POOL_MAX=20 LOG_LEVEL=${FAULT_SUITE_LOG_LEVEL:-notice} \
        "$bin" serve >>"$work/$name.log" 2>&1 &
    pids[$name]=$!
    local tries=0
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/ready" || true)" = 200 ]; do
        tries=$((tries + 1))
        [ $tries -lt 300 ] || { tail -n 30 "$work/$name.log" >&2; die "instance $name did not become ready"; }
        kill -0 "${pids[$name]}" 2>/dev/null || { tail -n 30 "$work/$name.log" >&2; die "instance $name exited"; }
        sleep 0.2
    done
}
stop_instances() {
    local name
    for name in "${!pids[@]}"; do kill "${pids[$name]}" 2>/dev/null || true; done
    for name in "${!pids[@]}"; do wait "${pids[$name]}" 2>/dev/null || true; done
}
at_exit stop_instances

"$bin" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate failed"; }
admin=$("$bin" admin create-key --name "fault suite" 2>>"$work/migrate.log" | tail -n 1)
start_instance a "$port_a"
start_instance b "$port_b"
API_A="http://127.0.0.1:$port_a" API_B="http://127.0.0.1:$port_b"
# Delivery reports go to instance b, which is never killed (the simulator sends each callback once; a lost one is
# found by the report poller).
python3 scripts/lib/fault_load.py setup "$API_A" "$SIM" "$admin" "$API_B" >"$work/state.json"

curl -sf -X PUT "$SIM/_sim/faults" -H "Content-Type: application/json" -d '{
    "latencyMinimumMilliseconds": 2, "latencyMaximumMilliseconds": 60,
    "gatewayErrorRate": 0.03, "maintenanceErrorRate": 0.02, "dropRate": 0.02,
    "hangRate": 0.01, "hangMilliseconds": 3000, "answerLossRate": 0.03,
    "callbackLossRate": 0.03, "callbackDuplicateRate": 0.05, "callbackOutOfOrderRate": 0.05}' >/dev/null

log "load: $clients clients for $seconds s on both instances"
python3 scripts/lib/fault_load.py load "$work/state.json" "$seconds" "$clients" "$seed" "$work/sends.jsonl" \
    "$API_A" "$API_B" 2>"$work/load.log" &
load_pid=$!

# The chaos, at moments drawn from the seed: SIGKILL of a, PostgreSQL stopped in immediate mode, SIGKILL of a again.
started=$SECONDS
at_second() { local wait=$(( $1 - (SECONDS - started) )); [ $wait -le 0 ] || sleep "$wait"; }
kill_a() {
    at_second "$1"
    log "SIGKILL instance a (at ${1} s)"
    kill -KILL "${pids[a]}" 2>/dev/null || true
    wait "${pids[a]}" 2>/dev/null || true
    sleep "$(random_between 1 4)"
    start_instance a "$port_a"
    log "instance a is back"
}
kill_a "$(random_between $((seconds * 10 / 100)) $((seconds * 35 / 100)))"
at_second "$(random_between $((seconds * 40 / 100)) $((seconds * 55 / 100)))"
log "PostgreSQL: immediate stop"
as_postgres "$(pg_bindir)/pg_ctl" -D "$THROWAWAY_DIR/data" -m immediate -w stop >/dev/null
sleep "$(random_between 2 5)"
pg_start "$THROWAWAY_DIR/data" "$THROWAWAY_PORT" "$THROWAWAY_DIR" "$THROWAWAY_DIR/postgres.log" fsync=off max_connections=200
log "PostgreSQL is back"
kill_a "$(random_between $((seconds * 60 / 100)) $((seconds * 85 / 100)))"

wait "$load_pid" || { cat "$work/load.log" >&2; die "the load clients failed"; }
log "load done: $(tail -n 1 "$work/load.log")"

# Quiet: no more faults; every message must reach a final state (lost callbacks are polled after a minute).
curl -sf -X PUT "$SIM/_sim/faults" -H "Content-Type: application/json" -d '{
    "latencyMinimumMilliseconds": 0, "latencyMaximumMilliseconds": 0, "gatewayErrorRate": 0,
    "maintenanceErrorRate": 0, "dropRate": 0, "hangRate": 0, "answerLossRate": 0, "callbackLossRate": 0,
    "callbackDuplicateRate": 0, "callbackOutOfOrderRate": 0}' >/dev/null
psql_q() { "$(pg_bindir)/psql" -X -A -t -q -d "$DATABASE_URL" -c "$1"; }
final="'delivered', 'not_delivered', 'rejected', 'expired', 'failed', 'cancelled'"
waited=0
while :; do
    open=$(psql_q "SELECT count(*) FROM message WHERE status NOT IN ($final)")
    [ "$open" -gt 0 ] || break
    [ $waited -lt 600 ] || { log "still $open messages not final after 600 s"; break; }
    [ $((waited % 30)) -ne 0 ] || log "waiting for $open messages to reach a final state"
    sleep 5
    waited=$((waited + 5))
done

if [ "$open" -gt 0 ]; then
    # What became of them, for the report (the cluster goes when the script ends).
    psql_q "SELECT m.id, m.status, m.upstream_id, m.submitted_at, m.next_poll_at, m.poll_attempts, o.attempts,
                   o.possibly_sent, o.due_at, o.leased_by
            FROM message m LEFT JOIN message_outbox o ON o.message_id = m.id
            WHERE m.status NOT IN ($final) ORDER BY m.id LIMIT 20" >"$work/not-final.txt"
    psql_q "SELECT e.message_id, e.seq, e.status, e.code, e.detail, e.occurred_at FROM message_event e
            WHERE e.message_id IN (SELECT id FROM message WHERE status NOT IN ($final) ORDER BY id LIMIT 20)
            ORDER BY e.message_id, e.seq" >>"$work/not-final.txt"
fi

verify=0
"$bin" verify-ledger >"$work/verify-ledger.txt" 2>>"$work/migrate.log" || verify=$?
grep -v '^ok ' "$work/verify-ledger.txt" >&2 || true
status=0
line=$(PATH="$(pg_bindir):$PATH" python3 scripts/lib/fault_load.py check "$work/state.json" "$work/sends.jsonl" "$SIM" \
    "$DATABASE_URL" "$work/verify-ledger.txt") || status=$?
[ $verify -eq 0 ] || [ $status -ne 0 ] || status=$verify
log "sends in doubt resolved: $(psql_q "SELECT count(*) FILTER (WHERE status = 'submitted'), count(*) FILTER (WHERE status = 'queued')
    FROM message_event WHERE detail LIKE 'in doubt;%'" | tr '|' ' ' | awk '{ print $1 " found at the upstream, " $2 " proven not taken and sent again" }')"
[ $status -eq 0 ] || failed_keep
printf '%s\n' "$line"
exit $status
