#!/usr/bin/env bash
# Regenerates Migrations/schema.sql: the database schema after every migration, to read and to review in diffs. It is
# never applied (the numbered migrations are the applied history). The real binary applies the migrations
# (`sms-reseller migrate`) to a fresh database, which `pg_dump --schema-only --no-owner --no-privileges` then dumps
# (less the monthly partitions), without the lines that differ between runs, machines and pg_dump versions (version comments, \restrict tokens,
# session SET lines).
#   bash scripts/schema.sh           writes Migrations/schema.sql
#   bash scripts/schema.sh --check   exit 1 with the diff when Migrations/schema.sql differs from what it would write
#                                    (scripts/test.sh runs this)
# The fresh database is made in a throwaway cluster under /tmp, or, with TEST_DATABASE_URL set (scripts/test.sh sets it),
# in that cluster; either way it is removed at exit. The binary is built with `swift build --product sms-reseller`
# (debug); SMS_RESELLER_BIN=path uses that binary instead and builds nothing.
set -euo pipefail
SCRIPT_NAME=schema
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

check=false
case ${1:-} in
    "") ;;
    --check) check=true ;;
    *) die "usage: bash scripts/schema.sh [--check]" ;;
esac
target=Migrations/schema.sql
fix="bash scripts/schema.sh"
if $check && [ ! -f "$target" ]; then
    log "error: $target is missing; create it with: $fix"
    exit 1
fi

ensure_base_packages
resolve_sms_reseller_binary
work=$(mktemp -d /tmp/sms-reseller-schema-out.XXXXXX)
at_exit "rm -rf $(printf %q "$work")"
fresh_database schema

if ! DATABASE_URL=$FRESH_DATABASE_URL LOG_LEVEL=warning "$SMS_RESELLER_BIN" migrate >"$work/migrate.log" 2>&1; then
    cat "$work/migrate.log" >&2
    die "sms-reseller migrate failed"
fi
# The monthly partitions (message_event_p2026_12, …) depend on the day the migrations ran: left out. The default
# partitions and pg_partman's template tables stay (docs/partitioning.md).
"$(pg_bindir)/pg_dump" --schema-only --no-owner --no-privileges -d "$FRESH_DATABASE_URL" \
    --exclude-table='public.*_p[0-9][0-9][0-9][0-9]_[0-9][0-9]' >"$work/dump.sql" || die "pg_dump failed"

{
    cat <<'HEADER'
-- GENERATED FILE, do not edit: `bash scripts/schema.sh` writes it, `bash scripts/schema.sh --check` (part of
-- scripts/test.sh) fails while it is out of date.
-- The schema after every migration in this folder, as pg_dump --schema-only --no-owner --no-privileges prints it
-- (less session settings and version lines). It is NOT applied: the numbered migrations are the applied history;
-- change the schema with a new migration, then run the command above.

HEADER
    grep -v -E '^(-- Dumped (from database|by pg_dump) version |\\(un)?restrict |SET |SELECT pg_catalog\.set_config\()' "$work/dump.sql" | cat -s
} >"$work/schema.sql"

if ! $check; then
    cp "$work/schema.sql" "$target"
    log "wrote $target ($(wc -l <"$target") lines)"
    exit 0
fi
if ! diff -u --label "$target (checked in)" --label "$target (from the migrations)" "$target" "$work/schema.sql"; then
    log "error: $target is out of date with the migrations (diff above); regenerate it with: $fix"
    exit 1
fi
log "$target is up to date"
