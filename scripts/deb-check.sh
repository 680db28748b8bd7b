#!/usr/bin/env bash
# Installs the Debian package on this machine, runs the service as its systemd units would, and removes and purges it
# again, checking each step; the last line is "N passed, N failed". Root only; refuses to run where sms-reseller is
# installed already (it would be purged at the end).
#   bash scripts/deb-check.sh               builds the package first (scripts/package-deb.sh: a release build)
#   DEB=path.deb bash scripts/deb-check.sh  checks that package
#   KEEP_WORK=1 …                          keeps the logs and system call traces under /run/sms-reseller-deb-check.*
# The steps:
#   1. dpkg -i: the files, the system user, /etc/sms-reseller/env as a conffile with mode 0640 root:sms-reseller, the
#      migrations in the resource bundle beside the binary, no library missing nor taken from the Swift toolchain,
#      `systemd-analyze verify` of both units and their `systemd-analyze security --offline=yes` exposure;
#   2. /etc/sms-reseller/env filled in as an operator would (a throwaway PostgreSQL under /tmp, free ports, a
#      credentials key), then sms-reseller-migrate.service's ExecStart and sms-reseller.service's ExecStart, read from
#      the installed units, run as the units run them, since systemd is not PID 1 everywhere (not on the machines
#      this was written on): as the user sms-reseller with the environment file and nothing else, no new privileges,
#      no capabilities, UMask, MemoryDenyWriteExecute and RestrictAddressFamilies (scripts/lib/unit-exec.c: systemd's
#      seccomp filters for them, and the kernel's PR_SET_MDWE), ProtectSystem=strict and ProtectHome (the file system read-only), PrivateTmp, and the
#      build folder hidden, so the migrations can only come from the installed bundle. Under strace: every system
#      call the service made must be in the units' SystemCallFilter= (@system-service, less @privileged and
#      @resources; libdispatch's setpriority is refused as systemd would and the service must serve all the same), and no writable and executable memory asked for; /health/live, /health/ready, an admin key made by `sms-reseller admin
#      create-key` as that user and a request with it; SIGTERM stops it, exit status 0;
#   3. dpkg -i again (an upgrade): the operator's env file and its mode are kept;
#   4. dpkg -r: the program and the units are gone, the env file (a conffile) and the user stay;
#   5. dpkg -P: nothing of the package is left (every path of `dpkg-deb -c`), nor the user, group or override.
set -euo pipefail
SCRIPT_NAME=deb-check
cd "$(dirname "$0")/.."
project=$(pwd)
source scripts/lib/common.sh

[ "$(id -u)" -eq 0 ] || die "run as root: it installs and purges a package"
if dpkg-query -W -f='${Status}' sms-reseller 2>/dev/null | grep -q "installed\|config-files\|unpacked"; then
    die "sms-reseller is installed on this machine; deb-check would purge it. Remove it first (dpkg -P sms-reseller)"
fi
ensure_packages postgresql postgresql-15-partman strace gcc libc6-dev util-linux adduser curl jq

passed=0
failed=0
check() { # check DESCRIPTION COMMAND…: runs COMMAND quietly, counts and prints the result
    local description=$1
    shift
    if "$@" >/dev/null 2>&1; then
        passed=$((passed + 1))
        printf '  ok    %s\n' "$description"
    else
        failed=$((failed + 1))
        printf '  FAIL  %s\n' "$description"
    fi
}

deb=${DEB:-}
if [ -z "$deb" ]; then
    deb=$(bash scripts/package-deb.sh | tail -n 1)
fi
[ -f "$deb" ] || die "no package at $deb"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

# Helpers and the strace output live under /run: the sandbox puts a fresh tmpfs over /tmp (PrivateTmp).
work=$(mktemp -d /run/sms-reseller-deb-check.XXXXXX)
chmod 755 "$work"
# KEEP_WORK=1 keeps it (the logs and traces) for a look afterwards.
[ -n "${KEEP_WORK:-}" ] || at_exit "rm -rf $(printf %q "$work")"
gcc -O2 -o "$work/unit-exec" scripts/lib/unit-exec.c
# Whatever happens, the machine is left without the package.
at_exit 'dpkg-query -W sms-reseller >/dev/null 2>&1 && { log "purging sms-reseller"; dpkg -P sms-reseller >/dev/null 2>&1 || true; }'

