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
    norm,
    now,
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
        {"cursor": -1},
        {"status": set(S)},
        {"status": frozenset({S.PLANNED})},
        {"partition_filter": PartitionKeyFilter(key="x")},
        {"partition_filter": PartitionKeyFilter(key=None), "cursor": 1000, "status": {S.FAILED}},
    ],
    ids=lambda kwargs: str(
        {k: sorted(v, key=str) if isinstance(v, (set, frozenset)) else v for k, v in kwargs.items()}
    ),
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
    [
        [],
        [OK],
        [OK, P_OK],
        [BAD, P_OK],
        ALL_CHECKS,
        [NEVER_RAN, UNKNOWN_CHECK],
        [OK, OK, WIPED_CHECK],
        (RUNLESS_CHECK, P_OK),
    ],
    ids=["empty", "one", "two", "cross", "all", "never", "repeated-wiped", "tuple-runless"],
)
@pytest.mark.parametrize(
    "partition_filter",
    [
        None,
        PartitionKeyFilter(key=None),
        PartitionKeyFilter(key="b"),
        PartitionKeyFilter(key="c"),
        PartitionKeyFilter(key="x"),
    ],
    ids=str,
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
    for partition_keys in (None, [], ["a", "c"], ("b", "x"), ["a", "a"]):
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


# -- bad input ---------------------------------------------------------------------------------

BAD_CALLS: dict[str, Any] = {
    "history(str key)": lambda s: s.get_asset_check_execution_history("checked", 5),
    "history(str limit)": lambda s: s.get_asset_check_execution_history(OK, "5"),
    "history(str cursor)": lambda s: s.get_asset_check_execution_history(OK, 5, cursor="3"),
    "history(bool cursor)": lambda s: s.get_asset_check_execution_history(OK, 5, cursor=True),
    "history(huge limit)": lambda s: s.get_asset_check_execution_history(OK, 2**63),
    "history(huge cursor)": lambda s: s.get_asset_check_execution_history(OK, 5, cursor=-(2**64)),
    "history(str status)": lambda s: s.get_asset_check_execution_history(OK, 5, status="PLANNED"),
    "history(str partition_filter)": lambda s: s.get_asset_check_execution_history(
        OK, 5, partition_filter="a"
    ),
    "latest([str])": lambda s: s.get_latest_asset_check_execution_by_key(["checked"]),
    "latest(str partition_filter)": lambda s: s.get_latest_asset_check_execution_by_key([OK], "a"),
    "partition_info([str])": lambda s: s.get_asset_check_partition_info(["checked"]),
    "partition_info(str after)": lambda s: s.get_asset_check_partition_info([P_OK], "1"),
    "partition_info(bool after)": lambda s: s.get_asset_check_partition_info([P_OK], True),
    "partition_info(huge after)": lambda s: s.get_asset_check_partition_info([P_OK], 2**63),
    "partition_info(str partitions)": lambda s: s.get_asset_check_partition_info(
        [P_OK], None, "ab"
    ),
    "partition_info(int partitions)": lambda s: s.get_asset_check_partition_info([P_OK], None, 5),
    "summary([str])": lambda s: s.get_asset_check_summary_records(["checked"]),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_input_raises_as_stock(seeded: InstancePair, name: str) -> None:
    same_error(seeded, lambda i: BAD_CALLS[name](i.event_log_storage))


def test_untyped_partition_keys_bind_as_stock(seeded: InstancePair) -> None:
    """Numbers and None among the partition keys bind as stock's driver binds them."""
    for partition_keys in ([1, None, "a"], [1.5], {"a": 1}, {"b"}):
        same(
            seeded,
            lambda i, p=partition_keys: unordered(
                i.event_log_storage.get_asset_check_partition_info([P_OK], 0, p)
            ),
        )


# -- executions step by step -------------------------------------------------------------------

W = run_ids("w1", "w2", "w3", first=3)
STEPPED = AssetKey(["checked", "stepped"])
STEP_CHECK = AssetCheckKey(STEPPED, "s")
PARTED_WIPED = AssetKey(["checked", "parted_wiped"])
PW_CHECK = AssetCheckKey(PARTED_WIPED, "pw")


def check_reads(inst: DagsterInstance, key: AssetCheckKey, partitions: Any = None) -> dict:
    """Every read of one check, normalized (partition info as a multiset)."""
    storage = inst.event_log_storage
    completed = {S.SUCCEEDED, S.FAILED}
    reads: dict[str, Any] = {
        "history": lambda: storage.get_asset_check_execution_history(key, 10),
        "history_unpartitioned": lambda: storage.get_asset_check_execution_history(
            key, 10, partition_filter=PartitionKeyFilter(key=None)
        ),
        "history_a": lambda: storage.get_asset_check_execution_history(
            key, 10, partition_filter=PartitionKeyFilter(key="a")
        ),
        "history_completed": lambda: storage.get_asset_check_execution_history(
            key, 1, status=completed
        ),
        "latest": lambda: storage.get_latest_asset_check_execution_by_key([key]),
        "latest_unpartitioned": lambda: storage.get_latest_asset_check_execution_by_key(
            [key], PartitionKeyFilter(key=None)
        ),
        "latest_b": lambda: storage.get_latest_asset_check_execution_by_key(
            [key], PartitionKeyFilter(key="b")
        ),
        "evaluation_record": lambda: inst.get_latest_asset_check_evaluation_record(key),
        "summary": lambda: storage.get_asset_check_summary_records([key]),
        "partition_info": lambda: unordered(storage.get_asset_check_partition_info([key])),
        "partition_info_after": lambda: unordered(
            storage.get_asset_check_partition_info([key], after_storage_id=0)
        ),
        "partition_info_ab": lambda: unordered(
            storage.get_asset_check_partition_info([key], None, ["a", "b"])
        ),
        "state": lambda: storage.get_asset_check_state([(key, partitions)]),
    }
    out: dict[str, Any] = {}
    for name, read in reads.items():
        try:
            out[name] = norm(read())
        except Exception as exc:  # noqa: BLE001 - the exception class is part of the view
            out[name] = ("raised", type(exc).__name__)
    return out


def same_check_reads(pair: InstancePair, key: AssetCheckKey, partitions: Any = None) -> dict:
    """Both sides answer every read of the check alike (each compared on its own); rust's."""
    stock, rust = pair.both(lambda i: check_reads(i, key, partitions))
    for name in stock:
        assert stock[name] == rust[name], name
    return rust


def statuses(view: dict) -> list:
    """The statuses of a normalized history, newest first."""
    return [dict(record[1:])["status"] for record in view["history"]]


def test_planned_then_passed_then_failed(fast_pair: InstancePair) -> None:
    pair = fast_pair
    pair.both(lambda i: [add_run(i, W["w1"]), add_run(i, W["w2"], DagsterRunStatus.STARTED)])
    assert same_check_reads(pair, STEP_CHECK)["history"] == []
    steps = [
        ([check_planned(W["w1"], STEPPED, "s", t(100))], [S.PLANNED]),
        ([mat(W["w1"], STEPPED, t(101))], [S.PLANNED]),
        ([check_eval(W["w1"], STEPPED, "s", True, t(102))], [S.SUCCEEDED]),
        ([check_planned(W["w2"], STEPPED, "s", t(103))], [S.PLANNED, S.SUCCEEDED]),
        ([check_eval(W["w2"], STEPPED, "s", False, t(104))], [S.FAILED, S.SUCCEEDED]),
    ]
    for entries, expected in steps:
        pair.both(lambda i, e=entries: store(i, e))
        assert statuses(same_check_reads(pair, STEP_CHECK)) == expected
    # a runless evaluation adds an execution of its own (run id "")
    pair.both(
        lambda i: i.report_runless_asset_event(
            AssetCheckEvaluation(asset_key=STEPPED, check_name="s", passed=True)
        )
    )
    view = same_check_reads(pair, STEP_CHECK)
    assert statuses(view) == [S.SUCCEEDED, S.FAILED, S.SUCCEEDED]


def test_partitioned_check_around_a_wipe(fast_pair: InstancePair) -> None:
    """The latest materialization per partition honours the asset's wipe: one stamped before the
    wipe but stored after it does not count."""
    pair = fast_pair
    pair.both(lambda i: [add_run(i, W["w1"]), add_run(i, W["w2"]), add_run(i, W["w3"])])
    w1 = W["w1"]
    pair.both(
        lambda i: store(
            i,
            [
                mat(w1, PARTED_WIPED, t(200), "a"),
                mat(w1, PARTED_WIPED, t(201), "b"),
                check_planned(
                    w1,
                    PARTED_WIPED,
                    "pw",
                    t(202),
                    subset=ABC.subset_with_partition_keys(["a", "b"]),
                ),
            ],
        )
    )
    pair.both(
        lambda i: store(
            i,
            [
                check_eval(
                    w1,
                    PARTED_WIPED,
                    "pw",
                    True,
                    t(203),
                    partition="a",
                    target=latest_mat(i, PARTED_WIPED, "a"),
                ),
            ],
        )
    )
    view = same_check_reads(pair, PW_CHECK, ABC)
    assert len(view["partition_info"]) == 2
    pair.both(lambda i: i.wipe_assets([PARTED_WIPED]))
    assert same_check_reads(pair, PW_CHECK, ABC)["history"] == []

    ts = now()
    w2 = W["w2"]
    pair.both(
        lambda i: store(
            i,
            [
                mat(w2, PARTED_WIPED, ts, "a"),
                mat(w2, PARTED_WIPED, t(204), "b"),  # stamped before the wipe: hidden
                check_planned(
                    w2,
                    PARTED_WIPED,
                    "pw",
                    ts,
                    subset=ABC.subset_with_partition_keys(["a", "b", "c"]),
                ),
                check_eval(w2, PARTED_WIPED, "pw", False, ts, partition="a"),
                check_eval(w2, PARTED_WIPED, "pw", True, ts, partition="b"),
            ],
        )
    )
    view = same_check_reads(pair, PW_CHECK, ABC)
    info = {dict(row[1:])["partition_key"]: dict(row[1:]) for row in view["partition_info"]}
    assert set(info) == {"a", "b", "c"}
    assert info["c"]["latest_execution_status"] == S.PLANNED  # planned, not evaluated
    assert info["a"]["latest_materialization_storage_id"] is not None
    assert info["b"]["latest_materialization_storage_id"] is None
    # evaluated runless, then planned again in a run still going
    pair.both(
        lambda i: i.report_runless_asset_event(
            AssetCheckEvaluation(
                asset_key=PARTED_WIPED, check_name="pw", passed=True, partition="c"
            )
        )
    )
    pair.both(
        lambda i: store(
            i,
            [
                check_planned(
                    W["w3"], PARTED_WIPED, "pw", now(), subset=ABC.subset_with_partition_keys(["a"])
                )
            ],
        )
    )
    same_check_reads(pair, PW_CHECK, ABC)


# -- every statement is the core's -------------------------------------------------------------


def test_no_stock_sql(seeded: InstancePair, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the assets domain live, the check reads open no SQLAlchemy connection."""
    inst = seeded.rust
    storage = inst.event_log_storage
    assert "assets" in storage.rust_domains  # type: ignore[attr-defined]
    expected = {
        name: check_reads(inst, key, parts)
        for name, key, parts in (
            ("ok", OK, None),
            ("p_ok", P_OK, ABC),
            ("wiped", WIPED_CHECK, None),
        )
    }

    def no_stock_sql(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("stock SQL ran")

    monkeypatch.setattr(storage, "index_connection", no_stock_sql)
    monkeypatch.setattr(storage, "_connect", no_stock_sql)
    monkeypatch.setattr(storage, "_engine", no_stock_sql)
    for name, key, parts in (("ok", OK, None), ("p_ok", P_OK, ABC), ("wiped", WIPED_CHECK, None)):
        assert check_reads(inst, key, parts) == expected[name]
    for keys in ([], ALL_CHECKS):
        storage.get_latest_asset_check_execution_by_key(keys)
        storage.get_asset_check_summary_records(keys)
        storage.get_asset_check_partition_info(keys, 0, ["a"])
    for kwargs in ({"cursor": 8, "status": {S.SUCCEEDED}}, {"limit": 0}, {"limit": -1}):
        storage.get_asset_check_execution_history(OK, **{"limit": 5, **kwargs})
    assert storage.supports_asset_checks
    assert inst.get_asset_check_support() is not None
