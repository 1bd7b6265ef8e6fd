#!/usr/bin/env bash
# bench-mongo.sh — the mongo source against the bare libmongoc cursor, into a
# blackhole and into PostgreSQL, and what an incremental run costs.
#
# Starts its own SecantusDB (MongoDB wire protocol, in memory, 127.0.0.1, a
# free port) unless MONGO_URI names a server, and its own throwaway
# PostgreSQL 15 (initdb in a temp folder, 127.0.0.1, a free port); both are
# stopped and removed at exit. Seeds DOCS product documents (~350 B: ObjectId,
# sku, name, description, decimal price, stock, category, tags, attributes,
# updatedAt with ties) with scripts/bench/mongo_drain.c and measures, in
# REPEAT interleaved rounds:
#   (a)     scripts/bench/mongo_drain.c: one libmongoc cursor running the find
#           the mongo source runs for a full read (find({}) sorted by _id, no
#           projection, no batchSize), walked to the end with no engine at
#           all: the limit for (b)
#   (a-nat) the same cursor without the sort (natural order), beside it. A
#           full read in that order would give up resuming: the source resumes
#           after the last _id it handed out (a lost connection mid-read, the
#           next incremental run), which is only right if every document
#           before that _id has been handed out, i.e. in _id order
#   (b)     `ferry run` mongo -> blackhole, mode full, `estimate: false`
#   (b-pg)  `ferry run` mongo -> PostgreSQL, the same source, into an empty
#           table keyed on _id (upsert sink, empty-target fast path)
# then once:
#   the estimate's cost (estimatedDocumentCount, what the default
#           `estimate: true` adds to a run: metadata on MongoDB, a full scan on
#           SecantusDB), timed on its own so that (b) measures reading
#   (c)     an incremental pipeline (cursor updatedAt, key _id): one initial
#           load, then 1% of the documents get a new updatedAt, then the timed
#           incremental run
# and prints one Markdown table: median wall time, spread (min–max), docs/s,
# ratio to (a), peak RSS (/usr/bin/time -v), with the machine's core count
# and load average. Checks that every run read DOCS documents (the changed
# ones for (c)) and that the PostgreSQL table holds DOCS rows after each (b-pg).
# Targets: (b) >= 0.95x (a) in docs/s; (c) <= 20% of (b)'s wall time; peak
# RSS of every ferry run < 150 MiB.
#
# DOCS defaults to 200,000 because SecantusDB is a Python server, far slower
# than MongoDB: on 2 cores it seeded about 10k documents/s and served the
# sorted full read at 22–31k documents/s (natural order about 50k), so one
# round of the four full reads takes about 35 s and the whole script about
# 2½ minutes, leaving room inside 6 minutes for the server's slow spells
# (plain reads at 8k documents/s have been seen). Each full read still lasts
# several seconds, so process start-up does not decide the ratios. Against
# MongoDB itself (MONGO_URI), pick a larger DOCS.
#
# A report: a missed target still exits 0; non-zero means the benchmark failed.
#
# Environment:
#   DOCS        documents (default 200000, at least 100: 1% of them change)
#   REPEAT      interleaved rounds of the full reads; medians are reported (default 3)
#   BATCH       ferry batch size (default 1000)
#   WORKERS     ferry workers (default 1)
#   MONGO_URI   a server to use instead of starting SecantusDB; its
#               bench.products is dropped and seeded
#   SKIP_SEED   1 (with MONGO_URI): reuse bench.products from an earlier run
#               with the same DOCS
#   PG_BIN      PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   BUILD_DIR   release scratch path (default .build-bench)
#   SKIP_BUILD  1: use the release build as it is
#   CC          C compiler (default cc)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DOCS="${DOCS:-200000}"
REPEAT="${REPEAT:-3}"
BATCH="${BATCH:-1000}"
WORKERS="${WORKERS:-1}"
MONGO_URI="${MONGO_URI:-}"
SKIP_SEED="${SKIP_SEED:-0}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/.build-bench}"
CC="${CC:-cc}"
PY="$REPO_ROOT/.venv/bin/python"
DB=bench
COLL=products

log() { printf 'bench-mongo: %s\n' "$*" >&2; }
die() { printf 'bench-mongo: error: %s\n' "$*" >&2; exit 1; }

