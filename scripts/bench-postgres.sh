#!/usr/bin/env bash
# bench-postgres.sh — the PostgreSQL connector against the binary COPY limit.
#
# Starts its own throwaway PostgreSQL 15 (initdb in a temp folder, 127.0.0.1,
# a free port; stopped and removed at exit), loads ROWS product rows (id, sku,
# name, description ~100 chars, price numeric(10,2), stock, category,
# updated_at timestamptz; index on (updated_at, id)) and measures, on that one
# server, REPEAT interleaved rounds of:
#   (a)  psql \copy (…) to stdout (format binary) | psql \copy dst from stdin
#        (format binary) into a keyed table (primary key id): the limit for (b)
#   (a0) the same pipe into a keyless table: the limit for (b0); also read in
#        key order (ORDER BY id), the order the source reads in
#   (b)  ferry run, first run of the incremental pipeline = full copy into a
#        keyed table (upsert sink, empty-target fast path)
#   (b0) ferry run, mode full, sink mode insert, into a keyless table
# then once:
#   (c0) psql applying the same changed rows (staged, INSERT … ON CONFLICT)
#        into the pipe's keyed copy: the server's share of (c)
#   (c)  ferry incremental after 1% of the rows changed
#   (d)  ferry incremental rerun with nothing changed
#   (e)  ferry run --dry-run of the incremental pipeline from no checkpoint
# and prints one Markdown table: median wall time, spread (min–max), rows/s,
# ratio to its pipe, CPU seconds (client + server backends), peak RSS
# (/usr/bin/time -v), with the machine's core count and load average.
# Targets: (b) >= 0.9x (a), (b0) >= 0.9x (a0); (c) <= 10% and (d) <= 3% of
# (b)'s wall time; (e) <= 1.5x (b); peak RSS < 100 MiB.
#
# A report: a missed target still exits 0; non-zero means the benchmark failed.
#
# Environment:
#   ROWS        rows in the source table (default 1000000)
#   WORKERS     ferry workers (default 2)
#   BATCH       ferry batch size (default 10000)
#   REPEAT      interleaved rounds of the full copies; medians are reported (default 3)
#   EXTRA       1: also run (b0) with 1 worker and with 2 read lanes of 1 worker
#   PG_BIN      PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   BUILD_DIR   release scratch path (default .build-bench)
#   SKIP_BUILD  1: use the release build as it is
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

ROWS="${ROWS:-1000000}"
WORKERS="${WORKERS:-2}"
BATCH="${BATCH:-10000}"
REPEAT="${REPEAT:-3}"
EXTRA="${EXTRA:-0}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/.build-bench}"

log() { printf 'bench-postgres: %s\n' "$*" >&2; }
die() { printf 'bench-postgres: error: %s\n' "$*" >&2; exit 1; }

[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || die "ROWS must be a positive integer (got '$ROWS')"
[ -x "$PG_BIN/initdb" ] || die "no $PG_BIN/initdb: run scripts/setup.sh"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for peak RSS (apt-get install time)"
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH="$PATH:/opt/swift/usr/bin"; fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in ferry FerryPostgres; do
        log "swift build -c release --product $product"
        swift build -c release --scratch-path "$BUILD_DIR" --product "$product" >&2
    done
fi
BIN="$BUILD_DIR/release"
[ -x "$BIN/ferry" ] && [ -f "$BIN/libFerryPostgres.so" ] || die "no release build in $BIN"

# --- a throwaway server ------------------------------------------------------
WORK="$(mktemp -d /tmp/ferry-bench-pg.XXXXXX)"
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

KEYLESS_DDL="(id bigint NOT NULL, sku text NOT NULL, name text NOT NULL, description text, price numeric(10,2) NOT NULL, stock int NOT NULL, category text NOT NULL, updated_at timestamptz NOT NULL)"
TABLE_DDL="(id bigint PRIMARY KEY, sku text NOT NULL, name text NOT NULL, description text, price numeric(10,2) NOT NULL, stock int NOT NULL, category text NOT NULL, updated_at timestamptz NOT NULL)"
log "loading $ROWS rows"
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
CREATE TABLE dst_a $TABLE_DDL;
CREATE TABLE dst_a0 $KEYLESS_DDL;
CREATE TABLE dst_b $TABLE_DDL;
CREATE TABLE dst_b0 $KEYLESS_DDL;
VACUUM ANALYZE src;
CHECKPOINT;
EOF

now() { date +%s.%N; }
PM_PID="$(head -1 "$PGDATA/postmaster.pid")"
TICKS="$(getconf CLK_TCK)"
# CPU seconds of the server's exited backends (the postmaster's reaped children).
server_cpu() { awk -v t="$TICKS" '{print ($16 + $17) / t}' "/proc/$PM_PID/stat"; }
# Runs a command under /usr/bin/time -v: wall seconds in $ELAPSED, peak RSS (KiB)
# in $RSS_KB, and in $CPU the CPU seconds of the command and its children plus
# the server backends it used (read once they have exited).
run_timed() {
    local out="$WORK/time.$RANDOM"
    local start end server_before server_after
    sleep 0.3
    server_before=$(server_cpu)
    start=$(now)
    /usr/bin/time -v -o "$out" "$@" >"$WORK/last.out" 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; die "command failed: $*"; }
    end=$(now)
    sleep 0.3
    server_after=$(server_cpu)
    ELAPSED=$(python3 -c "print($end - $start)")
    RSS_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out")
    CPU=$(awk -F: -v s="$server_before" -v e="$server_after" '/User time|System time/ {c += $2} END {print c + e - s}' "$out")
}

