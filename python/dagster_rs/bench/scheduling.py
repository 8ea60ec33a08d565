"""`python -m dagster_rs.bench scheduling`: the scheduling domain (ticks, instigator state,
backfills, daemon heartbeats, cursor values), stock Dagster vs dagster-rs.

Both instances live in this process, each on its own DAGSTER_HOME (under `--dir` when given),
both at durability full, and hold the same data: one home is filled once (the template), then
copied for each side, so tick ids, storage ids and cursors agree. Every op is timed on both sides
in the same run, the sides taking turns of 20 calls; every read is checked to answer the same on
both sides first, and after every write both sides' stored state is compared.

The data (--sensors S, default 20; --ticks T per sensor, default 10,000; --schedules, default 5;
--backfills, default 300):
  instigator states  S running sensors and the schedules, through stock's `add_instigator_state`
  backfills          through stock's `add_backfill` (run storage), statuses mixed
  a heartbeat        one per daemon type, through stock's `add_daemon_heartbeat`
  ticks              S x T sensor ticks, 30 s apart per sensor, in time order over all sensors;
                     70% SKIPPED, 20% SUCCESS (with a run id), 10% FAILURE (with an error). Written
                     straight into the stock-created `job_ticks` in one transaction: stock's
                     `create_tick` costs tens of milliseconds a call (it inspects the schema every
                     time), hours for 200,000. The rows are exactly those `create_tick` writes:
                     every column it fills, bodies from Dagster's serdes (`serialize_value` of a
                     `TickData` per sensor and status, the per-tick fields substituted; checked
                     against `serialize_value` of the tick's own `TickData`), and one more tick is
                     then created through stock's `create_tick` and its row compared with the row
                     this module builds for it (the load fails if they differ).

Reads (median per call; first the check's three calls and --warmup more per side, untimed; turns
shortened for an op whose call takes over 25 ms, so that a side's time budget is checked often;
call i reads sensor i mod S):
  get_ticks             instance.get_ticks(origin, selector, limit=100, statuses=[SUCCESS,
                        FAILURE]): a sensor page's "ticks with runs"
  get_batch_ticks       instance.get_batch_ticks(all S selector ids, limit=25)
  all_instigator_state  instance.all_instigator_state(): everything; odd calls: the repository's
                        sensors
  get_backfills         instance.get_backfills(limit=100); odd calls: of status REQUESTED
Writes (mean per call, each its own transaction as Dagster makes it; --reps timed calls, default
200, after --warmup untimed ones, default 2):
  create_tick           instance.create_tick: a STARTED tick of sensor i mod S, after all others
  update_tick           instance.update_tick: the latest ticks of every sensor (those created
                        just before) to SUCCESS with a run id
  purge_ticks           instance.purge_ticks(origin, selector, before, [SKIPPED]) of sensor i mod
                        S; call i purges the next window of that sensor's ticks (the windows are
                        sized so that the whole op purges half of every sensor's ticks: every
                        call deletes a comparable number of rows on both sides)
  add_daemon_heartbeat  instance.add_daemon_heartbeat of one of four daemon types
  set_cursor_values     run_storage.set_cursor_values of two keys (of ten)
Scale (separately labelled; --scale-ticks N, default 1,000,000; 0 skips it): N ticks over the S
sensors (inserted as above into a home of their own), then get_ticks(limit=25) of one sensor
and get_batch_ticks of all S selectors (limit 25), ms per call (median; turns of one call, a
side's first call untimed and checked against the other's); dagster-rs must stay under 20 ms.

Floors: each op is timed next to its floor where its dagster-rs side calls the native core: the
same native calls, recorded and replayed with no Dagster object built (`dagster_rs.bench.replay`,
which finds the core's objects on the instance and its storages by type, so an op whose domain
moves into the core gets a floor without change here). A read replays on the dagster-rs instance
itself. A write is recorded on a third instance (a copy of the data) and replayed on a fourth
(another copy), so that both sides still hold the same data; both copies follow every write op,
so each is at the dagster-rs side's state when the next op starts. An op that makes no native
call (today: the tick and instigator ops, still stock's Python code on dagster-rs) shows "-".

Targets (the issue): writes at least 20x faster than stock, reads at least 5x; at scale,
dagster-rs under 20 ms a call.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterInstance
from dagster._core.definitions.sensor_definition import SensorType
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemotePartitionSetOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorTick,
    InstigatorType,
    ScheduleInstigatorData,
    SensorInstigatorData,
    TickData,
    TickStatus,
)
from dagster._daemon.types import DaemonHeartbeat
from dagster._serdes import serialize_value
from dagster._time import datetime_from_timestamp
from dagster._utils.error import SerializableErrorInfo

from dagster_rs.bench.assets import time_rounds
from dagster_rs.bench.common import (
    BLOCK,
    FLOOR,
    Budget,
    OpResult,
    Sample,
    add_output_args,
    calls_meta,
    env_override,
    first_mismatch,
    format_table,
    make_home,
    op_result,
    open_instance,
    parse_ops,
    print_mismatches,
    progress_line,
    remove_home,
    results_json,
    sides_meta,
    time_each,
    write_json,
)
from dagster_rs.bench.replay import replay_floor, replay_write_floor
from dagster_rs.home_files import copy_tree

READ_OPS: tuple[str, ...] = (
    "get_ticks",
    "get_batch_ticks",
    "all_instigator_state",
    "get_backfills",
)
WRITE_OPS: tuple[str, ...] = (
    "create_tick",
    "update_tick",
    "purge_ticks",
    "add_daemon_heartbeat",
    "set_cursor_values",
)
SCALE_OP = "scale"
OPS: tuple[str, ...] = (*READ_OPS, *WRITE_OPS, SCALE_OP)
SCALE_READS: tuple[str, ...] = ("get_ticks[limit 25]", "get_batch_ticks[limit 25]")

# The targets: how many times faster than stock dagster-rs must be (stock/rust), and the
# most a call may take at scale.
READ_TARGET = 5.0
WRITE_TARGET = 20.0
SCALE_THRESHOLD_MS = 20.0

TICKS_LIMIT = 100
BATCH_LIMIT = 25
SCALE_LIMIT = 25
BACKFILLS_LIMIT = 100
CURSOR_KEYS = 10
DAEMON_TYPES = ("SENSOR", "SCHEDULER", "BACKFILL", "ASSET")
INTERVAL = 30.0  # seconds between two ticks of a sensor
EPOCH = 1_760_000_000.0  # the first tick's timestamp
LOCATION = "bench_location"
REPO = "bench_repo"
SCHEDULES_DB = os.path.join("schedules", "schedules.db")
SCALE_CAP_S = 60.0
TURN_S = 0.5  # at most this long a turn of one side's calls, about  # a side whose scale call takes longer is timed no further

Fn = Callable[[int], object]
Call = Callable[[DagsterInstance, int], object]
Fns = dict[str, Fn]


@dataclass(frozen=True)
class Settings:
    sensors: int
    ticks: int  # per sensor
    schedules: int
    backfills: int
    scale_ticks: int
    reps: int  # timed calls per write op
    warmup: int  # untimed calls per op and side before timing
    budget: Budget
    scale_budget: Budget
    ops: tuple[str, ...]
    dir: str | None
    json_path: str | None
    keep: bool
    quick: bool


# -- the data ----------------------------------------------------------------------------------


def repository_origin() -> RemoteRepositoryOrigin:
    return RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(LOCATION), REPO)


@dataclass(frozen=True)
class Instigator:
    """A sensor or schedule: its stored state and the ids its ticks are filed under (computed
    once: each is a hash of a serialized origin)."""

    state: InstigatorState
    name: str
    origin_id: str
    selector_id: str

    @classmethod
    def of(cls, state: InstigatorState) -> Instigator:
        return cls(state, state.instigator_name, state.instigator_origin_id, state.selector_id)


def sensor_state(name: str, cursor: str) -> InstigatorState:
    """A running sensor of the bench's repository (the PostgreSQL bench adds new ones too)."""
    return InstigatorState(
        RemoteInstigatorOrigin(repository_origin(), name),
        InstigatorType.SENSOR,
        InstigatorStatus.RUNNING,
        SensorInstigatorData(
            last_tick_timestamp=EPOCH,
            min_interval=int(INTERVAL),
            cursor=cursor,
            last_sensor_start_timestamp=EPOCH - 60,
            sensor_type=SensorType.STANDARD,
        ),
    )


