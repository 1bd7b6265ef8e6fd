#!/usr/bin/env bash
# sanitizers.sh — run the Swift test suite under AddressSanitizer and under
# ThreadSanitizer, and summarise what they report. For people, not CI: each
# sanitizer is a full build of the package (tens of minutes on 2 cores).
#
#   scripts/sanitizers.sh                 address, then thread
#   scripts/sanitizers.sh thread          one of them
#   scripts/sanitizers.sh address --filter FuzzCorpus
#                                         extra arguments go to `swift test`
#
# Each sanitizer builds in its own folder (.build-asan, .build-tsan: the
# everyday .build is not touched) with `swift build --build-tests
# --sanitize=…`, then runs `swift test --skip-build` there. Test servers are
# this script's own: scripts/test-servers.sh with FERRY_TEST_ENV_FILE set to
# a file under /tmp, stopped when the script ends, so the shared servers of
# .ferry-test/servers.env are never stopped or reused.
#
# Output: each run's full log in <build folder>/sanitizers.log, then a
# summary: the test runner's result, and each distinct sanitizer report
# (its first line and the first Ferry frame) with how often it occurred.
# Exit code 1 if a run failed or a sanitizer reported anything.
#
# ThreadSanitizer does not see the ordering of the standard library's `Mutex`
# (Synchronization is not built with it): a report whose two accesses are both
# inside `Mutex.withLock` closures (RunLedger, DeadLetterBudget,
# MemoryStateStore, LanedRun's reports) is that blind spot, not a race. State
# shared by threads the sanitizer should check goes behind `Locked` (an
# NSLock), whose ordering it sees.
#
# Environment:
#   ASAN_OPTIONS   default detect_leaks=0 (Swift's runtime caches look like leaks)
#   TSAN_OPTIONS   default halt_on_error=0:second_deadlock_stack=1
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

log() { printf 'sanitizers: %s\n' "$*" >&2; }
die() { printf 'sanitizers: error: %s\n' "$*" >&2; exit 2; }

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi

# The sanitizer's runtime is linked statically into the test runner; a plugin
# built with the same sanitizer and loaded by path needs its symbols
# (__tsan_*, __asan_*) exported from there, or it does not load at all.
export_dynamic=(-Xlinker --export-dynamic)

sanitizers=(address thread)
case "${1:-}" in
    address | thread) sanitizers=("$1"); shift ;;
    all) shift ;;
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) ;;
    "") ;;
    *) die "unknown sanitizer '$1' (address, thread or all)" ;;
esac
test_args=("$@")

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1}"

# Servers of our own, never the shared ones.
ENV_FILE="$(mktemp "${TMPDIR:-/tmp}/ferry-sanitizers-servers.XXXXXX.env")"
rm -f "$ENV_FILE"
export FERRY_TEST_ENV_FILE="$ENV_FILE"
servers_started=0
stop_servers() {
    [ "$servers_started" -eq 1 ] || return 0
    servers_started=0
    scripts/test-servers.sh stop >/dev/null 2>&1 || log "warning: stopping the test servers of $ENV_FILE failed"
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/setup.sh

summaries=()
failed=0
for sanitizer in "${sanitizers[@]}"; do
    case "$sanitizer" in
        address) scratch="$REPO_ROOT/.build-asan" pattern='ERROR: AddressSanitizer|ERROR: LeakSanitizer' ;;
        thread) scratch="$REPO_ROOT/.build-tsan" pattern='WARNING: ThreadSanitizer|ERROR: ThreadSanitizer' ;;
    esac
    mkdir -p "$scratch"
    logfile="$scratch/sanitizers.log"
    log "$sanitizer: swift build --build-tests --sanitize=$sanitizer --scratch-path ${scratch#"$REPO_ROOT"/} ${export_dynamic[*]}"
    if ! swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" "${export_dynamic[@]}" >"$logfile" 2>&1; then
        tail -n 30 "$logfile" >&2
        summaries+=("$sanitizer: BUILD FAILED (log: $logfile)")
        failed=1
        continue
    fi
    if [ "$servers_started" -eq 0 ]; then
        servers_started=1
        scripts/test-servers.sh start >&2
        # shellcheck disable=SC1090
        set -a; . "$ENV_FILE"; set +a
    fi
    log "$sanitizer: swift test (log: $logfile)"
    rc=0
    swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" "${export_dynamic[@]}" "${test_args[@]}" >>"$logfile" 2>&1 || rc=$?
    result="$(grep -E '^(Test Suite .* (passed|failed)|Executed [0-9]+ tests?|.*Test run with [0-9]+ tests? .*(passed|failed).*)' "$logfile" | tail -n 2 | tr '\n' ' ')"
    reports="$(grep -cE "$pattern" "$logfile" || true)"
    summaries+=("$sanitizer: swift test exit $rc; ${reports:-0} sanitizer reports; ${result:-no test summary line} (log: $logfile)")
    if [ "$rc" -ne 0 ] || [ "${reports:-0}" -gt 0 ]; then failed=1; fi
    if [ "${reports:-0}" -gt 0 ]; then
        # One line per distinct report: its headline and the first frame in Ferry's code.
        summaries+=("$(awk -v pattern="$pattern" -v root="$REPO_ROOT/" '
            $0 ~ pattern { if (headline != "") seen[headline " @ " frame]++; headline = $0; frame = "?"; sub(/^==[0-9]+==/, "", headline); next }
            headline != "" && frame == "?" && index($0, root) && ($0 ~ /Sources\/|Plugins\//) {
                frame = $0; sub(/.* in /, "", frame); sub(root, "", frame)
            }
            END { if (headline != "") seen[headline " @ " frame]++; for (key in seen) printf "    %4d x %s\n", seen[key], key }
        ' "$logfile" | sort -rn)")
    fi
done

printf 'sanitizers summary\n'
printf '  %s\n' "${summaries[@]}"
exit "$failed"
