"""The plans of the assets domain's statements: every read and write finds its rows by an index.

The core runs stock's statements (same SQL shape, so SQLite returns the same rows in the same
order); these tests read the `EXPLAIN QUERY PLAN` of each on sample arguments, on a file dagster-rs
created, on one stock created, and on each after `ANALYZE` over skewed data (few assets, many
partitions, a hot tag), in each index layout Dagster's migrations leave (tests/index_layouts.py),
and fail on a full scan of a table or a statement off its index. A scan is allowed only where the
statement lists a whole table by design (all asset keys, in key order).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetMaterialization, AssetObservation, DagsterInstance
from dagster._core.definitions.data_version import DATA_VERSION_TAG

import dagster_rs
from tests.conftest import load_instance, write_home
from tests.index_layouts import LAYOUTS, make_layout

Plan = tuple[str, str, list[str]]

TABLES = ("event_logs", "asset_keys", "asset_event_tags", "asset_check_executions")

# The index each statement must use (any one line of its plan naming it).
EXPECTED: dict[str, tuple[str, ...]] = {
    "asset rows": ("sqlite_autoindex_asset_keys_1",),
    "asset rows by key": ("sqlite_autoindex_asset_keys_1",),
    "asset keys by prefix": ("sqlite_autoindex_asset_keys_1",),
    "asset details": ("sqlite_autoindex_asset_keys_1",),
    "latest materializations": ("idx_events_by_asset_partition", "idx_events_by_asset"),
    "latest ids by partition": ("idx_events_by_asset", "idx_events_by_asset_partition"),
    "latest ids of partitions": ("idx_events_by_asset_partition",),
    "materialized partitions": ("idx_events_by_asset", "idx_events_by_asset_partition"),
    "latest tags by partition": ("idx_asset_event_tags_event_id",),
    "latest events by partition": ("idx_events_by_asset_partition", "idx_events_by_asset"),
    "partition data versions": ("idx_asset_event_tags",),
    "set cached status": ("sqlite_autoindex_asset_keys_1",),
    "event tags": ("idx_asset_event_tags",),
    "event tags filtered": ("idx_asset_event_tags",),
    "summary records of an asset": ("idx_events_by_asset",),
    "summary records": ("idx_event_type",),
    "freshness states": ("idx_events_by_asset_partition", "idx_events_by_asset"),
    "wipe asset row": ("sqlite_autoindex_asset_keys_1",),
    "wipe check executions": ("idx_asset_check_executions",),
    "wipe index events": ("idx_events_by_asset", "idx_events_by_asset_partition"),
}

# Statements that read a whole table on purpose, and the only access they may use for it.
WHOLE_TABLE = {"asset rows": "SCAN asset_keys USING INDEX sqlite_autoindex_asset_keys_1"}


def _fill(instance: DagsterInstance) -> None:
    """Skewed data: one asset with many partitions and events, a few small ones, a hot tag."""
    for i in range(400):
        instance.report_runless_asset_event(
            AssetMaterialization(
                asset_key="a", partition=f"p{i % 200}", tags={DATA_VERSION_TAG: f"v{i}"}
            )
        )
    for name in ("b", "c", "d"):
        instance.report_runless_asset_event(AssetMaterialization(asset_key=name))
        instance.report_runless_asset_event(AssetObservation(asset_key=name, partition="p1"))


def _analyze(home: Path) -> None:
    with sqlite3.connect(home / "history" / "runs" / "index.db") as conn:
        conn.execute("ANALYZE")


@pytest.fixture(
    params=[
        f"{side}{analyzed}-{layout}"
        for side in ("own", "stock")
        for analyzed in ("", "+analyzed")
        for layout in LAYOUTS
    ]
)
def plans(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Plan]]:
    """The plans on a file the named side created and filled, in the named layout (then
    ANALYZE'd or not), read by dagster-rs."""
    kind, _, layout = str(request.param).partition("-")
    creator, _, analyzed = kind.partition("+")
    home = tmp_path / "home"
    first = load_instance(write_home(home, "rust" if creator == "own" else "stock"))
    try:
        _fill(first)
    finally:
        first.dispose()
    make_layout(home / "history" / "runs" / "index.db", layout)
    if analyzed:
        _analyze(home)
    rust = load_instance(write_home(home, "rust"))
    try:
        assert isinstance(rust, dagster_rs.DagsterInstance)
        yield rust.event_log_storage._native_core.assets.query_plans()  # type: ignore[attr-defined]
    finally:
        rust.dispose()


def test_every_statement_is_pinned(plans: list[Plan]) -> None:
    assert {what for what, _, _ in plans} >= set(EXPECTED)


def test_no_full_scan_and_the_expected_index(plans: list[Plan]) -> None:
    problems = []
    for what, sql, lines in plans:
        for line in lines:
            for table in TABLES:
                if line == f"SCAN {table}" or line.startswith(f"SCAN {table} "):
                    if WHOLE_TABLE.get(what) != line:
                        problems.append(f"{what}: {line}\n    {sql}")
        wanted = EXPECTED.get(what)
        if wanted and not any(f"INDEX {index}" in line for line in lines for index in wanted):
            problems.append(f"{what}: none of {wanted} in {lines}\n    {sql}")
    assert not problems, "\n".join(problems)
