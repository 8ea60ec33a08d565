"""The file itself: a `schedules.db` dagster-rs creates is stock's schema; files written by one
side are read by the other (both ways, on the same file); older or unknown revisions are
refused untouched; the plans of every statement on stock-created, dagster-rs-created and
ANALYZE'd files, in every index layout Dagster's migrations leave (tests/index_layouts.py); many
threads writing ticks at once."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage

from dagster_rs import _native
from dagster_rs.errors import DagsterRsStorageError
from dagster_rs.storage.schedule_storage import RustScheduleStorage
from tests.index_layouts import LAYOUTS, make_layout
from tests.scheduling.conftest import T0, state, tick, ticks_view


def master(path: Path) -> list[tuple[str, str, str, str | None]]:
    # Stock creates a table's indexes in an order that varies from run to run (a Python set),
    # so the comparison is of the set of entries, each with its exact text.
    with closing(sqlite3.connect(path)) as conn:
        return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def test_schema_is_stocks(tmp_path: Path) -> None:
    SqliteScheduleStorage.from_local(str(tmp_path / "stock"))
    RustScheduleStorage(str(tmp_path / "rust"))
    stock, rust = tmp_path / "stock" / "schedules.db", tmp_path / "rust" / "schedules.db"
    assert master(rust) == master(stock)
    for db in (stock, rust):
        with closing(sqlite3.connect(db)) as conn:
            assert list(conn.execute("SELECT version_num FROM alembic_version")) == [
                (_native.SCHEMA_HEAD,)
            ]
            marks = list(
                conn.execute(
                    "SELECT name, migration_completed IS NOT NULL FROM secondary_indexes"
                    " ORDER BY id"
                )
            )
            assert marks == [("schedule_jobs_selector_id", 1), ("schedule_ticks_selector_id", 1)]
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize("writer", ["stock", "rust"])
def test_interchange(tmp_path: Path, writer: str) -> None:
    """One side writes, the other reads and writes on, the first reads that back."""
    d = str(tmp_path / "schedules")
    stock = SqliteScheduleStorage.from_local(d) if writer == "stock" else None
    rust = RustScheduleStorage(d)
    stock = stock or SqliteScheduleStorage.from_local(d)
    first, second = (stock, rust) if writer == "stock" else (rust, stock)
    st = state("shared")
    first.add_instigator_state(st)
    ids = [first.create_tick(tick(st, i, TickStatus.SKIPPED)).tick_id for i in range(5)]
    assert second.get_instigator_state(st.instigator_origin_id, st.selector_id) == st
    assert ticks_view(second.get_ticks(st.instigator_origin_id, st.selector_id)) == ticks_view(
        first.get_ticks(st.instigator_origin_id, st.selector_id)
    )
    stopped = st.with_status(st.status.STOPPED)  # type: ignore[attr-defined]
    second.update_instigator_state(stopped)
    second.create_tick(tick(st, 10, TickStatus.SUCCESS))
    second.purge_ticks(st.instigator_origin_id, st.selector_id, T0 + 2)
    assert first.get_instigator_state(st.instigator_origin_id, st.selector_id) == stopped
    got = [t.tick_id for t in first.get_ticks(st.instigator_origin_id, st.selector_id)]
    assert got == [ids[-1] + 1, *reversed(ids[2:])]
    assert first.get_batch_ticks([st.selector_id], 2) == second.get_batch_ticks([st.selector_id], 2)
    second.wipe()
    assert first.all_instigator_state() == []


def _stamp(db: Path, revision: str) -> bytes:
    # Closed before the bytes are read: the update is then in the file, not only in its WAL.
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    return db.read_bytes()


def test_older_revision_is_served_untouched_unknown_refused(tmp_path: Path) -> None:
    """An older known revision whose tables have what the native path reads is served as it
    is (no restamp, no DDL); one lacking a column it reads, and an unknown revision, are
    refused with the file untouched."""
    d = tmp_path / "older"
    SqliteScheduleStorage.from_local(str(d)).dispose()
    _stamp(d / "schedules.db", "5771160a95ad")
    storage = RustScheduleStorage(str(d))
    assert storage.all_instigator_state() == []
    assert storage.alembic_version()[0] == "5771160a95ad"
    storage.dispose()

    for revision, words, alter in [
        ("5771160a95ad", "dagster instance migrate", "ALTER TABLE job_ticks DROP COLUMN status"),
        ("ffffffffffff", "unknown", None),
    ]:
        d = tmp_path / revision
        SqliteScheduleStorage.from_local(str(d)).dispose()
        if alter:
            with closing(sqlite3.connect(d / "schedules.db")) as conn, conn:
                conn.execute("DROP INDEX idx_job_tick_status")
                conn.execute(alter)
        before = _stamp(d / "schedules.db", revision)
        storage = RustScheduleStorage(str(d))
        with pytest.raises(DagsterRsStorageError, match=words):
            storage.all_instigator_state()
        assert (d / "schedules.db").read_bytes() == before


def test_upgrade_of_an_older_file_is_stocks(tmp_path: Path) -> None:
    d = tmp_path / "old"
    SqliteScheduleStorage.from_local(str(d)).dispose()
    # The revision before the head: its upgrade does nothing to this file's tables.
    _stamp(d / "schedules.db", "f495c27d5019")
    storage = RustScheduleStorage(str(d))
    storage.upgrade()
    assert storage.alembic_version() == (_native.SCHEMA_HEAD, _native.SCHEMA_HEAD)
    assert storage.all_instigator_state() == []


def _plans(store: _native.ScheduleStore) -> dict[str, list[str]]:
    return {p["statement"]: p["plan"] for p in store.query_plans()}


# What the schema cannot serve from an index: the unfiltered state list and the count of a
# selector's jobs read their (one row per instigator) tables, the migration reads every job,
# and evaluations have no index on create_timestamp.
SCANS_ALLOWED = {"states", "jobs of selector", "jobs for migration", "purge evaluations"}


# Once ANALYZE says the state tables hold a row or two, SQLite reads them whole instead of the
# type index: those tables hold one row per instigator.
STATE_READS = {"states filtered", "states by type", "jobs states filtered"}


def _check_plans(plans: dict[str, list[str]], analyzed: bool = False) -> None:
    for name, plan in plans.items():
        if name in SCANS_ALLOWED or name == "revision" or (analyzed and name in STATE_READS):
            continue
        assert not any(line.startswith("SCAN") for line in plan), (name, plan)
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, (name, plan)
    for name in ("ticks", "ticks limit", "ticks bounded", "tick summaries limit"):
        assert plans[name][0] == "MERGE (UNION ALL)"
        assert sum("idx_tick_selector_timestamp" in line for line in plans[name]) == 2
    for name in ("batch ticks", "batch ticks statuses"):
        assert all(
            "idx_tick_selector_timestamp" in line for line in plans[name] if "job_ticks" in line
        )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_plans_on_every_kind_of_file(tmp_path: Path, layout: str) -> None:
    SqliteScheduleStorage.from_local(str(tmp_path / "stock")).dispose()
    RustScheduleStorage(str(tmp_path / "rust")).dispose()
    for side in ("stock", "rust"):
        make_layout(tmp_path / side / "schedules.db", layout)
    rust_made = RustScheduleStorage(str(tmp_path / "rust"))
    stock_served = RustScheduleStorage(str(tmp_path / "stock"))
    reference = _plans(rust_made.store)
    _check_plans(reference)
    assert _plans(stock_served.store) == reference
    # ANALYZE'd with real data: many ticks of few selectors, statistics that favour the
    # origin index.
    st = state("busy")
    stock_served.add_instigator_state(st)
    for i in range(300):
        stock_served.create_tick(tick(st, i, TickStatus.SKIPPED))
    db = tmp_path / "stock" / "schedules.db"
    stock_served.dispose()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("ANALYZE")
    analyzed = RustScheduleStorage(str(tmp_path / "stock"))
    analyzed.dispose()
    plans = _plans(analyzed.store)
    _check_plans(plans, analyzed=True)
    for name in ("ticks", "ticks limit", "ticks bounded", "batch ticks", "batch ticks statuses"):
        assert plans[name] == reference[name], name


def test_many_threads_writing_ticks(tmp_path: Path) -> None:
    storage = RustScheduleStorage(str(tmp_path / "s"))
    sensors = [state(f"t{i}") for i in range(8)]
    for st in sensors:
        storage.add_instigator_state(st)
    ids: list[int] = []
    lock = threading.Lock()

    def work(st):  # type: ignore[no-untyped-def]
        for i in range(50):
            t = storage.create_tick(tick(st, i, TickStatus.STARTED))
            storage.update_tick(t.with_status(TickStatus.SKIPPED, skip_reason="x"))
            with lock:
                ids.append(t.tick_id)

    threads = [threading.Thread(target=work, args=(st,)) for st in sensors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == list(range(1, 401))
    batch = storage.get_batch_ticks([st.selector_id for st in sensors], 50)
    assert sum(len(v) for v in batch.values()) == 400
    assert all(t.status == TickStatus.SKIPPED for v in batch.values() for t in v)
    stock = SqliteScheduleStorage.from_local(str(tmp_path / "s"))
    for st in sensors:
        assert ticks_view(stock.get_ticks(st.instigator_origin_id, st.selector_id)) == ticks_view(
            storage.get_ticks(st.instigator_origin_id, st.selector_id)
        )


def _write_ticks(args: tuple[str, str, int]) -> list[int]:
    base_dir, kind, n = args
    from tests.scheduling.conftest import state as make_state
    from tests.scheduling.conftest import tick as make_tick

    storage = (
        RustScheduleStorage(base_dir)
        if kind == "rust"
        else SqliteScheduleStorage(f"sqlite:///{base_dir}/schedules.db")
    )
    st = make_state(f"proc-{kind}")
    ids = []
    for i in range(n):
        t = storage.create_tick(make_tick(st, i, TickStatus.STARTED))
        storage.update_tick(t.with_status(TickStatus.SKIPPED, skip_reason="x"))
        ids.append(t.tick_id)
    storage.dispose()
    return ids


def test_processes_writing_ticks(tmp_path: Path) -> None:
    """dagster-rs processes and a stock process write ticks to one file at once."""
    import multiprocessing

    d = str(tmp_path / "s")
    RustScheduleStorage(d).dispose()
    jobs = [(d, "rust", 40), (d, "rust", 40), (d, "stock", 40)]
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.map(_write_ticks, jobs)
        # Let the workers exit on their own: leaving the block terminates them by SIGTERM, which
        # a process started with it ignored (as a background shell starts one) never acts on.
        pool.close()
        pool.join()
    ids = sorted(i for r in results for i in r)
    assert ids == list(range(1, 121))
    storage = RustScheduleStorage(d)
    for kind, got in (("rust", results[0] + results[1]), ("stock", results[2])):
        st = state(f"proc-{kind}")
        ticks = storage.get_ticks(st.instigator_origin_id, st.selector_id)
        assert sorted(t.tick_id for t in ticks) == sorted(got)
        assert all(t.status == TickStatus.SKIPPED for t in ticks)
