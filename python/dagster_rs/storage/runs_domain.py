"""`RunsDomain`: the runs domain's methods of a run storage, served by the native `RunStore`.

The one definition of the runs domain on every backend: it is mixed into the run storage class
composed for the backend (`RustRunStorage` over stock's SQLite `runs.db`, and, over a
PostgreSQL database, the class `dagster_rs.storage.postgres_storage` composes with stock
`PostgresRunStorage`). A class that takes it provides `store` (the native `RunStore`),
`_stock()` (stock's storage of the same database, for arguments the core does not take) and
`_db_path` (where the rows are, named in errors).

Python keeps what is Dagster's own: serdes (de)serialization of runs, snapshots and backfills, and
the decisions stock storage makes from those objects (which status an event maps to, which tags a
run stores). Every read and write of the run tables happens in Rust, with the GIL released.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dagster._check as check
from dagster._core.errors import DagsterInvariantViolationError, DagsterRunNotFoundError
from dagster._core.events import (
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
    DagsterEvent,
    DagsterEventType,
    JobFailureData,
    RunFailureReason,
)
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus, PartitionBackfill
from dagster._core.snap import ExecutionPlanSnapshot, JobSnap, create_execution_plan_snapshot_id
from dagster._core.storage.dagster_run import (
    DagsterRun,
    DagsterRunStatus,
    JobBucket,
    RunPartitionData,
    RunRecord,
    RunsFilter,
    TagBucket,
)
from dagster._core.storage.runs.migration import (
    RUN_PARTITIONS,
)
from dagster._core.storage.runs.schema import RunsTable
from dagster._core.storage.runs.sql_run_storage import (
    SnapshotType,
    SqlRunStorage,
    defensively_unpack_execution_plan_snapshot_query,
)
from dagster._core.storage.tags import (
    BACKFILL_ID_TAG,
    PARTITION_NAME_TAG,
    PARTITION_SET_TAG,
    REPOSITORY_LABEL_TAG,
    RUN_FAILURE_REASON_TAG,
)
from dagster._serdes import (
    deserialize_value,
)
from dagster._time import datetime_from_timestamp, get_current_datetime
from dagster._utils.merger import merge_dicts

from dagster_rs import _native, compat
from dagster_rs.errors import CorruptRecordError
from dagster_rs.serdes import deserialize_values, serialize
from dagster_rs.storage.convert import (
    backfill_filter_spec,
    like_prefix_too_long,
    native_filter,
    native_int,
    native_text,
    run_query_spec,
    runs_filter_spec,
    sql_datetime,
    utc_from_sql,
)

if TYPE_CHECKING:
    from dagster._core.remote_origin import RemoteJobOrigin

    from dagster_rs._native import NewBackfillSpec, NewRunSpec, TagChangesSpec


def _with_status(run: DagsterRun, status: str) -> DagsterRun:
    # The status column is the source of truth: concurrent writers may leave a stale status in
    # the body. Copying only when they differ keeps the common read path allocation-free.
    if run.status.value != status:
        return run.with_status(DagsterRunStatus(status))
    return run


def _row_to_run(run_id: str, body: str | None, status: str | None, db_path: str) -> DagsterRun:
    where = f"run {run_id} in {db_path}"
    if body is None or status is None:
        raise CorruptRecordError(f"{where}: the stored run has no run_body or no status")
    try:
        run = deserialize_values([body], DagsterRun)[0]
    except Exception as exc:
        raise CorruptRecordError(
            f"{where}: the stored run_body is not a serialized DagsterRun ({exc})"
        ) from exc
    return _with_status(run, status)


def _rows_to_runs(
    rows: Sequence[tuple[str, str | None, str | None]], db_path: str
) -> list[DagsterRun]:
    """Deserialize many bodies in one serdes context (entering it per value costs a third)."""
    try:
        runs = deserialize_values([body for _, body, _ in rows], DagsterRun)  # type: ignore[misc]
        return [_with_status(run, status) for run, (_, _, status) in zip(runs, rows, strict=True)]  # type: ignore[arg-type]
    except Exception:
        # Name the offending run: redo one by one, which raises for the first bad row.
        return [_row_to_run(run_id, body, status, db_path) for run_id, body, status in rows]


def _tag_changes(run: DagsterRun, tags: Mapping[str, str]) -> TagChangesSpec:
    """The tag rows to update and to insert, decided from the run's body as stock decides.

    Storage-only tags (the repository label) are not in the body, so setting one adds a row
    beside the stored one, exactly as stock does.
    """
    current = run.tags or {}
    return {
        "update": [(k, v) for k, v in tags.items() if k in current],
        "insert": [(k, v) for k, v in tags.items() if k not in current],
    }


def _order_column(order_by: str | None) -> str | None:
    if not order_by:
        return None
    # Stock resolves the name with getattr on the table's columns: same error for a bad name.
    return getattr(RunsTable.c, order_by).name


def backfill_spec(backfill: PartitionBackfill) -> NewBackfillSpec:
    """A backfill's row as the core stores it."""
    return {
        "key": backfill.backfill_id,
        "status": backfill.status.value,
        "timestamp": sql_datetime(datetime_from_timestamp(backfill.backfill_timestamp)),
        "body": serialize(backfill),
        "selector_id": backfill.selector_id,
        "action_type": backfill.bulk_action_type.value,
        "job_name": backfill.job_name,
        "tags": list(backfill.tags.items()),
    }