[[ "$DOCS" =~ ^[1-9][0-9]*$ ]] || die "DOCS must be a positive integer (got '$DOCS')"
[ "$DOCS" -ge 100 ] || die "DOCS must be at least 100 (1% of them are changed)"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer (got '$REPEAT')"
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "BATCH must be a positive integer (got '$BATCH')"
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a positive integer (got '$WORKERS')"
[ -z "$MONGO_URI" ] && [ "$SKIP_SEED" = 1 ] && die "SKIP_SEED=1 needs MONGO_URI: the server started here is empty"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for peak RSS (apt-get install time)"
if [ ! -x "$PG_BIN/initdb" ] || ! pkg-config --exists libmongoc-1.0 \
    || { [ -z "$MONGO_URI" ] && ! { [ -x "$PY" ] && "$PY" -c 'import secantus' 2>/dev/null; }; }; then
    log "scripts/setup.sh (PostgreSQL, libmongoc or SecantusDB missing)"
    scripts/setup.sh >&2 || die "scripts/setup.sh failed"
fi
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH="$PATH:/opt/swift/usr/bin"; fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in ferry FerryMongo FerryBlackhole FerryPostgres; do
        log "swift build -c release --product $product"
        swift build -c release --scratch-path "$BUILD_DIR" --product "$product" >&2 || die "release build of $product failed"
    done
fi
BIN="$BUILD_DIR/release"
[ -x "$BIN/ferry" ] || die "no release build in $BIN"

