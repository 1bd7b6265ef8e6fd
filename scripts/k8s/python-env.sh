# Sourced by scripts/validate-k8s.sh and scripts/smoke-k8s.sh: makes sure the
# virtualenv exists and holds the pinned packages they import. Expects
# REPO_ROOT; sets FERRY_VENV.
#
#   FERRY_VENV   Python virtualenv (default: <repo>/.venv, as scripts/setup.sh)
#   FERRY_PYTHON Python used to create the venv (default: python3)

FERRY_VENV="${FERRY_VENV:-$REPO_ROOT/.venv}"
FERRY_PYTHON="${FERRY_PYTHON:-python3}"
# Pinned: what passes changes with their releases. kubernetes-validate carries
# the Kubernetes schemas (and PyYAML); dockerfile is BuildKit's own
# Containerfile parser.
K8S_PYTHON_PACKAGES=(kubernetes-validate==1.37.0 dockerfile==3.4.0)

k8s_env_die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

if [ ! -x "$FERRY_VENV/bin/python" ]; then
    printf '%s: venv: creating %s\n' "$(basename "$0")" "$FERRY_VENV" >&2
    "$FERRY_PYTHON" -m venv "$FERRY_VENV" || k8s_env_die "cannot create a virtualenv with $FERRY_PYTHON"
    [ -e "$FERRY_VENV/.gitignore" ] || printf '*\n' >"$FERRY_VENV/.gitignore"
fi

for requirement in "${K8S_PYTHON_PACKAGES[@]}"; do
    name="${requirement%%==*}"
    wanted="${requirement#*==}"
    installed="$("$FERRY_VENV/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$name" 2>/dev/null || true)"
    if [ "$installed" != "$wanted" ]; then
        printf '%s: %s: installing %s from PyPI%s\n' "$(basename "$0")" "$name" "$wanted" "${installed:+ (had $installed)}" >&2
        "$FERRY_VENV/bin/python" -m pip install --quiet "$requirement" || k8s_env_die "pip could not install $requirement"
    fi
done
export PYTHONDONTWRITEBYTECODE=1
