"""The plans of the asset-check statements: every read of `asset_check_executions` goes through
one of its indexes, and no table is scanned whole.

The statements are stock's (same conditions, same joins), so these plans are the ones stock gets
on the same file; the tests pin that no shape of the reads (partition filter or not, cursor,
statuses, several keys, partition keys, a wiped asset, an `after_storage_id`) falls back to a
full scan. They read the `EXPLAIN QUERY PLAN` of each statement on the index of a home dagster-rs
created and on one stock created (the seeded homes of tests/assets/test_asset_checks.py), in
each index layout Dagster's migrations leave (tests/index_layouts.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from dagster_rs import _native
from dagster_rs.core import core_for
from tests import homes
from tests.assets.test_asset_checks import seed
from tests.conftest import KINDS
from tests.index_layouts import LAYOUTS, make_layout

CHECK_INDEXES = ("idx_asset_check_executions", "idx_asset_check_executions_unique")
KEY = '["checked"]'
PARTED = '["checked", "parted"]'
WIPE = "2020-09-13 12:26:40.000000"

HISTORIES: dict[str, Any] = {
    "plain": {},
    "unpartitioned": {"partition_filter": {"key": None}},
    "one partition": {"partition_filter": {"key": "a"}},
    "cursor": {"cursor": 8},
    "statuses": {"statuses": ["SUCCEEDED", "FAILED"]},
    "everything": {"partition_filter": {"key": "a"}, "cursor": 8, "statuses": ["PLANNED"]},
    "limit 0": {"limit": 0},
    "no limit": {"limit": -1},
}
LATEST: dict[str, Any] = {
    "one": {"asset_keys": [KEY], "check_names": ["ok"]},
    "cross": {"asset_keys": [KEY, PARTED], "check_names": ["ok", "p_ok"]},
    "unpartitioned": {
        "asset_keys": [KEY],
        "check_names": ["ok"],
        "partition_filter": {"key": None},
    },
    "one partition": {
        "asset_keys": [PARTED],
        "check_names": ["p_ok"],
        "partition_filter": {"key": "b"},
    },
}
PARTITION_INFO: dict[str, Any] = {
    "plain": {},
    "after": {"after_storage_id": 0},
    "partitions": {"partition_keys": ["a", "c"]},
    "no partitions": {"partition_keys": []},
    "wiped": {"wiped": WIPE},
    "everything": {"partition_keys": ["a", 1, None], "after_storage_id": 17, "wiped": WIPE},
}


def history_spec(**kw: Any) -> Any:
    spec = {
        "asset_key": KEY,
        "check_name": "ok",
        "partition_filter": None,
        "cursor": None,
        "statuses": None,
        "limit": 10,
    }
    return {**spec, **kw}


def latest_spec(**kw: Any) -> Any:
    return {"partition_filter": None, **kw}


def partition_spec(**kw: Any) -> Any:
    spec = {
        "asset_key": PARTED,
        "check_name": "p_ok",
        "partition_keys": None,
        "after_storage_id": None,
        "wiped": None,
    }
    return {**spec, **kw}


@pytest.fixture(scope="module", params=[(k, layout) for k in KINDS for layout in LAYOUTS], ids=str)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_native.AssetStore]:
    """The AssetStore of a copy of the seeded event log written by the named side, brought to
    the named layout."""
    kind, layout = request.param
    templates = request.getfixturevalue("template_homes")
    root = tmp_path_factory.mktemp(f"check_plans_{kind}_{layout}")
    with pytest.MonkeyPatch.context() as mp:
        homes.clean_env(mp)
        with homes.clone_pair(templates, root) as pair:
            seed(getattr(pair, kind))
    storage = root / "storage"
    shutil.copytree(root / f"{kind}_home" / "history", storage / "history")
    make_layout(storage / "history" / "runs" / "index.db", layout)
    core = core_for(durability="full", event_log_dir=str(storage / "history" / "runs"))
    yield core.assets
    core.dispose()


def check_plan(what: str, plan: list[str]) -> None:
    """An index for every search, a check index for `asset_check_executions`, no full scan of a
    table (materialized subqueries are scanned, which is reading their result)."""
    text = " ; ".join(plan)
    for step in plan:
        if step.startswith("SCAN "):
            assert "subquery" in step, (what, text)
        if step.startswith("SEARCH "):
            assert " USING " in step, (what, text)
    searches = [s for s in plan if s.startswith("SEARCH asset_check_executions USING ")]
    assert any(
        f"INDEX {index} (asset_key=? AND check_name=?)" in s
        for s in searches
        for index in CHECK_INDEXES
    ), (what, text)
    for step in plan:
        if step.startswith("SEARCH event_logs"):
            assert "INDEX idx_events_by_asset_partition (asset_key=? AND" in step, (what, text)


def plans(store: _native.AssetStore, **reads: Any) -> list[tuple[str, str, list[str]]]:
    # A Bloom filter SQLite may add in front of a search changes no access.
    return [
        (what, sql, [p for p in plan if not p.startswith("BLOOM FILTER")])
        for what, sql, plan in store.check_query_plans(**reads)
    ]


@pytest.mark.parametrize("shape", sorted(HISTORIES))
def test_history_plans(store: _native.AssetStore, shape: str) -> None:
    ((what, sql, plan),) = plans(store, history=history_spec(**HISTORIES[shape]))
    assert what == "history" and sql.startswith("SELECT asset_check_executions.id")
    check_plan(shape, plan)


@pytest.mark.parametrize("shape", sorted(LATEST))
def test_latest_plans(store: _native.AssetStore, shape: str) -> None:
    ((what, _sql, plan),) = plans(store, latest=latest_spec(**LATEST[shape]))
    assert what == "latest"
    check_plan(shape, plan)
    # the latest ids are read from the index alone, then each row by its id
    assert "SEARCH asset_check_executions USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan


@pytest.mark.parametrize("shape", sorted(PARTITION_INFO))
def test_partition_info_plans(store: _native.AssetStore, shape: str) -> None:
    ((what, _sql, plan),) = plans(store, partition_info=partition_spec(**PARTITION_INFO[shape]))
    assert what == "partition info"
    check_plan(shape, plan)
    assert any(s.startswith("SEARCH event_logs") for s in plan), plan
    assert "SEARCH asset_check_executions USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan


def test_every_read_at_once(store: _native.AssetStore) -> None:
    out = plans(
        store,
        history=history_spec(),
        latest=latest_spec(**LATEST["cross"]),
        partition_info=partition_spec(),
    )
    assert [what for what, _, _ in out] == ["history", "latest", "partition info"]
    assert plans(store) == []


def test_plans_are_of_the_statements_run(store: _native.AssetStore) -> None:
    """The explained statement returns what the read returns (same SQL, same rows)."""
    spec = history_spec(**HISTORIES["statuses"])
    ((_, sql, _),) = plans(store, history=spec)
    assert sql.count("?") == 6  # key, name, two statuses, limit, offset
    rows = store.check_history(spec)
    assert rows and all(r["execution_status"] in ("SUCCEEDED", "FAILED") for r in rows)
