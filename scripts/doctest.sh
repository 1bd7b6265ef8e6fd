#!/usr/bin/env bash
# doctest.sh — run the shell examples in README.md, docs/ and the plugins'
# READMEs against the real build, so the docs cannot drift from the code.
#
#   scripts/doctest.sh                 every runnable block, after the static
#                                      checks of scripts/doccheck.py (every block
#                                      marked, YAML validated, routes, metrics, …)
#   scripts/doctest.sh docs/06-*.md    only these files
#   scripts/doctest.sh --list          where the runnable blocks are, without running them
#   scripts/doctest.sh --self-test     prove the runner can fail: feed it broken
#                                      blocks and expect each to be reported
#
# A block is runnable when its opening fence is exactly ```sh doctest, or
# ```sh doctest from-root for a block written to be typed at the repository
# root (README's): it then runs in a copy of the root — every top-level entry a
# symlink, except examples/, which is copied, so that what the block writes
# there stays out of the tree. A ```text output block right after a runnable
# block shows the reader what it prints: its lines must appear in that output, in
# order, with … standing for any text (times, rates, paths).
# ```sh doctest session=NAME blocks share one
# working directory, in the order they appear (a tutorial's steps build on each
# other); it is removed at the end. Every other block must say in its fence how it
# is checked or why it cannot run (scripts/doccheck.py). Each runnable block runs
#   - as its own bash script with `set -euo pipefail`,
#   - in a fresh empty temp directory (its working directory), under
#     .build/doctest-tmp rather than /tmp: blocks build plugins there, and ferry
#     refuses plugin files below a folder others can write (FERRY_DOCTEST_TMPDIR
#     overrides),
#   - with `ferry` on PATH pointing at the real debug build (.build/debug/ferry),
#     FERRY_PLUGIN_PATH=<repo>/.build/debug and the repo root in $FERRY_REPO,
#   - in its own session (setsid): anything it leaves running when it ends
#     (a forgotten `ferry serve &`) is killed and fails the block,
#   - within FERRY_DOCTEST_TIMEOUT seconds (default 300).
# Blocks that need PostgreSQL or MongoDB read the FERRY_TEST_* variables; when
# they are not set, the env file of scripts/test-servers.sh
# (FERRY_TEST_ENV_FILE, else .ferry-test/servers.env) is read if it exists.
# Each block's location (file:line of its opening fence) is printed; a failure
# prints the block's output and makes the script exit 1.
#
# Before running, `swift build` brings .build/debug up to date (a no-op when
# it is); FERRY_DOCTEST_NO_BUILD=1 skips that and uses the build as it is, and
# FERRY_DOCTEST_FERRY=PATH runs another ferry binary, FERRY_DOCTEST_NO_CHECK=1
# leaves out the static checks. FERRY_DOCTEST_VERBOSE=1
# shows the output of passing blocks too.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO_ROOT/scripts/doctest.sh"
TIMEOUT="${FERRY_DOCTEST_TIMEOUT:-300}"
WORK_ROOT="${FERRY_DOCTEST_TMPDIR:-$REPO_ROOT/.build/doctest-tmp}"

log() { printf 'doctest: %s\n' "$*" >&2; }
die() { printf 'doctest: error: %s\n' "$*" >&2; exit 2; }

