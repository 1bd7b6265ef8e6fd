#!/usr/bin/env bash
# bench-isolation.sh — what a child process per run adds to `ferry serve`.
#
# Starts two daemons on free loopback ports over the same release build and
# the same 1-record generate -> blackhole pipeline: one with
# `--run-isolation process` (each run a child `ferry run`), one with
# `--run-isolation thread` (each run on a thread of the daemon). Triggers
# the pipeline RUNS times on each, interleaved, and takes each run's
# daemon-side time from GET /runs/{id} (finishedAt - startedAt): trigger to
# done, without the client's polling. Prints median, p90 and spread
# (min..max) per mode, the difference of the medians (the child's start-up),
# and the target (< 50 ms) met/missed, with the machine's cores and load.
#
# It is a report: a missed target still exits 0. Non-zero means the
# benchmark itself failed (build, a daemon that did not start, a failed run).
#
# Environment:
#   RUNS         runs per mode (default 30)
#   SKIP_BUILD   1: use the release build as it is (default: build first)
#   SCRATCH      the release build's scratch path (default .build-bench)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

RUNS="${RUNS:-30}"
SCRATCH="${SCRATCH:-$REPO_ROOT/.build-bench}"
TARGET_MS=50

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer (got '$RUNS')"
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed to drive the daemons"

# Release only. One product per call; SwiftPM waits on the scratch path's
# lock while another build holds it.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in ferry FerryGenerate FerryBlackhole; do
        log "swift build -c release --scratch-path $SCRATCH --product $product"
        swift build -c release --scratch-path "$SCRATCH" --product "$product" >&2 || die "release build of $product failed"
    done
fi
BIN_DIR="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)"
FERRY="$BIN_DIR/ferry"
[ -x "$FERRY" ] || die "no $FERRY"

# Under the scratch path, not /tmp: ferry refuses plugins below a folder
# others can write. Only the two plugins the pipeline names.
WORK="$(mktemp -d "$SCRATCH/isolation-bench.XXXXXX")"
chmod 755 "$WORK"
DAEMONS=()
cleanup() {
    for pid in "${DAEMONS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${DAEMONS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/plugins"
for lib in FerryGenerate FerryBlackhole; do
    [ -f "$BIN_DIR/lib$lib.so" ] || die "no $BIN_DIR/lib$lib.so"
    cp "$BIN_DIR/lib$lib.so" "$WORK/plugins/"
done

cat >"$WORK/one.yaml" <<EOF
name: one
source: {plugin: generate, config: {count: 1}}
sink: {plugin: blackhole}
mode: full
EOF

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

FERRY_API_TOKEN="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export FERRY_API_TOKEN
PORTS=()
for mode in process thread; do
    port="$(free_port)"
    mkdir -p "$WORK/$mode"
    cat >"$WORK/$mode/daemon.yaml" <<EOF
listen: 127.0.0.1:$port
pipelines:
  - file: $WORK/one.yaml
state_dir: $WORK/$mode/state
EOF
    "$FERRY" serve --config "$WORK/$mode/daemon.yaml" --plugins "$WORK/plugins" --run-isolation "$mode" \
        --log-level warning 2>"$WORK/$mode/daemon.log" &
    DAEMONS+=("$!")
    PORTS+=("$port")
done

log "$RUNS runs per mode, interleaved"
python3 - "$RUNS" "$TARGET_MS" "${PORTS[0]}" "${PORTS[1]}" <<'EOF' || { tail -n 20 "$WORK"/*/daemon.log >&2; die "the benchmark failed"; }
import json, os, statistics, sys, time, urllib.request
from datetime import datetime

runs, target = int(sys.argv[1]), float(sys.argv[2])
ports = {"process": int(sys.argv[3]), "thread": int(sys.argv[4])}
token = os.environ["FERRY_API_TOKEN"]

def call(port, method, path):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"{}" if method == "POST" else None)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())

def wait_up(port):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the daemon on port {port} did not answer within 60s")

def instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

def one_run(port):
    run_id = call(port, "POST", "/pipelines/one/runs")["id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        run = call(port, "GET", f"/runs/{run_id}")
        if run["status"] != "running":
            if run["status"] != "completed" or run["progress"]["read"] != 1:
                sys.exit(f"run {run_id}: {json.dumps(run)}")
            return (instant(run["finishedAt"]) - instant(run["startedAt"])) * 1000
        time.sleep(0.02)
    sys.exit(f"run {run_id} still running after 60s")

for port in ports.values():
    wait_up(port)
# One run each first: page in the binary and the plugins on both sides.
for port in ports.values():
    one_run(port)
load_before = open("/proc/loadavg").read().split()[:3]
times = {mode: [] for mode in ports}
for _ in range(runs):
    for mode, port in ports.items():
        times[mode].append(one_run(port))
load_after = open("/proc/loadavg").read().split()[:3]

def p90(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]

print(f"cores: {os.cpu_count()}   load average (1/5/15 min): {' '.join(load_before)} before, {' '.join(load_after)} after")
print(f"runs per mode: {runs}; one run = 1 record generate -> blackhole, trigger to done (daemon's startedAt..finishedAt)")
print()
print(f"{'isolation':<10} {'median ms':>10} {'p90 ms':>9} {'spread ms (min..max)':>22}")
for mode, values in times.items():
    print(f"{mode:<10} {statistics.median(values):>10.1f} {p90(values):>9.1f} {min(values):>10.1f} .. {max(values):<9.1f}")
added = statistics.median(times["process"]) - statistics.median(times["thread"])
added_p90 = p90(times["process"]) - p90(times["thread"])
print()
print(f"a child process adds: {added:.1f} ms at the median, {added_p90:.1f} ms at p90")
print(f"target: < {target:.0f} ms added: {'met' if added < target else 'missed'}")
EOF
