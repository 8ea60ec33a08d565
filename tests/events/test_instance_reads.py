"""Event-log reads through the instance, stock DagsterInstance vs dagster-rs, on seeded data.

One module-scoped pair runs the same jobs in the same order: asset materializations with checks,
metadata, code versions and `context.log` messages, a partitioned asset, a job with a failing step
(retried, then failed, its downstream step not executed), a job whose steps are retried (by
`RetryPolicy` and by `RetryRequested`), a job with a skipped step, a run fed by the instance's
`report_*` methods, a run of events with explicit timestamps, and runless events. Every test here
only reads; each compares a normalized view of the result (tests/events/conftest.py), or the class
of the exception raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from dagster import (
    AssetCheckResult,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
    DailyPartitionsDefinition,
    DataVersion,
    ExpectationResult,
    MaterializeResult,
    Out,
    Output,
    RetryPolicy,
    RetryRequested,
    asset,
    asset_check,
    job,
    materialize,
    op,
)
from dagster._check import CheckError
from dagster._core.definitions.asset_key import AssetCheckKey
from dagster._core.event_api import (
    AssetRecordsFilter,
    EventLogCursor,
    EventLogRecord,
    EventRecordsFilter,
    RunShardedEventsCursor,
    RunStatusChangeRecordsFilter,
)
from dagster._core.events import (
    DagsterEvent,
    DagsterEventType,
    EngineEventData,
    JobFailureData,
    StepSuccessData,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id
from dagster._utils.error import SerializableErrorInfo

from tests.conftest import InstancePair
from tests.events.conftest import (
    FIXED_T0,
    connection_view,
    entries_view,
    event_time,
    records_view,
    result_view,
    run_id_of,
    run_names,
    seeded_pair,
    time_ref,
    types_of,
)
from tests.events.helpers import event_entry, log_entry, same, same_error, tags
from tests.stock_api import requires_stock

ET = DagsterEventType
DAILY = DailyPartitionsDefinition(start_date="2024-01-01")

# -- definitions -------------------------------------------------------------------------------


@asset(code_version="v1")
def alpha(context) -> MaterializeResult:
    context.log.info("alpha says hello")
    context.log.warning("alpha is a little worried")
    return MaterializeResult(metadata={"rows": 3}, data_version=DataVersion("d1"))


@asset(deps=[alpha], code_version="v2")
def beta() -> None:
    pass


@asset_check(asset=alpha)
def alpha_ok() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


@asset_check(asset=alpha)
def alpha_bad() -> AssetCheckResult:
    return AssetCheckResult(passed=False, metadata={"why": "too small"})


@asset(partitions_def=DAILY)
def daily(context) -> None:
    context.log.info(f"partition {context.partition_key}")


@op(retry_policy=RetryPolicy(max_retries=1))
def boom() -> int:
    raise Exception("boom!")


@op
def after_boom(x: int) -> int:
    return x


@op
def fine(context):
    context.log.error("fine logs an error but succeeds")
    yield AssetMaterialization(asset_key="op_made", description="from an op")
    yield ExpectationResult(success=True, label="always")
    yield Output(1)


@job
def failing_job():
    after_boom(boom())
    fine()


@op(retry_policy=RetryPolicy(max_retries=2))
def flaky_policy(context) -> int:
    if context.retry_number < 1:
        raise Exception("first attempt fails")
    return 1


@op
def flaky_requested(context) -> int:
    if context.retry_number < 1:
        raise RetryRequested(max_retries=2)
    return 2


@job
def retry_job():
    flaky_policy()
    flaky_requested()


@op(out={"maybe": Out(is_required=False), "always": Out()})
def branch():
    yield Output(1, "always")


@op
def not_run(x: int) -> int:
    return x


@op
def runs(x: int) -> int:
    return x


@job
def skip_job():
    maybe, always = branch()
    not_run(maybe)
    runs(always)


def add_manual_run(inst: DagsterInstance, name: str, job_name: str) -> DagsterRun:
    run = DagsterRun(job_name=job_name, run_id=make_new_run_id(), tags=tags(name))
    return inst.add_run(run)


def timed_event(
    run_id: str, job_name: str, event_type: DagsterEventType, offset: float, **kw: Any
) -> EventLogEntry:
    return event_entry(
        run_id,
        event_type,
        kw.get("message", f"{event_type.value} at +{offset}"),
        job_name=job_name,
        data=kw.get("data"),
        step_key=kw.get("step_key"),
        timestamp=FIXED_T0 + offset,
    )


def seed(inst: DagsterInstance) -> None:
    def ok(result: Any) -> None:
        assert result.run_id

    ok(materialize([alpha, beta, alpha_ok, alpha_bad], instance=inst, tags=tags("assets")))
    ok(materialize([alpha, alpha_ok], instance=inst, tags=tags("assets_again")))
    for n, day in enumerate(("2024-01-01", "2024-01-02"), 1):
        ok(materialize([daily], partition_key=day, instance=inst, tags=tags(f"daily_{n}")))
    for name, j in (("failure", failing_job), ("retry", retry_job), ("skip", skip_job)):
        ok(j.execute_in_process(instance=inst, raise_on_error=False, tags=tags(name)))

    # A run reported on from outside execution, through the instance's report_* methods.
    run = add_manual_run(inst, "manual", "manual_job")
    inst.report_engine_event("engine says hi", run)
    inst.report_dagster_event(
        DagsterEvent(ET.STEP_START.value, run.job_name, message="manual", step_key="manual_step"),
        run_id=run.run_id,
    )
    inst.report_engine_event(
        "setting up",
        run,
        EngineEventData(marker_start="setup"),
        cls=DagsterInstance,
        step_key="manual_step",
    )
    inst.report_engine_event(
        "set up", run, EngineEventData(marker_end="setup"), step_key="manual_step"
    )
    error = SerializableErrorInfo(message="it broke\n", stack=["line 1\n"], cls_name="OSError")
    inst.report_engine_event("engine error", run, EngineEventData(error=error))
    inst.report_run_canceling(run)
    inst.report_run_canceled(run, message="canceled by the test")

    # A run whose events carry explicit timestamps (some stored raw, some through the instance).
    timed = add_manual_run(inst, "timed", "timed_job")
    rid, job_name = timed.run_id, timed.job_name
    # Stored raw: the run storage does not see them (the run never was queued), the stats do.
    inst.store_event(timed_event(rid, job_name, ET.RUN_ENQUEUED, 0.5))
    inst.store_event(timed_event(rid, job_name, ET.RUN_STARTING, 0.75))
    inst.store_event(
        log_entry(
            rid,
            job_name=job_name,
            message="a plain log line",
            level=logging.DEBUG,
            timestamp=FIXED_T0 + 1,
        )
    )
    inst.handle_new_event(timed_event(rid, job_name, ET.RUN_START, 2))
    for k in range(3, 8):
        inst.store_event(timed_event(rid, job_name, ET.ENGINE_EVENT, k, data=EngineEventData()))
    inst.handle_new_event(
        timed_event(rid, job_name, ET.STEP_SUCCESS, 8.5, step_key="s", data=StepSuccessData(5.0))
    )
    inst.report_dagster_event(
        DagsterEvent(
            event_type_value=ET.RUN_FAILURE.value,
            job_name=job_name,
            message="timed run failed",
            event_specific_data=JobFailureData(error=None),
        ),
        run_id=rid,
        log_level=logging.ERROR,
        timestamp=FIXED_T0 + 9,
    )
    # Sub-microsecond fractions (the timestamp column keeps microseconds).
    for offset in (10.0000005, 10.0000015, 10.9999995):
        inst.store_event(
            timed_event(rid, job_name, ET.ENGINE_EVENT, offset, data=EngineEventData())
        )
    # A later cancellation and a second start; then two events with the very same timestamp.
    inst.store_event(timed_event(rid, job_name, ET.RUN_CANCELED, 11))
    inst.store_event(timed_event(rid, job_name, ET.RUN_START, 11.5))
    for message in ("tie one", "tie two"):
        inst.store_event(
            timed_event(rid, job_name, ET.ENGINE_EVENT, 12, data=EngineEventData(), message=message)
        )

    # Runless events.
    inst.report_runless_asset_event(AssetObservation(asset_key="alpha", metadata={"seen": 1}))
    inst.store_event(timed_event("", "", ET.ENGINE_EVENT, 20, data=EngineEventData()))


seeded = seeded_pair("events_reads", seed)

RUNS = (
    "assets",
    "assets_again",
    "daily_1",
    "daily_2",
    "failure",
    "retry",
    "skip",
    "manual",
    "timed",
)


def rid(inst: DagsterInstance, name: str) -> str:
    return run_id_of(inst, name)


def id_cursor(storage_id: int) -> str:
    return EventLogCursor.from_storage_id(storage_id).to_string()


def offset_cursor(offset: int) -> str:
    return EventLogCursor.from_offset(offset).to_string()


# -- whole runs --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNS)
def test_run_records_match(seeded: InstancePair, name: str) -> None:
    view = same(seeded, lambda i: connection_view(i, i.get_records_for_run(rid(i, name))))
    assert view[0], "the run has events"
    same(seeded, lambda i: entries_view(i, i.all_logs(rid(i, name))))


def test_seeded_runs_have_the_events_the_tests_rely_on(seeded: InstancePair) -> None:
    """The comparisons above are not vacuous: each run produced its kind of events (stock)."""
    inst = seeded.stock

    def types(name: str) -> set[DagsterEventType | None]:
        return set(types_of(inst.all_logs(rid(inst, name))))

    assert {ET.ASSET_CHECK_EVALUATION, ET.ASSET_MATERIALIZATION, None} <= types("assets")
    assert {ET.STEP_UP_FOR_RETRY, ET.STEP_RESTARTED, ET.STEP_FAILURE, ET.RUN_FAILURE} <= types(
        "failure"
    )
    assert {ET.STEP_EXPECTATION_RESULT, ET.ASSET_MATERIALIZATION} <= types("failure")
    assert {ET.STEP_UP_FOR_RETRY, ET.STEP_RESTARTED, ET.RUN_SUCCESS} <= types("retry")
    assert ET.STEP_FAILURE not in types("retry")
    assert ET.STEP_SKIPPED in types("skip")
    assert {ET.RUN_CANCELING, ET.RUN_CANCELED, ET.ENGINE_EVENT} <= types("manual")
    assert {ET.RUN_START, ET.RUN_FAILURE, ET.STEP_SUCCESS} <= types("timed")


def test_runless_events(seeded: InstancePair) -> None:
    view = same(seeded, lambda i: connection_view(i, i.get_records_for_run("")))
    assert [v[1][1] for v in view[0]] == [ET.ASSET_OBSERVATION.value, ET.ENGINE_EVENT.value]


def test_unknown_run(seeded: InstancePair) -> None:
    unknown = "00000000-0000-4000-8000-00000000dead"
    view = same(seeded, lambda i: connection_view(i, i.get_records_for_run(unknown)))
    assert view == ([], id_cursor(-1), False)
    same(
        seeded, lambda i: connection_view(i, i.get_records_for_run(unknown, id_cursor(3), limit=2))
    )
    same(seeded, lambda i: i.all_logs(unknown))
    same(seeded, lambda i: i.logs_after(unknown, cursor=5))
    same(seeded, lambda i: i.get_run_stats(unknown))
    same(seeded, lambda i: i.get_run_step_stats(unknown))
    same(seeded, lambda i: i.get_run_step_stats(unknown, step_keys=["x"]))


# -- get_records_for_run: cursors, limits, order, types -----------------------------------------

CURSORS = {
    "none": None,
    "id-1": id_cursor(-1),
    "id0": id_cursor(0),
    "id5": id_cursor(5),
    "id-last": id_cursor(15),
    "id-past": id_cursor(1000),
    "offset0": offset_cursor(0),
    "offset3": offset_cursor(3),
    "offset-past": offset_cursor(1000),
    "offset-negative": offset_cursor(-2),
    "id-negative": id_cursor(-50),
}


@pytest.mark.parametrize("limit", [None, 0, 1, 4, -1], ids=lambda v: f"limit={v}")
@pytest.mark.parametrize("ascending", [True, False], ids=["asc", "desc"])
@pytest.mark.parametrize("cursor", list(CURSORS), ids=str)
def test_records_for_run_cursor_grid(
    seeded: InstancePair, cursor: str, ascending: bool, limit: int | None
) -> None:
    same(
        seeded,
        lambda i: connection_view(
            i,
            i.get_records_for_run(
                rid(i, "retry"), CURSORS[cursor], limit=limit, ascending=ascending
            ),
        ),
    )


OF_TYPES: dict[str, Any] = {
    "step-success": ET.STEP_SUCCESS,
    "retry-set": {ET.STEP_UP_FOR_RETRY, ET.STEP_RESTARTED},
    "empty-set": set(),
    "frozenset": frozenset({ET.STEP_START, ET.STEP_SUCCESS}),
    "engine": {ET.ENGINE_EVENT},
    "check-eval": ET.ASSET_CHECK_EVALUATION,
    "absent": ET.ASSET_OBSERVATION,
}


@pytest.mark.parametrize("name", ["assets", "retry", "failure"])
@pytest.mark.parametrize("of_type", list(OF_TYPES), ids=str)
def test_of_type(seeded: InstancePair, of_type: str, name: str) -> None:
    types = OF_TYPES[of_type]
    same(seeded, lambda i: entries_view(i, i.all_logs(rid(i, name), of_type=types)))
    same(
        seeded,
        lambda i: connection_view(
            i, i.get_records_for_run(rid(i, name), of_type=types, limit=2, ascending=False)
        ),
    )
    same(
        seeded,
        lambda i: connection_view(
            i, i.get_records_for_run(rid(i, name), offset_cursor(1), of_type=types, limit=2)
        ),
    )


@pytest.mark.parametrize("cursor", [-1, 0, 4, 18, 50, "id3", "id100"], ids=str)
@pytest.mark.parametrize("limit", [None, 3])
def test_logs_after(seeded: InstancePair, cursor: int | str, limit: int | None) -> None:
    c: int | str = id_cursor(int(cursor[2:])) if isinstance(cursor, str) else cursor
    same(seeded, lambda i: entries_view(i, i.logs_after(rid(i, "skip"), cursor=c, limit=limit)))  # type: ignore[arg-type]
    same(
        seeded,
        lambda i: entries_view(
            i,
            i.logs_after(rid(i, "skip"), cursor=c, of_type=ET.STEP_SUCCESS),  # type: ignore[arg-type]
        ),
    )


def page_through(
    inst: DagsterInstance, name: str, ascending: bool, of_type: Any, limit: int
) -> list[tuple]:
    """Follow the returned cursor until `has_more` is False, then ask once more."""
    run_id = rid(inst, name)
    pages, cursor = [], None
    for _ in range(100):
        conn = inst.get_records_for_run(run_id, cursor, of_type, limit, ascending)
        pages.append(connection_view(inst, conn))
        cursor = conn.cursor
        if not conn.has_more:
            break
    final = inst.get_records_for_run(run_id, cursor, of_type, limit, ascending)
    pages.append(connection_view(inst, final))
    # The pages are the whole run, in order, each record once.
    everything = inst.get_records_for_run(run_id, None, of_type, None, ascending).records
    paged = [sid for page in pages for sid, _ in page[0]]
    assert paged == [r.storage_id for r in everything]
    return pages


@pytest.mark.parametrize("limit", [1, 4, 19])
@pytest.mark.parametrize("of_type", [None, {ET.STEP_START, ET.STEP_SUCCESS, ET.STEP_RESTARTED}])
@pytest.mark.parametrize("ascending", [True, False], ids=["asc", "desc"])
def test_paging_with_returned_cursor(
    seeded: InstancePair, ascending: bool, of_type: Any, limit: int
) -> None:
    pages = same(seeded, lambda i: page_through(i, "retry", ascending, of_type, limit))
    assert len(pages) >= 2


# -- stats -------------------------------------------------------------------------------------


def run_stats_view(inst: DagsterInstance, name: str) -> tuple:
    run_id = rid(inst, name)
    s = inst.get_run_stats(run_id)
    direct = inst.event_log_storage.get_stats_for_run(run_id)
    assert direct == s
    return (
        run_names(inst).run(s.run_id),
        s.steps_succeeded,
        s.steps_failed,
        s.materializations,
        s.expectations,
        time_ref(inst, run_id, s.enqueued_time),
        time_ref(inst, run_id, s.launch_time),
        time_ref(inst, run_id, s.start_time),
        time_ref(inst, run_id, s.end_time),
    )


@pytest.mark.parametrize("name", RUNS)
def test_run_stats(seeded: InstancePair, name: str) -> None:
    view = same(seeded, lambda i: run_stats_view(i, name))
    if name in ("failure", "retry", "skip", "assets"):
        assert view[1] > 0 and view[7] is not None and view[8] is not None


def step_stats_view(inst: DagsterInstance, name: str, step_keys: list[str] | None) -> list:
    run_id = rid(inst, name)
    names = run_names(inst)
    stats = inst.get_run_step_stats(run_id, step_keys=step_keys)
    direct = inst.event_log_storage.get_step_stats_for_run(run_id, step_keys)
    assert list(direct) == list(stats)

    def t(ts: float | None) -> Any:
        return time_ref(inst, run_id, ts)

    return [
        (
            names.run(s.run_id),
            s.step_key,
            s.status.value if s.status else None,
            t(s.start_time),
            t(s.end_time),
            entries_view(inst, s.materialization_events),
            [(e.success, e.label) for e in s.expectation_results],
            s.attempts,
            [(t(m.start_time), t(m.end_time), m.key) for m in s.attempts_list],
            [(t(m.start_time), t(m.end_time), m.key) for m in s.markers],
            t(s.partial_attempt_start),
        )
        for s in stats
    ]


STEP_KEYS: dict[str, list[tuple[str, list[str] | None]]] = {
    "assets": [("all", None), ("alpha", ["alpha"])],
    "failure": [("all", None), ("boom", ["boom"]), ("two", ["boom", "fine"]), ("none", [])],
    "retry": [("all", None), ("flaky_requested", ["flaky_requested"]), ("unknown", ["nope"])],
    "skip": [("all", None), ("not_run", ["not_run"])],
    "manual": [("all", None), ("manual_step", ["manual_step"])],
    "timed": [("all", None)],
}


@pytest.mark.parametrize(
    "name,keys",
    [(name, keys) for name, choices in STEP_KEYS.items() for _, keys in choices],
    ids=[f"{name}-{label}" for name, choices in STEP_KEYS.items() for label, _ in choices],
)
def test_step_stats(seeded: InstancePair, name: str, keys: list[str] | None) -> None:
    view = same(seeded, lambda i: step_stats_view(i, name, keys))
    if keys is None:
        assert view, "every seeded run has steps"


def test_step_stats_cover_retries_failures_skips(seeded: InstancePair) -> None:
    """What the step stats comparisons above saw (stock): attempts, statuses, markers."""
    inst = seeded.stock
    by_key = {
        s.step_key: s
        for name in ("failure", "retry", "skip", "manual")
        for s in inst.get_run_step_stats(rid(inst, name))
    }
    assert by_key["boom"].status.value == "FAILURE" and by_key["boom"].attempts == 2  # type: ignore[union-attr]
    assert by_key["flaky_requested"].attempts == 2
    assert by_key["not_run"].status.value == "SKIPPED"  # type: ignore[union-attr]
    assert by_key["fine"].materialization_events and by_key["fine"].expectation_results
    assert by_key["manual_step"].markers


# -- the index: all runs by log id, maximum record id ------------------------------------------


@pytest.mark.parametrize("after", [-1, 0, 3, 10_000])
@pytest.mark.parametrize(
    "types",
    [None, ET.RUN_SUCCESS, ET.ASSET_MATERIALIZATION, {ET.ASSET_CHECK_EVALUATION}, ET.STEP_SUCCESS],
    ids=str,
)
@pytest.mark.parametrize("limit", [None, 2, 0, -1])
def test_logs_for_all_runs_by_log_id(
    seeded: InstancePair, after: int, types: Any, limit: int | None
) -> None:
    def fn(i: DagsterInstance) -> list:
        logs = i.event_log_storage.get_logs_for_all_runs_by_log_id(after, types, limit)
        names = run_names(i)
        return [(k, entries_view(i, [v])[0], names.run(v.run_id)) for k, v in logs.items()]

    view = same(seeded, fn)
    if after == -1 and types is None:
        assert view


def test_logs_for_all_runs_by_log_id_several_types(seeded: InstancePair) -> None:
    """More than one type is deprecated but still served."""
    kinds = {ET.RUN_SUCCESS, ET.RUN_FAILURE, ET.ASSET_OBSERVATION}
    view = same(
        seeded,
        lambda i: records_view(
            i,
            [
                EventLogRecord(storage_id=k, event_log_entry=v)
                for k, v in i.event_log_storage.get_logs_for_all_runs_by_log_id(-1, kinds).items()
            ],
        ),
    )
    assert {v[1][1] for v in view} == {t.value for t in kinds}


def test_maximum_record_id(seeded: InstancePair) -> None:
    top = same(seeded, lambda i: i.event_log_storage.get_maximum_record_id())
    assert top and top > 10


# -- get_event_records: run-sharded (non-asset) types ------------------------------------------


def run_updated(inst: DagsterInstance, name: str) -> datetime:
    record = inst.get_run_record_by_id(rid(inst, name))
    assert record and record.update_timestamp
    return record.update_timestamp


FILTERS: dict[str, Callable[[DagsterInstance], EventRecordsFilter]] = {
    "step-success": lambda i: EventRecordsFilter(ET.STEP_SUCCESS),
    "run-success": lambda i: EventRecordsFilter(ET.RUN_SUCCESS),
    "run-failure": lambda i: EventRecordsFilter(ET.RUN_FAILURE),
    "engine": lambda i: EventRecordsFilter(ET.ENGINE_EVENT),
    "check-eval": lambda i: EventRecordsFilter(ET.ASSET_CHECK_EVALUATION),
    "check-eval-key": lambda i: EventRecordsFilter(
        ET.ASSET_CHECK_EVALUATION, asset_key=AssetKey("alpha")
    ),
    "sharded-cursor-epoch": lambda i: EventRecordsFilter(
        ET.ENGINE_EVENT,
        after_cursor=RunShardedEventsCursor(id=3, run_updated_after=datetime(2000, 1, 1)),
    ),
    "sharded-cursor-run": lambda i: EventRecordsFilter(
        ET.STEP_SUCCESS,
        after_cursor=RunShardedEventsCursor(id=1, run_updated_after=run_updated(i, "failure")),
    ),
    "before-cursor": lambda i: EventRecordsFilter(ET.STEP_SUCCESS, before_cursor=12),
    "fixed-after-ts": lambda i: EventRecordsFilter(ET.ENGINE_EVENT, after_timestamp=FIXED_T0 + 4.5),
    "fixed-window": lambda i: EventRecordsFilter(
        ET.ENGINE_EVENT, after_timestamp=FIXED_T0 + 3, before_timestamp=FIXED_T0 + 6
    ),
    "run-window": lambda i: EventRecordsFilter(
        ET.STEP_SUCCESS,
        after_timestamp=event_time(i, rid(i, "failure"), ET.RUN_START),
        before_timestamp=event_time(i, rid(i, "skip"), ET.RUN_START),
    ),
    "storage-ids": lambda i: EventRecordsFilter(ET.ENGINE_EVENT, storage_ids=[2, 3, 14]),
    "partitions": lambda i: EventRecordsFilter(ET.ENGINE_EVENT, asset_partitions=["x"]),
    "sub-micro-after": lambda i: EventRecordsFilter(
        ET.ENGINE_EVENT, after_timestamp=FIXED_T0 + 10.0000005
    ),
    "sub-micro-window": lambda i: EventRecordsFilter(
        ET.ENGINE_EVENT,
        after_timestamp=FIXED_T0 + 10,
        before_timestamp=FIXED_T0 + 10.0000015,
    ),
    "sub-micro-before": lambda i: EventRecordsFilter(
        ET.ENGINE_EVENT, after_timestamp=FIXED_T0 + 7, before_timestamp=FIXED_T0 + 10.9999995
    ),
    "ties": lambda i: EventRecordsFilter(ET.ENGINE_EVENT, after_timestamp=FIXED_T0 + 11.9),
}


@pytest.mark.parametrize("limit", [None, 1, 3, 100])
@pytest.mark.parametrize("ascending", [False, True], ids=["desc", "asc"])
@pytest.mark.parametrize("filt", list(FILTERS), ids=str)
def test_event_records_run_sharded(
    seeded: InstancePair, filt: str, ascending: bool, limit: int | None
) -> None:
    view = same(
        seeded,
        lambda i: records_view(i, i.get_event_records(FILTERS[filt](i), limit, ascending)),
    )
    if limit is None and filt not in (
        "check-eval-key",
        "storage-ids",
        "partitions",
        "sub-micro-window",
    ):
        assert view, filt


@pytest.mark.parametrize("limit", [0, -1])
@pytest.mark.parametrize("filt", ["engine", "run-success"])
def test_event_records_run_sharded_degenerate_limit(
    seeded: InstancePair, filt: str, limit: int
) -> None:
    """A zero or negative limit: stock slices its result with it (`records[:limit]`)."""
    same(seeded, lambda i: records_view(i, i.get_event_records(FILTERS[filt](i), limit)))


def test_event_records_run_sharded_cursor_id_is_ignored(seeded: InstancePair) -> None:
    """Documented: on run-sharded storage the id of a RunShardedEventsCursor is ignored."""
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)

    def ids(i: DagsterInstance, cursor_id: int) -> list[tuple]:
        f = EventRecordsFilter(
            ET.ENGINE_EVENT, after_cursor=RunShardedEventsCursor(cursor_id, epoch)
        )
        return records_view(i, i.get_event_records(f, ascending=True))

    low = same(seeded, lambda i: ids(i, -1))
    high = same(seeded, lambda i: ids(i, 10_000))
    assert low == high


def test_event_records_run_sharded_rejects_a_plain_cursor(seeded: InstancePair) -> None:
    same_error(
        seeded, lambda i: i.get_event_records(EventRecordsFilter(ET.ENGINE_EVENT, after_cursor=3))
    )


# -- get_event_records: asset types (the index) ------------------------------------------------

ASSET_FILTERS: dict[str, EventRecordsFilter] = {
    "mat": EventRecordsFilter(ET.ASSET_MATERIALIZATION),
    "mat-alpha": EventRecordsFilter(ET.ASSET_MATERIALIZATION, asset_key=AssetKey("alpha")),
    "mat-daily-partition": EventRecordsFilter(
        ET.ASSET_MATERIALIZATION, asset_key=AssetKey("daily"), asset_partitions=["2024-01-02"]
    ),
    "mat-after": EventRecordsFilter(ET.ASSET_MATERIALIZATION, after_cursor=5),
    "mat-before": EventRecordsFilter(ET.ASSET_MATERIALIZATION, before_cursor=12),
    "planned": EventRecordsFilter(ET.ASSET_MATERIALIZATION_PLANNED),
    "observation": EventRecordsFilter(ET.ASSET_OBSERVATION, asset_key=AssetKey("alpha")),
}


@pytest.mark.parametrize("limit", [None, 1, 2])
@pytest.mark.parametrize("ascending", [False, True], ids=["desc", "asc"])
@pytest.mark.parametrize("filt", list(ASSET_FILTERS), ids=str)
def test_event_records_asset_types(
    seeded: InstancePair, filt: str, ascending: bool, limit: int | None
) -> None:
    view = same(
        seeded,
        lambda i: records_view(i, i.get_event_records(ASSET_FILTERS[filt], limit, ascending)),
    )
    assert view, filt


# -- fetch_run_status_changes ------------------------------------------------------------------

STATUS_FILTERS: dict[str, Callable[[DagsterInstance], Any]] = {
    "success": lambda i: ET.RUN_SUCCESS,
    "failure": lambda i: ET.RUN_FAILURE,
    "start": lambda i: ET.RUN_START,
    "canceled": lambda i: ET.RUN_CANCELED,
    "canceling": lambda i: ET.RUN_CANCELING,
    "filter": lambda i: RunStatusChangeRecordsFilter(ET.RUN_SUCCESS),
    "after-id": lambda i: RunStatusChangeRecordsFilter(ET.RUN_START, after_storage_id=10),
    "before-id": lambda i: RunStatusChangeRecordsFilter(ET.RUN_START, before_storage_id=30),
    "ids": lambda i: RunStatusChangeRecordsFilter(ET.RUN_START, storage_ids=[1, 5, 9, 100]),
    "job-names-ignored": lambda i: RunStatusChangeRecordsFilter(
        ET.RUN_SUCCESS, job_names=["no_such_job"]
    ),
    "fixed-ts": lambda i: RunStatusChangeRecordsFilter(
        ET.RUN_FAILURE, after_timestamp=FIXED_T0 + 5, before_timestamp=FIXED_T0 + 100
    ),
    "sub-micro-ts": lambda i: RunStatusChangeRecordsFilter(
        ET.RUN_START, after_timestamp=FIXED_T0 + 2, before_timestamp=FIXED_T0 + 11.5
    ),
    "enqueued": lambda i: ET.RUN_ENQUEUED,
    "starting": lambda i: ET.RUN_STARTING,
    "run-ts": lambda i: RunStatusChangeRecordsFilter(
        ET.RUN_SUCCESS, after_timestamp=event_time(i, rid(i, "assets_again"), ET.RUN_SUCCESS)
    ),
}


@pytest.mark.parametrize("limit", [1, 2, 100, 0, -1])
@pytest.mark.parametrize("ascending", [False, True], ids=["desc", "asc"])
@pytest.mark.parametrize("filt", list(STATUS_FILTERS), ids=str)
def test_fetch_run_status_changes(
    seeded: InstancePair, filt: str, ascending: bool, limit: int
) -> None:
    view = same(
        seeded,
        lambda i: result_view(
            i, i.fetch_run_status_changes(STATUS_FILTERS[filt](i), limit, ascending=ascending)
        ),
    )
    if limit == 100 and filt not in ("ids", "sub-micro-ts"):
        assert view[0], filt


def status_pages(inst: DagsterInstance, records_filter: Any, ascending: bool) -> list[tuple]:
    pages, cursor = [], None
    for _ in range(50):
        result = inst.fetch_run_status_changes(records_filter, 2, cursor, ascending)
        pages.append(result_view(inst, result))
        cursor = result.cursor
        if not result.has_more:
            break
    return pages


@pytest.mark.parametrize("ascending", [False, True], ids=["desc", "asc"])
@pytest.mark.parametrize(
    "records_filter",
    [ET.RUN_SUCCESS, ET.RUN_START, RunStatusChangeRecordsFilter(ET.RUN_SUCCESS)],
    ids=["success", "start", "filter"],
)
def test_fetch_run_status_changes_paging(
    seeded: InstancePair, records_filter: Any, ascending: bool
) -> None:
    pages = same(seeded, lambda i: status_pages(i, records_filter, ascending))
    assert len(pages) >= 3


@pytest.mark.parametrize("ascending", [False, True], ids=["desc", "asc"])
@pytest.mark.parametrize("cursor", [0, 20, 10_000])
def test_fetch_run_status_changes_with_id_cursor(
    seeded: InstancePair, cursor: int, ascending: bool
) -> None:
    same(
        seeded,
        lambda i: result_view(
            i, i.fetch_run_status_changes(ET.RUN_SUCCESS, 3, id_cursor(cursor), ascending)
        ),
    )


# -- the asset side (stock code, reading what the events domain wrote) -------------------------


ALPHA, DAILY_KEY, OP_MADE = AssetKey("alpha"), AssetKey("daily"), AssetKey("op_made")


def asset_record_view(inst: DagsterInstance) -> list[tuple]:
    names = run_names(inst)
    out = []
    for record in sorted(inst.get_asset_records(), key=lambda r: r.asset_entry.asset_key):
        e = record.asset_entry
        out.append(
            (
                e.asset_key.to_user_string(),
                e.last_materialization_record.storage_id if e.last_materialization_record else None,
                names.run(e.last_run_id),
                e.last_observation_record.storage_id if e.last_observation_record else None,
                e.last_planned_materialization_storage_id,
                names.run(e.last_planned_materialization_run_id),
            )
        )
    return out


def test_asset_records(seeded: InstancePair) -> None:
    view = same(seeded, asset_record_view)
    assert {v[0] for v in view} >= {"alpha", "beta", "daily", "op_made"}
    same(seeded, lambda i: sorted(k.to_user_string() for k in i.get_asset_keys()))


@pytest.mark.parametrize("key", [ALPHA, DAILY_KEY, OP_MADE, AssetKey("beta")], ids=str)
def test_latest_materialization_event(seeded: InstancePair, key: AssetKey) -> None:
    view = same(
        seeded,
        lambda i: entries_view(i, [e for e in [i.get_latest_materialization_event(key)] if e]),
    )
    assert view


@pytest.mark.parametrize("ascending", [False, True], ids=["desc", "asc"])
@pytest.mark.parametrize(
    "records_filter",
    [ALPHA, AssetRecordsFilter(DAILY_KEY, asset_partitions=["2024-01-01"])],
    ids=["alpha", "daily-partition"],
)
def test_fetch_materializations(seeded: InstancePair, records_filter: Any, ascending: bool) -> None:
    view = same(
        seeded,
        lambda i: result_view(i, i.fetch_materializations(records_filter, 1, ascending=ascending)),
    )
    assert view[0]
    same(
        seeded,
        lambda i: result_view(
            i, i.fetch_materializations(records_filter, 5, view[1], ascending=ascending)
        ),
    )
    same(seeded, lambda i: result_view(i, i.fetch_observations(ALPHA, 5, ascending=ascending)))


def test_partitions_and_code_versions(seeded: InstancePair) -> None:
    parts = same(seeded, lambda i: sorted(i.get_materialized_partitions(DAILY_KEY)))
    assert parts == ["2024-01-01", "2024-01-02"]
    same(seeded, lambda i: sorted(i.get_materialized_partitions(DAILY_KEY, after_cursor=3)))
    versions = same(
        seeded,
        lambda i: {
            # An asset without a code version reports its run id.
            k.to_user_string(): run_names(i).text(v)
            for k, v in i.get_latest_materialization_code_versions(
                [ALPHA, AssetKey("beta"), DAILY_KEY]
            ).items()
        },
    )
    assert versions["alpha"] == "v1" and versions["daily"] == "<run daily_2>"


@requires_stock(
    "DagsterInstance.get_asset_partitions_for_run", "DagsterInstance.get_asset_keys_for_run"
)
def test_asset_partitions_and_keys_for_run(seeded: InstancePair) -> None:
    def fn(i: DagsterInstance) -> list:
        out = []
        for name in ("assets", "daily_2", "failure"):
            run_id = rid(i, name)
            parts = i.get_asset_partitions_for_run(run_id)
            keys = i.get_asset_keys_for_run(run_id, of_type=ET.ASSET_MATERIALIZATION)
            out.append(
                (
                    sorted((k.to_user_string(), sorted(map(str, v))) for k, v in parts.items()),
                    sorted(k.to_user_string() for k in keys),
                )
            )
        return out

    view = same(seeded, fn)
    assert all(keys for _, keys in view)


@pytest.mark.parametrize("check", ["alpha_ok", "alpha_bad"])
def test_asset_check_history(seeded: InstancePair, check: str) -> None:
    key = AssetCheckKey(ALPHA, check)

    def fn(i: DagsterInstance) -> list:
        names = run_names(i)
        history = i.event_log_storage.get_asset_check_execution_history(key, limit=10)
        return [
            (
                r.id,
                names.run(r.run_id),
                r.status.value,
                entries_view(i, [r.event])[0] if r.event else None,
                r.partition,
            )
            for r in history
        ]

    view = same(seeded, fn)
    assert view
    same(
        seeded,
        lambda i: {
            k.name: (names_run(i, r.run_id), r.status.value)
            for k, r in i.event_log_storage.get_latest_asset_check_execution_by_key([key]).items()
        },
    )


def names_run(inst: DagsterInstance, run_id: str) -> str | None:
    return run_names(inst).run(run_id)


# -- errors ------------------------------------------------------------------------------------

ERRORS: dict[str, Callable[[DagsterInstance], Any]] = {
    "of_type-str": lambda i: i.all_logs(rid(i, "retry"), of_type="x"),  # type: ignore[arg-type]
    "of_type-list": lambda i: i.get_records_for_run(rid(i, "retry"), of_type=[ET.STEP_START]),  # type: ignore[arg-type]
    "of_type-set-of-str": lambda i: i.all_logs(rid(i, "retry"), of_type={"STEP_START"}),  # type: ignore[arg-type]
    "cursor-garbage": lambda i: i.get_records_for_run(rid(i, "retry"), cursor="garbage"),
    "cursor-int": lambda i: i.get_records_for_run(rid(i, "retry"), cursor=3),  # type: ignore[arg-type]
    "run-id-none": lambda i: i.get_records_for_run(None),  # type: ignore[arg-type]
    "log-id-negative": lambda i: i.event_log_storage.get_logs_for_all_runs_by_log_id(-2),
    "log-id-str": lambda i: i.event_log_storage.get_logs_for_all_runs_by_log_id("0"),  # type: ignore[arg-type]
    "log-id-bad-type": lambda i: i.event_log_storage.get_logs_for_all_runs_by_log_id(
        -1,
        "PIPELINE_SUCCESS",  # type: ignore[arg-type]
    ),
    "status-step-type": lambda i: i.fetch_run_status_changes(ET.STEP_SUCCESS, 5),
    "status-offset-cursor": lambda i: i.fetch_run_status_changes(
        ET.RUN_SUCCESS, 5, offset_cursor(2)
    ),
    "status-filter-step-type": lambda i: i.fetch_run_status_changes(
        RunStatusChangeRecordsFilter(ET.STEP_SUCCESS),  # type: ignore[arg-type]
        5,
    ),
    "event-records-limit-str": lambda i: i.get_event_records(
        EventRecordsFilter(ET.STEP_SUCCESS),
        "3",  # type: ignore[arg-type]
    ),
    "event-records-no-filter": lambda i: i.get_event_records(None),  # type: ignore[arg-type]
    "run-stats-none": lambda i: i.get_run_stats(None),  # type: ignore[arg-type]
    "step-stats-keys-str": lambda i: i.get_run_step_stats(rid(i, "retry"), step_keys="boom"),  # type: ignore[arg-type]
    "step-stats-keys-tuple": lambda i: i.get_run_step_stats(rid(i, "retry"), step_keys=("boom",)),  # type: ignore[arg-type]
    "records-cursor-empty": lambda i: i.get_records_for_run(rid(i, "retry"), cursor=""),
    "records-ascending-str": lambda i: i.get_event_records(
        EventRecordsFilter(ET.STEP_SUCCESS),
        ascending="yes",  # type: ignore[arg-type]
    ),
}

# Loose arguments stock happens to accept (SQLAlchemy coerces them): same outcome on both.
ODD: dict[str, Callable[[DagsterInstance], Any]] = {
    "limit-str": lambda i: i.get_records_for_run(rid(i, "retry"), limit="3"),  # type: ignore[arg-type]
    "limit-true": lambda i: i.get_records_for_run(rid(i, "retry"), limit=True),
    "ascending-none": lambda i: i.get_records_for_run(rid(i, "retry"), ascending=None),  # type: ignore[arg-type]
    "status-limit-none": lambda i: i.fetch_run_status_changes(ET.RUN_SUCCESS, None),  # type: ignore[arg-type]
    "status-cursor-empty": lambda i: i.fetch_run_status_changes(ET.RUN_SUCCESS, 5, ""),
    "log-id-limit-str": lambda i: i.event_log_storage.get_logs_for_all_runs_by_log_id(
        -1,
        None,
        "2",  # type: ignore[arg-type]
    ),
}


@pytest.mark.parametrize("case", list(ODD), ids=str)
def test_loose_arguments_alike(seeded: InstancePair, case: str) -> None:
    def fn(i: DagsterInstance) -> Any:
        value = ODD[case](i)
        if hasattr(value, "has_more"):
            return (records_view(i, value.records), value.cursor, value.has_more)
        if isinstance(value, dict):
            return {k: entries_view(i, [v]) for k, v in value.items()}
        return value

    seeded.same(fn)


@pytest.mark.parametrize("case", list(ERRORS), ids=str)
def test_bad_arguments_raise_alike(seeded: InstancePair, case: str) -> None:
    error = same_error(seeded, ERRORS[case])
    assert issubclass(error, Exception)


def test_error_classes_are_specific(seeded: InstancePair) -> None:
    """The argument checks raise Dagster's CheckError (not a generic failure of the store)."""
    for case in ("of_type-str", "log-id-negative", "status-step-type", "run-id-none"):
        assert issubclass(same_error(seeded, ERRORS[case]), CheckError), case


def test_fixed_times_are_compared_exactly(seeded: InstancePair) -> None:
    """The explicit timestamps of the `timed` run are part of the views (not normalized away)."""
    view = same(seeded, lambda i: entries_view(i, i.all_logs(rid(i, "timed"))))
    offsets = (0.5, 0.75, 1, 2, 3, 4, 5, 6, 7, 8.5, 9, 10.0000005, 10.0000015, 10.9999995)
    assert [v[-1] for v in view] == [FIXED_T0 + k for k in (*offsets, 11, 11.5, 12, 12)]
