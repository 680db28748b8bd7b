#!/usr/bin/env bash
# The month rollover, for real (docs/partitioning.md): PostgreSQL, the 1601 simulator and `sms-reseller serve` run
# with their clocks moved (libfaketime, one offset for all of them) to ROLLOVER_LEAD seconds before midnight UTC at
# the start of a month; the service takes sends across that midnight and their delivery reports arrive on both
# sides of it.
#
#   bash scripts/partition-rollover.sh
#
# 1. A throwaway cluster under /tmp and the service with its built-in simulator, both under
#    LD_PRELOAD=libfaketime.so.1 with FAKETIME=+OFFSET; the migrations run in the old month (the current one and
#    three ahead are made).
# 2. The fault suite's tenant over HTTP; sends until midnight (phase a), then sends after it (phase b).
# 3. Waits until every message has its final report (events `report:delivered` and the like on both sides).
# 4. Checks: no row in a default partition; every message_event row in the partition of its own UTC month; events
#    in both months; phase a accepted before midnight and phase b after; after `sms-reseller partitions maintain` in
#    the new month, the months up to three ahead of it are made, and none after; `partitions status` exits 0;
#    `sms-reseller verify-ledger` passes. (The service's own maintenance first runs a minute after its start, after
#    midnight here; it would make the same months.)
#
# Prints a summary and exits non-zero on any failure. Uses SMS_RESELLER_BIN when set (scripts/test.sh sets it), else
# builds (debug). ROLLOVER_LEAD (default 40) is how many seconds before
# midnight the clocks start; ROLLOVER_SENDS (default 20) the sends of each phase.
set -euo pipefail
SCRIPT_NAME=partition-rollover
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

lead=${ROLLOVER_LEAD:-40}
sends=${ROLLOVER_SENDS:-20}
[[ $lead =~ ^[0-9]+$ && $lead -ge 20 ]] || die "ROLLOVER_LEAD must be a whole number of seconds, at least 20"
[[ $sends =~ ^[0-9]+$ && $sends -ge 1 ]] || die "ROLLOVER_SENDS must be a positive whole number"
ensure_base_packages
ensure_packages python3 curl libfaketime gcc libc6-dev
resolve_sms_reseller_binary
bin=$SMS_RESELLER_BIN
faketime_lib=$(dpkg -L libfaketime | grep '/libfaketime\.so\.1$' | head -n 1)
[ -n "$faketime_lib" ] || die "libfaketime.so.1 not found"
started_at=$SECONDS
pgbin=$(pg_bindir)

# Midnight UTC at the start of the month after next: beyond the months the real clock has made anywhere.
midnight=$(date -u -d "$(date -u +%Y-%m-01) +2 month" +%s)
old_month=$(date -u -d "@$((midnight - 86400))" +%Y_%m)
new_month=$(date -u -d "@$midnight" +%Y_%m)
three_ahead=$(date -u -d "$(date -u -d "@$midnight" +%Y-%m-01) +3 month" +%Y_%m)
four_ahead=$(date -u -d "$(date -u -d "@$midnight" +%Y-%m-01) +4 month" +%Y_%m)

