"""`RustScheduleStorage`: Dagster's schedule storage, every statement run by the native
`ScheduleStore` over stock's `schedules/schedules.db`.

It subclasses stock's `SqliteScheduleStorage`, so `isinstance` checks, its config schema and
`inst_data` keep working. Python keeps what is Dagster's own: argument checks, serdes of
`InstigatorState`, `TickData` and evaluations, the records built from rows, and the data
migrations' decisions (which selector id a state has). Every read and write of the file happens
in Rust, with the GIL released; stock's `connect()` is left as it is for code that reaches for
it, and none of the methods below calls it.

Each write is one transaction in the core, its checks included: `update_instigator_state` or
`delete_instigator_state` of a state that is not stored raises as stock does and stores nothing.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dagster._check as check
from dagster._config import StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.definitions.asset_key import EntityKey
from dagster._core.definitions.declarative_automation.serialized_objects import (
    AutomationConditionEvaluationWithRunIds,
)
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import (
    AutoMaterializeAssetEvaluationRecord,
    InstigatorState,
    InstigatorStatus,
    InstigatorTick,
    TickData,
    TickStatus,
)
from dagster._core.storage.schedules.migration import (
    SCHEDULE_JOBS_SELECTOR_ID,
    SCHEDULE_TICKS_SELECTOR_ID,
)
from dagster._core.storage.schedules.sql_schedule_storage import SqlScheduleStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import (
    MINIMUM_SQLITE_BATCH_VERSION,
    SqliteScheduleStorage,
)
from dagster._core.storage.sqlite import create_db_conn_string, get_sqlite_version
from dagster._serdes import ConfigurableClassData, deserialize_value
from dagster._time import get_current_datetime, utc_datetime_from_naive
from dagster._utils import mkdir_p
from packaging.version import parse
from sqlalchemy.exc import ArgumentError

try:
    from dagster._core.scheduler.instigation import InstigatorTickSummary
except ImportError:  # a release of the range before tick summaries (compat.only_what_stock_has)
    InstigatorTickSummary = None  # type: ignore[assignment, misc]

from dagster_rs import _native, compat
from dagster_rs.errors import DagsterRsStorageError
from dagster_rs.serdes import deserialize_values, serialize
from dagster_rs.storage.convert import naive_utc_text, sql_datetime

if TYPE_CHECKING:
    from dagster._core.storage.sql import AlembicVersion

    from dagster_rs._native import Durability, ScheduleStore, StateRowSpec, TickRowSpec

    PrintFn = Callable[[Any], None]


def _state_row(state: InstigatorState) -> StateRowSpec:
    return {
        "origin_id": state.instigator_origin_id,
        "selector_id": state.selector_id,
        "repository_origin_id": state.repository_origin_id,
        "repository_selector_id": state.repository_selector_id,
        "status": state.status.value,
        "instigator_type": state.instigator_type.value,
        "body": serialize(state),
    }


def _tick_row(tick_data: TickData) -> TickRowSpec:
    return {
        "origin_id": tick_data.instigator_origin_id,
        # Stock leaves the column out (NULL) for a tick without a selector id.
        "selector_id": tick_data.selector_id or None,
        "status": tick_data.status.value,
        "instigator_type": tick_data.instigator_type.value,
        "timestamp": naive_utc_text(tick_data.timestamp),
        "body": serialize(tick_data),
    }


def _ticks(rows: Sequence[Any]) -> list[InstigatorTick]:
    # Bodies of a page deserialized in one batch by the native serdes (stock's objects).
    data = deserialize_values([row["body"] for row in rows], TickData)
    return [InstigatorTick(row["id"], tick) for row, tick in zip(rows, data, strict=True)]


def _now() -> str:
    # Stock's update_timestamp: get_current_datetime() as SQLAlchemy writes it.
    return sql_datetime(get_current_datetime())


def _naive(text: str | None) -> datetime | None:
    """A stored DateTime as stock's SQLAlchemy reads it back: naive, as written."""
    return datetime.fromisoformat(text) if text else None


def _statuses(statuses: Sequence[TickStatus] | set[InstigatorStatus] | None) -> list[str] | None:
    # Stock tests the list for truthiness: an empty one is no filter.
    return [s.value for s in statuses] if statuses else None


