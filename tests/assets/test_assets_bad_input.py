"""Bad input to the assets and storage domains, stock vs dagster-rs: unknown asset keys, keys of
the wrong type, malformed cursors and limits, unwhitelisted tag keys, unbindable partition keys,
"malformed" partition keys (which stock stores and returns as given). Each call must raise the
class stock raises (or return what stock returns), and a failing write must store nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, StaticPartitionsDefinition
from dagster._core.event_api import AssetRecordsFilter, EventLogCursor, EventRecordsFilter
from dagster._core.events import DagsterEventType
from dagster._core.types.pagination import StorageIdCursor

from tests.assets.conftest import mat, norm, obs, planned, run_ids, same, same_error, store, t
from tests.assets.seeds import DV, LETTERS, LETTERS_DEF, PLAIN, UNKNOWN
from tests.conftest import InstancePair
from tests.stock_api import stock_has

ET = DagsterEventType
R = run_ids("r1")
STR_KEY = "plain"


def b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def fingerprint(inst: DagsterInstance) -> Any:
    """What a failing write must leave untouched."""
    storage = inst.event_log_storage
    return norm(
        {
            "keys": inst.all_asset_keys(),
            "records": inst.get_asset_records(),
            "max_id": storage.get_maximum_record_id(),
            "runless": len(inst.all_logs("")),
            "fruits": inst.get_dynamic_partitions("fruits"),
            "pools": storage.get_concurrency_keys(),
        }
    )


# -- keys of the wrong type, unknown keys ------------------------------------------------------

WRONG_KEY_CALLS: dict[str, Callable[[DagsterInstance], Any]] = {
    "has_asset_key(str)": lambda i: i.has_asset_key(STR_KEY),
    "get_asset_records([str])": lambda i: i.get_asset_records([STR_KEY]),
    "latest_storage_ids([str])": lambda i: (
        i.event_log_storage.get_latest_materialization_storage_ids([STR_KEY])
    ),
    "latest_materialization_events(str)": lambda i: i.get_latest_materialization_events(STR_KEY),
    "get_event_tags_for_asset(str)": lambda i: i.get_event_tags_for_asset(STR_KEY),
    "latest_storage_id_by_partition(str)": lambda i: i.get_latest_storage_id_by_partition(
        STR_KEY, ET.ASSET_MATERIALIZATION
    ),
    "latest_tags_by_partition(str)": lambda i: i.event_log_storage.get_latest_tags_by_partition(
        STR_KEY, ET.ASSET_MATERIALIZATION, [DV]
    ),
    "latest_tags_by_partition(type str)": lambda i: (
        i.event_log_storage.get_latest_tags_by_partition(PLAIN, "ASSET_MATERIALIZATION", [DV])
    ),
    "fetch_materializations(str)": lambda i: i.fetch_materializations(STR_KEY, limit=1),
    "fetch_observations(str)": lambda i: i.fetch_observations(STR_KEY, limit=1),
    "partitions_for_run(list)": lambda i: i.get_asset_partitions_for_run(
        R["r1"], [ET.ASSET_MATERIALIZATION]
    ),
    "check_partition_info(tuple)": lambda i: i.event_log_storage.get_asset_check_partition_info(
        (AssetCheckKey(PLAIN, "ok"),)
    ),
    "check_history(str)": lambda i: i.event_log_storage.get_asset_check_execution_history(
        "plain:ok", 1
    ),
    "event_tags filter value int": lambda i: i.get_event_tags_for_asset(LETTERS, {DV: 1}),
    "event_tags filter value list": lambda i: i.get_event_tags_for_asset(LETTERS, {DV: ["x1"]}),
}


@pytest.mark.parametrize("call", list(WRONG_KEY_CALLS))
def test_wrong_argument_types(seeded: InstancePair, call: str) -> None:
    same_error(seeded, WRONG_KEY_CALLS[call])


WRONG_KEY_WRITES: dict[str, Callable[[DagsterInstance], Any]] = {
    "wipe_assets([str])": lambda i: i.wipe_assets([STR_KEY]),
    "wipe_assets(tuple)": lambda i: i.wipe_assets((PLAIN,)),
    "wipe_assets(key)": lambda i: i.wipe_assets(PLAIN),
    "wipe_asset_cached_status(tuple)": lambda i: i.wipe_asset_cached_status((PLAIN,)),
    "wipe_asset_partitions": lambda i: i.wipe_asset_partitions(LETTERS, ["x"]),
    "add_dynamic_partitions(str)": lambda i: i.add_dynamic_partitions("fruits", "apple"),
    "add_dynamic_partitions([list])": lambda i: i.add_dynamic_partitions("fruits", [["apple"]]),
    "add_dynamic_partitions(dup)": lambda i: i.add_dynamic_partitions("fruits", ["k", "k"]),
    "add_dynamic_partitions(dict)": lambda i: i.add_dynamic_partitions("fruits", [{"a": 1}]),
    "report_runless(key)": lambda i: i.report_runless_asset_event(PLAIN),
}


@pytest.mark.parametrize("call", list(WRONG_KEY_WRITES))
def test_failing_writes_store_nothing(seeded: InstancePair, call: str) -> None:
    before = same(seeded, fingerprint)
    same_error(seeded, WRONG_KEY_WRITES[call])
    assert same(seeded, fingerprint) == before


def test_unknown_keys_read_empty(seeded: InstancePair) -> None:
    views = same(
        seeded,
        lambda i: {
            "has": i.has_asset_key(UNKNOWN),
            "records": i.get_asset_records([UNKNOWN]),
            "latest": i.get_latest_materialization_event(UNKNOWN),
            "code_versions": i.get_latest_materialization_code_versions([UNKNOWN]),
            "partitions": i.get_materialized_partitions(UNKNOWN),
            "tags": i.get_event_tags_for_asset(UNKNOWN),
            "planned": i.get_latest_planned_materialization_info(UNKNOWN),
            "data_version": i.get_latest_data_version_record(UNKNOWN),
            "fetch": i.fetch_materializations(UNKNOWN, limit=5).records,
            "check": i.event_log_storage.get_asset_check_execution_history(
                AssetCheckKey(UNKNOWN, "c"), 5
            ),
            "check_latest": i.get_latest_asset_check_evaluation_record(AssetCheckKey(UNKNOWN, "c")),
        },
    )
    assert views == {
        "has": False,
        "records": [],
        "latest": None,
        "code_versions": {UNKNOWN: None},
        "partitions": set(),
        "tags": [],
        "planned": None,
        "data_version": None,
        "fetch": [],
        "check": [],
        "check_latest": None,
    }


# -- limits, cursors, tag keys -----------------------------------------------------------------

CURSORS = {
    "offset": EventLogCursor.from_offset(3).to_string(),
    "not-base64": "not a cursor!",
    "base64-not-json": base64.b64encode(b"\xff\xfe").decode(),
    "no-type": b64({"value": 3}),
    "unknown-type": b64({"type": "NOPE", "value": 3}),
    "storage-id-cursor": StorageIdCursor(storage_id=3).to_string(),
}


@pytest.mark.parametrize("cursor", list(CURSORS))
@pytest.mark.parametrize("fetch", ["materializations", "observations", "planned", "failed"])
def test_malformed_fetch_cursors(seeded: InstancePair, cursor: str, fetch: str) -> None:
    fn = {
        "materializations": lambda i, c: i.fetch_materializations(LETTERS, limit=2, cursor=c),
        "observations": lambda i, c: i.fetch_observations(
            AssetRecordsFilter(asset_key=LETTERS), limit=2, cursor=c
        ),
        "planned": lambda i, c: i.fetch_planned_materializations(
            AssetRecordsFilter(asset_key=LETTERS), limit=2, cursor=c
        ),
        "failed": lambda i, c: i.fetch_failed_materializations(LETTERS, limit=2, cursor=c),
    }[fetch]
    seeded.same(lambda i: fn(i, CURSORS[cursor]), norm)


@pytest.mark.parametrize("limit", [10_000, 10_001, 10**9], ids=str)
def test_fetch_limits_over_the_maximum(seeded: InstancePair, limit: int) -> None:
    for fn in (
        lambda i: i.fetch_materializations(LETTERS, limit=limit),
        lambda i: i.fetch_observations(LETTERS, limit=limit),
        lambda i: i.fetch_failed_materializations(LETTERS, limit=limit),
        lambda i: i.fetch_planned_materializations(LETTERS, limit=limit),
    ):
        seeded.same(lambda i, f=fn: (lambda r: (r.records, r.cursor, r.has_more))(f(i)), norm)


def test_run_sharded_event_records_with_an_integer_cursor(seeded: InstancePair) -> None:
    error = same_error(
        seeded,
        lambda i: i.get_event_records(
            EventRecordsFilter(ET.ASSET_CHECK_EVALUATION, after_cursor=3), limit=3
        ),
    )
    assert error is Exception


@pytest.mark.parametrize(
    "tag_keys", [[], ["team"], [DV, "dagster/code_version"], ["dagster/partition"]], ids=str
)
def test_unwhitelisted_tag_keys(seeded: InstancePair, tag_keys: list[str]) -> None:
    out = seeded.same(
        lambda i: i.event_log_storage.get_latest_tags_by_partition(
            LETTERS, ET.ASSET_MATERIALIZATION, tag_keys
        ),
        norm,
    )
    assert out.error is not None and out.error.__name__ == "CheckError"


@pytest.mark.parametrize(
    "cursor",
    [
        EventLogCursor.from_storage_id(3).to_string(),
        "not base64",
        b64({"__class__": "Nope", "storage_id": 1}),
        StorageIdCursor(storage_id=-5).to_string(),
    ],
    ids=["event-log-cursor", "not-base64", "unknown-class", "negative"],
)
def test_malformed_dynamic_partition_cursors(fast_pair: InstancePair, cursor: str) -> None:
    fast_pair.both(lambda i: i.add_dynamic_partitions("fruits", ["a", "b", "c"]))
    fast_pair.same(
        lambda i: (lambda r: (r.results, r.cursor, r.has_more))(
            i.get_paginated_dynamic_partitions("fruits", 2, True, cursor)
        ),
        norm,
    )


def test_int_dynamic_partition_key_reads_back_as_text(fast_pair: InstancePair) -> None:
    fast_pair.both(lambda i: i.add_dynamic_partitions("numbers", [5, "6"]))
    same(fast_pair, lambda i: i.get_dynamic_partitions("numbers"))
    same(fast_pair, lambda i: [i.has_dynamic_partition("numbers", k) for k in ("5", 5, "6")])


# -- "malformed" partition keys in asset events ------------------------------------------------

ODD_PARTITIONS = ["", "...", "x|y", "with\nnewline", "ü" * 3, "z" * 500, "'; --", "x "]


def test_malformed_partition_keys_stored_as_given(fast_pair: InstancePair) -> None:
    """Partition keys are stored and returned as given; a partitions definition filters the
    invalid ones out of partition status silently."""
    pair = fast_pair
    key = AssetKey("odd")
    entries = [mat(R["r1"], key, t(n), p, tags={DV: f"v{n}"}) for n, p in enumerate(ODD_PARTITIONS)]
    entries += [obs(R["r1"], key, t(20), "..."), planned(R["r1"], key, t(21), "x ")]
    pair.both(lambda i: store(i, entries))
    partitions = same(pair, lambda i: i.get_materialized_partitions(key))
    assert partitions == set(ODD_PARTITIONS) - {""}
    same(pair, lambda i: i.get_latest_storage_id_by_partition(key, ET.ASSET_MATERIALIZATION))
    same(
        pair,
        lambda i: i.event_log_storage.get_latest_tags_by_partition(
            key, ET.ASSET_MATERIALIZATION, [DV]
        ),
    )
    same(pair, lambda i: i.fetch_materializations(AssetRecordsFilter(key, ["...", ""]), 10).records)
    if stock_has("DagsterInstance.get_asset_partitions_for_run"):
        same(pair, lambda i: i.get_asset_partitions_for_run(R["r1"]))
    # a definition cannot have "..." (nor control characters): its events are dropped from status
    odd_def = StaticPartitionsDefinition(["x|y", "x ", "ok"])
    same(pair, lambda i: i.get_status_by_partition(key, ["...", "x|y", "x ", "ok"], odd_def))
    same(pair, lambda i: i.get_status_by_partition(LETTERS, ["x"], LETTERS_DEF))
