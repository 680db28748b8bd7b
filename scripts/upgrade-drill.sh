#!/usr/bin/env bash
# The upgrade drill (docs/operations.md, "Upgrades"): the previous release keeps serving sends while the new
# migrations are applied and the new release starts beside it; then the previous one is taken out of rotation and
# stopped. Zero sends may fail, and the books must hold.
#
#   bash scripts/upgrade-drill.sh [PREVIOUS_COMMIT]
#
# PREVIOUS_COMMIT (default: the parent of the commit that added the newest migration file) is exported with
# `git archive` into /tmp/sms-reseller-prev-<commit>/src and built there (debug; its build folder is kept and reused,
# a cold build takes 15-25 minutes on two cores). The new release is SMS_RESELLER_BIN when set, else built (debug).
#
# 1. A throwaway cluster, migrated by the previous release's `migrate`; the previous release serves (instance a),
#    the fault suite's tenant is made over HTTP, and client 1 sends through a, one send after another.
# 2. The new release's `migrate` applies the new migrations while a serves; then the new release serves beside it
#    (instance b), and client 2 sends through a and b in turn.
# 3. Client 3 sends through b only; clients 1 and 2 stop (a is out of rotation); a gets SIGTERM and stops
#    gracefully; client 3 keeps sending a few seconds, then stops.
# 4. Every message must reach a final state; the new release's `verify-ledger` must pass and `migrate status` must
#    show every migration applied.
# Prints "upgrade-drill: sent=N failed=0 …" and exits non-zero on any failed send or check.
set -euo pipefail
SCRIPT_NAME=upgrade-drill
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_base_packages
ensure_packages python3 curl
newest=$(ls Sources/ResellerCore/Migrations/ | grep -E '^[0-9]+_.*\.sql$' | sort | tail -n 1)
previous=${1:-$(git rev-parse "$(git log --diff-filter=A --format=%H -1 -- "Sources/ResellerCore/Migrations/$newest")^")}
previous=$(git rev-parse --short=12 "$previous")
prev_dir=/tmp/sms-reseller-prev-$previous
prev_bin=$prev_dir/build/debug/sms-reseller
if [ ! -x "$prev_bin" ]; then
    ensure_swift
    if [ ! -d "$prev_dir/src" ]; then
        mkdir -p "$prev_dir/src"
        git archive "$previous" | tar -x -C "$prev_dir/src"
        # The same dependency versions as this checkout when its manifest's dependencies are the same.
        [ -f Package.resolved ] && cp Package.resolved "$prev_dir/src/"
    fi
    log "building the previous release $previous (debug) in $prev_dir/build; this takes a while"
    build_started=$SECONDS
    swift build --package-path "$prev_dir/src" --scratch-path "$prev_dir/build" --product sms-reseller \
        >"$prev_dir/build.log" 2>&1 || { tail -n 30 "$prev_dir/build.log" >&2; die "the previous release did not build"; }
    log "built in $((SECONDS - build_started)) s"
fi
resolve_sms_reseller_binary
new_bin=$SMS_RESELLER_BIN
sim_bin="$(dirname "$new_bin")/gateway1601-sim"
[ -x "$sim_bin" ] || die "no gateway1601-sim beside $new_bin (swift build --product gateway1601-sim)"
pgbin=$(pg_bindir)
psql_at() { "$pgbin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "$1"; }

start_throwaway_cluster upgrade fsync=off synchronous_commit=off max_connections=100
work=$THROWAWAY_DIR/drill
mkdir -p "$work"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/postgres"
log "previous release $previous ($(ls "$prev_dir/src/Sources/ResellerCore/Migrations" | grep -cE '^[0-9]+_') migrations), new release $(git rev-parse --short=12 HEAD) ($(ls Sources/ResellerCore/Migrations | grep -cE '^[0-9]+_') migrations)"

sim_port=$(free_port)
"$sim_bin" --port "$sim_port" --log-level warning >"$work/simulator.log" 2>&1 &
sim_pid=$!
at_exit "kill $sim_pid 2>/dev/null; wait $sim_pid 2>/dev/null"
SIM="http://127.0.0.1:$sim_port"

declare -A pids ports
# start_instance NAME BINARY: `serve` (no --migrate) of BINARY on a free port, waited for until ready.
start_instance() {
    local name=$1 binary=$2 tries=0
    ports[$name]=$(free_port)
    PORT=${ports[$name]} UPSTREAM_1601_URL=$SIM UPSTREAM_1601_USERNAME=sandbox UPSTREAM_1601_PASSWORD=sandbox \
        REPORT_POLL_AFTER_MINUTES=1 LOG_LEVEL=notice "$binary" serve >>"$work/$name.log" 2>&1 &
    pids[$name]=$!
    at_exit "stop_service ${pids[$name]}"
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[$name]}/health/ready" || true)" = 200 ]; do
        tries=$((tries + 1))
        [ $tries -lt 300 ] || { tail -n 30 "$work/$name.log" >&2; die "instance $name did not become ready"; }
        kill -0 "${pids[$name]}" 2>/dev/null || { tail -n 30 "$work/$name.log" >&2; die "instance $name exited"; }
        sleep 0.2
    done
}
declare -A clients
# start_client NAME API…: a client sending one message after another through the APIs in turn until stopped.
start_client() {
    local name=$1
    shift
    python3 scripts/lib/drill_client.py load "$work/state.json" "$work/stop-$name" "$work/sent-$name.jsonl" "$@" \
        >"$work/client-$name.out" 2>&1 &
    clients[$name]=$!
}
# stop_client NAME: lets it finish its send in progress; fails the drill when any of its sends failed.
stop_client() {
    touch "$work/stop-$1"
    wait "${clients[$1]}" || { cat "$work/client-$1.out" >&2; die "client $1 had failed sends: $(grep -m 3 problem "$work/sent-$1.jsonl")"; }
    log "client $1: $(tail -n 1 "$work/client-$1.out")"
}

