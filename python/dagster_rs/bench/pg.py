"""`dagster-rs bench --backend postgres` (`python -m dagster_rs.bench pg`): runs, config and
scheduling on PostgreSQL, stock dagster-postgres vs dagster-rs, on the same server in one run.

The server: a throwaway local cluster (`dagster_rs.pg_cluster.PgCluster`, stopped at the end),
or `--postgres-url URL` (left running; the bench creates its databases there and drops them).
The data: one database filled once in stock's schema (`dagster_rs.bench.pg_data`), then copied
for each side (`CREATE DATABASE ... TEMPLATE`): stock dagster-postgres (`storage: postgres:`) on
one copy, a dagster-rs instance (`instance_class: dagster_rs`, the same `storage: postgres:`) on
another. Both are in this process; the sides take turns of 20 calls.

Per op, the report says whether dagster-rs served it in Rust (its domain is in the instance's
`rust_domains`) or fell back to stock dagster-postgres's code (then its figure is stock's code
again, never shown as a Rust one), and gives:
- stock and dagster-rs µs per call (writes: mean, one call a transaction; reads: median after a
  warm-up; both sides' answers compared first, and after a write what both sides stored);
- the floor: the same native calls with no Dagster object built (`dagster_rs.bench.replay`:
  the op's calls into the core recorded, then replayed; a write recorded on one more copy of the
  data and replayed on another). Only when the native PostgreSQL store exists (`_native.
  DagsterInstance(..., postgres_url=...)` opens and hands out the domain's store) and the op was
  served in Rust; otherwise "-" and the reason in `_meta.floor`;
- connections opened per 1,000 calls, per side, counted by the server (`pg_server`).

`--scale`: every run-list shape of the issue's target over --scale-runs runs (default
1,000,000), and get_ticks / get_batch_ticks over --scale-ticks ticks (default 1,000,000), both
sides on copies of one database filled by COPY and VACUUM ANALYZEd; median per call, each op's
answers compared first. The run shapes (limit 25): get_runs of a tag, two tags, two tags' page 2
(after the 25th run of page 1), tag+status, env+status, status, job, created_before the run in
the middle of the id range / the run 5 % from the oldest, 10 run ids; get_run_records of
tag+status; get_runs_count of all but page 2. `--scale-layout fresh|047|both`: the run_tags
index layout they are measured on (stock's `idx_run_tags (key, value)`, or migration 047's
UNIQUE `(key, value, run_id)` in its place; its rows are named `<op>/047`). The throwaway
cluster has shared_buffers 1GB (`pg_server.CLUSTER_SETTINGS`); the JSON's
`_meta.server_settings` says what the server ran with.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.scheduler.instigation import SensorInstigatorData

from dagster_rs.bench.common import (
    BLOCK,
    FLOOR,
    Budget,
    OpResult,
    Sample,
    first_mismatch,
    fmt_us,
    op_result,
    parse_ops,
    print_mismatches,
    time_each,
    time_repeated,
    versions,
    write_json,
)
from dagster_rs.bench.pg_data import ENVS, JOB_NAMES, TEAMS, Data, RunSpec, fill, run_specs
from dagster_rs.bench.pg_server import Server, psycopg2_url, without_password
from dagster_rs.bench.replay import replay_floor, replay_write_floor
from dagster_rs.bench.scheduling import (
    EPOCH,
    WriteOps,
    bound,
    from_replays,
    normalized,
    scale_reads,
    sensor_state,
)
from dagster_rs.bench.scheduling import Data as SchedData
from dagster_rs.bench.scheduling import read_ops as sched_read_ops

DOMAINS = ("runs", "config", "scheduling")
LIMIT = 100
SCALE_LIMIT = 25
TICKS_LIMIT = 100
BATCH_LIMIT = 25
CURSOR_KEYS = 10
STATUSES = (DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS, DagsterRunStatus.QUEUED)


@dataclass(frozen=True)
class Op:
    """One op: its bench group (--domain), the dagster-rs domain that serves it, and whether
    it writes."""

    name: str
    group: str
    served_by: str
    write: bool


OPS: tuple[Op, ...] = (
    Op("add_run", "runs", "runs", True),
    Op("handle_run_event", "runs", "runs", True),
    Op("get_runs[tag]", "runs", "runs", False),
    Op("get_runs[status]", "runs", "runs", False),
    Op("get_runs_count[tag]", "runs", "runs", False),
    Op("get_runs_count[status]", "runs", "runs", False),
    Op("get_run_records[tag+status]", "runs", "runs", False),
    Op("get_run_tags", "runs", "runs", False),
    Op("add_daemon_heartbeat", "config", "config", True),
    Op("get_daemon_heartbeats", "config", "config", False),
    Op("set_cursor_values", "config", "config", True),
    Op("get_cursor_values", "config", "config", False),
    Op("get_run_storage_id", "config", "config", False),
    Op("add_instigator_state", "scheduling", "scheduling", True),
    Op("update_instigator_state", "scheduling", "scheduling", True),
    Op("get_instigator_state", "scheduling", "scheduling", False),
    Op("all_instigator_state", "scheduling", "scheduling", False),
    Op("create_tick", "scheduling", "scheduling", True),
    Op("update_tick", "scheduling", "scheduling", True),
    Op("get_ticks", "scheduling", "scheduling", False),
    Op("get_batch_ticks", "scheduling", "scheduling", False),
    Op("add_asset_evaluations", "scheduling", "scheduling", True),
    Op("get_asset_evaluations", "scheduling", "scheduling", False),
    # Backfills live in the run storage (dagster-rs serves them with the runs domain).
    Op("add_backfill", "scheduling", "runs", True),
    Op("get_backfills", "scheduling", "runs", False),
)
# The run-list shapes at scale (ARCHITECTURE.md, "Run queries at scale", "On PostgreSQL"): each
# a list (limit 25) or a count, over the filters of RUN_FILTERS or the scale data's own bounds,
# run ids and page-2 cursors (`ScaleData`).
SCALE_LISTS = (
    "tag",
    "tags",
    "tags page 2",
    "tag+status",
    "env+status",
    "status",
    "job",
    "created_before mid",
    "created_before deep",
    "run ids",
)
SCALE_COUNTS = tuple(shape for shape in SCALE_LISTS if shape != "tags page 2")
SCALE_OPS: tuple[Op, ...] = (
    *(Op(f"get_runs[{shape}]@scale", "runs", "runs", False) for shape in SCALE_LISTS),
    Op("get_run_records[tag+status]@scale", "runs", "runs", False),
    *(Op(f"get_runs_count[{shape}]@scale", "runs", "runs", False) for shape in SCALE_COUNTS),
    Op("get_ticks@scale", "scheduling", "scheduling", False),
    Op("get_batch_ticks@scale", "scheduling", "scheduling", False),
)
# The run_tags index layouts the run shapes are measured on (--scale-layout): stock's fresh
# `idx_run_tags (key, value)`, or migration 047's UNIQUE `idx_run_tags_run_id (key, value,
# run_id)` in its place (every database made before Dagster 1.9.3, once migrated).
LAYOUTS = ("fresh", "047")
BY_NAME = {op.name: op for op in (*OPS, *SCALE_OPS)}
# The targets.
WRITE_TARGET = 5.0
SCALE_TARGET_MS = 50.0


def target_of(op: Op, stock_us: float, rust_us: float) -> tuple[str | None, bool | None]:
    """The issue's target for the op and whether this run met it ((None, None): none set).
    Writes: at least 5x stock. The run-list shapes at scale: under 50 ms, and at least 5x stock
    wherever stock takes over 50 ms. Other reads (the tick reads at scale too) have none: they
    are reported against stock."""
    ratio = stock_us / rust_us if rust_us > 0 else float("inf")
    if op.write:
        return f">= {WRITE_TARGET:g}x stock", ratio >= WRITE_TARGET
    if op.name.endswith("@scale") and op.group == "runs":
        limit_us = SCALE_TARGET_MS * 1e3
        if stock_us > limit_us:
            return (
                f"< {SCALE_TARGET_MS:g} ms and >= {WRITE_TARGET:g}x stock",
                rust_us < limit_us and ratio >= WRITE_TARGET,
            )
        return f"< {SCALE_TARGET_MS:g} ms", rust_us < limit_us
    return None, None


@dataclass(frozen=True)
class Settings:
    url: str | None
    domains: tuple[str, ...]
    ops: tuple[str, ...]
    runs: int
    sensors: int
    ticks_per_sensor: int
    schedules: int
    backfills: int
    reps: int
    budget: Budget
    scale: bool
    scale_runs: int
    scale_ticks: int
    scale_layout: str  # "fresh", "047" or "both"
    scale_budget: Budget
    seed: int
    dir: str | None
    json_path: str | None
    keep: bool
    quick: bool


# -- instances ---------------------------------------------------------------------------------


def pg_yaml(url: str, rust: bool) -> str:
    config: dict[str, Any] = {"storage": {"postgres": {"postgres_url": psycopg2_url(url)}}}
    if rust:
        config["instance_class"] = {"module": "dagster_rs", "class": "DagsterInstance"}
    return yaml.safe_dump(config, sort_keys=False)


def open_pg(url: str, rust: bool, parent: str) -> DagsterInstance:
    """An instance (stock or dagster-rs) on the database at `url`, its home a new dir in
    `parent` (local artifacts only; every storage is the database)."""
    home = tempfile.mkdtemp(prefix="rust-" if rust else "stock-", dir=parent)
    with open(os.path.join(home, "dagster.yaml"), "w") as f:
        f.write(pg_yaml(url, rust))
    return DagsterInstance.from_config(home)


def probe_floor(server: Server, template: str, parent: str) -> dict[str, str | None]:
    """Per dagster-rs domain: None when the native core opens its PostgreSQL store on a copy of
    `template` (Contract C: `_native.DagsterInstance(..., postgres_url=...)`), else why not. The
    copy is the probe's own and dropped (with FORCE) afterwards, so a pool the core keeps per URL
    cannot hold the template and block the copies made from it."""
    probe = server.create_database("probe", template=template)
    try:
        return _probe(server, probe, parent)
    finally:
        server.drop_database(probe)


def _probe(server: Server, dbname: str, parent: str) -> dict[str, str | None]:
    from dagster_rs import _native

    stores = {"runs": "runs", "config": "config", "scheduling": "schedules"}
    root = tempfile.mkdtemp(prefix="floor-probe-", dir=parent)
    try:
        # Through Any: the stub gains `postgres_url` when the core does (Contract C).
        core = cast(Any, _native.DagsterInstance)(root, postgres_url=server.url(dbname))
    except TypeError as exc:
        reason = f"the native core takes no postgres_url yet ({exc})"
        return dict.fromkeys(stores, reason)
    except Exception as exc:  # noqa: BLE001 - any refusal means: no floor, and why
        reason = f"the native core refused the PostgreSQL URL: {type(exc).__name__}: {exc}"
        return dict.fromkeys(stores, reason)
    out: dict[str, str | None] = {}
    try:
        for domain, attr in stores.items():
            try:
                getattr(core, attr)
                out[domain] = None
            except Exception as exc:  # noqa: BLE001 - DagsterRsStorageError while not integrated
                out[domain] = (
                    f"the native PostgreSQL {attr} store is not there: {type(exc).__name__}: {exc}"
                )
    finally:
        try:
            core.dispose()
        except Exception:  # noqa: BLE001
            pass
    return out


# -- the ops -----------------------------------------------------------------------------------

Call = Callable[[DagsterInstance, int], object]
Filters = tuple[Callable[[int], RunsFilter], int]  # (filter of call i, period)
Read = tuple[Call, int]  # (call(instance, i), period)

# The run filters of the run-list shapes (call i takes filter i mod period).
RUN_FILTERS: dict[str, Filters] = {
    "tag": (lambda i: RunsFilter(tags={"team": TEAMS[i % 5]}), 5),
    "team+env": (lambda i: RunsFilter(tags={"team": TEAMS[i % 5], "env": ENVS[i % 2]}), 10),
    # Two tags that meet on 1/120 of the runs: a team and a job's schedule.
    "tags": (
        lambda i: RunsFilter(
            tags={"team": TEAMS[i % 5], "dagster/schedule_name": f"{JOB_NAMES[i % 6]}_schedule"}
        ),
        30,
    ),
    "status": (lambda i: RunsFilter(statuses=[STATUSES[i % 3]]), 3),
    "job": (lambda i: RunsFilter(job_name=JOB_NAMES[i % 6]), 6),
    "tag+status": (
        lambda i: RunsFilter(tags={"team": TEAMS[i % 5]}, statuses=[STATUSES[i % 3]]),
        15,
    ),
    "env+status": (
        lambda i: RunsFilter(tags={"env": ENVS[i % 2]}, statuses=[STATUSES[i % 3]]),
        6,
    ),
}


def list_of(filters: Filters, limit: int, cursors: Sequence[str | None] = ()) -> Read:
    """get_runs of the filters (run ids), limit `limit`; after cursor i mod len when given."""
    filter_of, period = filters
    n = len(cursors)
    return (
        lambda inst, i: [
            r.run_id
            for r in inst.get_runs(filter_of(i), cursor=cursors[i % n] if n else None, limit=limit)
        ],
        period,
    )


def count_of(filters: Filters) -> Read:
    filter_of, period = filters
    return (lambda inst, i: inst.get_runs_count(filter_of(i)), period)


def records_of(filters: Filters, limit: int) -> Read:
    filter_of, period = filters
    return (
        lambda inst, i: [
            (r.storage_id, r.dagster_run.run_id)
            for r in inst.get_run_records(filter_of(i), limit=limit)
        ],
        period,
    )


@dataclass
class Workload:
    """Each op as call(instance, i), and what a write leaves stored (read after it)."""

    data: Data
    total: int  # calls per write op (warm-up + timed)
    seed: int
    new_runs: list[RunSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.new_runs = list(run_specs(self.total, self.seed + 7, start=self.data.runs))
        d = self.data
        self.sched = WriteOps(SchedData(d.sensors, d.schedules, d.ticks), self.total)

    # runs
    def add_run(self, inst: DagsterInstance, i: int) -> object:
        inst.add_run(self.new_runs[i].run())
        return None

    def handle_run_event(self, inst: DagsterInstance, i: int) -> object:
        spec = self.new_runs[i]
        event = DagsterEvent(DagsterEventType.PIPELINE_START.value, spec.job)
        # A fixed time: what both sides store must agree.
        inst.run_storage.handle_run_event(spec.run_id, event, update_timestamp=_dt(EPOCH + 10 * i))
        return None

    def runs_state(self, inst: DagsterInstance) -> object:
        ids = [s.run_id for s in self.new_runs]
        runs = inst.get_runs(filters=RunsFilter(run_ids=ids))
        return (inst.get_runs_count(), sorted((r.run_id, r.status.value) for r in runs))

    def reads(self) -> dict[str, tuple[Call, int]]:
        d = self.data
        keys = {f"bench/cursor_{j}" for j in range(CURSOR_KEYS)}
        instigators = [*d.sensors, *d.schedules]
        # get_ticks, get_batch_ticks, all_instigator_state, get_backfills: the scheduling
        # bench's own calls.
        sched = sched_read_ops(self.sched.data)
        eval_keys = [_asset_key(j) for j in range(4)]
        return {
            "get_runs[tag]": list_of(RUN_FILTERS["tag"], LIMIT),
            "get_runs[status]": list_of(RUN_FILTERS["status"], LIMIT),
            "get_runs_count[tag]": count_of(RUN_FILTERS["team+env"]),
            "get_runs_count[status]": count_of(RUN_FILTERS["status"]),
            "get_run_records[tag+status]": records_of(RUN_FILTERS["tag+status"], LIMIT),
            "get_run_tags": (
                lambda inst, i: sorted(
                    (k, sorted(v)) for k, v in inst.get_run_tags(tag_keys=[("team", "env")[i % 2]])
                ),
                2,
            ),
            "get_daemon_heartbeats": (
                lambda inst, i: sorted(inst.get_daemon_heartbeats().items()),
                1,
            ),
            "get_cursor_values": (
                lambda inst, i: sorted(inst.run_storage.get_cursor_values(keys).items()),
                1,
            ),
            "get_run_storage_id": (lambda inst, i: inst.run_storage.get_run_storage_id(), 1),
            **sched,
            "get_instigator_state": (
                lambda inst, i: inst.get_instigator_state(
                    instigators[i % len(instigators)].origin_id,
                    instigators[i % len(instigators)].selector_id,
                ),
                len(instigators),
            ),
            "get_asset_evaluations": (
                lambda inst, i: [
                    (r.id, r.serialized_evaluation_body, r.evaluation_id, r.key)
                    for r in inst.schedule_storage.get_auto_materialize_asset_evaluations(  # type: ignore[union-attr]
                        eval_keys[i % 4], limit=25
                    )
                ],
                4,
            ),
        }

    # scheduling
    def add_instigator_state(self, inst: DagsterInstance, i: int) -> object:
        inst.add_instigator_state(sensor_state(f"new_sensor_{i:05d}", str(i)))
        return None

    def update_instigator_state(self, inst: DagsterInstance, i: int) -> object:
        sensors = self.data.sensors
        state = sensors[i % len(sensors)].state
        data = state.instigator_data
        assert isinstance(data, SensorInstigatorData)
        inst.update_instigator_state(
            state.with_data(data.with_sensor_start_timestamp(EPOCH + i)._replace(cursor=str(i)))
        )
        return None

    def add_asset_evaluations(self, inst: DagsterInstance, i: int) -> object:
        storage = inst.schedule_storage
        assert storage is not None
        storage.add_auto_materialize_asset_evaluations(
            1000 + i, [_evaluation(_asset_key(j), i) for j in range(4)]
        )
        return None

    def add_backfill(self, inst: DagsterInstance, i: int) -> object:
        from dagster_rs.bench.scheduling import make_backfill

        inst.add_backfill(make_backfill(self.data.backfills + i))
        return None

    def state(self, op: str) -> Callable[[DagsterInstance], object]:
        """What a write op leaves stored, read the same way on both sides."""
        reads = self.reads()
        if op in ("add_run", "handle_run_event"):
            return self.runs_state
        if op == "add_daemon_heartbeat":
            return lambda inst: reads["get_daemon_heartbeats"][0](inst, 0)
        if op == "set_cursor_values":
            keys = {f"bench/{k}_{j}" for k in ("cursor", "updated") for j in range(CURSOR_KEYS)}
            return lambda inst: sorted(inst.run_storage.get_cursor_values(keys).items())
        if op in ("add_instigator_state", "update_instigator_state"):
            return lambda inst: sorted(
                (s.selector_id, getattr(s.instigator_data, "cursor", None))
                for s in inst.all_instigator_state()
            )
        if op in ("create_tick", "update_tick"):
            return lambda inst: normalized(
                inst.get_batch_ticks([x.selector_id for x in self.data.sensors], limit=50)
            )
        if op == "add_asset_evaluations":
            return lambda inst: reads["get_asset_evaluations"][0](inst, 0)
        if op == "add_backfill":
            return lambda inst: [b.backfill_id for b in inst.get_backfills(limit=10_000)]
        raise ValueError(op)

    def call(self, op: str) -> Call:
        """The op's call: this class's, else the scheduling bench's (ticks, heartbeats,
        cursor values)."""
        own = getattr(self, op, None)
        return cast(Call, own if own is not None else self.sched.call(op))


def _dt(ts: float) -> Any:
    from dagster._time import datetime_from_timestamp

    return datetime_from_timestamp(ts)


def _asset_key(j: int) -> Any:
    from dagster import AssetKey

    return AssetKey(["bench", f"asset_{j}"])


def _evaluation(key: Any, i: int) -> Any:
    from dagster._core.asset_graph_view.serializable_entity_subset import (
        SerializableEntitySubset,
    )
    from dagster._core.definitions.declarative_automation.serialized_objects import (
        AutomationConditionEvaluation,
        AutomationConditionEvaluationWithRunIds,
        AutomationConditionNodeSnapshot,
    )

    snapshot = AutomationConditionNodeSnapshot(
        class_name="EagerCondition",
        description="eager",
        unique_id=f"u-{key.to_user_string()}",
        label=None,
        name=None,
        operator_type="identity",
    )
    ts = EPOCH + i
    return AutomationConditionEvaluationWithRunIds(
        evaluation=AutomationConditionEvaluation(
            condition_snapshot=snapshot,
            start_timestamp=ts,
            end_timestamp=ts + 1,
            true_subset=SerializableEntitySubset(key=key, value=bool(i % 2)),
            candidate_subset=SerializableEntitySubset(key=key, value=True),
            subsets_with_metadata=[],
            child_evaluations=[],
        ),
        run_ids=frozenset({f"run-{i}"}),
    )


# -- results -----------------------------------------------------------------------------------


@dataclass
class Row:
    """An op's result and what the report says beside it."""

    result: OpResult
    spec: Op
    served: str  # "rust" or "fallback"
    floor_note: str | None
    connections: dict[str, float | None]  # per 1,000 calls, by side
    layout: str | None = None  # the run_tags layout of a run shape at scale

    @property
    def op(self) -> str:
        """The row's name: the op's, with `/047` on 047's layout."""
        return self.result.op

    @property
    def target(self) -> tuple[str | None, bool | None]:
        return target_of(self.spec, self.result.stock_us, self.result.rust_us)

    @property
    def target_cell(self) -> str:
        _, met = self.target
        return "-" if met is None else ("met" if met else "MISSED")


