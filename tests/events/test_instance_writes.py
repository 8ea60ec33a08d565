"""Event-log writes through the instance, stock DagsterInstance vs dagster-rs.

Each test starts from a fresh pair, writes the same events on both sides (the instance's
`report_*` methods, `report_dagster_event`, `store_event`, `handle_new_event` with and without
batching, the storage's `store_event_batch`, real `materialize` runs), then compares what the
instance reads back, what event listeners were told, and what is left after `delete_run`,
`delete_events` and `wipe`. Views are normalized as described in tests/events/conftest.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckResult,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    asset_check,
    materialize,
)
from dagster._core.definitions.asset_key import AssetCheckKey
from dagster._core.event_api import EventLogCursor, EventRecordsFilter
from dagster._core.events import (
    AssetMaterializationPlannedData,
    DagsterEvent,
    DagsterEventBatchMetadata,
    DagsterEventType,
    EngineEventData,
    JobFailureData,
    RunFailureReason,
    StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.utils import make_new_run_id
from dagster._utils.error import SerializableErrorInfo

from tests.conftest import InstancePair
from tests.events.conftest import (
    FIXED_T0,
    SEED_TAG,
    connection_view,
    entries_view,
    records_view,
    result_view,
    run_id_of,
    run_names,
    types_of,
)
from tests.events.helpers import engine_entry, log_entry, same, same_error, tags
from tests.homes import clone_pair, seeded_homes

ET = DagsterEventType
DAILY = DailyPartitionsDefinition(start_date="2024-01-01")
ALPHA, DAILY_KEY = AssetKey("alpha"), AssetKey("daily")
STATUS_TYPES = (ET.RUN_START, ET.RUN_SUCCESS, ET.RUN_FAILURE, ET.RUN_CANCELING, ET.RUN_CANCELED)


@asset
def alpha(context) -> MaterializeResult:
    context.log.info("alpha runs")
    return MaterializeResult(metadata={"n": 1})


@asset_check(asset=alpha)
def alpha_check() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


@asset(partitions_def=DAILY)
def daily(context) -> None:
    context.log.info(f"partition {context.partition_key}")


@asset
def broken() -> None:
    raise Exception("this asset always fails")


def add_run(inst: DagsterInstance, name: str, job_name: str = "manual_job") -> DagsterRun:
    return inst.add_run(DagsterRun(job_name=job_name, run_id=make_new_run_id(), tags=tags(name)))


class PerInstance:
    """Values captured on each side of a pair (run ids before a deletion, listeners)."""

    def __init__(self, pair: InstancePair, fn: Callable[[DagsterInstance], Any]):
        self.stock, self.rust = pair.both(fn)
        self._pair = pair

    def __call__(self, inst: DagsterInstance) -> Any:
        return self.stock if inst is self._pair.stock else self.rust


def all_run_ids(inst: DagsterInstance) -> list[str]:
    """The run ids with a shard on disk (a method of SQLite event log storages only)."""
    storage = inst.event_log_storage
    assert isinstance(storage, SqliteEventLogStorage)
    return list(storage.get_all_run_ids())


def id_names(ids: Mapping[str, str], run_ids: Any) -> list[str]:
    """Run ids (files on disk, say) as the names they were seeded under, sorted."""
    return sorted(ids.get(r, f"<unexpected {r!r}>") for r in run_ids)


def status_changes(inst: DagsterInstance) -> dict[str, tuple]:
    return {
        t.value: result_view(inst, inst.fetch_run_status_changes(t, 100, ascending=True))
        for t in STATUS_TYPES
    }


def index_view(inst: DagsterInstance, names: Mapping[str, str] | None = None) -> list[tuple]:
    """Every event of the index shard, with the run it belongs to."""
    logs = inst.event_log_storage.get_logs_for_all_runs_by_log_id(-1)
    known = names or {}
    return [
        (storage_id, known.get(e.run_id, run_names(inst).run(e.run_id)), entries_view(inst, [e]))
        for storage_id, e in logs.items()
    ]


def asset_view(inst: DagsterInstance) -> tuple:
    records = sorted(inst.get_asset_records(), key=lambda r: r.asset_entry.asset_key)
    latest = inst.get_latest_materialization_event(ALPHA)
    history = inst.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(ALPHA, "alpha_check"), limit=10
    )
    return (
        [
            (
                r.asset_entry.asset_key.to_user_string(),
                r.asset_entry.last_materialization_record.storage_id
                if r.asset_entry.last_materialization_record
                else None,
                r.asset_entry.last_observation_record.storage_id
                if r.asset_entry.last_observation_record
                else None,
                r.asset_entry.last_planned_materialization_storage_id,
            )
            for r in records
        ],
        entries_view(inst, [latest]) if latest else None,
        result_view(inst, inst.fetch_materializations(ALPHA, 10)),
        result_view(inst, inst.fetch_materializations(DAILY_KEY, 10)),
        sorted(inst.get_materialized_partitions(DAILY_KEY)),
        [(h.id, h.status.value) for h in history],
        records_view(inst, inst.get_event_records(EventRecordsFilter(ET.ASSET_MATERIALIZATION))),
    )


# -- report_* methods, listeners -----------------------------------------------------------------


def report_everything(inst: DagsterInstance) -> dict[str, list[EventLogEntry]]:
    """Every kind of instance write on two runs; returns what each run's listener saw."""
    seen: dict[str, list[EventLogEntry]] = {"one": [], "two": []}
    one, two = add_run(inst, "one"), add_run(inst, "two", job_name="other_job")
    inst.add_event_listener(one.run_id, seen["one"].append)
    inst.add_event_listener(two.run_id, seen["two"].append)

    inst.report_engine_event("plain engine event", one)
    inst.report_engine_event(
        "with a class and step", one, EngineEventData({"k": 1}), cls=DagsterRun, step_key="s1"
    )
    error = SerializableErrorInfo(message="bad\n", stack=["at x\n"], cls_name="ValueError")
    inst.report_engine_event("engine error", one, EngineEventData(error=error))
    inst.report_engine_event("by ids", job_name="other_job", run_id=two.run_id)
    inst.report_dagster_event(
        DagsterEvent(ET.RUN_START.value, one.job_name, message="started by hand"),
        run_id=one.run_id,
    )
    inst.report_dagster_event(
        DagsterEvent(
            ET.ENGINE_EVENT.value,
            one.job_name,
            message="warned",
            step_key="s1",
            event_specific_data=EngineEventData(),
        ),
        run_id=one.run_id,
        log_level=logging.WARNING,
        timestamp=FIXED_T0 + 50,
    )
    # store_event writes without telling listeners or the run storage.
    inst.store_event(
        log_entry(
            one.run_id, job_name=one.job_name, message="stored directly", timestamp=FIXED_T0 + 51
        )
    )
    inst.handle_new_event(
        log_entry(
            one.run_id,
            job_name=one.job_name,
            message="handled",
            level=logging.CRITICAL,
            timestamp=FIXED_T0 + 52,
            step_key="s1",
        )
    )
    inst.report_run_canceling(one)
    inst.report_run_canceled(one)
    inst.report_dagster_event(
        DagsterEvent(ET.RUN_START.value, two.job_name, message="two starts"), run_id=two.run_id
    )
    inst.report_run_failed(
        two,
        "two failed",
        JobFailureData(error=None, failure_reason=RunFailureReason.RUN_EXCEPTION),
    )
    return seen


