#!/usr/bin/env bash
# setup.sh — install everything Ferry needs to build and test, on Debian 12.
#
# Idempotent: every step checks first and does nothing when already satisfied,
# so it is cheap to run before every build/test (scripts/test.sh does so).
# The project's machines are recreated from scratch, so nothing may rely on
# something installed by hand: if Ferry needs it, it is installed here.
#
# Environment:
#   FERRY_VENV   Python virtualenv for SecantusDB and croniter (default: <repo>/.venv)
#   FERRY_PYTHON Python used to create the venv (default: python3)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY_VENV="${FERRY_VENV:-$REPO_ROOT/.venv}"
FERRY_PYTHON="${FERRY_PYTHON:-python3}"

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Root runs apt-get directly; anyone else goes through sudo.
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()  # only a problem if something actually has to be installed
fi

# --- 1. Debian packages ------------------------------------------------------
# libpq/libmongoc/libbson/libpcre2 headers are linked by the Swift targets;
# postgresql provides the server binaries for the test servers (openssl makes
# their throwaway TLS certificates); pkg-config is
# how SwiftPM finds the C libraries. curl and python3-yaml are for the doc test
# (the daemon examples call the API; scripts/doccheck.py reads YAML).
PACKAGES=(libpq-dev libmongoc-dev libbson-dev libpcre2-dev postgresql pkg-config openssl curl python3-yaml)

# A fresh Debian 12 may have no Python or no venv/ensurepip module; both are
# needed for the SecantusDB virtualenv below. Only added when missing.
if ! "$FERRY_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ "$FERRY_PYTHON" = python3 ]; then
        PACKAGES+=(python3 python3-venv)
    else
        die "$FERRY_PYTHON cannot create virtualenvs (no venv/ensurepip module)"
    fi
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    # `dpkg -s` also succeeds for removed-but-not-purged packages, so check
    # the status line says "install ok installed".
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    log "debian packages: all present (${PACKAGES[*]})"
else
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        die "need root or sudo to install: ${missing[*]}"
    fi
    log "debian packages: installing ${missing[*]}"
    # apt-get update only when something must be installed: it is the slow
    # part, and a fresh machine's package lists may be empty or stale.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    log "debian packages: installed ${missing[*]}"
fi

# --- 2. Python virtualenv: SecantusDB (MongoDB wire protocol), croniter -----
if [ ! -e "$FERRY_VENV" ]; then
    log "venv: creating $FERRY_VENV"
    "$FERRY_PYTHON" -m venv "$FERRY_VENV"
elif ! "$FERRY_VENV/bin/python" -c '' >/dev/null 2>&1; then
    # e.g. the Python it was made from has gone: rebuild it in place.
    log "venv: $FERRY_VENV is broken, recreating"
    "$FERRY_PYTHON" -m venv --clear "$FERRY_VENV"
else
    log "venv: present at $FERRY_VENV"
fi

# Keep git from ever picking up the venv (Python 3.13+ does this itself).
[ -e "$FERRY_VENV/.gitignore" ] || printf '*\n' >"$FERRY_VENV/.gitignore"

if "$FERRY_VENV/bin/python" -c 'import secantus' >/dev/null 2>&1; then
    log "secantusdb: already installed in venv"
else
    log "secantusdb: installing from PyPI"
    "$FERRY_VENV/bin/python" -m pip install --quiet secantusdb
    "$FERRY_VENV/bin/python" -c 'import secantus' \
        || die "secantusdb installed but 'import secantus' still fails"
    log "secantusdb: installed"
fi

# croniter is the reference the cron schedule tests check Ferry's next-fire times against
# (scripts/cron_reference.py); the tests fail, rather than skip, without it.
if "$FERRY_VENV/bin/python" -c 'import croniter' >/dev/null 2>&1; then
    log "croniter: already installed in venv"
else
    log "croniter: installing from PyPI"
    "$FERRY_VENV/bin/python" -m pip install --quiet croniter
    "$FERRY_VENV/bin/python" -c 'import croniter' \
        || die "croniter installed but 'import croniter' still fails"
    log "croniter: installed"
fi

# --- 3. Swift toolchain ------------------------------------------------------
# Cannot be installed from the package registries; only checked.
if command -v swift >/dev/null 2>&1; then
    log "swift: $(swift --version 2>/dev/null | head -n1)"
else
    hint=""
    [ -x /opt/swift/usr/bin/swift ] && hint=" (found /opt/swift/usr/bin/swift: add /opt/swift/usr/bin to PATH)"
    die "swift not found on PATH: install Swift 6.3 (https://www.swift.org/install/linux/)$hint"
fi

log "done"
