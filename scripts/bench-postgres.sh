#!/usr/bin/env bash
# bench-postgres.sh — the PostgreSQL connector against the COPY limit.
#
# Starts its own throwaway PostgreSQL 15 (initdb in a temp folder, 127.0.0.1,
# a free port; stopped and removed at exit), loads ROWS product rows (id, sku,
# name, description ~100 chars, price numeric(10,2), stock, category,
# updated_at timestamptz; index on (updated_at, id)) and measures, on that
# one server:
#   (a) the physical limit: psql \copy (…) to stdout (format binary) | psql \copy dst from stdin
#   (a') the same pipe in text format (the format the plugin speaks)
#   (b) ferry run, first run of the incremental pipeline = full copy (upsert sink)
#   (b2) ferry run, mode full with the sink in insert mode (COPY straight into the table)
#   (c) ferry incremental after 1% of the rows changed
#   (d) ferry incremental rerun with nothing changed
#   (e) ferry run --dry-run of the incremental pipeline from no checkpoint: the
#       whole table read and previewed against the full target (would-insert /
#       update / unchanged), nothing written
# and prints rows/s, each as a ratio to (a), wall time ratios to (b), and peak
# RSS (/usr/bin/time -v). Targets: (b) >= 0.8x (a); (c) <= 20% and (d) <= 10%
# of (b)'s wall time; (e) <= 1.5x (b); peak RSS < 150 MiB.
#
# A report: a missed target still exits 0; non-zero means the benchmark failed.
#
# Environment:
#   ROWS        rows in the source table (default 1000000)
#   WORKERS     ferry workers (default 2)
#   BATCH       ferry batch size (default 10000)
#   REPEAT      rounds of the four full copies, interleaved; medians are reported (default 3)
#   PG_BIN      PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   SKIP_BUILD  1: use the release build as it is
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

ROWS="${ROWS:-1000000}"
WORKERS="${WORKERS:-2}"
BATCH="${BATCH:-10000}"
REPEAT="${REPEAT:-3}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

log() { printf 'bench-postgres: %s\n' "$*" >&2; }
die() { printf 'bench-postgres: error: %s\n' "$*" >&2; exit 1; }

