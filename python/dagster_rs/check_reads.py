"""What `dagster-rs check` reads through a stock and a dagster-rs instance, and compares.

Every read shape the domains serve, with values drawn from the home itself (read-only SQL on its
files, before either instance opens them): the newest runs give statuses, a job, common and rare
tags, timestamps and ids; the tables give backfills, asset keys, asset checks, instigators,
dynamic partition definitions and cursor keys. The work is bounded for large homes: every list
has a limit, and the keys read one by one are a few sampled ones (`Bounds`), so a million-run
home is checked in the time of a few dozen of its queries.

Only reads that neither implementation answers by writing are made: no read of a run whose shard
is absent or a crash leftover (stock creates or completes the shard to answer; those runs are
read on copies, see `leftover_reads`), no cross-run event query of a type that is not mirrored in
the index shard (stock opens, and so creates, a shard per run to answer it), no
`get_run_storage_id` (stock inserts one when there is none).
"""

from __future__ import annotations

import sqlite3
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dagster_rs.home_files import read_only, tables

MISSING_RUN_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Bounds:
    """How much of a large home is read."""

    list_limit: int = 25
    page: int = 3  # the page size of the reads that follow a cursor to page 2
    sample_runs: int = 500  # the newest runs the values are drawn from
    event_runs: int = 3  # newest runs whose events, stats and step stats are read
    run_events_limit: int = 200
    asset_keys: int = 10  # keys read one by one
    asset_keys_listed: int = 1000
    check_keys: int = 10
    instigators: int = 10
    partition_defs: int = 10
    concurrency_keys: int = 10
    tag_keys: int = 10
    kv_keys: int = 50
    leftover_runs: int = 10

    def describe(self) -> str:
        return (
            f"lists of at most {self.list_limit}, cursors followed to page 2 of pages of"
            f" {self.page}, values drawn from the"
            f" {self.sample_runs} newest runs, events of the {self.event_runs} newest runs"
            f" (at most {self.run_events_limit}), {self.asset_keys} asset keys,"
            f" {self.check_keys} asset checks, {self.instigators} instigators,"
            f" {self.partition_defs} dynamic partition definitions, {self.concurrency_keys}"
            f" concurrency keys, {self.tag_keys} tag keys; counts count everything"
        )


@dataclass(frozen=True)
class SampledRun:
    run_id: str
    status: str
    job: str | None
    snapshot_id: str | None
    created: datetime | None
    updated: datetime | None
    tags: dict[str, str]


@dataclass
class Draws:
    """Values drawn from the home's files for the reads' arguments."""

    runs: list[SampledRun] = field(default_factory=list)
    half_created: datetime | None = None  # halfway down the run history
    backfills: list[tuple[str, str]] = field(default_factory=list)  # (id, status), newest first
    kv_keys: list[str] = field(default_factory=list)
    asset_keys: list[Any] = field(default_factory=list)  # AssetKey
    total_asset_keys: int = 0
    check_keys: list[Any] = field(default_factory=list)  # AssetCheckKey
    evaluation_keys: list[Any] = field(default_factory=list)  # AssetKey with AMP evaluations
    instigators: list[tuple[str, str]] = field(default_factory=list)  # (origin id, selector id)
    partition_defs: list[str] = field(default_factory=list)
    # Run ids whose shards are clean (at a revision, no journal): their events are read.
    event_runs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # draws that could not be made, and why


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _asset_key(text: str) -> Any:
    from dagster import AssetKey

    return AssetKey.from_db_string(text)


