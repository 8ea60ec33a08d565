"""The PostgreSQL bench's data: one database filled once, in stock dagster-postgres's schema, then
copied (`CREATE DATABASE ... TEMPLATE`) for each side, so both hold the same rows, ids and
sequences.

Stock creates the schema (opening a stock instance on the empty database) and writes what is few
through its own API: instigator states, backfills, daemon heartbeats. Runs and ticks are many
(1,000,000 each at `--scale`) and go in by `COPY` in one transaction (then `VACUUM ANALYZE`), as exactly the rows stock's
`add_run` / `create_tick` write:
- a run's columns come from stock's own `_get_run_insertion_values` of a template run per
  (job, status, tags) combination, its body with the run id substituted (checked against
  `serialize_value` of the real run for a sample); its tags are the template's `tags_for_storage`;
- a tick's row is `dagster_rs.bench.scheduling.TickRows`' (bodies from serdes templates, checked
  there), and one more tick is created through stock's `create_tick` and its row compared.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._daemon.types import DaemonHeartbeat
from dagster._serdes import serialize_value

from dagster_rs.bench.pg_server import Server
from dagster_rs.bench.runs import ENVS, JOB_NAMES, STATUS_WEIGHTS, TEAMS
from dagster_rs.bench.scheduling import (
    DAEMON_TYPES,
    EPOCH,
    TICK_COLUMNS,
    Instigator,
    TickRows,
    data_tick,
    make_backfill,
    make_instigators,
)

BASE_TIME = datetime(2026, 1, 1)  # naive UTC, as stock stores timestamps
RUN_COLUMNS = (
    "run_id",
    "snapshot_id",
    "pipeline_name",
    "status",
    "run_body",
    "partition",
    "partition_set",
    "backfill_id",
    "create_timestamp",
    "update_timestamp",
)
_SENTINEL_ID = "5e5e5e5e-5e5e-4e5e-8e5e-5e5e5e5e5e5e"
COPY_CHUNK = 20_000


def repository() -> RemoteRepositoryOrigin:
    return RemoteRepositoryOrigin(
        GrpcServerCodeLocationOrigin(host="localhost", port=4266, location_name="bench"),
        "bench_repository",
    )


@dataclass(frozen=True)
class RunSpec:
    """What makes run i: its id, job, status and tags (a few values each, deterministic)."""

    run_id: str
    job: str
    status: DagsterRunStatus
    tags: tuple[tuple[str, str], ...]

    def run(self, run_id: str | None = None) -> DagsterRun:
        # Queued runs must say where their code lives; the others carry no origin (smaller
        # bodies: a million of them are copied twice).
        origin = (
            repository().get_job_origin(self.job)
            if self.status == DagsterRunStatus.QUEUED
            else None
        )
        return DagsterRun(
            job_name=self.job,
            run_id=run_id or self.run_id,
            status=self.status,
            tags=dict(self.tags),
            remote_job_origin=origin,
        )


def run_specs(n: int, seed: int, start: int = 0) -> Iterator[RunSpec]:
    """Runs start..start+n-1 of the data for `seed`."""
    rng = random.Random(seed * 1_000_003 + start)
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    for i in range(start, start + n):
        job = JOB_NAMES[rng.randrange(len(JOB_NAMES))]
        tags = [("team", TEAMS[rng.randrange(5)]), ("env", ENVS[rng.randrange(2)])]
        if i % 4 == 0:
            tags.append(("dagster/schedule_name", f"{job}_schedule"))
        yield RunSpec(
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            job,
            rng.choices(statuses, weights)[0],
            tuple(tags),
        )


class RunRows:
    """`runs` and `run_tags` rows as stock's `add_run` writes them (see the module doc)."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage  # stock's run storage: its `_get_run_insertion_values`
        self.templates: dict[tuple[Any, ...], tuple[dict[str, Any], list[tuple[str, str]]]] = {}

    def _template(self, spec: RunSpec) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        key = (spec.job, spec.status, spec.tags)
        found = self.templates.get(key)
        if found is None:
            run = spec.run(_SENTINEL_ID)
            values = dict(self.storage._get_run_insertion_values(run))  # noqa: SLF001
            if values["run_body"].count(_SENTINEL_ID) != 1:
                raise RuntimeError("a run body template must hold its run id exactly once")
            found = (values, list(run.tags_for_storage().items()))
            self.templates[key] = found
        return found

    def row(self, spec: RunSpec, i: int) -> tuple[Any, ...]:
        values, _ = self._template(spec)
        created = (BASE_TIME + timedelta(seconds=10 * i)).strftime("%Y-%m-%d %H:%M:%S.%f")
        return (
            spec.run_id,
            values.get("snapshot_id"),
            values["pipeline_name"],
            values["status"],
            values["run_body"].replace(_SENTINEL_ID, spec.run_id),
            values.get("partition"),
            values.get("partition_set"),
            values.get("backfill_id"),
            created,
            created,
        )

    def tag_rows(self, spec: RunSpec) -> list[tuple[str, str, str]]:
        _, tags = self._template(spec)
        return [(spec.run_id, k, v) for k, v in tags]

    def check(self, specs: Sequence[RunSpec]) -> None:
        """Bodies built from the templates are serdes' own."""
        for spec in specs:
            if self.row(spec, 0)[4] != serialize_value(spec.run()):
                raise RuntimeError(f"the run body built for {spec.run_id} differs from serdes'")


