"""The run storage's public surface through `pair.same`, on SQLite and on PostgreSQL: runs, tags,
filters and paging cursors, run groups, deletes, partition data, snapshots, backfills, and the
config domain's methods (daemon heartbeats, cursor kvs, the instance's storage id)."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.errors import DagsterRunAlreadyExists, DagsterRunNotFoundError
from dagster._core.events import DagsterEventType
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.snap import JobSnap
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import PARTITION_NAME_TAG
from dagster._daemon.types import DaemonHeartbeat

from tests.pg.pairs import PgPair
from tests.runs.helpers import (
    add_runs,
    at,
    drive,
    ids,
    job_backfill,
    make_run,
    records_view,
    tags_view,
)

STATUSES = [
    DagsterRunStatus.SUCCESS,
    DagsterRunStatus.FAILURE,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.CANCELED,
]


def seed(pair: PgPair, n: int = 24) -> list[Any]:
    runs = [
        make_run(
            i,
            job_name=f"job_{i % 3}",
            status=STATUSES[i % len(STATUSES)],
            tags={"team": f"t{i % 4}", "env": "prod" if i % 2 else "dev", f"k{i % 5}": "v"},
            partition=f"2024-01-{1 + i % 7:02d}",
            partition_set="ps",
        )
        for i in range(n)
    ]
    add_runs(pair, runs, [at(i) for i in range(n)])
    return runs


def test_runs_lists_filters_and_cursors(pair: PgPair) -> None:
    runs = seed(pair)
    filters = [
        None,
        RunsFilter(job_name="job_1"),
        RunsFilter(statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]),
        RunsFilter(tags={"team": "t1"}),
        RunsFilter(tags={"team": ["t1", "t2"], "env": "prod"}),
        RunsFilter(run_ids=[r.run_id for r in runs[3:9]]),
        RunsFilter(created_before=at(10), created_after=at(2)),
        RunsFilter(tags={"absent": "x"}),
    ]
    for f in filters:
        pair.same(lambda i, f=f: ids(i.get_runs(filters=f)))
        pair.same(lambda i, f=f: i.get_runs_count(filters=f))
        pair.same(lambda i, f=f: i.get_run_ids(filters=f, limit=5))
        pair.same(lambda i, f=f: records_view(i.get_run_records(filters=f, limit=7)))
        pair.same(lambda i, f=f: records_view(i.get_run_records(filters=f, ascending=True)))
    # Paging with cursors: every page the same, in the same order.
    cursor = None
    for _ in range(6):
        page = pair.same(lambda i, c=cursor: ids(i.get_runs(cursor=c, limit=5)))
        if not page:
            break
        cursor = page[-1]
    pair.same(lambda i: ids(i.get_runs(cursor="not-a-run-id", limit=3)))
    pair.same(lambda i: records_view(i.get_run_records(order_by="create_timestamp", limit=4)))


def test_run_reads_and_writes(pair: PgPair) -> None:
    runs = seed(pair, 8)
    pair.same(lambda i: i.get_run_by_id(runs[2].run_id))
    pair.same(lambda i: i.get_run_by_id("missing"))
    pair.same(lambda i: i.has_run(runs[1].run_id))
    pair.same(lambda i: i.has_run("missing"))
    pair.same(lambda i: i.add_run(runs[0]))  # DagsterRunAlreadyExists on both
    assert pair.same(lambda i: i.add_run(runs[0])) is DagsterRunAlreadyExists
    pair.same(lambda i: i.run_storage.get_run_group(runs[3].run_id))
    assert pair.same(lambda i: i.run_storage.get_run_group("nope")) is DagsterRunNotFoundError
    pair.same(lambda i: i.delete_run(runs[4].run_id))
    pair.same(lambda i: i.get_runs_count())
    pair.same(lambda i: i.delete_run("missing"))


def test_run_groups(pair: PgPair) -> None:
    root = make_run(1)
    child = make_run(2, parent=root)
    grandchild = make_run(3, parent=child)
    add_runs(pair, [root, child, grandchild], [at(1), at(2), at(3)])
    for run in (root, child, grandchild):
        pair.same(lambda i, r=run: i.run_storage.get_run_group(r.run_id))


def test_status_events_and_timestamps(pair: PgPair) -> None:
    runs = seed(pair, 4)
    run_id = runs[3].run_id
    for inst in (pair.stock, pair.rust):
        drive(
            inst,
            run_id,
            [(DagsterEventType.RUN_START, at(100)), (DagsterEventType.RUN_SUCCESS, at(105))],
        )
    pair.same(lambda i: i.get_run_by_id(run_id))
    pair.same(
        lambda i: [
            (r.start_time, r.end_time, r.dagster_run.status)
            for r in i.get_run_records(RunsFilter(run_ids=[run_id]))
        ]
    )
    pair.same(lambda i: ids(i.get_runs(RunsFilter(updated_after=at(101)))))


def test_tags(pair: PgPair) -> None:
    runs = seed(pair, 12)
    pair.same(lambda i: sorted(i.get_run_tag_keys()))
    pair.same(lambda i: tags_view(i.get_run_tags(tag_keys=["team", "env"])))
    pair.same(lambda i: tags_view(i.get_run_tags(tag_keys=["team"], value_prefix="t1")))
    pair.same(lambda i: tags_view(i.get_run_tags(tag_keys=["team"], limit=2)))
    pair.same(lambda i: i.add_run_tags(runs[0].run_id, {"team": "t9", "new": "yes"}))
    pair.same(lambda i: i.get_run_by_id(runs[0].run_id).tags)  # type: ignore[union-attr]
    pair.same(lambda i: ids(i.get_runs(RunsFilter(tags={"new": "yes"}))))
    assert pair.same(lambda i: i.add_run_tags("missing", {"a": "b"})) is DagsterRunNotFoundError


def test_partition_data(pair: PgPair) -> None:
    seed(pair, 14)
    pair.same(
        lambda i: sorted(
            (d.partition, d.run_id, d.status)
            for d in i.run_storage.get_run_partition_data(
                RunsFilter(tags={"dagster/partition_set": "ps"})
            )
        )
    )
    pair.same(lambda i: ids(i.get_runs(RunsFilter(tags={PARTITION_NAME_TAG: "2024-01-03"}))))


def test_snapshots(pair: PgPair) -> None:
    snap = JobSnap.from_job_def(_job())
    pair.same(lambda i: i.run_storage.has_job_snapshot(snap.snapshot_id))
    pair.same(lambda i: i.run_storage.add_job_snapshot(snap))
    pair.same(lambda i: i.run_storage.add_job_snapshot(snap))  # again: same id, no error
    pair.same(lambda i: i.run_storage.has_job_snapshot(snap.snapshot_id))
    pair.same(lambda i: i.run_storage.get_job_snapshot(snap.snapshot_id))
    pair.same(lambda i: i.run_storage.has_execution_plan_snapshot("missing"))
    pair.same(lambda i: i.run_storage.get_job_snapshot("missing"))


def _job() -> Any:
    from dagster import job, op

    @op
    def one() -> int:
        return 1

    @job
    def snap_job() -> None:
        one()

    return snap_job


def test_backfills(pair: PgPair) -> None:
    for n in range(6):
        status = BulkActionStatus.COMPLETED if n % 2 else BulkActionStatus.REQUESTED
        bf = job_backfill(f"bf{n}", f"job_{n % 2}", 1_700_000_000.0 + n, status, {"n": str(n)})
        pair.same(lambda i, b=bf: i.add_backfill(b))
    pair.same(lambda i: [b.backfill_id for b in i.get_backfills()])
    pair.same(lambda i: [b.backfill_id for b in i.get_backfills(cursor="bf4", limit=2)])
    pair.same(lambda i: [b.backfill_id for b in i.get_backfills(status=BulkActionStatus.COMPLETED)])
    flt = BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED], job_name="job_0")
    pair.same(lambda i: [b.backfill_id for b in i.get_backfills(filters=flt)])
    pair.same(lambda i: i.get_backfills_count())
    pair.same(lambda i: i.get_backfills_count(BulkActionsFilter(tags={"n": "3"})))
    pair.same(lambda i: i.get_backfill("bf2"))
    pair.same(lambda i: i.get_backfill("missing"))
    done = i_backfill = job_backfill("bf2", "job_0", 1_700_000_002.0, BulkActionStatus.FAILED)
    pair.same(lambda i: i.update_backfill(done))
    pair.same(lambda i: i.get_backfill("bf2"))
    i_backfill = job_backfill("nope", "job_0", 1.0)
    pair.same(lambda i: i.update_backfill(i_backfill))


def test_heartbeats_kvs_and_instance_info(pair: PgPair) -> None:
    for n, kind in enumerate(["SENSOR", "SCHEDULER", "SENSOR"]):
        beat = DaemonHeartbeat(1_700_000_000.0 + n, kind, f"id{n}", None)
        pair.same(lambda i, b=beat: i.add_daemon_heartbeat(b))
    pair.same(lambda i: dict(i.get_daemon_heartbeats()))
    pair.same(lambda i: i.wipe_daemon_heartbeats())
    pair.same(lambda i: dict(i.get_daemon_heartbeats()))
    pair.same(lambda i: i.run_storage.set_cursor_values({"a": "1", "b": "2"}))
    pair.same(lambda i: i.run_storage.set_cursor_values({"b": "3"}))
    pair.same(lambda i: i.run_storage.set_cursor_values({"c": "4"}))
    if pair.backend == "postgres":
        # Stock's PostgreSQL upsert keeps a mixed batch's new keys (its SQLite insert-then-update
        # loses them: a documented difference of the SQLite config domain).
        pair.same(lambda i: i.run_storage.set_cursor_values({"c": "5", "d": "6"}))
    pair.same(lambda i: dict(i.run_storage.get_cursor_values({"a", "b", "c", "d", "z"})))
    pair.same(lambda i: dict(i.run_storage.get_cursor_values(set())))
    # The storage id: a UUID chosen once per database and kept.
    first = pair.both(lambda i: i.run_storage.get_run_storage_id())
    again = pair.both(lambda i: i.run_storage.get_run_storage_id())
    assert first == again and all(len(x) == 36 for x in first)


def test_bad_input_raises_stocks_classes(pair: PgPair) -> None:
    pair.same(lambda i: i.get_runs(filters="not a filter"))  # type: ignore[arg-type]
    pair.same(lambda i: i.get_runs(limit="3"))  # type: ignore[arg-type]
    pair.same(lambda i: i.get_run_by_id(7))  # type: ignore[arg-type]
    pair.same(lambda i: i.add_run("not a run"))  # type: ignore[arg-type]
    pair.same(lambda i: i.add_run_tags("x", {"a": 1}))  # type: ignore[dict-item]
    pair.same(lambda i: i.run_storage.set_cursor_values({"a": 1}))  # type: ignore[dict-item]
    pair.same(lambda i: i.get_run_records(order_by="no_such_column"))


def test_wipe(pair: PgPair) -> None:
    seed(pair, 5)
    pair.same(lambda i: i.run_storage.wipe())
    pair.same(lambda i: i.get_runs_count())
    pair.same(lambda i: i.get_run_tag_keys())


@pytest.mark.parametrize(
    "name", ["run_partitions", "run_start_end_overwritten", "run_repo_label_tags"]
)
def test_built_indexes(pair: PgPair, name: str) -> None:
    pair.same(lambda i: i.run_storage.has_built_index(name))


def test_alembic_version(pair: PgPair) -> None:
    pair.same(lambda i: i.run_storage.alembic_version())


def _count(inst: DagsterInstance) -> int:
    return inst.get_runs_count()
