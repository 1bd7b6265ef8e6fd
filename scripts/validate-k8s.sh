#!/usr/bin/env bash
# validate-k8s.sh — offline validation of k8s/ and the Containerfile (CI runs
# it through scripts/test-extra.sh).
#
#   1. renders every kustomization (k8s/base, k8s/overlays/{dev,ha,prod},
#      k8s/jobs/backfill) with scripts/k8s/kustomize_lite.py, and compares the
#      result with `kubectl kustomize` where kubectl is installed
#   2. validates every rendered object against the Kubernetes 1.30 schemas of
#      kubernetes-validate in strict mode: an unknown field (a typo) fails
#   3. checks what a schema cannot: the manifests agree with the daemon file
#      they mount (port, probes, grace period, state_dir, pipelines, secrets,
#      replicas: one on file state, several only with the PostgreSQL state store),
#      with each other (selectors, ports, claims), with the Containerfile (UID,
#      port, plugins) and Package.swift (every plugin product), and keep the
#      security posture (non-root, read-only root, no capabilities, …)
#   4. self-check: known-bad fixtures (scripts/k8s/fixtures/) must be refused
#
# Exit code: 0 only if every check passed. Needs no cluster and no network
# beyond PyPI the first time (kubernetes-validate and dockerfile into
# the venv).
#
# Environment:
#   FERRY_VENV   Python virtualenv (default: <repo>/.venv, as scripts/setup.sh)
#   FERRY_PYTHON Python used to create the venv (default: python3)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=k8s/python-env.sh
. "$REPO_ROOT/scripts/k8s/python-env.sh"

exec "$FERRY_VENV/bin/python" "$REPO_ROOT/scripts/k8s/validate_k8s.py" --repo "$REPO_ROOT"
