"""A database file opened by the core's store (`Db::open`), as each domain first opens it."""

from __future__ import annotations

from pathlib import Path

from dagster_rs import DagsterRsStorageError, _native


def open_natively(path: Path, kind: str) -> None:
    """Open the file `path` of `kind` natively (a half-built one is completed; one the store
    does not serve raises). The instance is dropped on return (nothing cycles through it): its
    stores close with it."""
    d = str(path.parent)
    if kind == "runs":
        _native.DagsterInstance(d, runs_db=str(path)).runs.run_by_id("none")
    elif kind == "schedules":
        _native.DagsterInstance(d, schedules_db=str(path)).schedules.layout()
    elif kind == "event_index":
        _native.DagsterInstance(d, event_log_dir=d).events.ensure_index()
    else:
        events = _native.DagsterInstance(d, event_log_dir=d).events
        events.records_for_run(path.name.removesuffix(".db"), None, [], 10, True)


def opens_natively(path: Path, kind: str) -> bool:
    """Whether the core's store opens the file for `kind`."""
    try:
        open_natively(path, kind)
    except DagsterRsStorageError:
        return False
    return True
