#!/usr/bin/env bash
# demo.sh [quickstart|shop] — build Ferry and run its main job (what `make demo` runs).
#
#   quickstart (default)  the embedded pipeline: no server needed
#   shop                  the shop scenario against local PostgreSQL and
#                         SecantusDB it starts itself (scripts/shop.sh)
#
# The quickstart runs setup (idempotent), a debug build, then
# `.build/debug/ferry run examples/quickstart.yaml`, and shows the first lines
# of what the pipeline wrote to examples/out/quickstart.jsonl.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

case "${1:-quickstart}" in
    quickstart) ;;
    shop) exec scripts/shop.sh ;;
    *) printf 'demo: unknown scenario %s (quickstart or shop)\n' "$1" >&2; exit 64 ;;
esac

PIPELINE=examples/quickstart.yaml
OUTPUT=examples/out/quickstart.jsonl

log() { printf 'demo: %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# Non-login shells may not have sourced /etc/profile.d/swift.sh.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi

scripts/setup.sh

log "swift build"
swift build

[ -f "$PIPELINE" ] || die "no $PIPELINE"
# Remove an old output first so a stale file can never pass for a fresh run.
rm -f "$OUTPUT"
log ".build/debug/ferry plugins"
.build/debug/ferry plugins
log ".build/debug/ferry test $PIPELINE  (the tests: block in the file)"
.build/debug/ferry test "$PIPELINE"
log ".build/debug/ferry run $PIPELINE --dry-run --sample 3  (writes nothing)"
.build/debug/ferry run "$PIPELINE" --dry-run --sample 3
log ".build/debug/ferry run $PIPELINE"
.build/debug/ferry run "$PIPELINE"

[ -f "$OUTPUT" ] || die "the pipeline ran but wrote no $OUTPUT"
log "first lines of $OUTPUT ($(wc -l <"$OUTPUT") lines in all):"
head -n 10 "$OUTPUT"