def run_status(inst: DagsterInstance, name: str) -> DagsterRunStatus:
    run = inst.get_run_by_id(run_id_of(inst, name))
    assert run is not None
    return run.status


def test_report_methods_and_listeners(fast_pair: InstancePair) -> None:
    seen = PerInstance(fast_pair, report_everything)
    heard = same(fast_pair, lambda i: {k: entries_view(i, v) for k, v in seen(i).items()})
    stored = same(
        fast_pair,
        lambda i: {n: entries_view(i, i.all_logs(run_id_of(i, n))) for n in ("one", "two")},
    )
    # The listener saw every event of its run except the one written by store_event (stock).
    assert [v for v in stored["one"] if v[5] != "stored directly"] == heard["one"]
    assert stored["two"] == heard["two"]
    same(
        fast_pair,
        lambda i: {
            n: connection_view(i, i.get_records_for_run(run_id_of(i, n), ascending=False))
            for n in ("one", "two")
        },
    )
    statuses = same(fast_pair, lambda i: {n: run_status(i, n) for n in ("one", "two")})
    assert statuses == {"one": DagsterRunStatus.CANCELED, "two": DagsterRunStatus.FAILURE}
    same(fast_pair, status_changes)
    same(fast_pair, lambda i: index_view(i))
    same(fast_pair, lambda i: i.event_log_storage.get_maximum_record_id())
    same(
        fast_pair,
        lambda i: [
            (s.steps_succeeded, s.steps_failed, s.start_time is None, s.end_time is None)
            for s in (i.get_run_stats(run_id_of(i, n)) for n in ("one", "two"))
        ],
    )


