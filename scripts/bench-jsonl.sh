#!/usr/bin/env bash
# bench-jsonl.sh — the file connector's JSON Lines against cat and jq.
#
# Writes RECORDS product records shaped like the quickstart's
# (examples/data/products.jsonl: an ObjectId, strings, a decimal, an int and a
# date per record) to one file, then runs, interleaved, REPEAT rounds of:
#   cat      cat in.jsonl > out.jsonl                   (the disk's limit)
#   jq       jq -c . in.jsonl > out.jsonl               (a JSON parser and writer)
#   ferry    file -> file, workers 1, batch BATCH, fsync off (like cat and jq)
#   ferry    the same with the default fsync on every commit
#   ferry    file -> blackhole, workers 1               (parse only)
# and prints one Markdown table: median wall time, spread (min–max), records/s,
# MB/s of input, ratio to jq, peak RSS (/usr/bin/time -v), with the machine's
# core count and load average. Checks that every output has RECORDS lines and
# that jq reads ferry's output.
# Targets: ferry file -> file >= 1M records/s, file -> blackhole >= 200 MB/s,
# peak RSS < 100 MiB.
#
# A report: a missed target still exits 0; non-zero means the benchmark failed.
#
# Environment:
#   RECORDS     records (default 1000000)
#   REPEAT      interleaved rounds; medians are reported (default 3)
#   BATCH       ferry batch size (default 10000)
#   BUILD_DIR   release scratch path (default .build-bench)
#   SKIP_BUILD  1: use the release build as it is
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

RECORDS="${RECORDS:-1000000}"
REPEAT="${REPEAT:-3}"
BATCH="${BATCH:-10000}"
BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/.build-bench}"

log() { printf 'bench-jsonl: %s\n' "$*" >&2; }
die() { printf 'bench-jsonl: error: %s\n' "$*" >&2; exit 1; }

[[ "$RECORDS" =~ ^[1-9][0-9]*$ ]] || die "RECORDS must be a positive integer (got '$RECORDS')"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer (got '$REPEAT')"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for peak RSS (apt-get install time)"
if ! command -v jq >/dev/null 2>&1; then
    # The baseline only; the project itself never needs jq.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing jq (the baseline)"
        { apt-get install -y jq || { apt-get update && apt-get install -y jq; }; } >&2 || die "cannot install jq"
    else
        die "jq is needed for the baseline (apt-get install jq)"
    fi
fi
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH="$PATH:/opt/swift/usr/bin"; fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in ferry FerryFile FerryBlackhole; do
        log "swift build -c release --product $product"
        swift build -c release --scratch-path "$BUILD_DIR" --product "$product" >&2 || die "release build of $product failed"
    done
fi
BIN="$BUILD_DIR/release"
[ -x "$BIN/ferry" ] && [ -f "$BIN/libFerryFile.so" ] && [ -f "$BIN/libFerryBlackhole.so" ] || die "no release build in $BIN"

WORK="$(mktemp -d "$BUILD_DIR/bench-jsonl.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/plugins"
cp "$BIN/libFerryFile.so" "$BIN/libFerryBlackhole.so" "$WORK/plugins/"

IN="$WORK/in.jsonl"
log "writing $RECORDS records"
python3 scripts/bench/gen_products.py "$RECORDS" examples/data/products.jsonl >"$IN"
BYTES=$(stat -c %s "$IN")

for fsync in false true; do
    cat >"$WORK/file-fsync-$fsync.yaml" <<EOF
name: bench_jsonl_file
source: {plugin: file, config: {path: "$IN"}}
sink: {plugin: file, config: {path: "$WORK/ferry.jsonl", fsync: $fsync}}
mode: full
batch_size: $BATCH
workers: 1
EOF
done
cat >"$WORK/blackhole.yaml" <<EOF
name: bench_jsonl_blackhole
source: {plugin: file, config: {path: "$IN"}}
sink: {plugin: blackhole}
mode: full
batch_size: $BATCH
workers: 1
EOF
FERRY=("$BIN/ferry" run --no-progress --plugins "$WORK/plugins" --state-dir "$WORK/state")

