"""Validates k8s/ offline: renders every kustomization, checks each object
against the pinned Kubernetes version's schemas in strict mode, checks that
the manifests agree with the daemon, the Containerfile and each other, and
proves on known-bad fixtures that each kind of check can fail.

Run through scripts/validate-k8s.sh (which provides the virtualenv).
Exit 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import traceback

import kubernetes_validate
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import consistency  # noqa: E402
import ferry_checks  # noqa: E402
from kustomize_lite import KustomizeError, describe, load_documents, object_id, render  # noqa: E402

# The Kubernetes version the manifests must be valid for (kubernetes-validate's
# schemas for it, strict: unknown fields are errors).
KUBERNETES_VERSION = "1.30.0"

# What `kubectl apply -k` is pointed at, and the base they share.
KUSTOMIZATIONS = ["k8s/base", "k8s/overlays/dev", "k8s/overlays/ha", "k8s/overlays/prod", "k8s/jobs/backfill"]
# The daemon's overlays; the last is the one the backfill Job runs beside (same image, same ConfigMap).
DEPLOYABLE = ["k8s/overlays/dev", "k8s/overlays/ha", "k8s/overlays/prod"]
HA = "k8s/overlays/ha"


class Results:
    def __init__(self, quiet: bool = False) -> None:
        self.passed = 0
        self.failed = 0
        self.quiet = quiet

    def ok(self, message: str) -> None:
        self.passed += 1
        if not self.quiet:
            print(f"ok    {message}")

    def fail(self, message: str) -> None:
        self.failed += 1
        if not self.quiet:
            print(f"FAIL  {message}")

    def check(self, condition: bool, message: str, detail: str = "") -> bool:
        if condition:
            self.ok(message)
        else:
            self.fail(message + (f": {detail}" if detail else ""))
        return condition


def schema_errors(obj: dict) -> str | None:
    """None if the object is valid for KUBERNETES_VERSION (strict), else why not."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return None
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(p) for p in error.path) or "(top)"
        return f"{where}: {error.message}"
    except kubernetes_validate.SchemaNotFoundError as error:
        return f"no schema for {obj.get('apiVersion')} {obj.get('kind')} in Kubernetes {KUBERNETES_VERSION}: {error}"


