#!/usr/bin/env bash
# k8s/monitoring: the Prometheus alert rules and the Grafana dashboard use only
# metrics the daemon exports (the names in Sources/FerryServer), every alert has
# a severity and a summary, the dashboard is well-formed JSON with unique panel
# ids; where promtool is installed (Debian's prometheus package), it checks the
# rules and runs their unit tests (k8s/monitoring/ferry-alerts.test.yaml).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
python3 - <<'PYEOF'
import json, re, sys
sys.path.insert(0, "scripts")
import yaml
import doccheck

metrics, histograms = doccheck.exported_metrics(), doccheck.histogram_metrics()
known = set(metrics) | {h + s for h in histograms for s in ("_bucket", "_sum", "_count")}
problems = []

def check_expr(expr, where):
    names = set(re.findall(r"\bferry_[a-z0-9_]+", expr))
    if not names:
        return
    for name in sorted(names - known):
        problems.append(f"{where}: {name} is not a metric the daemon exports ({', '.join(sorted(metrics))})")

rules = yaml.safe_load(open("k8s/monitoring/ferry-alerts.yaml"))
count = 0
for group in rules["groups"]:
    for rule in group["rules"]:
        count += 1
        where = f"k8s/monitoring/ferry-alerts.yaml: {rule.get('alert', rule.get('record'))}"
        check_expr(rule["expr"], where)
        if "alert" in rule:
            if not rule.get("labels", {}).get("severity"):
                problems.append(f"{where}: no severity label")
            if not rule.get("annotations", {}).get("summary"):
                problems.append(f"{where}: no summary annotation")
        for text in rule.get("annotations", {}).values():
            check_expr(text, where + " (annotation)")

dashboard = json.load(open("k8s/monitoring/ferry-dashboard.json"))
ids = [panel["id"] for panel in dashboard["panels"]]
if len(ids) != len(set(ids)):
    problems.append("k8s/monitoring/ferry-dashboard.json: panel ids repeat")
targets = 0
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        targets += 1
        check_expr(target["expr"], f"k8s/monitoring/ferry-dashboard.json: panel '{panel['title']}'")
for variable in dashboard.get("templating", {}).get("list", []):
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query", "")
    check_expr(str(query), f"k8s/monitoring/ferry-dashboard.json: variable {variable['name']}")
used = set(re.findall(r"\bferry_[a-z0-9_]+", json.dumps(dashboard)))
for metric in sorted(metrics):
    if not any(u == metric or u.startswith(metric + "_") for u in used):
        problems.append(f"k8s/monitoring/ferry-dashboard.json: no panel shows {metric}")
for problem in problems:
    print(problem)
print(f"monitoring: {count} rules, {targets} dashboard queries, {len(problems)} problems", file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF
# promtool: the one on PATH, else the binary out of Debian's prometheus package,
# unpacked (not installed: no server is set up or started) into a cache.
promtool="$(command -v promtool || true)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ferry/promtool"
if [ -z "$promtool" ] && [ -x "$cache/usr/bin/promtool" ]; then
    promtool="$cache/usr/bin/promtool"
fi
if [ -z "$promtool" ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
    download="$(mktemp -d "${TMPDIR:-/tmp}/ferry-promtool.XXXXXX")"
    if (cd "$download" && apt-get download prometheus >/dev/null 2>&1) && mkdir -p "$cache" \
        && dpkg-deb -x "$download"/prometheus_*.deb "$cache" && [ -x "$cache/usr/bin/promtool" ]; then
        promtool="$cache/usr/bin/promtool"
    fi
    rm -rf "$download"
fi
if [ -n "$promtool" ]; then
    "$promtool" check rules k8s/monitoring/ferry-alerts.yaml
    (cd k8s/monitoring && "$promtool" test rules ferry-alerts.test.yaml)
else
    echo "monitoring: no promtool (Debian's prometheus package could not be fetched): rule syntax and unit tests not run" >&2
fi
