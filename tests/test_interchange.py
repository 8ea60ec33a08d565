"""Interchange: one DAGSTER_HOME, written by one implementation and read by the other.

dagster-rs keeps Dagster's own SQLite files, so a home must move freely between a stock instance
and a dagster-rs one: whatever one writes (runs with tags, snapshots, status changes, backfills,
heartbeats, cursors) the other must read back identically, and a home created by stock must open
under dagster-rs without being altered.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.events import (
    DagsterEvent,
    DagsterEventType,
    JobFailureData,
    RunFailureReason,
)
from dagster._core.execution.backfill import (
    BulkActionsFilter,
    BulkActionStatus,
    PartitionBackfill,
)
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemotePartitionSetOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.runs.migration import OPTIONAL_DATA_MIGRATIONS, REQUIRED_DATA_MIGRATIONS
from dagster._core.storage.tags import (
    BACKFILL_ID_TAG,
    PARENT_RUN_ID_TAG,
    PARTITION_NAME_TAG,
    PARTITION_SET_TAG,
    ROOT_RUN_ID_TAG,
    RUN_FAILURE_REASON_TAG,
)
from dagster._core.utils import make_new_run_id
from dagster._daemon.types import DaemonHeartbeat
from dagster._serdes import serialize_value

from dagster_rs.storage import RustRunStorage
from tests.conftest import open_as
from tests.workload_defs import colored, raw_numbers

HISTORICAL_CREATED = datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
CURSOR_KEYS = {"cursor_a", "cursor_b", "cursor_missing"}


def _open(home: Path, kind: str) -> DagsterInstance:
    """(Re)write home's dagster.yaml for `kind` and load the instance it describes."""
    return open_as(home, kind, "run_storage", RustRunStorage, SqliteRunStorage)


def _partition_set_origin(name: str) -> RemotePartitionSetOrigin:
    return RemotePartitionSetOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=RegisteredCodeLocationOrigin(location_name="interchange_location"),
            repository_name="interchange_repo",
        ),
        partition_set_name=name,
    )