log "1. dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || {
    cat "$work/dpkg-i.log" >&2
    die "dpkg -i failed (missing dependencies? apt-get install -f installs them)"
}
check "installed: dpkg says install ok installed" sh -c "dpkg-query -W -f='\${Status}' sms-reseller | grep -qx 'install ok installed'"
check "/usr/bin/sms-reseller runs (--help)" /usr/bin/sms-reseller --help
check "system user sms-reseller: uid below 1000, no shell, no home" sh -c \
    'u=$(getent passwd sms-reseller) && [ "$(echo "$u" | cut -d: -f3)" -lt 1000 ] && echo "$u" | grep -q ":/nonexistent:/usr/sbin/nologin$"'
check "group sms-reseller" getent group sms-reseller
check "/etc/sms-reseller/env: mode 0640, root:sms-reseller" sh -c \
    '[ "$(stat -c "%a %U:%G" /etc/sms-reseller/env)" = "640 root:sms-reseller" ]'
check "/etc/sms-reseller/env is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' sms-reseller | grep -q ' /etc/sms-reseller/env '"
check "/etc/sms-reseller/env sets nothing (every setting commented out)" sh -c '! grep -vE "^[[:space:]]*(#|$)" /etc/sms-reseller/env'
bundle=/usr/lib/sms-reseller/sms-reseller_ResellerCore.resources/Migrations
check "every migration of Sources/ResellerCore/Migrations is in the installed bundle" sh -c \
    "cd Sources/ResellerCore/Migrations && for f in *.sql; do cmp -s \"\$f\" $bundle/\"\$f\" || exit 1; done"
check "no library missing, none from the Swift toolchain (ldd)" sh -c \
    '! ldd /usr/lib/sms-reseller/sms-reseller | grep -q "not found\|/opt/swift"'
check "Depends names libpq5, libhpdf, zlib1g, fonts-dejavu-core" sh -c \
    "dpkg-query -W -f='\${Depends}' sms-reseller | grep -q 'libpq5' && dpkg-query -W -f='\${Depends}' sms-reseller | grep -q 'libhpdf' && dpkg-query -W -f='\${Depends}' sms-reseller | grep -q 'zlib1g' && dpkg-query -W -f='\${Depends}' sms-reseller | grep -q 'fonts-dejavu-core'"
check "systemd-analyze verify: both units clean" sh -c \
    '[ -z "$(systemd-analyze verify /lib/systemd/system/sms-reseller.service /lib/systemd/system/sms-reseller-migrate.service 2>&1)" ]'
for unit in sms-reseller.service sms-reseller-migrate.service; do
    exposure=$(systemd-analyze security --offline=yes "/lib/systemd/system/$unit" 2>/dev/null | tail -n 1 || true)
    log "systemd-analyze security --offline=yes $unit: ${exposure#→ }"
done

log "2. a throwaway PostgreSQL, /etc/sms-reseller/env filled in, the units' ExecStart lines run as systemd would"
start_throwaway_cluster deb-check
psql_admin() { "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$THROWAWAY_PORT" -U postgres -d postgres "$@"; }
psql_admin -c "CREATE ROLE sms_reseller LOGIN" -c "CREATE DATABASE sms_reseller OWNER sms_reseller"
# pg_partman as docs/deployment.md has the operator make it: the service's role is not a superuser.
"$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$THROWAWAY_PORT" -U postgres -d sms_reseller \
    -c "CREATE SCHEMA partman" -c "CREATE EXTENSION pg_partman SCHEMA partman" \
    -c "GRANT ALL ON SCHEMA partman TO sms_reseller" -c "GRANT ALL ON ALL TABLES IN SCHEMA partman TO sms_reseller" \
    -c "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA partman TO sms_reseller" \
    -c "GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA partman TO sms_reseller"
