"""Job and execution-plan snapshots, and runs created from a job definition."""

from __future__ import annotations

import pytest
from dagster import In, Out, job, op
from dagster._core.errors import DagsterSnapshotDoesNotExist
from dagster._core.execution.api import create_execution_plan
from dagster._core.snap import (
    ExecutionPlanSnapshot,
    JobSnap,
    create_execution_plan_snapshot_id,
    snapshot_from_execution_plan,
)
from dagster._core.storage.dagster_run import RunsFilter

from tests.runs.helpers import add_runs, ids, make_run, rid


@op(out=Out(int))
def produce() -> int:
    return 1


@op(ins={"x": In(int)})
def consume(x: int) -> None:
    del x


@job
def small_job():
    consume(produce())


@job(tags={"owner": "team"})
def other_job():
    produce()


JOB_SNAP = JobSnap.from_job_def(small_job)
OTHER_SNAP = JobSnap.from_job_def(other_job)
PLAN_SNAP = snapshot_from_execution_plan(create_execution_plan(small_job), JOB_SNAP.snapshot_id)
PLAN_ID = create_execution_plan_snapshot_id(PLAN_SNAP)


def test_add_job_snapshot(fast_pair):
    assert fast_pair.same(lambda i: i.has_job_snapshot(JOB_SNAP.snapshot_id)).value is False
    out = fast_pair.same(lambda i: i.run_storage.add_job_snapshot(JOB_SNAP))
    assert out.value == JOB_SNAP.snapshot_id
    assert fast_pair.same(lambda i: i.has_job_snapshot(JOB_SNAP.snapshot_id)).value is True
    assert fast_pair.same(lambda i: i.run_storage.has_snapshot(JOB_SNAP.snapshot_id)).value
    got = fast_pair.same(lambda i: i.get_job_snapshot(JOB_SNAP.snapshot_id))
    assert got.value == JOB_SNAP
    assert isinstance(got.value, JobSnap)
    assert fast_pair.same(lambda i: i.has_job_snapshot(OTHER_SNAP.snapshot_id)).value is False


def test_add_job_snapshot_twice_is_idempotent(fast_pair):
    fast_pair.both(lambda i: i.run_storage.add_job_snapshot(JOB_SNAP))
    out = fast_pair.same(lambda i: i.run_storage.add_job_snapshot(JOB_SNAP))
    assert out.value == JOB_SNAP.snapshot_id
    fast_pair.same(lambda i: i.get_job_snapshot(JOB_SNAP.snapshot_id))


def test_add_execution_plan_snapshot(fast_pair):
    assert (
        fast_pair.same(lambda i: i.run_storage.has_execution_plan_snapshot(PLAN_ID)).value is False
    )
    out = fast_pair.same(lambda i: i.run_storage.add_execution_plan_snapshot(PLAN_SNAP))
    assert out.value == PLAN_ID
    assert fast_pair.same(lambda i: i.run_storage.has_execution_plan_snapshot(PLAN_ID)).value
    got = fast_pair.same(lambda i: i.get_execution_plan_snapshot(PLAN_ID))
    assert got.value == PLAN_SNAP
    assert isinstance(got.value, ExecutionPlanSnapshot)
    again = fast_pair.same(lambda i: i.run_storage.add_execution_plan_snapshot(PLAN_SNAP))
    assert again.value == PLAN_ID


def test_instance_add_snapshot_dispatches_on_type(fast_pair):
    out = fast_pair.same(lambda i: i.add_snapshot(JOB_SNAP))
    assert out.value is None
    fast_pair.same(lambda i: i.add_snapshot(PLAN_SNAP))
    assert fast_pair.same(lambda i: i.has_snapshot(JOB_SNAP.snapshot_id)).value is True
    assert fast_pair.same(lambda i: i.has_snapshot(PLAN_ID)).value is True
    fast_pair.same(lambda i: i.get_job_snapshot(JOB_SNAP.snapshot_id))
    fast_pair.same(lambda i: i.get_execution_plan_snapshot(PLAN_ID))
    fast_pair.same(lambda i: i.has_historical_job(JOB_SNAP.snapshot_id))
    hist = fast_pair.same(lambda i: i.get_historical_job(JOB_SNAP.snapshot_id).job_snapshot)
    assert hist.value == JOB_SNAP


