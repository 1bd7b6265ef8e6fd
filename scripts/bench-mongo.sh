#!/usr/bin/env bash
# bench-mongo.sh — how much of what a MongoDB server can send the mongo plugin
# and the engine keep, and what an incremental run costs.
#
# Over one collection of DOCS product documents (~350 B each, seeded by
# scripts/bench/mongo_drain.c with unordered bulk inserts), release build:
#   (a) bare   scripts/bench/mongo_drain.c: one libmongoc cursor, find({})
#              sorted by _id (the query the plugin runs for a full read),
#              walked to the end with no engine at all: the source's limit.
#              Run before and after (b); the faster run is the baseline.
#   (b) ferry  `ferry run` mongo -> blackhole, mode full: docs/s, (b)/(a),
#              peak RSS (/usr/bin/time -v). With `estimate: false`: the
#              up-front count is timed on its own (estimatedDocumentCount is
#              metadata on MongoDB but a full scan on SecantusDB) and printed
#              beside (b), so (b) measures reading.
#   (c) incr   an incremental pipeline (cursor updatedAt, key _id): one
#              initial load, then 1% of the documents get a new updatedAt,
#              then the timed incremental run; its wall time over (b)'s.
# Targets: (b) >= 0.8x (a), (c) <= 20% of (b)'s time, peak RSS
# < 150 MiB. A missed target is reported, not an error: the script exits
# non-zero only when the benchmark itself fails.
#
# Environment:
#   DOCS         documents (default 1000000)
#   MONGO_URI    server to use (default: $FERRY_TEST_MONGO_URI, i.e. the
#                SecantusDB of scripts/test-servers.sh: start it first and
#                source its env file)
#   BATCH_SIZE   ferry batch size (default 1000)
#   SKIP_SEED    1: reuse bench.products from an earlier run (same DOCS)
#   SKIP_BUILD   1: use the release build as it is
#   CC           C compiler (default cc)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DOCS="${DOCS:-1000000}"
BATCH_SIZE="${BATCH_SIZE:-1000}"
CC="${CC:-cc}"
MONGO_URI="${MONGO_URI:-${FERRY_TEST_MONGO_URI:-}}"
DB=bench
COLL=products

log() { printf 'bench-mongo: %s\n' "$*" >&2; }
die() { printf 'bench-mongo: error: %s\n' "$*" >&2; exit 1; }

[[ "$DOCS" =~ ^[1-9][0-9]*$ ]] || die "DOCS must be a positive integer (got '$DOCS')"
[[ "$BATCH_SIZE" =~ ^[1-9][0-9]*$ ]] || die "BATCH_SIZE must be a positive integer (got '$BATCH_SIZE')"
[ -n "$MONGO_URI" ] || die "no server: set MONGO_URI, or run scripts/test-servers.sh start and source \$(scripts/test-servers.sh env)"
[ "$DOCS" -ge 100 ] || die "DOCS must be at least 100 (1% of them are changed)"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed for peak RSS"
pkg-config --exists libmongoc-1.0 || die "libmongoc-1.0 development files not found (apt-get install libmongoc-dev)"
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in ferry FerryMongo FerryBlackhole; do
        log "swift build -c release --product $product"
        swift build -c release --product "$product" >&2 || die "release build of $product failed"
    done
fi
BIN_DIR="$(swift build -c release --show-bin-path)"
FERRY="$BIN_DIR/ferry"
[ -x "$FERRY" ] || die "no $FERRY"

# Under .build, not /tmp: ferry refuses plugins below a folder others can write.
WORK="$(mktemp -d "$REPO_ROOT/.build/ferry-bench-mongo.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/plugins"
for lib in FerryMongo FerryBlackhole; do
    [ -f "$BIN_DIR/lib$lib.so" ] || die "no $BIN_DIR/lib$lib.so"
    cp "$BIN_DIR/lib$lib.so" "$WORK/plugins/"
done

log "compiling scripts/bench/mongo_drain.c"
DRAIN="$WORK/mongo_drain"
# shellcheck disable=SC2046
"$CC" -O2 $(pkg-config --cflags libmongoc-1.0) scripts/bench/mongo_drain.c -o "$DRAIN" $(pkg-config --libs libmongoc-1.0) \
    || die "cannot compile scripts/bench/mongo_drain.c"

field() { # name text: the number after name= in text
    [[ "$2" =~ $1=([0-9.]+) ]] || die "no $1 in: $2"
    printf '%s\n' "${BASH_REMATCH[1]}"
}

if [ "${SKIP_SEED:-0}" != 1 ]; then
    log "seeding $DOCS documents into $DB.$COLL"
    started=$(date +%s.%N)
    "$DRAIN" seed "$MONGO_URI" "$DB" "$COLL" "$DOCS" >/dev/null || die "seeding failed"
    log "seeded in $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
fi

# One bare drain: sets DRAIN_RATE and DRAIN_SECONDS.
run_drain() {
    local out
    out="$("$DRAIN" drain "$MONGO_URI" "$DB" "$COLL")" || die "drain failed"
    [ "$(field docs "$out")" = "$DOCS" ] || die "drain saw $(field docs "$out") documents, expected $DOCS"
    DRAIN_RATE="$(field docs_per_sec "$out")"
    DRAIN_SECONDS="$(field seconds "$out")"
}

# The server's speed drifts between consecutive reads of the same data (a
# Python server warms up, caches, collects garbage), so (a) runs before and
# after (b) and the faster of the two is the baseline: the ratio errs low.
log "(a) bare libmongoc cursor, before (b)"
run_drain
A_RATE="$DRAIN_RATE"
A_SECONDS="$DRAIN_SECONDS"
A_FIRST_RATE="$DRAIN_RATE"

