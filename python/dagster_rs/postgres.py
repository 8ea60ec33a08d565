"""PostgreSQL as users configure it, and the native core's PostgreSQL entry.

A dagster-rs instance on PostgreSQL is configured exactly as stock's (dagster-postgres's own config
schema, which Dagster resolves before the instance exists):

    storage:
      postgres:
        postgres_url: postgresql://user:pw@host:5432/db   # or postgres://, postgresql+psycopg2://,
                                                          # postgresql+psycopg://
        # or postgres_db: {username, password, hostname, db_name, port, params, scheme}
        #   (each value a string or {env: VAR})

or with the legacy per-storage keys (`run_storage`/`event_log_storage`/`schedule_storage`, module
`dagster_postgres`, classes `PostgresRunStorage`/`PostgresEventLogStorage`/
`PostgresScheduleStorage`). Dagster builds stock's storage objects from that config; the facade
reads each one's `postgres_url` (what stock's `pg_url_from_config` made of the config), and the
native core gets the same database under the plain `postgresql://` scheme its driver reads.

dagster-postgres is optional (`pip install dagster-rs[postgres]`): nothing here imports it; a
storage is recognised as PostgreSQL only once Dagster has imported `dagster_postgres` to build it.

Contract C (the native entry): `_native.DagsterInstance(root, durability, postgres_url=...,
postgres_schedules_url=..., pool_size=...)`. A build whose core has no PostgreSQL backend refuses
it (`TypeError` for the keyword it does not take, or `NotImplementedError`): the domains of that
database stay on stock dagster-postgres and are listed as such. `backend_problem` is the one
place that decides what "absent" looks like.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from dagster_rs import _native
from dagster_rs.errors import SchemaNotServedError, UnknownRevisionError
from dagster_rs.revisions import FileVerdict

if TYPE_CHECKING:
    from dagster_rs._native import DatabaseKind, Durability

# The URL schemes a PostgreSQL database is written with (libpq's two, SQLAlchemy's drivers).
SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg")

# What the native core takes: libpq's scheme, read by the Rust `postgres` crate.
NATIVE_SCHEME = "postgresql"

# The stock classes whose database the native core can serve, by storage kind.
STOCK_CLASSES = {
    "runs": "PostgresRunStorage",
    "event_index": "PostgresEventLogStorage",
    "schedules": "PostgresScheduleStorage",
}

# Domains whose PostgreSQL methods are not in the core yet (issue 16 phase 1 serves runs, config,
# scheduling; issue 17 the storage domain): their storage stays stock's, listed as such.
NOT_YET = "the event log's events and assets domains are not served natively on PostgreSQL yet"

# The event log's domains the core serves on PostgreSQL over stock's PostgresEventLogStorage,
# whose events stay stock's (`dagster_rs.storage.postgres_event_log`).
EVENT_LOG_SERVED = frozenset({"storage"})


class PostgresUrlError(ValueError):
    """A URL that does not name a PostgreSQL database the native core can open."""


def native_url(url: str) -> str:
    """`url` under the scheme the native core reads; the rest (user, password, host, port,
    database, query parameters such as `host=<socket dir>` or `sslmode`) exactly as written."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.strip().lower() not in SCHEMES:
        raise PostgresUrlError(
            f"not a PostgreSQL URL the native core reads (schemes {list(SCHEMES)}): {location(url)}"
        )
    return f"{NATIVE_SCHEME}://{rest}"