def kubectl_kustomize_version() -> tuple[str | None, str]:
    """(kubectl, why not) — kubectl only if its kustomize is v4 or later (older ones lack `patches:`)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None, "kubectl not installed"
    output = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True, check=False)
    try:
        version = json.loads(output.stdout).get("kustomizeVersion", "")
    except json.JSONDecodeError:
        version = ""
    major = re.match(r"v(\d+)\.", version)
    if not major or int(major.group(1)) < 4:
        return None, f"kubectl's kustomize is {version or 'unknown'}, older than v4"
    return kubectl, ""


def kubectl_render(directory: str) -> list[dict] | None:
    kubectl, _ = kubectl_kustomize_version()
    if kubectl is None:
        return None
    output = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {directory}: {output.stderr.strip()}")
    return [d for d in yaml.safe_load_all(output.stdout) if d is not None]


def compare_renders(ours: list[dict], theirs: list[dict]) -> str | None:
    ours_by_id = {object_id(o): o for o in ours}
    theirs_by_id = {object_id(o): o for o in theirs}
    if set(ours_by_id) != set(theirs_by_id):
        only_ours = sorted(set(ours_by_id) - set(theirs_by_id))
        only_theirs = sorted(set(theirs_by_id) - set(ours_by_id))
        return f"objects differ: only ours {only_ours}, only kubectl's {only_theirs}"
    for key, obj in ours_by_id.items():
        where = first_difference(obj, theirs_by_id[key], "")
        if where is not None:
            return f"{describe(obj)} differs from kubectl kustomize's at {where or '(top)'}"
    return None


def first_difference(a, b, path: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return None if a == b else path


def validate_repo(repo: str, results: Results) -> dict[str, list[dict]]:
    renders: dict[str, list[dict]] = {}
    for relative in KUSTOMIZATIONS:
        directory = os.path.join(repo, relative)
        try:
            objects = render(directory)
        except KustomizeError as error:
            results.fail(f"{relative}: render: {error}")
            continue
        renders[relative] = objects
        results.ok(f"{relative}: rendered {len(objects)} objects")
        for obj in objects:
            problem = schema_errors(obj)
            results.check(problem is None, f"{relative}: {describe(obj)} valid for Kubernetes {KUBERNETES_VERSION} (strict)",
                          problem or "")
        try:
            theirs = kubectl_render(directory)
        except KustomizeError as error:
            results.fail(str(error))
            continue
        if theirs is None:
            print(f"note  {relative}: {kubectl_kustomize_version()[1]}: the cross-check with kubectl kustomize is not run")
        else:
            difference = compare_renders(objects, theirs)
            results.check(difference is None, f"{relative}: same objects as kubectl kustomize", difference or "")

    # Every file under k8s/ that kustomize reads is reached from a kustomization,
    # so nothing unvalidated sits there looking deployable. k8s/monitoring holds
    # Prometheus rules and a Grafana dashboard, not Kubernetes objects: they are
    # checked by scripts/test-extra.d/monitoring.sh.
    reached = consistency.files_reached(repo, KUSTOMIZATIONS)
    for root, _, files in os.walk(os.path.join(repo, "k8s")):
        if os.path.relpath(root, repo).split(os.sep)[:2] == ["k8s", "monitoring"]:
            continue
        for name in files:
            if name.endswith((".yaml", ".yml")):
                path = os.path.relpath(os.path.join(root, name), repo)
                results.check(path in reached, f"{path}: used by a kustomization", "not reachable from any kustomization")

    if all(k in renders for k in KUSTOMIZATIONS):
        consistency.check_all(repo, renders, DEPLOYABLE, "k8s/jobs/backfill", results)
        ferry_checks.check_with_ferry(repo, renders, DEPLOYABLE, "k8s/jobs/backfill", results)
    return renders


def self_check(repo: str, results: Results, renders: dict[str, list[dict]] | None = None) -> None:
    """Each known-bad fixture must be refused, or the validator cannot fail."""
    fixtures = os.path.join(repo, "scripts", "k8s", "fixtures")
    for name in ("typo-field.yaml", "wrong-type.yaml", "unknown-kind.yaml"):
        path = os.path.join(fixtures, name)
        problems = [schema_errors(obj) for obj in load_documents(path)]
        refused = [p for p in problems if p]
        results.check(bool(refused), f"self-check: {name} is refused", "accepted, so a typo would pass")
        if refused:
            print(f"        ({refused[0]})")
    for name in ("unsupported-kustomization", "duplicate-key"):
        try:
            render(os.path.join(fixtures, name))
            results.fail(f"self-check: {name} is refused: rendered, so the renderer accepts what it cannot do")
        except KustomizeError as error:
            results.ok(f"self-check: {name} is refused")
            print(f"        ({str(error).splitlines()[0]})")
    # The consistency checks must catch a Deployment whose probe and grace period disagree with the daemon.
    bad = Results(quiet=True)
    objects = render(os.path.join(fixtures, "inconsistent"))
    consistency.check_daemon_pod(objects, bad, "fixture", consistency.containerfile_facts(repo))
    results.check(bad.failed >= 2, "self-check: inconsistent fixture fails the daemon checks",
                  f"only {bad.failed} failures")
    # The replica rules must catch the ha overlay without its state store (three
    # replicas each firing every tick) and with a DSN written into the ConfigMap.
    if renders and HA in renders:
        facts = consistency.containerfile_facts(repo)
        for what, replacement in (("three replicas on file state", ""),
                                  ("a literal state_store DSN", "state_store: postgresql://ferry:secret@db:5432/ferry\n")):
            objects = copy.deepcopy(renders[HA])
            for configmap in consistency.find(objects, "ConfigMap"):
                data = configmap.get("data") or {}
                if "daemon.yaml" in data:
                    data["daemon.yaml"] = re.sub(r"^state_store:.*\n", replacement, data["daemon.yaml"], flags=re.MULTILINE)
            bad = Results(quiet=True)
            consistency.check_daemon_pod(objects, bad, "fixture", facts)
            results.check(bad.failed >= 1, f"self-check: the ha overlay with {what} fails the daemon checks",
                          "no check failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True)
    args = parser.parse_args()
    results = Results()
    try:
        renders = validate_repo(args.repo, results)
        self_check(args.repo, results, renders)
    except Exception:  # a crash of the validator is a failure, never a pass
        traceback.print_exc()
        results.fail("validator crashed")
    print(f"k8s: {results.passed} passed, {results.failed} failed")
    return 0 if results.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
