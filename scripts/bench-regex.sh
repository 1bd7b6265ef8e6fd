#!/usr/bin/env bash
# bench-regex.sh — what the regex_filter transform costs, beside pass-through.
#
# Runs `ferry run` (release build) over RECORDS product records, the same
# source and sink on both sides, the transform alone differing:
#   generate -> passthrough  -> blackhole   the runtime benchmark's baseline
#   generate -> regex_filter -> blackhole   include category ^(books|games)$
#                                           AND exclude sku =~ /\bsku-\d{6}13\b/i
#   file     -> passthrough  -> blackhole   JSON Lines products (with a name),
#   file     -> regex_filter -> blackhole   generated once; include category
#                                           ^(books|games)$ AND exclude name
#                                           =~ /\brefurbished\b/i
# The generate source has no `name` field, so its case-insensitive exclude
# runs on `sku`; the file pair runs the rule on `name` as written, but its
# JSON parsing bounds both sides, so the generate pair is the one the
# target (regex_filter >= 4M records/s on one worker) is read from.
#
# For workers 1 and 2, each REPEAT times, alternating baseline and filter so
# drift hits both alike; prints the median records/s, filter/baseline, and
# the target marked met/MISSED. Every run is checked: all records read, and
# exactly the expected number kept.
#
# It also prints the CPU time (user + system) per record of each pipeline and
# the difference, the filter's own cost: wall-clock rates move with whatever
# else the machine runs, CPU time much less. And the filter alone
# (scripts/bench/transform_alone.c): the generate rule's transform calls over
# batches read once beforehand, best of ALONE_PASSES passes, no engine at all.
#
# It is a report: a missed target still exits 0. Non-zero means the
# benchmark itself failed (build, a crashed or short run, a wrong count).
#
# Environment:
#   RECORDS     records per run (default 1000000)
#   REPEAT      runs per cell; the median is reported (default 3)
#   WORKERS     worker counts to try (default "1 2")
#   BATCH_SIZE  records per batch (default 1000)
#   SKIP_BUILD  1: use the release build as it is (default: build first)
#   ALONE_PASSES passes over the batches for the filter alone; the best counts (default 10)
#   CC          C compiler for transform_alone.c (default cc)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

RECORDS="${RECORDS:-1000000}"
REPEAT="${REPEAT:-3}"
WORKERS="${WORKERS:-1 2}"
BATCH_SIZE="${BATCH_SIZE:-1000}"
TARGET_ONE_WORKER=4000000
CC="${CC:-cc}"
ALONE_PASSES="${ALONE_PASSES:-10}"

log() { printf 'bench-regex: %s\n' "$*" >&2; }
die() { printf 'bench-regex: error: %s\n' "$*" >&2; exit 1; }

[[ "$RECORDS" =~ ^[1-9][0-9]*$ ]] || die "RECORDS must be a positive integer (got '$RECORDS')"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer (got '$REPEAT')"
[[ "$BATCH_SIZE" =~ ^[1-9][0-9]*$ ]] || die "BATCH_SIZE must be a positive integer (got '$BATCH_SIZE')"
[[ "$ALONE_PASSES" =~ ^[1-9][0-9]*$ ]] || die "ALONE_PASSES must be a positive integer (got '$ALONE_PASSES')"
for w in $WORKERS; do [[ "$w" =~ ^[1-9][0-9]*$ ]] || die "bad worker count '$w'"; done

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi

PLUGINS=(FerryGenerate FerryFile FerryPassthrough FerryRegexFilter FerryBlackhole)
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in ferry "${PLUGINS[@]}"; do
        log "swift build -c release --product $product"
        swift build -c release --product "$product" >&2 || die "release build of $product failed"
    done
fi
BIN_DIR="$(swift build -c release --show-bin-path)"
FERRY="$BIN_DIR/ferry"
[ -x "$FERRY" ] || die "no $FERRY (build with: swift build -c release --product ferry)"

# Under .build, not /tmp: ferry refuses plugins below a folder others can write.
WORK="$(mktemp -d "$REPO_ROOT/.build/ferry-bench-regex.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/plugins"
for lib in "${PLUGINS[@]}"; do
    [ -f "$BIN_DIR/lib$lib.so" ] || die "no $BIN_DIR/lib$lib.so"
    cp "$BIN_DIR/lib$lib.so" "$WORK/plugins/"
done

log "compiling scripts/bench/transform_alone.c"
ALONE="$WORK/transform_alone"
"$CC" -O2 -I Sources/CFerryPlugin/include scripts/bench/transform_alone.c -o "$ALONE" -ldl \
    || die "cannot compile scripts/bench/transform_alone.c"

