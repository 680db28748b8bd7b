#!/usr/bin/env bash
# stall-watch.sh ROOT_PID LOG REPORT [DATABASE_URL]: run in the background beside `swift test … > LOG`, started by
# the process ROOT_PID (the test processes watched are its descendants, so other runs on the machine are left alone).
#
# A test run that hangs prints nothing more and never ends: CI would only report its own time limit, with no word of
# what hung. This watcher turns that into a failure that says what it can: when LOG has not grown for
# ${STALL_SECONDS:-480} seconds while a test process runs, it writes REPORT (the tests started and never finished,
# the test process's threads grouped by identical stacks, the database sessions still open) and kills the test
# process, so that `swift test` fails and scripts/test.sh prints REPORT last. The caller stops it when `swift test`
# returns.
set -uo pipefail
root=$1
log_file=$2
report=$3
database_url=${4:-}
limit=${STALL_SECONDS:-480}

# ROOT_PID's descendants, one per line.
descendants() {
    local pending=("$root") pid child
    while [ ${#pending[@]} -gt 0 ]; do
        pid=${pending[0]}
        pending=("${pending[@]:1}")
        for child in $(pgrep -P "$pid"); do
            pending+=("$child")
            echo "$child"
        done
    done
}

# Those whose command line names a test bundle.
test_processes() {
    local pid
    for pid in $(descendants); do
        tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'PackageTests\.xctest' && echo "$pid"
    done
}

# Grouped stacks: gdb's `bt` for every thread, each thread folded to its function names, identical ones counted.
stacks() {
    local pid=$1
    command -v gdb >/dev/null 2>&1 || { echo "(gdb is not installed: no stacks)"; return; }
    timeout 120 gdb -p "$pid" -batch -ex 'set pagination off' -ex 'thread apply all bt 14' 2>/dev/null |
        awk '
            /^Thread [0-9]+/ { if (stack != "") count[stack]++; stack = ""; next }
            /^#[0-9]+/ {
                name = ($2 == "in" ? $3 : $2)
                if ($0 ~ / in /) { split($0, parts, " in "); split(parts[2], words, " "); name = words[1] }
                stack = stack "    " name "\n"
            }
            END {
                if (stack != "") count[stack]++
                for (s in count) printf "%d thread(s):\n%s", count[s], s
            }' | demangle
}

# Swift's symbols readable when the toolchain's demangler is at hand.
demangle() {
    if command -v swift-demangle >/dev/null 2>&1; then swift-demangle --compact --simplified; else cat; fi
}

while true; do
    sleep 15
    pids=$(test_processes)
    # Not started yet, or finished: nothing to watch (the caller stops this watcher when `swift test` returns).
    [ -n "$pids" ] || continue
    [ -f "$log_file" ] || continue
    age=$(($(date +%s) - $(stat -c %Y "$log_file")))
    [ "$age" -ge "$limit" ] || continue
    {
        echo "=== the test run printed nothing for ${age} s: it hangs; killed it ==="
        echo "--- the test process's threads, grouped by stack (innermost first) ---"
        for pid in $pids; do stacks "$pid"; done
        if [ -n "$database_url" ] && command -v psql >/dev/null 2>&1; then
            echo "--- database sessions still open ---"
            psql "$database_url" -XAtc "SELECT datname, state, wait_event_type, wait_event, regexp_replace(left(query, 100), '\s+', ' ', 'g')
                FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" 2>&1
        fi
        # What the test process and `swift test`, which relays its output, still hold in their stdio buffers reaches
        # the log first, so that the list below is exact.
        if command -v gdb >/dev/null 2>&1; then
            for pid in $(descendants); do
                grep -qE 'xctest|swift-test' "/proc/$pid/cmdline" 2>/dev/null || continue
                timeout 60 gdb -p "$pid" -batch -ex 'call (int) fflush(0)' >/dev/null 2>&1
            done
            sleep 2
        fi
        plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log_file")
        echo "--- tests started and not finished ---"
        comm -23 \
            <(grep -oE 'Test [A-Za-z0-9_]+\([^)]*\) started' <<<"$plain" | sed 's/ started$//' | sort) \
            <(grep -oE 'Test [A-Za-z0-9_]+\([^)]*\) (passed|failed)' <<<"$plain" | sed -E 's/ (passed|failed)$//' | sort)
        echo
    } > "$report" 2>&1
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null
    exit 0
done
