"""Stock dagster-postgres (the PostgreSQL oracle, in .venv-pg: scripts/pg_venv.sh) on the
throwaway server: it creates its schema on an empty database and serves a run, an event and the
schedule storage; what it creates is exactly docs/pg-stock-schema.sql, the reference the Rust
schema module is checked against. Skipped when .venv-pg is absent."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from dagster_rs import pg_cluster as pgc

ROOT = Path(__file__).resolve().parent.parent
PG_PYTHON = ROOT / ".venv-pg" / "bin" / "python"
REFERENCE = ROOT / "docs" / "pg-stock-schema.sql"

pytestmark = pytest.mark.skipif(
    not PG_PYTHON.exists(), reason="no .venv-pg (bash scripts/pg_venv.sh makes it)"
)


def in_pg_venv(script: str, *args: str) -> str:
    out = subprocess.run(
        [str(PG_PYTHON), "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_stock_creates_its_schema_on_the_cluster(
    pg_cluster: pgc.PgCluster, pg_db: str, tmp_path: Path
) -> None:
    url = pg_cluster.url(pg_db).replace("postgresql://", "postgresql+psycopg2://", 1)
    out = in_pg_venv(
        """
        import sys
        from pathlib import Path
        sys.path.insert(0, "scripts")
        from pg_stock_schema import exercise, stock_instance
        instance = stock_instance(sys.argv[1], Path(sys.argv[2]))
        print(type(instance.run_storage).__name__, type(instance.event_log_storage).__name__,
              type(instance.schedule_storage).__name__)
        print(exercise(instance)["run_storage"])
        instance.dispose()
        """,
        url,
        str(tmp_path),
    )
    classes, revision = out.splitlines()[-2:]
    assert classes == "PostgresRunStorage PostgresEventLogStorage PostgresScheduleStorage"
    tables = set(
        pg_cluster.psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'", pg_db
        ).split()
    )
    assert {"runs", "run_tags", "event_logs", "jobs", "job_ticks", "instigators", "kvs"} <= tables
    head = pg_cluster.psql("SELECT version_num FROM alembic_version", pg_db).strip()
    assert revision == repr((head, head))
    assert f"alembic_version table: {head}" in REFERENCE.read_text()
    assert pg_cluster.psql("SELECT count(*) FROM runs", pg_db).strip() == "1"


def _ddl(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("-- dagster "))


def test_reference_schema_is_what_stock_creates(tmp_path: Path) -> None:
    if not pgc.available():
        pytest.skip("no PostgreSQL server binaries")
    fresh = tmp_path / "schema.sql"
    subprocess.run([str(PG_PYTHON), "scripts/pg_stock_schema.py", str(fresh)], cwd=ROOT, check=True)
    # The version line names the server's patch release; everything else must match.
    assert _ddl(fresh.read_text()) == _ddl(REFERENCE.read_text())