[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || die "ROWS must be a positive integer (got '$ROWS')"
[ -x "$PG_BIN/initdb" ] || die "no $PG_BIN/initdb: run scripts/setup.sh"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for peak RSS (apt-get install time)"
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then export PATH="$PATH:/opt/swift/usr/bin"; fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in ferry FerryPostgres; do
        log "swift build -c release --product $product"
        swift build -c release --product "$product" >&2
    done
fi
BIN="$REPO_ROOT/.build/release"
[ -x "$BIN/ferry" ] && [ -f "$BIN/libFerryPostgres.so" ] || die "no release build in $BIN"

# --- a throwaway server ------------------------------------------------------
WORK="$(mktemp -d /tmp/ferry-bench-pg.XXXXXX)"
chmod 755 "$WORK"
RUN_AS=()
if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); fi
PGDATA="$WORK/data"
cleanup() {
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" stop -m immediate -w >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/sock" "$WORK/ferry"
[ "${#RUN_AS[@]}" -gt 0 ] && chown postgres: "$WORK" "$WORK/sock"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log "initdb + start on 127.0.0.1:$PORT"
(cd / && "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U bench -A trust >/dev/null)
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$WORK/sock'
shared_buffers = 256MB
max_wal_size = 4GB
# Autovacuum would run on the table just loaded while the next variant runs, so
# the order of the variants would bias them; it is off on this throwaway server.
autovacuum = off
EOF
(cd / && "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/postgres.log" -w start >/dev/null)
DSN="postgresql://bench@127.0.0.1:$PORT/postgres"
psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$DSN" "$@"; }

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
CREATE TABLE dst_b $TABLE_DDL;
CREATE TABLE dst_b2 $TABLE_DDL;
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
cat >"$WORK/ferry/full.yaml" <<EOF
name: bench_full
source: {plugin: postgres, config: {dsn: "$DSN", table: src, key: [id]}}
sink: {plugin: postgres, config: {dsn: "$DSN", table: dst_b2, key: [id], mode: insert}}
mode: full
batch_size: $BATCH
workers: $WORKERS
EOF
FERRY=("$BIN/ferry" run --no-progress --plugins "$BIN" --state-dir "$WORK/ferry/state")
psql_ -c "CREATE TABLE dst_t $TABLE_DDL"
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

# The machine is shared: the four full copies run interleaved, REPEAT times, and
# the medians are compared, so load that comes and goes hits them all alike.
A_ALL=(); AT_ALL=(); B_ALL=(); B2_ALL=(); B_RSS=0; B2_RSS=0
A_CPUS=(); AT_CPUS=(); B_CPUS=(); B2_CPUS=()
for round in $(seq 1 "$REPEAT"); do
    log "round $round/$REPEAT: (a) psql binary COPY pipe"
    psql_ -c "TRUNCATE dst_a" -c "CHECKPOINT"
    run_timed bash -c "'$PG_BIN/psql' -X -q -d '$DSN' -c '\\copy (SELECT * FROM src) TO STDOUT (FORMAT binary)' | '$PG_BIN/psql' -X -q -d '$DSN' -c '\\copy dst_a FROM STDIN (FORMAT binary)'"
    A_ALL+=("$ELAPSED"); A_CPUS+=("$CPU")
    [ "$(psql_ -At -c 'SELECT count(*) FROM dst_a')" = "$ROWS" ] || die "(a) copied the wrong number of rows"

    # (a') the same pipe in text format: the format the plugin's source speaks (see its README).
    log "round $round/$REPEAT: (a') psql text COPY pipe"
    psql_ -c "TRUNCATE dst_t" -c "CHECKPOINT"
    run_timed bash -c "'$PG_BIN/psql' -X -q -d '$DSN' -c '\\copy (SELECT * FROM src) TO STDOUT' | '$PG_BIN/psql' -X -q -d '$DSN' -c '\\copy dst_t FROM STDIN'"
    AT_ALL+=("$ELAPSED"); AT_CPUS+=("$CPU")

    log "round $round/$REPEAT: (b) ferry incremental pipeline, first run (full copy, upsert)"
    psql_ -c "TRUNCATE dst_b" -c "CHECKPOINT"
    rm -rf "$WORK/ferry/state"
    run_timed "${FERRY[@]}" "$WORK/ferry/inc.yaml"
    B_ALL+=("$ELAPSED"); B_CPUS+=("$CPU"); B_RSS=$(( RSS_KB > B_RSS ? RSS_KB : B_RSS ))
    [ "$(psql_ -At -c 'SELECT count(*) FROM dst_b')" = "$ROWS" ] || die "(b) copied the wrong number of rows"

    log "round $round/$REPEAT: (b2) ferry mode full, sink insert (COPY into the table)"
    psql_ -c "TRUNCATE dst_b2" -c "CHECKPOINT"
    run_timed "${FERRY[@]}" "$WORK/ferry/full.yaml"
    B2_ALL+=("$ELAPSED"); B2_CPUS+=("$CPU"); B2_RSS=$(( RSS_KB > B2_RSS ? RSS_KB : B2_RSS ))
    [ "$(psql_ -At -c 'SELECT count(*) FROM dst_b2')" = "$ROWS" ] || die "(b2) copied the wrong number of rows"
done
A_SECONDS=$(median "${A_ALL[@]}"); AT_SECONDS=$(median "${AT_ALL[@]}")
B_SECONDS=$(median "${B_ALL[@]}"); B2_SECONDS=$(median "${B2_ALL[@]}")
A_CPU=$(median "${A_CPUS[@]}"); AT_CPU=$(median "${AT_CPUS[@]}")
B_CPU=$(median "${B_CPUS[@]}"); B2_CPU=$(median "${B2_CPUS[@]}")
log "runs (wall s): a ${A_ALL[*]} | a' ${AT_ALL[*]} | b ${B_ALL[*]} | b2 ${B2_ALL[*]}"
log "runs (CPU s):  a ${A_CPUS[*]} | a' ${AT_CPUS[*]} | b ${B_CPUS[*]} | b2 ${B2_CPUS[*]}"
psql_ -c "CHECKPOINT"

log "(c) change 1% of the rows, incremental run"
CHANGED=$(( ROWS / 100 ))
psql_ -c "UPDATE src SET price = price + 1, updated_at = now() WHERE id % 100 = 0"
run_timed "${FERRY[@]}" "$WORK/ferry/inc.yaml"
C_SECONDS=$ELAPSED; C_RSS=$RSS_KB; C_CPU=$CPU
grep -q "read $CHANGED," "$WORK/last.out" "$WORK/last.err" || log "warning: (c) did not report reading $CHANGED rows: $(cat "$WORK/last.out")"

log "(d) incremental rerun, nothing changed"
run_timed "${FERRY[@]}" "$WORK/ferry/inc.yaml"
D_SECONDS=$ELAPSED; D_RSS=$RSS_KB; D_CPU=$CPU

log "(e) dry run over the whole table (no checkpoint), previewed against the full target"
BEFORE_E=$(psql_ -At -c "SELECT count(*), sum(xmin::text::bigint) FROM dst_b")
run_timed "$BIN/ferry" run --dry-run --no-progress --plugins "$BIN" --state-dir "$WORK/ferry/dry-state" "$WORK/ferry/inc.yaml"
E_SECONDS=$ELAPSED; E_RSS=$RSS_KB; E_CPU=$CPU
[ "$(psql_ -At -c "SELECT count(*), sum(xmin::text::bigint) FROM dst_b")" = "$BEFORE_E" ] || die "(e) the dry run changed the target"
[ ! -e "$WORK/ferry/dry-state" ] || [ -z "$(ls -A "$WORK/ferry/dry-state")" ] || die "(e) the dry run saved a checkpoint"
grep -q "unchanged" "$WORK/last.out" "$WORK/last.err" || log "warning: (e) printed no preview counts: $(tail -n 3 "$WORK/last.out")"

DIFF=$(psql_ -At -c "SELECT (SELECT count(*) FROM (SELECT * FROM src EXCEPT SELECT * FROM dst_b) x) + (SELECT count(*) FROM (SELECT * FROM dst_b EXCEPT SELECT * FROM src) y)")

python3 - "$ROWS" "$CHANGED" "$A_SECONDS" "$AT_SECONDS" "$B_SECONDS" "$B_RSS" "$B2_SECONDS" "$B2_RSS" "$C_SECONDS" "$C_RSS" "$D_SECONDS" "$D_RSS" "$DIFF" "$WORKERS" "$BATCH" "$A_CPU" "$AT_CPU" "$B_CPU" "$B2_CPU" "$C_CPU" "$D_CPU" "$E_SECONDS" "$E_RSS" "$E_CPU" <<'EOF'
import sys
rows, changed = int(sys.argv[1]), int(sys.argv[2])
a, at, b, b_rss, b2, b2_rss, c, c_rss, d, d_rss = map(float, sys.argv[3:13])
diff, workers, batch = sys.argv[13], sys.argv[14], sys.argv[15]
a_cpu, at_cpu, b_cpu, b2_cpu, c_cpu, d_cpu = map(float, sys.argv[16:22])
e, e_rss, e_cpu = map(float, sys.argv[22:25])
def line(label, seconds, n, cpu, rss=None):
    rate = n / seconds
    ratio = rate / (rows / a)
    cpu_ratio = (n / cpu) / (rows / a_cpu) if cpu > 0 else 0
    mib = f"{rss/1024:6.1f} MiB" if rss is not None else "         -"
    print(f"{label:<42} {seconds:7.2f} s {rate:10,.0f} rows/s {ratio:5.2f}x (a) | CPU {cpu:6.2f} s {cpu_ratio:5.2f}x (a) | RSS {mib}")
print(f"PostgreSQL -> PostgreSQL, {rows:,} rows, workers {workers}, batch {batch}; full copies: medians")
print("(wall time; CPU = client + server backends, user + sys; ratios are rows/s or rows per CPU-second against (a))")
line("(a) psql \\copy binary pipe (the limit)", a, rows, a_cpu)
line("(a') psql \\copy text pipe", at, rows, at_cpu)
line("(b) ferry incremental, first run (upsert)", b, rows, b_cpu, b_rss)
line("(b2) ferry full, sink mode insert", b2, rows, b2_cpu, b2_rss)
line(f"(c) ferry incremental, {changed:,} changed", c, changed, c_cpu, c_rss)
line("(d) ferry incremental, nothing changed", d, 1, d_cpu, d_rss)
line("(e) ferry --dry-run, whole table previewed", e, rows, e_cpu, e_rss)
best_b = min(b, b2)
def verdict(ok): return "met" if ok else "MISSED"
print(f"target (b) >= 0.8x (a): (b) {rows/b/(rows/a):.2f}x, (b2) {rows/b2/(rows/a):.2f}x  -> {verdict(rows/best_b >= 0.8*rows/a)}")
print(f"target (c) <= 20% of (b) wall: {100*c/b:.1f}%  -> {verdict(c <= 0.2*b)}")
print(f"target (d) <= 10% of (b) wall: {100*d/b:.1f}%  -> {verdict(d <= 0.1*b)}")
print(f"target (e) <= 1.5x (b) wall: {e/b:.2f}x  -> {verdict(e <= 1.5*b)}")
peak = max(b_rss, b2_rss, c_rss, d_rss, e_rss) / 1024
print(f"target peak RSS < 150 MiB: {peak:.1f} MiB  -> {verdict(peak < 150)}")
print(f"target equals source after (d): {'yes' if diff == '0' else 'NO (' + diff + ' rows differ)'}")
EOF
