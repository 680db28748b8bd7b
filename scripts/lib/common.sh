# Shared helpers for the scripts in scripts/. Source it; do not run it.

log() { printf '\033[1m[%s]\033[0m %s\n' "${SCRIPT_NAME:-sms-reseller}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# at_exit COMMAND: evaluates COMMAND when the script exits (on failure too), before those registered earlier.
# Every cleanup goes through here: a second `trap … EXIT` would replace the first.
AT_EXIT=()
at_exit() {
    AT_EXIT=("$1" ${AT_EXIT[@]+"${AT_EXIT[@]}"})
    trap run_at_exit EXIT
}
run_at_exit() {
    local command
    trap '' PIPE  # output piped into `head` that has gone must not stop the cleanup halfway
    for command in ${AT_EXIT[@]+"${AT_EXIT[@]}"}; do eval "$command" || true; done
}

# Installs the Debian packages that are missing (apt-get update only when something is).
ensure_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root or install them first"
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The packages every command needs: PostgreSQL server and client, libpq headers, pkg-config for SwiftPM, libharu
# (libhpdf-dev, which brings the runtime library libhpdf-2.3.0) and the DejaVu fonts for the invoice PDFs; then
# pg_partman for that server's major version (the migrations create the extension: docs/partitioning.md).
ensure_base_packages() {
    ensure_packages postgresql libpq-dev zlib1g-dev pkg-config ca-certificates libhpdf-dev fonts-dejavu-core
    ensure_packages "postgresql-$(basename "$(dirname "$(pg_bindir)")")-partman"
}

# What only the tests need on top: poppler-utils (pdftotext, pdfinfo, pdffonts), with which InvoicePDFTests read the
# rendered PDFs back, and gdb, with which scripts/lib/stall-watch.sh reports the stacks of a test run that hangs.
ensure_test_packages() {
    ensure_packages poppler-utils gdb
}

# Swift comes with the machine image under /opt/swift; make sure it is on PATH.
ensure_swift() {
    if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    fi
    command -v swift >/dev/null 2>&1 || die "swift is not installed (expected under /opt/swift/usr/bin)"
}

# The newest installed PostgreSQL server binaries.
pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    printf '%s\n' "$dir"
}

