#!/usr/bin/env bash
# test-servers.sh start|stop|env — throwaway PostgreSQL 15 + SecantusDB for tests.
#
#   start  Start both servers on free 127.0.0.1 ports, wait until they answer,
#          write the env file. A previous run's servers (from an existing env
#          file) are stopped first, so `start` is always safe to repeat.
#   stop   Stop both servers and delete their temp dir and the env file.
#          Harmless when nothing is running.
#   env    Print the env file path (source it to get FERRY_TEST_* variables).
#
# Everything lives in one temp dir under /tmp (data, sockets, logs), so a stop
# removes every trace. Nothing listens on anything but 127.0.0.1.
#
# PostgreSQL: superuser `ferry`, password `ferry`, database `ferry`.
#   TCP (127.0.0.1) requires the password (scram-sha-256), so tests of wrong
#   or missing passwords are meaningful; the unix socket in
#   $FERRY_TEST_PG_SOCKET_DIR uses trust auth.
# SecantusDB: MongoDB wire protocol, in-memory storage, no auth.
#
# Environment:
#   FERRY_VENV                 virtualenv with secantusdb (default <repo>/.venv)
#   FERRY_TEST_ENV_FILE        env file (default <repo>/.ferry-test/servers.env)
#   FERRY_TEST_PG_BIN          PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   FERRY_TEST_START_TIMEOUT   seconds to wait for each server (default 60)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY_VENV="${FERRY_VENV:-$REPO_ROOT/.venv}"
ENV_FILE="${FERRY_TEST_ENV_FILE:-$REPO_ROOT/.ferry-test/servers.env}"
PG_BIN="${FERRY_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}"
START_TIMEOUT="${FERRY_TEST_START_TIMEOUT:-60}"
PY="$FERRY_VENV/bin/python"

PG_USER=ferry
PG_PASSWORD=ferry
PG_DB=ferry

log() { printf 'test-servers: %s\n' "$*" >&2; }
die() { printf 'test-servers: error: %s\n' "$*" >&2; exit 1; }

# initdb and pg_ctl refuse to run as root: as root, run them as the `postgres`
# user that the Debian postgresql package creates. Otherwise run as ourselves.
if [ "$(id -u)" -eq 0 ]; then
    PG_RUN_AS=postgres
else
    PG_RUN_AS=
fi
as_pg() {
    if [ -n "$PG_RUN_AS" ]; then
        runuser -u "$PG_RUN_AS" -- "$@"
    else
        "$@"
    fi
}

# Print the last lines of a server log, to explain a failed start.
log_tail() {
    local name="$1" file="$2"
    if [ -f "$file" ]; then
        printf -- '--- last lines of %s log (%s) ---\n' "$name" "$file" >&2
        tail -n 40 "$file" >&2 || true
        printf -- '--- end of %s log ---\n' "$name" >&2
    else
        log "$name log $file does not exist"
    fi
}

# Two distinct free TCP ports on 127.0.0.1 (both sockets are held open at the
# same time so the kernel cannot hand out the same port twice).
free_ports() {
    "$PY" - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# Send a real MongoDB `ping` (OP_MSG, hand-encoded BSON, no driver needed) and
# succeed only if the reply says ok: 1.
mongo_ping() {
    "$PY" - "$1" <<'EOF'
import socket, struct, sys
port = int(sys.argv[1])
def cstr(s): return s.encode() + b"\0"
# BSON {ping: 1, $db: "admin"}
elems = b"\x10" + cstr("ping") + struct.pack("<i", 1)
elems += b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
doc = struct.pack("<i", 4 + len(elems) + 1) + elems + b"\0"
body = struct.pack("<I", 0) + b"\x00" + doc          # flagBits, section kind 0
msg = struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body  # OP_MSG
with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
    s.sendall(msg)
    hdr = b""
    while len(hdr) < 16:
        chunk = s.recv(16 - len(hdr))
        if not chunk: sys.exit("connection closed")
        hdr += chunk
    length = struct.unpack("<i", hdr[:4])[0]
    rest = b""
    while len(rest) < length - 16:
        chunk = s.recv(length - 16 - len(rest))
        if not chunk: sys.exit("connection closed")
        rest += chunk
# rest = flagBits(4) kind(1) bson-doc; find the top-level double/int "ok".
i = rest.find(b"ok\0")
if i < 1: sys.exit("no ok field in reply")
t, v = rest[i - 1], rest[i + 3:]
ok = struct.unpack("<d", v[:8])[0] if t == 1 else struct.unpack("<i", v[:4])[0]
sys.exit(0 if ok == 1 else "ping reply ok=%r" % ok)
EOF
}

# Is the process still alive and still the one we started (pid reuse)?
pid_is() {
    local pid="$1" pattern="$2"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] \
        && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"
}

