#!/usr/bin/env bash
# Benchmark: what the monthly partitions of message_event cost (docs/partitioning.md), against the same table
# unpartitioned, on the same throwaway server in the same run. The schema is the real one (`sms-reseller migrate`);
# `message_event_flat` is a copy of message_event without partitions (same columns, identity, primary key without
# the month, the same insert trigger). Both hold the same ROWS rows spread over 13 months, so the partitioned table
# has 13 past months, this one and 3 ahead (17 partitions and the default).
#
# Three statements, each driven by pgbench at CLIENTS clients for SECONDS_PER_RUN seconds, partitioned and flat
# alternating, ROUNDS rounds:
#   insert-1    one event (a delivery report's)
#   insert-50   fifty events in one statement (a dispatcher batch's)
#   history     the events of one message by its id alone, in order: the partitioned table probes every month
#   history-from  the same as the service asks it (GET /messages/{id}, the 1601 report table): joined to the
#               message, from a day before its acceptance, which lets PostgreSQL skip the earlier months
# Then what partitioning `message` by month of `accepted_at` would cost its hot reads (MESSAGE_ROWS messages over 13
# months, 17 monthly partitions; docs/partitioning.md, "Not partitioned"): `message_flat` and `message_part` are
# copies of message's columns and indexes, one unpartitioned, one partitioned (its keys with accepted_at):
#   by-id       a message by id (joined to a table of ids and times), as the dispatcher and the settlement read it;
#               the partitioned table is also given the month (accepted_at), as they would have to carry it to prune,
#               and has a unique index on (id, accepted_at) in place of the flat table's on id
#   by-upstream a message by the upstream's id, as a delivery report finds it (no month known)
# Prints tps per round and the ratio partitioned / flat per statement (1.0: no cost). (No colon in the statements'
# text: pgbench would read `:name` as one of its variables.)
#   SECONDS_PER_RUN=10 ROUNDS=3 CLIENTS=8 ROWS=1000000 MESSAGE_ROWS=200000 bash scripts/bench-partitions.sh
#   STATEMENTS="by-id by-upstream" bash scripts/bench-partitions.sh     only those (both tables are loaded anyway)
# fsync and synchronous_commit are on (as in production).
set -euo pipefail
SCRIPT_NAME=bench-partitions
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

seconds=${SECONDS_PER_RUN:-10}
rounds=${ROUNDS:-3}
clients=${CLIENTS:-8}
rows=${ROWS:-1000000}
message_rows=${MESSAGE_ROWS:-200000}
statements=" ${STATEMENTS:-insert-1 insert-50 history history-from by-id by-upstream} "
ensure_base_packages
resolve_sms_reseller_binary
pgbin=$(pg_bindir)

start_throwaway_cluster bench-partitions max_connections=100 shared_buffers=256MB
export PGHOST=127.0.0.1 PGPORT=$THROWAWAY_PORT PGUSER=postgres PGDATABASE=postgres
DATABASE_URL="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/postgres" LOG_LEVEL=error "$SMS_RESELLER_BIN" migrate \
    || die "migrate failed"
log "loading $rows events into each table, over 13 months"
"$pgbin/psql" -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE message_event_flat (
    reseller_id uuid NOT NULL,
    message_id  uuid NOT NULL,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    status      text NOT NULL,
    code        integer,
    detail      text CHECK (length(detail) <= 500),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, seq)
);
CREATE TRIGGER message_event_flat_buffered_webhook AFTER INSERT ON message_event_flat
    FOR EACH ROW WHEN (NEW.status = 'report:buffered') EXECUTE FUNCTION webhook_message_buffered();
SELECT partman.create_partition_time('public.message_event',
    ARRAY(SELECT date_trunc('month', now() - m * interval '1 month') FROM generate_series(1, 13) m));
