#!/usr/bin/env bash
# A second virtualenv (.venv-oldest) with the oldest Dagster of the tested range
# (dagster_rs.compat.OLDEST_TESTED), for CI's run of the storage tests on it. It gets no build of
# its own: python/ goes on its path, so it imports the very extension scripts/setup.sh built
# (one build, one .so, the same CPython). Idempotent. Prints the venv's python.
# DAGSTER_RELEASE picks another release of the range (a spot check of a middle one), e.g.
#   DAGSTER_RELEASE=1.13.13 VENV_OLDEST=target/venv-1.13.13 bash scripts/oldest_venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
VENV_OLDEST=${VENV_OLDEST:-.venv-oldest}
PYTHON=${PYTHON:-python3}

oldest=${DAGSTER_RELEASE:-$("$VENV/bin/python" -c "from dagster_rs.compat import OLDEST_TESTED; print(OLDEST_TESTED)")}
if [ ! -x "$VENV_OLDEST/bin/python" ]; then
    "$PYTHON" -m venv "$VENV_OLDEST"
fi
# constraints.txt with the Dagster family at the oldest release (the webserver family is not
# installed here: the storage tests do not use it).
sed -E -e "s/^(dagster|dagster-pipes|dagster-shared)==.*/\1==$oldest/" \
    -e '/^dagster-(graphql|webserver)==/d' constraints.txt > "$VENV_OLDEST/constraints.txt"
"$VENV_OLDEST/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$VENV_OLDEST/constraints.txt" "dagster==$oldest" pytest
site=$("$VENV_OLDEST/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$PWD/python" > "$site/dagster_rs_dev.pth"
"$VENV_OLDEST/bin/python" -m pip check --disable-pip-version-check >/dev/null
installed=$("$VENV_OLDEST/bin/python" -c "import dagster; print(dagster.__version__)")
[ "$installed" = "$oldest" ] || { echo "oldest_venv: got dagster $installed, not $oldest" >&2; exit 1; }
echo "$VENV_OLDEST/bin/python"
