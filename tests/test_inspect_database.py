"""`_native.inspect_database`: the verdict on stock-made files of every kind and state, no
committed data changed by it (nothing at all but a hot journal rolled back, as any reader's first
open rolls it back), the same verdict `Db::open` acts on (native ⇔ the store opens the file), and
the locks this process holds on the file kept while it reads it.

Files are made by stock Dagster (a fresh home, its half-built shards as a killed writer leaves
them, older stamps, dropped columns), or by SQLite itself (a hot rollback journal).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc as sa_exc
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage

from dagster_rs import DagsterRsStorageError, _native
from dagster_rs.errors import SchemaNotServedError, UnknownRevisionError
from tests.native_open import open_natively, opens_natively
from tests.processes import reaped, spawn, wait_ready

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
    with pytest.raises(SchemaNotServedError, match=f"{table}.{column}") as refused:
        open_natively(path, kind)
    assert refused.value.path == str(path)
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
    with pytest.raises(UnknownRevisionError):
        open_natively(path, kind)
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


def test_hot_journal_is_rolled_back_as_any_reader_rolls_it_back(
    stock_files: dict[str, Path], tmp_path: Path
) -> None:
    """On a file this process can write, `inspect_database` reads as any reader's first open
    does: SQLite rolls the hot journal back (the journal held no committed data), and the store
    then completes the file. (On a read-only mount the journal is played back in memory and left:
    tests/test_read_only_home.py.)"""
    with closing(sqlite3.connect(stock_files["event_shard"])) as src:
        event_logs = src.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'event_logs'"
        ).fetchone()[0]
    copy = hot_journal_copy(tmp_path, lambda c: c.execute(event_logs))
    got = _native.inspect_database(copy, "event_shard")
    assert got["hot_journal"]
    # The transaction's table is gone once rolled back: `event_logs` alone, no stamp.
    assert (got["state"], got["native"], got["missing"]) == ("unstamped", True, [])
    assert not Path(f"{copy}-journal").exists() or Path(f"{copy}-journal").stat().st_size == 0
    with closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as conn:
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"event_logs"}
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = _native.inspect_database(copy, "event_shard")
    assert {**again, "hot_journal": True} == got
    # The store opens it read-write: stock's tables are added.
    assert opens_natively(copy, "event_shard")
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


# -- the locks of this process ---------------------------------------------------------------------
#
# POSIX (fcntl) locks belong to the process and the inode: closing any descriptor of a database
# file drops every lock the process holds on it, SQLite's included. SQLite's unix VFS shares one
# record per inode and defers such closes; `inspect_database` must read the file through it only,
# whatever this process holds on the file meanwhile.

PROBE = """\
import sqlite3, sys

what, path = sys.argv[1], sys.argv[2]
if what == "write":
    # Another process that wants to write: it must wait for the holder's lock.
    c = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        c.execute("BEGIN IMMEDIATE")
        c.execute("ROLLBACK")
        print("acquired")
    except sqlite3.OperationalError as e:
        print(e)
    # Its close is a last connection's close if nobody else holds the file: in WAL mode it
    # checkpoints and deletes the -wal and -shm.
    c.close()
else:
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    print(c.execute(sys.argv[3]).fetchone()[0])
    c.close()
"""


def probe(tmp_path: Path, *args: str) -> str:
    script = tmp_path / "probe.py"
    if not script.exists():
        script.write_text(PROBE)
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("holder", "journal"), [("sqlite3", "delete"), ("sqlite3", "wal"), ("core", "wal")]
)
def test_inspecting_a_file_this_process_holds_keeps_its_locks(
    tmp_path: Path, holder: str, journal: str
) -> None:
    """This process holds a write transaction on the file (through Python's sqlite3, which runs
    the core's SQLite, or through the core's own pooled connection) and inspects the file: another
    process still cannot write, and nothing this process then commits is lost."""
    path = tmp_path / "runs.db"
    store = None
    conn: Any
    if holder == "core":
        store = _native.RunStore(str(path))
        conn = store.connect()
        conn.isolation_level = None
    else:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"PRAGMA journal_mode = {journal}")
    try:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES ('held')")
        seen = _native.inspect_database(path, "runs")
        assert seen["exists"], seen
        # The write lock (the database file's RESERVED lock; in WAL mode the -shm's write lock)
        # is still this process's.
        assert probe(tmp_path, "write", str(path)) == "database is locked"
        conn.execute("COMMIT")
        # In WAL mode the database file's SHARED lock is what keeps a last-closing process from
        # deleting the -wal this process writes to: the commit is seen by everyone.
        assert probe(tmp_path, "read", str(path), "SELECT count(*) FROM t") == "1"
    finally:
        conn.close()
        if store is not None:
            store.dispose()


E2E_WRITER = """\
import os, sys, time
from dagster_rs import _native

path, name, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
print("CLASS RunStore", flush=True)
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
for i in range(rounds):
    store = _native.RunStore(path)
    store.mark_index_built(f"{name}-{i}-a")
    seen = _native.inspect_database(path, "runs")
    assert seen["native"], seen
    store.mark_index_built(f"{name}-{i}-b")
    # Closing its connections: a last close checkpoints and deletes the -wal when no other
    # process holds the file.
    store.dispose()
    del store
print("DONE", flush=True)
"""


def test_processes_inspecting_and_writing_one_file_lose_nothing(tmp_path: Path) -> None:
    """Two processes, each opening the file through the core, writing, inspecting it, writing
    again and closing, over and over at once (as dagster-rs CLI processes building instances on a
    home do): every write of both is there, and the file is intact."""
    path = tmp_path / "runs.db"
    _native.RunStore(str(path)).dispose()
    script = tmp_path / "writer.py"
    script.write_text(E2E_WRITER)
    go = tmp_path / "go"
    rounds = 40
    names = ["p0", "p1"]
    procs = [spawn(script, str(path), name, str(rounds), str(go)) for name in names]
    with reaped(*procs):
        for proc in procs:
            wait_ready(proc)
        go.write_text("")
        outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and "DONE" in out, err[-3000:]
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        marks = {n for (n,) in conn.execute("SELECT name FROM secondary_indexes")}
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    expected = {f"{n}-{i}-{k}" for n in names for i in range(rounds) for k in "ab"}
    lost = sorted(expected - marks)
    assert not lost, f"{len(lost)} writes lost: {lost[:10]}"


def test_read_database_file_keeps_the_locks_this_process_holds(tmp_path: Path) -> None:
    """`_native.read_database_file`, what Python code of the package reads or copies database
    files with (`dagster-rs check`, `info`, the benchmarks), leaves this process's write lock in
    place; `open()` would not. A `-shm` is refused: SQLite locks it through a descriptor of its
    own."""
    path = tmp_path / "held.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (1)")
        data = _native.read_database_file(path)
        assert data[:16] == b"SQLite format 3\x00" and len(data) == path.stat().st_size
        assert _native.read_database_file(path, limit=16) == data[:16]
        # SQLite takes no lock on the journal: reading it directly here is harmless.
        journal = Path(f"{path}-journal").read_bytes()
        assert _native.read_database_file(f"{path}-journal", journal=True) == journal
        assert probe(tmp_path, "write", str(path)) == "database is locked"
        conn.execute("COMMIT")
    finally:
        conn.close()
    with pytest.raises(ValueError, match="-shm"):
        _native.read_database_file(f"{path}-shm")
    with pytest.raises(DagsterRsStorageError):
        _native.read_database_file(tmp_path / "absent.db")
