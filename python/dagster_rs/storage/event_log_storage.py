"""`RustEventLogStorage`: Dagster's SQLite event log, written and read by the Rust core.

It subclasses stock `SqliteEventLogStorage`, so `isinstance` checks and the methods of later
domains (asset reads, asset-check reads, concurrency, dynamic partitions, migrations) keep working
on the same files. The events domain's methods are overridden to call the native `EventStore`:
the write path with all of stock's index-side effects, the run-scoped reads, the filtered reads
of run-status changes and run-sharded records, maintenance and watching.

The stock methods left in place run on SQLAlchemy engines whose connections come from the core
(`EventStore.connect`, a DB-API bridge), not from Python's `sqlite3`: one SQLite library holds
the event log in the process (ARCHITECTURE.md, "One SQLite per process").
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sqlite3
import threading
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import dagster._check as check
import sqlalchemy.exc
from dagster._core.errors import DagsterEventLogInvalidForRun
from dagster._core.event_api import (
    EventLogRecord,
    EventRecordsFilter,
    EventRecordsResult,
    RunShardedEventsCursor,
    RunStatusChangeRecordsFilter,
)
from dagster._core.events import (
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
    DagsterEventType,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.stats import RunStepKeyStatsSnapshot, build_run_step_stats_from_events
from dagster._core.instance import RUNLESS_RUN_ID
from dagster._core.storage.dagster_run import DagsterRunStatsSnapshot, DagsterRunStatus, RunsFilter
from dagster._core.storage.event_log.base import EventLogConnection, EventLogCursor
from dagster._core.storage.event_log.sql_event_log import (
    RUN_STATS_EVENT_TYPES,
    STEP_STATS_EVENT_TYPES,
    SqlEventLogStorage,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from dagster._time import utc_datetime_from_naive
from dagster._utils import mkdir_p
from dagster._utils.warnings import deprecation_warning
from dagster_shared.serdes.errors import DeserializationError
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from dagster_rs.core import core_for
from dagster_rs.errors import DagsterRsStorageError
from dagster_rs.serdes import deserialize_values
from dagster_rs.storage.assets_domain import AssetsDomain
from dagster_rs.storage.convert import naive_utc_text
from dagster_rs.storage.event_rows import event_row
from dagster_rs.storage.storage_domain import StorageDomain

if TYPE_CHECKING:
    from dagster._core.storage.event_log.base import EventHandlerFn

    from dagster_rs._native import Durability, RecordsFilterSpec

_TERMINAL = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
# SQLAlchemy engines kept for run shards; the index's is kept for the storage's lifetime.
_MAX_SHARD_ENGINES = 64


# Storages with watches: their polling threads are stopped at interpreter exit, before Python
# finalizes (a thread calling back into a finalizing interpreter would hang or abort).
_WATCHING: weakref.WeakSet[RustEventLogStorage] = weakref.WeakSet()


@atexit.register
def _stop_watchers() -> None:
    for storage in list(_WATCHING):
        storage._native.dispose()  # noqa: SLF001


def _event_types(of_type: Any, name: str) -> set[DagsterEventType]:
    check.invariant(not of_type or isinstance(of_type, (DagsterEventType, frozenset, set)))
    if isinstance(of_type, DagsterEventType):
        return {of_type}
    return check.opt_set_param(of_type, name, of_type=DagsterEventType)


def _check_event(event: Any) -> None:
    """Stock's argument checks of `store_event`: the entry, then its run id as a shard name."""
    check.inst_param(event, "event", EventLogEntry)
    check.str_param(event.run_id, "shard")


