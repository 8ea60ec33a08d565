"""`_native.inspect_database`: the verdict on stock-made files of every kind and state, nothing on
disk changed by it, and the same verdict `Db::open` acts on (native ⇔ the store opens the file).

Files are made by stock Dagster (a fresh home, its half-built shards as a killed writer leaves
them, older stamps, dropped columns), or by SQLite itself (a hot rollback journal).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy.exc as sa_exc
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage

from dagster_rs import DagsterRsStorageError, _native

HEAD = _native.SCHEMA_HEAD
LAST_KNOWN = "5771160a95ad"


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` and the hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def stock_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file of each kind, created by stock and closed cleanly (no -wal, no -shm)."""
    root = tmp_path_factory.mktemp("stock")
    SqliteRunStorage.from_local(str(root / "history")).dispose()
    events = SqliteEventLogStorage(str(root / "history" / "runs"))
    with events.run_connection("run1"):
        pass
    events.dispose()
    SqliteScheduleStorage.from_local(str(root / "schedules")).dispose()
    files = {
        "runs": root / "history" / "runs.db",
        "event_index": root / "history" / "runs" / "index.db",
        "event_shard": root / "history" / "runs" / "run1.db",
        "schedules": root / "schedules" / "schedules.db",
    }
    for path in files.values():
        assert path.exists()
        assert not Path(f"{path}-wal").exists()
    return files


