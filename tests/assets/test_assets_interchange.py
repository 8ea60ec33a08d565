"""Interchange of the assets and storage domains: one DAGSTER_HOME written by one implementation,
read and written on by the other.

dagster-rs keeps stock's files, so a home must move freely both ways. Two homes go through the
same two phases: phase one (the seed of tests/assets/seeds.py, then asset checks, dynamic
partitions, pools with claims) written by one implementation; then the home is opened by the
other, which must read back exactly what the writer read, and writes phase two (wipes, more
events, deletes, frees); then the first opens it again and must read what the second read. One
home is written by stock first, the other by dagster-rs first: at every stage the two must read
alike (the other domain tests compare each implementation with stock on fresh homes).

Never a stock and a dagster-rs instance open on the same files in one process at once (two
SQLite libraries in one process break each other's locks, ARCHITECTURE.md): one is disposed
before the other opens.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetCheckEvaluation, AssetCheckKey, AssetKey, DagsterInstance
from dagster._core.event_api import EventLogCursor
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

import dagster_rs
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from tests.assets.conftest import (
    asset_reads,
    check_eval,
    check_planned,
    mat,
    norm,
    now,
    obs,
    planned,
    store,
    t,
    unordered,
)
from tests.assets.seeds import (
    BACK,
    LETTERS,
    LETTERS_DEF,
    PLAIN,
    R,
)
from tests.conftest import load_instance, write_home

KEYS = [PLAIN, LETTERS, BACK, AssetKey("phase_two")]
CHECKS = [AssetCheckKey(PLAIN, "ok"), AssetCheckKey(LETTERS, "p"), AssetCheckKey(PLAIN, "later")]
POOLS = ("pool", "other")


def phase_one(inst: DagsterInstance) -> None:
    """After the shared seed (the homes are copies of the seeded templates)."""
    store(
        inst,
        [
            check_planned(R["r1"], PLAIN, "ok", t(60)),
            check_eval(R["r1"], PLAIN, "ok", True, t(61)),
            check_planned(
                R["r4"], LETTERS, "p", t(62), subset=LETTERS_DEF.subset_with_partition_keys(["x"])
            ),
            check_eval(R["r4"], LETTERS, "p", False, t(63), partition="x"),
        ],
    )
    inst.add_dynamic_partitions("fruits", ["apple", "banana", "cherry"])
    storage = inst.event_log_storage
    storage.set_concurrency_slots("pool", 2)
    storage.set_concurrency_slots("other", 1)
    for run_id, step in [("run-a", "s1"), ("run-a", "s2"), ("run-b", "s1")]:
        storage.claim_concurrency_slot("pool", run_id, step)
    storage.claim_concurrency_slot("other", "run-b", "s2", 3)


def phase_two(inst: DagsterInstance) -> None:
    inst.wipe_assets([LETTERS, AssetKey("never_seen")])
    ts = now()
    store(
        inst,
        [
            planned(R["r5"], LETTERS, ts, "y"),
            mat(R["r5"], LETTERS, ts + 0.001, "y", tags={"dagster/data_version": "y9"}),
            mat(R["r5"], AssetKey("phase_two"), ts + 0.002),
            obs(R["r5"], PLAIN, ts + 0.003),
            check_planned(R["r5"], PLAIN, "later", ts + 0.004),
        ],
    )
    inst.report_runless_asset_event(
        AssetCheckEvaluation(asset_key=PLAIN, check_name="ok", passed=False)
    )
    inst.delete_dynamic_partition("fruits", "banana")
    inst.add_dynamic_partitions("fruits", ["date"])
    storage = inst.event_log_storage
    storage.free_concurrency_slot_for_step("run-a", "s1")  # admits run-b's waiting step
    storage.claim_concurrency_slot("pool", "run-b", "s1")
    storage.set_concurrency_slots("other", 3)
    storage.delete_concurrency_limit("nothing")


def home_view(inst: DagsterInstance) -> dict[str, Any]:
    """What every reader of these domains says about the home, normalized."""
    storage = inst.event_log_storage
    view: dict[str, Any] = {key.to_user_string(): asset_reads(inst, key) for key in KEYS}
    view["asset_records"] = norm(inst.get_asset_records())
    view["all_keys"] = inst.all_asset_keys()
    view["pages"] = norm(
        [
            (r.records, r.cursor, r.has_more)
            for r in (
                inst.fetch_materializations(LETTERS, limit=2),
                inst.fetch_materializations(
                    LETTERS, limit=2, cursor=EventLogCursor.from_storage_id(14).to_string()
                ),
                inst.fetch_observations(PLAIN, limit=5, ascending=True),
            )
        ]
    )
    view["checks"] = norm(
        {key: storage.get_asset_check_execution_history(key, limit=10) for key in CHECKS}
    )
    view["check_summaries"] = norm(storage.get_asset_check_summary_records(CHECKS))
    view["check_partitions"] = norm(unordered(storage.get_asset_check_partition_info(CHECKS)))
    view["fruits"] = list(inst.get_dynamic_partitions("fruits"))
    page = inst.get_paginated_dynamic_partitions("fruits", 2, False)
    view["fruit_page"] = (page.results, page.cursor, page.has_more)
    view["pools"] = {
        key: (
            info.slot_count,
            info.limit,
            unordered((s.run_id, s.step_key) for s in info.claimed_slots),
            unordered(
                (p.run_id, p.step_key, p.assigned_timestamp is not None, p.priority)
                for p in info.pending_steps
            ),
        )
        for key, info in ((k, storage.get_concurrency_info(k)) for k in POOLS)
    }
    view["pool_keys"] = storage.get_concurrency_keys()
    view["pool_limits"] = unordered(
        (p.name, p.limit, p.from_default) for p in storage.get_pool_limits()
    )
    view["pool_runs"] = storage.get_concurrency_run_ids()
    return view


def open_home(home: Path, kind: str) -> DagsterInstance:
    """(Re)write the home's dagster.yaml for `kind` and open it; check whose storage it got."""
    write_home(home, kind)
    inst = load_instance(home)
    if kind == "rust":
        assert isinstance(inst, dagster_rs.DagsterInstance)
        assert isinstance(inst.event_log_storage, RustEventLogStorage)
    else:
        assert type(inst) is DagsterInstance
        assert type(inst.event_log_storage) is SqliteEventLogStorage
    return inst


