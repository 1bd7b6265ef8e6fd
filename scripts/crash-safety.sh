#!/usr/bin/env bash
# crash-safety.sh — prove that kill -9 loses nothing and duplicates nothing.
#
# Two syncs, each killed with SIGKILL at KILLS random moments and rerun until
# it completes, while the source changes between kills (updates and inserts):
#   A  PostgreSQL → PostgreSQL, incremental (cursor updated_at, key id), ROWS rows
#   B  MongoDB → PostgreSQL,    incremental (cursor updatedAt, key _id), ROWS documents
# Then the target must equal the final source exactly: the same row count, the
# same md5 over all rows in key order, no duplicate keys, no missing keys.
#
# Uses the test servers (FERRY_TEST_PG_DSN, FERRY_TEST_MONGO_URI, as
# scripts/test.sh exports them); without them it starts its own with
# scripts/test-servers.sh and stops them at the end. Exits non-zero on any
# difference. Environment: ROWS (default 200000), KILLS (default 10),
# CHANGES (rows changed between runs, default ROWS/20), MONGO_CHANGES (the
# same for MongoDB, default ROWS/200: SecantusDB applies updates slowly),
# ONLY (pg or mongo: run one half), SEED.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
ROWS="${ROWS:-200000}"
KILLS="${KILLS:-10}"
# Rows updated (and a third as many inserted) between two runs: enough that a
# rerun takes long enough to be killed mid-flight.
CHANGES="${CHANGES:-$((ROWS / 20))}"
MONGO_CHANGES="${MONGO_CHANGES:-$((ROWS / 200))}"
ONLY="${ONLY:-}"
SEED="${SEED:-$RANDOM}"
FERRY="${FERRY:-$REPO_ROOT/.build/debug/ferry}"
PY="${FERRY_VENV:-$REPO_ROOT/.venv}/bin/python"

