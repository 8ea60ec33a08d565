"""The plans PostgreSQL gives every statement of the runs, config and scheduling domains, on both
`run_tags` index layouts a real database can have, pinned as tests/runs/test_plans.py pins
SQLite's.

PostgreSQL plans by its statistics, so each database here is seeded with a realistic
distribution (tens of thousands of runs in six statuses, a common tag (`env`: half the runs),
a middling one (`team`: a tenth), a selective one (`sensor`: one run in five hundred), a rare
job, backfills, ticks of many sensors, many cursor keys and instigators) and `ANALYZE`d; the
tests then assert what must hold whatever the cost model's details: no sequential scan of
runs, run_tags, job_ticks, kvs, jobs or instigators for a selective shape, each role served by
its index (the cursor and run ids by `runs_run_id_key`, the rows by `runs_pkey`, a tag by the
layout's tag index, a rare job by `idx_runs_by_job`, a sensor's ticks by
`idx_tick_selector_timestamp`), and a one-tag count that never reads a run. A statement shape
that makes PostgreSQL scan fails here.

The layouts: `fresh` (stock's `idx_run_tags (key, value)` and `idx_run_tags_run_idx`) and `047`
(migration 047's unique `idx_run_tags_run_id (key, value, run_id)` in place of `idx_run_tags`,
made with the migration's DDL), each on bigint ids and on int4 ids (a database from before the
bigint migration).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from dagster import DagsterRunStatus, RunsFilter

from dagster_rs import _native
from dagster_rs.storage.convert import runs_filter_spec

pytestmark = pytest.mark.needs_native_pg

RUNS = 40_000
# The i-th run's status: SUCCESS most, QUEUED one in twenty.
STATUSES = (
    ["SUCCESS"] * 12 + ["FAILURE"] * 3 + ["CANCELED", "STARTED", "NOT_STARTED"] * 2 + ["QUEUED"]
)
T0 = datetime(2026, 1, 1)


def _seed(cur: Any, layout: str, int4: bool) -> None:
    n = RUNS
    statuses = "ARRAY[" + ", ".join(f"'{s}'" for s in STATUSES) + "]"
    cur.execute(
        f"""
        INSERT INTO runs (run_id, pipeline_name, status, run_body, create_timestamp,
                          update_timestamp, backfill_id)
        SELECT 'r' || g,
               CASE WHEN g % 1000 = 0 THEN 'rare_job' ELSE 'job_' || (g % 20) END,
               ({statuses})[1 + g % {len(STATUSES)}],
               '{{}}',
               timestamp '2026-01-01' + g * interval '10 seconds',
               timestamp '2026-01-01' + g * interval '10 seconds',
               CASE WHEN g % 10 = 0 THEN 'b' || (g % 50) END
        FROM generate_series(1, {n}) AS g
        """
    )
    cur.execute(
        f"""
        INSERT INTO run_tags (run_id, key, value)
        SELECT 'r' || g, 'team', 't' || (g % 10) FROM generate_series(1, {n}) AS g
        UNION ALL SELECT 'r' || g, 'env', 'e' || (g % 2) FROM generate_series(1, {n}) AS g
        UNION ALL SELECT 'r' || g, 'sensor', 's' || (g % 500) FROM generate_series(1, {n}) AS g
        UNION ALL SELECT 'r' || g, 'dagster/backfill', 'b' || (g % 50)
            FROM generate_series(1, {n}) AS g WHERE g % 10 = 0
        """
    )
    cur.execute(
        """
        INSERT INTO bulk_actions (key, status, timestamp, body, action_type, selector_id,
                                  job_name)
        SELECT 'b' || g, CASE WHEN g % 20 = 0 THEN 'REQUESTED' ELSE 'COMPLETED' END,
               timestamp '2026-01-01' + g * interval '1 minute', '{}', 'RUN_BACKFILL',
               's' || (g % 100), 'job_' || (g % 20)
        FROM generate_series(1, 5000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO backfill_tags (backfill_id, key, value)
        SELECT 'b' || g, 'team', 't' || (g % 10) FROM generate_series(1, 5000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO kvs (key, value) SELECT 'k' || g, 'v' FROM generate_series(1, 20000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO instigators (selector_id, repository_selector_id, status, instigator_type,
                                 instigator_body)
        SELECT 's' || g, 'r' || (g % 50), 'RUNNING',
               CASE WHEN g % 5 = 0 THEN 'SCHEDULE' ELSE 'SENSOR' END, '{}'
        FROM generate_series(1, 5000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO jobs (job_origin_id, selector_id, repository_origin_id, status, job_type,
                          job_body)
        SELECT 'o' || g, 's' || g, 'r' || (g % 50), 'RUNNING',
               CASE WHEN g % 5 = 0 THEN 'SCHEDULE' ELSE 'SENSOR' END, '{}'
        FROM generate_series(1, 5000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO job_ticks (job_origin_id, selector_id, status, type, timestamp, tick_body)
        SELECT 'o' || (g % 500), 's' || (g % 500),
               CASE WHEN g % 7 = 0 THEN 'SKIPPED' ELSE 'SUCCESS' END, 'SENSOR',
               timestamp '2026-01-01' + g * interval '1 second', '{}'
        FROM generate_series(1, 100000) AS g
        """
    )
    cur.execute(
        """
        INSERT INTO asset_daemon_asset_evaluations (evaluation_id, asset_key, asset_evaluation_body,
                                                    num_requested)
        SELECT g / 20, '["a' || (g % 20) || '"]', '{}', 0 FROM generate_series(1, 40000) AS g
        """
    )
    if layout == "047":
        # Migration 047 (dagster's add_run_tags_run_id_index): the covering unique index in
        # place of (key, value).
        cur.execute("CREATE UNIQUE INDEX idx_run_tags_run_id ON run_tags (key, value, run_id)")
        cur.execute("DROP INDEX idx_run_tags")
    if int4:
        # A database from before the bigint migration: int4 ids.
        for table in ("runs", "run_tags", "job_ticks", "kvs", "instigators", "jobs"):
            cur.execute(f"ALTER TABLE {table} ALTER COLUMN id TYPE integer")
    cur.execute("VACUUM ANALYZE")


@dataclass
class Db:
    layout: str
    int4: bool
    native: Any

    @property
    def tag_index(self) -> str:
        return "idx_run_tags_run_id" if self.layout == "047" else "idx_run_tags"


@pytest.fixture(
    scope="module", params=[("fresh", False), ("047", False), ("fresh", True), ("047", True)]
)
def db(
    request: pytest.FixtureRequest, pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    layout, int4 = request.param
    url = pg_cluster.create_database()
    root: Path = tmp_path_factory.mktemp(f"plans_{layout}_{int4}")
    # The native core creates stock's schema on the empty database.
    native = _native.DagsterInstance(str(root), postgres_url=url)
    native.runs.has_run("x")
    native.schedules.instigator_state("o", "s")
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            _seed(cur, layout, int4)
    finally:
        conn.close()
    native.runs.reload_layout()
    try:
        yield Db(layout, int4, native)
    finally:
        name = url.split("/")[3].split("?")[0]
        pg_cluster.drop_database(name)


T = datetime(2026, 1, 2)
# Every filter shape of the run lists and counts, and whether it is selective here (a small
# share of the runs matches: PostgreSQL must not read a table whole for it).
SHAPES: dict[str, tuple[RunsFilter, bool]] = {
    "no filter": (RunsFilter(), False),
    "selective tag": (RunsFilter(tags={"sensor": "s27"}), True),
    "middling tag": (RunsFilter(tags={"team": "t7"}), False),
    "common tag": (RunsFilter(tags={"env": "e1"}), False),
    "two tags": (RunsFilter(tags={"team": "t7", "sensor": "s27"}), True),
    "three tags": (RunsFilter(tags={"team": "t7", "sensor": "s27", "env": "e1"}), True),
    "tag list values": (RunsFilter(tags={"sensor": ["s1", "s2"]}), True),
    "selective tag + status": (
        RunsFilter(tags={"sensor": "s27"}, statuses=[DagsterRunStatus.FAILURE]),
        True,
    ),
    "tag + status": (RunsFilter(tags={"team": "t7"}, statuses=[DagsterRunStatus.FAILURE]), False),
    "selective tag + job": (RunsFilter(tags={"sensor": "s27"}, job_name="job_7"), True),
    "rare job": (RunsFilter(job_name="rare_job"), True),
    "statuses + job": (
        RunsFilter(
            statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE], job_name="rare_job"
        ),
        True,
    ),
    "queued": (RunsFilter(statuses=[DagsterRunStatus.QUEUED]), False),
    "created_before": (RunsFilter(created_before=T), False),
    "created window": (RunsFilter(created_after=T, created_before=T), False),
    "updated_after + status": (
        RunsFilter(updated_after=T, statuses=[DagsterRunStatus.FAILURE]),
        False,
    ),
    "exclude_subruns": (RunsFilter(exclude_subruns=True), False),
    "run_ids": (RunsFilter(run_ids=["r1", "r2"]), True),
}
TIME_ONLY = {"created_before", "created window"}
# Tables a selective statement must never read whole.
BIG = {"runs", "run_tags", "job_ticks", "kvs", "instigators", "jobs", "bulk_actions"}


def _seq_scans(plan: list[str]) -> set[str]:
    return {line.strip().split(" on ")[-1] for line in plan if "Seq Scan on" in line}


def _indexes(plan: list[str]) -> set[str]:
    return {line.split(" using ")[1].split(" on ")[0] for line in plan if " using " in line}


def _run_plans(db: Db, f: RunsFilter, **kw: Any) -> dict[str, list[str]]:
    return {
        what: plan for what, _sql, plan in db.native.runs.query_plans(runs_filter_spec(f), 25, **kw)
    }


def test_the_layout_is_known_by_its_roles(db: Db) -> None:
    ix = db.native.runs.run_indexes()
    assert ix["tag"] == db.tag_index
    assert ix["tag_covering"] == (db.layout == "047")
    assert ix["run_id"] == "runs_run_id_key"
    assert ix["run_tags"] == "idx_run_tags_run_idx"
    assert ix["job"] == "idx_runs_by_job"
    assert ix["status"] == "idx_run_status"


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("cursor", [False, True])
def test_run_statements_are_index_driven(db: Db, shape: str, cursor: bool) -> None:
    f, selective = SHAPES[shape]
    plans = _run_plans(db, f, cursor=cursor)
    tags = f.tags or {}
    for what, plan in plans.items():
        scanned = _seq_scans(plan) & BIG
        limited = what in ("ids",) or what.startswith("ids driven") or what == "cursor"
        # Undriven, a tag query's whole list and count run only when the tag is too large to
        # drive (runs::pg_tags): not for a selective tag.
        undriven_tagged = bool(tags) and what in ("count", "ids unlimited")
        # No index of stock's schema leads with a creation time: a limit query whose only
        # conditions are creation bounds reads the runs (newest first, or whole and sorted when
        # PostgreSQL expects no match), as stock's does.
        if shape in TIME_ONLY:
            limited = what == "cursor"
        if (
            (selective and not undriven_tagged)
            or limited
            or what in ("rows", "bounds")
            or what.startswith("estimate")
        ):
            # A limit query walks the primary key newest first or reads a selective index;
            # the estimates read one tag's index entries.
            assert not scanned, (shape, what, plan)
        if what == "cursor":
            assert _indexes(plan) == {"runs_run_id_key"}, plan
        if what == "rows":
            assert _indexes(plan) == {"runs_pkey"}, plan
        if what.startswith("estimate"):
            assert _indexes(plan) == {db.tag_index}, plan
        # A tag is read through the run's tag rows (idx_run_tags_run_idx) or the tag index,
        # never by reading run_tags.
        if tags and what not in ("cursor", "rows", "bounds"):
            assert "run_tags" not in _seq_scans(plan), (shape, what, plan)
    if shape == "run_ids":
        if not cursor:  # (the sample cursor is run 1: nothing lies below it)
            assert "runs_run_id_key" in _indexes(plans["ids"]), plans["ids"]
        assert "runs_run_id_key" in _indexes(plans["count"]), plans["count"]
    if shape == "rare job":
        assert "idx_runs_by_job" in _indexes(plans["count"]), plans["count"]
    if tags and not (f.statuses or f.job_name or f.run_ids):
        # Counting tags reads their index entries, never a run (the foreign key makes it exact).
        assert not any(line.endswith(" on runs") for line in plans["count tag rows"]), plans
    if shape == "selective tag":
        # Counting one tag reads its index, never a run (the foreign key makes it exact).
        count = plans["count tag rows"]
        assert _indexes(count) <= {db.tag_index, "idx_run_tags_run_idx"}, count
        assert db.tag_index in _indexes(count), count
        assert not any(line.endswith(" on runs") for line in count), count
        if db.layout == "047":
            assert any(
                line.strip() == f"Index Only Scan using {db.tag_index} on run_tags"
                for line in count
            ), count


def test_tag_run_group_and_backfill_statements(db: Db) -> None:
    for what, _sql, plan in db.native.runs.other_query_plans():
        scanned = _seq_scans(plan)
        if what.startswith("tag") or what == "run group":
            assert not scanned & {"runs", "run_tags"}, (what, plan)
            assert db.tag_index in _indexes(plan), (what, plan)
        elif "backfills" in what and what.endswith("ids"):
            # Backfills by key: stock's unique key index.
            assert "bulk_actions" not in scanned, (what, plan)


# Statements that read their table whole by design: tables of one row per daemon type (or one
# row), the unfiltered lists, the migration of every job, and the purge of evaluations by
# creation time (no index on it in stock's schema).
CONFIG_SCANS_ALLOWED = {"heartbeats", "delete heartbeats", "run storage id"}
SCHEDULING_SCANS_ALLOWED = {
    "states",
    # By repository and type: no index of stock's leads with the repository, and a type is
    # most of the instigators.
    "states filtered",
    "states by type",
    "jobs states filtered",
    # No index of stock's on jobs.selector_id (as on SQLite).
    "jobs of selector",
    "jobs for migration",
    "purge evaluations",
    "revision",
    "index done",
}


def test_config_statements(db: Db) -> None:
    plans = {p["statement"]: p["plan"] for p in db.native.config.query_plans()}
    assert plans["cursor values"] and not _seq_scans(plans["cursor values"]) & BIG, plans
    assert "idx_kvs_keys_unique" in _indexes(plans["cursor values"]), plans["cursor values"]
    for name, plan in plans.items():
        if name not in CONFIG_SCANS_ALLOWED:
            assert not _seq_scans(plan) & BIG, (name, plan)


def test_scheduling_statements(db: Db) -> None:
    plans = {p["statement"]: p["plan"] for p in db.native.schedules.query_plans()}
    for name, plan in plans.items():
        if name not in SCHEDULING_SCANS_ALLOWED:
            assert not _seq_scans(plan) & BIG, (name, plan)
    for name in ("ticks", "ticks limit", "ticks bounded", "tick summaries limit", "batch ticks"):
        used = _indexes(plans[name])
        assert used & {"idx_tick_selector_timestamp", "idx_job_tick_timestamp"}, (name, plans[name])
    assert "instigators_selector_id_key" in _indexes(plans["state"]), plans["state"]
