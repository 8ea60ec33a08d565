"""Stock and dagster-rs on one database, both ways: what one writes the other reads as the writer
reads it (runs, tags, backfills, heartbeats, cursors, instigator states, ticks), on SQLite (one
home) and on PostgreSQL (one database)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagster import DagsterInstance
from dagster._core.storage.dagster_run import RunsFilter
from dagster._daemon.types import DaemonHeartbeat

from tests.runs.helpers import at, ids, job_backfill, make_run, records_view
from tests.scheduling.conftest import state, tick, ticks_view


def _write(inst: DagsterInstance, offset: int) -> None:
    runs = [make_run(offset + n, tags={"side": str(offset), "n": str(n)}) for n in range(5)]
    for n, run in enumerate(runs):
        inst.run_storage.add_historical_run(run, at(offset + n))
    inst.add_run_tags(runs[0].run_id, {"extra": "yes"})
    inst.add_backfill(job_backfill(f"bf{offset}", "job_a", 1_700_000_000.0 + offset))
    inst.add_daemon_heartbeat(DaemonHeartbeat(1_700_000_000.0 + offset, f"D{offset}", "x", None))
    inst.run_storage.set_cursor_values({f"c{offset}": str(offset)})
    st = state(f"sensor{offset}")
    inst.schedule_storage.add_instigator_state(st)  # type: ignore[union-attr]
    for seconds in (1.0, 2.0):
        inst.schedule_storage.create_tick(tick(st, offset + seconds))  # type: ignore[union-attr]


READS: list[Callable[[DagsterInstance], Any]] = [
    lambda i: ids(i.get_runs()),
    lambda i: records_view(i.get_run_records()),
    lambda i: ids(i.get_runs(RunsFilter(tags={"extra": "yes"}))),
    lambda i: sorted(i.get_run_tag_keys()),
    lambda i: [b.backfill_id for b in i.get_backfills()],
    lambda i: dict(i.get_daemon_heartbeats()),
    lambda i: dict(i.run_storage.get_cursor_values({"c0", "c100"})),
    lambda i: list(i.all_instigator_state()),
    lambda i: [
        ticks_view(i.schedule_storage.get_ticks(s.instigator_origin_id, s.selector_id))  # type: ignore[union-attr]
        for s in i.all_instigator_state()
    ],
    lambda i: i.run_storage.get_run_storage_id(),
]


def test_both_ways(shared: tuple[str, DagsterInstance, DagsterInstance]) -> None:
    _, stock, rust = shared
    _write(stock, 0)
    for read in READS:
        assert read(rust) == read(stock)
    _write(rust, 100)
    for read in READS:
        assert read(stock) == read(rust)
    assert len(stock.get_runs()) == 10
