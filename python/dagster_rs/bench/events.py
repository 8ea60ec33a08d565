"""`python -m dagster_rs.bench events`: the event log store, stock Dagster vs dagster-rs.

The events domain cannot be switched on yet (ARCHITECTURE.md), so this measures the stores, not
the instance: stock's `SqliteEventLogStorage` against the native `EventStore` driven the way its
adapter will drive it (rows built by `event_row`, bodies read back through one serdes context).
Each side writes its own fresh `history/runs/` directory (under `--dir` when given); the events
are real ones, captured from one stock `materialize` and re-addressed to the benchmark's runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, Literal

from dagster import AssetCheckResult, DagsterInstance, asset, asset_check, materialize
from dagster._core.event_api import EventLogCursor
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster_shared.serdes import deserialize_values

from dagster_rs._native import EventStore
from dagster_rs.bench.common import (
    Budget,
    OpResult,
    Sample,
    format_table,
    results_json,
    time_each,
    time_repeated,
    versions,
    write_json,
)
from dagster_rs.storage.event_rows import event_row

LONG_RUN_EVENTS = 3000
PAGE = 100


@asset
def bench_asset() -> int:
    return 1


@asset_check(asset=bench_asset)
def bench_check() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


def sample_events() -> tuple[EventLogEntry, EventLogEntry]:
    """An engine event and an asset materialization, as a real run stores them."""
    with tempfile.TemporaryDirectory() as home:
        open(os.path.join(home, "dagster.yaml"), "w").close()
        instance = DagsterInstance.from_config(home)
        try:
            result = materialize([bench_asset, bench_check], instance=instance)
            entries = [
                r.event_log_entry
                for r in instance.get_records_for_run(result.run_id).records  # type: ignore[attr-defined]
            ]
        finally:
            instance.dispose()
    engine = next(e for e in entries if e.dagster_event_type == DagsterEventType.ENGINE_EVENT)
    mat = next(e for e in entries if e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION)
    return engine, mat


def retarget(entry: EventLogEntry, run_id: str) -> EventLogEntry:
    return entry._replace(run_id=run_id)  # type: ignore[attr-defined]


def run_bench(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    writes = 50 if quick else 300
    budget = (
        Budget(min_calls=5, max_calls=200, min_seconds=0.2, max_seconds=1.0)
        if quick
        else Budget(min_calls=20, max_calls=2000, min_seconds=1.0, max_seconds=4.0)
    )
    long_run = 300 if quick else LONG_RUN_EVENTS
    engine, mat = sample_events()
    root = tempfile.mkdtemp(prefix="dagster-rs-bench-events-", dir=args.dir)
    stock = SqliteEventLogStorage(os.path.join(root, "stock", "history", "runs"))
    rust = EventStore(os.path.join(root, "rust", "history", "runs"))
    results: list[OpResult] = []

    def report(op: str, samples: dict[str, Sample], stat: str) -> None:
        pick: Callable[[Sample], float] = (
            (lambda s: s.mean_us) if stat == "mean" else (lambda s: s.median_us)
        )
        stock_s, rust_s = samples["stock"], samples["rust"]
        res = OpResult(op, pick(stock_s), pick(rust_s), stock_s.calls, rust_s.calls, stat)
        results.append(res)
        print(
            f"  {op:32s} stock {res.stock_us:10.1f} µs  rust {res.rust_us:10.1f} µs"
            f"  ({res.ratio:.2f}x)",
            flush=True,
        )

    try:
        gc.collect()
        gc.freeze()
        for name, entry in (("engine", engine), ("materialization", mat)):
            events = [retarget(entry, f"write-{name}-{i % 10}") for i in range(writes)]

            def stock_store(i: int, ev: list[EventLogEntry] = events) -> None:
                stock.store_event(ev[i])

            def rust_store(i: int, ev: list[EventLogEntry] = events) -> None:
                rust.store_events([event_row(ev[i])])

            report(
                f"store_event[{name}]",
                time_each({"stock": stock_store, "rust": rust_store}, writes),
                "mean",
            )
        batches = [[retarget(engine, f"batch-{b}") for _ in range(PAGE)] for b in range(10)]
        report(
            f"store_event_batch[{PAGE}]",
            time_each(
                {
                    "stock": lambda i: stock.store_event_batch(batches[i]),
                    "rust": lambda i: rust.store_events([event_row(e) for e in batches[i]]),
                },
                len(batches),
            ),
            "mean",
        )
        long = [retarget(engine, "long-run") for _ in range(long_run)]
        stock.store_event_batch(long)
        rust.store_events([event_row(e) for e in long])

        def rust_records(
            cursor_kind: Literal["none", "storage_id"], cursor: int, limit: int | None
        ) -> Sequence[EventLogEntry]:
            rows = rust.records_for_run("long-run", cursor_kind, cursor, [], limit, True)
            return deserialize_values([body for _, body in rows], EventLogEntry)

        report(
            f"get_records_for_run[{long_run}]",
            time_repeated(
                {
                    "stock": lambda i: stock.get_records_for_run("long-run"),
                    "rust": lambda i: rust_records("none", 0, None),
                },
                budget,
            ),
            "median",
        )
        pages = max(long_run // PAGE, 1)
        report(
            f"get_records_for_run[page {PAGE}]",
            time_repeated(
                {
                    "stock": lambda i: stock.get_records_for_run(
                        "long-run",
                        cursor=_cursor((i % pages) * PAGE),
                        limit=PAGE,
                    ),
                    "rust": lambda i: rust_records("storage_id", (i % pages) * PAGE, PAGE),
                },
                budget,
            ),
            "median",
        )
    finally:
        stock.dispose()
        rust.dispose()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print()
    print(format_table(results))
    print(
        "\nStore level: stock SqliteEventLogStorage vs the native EventStore (the events domain"
        " is not switchable yet). Writes: mean per call, each its own transactions; reads:"
        " median, bodies deserialized on both sides."
    )
    if args.json_path:
        meta = {"n_long_run": long_run, "dir": args.dir, "level": "store", **versions()}
        write_json(args.json_path, results_json(results, meta))
        print(f"wrote {args.json_path}")
    return 0


def _cursor(storage_id: int) -> str:
    return EventLogCursor.from_storage_id(storage_id).to_string()


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "events",
        help="event log store ops, stock vs dagster-rs (store level; domain not switchable yet)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", dest="json_path", help="write results as JSON")
    p.add_argument("--dir", help="parent directory of both storage roots (e.g. /dev/shm)")
    p.add_argument("--quick", action="store_true", help="a small smoke run")
    p.add_argument("--keep", action="store_true", help="keep the storage directories")
    p.set_defaults(func=run_bench)
