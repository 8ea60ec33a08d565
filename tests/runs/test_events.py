"""handle_run_event: status transitions, start/end/update times, failure reasons, ignored events."""

from __future__ import annotations

import time

import pytest
from dagster._core.events import (
    DagsterEvent,
    DagsterEventType,
    EngineEventData,
    RunFailureReason,
)
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import RUN_FAILURE_REASON_TAG

from dagster_rs import compat
from tests.runs.helpers import (
    STATUS_EVENTS,
    add_runs,
    at,
    drive,
    full_record,
    ids,
    job_origin,
    make_run,
    record_view,
    rid,
    run_event,
    tags_view,
)
from tests.stock_api import requires_stock


def _full(inst, n=1):
    return full_record(inst.get_run_record_by_id(rid(n)))


def _failed(inst, n=1):
    """`_full` of a run a failure with a reason ended: a stock before 1.13.7 stamps its row with
    the wall clock (compat.stock_tags_failure_in_status_update), so only its presence counts."""
    view = _full(inst, n)
    if compat.stock_tags_failure_in_status_update():
        return view
    assert view[3] > at(1)
    return (*view[:3], None, *view[4:])


@pytest.mark.parametrize("event_type", list(STATUS_EVENTS), ids=lambda e: e.value)
def test_each_status_event(fast_pair, event_type):
    run = make_run(1, job_name="job_a", remote_job_origin=job_origin("job_a"))
    add_runs(fast_pair, [run], created=[at(0)])
    fast_pair.both(lambda i: drive(i, rid(1), [(event_type, at(3))]))
    out = fast_pair.same(_full)
    _sid, run, created, updated, start, end = out.value
    assert run.status == STATUS_EVENTS[event_type]
    assert (created, updated) == (at(0), at(3))
    assert start == (at(3).timestamp() if event_type == DagsterEventType.RUN_START else None)
    terminal = {
        DagsterEventType.RUN_SUCCESS,
        DagsterEventType.RUN_FAILURE,
        DagsterEventType.RUN_CANCELED,
    }
    assert end == (at(3).timestamp() if event_type in terminal else None)
    fast_pair.same(lambda i: i.get_runs_count(RunsFilter(statuses=[STATUS_EVENTS[event_type]])))


def test_enqueue_without_origin_fails_alike(fast_pair):
    """Queued runs need a remote origin; the check fails before anything is written."""
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    event = run_event(DagsterEventType.RUN_ENQUEUED)
    out = fast_pair.same(lambda i: i.handle_run_event(rid(1), event, update_timestamp=at(1)))
    assert out.error is not None
    rec = fast_pair.same(_full)
    assert rec.value[1].status == DagsterRunStatus.NOT_STARTED


@pytest.mark.parametrize(
    "final",
    [DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED],
    ids=lambda e: e.value,
)
def test_lifecycle_sets_start_and_end(fast_pair, final):
    add_runs(fast_pair, [make_run(1), make_run(2)], created=[at(0), at(0.5)])
    steps = [(DagsterEventType.RUN_STARTING, at(1)), (DagsterEventType.RUN_START, at(2))]
    if final == DagsterEventType.RUN_CANCELED:
        steps.append((DagsterEventType.RUN_CANCELING, at(3)))
    steps.append((final, at(4)))
    fast_pair.both(lambda i: drive(i, rid(1), steps))
    out = fast_pair.same(_full)
    assert out.value[3:] == (at(4), at(2).timestamp(), at(4).timestamp())
    # The other run is untouched (its update time is the storage's own "now").
    other = fast_pair.same(lambda i: _full(i, 2)[:3] + _full(i, 2)[4:])
    assert other.value == (2, make_run(2), at(0.5), None, None)


def test_events_may_arrive_out_of_order(fast_pair):
    """The storage records what it is told, last write wins, times included."""
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    steps = [
        (DagsterEventType.RUN_SUCCESS, at(5)),
        (DagsterEventType.RUN_START, at(2)),
        (DagsterEventType.RUN_START, at(3)),
    ]
    fast_pair.both(lambda i: drive(i, rid(1), steps))
    out = fast_pair.same(_full)
    assert out.value[1].status == DagsterRunStatus.STARTED
    assert out.value[3:] == (at(3), at(3).timestamp(), at(5).timestamp())


@requires_stock("DagsterEventType.RUN_SUSPENDED", "DagsterEventType.RUN_RESUMED")
def test_resume_and_suspend_events(fast_pair):
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    for event_type, minute in [
        (DagsterEventType.RUN_START, 1),
        (DagsterEventType.RUN_SUSPENDED, 2),
        (DagsterEventType.RUN_RESUMED, 3),
    ]:
        fast_pair.both(lambda i, e=event_type, m=minute: drive(i, rid(1), [(e, at(m))]))
        fast_pair.same(_full)


