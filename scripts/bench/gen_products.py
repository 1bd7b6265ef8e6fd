#!/usr/bin/env python3
"""Writes N product records shaped like examples/data/products.jsonl (the
quickstart's records: $oid, $numberDecimal, $date, strings, an int), each
with its own _id and sku, to stdout."""
import json
import sys

def main() -> None:
    count = int(sys.argv[1])
    template_path = sys.argv[2]
    with open(template_path, encoding="utf-8") as f:
        templates = [json.loads(line) for line in f if line.strip()]
    out = sys.stdout
    chunk = []
    for i in range(count):
        record = dict(templates[i % len(templates)])
        record["_id"] = {"$oid": f"{0x650000000000000000000000 + i + 1:024x}"}
        record["sku"] = f"SKU-{i + 1:08d}"
        chunk.append(json.dumps(record, separators=(", ", ": ")))
        if len(chunk) == 10000:
            out.write("\n".join(chunk) + "\n")
            chunk.clear()
    if chunk:
        out.write("\n".join(chunk) + "\n")

if __name__ == "__main__":
    main()
