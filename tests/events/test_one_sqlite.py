"""With the events domain live, no Python `sqlite3` connection ever opens the event log.

Stock asset, asset-check, concurrency and dynamic-partition methods stay Python over the event
log's files, but their SQLAlchemy engines get the core's connections (a DB-API bridge). A second
SQLite library on the same files in one process would lose locks and WAL frames
(ARCHITECTURE.md, "One SQLite per process"). This runs a workload that reaches those stock methods
and records every file Python's `sqlite3` is asked to open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetKey,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    asset,
    asset_check,
    materialize,
)

from tests.conftest import make_instance


@asset
def upstream() -> int:
    return 1


@asset_check(asset=upstream)
def upstream_ok() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


@asset(partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"))
def daily(upstream: int) -> int:
    return upstream


@asset(partitions_def=DynamicPartitionsDefinition(name="colors"))
def colored() -> None:
    pass


def test_stock_methods_reach_the_event_log_through_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_connect = sqlite3.connect

    def recording_connect(database, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(database))
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recording_connect)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", recording_connect)

    inst = make_instance(tmp_path, "rust")
    try:
        assert "events" in inst.rust_domains
        inst.add_dynamic_partitions("colors", ["red", "blue"])
        assert materialize([upstream, upstream_ok], instance=inst).success
        assert materialize([upstream, daily], instance=inst, partition_key="2024-01-02").success
        assert materialize([colored], instance=inst, partition_key="red").success
        storage = inst.event_log_storage
        assert inst.get_latest_materialization_event(AssetKey("upstream")) is not None
        assert storage.get_asset_records([AssetKey("upstream")])
        assert inst.get_materialized_partitions(AssetKey("daily")) == {"2024-01-02"}
        assert inst.get_dynamic_partitions("colors") == ["red", "blue"]
        assert storage.get_latest_asset_check_execution_by_key  # stock reader on the index
        inst.event_log_storage.set_concurrency_slots("pool", 2)
        assert inst.event_log_storage.get_concurrency_keys() == {"pool"}
        inst.wipe_assets([AssetKey("upstream")])
        assert inst.get_latest_materialization_event(AssetKey("upstream")) is None
    finally:
        inst.dispose()

    event_log_dir = str(tmp_path / "rust_home" / "history" / "runs")
    assert [path for path in opened if path.startswith(event_log_dir)] == []
    # runs.db is the runs domain's, also Rust.
    assert [path for path in opened if path.endswith("runs.db")] == []


READ_AND_CLOSE = """\
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(conn.execute("SELECT count(*) FROM event_logs").fetchone()[0])
conn.close()
"""


def test_a_reader_in_another_process_never_removes_the_writers_wal(rust_instance) -> None:
    """The writer keeps its shard open between commits; it must keep holding SQLite's locks on
    the file, or another process's last close checkpoints and deletes the WAL under it and its
    later commits go to an unlinked file (nothing else would see them)."""
    import subprocess
    import sys

    storage = rust_instance.event_log_storage
    shard = Path(storage.path_for_shard("held"))

    def readers_count() -> int:
        out = subprocess.run(
            [sys.executable, "-c", READ_AND_CLOSE, str(shard)],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout)

    for n in range(1, 4):
        rust_instance.report_engine_event(f"ev-{n}", job_name="j", run_id="held")
        assert readers_count() == n
        assert Path(f"{shard}-wal").exists()