def make_instigators(sensors: int, schedules: int) -> tuple[list[Instigator], list[Instigator]]:
    repo = repository_origin()
    sensor_states = [sensor_state(f"sensor_{s:03d}", f"cursor-{s}") for s in range(sensors)]
    schedule_states = [
        InstigatorState(
            RemoteInstigatorOrigin(repo, f"schedule_{s:03d}"),
            InstigatorType.SCHEDULE,
            InstigatorStatus.RUNNING,
            ScheduleInstigatorData("*/5 * * * *", start_timestamp=EPOCH - 60),
        )
        for s in range(schedules)
    ]
    return [Instigator.of(st) for st in sensor_states], [
        Instigator.of(st) for st in schedule_states
    ]


def tick_status(s: int, k: int) -> TickStatus:
    """Tick k of sensor s: 70% SKIPPED, 20% SUCCESS, 10% FAILURE, spread over time."""
    slot = (k + s) % 10
    if slot in (3, 7):
        return TickStatus.SUCCESS
    if slot == 5:
        return TickStatus.FAILURE
    return TickStatus.SKIPPED


def tick_timestamp(s: int, k: int) -> float:
    return EPOCH + k * INTERVAL + s * 0.125


def tick_run_id(s: int, k: int) -> str:
    return f"{s:04x}{k:028x}"


ERROR = SerializableErrorInfo(
    message="ConnectionError: the bucket listing timed out\n",
    stack=['  File "sensors.py", line 42, in new_files\n    for f in bucket.list():\n'],
    cls_name="ConnectionError",
)


def tick_data(
    sensor: Instigator,
    status: TickStatus,
    timestamp: float,
    end_timestamp: float | None,
    cursor: str | None,
    run_id: str,
) -> TickData:
    """A sensor tick as the sensor daemon leaves it, by status."""
    return TickData(
        instigator_origin_id=sensor.origin_id,
        instigator_name=sensor.name,
        instigator_type=InstigatorType.SENSOR,
        status=status,
        timestamp=timestamp,
        run_ids=[run_id] if status == TickStatus.SUCCESS else [],
        run_keys=[run_id] if status == TickStatus.SUCCESS else [],
        error=ERROR if status == TickStatus.FAILURE else None,
        skip_reason="Sensor function returned an empty result"
        if status == TickStatus.SKIPPED
        else None,
        cursor=cursor,
        failure_count=1 if status == TickStatus.FAILURE else 0,
        selector_id=sensor.selector_id,
        end_timestamp=end_timestamp,
    )


