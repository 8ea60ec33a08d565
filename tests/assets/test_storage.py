"""The storage domain through the instance, stock vs dagster-rs: dynamic partitions (add, delete,
membership, paging in both directions), optimize_for_webserver, reindex and dispose.

Dynamic partition ids are plain rowids, so after the same adds and deletes both sides hold the
same ids, and the paging cursors (base64 StorageIdCursor) are compared exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from tests.assets.conftest import (
    mat,
    now,
    obs,
    planned,
    run_ids,
    same,
    same_asset_reads,
    same_error,
    seeded_pair,
    store,
    t,
)
from tests.conftest import InstancePair, load_instance
from tests.stock_api import stock_has

R = run_ids("r1", "r2")
FRUITS = "fruits"
KEYS = ["apple", "banana", "cherry", "date", "elderberry", "fig", "grape"]


def paginated(inst: DagsterInstance, name: str, limit: int, ascending: bool, cursor=None) -> tuple:
    res = inst.get_paginated_dynamic_partitions(name, limit, ascending, cursor)
    return res.results, res.cursor, res.has_more


def all_pages(inst: DagsterInstance, name: str, limit: int, ascending: bool) -> list[tuple]:
    """Page with the returned cursor while has_more (at most 12 pages)."""
    out, cursor = [], None
    for _ in range(12):
        page = paginated(inst, name, limit, ascending, cursor)
        out.append(page)
        if not page[2]:
            break
        cursor = page[1]
    return out


def membership(inst: DagsterInstance) -> dict:
    names = [FRUITS, "veg", "unknown"]
    probes = [*KEYS, "kiwi", ""]
    view = {
        "partitions": {n: inst.get_dynamic_partitions(n) for n in names},
        "has": {(n, k): inst.has_dynamic_partition(n, k) for n in names for k in probes},
        "definition_id": inst.get_dynamic_partitions_definition_id(FRUITS),
    }
    # A batch read that came within the tested range, where the installed stock has it.
    if stock_has("DagsterInstance.get_existing_dynamic_partitions"):
        view["existing"] = inst.get_existing_dynamic_partitions(FRUITS, [*probes, "apple"])
    return view


def fruit_seed(inst: DagsterInstance) -> None:
    """Fruits added in three batches (one repeating stored keys), some deleted, re-added (new
    ids at the end), and a second definition interleaved."""
    inst.add_dynamic_partitions(FRUITS, KEYS[:3])
    inst.add_dynamic_partitions("veg", ["kale", "leek"])
    inst.add_dynamic_partitions(FRUITS, [KEYS[1], *KEYS[3:]])
    inst.delete_dynamic_partition(FRUITS, "banana")
    inst.delete_dynamic_partition(FRUITS, "fig")
    inst.add_dynamic_partitions(FRUITS, ["banana"])


# read-only tests share one seeded pair; tests that write seed a fresh one
fruits = seeded_pair("fruits", fruit_seed)


@pytest.fixture
def fruit_pair(fast_pair: InstancePair) -> InstancePair:
    fast_pair.both(fruit_seed)
    return fast_pair


def test_add_delete_and_membership(fruits: InstancePair) -> None:
    view = same(fruits, membership)
    # insertion (id) order; banana re-added after its delete goes last
    assert view["partitions"][FRUITS] == [
        "apple",
        "cherry",
        "date",
        "elderberry",
        "grape",
        "banana",
    ]


def test_delete_unknown_and_empty_adds(fruit_pair: InstancePair) -> None:
    pair = fruit_pair
    pair.both(lambda i: i.delete_dynamic_partition(FRUITS, "kiwi"))
    pair.both(lambda i: i.delete_dynamic_partition("nothing", "apple"))
    pair.both(lambda i: i.add_dynamic_partitions(FRUITS, []))
    pair.both(lambda i: i.add_dynamic_partitions(FRUITS, ["apple", "cherry"]))  # all stored
    same(pair, membership)


@pytest.mark.parametrize("limit", [1, 2, 4, 100])
@pytest.mark.parametrize("ascending", [True, False], ids=["asc", "desc"])
def test_paginated(fruit_pair: InstancePair, limit: int, ascending: bool) -> None:
    pages = same(fruit_pair, lambda i: all_pages(i, FRUITS, limit, ascending))
    assert [k for page in pages for k in page[0]] == (
        same(fruit_pair, lambda i: list(i.get_dynamic_partitions(FRUITS)))[
            :: 1 if ascending else -1
        ]
    )


@pytest.mark.parametrize("name", [FRUITS, "unknown"])
@pytest.mark.parametrize("limit", [0, -1], ids=lambda v: f"limit={v}")
@pytest.mark.parametrize("ascending", [True, False], ids=["asc", "desc"])
def test_paginated_degenerate_limits(
    fruits: InstancePair, name: str, limit: int, ascending: bool
) -> None:
    # limit 0 or -1 never advances the cursor on stock (a caller looping on has_more spins)
    same(fruits, lambda i: paginated(i, name, limit, ascending))


def test_paginated_cursor_after_changes(fruit_pair: InstancePair) -> None:
    """A page cursor stays valid when partitions are added and deleted between pages."""
    pair = fruit_pair
    first = same(pair, lambda i: paginated(i, FRUITS, 2, True))
    pair.both(lambda i: i.delete_dynamic_partition(FRUITS, "date"))
    pair.both(lambda i: i.add_dynamic_partitions(FRUITS, ["kiwi"]))
    same(pair, lambda i: all_pages_from(i, first[1]))


def all_pages_from(inst: DagsterInstance, cursor: str) -> list[tuple]:
    out = []
    for _ in range(12):
        page = paginated(inst, FRUITS, 2, True, cursor)
        out.append(page)
        if not page[2]:
            break
        cursor = page[1]
    return out


def test_partition_keys_stored_as_given(fast_pair: InstancePair) -> None:
    """Neither the instance nor the storage validates keys: odd ones are stored and returned."""
    odd = ["...", "a/b", "with space", "tab\there", "ünïcode", "x" * 300, "'; DROP TABLE runs;--"]
    fast_pair.both(lambda i: i.add_dynamic_partitions("odd", odd))
    assert same(fast_pair, lambda i: i.get_dynamic_partitions("odd")) == odd
    same(fast_pair, lambda i: [i.has_dynamic_partition("odd", k) for k in odd])
    same(fast_pair, lambda i: all_pages(i, "odd", 3, False))


def test_duplicate_keys_in_one_add_store_nothing(fast_pair: InstancePair) -> None:
    pair = fast_pair
    pair.both(lambda i: i.add_dynamic_partitions(FRUITS, ["apple"]))
    error = same_error(pair, lambda i: i.add_dynamic_partitions(FRUITS, ["x", "y", "x", "z"]))
    assert error.__name__ == "IntegrityError"
    assert same(pair, lambda i: i.get_dynamic_partitions(FRUITS)) == ["apple"]
    # the ids the rolled-back batch did not consume are the same on both sides
    pair.both(lambda i: i.add_dynamic_partitions(FRUITS, ["y"]))
    same(pair, lambda i: all_pages(i, FRUITS, 1, True))


# -- storage admin -----------------------------------------------------------------------------


def _seed_assets(pair: InstancePair) -> None:
    a, b = AssetKey("a"), AssetKey(["b", "c"])
    pair.both(
        lambda i: store(
            i,
            [
                planned(R["r1"], a, t(1)),
                mat(R["r1"], a, t(2), "p1"),
                obs(R["r1"], a, t(3)),
                mat(R["r2"], b, t(4)),
                obs(R["r2"], b, t(5)),
            ],
        )
    )
    pair.both(lambda i: i.wipe_assets([b]))
    ts = now()
    pair.both(lambda i: store(i, [obs(R["r2"], b, ts)]))


def test_optimize_for_webserver_changes_nothing(fast_pair: InstancePair) -> None:
    _seed_assets(fast_pair)
    before = same_asset_reads(fast_pair, AssetKey("a"), AssetKey(["b", "c"]))
    same(
        fast_pair,
        lambda i: i.optimize_for_webserver(
            statement_timeout=1000, pool_recycle=3600, max_overflow=5
        ),
    )
    assert same_asset_reads(fast_pair, AssetKey("a"), AssetKey(["b", "c"])) == before


def test_reindex(fast_pair: InstancePair) -> None:
    _seed_assets(fast_pair)
    before = same_asset_reads(fast_pair, AssetKey("a"), AssetKey(["b", "c"]))

    def reindex(inst: DagsterInstance) -> list[str]:
        printed: list[str] = []
        inst.reindex(printed.append)
        return printed

    printed = same(fast_pair, reindex)
    assert printed[0] == "Checking for reindexing..." and printed[-1] == "Done."
    assert same_asset_reads(fast_pair, AssetKey("a"), AssetKey(["b", "c"])) == before


def test_forced_asset_reindex(fast_pair: InstancePair) -> None:
    """Forced data migrations rewrite every asset row from the events (into the old
    last_materialization format on stock); reads must still agree."""
    _seed_assets(fast_pair)

    def forced(inst: DagsterInstance) -> list[str]:
        printed: list[str] = []
        inst.event_log_storage.reindex_events(printed.append, force=True)
        inst.event_log_storage.reindex_assets(printed.append, force=True)
        return printed

    same(fast_pair, forced)
    same_asset_reads(fast_pair, AssetKey("a"), AssetKey(["b", "c"]))
    same(fast_pair, lambda i: i.get_asset_records())


def test_dispose_and_reopen(fast_pair: InstancePair, tmp_path: Path) -> None:
    """After dispose, an instance opened again on the home reads back everything; disposing
    twice behaves the same on both sides."""
    _seed_assets(fast_pair)
    fast_pair.both(lambda i: i.add_dynamic_partitions(FRUITS, ["apple"]))
    keys = (AssetKey("a"), AssetKey(["b", "c"]))
    before = same_asset_reads(fast_pair, *keys)
    homes = fast_pair.both(lambda i: Path(i.root_directory))
    fast_pair.dispose()
    same(fast_pair, lambda i: i.dispose())
    reopened = InstancePair(load_instance(homes[0]), load_instance(homes[1]))
    with reopened:
        assert same_asset_reads(reopened, *keys) == before
        assert same(reopened, lambda i: i.get_dynamic_partitions(FRUITS)) == ["apple"]


def test_directories(fast_pair: InstancePair) -> None:
    def relative(inst: DagsterInstance) -> list[str]:
        root = str(inst.root_directory)
        paths = [
            inst.storage_directory(),
            inst.schedules_directory(),
            inst.file_manager_directory(R["r1"]),
        ]
        return [p.replace(root, "<home>") for p in paths]

    same(fast_pair, relative)
