#!/usr/bin/env bash
# The docs' runnable examples, as part of `make test` / CI: first prove the
# runner catches a broken block, then run every ```sh doctest block in docs/.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$REPO_ROOT/scripts/doctest.sh" --self-test
"$REPO_ROOT/scripts/doctest.sh"
