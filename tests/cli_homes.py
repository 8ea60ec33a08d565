"""Homes for the `dagster-rs check` / `optimize` tests: filled through Dagster's own APIs with
something for every read shape, and the crash leftovers and damage real homes have."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetObservation,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    StaticPartitionsDefinition,
    asset,
    asset_check,
    materialize,
)
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import RemotePartitionSetOrigin
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, ROOT_RUN_ID_TAG
from dagster._daemon.types import DaemonHeartbeat

from tests.conftest import write_home
from tests.sensors import REPO, add_sensor

LETTERS = StaticPartitionsDefinition(["a", "b", "c"])
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@asset
def plain() -> int:
    return 1


@asset_check(asset=plain)
def plain_positive(plain: int) -> AssetCheckResult:
    return AssetCheckResult(passed=plain > 0)


@asset(partitions_def=LETTERS)
def lettered() -> int:
    return 2


@asset
def broken() -> int:
    raise RuntimeError("boom")


def fill(inst: DagsterInstance) -> None:
    """Runs of every outcome with tags, a re-execution, partitions, an observation, an asset
    check, backfills, dynamic partitions, a pool, a daemon heartbeat, cursor values, sensors with
    ticks."""
    for owner in ("ana", "bo", "cy", "di"):
        result = materialize(
            [plain, plain_positive],
            instance=inst,
            tags={"team": "data", "owner": owner},
            run_config=QUIET,
        )
        assert result.success
    for key in ("a", "b"):
        assert materialize(
            [lettered], instance=inst, partition_key=key, tags={"team": "data"}, run_config=QUIET
        ).success
    failed = materialize(
        [broken], instance=inst, raise_on_error=False, tags={"team": "ml"}, run_config=QUIET
    )
    assert not failed.success
    first = inst.get_run_records(limit=1, ascending=True)[0].dagster_run
    inst.add_run(
        DagsterRun(
            job_name=first.job_name,
            run_id=str(uuid.uuid4()),
            status=DagsterRunStatus.QUEUED,
            remote_job_origin=REPO.get_job_origin(first.job_name),
            tags={ROOT_RUN_ID_TAG: first.run_id, PARENT_RUN_ID_TAG: first.run_id, "team": "data"},
        )
    )
    inst.report_runless_asset_event(AssetObservation(asset_key="plain", metadata={"rows": 3}))
    for i, status in enumerate((BulkActionStatus.REQUESTED, BulkActionStatus.COMPLETED_SUCCESS)):
        inst.add_backfill(
            PartitionBackfill(
                backfill_id=f"bf{i}",
                status=status,
                from_failure=False,
                tags={"team": "data"},
                backfill_timestamp=1767225600.0 + i,
                partition_set_origin=RemotePartitionSetOrigin(
                    repository_origin=REPO, partition_set_name="lettered_partition_set"
                ),
                partition_names=["a"],
                reexecution_steps=None,
                asset_selection=None,
            )
        )
    inst.add_dynamic_partitions("fruits", ["apple", "banana"])
    inst.event_log_storage.set_concurrency_slots("pool_a", 2)
    inst.add_daemon_heartbeat(
        DaemonHeartbeat(timestamp=1767225600.0, daemon_type="SENSOR", daemon_id="d1", errors=[])
    )
    inst.run_storage.set_cursor_values({"cursor_a": "1", "cursor_b": "2"})
    for i in range(2):
        skipped = (TickStatus.SKIPPED, "nothing to do")
        add_sensor(inst, f"sensor_{i}", [(TickStatus.SUCCESS, None), skipped, skipped])


def make_home(root: Path, kind: str) -> Path:
    from tests.conftest import load_instance

    home = write_home(root / kind, kind)
    inst = load_instance(home)
    try:
        fill(inst)
    finally:
        inst.dispose()
    return home


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection committed and closed at the end (sqlite3's own `with` only commits: an open
    connection would checkpoint its WAL into the file whenever it is collected)."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def shards(home: Path) -> list[Path]:
    return sorted(p for p in (home / "history/runs").glob("*.db") if p.name != "index.db")


def run_shard(home: Path) -> Path:
    """The shard of the newest run that has one."""
    for run_id in run_ids(home):
        path = home / "history/runs" / f"{run_id}.db"
        if path.exists():
            return path
    raise AssertionError("no run has a shard")


def run_ids(home: Path) -> list[str]:
    with connect(home / "history/runs.db") as conn:
        return [r for (r,) in conn.execute("SELECT run_id FROM runs ORDER BY id DESC")]


def checkpoint_all(home: Path) -> None:
    """Every WAL folded into its file: the files' bytes are then the whole state."""
    for path in home.rglob("*.db"):
        if path.stat().st_size == 0:
            continue
        with connect(path) as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def contents(home: Path) -> dict[str, bytes]:
    """The home's files but SQLite's shared-memory index and empty WALs (no data: a reader may
    create and leave them)."""
    out = {}
    for p in sorted(home.rglob("*")):
        if not p.is_file() or p.name.endswith("-shm"):
            continue
        if p.name.endswith("-wal") and p.stat().st_size == 0:
            continue
        out[str(p.relative_to(home))] = p.read_bytes()
    return out


