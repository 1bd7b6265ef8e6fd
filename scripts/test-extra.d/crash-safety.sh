#!/usr/bin/env bash
# Crash safety as part of `make test` / CI: a 200k-row PostgreSQL →
# PostgreSQL and a 200k-document MongoDB → PostgreSQL incremental sync, each
# killed with SIGKILL at 10 random moments while the source changes; the
# targets must equal the final sources. Uses the test servers scripts/test.sh
# exported. About 2.5 minutes on 2 cores.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$REPO_ROOT/scripts/crash-safety.sh"
