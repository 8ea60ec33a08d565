"""Run queries at scale: the plans the core pins, and their answers against stock on one file,
on every index layout a runs.db has at Dagster's head.

The core chooses each run query's access itself (`src/runs/plan.rs`) and pins it in the SQL, so
the plan cannot depend on planner statistics; it pins only indexes the file has, chosen from the
file's real indexes (`RunStore.run_indexes`). The layouts (`runs_scale.LAYOUTS`): stock's fresh
file, and the one Dagster's migration 047 leaves (`idx_run_tags_run_id (key, value, run_id)`,
unique, in place of `idx_run_tags (key, value)`), made here by the migration's own code. These
tests read the `EXPLAIN QUERY PLAN` of every statement the core may run for each shape Dagster
issues, on a file dagster-rs created and one stock created, in each layout, and on ones where
`ANALYZE` left misleading statistics. Then stock and dagster-rs read one file of several
thousand runs (written through the core, plus rows stock's join semantics must see: an orphan
tag and, where the layout allows it, a duplicated tag) with every strategy the planner has
forced in turn, and must give the same runs in the same order; and a store keeps answering as
stock does while another process switches the file between the layouts under it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from dagster_rs import _native
from dagster_rs.bench.runs_scale import (
    LAYOUTS,
    Marks,
    Shape,
    _build,
    _digest,
    fill,
    layout_of,
    seeded_run_ids,
    set_layout,
    shapes,
    snapshot_id,
)
from dagster_rs.storage.convert import runs_filter_spec
from tests.conftest import write_home
from tests.index_layouts import make_layout

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
    "created window": RunsFilter(created_after=T, created_before=T),
    "updated_after + status": RunsFilter(updated_after=T, statuses=[DagsterRunStatus.FAILURE]),
    "updated_before": RunsFilter(updated_before=T),
    "exclude_subruns": RunsFilter(exclude_subruns=True),
    "feed page": RunsFilter(created_before=T, exclude_subruns=True),
    "run_ids": RunsFilter(run_ids=["a", "b"]),
    "queued": RunsFilter(statuses=[DagsterRunStatus.QUEUED]),
    "one status": RunsFilter(statuses=[DagsterRunStatus.FAILURE]),
}
# Shapes whose tags are all there is: with 047's covering index their counts never read a row.
TAGS_ONLY = {"one tag", "two tags", "three tags", "tag list values"}
# The plans are checked on each layout, and on the one a home migrated from an old release has
# (047's index and the tables of the other files, tests/index_layouts.py).
PLAN_LAYOUTS = (*LAYOUTS, "migrated")
# The tag index of each layout: the one every tag statement reads, covering after 047.
TAG_INDEX = {
    "fresh": "idx_run_tags",
    "047": "idx_run_tags_run_id",
    "migrated": "idx_run_tags_run_id",
}

# Counts of shapes with no driver: what they read. `count(*) FROM runs` is SQLite's b-tree count
# over the smallest index (one entry per run, no row); top-level runs are all runs less the
# backfills' (found by idx_runs_by_backfill_id); time bounds alone read idx_run_range; nothing
# indexes snapshot_id (ARCHITECTURE.md, "Run queries at scale").
BTREE_COUNT = "SCAN runs USING COVERING INDEX "
SUBRUNS = "SEARCH runs USING {}INDEX idx_runs_by_backfill_id (backfill_id>?)"
RANGE_SCAN = "SCAN runs USING COVERING INDEX idx_run_range"
DRIVERLESS_COUNTS = {
    "no filter": [BTREE_COUNT],
    "snapshot id": ["SCAN runs"],
    "created_before": [RANGE_SCAN],
    "created_after": [RANGE_SCAN],
    "created window": [RANGE_SCAN],
    "updated_before": [RANGE_SCAN],
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
        RANGE_SCAN,
        "SCALAR SUBQUERY 2",
        SUBRUNS.format(""),
    ],
}
# The covering scan (every condition a time bound or a status): idx_run_range read alone, the
# top runs by id kept.
COVERING = {
    "created_before": [RANGE_SCAN, "USE TEMP B-TREE FOR ORDER BY"],
    "created_after": [RANGE_SCAN, "USE TEMP B-TREE FOR ORDER BY"],
    "created window": [RANGE_SCAN, "USE TEMP B-TREE FOR ORDER BY"],
    "updated_before": [RANGE_SCAN, "USE TEMP B-TREE FOR ORDER BY"],
    "no filter": [RANGE_SCAN, "USE TEMP B-TREE FOR ORDER BY"],
    "updated_after + status": [
        "SEARCH runs USING COVERING INDEX idx_run_range (status=? AND update_timestamp>?)",
        "USE TEMP B-TREE FOR ORDER BY",
    ],
    "queued": [
        "SEARCH runs USING COVERING INDEX idx_run_range (status=?)",
        "USE TEMP B-TREE FOR ORDER BY",
    ],
    "one status": [
        "SEARCH runs USING COVERING INDEX idx_run_range (status=?)",
        "USE TEMP B-TREE FOR ORDER BY",
    ],
    # Aimed at a window of ids only: SQLite reads a row's backfill_id once the index-only
    # conditions passed (its seek of the row is deferred).
    "exclude_subruns": ["SCAN runs USING INDEX idx_run_range", "USE TEMP B-TREE FOR ORDER BY"],
    "feed page": ["SCAN runs USING INDEX idx_run_range", "USE TEMP B-TREE FOR ORDER BY"],
}
PROBE = "SEARCH runs USING INTEGER PRIMARY KEY (rowid>?)"


def plan_lines(store: _native.RunStore, f: RunsFilter, **kw: Any) -> list[tuple[str, str, str]]:
    # A Bloom filter SQLite may add in front of a search (with statistics) changes no access.
    return [
        (what, sql, " ; ".join(p for p in plan if not p.startswith("BLOOM FILTER")))
        for what, sql, plan in store.query_plans(runs_filter_spec(f), 25, **kw)
    ]


def check_plan(layout: str, shape: str, what: str, plan: str) -> None:
    """The plan rules: an index for every table, no full scan of runs or run_tags, no sort where
    the access yields the id order; every tag read through the layout's tag index, covering
    (never a tag row read) where the layout has 047's index."""
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
    if what == "covering":
        assert steps == COVERING[shape], (shape, plan)
        return
    if what == "probe":
        assert steps == [PROBE], (shape, plan)
        return
    if what.startswith("path entries"):
        # The entries a walk read in a stretch of its path, counted from the index alone.
        assert len(steps) == 1 and " USING COVERING INDEX " in steps[0], (shape, plan)
        assert "rowid>? AND rowid<?)" in steps[0] or "AND id>? AND id<?)" in steps[0], plan
        return
    for step in steps:
        assert not step.startswith("SCAN ") or "subquery" in step, (shape, what, plan)
        if step.startswith("SEARCH "):
            assert " USING " in step, (shape, what, plan)
        table = step.split(" ")[1] if step.startswith("SEARCH ") else ""
        if table in ("run_tags", "driver") or table.startswith("tag"):
            index = TAG_INDEX[layout]
            if layout != "fresh":
                assert f" USING COVERING INDEX {index} (key=? AND value=?" in step, (what, plan)
            elif table != "run_tags" or what.startswith("estimate"):
                assert (
                    f" INDEX {index} (key=? AND value=?)" in step
                    or " INDEX idx_run_tags_run_idx (run_id=?)" in step
                ), (what, plan)
    one_status = len(f.statuses or []) == 1 and not (f.updated_after or f.updated_before)
    in_id_order = (
        what.startswith(("window", "count", "estimate"))
        or what in ("ids Job", "rows")
        or (what == "ids Statuses" and one_status)
    )
    if in_id_order:
        assert "TEMP B-TREE" not in plan, (shape, what, plan)
    if layout != "fresh" and shape in TAGS_ONLY and what.startswith(("count Tag", "estimate Tag")):
        # Index-only: the tag's entries give the run ids, the run_id index their runs.
        assert all("COVERING INDEX" in step for step in steps if step.startswith("SEARCH ")), plan


