"""The instance's scheduling methods with the domain live, against stock's instance: schedules
and sensors started, stopped and reset from a real code location (an in-process one built from
`instigator_defs.py`), ticks created, updated, read and purged, the debug info and retention
settings — the same states and ticks on both sides."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorStatus, TickStatus
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

import dagster_rs
from dagster_rs.storage.schedule_storage import RustScheduleStorage
from tests.conftest import load_instance, write_home
from tests.scheduling.conftest import T0, outcome, tick, ticks_view

DEFS = os.path.join(os.path.dirname(__file__), "instigator_defs.py")


class Side:
    def __init__(self, instance: DagsterInstance, stack: ExitStack):
        self.instance = instance
        origin = InProcessCodeLocationOrigin(
            loadable_target_origin=LoadableTargetOrigin(python_file=DEFS, attribute="defs"),
            location_name="instigators",
        )
        location = stack.enter_context(origin.create_location(instance))
        repo = location.get_repository("__repository__")
        self.schedule = repo.get_schedule("every_minute")
        self.sensor = repo.get_sensor("watcher")


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side]]:
    with ExitStack() as stack:
        stock = load_instance(write_home(tmp_path / "stock", "stock"))
        rust = load_instance(write_home(tmp_path / "rust", "rust"))
        assert isinstance(rust, dagster_rs.DagsterInstance)
        assert "scheduling" in rust.rust_domains
        assert isinstance(rust.schedule_storage, RustScheduleStorage)
        assert type(stock.schedule_storage) is not RustScheduleStorage
        yield Side(stock, stack), Side(rust, stack)
        stock.dispose()
        rust.dispose()


def same(sides: tuple[Side, Side], op: Any) -> Any:
    got = [outcome(lambda side=side: op(side)) for side in sides]
    assert got[1] == got[0]
    return got[0][1]


def view_state(state: Any) -> Any:
    # Start and stop times are the clock's: compared for presence.
    if state is None:
        return None
    data = state.instigator_data
    fields = data._asdict() if data is not None else {}
    stamped = {k: v is not None for k, v in fields.items() if "timestamp" in k}
    rest = {k: v for k, v in fields.items() if "timestamp" not in k}
    return (state.instigator_origin_id, state.selector_id, state.status, rest, stamped)


def test_schedules_and_sensors(sides: tuple[Side, Side]) -> None:
    same(sides, lambda s: view_state(s.instance.start_schedule(s.schedule)))
    same(sides, lambda s: view_state(s.instance.start_schedule(s.schedule)))  # already running
    same(sides, lambda s: view_state(s.instance.start_sensor(s.sensor)))
    same(sides, lambda s: view_state(s.instance.start_sensor(s.sensor)))
    same(sides, lambda s: [view_state(x) for x in s.instance.all_instigator_state()])
    same(
        sides,
        lambda s: [
            view_state(x)
            for x in s.instance.all_instigator_state(
                instigator_type=InstigatorType.SENSOR,
                instigator_statuses={InstigatorStatus.RUNNING},
            )
        ],
    )
    same(
        sides,
        lambda s: view_state(
            s.instance.stop_schedule(
                s.schedule.get_remote_origin_id(), s.schedule.selector_id, s.schedule
            )
        ),
    )
    same(
        sides,
        lambda s: view_state(
            s.instance.stop_sensor(s.sensor.get_remote_origin_id(), s.sensor.selector_id, s.sensor)
        ),
    )
    same(sides, lambda s: view_state(s.instance.reset_schedule(s.schedule)))
    same(sides, lambda s: view_state(s.instance.reset_sensor(s.sensor)))
    same(sides, lambda s: [view_state(x) for x in s.instance.all_instigator_state()])
    same(sides, lambda s: s.instance.scheduler_debug_info().schedule_storage)
    for kind in (InstigatorType.SCHEDULE, InstigatorType.SENSOR, InstigatorType.AUTO_MATERIALIZE):
        same(sides, lambda s, k=kind: dict(s.instance.get_tick_retention_settings(k)))
    same(sides, lambda s: s.instance.wipe_all_schedules())
    same(sides, lambda s: s.instance.all_instigator_state())


def test_ticks_through_the_instance(sides: tuple[Side, Side]) -> None:
    for side in sides:
        side.instance.start_sensor(side.sensor)
    state = sides[0].instance.get_instigator_state(
        sides[0].sensor.get_remote_origin_id(), sides[0].sensor.selector_id
    )
    assert state is not None
    o, sel = state.instigator_origin_id, state.selector_id
    for i in range(12):
        data = tick(state, i * 5, [TickStatus.SKIPPED, TickStatus.SUCCESS][i % 2])
        same(sides, lambda s, d=data: s.instance.create_tick(d).tick_id)
    started = same(sides, lambda s: s.instance.create_tick(tick(state, 100, TickStatus.STARTED)))
    # One end time (the clock's) for both sides.
    done = started.with_status(TickStatus.SKIPPED, skip_reason="done")
    same(sides, lambda s: s.instance.update_tick(done).tick_id)
    same(sides, lambda s: s.instance.get_tick(o, sel, T0 + 100).tick_data)
    same(sides, lambda s: s.instance.get_tick(o, sel, T0 + 101))
    same(sides, lambda s: ticks_view(s.instance.get_ticks(o, sel, limit=5)))
    same(
        sides,
        lambda s: ticks_view(
            s.instance.get_ticks(o, sel, before=T0 + 40, statuses=[TickStatus.SKIPPED])
        ),
    )
    same(sides, lambda s: s.instance.supports_batch_tick_queries)
    same(
        sides,
        lambda s: {k: ticks_view(v) for k, v in s.instance.get_batch_ticks([sel], 3).items()},
    )
    same(sides, lambda s: s.instance.purge_ticks(o, sel, T0 + 30, [TickStatus.SKIPPED]))
    same(sides, lambda s: ticks_view(s.instance.get_ticks(o, sel)))
    same(sides, lambda s: s.instance.purge_ticks(o, sel, T0 + 1000))
    same(sides, lambda s: ticks_view(s.instance.get_ticks(o, sel)))


def test_switching_the_domain_off_gives_stocks_storage(tmp_path: Path) -> None:
    home = write_home(tmp_path / "home", "rust")
    rust = load_instance(home)
    assert isinstance(rust.schedule_storage, RustScheduleStorage)
    rust.schedule_storage.create_tick(  # type: ignore[union-attr]
        tick(_sensor_state(), 0, TickStatus.SKIPPED)
    )
    rust.dispose()
    write_home(home, "rust", "rust_domains: [runs, events]\n")
    off = load_instance(home)
    assert "scheduling" not in off.rust_domains  # type: ignore[attr-defined]
    storage = off.schedule_storage
    assert type(storage).__name__ == "SqliteScheduleStorage"
    assert storage is not None
    st = _sensor_state()
    assert [t.tick_id for t in storage.get_ticks(st.instigator_origin_id, st.selector_id)] == [1]
    off.dispose()


def _sensor_state() -> Any:
    from tests.scheduling.conftest import state

    return state("switch")
