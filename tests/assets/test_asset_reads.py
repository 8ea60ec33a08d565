"""Asset reads through the instance and its event log storage, stock vs dagster-rs, on seeded data.

One module-scoped pair (`seeded`, copies of homes seeded once per session) is seeded with the same asset events in the same order (tests/assets/seeds.py:
partitioned, multi-partitioned and unpartitioned assets, observations, planned, failed and
subset-planned materializations, wiped assets, runless events). Every test only reads (the status cache, whose reads write, is in
test_asset_writes.py) and compares normalized results exactly: storage ids, cursors and has_more
included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.event_api import (
    AssetRecordsFilter,
    EventLogCursor,
    EventRecordsFilter,
    EventRecordsResult,
)
from dagster._core.events import DagsterEventType

from tests.assets.conftest import same, t, unordered
from tests.assets.seeds import (
    BACK,
    DV,
    EVERY_KEY,
    GONE,
    GRID,
    GRID_CELLS,
    LATE,
    LETTERS,
    OBS_ONLY,
    OBSERVED_BACK,
    PLAIN,
    RUNLESS,
    UNKNOWN,
    VISIBLE,
    WIPED_HIDDEN,
    R,
    cell,
)
from tests.conftest import InstancePair
from tests.stock_api import requires_stock

ET = DagsterEventType


def id_cursor(storage_id: int) -> str:
    return EventLogCursor.from_storage_id(storage_id).to_string()


def result(res: EventRecordsResult) -> tuple:
    return res.records, res.cursor, res.has_more


def storage(inst: DagsterInstance) -> Any:
    return inst.event_log_storage


def test_seed_is_what_the_tests_rely_on(seeded: InstancePair) -> None:
    """The comparisons below are not vacuous (checked on stock)."""
    inst = seeded.stock
    assert set(inst.all_asset_keys()) == set(VISIBLE)
    assert inst.get_materialized_partitions(LETTERS) == {"x", "y"}
    assert inst.get_latest_materialization_event(LATE) is None
    assert inst.get_latest_materialization_event(BACK) is not None
    assert inst.get_latest_planned_materialization_info(LETTERS).run_id == R["r5"]
    assert len(inst.fetch_materializations(GRID, limit=10).records) == 5


# -- keys --------------------------------------------------------------------------------------


def test_all_asset_keys(seeded: InstancePair) -> None:
    keys = same(seeded, lambda i: i.all_asset_keys())
    # sorted by the stored JSON string, not by path
    assert keys == sorted(keys, key=lambda k: k.to_string())


PREFIXES = [None, [], ["nested"], ["nest"], ["p"], ["P"], ["_"], ["a_b"], ["a"], ["é"], ["zzz"]]
CURSORS = [None, "", '["nested", "a"]', '["a"]', '["nested"]', "zzz", '["wiped_gone"]', "not json"]


@pytest.mark.parametrize("prefix", PREFIXES, ids=str)
def test_get_asset_keys_prefix(seeded: InstancePair, prefix: list[str] | None) -> None:
    # LIKE-based on stock: case-insensitive, `_` a wildcard, whole components only
    for limit in (None, 0, 2):
        same(seeded, lambda i, n=limit: i.get_asset_keys(prefix=prefix, limit=n))
    same(seeded, lambda i: i.get_asset_keys(prefix=prefix, cursor='["nest"]', limit=1))


@pytest.mark.parametrize("cursor", CURSORS, ids=str)
def test_get_asset_keys_cursor(seeded: InstancePair, cursor: str | None) -> None:
    # The cursor is compared as a raw string: any string works
    for limit in (None, 1, 100):
        same(seeded, lambda i, n=limit: i.get_asset_keys(cursor=cursor, limit=n))
    same(seeded, lambda i: i.get_asset_keys(prefix=["nested"], cursor=cursor))


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_get_asset_keys_paged(seeded: InstancePair, limit: int) -> None:
    """Paging as the UI does: cursor = the last key's string, until a short page."""

    def pages(inst: DagsterInstance) -> list[list[AssetKey]]:
        out, cursor = [], None
        while True:
            page = inst.get_asset_keys(limit=limit, cursor=cursor)
            out.append(list(page))
            if len(page) < limit:
                return out
            cursor = page[-1].to_string()

    result_pages = same(seeded, pages)
    assert [k for page in result_pages for k in page] == same(seeded, lambda i: i.all_asset_keys())