cat >"$WORK/ferry/inc.yaml" <<EOF
name: bench_incremental
source: {plugin: postgres, config: {dsn: "$DSN", table: src, key: [id], cursor: updated_at}}
sink: {plugin: postgres, config: {dsn: "$DSN", table: dst_b, key: [id]}}
mode: incremental
batch_size: $BATCH
workers: $WORKERS
EOF
full_yaml() { # workers read_lanes
    cat <<EOF
name: bench_full
source: {plugin: postgres, config: {dsn: "$DSN", table: src, key: [id]}}
sink: {plugin: postgres, config: {dsn: "$DSN", table: dst_b0, mode: insert}}
mode: full
batch_size: $BATCH
workers: $1
read_lanes: $2
EOF
}
full_yaml "$WORKERS" 1 >"$WORK/ferry/full.yaml"
full_yaml 1 1 >"$WORK/ferry/full-w1.yaml"
full_yaml 2 2 >"$WORK/ferry/full-l2.yaml"
FERRY=("$BIN/ferry" run --no-progress --plugins "$BIN" --state-dir "$WORK/ferry/state")
pipe() { # table [order]
    run_timed bash -c "'$PG_BIN/psql' -X -q -d '$DSN' -c '\\copy (SELECT * FROM src${2:+ ORDER BY $2}) TO STDOUT (FORMAT binary)' | '$PG_BIN/psql' -X -q -d '$DSN' -c '\\copy $1 FROM STDIN (FORMAT binary)'"
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
VARIANTS=(a a0 a0o b b0)
if [ "$EXTRA" = 1 ]; then VARIANTS+=(b0w1 b0l2); fi
declare -A WALL CPUS RSS
# The machine is shared: the full copies run interleaved, REPEAT times, and
# the medians are compared, so load that comes and goes hits them all alike.
for round in $(seq 1 "$REPEAT"); do
    for variant in "${VARIANTS[@]}"; do
        log "round $round/$REPEAT: $variant"
        case "$variant" in a) table=dst_a ;; a0 | a0o) table=dst_a0 ;; b) table=dst_b ;; *) table=dst_b0 ;; esac
        psql_ -c "TRUNCATE $table" -c "CHECKPOINT"
        case "$variant" in
            a | a0) pipe "$table" ;;
            a0o) pipe "$table" id ;;
            b) rm -rf "$WORK/ferry/state"; run_timed "${FERRY[@]}" "$WORK/ferry/inc.yaml" ;;
            b0) run_timed "${FERRY[@]}" "$WORK/ferry/full.yaml" ;;
            b0w1) run_timed "${FERRY[@]}" "$WORK/ferry/full-w1.yaml" ;;
            b0l2) run_timed "${FERRY[@]}" "$WORK/ferry/full-l2.yaml" ;;
        esac
        WALL[$variant]+="$ELAPSED "
        CPUS[$variant]+="$CPU "
        RSS[$variant]=$(( RSS_KB > ${RSS[$variant]:-0} ? RSS_KB : ${RSS[$variant]:-0} ))
        [ "$(psql_ -At -c "SELECT count(*) FROM $table")" = "$ROWS" ] || die "($variant) copied the wrong number of rows"
    done
done
# dst_b holds (b)'s last full copy and the state its checkpoint: (c) and (d) go on from there.
psql_ -c "CHECKPOINT"