port=$(free_port)
simulator_port=$(free_port)
while [ "$simulator_port" = "$port" ]; do simulator_port=$(free_port); done
cat >>/etc/sms-reseller/env <<EOF

# Filled in by scripts/deb-check.sh
DATABASE_URL=postgresql://sms_reseller@127.0.0.1:$THROWAWAY_PORT/sms_reseller
UPSTREAM_CREDENTIALS_KEY=$(head -c 32 /dev/urandom | base64)
PORT=$port
SIMULATOR_PORT=$simulator_port
LOG_FORMAT=json
EOF
API=http://127.0.0.1:$port

# The environment systemd gives a system service of User=sms-reseller, plus EnvironmentFile= (KEY=value lines; # and
# ; start comments; surrounding quotes dropped).
unit_environment=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent
    USER=sms-reseller LOGNAME=sms-reseller SHELL=/usr/sbin/nologin)
while IFS= read -r line || [ -n "$line" ]; do
    case $line in '' | '#'* | ';'*) continue ;; *=*) ;; *) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    case $value in \"*\") value=${value:1:-1} ;; \'*\') value=${value:1:-1} ;; esac
    unit_environment+=("$key=$value")
done </etc/sms-reseller/env

# The ExecStart= line of an installed unit, split into words (they have no quotes).
exec_start() { sed -n 's/^ExecStart=//p' "/lib/systemd/system/$1" | tail -n 1; }
# Where the build left the resource bundle: the binary falls back to it when none is beside it, so it is hidden.
build_bundle=$(strings /usr/lib/sms-reseller/sms-reseller | grep -m 1 '^/.*/sms-reseller_ResellerCore.resources$' || true)
hide=$(dirname "${build_bundle:-/nonexistent/x}")
[ -d "$hide" ] || hide=""
umask_of_unit=$(sed -n 's/^UMask=//p' /lib/systemd/system/sms-reseller.service)

# as_unit TRACE_FILE COMMAND…: COMMAND in the units' sandbox, as far as it can be built without systemd: a mount
# namespace with / read-only (ProtectSystem=strict), /root and /home empty (ProtectHome), fresh /tmp and /var/tmp
# (PrivateTmp), the build folder hidden (only the check's own folder under /run stays writable, for the traces);
# then the user, no new privileges, no capabilities, UMask, the unit's
# environment only, MemoryDenyWriteExecute and RestrictAddressFamilies, and strace writing every system call to TRACE_FILE.
as_unit() {
    local trace=$1
    shift
    unshare --mount --propagation private -- /bin/sh -c '
        set -e
        mount -t tmpfs -o mode=1777 tmpfs /tmp
        mount -t tmpfs -o mode=1777 tmpfs /var/tmp
        mount -t tmpfs -o ro,mode=755 tmpfs /root
        mount -t tmpfs -o ro,mode=755 tmpfs /home
        if [ -n "$HIDE" ]; then mount -t tmpfs -o ro tmpfs "$HIDE"; fi
        mount --bind "$WORK" "$WORK"
        mount -o remount,bind,ro /
        umask "$UNIT_UMASK"
        exec "$@"' sh \
        setpriv --reuid=sms-reseller --regid=sms-reseller --init-groups --no-new-privs \
        --bounding-set=-all --inh-caps=-all --ambient-caps=-all -- \
        env -i "${unit_environment[@]}" \
        strace -f -qq -o "$trace" "$work/unit-exec" "$@" &
}
# The environment the sandbox's shell reads (it runs before the user switch).
export HIDE=$hide UNIT_UMASK=$umask_of_unit WORK=$work
chmod 777 "$work"

read -r -a migrate_command <<<"$(exec_start sms-reseller-migrate.service)"
log "sms-reseller-migrate.service: ${migrate_command[*]}"
status=0
as_unit "$work/migrate.trace" "${migrate_command[@]}" 2>"$work/migrate.log"
wait $! || status=$?
check "sms-reseller-migrate.service's ExecStart applies the migrations (exit 0)" test "$status" -eq 0
applied=$("$(pg_bindir)/psql" -X -At -h 127.0.0.1 -p "$THROWAWAY_PORT" -U postgres -d sms_reseller \
    -c 'SELECT count(*) FROM schema_migrations' 2>/dev/null || echo 0)