@dataclass
class Bench:
    s: Settings
    server: Server
    work: str
    live: frozenset[str] = frozenset()
    floor_reasons: dict[str, str | None] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    server_settings: dict[str, str] = field(default_factory=dict)
    # Per read op: connections each side opened on its first (untimed) call.
    warmup_connections: dict[str, dict[str, int | None]] = field(default_factory=dict)

    def served(self, op: Op) -> str:
        return "rust" if op.served_by in self.live else "fallback"

    def floor_reason(self, op: Op) -> str | None:
        """Why the op has no floor (None: it may have one)."""
        if self.served(op) != "rust":
            return "dagster-rs fell back to stock dagster-postgres for this op"
        return self.floor_reasons.get(op.served_by, "the native PostgreSQL store was not probed")

    def report(
        self,
        op: Op,
        samples: Mapping[str, Sample],
        stat: str,
        conns: Mapping[str, float | None],
        floor_note: str | None,
        layout: str | None = None,
    ) -> None:
        result = op_result(row_name(op, layout), samples, stat)
        row = Row(result, op, self.served(op), floor_note, dict(conns), layout)
        self.rows.append(row)
        print(progress(row), flush=True)


def row_name(op: Op, layout: str | None) -> str:
    return op.name if layout in (None, LAYOUTS[0]) else f"{op.name}/{layout}"