def test_listener_sees_a_real_run_alike(fast_pair: InstancePair) -> None:
    """A listener on a run created up front hears every event its execution writes."""

    def run(inst: DagsterInstance) -> list[EventLogEntry]:
        from dagster import define_asset_job
        from dagster._core.definitions.definitions_class import Definitions

        job_def = Definitions(
            assets=[alpha, alpha_check], jobs=[define_asset_job("alpha_job")]
        ).resolve_job_def("alpha_job")
        run_id = make_new_run_id()
        heard: list[EventLogEntry] = []
        inst.add_event_listener(run_id, heard.append)
        result = job_def.execute_in_process(instance=inst, run_id=run_id, tags=tags("listened"))
        assert result.success
        return heard

    seen = PerInstance(fast_pair, run)
    heard = same(fast_pair, lambda i: entries_view(i, seen(i)))
    stored = same(fast_pair, lambda i: entries_view(i, i.all_logs(run_id_of(i, "listened"))))
    assert heard == stored and len(heard) > 10


# -- batches -----------------------------------------------------------------------------------


def batch_events(run_id: str, job_name: str, n: int) -> list[EventLogEntry]:
    return [
        engine_entry(
            run_id, f"batched {k}", job_name=job_name, step_key="step", timestamp=FIXED_T0 + 100 + k
        )
        for k in range(n)
    ]


@pytest.mark.parametrize("batch_size", ["0", "3"])
def test_handle_new_event_with_batch_metadata(
    fast_pair: InstancePair, monkeypatch: pytest.MonkeyPatch, batch_size: str
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch_size)

    def write(inst: DagsterInstance) -> tuple[list[list[int]], list[tuple]]:
        run = add_run(inst, "batched")
        heard: list[EventLogEntry] = []
        inst.add_event_listener(run.run_id, heard.append)
        snapshots: list[list[int]] = []
        events = batch_events(run.run_id, run.job_name, 7)
        for k, event in enumerate(events):
            meta = DagsterEventBatchMetadata("b1", is_end=k == len(events) - 1)
            inst.handle_new_event(event, batch_metadata=meta)
            # What is stored and heard after each call (batches are held back until full).
            snapshots.append(
                [
                    len(inst.get_records_for_run(run.run_id).records),
                    len(heard),
                ]
            )
        return snapshots, entries_view(inst, heard)

    progress = same(fast_pair, write)
    assert progress[0][-1] == [7, 7]
    same(
        fast_pair,
        lambda i: connection_view(i, i.get_records_for_run(run_id_of(i, "batched"))),
    )


