"""The storage domain on dagster-rs: every method of it runs in the core (none reaches stock's
SQLAlchemy code), and a run that ends gives back its slots and its queued steps at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import ConcurrencySlotsTable

from dagster_rs.storage.storage_domain import StorageDomain
from tests.assets.conftest import POOL_DEFAULT_YAML, mat, run_ids, store, t
from tests.conftest import make_instance
from tests.stock_api import stock_has

R = run_ids("r1", "r2", "r3")
POOL = "pool"

# What stock's methods run their SQL through: none of them may be reached.
STOCK_SQL = ("_connect", "index_connection", "index_transaction", "run_connection", "_engine")


@pytest.fixture
def rust(tmp_path: Path) -> Iterator[DagsterInstance]:
    inst = make_instance(tmp_path, "rust", POOL_DEFAULT_YAML)
    try:
        yield inst
    finally:
        inst.dispose()


def run_event(run_id: str, event_type: DagsterEventType) -> EventLogEntry:
    event = DagsterEvent(event_type.value, job_name="job", message=event_type.value)
    return EventLogEntry(
        error_info=None,
        level=logging.DEBUG,
        user_message="",
        run_id=run_id,
        timestamp=t(100),
        job_name="job",
        dagster_event=event,
    )


def test_every_method_runs_in_the_core(rust: DagsterInstance, monkeypatch: Any) -> None:
    storage = rust.event_log_storage
    assert isinstance(storage, StorageDomain)
    store(rust, [mat(R["r1"], AssetKey("a"), t(1)), mat(R["r1"], AssetKey(["b", "c"]), t(2))])
    for name in STOCK_SQL:

        def refuse(*args: Any, _name: str = name, **kwargs: Any) -> Any:
            raise AssertionError(f"stock SQL reached through {_name}")

        monkeypatch.setattr(storage, name, refuse)

    # dynamic partitions
    rust.add_dynamic_partitions("fruits", ["apple", "pear", "fig"])
    rust.delete_dynamic_partition("fruits", "pear")
    assert rust.get_dynamic_partitions("fruits") == ["apple", "fig"]
    assert rust.has_dynamic_partition("fruits", "fig")
    if stock_has("DagsterInstance.get_existing_dynamic_partitions"):
        assert rust.get_existing_dynamic_partitions("fruits", ["apple", "kiwi"]) == {"apple"}
    page = rust.get_paginated_dynamic_partitions("fruits", 1, False)
    assert (page.results, page.has_more) == (["fig"], True)
    storage._check_partitions_table()  # noqa: SLF001

    # pools, through every public method and every helper of stock's that ran SQL
    assert storage.supports_global_concurrency_limits
    assert storage.has_concurrency_limits_table and storage.has_default_pool_limit_col
    storage.set_concurrency_slots(POOL, 1)
    assert storage.claim_concurrency_slot(POOL, R["r1"], "a").is_claimed
    assert not storage.claim_concurrency_slot(POOL, R["r2"], "a", 3).is_claimed
    assert storage.check_concurrency_claim(POOL, R["r2"], "a").priority == 3
    assert storage.get_concurrency_info(POOL).slot_count == 1
    if stock_has("SqlEventLogStorage.get_concurrency_infos"):
        assert set(storage.get_concurrency_infos([POOL, "other"])) == {POOL, "other"}
    assert storage.get_concurrency_keys() == {POOL}
    assert [p.name for p in storage.get_pool_limits()] == [POOL]
    assert storage.get_concurrency_run_ids() == {R["r1"], R["r2"]}
    storage.free_concurrency_slot_for_step(R["r1"], "a")
    assert storage.claim_concurrency_slot(POOL, R["r2"], "a").is_claimed
    assert storage.initialize_concurrency_limit_to_default("other") is True
    storage.delete_concurrency_limit("other")
    storage.free_concurrency_slots_for_run(R["r2"])
    storage._reconcile_concurrency_limits_from_slots()  # noqa: SLF001
    assert storage._has_rows(ConcurrencySlotsTable)  # noqa: SLF001
    storage.add_pending_step(POOL, R["r3"], "x", 1, should_assign=True)
    assert storage.has_pending_step(POOL, R["r3"], "x")
    assert storage.can_claim_from_pending(POOL, R["r3"], "x") is True
    assert storage.can_claim_from_pending(POOL, R["r3"], "y") is None
    assert not storage.has_unassigned_slots(POOL)
    assert storage._claim_concurrency_slot(POOL, R["r3"], "x").value == "CLAIMED"  # noqa: SLF001
    assert storage._free_concurrency_slots(R["r3"]) == [POOL]  # noqa: SLF001
    assert storage._remove_pending_steps(R["r3"]) == [POOL]  # noqa: SLF001
    storage.assign_pending_steps([POOL])
    storage._upsert_and_lock_limit_row(None, POOL, 2, True)  # noqa: SLF001
    assert storage._allocate_concurrency_slots(None, POOL, 2) == [POOL]  # noqa: SLF001

    # a run that ends, and the storage admin
    storage.store_event(run_event(R["r1"], DagsterEventType.PIPELINE_SUCCESS))
    storage.store_event_batch([run_event(R["r2"], DagsterEventType.PIPELINE_FAILURE)])
    printed: list[str] = []
    storage.reindex_events(printed.append, force=True)
    storage.reindex_assets(printed.append, force=True)
    assert printed[-1] == "Finished data migration: asset_key_index_columns"
    assert storage.alembic_version() == ("29b539ebc72a", "29b539ebc72a")
    rust.optimize_for_webserver(statement_timeout=1, pool_recycle=1, max_overflow=1)
    assert {key.to_user_string() for key in rust.all_asset_keys()} == {"a", "b/c"}


@pytest.mark.parametrize(
    "ending",
    [DagsterEventType.PIPELINE_SUCCESS, DagsterEventType.PIPELINE_FAILURE, "canceled (batch)"],
)
def test_a_run_that_ends_gives_its_slots_to_the_queue(rust: DagsterInstance, ending: Any) -> None:
    storage = rust.event_log_storage
    storage.set_concurrency_slots(POOL, 1)
    assert storage.claim_concurrency_slot(POOL, R["r1"], "a").is_claimed
    assert not storage.claim_concurrency_slot(POOL, R["r1"], "b").is_claimed
    assert not storage.claim_concurrency_slot(POOL, R["r2"], "a").is_claimed
    if ending == "canceled (batch)":
        storage.store_event_batch(
            [run_event(R["r3"], DagsterEventType.PIPELINE_START)]
            + [run_event(R["r1"], DagsterEventType.PIPELINE_CANCELED)]
        )
    else:
        storage.store_event(run_event(R["r1"], ending))
    info = storage.get_concurrency_info(POOL)
    assert info.claimed_slots == []
    # the run's own waiting step left the queue; the other run's was admitted
    assert [(p.run_id, p.assigned_timestamp is not None) for p in info.pending_steps] == [
        (R["r2"], True)
    ]
    assert storage.get_concurrency_run_ids() == {R["r2"]}
    assert storage.claim_concurrency_slot(POOL, R["r2"], "a").is_claimed


def test_other_events_and_other_runs_keep_their_slots(rust: DagsterInstance) -> None:
    storage = rust.event_log_storage
    storage.set_concurrency_slots(POOL, 2)
    assert storage.claim_concurrency_slot(POOL, R["r1"], "a").is_claimed
    assert storage.claim_concurrency_slot(POOL, R["r2"], "a").is_claimed
    for event_type in (
        DagsterEventType.PIPELINE_START,
        DagsterEventType.RUN_CANCELING,
        DagsterEventType.PIPELINE_ENQUEUED,
    ):
        storage.store_event(run_event(R["r1"], event_type))
    storage.store_event(run_event(R["r3"], DagsterEventType.PIPELINE_SUCCESS))
    holders = {s.run_id for s in storage.get_concurrency_info(POOL).claimed_slots}
    assert holders == {R["r1"], R["r2"]}


def test_stock_keeps_the_slots_of_a_run_that_ended(tmp_path: Path) -> None:
    """The difference, pinned: stock releases them only when the monitoring daemon or a user
    does (docs/assets-domain.md §10.11)."""
    inst = make_instance(tmp_path, "stock")
    try:
        storage = inst.event_log_storage
        storage.set_concurrency_slots(POOL, 1)
        assert storage.claim_concurrency_slot(POOL, R["r1"], "a").is_claimed
        storage.store_event(run_event(R["r1"], DagsterEventType.PIPELINE_FAILURE))
        assert [s.run_id for s in storage.get_concurrency_info(POOL).claimed_slots] == [R["r1"]]
    finally:
        inst.dispose()
