"""The checks a schema cannot make: that the rendered manifests agree with the
daemon file they mount, with the Containerfile and Package.swift, with each
other (selectors, ports, references), and keep the security posture k8s/README.md
promises. Each check reports through `results.check(condition, message, detail)`.
"""

from __future__ import annotations

import os
import posixpath
import re

import dockerfile
import yaml

from kustomize_lite import load_documents

# What ferry serve assumes when the daemon file says nothing (Sources/FerryServer/DaemonConfig.swift).
DAEMON_DEFAULTS = {"listen": "127.0.0.1:8080", "grace_period_seconds": 25, "readiness_timeout_seconds": 5,
                   "api_token_env": "FERRY_API_TOKEN"}
CONTAINERFILE_INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                              "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
WRITABLE_MOUNTS = {"/var/lib/ferry", "/tmp"}
SECRET_LIKE = re.compile(r"DSN|URI|TOKEN|PASSWORD|SECRET|KEY", re.IGNORECASE)
DATABASE_PORTS = {5432, 27017}
STATE_STORE_PORT = 5432  # PostgreSQL's; the DSN itself is in the Secret
DNS_PORT = 53


def files_reached(repo: str, kustomizations: list[str]) -> set[str]:
    """Every file (relative to repo) a kustomization reads, directly or through a directory resource."""
    reached: set[str] = set()

    def visit(directory: str) -> None:
        path = os.path.join(directory, "kustomization.yaml")
        reached.add(os.path.relpath(path, repo))
        spec = load_documents(path)[0]
        for entry in spec.get("resources") or []:
            target = os.path.normpath(os.path.join(directory, entry))
            if os.path.isdir(target):
                visit(target)
            else:
                reached.add(os.path.relpath(target, repo))
        for entry in spec.get("patches") or []:
            if isinstance(entry, dict) and "path" in entry:
                reached.add(os.path.relpath(os.path.normpath(os.path.join(directory, entry["path"])), repo))

    for relative in kustomizations:
        visit(os.path.join(repo, relative))
    return reached


# ---- the Containerfile and Package.swift -------------------------------------

def containerfile_facts(repo: str) -> dict:
    """What k8s/ depends on in the Containerfile, read with BuildKit's own parser (a syntax error fails)."""
    instructions = dockerfile.parse_file(os.path.join(repo, "Containerfile"))
    stages: list[list] = []
    arguments: dict[str, str] = {}
    for instruction in instructions:
        if instruction.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
        if instruction.cmd == "ARG":
            name, _, value = instruction.value[0].partition("=")
            arguments[name] = value.strip('"')

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: arguments.get(m.group(1), m.group(0)), text)

    runtime = stages[-1] if stages else []
    facts: dict = {
        "build_image": expand(stages[0][0].value[0]) if stages else "",
        "runtime_image": runtime[0].value[0] if runtime else "",
        "runtime_runs": " ".join(i.value[0] for i in runtime if i.cmd == "RUN"),
        "build_runs": " ".join(i.value[0] for s in stages[:-1] for i in s if i.cmd == "RUN"),
        "copies_from_build": [i.value for i in runtime if i.cmd == "COPY" and "--from=build" in i.flags],
        "uid": int(arguments["FERRY_UID"]) if arguments.get("FERRY_UID", "").isdigit() else None,
        "expose": [int(v.split("/")[0]) for i in runtime if i.cmd == "EXPOSE" for v in i.value],
        "plugins": arguments.get("FERRY_PLUGINS", "").split(),
        "entrypoint": [list(i.value) for i in runtime if i.cmd == "ENTRYPOINT"],
        "env": {},
        "user": None,
        "unknown": [f"line {i.start_line}: {i.original}" for i in instructions if i.cmd not in CONTAINERFILE_INSTRUCTIONS],
    }
    for instruction in runtime:
        if instruction.cmd == "ENV":
            values = list(instruction.value)
            facts["env"].update(zip(values[::2], values[1::2]))
        if instruction.cmd == "USER":
            user = expand(instruction.value[0]).split(":")[0]
            facts["user"] = int(user) if user.isdigit() else user
    return facts


def package_dynamic_products(repo: str) -> list[str]:
    text = open(os.path.join(repo, "Package.swift"), encoding="utf-8").read()
    return re.findall(r'\.library\(\s*name:\s*"([^"]+)",\s*type:\s*\.dynamic', text)


def check_containerfile(repo: str, facts: dict, daemon_port: int | None, results) -> None:
    results.check(not facts["unknown"], "Containerfile: every instruction is a known one", "; ".join(facts["unknown"]))
    results.check(facts["build_image"].startswith("swift:6.3"), "Containerfile: builds with a Swift 6.3 image",
                  facts["build_image"])
    results.check(facts["runtime_image"] == "debian:bookworm-slim", "Containerfile: runtime stage is debian:bookworm-slim",
                  facts["runtime_image"])
    results.check(facts["uid"] is not None and facts["uid"] == facts["user"] and facts["uid"] != 0,
                  "Containerfile: runs as its fixed non-root UID (ARG FERRY_UID = USER)",
                  f"FERRY_UID {facts['uid']}, USER {facts['user']}")
    results.check(daemon_port is not None and facts["expose"] == [daemon_port],
                  "Containerfile: EXPOSEs the daemon's port", f"EXPOSE {facts['expose']}, daemon {daemon_port}")
    results.check(facts["entrypoint"] == [["/usr/local/bin/ferry"]], "Containerfile: ENTRYPOINT is ferry",
                  str(facts["entrypoint"]))
    products = package_dynamic_products(repo)
    missing = [p for p in products if p not in facts["plugins"]]
    results.check(bool(products) and not missing, "Containerfile: builds and ships every plugin product in Package.swift",
                  f"missing {missing}")
    results.check("swift build -c release" in facts["build_runs"] and "plugin test" in facts["build_runs"],
                  "Containerfile: release build, then `ferry plugin test` on each plugin")
    results.check(facts["env"].get("FERRY_PLUGIN_PATH") == "/usr/local/lib/ferry/plugins",
                  "Containerfile: FERRY_PLUGIN_PATH is where the plugins are installed", str(facts["env"]))
    for package in ("libpq5", "libmongoc-1.0-0", "libbson-1.0-0", "libpcre2-8-0", "ca-certificates", "tzdata"):
        results.check(re.search(rf"(^|\s){re.escape(package)}(\s|$)", facts["runtime_runs"]) is not None,
                      f"Containerfile: runtime stage installs {package}")
    results.check("/usr/lib/swift/linux/*.so" in facts["build_runs"] and ["/out/", "/"] in
                  [list(c) for c in facts["copies_from_build"]],
                  "Containerfile: copies the Swift runtime libraries into the runtime stage")
    ignore = open(os.path.join(repo, ".containerignore"), encoding="utf-8").read().split()
    for entry in (".build", ".venv", ".ferry-test"):
        results.check(entry in ignore or f"{entry}/" in ignore, f".containerignore: excludes {entry}")


def check_entrypoint(obj: dict, facts: dict, results, label: str) -> None:
    container = pod_spec(obj)["containers"][0]
    results.check(container.get("command") in (None, *facts["entrypoint"]),
                  f"{label}: {obj['kind']}/{obj['metadata']['name']} runs the image's ferry", str(container.get("command")))


# ---- pods -------------------------------------------------------------------

def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: dict) -> dict:
    return obj["spec"]["template"]["metadata"].get("labels") or {}


def selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items()) and not selector.get("matchExpressions")


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind and (name is None or o["metadata"].get("name") == name)]


def check_pod_security(obj: dict, uid: int | None, results, label: str) -> None:
    spec = pod_spec(obj)
    what = f"{label}: {obj['kind']}/{obj['metadata']['name']}"
    pod_context = spec.get("securityContext") or {}
    results.check(pod_context.get("runAsNonRoot") is True, f"{what}: runAsNonRoot")
    results.check(uid is not None and pod_context.get("runAsUser") == uid,
                  f"{what}: runAsUser is the image's UID", f"{pod_context.get('runAsUser')} vs Containerfile {uid}")
    results.check((pod_context.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
                  f"{what}: seccompProfile RuntimeDefault")
    results.check(spec.get("automountServiceAccountToken") is False, f"{what}: no service account token mounted")
    results.check(not any("hostPath" in v for v in spec.get("volumes") or []), f"{what}: no hostPath volume")
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        where = f"{what} container {container['name']}"
        context = container.get("securityContext") or {}
        results.check(context.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
        results.check(context.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
        capabilities = context.get("capabilities") or {}
        results.check(capabilities.get("drop") == ["ALL"] and not capabilities.get("add"),
                      f"{where}: drops all capabilities, adds none", str(capabilities))
        results.check(not context.get("privileged"), f"{where}: not privileged")
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            present = resources.get(kind) or {}
            results.check("cpu" in present and "memory" in present, f"{where}: cpu and memory {kind}", str(present))
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            results.check(volume is not None, f"{where}: mount {mount['mountPath']} has a volume")
            if mount.get("readOnly"):
                continue
            results.check(mount["mountPath"] in WRITABLE_MOUNTS and volume is not None
                          and ("emptyDir" in volume or "persistentVolumeClaim" in volume),
                          f"{where}: writable mount {mount['mountPath']} is only for state, dead letters or /tmp",
                          f"volume {volume}")
        for variable in container.get("env") or []:
            if SECRET_LIKE.search(variable["name"]):
                results.check("value" not in variable and "secretKeyRef" in (variable.get("valueFrom") or {}),
                              f"{where}: {variable['name']} comes from a Secret, not a literal")


def mounted_files(obj: dict, configmaps: list[dict], results, label: str) -> dict[str, str]:
    """Absolute path in the container → file text, for each ConfigMap item mounted (checking the keys exist)."""
    spec = pod_spec(obj)
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    files: dict[str, str] = {}
    for container in spec["containers"]:
        for mount in container.get("volumeMounts") or []:
            source = (volumes.get(mount["name"]) or {}).get("configMap")
            if not source:
                continue
            found = [c for c in configmaps if c["metadata"]["name"] == source["name"]]
            if not results.check(len(found) == 1, f"{label}: ConfigMap {source['name']} exists for {mount['mountPath']}"):
                continue
            data = found[0].get("data") or {}
            items = source.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                if results.check(item["key"] in data, f"{label}: ConfigMap {source['name']} has key {item['key']}"):
                    files[posixpath.join(mount["mountPath"], item["path"])] = data[item["key"]]
    return files


def port_number(container: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    for entry in container.get("ports") or []:
        if entry.get("name") == port:
            return entry["containerPort"]
    return None


# ---- the daemon -------------------------------------------------------------

class _Quiet:
    def check(self, condition: bool, message: str, detail: str = "") -> bool:
        return condition


def daemon_file(objects: list[dict]) -> dict:
    """The daemon file the (one) Deployment mounts, parsed; {} if there is none."""
    deployments = find(objects, "Deployment")
    if len(deployments) != 1:
        return {}
    args = pod_spec(deployments[0])["containers"][0].get("args") or []
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    files = mounted_files(deployments[0], find(objects, "ConfigMap"), _Quiet(), "")
    return (yaml.safe_load(files[config_path]) or {}) if config_path in files else {}


def check_daemon_pod(objects: list[dict], results, label: str, facts: dict) -> int | None:
    """The Deployment runs `ferry serve` as its daemon file says; returns the daemon's port."""
    deployments = find(objects, "Deployment")
    if not results.check(len(deployments) == 1, f"{label}: one Deployment"):
        return None
    deployment = deployments[0]
    spec = pod_spec(deployment)
    container = spec["containers"][0]
    args = container.get("args") or []
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    results.check(args[:1] == ["serve"] and config_path is not None, f"{label}: the container runs `ferry serve --config`",
                  str(args))
    files = mounted_files(deployment, find(objects, "ConfigMap"), results, label)
    if not results.check(config_path in files, f"{label}: the daemon file {config_path} is mounted"):
        return None
    daemon = yaml.safe_load(files[config_path])
    settings = {**DAEMON_DEFAULTS, **daemon}
    port = int(str(settings["listen"]).rsplit(":", 1)[1])
    results.check(not str(settings["listen"]).startswith("127."), f"{label}: the daemon listens beyond loopback",
                  str(settings["listen"]))

    results.check(port_number(container, "http") == port, f"{label}: containerPort http is the daemon's port {port}",
                  f"{port_number(container, 'http')}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (container.get(probe) or {}).get("httpGet") or {}
        results.check(get.get("path") == path and port_number(container, get.get("port")) == port,
                      f"{label}: {probe} is GET {path} on port {port}", str(get))
    readiness = container.get("readinessProbe") or {}
    results.check(readiness.get("timeoutSeconds", 1) > float(settings["readiness_timeout_seconds"]),
                  f"{label}: readiness probe waits longer than readiness_timeout_seconds",
                  f"{readiness.get('timeoutSeconds', 1)} ≤ {settings['readiness_timeout_seconds']}")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    results.check(grace > float(settings["grace_period_seconds"]),
                  f"{label}: terminationGracePeriodSeconds above the daemon's grace period",
                  f"{grace} ≤ {settings['grace_period_seconds']}")

    writable = [m["mountPath"] for m in container.get("volumeMounts") or [] if not m.get("readOnly")]
    state_dir = daemon.get("state_dir")
    results.check(state_dir is not None and any(state_dir == m or state_dir.startswith(m + "/") for m in writable
                                                if m != "/tmp"),
                  f"{label}: state_dir {state_dir} is on the writable state volume", f"writable: {writable}")
    base = posixpath.dirname(config_path)
    for entry in daemon.get("pipelines") or []:
        if "file" in entry:
            path = posixpath.normpath(posixpath.join(base, entry["file"]))
            if results.check(path in files, f"{label}: pipeline {entry['file']} is mounted at {path}"):
                pipeline = yaml.safe_load(files[path])
                used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", files[path])) - {"PIPELINE_DIR"}
                env = {v["name"] for v in container.get("env") or []}
                results.check(used <= env, f"{label}: every ${{VAR}} of {pipeline.get('name', path)} is set",
                              f"missing {sorted(used - env)}")
    token_env = settings["api_token_env"]
    if "api_token_file" not in daemon:
        results.check(any(v["name"] == token_env for v in container.get("env") or []),
                      f"{label}: the API token {token_env} is set")

    variables = {v["name"]: v for v in container.get("env") or []}
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", " ".join(yaml_strings(daemon))))
    results.check(used <= set(variables), f"{label}: every ${{VAR}} of the daemon file is set",
                  f"missing {sorted(used - set(variables))}")

    check_entrypoint(deployment, facts, results, label)
    replicas = deployment["spec"].get("replicas", 1)
    strategy = deployment["spec"].get("strategy") or {}
    if "state_store" not in daemon:
        results.check(replicas == 1 and strategy.get("type") == "Recreate",
                      f"{label}: file state: one replica, Recreate (a schedule fires once)",
                      f"replicas {replicas}, strategy {strategy.get('type', 'RollingUpdate')}: several replicas need "
                      "state_store (the ha overlay)")
    else:
        check_state_store(deployment, daemon, variables, results, label)
    check_pod_security(deployment, facts["uid"], results, label)
    return port


def yaml_strings(node) -> list[str]:
    """Every string value in a parsed YAML document (not its comments)."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in yaml_strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in yaml_strings(value)]
    return [node] if isinstance(node, str) else []


def scaled(value, total: int, round_up: bool = True) -> int:
    """An int-or-percent as a number of pods. Kubernetes rounds a PodDisruptionBudget's and a
    rolling update's maxSurge up, a rolling update's maxUnavailable down."""
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * total
        return -(-share // 100) if round_up else share // 100
    return int(value)


def check_state_store(deployment: dict, daemon: dict, variables: dict, results, label: str) -> None:
    """Several replicas on the PostgreSQL state store (docs/05-distributed-systems.md): the DSN from
    a Secret, each pod its own replica_id, a rolling update that keeps replicas up, no shared claim."""
    replicas = deployment["spec"].get("replicas", 1)
    strategy = deployment["spec"].get("strategy") or {}
    spec = pod_spec(deployment)
    reference = re.fullmatch(r"\$\{([A-Z_][A-Z0-9_]*)\}", str(daemon["state_store"]))
    if results.check(reference is not None, f"{label}: state_store is a ${{VAR}}, not a DSN in the ConfigMap",
                     "a DSN holds a password: put it in the Secret"):
        source = (variables.get(reference.group(1)) or {}).get("valueFrom") or {}
        results.check("secretKeyRef" in source, f"{label}: state_store's {reference.group(1)} comes from a Secret (secretKeyRef)",
                      str(variables.get(reference.group(1))))
    if replicas > 1:
        named = [name for name in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", str(daemon.get("replica_id", "")))
                 if (((variables.get(name) or {}).get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
                 == "metadata.name"]
        results.check(bool(named), f"{label}: replica_id is each pod's name (fieldRef metadata.name)",
                      f"replica_id {daemon.get('replica_id')!r}")
        rolling = strategy.get("rollingUpdate") or {}
        down = scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        surge = scaled(rolling.get("maxSurge", "25%"), replicas)
        results.check(strategy.get("type", "RollingUpdate") == "RollingUpdate" and down < replicas and down + surge >= 1,
                      f"{label}: {replicas} replicas, RollingUpdate with at least {replicas - down} of them up",
                      f"strategy {strategy}")
        claims = [v["name"] for v in spec.get("volumes") or [] if "persistentVolumeClaim" in v]
        results.check(not claims, f"{label}: {replicas} replicas share no PersistentVolumeClaim (checkpoints are in PostgreSQL)",
                      f"claims in volumes {claims}")


def check_neighbours(objects: list[dict], port: int, results, label: str) -> None:
    """Service, PDB, NetworkPolicy, ServiceAccount, claims and secrets around the Deployment."""
    deployment = find(objects, "Deployment")[0]
    labels = pod_labels(deployment)
    spec = pod_spec(deployment)
    container = spec["containers"][0]
    for service in find(objects, "Service"):
        results.check(selects({"matchLabels": service["spec"]["selector"]}, labels),
                      f"{label}: Service {service['metadata']['name']} selects the daemon pods")
        for entry in service["spec"]["ports"]:
            results.check(port_number(container, entry.get("targetPort", entry["port"])) == port,
                          f"{label}: Service port {entry['port']} reaches the daemon's {port}")
    replicas = deployment["spec"].get("replicas", 1)
    for budget in find(objects, "PodDisruptionBudget"):
        results.check(selects(budget["spec"]["selector"], labels), f"{label}: PodDisruptionBudget selects the daemon pods")
        if "maxUnavailable" in budget["spec"]:
            evictable = scaled(budget["spec"]["maxUnavailable"], replicas)
        else:
            evictable = replicas - scaled(budget["spec"].get("minAvailable", 1), replicas)
        # A drain must be able to proceed (SIGTERM stops runs at a committed checkpoint);
        # with several replicas, it must also leave some up.
        results.check(evictable >= 1 and (replicas == 1 or evictable < replicas),
                      f"{label}: PodDisruptionBudget lets a drain evict {min(evictable, replicas)} of {replicas} at a time",
                      f"{budget['spec']}")
    policies = find(objects, "NetworkPolicy")
    results.check(len(policies) == 1, f"{label}: one NetworkPolicy")
    for policy in policies:
        spec_np = policy["spec"]
        results.check(selects(spec_np["podSelector"], labels), f"{label}: NetworkPolicy selects the daemon pods")
        results.check(sorted(spec_np.get("policyTypes") or []) == ["Egress", "Ingress"],
                      f"{label}: NetworkPolicy restricts ingress and egress")
        ingress_ports = [p.get("port") for rule in spec_np.get("ingress") or [] for p in rule.get("ports") or [None]]
        results.check(ingress_ports == [port], f"{label}: ingress only to the API port {port}", str(ingress_ports))
        egress_ports = set()
        for rule in spec_np.get("egress") or []:
            if not results.check(bool(rule.get("ports")), f"{label}: every egress rule names its ports"):
                continue
            egress_ports |= {p.get("port") for p in rule["ports"]}
        results.check(egress_ports == DATABASE_PORTS | {DNS_PORT}, f"{label}: egress only to DNS and the databases",
                      str(sorted(egress_ports, key=str)))
        if "state_store" in daemon_file(objects):
            results.check(any(p.get("port") == STATE_STORE_PORT and p.get("protocol", "TCP") == "TCP"
                              for rule in spec_np.get("egress") or [] for p in rule.get("ports") or []),
                          f"{label}: egress allows TCP {STATE_STORE_PORT} (the state store's PostgreSQL)")
    accounts = find(objects, "ServiceAccount", spec.get("serviceAccountName"))
    results.check(len(accounts) == 1 and accounts[0].get("automountServiceAccountToken") is False,
                  f"{label}: ServiceAccount {spec.get('serviceAccountName')} exists, without an automounted token")
    for volume in spec.get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            results.check(len(find(objects, "PersistentVolumeClaim", claim)) == 1, f"{label}: PersistentVolumeClaim {claim} exists")
    results.check(not find(objects, "Secret"), f"{label}: no Secret object (only references)")


# ---- the backfill Job ------------------------------------------------------

def check_job(objects: list[dict], daemon_objects: list[dict], results, label: str, facts: dict) -> None:
    jobs = find(objects, "Job")
    if not results.check(len(jobs) == 1, f"{label}: one Job"):
        return
    job = jobs[0]
    spec = job["spec"]
    results.check(spec.get("completionMode") == "Indexed", f"{label}: completionMode Indexed")
    container = pod_spec(job)["containers"][0]
    args = container.get("args") or []
    shard = args[args.index("--shard") + 1] if "--shard" in args else ""
    match = re.fullmatch(r"\$\(JOB_COMPLETION_INDEX\)/(\d+)", shard)
    count = int(match.group(1)) if match else None
    results.check(args[:1] == ["run"] and count is not None, f"{label}: runs `ferry run … --shard $(JOB_COMPLETION_INDEX)/N`",
                  str(args))
    results.check(count is not None and spec.get("completions") == count == spec.get("parallelism"),
                  f"{label}: N = completions = parallelism",
                  f"--shard …/{count}, completions {spec.get('completions')}, parallelism {spec.get('parallelism')}")
    pipeline = args[1] if len(args) > 1 else None
    files = mounted_files(job, find(daemon_objects, "ConfigMap"), results, label)
    results.check(pipeline in files, f"{label}: the pipeline {pipeline} is mounted from the daemon's ConfigMap")
    if "--state-dir" in args:
        state = args[args.index("--state-dir") + 1]
        writable = [m["mountPath"] for m in container.get("volumeMounts") or [] if not m.get("readOnly") and m["mountPath"] != "/tmp"]
        results.check(any(state.startswith(m + "/") for m in writable), f"{label}: --state-dir is on the state volume")
        results.check("$(JOB_COMPLETION_INDEX)" in state, f"{label}: each shard has its own state folder (dead letters too)")
    if pipeline in files:
        used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", files[pipeline])) - {"PIPELINE_DIR"}
        env = {v["name"] for v in container.get("env") or []}
        results.check(used <= env, f"{label}: every ${{VAR}} of the pipeline is set", f"missing {sorted(used - env)}")
    account = pod_spec(job).get("serviceAccountName")
    results.check(len(find(daemon_objects, "ServiceAccount", account)) == 1, f"{label}: ServiceAccount {account} is the daemon's")
    for volume in pod_spec(job).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            results.check(len(find(objects, "PersistentVolumeClaim", claim)) == 1, f"{label}: PersistentVolumeClaim {claim} exists")
    policy = find(daemon_objects, "NetworkPolicy")
    results.check(bool(policy) and selects(policy[0]["spec"]["podSelector"], pod_labels(job)),
                  f"{label}: the daemon's NetworkPolicy covers the Job's pods")
    check_entrypoint(job, facts, results, label)
    check_pod_security(job, facts["uid"], results, label)


def images(objects: list[dict]) -> set[str]:
    return {c["image"] for o in objects if o.get("kind") in ("Deployment", "Job")
            for c in pod_spec(o)["containers"]}


# What an overlay may change in the base's daemon file: the state store, for replicas.
DAEMON_OVERLAY_KEYS = {"state_store", "replica_id"}


def check_all(repo: str, renders: dict[str, list[dict]], deployable: list[str], job_key: str, results,
              base_key: str = "k8s/base") -> None:
    facts = containerfile_facts(repo)
    port = None
    base_daemon = daemon_file(renders[base_key]) if base_key in renders else None
    for key in deployable:
        if base_daemon is not None:
            # An overlay that patches daemon.yaml repeats it whole: it must not drift from the base's.
            ours = {k: v for k, v in daemon_file(renders[key]).items() if k not in DAEMON_OVERLAY_KEYS}
            changed = sorted(k for k in set(ours) | set(base_daemon) if ours.get(k) != base_daemon.get(k))
            results.check(not changed, f"{key}: daemon file is {base_key}'s, apart from {', '.join(sorted(DAEMON_OVERLAY_KEYS))}",
                          f"differs in {changed}")
        port = check_daemon_pod(renders[key], results, key, facts)
        if port is not None:
            check_neighbours(renders[key], port, results, key)
    check_job(renders[job_key], renders[deployable[-1]], results, job_key, facts)
    results.check(images(renders[job_key]) == images(renders[deployable[-1]]),
                  f"{job_key}: same image as {deployable[-1]}",
                  f"{images(renders[job_key])} vs {images(renders[deployable[-1]])}")
    check_containerfile(repo, facts, port, results)
