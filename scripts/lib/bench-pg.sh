# shellcheck shell=bash
# bench-pg.sh — a throwaway PostgreSQL for the benchmark scripts (sourced).
#
#   bench_pg_start DIR   initdb in DIR/pg, start on 127.0.0.1 on a free port
#                        with the benchmarks' settings; sets PGDATA, PG_PORT
#                        and DSN
#   bench_pg_stop        stop it (nothing to do if it never started)
#   psql_ …              psql on DSN, stopping at the first error
#   bench_free_port      a free TCP port on 127.0.0.1
#
# The caller sets PG_BIN and defines log and die.

BENCH_PG_RUN_AS=()
if [ "$(id -u)" = 0 ]; then BENCH_PG_RUN_AS=(runuser -u postgres --); fi
PGDATA=""

bench_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_pg_start() {
    local dir="$1/pg"
    mkdir -p "$dir/sock"
    if [ "${#BENCH_PG_RUN_AS[@]}" -gt 0 ]; then chown -R postgres: "$dir"; fi
    PGDATA="$dir/data"
    PG_PORT="$(bench_free_port)"
    log "PostgreSQL: initdb + start on 127.0.0.1:$PG_PORT"
    (cd / && "${BENCH_PG_RUN_AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U bench -A trust >/dev/null) || die "initdb failed"
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$dir/sock'
shared_buffers = 256MB
max_wal_size = 4GB
# Autovacuum would work on a table just loaded while the next variant runs, so
# the order of the variants would bias them; it is off on this throwaway server.
autovacuum = off
CONF
    (cd / && "${BENCH_PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$dir/postgres.log" -w start >/dev/null) \
        || die "PostgreSQL did not start (see $dir/postgres.log)"
    DSN="postgresql://bench@127.0.0.1:$PG_PORT/postgres"
}

bench_pg_stop() {
    if [ -n "$PGDATA" ] && [ -f "$PGDATA/postmaster.pid" ]; then
        (cd / && "${BENCH_PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" stop -m immediate -w >/dev/null 2>&1) || true
    fi
}

psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$DSN" "$@"; }
