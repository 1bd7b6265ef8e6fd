"""Runs the k8s/ configuration for real, as the pods would, against the test
servers: the daemon file and pipelines exactly as the prod Deployment mounts
them from the ConfigMap (only `listen` and `state_dir` moved to a free loopback
port and a temporary folder), `ferry serve` with its probes, both shop
pipelines triggered over the API, the backfill Job's four `--shard i/4`
commands at once, and SIGTERM.

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
    database = f"ferry_k8s_smoke_{os.getpid()}"
    psql(pg_dsn, f"CREATE DATABASE {database}")
    pg_dsn_smoke = with_database(pg_dsn, database)
    daemon = None
    try:
        seed(repo, pg_dsn_smoke, mongo_uri)
        with tempfile.TemporaryDirectory() as root:
            port = free_port()
            for path, text in files.items():
                if path.endswith("/daemon.yaml"):
                    text = re.sub(r"^listen: .*$", f"listen: 127.0.0.1:{port}", text, flags=re.MULTILINE)
                    text = re.sub(r"^state_dir: /var/lib/ferry", f"state_dir: {root}/var/lib/ferry", text, flags=re.MULTILINE)
                target = os.path.join(root, path.lstrip("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w", encoding="utf-8") as handle:
                    handle.write(text)
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
            def is_json(line: str) -> bool:
                try:
                    return isinstance(json.loads(line), dict)
                except ValueError:
                    return False
            results.check(bool(lines) and all(is_json(line) for line in lines), "logs: JSON lines on stderr",
                          next((line for line in lines if not is_json(line)), "no log lines"))
            results.check(TOKEN not in "".join(lines), "logs: the API token never appears")
    finally:
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
