#!/usr/bin/env bash
# Benchmark of the finance reads over one month of traffic, all in one run on one throwaway PostgreSQL:
#   1. the journal export (GET /exports/journal, CSV) of JOURNAL_ROWS (default 1 000 000) ledger transfers, next to a
#      bare COPY of the same rows to /dev/null through psql: the exporter's own statement (taken from the server log
#      of a first, warm-up export) in the exporter's transaction settings, and a plain `SELECT t.*` of the rows for
#      reference; with the service's resident memory (VmRSS, sampled every 50 ms) before and at most during each
#      export; ROUNDS (default 3) rounds, then the same export gzip-compressed (Accept-Encoding: gzip);
#   2. the usage report (GET /reports/usage) for the whole month, grouped by reseller, by sub-account and by
#      day,country in Europe/Amsterdam (posted view, ROUNDS runs each, fewer after a run over 10 s; curl gives up after
#      REPORT_TIMEOUT, default 600 s), and once in the accepted view (curl gives up after ACCEPTED_TIMEOUT, default
#      120 s); a statement curl gave up on is cancelled;
#   3. pgbench -S (select-only, scale 10, 5 s, 8 clients) on the same server, as the machine's speed.
# A posted report slower than 1 s is shown under EXPLAIN (ANALYZE, BUFFERS), its statement taken from the server log
# and run through psql in the service's transaction settings, and the accepted view under EXPLAIN (EXPLAIN=0: no
# plans, EXPLAIN=1: always).
# The data: scripts/bench-finance-data.sql, MESSAGES (default 10 000 000) messages in the month MONTH (default
# 2026-11-01, UTC) for 100 resellers × 100 sub-accounts, with the 5 ledger transfers per message the service writes,
# and the usage rollup sealed. Loading 10 000 000 messages takes about half an hour on 2 cores and needs ~50 GB of
# disk under /tmp (the cluster is removed at exit).
# Prints each figure with its conditions, and ratios to the bare COPY; it asserts nothing.
#   MESSAGES=10000000 JOURNAL_ROWS=1000000 ROUNDS=3 CONFIGURATION=release bash scripts/bench-finance.sh
#   MESSAGES=200000 bash scripts/bench-finance.sh      a quick check (about a minute of loading)
set -euo pipefail
SCRIPT_NAME=bench-finance
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_base_packages
ensure_packages curl jq
ensure_swift
messages=${MESSAGES:-10000000}
month=${MONTH:-2026-11-01}
journal_rows=${JOURNAL_ROWS:-1000000}
rounds=${ROUNDS:-3}
[[ $messages =~ ^[0-9]+$ && $messages -ge 1000 ]] || die "MESSAGES must be a whole number of at least 1000"
[[ $month =~ ^[0-9]{4}-[0-9]{2}-01$ ]] || die "MONTH must be the first day of a month, YYYY-MM-01"

# What is measured: the working tree as built now (another change may land while this runs).
built_from="$(git rev-parse --short HEAD 2>/dev/null || echo unknown) + $(git status --porcelain --untracked-files=no 2>/dev/null | wc -l) changed files at $(date -u +%H:%M) UTC"
build_bench sms-reseller
bin=$BENCH_BIN

now_ns() { date +%s%N; }
# below A B: whether the number A is below B.
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
seconds_since() { calc "($(now_ns) - $1) / 1000000000"; }

# The server's durability settings only speed up the load: everything measured reads.
settings=(shared_buffers=4GB effective_cache_size=16GB maintenance_work_mem=1GB max_wal_size=16GB min_wal_size=1GB
    checkpoint_timeout=30min wal_level=minimal max_wal_senders=0 fsync=off full_page_writes=off synchronous_commit=off
    max_connections=100)
