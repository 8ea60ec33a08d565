"""Writes on homes from Dagster's history: stock reads back what dagster-rs writes there.

For every (fixture, variant), the same writes (a run with tags and its events, a materialization
and a check evaluation, tags added later, a tick created and updated, dynamic partitions, a pool
limit with a slot claimed and freed, daemon heartbeat and cursors, a deleted run) go through stock
on one copy of the home and through dagster-rs on another, each outcome (value, or exception class
and message) compared. Then a stock instance opened on each copy must read the same; and
dagster-rs opened on (a copy of) the home stock wrote must read what stock reads there.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationPlanned,
)
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.scheduler.instigation import TickData, TickStatus
from dagster._daemon.types import DaemonHeartbeat

from tests import homes
from tests.conftest import Outcome, call, load_instance, same_class, write_home
from tests.old_homes.conftest import (
    CASES,
    OldHome,
    OldPair,
    case_id,
    copy_home,
    fresh_dir,
    same,
    scrub,
    skip_if_same_as_migrated,
    variant_home,
)

ET = DagsterEventType
JOB = "etl"
RUN = "0ld0b0me-0000-4000-8000-000000000001"
T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z: every written event's time
SALES = AssetKey("daily_sales")
CHECKED = AssetKey("checked_table")
CHECK = AssetCheckKey(CHECKED, "not_empty")


def entry(event_type: DagsterEventType, offset: float, data: Any = None, step: str | None = None):
    event = DagsterEvent(
        event_type.value,
        job_name=JOB,
        message=event_type.value,
        step_key=step,
        event_specific_data=data,
    )
    return EventLogEntry(
        error_info=None,
        level=logging.DEBUG,
        user_message="",
        run_id=RUN,
        timestamp=T0 + offset,
        job_name=JOB,
        step_key=step,
        dagster_event=event,
    )


def sensor_state(inst: DagsterInstance) -> Any:
    return next(s for s in inst.all_instigator_state() if s.instigator_name == "file_sensor")


def write_tick(inst: DagsterInstance) -> tuple:
    state = sensor_state(inst)
    tick = inst.create_tick(
        TickData(
            instigator_origin_id=state.instigator_origin_id,
            instigator_name=state.instigator_name,
            instigator_type=state.instigator_type,
            status=TickStatus.STARTED,
            timestamp=T0 + 50,
            selector_id=state.selector_id,
        )
    )
    done = tick.with_status(TickStatus.SUCCESS).with_run_info(run_id=RUN, run_key="w-1")
    # with_status stamps the end with the clock: a fixed one, so both sides store the same tick
    done = done._replace(tick_data=done.tick_data._replace(end_timestamp=T0 + 51))
    inst.update_tick(done)
    return tick.tick_id


def first_etl_run(home: OldHome) -> str:
    return home.run_ids("etl")[0]


# Each write: (name, fn(instance, home)); outcomes compared between the two sides.
WRITES: list[tuple[str, Callable[[DagsterInstance, OldHome], Any]]] = [
    (
        "add_run",
        lambda i, h: (
            i.add_run(
                DagsterRun(
                    job_name=JOB,
                    run_id=RUN,
                    status=DagsterRunStatus.NOT_STARTED,
                    tags={"team": "data", "written": "yes", "dagster/partition": "2024-01-05"},
                )
            ).run_id
        ),
    ),
    ("run_start", lambda i, h: i.handle_new_event(entry(ET.RUN_START, 0))),
    (
        "materialization",
        lambda i, h: i.handle_new_event(
            entry(
                ET.ASSET_MATERIALIZATION,
                1,
                StepMaterializationData(
                    AssetMaterialization(asset_key=SALES, partition="2024-01-05", metadata={"n": 1})
                ),
                "daily_sales",
            )
        ),
    ),
    (
        "check_planned",
        lambda i, h: i.handle_new_event(
            entry(
                ET.ASSET_CHECK_EVALUATION_PLANNED,
                2,
                AssetCheckEvaluationPlanned(asset_key=CHECKED, check_name=CHECK.name),
                "checked_table",
            )
        ),
    ),
    (
        "check_evaluation",
        lambda i, h: i.handle_new_event(
            entry(
                ET.ASSET_CHECK_EVALUATION,
                3,
                AssetCheckEvaluation(asset_key=CHECKED, check_name=CHECK.name, passed=False),
                "checked_table",
            )
        ),
    ),
    ("run_success", lambda i, h: i.handle_new_event(entry(ET.RUN_SUCCESS, 4))),
    ("add_run_tags", lambda i, h: i.add_run_tags(RUN, {"added": "later", "team": "ml"})),
    ("tick", lambda i, h: write_tick(i)),
    (
        "add_dynamic_partitions",
        lambda i, h: i.add_dynamic_partitions("customers", ["wayne", "acme"]),
    ),
    ("delete_dynamic_partition", lambda i, h: i.delete_dynamic_partition("customers", "globex")),
    ("set_pool_limit", lambda i, h: i.event_log_storage.set_concurrency_slots("written_pool", 2)),
    (
        "claim_slot",
        lambda i, h: (
            i.event_log_storage.claim_concurrency_slot("written_pool", RUN, "step_a").slot_status
        ),
    ),
    ("free_slot", lambda i, h: i.event_log_storage.free_concurrency_slot_for_step(RUN, "step_a")),
    (
        "heartbeat",
        lambda i, h: i.add_daemon_heartbeat(DaemonHeartbeat(T0 + 60, "SENSOR", "written", None)),
    ),
    ("cursor_values", lambda i, h: i.run_storage.set_cursor_values({"WRITTEN_CURSOR": "7"})),
    ("delete_run", lambda i, h: i.delete_run(first_etl_run(h))),
]


def _runs_view(inst: DagsterInstance) -> list[tuple]:
    # Row stamps (create/update timestamps) are the clock of each write: left out.
    return [(r.storage_id, r.dagster_run, r.start_time, r.end_time) for r in inst.get_run_records()]


def _check_history(inst: DagsterInstance) -> list[tuple]:
    # create_timestamp is the row's insert time (the clock of each write): left out
    records = inst.event_log_storage.get_asset_check_execution_history(CHECK, limit=10)
    return [(r.id, r.run_id, r.status, r.event) for r in records]


def _concurrency(inst: DagsterInstance) -> list[Any]:
    ev = inst.event_log_storage
    return [ev.get_concurrency_info(k) for k in sorted(ev.get_concurrency_keys())]


READBACK: list[tuple[str, Callable[[DagsterInstance, OldHome], Any]]] = [
    ("runs", lambda i, h: _runs_view(i)),
    ("runs_count", lambda i, h: i.get_runs_count()),
    ("written_runs", lambda i, h: i.get_runs(RunsFilter(tags={"written": "yes"}))),
    ("team_ml", lambda i, h: [r.run_id for r in i.get_runs(RunsFilter(tags={"team": "ml"}))]),
    ("run_tags", lambda i, h: i.get_run_tags()),
    ("deleted", lambda i, h: i.has_run(first_etl_run(h))),
    ("deleted_events", lambda i, h: i.get_records_for_run(first_etl_run(h)).records),
    ("events", lambda i, h: i.get_records_for_run(RUN).records),
    ("stats", lambda i, h: i.get_run_stats(RUN)),
    ("asset_records", lambda i, h: i.get_asset_records([SALES, CHECKED])),
    ("materializations", lambda i, h: i.fetch_materializations(SALES, limit=100).records),
    ("partitions", lambda i, h: i.get_materialized_partitions(SALES)),
    ("check_history", lambda i, h: _check_history(i)),
    (
        "ticks",
        lambda i, h: i.get_ticks(sensor_state(i).instigator_origin_id, sensor_state(i).selector_id),
    ),
    ("dynamic_partitions", lambda i, h: i.get_dynamic_partitions("customers")),
    ("concurrency", lambda i, h: _concurrency(i)),
    ("heartbeats", lambda i, h: i.get_daemon_heartbeats()),
    (
        "cursors",
        lambda i, h: i.run_storage.get_cursor_values(
            {"WRITTEN_CURSOR", "EVENT_LOG_CONSUMER_CURSOR"}
        ),
    ),
]


@dataclass
class Written:
    home: OldHome
    variant: str
    stock_home: Path  # written by stock
    rust_home: Path  # written by dagster-rs
    outcomes: dict[str, tuple[Outcome, Outcome]]


def _apply(inst: DagsterInstance, home: OldHome) -> dict[str, Outcome]:
    return {name: call(lambda i, fn=fn: fn(i, home), inst) for name, fn in WRITES}


@pytest.fixture(scope="module", params=CASES, ids=case_id)
def written(
    request: pytest.FixtureRequest,
    old_homes: dict[str, OldHome],
    work_dir: Path,
) -> Iterator[Written]:
    """The same writes through stock on one copy of the (fixture, variant) and through dagster-rs
    on another; both instances disposed."""
    version, variant = request.param
    home = old_homes[version]
    skip_if_same_as_migrated(home, variant)
    root = fresh_dir(work_dir, f"w-{case_id(request.param)}")
    with pytest.MonkeyPatch.context() as mp:
        homes.clean_env(mp)
        src = variant_home(home, variant)
        outcomes: dict[str, dict[str, Outcome]] = {}
        paths: dict[str, Path] = {}
        for kind in ("stock", "rust"):
            paths[kind] = copy_home(src, root / f"{kind}_wrote", kind)
            inst = load_instance(paths[kind])
            try:
                outcomes[kind] = _apply(inst, home)
            finally:
                inst.dispose()
        yield Written(
            home,
            variant,
            paths["stock"],
            paths["rust"],
            {n: (outcomes["stock"][n], outcomes["rust"][n]) for n, _ in WRITES},
        )
    shutil.rmtree(root, ignore_errors=True)


def test_write_outcomes(written: Written) -> None:
    """Each write returns (or raises) on dagster-rs what it does on stock; the failure lists
    every write that differs, in order."""
    paths = [str(written.stock_home), str(written.rust_home)]
    differing = []
    for write, (stock, rust) in written.outcomes.items():
        a = (stock.error, scrub(stock.message, paths)) if stock.error else (None, stock.value)
        b = (rust.error, scrub(rust.message, paths)) if rust.error else (None, rust.value)
        if not same_class(a[0], b[0]) or a[1] != b[1]:
            differing.append(f"{write}: {_say('dagster-rs', b)} (where {_say('stock', a)})")
    assert not differing, f"{len(differing)} of {len(WRITES)} writes differ:\n" + "\n".join(
        differing
    )


def _say(who: str, outcome: tuple) -> str:
    error, detail = outcome
    if error is None:
        return f"{who} returned {detail!r}"[:400]
    first = detail.strip().splitlines()[0] if detail.strip() else ""
    return f"{who} raised {error.__module__}.{error.__qualname__}: {first[:300]}"


def _compare(pair: OldPair, home: OldHome, what: str) -> None:
    with pair:
        failures = []
        for name, fn in READBACK:
            try:
                same(pair, lambda i, fn=fn: fn(i, home))
            except AssertionError as exc:
                failures.append(f"{name}: {exc}")
        assert not failures, f"{len(failures)} reads differ {what}:\n" + "\n".join(failures)


def test_stock_reads_back_what_rust_wrote(
    written: Written, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stock opened on the home dagster-rs wrote reads what stock reads on the home it wrote."""
    homes.clean_env(monkeypatch)
    write_home(written.rust_home, "stock")
    pair = OldPair(
        load_instance(written.stock_home),
        load_instance(written.rust_home),
        home=written.home,
        variant=written.variant,
        homes={"stock": written.stock_home, "rust": written.rust_home},
        names=("stock on the home stock wrote", "stock on the home dagster-rs wrote"),
    )
    _compare(pair, written.home, "on the home dagster-rs wrote")


def test_rust_reads_what_stock_wrote(written: Written, monkeypatch: pytest.MonkeyPatch) -> None:
    """dagster-rs opened on (a copy of) the home stock wrote reads what stock reads there."""
    homes.clean_env(monkeypatch)
    rust_copy = copy_home(written.stock_home, written.stock_home.parent / "rust_read", "rust")
    pair = OldPair(
        load_instance(written.stock_home),
        load_instance(rust_copy),
        home=written.home,
        variant=written.variant,
        homes={"stock": written.stock_home, "rust": rust_copy},
    )
    _compare(pair, written.home, "from stock's on the home stock wrote")


def test_written_home_is_not_vacuous(written: Written) -> None:
    """On stock's side the writes took: the comparisons above compare something."""
    stock = {n: o for n, (o, _) in written.outcomes.items()}
    for name in ("add_run", "run_start", "materialization", "add_run_tags", "tick", "delete_run"):
        assert stock[name].error is None, f"{name}: {stock[name].message}"