def session(home: Path, kind: str, write: Callable[[DagsterInstance], None] | None) -> dict:
    """Open the home as `kind`, read it, apply `write` (if any) and read again; dispose."""
    inst = open_home(home, kind)
    try:
        before = home_view(inst)
        after = None
        if write is not None:
            write(inst)
            after = home_view(inst)
        return {"before": before, "after": after}
    finally:
        inst.dispose()


@pytest.fixture(scope="module")
def journeys(seeded_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both homes' views at each stage."""
    root = tmp_path_factory.mktemp("assets_interchange")
    out: dict[str, Any] = {}
    for name, first, second in (
        ("stock_then_rust", "stock", "rust"),
        ("rust_then_stock", "rust", "stock"),
    ):
        home = root / name
        shutil.copytree(seeded_templates[first], home)
        one = session(home, first, phase_one)
        two = session(home, second, phase_two)
        three = session(home, first, None)
        out[name] = {
            "written": one["after"],
            "read_by_other": two["before"],
            "continued": two["after"],
            "read_back": three["before"],
        }
    return out


def assert_same_view(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name


@pytest.mark.parametrize("journey", ["stock_then_rust", "rust_then_stock"])
def test_the_other_reads_what_was_written(journeys: dict, journey: str) -> None:
    stages = journeys[journey]
    assert_same_view(stages["read_by_other"], stages["written"])


@pytest.mark.parametrize("journey", ["stock_then_rust", "rust_then_stock"])
def test_the_first_reads_back_what_the_other_wrote(journeys: dict, journey: str) -> None:
    stages = journeys[journey]
    assert_same_view(stages["read_back"], stages["continued"])


@pytest.mark.parametrize("stage", ["written", "read_by_other", "continued", "read_back"])
def test_both_journeys_read_alike(journeys: dict, stage: str) -> None:
    assert_same_view(journeys["stock_then_rust"][stage], journeys["rust_then_stock"][stage])


def test_the_journeys_are_not_vacuous(journeys: dict) -> None:
    stages = journeys["stock_then_rust"]
    assert stages["written"]["letters"]["materialized_partitions"] == {"x", "y"}
    assert stages["continued"]["letters"]["materialized_partitions"] == {"y"}
    assert stages["continued"]["fruits"] == ["apple", "cherry", "date"]
    assert stages["written"]["pools"]["pool"][2] != stages["continued"]["pools"]["pool"][2]