def populate(inst: DagsterInstance, label: str, execute: bool = True) -> dict[str, Any]:
    """Write one of everything the runs domain stores; return the ids needed to check it."""
    ids: dict[str, Any] = {"label": label}

    if execute:
        # Real executions: job and execution plan snapshots, status changes driven by events.
        result = materialize([raw_numbers], instance=inst, tags={"origin": label})
        assert result.success
        ids["materialize"] = result.run_id
        result = materialize([colored], instance=inst, partition_key="red", tags={"origin": label})
        assert result.success
        ids["partitioned"] = result.run_id

    job = f"interchange_job_{label}"
    root = DagsterRun(
        job_name=job,
        run_id=make_new_run_id(),
        tags={
            "origin": label,
            "team": "data",
            PARTITION_NAME_TAG: "2024-01-01",
            PARTITION_SET_TAG: f"{job}_partition_set",
        },
    )
    inst.add_run(root)
    child = DagsterRun(
        job_name=job,
        run_id=make_new_run_id(),
        parent_run_id=root.run_id,
        root_run_id=root.run_id,
        tags={"origin": label, PARENT_RUN_ID_TAG: root.run_id, ROOT_RUN_ID_TAG: root.run_id},
    )
    inst.add_run(child)
    backfill_id = f"bf{label}"
    in_backfill = DagsterRun(
        job_name=job,
        run_id=make_new_run_id(),
        tags={"origin": label, "team": "data", BACKFILL_ID_TAG: backfill_id},
    )
    inst.add_run(in_backfill)
    historical = DagsterRun(
        job_name=f"historical_job_{label}", run_id=make_new_run_id(), tags={"origin": label}
    )
    inst.run_storage.add_historical_run(historical, HISTORICAL_CREATED)
    ids.update(
        job=job,
        root=root.run_id,
        child=child.run_id,
        in_backfill=in_backfill.run_id,
        historical=historical.run_id,
        backfill_id=backfill_id,
    )

    # Status changes, reported the way Dagster's machinery reports them (through the event log).
    inst.report_run_canceling(root)
    inst.report_run_canceled(root)
    inst.report_run_failed(
        child,
        job_failure_data=JobFailureData(error=None, failure_reason=RunFailureReason.RUN_EXCEPTION),
    )
    inst.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=job),
        run_id=in_backfill.run_id,
    )
    inst.add_run_tags(in_backfill.run_id, {"team": "ml", "extra": "yes"})

    # Backfills: one job backfill (selector id, job name), one asset backfill, then an update.
    job_backfill = PartitionBackfill(
        backfill_id=backfill_id,
        status=BulkActionStatus.REQUESTED,
        from_failure=False,
        tags={"origin": label, "kind": "job"},
        backfill_timestamp=time.time(),
        partition_set_origin=_partition_set_origin(f"{job}_partition_set"),
        partition_names=["2024-01-01", "2024-01-02"],
    )
    inst.add_backfill(job_backfill)
    asset_backfill = PartitionBackfill(
        backfill_id=f"abf{label}",
        status=BulkActionStatus.REQUESTED,
        from_failure=False,
        tags={"origin": label, "kind": "asset"},
        backfill_timestamp=time.time(),
        asset_selection=[AssetKey("colored")],
        serialized_asset_backfill_data="opaque-asset-backfill-data",
    )
    inst.add_backfill(asset_backfill)
    inst.update_backfill(job_backfill.with_status(BulkActionStatus.COMPLETED_SUCCESS))
    ids.update(job_backfill=job_backfill.backfill_id, asset_backfill=asset_backfill.backfill_id)

    inst.add_daemon_heartbeat(
        DaemonHeartbeat(
            timestamp=time.time(), daemon_type=f"DAEMON_{label}", daemon_id=label, errors=[]
        )
    )
    inst.run_storage.set_cursor_values({"cursor_a": f"a-{label}", "cursor_b": f"b-{label}"})
    ids["storage_id"] = inst.run_storage.get_run_storage_id()
    return ids


def observe(inst: DagsterInstance) -> dict[str, Any]:
    """Everything the runs domain answers, as plain comparable values."""
    storage = inst.run_storage
    runs = list(inst.get_runs())
    tag_keys = sorted(inst.get_run_tag_keys())
    tags = sorted((key, sorted(values)) for key, values in inst.get_run_tags(tag_keys))
    job_names = sorted({run.job_name for run in runs})
    snapshot_ids = sorted({run.job_snapshot_id for run in runs if run.job_snapshot_id})
    plan_ids = sorted(
        {run.execution_plan_snapshot_id for run in runs if run.execution_plan_snapshot_id}
    )
    backfills = list(inst.get_backfills())
    obs: dict[str, Any] = {
        "runs": runs,
        "runs_ascending": list(inst.get_runs(ascending=True)),
        "run_ids": list(inst.get_run_ids()),
        "count": inst.get_runs_count(),
        "records": [
            (
                r.storage_id,
                r.dagster_run,
                r.create_timestamp,
                r.update_timestamp,
                r.start_time,
                r.end_time,
            )
            for r in inst.get_run_records()
        ],
        "tag_keys": tag_keys,
        "tags": tags,
        "ids_by_status": {
            status.value: sorted(inst.get_run_ids(RunsFilter(statuses=[status])))
            for status in DagsterRunStatus
        },
        "ids_by_tag": {
            (key, value): sorted(inst.get_run_ids(RunsFilter(tags={key: value})))
            for key, values in tags
            for value in values
        },
        "ids_by_job": {
            job: sorted(inst.get_run_ids(RunsFilter(job_name=job))) for job in job_names
        },
        "groups": {run.run_id: inst.get_run_group(run.run_id) for run in runs},
        "job_snapshots": {sid: serialize_value(inst.get_job_snapshot(sid)) for sid in snapshot_ids},
        "has_job_snapshot": {sid: inst.has_job_snapshot(sid) for sid in snapshot_ids},
        "plan_snapshots": {
            pid: serialize_value(inst.get_execution_plan_snapshot(pid)) for pid in plan_ids
        },
        "partition_data": sorted(
            (
                (p.run_id, p.partition, p.status.value, p.start_time, p.end_time)
                for p in storage.get_run_partition_data(
                    RunsFilter(job_name="__ephemeral_asset_job__")
                )
            ),
        ),
        "backfills": backfills,
        "backfills_count": inst.get_backfills_count(),
        "backfills_by_id": {b.backfill_id: inst.get_backfill(b.backfill_id) for b in backfills},
        "backfills_by_status": {
            status.value: [
                b.backfill_id
                for b in inst.get_backfills(filters=BulkActionsFilter(statuses=[status]))
            ]
            for status in BulkActionStatus
        },
        "backfills_by_job": {
            b.job_name: [
                x.backfill_id for x in inst.get_backfills(BulkActionsFilter(job_name=b.job_name))
            ]
            for b in backfills
            if b.job_name
        },
        "heartbeats": dict(inst.get_daemon_heartbeats()),
        "cursors": dict(storage.get_cursor_values(CURSOR_KEYS)),
        "storage_id": storage.get_run_storage_id(),
        "alembic_version": tuple(storage.alembic_version() or ()),
        "built_indexes": {
            name: storage.has_built_index(name)
            for name in [*REQUIRED_DATA_MIGRATIONS, *OPTIONAL_DATA_MIGRATIONS]
        },
    }
    return obs


