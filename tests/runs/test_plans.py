"""Run queries at scale: the plans the core pins, and their answers against stock on one file.

The core chooses each run query's access itself (`src/runs/plan.rs`) and pins it in the SQL, so
the plan cannot depend on planner statistics or on who created the file. These tests read the
`EXPLAIN QUERY PLAN` of every statement the core may run for each shape Dagster issues, on a file
dagster-rs created, on one stock created, and on one where `ANALYZE` left misleading statistics.
Then stock and dagster-rs read one file of several thousand runs (written through the core, plus
rows stock's join semantics must see: an orphan tag and a duplicated tag) with every strategy the
planner has forced in turn, and must give the same runs in the same order.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from dagster_rs import _native
from dagster_rs.bench.runs_scale import (
    Marks,
    Shape,
    _build,
    _digest,
    fill,
    seeded_run_ids,
    shapes,
    snapshot_id,
)
from dagster_rs.storage.convert import runs_filter_spec
from tests.conftest import write_home

N = 6_000
SEED = 7
T = datetime(2026, 1, 2)

# Every filter shape of the run lists (the scale benchmark's, by name) and a few more corners.
FILTERS: dict[str, RunsFilter] = {
    "no filter": RunsFilter(),
    "one tag": RunsFilter(tags={"team": "t7"}),
    "two tags": RunsFilter(tags={"team": "t7", "sensor": "s27"}),
    "three tags": RunsFilter(tags={"team": "t7", "sensor": "s27", "x": "y"}),
    "tag list values": RunsFilter(tags={"team": ["t1", "t2"]}),
    "tag + status": RunsFilter(tags={"team": "t7"}, statuses=[DagsterRunStatus.FAILURE]),
    "tag + job": RunsFilter(tags={"team": "t7"}, job_name="job_07"),
    "statuses + job": RunsFilter(
        statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE], job_name="job_07"
    ),
    "snapshot id": RunsFilter(snapshot_id=snapshot_id("job_07")),
    "created_before": RunsFilter(created_before=T),
    "created_after": RunsFilter(created_after=T),
    "updated_after + status": RunsFilter(updated_after=T, statuses=[DagsterRunStatus.FAILURE]),
    "updated_before": RunsFilter(updated_before=T),
    "exclude_subruns": RunsFilter(exclude_subruns=True),
    "feed page": RunsFilter(created_before=T, exclude_subruns=True),
    "run_ids": RunsFilter(run_ids=["a", "b"]),
    "queued": RunsFilter(statuses=[DagsterRunStatus.QUEUED]),
    "one status": RunsFilter(statuses=[DagsterRunStatus.FAILURE]),
}

# Counts of shapes with no driver: what they read. `count(*) FROM runs` is SQLite's b-tree count
# over the smallest index (one entry per run, no row); top-level runs are all runs less the
# backfills' (found by idx_runs_by_backfill_id); time bounds alone read idx_run_range; nothing
# indexes snapshot_id (ARCHITECTURE.md, "Run queries at scale").
BTREE_COUNT = "SCAN runs USING COVERING INDEX "
SUBRUNS = "SEARCH runs USING {}INDEX idx_runs_by_backfill_id (backfill_id>?)"
DRIVERLESS_COUNTS = {
    "no filter": [BTREE_COUNT],
    "snapshot id": ["SCAN runs"],
    "created_before": ["SCAN runs USING COVERING INDEX idx_run_range"],
    "created_after": ["SCAN runs USING COVERING INDEX idx_run_range"],
    "updated_before": ["SCAN runs USING COVERING INDEX idx_run_range"],
    "exclude_subruns": [
        "SCAN CONSTANT ROW",
        "SCALAR SUBQUERY 1",
        BTREE_COUNT,
        "SCALAR SUBQUERY 2",
        SUBRUNS.format("COVERING "),
    ],
    "feed page": [
        "SCAN CONSTANT ROW",
        "SCALAR SUBQUERY 1",
        "SCAN runs USING COVERING INDEX idx_run_range",
        "SCALAR SUBQUERY 2",
        SUBRUNS.format(""),
    ],
}


def plan_lines(store: _native.RunStore, f: RunsFilter, **kw: Any) -> list[tuple[str, str, str]]:
    # A Bloom filter SQLite may add in front of a search (with statistics) changes no access.
    return [
        (what, sql, " ; ".join(p for p in plan if not p.startswith("BLOOM FILTER")))
        for what, sql, plan in store.query_plans(runs_filter_spec(f), 25, **kw)
    ]


def check_plan(shape: str, what: str, plan: str) -> None:
    """The plan rules: an index for every table, no full scan of runs or run_tags, no sort where
    the access yields the id order."""
    f = FILTERS[shape]
    steps = plan.split(" ; ")
    if what == "bounds":
        # min(id) and max(id), each read at one end of the table's b-tree.
        assert plan == (
            "SCAN CONSTANT ROW ; SCALAR SUBQUERY 1 ; SEARCH runs ; SCALAR SUBQUERY 2 ; SEARCH runs"
        ), plan
        return
    if what == "count":
        expected = DRIVERLESS_COUNTS[shape]
        assert len(steps) == len(expected), (shape, plan)
        for step, want in zip(steps, expected, strict=True):
            assert step == want or (want == BTREE_COUNT and step.startswith(want)), (shape, plan)
        return
    for step in steps:
        assert not step.startswith("SCAN ") or "subquery" in step, (shape, what, plan)
        if step.startswith("SEARCH "):
            assert " USING " in step, (shape, what, plan)
    one_status = len(f.statuses or []) == 1 and not (f.updated_after or f.updated_before)
    in_id_order = (
        what.startswith(("window", "count", "estimate"))
        or what in ("ids Job", "rows")
        or (what == "ids Statuses" and one_status)
    )
    if in_id_order:
        assert "TEMP B-TREE" not in plan, (shape, what, plan)


@pytest.fixture(scope="module")
def stock_created_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_native.RunStore]:
    home = write_home(tmp_path_factory.mktemp("stock_plans"), "stock")
    inst = DagsterInstance.from_config(str(home))
    inst.get_runs_count()  # stock creates and stamps runs.db
    inst.dispose()
    store = _native.RunStore(str(home / "history" / "runs.db"))
    yield store
    store.dispose()


@pytest.mark.parametrize("shape", sorted(FILTERS))
@pytest.mark.parametrize("cursor", [False, True])
@pytest.mark.parametrize("ascending", [False, True])
def test_every_statement_is_index_driven(
    shape: str, cursor: bool, ascending: bool, tmp_path: Path, stock_created_store: Any
) -> None:
    own = _native.RunStore(str(tmp_path / "runs.db"))
    try:
        for store in (own, stock_created_store):
            lines = plan_lines(store, FILTERS[shape], ascending=ascending, cursor=cursor)
            assert lines
            for what, _sql, plan in lines:
                check_plan(shape, what, plan)
    finally:
        own.dispose()


def test_plans_hold_with_misleading_statistics(tmp_path: Path) -> None:
    """`ANALYZE` statistics (which stock or a user may leave in a file) that make the first
    tag look rare and the runs table tiny change no plan."""
    path = tmp_path / "runs.db"
    store = _native.RunStore(str(path))
    before = {s: plan_lines(store, f) for s, f in FILTERS.items()}
    other_before = store.other_query_plans()
    store.dispose()
    conn = sqlite3.connect(path)
    conn.execute("ANALYZE")
    conn.execute("DELETE FROM sqlite_stat1")
    conn.executemany(
        "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
        [
            ("runs", None, "10"),
            ("runs", "idx_run_status", "10 1"),
            ("runs", "idx_runs_by_job", "10 10 1"),
            ("run_tags", "idx_run_tags", "100000000 1 1"),
            ("run_tags", "idx_run_tags_run_idx", "100000000 100000 1"),
        ],
    )
    conn.commit()
    conn.close()
    store = _native.RunStore(str(path))
    try:
        assert {s: plan_lines(store, f) for s, f in FILTERS.items()} == before
        assert store.other_query_plans() == other_before
    finally:
        store.dispose()


def test_tag_run_group_and_backfill_statements(stock_created_store: Any) -> None:
    plans = {what: " ; ".join(plan) for what, _sql, plan in stock_created_store.other_query_plans()}
    # Distinct keys and values: one covering-index seek per key or value returned.
    for what in [w for w in plans if w.startswith(("tag keys", "tag values"))]:
        assert "SEARCH run_tags USING COVERING INDEX idx_run_tags" in plans[what], what
        assert "SCAN run_tags" not in plans[what], what
    assert plans["run group"] == (
        "SEARCH run_tags USING INDEX idx_run_tags (key=? AND value=?) ; "
        "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?) LEFT-JOIN"
    )
    assert "idx_bulk_actions_status (status=?" in plans["backfills status"]
    assert "idx_bulk_actions_status (status=?)" in plans["count backfills status"]
    assert "idx_backfill_tags_backfill_id (backfill_id=?)" in plans["backfills tag"]
    assert "idx_bulk_actions (key=?" in plans["backfills ids"]
    # bulk_actions has no index on job_name: backfills are thousands, not millions.
    assert plans["count backfills job"] == "SCAN bulk_actions"


# -- the same answers as stock on one file, with every strategy forced ----------------------------


@pytest.fixture(scope="module")
def filled_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("plans_home")
    fill(str(home), N, SEED, lambda line: None)
    conn = sqlite3.connect(home / "history" / "runs.db")
    # Rows only stock's join semantics account for: a tag of a run that is gone, and a tag row
    # repeated for one run (a run with it is listed and counted once per row, as in stock).
    newest = seeded_run_ids(N, SEED)[-3]
    conn.execute("INSERT INTO run_tags (run_id, key, value) VALUES ('gone', 'team', 't7')")
    conn.execute("INSERT INTO run_tags (run_id, key, value) VALUES (?, 'x', 'y')", (newest,))
    conn.execute("INSERT INTO run_tags (run_id, key, value) VALUES (?, 'x', 'y')", (newest,))
    conn.execute("INSERT INTO run_tags (run_id, key, value) VALUES (?, 'team', 'T7')", (newest,))
    # Two tags on half of the runs each that meet only on the 50 oldest: taken as independent
    # they promise a match every 4 runs, so a limit query walks from the newest, overruns, and
    # switches to a driver for the rest.
    conn.execute(
        "INSERT INTO run_tags (run_id, key, value) SELECT run_id, 'pa', '1' FROM runs "
        "WHERE id <= ?",
        (N // 2,),
    )
    conn.execute(
        "INSERT INTO run_tags (run_id, key, value) SELECT run_id, 'pb', '1' FROM runs "
        "WHERE id <= 50 OR id > ?",
        (N // 2 + 50,),
    )
    conn.commit()
    conn.close()
    return home


def _open(home: Path, kind: str) -> DagsterInstance:
    write_home(home, kind)
    return DagsterInstance.from_config(str(home))


MODES = [("auto", 2000), ("auto", 40), ("auto", 1), ("drive", 2000), ("walk", 2000)]


def test_mixed_tag_semantics_are_present(filled_home: Path) -> None:
    stock = _open(filled_home, "stock")
    try:
        assert stock.get_runs_count(RunsFilter(tags={"x": "y"})) == 2
    finally:
        stock.dispose()


def _test_shapes() -> list[Shape]:
    marks = Marks(n=N, run_ids=seeded_run_ids(N, SEED))
    extra = [
        Shape(
            "two tags asc",
            "get_run_records",
            {"filters": {"tags": {"team": "t7", "sensor": "s27"}}, "limit": 7, "ascending": True},
        ),
        Shape("duplicated tag", "get_run_records", {"filters": {"tags": {"x": "y"}}, "limit": 5}),
        Shape("count duplicated tag", "get_runs_count", {"filters": {"tags": {"x": "y"}}}),
        Shape("tag, no limit", "get_run_records", {"filters": {"tags": {"sensor": "s3"}}}),
        Shape(
            "rare pair, limit 3",
            "get_run_records",
            {"filters": {"tags": {"team": "t19", "sensor": "s199"}}, "limit": 3},
        ),
        Shape(
            "get_run_tags team prefix T",
            "get_run_tags",
            {"tag_keys": ["team"], "value_prefix": "T7"},
        ),
        Shape(
            "get_run_tags wildcard",
            "get_run_tags",
            {"tag_keys": ["sensor", "team"], "value_prefix": "s_9", "limit": 5},
        ),
        Shape("get_run_tags many keys", "get_run_tags", {"tag_keys": ["team", "x", "team"]}),
        Shape("get_run_ids tag", "get_run_ids", {"filters": {"tags": {"team": "t3"}}, "limit": 9}),
        Shape(
            "anti-correlated pair",
            "get_run_records",
            {"filters": {"tags": {"pa": "1", "pb": "1"}}, "limit": 25},
        ),
        Shape(
            "anti-correlated pair asc",
            "get_run_records",
            {"filters": {"tags": {"pa": "1", "pb": "1"}}, "limit": 25, "ascending": True},
        ),
        Shape(
            "count anti-correlated pair",
            "get_runs_count",
            {"filters": {"tags": {"pa": "1", "pb": "1"}}},
        ),
    ]
    return shapes(marks) + extra


@pytest.mark.parametrize("mode,small", MODES, ids=[f"{m}-{s}" for m, s in MODES])
def test_same_answers_as_stock_on_one_file(filled_home: Path, mode: str, small: int) -> None:
    stock = _open(filled_home, "stock")
    answers: dict[str, Any] = {}
    cursor_shape = next(s for s in _test_shapes() if s.name == "one tag")
    try:
        first = stock.get_run_records(**_build(cursor_shape, None)[1])
        cursor = first[-1].dagster_run.run_id
        for shape in _test_shapes():
            method, kwargs = _build(shape, cursor)
            answers[shape.name] = _digest(getattr(stock, method)(**kwargs))
    finally:
        stock.dispose()
    rust = _open(filled_home, "rust")
    try:
        rust.run_storage.store.set_planner(mode, small)  # type: ignore[attr-defined]
        for shape in _test_shapes():
            method, kwargs = _build(shape, cursor)
            got = _digest(getattr(rust, method)(**kwargs))
            assert got == answers[shape.name], shape.name
    finally:
        rust.dispose()


@pytest.mark.parametrize("mode,small", MODES, ids=[f"{m}-{s}" for m, s in MODES])
@pytest.mark.parametrize("ascending", [False, True])
def test_paging_to_the_end_matches_stock(
    filled_home: Path, mode: str, small: int, ascending: bool
) -> None:
    """Cursor paging through every run of a tag, both ways, page size 97."""
    f = RunsFilter(tags={"team": "t11"}, statuses=[DagsterRunStatus.SUCCESS])

    def pages(inst: DagsterInstance) -> list[list[str]]:
        out, cursor = [], None
        while True:
            page = inst.get_run_records(f, limit=97, cursor=cursor, ascending=ascending)
            if not page:
                return out
            out.append([r.dagster_run.run_id for r in page])
            cursor = page[-1].dagster_run.run_id

    stock = _open(filled_home, "stock")
    try:
        expected = pages(stock)
    finally:
        stock.dispose()
    assert sum(map(len, expected)) > 97
    rust = _open(filled_home, "rust")
    try:
        rust.run_storage.store.set_planner(mode, small)  # type: ignore[attr-defined]
        assert pages(rust) == expected
    finally:
        rust.dispose()


def test_the_planner_refuses_an_unknown_mode(tmp_path: Path) -> None:
    store = _native.RunStore(str(tmp_path / "runs.db"))
    try:
        with pytest.raises(ValueError, match="planner mode"):
            store.set_planner("fastest")  # type: ignore[arg-type]
    finally:
        store.dispose()


def test_a_home_copied_from_stock_plans_the_same(filled_home: Path, tmp_path: Path) -> None:
    """The planner reads no statistics: a copy of the file answers the same as the original."""
    copy = tmp_path / "copy"
    shutil.copytree(filled_home, copy)
    a, b = _open(filled_home, "rust"), _open(copy, "rust")
    try:
        f = RunsFilter(tags={"team": "t7", "sensor": "s27"})
        assert a.get_run_ids(f, limit=10) == b.get_run_ids(f, limit=10)
    finally:
        a.dispose()
        b.dispose()