# Runs a command as the postgres user when we are root (PostgreSQL refuses to run as root).
# It starts in / because the postgres user may not be allowed into the current folder.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Gives a folder to the postgres user when we are root.
give_to_postgres() {
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$@"; fi
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# pg_start DATA_DIR PORT SOCKET_DIR LOG_FILE [extra postgres -c settings…]
pg_start() {
    local data=$1 port=$2 sockets=$3 logfile=$4
    shift 4
    local options="-p $port -k $sockets -c listen_addresses=127.0.0.1"
    local setting
    for setting in "$@"; do options="$options -c $setting"; done
    mkdir -p "$sockets"
    give_to_postgres "$sockets"
    as_postgres "$(pg_bindir)/pg_ctl" -D "$data" -l "$logfile" -o "$options" -w -t 60 start >/dev/null \
        || { tail -n 30 "$logfile" >&2 || true; die "PostgreSQL did not start (log: $logfile)"; }
}

# pg_stop DATA_DIR
pg_stop() {
    as_postgres "$(pg_bindir)/pg_ctl" -D "$1" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# start_throwaway_cluster NAME [postgres -c settings…]
# Creates a trust-auth cluster under /tmp (reachable by the postgres user whatever the checkout's
# location), starts it on a free port, and removes it when the calling script exits.
# Sets THROWAWAY_PORT and THROWAWAY_DIR.
start_throwaway_cluster() {
    local name=$1
    shift
    THROWAWAY_DIR=$(mktemp -d "/tmp/sms-reseller-$name.XXXXXX")
    chmod 755 "$THROWAWAY_DIR"
    give_to_postgres "$THROWAWAY_DIR"
    THROWAWAY_PORT=$(free_port)
    at_exit "pg_stop $(printf %q "$THROWAWAY_DIR/data"); rm -rf $(printf %q "$THROWAWAY_DIR")"
    log "throwaway PostgreSQL on 127.0.0.1:$THROWAWAY_PORT in $THROWAWAY_DIR"
    as_postgres "$(pg_bindir)/initdb" -D "$THROWAWAY_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    pg_start "$THROWAWAY_DIR/data" "$THROWAWAY_PORT" "$THROWAWAY_DIR" "$THROWAWAY_DIR/postgres.log" "$@"
}

# The sms-reseller binary to run, in SMS_RESELLER_BIN (exported, so scripts started from this one reuse it):
# $SMS_RESELLER_BIN when it is set (nothing is built; scripts/test.sh sets it to the binary it has just built),
# else the one `swift build --product sms-reseller` builds now in ${BUILD_CONFIGURATION:-debug}.
resolve_sms_reseller_binary() {
    if [ -n "${SMS_RESELLER_BIN:-}" ]; then
        [ -f "$SMS_RESELLER_BIN" ] && [ -x "$SMS_RESELLER_BIN" ] || die "SMS_RESELLER_BIN=$SMS_RESELLER_BIN is not an executable file"
    else
        ensure_swift
        local configuration=${BUILD_CONFIGURATION:-debug}
        log "building sms-reseller ($configuration)"
        swift build -c "$configuration" --product sms-reseller
        SMS_RESELLER_BIN="$(swift build -c "$configuration" --show-bin-path)/sms-reseller"
    fi
    export SMS_RESELLER_BIN
}

# database_url URL NAME: the libpq URL URL with its database replaced by NAME (query parameters kept).
database_url() {
    local url=$1 name=$2 base query
    base=${url%%\?*}
    query=${url:${#base}}
    case ${base#*://} in */*) base=${base%/*} ;; esac
    printf '%s/%s%s\n' "$base" "$name" "$query"
}

# fresh_database NAME
# An empty database of its own for this script, gone when the script exits; sets FRESH_DATABASE_URL. With
# TEST_DATABASE_URL set (scripts/test.sh sets it to its throwaway cluster) the database is created in that cluster,
# whose user must be allowed to create databases, and dropped at exit; otherwise a throwaway cluster of its own
# is started under /tmp (start_throwaway_cluster) and removed at exit.
fresh_database() {
    local name=$1 admin_url database where="the throwaway cluster"
    database="${name//[^a-z0-9]/_}_$$_$RANDOM"
    if [ -n "${TEST_DATABASE_URL:-}" ]; then
        admin_url=$TEST_DATABASE_URL
        where="the cluster of TEST_DATABASE_URL"
        log "database $database in the cluster of TEST_DATABASE_URL"
        at_exit "drop_database $(printf %q "$admin_url") $database"
    else
        start_throwaway_cluster "$name" fsync=off synchronous_commit=off full_page_writes=off
        admin_url="postgresql://postgres@127.0.0.1:$THROWAWAY_PORT/postgres"
    fi
    "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -d "$admin_url" -c "CREATE DATABASE $database" >/dev/null \
        || die "cannot create database $database in $where"
    FRESH_DATABASE_URL=$(database_url "$admin_url" "$database")
}

# drop_database ADMIN_URL NAME: drops NAME (closing its sessions) through the database at ADMIN_URL; quiet.
drop_database() {
    "$(pg_bindir)/psql" -X -q -d "$1" -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)" >/dev/null 2>&1 || true
}

# Builds the benchmark product $1 in $CONFIGURATION (default release) and sets BENCH_BIN to its path.
build_bench() {
    local product=$1 configuration=${CONFIGURATION:-release}
    log "building $product ($configuration)"
    swift build -c "$configuration" --product "$product" >/dev/null
    BENCH_BIN="$(swift build -c "$configuration" --show-bin-path)/$product"
}

# A throwaway cluster named $1 with max_connections=$2 for a benchmark: pgbench's tables (scale 10) in the database
# `pgbench` for the baseline, and an empty database for each further argument. PGHOST, PGPORT and PGUSER point at it.
start_bench_cluster() {
    local name=$1 connections=$2
    shift 2
    start_throwaway_cluster "$name" "max_connections=$connections" shared_buffers=256MB
    export PGHOST=127.0.0.1 PGPORT=$THROWAWAY_PORT PGUSER=postgres
    local database
    for database in pgbench "$@"; do "$(pg_bindir)/psql" -q -d postgres -c "CREATE DATABASE $database"; done
    log "pgbench -i -s 10"
    "$(pg_bindir)/pgbench" -i -s 10 -q pgbench >/dev/null 2>&1
}

# Prints the arithmetic expression $1 with three decimals.
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# start_fresh_service LOG_FILE [VAR=value…]
# `sms-reseller serve --migrate` on $DATABASE_URL with the built-in simulator, both on free ports, and nothing else
# from the caller's environment but the given variables; waits until it is ready (dies, showing the log's end, if it
# exits or is not ready within 30 s) and stops it at exit. Sets API, SIM and SERVICE_PID.
start_fresh_service() {
    local logfile=$1 port simulator_port
    shift
    port=$(free_port)
    simulator_port=$(free_port)
    while [ "$simulator_port" = "$port" ]; do simulator_port=$(free_port); done
    API=http://127.0.0.1:$port
    SIM=http://127.0.0.1:$simulator_port
    log "sms-reseller serve --migrate on 127.0.0.1:$port, the simulator on 127.0.0.1:$simulator_port"
    env -i PATH="$PATH" HOME="${HOME:-/root}" ${LD_LIBRARY_PATH:+LD_LIBRARY_PATH="$LD_LIBRARY_PATH"} \
        DATABASE_URL="$DATABASE_URL" UPSTREAM_CREDENTIALS_KEY="$(head -c 32 /dev/urandom | base64)" "$@" \
        "$SMS_RESELLER_BIN" serve --migrate --port "$port" --simulator-port "$simulator_port" >"$logfile" 2>&1 &
    SERVICE_PID=$!
    at_exit "stop_service $SERVICE_PID"
    wait_until_ready "$SERVICE_PID" "$logfile"
}

# wait_until_ready PID LOG_FILE: waits until $API/health/ready answers 200; dies, showing the log's end, if the
# process exits first or 30 s pass.
wait_until_ready() {
    local i
    for i in $(seq 1 300); do
        [ "$(command curl -s -o /dev/null -w '%{http_code}' "$API/health/ready")" != 200 ] || return 0
        kill -0 "$1" 2>/dev/null || { tail -n 40 "$2" >&2; die "the service exited before it was ready"; }
        sleep 0.1
    done
    tail -n 40 "$2" >&2
    die "the service was not ready within 30 s"
}

# stop_service PID: SIGTERM, then SIGKILL if it has not stopped within 10 s.
stop_service() {
    kill -TERM "$1" 2>/dev/null || return 0
    local i
    for i in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    log "the service did not stop within 10 s of SIGTERM; killing it"
    kill -KILL "$1" 2>/dev/null || true
}
