#!/usr/bin/env bash
# Two sms-reseller instances behind nginx, on one database, and what happens when one goes away under traffic. The
# last line is "N passed, N failed"; the exit status is non-zero on any failure.
#   bash scripts/lb-check.sh          builds sms-reseller and gateway1601-sim (debug) first
#   SMS_RESELLER_BIN=… GATEWAY_SIM_BIN=… bash scripts/lb-check.sh    uses those binaries, builds nothing
#   SENDS=5000 CLIENTS=4 bash scripts/lb-check.sh                     the traffic phase: the most sends per client,
#                                                                     and clients sending at once
# It starts, all on 127.0.0.1 and free ports, and stops at exit: a throwaway PostgreSQL under /tmp (as the postgres
# user), gateway1601-sim (every message delivered, reports within a second), instances A and B (`serve --migrate`,
# the simulator as their upstream) and nginx (Debian's package, installed when missing without starting its own
# service) running deploy/nginx/sms-reseller.conf with its ports and log rewritten. Then, through nginx only:
#   1. the quickstart's set-up (an admin key from `sms-reseller admin create-key`, a reseller, prices, a sub-account,
#      a sender name, credits), the simulator's callbacks pointed at nginx;
#   2. 20 sends, one scheduled send cancelled; every message delivered by its callback (through nginx); both instances
#      served requests (nginx's access log, $upstream_addr);
#   3. CLIENTS loops of sends, each send with its own Idempotency-Key and retried with the same key until it is accepted (as a
#      client should), from before A is stopped gracefully (SIGTERM) until A was started again and, 6 s later
#      (past nginx's fail_timeout), B killed (SIGKILL), and 3 s more;
#      first attempts that failed are counted by when they failed; only those in flight when an instance went away
#      may have;
#   4. every send accepted once: one message per key, each delivered, the sub-account charged for each once (its
#      balance), and `sms-reseller verify-ledger` clean.
set -euo pipefail
SCRIPT_NAME=lb-check
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

[ "$(id -u)" -eq 0 ] || die "run as root: PostgreSQL runs as the postgres user, nginx may need installing"
ensure_base_packages
ensure_packages curl jq
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    # The package would start its own nginx on port 80; a policy-rc.d says no for the length of the install.
    policy_added=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_added=yes
    fi
    ensure_packages nginx
    [ -z "$policy_added" ] || rm -f /usr/sbin/policy-rc.d
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
most_sends=${SENDS:-5000}
clients=${CLIENTS:-4}

if [ -z "${SMS_RESELLER_BIN:-}" ] || [ -z "${GATEWAY_SIM_BIN:-}" ]; then
    ensure_swift
    log "building sms-reseller and gateway1601-sim (debug)"
    swift build --product sms-reseller >/dev/null
    swift build --product gateway1601-sim >/dev/null
    SMS_RESELLER_BIN=${SMS_RESELLER_BIN:-$(swift build --show-bin-path)/sms-reseller}
    GATEWAY_SIM_BIN=${GATEWAY_SIM_BIN:-$(swift build --show-bin-path)/gateway1601-sim}
fi

passed=0
failed=0
check() { # check DESCRIPTION COMMAND…
    local description=$1
    shift
    if "$@" >/dev/null 2>&1; then
        passed=$((passed + 1))
        printf '  ok    %s\n' "$description"
    else
        failed=$((failed + 1))
        printf '  FAIL  %s\n' "$description"
    fi
}

start_throwaway_cluster lb-check fsync=off synchronous_commit=off max_connections=200
dir=$THROWAWAY_DIR/lb
mkdir -p "$dir"
psql_db() { "$(pg_bindir)/psql" -X -At -q -h 127.0.0.1 -p "$THROWAWAY_PORT" -U postgres -d sms_reseller "$@"; }
"$(pg_bindir)/psql" -X -q -h 127.0.0.1 -p "$THROWAWAY_PORT" -U postgres -d postgres -c "CREATE DATABASE sms_reseller"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/sms_reseller"

sim_port=$(free_port)
port_a=$(free_port)
port_b=$(free_port)
nginx_port=$(free_port)
log "the simulator on $sim_port, A on $port_a, B on $port_b, nginx on $nginx_port"
"$GATEWAY_SIM_BIN" --port "$sim_port" --seed 1 --outcomes 100,0,0 --delivery-delays-ms 100,300,600 \
    >"$dir/sim.log" 2>&1 &
