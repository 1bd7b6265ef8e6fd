#!/usr/bin/env bash
# The module table in docs/02-architecture.md and the folder map in README.md
# against Package.swift: every non-test target is in the table with exactly its
# target dependencies (in backticks), no row names a target that is gone, and
# README's layout names every Sources/ folder of a target.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi
scratch="$(mktemp -d "${TMPDIR:-/tmp}/ferry-doc-modules.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
# Its own scratch path: dump-package then neither waits for nor touches .build.
swift package --scratch-path "$scratch/build" dump-package >"$scratch/package.json"
python3 - "$scratch/package.json" <<'PYEOF'
import json, re, sys
package = json.load(open(sys.argv[1]))
targets = {}
for target in package["targets"]:
    if target["type"] == "test":
        continue
    deps = set()
    for dependency in target["dependencies"]:
        kind, value = next(iter(dependency.items()))
        if kind in ("byName", "target"):
            deps.add(value[0])
    targets[target["name"]] = (deps, target.get("path") or f"Sources/{target['name']}")

problems = []
rows = {}
text = open("docs/02-architecture.md", encoding="utf-8").read()
for line in text.split("\n"):
    m = re.match(r"^\| `([A-Za-z0-9_]+)` \|.*\| ([^|]*) \|$", line)
    if m:
        rows[m.group(1)] = set(re.findall(r"`([A-Za-z0-9_]+)`", m.group(2)))
for name in sorted(set(targets) - set(rows)):
    problems.append(f"docs/02-architecture.md: target {name} (Package.swift) is not in the module table")
for name in sorted(set(rows) - set(targets)):
    problems.append(f"docs/02-architecture.md: the module table names {name}, which is no target in Package.swift")
for name in sorted(set(rows) & set(targets)):
    if rows[name] != targets[name][0]:
        problems.append(f"docs/02-architecture.md: {name} depends on {sorted(targets[name][0]) or 'nothing'} in Package.swift, "
                        f"the table says {sorted(rows[name]) or 'nothing'}")

readme = open("README.md", encoding="utf-8").read()
layout = readme[readme.index("## Layout"):]
layout = layout[: layout.index("\n## ", 5)]
listed = set(re.findall(r"^(Sources/[A-Za-z0-9_]+)/", layout, re.M))
folders = {path for _, path in targets.values() if path.startswith("Sources/")}
for folder in sorted(folders - listed):
    problems.append(f"README.md §Layout: {folder}/ (a target in Package.swift) is not listed")
for folder in sorted(listed - folders):
    problems.append(f"README.md §Layout: lists {folder}/, which is no target's folder in Package.swift")
for problem in problems:
    print(problem)
print(f"doc-modules: {len(targets)} targets, {len(rows)} table rows, {len(problems)} problems", file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF
