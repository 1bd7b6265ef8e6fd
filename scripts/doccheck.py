#!/usr/bin/env python3
"""doccheck.py — the checks on the docs that need no block to run.

    scripts/doccheck.py [--ferry PATH] [FILE.md …]

Every fenced block in README.md, docs/*.md, docs/plugins/*.md and
Plugins/*/README.md (or the files given) must say in its fence what is done
with it:

    ```sh doctest            run by scripts/doctest.sh
    ```sh doctest from-root  run there from a copy of the repository root
    ```sh doctest session=N  run there, in one folder shared by the blocks of session N
    ```yaml pipeline         checked with `ferry validate` (and `ferry test` if it has tests:)
    ```yaml daemon           checked with `ferry validate` as a daemon file (stub pipelines)
    ```yaml config=PLUGIN    one plugin's config: (a mapping; for map also a list of steps,
                             for a pipeline a transforms: list), validated in a stub pipeline
    ```json                  must parse (a document or JSON Lines); `json openapi=Name`
                             is also checked against that schema in docs/openapi.yaml
    ```http                  every `METHOD /path` line must be a route in docs/openapi.yaml
    ```c compile             a whole C file: compiled (cc -fsyntax-only) against
                             ferry_plugin.h and libbson
    ```text output           what the runnable block above prints: doctest.sh compares
                             (`--match-output`: the lines in order, … for any text)
    ```LANG norun: REASON    not run; the reason is required

A block with anything else in its fence fails. Beyond the fences:
  - every curl in a shell block and every `METHOD /path` in the text is a route in
    docs/openapi.yaml,
  - every repository path in backticks (`Sources/…/X.swift`) and every relative link
    names a file that exists,
  - every metric name (ferry_…) is one the daemon exports (Sources/FerryServer),
    and chapter 6's metric table lists every one of them,
  - every list of log levels names all the levels the CLI accepts, every list of
    schedule macros names @every and @yearly, no dir: entry is called triggers-only,
    chapter 6 gives the run-duration buckets the daemon sets,
  - README and chapter 5 state the missed-tick policy in the same words,
  - no dated or numbered traces of how the project was made (dates, issue numbers),
  - docs/plugins/<name>.md are what `ferry plugins --markdown` writes from the build.
Exit 1 with one line per problem (file:line: what), 0 when clean.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def rel(path):
    return os.path.relpath(os.path.abspath(path), REPO)


# --- fenced blocks -----------------------------------------------------------

def blocks(path):
    """(line of the opening fence, info string, body) for each fenced block."""
    out = []
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(`{3,})(.*)$", lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).strip(), i + 1
        body = []
        i += 1
        while i < len(lines) and not re.match(r"^`{%d,}\s*$" % len(fence), lines[i]):
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            problem(f"{rel(path)}:{start}", "unterminated code block")
        out.append((start, info, "\n".join(body) + "\n"))
        i += 1
    return out


def prose(path):
    """(line number, text) of the lines outside fenced blocks."""
    inside, fence, out = False, 0, []
    for number, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        m = re.match(r"^(`{3,})", line)
        if not inside and m:
            inside, fence = True, len(m.group(1))
        elif inside and re.match(r"^`{%d,}\s*$" % fence, line):
            inside = False
        elif not inside:
            out.append((number, line))
    return out


# --- the code's facts --------------------------------------------------------

def source_text(pattern):
    return "\n".join(open(p, encoding="utf-8").read() for p in sorted(glob.glob(os.path.join(REPO, pattern), recursive=True)))


def exported_metrics():
    text = source_text("Sources/FerryServer/**/*.swift")
    return set(re.findall(r'label:\s*"(ferry_[a-z0-9_]+)"', text))


def histogram_metrics():
    text = source_text("Sources/FerryServer/**/*.swift")
    return set(re.findall(r'Timer\(label:\s*"(ferry_[a-z0-9_]+)"', text)) | set(re.findall(r'durationHistogramBuckets\["(ferry_[a-z0-9_]+)"\]', text))


def log_levels():
    text = open(os.path.join(REPO, "Sources/ferry/CommonOptions.swift"), encoding="utf-8").read()
    m = re.search(r'Log level: ([a-z, ]+)\.', text)
    if not m:
        problem("Sources/ferry/CommonOptions.swift", "no 'Log level: …' help text to read the levels from")
        return []
    return [level.strip() for level in m.group(1).split(",")]


def openapi_routes():
    text = open(os.path.join(REPO, "docs/openapi.yaml"), encoding="utf-8").read()
    spec = yaml.safe_load(text)
    routes = set()
    for path, item in spec.get("paths", {}).items():
        for method in item:
            if method in ("get", "post", "put", "delete", "patch"):
                routes.add((method.upper(), path))
    return spec, routes


def route_matches(method, path, routes):
    path = path.split("?")[0].rstrip("/") or "/"
    for m, template in routes:
        if m != method:
            continue
        pattern = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return True
    return False


# --- checks ------------------------------------------------------------------

def check_schema(value, schema, spec, where, path="$"):
    """The parts of JSON Schema the API document uses: $ref, type, required, properties, items, enum."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = spec["components"]["schemas"][name]
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    expected = schema.get("type")
    if isinstance(expected, str) and expected in kinds:
        ok = isinstance(value, kinds[expected]) and not (expected in ("integer", "number") and isinstance(value, bool))
        if not ok:
            problem(where, f"{path}: expected {expected}, got {type(value).__name__}")
            return
    if "enum" in schema and value not in schema["enum"]:
        problem(where, f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problem(where, f"{path}: required key '{key}' missing")
        props = schema.get("properties", {})
        for key, sub in value.items():
            if key in props:
                check_schema(sub, props[key], spec, where, f"{path}.{key}")
            elif props and schema.get("additionalProperties") is False:
                problem(where, f"{path}: key '{key}' is not in the schema")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check_schema(item, schema["items"], spec, where, f"{path}[{index}]")


def ferry_validate(ferry, directory, filename, where, env_extra=None):
    env = dict(os.environ)
    env.setdefault("FERRY_PLUGIN_PATH", os.path.join(REPO, ".build/debug"))
    env.update(env_extra or {})
    result = subprocess.run([ferry, "validate", "--plugins", env["FERRY_PLUGIN_PATH"], filename], cwd=directory,
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        problem(where, "ferry validate failed: " + (result.stderr.strip() or result.stdout.strip()).replace("\n", " | "))
        return False
    return True


def placeholder_env(text):
    """A value for every ${VAR} a block names, so validation does not stop at an unset variable."""
    env = {}
    for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}", text):
        if name != "PIPELINE_DIR" and name not in os.environ:
            env[name] = "postgresql://placeholder@127.0.0.1/db" if "DSN" in name else (
                "mongodb://127.0.0.1:27017" if "URI" in name else "placeholder")
    return env


def stand_in_secrets(body, directory):
    """${file:/run/secrets/…} names a file that exists only where the pipeline is deployed."""
    for index, path in enumerate(sorted(set(re.findall(r"\$\{file:([^}]+)\}", body)))):
        if not os.path.exists(path):
            stand_in = os.path.join(directory, f"secret-{index}")
            with open(stand_in, "w") as f:
                f.write("postgresql://placeholder@127.0.0.1/db\n")
            os.chmod(stand_in, 0o600)
            body = body.replace("${file:" + path + "}", "${file:" + stand_in + "}")
    return body


def check_pipeline(ferry, body, where, scratch):
    directory = tempfile.mkdtemp(dir=scratch)
    body = stand_in_secrets(body, directory)
    with open(os.path.join(directory, "pipeline.yaml"), "w") as f:
        f.write(body)
    if not ferry_validate(ferry, directory, "pipeline.yaml", where, placeholder_env(body)):
        return
    doc = yaml.safe_load(body)
    if isinstance(doc, dict) and doc.get("tests"):
        result = subprocess.run([ferry, "test", "--plugins", os.path.join(REPO, ".build/debug"), "pipeline.yaml"],
                                cwd=directory, capture_output=True, text=True, env={**os.environ, **placeholder_env(body)})
        if result.returncode != 0:
            problem(where, "ferry test failed: " + (result.stdout + result.stderr).strip().replace("\n", " | "))


PLUGIN_KINDS = {}


def check_plugin_config(ferry, plugin, body, where, scratch):
    """A fragment: one plugin's config, or a transforms: list, inside a stub pipeline."""
    if not PLUGIN_KINDS:
        listing = subprocess.run([ferry, "plugins", "--json", "--plugins", os.path.join(REPO, ".build/debug")],
                                 capture_output=True, text=True)
        for entry in json.loads(listing.stdout or "{}").get("plugins", []):
            PLUGIN_KINDS[entry["name"]] = entry["kinds"]
    try:
        value = yaml.safe_load(body)
    except yaml.YAMLError as error:
        problem(where, f"not YAML: {error}")
        return
    if plugin not in PLUGIN_KINDS:
        problem(where, f"config={plugin}: no such plugin in the build")
        return
    if isinstance(value, dict) and "transforms" in value:
        transforms = value["transforms"]
    elif isinstance(value, list) and plugin == "map":
        transforms = [{"plugin": "map", "config": {"steps": value}}]
    else:
        transforms = None
    pipeline = {"name": "fragment", "source": {"plugin": "generate", "config": {"count": 1}},
                "sink": {"plugin": "blackhole"}}
    kinds = PLUGIN_KINDS[plugin]
    if transforms is not None:
        pipeline["transforms"] = transforms
    elif "transform" in kinds:
        pipeline["transforms"] = [{"plugin": plugin, "config": value}]
    elif "source" in kinds:
        pipeline["source"] = {"plugin": plugin, "config": value}
    else:
        pipeline["sink"] = {"plugin": plugin, "config": value}
    text = json.dumps(pipeline)
    directory = tempfile.mkdtemp(dir=scratch)
    with open(os.path.join(directory, "pipeline.yaml"), "w") as f:
        f.write(text)
    ferry_validate(ferry, directory, "pipeline.yaml", where, placeholder_env(body))


def check_daemon(ferry, body, where, scratch):
    directory = tempfile.mkdtemp(dir=scratch)
    doc = yaml.safe_load(body) or {}
    stub = "source: {plugin: generate, config: {count: 1}}\nsink: {plugin: blackhole}\n"
    for entry in doc.get("pipelines") or []:
        if isinstance(entry, dict) and "file" in entry:
            path = os.path.join(directory, entry["file"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write(f"name: {os.path.splitext(os.path.basename(path))[0]}\n" + stub)
        if isinstance(entry, dict) and "dir" in entry:
            folder = os.path.join(directory, entry["dir"])
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "manual.yaml"), "w") as f:
                f.write("name: manual\n" + stub)
    # A token file that exists only in a pod: a stand-in with the same role.
    token = doc.get("api_token_file")
    if isinstance(token, str) and not os.path.exists(token):
        stand_in = os.path.join(directory, "token")
        with open(stand_in, "w") as f:
            f.write("stand-in\n")
        os.chmod(stand_in, 0o600)
        body = body.replace(token, stand_in)
    with open(os.path.join(directory, "daemon.yaml"), "w") as f:
        f.write(body)
    # Paths that exist only in the image or a pod (plugins:, state_dir:) are not this machine's.
    env = placeholder_env(body)
    ferry_validate(ferry, directory, "daemon.yaml", where, env)


def check_c(body, where, scratch):
    directory = tempfile.mkdtemp(dir=scratch)
    source = os.path.join(directory, "block.c")
    with open(source, "w") as f:
        f.write(body)
    bson = subprocess.run(["pkg-config", "--cflags", "libbson-1.0"], capture_output=True, text=True).stdout.split()
    result = subprocess.run(["cc", "-std=c11", "-fsyntax-only", "-Wall", "-Werror",
                             "-I", os.path.join(REPO, "Sources/CFerryPlugin/include"), *bson, source],
                            capture_output=True, text=True)
    if result.returncode != 0:
        problem(where, "does not compile: " + result.stderr.strip().replace(source, "block").replace("\n", " | ")[:600])


def check_fences(path, ferry, spec, routes, scratch):
    counts = {"run": 0, "validated": 0, "norun": 0}
    for line, info, body in blocks(path):
        where = f"{rel(path)}:{line}"
        words = info.split()
        if "norun:" in info or re.match(r"^\S+ norun:", info):
            reason = info.split("norun:", 1)[1].strip()
            if not reason:
                problem(where, "a norun block must say why it cannot run (```sh norun: needs a cluster)")
            counts["norun"] += 1
        elif words[:2] == ["sh", "doctest"] and (len(words) == 2 or (len(words) == 3 and (
                words[2] == "from-root" or re.fullmatch(r"session=[A-Za-z0-9_-]+", words[2])))):
            counts["run"] += 1
        elif words == ["yaml", "pipeline"]:
            counts["validated"] += 1
            if ferry:
                check_pipeline(ferry, body, where, scratch)
        elif len(words) == 2 and words[0] == "yaml" and words[1].startswith("config="):
            counts["validated"] += 1
            if ferry:
                check_plugin_config(ferry, words[1].split("=", 1)[1], body, where, scratch)
        elif words == ["yaml", "daemon"]:
            counts["validated"] += 1
            if ferry:
                check_daemon(ferry, body, where, scratch)
        elif words and words[0] == "json" and all(w.startswith("openapi=") for w in words[1:]):
            counts["validated"] += 1
            try:
                values = [json.loads(body)]
            except json.JSONDecodeError:
                try:
                    values = [json.loads(l) for l in body.splitlines() if l.strip()]
                except json.JSONDecodeError as error:
                    problem(where, f"not JSON: {error}")
                    values = []
            for w in words[1:]:
                name = w.split("=", 1)[1]
                if name not in spec["components"]["schemas"]:
                    problem(where, f"no schema '{name}' in docs/openapi.yaml")
                    continue
                for value in values:
                    check_schema(value, {"$ref": "#/components/schemas/" + name}, spec, where)
        elif words == ["c", "compile"]:
            counts["validated"] += 1
            check_c(body, where, scratch)
        elif words == ["text", "output"]:
            counts["validated"] += 1
        elif words == ["http"]:
            counts["validated"] += 1
            for request in re.findall(r"^(GET|POST|PUT|DELETE|PATCH) (\S+)", body, re.M):
                if not route_matches(request[0], request[1], routes):
                    problem(where, f"{request[0]} {request[1]} is not a route in docs/openapi.yaml")
        else:
            problem(where, f"code block fence '```{info}' says neither how it is checked nor why it cannot run "
                           "(```sh doctest, ```text output, ```c compile, ```yaml pipeline, ```yaml daemon, ```yaml config=PLUGIN, ```json, ```http, or ```LANG norun: REASON)")
        if words and words[0] in ("sh", "bash", "console"):
            check_curls(body, where, routes)
    return counts


def check_curls(body, where, routes):
    for line in body.replace("\\\n", " ").splitlines():
        if "curl " not in line or line.lstrip().startswith("#"):
            continue
        for command in re.findall(r"curl\s[^|;&]*", line):
            urls = re.findall(r"(?:https?://[^/\s\"']+|\"?\$\{?api\}?|localhost:\d+|127\.0\.0\.1:\d+)(/[^\s\"'?]*)", command)
            if not urls:
                continue
            method = "GET"
            m = re.search(r"-X\s*([A-Z]+)", command)
            if m:
                method = m.group(1)
            elif re.search(r"\s(-d|--data\S*)\s", command):
                method = "POST"
            for url in urls:
                if not route_matches(method, url, routes):
                    problem(where, f"curl {method} {url} is not a route in docs/openapi.yaml")


def check_prose(path, routes, tracked, metrics, histograms, levels):
    text_lines = prose(path)
    all_lines = open(path, encoding="utf-8").read().split("\n")
    for number, line in text_lines:
        where = f"{rel(path)}:{number}"
        for method, route in re.findall(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`\s]*)", line):
            if not route_matches(method, route, routes):
                problem(where, f"{method} {route} is not a route in docs/openapi.yaml")
        if rel(path) not in OWN_HISTORY_FREE and not rel(path).startswith("docs/plugins/"):
            continue
        line = re.sub(r"`[^`]*`", "", line)
        if re.search(r"\b(issue|ticket|bug) #?\d+\b", line, re.I):
            problem(where, "an issue or ticket number: the docs speak of the project, not of how it was made")
        if re.search(r"\b20\d\d-\d\d-\d\d\b|\b(January|February|March|April|May|June|July|August|September|October|November|December) 20\d\d\b", line):
            problem(where, "a calendar date in the text: say what holds, not when it was measured")
    for number, line in text_lines:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", line):
            if not os.path.exists(os.path.join(os.path.dirname(os.path.abspath(path)), target)):
                problem(f"{rel(path)}:{number}", f"link to {target}, which does not exist")
    for number, line in enumerate(all_lines, 1):
        where = f"{rel(path)}:{number}"
        for candidate in re.findall(r"`((?:Sources|Plugins|Tests|scripts|examples|k8s|docs|shared|\.ci)/[A-Za-z0-9_./+-]*[A-Za-z0-9_])`", line):
            candidate = candidate.rstrip("/")
            if candidate not in tracked and not any(t.startswith(candidate + "/") for t in tracked) \
                    and not glob.glob(os.path.join(REPO, candidate)):
                problem(where, f"`{candidate}` is not a file or folder in the repository")
        for name in re.findall(r"\bferry_[a-z0-9_]+", line):
            check_metric_name(name, where, metrics, histograms)
        lower = line.lower()
        if re.search(r"\btrace\b", lower) and re.search(r"\bwarning\b", lower) and re.search(r"\berror\b", lower):
            missing = [level for level in levels if not re.search(r"\b%s\b" % level, lower)]
            if missing:
                problem(where, f"a list of log levels without {', '.join(missing)} (the CLI accepts {', '.join(levels)})")
        if "@hourly" in line and not ("@every" in line and "@yearly" in line):
            problem(where, "a list of schedule forms without @every or @yearly")
        if re.search(r"\bdir\b", line) and re.search(r"triggers? only", line) and "own file" not in line:
            problem(where, "a dir: entry called triggers-only: its pipelines run on their own files' schedule: (FerryDaemon.load)")
        if "default buckets" in line:
            problem(where, "the run-duration histogram has its own buckets (FerryDaemon.swift), not the default ones")
        if "/opt/ferry/plugins" in line:
            problem(where, "/opt/ferry: the image installs plugins in /usr/local/lib/ferry/plugins (Containerfile)")


# Pages whose text must carry no trace of how the project was made (the others
# have their own keepers and are checked by them).
OWN_HISTORY_FREE = {"README.md", "docs/README.md", "docs/tutorial.md", "docs/01-what-is-etl.md", "docs/02-architecture.md",
                    "docs/03-design-decisions.md", "docs/05-distributed-systems.md", "docs/06-testing-and-debugging.md",
                    "docs/07-production.md", "docs/08-quick-reference.md"}


NOT_METRICS = {"ferry_state", "ferry_schedule_fires", "ferry_plugin_entry", "ferry_plugin_h", "ferry_dead_letters",
               "ferry_stage", "ferry_plugin_descriptor", "ferry_plugin"}


def check_metric_name(name, where, metrics, histograms):
    if name in metrics or name in NOT_METRICS or name.startswith("ferry_plugin_") or name.startswith("ferry_err") \
            or name.startswith("ferry_batch") or name.startswith("ferry_host") or name.startswith("ferry_doctest") \
            or name.startswith("ferry_test"):
        return
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return
    if name.endswith("_total") or name.endswith("_seconds") or name.startswith("ferry_runs") or name.startswith("ferry_records") \
            or name.startswith("ferry_http") or name.startswith("ferry_schedule") or name.startswith("ferry_last"):
        problem(where, f"metric {name} is not exported by the daemon (Sources/FerryServer: {', '.join(sorted(metrics))})")


def check_metric_table(metrics):
    path = os.path.join(REPO, "docs/06-testing-and-debugging.md")
    text = open(path, encoding="utf-8").read()
    rows = "\n".join(l for l in text.split("\n") if l.startswith("| `ferry_"))
    named = set(re.findall(r"`(ferry_[a-z0-9_]+)`", rows))
    for prefix_row in re.findall(r"`(ferry_[a-z_]+?_)(?:read_total)`,([^|]*)", rows):
        for suffix in re.findall(r"`_([a-z_]+)`", prefix_row[1]):
            named.add(prefix_row[0] + suffix)
    for metric in sorted(metrics - named):
        problem("docs/06-testing-and-debugging.md", f"the metric table does not list {metric}")


MISSED_TICKS = ("Ticks missed while the daemon was down are neither fired nor counted: after a start, the first "
                "fire is the next tick after that moment. After a stall (the process paused, or the clock stepped "
                "forward), the earliest overdue tick fires once and the later overdue ticks are counted as misfires, "
                "not replayed.")


def check_histogram_buckets():
    text = open(os.path.join(REPO, "Sources/FerryServer/FerryDaemon.swift"), encoding="utf-8").read()
    m = re.search(r'durationHistogramBuckets\["ferry_run_duration_seconds"\]\s*=\s*\[([0-9, .]+)\]', text)
    if not m:
        problem("Sources/FerryServer/FerryDaemon.swift", "no bucket list for ferry_run_duration_seconds to check chapter 6 against")
        return
    numbers = [n.strip() for n in m.group(1).split(",")]
    spoken = ", ".join(numbers[:-1]) + " and " + numbers[-1]
    doc = re.sub(r"\s+", " ", open(os.path.join(REPO, "docs/06-testing-and-debugging.md"), encoding="utf-8").read())
    if spoken not in doc:
        problem("docs/06-testing-and-debugging.md", f"does not give the run-duration buckets as the daemon sets them: {spoken}")


def check_plugin_pages(ferry, scratch):
    """docs/plugins/<name>.md are what `ferry plugins --markdown` writes now."""
    fresh = tempfile.mkdtemp(dir=scratch)
    result = subprocess.run([ferry, "plugins", "--plugins", os.path.join(REPO, ".build/debug"), "--markdown", fresh],
                            capture_output=True, text=True)
    if result.returncode != 0:
        problem("docs/plugins", "ferry plugins --markdown failed: " + result.stderr.strip().replace("\n", " | "))
        return
    pages = os.path.join(REPO, "docs/plugins")
    have = {n for n in os.listdir(pages) if n.endswith(".md") and n != "README.md"} if os.path.isdir(pages) else set()
    made = set(os.listdir(fresh))
    regenerate = "regenerate: ferry plugins --plugins .build/debug --markdown docs/plugins"
    for name in sorted(made - have):
        problem(f"docs/plugins/{name}", f"missing; {regenerate}")
    for name in sorted(have - made):
        problem(f"docs/plugins/{name}", f"no plugin writes this page any more; delete it")
    for name in sorted(made & have):
        if open(os.path.join(fresh, name)).read() != open(os.path.join(pages, name)).read():
            problem(f"docs/plugins/{name}", f"stale: the plugin's descriptor or schema changed; {regenerate}")


def check_image_plugin_folder():
    """Chapter 7's daemon file names the folder the image installs plugins in."""
    containerfile = open(os.path.join(REPO, "Containerfile"), encoding="utf-8").read()
    m = re.search(r"FERRY_PLUGIN_PATH=(\S+)", containerfile)
    if not m:
        problem("Containerfile", "no ENV FERRY_PLUGIN_PATH=… to check chapter 7 against")
        return
    if m.group(1) not in open(os.path.join(REPO, "docs/07-production.md"), encoding="utf-8").read():
        problem("docs/07-production.md", f"does not name the image's plugin folder {m.group(1)} (Containerfile)")


def check_shared_statements():
    for name in ("README.md", "docs/05-distributed-systems.md"):
        text = re.sub(r"\s+", " ", open(os.path.join(REPO, name), encoding="utf-8").read())
        if MISSED_TICKS not in text:
            problem(name, "does not state the missed-tick policy in the shared words (scripts/doccheck.py MISSED_TICKS)")


SELF_TEST_PAGE = """# a page with one mistake of each kind

See [x](no-such-page.md), `Sources/NoSuchModule/X.swift`, `GET /no-such-route` and ferry_runs_totl.
Levels: trace, debug, info, warning, error. Schedules: @hourly or @daily.
Plugins live in /opt/ferry/plugins. A `dir:` entry is for triggers only.

```yaml
a: 1
```

```sh norun:
true
```

```sh doctest
curl -s localhost:8080/no-such-route
```

```json
{"not json"
```
"""

SELF_TEST_EXPECTED = [
    ":3: link to no-such-page.md",
    ":3: `Sources/NoSuchModule/X.swift` is not a file",
    ":3: GET /no-such-route is not a route",
    ":3: metric ferry_runs_totl",
    ":4: a list of log levels without",
    ":4: a list of schedule forms without",
    ":5: /opt/ferry",
    ":5: a dir: entry called triggers-only",
    ":7: code block fence '```yaml' says neither",
    ":11: a norun block must say why",
    ":15: curl GET /no-such-route",
    ":19: not JSON",
]


def self_test():
    """The checks catch each kind of mistake, and name its line."""
    with tempfile.TemporaryDirectory() as directory:
        page = os.path.join(directory, "page.md")
        with open(page, "w") as f:
            f.write(SELF_TEST_PAGE)
        spec, routes = openapi_routes()
        tracked = set()
        check_fences(page, None, spec, routes, directory)
        check_prose(page, routes, tracked, exported_metrics(), histogram_metrics(), log_levels())
    missed = [e for e in SELF_TEST_EXPECTED if not any(e in p for p in problems)]
    for expected in missed:
        print(f"doccheck self-test: not caught: {expected}", file=sys.stderr)
    if missed:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"doccheck self-test passed: {len(SELF_TEST_EXPECTED)} kinds of mistake caught and located", file=sys.stderr)
    return 0


def match_output(expected_path, actual_path):
    """The expected lines appear in the actual output in order; … matches any text."""
    actual = [line.rstrip() for line in open(actual_path, encoding="utf-8", errors="replace").read().split("\n")]
    expected = [line.rstrip() for line in open(expected_path, encoding="utf-8").read().split("\n") if line.strip()]
    position = 0
    for line in expected:
        pattern = re.compile("^" + ".*".join(re.escape(part) for part in line.split("…")) + "$")
        while position < len(actual) and not pattern.match(actual[position]):
            position += 1
        if position == len(actual):
            print(f"the page shows this line, which the block did not print (in this order):\n  {line}")
            return 1
        position += 1
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ferry", help="the ferry binary for validation (default .build/debug/ferry; 'none' skips)")
    parser.add_argument("--self-test", action="store_true", help="prove the checks catch a page with one mistake of each kind")
    parser.add_argument("--match-output", nargs=2, metavar=("EXPECTED", "ACTUAL"),
                        help="the lines of EXPECTED appear in ACTUAL in order (… matches any text)")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.match_output:
        return match_output(*args.match_output)
    if args.self_test:
        return self_test()
    ferry = args.ferry or os.path.join(REPO, ".build/debug/ferry")
    if ferry == "none":
        ferry = None
    elif not os.access(ferry, os.X_OK):
        print(f"doccheck: no {ferry}: build it first (swift build --product ferry)", file=sys.stderr)
        return 2
    files = args.files or sorted(
        [os.path.join(REPO, "README.md")] + glob.glob(os.path.join(REPO, "docs/*.md"))
        + glob.glob(os.path.join(REPO, "docs/plugins/*.md")) + glob.glob(os.path.join(REPO, "Plugins/*/README.md")))
    spec, routes = openapi_routes()
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split())
    metrics, histograms, levels = exported_metrics(), histogram_metrics(), log_levels()
    scratch_root = os.path.join(REPO, ".build/doctest-tmp")
    os.makedirs(scratch_root, mode=0o755, exist_ok=True)
    totals = {"run": 0, "validated": 0, "norun": 0}
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
        for path in files:
            for key, value in check_fences(path, ferry, spec, routes, scratch).items():
                totals[key] += value
            check_prose(path, routes, tracked, metrics, histograms, levels)
        if not args.files and ferry:
            check_plugin_pages(ferry, scratch)
    openapi_text = open(os.path.join(REPO, "docs/openapi.yaml"), encoding="utf-8").read()
    for number, line in enumerate(openapi_text.split("\n"), 1):
        if "@hourly" in line and not ("@every" in line and "@yearly" in line):
            problem(f"docs/openapi.yaml:{number}", "a list of schedule forms without @every or @yearly")
        for name in re.findall(r"\bferry_[a-z0-9_]+", line):
            check_metric_name(name, f"docs/openapi.yaml:{number}", metrics, histograms)
    if not args.files:
        check_metric_table(metrics)
        check_shared_statements()
        check_histogram_buckets()
        check_image_plugin_folder()
    print(f"doccheck: {totals['run']} blocks run by doctest.sh, {totals['validated']} validated, "
          f"{totals['norun']} marked norun, in {len(files)} files", file=sys.stderr)
    for line in problems:
        print(line)
    if problems:
        print(f"doccheck: {len(problems)} problems", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
