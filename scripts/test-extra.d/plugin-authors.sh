#!/usr/bin/env bash
# A plugin author's path, outside the repository, as part of `make test` / CI:
# install Ferry under a fresh prefix (scripts/install.sh: the only step that
# reads this tree), then in an empty folder under /tmp, with nothing but the
# installed files:
#   - the C transform of the installed docs/writing-a-plugin.md (§4, on
#     libbson), built and checked with the guide's own shell blocks, verbatim;
#   - `ferry plugin new` C and Swift transforms, each README's shell blocks run
#     verbatim (build, `ferry plugin test`, a pipeline through `ferry run`);
# then `scripts/install.sh uninstall` must leave no file behind.
#
# FERRY_PLUGIN_AUTHORS_CONFIGURATION: the build to install, debug (default:
# the one scripts/test.sh has just built, so nothing is rebuilt) or release
# (what `make install` installs; a full release build takes many minutes).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log() { printf 'plugin-authors: %s\n' "$*" >&2; }
fail() { printf 'plugin-authors: FAIL: %s\n' "$*" >&2; exit 1; }

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi
for tool in cc make pkg-config; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done
pkg-config --exists libbson-1.0 || fail "libbson is not installed (apt-get install libbson-dev)"

# Folders made here are owned by this user and closed to others: ferry loads
# plugins from nowhere else.
umask 022
top="$(mktemp -d /tmp/ferry-plugin-authors.XXXXXX)"
trap 'rm -rf "$top"' EXIT
prefix="$top/prefix"
work="$top/work"
mkdir -m 0755 "$work"

log "install into $prefix"
FERRY_INSTALL_CONFIGURATION="${FERRY_PLUGIN_AUTHORS_CONFIGURATION:-debug}" "$REPO_ROOT/scripts/install.sh" install "$prefix"

# From here on, only what was installed: no path into the tree, no variable naming it.
cd "$work"
unset FERRY_PLUGIN_PATH FERRY_SOURCE_DIR FERRY_PLUGIN_TRUST FERRY_STATE_DIR
export PATH="$prefix/bin:$PATH" PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(command -v ferry)" = "$prefix/bin/ferry" ] || fail "ferry on PATH is $(command -v ferry), not the installed one"
ferry plugins | grep -q "$prefix/lib/ferry/plugins/libFerryGenerate.so" \
    || fail "the installed ferry does not list its plugins from $prefix/lib/ferry/plugins"

# Prints the body of every fenced block of a markdown file whose opening fence
# matches $2 (an awk regular expression), blocks separated by nothing.
blocks() {
    awk -v open="$2" '
        !inside && $0 ~ open { inside = 1; next }
        inside && /^```[ \t]*$/ { inside = 0; next }
        inside { print }
    ' "$1"
}

# Runs the shell blocks of $1 (a markdown file) that contain $2, in order, in the current folder.
run_blocks() {
    local markdown="$1" marker="$2" script
    script="$(mktemp "$top/blocks.XXXXXX")"
    awk -v marker="$marker" '
        !inside && /^```sh/ { inside = 1; body = ""; next }
        inside && /^```[ \t]*$/ { inside = 0; if (index(body, marker)) printf "%s", body; next }
        inside { body = body $0 "\n" }
    ' "$markdown" >"$script"
    [ -s "$script" ] || fail "$markdown: no shell block mentions $marker"
    log "running the shell blocks of $markdown that mention $marker:"
    sed 's/^/    | /' "$script" >&2
    bash -euo pipefail "$script" || fail "$markdown: a shell block failed (above)"
}

# ---- the guide's C transform, on libbson -------------------------------------
guide="$prefix/share/doc/ferry/writing-a-plugin.md"
[ -f "$guide" ] || fail "the guide is not installed at $guide"
mkdir -m 0755 guide && cd guide
blocks "$guide" '^```c( compile)?$' | awk '/^\/\* stamp.c:/ { found = 1 } found' >stamp.c
grep -q 'ferry_plugin_entry' stamp.c || fail "no stamp.c in the guide's C blocks"
run_blocks "$guide" "libstamp.so"
[ "$(wc -l <stamped.jsonl)" -eq 100 ] || fail "the stamp pipeline wrote $(wc -l <stamped.jsonl) records, not 100"
grep -q '"stamped_by" : "guide"' stamped.jsonl || fail "stamped.jsonl has no stamped_by field: $(head -1 stamped.jsonl)"
cd "$work"

# ---- `ferry plugin new`: C and Swift transforms, READMEs verbatim -------------
for lang in c swift; do
    name="shout-$lang"
    ferry plugin new "$name" --kind transform --lang "$lang" >/dev/null
    grep -rq "$REPO_ROOT" "$name" && fail "$name refers to the Ferry source tree ($REPO_ROOT)"
    if [ "$lang" = c ]; then
        grep -q '^/' <(grep -v '^#' "$name/Makefile") && fail "$name/Makefile holds an absolute path"
    fi
    cd "$name"
    run_blocks README.md "ferry"
    [ "$(wc -l <"$name-out.jsonl")" -eq 25 ] || fail "$name's pipeline wrote $(wc -l <"$name-out.jsonl") records, not 25"
    grep -q '"category" : "BOOKS"' "$name-out.jsonl" || fail "$name did not upper-case the category: $(head -1 "$name-out.jsonl")"
    cd "$work"
done

# ---- uninstall ---------------------------------------------------------------
"$REPO_ROOT/scripts/install.sh" uninstall "$prefix"
left="$(find "$prefix" -type f -o -type l)"
[ -z "$left" ] || fail "uninstall left files behind: $left"
log "ok: installed tree, the guide's C transform and both scaffolds built, checked and run from outside the repo; uninstall removed every file"