# -- crash leftovers -------------------------------------------------------------------------

_WRITER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size=10")  # a small cache spills changed pages into the file
conn.execute("BEGIN")
conn.execute(f"UPDATE {sys.argv[2]} SET {sys.argv[3]} = {sys.argv[3]} || zeroblob(3000)")
conn.execute("CREATE TABLE spill(x)")
conn.execute(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200)"
    " INSERT INTO spill SELECT zeroblob(4000) FROM c"
)
print("ready", flush=True)
time.sleep(600)
"""


def leave_hot_journal(shard: Path, table: str = "event_logs", column: str = "event") -> bytes:
    """Kill a process in the middle of a transaction on `shard` (put in rollback-journal mode
    first, as a shard is while stock creates it) once it has written changed pages into the file:
    a hot journal is left beside it. Returns the file's bytes before the transaction."""
    with connect(shard) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    before = shard.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(shard), table, column],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    journal = Path(str(shard) + "-journal")
    assert journal.stat().st_size > 0
    assert shard.read_bytes() != before, "the transaction's pages never reached the file"
    return before


def new_shard(home: Path) -> Path:
    return home / "history/runs" / f"{uuid.uuid4()}.db"


def leave_empty_shard(home: Path) -> Path:
    path = new_shard(home)
    path.touch()
    return path


def leave_tableless_shard(home: Path) -> Path:
    path = new_shard(home)
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # the first thing stock's creation writes
    assert path.stat().st_size > 0
    return path


def leave_half_built_shard(home: Path) -> Path:
    """Some of the event log's tables and no alembic stamp: a stock writer killed while creating
    the shard (`SqlEventLogStorageMetadata.create_all` is not one transaction)."""
    path = new_shard(home)
    import sqlalchemy as sa
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable

    engine = sa.create_engine(f"sqlite:///{path}")
    SqlEventLogStorageTable.create(engine)
    engine.dispose()
    return path


def corrupt(path: Path) -> None:
    """Garbage over the second and third pages (b-tree pages of some table or index)."""
    with connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[page : 3 * page] = b"\xa5" * (2 * page)
    path.write_bytes(bytes(data))


def convert_to_047(runs_db: Path) -> None:
    """The layout `dagster instance migrate` leaves on a home created before Dagster 1.9.3 (the
    issue's reproduction)."""
    with connect(runs_db) as conn:
        conn.execute("CREATE UNIQUE INDEX idx_run_tags_run_id ON run_tags (key, value, run_id)")
        conn.execute("DROP INDEX idx_run_tags")


def stamp(path: Path, rev: str) -> None:
    with connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (rev,))


# -- an oracle independent of check ------------------------------------------------------------


def differing_reads(
    home: Path, tmp: Path, reads: dict[str, Callable[[DagsterInstance], Any]]
) -> list[str]:
    """The reads whose outcome (value, or exception class and message) differs between a stock
    and a dagster-rs instance, each opened on its own copy of `home`."""
    from tests.conftest import call, load_instance

    outcomes: dict[str, dict[str, Any]] = {}
    for kind in ("stock", "rust"):
        copy = tmp / f"oracle_{kind}"
        shutil.copytree(home, copy)
        write_home(copy, kind)
        inst = load_instance(copy)
        try:
            for name, fn in reads.items():
                o = call(fn, inst)
                outcomes.setdefault(name, {})[kind] = (
                    (o.error.__name__, o.message) if o.error else ("ok", o.value)
                )
        finally:
            inst.dispose()
    return [name for name, o in outcomes.items() if o["stock"] != o["rust"]]


def env_without_overrides() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DAGSTER_RS_DOMAINS", "DAGSTER_RS_DURABILITY"):
        env.pop(name, None)
    return env