def copy_of(files: dict[str, Path], kind: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / files[kind].name
    shutil.copy(files[kind], path)
    return path


def sql(path: Path, *statements: str) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        for statement in statements:
            conn.execute(statement)


def opens_natively(path: Path, kind: str) -> bool:
    """Whether the core's store opens the file (`Db::open`) for `kind`."""
    try:
        if kind == "runs":
            _native.DagsterInstance(str(path.parent), runs_db=str(path)).runs.run_by_id("none")
        elif kind == "schedules":
            core = _native.DagsterInstance(str(path.parent), schedules_db=str(path))
            core.schedules.layout()
        elif kind == "event_index":
            _native.DagsterInstance(
                str(path.parent), event_log_dir=str(path.parent)
            ).events.ensure_index()
        else:
            run_id = path.name.removesuffix(".db")
            events = _native.DagsterInstance(
                str(path.parent), event_log_dir=str(path.parent)
            ).events
            events.records_for_run(run_id, None, [], 10, True)
        return True
    except DagsterRsStorageError:
        return False


KINDS = ("runs", "event_index", "event_shard", "schedules")


@pytest.mark.parametrize("kind", KINDS)
def test_stock_files_are_current_and_untouched(stock_files: dict[str, Path], kind: str) -> None:
    root = stock_files[kind].parent
    before = tree(root)
    got = _native.inspect_database(stock_files[kind], kind)
    assert got == {
        "path": str(stock_files[kind]),
        "exists": True,
        "revision": HEAD,
        "state": "current",
        "native": True,
        "missing": [],
        "read_only": False,
        "hot_journal": False,
    }
    assert tree(root) == before, "inspect_database changed the directory"


def test_missing_empty_and_tableless(tmp_path: Path) -> None:
    absent = tmp_path / "absent.db"
    got = _native.inspect_database(absent, "event_shard")
    assert (got["exists"], got["state"], got["native"], got["revision"]) == (
        False,
        "missing",
        True,
        None,
    )
    assert not absent.exists()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert _native.inspect_database(empty, "runs")["state"] == "missing"
    tableless = tmp_path / "tableless.db"
    sql(tableless, "PRAGMA user_version = 1")
    got = _native.inspect_database(tableless, "schedules")
    assert (got["exists"], got["state"], got["native"]) == (True, "fresh", True)
    with pytest.raises(ValueError, match="kind"):
        _native.inspect_database(empty, "index")  # type: ignore[arg-type]


# What a stock writer killed while creating a file leaves: each table `create_all` creates is
# its own transaction (pysqlite begins none for DDL), so any prefix of the tables, and of a
# table's indexes, then no stamp.
def stock_prefix(files: dict[str, Path], kind: str, dest: Path, statements: int) -> Path:
    with closing(sqlite3.connect(files[kind])) as conn:
        ddl = [
            s
            for (s,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'alembic_version'"
                " ORDER BY rowid"
            )
        ]
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / files[kind].name
    with closing(sqlite3.connect(path)) as conn:
        for s in ddl[:statements]:
            conn.execute(s)
        conn.commit()
    return path


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("statements", [3, -1])
def test_half_built_files_are_unstamped_and_native(
    stock_files: dict[str, Path], kind: str, statements: int, tmp_path: Path
) -> None:
    """The first three statements of stock's DDL (no main table yet), or all but the last index
    (the main table there: stock stamps runs.db and schedules.db with the last known revision)."""
    path = stock_prefix(stock_files, kind, tmp_path / "half", statements)
    before = tree(path.parent)
    got = _native.inspect_database(path, kind)
    assert got["state"] == "unstamped"
    assert got["revision"] is None
    assert got["native"], got
    if kind != "event_shard" and statements > 0:
        assert got["missing"], "a half-built file lacks tables"
    assert tree(path.parent) == before
    assert opens_natively(path, kind)
    after = _native.inspect_database(path, kind)
    assert after["missing"] == []
    pre_stamped = statements < 0 and kind in ("runs", "schedules")
    assert after["revision"] == (LAST_KNOWN if pre_stamped else HEAD)
    assert after["state"] == ("outdated" if pre_stamped else "current")
    assert after["native"]


@pytest.mark.parametrize("kind", KINDS)
def test_older_revision_native_while_it_has_what_the_native_path_needs(
    stock_files: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    path = copy_of(stock_files, kind, tmp_path / "older")
    sql(path, f"UPDATE alembic_version SET version_num = '{LAST_KNOWN}'")
    got = _native.inspect_database(path, kind)
    assert (got["state"], got["revision"], got["native"], got["missing"]) == (
        "outdated",
        LAST_KNOWN,
        True,
        [],
    )
    before = tree(path.parent)
    assert opens_natively(path, kind)
    # Served as it is: no restamp, no DDL (the WAL the store switches a file to aside).
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(LAST_KNOWN,)]
    del before


# A column each kind's native path reads, and the index on it that must go first.
DROPPED = {
    "runs": ("runs", "backfill_id", ["idx_runs_by_backfill_id"]),
    "event_index": ("asset_keys", "cached_status_data", []),
    "event_shard": ("event_logs", "partition", ["idx_events_by_asset_partition"]),
    "schedules": ("job_ticks", "selector_id", ["idx_tick_selector_timestamp"]),
}


@pytest.mark.parametrize("kind", KINDS)
def test_older_revision_without_a_needed_column_is_not_native(
    stock_files: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    path = copy_of(stock_files, kind, tmp_path / "old")
    table, column, indexes = DROPPED[kind]
    sql(
        path,
        *[f"DROP INDEX {i}" for i in indexes],
        f"ALTER TABLE {table} DROP COLUMN {column}",
        f"UPDATE alembic_version SET version_num = '{LAST_KNOWN}'",
    )
    got = _native.inspect_database(path, kind)
    assert got["state"] == "outdated"
    assert got["missing"] == [f"{table}.{column}"]
    assert not got["native"]
    before = tree(path.parent)
    assert not opens_natively(path, kind)
    assert tree(path.parent) == before, "a refused file is left untouched"


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_revision_is_not_native(
    stock_files: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    path = copy_of(stock_files, kind, tmp_path / "newer")
    sql(path, "UPDATE alembic_version SET version_num = 'ffffdeadbeef'")
    got = _native.inspect_database(path, kind)
    assert (got["state"], got["revision"], got["native"]) == ("unknown", "ffffdeadbeef", False)
    before = tree(path.parent)
    assert not opens_natively(path, kind)
    assert tree(path.parent) == before


def hot_journal_copy(tmp_path: Path, fill: Callable[[sqlite3.Connection], None]) -> Path:
    """A rollback-journal file caught mid-transaction (its pages spilled to the file): the file
    and its journal copied while the writer still held them, as a SIGKILL leaves them."""
    live = tmp_path / "live" / "run1.db"
    live.parent.mkdir()
    conn = sqlite3.connect(live, isolation_level=None)
    fill(conn)
    conn.execute("PRAGMA cache_size = 1")
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE big (y)")
    for _ in range(400):
        conn.execute("INSERT INTO big VALUES (?)", ("x" * 900,))
    copy = tmp_path / "copy" / "run1.db"
    copy.parent.mkdir()
    shutil.copy(live, copy)
    shutil.copy(f"{live}-journal", f"{copy}-journal")
    conn.execute("ROLLBACK")
    conn.close()
    return copy


def test_hot_journal_is_judged_rolled_back_and_not_rolled_back(
    stock_files: dict[str, Path], tmp_path: Path
) -> None:
    with closing(sqlite3.connect(stock_files["event_shard"])) as src:
        event_logs = src.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'event_logs'"
        ).fetchone()[0]
    copy = hot_journal_copy(tmp_path, lambda c: c.execute(event_logs))
    before = tree(copy.parent)
    got = _native.inspect_database(copy, "event_shard")
    assert got["hot_journal"]
    # The transaction's table is gone once rolled back: `event_logs` alone, no stamp.
    assert (got["state"], got["native"], got["missing"]) == ("unstamped", True, [])
    assert tree(copy.parent) == before, "the journal must stay for SQLite to roll it back"
    # The store opens it read-write: SQLite rolls the journal back, stock's tables are added.
    assert opens_natively(copy, "event_shard")
    assert not Path(f"{copy}-journal").exists() or Path(f"{copy}-journal").stat().st_size == 0
    with closing(sqlite3.connect(copy)) as conn:
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "big" not in tables and "event_logs" in tables
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_not_a_database_raises_stocks_class(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not a database file, not at all" * 200)
    before = tree(tmp_path)
    with pytest.raises(sa_exc.DatabaseError) as info:
        _native.inspect_database(path, "runs")
    assert isinstance(info.value, DagsterRsStorageError)
    assert isinstance(info.value.orig, sqlite3.DatabaseError)
    assert "file is not a database" in str(info.value)
    assert tree(tmp_path) == before


def test_a_wal_with_content_is_read(stock_files: dict[str, Path], tmp_path: Path) -> None:
    """A file whose latest commits are still in its -wal (a writer alive, or killed): read
    through the WAL, with nothing created."""
    path = copy_of(stock_files, "runs", tmp_path / "wal")
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute(f"UPDATE alembic_version SET version_num = '{LAST_KNOWN}'")
    writer.commit()
    assert Path(f"{path}-wal").stat().st_size > 0
    names = sorted(os.listdir(path.parent))
    got = _native.inspect_database(path, "runs")
    assert got["revision"] == LAST_KNOWN
    assert sorted(os.listdir(path.parent)) == names
    writer.close()
