"""The event log storage over a PostgreSQL database with the storage domain in Rust: stock
dagster-postgres's `PostgresEventLogStorage` with the `StorageDomain` mixin in front.

Dynamic partitions and concurrency pools (their tables are the event log's, in the same database)
are served by the native core (`_native.StorageStore` over `EventLog::Single`); events, assets,
asset checks, watching and the storage admin (alembic, secondary indexes, data migrations) stay
stock's own code on stock's own engine, listed as held back (`dagster_rs.postgres.NOT_YET`).
`optimize_for_webserver` is stock's, then the native sessions get the same statement timeout. `isinstance(storage, PostgresEventLogStorage)` holds.

Stock's dagster-postgres semantics where they differ from its SQLite ones: `add_dynamic_partitions`
is one `INSERT ... ON CONFLICT DO NOTHING` (a stored key, or a key given twice, is no error).

This module imports dagster_postgres: it is imported only for a storage Dagster built from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from dagster_postgres.event_log import PostgresEventLogStorage

from dagster_rs.storage.postgres_storage import NativePostgresStorage, rust_storage, stock_storage
from dagster_rs.storage.storage_domain import StorageDomain

if TYPE_CHECKING:
    from dagster_rs._native import Durability

# The domains of the event log storage this composition serves in Rust.
SERVED = frozenset({"storage"})


def _as_stored(key: Any) -> Any:
    """A key as stock's psycopg2 stores it in the `text` column (stock checks no key type):
    a bool as `true`/`false`, bytes as bytea's hex text; the others are bound as they are (an
    int or a float as its text, None failing the NOT NULL column)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(key).hex()
    return key


class PostgresStorageDomain(StorageDomain):
    """`StorageDomain` as it composes over stock's PostgreSQL event log: the partitions and pools
    in Rust; what `StorageDomain` serves besides them on SQLite (the storage admin of the index
    shard) is stock dagster-postgres's here, on its engine."""

    # Stock's admin of the event log's database (its own alembic config, its secondary-index
    # cache): the methods `StorageDomain` overrides for the SQLite index shard, given back.
    alembic_version = PostgresEventLogStorage.alembic_version
    has_secondary_index = PostgresEventLogStorage.has_secondary_index
    enable_secondary_index = PostgresEventLogStorage.enable_secondary_index
    _apply_migration = PostgresEventLogStorage._apply_migration  # noqa: SLF001

    def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        # Stock dagster-postgres's override: nothing for no keys (its values() needs one row),
        # then one upsert; a one-shot iterator's keys are added (stock's list() of it).
        if not partition_keys:
            return
        self._storage.add_partitions(
            partitions_def_name, [_as_stored(key) for key in partition_keys]
        )


class RustPostgresEventLogStorage(
    PostgresStorageDomain, NativePostgresStorage, PostgresEventLogStorage
):
    """Stock `PostgresEventLogStorage` of a database, the storage domain served natively (the
    shared construction, pool size, webserver timeout and dispose: `NativePostgresStorage`)."""

    rust_domains: frozenset[str] = SERVED
    stock_class = PostgresEventLogStorage
    store_name = "storage"


def rust_event_log_storage(
    storage: Any, durability: Durability, pool_size: int | None
) -> RustPostgresEventLogStorage | None:
    """The event log storage over the database of `storage` (a stock `PostgresEventLogStorage`
    or one composed over it) with the storage domain in Rust; None when the native core has no
    PostgreSQL backend."""
    return rust_storage(RustPostgresEventLogStorage, storage, durability, pool_size)


def stock_event_log_storage(storage: RustPostgresEventLogStorage) -> PostgresEventLogStorage:
    return cast(PostgresEventLogStorage, stock_storage(storage))


def swap(
    storages: dict[str, Any], serve: frozenset[str], durability: str, pool_size: int | None
) -> frozenset[str]:
    """Put the PostgreSQL event log storage in `storages` in Rust's hands when the storage
    domain is in `serve`, else give it back to stock's class; the domains it serves in Rust."""
    storage = storages.get("event_storage")
    if not isinstance(storage, PostgresEventLogStorage):
        return frozenset()
    if "storage" in serve:
        rust = rust_event_log_storage(storage, cast("Durability", durability), pool_size)
        if rust is not None:
            storages["event_storage"] = rust
            return SERVED
        return frozenset()
    if isinstance(storage, RustPostgresEventLogStorage):
        storages["event_storage"] = stock_event_log_storage(storage)
    return frozenset()


__all__ = [
    "SERVED",
    "PostgresStorageDomain",
    "RustPostgresEventLogStorage",
    "rust_event_log_storage",
    "stock_event_log_storage",
    "swap",
]