start_throwaway_cluster bench-finance "${settings[@]}"
export PGHOST=127.0.0.1 PGPORT=$THROWAWAY_PORT PGUSER=postgres
pg_log=$THROWAWAY_DIR/postgres.log
psql() { "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
value() { psql -At -d finance -c "$1"; }
psql -d postgres -c "CREATE DATABASE finance" -c "CREATE DATABASE pgbench"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/finance"
"$bin" migrate >/dev/null 2>&1 || { "$bin" migrate; die "sms-reseller migrate failed"; }

# About 5 GB per million messages (tables, indexes and WAL), plus headroom.
need_gb=$((messages * 5 / 1000000 + 3))
free_gb=$(($(df --output=avail -k "$THROWAWAY_DIR" | tail -n 1) / 1048576))
[ "$free_gb" -ge "$need_gb" ] || die "about $need_gb GB of disk needed under /tmp for $messages messages, $free_gb GB free"
log "loading $messages messages for the month of $month (scripts/bench-finance-data.sql)"
load_started=$(now_ns)
psql -d finance -v messages="$messages" -v month="$month" -f scripts/bench-finance-data.sql >"$THROWAWAY_DIR/load.out"
load_seconds=$(seconds_since "$load_started")

month_from="${month}T00:00:00Z"
month_to=$(value "SELECT to_char('$month'::date + interval '1 month', 'YYYY-MM-DD') || 'T00:00:00Z'")
transfers=$(value "SELECT count(*) FROM ledger_transfer")
hour_rows=$(value "SELECT count(*) FROM usage_money_hour WHERE hour >= '$month_from' AND hour < '$month_to'")

log "pgbench -i -s 10"
"$(pg_bindir)/pgbench" -i -s 10 -q pgbench >/dev/null 2>&1
tps=$("$(pg_bindir)/pgbench" -S -c 8 -j 2 -T 5 -n pgbench 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -n 1)

# The service: no background work (dispatcher, report polling, webhooks, ledger upkeep and rollup) on this instance,
# the built-in simulator on a free port, and no statement timeout (default 30 s), so that a slow report can be timed
# (curl gives up instead, and its statement is then cancelled). Its statements are logged with their durations (this
# database only), which gives the exporter's SQL and the reports' for EXPLAIN.
psql -d postgres -c "ALTER DATABASE finance SET log_min_duration_statement = 0"
key=$("$bin" admin create-key --name bench-finance 2>/dev/null | tail -n 1)
port=$(free_port)
API=http://127.0.0.1:$port
env -i PATH="$PATH" HOME="${HOME:-/root}" ${LD_LIBRARY_PATH:+LD_LIBRARY_PATH="$LD_LIBRARY_PATH"} \
    DATABASE_URL="$DATABASE_URL" "$bin" serve --port "$port" --simulator-port 0 --no-dispatcher --no-report-polling \
    --no-webhooks --no-ledger-maintenance --db-statement-timeout-ms 0 >"$THROWAWAY_DIR/service.log" 2>&1 &
service=$!
at_exit "stop_service $service"
wait_until_ready "$service" "$THROWAWAY_DIR/service.log"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$service/status"; }
mb() { calc "($1) / 1024"; }
# Samples the service's VmRSS every 50 ms into $1 (the highest so far) until killed.
sample_rss() {
    local highest=0 now
    while now=$(rss_kb 2>/dev/null) && [ -n "$now" ]; do
        if [ "$now" -gt "$highest" ]; then highest=$now; echo "$highest" >"$1"; fi
        sleep 0.05
    done
}
# export_journal [curl options…]: runs one export while sampling RSS; sets EXPORT_TIME, EXPORT_BYTES, RSS_BEFORE,
# RSS_MAX (kB).
export_journal() {
    RSS_BEFORE=$(rss_kb)
    echo "$RSS_BEFORE" >"$THROWAWAY_DIR/rss.max"
    sample_rss "$THROWAWAY_DIR/rss.max" &
    local sampler=$! out
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}' "$@" -H "Authorization: Bearer $key" \
        "$API/exports/journal?from=$journal_from&to=$journal_to")
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    RSS_MAX=$(cat "$THROWAWAY_DIR/rss.max")
    read -r code EXPORT_TIME EXPORT_BYTES <<<"$out"
    [ "$code" = 200 ] || { tail -n 20 "$THROWAWAY_DIR/service.log" >&2; die "the export answered HTTP $code"; }
}
# The last statement (executed, or cancelled) in the server log that starts with $1 and holds $2 (its lines after the
# first keep the tab the log puts before them).
logged_statement() {
    awk -v want="$1" -v holds="${2:-}" '
        function keep() { if (current != "" && index(current, want) == 1 && index(current, holds) > 0) last = current; current = "" }
        /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / {
            keep()
            if (match($0, /(duration: [0-9.]+ ms  (execute [^:]*|statement)|STATEMENT): +/)) current = substr($0, RSTART + RLENGTH)
            next
        }
        current != "" { current = current "\n" $0 }
        END { keep(); printf "%s", last }' "$pg_log"
}
# copy_seconds SQL: the time psql takes to run SQL (a COPY … TO STDOUT) in a read-only repeatable-read transaction in
# UTC, as the exporter does, its output going to /dev/null.
copy_seconds() {
    local started
    started=$(now_ns)
    psql -d finance -c "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" -c "SET LOCAL TIME ZONE 'UTC'" -c "$1" \
        -c "COMMIT" >/dev/null
    seconds_since "$started"
}