@pytest.mark.parametrize(
    "call",
    [
        lambda i: i.get_job_snapshot("0" * 40),
        lambda i: i.has_job_snapshot("0" * 40),
        lambda i: i.get_execution_plan_snapshot("0" * 40),
        lambda i: i.run_storage.has_execution_plan_snapshot("0" * 40),
        lambda i: i.has_snapshot("0" * 40),
    ],
    ids=["get_job", "has_job", "get_plan", "has_plan", "has_snapshot"],
)
def test_unknown_snapshot(fast_pair, call):
    fast_pair.both(lambda i: i.run_storage.add_job_snapshot(JOB_SNAP))
    out = fast_pair.same(call)
    assert out.value in (None, False)


def test_snapshot_kinds_share_one_namespace(fast_pair):
    """Stock reads either kind back whatever accessor is used; so must dagster-rs."""
    fast_pair.both(lambda i: i.run_storage.add_job_snapshot(JOB_SNAP))
    fast_pair.both(lambda i: i.run_storage.add_execution_plan_snapshot(PLAN_SNAP))
    fast_pair.same(lambda i: i.get_job_snapshot(PLAN_ID))
    fast_pair.same(lambda i: i.get_execution_plan_snapshot(JOB_SNAP.snapshot_id))
    fast_pair.same(lambda i: i.has_job_snapshot(PLAN_ID))
    fast_pair.same(lambda i: i.run_storage.has_execution_plan_snapshot(JOB_SNAP.snapshot_id))


def test_run_with_snapshot_ids(fast_pair):
    fast_pair.both(lambda i: i.run_storage.add_job_snapshot(JOB_SNAP))
    fast_pair.both(lambda i: i.run_storage.add_execution_plan_snapshot(PLAN_SNAP))
    run = make_run(
        1,
        job_name="small_job",
        job_snapshot_id=JOB_SNAP.snapshot_id,
        execution_plan_snapshot_id=PLAN_ID,
    )
    add_runs(fast_pair, [run, make_run(2, job_name="small_job")])
    out = fast_pair.same(lambda i: ids(i.get_runs(RunsFilter(snapshot_id=JOB_SNAP.snapshot_id))))
    assert out.value == [rid(1)]
    fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    # add_run only checks that a snapshot with the id exists, whatever its kind.
    out = fast_pair.same(lambda i: i.add_run(make_run(3, job_snapshot_id=PLAN_ID)))
    assert out.error is None
    out = fast_pair.same(lambda i: i.add_run(make_run(4, job_snapshot_id=OTHER_SNAP.snapshot_id)))
    assert out.error is DagsterSnapshotDoesNotExist


def test_create_run_for_job(fast_pair):
    out = fast_pair.same(
        lambda i: i.create_run_for_job(small_job, run_id=rid(1), tags={"via": "create"})
    )
    run = out.value
    assert run.job_snapshot_id == JOB_SNAP.snapshot_id
    assert run.execution_plan_snapshot_id == PLAN_ID
    fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    fast_pair.same(lambda i: i.get_job_snapshot(run.job_snapshot_id))
    fast_pair.same(lambda i: i.get_execution_plan_snapshot(run.execution_plan_snapshot_id))
    # A second run of the same job reuses both snapshots.
    second = fast_pair.same(lambda i: i.create_run_for_job(small_job, run_id=rid(2)))
    assert second.value.job_snapshot_id == run.job_snapshot_id
    fast_pair.same(lambda i: ids(i.get_runs(RunsFilter(snapshot_id=run.job_snapshot_id))))
    fast_pair.same(lambda i: i.create_run_for_job(other_job, run_id=rid(3)))
    fast_pair.same(lambda i: sorted(r.job_snapshot_id for r in i.get_runs()))


def test_create_run_for_job_with_op_selection(fast_pair):
    out = fast_pair.same(
        lambda i: i.create_run_for_job(small_job, run_id=rid(1), op_selection=["produce"])
    )
    assert out.value.job_snapshot_id != JOB_SNAP.snapshot_id
    sub = fast_pair.same(lambda i: i.get_job_snapshot(out.value.job_snapshot_id))
    assert sub.value.lineage_snapshot is not None
    # The parent snapshot of a subset job is stored too.
    fast_pair.same(lambda i: i.has_job_snapshot(JOB_SNAP.snapshot_id))
    fast_pair.same(lambda i: i.get_historical_job(out.value.job_snapshot_id).job_snapshot)