log "(c) change 1% of the rows, incremental run"
CHANGED=$(( ROWS / 100 ))
psql_ -c "UPDATE src SET price = price + 1, updated_at = now() WHERE id % 100 = 0" -c "CHECKPOINT"
# (c0), the server's share of (c): the same changed rows, found by the same
# index, staged and upserted into dst_a (the pipe's copy, from before the
# change) by one psql session, after the same checkpoint. Updating 1% of the
# rows dirties about half the table's pages, each a full-page image in the WAL.
log "(c0) the same changes applied by psql: staged, then INSERT … ON CONFLICT"
UPSERT_SET="sku = EXCLUDED.sku, name = EXCLUDED.name, description = EXCLUDED.description, price = EXCLUDED.price, stock = EXCLUDED.stock, category = EXCLUDED.category, updated_at = EXCLUDED.updated_at"
run_timed "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$DSN" -c "BEGIN" \
    -c "CREATE TEMP TABLE changed AS SELECT * FROM src WHERE updated_at > (SELECT max(updated_at) FROM dst_a) ORDER BY updated_at, id" \
    -c "INSERT INTO dst_a SELECT * FROM changed ON CONFLICT (id) DO UPDATE SET $UPSERT_SET" -c "COMMIT"
WALL[c0]=$ELAPSED; CPUS[c0]=$CPU; RSS[c0]=0
[ "$(psql_ -At -c "SELECT count(*) FROM (SELECT * FROM src EXCEPT SELECT * FROM dst_a) x")" = 0 ] || die "(c0) left dst_a different from src"
psql_ -c "CHECKPOINT"
run_timed "${FERRY[@]}" "$WORK/ferry/inc.yaml"
WALL[c]=$ELAPSED; CPUS[c]=$CPU; RSS[c]=$RSS_KB
grep -q "read $CHANGED," "$WORK/last.out" "$WORK/last.err" || log "warning: (c) did not report reading $CHANGED rows: $(cat "$WORK/last.out")"

log "(d) incremental rerun, nothing changed"
run_timed "${FERRY[@]}" "$WORK/ferry/inc.yaml"
WALL[d]=$ELAPSED; CPUS[d]=$CPU; RSS[d]=$RSS_KB

log "(e) dry run over the whole table (no checkpoint), previewed against the full target"
BEFORE_E=$(psql_ -At -c "SELECT count(*), sum(xmin::text::bigint) FROM dst_b")
run_timed "$BIN/ferry" run --dry-run --no-progress --plugins "$BIN" --state-dir "$WORK/ferry/dry-state" "$WORK/ferry/inc.yaml"
WALL[e]=$ELAPSED; CPUS[e]=$CPU; RSS[e]=$RSS_KB
[ "$(psql_ -At -c "SELECT count(*), sum(xmin::text::bigint) FROM dst_b")" = "$BEFORE_E" ] || die "(e) the dry run changed the target"
[ ! -e "$WORK/ferry/dry-state" ] || [ -z "$(ls -A "$WORK/ferry/dry-state")" ] || die "(e) the dry run saved a checkpoint"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

DIFF=$(psql_ -At -c "SELECT (SELECT count(*) FROM (SELECT * FROM src EXCEPT SELECT * FROM dst_b) x) + (SELECT count(*) FROM (SELECT * FROM dst_b EXCEPT SELECT * FROM src) y)")
DIFF0=$(psql_ -At -c "SELECT count(*) FROM (SELECT * FROM dst_a0 EXCEPT SELECT * FROM dst_b0) x")

ARGS=()
for key in a a0 a0o b b0 b0w1 b0l2 c0 c d e; do ARGS+=("$key=${WALL[$key]:-}|${CPUS[$key]:-}|${RSS[$key]:-0}"); done
python3 - "$ROWS" "$CHANGED" "$WORKERS" "$BATCH" "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$DIFF" "$DIFF0" "${ARGS[@]}" <<'EOF'
import os, statistics, sys
rows, changed, workers, batch, cores = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
load_before, load_after, diff, diff0 = sys.argv[6], sys.argv[7], sys.argv[8], sys.argv[9]
runs = {}
for arg in sys.argv[10:]:
    key, rest = arg.split("=", 1)
    wall, cpu, rss = rest.split("|")
    if wall.strip():
        runs[key] = ([float(x) for x in wall.split()], [float(x) for x in cpu.split()], int(rss) / 1024)