@pytest.mark.parametrize("key", EVERY_KEY, ids=lambda k: k.to_user_string())
def test_has_asset_key(seeded: InstancePair, key: AssetKey) -> None:
    assert same(seeded, lambda i: i.has_asset_key(key)) == (key in VISIBLE)


# -- records -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    [None, [], [PLAIN], [UNKNOWN], [PLAIN, PLAIN, LETTERS], WIPED_HIDDEN, EVERY_KEY],
    ids=["all", "empty", "one", "unknown", "duplicates", "wiped", "every"],
)
def test_get_asset_records(seeded: InstancePair, keys: list[AssetKey] | None) -> None:
    same(seeded, lambda i: i.get_asset_records(keys))


def test_asset_record_last_storage_id_helpers(seeded: InstancePair) -> None:
    def helpers(inst: DagsterInstance) -> list[tuple]:
        return [
            (
                r.asset_entry.asset_key,
                r.storage_id,
                r.asset_entry.last_materialization_storage_id,
                r.asset_entry.last_observation_storage_id,
                r.asset_entry.last_failed_to_materialize_storage_id,
                r.asset_entry.last_event_storage_id,
                r.asset_entry.last_run_id,
            )
            for r in inst.get_asset_records()
        ]

    view = same(seeded, helpers)
    assert any(row[2] is not None for row in view)


@requires_stock("SqlEventLogStorage.get_latest_materialization_storage_ids")
def test_latest_materialization_storage_ids(seeded: InstancePair) -> None:
    ids = same(seeded, lambda i: storage(i).get_latest_materialization_storage_ids(EVERY_KEY))
    assert any(storage_id is not None for storage_id in ids.values())


@pytest.mark.parametrize(
    "keys",
    [[], [PLAIN], [PLAIN, UNKNOWN, OBS_ONLY, GONE, LATE, BACK, OBSERVED_BACK], EVERY_KEY],
    ids=["empty", "one", "mixed", "every"],
)
def test_latest_materialization_events(seeded: InstancePair, keys: list[AssetKey]) -> None:
    same(seeded, lambda i: i.get_latest_materialization_events(keys))
    same(seeded, lambda i: i.get_latest_materialization_code_versions(keys))
    same(seeded, lambda i: [i.get_latest_materialization_event(k) for k in keys])


# -- partitions --------------------------------------------------------------------------------

PARTITIONED = [LETTERS, GRID, PLAIN, UNKNOWN, LATE, BACK, RUNLESS]


@pytest.mark.parametrize("key", PARTITIONED, ids=lambda k: k.to_user_string())
@pytest.mark.parametrize("cursors", [(None, None), (0, 0), (10, None), (None, 14), (12, 20)])
def test_get_materialized_partitions(
    seeded: InstancePair, key: AssetKey, cursors: tuple[int | None, int | None]
) -> None:
    after, before = cursors
    same(seeded, lambda i: i.get_materialized_partitions(key, before, after))


@pytest.mark.parametrize(
    "key", [LETTERS, GRID, PLAIN, LATE, UNKNOWN], ids=lambda k: k.to_user_string()
)
@pytest.mark.parametrize(
    "event_type", [ET.ASSET_MATERIALIZATION, ET.ASSET_OBSERVATION, ET.ASSET_MATERIALIZATION_PLANNED]
)
def test_latest_storage_id_by_partition(
    seeded: InstancePair, key: AssetKey, event_type: DagsterEventType
) -> None:
    # an empty set means all partitions
    for partitions in [None, set(), {"y", "z", "nope"}]:
        same(
            seeded,
            lambda i, p=partitions: i.get_latest_storage_id_by_partition(key, event_type, p),
        )


