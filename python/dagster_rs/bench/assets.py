"""`python -m dagster_rs.bench assets`: the assets and storage domains, stock Dagster vs dagster-rs.

Both instances live in this process, each on its own fresh DAGSTER_HOME (under `--dir` when
given), both at durability full, and hold the same data: the same runs and the same events, stored
in the same order, so the storage ids agree. Every op is timed on both sides in the same run, the
sides taking turns of 20 calls; every read is checked to answer the same on both sides first.
Calls go through the instance where Dagster has an instance method, else through
`instance.event_log_storage`, so they measure whatever serves the method on each side (on
dagster-rs, the native stores of the domains live in Rust).

The data, loaded untimed through each side's own `store_event_batch` (stock's in one transaction
per run shard, as `bench events` loads it, with its per-event schema checks answered from a
cache): A partitioned assets (default 100; `@asset`s sharing an hourly `PartitionsDefinition` of
--partitions P partitions, default 1,000) and M materializations (default 100,000) spread over
R runs (default 100) like a backfill: run r materializes every asset for one contiguous range of
partitions (M > A x P wraps round and materializes partitions again; M < A x P leaves the last
partitions unmaterialized). A quarter of every asset's materializations carry tags (a data
version, a code version, a team tag); all carry a little metadata. Two more runs hold
ASSET_MATERIALIZATION_PLANNED events without materializations: a FAILURE run (5 partitions per
asset: failed) and a STARTED run (2 per asset: in progress), so the partition status has failed
and in-progress partitions to find, as on a busy deployment's asset page.

Reads (median per call after one warm-up; call i reads asset i mod A unless noted):
  get_asset_records                  instance.get_asset_records of all A keys
  fetch_materializations[limit 100]  instance.fetch_materializations(key, limit=100): the latest
  fetch_materializations[all, pages of 100]
                                     one asset's whole history, page by page: limit 100, each page
                                     from the cursor of the one before, until has_more is False
  get_materialized_partitions        instance.get_materialized_partitions(key)
  get_latest_storage_id_by_partition instance.get_latest_storage_id_by_partition(key,
                                     ASSET_MATERIALIZATION)
  get_latest_tags_by_partition       event_log_storage.get_latest_tags_by_partition(key,
                                     ASSET_MATERIALIZATION, ["dagster/data_version"])
  partition_status[cold]             the asset page's partition status of asset 0 (P partitions):
                                     `get_partition_subsets` (partition_status_cache.py) with a
                                     fresh LoadingContext, as dagster-graphql calls it per request:
                                     the asset record, the latest planned event, the materialized
                                     partitions, the attempts without materializations and their
                                     runs, the subsets built and the status cache written; the
                                     cached status is wiped (untimed) before every call
  partition_status[warm]             the same read with the status cache up to date: only the
                                     asset record, the latest planned event, the attempts after
                                     the in-progress cursor and their runs are read; nothing is
                                     written
Writes (mean per call; each call its own transaction(s), as Dagster makes them):
  wipe_asset_partitions              instance.wipe_asset_partitions of one partition (stock raises
                                     NotImplementedError on SQLite: reported as unsupported on
                                     that side, and not timed unless both sides support it)
  add_dynamic_partitions[1000]       instance.add_dynamic_partitions of 1,000 keys, to a new
                                     partitions definition name per call
  claim_concurrency_slot[claim+free] event_log_storage.claim_concurrency_slot then
                                     free_concurrency_slot_for_step, for a new step each call, on
                                     a pool limited to 10 slots of which 5 are held throughout
Scale (separately labelled; --big-partitions N, default 30,000, 0 or --quick to skip):
  partition_status[big]              partition_status[cold] and [warm] of one more asset with N
                                     partitions, each materialized once (loaded when its turn
                                     comes); turns of one call, no warm-up (the first calls are
                                     the ones compared), and a side whose call takes over 120 s is
                                     timed no further: that single call is reported
End to end (median of --reps after --warmup; see dagster_rs.bench.materialize):
  materialize                        the 20-asset chain on a persistent dagster-rs instance vs
                                     stock's in-memory ephemeral instance (target <= 0.6x)

Targets (the issue): reads at least 5x faster than stock, writes at least 20x.

Floors: each op is timed next to its floor, the same SQL through the native core with inputs
prepared beforehand and no Dagster object built. `FLOORS` maps an op to a factory that builds the
floor's fn(i) from the dagster-rs instance: every read replays the native calls its dagster-rs
side makes (`dagster_rs.bench.replay`); a write floor writes to a store of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    HourlyPartitionsDefinition,
    asset,
)
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
)
from dagster._core.definitions.partitions.definition import PartitionsDefinition
from dagster._core.definitions.partitions.subset import PartitionsSubset
from dagster._core.event_api import EventLogRecord, EventRecordsResult
from dagster._core.events import (
    AssetMaterializationPlannedData,
    DagsterEvent,
    DagsterEventType,
    StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.types import CachingDynamicPartitionsLoader
from dagster._core.loader import LoadingContextForTest
from dagster._core.storage.event_log.base import AssetRecord, EventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.partition_status_cache import get_partition_subsets
from dagster._core.utils import make_new_run_id

from dagster_rs import _native
from dagster_rs.bench.common import (
    BLOCK,
    FLOOR,
    Budget,
    OpResult,
    Sample,
    add_materialize_args,
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
from dagster_rs.bench.events import bulk_store
from dagster_rs.bench.materialize import E2EResult, format_e2e, time_materialize
from dagster_rs.bench.replay import replay_floor

READ_OPS: tuple[str, ...] = (
    "get_asset_records",
    "fetch_materializations[limit 100]",
    "fetch_materializations[all, pages of 100]",
    "get_materialized_partitions",
    "get_latest_storage_id_by_partition",
    "get_latest_tags_by_partition",
    "partition_status[cold]",
    "partition_status[warm]",
)
WRITE_OPS: tuple[str, ...] = (
    "wipe_asset_partitions",
    "add_dynamic_partitions[1000]",
    "claim_concurrency_slot[claim+free]",
)
BIG_OP = "partition_status[big]"
OPS: tuple[str, ...] = (*READ_OPS, *WRITE_OPS, BIG_OP, "materialize")

# The targets: how many times faster than stock dagster-rs must be (stock/rust).
READ_TARGET = 5.0
WRITE_TARGET = 20.0
MATERIALIZE_TARGET = 0.6  # dagster-rs persistent / stock ephemeral, at most

PAGE = 100
DYNAMIC_KEYS = 1000
POOL = "bench_pool"
POOL_LIMIT = 10
POOL_HELD = 5  # slots claimed by other runs for the whole benchmark
FAILED_PER_ASSET = 5
IN_PROGRESS_PER_ASSET = 2
TAGGED_EVERY = 4  # one materialization in TAGGED_EVERY carries tags
CHAIN = 20
JOB = "bench_assets_job"
START = datetime(2020, 1, 1)
EPOCH = 1_700_000_000.0  # event timestamps count up from here, 1 ms apart
BIG_CAP_S = 120.0  # a side whose big partition-status call takes longer is timed no further
BIG_TURN = 1

Fn = Callable[[int], object]
Fns = dict[str, Fn]


@dataclass(frozen=True)
class Settings:
    assets: int
    partitions: int
    materializations: int
    runs: int
    big_partitions: int
    writes: int  # timed calls per write op
    dynamic_calls: int  # timed add_dynamic_partitions calls
    chain: int
    reps: int
    warmup: int
    budget: Budget
    big_budget: Budget
    ops: tuple[str, ...]
    dir: str | None
    json_path: str | None
    keep: bool
    quick: bool


# -- the data ----------------------------------------------------------------------------------


def hourly_partitions(n: int) -> HourlyPartitionsDefinition:
    """Exactly n hourly partitions from 2020-01-01-00:00 (an end date keeps the set fixed)."""
    fmt = "%Y-%m-%d-%H:%M"
    end = START + timedelta(hours=n)
    return HourlyPartitionsDefinition(start_date=START.strftime(fmt), end_date=end.strftime(fmt))


def partitioned_asset(name: str, partitions_def: PartitionsDefinition) -> AssetsDefinition:
    @asset(name=name, partitions_def=partitions_def)
    def _asset() -> None:
        return None

    return _asset


@dataclass(frozen=True)
class AssetSet:
    """Partitioned assets sharing one real `PartitionsDefinition`."""

    assets: tuple[AssetsDefinition, ...]
    keys: list[AssetKey]  # the assets' keys, in order
    partitions_def: PartitionsDefinition
    partition_keys: tuple[str, ...]

    @classmethod
    def make(cls, names: Sequence[str], partitions: int) -> AssetSet:
        pdef = hourly_partitions(partitions)
        assets = tuple(partitioned_asset(name, pdef) for name in names)
        return cls(assets, [a.key for a in assets], pdef, tuple(pdef.get_partition_keys()))


@dataclass(frozen=True)
class Runs:
    """The runs the events belong to: `done` (SUCCESS) hold the materializations; `failed`
    (FAILURE) and `started` (STARTED) hold planned materializations that never happened."""

    done: tuple[str, ...]
    failed: str
    started: str

    @classmethod
    def make(cls, n: int) -> Runs:
        return cls(tuple(make_new_run_id() for _ in range(n)), make_new_run_id(), make_new_run_id())

    def dagster_runs(self) -> list[DagsterRun]:
        statuses = [(r, DagsterRunStatus.SUCCESS) for r in self.done]
        statuses += [(self.failed, DagsterRunStatus.FAILURE)]
        statuses += [(self.started, DagsterRunStatus.STARTED)]
        return [DagsterRun(job_name=JOB, run_id=r, status=s) for r, s in statuses]


def _entry(run_id: str, key: AssetKey, event: DagsterEvent, timestamp: float) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.DEBUG,
        user_message="",
        run_id=run_id,
        timestamp=timestamp,
        step_key=key.path[-1],
        job_name=JOB,
        dagster_event=event,
    )


def materialization(
    run_id: str, key: AssetKey, partition: str, k: int, tagged: bool
) -> EventLogEntry:
    """The k-th materialization, with a little metadata, and tags when `tagged`."""
    tags = (
        {
            DATA_VERSION_TAG: f"dv-{k}",
            DATA_VERSION_IS_USER_PROVIDED_TAG: "true",
            CODE_VERSION_TAG: "v1",
            "team": "data",
        }
        if tagged
        else None
    )
    mat = AssetMaterialization(
        asset_key=key, partition=partition, tags=tags, metadata={"rows": k % 9973}
    )
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name=JOB,
        step_key=key.path[-1],
        event_specific_data=StepMaterializationData(mat),
        message="Materialized value.",
    )
    return _entry(run_id, key, event, EPOCH + k / 1000)


def planned(run_id: str, key: AssetKey, partition: str, timestamp: float) -> EventLogEntry:
    event = DagsterEvent.build_asset_materialization_planned_event(
        JOB, key.path[-1], AssetMaterializationPlannedData(key, partition=partition)
    )
    return _entry(run_id, key, event, timestamp)


def history(
    assets: AssetSet, runs: Runs, total: int, first_k: int = 0
) -> Iterator[list[EventLogEntry]]:
    """The events in storage order, one list per run: the materializations, then the planned
    events of the failed and the started run.

    Materialization k is of asset k mod A, of partition (k div A) mod P, in run k * R div total:
    each run a backfill of one range of partitions of every asset. `first_k` numbers the events
    on from an earlier history (their timestamps, tags and metadata follow k).
    """
    keys, parts, n_runs = assets.keys, assets.partition_keys, len(runs.done)
    for r, run in enumerate(runs.done):
        # the k with k * R div total == r
        ks = range(-(-r * total // n_runs), -(-(r + 1) * total // n_runs))
        yield [_materialization(assets, run, k, first_k) for k in ks]
    after = EPOCH + (first_k + total) / 1000
    for run, count, offset in (
        (runs.failed, FAILED_PER_ASSET, 0),
        (runs.started, IN_PROGRESS_PER_ASSET, 1),
    ):
        picks = _spread(parts, count, offset)
        yield [planned(run, key, p, after) for key in keys for p in picks]


def _materialization(assets: AssetSet, run_id: str, k: int, first_k: int) -> EventLogEntry:
    """Materialization k of the history: asset k mod A, partition (k div A) mod P; tags on one
    partition in TAGGED_EVERY of every asset (asset + slot), so every asset has some."""
    keys, parts = assets.keys, assets.partition_keys
    slot, index = divmod(k, len(keys))
    tagged = (slot + index) % TAGGED_EVERY == 0
    return materialization(run_id, keys[index], parts[slot % len(parts)], first_k + k, tagged)


def _spread(items: Sequence[str], count: int, offset: int) -> list[str]:
    """`count` items spread evenly over `items`; an offset keeps two runs' picks apart."""
    step = max(len(items) // (count + 1), 1)
    return [items[(step * (j + 1) + offset) % len(items)] for j in range(min(count, len(items)))]


# -- loading -----------------------------------------------------------------------------------


@contextmanager
def _schema_checks_cached(storage: EventLogStorage) -> Iterator[None]:
    """Answer stock's per-event schema checks from a cache while loading.

    Every stored asset event asks `has_table("asset_event_tags")` (a new engine and a PRAGMA) and
    whether `asset_keys` has its index columns (a PRAGMA): a quarter of stock's load time. Their
    answers cannot change during the load, so the rows written are the same.
    """
    if not isinstance(storage, SqliteEventLogStorage):
        raise TypeError(f"stock event log is {type(storage).__name__}, expected SQLite")
    tables: dict[str, bool] = {}
    columns: dict[str, bool] = {}
    has_table, has_col = storage.has_table, storage._has_asset_key_col_on_connection

    def cached_has_table(name: str) -> bool:
        if name not in tables:
            tables[name] = has_table(name)
        return tables[name]

    def cached_has_col(conn: Any, column: str) -> bool:
        if column not in columns:
            columns[column] = has_col(conn, column)
        return columns[column]

    patched = {"has_table": cached_has_table, "_has_asset_key_col_on_connection": cached_has_col}
    for name, method in patched.items():
        setattr(storage, name, method)
    try:
        yield
    finally:
        for name in patched:
            delattr(storage, name)  # back to the class's methods


@dataclass(frozen=True)
class Loaded:
    events: int
    seconds: dict[str, float]  # per side

    def describe(self) -> str:
        return (
            f"{self.events} events ({', '.join(f'{k} {t:.1f} s' for k, t in self.seconds.items())})"
        )


def load_events(
    instances: Mapping[str, DagsterInstance], batches: Iterator[list[EventLogEntry]]
) -> Loaded:
    """Store each batch (a run's events) on both sides in turn through their own
    `store_event_batch`: stock's in one transaction per shard, its schema checks cached."""
    events = 0
    seconds = dict.fromkeys(instances, 0.0)
    for batch in batches:
        for kind, inst in instances.items():
            t0 = time.perf_counter()
            storage = inst.event_log_storage
            if kind == "stock":
                with _schema_checks_cached(storage):
                    bulk_store(kind, storage, batch)
            else:
                bulk_store(kind, storage, batch)
            seconds[kind] += time.perf_counter() - t0
        events += len(batch)
    return Loaded(events, seconds)


def load_runs(instances: Mapping[str, DagsterInstance], runs: Runs) -> None:
    for inst in instances.values():
        for run in runs.dagster_runs():
            inst.add_run(run)


# -- floors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloorContext:
    """What a floor factory gets to build an op's floor fn(i).

    fn(i) must do the work of the op's i-th call, `args(i)` (the exact arguments the op passes
    to Dagster; `args(i) == args(i % period)`), through the native core: convert the arguments
    of all `period` calls beforehand (e.g. `key.to_string()`), so that fn(i) only calls the core.
    `call` is the op's dagster-rs side and `before` its untimed setup, if any (a read's floor
    replays what `call` runs in the core). A write floor must write to a store of its own,
    created under `dir` (as `bench events` does), so that both sides still hold the same data
    afterwards; `defer(fn)` runs fn (e.g. disposing that store and removing its directory) when
    the benchmark ends.
    """

    instance: DagsterInstance  # the dagster-rs side; its core: instance.event_log_storage
    args: Callable[[int], tuple[Any, ...]]
    period: int
    partitions_def: PartitionsDefinition | None
    dir: str | None
    defer: Callable[[Callable[[], object]], object]
    call: Fn | None = None
    before: Fn | None = None


FloorFactory = Callable[[FloorContext], Fn | None]


def _replayed(ctx: FloorContext) -> Fn | None:
    """A read's floor: the native calls of its dagster-rs side, recorded once per distinct call
    (after its setup) and replayed."""
    if ctx.call is None:
        return None
    return replay_floor(ctx.instance, ctx.call, ctx.period, ctx.before)


# op -> the factory of its floor, or None (the table shows "-"). The ops are those of READ_OPS
# and WRITE_OPS, and "partition_status[big, cold]" / "[big, warm]" for the status at
# --big-partitions. Reads replay their native calls; writes need a store of their own.
FLOORS: dict[str, FloorFactory | None] = {
    **{op: _replayed for op in (*READ_OPS, "partition_status[big, cold]")},
    "partition_status[big, warm]": _replayed,
    **dict.fromkeys(WRITE_OPS),
}


def _floor_storage(ctx: FloorContext) -> _native.StorageStore:
    """A storage-domain store of its own under `ctx.dir`, at the dagster-rs side's durability,
    its index created; removed when the benchmark ends."""
    root = tempfile.mkdtemp(prefix="dagster-rs-bench-floor-", dir=ctx.dir)
    core = _native.DagsterInstance(root, getattr(ctx.instance, "durability", "full"))
    store = core.storage
    store.tables()

    def remove() -> None:
        core.dispose()
        shutil.rmtree(root, ignore_errors=True)

    ctx.defer(remove)
    return store


def _add_dynamic_partitions_floor(ctx: FloorContext) -> Fn | None:
    """The core's `add_partitions` of the same definition name and keys, in one transaction."""
    store = _floor_storage(ctx)
    calls = [(name, list(keys)) for name, keys in (ctx.args(i) for i in range(ctx.period))]
    return lambda i: store.add_partitions(*calls[i % len(calls)])


def _claim_and_free_floor(ctx: FloorContext) -> Fn | None:
    """The core's claim then free of the same step, on a pool set up as both sides' is."""
    store = _floor_storage(ctx)
    store.set_slots(POOL, POOL_LIMIT)
    for j in range(POOL_HELD):
        store.claim(POOL, "holder-run", f"held_{j}")
    calls = [ctx.args(i) for i in range(ctx.period)]

    def cycle(i: int) -> object:
        run_id, step_key = calls[i % len(calls)]
        claimed = store.claim(POOL, run_id, step_key)
        store.free(run_id, step_key)
        return claimed

    return cycle


# The storage domain's write ops, through its native store (`_native.StorageStore`).
FLOORS["add_dynamic_partitions[1000]"] = _add_dynamic_partitions_floor
FLOORS["claim_concurrency_slot[claim+free]"] = _claim_and_free_floor


def floor_fn(op: str, ctx: FloorContext) -> Fn | None:
    factory = FLOORS.get(op)
    return factory(ctx) if factory is not None else None


# -- timing ------------------------------------------------------------------------------------


def time_rounds(
    fns: Mapping[str, Fn],
    budget: Budget,
    *,
    setup: Mapping[str, Fn] | None = None,
    turn: int = BLOCK,
    warmup: bool = True,
    cap_s: float | None = None,
    first: dict[str, object] | None = None,
) -> dict[str, Sample]:
    """`common.time_repeated` with an untimed `setup[kind](i)` before every call (a side without
    a setup gets none), an optional warm-up, and a cap: a side whose call took longer than
    `cap_s` is timed no further (its sample is what it had). `first`, when given, receives each
    side's answer to its first timed call."""
    setup = setup or {}

    def prepare(kind: str, i: int) -> None:
        if kind in setup:
            setup[kind](i)

    if warmup:
        for kind, fn in fns.items():
            prepare(kind, 0)
            fn(0)
    gc.collect()
    times: dict[str, list[float]] = {kind: [] for kind in fns}
    spent = dict.fromkeys(fns, 0.0)
    active = set(fns)
    clock = time.perf_counter
    i = 0
    while active:
        for kind, fn in fns.items():
            for j in range(i, i + turn):
                if kind not in active:
                    break
                prepare(kind, j)
                t0 = clock()
                answer = fn(j)
                dt = clock() - t0
                if first is not None and j == 0:
                    first[kind] = answer
                times[kind].append(dt)
                spent[kind] += dt
                if cap_s is not None and dt > cap_s:
                    active.discard(kind)
        i += turn
        if not active or i >= budget.max_calls:
            break
        if max(spent[k] for k in active) >= budget.max_seconds:
            break
        if i >= budget.min_calls and min(spent[k] for k in active) >= budget.min_seconds:
            break
    return {kind: Sample(tuple(ts)) for kind, ts in times.items()}


# -- the read ops ------------------------------------------------------------------------------


class PageLoad:
    """The asset page's partition status read, as dagster-graphql makes it per request: a fresh
    loading context and dynamic partitions loader, `get_partition_subsets` awaited on a loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def partition_status(
        self, inst: DagsterInstance, key: AssetKey, partitions_def: PartitionsDefinition
    ) -> tuple[PartitionsSubset | None, ...]:
        subsets = get_partition_subsets(
            inst,
            LoadingContextForTest(inst),
            key,
            CachingDynamicPartitionsLoader(inst),
            partitions_def,
        )
        return self.loop.run_until_complete(subsets)

    def close(self) -> None:
        self.loop.close()


class Pages(NamedTuple):
    """An asset's whole history read page by page."""

    records: list[EventLogRecord]
    cursor: str  # the last page's
    pages: int


def all_pages(inst: DagsterInstance, key: AssetKey) -> Pages:
    """Every materialization of `key`, PAGE at a time, each page from the cursor of the one
    before, until a page says there is no more (a full last page is followed by an empty one)."""
    records: list[EventLogRecord] = []
    cursor: str | None = None
    pages = 0
    while True:
        result = inst.fetch_materializations(key, limit=PAGE, cursor=cursor)
        records.extend(result.records)
        cursor, pages = result.cursor, pages + 1
        if not result.has_more:
            return Pages(records, cursor, pages)


def read_call(op: str, page: PageLoad) -> Callable[..., object]:
    """The op as call(instance, *args)."""
    mat = DagsterEventType.ASSET_MATERIALIZATION
    calls: dict[str, Callable[..., object]] = {
        "get_asset_records": lambda inst, keys: inst.get_asset_records(keys),
        "fetch_materializations[limit 100]": lambda inst, key: inst.fetch_materializations(
            key, limit=PAGE
        ),
        "fetch_materializations[all, pages of 100]": all_pages,
        "get_materialized_partitions": lambda inst, key: inst.get_materialized_partitions(key),
        "get_latest_storage_id_by_partition": lambda inst, key: (
            inst.get_latest_storage_id_by_partition(key, mat)
        ),
        "get_latest_tags_by_partition": lambda inst, key: (
            inst.event_log_storage.get_latest_tags_by_partition(key, mat, [DATA_VERSION_TAG])
        ),
        "partition_status[cold]": page.partition_status,
        "partition_status[warm]": page.partition_status,
    }
    return calls[op]


def read_args(op: str, assets: AssetSet) -> tuple[Callable[[int], tuple[Any, ...]], int]:
    """The op's i-th arguments as args(i), and their period."""
    keys = assets.keys
    if op == "get_asset_records":
        return (lambda i: (keys,)), 1
    if op.startswith("partition_status"):
        return (lambda i: (keys[0], assets.partitions_def)), 1
    return (lambda i: (keys[i % len(keys)],)), len(keys)


def normalized(result: object) -> object:
    """What must be equal on both sides: storage ids, keys, entries, partitions (sorted)."""
    if isinstance(result, EventRecordsResult):
        return (
            [(r.storage_id, r.event_log_entry) for r in result.records],
            result.cursor,
            result.has_more,
        )
    if isinstance(result, Pages):
        return [(r.storage_id, r.event_log_entry) for r in result.records], result[1:]
    if isinstance(result, tuple) and all(
        s is None or isinstance(s, PartitionsSubset) for s in result
    ):
        return tuple(None if s is None else sorted(s.get_partition_keys()) for s in result)
    if isinstance(result, list) and all(isinstance(r, AssetRecord) for r in result):
        return [(r.storage_id, r.asset_entry) for r in result]
    if isinstance(result, set):
        return sorted(result)
    if isinstance(result, Mapping):
        return sorted(result.items())
    return result


# -- the benchmark -----------------------------------------------------------------------------


@dataclass
class Bench:
    """Both sides' instances, what the ops share, and what they found."""

    s: Settings
    instances: dict[str, DagsterInstance]
    page: PageLoad
    results: list[OpResult]
    big_results: list[OpResult]
    mismatches: list[str]
    notes: list[str]
    exits: ExitStack = field(default_factory=ExitStack)  # what the floors leave to clean up

    def selected(self, of: Sequence[str]) -> list[str]:
        return [op for op in of if op in self.s.ops]

    def fns(self, call: Callable[..., object], args: Callable[[int], tuple[Any, ...]]) -> Fns:
        """call(instance, *args(i)) as fn(i), per side."""

        def bind(inst: DagsterInstance) -> Fn:
            return lambda i: call(inst, *args(i))

        return {kind: bind(inst) for kind, inst in self.instances.items()}

    def add_floor(
        self,
        fns: Fns,
        op: str,
        args: Callable[[int], tuple[Any, ...]],
        period: int,
        partitions_def: PartitionsDefinition | None = None,
        before: Fn | None = None,
    ) -> None:
        ctx = FloorContext(
            self.instances["rust"],
            args,
            period,
            partitions_def,
            self.s.dir,
            self.exits.callback,
            fns.get("rust"),
            before,
        )
        floor = floor_fn(op, ctx)
        if floor is not None:
            fns[FLOOR] = floor

    def check(self, op: str, fns: Mapping[str, Fn], normalize: Callable[[object], object]) -> None:
        mismatch = first_mismatch(op, fns, width=300, normalize=normalize)
        if mismatch:
            self.mismatches.append(mismatch)

    def compare(self, what: str, read: Callable[[DagsterInstance], object]) -> None:
        """Record a mismatch when `read` answers differently on the two sides."""
        got = {kind: normalized(read(inst)) for kind, inst in self.instances.items()}
        if got["stock"] != got["rust"]:
            self.mismatches.append(
                f"{what}: stock {str(got['stock'])[:300]} != rust {str(got['rust'])[:300]}"
            )

    def report(self, op: str, samples: dict[str, Sample], stat: str, big: bool = False) -> None:
        res = op_result(op, samples, stat)
        (self.big_results if big else self.results).append(res)
        print(progress_line(res, 42, 11), flush=True)


def _with_setup(fns: Mapping[str, Fn], setup: Mapping[str, Fn]) -> Fns:
    """fn(i) preceded by setup(i), for the checks of ops that need their setup."""

    def chain(fn: Fn, before: Fn) -> Fn:
        def call(i: int) -> object:
            before(i)
            return fn(i)

        return call

    return {kind: chain(fn, setup[kind]) for kind, fn in fns.items() if kind in setup}


def _wipe_status(b: Bench, key: AssetKey) -> Fns:
    """Per side: wipe the asset's cached partition status (the setup of a cold read)."""

    def bind(inst: DagsterInstance) -> Fn:
        return lambda i: inst.wipe_asset_cached_status([key])

    return {kind: bind(inst) for kind, inst in b.instances.items()}


def _cached_status(key: AssetKey) -> Callable[[DagsterInstance], object]:
    def read(inst: DagsterInstance) -> object:
        return [r.asset_entry.cached_status for r in inst.get_asset_records([key])]

    return read


def _reads(b: Bench, assets: AssetSet) -> None:
    for op in b.selected(READ_OPS):
        args, period = read_args(op, assets)
        fns = b.fns(read_call(op, b.page), args)
        if op == "partition_status[cold]":
            setup = _wipe_status(b, assets.keys[0])
            b.check(op, _with_setup(fns, setup), normalized)
            b.add_floor(fns, op, args, period, assets.partitions_def, setup["rust"])
            b.report(op, time_rounds(fns, b.s.budget, setup=setup), "median")
        else:
            b.check(op, fns, normalized)
            b.add_floor(fns, op, args, period, assets.partitions_def)
            b.report(op, time_repeated(fns, b.s.budget), "median")
        if op.startswith("partition_status"):
            b.compare(f"{op}: the cached status", _cached_status(assets.keys[0]))


def _writes(b: Bench, assets: AssetSet) -> None:
    ops = b.selected(WRITE_OPS)
    if "wipe_asset_partitions" in ops:
        _wipe_partitions(b, assets)
    if "add_dynamic_partitions[1000]" in ops:
        _add_dynamic_partitions(b)
    if "claim_concurrency_slot[claim+free]" in ops:
        _claim_and_free(b)


def _wipe_supported(inst: DagsterInstance, key: AssetKey, partition: str) -> bool:
    try:
        inst.wipe_asset_partitions(key, [partition])
    except NotImplementedError:
        return False
    return True


def _wipe_partitions(b: Bench, assets: AssetSet) -> None:
    """Time wiping one partition per call of the last asset, if both sides can (stock cannot
    on SQLite: docs/assets-domain.md §5.3); the probe wipes the asset's first partition."""
    op, key, parts = "wipe_asset_partitions", assets.keys[-1], assets.partition_keys
    supported = {kind: _wipe_supported(inst, key, parts[0]) for kind, inst in b.instances.items()}
    unsupported = [kind for kind, ok in supported.items() if not ok]
    if unsupported:
        where = "both sides" if len(unsupported) == len(supported) else " and ".join(unsupported)
        b.notes.append(
            f"{op}: unsupported on {where} (NotImplementedError: partitioned wipes are not"
            " supported by stock's SQLite event log storage, docs/assets-domain.md §5.3);"
            " not timed"
        )
        print(f"  {op:42s} unsupported on {where}: not timed", flush=True)
        return
    count = min(b.s.writes, len(parts) - 1)

    def args(i: int) -> tuple[Any, ...]:
        return key, [parts[1 + i]]

    fns = b.fns(lambda inst, k, p: inst.wipe_asset_partitions(k, p), args)
    b.add_floor(fns, op, args, count, assets.partitions_def)
    b.report(op, time_each(fns, count), "mean")
    b.compare(
        f"{op}: materialized partitions after", lambda inst: inst.get_materialized_partitions(key)
    )


def _add_dynamic_partitions(b: Bench) -> None:
    op, count = "add_dynamic_partitions[1000]", b.s.dynamic_calls
    names = [f"bench_dynamic_{i:04d}" for i in range(count)]
    keys = [f"key-{j:04d}" for j in range(DYNAMIC_KEYS)]

    def args(i: int) -> tuple[Any, ...]:
        return names[i], keys

    fns = b.fns(lambda inst, name, ks: inst.add_dynamic_partitions(name, ks), args)
    b.add_floor(fns, op, args, count)
    b.report(op, time_each(fns, count), "mean")
    for name in sorted({names[0], names[-1]}):
        b.compare(f"{op}: get_dynamic_partitions({name})", _dynamic_partitions(name))


def _dynamic_partitions(name: str) -> Callable[[DagsterInstance], object]:
    return lambda inst: inst.get_dynamic_partitions(name)


def _claim_cycle(inst: DagsterInstance, run_id: str, step_key: str) -> object:
    """Claim a slot of the pool for a step, then free it, as a step's run worker does."""
    storage = inst.event_log_storage
    status = storage.claim_concurrency_slot(POOL, run_id, step_key)
    storage.free_concurrency_slot_for_step(run_id, step_key)
    return status.slot_status


def _claim_and_free(b: Bench) -> None:
    op = "claim_concurrency_slot[claim+free]"
    for inst in b.instances.values():
        storage = inst.event_log_storage
        storage.set_concurrency_slots(POOL, POOL_LIMIT)
        for j in range(POOL_HELD):
            storage.claim_concurrency_slot(POOL, "holder-run", f"held_{j}")
    b.check(op, b.fns(_claim_cycle, lambda i: ("check-run", f"check_{i}")), normalized)

    def args(i: int) -> tuple[Any, ...]:
        return f"claim-run-{i // 10:04d}", f"step_{i}"

    fns = b.fns(_claim_cycle, args)
    b.add_floor(fns, op, args, b.s.writes)
    b.report(op, time_each(fns, b.s.writes), "mean")

    def pool_state(inst: DagsterInstance) -> object:
        info = inst.event_log_storage.get_concurrency_info(POOL)
        return info.slot_count, len(info.claimed_slots), len(info.pending_steps)

    b.compare(f"{op}: the pool after", pool_state)


def _big(b: Bench, runs: Runs, first_k: int) -> None:
    """The partition status of one asset with --big-partitions partitions, cold then warm."""
    n = b.s.big_partitions
    big = AssetSet.make(["big_asset"], n)
    loaded = load_events(b.instances, history(big, runs, n, first_k))
    print(
        f"\n  partition status at {n} partitions: loaded untimed {loaded.describe()}:"
        f" one materialization of each partition of one more asset, and its planned events",
        flush=True,
    )
    b.compare(f"max storage id after loading the {n}-partition asset", _max_storage_id)
    key = big.keys[0]
    for phase in ("cold", "warm"):
        op = f"partition_status[{phase}]"
        args, period = read_args(op, big)
        fns = b.fns(read_call(op, b.page), args)
        setup = _wipe_status(b, key) if phase == "cold" else None
        before = setup["rust"] if setup else None
        b.add_floor(
            fns, f"partition_status[big, {phase}]", args, period, big.partitions_def, before
        )
        # No warm-up and no separate check: a stock call can take minutes. The first timed call
        # of each side is what is compared (the cold one after the setup, as every cold call).
        first: dict[str, object] = {}
        samples = time_rounds(
            fns,
            b.s.big_budget,
            setup=setup,
            turn=BIG_TURN,
            warmup=False,
            cap_s=BIG_CAP_S,
            first=first,
        )
        got = {kind: normalized(first[kind]) for kind in ("stock", "rust")}
        if got["stock"] != got["rust"]:
            b.mismatches.append(f"{op} at {n} partitions: the first calls' answers differ")
        label = f"partition_status[{phase}, {n} partitions]"
        b.report(label, samples, "median", big=True)
        if samples["stock"].calls == 1 and max(samples["stock"].times) > BIG_CAP_S:
            b.notes.append(
                f"{label}: stock's call took over {BIG_CAP_S:.0f} s; its single call is reported"
            )
    b.compare(f"partition status at {n} partitions: the cached status", _cached_status(key))


def _open_sides(homes: Mapping[str, str]) -> dict[str, DagsterInstance]:
    """Both instances; dagster-rs at durability full whatever the environment says, as stock."""
    instances: dict[str, DagsterInstance] = {}
    for kind, home in homes.items():
        with env_override("DAGSTER_RS_DURABILITY", "full"):
            instances[kind] = open_instance(home)
        print(f"  {kind:5s} DAGSTER_HOME={home}", flush=True)
    for kind, inst in instances.items():
        st = inst.event_log_storage
        print(f"  {kind:5s} event_log_storage: {type(st).__module__}.{type(st).__name__}")
    return instances


def _load(b: Bench, assets: AssetSet, runs: Runs) -> int:
    """Load the runs and the history on both sides, untimed; the number of events."""
    s = b.s
    load_runs(b.instances, runs)
    loaded = load_events(b.instances, history(assets, runs, s.materializations))
    print(
        f"  loaded untimed: {len(runs.done) + 2} runs; {loaded.describe()}: {s.materializations}"
        f" materializations of {s.assets} assets x {s.partitions} partitions over"
        f" {len(runs.done)} runs, planned events of a failed and a started run",
        flush=True,
    )
    b.compare("max storage id after loading", _max_storage_id)
    return loaded.events


def _max_storage_id(inst: DagsterInstance) -> object:
    return inst.event_log_storage.get_maximum_record_id()


def _floors_line() -> str:
    plugged = sorted(op for op, factory in FLOORS.items() if factory is not None)
    where = "FLOORS in dagster_rs/bench/assets.py"
    if not plugged:
        return f"Floors: none plugged in ({where})."
    return f"Floors plugged in ({where}): {', '.join(plugged)}; '-' where the factory gave none."


def _target_lines(results: Sequence[OpResult], big: Sequence[OpResult]) -> list[str]:
    lines = []
    for r in [*results, *big]:
        is_write = r.op in WRITE_OPS
        target = WRITE_TARGET if is_write else READ_TARGET
        verdict = "met" if r.ratio >= target else "NOT met"
        kind = "write" if is_write else "read"
        lines.append(f"  {r.op:42s} {r.ratio:7.2f}x  ({kind}, target >= {target:.0f}x: {verdict})")
    return lines


def _e2e_target_line(e2e: E2EResult) -> str:
    ratio = e2e.rust_over_ephemeral
    verdict = "met" if ratio <= MATERIALIZE_TARGET else "NOT met"
    return (
        f"  assets target: dagster-rs persistent / stock ephemeral <= {MATERIALIZE_TARGET}x:"
        f" {ratio:.2f}x ({verdict})"
    )


def run_bench(s: Settings) -> int:
    started = time.perf_counter()
    print(
        f"dagster-rs bench: assets  {s.assets} assets x {s.partitions} partitions,"
        f" {s.materializations} materializations, {s.runs} runs  dir={s.dir or '(system temp)'}",
        flush=True,
    )
    storage_ops = [op for op in s.ops if op != "materialize"]
    b = Bench(s, {}, PageLoad(), [], [], [], [])
    homes: dict[str, str] = {}
    rust_domains: list[str] = []
    durability = "?"
    events_stored = 0
    try:
        if storage_ops:
            homes = make_homes(s.dir)
            b.instances = _open_sides(homes)
            rust = b.instances["rust"]
            rust_domains = sorted(getattr(rust, "rust_domains", ()))
            durability = str(getattr(rust, "durability", "?"))
            for domain in ("assets", "storage"):
                if domain not in rust_domains:
                    b.notes.append(
                        f"the {domain} domain is not live in Rust ({rust_domains}): dagster-rs"
                        " runs stock's Python code for its methods, over its own connections"
                    )
            names = [f"asset_{i:03d}" for i in range(s.assets)]
            assets = AssetSet.make(names, s.partitions)
            runs = Runs.make(s.runs)
            events_stored = _load(b, assets, runs)
            # The harness holds every object it made; without this, Python's cyclic GC walks
            # them at intervals and the pause lands in whichever side's call is running.
            gc.collect()
            gc.freeze()
            _reads(b, assets)
            _writes(b, assets)
            if BIG_OP in s.ops and s.big_partitions > 0:
                _big(b, runs, first_k=s.materializations)
            elif BIG_OP in s.ops:
                b.notes.append(f"{BIG_OP}: skipped (--big-partitions 0, the --quick default)")
    finally:
        b.exits.close()
        b.page.close()
        close_sides(b.instances, homes, s.keep)
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

    _print_report(s, b, e2e, durability, homes, started)
    if s.json_path:
        _write_json(s, b, e2e, durability, rust_domains, events_stored)
    return 1 if b.mismatches else 0


def _print_report(
    s: Settings,
    b: Bench,
    e2e: E2EResult | None,
    durability: str,
    homes: Mapping[str, str],
    started: float,
) -> None:
    if b.results:
        print()
        print(format_table(b.results))
    if b.big_results:
        print(f"\nPartition status of one asset with {s.big_partitions} partitions (asset page):")
        print(format_table(b.big_results))
    if b.results or b.big_results:
        print()
        print(
            "stock/rust > 1 means dagster-rs is faster. Instance level (event_log_storage where"
            f" Dagster has no instance method). Durability full on both (dagster-rs: {durability})."
            " Sides take turns of 20 calls (the big partition status: of 1). Reads: median per"
            " call; writes: mean per call, each its own transaction(s). partition_status reads"
            f" asset 0 ({s.partitions} hourly partitions) as the asset page does; [cold] wipes"
            f" its cached status before every call (untimed). {_floors_line()}"
        )
        print("\nTargets (the issue: reads >= 5x faster than stock, writes >= 20x):")
        print("\n".join(_target_lines(b.results, b.big_results)))
    if b.notes:
        print("\nNotes:")
        for note in b.notes:
            print(f"  - {note}")
    if e2e is not None:
        print()
        print(format_e2e(e2e))
        print(_e2e_target_line(e2e))
    if s.keep and homes:
        print(f"\nHomes kept: {homes['stock']}  {homes['rust']}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    print_mismatches(b.mismatches)


def _write_json(
    s: Settings,
    b: Bench,
    e2e: E2EResult | None,
    durability: str,
    rust_domains: Sequence[str],
    events_stored: int,
) -> None:
    all_results = [*b.results, *b.big_results]
    meta: dict[str, Any] = {
        "bench": "assets",
        "level": "instance",
        **sides_meta(s.dir, durability, rust_domains),
        "assets": s.assets,
        "partitions": s.partitions,
        "partitions_def": "HourlyPartitionsDefinition",
        "materializations": s.materializations,
        "runs": s.runs,
        "events_stored": events_stored,
        "big_partitions": s.big_partitions if BIG_OP in s.ops else 0,
        "big_ops": [r.op for r in b.big_results],
        "writes": s.writes,
        "dynamic_calls": s.dynamic_calls,
        "dynamic_keys_per_call": DYNAMIC_KEYS,
        "pool_limit": POOL_LIMIT,
        "pool_held": POOL_HELD,
        "page": PAGE,
        "targets": {"read": READ_TARGET, "write": WRITE_TARGET, "materialize": MATERIALIZE_TARGET},
        "floors_plugged_in": sorted(op for op, f in FLOORS.items() if f is not None),
        **calls_meta(all_results),
        "quick": s.quick,
        "notes": b.notes,
        "mismatches": b.mismatches,
    }
    payload = results_json(all_results, meta)
    if e2e is not None:
        payload["materialize"] = {
            "rust_s": e2e.median("rust"),
            "stock_s": e2e.median("stock"),
            "ephemeral_s": e2e.median("ephemeral"),
            "target_rust_over_ephemeral": MATERIALIZE_TARGET,
            **e2e.to_json(),
        }
    write_json(s.json_path or "", payload)
    print(f"wrote {s.json_path}")


# -- command line ------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "assets",
        help="asset, partition, dynamic partition and pool ops, materialize; stock vs dagster-rs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_output_args(p, OPS)
    p.add_argument("--quick", action="store_true", help="a small smoke run (well under a minute)")
    p.add_argument(
        "--assets", type=int, default=None, metavar="A", help="assets (default 100; quick 10)"
    )
    p.add_argument(
        "--partitions",
        type=int,
        default=None,
        metavar="P",
        help="hourly partitions of every asset (default 1000; quick 50)",
    )
    p.add_argument(
        "--materializations",
        type=int,
        default=None,
        metavar="M",
        help="materializations over all assets (default 100000; quick 2000)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=None,
        help="runs the materializations spread over (default 100; quick 10)",
    )
    p.add_argument(
        "--big-partitions",
        type=int,
        default=None,
        metavar="N",
        help="partitions of the asset whose status is read at scale (default 30000; quick: 0,"
        " skipped; 0 skips it)",
    )
    add_materialize_args(p, CHAIN)
    p.set_defaults(func=main)


def _pick(value: int | None, full: int, quick: int, is_quick: bool) -> int:
    return value if value is not None else (quick if is_quick else full)


def settings_from_args(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    assets = _pick(args.assets, 100, 10, quick)
    partitions = _pick(args.partitions, 1000, 50, quick)
    materializations = _pick(args.materializations, 100_000, 2000, quick)
    runs = _pick(args.runs, 100, 10, quick)
    if min(assets, partitions, runs) < 1:
        raise SystemExit("--assets, --partitions and --runs must be at least 1")
    if materializations < max(assets, runs):
        raise SystemExit("--materializations must be at least --assets and --runs")
    if quick:
        budget = Budget(min_calls=5, max_calls=40, min_seconds=0.02, max_seconds=0.15)
        big_budget = Budget(min_calls=1, max_calls=2, min_seconds=0.0, max_seconds=5.0)
    else:
        budget = Budget(min_calls=20, max_calls=2000, min_seconds=1.0, max_seconds=4.0)
        big_budget = Budget(min_calls=3, max_calls=10, min_seconds=10.0, max_seconds=45.0)
    return Settings(
        assets=assets,
        partitions=partitions,
        materializations=materializations,
        runs=runs,
        big_partitions=max(_pick(args.big_partitions, 30_000, 0, quick), 0),
        writes=20 if quick else 200,
        dynamic_calls=4 if quick else 40,
        chain=_pick(args.chain, CHAIN, 3, quick),
        reps=max(_pick(args.reps, 5, 1, quick), 1),
        warmup=max(_pick(args.warmup, 1, 0, quick), 0),
        budget=budget,
        big_budget=big_budget,
        ops=parse_ops(args.ops, OPS),
        dir=args.dir,
        json_path=args.json_path,
        keep=args.keep,
        quick=quick,
    )


def main(args: argparse.Namespace) -> int:
    return run_bench(settings_from_args(args))


__all__ = ["FLOORS", "OPS", "FloorContext", "add_parser", "main", "run_bench", "settings_from_args"]
