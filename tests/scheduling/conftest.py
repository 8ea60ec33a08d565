"""Fixtures for the scheduling-domain suite: a stock `SqliteScheduleStorage` and a dagster-rs
`RustScheduleStorage` on separate fresh directories, the objects Dagster stores in them
(instigator states, ticks, evaluations) built from fixed values, and `Pair.same`, which runs one
operation on both and asserts identical results — or the same exception class and message.

Tick ids, timestamps and bodies are chosen by the tests, so both sides store the same rows and
ids are compared as they are; only the clock-stamped columns (update/create times) differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    ScheduleInstigatorData,
    SensorInstigatorData,
    TickData,
    TickStatus,
)
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._utils.error import SerializableErrorInfo

from dagster_rs.storage.schedule_storage import RustScheduleStorage

# 2026-01-01T00:00:00Z: ticks are stamped T0 + seconds.
T0 = 1767225600.0


def origin(name: str, repo: str = "repo", location: str = "loc") -> RemoteInstigatorOrigin:
    return RemoteInstigatorOrigin(
        RemoteRepositoryOrigin(
            GrpcServerCodeLocationOrigin(host="localhost", port=4266, location_name=location),
            repo,
        ),
        name,
    )


def state(
    name: str,
    kind: InstigatorType = InstigatorType.SENSOR,
    status: InstigatorStatus = InstigatorStatus.RUNNING,
    repo: str = "repo",
    cursor: str | None = None,
) -> InstigatorState:
    data = (
        SensorInstigatorData(last_tick_timestamp=T0, cursor=cursor)
        if kind == InstigatorType.SENSOR
        else ScheduleInstigatorData(cron_schedule="* * * * *", start_timestamp=T0)
    )
    return InstigatorState(origin(name, repo), kind, status, data)


def tick(
    st: InstigatorState,
    seconds: float,
    status: TickStatus = TickStatus.SUCCESS,
    with_selector: bool = True,
    **extra: Any,
) -> TickData:
    if status == TickStatus.SUCCESS:
        extra.setdefault("run_ids", [f"run-{seconds}"])
    if status == TickStatus.FAILURE:
        extra.setdefault(
            "error",
            SerializableErrorInfo(message=f"boom {seconds}", stack=[], cls_name="Exception"),
        )
    if status == TickStatus.SKIPPED:
        extra.setdefault("skip_reason", "nothing to do")
    return TickData(
        instigator_origin_id=st.instigator_origin_id,
        instigator_name=st.instigator_name,
        instigator_type=st.instigator_type,
        status=status,
        timestamp=T0 + seconds,
        selector_id=st.selector_id if with_selector else None,
        **extra,
    )


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:  # the class and message are what is compared
        return ("raised", (type(exc).__name__, str(exc).split("\n")[0]))


@dataclass
class Pair:
    stock: SqliteScheduleStorage
    rust: RustScheduleStorage

    def same(self, op: Callable[[Any], Any], norm: Callable[[Any], Any] = lambda x: x) -> Any:
        """Run `op` on both storages; the results (or exceptions) must be equal."""
        got_stock = outcome(lambda: norm(op(self.stock)))
        got_rust = outcome(lambda: norm(op(self.rust)))
        assert got_rust == got_stock
        return got_stock[1]

    def both(self, op: Callable[[Any], Any]) -> None:
        op(self.stock)
        op(self.rust)


def ticks_view(ticks: Any) -> list[tuple[int, TickData]]:
    return [(t.tick_id, t.tick_data) for t in ticks]


def batch_view(batch: Any) -> dict[str, list[tuple[int, TickData]]]:
    assert type(batch).__name__ == "defaultdict"
    return {k: ticks_view(v) for k, v in batch.items()}


def states_view(states: Any) -> list[InstigatorState]:
    return list(states)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    stock = SqliteScheduleStorage.from_local(str(tmp_path / "stock"))
    rust = RustScheduleStorage(str(tmp_path / "rust"), durability="off")
    yield Pair(stock, rust)
    stock.dispose()
    rust.dispose()