def progress(row: Row) -> str:
    r = row.result
    floor = f"  floor {fmt_us(r.floor_us)} µs" if r.floor_us is not None else "  floor -"
    conns = "/".join("-" if v is None else f"{v:.0f}" for v in row.connections.values())
    return (
        f"  {r.op:46s} [{row.served:8s}] stock {fmt_us(r.stock_us):>9s} µs"
        f"  rust {fmt_us(r.rust_us):>9s} µs  ({r.ratio:.2f}x){floor}"
        f"  conns/1k stock/rust {conns}"
        f"{'' if row.target[1] is None else '  target ' + row.target_cell}"
    )


class Counting:
    """Connections opened on each side's database between construction and `per_1000`."""

    def __init__(self, server: Server, dbs: Mapping[str, str]) -> None:
        self.server = server
        self.dbs = dict(dbs)
        self.before = {kind: server.connections_opened(db) for kind, db in dbs.items()}

    def opened(self) -> dict[str, int | None]:
        """Connections opened so far, by side."""
        out: dict[str, int | None] = {}
        for kind, db in self.dbs.items():
            after, start = self.server.connections_opened(db), self.before[kind]
            out[kind] = None if after is None or start is None else after - start
        return out

    def per_1000(self, calls: Mapping[str, int]) -> dict[str, float | None]:
        """Per 1,000 calls, by side (`calls`: how many each side made)."""
        out: dict[str, float | None] = {}
        for kind, db in self.dbs.items():
            after, start, n = self.server.connections_opened(db), self.before[kind], calls[kind]
            out[kind] = (
                None if after is None or start is None or n <= 0 else (after - start) * 1e3 / n
            )
        return out


