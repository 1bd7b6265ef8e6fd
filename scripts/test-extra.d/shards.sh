#!/usr/bin/env bash
# `--shard i/N` at scale, as part of `make test` / CI: 4 shard
# processes at once over 1M rows into one PostgreSQL target, one killed with
# SIGKILL and resumed alone; the target must equal the source exactly. Uses the
# test servers scripts/test.sh exported. ROWS, SHARDS, FERRY: see the script.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$REPO_ROOT/scripts/shards-1m.sh"