def _stock_made(root: Path) -> Path:
    home = write_home(root, "stock")
    inst = DagsterInstance.from_config(str(home))
    inst.get_runs_count()  # stock creates and stamps runs.db
    inst.dispose()
    return home / "history" / "runs.db"


@pytest.fixture(scope="module")
def layout_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Per layout: a runs.db dagster-rs created, one stock created, and a copy of stock's with
    `ANALYZE` statistics that make the first tag look rare and the runs table tiny."""
    root = tmp_path_factory.mktemp("layouts")
    made = {"rust": root / "rust.db", "stock": _stock_made(root / "stock_home")}
    _native.RunStore(str(made["rust"])).dispose()
    out: dict[str, dict[str, Path]] = {}
    for layout in PLAN_LAYOUTS:
        files = {}
        for origin, path in made.items():
            copy = root / f"{origin}_{layout}.db"
            shutil.copy(path, copy)
            make_layout(copy, layout)
            assert layout_of(str(copy)) == ("047" if layout == "migrated" else layout)
            files[origin] = copy
        analyzed = root / f"analyzed_{layout}.db"
        shutil.copy(files["stock"], analyzed)
        conn = sqlite3.connect(analyzed)
        conn.execute("ANALYZE")
        conn.execute("DELETE FROM sqlite_stat1")
        conn.executemany(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
            [
                ("runs", None, "10"),
                ("runs", "idx_run_status", "10 1"),
                ("runs", "idx_runs_by_job", "10 10 1"),
                ("runs", "idx_run_range", "10 10 10 1"),
                ("run_tags", TAG_INDEX[layout], "100000000 1 1" + " 1" * (layout != "fresh")),
                ("run_tags", "idx_run_tags_run_idx", "100000000 100000 1"),
            ],
        )
        conn.commit()
        conn.close()
        files["analyzed"] = analyzed
        out[layout] = files
    return out


@pytest.fixture(scope="module")
def stores(layout_files: dict[str, dict[str, Path]]) -> Iterator[dict[str, dict[str, Any]]]:
    opened = {
        layout: {origin: _native.RunStore(str(path)) for origin, path in files.items()}
        for layout, files in layout_files.items()
    }
    yield opened
    for by_origin in opened.values():
        for store in by_origin.values():
            store.dispose()


@pytest.mark.parametrize("layout", PLAN_LAYOUTS)
def test_each_layout_is_known_by_its_roles(layout: str, stores: dict[str, Any]) -> None:
    for origin, store in stores[layout].items():
        ix = store.run_indexes()
        assert ix["tag"] == TAG_INDEX[layout], origin
        assert ix["tag_covering"] is (layout != "fresh"), origin
        assert ix["run_id"] == "sqlite_autoindex_runs_1"
        assert (ix["status"], ix["range"], ix["job"], ix["backfill"]) == (
            "idx_run_status",
            "idx_run_range",
            "idx_runs_by_job",
            "idx_runs_by_backfill_id",
        )


@pytest.mark.parametrize("layout", PLAN_LAYOUTS)
@pytest.mark.parametrize("shape", sorted(FILTERS))
@pytest.mark.parametrize("cursor", [False, True])
@pytest.mark.parametrize("ascending", [False, True])
def test_every_statement_is_index_driven(
    layout: str, shape: str, cursor: bool, ascending: bool, stores: dict[str, Any]
) -> None:
    for origin in ("rust", "stock"):
        lines = plan_lines(
            stores[layout][origin], FILTERS[shape], ascending=ascending, cursor=cursor
        )
        assert lines
        for what, sql, plan in lines:
            check_plan(layout, shape, what, plan)
            if layout != "fresh":
                assert "idx_run_tags " not in sql + " ", (what, sql)


@pytest.mark.parametrize("layout", PLAN_LAYOUTS)
def test_plans_hold_with_misleading_statistics(layout: str, stores: dict[str, Any]) -> None:
    """`ANALYZE` statistics (which stock or a user may leave in a file) that make the first
    tag look rare and the runs table tiny change no plan."""
    plain, analyzed = stores[layout]["stock"], stores[layout]["analyzed"]
    for shape, f in FILTERS.items():
        assert plan_lines(analyzed, f) == plan_lines(plain, f), shape
    assert analyzed.other_query_plans() == plain.other_query_plans()


@pytest.mark.parametrize("layout", PLAN_LAYOUTS)
def test_tag_run_group_and_backfill_statements(layout: str, stores: dict[str, Any]) -> None:
    for origin in ("rust", "stock", "analyzed"):
        plans = {
            what: " ; ".join(plan)
            for what, _sql, plan in stores[layout][origin].other_query_plans()
        }
        index = TAG_INDEX[layout]
        # Distinct keys and values: one covering-index seek per key or value returned.
        for what in [w for w in plans if w.startswith(("tag keys", "tag values"))]:
            assert f"SEARCH run_tags USING COVERING INDEX {index}" in plans[what], what
            assert "SCAN run_tags" not in plans[what], what
        covering = "COVERING " if layout != "fresh" else ""
        assert plans["run group"] == (
            f"SEARCH run_tags USING {covering}INDEX {index} (key=? AND value=?) ; "
            "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?) LEFT-JOIN"
        )
        assert "idx_bulk_actions_status (status=?" in plans["backfills status"]
        assert "idx_bulk_actions_status (status=?)" in plans["count backfills status"]
        assert "idx_backfill_tags_backfill_id (backfill_id=?)" in plans["backfills tag"]
        assert "idx_bulk_actions (key=?" in plans["backfills ids"]
        # bulk_actions has no index on job_name: backfills are thousands, not millions.
        assert plans["count backfills job"] == "SCAN bulk_actions"


def test_a_file_without_the_optional_indexes_pins_nothing_it_lacks(
    layout_files: dict[str, dict[str, Path]], tmp_path: Path
) -> None:
    """No Dagster layout lacks these, but the planner must not need them: with every index but
    the unique ones dropped, no statement pins one, and every strategy reads the table."""
    path = tmp_path / "bare.db"
    shutil.copy(layout_files["fresh"]["stock"], path)
    conn = sqlite3.connect(path)
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('runs', "
        "'run_tags') AND sql IS NOT NULL"
    ).fetchall():
        conn.execute(f"DROP INDEX {name}")
    conn.commit()
    conn.close()
    store = _native.RunStore(str(path))
    try:
        ix = store.run_indexes()
        assert ix["tag"] is None and ix["status"] is None and ix["range"] is None
        for shape, f in FILTERS.items():
            for what, sql, _plan in plan_lines(store, f):
                for name in ("idx_run_tags", "idx_run_status", "idx_run_range", "idx_runs_by"):
                    assert name not in sql, (shape, what, sql)
        for what, sql, _plan in store.other_query_plans():
            assert "idx_run_tags" not in sql, (what, sql)
    finally:
        store.dispose()


# -- the same answers as stock on one file, with every strategy forced ----------------------------


@pytest.fixture(scope="module")
def filled_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One home per layout, the same runs in each."""
    base = tmp_path_factory.mktemp("plans_home")
    fill(str(base), N, SEED, lambda line: None)
    conn = sqlite3.connect(base / "history" / "runs.db")
    # Rows only stock's join semantics account for: a tag of a run that is gone, and a run with
    # two matching tag rows (`team` t7 and T7 listed under `team` as ['t7', 'T7']).
    newest = seeded_run_ids(N, SEED)[-3]
    conn.execute("INSERT INTO run_tags (run_id, key, value) VALUES ('gone', 'team', 't7')")
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
    homes = {}
    for layout in LAYOUTS:
        home = base.parent / f"plans_home_{layout}"
        shutil.copytree(base, home)
        db = home / "history" / "runs.db"
        if layout == "fresh":
            # The same tag row twice for one run: a run listed and counted once per row, as
            # in stock. 047's unique index refuses such rows (its migration fails on them).
            conn = sqlite3.connect(db)
            conn.execute(
                "INSERT INTO run_tags (run_id, key, value) VALUES (?, 'x', 'y')", (newest,)
            )
            conn.commit()
            conn.close()
        set_layout(str(db), layout)
        homes[layout] = home
    return homes