cmd_stop() {
    if [ ! -f "$ENV_FILE" ]; then
        log "stop: nothing to stop (no $ENV_FILE)"
        return 0
    fi
    # Values come from our own env file; clear them first so a half-written
    # file cannot pick up stale values from the caller's environment.
    local FERRY_TEST_DIR='' FERRY_TEST_PG_DATA='' FERRY_TEST_MONGO_PID=''
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    stop_servers "$FERRY_TEST_DIR" "$FERRY_TEST_PG_DATA" "$FERRY_TEST_MONGO_PID"
    rm -f "$ENV_FILE"
    log "stop: done"
}

# stop_servers DIR PGDATA MONGO_PID — every part is optional and best-effort,
# so it also cleans up after a start that failed half way.
stop_servers() {
    local dir="$1" pgdata="$2" mpid="$3"
    if [ -n "$pgdata" ] && [ -f "$pgdata/postmaster.pid" ]; then
        log "stop: postgres ($pgdata)"
        (cd / && as_pg "$PG_BIN/pg_ctl" -D "$pgdata" stop -m fast -w -t 30 >/dev/null) \
            || log "stop: pg_ctl stop failed (already stopped?)"
    fi
    if pid_is "$mpid" secantus; then
        log "stop: secantus (pid $mpid)"
        kill -TERM "$mpid" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do          # up to 10 s for a clean shutdown
            pid_is "$mpid" secantus || break
            sleep 0.2
        done
        if pid_is "$mpid" secantus; then
            log "stop: secantus did not exit on SIGTERM, sending SIGKILL"
            kill -KILL "$mpid" 2>/dev/null || true
        fi
    fi
    # Only ever delete our own temp dirs.
    case "$dir" in
        /tmp/ferry-test.*) rm -rf -- "$dir" ;;
        '') ;;
        *) log "stop: not removing unexpected dir '$dir'" ;;
    esac
}

