"""RunsFilter, field by field and combined, through get_runs / get_run_ids / get_runs_count /
get_run_records, against one seeded pair shared (read-only) by the whole module."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import job, op
from dagster._core.events import DagsterEventType as E
from dagster._core.events import RunFailureReason
from dagster._core.snap import JobSnap
from dagster._core.storage.dagster_run import DagsterRunStatus as S
from dagster._core.storage.dagster_run import RunsFilter
from dagster._core.storage.tags import (
    BACKFILL_ID_TAG,
    PARTITION_NAME_TAG,
    PARTITION_SET_TAG,
    ROOT_RUN_ID_TAG,
)

from dagster_rs import compat
from tests.homes import seeded_pair
from tests.runs.helpers import at, drive, ids, make_run, records_view, rid


@op
def _emit():
    return 1


@job
def job_c():
    _emit()


SNAP = JobSnap.from_job_def(job_c)

MICRO = timedelta(microseconds=500)


def _runs():
    r1 = make_run(1, "job_a", tags={"team": "x", "env": "prod"})
    return [
        # (run, created, events)
        (r1, at(0), [(E.RUN_START, at(1)), (E.RUN_SUCCESS, at(2))]),
        (
            make_run(2, "job_a", tags={"team": "y", "env": "dev"}),
            at(10),
            [(E.RUN_START, at(11)), (E.RUN_FAILURE, at(12))],
        ),
        (make_run(3, "job_b", tags={"team": "x"}), at(20), [(E.RUN_STARTING, at(21))]),
        (
            make_run(
                4,
                "job_b",
                tags={"env": "prod"},
                backfill_id="bf1",
                partition="p1",
                partition_set="job_b_partition_set",
            ),
            at(30),
            [(E.RUN_START, at(31)), (E.RUN_SUCCESS, at(32))],
        ),
        (
            make_run(5, "job_b", backfill_id="bf1", partition="p2", partition_set="job_b_ps"),
            at(40),
            [(E.RUN_START, at(41)), (E.RUN_FAILURE, at(42))],
        ),
        (
            make_run(
                6, "job_c", tags={"team": "x", "env": "prod"}, job_snapshot_id=SNAP.snapshot_id
            ),
            at(50),
            [],
        ),
        (
            make_run(7, "job_a", tags={"team": "z"}, parent=r1),
            at(60),
            [(E.RUN_CANCELING, at(61)), (E.RUN_CANCELED, at(62))],
        ),
        (make_run(8, "job_c", S.QUEUED, tags={"team": "x", "env": "dev"}), at(70), []),
        (make_run(9, "job_a", tags={"team": "X"}), at(80), [(E.RUN_START, at(81))]),
        (
            make_run(10, "job_b", tags={"env": "prod"}, backfill_id="bf2"),
            at(90),
            [(E.RUN_START, at(91)), (E.RUN_SUCCESS, at(92))],
        ),
        (make_run(11, "job_c", tags={"multi": "a"}), at(100) + MICRO, []),
        (
            make_run(12, "job_a", tags={"team": "x", "env": "prod"}),
            at(110),
            [(E.RUN_START, at(111)), (E.RUN_SUCCESS, at(112) + MICRO)],
        ),
    ]


def seed(inst) -> None:
    inst.run_storage.add_job_snapshot(SNAP)
    for run, created, events in _runs():
        inst.run_storage.add_historical_run(run, created)
        drive(
            inst,
            run.run_id,
            events,
            job_name=run.job_name,
            failure_reason=RunFailureReason.STEP_FAILURE,
        )


seeded = seeded_pair("filters", seed)


PLUS2 = timezone(timedelta(hours=2))

FILTERS = {
    "none": None,
    "empty": RunsFilter(),
    "run_ids": RunsFilter(run_ids=[rid(3), rid(7), rid(99)]),
    "run_ids_one": RunsFilter(run_ids=[rid(12)]),
    "run_ids_unknown": RunsFilter(run_ids=[rid(99)]),
    "job_a": RunsFilter(job_name="job_a"),
    "job_b": RunsFilter(job_name="job_b"),
    "job_missing": RunsFilter(job_name="job_missing"),
    "status_success": RunsFilter(statuses=[S.SUCCESS]),
    "status_failure_canceled": RunsFilter(statuses=[S.FAILURE, S.CANCELED]),
    "status_not_started": RunsFilter(statuses=[S.NOT_STARTED]),
    "status_queued_starting": RunsFilter(statuses=[S.QUEUED, S.STARTING]),
    "status_unused": RunsFilter(statuses=[S.MANAGED]),
    "tag": RunsFilter(tags={"team": "x"}),
    "tag_case": RunsFilter(tags={"team": "X"}),
    "tag_list": RunsFilter(tags={"team": ["x", "y"]}),
    "tag_list_one": RunsFilter(tags={"team": ["z"]}),
    "tag_list_empty": RunsFilter(tags={"team": []}),
    "tags_two": RunsFilter(tags={"team": "x", "env": "prod"}),
    "tags_two_list": RunsFilter(tags={"team": ["x", "z"], "env": ["prod", "dev"]}),
    "tag_missing_key": RunsFilter(tags={"missing": "v"}),
    "tag_missing_value": RunsFilter(tags={"team": "nobody"}),
    "tag_backfill": RunsFilter(tags={BACKFILL_ID_TAG: "bf1"}),
    "tag_partition": RunsFilter(
        tags={PARTITION_NAME_TAG: "p1", PARTITION_SET_TAG: "job_b_partition_set"}
    ),
    "tag_root": RunsFilter(tags={ROOT_RUN_ID_TAG: rid(1)}),
    "snapshot": RunsFilter(snapshot_id=SNAP.snapshot_id),
    "snapshot_missing": RunsFilter(snapshot_id="f" * 40),
    "updated_after": RunsFilter(updated_after=at(42)),
    "updated_after_just_before": RunsFilter(updated_after=at(42) - MICRO),
    "updated_before": RunsFilter(updated_before=at(42)),
    "updated_window": RunsFilter(updated_after=at(12), updated_before=at(92)),
    "updated_before_micro": RunsFilter(updated_before=at(112) + MICRO),
    "updated_after_future": RunsFilter(updated_after=datetime(2999, 1, 1, tzinfo=timezone.utc)),
    "created_after": RunsFilter(created_after=at(40)),
    "created_before": RunsFilter(created_before=at(40)),
    "created_window": RunsFilter(created_after=at(10), created_before=at(90)),
    "created_after_micro": RunsFilter(created_after=at(100)),
    "created_before_micro": RunsFilter(created_before=at(100) + MICRO),
    "created_before_plus2": RunsFilter(created_before=datetime(2024, 1, 1, 1, 0, tzinfo=PLUS2)),
    "created_naive": RunsFilter(created_after=datetime(2024, 1, 1, 0, 45)),
    "exclude_subruns": RunsFilter(exclude_subruns=True),
    "exclude_subruns_false": RunsFilter(exclude_subruns=False),
    "combo_job_status_tag": RunsFilter(
        job_name="job_a", statuses=[S.SUCCESS, S.FAILURE], tags={"team": ["x", "y"]}
    ),
    "combo_status_created": RunsFilter(
        statuses=[S.SUCCESS], created_after=at(20), created_before=at(200)
    ),
    "combo_exclude_tag": RunsFilter(exclude_subruns=True, tags={"env": "prod"}),
    "combo_ids_job": RunsFilter(run_ids=[rid(1), rid(3), rid(4)], job_name="job_b"),
    "combo_everything": RunsFilter(
        run_ids=[rid(n) for n in range(1, 13)],
        job_name="job_a",
        statuses=[S.SUCCESS],
        tags={"team": "x"},
        updated_after=at(0),
        created_before=at(115),
        exclude_subruns=True,
    ),
}

QUERIES = {
    "get_runs": lambda i, f: list(i.get_runs(filters=f)),
    "get_runs_ascending": lambda i, f: ids(i.get_runs(filters=f, ascending=True)),
    "get_run_ids": lambda i, f: list(i.get_run_ids(filters=f)),
    "get_runs_count": lambda i, f: i.get_runs_count(filters=f),
    "get_run_records": lambda i, f: records_view(i.get_run_records(filters=f)),
}


@pytest.mark.parametrize("query", list(QUERIES))
@pytest.mark.parametrize("name", list(FILTERS))
def test_filter(seeded, name, query):
    fn = QUERIES[query]
    seeded.same(lambda i: fn(i, FILTERS[name]))


# Non-tautology anchors: a few filters whose answer is known from the seeded data.
EXPECTED = {
    "job_a": [12, 9, 7, 2, 1],
    "tag": [12, 8, 6, 3, 1],
    "tag_case": [9],
    "tag_list_empty": [],
    "tags_two": [12, 6, 1],
    "status_success": [12, 10, 4, 1],
    "exclude_subruns": [12, 11, 9, 8, 7, 6, 3, 2, 1],
    "created_after": [12, 11, 10, 9, 8, 7, 6],
    "created_window": [9, 8, 7, 6, 5, 4, 3],  # both bounds are strict
    "created_after_micro": [12, 11],
    "created_before_micro": [10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
    "created_before_plus2": [6, 5, 4, 3, 2, 1],  # the offset is ignored, as stock does
    "created_naive": [12, 11, 10, 9, 8, 7, 6],
    "updated_before": [4, 3, 2, 1],
    "updated_before_micro": [10, 9, 7, 5, 4, 3, 2, 1],
    "snapshot": [6],
    "tag_root": [7],
}
if not compat.stock_tags_failure_in_status_update():
    # A stock before 1.13.7 adds the failure-reason tag after the status update, stamping the
    # failed runs' rows (2 and 5) with the wall clock: no bound in 2024 keeps them.
    for _name in ("updated_before", "updated_before_micro"):
        EXPECTED[_name] = [n for n in EXPECTED[_name] if n not in (2, 5)]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_filter_expected(seeded, name):
    out = seeded.same(lambda i: ids(i.run_storage.get_runs(filters=FILTERS[name])))
    assert out.value == [rid(n) for n in EXPECTED[name]]


def test_many_run_ids(seeded):
    """More ids than SQLite's historical 999-variable limit."""
    many = [rid(n) for n in range(1, 1500)]
    out = seeded.same(lambda i: ids(i.get_runs(filters=RunsFilter(run_ids=many))))
    assert out.value == [rid(n) for n in range(12, 0, -1)]
    seeded.same(lambda i: i.get_runs_count(filters=RunsFilter(run_ids=many)))
    seeded.same(lambda i: list(i.get_run_ids(filters=RunsFilter(run_ids=many), limit=3)))


@pytest.mark.parametrize(
    "call",
    [
        lambda i: i.get_runs(filters="job_a"),
        lambda i: i.get_runs(limit="5"),
        lambda i: i.get_runs(cursor=5),
        lambda i: i.get_run_ids(filters={"job_name": "job_a"}),
        lambda i: i.get_runs_count(filters="x"),
        lambda i: i.get_run_records(limit="1"),
        lambda i: i.get_run_records(cursor=3),
    ],
    ids=[
        "runs_filter",
        "runs_limit",
        "runs_cursor",
        "ids_filter",
        "count",
        "rec_limit",
        "rec_cursor",
    ],
)
def test_argument_type_errors(seeded, call):
    out = seeded.same(call)
    assert out.error is not None