log() { printf 'crash-safety: %s\n' "$*" >&2; }
die() { printf 'crash-safety: FAILED: %s\n' "$*" >&2; exit 1; }
[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || die "ROWS must be a positive integer"
[[ "$KILLS" =~ ^[1-9][0-9]*$ ]] || die "KILLS must be a positive integer"
[ -x "$FERRY" ] || die "no $FERRY: run swift build first"
RANDOM=$SEED
log "seed $SEED (rerun with SEED=$SEED to repeat the kill moments), $ROWS rows, $KILLS kills per sync"

WORK="$(mktemp -d /tmp/ferry-crash.XXXXXX)"
own_servers=0
cleanup() {
    rm -rf "$WORK"
    if [ "$own_servers" -eq 1 ]; then scripts/test-servers.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${FERRY_TEST_PG_DSN:-}" ] || [ -z "${FERRY_TEST_MONGO_URI:-}" ]; then
    export FERRY_TEST_ENV_FILE="$REPO_ROOT/.ferry-crash/servers.env"
    mkdir -p "$REPO_ROOT/.ferry-crash"
    own_servers=1
    scripts/test-servers.sh start
    # shellcheck disable=SC1090
    . "$FERRY_TEST_ENV_FILE"
fi
PG="$FERRY_TEST_PG_DSN"
export CRASH_PG_DSN="$PG" CRASH_MONGO_URI="$FERRY_TEST_MONGO_URI"
psql_q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$PG" -c "$1"; }

# Runs the pipeline again and again, killing it with SIGKILL at a random moment,
# changing the source (`$2`) after every attempt, until KILLS runs were killed
# while still going; then runs it to completion. Every other attempt the kill
# comes at a random moment after the run's first new checkpoint (so it lands
# between commits, not only in start-up, whatever the start-up costs: a sorted
# cursor on 200k documents takes seconds); the others at a random moment since
# start. At least half the kills must land after a checkpoint moved. Both
# windows adapt: 90% of what a run that finished first took.
kill_loop() {
    local pipeline="$1" mutate="$2" name kills=0 after_progress=0 completed=0 attempts=0
    local pid delay status started elapsed before waited progress_at
    local window=2000 tail_window=300   # ms: since start / since the first new checkpoint
    name="$(sed -n 's/^name: //p' "$pipeline")"
    while [ "$kills" -lt "$KILLS" ] || [ $((after_progress * 2)) -lt "$KILLS" ]; do
        attempts=$((attempts + 1))
        [ "$attempts" -le $((KILLS * 8)) ] || die "$pipeline: $kills of $attempts runs killed while going, $after_progress after a checkpoint"
        before="$(checkpoint_records "$name")"
        started=$(date +%s%N)
        progress_at=""
        "$FERRY" run "$pipeline" --state-dir "$WORK/state" --no-progress --log-level error >"$WORK/run.log" 2>&1 &
        pid=$!
        if [ $((attempts % 2)) -eq 0 ]; then
            # Wait (at most a minute) for the checkpoint to move, then a random bit more.
            waited=0
            while kill -0 "$pid" 2>/dev/null && [ "$(checkpoint_records "$name")" = "$before" ] && [ "$waited" -lt 12000 ]; do
                sleep 0.005
                waited=$((waited + 1))
            done
            progress_at=$(date +%s%N)
            delay=$(( (RANDOM * 32768 + RANDOM) % tail_window + 1 ))
        else
            delay=$(( (RANDOM * 32768 + RANDOM) % window + 1 ))
        fi
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
        if kill -9 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            kills=$((kills + 1))
            [ "$(checkpoint_records "$name")" = "$before" ] || after_progress=$((after_progress + 1))
        else
            status=0
            wait "$pid" || status=$?
            [ "$status" -eq 0 ] || { cat "$WORK/run.log" >&2; die "$pipeline: a run exited $status"; }
            completed=$((completed + 1))
            elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
            window=$(( elapsed * 9 / 10 > 20 ? elapsed * 9 / 10 : 20 ))
            if [ -n "$progress_at" ]; then
                elapsed=$(( ($(date +%s%N) - progress_at) / 1000000 ))
                tail_window=$(( elapsed * 9 / 10 > 5 ? elapsed * 9 / 10 : 5 ))
            fi
        fi
        $mutate
    done
    status=0
    "$FERRY" run "$pipeline" --state-dir "$WORK/state" --no-progress --log-level error >"$WORK/run.log" 2>&1 || status=$?
    [ "$status" -eq 0 ] || { cat "$WORK/run.log" >&2; die "$pipeline: the final run exited $status"; }
    log "$(basename "$pipeline"): $kills runs killed while going ($after_progress after a new checkpoint), $completed finished first, then: $(tail -n 2 "$WORK/run.log" | head -n 1)"
}

# The records count of a pipeline's checkpoint ("none" before the first).
checkpoint_records() {
    local file="$WORK/state/$1.state.json"
    [ -f "$file" ] || { echo none; return; }
    grep -o '"records" *: *[0-9]*' "$file" | grep -o '[0-9]*$'
}

if [ "$ONLY" != mongo ]; then
# --- A: PostgreSQL → PostgreSQL --------------------------------------------
log "A: seeding crash_src with $ROWS rows"
psql_q "SET client_min_messages = warning;
DROP TABLE IF EXISTS crash_src, crash_dst, crash_mdst;
CREATE TABLE crash_src (id bigint PRIMARY KEY, sku text NOT NULL, name text, price numeric(10,2), stock int, updated_at timestamptz NOT NULL);
INSERT INTO crash_src SELECT g, 'SKU-' || g, 'product ' || g, (g % 10000) / 100.0, g % 500,
    timestamptz '2026-11-01 00:00:00+00' + (g % 5000) * interval '1 second' FROM generate_series(1, $ROWS) g;
CREATE INDEX crash_src_cursor ON crash_src (updated_at, id);
CREATE TABLE crash_dst (LIKE crash_src);
ALTER TABLE crash_dst ADD PRIMARY KEY (id);
ANALYZE crash_src;"
cat >"$WORK/pg-to-pg.yaml" <<'EOF'
name: crash-pg
source: {plugin: postgres, config: {dsn: "${CRASH_PG_DSN}", table: crash_src, key: [id], cursor: updated_at}}
sink: {plugin: postgres, config: {dsn: "${CRASH_PG_DSN}", table: crash_dst, key: [id]}}
mode: incremental
batch_size: 1000
workers: 2
checkpoint_interval_ms: 0   # a checkpoint at every commit: the most chances to tear one
EOF
next_id=$((ROWS + 1))
mutate_pg() {
    # Updates (a tie group: one timestamp for all of them) and inserts.
    psql_q "UPDATE crash_src SET stock = stock + 1, name = name || '*', updated_at = clock_timestamp()
            WHERE id IN (SELECT (random() * $ROWS)::bigint + 1 FROM generate_series(1, $CHANGES));
            INSERT INTO crash_src SELECT g, 'SKU-' || g, 'new ' || g, 9.99, 1, clock_timestamp()
            FROM generate_series($next_id, $((next_id + CHANGES / 3))) g;" >/dev/null
    next_id=$((next_id + CHANGES / 3 + 1))
}
kill_loop "$WORK/pg-to-pg.yaml" mutate_pg

rows_md5() { psql_q "SELECT count(*) || ' ' || md5(string_agg(id || '|' || sku || '|' || coalesce(name, '') || '|' || price || '|' || stock || '|' || updated_at, E'\n' ORDER BY id)) FROM $1"; }
src="$(rows_md5 crash_src)"
dst="$(rows_md5 crash_dst)"
log "A: source $src"
log "A: target $dst"
[ "$src" = "$dst" ] || die "A: target differs from source"
missing="$(psql_q "SELECT count(*) FROM crash_src s WHERE NOT EXISTS (SELECT 1 FROM crash_dst d WHERE d.id = s.id)")"
[ "$missing" = 0 ] || die "A: $missing source rows missing in the target"

fi

if [ "$ONLY" != pg ]; then
# --- B: MongoDB → PostgreSQL -----------------------------------------------
log "B: seeding MongoDB crash.products with $ROWS documents"
"$PY" - "$CRASH_MONGO_URI" "$ROWS" <<'EOF'
import sys, datetime as dt
from bson import Decimal128
from pymongo import MongoClient, ASCENDING
uri, rows = sys.argv[1], int(sys.argv[2])
c = MongoClient(uri, serverSelectionTimeoutMS=5000).crash.products
c.drop()
base = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
batch = []
for i in range(1, rows + 1):
    batch.append({"_id": i, "sku": f"SKU-{i}", "price": Decimal128(f"{(i % 10000) / 100:.2f}"), "stock": i % 500,
                  "updatedAt": base + dt.timedelta(seconds=i % 5000)})
    if len(batch) == 10000:
        c.insert_many(batch, ordered=False); batch = []
if batch:
    c.insert_many(batch, ordered=False)
c.create_index([("updatedAt", ASCENDING), ("_id", ASCENDING)])
EOF
psql_q "DROP TABLE IF EXISTS crash_mdst; CREATE TABLE crash_mdst (id bigint PRIMARY KEY, sku text NOT NULL, price numeric(10,2), stock int, updated_at timestamptz);"
cat >"$WORK/mongo-to-pg.yaml" <<'EOF'
name: crash-mongo
source: {plugin: mongo, config: {uri: "${CRASH_MONGO_URI}", database: crash, collection: products, cursor: updatedAt}}
transforms:
  - plugin: map
    config: {steps: [{rename: {from: _id, to: id}}, {rename: {from: updatedAt, to: updated_at}}]}
sink: {plugin: postgres, config: {dsn: "${CRASH_PG_DSN}", table: crash_mdst, key: [id]}}
mode: incremental
batch_size: 1000
workers: 2
checkpoint_interval_ms: 0   # a checkpoint at every commit: the most chances to tear one
EOF
next_doc=$((ROWS + 1))
mutate_mongo() {
    "$PY" - "$CRASH_MONGO_URI" "$ROWS" "$next_doc" "$RANDOM" "$MONGO_CHANGES" <<'EOF' >/dev/null
import sys, random, datetime as dt
from bson import Decimal128
from pymongo import MongoClient
uri, rows, next_id, seed, changes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
c = MongoClient(uri, serverSelectionTimeoutMS=5000).crash.products
rng = random.Random(seed)
now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)   # one tick for all: a tie group
c.update_many({"_id": {"$in": rng.sample(range(1, rows + 1), changes)}}, {"$inc": {"stock": 1}, "$set": {"updatedAt": now}})
c.insert_many([{"_id": i, "sku": f"SKU-{i}", "price": Decimal128("9.99"), "stock": 1, "updatedAt": now}
               for i in range(next_id, next_id + changes // 3 + 1)])
EOF
    next_doc=$((next_doc + MONGO_CHANGES / 3 + 1))
}
kill_loop "$WORK/mongo-to-pg.yaml" mutate_mongo

src="$("$PY" - "$CRASH_MONGO_URI" <<'EOF'
import sys, hashlib
from pymongo import MongoClient
c = MongoClient(sys.argv[1]).crash.products
lines = [f"{d['_id']}|{d['sku']}|{d['price']}|{d['stock']}|{d['updatedAt'].strftime('%Y-%m-%d %H:%M:%S')}+00"
         for d in c.find({}, sort=[("_id", 1)])]
print(len(lines), hashlib.md5("\n".join(lines).encode()).hexdigest())
EOF
)"
dst="$(psql_q "SET TimeZone = 'UTC'; SELECT count(*) || ' ' || md5(string_agg(id || '|' || sku || '|' || price || '|' || stock || '|' || updated_at, E'\n' ORDER BY id)) FROM crash_mdst")"
log "B: source $src"
log "B: target $dst"
[ "$src" = "$dst" ] || die "B: target differs from source"
fi
log "passed: ${ONLY:-both} target(s) equal their sources after $KILLS kills each, in $SECONDS s"
