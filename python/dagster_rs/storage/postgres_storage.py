"""The Rust-backed storages over a PostgreSQL database: stock dagster-postgres's classes with the
live domains' mixins in front.

Each class is composed once, from the domain mixins and stock's class of the backend, the same
way as on SQLite (`run_storage_class`, `event_log_class`): `isinstance(storage,
PostgresRunStorage)` holds, and every method no live domain serves is stock's own, over stock's
own engine (its `connect()`, `upgrade()`, data migrations, `optimize_for_webserver`). The mixins'
methods call the native core of the same database (`dagster_rs.postgres.open_core`). What the
classes share (construction, the core, the webserver's timeout, dispose, the swaps to and from
stock) is `NativePostgresStorage`, parametrized by the stock class and the native store's name.

This module imports dagster_postgres: it is imported only for a storage Dagster built from it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast
from urllib.parse import quote, unquote

from dagster._serdes import ConfigurableClassData
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage

from dagster_rs import _native
from dagster_rs.postgres import BackendAbsent, Target, location, open_core
from dagster_rs.storage.run_storage import RUN_STORAGE_DOMAINS
from dagster_rs.storage.runs_domain import RunsDomain
from dagster_rs.storage.schedule_storage import SchedulingDomain

if TYPE_CHECKING:
    from dagster_rs._native import Durability


def with_statement_timeout(url: str, millis: int) -> str:
    """`url` whose sessions run with `statement_timeout = millis`: libpq's `options` parameter
    (`-c statement_timeout=...`, after any options the URL already has), which the native
    driver passes to the server at connect. The URL, and so the native store, is another than
    the one without it: the webserver's sessions time out, no other store's in the process."""
    base, _, query = url.partition("?")
    kept, existing = [], []
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        if key == "options":
            existing.append(unquote(value))
        else:
            kept.append(pair)  # as written: the drivers decode it as before
    options = " ".join([*existing, f"-c statement_timeout={int(millis)}"])
    return f"{base}?{'&'.join([*kept, 'options=' + quote(options, safe='')])}"


def _target(url: str, store: str, pool_size: int | None) -> Target:
    """The core's database for `store`: the schedules store is asked for by its own URL."""
    return Target(url, url if store == "schedules" else None, pool_size)


class NativePostgresStorage:
    """What the Rust-backed storages of a database share, whichever stock class they stand on
    (`stock_class`) and whichever store of the native core serves them (`store_name`: `runs`,
    `schedules`): stock's construction without its table check, the core and its pool size, the
    webserver's statement timeout on the native sessions, stock's storage of the same database
    when asked for (`_stock`), and dispose. In the MRO after the domain's mixin, before stock."""

    stock_class: ClassVar[type[Any]]
    store_name: ClassVar[str]
    # Set by stock's constructor.
    postgres_url: str
    should_autocreate_tables: bool

    def __init__(
        self,
        postgres_url: str,
        core: _native.DagsterInstance,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
        *,
        pool_size: int | None = None,
        should_autocreate_tables: bool = True,
    ):
        # Stock's own construction without its table check (the storage it replaces made it):
        # a NullPool engine, no connection, for the methods stock's code keeps. The attribute
        # then says what the configuration said.
        self.stock_class.__init__(
            self,
            postgres_url,
            should_autocreate_tables=False,
            inst_data=inst_data,
            token_provider=token_provider,
        )
        self.should_autocreate_tables = should_autocreate_tables
        self._native_core = core
        self._pool_size = pool_size
        self._db_path = location(postgres_url)
        self._stock_storage: Any = None

    @property
    def store(self) -> Any:
        return getattr(self._native_core, self.store_name)

    @property
    def pool_size(self) -> int | None:
        return self._pool_size

    def optimize_for_webserver(
        self, statement_timeout: int, pool_recycle: int, max_overflow: int
    ) -> None:
        # Stock's engine (the methods stock's code keeps) as stock sets it up, and the native
        # sessions with the same statement timeout: a core of the URL with the timeout (stock
        # sets it on each new connection of its engine). The native pool has no recycle/overflow:
        # its sessions live until broken or disposed, at most `pool_size` of them.
        self.stock_class.optimize_for_webserver(self, statement_timeout, pool_recycle, max_overflow)
        url = with_statement_timeout(self.postgres_url, statement_timeout)
        durability = self._native_core.durability
        target = _target(url, self.store_name, self._pool_size)
        self._native_core = open_core(target, durability, self.store_name)  # type: ignore[arg-type]
        if self._stock_storage is not None:
            self._stock_storage.optimize_for_webserver(
                statement_timeout, pool_recycle, max_overflow
            )

    def _stock(self) -> Any:
        """Stock's storage of the same database (for arguments the core does not take), made
        on first use."""
        if self._stock_storage is None:
            this = cast(Any, self)
            stock = self.stock_class(
                self.postgres_url,
                should_autocreate_tables=False,
                inst_data=this._inst_data,  # noqa: SLF001
                token_provider=this._token_provider,  # noqa: SLF001
            )
            if this.has_instance:
                stock.register_instance(this._instance)  # noqa: SLF001
            self._stock_storage = stock
        return self._stock_storage

    def dispose(self) -> None:
        self.stock_class.dispose(self)
        self._native_core.dispose()
        if self._stock_storage is not None:
            self._stock_storage.dispose()


