"""The DB-API bridge stock Python code reaches the event log through, against Python's sqlite3.

`EventStore.connect(shard)` lends one of the core's pooled SQLite connections to SQLAlchemy. Each
test runs the same statements through `sqlite3` on one file and through the bridge on another and
compares what a DB-API caller sees: rows, types, `description`, `rowcount`, `lastrowid`,
transaction boundaries and exception classes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from dagster_rs._native import EventStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    s = EventStore(str(tmp_path / "rs"))
    try:
        yield s
    finally:
        s.dispose()


@pytest.fixture
def conns(tmp_path: Path, store: EventStore) -> Iterator[tuple[Any, Any]]:
    # The run shard "t" is created with stock's event-log schema; the tests use a table of their
    # own beside it, created on both sides.
    py = sqlite3.connect(str(tmp_path / "py.db"))
    rs = store.connect("t")
    for c in (py, rs):
        c.execute("CREATE TABLE x (i INTEGER PRIMARY KEY, t TEXT, r REAL, b BLOB, n)")
    try:
        yield py, rs
    finally:
        py.close()
        rs.close()


def outcome(fn: Callable[[], Any]) -> Any:
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - the class is the result being compared
        return ("raised", type(exc))


def both(conns: tuple[Any, Any], fn: Callable[[Any], Any]) -> Any:
    a, b = (outcome(lambda c=c: fn(c)) for c in conns)
    assert a == b
    return b


def test_rows_types_description_and_counts(conns):
    def run(c):
        cur = c.cursor()
        cur.executemany(
            "INSERT INTO x (t, r, b, n) VALUES (?, ?, ?, ?)",
            [("é\x00z", 1.5, b"\x00\xff", None), ("b", -2.0, bytearray(b"ab"), 2**62)],
        )
        many = cur.rowcount
        cur.execute("INSERT INTO x (t, r, b, n) VALUES (?, ?, ?, ?)", ("c", 0.1, None, True))
        last = (cur.rowcount, cur.lastrowid)
        c.commit()
        cur.execute("SELECT i, t, r, b, n, i * 2 AS twice FROM x ORDER BY i")
        desc = [d[0] for d in cur.description]
        first = cur.fetchone()
        rest = cur.fetchmany(5)
        empty = cur.fetchall()
        cur.execute("UPDATE x SET t = 'u' WHERE i > 1")
        updated = cur.rowcount
        c.rollback()
        cur.execute("SELECT count(*) FROM x WHERE t = 'u'")
        return many, last, desc, first, rest, empty, updated, cur.fetchall(), cur.rowcount

    both(conns, run)


def test_implicit_transactions_and_autocommit(conns, tmp_path: Path):
    def run(c):
        c.execute("INSERT INTO x (t) VALUES ('a')")
        began = c.in_transaction
        c.rollback()
        gone = c.execute("SELECT count(*) FROM x").fetchall()
        c.execute("SELECT 1")
        select_began = c.in_transaction
        c.isolation_level = None
        c.execute("INSERT INTO x (t) VALUES ('b')")
        autocommitted = c.in_transaction
        c.isolation_level = ""
        return began, gone, select_began, autocommitted, c.execute("SELECT t FROM x").fetchall()

    both(conns, run)


def test_errors_are_sqlite3s_classes(conns):
    both(conns, lambda c: c.execute("SELEC 1"))
    both(conns, lambda c: c.execute("SELECT * FROM missing"))
    both(conns, lambda c: c.execute("SELECT ?", (1, 2)))
    both(conns, lambda c: c.execute("SELECT 1; SELECT 2"))
    both(conns, lambda c: c.execute("SELECT ?", (object(),)))
    both(conns, lambda c: c.execute("SELECT ?", (2**70,)))

    def duplicate(c):
        c.execute("INSERT INTO x (i) VALUES (1)")
        c.execute("INSERT INTO x (i) VALUES (1)")

    both(conns, duplicate)
    py, rs = conns
    rs.close()
    with pytest.raises(sqlite3.ProgrammingError):
        rs.cursor()


def test_python_functions(conns):
    def run(c):
        c.create_function("twice", 1, lambda v: None if v is None else v * 2, deterministic=True)
        return c.execute("SELECT twice(21), twice(NULL), twice('ab')").fetchall()

    both(conns, run)


def test_sqlalchemy_over_the_bridge_sees_the_cores_writes(store: EventStore, tmp_path: Path):
    engine = sa.create_engine(
        f"sqlite:///{tmp_path}/rs/index.db",
        creator=lambda: store.connect("index"),
        poolclass=NullPool,
    )
    meta = sa.MetaData()
    table = sa.Table(
        "t", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.String)
    )
    meta.create_all(engine)
    with engine.connect() as conn, conn.begin():
        result = conn.execute(table.insert().values(v="x"))
        assert result.inserted_primary_key[0] == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(table.c.v)).scalars().all() == ["x"]
        assert sa.inspect(conn).has_table("event_logs")
    # A failed transaction leaves nothing behind.
    with pytest.raises(sa.exc.IntegrityError), engine.connect() as conn, conn.begin():
        conn.execute(table.insert().values(v="y"))
        conn.execute(table.insert().values(id=1, v="dup"))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 1
    # The core's own connections see the same file.
    assert store.max_record_id() is None


def test_a_leased_connection_goes_back_to_the_pool_rolled_back(store: EventStore):
    c = store.connect("index")
    c.execute("CREATE TABLE IF NOT EXISTS y (v)")
    c.execute("INSERT INTO y VALUES (1)")
    assert c.in_transaction
    c.close()
    again = store.connect("index")
    assert again.execute("SELECT count(*) FROM y").fetchall() == [(0,)]
    again.close()


def test_shard_names_are_checked(store: EventStore, tmp_path: Path):
    from dagster._core.errors import DagsterInvariantViolationError

    for bad in ("../x", "a/b", "a\\b"):
        with pytest.raises(DagsterInvariantViolationError):
            store.connect(bad)
    assert not (tmp_path / "x.db").exists()
