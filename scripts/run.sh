#!/usr/bin/env bash
# Installs what is missing, builds sms-reseller and serves the API, or runs another of its subcommands against
# the same database:
#   bash scripts/run.sh [serve options]              serves: `sms-reseller serve --migrate [options]`, e.g. --port 9000
#   bash scripts/run.sh serve [serve options]        the same
#   bash scripts/run.sh admin create-key --name NAME  prints a new platform admin API key (how the first one is made)
#   bash scripts/run.sh migrate                      applies pending migrations and exits
# A first argument that is neither `serve` nor an option names a subcommand: `sms-reseller "$@"` runs instead of
# serving, and its exit status is run.sh's.
# With DATABASE_URL set, that database is used. Without it, a private PostgreSQL cluster is created on first run
# (reused afterwards) under .data/ in the project, run as the postgres user on 127.0.0.1:${SMS_RESELLER_PG_PORT:-54329}
# (SMS_RESELLER_DATA_DIR moves .data; when the postgres user cannot enter it, a checkout under /root say, the cluster
# lives in /var/lib/sms-reseller/<hash>/, linked from .data/postgres). If the cluster is not running, run.sh starts it
# and stops it again when the service or the subcommand exits; one already running (a `run.sh` serving in another
# terminal) is used and left running. DATABASE_URL and UPSTREAM_CREDENTIALS_KEY (generated once into
# .data/upstream-credentials.key) are passed to the binary.
# The binary is built with `swift build` (BUILD_CONFIGURATION, default debug); SMS_RESELLER_BIN=path runs that
# binary instead and builds nothing (no Swift needed).
set -euo pipefail
SCRIPT_NAME=run
cd "$(dirname "$0")/.."
project=$(pwd)
source scripts/lib/common.sh

mode=serve
if [ $# -gt 0 ]; then
    case $1 in
        serve) shift ;;
        -*) ;;
        *) mode="command" ;;
    esac
fi

ensure_base_packages
resolve_sms_reseller_binary
binary=$SMS_RESELLER_BIN

cluster=""
given_database=${DATABASE_URL:+yes}
if [ -z "${DATABASE_URL:-}" ]; then
    data="${SMS_RESELLER_DATA_DIR:-$project/.data}"
    port="${SMS_RESELLER_PG_PORT:-54329}"
    mkdir -p "$data"
    cluster="$data/postgres"
    # The postgres user must be able to reach the cluster folder. A checkout under a folder it
    # cannot enter (/root, say) keeps the cluster under /var/lib/sms-reseller instead, linked from .data/.
    if [ ! -e "$cluster" ] && [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$data" 2>/dev/null; then
        elsewhere="/var/lib/sms-reseller/$(printf '%s' "$project" | sha256sum | cut -c1-12)"
        mkdir -p "$elsewhere/postgres"
        ln -sfn "$elsewhere/postgres" "$cluster"
        log "the postgres user cannot enter $data; keeping the cluster in $elsewhere/postgres (linked from $cluster)"
    fi
    mkdir -p "$cluster"
    cluster=$(cd "$cluster" && pwd -P)
    password_file="$data/postgres.password"
    if [ ! -f "$cluster/PG_VERSION" ]; then
        log "creating a private PostgreSQL cluster in $cluster"
        umask 077
        head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$password_file"
        umask 022
        give_to_postgres "$cluster"
        chmod 700 "$cluster"
        pwfile=$(mktemp /tmp/sms-reseller-pw.XXXXXX)
        cp "$password_file" "$pwfile"
        give_to_postgres "$pwfile"
        as_postgres "$(pg_bindir)/initdb" -D "$cluster" -U sms_reseller --pwfile="$pwfile" \
            --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
        rm -f "$pwfile"
    fi
    sockets="/tmp/sms-reseller-pg.$port"
    # The server log sits beside the cluster, where the postgres user can write.
    server_log="$(dirname "$cluster")/postgres.log"
    if as_postgres "$(pg_bindir)/pg_ctl" -D "$cluster" status >/dev/null 2>&1; then
        log "private PostgreSQL already running on 127.0.0.1:$port"
        cluster=""  # someone else started it; leave it running
    else
        log "starting private PostgreSQL on 127.0.0.1:$port (data: $cluster, log: $server_log)"
        touch "$server_log"
        give_to_postgres "$server_log"
        stopping=$cluster
        at_exit 'log "stopping private PostgreSQL"; pg_stop "$stopping"'
        pg_start "$cluster" "$port" "$sockets" "$server_log"
    fi
    password=$(cat "$password_file")
    # Created on first run, and again if an earlier first run stopped before it got here.
    if [ -z "$(PGPASSWORD="$password" psql -qAt -h 127.0.0.1 -p "$port" -U sms_reseller -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = 'sms_reseller'")" ]; then
        PGPASSWORD="$password" psql -q -h 127.0.0.1 -p "$port" -U sms_reseller -d postgres -c "CREATE DATABASE sms_reseller" >/dev/null
    fi
    export DATABASE_URL="postgresql://sms_reseller:$password@127.0.0.1:$port/sms_reseller"
    # Upstream passwords are stored encrypted with this key; it belongs with the cluster it protects.
    if [ -z "${UPSTREAM_CREDENTIALS_KEY:-}" ]; then
        key_file="$data/upstream-credentials.key"
        if [ ! -s "$key_file" ]; then
            (umask 077; head -c 32 /dev/urandom | base64 > "$key_file")
            log "generated $key_file: it encrypts upstream passwords in the database; keep it with the cluster"
        fi
        UPSTREAM_CREDENTIALS_KEY=$(cat "$key_file")
        export UPSTREAM_CREDENTIALS_KEY
    fi
fi

if [ "$mode" = command ]; then
    status=0
    "$binary" "$@" || status=$?
    exit "$status"
fi

log "the first admin API key: run \`bash scripts/run.sh admin create-key --name \"ops laptop\"\` in another terminal${given_database:+ (with the same DATABASE_URL)}"
"$binary" serve --migrate "$@" &
service=$!
trap 'kill -TERM $service 2>/dev/null || true' INT TERM
status=0
wait "$service" || status=$?
# A signal interrupts the first wait; wait again for the graceful shutdown to finish.
if kill -0 "$service" 2>/dev/null; then wait "$service" || status=$?; fi
exit "$status"