def _open(home: Path, kind: str) -> DagsterInstance:
    write_home(home, kind)
    return DagsterInstance.from_config(str(home))


MODES = [
    ("auto", 2000),
    ("auto", 40),
    ("auto", 1),
    ("drive", 2000),
    ("walk", 2000),
    ("scan", 2000),
]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_mixed_tag_semantics_are_present(filled_homes: dict[str, Path], layout: str) -> None:
    stock = _open(filled_homes[layout], "stock")
    try:
        assert stock.get_runs_count(RunsFilter(tags={"x": "y"})) == (2 if layout == "fresh" else 1)
        assert (
            stock.get_runs_count(RunsFilter(tags={"team": ["t7", "T7"]}))
            == stock.get_runs_count(RunsFilter(tags={"team": "t7"})) + 1
        )
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
        Shape(
            "two rows of one run",
            "get_run_records",
            {"filters": {"tags": {"team": ["t7", "T7"]}}, "limit": 30},
        ),
        Shape("count two rows", "get_runs_count", {"filters": {"tags": {"team": ["t7", "T7"]}}}),
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
        Shape(
            "created_after, oldest first",
            "get_run_records",
            {"filters": {"created_after": marks.created(0.6)}, "limit": 25, "ascending": True},
        ),
        Shape(
            "created window",
            "get_run_records",
            {
                "filters": {
                    "created_after": marks.created(0.2),
                    "created_before": marks.created(0.3),
                },
                "limit": 25,
            },
        ),
        Shape(
            "created_before + status",
            "get_run_records",
            {
                "filters": {"created_before": marks.created(0.7), "statuses": ["CANCELED"]},
                "limit": 25,
            },
        ),
    ]
    return shapes(marks) + extra


