"""Asset check reads, stock vs dagster-rs, on seeded executions.

A module-scoped pair stores the same check events in the same order: checks of an unpartitioned
asset planned then passed, failed, planned and never evaluated, and a check whose latest
execution is planned after completed ones; a partitioned asset whose check ran on a planned
partitions subset (passed on one partition, failed on another), then was planned for a partition
in a run still going, then evaluated runless; executions targeting a materialization (by its
storage id), a later materialization that makes one partition's check stale; and an asset whose
check executions were wiped with it. Execution ids, storage ids and statuses are compared exactly;
the row insert time (whole seconds, the clock's) only for presence.
"""

from __future__ import annotations

from typing import Any

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    DagsterInstance,
    StaticPartitionsDefinition,
)
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.dagster_run import DagsterRunStatus

from tests.assets.conftest import (
    add_run,
    check_eval,
    check_planned,
    mat,
    run_ids,
    same,
    same_error,
    seeded_pair,
    store,
    t,
    unordered,
)
from tests.conftest import InstancePair

R = run_ids("r1", "r2", "r3")
ABC = StaticPartitionsDefinition(["a", "b", "c"])
CHECKED = AssetKey("checked")
PCHECKED = AssetKey(["checked", "parted"])
WIPED = AssetKey("checked_then_wiped")
UNKNOWN = AssetKey("never_seen")

OK = AssetCheckKey(CHECKED, "ok")
BAD = AssetCheckKey(CHECKED, "bad")
PLANNED_ONLY = AssetCheckKey(CHECKED, "planned_only")
RUNLESS_CHECK = AssetCheckKey(CHECKED, "runless")
P_OK = AssetCheckKey(PCHECKED, "p_ok")
WIPED_CHECK = AssetCheckKey(WIPED, "gone")
NEVER_RAN = AssetCheckKey(CHECKED, "never_ran")
UNKNOWN_CHECK = AssetCheckKey(UNKNOWN, "ok")
ALL_CHECKS = [OK, BAD, PLANNED_ONLY, RUNLESS_CHECK, P_OK, WIPED_CHECK, NEVER_RAN, UNKNOWN_CHECK]

S = AssetCheckExecutionRecordStatus


def latest_mat(inst: DagsterInstance, key: AssetKey, partition: str | None = None) -> tuple:
    """(storage id, run id, timestamp) of the latest materialization: an evaluation's target."""
    record = inst.get_latest_data_version_record(key, False, partition)
    assert record is not None
    return record.storage_id, record.run_id, record.timestamp


def seed(inst: DagsterInstance) -> None:
    add_run(inst, R["r1"])
    add_run(inst, R["r2"], DagsterRunStatus.FAILURE)
    add_run(inst, R["r3"], DagsterRunStatus.STARTED)
    r1, r2, r3 = R["r1"], R["r2"], R["r3"]
    store(inst, [mat(r1, CHECKED, t(1))])
    store(
        inst,
        [
            check_planned(r1, CHECKED, "ok", t(2)),
            check_eval(r1, CHECKED, "ok", True, t(3), target=latest_mat(inst, CHECKED)),
            check_planned(r1, CHECKED, "bad", t(4)),
            check_eval(r1, CHECKED, "bad", False, t(5), target=latest_mat(inst, CHECKED)),
            check_planned(r2, CHECKED, "planned_only", t(6)),
            mat(r2, CHECKED, t(7)),
        ],
    )
    store(
        inst,
        [
            check_planned(r2, CHECKED, "ok", t(8)),
            check_eval(r2, CHECKED, "ok", False, t(9), target=latest_mat(inst, CHECKED)),
            check_planned(r3, CHECKED, "ok", t(10)),
            # partitioned: a and b materialized, the check planned on {a, b} and evaluated
            mat(r1, PCHECKED, t(11), "a"),
            mat(r1, PCHECKED, t(12), "b"),
            # planned on an empty subset (stored as an unpartitioned planned execution)
            check_planned(r1, PCHECKED, "p_ok", t(13), subset=ABC.subset_with_partition_keys([])),
        ],
    )
    abc = ABC
    store(
        inst,
        [
            check_planned(
                r1, PCHECKED, "p_ok", t(14), subset=abc.subset_with_partition_keys(["a", "b"])
            ),
            check_eval(
                r1,
                PCHECKED,
                "p_ok",
                True,
                t(15),
                partition="a",
                target=latest_mat(inst, PCHECKED, "a"),
            ),
            check_eval(
                r1,
                PCHECKED,
                "p_ok",
                False,
                t(16),
                partition="b",
                target=latest_mat(inst, PCHECKED, "b"),
            ),
            # a is materialized again: its check result is now stale
            mat(r2, PCHECKED, t(17), "a"),
            check_planned(
                r3, PCHECKED, "p_ok", t(18), subset=abc.subset_with_partition_keys(["c"])
            ),
            mat(r1, WIPED, t(19)),
            check_planned(r1, WIPED, "gone", t(20)),
            check_eval(r1, WIPED, "gone", True, t(21)),
        ],
    )
    inst.report_runless_asset_event(
        AssetCheckEvaluation(asset_key=PCHECKED, check_name="p_ok", passed=True, partition="c")
    )
    inst.report_runless_asset_event(
        AssetCheckEvaluation(asset_key=CHECKED, check_name="runless", passed=False)
    )
    inst.wipe_assets([WIPED])


seeded = seeded_pair("asset_checks", seed)


