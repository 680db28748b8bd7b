# Shared helpers for scripts/run.sh, scripts/test.sh and scripts/bench-db.sh. Source it; do not run it.

log() { printf '\033[1m[%s]\033[0m %s\n' "${SCRIPT_NAME:-sms-reseller}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

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

# The packages every command needs: PostgreSQL server and client, libpq headers, pkg-config for SwiftPM.
ensure_base_packages() {
    ensure_packages postgresql libpq-dev pkg-config ca-certificates
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
    trap 'pg_stop "$THROWAWAY_DIR/data"; rm -rf "$THROWAWAY_DIR"' EXIT
    log "throwaway PostgreSQL on 127.0.0.1:$THROWAWAY_PORT in $THROWAWAY_DIR"
    as_postgres "$(pg_bindir)/initdb" -D "$THROWAWAY_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    pg_start "$THROWAWAY_DIR/data" "$THROWAWAY_PORT" "$THROWAWAY_DIR" "$THROWAWAY_DIR/postgres.log" "$@"
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
