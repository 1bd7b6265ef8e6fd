#!/usr/bin/env bash
# bench-diff.sh — `ferry diff` beside the full copy it saves.
#
# Starts its own throwaway PostgreSQL 15 (initdb in a temp folder, 127.0.0.1,
# a free port; stopped and removed at exit), loads ROWS product rows into src
# (the shape of scripts/bench-postgres.sh), and two targets made from it with
# SQL: dst_eq, an exact copy, and dst_drift, a copy with 0.1% of the rows
# different (of each 10,000 rows: 4 edited, 3 deleted; and 3 rows per 10,000
# added that src lacks). Then REPEAT interleaved rounds of:
#   (copy)        ferry run, mode full, into a fresh keyed table: the baseline,
#                 what resyncing the target from scratch costs
#   (eq-digest)   ferry diff --method digest, src against dst_eq
#   (eq-read)     ferry diff --method read, src against dst_eq
#   (drift-digest) ferry diff --method digest, src against dst_drift
#   (drift-read)  ferry diff --method read, src against dst_drift
# Each diff's answer is checked (equal; or exactly the drift made). Prints one
# Markdown table: median wall time, spread (min–max), ratio to the copy, CPU
# seconds (client + server backends), peak RSS (/usr/bin/time -v), and what
# the digest read. The copy is the same job in both cases, so one baseline
# serves both. Targets: equal tables diffed in under half the copy's time;
# the 0.1% case in under the copy's time.
#
# A report: a missed target still exits 0; non-zero means the benchmark failed.
#
# Environment:
#   ROWS        rows in the source table (default 1000000; a multiple of 10000)
#   REPEAT      interleaved rounds; medians are reported (default 3)
#   WORKERS     ferry workers of the copy (default 2)
#   BATCH       ferry batch size (default 10000)
#   PG_BIN      PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   BUILD_DIR   release scratch path (default .build-bench)
#   SKIP_BUILD  1: use the release build as it is
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

ROWS="${ROWS:-1000000}"
REPEAT="${REPEAT:-3}"
WORKERS="${WORKERS:-2}"
BATCH="${BATCH:-10000}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/.build-bench}"

log() { printf 'bench-diff: %s\n' "$*" >&2; }
die() { printf 'bench-diff: error: %s\n' "$*" >&2; exit 1; }

[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] && [ $((ROWS % 10000)) -eq 0 ] || die "ROWS must be a positive multiple of 10000 (got '$ROWS')"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer (got '$REPEAT')"
[ -x "$PG_BIN/initdb" ] || die "no $PG_BIN/initdb: run scripts/setup.sh"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for peak RSS (apt-get install time)"
command -v jq >/dev/null || die "jq is needed to read the diff reports"
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH="$PATH:/opt/swift/usr/bin"; fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in ferry FerryPostgres; do
        log "swift build -c release --scratch-path $BUILD_DIR --product $product"
        swift build -c release --scratch-path "$BUILD_DIR" --product "$product" >&2
    done
fi
BIN="$BUILD_DIR/release"
[ -x "$BIN/ferry" ] && [ -f "$BIN/libFerryPostgres.so" ] || die "no release build in $BIN"