INSERT INTO message_event (reseller_id, message_id, status, detail, occurred_at)
SELECT '00000000-0000-0000-0000-000000000001', md5((i / 5)::text)::uuid, 'report:delivered', 'DELIVERED',
       now() - (i % 390) * interval '1 day'
FROM generate_series(1, $rows) i;
INSERT INTO message_event_flat (reseller_id, message_id, status, detail, occurred_at)
SELECT reseller_id, message_id, status, detail, occurred_at FROM message_event;
CREATE TABLE bench_message AS
    SELECT message_id AS id, min(occurred_at) - interval '1 minute' AS accepted_at FROM message_event GROUP BY 1;
ALTER TABLE bench_message ADD PRIMARY KEY (id);
VACUUM ANALYZE message_event;
VACUUM ANALYZE message_event_flat;
VACUUM ANALYZE bench_message;
SQL
log "loading $message_rows messages into message_flat and message_part, over 13 months"
"$pgbin/psql" -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE message_flat (LIKE message INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE message_flat ADD PRIMARY KEY (reseller_id, id), ADD UNIQUE (id);
CREATE TABLE message_part (LIKE message INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (accepted_at);
ALTER TABLE message_part ADD PRIMARY KEY (reseller_id, id, accepted_at), ADD UNIQUE (id, accepted_at);
SELECT partman.create_parent('public.message_part', 'accepted_at', 'native', 'monthly', p_premake := 3,
    p_start_partition := date_trunc('month', now() - interval '13 months')::text, p_jobmon := false);
CREATE INDEX ON message_flat (accepted_at);
CREATE INDEX ON message_part (accepted_at);
CREATE INDEX ON message_flat (submitted_at) WHERE status = 'submitted';
CREATE INDEX ON message_part (submitted_at) WHERE status = 'submitted';
CREATE INDEX ON message_flat (batch_id, position);
CREATE INDEX ON message_part (batch_id, position);
CREATE INDEX ON message_flat (gateway_id);
CREATE INDEX ON message_part (gateway_id);
CREATE INDEX ON message_flat (sub_account_id, recipient);
CREATE INDEX ON message_part (sub_account_id, recipient);
CREATE INDEX ON message_flat (sub_account_id) WHERE status = 'scheduled';
CREATE INDEX ON message_part (sub_account_id) WHERE status = 'scheduled';
CREATE INDEX ON message_flat (sub_account_id, accepted_at DESC, id DESC);
CREATE INDEX ON message_part (sub_account_id, accepted_at DESC, id DESC);
CREATE INDEX ON message_flat (upstream_id) WHERE upstream_id IS NOT NULL;
CREATE INDEX ON message_part (upstream_id) WHERE upstream_id IS NOT NULL;
INSERT INTO message_flat (reseller_id, id, sub_account_id, batch_id, position, recipient, country, retail_price,
    wholesale_price, upstream_cost, retail_version_id, wholesale_version_id, upstream_cost_version_id, status,
    upstream_id, accepted_at, status_at, gateway_id)
SELECT '00000000-0000-0000-0000-000000000001', md5('m' || i)::uuid, '00000000-0000-0000-0000-000000000002',
       md5('b' || (i / 10))::uuid, i % 10, '3161' || lpad(i::text, 7, '0'), '31', 100, 80, 60,
       gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'delivered', 'u' || i,
       now() - (i % 390) * interval '1 day', now(), i
FROM generate_series(0, $message_rows - 1) i;
INSERT INTO message_part SELECT * FROM message_flat;
CREATE TABLE bench_message_times AS SELECT id, accepted_at FROM message_flat;
ALTER TABLE bench_message_times ADD PRIMARY KEY (id);
VACUUM ANALYZE message_flat;
VACUUM ANALYZE message_part;
VACUUM ANALYZE bench_message_times;
SQL
partitions=$("$pgbin/psql" -X -A -t -c "SELECT count(*) FROM partman.show_partitions('public.message_event')")
messages=$((rows / 5))

work=$THROWAWAY_DIR/scripts
mkdir -p "$work"
for table in message_event message_event_flat; do
    cat >"$work/insert-1.$table.sql" <<SQL
INSERT INTO $table (reseller_id, message_id, status, detail)
VALUES ('00000000-0000-0000-0000-000000000001', gen_random_uuid(), 'delivered', 'DELIVERED');
SQL
    cat >"$work/insert-50.$table.sql" <<SQL
INSERT INTO $table (reseller_id, message_id, status)
SELECT '00000000-0000-0000-0000-000000000001', gen_random_uuid(), 'submitted' FROM generate_series(1, 50);
SQL
    cat >"$work/history.$table.sql" <<SQL
\set n random(0, $((messages - 1)))
SELECT status, occurred_at FROM $table WHERE message_id = md5(:n::text)::uuid ORDER BY seq;
SQL
    cat >"$work/history-from.$table.sql" <<SQL
\set n random(0, $((messages - 1)))
SELECT e.status, e.occurred_at
FROM bench_message m JOIN $table e ON e.message_id = m.id AND e.occurred_at >= m.accepted_at - interval '1 day'
WHERE m.id = md5(:n::text)::uuid ORDER BY e.seq;
SQL
done

cat >"$work/by-id.message_flat.sql" <<SQL
\set n random(0, $((message_rows - 1)))
SELECT m.status, m.upstream_id FROM bench_message_times b
JOIN message_flat m ON m.id = b.id WHERE b.id = md5('m' || :n)::uuid;
SQL
cat >"$work/by-id.message_part.sql" <<SQL
\set n random(0, $((message_rows - 1)))
SELECT m.status, m.upstream_id FROM bench_message_times b
JOIN message_part m ON m.id = b.id AND m.accepted_at = b.accepted_at WHERE b.id = md5('m' || :n)::uuid;
SQL
for table in message_flat message_part; do
    cat >"$work/by-upstream.$table.sql" <<SQL
\set n random(0, $((message_rows - 1)))
SELECT id, status FROM $table WHERE upstream_id = 'u' || :n;
SQL
done

tps() {
    local out
    out=$("$pgbin/pgbench" -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$1" 2>&1) || { printf '%s\n' "$out" | grep -i error | head -n 3 >&2; die "pgbench failed on $1"; }
    printf '%s\n' "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
# compare STATEMENT PARTITIONED FLAT: ROUNDS rounds of STATEMENT against the two tables, alternating; a line per
# round and the mean ratio.
compare() {
    local statement=$1 partitioned_table=$2 flat_table=$3 round partitioned flat ratio ratios=()
    [[ $statements == *" $statement "* ]] || return 0
    for round in $(seq 1 "$rounds"); do
        partitioned=$(tps "$work/$statement.$partitioned_table.sql")
        flat=$(tps "$work/$statement.$flat_table.sql")
        ratio=$(calc "$partitioned / $flat")
        ratios+=("$ratio")
        printf '%-12s round %d: partitioned %8.0f tps   flat %8.0f tps   ratio %.3f\n' \
            "$statement" "$round" "$partitioned" "$flat" "$ratio"
    done
    printf '%-12s ratio partitioned/flat: %s (mean %.3f)\n' "$statement" "${ratios[*]}" \
        "$(calc "($(IFS=+; echo "${ratios[*]}")) / ${#ratios[@]}")"
}

printf 'bench-partitions: %s rows, %s partitions of message_event and a default; %s clients, %s s per run\n' \
    "$rows" "$partitions" "$clients" "$seconds"
for statement in insert-1 insert-50 history history-from; do
    compare "$statement" message_event message_event_flat
done
message_partitions=$("$pgbin/psql" -X -A -t -c "SELECT count(*) FROM partman.show_partitions('public.message_part')")
printf 'bench-partitions: %s messages, %s partitions of message_part and a default\n' "$message_rows" "$message_partitions"
for statement in by-id by-upstream; do
    compare "$statement" message_part message_flat
done
