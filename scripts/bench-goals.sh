#!/usr/bin/env bash
# The performance goals of issue 18, each against its baseline, in one run on one throwaway PostgreSQL (default
# durability: fsync and synchronous_commit on). The service is the release `sms-reseller serve`, its own process;
# the upstream is `gateway1601-sim`, its own process, without added latency; the load comes from other processes
# (wrk with the Lua scripts in scripts/lib/wrk, curl, pgbench, pg-pool-bench). No process is pinned to a core.
#   1. single-recipient sends over HTTP at CLIENTS connections from one sub-account, spread over 100 sub-accounts of
#      10 resellers, and through GET /module/gateway.php; each run next to pgbench tpcb-like at the same client
#      count, ROUNDS times, alternating (ours, pgbench, ours, pgbench …); req/s, p50, p99, tps, ratio per round;
#   2. one send to BULK_RECIPIENTS (10 000) recipients, time to the 201, ROUNDS times;
#   3. the dispatcher draining DRAIN_MESSAGES (50 000) queued messages to the simulator: messages/s;
#   4. DELIVERED reports for those messages through /callbacks/1601/{token}: reports/s until every one settled;
#   5. pg-pool-bench against pgbench -S at 8 clients, ROUNDS times alternating;
#   6. scripts/bench-ledger.sh and scripts/bench-finance.sh (FINANCE_MESSAGES, 200 000) as they are.
# Ends with a table: goal, figure, target, met or NOT MET. PROFILE=1 adds profiled runs (not counted in the
# table): pg_stat_statements, wait events sampled from pg_stat_activity, CPU per process, perf of the service.
#   GOALS=1,2,3,4,5,6 SECONDS_PER_RUN=10 ROUNDS=3 CLIENTS=32 PROFILE=0 bash scripts/bench-goals.sh
set -euo pipefail
SCRIPT_NAME=bench-goals
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

goals=${GOALS:-1,2,3,4,5,6}
seconds=${SECONDS_PER_RUN:-10}
rounds=${ROUNDS:-3}
clients=${CLIENTS:-32}
threads=${WRK_THREADS:-2}
bulk_recipients=${BULK_RECIPIENTS:-10000}
drain_messages=${DRAIN_MESSAGES:-50000}
finance_messages=${FINANCE_MESSAGES:-200000}
pool=${DB_POOL:-40}
profile=${PROFILE:-0}
want() { [[ ",$goals," == *",$1,"* ]]; }
service_needed() { want 1 || want 2 || want 3 || want 4; }

ensure_base_packages
ensure_packages wrk curl jq time python3
[ "$profile" = 1 ] && ensure_packages linux-perf
ensure_swift
started_at=$(date +%s)
work=$(mktemp -d /tmp/bench-goals.XXXXXX)
at_exit "rm -rf $(printf %q "$work")"

if service_needed; then
    build_bench sms-reseller
    sms_bin=$BENCH_BIN
    build_bench gateway1601-sim
    sim_bin=$BENCH_BIN
fi
if want 5; then
    build_bench pg-pool-bench
    pool_bench_bin=$BENCH_BIN
fi

# --- the machine, the cluster, and how the cores are shared ------------------------------------------------------
start_throwaway_cluster bench-goals max_connections=200 shared_buffers=256MB \
    shared_preload_libraries=pg_stat_statements pg_stat_statements.max=1000
export PGHOST=127.0.0.1 PGPORT=$THROWAWAY_PORT PGUSER=postgres
psql() { "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
for database in pgbench sms; do psql -d postgres -c "CREATE DATABASE $database"; done
psql -d sms -c "CREATE EXTENSION pg_stat_statements"
log "pgbench -i -s 10"
"$(pg_bindir)/pgbench" -i -s 10 -q pgbench >/dev/null 2>&1
postmaster=$(head -n 1 "$THROWAWAY_DIR/data/postmaster.pid")
database_url="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/sms"

cores=$(nproc)
echo "== conditions"
echo "machine: $(uname -srm); $cores cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)); $(free -g | awk '/^Mem:/ {print $2 " GB"}') RAM"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: other work runs beside this one)"
echo "PostgreSQL: $(psql -At -d postgres -c 'SHOW server_version'); $(psql -At -d postgres -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'shared_buffers', 'max_connections', 'max_wal_size', 'checkpoint_timeout', 'wal_sync_method', 'commit_delay')")"
echo "pg_stat_statements loaded for both sides (ours and pgbench); pgbench -i -s 10 in database pgbench"
echo "cores: no pinning; the service, the simulator, PostgreSQL and the load generator (wrk -t $threads / pgbench -j $threads) share all $cores cores"
echo "service pool: DB_POOL_MIN=DB_POOL_MAX=$pool; default settings otherwise (dispatcher poll 250 ms, ledger maintenance on)"
echo "each run ${seconds}s, $rounds rounds, $clients clients"

