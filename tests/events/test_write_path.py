"""The native event store's write path and reads, checked against stock Dagster's own files.

A stock instance runs real materializations (asset checks, partitions, a runless observation);
every event it stored is then stored again, in the same order, through `event_row` and the native
`EventStore` into a second, empty event-log directory. Both directories must then hold the same
rows: event rows in each run shard and in the index, the asset index (`asset_keys`), the indexed
asset tags and the asset-check executions.

The events domain is not switchable yet (ARCHITECTURE.md); this drives the store directly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetObservation,
    DagsterInstance,
    DailyPartitionsDefinition,
    DataVersion,
    MaterializeResult,
    asset,
    asset_check,
    materialize,
)
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.event_api import EventLogCursor
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._serdes import deserialize_value

from dagster_rs._native import EventStore
from dagster_rs.storage.event_rows import event_row
from tests.conftest import make_instance


@asset
def upstream() -> MaterializeResult:
    return MaterializeResult(data_version=DataVersion("v1"), tags={"not_indexed": "x"})


@asset_check(asset=upstream)
def upstream_is_fine() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


@asset_check(asset=upstream)
def upstream_is_perfect() -> AssetCheckResult:
    return AssetCheckResult(passed=False)


@asset(partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"))
def daily(context) -> None:
    context.log.info(f"partition {context.partition_key}")


TABLES = {
    "event_logs": "SELECT id, run_id, event, dagster_event_type, timestamp, step_key, asset_key,"
    " partition FROM event_logs ORDER BY id",
    "asset_keys": "SELECT asset_key, last_materialization, last_run_id,"
    " last_materialization_timestamp FROM asset_keys ORDER BY asset_key",
    "asset_event_tags": "SELECT event_id, asset_key, key, value, event_timestamp"
    " FROM asset_event_tags ORDER BY id",
    "asset_check_executions": "SELECT asset_key, check_name, partition, run_id,"
    " execution_status, evaluation_event, evaluation_event_timestamp,"
    " evaluation_event_storage_id, materialization_event_storage_id"
    " FROM asset_check_executions ORDER BY id",
}


def dump(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        return {name: conn.execute(sql).fetchall() for name, sql in TABLES.items()}
    finally:
        conn.close()


class Replay:
    def __init__(self, stock: DagsterInstance, rust_dir: Path):
        self.stock = stock
        self.stock_dir = Path(stock.root_directory) / "history" / "runs"
        self.rust_dir = rust_dir
        self.store = EventStore(str(rust_dir))
        # Runs in creation order, then the runless events, each run's events in storage order.
        self.run_ids = [r.dagster_run.run_id for r in reversed(stock.get_run_records())] + [""]

    def replay(self) -> None:
        for run_id in self.run_ids:
            records = self.stock.event_log_storage.get_records_for_run(run_id).records
            self.store.store_events([event_row(r.event_log_entry) for r in records])

    def files(self) -> list[str]:
        return [f"{run_id}.db" for run_id in self.run_ids] + ["index.db"]

    def compare(self) -> None:
        # Never read the store's files with Python's sqlite3 while the store holds them open
        # (ARCHITECTURE.md, "One SQLite per process").
        self.store.dispose()
        for name in self.files():
            assert dump(self.rust_dir / name) == dump(self.stock_dir / name), name


@pytest.fixture
def replay(tmp_path: Path) -> Iterator[Replay]:
    stock = make_instance(tmp_path, "stock")
    try:
        assert materialize(
            [upstream, upstream_is_fine, upstream_is_perfect], instance=stock
        ).success
        for day in ("2024-01-01", "2024-01-02"):
            assert materialize([daily], partition_key=day, instance=stock).success
        stock.report_runless_asset_event(AssetObservation(asset_key="upstream", tags={}))
        r = Replay(stock, tmp_path / "rust_events")
        r.replay()
        yield r
        r.store.dispose()
    finally:
        stock.dispose()


def test_every_row_matches_stock(replay: Replay) -> None:
    replay.compare()
    index = dump(replay.rust_dir / "index.db")
    # The comparison is not vacuous: every kind of side effect happened.
    assert {row[1] for row in index["asset_check_executions"]} == {
        "upstream_is_fine",
        "upstream_is_perfect",
    }
    assert {row[4] for row in index["asset_check_executions"]} == {"SUCCEEDED", "FAILED"}
    assert {row[2] for row in index["asset_event_tags"]} == {"dagster/data_version"}
    assert ('["upstream"]', "v1") in {(row[1], row[3]) for row in index["asset_event_tags"]}
    assert {row[0] for row in index["asset_keys"]} == {'["upstream"]', '["daily"]'}
    assert any(row[1] == "" for row in index["event_logs"]), "the runless observation"


def test_run_reads_match_stock(replay: Replay) -> None:
    storage = replay.stock.event_log_storage
    for run_id in replay.run_ids:
        stock_records = storage.get_records_for_run(run_id).records
        expected = [(r.storage_id, r.event_log_entry) for r in stock_records]
        got = replay.store.records_for_run(run_id, None, [], None, True)
        assert [i for i, _ in got] == [i for i, _ in expected]
        # Same bodies, so they deserialize to the same entries.
        assert [deserialize_value(body) for _, body in got] == [e for _, e in expected]

    run_id = replay.run_ids[0]
    step_types = [DagsterEventType.STEP_SUCCESS.value, DagsterEventType.STEP_START.value]
    for cursor, ascending, limit in [(-1, True, 3), (10, True, None), (10_000, False, 4)]:
        stock_page = storage.get_records_for_run(
            run_id,
            cursor=EventLogCursor.from_storage_id(cursor).to_string(),
            of_type={DagsterEventType(t) for t in step_types},
            limit=limit,
            ascending=ascending,
        ).records
        native = replay.store.records_for_run(
            run_id, ("storage_id", cursor), step_types, limit, ascending
        )
        assert [i for i, _ in native] == [r.storage_id for r in stock_page]

    stats = dict((t, n) for t, n, _ in replay.store.stats_for_run(run_id, step_types))
    stock_stats = replay.stock.get_run_stats(run_id)
    assert stats[DagsterEventType.STEP_SUCCESS.value] == stock_stats.steps_succeeded
    assert replay.store.max_record_id() == storage.get_maximum_record_id()


def test_delete_events_matches_stock(replay: Replay) -> None:
    run_id = replay.run_ids[0]
    replay.stock.event_log_storage.delete_events(run_id)
    replay.store.delete_events(run_id)
    replay.compare()
    assert replay.store.records_for_run(run_id, None, [], None, True) == []


def test_run_ids_that_would_leave_the_directory_are_refused(tmp_path: Path) -> None:
    store = EventStore(str(tmp_path / "runs"))
    entry = EventLogEntry(
        error_info=None,
        level=20,
        user_message="hello",
        run_id="../outside",
        timestamp=1_700_000_000.5,
    )
    with pytest.raises(DagsterInvariantViolationError, match="cannot name an event log shard"):
        store.store_events([event_row(entry)])
    assert not (tmp_path / "outside.db").exists()
