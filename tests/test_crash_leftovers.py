"""Files a killed (or out-of-disk) writer leaves behind are used as stock uses them.

Stock creates a file's tables outside one transaction (pysqlite begins none for DDL, so each
`CREATE TABLE` / `CREATE INDEX` of `create_all` commits on its own) and stamps it last: a writer
killed meanwhile leaves some tables, some of their indexes and no alembic revision. The next
stock process creates the missing tables (each with its indexes; an existing table gets none)
and stamps the file — the head, or for runs.db / schedules.db holding their main table the
last known revision — then carries on. dagster-rs does the same, in one write transaction that
judges the file again under the lock. Zero-byte and table-less files are fresh to both; a hot
rollback journal is rolled back by SQLite on the first read-write open.

- every prefix of stock's DDL for every kind, completed by stock and by dagster-rs: the same
  tables, indexes, stamp and data-migration marks;
- a hot journal left mid-creation: rolled back, then completed, by either;
- a real stock writer (and a dagster-rs one) SIGKILLed at random moments while it creates run
  shards, many times: after each kill both implementations keep writing and reading the run,
  everything committed is there, `integrity_check` is ok.
"""

from __future__ import annotations

import logging
import random
import shutil
import signal
import sqlite3
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage

from dagster_rs import _native
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from tests.processes import reaped, spawn, write_script

KINDS = ("runs", "event_index", "event_shard", "schedules")
FILE = {
    "runs": "runs.db",
    "event_index": "index.db",
    "event_shard": "run1.db",
    "schedules": "schedules.db",
}


def stock_ddl(tmp: Path) -> dict[str, list[str]]:
    """The statements of each kind's schema in the order stock created them, the stamp table
    aside (alembic creates it when stamping)."""
    SqliteRunStorage.from_local(str(tmp / "r")).dispose()
    events = SqliteEventLogStorage(str(tmp / "e"))
    with events.run_connection("run1"):
        pass
    events.dispose()
    SqliteScheduleStorage.from_local(str(tmp / "s")).dispose()
    paths = {
        "runs": tmp / "r" / "runs.db",
        "event_index": tmp / "e" / "index.db",
        "event_shard": tmp / "e" / "run1.db",
        "schedules": tmp / "s" / "schedules.db",
    }
    out = {}
    for kind, path in paths.items():
        with closing(sqlite3.connect(path)) as conn:
            out[kind] = [
                s
                for (s,) in conn.execute(
                    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
                    "AND name != 'alembic_version' ORDER BY rowid"
                )
            ]
    return out


@pytest.fixture(scope="module")
def ddl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return stock_ddl(tmp_path_factory.mktemp("ddl"))


def leftover(dest: Path, kind: str, statements: list[str]) -> Path:
    """The file stock leaves when killed after `statements`."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / FILE[kind]
    with closing(sqlite3.connect(path)) as conn:
        for s in statements:
            conn.execute(s)
        conn.commit()
    return path


def complete_with_stock(path: Path, kind: str) -> None:
    d = str(path.parent)
    if kind == "runs":
        SqliteRunStorage.from_local(d).dispose()
    elif kind == "schedules":
        SqliteScheduleStorage.from_local(d).dispose()
    else:
        storage = SqliteEventLogStorage(d)
        connection = (
            storage.index_connection()
            if kind == "event_index"
            else storage.run_connection(path.stem)
        )
        with connection:
            pass
        storage.dispose()


def complete_with_rust(path: Path, kind: str) -> None:
    d = str(path.parent)
    if kind == "runs":
        _native.DagsterInstance(d, runs_db=str(path)).runs.run_by_id("none")
    elif kind == "schedules":
        _native.DagsterInstance(d, schedules_db=str(path)).schedules.layout()
    elif kind == "event_index":
        _native.DagsterInstance(d, event_log_dir=d).events.ensure_index()
    else:
        events = _native.DagsterInstance(d, event_log_dir=d).events
        events.records_for_run(path.stem, None, [], 10, True)


def schema_of(path: Path) -> dict[str, object]:
    """What a completed file holds: its objects, stamp, marks, journal mode, integrity."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        objects = sorted(
            conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
            key=lambda r: (r[0], r[1]),
        )
        return {
            "objects": objects,
            "stamp": conn.execute("SELECT version_num FROM alembic_version").fetchall(),
            "marks": conn.execute("SELECT name FROM secondary_indexes ORDER BY id").fetchall(),
            "journal": conn.execute("PRAGMA journal_mode").fetchone(),
            "integrity": conn.execute("PRAGMA integrity_check").fetchone(),
        }