# --- CPU accounting ---------------------------------------------------------------------------------------------
clock_ticks=$(getconf CLK_TCK)
# Ticks (user + system, children reaped and alive included) of process $1 and its live children.
tree_ticks() {
    local total=0 pid stat fields
    for pid in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        read -r -a fields <<<"${stat##*) }"
        total=$((total + fields[11] + fields[12] + fields[13] + fields[14]))
    done
    echo "$total"
}
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# cpu_begin / cpu_end LABEL LOADGEN_SECONDS: prints the CPU seconds each side used in between.
cpu_begin() {
    cpu_service=$( [ -n "${service_pid:-}" ] && tree_ticks "$service_pid" || echo 0)
    cpu_sim=$( [ -n "${sim_pid:-}" ] && tree_ticks "$sim_pid" || echo 0)
    cpu_postgres=$(tree_ticks "$postmaster")
    read -r cpu_busy cpu_total < <(machine_ticks)
}
cpu_end() {
    local label=$1 loadgen=$2 service sim postgres busy total
    service=$( [ -n "${service_pid:-}" ] && tree_ticks "$service_pid" || echo 0)
    sim=$( [ -n "${sim_pid:-}" ] && tree_ticks "$sim_pid" || echo 0)
    postgres=$(tree_ticks "$postmaster")
    read -r busy total < <(machine_ticks)
    printf '    cpu %s: service %.1fs, postgres %.1fs, load generator %.1fs, simulator %.1fs; machine %.0f%% busy of %d cores (everything on it)\n' \
        "$label" "$(calc "($service - $cpu_service) / $clock_ticks")" "$(calc "($postgres - $cpu_postgres) / $clock_ticks")" \
        "$loadgen" "$(calc "($sim - $cpu_sim) / $clock_ticks")" "$(calc "100 * ($busy - $cpu_busy) / ($total - $cpu_total)")" "$cores"
}