def location(url: str) -> str:
    """The URL without its password, to name the database in messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def stock_class(storage: Any) -> str | None:
    """The storage kind (`runs`, `event_index`, `schedules`) of a stock dagster-postgres storage
    object (or of one composed over it), else None. Imports nothing: a storage of that package
    exists only once Dagster has imported it."""
    module = sys.modules.get("dagster_postgres")
    if module is None:
        return None
    for kind, name in STOCK_CLASSES.items():
        cls = getattr(module, name, None)
        if cls is not None and isinstance(storage, cls):
            return kind
    return None


class BackendAbsent(Exception):
    """The native core of this build has no PostgreSQL backend."""


def backend_problem(exc: BaseException) -> str | None:
    """Why `exc`, raised by the native core asked for a PostgreSQL database, means "this build has
    no PostgreSQL backend" (then the database's domains stay on stock's code); None when it is
    anything else (a real failure of a present backend, raised as such)."""
    if isinstance(exc, TypeError) and "postgres" in str(exc):
        return f"this build's native core takes no PostgreSQL database ({exc})"
    if isinstance(exc, NotImplementedError):
        return f"this build's native core has no PostgreSQL backend ({exc})"
    return None


@dataclass(frozen=True)
class Target:
    """One PostgreSQL database as the native core is asked for it."""

    url: str
    schedules_url: str | None = None
    pool_size: int | None = None

    def keywords(self) -> dict[str, Any]:
        keywords: dict[str, Any] = {"postgres_url": native_url(self.url)}
        if self.schedules_url is not None:
            keywords["postgres_schedules_url"] = native_url(self.schedules_url)
        if self.pool_size is not None:
            keywords["pool_size"] = self.pool_size
        return keywords


def open_core(target: Target, durability: Durability, store: str) -> _native.DagsterInstance:
    """The native core of `target`, its `store` (`runs`, `schedules`, `storage`) opened: raises
    `BackendAbsent` when this build has none, else whatever the open raises."""
    try:
        core = _native.DagsterInstance(".", durability, **target.keywords())  # type: ignore[call-arg]
        getattr(core, store)
    except Exception as exc:
        problem = backend_problem(exc)
        if problem is not None:
            raise BackendAbsent(problem) from exc
        raise
    return core


# A database nobody listens for: the probe never reaches a server.
_PROBE_URL = "postgresql://dagster-rs-probe@/probe?host=/nonexistent/dagster-rs&connect_timeout=1"


@functools.cache
def native_backend_missing() -> str | None:
    """Why this build's native core serves no PostgreSQL database, or None when it has the
    backend (asked of a core for a database nobody listens for, which it does not connect to).
    Asked once per process: the build does not change under it."""
    try:
        # A core is built without connecting: its stores open on first use.
        _native.DagsterInstance(".", "full", **Target(_PROBE_URL).keywords())  # type: ignore[call-arg]
    except Exception as exc:  # noqa: BLE001 - what counts as "absent" is backend_problem's
        problem = backend_problem(exc)
        if problem is None:
            raise
        return problem
    return None


def _held(storage: Any, kind: DatabaseKind, why: str) -> FileVerdict:
    return FileVerdict(location(storage.postgres_url), kind, why, None, False, ())


# The tables whose absence makes stock's constructor create a storage's schema (stock's own
# test: `runs` for the run storage, `jobs` or `schedules` for the schedule storage).
MAIN_TABLES = {
    "runs": ("runs",),
    "schedules": ("jobs", "schedules"),
    "event_index": ("event_logs",),
}


def uncreated(storage: Any, kind: DatabaseKind) -> str | None:
    """Why the native core must not open the database of `storage`: the configuration says
    `should_autocreate_tables: false` and the storage's main table is absent. Stock then creates
    nothing (its first statement fails); the native core would create stock's schema, so the
    domains stay stock's. None when the core may open it (the tables are there, or stock would
    have created them itself)."""
    if getattr(storage, "should_autocreate_tables", True) or kind not in MAIN_TABLES:
        return None
    import sqlalchemy as sa

    # Stock's own engine (a NullPool): one connection, closed at once.
    names = set(sa.inspect(storage._engine).get_table_names())  # noqa: SLF001
    if names.intersection(MAIN_TABLES[kind]):
        return None
    return (
        "should_autocreate_tables is false and the database has no"
        f" {' or '.join(MAIN_TABLES[kind])} table (stock creates nothing there; neither does"
        " the native core)"
    )


def verdict(
    storage: Any,
    kind: DatabaseKind,
    durability: Durability,
    pool_size: int | None,
    domain: str | None = None,
) -> FileVerdict | None:
    """Whether the native core serves the database of `storage` (a stock dagster-postgres storage
    of `kind`, or one composed over it) for `domain` (an event log's: one of `EVENT_LOG_SERVED`,
    else held back): None when it does, else the verdict that leaves its domains to stock's
    code, saying why (`dagster_rs.revisions.held_back_message`)."""
    if kind == "event_index" and domain not in EVENT_LOG_SERVED:
        return _held(storage, kind, NOT_YET)
    if getattr(storage, "_token_provider", None) is not None:
        return _held(storage, kind, "auth_provider tokens are stock's engine's (no native login)")
    try:
        native_url(storage.postgres_url)
    except PostgresUrlError as exc:
        return _held(storage, kind, str(exc))
    not_created = uncreated(storage, kind)
    if not_created is not None:
        return _held(storage, kind, not_created)
    schedules = storage.postgres_url if kind == "schedules" else None
    store = {"schedules": "schedules", "event_index": "storage"}.get(kind, "runs")
    try:
        open_core(Target(storage.postgres_url, schedules, pool_size), durability, store)
    except BackendAbsent as exc:
        return _held(storage, kind, str(exc))
    except (SchemaNotServedError, UnknownRevisionError) as exc:
        # The core refused the database untouched (a revision it does not serve). Anything
        # else (a server that cannot be reached) is raised, as stock raises it: never a silent
        # change of who serves the domain.
        return _held(storage, kind, f"refused by the native core: {exc}")
    return None


__all__ = [
    "EVENT_LOG_SERVED",
    "NATIVE_SCHEME",
    "SCHEMES",
    "MAIN_TABLES",
    "BackendAbsent",
    "PostgresUrlError",
    "Target",
    "backend_problem",
    "location",
    "native_backend_missing",
    "native_url",
    "open_core",
    "stock_class",
    "uncreated",
    "verdict",
]
