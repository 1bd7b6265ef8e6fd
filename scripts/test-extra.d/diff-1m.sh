#!/usr/bin/env bash
# `ferry diff` and `ferry repair` at scale, as part of `make test` / CI, on the
# test servers scripts/test.sh exported (without them it starts its own with
# scripts/test-servers.sh and stops them at the end).
#
#   A. PostgreSQL → PostgreSQL, ROWS rows (default 1M). `ferry run` copies the
#      source; then SQL makes a known drift on both sides: 100 target rows
#      deleted, 50 rows added to the target, 100 target rows edited, 100
#      source rows edited without moving the cursor, 30 source rows deleted,
#      40 source rows added. `ferry diff` must find exactly missing 140,
#      extra 80, changed 200, with those keys, by digest and by reading.
#      `ferry repair --dry-run` changes nothing (count and md5 of the target
#      before and after); `--max-deletes 10` refuses the 80 deletes (exit 1,
#      the extra rows stay) and writes the rest; `--max-deletes 1000` deletes
#      them. Then the two tables are compared from outside (count and md5 of
#      the ordered rows) and a second `ferry diff` exits 0.
#   B. PostgreSQL → MongoDB through a map rename (id → _id), MONGO_ROWS rows
#      (default 20k: SecantusDB upserts about 1,200 documents a second, so
#      100k would take this half alone past 3 minutes), with a smaller drift
#      on both sides: diff (read; the mongo plugin has no digest) finds it,
#      repair fixes it, diff is equal.
#
# B runs beside A (another server), and A's digest and read diffs run at once
# (one loads the server, the other the client): the script prints each step's
# wall time. The read diff of 1M rows in a debug build is the longest step.
#
# Exits non-zero on any difference from the expected. Environment: ROWS
# (a multiple of 100, at least 10000), MONGO_ROWS (likewise), FERRY (the
# binary, default .build/debug/ferry), ONLY (pg or mongo: one half).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
ROWS="${ROWS:-1000000}"
MONGO_ROWS="${MONGO_ROWS:-20000}"
FERRY="${FERRY:-$REPO_ROOT/.build/debug/ferry}"
ONLY="${ONLY:-}"
PY="${FERRY_VENV:-$REPO_ROOT/.venv}/bin/python"

log() { printf 'diff-1m: %s\n' "$*" >&2; }
die() { printf 'diff-1m: FAILED: %s\n' "$*" >&2; exit 1; }
for n in "$ROWS" "$MONGO_ROWS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] && [ "$n" -ge 10000 ] && [ $((n % 100)) -eq 0 ] \
        || die "ROWS and MONGO_ROWS must be multiples of 100, at least 10000 (got $n)"
done
[ -z "$ONLY" ] || [ "$ONLY" = pg ] || [ "$ONLY" = mongo ] || die "ONLY must be pg or mongo"
[ -x "$FERRY" ] || die "no $FERRY: run swift build first"
[ -x "$PY" ] || die "no $PY: run scripts/setup.sh (pymongo is needed to look into MongoDB)"