# --- profiling helpers (PROFILE=1) -------------------------------------------------------------------------------
stats_reset() { psql -d sms -At -c "SELECT pg_stat_statements_reset()" >/dev/null; }
# stats_print REQUESTS: the statements of database sms since the reset, by total time, per request.
stats_print() {
    psql -d sms -c "
        WITH s AS (SELECT * FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'sms')
                   AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_stat_activity%')
        SELECT round(sum(calls)::numeric / $1, 2) AS statements_per_request,
               round((sum(total_exec_time) / $1)::numeric, 3) AS exec_ms_per_request,
               round(sum(total_exec_time)::numeric / 1000, 2) AS exec_s_total FROM s"
    psql -d sms -c "
        SELECT calls, round(calls::numeric / $1, 3) AS per_req, round(total_exec_time::numeric, 0) AS total_ms,
               round(mean_exec_time::numeric, 3) AS mean_ms, round(rows::numeric / greatest(calls, 1), 1) AS rows_per_call,
               left(regexp_replace(query, '\\s+', ' ', 'g'), 120) AS statement
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'sms')
          AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_stat_activity%'
        ORDER BY total_exec_time DESC LIMIT 18"
}
# wait_sampler_start [DATABASE] / wait_sampler_stop: what the sessions of DATABASE (sms) are doing, sampled 10 times
# a second through one psql session; prints the average number of active sessions in each wait event.
wait_sampler_start() {
    local database=${1:-sms}
    (for _ in $(seq 1 6000); do
        echo "SELECT 'tick' UNION ALL SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU') FROM pg_stat_activity
              WHERE datname = '$database' AND state = 'active' AND application_name <> 'psql';"
        echo "SELECT pg_stat_clear_snapshot(), pg_sleep(0.1);"
    done) | "$(pg_bindir)/psql" -X -q -At -d postgres >"$work/waits" 2>/dev/null &
    sampler_pid=$!
}
wait_sampler_stop() {
    pkill -P "$sampler_pid" 2>/dev/null || true
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    local ticks
    ticks=$(grep -c '^tick$' "$work/waits" || true)
    [ "${ticks:-0}" -gt 0 ] || { echo "    (no wait event samples)"; return 0; }
    echo "    sessions of the service active in PostgreSQL, by wait event (average over $ticks samples, 10 per second):"
    { grep -v -e '^tick$' -e '^|*$' "$work/waits" | sort | uniq -c | sort -rn | head -n 8 \
        | awk -v n="$ticks" '{ c = $1; $1 = ""; printf "      %6.2f  %s\n", c / n, $0 }'; } || true
}
# perf_start SECONDS [PID]: perf record of the service (or PID) for SECONDS; perf_stop prints it.
perf_start() {
    perf record -F 499 -g -p "${2:-$service_pid}" -o "$work/perf.data" -- sleep "$1" >/dev/null 2>&1 &
    perf_pid=$!
}
perf_stop() {
    wait "$perf_pid" 2>/dev/null || true
    echo "    perf of ${1:-the service process} (self time, by library and symbol):"
    { perf report -i "$work/perf.data" --stdio --no-children -g none --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' \
        | head -n 10 | sed 's/^/      /'; } || true
    { perf report -i "$work/perf.data" --stdio --no-children -g none --sort dso,symbol 2>/dev/null | grep -v '^#' \
        | grep -v '^$' | head -n 25 | swift demangle --simplified | cut -c1-160 | sed 's/^/      /'; } || true
    echo "    perf of ${1:-the service process} (time including callees, frame-pointer call chains, its own functions):"
    { perf report -i "$work/perf.data" --stdio --children -g none --sort symbol --dsos "${2:-sms-reseller}" 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -n 30 | swift demangle --simplified | cut -c1-160 | sed 's/^/      /'; } || true
}

# metrics_take FILE: the service's /metrics now. metrics_mean BEFORE AFTER NAME FILTER: the mean of histogram NAME (in
# milliseconds) over the observations between the two, of the series whose labels contain FILTER; and their count.
metrics_take() { curl -s "$API/metrics" >"$1" || true; }
metrics_mean() {
    awk -v name="$3" -v filter="$4" '
        FNR == 1 { file++ }
        index($0, name "_sum{") == 1 && index($0, filter) { sum[file] += $NF }
        index($0, name "_count{") == 1 && index($0, filter) { count[file] += $NF }
        END { n = count[2] - count[1]; if (n > 0) printf "%.2f ms over %d", 1000 * (sum[2] - sum[1]) / n, n; else print "no observations" }
    ' "$1" "$2"
}

# --- load runs --------------------------------------------------------------------------------------------------
# Latency of wrk ("850.00us", "12.34ms", "1.02s") in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }

# run_wrk SCRIPT [VAR=value…]: wrk at CLIENTS connections for SECONDS_PER_RUN; sets rate, p50, p99, errors,
# requests, loadgen_cpu.
run_wrk() {
    local script=$1 output
    shift
    env "$@" /usr/bin/time -f '%U %S' -o "$work/time" wrk -t "$threads" -c "$clients" -d "${seconds}s" --timeout 30s \
        --latency -s "scripts/lib/wrk/$script" "$API" >"$work/wrk.out" 2>&1 || true
    output=$(cat "$work/wrk.out")
    rate=$(sed -n 's/^Requests\/sec:\s*\([0-9.]*\).*/\1/p' <<<"$output")
    requests=$(sed -n 's/^\s*\([0-9]*\) requests in .*/\1/p' <<<"$output")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$output")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$output")")
    errors=$(sed -n 's/^bench-errors=//p' <<<"$output")
    local socket non2xx
    socket=$(sed -n 's/^\s*Socket errors: //p' <<<"$output")
    non2xx=$(sed -n 's/^\s*Non-2xx or 3xx responses: //p' <<<"$output")
    [ -n "$rate" ] && [ -n "$errors" ] || { cat "$work/wrk.out" >&2; die "wrk gave no figures"; }
    [ -z "$socket" ] || errors="$errors (socket errors: $socket)"
    [ -z "$non2xx" ] || errors="$errors (non-2xx: $non2xx)"
    first_error=$(sed -n 's/^bench-first-error=//p' <<<"$output")
    loadgen_cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$work/time")
}
run_pgbench() {
    local output
    output=$(/usr/bin/time -f '%U %S' -o "$work/time" "$(pg_bindir)/pgbench" "$@" -T "$seconds" -n pgbench 2>&1)
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$output" | tail -n 1)
    pgbench_latency=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$output")
    loadgen_cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$work/time")
    [ -n "$tps" ] || { echo "$output" >&2; die "pgbench gave no figure"; }
}

summary=()
add_summary() { summary+=("$(printf '%-44s | %-22s | %-12s | %-8s | %s' "$@")"); }

# --- goal 5 first, before the service exists: pool round trips ----------------------------------------------------
if want 5; then
    echo
    echo "== goal 5: indexed single-row SELECTs through our pool (pg-pool-bench) vs pgbench -S, 8 clients"
    ours_total=0
    theirs_total=0
    for round in $(seq 1 "$rounds"); do
        run_pgbench -S -c 8
        theirs=$tps
        ours=$(/usr/bin/time -f '%U %S' -o "$work/time" "$pool_bench_bin" --database-url "postgresql://postgres@127.0.0.1:$PGPORT/pgbench" \
            --concurrency 8 --seconds "$seconds" | sed -n 's/.*tps=\([0-9.]*\).*/\1/p')
        printf '  round %d: pgbench -S %8.0f tps   pg-pool-bench %8.0f tps   ratio %.3f\n' "$round" "$theirs" "$ours" "$(calc "$ours / $theirs")"
        ours_total=$(calc "$ours_total + $ours")
        theirs_total=$(calc "$theirs_total + $theirs")
    done
    ratio=$(calc "$ours_total / $theirs_total")
    printf '  mean: pgbench -S %.0f tps, pg-pool-bench %.0f tps, ratio %.3f (goal >= 0.8)\n' \
        "$(calc "$theirs_total / $rounds")" "$(calc "$ours_total / $rounds")" "$ratio"
    add_summary "5 pool round trips vs pgbench -S, 8 clients" "$(printf '%.0f tps' "$(calc "$ours_total / $rounds")")" ">= 0.8x" \
        "$ratio" "$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "met" : "NOT MET" }')"