def data_tick(sensor: Instigator, s: int, k: int) -> TickData:
    """Tick k of sensor s of the loaded data."""
    ts = tick_timestamp(s, k)
    return tick_data(sensor, tick_status(s, k), ts, ts + 0.5, str(k), tick_run_id(s, k))


# Sentinels a body template carries in place of the per-tick fields (each occurs once).
_TS, _END, _CURSOR, _RUN = 1111111111.25, 2222222222.75, "@@cursor@@", "@@run@@"
_TS_MARK, _END_MARK, _CURSOR_MARK, _RUN_MARK = (json.dumps(v) for v in (_TS, _END, _CURSOR, _RUN))


def sql_timestamp(ts: float) -> str:
    """The `timestamp` column as stock's `create_tick` stores it (SQLAlchemy's SQLite
    DATETIME of `datetime_from_timestamp`)."""
    return datetime_from_timestamp(ts).strftime("%Y-%m-%d %H:%M:%S.%f")


class TickRows:
    """The `job_ticks` rows of the data's ticks, bodies from per-(sensor, status) serdes
    templates; `check` compares them with `serialize_value` of the real `TickData`."""

    def __init__(self, sensors: Sequence[Instigator]):
        self.sensors = sensors
        self.templates: dict[tuple[int, TickStatus], tuple[str, ...]] = {}
        for s, sensor in enumerate(sensors):
            for status in TickStatus:
                if status == TickStatus.STARTED:
                    continue
                body = serialize_value(tick_data(sensor, status, _TS, _END, _CURSOR, _RUN))
                self.templates[(s, status)] = self._split(body, status)

    @staticmethod
    def _split(body: str, status: TickStatus) -> tuple[str, ...]:
        """The body cut at its sentinels (kept as parts of their own)."""
        marks = [_TS_MARK, _END_MARK, _CURSOR_MARK, _RUN_MARK]
        parts = tuple(re.split("(" + "|".join(re.escape(m) for m in marks) + ")", body))
        for m in marks[:3]:
            if m not in parts:
                raise RuntimeError(f"tick body template of {status}: no sentinel {m}")
        return parts

    def body(self, s: int, k: int) -> str:
        ts = tick_timestamp(s, k)
        values = {
            _TS_MARK: repr(ts),
            _END_MARK: repr(ts + 0.5),
            _CURSOR_MARK: f'"{k}"',
            _RUN_MARK: f'"{tick_run_id(s, k)}"',
        }
        return "".join([values.get(p, p) for p in self.templates[(s, tick_status(s, k))]])

    def row(self, s: int, k: int) -> tuple[str, str, str, str, str, str]:
        """(job_origin_id, selector_id, status, type, timestamp, tick_body) of tick k of s."""
        sensor = self.sensors[s]
        return (
            sensor.origin_id,
            sensor.selector_id,
            tick_status(s, k).value,
            InstigatorType.SENSOR.value,
            sql_timestamp(tick_timestamp(s, k)),
            self.body(s, k),
        )

    def rows(self, per_sensor: int) -> Iterator[tuple[str, ...]]:
        """Every sensor's ticks 0..per_sensor-1, in time order over all sensors."""
        for k in range(per_sensor):
            for s in range(len(self.sensors)):
                yield self.row(s, k)

    def check(self) -> None:
        """The substituted bodies are serdes' own, for every template."""
        for s, sensor in enumerate(self.sensors):
            for k in range(10):
                expected = serialize_value(data_tick(sensor, s, k))
                if self.body(s, k) != expected:
                    raise RuntimeError(f"tick body of sensor {s}, tick {k} differs from serdes'")


TICK_COLUMNS = "job_origin_id, selector_id, status, type, timestamp, tick_body"