# ---------------------------------------------------------------------------------------------------------------
# 1. The journal export.

max_seq=$(value "SELECT max(seq) FROM ledger_transfer")
window=$((journal_rows < max_seq / 2 ? journal_rows : max_seq / 2))
first_seq=$(((max_seq - window) / 2))
stamp="to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
journal_from=$(value "SELECT $stamp FROM ledger_transfer WHERE seq >= $first_seq ORDER BY seq LIMIT 1")
journal_to=$(value "SELECT $stamp FROM ledger_transfer WHERE seq >= $((first_seq + window)) ORDER BY seq LIMIT 1")
journal_count=$(value "SELECT count(*) FROM ledger_transfer WHERE created_at >= '$journal_from' AND created_at < '$journal_to'")
idle_rss=$(rss_kb)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)

log "journal export: a warm-up run, whose statement the baseline runs"
export_journal
warm_time=$EXPORT_TIME warm_bytes=$EXPORT_BYTES warm_before=$RSS_BEFORE warm_max=$RSS_MAX
exporter_sql=$(logged_statement "COPY (")
[ -n "$exporter_sql" ] || die "the exporter's COPY statement is not in $pg_log"
plain_sql="COPY (SELECT t.* FROM ledger_transfer t WHERE t.created_at >= '$journal_from' AND t.created_at < '$journal_to' ORDER BY t.seq) TO STDOUT"

copy_times=() export_times=() plain_times=() export_lines=()
best_copy="" best_export="" highest_rss=$warm_max growth_max=$((warm_max - warm_before))
for round in $(seq 1 "$rounds"); do
    log "journal round $round of $rounds"
    copy_time=$(copy_seconds "$exporter_sql")
    plain_time=$(copy_seconds "$plain_sql")
    export_journal
    copy_times+=("$copy_time") plain_times+=("$plain_time") export_times+=("$EXPORT_TIME")
    export_lines+=("$(printf 'round %d: COPY %6.3f s   plain COPY %6.3f s   export %6.3f s (%s bytes)   ratio %.3f   RSS %.1f MB before, %.1f MB at most, growth %.1f MB' \
        "$round" "$copy_time" "$plain_time" "$EXPORT_TIME" "$EXPORT_BYTES" "$(calc "$EXPORT_TIME / $copy_time")" \
        "$(mb "$RSS_BEFORE")" "$(mb "$RSS_MAX")" "$(mb "$RSS_MAX - $RSS_BEFORE")")")
    [ -z "$best_copy" ] || below "$copy_time" "$best_copy" && best_copy=$copy_time
    [ -z "$best_export" ] || below "$EXPORT_TIME" "$best_export" && best_export=$EXPORT_TIME
    [ "$RSS_MAX" -le "$highest_rss" ] || highest_rss=$RSS_MAX
    [ $((RSS_MAX - RSS_BEFORE)) -le "$growth_max" ] || growth_max=$((RSS_MAX - RSS_BEFORE))
done
log "journal export, gzip"
export_journal -H "Accept-Encoding: gzip"
gzip_time=$EXPORT_TIME gzip_bytes=$EXPORT_BYTES gzip_before=$RSS_BEFORE gzip_max=$RSS_MAX
[ "$RSS_MAX" -le "$highest_rss" ] || highest_rss=$RSS_MAX
[ $((RSS_MAX - RSS_BEFORE)) -le "$growth_max" ] || growth_max=$((RSS_MAX - RSS_BEFORE))