fi

# --- the simulator and the service, set up through the API -----------------------------------------------------
if service_needed; then
    sim_port=$(free_port)
    SIM=http://127.0.0.1:$sim_port
    "$sim_bin" --host 127.0.0.1 --port "$sim_port" --seed 1 --log-level warning >"$work/simulator.log" 2>&1 &
    sim_pid=$!
    at_exit "stop_service $sim_pid"
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null "$SIM/_sim/health" && break
        kill -0 "$sim_pid" 2>/dev/null || { cat "$work/simulator.log" >&2; die "the simulator exited"; }
        sleep 0.1
    done
    port=$(free_port)
    while [ "$port" = "$sim_port" ]; do port=$(free_port); done
    API=http://127.0.0.1:$port
    log "sms-reseller serve on $API, gateway1601-sim on $SIM"
    env -i PATH="$PATH" HOME="${HOME:-/root}" ${LD_LIBRARY_PATH:+LD_LIBRARY_PATH="$LD_LIBRARY_PATH"} \
        DATABASE_URL="$database_url" UPSTREAM_CREDENTIALS_KEY="$(head -c 32 /dev/urandom | base64)" \
        UPSTREAM_1601_URL="$SIM" UPSTREAM_1601_USERNAME=sandbox UPSTREAM_1601_PASSWORD=sandbox \
        DB_POOL_MIN="$pool" DB_POOL_MAX="$pool" LOG_LEVEL=warning \
        "$sms_bin" serve --migrate --port "$port" >"$work/service.log" 2>&1 &
    service_pid=$!
    at_exit "stop_service $service_pid"
    wait_until_ready "$service_pid" "$work/service.log"
    admin=$(env -i PATH="$PATH" DATABASE_URL="$database_url" "$sms_bin" admin create-key --name bench | tail -n 1)

    # api METHOD PATH KEY [JSON]: the answer's body; dies on anything but 2xx.
    api() {
        local arguments=(-sS -X "$1" -H "Authorization: Bearer $3" -w '\n%{http_code}') answer code
        if [ -n "${4:-}" ]; then
            arguments+=(-H 'Content-Type: application/json' -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" --data "$4")
        fi
        answer=$(curl "${arguments[@]}" "$API$2")
        code=${answer##*$'\n'}
        answer=${answer%$'\n'*}
        [[ $code == 2* ]] || die "$1 $2: $code $answer"
        printf '%s' "$answer"
    }
    # onboard LABEL RESELLERS SUB_ACCOUNTS FILE: resellers with sub-accounts that can send to the Netherlands (price
    # lists of every layer, sender name Bench approved, plenty of credit); "<sub-account id> <key>" lines to FILE.
    onboard() {
        local label=$1 resellers=$2 subs=$3 file=$4 index sub reseller reseller_key list account sub_key sender
        for index in $(seq 0 $((resellers - 1))); do
            reseller=$(api POST /resellers "$admin" "{\"name\":\"$label $index\",\"contactEmail\":\"ops@bench.example\"}" | jq -r .id)
            reseller_key=$(api POST "/resellers/$reseller/api-keys" "$admin" '{"name":"bench"}' | jq -r .secret)
            api POST "/resellers/$reseller/top-ups" "$admin" '{"amount":"100000000","paymentReference":"bench"}' >/dev/null
            list=$(api POST /price-lists "$reseller_key" '{"layer":"retail","name":"retail"}' | jq -r .id)
            api POST "/price-lists/$list/versions" "$reseller_key" '{"entries":[{"prefix":"31","price":"0.0725"}]}' >/dev/null
            api PUT "/resellers/$reseller/default-retail-price-list" "$reseller_key" "{\"priceListId\":\"$list\"}" >/dev/null
            for sub in $(seq 0 $((subs - 1))); do
                account=$(api POST /sub-accounts "$reseller_key" \
                    "{\"name\":\"bench $index-$sub\",\"username\":\"bench-${label,,}-$index-$sub\",\"password\":\"bench password\"}" | jq -r .id)
                sub_key=$(api POST "/sub-accounts/$account/api-keys" "$reseller_key" '{"name":"bench"}' | jq -r .secret)
                sender=$(api POST /sender-names "$sub_key" '{"name":"Bench"}' | jq -r .id)
                api POST "/sender-names/$sender/approve" "$reseller_key" '{}' >/dev/null
                api POST "/sub-accounts/$account/credit-transfers" "$reseller_key" \
                    '{"amount":"10000000","direction":"to_sub_account"}' >/dev/null
                echo "$account $sub_key" >>"$file"
            done
            last_reseller=$reseller
        done
    }
    log "setting up through the API: prices and the sub-accounts"
    upstream_list=$(api POST /price-lists "$admin" '{"layer":"upstream_cost","name":"upstream_cost"}' | jq -r .id)
    api POST "/price-lists/$upstream_list/versions" "$admin" '{"entries":[{"prefix":"31","price":"0.0100"}]}' >/dev/null
    wholesale_list=$(api POST /price-lists "$admin" '{"layer":"wholesale","name":"wholesale"}' | jq -r .id)
    api POST "/price-lists/$wholesale_list/versions" "$admin" '{"entries":[{"prefix":"31","price":"0.0500"}]}' >/dev/null
    api PATCH /price-defaults "$admin" "{\"upstreamCostPriceListId\":\"$upstream_list\",\"wholesalePriceListId\":\"$wholesale_list\"}" >/dev/null
    onboard Hot 1 1 "$work/hot"
    onboard Bulk 1 1 "$work/bulk"
    bulk_reseller=$last_reseller
    if want 1; then onboard Spread 10 10 "$work/spread"; fi
    # The sends of goal 1 wait behind the paused default connection; the bulk reseller sends through a connection
    # of its own to the same simulator (64 calls at once, 10 000/s at most), paused until goal 3 resumes it.
    default_connection=$(api GET /upstream-connections "$admin" | jq -r '.items[0].id')
    api POST "/upstream-connections/$default_connection/pause" "$admin" '{"reason":"benchmark"}' >/dev/null
    drain=$(api POST /upstream-connections "$admin" \
        "{\"name\":\"drain\",\"baseUrl\":\"$SIM\",\"username\":\"sandbox\",\"password\":\"sandbox\",\"concurrency\":64,\"rateLimitPerSecond\":10000}" | jq -r .id)
    api POST "/upstream-connections/$drain/pause" "$admin" '{"reason":"benchmark"}' >/dev/null
    api PUT "/resellers/$bulk_reseller/upstream-connection" "$admin" "{\"connectionId\":\"$drain\"}" >/dev/null
    log "set up in $(($(date +%s) - started_at)) s since the start"
fi

# --- goal 1 ------------------------------------------------------------------------------------------------------
if want 1; then
    hot_user=bench-hot-0-0
    echo
    echo "== goal 1: single-recipient sends over HTTP, $clients connections (wrk -t $threads), vs pgbench tpcb-like -c $clients -j $threads"
    run_wrk send.lua BENCH_SENDERS="$work/hot" BENCH_NONCE=warmup >/dev/null  # warm-up
    declare -A ours_sum theirs_sum failed last_p50 last_p99
    for round in $(seq 1 "$rounds"); do
        for workload in one spread gateway; do
            metrics_take "$work/metrics.before"
            cpu_begin
            case $workload in
                one) run_wrk send.lua BENCH_SENDERS="$work/hot" BENCH_NONCE="r$round-$workload" ;;
                spread) run_wrk send.lua BENCH_SENDERS="$work/spread" BENCH_NONCE="r$round-$workload" ;;
                gateway) run_wrk gateway.lua BENCH_USER="$hot_user" BENCH_PASSWORD=bench%20password ;;
            esac
            cpu_end "ours" "$loadgen_cpu"
            metrics_take "$work/metrics.after"
            operation=sendMessages
            [ "$workload" != gateway ] || operation=gateway1601
            echo "    inside the service: $(metrics_mean "$work/metrics.before" "$work/metrics.after" http_request_duration_seconds "operation=\"$operation\"") requests (mean)"
            ours=$rate
            ours_line=$(printf '%8.0f req/s  p50 %7.2f ms  p99 %7.2f ms' "$rate" "$p50" "$p99")
            ours_errors=$errors
            cpu_begin
            run_pgbench -c "$clients" -j "$threads"
            cpu_end "pgbench" "$loadgen_cpu"
            if [ "$ours_errors" = 0 ]; then
                printf '  round %d %-8s ours %s   pgbench %7.0f tps (latency avg %s ms)   ratio %.3f\n' "$round" "$workload" \
                    "$ours_line" "$tps" "$pgbench_latency" "$(calc "$ours / $tps")"
            else
                printf '  round %d %-8s ours WITH ERRORS: %s of %s answers not accepted (first: %s)   pgbench %7.0f tps\n' \
                    "$round" "$workload" "$ours_errors" "$requests" "$first_error" "$tps"
                failed[$workload]=1
            fi
            ours_sum[$workload]=$(calc "${ours_sum[$workload]:-0} + $ours")
            theirs_sum[$workload]=$(calc "${theirs_sum[$workload]:-0} + $tps")
            last_p50[$workload]=$p50
            last_p99[$workload]=$p99
        done
    done
    for workload in one spread gateway; do
        case $workload in
            one) label="1 sends, one sub-account" ;;
            spread) label="1 sends, 100 sub-accounts of 10 resellers" ;;
            gateway) label="1 sends through /module/gateway.php" ;;
        esac
        ratio=$(calc "${ours_sum[$workload]} / ${theirs_sum[$workload]}")
        if [ -n "${failed[$workload]:-}" ]; then
            add_summary "$label" "errors (see rounds)" ">= 2x tpcb" "-" "NOT MET (errors)"
        else
            add_summary "$label" "$(printf '%.0f/s; p99 %s ms' "$(calc "${ours_sum[$workload]} / $rounds")" "${last_p99[$workload]}")" \
                ">= 2x tpcb" "$ratio" "$(awk -v r="$ratio" 'BEGIN { print (r >= 2) ? "met" : "NOT MET" }')"
        fi
    done
    echo "  (ratio in the table: the sum of our rates over the sum of pgbench's over the rounds)"

    if [ "$profile" = 1 ]; then
        echo
        echo "== profile of goal 1 (extra runs, not counted above)"
        for workload in one spread; do
            file=$work/hot
            [ $workload = spread ] && file=$work/spread
            stats_reset
            wait_sampler_start
            perf_start "$seconds"
            metrics_take "$work/metrics.before"
            cpu_begin
            run_wrk send.lua BENCH_SENDERS="$file" BENCH_NONCE="profile-$workload"
            cpu_end "ours" "$loadgen_cpu"
            metrics_take "$work/metrics.after"
            wait_sampler_stop
            printf '  %s: %.0f req/s (profiled), %s requests, errors %s; p50 %s ms, p99 %s ms at wrk; inside the service (http_request_duration_seconds): %s\n' \
                "$workload" "$rate" "$requests" "$errors" "$p50" "$p99" \
                "$(metrics_mean "$work/metrics.before" "$work/metrics.after" http_request_duration_seconds 'operation="sendMessages"')"
            stats_print "$requests"
            perf_stop
        done
        wait_sampler_start pgbench
        cpu_begin
        run_pgbench -c "$clients" -j "$threads"
        cpu_end "pgbench" "$loadgen_cpu"
        wait_sampler_stop
        printf '  pgbench tpcb-like for comparison: %.0f tps\n' "$tps"
    fi