def _encodable(*values: Any) -> bool:
    """True when each value is None or text SQLite can hold (no lone surrogate)."""
    for value in values:
        if value is None:
            continue
        if not isinstance(value, str):
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


def _time_bound(value: float | None) -> str | None:
    # `if before:` in stock: a bound of 0 is no bound.
    return naive_utc_text(value) if value else None


class SchedulingDomain:
    """The scheduling domain's methods of a schedule storage, over the native `ScheduleStore`.

    The one definition of the domain on every backend: mixed into `RustScheduleStorage` (stock's
    SQLite `schedules.db`) and into the class `dagster_rs.storage.postgres_storage` composes with
    stock `PostgresScheduleStorage`. The class that takes it provides `store`; the fallbacks to
    stock's code (`SqlScheduleStorage`'s methods) run over that class's own `connect()`.
    """

    if TYPE_CHECKING:
        # The composed class's (a body here would shadow a base's after the mixin in the MRO).
        @property
        def store(self) -> ScheduleStore: ...

    # -- instigator state ------------------------------------------------------------------

    def all_instigator_state(
        self,
        repository_origin_id: str | None = None,
        repository_selector_id: str | None = None,
        instigator_type: InstigatorType | None = None,
        instigator_statuses: set[InstigatorStatus] | None = None,
    ) -> Sequence[InstigatorState]:
        check.opt_inst_param(instigator_type, "instigator_type", InstigatorType)
        if not _encodable(repository_origin_id, repository_selector_id):
            # Stock binds only one of the two (which depends on the file's migrations), as it is
            # given: its code answers.
            return SqlScheduleStorage.all_instigator_state(
                self,  # type: ignore[arg-type]
                repository_origin_id,
                repository_selector_id,
                instigator_type,
                instigator_statuses,
            )
        bodies = self.store.instigator_states(
            repository_origin_id or None,
            repository_selector_id or None,
            instigator_type.value if instigator_type else None,
            _statuses(instigator_statuses),
        )
        return list(deserialize_values(bodies, InstigatorState))

    def get_instigator_state(self, origin_id: str, selector_id: str) -> InstigatorState | None:
        check.str_param(origin_id, "origin_id")
        check.str_param(selector_id, "selector_id")
        if not _encodable(origin_id, selector_id):
            # Stock binds only one of the two (which depends on the file's migrations).
            return SqlScheduleStorage.get_instigator_state(self, origin_id, selector_id)  # type: ignore[arg-type]
        body = self.store.instigator_state(origin_id, selector_id)
        return deserialize_value(body, InstigatorState) if body is not None else None

    def add_instigator_state(self, state: InstigatorState) -> InstigatorState:
        check.inst_param(state, "state", InstigatorState)
        self.store.add_instigator_state(_state_row(state), _now())
        return state

    def update_instigator_state(self, state: InstigatorState) -> InstigatorState:
        check.inst_param(state, "state", InstigatorState)
        self.store.update_instigator_state(_state_row(state), _now())
        return state

    def delete_instigator_state(self, origin_id: str, selector_id: str) -> None:
        check.str_param(origin_id, "origin_id")
        check.str_param(selector_id, "selector_id")
        self.store.delete_instigator_state(origin_id, selector_id)

    # -- ticks -----------------------------------------------------------------------------

    def has_instigators_table(self) -> bool:
        return self.store.layout()["instigators"]

    def get_batch_ticks(
        self,
        selector_ids: Sequence[str],
        limit: int | None = None,
        statuses: Sequence[TickStatus] | None = None,
    ) -> Mapping[str, Sequence[InstigatorTick]]:
        check.sequence_param(selector_ids, "selector_ids", of_type=str)
        check.opt_int_param(limit, "limit")
        check.opt_sequence_param(statuses, "statuses", of_type=TickStatus)
        if limit is None:
            # Stock builds `rank <= None`, which SQLAlchemy refuses before any SQL runs.
            raise ArgumentError(
                "Only '=', '!=', 'is_()', 'is_not()', 'is_distinct_from()',"
                " 'is_not_distinct_from()' operators can be used with None/True/False"
            )
        if statuses:
            # Stock filters the subquery object it built (`Subquery.where`), which SQLAlchemy 2
            # does not have: a status filter fails before any SQL runs. Kept so callers see
            # stock's behaviour; the core serves the filter (ScheduleStore.batch_ticks).
            raise AttributeError("'Subquery' object has no attribute 'where'")
        rows = self.store.batch_ticks(list(selector_ids), limit, _statuses(statuses))
        results: defaultdict[str, list[InstigatorTick]] = defaultdict(list)
        for row, tick in zip(rows, _ticks(rows), strict=True):
            results[row["selector_id"]].append(tick)
        return results

    def get_tick(self, tick_id: int) -> InstigatorTick:
        check.int_param(tick_id, "tick_id")
        return _ticks([self.store.tick(tick_id)])[0]

    def get_ticks_by_ids(self, tick_ids: Sequence[int]) -> Sequence[InstigatorTick]:
        check.sequence_param(tick_ids, "tick_ids", of_type=int)
        if not tick_ids:
            return []
        return _ticks(self.store.ticks_by_ids(list(tick_ids)))

    @staticmethod
    def _check_tick_filter(
        origin_id: str,
        before: float | None,
        after: float | None,
        limit: int | None,
        statuses: Sequence[TickStatus] | None,
    ) -> None:
        # Stock's `_ticks_query` checks.
        check.str_param(origin_id, "origin_id")
        check.opt_float_param(before, "before")
        check.opt_float_param(after, "after")
        check.opt_int_param(limit, "limit")
        check.opt_list_param(statuses, "statuses", of_type=TickStatus)

    def get_ticks(
        self,
        origin_id: str,
        selector_id: str,
        before: float | None = None,
        after: float | None = None,
        limit: int | None = None,
        statuses: Sequence[TickStatus] | None = None,
    ) -> Sequence[InstigatorTick]:
        self._check_tick_filter(origin_id, before, after, limit, statuses)
        if not isinstance(selector_id, str):
            # Stock binds a selector id that is not text as it is given: its code answers.
            return SqlScheduleStorage.get_ticks(
                self,  # type: ignore[arg-type]
                origin_id,
                selector_id,
                before=before,
                after=after,
                limit=limit,
                statuses=statuses,
            )
        rows = self.store.ticks(
            origin_id,
            selector_id,
            before=_time_bound(before),
            after=_time_bound(after),
            limit=limit or None,
            statuses=_statuses(statuses),
        )
        return _ticks(rows)

    def get_tick_summaries(
        self,
        origin_id: str,
        selector_id: str,
        before: float | None = None,
        after: float | None = None,
        limit: int | None = None,
        statuses: Sequence[TickStatus] | None = None,
    ) -> Sequence[InstigatorTickSummary]:
        self._check_tick_filter(origin_id, before, after, limit, statuses)
        if not isinstance(selector_id, str):
            return SqlScheduleStorage.get_tick_summaries(
                self,  # type: ignore[arg-type]
                origin_id,
                selector_id,
                before=before,
                after=after,
                limit=limit,
                statuses=statuses,
            )
        rows = self.store.tick_summaries(
            origin_id,
            selector_id,
            before=_time_bound(before),
            after=_time_bound(after),
            limit=limit or None,
            statuses=_statuses(statuses),
        )
        return [
            InstigatorTickSummary(
                tick_id=row["id"],
                instigator_origin_id=row["origin_id"],  # type: ignore[arg-type]
                instigator_type=InstigatorType(row["instigator_type"]),
                status=TickStatus(row["status"]),
                timestamp=utc_datetime_from_naive(_naive(row["timestamp"])).timestamp(),  # type: ignore[arg-type]
            )
            for row in rows
        ]

    def create_tick(self, tick_data: TickData) -> InstigatorTick:
        check.inst_param(tick_data, "tick_data", TickData)
        tick_id = self.store.create_tick(_tick_row(tick_data))
        return InstigatorTick(tick_id, tick_data)

    def update_tick(self, tick: InstigatorTick) -> InstigatorTick:
        check.inst_param(tick, "tick", InstigatorTick)
        self.store.update_tick(tick.tick_id, _tick_row(tick.tick_data))
        return tick

    def purge_ticks(
        self,
        origin_id: str,
        selector_id: str,
        before: float,
        tick_statuses: Sequence[TickStatus] | None = None,
    ) -> None:
        check.str_param(origin_id, "origin_id")
        check.float_param(before, "before")
        check.opt_list_param(tick_statuses, "tick_statuses", of_type=TickStatus)
        self.store.purge_ticks(
            origin_id, selector_id, naive_utc_text(before), _statuses(tick_statuses)
        )

    # -- declarative automation evaluations ------------------------------------------------

    @property
    def supports_auto_materialize_asset_evaluations(self) -> bool:
        return self.store.layout()["evaluations"]

    def add_auto_materialize_asset_evaluations(
        self,
        evaluation_id: int,
        asset_evaluations: Sequence[AutomationConditionEvaluationWithRunIds[EntityKey]],
    ) -> None:
        if not asset_evaluations:
            return
        self.store.add_evaluations(
            evaluation_id,
            [
                {
                    "asset_key": evaluation.key.to_db_string(),
                    "body": serialize(evaluation),
                    "num_requested": evaluation.num_requested,
                }
                for evaluation in asset_evaluations
            ],
        )

    @staticmethod
    def _evaluation_records(rows: Sequence[Any]) -> list[AutoMaterializeAssetEvaluationRecord]:
        return [
            AutoMaterializeAssetEvaluationRecord.from_db_row(
                {
                    "id": row["id"],
                    "asset_evaluation_body": row["body"],
                    "evaluation_id": row["evaluation_id"],
                    "create_timestamp": _naive(row["create_timestamp"]),
                    "asset_key": row["asset_key"],
                }
            )
            for row in rows
        ]

    def get_auto_materialize_asset_evaluations(  # type: ignore[override]
        self, key: EntityKey, limit: int, cursor: int | None = None
    ) -> Sequence[AutoMaterializeAssetEvaluationRecord]:
        rows = self.store.evaluations(key.to_db_string(), limit, cursor)
        return self._evaluation_records(rows)

    def get_auto_materialize_evaluations_for_evaluation_id(
        self, evaluation_id: int
    ) -> Sequence[AutoMaterializeAssetEvaluationRecord]:
        return self._evaluation_records(self.store.evaluations_of(evaluation_id))

    def purge_asset_evaluations(self, before: float) -> None:
        check.float_param(before, "before")
        self.store.purge_evaluations(naive_utc_text(before))

    # -- admin -----------------------------------------------------------------------------

    def wipe(self) -> None:
        self.store.wipe()

    def has_secondary_index_table(self) -> bool:
        return self.store.layout()["secondary_indexes"]

    def has_built_index(self, migration_name: str) -> bool:
        return self.store.index_done(migration_name)

    def mark_index_built(self, migration_name: str) -> None:
        self.store.mark_index_done(migration_name)

    def _execute_data_migrations(
        self,
        migrations: Mapping[str, Callable[..., Any]],
        print_fn: Callable | None = None,
        force_rebuild_all: bool = False,
    ) -> None:
        # Stock's loop, with its two known migrations done through the core.
        native: dict[str, Callable[[PrintFn | None], None]] = {
            SCHEDULE_JOBS_SELECTOR_ID: self._add_selector_id_to_jobs,
            SCHEDULE_TICKS_SELECTOR_ID: self._add_selector_id_to_ticks,
        }
        for migration_name, migration_fn in migrations.items():
            if self.has_built_index(migration_name):
                if not force_rebuild_all:
                    if print_fn:
                        print_fn(f"Skipping already applied migration: {migration_name}")
                    continue
            if print_fn:
                print_fn(f"Starting data migration: {migration_name}")
            if migration_name in native:
                native[migration_name](print_fn)
            else:
                migration_fn()(self, print_fn)
            self.mark_index_built(migration_name)
            if print_fn:
                print_fn(f"Finished data migration: {migration_name}")

    def _add_selector_id_to_jobs(self, print_fn: PrintFn | None) -> None:
        """Stock's `add_selector_id_to_jobs_table`: every state into `instigators`."""
        if print_fn:
            print_fn("Querying storage.")
        rows = []
        for row in self.store.jobs_for_migration():
            state = deserialize_value(row["body"], InstigatorState)  # type: ignore[arg-type]
            rows.append(
                {
                    "job_id": row["id"],
                    "selector_id": state.selector_id,
                    "repository_selector_id": state.repository_selector_id,
                    "status": state.status.value,
                    "instigator_type": state.instigator_type.value,
                    "body": row["body"],
                    # Stock reads them as datetimes and writes them back in its own format.
                    "create_timestamp": _reformat(row["create_timestamp"]),
                    "update_timestamp": _reformat(row["update_timestamp"]),
                }
            )
        self.store.backfill_instigators(rows)  # type: ignore[arg-type]
        if print_fn:
            print_fn("Complete.")

    def _add_selector_id_to_ticks(self, print_fn: PrintFn | None) -> None:
        """Stock's `add_selector_id_to_ticks_table`: each state's ticks get its selector id."""
        if print_fn:
            print_fn("Querying storage.")
        self.store.set_tick_selectors(
            [
                {"origin_id": state.instigator_origin_id, "selector_id": state.selector_id}
                for state in self.all_instigator_state()
            ]
        )
        if print_fn:
            print_fn("Complete.")


