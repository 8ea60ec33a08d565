"""dagster-rs: Dagster's DagsterInstance with its storage domains served by a Rust core."""

# Python's sqlite3 first: the extension links the same libsqlite3 by soname, so the library
# `_sqlite3` loads is the one both use (ARCHITECTURE.md, "One SQLite per process").
import sqlite3  # noqa: F401  # isort: skip

from dagster_rs._native import __version__, sqlite_library
from dagster_rs.domains import DOMAINS, IMPLEMENTED, DomainSelectionError
from dagster_rs.errors import CorruptRecordError, DagsterRsStorageError
from dagster_rs.instance import DagsterInstance

__all__ = [
    "DOMAINS",
    "IMPLEMENTED",
    "CorruptRecordError",
    "DagsterInstance",
    "DagsterRsStorageError",
    "DomainSelectionError",
    "__version__",
    "sqlite_library",
]