@requires_stock("DagsterInstance.get_latest_storage_id_by_partition(after_cursor)")
@pytest.mark.parametrize(
    "key", [LETTERS, GRID, PLAIN, LATE, UNKNOWN], ids=lambda k: k.to_user_string()
)
@pytest.mark.parametrize(
    "event_type", [ET.ASSET_MATERIALIZATION, ET.ASSET_OBSERVATION, ET.ASSET_MATERIALIZATION_PLANNED]
)
def test_latest_storage_id_by_partition_after_cursor(
    seeded: InstancePair, key: AssetKey, event_type: DagsterEventType
) -> None:
    # the cursor filters before grouping
    for partitions, after_cursor in [(None, 0), (set(), 12), ({"y", "z", "nope"}, 12)]:
        same(
            seeded,
            lambda i, p=partitions, a=after_cursor: i.get_latest_storage_id_by_partition(
                key, event_type, p, a
            ),
        )


@pytest.mark.parametrize("how", ["keyword", "positional"])
def test_latest_storage_id_by_partition_takes_stocks_parameters(
    seeded: InstancePair, how: str
) -> None:
    # On every release: a stock without `after_cursor` refuses it (TypeError), and so does the
    # storage; one with it answers, and so does the storage.
    def read(i: DagsterInstance) -> Any:
        method = storage(i).get_latest_storage_id_by_partition
        if how == "keyword":
            return method(LETTERS, ET.ASSET_MATERIALIZATION, None, after_cursor=12)
        return method(LETTERS, ET.ASSET_MATERIALIZATION, None, 12)

    seeded.same(read)


@pytest.mark.parametrize("key", [LETTERS, GRID, LATE, UNKNOWN], ids=lambda k: k.to_user_string())
@pytest.mark.parametrize(
    "tag_keys", [[DV], ["dagster/partition/color"], [DV, "dagster/partition/date"]], ids=str
)
def test_latest_tags_by_partition(seeded: InstancePair, key: AssetKey, tag_keys: list[str]) -> None:
    # `asset_partitions=[]` matches nothing here (unlike get_latest_storage_id_by_partition)
    for event_type, partitions, before, after in [
        (ET.ASSET_MATERIALIZATION, None, None, None),
        (ET.ASSET_MATERIALIZATION, [], None, None),
        (ET.ASSET_MATERIALIZATION, ["x", cell("2024-01-01", "red"), "nope"], None, None),
        (ET.ASSET_MATERIALIZATION, None, None, 13),
        (ET.ASSET_MATERIALIZATION, None, 20, 0),
        (ET.ASSET_OBSERVATION, None, None, None),
    ]:
        same(
            seeded,
            lambda i, e=event_type, p=partitions, b=before, a=after: storage(
                i
            ).get_latest_tags_by_partition(key, e, tag_keys, p, b, a),
        )


@pytest.mark.parametrize("key", [LETTERS, PLAIN, UNKNOWN, LATE], ids=lambda k: k.to_user_string())
@pytest.mark.parametrize("after", [None, 0, 5, 13, 1000])
def test_attempts_without_materializations(
    seeded: InstancePair, key: AssetKey, after: int | None
) -> None:
    same(
        seeded,
        lambda i: storage(
            i
        ).get_latest_asset_partition_materialization_attempts_without_materializations(key, after),
    )


@pytest.mark.parametrize(
    "key", [LETTERS, PLAIN, UNKNOWN, GONE, OBS_ONLY], ids=lambda k: k.to_user_string()
)
@pytest.mark.parametrize("partition", [None, "", "x", "y", "z", "nope"])
def test_latest_planned_materialization_info(
    seeded: InstancePair, key: AssetKey, partition: str | None
) -> None:
    same(seeded, lambda i: i.get_latest_planned_materialization_info(key, partition))


@pytest.mark.parametrize("key", [LETTERS, GRID, LATE], ids=lambda k: k.to_user_string())
@pytest.mark.parametrize("since", [0, 13, 1000])
def test_updated_data_version_partitions(seeded: InstancePair, key: AssetKey, since: int) -> None:
    # partitions whose latest data-version-tagged event since `since` changed the version
    for partitions in ([], ["x", "y", "z"], [cell(d, c) for d, c in GRID_CELLS]):
        same(
            seeded,
            lambda i, p=partitions: storage(i).get_updated_data_version_partitions(key, p, since),
        )


