"""How each storage object of a domain is put in Rust's hands, or given back to stock.

The facade (`dagster_rs.DagsterInstance`) walks the domain table (`dagster_rs.domains`) and, for
each domain served by a storage object, asks that storage's `Swap` for the Rust-backed storage
over the same files (when the domain is live) or for stock's own class over them (when it is
switched off), so that one domain switch decides which code touches those files.

A storage Dagster built from dagster-postgres (`storage: postgres:`, or the legacy per-storage
`Postgres*` classes) is swapped for the class composed over stock's PostgreSQL class
(`dagster_rs.storage.postgres_storage`) on the same database, or given back to stock's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.base import RunStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.base import ScheduleStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage

from dagster_rs.postgres import stock_class
from dagster_rs.storage.event_log_storage import RustEventLogStorage, as_rust_event_log_storage
from dagster_rs.storage.run_storage import RustRunStorage, run_storage_class
from dagster_rs.storage.runs_domain import RunsDomain
from dagster_rs.storage.schedule_storage import RustScheduleStorage, SchedulingDomain

if TYPE_CHECKING:
    from dagster_rs._native import DatabaseKind


@dataclass(frozen=True)
class Swap:
    # The Rust-backed storage over the same files (or PostgreSQL database) serving the requested
    # domains (the storage itself when it already is that one, at the durability and pool size
    # asked for), or None when the core cannot serve this storage.
    to_rust: Callable[[Any, str, frozenset[str], int | None], Any | None]
    # Stock's own storage over the same files, for a Rust-backed one (domain switched off).
    to_stock: Callable[[Any], Any]
    is_rust: Callable[[Any], bool]
    # What the core needs, said when a domain was asked for explicitly and cannot be served.
    needs: str
    # The database file whose verdict decides the storage's domains (`dagster_rs.revisions`),
    # for the storages the core can serve, else None.
    database: Callable[[Any], str | None]
    kind: DatabaseKind


def _sqlite_dir(run_storage: RunStorage) -> str | None:
    """The directory holding runs.db for the run storages the core can serve, else None."""
    if isinstance(run_storage, RustRunStorage):
        return run_storage.base_dir
    if isinstance(run_storage, SqliteRunStorage):
        # sqlite:///<dir>/runs.db, as built by stock's create_db_conn_string
        path = run_storage._conn_string.removeprefix("sqlite:///")  # noqa: SLF001
        if os.path.basename(path) == "runs.db":
            return os.path.dirname(path)
    return None


def _rust_run_storage(
    storage: Any, durability: str, domains: frozenset[str], pool_size: int | None
) -> RunsDomain | None:
    if stock_class(storage) == "runs":
        from dagster_rs.storage import postgres_storage

        return postgres_storage.rust_run_storage(
            storage,
            durability,  # type: ignore[arg-type]
            domains,
            pool_size,
        )
    runs_dir = _sqlite_dir(storage)
    if runs_dir is None:
        return None
    cls = run_storage_class(domains)
    if type(storage) is cls and storage.durability == durability:
        return storage
    inst_data = getattr(storage, "inst_data", None)
    storage.dispose()
    return cls(runs_dir, inst_data=inst_data, durability=durability)


def _stock_run_storage(storage: Any) -> RunStorage:
    if stock_class(storage) == "runs":
        from dagster_rs.storage import postgres_storage

        return postgres_storage.stock_run_storage(storage)
    return SqliteRunStorage.from_local(storage.base_dir, storage.inst_data)


def _stock_event_log(storage: RustEventLogStorage) -> SqliteEventLogStorage:
    storage.dispose()
    return SqliteEventLogStorage(storage.base_dir, storage.inst_data)


def _rust_schedule_storage(
    storage: Any, durability: str, domains: frozenset[str], pool_size: int | None
) -> SchedulingDomain | None:
    if stock_class(storage) == "schedules":
        from dagster_rs.storage import postgres_storage

        return postgres_storage.rust_schedule_storage(
            storage,
            durability,  # type: ignore[arg-type]
            domains,
            pool_size,
        )
    if isinstance(storage, RustScheduleStorage):
        if storage.durability == durability:
            return storage
        base_dir = storage.base_dir
    elif type(storage) is SqliteScheduleStorage:
        # sqlite:///<dir>/schedules.db, as built by stock's create_db_conn_string
        path = storage._conn_string.removeprefix("sqlite:///")  # noqa: SLF001
        if os.path.basename(path) != "schedules.db":
            return None
        base_dir = os.path.dirname(path)
    else:
        return None
    inst_data = storage.inst_data
    storage.dispose()
    return RustScheduleStorage(base_dir, inst_data, durability=durability)  # type: ignore[arg-type]


def _in(directory: str | None, name: str) -> str | None:
    return None if directory is None else os.path.join(directory, name)


def _event_log_dir(storage: Any) -> str | None:
    if isinstance(storage, RustEventLogStorage):
        return storage.base_dir
    if type(storage) is SqliteEventLogStorage:
        return storage._base_dir  # noqa: SLF001
    return None


def _schedules_dir(storage: Any) -> str | None:
    if isinstance(storage, RustScheduleStorage):
        return storage.base_dir
    if type(storage) is SqliteScheduleStorage:
        path = storage._conn_string.removeprefix("sqlite:///")  # noqa: SLF001
        if os.path.basename(path) == "schedules.db":
            return os.path.dirname(path)
    return None


def _stock_schedule_storage(storage: Any) -> ScheduleStorage:
    if stock_class(storage) == "schedules":
        from dagster_rs.storage import postgres_storage

        return postgres_storage.stock_schedule_storage(storage)
    storage.dispose()
    return SqliteScheduleStorage.from_local(storage.base_dir, storage.inst_data)


SWAPS: dict[str, Swap] = {
    "run_storage": Swap(
        to_rust=_rust_run_storage,
        to_stock=_stock_run_storage,
        is_rust=lambda s: isinstance(s, RunsDomain),
        needs="embedded SQLite run storage",
        database=lambda s: _in(_sqlite_dir(s), "runs.db"),
        kind="runs",
    ),
    "event_storage": Swap(
        to_rust=lambda s, durability, domains, _pool: as_rust_event_log_storage(
            s, durability, domains
        ),
        to_stock=lambda s: _stock_event_log(cast(RustEventLogStorage, s)),
        is_rust=lambda s: isinstance(s, RustEventLogStorage),
        needs="stock's run-sharded SQLite event log",
        database=lambda s: _in(_event_log_dir(s), "index.db"),
        kind="event_index",
    ),
    "schedule_storage": Swap(
        to_rust=_rust_schedule_storage,
        to_stock=_stock_schedule_storage,
        is_rust=lambda s: isinstance(s, SchedulingDomain),
        needs="embedded SQLite schedule storage (SqliteScheduleStorage)",
        database=lambda s: _in(_schedules_dir(s), "schedules.db"),
        kind="schedules",
    ),
}

__all__ = ["SWAPS", "Swap"]
