"""`python -m dagster_rs.bench events`: the event log, stock Dagster vs dagster-rs.

Measured at the storage API Dagster itself calls: `instance.event_log_storage` of a stock instance
(an empty dagster.yaml: stock's run-sharded `SqliteEventLogStorage`) and of a dagster-rs instance
(a dagster.yaml selecting `dagster_rs.DagsterInstance`: `RustEventLogStorage`, the native core).
Both live in this process, each on its own fresh DAGSTER_HOME (under `--dir` when given), both at
durability full (WAL, synchronous=FULL: stock's default). Every op is timed on both sides in the
same run, the sides taking turns of 20 calls, so load from elsewhere hits both alike.

The events are real: every event of one stock `materialize` of a 20-asset chain (a00 -> a01 ->
..., in-process executor), re-addressed to the benchmark's runs.

Writes (mean per call; each call is its own transaction(s), as Dagster makes them):
  store_event[engine]            an ENGINE_EVENT into an existing run's shard
  store_event[materialization]   an ASSET_MATERIALIZATION (run shard + index + asset tables)
  store_event_batch[100]         100 ASSET_MATERIALIZATIONs in one call (Dagster batches asset
                                 events only: BATCH_WRITABLE_EVENTS)
Reads (median per call after one warm-up):
  get_records_for_run[full]      all events of a run of --n events (default 3,000: the chain's
                                 non-status events, repeated)
  get_records_for_run[page 100]  the same run paged: limit 100, each call continuing from the
                                 cursor the previous call returned (back to the start at the end)
  get_stats_for_run              the chain run (20 steps, 204 events)
  get_step_stats_for_run         the chain run
  fetch_run_status_changes       RUN_START / RUN_SUCCESS alternately, limit 100, on an index of
                                 --status-events run status events (default 1,000 over 500 runs)
End to end (median of --reps after --warmup; see dagster_rs.bench.materialize):
  materialize                    the 20-asset chain on a persistent dagster-rs instance, a
                                 persistent stock instance and stock's ephemeral instance

Data the reads need is loaded untimed through each side's own `store_event_batch` (stock's inside
one transaction per shard, as it would otherwise commit each event); the status events are
inserted into each index shard with stock's own INSERT statement, through each storage's
`index_transaction` (a run status event's shard row plays no part in the query, and creating
500 stock shards would take ~50 s). Every read is checked to answer the same on both sides
before it is timed.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from dagster import DagsterInstance
from dagster._core.events import EVENT_TYPE_TO_PIPELINE_RUN_STATUS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.base import EventLogConnection, EventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from dagster_rs import _native
from dagster_rs.bench.common import (
    FLOOR,
    Budget,
    OpResult,
    Sample,
    add_materialize_args,
    add_output_args,
    calls_meta,
    close_sides,
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
from dagster_rs.bench.materialize import (
    E2EResult,
    capture_chain_events,
    format_e2e,
    time_materialize,
)
from dagster_rs.storage.event_rows import event_row

OPS: tuple[str, ...] = (
    "store_event[engine]",
    "store_event[materialization]",
    "store_event_batch[100]",
    "get_records_for_run[full]",
    "get_records_for_run[page 100]",
    "get_stats_for_run",
    "get_step_stats_for_run",
    "fetch_run_status_changes",
    "materialize",
)
WRITE_OPS = OPS[:3]
READ_OPS = OPS[3:8]

BATCH = 100
PAGE = 100
STATUS_LIMIT = 100
CHAIN = 20  # assets in the chain whose events are replayed, and in the end-to-end chain
SLOW_TURN = 5  # calls per turn for the full read of the long run
STATUS_TYPES = (DagsterEventType.RUN_START, DagsterEventType.RUN_SUCCESS)

LONG_RUN = "long-run"
STEPS_RUN = "steps-run"


@dataclass(frozen=True)
class Settings:
    n: int  # events in the long run
    writes: int  # timed store_event calls per write op
    write_runs: int  # runs the store_event calls go to (round robin)
    batches: int  # timed store_event_batch calls
    status_events: int
    chain: int  # assets in the end-to-end chain
    reps: int
    warmup: int
    budget: Budget
    ops: tuple[str, ...]
    dir: str | None
    json_path: str | None
    keep: bool
    quick: bool


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Captured:
    """The events of one real stock run of the chain."""

    run: list[EventLogEntry]

    def of_type(self, event_type: DagsterEventType) -> list[EventLogEntry]:
        return [e for e in self.run if e.dagster_event_type == event_type]

    @property
    def engine(self) -> EventLogEntry:
        return self.of_type(DagsterEventType.ENGINE_EVENT)[0]

    @property
    def materializations(self) -> list[EventLogEntry]:
        return self.of_type(DagsterEventType.ASSET_MATERIALIZATION)

    @property
    def filler(self) -> list[EventLogEntry]:
        """The run's events without its run status events (those are mirrored to the index)."""
        return [
            e for e in self.run if e.dagster_event_type not in EVENT_TYPE_TO_PIPELINE_RUN_STATUS
        ]