med = {k: statistics.median(v[0]) for k, v in runs.items()}
rounds = len(runs["a"][0])
print(f"### PostgreSQL → PostgreSQL: {rows:,} product rows")
print()
print(f"{cores} cores; load average {load_before} before, {load_after} after; workers {workers}, batch {batch}; "
      f"full copies: medians of {rounds} interleaved rounds; CPU = client + server backends, user + sys.")
print()
print("| run | median s | spread s | rows/s | vs its pipe | CPU s | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---:|")
labels = {
    "a": ("(a) psql binary COPY pipe → keyed table", rows, None),
    "a0": ("(a0) psql binary COPY pipe → keyless table", rows, None),
    "a0o": ("(a0) the same pipe reading in key order (ORDER BY id), as a resumable read does", rows, "a0"),
    "b": (f"(b) ferry full copy → keyed table (upsert, empty target), {workers} workers", rows, "a"),
    "b0": (f"(b0) ferry full copy → keyless table (insert), {workers} workers", rows, "a0"),
    "b0w1": ("(b0) the same, 1 worker", rows, "a0"),
    "b0l2": ("(b0) the same, 2 read lanes × 1 worker", rows, "a0"),
    "c0": (f"(c0) psql: the same {changed:,} changed rows staged and upserted", changed, None),
    "c": (f"(c) ferry incremental, {changed:,} rows changed", changed, None),
    "d": ("(d) ferry incremental, nothing changed", 0, None),
    "e": ("(e) ferry --dry-run, whole table previewed", rows, None),
}
for key, (label, n, base) in labels.items():
    if key not in runs:
        continue
    walls, cpus, rss = runs[key]
    m = med[key]
    spread = f"{min(walls):.2f}–{max(walls):.2f}" if len(walls) > 1 else "–"
    rate = f"{n / m:,.0f}" if n else "–"
    ratio = f"{med[base] / m:.2f}×" if base else "–"
    mem = "–" if key in ("a", "a0", "a0o", "c0") else f"{rss:.1f} MiB"
    print(f"| {label} | {m:.2f} | {spread} | {rate} | {ratio} | {statistics.median(cpus):.2f} | {mem} |")
print()
def verdict(ok): return "met" if ok else "MISSED"
b, b0 = med["a"] / med["b"], med["a0"] / med["b0"]
c, d = med["c"] / med["b"], med["d"] / med["b"]
peak = max(runs[k][2] for k in runs if k not in ("a", "a0", "a0o", "c0"))
print(f"- (b) ≥ 0.9× (a): {b:.2f}× — {verdict(b >= 0.9)}; (b0) ≥ 0.9× (a0): {b0:.2f}× — {verdict(b0 >= 0.9)}")
print(f"- (b0) against the pipe reading in key order: {med['a0o'] / med['b0']:.2f}× (the source reads in key order so that a lost connection resumes after the last key handed out)")
print(f"- (c) ≤ 10% of (b): {100 * c:.1f}% — {verdict(c <= 0.10)}; (d) ≤ 3% of (b): {100 * d:.1f}% — {verdict(d <= 0.03)}")
print(f"- (c) against the server's share (c0): {med['c'] / med['c0']:.2f}×")
print(f"- (e) ≤ 1.5× (b): {med['e'] / med['b']:.2f}× — {verdict(med['e'] <= 1.5 * med['b'])}")
print(f"- peak RSS < 100 MiB: {peak:.1f} MiB — {verdict(peak < 100)}")
print(f"- time per row: (b) {med['b'] / rows * 1e9:,.0f} ns, (b0) {med['b0'] / rows * 1e9:,.0f} ns")
if os.environ.get("BENCH_SUMMARY"):
    # One line per run for bench-all.sh's 1M-against-5M comparison.
    with open(os.environ["BENCH_SUMMARY"], "a") as summary:
        print(f"postgres {rows} b_ns={med['b'] / rows * 1e9:.1f} b0_ns={med['b0'] / rows * 1e9:.1f} rss_mib={peak:.1f} "
              f"baseline:a_ns={med['a'] / rows * 1e9:.1f} baseline:a0_ns={med['a0'] / rows * 1e9:.1f}", file=summary)
print(f"- target equals source after (d): {'yes' if diff == '0' else 'NO (' + diff + ' rows differ)'}; "
      f"(b0) equals (a0): {'yes' if diff0 == '0' else 'NO (' + diff0 + ' rows differ)'}")
EOF
