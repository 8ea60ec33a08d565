"""`RustRunStorage`: Dagster's `RunStorage` over stock's SQLite `runs.db`, the runs domain's
methods (`RunsDomain`) served by the native `RunStore`.

This module holds what is SQLite's: the file, the DB-API bridge stock's code runs over, stock's
migrations of the file. The runs domain itself is `dagster_rs.storage.runs_domain`, shared with
the PostgreSQL composition (`dagster_rs.storage.postgres_storage`). The
config domain's methods (heartbeats, daemon cursors, the storage id) are `ConfigDomain`'s when that
domain is live (`run_storage_class`), else stock `SqlRunStorage`'s over the core's connections.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import dagster._check as check
from dagster._config import StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.storage.runs.base import RunStorage
from dagster._core.storage.runs.migration import (
    OPTIONAL_DATA_MIGRATIONS,
    REQUIRED_DATA_MIGRATIONS,
)
from dagster._core.storage.runs.sql_run_storage import (
    SqlRunStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.sql import AlembicVersion
from dagster._core.storage.sqlite import create_db_conn_string
from dagster._daemon.types import DaemonHeartbeat
from dagster._serdes import (
    ConfigurableClass,
    ConfigurableClassData,
)
from dagster._utils import PrintFn, mkdir_p
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from dagster_rs import _native
from dagster_rs.core import core_for
from dagster_rs.storage.config_domain import ConfigDomain

# The runs domain's helpers, where they were before the domain had a module of its own.
from dagster_rs.storage.runs_domain import RunsDomain, _row_to_run, backfill_spec, run_spec

RUNS_DB = "runs.db"


class RustRunStorage(RunsDomain, RunStorage, ConfigurableClass):
    """Run storage over `<base_dir>/runs.db` in stock Dagster's schema, read and written in Rust.

    Configurable like `SqliteRunStorage` (`base_dir`), and built by `DagsterRsSqliteStorage` and
    the `dagster_rs.DagsterInstance` facade when the runs domain is live.
    """

    # The run storage's domains this class serves in Rust (`run_storage_class` adds config).
    rust_domains: frozenset[str] = frozenset({"runs"})

    def __init__(
        self,
        base_dir: str,
        inst_data: ConfigurableClassData | None = None,
        durability: str = "full",
    ):
        self._base_dir = check.str_param(base_dir, "base_dir")
        # Stock `SqliteRunStorage`'s attribute, the same text for the same file: Dagster's code
        # and its users' read it to find the database (`tests/test_private_attributes.py`).
        self._conn_string = create_db_conn_string(base_dir, "runs")
        self._inst_data = check.opt_inst_param(inst_data, "inst_data", ConfigurableClassData)
        self._durability = durability
        self._db_path = os.path.join(base_dir, RUNS_DB)
        self._native: _native.RunStore | None = None
        # The core of this file: its stores open on first use, so building it touches nothing.
        self._native_core = core_for(runs_db=self._db_path, durability=durability)  # type: ignore[arg-type]
        self._bridge: Engine | None = None
        self._stock_storage: SqliteRunStorage | None = None
        super().__init__()

    # -- ConfigurableClass -------------------------------------------------------------------

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> RustRunStorage:
        return cls(base_dir=config_value["base_dir"], inst_data=inst_data)

    # -- the native store, opened on first use ----------------------------------------------

    @property
    def base_dir(self) -> str:
        return self._base_dir

    @property
    def db_path(self) -> str:
        return self._db_path

    @property
    def durability(self) -> str:
        return self._durability

    @property
    def store(self) -> _native.RunStore:
        # Opening is deferred so that an instance which switches the runs domain off never
        # touches the files from Rust at all.
        if self._native is None:
            mkdir_p(self._base_dir)
            self._native = self._native_core.runs
        return self._native

    def _stock(self) -> SqliteRunStorage:
        """Stock's storage of the same file, for the calls whose arguments the core does not
        take (values that are not text where stock binds whatever it is given): it answers, or
        raises, as it always has. Built on first use; building it touches nothing."""
        if self._stock_storage is None:
            stock = SqliteRunStorage(self._conn_string, self._inst_data)
            if self.has_instance:
                stock.register_instance(self._instance)
            self._stock_storage = stock
        return self._stock_storage

    # -- the config domain, stock's code (`ConfigDomain` serves these when the domain is live) --
    #
    # Daemon heartbeats, daemon cursors (kvs) and the run storage's id are stock
    # `SqlRunStorage`'s methods here, run over the core's connections to the same file.

    def add_daemon_heartbeat(self, daemon_heartbeat: DaemonHeartbeat) -> None:
        SqlRunStorage.add_daemon_heartbeat(self, daemon_heartbeat)  # type: ignore[arg-type]

    def get_daemon_heartbeats(self) -> Mapping[str, DaemonHeartbeat]:
        return SqlRunStorage.get_daemon_heartbeats(self)  # type: ignore[arg-type]

    def wipe_daemon_heartbeats(self) -> None:
        SqlRunStorage.wipe_daemon_heartbeats(self)  # type: ignore[arg-type]

    def get_cursor_values(self, keys: set[str]) -> Mapping[str, str]:
        return SqlRunStorage.get_cursor_values(self, keys)  # type: ignore[arg-type]

    def set_cursor_values(self, pairs: Mapping[str, str]) -> None:
        SqlRunStorage.set_cursor_values(self, pairs)  # type: ignore[arg-type]

    def get_run_storage_id(self) -> str:
        return SqlRunStorage.get_run_storage_id(self)  # type: ignore[arg-type]

    # -- connections for stock's code (the DB-API bridge) ----------------------------------

    def _engine(self) -> Engine:
        if self._bridge is None:
            store = self.store
            self._bridge = create_engine(
                create_db_conn_string(self._base_dir, "runs"),
                creator=store.connect,
                # The core pools the SQLite connections; SQLAlchemy returns each one at once.
                poolclass=NullPool,
            )
        return self._bridge

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A SQLAlchemy connection in a transaction, as stock `SqliteRunStorage.connect`."""
        with self._engine().connect() as conn:
            with conn.begin():
                yield conn

    def fetchall(self, query: Any) -> Sequence[Any]:
        return SqlRunStorage.fetchall(self, query)  # type: ignore[arg-type]

    def fetchone(self, query: Any) -> Any | None:
        return SqlRunStorage.fetchone(self, query)  # type: ignore[arg-type]

    # -- data migrations and lifecycle --------------------------------------------------------

    def _pending(self, migrations: Mapping[str, Any], force: bool) -> bool:
        return force or any(not self.has_built_index(name) for name in migrations)

    def _run_stock_migrations(
        self, optional: bool, print_fn: PrintFn | None, force_rebuild_all: bool
    ) -> None:
        # Data migrations rewrite rows from deserialized runs; they are Dagster's own Python and
        # run through a stock storage on the same file. Files the store created are marked done.
        # Stock's migrations rewrite many rows on a connection of their own: close the pooled
        # ones first so no idle connection of the core holds a read snapshot through them (the
        # store reopens on its next call).
        self.dispose()
        stock = SqliteRunStorage.from_local(self._base_dir)
        try:
            if optional:
                stock.optimize(print_fn, force_rebuild_all)
            else:
                stock.migrate(print_fn, force_rebuild_all)
        finally:
            stock.dispose()

    def migrate(self, print_fn: PrintFn | None = None, force_rebuild_all: bool = False) -> None:
        if self._pending(REQUIRED_DATA_MIGRATIONS, force_rebuild_all):
            self._run_stock_migrations(False, print_fn, force_rebuild_all)
        elif print_fn:
            for name in REQUIRED_DATA_MIGRATIONS:
                print_fn(f"Skipping already applied data migration: {name}")

    def optimize(self, print_fn: PrintFn | None = None, force_rebuild_all: bool = False) -> None:
        if self._pending(OPTIONAL_DATA_MIGRATIONS, force_rebuild_all):
            self._run_stock_migrations(True, print_fn, force_rebuild_all)
        elif print_fn:
            for name in OPTIONAL_DATA_MIGRATIONS:
                print_fn(f"Skipping already applied data migration: {name}")

    def upgrade(self) -> None:
        """Stock's `SqliteRunStorage.upgrade` of the same file (`dagster instance migrate`):
        0.6.6's move of a top-level `runs.db` into `history/`, then alembic's upgrade to this
        Dagster's head. Stock's own code does it, with the core's connections closed; the store
        opens the upgraded file on its next call. The data migrations are `migrate`'s, which
        `DagsterInstance.upgrade` runs next, as for stock's storage."""
        self.dispose()
        stock = SqliteRunStorage(self._conn_string, self._inst_data)
        try:
            stock.upgrade()
        finally:
            stock.dispose()

    def alembic_version(self) -> AlembicVersion:
        return self.store.alembic_version()

    def optimize_for_webserver(
        self, statement_timeout: int, pool_recycle: int, max_overflow: int
    ) -> None:
        # Connections are already pooled per process; SQLite has no statement timeout to set.
        pass

    def dispose(self) -> None:
        # Every store of this file the core handed out (runs, config) closes its idle connections.
        self._native_core.dispose()
        if self._stock_storage is not None:
            self._stock_storage.dispose()


