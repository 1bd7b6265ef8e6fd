#!/usr/bin/env bash
# test.sh — the one command that runs every Ferry test (what `make test` and
# CI run).
#
#   1. scripts/setup.sh              install/check dependencies (idempotent)
#   2. swift build --build-tests     build first, so a compile error fails fast
#                                    and no server sits idle during the build
#   3. scripts/test-servers.sh start throwaway PostgreSQL + SecantusDB; they are
#                                    always stopped on exit (success, failure,
#                                    Ctrl-C)
#   4. swift test                    with FERRY_TEST_* from the servers' env file
#   5. scripts/test-extra.sh and scripts/test-extra.d/*  script-level tests
#                                    (doc tests, manifests); run even if swift
#                                    test failed
#
# Exit code: non-zero if any step failed; the last lines name what failed
# (and the failed Swift tests), so the tail of a CI log says it.
#
# Environment:
#   SWIFT_BUILD_ARGS  extra args for both `swift build` and `swift test`
#                     (build settings such as `-c release`, so the test run
#                     reuses the same build)
#   SWIFT_TEST_ARGS   extra args for `swift test` only (e.g. `--filter Pg`)
#   FERRY_TEST_ENV_FILE, FERRY_VENV: see scripts/test-servers.sh
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

log() { printf 'test: %s\n' "$*" >&2; }

# Non-login shells (e.g. CI) may not have sourced /etc/profile.d/swift.sh.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi

# Split the extra-args variables into arrays (plain word splitting, no globbing).
read -r -a build_args <<<"${SWIFT_BUILD_ARGS:-}"
read -r -a test_args <<<"${SWIFT_TEST_ARGS:-}"

scripts/setup.sh

log "swift build --build-tests ${build_args[*]}"
swift build --build-tests "${build_args[@]}"

# Stop the servers whatever happens from here on. Their output is kept out of
# the way of the test runner's closing summary unless stopping fails.
servers_started=0
stop_servers() {
    [ "$servers_started" -eq 1 ] || return 0
    servers_started=0
    local out
    if ! out="$(scripts/test-servers.sh stop 2>&1)"; then
        printf '%s\n' "$out" >&2
        log "warning: stopping the test servers failed"
    fi
}
trap stop_servers EXIT
# Turn signals into a normal exit so the EXIT trap runs (128 + signal number).
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

servers_started=1
scripts/test-servers.sh start
ENV_FILE="$(scripts/test-servers.sh env)"
export FERRY_TEST_ENV_FILE="$ENV_FILE"
# shellcheck disable=SC1090
. "$ENV_FILE"

rc=0
# What failed, repeated at the very end: a CI log is often read from its tail.
failures=()
swift_log="$(mktemp /tmp/ferry-swift-test.XXXXXX)"
log "swift test ${build_args[*]} ${test_args[*]}"
swift test "${build_args[@]}" "${test_args[@]}" 2>&1 | tee "$swift_log" || rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
    log "swift test failed (exit $rc)"
    failures+=("swift test (exit $rc)")
fi

# Script-level tests: scripts/test-extra.sh and every executable in
# scripts/test-extra.d/ (doc tests, manifest validation, …). Each runs even if
# an earlier one failed; the first failure's exit code is kept.
extras=()
[ -x scripts/test-extra.sh ] && extras+=(scripts/test-extra.sh)
for extra in scripts/test-extra.d/*; do
    [ -f "$extra" ] && [ -x "$extra" ] && extras+=("$extra")
done
for extra in "${extras[@]}"; do
    log "$extra"
    extra_rc=0
    "$extra" || extra_rc=$?
    if [ "$extra_rc" -ne 0 ]; then
        log "$extra failed (exit $extra_rc)"
        failures+=("$extra (exit $extra_rc)")
        [ "$rc" -ne 0 ] || rc=$extra_rc
    fi
done

if [ "${#failures[@]}" -gt 0 ]; then
    log "FAILED: ${failures[*]}"
    # Swift Testing marks a failed test and each of its issues with ✘.
    if grep -q '✘' "$swift_log"; then
        log "failed Swift tests (first 40 lines):"
        grep '✘' "$swift_log" | head -40 >&2 || true
    fi
else
    log "passed: swift test and ${#extras[@]} script-level tests"
fi
rm -f "$swift_log"
exit "$rc"
