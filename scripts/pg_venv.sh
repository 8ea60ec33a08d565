#!/usr/bin/env bash
# A second virtualenv (.venv-pg) for the PostgreSQL oracle: stock dagster-postgres, whose newest
# release (0.29.27) pins dagster==1.13.27, one release behind constraints.txt's Dagster family
# (dagster-webserver has no 1.13.29 for the family to move forward to). It holds the 1.13.27 family,
# dagster-postgres 0.29.27 and psycopg2-binary, pinned by the constraints file it writes
# (.venv-pg/constraints.txt: constraints.txt with the family moved, plus the PostgreSQL pins).
# As in scripts/oldest_venv.sh, it gets no build of its own: python/ goes on its path, so it imports
# the very extension scripts/setup.sh built (one build, one .so, the same CPython). Idempotent.
# Prints the venv's python. Used by tests/test_pg_stock.py (skipped without it),
# scripts/pg_stock_schema.sh (docs/pg-stock-schema.sql) and the PostgreSQL differential suite
# (`.venv-pg/bin/python -m pytest tests/pg`, run by scripts/test.sh with pytest-xdist).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_PG=${VENV_PG:-.venv-pg}
PYTHON=${PYTHON:-python3}
DAGSTER_PG_RELEASE=${DAGSTER_PG_RELEASE:-1.13.27}
DAGSTER_POSTGRES=${DAGSTER_POSTGRES:-0.29.27}
PSYCOPG2=${PSYCOPG2:-2.9.13}

if [ ! -x "$VENV_PG/bin/python" ]; then
    "$PYTHON" -m venv "$VENV_PG"
fi
# The storage tests do not use the webserver family; it is left out, as in .venv-oldest.
sed -E -e "s/^(dagster|dagster-pipes|dagster-shared)==.*/\1==$DAGSTER_PG_RELEASE/" \
    -e '/^dagster-(graphql|webserver|postgres)==/d' -e '/^psycopg2-binary==/d' \
    constraints.txt > "$VENV_PG/constraints.txt"
printf 'dagster-postgres==%s\npsycopg2-binary==%s\n' "$DAGSTER_POSTGRES" "$PSYCOPG2" >> "$VENV_PG/constraints.txt"
"$VENV_PG/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV_PG/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$VENV_PG/constraints.txt" "dagster==$DAGSTER_PG_RELEASE" dagster-postgres psycopg2-binary pytest pytest-xdist
site=$("$VENV_PG/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$PWD/python" > "$site/dagster_rs_dev.pth"
"$VENV_PG/bin/python" -m pip check --disable-pip-version-check >/dev/null
installed=$("$VENV_PG/bin/python" -c "import dagster, dagster_postgres; print(dagster.__version__, dagster_postgres.__version__)")
[ "$installed" = "$DAGSTER_PG_RELEASE $DAGSTER_POSTGRES" ] || {
    echo "pg_venv: got dagster/dagster-postgres $installed, not $DAGSTER_PG_RELEASE $DAGSTER_POSTGRES" >&2
    exit 1
}
echo "$VENV_PG/bin/python"
