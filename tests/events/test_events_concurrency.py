"""Many writers of the event log on one DAGSTER_HOME.

A run worker, its step subprocesses, the daemon and the webserver all write events: each into its
own run's shard, several into one run's shard (the steps of a run), and all of them into the index
(asset events, run status changes). Every event must land, once, with storage ids that increase in
the order each writer wrote, and no writer may see "database is locked".
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import sqlite3
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

import dagster_rs
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from tests.conftest import load_instance, write_home
from tests.events.helpers import engine_entry, materialization_entry
from tests.processes import assert_clean_exit, poll, run_threads

EVENTS_PER_WRITER = 2000
OWN_RUN_WRITERS = 4
SHARED_RUN_WRITERS = 2
SHARED_RUN = "shared-run"
MATERIALIZE_EVERY = 50


def _forkserver() -> multiprocessing.context.ForkServerContext:
    """Writer processes forked from a server that imported Dagster once (not from this process):
    each starts in milliseconds instead of re-importing Dagster, and holds nothing of ours."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dagster", "dagster_rs", __name__])
    return ctx


def _as_writer(home: str, name: str, go: str, stderr_path: str, report: Any, work: Any) -> None:
    """Run `work(storage)` as a writer process: stderr to a file, READY once the instance is
    loaded from dagster.yaml, `work` once the go-file appears, then DONE (or ERROR)."""
    err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(err, 2)
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - the process's stderr
    try:
        instance = DagsterInstance.from_config(home)
        storage = instance.event_log_storage
        report.put((name, "READY", type(storage).__name__))
        while not os.path.exists(go):
            time.sleep(0.001)
        count = work(storage)
        instance.dispose()
        report.put((name, "DONE", count))
    except BaseException:
        message = traceback.format_exc()
        sys.stderr.write(message)
        report.put((name, "ERROR", message))
        sys.exit(1)


def write_events(
    home: str, run_id: str, name: str, count: int, go: str, stderr_path: str, report: Any
) -> None:
    """A writer process writing `count` events "<name>-00000".. into `run_id` in batches of
    1..40 (a batch of one through store_event); every MATERIALIZE_EVERY-th is a materialization
    of its asset."""

    def work(storage: Any) -> int:
        for batch in batches(count, 40):
            if len(batch) == 1:
                storage.store_event(entry(run_id, name, batch[0]))
            else:
                storage.store_event_batch([entry(run_id, name, j) for j in batch])
        return count

    _as_writer(home, name, go, stderr_path, report, work)


def batches(count: int, largest: int) -> Iterator[range]:
    """0..count-1 in consecutive batches of 1, 2, ..., largest, 1, 2, ... (the last one cut)."""
    i, size = 0, 1
    while i < count:
        n = min(size, count - i)
        yield range(i, i + n)
        i += n
        size = size % largest + 1


def entry(run_id: str, name: str, i: int) -> EventLogEntry:
    """The event the writers write, built in this process (for the threads test)."""
    message = f"{name}-{i:05d}"
    if i % MATERIALIZE_EVERY == MATERIALIZE_EVERY - 1:
        key = AssetKey(["writers", name])
        return materialization_entry(
            run_id, message, key, job_name="writers_job", metadata={"i": i}, step_key=name
        )
    return engine_entry(run_id, message, job_name="writers_job", step_key=name)


