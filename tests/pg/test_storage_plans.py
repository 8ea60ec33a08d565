"""The plans PostgreSQL gives every statement of the storage domain (dynamic partitions,
concurrency pools), pinned as tests/pg/test_plans.py pins the runs domain's.

The database is seeded at a busy deployment's scale and `ANALYZE`d: 200,000 dynamic partitions
of 200 definitions, 1,000 pools with limits, 100,000 queued steps (one pool of them holding
most), a few slots per pool, 50,000 events. The tests assert what must hold whatever the cost
model's details: no sequential scan of `dynamic_partitions`, `pending_steps` or
`concurrency_limits` for a statement about one definition, pool, key or run; the lookups by the
index stock's schema has for them (`idx_dynamic_partitions`, `idx_pending_steps`,
`concurrency_limits_concurrency_key_key`). `concurrency_slots` has no index in stock's schema
(one row per configured slot), so its statements read it whole, as stock's do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from dagster_rs import _native

pytestmark = pytest.mark.needs_native_pg


def _seed(cur: Any) -> None:
    cur.execute(
        """
        INSERT INTO dynamic_partitions (partitions_def_name, partition)
        SELECT 'def_' || (g % 200), 'key_' || g FROM generate_series(1, 200000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO concurrency_limits (concurrency_key, "limit")
        SELECT 'pool_' || g, 3 FROM generate_series(1, 1000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO concurrency_slots (concurrency_key, run_id, step_key, deleted)
        SELECT 'pool_' || (g % 1000), CASE WHEN g % 2 = 0 THEN 'run_' || g END,
               CASE WHEN g % 2 = 0 THEN 'step' END, FALSE
        FROM generate_series(1, 3000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO pending_steps (concurrency_key, run_id, step_key, priority, assigned_timestamp)
        SELECT CASE WHEN g % 2 = 0 THEN 'busy' ELSE 'pool_' || (g % 1000) END,
               'run_' || (g / 10), 'step_' || (g % 10), g % 7,
               CASE WHEN g % 50 = 0 THEN timestamp '2026-01-01' END
        FROM generate_series(1, 100000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp, asset_key)
        SELECT 'run_' || (g / 50), '{}', 'ASSET_MATERIALIZATION',
               timestamp '2026-01-01' + g * interval '1 second', '["a' || (g % 500) || '"]'
        FROM generate_series(1, 50000) AS g
        """
    )
    cur.execute("VACUUM ANALYZE")


@pytest.fixture(scope="module")
def plans(pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    url = pg_cluster.create_database()
    root: Path = tmp_path_factory.mktemp("storage_plans")
    # The native core creates stock's event log schema on the empty database.
    native = _native.DagsterInstance(str(root), postgres_url=url)
    native.storage.tables()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            _seed(cur)
    finally:
        conn.close()
    try:
        yield {p["statement"]: p["plan"] for p in native.storage.query_plans()}
    finally:
        native.dispose()
        pg_cluster.drop_database(url.split("/")[3].split("?")[0])


def _seq_scans(plan: list[str]) -> set[str]:
    return {line.strip().split(" on ")[-1] for line in plan if "Seq Scan on" in line}


def _indexes(plan: list[str]) -> set[str]:
    return {line.split(" using ")[1].split(" on ")[0] for line in plan if " using " in line}


# Statement -> the index its lookup must use. Each is about one definition, key, pool or run.
BY_INDEX = {
    "partitions": "idx_dynamic_partitions",
    "partition page": "idx_dynamic_partitions",
    "partition page after": "idx_dynamic_partitions",
    "partition page before": "idx_dynamic_partitions",
    "has partition": "idx_dynamic_partitions",
    "stored among": "idx_dynamic_partitions",
    "delete partition": "idx_dynamic_partitions",
    "delete limit": "concurrency_limits_concurrency_key_key",
    "limits of": "concurrency_limits_concurrency_key_key",
    "assign next": "idx_pending_steps",
    "pending step": "idx_pending_steps",
    "pending of": "idx_pending_steps",
    "remove pending (run)": "idx_pending_steps",
    "remove pending (step)": "idx_pending_steps",
    "run in pools": "idx_pending_steps",
    "unassigned slots": "idx_pending_steps",
}
# Tables no selective statement may read whole.
INDEXED_TABLES = {"dynamic_partitions", "pending_steps", "concurrency_limits"}
# Statements that read a table whole by their nature (every limit, every queued run, every
# asset row, a probe that stops at its first row), or write rows without reading.
WHOLE = {
    "reconcile due",
    "reconcile",
    "limit keys",
    "pool limits",
    "pending run ids",
    "has rows",
    "event asset keys",
    "asset index rows",
    "revision",
}


def test_every_statement_is_planned(plans: dict[str, Any]) -> None:
    assert set(BY_INDEX) <= set(plans)
    assert {"upsert texts", "upsert partitions"} <= set(plans)
    # SQLite's membership-tested add is not what PostgreSQL runs.
    assert "insert new texts" not in plans


# A page from a cursor may read the id range instead, when that is the smaller (the sample
# cursor, id 3, leaves two ids before it): under the Sort, never in id order over the table.
CURSOR_PAGES = {"partition page after", "partition page before"}


@pytest.mark.parametrize("statement", sorted(BY_INDEX))
def test_lookups_use_stocks_indexes(plans: dict[str, Any], statement: str) -> None:
    plan = plans[statement]
    used = _indexes(plan)
    if statement in CURSOR_PAGES and "dynamic_partitions_pkey" in used:
        assert [line.strip() for line in plan[:2]] == ["Limit", "Sort"], plan
    else:
        assert BY_INDEX[statement] in used, plan
    assert not _seq_scans(plan) & INDEXED_TABLES, plan


def test_a_page_never_walks_the_table_in_id_order(plans: dict[str, Any]) -> None:
    # Stock's `ORDER BY id LIMIT n` lets PostgreSQL walk the primary key filtering by definition:
    # the whole table for a definition with few keys.
    for statement in ("partition page", *CURSOR_PAGES):
        assert [line.strip() for line in plans[statement][:2]] == ["Limit", "Sort"], (
            statement,
            plans[statement],
        )


def test_no_selective_statement_scans_an_indexed_table(plans: dict[str, Any]) -> None:
    for statement, plan in plans.items():
        if statement in WHOLE:
            continue
        assert not _seq_scans(plan) & INDEXED_TABLES, (statement, plan)


def test_latest_asset_event_seeks(plans: dict[str, Any]) -> None:
    plan = plans["latest asset event"]
    assert "event_logs" not in _seq_scans(plan), plan
