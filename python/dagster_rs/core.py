"""The native core (`dagster_rs._native.DagsterInstance`) behind an instance and its storages.

Dagster builds the storage objects named in `dagster.yaml` before the instance, each on its own
directory, so each storage asks for a core of its own files; the native side keeps one store per
location for the whole process (`src/core.rs`), so the instance's core and its storages' cores
hold the very same connections and caches. A PostgreSQL database (`postgres_url`, with
`postgres_schedules_url` for the schedules when they are elsewhere) is a location too; the native
core raises `BackendNotIntegratedError` (a `DagsterRsStorageError`) for a store there until that
backend is integrated.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dagster_rs import _native
from dagster_rs.errors import DagsterRsStorageError

if TYPE_CHECKING:
    from dagster_rs._native import Durability


class BackendNotIntegratedError(DagsterRsStorageError, NotImplementedError):
    """A store the native core is asked for is in a database whose backend is not integrated
    into the domains yet (PostgreSQL, until issue 16's integration): stock's storage serves it.
    A `NotImplementedError` too, so callers probing for the backend tell it from a failure of a
    present one."""


def core_for(
    *,
    durability: Durability,
    runs_db: str | None = None,
    event_log_dir: str | None = None,
    postgres_url: str | None = None,
    postgres_schedules_url: str | None = None,
    pool_size: int | None = None,
) -> _native.DagsterInstance:
    """A core whose domain files are the given ones (the others at stock's layout beside them,
    under the directory that holds `history/`), or whose stores are in the given PostgreSQL
    databases (a path given for a domain wins over a URL)."""
    anchor = runs_db or (event_log_dir and os.path.join(event_log_dir, "x"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(anchor))) if anchor else "."
    return _native.DagsterInstance(
        root,
        durability,
        runs_db=runs_db,
        event_log_dir=event_log_dir,
        postgres_url=postgres_url,
        postgres_schedules_url=postgres_schedules_url,
        pool_size=pool_size,
    )


__all__ = ["BackendNotIntegratedError", "core_for"]