sim_pid=$!
at_exit "kill -TERM $sim_pid 2>/dev/null || true"
credentials_key=$(head -c 32 /dev/urandom | base64)

# start_instance NAME PORT: `sms-reseller serve --migrate` with the simulator as its upstream; sets INSTANCE_PID.
# Short leases and settle times, so what a killed instance held is taken over within seconds, and a report lost with
# it is polled for after a minute.
start_instance() {
    local name=$1 port=$2
    env -i PATH="$PATH" HOME="${HOME:-/root}" DATABASE_URL="$DATABASE_URL" \
        UPSTREAM_1601_URL="http://127.0.0.1:$sim_port" UPSTREAM_1601_USERNAME=sandbox UPSTREAM_1601_PASSWORD=sandbox \
        UPSTREAM_CREDENTIALS_KEY="$credentials_key" TRUSTED_PROXIES=127.0.0.1/32 \
        DISPATCHER_POLL_INTERVAL_MS=100 DISPATCHER_LEASE_SECONDS=5 DISPATCHER_IN_DOUBT_SETTLE_SECONDS=2 \
        REPORT_POLL_AFTER_MINUTES=1 \
        "$SMS_RESELLER_BIN" serve --migrate --port "$port" >>"$dir/$name.log" 2>&1 &
    INSTANCE_PID=$!
    at_exit "stop_service $INSTANCE_PID"
    API=http://127.0.0.1:$port wait_until_ready "$INSTANCE_PID" "$dir/$name.log"
}
# One after the other: the first creates the default upstream connection.
start_instance a "$port_a"
pid_a=$INSTANCE_PID
start_instance b "$port_b"
pid_b=$INSTANCE_PID

# nginx: deploy/nginx/sms-reseller.conf with this run's ports and log, in a main configuration of its own.
mkdir -p "$dir/nginx/temp"
chmod 777 "$dir/nginx/temp"
sed -e "s|server 127.0.0.1:8081 |server 127.0.0.1:$port_a |; s|server 127.0.0.1:8082 |server 127.0.0.1:$port_b |" \
    -e "s|listen 80;|listen 127.0.0.1:$nginx_port;|" \
    -e "s|/var/log/nginx/sms-reseller.access.log|$dir/nginx/access.log|" \
    deploy/nginx/sms-reseller.conf >"$dir/nginx/site.conf"
grep -q "127.0.0.1:$port_a" "$dir/nginx/site.conf" && grep -q "127.0.0.1:$port_b" "$dir/nginx/site.conf" \
    && grep -q "listen 127.0.0.1:$nginx_port;" "$dir/nginx/site.conf" \
    || die "deploy/nginx/sms-reseller.conf no longer has the lines lb-check rewrites (server 127.0.0.1:8081/8082, listen 80)"
cat >"$dir/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 512; }
http {
    client_body_temp_path $dir/nginx/temp/body;
    proxy_temp_path $dir/nginx/temp/proxy;
    fastcgi_temp_path $dir/nginx/temp/fastcgi;
    uwsgi_temp_path $dir/nginx/temp/uwsgi;
    scgi_temp_path $dir/nginx/temp/scgi;
    include $dir/nginx/site.conf;
}
EOF
"$nginx_bin" -t -q -c "$dir/nginx/nginx.conf" -p "$dir/nginx" || die "nginx -t refused the configuration"
"$nginx_bin" -c "$dir/nginx/nginx.conf" -p "$dir/nginx" &
nginx_pid=$!
at_exit "kill -QUIT $nginx_pid 2>/dev/null || true"
API=http://127.0.0.1:$nginx_port
for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/health/ready")" = 200 ] && break
    sleep 0.1
done
check "nginx (deploy/nginx/sms-reseller.conf) passes requests on: /health/ready 200" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$API/health/ready")" = 200

