"""add_run / add_historical_run / get_run_by_id / get_run_record_by_id / has_run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey
from dagster._core.errors import DagsterRunAlreadyExists, DagsterSnapshotDoesNotExist
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

from tests.runs.helpers import (
    add_runs,
    at,
    drive,
    full_record,
    ids,
    job_origin,
    make_run,
    record_view,
    records_view,
    rid,
    tags_view,
)


def test_add_run_returns_the_run_and_reads_back(fast_pair):
    run = make_run(1, tags={"team": "data"})
    out = fast_pair.same(lambda i: i.add_run(run))
    assert out.value == run
    got = fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    assert got.value == run
    fast_pair.same(lambda i: i.run_storage.get_run_by_id(rid(1)))
    rec = fast_pair.same(lambda i: i.get_run_record_by_id(rid(1)), record_view)
    assert record_view(rec.value) == (1, run, None, None)


@pytest.mark.parametrize("status", list(DagsterRunStatus), ids=lambda s: s.value)
def test_add_run_keeps_status(fast_pair, status):
    run = make_run(1, status=status)
    add_runs(fast_pair, [run])
    out = fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    assert out.value.status == status
    fast_pair.same(lambda i: i.get_runs_count(RunsFilter(statuses=[status])))


def test_rich_run_round_trips(fast_pair):
    run = make_run(
        7,
        job_name="rich_job",
        status=DagsterRunStatus.QUEUED,
        tags={"a": "1", "b": "two words", "unicodé": "välue ✓"},
        run_config={"ops": {"x": {"config": {"n": 3, "s": "str", "l": [1, 2]}}}},
        op_selection=["x*"],
        resolved_op_selection={"x", "y"},
        step_keys_to_execute=["x", "y"],
        asset_selection={AssetKey(["prefix", "asset"])},
        remote_job_origin=job_origin("rich_job"),
    )
    add_runs(fast_pair, [run])
    out = fast_pair.same(lambda i: i.get_run_by_id(run.run_id))
    assert out.value == run
    # The repository label tag is stored for runs with a remote origin, though not in run.tags.
    tags = fast_pair.same(lambda i: i.get_run_tags([REPOSITORY_LABEL_TAG]), tags_view)
    assert tags_view(tags.value) == [(REPOSITORY_LABEL_TAG, ["repo@loc"])]
    fast_pair.same(lambda i: ids(i.get_runs(RunsFilter(tags={REPOSITORY_LABEL_TAG: "repo@loc"}))))


def test_duplicate_run_id_raises_and_keeps_the_original(fast_pair):
    original = make_run(1, tags={"k": "original"})
    add_runs(fast_pair, [original])
    dup = make_run(1, job_name="other_job", tags={"k": "dup", "extra": "x"})
    out = fast_pair.same(lambda i: i.add_run(dup))
    assert out.error is DagsterRunAlreadyExists
    got = fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    assert got.value == original
    # The failed insert must not leave the duplicate's tags behind.
    keys = fast_pair.same(lambda i: i.get_run_tag_keys())
    assert keys.value == ["k"]
    fast_pair.same(lambda i: tags_view(i.get_run_tags(["k", "extra"])))
    fast_pair.same(lambda i: i.get_runs_count())


def test_duplicate_historical_run_raises(fast_pair):
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    out = fast_pair.same(lambda i: i.run_storage.add_historical_run(make_run(1), at(5)))
    assert out.error is DagsterRunAlreadyExists
    rec = fast_pair.same(lambda i: i.get_run_record_by_id(rid(1)).create_timestamp)
    assert rec.value == at(0)


def test_unknown_job_snapshot_raises(fast_pair):
    run = make_run(1, job_snapshot_id="0" * 40)
    out = fast_pair.same(lambda i: i.add_run(run))
    assert out.error is DagsterSnapshotDoesNotExist
    out = fast_pair.same(lambda i: i.run_storage.add_historical_run(run, at(0)))
    assert out.error is DagsterSnapshotDoesNotExist
    assert fast_pair.same(lambda i: i.has_run(rid(1))).value is False
    assert fast_pair.same(lambda i: i.get_runs_count()).value == 0


def test_add_historical_run_sets_create_timestamp(fast_pair):
    runs = [make_run(n) for n in range(1, 4)]
    created = [at(30), at(10), at(20)]
    out = fast_pair.same(lambda i: i.run_storage.add_historical_run(runs[0], created[0]))
    assert out.value == runs[0]
    add_runs(fast_pair, runs[1:], created=created[1:])
    recs = fast_pair.same(
        lambda i: [(r.storage_id, r.dagster_run, r.create_timestamp) for r in i.get_run_records()]
    )
    assert recs.value == [(3, runs[2], at(20)), (2, runs[1], at(10)), (1, runs[0], at(30))]


def test_add_historical_run_with_microseconds_and_other_timezone(fast_pair):
    plus2 = timezone(timedelta(hours=2))
    when = datetime(2023, 6, 1, 12, 30, 15, 123456, tzinfo=plus2)
    add_runs(fast_pair, [make_run(1)], created=[when])
    fast_pair.same(lambda i: i.get_run_record_by_id(rid(1)).create_timestamp)


def test_record_timestamps_chosen_by_storage(fast_pair):
    """add_run stamps creation with the current time and update with SQLite's CURRENT_TIMESTAMP."""
    add_runs(fast_pair, [make_run(1)])
    now = datetime.now(timezone.utc)

    def shape(inst):
        rec = inst.get_run_record_by_id(rid(1))
        return (
            rec.create_timestamp.tzinfo,
            rec.update_timestamp.tzinfo,
            abs((rec.create_timestamp - now).total_seconds()) < 120,
            abs((rec.update_timestamp - now).total_seconds()) < 120,
            rec.update_timestamp.microsecond == 0,  # CURRENT_TIMESTAMP has whole seconds
        )

    out = fast_pair.same(shape)
    assert out.value[2:4] == (True, True)


