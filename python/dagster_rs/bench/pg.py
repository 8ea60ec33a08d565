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

`--scale`: tag-filtered run lists and counts over --scale-runs runs (default 1,000,000), and
get_ticks / get_batch_ticks over --scale-ticks ticks (default 1,000,000), both sides on copies
of one database filled by COPY; ms per call.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorTick,
    InstigatorType,
    SensorInstigatorData,
    TickData,
    TickStatus,
)
from dagster._daemon.types import DaemonHeartbeat

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
from dagster_rs.bench.scheduling import EPOCH, normalized

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
SCALE_OPS: tuple[Op, ...] = (
    Op("get_runs[tag]@scale", "runs", "runs", False),
    Op("get_runs[tags]@scale", "runs", "runs", False),
    Op("get_runs_count[tag]@scale", "runs", "runs", False),
    Op("get_runs_count[tag+status]@scale", "runs", "runs", False),
    Op("get_run_records[tag+status]@scale", "runs", "runs", False),
    Op("get_ticks@scale", "scheduling", "scheduling", False),
    Op("get_batch_ticks@scale", "scheduling", "scheduling", False),
)
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


@dataclass
class Workload:
    """Each op as call(instance, i), and what a write leaves stored (read after it)."""

    data: Data
    total: int  # calls per write op (warm-up + timed)
    seed: int
    new_runs: list[RunSpec] = field(default_factory=list)
    update_ticks: list[InstigatorTick] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.new_runs = list(run_specs(self.total, self.seed + 7, start=self.data.runs))

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
        sensors, n = d.sensors, max(len(d.sensors), 1)
        selector_ids = [x.selector_id for x in sensors]
        with_runs = [TickStatus.SUCCESS, TickStatus.FAILURE]
        keys = {f"bench/cursor_{j}" for j in range(CURSOR_KEYS)}
        instigators = [*d.sensors, *d.schedules]
        repo_selector = sensors[0].state.repository_selector_id if sensors else None
        requested = BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED])
        eval_keys = [_asset_key(j) for j in range(4)]
        return {
            "get_runs[tag]": (
                lambda inst, i: [
                    r.run_id
                    for r in inst.get_runs(RunsFilter(tags={"team": TEAMS[i % 5]}), limit=LIMIT)
                ],
                5,
            ),
            "get_runs[status]": (
                lambda inst, i: [
                    r.run_id
                    for r in inst.get_runs(RunsFilter(statuses=[STATUSES[i % 3]]), limit=LIMIT)
                ],
                3,
            ),
            "get_runs_count[tag]": (
                lambda inst, i: inst.get_runs_count(
                    RunsFilter(tags={"team": TEAMS[i % 5], "env": ENVS[i % 2]})
                ),
                10,
            ),
            "get_runs_count[status]": (
                lambda inst, i: inst.get_runs_count(RunsFilter(statuses=[STATUSES[i % 3]])),
                3,
            ),
            "get_run_records[tag+status]": (
                lambda inst, i: [
                    (r.storage_id, r.dagster_run.run_id)
                    for r in inst.get_run_records(
                        RunsFilter(tags={"team": TEAMS[i % 5]}, statuses=[STATUSES[i % 3]]),
                        limit=LIMIT,
                    )
                ],
                15,
            ),
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
            "get_instigator_state": (
                lambda inst, i: inst.get_instigator_state(
                    instigators[i % len(instigators)].origin_id,
                    instigators[i % len(instigators)].selector_id,
                ),
                len(instigators),
            ),
            "all_instigator_state": (
                lambda inst, i: (
                    inst.all_instigator_state()
                    if i % 2 == 0
                    else inst.all_instigator_state(
                        repository_selector_id=repo_selector, instigator_type=InstigatorType.SENSOR
                    )
                ),
                2,
            ),
            "get_ticks": (
                lambda inst, i: inst.get_ticks(
                    sensors[i % n].origin_id,
                    sensors[i % n].selector_id,
                    limit=TICKS_LIMIT,
                    statuses=with_runs,
                ),
                n,
            ),
            "get_batch_ticks": (
                lambda inst, i: inst.get_batch_ticks(selector_ids, limit=BATCH_LIMIT),
                1,
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
            "get_backfills": (
                lambda inst, i: (
                    inst.get_backfills(limit=LIMIT)
                    if i % 2 == 0
                    else inst.get_backfills(filters=requested, limit=LIMIT)
                ),
                2,
            ),
        }

    # config
    def add_daemon_heartbeat(self, inst: DagsterInstance, i: int) -> object:
        daemon = ("SENSOR", "SCHEDULER", "BACKFILL", "ASSET")[i % 4]
        inst.add_daemon_heartbeat(DaemonHeartbeat(EPOCH + 1e6 + i, daemon, "bench-daemon", []))
        return None

    def set_cursor_values(self, inst: DagsterInstance, i: int) -> object:
        j = i % CURSOR_KEYS
        inst.run_storage.set_cursor_values(
            {f"bench/cursor_{j}": json.dumps({"offset": i}), f"bench/updated_{j}": str(i)}
        )
        return None

    # scheduling
    def _new_sensor(self, i: int) -> InstigatorState:
        from dagster._core.remote_origin import RemoteInstigatorOrigin

        from dagster_rs.bench.scheduling import repository_origin

        return InstigatorState(
            RemoteInstigatorOrigin(repository_origin(), f"new_sensor_{i:05d}"),
            InstigatorType.SENSOR,
            InstigatorStatus.RUNNING,
            SensorInstigatorData(last_tick_timestamp=EPOCH, min_interval=30, cursor=str(i)),
        )

    def add_instigator_state(self, inst: DagsterInstance, i: int) -> object:
        inst.add_instigator_state(self._new_sensor(i))
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

    def create_tick(self, inst: DagsterInstance, i: int) -> object:
        sensor = self.data.sensors[i % len(self.data.sensors)]
        return inst.create_tick(
            TickData(
                instigator_origin_id=sensor.origin_id,
                instigator_name=sensor.name,
                instigator_type=InstigatorType.SENSOR,
                status=TickStatus.STARTED,
                timestamp=EPOCH + 1e7 + i * 0.25,
                selector_id=sensor.selector_id,
            )
        ).tick_id

    def prepare_update(self, stock: DagsterInstance) -> None:
        """update_tick updates the ticks create_tick made (read from stock; same ids on every
        copy), newest first per sensor."""
        per = -(-self.total // len(self.data.sensors))
        latest = [stock.get_ticks(x.origin_id, x.selector_id, limit=per) for x in self.data.sensors]
        self.update_ticks = [t for j in range(per) for ts in latest if j < len(ts) for t in [ts[j]]]

    def update_tick(self, inst: DagsterInstance, i: int) -> object:
        tick = self.update_ticks[i % len(self.update_ticks)]
        fields = tick.tick_data._asdict()
        fields.update(
            status=TickStatus.SUCCESS,
            run_ids=[f"update-{i:08d}"],
            end_timestamp=tick.timestamp + 1.0,
        )
        return inst.update_tick(InstigatorTick(tick.tick_id, TickData(**fields))).tick_id

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
        return getattr(self, op)


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
    served: str  # "rust" or "fallback"
    floor_note: str | None
    connections: dict[str, float | None]  # per 1,000 calls, by side

    @property
    def op(self) -> str:
        return self.result.op

    @property
    def target(self) -> tuple[str | None, bool | None]:
        return target_of(BY_NAME[self.op], self.result.stock_us, self.result.rust_us)

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
    ) -> None:
        result = op_result(op.name, samples, stat)
        row = Row(result, self.served(op), floor_note, dict(conns))
        self.rows.append(row)
        print(progress(row), flush=True)


def progress(row: Row) -> str:
    r = row.result
    floor = f"  floor {fmt_us(r.floor_us)} µs" if r.floor_us is not None else "  floor -"
    conns = "/".join("-" if v is None else f"{v:.0f}" for v in row.connections.values())
    return (
        f"  {r.op:34s} [{row.served:8s}] stock {fmt_us(r.stock_us):>9s} µs"
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
) -> None:
    for op in ops:
        call, period = reads[op.name]
        fns = {kind: _bound(call, inst) for kind, inst in insts.items()}
        mismatch = first_mismatch(op.name, fns, width=200, normalize=normalized)
        if mismatch:
            b.mismatches.append(mismatch)
        floor_note = b.floor_reason(op)
        if floor_note is None:
            floor = replay_floor(insts["rust"], _bound(call, insts["rust"]), period)
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
        b.warmup_connections[op.name] = warm.opened()
        counting = Counting(b.server, dbs)
        samples = time_repeated(fns, budget, turn)
        # + 1: time_repeated's own warm-up call.
        conns = counting.per_1000({k: samples[k].calls + 1 for k in dbs})
        b.report(op, samples, "median", conns, floor_note)


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
            work.prepare_update(insts["stock"])
        fns = {kind: _bound(call, inst) for kind, inst in insts.items()}
        floor_note = b.floor_reason(op)
        if floor_note is None:
            if not floors:
                floor_note = "no floor databases"
            else:
                replays = replay_write_floor(floors["rec"], floors["target"], call, range(reps))
                if replays is None:
                    floor_note = "the op made no call into the native core"
                else:
                    fns[FLOOR] = _replayed(replays)
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


def _bound(call: Call, inst: DagsterInstance) -> Callable[[int], object]:
    return lambda i: call(inst, i)


def _replayed(replays: Mapping[int, Callable[[], object]]) -> Callable[[int], object]:
    return lambda i: replays[i]()


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


def _scale_pass(b: Bench) -> None:
    s = b.s
    chosen = [op for op in SCALE_OPS if op.group in s.domains and op.name in s.ops]
    if not chosen:
        return
    want_runs = any(op.group == "runs" for op in chosen)
    want_ticks = any(op.group == "scheduling" for op in chosen)
    sensors = 20
    per_sensor = -(-s.scale_ticks // sensors) if want_ticks else 0
    print(
        f"scale: {s.scale_runs if want_runs else 0} runs, {per_sensor * sensors if want_ticks else 0}"
        " ticks (loading by COPY)",
        flush=True,
    )
    tmpl, data = _fill_template(
        b, s.scale_runs if want_runs else 0, sensors if want_ticks else 0, per_sensor, "scale"
    )
    dbs = {
        kind: b.server.create_database(f"scale_{kind}", template=tmpl) for kind in ("stock", "rust")
    }
    if not b.floor_reasons:
        b.floor_reasons = probe_floor(b.server, tmpl, b.work)
    # The template is no longer needed: a million runs take room.
    b.server.drop_database(tmpl)
    insts: dict[str, DagsterInstance] = {}
    try:
        insts = _open_sides(b.server, dbs, b.work)
        b.live = frozenset(getattr(insts["rust"], "rust_domains", ()))
        _print_serving(b, chosen)
        selector_ids = [x.selector_id for x in data.sensors]
        sensor_list = data.sensors
        reads: dict[str, tuple[Call, int]] = {
            "get_runs[tag]@scale": (
                lambda inst, i: [
                    r.run_id
                    for r in inst.get_runs(
                        RunsFilter(tags={"team": TEAMS[i % 5]}), limit=SCALE_LIMIT
                    )
                ],
                5,
            ),
            "get_runs[tags]@scale": (
                lambda inst, i: [
                    r.run_id
                    for r in inst.get_runs(
                        RunsFilter(
                            tags={
                                "team": TEAMS[i % 5],
                                "dagster/schedule_name": f"{JOB_NAMES[i % 6]}_schedule",
                            }
                        ),
                        limit=SCALE_LIMIT,
                    )
                ],
                30,
            ),
            "get_runs_count[tag]@scale": (
                lambda inst, i: inst.get_runs_count(RunsFilter(tags={"team": TEAMS[i % 5]})),
                5,
            ),
            "get_runs_count[tag+status]@scale": (
                lambda inst, i: inst.get_runs_count(
                    RunsFilter(tags={"env": ENVS[i % 2]}, statuses=[STATUSES[i % 3]])
                ),
                6,
            ),
            "get_run_records[tag+status]@scale": (
                lambda inst, i: [
                    (r.storage_id, r.dagster_run.run_id)
                    for r in inst.get_run_records(
                        RunsFilter(tags={"team": TEAMS[i % 5]}, statuses=[STATUSES[i % 3]]),
                        limit=SCALE_LIMIT,
                    )
                ],
                15,
            ),
            "get_ticks@scale": (
                lambda inst, i: inst.get_ticks(
                    sensor_list[i % len(sensor_list)].origin_id,
                    sensor_list[i % len(sensor_list)].selector_id,
                    limit=SCALE_LIMIT,
                ),
                sensors,
            ),
            "get_batch_ticks@scale": (
                lambda inst, i: inst.get_batch_ticks(selector_ids, limit=SCALE_LIMIT),
                1,
            ),
        }
        work = Workload(data, 1, s.seed)
        _reads(b, work, insts, dbs, chosen, s.scale_budget, reads, turn=1)
        b.notes["scale"] = {"runs": data.runs, "ticks": data.ticks, "sensors": len(data.sensors)}
    finally:
        for inst in insts.values():
            inst.dispose()
        for db in dbs.values():
            b.server.drop_database(db)


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
            "domain": BY_NAME[r.op].served_by,
            "group": BY_NAME[r.op].group,
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