def run_spec(dagster_run: DagsterRun, create_timestamp: str) -> NewRunSpec:
    """A run's row as the core stores it: the columns, the body and the tags stock indexes."""
    tags = dagster_run.tags or {}
    return {
        "run_id": dagster_run.run_id,
        "job_name": dagster_run.job_name,
        "status": dagster_run.status.value,
        "body": serialize(dagster_run),
        "snapshot_id": dagster_run.job_snapshot_id,
        "partition": tags.get(PARTITION_NAME_TAG),
        "partition_set": tags.get(PARTITION_SET_TAG),
        "backfill_id": tags.get(BACKFILL_ID_TAG),
        "tags": list(dagster_run.tags_for_storage().items()),
        "create_timestamp": create_timestamp,
    }


class RunsDomain:
    """The runs domain's methods of a run storage, over the native `RunStore`."""

    _db_path: str

    if TYPE_CHECKING:
        # The composed class's (a body here would shadow a base's after the mixin in the MRO).
        @property
        def store(self) -> _native.RunStore: ...

        def _stock(self) -> SqlRunStorage: ...

    # -- runs ----------------------------------------------------------------------------------

    def _insert_run(self, dagster_run: DagsterRun, create_timestamp: str) -> DagsterRun:
        check.inst_param(dagster_run, "dagster_run", DagsterRun)
        self.store.add_run(run_spec(dagster_run, create_timestamp))
        return dagster_run

    def add_run(self, dagster_run: DagsterRun) -> DagsterRun:
        return self._insert_run(dagster_run, sql_datetime(get_current_datetime()))

    def add_historical_run(
        self, dagster_run: DagsterRun, run_creation_time: datetime
    ) -> DagsterRun:
        check.inst_param(run_creation_time, "run_creation_time", datetime)
        return self._insert_run(dagster_run, sql_datetime(run_creation_time))

    def _get_run_by_id(self, run_id: str) -> DagsterRun | None:
        check.str_param(run_id, "run_id")
        row = self.store.run_by_id(run_id)
        return _row_to_run(run_id, row[0], row[1], self._db_path) if row else None

    def handle_run_event(
        self, run_id: str, event: DagsterEvent, update_timestamp: datetime | None = None
    ) -> None:
        check.str_param(run_id, "run_id")
        check.inst_param(event, "event", DagsterEvent)
        if event.event_type not in EVENT_TYPE_TO_PIPELINE_RUN_STATUS:
            return
        run = self._get_run_by_id(run_id)
        if not run:
            return
        new_status = EVENT_TYPE_TO_PIPELINE_RUN_STATUS[event.event_type]
        updated_run = run.with_status(new_status)
        tags: dict[str, str] = {}
        if event.event_type == DagsterEventType.PIPELINE_FAILURE and isinstance(
            event.event_specific_data, JobFailureData
        ):
            reason = event.event_specific_data.failure_reason
            if reason and reason != RunFailureReason.UNKNOWN:
                tags[RUN_FAILURE_REASON_TAG] = reason.value
                updated_run = updated_run.with_tags(
                    merge_dicts(run.tags, {RUN_FAILURE_REASON_TAG: reason.value})
                )
        # The event's own time, not the time it is processed; now when the caller has none.
        when = update_timestamp or get_current_datetime()
        start_time = end_time = None
        if event.event_type == DagsterEventType.PIPELINE_START:
            start_time = when.timestamp()
        if event.event_type in (
            DagsterEventType.PIPELINE_CANCELED,
            DagsterEventType.PIPELINE_FAILURE,
            DagsterEventType.PIPELINE_SUCCESS,
        ):
            end_time = when.timestamp()
        stamped = when
        if tags and not compat.stock_tags_failure_in_status_update():
            # This stock (before 1.13.7) adds the failure tag with `add_run_tags` after the
            # status update, and that stamps the row with the wall clock: the same row here,
            # written in one transaction.
            stamped = get_current_datetime()
        self.store.update_run_status(
            run_id,
            {
                "body": serialize(updated_run),
                "status": new_status.value,
                "update_timestamp": sql_datetime(stamped),
                "start_time": start_time,
                "end_time": end_time,
                "tags": _tag_changes(run, tags),
            },
        )

    def get_runs(
        self,
        filters: RunsFilter | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        bucket_by: JobBucket | TagBucket | None = None,
        ascending: bool = False,
    ) -> Sequence[DagsterRun]:
        check.opt_inst_param(filters, "filters", RunsFilter)
        check.opt_str_param(cursor, "cursor")
        check.opt_int_param(limit, "limit")
        if not native_filter(filters):
            return self._stock().get_runs(filters, cursor, limit, bucket_by, ascending)
        rows = self.store.run_bodies(
            run_query_spec(filters, cursor, limit, None, ascending, bucket_by)
        )
        return _rows_to_runs(rows, self._db_path)

    def get_run_ids(
        self,
        filters: RunsFilter | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Sequence[str]:
        check.opt_inst_param(filters, "filters", RunsFilter)
        check.opt_str_param(cursor, "cursor")
        check.opt_int_param(limit, "limit")
        if not native_filter(filters):
            return self._stock().get_run_ids(filters, cursor, limit)
        return self.store.run_ids(run_query_spec(filters, cursor, limit))

    def get_runs_count(self, filters: RunsFilter | None = None) -> int:
        check.opt_inst_param(filters, "filters", RunsFilter)
        if not native_filter(filters):
            return self._stock().get_runs_count(filters)
        return self.store.runs_count(runs_filter_spec(filters))

    def get_run_records(
        self,
        filters: RunsFilter | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        ascending: bool = False,
        cursor: str | None = None,
        bucket_by: JobBucket | TagBucket | None = None,
    ) -> Sequence[RunRecord]:
        check.opt_inst_param(filters, "filters", RunsFilter)
        check.opt_int_param(limit, "limit")
        check.opt_str_param(cursor, "cursor")
        if not native_filter(filters):
            return self._stock().get_run_records(
                filters, limit, order_by, ascending, cursor, bucket_by
            )
        rows = self.store.run_records(
            run_query_spec(filters, cursor, limit, _order_column(order_by), ascending, bucket_by)
        )
        runs = _rows_to_runs(
            [(row["run_id"], row["body"], row["status"]) for row in rows], self._db_path
        )
        return [
            RunRecord(
                storage_id=row["storage_id"],
                dagster_run=run,
                create_timestamp=utc_from_sql(row["create_timestamp"]),
                update_timestamp=utc_from_sql(row["update_timestamp"]),
                start_time=row["start_time"],
                end_time=row["end_time"],
            )
            for run, row in zip(runs, rows, strict=True)
        ]

    @property
    def supports_bucket_queries(self) -> bool:
        return True

    def get_run_tags(
        self,
        tag_keys: Sequence[str],
        value_prefix: str | None = None,
        limit: int | None = None,
    ) -> Sequence[tuple[str, set[str]]]:
        # Stock checks none of these: whatever `sqlite3` binds is looked up as given.
        if (
            not isinstance(tag_keys, (list, tuple))
            or not all(isinstance(key, str) for key in tag_keys)
            or not native_text(value_prefix)
            or not native_int(limit)
            or like_prefix_too_long(value_prefix)
        ):
            return self._stock().get_run_tags(tag_keys, value_prefix, limit)
        result: dict[str, set[str]] = defaultdict(set)
        for key, value in self.store.run_tags(list(tag_keys), value_prefix or None, limit or None):
            result[key].add(value)
        return sorted(result.items(), key=lambda kv: kv[0])

    def get_run_tag_keys(self) -> Sequence[str]:
        return self.store.run_tag_keys()

    def add_run_tags(self, run_id: str, new_tags: Mapping[str, str]) -> None:
        check.str_param(run_id, "run_id")
        check.mapping_param(new_tags, "new_tags", key_type=str, value_type=str)
        run = self._get_run_by_id(run_id)
        if not run:
            raise DagsterRunNotFoundError(
                f"Run {run_id} was not found in instance.", invalid_run_id=run_id
            )
        all_tags = merge_dicts(run.tags or {}, new_tags)
        self.store.update_run_tags(
            run_id,
            {
                "body": serialize(run.with_tags(all_tags)),
                "partition": all_tags.get(PARTITION_NAME_TAG),
                "partition_set": all_tags.get(PARTITION_SET_TAG),
                "update_timestamp": sql_datetime(get_current_datetime()),
                "tags": _tag_changes(run, new_tags),
            },
        )

    def get_run_group(self, run_id: str) -> tuple[str, Sequence[DagsterRun]]:
        check.str_param(run_id, "run_id")
        dagster_run = self._get_run_by_id(run_id)
        if not dagster_run:
            raise DagsterRunNotFoundError(
                f"Run {run_id} was not found in instance.", invalid_run_id=run_id
            )
        root_run_id = dagster_run.root_run_id if dagster_run.root_run_id else dagster_run.run_id
        root_run = self._get_run_by_id(root_run_id)
        if not root_run:
            raise DagsterRunNotFoundError(
                f"Run id {root_run_id} set as root run id for run {run_id} was not found in"
                " instance.",
                invalid_run_id=root_run_id,
            )
        group = _rows_to_runs(self.store.run_group_rows(root_run_id), self._db_path)
        return (root_run_id, [root_run, *group])

    def has_run(self, run_id: str) -> bool:
        check.str_param(run_id, "run_id")
        return self.store.has_run(run_id)

    def delete_run(self, run_id: str) -> None:
        check.str_param(run_id, "run_id")
        self.store.delete_run(run_id)

    def get_run_partition_data(self, runs_filter: RunsFilter) -> Sequence[RunPartitionData]:
        check.inst_param(runs_filter, "runs_filter", RunsFilter)
        if self.has_built_index(RUN_PARTITIONS):
            return [
                RunPartitionData(
                    run_id=row["run_id"],
                    partition=row["partition"],
                    status=DagsterRunStatus[row["status"]],
                    start_time=row["start_time"],
                    end_time=row["end_time"],
                )
                for row in self.store.partition_data(runs_filter_spec(runs_filter))
            ]
        # A storage whose partition columns were never backfilled: read the tags, as stock does.
        by_partition: dict[str, RunPartitionData] = {}
        for run in self.get_runs(filters=runs_filter):
            partition = run.tags.get(PARTITION_NAME_TAG)
            if not partition or partition in by_partition:
                continue
            by_partition[partition] = RunPartitionData(
                run_id=run.run_id,
                partition=partition,
                status=run.status,
                start_time=None,
                end_time=None,
            )
        return list(by_partition.values())

    def replace_job_origin(self, run: DagsterRun, job_origin: RemoteJobOrigin) -> None:
        new_label = job_origin.repository_origin.get_label()
        body = serialize(
            run.with_job_origin(job_origin).with_tags({**run.tags, REPOSITORY_LABEL_TAG: new_label})
        )
        self.store.replace_run_body(run.run_id, body, [(REPOSITORY_LABEL_TAG, new_label)])

    # -- snapshots -----------------------------------------------------------------------------

    def _add_snapshot(self, snapshot_id: str, snapshot_obj: object, kind: SnapshotType) -> str:
        body = zlib.compress(serialize(snapshot_obj).encode("utf-8"))  # type: ignore[arg-type]
        self.store.add_snapshot(snapshot_id, body, kind.value)
        return snapshot_id

    def _get_snapshot(self, snapshot_id: str) -> Any:
        body = self.store.get_snapshot(snapshot_id)
        if body is None:
            return None
        return defensively_unpack_execution_plan_snapshot_query(logging, [body])  # type: ignore[arg-type]

    def has_job_snapshot(self, job_snapshot_id: str) -> bool:
        check.str_param(job_snapshot_id, "job_snapshot_id")
        return self.store.has_snapshot(job_snapshot_id)

    def add_job_snapshot(self, job_snapshot: JobSnap) -> str:
        check.inst_param(job_snapshot, "job_snapshot", JobSnap)
        return self._add_snapshot(job_snapshot.snapshot_id, job_snapshot, SnapshotType.PIPELINE)

    def get_job_snapshot(self, job_snapshot_id: str) -> JobSnap:
        check.str_param(job_snapshot_id, "job_snapshot_id")
        return self._get_snapshot(job_snapshot_id)

    def has_execution_plan_snapshot(self, execution_plan_snapshot_id: str) -> bool:
        check.str_param(execution_plan_snapshot_id, "execution_plan_snapshot_id")
        return bool(self.get_execution_plan_snapshot(execution_plan_snapshot_id))

    def add_execution_plan_snapshot(self, execution_plan_snapshot: ExecutionPlanSnapshot) -> str:
        check.inst_param(execution_plan_snapshot, "execution_plan_snapshot", ExecutionPlanSnapshot)
        return self._add_snapshot(
            create_execution_plan_snapshot_id(execution_plan_snapshot),
            execution_plan_snapshot,
            SnapshotType.EXECUTION_PLAN,
        )

    def get_execution_plan_snapshot(self, execution_plan_snapshot_id: str) -> ExecutionPlanSnapshot:
        check.str_param(execution_plan_snapshot_id, "execution_plan_snapshot_id")
        return self._get_snapshot(execution_plan_snapshot_id)

    # -- backfills -----------------------------------------------------------------------------

    def get_backfills(
        self,
        filters: BulkActionsFilter | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        status: BulkActionStatus | None = None,
    ) -> Sequence[PartitionBackfill]:
        check.opt_inst_param(status, "status", BulkActionStatus)
        if status and filters:
            raise DagsterInvariantViolationError(
                "Cannot provide status and filters to get_backfills. Please use filters rather"
                " than status."
            )
        if status is not None:
            filters = BulkActionsFilter(statuses=[status])
        if not native_text(cursor) or not native_int(limit):
            return self._stock().get_backfills(filters, cursor, limit)
        bodies = self.store.backfills(backfill_filter_spec(filters), cursor, limit or None)
        return list(deserialize_values(bodies, PartitionBackfill))

    def get_backfills_count(self, filters: BulkActionsFilter | None = None) -> int:
        check.opt_inst_param(filters, "filters", BulkActionsFilter)
        if filters and filters.tags:
            # Stock counts tag matches on the backfill bodies, not on the backfill_tags rows
            # get_backfills joins (which add_backfill writes and update_backfill never changes):
            # every candidate body is read, in one native deserialization pass.
            spec = backfill_filter_spec(filters)
            assert spec is not None
            spec["tags"] = None
            candidates = deserialize_values(
                self.store.backfills(spec, None, None), PartitionBackfill
            )
            # Stock's own matcher (it reads nothing of the storage it is bound to).
            matching = SqlRunStorage._apply_backfill_tags_filter_to_results(  # noqa: SLF001
                self,  # type: ignore[arg-type]
                candidates,
                filters.tags,
            )
            return len(matching)
        return self.store.backfills_count(backfill_filter_spec(filters))

    def get_backfill(self, backfill_id: str) -> PartitionBackfill | None:
        check.str_param(backfill_id, "backfill_id")
        body = self.store.get_backfill(backfill_id)
        return deserialize_value(body, PartitionBackfill) if body is not None else None

    def add_backfill(self, partition_backfill: PartitionBackfill) -> None:
        check.inst_param(partition_backfill, "partition_backfill", PartitionBackfill)
        self.store.add_backfill(backfill_spec(partition_backfill))

    def update_backfill(self, partition_backfill: PartitionBackfill) -> None:
        check.inst_param(partition_backfill, "partition_backfill", PartitionBackfill)
        backfill_id = partition_backfill.backfill_id
        found = self.store.update_backfill(
            backfill_id, partition_backfill.status.value, serialize(partition_backfill)
        )
        if not found:
            raise DagsterInvariantViolationError(
                f"Backfill {backfill_id} is not present in storage"
            )

    # -- data migration marks and wipe ----------------------------------------------------

    def has_built_index(self, migration_name: str) -> bool:
        return self.store.has_built_index(migration_name)

    def mark_index_built(self, migration_name: str) -> None:
        self.store.mark_index_built(migration_name)

    def wipe(self) -> None:
        self.store.wipe()


__all__ = ["RunsDomain", "backfill_spec", "run_spec"]