# -- the benchmark -----------------------------------------------------------------------------


def _reads(
    b: Bench,
    work: Workload,
    insts: Mapping[str, DagsterInstance],
    dbs: Mapping[str, str],
    ops: Sequence[Op],
    budget: Budget,
    reads: Mapping[str, tuple[Call, int]],
    turn: int = BLOCK,
    layout: str | None = None,
) -> None:
    for op in ops:
        call, period = reads[op.name]
        fns = {kind: bound(call, inst) for kind, inst in insts.items()}
        name = row_name(op, layout if op.group == "runs" else None)
        mismatch = first_mismatch(name, fns, width=200, normalize=normalized)
        if mismatch:
            b.mismatches.append(mismatch)
        floor_note = b.floor_reason(op)
        if floor_note is None:
            floor = replay_floor(insts["rust"], bound(call, insts["rust"]), period)
            if floor is None:
                floor_note = "the op made no call into the native core"
            else:
                fns[FLOOR] = floor
        # A first call on each side, counted apart: a pool opens the sessions an op needs the
        # first time it needs them (get_batch_ticks reads its selectors on several at once),
        # which is warm-up, not a cost per call.
        warm = Counting(b.server, dbs)
        for kind in dbs:
            fns[kind](0)
        b.warmup_connections[name] = warm.opened()
        counting = Counting(b.server, dbs)
        samples = time_repeated(fns, budget, turn)
        # + 1: time_repeated's own warm-up call.
        conns = counting.per_1000({k: samples[k].calls + 1 for k in dbs})
        b.report(op, samples, "median", conns, floor_note, layout if op.group == "runs" else None)


