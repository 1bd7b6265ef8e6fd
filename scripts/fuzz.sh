#!/usr/bin/env bash
# fuzz.sh — fuzz Ferry's parsers of outside input with libFuzzer (+ AddressSanitizer).
#
#   scripts/fuzz.sh                    build, then run every target for 60 s
#   scripts/fuzz.sh cron 300           build, then run one target for 300 s
#   scripts/fuzz.sh --build            build only
#   scripts/fuzz.sh --list             the targets
#
# Targets (the bodies are Tests/FerryCoreTests/Fuzz/Fuzz*.swift, registered in
# FuzzTargets.swift): bson-batch, jsonl, json-value, pipeline-yaml, cron,
# postgres-dsn, daemon-config.
#
# Each target starts from its seed corpus, Tests/Fuzz/corpus/<target>/ (read
# only), and from what earlier runs found; the inputs libFuzzer finds that reach
# new code are kept in $FERRY_FUZZ_CORPUS_DIR/<target>/ (default
# .build-fuzz/corpus), for the next run. Copy the few worth keeping (small, or
# ones that found a bug) into Tests/Fuzz/corpus/<target>/ for CI to replay.
# A crash, an ASan report or a broken invariant stops the run and leaves the
# input in $FERRY_FUZZ_CRASH_DIR/<target>/ (default .build-fuzz/crashes); replay one with
#   FERRY_FUZZ_TARGET=cron .build-fuzz/ferry-fuzz .build-fuzz/crashes/cron/crash-…
# The summary at the end names each target's result, executions per second and
# new corpus entries; the exit code is 1 if any target found something.
#
# The build: FerryCore and what it needs (FerryPluginKit, Yams, swift-log) with
# `swift build --scratch-path .build-fuzz` and -sanitize=fuzzer,address; the
# DSN and daemon file parsers are compiled on their own with swiftc (the files
# of FerryPostgresStore and FerryServer that need neither PostgresNIO nor
# Hummingbird), so no server library is built. Then one binary,
# .build-fuzz/ferry-fuzz, with every body; FERRY_FUZZ_TARGET picks one.
#
# Environment:
#   FERRY_FUZZ_CORPUS_DIR  where found inputs go (default .build-fuzz/corpus)
#   FERRY_FUZZ_CRASH_DIR   where crash reproducers go (default .build-fuzz/crashes)
#   FERRY_FUZZ_ARGS        extra libFuzzer flags (e.g. "-max_len=8192 -jobs=2")
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

log() { printf 'fuzz: %s\n' "$*" >&2; }
die() { printf 'fuzz: error: %s\n' "$*" >&2; exit 2; }

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi

TARGETS=(bson-batch jsonl json-value pipeline-yaml cron postgres-dsn daemon-config)
SCRATCH="$REPO_ROOT/.build-fuzz"
BINARY="$SCRATCH/ferry-fuzz"
SEED_ROOT="$REPO_ROOT/Tests/Fuzz/corpus"
CORPUS_ROOT="${FERRY_FUZZ_CORPUS_DIR:-$SCRATCH/corpus}"
CRASH_ROOT="${FERRY_FUZZ_CRASH_DIR:-$SCRATCH/crashes}"

build_only=0
case "${1:-}" in
    --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
    --build) build_only=1; shift ;;
    -h | --help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
selected=("${TARGETS[@]}")
if [ "$#" -gt 0 ] && [ "$1" != all ]; then
    printf '%s\n' "${TARGETS[@]}" | grep -qx -- "$1" || die "unknown target '$1' (known: ${TARGETS[*]})"
    selected=("$1")
