#!/usr/bin/env bash
# smoke-k8s.sh — runs the k8s/ configuration for real against the test
# servers: the prod Deployment's daemon file and pipelines as mounted from the
# ConfigMap, under `ferry serve` (probes, token, both shop pipelines, SIGTERM),
# and the backfill Job's four shard commands at once (scripts/k8s/smoke_daemon.py).
#
# Needs the servers: run by scripts/test-extra.sh inside `make test`, or by hand:
#   FERRY_VENV=… scripts/test-servers.sh start && . "$(scripts/test-servers.sh env)"
#   scripts/smoke-k8s.sh; scripts/test-servers.sh stop
# and a full build (swift build: ferry and the plugins).
#
# Environment: FERRY_VENV, FERRY_PYTHON (see scripts/k8s/python-env.sh).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=k8s/python-env.sh
. "$REPO_ROOT/scripts/k8s/python-env.sh"

exec "$FERRY_VENV/bin/python" "$REPO_ROOT/scripts/k8s/smoke_daemon.py" --repo "$REPO_ROOT"