cmd_start() {
    [ -x "$PG_BIN/initdb" ] || die "no $PG_BIN/initdb: run scripts/setup.sh"
    [ -x "$PY" ] || die "no $PY: run scripts/setup.sh"
    "$PY" -c 'import secantus' 2>/dev/null || die "secantusdb missing in $FERRY_VENV: run scripts/setup.sh"
    if [ -n "$PG_RUN_AS" ] && ! id "$PG_RUN_AS" >/dev/null 2>&1; then
        die "running as root but no '$PG_RUN_AS' user to run postgres: run scripts/setup.sh"
    fi

    # A leftover env file means servers from an earlier run (maybe crashed).
    if [ -f "$ENV_FILE" ]; then
        log "start: stopping servers of a previous run first"
        cmd_stop
    fi

    local t0=$SECONDS
    local dir
    dir="$(mktemp -d /tmp/ferry-test.XXXXXX)"
    # If anything below fails, stop whatever already started and clean up.
    # (Plain globals: the trap runs after this function's locals are gone.)
    START_DIR="$dir"; START_PGDATA=""; START_MPID=""
    trap 'rc=$?; if [ $rc -ne 0 ]; then log "start failed, cleaning up"; stop_servers "$START_DIR" "$START_PGDATA" "$START_MPID"; fi' EXIT
    # The postgres user must be able to reach its folder inside the temp dir.
    chmod 755 "$dir"

    local ports pg_port mongo_port
    ports="$(free_ports)"
    pg_port="${ports% *}"
    mongo_port="${ports#* }"

    # --- PostgreSQL ---
    local pgdir="$dir/pg" pgdata="$dir/pg/data" sock="$dir/pg/sock" pglog="$dir/pg/postgres.log"
    mkdir -p "$pgdir" "$sock"
    printf '%s\n' "$PG_PASSWORD" >"$pgdir/pwfile"
    [ -n "$PG_RUN_AS" ] && chown -R "$PG_RUN_AS:" "$pgdir"

    log "start: postgres initdb"
    # The bootstrap superuser *is* `ferry` (with its password), so there is no
    # separate CREATE ROLE step. C locale + UTF8 keeps results identical
    # whatever the machine's locale is.
    if ! (cd "$pgdir" && as_pg "$PG_BIN/initdb" -D "$pgdata" -U "$PG_USER" \
            --pwfile="$pgdir/pwfile" -E UTF8 --locale=C \
            --auth-local=trust --auth-host=scram-sha-256 \
            >"$pgdir/initdb.log" 2>&1); then
        log_tail initdb "$pgdir/initdb.log"
        die "initdb failed"
    fi
    START_PGDATA="$pgdata"
    # TLS on offer (clients that ask for it get it; libpq's default `prefer`
    # does): a throwaway CA and a server certificate for 127.0.0.1/localhost,
    # so the tests can check verify-full against a real handshake. The CA's
    # path is exported as FERRY_TEST_PG_CA.
    local tls="$pgdir/tls"
    mkdir -p "$tls"
    if ! (cd "$tls" \
        && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ferry-test-ca" \
            -keyout ca.key -out ca.crt \
        && openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr \
        && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext \
        && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile san.ext -out server.crt) >"$pgdir/tls.log" 2>&1; then
        log_tail openssl "$pgdir/tls.log"
        die "cannot make the test TLS certificates"
    fi
    chmod 600 "$tls/server.key"
    [ -n "$PG_RUN_AS" ] && chown -R "$PG_RUN_AS:" "$tls"
    # Listen on loopback only, on our port, socket in the temp dir. Durability
    # is pointless for a throwaway server: turn it off for speed.
    cat >>"$pgdata/postgresql.conf" <<EOF

# --- added by scripts/test-servers.sh ---
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
ssl = on
ssl_cert_file = '$tls/server.crt'
ssl_key_file = '$tls/server.key'
EOF

    log "start: postgres on 127.0.0.1:$pg_port"
    if ! (cd "$pgdir" && as_pg "$PG_BIN/pg_ctl" -D "$pgdata" -l "$pglog" \
            -w -t "$START_TIMEOUT" start >/dev/null 2>&1); then
        log_tail postgres "$pglog"
        die "postgres failed to start"
    fi
    if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -t "$START_TIMEOUT"; then
        log_tail postgres "$pglog"
        die "postgres does not accept connections on 127.0.0.1:$pg_port"
    fi
    if ! "$PG_BIN/psql" -X -q -h "$sock" -p "$pg_port" -U "$PG_USER" -d postgres \
            -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null; then
        log_tail postgres "$pglog"
        die "could not create database $PG_DB"
    fi
    local pg_pid
    pg_pid="$(head -n1 "$pgdata/postmaster.pid")"

    # --- SecantusDB ---
    local mlog="$dir/secantus.log" mcfg="$dir/secantusd.toml"
    # An empty config passed with --config turns off secantus's auto-discovery
    # of ./secantusd.toml, ~/.secantus/ and /etc/secantus/, so no stray file on
    # the machine can change the test server.
    : >"$mcfg"
    log "start: secantus on 127.0.0.1:$mongo_port"
    # TMPDIR: ':memory:' storage is a temp dir; keep it inside ours so it is
    # removed by `stop` even if secantus has to be killed.
    TMPDIR="$dir" nohup "$PY" -m secantus --config "$mcfg" --host 127.0.0.1 \
        --port "$mongo_port" --storage-path :memory: \
        >"$mlog" 2>&1 </dev/null &
    local mpid=$!
    START_MPID="$mpid"

    # Poll the TCP port, then check a real ping round-trip.
    local deadline=$((SECONDS + START_TIMEOUT))
    until (exec 3<>"/dev/tcp/127.0.0.1/$mongo_port") 2>/dev/null; do
        if ! kill -0 "$mpid" 2>/dev/null; then
            log_tail secantus "$mlog"
            die "secantus exited during startup"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log_tail secantus "$mlog"
            die "secantus not listening on 127.0.0.1:$mongo_port after ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done
    local err
    if ! err="$(mongo_ping "$mongo_port" 2>&1)"; then
        log_tail secantus "$mlog"
        die "secantus accepts connections but ping failed: $err"
    fi

    # --- env file ---
    mkdir -p "$(dirname "$ENV_FILE")"
    # The default env dir is machine-local state inside the repo: keep git
    # from picking it up. (A custom FERRY_TEST_ENV_FILE location is left alone.)
    if [ "$(dirname "$ENV_FILE")" = "$REPO_ROOT/.ferry-test" ] && [ ! -e "$REPO_ROOT/.ferry-test/.gitignore" ]; then
        printf '*\n' >"$REPO_ROOT/.ferry-test/.gitignore"
    fi
    local tmp_env="$ENV_FILE.tmp.$$"
    {
        echo "# Written by scripts/test-servers.sh start; removed by stop."
        printf 'export %s=%q\n' \
            FERRY_TEST_DIR "$dir" \
            FERRY_TEST_PG_DSN "postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$pg_port/$PG_DB" \
            FERRY_TEST_PG_HOST 127.0.0.1 \
            FERRY_TEST_PG_PORT "$pg_port" \
            FERRY_TEST_PG_USER "$PG_USER" \
            FERRY_TEST_PG_PASSWORD "$PG_PASSWORD" \
            FERRY_TEST_PG_DB "$PG_DB" \
            FERRY_TEST_PG_CA "$pgdir/tls/ca.crt" \
            FERRY_TEST_PG_BIN "$PG_BIN" \
            FERRY_TEST_PG_DATA "$pgdata" \
            FERRY_TEST_PG_SOCKET_DIR "$sock" \
            FERRY_TEST_PG_LOG "$pglog" \
            FERRY_TEST_PG_PID "$pg_pid" \
            FERRY_TEST_PG_RUN_AS "$PG_RUN_AS" \
            FERRY_TEST_MONGO_URI "mongodb://127.0.0.1:$mongo_port" \
            FERRY_TEST_MONGO_HOST 127.0.0.1 \
            FERRY_TEST_MONGO_PORT "$mongo_port" \
            FERRY_TEST_MONGO_PID "$mpid" \
            FERRY_TEST_MONGO_LOG "$mlog"
    } >"$tmp_env"
    mv -f "$tmp_env" "$ENV_FILE"

    trap - EXIT
    log "start: ready in $((SECONDS - t0))s (postgres :$pg_port, secantus :$mongo_port); env file $ENV_FILE"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) echo "$ENV_FILE" ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