WORK="$(mktemp -d /tmp/ferry-diff.XXXXXX)"
own_servers=0
PG=""
# Unique per run: several runs may share the test servers.
TAG="diff_$$_$RANDOM"
SRC="${TAG}_src" DST="${TAG}_dst" MSRC="${TAG}_msrc"
mongo_pid=""
cleanup() {
    if [ -n "$mongo_pid" ]; then
        pkill -TERM -P "$mongo_pid" 2>/dev/null || true
        kill "$mongo_pid" 2>/dev/null && { wait "$mongo_pid"; } 2>/dev/null || true
    fi
    if [ -n "$PG" ] && [ "$own_servers" -eq 0 ]; then
        psql -X -q -v ON_ERROR_STOP=1 "$PG" -c "DROP TABLE IF EXISTS $SRC, $DST, $MSRC" >/dev/null 2>&1 || true
        if [ -n "${FERRY_TEST_MONGO_URI:-}" ]; then
            "$PY" -c 'import sys; from pymongo import MongoClient; MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000).ferry_diff.drop_collection(sys.argv[2])' \
                "$FERRY_TEST_MONGO_URI" "$TAG" >/dev/null 2>&1 || true
        fi
    fi
    if [ "$own_servers" -eq 1 ]; then scripts/test-servers.sh stop >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${FERRY_TEST_PG_DSN:-}" ] || [ -z "${FERRY_TEST_MONGO_URI:-}" ]; then
    export FERRY_TEST_ENV_FILE="$WORK/servers.env"
    own_servers=1
    scripts/test-servers.sh start
    # shellcheck disable=SC1090
    . "$FERRY_TEST_ENV_FILE"
fi
PG="$FERRY_TEST_PG_DSN"
export DIFF_PG_DSN="$PG" DIFF_MONGO_URI="$FERRY_TEST_MONGO_URI"
psql_q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$PG" -c "$1"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%02d' $(($1 / 1000)) $(($1 % 1000 / 10)); }   # ms → "s.cc"
timings=()
# Runs `ferry ARGS…` with the report in $WORK/$1.json (stdout) and $WORK/$1.err;
# sets $status and appends "$1 <seconds>" to the timings.
ferry_step() {
    local name="$1" t0
    shift
    t0=$(now_ms)
    status=0
    "$FERRY" "$@" --state-dir "$WORK/state" >"$WORK/$name.json" 2>"$WORK/$name.err" || status=$?
    timings+=("$name $(secs $(($(now_ms) - t0)))s")
    log "$name: exit $status in $(secs $(($(now_ms) - t0)))s"
}
# The same in the background; ferry_wait NAME waits for it and sets $status.
declare -A bg_pids=()
ferry_step_bg() {
    ( ferry_step "$@"; echo "$status" >"$WORK/$1.status"; echo "${timings[-1]}" >"$WORK/$1.timing" ) &
    bg_pids[$1]=$!
}
ferry_wait() {
    wait "${bg_pids[$1]}" || true
    status="$(cat "$WORK/$1.status" 2>/dev/null || echo 255)"
    timings+=("$(cat "$WORK/$1.timing" 2>/dev/null || echo "$1 ?")")
}
show() { cat "$WORK/$1.json" "$WORK/$1.err" >&2; }
expect_status() { # step expected
    [ "$status" -eq "$2" ] || { show "$1"; die "$1: exit $status, expected $2"; }
}

# Checks a JSON report against the expected counts and key sets.
#   check_report STEP METHOD MISSING EXTRA CHANGED
# The key sets are files $EXPECT.{missing,extra,changed} (one id a line);
# the report's samples (--sample large enough for all) must be those sets exactly.
check_report() {
    python3 - "$WORK/$1.json" "$2" "$3" "$4" "$5" "$EXPECT" <<'EOF' || { show "$1"; die "$1: the report is not what the drift made"; }
import json, sys
path, method, expect = sys.argv[1], sys.argv[2], sys.argv[6]
want = dict(zip(("missing", "extra", "changed"), map(int, sys.argv[3:6])))
report = json.load(open(path))
def key_id(text):
    key = json.loads(text)
    value = key["id"] if "id" in key else key["_id"]
    return int(value["$numberLong"]) if isinstance(value, dict) else int(value)
bad = []
if report["method"] != method:
    bad.append(f"method {report['method']}, expected {method} ({report.get('methodNote', '')})")
for kind, count in want.items():
    if report[kind] != count:
        bad.append(f"{kind} {report[kind]}, expected {count}")
    expected = {int(line) for line in open(f"{expect}.{kind}") if line.strip()}
    sample = report["sample"][kind]
    got = {key_id(item["key"] if kind == "changed" else item) for item in sample}
    if len(sample) != len(got) or got != expected:
        bad.append(f"{kind} keys: {len(got - expected)} unexpected (e.g. {sorted(got - expected)[:5]}), "
                   f"{len(expected - got)} not reported (e.g. {sorted(expected - got)[:5]})")
if report["sourceWithoutKey"] or report["targetWithoutKey"] or report["duplicateTargetKeys"]:
    bad.append("records without a key or with a repeated key")
for line in bad:
    print(f"diff-1m: {sys.argv[1].rsplit('/', 1)[-1]}: {line}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}
field() { jq -r "$2" "$WORK/$1.json"; }   # field STEP JQ-PATH
table_sum() { psql_q "SELECT count(*) || ' ' || coalesce(md5(string_agg(md5(t::text), '' ORDER BY id)), '-') FROM $1 t"; }

mkdir -p "$WORK/state"

# ============================================================================
# A. PostgreSQL → PostgreSQL
# ============================================================================
pg_half() {
EXPECT="$WORK/expect-pg"
STRIDE=$((ROWS / 100))
log "A: seeding $SRC with $ROWS rows"
t0=$(now_ms)
psql_q "SET client_min_messages = warning;
CREATE TABLE $SRC (id bigint PRIMARY KEY, sku text NOT NULL, note text, price numeric(12,2), qty int,
    attrs jsonb, updated_at timestamptz NOT NULL);
INSERT INTO $SRC SELECT g, 'SKU-' || g,
    CASE WHEN g % 7 = 0 THEN NULL ELSE 'row ' || g || ' – naïve café' END,
    (g % 100000) / 100.0, CASE WHEN g % 11 = 0 THEN NULL ELSE g % 1000 END,
    -- jsonb in one row of ten: decoding it is the dearest part of a debug build's read
    CASE WHEN g % 10 = 5 THEN jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g % 3), 'ok', g % 2 = 0) END,
    timestamptz '2026-11-01 00:00:00+00' + (g % 5000) * interval '1.000001 second'
FROM generate_series(1, $ROWS) g;
CREATE INDEX ${SRC}_cursor ON $SRC (updated_at, id);
CREATE TABLE $DST (LIKE $SRC);
ALTER TABLE $DST ADD PRIMARY KEY (id);
ANALYZE $SRC;"
timings+=("A-seed $(secs $(($(now_ms) - t0)))s")

cat >"$WORK/pg.yaml" <<EOF
name: diff-pg
source: {plugin: postgres, config: {dsn: "\${DIFF_PG_DSN}", table: $SRC, key: [id], cursor: updated_at}}
sink: {plugin: postgres, config: {dsn: "\${DIFF_PG_DSN}", table: $DST, key: [id], mode: upsert}}
mode: incremental
batch_size: 5000
workers: 2
EOF
ferry_step A-run run "$WORK/pg.yaml" --no-progress --log-level error
expect_status A-run 0

# The drift. Each set of keys is disjoint from the others, so each difference
# counts once; the expected keys go to $EXPECT.*.
log "A: drifting both sides"
psql_q "SET client_min_messages = warning;
DELETE FROM $DST WHERE id % $STRIDE = 1;                                     -- 100 missing
INSERT INTO $DST SELECT 2 * $ROWS + g, 'EXTRA-' || g, 'only in the target', 1, 1, '{}', now()
    FROM generate_series(1, 50) g;                                              -- 50 extra
UPDATE $DST SET note = coalesce(note, '') || ' (edited in the target)' WHERE id % $STRIDE = 2;   -- 100 changed
UPDATE $SRC SET price = price + 1 WHERE id % $STRIDE = 3;                    -- 100 changed, cursor not moved
DELETE FROM $SRC WHERE id % $STRIDE = 4 AND id < 30 * $STRIDE;               -- 30 extra (a hard delete)
INSERT INTO $SRC SELECT 3 * $ROWS + g, 'NEW-' || g, NULL, 2, 2, '[]', timestamptz '2026-11-01 00:00:00+00'
    FROM generate_series(1, 40) g;                                              -- 40 missing, cursor in the past"
psql_q "SELECT id FROM generate_series(1, $ROWS) id WHERE id % $STRIDE = 1
        UNION ALL SELECT 3 * $ROWS + g FROM generate_series(1, 40) g" >"$EXPECT.missing"
psql_q "SELECT 2 * $ROWS + g FROM generate_series(1, 50) g
        UNION ALL SELECT id FROM generate_series(1, 30 * $STRIDE - 1) id WHERE id % $STRIDE = 4" >"$EXPECT.extra"
psql_q "SELECT id FROM generate_series(1, $ROWS) id WHERE id % $STRIDE IN (2, 3)" >"$EXPECT.changed"
[ "$(wc -l <"$EXPECT.missing") $(wc -l <"$EXPECT.extra") $(wc -l <"$EXPECT.changed")" = "140 80 200" ] \
    || die "A: the expected key sets are not 140, 80 and 200 keys"

# --- diff, both methods (at once: the digest works the server, the read the client) ---
ferry_step_bg A-diff-read diff "$WORK/pg.yaml" --method read --output json --sample 1000
ferry_step A-diff-digest diff "$WORK/pg.yaml" --method digest --output json --sample 1000
expect_status A-diff-digest 1
check_report A-diff-digest digest 140 80 200
log "A: digest: $(field A-diff-digest '"\(.buckets) buckets, \(.differingBuckets) differing, \(.recordsRead) records read"')"
[ "$(field A-diff-digest .recordsRead)" -lt $((ROWS / 4)) ] || die "A: the digest read $(field A-diff-digest .recordsRead) records: it did not skip matching buckets"
ferry_wait A-diff-read
expect_status A-diff-read 1
check_report A-diff-read read 140 80 200

# --- repair: dry run, refused deletes, then all ---------------------------------
before="$(table_sum "$DST")"
ferry_step A-repair-dry repair "$WORK/pg.yaml" --dry-run --max-deletes 1000 --output json --sample 1000
[ "$status" -le 1 ] || { show A-repair-dry; die "A-repair-dry: exit $status"; }
check_report A-repair-dry digest 140 80 200
[ "$(field A-repair-dry '"\(.repair.dryRun) \(.repair.written) \(.repair.deleted)"')" = "true 340 80" ] \
    || { show A-repair-dry; die "A-repair-dry: expected to say it would write 340 and delete 80"; }
[ "$(table_sum "$DST")" = "$before" ] || die "A: the dry run changed the target"

ferry_step A-repair-10 repair "$WORK/pg.yaml" --max-deletes 10 --output json --sample 1000
expect_status A-repair-10 1
check_report A-repair-10 digest 140 80 200
[ "$(field A-repair-10 '"\(.repair.written) \(.repair.rejected) \(.repair.deleted)"')" = "340 0 0" ] \
    || { show A-repair-10; die "A-repair-10: expected 340 written, 0 rejected, 0 deleted"; }
field A-repair-10 .repair.deletesRefused | grep -q 'more than --max-deletes 10' \
    || { show A-repair-10; die "A-repair-10: no refusal naming --max-deletes"; }
# Every source row is now in the target as it is; the target's only others are the 80 extras.
[ "$(psql_q "SELECT count(*) FROM (SELECT * FROM $SRC EXCEPT SELECT * FROM $DST) d")" = 0 ] \
    || die "A: after --max-deletes 10 source rows are still missing or different in the target"
psql_q "SELECT id FROM (SELECT * FROM $DST EXCEPT SELECT * FROM $SRC) d ORDER BY id" >"$WORK/left.extra"
sort -n "$EXPECT.extra" | cmp -s - "$WORK/left.extra" \
    || die "A: after --max-deletes 10 the target's rows beyond the source are not the 80 extras ($(wc -l <"$WORK/left.extra") rows)"

ferry_step A-repair-all repair "$WORK/pg.yaml" --max-deletes 1000 --output json --sample 1000
expect_status A-repair-all 0
: >"$EXPECT.missing"; : >"$EXPECT.changed"
check_report A-repair-all digest 0 80 0
[ "$(field A-repair-all '"\(.repair.written) \(.repair.deleted)"')" = "0 80" ] \
    || { show A-repair-all; die "A-repair-all: expected 0 written, 80 deleted"; }

# From outside: same rows, same bytes.
src_sum="$(table_sum "$SRC")"
dst_sum="$(table_sum "$DST")"
log "A: source $src_sum; target $dst_sum"
[ "$src_sum" = "$dst_sum" ] || die "A: after the repair the target is not the source"
ferry_step A-diff-after diff "$WORK/pg.yaml" --output json
expect_status A-diff-after 0
[ "$(field A-diff-after '"\(.method) \(.equal) \(.differingBuckets)"')" = "digest true 0" ] \
    || { show A-diff-after; die "A-diff-after: expected an equal digest diff with no differing bucket"; }
psql_q "DROP TABLE $SRC, $DST"
log "A passed; timings: ${timings[*]}"
}

# ============================================================================
# B. PostgreSQL → MongoDB
# ============================================================================
mongo_half() {
EXPECT="$WORK/expect-mongo"
MSTRIDE=$((MONGO_ROWS / 100))
log "B: seeding $MSRC with $MONGO_ROWS rows"
t0=$(now_ms)
psql_q "SET client_min_messages = warning;
CREATE TABLE $MSRC (id bigint PRIMARY KEY, sku text NOT NULL, note text, price numeric(12,2), qty int,
    updated_at timestamptz NOT NULL);
INSERT INTO $MSRC SELECT g, 'SKU-' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'row ' || g || ' – naïve café' END,
    (g % 100000) / 100.0, g % 1000, timestamptz '2026-11-01 00:00:00+00' + (g % 5000) * interval '1 second'
FROM generate_series(1, $MONGO_ROWS) g;
CREATE INDEX ${MSRC}_cursor ON $MSRC (updated_at, id);
ANALYZE $MSRC;"
timings+=("B-seed $(secs $(($(now_ms) - t0)))s")

cat >"$WORK/mongo.yaml" <<EOF
name: diff-mongo
source: {plugin: postgres, config: {dsn: "\${DIFF_PG_DSN}", table: $MSRC, key: [id], cursor: updated_at}}
transforms:
  - plugin: map
    config: {steps: [{rename: {from: id, to: _id}}]}
sink: {plugin: mongo, config: {uri: "\${DIFF_MONGO_URI}", database: ferry_diff, collection: $TAG, key: _id}}
mode: incremental
batch_size: 2000
EOF
ferry_step B-run run "$WORK/mongo.yaml" --no-progress --log-level error
expect_status B-run 0

log "B: drifting both sides"
"$PY" - "$FERRY_TEST_MONGO_URI" "$TAG" "$MONGO_ROWS" "$MSTRIDE" <<'EOF'
import sys
from pymongo import MongoClient
uri, name, rows, stride = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = MongoClient(uri, serverSelectionTimeoutMS=5000).ferry_diff[name]
assert c.count_documents({}) == rows, "the run did not copy every row"
gone = [i for i in range(1, rows + 1) if i % stride == 1][:20]
edited = [i for i in range(1, rows + 1) if i % stride == 2][:20]
assert c.delete_many({"_id": {"$in": gone}}).deleted_count == 20                          # 20 missing
c.insert_many([{"_id": 2 * rows + g, "sku": f"EXTRA-{g}"} for g in range(1, 11)])          # 10 extra
assert c.update_many({"_id": {"$in": edited}}, {"$set": {"qty": -1}}).modified_count == 20  # 20 changed
EOF
psql_q "UPDATE $MSRC SET sku = sku || '-renamed' WHERE id % $MSTRIDE = 3 AND id < 10 * $MSTRIDE;   -- 10 changed, cursor not moved
        DELETE FROM $MSRC WHERE id % $MSTRIDE = 4 AND id < 5 * $MSTRIDE                       -- 5 extra"
psql_q "SELECT id FROM generate_series(1, $MONGO_ROWS) id WHERE id % $MSTRIDE = 1 LIMIT 20" >"$EXPECT.missing"
psql_q "SELECT 2 * $MONGO_ROWS + g FROM generate_series(1, 10) g
        UNION ALL SELECT id FROM generate_series(1, 5 * $MSTRIDE - 1) id WHERE id % $MSTRIDE = 4" >"$EXPECT.extra"
psql_q "(SELECT id FROM generate_series(1, $MONGO_ROWS) id WHERE id % $MSTRIDE = 2 LIMIT 20)
        UNION ALL SELECT id FROM generate_series(1, 10 * $MSTRIDE - 1) id WHERE id % $MSTRIDE = 3" >"$EXPECT.changed"

ferry_step B-diff diff "$WORK/mongo.yaml" --output json --sample 1000
expect_status B-diff 1
check_report B-diff read 20 15 30
ferry_step B-repair repair "$WORK/mongo.yaml" --max-deletes 100 --output json --sample 1000
expect_status B-repair 0
check_report B-repair read 20 15 30
[ "$(field B-repair '"\(.repair.written) \(.repair.rejected) \(.repair.deleted)"')" = "50 0 15" ] \
    || { show B-repair; die "B-repair: expected 50 written, 0 rejected, 15 deleted"; }
ferry_step B-diff-after diff "$WORK/mongo.yaml" --output json
expect_status B-diff-after 0
[ "$(field B-diff-after '"\(.sourceRecords) \(.targetRecords) \(.matching)"')" = "$((MONGO_ROWS - 5)) $((MONGO_ROWS - 5)) $((MONGO_ROWS - 5))" ] \
    || { show B-diff-after; die "B-diff-after: expected $((MONGO_ROWS - 5)) records on both sides, all matching"; }
log "B passed; timings: ${timings[*]}"
}

# The halves use different servers (SecantusDB is one Python process), so B
# runs beside A; its log follows A's.
if [ "$ONLY" != pg ]; then
    mongo_half >"$WORK/mongo.log" 2>&1 &
    mongo_pid=$!
fi
[ "$ONLY" = mongo ] || pg_half
if [ -n "$mongo_pid" ]; then
    status=0
    wait "$mongo_pid" || status=$?
    mongo_pid=""
    cat "$WORK/mongo.log" >&2
    [ "$status" -eq 0 ] || die "B (PostgreSQL → MongoDB) failed"
fi
log "passed in ${SECONDS}s: the diffs found exactly the drift made, the repairs removed it"