def insert_ticks(db_path: str, rows: Iterator[tuple[str, ...]]) -> int:
    """Insert the rows into `job_ticks` in one transaction; the number inserted."""
    con = sqlite3.connect(db_path, isolation_level=None)
    try:
        # A cache the indexes fit in, for this connection only (the file is untouched by it):
        # the load then spills far fewer pages to the WAL before its commit.
        con.execute("PRAGMA cache_size = -262144")
        con.execute("BEGIN")
        before = con.execute("SELECT COUNT(*) FROM job_ticks").fetchone()[0]
        con.executemany(f"INSERT INTO job_ticks ({TICK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows)
        after = con.execute("SELECT COUNT(*) FROM job_ticks").fetchone()[0]
        con.execute("COMMIT")
    finally:
        con.close()
    return int(after - before)


def check_against_create_tick(home: str, rows: TickRows, k: int) -> None:
    """Create tick k of sensor 0 through stock's `create_tick` and compare its stored row with
    the one `rows` builds for it: the directly inserted rows are what stock would store."""
    inst = open_instance(home)
    try:
        created = inst.create_tick(data_tick(rows.sensors[0], 0, k))
    finally:
        inst.dispose()
    con = sqlite3.connect(os.path.join(home, SCHEDULES_DB))
    try:
        stored = con.execute(
            f"SELECT {TICK_COLUMNS} FROM job_ticks WHERE id = ?", (created.tick_id,)
        ).fetchone()
    finally:
        con.close()
    if tuple(stored) != rows.row(0, k):
        raise RuntimeError(
            f"the ticks inserted directly differ from stock's create_tick: stock stored"
            f" {tuple(stored)!r}, this module builds {rows.row(0, k)!r}"
        )


def make_backfill(b: int) -> PartitionBackfill:
    statuses = (
        BulkActionStatus.COMPLETED_SUCCESS,
        BulkActionStatus.REQUESTED,
        BulkActionStatus.COMPLETED_FAILED,
        BulkActionStatus.CANCELED,
    )
    return PartitionBackfill(
        backfill_id=f"bench{b:05d}",
        status=statuses[b % len(statuses)],
        from_failure=False,
        tags={"team": f"t{b % 5}"},
        backfill_timestamp=EPOCH + b * 600.0,
        partition_set_origin=RemotePartitionSetOrigin(
            repository_origin=repository_origin(), partition_set_name=f"job_{b % 7}_partition_set"
        ),
        partition_names=[f"2025-01-{1 + d:02d}" for d in range(b % 5 + 1)],
        reexecution_steps=None,
        asset_selection=None,
    )


@dataclass(frozen=True)
class Data:
    sensors: list[Instigator]
    schedules: list[Instigator]
    ticks: int  # ticks stored

    @property
    def end(self) -> float:
        """A timestamp after every loaded tick."""
        return EPOCH + 1e7


def build_template(s: Settings, parent: str | None) -> tuple[str, Data, float]:
    """The template home: filled through stock (ticks inserted directly, see the module doc);
    its path, what it holds, and the seconds it took."""
    t0 = time.perf_counter()
    sensors, schedules = make_instigators(s.sensors, s.schedules)
    home = make_home("template", parent)
    inst = open_instance(home)
    try:
        for ins in [*sensors, *schedules]:
            inst.add_instigator_state(ins.state)
        for b in range(s.backfills):
            inst.add_backfill(make_backfill(b))
        for d, daemon in enumerate(DAEMON_TYPES):
            inst.add_daemon_heartbeat(DaemonHeartbeat(EPOCH + d, daemon, "bench-daemon", []))
    finally:
        inst.dispose()
    rows = TickRows(sensors)
    rows.check()
    ticks = insert_ticks(os.path.join(home, SCHEDULES_DB), rows.rows(s.ticks)) if s.ticks else 0
    if sensors:
        check_against_create_tick(home, rows, s.ticks)
        ticks += 1
    return home, Data(sensors, schedules, ticks), time.perf_counter() - t0


def clone_home(template: str, kind: str, parent: str | None) -> str:
    """A home for `kind` (its own dagster.yaml) holding a copy of the template's files."""
    home = make_home(kind, parent)
    for name in os.listdir(template):
        if name == "dagster.yaml":
            continue
        src, dst = os.path.join(template, name), os.path.join(home, name)
        if os.path.isdir(src):
            copy_tree(src, dst)
        else:
            shutil.copy2(src, dst)
    return home


def open_side(home: str) -> DagsterInstance:
    """An instance at durability full whatever the environment says (stock's default)."""
    with env_override("DAGSTER_RS_DURABILITY", "full"):
        return open_instance(home)


def ticks_digest(home: str) -> tuple[Any, ...]:
    """What `job_ticks` holds, read with plain SQL: count, max id, sums over ids and bodies, and
    the count per status."""
    con = sqlite3.connect(os.path.join(home, SCHEDULES_DB))
    try:
        totals = con.execute(
            "SELECT COUNT(*), MAX(id), TOTAL(id), TOTAL(LENGTH(tick_body)) FROM job_ticks"
        ).fetchone()
        statuses = con.execute(
            "SELECT status, COUNT(*) FROM job_ticks GROUP BY status ORDER BY status"
        ).fetchall()
    finally:
        con.close()
    return (*totals, tuple(statuses))


# -- the ops -----------------------------------------------------------------------------------


def normalized(result: object) -> object:
    if isinstance(result, Mapping):
        return sorted((k, list(v) if isinstance(v, Sequence) else v) for k, v in result.items())
    if isinstance(result, Sequence) and not isinstance(result, str):
        return list(result)
    return result


def read_ops(data: Data) -> dict[str, tuple[Callable[[DagsterInstance, int], object], int]]:
    """op -> (call(instance, i), period)."""
    sensors, n = data.sensors, len(data.sensors)
    selector_ids = [x.selector_id for x in sensors]
    with_runs = [TickStatus.SUCCESS, TickStatus.FAILURE]
    repo_selector = sensors[0].state.repository_selector_id if sensors else None
    requested = BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED])

    def get_ticks(inst: DagsterInstance, i: int) -> object:
        x = sensors[i % n]
        return inst.get_ticks(x.origin_id, x.selector_id, limit=TICKS_LIMIT, statuses=with_runs)

    def get_batch_ticks(inst: DagsterInstance, i: int) -> object:
        return inst.get_batch_ticks(selector_ids, limit=BATCH_LIMIT)

    def all_instigator_state(inst: DagsterInstance, i: int) -> object:
        if i % 2 == 0:
            return inst.all_instigator_state()
        return inst.all_instigator_state(
            repository_selector_id=repo_selector, instigator_type=InstigatorType.SENSOR
        )

    def get_backfills(inst: DagsterInstance, i: int) -> object:
        if i % 2 == 0:
            return inst.get_backfills(limit=BACKFILLS_LIMIT)
        return inst.get_backfills(filters=requested, limit=BACKFILLS_LIMIT)

    return {
        "get_ticks": (get_ticks, n),
        "get_batch_ticks": (get_batch_ticks, 1),
        "all_instigator_state": (all_instigator_state, 2),
        "get_backfills": (get_backfills, 2),
    }