def history(inst: DagsterInstance, key: AssetCheckKey, limit: int, **kwargs: Any) -> Any:
    return inst.event_log_storage.get_asset_check_execution_history(key, limit, **kwargs)


def test_seed_is_what_the_tests_rely_on(seeded: InstancePair) -> None:
    inst = seeded.stock
    # an evaluation in the run that planned the check completes that execution (no new row)
    assert [r.status for r in history(inst, OK, 10)] == [S.PLANNED, S.FAILED, S.SUCCEEDED]
    assert {r.partition for r in history(inst, P_OK, 10)} == {"a", "b", "c", None}
    assert history(inst, WIPED_CHECK, 10) == []


@pytest.mark.parametrize("key", ALL_CHECKS, ids=lambda k: k.to_user_string())
@pytest.mark.parametrize("limit", [1, 3, 100, 0, -1], ids=lambda v: f"limit={v}")
def test_execution_history(seeded: InstancePair, key: AssetCheckKey, limit: int) -> None:
    same(seeded, lambda i: history(i, key, limit))


@pytest.mark.parametrize("key", [OK, P_OK], ids=lambda k: k.to_user_string())
@pytest.mark.parametrize(
    "kwargs",
    [
        {"cursor": 0},
        {"cursor": 3},
        {"cursor": 1000},
        {"status": {S.SUCCEEDED}},
        {"status": {S.PLANNED, S.FAILED}},
        {"status": set()},
        {"partition_filter": PartitionKeyFilter(key=None)},
        {"partition_filter": PartitionKeyFilter(key="a")},
        {"partition_filter": PartitionKeyFilter(key="c"), "status": {S.SUCCEEDED}},
        {"cursor": 8, "status": {S.SUCCEEDED, S.FAILED}},
    ],
    ids=str,
)
def test_execution_history_filters(seeded: InstancePair, key: AssetCheckKey, kwargs: dict) -> None:
    same(seeded, lambda i: history(i, key, 10, **kwargs))


@pytest.mark.parametrize("key", [OK, P_OK], ids=lambda k: k.to_user_string())
def test_execution_history_paged(seeded: InstancePair, key: AssetCheckKey) -> None:
    """The cursor is the id of the last execution of the previous page."""

    def pages(inst: DagsterInstance) -> list:
        out: list = []
        cursor = None
        while True:
            page = history(inst, key, 2, cursor=cursor)
            out.append(page)
            if len(page) < 2:
                return out
            cursor = page[-1].id

    assert len(same(seeded, pages)) > 1


@pytest.mark.parametrize(
    "keys",
    [[], [OK], [OK, P_OK], [BAD, P_OK], ALL_CHECKS, [NEVER_RAN, UNKNOWN_CHECK]],
    ids=["empty", "one", "two", "cross", "all", "never"],
)
@pytest.mark.parametrize(
    "partition_filter", [None, PartitionKeyFilter(key=None), PartitionKeyFilter(key="b")], ids=str
)
def test_latest_execution_by_key(
    seeded: InstancePair, keys: list[AssetCheckKey], partition_filter: Any
) -> None:
    # a cross product of asset keys and check names on stock: the map may hold unrequested keys
    same(
        seeded,
        lambda i: i.event_log_storage.get_latest_asset_check_execution_by_key(
            keys, partition_filter
        ),
    )


@pytest.mark.parametrize("key", ALL_CHECKS, ids=lambda k: k.to_user_string())
def test_latest_evaluation_record(seeded: InstancePair, key: AssetCheckKey) -> None:
    same(seeded, lambda i: i.get_latest_asset_check_evaluation_record(key))


@pytest.mark.parametrize(
    "keys",
    [[], [OK], [OK, PLANNED_ONLY, NEVER_RAN], ALL_CHECKS],
    ids=["empty", "one", "mixed", "all"],
)
def test_summary_records(seeded: InstancePair, keys: list[AssetCheckKey]) -> None:
    same(seeded, lambda i: i.event_log_storage.get_asset_check_summary_records(keys))


@pytest.mark.parametrize(
    "keys",
    [[OK], [P_OK], [OK, BAD, P_OK, RUNLESS_CHECK], [WIPED_CHECK, UNKNOWN_CHECK], []],
    ids=["ok", "p_ok", "several", "wiped-unknown", "none"],
)
@pytest.mark.parametrize("after_storage_id", [None, 0, 17])
def test_partition_info(
    seeded: InstancePair, keys: list[AssetCheckKey], after_storage_id: int | None
) -> None:
    # rows come in SQLite's scan order (no ORDER BY): compared as a multiset
    for partition_keys in (None, [], ["a", "c"]):
        same(
            seeded,
            lambda i, p=partition_keys: unordered(
                i.event_log_storage.get_asset_check_partition_info(keys, after_storage_id, p)
            ),
        )


def test_check_state(seeded: InstancePair) -> None:
    """The asset-check state the UI and the daemon build from the partition info and runs."""
    abc = ABC
    same(
        seeded,
        lambda i: i.event_log_storage.get_asset_check_state([(P_OK, abc), (OK, None), (BAD, None)]),
    )


def test_support(seeded: InstancePair) -> None:
    same(seeded, lambda i: i.get_asset_check_support())


def test_history_without_a_limit(seeded: InstancePair) -> None:
    assert same_error(seeded, lambda i: history(i, OK, None)).__name__ == "ParameterCheckError"  # type: ignore[arg-type]