known=$(ls Sources/ResellerCore/Migrations/ | grep -c '^[0-9].*\.sql$')
check "  every migration applied ($applied of $known), from the installed bundle (the build's is hidden)" test "$applied" -eq "$known"
[ "$status" -eq 0 ] || tail -n 20 "$work/migrate.log" >&2

read -r -a serve_command <<<"$(exec_start sms-reseller.service)"
log "sms-reseller.service: ${serve_command[*]} (127.0.0.1:$port)"
as_unit "$work/serve.trace" "${serve_command[@]}" 2>"$work/serve.log"
sandbox_pid=$!
ready=no
for _ in $(seq 1 600); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/health/ready")" = 200 ]; then ready=yes; break; fi
    kill -0 "$sandbox_pid" 2>/dev/null || break
    sleep 0.1
done
check "sms-reseller.service's ExecStart serves: /health/ready answers 200" test "$ready" = yes
[ "$ready" = yes ] || tail -n 30 "$work/serve.log" >&2
check "  /health/live answers 200" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $API/health/live)\" = 200 ]"
service_pid=$(pgrep -u sms-reseller -x sms-reseller | head -n 1 || true)
check "  the service runs as sms-reseller, no new privileges, no capabilities" sh -c \
    "[ -n '$service_pid' ] && grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$service_pid/status && grep -q '^CapBnd:[[:space:]]*0000000000000000' /proc/$service_pid/status && grep -q '^CapEff:[[:space:]]*0000000000000000' /proc/$service_pid/status"
check "  its seccomp filter (write-xor-execute, address families) is on" sh -c \
    "[ -n '$service_pid' ] && grep -q '^Seccomp:[[:space:]]*2' /proc/$service_pid/status"
admin_key=$(as_unit "$work/admin.trace" /usr/bin/sms-reseller admin create-key --name deb-check 2>/dev/null; wait $! ; true)
admin_key=$(printf '%s\n' "$admin_key" | tail -n 1)
check "  sms-reseller admin create-key as the service's user" test -n "$admin_key"
check "  an admin request with that key (GET /resellers: 200)" sh -c \
    "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $admin_key' $API/resellers)\" = 200 ]"
check "  a reseller created through the API (201)" sh -c \
    "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer $admin_key' -H 'Content-Type: application/json' -d '{\"name\": \"deb-check\"}' $API/resellers)\" = 201 ]"

status=0
if [ -n "$service_pid" ]; then kill -TERM "$service_pid"; fi # KillSignal=SIGTERM, to the main process
for _ in $(seq 1 600); do kill -0 "$sandbox_pid" 2>/dev/null || break; sleep 0.1; done
wait "$sandbox_pid" || status=$?
check "SIGTERM stops the service gracefully (exit 0 within 60 s)" test "$status" -eq 0

# The system calls and socket families the service used (after its execve), against the units' filters.
syscalls_of() { # syscalls_of GROUP: the system calls of a systemd group, its nested groups expanded
    local name
    systemd-analyze syscall-filter "$1" | sed -n 's/^    //p' | grep -v '^#' | while read -r name; do
        case $name in @*) syscalls_of "$name" ;; *) printf '%s\n' "$name" ;; esac
    done
}
syscalls_of @system-service | sort -u >"$work/allowed"
# The units' second SystemCallFilter= line denies these. setpriority is one, and unit-exec refused it (EPERM) as
# systemd would, with the service serving all the same: it is not counted.
{ syscalls_of @privileged; syscalls_of @resources; } | grep -vx setpriority | sort -u >"$work/denied"
for trace in serve migrate admin; do
    sed -n '\|execve("/usr/bin/sms-reseller"|,$p' "$work/$trace.trace" | sed -E 's/^[0-9]+ +//' >"$work/$trace.after"
    grep -oE '^[a-z_0-9]+\(' "$work/$trace.after" | tr -d '(' | sort -u >"$work/$trace.calls"