def scale_reads(sensors: Sequence[Instigator]) -> list[tuple[Call, int]]:
    """The reads at scale (`SCALE_READS`: get_ticks of sensor i mod S, get_batch_ticks of all,
    limit 25) as (call(instance, i), period)."""
    selector_ids = [x.selector_id for x in sensors]

    def get_ticks(inst: DagsterInstance, i: int) -> object:
        x = sensors[i % len(sensors)]
        return inst.get_ticks(x.origin_id, x.selector_id, limit=SCALE_LIMIT)

    def get_batch_ticks(inst: DagsterInstance, i: int) -> object:
        return inst.get_batch_ticks(selector_ids, limit=SCALE_LIMIT)

    return [(get_ticks, len(sensors)), (get_batch_ticks, 1)]


@dataclass
class WriteOps:
    """The write ops as call(instance, i); i counts the warm-up calls first, then the timed."""

    data: Data
    total: int  # calls per op: warm-up + timed
    update_ticks: list[InstigatorTick] = field(default_factory=list)

    def create_tick(self, inst: DagsterInstance, i: int) -> object:
        n = len(self.data.sensors)
        sensor = self.data.sensors[i % n]
        ts = self.data.end + i * 0.25
        return inst.create_tick(
            TickData(
                instigator_origin_id=sensor.origin_id,
                instigator_name=sensor.name,
                instigator_type=InstigatorType.SENSOR,
                status=TickStatus.STARTED,
                timestamp=ts,
                selector_id=sensor.selector_id,
            )
        )

    def prepare_update(self, stock: DagsterInstance) -> None:
        """The ticks update_tick updates: every sensor's latest, interleaved (read from stock;
        the ids are the same on every copy)."""
        n = len(self.data.sensors)
        per = -(-self.total // n)
        latest = [stock.get_ticks(x.origin_id, x.selector_id, limit=per) for x in self.data.sensors]
        self.update_ticks = [t for j in range(per) for ts in latest if j < len(ts) for t in [ts[j]]]

    def update_tick(self, inst: DagsterInstance, i: int) -> object:
        tick = self.update_ticks[i % len(self.update_ticks)]
        # Built field by field: `with_status` stamps the current time as the end timestamp,
        # which would differ between the sides.
        fields = tick.tick_data._asdict()
        fields.update(
            status=TickStatus.SUCCESS,
            run_ids=[f"update-{i:08d}"],
            error=None,
            skip_reason=None,
            end_timestamp=tick.timestamp + 1.0,
        )
        return inst.update_tick(InstigatorTick(tick.tick_id, TickData(**fields)))

    def purge_window(self) -> float:
        """Seconds of a sensor's ticks one purge call covers: the op's calls over every sensor
        purge the older half of the loaded ticks."""
        n = len(self.data.sensors)
        rounds = -(-self.total // n)
        per_sensor = max(self.data.ticks // max(n, 1), 1)
        return max(per_sensor // (2 * rounds), 1) * INTERVAL

    def purge_ticks(self, inst: DagsterInstance, i: int) -> object:
        n = len(self.data.sensors)
        sensor, r = self.data.sensors[i % n], i // n
        before = EPOCH + (r + 1) * self.purge_window()
        inst.purge_ticks(sensor.origin_id, sensor.selector_id, before, [TickStatus.SKIPPED])
        return None

    def add_daemon_heartbeat(self, inst: DagsterInstance, i: int) -> object:
        daemon = DAEMON_TYPES[i % len(DAEMON_TYPES)]
        inst.add_daemon_heartbeat(DaemonHeartbeat(EPOCH + 1e6 + i, daemon, "bench-daemon", []))
        return None

    def set_cursor_values(self, inst: DagsterInstance, i: int) -> object:
        j = i % CURSOR_KEYS
        inst.run_storage.set_cursor_values(
            {f"bench/cursor_{j}": json.dumps({"offset": i}), f"bench/updated_{j}": str(i)}
        )
        return None

    def call(self, op: str) -> Callable[[DagsterInstance, int], object]:
        return getattr(self, op)


def state_read(op: str, data: Data) -> Callable[[str, DagsterInstance], object]:
    """What a write op leaves stored, read after it to compare the sides (and a floor's copy)."""
    if op in ("create_tick", "update_tick", "purge_ticks"):
        return lambda home, inst: ticks_digest(home)
    if op == "add_daemon_heartbeat":
        return lambda home, inst: sorted(inst.get_daemon_heartbeats().items())
    keys = {f"bench/{kind}_{j}" for kind in ("cursor", "updated") for j in range(CURSOR_KEYS)}
    return lambda home, inst: sorted(inst.run_storage.get_cursor_values(keys).items())


# -- the benchmark -----------------------------------------------------------------------------


def bound(call: Callable[[DagsterInstance, int], object], inst: DagsterInstance) -> Fn:
    """call(inst, i) as fn(i)."""
    return lambda i: call(inst, i)


def offset(fn: Fn, by: int) -> Fn:
    """fn(by + i) as fn(i): the timed calls of a write come after its warm-up calls."""
    return lambda i: fn(by + i)


def from_replays(replays: Mapping[int, Callable[[], object]]) -> Fn:
    """A write floor's fn(i): replay the native calls recorded for call i."""
    return lambda i: replays[i]()


@dataclass
class Bench:
    s: Settings
    instances: dict[str, DagsterInstance] = field(default_factory=dict)
    homes: dict[str, str] = field(default_factory=dict)
    results: list[OpResult] = field(default_factory=list)
    scale_results: list[OpResult] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    floors: list[str] = field(default_factory=list)  # ops that got a floor
    setup_s: dict[str, float] = field(default_factory=dict)

    def sides(self) -> dict[str, DagsterInstance]:
        return {kind: self.instances[kind] for kind in ("stock", "rust")}

    def fns(self, call: Callable[[DagsterInstance, int], object]) -> Fns:
        return {kind: bound(call, inst) for kind, inst in self.sides().items()}

    def check(self, op: str, fns: Mapping[str, Fn]) -> None:
        mismatch = first_mismatch(op, fns, width=300, normalize=normalized)
        if mismatch:
            self.mismatches.append(mismatch)

    def report(self, op: str, samples: dict[str, Sample], stat: str, scale: bool = False) -> None:
        res = op_result(op, samples, stat)
        if res.floor_us is not None:
            self.floors.append(op)
        (self.scale_results if scale else self.results).append(res)
        print(progress_line(res, 26, 11), flush=True)


def _reads(b: Bench, data: Data) -> None:
    ops = read_ops(data)
    for op in [o for o in READ_OPS if o in b.s.ops]:
        call, period = ops[op]
        fns = b.fns(call)
        t0 = time.perf_counter()
        b.check(op, fns)  # three calls of each side: also the first warm-up
        slowest = (time.perf_counter() - t0) / 3  # both sides' call: at least the slower one's
        for w in range(b.s.warmup):
            for fn in fns.values():
                t0 = time.perf_counter()
                fn(w)
                slowest = max(slowest, time.perf_counter() - t0)
        floor = replay_floor(b.instances["rust"], fns["rust"], period)
        if floor is not None:
            fns[FLOOR] = floor
        samples = time_rounds(fns, b.s.budget, turn=turn_for(slowest), warmup=False)
        b.report(op, samples, "median")


def turn_for(seconds: float) -> int:
    """Calls per turn for an op whose slower side takes `seconds` a call: BLOCK, fewer when a
    turn would take over TURN_S (stock reads at 200,000 ticks can take a second), so that the
    budget's limits are checked often enough."""
    if seconds <= 0:
        return BLOCK
    return max(1, min(BLOCK, int(TURN_S / seconds)))


def _writes(b: Bench, data: Data) -> None:
    s = b.s
    w = WriteOps(data, s.warmup + s.reps)
    recorder, replayer = b.instances["recorder"], b.instances["replayer"]
    indices = list(range(w.total))
    for op in [o for o in WRITE_OPS if o in s.ops]:
        if op == "update_tick":
            w.prepare_update(b.instances["stock"])
        call = w.call(op)
        fns = b.fns(call)
        # The floor: recorded on one copy, replayed on another (both then at the state the sides
        # reach); an op with no native call is run on the replaying copy to keep it in step.
        replays = replay_write_floor(recorder, replayer, call, indices)
        if replays is None:
            for i in indices:
                call(replayer, i)
        else:
            for i in indices[: s.warmup]:
                replays[i]()
            fns[FLOOR] = from_replays(replays)
        for i in indices[: s.warmup]:
            for kind in ("stock", "rust"):
                fns[kind](i)
        timed = {kind: offset(fn, s.warmup) for kind, fn in fns.items()}
        b.report(op, time_each(timed, s.reps), "mean")
        read = state_read(op, data)
        got = {kind: normalized(read(b.homes[kind], inst)) for kind, inst in b.instances.items()}
        if got["stock"] != got["rust"]:
            b.mismatches.append(
                f"{op}: stored state after: stock {str(got['stock'])[:300]} !="
                f" rust {str(got['rust'])[:300]}"
            )
        for copy in ("recorder", "replayer"):
            if got[copy] != got["rust"]:
                b.mismatches.append(
                    f"{op}: the floor's {copy} copy is not at the dagster-rs side's state after"
                    f" the op: {str(got[copy])[:300]} != {str(got['rust'])[:300]}"
                )


def touch(inst: DagsterInstance, data: Data) -> None:
    """One small read of every store the write ops use: a storage that opens its native store on
    first use has it open before a write floor's recording starts (else the first call's native
    calls would go unrecorded)."""
    sensor = data.sensors[0]
    inst.get_ticks(sensor.origin_id, sensor.selector_id, limit=1)
    inst.all_instigator_state()
    inst.get_backfills(limit=1)
    inst.get_daemon_heartbeats()
    inst.run_storage.get_cursor_values({"bench/none"})


def _open(b: Bench, template: str, data: Data) -> None:
    for kind in ("stock", "rust", "recorder", "replayer"):
        home = clone_home(template, "stock" if kind == "stock" else "rust", b.s.dir)
        b.homes[kind] = home
        b.instances[kind] = open_side(home)
    for kind in ("recorder", "replayer"):
        touch(b.instances[kind], data)
    for kind in ("stock", "rust"):
        inst = b.instances[kind]
        st = inst.schedule_storage
        print(
            f"  {kind:5s} DAGSTER_HOME={b.homes[kind]}  schedule_storage:"
            f" {type(st).__module__}.{type(st).__name__}",
            flush=True,
        )


def _close(b: Bench) -> None:
    for inst in b.instances.values():
        inst.dispose()
    if not b.s.keep:
        for home in b.homes.values():
            remove_home(home)
    b.instances.clear()


def _scale(b: Bench) -> None:
    """get_ticks and get_batch_ticks at --scale-ticks ticks, in homes of their own."""
    s = b.s
    per_sensor = s.scale_ticks // s.sensors
    t0 = time.perf_counter()
    sensors, _ = make_instigators(s.sensors, 0)
    stock_home = make_home("stock", s.dir)
    inst = open_instance(stock_home)
    try:
        for x in sensors:
            inst.add_instigator_state(x.state)
    finally:
        inst.dispose()
    rows = TickRows(sensors)
    rows.check()
    inserted = insert_ticks(os.path.join(stock_home, SCHEDULES_DB), rows.rows(per_sensor))
    t_insert = time.perf_counter() - t0
    rust_home = clone_home(stock_home, "rust", s.dir)
    homes = {"stock": stock_home, "rust": rust_home}
    print(
        f"\n  scale: {inserted:,} ticks over {s.sensors} sensors inserted untimed in"
        f" {t_insert:.1f} s (copied for dagster-rs in {time.perf_counter() - t0 - t_insert:.1f} s)",
        flush=True,
    )
    b.setup_s["scale"] = time.perf_counter() - t0
    instances = {kind: open_side(home) for kind, home in homes.items()}
    try:
        for op, (call, period) in zip(SCALE_READS, scale_reads(sensors), strict=True):
            fns: Fns = {kind: bound(call, inst) for kind, inst in instances.items()}
            # The warm-up calls (one per side: a stock call can take seconds) are the check.
            first = {kind: normalized(fn(0)) for kind, fn in fns.items()}
            if first["stock"] != first["rust"]:
                b.mismatches.append(f"{op} at {inserted} ticks: the answers differ")
            # Recorded for the first three sensors only (recording runs the dagster-rs side's
            # call, which may take seconds); call i replays sensor i mod 3's calls.
            floor = replay_floor(instances["rust"], fns["rust"], min(period, 3))
            if floor is not None:
                fns[FLOOR] = floor
            samples = time_rounds(fns, s.scale_budget, turn=1, warmup=False, cap_s=SCALE_CAP_S)
            b.report(f"{op} @ {inserted:,} ticks", samples, "median", scale=True)
    finally:
        for inst in instances.values():
            inst.dispose()
        if not s.keep:
            for home in homes.values():
                remove_home(home)


def _ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def _target_lines(b: Bench) -> list[str]:
    lines = []
    for r in b.results:
        is_write = r.op in WRITE_OPS
        target = WRITE_TARGET if is_write else READ_TARGET
        verdict = "met" if r.ratio >= target else "NOT met"
        kind = "write" if is_write else "read"
        lines.append(f"  {r.op:26s} {r.ratio:7.2f}x  ({kind}, target >= {target:.0f}x: {verdict})")
    for r in b.scale_results:
        verdict = "met" if r.rust_us / 1000 < SCALE_THRESHOLD_MS else "NOT met"
        lines.append(
            f"  {r.op:38s} stock {_ms(r.stock_us):>11s}  dagster-rs {_ms(r.rust_us):>10s}"
            f"  (dagster-rs < {SCALE_THRESHOLD_MS:.0f} ms: {verdict})"
        )
    return lines


def run_bench(s: Settings) -> int:
    started = time.perf_counter()
    print(
        f"dagster-rs bench: scheduling  {s.sensors} sensors x {s.ticks} ticks, {s.schedules}"
        f" schedules, {s.backfills} backfills, scale {s.scale_ticks:,} ticks"
        f"  dir={s.dir or '(system temp)'}",
        flush=True,
    )
    b = Bench(s)
    rust_domains: list[str] = []
    durability = "?"
    data: Data | None = None
    main_ops = [op for op in s.ops if op != SCALE_OP]
    template: str | None = None
    try:
        if main_ops:
            template, data, seconds = build_template(s, s.dir)
            b.setup_s["template"] = seconds
            print(
                f"  loaded untimed in {seconds:.1f} s: {data.ticks:,} ticks of {s.sensors} sensors,"
                f" {s.sensors + s.schedules} instigator states, {s.backfills} backfills",
                flush=True,
            )
            _open(b, template, data)
            rust = b.instances["rust"]
            rust_domains = sorted(getattr(rust, "rust_domains", ()))
            durability = str(getattr(rust, "durability", "?"))
            if "scheduling" not in rust_domains:
                b.notes.append(
                    f"the scheduling domain is not live in Rust ({rust_domains}): dagster-rs"
                    " runs stock's Python code for ticks and instigator state (its own"
                    " connections), so those ops make no native call and have no floor ('-')"
                )
            gc.collect()
            gc.freeze()
            _reads(b, data)
            _writes(b, data)
        if SCALE_OP in s.ops and s.scale_ticks > 0 and s.sensors > 0:
            _close(b)
            _scale(b)
        elif SCALE_OP in s.ops:
            b.notes.append("scale: skipped (--scale-ticks 0)")
    finally:
        _close(b)
        if template is not None and not s.keep:
            remove_home(template)
        gc.unfreeze()
    _print_report(b, durability, started)
    if s.json_path:
        _write_json(b, durability, rust_domains, data)
    return 1 if b.mismatches else 0


def _print_report(b: Bench, durability: str, started: float) -> None:
    if b.results:
        print()
        print(format_table(b.results))
    if b.scale_results:
        print(f"\nScale: ticks read at {b.s.scale_ticks:,} ticks (median per call):")
        print(format_table(b.scale_results))
    if b.results or b.scale_results:
        floors = ", ".join(b.floors) if b.floors else "none"
        print(
            "\nstock/rust > 1 means dagster-rs is faster. Instance level. Durability full on both"
            f" (dagster-rs: {durability}). Sides take turns of 20 calls (scale: of 1). Reads:"
            " median per call; writes: mean per call, each its own transaction. Floors (the"
            " op's native calls replayed, dagster_rs.bench.replay) where the dagster-rs side"
            f" calls the native core: {floors}; '-' where it makes no native call."
        )
        print(
            "\nTargets (the issue: writes >= 20x faster than stock, reads >= 5x; at scale"
            f" dagster-rs < {SCALE_THRESHOLD_MS:.0f} ms a call):"
        )
        print("\n".join(_target_lines(b)))
    if b.notes:
        print("\nNotes:")
        for note in b.notes:
            print(f"  - {note}")
    setup = ", ".join(f"{k} {v:.1f} s" for k, v in b.setup_s.items())
    print(f"\ntotal {time.perf_counter() - started:.1f} s (setup: {setup or '-'})")
    print_mismatches(b.mismatches)


def _write_json(b: Bench, durability: str, rust_domains: Sequence[str], data: Data | None) -> None:
    s = b.s
    all_results = [*b.results, *b.scale_results]
    meta: dict[str, Any] = {
        "bench": "scheduling",
        "level": "instance",
        **sides_meta(s.dir, durability, rust_domains),
        "sensors": s.sensors,
        "ticks_per_sensor": s.ticks,
        "ticks_stored": data.ticks if data else 0,
        "schedules": s.schedules,
        "backfills": s.backfills,
        "scale_ticks": s.scale_ticks if SCALE_OP in s.ops else 0,
        "scale_ops": [r.op for r in b.scale_results],
        "reps": s.reps,
        "warmup": s.warmup,
        "limits": {
            "get_ticks": TICKS_LIMIT,
            "get_batch_ticks": BATCH_LIMIT,
            "get_backfills": BACKFILLS_LIMIT,
            "scale": SCALE_LIMIT,
        },
        "targets": {
            "read": READ_TARGET,
            "write": WRITE_TARGET,
            "scale_rust_ms": SCALE_THRESHOLD_MS,
        },
        "scale": {
            r.op: {
                "stock_ms": r.stock_us / 1000,
                "rust_ms": r.rust_us / 1000,
                "threshold_ms": SCALE_THRESHOLD_MS,
                "met": r.rust_us / 1000 < SCALE_THRESHOLD_MS,
            }
            for r in b.scale_results
        },
        "floors": b.floors,
        "setup_s": b.setup_s,
        **calls_meta(all_results),
        "quick": s.quick,
        "notes": b.notes,
        "mismatches": b.mismatches,
    }
    write_json(s.json_path or "", results_json(all_results, meta))
    print(f"wrote {s.json_path}")


# -- command line ------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "scheduling",
        help="ticks, instigator state, backfills, heartbeats, cursors; stock vs dagster-rs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_output_args(p, OPS)
    p.add_argument("--quick", action="store_true", help="a small smoke run (well under a minute)")
    p.add_argument("--sensors", type=int, default=None, help="sensors (default 20; quick 20)")
    p.add_argument(
        "--ticks",
        type=int,
        default=None,
        metavar="T",
        help="ticks per sensor (default 10000; quick 200)",
    )
    p.add_argument("--schedules", type=int, default=None, help="schedules (default 5; quick 5)")
    p.add_argument("--backfills", type=int, default=None, help="backfills (default 300; quick 30)")
    p.add_argument(
        "--scale-ticks",
        type=int,
        default=None,
        metavar="N",
        help="ticks of the scale section (default 1000000; quick 20000; 0 skips it)",
    )
    p.add_argument(
        "--reps", type=int, default=None, help="timed calls per write op (default 200; quick 20)"
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed calls per op and side before timing (default 2; quick 1)",
    )
    p.add_argument("--keep", action="store_true", help="keep the DAGSTER_HOMEs afterwards")
    p.set_defaults(func=main)


def _pick(value: int | None, full: int, quick: int, is_quick: bool) -> int:
    return value if value is not None else (quick if is_quick else full)


def settings_from_args(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    sensors = _pick(args.sensors, 20, 20, quick)
    if sensors < 1:
        raise SystemExit("--sensors must be at least 1")
    if quick:
        budget = Budget(min_calls=5, max_calls=40, min_seconds=0.02, max_seconds=0.15)
        scale_budget = Budget(min_calls=2, max_calls=10, min_seconds=0.05, max_seconds=1.0)
    else:
        budget = Budget(min_calls=20, max_calls=2000, min_seconds=1.0, max_seconds=4.0)
        scale_budget = Budget(min_calls=5, max_calls=200, min_seconds=2.0, max_seconds=12.0)
    return Settings(
        sensors=sensors,
        ticks=max(_pick(args.ticks, 10_000, 200, quick), 0),
        schedules=max(_pick(args.schedules, 5, 5, quick), 0),
        backfills=max(_pick(args.backfills, 300, 30, quick), 0),
        scale_ticks=max(_pick(args.scale_ticks, 1_000_000, 20_000, quick), 0),
        reps=max(_pick(args.reps, 200, 20, quick), 1),
        warmup=max(_pick(args.warmup, 2, 1, quick), 0),
        budget=budget,
        scale_budget=scale_budget,
        ops=parse_ops(args.ops, OPS),
        dir=args.dir,
        json_path=args.json_path,
        keep=args.keep,
        quick=quick,
    )


def main(args: argparse.Namespace) -> int:
    return run_bench(settings_from_args(args))


__all__ = ["OPS", "add_parser", "main", "run_bench", "settings_from_args"]