@pytest.mark.parametrize("kind", KINDS)
def test_every_half_built_file_is_completed_as_stock_completes_it(
    ddl: dict[str, list[str]], kind: str, tmp_path: Path
) -> None:
    """Each prefix of stock's DDL (a table without some of its indexes included), the
    zero-byte file and the table-less one: dagster-rs leaves the file stock leaves."""
    cases: dict[str, list[str] | None] = {
        f"prefix-{k}": ddl[kind][:k] for k in range(len(ddl[kind]) + 1)
    }
    cases["zero-byte"] = None
    stamped: Counter[str] = Counter()
    for name, statements in cases.items():
        made = {}
        for impl, complete in (("stock", complete_with_stock), ("rust", complete_with_rust)):
            dest = tmp_path / name / impl
            if statements is None:
                dest.mkdir(parents=True)
                path = dest / FILE[kind]
                path.write_bytes(b"")
            else:
                path = leftover(dest, kind, statements)
            complete(path, kind)
            made[impl] = schema_of(path)
        assert made["rust"] == made["stock"], f"{kind} {name}"
        assert made["rust"]["integrity"] == ("ok",)
        stamped[made["rust"]["stamp"][0][0]] += 1
    # Both stamps occur where stock uses both (the main table present or not).
    if kind in ("runs", "schedules"):
        assert set(stamped) == {_native.SCHEMA_HEAD, "5771160a95ad"}, stamped
    else:
        assert set(stamped) == {_native.SCHEMA_HEAD}, stamped


def hot_leftover(dest: Path, kind: str, statements: list[str], in_flight: str) -> Path:
    """A file killed while a DDL statement was being committed in rollback-journal mode: the
    journal is hot (its pages copied out while the writer held them)."""
    live_dir = dest / "live"
    live = leftover(live_dir, kind, statements)
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("PRAGMA cache_size = 1")
    conn.execute("BEGIN")
    conn.execute(in_flight)
    # Enough pages for the cache to spill into the file before the commit.
    conn.execute("CREATE TABLE spill (y)")
    for _ in range(300):
        conn.execute("INSERT INTO spill VALUES (?)", ("x" * 900,))
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / FILE[kind]
    shutil.copy(live, path)
    shutil.copy(f"{live}-journal", f"{path}-journal")
    conn.execute("ROLLBACK")
    conn.close()
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_hot_journal_left_mid_creation(
    ddl: dict[str, list[str]], kind: str, tmp_path: Path
) -> None:
    k = len(ddl[kind]) // 2
    made = {}
    for impl, complete in (("stock", complete_with_stock), ("rust", complete_with_rust)):
        path = hot_leftover(tmp_path / impl, kind, ddl[kind][:k], ddl[kind][k])
        assert _native.inspect_database(path, kind)["hot_journal"]
        complete(path, kind)
        made[impl] = schema_of(path)
        assert "spill" not in {o[1] for o in made[impl]["objects"]}
    assert made["rust"] == made["stock"]


# -- real writers killed --------------------------------------------------------------------------

# Stores one event in each of a sequence of new runs: each store creates that run's shard. It
# prints BEGIN <run> before and STORED <run> once store_event has returned.
WRITER = """\
import logging, sys, time
from dagster._core.events.log import EventLogEntry

impl, base, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
if impl == "stock":
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    storage = SqliteEventLogStorage(base)
else:
    from dagster_rs.storage.event_log_storage import RustEventLogStorage
    storage = RustEventLogStorage(base)
print("CLASS", type(storage).__name__, flush=True)
print("READY", flush=True)
i = first
while True:
    run_id = f"run-{i:05d}"
    print("BEGIN", run_id, flush=True)
    storage.store_event(EventLogEntry(
        error_info=None, level=logging.INFO, user_message=f"first {run_id}", run_id=run_id,
        timestamp=time.time(),
    ))
    print("STORED", run_id, flush=True)
    i += 1
"""


def entry(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
    )