def test_store_event_batch_across_runs(fast_pair: InstancePair) -> None:
    """One batch with events of two runs, runless events and indexed (asset) events."""

    def write(inst: DagsterInstance) -> None:
        one, two = add_run(inst, "one"), add_run(inst, "two")
        events = batch_events(one.run_id, one.job_name, 3) + batch_events(two.run_id, "j", 2)
        mat = DagsterEvent(
            ET.ASSET_MATERIALIZATION.value,
            one.job_name,
            message="materialized in a batch",
            event_specific_data=StepMaterializationData(
                AssetMaterialization(asset_key="alpha", partition="p1", metadata={"x": 1})
            ),
        )
        planned = DagsterEvent(
            ET.ASSET_MATERIALIZATION_PLANNED.value,
            two.job_name,
            message="planned in a batch",
            event_specific_data=AssetMaterializationPlannedData(ALPHA, partition="p2"),
        )
        for offset, (run, event) in enumerate([(one, mat), (two, planned), (one, mat)]):
            events.append(
                log_entry(
                    run.run_id,
                    job_name=run.job_name,
                    level=logging.DEBUG,
                    timestamp=FIXED_T0 + 200 + offset,
                    event=event,
                )
            )
        events += batch_events("", "", 2)
        inst.event_log_storage.store_event_batch(events)

    fast_pair.both(write)
    same(
        fast_pair,
        lambda i: {
            n: connection_view(i, i.get_records_for_run(run_id_of(i, n))) for n in ("one", "two")
        },
    )
    same(fast_pair, lambda i: connection_view(i, i.get_records_for_run("")))
    index = same(fast_pair, lambda i: index_view(i))
    assert len(index) == 3
    same(fast_pair, lambda i: i.event_log_storage.get_maximum_record_id())
    same(fast_pair, asset_view_without_checks)
    same(fast_pair, lambda i: sorted(i.get_materialized_partitions(ALPHA)))
    same(fast_pair, lambda i: i.event_log_storage.store_event_batch([]))


def asset_view_without_checks(inst: DagsterInstance) -> tuple:
    records = sorted(inst.get_asset_records(), key=lambda r: r.asset_entry.asset_key)
    return (
        [
            (
                r.asset_entry.asset_key.to_user_string(),
                r.asset_entry.last_materialization_record.storage_id
                if r.asset_entry.last_materialization_record
                else None,
                run_names(inst).run(r.asset_entry.last_run_id),
                r.asset_entry.last_planned_materialization_storage_id,
            )
            for r in records
        ],
        result_view(inst, inst.fetch_materializations(ALPHA, 10)),
    )


# -- materialize, then delete ------------------------------------------------------------------


def materialize_runs(inst: DagsterInstance) -> None:
    """Runs named first, second, daily, broken (a failing asset) and a runless observation."""
    assert materialize([alpha, alpha_check], instance=inst, tags=tags("first")).success
    assert materialize([alpha, alpha_check], instance=inst, tags=tags("second")).success
    assert materialize([daily], partition_key="2024-01-01", instance=inst, tags=tags("daily"))
    result = materialize([broken], instance=inst, tags=tags("broken"), raise_on_error=False)
    assert not result.success
    inst.report_runless_asset_event(AssetObservation(asset_key="alpha"))


materialized_homes = seeded_homes("events_materialized", materialize_runs)


@pytest.fixture
def materialized(materialized_homes: dict[str, Path], tmp_path: Path) -> Iterator[InstancePair]:
    """A fresh copy of a pair on which `materialize_runs` ran."""
    with clone_pair(materialized_homes, tmp_path) as p:
        yield p


def seeded_ids(inst: DagsterInstance) -> dict[str, str]:
    return {r.run_id: r.tags[SEED_TAG] for r in inst.get_runs()}