@pytest.mark.parametrize(
    "reason", [r for r in RunFailureReason if r != RunFailureReason.UNKNOWN], ids=lambda r: r.value
)
def test_failure_reason_adds_tag(fast_pair, reason):
    add_runs(fast_pair, [make_run(1, tags={"keep": "me"}), make_run(2)], created=[at(0), at(0)])
    fast_pair.both(
        lambda i: drive(i, rid(1), [(DagsterEventType.RUN_FAILURE, at(1))], failure_reason=reason)
    )
    out = fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    assert out.value.tags == {"keep": "me", RUN_FAILURE_REASON_TAG: reason.value}
    assert out.value.status == DagsterRunStatus.FAILURE
    tags = fast_pair.same(lambda i: tags_view(i.get_run_tags([RUN_FAILURE_REASON_TAG])))
    assert tags.value == [(RUN_FAILURE_REASON_TAG, [reason.value])]
    found = fast_pair.same(
        lambda i: ids(i.get_runs(RunsFilter(tags={RUN_FAILURE_REASON_TAG: reason.value})))
    )
    assert found.value == [rid(1)]
    fast_pair.same(_failed)


@pytest.mark.parametrize("variant", ["unknown_reason", "no_reason", "no_failure_data"])
def test_failure_without_a_reason_adds_no_tag(fast_pair, variant):
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    event = run_event(
        DagsterEventType.RUN_FAILURE,
        failure_reason=RunFailureReason.UNKNOWN if variant == "unknown_reason" else None,
        with_failure_data=variant != "no_failure_data",
    )
    fast_pair.both(lambda i: i.handle_run_event(rid(1), event, update_timestamp=at(2)))
    out = fast_pair.same(_full)
    assert out.value[1].tags == {}
    assert fast_pair.same(lambda i: i.get_run_tag_keys()).value == []


def test_second_failure_updates_the_reason_tag(fast_pair):
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    fast_pair.both(
        lambda i: drive(
            i,
            rid(1),
            [(DagsterEventType.RUN_FAILURE, at(1))],
            failure_reason=RunFailureReason.STEP_FAILURE,
        )
    )
    fast_pair.both(
        lambda i: drive(
            i,
            rid(1),
            [(DagsterEventType.RUN_FAILURE, at(2))],
            failure_reason=RunFailureReason.RUN_EXCEPTION,
        )
    )
    out = fast_pair.same(lambda i: i.get_run_by_id(rid(1)).tags)
    assert out.value == {RUN_FAILURE_REASON_TAG: "RUN_EXCEPTION"}
    tags = fast_pair.same(lambda i: tags_view(i.get_run_tags([RUN_FAILURE_REASON_TAG])))
    assert tags.value == [(RUN_FAILURE_REASON_TAG, ["RUN_EXCEPTION"])]
    fast_pair.same(
        lambda i: ids(i.get_runs(RunsFilter(tags={RUN_FAILURE_REASON_TAG: "STEP_FAILURE"})))
    )
    fast_pair.same(_failed)


@pytest.mark.parametrize(
    "event_type",
    [
        DagsterEventType.RUN_DEQUEUED,
        DagsterEventType.STEP_START,
        DagsterEventType.LOGS_CAPTURED,
        DagsterEventType.ENGINE_EVENT,
    ],
    ids=lambda e: e.value,
)
def test_non_status_events_are_ignored(fast_pair, event_type):
    add_runs(fast_pair, [make_run(1, status=DagsterRunStatus.STARTING)], created=[at(0)])
    fast_pair.both(lambda i: drive(i, rid(1), [(DagsterEventType.RUN_START, at(1))]))
    data = EngineEventData() if event_type == DagsterEventType.ENGINE_EVENT else None
    event = DagsterEvent(
        event_type_value=event_type.value, job_name="job_a", event_specific_data=data
    )
    out = fast_pair.same(lambda i: i.handle_run_event(rid(1), event, update_timestamp=at(9)))
    assert out.value is None
    rec = fast_pair.same(_full)
    assert rec.value[1].status == DagsterRunStatus.STARTED
    assert rec.value[3] == at(1)


def test_event_for_unknown_run_is_ignored(fast_pair):
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    event = run_event(DagsterEventType.RUN_START)
    out = fast_pair.same(lambda i: i.handle_run_event(rid(2), event, update_timestamp=at(1)))
    assert out.value is None
    assert fast_pair.same(lambda i: i.has_run(rid(2))).value is False
    assert fast_pair.same(lambda i: i.get_runs_count()).value == 1
    # The untouched run keeps the update time the storage chose when it was added ("now", to the
    # second): compared without it, as the two adds may straddle a second boundary.
    fast_pair.same(lambda i: record_view(i.get_run_record_by_id(rid(1))))


def test_storage_level_handle_run_event(fast_pair):
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    event = run_event(DagsterEventType.RUN_START)
    fast_pair.both(lambda i: i.run_storage.handle_run_event(rid(1), event, at(4)))
    out = fast_pair.same(_full)
    assert out.value[3:5] == (at(4), at(4).timestamp())


def test_event_without_timestamp_uses_now(fast_pair):
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    before = time.time()
    fast_pair.both(lambda i: i.handle_run_event(rid(1), run_event(DagsterEventType.RUN_START)))
    fast_pair.both(lambda i: i.handle_run_event(rid(1), run_event(DagsterEventType.RUN_SUCCESS)))
    after = time.time()

    def shape(inst):
        rec = inst.get_run_record_by_id(rid(1))
        return (
            rec.dagster_run.status,
            before - 1 <= rec.start_time <= after + 1,
            before - 1 <= rec.end_time <= after + 1,
            rec.start_time <= rec.end_time,
            before - 2 <= rec.update_timestamp.timestamp() <= after + 1,
        )

    out = fast_pair.same(shape)
    assert out.value == (DagsterRunStatus.SUCCESS, True, True, True, True)