fi

# --- goal 2 ------------------------------------------------------------------------------------------------------
bulk_send() {  # bulk_send COUNT: prints "<http code> <seconds> <messageCount>"
    python3 -c "import json,sys; n=int(sys.argv[1]); print(json.dumps({'sender':'Bench','text':'Our shop opens at 9 tomorrow.','recipients':['3162%07d' % i for i in range(n)]}))" "$1" >"$work/bulk.json"
    local sub key
    read -r sub key <"$work/bulk"
    curl -sS -o "$work/bulk.answer" -w '%{http_code} %{time_total}' -X POST -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" \
        --data-binary @"$work/bulk.json" "$API/sub-accounts/$sub/messages"
    printf ' %s\n' "$(jq -r '.messageCount // "?"' "$work/bulk.answer" 2>/dev/null || echo '?')"
}
if want 2; then
    echo
    echo "== goal 2: one send to $bulk_recipients recipients (curl, time to the answer)"
    bulk_send 1000 >/dev/null  # warm-up
    worst=0
    bulk_failed=
    for round in $(seq 1 "$rounds"); do
        [ "$profile" = 1 ] && stats_reset
        read -r code took count < <(bulk_send "$bulk_recipients")
        printf '  round %d: %s in %.3f s, %s messages\n' "$round" "$code" "$took" "$count"
        [ "$code" = 201 ] && [ "$count" = "$bulk_recipients" ] || bulk_failed=1
        worst=$(awk -v a="$worst" -v b="$took" 'BEGIN { print (b > a) ? b : a }')
    done
    if [ "$profile" = 1 ]; then stats_print 1; fi
    if [ -n "$bulk_failed" ]; then
        add_summary "2 one send to $bulk_recipients recipients" "errors (see rounds)" "< 0.5 s" "-" "NOT MET (errors)"
    else
        add_summary "2 one send to $bulk_recipients recipients" "$(printf 'slowest %.3f s' "$worst")" "< 0.5 s" \
            "$(calc "$worst / 0.5")" "$(awk -v w="$worst" 'BEGIN { print (w < 0.5) ? "met" : "NOT MET" }')"
    fi