class RustPostgresRunStorage(RunsDomain, NativePostgresStorage, PostgresRunStorage):
    """Stock `PostgresRunStorage` of a database, the runs domain served by the native core."""

    rust_domains: frozenset[str] = frozenset({"runs"})
    stock_class = PostgresRunStorage
    store_name = "runs"


class RustPostgresScheduleStorage(SchedulingDomain, NativePostgresStorage, PostgresScheduleStorage):
    """Stock `PostgresScheduleStorage` of a database, the scheduling domain served natively."""

    rust_domains: frozenset[str] = frozenset({"scheduling"})
    stock_class = PostgresScheduleStorage
    store_name = "schedules"


@functools.cache
def run_storage_class(domains: frozenset[str]) -> type[RustPostgresRunStorage]:
    """`RustPostgresRunStorage` with the live run-storage domains' mixins first in the MRO
    (config: `ConfigDomain`), stock's methods for the others."""
    mixins = tuple(RUN_STORAGE_DOMAINS[d] for d in sorted(domains & RUN_STORAGE_DOMAINS.keys()))
    if not mixins:
        return RustPostgresRunStorage
    name = "RustPostgresRunStorage"
    attrs = {
        "__module__": __name__,
        "__qualname__": name,
        "rust_domains": frozenset({"runs"} | (domains & RUN_STORAGE_DOMAINS.keys())),
    }
    return cast(
        "type[RustPostgresRunStorage]", type(name, (*mixins, RustPostgresRunStorage), attrs)
    )


Native = TypeVar("Native", bound=NativePostgresStorage)


def rust_storage(
    cls: type[Native], storage: Any, durability: Durability, pool_size: int | None
) -> Native | None:
    """`cls` (a `NativePostgresStorage`) over the database of `storage` (stock's storage of
    `cls.stock_class`, or one composed over it), in its place: the same configuration, stock's
    disposed. None when the native core has no PostgreSQL backend (the facade has asked before,
    `verdict`: this is the swap's own guard)."""
    if type(storage) is cls and storage.pool_size == pool_size:
        return cast(Native, storage)
    url = storage.postgres_url
    try:
        core = open_core(_target(url, cls.store_name, pool_size), durability, cls.store_name)
    except BackendAbsent:
        return None
    inst_data, tokens = storage.inst_data, storage._token_provider  # noqa: SLF001
    autocreate = storage.should_autocreate_tables
    storage.dispose()
    return cls(
        url, core, inst_data, tokens, pool_size=pool_size, should_autocreate_tables=autocreate
    )


def stock_storage(storage: NativePostgresStorage) -> Any:
    """Stock's storage (`storage.stock_class`) of the database of `storage`, in its place: the
    same configuration, `storage` disposed."""
    storage.dispose()
    stock = storage.stock_class(
        storage.postgres_url,
        should_autocreate_tables=False,
        inst_data=cast(Any, storage).inst_data,
        token_provider=cast(Any, storage)._token_provider,  # noqa: SLF001
    )
    stock.should_autocreate_tables = storage.should_autocreate_tables
    return stock


def rust_run_storage(
    storage: Any, durability: Durability, domains: frozenset[str], pool_size: int | None
) -> RustPostgresRunStorage | None:
    """The Rust-backed run storage serving `domains` (see `rust_storage`)."""
    return rust_storage(run_storage_class(domains), storage, durability, pool_size)


def rust_schedule_storage(
    storage: Any, durability: Durability, domains: frozenset[str], pool_size: int | None
) -> RustPostgresScheduleStorage | None:
    """The Rust-backed schedule storage (see `rust_storage`); it has no further domains."""
    return rust_storage(RustPostgresScheduleStorage, storage, durability, pool_size)


def stock_run_storage(storage: RustPostgresRunStorage) -> PostgresRunStorage:
    return cast(PostgresRunStorage, stock_storage(storage))


def stock_schedule_storage(storage: RustPostgresScheduleStorage) -> PostgresScheduleStorage:
    return cast(PostgresScheduleStorage, stock_storage(storage))


__all__ = [
    "NativePostgresStorage",
    "RustPostgresRunStorage",
    "RustPostgresScheduleStorage",
    "run_storage_class",
    "rust_run_storage",
    "rust_schedule_storage",
    "rust_storage",
    "stock_run_storage",
    "stock_schedule_storage",
    "stock_storage",
    "with_statement_timeout",
]