@pytest.mark.parametrize(
    "key", [PLAIN, LETTERS, OBS_ONLY, UNKNOWN, BACK], ids=lambda k: k.to_user_string()
)
@pytest.mark.parametrize("is_source", [None, True, False])
def test_latest_data_version_record(
    seeded: InstancePair, key: AssetKey, is_source: bool | None
) -> None:
    for partition_key, before, after in [
        (None, None, None),
        ("z", None, None),
        (None, None, 10),
        ("x", 13, None),
    ]:
        same(
            seeded,
            lambda i, p=partition_key, b=before, a=after: i.get_latest_data_version_record(
                key, is_source, p, b, a
            ),
        )


# -- tags, summaries, runs ---------------------------------------------------------------------


@pytest.mark.parametrize("key", [GRID, LETTERS, LATE, UNKNOWN], ids=lambda k: k.to_user_string())
@pytest.mark.parametrize(
    "filter_tags",
    [
        None,
        {},
        {"dagster/partition/color": "red"},
        {"dagster/partition/color": "red", "dagster/partition/date": "2024-01-02"},
        {DV: "x2"},
        {"not_indexed": "x"},
    ],
    ids=str,
)
def test_event_tags_for_asset(
    seeded: InstancePair, key: AssetKey, filter_tags: dict | None
) -> None:
    for filter_event_id in (None, 20):
        same(
            seeded,
            lambda i, e=filter_event_id: unordered(i.get_event_tags_for_asset(key, filter_tags, e)),
        )


SUMMARY_TYPES = [
    ET.ASSET_MATERIALIZATION,
    ET.ASSET_OBSERVATION,
    ET.ASSET_MATERIALIZATION_PLANNED,
    ET.ASSET_FAILED_TO_MATERIALIZE,
]


@pytest.mark.parametrize("event_type", SUMMARY_TYPES, ids=lambda e: e.value)
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"asset_key": LETTERS},
        {"asset_key": LATE},
        {"asset_key": UNKNOWN},
        {"run_id": "r4"},
        {"run_id": ""},
        {"storage_ids": []},
        {"storage_ids": [1, 2, 5, 13, 14, 15, 999]},
        {"after_storage_id": 10, "limit": 3},
        {"before_storage_id": 20, "limit": 2, "ascending": True},
        {"asset_key": LETTERS, "limit": 0},
        {"asset_key": GRID, "after_storage_id": 17, "before_storage_id": 21},
    ],
    ids=str,
)
@requires_stock("DagsterInstance.get_asset_event_summary_records")
def test_asset_event_summary_records(
    seeded: InstancePair, event_type: DagsterEventType, kwargs: dict
) -> None:
    kwargs = dict(kwargs)
    if kwargs.get("run_id"):
        kwargs["run_id"] = R[kwargs["run_id"]]
    same(seeded, lambda i: i.get_asset_event_summary_records(event_type, **kwargs))


@pytest.mark.parametrize("run", ["r1", "r4", "runless", "unknown"])
@pytest.mark.parametrize(
    "of_type",
    [
        None,
        ET.ASSET_MATERIALIZATION,
        {ET.ASSET_MATERIALIZATION_PLANNED, ET.ASSET_FAILED_TO_MATERIALIZE},
        frozenset({ET.ASSET_OBSERVATION}),
        set(),
    ],
    ids=str,
)
@requires_stock(
    "DagsterInstance.get_asset_partitions_for_run", "DagsterInstance.get_asset_keys_for_run"
)
def test_asset_partitions_for_run(seeded: InstancePair, run: str, of_type: Any) -> None:
    run_id = {"runless": "", "unknown": "00000000-0000-4000-8000-000000000bad", **R}[run]
    same(seeded, lambda i: dict(i.get_asset_partitions_for_run(run_id, of_type)))
    same(seeded, lambda i: set(i.get_asset_keys_for_run(run_id, of_type)))


