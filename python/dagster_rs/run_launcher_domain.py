"""The run_launcher domain's methods of the facade (`dagster_rs.DagsterInstance`).

Stock's `RunLauncherMethods` orchestrate the pluggable run coordinator and run launcher, which
stay Python; what they store goes through the events domain (`report_dagster_event`,
`report_engine_event`, `report_run_failed`), which runs in Rust when it is live. What this mixin
replaces is the domain's one read: `count_resume_run_attempts` (and so `run_will_resume`, which
stock builds on it), one native call on the run's shard instead of reading every engine event of
the run back into Python objects. ARCHITECTURE.md (run_launcher) lists which method is which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster._core.instance import DagsterInstance as StockDagsterInstance

from dagster_rs.storage.event_log_storage import RustEventLogStorage

if TYPE_CHECKING:
    from dagster_rs._native import RunLauncherStore


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


class RunLauncherDomain:
    """Mixed into the facade before stock's instance class."""

    def _rs_run_launcher(self) -> RunLauncherStore | None:
        """The native store when the events domain serves this instance's event log."""
        instance: StockDagsterInstance = self  # type: ignore[assignment]
        if "events" not in self._rs_live or not _reads_through_core(instance):  # type: ignore[attr-defined]
            return None
        return self._rs_core.run_launcher  # type: ignore[attr-defined, no-any-return]

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