fi

# --- goal 3 ------------------------------------------------------------------------------------------------------
queued_on_drain() { psql -d sms -At -c "SELECT count(*) FROM message_outbox WHERE connection_id = '$drain'"; }
# Whether any message of the drain connection is still in the outbox (cheap enough to ask 10 times a second).
drain_left() { psql -d sms -At -c "SELECT count(*) FROM (SELECT 1 FROM message_outbox WHERE connection_id = '$drain' LIMIT 100) AS o"; }
if want 3 || want 4; then
    log "queueing $drain_messages messages behind the paused drain connection"
    while [ "$(queued_on_drain)" -lt "$drain_messages" ]; do
        read -r code _ _ < <(bulk_send "$(awk -v a="$drain_messages" -v b="$(queued_on_drain)" -v c="$bulk_recipients" 'BEGIN { d = a - b; print (d < c) ? d : c }')")
        [ "$code" = 201 ] || die "a bulk send to queue messages answered $code: $(cat "$work/bulk.answer")"
    done
    queued=$(queued_on_drain)
    echo
    echo "== goal 3: the dispatcher hands $queued queued messages to the simulator (one instance, no added latency; connection: 64 calls at once, 10 000/s at most)"
    if [ "$profile" = 1 ]; then
        stats_reset
        wait_sampler_start
        perf_start 8
    fi
    metrics_take "$work/metrics.before"
    cpu_begin
    drain_started=$(date +%s.%N)
    api POST "/upstream-connections/$drain/resume" "$admin" '{}' >/dev/null
    last_count=-1
    last_change=$(date +%s)
    while :; do
        count=$(drain_left)
        [ "$count" -gt 0 ] || break
        if [ "$count" != "$last_count" ]; then
            last_count=$count
            last_change=$(date +%s)
        elif [ "$count" -lt 100 ] && [ $(($(date +%s) - last_change)) -ge 60 ]; then
            log "the outbox kept $count messages for 60 s; giving up on the drain"
            break
        fi
        sleep 0.1
    done
    drain_ended=$(date +%s.%N)
    cpu_end "drain" 0
    metrics_take "$work/metrics.after"
    echo "    upstream calls (dispatch_upstream_call_duration_seconds): $(metrics_mean "$work/metrics.before" "$work/metrics.after" dispatch_upstream_call_duration_seconds 'result="ok"')"
    drain_seconds=$(calc "$drain_ended - $drain_started")
    submitted=$(psql -d sms -At -c "SELECT count(*) FROM message WHERE upstream_connection_id = '$drain' AND status = 'submitted'")
    drain_rate=$(calc "$queued / $drain_seconds")
    printf '  %s messages in %.2f s: %.0f messages/s; %s submitted (with an upstream id)\n' "$queued" "$drain_seconds" "$drain_rate" "$submitted"
    echo "  (time from the resume call until the outbox of the connection is empty, polled every 0.1 s)"
    if [ "$profile" = 1 ]; then
        wait_sampler_stop
        stats_print "$queued"
        perf_stop
        echo "    (a second, shorter drain for perf of the simulator: $bulk_recipients more messages)"
        api POST "/upstream-connections/$drain/pause" "$admin" '{"reason":"benchmark"}' >/dev/null
        bulk_send "$bulk_recipients" >/dev/null
        perf_start 8 "$sim_pid"
        api POST "/upstream-connections/$drain/resume" "$admin" '{}' >/dev/null
        for _ in $(seq 1 600); do [ "$(drain_left)" -gt 0 ] || break; sleep 0.2; done
        perf_stop "the simulator (gateway1601-sim)" gateway1601-sim
        submitted=$(psql -d sms -At -c "SELECT count(*) FROM message WHERE upstream_connection_id = '$drain' AND status = 'submitted'")
        queued=$((queued + bulk_recipients))
    fi
    if want 3; then
        if [ "$submitted" = "$queued" ]; then
            add_summary "3 dispatcher to the simulator" "$(printf '%.0f messages/s' "$drain_rate")" ">= 5000/s" \
                "$(calc "$drain_rate / 5000")" "$(awk -v r="$drain_rate" 'BEGIN { print (r >= 5000) ? "met" : "NOT MET" }')"
        else
            add_summary "3 dispatcher to the simulator" "$submitted of $queued submitted" ">= 5000/s" "-" "NOT MET (errors)"
        fi
    fi
