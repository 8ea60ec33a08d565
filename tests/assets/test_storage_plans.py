"""The query plans of the storage domain's statements (`StorageStore.query_plans`), on the index
a stock instance created, on the one a dagster-rs instance created, and on a copy of stock's
where `ANALYZE` statistics say the opposite of the truth, each in every index layout Dagster's
migrations leave (tests/index_layouts.py): the same plan everywhere, every lookup through an
index of stock's schema, and the scans and sorts only where that schema has nothing better
(src/storage/plans.rs pins each plan line by line).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from dagster_rs import _native
from tests.conftest import load_instance, write_home
from tests.index_layouts import LAYOUTS, index_definitions, make_layout

# Whole-table reads by design: the reconcile probe and the lists of every limit, the alembic
# revision, every asset row for a reindex; `concurrency_slots` has no index in stock's schema.
ALLOWED_SCANS = {
    "SCAN concurrency_slots": None,
    "SCAN concurrency_limits": {"reconcile due", "limit keys", "pool limits"},
    "SCAN alembic_version": {"revision"},
    "SCAN asset_keys": {"asset index rows"},
    "SCAN pending_steps USING COVERING INDEX idx_pending_steps": {"pending run ids", "has rows"},
}
# Sorts of one definition's partitions (no index orders them by id), of one pool's waiting
# steps or slots, of the reconcile's groups, of the queues' run ids, of one asset's events.
SORTS = {
    "partitions",
    "partition page",
    "partition page after",
    "partition page before",
    "reconcile",
    "retire slots",
    "assign next",
    "pending run ids",
    "latest asset event",
}
# Probes that stop at their first row, whichever way they read.
FIRST_ROW = {"has rows"}


def _index(home: Path) -> Path:
    return home / "history" / "runs" / "index.db"


def _plans(home: Path) -> dict[str, list[str]]:
    store = _native.DagsterInstance(str(home), "off").storage
    return {p["statement"]: p["plan"] for p in store.query_plans()}


@pytest.fixture(scope="module", params=LAYOUTS)
def homes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp(f"storage_plans_{request.param}")
    out = {}
    for kind in ("stock", "rust"):
        home = write_home(root / f"{kind}_home", kind)
        inst = load_instance(home)
        inst.event_log_storage.get_maximum_record_id()
        inst.dispose()
        make_layout(_index(home), request.param)
        out[kind] = home
    misleading = root / "analyzed_home"
    shutil.copytree(out["stock"], misleading)
    conn = sqlite3.connect(_index(misleading))
    try:
        conn.execute("ANALYZE")
        conn.execute("DELETE FROM sqlite_stat1")
        conn.executemany(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
            [
                ("pending_steps", "idx_pending_steps", "1000000 1000000 1000000 1"),
                ("pending_steps", None, "10"),
                ("dynamic_partitions", "idx_dynamic_partitions", "1000000 1000000 1"),
                ("dynamic_partitions", None, "10"),
                ("concurrency_limits", "sqlite_autoindex_concurrency_limits_1", "1000000 1000000"),
                ("concurrency_limits", None, "10"),
                ("event_logs", "idx_events_by_asset", "1000000 1000000 1000000 1"),
                ("event_logs", None, "10"),
                ("asset_keys", "sqlite_autoindex_asset_keys_1", "1000000 1000000"),
                ("asset_keys", None, "10"),
            ],
        )
        conn.commit()
    finally:
        conn.close()
    out["analyzed"] = misleading
    return out


def test_the_migrated_layout_differs_from_the_fresh_one(tmp_path: Path) -> None:
    """The parametrization is not vacuous: replaying the migrations changes the index shard."""
    home = write_home(tmp_path / "home", "stock")
    inst = load_instance(home)
    inst.event_log_storage.get_maximum_record_id()
    inst.dispose()
    fresh = index_definitions(_index(home))
    make_layout(_index(home), "migrated")
    migrated = index_definitions(_index(home))
    assert fresh < migrated
    assert ("kvs", "idx_kvs_keys_unique", "key") in migrated - fresh


def test_same_plans_on_every_file(homes: dict[str, Path]) -> None:
    plans = {kind: _plans(home) for kind, home in homes.items()}
    assert plans["stock"] == plans["rust"]
    for name, plan in plans["stock"].items():
        if name not in FIRST_ROW:
            assert plans["analyzed"][name] == plan, name


def test_lookups_use_the_indexes(homes: dict[str, Path]) -> None:
    plans = _plans(homes["stock"])
    assert len(plans) >= 40
    for name, plan in plans.items():
        for line in plan:
            if line.startswith("SCAN ") and not line.startswith(
                # constants, the skip-scan's keys, the keys an add binds as one array
                ("SCAN CONSTANT ROW", "SCAN 2 CONSTANT ROWS", "SCAN pool_keys", "SCAN new_keys")
            ):
                allowed = ALLOWED_SCANS.get(line, set())
                assert allowed is None or name in allowed or name in FIRST_ROW, (name, line)
            if line.startswith("USE TEMP B-TREE"):
                assert name in SORTS, (name, line)
    # a run's queued steps are found by a skip-scan of idx_pending_steps, not a scan
    assert any(
        "idx_pending_steps (concurrency_key=? AND run_id=?)" in line
        for line in plans["remove pending (run)"]
    )
