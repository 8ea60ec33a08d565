"""The run_launcher domain's methods of the facade (`dagster_rs.DagsterInstance`).

Stock's `RunLauncherMethods` orchestrate the pluggable run coordinator and run launcher around
writes of the events domain (`report_dagster_event`, `report_engine_event`, `report_run_failed`,
each through `handle_new_event`, the event storage's `store_event` and the run storage's
`handle_run_event`). Here the state machine is native (`RunLauncherStore`, `src/run_launcher/`):
each step — the launch's `PIPELINE_STARTING` and transition to STARTING, the resume's status check
and marker event, the failure's engine error, `PIPELINE_FAILURE` and transition to FAILURE — is
one call with the GIL released, its rows byte for byte stock's. The coordinator and launcher
stay the configured Python objects, called between the steps exactly as stock calls them.

A method takes the native steps only when they are what stock would do: the run_launcher domain
live (runs and events in Rust), no event listener on the run (`add_event_listener`: stock hands
it every event), and none of the methods stock would go through overridden (instance or storage
subclass). Otherwise, or when a stored run body is one the steps do not transition (written by
another Dagster version), stock's method runs. ARCHITECTURE.md (run_launcher) lists each method.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

import dagster._check as check
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.instance import DagsterInstance as StockDagsterInstance
from dagster._time import get_current_timestamp
from dagster._utils.error import serializable_error_info_from_exc_info

from dagster_rs.serdes import serialize
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from dagster_rs.storage.run_storage import RustRunStorage, _row_to_run
from dagster_rs.storage.storage_domain import StorageDomain

if TYPE_CHECKING:
    from dagster._core.events.log import EventLogEntry
    from dagster._core.run_coordinator.base import BaseWorkspaceRequestContext
    from dagster._core.storage.dagster_run import DagsterRun

    from dagster_rs._native import LaunchRunRow, RunLauncherStore

# What stock's submit/launch/resume call on the instance and its storages; the native steps
# replace these calls, so an override of any of them sends the method down stock's path.
_INSTANCE_METHODS = (
    "report_dagster_event",
    "report_engine_event",
    "report_run_failed",
    "handle_new_event",
    "should_store_event",
    "get_run_by_id",
    "get_run_record_by_id",
)
_EVENT_STORAGE_METHODS = ("store_event", "_event_insert_timestamp")
_RUN_STORAGE_METHODS = ("handle_run_event", "get_run_records", "_get_run_by_id")


def _stock(cls: type, base: type, names: tuple[str, ...], mixins: tuple[type, ...] = ()) -> bool:
    """Whether each of `names` resolves on `cls` to `base`'s own (or what `base` inherits),
    through nothing but `mixins` (the facade's domain mixins, which call `super()`)."""
    mro = cls.__mro__
    if base not in mro:
        return False
    at_base = mro.index(base)
    for name in names:
        for position, klass in enumerate(mro):
            if name not in klass.__dict__:
                continue
            if position >= at_base:
                break
            if klass not in mixins:
                return False
    return True


def _reads_through_core(instance: StockDagsterInstance) -> bool:
    """Whether the instance's engine events are read by stock's `all_logs` from the core's
    storage with no override in between (an overriding storage or instance is called, as
    stock would)."""
    storage = instance.event_log_storage
    return (
        isinstance(storage, RustEventLogStorage)
        and type(storage).get_logs_for_run is RustEventLogStorage.get_logs_for_run
        and type(storage).get_records_for_run is RustEventLogStorage.get_records_for_run
        and type(instance).all_logs is StockDagsterInstance.all_logs
    )


def _writes_through_core(instance: StockDagsterInstance) -> bool:
    """Whether stock's reporting of an event would be exactly the native steps' writes: the
    instance's and storages' methods on that path are the facade's own."""
    events, runs = instance.event_log_storage, instance.run_storage
    return (
        _stock(type(instance), StockDagsterInstance, _INSTANCE_METHODS)
        and isinstance(events, RustEventLogStorage)
        and _stock(type(events), RustEventLogStorage, _EVENT_STORAGE_METHODS, (StorageDomain,))
        and not events.handles_run_events_in_store_event
        and isinstance(runs, RustRunStorage)
        and _stock(type(runs), RustRunStorage, _RUN_STORAGE_METHODS)
    )


class _Ended:
    """What `StorageDomain._release_ended_runs` reads of a stored PIPELINE_FAILURE entry."""

    def __init__(self, run_id: str):
        from dagster._core.events import DagsterEventType

        self.run_id = run_id
        self.dagster_event_type = DagsterEventType.PIPELINE_FAILURE


class RunLauncherDomain:
    """Mixed into the facade before stock's instance class."""

    def _rs_run_launcher(self) -> RunLauncherStore | None:
        """The native store when the domain serves this instance's event log."""
        instance: StockDagsterInstance = self  # type: ignore[assignment]
        if "run_launcher" not in self._rs_live or not _reads_through_core(instance):  # type: ignore[attr-defined]
            return None
        return self._rs_core.run_launcher  # type: ignore[attr-defined, no-any-return]

    def _rs_launch_steps(self, run_id: str) -> RunLauncherStore | None:
        """The native store when its steps are what stock would do for `run_id`: the domain
        live, the write path the facade's own, and no listener subscribed to the run."""
        instance: StockDagsterInstance = self  # type: ignore[assignment]
        if "run_launcher" not in self._rs_live:  # type: ignore[attr-defined]
            return None
        if instance._subscribers.get(run_id) or not _writes_through_core(instance):  # noqa: SLF001
            return None
        return self._rs_core.run_launcher  # type: ignore[attr-defined, no-any-return]

    def _rs_run(self, row: LaunchRunRow, run_id: str) -> DagsterRun:
        storage: RustRunStorage = self.run_storage  # type: ignore[attr-defined]
        return _row_to_run(run_id, row.body, row.status, storage._db_path)  # noqa: SLF001

    def _rs_report_failure(self, store: RunLauncherStore, run: DagsterRun, exc_info: Any) -> None:
        """Stock's `except:` block: the engine error, the run failure (with stock's WILL_RETRY
        tag when run retries are on), natively; stock's reporting when the step declines."""
        from dagster._core.events import EngineEventData

        instance: StockDagsterInstance = self  # type: ignore[assignment]
        error = serializable_error_info_from_exc_info(exc_info)
        try:
            done = store.fail(
                run.run_id, run.job_name, get_current_timestamp(), error.message, serialize(error)
            )
        except UnicodeEncodeError:
            # Text Rust cannot hold (lone surrogates): nothing was written; stock writes it.
            done = False
        if not done:
            instance.report_engine_event(error.message, run, EngineEventData.engine_error(error))
            instance.report_run_failed(run)
            return
        events = instance.event_log_storage
        if isinstance(events, StorageDomain):
            # What the storage domain's `store_event` does after a run's end is stored: the
            # run's concurrency slots go back to their pools.
            ended = cast("EventLogEntry", _Ended(run.run_id))  # the fields it reads
            events._release_ended_runs([ended])  # noqa: SLF001
        self._rs_tag_will_retry(run.run_id)

    def _rs_tag_will_retry(self, run_id: str) -> None:
        """`handle_new_event`'s step after a stored PIPELINE_FAILURE: the WILL_RETRY tag, by
        stock's own decision (`_should_retry_run`)."""
        from dagster._core.events import RunFailureReason
        from dagster._core.storage.tags import RUN_FAILURE_REASON_TAG, WILL_RETRY_TAG

        instance: StockDagsterInstance = self  # type: ignore[assignment]
        if not instance.run_retries_enabled:
            return
        run = instance.get_run_by_id(run_id)
        if run is None:
            return
        reason_tag = run.tags.get(RUN_FAILURE_REASON_TAG)
        reason = RunFailureReason(reason_tag) if reason_tag else None
        should_retry = instance._should_retry_run(run, reason)  # noqa: SLF001
        instance.add_run_tags(run_id, {WILL_RETRY_TAG: str(should_retry).lower()})

    def submit_run(self, run_id: str, workspace: BaseWorkspaceRequestContext) -> DagsterRun:
        """Stock's `submit_run`: the run read natively, the configured coordinator's
        `submit_run`, and the failure step when it raises."""
        from dagster._core.run_coordinator import SubmitRunContext

        store = self._rs_launch_steps(run_id)
        if store is None:
            return super().submit_run(run_id, workspace)  # type: ignore[misc, no-any-return]
        instance: StockDagsterInstance = self  # type: ignore[assignment]
        storage: RustRunStorage = instance.run_storage  # type: ignore[assignment]
        run = storage._get_run_by_id(run_id) if run_id else None  # noqa: SLF001
        if run is None:
            raise DagsterInvariantViolationError(
                f"Could not load run {run_id} that was passed to submit_run"
            )
        check.not_none(
            run.remote_job_origin, "External pipeline origin must be set for submitted runs"
        )
        check.not_none(run.job_code_origin, "Python origin must be set for submitted runs")
        try:
            return instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=workspace))
        except:
            self._rs_report_failure(store, run, sys.exc_info())
            raise

    def launch_run(self, run_id: str, workspace: BaseWorkspaceRequestContext) -> DagsterRun:
        """Stock's `launch_run`: `PIPELINE_STARTING` and the transition to STARTING in one
        native step, the configured launcher's `launch_run` on the run it returns, and the
        failure step when the launcher raises."""
        from dagster._core.launcher import LaunchRunContext

        store = self._rs_launch_steps(run_id)
        row = store.launch(run_id, get_current_timestamp()) if store is not None else None
        if store is None or row is None:
            return super().launch_run(run_id, workspace)  # type: ignore[misc, no-any-return]
        run = self._rs_run(row, run_id)
        instance: StockDagsterInstance = self  # type: ignore[assignment]
        try:
            instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=workspace))
        except:
            self._rs_report_failure(store, run, sys.exc_info())
            raise
        return run

    def resume_run(
        self, run_id: str, workspace: BaseWorkspaceRequestContext, attempt_number: int
    ) -> DagsterRun:
        """Stock's `resume_run`: the status check and the resume marker in one native step,
        the configured launcher's `resume_run`, and the failure step when it raises."""
        from dagster._core.launcher import ResumeRunContext
        from dagster._daemon.monitoring import RESUME_RUN_LOG_MESSAGE

        store = self._rs_launch_steps(run_id)
        row = (
            store.resume(run_id, get_current_timestamp(), RESUME_RUN_LOG_MESSAGE)
            if store is not None
            else None
        )
        if store is None or row is None:
            return super().resume_run(run_id, workspace, attempt_number)  # type: ignore[misc, no-any-return]
        run = self._rs_run(row, run_id)
        instance: StockDagsterInstance = self  # type: ignore[assignment]
        try:
            instance.run_launcher.resume_run(
                ResumeRunContext(
                    dagster_run=run, workspace=workspace, resume_attempt_number=attempt_number
                )
            )
        except:
            self._rs_report_failure(store, run, sys.exc_info())
            raise
        return run

    def count_resume_run_attempts(self, run_id: str) -> int:
        """The run's engine events whose message is the run monitor's resume marker, counted
        on its shard; stock's count when a stored body needs stock's deserialization."""
        from dagster._daemon.monitoring import RESUME_RUN_LOG_MESSAGE

        store = self._rs_run_launcher()
        if store is not None:
            count = store.count_engine_messages(run_id, RESUME_RUN_LOG_MESSAGE)
            if count is not None:
                return count
        return super().count_resume_run_attempts(run_id)  # type: ignore[misc, no-any-return]


__all__ = ["RunLauncherDomain"]