# The JSON Lines products, generated once per record count and kept under
# .build (not in git). Names cycle through adjectives independently of the
# category, so 2 in 8 books/games records are "Refurbished"/"REFURBISHED".
DATA_DIR="$REPO_ROOT/.build/bench-data"
DATA="$DATA_DIR/products-$RECORDS.jsonl"
if [ ! -s "$DATA" ]; then
    log "writing $DATA (once)"
    mkdir -p "$DATA_DIR"
    awk -v n="$RECORDS" 'BEGIN {
        split("books games music garden kitchen toys tools sports", category, " ")
        split("Deluxe Classic Compact Smart Eco Vintage Refurbished REFURBISHED", adjective, " ")
        split("Novel Puzzle Lamp Drone Kettle Trowel Chess-Set Headphones Cookbook Kite", noun, " ")
        for (i = 0; i < n; i++)
            printf "{\"id\": %d, \"sku\": \"SKU-%08d\", \"name\": \"%s %s %d\", \"category\": \"%s\", \"price\": %d.%02d, \"stock\": %d}\n",
                i, i, adjective[int(i / 8) % 8 + 1], noun[int(i / 64) % 10 + 1], i % 100, category[i % 8 + 1],
                (i % 10000) / 100, i % 100, i % 500
    }' >"$DATA.tmp" && mv "$DATA.tmp" "$DATA"
fi

# What each regex pipeline must keep, counted independently of the plugin.
EXPECT_GENERATE="$(awk -v n="$RECORDS" 'BEGIN { for (i = 0; i < n; i++) if (i % 8 < 2 && i % 100 != 13) k++; print k + 0 }')"
EXPECT_FILE="$(awk -v n="$RECORDS" 'BEGIN { for (i = 0; i < n; i++) if (i % 8 < 2 && int(i / 8) % 8 < 6) k++; print k + 0 }')"

write_pipeline() { # name source-yaml transform-yaml
    cat >"$WORK/$1.yaml" <<EOF
name: $1
source: $2
transforms:
$3
sink: {plugin: blackhole}
mode: full
EOF
}
GENERATE_SOURCE="{plugin: generate, config: {count: $RECORDS}}"
FILE_SOURCE="{plugin: file, config: {path: \"$DATA\"}}"
PASSTHROUGH="  - plugin: passthrough"
regex_stage() { # field word
    cat <<EOF
  - plugin: regex_filter
    config:
      match: all
      rules:
        - {field: category, include: "^(books|games)\$"}
        - {field: $1, exclude: "$2", case_insensitive: true}
EOF
}
GENERATE_RULE_JSON='{"match": "all", "rules": [{"field": "category", "include": "^(books|games)$"}, {"field": "sku", "exclude": "\\bsku-\\d{6}13\\b", "case_insensitive": true}]}'
write_pipeline gen-pass "$GENERATE_SOURCE" "$PASSTHROUGH"
write_pipeline gen-regex "$GENERATE_SOURCE" "$(regex_stage sku '\\bsku-\\d{6}13\\b')"
write_pipeline file-pass "$FILE_SOURCE" "$PASSTHROUGH"
write_pipeline file-regex "$FILE_SOURCE" "$(regex_stage name '\\brefurbished\\b')"

# One run: prints "records/s cpu-ns/record" from ferry's JSON report and
# bash's `time` (user + system CPU of the run), after checking that every
# record was read and the expected number written.
RUN_NO=0
run_ferry() { # pipeline workers expected-written
    RUN_NO=$((RUN_NO + 1))
    local state="$WORK/state.$RUN_NO" out="$WORK/run.$RUN_NO.json" err="$WORK/run.$RUN_NO.err" rc=0
    local cpu="$WORK/run.$RUN_NO.cpu" TIMEFORMAT='%U %S'
    { time "$FERRY" run "$WORK/$1.yaml" --plugins "$WORK/plugins" --state-dir "$state" --workers "$2" \
        --batch-size "$BATCH_SIZE" --no-progress --output json >"$out" 2>"$err" || rc=$?; } 2>"$cpu"
    if [ "$rc" != 0 ]; then
        sed -n '1,40p' "$err" >&2
        die "ferry run $1 exited $rc (workers $2)"
    fi
    local json outcome read written rate
    json="$(cat "$out")"
    outcome="$(sed -n 's/.*"outcome":"\([^"]*\)".*/\1/p' <<<"$json")"
    read="$(sed -n 's/.*"read":\([0-9]*\).*/\1/p' <<<"$json")"
    written="$(sed -n 's/.*"written":\([0-9]*\).*/\1/p' <<<"$json")"
    rate="$(sed -n 's/.*"recordsPerSecond":\([0-9.eE+-]*\).*/\1/p' <<<"$json")"
    [ "$outcome" = completed ] || die "$1: outcome '$outcome' (workers $2): $json"
    [ "$read" = "$RECORDS" ] || die "$1: read $read, expected $RECORDS (workers $2)"
    [ "$written" = "$3" ] || die "$1: wrote $written, expected $3 (workers $2)"
    [ -n "$rate" ] || die "no recordsPerSecond in ferry's report: $json"
    rm -rf "$state"
    awk -v rate="$rate" -v n="$RECORDS" '{ printf "%.0f %.1f\n", rate, ($1 + $2) * 1e9 / n }' "$cpu"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.0f\n", v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A RATE CPU
log "$RECORDS records, batch $BATCH_SIZE, $REPEAT run(s) per cell, $(nproc) CPU(s), load $(cut -d' ' -f1-3 /proc/loadavg)"
for workers in $WORKERS; do
    declare -A runs=() cpus=()
    for ((r = 1; r <= REPEAT; r++)); do
        for pipeline in gen-pass gen-regex file-pass file-regex; do
            case "$pipeline" in
                *-pass) expect="$RECORDS" ;;
                gen-regex) expect="$EXPECT_GENERATE" ;;
                file-regex) expect="$EXPECT_FILE" ;;
            esac
            result="$(run_ferry "$pipeline" "$workers" "$expect")"
            runs[$pipeline]+=" ${result% *}"
            cpus[$pipeline]+=" ${result#* }"
        done
    done
    for pipeline in gen-pass gen-regex file-pass file-regex; do
        # shellcheck disable=SC2086
        RATE[$pipeline,$workers]="$(median ${runs[$pipeline]})"
        # shellcheck disable=SC2086
        CPU[$pipeline,$workers]="$(median ${cpus[$pipeline]})"
        log "workers $workers, $pipeline: rec/s${runs[$pipeline]}; cpu ns/rec${cpus[$pipeline]}"
    done
    unset runs cpus