def assert_same_observation(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    assert expected.keys() == actual.keys()
    differing = [key for key in expected if expected[key] != actual[key]]
    assert not differing, "\n".join(
        f"{key}:\n  writer: {expected[key]!r}\n  reader: {actual[key]!r}" for key in differing
    )


def check_content(obs: dict[str, Any], ids: dict[str, Any]) -> None:
    """What `populate` wrote is there with the meaning Dagster gives it (as read by `obs`)."""
    runs = {run.run_id: run for run in obs["runs"]}
    records = {rec[1].run_id: rec for rec in obs["records"]}
    label = ids["label"]
    if "materialize" in ids:
        check_executions(obs, ids)
    assert runs[ids["root"]].status == DagsterRunStatus.CANCELED
    child = runs[ids["child"]]
    assert child.status == DagsterRunStatus.FAILURE
    assert child.tags[RUN_FAILURE_REASON_TAG] == RunFailureReason.RUN_EXCEPTION.value
    in_backfill = runs[ids["in_backfill"]]
    assert in_backfill.status == DagsterRunStatus.STARTED
    assert in_backfill.tags["team"] == "ml"
    assert in_backfill.tags["extra"] == "yes"
    assert in_backfill.tags[BACKFILL_ID_TAG] == ids["backfill_id"]
    assert runs[ids["historical"]].status == DagsterRunStatus.NOT_STARTED

    assert records[ids["historical"]][2] == HISTORICAL_CREATED
    assert records[ids["in_backfill"]][4] is not None  # start_time from RUN_START
    assert records[ids["root"]][5] is not None  # end_time from RUN_CANCELED

    assert obs["groups"][ids["child"]][0] == ids["root"]
    assert {r.run_id for r in obs["groups"][ids["child"]][1]} == {ids["root"], ids["child"]}
    assert ids["in_backfill"] in obs["ids_by_tag"][("team", "ml")]
    assert ids["in_backfill"] not in obs["ids_by_tag"].get(("team", "data"), [])
    assert ids["root"] in obs["ids_by_tag"][("team", "data")]
    assert sorted(obs["ids_by_job"][ids["job"]]) == sorted(
        [ids["root"], ids["child"], ids["in_backfill"]]
    )
    backfills = obs["backfills_by_id"]
    assert backfills[ids["job_backfill"]].status == BulkActionStatus.COMPLETED_SUCCESS
    assert backfills[ids["job_backfill"]].partition_names == ["2024-01-01", "2024-01-02"]
    assert backfills[ids["asset_backfill"]].status == BulkActionStatus.REQUESTED
    assert backfills[ids["asset_backfill"]].asset_selection == [AssetKey("colored")]
    assert ids["job_backfill"] in obs["backfills_by_status"]["COMPLETED_SUCCESS"]
    assert ids["asset_backfill"] in obs["backfills_by_status"]["REQUESTED"]
    assert ids["job_backfill"] in obs["backfills_by_job"][ids["job"]]
    assert obs["heartbeats"][f"DAEMON_{label}"].daemon_id == label
    assert obs["cursors"] == {"cursor_a": f"a-{label}", "cursor_b": f"b-{label}"}
    assert obs["storage_id"] == ids["storage_id"]


def check_executions(obs: dict[str, Any], ids: dict[str, Any]) -> None:
    runs = {run.run_id: run for run in obs["runs"]}
    records = {rec[1].run_id: rec for rec in obs["records"]}
    assert runs[ids["materialize"]].status == DagsterRunStatus.SUCCESS
    assert runs[ids["materialize"]].tags["origin"] == ids["label"]
    assert runs[ids["partitioned"]].status == DagsterRunStatus.SUCCESS
    assert runs[ids["partitioned"]].tags[PARTITION_NAME_TAG] == "red"
    assert records[ids["materialize"]][4] is not None
    assert records[ids["materialize"]][5] is not None
    snapshot_id = runs[ids["materialize"]].job_snapshot_id
    assert snapshot_id in obs["job_snapshots"]
    assert obs["has_job_snapshot"][snapshot_id] is True
    assert runs[ids["materialize"]].execution_plan_snapshot_id in obs["plan_snapshots"]
    # One entry per partition: its latest run (which may be another writer's, on a shared home).
    red = [p for p in obs["partition_data"] if p[1] == "red"]
    assert len(red) == 1
    assert runs[red[0][0]].tags[PARTITION_NAME_TAG] == "red"
    assert red[0][2] == DagsterRunStatus.SUCCESS.value


def sqlite_master(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        rows += [("alembic", *r, None, None) for r in conn.execute("SELECT * FROM alembic_version")]
    return sorted(rows, key=repr)


def runs_db(home: Path) -> Path:
    return home / "history" / "runs.db"


def test_rust_writes_stock_reads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rust = _open(home, "rust")
    try:
        ids = populate(rust, "rs")
        written = observe(rust)
        check_content(written, ids)
        # A stock run storage on the same file while the dagster-rs instance is still open.
        live = SqliteRunStorage.from_local(str(home / "history"))
        try:
            assert live.get_runs() == written["runs"]
            assert live.get_runs_count() == written["count"]
        finally:
            live.dispose()
    finally:
        rust.dispose()

    stock = _open(home, "stock")
    try:
        read = observe(stock)
    finally:
        stock.dispose()
    assert_same_observation(written, read)
    check_content(read, ids)


def test_stock_writes_rust_reads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stock = _open(home, "stock")
    try:
        ids = populate(stock, "st")
        written = observe(stock)
        check_content(written, ids)
    finally:
        stock.dispose()

    rust = _open(home, "rust")
    try:
        read = observe(rust)
    finally:
        rust.dispose()
    assert_same_observation(written, read)
    check_content(read, ids)


def test_stock_home_opened_by_rust_and_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stock = _open(home, "stock")
    try:
        stock_ids = populate(stock, "st")
        before = observe(stock)
    finally:
        stock.dispose()
    schema_before = sqlite_master(runs_db(home))

    rust = _open(home, "rust")
    try:
        assert_same_observation(before, observe(rust))
        rust_ids = populate(rust, "rs")
        after_rust = observe(rust)
    finally:
        rust.dispose()
    # Opening (and writing to) a stock home must not alter its schema or stamp.
    assert sqlite_master(runs_db(home)) == schema_before

    stock = _open(home, "stock")
    try:
        read = observe(stock)
        assert_same_observation(after_rust, read)
        # Cursors are a key-value store: the later writer's values win.
        check_content({**read, "cursors": {"cursor_a": "a-st", "cursor_b": "b-st"}}, stock_ids)
        check_content(read, {**rust_ids, "storage_id": stock_ids["storage_id"]})
        assert read["count"] == 2 * 6
        # And once more the other way, on the home both have now written to.
        more = populate(stock, "st2", execute=False)
        final = observe(stock)
    finally:
        stock.dispose()

    rust = _open(home, "rust")
    try:
        assert_same_observation(final, observe(rust))
        check_content(final, {**more, "storage_id": stock_ids["storage_id"]})
    finally:
        rust.dispose()


def test_both_open_in_one_process_interleaved(tmp_path: Path) -> None:
    """Stock's run storage and dagster-rs's on one runs.db in the same process, as the brief's
    `SqliteRunStorage.from_local(home/'history')` recipe does: one SQLite library holds the file
    for both, so neither loses the other's writes."""
    home = tmp_path / "home"
    rust = _open(home, "rust")
    stock_storage = SqliteRunStorage.from_local(str(home / "history"))
    try:
        written: list[str] = []
        for i in range(20):
            writer = rust.run_storage if i % 2 == 0 else stock_storage
            run = DagsterRun(
                job_name=f"interleaved_{i % 3}",
                run_id=make_new_run_id(),
                tags={"writer": "rust" if i % 2 == 0 else "stock", "i": str(i)},
            )
            writer.add_run(run)
            written.append(run.run_id)
            # Each side sees the other's write immediately.
            only_this = RunsFilter(run_ids=[run.run_id])
            assert rust.run_storage.get_runs(only_this) == [run]
            assert stock_storage.get_runs(only_this) == [run]
        for storage in (rust.run_storage, stock_storage):
            assert list(storage.get_run_ids()) == list(reversed(written))
            assert storage.get_runs_count(RunsFilter(tags={"writer": "stock"})) == 10
        assert rust.get_runs() == stock_storage.get_runs()
        assert [(r.storage_id, r.create_timestamp) for r in rust.get_run_records()] == [
            (r.storage_id, r.create_timestamp) for r in stock_storage.get_run_records()
        ]
    finally:
        stock_storage.dispose()
        rust.dispose()


@pytest.mark.parametrize("writer_kind", ["rust", "stock"])
def test_status_and_tag_updates_cross_over(tmp_path: Path, writer_kind: str) -> None:
    """Updates by one side to a run the other side created are seen by both."""
    home = tmp_path / "home"
    creator_kind = "stock" if writer_kind == "rust" else "rust"
    creator = _open(home, creator_kind)
    run = DagsterRun(job_name="crossover", run_id=make_new_run_id(), tags={"a": "1"})
    try:
        creator.add_run(run)
    finally:
        creator.dispose()

    writer = _open(home, writer_kind)
    try:
        writer.report_dagster_event(
            DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name="crossover"),
            run_id=run.run_id,
        )
        writer.add_run_tags(run.run_id, {"a": "2", "b": "3"})
        writer.report_run_failed(writer.get_run_by_id(run.run_id))  # type: ignore[arg-type]
        expected = writer.get_run_record_by_id(run.run_id)
    finally:
        writer.dispose()
    assert expected is not None
    assert expected.dagster_run.status == DagsterRunStatus.FAILURE
    assert expected.dagster_run.tags == {"a": "2", "b": "3"}

    reader = _open(home, creator_kind)
    try:
        got = reader.get_run_record_by_id(run.run_id)
        assert got == expected
        assert reader.get_run_ids(RunsFilter(tags={"a": "2"})) == [run.run_id]
        assert reader.get_run_ids(RunsFilter(tags={"a": "1"})) == []
        assert reader.get_run_ids(RunsFilter(statuses=[DagsterRunStatus.FAILURE])) == [run.run_id]
    finally:
        reader.dispose()


# A stock process serving requests on stdin: "add <run_id> <i>" adds a run, "get <run_id>" answers
# whether it sees it, "ids" lists every run id it sees.
STOCK_PEER = """\
import json, sys
from dagster._core.storage.dagster_run import DagsterRun, RunsFilter
from dagster._core.storage.runs import SqliteRunStorage

storage = SqliteRunStorage.from_local(sys.argv[1])
print("READY", flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "add":
        run = DagsterRun(job_name="peer_job", run_id=args[0], tags={"writer": "stock", "i": args[1]})
        storage.add_run(run)
        print("OK", flush=True)
    elif cmd == "get":
        runs = storage.get_runs(RunsFilter(run_ids=[args[0]]))
        print(json.dumps([r.run_id for r in runs]), flush=True)
    elif cmd == "ids":
        print(json.dumps(list(storage.get_run_ids())), flush=True)
storage.dispose()
"""


def test_both_open_in_two_processes_interleaved(tmp_path: Path) -> None:
    """A stock process and a dagster-rs process on one home at once (e.g. webserver + daemon)."""
    home = tmp_path / "home"
    rust = _open(home, "rust")
    script = tmp_path / "stock_peer.py"
    script.write_text(STOCK_PEER)
    peer = subprocess.Popen(
        [sys.executable, str(script), str(home / "history")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert peer.stdin is not None and peer.stdout is not None

    def ask(line: str) -> str:
        peer.stdin.write(line + "\n")  # type: ignore[union-attr]
        peer.stdin.flush()  # type: ignore[union-attr]
        answer = peer.stdout.readline().strip()  # type: ignore[union-attr]
        assert answer, f"stock peer died: {peer.stderr.read() if peer.stderr else ''}"
        return answer

    try:
        assert peer.stdout.readline().strip() == "READY", peer.stderr.read() if peer.stderr else ""
        written: list[str] = []
        for i in range(20):
            run_id = make_new_run_id()
            if i % 2 == 0:
                rust.add_run(
                    DagsterRun(
                        job_name="peer_job", run_id=run_id, tags={"writer": "rust", "i": str(i)}
                    )
                )
            else:
                assert ask(f"add {run_id} {i}") == "OK"
            written.append(run_id)
            # Each side sees every write immediately.
            assert json.loads(ask(f"get {run_id}")) == [run_id]
            assert [r.run_id for r in rust.get_runs(RunsFilter(run_ids=[run_id]))] == [run_id]
        assert json.loads(ask("ids")) == list(reversed(written))
        assert list(rust.get_run_ids()) == list(reversed(written))
        assert rust.get_runs_count(RunsFilter(tags={"writer": "stock"})) == 10
    finally:
        if peer.stdin:
            peer.stdin.close()
        try:
            peer.wait(timeout=60)
        finally:
            if peer.poll() is None:
                peer.kill()
        rust.dispose()

    stock = _open(home, "stock")
    try:
        assert list(stock.get_run_ids()) == list(reversed(written))
    finally:
        stock.dispose()


def test_stock_migration_in_process_keeps_every_write(tmp_path: Path) -> None:
    """dagster-rs's own in-process use of stock's storage (data migrations) closes the Rust
    connections first, so writes on either side of it all reach the file."""
    home = tmp_path / "home"
    rust = _open(home, "rust")
    try:
        before = [DagsterRun(job_name="m", run_id=make_new_run_id()) for _ in range(5)]
        for run in before:
            rust.add_run(run)
        rust.run_storage.migrate(force_rebuild_all=True)
        rust.run_storage.optimize(force_rebuild_all=True)
        after = [DagsterRun(job_name="m", run_id=make_new_run_id()) for _ in range(5)]
        for run in after:
            rust.add_run(run)
        expected = [r.run_id for r in reversed(before + after)]
        assert list(rust.get_run_ids()) == expected
        # Another process must see every commit while this one still has the store open.
        seen = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
                " print(c.execute('SELECT count(*) FROM runs').fetchone()[0])",
                str(home / "history" / "runs.db"),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        assert int(seen.stdout) == len(expected)
    finally:
        rust.dispose()
    stock = SqliteRunStorage.from_local(str(home / "history"))
    try:
        assert list(stock.get_run_ids()) == expected
    finally:
        stock.dispose()