done
sort -u "$work"/*.calls >"$work/calls"
outside=$(comm -23 "$work/calls" "$work/allowed" | tr '\n' ' ')
denied=$(comm -12 "$work/calls" "$work/denied" | tr '\n' ' ')
log "system calls made: $(wc -l <"$work/calls"); outside @system-service: ${outside:-none}; denied by ~@privileged @resources: ${denied:-none}"
check "some system calls were traced" test -s "$work/calls"
check "every system call made is in SystemCallFilter=@system-service" test -z "$outside"
check "none is one the units deny (~@privileged @resources), but setpriority, refused while it served" test -z "$denied"
# glibc's getaddrinfo asks netlink which address families the host has; refused (EAFNOSUPPORT), it assumes both.
refused=$(cat "$work"/*.after | grep -E '^socket\(' | grep 'EAFNOSUPPORT' | grep -oE 'socket\(AF_[A-Z0-9]+' | cut -c8- | sort -u | tr '\n' ' ')
log "socket families refused by RestrictAddressFamilies (and the service served all the same): ${refused:-none}"
no_write_execute() {
    ! grep -hE '^mmap\(.*PROT_WRITE\|PROT_EXEC' "$work"/*.after && ! grep -hE '^(pkey_)?mprotect\(.*PROT_EXEC' "$work"/*.after
}
check "no writable and executable memory was asked for (mmap, mprotect)" no_write_execute

log "3. dpkg -i again (an upgrade)"
cp /etc/sms-reseller/env "$work/env.before"
dpkg -i "$deb" >"$work/dpkg-upgrade.log" 2>&1 || cat "$work/dpkg-upgrade.log" >&2
check "the upgrade keeps the operator's env file" cmp -s /etc/sms-reseller/env "$work/env.before"
check "  and its mode 0640 root:sms-reseller" sh -c '[ "$(stat -c "%a %U:%G" /etc/sms-reseller/env)" = "640 root:sms-reseller" ]'

log "4. dpkg -r sms-reseller"
dpkg -r sms-reseller >"$work/dpkg-r.log" 2>&1 || cat "$work/dpkg-r.log" >&2
check "removed: no /usr/bin/sms-reseller, no /usr/lib/sms-reseller, no units" sh -c \
    '[ ! -e /usr/bin/sms-reseller ] && [ ! -e /usr/lib/sms-reseller ] && [ ! -e /lib/systemd/system/sms-reseller.service ] && [ ! -e /lib/systemd/system/sms-reseller-migrate.service ]'
check "  the env file (a conffile) stays, as dpkg keeps configuration until purge" test -f /etc/sms-reseller/env
check "  dpkg says config-files" sh -c "dpkg-query -W -f='\${Status}' sms-reseller | grep -qx 'deinstall ok config-files'"

log "5. dpkg -P sms-reseller"
dpkg -P sms-reseller >"$work/dpkg-p.log" 2>&1 || cat "$work/dpkg-p.log" >&2
check "purged: dpkg knows no sms-reseller" sh -c '! dpkg-query -W sms-reseller'
check "  /etc/sms-reseller is gone" test ! -e /etc/sms-reseller
check "  the user and group sms-reseller are gone" sh -c '! getent passwd sms-reseller && ! getent group sms-reseller'
check "  no stat override left" sh -c '! dpkg-statoverride --list /etc/sms-reseller/env'
# Every path the package shipped that is its own (not a folder other packages share) is gone.
left=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | grep -v '^/$' | while read -r path; do
    case $path in /usr | /usr/bin | /usr/lib | /usr/share | /usr/share/doc | /lib | /lib/systemd | /lib/systemd/system | /etc) continue ;; esac
    [ -e "$path" ] || [ -L "$path" ] && printf '%s ' "$path"
done || true)
check "  nothing the package shipped is left${left:+ (left: $left)}" test -z "$left"

log "deb-check done: $(basename "$deb")"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
