"""Checks the manifests with the real `ferry` executable, when it is built:
the flags the containers pass exist, and `ferry validate` accepts the daemon
file and pipelines exactly as the pods mount them from the ConfigMap.

scripts/test.sh builds everything before scripts/test-extra.sh runs, so in
CI these checks run; a standalone run without a build says what it skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

import consistency

# Stand-ins for the Secret's values: `ferry validate` expands ${VAR}s but
# connects to nothing.
PLACEHOLDER_ENV = {
    "PG_DSN": "postgresql://ferry:placeholder@127.0.0.1:5432/cart",
    "MONGO_URI": "mongodb://ferry:placeholder@127.0.0.1:27017/",
    "FERRY_API_TOKEN": "placeholder",
    "FERRY_STATE_DSN": "postgresql://ferry:placeholder@127.0.0.1:5432/ferry",
    "POD_NAME": "ferry-0",
}


# The products that provide the plugins the shop pipelines use.
PLUGIN_PRODUCTS = {"mongo": "FerryMongo", "postgres": "FerryPostgres", "map": "FerryMap"}


def missing_plugins(repo: str, ferry: str, needed: set[str]) -> tuple[set[str], set[str]]:
    """(not built though Package.swift declares them, not declared in this tree at all)."""
    absent = needed - installed_plugins(ferry)
    declared = set(consistency.package_dynamic_products(repo))
    undeclared = {name for name in absent if PLUGIN_PRODUCTS.get(name) not in declared}
    return absent - undeclared, undeclared


def find_ferry(repo: str) -> str | None:
    candidates = [os.environ.get("FERRY_EXECUTABLE", "")]
    candidates += [os.path.join(repo, ".build", configuration, "ferry") for configuration in ("debug", "release")]
    built = sorted((c for c in candidates if c and os.access(c, os.X_OK)), key=os.path.getmtime, reverse=True)
    # The newest build whose folder has the plugins the manifests use: a release
    # build of only the benchmark's products (scripts/bench-*.sh) must not win.
    for candidate in built:
        folder = os.path.dirname(candidate)
        if all(os.path.exists(os.path.join(folder, f"lib{product}.so")) for product in PLUGIN_PRODUCTS.values()):
            return candidate
    return built[0] if built else None


def long_options(ferry: str, command: str) -> set[str]:
    output = subprocess.run([ferry, command, "--help"], capture_output=True, text=True, check=False)
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", output.stdout + output.stderr))


def installed_plugins(ferry: str) -> set[str]:
    output = subprocess.run([ferry, "plugins", "--plugins", os.path.dirname(ferry)], capture_output=True, text=True,
                            check=False)
    return {line.split()[0] for line in output.stdout.splitlines()[1:] if line.strip() and not line.startswith("(")}


def check_flags(ferry: str, obj: dict, results, label: str) -> None:
    container = consistency.pod_spec(obj)["containers"][0]
    args = container.get("args") or []
    command = args[0]
    known = long_options(ferry, command)
    for flag in (a for a in args if a.startswith("--")):
        results.check(flag in known, f"{label}: `ferry {command}` has {flag}", f"not in `ferry {command} --help`")


def check_with_ferry(repo: str, renders: dict[str, list[dict]], deployables: list[str], job_key: str, results) -> None:
    ferry = find_ferry(repo)
    if ferry is None:
        print("note  ferry is not built (swift build): the flags and `ferry validate` of the mounted files are not checked")
        return
    deployable = deployables[-1]
    for key in deployables + [job_key]:
        for obj in renders[key]:
            if obj.get("kind") in ("Deployment", "Job"):
                check_flags(ferry, obj, results, key)

    deployment = consistency.find(renders[deployable], "Deployment")[0]
    files = consistency.mounted_files(deployment, consistency.find(renders[deployable], "ConfigMap"), results, deployable)
    needed = set()
    for text in files.values():
        needed |= set(re.findall(r"^\s*plugin:\s*([\w-]+)", text, re.MULTILINE))
    unbuilt, undeclared = missing_plugins(repo, ferry, needed)
    if not results.check(not unbuilt, f"{deployable}: the pipelines' plugins are built beside {ferry}",
                         f"{', '.join(sorted(unbuilt))} missing: build every product (swift build)"):
        return
    if undeclared:
        print(f"note  plugins {', '.join(sorted(undeclared))} are not in this tree's Package.swift: "
              "`ferry validate` of the ConfigMap's daemon file is not run")
        return
    # The last deployable's files, then every other overlay whose mounted files differ
    # from those already checked (the ha overlay's daemon file adds the state store).
    checked: list[dict[str, str]] = []
    for key in [deployable] + [k for k in deployables if k != deployable]:
        deployment = consistency.find(renders[key], "Deployment")[0]
        if key != deployable:
            files = consistency.mounted_files(deployment, consistency.find(renders[key], "ConfigMap"), results, key)
        if files in checked:
            continue
        checked.append(files)
        validate_mounted(ferry, deployment, files, results, key)


def validate_mounted(ferry: str, deployment: dict, files: dict[str, str], results, label: str) -> None:
    """`ferry validate` on the daemon file, written out with its pipelines as the pod mounts them."""
    args = consistency.pod_spec(deployment)["containers"][0]["args"]
    config_path = args[args.index("--config") + 1]
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            target = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(text)
        output = subprocess.run(
            [ferry, "validate", os.path.join(root, config_path.lstrip("/")), "--plugins", os.path.dirname(ferry)],
            capture_output=True, text=True, check=False, env={**os.environ, **PLACEHOLDER_ENV})
        results.check(output.returncode == 0, f"{label}: `ferry validate` accepts the mounted daemon file and pipelines",
                      (output.stdout + output.stderr).strip().replace(root, ""))