def draw(
    runs_db: str | None,
    index_db: str | None,
    schedules_db: str | None,
    bounds: Bounds,
) -> Draws:
    """The values the reads take, from read-only SQL on the files (None: absent or not
    readable in place). A draw that fails (a table an old layout lacks) is noted and skipped."""
    d = Draws()

    def attempt(what: str, path: str | None, fn: Callable[[sqlite3.Connection], None]) -> None:
        if path is None:
            return
        try:
            with read_only(path) as conn:
                fn(conn)
        except Exception as exc:  # noqa: BLE001 - a value not drawn is noted, not fatal
            d.notes.append(f"{what}: {type(exc).__name__}: {exc}")

    def runs(conn: sqlite3.Connection) -> None:
        rows = conn.execute(
            "SELECT run_id, status, pipeline_name, snapshot_id, create_timestamp,"
            " update_timestamp FROM runs ORDER BY id DESC LIMIT ?",
            (bounds.sample_runs,),
        ).fetchall()
        tags: dict[str, dict[str, str]] = {r[0]: {} for r in rows}
        if rows:
            marks = ",".join("?" * len(rows))
            for run_id, key, value in conn.execute(
                f"SELECT run_id, key, value FROM run_tags WHERE run_id IN ({marks})",
                [r[0] for r in rows],
            ):
                if key is not None and value is not None:
                    tags[run_id][key] = value
        d.runs = [
            SampledRun(r[0], r[1], r[2], r[3], _timestamp(r[4]), _timestamp(r[5]), tags[r[0]])
            for r in rows
        ]
        half = conn.execute(
            "SELECT create_timestamp FROM runs WHERE id <= (SELECT max(id) FROM runs) / 2"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
        d.half_created = _timestamp(half[0]) if half else None

    def backfills(conn: sqlite3.Connection) -> None:
        d.backfills = [
            (str(k), str(s))
            for k, s in conn.execute(
                "SELECT key, status FROM bulk_actions ORDER BY id DESC LIMIT ?",
                (bounds.sample_runs,),
            )
        ]

    def kvs(conn: sqlite3.Connection) -> None:
        d.kv_keys = [
            str(k)
            for (k,) in conn.execute("SELECT key FROM kvs ORDER BY key LIMIT ?", (bounds.kv_keys,))
        ]

    def assets(conn: sqlite3.Connection) -> None:
        d.total_asset_keys = conn.execute("SELECT count(*) FROM asset_keys").fetchone()[0]
        step = max(1, d.total_asset_keys // bounds.asset_keys)
        keys = [
            k
            for (k,) in conn.execute(
                "SELECT asset_key FROM asset_keys ORDER BY asset_key LIMIT ?",
                (step * bounds.asset_keys,),
            )
        ]
        d.asset_keys = [_asset_key(k) for k in keys[::step][: bounds.asset_keys]]

    def checks(conn: sqlite3.Connection) -> None:
        from dagster import AssetCheckKey

        rows = conn.execute(
            "SELECT DISTINCT asset_key, check_name FROM asset_check_executions LIMIT ?",
            (bounds.check_keys,),
        ).fetchall()
        d.check_keys = [AssetCheckKey(_asset_key(k), n) for k, n in rows]

    def partitions(conn: sqlite3.Connection) -> None:
        d.partition_defs = [
            str(n)
            for (n,) in conn.execute(
                "SELECT DISTINCT partitions_def_name FROM dynamic_partitions LIMIT ?",
                (bounds.partition_defs,),
            )
        ]

    def instigators(conn: sqlite3.Connection) -> None:
        from dagster._core.scheduler.instigation import InstigatorState
        from dagster._serdes import deserialize_value

        names = set(tables(conn))
        bodies = []
        for table, column in (("instigators", "instigator_body"), ("jobs", "job_body")):
            if table in names:
                bodies += [
                    b
                    for (b,) in conn.execute(
                        f"SELECT {column} FROM {table} ORDER BY id DESC LIMIT ?",
                        (bounds.instigators,),
                    )
                ]
        seen: set[tuple[str, str]] = set()
        for body in bodies:
            state = deserialize_value(body, InstigatorState)
            pair = (state.instigator_origin_id, state.selector_id)
            if pair not in seen and len(seen) < bounds.instigators:
                seen.add(pair)
                d.instigators.append(pair)

    def evaluations(conn: sqlite3.Connection) -> None:
        d.evaluation_keys = [
            _asset_key(k)
            for (k,) in conn.execute(
                "SELECT DISTINCT asset_key FROM asset_daemon_asset_evaluations LIMIT ?",
                (bounds.asset_keys,),
            )
        ]

    attempt("runs", runs_db, runs)
    attempt("backfills", runs_db, backfills)
    attempt("cursor keys", runs_db, kvs)
    attempt("asset keys", index_db, assets)
    attempt("asset checks", index_db, checks)
    attempt("dynamic partitions", index_db, partitions)
    attempt("instigators", schedules_db, instigators)
    attempt("asset evaluations", schedules_db, evaluations)
    return d


# -- the reads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    domain: str
    name: str
    fn: Callable[..., Any]


@dataclass(frozen=True)
class Outcome:
    kind: str  # ok | error
    value: Any

    def short(self) -> str:
        if self.kind == "error":
            return f"raised {self.value}"
        v = self.value
        if hasattr(v, "records"):
            return f"{len(v.records)} record(s)"
        if isinstance(v, (list, set, frozenset, dict)) or type(v) is tuple:
            return f"{len(v)} item(s)"
        if v is None or isinstance(v, (bool, int, float, str)):
            return str(v)[:60]
        return type(v).__name__


def outcome(read: Read, inst: Any) -> Outcome:
    with warnings.catch_warnings():
        # Dagster's nudges towards newer calls ("Use fetch_materializations instead of
        # get_event_records"): the old calls are read shapes too.
        warnings.simplefilter("ignore")
        try:
            return Outcome("ok", read.fn(inst))
        except Exception as exc:  # noqa: BLE001 - a failed read is a result to compare
            return Outcome("error", f"{type(exc).__name__}: {exc}")


def _tag_choices(runs: Sequence[SampledRun]) -> dict[str, Any]:
    """Tags to filter by, from the sampled runs: the most common (key, value) (preferring a key
    users see and a value not on every run, as a filter a user picks), a rare one (a value seen
    once, of the key with the most values: a sensor's run key), two tags that appear together,
    two values of one key, and the status and job of a run with the common tag."""
    pairs = Counter((k, v) for r in runs for k, v in r.tags.items())
    if not pairs:
        return {}

    def rank(item: tuple[tuple[str, str], int]) -> tuple[bool, bool, int, tuple[str, str]]:
        (key, _), count = item
        return key.startswith("."), count == len(runs), -count, item[0]

    common = sorted(pairs.items(), key=rank)[0][0]
    values_of: dict[str, set[str]] = {}
    for k, v in pairs:
        values_of.setdefault(k, set()).add(v)
    out: dict[str, Any] = {"common": common, "values_of": values_of}
    singles = sorted(
        (p for p, n in pairs.items() if n == 1), key=lambda p: (-len(values_of[p[0]]), p)
    )
    if singles:
        out["rare"] = singles[0]
    with_common = [r for r in runs if r.tags.get(common[0]) == common[1]]
    beside = Counter((k, v) for r in with_common for k, v in r.tags.items() if k != common[0])
    if beside:
        out["second"] = sorted(beside.items(), key=rank)[0][0]
    same_key = sorted(values_of[common[0]] - {common[1]})
    if same_key:
        out["two_values"] = (common[0], [common[1], same_key[0]])
    if with_common:
        out["status"] = with_common[0].status
        out["job"] = with_common[0].job
    out["keys"] = [k for k, _ in Counter(k for k, _ in pairs.elements()).most_common()]
    return out


def run_reads(d: Draws, b: Bounds) -> list[Read]:
    from dagster import DagsterRunStatus, RunsFilter
    from dagster._core.storage.tags import PARENT_RUN_ID_TAG, ROOT_RUN_ID_TAG

    n = b.list_limit
    reads: list[Read] = []

    def add(name: str, fn: Callable[..., Any]) -> None:
        reads.append(Read("runs", name, fn))

    def listed(name: str, filters: Any | None, **kw: Any) -> None:
        add(f"get_run_records {name} ({n})", lambda i: i.get_run_records(filters, limit=n, **kw))
        add(f"get_runs_count {name}", lambda i: i.get_runs_count(filters))

    def page_two(name: str, filters: Any | None) -> None:
        def read(i: Any) -> Any:
            first = i.get_run_records(filters, limit=b.page)
            if not first:
                return []
            return i.get_run_records(filters, limit=b.page, cursor=first[-1].dagster_run.run_id)

        add(f"get_run_records {name}, page 2 (cursor)", read)

    listed("no filter", None)
    page_two("no filter", None)
    add("get_runs (newest)", lambda i: i.get_runs(limit=n))
    add("get_run_ids (newest)", lambda i: list(i.get_run_ids(limit=n)))
    present = {r.status for r in d.runs}
    for status in DagsterRunStatus:
        f = RunsFilter(statuses=[status])
        if status.value in present:
            listed(f"status {status.value}", f)
        else:
            add(f"get_runs_count status {status.value}", lambda i, f=f: i.get_runs_count(f))
    add(
        "get_run_records queued, oldest first",
        lambda i: i.get_run_records(
            RunsFilter(statuses=[DagsterRunStatus.QUEUED]), limit=n, ascending=True
        ),
    )
    listed("exclude_subruns", RunsFilter(exclude_subruns=True))
    jobs = Counter(r.job for r in d.runs if r.job)
    if jobs:
        job = jobs.most_common(1)[0][0]
        listed(f"job {job!r}", RunsFilter(job_name=job))
        listed(
            f"job {job!r} + statuses SUCCESS, FAILURE",
            RunsFilter(job_name=job, statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]),
        )
    snaps = Counter(r.snapshot_id for r in d.runs if r.snapshot_id)
    if snaps:
        listed("snapshot id", RunsFilter(snapshot_id=snaps.most_common(1)[0][0]))
    tags = _tag_choices(d.runs)
    if "common" in tags:
        k, v = tags["common"]
        listed(f"tag {k}={v} (common)", RunsFilter(tags={k: v}))
        page_two(f"tag {k}={v}", RunsFilter(tags={k: v}))
        if "second" in tags:
            k2, v2 = tags["second"]
            listed(f"tags {k}={v}, {k2}={v2}", RunsFilter(tags={k: v, k2: v2}))
        if "two_values" in tags:
            key, values = tags["two_values"]
            listed(f"tag {key} in {values}", RunsFilter(tags={key: values}))
        if tags.get("status"):
            status = DagsterRunStatus(tags["status"])
            listed(
                f"tag {k}={v} + status {status.value}", RunsFilter(tags={k: v}, statuses=[status])
            )
        if tags.get("job"):
            listed(f"tag {k}={v} + job", RunsFilter(tags={k: v}, job_name=tags["job"]))
    if "rare" in tags:
        k, v = tags["rare"]
        listed(f"tag {k}={v} (rare)", RunsFilter(tags={k: v}))
    stamps = [r for r in d.runs if r.created is not None]
    if stamps:
        middle = stamps[len(stamps) // 2]
        listed("created_before (sample's middle)", RunsFilter(created_before=middle.created))
        listed("created_after (sample's middle)", RunsFilter(created_after=middle.created))
        if middle.updated is not None:
            listed("updated_after (sample's middle)", RunsFilter(updated_after=middle.updated))
    if d.half_created is not None:
        listed("created_before (half the history)", RunsFilter(created_before=d.half_created))
    ids = [r.run_id for r in d.runs[:: max(1, len(d.runs) // 50)]][:50]
    if ids:
        listed("run_ids (sampled + one missing)", RunsFilter(run_ids=[*ids, MISSING_RUN_ID]))
        add("get_run_by_id", lambda i: i.get_run_by_id(ids[0]))
        add("has_run", lambda i: [i.has_run(r) for r in ids[:10]])
    add("get_run_by_id (missing)", lambda i: i.get_run_by_id(MISSING_RUN_ID))

    add("get_run_tag_keys", lambda i: sorted(i.get_run_tag_keys()))
    for key in tags.get("keys", [])[: b.tag_keys]:
        # A key with a value per run (a run key) lists a value per run: its first ones.
        many = len(tags["values_of"][key]) > b.list_limit
        limit = b.list_limit * 4 if many else None
        add(
            f"get_run_tags {key}" + (f" ({limit})" if limit else ""),
            lambda i, key=key, limit=limit: i.get_run_tags(tag_keys=[key], limit=limit),
        )
    if "common" in tags:
        k, v = tags["common"]
        add(
            f"get_run_tags {k} prefix {v[:2]!r} (20)",
            lambda i: i.get_run_tags(tag_keys=[k], value_prefix=v[:2], limit=20),
        )
        keys = tags.get("keys", [])[:2]
        add(f"get_run_tags {keys}", lambda i: i.get_run_tags(tag_keys=keys))
    group = next(
        (r for r in d.runs if ROOT_RUN_ID_TAG in r.tags or PARENT_RUN_ID_TAG in r.tags),
        d.runs[0] if d.runs else None,
    )
    if group is not None:
        add("get_run_group (re-executed run)", lambda i: i.get_run_group(group.run_id))
    add("get_run_group (missing run)", lambda i: i.get_run_group(MISSING_RUN_ID))
    if jobs:
        job = jobs.most_common(1)[0][0]
        add(
            "get_run_partition_data (job)",
            lambda i: i.get_run_partition_data(RunsFilter(job_name=job)),
        )
    reads.extend(backfill_reads(d, b))
    return reads


def backfill_reads(d: Draws, b: Bounds) -> list[Read]:
    from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

    n = b.list_limit
    reads = [
        Read("runs", f"get_backfills ({n})", lambda i: i.get_backfills(limit=n)),
        Read("runs", "get_backfills_count", lambda i: i.get_backfills_count()),
    ]

    def page_two(i: Any) -> Any:
        first = i.get_backfills(limit=b.page)
        return i.get_backfills(limit=b.page, cursor=first[-1].backfill_id) if first else []

    reads.append(Read("runs", "get_backfills page 2 (cursor)", page_two))
    for status in sorted({s for _, s in d.backfills}):
        try:
            f = BulkActionsFilter(statuses=[BulkActionStatus(status)])
        except ValueError:
            continue
        reads.append(
            Read(
                "runs",
                f"get_backfills status {status}",
                lambda i, f=f: i.get_backfills(filters=f, limit=n),
            )
        )
        reads.append(
            Read(
                "runs",
                f"get_backfills_count status {status}",
                lambda i, f=f: i.get_backfills_count(f),
            )
        )
    if d.backfills:
        newest = d.backfills[0][0]
        reads.append(Read("runs", "get_backfill (newest)", lambda i: i.get_backfill(newest)))
    return reads


def config_reads(d: Draws, b: Bounds) -> list[Read]:
    reads = [Read("config", "get_daemon_heartbeats", lambda i: i.get_daemon_heartbeats())]
    if d.kv_keys:
        keys = set(d.kv_keys)
        reads.append(
            Read(
                "config",
                f"get_cursor_values ({len(keys)} keys)",
                lambda i: dict(i.run_storage.get_cursor_values(keys)),
            )
        )
    return reads


def asset_reads(d: Draws, b: Bounds) -> list[Read]:
    from dagster import AssetKey, DagsterEventType, EventRecordsFilter

    n = b.list_limit
    reads: list[Read] = []

    def add(domain: str, name: str, fn: Callable[..., Any]) -> None:
        reads.append(Read(domain, name, fn))

    m = b.asset_keys_listed
    add("assets", f"get_asset_keys ({m})", lambda i: i.get_asset_keys(limit=m))

    def keys_page_two(i: Any) -> Any:
        first = i.get_asset_keys(limit=b.page)
        return i.get_asset_keys(limit=b.page, cursor=first[-1].to_string()) if first else []

    add("assets", "get_asset_keys page 2 (cursor)", keys_page_two)
    keys = d.asset_keys
    if keys:
        prefix = list(keys[len(keys) // 2].path[:1])
        add("assets", f"get_asset_keys prefix {prefix}", lambda i: i.get_asset_keys(prefix=prefix))
        add("assets", f"get_asset_records ({len(keys)} keys)", lambda i: i.get_asset_records(keys))
        add(
            "assets",
            "get_latest_materialization_events",
            lambda i: dict(i.get_latest_materialization_events(keys)),
        )
    add(
        "assets",
        "get_asset_records (missing key)",
        lambda i: i.get_asset_records([AssetKey("__missing__")]),
    )
    add("assets", "can_read_asset_status_cache", lambda i: i.can_read_asset_status_cache())
    for key in keys:
        s = key.to_user_string()
        for what in (
            "fetch_materializations",
            "fetch_observations",
            "fetch_failed_materializations",
        ):
            add("assets", f"{what} {s} ({n})", lambda i, k=key, w=what: getattr(i, w)(k, limit=n))
            add(
                "assets",
                f"{what} {s} ascending ({n})",
                lambda i, k=key, w=what: getattr(i, w)(k, limit=n, ascending=True),
            )

            def page_two(i: Any, k: Any = key, w: str = what) -> Any:
                first = getattr(i, w)(k, limit=b.page)
                return getattr(i, w)(k, limit=b.page, cursor=first.cursor)

            add("assets", f"{what} {s} page 2 (cursor)", page_two)
        # The partition status cache's reads (dagster._core.storage.partition_status_cache).
        add(
            "assets",
            f"get_materialized_partitions {s}",
            lambda i, k=key: sorted(i.get_materialized_partitions(k)),
        )
        add(
            "assets",
            f"get_latest_storage_id_by_partition {s}",
            lambda i, k=key: dict(
                i.get_latest_storage_id_by_partition(k, DagsterEventType.ASSET_MATERIALIZATION)
            ),
        )
        add(
            "assets",
            f"get_latest_asset_partition_materialization_attempts_without_materializations {s}",
            lambda i, k=key: dict(
                i.event_log_storage.get_latest_asset_partition_materialization_attempts_without_materializations(
                    k
                )
            ),
        )
        add(
            "assets",
            f"get_latest_planned_materialization_info {s}",
            lambda i, k=key: i.get_latest_planned_materialization_info(k),
        )
        add(
            "assets",
            f"get_event_tags_for_asset {s}",
            lambda i, k=key: i.get_event_tags_for_asset(k),
        )
    for event_type in (
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_OBSERVATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_FAILED_TO_MATERIALIZE,
    ):
        f = EventRecordsFilter(event_type=event_type)
        add(
            "events",
            f"get_event_records {event_type.value} ({n})",
            lambda i, f=f: i.get_event_records(f, limit=n),
        )
        add(
            "events",
            f"get_event_records {event_type.value} ascending ({n})",
            lambda i, f=f: i.get_event_records(f, limit=n, ascending=True),
        )
    for event_type in (
        DagsterEventType.RUN_SUCCESS,
        DagsterEventType.RUN_FAILURE,
        DagsterEventType.RUN_START,
        DagsterEventType.RUN_ENQUEUED,
        DagsterEventType.RUN_CANCELED,
    ):
        add(
            "events",
            f"fetch_run_status_changes {event_type.value} ({n})",
            lambda i, t=event_type: i.fetch_run_status_changes(t, limit=n),
        )

    def status_page_two(i: Any) -> Any:
        first = i.fetch_run_status_changes(DagsterEventType.RUN_SUCCESS, limit=b.page)
        return i.fetch_run_status_changes(
            DagsterEventType.RUN_SUCCESS, limit=b.page, cursor=first.cursor
        )

    add("events", "fetch_run_status_changes RUN_SUCCESS page 2 (cursor)", status_page_two)
    checks = d.check_keys
    if checks:
        add(
            "assets",
            f"get_latest_asset_check_execution_by_key ({len(checks)} checks)",
            lambda i: dict(i.event_log_storage.get_latest_asset_check_execution_by_key(checks)),
        )
        add(
            "assets",
            f"get_asset_check_summary_records ({len(checks)} checks)",
            lambda i: dict(i.event_log_storage.get_asset_check_summary_records(checks)),
        )
    for check in checks:
        s = f"{check.asset_key.to_user_string()}:{check.name}"
        add(
            "assets",
            f"get_asset_check_execution_history {s} ({n})",
            lambda i, c=check: i.event_log_storage.get_asset_check_execution_history(c, limit=n),
        )

        def check_page_two(i: Any, c: Any = check) -> Any:
            first = i.event_log_storage.get_asset_check_execution_history(c, limit=b.page)
            if not first:
                return []
            return i.event_log_storage.get_asset_check_execution_history(
                c, limit=b.page, cursor=first[-1].id
            )

        add("assets", f"get_asset_check_execution_history {s} page 2 (cursor)", check_page_two)
    return reads


def run_event_reads(run_ids: Sequence[str], b: Bounds, domain: str = "events") -> list[Read]:
    """Records (pages 1 and 2), logs, stats and step stats of each run."""
    n = b.run_events_limit
    reads: list[Read] = []
    for run_id in run_ids:
        short = run_id[:8] or "(runless)"

        def records_page_two(i: Any, r: str = run_id) -> Any:
            first = i.get_records_for_run(r, limit=b.page)
            return i.get_records_for_run(r, cursor=first.cursor, limit=b.page)

        reads += [
            Read(
                domain,
                f"get_records_for_run {short} ({n})",
                lambda i, r=run_id: i.get_records_for_run(r, limit=n),
            ),
            Read(domain, f"get_records_for_run {short} page 2 (cursor)", records_page_two),
            Read(
                domain,
                f"get_logs_for_run {short} descending ({n})",
                lambda i, r=run_id: i.event_log_storage.get_logs_for_run(
                    r, limit=n, ascending=False
                ),
            ),
            Read(domain, f"get_run_stats {short}", lambda i, r=run_id: i.get_run_stats(r)),
            Read(
                domain, f"get_run_step_stats {short}", lambda i, r=run_id: i.get_run_step_stats(r)
            ),
        ]
    return reads


def scheduling_reads(d: Draws, b: Bounds) -> list[Read]:
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.scheduler.instigation import TickStatus

    n = b.list_limit
    reads = [
        Read(
            "scheduling",
            "all_instigator_state",
            lambda i: sorted(i.all_instigator_state(), key=lambda s: s.selector_id),
        )
    ]
    for kind in (InstigatorType.SCHEDULE, InstigatorType.SENSOR):
        reads.append(
            Read(
                "scheduling",
                f"all_instigator_state {kind.value}",
                lambda i, k=kind: sorted(
                    i.all_instigator_state(instigator_type=k), key=lambda s: s.selector_id
                ),
            )
        )
    for origin, selector in d.instigators:
        short = selector[:8]

        def tick(i: Any, o: str = origin, s: str = selector) -> Any:
            newest = i.get_ticks(o, s, limit=1)
            return i.get_tick(o, s, newest[0].timestamp) if newest else None

        reads += [
            Read(
                "scheduling",
                f"get_instigator_state {short}",
                lambda i, o=origin, s=selector: i.get_instigator_state(o, s),
            ),
            Read(
                "scheduling",
                f"get_ticks {short} ({n})",
                lambda i, o=origin, s=selector: i.get_ticks(o, s, limit=n),
            ),
            Read(
                "scheduling",
                f"get_ticks {short} SUCCESS, SKIPPED ({n})",
                lambda i, o=origin, s=selector: i.get_ticks(
                    o, s, limit=n, statuses=[TickStatus.SUCCESS, TickStatus.SKIPPED]
                ),
            ),
            Read("scheduling", f"get_tick {short} (newest tick's timestamp)", tick),
        ]
    if d.instigators:
        selectors = [s for _, s in d.instigators]
        reads.append(
            Read(
                "scheduling",
                f"get_batch_ticks ({len(selectors)} instigators, 5 each)",
                lambda i: dict(i.get_batch_ticks(selectors, limit=5)),
            )
        )
    for key in d.evaluation_keys:
        reads.append(
            Read(
                "scheduling",
                f"get_auto_materialize_asset_evaluations {key.to_user_string()} ({n})",
                lambda i, k=key: i.schedule_storage.get_auto_materialize_asset_evaluations(
                    k, limit=n
                ),
            )
        )
    return reads


def storage_reads(d: Draws, b: Bounds) -> list[Read]:
    reads = []
    for name in d.partition_defs:
        reads.append(
            Read(
                "storage",
                f"get_dynamic_partitions {name}",
                lambda i, p=name: i.get_dynamic_partitions(p),
            )
        )

        def has_first(i: Any, p: str = name) -> Any:
            found = i.get_dynamic_partitions(p)
            return [i.has_dynamic_partition(p, k) for k in [*found[:1], "__missing__"]]

        reads.append(Read("storage", f"has_dynamic_partition {name}", has_first))
    reads.append(
        Read(
            "storage",
            "get_dynamic_partitions (missing definition)",
            lambda i: i.get_dynamic_partitions("__missing__"),
        )
    )
    reads.append(
        Read(
            "storage",
            "get_concurrency_keys",
            lambda i: sorted(i.event_log_storage.get_concurrency_keys()),
        )
    )

    def infos(i: Any) -> Any:
        keys = sorted(i.event_log_storage.get_concurrency_keys())[: b.concurrency_keys]
        return [i.event_log_storage.get_concurrency_info(k) for k in keys]

    reads.append(Read("storage", f"get_concurrency_info (up to {b.concurrency_keys} keys)", infos))
    reads.append(
        Read(
            "storage",
            "get_pool_limits",
            lambda i: sorted(i.event_log_storage.get_pool_limits(), key=lambda p: p.name),
        )
    )
    return reads


def all_reads(d: Draws, b: Bounds) -> list[Read]:
    """Every read check makes, grouped by domain."""
    return [
        *run_reads(d, b),
        *config_reads(d, b),
        *asset_reads(d, b),
        *run_event_reads(d.event_runs, b),
        *scheduling_reads(d, b),
        *storage_reads(d, b),
    ]


def shape_names(reads: Sequence[Read]) -> list[str]:
    """The read shapes (a read's name up to its first argument), for the report."""
    return sorted({r.name.split(" ")[0] for r in reads})


__all__ = [
    "Bounds",
    "Draws",
    "Outcome",
    "Read",
    "all_reads",
    "draw",
    "outcome",
    "run_event_reads",
]