# Wall seconds in $ELAPSED, peak RSS (KiB) in $RSS_KB.
run_timed() {
    local out="$WORK/time"
    /usr/bin/time -v -o "$out" "$@" >"$WORK/last.out" 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; die "command failed: $*"; }
    ELAPSED=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$out")
    RSS_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out")
}
lines() { wc -l <"$1" | tr -d ' '; }

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A TIMES RSS
VARIANTS=(cat jq file filesync blackhole)
for round in $(seq 1 "$REPEAT"); do
    for variant in "${VARIANTS[@]}"; do
        log "round $round/$REPEAT: $variant"
        rm -f "$WORK/out.jsonl" "$WORK/ferry.jsonl"
        sync
        case "$variant" in
            cat) run_timed bash -c "cat '$IN' > '$WORK/out.jsonl'" ;;
            jq) run_timed bash -c "jq -c . '$IN' > '$WORK/out.jsonl'" ;;
            file) run_timed "${FERRY[@]}" "$WORK/file-fsync-false.yaml" ;;
            filesync) run_timed "${FERRY[@]}" "$WORK/file-fsync-true.yaml" ;;
            blackhole) run_timed "${FERRY[@]}" "$WORK/blackhole.yaml" ;;
        esac
        TIMES[$variant]+="$ELAPSED "
        RSS[$variant]=$(( RSS_KB > ${RSS[$variant]:-0} ? RSS_KB : ${RSS[$variant]:-0} ))
        case "$variant" in
            cat | jq) [ "$(lines "$WORK/out.jsonl")" = "$RECORDS" ] || die "$variant wrote the wrong number of lines" ;;
            filesync) [ "$(lines "$WORK/ferry.jsonl")" = "$RECORDS" ] || die "ferry wrote the wrong number of lines" ;;
            file)
                [ "$(lines "$WORK/ferry.jsonl")" = "$RECORDS" ] || die "ferry wrote the wrong number of lines"
                if [ "$round" = 1 ]; then
                    jq -c . "$WORK/ferry.jsonl" >/dev/null || die "jq cannot read ferry's output"
                    head -n 1 "$WORK/ferry.jsonl" >"$WORK/sample.jsonl"
                fi
                ;;
            blackhole) grep -q "$RECORDS" "$WORK/last.out" "$WORK/last.err" || log "warning: the blackhole run did not report $RECORDS records" ;;
        esac
    done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$RECORDS" "$BYTES" "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$BATCH" "$(cat "$WORK/sample.jsonl")" \
    "${TIMES[cat]}" "${TIMES[jq]}" "${TIMES[file]}" "${TIMES[filesync]}" "${TIMES[blackhole]}" \
    "${RSS[cat]}" "${RSS[jq]}" "${RSS[file]}" "${RSS[filesync]}" "${RSS[blackhole]}" <<'EOF'
import os, statistics, sys
records, size, cores = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
load_before, load_after, batch, sample = sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
keys = ["cat", "jq", "file", "filesync", "blackhole"]
times = {k: [float(x) for x in v.split()] for k, v in zip(keys, sys.argv[8:13])}
rss = dict(zip(keys, (int(x) / 1024 for x in sys.argv[13:18])))
med = {k: statistics.median(v) for k, v in times.items()}
labels = {
    "cat": "`cat in > out`",
    "jq": "`jq -c . in > out`",
    "file": "ferry file → file (1 worker, fsync off)",
    "filesync": "ferry file → file (1 worker, fsync every commit)",
    "blackhole": "ferry file → blackhole (1 worker)",
}
print(f"### JSON Lines: {records:,} quickstart-shaped records, {size / 1e6:.0f} MB")
print()
print(f"{cores} cores; load average {load_before} before, {load_after} after; "
      f"batch {batch}; medians of {len(times['cat'])} interleaved rounds.")
print()
print("| run | median s | spread s | records/s | MB/s in | vs jq | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---:|")
for key in keys:
    m = med[key]
    spread = f"{min(times[key]):.2f}–{max(times[key]):.2f}"
    print(f"| {labels[key]} | {m:.2f} | {spread} | {records / m:,.0f} | {size / m / 1e6:,.0f} | {med['jq'] / m:.2f}× | {rss[key]:.1f} MiB |")
print()
def verdict(ok): return "met" if ok else "MISSED"
file_rate, hole_mbs = records / med["file"], size / med["blackhole"] / 1e6
peak = max(rss["file"], rss["filesync"], rss["blackhole"])
print(f"- file → file ≥ 1,000,000 records/s: {file_rate:,.0f} (fsync off), {records / med['filesync']:,.0f} (fsync on) — {verdict(file_rate >= 1e6)}")
print(f"- file → blackhole ≥ 200 MB/s: {hole_mbs:,.0f} MB/s — {verdict(hole_mbs >= 200)}")
print(f"- peak RSS < 100 MiB: {peak:.1f} MiB — {verdict(peak < 100)}")
print(f"- time per record: file → file {med['file'] / records * 1e9:,.0f} ns, file → blackhole {med['blackhole'] / records * 1e9:,.0f} ns")
if os.environ.get("BENCH_SUMMARY"):
    # One line per run for bench-all.sh's 1M-against-5M comparison.
    with open(os.environ["BENCH_SUMMARY"], "a") as summary:
        print(f"jsonl {records} file_ns={med['file'] / records * 1e9:.1f} blackhole_ns={med['blackhole'] / records * 1e9:.1f} rss_mib={peak:.1f} "
              f"baseline:cat_ns={med['cat'] / records * 1e9:.1f}", file=summary)
print(f"- ferry's output reads back with jq; its first line: `{sample}`")
EOF