def retarget(entry: EventLogEntry, run_id: str) -> EventLogEntry:
    return entry._replace(run_id=run_id)  # type: ignore[attr-defined]


def cycle_to(events: Sequence[EventLogEntry], n: int, run_id: str) -> list[EventLogEntry]:
    return [retarget(events[i % len(events)], run_id) for i in range(n)]


# -- loading -----------------------------------------------------------------------------------


@contextmanager
def _one_transaction_per_shard(storage: SqliteEventLogStorage) -> Iterator[None]:
    """Make stock's `_connect(shard)` reuse one connection and transaction per shard.

    Stock's own `store_event` code runs unchanged (same rows, same index mirroring); only the
    per-event engine, connection and commit are shared. Everything commits when the block ends.
    """
    conns: dict[str, Connection] = {}
    with ExitStack() as stack:

        @contextmanager
        def connect(shard: str) -> Iterator[Connection]:
            conn = conns.get(shard)
            if conn is None:
                engine = create_engine(storage.conn_string_for_shard(shard), poolclass=NullPool)
                stack.callback(engine.dispose)
                initialized = storage._initialized_dbs  # noqa: SLF001
                if shard not in initialized:
                    storage._initdb(engine)  # noqa: SLF001
                    initialized.add(shard)
                conn = stack.enter_context(engine.connect())
                stack.enter_context(conn.begin())
                conns[shard] = conn
            yield conn

        storage._connect = connect  # type: ignore[method-assign]  # noqa: SLF001
        try:
            yield
        finally:
            del storage._connect  # back to the class's method  # noqa: SLF001


def bulk_store(kind: str, storage: EventLogStorage, events: Sequence[EventLogEntry]) -> None:
    """Store `events` untimed through the side's own `store_event_batch`, fast."""
    if kind == "stock":
        if not isinstance(storage, SqliteEventLogStorage):
            raise TypeError(f"stock event log is {type(storage).__name__}, expected SQLite")
        with _one_transaction_per_shard(storage):
            storage.store_event_batch(events)
    else:
        storage.store_event_batch(events)  # the core writes a batch in one transaction


def index_only(storage: EventLogStorage, events: Sequence[EventLogEntry]) -> None:
    """Insert `events` into the index shard only, with stock's INSERT, in one transaction."""
    if not isinstance(storage, SqliteEventLogStorage):
        raise TypeError(f"event log is {type(storage).__name__}, expected SQLite")
    with storage.index_transaction() as conn:
        for event in events:
            conn.execute(storage.prepare_insert_event(event))


# -- the read ops ------------------------------------------------------------------------------


class PageWalker:
    """Pages through a run with the cursor each call returns; starts over after the last page."""

    def __init__(self, storage: EventLogStorage, run_id: str):
        self.storage = storage
        self.run_id = run_id
        self.cursor: str | None = None

    def __call__(self, _i: int) -> EventLogConnection:
        conn = self.storage.get_records_for_run(self.run_id, cursor=self.cursor, limit=PAGE)
        self.cursor = conn.cursor if conn.has_more else None
        return conn


