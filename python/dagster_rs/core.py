"""The native core (`dagster_rs._native.DagsterInstance`) behind an instance and its storages.

Dagster builds the storage objects named in `dagster.yaml` before the instance, each on its own
directory, so each storage asks for a core of its own files; the native side keeps one store per
file for the whole process (`src/instance.rs`), so the instance's core and its storages' cores
hold the very same connections and caches.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dagster_rs import _native

if TYPE_CHECKING:
    from dagster_rs._native import Durability


def core_for(
    *,
    durability: Durability,
    runs_db: str | None = None,
    event_log_dir: str | None = None,
) -> _native.DagsterInstance:
    """A core whose domain files are the given ones (the others at stock's layout beside them,
    under the directory that holds `history/`)."""
    anchor = runs_db or (event_log_dir and os.path.join(event_log_dir, "x"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(anchor))) if anchor else "."
    return _native.DagsterInstance(root, durability, runs_db=runs_db, event_log_dir=event_log_dir)


__all__ = ["core_for"]