def _writes(
    b: Bench,
    work: Workload,
    insts: Mapping[str, DagsterInstance],
    dbs: Mapping[str, str],
    floors: Mapping[str, DagsterInstance],
    ops: Sequence[Op],
) -> None:
    reps = b.s.reps
    for op in ops:
        call = work.call(op.name)
        if op.name == "update_tick":
            work.sched.prepare_update(insts["stock"])
        fns = {kind: bound(call, inst) for kind, inst in insts.items()}
        floor_note = b.floor_reason(op)
        if floor_note is None:
            if not floors:
                floor_note = "no floor databases"
            else:
                replays = replay_write_floor(floors["rec"], floors["target"], call, range(reps))
                if replays is None:
                    floor_note = "the op made no call into the native core"
                else:
                    fns[FLOOR] = from_replays(replays)
        elif floors:
            # Keep the floor copies at the sides' state for the ops after this one.
            for inst in floors.values():
                for i in range(reps):
                    call(inst, i)
        counting = Counting(b.server, dbs)
        samples = time_each(fns, reps)
        b.report(op, samples, "mean", counting.per_1000(dict.fromkeys(dbs, reps)), floor_note)
        state = work.state(op.name)
        got = {kind: normalized(state(inst)) for kind, inst in insts.items()}
        if got["stock"] != got["rust"]:
            b.mismatches.append(
                f"{op.name}: stored state differs: stock {str(got['stock'])[:200]}"
                f" != rust {str(got['rust'])[:200]}"
            )
        if FLOOR in fns:
            # The replayed native calls must have stored what the op stores: else the floor
            # timed something else.
            replayed = normalized(state(floors["target"]))
            if replayed != got["rust"]:
                b.mismatches.append(
                    f"{op.name}: the floor's replay stored {str(replayed)[:200]}"
                    f" != rust {str(got['rust'])[:200]}"
                )


def _open_sides(server: Server, dbs: Mapping[str, str], parent: str) -> dict[str, DagsterInstance]:
    return {kind: open_pg(server.url(db), kind != "stock", parent) for kind, db in dbs.items()}