done

# The filter alone, and pass-through alone for scale.
alone() { # plugin config expected-kept
    local out
    out="$("$ALONE" "$WORK/plugins/libFerryGenerate.so" "$WORK/plugins/lib$1.so" "$2" "$RECORDS" "$BATCH_SIZE" "$ALONE_PASSES")" \
        || die "transform_alone failed for $1"
    [[ "$out" =~ kept=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" = "$3" ] || die "transform_alone $1: $out (expected kept=$3)"
    [[ "$out" =~ ns_per_record=([0-9.]+).*records_per_sec=([0-9.]+).*cpu_ns_per_record=([0-9.]+) ]] \
        || die "transform_alone printed no rate: $out"
    printf '%s %s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
}
log "the filter alone (transform_alone, best of $ALONE_PASSES)"
read -r ALONE_NS ALONE_RATE ALONE_CPU_NS <<<"$(alone FerryRegexFilter "$GENERATE_RULE_JSON" "$EXPECT_GENERATE")"

millions() { awk -v v="$1" 'BEGIN { printf "%.2fM", v / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "Ferry regex_filter benchmark: source -> (passthrough | regex_filter) -> blackhole"
echo "records/run: $RECORDS   batch: $BATCH_SIZE   runs/cell: $REPEAT (median)   CPUs: $(nproc)   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "kept by the rule: generate $EXPECT_GENERATE, file $EXPECT_FILE (of $RECORDS)"
echo
printf '%-9s %-8s %18s %13s %11s %15s %14s %15s\n' source workers "passthrough rec/s" "regex rec/s" "regex/pass" \
    "pass cpu ns/rec" "regex cpu ns/rec" "filter ns/rec"
printf '%-9s %-8s %18s %13s %11s %15s %14s %15s\n' --------- -------- ------------------ ------------- ----------- \
    --------------- -------------- ---------------
for source in gen file; do
    for workers in $WORKERS; do
        p="${RATE[$source-pass,$workers]}" x="${RATE[$source-regex,$workers]}"
        pc="${CPU[$source-pass,$workers]}" xc="${CPU[$source-regex,$workers]}"
        printf '%-9s %-8s %18s %13s %11s %15s %14s %15s\n' "$([ "$source" = gen ] && echo generate || echo file)" "$workers" \
            "$(millions "$p")" "$(millions "$x")" "$(ratio "$x" "$p")" "$pc" "$xc" "$(awk -v a="$xc" -v b="$pc" 'BEGIN { printf "%.1f", a - b }')"
    done
done
echo "(cpu: user + system time of the whole run per record read; filter: regex minus passthrough)"
echo
echo "regex_filter alone (generate rule, transform calls only, best of $ALONE_PASSES): $ALONE_NS ns/record = $(millions "$ALONE_RATE") rec/s on one thread"
echo "  in thread CPU time: $ALONE_CPU_NS ns/record = $(awk -v n="$ALONE_CPU_NS" 'BEGIN { printf "%.2fM", 1e3 / n }') rec/s per core"
echo
one="${RATE[gen-regex,1]:-}"
if [ -z "$one" ]; then
    echo "target regex_filter >= 4M rec/s on 1 worker: n/a (no 1-worker run)"
elif awk -v v="$one" -v t="$TARGET_ONE_WORKER" 'BEGIN { exit !(v >= t) }'; then
    echo "target regex_filter >= 4M rec/s on 1 worker (generate): met ($(millions "$one"))"
else
    echo "target regex_filter >= 4M rec/s on 1 worker (generate): MISSED ($(millions "$one"); pass-through $(millions "${RATE[gen-pass,1]}") in the same run; the filter alone $(millions "$ALONE_RATE"))"
fi
if [ -n "$one" ] && [ -n "${RATE[gen-regex,2]:-}" ]; then
    echo "regex_filter 2 workers / 1 worker (generate): $(ratio "${RATE[gen-regex,2]}" "$one")x"
fi
exit 0