# ---------------------------------------------------------------------------------------------------------------
# 2. Usage reports.

# Cancels what the service still runs (a report curl gave up on).
cancel_service_queries() {
    value "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity
           WHERE application_name = 'sms-reseller' AND state = 'active' AND pid <> pg_backend_pid()" >/dev/null
}
# report ID NAME QUERY RUNS TIMEOUT START HOLDS: prints each run's time, the best, and what the first answer held;
# runs after one that took over 10 s are skipped. Keeps the best time in $THROWAWAY_DIR/ID.best and the report's
# statement (the last one in the server log that begins with START and holds HOLDS) in $THROWAWAY_DIR/ID.sql.
report() {
    local id=$1 name=$2 query=$3 runs=$4 timeout=$5 run out code time size best="" times=() first=""
    for run in $(seq 1 "$runs"); do
        out=$(curl -s -o "$THROWAWAY_DIR/report.json" -w '%{http_code} %{time_total} %{size_download}' --max-time "$timeout" \
            -H "Authorization: Bearer $key" "$API/reports/usage?from=$month_from&to=$month_to&$query") || true
        read -r code time size <<<"$out"
        if [ "$code" != 200 ]; then
            if [ "$code" = 000 ]; then
                times+=("timed out after $timeout s (curl)")
                cancel_service_queries
            else
                times+=("HTTP $code after $(printf '%.3f' "$time") s: $(head -c 300 "$THROWAWAY_DIR/report.json")")
            fi
            break
        fi
        times+=("$(printf '%.3f s' "$time")")
        [ -z "$best" ] || below "$time" "$best" && best=$time
        [ -n "$first" ] || first=$(jq -r '"\(.rows | length) rows, \(.totals.messages) messages, provisional \(.provisional)"' "$THROWAWAY_DIR/report.json")", $size bytes"
        if [ "$run" -lt "$runs" ] && below 10 "$time"; then
            times+=("(further runs skipped: over 10 s)")
            break
        fi
    done
    sleep 0.5
    logged_statement "$6" "$7" >"$THROWAWAY_DIR/$id.sql"
    echo "${best:-none}" >"$THROWAWAY_DIR/$id.best"
    local joined
    joined=$(printf '%s, ' "${times[@]}")
    printf '%-46s %s%s\n' "$name:" "${joined%, }" "${best:+   best $(printf '%.3f' "$best") s}"
    [ -z "$first" ] || printf '%-46s %s\n' "" "($first)"
}
# explain ID OPTIONS TITLE: EXPLAIN (OPTIONS) of the statement kept for ID, in the service's transaction settings
# (read-only repeatable read, and the SET LOCALs the service ran in the report's transactions).
explain() {
    local sql=$THROWAWAY_DIR/$1.sql settings=()
    echo
    echo "$3"
    if [ ! -s "$sql" ]; then
        echo "(its statement is not in the server log)"
        return 0
    fi
    local setting
    while IFS= read -r setting; do settings+=(-c "$setting"); done < <(grep -o 'SET LOCAL [a-z_]* = .*' "$pg_log" | sort -u)
    psql -d finance -c "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" ${settings[@]+"${settings[@]}"} \
        -c "EXPLAIN ${2:+($2) }$(cat "$sql")" -c "COMMIT" || true
}