# Dagster asks `isinstance(run_storage, SqlRunStorage)` before using what every SQL run storage
# has, and `isinstance(..., SqliteRunStorage)` to know the file is SQLite; `RustRunStorage` serves
# stock's SQLite file, so it answers both as stock's storage of that file does (the event log and
# schedule storages subclass stock's SQLite classes for the same reason). It is registered, not
# derived, so that no SQL method of stock's is inherited unnoticed. What the registration opens,
# site by site (dagster 1.13.27), each on a method `RustRunStorage` defines:
# - telemetry's `run_storage_id` and the webserver's index page (`__INSTANCE_ID__`):
#   `get_run_storage_id` (config domain, or stock's method over the core's connections);
# - `dagster run migrate-repository`: `replace_job_origin` (runs domain); it refused before;
# - `dagster instance migrate --bigint-migration`: SQLite's "no need to migrate run storage";
# - the data migrations of `runs/migration.py` (`add_run_stats`, `migrate_run_repo_tags`, ...):
#   `connect()` / `fetchall()`, the core's connections (DB-API bridge) in stock's transaction.
# `swaps.py` tests `RustRunStorage` before `SqliteRunStorage`, so the facade's swap is unchanged.
SqliteRunStorage.register(RustRunStorage)


# The domains besides runs that the run storage serves, each by its mixin.
RUN_STORAGE_DOMAINS: dict[str, type] = {"config": ConfigDomain}


@functools.cache
def run_storage_class(domains: frozenset[str]) -> type[RustRunStorage]:
    """`RustRunStorage` with the methods of the live run-storage domains in Rust: their mixins
    first in the MRO, stock's methods (over the core's connections) for the others."""
    mixins = tuple(RUN_STORAGE_DOMAINS[d] for d in sorted(domains & RUN_STORAGE_DOMAINS.keys()))
    if not mixins:
        return RustRunStorage
    # Named as the base: Dagster and logs show the class name, the domains are an attribute.
    name = "RustRunStorage"
    attrs = {
        "__module__": __name__,
        "__qualname__": name,
        "rust_domains": frozenset({"runs"} | (domains & RUN_STORAGE_DOMAINS.keys())),
    }
    return cast("type[RustRunStorage]", type(name, (*mixins, RustRunStorage), attrs))


__all__ = [
    "RUN_STORAGE_DOMAINS",
    "RustRunStorage",
    "_row_to_run",
    "backfill_spec",
    "run_spec",
    "run_storage_class",
]
