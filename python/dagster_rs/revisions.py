"""Which of an instance's database files the native path serves, decided file by file.

A home Dagster's own migrations have not brought to this Dagster's schema yet is served as stock
serves it: the native path reads and writes a file whose layout it covers (the core's verdict,
`_native.inspect_database`, the one `Db::open` acts on), and a file it does not cover (an older
revision lacking what the native path needs, a revision this Dagster does not know) is left to
stock's code for the domains it holds, with one warning, until `dagster instance migrate`
upgrades it. Nothing here writes: the verdict is read without changing the file.

    runs.db                  runs, config, run_launcher
    history/runs/index.db    events, assets, storage (and every run shard with it)
    schedules/schedules.db   scheduling
"""

from __future__ import annotations

import glob
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from dagster_rs import _native

if TYPE_CHECKING:
    from dagster_rs._native import DatabaseKind

# Files whose revision is this Dagster's head, or that do not hold Dagster's tables yet.
_SETTLED = ("current", "fresh", "missing")


@dataclass(frozen=True)
class FileVerdict:
    """What the core found in one database file."""

    path: str
    kind: DatabaseKind
    state: str
    revision: str | None
    native: bool
    missing: tuple[str, ...]

    @property
    def settled(self) -> bool:
        return self.state in _SETTLED


def _at_head(path: str) -> bool | None:
    """True for a file at this Dagster's head, False for one that is not (or has no revision),
    None for one that is absent, empty or unreadable here. Read through Python's `sqlite3`, which
    is the core's SQLite library (the core opens nothing otherwise: `sqlite_library`): its opens
    and closes share the library's per-file bookkeeping, so this process keeps its locks. (It
    was written when the core's inspection opened files outside SQLite; the core reads only
    through SQLite now, and this stays as the cheap answer for the common case.)"""
    try:
        if os.path.getsize(path) == 0:
            return None
    except OSError:
        return None
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error:
        return None
    try:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return rows == [(_native.SCHEMA_HEAD,)]


def inspect(path: str, kind: DatabaseKind) -> FileVerdict | None:
    """The file's verdict; None when it cannot be read at all (not a database, corrupt): the
    native path then serves it and fails on use with the class stock fails with. A file at the
    head is served natively without asking the core (`_at_head`, one query)."""
    if _at_head(path):
        return FileVerdict(path, kind, "current", _native.SCHEMA_HEAD, True, ())
    try:
        found = _native.inspect_database(path, kind)
    except Exception:  # noqa: BLE001 - any failure to read is the store's to report on use
        return None
    missing = tuple(found["missing"])
    return FileVerdict(
        path=found["path"],
        kind=kind,
        state=found["state"],
        revision=found["revision"],
        # A column the file lacks is one nothing adds but alembic: stock's completion of a file
        # without a revision creates missing tables only, then stamps an old revision (the
        # runs.db of a home made with SQLAlchemy 2 before Dagster stamped such files).
        native=found["native"] and not any("." in need for need in missing),
        missing=missing,
    )


def _shards(event_log_dir: str) -> Iterable[str]:
    for path in glob.iglob(os.path.join(glob.escape(event_log_dir), "*.db")):
        if os.path.basename(path) != "index.db":
            yield path


def event_log_verdict(event_log_dir: str) -> FileVerdict | None:
    """The verdict that decides the event log's domains: the index shard's, or, while the index
    is not at this Dagster's head (a home awaiting `dagster instance migrate`, whose run shards
    are as old), the first run shard the native path does not serve. A migrated home's shards
    are at the head with its index, and are not read here."""
    index = inspect(os.path.join(event_log_dir, "index.db"), "event_index")
    if index is None or not index.native or index.settled:
        return index
    for path in _shards(event_log_dir):
        shard = inspect(path, "event_shard")
        if shard is not None and not shard.native:
            return shard
    return index


def _why(verdict: FileVerdict) -> str:
    if verdict.state == "unknown":
        return (
            f"is at alembic revision {verdict.revision}, which this Dagster does not know (a newer"
            " Dagster wrote it): dagster-rs never writes it"
        )
    lacks = f", lacking {', '.join(verdict.missing)}" if verdict.missing else ""
    if verdict.state == "outdated":
        return (
            f"is at alembic revision {verdict.revision}, older than this Dagster's"
            f" {_native.SCHEMA_HEAD}{lacks}, until `dagster instance migrate` upgrades it"
        )
    return f"cannot be served natively ({verdict.state}{lacks})"


def held_back_message(held: dict[str, FileVerdict]) -> str:
    """One warning for every file left to stock's code, by the domains it holds."""
    # By file and reason: a PostgreSQL database holds domains left to stock for different reasons.
    by_file: dict[tuple[str, str], tuple[FileVerdict, list[str]]] = {}
    for domain, verdict in held.items():
        by_file.setdefault((verdict.path, verdict.state), (verdict, []))[1].append(domain)
    lines = [
        f"  {', '.join(sorted(domains))}: {verdict.path} {_why(verdict)}"
        for verdict, domains in by_file.values()
    ]
    return (
        "dagster-rs serves these domains with stock Dagster's code, on the same files:\n"
        + "\n".join(lines)
    )


__all__ = ["FileVerdict", "event_log_verdict", "held_back_message", "inspect"]
