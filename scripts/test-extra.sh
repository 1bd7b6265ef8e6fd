#!/usr/bin/env bash
# test-extra.sh — script-level checks, run by scripts/test.sh after swift test
# (and so by `make test` and CI). One line per check; every one runs, and the
# script fails if any did. Add yours with `run …`.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failed=()
run() {
    printf 'test-extra: %s\n' "$*" >&2
    "$@" || failed+=("$*")
}

run scripts/validate-k8s.sh
run scripts/smoke-k8s.sh

if [ "${#failed[@]}" -ne 0 ]; then
    printf 'test-extra: failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
