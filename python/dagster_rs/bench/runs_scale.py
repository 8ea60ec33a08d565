"""`python -m dagster_rs.bench runs --scale N`: every run-list query shape at N runs.

One `runs.db` of N runs is written once, through dagster-rs (`RunStore.add_runs`, transactions of
5,000 runs; stock would take hours to write a million runs here, and the files are the same either
way). Then every query shape that Dagster's UI, GraphQL and daemons issue is read by stock and by
dagster-rs, each side in a process of its own opened on that home (each gets its own cold caches
and Python heap), median of several calls after a warm-up, once per index layout (`LAYOUTS`): the
fresh file, then the same file converted by migration 047's own code (what `dagster instance
migrate` does to every home made before Dagster 1.9.3: a unique `idx_run_tags_run_id (key, value,
run_id)` in place of `idx_run_tags (key, value)`). Each shape is also timed at its floor: the same
call to the core without building Dagster objects (raw rows, no deserialization). Both sides'
answers are compared (run ids in order, counts, tag values) on each layout before the times are
reported.

The data (deterministic for a seed): 50 jobs, each run with its job's snapshot and repository
origin; statuses SUCCESS 75%, FAILURE 20%, CANCELED 5%, the newest 10 runs QUEUED and the 10
before STARTED; tags `team` (20 values), `sensor` (200 values), a unique `dagster/run_key`; 10%
of the runs are backfill subruns (`dagster/backfill` over 1,000 backfills, with partition tags),
2% are re-executions (`dagster/root_run_id` / `dagster/parent_run_id`); create times one every
10 s, newest last. 1,000 backfills (bulk_actions) with statuses, job names and tags.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

JOBS = 50
TEAMS = 20
# How far down the history (newest first) the `created_before` shapes start.
CREATED_DEPTHS = (0.01, 0.10, 0.50, 0.90)
SENSORS = 200
BACKFILLS = 1_000
CHUNK = 5_000
BASE_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)
RUN_KEY_TAG = "dagster/run_key"


def _ts(i: int) -> datetime:
    return BASE_TIME + timedelta(seconds=10 * i)


def seeded_run_ids(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(n)]


@dataclass(frozen=True)
class Marks:
    """Values the shapes query, derived from the data's parameters (no need to read them back)."""

    n: int
    run_ids: list[str]

    def created(self, fraction: float) -> str:
        return _ts(int(self.n * fraction)).isoformat()

    def created_from_top(self, runs: int) -> str:
        return _ts(self.n - runs).isoformat()

    @property
    def some_ids(self) -> list[str]:
        step = max(1, self.n // 300)
        return self.run_ids[::step][:300]

    @property
    def reexecuted(self) -> str:
        # The newest re-execution (every 50th run from 100 on re-executes an earlier run).
        return self.run_ids[((self.n - 1) // 50) * 50]

    @property
    def newest_key(self) -> str:
        return f"key-{self.n - 1000}"


def snapshot_id(job: str) -> str:
    """The job snapshot id every run of `job` references (a fake, snapshot-shaped id)."""
    return f"{zlib.crc32(job.encode()):08x}" * 5


# -- index layouts -------------------------------------------------------------------------------

# The index layouts a runs.db has at Dagster's head revision: stock's fresh file, and the one
# migration 047 (`add_run_tags_run_id_idx`, run by `dagster instance migrate` on every home made
# before Dagster 1.9.3) leaves: a unique `idx_run_tags_run_id (key, value, run_id)` in place of
# `idx_run_tags (key, value)`.
LAYOUTS = ("fresh", "047")
MIGRATION_047 = "dagster._core.storage.alembic.versions.047_add_run_tags_run_id_idx"


def set_layout(db_path: str, layout: str) -> None:
    """Bring runs.db to `layout` with migration 047's own code: its `upgrade()` for "047", its
    `downgrade()` for "fresh", run by alembic on the file as `dagster instance migrate` runs it.
    Either is a no-op on a file already there (047 checks each index first)."""
    import importlib

    import sqlalchemy as sa
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    migration = importlib.import_module(MIGRATION_047)
    engine = sa.create_engine(f"sqlite:///{db_path}", poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            with Operations.context(MigrationContext.configure(conn)):
                if layout == "047":
                    migration.upgrade()
                else:
                    migration.downgrade()
    finally:
        engine.dispose()


def layout_of(db_path: str) -> str:
    """Which of LAYOUTS a runs.db has, by its run_tags indexes."""
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        names = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'run_tags'"
            )
        }
    finally:
        conn.close()
    if "idx_run_tags_run_id" in names and "idx_run_tags" not in names:
        return "047"
    if "idx_run_tags" in names and "idx_run_tags_run_id" not in names:
        return "fresh"
    return "other"


# -- filling -------------------------------------------------------------------------------------


def write_runs(
    store: Any,
    ids: Sequence[str],
    rng: random.Random,
    jobs: Sequence[str],
    repo: Any,
    tags_for: Callable[[int, str], dict[str, str]],
    ts: Callable[[int], datetime],
    progress: Callable[[str], None],
    every: int,
    label: str,
) -> float:
    """Add a run per id through the core (`RunStore.add_runs`, CHUNK at a time), each with its
    job's snapshot and repository origin; the newest 10 QUEUED, the 10 before STARTED, the rest
    SUCCESS 75% / FAILURE 20% / CANCELED 5%. Per run, `rng` draws the job, then the status, then
    `tags_for(i, job)` its tags. Returns the seconds the runs took."""
    from dagster import DagsterRun, DagsterRunStatus

    from dagster_rs.storage.convert import sql_datetime
    from dagster_rs.storage.run_storage import run_spec

    snapshots = {job: snapshot_id(job) for job in jobs}
    for job, snap in snapshots.items():
        store.add_snapshot(snap, zlib.compress(json.dumps({"job": job}).encode()), "PIPELINE")
    statuses = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
    n = len(ids)
    started = time.perf_counter()
    batch: list[Any] = []
    for i in range(n):
        job = jobs[rng.randrange(len(jobs))]
        if i >= n - 10:
            status = DagsterRunStatus.QUEUED
        elif i >= n - 20:
            status = DagsterRunStatus.STARTED
        else:
            status = rng.choices(statuses, (75, 20, 5))[0]
        run = DagsterRun(
            job_name=job,
            run_id=ids[i],
            status=status,
            tags=tags_for(i, job),
            job_snapshot_id=snapshots[job],
            remote_job_origin=repo.get_job_origin(job),
        )
        batch.append(run_spec(run, sql_datetime(ts(i))))
        if len(batch) == CHUNK or i == n - 1:
            store.add_runs(batch)
            batch = []
            if (i + 1) % every == 0:
                progress(f"  {label}filled {i + 1:,} runs ({time.perf_counter() - started:.0f} s)")
    return time.perf_counter() - started


def fill(home: str, n: int, seed: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Write N runs (and the backfills) into `home` through the core; return fill facts."""
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.remote_origin import (
        GrpcServerCodeLocationOrigin,
        RemotePartitionSetOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.storage.tags import (
        BACKFILL_ID_TAG,
        PARENT_RUN_ID_TAG,
        PARTITION_NAME_TAG,
        PARTITION_SET_TAG,
        ROOT_RUN_ID_TAG,
    )

    from dagster_rs import _native
    from dagster_rs.storage.run_storage import backfill_spec

    rng = random.Random(seed)
    ids = seeded_run_ids(n, seed)
    store = _native.RunStore(os.path.join(home, "history", "runs.db"), "off")
    repo = RemoteRepositoryOrigin(
        GrpcServerCodeLocationOrigin(host="localhost", port=4266, location_name="scale"),
        "scale_repository",
    )
    jobs = [f"job_{j:02d}" for j in range(JOBS)]

    def tags_for(i: int, job: str) -> dict[str, str]:
        tags = {
            "team": f"t{rng.randrange(TEAMS)}",
            "sensor": f"s{rng.randrange(SENSORS)}",
            RUN_KEY_TAG: f"key-{i}",
        }
        if i % 10 == 3:
            tags[BACKFILL_ID_TAG] = f"bf{rng.randrange(BACKFILLS):04d}"
            tags[PARTITION_SET_TAG] = f"{job}_partition_set"
            tags[PARTITION_NAME_TAG] = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"
        if i % 50 == 0 and i >= 100:
            root = ids[i - 100]
            tags[ROOT_RUN_ID_TAG] = root
            tags[PARENT_RUN_ID_TAG] = root
        return tags

    seconds = write_runs(
        store, ids, rng, jobs, repo, tags_for, _ts, progress, every=CHUNK * 20, label=""
    )
    backfill_statuses = [BulkActionStatus.COMPLETED, BulkActionStatus.REQUESTED]
    backfill_statuses += [BulkActionStatus.FAILED, BulkActionStatus.CANCELED]
    for b in range(BACKFILLS):
        job = jobs[b % JOBS]
        backfill = PartitionBackfill(
            backfill_id=f"bf{b:04d}",
            status=backfill_statuses[b % 4],
            from_failure=False,
            tags={"team": f"t{b % TEAMS}"},
            backfill_timestamp=_ts(b * (n // BACKFILLS)).timestamp(),
            partition_set_origin=RemotePartitionSetOrigin(
                repository_origin=repo, partition_set_name=f"{job}_partition_set"
            ),
            partition_names=["a"],
            reexecution_steps=None,
            asset_selection=None,
        )
        store.add_backfill(backfill_spec(backfill))
    store.dispose()
    return {"runs": n, "seconds": seconds, "runs_per_second": n / seconds}


# -- the shapes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    name: str
    method: str  # an instance method
    kwargs: dict[str, Any]  # RunsFilter fields under "filters", other keyword arguments


def shapes(m: Marks) -> list[Shape]:
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    team, sensor = {"team": "t7"}, {"sensor": "s27"}
    two = {**team, **sensor}
    out: list[Shape] = []

    def listed(name: str, filters: dict[str, Any] | None, limit: int | None = 25, **kw: Any):
        out.append(Shape(name, "get_run_records", {"filters": filters, "limit": limit, **kw}))
        if limit is not None and "cursor" not in kw and not kw.get("ascending"):
            out.append(Shape(f"count {name}", "get_runs_count", {"filters": filters}))

    listed("no filter", None)
    listed("one tag", {"tags": team}, limit=50)
    listed("two tags", {"tags": two})
    listed("three tags", {"tags": {**two, ".dagster/repository": "scale_repository@scale"}})
    listed("tag list values", {"tags": {"team": ["t1", "t2", "t3"]}})
    listed("tag + status", {"tags": team, "statuses": ["FAILURE"]})
    listed("tag + job", {"tags": team, "job_name": "job_07"})
    listed("statuses + job", {"statuses": ["SUCCESS", "FAILURE"], "job_name": "job_07"})
    listed("snapshot id", {"snapshot_id": snapshot_id("job_07")})
    # The runs feed pages by created_before: page 5 of 25 runs (as users page), and halfway
    # down the whole history (nothing but the rows above it can tell where it starts).
    listed("created_before, feed page 5", {"created_before": m.created_from_top(125)})
    # Deeper down, nothing indexes create_timestamp first: the walk passes every newer run,
    # the covering scan of idx_run_range costs the same at any depth.
    for depth in CREATED_DEPTHS:
        listed(
            f"created_before, {depth:.0%} down the history",
            {"created_before": m.created(1 - depth)},
        )
    listed("created_after", {"created_after": m.created(0.9)})
    # Every run was last updated while the file was filled: this one matches all FAILURE runs.
    listed("updated_after + status", {"updated_after": m.created(0.0), "statuses": ["FAILURE"]})
    listed("exclude_subruns", {"exclude_subruns": True})
    listed(
        "feed page 5 (created_before + exclude_subruns)",
        {"created_before": m.created_from_top(125), "exclude_subruns": True},
    )
    listed(
        "feed, half the history (created_before + exclude_subruns)",
        {"created_before": m.created(0.5), "exclude_subruns": True},
    )
    listed("unique tag (sensor run key)", {"tags": {RUN_KEY_TAG: m.newest_key}})
    listed(
        "backfill tag + statuses",
        {"tags": {BACKFILL_ID_TAG: "bf0042"}, "statuses": ["QUEUED", "STARTED", "FAILURE"]},
    )
    listed("queued, oldest first", {"statuses": ["QUEUED"]}, limit=50, ascending=True)
    listed("run_ids (300)", {"run_ids": m.some_ids}, limit=None)
    listed("one tag, page 2 (cursor)", {"tags": team}, cursor="@cursor")
    out.append(Shape("get_run_tags team", "get_run_tags", {"tag_keys": ["team"]}))
    out.append(
        Shape(
            "get_run_tags sensor prefix",
            "get_run_tags",
            {"tag_keys": ["sensor"], "value_prefix": "s2", "limit": 20},
        )
    )
    out.append(Shape("get_run_tag_keys", "get_run_tag_keys", {}))
    out.append(Shape("get_run_group", "get_run_group", {"run_id": m.reexecuted}))
    for name, f in (
        ("backfills status", {"statuses": ["REQUESTED"]}),
        ("backfills tag", {"tags": {"team": "t3"}}),
        ("backfills job", {"job_name": "job_07"}),
    ):
        out.append(Shape(name, "get_backfills", {"filters": f, "limit": 25}))
        out.append(Shape(f"count {name}", "get_backfills_count", {"filters": f}))
    return out


# -- the worker: one side, in its own process ----------------------------------------------------


def _build(shape: Shape, cursor: str | None) -> tuple[str, dict[str, Any]]:
    from dagster import RunsFilter
    from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

    kwargs = dict(shape.kwargs)
    f = kwargs.get("filters")
    if shape.method.startswith("get_backfills"):
        if f is not None:
            f = dict(f)
            if "statuses" in f:
                f["statuses"] = [BulkActionStatus(s) for s in f["statuses"]]
            kwargs["filters"] = BulkActionsFilter(**f)
    elif "filters" in kwargs:
        if f is not None:
            f = dict(f)
            if "statuses" in f:
                from dagster import DagsterRunStatus

                f["statuses"] = [DagsterRunStatus(s) for s in f["statuses"]]
            for key in ("created_before", "created_after", "updated_after"):
                if key in f:
                    f[key] = datetime.fromisoformat(f[key])
            kwargs["filters"] = RunsFilter(**f)
    if kwargs.get("cursor") == "@cursor":
        kwargs["cursor"] = cursor
    return shape.method, kwargs


def _digest(value: Any) -> Any:
    """What both sides must agree on: run ids in order, counts, tag values."""
    if isinstance(value, int):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return [value[0], [r.run_id for r in value[1]]]  # get_run_group
    out = []
    for item in value:
        if hasattr(item, "dagster_run"):
            out.append(item.dagster_run.run_id)
        elif hasattr(item, "backfill_id"):
            out.append(item.backfill_id)
        elif isinstance(item, tuple):
            out.append([item[0], sorted(item[1])])
        else:
            out.append(item)
    return out


def _time(fn: Callable[[], Any], max_calls: int, max_seconds: float) -> tuple[float, int]:
    fn()  # warm-up
    times: list[float] = []
    spent = 0.0
    while len(times) < 3 or (len(times) < max_calls and spent < max_seconds):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
    return statistics.median(times) * 1e3, len(times)


def _floor(inst: Any, method: str, kwargs: Mapping[str, Any]) -> Callable[[], Any] | None:
    """The core call behind an instance method, with no Dagster object built from its rows."""
    from dagster_rs.storage.convert import backfill_filter_spec, run_query_spec, runs_filter_spec

    storage = inst.run_storage
    store = getattr(storage, "store", None)
    if store is None:
        return None
    if method == "get_run_records":
        query = run_query_spec(
            kwargs.get("filters"),
            kwargs.get("cursor"),
            kwargs.get("limit"),
            ascending=bool(kwargs.get("ascending")),
        )
        return lambda: store.run_records(query)
    if method == "get_runs_count":
        spec = runs_filter_spec(kwargs.get("filters"))
        return lambda: store.runs_count(spec)
    if method == "get_run_tags":
        keys, prefix = list(kwargs["tag_keys"]), kwargs.get("value_prefix")
        return lambda: store.run_tags(keys, prefix, kwargs.get("limit"))
    if method == "get_run_tag_keys":
        return store.run_tag_keys
    if method == "get_backfills":
        bspec = backfill_filter_spec(kwargs.get("filters"))
        return lambda: store.backfills(bspec, None, kwargs.get("limit"))
    if method == "get_backfills_count":
        bspec = backfill_filter_spec(kwargs.get("filters"))
        if bspec is not None and bspec.get("tags"):
            # Stock counts tag matches on the bodies: the core reads every candidate body
            # (`RustRunStorage.get_backfills_count`), then Python matches them.
            candidates = {**bspec, "tags": None}
            return lambda: store.backfills(candidates, None, None)
        return lambda: store.backfills_count(bspec)
    return None


def worker(kind: str, home: str, shape_names: Sequence[str], marks_json: str) -> None:
    """Time every shape on one side; print one JSON line per shape."""
    from dagster import DagsterInstance

    os.environ.pop("DAGSTER_RS_DOMAINS", None)
    yaml = "instance_class:\n  module: dagster_rs\n  class: DagsterInstance\n"
    with open(os.path.join(home, "dagster.yaml"), "w") as f:
        f.write(yaml if kind == "rust" else "")
    inst = DagsterInstance.from_config(home)
    params = json.loads(marks_json)
    marks = Marks(n=params["n"], run_ids=seeded_run_ids(params["n"], params["seed"]))
    by_name = {s.name: s for s in shapes(marks)}
    cursor_shape = by_name["one tag"]
    _, first_kwargs = _build(cursor_shape, None)
    first_page = inst.get_run_records(**first_kwargs)
    cursor = first_page[-1].dagster_run.run_id if first_page else None
    for name in shape_names:
        shape = by_name[name]
        method, kwargs = _build(shape, cursor)
        fn = getattr(inst, method)
        result = fn(**kwargs)
        ms, calls = _time(lambda: fn(**kwargs), max_calls=15, max_seconds=8.0)  # noqa: B023
        row: dict[str, Any] = {"shape": name, "ms": ms, "calls": calls, "digest": _digest(result)}
        floor = _floor(inst, method, kwargs) if kind == "rust" else None
        if floor is not None:
            row["floor_ms"] = _time(floor, max_calls=15, max_seconds=4.0)[0]
        print(json.dumps(row), flush=True)
    inst.dispose()


# -- the parent ----------------------------------------------------------------------------------


def _pass(home: str, names: Sequence[str], marks_json: str) -> dict[str, dict[str, Any]] | None:
    """Both sides on the home as it is, each in its own process: shape -> side -> result row."""
    out: dict[str, dict[str, Any]] = {}
    for kind in ("stock", "rust"):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "dagster_rs.bench.runs_scale", kind, home, marks_json],
            input="\n".join(names),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return None
        out[kind] = {r["shape"]: r for r in map(json.loads, proc.stdout.splitlines())}
        print(f"    {kind:5s} side: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def run_scale(
    n: int,
    parent_dir: str | None,
    json_path: str | None,
    keep: bool,
    seed: int,
    home: str | None,
    only: Sequence[str] | None,
    layouts: Sequence[str] = LAYOUTS,
) -> int:
    import shutil
    import tempfile

    from dagster_rs.bench.common import versions, write_json

    marks = Marks(n=n, run_ids=seeded_run_ids(n, seed))
    made_home = home is None
    if home is None:
        home = tempfile.mkdtemp(prefix=f"dagster-rs-scale-{n}-", dir=parent_dir)
    print(f"dagster-rs bench: runs --scale {n:,}  home={home}", flush=True)
    facts: dict[str, Any] = {}
    db = os.path.join(home, "history", "runs.db")
    if os.path.exists(db):
        print(f"  reusing the runs already in this home ({layout_of(db)} layout)", flush=True)
    else:
        facts = fill(home, n, seed, lambda line: print(line, flush=True))
        print(
            f"  filled {n:,} runs in {facts['seconds']:.1f} s"
            f" ({facts['runs_per_second']:,.0f} runs/s, durability off, transactions of"
            f" {CHUNK:,})",
            flush=True,
        )
    names = [s.name for s in shapes(marks) if not only or s.name in only]
    marks_json = json.dumps({"n": n, "seed": seed})
    by_layout: dict[str, list[dict[str, Any]]] = {}
    mismatches: dict[str, list[str]] = {}
    for layout in layouts:
        t0 = time.perf_counter()
        set_layout(db, layout)
        print(
            f"  {layout} layout (migration 047's own {'upgrade' if layout == '047' else 'downgrade'}"
            f" where needed: {time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        results = _pass(home, names, marks_json)
        if results is None:
            return 2
        wrong = [
            name
            for name in names
            if results["stock"][name]["digest"] != results["rust"][name]["digest"]
        ]
        mismatches[layout] = wrong
        rows = []
        for name in names:
            st, rs = results["stock"][name], results["rust"][name]
            rows.append(
                {
                    "shape": name,
                    "stock_ms": st["ms"],
                    "rust_ms": rs["ms"],
                    "ratio": st["ms"] / rs["ms"] if rs["ms"] else float("inf"),
                    "floor_ms": rs.get("floor_ms"),
                    "calls": [st["calls"], rs["calls"]],
                    "same": name not in wrong,
                }
            )
        by_layout[layout] = rows
    print()
    print(format_scale_table(by_layout))
    print(
        "\nms per call, median after a warm-up; each side in its own process on the same home,"
        " the same file in each layout. floor = the core's call without building Dagster"
        " objects."
    )
    if any(mismatches.values()):
        print("\nRESULT MISMATCHES between stock and dagster-rs:")
        for layout, wrong in mismatches.items():
            for name in wrong:
                print(f"  - {layout}: {name}")
    if json_path:
        write_json(
            json_path,
            {
                "bench": "runs-scale",
                "n": n,
                "fill": facts,
                "layouts": by_layout,
                "mismatches": mismatches,
                **versions(),
            },
        )
        print(f"wrote {json_path}")
    if made_home and not keep:
        shutil.rmtree(home, ignore_errors=True)
    elif made_home:
        print(f"home kept: {home} (reuse it with --home)")
    return 1 if any(mismatches.values()) else 0


def format_scale_table(by_layout: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """One row per shape; per layout: stock, dagster-rs, the ratio, the floor."""
    layouts = list(by_layout)
    header = ["shape"]
    for layout in layouts:
        header += [f"{layout}: stock ms", "dagster-rs ms", "stock/rust", "floor ms"]
    header.append("same")

    def fmt(ms: float | None) -> str:
        if ms is None:
            return "-"
        return f"{ms:,.2f}" if ms < 100 else f"{ms:,.0f}"

    body = []
    for i, first in enumerate(by_layout[layouts[0]]):
        cells = [first["shape"]]
        same = True
        for layout in layouts:
            r = by_layout[layout][i]
            cells += [
                fmt(r["stock_ms"]),
                fmt(r["rust_ms"]),
                f"{r['ratio']:.1f}x",
                fmt(r["floor_ms"]),
            ]
            same = same and r["same"]
        cells.append("yes" if same else "NO")
        body.append(cells)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = []
    for i, row in enumerate([header, *body]):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], sys.stdin.read().splitlines(), sys.argv[3])
