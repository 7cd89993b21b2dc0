#!/usr/bin/env bash
# Install what grid-mgmt needs on Debian/Ubuntu: PostgreSQL + PostGIS and redis-server (when root),
# the .venv with the package (editable) and its dev tools, and requirements.lock. Idempotent; quick when
# nothing changed. One line per step; details of a failed step are in var/install.log.
#   PYTHON=python3.12 scripts/install.sh    # use another interpreter for a new .venv
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
STAMP=$VENV/.install-stamp
LOCK=$ROOT/requirements.lock
PYTHON=${PYTHON:-python3}
LOG=$ROOT/var/install.log
mkdir -p "$ROOT/var"
: >"$LOG"

step() { printf 'install: %s\n' "$*"; }
fail() {
    printf 'install: FAILED: %s (last lines of %s below)\n' "$1" "$LOG" >&2
    tail -n 30 "$LOG" >&2 || true
    exit 1
}
quiet() { "$@" >>"$LOG" 2>&1; }

# --- system packages -------------------------------------------------------------------------------------
pg_majors() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/postgres" ] && basename "$(dirname "$dir")"
    done
    return 0
}

packages=()
majors=$(pg_majors)
if [ -z "$majors" ]; then
    packages+=(postgresql postgresql-15-postgis-3)
else
    for major in $majors; do
        [ -f "/usr/share/postgresql/$major/extension/postgis.control" ] || packages+=("postgresql-$major-postgis-3")
    done
fi
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || packages+=(redis-server)
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    fail "$PYTHON not found (install Python 3.11+ or set PYTHON=)"
fi
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    packages+=(python3-venv)
fi

if [ ${#packages[@]} -eq 0 ]; then
    step "system packages ok (PostgreSQL ${majors//$'\n'/ } with PostGIS, redis-server)"
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-get update -q || fail "apt-get update"
    quiet apt-get install -y -q --no-install-recommends "${packages[@]}" || fail "apt-get install ${packages[*]}"
    step "installed ${packages[*]}"
else
    step "WARNING: missing ${packages[*]}; install them as root (or point GRID_DATABASE_URL/GRID_REDIS_URL elsewhere)"
fi

# --- virtualenv ------------------------------------------------------------------------------------------
if [ -x "$VENV/bin/python" ]; then
    step "venv ok ($("$VENV/bin/python" -V 2>&1))"
else
    quiet "$PYTHON" -m venv "$VENV" || fail "$PYTHON -m venv .venv"
    step "created .venv ($("$VENV/bin/python" -V 2>&1))"
fi

# --- python packages -------------------------------------------------------------------------------------
up_to_date() {
    [ -f "$STAMP" ] && [ "$STAMP" -nt "$ROOT/pyproject.toml" ] || return 1
    [ ! -f "$LOCK" ] || [ "$STAMP" -nt "$LOCK" ] || return 1
    [ -x "$VENV/bin/grid-mgmt" ]
}
if up_to_date; then
    step "python packages up to date"
else
    constraints=()
    [ -f "$LOCK" ] && constraints=(-c "$LOCK")
    quiet "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "$ROOT[dev]" "${constraints[@]}" \
        || fail "pip install -e '.[dev]'"
    touch "$STAMP"
    step "installed python packages${constraints:+ (constrained by requirements.lock)}"
fi

# --- lock file -------------------------------------------------------------------------------------------
if [ -f "$LOCK" ]; then
    step "requirements.lock present"
else
    {
        echo "# Exact versions the project is tested with; used as pip constraints by scripts/install.sh."
        echo "# Regenerate: rm requirements.lock && make install (or: make lock)."
        "$VENV/bin/python" -m pip freeze --disable-pip-version-check --exclude-editable
    } >"$LOCK.tmp" 2>>"$LOG" || fail "pip freeze"
    mv "$LOCK.tmp" "$LOCK"
    touch "$STAMP"
    step "wrote requirements.lock ($(grep -cv '^#' "$LOCK") packages)"
fi