def _fill_template(b: Bench, runs: int, sensors: int, ticks: int, label: str) -> tuple[str, Data]:
    s = b.s
    t0 = time.perf_counter()
    tmpl = b.server.create_database(f"{label}_template")
    stock = open_pg(b.server.url(tmpl), False, b.work)
    try:
        data = fill(
            b.server,
            tmpl,
            stock,
            runs=runs,
            seed=s.seed,
            sensors=sensors,
            ticks_per_sensor=ticks,
            schedules=s.schedules,
            backfills=s.backfills,
        )
    finally:
        stock.dispose()
    b.notes[f"{label}_fill_s"] = round(time.perf_counter() - t0, 1)
    print(
        f"  {label}: {data.runs} runs, {len(data.sensors)} sensors, {data.ticks} ticks,"
        f" {data.backfills} backfills filled in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    return tmpl, data


def _main_pass(b: Bench) -> None:
    s = b.s
    chosen = [op for op in OPS if op.group in s.domains and op.name in s.ops]
    if not chosen:
        return
    tmpl, data = _fill_template(b, s.runs, s.sensors, s.ticks_per_sensor, "main")
    dbs = {kind: b.server.create_database(kind, template=tmpl) for kind in ("stock", "rust")}
    b.floor_reasons = probe_floor(b.server, tmpl, b.work)
    b.notes["databases"] = dict(dbs)
    insts: dict[str, DagsterInstance] = {}
    floors: dict[str, DagsterInstance] = {}
    try:
        insts = _open_sides(b.server, dbs, b.work)
        b.live = frozenset(getattr(insts["rust"], "rust_domains", ()))
        if any(r is None for r in b.floor_reasons.values()):
            floor_dbs = {
                k: b.server.create_database(f"floor_{k}", template=tmpl) for k in ("rec", "target")
            }
            floors = {k: open_pg(b.server.url(db), True, b.work) for k, db in floor_dbs.items()}
        _print_serving(b, chosen)
        work = Workload(data, s.reps, s.seed)
        reads = work.reads()
        gc.collect()
        gc.freeze()
        # In table order: each op sees the preloaded data plus the writes timed before it, the
        # same on both sides (handle_run_event moves the runs add_run made; update_tick the
        # ticks create_tick made).
        for op in chosen:
            if op.write:
                _writes(b, work, insts, dbs, floors, [op])
            else:
                _reads(b, work, insts, dbs, [op], s.budget, reads)
    finally:
        for inst in [*insts.values(), *floors.values()]:
            inst.dispose()
        gc.unfreeze()


@dataclass(frozen=True)
class ScaleData:
    """The scale data's own arguments of the run shapes, read from the template before the
    sides open: the creation times of the run in the middle of the id range and of the run 5 %
    from the oldest (`created_before` bounds), lists of 10 run ids spread over the history."""

    mid: datetime
    deep: datetime
    run_ids: list[list[str]]

    @classmethod
    def read(cls, server: Server, dbname: str, data: Data) -> ScaleData:
        with server.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute("SELECT min(id), max(id) FROM runs")
            low, high = cur.fetchone()
            bounds = []
            for fraction in (0.5, 0.05):
                cur.execute(
                    "SELECT create_timestamp FROM runs WHERE id >= %s ORDER BY id LIMIT 1",
                    (low + int((high - low) * fraction),),
                )
                # Stored naive, in UTC (stock compares the bound with its tzinfo dropped).
                bounds.append(cur.fetchone()[0].replace(tzinfo=timezone.utc))
        sample = [spec.run_id for spec in data.run_sample]
        step = max(len(sample) // 10, 1)
        run_ids = [[sample[(i + k * step) % len(sample)] for k in range(10)] for i in range(10)]
        return cls(bounds[0], bounds[1], run_ids)

    def filters(self) -> dict[str, Filters]:
        ids = self.run_ids
        return {
            **RUN_FILTERS,
            "created_before mid": (lambda i: RunsFilter(created_before=self.mid), 1),
            "created_before deep": (lambda i: RunsFilter(created_before=self.deep), 1),
            "run ids": (lambda i: RunsFilter(run_ids=ids[i % len(ids)]), len(ids)),
        }


def page_two_cursors(inst: DagsterInstance) -> list[str | None]:
    """Per two-tag filter, the 25th run of its first page (its last when fewer): page 2's
    cursor. Read on one side once, untimed; both sides then read page 2 after the same run."""
    filter_of, period = RUN_FILTERS["tags"]
    cursors: list[str | None] = []
    for i in range(period):
        page = inst.get_runs(filter_of(i), limit=SCALE_LIMIT)
        cursors.append(page[min(SCALE_LIMIT, len(page)) - 1].run_id if page else None)
    return cursors


def scale_run_reads(scale: ScaleData, cursors: Sequence[str | None]) -> dict[str, Read]:
    filters = scale.filters()
    reads = {f"get_runs_count[{shape}]@scale": count_of(filters[shape]) for shape in SCALE_COUNTS}
    for shape in SCALE_LISTS:
        if shape == "tags page 2":
            reads[f"get_runs[{shape}]@scale"] = list_of(filters["tags"], SCALE_LIMIT, cursors)
        else:
            reads[f"get_runs[{shape}]@scale"] = list_of(filters[shape], SCALE_LIMIT)
    reads["get_run_records[tag+status]@scale"] = records_of(filters["tag+status"], SCALE_LIMIT)
    return reads


def to_047(server: Server, dbname: str) -> None:
    """Migration 047's run_tags layout (its upgrade's statements), then VACUUM ANALYZE."""
    with server.connect(dbname) as conn, conn.cursor() as cur:
        cur.execute("CREATE UNIQUE INDEX idx_run_tags_run_id ON run_tags (key, value, run_id)")
        cur.execute("DROP INDEX idx_run_tags")
        cur.execute("VACUUM ANALYZE")


def _scale_pass(b: Bench) -> None:
    s = b.s
    chosen = [op for op in SCALE_OPS if op.group in s.domains and op.name in s.ops]
    if not chosen:
        return
    want_runs = any(op.group == "runs" for op in chosen)
    want_ticks = any(op.group == "scheduling" for op in chosen)
    sensors = 20
    per_sensor = -(-s.scale_ticks // sensors) if want_ticks else 0
    layouts = LAYOUTS if s.scale_layout == "both" else (s.scale_layout,)
    print(
        f"scale: {s.scale_runs if want_runs else 0} runs, {per_sensor * sensors if want_ticks else 0}"
        f" ticks (loading by COPY); run_tags layouts: {', '.join(layouts)}",
        flush=True,
    )
    tmpl, data = _fill_template(
        b, s.scale_runs if want_runs else 0, sensors if want_ticks else 0, per_sensor, "scale"
    )
    scale = ScaleData.read(b.server, tmpl, data) if want_runs else None
    if not b.floor_reasons:
        b.floor_reasons = probe_floor(b.server, tmpl, b.work)
    b.notes["scale"] = {
        "runs": data.runs,
        "ticks": data.ticks,
        "sensors": len(data.sensors),
        "layouts": list(layouts),
        "created_before": None if scale is None else [str(scale.mid), str(scale.deep)],
    }
    try:
        for k, layout in enumerate(layouts):
            ops = [op for op in chosen if op.group == "runs" or k == 0]
            if layout == "047":
                # The template itself: the fresh layout's copies (if any) are made already.
                t0 = time.perf_counter()
                to_047(b.server, tmpl)
                b.notes["scale_047_s"] = round(time.perf_counter() - t0, 1)
            dbs = {
                kind: b.server.create_database(f"scale_{layout}_{kind}", template=tmpl)
                for kind in ("stock", "rust")
            }
            if k == len(layouts) - 1:
                # No longer needed: a million runs take room.
                b.server.drop_database(tmpl)
            try:
                _scale_layout(b, dbs, data, scale, ops, layout if want_runs else None)
            finally:
                for db in dbs.values():
                    b.server.drop_database(db)
    finally:
        b.server.drop_database(tmpl)


def _scale_layout(
    b: Bench,
    dbs: Mapping[str, str],
    data: Data,
    scale: ScaleData | None,
    ops: Sequence[Op],
    layout: str | None,
) -> None:
    """The scale ops on one pair of copies (`layout`: their run_tags layout)."""
    insts: dict[str, DagsterInstance] = {}
    try:
        insts = _open_sides(b.server, dbs, b.work)
        b.live = frozenset(getattr(insts["rust"], "rust_domains", ()))
        _print_serving(b, ops)
        reads: dict[str, Read] = {}
        if scale is not None:
            reads.update(scale_run_reads(scale, page_two_cursors(insts["rust"])))
        if data.sensors:
            names = ("get_ticks@scale", "get_batch_ticks@scale")
            reads.update(zip(names, scale_reads(data.sensors), strict=True))
        work = Workload(data, 1, b.s.seed)
        _reads(b, work, insts, dbs, ops, b.s.scale_budget, reads, turn=1, layout=layout)
    finally:
        for inst in insts.values():
            inst.dispose()


def _print_serving(b: Bench, ops: Sequence[Op]) -> None:
    print(f"  dagster-rs rust_domains on PostgreSQL: {sorted(b.live) or '(none)'}")
    fallback = sorted({op.served_by for op in ops if op.served_by not in b.live})
    if fallback:
        print(
            f"  FALLBACK: dagster-rs serves {fallback} with stock dagster-postgres's code here;"
            " those ops' dagster-rs figures are stock's code, not Rust"
        )
    for domain, reason in sorted(b.floor_reasons.items()):
        print(
            f"  floor[{domain}]: {'measured (native PostgreSQL store)' if reason is None else reason}"
        )


def run_bench(s: Settings) -> int:
    started = time.perf_counter()
    parent = s.dir if s.dir else None
    if parent:
        os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix="dagster-rs-bench-pg-")
    server = Server(s.url, max_connections=200, root=parent)
    b = Bench(s, server, work)
    version = server.version()
    print(f"dagster-rs bench --backend postgres: {server.describe()}, PostgreSQL {version}")
    b.server_settings = server.settings()
    print("  server settings: " + ", ".join(f"{k}={v}" for k, v in b.server_settings.items()))
    b.notes["loadavg_1m_at_start"] = f"{os.getloadavg()[0]:.2f}"
    ok = False
    try:
        _main_pass(b)
        if s.scale:
            _scale_pass(b)
        ok = True
    finally:
        server.close(keep=s.keep)
        shutil.rmtree(work, ignore_errors=True)
        if not ok:
            print("bench failed; the server was stopped / the bench's databases dropped")
    print()
    print(format_rows(b.rows))
    print()
    print(
        "stock/rust > 1: dagster-rs faster. [fallback]: dagster-rs served the op with stock"
        " dagster-postgres's code (no Rust figure). conns/1k: connections opened per 1,000"
        f" calls, counted by the server ({server.counting_method()})."
    )
    missed = [row.op for row in b.rows if row.target[1] is False]
    print(
        "target: the issue's (writes >= 5x stock; run-list shapes at scale < 50 ms, and >= 5x"
        " stock where stock takes over 50 ms):"
        f" {'all met' if not missed else 'MISSED by ' + ', '.join(missed)}."
    )
    overall = _connections_overall(b.rows)
    print(
        "connections opened per 1,000 calls over all ops: stock"
        f" {overall['stock']}, dagster-rs {overall['rust']}."
        f" Load average (1 min) {b.notes['loadavg_1m_at_start']} at start,"
        f" {os.getloadavg()[0]:.2f} at end ({os.cpu_count()} cores)."
    )
    print(f"total {time.perf_counter() - started:.1f} s")
    print_mismatches(b.mismatches)
    if s.json_path:
        write_json(s.json_path, results_json(b, version, server))
        print(f"wrote {s.json_path}")
    return 1 if b.mismatches else 0


def format_rows(rows: Sequence[Row]) -> str:
    """The results as a Markdown table (aligned, so it reads as well in a terminal), ready to
    quote in the README."""
    header = (
        "op",
        "served",
        "stock µs",
        "dagster-rs µs",
        "stock ÷ rs",
        "floor µs",
        "rs ÷ floor",
        "conns/1k stock",
        "conns/1k rs",
        "target",
    )

    def c(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    cells = [
        (
            r.op,
            r.served,
            fmt_us(r.result.stock_us),
            fmt_us(r.result.rust_us),
            f"{r.result.ratio:.2f}x",
            "-" if r.result.floor_us is None else fmt_us(r.result.floor_us),
            "-" if r.result.over_floor is None else f"{r.result.over_floor:.2f}x",
            c(r.connections.get("stock")),
            c(r.connections.get("rust")),
            r.target_cell,
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [header, *cells]) for i in range(len(header))]

    left_cols = {0, 1, len(header) - 1}

    def line(x: tuple[str, ...]) -> str:
        padded = [
            v.ljust(w) if i in left_cols else v.rjust(w)
            for i, (v, w) in enumerate(zip(x, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i not in left_cols else ("-" * (w + 2))
            for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(header), rule, *map(line, cells)])


def results_json(b: Bench, version: str, server: Server) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in b.rows:
        r = row.result
        out[r.op] = {
            "stock_us": r.stock_us,
            "rust_us": r.rust_us,
            "ratio": r.ratio,
            "floor_us": r.floor_us,
            "rust_over_floor": r.over_floor,
            "served": row.served,
            "domain": row.spec.served_by,
            "group": row.spec.group,
            "layout": row.layout,
            "connections_per_1000": dict(row.connections),
            "connections_at_warmup": b.warmup_connections.get(r.op),
            "floor_note": row.floor_note,
            "target": row.target[0],
            "target_met": row.target[1],
        }
    s = b.s
    out["_meta"] = {
        "bench": "postgres",
        "backend": "postgres",
        "server_version": version,
        "server": "throwaway" if server.was_throwaway else without_password(server.admin_url),
        "connections_counted_by": server.counting_method(),
        "rust_domains": sorted(b.live),
        "fallback_ops": [row.op for row in b.rows if row.served != "rust"],
        "floor": dict(b.floor_reasons),
        "domains": list(s.domains),
        "runs": s.runs,
        "sensors": s.sensors,
        "ticks_per_sensor": s.ticks_per_sensor,
        "schedules": s.schedules,
        "backfills": s.backfills,
        "write_sample": s.reps,
        "scale": s.scale,
        "scale_runs": s.scale_runs if s.scale else None,
        "scale_ticks": s.scale_ticks if s.scale else None,
        "scale_layout": s.scale_layout if s.scale else None,
        "server_settings": b.server_settings,
        "stat": {row.op: row.result.stat for row in b.rows},
        "calls": {
            row.op: {"stock": row.result.stock_calls, "rust": row.result.rust_calls}
            for row in b.rows
        },
        "targets": {"writes_x_stock": WRITE_TARGET, "scale_ms": SCALE_TARGET_MS},
        "targets_missed": [row.op for row in b.rows if row.target[1] is False],
        "connections_per_1000_all": _connections_overall(b.rows),
        "loadavg_1m_at_start": b.notes.get("loadavg_1m_at_start"),
        "notes": b.notes,
        "quick": s.quick,
        "seed": s.seed,
        "mismatches": b.mismatches,
        "durability": "server's (synchronous_commit on)",
        **versions(),
    }
    return out


def _connections_overall(rows: Sequence[Row]) -> dict[str, float | None]:
    """Connections opened per 1,000 calls over every op, by side (weighted by each op's calls)."""
    out: dict[str, float | None] = {}
    for side in ("stock", "rust"):
        opened = calls = 0.0
        for row in rows:
            per = row.connections.get(side)
            n = row.result.stock_calls if side == "stock" else row.result.rust_calls
            if per is None:
                return {"stock": None, "rust": None}
            opened += per * n / 1e3
            calls += n
        out[side] = round(opened * 1e3 / calls, 1) if calls else None
    return out


# -- command line ------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "pg",
        help="runs, config and scheduling on PostgreSQL: stock dagster-postgres vs dagster-rs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=main)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--postgres-url",
        metavar="URL",
        help="a server to use (left running; the bench's databases are dropped afterwards);"
        " default: a throwaway local cluster",
    )
    p.add_argument(
        "--domain",
        dest="domains",
        action="append",
        choices=DOMAINS,
        help="only these groups of ops (repeatable; default all)",
    )
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write results as JSON")
    p.add_argument("--dir", metavar="PATH", help="the throwaway cluster's directory under PATH")
    p.add_argument(
        "--ops",
        metavar="LIST",
        help="comma-separated subset of: "
        + ", ".join(op.name for op in (*OPS, *SCALE_OPS))
        + " (a scale op implies --scale)",
    )
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--runs", type=int, default=None, help="runs preloaded (default 10000)")
    p.add_argument("--reps", type=int, default=None, help="calls per write op (default 300)")
    p.add_argument(
        "--scale",
        action="store_true",
        help="also the run lists and tick reads over --scale-runs runs / --scale-ticks ticks",
    )
    p.add_argument("--scale-runs", type=int, default=None, help="default 1,000,000")
    p.add_argument("--scale-ticks", type=int, default=None, help="default 1,000,000")
    p.add_argument(
        "--scale-layout",
        choices=(*LAYOUTS, "both"),
        default=LAYOUTS[0],
        help="the run_tags index layout of the run shapes at scale: stock's fresh one (default),"
        " migration 047's (rows named <op>/047), or both in turn",
    )
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument(
        "--keep", action="store_true", help="keep the databases on a given server afterwards"
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    domains = tuple(d for d in DOMAINS if not args.domains or d in args.domains)
    ops = parse_ops(args.ops, tuple(op.name for op in (*OPS, *SCALE_OPS)))
    scale_named = [op.name for op in SCALE_OPS if op.name in ops and args.ops]
    if args.scale and not scale_named:
        # --scale with --ops naming main-pass ops only: every scale op as well.
        ops = (*ops, *(op.name for op in SCALE_OPS if op.name not in ops))
    if quick:
        budget = Budget(min_calls=5, max_calls=100, min_seconds=0.05, max_seconds=0.3)
        scale_budget = Budget(min_calls=2, max_calls=10, min_seconds=0.1, max_seconds=2.0)
    else:
        budget = Budget(min_calls=30, max_calls=5000, min_seconds=1.0, max_seconds=4.0)
        scale_budget = Budget(min_calls=3, max_calls=200, min_seconds=2.0, max_seconds=20.0)
    return Settings(
        url=args.postgres_url,
        domains=domains,
        ops=ops,
        runs=args.runs if args.runs is not None else (300 if quick else 10_000),
        sensors=5 if quick else 20,
        ticks_per_sensor=40 if quick else 500,
        schedules=2 if quick else 5,
        backfills=20 if quick else 300,
        reps=args.reps if args.reps is not None else (20 if quick else 300),
        budget=budget,
        # Naming a scale op asks for the scale pass (and, alone, for nothing else).
        scale=bool(args.scale) or bool(scale_named),
        scale_runs=args.scale_runs if args.scale_runs is not None else 1_000_000,
        scale_ticks=args.scale_ticks if args.scale_ticks is not None else 1_000_000,
        scale_layout=args.scale_layout,
        scale_budget=scale_budget,
        seed=args.seed,
        dir=args.dir,
        json_path=args.json_path,
        keep=bool(args.keep),
        quick=quick,
    )


def main(args: argparse.Namespace) -> int:
    return run_bench(settings_from_args(args))


__all__ = ["DOMAINS", "OPS", "SCALE_OPS", "add_arguments", "add_parser", "main", "run_bench"]
