"""Exceptions dagster-rs raises: its storage failures, each also an instance of the class stock
Dagster raises in the same situation, and the errors stock has no class of its own for.

Stock storage reaches SQLite through SQLAlchemy, so a failing file (locked past the busy timeout,
read-only, full disk, corrupt, not a database) raises `sqlalchemy.exc.OperationalError` /
`DatabaseError` / ... wrapping the `sqlite3` exception CPython raised for SQLite's result code.
The core raises the same pair: a `sqlite3` exception of the class CPython picks for the code
(carrying SQLite's message, `sqlite_errorcode` and `sqlite_errorname`), as `.orig` and
`__cause__` of an exception that is both the SQLAlchemy class and `DagsterRsStorageError`.
`src/errors.rs` maps every core failure to one of the factories below.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy.exc as sa_exc
from alembic.util.exc import CommandError
from dagster._core.errors import DagsterError
from dagster_shared.check import ParameterCheckError
from dagster_shared.serdes.errors import DeserializationError


class DagsterRsStorageError(DagsterError):
    """The storage files cannot be used: a SQLite failure, an unknown or insufficient schema, a
    read-only or corrupt database. SQLite failures are also the SQLAlchemy class stock raises."""


class UnknownRevisionError(DagsterRsStorageError, CommandError):
    """A file at an alembic revision this Dagster does not know (written by a newer one). Stock
    notices only when it asks alembic about it (`upgrade`, `dagster instance migrate`): alembic's
    `CommandError` ("Can't locate revision ..."). dagster-rs refuses such a file before it
    touches it."""


class SchemaNotServedError(DagsterRsStorageError):
    """The native path does not serve this file as it is (it lacks a table or column the
    native path reads, at an older revision or without one); stock's code does. Raised before
    anything is written; `path` names the file (a run shard: the facade may serve that run
    with stock's code, see `inspect_database`)."""

    path: str | None = None


class CorruptRecordError(DeserializationError, ValueError):
    """A stored body is not a valid serialized Dagster object.

    Subclasses the classes stock Dagster lets escape in that case (`DeserializationError` for a
    wrong shape, `ValueError` for malformed JSON), so existing handlers still catch it.
    """


class _OnFile(Exception):
    """The database file a storage failure happened on, shown after SQLAlchemy's message."""

    path: str | None = None

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n[database: {self.path}]" if self.path else text

    def __reduce__(self) -> Any:
        reduced = super().__reduce__()
        # SQLAlchemy's exceptions rebuild from their arguments and a state dict; keep the path.
        if isinstance(reduced, tuple) and len(reduced) >= 3 and isinstance(reduced[2], dict):
            return (*reduced[:2], {**reduced[2], "path": self.path}, *reduced[3:])
        return reduced


class StorageOperationalError(_OnFile, DagsterRsStorageError, sa_exc.OperationalError):
    """Locked past the busy timeout, read-only, disk full, I/O error, cannot open, no such table."""


class StorageDatabaseError(_OnFile, DagsterRsStorageError, sa_exc.DatabaseError):
    """Corrupt ("database disk image is malformed") or not a database."""


class StorageIntegrityError(_OnFile, DagsterRsStorageError, sa_exc.IntegrityError):
    """A constraint SQLite enforced, where no domain maps it to a Dagster error."""


class StorageDataError(_OnFile, DagsterRsStorageError, sa_exc.DataError):
    """A value too big for SQLite."""


class StorageInternalError(_OnFile, DagsterRsStorageError, sa_exc.InternalError):
    """SQLite's internal error."""


class StorageInterfaceError(_OnFile, DagsterRsStorageError, sa_exc.InterfaceError):
    """SQLite reported misuse of its interface."""


class TextValueError(DagsterRsStorageError, ValueError):
    """A text the database cannot hold (PostgreSQL's text and NUL), refused before anything is
    sent, as psycopg2 refuses it for stock (a `ValueError`)."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def text_value_failure(path: str, message: str) -> TextValueError:
    return TextValueError(path, message)


class StorageProgrammingError(_OnFile, DagsterRsStorageError, sa_exc.ProgrammingError):
    pass


class StorageNotSupportedError(_OnFile, DagsterRsStorageError, sa_exc.NotSupportedError):
    pass


class StorageConnectError(StorageOperationalError):
    """No connection to the PostgreSQL server could be made, after stock's retries. Where
    dagster-postgres is installed, the class raised is also its `DagsterPostgresException`
    (`connect_failure`), what stock raises then."""


_CONNECT_ERROR: list[type[StorageConnectError]] = []


def connect_failure(path: str, message: str) -> StorageConnectError:
    if not _CONNECT_ERROR:
        try:
            from dagster_postgres.utils import DagsterPostgresException
        except ImportError:
            _CONNECT_ERROR.append(StorageConnectError)
        else:
            # Named in this module, so a pickled exception (multiprocessing) finds its class.
            cls = type(
                "PostgresConnectError",
                (StorageConnectError, DagsterPostgresException),
                {"__module__": __name__, "__doc__": StorageConnectError.__doc__},
            )
            globals()["PostgresConnectError"] = cls
            _CONNECT_ERROR.append(cls)
    orig = Exception(message)
    exc = _CONNECT_ERROR[0]("", None, orig)  # type: ignore[call-arg]
    exc.path = path
    exc.__cause__ = orig
    return exc


class StoredValueError(DagsterRsStorageError, ValueError, TypeError, ParameterCheckError):
    """A column holds a value of a type its reader cannot take (a blob where text is stored, a
    text id). Stock lets whatever its reader raised escape, by column: `ValueError` or
    `TypeError` (a timestamp), `ParameterCheckError` (a body that is not text, refused by
    `deserialize_value`); this is all of them."""

    path: str | None = None


_SQLALCHEMY_CLASSES: dict[str, type[_OnFile]] = {
    "OperationalError": StorageOperationalError,
    "DatabaseError": StorageDatabaseError,
    "IntegrityError": StorageIntegrityError,
    "DataError": StorageDataError,
    "InternalError": StorageInternalError,
    "InterfaceError": StorageInterfaceError,
    "ProgrammingError": StorageProgrammingError,
    "NotSupportedError": StorageNotSupportedError,
}

# CPython's names for SQLite result codes (its `sqlite_errorname`), from the module's constants:
# the primary codes and their extended codes (`<PRIMARY>_<detail>`); the authorizer and limit
# constants share the `SQLITE_` prefix but none of these stems.
_PRIMARY = (
    "ABORT AUTH BUSY CANTOPEN CONSTRAINT CORRUPT DONE EMPTY ERROR FORMAT FULL INTERNAL INTERRUPT "
    "IOERR LOCKED MISMATCH MISUSE NOLFS NOMEM NOTADB NOTFOUND NOTICE OK PERM PROTOCOL RANGE "
    "READONLY ROW SCHEMA TOOBIG WARNING"
).split()
_ERROR_NAMES: dict[int, str] = {
    value: name
    for name, value in vars(sqlite3).items()
    if isinstance(value, int)
    and any(name == f"SQLITE_{p}" or name.startswith(f"SQLITE_{p}_") for p in _PRIMARY)
}


def sqlite3_exception(class_name: str, message: str, code: int | None) -> sqlite3.Error:
    """`sqlite3.<class_name>(message)` as CPython raises it: with `sqlite_errorcode` and
    `sqlite_errorname` when SQLite reported the failure (`code`: its extended result code)."""
    exc = getattr(sqlite3, class_name)(message)
    if code is not None:
        exc.sqlite_errorcode = code
        exc.sqlite_errorname = _ERROR_NAMES.get(code, "unknown error")
    return exc


def sqlite_failure(
    class_name: str, path: str, statement: str | None, message: str, code: int
) -> sa_exc.DBAPIError:
    """The exception for a SQLite failure: `sqlite3.<class_name>(message)` with CPython's code
    attributes, wrapped as SQLAlchemy's pysqlite dialect wraps it, chained as it chains it."""
    orig = sqlite3_exception(class_name, message, code)
    exc = _SQLALCHEMY_CLASSES[class_name](statement or "", None, orig)  # type: ignore[call-arg]
    exc.path = path
    exc.__cause__ = orig
    assert isinstance(exc, sa_exc.DBAPIError)
    return exc


def schema_not_served(path: str, message: str) -> SchemaNotServedError:
    exc = SchemaNotServedError(message)
    exc.path = path
    return exc


def stored_value_failure(path: str, statement: str | None, detail: str) -> StoredValueError:
    exc = StoredValueError(f"{path}: {detail}" + (f" [SQL: {statement}]" if statement else ""))
    exc.path = path
    return exc


_OS_CLASSES: dict[type[OSError], type[OSError]] = {}


def os_failure(path: str, code: int | None, message: str) -> OSError:
    """A file-system failure (creating the storage directory, listing shards): the `OSError`
    subclass Python raises for the errno (`PermissionError`, ...), also a `DagsterRsStorageError`."""
    base = type(OSError(code, "")) if code is not None else OSError
    cls = _OS_CLASSES.get(base)
    if cls is None:
        cls = type(f"Storage{base.__name__}", (DagsterRsStorageError, base), {})
        cls.__module__ = __name__
        _OS_CLASSES[base] = cls
    exc = cls(code, f"{message}", path) if code is not None else cls(f"{path}: {message}")
    return exc


__all__ = [
    "CorruptRecordError",
    "DagsterRsStorageError",
    "StorageConnectError",
    "StorageDataError",
    "StorageDatabaseError",
    "StorageIntegrityError",
    "StorageInterfaceError",
    "StorageInternalError",
    "SchemaNotServedError",
    "StorageNotSupportedError",
    "StorageOperationalError",
    "StorageProgrammingError",
    "StoredValueError",
    "TextValueError",
    "UnknownRevisionError",
]