@functools.cache
def _name_limits(directory: str) -> tuple[int, int]:
    """The longest file name and path the file system of `directory` takes, in bytes."""
    try:
        return os.pathconf(directory, "PC_NAME_MAX"), os.pathconf(directory, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 255, 4096


def check_shard_name(run_id: str, base_dir: str | None = None) -> None:
    """What opening the run's shard raises for stock, raised before the core sees the run id:
    `ValueError` for a NUL character (Python's `sqlite3` refuses the file name), SQLAlchemy's
    `OperationalError` "unable to open database file" for a name longer than the file system
    takes (the core would find no such file and answer as for a run without events)."""
    if "\x00" in run_id:
        raise ValueError("embedded null byte")
    if len(run_id) > 60 and base_dir is not None:
        name_max, path_max = _name_limits(base_dir)
        name = len(run_id.encode("utf-8", "surrogatepass")) + len(".db")
        if name > name_max or name + len(os.fsencode(base_dir)) + 1 >= path_max:
            raise sqlalchemy.exc.OperationalError(
                None, None, sqlite3.OperationalError("unable to open database file")
            )


def _sql_limit(limit: Any) -> int | None:
    """The LIMIT stock's SQLAlchemy query gets: none for a falsy limit; SQLite takes a numeric
    string, and a negative limit means no limit."""
    if not limit:
        return None
    return int(limit)


def _entries(bodies: Sequence[str]) -> list[EventLogEntry | ValueError | DeserializationError]:
    """Each body's entry, or the error stock's per-row reads catch (a body that is not JSON, or
    not an `EventLogEntry`): one serdes pass, body by body only when one of them is unreadable."""
    try:
        return list(deserialize_values(bodies, EventLogEntry))
    except (ValueError, DeserializationError):
        pass
    out: list[EventLogEntry | ValueError | DeserializationError] = []
    for body in bodies:
        try:
            out.append(deserialize_values([body], EventLogEntry)[0])
        except (ValueError, DeserializationError) as err:
            out.append(err)
    return out


def _records(rows: Sequence[tuple[int, str]]) -> list[EventLogRecord]:
    """Rows of the core as records, their bodies deserialized in one serdes pass."""
    entries = deserialize_values((body for _, body in rows), EventLogEntry)
    return [
        EventLogRecord(storage_id=storage_id, event_log_entry=entry)
        for (storage_id, _), entry in zip(rows, entries, strict=True)
    ]


def _next_cursor(records: Sequence[EventLogRecord], cursor: str | None) -> str:
    """Stock's cursor after a page: the last record's id, else the given one, else the start."""
    if records:
        return EventLogCursor.from_storage_id(records[-1].storage_id).to_string()
    if cursor:
        return cursor
    return EventLogCursor.from_storage_id(-1).to_string()


def _cursor_id(cursor: int | RunShardedEventsCursor | None) -> int | None:
    if isinstance(cursor, RunShardedEventsCursor):
        return cursor.id
    return cursor


class RustEventLogStorage(SqliteEventLogStorage):
    """Stock's SQLite event log layout under `base_dir`, served by the Rust core."""

    # The event log's domains this class serves in Rust (`event_log_class` adds assets, storage).
    rust_domains: frozenset[str] = frozenset({"events"})

    def __init__(
        self,
        base_dir: str,
        inst_data: ConfigurableClassData | None = None,
        *,
        durability: Durability = "full",
    ):
        # Stock's __init__ would create index.db through Python's sqlite3; the core does it.
        self._base_dir = os.path.abspath(check.str_param(base_dir, "base_dir"))
        mkdir_p(self._base_dir)
        self._watchers: dict[str, dict[EventHandlerFn, tuple[int, _Watch]]] = defaultdict(dict)  # type: ignore[assignment]
        self._inst_data = check.opt_inst_param(inst_data, "inst_data", ConfigurableClassData)
        self._durability: Durability = durability
        self._native_core = core_for(event_log_dir=self._base_dir, durability=durability)
        self._native = self._native_core.events
        creates_index = not os.path.exists(self.path_for_shard(INDEX_SHARD_NAME))
        try:
            self._native.ensure_index()
        except DagsterRsStorageError:
            # An index the native path does not serve (a revision it does not cover or know),
            # refused untouched: the facade leaves its domains to stock's code and says so
            # (`dagster_rs.revisions`); used alone, this storage raises on every access.
            pass
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        # Stock's own attributes, at the values a stock storage of these files has after its
        # construction, for stock code that reads them (its inherited methods, Dagster's checks):
        # no watchdog observer (watching is the core's); the shards initialized through its
        # `_connect`, which is the index when stock's constructor created it (the core opens
        # shards itself: no others are added); and its lock.
        self._obs = None
        self._initialized_dbs: set[str] = {INDEX_SHARD_NAME} if creates_index else set()
        self._db_lock = threading.Lock()
        SqlEventLogStorage.__init__(self)  # type: ignore[arg-type]  # stock's own base init

    @property
    def durability(self) -> Durability:
        return self._durability

    @property
    def base_dir(self) -> str:
        return self._base_dir

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> RustEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    # -- connections for the stock methods left in place ------------------------------------

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
        native = self._native
        engine = create_engine(
            self.conn_string_for_shard(shard),
            creator=lambda: native.connect(shard),
            # The core pools the SQLite connections; SQLAlchemy returns each one at once.
            poolclass=NullPool,
        )
        with self._engines_lock:
            engine = self._engines.setdefault(shard, engine)
            if len(self._engines) > _MAX_SHARD_ENGINES + 1:
                for name in list(self._engines):
                    if name != INDEX_SHARD_NAME:
                        self._engines.pop(name).dispose()
                        break
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        check.str_param(shard, "shard")
        with self._engine(shard).connect() as conn:
            with conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def get_all_run_ids(self) -> Sequence[str]:
        return self._native.run_ids_on_disk()

    # -- write path ------------------------------------------------------------------------

    def store_event(self, event: EventLogEntry) -> None:
        _check_event(event)
        check_shard_name(event.run_id, self._base_dir)
        self._native.store_events([event_row(event, self)])

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # Stock's batch is `store_event` per event: its argument errors are store_event's, and
        # any iterable of events is accepted.
        events = list(events)
        for event in events:
            _check_event(event)
            check_shard_name(event.run_id, self._base_dir)
        if events:
            self._native.store_events([event_row(event, self) for event in events])

    # -- run-scoped reads ------------------------------------------------------------------

    def get_records_for_run(
        self,
        run_id: str,
        cursor: str | None = None,
        of_type: DagsterEventType | set[DagsterEventType] | None = None,
        limit: int | None = None,
        ascending: bool = True,
    ) -> EventLogConnection:
        check.str_param(run_id, "run_id")
        check.opt_str_param(cursor, "cursor")
        check_shard_name(run_id, self._base_dir)
        types = _event_types(of_type, "dagster_event_type")
        position: tuple[Literal["storage_id", "offset"], int] | None = None
        if cursor is not None:
            parsed = EventLogCursor.parse(cursor)
            if parsed.is_offset_cursor():
                position = ("offset", parsed.offset())
            elif parsed.is_id_cursor():
                position = ("storage_id", parsed.storage_id())
        results = self._native.records_for_run(
            run_id,
            position,
            [t.value for t in types],
            _sql_limit(limit),
            bool(ascending),
        )
        try:
            records = _records(results)
        except (ValueError, DeserializationError) as err:
            raise DagsterEventLogInvalidForRun(run_id=run_id) from err
        return EventLogConnection(
            records=records,
            cursor=_next_cursor(records, cursor),
            has_more=bool(limit and len(results) == limit),
        )

    def get_stats_for_run(self, run_id: str) -> DagsterRunStatsSnapshot:
        check.str_param(run_id, "run_id")
        check_shard_name(run_id, self._base_dir)
        rows = self._native.stats_for_run(run_id, [t.value for t in RUN_STATS_EVENT_TYPES])
        counts = {kind: n for kind, n, _ in rows}
        times = {kind: ts for kind, _, ts in rows}

        def at(*kinds: DagsterEventType) -> float | None:
            for kind in kinds:
                text = times.get(kind.value)
                if text:
                    return utc_datetime_from_naive(datetime.fromisoformat(text)).timestamp()
            return None

        return DagsterRunStatsSnapshot(
            run_id=run_id,
            steps_succeeded=counts.get(DagsterEventType.STEP_SUCCESS.value, 0),
            steps_failed=counts.get(DagsterEventType.STEP_FAILURE.value, 0),
            materializations=counts.get(DagsterEventType.ASSET_MATERIALIZATION.value, 0),
            expectations=counts.get(DagsterEventType.STEP_EXPECTATION_RESULT.value, 0),
            enqueued_time=at(DagsterEventType.PIPELINE_ENQUEUED),
            launch_time=at(DagsterEventType.PIPELINE_STARTING),
            start_time=at(DagsterEventType.PIPELINE_START),
            end_time=at(
                DagsterEventType.PIPELINE_SUCCESS,
                DagsterEventType.PIPELINE_FAILURE,
                DagsterEventType.PIPELINE_CANCELED,
            ),
        )

    def get_step_stats_for_run(
        self, run_id: str, step_keys: Sequence[str] | None = None
    ) -> Sequence[RunStepKeyStatsSnapshot]:
        check.str_param(run_id, "run_id")
        check.opt_list_param(step_keys, "step_keys", of_type=str)
        check_shard_name(run_id, self._base_dir)
        bodies = self._native.step_events_for_run(
            run_id, [t.value for t in STEP_STATS_EVENT_TYPES], list(step_keys or [])
        )
        try:
            records = deserialize_values(bodies, EventLogEntry)
            return build_run_step_stats_from_events(run_id, records)
        except (ValueError, DeserializationError) as err:
            raise DagsterEventLogInvalidForRun(run_id=run_id) from err

    # -- index reads -----------------------------------------------------------------------

    def get_logs_for_all_runs_by_log_id(
        self,
        after_cursor: int = -1,
        dagster_event_type: DagsterEventType | set[DagsterEventType] | None = None,
        limit: int | None = None,
    ) -> Mapping[int, EventLogEntry]:
        check.int_param(after_cursor, "after_cursor")
        check.invariant(
            after_cursor >= -1,
            f"Don't know what to do with negative cursor {after_cursor}",
        )
        if isinstance(dagster_event_type, set) and len(dagster_event_type) > 1:
            deprecation_warning(
                "Support for multiple event types to get_logs_for_all_runs_by_log_id",
                "1.8.0",
                "You should break up your query into multiple calls, one for each event type.",
            )
        types = (
            {dagster_event_type}
            if isinstance(dagster_event_type, DagsterEventType)
            else check.opt_set_param(
                dagster_event_type, "dagster_event_type", of_type=DagsterEventType
            )
        )
        rows = self._native.index_events_after(
            after_cursor, [t.value for t in types], _sql_limit(limit)
        )
        events: dict[int, EventLogEntry] = {}
        for (record_id, _), entry in zip(rows, _entries([body for _, body in rows]), strict=True):
            if isinstance(entry, Exception):
                # As stock: the rows after an unreadable one are not returned.
                logging.warning("Could not parse event record id `%s`.", record_id)
                break
            events[record_id] = entry
        return events

    def get_maximum_record_id(self) -> int | None:
        return self._native.max_record_id()

    def _filter_spec(
        self, records_filter: EventRecordsFilter, after_wipe: str | None = None
    ) -> RecordsFilterSpec:
        f = records_filter
        return {
            "event_type": f.event_type.value,
            "asset_key": f.asset_key.to_string() if f.asset_key else None,
            "partitions": list(f.asset_partitions) if f.asset_partitions else None,
            "after_wipe": after_wipe,
            "before_id": _cursor_id(f.before_cursor),
            "after_id": _cursor_id(f.after_cursor),
            "before_timestamp": naive_utc_text(f.before_timestamp) if f.before_timestamp else None,
            "after_timestamp": naive_utc_text(f.after_timestamp) if f.after_timestamp else None,
            "storage_ids": list(f.storage_ids) if f.storage_ids else None,
        }

    def _after_wipe(self, records_filter: EventRecordsFilter) -> str | None:
        if not records_filter.asset_key:
            return None
        details = next(iter(self._get_assets_details([records_filter.asset_key])))
        if details and details.last_wipe_timestamp:
            return naive_utc_text(details.last_wipe_timestamp)
        return None

    def get_event_records(
        self,
        event_records_filter: EventRecordsFilter,
        limit: int | None = None,
        ascending: bool = False,
    ) -> Sequence[EventLogRecord]:
        check.opt_inst_param(event_records_filter, "event_records_filter", EventRecordsFilter)
        check.opt_int_param(limit, "limit")
        check.bool_param(ascending, "ascending")
        if event_records_filter and event_records_filter.event_type in ASSET_EVENTS:
            # Asset events are mirrored to the index: the assets domain's read (stock, on the
            # core's connections).
            return super().get_event_records(
                event_records_filter=event_records_filter, limit=limit, ascending=ascending
            )
        after_wipe = self._after_wipe(event_records_filter)
        after_cursor = event_records_filter.after_cursor
        if after_cursor is not None and not isinstance(after_cursor, RunShardedEventsCursor):
            raise Exception(
                """
                Called `get_event_records` on a run-sharded event log storage with a cursor that
                is not run-aware. Add a RunShardedEventsCursor to your query filter
                or switch your instance configuration to use a non-run-sharded event log storage
                (e.g. PostgresEventLogStorage, ConsolidatedSqliteEventLogStorage)
            """
            )
        run_records = self._instance.get_run_records(
            filters=RunsFilter(
                updated_after=after_cursor.run_updated_after
                if isinstance(after_cursor, RunShardedEventsCursor)
                else None
            ),
            order_by="update_timestamp",
            ascending=ascending,
        )
        spec = self._filter_spec(event_records_filter, after_wipe)
        sql_limit = _sql_limit(limit)

        def for_run(run_id: str) -> list[EventLogRecord]:
            # Stock's per-run loop, unreadable rows skipped with its warnings.
            records: list[EventLogRecord] = []
            rows = self._native.shard_records(run_id, spec, sql_limit, ascending)
            for (storage_id, _), entry in zip(rows, _entries([b for _, b in rows]), strict=True):
                if isinstance(entry, DeserializationError):
                    logging.warning(
                        "Could not resolve event record as EventLogEntry for id `%s`.", storage_id
                    )
                elif isinstance(entry, ValueError):
                    logging.warning("Could not parse event record id `%s`.", storage_id)
                else:
                    records.append(EventLogRecord(storage_id=storage_id, event_log_entry=entry))
                    if limit and len(records) >= limit:
                        return records
            return records

        event_records: list[EventLogRecord] = []
        for run_record in run_records:
            event_records.extend(for_run(run_record.dagster_run.run_id))
            if limit and len(event_records) >= limit:
                break
        if not limit or len(event_records) < limit:
            event_records.extend(for_run(RUNLESS_RUN_ID))
        return event_records[:limit]

    def fetch_run_status_changes(
        self,
        records_filter: DagsterEventType | RunStatusChangeRecordsFilter,
        limit: int,
        cursor: str | None = None,
        ascending: bool = False,
    ) -> EventRecordsResult:
        event_type = (
            records_filter
            if isinstance(records_filter, DagsterEventType)
            else records_filter.event_type
        )
        if event_type not in EVENT_TYPE_TO_PIPELINE_RUN_STATUS:
            expected = ", ".join(EVENT_TYPE_TO_PIPELINE_RUN_STATUS.keys())
            check.failed(f"Expected one of {expected}, received {event_type.value}")
        before_cursor, after_cursor = EventRecordsFilter.get_cursor_params(cursor, ascending)
        event_records_filter = (
            records_filter.to_event_records_filter_without_job_names(cursor, ascending)
            if isinstance(records_filter, RunStatusChangeRecordsFilter)
            else EventRecordsFilter(
                event_type, before_cursor=before_cursor, after_cursor=after_cursor
            )
        )
        check.opt_int_param(limit, "limit")
        rows = self._native.index_records(
            self._filter_spec(event_records_filter, self._after_wipe(event_records_filter)),
            _sql_limit(limit),
            ascending,
        )
        records = _records(rows)
        return EventRecordsResult(
            records, cursor=_next_cursor(records, cursor), has_more=len(records) == limit
        )

    # -- maintenance -----------------------------------------------------------------------

    def delete_events(self, run_id: str) -> None:
        check.str_param(run_id, "run_id")
        check_shard_name(run_id, self._base_dir)
        self._native.delete_events(run_id)
        if self.supports_global_concurrency_limits:
            self.free_concurrency_slots_for_run(run_id)

    def upgrade(self) -> None:
        """Stock's alembic upgrade of every shard and the index (`dagster instance migrate`).

        The store refuses files at older revisions, so they are upgraded by stock's own code.
        Every connection of the core is closed first and the core reopens the files afterwards:
        one SQLite library holds the files at any time.
        """
        self._native.dispose()
        self._dispose_engines()
        stock = SqliteEventLogStorage(self._base_dir)
        try:
            stock.upgrade()
        finally:
            stock.dispose()
        self._native.ensure_index()

    def wipe(self) -> None:
        self._native.wipe()

    def dispose(self) -> None:
        for watches in self._watchers.values():
            for _, watch in watches.values():
                watch.stopped = True
        self._watchers.clear()
        self._native.dispose()
        self._dispose_engines()

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    # -- live tailing ----------------------------------------------------------------------

    def watch(self, run_id: str, cursor: str | None, callback: EventHandlerFn) -> None:
        check.str_param(run_id, "run_id")
        check_shard_name(run_id, self._base_dir)
        watch = _Watch(run_id, callback, self)
        _WATCHING.add(self)
        token = self._native.watch(run_id, self._start_id(run_id, cursor), watch.deliver)
        previous = self._watchers[run_id].get(callback)
        self._watchers[run_id][callback] = (token, watch)
        if previous is not None:
            previous[1].live = False
            self._native.end_watch(previous[0])

    def end_watch(self, run_id: str, handler: EventHandlerFn) -> None:
        entry = self._watchers.get(run_id, {}).pop(handler, None)
        if entry is not None:
            entry[1].live = False
            self._native.end_watch(entry[0])

    def _start_id(self, run_id: str, cursor: str | None) -> int:
        """The storage id a watch delivers after; an offset cursor counts rows of the shard."""
        if not cursor:
            return -1
        parsed = EventLogCursor.parse(cursor)
        if parsed.is_id_cursor():
            return parsed.storage_id()
        offset = parsed.offset()
        if offset <= 0:
            return -1
        rows = self._native.records_for_run(run_id, None, [], offset, True)
        last = rows[-1][0] if rows else 0
        # Shard ids count up from 1: rows not written yet will take the next ones.
        return last + (offset - len(rows))


class _Watch:
    """One `watch` call: turns the core's rows into stock's callback calls."""

    def __init__(self, run_id: str, callback: EventHandlerFn, storage: RustEventLogStorage):
        self.run_id = run_id
        self.callback = callback
        self.storage = storage
        self.live = True
        self.stopped = False

    def deliver(self, rows: list[tuple[int, str]]) -> None:
        # As stock's watchdog: a batch under way is delivered in full even if a callback ends
        # the watch; nothing after it is. Disposing the storage stops at once.
        if not self.live:
            return
        for (storage_id, _), entry in zip(rows, _entries([b for _, b in rows]), strict=True):
            if self.stopped:
                return
            if isinstance(entry, Exception):
                logging.error("Could not parse event record id `%s`.", storage_id, exc_info=entry)
                continue
            status = None
            try:
                status = self.callback(entry, str(EventLogCursor.from_storage_id(storage_id)))
            except Exception:
                logging.exception("Exception in callback for event watch on run %s.", self.run_id)
            if status in _TERMINAL:
                self.storage.end_watch(self.run_id, self.callback)


# The domains besides events that the event log storage serves, each by its mixin.
EVENT_LOG_DOMAINS: dict[str, type] = {"assets": AssetsDomain, "storage": StorageDomain}


@functools.cache
def event_log_class(domains: frozenset[str]) -> type[RustEventLogStorage]:
    """`RustEventLogStorage` with the methods of the live event-log domains in Rust: their
    mixins first in the MRO, stock's methods (over the core's connections) for the others."""
    mixins = tuple(EVENT_LOG_DOMAINS[d] for d in sorted(domains & EVENT_LOG_DOMAINS.keys()))
    if not mixins:
        return RustEventLogStorage
    # Named as the base: Dagster and logs show the class name, the domains are an attribute.
    name = "RustEventLogStorage"
    attrs = {
        "__module__": __name__,
        "__qualname__": name,
        "rust_domains": frozenset({"events"} | (domains & EVENT_LOG_DOMAINS.keys())),
    }
    return cast("type[RustEventLogStorage]", type(name, (*mixins, RustEventLogStorage), attrs))


def as_rust_event_log_storage(
    storage: Any, durability: str, domains: frozenset[str] = frozenset()
) -> RustEventLogStorage | None:
    """The Rust-backed equivalent of a stock SQLite event log storage serving `domains` (among
    the event log's: events, assets, storage), else None."""
    cls = event_log_class(domains)
    if isinstance(storage, RustEventLogStorage):
        if storage.durability == durability and type(storage) is cls:
            return storage
        base_dir, inst_data = storage.base_dir, storage.inst_data
    elif type(storage) is SqliteEventLogStorage:
        base_dir, inst_data = storage._base_dir, storage.inst_data  # noqa: SLF001
    else:
        return None
    storage.dispose()
    rust = cls(base_dir, inst_data=inst_data, durability=cast("Durability", durability))
    # It takes the place of `storage` over the same files: what stock's bookkeeping says was
    # initialized (the index, by whichever storage created it) carries over.
    rust._initialized_dbs |= storage._initialized_dbs  # noqa: SLF001
    return rust


__all__ = ["RustEventLogStorage", "as_rust_event_log_storage", "event_log_class"]
