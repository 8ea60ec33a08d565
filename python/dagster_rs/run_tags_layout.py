"""The index layouts of `runs.db`'s run_tags table, and `dagster-rs optimize`'s change of it.

Dagster leaves a run_tags table in one of two layouts:

- *fresh*: what stock creates for a new file (`RunStorageSqlMetadata.create_all`):
  `idx_run_tags (key, value)`.
- *047*: what Dagster's migration 047 (`add_run_tags_run_id_idx`, run by `dagster instance
  migrate` on every home created before Dagster 1.9.3) leaves: a UNIQUE `idx_run_tags_run_id
  (key, value, run_id)` in place of `idx_run_tags`. It covers the tag filters (counts become
  index-only) and makes a duplicate (key, value, run_id) row impossible.

Both have `idx_run_tags_run_idx (run_id, id)`. dagster-rs never changes a file's layout
implicitly (the files are stock's); `dagster-rs optimize` brings a fresh file to 047's layout
exactly as the migration's `upgrade()` does, `--undo` back exactly as its `downgrade()` does,
with the same statements alembic emits (so `sqlite_master` reads as after stock's migration).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass

from dagster_rs.home_files import BUSY_TIMEOUT_S

FRESH_INDEX = "idx_run_tags"
MIGRATED_INDEX = "idx_run_tags_run_id"
# The statements alembic emits for migration 047 on SQLite (`op.create_index` /
# `op.drop_index`), byte for byte: sqlite_master keeps the text.
CREATE_MIGRATED = 'CREATE UNIQUE INDEX idx_run_tags_run_id ON run_tags ("key", value, run_id)'
CREATE_FRESH = 'CREATE INDEX idx_run_tags ON run_tags ("key", value)'
DROP_MIGRATED = "DROP INDEX idx_run_tags_run_id"
DROP_FRESH = "DROP INDEX idx_run_tags"
MIGRATION = "Dagster's migration 047 (add_run_tags_run_id_idx)"
DUPLICATES_SHOWN = 20


class LayoutError(Exception):
    """The file cannot be brought to the layout asked for; nothing was changed."""


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool

    def __str__(self) -> str:
        return f"{'unique ' if self.unique else ''}{self.name} ({', '.join(self.columns)})"


@dataclass(frozen=True)
class Layout:
    indexes: tuple[Index, ...]

    def named(self, name: str) -> Index | None:
        return next((i for i in self.indexes if i.name == name), None)

    @property
    def name(self) -> str:
        """fresh, 047 (migrated), or what it is between or beside them."""
        fresh, migrated = self.named(FRESH_INDEX), self.named(MIGRATED_INDEX)
        if fresh and not migrated:
            return "fresh"
        if migrated and not fresh:
            return "047 (migrated)"
        if fresh and migrated:
            return "both (fresh's and 047's tag indexes)"
        return "neither (no tag index of Dagster's)"

    @property
    def is_migrated(self) -> bool:
        return self.named(MIGRATED_INDEX) is not None and self.named(FRESH_INDEX) is None

    @property
    def is_fresh(self) -> bool:
        return self.named(FRESH_INDEX) is not None and self.named(MIGRATED_INDEX) is None

    def describe(self) -> str:
        listed = "; ".join(str(i) for i in self.indexes) or "no indexes"
        return f"{self.name} — {listed}"


def read_layout(conn: sqlite3.Connection) -> Layout | None:
    """run_tags' indexes (None when the file has no run_tags table)."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run_tags'"
    ).fetchone():
        return None
    indexes = []
    for row in conn.execute("PRAGMA index_list(run_tags)").fetchall():
        name, unique, origin = row[1], bool(row[2]), row[3]
        if origin != "c":  # a PRIMARY KEY / UNIQUE constraint's own index: not a layout choice
            continue
        columns = tuple(
            str(c[2]) for c in conn.execute(f"PRAGMA index_info({_quoted(name)})").fetchall()
        )
        indexes.append(Index(name, columns, unique))
    return Layout(tuple(sorted(indexes, key=lambda i: i.name)))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Duplicate:
    run_id: str
    key: str
    value: str
    count: int


