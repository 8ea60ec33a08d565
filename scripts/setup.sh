#!/usr/bin/env bash
# Fresh-machine set-up: virtualenv, the pinned Dagster family and tools, release build of the
# extension. Idempotent: re-running only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if ! command -v cargo >/dev/null 2>&1; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || { echo "setup: cargo (Rust toolchain) is required" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
# One lock for everything: the Dagster family pins and the dev tools (see constraints.txt).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c constraints.txt \
    dagster dagster-graphql dagster-webserver maturin pytest pytest-xdist ruff mypy playwright
# dagster-postgres has no release for the pinned dagster (constraints.txt): a venv made before
# the pin moved has one that pins an older dagster; it goes, so the family stays consistent.
if "$VENV/bin/python" -m pip show --quiet dagster-postgres >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip uninstall --quiet --disable-pip-version-check -y dagster-postgres
fi

# The browser test (tests/browser) drives Debian's chromium through Playwright; Playwright's own
# browser download (`playwright install`) is never used. Installed when missing, as root or
# through sudo.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# The PostgreSQL suites and `dagster-rs bench --backend postgres` start a throwaway server
# (dagster_rs.pg_cluster) from Debian's postgresql binaries (/usr/lib/postgresql/<major>/bin; initdb
# is not on PATH there). Installed when missing, without the distribution's own "main" cluster.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        "${SUDO[@]}" mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" | "${SUDO[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

# The PostgreSQL driver's TLS (postgres-openssl) links the system OpenSSL: its headers and
# pkg-config are needed to build the extension. Installed when missing.
if ! pkg-config --exists openssl 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config >/dev/null
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
# maturin reports every already-installed dependency; keep its output for failures only.
log=$(mktemp)
if ! "$VENV/bin/maturin" develop --release --quiet >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
# Every installed package's requirements hold (the family installed as one, dagster-rs's range).
"$VENV/bin/python" -m pip check --disable-pip-version-check >/dev/null