def _read_op(op: str, storage: EventLogStorage) -> Callable[[int], object]:
    if op == "get_records_for_run[full]":
        return lambda i: storage.get_records_for_run(LONG_RUN)
    if op == "get_records_for_run[page 100]":
        return PageWalker(storage, LONG_RUN)
    if op == "get_stats_for_run":
        return lambda i: storage.get_stats_for_run(STEPS_RUN)
    if op == "get_step_stats_for_run":
        return lambda i: storage.get_step_stats_for_run(STEPS_RUN)
    if op == "fetch_run_status_changes":
        return lambda i: storage.fetch_run_status_changes(
            STATUS_TYPES[i % len(STATUS_TYPES)], limit=STATUS_LIMIT
        )
    raise ValueError(op)


def _normalized(result: object) -> object:
    """What must be equal on both sides: ids, types and bodies of records; the rest as is."""
    records = getattr(result, "records", None)
    if records is None:
        return result
    return (
        [(r.storage_id, r.event_log_entry) for r in records],
        getattr(result, "cursor", None),
        getattr(result, "has_more", None),
    )


# -- the benchmark -----------------------------------------------------------------------------


def run_bench(s: Settings) -> int:
    started = time.perf_counter()
    print(f"dagster-rs bench: events  n={s.n}  dir={s.dir or '(system temp)'}", flush=True)
    t0 = time.perf_counter()
    captured = Captured(capture_chain_events(CHAIN))
    print(
        f"  captured {len(captured.run)} events of one stock materialize of a {CHAIN}-asset chain"
        f" ({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    storage_ops = [op for op in s.ops if op != "materialize"]
    results: list[OpResult] = []
    mismatches: list[str] = []
    rust_domains: list[str] = []
    durability = "?"
    homes: dict[str, str] = {}
    instances: dict[str, DagsterInstance] = {}

    try:
        if storage_ops:
            homes = make_homes(s.dir)
            for kind, home in homes.items():
                instances[kind] = open_instance(home)
                print(f"  {kind:5s} DAGSTER_HOME={home}", flush=True)
            rust_inst = instances["rust"]
            rust_domains = sorted(getattr(rust_inst, "rust_domains", ()))
            durability = str(getattr(rust_inst, "durability", "?"))
            storages = {kind: inst.event_log_storage for kind, inst in instances.items()}
            for kind, st in storages.items():
                print(f"  {kind:5s} event_log_storage: {type(st).__module__}.{type(st).__name__}")
            if "events" not in rust_domains:
                print(f"  WARNING: the events domain is not live in Rust ({rust_domains})")
            gc.collect()
            gc.freeze()
            sides = Sides(s, captured, storages, results, mismatches)
            _writes(sides)
            _reads(sides)
    finally:
        close_sides(instances, homes, s.keep)
        gc.unfreeze()

    e2e: E2EResult | None = None
    if "materialize" in s.ops:
        print(flush=True)
        e2e = time_materialize(
            s.chain,
            s.reps,
            s.warmup,
            s.dir,
            keep=s.keep,
            progress=lambda line: print(line, flush=True),
        )
        if not rust_domains:
            rust_domains, durability = e2e.rust_domains, e2e.durability

    if results:
        print()
        print(format_table(results))
        print()
        print(
            "stock/rust > 1 means dagster-rs is faster. Storage API level: each instance's"
            " event_log_storage (stock SqliteEventLogStorage, dagster-rs RustEventLogStorage)."
            f" Durability full on both (dagster-rs: {durability}). Sides take turns of 20 calls."
            " Writes: mean per call, each its own transaction(s); reads: median per call."
        )
    if e2e is not None:
        print()
        print(format_e2e(e2e))
    if s.keep and homes:
        print(f"\nHomes kept: {homes['stock']}  {homes['rust']}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    print_mismatches(mismatches)

    if s.json_path:
        meta: dict[str, Any] = {
            "bench": "events",
            "level": "storage",
            **sides_meta(s.dir, durability, rust_domains),
            "n_long_run": s.n,
            "writes": s.writes,
            "write_runs": s.write_runs,
            "batches": s.batches,
            "batch_size": BATCH,
            "page": PAGE,
            "status_events": s.status_events,
            "status_limit": STATUS_LIMIT,
            "captured_events": len(captured.run),
            **calls_meta(results),
            "quick": s.quick,
            "mismatches": mismatches,
        }
        payload = results_json(results, meta)
        if e2e is not None:
            payload["materialize"] = {
                "rust_s": e2e.median("rust"),
                "stock_s": e2e.median("stock"),
                "ephemeral_s": e2e.median("ephemeral"),
                **e2e.to_json(),
            }
        write_json(s.json_path, payload)
        print(f"wrote {s.json_path}")
    return 1 if mismatches else 0


Fns = dict[str, Callable[[int], object]]


@dataclass
class Sides:
    """The two sides' event log storages, what the ops read and write, and what they found."""

    s: Settings
    captured: Captured
    storages: dict[str, EventLogStorage]
    results: list[OpResult]
    mismatches: list[str]

    def ops(self, of: Sequence[str]) -> list[str]:
        """The ops of `of` the settings select."""
        return [op for op in of if op in self.s.ops]

    def report(self, op: str, samples: dict[str, Sample], stat: str) -> None:
        res = op_result(op, samples, stat)
        self.results.append(res)
        print(progress_line(res, 30, 11), flush=True)


def _writes(sides: Sides) -> None:
    s, captured, storages, report = sides.s, sides.captured, sides.storages, sides.report
    ops = sides.ops(WRITE_OPS)
    if not ops:
        return
    engine, mats = captured.engine, captured.materializations
    write_runs = [f"write-{k}" for k in range(s.write_runs)]
    batch_runs = [f"batch-{b}" for b in range(s.batches)]
    # A run's first event creates its shard (stock: ~100 ms of schema setup); events of a
    # running run go to an existing shard, so the shards are made before the timing.
    for kind, st in storages.items():
        bulk_store(kind, st, [retarget(engine, run) for run in write_runs + batch_runs])
    # The floor: the same rows through the core's own `store_events` into an event log of its
    # own (so both sides still hold the same events, with the same ids, afterwards), in the
    # same state as the rust side's (the same shards made first).
    floor_dir = tempfile.mkdtemp(prefix="dagster-rs-bench-floor-", dir=s.dir)
    floor_store = _native.EventStore(floor_dir, storages["rust"].durability)  # type: ignore[attr-defined]
    floor_store.store_events([event_row(retarget(engine, r)) for r in write_runs + batch_runs])

    def floor(batches: Sequence[Sequence[EventLogEntry]]) -> Callable[[int], object]:
        """`store_events` of each batch, its rows (bodies serialized) made beforehand: the
        transaction(s) without building anything from Dagster's objects."""
        rows = [[event_row(e) for e in b] for b in batches]
        return lambda i: floor_store.store_events(rows[i])

    def each(call: Callable[[EventLogStorage, Any], None], args: Sequence[Any]) -> Fns:
        """`call(storage, args[i])` as fn(i), per side."""

        def bind(st: EventLogStorage) -> Callable[[int], object]:
            return lambda i: call(st, args[i])

        return {kind: bind(st) for kind, st in storages.items()}

    for op in ops:
        if op == "store_event_batch[100]":
            batches = [cycle_to(mats, BATCH, run) for run in batch_runs]
            fns = each(lambda st, b: st.store_event_batch(b), batches)
            fns[FLOOR] = floor(batches)
            report(op, time_each(fns, s.batches), "mean")
            continue
        source = [engine] if op == "store_event[engine]" else mats
        events = [
            retarget(source[i % len(source)], write_runs[i % s.write_runs]) for i in range(s.writes)
        ]
        fns = each(lambda st, e: st.store_event(e), events)
        fns[FLOOR] = floor([[e] for e in events])
        report(op, time_each(fns, s.writes), "mean")
    floor_store.dispose()
    shutil.rmtree(floor_dir, ignore_errors=True)
    for run in write_runs[:1] + batch_runs[:1]:
        counts = {kind: len(st.get_records_for_run(run).records) for kind, st in storages.items()}
        if counts["stock"] != counts["rust"]:
            sides.mismatches.append(f"events stored in {run}: {counts}")


def _reads(sides: Sides) -> None:
    s, captured, storages, report = sides.s, sides.captured, sides.storages, sides.report
    ops = sides.ops(READ_OPS)
    if not ops:
        return
    t0 = time.perf_counter()
    long = cycle_to(captured.filler, s.n, LONG_RUN)
    steps = [retarget(e, STEPS_RUN) for e in captured.run]
    starts, successes = STATUS_TYPES
    status_pair = [captured.of_type(starts)[0], captured.of_type(successes)[0]]
    status = [
        retarget(e, f"status-{k:05d}") for k in range(s.status_events // 2) for e in status_pair
    ]
    for kind, st in storages.items():
        bulk_store(kind, st, long + steps)
        index_only(st, status)
    print(
        f"  loaded untimed: a run of {len(long)} events, the chain run ({len(steps)} events),"
        f" {len(status)} run status events in the index ({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    gc.collect()
    for op in ops:
        # Both sides must answer the same before they are timed (fresh walkers for pages).
        check = {kind: _read_op(op, st) for kind, st in storages.items()}
        mismatch = first_mismatch(op, check, width=300, normalize=_normalized)
        if mismatch:
            sides.mismatches.append(mismatch)
        fns = {kind: _read_op(op, st) for kind, st in storages.items()}
        if op == "get_records_for_run[full]":
            # ~0.2-0.4 s a call: turns of 20 would leave a single turn per side, so load drift
            # would hit one side only. Short turns, more of them (CPU caches do not matter here).
            budget = s.budget if s.quick else replace(s.budget, min_calls=30, max_seconds=12.0)
            report(op, time_repeated(fns, budget, turn=SLOW_TURN), "median")
        else:
            report(op, time_repeated(fns, s.budget), "median")


# -- command line ------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "events",
        help="event log storage ops and materialize end to end, stock vs dagster-rs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--n", type=int, default=None, help="events in the long run (default 3000; quick 200)"
    )
    add_output_args(p, OPS)
    p.add_argument("--quick", action="store_true", help="a small smoke run")
    p.add_argument(
        "--status-events",
        type=int,
        default=None,
        metavar="N",
        help="run status events in the index (default 1000; quick 100)",
    )
    add_materialize_args(p, CHAIN)
    p.set_defaults(func=main)


def settings_from_args(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    n = args.n if args.n is not None else (200 if quick else 3000)
    if n < 1:
        raise SystemExit("--n must be at least 1")
    ops = parse_ops(args.ops, OPS)
    if quick:
        budget = Budget(min_calls=5, max_calls=40, min_seconds=0.02, max_seconds=0.15)
    else:
        budget = Budget(min_calls=20, max_calls=2000, min_seconds=1.0, max_seconds=4.0)
    status_events = (
        args.status_events if args.status_events is not None else (100 if quick else 1000)
    )
    return Settings(
        n=n,
        writes=10 if quick else 300,
        write_runs=2 if quick else 10,
        batches=1 if quick else 5,
        status_events=max(status_events, 2),
        chain=args.chain if args.chain is not None else (3 if quick else CHAIN),
        reps=max(args.reps if args.reps is not None else (1 if quick else 5), 1),
        warmup=max(args.warmup if args.warmup is not None else (0 if quick else 1), 0),
        budget=budget,
        ops=ops,
        dir=args.dir,
        json_path=args.json_path,
        keep=args.keep,
        quick=quick,
    )


def main(args: argparse.Namespace) -> int:
    return run_bench(settings_from_args(args))


__all__ = ["OPS", "add_parser", "main", "run_bench", "settings_from_args"]