def messages(storage: SqliteEventLogStorage, run_id: str) -> list[str]:
    return [e.user_message for e in storage.get_logs_for_run(run_id)]


def integrity(path: Path) -> str:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def kill_writers(impl: str, tries: int, tmp_path: Path) -> Counter[str]:
    """Kill a writer of `impl` `tries` times at random moments while it creates run shards;
    after each kill, both implementations write the run it was creating and read it back."""
    base = tmp_path / "history" / "runs"
    SqliteEventLogStorage(str(base)).dispose()  # the index exists beforehand, as in a home
    script = write_script(tmp_path / "writer.py", WRITER)
    rng = random.Random(f"{impl}-kills")
    stored: list[str] = []
    outcomes: Counter[str] = Counter()
    first = 0
    for attempt in range(tries):
        proc = spawn(script, impl, str(base), str(first))
        begun: list[str] = []
        lines: list[str] = []
        with reaped(proc):
            assert proc.stdout is not None
            assert proc.stdout.readline().split()[0] == "CLASS"
            assert proc.stdout.readline().strip() == "READY"
            # Two runs stored (the writer warm), the second one timed; then the kill lands
            # anywhere within about one more shard's creation.
            started = stored_at = 0.0
            while len([x for x in lines if x.startswith("STORED")]) < 2:
                line = proc.stdout.readline()
                assert line, proc.communicate(timeout=60)[1][-2000:]
                lines.append(line.strip())
                if line.startswith("BEGIN"):
                    started = time.monotonic()
                else:
                    stored_at = time.monotonic()
            time.sleep(rng.uniform(0, 1.5 * (stored_at - started)))
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err[-2000:]
        for line in lines + out.splitlines():
            what, _, run_id = line.partition(" ")
            if what == "BEGIN":
                begun.append(run_id)
            elif what == "STORED":
                stored.append(run_id)
        if not begun:
            outcomes["killed before its first run"] += 1
            continue
        victim = begun[-1]
        first = int(victim.split("-")[1]) + 1
        shard = base / f"{victim}.db"
        seen = _native.inspect_database(shard, "event_shard")
        outcomes[seen["state"] + (" + hot journal" if seen["hot_journal"] else "")] += 1
        assert seen["native"], seen

        # Both carry on with that run, in either order.
        stock = SqliteEventLogStorage(str(base))
        rust = RustEventLogStorage(str(base))
        order = [("stock", stock), ("rust", rust)]
        if attempt % 2:
            order.reverse()
        for name, storage in order:
            storage.store_event(entry(victim, f"after the kill, {name}"))
        read = {name: messages(storage, victim) for name, storage in order}
        assert read["rust"] == read["stock"], read
        tail = read["rust"][-2:]
        assert tail == [f"after the kill, {n}" for n, _ in order], read
        # The killed store either committed its event or did not, never half of it.
        assert read["rust"][:-2] in ([], [f"first {victim}"]), read
        # Everything acknowledged before the kill is there, through either.
        for run_id in stored[-5:] + ([victim] if victim in stored else []):
            assert messages(rust, run_id)[:1] == [f"first {run_id}"], run_id
            assert messages(stock, run_id)[:1] == [f"first {run_id}"], run_id
        stock.dispose()
        rust.dispose()
        assert integrity(shard) == "ok"
        assert integrity(base / "index.db") == "ok"

    # Every run acknowledged by any writer, at the end.
    final = RustEventLogStorage(str(base))
    try:
        for run_id in stored:
            assert messages(final, run_id)[:1] == [f"first {run_id}"], run_id
            assert integrity(base / f"{run_id}.db") == "ok"
    finally:
        final.dispose()
    return outcomes


def test_stock_writer_killed_while_creating_shards(tmp_path: Path) -> None:
    outcomes = kill_writers("stock", 24, tmp_path)
    print("stock writer kills:", dict(outcomes))
    # The point of the test: stock leaves half-built shards (tables, no stamp) most of the time.
    assert outcomes["unstamped"] + outcomes["unstamped + hot journal"] >= 4, outcomes


def test_rust_writer_killed_while_creating_shards(tmp_path: Path) -> None:
    outcomes = kill_writers("rust", 16, tmp_path)
    print("dagster-rs writer kills:", dict(outcomes))
    # The core creates a shard in one transaction: never half-built.
    assert outcomes["unstamped"] == 0, outcomes
