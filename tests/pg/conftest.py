"""The PostgreSQL differential suite: stock dagster-postgres is the oracle, the throwaway server
(tests/pg_cluster.py) the database. Run inside .venv-pg (scripts/pg_venv.sh), the one venv with
dagster-postgres:

    .venv-pg/bin/python -m pytest tests/pg

Without dagster_postgres (the main venv) the directory is not collected at all, unless this is
.venv-pg and DAGSTER_RS_REQUIRE_PG=1 (CI): then a missing dagster_postgres is an error.

`pair` is parametrized by backend: `sqlite` (stock's SQLite storage and dagster-rs's, on two fresh
homes) and `postgres` (stock's `storage: postgres:` and dagster-rs's, on two fresh databases of
the same server); `pair.same(lambda inst: ...)` runs one operation on both and asserts the same
result, or the same exception class. Tests that need the native PostgreSQL backend (a domain live
in Rust on PostgreSQL, the core's pooled connections) carry `@pytest.mark.needs_native_pg`: skipped
only while this build's core has no PostgreSQL backend (`dagster_rs.postgres.native_backend_missing`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
try:
    import dagster_postgres  # noqa: F401

    HAVE_DAGSTER_POSTGRES = True
except ImportError:
    HAVE_DAGSTER_POSTGRES = False


def _in_pg_venv() -> bool:
    venv = ROOT / os.environ.get("VENV_PG", ".venv-pg")
    return Path(sys.prefix).resolve() == venv.resolve()


if not HAVE_DAGSTER_POSTGRES:
    if os.environ.get("DAGSTER_RS_REQUIRE_PG") == "1" and _in_pg_venv():
        raise RuntimeError(
            "DAGSTER_RS_REQUIRE_PG=1 and this is .venv-pg, but dagster_postgres is not importable"
            " (bash scripts/pg_venv.sh installs it)"
        )
    # Not the PostgreSQL oracle's venv: nothing here is collected.
    collect_ignore_glob = ["test_*.py"]
else:
    from dagster_rs import postgres
    from tests.pg.pairs import (
        PgPair,
        check_served,
        open_instance,
        open_pair,
        postgres_yaml,
        stock_url,
        write_home,
    )

    _MISSING: list[str | None] = []

    def native_missing() -> str | None:
        """Why this build has no native PostgreSQL backend (None: it has one); asked once."""
        if not _MISSING:
            _MISSING.append(postgres.native_backend_missing())
        return _MISSING[0]

    def pytest_configure(config: pytest.Config) -> None:
        config.addinivalue_line(
            "markers",
            "needs_native_pg: needs the native PostgreSQL backend; skipped only while this"
            " build's core has none",
        )

    def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
        marked = [item for item in items if item.get_closest_marker("needs_native_pg")]
        missing = native_missing() if marked else None
        if missing is None:
            return
        skip = pytest.mark.skip(reason=f"native PostgreSQL backend absent: {missing}")
        for item in marked:
            item.add_marker(skip)

    @pytest.fixture(params=["sqlite", "postgres"])
    def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PgPair]:
        cluster: Any = (
            request.getfixturevalue("pg_cluster") if request.param == "postgres" else None
        )
        with open_pair(request.param, tmp_path, cluster) as p:
            yield p

    @pytest.fixture(params=["sqlite", "postgres"])
    def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any, Any]]:
        """A stock and a dagster-rs instance on the very same database (interchange)."""
        if request.param == "sqlite":
            storage = f"storage:\n  sqlite:\n    base_dir: {str(tmp_path / 'storage')!r}\n"
        else:
            cluster = request.getfixturevalue("pg_cluster")
            db = request.getfixturevalue("pg_db")
            storage = postgres_yaml(stock_url(cluster.url(db)))
        stock = open_instance(write_home(tmp_path / "stock", False, storage))
        rust = open_instance(write_home(tmp_path / "rust", True, storage))
        try:
            check_served(rust, request.param)
            yield request.param, stock, rust
        finally:
            stock.dispose()
            rust.dispose()