# api METHOD PATH KEY [BODY] [EXTRA CURL ARGUMENTS…]: through nginx; prints the body, then the status on a line of its own.
api() {
    local method=$1 path=$2 key=$3 body=${4:-}
    shift 4 || shift $#
    curl -s -X "$method" "$API$path" -H "Authorization: Bearer $key" \
        ${body:+-H "Content-Type: application/json" -d "$body"} -w '\n%{http_code}' "$@"
}
# must STATUS METHOD PATH KEY [BODY] [ARGS…]: api, dies unless it answers STATUS; prints the body.
must() {
    local want=$1 answer status
    shift
    answer=$(api "$@")
    status=${answer##*$'\n'}
    [ "$status" = "$want" ] || die "$1 $2 answered $status, not $want: ${answer%$'\n'*}"
    printf '%s\n' "${answer%$'\n'*}"
}

log "1. set-up through nginx"
admin=$("$SMS_RESELLER_BIN" admin create-key --name lb-check 2>/dev/null | tail -n 1)
reseller=$(must 201 POST /resellers "$admin" '{"name": "LB Messaging"}' | jq -r .id)
reseller_key=$(must 201 POST "/resellers/$reseller/api-keys" "$admin" '{"name": "lb"}' | jq -r .secret)
must 201 POST "/resellers/$reseller/top-ups" "$admin" '{"amount": "100000", "paymentReference": "lb"}' \
    -H "Idempotency-Key: lb-top-up" >/dev/null
cost=$(must 201 POST /price-lists "$admin" '{"layer": "upstream_cost", "name": "1601SMS"}' | jq -r .id)
must 201 POST "/price-lists/$cost/versions" "$admin" '{"entries": [{"prefix": "31", "price": "0.0400"}]}' >/dev/null
wholesale=$(must 201 POST /price-lists "$admin" '{"layer": "wholesale", "name": "Wholesale"}' | jq -r .id)
must 201 POST "/price-lists/$wholesale/versions" "$admin" '{"entries": [{"prefix": "31", "price": "0.0550"}]}' >/dev/null
must 200 PATCH /price-defaults "$admin" \
    '{"upstreamCostPriceListId": "'"$cost"'", "wholesalePriceListId": "'"$wholesale"'"}' >/dev/null
sub=$(must 201 POST /sub-accounts "$reseller_key" \
    '{"name": "LB Bakery", "username": "lb-bakery", "password": "correct horse battery staple"}' | jq -r .id)
sub_key=$(must 201 POST "/sub-accounts/$sub/api-keys" "$reseller_key" '{"name": "shop"}' | jq -r .secret)
retail=$(must 201 POST /price-lists "$reseller_key" '{"layer": "retail", "name": "Retail"}' | jq -r .id)
must 201 POST "/price-lists/$retail/versions" "$reseller_key" '{"entries": [{"prefix": "31", "price": "0.0725"}]}' >/dev/null
must 200 PUT "/sub-accounts/$sub/retail-price-list" "$reseller_key" '{"priceListId": "'"$retail"'"}' >/dev/null
sender=$(must 201 POST /sender-names "$sub_key" '{"name": "LBShop"}' | jq -r .id)
must 200 POST "/sender-names/$sender/approve" "$reseller_key" >/dev/null
must 201 POST "/sub-accounts/$sub/credit-transfers" "$reseller_key" \
    '{"amount": "1000", "direction": "to_sub_account"}' -H "Idempotency-Key: lb-credits" >/dev/null
callback=$(must 200 GET /upstream-connections "$admin" | jq -r '.items[0].callbackPath')
curl -s -X PATCH "http://127.0.0.1:$sim_port/_sim/accounts/sandbox" -H "Content-Type: application/json" \
    -d '{"callbackURL": "'"$API$callback"'"}' >/dev/null
check "set-up through nginx: reseller, prices, sub-account, sender name, credits" test -n "$sub_key"

# send KEY: one message through nginx with Idempotency-Key KEY; prints the HTTP status (000: no answer) and the
# Idempotent-Replayed header (true when the answer is the first attempt's, replayed).
send() {
    curl -s -o /dev/null -w '%{http_code} %header{idempotent-replayed}' -m 20 -X POST "$API/sub-accounts/$sub/messages" \
        -H "Authorization: Bearer $sub_key" -H "Idempotency-Key: $1" -H "Content-Type: application/json" \
        -d '{"sender": "LBShop", "text": "lb-check '"$1"'", "recipients": ["+31 6 1234 5678"]}' || true
}

log "2. 20 sends and a cancelled scheduled one"
ok=0
for i in $(seq 1 20); do
    status=$(send "warm-$i")
    [ "${status% *}" = 201 ] && ok=$((ok + 1))
done
check "20 sends accepted (201)" test "$ok" -eq 20
schedule_at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
scheduled=$(must 201 POST "/sub-accounts/$sub/messages" "$sub_key" \
    '{"sender": "LBShop", "text": "later", "recipients": ["+31 6 1234 5678"], "scheduleAt": "'"$schedule_at"'"}' \
    -H "Idempotency-Key: lb-scheduled" | jq -r '.messages[0].id')
cancelled=$(must 200 POST "/sub-accounts/$sub/messages/$scheduled/cancel" "$sub_key" "" -H "Idempotency-Key: lb-cancel" \
    | jq -r '.cancelled[0]')
check "a scheduled send cancelled through nginx" test "$cancelled" = "$scheduled" -a \
    "$(psql_db -c "SELECT status FROM message WHERE id = '$scheduled'")" = cancelled
delivered_all() { # delivered_all COUNT: COUNT messages delivered and none waiting, within 150 s
    local i
    for i in $(seq 1 300); do
        [ "$(psql_db -c "SELECT count(*) FILTER (WHERE status = 'delivered') = $1 AND count(*) FILTER (WHERE status IN ('queued', 'submitted')) = 0 FROM message")" = t ] && return 0
        sleep 0.5
    done
    return 1
}
check "the 20 messages delivered, their reports through nginx" delivered_all 20
reports=$(grep -c "POST $callback\|GET $callback" "$dir/nginx/access.log" || true)
log "delivery report callbacks through nginx: $reports"
check "  the simulator's callbacks reached the service through nginx" test "$reports" -ge 20
served_by() { awk -v a="upstream=127.0.0.1:$1" 'index($0, a) { n++ } END { print n + 0 }' "$dir/nginx/access.log"; }
log "requests served: A $(served_by "$port_a"), B $(served_by "$port_b")"
check "both instances served requests (access log, \$upstream_addr)" \
    test "$(served_by "$port_a")" -gt 0 -a "$(served_by "$port_b")" -gt 0

log "3. sends with Idempotency-Keys while A stops (SIGTERM) and starts again, then B is killed (SIGKILL)"
events=$dir/events
: >"$events"
traffic() { # traffic CLIENT: one client's loop
    local i key status attempts
    for i in $(seq 1 "$most_sends"); do
        [ ! -e "$dir/stop-traffic" ] || break
        key="load-$1-$i"
        attempts=0
        while :; do
            attempts=$((attempts + 1))
            status=$(send "$key")
            # time, key, attempt, status, replayed
            printf '%s %s %s %s %s\n' "$(date +%s.%N)" "$key" "$attempts" ${status% *} "${status#* }" >>"$events"
            [ "${status% *}" = 201 ] && break
            [ "$attempts" -lt 20 ] || break
            sleep 0.2
        done
    done
}
traffic_pids=()
for client in $(seq 1 "$clients"); do
    traffic "$client" &
    traffic_pids+=($!)
    at_exit "kill $! 2>/dev/null || true"
done
sleep 3
term_at=$(date +%s.%N)
log "SIGTERM to A ($pid_a)"
kill -TERM "$pid_a"
status_a=0
wait "$pid_a" || status_a=$?
term_done=$(date +%s.%N)
check "A stopped gracefully on SIGTERM (exit 0)" test "$status_a" -eq 0
sleep 1
start_instance a "$port_a"
pid_a=$INSTANCE_PID
log "A serves again ($pid_a)"
# nginx tries an instance that failed again only after fail_timeout (5 s): killing B sooner would leave it none.
sleep 6
kill_at=$(date +%s.%N)
log "SIGKILL to B ($pid_b)"
kill -KILL "$pid_b"
wait "$pid_b" 2>/dev/null || true
sleep 3
touch "$dir/stop-traffic"
for pid in "${traffic_pids[@]}"; do wait "$pid" || true; done
sends=$(awk '{ print $2 }' "$events" | sort -u | wc -l)
kill_seen=$(awk -v k="$kill_at" '$1 > k { n++ } END { print n + 0 }' "$events")
check "traffic went on after the kill ($kill_seen requests)" test "$kill_seen" -gt 0

# First attempts that failed, by when: from the SIGTERM until A had stopped (plus 1 s), around the SIGKILL (1 s
# either side), or at another time (none may).
read -r first_failed at_term at_kill elsewhere <<<"$(awk -v t0="$term_at" -v t1="$term_done" -v k="$kill_at" '
    $3 == 1 && $4 != 201 { n++; if ($1 >= t0 && $1 <= t1 + 1) t++; else if ($1 >= k - 1 && $1 <= k + 1) kk++; else o++ }
    END { print n + 0, t + 0, kk + 0, o + 0 }' "$events")"
accepted=$(awk '$4 == 201 { print $2 }' "$events" | sort -u | wc -l)
retried=$(awk '$3 > 1 { print $2 }' "$events" | sort -u | wc -l)
# A retry answered with Idempotent-Replayed: true had been accepted by its first attempt, whose answer was lost.
replayed=$(awk '$3 > 1 && $4 == 201 && $5 == "true"' "$events" | wc -l)
statuses=$(awk '$4 != 201 { print $4 }' "$events" | sort | uniq -c | awk '{ printf "%s×%s ", $1, $2 }')
log "first attempts failed: $first_failed (during the graceful stop: $at_term, at the kill: $at_kill, at other times: $elsewhere); failed answers: ${statuses:-none}"
check "every one of the $sends sends accepted in the end (retried with its Idempotency-Key)" test "$accepted" -eq "$sends"
check "no send failed outside the stop and the kill" test "$elsewhere" -eq 0

log "4. the books"
check "every message delivered, none waiting (A took over what B held)" delivered_all $((20 + sends))
log "messages by status: $(psql_db -c "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) AS n FROM message GROUP BY status) s")"
distinct=$(psql_db -c "SELECT count(*) = count(DISTINCT text) FROM message_batch WHERE text LIKE 'lb-check load-%'")
batches=$(psql_db -c "SELECT count(*) FROM message_batch WHERE text LIKE 'lb-check load-%'")
check "one message per Idempotency-Key ($batches for $sends keys, retried ones included)" \
    test "$distinct" = t -a "$batches" -eq "$sends"