"$prev_bin" migrate >"$work/migrate-previous.log" 2>&1 || { cat "$work/migrate-previous.log" >&2; die "the previous release's migrate failed"; }
admin=$("$prev_bin" admin create-key --name "upgrade drill" 2>>"$work/migrate-previous.log" | tail -n 1)
start_instance a "$prev_bin"
A="http://127.0.0.1:${ports[a]}"
python3 scripts/lib/drill_client.py setup "$A" "$SIM" "$admin" "$A" >"$work/state.json"
log "instance a (previous release) serves on $A; client 1 sends through it"
start_client 1 "$A"
sleep 3

log "the new release's migrate, while a serves"
"$new_bin" migrate status >"$work/status-before.txt" 2>&1 || true
migrate_started=$SECONDS
"$new_bin" migrate >"$work/migrate-new.log" 2>&1 || { cat "$work/migrate-new.log" >&2; die "the new release's migrate failed"; }
log "migrated in $((SECONDS - migrate_started)) s: $(grep -c '^pending' "$work/status-before.txt" || true) migrations applied"
start_instance b "$new_bin"
B="http://127.0.0.1:${ports[b]}"
# Delivery reports go to b from now on: a is about to stop (a report lost meanwhile is polled after a minute).
python3 - "$B" "$SIM" "$admin" <<'PY'
import sys
sys.path.insert(0, "scripts/lib")
from fault_load import call, must
api, sim, admin = sys.argv[1:]
connection = must(200, call("GET", f"{api}/upstream-connections", admin), "connections")["items"][0]
must(200, call("PATCH", f"{sim}/_sim/accounts/sandbox", None, {"callbackURL": api + connection["callbackPath"]}),
     "simulator callback URL")
PY
log "instance b (new release) serves on $B; client 2 sends through a and b in turn"
start_client 2 "$A" "$B"
sleep 5
log "a out of rotation: client 3 sends through b; clients 1 and 2 stop"
start_client 3 "$B"
stop_client 1
stop_client 2
log "SIGTERM to a (previous release)"
kill -TERM "${pids[a]}"
wait "${pids[a]}" 2>/dev/null || true
sleep 3
stop_client 3

sent=$(cat "$work"/sent-*.jsonl | wc -l)
failed=$(cat "$work"/sent-*.jsonl | grep -c '"problem"' || true)
tries=0
open=1
until [ "$open" = 0 ]; do
    open=$(psql_at "SELECT count(*) FROM message WHERE status IN ('queued', 'scheduled', 'submitted')")
    tries=$((tries + 1))
    [ $tries -lt 1200 ] || die "$open messages are not final after 240 s"
    sleep 0.2
done
verify=$("$new_bin" verify-ledger 2>>"$work/verify.log" | tail -n 1) || true
"$new_bin" migrate status >"$work/status-after.txt" 2>&1 || true
status_line=$(tail -n 1 "$work/status-after.txt")
messages=$(psql_at "SELECT count(*) FROM message")
printf 'upgrade-drill: sent=%s failed=%s messages=%s all final; %s; %s\n' "$sent" "$failed" "$messages" "$verify" "$status_line"
[ "$failed" = 0 ] && [ "$messages" = "$sent" ] && [ "$verify" = invariants=ok ] && [[ $status_line == *"pending=0 changed=0 unknown=0" ]] \
    || die "the upgrade was not clean (logs in $work)"
log "the previous release served throughout the migration and beside the new one; nothing failed"
