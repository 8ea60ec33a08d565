"""With the scheduling domain live, no method of the schedule storage runs stock SQL: every
statement is the core's.

Stock's statements reach SQLite through the storage's `connect()` (and `execute()`, which uses
it). The test makes both raise, as well as SQLAlchemy's engine creation, then calls every
method of `ScheduleStorage` (and stock's SQL helpers Dagster calls on it) on a storage holding
states, ticks and evaluations. `upgrade` of a file at the head revision runs nothing either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import InstigatorStatus, TickStatus

from dagster_rs.storage.schedule_storage import RustScheduleStorage
from tests.scheduling.conftest import T0, state, tick
from tests.scheduling.test_schedule_storage import evaluation
from tests.stock_api import lacking

ST = state("sensor")
OTHER = state("schedule", kind=InstigatorType.SCHEDULE)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[RustScheduleStorage]:
    s = RustScheduleStorage(str(tmp_path / "schedules"))
    s.add_instigator_state(ST)
    s.add_instigator_state(OTHER)
    for i in range(5):
        s.create_tick(tick(ST, i, TickStatus.SKIPPED))
    s.add_auto_materialize_asset_evaluations(1, [evaluation("a", 1)])
    yield s
    s.dispose()


def _calls() -> dict[str, Callable[[RustScheduleStorage], Any]]:
    o, sel = ST.instigator_origin_id, ST.selector_id
    return {
        "all_instigator_state": lambda s: s.all_instigator_state(
            instigator_type=InstigatorType.SENSOR,
            instigator_statuses={InstigatorStatus.RUNNING},
            repository_selector_id=ST.repository_selector_id,
        ),
        "get_instigator_state": lambda s: s.get_instigator_state(o, sel),
        "update_instigator_state": lambda s: s.update_instigator_state(
            ST.with_status(InstigatorStatus.STOPPED)  # type: ignore[attr-defined]
        ),
        "add_instigator_state": lambda s: s.add_instigator_state(state("new")),
        "delete_instigator_state": lambda s: s.delete_instigator_state(
            OTHER.instigator_origin_id, OTHER.selector_id
        ),
        "supports_batch_queries": lambda s: s.supports_batch_queries,
        "has_instigators_table": lambda s: s.has_instigators_table(),
        "get_batch_ticks": lambda s: s.get_batch_ticks([sel], 3),
        "get_tick": lambda s: s.get_tick(1),
        "get_ticks_by_ids": lambda s: s.get_ticks_by_ids([1, 2]),
        "get_ticks": lambda s: s.get_ticks(o, sel, before=T0 + 4, after=T0, limit=2),
        "get_tick_summaries": lambda s: s.get_tick_summaries(o, sel, limit=2),
        "create_tick": lambda s: s.create_tick(tick(ST, 9, TickStatus.STARTED)),
        "update_tick": lambda s: s.update_tick(s.get_tick(1).with_status(TickStatus.SKIPPED)),
        "purge_ticks": lambda s: s.purge_ticks(o, sel, T0 + 2, [TickStatus.SKIPPED]),
        "supports_auto_materialize_asset_evaluations": lambda s: (
            s.supports_auto_materialize_asset_evaluations
        ),
        "add_auto_materialize_asset_evaluations": lambda s: (
            s.add_auto_materialize_asset_evaluations(2, [evaluation("a", 0)])
        ),
        "get_auto_materialize_asset_evaluations": lambda s: (
            s.get_auto_materialize_asset_evaluations(AssetKey("a"), 10)
        ),
        "get_auto_materialize_evaluations_for_evaluation_id": lambda s: (
            s.get_auto_materialize_evaluations_for_evaluation_id(1)
        ),
        "purge_asset_evaluations": lambda s: s.purge_asset_evaluations(T0),
        "has_secondary_index_table": lambda s: s.has_secondary_index_table(),
        "has_built_index": lambda s: s.has_built_index("schedule_jobs_selector_id"),
        "mark_index_built": lambda s: s.mark_index_built("custom"),
        "migrate": lambda s: s.migrate(force_rebuild_all=True),
        "optimize": lambda s: s.optimize(force_rebuild_all=True),
        "upgrade": lambda s: s.upgrade(),
        "alembic_version": lambda s: s.alembic_version(),
        "optimize_for_webserver": lambda s: s.optimize_for_webserver(1, 1, 1),
        "wipe": lambda s: s.wipe(),
        "dispose": lambda s: s.dispose(),
    }


def test_every_method_is_the_cores(storage: RustScheduleStorage, monkeypatch: Any) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("stock SQL reached")

    import dagster._core.storage.schedules.sqlite.sqlite_schedule_storage as stock_module

    for name in ("connect", "execute"):
        monkeypatch.setattr(RustScheduleStorage, name, refuse)
    monkeypatch.setattr(stock_module, "create_engine", refuse)
    calls = _calls()
    later = lacking("SqlScheduleStorage", calls)
    for name, call in calls.items():
        if name in later:
            # a method of a later release: this stock has none, nor has the storage
            assert not hasattr(storage, name), name
            continue
        try:
            call(storage)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    assert storage.all_instigator_state() == []