# One ferry run under GNU time: sets RUN_SECONDS, RUN_READ, RUN_RSS_KIB.
run_ferry() { # pipeline state-dir label
    local out="$WORK/$3.json" err="$WORK/$3.err" rc=0
    /usr/bin/time -v -o "$WORK/$3.time" "$FERRY" run "$1" --plugins "$WORK/plugins" --state-dir "$2" \
        --batch-size "$BATCH_SIZE" --no-progress --output json >"$out" 2>"$err" || rc=$?
    if [ "$rc" != 0 ]; then
        sed -n '1,40p' "$err" >&2
        die "ferry run ($3) exited $rc"
    fi
    local json
    json="$(cat "$out")"
    [[ "$json" == *'"outcome":"completed"'* ]] || die "ferry run ($3) did not complete: $json"
    RUN_READ="$(sed -n 's/.*"read":\([0-9]*\).*/\1/p' <<<"$json")"
    RUN_SECONDS="$(sed -n 's/.*"elapsedSeconds":\([0-9.eE+-]*\).*/\1/p' <<<"$json")"
    [ -n "$RUN_SECONDS" ] || RUN_SECONDS="$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$WORK/$3.time")"
    RUN_RSS_KIB="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/$3.time")"
}

source_config="{uri: \"$MONGO_URI\", database: $DB, collection: $COLL, estimate: false}"
cat >"$WORK/full.yaml" <<EOF
name: bench-mongo-full
source: {plugin: mongo, config: $source_config}
sink: {plugin: blackhole}
mode: full
EOF
cat >"$WORK/incremental.yaml" <<EOF
name: bench-mongo-incremental
source: {plugin: mongo, config: {uri: "$MONGO_URI", database: $DB, collection: $COLL, cursor: updatedAt}}
sink: {plugin: blackhole}
mode: incremental
EOF

log "the estimate's cost: estimatedDocumentCount"
COUNT_SECONDS="$(field seconds "$("$DRAIN" count "$MONGO_URI" "$DB" "$COLL")")"

log "(b) ferry run mongo -> blackhole (full)"
run_ferry "$WORK/full.yaml" "$WORK/state-full" full
[ "$RUN_READ" = "$DOCS" ] || die "ferry read $RUN_READ documents, expected $DOCS"
B_SECONDS="$RUN_SECONDS"
B_RSS_KIB="$RUN_RSS_KIB"
B_RATE="$(awk -v n="$DOCS" -v s="$B_SECONDS" 'BEGIN { printf "%.0f", n / s }')"

log "(a) bare libmongoc cursor, after (b)"
run_drain
A_SECOND_RATE="$DRAIN_RATE"
if awk -v a="$DRAIN_RATE" -v b="$A_RATE" 'BEGIN { exit !(a > b) }'; then
    A_RATE="$DRAIN_RATE"
    A_SECONDS="$DRAIN_SECONDS"
fi

log "(c) incremental: initial load"
run_ferry "$WORK/incremental.yaml" "$WORK/state-incr" incr-initial
[ "$RUN_READ" = "$DOCS" ] || die "initial incremental load read $RUN_READ, expected $DOCS"
INITIAL_SECONDS="$RUN_SECONDS"
log "(c) touching 1% of the documents"
touched="$(field docs "$("$DRAIN" touch "$MONGO_URI" "$DB" "$COLL" 100)")"
log "(c) incremental run"
run_ferry "$WORK/incremental.yaml" "$WORK/state-incr" incr-1pct
[ "$RUN_READ" = "$touched" ] || die "incremental run read $RUN_READ documents, $touched were changed"
C_SECONDS="$RUN_SECONDS"
C_RSS_KIB="$RUN_RSS_KIB"

verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "met" : "MISSED" }'; }
RATIO_BA="$(awk -v b="$B_RATE" -v a="$A_RATE" 'BEGIN { printf "%.2f", b / a }')"
RATIO_CB="$(awk -v c="$C_SECONDS" -v b="$B_SECONDS" 'BEGIN { printf "%.3f", c / b }')"
RSS_MIB="$(awk -v k="$B_RSS_KIB" -v c="$C_RSS_KIB" 'BEGIN { m = k > c ? k : c; printf "%.1f", m / 1024 }')"

printf '\nbench-mongo: %s documents, batch size %s\n' "$DOCS" "$BATCH_SIZE"
printf '  (a) bare libmongoc cursor        %10.0f docs/s  (%.2f s; the faster of %.0f before and %.0f after (b))\n' \
    "$A_RATE" "$A_SECONDS" "$A_FIRST_RATE" "$A_SECOND_RATE"
printf '  (b) ferry mongo -> blackhole     %10.0f docs/s  (%.2f s)  (b)/(a) = %s  [target >= 0.8: %s]\n' \
    "$B_RATE" "$B_SECONDS" "$RATIO_BA" "$(verdict "$RATIO_BA" 0.8 '>=')"
printf '      estimatedDocumentCount (the default estimate: true adds it to a run)  %.2f s\n' "$COUNT_SECONDS"
printf '      incremental initial load                    (%.2f s)\n' "$INITIAL_SECONDS"
printf '  (c) incremental, %s changed                (%.2f s)  (c)/(b) = %s  [target <= 0.20: %s]\n' \
    "$touched" "$C_SECONDS" "$RATIO_CB" "$(verdict "$RATIO_CB" 0.20 '<=')"
printf '  peak RSS (ferry, max of b and c) %10s MiB  [target < 150: %s]\n' "$RSS_MIB" "$(verdict "$RSS_MIB" 150 '<=')"
