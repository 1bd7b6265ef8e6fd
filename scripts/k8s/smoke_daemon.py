"""Runs the k8s/ configuration for real, as the pods would, against the test
servers: the daemon file and pipelines exactly as the prod Deployment mounts
them from the ConfigMap (only `listen` and `state_dir` moved to a free loopback
port and a temporary folder), `ferry serve` with its probes, both shop
pipelines triggered over the API, the backfill Job's four `--shard i/4`
commands at once, and SIGTERM. Then the ha overlay: its three replicas on one
PostgreSQL state store (shared checkpoint, the cluster-wide run lock, SIGTERM).

Needs the servers of scripts/test-servers.sh (FERRY_TEST_PG_DSN,
FERRY_TEST_MONGO_URI) and a built ferry with the mongo, map and postgres
plugins; run through scripts/smoke-k8s.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import consistency  # noqa: E402
import ferry_checks  # noqa: E402
from kustomize_lite import render  # noqa: E402
from validate_k8s import Results  # noqa: E402

TOKEN = "smoke-test-token"
CHECKED_OUT_CARTS = 20  # of the 40 seeded, every other one


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(dsn: str, sql: str) -> str:
    output = subprocess.run(["psql", dsn, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise RuntimeError(f"psql: {output.stderr.strip()}")
    return output.stdout.strip()


def with_database(dsn: str, name: str) -> str:
    return urllib.parse.urlsplit(dsn)._replace(path=f"/{name}").geturl()


def seed(repo: str, pg_dsn: str, mongo_uri: str) -> None:
    psql(pg_dsn, """
        CREATE SCHEMA cart;
        CREATE TABLE cart.products (product_id text PRIMARY KEY, sku text, name text, price numeric,
                                    stock int, updated_at timestamptz);
        CREATE TABLE cart.carts (id bigint PRIMARY KEY, customer_id text, items jsonb, total numeric(12,2),
                                 currency text, status text, checked_out_at timestamptz);
        INSERT INTO cart.carts
        SELECT g, 'cust-' || (g % 7), jsonb_build_array(jsonb_build_object('sku', 'SKU-' || g, 'qty', g % 3 + 1)),
               (g * 1.25)::numeric(12,2), 'EUR', CASE WHEN g % 2 = 0 THEN 'checked_out' ELSE 'open' END,
               timestamptz '2026-11-20 10:00:00+00' + g * interval '1 minute'
        FROM generate_series(1, 40) g;
    """)
    import pymongo  # installed with SecantusDB by scripts/setup.sh
    from bson import json_util
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    client.drop_database("products")
    client.drop_database("orders")
    with open(os.path.join(repo, "examples", "data", "products.jsonl"), encoding="utf-8") as handle:
        client.products.products.insert_many([json_util.loads(line) for line in handle if line.strip()])


def wait_for(url: str, deadline: float) -> int:
    status = 0
    while time.monotonic() < deadline:
        try:
            status, _ = http("GET", url)
            if status == 200:
                return status
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    return status


def probe(url: str) -> tuple[int, dict]:
    try:
        return http("GET", url)
    except (urllib.error.URLError, ConnectionError, ValueError) as error:
        return 0, {"error": str(error)}


def run_to_end(base: str, pipeline: str, results: Results) -> dict:
    status, body = http("POST", f"{base}/pipelines/{pipeline}/runs", {}, TOKEN)
    if not results.check(status == 202, f"POST /pipelines/{pipeline}/runs with the Secret's token: 202", f"{status} {body}"):
        return {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, run = http("GET", f"{base}/runs/{body['id']}")
        if run.get("status") not in ("queued", "running"):
            return run
        time.sleep(0.2)
    results.fail(f"{pipeline}: run did not finish within 60 s")
    return {}


# The ha overlay's `ferry serve` processes, so a failed check still stops them.
replicas: list[subprocess.Popen] = []


def is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def shared_state(bases: list[str], pg_dsn: str, results: Results) -> None:
    """One checkpoint and one run lock for all replicas, in the state store."""
    count = len(bases)
    first = run_to_end(bases[0], "products-to-cart", results)
    results.check(first.get("status") == "completed" and (first.get("report") or {}).get("inserted") == 200,
                  "ha: products-to-cart on replica 0 inserts the 200 products", json.dumps(first.get("report")))
    try:
        rows = psql(pg_dsn, "SELECT count(*) FROM ferry_state WHERE pipeline = 'products-to-cart'")
    except RuntimeError as error:
        rows = str(error)
    results.check(rows == "1", "ha: its checkpoint is a row of ferry_state in the state store", f"{rows} rows")
    second = run_to_end(bases[1 % count], "products-to-cart", results)
    results.check(second.get("status") == "completed" and (second.get("report") or {}).get("read") == 0,
                  "ha: products-to-cart on replica 1 resumes from that checkpoint (reads nothing new)",
                  json.dumps(second.get("report")))

    # Another replica's run, as the database sees it: a session holding the pipeline's
    # run lock (the two-key advisory lock of docs/05-distributed-systems.md).
    lock = "pg_advisory_lock(17989, hashtext('products-to-cart'))"  # 17989 = 0x4645, PostgresRunLocks.lockSpace
    holder = subprocess.Popen(["psql", pg_dsn, "-qAt", "-c", f"SELECT {lock}", "-c", "SELECT pg_sleep(60)"],
                              env={**os.environ, "PGAPPNAME": "ferry-smoke-lock-holder"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 17989 AND granted"
    try:
        until = time.monotonic() + 10
        while psql(pg_dsn, held) == "0" and time.monotonic() < until:
            time.sleep(0.1)
        status, body = http("POST", f"{bases[-1]}/pipelines/products-to-cart/runs", {}, TOKEN)
        results.check(status == 409 and "another replica" in json.dumps(body),
                      f"ha: while another replica holds the run lock, a trigger on replica {count - 1} gets 409",
                      f"{status} {body}")
    finally:
        psql(pg_dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ferry-smoke-lock-holder'")
        holder.wait(timeout=10)
    until = time.monotonic() + 10
    while psql(pg_dsn, held) != "0" and time.monotonic() < until:
        time.sleep(0.1)
    third = run_to_end(bases[-1], "products-to-cart", results)
    results.check(third.get("status") == "completed", f"ha: once it is released, replica {count - 1} runs it", json.dumps(third))


def write_config_files(files: dict[str, str], root: str, port: int) -> None:
    """The ConfigMap's files under `root`, the daemon file pointed at `port` and a state dir inside `root`."""
    for path, text in files.items():
        if path.endswith("/daemon.yaml"):
            text = re.sub(r"^listen: .*$", f"listen: 127.0.0.1:{port}", text, flags=re.MULTILINE)
            text = re.sub(r"^state_dir: /var/lib/ferry", f"state_dir: {root}/var/lib/ferry", text, flags=re.MULTILINE)
        target = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)


