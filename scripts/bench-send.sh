#!/usr/bin/env bash
# Benchmark of the send path, all in one run on one throwaway PostgreSQL (default durability settings):
#   1. single-recipient sends over HTTP by CLIENTS concurrent clients (default 32), all from ONE sub-account,
#      then spread over 100 sub-accounts (10 resellers × 10), then the first through /module/gateway.php;
#   2. one send to 10 000 recipients;
#   3. the dispatcher draining the 10 000 queued messages to the built-in simulator (no added latency);
#   4. pgbench's tpcb-like script at the same client count, as the baseline.
# Prints each figure and the ratios of (1) to (4).
#   SECONDS_PER_RUN=10 CLIENTS=32 CONFIGURATION=release bash scripts/bench-send.sh
set -euo pipefail
SCRIPT_NAME=bench-send
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_base_packages
ensure_swift
seconds=${SECONDS_PER_RUN:-10}
clients=${CLIENTS:-32}

build_bench send-bench
start_bench_cluster bench-send 200 sends

tpcb=$("$(pg_bindir)/pgbench" -c "$clients" -j 2 -T "$seconds" -n pgbench 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -n 1)
output=$("$BENCH_BIN" --database-url "postgresql://postgres@127.0.0.1:$PGPORT/sends" --clients "$clients" --seconds "$seconds")
echo "$output"
figure() { echo "$output" | sed -n "s/.*phase=$1 .*$2=\([0-9.]*\).*/\1/p"; }
hot=$(figure hot rate); spread=$(figure spread rate)
printf 'pgbench tpcb-like, %d clients:      %8.0f tps\n' "$clients" "$tpcb"
printf 'sends from one sub-account:        %8.0f /s   ratio to tpcb-like %s\n' "$hot" "$(calc "$hot / $tpcb")"
printf 'sends spread over 100 sub-accounts: %7.0f /s   ratio to tpcb-like %s\n' "$spread" "$(calc "$spread / $tpcb")"
gateway=$(figure gateway rate)
printf 'the same through /module/gateway.php: %5.0f /s   ratio to tpcb-like %s\n' "$gateway" "$(calc "$gateway / $tpcb")"
printf 'one send to 10 000 recipients:     %8s s\n' "$(figure bulk seconds)"
drain=$(figure drain rate)
[ -n "$drain" ] && printf 'dispatcher drain to the simulator: %8s messages/s\n' "$drain"