def _csv_chunks(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
        if count % COPY_CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue()


class _ChunkReader(io.TextIOBase):
    """A file-like over string chunks, for psycopg2's `copy_expert`."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self._buf = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        want = size if size is not None and size >= 0 else None
        while want is None or len(self._buf) < want:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        if want is None:
            out, self._buf = self._buf, ""
        else:
            out, self._buf = self._buf[:want], self._buf[want:]
        return out

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return self.read(size)


def copy_rows(cur: Any, table: str, columns: str, rows: Iterable[Sequence[Any]]) -> None:
    cur.copy_expert(
        f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", _ChunkReader(_csv_chunks(rows))
    )


def load_runs(server: Server, dbname: str, storage: Any, n: int, seed: int) -> list[RunSpec]:
    """Runs 0..n-1 into `dbname` by COPY, one transaction; returns a sample of them (every
    n/1000th) for the reads to use."""
    rows = RunRows(storage)
    rows.check(list(run_specs(min(n, 50), seed)))
    sample: list[RunSpec] = []
    step = max(1, n // 1000)

    def run_rows() -> Iterator[tuple[Any, ...]]:
        for i, spec in enumerate(run_specs(n, seed)):
            if i % step == 0:
                sample.append(spec)
            yield rows.row(spec, i)

    def tag_rows() -> Iterator[tuple[str, str, str]]:
        # A second pass over the (deterministic) runs rather than millions of rows held.
        for spec in run_specs(n, seed):
            yield from rows.tag_rows(spec)

    with server.connect(dbname) as conn:
        conn.autocommit = False
        with conn.cursor() as cur:
            copy_rows(cur, "runs", ", ".join(RUN_COLUMNS), run_rows())
            # Tags in run order after the runs (stock inserts a run's tags after the run).
            copy_rows(cur, "run_tags", "run_id, key, value", tag_rows())
        conn.commit()
    return sample


def load_ticks(server: Server, dbname: str, sensors: Sequence[Instigator], per_sensor: int) -> int:
    if not sensors or per_sensor <= 0:
        return 0
    rows = TickRows(sensors)
    rows.check()
    with server.connect(dbname) as conn:
        conn.autocommit = False
        with conn.cursor() as cur:
            copy_rows(cur, "job_ticks", TICK_COLUMNS, rows.rows(per_sensor))
        conn.commit()
    return per_sensor * len(sensors)


def check_tick_against_stock(
    server: Server, dbname: str, stock: DagsterInstance, sensors: Sequence[Instigator], k: int
) -> None:
    """Tick k of sensor 0 created through stock's `create_tick`; its stored row must be the one
    `TickRows` builds (so the copied rows are what stock would have stored)."""
    created = stock.create_tick(data_tick(sensors[0], 0, k))
    with server.connect(dbname) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT job_origin_id, selector_id, status, type,"
            " to_char(timestamp, 'YYYY-MM-DD HH24:MI:SS.US'), tick_body FROM job_ticks WHERE id = %s",
            (created.tick_id,),
        )
        stored = cur.fetchone()
    expected = TickRows(sensors).row(0, k)
    if tuple(stored) != expected:
        raise RuntimeError(
            f"the copied ticks differ from stock's create_tick: stock stored {tuple(stored)!r},"
            f" the bench builds {expected!r}"
        )


@dataclass
class Data:
    runs: int
    run_sample: list[RunSpec]
    sensors: list[Instigator]
    schedules: list[Instigator]
    ticks: int
    backfills: int


def fill(
    server: Server,
    dbname: str,
    stock: DagsterInstance,
    *,
    runs: int,
    seed: int,
    sensors: int,
    ticks_per_sensor: int,
    schedules: int,
    backfills: int,
) -> Data:
    """Fill `dbname` (stock's schema already created by `stock`, a stock instance on it)."""
    sensor_list, schedule_list = make_instigators(sensors, schedules)
    for ins in [*sensor_list, *schedule_list]:
        stock.add_instigator_state(ins.state)
    for b in range(backfills):
        stock.add_backfill(make_backfill(b))
    for d, daemon in enumerate(DAEMON_TYPES):
        stock.add_daemon_heartbeat(DaemonHeartbeat(EPOCH + d, daemon, "bench-daemon", []))
    # The run storage's id is made on first read (a random uuid): made here, every copy of the
    # database has the same.
    cast(Any, stock.run_storage).get_run_storage_id()
    sample = load_runs(server, dbname, stock.run_storage, runs, seed) if runs else []
    ticks = load_ticks(server, dbname, sensor_list, ticks_per_sensor)
    if sensor_list:
        check_tick_against_stock(server, dbname, stock, sensor_list, ticks_per_sensor)
        ticks += 1
    # VACUUM too: the visibility map an index-only scan needs (any autovacuumed database has
    # it; a freshly COPYed one has none, and each index-only scan would read the heap).
    with server.connect(dbname) as conn, conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    return Data(runs, sample, sensor_list, schedule_list, ticks, backfills)


__all__ = [
    "ENVS",
    "JOB_NAMES",
    "TEAMS",
    "Data",
    "RunRows",
    "RunSpec",
    "fill",
    "load_runs",
    "load_ticks",
    "run_specs",
]
