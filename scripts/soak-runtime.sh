#!/usr/bin/env bash
# soak-runtime.sh — the runtime model test (Tests/FerryCoreTests/RuntimeModelTests.swift),
# run longer than CI runs it: generated schedules of runs in process with a random
# master seed, then more runs of the real `ferry` binary killed with SIGKILL at
# random points and rerun.
#
#   scripts/soak-runtime.sh            # 10 minutes of generated schedules
#   scripts/soak-runtime.sh 30m        # 30 minutes
#   scripts/soak-runtime.sh 20000      # 20000 schedules, however long they take
#
# Environment: FERRY_MODEL_MASTER_SEED (default: random; printed in the summary,
# so a failing soak can be repeated), FERRY_MODEL_KILL_CASES (killed-process
# cases, default 20), FERRY_MODEL_OFF (features not to generate, see
# ModelFeatures.all), CONFIGURATION (debug or release, default debug).
# A counterexample prints its case seed: FERRY_MODEL_SEED=<seed> reruns just it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

amount="${1:-10m}"
case "$amount" in
    *m) export FERRY_MODEL_SECONDS=$(( ${amount%m} * 60 )) ;;
    *[!0-9]* | '') echo "usage: $0 [MINUTESm | CASES]" >&2; exit 2 ;;
    *) export FERRY_MODEL_CASES="$amount" ;;
esac
export FERRY_MODEL_MASTER_SEED="${FERRY_MODEL_MASTER_SEED:-random}"
export FERRY_MODEL_KILL_CASES="${FERRY_MODEL_KILL_CASES:-20}"
configuration="${CONFIGURATION:-debug}"

swift build --build-tests -c "$configuration"
swift test --skip-build -c "$configuration" --filter RuntimeModelTests