# --- a throwaway server ------------------------------------------------------
WORK="$(mktemp -d /tmp/ferry-bench-diff.XXXXXX)"
chmod 755 "$WORK"
# shellcheck source=scripts/lib/bench-pg.sh
. "$REPO_ROOT/scripts/lib/bench-pg.sh"
cleanup() {
    bench_pg_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/ferry"
bench_pg_start "$WORK"

TABLE_DDL="(id bigint PRIMARY KEY, sku text NOT NULL, name text NOT NULL, description text, price numeric(10,2) NOT NULL, stock int NOT NULL, category text NOT NULL, updated_at timestamptz NOT NULL)"
# Of every 10,000 ids: 4 edited in the target, 3 deleted from it, and 3 new ids only it has: 0.1%.
CHANGED=$((ROWS / 10000 * 4)) MISSING=$((ROWS / 10000 * 3)) EXTRA=$((ROWS / 10000 * 3))
log "loading $ROWS rows and two targets"
psql_ <<EOF
CREATE TABLE src $TABLE_DDL;
INSERT INTO src
SELECT g, 'SKU-' || lpad(g::text, 8, '0'), 'Product ' || g,
       rpad('A sturdy, well made item number ' || g || ' for the house and garden; ', 100, 'lorem ipsum '),
       round((random() * 1000)::numeric, 2), (random() * 500)::int,
       (ARRAY['garden','kitchen','tools','toys','books'])[1 + g % 5],
       timestamptz '2024-01-01' + g * interval '1 second' + (random() * 1000000)::int * interval '1 microsecond'
FROM generate_series(1, $ROWS) g;
CREATE INDEX ON src (updated_at, id);
CREATE TABLE dst_eq $TABLE_DDL;
INSERT INTO dst_eq SELECT * FROM src;
CREATE TABLE dst_drift $TABLE_DDL;
INSERT INTO dst_drift SELECT * FROM src;
UPDATE dst_drift SET stock = stock + 1 WHERE id % 10000 IN (11, 22, 33, 44);
DELETE FROM dst_drift WHERE id % 10000 IN (55, 66, 77);
INSERT INTO dst_drift SELECT $ROWS + g, 'EXTRA', 'Extra ' || g, NULL, 1, 1, 'garden', now() FROM generate_series(1, $EXTRA) g;
CREATE TABLE dst_copy $TABLE_DDL;
VACUUM ANALYZE;
CHECKPOINT;
EOF

now() { date +%s.%N; }
PM_PID="$(head -1 "$PGDATA/postmaster.pid")"
TICKS="$(getconf CLK_TCK)"
# CPU seconds of the server's exited backends (the postmaster's reaped children).
server_cpu() { awk -v t="$TICKS" '{print ($16 + $17) / t}' "/proc/$PM_PID/stat"; }
# Runs a command under /usr/bin/time -v: wall seconds in $ELAPSED, peak RSS (KiB)
# in $RSS_KB, in $CPU the CPU seconds of the command and of the server backends
# it used, and its exit status in $STATUS (a diff that finds differences exits 1).
run_timed() {
    local out="$WORK/time.$RANDOM"
    local start end server_before server_after
    sleep 0.3
    server_before=$(server_cpu)
    start=$(now)
    STATUS=0
    /usr/bin/time -v -o "$out" "$@" >"$WORK/last.out" 2>"$WORK/last.err" || STATUS=$?
    end=$(now)
    sleep 0.3
    server_after=$(server_cpu)
    ELAPSED=$(python3 -c "print($end - $start)")
    RSS_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out")
    CPU=$(awk -F: -v s="$server_before" -v e="$server_after" '/User time|System time/ {c += $2} END {print c + e - s}' "$out")
}

pipeline() { # name target mode
    cat <<EOF
name: $1
source: {plugin: postgres, config: {dsn: "$DSN", table: src, key: [id], cursor: updated_at}}
sink: {plugin: postgres, config: {dsn: "$DSN", table: $2, key: [id]}}
mode: $3
batch_size: $BATCH
workers: $WORKERS
EOF
}
pipeline bench_copy dst_copy full >"$WORK/ferry/copy.yaml"
pipeline bench_eq dst_eq incremental >"$WORK/ferry/eq.yaml"
pipeline bench_drift dst_drift incremental >"$WORK/ferry/drift.yaml"
FERRY=("$BIN/ferry" --plugins "$BIN" --state-dir "$WORK/ferry/state")

# Checks the last diff's JSON report: "method missing extra changed".
expect_diff() { # variant method missing extra changed exit
    local got
    [ "$STATUS" -eq "$6" ] || { cat "$WORK/last.out" "$WORK/last.err" >&2; die "($1) exited $STATUS, expected $6"; }
    got="$(jq -r '"\(.method) \(.missing) \(.extra) \(.changed)"' "$WORK/last.out")"
    [ "$got" = "$2 $3 $4 $5" ] || { cat "$WORK/last.out" >&2; die "($1) reported $got, expected $2 $3 $4 $5"; }
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
VARIANTS=(copy eq-digest eq-read drift-digest drift-read)
declare -A WALL CPUS RSS READ
# The machine is shared: the variants run interleaved, REPEAT times, and the
# medians are compared, so load that comes and goes hits them all alike.
for round in $(seq 1 "$REPEAT"); do
    for variant in "${VARIANTS[@]}"; do
        log "round $round/$REPEAT: $variant"
        case "$variant" in
            copy)
                psql_ -c "TRUNCATE dst_copy" -c "CHECKPOINT"
                run_timed "${FERRY[0]}" run --no-progress "${FERRY[@]:1}" "$WORK/ferry/copy.yaml"
                [ "$STATUS" -eq 0 ] || { cat "$WORK/last.err" >&2; die "(copy) exited $STATUS"; }
                [ "$(psql_ -At -c "SELECT count(*) FROM dst_copy")" = "$ROWS" ] || die "(copy) copied the wrong number of rows"
                ;;
            *)
                case "$variant" in eq-*) file=eq ;; *) file=drift ;; esac
                method="${variant#*-}"
                run_timed "${FERRY[0]}" diff "${FERRY[@]:1}" --method "$method" --output json "$WORK/ferry/$file.yaml"
                if [ "$file" = eq ]; then expect_diff "$variant" "$method" 0 0 0 0
                else expect_diff "$variant" "$method" "$MISSING" "$EXTRA" "$CHANGED" 1; fi
                READ[$variant]="$(jq -r 'if .method == "digest" then "\(.buckets) \(.differingBuckets) \(.recordsRead)"
                                           else "- - \(.sourceRecords + .targetRecords)" end' "$WORK/last.out")"
                ;;
        esac
        WALL[$variant]+="$ELAPSED "
        CPUS[$variant]+="$CPU "
        RSS[$variant]=$(( RSS_KB > ${RSS[$variant]:-0} ? RSS_KB : ${RSS[$variant]:-0} ))
    done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