delivered=$(psql_db -c "SELECT count(*) FROM message WHERE status = 'delivered'")
balance=$(must 200 GET /accounts "$admin" | jq -r '.items[] | select(.kind == "sub_account_wallet") | .balance')
expected=$(awk -v n="$delivered" 'BEGIN { printf "%.4f", 1000 - n * 0.0725 }')
log "sub-account balance $balance for $delivered delivered messages at 0.0725 (expected $expected)"
check "the sub-account charged once per message (balance $balance = 1000 - $delivered × 0.0725)" test "$balance" = "$expected"
# Outbox rows of messages that are no longer waiting: what B had claimed when it was killed, whose message was
# settled meanwhile (its delivery report came); the dispatcher drops such a row when B's lease has run out.
stale_rows() { psql_db -c "SELECT count(*) FROM message_outbox o JOIN message m ON m.id = o.message_id WHERE m.status NOT IN ('queued', 'scheduled')"; }
stale_at_start=$(stale_rows)
waited=0
while [ "$(stale_rows)" -gt 0 ] && [ "$waited" -lt 120 ]; do sleep 1; waited=$((waited + 1)); done
stale_left=$(stale_rows)
log "outbox rows of settled messages: $stale_at_start when all were delivered, $stale_left after ${waited} s"
check "no outbox row left for a settled message (the dispatcher drops them once the dead instance's lease ran out)" \
    test "$stale_left" -eq 0