work=$(mktemp -d /tmp/sms-reseller-rollover.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/client"
give_to_postgres "$work"
at_exit "rm -rf $(printf %q "$work")"
port=$(free_port)
at_exit "pg_stop $(printf %q "$work/data")"
as_postgres "$pgbin/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null

# PostgreSQL and the service run on the moved clock (monotonic clocks are left alone); the commands that only talk
# to the database (migrate, partitions, verify-ledger, psql) need not: what counts there is the server's now().
# Two quirks of libfaketime (Debian's 0.9.10) with a Swift program:
# - it moves the absolute monotonic deadlines given to timerfd_settime by the offset, to before the epoch: the call
#   fails and every timer of Dispatch (Task.sleep) waits forever. A shim preloaded in front of it passes
#   timerfd_settime straight to the kernel;
# - the program sees no command line arguments, so the service is started bare: `serve` is the default command, it
#   reads every setting from the environment, and its built-in simulator answers the sends.
offset=$((midnight - lead - $(date -u +%s)))
cat >"$work/timerfd.c" <<'C'
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>
int timerfd_settime(int fd, int flags, const struct itimerspec *new_value, struct itimerspec *old_value) {
    return (int)syscall(SYS_timerfd_settime, fd, flags, new_value, old_value);
}
C
gcc -shared -fPIC -O2 -o "$work/timerfd.so" "$work/timerfd.c" || die "cannot build the timerfd shim"
fake_now() { echo $(($(date -u +%s) + offset)); }
log "clocks moved to $(date -u -d "@$(fake_now)" '+%F %T') UTC: midnight ${new_month//_/-}-01 is $lead s away"
mkdir -p "$work/sockets"
give_to_postgres "$work/sockets"
as_postgres env LD_PRELOAD="$faketime_lib" FAKETIME="+$offset" FAKETIME_DONT_FAKE_MONOTONIC=1 "$pgbin/pg_ctl" \
    -D "$work/data" -l "$work/postgres.log" -o "-p $port -k $work/sockets -c listen_addresses=127.0.0.1 -c fsync=off" \
    -w -t 60 start >/dev/null || { tail -n 30 "$work/postgres.log" >&2; die "PostgreSQL did not start"; }
export DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
psql_at() { "$pgbin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "$1"; }
db_now=$(psql_at "SELECT extract(epoch FROM now())::bigint")
[ $((midnight - db_now)) -gt 5 ] && [ $((midnight - db_now)) -le "$lead" ] \
    || die "PostgreSQL's clock is not moved ($(psql_at "SELECT now()")): is libfaketime working?"

"$bin" migrate >"$work/client/migrate.log" 2>&1 || { cat "$work/client/migrate.log" >&2; die "migrate failed"; }
admin=$("$bin" admin create-key --name "rollover" 2>>"$work/client/migrate.log" | tail -n 1)
service_port=$(free_port)
sim_port=$(free_port)
while [ "$sim_port" = "$service_port" ]; do sim_port=$(free_port); done
API="http://127.0.0.1:$service_port"
# `env` execs the binary: $! is the service itself.
env LD_PRELOAD="$work/timerfd.so $faketime_lib" FAKETIME="+$offset" FAKETIME_DONT_FAKE_MONOTONIC=1 \
    DATABASE_URL="$DATABASE_URL" PORT="$service_port" SIMULATOR_PORT="$sim_port" LOG_LEVEL=info \
    "$bin" >"$work/client/service.log" 2>&1 &
service_pid=$!
# A graceful stop, then a kill after 10 s: nothing of this run may outlive it.
at_exit "kill $service_pid 2>/dev/null; for _ in \$(seq 50); do kill -0 $service_pid 2>/dev/null || break; sleep 0.2; done; kill -9 $service_pid 2>/dev/null; wait $service_pid 2>/dev/null"
tries=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/health/ready" || true)" = 200 ]; do
    tries=$((tries + 1))
    [ $tries -lt 300 ] || { tail -n 30 "$work/client/service.log" >&2; die "the service did not become ready"; }
    kill -0 "$service_pid" 2>/dev/null || { tail -n 30 "$work/client/service.log" >&2; die "the service exited"; }
    sleep 0.2
done
python3 scripts/lib/drill_client.py setup "$API" "http://127.0.0.1:$sim_port" "$admin" "$API" >"$work/client/state.json"
sent="$work/client/sent.jsonl"
made_before=$(psql_at "SELECT string_agg(partition_tablename, ' ') FROM partman.show_partitions('public.message_event')")

log "phase a: sends until midnight"
phase_a=0
while [ $((midnight - $(fake_now))) -gt 2 ]; do
    python3 scripts/lib/drill_client.py send "$work/client/state.json" "$API" 1 "$sent" a
    phase_a=$((phase_a + 1))
done
[ "$phase_a" -ge 1 ] || die "no send before midnight: raise ROLLOVER_LEAD"
while [ "$(fake_now)" -le "$midnight" ]; do sleep 0.2; done
log "midnight passed ($(psql_at "SELECT now()")); phase b: $sends sends"
python3 scripts/lib/drill_client.py send "$work/client/state.json" "$API" "$sends" "$sent" b

log "waiting for every message's final report"
tries=0
until [ "$(psql_at "SELECT count(*) FROM message WHERE status IN ('queued', 'submitted', 'scheduled')")" = 0 ]; do
    tries=$((tries + 1))
    [ $tries -lt 600 ] || { psql_at "SELECT status, count(*) FROM message GROUP BY 1" >&2
        grep -v ' info ' "$work/client/service.log" | tail -n 20 >&2; die "messages still wait for a report after 120 s"; }
    sleep 0.2
done

maintain_output=$("$bin" partitions maintain 2>>"$work/client/maintain.log")
status_rc=0
"$bin" partitions status >"$work/client/status.txt" 2>>"$work/client/maintain.log" || status_rc=$?
verify_output=$("$bin" verify-ledger 2>>"$work/client/verify.log") || true
verdict=$(printf '%s\n' "$verify_output" | tail -n 1)

python3 scripts/lib/drill_client.py ids "$sent" a >"$work/client/a.txt"
python3 scripts/lib/drill_client.py ids "$sent" b >"$work/client/b.txt"
accepted() {  # accepted IDS_FILE: "before after" counts against midnight
    psql_at "SELECT count(*) FILTER (WHERE accepted_at < to_timestamp($midnight)) || ' ' ||
                    count(*) FILTER (WHERE accepted_at >= to_timestamp($midnight))
             FROM message WHERE id = ANY ('{$(paste -sd, "$1")}'::uuid[])"
}
read -r a_before a_after <<<"$(accepted "$work/client/a.txt")"
read -r b_before b_after <<<"$(accepted "$work/client/b.txt")"
in_default=$(psql_at "SELECT (SELECT count(*) FROM message_event_default) + (SELECT count(*) FROM webhook_attempt_default)")
misplaced=$(psql_at "SELECT count(*) FROM message_event
                     WHERE tableoid::regclass::text <> 'message_event_p' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY_MM')")
events_old=$(psql_at "SELECT count(*) FROM message_event_p$old_month")
events_new=$(psql_at "SELECT count(*) FROM message_event_p$new_month")
reports_new=$(psql_at "SELECT count(*) FROM message_event_p$new_month WHERE status LIKE 'report:%'")

printf 'partition-rollover: midnight %s; months before: %s\n' "$(date -u -d "@$midnight" '+%F %T')" "$made_before"
printf 'partition-rollover: phase a %s sends (before midnight %s, after %s), phase b %s (before %s, after %s)\n' \
    "$phase_a" "$a_before" "$a_after" "$(wc -l <"$work/client/b.txt")" "$b_before" "$b_after"
printf 'partition-rollover: events in p%s %s, in p%s %s (%s reports); misplaced %s; in default partitions %s\n' \
    "$old_month" "$events_old" "$new_month" "$events_new" "$reports_new" "$misplaced" "$in_default"
printf 'partition-rollover: maintenance in the new month: %s; status exit %s; verify-ledger: %s; %s s\n' \
    "$(printf '%s' "$maintain_output" | tr '\n' ' ')" "$status_rc" "$verdict" "$((SECONDS - started_at))"
[ "$a_after" = 0 ] && [ "$b_before" = 0 ] && [ "$a_before" = "$phase_a" ] \
    || die "the sends did not fall on the two sides of midnight"
[ "$in_default" = 0 ] && [ "$misplaced" = 0 ] || die "rows are not in the partitions of their months"
[ "$events_old" -gt 0 ] && [ "$reports_new" -gt 0 ] || die "events did not arrive on both sides of midnight"
[ "$(psql_at "SELECT to_regclass('message_event_p$three_ahead') IS NOT NULL AND to_regclass('webhook_attempt_p$three_ahead') IS NOT NULL
                   AND to_regclass('message_event_p$four_ahead') IS NULL")" = t ] \
    || die "in the new month, the months up to $three_ahead (three ahead) should be made, and none after"
[ "$status_rc" = 0 ] || { cat "$work/client/status.txt" >&2; die "partitions status exited $status_rc"; }
[ "$verdict" = invariants=ok ] || { printf '%s\n' "$verify_output" >&2; die "verify-ledger failed"; }
log "the month rolled over under traffic: every row in its month, the next month made, the books hold"