fi
SECONDS_PER_TARGET="${2:-60}"
[[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer (got '$SECONDS_PER_TARGET')"

build() {
    local sanitize=(-sanitize=fuzzer,address)
    log "swift build --target FerryCore (fuzzer + address instrumentation) in .build-fuzz"
    swift build --scratch-path "$SCRATCH" --target FerryCore \
        -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address >"$SCRATCH/build.log" 2>&1 || {
        tail -n 40 "$SCRATCH/build.log" >&2
        die "swift build failed (full log: $SCRATCH/build.log)"
    }
    local products
    products="$(swift build --scratch-path "$SCRATCH" --show-bin-path)"

    # Module and header search paths for what FerryCore's modules import.
    local search=(-I "$products/Modules" -I "$REPO_ROOT/Sources/CLibBSON" -I /usr/include/libbson-1.0
        -Xcc "-fmodule-map-file=$products/CFerryPlugin.build/module.modulemap"
        -Xcc "-fmodule-map-file=$products/CFerryHost.build/module.modulemap"
        -Xcc "-fmodule-map-file=$REPO_ROOT/Sources/CLibBSON/module.modulemap"
        -Xcc "-fmodule-map-file=$SCRATCH/checkouts/Yams/Sources/CYaml/include/module.modulemap")
    local work="$SCRATCH/fuzz-modules"
    rm -rf "$work" && mkdir -p "$work"

    # FerryPostgresStore and FerryServer without their server libraries: their
    # files that import nothing beyond Foundation, Glibc and Ferry's own modules
    # (DaemonConfig.swift and PostgresDSN.swift among them).
    local store_files server_files
    mapfile -t store_files < <(plain_files Sources/FerryPostgresStore "Foundation|Glibc")
    mapfile -t server_files < <(plain_files Sources/FerryServer "Foundation|Glibc|Dispatch|FerryCore|FerryPluginKit|FerryPostgresStore")
    printf '%s\n' "${store_files[@]}" | grep -q PostgresDSN.swift || die "PostgresDSN.swift now imports more than Foundation: update fuzz.sh"
    printf '%s\n' "${server_files[@]}" | grep -q DaemonConfig.swift || die "DaemonConfig.swift now imports a server library: update fuzz.sh"
    log "swiftc FerryPostgresStore (${store_files[*]##*/}) and FerryServer (${server_files[*]##*/}) for the fuzz build"
    swiftc -swift-version 6 -enable-upcoming-feature ExistentialAny -parse-as-library -g -Onone "${sanitize[@]}" -module-name FerryPostgresStore \
        -emit-module -emit-module-path "$work/FerryPostgresStore.swiftmodule" -emit-object -o "$work/FerryPostgresStore-code.o" \
        -wmo "${store_files[@]}" 2>&1 | grep -v 'Cannot export local symbol' >&2 || true
    [ -f "$work/FerryPostgresStore-code.o" ] || die "compiling FerryPostgresStore for the fuzz build failed"
    swiftc -swift-version 6 -enable-upcoming-feature ExistentialAny -parse-as-library -g -Onone "${sanitize[@]}" -module-name FerryServer \
        -emit-module -emit-module-path "$work/FerryServer.swiftmodule" -emit-object -o "$work/FerryServer-code.o" \
        -wmo -I "$work" "${search[@]}" "${server_files[@]}" 2>&1 | grep -v 'Cannot export local symbol' >&2 || true
    [ -f "$work/FerryServer-code.o" ] || die "compiling FerryServer for the fuzz build failed"

    # The objects of FerryCore and everything it links.
    local objects=()
    local target
    for target in FerryCore FerryPluginKit CFerryHost Yams CYaml Logging; do
        mapfile -t -O "${#objects[@]}" objects < <(find "$products/$target.build" -name '*.o' | sort)
    done
    log "swiftc ferry-fuzz (${#objects[@]} objects + the fuzz bodies)"
    swiftc -swift-version 6 -enable-upcoming-feature ExistentialAny -parse-as-library -g -Onone "${sanitize[@]}" -module-name FerryFuzz \
        -I "$work" "${search[@]}" \
        Tests/FerryCoreTests/Fuzz/*.swift Tests/Fuzz/LibFuzzerEntry.swift \
        "$work/FerryPostgresStore-code.o" "$work/FerryServer-code.o" "${objects[@]}" \
        -lbson-1.0 -o "$BINARY" 2>&1 | grep -v 'Cannot export local symbol' >&2 || true
    [ -x "$BINARY" ] && [ "$BINARY" -nt Tests/Fuzz/LibFuzzerEntry.swift ] || die "linking $BINARY failed"
}

# The Swift files of a folder whose every import is one of the given modules.
plain_files() {
    local folder="$1" allowed="$2" file
    for file in "$folder"/*.swift; do
        if ! grep -E '^(@[a-zA-Z_]+ )?import ' "$file" | grep -Evq "^(@[a-zA-Z_]+ )?import ($allowed)\$"; then
            printf '%s\n' "$file"
        fi
    done
}

mkdir -p "$SCRATCH"
build
[ "$build_only" -eq 1 ] && { log "built $BINARY"; exit 0; }

summary=()
found=0
for target in "${selected[@]}"; do
    corpus="$CORPUS_ROOT/$target"
    seeds="$SEED_ROOT/$target"
    crashes="$CRASH_ROOT/$target"
    mkdir -p "$corpus" "$crashes"
    before="$(find "$corpus" -type f | wc -l)"
    out="$SCRATCH/fuzz-$target.log"
    log "$target: ${SECONDS_PER_TARGET}s from $(find "$seeds" -type f | wc -l) seeds and $before found before (log: $out)"
    rc=0
    # SIGTERM may not stop a libFuzzer binary: -max_total_time stops it, KILL is the backstop.
    # shellcheck disable=SC2086
    SWIFT_BACKTRACE=enable=no FERRY_FUZZ_TARGET="$target" timeout -s KILL "$((SECONDS_PER_TARGET + 60))" "$BINARY" \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -artifact_prefix="$crashes/" -print_final_stats=1 ${FERRY_FUZZ_ARGS:-} "$corpus" "$seeds" >"$out" 2>&1 || rc=$?
    after="$(find "$corpus" -type f | wc -l)"
    execs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$out" | grep -Eo '[0-9]+$' | tail -n1)"
    rate="$(grep -Eo 'exec/s: [0-9]+' "$out" | tail -n1 | grep -Eo '[0-9]+$')"
    if [ "$rc" -eq 0 ]; then
        result="ok"
    else
        found=1
        artifact="$(grep -Eo "Test unit written to [^ ]+" "$out" | tail -n1 | sed 's/Test unit written to //')"
        reason="$(grep -E 'fuzz invariant failed|ERROR: AddressSanitizer|ERROR: libFuzzer|Fatal error|SUMMARY' "$out" | head -n1)"
        result="FOUND (exit $rc): ${reason:-see $out}${artifact:+ -> $artifact}"
    fi
    summary+=("$(printf '%-14s %-8s %10s execs %7s exec/s  found inputs %s -> %s  %s' \
        "$target" "${SECONDS_PER_TARGET}s" "${execs:-?}" "${rate:-?}" "$before" "$after" "$result")")
done
printf 'fuzz summary\n'
printf '  %s\n' "${summary[@]}"
exit "$found"
