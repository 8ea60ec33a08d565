"""Failing storage raises the class stock raises in the same situation, differential.

Each situation is provoked on a stock instance and on a dagster-rs instance over copies of one
stock-made home, and the exception dagster-rs raises must be an instance of the class stock
raised (and, for SQLite failures, carry the `sqlite3` exception of stock's class as `.orig` and
`__cause__`, and be a `DagsterRsStorageError`). Nothing stored is lost. The read-only and the
full-disk situations, which need mounts, are in test_read_only_home.py and test_full_disk.py.
"""

from __future__ import annotations

import gc
import hashlib
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc as sa_exc
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun

import dagster_rs
from dagster_rs.storage import RustRunStorage
from tests.conftest import load_instance, write_home

RUNS = 60


@pytest.fixture(scope="module")
def stock_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stock-made home with RUNS runs and one run's events, closed."""
    home = write_home(tmp_path_factory.mktemp("errors") / "home", "stock")
    inst = load_instance(home)
    try:
        for i in range(RUNS):
            run = inst.add_run(
                DagsterRun(job_name="job", run_id=f"run-{i:03d}", tags={"i": str(i)})
            )
        inst.report_engine_event("hello", run)
    finally:
        inst.dispose()
    return home


def copy_home(stock_home: Path, dest: Path, kind: str) -> Path:
    shutil.copytree(stock_home, dest)
    return write_home(dest, kind)


def outcome(home: Path, operation: Callable[[DagsterInstance], Any]) -> BaseException | Any:
    """Build the instance of `home` and run `operation`; the exception either raised."""
    inst = None
    try:
        inst = load_instance(home)
        return operation(inst)
    except Exception as exc:
        return exc
    finally:
        if inst is not None:
            inst.dispose()
        del inst
        gc.collect()


def assert_stock_class(stock: BaseException, rust: BaseException) -> None:
    assert isinstance(stock, Exception), f"stock did not fail: {stock!r}"
    assert isinstance(rust, type(stock)), (
        f"dagster-rs raised {type(rust).__mro__}, not an instance of stock's {type(stock)}: {rust}"
    )
    if isinstance(stock, sa_exc.DBAPIError):
        assert isinstance(rust, sa_exc.DBAPIError)
        assert isinstance(rust, dagster_rs.DagsterRsStorageError)
        assert type(rust.orig) is type(stock.orig), (rust.orig, stock.orig)
        assert rust.__cause__ is rust.orig
        assert str(rust.orig) == str(stock.orig)
        assert rust.orig.sqlite_errorname == stock.orig.sqlite_errorname  # type: ignore[union-attr]


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def runs_db(home: Path) -> Path:
    return home / "history" / "runs.db"


