"""`dagster instance migrate` through a dagster-rs instance upgrades an old home exactly as stock's.

The session fixture ran Dagster's CLI (`dagster instance migrate`) on a copy of every unmigrated
fixture twice: with stock's instance class and with dagster-rs's in dagster.yaml. Every database
file must end with the same schema (sqlite_master, in order), the same alembic revision and the
same data-migration marks (secondary_indexes) on both.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.old_homes.conftest import VERSIONS, OldHome, db_files


def read(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError as exc:
        return [("error", str(exc))]
    finally:
        conn.close()


def file_state(path: Path) -> dict[str, list[tuple]]:
    return {
        "schema": read(path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"),
        "alembic": read(path, "SELECT version_num FROM alembic_version ORDER BY version_num"),
        "marks": read(
            path,
            "SELECT name FROM secondary_indexes WHERE migration_completed IS NOT NULL ORDER BY name",
        ),
    }


def _cli_failure(res: dict) -> str:
    return f"exit {res['code']}\n{res['traceback']}\n{res['output'][-4000:]}"


@pytest.mark.parametrize("version", VERSIONS)
def test_migrate_through_dagster_rs_succeeds(old_homes: dict[str, OldHome], version: str) -> None:
    home = old_homes[version]
    assert home.cli["stock-migrate"]["code"] == 0, _cli_failure(home.cli["stock-migrate"])
    res = home.cli["rust-migrate"]
    assert res["code"] == 0, _cli_failure(res)
    assert "Storage schema state after migration" in res["output"]


@pytest.mark.parametrize("version", VERSIONS)
def test_migrate_through_dagster_rs_matches_stock(
    old_homes: dict[str, OldHome], version: str
) -> None:
    home = old_homes[version]
    stock = home.variants["migrated-no-reindex"]
    rust = home.variants["rust-migrated"]
    assert db_files(rust) == db_files(stock)
    differences = []
    for rel in db_files(stock):
        a, b = file_state(stock / rel), file_state(rust / rel)
        for what in ("schema", "alembic", "marks"):
            if a[what] != b[what]:
                differences.append(f"{rel} {what}: " + _diff(a[what], b[what]))
    assert not differences, f"{len(differences)} differences:\n" + "\n".join(differences)


def _diff(stock: list[tuple], rust: list[tuple]) -> str:
    only_stock = [_short(r) for r in stock if r not in rust]
    only_rust = [_short(r) for r in rust if r not in stock]
    if not only_stock and not only_rust:
        return "the same rows in another order"
    return f"only stock's: {only_stock}; only dagster-rs's: {only_rust}"


def _short(row: tuple) -> str:
    # sqlite_master rows: (type, name, ...) — the name says which; other rows are short
    return f"{row[0]} {row[1]}" if len(row) == 4 else str(row)


@pytest.mark.parametrize("version", VERSIONS)
def test_stock_migrate_reaches_head(old_homes: dict[str, OldHome], version: str) -> None:
    """The reference itself: stock's migrate leaves every file at Dagster's head."""
    home = old_homes[version]
    assert home.cli["stock-migrate"]["code"] == 0, _cli_failure(home.cli["stock-migrate"])
    stock = home.variants["migrated-no-reindex"]
    revisions = {rel: file_state(stock / rel)["alembic"] for rel in db_files(stock)}
    assert {r for revs in revisions.values() for r in revs} == {(head(),)}, revisions


def head() -> str:
    import dagster._core.storage.runs.sqlite.sqlite_run_storage as runs_module
    from alembic.script import ScriptDirectory
    from dagster._core.storage.sql import get_alembic_config

    return ScriptDirectory.from_config(get_alembic_config(runs_module.__file__)).get_current_head()
