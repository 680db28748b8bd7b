#!/usr/bin/env bash
# Input fuzzing (docs/testing.md, "Input fuzzing"): builds `sms-fuzz` with libFuzzer and AddressSanitizer
# (`-sanitize=fuzzer,address -DFUZZING`, scratch path .build-fuzz) and runs each target for a while, starting from
# the committed seeds (Tests/FuzzCorpus/<target>/, with Tests/FuzzCorpus/<target>.dict as its dictionary when there
# is one). The corpus it grows stays in .build-fuzz/corpus/<target>/ (not committed); a crashing input, or one that
# violates a target's properties, is kept in .build-fuzz/findings/<target>/. Prints per target the seconds, the runs,
# the corpus size and the crashes, and exits non-zero when any target crashed.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET…]
#
# Default 180 s for every target: form csv phone segment answer delivery sender. Replay a finding with the normal
# build: `$(swift build --show-bin-path)/sms-fuzz <target> <file>`.
set -euo pipefail
SCRIPT_NAME=fuzz
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

seconds=${1:-180}
[[ "$seconds" =~ ^[0-9]+$ ]] || die "the first argument is the seconds per target, not \"$seconds\""
shift || true
all=(form csv phone segment answer delivery sender)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# The longest input worth trying, per target.
max_len() {
    case "$1" in
    csv) echo 4096 ;;
    form | answer | delivery | segment) echo 1024 ;;
    phone | sender) echo 64 ;;
    *) die "unknown target \"$1\" (targets: ${all[*]})" ;;
    esac
}
for target in "${targets[@]}"; do max_len "$target" >/dev/null; done

scratch=.build-fuzz
log "building sms-fuzz with libFuzzer and AddressSanitizer ($scratch)"
# lld: gold stops with an internal error on these objects. SwiftPM also links the OpenAPI generator's tool with the
# same flags, which fails (it has no fuzz target) without affecting sms-fuzz; a second run finds it done.
build=(swift build --scratch-path "$scratch" --product sms-fuzz
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld)
"${build[@]}" || "${build[@]}"
binary="$("${build[@]}" --show-bin-path)/sms-fuzz"
[ -x "$binary" ] || die "the build made no $binary"

failed=0
summary=()
for target in "${targets[@]}"; do
    corpus="$scratch/corpus/$target"
    findings="$scratch/findings/$target"
    mkdir -p "$corpus" "$findings"
    dict=()
    [ -f "Tests/FuzzCorpus/$target.dict" ] && dict=("-dict=Tests/FuzzCorpus/$target.dict")
    log "fuzzing $target for ${seconds}s"
    output="$scratch/fuzz-$target.log"
    stamp="$scratch/fuzz-$target.start"
    touch "$stamp"
    status=0
    # Leak checking is off: the Swift runtime's caches (metadata, string bridging) look like leaks to LeakSanitizer.
    # The Swift backtracer is off: its reading of the stack after a fatalError trips AddressSanitizer.
    SWIFT_BACKTRACE=enable=no SMS_FUZZ_TARGET="$target" ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" "$binary" \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" \
        "$corpus" "Tests/FuzzCorpus/$target" >"$output" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$output" | tail -n 1)
    size=$(find "$corpus" -type f | wc -l)
    crashes=$(find "$findings" -type f -newer "$stamp" | wc -l)
    line="$target: seconds=$seconds runs=${runs:-?} corpus=$size crashes=$crashes"
    if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        failed=1
        line="$line (exit $status; inputs in $findings/, log $output)"
        grep -E 'property violated|Fatal error|ERROR: (AddressSanitizer|libFuzzer)' "$output" | head -n 3 >&2 || true
    fi
    log "$line"
    summary+=("$line")
done
printf '%s\n' "${summary[@]}"
exit "$failed"