# Servers and their data in /tmp (the postgres user must reach them); ferry's
# side under the build folder: ferry refuses plugins below a folder others
# can write, which /tmp is.
WORK="$(mktemp -d /tmp/ferry-bench-mongo.XXXXXX)"
LOCAL=""
# shellcheck source=scripts/lib/bench-pg.sh
. "$REPO_ROOT/scripts/lib/bench-pg.sh"
MONGO_PID=""
# Is the process still the one we started (pids are reused)?
is_ours() { [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"; }
cleanup() {
    # A second signal must not cut the clean-up short.
    trap '' INT TERM
    bench_pg_stop
    if is_ours "$MONGO_PID" "secantus --config $WORK/"; then
        kill -TERM "$MONGO_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            is_ours "$MONGO_PID" secantus || break
            sleep 0.2
        done
        if is_ours "$MONGO_PID" secantus; then kill -KILL "$MONGO_PID" 2>/dev/null || true; fi
    fi
    rm -rf "$WORK" ${LOCAL:+"$LOCAL"}
}
trap cleanup EXIT
# A signal becomes a normal exit, so the servers are stopped then too.
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 755 "$WORK"
LOCAL="$(mktemp -d "$BUILD_DIR/ferry-bench-mongo.XXXXXX")"

log "compiling scripts/bench/mongo_drain.c"
DRAIN="$LOCAL/mongo_drain"
# shellcheck disable=SC2046
"$CC" -O2 $(pkg-config --cflags libmongoc-1.0) scripts/bench/mongo_drain.c -o "$DRAIN" $(pkg-config --libs libmongoc-1.0) \
    || die "cannot compile scripts/bench/mongo_drain.c"
mkdir -p "$LOCAL/plugins"
for lib in FerryMongo FerryBlackhole FerryPostgres; do
    [ -f "$BIN/lib$lib.so" ] || die "no $BIN/lib$lib.so"
    cp "$BIN/lib$lib.so" "$LOCAL/plugins/"
done

# --- SecantusDB ----------------------------------------------------------------
SERVER="the server at MONGO_URI"
if [ -z "$MONGO_URI" ]; then
    MONGO_PORT="$(bench_free_port)"
    SERVER="SecantusDB $("$PY" -c 'import importlib.metadata as m; print(m.version("secantusdb"))' 2>/dev/null || echo '?') in memory"
    log "starting $SERVER on 127.0.0.1:$MONGO_PORT"
    # An empty --config keeps a secantusd.toml elsewhere on the machine from
    # changing the server; TMPDIR keeps its in-memory store's temp folder in
    # ours, removed at exit even if the server has to be killed.
    : >"$WORK/secantusd.toml"
    TMPDIR="$WORK" "$PY" -m secantus --config "$WORK/secantusd.toml" --host 127.0.0.1 --port "$MONGO_PORT" \
        --storage-path :memory: >"$WORK/secantus.log" 2>&1 </dev/null &
    MONGO_PID=$!
    MONGO_URI="mongodb://127.0.0.1:$MONGO_PORT"
    deadline=$((SECONDS + 60))
    until (exec 3<>"/dev/tcp/127.0.0.1/$MONGO_PORT") 2>/dev/null && "$DRAIN" ping "$MONGO_URI" admin x >/dev/null 2>&1; do
        if ! kill -0 "$MONGO_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$WORK/secantus.log" >&2
            die "SecantusDB did not answer a ping on 127.0.0.1:$MONGO_PORT"
        fi
        sleep 0.2
    done
fi

"$DRAIN" ping "$MONGO_URI" admin x >/dev/null || die "no answer from the MongoDB server"

# --- PostgreSQL ------------------------------------------------------------------
bench_pg_start "$WORK"
# Every field of a seeded document has its column, so nothing is rejected as
# unknown and every value is converted (ObjectId to text, decimal128 to
# numeric, array to text[], document to jsonb, date to timestamptz).
psql_ -c 'CREATE TABLE products (_id text PRIMARY KEY, n bigint NOT NULL, sku text NOT NULL, name text NOT NULL,
    description text, price numeric(10,2) NOT NULL, stock int NOT NULL, category text NOT NULL, tags text[],
    attributes jsonb, "updatedAt" timestamptz NOT NULL)'

field() { # name text: the number after name= in text
    [[ "$2" =~ $1=([0-9.]+) ]] || die "no $1 in: $2"
    printf '%s\n' "${BASH_REMATCH[1]}"
}

if [ "$SKIP_SEED" != 1 ]; then
    log "seeding $DOCS documents into $DB.$COLL"
    started=$SECONDS
    "$DRAIN" seed "$MONGO_URI" "$DB" "$COLL" "$DOCS" >/dev/null || die "seeding failed"
    log "seeded in $((SECONDS - started)) s"
fi

now() { date +%s.%N; }
# Runs a command under /usr/bin/time -v: wall seconds in $ELAPSED, peak RSS
# (KiB) in $RSS_KB, its stdout in $WORK/last.out.
run_timed() {
    local start end
    start=$(now)
    /usr/bin/time -v -o "$WORK/time" "$@" >"$WORK/last.out" 2>"$WORK/last.err" \
        || { sed -n '1,40p' "$WORK/last.err" >&2; die "command failed: $*"; }
    end=$(now)
    ELAPSED=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    RSS_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time")
}
drain() { # mode
    run_timed "$DRAIN" "$1" "$MONGO_URI" "$DB" "$COLL"
    local seen
    seen="$(field docs "$(cat "$WORK/last.out")")"
    [ "$seen" = "$DOCS" ] || die "$1 saw $seen documents, expected $DOCS"
}
ferry_run() { # pipeline expected-read
    run_timed "$BIN/ferry" run "$1" --plugins "$LOCAL/plugins" --state-dir "$LOCAL/state" \
        --batch-size "$BATCH" --workers "$WORKERS" --no-progress --output json
    local json read
    json="$(cat "$WORK/last.out")"
    [[ "$json" == *'"outcome":"completed"'* ]] || die "ferry run $1 did not complete: $json"
    read="$(sed -n 's/.*"read":\([0-9]*\).*/\1/p' <<<"$json")"
    [ "$read" = "$2" ] || die "ferry run $1 read ${read:-?} documents, expected $2"
}

SOURCE="{plugin: mongo, config: {uri: \"$MONGO_URI\", database: $DB, collection: $COLL, estimate: false}}"
cat >"$LOCAL/full.yaml" <<EOF
name: bench-mongo-full
source: $SOURCE
sink: {plugin: blackhole}
mode: full
EOF
cat >"$LOCAL/pg.yaml" <<EOF
name: bench-mongo-pg
source: $SOURCE
sink: {plugin: postgres, config: {dsn: "$DSN", table: products, key: [_id]}}
mode: full
EOF
cat >"$LOCAL/incremental.yaml" <<EOF
name: bench-mongo-incremental
source: {plugin: mongo, config: {uri: "$MONGO_URI", database: $DB, collection: $COLL, cursor: updatedAt, estimate: false}}
sink: {plugin: blackhole}
mode: incremental
EOF

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A WALL RSS
# The machine is shared and a Python server's speed drifts from one read of
# the same data to the next (it warms up, collects garbage): the full reads
# run interleaved, REPEAT times, and the medians are compared, so drift and
# load that come and go hit them all alike.
for round in $(seq 1 "$REPEAT"); do
    for variant in a anat b bpg; do
        log "round $round/$REPEAT: $variant"
        case "$variant" in
            a) drain drain ;;
            anat) drain drain-natural ;;
            b) ferry_run "$LOCAL/full.yaml" "$DOCS" ;;
            bpg)
                psql_ -c "TRUNCATE products" -c "CHECKPOINT"
                ferry_run "$LOCAL/pg.yaml" "$DOCS"
                rows="$(psql_ -At -c "SELECT count(*) FROM products")"
                [ "$rows" = "$DOCS" ] || die "(b-pg) left $rows rows in products, expected $DOCS"
                ;;
        esac
        WALL[$variant]+="$ELAPSED "
        RSS[$variant]=$(( RSS_KB > ${RSS[$variant]:-0} ? RSS_KB : ${RSS[$variant]:-0} ))
    done