def _shard_rows(home: Path, run_id: str) -> list[tuple[int, str | None]]:
    """(id, step_key) of every row of a run shard, read with Python's sqlite3 (nothing else open)."""
    conn = sqlite3.connect(f"file:{home / 'history' / 'runs' / run_id}.db?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return conn.execute("SELECT id, step_key FROM event_logs ORDER BY id").fetchall()
    finally:
        conn.close()


def check_writes(inst: DagsterInstance, writers: dict[str, str], count: int) -> None:
    """Every writer's events are in its run, once, with ids increasing in its write order; its
    materializations are in the index."""
    by_run: dict[str, list[str]] = defaultdict(list)
    for name, run_id in writers.items():
        by_run[run_id].append(name)
    for run_id, names in by_run.items():
        records = inst.get_records_for_run(run_id).records
        ids = [r.storage_id for r in records]
        assert len(set(ids)) == len(ids), f"{run_id}: duplicate storage ids"
        assert ids == sorted(ids)
        assert len(records) == count * len(names), f"{run_id}: {len(records)} events"
        seen: dict[str, list[str]] = defaultdict(list)
        for record in records:
            event = record.event_log_entry.dagster_event
            assert event is not None
            seen[event.step_key].append(event.message)
        assert sorted(seen) == sorted(names)
        for name in names:
            # Storage ids increase in the order this writer wrote.
            assert seen[name] == [f"{name}-{i:05d}" for i in range(count)], name

    materializations = count // MATERIALIZE_EVERY
    index_ids: list[int] = []
    for name, run_id in writers.items():
        key = AssetKey(["writers", name])
        result = inst.fetch_materializations(key, limit=count)
        assert len(result.records) == materializations, name
        assert [r.run_id for r in result.records] == [run_id] * materializations
        index_ids += [r.storage_id for r in result.records]
        latest = inst.get_latest_materialization_event(key)
        assert latest is not None
        last = (materializations - 1) * MATERIALIZE_EVERY + MATERIALIZE_EVERY - 1
        assert latest.dagster_event.message == f"{name}-{last:05d}"
    assert len(set(index_ids)) == len(index_ids), "duplicate index storage ids"
    assert {k for k in inst.get_asset_keys() if k.path[0] == "writers"} == {
        AssetKey(["writers", name]) for name in writers
    }


@pytest.fixture
def rust_home(tmp_path: Path) -> Path:
    home = write_home(tmp_path / "home", "rust")
    inst = load_instance(home)  # creates the index, as the first process would
    try:
        assert isinstance(inst, dagster_rs.DagsterInstance)
        assert isinstance(inst.event_log_storage, RustEventLogStorage)
    finally:
        inst.dispose()
    return home


def test_processes_writing_events_at_once(rust_home: Path, tmp_path: Path) -> None:
    ctx = _forkserver()
    report = ctx.Queue()
    go = tmp_path / "go"
    writers = {f"own{n}": f"own-run-{n}" for n in range(OWN_RUN_WRITERS)}
    writers.update({f"shared{n}": SHARED_RUN for n in range(SHARED_RUN_WRITERS)})
    procs = {
        name: ctx.Process(
            target=write_events,
            args=(
                str(rust_home),
                run_id,
                name,
                EVENTS_PER_WRITER,
                str(go),
                str(tmp_path / f"{name}.stderr"),
                report,
            ),
        )
        for name, run_id in writers.items()
    }
    results: dict[str, tuple[str, Any]] = {}
    try:
        for proc in procs.values():
            proc.start()
        for _ in procs:
            name, kind, value = report.get(timeout=120)
            assert kind == "READY", f"{name}: {value}"
            assert value == "RustEventLogStorage"
        go.touch()
        for _ in procs:
            name, kind, value = report.get(timeout=600)
            results[name] = (kind, value)
        for proc in procs.values():
            proc.join(timeout=60)
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.kill()
                proc.join()

    for name, proc in procs.items():
        err = (tmp_path / f"{name}.stderr").read_text()
        assert_clean_exit(name, proc.exitcode, err)
        assert results[name] == ("DONE", EVENTS_PER_WRITER), f"{name}: {results[name]}"

    inst = load_instance(rust_home)
    try:
        check_writes(inst, writers, EVENTS_PER_WRITER)
    finally:
        inst.dispose()

    # On disk: per shard, ids unique and increasing in each writer's order (by the rows alone).
    for run_id in set(writers.values()):
        rows = _shard_rows(rust_home, run_id)
        assert len({row_id for row_id, _ in rows}) == len(rows)
        per_writer: dict[str, list[int]] = defaultdict(list)
        for row_id, step_key in rows:
            per_writer[step_key].append(row_id)
        for ids in per_writer.values():
            assert len(ids) == EVENTS_PER_WRITER
            assert all(a < b for a, b in zip(ids, ids[1:], strict=False))

    # Stock Dagster reads the same thing from the files.
    stock = SqliteEventLogStorage(str(rust_home / "history" / "runs"))
    try:
        for run_id in set(writers.values()):
            n = sum(1 for r in writers.values() if r == run_id)
            assert len(stock.get_records_for_run(run_id).records) == EVENTS_PER_WRITER * n
        for name in writers:
            records = stock.fetch_materializations(
                AssetKey(["writers", name]), limit=EVENTS_PER_WRITER
            ).records
            assert len(records) == EVENTS_PER_WRITER // MATERIALIZE_EVERY
    finally:
        stock.dispose()


def test_threads_writing_events_in_one_process(rust_home: Path) -> None:
    threads_n, per_thread = 8, 300
    writers = {f"t{n}": (f"thread-run-{n}" if n < 4 else "thread-shared") for n in range(threads_n)}
    inst = load_instance(rust_home)
    start = threading.Barrier(threads_n)
    shared_seen: list[str] = []
    lock = threading.Lock()

    def on_shared(event: EventLogEntry, _cursor: str) -> None:
        with lock:
            shared_seen.append(event.dagster_event.message if event.dagster_event else "")

    inst.watch_event_logs("thread-shared", None, on_shared)

    def work(name: str, run_id: str) -> None:
        start.wait()
        for batch in batches(per_thread, 13):
            if len(batch) == 1:
                inst.store_event(entry(run_id, name, batch[0]))
            else:
                inst.event_log_storage.store_event_batch([entry(run_id, name, j) for j in batch])
            # Reads interleaved with the writes, as the webserver's are.
            records = inst.get_records_for_run(run_id, limit=5, ascending=False).records
            assert records and records[0].storage_id >= records[-1].storage_id
            inst.get_run_stats(run_id)

    try:
        run_threads(work, writers.items())
        check_writes(inst, writers, per_thread)

        # The watcher on the shared run saw each of its events once, in storage order.
        expected = [
            r.event_log_entry.dagster_event.message
            for r in inst.get_records_for_run("thread-shared").records
        ]
        poll(lambda: len(shared_seen) >= len(expected), timeout=60)
        inst.store_event(entry("thread-shared", "sentinel", 0))
        poll(lambda: "sentinel-00000" in shared_seen, timeout=60)
        with lock:
            assert shared_seen == [*expected, "sentinel-00000"]
    finally:
        inst.dispose()


NEW_SHARDS = 150


def create_shards(home: str, name: str, go: str, stderr_path: str, report: Any) -> None:
    """A writer process storing one event into each of NEW_SHARDS runs that have no shard yet,
    racing the other writers doing the same (each shard is created by whichever process comes
    first, while the others open it)."""

    def work(storage: Any) -> int:
        for n in range(NEW_SHARDS):
            storage.store_event(engine_entry(f"new-{n}", f"{name}-{n}", job_name="race_job"))
        return NEW_SHARDS

    _as_writer(home, name, go, stderr_path, report, work)


def test_processes_creating_the_same_shards_at_once(rust_home: Path, tmp_path: Path) -> None:
    """New shards start in rollback-journal mode, where SQLite answers some lock conflicts with
    "database is locked" at once; creating them must still never fail a write."""
    ctx = _forkserver()
    report = ctx.Queue()
    go = tmp_path / "go"
    names = [f"creator{n}" for n in range(3)]
    procs = [
        ctx.Process(
            target=create_shards,
            args=(str(rust_home), name, str(go), str(tmp_path / f"{name}.stderr"), report),
        )
        for name in names
    ]
    try:
        for proc in procs:
            proc.start()
        for _ in procs:
            name, kind, value = report.get(timeout=120)
            assert kind == "READY", f"{name}: {value}"
        go.touch()
        results = dict(
            (name, (kind, value)) for name, kind, value in (report.get(timeout=300) for _ in procs)
        )
        for proc in procs:
            proc.join(timeout=60)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    for name, proc in zip(names, procs, strict=True):
        assert_clean_exit(name, proc.exitcode, (tmp_path / f"{name}.stderr").read_text())
        assert results[name] == ("DONE", NEW_SHARDS), results[name]
    inst = load_instance(rust_home)
    try:
        for n in range(NEW_SHARDS):
            messages = sorted(e.message for e in inst.all_logs(f"new-{n}"))
            assert messages == sorted(f"{name}-{n}" for name in names)
    finally:
        inst.dispose()