def test_freshness_state_records(seeded: InstancePair) -> None:
    view = same(seeded, lambda i: i.get_freshness_state_records([PLAIN, LETTERS, UNKNOWN]))
    assert PLAIN in view


def test_capabilities(seeded: InstancePair) -> None:
    same(seeded, lambda i: i.can_read_asset_status_cache())
    same(seeded, lambda i: storage(i).can_write_asset_status_cache())
    same(seeded, lambda i: i.get_asset_check_support())
    same(seeded, lambda i: storage(i).supports_asset_checks)
    same(seeded, lambda i: storage(i).asset_records_have_last_observation)
    same(seeded, lambda i: storage(i).asset_records_have_last_planned_and_failed_materializations)
    same(seeded, lambda i: storage(i).can_store_asset_failure_events)
    same(seeded, lambda i: i.can_read_asset_failure_events())


@requires_stock("DagsterInstance.supports_wipe_on_delete_for_multipartitioned_assets")
def test_multipartitioned_wipe_capability(seeded: InstancePair) -> None:
    same(seeded, lambda i: i.supports_wipe_on_delete_for_multipartitioned_assets)


# -- fetching asset events ---------------------------------------------------------------------

FETCHES: dict[str, Callable[..., EventRecordsResult]] = {
    "materializations": lambda i, *a, **k: i.fetch_materializations(*a, **k),
    "observations": lambda i, *a, **k: i.fetch_observations(*a, **k),
    "planned": lambda i, *a, **k: i.fetch_planned_materializations(*a, **k),
    "failed": lambda i, *a, **k: i.fetch_failed_materializations(*a, **k),
}

FILTERS: dict[str, Any] = {
    "letters": LETTERS,
    "plain": PLAIN,
    "grid": GRID,
    "late": LATE,
    "back": BACK,
    "runless": RUNLESS,
    "unknown": UNKNOWN,
    "partitions": AssetRecordsFilter(asset_key=LETTERS, asset_partitions=["x", "z"]),
    "no-partitions": AssetRecordsFilter(asset_key=LETTERS, asset_partitions=[]),
    "storage-ids": AssetRecordsFilter(asset_key=LETTERS, storage_ids=[5, 13, 14, 15, 16, 99]),
    "after-id": AssetRecordsFilter(asset_key=PLAIN, after_storage_id=3),
    "before-id": AssetRecordsFilter(asset_key=GRID, before_storage_id=20),
    "id-window": AssetRecordsFilter(asset_key=LETTERS, after_storage_id=6, before_storage_id=16),
    "before-id-0": AssetRecordsFilter(asset_key=LETTERS, before_storage_id=0),
    "after-time": AssetRecordsFilter(asset_key=LETTERS, after_timestamp=t(8)),
    "before-time": AssetRecordsFilter(asset_key=PLAIN, before_timestamp=t(10)),
    "time-window": AssetRecordsFilter(
        asset_key=GRID, after_timestamp=t(17), before_timestamp=t(21)
    ),
    "time-0": AssetRecordsFilter(asset_key=PLAIN, after_timestamp=0.0, before_timestamp=0.0),
    "late-filter": AssetRecordsFilter(asset_key=LATE, after_timestamp=t(0)),
}


@pytest.mark.parametrize("fetch", list(FETCHES))
@pytest.mark.parametrize("records_filter", list(FILTERS))
def test_fetch_first_page(seeded: InstancePair, fetch: str, records_filter: str) -> None:
    for ascending in (False, True):
        same(
            seeded,
            lambda i, asc=ascending: result(
                FETCHES[fetch](i, FILTERS[records_filter], limit=3, ascending=asc)
            ),
        )


