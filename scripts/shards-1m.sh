#!/usr/bin/env bash
# shards-1m.sh — prove that `ferry run --shard i/N` splits a source exactly,
# with N shard processes at once into one PostgreSQL target.
#
#   1. Seed a source table with ROWS rows (bigint key; text with NULLs and
#      non-ASCII, numeric, int, jsonb, timestamptz with microseconds and ties)
#      and an empty target of the same shape.
#   2. Start SHARDS processes `ferry run PIPELINE --shard i/N` at once
#      (postgres → postgres, incremental on (updated_at, id), upsert sink).
#   3. SIGKILL shard KILL_SHARD once its checkpoint holds KILL_AT % of its
#      slice; the others must finish (exit 0).
#   4. One checkpoint file per shard; the killed one part-way (not complete).
#   5. Rerun the killed shard alone: it must resume from its checkpoint (read
#      exactly the rest of its slice) and exit 0.
#   6. Every shard read exactly its slice (as counted in SQL with the plugin's
#      hash), the reads add up to ROWS, and the target equals the source: same
#      count, no duplicate key, EXCEPT empty both ways, same md5 over all rows
#      in key order. Reads adding up to ROWS with target = source means the
#      slices are disjoint and cover the source: no row twice, none missing.
#
# Uses the test servers (FERRY_TEST_PG_DSN, as scripts/test.sh exports it);
# without it it starts its own with scripts/test-servers.sh and stops them at
# the end. Exits non-zero on any difference. Environment: ROWS (default
# 1000000), SHARDS (default 4), KILL_SHARD (default 1), KILL_AT (percent of
# its slice committed before the kill, default 30), BATCH (default 1000),
# CHECKPOINT_MS (checkpoint_interval_ms, default 250: short enough that a small
# ROWS still has a checkpoint part-way), FERRY (the binary, default
# .build/debug/ferry).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
ROWS="${ROWS:-1000000}"
SHARDS="${SHARDS:-4}"
KILL_SHARD="${KILL_SHARD:-1}"
KILL_AT="${KILL_AT:-30}"
BATCH="${BATCH:-1000}"
CHECKPOINT_MS="${CHECKPOINT_MS:-250}"
FERRY="${FERRY:-$REPO_ROOT/.build/debug/ferry}"

log() { printf 'shards: %s\n' "$*" >&2; }
die() { printf 'shards: FAILED: %s\n' "$*" >&2; exit 1; }
[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || die "ROWS must be a positive integer"
[[ "$SHARDS" =~ ^[1-9][0-9]*$ ]] && [ "$SHARDS" -ge 2 ] || die "SHARDS must be an integer ≥ 2"
[[ "$KILL_SHARD" =~ ^[0-9]+$ ]] && [ "$KILL_SHARD" -lt "$SHARDS" ] || die "KILL_SHARD must be in 0..$((SHARDS - 1))"
[[ "$KILL_AT" =~ ^[0-9]+$ ]] && [ "$KILL_AT" -ge 1 ] && [ "$KILL_AT" -le 90 ] || die "KILL_AT must be a percentage in 1..90"
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "BATCH must be a positive integer"
[[ "$CHECKPOINT_MS" =~ ^[0-9]+$ ]] || die "CHECKPOINT_MS must be a number of milliseconds"
[ -x "$FERRY" ] || die "no $FERRY: run swift build first"

WORK="$(mktemp -d /tmp/ferry-shards.XXXXXX)"
own_servers=0
PG=""
# Unique per run: several runs may share the test servers.
SRC="shards_src_$$_$RANDOM"
DST="${SRC/src/dst}"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null && { wait "$pid"; } 2>/dev/null || true; done
    if [ -n "$PG" ] && [ "$own_servers" -eq 0 ]; then
        psql -X -q -v ON_ERROR_STOP=1 "$PG" -c "DROP TABLE IF EXISTS $SRC, $DST" >/dev/null 2>&1 || true
    fi
    if [ "$own_servers" -eq 1 ]; then scripts/test-servers.sh stop >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${FERRY_TEST_PG_DSN:-}" ]; then
    export FERRY_TEST_ENV_FILE="$WORK/servers.env"
    own_servers=1
    scripts/test-servers.sh start
    # shellcheck disable=SC1090
    . "$FERRY_TEST_ENV_FILE"
fi
PG="$FERRY_TEST_PG_DSN"
export SHARDS_PG_DSN="$PG"
psql_q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$PG" -c "$1"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%02d' $(($1 / 1000)) $(($1 % 1000 / 10)); }   # ms → "s.cc"

# --- 1. source and target ----------------------------------------------------
log "seeding $SRC with $ROWS rows"
t0=$(now_ms)
psql_q "SET client_min_messages = warning;
CREATE TABLE $SRC (id bigint PRIMARY KEY, sku text NOT NULL, note text, price numeric(12,2), qty int,
    attrs jsonb, updated_at timestamptz NOT NULL);
INSERT INTO $SRC SELECT g, 'SKU-' || g,
    CASE WHEN g % 7 = 0 THEN NULL ELSE 'row ' || g || ' – naïve café' END,
    (g % 1000000) / 100.0, CASE WHEN g % 11 = 0 THEN NULL ELSE g % 1000 END,
    jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g % 3), 'ratio', ((g % 97) / 8.0)::numeric(8,3),
                       'ok', g % 2 = 0),
    -- 5000 distinct cursor values (ties across batch boundaries), microseconds set
    timestamptz '2026-11-01 00:00:00+00' + (g % 5000) * interval '1.000001 second'