log "usage reports"
# curl's limits: REPORT_TIMEOUT for the posted view (default 600 s), ACCEPTED_TIMEOUT for the accepted view (120 s).
# A report's statement: the last one starting with WITH that reads the rollup (posted view) or the messages (accepted).
report_lines=$(
    report reseller "usage, month, groupBy=reseller" "groupBy=reseller&timeZone=UTC" "$rounds" "${REPORT_TIMEOUT:-600}" \
        "WITH" "FROM usage_money_hour"
    report sub_account "usage, month, groupBy=sub_account" "groupBy=sub_account&timeZone=UTC" "$rounds" \
        "${REPORT_TIMEOUT:-600}" "WITH" "FROM usage_money_hour"
    report day_country "usage, month, groupBy=day,country (Amsterdam)" "groupBy=day,country&timeZone=Europe/Amsterdam" \
        "$rounds" "${REPORT_TIMEOUT:-600}" "WITH" "FROM usage_money_hour"
    report accepted "usage, month, view=accepted, groupBy=reseller" "groupBy=reseller&timeZone=UTC&view=accepted" 1 \
        "${ACCEPTED_TIMEOUT:-120}" "WITH" "FROM message m"
)
plans=$(
    for id in reseller sub_account day_country; do
        best=$(cat "$THROWAWAY_DIR/$id.best")
        if [ "${EXPLAIN:-auto}" = 1 ] || { [ "${EXPLAIN:-auto}" = auto ] && { [ "$best" = none ] || ! below "$best" 1; }; }; then
            log "EXPLAIN (ANALYZE, BUFFERS) of the posted report, $id"
            explain "$id" "ANALYZE, BUFFERS" \
                "EXPLAIN (ANALYZE, BUFFERS) of the posted report (groupBy=${id/day_country/day,country}), as the service ran it (through psql):"
        fi
    done
    if [ "${EXPLAIN:-auto}" != 0 ]; then
        explain accepted "" "EXPLAIN of the accepted view's report by reseller:"
    fi
)

# ---------------------------------------------------------------------------------------------------------------
# The figures.

database_size=$(value "SELECT pg_size_pretty(pg_database_size('finance'))")
batches=$(value "SELECT count(*) FROM message_batch")
echo
echo "== bench-finance: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) memory, PostgreSQL $(value "SHOW server_version" | cut -d' ' -f1), sms-reseller ${CONFIGURATION:-release} built from $built_from"
echo "server: ${settings[*]} (work_mem $(value "SHOW work_mem"), jit $(value "SHOW jit"))"
echo "service: serve --no-dispatcher --no-report-polling --no-webhooks --no-ledger-maintenance --db-statement-timeout-ms 0 (none; default 30000), pool default"
printf 'data: %s messages in %s batches, %s ledger transfers (month %s), database %s; loaded in %.0f s (%.1f min)\n' \
    "$messages" "$batches" "$transfers" "${month%-01}" "$database_size" "$load_seconds" "$(calc "$load_seconds / 60")"
printf 'usage_money_hour rows for the month: %s\n' "$hour_rows"
printf 'pgbench -S, scale 10, 8 clients, 5 s: %.0f tps\n' "$tps"
echo "load average when the measurements began: $loadavg (other work on the machine shares its $(nproc) cores)"
echo
echo "journal export, [$journal_from, $journal_to): $journal_count transfers (seq $first_seq onwards), CSV"
echo "  COPY: the exporter's own statement through psql to /dev/null; plain COPY: SELECT t.* of the same rows ORDER BY seq"
printf '  warm-up export: %.3f s, %s bytes, RSS %.1f MB before, %.1f MB at most\n' "$warm_time" "$warm_bytes" \
    "$(mb "$warm_before")" "$(mb "$warm_max")"
printf '  %s\n' "${export_lines[@]}"
printf '  best of %d: export %.3f s / COPY %.3f s = ratio %.3f (goal <= 2)\n' "$rounds" "$best_export" "$best_copy" \
    "$(calc "$best_export / $best_copy")"
printf '  gzip export: %.3f s, %s bytes (%.1f %% of the CSV), ratio to the best COPY %.3f, RSS %.1f MB before, %.1f MB at most\n' \
    "$gzip_time" "$gzip_bytes" "$(calc "100 * $gzip_bytes / $warm_bytes")" "$(calc "$gzip_time / $best_copy")" \
    "$(mb "$gzip_before")" "$(mb "$gzip_max")"
printf '  service RSS: %.1f MB idle before the first export, %.1f MB at most during the exports; largest growth during one export %.1f MB, over all %.1f MB (goal < 50 MB)\n' \
    "$(mb "$idle_rss")" "$(mb "$highest_rss")" "$(mb "$growth_max")" "$(mb "$highest_rss - $idle_rss")"
echo
echo "usage reports, [$month_from, $month_to), admin, HTTP time (goal < 1 s for the posted view):"
echo "$report_lines"
[ -z "$plans" ] || echo "$plans"
