"""The index layouts Dagster's migrations leave in a database file at the head revision.

A file stock creates today has the *fresh* layout (stock 1.13's `create_all` plus its stamp). A
home created by an older release and brought to the head by `dagster instance migrate` has the
*migrated* one: alembic runs every migration from the file's revision on, and from 030 on they
are guarded (`has_table` / `has_index`), so each adds what the file lacks. That leaves, in
runs.db, 047's unique `idx_run_tags_run_id (key, value, run_id)` in place of `idx_run_tags
(key, value)`, and in every file the tables (with their indexes) of the other kinds of file
(`dynamic_partitions` in runs.db, `kvs` in index.db, ...). Replaying those migrations on a fresh
file gives exactly the layout of a 0.14 home migrated by stock (compared index by index against
the old-home fixtures, docs/old-homes-layouts.md), so the tests build it that way; `047` is that
migration alone (runs.db only).
"""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from dagster_rs.bench.runs_scale import set_layout

LAYOUTS = ("fresh", "migrated")
# The first migration whose upgrade checks what the file has before adding it.
FIRST_GUARDED = 30
VERSIONS = "dagster._core.storage.alembic.versions"


def _guarded_migrations() -> list[str]:
    package = importlib.import_module(VERSIONS)
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    numbered = [n for n in names if n[:3].isdigit() and int(n[:3]) >= FIRST_GUARDED]
    # The last revisions are named by their hash alone.
    return numbered + [n for n in names if not n[:3].isdigit()]


def replay_migrations(db: Path) -> None:
    """Run the upgrade of every guarded migration on `db`, as `dagster instance migrate` runs
    them on an old home's file."""
    engine = sa.create_engine(f"sqlite:///{db}", poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            for name in _guarded_migrations():
                importlib.import_module(f"{VERSIONS}.{name}").upgrade()
    finally:
        engine.dispose()


def make_layout(db: Path, layout: str) -> None:
    """Bring `db` (a file at the head revision, fresh layout) to `layout`."""
    if layout == "migrated":
        replay_migrations(db)
    elif layout == "047":
        set_layout(str(db), "047")
    elif layout != "fresh":
        raise ValueError(f"unknown layout {layout!r}")


def index_definitions(db: Path) -> set[tuple[str, str, str]]:
    """`(table, index, key columns)` of every index of `db`."""
    conn = sqlite3.connect(db)
    try:
        return set(
            conn.execute(
                "SELECT m.name, il.name, group_concat(ix.name, ',') FROM sqlite_master AS m, "
                "pragma_index_list(m.name) AS il, pragma_index_xinfo(il.name) AS ix "
                "WHERE m.type = 'table' AND ix.\"key\" = 1 GROUP BY m.name, il.name"
            )
        )
    finally:
        conn.close()
