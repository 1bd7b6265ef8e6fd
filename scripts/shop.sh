#!/usr/bin/env bash
# shop.sh — the shop scenario end to end, against local servers it starts itself
# (what `make demo SCENARIO=shop` / `scripts/demo.sh shop` run).
#
#   1. setup (idempotent) and a debug build
#   2. a throwaway PostgreSQL 15 and SecantusDB (MongoDB protocol) on free
#      127.0.0.1 ports, via scripts/test-servers.sh with their own env file;
#      stopped on exit unless SHOP_KEEP=1
#   3. seed: SHOP_PRODUCTS products in MongoDB shop.products, SHOP_CARTS carts
#      with items in PostgreSQL cart.carts / cart.cart_items
#   4. examples/shop/products-to-cart.yaml  (MongoDB → PostgreSQL, incremental)
#      examples/shop/carts-to-orders.yaml   (PostgreSQL → MongoDB, upsert by cart)
#   5. change 1% of both sources and run both again: only the changes move
#
# Environment: SHOP_PRODUCTS (default 5000), SHOP_CARTS (default 2000),
# SHOP_KEEP=1 to leave the servers running (stop: FERRY_TEST_ENV_FILE=.ferry-shop/servers.env scripts/test-servers.sh stop).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

PRODUCTS="${SHOP_PRODUCTS:-5000}"
CARTS="${SHOP_CARTS:-2000}"
WORK="$REPO_ROOT/.ferry-shop"
export FERRY_TEST_ENV_FILE="$WORK/servers.env"
export FERRY_VENV="${FERRY_VENV:-$REPO_ROOT/.venv}"
PY="$FERRY_VENV/bin/python"
FERRY=.build/debug/ferry

log() { printf '\nshop: %s\n' "$*" >&2; }
die() { printf 'shop: error: %s\n' "$*" >&2; exit 1; }
[[ "$PRODUCTS" =~ ^[1-9][0-9]*$ ]] || die "SHOP_PRODUCTS must be a positive integer"
[[ "$CARTS" =~ ^[1-9][0-9]*$ ]] || die "SHOP_CARTS must be a positive integer"

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi

scripts/setup.sh
log "swift build"
swift build

mkdir -p "$WORK"
stop_servers() {
    if [ "${SHOP_KEEP:-0}" = 1 ]; then
        log "servers left running (SHOP_KEEP=1); env in $FERRY_TEST_ENV_FILE"
    else
        scripts/test-servers.sh stop >/dev/null 2>&1 || true
    fi
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

log "starting PostgreSQL and SecantusDB on 127.0.0.1"
scripts/test-servers.sh start
# shellcheck disable=SC1090
. "$FERRY_TEST_ENV_FILE"
export SHOP_PG_DSN="$FERRY_TEST_PG_DSN" SHOP_MONGO_URI="$FERRY_TEST_MONGO_URI"

log "seeding $PRODUCTS products (MongoDB) and $CARTS carts (PostgreSQL)"
"$PY" scripts/seed_shop.py --mongo-uri "$SHOP_MONGO_URI" --pg-dsn "$SHOP_PG_DSN" --products "$PRODUCTS" --carts "$CARTS"

STATE="$WORK/state"
rm -rf "$STATE"
run() { "$FERRY" run "$1" --state-dir "$STATE"; }

log "ferry test examples/shop/*.yaml  (the tests: blocks)"
"$FERRY" test examples/shop/products-to-cart.yaml examples/shop/carts-to-orders.yaml

log "ferry run examples/shop/products-to-cart.yaml  (MongoDB shop.products → PostgreSQL cart.products)"
run examples/shop/products-to-cart.yaml
psql -X -q "$SHOP_PG_DSN" -c "SELECT count(*) AS cart_products FROM cart.products" \
    -c "SELECT product_id, sku, name, price, stock, category, updated_at FROM cart.products ORDER BY sku LIMIT 3"

log "ferry run examples/shop/carts-to-orders.yaml  (PostgreSQL carts + items → MongoDB shop.orders)"
run examples/shop/carts-to-orders.yaml
"$PY" - "$SHOP_MONGO_URI" <<'PYEOF'
import sys, json
from pymongo import MongoClient
orders = MongoClient(sys.argv[1]).shop.orders
print(f"shop.orders: {orders.count_documents({})} documents; the first:")
print(json.dumps(orders.find_one(sort=[("_id", 1)]), default=str, indent=2))
PYEOF

log "changing 1% of products and carts, then syncing again: only the changes move"
"$PY" scripts/seed_shop.py --mongo-uri "$SHOP_MONGO_URI" --pg-dsn "$SHOP_PG_DSN" --products "$PRODUCTS" --carts "$CARTS" --touch 1
run examples/shop/products-to-cart.yaml
run examples/shop/carts-to-orders.yaml
log "done"