def duplicates(conn: sqlite3.Connection) -> tuple[list[Duplicate], int]:
    """The first `DUPLICATES_SHOWN` (key, value, run_id) groups of more than one row, and how
    many groups there are: what keeps the unique index from being built. (SQLite's unique
    index treats NULLs as distinct: rows with a NULL are no obstacle.)"""
    rows = conn.execute(
        "SELECT run_id, key, value, count(*) FROM run_tags"
        " WHERE key IS NOT NULL AND value IS NOT NULL AND run_id IS NOT NULL"
        " GROUP BY key, value, run_id HAVING count(*) > 1"
    ).fetchall()
    return [Duplicate(*r) for r in rows[:DUPLICATES_SHOWN]], len(rows)


def planned_statements(layout: Layout, undo: bool) -> list[str]:
    """What migration 047's upgrade (or, `undo`, its downgrade) runs on this layout, in its
    order: the new index first, then the old one dropped; nothing when it is already there."""
    if undo:
        out = [] if layout.named(FRESH_INDEX) else [CREATE_FRESH]
        return out + ([DROP_MIGRATED] if layout.named(MIGRATED_INDEX) else [])
    out = [] if layout.named(MIGRATED_INDEX) else [CREATE_MIGRATED]
    return out + ([DROP_FRESH] if layout.named(FRESH_INDEX) else [])


@dataclass(frozen=True)
class Change:
    before: Layout
    after: Layout
    statements: Sequence[str]
    # How long the file's write lock was held: other writers waited that long (SQLite has one
    # writer at a time; readers were never blocked).
    locked_s: float


def _duplicates_error(path: str, conn: sqlite3.Connection) -> LayoutError:
    found, total = duplicates(conn)
    lines = [
        f"  run_id {d.run_id}  key {d.key!r}  value {d.value!r}  {d.count} rows" for d in found
    ]
    if total > len(found):
        lines.append(f"  ... and {total - len(found)} more")
    return LayoutError(
        "\n".join(
            [
                f"{path}: {total} (key, value, run_id) tag group(s) have more than one row, so"
                f" the unique {MIGRATED_INDEX} cannot be built; nothing was changed:",
                *lines,
            ]
        )
    )


def change_layout(path: str, undo: bool = False) -> Change:
    """Bring runs.db at `path` to 047's layout (or, `undo`, back to the fresh one) in one
    transaction. Other processes may have the file open: the write lock is waited for (busy
    timeout), their readers keep reading (WAL), and SQLite makes every connection re-read the
    schema at its next statement. Raises LayoutError, changing nothing, when the file has no
    run_tags table or duplicate tag rows keep the unique index from being built."""
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as conn:
        # The write lock first, then the reads: nothing can change between them. Held for the
        # index build alone (the duplicates are looked for only if the build fails on them).
        conn.execute("BEGIN IMMEDIATE")
        locked = time.perf_counter()
        try:
            before = read_layout(conn)
            if before is None:
                raise LayoutError(f"{path} has no run_tags table")
            missing = {"key", "value", "run_id"} - {
                str(c[1]) for c in conn.execute("PRAGMA table_info(run_tags)").fetchall()
            }
            if missing:
                raise LayoutError(f"{path}: run_tags has no column {sorted(missing)}")
            statements = planned_statements(before, undo)
            for statement in statements:
                conn.execute(statement)
            after = read_layout(conn)
            assert after is not None
            conn.execute("COMMIT")
            locked_s = time.perf_counter() - locked
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK")
            if "UNIQUE" not in str(exc):
                raise
            raise _duplicates_error(path, conn) from exc
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back itself (a full disk)
                conn.execute("ROLLBACK")
            raise
    return Change(before, after, statements, locked_s)


def layout_of(path: str) -> Layout | None:
    from dagster_rs.home_files import read_only

    with read_only(path) as conn:
        return read_layout(conn)