def run_reads(inst: DagsterInstance, ids: Mapping[str, str]) -> dict[str, Any]:
    """Everything the instance reads about each run, by name."""
    out: dict[str, Any] = {}
    for run_id, name in sorted(ids.items(), key=lambda kv: kv[1]):
        stats = inst.get_run_stats(run_id)
        out[name] = (
            [
                (sid, v[1:])
                for sid, v in records_view(inst, inst.get_records_for_run(run_id).records)
            ],
            inst.get_records_for_run(run_id, limit=2).cursor,
            (stats.steps_succeeded, stats.steps_failed, stats.materializations),
            [(s.step_key, s.status, s.attempts) for s in inst.get_run_step_stats(run_id)],
        )
    return out


@pytest.mark.parametrize("how", ["delete_run", "delete_events"])
def test_delete_then_read(materialized: InstancePair, how: str) -> None:
    ids = PerInstance(materialized, seeded_ids)
    same(materialized, lambda i: run_reads(i, ids(i)))
    same(materialized, asset_view)
    failed = same(materialized, lambda i: types_of(i.all_logs(run_id_of(i, "broken"))))
    assert ET.STEP_FAILURE in failed

    def delete(inst: DagsterInstance) -> None:
        first = run_id_of(inst, "first")
        if how == "delete_run":
            inst.delete_run(first)
        else:
            inst.event_log_storage.delete_events(first)

    materialized.both(delete)
    after = same(materialized, lambda i: run_reads(i, ids(i)))
    assert after["first"][0] == [] and after["second"][0]
    same(materialized, asset_view)
    same(materialized, lambda i: index_view(i, ids(i)))
    same(materialized, status_changes)
    same(materialized, lambda i: i.event_log_storage.get_maximum_record_id())
    same(materialized, lambda i: id_names(ids(i), all_run_ids(i)))
    same(
        materialized,
        lambda i: records_view(i, i.get_event_records(EventRecordsFilter(ET.STEP_SUCCESS))),
    )

    # Writing to the deleted run again: the shard's ids carry on as stock's do.
    def write_again(inst: DagsterInstance) -> tuple:
        run_id = {name: run_id for run_id, name in ids(inst).items()}["first"]
        inst.store_event(batch_events(run_id, "again", 1)[0])
        return connection_view(inst, inst.get_records_for_run(run_id))

    again = same(materialized, write_again)
    assert len(again[0]) == 1


def test_delete_unknown_and_runless(materialized: InstancePair) -> None:
    ids = PerInstance(materialized, seeded_ids)
    same(materialized, lambda i: i.event_log_storage.delete_events(make_fixed_unknown()))
    same(materialized, lambda i: i.delete_run(make_fixed_unknown()))
    same(materialized, lambda i: i.event_log_storage.delete_events(""))
    same(materialized, lambda i: connection_view(i, i.get_records_for_run("")))
    same(materialized, lambda i: run_reads(i, ids(i)))
    same(materialized, asset_view)
    same(materialized, lambda i: index_view(i, ids(i)))


def make_fixed_unknown() -> str:
    return "00000000-0000-4000-8000-0000000beef0"


def test_wipe_assets_then_read(materialized: InstancePair) -> None:
    """Stock's asset wipe (on the same files) between two materializations."""
    ids = PerInstance(materialized, seeded_ids)
    materialized.both(lambda i: i.wipe_assets([ALPHA]))
    same(materialized, asset_view)
    same(materialized, lambda i: run_reads(i, ids(i)))
    same(materialized, lambda i: index_view(i, ids(i)))
    materialized.both(
        lambda i: materialize([alpha, alpha_check], instance=i, tags=tags("after_asset_wipe"))
    )
    view = same(materialized, asset_view)
    assert view[1] is not None
    same(
        materialized,
        lambda i: records_view(
            i,
            i.get_event_records(EventRecordsFilter(ET.ASSET_CHECK_EVALUATION, asset_key=ALPHA)),
        ),
    )
    same(materialized, status_changes)


# -- wipe, get_all_run_ids ---------------------------------------------------------------------


