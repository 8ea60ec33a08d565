"""Dagster storage classes backed by the native core."""

from dagster_rs.storage.event_log_storage import RustEventLogStorage
from dagster_rs.storage.run_storage import RustRunStorage
from dagster_rs.storage.sqlite_storage import DagsterRsSqliteStorage

__all__ = ["DagsterRsSqliteStorage", "RustEventLogStorage", "RustRunStorage"]