def test_unknown_run_lookups(fast_pair):
    add_runs(fast_pair, [make_run(1)])
    assert fast_pair.same(lambda i: i.get_run_by_id(rid(2))).value is None
    assert fast_pair.same(lambda i: i.run_storage.get_run_by_id(rid(2))).value is None
    assert fast_pair.same(lambda i: i.get_run_record_by_id(rid(2))).value is None
    assert fast_pair.same(lambda i: i.get_run_record_by_id("")).value is None
    assert fast_pair.same(lambda i: i.has_run(rid(2))).value is False
    assert fast_pair.same(lambda i: i.run_storage.has_run(rid(1))).value is True
    assert fast_pair.same(lambda i: i.has_run(rid(1))).value is True


def test_storage_ids_follow_insertion_order(fast_pair):
    runs = [make_run(n, job_name=f"job_{n % 3}") for n in (5, 3, 9, 1)]
    add_runs(fast_pair, runs)
    out = fast_pair.same(lambda i: records_view(i.get_run_records(ascending=True)))
    assert [v[0] for v in out.value] == [1, 2, 3, 4]
    assert [v[1].run_id for v in out.value] == [rid(5), rid(3), rid(9), rid(1)]


def test_run_ids_need_not_be_uuids_in_storage(fast_pair):
    """The storage accepts any string id (only run creation through the instance checks)."""
    odd = DagsterRun(job_name="j", run_id="not a uuid / with 'quotes' and \"dq\" %_")
    add_runs(fast_pair, [odd])
    out = fast_pair.same(lambda i: i.get_run_by_id(odd.run_id))
    assert out.value == odd
    fast_pair.same(lambda i: ids(i.get_runs(RunsFilter(run_ids=[odd.run_id]))))
    fast_pair.same(lambda i: i.get_run_ids(cursor=odd.run_id))


def test_full_record_with_controlled_times(fast_pair):
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    fast_pair.both(lambda i: drive(i, rid(1), [(DagsterEventType.RUN_START, at(1))]))
    out = fast_pair.same(lambda i: full_record(i.get_run_record_by_id(rid(1))))
    assert out.value[2:] == (at(0), at(1), at(1).timestamp(), None)


def test_large_run_body(fast_pair):
    big = {"ops": {f"op_{k}": {"config": {"blob": "x" * 1000, "k": k}} for k in range(1000)}}
    run = make_run(1, run_config=big, tags={f"tag_{k}": str(k) for k in range(200)})
    add_runs(fast_pair, [run])
    out = fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    assert out.value == run
    assert fast_pair.same(lambda i: len(i.get_run_tag_keys())).value == 200


def test_basic_contract(instance):
    """Each implementation on its own, against known answers (not only against each other)."""
    runs = [make_run(1, "job_a", tags={"t": "1"}), make_run(2, "job_b"), make_run(3, "job_a")]
    add_runs(instance, runs, created=[at(0), at(1), at(2)])
    assert ids(instance.get_runs()) == [rid(3), rid(2), rid(1)]
    assert ids(instance.get_runs(ascending=True)) == [rid(1), rid(2), rid(3)]
    assert list(instance.get_run_ids(RunsFilter(job_name="job_a"))) == [rid(3), rid(1)]
    assert instance.get_runs_count(RunsFilter(tags={"t": "1"})) == 1
    assert ids(instance.get_runs(cursor=rid(3), limit=1)) == [rid(2)]
    record = instance.get_run_record_by_id(rid(2))
    assert (record.storage_id, record.create_timestamp, record.dagster_run) == (2, at(1), runs[1])
    with pytest.raises(DagsterRunAlreadyExists):
        instance.add_run(make_run(2))