def test_wipe_then_read_and_write(materialized: InstancePair) -> None:
    ids = PerInstance(materialized, seeded_ids)
    materialized.both(lambda i: i.event_log_storage.wipe())
    # First: stock's reads create the shard of the run they read (a documented difference).
    same(materialized, lambda i: id_names(ids(i), all_run_ids(i)))
    after = same(materialized, lambda i: run_reads(i, ids(i)))
    assert all(not v[0] for v in after.values())
    # The runless shard is not a run shard: stock's wipe leaves it (and its events) in place.
    same(materialized, lambda i: connection_view(i, i.get_records_for_run("")))
    same(materialized, lambda i: index_view(i, ids(i)))
    same(materialized, status_changes)
    same(materialized, asset_view)
    same(materialized, lambda i: i.event_log_storage.get_maximum_record_id())

    # New writes after the wipe: shards are recreated; the index numbering carries on as stock's.
    def rerun(inst: DagsterInstance) -> None:
        assert materialize([alpha, alpha_check], instance=inst, tags=tags("after_wipe")).success

    materialized.both(rerun)
    same(
        materialized,
        lambda i: connection_view(i, i.get_records_for_run(run_id_of(i, "after_wipe"))),
    )
    same(materialized, lambda i: index_view(i))
    same(materialized, asset_view)
    same(materialized, lambda i: i.event_log_storage.get_maximum_record_id())


def test_all_run_ids(fast_pair: InstancePair) -> None:
    assert same(fast_pair, lambda i: list(all_run_ids(i))) == []
    # A run without events has no shard; runless events do not make the runless shard a run id.
    fast_pair.both(lambda i: add_run(i, "silent"))
    fast_pair.both(lambda i: i.report_runless_asset_event(AssetObservation(asset_key="alpha")))
    assert same(fast_pair, lambda i: list(all_run_ids(i))) == []
    fast_pair.both(lambda i: i.report_engine_event("hello", add_run(i, "talkative")))
    names = same(
        fast_pair,
        lambda i: sorted(run_names(i).run(r) for r in all_run_ids(i)),
    )
    assert names == ["talkative"]


# -- errors on writes --------------------------------------------------------------------------

WRITE_ERRORS: dict[str, Callable[[DagsterInstance], Any]] = {
    "store-none": lambda i: i.event_log_storage.store_event(None),  # type: ignore[arg-type]
    "store-str": lambda i: i.event_log_storage.store_event("event"),  # type: ignore[arg-type]
    "batch-of-str": lambda i: i.event_log_storage.store_event_batch(["event"]),  # type: ignore[list-item]
    "batch-none": lambda i: i.event_log_storage.store_event_batch(None),  # type: ignore[arg-type]
    "delete-none": lambda i: i.event_log_storage.delete_events(None),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", list(WRITE_ERRORS), ids=str)
def test_bad_writes_raise_alike(fast_pair: InstancePair, case: str) -> None:
    same_error(fast_pair, WRITE_ERRORS[case])
    # Nothing was written.
    same(fast_pair, lambda i: connection_view(i, i.get_records_for_run("")))
    same(fast_pair, lambda i: i.event_log_storage.get_maximum_record_id())
    same(fast_pair, lambda i: list(all_run_ids(i)))


def test_event_ids_continue_across_instances_of_one_home(fast_pair: InstancePair) -> None:
    """Reopening a home: new events are numbered after the ones already stored."""
    fast_pair.both(lambda i: i.report_engine_event("one", add_run(i, "reopened")))
    homes = fast_pair.both(lambda i: i.root_directory)
    fast_pair.dispose()
    reopened = InstancePair(
        DagsterInstance.from_config(homes[0]), DagsterInstance.from_config(homes[1])
    )
    try:
        reopened.both(
            lambda i: i.report_engine_event("two", i.get_run_by_id(run_id_of(i, "reopened")))
        )
        view = same(
            reopened,
            lambda i: connection_view(i, i.get_records_for_run(run_id_of(i, "reopened"))),
        )
        assert len(view[0]) == 2
        assert view[1] == EventLogCursor.from_storage_id(view[0][-1][0]).to_string()
    finally:
        reopened.dispose()