def count(home: Path) -> int:
    with closing(sqlite3.connect(f"file:{runs_db(home)}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]


def test_locked_past_the_busy_timeout(
    stock_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another connection holds runs.db's write lock longer than the writer waits: stock's
    pysqlite gives up after its 5 s timeout, dagster-rs after DAGSTER_RS_BUSY_TIMEOUT_MS."""
    monkeypatch.setenv("DAGSTER_RS_BUSY_TIMEOUT_MS", "300")
    got = {}
    for kind in ("stock", "rust"):
        home = copy_home(stock_home, tmp_path / kind, kind)
        inst = load_instance(home)
        try:
            assert inst.get_runs_count() == RUNS
            holder = sqlite3.connect(runs_db(home), isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            try:
                inst.add_run(DagsterRun(job_name="job", run_id="blocked"))
                got[kind] = None
            except Exception as exc:
                got[kind] = exc
            waited = time.monotonic() - started
            holder.execute("ROLLBACK")
            holder.close()
            # The lock gone, the same instance carries on; nothing was lost or half-written.
            assert inst.get_runs_count() == RUNS
            inst.add_run(DagsterRun(job_name="job", run_id="after"))
            assert inst.get_runs_count() == RUNS + 1
        finally:
            inst.dispose()
        if kind == "rust":
            assert waited < 4, "dagster-rs waited its configured busy timeout"
    assert "database is locked" in str(got["stock"])
    assert_stock_class(got["stock"], got["rust"])


def _corrupt_runs_table(home: Path) -> None:
    """Garbage over the b-tree page at the root of `runs` (not the file header)."""
    db = runs_db(home)
    with closing(sqlite3.connect(db)) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(db, "r+b") as f:
        f.seek((root - 1) * page)
        f.write(bytes([0x0D]) + b"\xee" * (page - 1))


@pytest.mark.parametrize(
    "operation",
    ["get_runs", "get_runs_count", "get_run_by_id", "add_run"],
)
def test_malformed_file(stock_home: Path, tmp_path: Path, operation: str) -> None:
    ops: dict[str, Callable[[DagsterInstance], Any]] = {
        "get_runs": lambda i: i.get_runs(),
        "get_runs_count": lambda i: i.get_runs_count(),
        "get_run_by_id": lambda i: i.get_run_by_id("run-007"),
        "add_run": lambda i: i.add_run(DagsterRun(job_name="job", run_id="new-run")),
    }
    got = {}
    for kind in ("stock", "rust"):
        home = copy_home(stock_home, tmp_path / kind, kind)
        _corrupt_runs_table(home)
        got[kind] = outcome(home, ops[operation])
    assert "malformed" in str(got["stock"]), got["stock"]
    if operation == "get_runs_count" and got["rust"] == RUNS:
        # The count is read from an intact index (SQLite's b-tree count), not the damaged
        # table stock reads: the right answer rather than the error.
        return
    assert_stock_class(got["stock"], got["rust"])


def test_not_a_database(stock_home: Path, tmp_path: Path) -> None:
    got = {}
    for kind in ("stock", "rust"):
        home = copy_home(stock_home, tmp_path / kind, kind)
        for side in runs_db(home).parent.glob("runs.db-*"):
            side.unlink()
        runs_db(home).write_bytes(b"no SQLite here, only text. " * 400)
        before = tree(home)
        got[kind] = outcome(home, lambda i: i.get_runs())
        assert tree(home) == before
    assert "file is not a database" in str(got["stock"]), got["stock"]
    assert_stock_class(got["stock"], got["rust"])


def test_unknown_revision(stock_home: Path, tmp_path: Path) -> None:
    """A revision from a newer Dagster. Stock reads and writes on (it never checks); dagster-rs
    refuses the file untouched (it never writes a schema it does not know: the facade serves
    such a file with stock's code, see inspect_database). Upgrading it fails alike: alembic
    cannot locate the revision."""
    homes = {}
    for kind in ("stock", "rust"):
        home = copy_home(stock_home, tmp_path / kind, kind)
        with closing(sqlite3.connect(runs_db(home))) as conn, conn:
            conn.execute("UPDATE alembic_version SET version_num = 'ffffdeadbeef'")
        homes[kind] = home
    before = tree(homes["rust"])
    # The store refuses it, untouched; the instance serves it with stock's code, as stock does.
    store = RustRunStorage(str(homes["rust"] / "history"))
    try:
        with pytest.raises(dagster_rs.DagsterRsStorageError, match="ffffdeadbeef"):
            store.get_runs_count()
    finally:
        store.dispose()
    assert outcome(homes["rust"], lambda i: i.get_runs_count()) == RUNS
    assert tree(homes["rust"]) == before
    assert outcome(homes["stock"], lambda i: i.get_runs_count()) == RUNS
    upgrade = {k: outcome(h, lambda i: i.upgrade()) for k, h in homes.items()}
    assert_stock_class(upgrade["stock"], upgrade["rust"])


# A column holding a value of another type than the one written there: stock lets whatever its
# reader raises escape (a different class by column).
WRONG_TYPES = {
    "run body is a blob": (
        "runs.db",
        "UPDATE runs SET run_body = x'7b7d' WHERE run_id = 'run-005'",
        lambda i: i.get_runs(),
    ),
    "run body is an integer": (
        "runs.db",
        "UPDATE runs SET run_body = 123 WHERE run_id = 'run-005'",
        lambda i: i.get_run_by_id("run-005"),
    ),
    "create timestamp is not a time": (
        "runs.db",
        "UPDATE runs SET create_timestamp = 'garbage' WHERE run_id = 'run-005'",
        lambda i: [r.create_timestamp for r in i.get_run_records()],
    ),
    "event body is a blob": (
        "runs/run-059.db",
        "UPDATE event_logs SET event = x'7b7d'",
        lambda i: i.all_logs("run-059"),
    ),
    "event body is an integer": (
        "runs/run-059.db",
        "UPDATE event_logs SET event = 5",
        lambda i: i.all_logs("run-059"),
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_a_column_holding_the_wrong_type(stock_home: Path, tmp_path: Path, case: str) -> None:
    file, statement, operation = WRONG_TYPES[case]
    got = {}
    for kind in ("stock", "rust"):
        home = copy_home(stock_home, tmp_path / kind, kind)
        with closing(sqlite3.connect(home / "history" / file)) as conn, conn:
            conn.execute(statement)
        got[kind] = outcome(home, operation)
        # Nothing else lost: the other runs still read.
        assert outcome(home, lambda i: i.get_run_by_id("run-001").run_id) == "run-001"
    assert_stock_class(got["stock"], got["rust"])


def test_a_newer_dagster_migrating_an_open_file(stock_home: Path, tmp_path: Path) -> None:
    """Another process (a newer Dagster's `instance migrate`) changes the schema and stamps a
    revision this Dagster does not know while a dagster-rs instance has the file open: its next
    write is refused, nothing written; reads go on."""
    from dagster_rs.errors import UnknownRevisionError

    home = copy_home(stock_home, tmp_path / "rust", "rust")
    inst = load_instance(home)
    try:
        inst.add_run(DagsterRun(job_name="job", run_id="before"))
        with closing(sqlite3.connect(runs_db(home))) as conn, conn:
            conn.execute("ALTER TABLE runs ADD COLUMN newer_column TEXT")
            conn.execute("UPDATE alembic_version SET version_num = 'ffffdeadbeef'")
        with pytest.raises(UnknownRevisionError, match="ffffdeadbeef"):
            inst.add_run(DagsterRun(job_name="job", run_id="after"))
        assert inst.get_runs_count() == RUNS + 1
        assert inst.get_run_by_id("after") is None
    finally:
        inst.dispose()
