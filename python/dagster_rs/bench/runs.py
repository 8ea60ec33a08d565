"""`python -m dagster_rs.bench runs`: run-storage ops, stock Dagster vs dagster-rs.

Both instances live in this process, each on its own fresh DAGSTER_HOME, and hold the same N runs
(same run ids, job names, statuses and tags, inserted in the same order). Loading and measuring:

1. The first N - S runs are loaded untimed, through each side's own storage code but fast: stock's
   `SqliteRunStorage.add_run` inside one shared transaction; dagster-rs's `add_run` through a loader
   instance opened with `DAGSTER_RS_DURABILITY=normal` (no fsync per commit). The loaders are
   disposed before the measured instances are opened.
2. `add_run` is timed for the remaining S runs (S = --write-sample, default min(N, 1000)): every
   call its own transaction at the measured instance's durability (default `full`, as stock).
3. Read ops are timed against all N runs: warm-up once, then repeated (cycling the filter value)
   until a time budget is spent; the median per-call time is reported.
   Every timed op lets the two sides take turns of 20 calls (stock, rust, stock, ...), so load from
   elsewhere on the machine affects both alike.
4. Deletes are timed last, each call its own transaction, on run ids picked at random (the same
   ids on both sides). `delete_run[runs]` is the run storage's `delete_run` alone, on D runs
   (D = --delete-sample). `delete_run` is `instance.delete_run`, which also deletes the run's
   events (the events domain: stock creates the run's event-log shard to delete from, 100-300 ms
   on disk; dagster-rs deletes from a shard only if there is one), so it is timed on D/10 other
   runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage
from dagster._core.utils import make_new_run_id
from dagster._time import get_current_datetime

from dagster_rs import _native
from dagster_rs.bench.common import (
    FLOOR,
    Budget,
    OpResult,
    Sample,
    add_output_args,
    calls_meta,
    close_sides,
    env_override,
    first_mismatch,
    format_table,
    make_homes,
    op_result,
    open_instance,
    parse_ops,
    print_mismatches,
    progress_line,
    results_json,
    sides_meta,
    time_each,
    time_repeated,
    write_json,
)
from dagster_rs.home_files import copy_file
from dagster_rs.storage.convert import sql_datetime
from dagster_rs.storage.run_storage import run_spec

OPS: tuple[str, ...] = (
    "add_run",
    "get_runs[tag]",
    "get_runs[status]",
    "get_run_records[job]",
    "get_runs_count[filter]",
    "get_run_tags",
    "delete_run",
    "delete_run[runs]",
)

READ_OPS = OPS[1:6]

JOB_NAMES = tuple(
    f"{name}_job"
    for name in ("orders", "customers", "inventory", "billing", "ml_features", "reports")
)
TEAMS = ("data", "ml", "finance", "growth", "platform")
ENVS = ("prod", "staging")
# Mixed statuses, roughly what a busy deployment's history looks like.
STATUS_WEIGHTS: tuple[tuple[DagsterRunStatus, int], ...] = (
    (DagsterRunStatus.SUCCESS, 60),
    (DagsterRunStatus.FAILURE, 15),
    (DagsterRunStatus.CANCELED, 5),
    (DagsterRunStatus.STARTED, 5),
    (DagsterRunStatus.QUEUED, 5),
    (DagsterRunStatus.NOT_STARTED, 10),
)
QUERIED_STATUSES = (DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS, DagsterRunStatus.QUEUED)
LIMIT = 100

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    n: int
    write_sample: int
    delete_sample: int
    budget: Budget
    ops: tuple[str, ...]
    dir: str | None
    json_path: str | None
    seed: int
    keep: bool
    quick: bool


def make_runs(n: int, seed: int) -> list[DagsterRun]:
    """N runs with a few tags each, several job names and mixed statuses (deterministic)."""
    rng = random.Random(seed)
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    # Queued runs must say where their code lives (a code server, as in a deployment).
    repo = RemoteRepositoryOrigin(
        GrpcServerCodeLocationOrigin(host="localhost", port=4266, location_name="bench"),
        "bench_repository",
    )
    runs = []
    for i in range(n):
        tags = {
            "team": rng.choice(TEAMS),
            "env": rng.choice(ENVS),
            "batch": f"b{i % 50:02d}",
        }
        if i % 4 == 0:
            tags["dagster/schedule_name"] = f"{rng.choice(JOB_NAMES)}_schedule"
        job_name = rng.choice(JOB_NAMES)
        status = rng.choices(statuses, weights)[0]
        runs.append(
            DagsterRun(
                job_name=job_name,
                run_id=make_new_run_id(),
                status=status,
                tags=tags,
                remote_job_origin=repo.get_job_origin(job_name),
            )
        )
    return runs


# -- loading -----------------------------------------------------------------------------------


@contextmanager
def _one_transaction(storage: SqlRunStorage) -> Iterator[None]:
    """Make every `storage.connect()` in the block reuse one connection and one transaction."""
    with storage.connect() as conn:

        @contextmanager
        def shared() -> Iterator[Any]:
            yield conn

        storage.connect = shared  # type: ignore[method-assign]
        try:
            yield
        finally:
            del storage.connect  # back to the class's method


def bulk_load(kind: str, home: str, runs: Sequence[DagsterRun]) -> str:
    """Load `runs` untimed through a throwaway instance on `home`; describe how."""
    if not runs:
        return "nothing to preload"
    if kind == "stock":
        loader = open_instance(home)
        try:
            storage = loader.run_storage
            if not isinstance(storage, SqlRunStorage):
                raise TypeError(f"stock run storage is {type(storage).__name__}, expected SQL")
            with _one_transaction(storage):
                for run in runs:
                    storage.add_run(run)
        finally:
            loader.dispose()
        return "stock SqliteRunStorage.add_run, all in one transaction"
    with env_override("DAGSTER_RS_DURABILITY", "normal"):
        loader = open_instance(home)
    try:
        for run in runs:
            loader.add_run(run)
        live = sorted(getattr(loader, "rust_domains", ()))
    finally:
        loader.dispose()
    return f"dagster-rs instance.add_run with durability=normal (rust domains: {live})"


# -- the ops -----------------------------------------------------------------------------------


def _read_op(op: str, inst: DagsterInstance) -> Callable[[int], object]:
    """The read op as fn(i) -> normalized result; i cycles the filter value."""
    if op == "get_runs[tag]":
        return lambda i: [
            r.run_id
            for r in inst.get_runs(filters=RunsFilter(tags={"team": TEAMS[i % 5]}), limit=LIMIT)
        ]
    if op == "get_runs[status]":
        return lambda i: [
            r.run_id
            for r in inst.get_runs(
                filters=RunsFilter(statuses=[QUERIED_STATUSES[i % 3]]), limit=LIMIT
            )
        ]
    if op == "get_run_records[job]":
        return lambda i: [
            (r.storage_id, r.dagster_run.run_id)
            for r in inst.get_run_records(
                filters=RunsFilter(job_name=JOB_NAMES[i % len(JOB_NAMES)]), limit=LIMIT
            )
        ]
    if op == "get_runs_count[filter]":
        return lambda i: inst.get_runs_count(
            filters=RunsFilter(statuses=[QUERIED_STATUSES[i % 3]], tags={"env": ENVS[i % 2]})
        )
    if op == "get_run_tags":
        return lambda i: sorted(
            (k, sorted(v)) for k, v in inst.get_run_tags(tag_keys=[("team", "batch")[i % 2]])
        )
    raise ValueError(op)


def _indexed(fn: Callable[[T], object], args: Sequence[T]) -> Callable[[int], object]:
    """fn(args[i]) as a function of i."""

    def call(i: int) -> object:
        return fn(args[i])

    return call


def _result(op: str, samples: dict[str, Sample]) -> OpResult:
    stat = "mean" if op in ("add_run", "delete_run", "delete_run[runs]") else "median"
    return op_result(op, samples, stat)


def run_bench(s: Settings) -> int:
    runs = make_runs(s.n, s.seed)
    add_count = s.write_sample if "add_run" in s.ops else 0
    preload, timed_adds = runs[: s.n - add_count], runs[s.n - add_count :]
    rng = random.Random(s.seed + 1)
    # instance.delete_run costs 100-300 ms on either side (it creates the run's event-log shard
    # to delete from), so it gets a tenth of the sample the run-storage-only delete gets.
    sizes = {"delete_run": max(1, s.delete_sample // 10), "delete_run[runs]": s.delete_sample}
    pool = rng.sample([r.run_id for r in runs], k=min(s.n, sum(sizes.values())))
    deletes = {
        "delete_run": pool[: sizes["delete_run"]],
        "delete_run[runs]": pool[sizes["delete_run"] :],
    }

    started = time.perf_counter()
    homes = make_homes(s.dir)
    print(f"dagster-rs bench: runs  n={s.n}  dir={s.dir or '(system temp)'}")
    for kind, home in homes.items():
        print(f"  {kind:5s} DAGSTER_HOME={home}")
    instances: dict[str, DagsterInstance] = {}
    results: list[OpResult] = []
    mismatches: list[str] = []
    load_notes: dict[str, str] = {}
    try:
        for kind, home in homes.items():
            t0 = time.perf_counter()
            load_notes[kind] = bulk_load(kind, home, preload)
            print(f"  {kind:5s} preload: {time.perf_counter() - t0:.1f} s", flush=True)
            instances[kind] = open_instance(home)
        # add_run's floor inserts the same rows through the core, with the arguments made
        # beforehand, into a copy of the rust side's preloaded runs.db (so both sides still hold
        # the same runs, with the same storage ids, afterwards).
        floor_db = os.path.join(homes["rust"], "floor", "runs.db")
        os.makedirs(os.path.dirname(floor_db))
        # Through SQLite's VFS (home_files.copy_file): the rust instance open here holds the
        # file, and a descriptor closed outside SQLite would drop its locks.
        source_db = os.path.join(homes["rust"], "history", "runs.db")
        copy_file(source_db, floor_db)
        if os.path.exists(source_db + "-wal"):
            copy_file(source_db + "-wal", floor_db + "-wal", journal=True)
        stock, rust = instances["stock"], instances["rust"]
        live = sorted(getattr(rust, "rust_domains", ()))
        if "runs" not in live:
            print(f"  WARNING: the runs domain is not live in Rust (rust domains: {live})")
        print(f"  preloaded {len(preload)} runs per side; timing add_run on {len(timed_adds)}")
        # The harness itself holds every run object it made; without this, Python's cyclic GC
        # walks them all at intervals and the pause lands in whichever side's call is running.
        gc.collect()
        gc.freeze()

        def report(result: OpResult) -> None:
            results.append(result)
            print(progress_line(result, 24, 10), flush=True)

        if "add_run" in s.ops and timed_adds:
            store = _native.RunStore(floor_db, rust.durability)  # type: ignore[attr-defined]
            now = sql_datetime(get_current_datetime())
            floor_args = [run_spec(run, now) for run in timed_adds]
            fns = {kind: _indexed(inst.add_run, timed_adds) for kind, inst in instances.items()}
            fns[FLOOR] = _indexed(store.add_run, floor_args)
            samples = time_each(fns, len(timed_adds))
            report(_result("add_run", samples))
            store.dispose()

        count_stock, count_rust = stock.get_runs_count(), rust.get_runs_count()
        if count_stock != count_rust or count_stock != s.n:
            mismatches.append(f"run count: stock {count_stock}, rust {count_rust}, expected {s.n}")

        for op in READ_OPS:
            if op not in s.ops:
                continue
            fns = {kind: _read_op(op, inst) for kind, inst in instances.items()}
            # Both sides must answer the same before we time them.
            mismatch = first_mismatch(op, fns, width=200)
            if mismatch:
                mismatches.append(mismatch)
            report(_result(op, time_repeated(fns, s.budget)))

        for op, ids in deletes.items():
            if op not in s.ops or not ids:
                continue
            targets: dict[str, Callable[[str], None]] = {
                kind: inst.delete_run if op == "delete_run" else inst.run_storage.delete_run
                for kind, inst in instances.items()
            }
            samples = time_each(
                {kind: _indexed(target, ids) for kind, target in targets.items()}, len(ids)
            )
            report(_result(op, samples))
            gone = [rid for rid in ids[:20] if rust.has_run(rid) or stock.has_run(rid)]
            if gone:
                mismatches.append(f"{op}: runs still present after delete: {gone[:3]}")

        durability = getattr(rust, "durability", "?")
        rust_domains = live
    finally:
        close_sides(instances, homes, s.keep)

    print()
    print(format_table(results))
    print()
    print(f"stock/rust > 1 means dagster-rs is faster. dagster-rs durability: {durability}.")
    print(
        f"Preloaded {len(preload)} runs per side untimed (stock: {load_notes.get('stock')};"
        f" rust: {load_notes.get('rust')})"
        + (f"; add_run timed on the last {len(timed_adds)}." if timed_adds else ".")
    )
    print(
        "Sides take turns of 20 calls. Reads: median per call after one warm-up; writes: mean"
        " per call, one transaction each."
        " delete_run = instance.delete_run (also deletes the run's events: events domain);"
        " delete_run[runs] = run_storage.delete_run only."
    )
    if s.keep:
        print(f"Homes kept: {homes['stock']}  {homes['rust']}")
    print(f"total {time.perf_counter() - started:.1f} s")
    print_mismatches(mismatches)

    if s.json_path:
        meta: dict[str, Any] = {
            "bench": "runs",
            "n": s.n,
            **sides_meta(s.dir, durability, rust_domains),
            "add_run_sample": len(timed_adds),
            "preloaded": len(preload),
            "preload": load_notes,
            "delete_sample": {op: len(ids) for op, ids in deletes.items() if op in s.ops},
            **calls_meta(results),
            "limit": LIMIT,
            "quick": s.quick,
            "seed": s.seed,
            "mismatches": mismatches,
        }
        write_json(s.json_path, results_json(results, meta))
        print(f"wrote {s.json_path}")
    return 1 if mismatches else 0


# -- command line ------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "runs",
        help="run storage ops (add_run, get_runs, ..., delete_run), stock vs dagster-rs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--n", type=int, default=None, help="runs in each storage (default 10000)")
    add_output_args(p, OPS)
    p.add_argument("--quick", action="store_true", help="small smoke run (n=300, short budgets)")
    p.add_argument(
        "--write-sample",
        type=int,
        default=None,
        metavar="S",
        help="add_run timed on the last S runs; the others are preloaded (default min(N, 1000))",
    )
    p.add_argument(
        "--delete-sample",
        type=int,
        default=None,
        metavar="D",
        help="runs deleted by delete_run[runs]; delete_run gets D/10 (default min(N/4, 500))",
    )
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--keep", action="store_true", help="keep the DAGSTER_HOMEs afterwards")
    p.add_argument(
        "--scale",
        type=int,
        default=None,
        metavar="N",
        help="instead: every run-list query shape over N runs, each side in its own process"
        " (dagster_rs.bench.runs_scale)",
    )
    p.add_argument(
        "--home",
        default=None,
        metavar="PATH",
        help="with --scale: a home filled by an earlier --scale --keep run, reused as it is",
    )
    p.add_argument(
        "--shapes",
        default=None,
        metavar="LIST",
        help="with --scale: a subset of the shapes, by name, separated by ';' (names hold commas)",
    )
    p.add_argument(
        "--layouts",
        default=None,
        metavar="LIST",
        help="with --scale: the index layouts to read the file in, in order (default: fresh,047:"
        " the file as stock creates it, then converted by Dagster's migration 047)",
    )
    p.set_defaults(func=main)


def settings_from_args(args: argparse.Namespace) -> Settings:
    n = args.n if args.n is not None else (300 if args.quick else 10_000)
    if n < 10:
        raise SystemExit("--n must be at least 10")
    ops = parse_ops(args.ops, OPS)
    default_write = min(n, 100 if args.quick else 1000)
    write_sample = min(n, args.write_sample if args.write_sample is not None else default_write)
    default_delete = min(n // 4, 50 if args.quick else 500)
    delete_sample = min(
        n // 2, args.delete_sample if args.delete_sample is not None else default_delete
    )
    if args.quick:
        budget = Budget(min_calls=5, max_calls=200, min_seconds=0.05, max_seconds=0.3)
    else:
        budget = Budget(min_calls=30, max_calls=20_000, min_seconds=1.0, max_seconds=4.0)
    return Settings(
        n=n,
        write_sample=max(write_sample, 0),
        delete_sample=max(delete_sample, 0),
        budget=budget,
        ops=ops,
        dir=args.dir,
        json_path=args.json_path,
        seed=args.seed,
        keep=args.keep,
        quick=args.quick,
    )


def main(args: argparse.Namespace) -> int:
    if args.scale is not None:
        from dagster_rs.bench.runs_scale import LAYOUTS, run_scale

        only = [x.strip() for x in args.shapes.split(";")] if args.shapes else None
        layouts = [x.strip() for x in args.layouts.split(",")] if args.layouts else LAYOUTS
        unknown = [x for x in layouts if x not in LAYOUTS]
        if unknown:
            raise SystemExit(f"--layouts: unknown {unknown}; known: {', '.join(LAYOUTS)}")
        return run_scale(
            args.scale, args.dir, args.json_path, args.keep, args.seed, args.home, only, layouts
        )
    return run_bench(settings_from_args(args))
