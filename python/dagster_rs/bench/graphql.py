"""`python -m dagster_rs.bench graphql`: the runs table's `runsOrError` through the webserver's schema.

One home of N runs (default 100,000) is written once through the core (`RunStore.add_runs`, as
`runs --scale` does), then copied: stock reads one copy, dagster-rs the other, each in a process of
its own (its own cold caches and Python heap), so both read the same bytes. Each side opens an
instance on its copy (stock: an empty dagster.yaml; dagster-rs: `instance_class` selecting
`dagster_rs.DagsterInstance`), builds the webserver's own `WorkspaceProcessContext` on it (an empty
workspace: the runs page needs no code location) and executes, through `dagster_graphql`'s
schema (`create_schema()`, what `dagster-webserver` serves), the runs table's query:
`runsOrError(filter: {tags: [...]}, limit: 50)` asking for the fields the UI's runs table asks for
(`RunsFeedTableEntryFragment` and `RunActionsMenuRunFragment` of the 1.13 webapp: ids, statuses,
times, tags, job, repository origin, asset/check selection previews and counts, permissions). A
fresh request context per query, as the webserver makes one per request.

The data (deterministic for a seed): 5 jobs (3 of them partitioned: `dagster/partition` a day over
2 years, `dagster/partition_set`), statuses SUCCESS 75%, FAILURE 20%, CANCELED 5% (the newest 10
runs QUEUED, the 10 before STARTED), start and end times on every started run; a user tag `team`
over 10 values (each 10% of the runs) and a unique `dagster/run_key`. Two selectivities:

- common tag: `team=analytics`, ~10% of the runs (10,000 of 100,000) match; the 50 newest are
  returned;
- rare tag: `dagster/partition=<one day>`, ~0.08% (~80 of 100,000) match.

Per query: median µs after a warm-up call, the two side processes taking turns of a few calls
(the machine's load from elsewhere lands on both alike); also `instance.get_run_records` alone,
the run list the resolvers start from. The floor is the same run list straight on the
core (`RunStore.run_records`, rows not turned into Dagster objects, no GraphQL). The GraphQL
results of both sides are compared whole (same data, so they must be equal) before anything is
reported; a difference fails the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dagster_rs.bench.common import RUST_YAML, fmt_us, versions, write_json
from dagster_rs.bench.runs_scale import seeded_run_ids, write_runs
from dagster_rs.home_files import copy_tree

DEFAULT_RUNS = 100_000
QUICK_RUNS = 2_000
CHUNK = 5_000
LIMIT = 50
JOBS = ("daily_orders", "daily_events", "daily_features", "ml_train", "reports")
PARTITIONED_JOBS = 3
TEAMS = (
    "analytics",
    "billing",
    "core",
    "data-eng",
    "finance",
    "growth",
    "ml",
    "ops",
    "platform",
    "sales",
)
PARTITION_DAYS = 730
BASE_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc)
# One run every 10 minutes, newest last.
STEP = timedelta(minutes=10)
COMMON = ("team", "analytics")

# The runs table's query: `runsOrError` with the fields the 1.13 webapp's runs table asks of a
# run (`RunsFeedTableEntryFragment` on Run with `RunActionsMenuRunFragment`, and the error
# fragment). The UI sends them through `runsFeedOrError`; here through `runsOrError`, the run
# list the issue names, the same per-run resolvers.
RUNS_TABLE_QUERY = """
query RunsTableQuery($filter: RunsFilter, $limit: Int, $cursor: String) {
  runsOrError(filter: $filter, limit: $limit, cursor: $cursor) {
    __typename
    ... on Runs {
      results {
        __typename
        id
        runId
        runStatus
        status
        creationTime
        startTime
        endTime
        tags { key value }
        jobName
        pipelineName
        mode
        pipelineSnapshotId
        repositoryOrigin { id repositoryLocationName repositoryName }
        assetSelectionPreview: assetSelection(limit: 25) { path }
        assetSelectionCount
        assetCheckSelectionPreview: assetCheckSelection(limit: 25) { name assetKey { path } }
        assetCheckSelectionCount
        hasReExecutePermission
        hasTerminatePermission
        hasDeletePermission
        canTerminate
        hasRunMetricsEnabled
      }
    }
    ... on InvalidPipelineRunsFilterError { message }
    ... on PythonError { message stack errorChain { isExplicitLink error { message stack } } }
  }
}
"""


def _ts(i: int) -> datetime:
    return BASE_TIME + STEP * i


def _partition(i: int) -> str:
    return (BASE_TIME.date() + timedelta(days=i % PARTITION_DAYS)).isoformat()


@dataclass(frozen=True)
class Selectivity:
    """One filter the bench queries: its name, its tag, and how many runs it matches."""

    name: str
    key: str
    value: str
    matches: int

    @property
    def op(self) -> str:
        return f"graphql runsOrError ({self.name}, limit {LIMIT})"

    def variables(self) -> dict[str, Any]:
        return {"filter": {"tags": [{"key": self.key, "value": self.value}]}, "limit": LIMIT}


def fill(home: str, n: int, seed: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Write `n` runs into `home` through the core; return how many each selectivity matches."""
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteRepositoryOrigin
    from dagster._core.storage.tags import PARTITION_NAME_TAG, PARTITION_SET_TAG

    from dagster_rs import _native

    rng = random.Random(seed)
    ids = seeded_run_ids(n, seed)
    os.makedirs(os.path.join(home, "history"), exist_ok=True)
    db = os.path.join(home, "history", "runs.db")
    store = _native.RunStore(db, "off")
    repo = RemoteRepositoryOrigin(
        GrpcServerCodeLocationOrigin(host="localhost", port=4266, location_name="prod"),
        "prod_repository",
    )
    common = 0
    partitions: dict[str, int] = {}

    def tags_for(i: int, job: str) -> dict[str, str]:
        nonlocal common
        team = TEAMS[rng.randrange(len(TEAMS))]
        common += team == COMMON[1]
        tags = {"team": team, "dagster/run_key": f"{job}-{i}"}
        if JOBS.index(job) < PARTITIONED_JOBS:
            day = _partition(rng.randrange(PARTITION_DAYS))
            tags[PARTITION_NAME_TAG] = day
            tags[PARTITION_SET_TAG] = f"{job}_partition_set"
            partitions[day] = partitions.get(day, 0) + 1
        return tags

    seconds = write_runs(
        store, ids, rng, JOBS, repo, tags_for, _ts, progress, every=CHUNK * 4, label="graphql: "
    )
    started = time.perf_counter() - seconds
    store.dispose()
    # Every run that started has its start time, every finished one its end time, as the run
    # monitor leaves them (a run without them makes the resolvers read its events instead).
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE runs SET start_time = CAST(strftime('%s', create_timestamp) AS REAL) + 5"
            " WHERE status IN ('SUCCESS', 'FAILURE', 'CANCELED', 'STARTED')"
        )
        conn.execute(
            "UPDATE runs SET end_time = start_time + 60 + (id % 600)"
            " WHERE status IN ('SUCCESS', 'FAILURE', 'CANCELED')"
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    # The rare filter: the partition whose run count is nearest the median, over the run ids
    # (deterministic: ties go to the earliest day).
    counts = sorted(partitions.items(), key=lambda kv: (kv[1], kv[0]))
    rare_day, rare_count = counts[len(counts) // 2]
    return {
        "runs": n,
        "seconds": time.perf_counter() - started,
        "selectivities": [
            {"name": "common tag", "key": COMMON[0], "value": COMMON[1], "matches": common},
            {
                "name": "rare tag",
                "key": PARTITION_NAME_TAG,
                "value": rare_day,
                "matches": rare_count,
            },
        ],
    }


# -- one side, in its own process ----------------------------------------------------------------


def worker(kind: str, home: str) -> None:
    """One side, serving the parent: each stdin line is a JSON request `{"sel": {...}, "what":
    "data" | "graphql" | "records" | "floor", "calls": n}`; each answer one JSON line on stdout
    (the query's data, or the wall time of each of `n` calls)."""
    import asyncio

    from dagster import DagsterInstance, RunsFilter
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import EmptyWorkspaceTarget
    from dagster_graphql.schema import create_schema

    from dagster_rs.storage.convert import run_query_spec

    os.environ.pop("DAGSTER_RS_DOMAINS", None)
    with open(os.path.join(home, "dagster.yaml"), "w") as f:
        f.write((RUST_YAML if kind == "rust" else "") + "telemetry:\n  enabled: false\n")
    instance = DagsterInstance.from_config(home)
    schema = create_schema()
    process = WorkspaceProcessContext(instance, EmptyWorkspaceTarget())
    process.__enter__()

    def query(variables: dict[str, Any]) -> Any:
        # As the webserver serves a request: a fresh request context, `asyncio.run` of the
        # schema's execution (dagster_webserver.graphql.GraphQLServer.graphql_execution_thread).
        context = process.create_request_context()
        result = asyncio.run(
            schema.execute_async(RUNS_TABLE_QUERY, context_value=context, variable_values=variables)
        )
        if result.errors:
            raise RuntimeError(f"{kind}: {[str(e) for e in result.errors]}")
        return result.data

    def call(sel: Selectivity, what: str) -> Callable[[], Any]:
        variables = sel.variables()
        filters = RunsFilter(tags={sel.key: sel.value})
        if what == "graphql":
            return lambda: query(variables)
        if what == "records":
            return lambda: instance.get_run_records(filters=filters, limit=LIMIT)
        store = instance.run_storage.store  # type: ignore[attr-defined]  # dagster-rs only
        spec = run_query_spec(filters, None, LIMIT)
        return lambda: store.run_records(spec)

    print(json.dumps({"ready": kind}), flush=True)
    clock = time.perf_counter
    for line in sys.stdin:
        request = json.loads(line)
        sel = Selectivity(**request["sel"])
        if request["what"] == "data":
            print(json.dumps({"data": query(sel.variables())}), flush=True)
            continue
        fn = call(sel, request["what"])
        times = []
        for _ in range(request["calls"]):
            t0 = clock()
            fn()
            times.append(clock() - t0)
        print(json.dumps({"times": times}), flush=True)
    process.__exit__(None, None, None)
    instance.dispose()


# -- the parent ----------------------------------------------------------------------------------


class Side:
    """A worker process serving one side (`worker`)."""

    def __init__(self, kind: str, home: str):
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dagster_rs.bench.graphql", kind, home],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.kind} side exited ({self.proc.wait()})")
        return dict(json.loads(line))

    def ask(self, sel: Selectivity, what: str, calls: int = 0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        request = {"sel": sel.__dict__, "what": what, "calls": calls}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


# Calls per turn: the sides take turns, so that load from elsewhere on the machine (shared, two
# cores) lands on both alike.
TURN = 3


def time_turns(
    sides: Mapping[str, Side], sel: Selectivity, what: str, budget: Mapping[str, Any]
) -> dict[str, float]:
    """Median µs per call of `what` on every side, the sides taking turns of `TURN` calls after
    a warm-up call each, until each has spent `budget["seconds"]` in at least
    `budget["min_calls"]` calls (at most `budget["max_calls"]`)."""
    for side in sides.values():
        side.ask(sel, what, 1)
    times: dict[str, list[float]] = {kind: [] for kind in sides}
    while True:
        for kind, side in sides.items():
            times[kind] += side.ask(sel, what, TURN)["times"]
        calls = min(len(ts) for ts in times.values())
        spent = min(sum(ts) for ts in times.values())
        if calls >= budget["max_calls"] or (
            calls >= budget["min_calls"] and spent >= budget["seconds"]
        ):
            break
    return {kind: statistics.median(ts) * 1e6 for kind, ts in times.items()}


def run(args: argparse.Namespace) -> int:
    n = args.runs if args.runs is not None else (QUICK_RUNS if args.quick else DEFAULT_RUNS)
    if n < 100:
        raise SystemExit("--runs must be at least 100")
    budget = (
        {"min_calls": 3, "max_calls": 10, "seconds": 0.5}
        if args.quick
        else {"min_calls": 10, "max_calls": 200, "seconds": args.seconds}
    )
    work = tempfile.mkdtemp(prefix="dagster-rs-bench-graphql-", dir=args.dir)
    homes = {"stock": os.path.join(work, "stock"), "rust": os.path.join(work, "rust")}
    print(f"dagster-rs bench: graphql runsOrError over {n:,} runs  ({work})", flush=True)
    try:
        facts = fill(homes["rust"], n, args.seed, lambda line: print(line, flush=True))
        print(f"  filled {n:,} runs in {facts['seconds']:.1f} s (through the core)", flush=True)
        # Stock reads a copy of the very same files.
        copy_tree(homes["rust"], homes["stock"])
        sels = [Selectivity(**raw) for raw in facts["selectivities"]]
        sides = {kind: Side(kind, homes[kind]) for kind in ("stock", "rust")}
        measured: dict[str, dict[str, Any]] = {}
        try:
            for sel in sels:
                t0 = time.perf_counter()
                data = {kind: side.ask(sel, "data")["data"] for kind, side in sides.items()}
                graphql_us = time_turns(sides, sel, "graphql", budget)
                records_us = time_turns(sides, sel, "records", budget)
                floor_us = time_turns({"rust": sides["rust"]}, sel, "floor", budget)["rust"]
                measured[sel.op] = {
                    "data": data,
                    "graphql_us": graphql_us,
                    "records_us": records_us,
                    "floor_us": floor_us,
                }
                print(f"  {sel.name}: measured in {time.perf_counter() - t0:.0f} s", flush=True)
        finally:
            for side in sides.values():
                side.close()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"  homes kept under {work}")

    mismatches: list[str] = []
    payload: dict[str, Any] = {}
    lines = []
    for sel in sels:
        m = measured[sel.op]
        st_data, rs_data = m["data"]["stock"], m["data"]["rust"]
        returned = len(rs_data["runsOrError"].get("results", []))
        if st_data != rs_data:
            mismatches.append(sel.op)
        if returned != min(LIMIT, sel.matches):
            mismatches.append(f"{sel.op}: {returned} runs returned, {sel.matches} match")
        st, rs = m["graphql_us"]["stock"], m["graphql_us"]["rust"]
        rec, floor = m["records_us"], m["floor_us"]
        ratio = st / rs
        payload[sel.op] = {
            "stock_us": st,
            "rust_us": rs,
            "ratio": ratio,
            "floor_us": floor,
            "rust_over_floor": rs / floor,
            "matches": sel.matches,
            "share": sel.matches / n,
            "returned": returned,
            "tag": f"{sel.key}={sel.value}",
            "get_run_records_us": rec,
        }
        lines.append(
            f"  {sel.name}: {sel.key}={sel.value} matches {sel.matches:,} of {n:,} runs"
            f" ({100 * sel.matches / n:.2f}%), {returned} returned\n"
            f"    runsOrError   stock {fmt_us(st)} µs  dagster-rs {fmt_us(rs)} µs"
            f"  ({ratio:.1f}×, target ≥ 5×)\n"
            f"    get_run_records(limit {LIMIT}) alone: stock {fmt_us(rec['stock'])} µs"
            f"  dagster-rs {fmt_us(rec['rust'])} µs;  floor (core run list, no objects)"
            f" {fmt_us(floor)} µs;  GraphQL beyond the run list: stock"
            f" {fmt_us(st - rec['stock'])} µs, dagster-rs {fmt_us(rs - rec['rust'])} µs"
        )
    print()
    print("\n".join(lines))
    print(
        "\n  µs per query, median after a warm-up; each side in its own process on its own copy"
        f" of the same files, the two taking turns of {TURN} calls; the two sides' GraphQL"
        " results compared whole: " + ("equal" if not mismatches else "DIFFERENT")
    )
    payload["_meta"] = {
        "bench": "graphql",
        "runs": n,
        "limit": LIMIT,
        "query": "runsOrError (the runs table's fields) through dagster_graphql's schema",
        "mismatches": mismatches,
        **versions(),
    }
    if args.json_path:
        write_json(args.json_path, payload)
        print(f"wrote {args.json_path}")
    if mismatches:
        print("\nRESULT MISMATCHES between stock and dagster-rs:")
        for what in mismatches:
            print(f"  - {what}")
        return 1
    return 0


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "graphql",
        help="the runs table's GraphQL runsOrError over 100,000 runs, stock vs dagster-rs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs", type=int, default=None, help=f"runs (default {DEFAULT_RUNS:,})")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS:,} runs, few calls")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write results as JSON")
    p.add_argument("--dir", metavar="PATH", help="create the homes under PATH (e.g. /dev/shm)")
    p.add_argument("--seconds", type=float, default=3.0, help="time per query and side (default 3)")
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--keep", action="store_true", help="keep the homes afterwards")
    p.set_defaults(func=run)


__all__ = [
    "RUNS_TABLE_QUERY",
    "Selectivity",
    "Side",
    "add_parser",
    "fill",
    "run",
    "time_turns",
    "worker",
]


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2])
