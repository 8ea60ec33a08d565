"""Hostile values in every argument position of the domains' public instance methods, stock vs
dagster-rs: run ids, tag keys and values, asset keys, partition keys, definition and pool names,
cursors and limits that are lone surrogates, NUL characters, huge, empty, of another type,
negative, zero, boolean. Each call must raise the class stock raises (or return what stock
returns, by type), and leave the stored state as stock's call leaves it.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance
from dagster._core.event_api import EventRecordsFilter
from dagster._core.events import DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.dagster_run import DagsterRun, RunsFilter

from tests.conftest import InstancePair, call, load_instance, make_instance
from tests.events.helpers import event_entry

SEED_RUN = "seed-run"
SEED_TAGS = {"team": "core", "env": "prod"}
ASSET = AssetKey(["hostile", "asset"])
DEF = "fruits"
POOL = "pool-a"


def materialization(partition: Any = None, asset_key: Any = ASSET) -> EventLogEntry:
    data = StepMaterializationData(AssetMaterialization(asset_key, partition=partition))
    return event_entry(
        SEED_RUN,
        DagsterEventType.ASSET_MATERIALIZATION,
        "m",
        job_name="seed_job",
        data=data,
        timestamp=1.0e9,
    )


HUGE = "h" * 200_000
SURROGATE = "bad\ud800id"

KNOWN_RUN_IDS = {SEED_RUN, "hostile-run", "bad\ud800id", "a\x00b", HUGE, "", "x"}

# Hostile values by what they stand for. Each is used wherever an argument of that kind goes.
STRINGS: dict[str, Any] = {
    "surrogate": SURROGATE,
    "nul": "a\x00b",
    "huge": HUGE,
    "empty": "",
    "int": 7,
    "bytes": b"raw",
    "none": None,
    "float": 1.5,
    "list": ["x"],
}
LIMITS: dict[str, Any] = {
    "negative": -1,
    "zero": 0,
    "huge": 2**70,
    "int64 max": 2**63 - 1,
    "str": "10",
    "true": True,
    "false": False,
    "float": 2.5,
    "nan": math.nan,
}
CURSORS: dict[str, Any] = {
    "surrogate": SURROGATE,
    "nul": "a\x00b",
    "garbage": "not-a-cursor",
    "negative": -5,
    "huge": 2**70,
    "int": 3,
    "empty": "",
    "bytes": b"c",
}
ASSET_KEYS: dict[str, Any] = {
    "surrogate": AssetKey([SURROGATE]),
    "nul": AssetKey(["a\x00b"]),
    "huge": AssetKey([HUGE]),
    "str": "hostile/asset",
    "list": ["hostile", "asset"],
    "int": 5,
    "none": None,
}

VALUES: dict[str, dict[str, Any]] = {
    "string": STRINGS,
    "limit": LIMITS,
    "cursor": CURSORS,
    "asset_key": ASSET_KEYS,
}

Call = Callable[[DagsterInstance, Any], Any]

# (kind of hostile value, the call with the value in the argument under test)
CALLS: dict[str, tuple[str, Call]] = {
    # runs: run ids
    "get_run_by_id(run_id)": ("string", lambda i, v: i.get_run_by_id(v)),
    "get_run_record_by_id(run_id)": ("string", lambda i, v: i.get_run_record_by_id(v)),
    "has_run(run_id)": ("string", lambda i, v: i.has_run(v)),
    "delete_run(run_id)": ("string", lambda i, v: i.delete_run(v)),
    "get_run_group(run_id)": ("string", lambda i, v: i.get_run_group(v)),
    "add_run(run_id)": ("string", lambda i, v: i.add_run(DagsterRun(job_name="j", run_id=v))),
    "add_run(job_name)": (
        "string",
        lambda i, v: i.add_run(DagsterRun(job_name=v, run_id="hostile-run")),
    ),
    "add_run_tags(run_id)": ("string", lambda i, v: i.add_run_tags(v, {"k": "v"})),
    "get_runs(run_ids)": ("string", lambda i, v: i.get_runs(RunsFilter(run_ids=[v]))),
    "get_runs(job_name)": ("string", lambda i, v: i.get_runs(RunsFilter(job_name=v))),
    "get_runs_count(run_ids)": ("string", lambda i, v: i.get_runs_count(RunsFilter(run_ids=[v]))),
    "get_run_ids(snapshot_id)": ("string", lambda i, v: i.get_run_ids(RunsFilter(snapshot_id=v))),
    # runs: tags
    "add_run(tag value)": (
        "string",
        lambda i, v: i.add_run(DagsterRun(job_name="j", run_id="hostile-run", tags={"k": v})),
    ),
    "add_run(tag key)": (
        "string",
        lambda i, v: i.add_run(DagsterRun(job_name="j", run_id="hostile-run", tags={v: "x"})),
    ),
    "add_run_tags(tag value)": ("string", lambda i, v: i.add_run_tags(SEED_RUN, {"k": v})),
    "add_run_tags(tag key)": ("string", lambda i, v: i.add_run_tags(SEED_RUN, {v: "x"})),
    "get_runs(tag value)": ("string", lambda i, v: i.get_runs(RunsFilter(tags={"team": v}))),
    "get_runs(tag key)": ("string", lambda i, v: i.get_runs(RunsFilter(tags={v: "core"}))),
    "get_runs(tag values list)": (
        "string",
        lambda i, v: i.get_runs(RunsFilter(tags={"team": ["core", v]})),
    ),
    "get_runs_count(tag value)": (
        "string",
        lambda i, v: i.get_runs_count(RunsFilter(tags={"team": v})),
    ),
    "get_run_records(tag key)": (
        "string",
        lambda i, v: i.get_run_records(RunsFilter(tags={v: "core"})),
    ),
    "get_run_tags(tag_keys)": ("string", lambda i, v: i.get_run_tags([v])),
    "get_run_tags(value_prefix)": ("string", lambda i, v: i.get_run_tags(["team"], v)),
    # runs: cursors and limits
    "get_runs(limit)": ("limit", lambda i, v: i.get_runs(limit=v)),
    "get_run_ids(limit)": ("limit", lambda i, v: i.get_run_ids(limit=v)),
    "get_run_records(limit)": ("limit", lambda i, v: i.get_run_records(limit=v)),
    "get_run_tags(limit)": ("limit", lambda i, v: i.get_run_tags(["team"], limit=v)),
    "get_backfills(limit)": ("limit", lambda i, v: i.get_backfills(limit=v)),
    "get_runs(cursor)": ("cursor", lambda i, v: i.get_runs(cursor=v)),
    "get_run_records(cursor)": ("cursor", lambda i, v: i.get_run_records(cursor=v)),
    "get_backfills(cursor)": ("cursor", lambda i, v: i.get_backfills(cursor=v)),
    "get_backfill(id)": ("string", lambda i, v: i.get_backfill(v)),
    # events
    "all_logs(run_id)": ("string", lambda i, v: i.all_logs(v)),
    "get_records_for_run(run_id)": ("string", lambda i, v: i.get_records_for_run(v)),
    "get_records_for_run(cursor)": ("cursor", lambda i, v: i.get_records_for_run(SEED_RUN, v)),
    "get_records_for_run(limit)": (
        "limit",
        lambda i, v: i.get_records_for_run(SEED_RUN, limit=v),
    ),
    "logs_after(cursor)": ("cursor", lambda i, v: i.logs_after(SEED_RUN, v)),
    "get_run_stats(run_id)": ("string", lambda i, v: i.get_run_stats(v)),
    "get_run_step_stats(run_id)": ("string", lambda i, v: i.get_run_step_stats(v)),
    "fetch_run_status_changes(limit)": (
        "limit",
        lambda i, v: i.fetch_run_status_changes(DagsterEventType.RUN_SUCCESS, limit=v),
    ),
    "fetch_run_status_changes(cursor)": (
        "cursor",
        lambda i, v: i.fetch_run_status_changes(DagsterEventType.RUN_SUCCESS, 5, cursor=v),
    ),
    "get_event_records(limit)": (
        "limit",
        lambda i, v: i.get_event_records(EventRecordsFilter(DagsterEventType.RUN_SUCCESS), v),
    ),
    "report_engine_event(run_id)": (
        "string",
        lambda i, v: i.report_engine_event("hostile", job_name="j", run_id=v),
    ),
    "report_engine_event(message)": (
        "string",
        lambda i, v: i.report_engine_event(v, job_name="j", run_id=SEED_RUN),
    ),
    # assets
    "get_latest_materialization_event(key)": (
        "asset_key",
        lambda i, v: i.get_latest_materialization_event(v),
    ),
    "has_asset_key(key)": ("asset_key", lambda i, v: i.has_asset_key(v)),
    "get_asset_records([key])": ("asset_key", lambda i, v: i.get_asset_records([v])),
    "fetch_materializations(key)": (
        "asset_key",
        lambda i, v: i.fetch_materializations(v, limit=5),
    ),
    "fetch_materializations(limit)": ("limit", lambda i, v: i.fetch_materializations(ASSET, v)),
    "fetch_materializations(cursor)": (
        "cursor",
        lambda i, v: i.fetch_materializations(ASSET, 5, cursor=v),
    ),
    "get_materialized_partitions(key)": (
        "asset_key",
        lambda i, v: i.get_materialized_partitions(v),
    ),
    "get_asset_keys(limit)": ("limit", lambda i, v: i.get_asset_keys(limit=v)),
    "get_asset_keys(cursor)": ("string", lambda i, v: i.get_asset_keys(cursor=v)),
    "get_asset_keys(prefix)": ("string", lambda i, v: i.get_asset_keys(prefix=[v])),
    "wipe_assets([key])": ("asset_key", lambda i, v: i.wipe_assets([v])),
    "report_runless_asset_event(key)": (
        "asset_key",
        lambda i, v: i.report_runless_asset_event(AssetMaterialization(v)),
    ),
    "report_runless_asset_event(partition)": (
        "string",
        lambda i, v: i.report_runless_asset_event(AssetMaterialization(ASSET, partition=v)),
    ),
    "store_event(partition)": (
        "string",
        lambda i, v: i.event_log_storage.store_event(materialization(partition=v)),
    ),
    # storage: dynamic partitions and pools
    "add_dynamic_partitions(key)": ("string", lambda i, v: i.add_dynamic_partitions(DEF, [v])),
    "add_dynamic_partitions(def)": ("string", lambda i, v: i.add_dynamic_partitions(v, ["k"])),
    "has_dynamic_partition(key)": ("string", lambda i, v: i.has_dynamic_partition(DEF, v)),
    "get_dynamic_partitions(def)": ("string", lambda i, v: i.get_dynamic_partitions(v)),
    "delete_dynamic_partition(key)": (
        "string",
        lambda i, v: i.delete_dynamic_partition(DEF, v),
    ),
    "get_paginated_dynamic_partitions(limit)": (
        "limit",
        lambda i, v: i.get_paginated_dynamic_partitions(DEF, v),
    ),
    "get_paginated_dynamic_partitions(cursor)": (
        "cursor",
        lambda i, v: i.get_paginated_dynamic_partitions(DEF, 5, cursor=v),
    ),
    "set_concurrency_limit(pool)": (
        "string",
        lambda i, v: i.event_log_storage.set_concurrency_slots(v, 2),
    ),
    "set_concurrency_limit(limit)": (
        "limit",
        lambda i, v: i.event_log_storage.set_concurrency_slots(POOL, v),
    ),
    "get_concurrency_info(pool)": (
        "string",
        lambda i, v: i.event_log_storage.get_concurrency_info(v),
    ),
    # scheduling
    "get_ticks(origin_id)": ("string", lambda i, v: i.get_ticks(v, "selector")),
    "get_ticks(selector_id)": ("string", lambda i, v: i.get_ticks("origin", v)),
    "get_ticks(limit)": ("limit", lambda i, v: i.get_ticks("origin", "selector", limit=v)),
    "get_ticks(statuses)": (
        "string",
        lambda i, v: i.get_ticks("origin", "selector", statuses=[TickStatus.SUCCESS, v]),
    ),
    "get_instigator_state(origin_id)": (
        "string",
        lambda i, v: i.get_instigator_state(v, "selector"),
    ),
    "all_instigator_state(repository_origin_id)": (
        "string",
        lambda i, v: i.all_instigator_state(repository_origin_id=v),
    ),
    # config
    "get_cursor_values(key)": (
        "string",
        lambda i, v: i.daemon_cursor_storage.get_cursor_values({v}),
    ),
    "set_cursor_values(value)": (
        "string",
        lambda i, v: i.daemon_cursor_storage.set_cursor_values({"k": v}),
    ),
    "set_cursor_values(key)": (
        "string",
        lambda i, v: i.daemon_cursor_storage.set_cursor_values({v: "x"}),
    ),
}

CASES = [
    (call_name, value_name) for call_name, (kind, _) in CALLS.items() for value_name in VALUES[kind]
]


def seed(inst: DagsterInstance) -> None:
    inst.add_run(DagsterRun(job_name="seed_job", run_id=SEED_RUN, tags=SEED_TAGS))
    inst.event_log_storage.store_event(materialization())
    inst.add_dynamic_partitions(DEF, ["apple"])
    inst.event_log_storage.set_concurrency_slots(POOL, 1)
    inst.daemon_cursor_storage.set_cursor_values({"seed": "1"})


def state(inst: DagsterInstance) -> Any:
    """What a call may have stored: runs and their tags, events, assets, partitions, pools,
    cursors (as plain values, so the two sides compare)."""
    storage = inst.event_log_storage
    return {
        # A run added without a run id gets a random one: its id is not compared.
        "runs": sorted(
            (
                r.run_id if r.run_id in KNOWN_RUN_IDS else "<generated>",
                r.job_name,
                sorted(r.tags.items()),
            )
            for r in inst.get_runs()
        ),
        "tag keys": sorted(inst.get_run_tag_keys()),
        "events": len(inst.all_logs(SEED_RUN)),
        "max event id": storage.get_maximum_record_id(),
        "assets": sorted(k.to_string() for k in inst.all_asset_keys()),
        "partitions": inst.get_dynamic_partitions(DEF),
        "pools": sorted(map(repr, storage.get_concurrency_keys())),
        "cursors": dict(inst.daemon_cursor_storage.get_cursor_values({"seed", "k", "x"})),
    }


class Homes:
    """A stock and a dagster-rs instance holding the seed; rebuilt, from copies of seeded homes
    made once, when a case left them with anything else, so each case starts from the seed."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.pair: InstancePair | None = None
        self.seed_state: Any = None
        self.templates: dict[str, Path] = {}

    def _templates(self) -> dict[str, Path]:
        if not self.templates:
            base = self.factory.mktemp("hostile_seed")
            pair = InstancePair(make_instance(base, "stock"), make_instance(base, "rust"))
            try:
                pair.both(seed)
                self.seed_state = state(pair.stock)
                assert state(pair.rust) == self.seed_state
            finally:
                pair.dispose()
            self.templates = {kind: base / f"{kind}_home" for kind in ("stock", "rust")}
        return self.templates

    def get(self) -> InstancePair:
        if self.pair is None:
            templates = self._templates()
            base = self.factory.mktemp("hostile")
            homes = {kind: base / f"{kind}_home" for kind in templates}
            for kind, home in homes.items():
                shutil.copytree(templates[kind], home)
            self.pair = InstancePair(load_instance(homes["stock"]), load_instance(homes["rust"]))
        return self.pair

    def settle(self, states: tuple[Any, Any] | None) -> None:
        """After a case: keep the pair if both sides' `states` (computed by the case, else
        here) are still the seed's."""
        pair = self.pair
        if pair is None:
            return
        try:
            stock, rust = states if states is not None else (state(pair.stock), state(pair.rust))
            clean = stock == self.seed_state == rust
        except Exception:  # noqa: BLE001 - a home a case broke is rebuilt as well
            clean = False
        if not clean:
            pair.dispose()
            self.pair = None


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homes]:
    h = Homes(tmp_path_factory)
    try:
        yield h
    finally:
        if h.pair is not None:
            h.pair.dispose()