fi

# --- goal 4 ------------------------------------------------------------------------------------------------------
if want 4; then
    psql -d sms -At -F ' ' -c "SELECT upstream_id, id FROM message WHERE upstream_connection_id = '$drain' AND status = 'submitted' ORDER BY upstream_id" >"$work/reports"
    reports=$(wc -l <"$work/reports")
    callback_path=$(api GET "/upstream-connections/$drain" "$admin" | jq -r .callbackPath)
    settled() { psql -d sms -At -c "SELECT count(*) FROM message WHERE upstream_connection_id = '$drain' AND status = 'delivered'"; }
    # Messages still waiting for their report: through the partial index message_awaiting_report, cheap to poll.
    # How many messages still wait for their report (a count of every such row: 21 ms at 20 000, so only every 5 s,
    # for the stall check), and whether any does (one index probe: the 0.2 s poll that ends the run).
    awaiting() { psql -d sms -At -c "SELECT count(*) FROM message WHERE status = 'submitted' AND upstream_connection_id = '$drain'"; }
    any_awaiting() { psql -d sms -At -c "SELECT count(*) FROM (SELECT 1 FROM message WHERE status = 'submitted' AND upstream_connection_id = '$drain' LIMIT 1) AS m"; }
    echo
    echo "== goal 4: $reports DELIVERED reports through the connection's callback path (wrk -t $threads -c $clients, each report once)"
    if [ "$profile" = 1 ]; then
        stats_reset
        wait_sampler_start
        perf_start 8
    fi
    metrics_take "$work/metrics.before"
    cpu_begin
    callbacks_started=$(date +%s.%N)
    # wrk runs until SIGINT, once every message is settled.
    env BENCH_REPORTS="$work/reports" BENCH_CALLBACK_PATH="$callback_path" BENCH_THREADS="$threads" \
        /usr/bin/time -f '%U %S' -o "$work/time" wrk -t "$threads" -c "$clients" -d 600s --timeout 30s --latency \
        -s scripts/lib/wrk/callbacks.lua "$API" >"$work/wrk.out" 2>&1 &
    time_pid=$!
    last_count=-1
    last_change=$(date +%s)
    polls=0
    while kill -0 "$time_pid" 2>/dev/null; do
        [ "$(any_awaiting)" -gt 0 ] || break
        polls=$((polls + 1))
        if [ $((polls % 25)) -eq 0 ]; then
            count=$(awaiting)
            if [ "$count" != "$last_count" ]; then
                last_count=$count
                last_change=$(date +%s)
            elif [ $(($(date +%s) - last_change)) -ge 15 ]; then
                log "no message settled for 15 s ($count of $reports still waiting); stopping wrk"
                break
            fi
        fi
        sleep 0.2
    done
    callbacks_ended=$(date +%s.%N)
    wrk_pid=$(pgrep -P "$time_pid" || true)
    [ -z "$wrk_pid" ] || kill -INT "$wrk_pid" 2>/dev/null || true
    wait "$time_pid" || true
    cpu_end "callbacks" "$(awk '{ printf "%.1f", $1 + $2 }' "$work/time")"
    metrics_take "$work/metrics.after"
    echo "    inside the service (http_request_duration_seconds of receiveDeliveryReport): $(metrics_mean "$work/metrics.before" "$work/metrics.after" http_request_duration_seconds 'operation="receiveDeliveryReport"')"
    callback_seconds=$(calc "$callbacks_ended - $callbacks_started")
    delivered=$(settled)
    settled_all=$(psql -d sms -At -c "SELECT count(*) FROM message WHERE upstream_connection_id = '$drain' AND settled_at IS NOT NULL")
    callback_rate=$(calc "$reports / $callback_seconds")
    output=$(cat "$work/wrk.out")
    printf '  %s reports in %.2f s: %.0f reports/s; %s messages delivered, %s settled; wrk: p50 %s ms, p99 %s ms, errors %s, repeats %s\n' \
        "$reports" "$callback_seconds" "$callback_rate" "$delivered" "$settled_all" \
        "$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$output")")" "$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$output")")" \
        "$(sed -n 's/^bench-errors=//p' <<<"$output")" "$(sed -n 's/^bench-repeats=//p' <<<"$output")"
    echo "  (time from wrk's start until no message waits for its report, polled every 0.2 s)"
    if [ "$profile" = 1 ]; then
        wait_sampler_stop
        stats_print "$reports"
        perf_stop
    fi
    if [ "$delivered" = "$reports" ]; then
        add_summary "4 delivery reports through callbacks" "$(printf '%.0f reports/s' "$callback_rate")" ">= 10000/s" \
            "$(calc "$callback_rate / 10000")" "$(awk -v r="$callback_rate" 'BEGIN { print (r >= 10000) ? "met" : "NOT MET" }')"
    else
        add_summary "4 delivery reports through callbacks" "$delivered of $reports settled" ">= 10000/s" "-" "NOT MET (errors)"
    fi
