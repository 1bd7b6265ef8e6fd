#!/usr/bin/env bash
# bench-all.sh — every benchmark, one file of tables (`make bench`).
#
# Builds release once into its own scratch path (.build-bench, so a
# benchmark never waits on or disturbs a debug build in .build), then runs
#   scripts/bench-jsonl.sh      JSON Lines file -> file / blackhole beside cat and jq
#   scripts/bench-postgres.sh   PostgreSQL -> PostgreSQL beside a binary COPY pipe
#                               (its own throwaway server)
#   scripts/bench-mongo.sh      MongoDB -> blackhole and -> PostgreSQL beside a bare
#                               libmongoc cursor (its own SecantusDB and PostgreSQL)
#   scripts/bench-runtime.sh    the engine beside a bare ABI loop
#   scripts/bench-isolation.sh  a daemon run in a child process beside one on a thread
#   scripts/bench-diff.sh       ferry diff (digest and read) beside a full copy
#                               (its own throwaway server)
# and writes their tables, with the machine they ran on, to OUT. Each script
# still runs on its own; see its header for its knobs (ROWS, RECORDS, DOCS, REPEAT…,
# passed through from the environment).
#
# Environment:
#   OUT       where the tables go (default docs/bench/latest.md)
#   BENCHES   which to run, in order (default "jsonl postgres mongo runtime isolation diff")
#   SCALE     1: also run jsonl and postgres at 5M rows (SCALE_ROWS), for the
#             time-per-row and memory growth from 1M
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
OUT="${OUT:-docs/bench/latest.md}"
BENCHES="${BENCHES:-jsonl postgres mongo runtime isolation diff}"
SCALE="${SCALE:-0}"
SCALE_ROWS="${SCALE_ROWS:-5000000}"
BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/.build-bench}"
export BUILD_DIR

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH="$PATH:/opt/swift/usr/bin"; fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in ferry FerryFile FerryBlackhole FerryPostgres FerryMongo FerryGenerate FerryPassthrough; do
        log "swift build -c release --scratch-path $BUILD_DIR --product $product"
        swift build -c release --scratch-path "$BUILD_DIR" --product "$product" >&2 || die "release build of $product failed"
    done
fi
export SKIP_BUILD=1

TABLES="$(mktemp)"
BENCH_SUMMARY="$(mktemp)"
export BENCH_SUMMARY
trap 'rm -f "$TABLES" "$BENCH_SUMMARY"' EXIT
section() { # title command…
    local title="$1"
    shift
    log "running $title"
    printf '\n' >>"$TABLES"
    "$@" >>"$TABLES" || die "$title failed"
}
for bench in $BENCHES; do
    case "$bench" in
        jsonl)
            section "bench-jsonl (1M)" env RECORDS="${RECORDS:-1000000}" scripts/bench-jsonl.sh
            if [ "$SCALE" = 1 ]; then section "bench-jsonl (${SCALE_ROWS})" env RECORDS="$SCALE_ROWS" scripts/bench-jsonl.sh; fi
            ;;
        postgres)
            # Five rounds at 1M: each copy takes about a second and a half, so one
            # disturbed round of three moved the median by a third.
            section "bench-postgres (1M)" env ROWS="${ROWS:-1000000}" EXTRA="${EXTRA:-1}" REPEAT="${REPEAT:-5}" scripts/bench-postgres.sh
            if [ "$SCALE" = 1 ]; then section "bench-postgres (${SCALE_ROWS})" env ROWS="$SCALE_ROWS" scripts/bench-postgres.sh; fi
            ;;
        mongo)
            section "bench-mongo" env DOCS="${DOCS:-200000}" scripts/bench-mongo.sh
            ;;
        runtime)
            # Its own build step looks in .build; point it at the bench build.
            log "running bench-runtime"
            { printf '\n### Engine: generate → passthrough → blackhole beside a bare ABI loop\n\n```\n'
              env BIN_DIR="$BUILD_DIR/release" scripts/bench-runtime.sh
              printf '```\n'; } >>"$TABLES" || die "bench-runtime failed"
            ;;
        isolation)
            log "running bench-isolation"
            { printf '\n### Daemon start-up: a run in a child process beside a run on a thread\n\n```\n'
              env SCRATCH="$BUILD_DIR" scripts/bench-isolation.sh
              printf '```\n'; } >>"$TABLES" || die "bench-isolation failed"
            ;;
        diff)
            section "bench-diff (1M)" env ROWS="${ROWS:-1000000}" scripts/bench-diff.sh
            ;;
        *) die "unknown benchmark '$bench' (jsonl, postgres, mongo, runtime, isolation, diff)" ;;
    esac
done

if [ "$SCALE" = 1 ]; then
    # Time per row and peak memory may not grow by more than 10% from 1M to
    # SCALE_ROWS: a per-row cost that grows with size, or memory that does,
    # shows here before it shows in production. The baselines (cat, the psql
    # pipes) are measured at both sizes too: what grows for them grows for
    # the machine or the server, not for Ferry.
    python3 - "$BENCH_SUMMARY" >>"$TABLES" <<'EOF'
import sys
runs = {}
for line in open(sys.argv[1]):
    name, size, *fields = line.split()
    runs.setdefault(name, {})[int(size)] = dict(f.split("=") for f in fields)
print()
print("### Scaling: the same benchmarks at two sizes")
print()
print("| benchmark | measure | small | large | growth | ≤ 10% |")
print("|---|---|---:|---:|---:|---|")
labels = {"file": "ferry file → file", "blackhole": "ferry file → blackhole", "rss": "ferry peak RSS",
          "b": "ferry (b), keyed", "b0": "ferry (b0), keyless", "cat": "baseline: cat", "a": "baseline: pipe (a)", "a0": "baseline: pipe (a0)"}
for name, sizes in runs.items():
    if len(sizes) < 2:
        continue
    small, large = min(sizes), max(sizes)
    for measure in sizes[small]:
        a, b = float(sizes[small][measure]), float(sizes[large][measure])
        growth = (b / a - 1) * 100
        unit = "MiB" if measure.endswith("mib") else "ns/row"
        baseline = measure.startswith("baseline:")
        label = labels.get(measure.split(":")[-1].rsplit("_", 1)[0], measure)
        verdict = "–" if baseline else ("met" if growth <= 10 else "MISSED")
        print(f"| {name} {small:,} → {large:,} | {label} ({unit}) | {a:,.1f} | {b:,.1f} | {growth:+.1f}% | {verdict} |")
EOF
fi

mkdir -p "$(dirname "$OUT")"
{
    echo "# Benchmark results"
    echo
    echo "Written by \`make bench\` (scripts/bench-all.sh); every figure below comes from this one run."
    echo
    echo "Benchmarks run: $BENCHES (one \`make bench\` runs all six; \`BENCHES=\` picks)."
    echo
    echo "Machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr); release build."
    cat "$TABLES"
} >"$OUT"
log "tables written to $OUT"
