"""Builders and normalizers shared by the runs-domain compatibility tests.

Both instances of a pair must hold identical data, so every run gets an explicit, deterministic
run id, and every time a test compares is one the test chose (historical creation times, explicit
event timestamps). Times the storage picks itself ("now") are normalized away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from dagster import DagsterInstance
from dagster._core.events import DagsterEvent, DagsterEventType, JobFailureData, RunFailureReason
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemotePartitionSetOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunRecord
from dagster._core.storage.tags import (
    BACKFILL_ID_TAG,
    PARENT_RUN_ID_TAG,
    PARTITION_NAME_TAG,
    PARTITION_SET_TAG,
    ROOT_RUN_ID_TAG,
)

from tests.conftest import InstancePair

UTC = timezone.utc
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """A fixed UTC time, `minutes` after 2024-01-01T00:00Z."""
    return T0 + timedelta(minutes=minutes)


def rid(n: int) -> str:
    """A deterministic run id (a valid UUID, as Dagster's run creation requires)."""
    return f"00000000-0000-4000-8000-{n:012d}"


def make_run(
    n: int,
    job_name: str = "job_a",
    status: DagsterRunStatus = DagsterRunStatus.NOT_STARTED,
    tags: Mapping[str, str] | None = None,
    *,
    parent: DagsterRun | None = None,
    partition: str | None = None,
    partition_set: str | None = None,
    backfill_id: str | None = None,
    **kwargs: Any,
) -> DagsterRun:
    """A DagsterRun with run id `rid(n)`; `parent` makes it a re-execution, as Dagster does."""
    all_tags = dict(tags or {})
    if partition is not None:
        all_tags[PARTITION_NAME_TAG] = partition
    if partition_set is not None:
        all_tags[PARTITION_SET_TAG] = partition_set
    if backfill_id is not None:
        all_tags[BACKFILL_ID_TAG] = backfill_id
    if parent is not None:
        root = parent.root_run_id or parent.run_id
        all_tags[PARENT_RUN_ID_TAG] = parent.run_id
        all_tags[ROOT_RUN_ID_TAG] = root
        kwargs.update(root_run_id=root, parent_run_id=parent.run_id)
    if status == DagsterRunStatus.QUEUED and "remote_job_origin" not in kwargs:
        kwargs["remote_job_origin"] = job_origin(job_name)  # required for queued runs
    return DagsterRun(job_name=job_name, run_id=rid(n), status=status, tags=all_tags, **kwargs)


def repo_origin(location: str = "loc", repo: str = "repo") -> RemoteRepositoryOrigin:
    return RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(location), repo)


def job_origin(job_name: str, location: str = "loc", repo: str = "repo") -> RemoteJobOrigin:
    return repo_origin(location, repo).get_job_origin(job_name)


# -- events ------------------------------------------------------------------------------------

STATUS_EVENTS: dict[DagsterEventType, DagsterRunStatus] = {
    DagsterEventType.RUN_ENQUEUED: DagsterRunStatus.QUEUED,
    DagsterEventType.RUN_STARTING: DagsterRunStatus.STARTING,
    DagsterEventType.RUN_START: DagsterRunStatus.STARTED,
    DagsterEventType.RUN_SUCCESS: DagsterRunStatus.SUCCESS,
    DagsterEventType.RUN_FAILURE: DagsterRunStatus.FAILURE,
    DagsterEventType.RUN_CANCELING: DagsterRunStatus.CANCELING,
    DagsterEventType.RUN_CANCELED: DagsterRunStatus.CANCELED,
}


def run_event(
    event_type: DagsterEventType,
    job_name: str = "job_a",
    failure_reason: RunFailureReason | None = None,
    with_failure_data: bool = True,
) -> DagsterEvent:
    """A run-level DagsterEvent as the run worker reports it (failures carry JobFailureData)."""
    data = None
    if event_type == DagsterEventType.RUN_FAILURE and with_failure_data:
        data = JobFailureData(error=None, failure_reason=failure_reason)
    return DagsterEvent(
        event_type_value=event_type.value,
        job_name=job_name,
        event_specific_data=data,
        message=f"{event_type.value} for {job_name}",
    )


def drive(
    instance: DagsterInstance,
    run_id: str,
    steps: Iterable[tuple[DagsterEventType, datetime]],
    job_name: str = "job_a",
    failure_reason: RunFailureReason | None = None,
) -> None:
    """Report each (event type, time) to the run storage, with the time as update_timestamp."""
    for event_type, when in steps:
        instance.handle_run_event(
            run_id, run_event(event_type, job_name, failure_reason), update_timestamp=when
        )


# -- writing the same data to both instances ---------------------------------------------------


def add_runs(
    target: InstancePair | DagsterInstance,
    runs: Sequence[DagsterRun],
    created: Sequence[datetime] | None = None,
) -> None:
    """Add `runs` in order; with `created`, as historical runs with those creation times."""
    instances = (target.stock, target.rust) if isinstance(target, InstancePair) else (target,)
    for inst in instances:
        for i, run in enumerate(runs):
            if created is None:
                inst.add_run(run)
            else:
                inst.run_storage.add_historical_run(run, created[i])


# -- normalizers -------------------------------------------------------------------------------


def ids(runs: Iterable[DagsterRun]) -> list[str]:
    return [r.run_id for r in runs]


def record_view(record: RunRecord | None) -> tuple | None:
    """A RunRecord without the timestamps the storage chose itself."""
    if record is None:
        return None
    return (record.storage_id, record.dagster_run, record.start_time, record.end_time)


def records_view(records: Iterable[RunRecord]) -> list[tuple | None]:
    return [record_view(r) for r in records]


def full_record(record: RunRecord | None) -> tuple | None:
    """Every field of a RunRecord, for tests that control both of its timestamps."""
    if record is None:
        return None
    return (
        record.storage_id,
        record.dagster_run,
        record.create_timestamp,
        record.update_timestamp,
        record.start_time,
        record.end_time,
    )


def tags_view(tags: Sequence[tuple[str, set[str]]]) -> list[tuple[str, list[str]]]:
    return [(key, sorted(values)) for key, values in tags]


# -- backfills ---------------------------------------------------------------------------------


def job_backfill(
    backfill_id: str,
    job_name: str,
    timestamp: float,
    status: BulkActionStatus = BulkActionStatus.REQUESTED,
    tags: Mapping[str, str] | None = None,
    partition_names: Sequence[str] = ("p1", "p2"),
    location: str = "loc",
) -> PartitionBackfill:
    """A job backfill as the UI's launch mutation builds it (partition set origin and all)."""
    origin = RemotePartitionSetOrigin(
        repository_origin=repo_origin(location),
        partition_set_name=f"{job_name}_partition_set",
    )
    return PartitionBackfill(
        backfill_id=backfill_id,
        partition_set_origin=origin,
        status=status,
        partition_names=list(partition_names),
        from_failure=False,
        reexecution_steps=None,
        tags=dict(tags or {}),
        backfill_timestamp=timestamp,
        title=f"backfill {backfill_id}",
        description=None,
    )