done

log "the estimate's cost: estimatedDocumentCount"
COUNT_SECONDS="$(field seconds "$("$DRAIN" count "$MONGO_URI" "$DB" "$COLL")")"

log "(c) incremental: initial load"
ferry_run "$LOCAL/incremental.yaml" "$DOCS"
WALL[c0]=$ELAPSED; RSS[c0]=$RSS_KB
log "(c) touching 1% of the documents"
CHANGED="$(field docs "$("$DRAIN" touch "$MONGO_URI" "$DB" "$COLL" 100)")"
[ "$CHANGED" = $(( (DOCS + 99) / 100 )) ] || die "touch changed $CHANGED documents, expected $(( (DOCS + 99) / 100 ))"
log "(c) incremental run"
ferry_run "$LOCAL/incremental.yaml" "$CHANGED"
WALL[c]=$ELAPSED; RSS[c]=$RSS_KB
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

ARGS=()
for key in a anat b bpg c0 c; do ARGS+=("$key=${WALL[$key]}|${RSS[$key]}"); done
python3 - "$DOCS" "$CHANGED" "$BATCH" "$WORKERS" "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$COUNT_SECONDS" "$SERVER" "${ARGS[@]}" <<'EOF'
import statistics, sys
docs, changed, batch, workers, cores = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
load_before, load_after, count_seconds, server = sys.argv[6], sys.argv[7], float(sys.argv[8]), sys.argv[9]
runs = {}
for arg in sys.argv[10:]:
    key, rest = arg.split("=", 1)
    wall, rss = rest.split("|")
    runs[key] = ([float(x) for x in wall.split()], int(rss) / 1024)
med = {k: statistics.median(v[0]) for k, v in runs.items()}
rounds = len(runs["a"][0])
print(f"### MongoDB → blackhole and → PostgreSQL: {docs:,} product documents")
print()
print(f"{cores} cores; load average {load_before} before, {load_after} after; {server}; batch {batch}, "
      f"workers {workers}; full reads: medians of {rounds} interleaved rounds.")
print()
print("| run | median s | spread s | docs/s | vs (a) | peak RSS |")
print("|---|---:|---:|---:|---:|---:|")
labels = {
    "a": ("(a) bare libmongoc cursor, find({}) sorted by _id (the source's full read)", docs, False),
    "anat": ("(a-nat) the same cursor in natural order (no sort)", docs, True),
    "b": ("(b) ferry mongo → blackhole, full", docs, True),
    "bpg": ("(b-pg) ferry mongo → PostgreSQL, full (keyed table, upsert, empty target)", docs, True),
    "c0": ("(c) incremental, initial load", docs, False),
    "c": (f"(c) ferry incremental, {changed:,} documents changed", changed, False),
}
for key, (label, n, versus) in labels.items():
    walls, rss = runs[key]
    m = med[key]
    spread = f"{min(walls):.2f}–{max(walls):.2f}" if len(walls) > 1 else "–"
    ratio = f"{med['a'] / m:.2f}×" if versus else "–"
    print(f"| {label} | {m:.2f} | {spread} | {n / m:,.0f} | {ratio} | {rss:.1f} MiB |")
print()
def verdict(ok): return "met" if ok else "MISSED"
b, c = med["a"] / med["b"], med["c"] / med["b"]
peak = max(runs[k][1] for k in ("b", "bpg", "c0", "c"))
print(f"- (b) ≥ 0.95× (a): {b:.2f}× — {verdict(b >= 0.95)}")
print(f"- (c) ≤ 20% of (b): {100 * c:.1f}% — {verdict(c <= 0.20)}")
print(f"- peak RSS of the ferry runs < 150 MiB: {peak:.1f} MiB — {verdict(peak < 150)}")
print(f"- (b-pg) against (a): {med['a'] / med['bpg']:.2f}×; against (b): {med['b'] / med['bpg']:.2f}×")
print(f"- natural order: (a-nat) reads at {med['a'] / med['anat']:.2f}× the rate of (a), the sort's cost on this server")
print(f"- estimatedDocumentCount (what the default `estimate: true` adds to a full run): {count_seconds:.2f} s")
print(f"- every run read {docs:,} documents ((c): the {changed:,} changed); the PostgreSQL table held {docs:,} rows after each (b-pg)")
EOF
