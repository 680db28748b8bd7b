#!/usr/bin/env bash
# Benchmark: indexed single-row SELECTs through PostgresLibpq's pool at 8 concurrent tasks
# against `pgbench -S` at 8 clients, on the same throwaway server in the same run.
# Prints both rates and their ratio (goal: >= 0.8). Rounds alternate to even out noise.
#   SECONDS_PER_RUN=15 ROUNDS=3 CONCURRENCY=8 bash scripts/bench-db.sh
set -euo pipefail
SCRIPT_NAME=bench-db
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_base_packages
ensure_swift
seconds=${SECONDS_PER_RUN:-15}
rounds=${ROUNDS:-3}
concurrency=${CONCURRENCY:-8}

build_bench pg-pool-bench

start_throwaway_cluster bench max_connections=100 shared_buffers=256MB
port=$THROWAWAY_PORT
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
log "pgbench -i -s 10"
"$(pg_bindir)/pgbench" -i -s 10 -q >/dev/null 2>&1

ours_total=0
theirs_total=0
for round in $(seq 1 "$rounds"); do
    theirs=$("$(pg_bindir)/pgbench" -S -c "$concurrency" -T "$seconds" -n 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -n 1)
    ours=$("$BENCH_BIN" --database-url "postgresql://postgres@127.0.0.1:$port/postgres" --concurrency "$concurrency" --seconds "$seconds" | sed -n 's/.*tps=\([0-9.]*\).*/\1/p')
    printf 'round %d: pgbench -S %8.0f tps   pg-pool-bench %8.0f tps   ratio %.3f\n' "$round" "$theirs" "$ours" "$(calc "$ours / $theirs")"
    ours_total=$(calc "$ours_total + $ours")
    theirs_total=$(calc "$theirs_total + $theirs")
done
printf 'mean over %d rounds of %ss at %d clients: pgbench -S %.0f tps, pg-pool-bench %.0f tps, ratio %.3f (goal >= 0.8)\n' \
    "$rounds" "$seconds" "$concurrency" "$(calc "$theirs_total / $rounds")" "$(calc "$ours_total / $rounds")" \
    "$(calc "$ours_total / $theirs_total")"