def _answers(inst: DagsterInstance, cursor: str | None) -> dict[str, Any]:
    out = {}
    for shape in _test_shapes():
        method, kwargs = _build(shape, cursor)
        out[shape.name] = _digest(getattr(inst, method)(**kwargs))
    return out


def _stock_answers(home: Path) -> tuple[str, dict[str, Any]]:
    stock = _open(home, "stock")
    try:
        cursor_shape = next(s for s in _test_shapes() if s.name == "one tag")
        first = stock.get_run_records(**_build(cursor_shape, None)[1])
        cursor = first[-1].dagster_run.run_id
        return cursor, _answers(stock, cursor)
    finally:
        stock.dispose()


@pytest.fixture(scope="module")
def stock_answers(filled_homes: dict[str, Path]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {layout: _stock_answers(home) for layout, home in filled_homes.items()}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("mode,small", MODES, ids=[f"{m}-{s}" for m, s in MODES])
def test_same_answers_as_stock_on_one_file(
    filled_homes: dict[str, Path], stock_answers: dict[str, Any], layout: str, mode: str, small: int
) -> None:
    cursor, expected = stock_answers[layout]
    rust = _open(filled_homes[layout], "rust")
    try:
        rust.run_storage.store.set_planner(mode, small)  # type: ignore[attr-defined]
        got = _answers(rust, cursor)
        for name, answer in expected.items():
            assert got[name] == answer, name
    finally:
        rust.dispose()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("mode,small", MODES, ids=[f"{m}-{s}" for m, s in MODES])
@pytest.mark.parametrize("ascending", [False, True])
def test_paging_to_the_end_matches_stock(
    filled_homes: dict[str, Path], layout: str, mode: str, small: int, ascending: bool
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

    stock = _open(filled_homes[layout], "stock")
    try:
        expected = pages(stock)
    finally:
        stock.dispose()
    assert sum(map(len, expected)) > 97
    rust = _open(filled_homes[layout], "rust")
    try:
        rust.run_storage.store.set_planner(mode, small)  # type: ignore[attr-defined]
        assert pages(rust) == expected
    finally:
        rust.dispose()


# Each index a strategy needs, and what then stands in: older revisions lacked some of them
# (idx_runs_by_job before 035, idx_run_tags_run_idx before 043, idx_runs_by_backfill_id before 045).
OPTIONAL_INDEXES = [
    "idx_run_tags",
    "idx_run_tags_run_idx",
    "idx_run_status",
    "idx_run_range",
    "idx_runs_by_job",
    "idx_runs_by_backfill_id",
]


@pytest.mark.parametrize("dropped", OPTIONAL_INDEXES)
def test_without_an_index_its_strategies_are_not_taken(
    filled_homes: dict[str, Path], dropped: str, tmp_path: Path
) -> None:
    """A file without one of the indexes: no statement pins it, and every answer is stock's."""
    home = tmp_path / "home"
    shutil.copytree(filled_homes["fresh"], home)
    conn = sqlite3.connect(home / "history" / "runs.db")
    conn.execute(f"DROP INDEX {dropped}")
    conn.commit()
    conn.close()
    cursor, expected = _stock_answers(home)
    rust = _open(home, "rust")
    try:
        store = rust.run_storage.store  # type: ignore[attr-defined]
        assert dropped not in store.run_indexes().values()
        for mode, small in (("auto", 2000), ("auto", 40)):
            store.set_planner(mode, small)
            got = _answers(rust, cursor)
            for name, answer in expected.items():
                assert got[name] == answer, (mode, name)
        for shape, f in FILTERS.items():
            for what, sql, _plan in plan_lines(store, f):
                assert f"INDEXED BY {dropped} " not in sql + " ", (shape, what, sql)
    finally:
        rust.dispose()


def test_creation_times_out_of_id_order_answer_as_stock(
    filled_homes: dict[str, Path], tmp_path: Path
) -> None:
    """The walk's handover to the covering scan estimates where a creation bound lies as if
    times followed ids; here they do not (runs added with explicit times, clocks set back):
    every strategy still answers as stock, at every depth, both ways, with a status too."""
    home = tmp_path / "home"
    shutil.copytree(filled_homes["047"], home)
    conn = sqlite3.connect(home / "history" / "runs.db")
    # Newer ids with the oldest times, old ids with the newest: the first runs past a bound
    # are not where a binary search over the ids puts them (the walk 97% down hands over to
    # the covering scan, whose window around the estimate then holds too few of them).
    for first, last, when in (
        (N // 4, N // 4 + 40, "2025-06-01"),
        (N // 20, N // 20 + 400, "2027-01-01"),
    ):
        conn.execute(
            "UPDATE runs SET create_timestamp = ? WHERE id > ? AND id <= ?",
            (f"{when} 00:00:00.000000", first, last),
        )
    conn.commit()
    conn.close()
    marks = Marks(n=N, run_ids=seeded_run_ids(N, SEED))
    cases = []
    for depth in (0.1, 0.5, 0.9, 0.97):
        for limit in (25, 300):
            before = {"created_before": marks.created(1 - depth)}
            after = {"created_after": marks.created(depth)}
            cases += [
                Shape(
                    f"before {depth} {limit}",
                    "get_run_records",
                    {"filters": before, "limit": limit},
                ),
                Shape(
                    f"after {depth} {limit} asc",
                    "get_run_records",
                    {"filters": after, "limit": limit, "ascending": True},
                ),
                Shape(
                    f"before {depth} {limit} canceled",
                    "get_run_records",
                    {"filters": {**before, "statuses": ["CANCELED"]}, "limit": limit},
                ),
                Shape(
                    f"before {depth} {limit} top-level",
                    "get_run_records",
                    {"filters": {**before, "exclude_subruns": True}, "limit": limit},
                ),
            ]

    def answers(inst: DagsterInstance) -> dict[str, Any]:
        return {c.name: _digest(getattr(inst, c.method)(**_build(c, None)[1])) for c in cases}

    stock = _open(home, "stock")
    try:
        expected = answers(stock)
    finally:
        stock.dispose()
    rust = _open(home, "rust")
    store = rust.run_storage.store  # type: ignore[attr-defined]
    taken = set()
    try:
        for mode, small in MODES:
            store.set_planner(mode, small)
            for case in cases:
                method, kwargs = _build(case, None)
                got = _digest(getattr(rust, method)(**kwargs))
                assert got == expected[case.name], (mode, small, case.name)
                taken.add(store.last_strategy())
    finally:
        rust.dispose()
    assert {
        "walk",
        "covering scan",
        "walk, then covering scan",
        "walk, then covering scan, and beyond its window",
    } <= taken


def test_the_planner_refuses_an_unknown_mode(tmp_path: Path) -> None:
    store = _native.RunStore(str(tmp_path / "runs.db"))
    try:
        with pytest.raises(ValueError, match="planner mode"):
            store.set_planner("fastest")  # type: ignore[arg-type]
    finally:
        store.dispose()


def test_a_home_copied_from_stock_plans_the_same(
    filled_homes: dict[str, Path], tmp_path: Path
) -> None:
    """The planner reads no statistics: a copy of the file answers the same as the original."""
    copy = tmp_path / "copy"
    shutil.copytree(filled_homes["fresh"], copy)
    a, b = _open(filled_homes["fresh"], "rust"), _open(copy, "rust")
    try:
        f = RunsFilter(tags={"team": "t7", "sensor": "s27"})
        assert a.get_run_ids(f, limit=10) == b.get_run_ids(f, limit=10)
    finally:
        a.dispose()
        b.dispose()


# -- the layout switched under a live store ------------------------------------------------------


def _switch_in_another_process(db: Path, layout: str) -> None:
    """Migration 047's upgrade or downgrade, run by another process (as `dagster instance
    migrate`, or a downgrade, would be) while the store is open."""
    code = (
        f"from dagster_rs.bench.runs_scale import set_layout; set_layout({str(db)!r}, {layout!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert layout_of(str(db)) == layout


def test_a_live_store_follows_047_and_its_downgrade(
    filled_homes: dict[str, Path], stock_answers: dict[str, Any], tmp_path: Path
) -> None:
    """With every statement cached on the fresh layout, another process upgrades the file to
    047's, then downgrades it: no query fails, every answer is stock's on the file as it is,
    and the store plans from the indexes the file has now."""
    home = tmp_path / "home"
    shutil.copytree(filled_homes["047"], home)
    db = home / "history" / "runs.db"
    set_layout(str(db), "fresh")
    rust = _open(home, "rust")
    store = rust.run_storage.store  # type: ignore[attr-defined]
    try:
        for layout in ("fresh", "047", "fresh"):
            if layout_of(str(db)) != layout:
                _switch_in_another_process(db, layout)
            cursor, expected = stock_answers[layout] if layout == "047" else _stock_answers(home)
            for _ in range(2):  # before and after the store has noticed
                got = _answers(rust, cursor)
                for name, answer in expected.items():
                    assert got[name] == answer, (layout, name)
            assert store.run_indexes()["tag"] == TAG_INDEX[layout]
            plans = store.query_plans(runs_filter_spec(FILTERS["two tags"]), 25)
            for what, _sql, plan in plans:
                check_plan(layout, "two tags", what, " ; ".join(plan))
    finally:
        rust.dispose()


def test_reload_layout_reads_the_indexes_again(tmp_path: Path) -> None:
    """What the storages call after stock's alembic upgrade: the next query plans from the
    indexes the file has now, even before any statement of the store has met the change (until
    then the store knows the layout it read last)."""
    home = tmp_path / "home"
    core = _native.DagsterInstance(str(home), "off")
    store = core.runs
    db = home / "history" / "runs.db"
    assert store.run_indexes()["tag"] == "idx_run_tags"
    set_layout(str(db), "047")
    assert store.run_indexes()["tag"] == "idx_run_tags"
    store.reload_layout()
    assert store.run_indexes()["tag"] == "idx_run_tags_run_id"
    set_layout(str(db), "fresh")
    core.reload_layouts()
    assert store.run_indexes()["tag"] == "idx_run_tags"
    assert store.runs_count(runs_filter_spec(FILTERS["two tags"])) == 0
    core.events.reload_layouts()
    core.schedules.reload_layout()
    core.dispose()


def test_queries_racing_layout_switches_never_fail(
    filled_homes: dict[str, Path], tmp_path: Path
) -> None:
    """Threads querying tags nonstop while another process switches the layout back and forth:
    every answer is the one the data gives, whichever layout the file has at that moment."""
    home = tmp_path / "home"
    shutil.copytree(filled_homes["047"], home)
    db = home / "history" / "runs.db"
    stock = _open(home, "stock")
    try:
        f = RunsFilter(tags={"team": "t7", "sensor": "s27"})
        expected = (
            [r.dagster_run.run_id for r in stock.get_run_records(f, limit=10)],
            stock.get_runs_count(RunsFilter(tags={"team": "t7"})),
            stock.get_run_tag_keys(),
        )
    finally:
        stock.dispose()
    rust = _open(home, "rust")
    failures: list[BaseException] = []
    done = threading.Event()

    def query() -> None:
        while not done.is_set():
            try:
                got = (
                    [r.dagster_run.run_id for r in rust.get_run_records(f, limit=10)],
                    rust.get_runs_count(RunsFilter(tags={"team": "t7"})),
                    rust.get_run_tag_keys(),
                )
                assert got == expected
            except BaseException as e:  # noqa: BLE001 - reported below
                failures.append(e)
                return

    threads = [threading.Thread(target=query) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for layout in ("fresh", "047") * 3:
            _switch_in_another_process(db, layout)
    finally:
        done.set()
        for t in threads:
            t.join()
        rust.dispose()
    assert not failures, failures[0]
