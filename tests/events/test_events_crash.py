"""A process writing events killed with SIGKILL mid-batch.

Run workers die (OOM killer, node loss, `kill -9`). Whatever an event write had committed before the
kill must stay readable, the run's shard and the index must still open with stock Dagster and with
dagster-rs, and the home must stay writable.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

import dagster_rs
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from tests.conftest import load_instance, write_home
from tests.events.helpers import engine_entry
from tests.processes import reaped, sigkill_midway, spawn, write_script

RUN_ID = "victim-run"
BATCH = 200
CONFIRMED = 12
ASSET = AssetKey(["crash", "asset"])

# Writes batches of BATCH events "ev-000000".. into the run, forever; the last event of each batch
# is a materialization of ASSET (so the index is written too). After each store_event_batch call
# returns it prints COMMITTED <number of events stored so far>.
WRITER = """\
import logging, os, sys, time
from dagster import AssetKey, AssetMaterialization, DagsterInstance
from dagster._core.events import (
    DagsterEvent, DagsterEventType, EngineEventData, StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry

home, run_id, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
instance = DagsterInstance.from_config(home)
storage = instance.event_log_storage
print("CLASS", type(storage).__name__, flush=True)


def entry(i, last):
    if last:
        event = DagsterEvent(
            DagsterEventType.ASSET_MATERIALIZATION.value, job_name="crash_job",
            message=f"ev-{i:06d}", step_key="writer",
            event_specific_data=StepMaterializationData(
                AssetMaterialization(asset_key=AssetKey(["crash", "asset"]), metadata={"i": i})
            ),
        )
    else:
        event = DagsterEvent(
            DagsterEventType.ENGINE_EVENT.value, job_name="crash_job", message=f"ev-{i:06d}",
            step_key="writer", event_specific_data=EngineEventData({"i": str(i)}),
        )
    return EventLogEntry(
        error_info=None, level=logging.INFO, user_message="", run_id=run_id,
        timestamp=time.time(), job_name="crash_job", step_key="writer", dagster_event=event,
    )


i = 0
while True:
    storage.store_event_batch([entry(j, j == i + batch - 1) for j in range(i, i + batch)])
    i += batch
    print("COMMITTED", i, flush=True)
"""


def _messages(records: list) -> list[str]:
    return [r.event_log_entry.dagster_event.message for r in records]


def _expected_prefix(n: int) -> list[str]:
    return [f"ev-{i:06d}" for i in range(n)]


def _crash_writer(home: Path, tmp_path: Path) -> int:
    """Start the writer, SIGKILL it once CONFIRMED batches are committed; return the number of
    events it had confirmed."""
    script = write_script(tmp_path / "writer.py", WRITER)
    proc = spawn(script, str(home), RUN_ID, str(BATCH))
    confirmed = 0

    def seen(kind: str, value: str) -> None:
        nonlocal confirmed
        if kind == "COMMITTED":
            confirmed = int(value)

    with reaped(proc):
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first == ["CLASS", "RustEventLogStorage"], first
        err = sigkill_midway(proc, seen, lambda: confirmed >= CONFIRMED * BATCH, timeout=120)
    assert confirmed >= CONFIRMED * BATCH, err[-3000:]
    assert "database is locked" not in err.lower(), err[-3000:]
    return confirmed


@pytest.fixture
def crashed_home(tmp_path: Path) -> tuple[Path, int]:
    home = write_home(tmp_path / "home", "rust")
    inst = load_instance(home)  # the index exists before the writer starts, as in a deployment
    try:
        assert isinstance(inst, dagster_rs.DagsterInstance)
        inst.report_engine_event("before the writer", job_name="other_job", run_id="other-run")
    finally:
        inst.dispose()
    return home, _crash_writer(home, tmp_path)


def _check_with_stock(home: Path, confirmed: int) -> int:
    """Stock's event log and a stock instance read what the killed process committed."""
    storage = SqliteEventLogStorage(str(home / "history" / "runs"))
    try:
        records = storage.get_records_for_run(RUN_ID).records
        stored = len(records)
        assert stored >= confirmed, f"{confirmed - stored} committed events lost"
        # No holes: what is there is exactly the writer's first `stored` events, in order.
        assert _messages(records) == _expected_prefix(stored)
        ids = [r.storage_id for r in records]
        assert ids == sorted(set(ids))
        assert storage.get_stats_for_run(RUN_ID).materializations == stored // BATCH
    finally:
        storage.dispose()

    write_home(home, "stock")
    stock = load_instance(home)
    try:
        assert type(stock.event_log_storage) is SqliteEventLogStorage
        assert len(stock.all_logs(RUN_ID)) == stored
        assert [e.message for e in stock.all_logs("other-run")] == ["before the writer"]
        _check_index(stock, stored, confirmed)
    finally:
        stock.dispose()
    return stored


def _check_index(inst: DagsterInstance, stored: int, confirmed: int) -> None:
    """Every confirmed batch's materialization is in the index; none the shard lacks."""
    records = inst.fetch_materializations(ASSET, limit=10_000, ascending=True).records
    indexed = [r.event_log_entry.dagster_event.message for r in records]
    in_shard = [f"ev-{i:06d}" for i in range(BATCH - 1, stored, BATCH)]
    assert indexed == in_shard[: len(indexed)]
    assert len(indexed) >= confirmed // BATCH
    latest = inst.get_latest_materialization_event(ASSET)
    assert latest is not None and latest.dagster_event.message == indexed[-1]
    record = inst.get_asset_records([ASSET])[0]
    assert record.asset_entry.last_materialization_record is not None
    assert record.asset_entry.last_materialization_record.storage_id == records[-1].storage_id


def _check_with_rust(home: Path, confirmed: int, stored: int | None) -> int:
    """dagster-rs reads the same, and can write on after the crash."""
    write_home(home, "rust")
    inst = load_instance(home)
    try:
        assert isinstance(inst.event_log_storage, RustEventLogStorage)
        records = inst.get_records_for_run(RUN_ID).records
        if stored is None:
            stored = len(records)
            assert stored >= confirmed, f"{confirmed - stored} committed events lost"
        assert _messages(records) == _expected_prefix(stored)
        assert inst.get_run_stats(RUN_ID).materializations == stored // BATCH
        _check_index(inst, stored, confirmed)
        assert [e.message for e in inst.all_logs("other-run")] == ["before the writer"]

        inst.store_event(engine_entry(RUN_ID, "after the crash", job_name="crash_job"))
        records = inst.get_records_for_run(RUN_ID).records
        assert _messages(records) == [*_expected_prefix(stored), "after the crash"]
        assert records[-1].storage_id > records[-2].storage_id
    finally:
        inst.dispose()
    return stored


def _integrity(home: Path) -> None:
    for name in (RUN_ID, "index", "other-run"):
        conn = sqlite3.connect(home / "history" / "runs" / f"{name}.db")
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",), name
        finally:
            conn.close()


def test_sigkill_mid_batch_then_stock_opens_first(crashed_home: tuple[Path, int]) -> None:
    home, confirmed = crashed_home
    stored = _check_with_stock(home, confirmed)
    _check_with_rust(home, confirmed, stored)
    _integrity(home)


def test_sigkill_mid_batch_then_dagster_rs_opens_first(crashed_home: tuple[Path, int]) -> None:
    home, confirmed = crashed_home
    stored = _check_with_rust(home, confirmed, None)
    # Stock then sees dagster-rs's write after the crash as well.
    storage = SqliteEventLogStorage(str(home / "history" / "runs"))
    try:
        records = storage.get_records_for_run(RUN_ID).records
        assert _messages(records) == [*_expected_prefix(stored), "after the crash"]
    finally:
        storage.dispose()
    _integrity(home)