FROM generate_series(1, $ROWS) g;
CREATE INDEX ${SRC}_cursor ON $SRC (updated_at, id);
CREATE TABLE $DST (LIKE $SRC);
ALTER TABLE $DST ADD PRIMARY KEY (id);
ANALYZE $SRC;"
log "seeded in $(secs $(($(now_ms) - t0)))s"

# Each shard's slice, counted by the server with the plugin's own hash
# (Plugins/Postgres/README.md, Shards): what each shard must read in total.
declare -A slice=()
while IFS='|' read -r shard count; do slice[$shard]=$count; done < <(psql_q "
    SELECT (hashtext(id::text) & 2147483647) % $SHARDS, count(*) FROM $SRC GROUP BY 1 ORDER BY 1")
for ((i = 0; i < SHARDS; i++)); do [ -n "${slice[$i]:-}" ] || slice[$i]=0; done
[ "${slice[$KILL_SHARD]}" -ge 10 ] || die "shard $KILL_SHARD's slice has ${slice[$KILL_SHARD]} rows: too few to kill it part-way (raise ROWS)"

# --- 2. the pipeline -----------------------------------------------------------
cat >"$WORK/pipeline.yaml" <<EOF
name: shards
source: {plugin: postgres, config: {dsn: "\${SHARDS_PG_DSN}", table: $SRC, key: [id], cursor: updated_at}}
sink: {plugin: postgres, config: {dsn: "\${SHARDS_PG_DSN}", table: $DST, key: [id], mode: upsert}}
mode: incremental
batch_size: $BATCH
workers: 2
checkpoint_interval_ms: $CHECKPOINT_MS
EOF

# The text report's summary line: "<name>: completed in 1.23s: read R, filtered F, written W (...)".
report_field() { sed -n "s/^shards: [a-zA-Z]* in [0-9.]*s: .*\\b$2 \\([0-9]*\\).*/\\1/p" "$1" | tail -n 1; }
report_line() { grep -E '^shards: [a-zA-Z]+ in ' "$1" | tail -n 1; }
checkpoint() { printf '%s/shards.shard-%d-of-%d.state.json' "$WORK/state" "$1" "$SHARDS"; }
ckpt_records() { sed -n 's/^ *"records" *: *\([0-9]*\).*/\1/p' "$1"; }
ckpt_complete() { sed -n 's/^ *"complete" *: *\([a-z]*\).*/\1/p' "$1"; }

# --- 3. SHARDS processes at once, one killed part-way ----------------------------
kill_file="$(checkpoint "$KILL_SHARD")"
kill_target=$(( slice[$KILL_SHARD] * KILL_AT / 100 ))
[ "$kill_target" -ge 1 ] || kill_target=1
log "starting $SHARDS shards at once (slices: $(for ((i = 0; i < SHARDS; i++)); do printf '%s ' "${slice[$i]}"; done| sed 's/ $//')); shard $KILL_SHARD is killed once its checkpoint holds ≥ $kill_target records"
phase_start=$(now_ms)
for ((i = 0; i < SHARDS; i++)); do
    "$FERRY" run "$WORK/pipeline.yaml" --shard "$i/$SHARDS" --state-dir "$WORK/state" --no-progress \
        --log-level error >"$WORK/shard-$i.log" 2>&1 &
    pids[$i]=$!
done

# Poll the killed shard's checkpoint (replaced atomically by rename, so every
# read sees a whole file) until it holds enough committed records.
killed_at_records=""
while :; do
    if [ -f "$kill_file" ]; then
        records="$(ckpt_records "$kill_file")"
        if [ "$(ckpt_complete "$kill_file")" = true ]; then
            die "shard $KILL_SHARD finished its ${slice[$KILL_SHARD]} rows before it could be killed (raise ROWS, lower KILL_AT or CHECKPOINT_MS)"
        fi
        if [ -n "$records" ] && [ "$records" -ge "$kill_target" ]; then
            kill -9 "${pids[$KILL_SHARD]}" 2>/dev/null || die "shard $KILL_SHARD exited before it could be killed"
            kill_ms=$(($(now_ms) - phase_start))
            break
        fi
    fi
    if ! kill -0 "${pids[$KILL_SHARD]}" 2>/dev/null; then
        cat "$WORK/shard-$KILL_SHARD.log" >&2
        die "shard $KILL_SHARD exited before it could be killed"
    fi
    sleep 0.05
done
status=0
{ wait "${pids[$KILL_SHARD]}"; } 2>/dev/null || status=$?   # (the braces also silence bash's "Killed")
[ "$status" -eq 137 ] || die "shard $KILL_SHARD: expected death by SIGKILL (137), got exit $status"
killed_at_records="$(ckpt_records "$kill_file")"
log "shard $KILL_SHARD killed with SIGKILL after $(secs "$kill_ms")s, its checkpoint at $killed_at_records of ${slice[$KILL_SHARD]} records"

for ((i = 0; i < SHARDS; i++)); do
    [ "$i" -ne "$KILL_SHARD" ] || continue
    status=0
    wait "${pids[$i]}" || status=$?
    [ "$status" -eq 0 ] || { cat "$WORK/shard-$i.log" >&2; die "shard $i/$SHARDS exited $status"; }
done
phase_ms=$(($(now_ms) - phase_start))
pids=()
log "the other $((SHARDS - 1)) shards completed; phase wall time $(secs "$phase_ms")s"

# --- 4. one checkpoint per shard, the killed one part-way -------------------------
shopt -s nullglob
files=("$WORK"/state/*.state.json)
shopt -u nullglob
[ "${#files[@]}" -eq "$SHARDS" ] || die "expected $SHARDS checkpoint files, found ${#files[@]}: ${files[*]##*/}"
for ((i = 0; i < SHARDS; i++)); do
    f="$(checkpoint "$i")"
    [ -f "$f" ] || die "no checkpoint for shard $i ($f)"
    if [ "$i" -eq "$KILL_SHARD" ]; then
        [ "$(ckpt_complete "$f")" = false ] || die "the killed shard's checkpoint says complete"
        [ "$killed_at_records" -gt 0 ] && [ "$killed_at_records" -lt "${slice[$i]}" ] \
            || die "the killed shard's checkpoint holds $killed_at_records of ${slice[$i]}: not part-way"
    else
        [ "$(ckpt_complete "$f")" = true ] || die "shard $i's checkpoint is not complete"
        [ "$(ckpt_records "$f")" = "${slice[$i]}" ] || die "shard $i's checkpoint holds $(ckpt_records "$f") records, its slice ${slice[$i]}"
    fi
done

# --- 5. the killed shard alone, resuming -------------------------------------------
log "rerunning shard $KILL_SHARD/$SHARDS alone"
resume_start=$(now_ms)
status=0
"$FERRY" run "$WORK/pipeline.yaml" --shard "$KILL_SHARD/$SHARDS" --state-dir "$WORK/state" --no-progress \
    --log-level error >"$WORK/resume.log" 2>&1 || status=$?
resume_ms=$(($(now_ms) - resume_start))
[ "$status" -eq 0 ] || { cat "$WORK/resume.log" >&2; die "the resumed shard $KILL_SHARD exited $status"; }
resume_read="$(report_field "$WORK/resume.log" read)"
[ -n "$resume_read" ] || { cat "$WORK/resume.log" >&2; die "no report line in the resumed run's output"; }
log "resumed: $(report_line "$WORK/resume.log")"
[ "$resume_read" -lt "${slice[$KILL_SHARD]}" ] || die "the resumed shard read $resume_read, its whole slice ${slice[$KILL_SHARD]}: it did not resume"
[ $((killed_at_records + resume_read)) -eq "${slice[$KILL_SHARD]}" ] \
    || die "shard $KILL_SHARD: $killed_at_records checkpointed + $resume_read resumed ≠ its slice ${slice[$KILL_SHARD]}"
f="$(checkpoint "$KILL_SHARD")"
[ "$(ckpt_complete "$f")" = true ] && [ "$(ckpt_records "$f")" = "${slice[$KILL_SHARD]}" ] \
    || die "after the resume shard $KILL_SHARD's checkpoint holds $(ckpt_records "$f") records (complete: $(ckpt_complete "$f")), its slice ${slice[$KILL_SHARD]}"

# --- 6. every shard read its slice; the target equals the source -----------------
total=0
for ((i = 0; i < SHARDS; i++)); do
    if [ "$i" -eq "$KILL_SHARD" ]; then
        read_i=$((killed_at_records + resume_read))
    else
        read_i="$(report_field "$WORK/shard-$i.log" read)"
        [ -n "$read_i" ] || { cat "$WORK/shard-$i.log" >&2; die "no report line in shard $i's output"; }
        [ "$read_i" -eq "${slice[$i]}" ] || die "shard $i read $read_i rows, its slice has ${slice[$i]}"
    fi
    total=$((total + read_i))
done
[ "$total" -eq "$ROWS" ] || die "the shards read $total rows in all, the source has $ROWS"

log "comparing $DST with $SRC"
verify_start=$(now_ms)
counts="$(psql_q "SELECT (SELECT count(*) FROM $SRC) || ' ' || (SELECT count(*) FROM $DST) || ' ' || (SELECT count(*) - count(DISTINCT id) FROM $DST)")"
read -r src_count dst_count dups <<<"$counts"
[ "$src_count" -eq "$ROWS" ] || die "the source has $src_count rows, expected $ROWS"
[ "$dst_count" -eq "$src_count" ] || die "the target has $dst_count rows, the source $src_count"
[ "$dups" -eq 0 ] || die "the target has $dups duplicate ids"
missing="$(psql_q "SELECT count(*) FROM (SELECT * FROM $SRC EXCEPT SELECT * FROM $DST) d")"
extra="$(psql_q "SELECT count(*) FROM (SELECT * FROM $DST EXCEPT SELECT * FROM $SRC) d")"
[ "$missing" -eq 0 ] || die "$missing source rows are missing or differ in the target"
[ "$extra" -eq 0 ] || die "$extra target rows are not in the source"
# md5 of the per-row md5s in key order: 32 bytes a row in memory, not the rows.
rows_md5() { psql_q "SELECT md5(string_agg(md5(t::text), '' ORDER BY id)) FROM $1 t"; }
src_md5="$(rows_md5 "$SRC")"
dst_md5="$(rows_md5 "$DST")"
[ "$src_md5" = "$dst_md5" ] || die "md5 over the rows: source $src_md5, target $dst_md5"
verify_ms=$(($(now_ms) - verify_start))

# --- summary -------------------------------------------------------------------------
for ((i = 0; i < SHARDS; i++)); do
    if [ "$i" -eq "$KILL_SHARD" ]; then
        log "  shard $i/$SHARDS: slice ${slice[$i]}: killed at $killed_at_records checkpointed, resumed read $resume_read ($(report_line "$WORK/resume.log" | sed 's/^shards: //'))"
    else
        log "  shard $i/$SHARDS: slice ${slice[$i]}: $(report_line "$WORK/shard-$i.log" | sed 's/^shards: //')"
    fi
done
both_ms=$((phase_ms + resume_ms))
log "timings: $SHARDS shards at once $(secs "$phase_ms")s ($(( (ROWS - resume_read) * 1000 / (phase_ms > 0 ? phase_ms : 1) )) rows/s committed), resume $(secs "$resume_ms")s, together $(secs "$both_ms")s = $(( ROWS * 1000 / (both_ms > 0 ? both_ms : 1) )) rows/s; verification $(secs "$verify_ms")s"
log "passed: $ROWS rows in $SHARDS shards, one killed and resumed alone; target = source (count $dst_count, md5 $dst_md5), no row twice, none missing"