class RustScheduleStorage(SchedulingDomain, SqliteScheduleStorage):
    """Stock's SQLite schedule storage in `base_dir/schedules.db`, served by the Rust core."""

    def __init__(
        self,
        base_dir: str,
        inst_data: ConfigurableClassData | None = None,
        *,
        durability: Durability = "full",
    ):
        self._base_dir = os.path.abspath(check.str_param(base_dir, "base_dir"))
        mkdir_p(self._base_dir)
        # Stock's attributes, so its own code (connect(), a switch back to stock) finds the file.
        self._conn_string = create_db_conn_string(self._base_dir, "schedules")
        self._inst_data = check.opt_inst_param(inst_data, "inst_data", ConfigurableClassData)
        self._durability: Durability = durability
        self._native_core = _native.DagsterInstance(
            os.path.dirname(self._base_dir),
            durability,
            schedules_db=os.path.join(self._base_dir, "schedules.db"),
        )
        try:
            self._native_core.schedules  # noqa: B018  # creates or checks the file now
        except DagsterRsStorageError:
            # A file the native path does not serve, refused untouched: the facade leaves the
            # scheduling domain to stock's code and says so (`dagster_rs.revisions`).
            pass
        SqlScheduleStorage.__init__(self)  # type: ignore[arg-type]  # stock's own base init

    # -- configuration ---------------------------------------------------------------------

    @property
    def base_dir(self) -> str:
        return self._base_dir

    @property
    def durability(self) -> Durability:
        return self._durability

    @property
    def store(self) -> ScheduleStore:
        return self._native_core.schedules

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> RustScheduleStorage:
        return cls.from_local(inst_data=inst_data, **config_value)

    @classmethod
    def from_local(  # type: ignore[override]
        cls, base_dir: str, inst_data: ConfigurableClassData | None = None
    ) -> RustScheduleStorage:
        return cls(base_dir, inst_data=inst_data)

    # -- SQLite ----------------------------------------------------------------------------

    @property
    def supports_batch_queries(self) -> bool:
        return (
            self.has_instigators_table()
            and self.has_built_index(SCHEDULE_TICKS_SELECTOR_ID)
            and parse(get_sqlite_version()) >= parse(MINIMUM_SQLITE_BATCH_VERSION)
        )

    def upgrade(self) -> None:
        """Stock's alembic upgrade (`dagster instance migrate`) of a file at an older revision.

        The store opens only the head revision, so an older file is upgraded by stock's own
        code, with every connection of the core closed first.
        """
        try:
            if self.store.revision() == _native.SCHEMA_HEAD:
                return
        except DagsterRsStorageError:
            pass
        self.dispose()
        SqliteScheduleStorage(self._conn_string).upgrade()

    def alembic_version(self) -> AlembicVersion:
        return (self.store.revision(), _native.SCHEMA_HEAD)

    def dispose(self) -> None:
        try:
            self._native_core.dispose()
        except DagsterRsStorageError:
            pass


def _reformat(text: str | None) -> str | None:
    value = _naive(text)
    return sql_datetime(value) if value is not None else None


# Storage methods of later 1.13 releases: absent here when the installed stock lacks them.
compat.only_what_stock_has(
    SchedulingDomain, SqlScheduleStorage, ("get_ticks_by_ids", "get_tick_summaries")
)

__all__ = ["RustScheduleStorage", "SchedulingDomain"]
