#!/usr/bin/env bash
# The docs' examples, as part of `make test` / CI: first prove the runner and
# the static checks catch broken blocks, then check every block in README.md,
# docs/ and the plugins' READMEs and run the runnable ones.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$REPO_ROOT/scripts/doctest.sh" --self-test
python3 "$REPO_ROOT/scripts/doccheck.py" --self-test
"$REPO_ROOT/scripts/doctest.sh"
