"""With the events, assets and storage domains live, no method of the event log storage runs
stock SQL: every statement is the core's.

Stock's statements reach SQLite through the storage's connection methods (`index_connection`,
`run_connection`, `_connect`, `index_transaction`: the DB-API bridge). The test makes each of them
raise, then calls every method Dagster's instance, UI, sensors and daemons call on the event log
storage for events, assets, asset checks, dynamic partitions and concurrency pools, on a storage
holding rows of each kind. `upgrade`/`reindex_*` are the bridge's one purpose (stock's migrations
run as stock code) and are not called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance
from dagster._core.event_api import EventRecordsFilter
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.partition_status_cache import AssetStatusCacheValue

from dagster_rs import compat
from tests.assets.conftest import (
    add_run,
    check_eval,
    check_planned,
    mat,
    obs,
    planned,
    store,
    t,
)
from tests.conftest import load_instance, write_home
from tests.stock_api import lacking

ET = DagsterEventType
A, B = AssetKey("a"), AssetKey(["b", "c"])
CHECK = AssetCheckKey(A, "positive")
RUN = "0f6d3a56-7b4e-4a35-9a8e-3a0d1a9c0001"
OTHER = "0f6d3a56-7b4e-4a35-9a8e-3a0d1a9c0002"
BRIDGE = ("index_connection", "run_connection", "_connect", "index_transaction")


@pytest.fixture
def rust(tmp_path: Path) -> Iterator[DagsterInstance]:
    inst = load_instance(write_home(tmp_path / "home", "rust"))
    try:
        add_run(inst, RUN)
        add_run(inst, OTHER)
        store(
            inst,
            [
                planned(RUN, A, t(1), "p1"),
                mat(RUN, A, t(2), "p1", tags={"dagster/data_version": "v1"}),
                planned(RUN, A, t(3), "p2"),
                obs(RUN, B, t(4)),
                mat(RUN, B, t(5)),
                check_planned(RUN, A, "positive", t(6)),
                check_eval(RUN, A, "positive", True, t(7)),
            ],
        )
        inst.add_dynamic_partitions("dyn", ["x", "y"])
        inst.event_log_storage.set_concurrency_slots("pool", 2)
        yield inst
    finally:
        inst.dispose()


def _calls(inst: DagsterInstance) -> dict[str, Callable[[Any], Any]]:
    """Every call, by name, on the event log storage `s`."""
    status = AssetStatusCacheValue(latest_storage_id=1, partitions_def_id=None)
    return {
        # events
        "get_records_for_run": lambda s: s.get_records_for_run(RUN),
        "get_stats_for_run": lambda s: s.get_stats_for_run(RUN),
        "get_step_stats_for_run": lambda s: s.get_step_stats_for_run(RUN),
        "get_logs_for_all_runs_by_log_id": lambda s: s.get_logs_for_all_runs_by_log_id(),
        "get_maximum_record_id": lambda s: s.get_maximum_record_id(),
        "fetch_run_status_changes": lambda s: s.fetch_run_status_changes(ET.RUN_SUCCESS, 10),
        "get_event_records[run]": lambda s: s.get_event_records(
            EventRecordsFilter(ET.ASSET_MATERIALIZATION_PLANNED), limit=5
        ),
        # asset keys and records
        "all_asset_keys": lambda s: s.all_asset_keys(),
        "get_asset_keys": lambda s: s.get_asset_keys(prefix=["b"], limit=5, cursor='["a"]'),
        "has_asset_key": lambda s: s.has_asset_key(A),
        "get_asset_records": lambda s: s.get_asset_records(),
        "get_latest_materialization_events": lambda s: s.get_latest_materialization_events([A, B]),
        "fetch_materializations": lambda s: s.fetch_materializations(A, limit=10),
        "fetch_observations": lambda s: s.fetch_observations(B, limit=10),
        "fetch_failed_materializations": lambda s: s.fetch_failed_materializations(A, limit=10),
        "get_event_records[asset]": lambda s: s.get_event_records(
            EventRecordsFilter(ET.ASSET_MATERIALIZATION, asset_key=A, asset_partitions=["p1"])
        ),
        "get_event_tags_for_asset": lambda s: s.get_event_tags_for_asset(A),
        "get_asset_event_summary_records": lambda s: s.get_asset_event_summary_records(
            ET.ASSET_MATERIALIZATION, asset_key=A
        ),
        "get_asset_partitions_for_run": lambda s: s.get_asset_partitions_for_run(RUN),
        "get_freshness_state_records": lambda s: s.get_freshness_state_records([A]),
        # partitions and the status cache
        "get_materialized_partitions": lambda s: s.get_materialized_partitions(A),
        "get_latest_storage_id_by_partition": lambda s: s.get_latest_storage_id_by_partition(
            A, ET.ASSET_MATERIALIZATION
        ),
        "get_latest_tags_by_partition": lambda s: s.get_latest_tags_by_partition(
            A, ET.ASSET_MATERIALIZATION, ["dagster/data_version"]
        ),
        "attempts_without_materializations": lambda s: (
            s.get_latest_asset_partition_materialization_attempts_without_materializations(A)
        ),
        "get_latest_planned_materialization_info": lambda s: (
            s.get_latest_planned_materialization_info(A, "p2")
        ),
        "get_updated_data_version_partitions": lambda s: s.get_updated_data_version_partitions(
            A, ["p1"], 0
        ),
        "can_read_asset_status_cache": lambda s: s.can_read_asset_status_cache(),
        "update_asset_cached_status_data": lambda s: s.update_asset_cached_status_data(A, status),
        "wipe_asset_cached_status": lambda s: s.wipe_asset_cached_status(A),
        # asset checks
        "supports_asset_checks": lambda s: s.supports_asset_checks,
        "get_asset_check_execution_history": lambda s: s.get_asset_check_execution_history(
            CHECK, limit=10, status={AssetCheckExecutionRecordStatus.SUCCEEDED}
        ),
        "get_latest_asset_check_execution_by_key": lambda s: (
            s.get_latest_asset_check_execution_by_key([CHECK])
        ),
        "get_asset_check_summary_records": lambda s: s.get_asset_check_summary_records([CHECK]),
        # dynamic partitions
        "get_dynamic_partitions": lambda s: s.get_dynamic_partitions("dyn"),
        "get_paginated_dynamic_partitions": lambda s: s.get_paginated_dynamic_partitions(
            "dyn", limit=1, ascending=True
        ),
        "has_dynamic_partition": lambda s: s.has_dynamic_partition("dyn", "x"),
        "add_dynamic_partitions": lambda s: s.add_dynamic_partitions("dyn", ["z"]),
        "delete_dynamic_partition": lambda s: s.delete_dynamic_partition("dyn", "y"),
        # concurrency pools
        "set_concurrency_slots": lambda s: s.set_concurrency_slots("pool", 3),
        "get_concurrency_keys": lambda s: s.get_concurrency_keys(),
        "get_pool_limits": lambda s: s.get_pool_limits(),
        "claim_concurrency_slot": lambda s: s.claim_concurrency_slot("pool", OTHER, "step"),
        "check_concurrency_claim": lambda s: s.check_concurrency_claim("pool", OTHER, "step"),
        "get_concurrency_info": lambda s: s.get_concurrency_info("pool"),
        "get_concurrency_run_ids": lambda s: s.get_concurrency_run_ids(),
        "free_concurrency_slot_for_step": lambda s: s.free_concurrency_slot_for_step(OTHER, "step"),
        "free_concurrency_slots_for_run": lambda s: s.free_concurrency_slots_for_run(OTHER),
        "initialize_concurrency_limit_to_default": lambda s: (
            s.initialize_concurrency_limit_to_default("other_pool")
        ),
        "delete_concurrency_limit": lambda s: s.delete_concurrency_limit("pool"),
        # writes last: they change what the reads above see
        "wipe_asset": lambda s: s.wipe_asset(B),
        "delete_events": lambda s: s.delete_events(OTHER),
    }


class BridgeUsed(AssertionError):
    pass


def _forbid_bridge(monkeypatch: pytest.MonkeyPatch, storage: Any) -> None:
    for name in BRIDGE:

        def refuse(*args: Any, _name: str = name, **kwargs: Any) -> Any:
            raise BridgeUsed(f"stock SQL through {_name}")

        monkeypatch.setattr(storage, name, refuse)


def test_every_method_runs_on_the_core(
    rust: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = rust.event_log_storage
    assert {"events", "assets", "storage"} <= set(rust.rust_domains)  # type: ignore[attr-defined]
    _forbid_bridge(monkeypatch, storage)
    used = []
    calls = _calls(rust)
    later = lacking("SqlEventLogStorage", calls)
    # What stock's code serves for how this release behaves, listed (compat.LEFT_TO_STOCK).
    on_stock = {method.split(".")[-1] for method in compat.left_to_stock()}
    for name, call in calls.items():
        if name in later:
            # a method of a later release: this stock has none, nor has the storage
            assert not hasattr(storage, name), name
            continue
        try:
            call(storage)
        except BridgeUsed as e:
            if name not in on_stock:
                used.append(f"{name}: {e}")
    assert not used, "\n".join(used)


def test_the_test_sees_stock_sql(rust: DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal is reached by stock code on this storage (so the test above can fail)."""
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    _forbid_bridge(monkeypatch, rust.event_log_storage)
    with pytest.raises(BridgeUsed):
        SqlEventLogStorage.get_materialized_partitions(rust.event_log_storage, A)  # type: ignore[arg-type]