@pytest.fixture
def seeded(homes: Homes) -> Iterator[tuple[InstancePair, Any, list[Any]]]:
    """The pair, the seed's state, and a list the case puts both sides' states in."""
    states: list[Any] = []
    try:
        yield homes.get(), homes.seed_state, states
    finally:
        homes.settle((states[0], states[1]) if len(states) == 2 else None)


# Where dagster-rs departs from stock on purpose: a pool name that is an int, a float or bytes.
# Stock stores it as the name and its own pool reads then fail on it (`ConcurrencyKeyInfo`
# checks for a str); the core takes text names only, so dagster-rs raises `TypeError` and
# stores nothing.
DIFFERENCES: dict[tuple[str, str], type[Exception]] = {
    ("set_concurrency_limit(pool)", name): TypeError for name in ("int", "float", "bytes")
}


def _kind(value: Any) -> str:
    return type(value).__name__


@pytest.mark.parametrize(("call_name", "value_name"), CASES)
def test_hostile_value_like_stock(
    seeded: tuple[InstancePair, Any, list[Any]], call_name: str, value_name: str
) -> None:
    pair, seed_state, states = seeded
    kind, fn = CALLS[call_name]
    value = VALUES[kind][value_name]
    stock = call(lambda i: fn(i, value), pair.stock)
    rust = call(lambda i: fn(i, value), pair.rust)
    if (call_name, value_name) in DIFFERENCES:
        assert stock.error is None, "stock no longer stores it: the difference is gone"
        assert rust.error is DIFFERENCES[call_name, value_name], rust
        assert state(pair.rust) == seed_state
        return
    states.extend((state(pair.stock), state(pair.rust)))
    assert rust.error == stock.error, (
        f"stock raised {stock.error}: {stock.message[:200]!r}\n"
        f"rust raised {rust.error}: {rust.message[:200]!r}"
    )
    if stock.error is None:
        assert _kind(rust.value) == _kind(stock.value)
    assert states[1] == states[0]