@pytest.mark.parametrize("fetch", list(FETCHES))
@pytest.mark.parametrize("records_filter", ["letters", "partitions", "unknown"])
@pytest.mark.parametrize("limit", [0, -1, 1], ids=lambda v: f"limit={v}")
def test_fetch_limits(seeded: InstancePair, fetch: str, records_filter: str, limit: int) -> None:
    # limit 0 means no LIMIT (has_more only when empty), -1 is unlimited too
    for ascending in (False, True):
        same(
            seeded,
            lambda i, asc=ascending: result(
                FETCHES[fetch](i, FILTERS[records_filter], limit=limit, ascending=asc)
            ),
        )


@pytest.mark.parametrize("fetch", ["materializations", "observations", "planned"])
@pytest.mark.parametrize("records_filter", ["letters", "plain", "grid", "partitions", "id-window"])
@pytest.mark.parametrize("ascending", [False, True], ids=["desc", "asc"])
def test_fetch_paged(
    seeded: InstancePair, fetch: str, records_filter: str, ascending: bool
) -> None:
    """Page with the returned cursor until has_more is False (at most 8 pages: stock's
    fetch_planned_materializations with a bare AssetKey ignores the cursor)."""

    def pages(inst: DagsterInstance) -> list[tuple]:
        out, cursor = [], None
        for _ in range(8):
            res = FETCHES[fetch](
                inst, FILTERS[records_filter], limit=2, cursor=cursor, ascending=ascending
            )
            out.append(result(res))
            if not res.has_more:
                break
            cursor = res.cursor
        return out

    same(seeded, pages)


@pytest.mark.parametrize("fetch", list(FETCHES))
@pytest.mark.parametrize("cursor", [0, 14, 1000], ids=lambda c: f"id{c}")
@pytest.mark.parametrize("records_filter", ["letters", "id-window", "before-id-0"])
def test_fetch_with_cursor(
    seeded: InstancePair, fetch: str, cursor: int, records_filter: str
) -> None:
    # the cursor is merged with the filter's storage ids by truthiness
    for ascending in (False, True):
        same(
            seeded,
            lambda i, asc=ascending: result(
                FETCHES[fetch](
                    i, FILTERS[records_filter], limit=4, cursor=id_cursor(cursor), ascending=asc
                )
            ),
        )


EVENT_RECORDS_FILTERS: dict[str, Callable[[DagsterEventType], EventRecordsFilter]] = {
    "type-only": lambda e: EventRecordsFilter(e),
    "key": lambda e: EventRecordsFilter(e, asset_key=LETTERS),
    "key-partitions": lambda e: EventRecordsFilter(e, asset_key=LETTERS, asset_partitions=["y"]),
    "key-empty-partitions": lambda e: EventRecordsFilter(e, asset_key=LETTERS, asset_partitions=[]),
    "after": lambda e: EventRecordsFilter(e, after_cursor=12),
    "before": lambda e: EventRecordsFilter(e, asset_key=PLAIN, before_cursor=10),
    "window": lambda e: EventRecordsFilter(e, after_cursor=4, before_cursor=25),
    "after-time": lambda e: EventRecordsFilter(e, after_timestamp=t(14)),
    "before-time": lambda e: EventRecordsFilter(e, before_timestamp=t(6)),
    "storage-ids": lambda e: EventRecordsFilter(e, storage_ids=[2, 3, 7, 12, 16, 31]),
    "empty-storage-ids": lambda e: EventRecordsFilter(e, storage_ids=[]),
    "wiped-key": lambda e: EventRecordsFilter(e, asset_key=LATE),
    "grid-cells": lambda e: EventRecordsFilter(
        e, asset_key=GRID, asset_partitions=[cell("2024-01-01", "red")]
    ),
}


@pytest.mark.parametrize("event_type", SUMMARY_TYPES, ids=lambda e: e.value)
@pytest.mark.parametrize("records_filter", list(EVENT_RECORDS_FILTERS))
def test_get_event_records(
    seeded: InstancePair, event_type: DagsterEventType, records_filter: str
) -> None:
    # asset event types read the index; no wipe filter without an asset key
    for limit, ascending in ((None, False), (2, True)):
        same(
            seeded,
            lambda i, n=limit, asc=ascending: i.get_event_records(
                EVENT_RECORDS_FILTERS[records_filter](event_type), limit=n, ascending=asc
            ),
        )