def smoke_ha(repo: str, ferry: str, pg_dsn: str, mongo_uri: str, root: str, results: Results) -> None:
    """The ha overlay for real: as many `ferry serve` replicas as its Deployment asks, each with
    the ConfigMap's daemon file (only `listen` and `state_dir` moved) and the environment its pod
    would get (Secret keys, the downward API's pod name), all on one PostgreSQL state store."""
    objects = render(os.path.join(repo, "k8s", "overlays", "ha"))
    deployment = consistency.find(objects, "Deployment")[0]
    spec = deployment["spec"]
    container = spec["template"]["spec"]["containers"][0]
    env_spec = {v["name"]: v.get("valueFrom") or {} for v in container.get("env") or []}
    count = spec.get("replicas", 1)
    strategy = spec.get("strategy") or {}
    results.check(count == 3 and strategy.get("type") == "RollingUpdate"
                  and strategy.get("rollingUpdate") == {"maxUnavailable": 1, "maxSurge": 1},
                  "ha: 3 replicas, RollingUpdate (maxUnavailable 1, maxSurge 1)", f"replicas {count}, strategy {strategy}")
    results.check(env_spec.get("FERRY_STATE_DSN", {}).get("secretKeyRef") == {"name": "ferry-secrets", "key": "state-dsn"},
                  "ha: FERRY_STATE_DSN comes from the Secret ferry-secrets, key state-dsn", str(env_spec.get("FERRY_STATE_DSN")))
    results.check(env_spec.get("POD_NAME", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
                  "ha: POD_NAME comes from the downward API (fieldRef metadata.name)", str(env_spec.get("POD_NAME")))
    files = consistency.mounted_files(deployment, consistency.find(objects, "ConfigMap"), results, "ha")
    daemon_text = next((text for path, text in files.items() if path.endswith("/daemon.yaml")), "")
    results.check(re.search(r"^state_store: \$\{FERRY_STATE_DSN\}$", daemon_text, re.MULTILINE) is not None
                  and re.search(r"^replica_id: \$\{POD_NAME\}$", daemon_text, re.MULTILINE) is not None,
                  "ha: the daemon file sets state_store: ${FERRY_STATE_DSN} and replica_id: ${POD_NAME}")

    # What the Secret's keys hold here; the pods read them by reference only.
    secret_values = {"pg-dsn": pg_dsn, "mongo-uri": mongo_uri, "api-token": TOKEN, "state-dsn": pg_dsn}
    psql(pg_dsn, "TRUNCATE cart.products")
    bases, logs = [], []
    for index in range(count):
        pod = f"ferry-ha-{index}"
        folder = os.path.join(root, "ha", pod)
        port = free_port()
        write_config_files(files, folder, port)
        env = {**os.environ, "FERRY_PLUGIN_PATH": os.path.dirname(ferry)}
        for name, source in env_spec.items():
            if "secretKeyRef" in source:
                env[name] = secret_values[source["secretKeyRef"]["key"]]
            elif (source.get("fieldRef") or {}).get("fieldPath") == "metadata.name":
                env[name] = pod
            else:
                results.fail(f"ha: the smoke run cannot provide {name} ({source})")
        args = [os.path.join(folder, a.lstrip("/")) if a.startswith("/etc/ferry/") else a for a in container["args"]]
        logs.append(os.path.join(folder, "serve.log"))
        with open(logs[-1], "w", encoding="utf-8") as log:
            replicas.append(subprocess.Popen([ferry, *args], env=env, stdout=subprocess.DEVNULL, stderr=log))
        bases.append(f"http://127.0.0.1:{port}")

    deadline = time.monotonic() + 30
    ready = [wait_for(f"{base}/readyz", deadline) for base in bases]
    answers = [probe(f"{base}/readyz") for base in bases]  # one more look each, once the deadline has passed
    results.check([status for status, _ in answers] == [200] * count,
                  f"ha: GET /readyz 200 on all {count} replicas (sources, sinks, state store)", f"{ready}: {answers}")
    if all(status == 200 for status, _ in answers):
        shared_state(bases, pg_dsn, results)
    else:
        results.fail("ha: the runs on the replicas are not tried: not every replica is ready")

    started = time.monotonic()
    for replica in replicas:
        replica.send_signal(signal.SIGTERM)
    codes = []
    for replica in replicas:
        try:
            codes.append(replica.wait(timeout=35))
        except subprocess.TimeoutExpired:
            codes.append(None)
    elapsed = time.monotonic() - started
    results.check(codes == [0] * count and elapsed < 25, f"ha: SIGTERM: all {count} replicas exit 0 within the grace period",
                  f"exits {codes} after {elapsed:.1f} s")
    password = urllib.parse.urlsplit(pg_dsn).password
    for index, path in enumerate(logs):
        with open(path, encoding="utf-8") as handle:
            lines = [line for line in handle if line.strip()]
        starting = [json.loads(line) for line in lines if is_json(line) and "ferry serve starting" in line]
        results.check(bool(lines) and all(is_json(line) for line in lines) and TOKEN not in "".join(lines)
                      and (not password or f":{password}@" not in "".join(lines)),
                      f"ha: replica {index}'s logs are JSON lines, without the token or the state store's password")
        results.check(bool(starting) and starting[0].get("replica") == f"ferry-ha-{index}",
                      f"ha: replica {index} names itself by its pod name (replica_id)",
                      str(starting[0] if starting else "no start line"))


def smoke(repo: str, results: Results) -> None:
    pg_dsn, mongo_uri = os.environ.get("FERRY_TEST_PG_DSN"), os.environ.get("FERRY_TEST_MONGO_URI")
    if not pg_dsn or not mongo_uri:
        results.fail("FERRY_TEST_PG_DSN / FERRY_TEST_MONGO_URI not set: run `make test` (scripts/test.sh), "
                     "which starts the test servers, or start them with scripts/test-servers.sh")
        return
    ferry = ferry_checks.find_ferry(repo)
    if not results.check(ferry is not None, "ferry is built", "run swift build"):
        return
    unbuilt, undeclared = ferry_checks.missing_plugins(repo, ferry, {"mongo", "map", "postgres"})
    if not results.check(not unbuilt, "the mongo, map and postgres plugins are built", f"missing {sorted(unbuilt)}"):
        return
    if undeclared:
        print(f"note  plugins {', '.join(sorted(undeclared))} are not in this tree's Package.swift: the smoke run is not possible")
        return

    objects = render(os.path.join(repo, "k8s", "overlays", "prod"))
    deployment = consistency.find(objects, "Deployment")[0]
    files = consistency.mounted_files(deployment, consistency.find(objects, "ConfigMap"), results, "prod")
    job = consistency.find(render(os.path.join(repo, "k8s", "jobs", "backfill")), "Job")[0]
    replicas.clear()
    database = f"ferry_k8s_smoke_{os.getpid()}"
    psql(pg_dsn, f"CREATE DATABASE {database}")
    pg_dsn_smoke = with_database(pg_dsn, database)
    daemon = None
    try:
        seed(repo, pg_dsn_smoke, mongo_uri)
        with tempfile.TemporaryDirectory() as root:
            port = free_port()
            write_config_files(files, root, port)
            args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            args = [os.path.join(root, a.lstrip("/")) if a.startswith("/etc/ferry/") else a for a in args]
            env = {**os.environ, "PG_DSN": pg_dsn_smoke, "MONGO_URI": mongo_uri, "FERRY_API_TOKEN": TOKEN,
                   "FERRY_PLUGIN_PATH": os.path.dirname(ferry)}
            log_path = os.path.join(root, "serve.log")
            with open(log_path, "w", encoding="utf-8") as log:
                daemon = subprocess.Popen([ferry, *args], env=env, stdout=subprocess.DEVNULL, stderr=log)
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            results.check(wait_for(f"{base}/healthz", deadline) == 200, "liveness: GET /healthz 200")
            results.check(wait_for(f"{base}/readyz", deadline) == 200, "readiness: GET /readyz 200 (both pipelines' source and sink)")
            status, _ = http("POST", f"{base}/pipelines/products-to-cart/runs", {})
            results.check(status == 401, "POST without the token: 401", str(status))

            products = run_to_end(base, "products-to-cart", results)
            report = products.get("report") or {}
            results.check(products.get("status") == "completed" and report.get("inserted") == 200,
                          "products-to-cart: 200 products from MongoDB inserted into PostgreSQL", json.dumps(report))
            row = psql(pg_dsn_smoke, "SELECT product_id, sku, price, stock, updated_at FROM cart.products "
                                     "WHERE product_id = '650000000000000000000001'")
            results.check(row == "650000000000000000000001|SKU-00001|17.81|9|2026-11-18 03:23:00+00",
                          "products-to-cart: a row reads back exactly (id as string, decimal price, date)", row)
            carts = run_to_end(base, "carts-to-orders", results)
            report = carts.get("report") or {}
            results.check(carts.get("status") == "completed" and report.get("inserted") == CHECKED_OUT_CARTS,
                          f"carts-to-orders: {CHECKED_OUT_CARTS} checked-out carts upserted into MongoDB", json.dumps(report))
            import pymongo
            from bson.decimal128 import Decimal128
            orders = pymongo.MongoClient(mongo_uri).orders.orders
            order = orders.find_one({"cart_id": 2}) or {}
            results.check(orders.count_documents({}) == CHECKED_OUT_CARTS and order.get("total") == Decimal128("2.50")
                          and order.get("items") == [{"qty": 3, "sku": "SKU-2"}],
                          "carts-to-orders: the orders read back (count, decimal total, items)", str(order))
            again = run_to_end(base, "products-to-cart", results)
            results.check((again.get("report") or {}).get("read") == 0, "products-to-cart again: incremental, reads nothing new",
                          json.dumps(again.get("report")))

            # The backfill Job: its four pods' commands at once, each its own shard and state
            # folder, into an emptied target: every row must arrive, none twice.
            psql(pg_dsn_smoke, "TRUNCATE cart.products")
            container = job["spec"]["template"]["spec"]["containers"][0]
            count = job["spec"]["completions"]
            shards = []
            for index in range(count):
                shard_args = [a.replace("$(JOB_COMPLETION_INDEX)", str(index)) for a in container["args"]]
                shard_args = [os.path.join(root, a.lstrip("/")) if a.startswith(("/etc/ferry/", "/var/lib/ferry/")) else a
                              for a in shard_args]
                shards.append(subprocess.Popen([ferry, *shard_args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                               text=True))
            reads, inserts = [], []
            for index, shard in enumerate(shards):
                out, err = shard.communicate(timeout=120)
                ok = results.check(shard.returncode == 0, f"backfill shard {index}/{count}: exit 0", err.strip()[-500:])
                reads.append(json.loads(out)["read"] if ok else 0)
                inserts.append(json.loads(out)["inserted"] if ok else 0)
                results.check(os.path.isdir(os.path.join(root, f"var/lib/ferry/backfill/shard-{index}")),
                              f"backfill shard {index}/{count}: its own state folder")
            rows = psql(pg_dsn_smoke, "SELECT count(*) FROM cart.products")
            results.check(sum(reads) == 200 and sum(inserts) == 200 and rows == "200" and all(r > 0 for r in reads),
                          f"backfill: the {count} shards read disjoint slices whose union is the collection",
                          f"read {reads}, inserted {inserts}, rows {rows}")

            started = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            try:
                code = daemon.wait(timeout=35)
            except subprocess.TimeoutExpired:
                code = None
            elapsed = time.monotonic() - started
            results.check(code == 0 and elapsed < 25, "SIGTERM: ferry serve exits 0 within its 25 s grace period",
                          f"exit {code} after {elapsed:.1f} s")
            with open(log_path, encoding="utf-8") as handle:
                lines = [line for line in handle if line.strip()]
            results.check(bool(lines) and all(is_json(line) for line in lines), "logs: JSON lines on stderr",
                          next((line for line in lines if not is_json(line)), "no log lines"))
            results.check(TOKEN not in "".join(lines), "logs: the API token never appears")

            smoke_ha(repo, ferry, pg_dsn_smoke, mongo_uri, root, results)
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
                replica.wait()
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        psql(pg_dsn, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        try:
            import pymongo
            client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
            client.drop_database("products")
            client.drop_database("orders")
        except Exception as error:  # cleanup must not hide the result
            print(f"note  could not drop the smoke test's MongoDB databases: {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True)
    args = parser.parse_args()
    results = Results()
    try:
        smoke(args.repo, results)
    except Exception as error:  # a crash is a failure, never a pass
        import traceback
        traceback.print_exc()
        results.fail(f"smoke test crashed: {error}")
    print(f"k8s-smoke: {results.passed} passed, {results.failed} failed")
    return 0 if results.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