verify_status=0
"$SMS_RESELLER_BIN" verify-ledger >"$dir/verify-ledger.log" 2>&1 || verify_status=$?
check "sms-reseller verify-ledger: every invariant holds" test "$verify_status" -eq 0
[ "$verify_status" -eq 0 ] || grep -v '^ok\|^[0-9-]*T[0-9:]' "$dir/verify-ledger.log" >&2 || true
served_a=$(served_by "$port_a")
served_b=$(served_by "$port_b")
passed_on=$(grep -c 'upstream=[^ ]*, ' "$dir/nginx/access.log" || true)
no_live=$(grep -c 'no live upstreams' "$dir/nginx/error.log" || true)

printf '\nlb-check summary: two instances behind nginx on 127.0.0.1:%s\n' "$nginx_port"
printf '  requests served by A %s, by B %s; passed on to the other instance by nginx %s; "no live upstreams" %s\n' \
    "$served_a" "$served_b" "$passed_on" "$no_live"
printf '  %s sends under the stop of A and the kill of B: %s accepted, %s needed a retry by the client, of which %s\n' \
    "$sends" "$accepted" "$retried" "$replayed"
printf '    had been accepted by the attempt that failed (the retry answered Idempotent-Replayed, charged once)\n'
printf '  first attempts failed: %s (graceful stop %s, kill %s, other %s); answers: %s\n' "$first_failed" "$at_term" "$at_kill" "$elsewhere" "${statuses:-none}"
printf '  messages delivered %s, sub-account balance %s (expected %s)\n' "$delivered" "$balance" "$expected"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
