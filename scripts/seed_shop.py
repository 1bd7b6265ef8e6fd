#!/usr/bin/env python3
"""seed_shop.py — fill the shop's source databases with generated data.

  Product service (MongoDB):  shop.products  {_id, sku, name, description, price (decimal128),
                                              stock, category, active, updatedAt}
  Cart service (PostgreSQL):  cart.carts      (id, customer_id, status, updated_at)
                              cart.cart_items (cart_id, sku, quantity, unit_price)
  plus the empty target of products-to-cart: cart.products (created by the pipeline itself).

Deterministic for a given --seed. Existing shop data is replaced.

  seed_shop.py --mongo-uri URI --pg-dsn DSN [--products N] [--carts M] [--seed S]
  seed_shop.py ... --touch P      # change P percent of products and carts (for incremental runs)
"""
import argparse
import datetime as dt
import io
import random
import subprocess
import sys

from bson import Decimal128, ObjectId
from pymongo import ASCENDING, MongoClient

CATEGORIES = ["books", "games", "music", "garden", "kitchen", "toys", "tools", "sports"]
ADJECTIVES = ["Deluxe", "Compact", "Classic", "Smart", "Rustic", "Nordic", "Urban", "Tiny", "Grand", "Eco"]
NOUNS = ["Trowel", "Lamp", "Kettle", "Puzzle", "Novel", "Drum", "Racket", "Wrench", "Teapot", "Board Game"]
STATUSES = ["open", "open", "open", "checked_out", "abandoned"]

PG_SCHEMA = """
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS cart;
DROP TABLE IF EXISTS cart.cart_items, cart.carts, cart.products;
CREATE TABLE cart.carts (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE cart.cart_items (
    cart_id bigint NOT NULL REFERENCES cart.carts(id),
    sku text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(10,2) NOT NULL,
    PRIMARY KEY (cart_id, sku)
);
-- The index an incremental reader needs: (cursor, key).
CREATE INDEX carts_updated_at_id ON cart.carts (updated_at, id);
"""


def product(rng, n, when):
    name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    return {
        "_id": ObjectId(f"65{n:022x}"),
        "sku": f"SKU-{n:06d}",
        "name": name,
        "description": f"{name}: " + " ".join(rng.choice(["sturdy", "light", "handmade", "bestseller", "gift", "durable"]) for _ in range(12)),
        "price": Decimal128(f"{rng.randint(100, 20000) / 100:.2f}"),
        "stock": rng.randint(0, 500),
        "category": CATEGORIES[n % len(CATEGORIES)],
        "active": rng.random() > 0.05,
        "updatedAt": when,
    }


def psql(dsn, sql, stdin=None):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql], input=stdin, text=True, check=True)


def seed(args):
    rng = random.Random(args.seed)
    base = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    client = MongoClient(args.mongo_uri, serverSelectionTimeoutMS=5000)
    products = client.shop.products
    products.drop()
    client.shop.orders.drop()
    docs = [product(rng, n, base + dt.timedelta(seconds=n)) for n in range(1, args.products + 1)]
    for start in range(0, len(docs), 5000):
        products.insert_many(docs[start:start + 5000], ordered=False)
    products.create_index([("updatedAt", ASCENDING), ("_id", ASCENDING)])

    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", args.pg_dsn], input=PG_SCHEMA, text=True, check=True)
    carts, items = io.StringIO(), io.StringIO()
    for cart in range(1, args.carts + 1):
        when = base + dt.timedelta(seconds=cart * 7)
        carts.write(f"{cart}\t{rng.randint(1, args.carts // 3 + 1)}\t{rng.choice(STATUSES)}\t{when.isoformat()}\n")
        for sku_n in sorted(rng.sample(range(1, args.products + 1), k=min(args.products, rng.randint(1, 5)))):
            items.write(f"{cart}\tSKU-{sku_n:06d}\t{rng.randint(1, 4)}\t{rng.randint(100, 20000) / 100:.2f}\n")
    psql(args.pg_dsn, "\\copy cart.carts FROM pstdin", carts.getvalue())
    psql(args.pg_dsn, "\\copy cart.cart_items FROM pstdin", items.getvalue())
    psql(args.pg_dsn, "ANALYZE cart.carts; ANALYZE cart.cart_items;")
    print(f"seeded {args.products} products in MongoDB shop.products, {args.carts} carts in PostgreSQL cart.carts")


def touch(args):
    """Change a share of the sources, as the services would between two syncs."""
    rng = random.Random(args.seed + 1)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    client = MongoClient(args.mongo_uri, serverSelectionTimeoutMS=5000)
    count = max(1, args.products * args.touch // 100)
    for n in rng.sample(range(1, args.products + 1), k=count):
        client.shop.products.update_one(
            {"_id": ObjectId(f"65{n:022x}")},
            {"$set": {"stock": rng.randint(0, 500), "updatedAt": now}})
    carts = max(1, args.carts * args.touch // 100)
    ids = ",".join(str(i) for i in rng.sample(range(1, args.carts + 1), k=carts))
    psql(args.pg_dsn, f"UPDATE cart.cart_items SET quantity = quantity + 1 WHERE cart_id IN ({ids}); "
                      f"UPDATE cart.carts SET updated_at = now() WHERE id IN ({ids});")
    print(f"changed {count} products and {carts} carts")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo-uri", required=True)
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--carts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--touch", type=int, metavar="PERCENT", help="change this share of the data instead of seeding")
    args = parser.parse_args()
    if args.products < 1 or args.carts < 1:
        parser.error("--products and --carts must be at least 1")
    touch(args) if args.touch else seed(args)


if __name__ == "__main__":
    sys.exit(main())