ARGS=()
for key in "${VARIANTS[@]}"; do ARGS+=("$key=${WALL[$key]}|${CPUS[$key]}|${RSS[$key]}|${READ[$key]:-- - -}"); done
python3 - "$ROWS" "$WORKERS" "$BATCH" "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$((MISSING + EXTRA + CHANGED))" "${ARGS[@]}" <<'EOF'
import statistics, sys
rows, workers, batch, cores, load_before, load_after, drift = sys.argv[1:8]
rows, drift = int(rows), int(drift)
runs = {}
for arg in sys.argv[8:]:
    key, rest = arg.split("=", 1)
    wall, cpu, rss, read = rest.split("|")
    runs[key] = ([float(x) for x in wall.split()], [float(x) for x in cpu.split()], int(rss) / 1024, read.split())
med = {k: statistics.median(v[0]) for k, v in runs.items()}
rounds = len(runs["copy"][0])
print(f"### ferry diff: {rows:,} PostgreSQL rows on each side, beside a full copy")
print()
print(f"{cores} cores; load average {load_before} before, {load_after} after; medians of {rounds} interleaved rounds; "
      f"the copy: mode full into an emptied keyed table, {workers} workers, batch {batch}; "
      f"CPU = client + server backends, user + sys. Drift: {drift:,} keys ({100 * drift / rows:.2g}%) missing, extra or changed.")
print()
print("| run | median s | spread s | vs the copy | CPU s | peak RSS | buckets | differing | records read |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
labels = {
    "copy": "full copy (`ferry run`, mode full)",
    "eq-digest": "equal tables: `diff --method digest`",
    "eq-read": "equal tables: `diff --method read`",
    "drift-digest": "0.1% drift: `diff --method digest`",
    "drift-read": "0.1% drift: `diff --method read`",
}
for key, label in labels.items():
    walls, cpus, rss, read = runs[key]
    m = med[key]
    spread = f"{min(walls):.2f}–{max(walls):.2f}" if len(walls) > 1 else "–"
    ratio = "1.00×" if key == "copy" else f"{m / med['copy']:.2f}×"
    buckets, differing, fetched = (f"{int(x):,}" if x.isdigit() else "–" for x in read)
    print(f"| {label} | {m:.2f} | {spread} | {ratio} | {statistics.median(cpus):.2f} | {rss:.1f} MiB | {buckets} | {differing} | {fetched} |")
print()
def verdict(ok): return "met" if ok else "MISSED"
for key, limit, what in (("eq-digest", 0.5, "equal tables, digest"), ("eq-read", 0.5, "equal tables, read"),
                         ("drift-digest", 1.0, "0.1% drift, digest"), ("drift-read", 1.0, "0.1% drift, read")):
    r = med[key] / med["copy"]
    print(f"- {what}: {r:.2f}× the copy (target < {limit:g}×) — {verdict(r < limit)}")
print(f"- time per row: copy {med['copy'] / rows * 1e9:,.0f} ns, digest {med['eq-digest'] / rows * 1e9:,.0f} ns, "
      f"read {med['eq-read'] / rows * 1e9:,.0f} ns")
EOF
