#!/usr/bin/env bash
# Benchmark: single-phase ledger transfers (each its own transaction through
# ledger_apply_transfers) from ONE hot sub-account and spread over 1 000 sub-accounts, at 8 and 32
# concurrent tasks (spread: over 100 resellers, each transfer crediting its own reseller's revenue
# account), next to pgbench's built-in tpcb-like script at the same client counts, on the
# same throwaway server in the same run. Prints each rate and its ratio to pgbench, and the same
# hot-account transfer driven by pgbench itself (a custom script calling ledger_apply_transfers), which
# shows how much of the cost is the database's rather than the Swift client's.
#   SECONDS_PER_RUN=10 CONFIGURATION=release bash scripts/bench-ledger.sh
set -euo pipefail
SCRIPT_NAME=bench-ledger
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_base_packages
ensure_swift
seconds=${SECONDS_PER_RUN:-10}

build_bench ledger-bench
start_bench_cluster bench-ledger 100 ledger

for clients in 8 32; do
    tpcb=$("$(pg_bindir)/pgbench" -c "$clients" -j 2 -T "$seconds" -n pgbench 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -n 1)
    printf '%2d clients: pgbench tpcb-like %8.0f tps\n' "$clients" "$tpcb"
    for scenario in hot spread; do
        ours=$("$BENCH_BIN" --database-url "postgresql://postgres@127.0.0.1:$PGPORT/ledger" --scenario "$scenario" \
            --concurrency "$clients" --seconds "$seconds" | sed -n 's/.*tps=\([0-9.]*\).*/\1/p')
        printf '%2d clients: ledger %-6s     %8.0f transfers/s   ratio to tpcb-like %.3f\n' "$clients" "$scenario" "$ours" "$(calc "$ours / $tpcb")"
    done
    if [ "$clients" = 8 ]; then
        wallet=$("$(pg_bindir)/psql" -Atq -d ledger -c "SELECT id FROM ledger_account WHERE kind = 'sub_account_wallet' ORDER BY id LIMIT 1")
        revenue=$("$(pg_bindir)/psql" -Atq -d ledger -c "SELECT r.id FROM ledger_account r JOIN ledger_account w ON w.reseller_id = r.reseller_id AND w.id = '$wallet' WHERE r.kind = 'reseller_revenue'")
        cat >"$THROWAWAY_DIR/transfer.sql" <<SQL
SELECT 1 FROM ledger_apply_transfers(jsonb_build_array(jsonb_build_object('id', gen_random_uuid(), 'kind', 'posted',
  'debit_account_id', '$wallet', 'credit_account_id', '$revenue', 'amount', 725, 'code', 'bench', 'created_by', 'bench')));
SQL
    fi
    direct=$("$(pg_bindir)/pgbench" -c "$clients" -j 2 -T "$seconds" -n -f "$THROWAWAY_DIR/transfer.sql" ledger 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -n 1)
    printf '%2d clients: hot via pgbench -f %8.0f transfers/s   ratio to tpcb-like %.3f\n' "$clients" "$direct" "$(calc "$direct / $tpcb")"
done
