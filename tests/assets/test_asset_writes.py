"""Asset writes through the instance, stock vs dagster-rs: wipes, runless events, the status cache
and the tag-indexing extension point.

Each test starts from a fresh pair (or a clone of the seeded homes of tests/assets/seeds.py),
applies the same writes to both sides step by step, and after each step compares every public read
of the assets involved (`same_asset_reads`): a wipe must be honoured by every read, identically.
Events meant to land after a wipe are stamped `now()` once, after both sides wiped, and the same
float is stored on both sides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
    DynamicPartitionsDefinition,
    StaticPartitionsDefinition,
)
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import DagsterEventType
from dagster._core.loader import LoadingContextForTest
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.partition_status_cache import (
    AssetStatusCacheValue,
    get_partition_subsets,
)

from dagster_rs import compat
from tests import homes
from tests.assets.conftest import (
    add_run,
    failed,
    mat,
    norm,
    now,
    obs,
    planned,
    run_ids,
    same,
    same_asset_reads,
    same_error,
    store,
    t,
    unordered,
)
from tests.assets.seeds import (
    DV,
    GRID,
    GRID_DEF,
    LETTERS,
    LETTERS_DEF,
    PLAIN,
    UNKNOWN,
)
from tests.conftest import InstancePair
from tests.stock_api import requires_stock

ET = DagsterEventType
R = run_ids("r1", "r2", "r3")
# a run the seed of tests/assets/seeds.py does not use
LATER = run_ids("later", first=8)["later"]
KEY = AssetKey("wipeable")
PARTED = AssetKey(["group", "parted"])
OTHER = AssetKey("other")


def step(pair: InstancePair, fn: Any) -> None:
    """Apply one write to both sides (stock first), as the same call."""
    pair.both(fn)


def store_now(pair: InstancePair, build: Any) -> None:
    """Store `build(ts)` on both sides, `ts` stamped once now (after every earlier wipe)."""
    entries = build(now())
    step(pair, lambda i: store(i, entries))


def runless_wipe_events(inst: DagsterInstance) -> list[tuple]:
    """The ASSET_WIPED events the instance wrote to the runless shard: (key, partitions)."""
    return [
        (e.dagster_event.asset_key, e.dagster_event.event_specific_data.partition_keys)
        for e in inst.all_logs("", of_type=ET.ASSET_WIPED)
    ]


# -- wipes -------------------------------------------------------------------------------------


def test_wipe_between_materializations(fast_pair: InstancePair) -> None:
    pair = fast_pair
    store_now(
        pair,
        lambda ts: [
            planned(R["r1"], KEY, ts),
            mat(R["r1"], KEY, ts + 0.001, tags={DV: "1"}, metadata={"n": 1}),
            obs(R["r1"], KEY, ts + 0.002, tags={DV: "1"}),
            mat(R["r1"], OTHER, ts + 0.003),
        ],
    )
    assert same_asset_reads(pair, KEY, OTHER)[KEY]["has_asset_key"] is True

    step(pair, lambda i: i.wipe_assets([KEY]))
    views = same_asset_reads(pair, KEY, OTHER)
    # the wipe is honoured by every read of KEY, and OTHER is untouched
    assert views[KEY]["has_asset_key"] is False
    assert views[KEY]["fetch_materializations"][0] == []
    assert views[KEY]["event_tags"] == []
    assert views[OTHER]["has_asset_key"] is True

    store_now(pair, lambda ts: [planned(R["r2"], KEY, ts), mat(R["r2"], KEY, ts, tags={DV: "2"})])
    views = same_asset_reads(pair, KEY)
    assert views[KEY]["has_asset_key"] is True
    assert len(views[KEY]["fetch_materializations"][0]) == 1

    # wiped again, then back through an observation only
    step(pair, lambda i: i.wipe_assets([KEY]))
    same_asset_reads(pair, KEY)
    store_now(pair, lambda ts: [obs(R["r3"], KEY, ts, tags={DV: "3"})])
    views = same_asset_reads(pair, KEY)
    assert views[KEY]["has_asset_key"] is True
    latest = views[KEY]["latest_materialization_events"]
    if compat.stock_skips_records_older_than_wipe():
        assert latest == {}
    else:
        # a stock before 1.13.10 keeps the pre-wipe materialization on the row, and returns it
        assert latest[KEY].run_id == R["r2"]
    same(pair, runless_wipe_events)


def test_wipe_partitioned_asset_between_materializations(fast_pair: InstancePair) -> None:
    pair = fast_pair
    step(pair, lambda i: add_run(i, R["r1"], DagsterRunStatus.FAILURE))
    step(pair, lambda i: add_run(i, R["r2"], DagsterRunStatus.STARTED))
    store_now(
        pair,
        lambda ts: [
            planned(R["r1"], PARTED, ts, "a"),
            mat(R["r1"], PARTED, ts, "a", tags={DV: "a1"}),
            planned(R["r1"], PARTED, ts, "b"),
            failed(R["r1"], PARTED, ts, "b"),
            planned(R["r2"], PARTED, ts, "c"),
            obs(R["r2"], PARTED, ts, "c", tags={DV: "c0"}),
        ],
    )
    before = same_asset_reads(pair, PARTED)[PARTED]
    assert before["materialized_partitions"] == {"a"}

    step(pair, lambda i: i.wipe_assets([PARTED]))
    after = same_asset_reads(pair, PARTED)[PARTED]
    assert after["materialized_partitions"] == set()
    assert after["attempts"] == {}

    store_now(pair, lambda ts: [mat(R["r2"], PARTED, ts, "b", tags={DV: "b1"})])
    again = same_asset_reads(pair, PARTED)[PARTED]
    assert again["materialized_partitions"] == {"b"}


def test_wipe_multi_partitioned_asset(fast_pair: InstancePair) -> None:
    pair = fast_pair
    tags = {"dagster/partition/date": "2024-01-01", "dagster/partition/color": "red", DV: "g"}
    store_now(pair, lambda ts: [mat(R["r1"], GRID, ts, "red|2024-01-01", tags=tags)])
    same_asset_reads(pair, GRID)
    step(pair, lambda i: i.wipe_assets([GRID]))
    views = same_asset_reads(pair, GRID)
    assert views[GRID]["event_tags"] == []  # tag rows stay, hidden by the wipe time
    store_now(pair, lambda ts: [mat(R["r2"], GRID, ts, "blue|2024-01-01", tags=tags)])
    same_asset_reads(pair, GRID)
    same(pair, lambda i: i.get_event_tags_for_asset(GRID, {"dagster/partition/color": "red"}))


def test_event_stamped_before_the_wipe_stays_hidden(fast_pair: InstancePair) -> None:
    """Visibility is decided by event time, not by storage order."""
    pair = fast_pair
    step(pair, lambda i: store(i, [mat(R["r1"], KEY, t(1), "a", tags={DV: "1"})]))
    step(pair, lambda i: i.wipe_assets([KEY]))
    step(
        pair,
        lambda i: store(
            i,
            [
                mat(R["r2"], KEY, t(2), "b", tags={DV: "2"}),
                obs(R["r2"], KEY, t(3), "b"),
                planned(R["r2"], KEY, t(4), "c"),
            ],
        ),
    )
    views = same_asset_reads(pair, KEY)
    assert views[KEY]["has_asset_key"] is False
    assert views[KEY]["materialized_partitions"] == set()


def test_wipe_several_and_unknown_keys(fast_pair: InstancePair) -> None:
    pair = fast_pair
    step(pair, lambda i: store(i, [mat(R["r1"], KEY, t(1)), mat(R["r1"], OTHER, t(2))]))
    step(pair, lambda i: i.wipe_assets([UNKNOWN, KEY, OTHER, KEY]))
    same_asset_reads(pair, KEY, OTHER, UNKNOWN)
    # no asset row is created for an unknown key; the ASSET_WIPED events are still written
    same(pair, lambda i: i.get_asset_records())
    assert len(same(pair, runless_wipe_events)) == 4


@requires_stock("DagsterInstance.get_asset_keys_for_run")
def test_wipe_events_belong_to_no_run(fast_pair: InstancePair) -> None:
    pair = fast_pair
    step(pair, lambda i: store(i, [mat(R["r1"], KEY, t(1)), mat(R["r1"], OTHER, t(2))]))
    step(pair, lambda i: i.wipe_assets([UNKNOWN, KEY, OTHER, KEY]))
    same(pair, lambda i: i.get_asset_keys_for_run(""))
    same(pair, lambda i: i.get_asset_keys_for_run(R["r1"]))


def test_wipe_asset_partitions_raises_and_changes_nothing(fast_pair: InstancePair) -> None:
    pair = fast_pair
    step(
        pair, lambda i: store(i, [mat(R["r1"], PARTED, t(1), "a"), mat(R["r1"], PARTED, t(2), "b")])
    )
    before = same_asset_reads(pair, PARTED)
    assert same_error(pair, lambda i: i.wipe_asset_partitions(PARTED, ["a"])) is NotImplementedError
    assert same_asset_reads(pair, PARTED) == before
    assert same(pair, runless_wipe_events) == []


# -- runless events ----------------------------------------------------------------------------


def test_runless_events(fast_pair: InstancePair) -> None:
    pair = fast_pair
    events: list[Any] = [
        AssetMaterialization(asset_key=PARTED, partition="a", tags={DV: "r1"}, metadata={"m": 1}),
        AssetMaterialization(asset_key=KEY, description="runless"),
        AssetObservation(asset_key=PARTED, partition="b", tags={DV: "o1"}),
        AssetObservation(asset_key=OTHER),
        AssetCheckEvaluation(asset_key=KEY, check_name="ok", passed=True),
        AssetCheckEvaluation(asset_key=KEY, check_name="bad", passed=False, metadata={"x": 1}),
        AssetCheckEvaluation(asset_key=PARTED, check_name="ok", passed=True, partition="a"),
        AssetMaterialization(asset_key=PARTED, partition="a", tags={DV: "r2"}),
    ]
    for event in events:
        step(pair, lambda i, e=event: i.report_runless_asset_event(e))
    views = same_asset_reads(pair, KEY, PARTED, OTHER)
    assert views[PARTED]["materialized_partitions"] == {"a"}
    assert same(pair, lambda i: i.get_asset_records([KEY])[0].asset_entry.last_run_id) == ""
    checks = [AssetCheckKey(KEY, "ok"), AssetCheckKey(KEY, "bad"), AssetCheckKey(PARTED, "ok")]
    for check_key in checks:
        same(
            pair, lambda i, k=check_key: i.event_log_storage.get_asset_check_execution_history(k, 5)
        )
    same(pair, lambda i: i.event_log_storage.get_asset_check_summary_records(checks))
    same(pair, lambda i: [e.dagster_event_type for e in i.all_logs("")])


@pytest.mark.parametrize(
    "bad",
    ["a string", AssetKey("k"), None, {"asset_key": "k"}],
    ids=["str", "key", "none", "dict"],
)
def test_runless_event_of_the_wrong_type(fast_pair: InstancePair, bad: Any) -> None:
    error = same_error(fast_pair, lambda i: i.report_runless_asset_event(bad))
    assert error is DagsterInvariantViolationError
    same(fast_pair, lambda i: i.all_logs(""))
    assert same(fast_pair, lambda i: i.all_asset_keys()) == []


def test_failed_to_materialize_through_the_instance_is_not_stored(
    fast_pair: InstancePair,
) -> None:
    """The instance drops ASSET_FAILED_TO_MATERIALIZE on SQLite (should_store_event); stored
    through the storage directly it is kept in the index like any asset event."""
    pair = fast_pair
    step(pair, lambda i: i.handle_new_event(failed(R["r1"], KEY, t(1), "a")))
    assert same_asset_reads(pair, KEY)[KEY]["event_records_failed"] == []
    step(pair, lambda i: store(i, [failed(R["r1"], KEY, t(2), "a")]))
    assert len(same_asset_reads(pair, KEY)[KEY]["event_records_failed"]) == 1
    same(pair, lambda i: i.all_logs(R["r1"]))


# -- the status cache --------------------------------------------------------------------------


def test_status_cache_update_and_wipe(fast_pair: InstancePair) -> None:
    pair = fast_pair
    step(pair, lambda i: store(i, [mat(R["r1"], KEY, t(1)), mat(R["r1"], OTHER, t(2))]))
    value = AssetStatusCacheValue(
        latest_storage_id=1,
        partitions_def_id="some-id",
        serialized_materialized_partition_subset='{"subset": "x"}',
        earliest_in_progress_materialization_event_id=1,
    )
    assert same(pair, lambda i: i.can_read_asset_status_cache()) is True
    step(pair, lambda i: i.update_asset_cached_status_data(KEY, value))
    # an UPDATE only: an unknown key is a silent no-op, no row created
    step(pair, lambda i: i.update_asset_cached_status_data(UNKNOWN, value))
    records = same(pair, lambda i: i.get_asset_records())
    assert len(records) == 2
    same(pair, lambda i: [r.asset_entry.cached_status for r in i.get_asset_records([KEY])])

    step(pair, lambda i: i.wipe_asset_cached_status([KEY, UNKNOWN]))
    assert same(pair, lambda i: i.get_asset_records([KEY])[0].asset_entry.cached_status) is None

    # a wipe of the asset clears its cache too
    step(pair, lambda i: i.update_asset_cached_status_data(OTHER, value))
    step(pair, lambda i: i.wipe_assets([OTHER]))
    step(pair, lambda i: store(i, [mat(R["r2"], OTHER, now())]))
    assert same(pair, lambda i: i.get_asset_records([OTHER])[0].asset_entry.cached_status) is None


@pytest.fixture
def status_pair(seeded_templates: dict[str, Path], tmp_path: Path) -> Iterator[InstancePair]:
    """A copy of the seeded homes (the status cache's reads write)."""
    with homes.clone_pair(seeded_templates, tmp_path) as p:
        yield p


def partition_subsets(inst: DagsterInstance, key: AssetKey, partitions_def: Any) -> Any:
    """The asset partitions page's (materialized, failed, in progress) partition keys."""
    subsets = asyncio.run(
        get_partition_subsets(inst, LoadingContextForTest(inst), key, inst, partitions_def)
    )
    return tuple(None if s is None else sorted(s.get_partition_keys()) for s in subsets)


def cached_status(inst: DagsterInstance, key: AssetKey) -> Any:
    records = inst.get_asset_records([key])
    return records[0].asset_entry.cached_status if records else None


def test_status_by_partition(status_pair: InstancePair) -> None:
    """Materialized / failed / in progress per partition: x and y materialized, z planned by a
    run still going; the cache it writes on the way must be the same too."""
    pair = status_pair
    keys = ["x", "y", "z", "nope"]
    status = same(pair, lambda i: i.get_status_by_partition(LETTERS, keys, LETTERS_DEF))
    assert {k: v and v.value for k, v in status.items()} == {
        "x": "MATERIALIZED",
        "y": "MATERIALIZED",
        "z": "IN_PROGRESS",
        "nope": None,
    }
    same(pair, lambda i: cached_status(i, LETTERS))
    # read again: from the cache
    same(pair, lambda i: i.get_status_by_partition(LETTERS, keys, LETTERS_DEF))

    # the run that planned z fails; a new planned+failed partition; a new materialization: the
    # cache is brought up to date from its cursor
    step(pair, lambda i: add_run(i, LATER, DagsterRunStatus.FAILURE))
    step(
        pair,
        lambda i: store(
            i,
            [
                planned(LATER, LETTERS, t(50), "z"),
                mat(LATER, LETTERS, t(51), "x", tags={DV: "x3"}),
            ],
        ),
    )
    status = same(pair, lambda i: i.get_status_by_partition(LETTERS, keys, LETTERS_DEF))
    assert status["z"].value == "FAILED"
    same(pair, lambda i: cached_status(i, LETTERS))
    same(pair, lambda i: i.get_status_by_partition(GRID, ["red|2024-01-01", "x"], GRID_DEF))
    same(pair, lambda i: cached_status(i, GRID))
    same(pair, lambda i: i.get_status_by_partition(PLAIN, ["x"], LETTERS_DEF))


def test_partition_subsets(status_pair: InstancePair) -> None:
    pair = status_pair
    subsets = same(pair, lambda i: partition_subsets(i, LETTERS, LETTERS_DEF))
    assert subsets == (["x", "y"], [], ["z"])
    same(pair, lambda i: partition_subsets(i, GRID, GRID_DEF))
    same(pair, lambda i: partition_subsets(i, PLAIN, None))
    same(pair, lambda i: partition_subsets(i, UNKNOWN, LETTERS_DEF))
    same(pair, lambda i: [cached_status(i, k) for k in (LETTERS, GRID, PLAIN, UNKNOWN)])
    # a definition that changed (a new partitions_def_id) rebuilds the cache
    wider = StaticPartitionsDefinition(["x", "y", "z", "w"])
    same(pair, lambda i: partition_subsets(i, LETTERS, wider))
    same(pair, lambda i: cached_status(i, LETTERS))


def test_partition_subsets_of_a_dynamic_asset(fast_pair: InstancePair) -> None:
    pair = fast_pair
    dyn = DynamicPartitionsDefinition(name="fruits")
    step(pair, lambda i: i.add_dynamic_partitions("fruits", ["apple", "banana", "cherry"]))
    step(pair, lambda i: add_run(i, R["r1"], DagsterRunStatus.FAILURE))
    step(pair, lambda i: add_run(i, R["r2"], DagsterRunStatus.STARTED))
    step(
        pair,
        lambda i: store(
            i,
            [
                mat(R["r1"], PARTED, t(1), "apple"),
                planned(R["r1"], PARTED, t(2), "banana"),
                planned(R["r2"], PARTED, t(3), "cherry"),
                mat(R["r1"], PARTED, t(4), "not-a-fruit"),
            ],
        ),
    )
    subsets = same(pair, lambda i: partition_subsets(i, PARTED, dyn))
    assert subsets == (["apple"], ["banana"], ["cherry"])
    same(pair, lambda i: cached_status(i, PARTED))
    step(pair, lambda i: i.delete_dynamic_partition("fruits", "apple"))
    same(pair, lambda i: partition_subsets(i, PARTED, dyn))
    same(pair, lambda i: i.get_status_by_partition(PARTED, ["apple", "banana", "cherry"], dyn))


# -- the tag-indexing extension point ----------------------------------------------------------


def _index_team_tag(tag_keys: set[str]) -> set[str]:
    """Stock's rule plus the "team" tag."""
    return {k for k in tag_keys if k == DV or k.startswith("dagster/partition/") or k == "team"}


def _store_team_tagged(pair: InstancePair) -> None:
    step(
        pair,
        lambda i: store(
            i,
            [
                mat(R["r1"], PARTED, t(1), "a", tags={"team": "red", DV: "1"}),
                mat(R["r1"], PARTED, t(2), "b", tags={"team": "blue"}),
                obs(R["r1"], PARTED, t(3), "a", tags={"team": "green"}),
            ],
        ),
    )


def _assert_team_tag_indexed(pair: InstancePair) -> None:
    """Stock indexed the "team" tag; dagster-rs must have indexed it too."""
    reads = {
        "latest tags by partition": lambda i: i.event_log_storage.get_latest_tags_by_partition(
            PARTED, ET.ASSET_MATERIALIZATION, ["team"]
        ),
        "event tags": lambda i: unordered(i.get_event_tags_for_asset(PARTED)),
        "event tags filtered by team": lambda i: i.get_event_tags_for_asset(
            PARTED, {"team": "red"}
        ),
    }
    stock, rust = {}, {}
    for name, read in reads.items():
        stock[name], rust[name] = pair.both(read)
    assert stock == {
        "latest tags by partition": {"a": {"team": "red"}, "b": {"team": "blue"}},
        "event tags": unordered([{"team": "red", DV: "1"}, {"team": "blue"}, {"team": "green"}]),
        "event tags filtered by team": [{"team": "red", DV: "1"}],
    }
    for name in reads:
        assert rust[name] == stock[name], (
            f"{name}: dagster-rs did not index what the storage's get_asset_tags_to_index"
            f" asked for: stock {stock[name]!r}, dagster-rs {rust[name]!r}"
        )


def test_tags_to_index_overridden_on_the_storage_object(
    fast_pair: InstancePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write path asks the storage's own get_asset_tags_to_index which tags to index: patched
    on the storage object, it changes what is indexed (and get_latest_tags_by_partition, whose
    whitelist is the same method, returns the tag)."""
    for inst in (fast_pair.stock, fast_pair.rust):
        monkeypatch.setattr(inst.event_log_storage, "get_asset_tags_to_index", _index_team_tag)
    _store_team_tagged(fast_pair)
    _assert_team_tag_indexed(fast_pair)


def test_tags_to_index_overridden_by_a_subclass(
    fast_pair: InstancePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through a subclass of each side's storage class (the object's class swapped for
    a subclass that overrides only get_asset_tags_to_index)."""
    for inst in (fast_pair.stock, fast_pair.rust):
        storage = inst.event_log_storage
        base = type(storage)
        subclass = type(
            f"TeamIndexing{base.__name__}",
            (base,),
            {"get_asset_tags_to_index": lambda self, keys: _index_team_tag(keys)},
        )
        monkeypatch.setattr(storage, "__class__", subclass)
    _store_team_tagged(fast_pair)
    _assert_team_tag_indexed(fast_pair)


def test_tags_not_indexed_by_default(fast_pair: InstancePair) -> None:
    _store_team_tagged(fast_pair)
    error = same_error(
        fast_pair,
        lambda i: i.event_log_storage.get_latest_tags_by_partition(
            PARTED, ET.ASSET_MATERIALIZATION, ["team"]
        ),
    )
    assert error.__name__ == "CheckError"
    assert norm(same(fast_pair, lambda i: i.get_event_tags_for_asset(PARTED))) == [{DV: "1"}]
