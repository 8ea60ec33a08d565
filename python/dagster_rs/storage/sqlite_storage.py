"""`DagsterRsSqliteStorage`: the unified storage `dagster_rs.DagsterInstance` defaults to.

Same layout as stock `DagsterSqliteStorage` under `base_dir` (`history/runs.db`,
`history/runs/index.db` with per-run shards, `schedules/schedules.db`). Run storage is the Rust
`RustRunStorage`, the event log the Rust `RustEventLogStorage`, schedule storage the Rust
`RustScheduleStorage`. The instance swaps a storage back to stock's
when its domain is switched off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dagster._check as check
from dagster._config import StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.base import RunStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.base import ScheduleStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from dagster._utils import mkdir_p

from dagster_rs import compat
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from dagster_rs.storage.run_storage import RustRunStorage
from dagster_rs.storage.schedule_storage import RustScheduleStorage

if TYPE_CHECKING:
    from dagster._core.instance import DagsterInstance


def runs_directory(base_dir: str) -> str:
    return os.path.join(base_dir, "history", "")


def event_logs_directory(base_dir: str) -> str:
    return os.path.join(base_dir, "history", "runs", "")


def schedules_directory(base_dir: str) -> str:
    return os.path.join(base_dir, "schedules")


class DagsterRsSqliteStorage(DagsterStorage, ConfigurableClass):
    """Embedded SQLite storage in stock Dagster's layout, run storage served by Rust."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = check.str_param(base_dir, "base_dir")
        self._inst_data = check.opt_inst_param(inst_data, "inst_data", ConfigurableClassData)
        self._run_storage: RunStorage
        self._event_log_storage: EventLogStorage
        self._schedule_storage: ScheduleStorage
        if compat.dagster_in_range():
            self._run_storage = RustRunStorage(runs_directory(base_dir))
            self._event_log_storage = RustEventLogStorage(event_logs_directory(base_dir))
            self._schedule_storage = RustScheduleStorage(schedules_directory(base_dir))
        else:
            # A Dagster this dagster-rs was not tested with: stock's storages build (and
            # create) the files as that Dagster's own do; the instance serves every domain
            # with them (`DagsterInstance`, `compat`).
            self._run_storage = SqliteRunStorage.from_local(runs_directory(base_dir))
            self._event_log_storage = SqliteEventLogStorage(event_logs_directory(base_dir))
            self._schedule_storage = SqliteScheduleStorage.from_local(schedules_directory(base_dir))
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> DagsterRsSqliteStorage:
        base_dir = config_value["base_dir"]
        mkdir_p(base_dir)
        return cls(base_dir, inst_data=inst_data)

    def register_instance(self, instance: DagsterInstance) -> None:
        super().register_instance(instance)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            if not storage.has_instance:
                storage.register_instance(instance)

    @property
    def run_storage(self) -> RunStorage:
        return self._run_storage

    @property
    def event_log_storage(self) -> EventLogStorage:
        return self._event_log_storage

    @property
    def schedule_storage(self) -> ScheduleStorage:
        return self._schedule_storage

    def dispose(self) -> None:
        self._event_log_storage.dispose()
        self._run_storage.dispose()
        self._schedule_storage.dispose()