fi

# --- goal 6: the other benchmarks, as they are (their own clusters), after the service has stopped ----------------
if service_needed; then
    stop_service "$service_pid"
    stop_service "$sim_pid"
fi
if want 6; then
    echo
    echo "== goal 6: scripts/bench-ledger.sh (SECONDS_PER_RUN=$seconds; its own throwaway cluster, default durability)"
    SECONDS_PER_RUN=$seconds bash scripts/bench-ledger.sh 2>/dev/null | sed 's/^/  /'
    echo
    echo "== goal 6: scripts/bench-finance.sh with MESSAGES=$finance_messages, ROUNDS=1 (its own throwaway cluster)"
    MESSAGES=$finance_messages ROUNDS=1 bash scripts/bench-finance.sh 2>/dev/null | sed 's/^/  /'
    echo "  recorded before (docs/finance.md, 2 000 000 messages): journal export ratio to COPY 1.20; month report by"
    echo "  reseller 0.117 s, by sub-account 0.248 s, by day and country 0.176 s; service 46.9 MB idle, +3.4 MB during an export"
    add_summary "6 ledger and export benchmarks" "printed above" "no regression" "-" "compare by hand"
fi

echo
echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ), $(($(date +%s) - started_at)) s, load average now $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-44s | %-22s | %-12s | %-8s | %s\n' goal figure target ratio result
for line in ${summary[@]+"${summary[@]}"}; do echo "$line"; done