[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "FERRY_DOCTEST_TIMEOUT must be a positive integer (got '$TIMEOUT')"
mkdir -p -m 0755 "$WORK_ROOT" || die "cannot create $WORK_ROOT"

# Writes one file per runnable block into $2 (block-0001.sh, …) and an index
# line "NNNN<TAB>file:line" per block to stdout. Fences inside other fences
# (e.g. ````markdown that shows a ```sh doctest) do not count: as in CommonMark,
# a fence at the start of a line opens a block, and only a bare fence at least
# as long as the opening one closes it.
extract() {
    local outdir="$1"
    shift
    awk -v outdir="$outdir" '
        FNR == 1 {
            if (infence && runnable) unterminated()
            infence = 0; runnable = 0
        }
        {
            if (!infence) {
                if ($0 ~ /^```sh doctest( from-root| session=[A-Za-z0-9_-]+)?[ \t]*$/) {
                    infence = 1; runnable = 1; fence = 3; n++
                    file = sprintf("%s/block-%04d.sh", outdir, n)
                    where = "empty"
                    if ($0 ~ /from-root/) where = "root"
                    if (match($0, /session=[A-Za-z0-9_-]+/)) where = "session:" substr($0, RSTART + 8, RLENGTH - 8)
                    printf "%04d\t%s:%d\t%s\n", n, FILENAME, FNR, where
                    blockfile = FILENAME; blockline = FNR
                    printf "" > file
                } else if ($0 ~ /^```text output[ \t]*$/ && n > 0 && FILENAME == blockfile) {
                    # What the runnable block above prints, shown to the reader: checked.
                    infence = 1; runnable = 2; fence = 3
                    expected = sprintf("%s/block-%04d.expected", outdir, n)
                    printf "" > expected
                } else if (match($0, /^```+/)) {
                    infence = 1; runnable = 0; fence = RLENGTH
                }
            } else if ($0 ~ /^```+[ \t]*$/ && match($0, /^`+/) && RLENGTH >= fence) {
                if (runnable == 1) close(file)
                if (runnable == 2) close(expected)
                infence = 0; runnable = 0
            } else if (runnable == 1) {
                print $0 > file
            } else if (runnable == 2) {
                print $0 > expected
            }
        }
        function unterminated() { printf "%s:%d: unterminated doctest block\n", blockfile, blockline > "/dev/stderr"; bad = 1 }
        END { if (infence && runnable) unterminated(); exit bad }
    ' "$@"
}

# Runs one block; prints its output on failure. Returns non-zero on failure.
run_block() {
    local script="$1" location="$2" bindir="$3" where="${4:-empty}"
    local workdir out rc=0 pid deadline leftover=0 timed_out=0 entry
    case "$where" in
        session:*)
            workdir="$SESSIONS/${where#session:}"
            mkdir -p -m 0755 "$workdir"
            ;;
        *) workdir="$(mktemp -d "$WORK_ROOT/ferry-doctest.XXXXXX")" ;;
    esac
    out="$workdir.out"
    if [ "$where" = root ]; then
        for entry in "$REPO_ROOT"/* "$REPO_ROOT"/.build "$REPO_ROOT"/.venv; do
            [ -e "$entry" ] || continue
            case "$(basename "$entry")" in
                examples) cp -R "$entry" "$workdir/examples" ;;
                *) ln -s "$entry" "$workdir/$(basename "$entry")" ;;
            esac
        done
    fi
    {
        printf '#!/usr/bin/env bash\n# %s\nset -euo pipefail\n' "$location"
        cat "$script"
    } >"$workdir.sh"
    (
        cd "$workdir"
        # A clean, predictable environment: the real build first on PATH, no
        # state directory or API token leaking in from the caller.
        unset FERRY_STATE_DIR FERRY_API_TOKEN FERRY_SOURCE_DIR
        export PATH="$bindir:$PATH" FERRY_PLUGIN_PATH="$REPO_ROOT/.build/debug" FERRY_REPO="$REPO_ROOT"
        exec setsid bash "$workdir.sh"
    ) </dev/null >"$out" 2>&1 &
    pid=$!
    deadline=$((SECONDS + TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            timed_out=1
            kill -TERM -- "-$pid" 2>/dev/null || true
            sleep 2
            kill -KILL -- "-$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    wait "$pid" || rc=$?
    # Whatever the block started in the background and did not stop.
    if kill -0 -- "-$pid" 2>/dev/null; then
        sleep 1
        if kill -0 -- "-$pid" 2>/dev/null; then
            leftover=1
            kill -TERM -- "-$pid" 2>/dev/null || true
            sleep 1
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
    fi
    local verdict="" expected="${script%.sh}.expected"
    if ((timed_out)); then
        verdict="timed out after ${TIMEOUT}s"
    elif ((rc != 0)); then
        verdict="exit $rc"
    elif ((leftover)); then
        verdict="left processes running (stop what you start in the background)"
    elif [ -f "$expected" ] && ! python3 "$REPO_ROOT/scripts/doccheck.py" --match-output "$expected" "$out" >"$out.diff" 2>&1; then
        verdict="its output is not the output the page shows below it"
        cat "$out.diff" >>"$out"
    fi
    rm -f "$out.diff"
    if [ -n "$verdict" ]; then
        printf 'FAIL  %s: %s\n' "$location" "$verdict"
        printf -- '----- output of %s -----\n' "$location"
        sed 's/^/  | /' "$out"
        printf -- '----- end of %s -----\n' "$location"
    else
        printf 'ok    %s\n' "$location"
        if [ "${FERRY_DOCTEST_VERBOSE:-0}" = 1 ]; then sed 's/^/  | /' "$out"; fi
    fi
    case "$where" in
        session:*) rm -f "$workdir.sh" "$out" ;;
        *) rm -rf "$workdir" "$workdir.sh" "$out" ;;
    esac
    [ -z "$verdict" ]
}

self_test() {
    local dir rc=0 output
    dir="$(mktemp -d "${TMPDIR:-/tmp}/ferry-doctest-self.XXXXXX")"
    trap 'rm -rf "$dir"' RETURN
    # Line numbers below are what the runner must report.
    cat >"$dir/selftest.md" <<'EOF'
# self-test
```sh doctest
echo fine; test "$(pwd)" != "$FERRY_REPO"; command -v ferry >/dev/null
```
```sh
false   # plain sh: an illustration, never run
```
```sh doctest
echo about to fail; false
```
```sh doctest
echo "$UNSET_VARIABLE_FOR_SELF_TEST"
```
```sh doctest
false | cat
echo pipefail did not stop me
```
```sh doctest
sleep 300 &
```
````markdown
```sh doctest
false   # inside another fence: not a block
```
````
```sh doctest from-root
test -f Package.swift && test -d examples && test ! -L examples && test "$(pwd)" != "$FERRY_REPO"
```
```sh doctest session=pair
echo kept > step1.txt
```
```sh doctest session=pair
grep -q kept step1.txt
```
```sh doctest
printf 'took 0.42s\nread 3, written 3\n'
```
```text output
took …s
read 3, written 3
```
```sh doctest
echo 'read 3, written 2'
```
```text output
read 3, written 3
```
EOF
    # The blocks need no real ferry: the self-test works before the first build.
    output="$(FERRY_DOCTEST_NO_CHECK=1 FERRY_DOCTEST_NO_BUILD=1 FERRY_DOCTEST_TIMEOUT=60 FERRY_DOCTEST_FERRY=/bin/true "$SELF" "$dir/selftest.md" 2>&1)" || rc=$?
    local problems=()
    [ "$rc" -eq 1 ] || problems+=("expected exit 1 from the broken blocks, got $rc")
    grep -q "^ok    $dir/selftest.md:2\$" <<<"$output" || problems+=("the passing block (line 2) was not reported ok")
    grep -q "^FAIL  $dir/selftest.md:8: exit 1" <<<"$output" || problems+=("'false' (line 8) was not reported as a failure")
    grep -q "about to fail" <<<"$output" || problems+=("the failing block's output was not shown")
    grep -q "^FAIL  $dir/selftest.md:11: exit" <<<"$output" || problems+=("an unset variable (line 11) did not fail: no set -u")
    grep -q "^FAIL  $dir/selftest.md:14: exit" <<<"$output" || problems+=("a failing pipeline (line 14) did not fail: no pipefail")
    grep -q "pipefail did not stop me" <<<"$output" && problems+=("the block went on after a failing pipeline")
    grep -q "^FAIL  $dir/selftest.md:18: left processes running" <<<"$output" || problems+=("a leftover background process (line 18) was not caught")
    grep -q "selftest.md:5\$" <<<"$output" && problems+=("a plain sh block (line 5) was run")
    grep -q "selftest.md:22\$" <<<"$output" && problems+=("a block inside another fence (line 22) was run")
    grep -q "^ok    $dir/selftest.md:26\$" <<<"$output" || problems+=("a from-root block (line 26) did not run in a copy of the repository root")
    grep -q "^ok    $dir/selftest.md:32\$" <<<"$output" || problems+=("the second block of a session (line 32) did not see the first one's file")
    grep -q "^ok    $dir/selftest.md:35\$" <<<"$output" || problems+=("a block whose output matches the page (line 35) was not reported ok")
    grep -q "^FAIL  $dir/selftest.md:42: its output is not the output the page shows" <<<"$output" || problems+=("a block whose output differs from the page (line 42) was not caught")
    grep -q "^doctest: 5 passed, 5 failed\$" <<<"$output" || problems+=("the summary does not say 5 passed, 5 failed")
    if [ "${#problems[@]}" -gt 0 ]; then
        printf '%s\n' "$output" | sed 's/^/  | /' >&2
        for problem in "${problems[@]}"; do log "self-test: $problem"; done
        log "self-test FAILED"
        return 1
    fi
    log "self-test passed: broken blocks are caught and located"
}

list_only=0
files=()
case "${1:-}" in
    --self-test)
        self_test
        exit $?
        ;;
    --list)
        list_only=1
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$SELF" | grep -v '^set ' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac
check_args=()
if [ "$#" -gt 0 ]; then
    files=("$@")
    check_args=("$@")
else
    shopt -s nullglob
    files=("$REPO_ROOT"/README.md "$REPO_ROOT"/docs/*.md "$REPO_ROOT"/docs/plugins/*.md "$REPO_ROOT"/Plugins/*/README.md)
    shopt -u nullglob
    [ "${#files[@]}" -gt 0 ] || die "no docs/*.md under $REPO_ROOT"
fi
for file in "${files[@]}"; do [ -f "$file" ] || die "no such file: $file"; done

blocks="$(mktemp -d "${TMPDIR:-/tmp}/ferry-doctest-blocks.XXXXXX")"
bindir="$(mktemp -d "${TMPDIR:-/tmp}/ferry-doctest-bin.XXXXXX")"
SESSIONS="$(mktemp -d "$WORK_ROOT/ferry-doctest-sessions.XXXXXX")"
trap 'rm -rf "$blocks" "$bindir" "$SESSIONS"' EXIT
# Paths relative to the repo read better in the report.
display=()
for file in "${files[@]}"; do
    absolute="$(cd "$(dirname "$file")" && pwd)/$(basename "$file")"
    display+=("${absolute#"$REPO_ROOT"/}")
done
index="$(cd "$REPO_ROOT" 2>/dev/null && extract "$blocks" "${display[@]}")" \
    || index="$(extract "$blocks" "${files[@]}")" || die "cannot extract the blocks"

if [ "$list_only" -eq 1 ]; then
    [ -z "$index" ] || cut -f2 <<<"$index"
    exit 0
fi
[ -n "$index" ] || die "no \`\`\`sh doctest blocks in: ${files[*]}"
if [ -z "${FERRY_TEST_PG_DSN:-}" ]; then
    servers_env="${FERRY_TEST_ENV_FILE:-$REPO_ROOT/.ferry-test/servers.env}"
    if [ -f "$servers_env" ]; then
        set -a
        # shellcheck disable=SC1090
        . "$servers_env"
        set +a
    fi
fi

if [ "${FERRY_DOCTEST_NO_BUILD:-0}" != 1 ]; then
    if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
        export PATH="$PATH:/opt/swift/usr/bin"
    fi
    log "swift build (debug: the ferry binary and every plugin the docs use)"
    (cd "$REPO_ROOT" && swift build) >"$blocks/build.log" 2>&1 || {
        tail -n 40 "$blocks/build.log" >&2
        die "swift build failed"
    }
fi
FERRY_BIN="${FERRY_DOCTEST_FERRY:-$REPO_ROOT/.build/debug/ferry}"
[ -x "$FERRY_BIN" ] || die "no $FERRY_BIN: run swift build"
ln -s "$FERRY_BIN" "$bindir/ferry"
command -v curl >/dev/null 2>&1 || die "curl is needed by the ferry serve examples (apt-get install curl)"

passed=0
failed=0
failures=()
# The static checks first: every block marked, YAML validated, routes and
# metric names real, no stale generated page.
if [ "${FERRY_DOCTEST_NO_CHECK:-0}" != 1 ]; then
    if python3 "$REPO_ROOT/scripts/doccheck.py" --ferry "$FERRY_BIN" ${check_args[@]+"${check_args[@]}"}; then
        printf 'ok    scripts/doccheck.py\n'
        passed=$((passed + 1))
    else
        printf 'FAIL  scripts/doccheck.py: the problems above\n'
        failed=$((failed + 1))
        failures+=("scripts/doccheck.py")
    fi
fi
while IFS=$'\t' read -r number location where; do
    if run_block "$blocks/block-$number.sh" "$location" "$bindir" "$where"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$location")
    fi
done <<<"$index"

total=$((passed + failed))
log "$total blocks run"
printf 'doctest: %d passed, %d failed\n' "$passed" "$failed"
if [ "$failed" -gt 0 ]; then
    log "failed: ${failures[*]}"
    exit 1
fi
