"""The storage domain's methods of the event log storage (dynamic partitions, concurrency
pools, storage admin), served by the native `StorageStore`.

`StorageDomain` is mixed into the event log storage class when the domain is live
(`dagster_rs.storage.event_log_storage.event_log_class`); without it, the same methods are stock
`SqlEventLogStorage`'s over the core's connections.

Stock's public methods keep their Python logic (argument checks, cursors, `has_more`, the
records they build); every statement, and every helper of stock's that runs one, is the core's.
Two things differ on purpose (ARCHITECTURE.md, "storage"): each pool operation that writes is one
transaction in the core, so claims and frees are atomic across processes; and a run that ends
(its PIPELINE_SUCCESS / FAILURE / CANCELED event stored here) gives back its slots and its place
in the queues at once, as stock's run monitoring daemon only does after
`free_slots_after_run_end_seconds`, if configured.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import dagster._check as check
import sqlalchemy.exc
from dagster._core.assets import AssetDetails
from dagster._core.definitions.events import AssetKey
from dagster._core.errors import DagsterInvalidInvocationError
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.base import PoolLimit
from dagster._core.storage.event_log.migration import (
    ASSET_KEY_INDEX_COLS,
    SECONDARY_INDEX_ASSET_KEY,
)
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.types.pagination import PaginatedResults, StorageIdCursor
from dagster._serdes import deserialize_value, serialize_value
from dagster._time import utc_datetime_from_naive
from dagster._utils.concurrency import (
    ClaimedSlotInfo,
    ConcurrencyClaimStatus,
    ConcurrencyKeyInfo,
    ConcurrencySlotStatus,
    PendingStepInfo,
    get_max_concurrency_limit_value,
)
from sqlalchemy.exc import ArgumentError
from sqlalchemy.util import is_non_string_iterable
from tqdm import tqdm

from dagster_rs import _native, compat
from dagster_rs.storage.convert import naive_utc_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from dagster._core.storage.sql import AlembicVersion
    from sqlalchemy import Table

    from dagster_rs._native import AssetIndexColumnsSpec, ClaimRowSpec

    PrintFn = Callable[[Any], None]

# The events that end a run: its slots and queued steps are released when one is stored.
_RUN_ENDED = frozenset(
    {
        DagsterEventType.PIPELINE_SUCCESS,
        DagsterEventType.PIPELINE_FAILURE,
        DagsterEventType.PIPELINE_CANCELED,
    }
)


def _naive(text: str | None) -> datetime | None:
    """A stored DateTime as stock's SQLAlchemy reads it back: naive, as written."""
    return datetime.fromisoformat(text) if text else None


def _claim_status(concurrency_key: str, row: ClaimRowSpec) -> ConcurrencyClaimStatus:
    """Stock's claim status of a step from its pending row (priority 0 reads back as None)."""
    if not row["pending"]:
        return ConcurrencyClaimStatus(
            concurrency_key=concurrency_key,
            slot_status=ConcurrencySlotStatus.BLOCKED,
            priority=None,
            assigned_timestamp=None,
            enqueued_timestamp=None,
        )
    return ConcurrencyClaimStatus(
        concurrency_key=concurrency_key,
        slot_status=(
            ConcurrencySlotStatus.CLAIMED if row["claimed"] else ConcurrencySlotStatus.BLOCKED
        ),
        priority=row["priority"] or None,
        assigned_timestamp=_naive(row["assigned_timestamp"]),
        enqueued_timestamp=_naive(row["enqueued_timestamp"]),
    )


class StorageDomain:
    """Dynamic partitions, concurrency pools and the storage admin, in Rust."""

    _native_core: _native.DagsterInstance
    _instance: Any
    has_instance: bool

    @property
    def _storage(self) -> _native.StorageStore:
        return self._native_core.storage

    # -- capability gates (cached per storage object, as stock caches them) -----------------

    @cached_property
    def supports_global_concurrency_limits(self) -> bool:
        return self._storage.tables()["concurrency_limits"]

    @cached_property
    def has_concurrency_limits_table(self) -> bool:
        return self._storage.tables()["concurrency_limits"]

    @cached_property
    def has_default_pool_limit_col(self) -> bool:
        return self._storage.tables()["pool_default_column"]

    def _check_partitions_table(self) -> None:
        if not self._storage.tables()["dynamic_partitions"]:
            raise DagsterInvalidInvocationError(
                "Using dynamic partitions definitions requires the dynamic partitions table, which"
                " currently does not exist. Add this table by running `dagster"
                " instance migrate`."
            )

    # -- dynamic partitions (a missing table raises stock's error from the core) -------------
    # Stored keys read back as text (the column's affinity), or bytes where bytes were added:
    # stock checks no key type.

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        return cast("list[str]", self._storage.partitions(partitions_def_name))

    def get_paginated_dynamic_partitions(
        self, partitions_def_name: str, limit: int, ascending: bool, cursor: str | None = None
    ) -> PaginatedResults[str]:
        last_storage_id = StorageIdCursor.from_cursor(cursor).storage_id if cursor else None
        if compat.stock_pages_partitions_one_past():
            # one past the page, so an exactly-full page does not report a next page
            rows = self._storage.partition_page(
                partitions_def_name, last_storage_id, ascending, limit + 1
            )
            has_more = len(rows) > limit
            rows = rows[:limit]
        else:
            # This stock (before 1.13.26) reads `limit` rows (SQLite: none past a negative
            # limit) and reports more whenever it got exactly `limit`.
            rows = self._storage.partition_page(
                partitions_def_name, last_storage_id, ascending, limit
            )
            has_more = len(rows) == limit
        if rows:
            next_cursor = StorageIdCursor(storage_id=rows[-1]["id"]).to_string()
        elif cursor:
            next_cursor = cursor
        else:
            next_cursor = StorageIdCursor(storage_id=-1).to_string()
        return PaginatedResults(
            results=[cast("str", row["partition"]) for row in rows],
            cursor=next_cursor,
            has_more=has_more,
        )

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        return self._storage.has_partition(partitions_def_name, partition_key)

    def get_existing_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> AbstractSet[str]:
        stored = self._storage.existing_partitions(partitions_def_name, list(set(partition_keys)))
        return cast("set[str]", set(stored))

    def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        if not is_non_string_iterable(partition_keys):
            # stock's `partition.in_(partition_keys)`
            raise ArgumentError(
                "IN expression list, SELECT construct, or bound parameter object expected, got"
                f" {partition_keys!r}."
            )
        self._storage.add_partitions(partitions_def_name, list(partition_keys))

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        self._storage.delete_partition(partitions_def_name, partition_key)

    # -- pool limits -----------------------------------------------------------------------

    def _reconcile_concurrency_limits_from_slots(self) -> None:
        self._storage.reconcile_limits()

    def _has_rows(self, table: Table) -> bool:
        return self._storage.has_rows(table.name)

    def set_concurrency_slots(self, concurrency_key: str, num: int) -> None:
        max_limit = get_max_concurrency_limit_value()
        if num > max_limit:
            raise DagsterInvalidInvocationError(
                f"Cannot have more than {max_limit} slots per concurrency key."
            )
        if num < 0:
            raise DagsterInvalidInvocationError("Cannot have a negative number of slots.")
        if not isinstance(concurrency_key, str):
            self._bind_pool_name(concurrency_key)
        if isinstance(num, float) and math.isnan(num):
            # `sqlite3` binds NaN as NULL: stock's limit upsert fails on the NOT NULL column,
            # after reconciling (its limit row is rolled back).
            self._storage.reconcile_limits()
            raise sqlalchemy.exc.IntegrityError(
                None,
                None,
                sqlite3.IntegrityError("NOT NULL constraint failed: concurrency_limits.limit"),
            )
        if not isinstance(num, int) and not (isinstance(num, float) and num.is_integer()):
            # stock fails here in `range(existing, num)`, after reconciling (its limit row is
            # rolled back); a whole float is taken as its int
            self._storage.reconcile_limits()
            raise TypeError(f"'{type(num).__name__}' object cannot be interpreted as an integer")
        self._storage.set_slots(concurrency_key, int(num))

    def _bind_pool_name(self, concurrency_key: Any) -> None:
        """A pool name that is not a str, in stock's limit upsert (after its reconciliation):
        None fails the NOT NULL column, an unbindable value `sqlite3`'s binding, as they fail
        there. An int, a float or bytes stock stores as the name, and its own pool reads then
        fail on it: the core takes text names only, so those raise `TypeError` and store
        nothing (a difference on purpose, ARCHITECTURE.md, "Errors")."""
        if concurrency_key is None:
            self._storage.reconcile_limits()
            raise sqlalchemy.exc.IntegrityError(
                None,
                None,
                sqlite3.IntegrityError(
                    "NOT NULL constraint failed: concurrency_limits.concurrency_key"
                ),
            )
        if not isinstance(concurrency_key, (int, float, bytes)):
            self._storage.reconcile_limits()
            raise sqlalchemy.exc.ProgrammingError(
                None,
                None,
                sqlite3.ProgrammingError(
                    f"Error binding parameter 1: type '{type(concurrency_key).__name__}' is not"
                    " supported"
                ),
            )

    def delete_concurrency_limit(self, concurrency_key: str) -> None:
        self._storage.delete_limit(concurrency_key)

    def initialize_concurrency_limit_to_default(self, concurrency_key: str) -> bool:
        if not self.has_concurrency_limits_table:
            return False
        if not self.has_instance:
            self._storage.reconcile_limits()
            return False
        default_limit = self._instance.global_op_concurrency_default_limit
        self._storage.initialize_to_default(concurrency_key, default_limit)
        return True

    def _upsert_and_lock_limit_row(
        self, conn: Any, concurrency_key: str, num: int, has_default_pool_limit_col: bool
    ) -> None:
        # A step of stock's `set_concurrency_slots` transaction; here a transaction of its own
        # (`conn` is stock's connection, unused: nothing of stock's calls this any more).
        self._storage.upsert_limit(concurrency_key, num)

    def _allocate_concurrency_slots(self, conn: Any, concurrency_key: str, num: int) -> list[str]:
        # As `_upsert_and_lock_limit_row`: a transaction of its own.
        return [concurrency_key] * self._storage.allocate_slots(concurrency_key, num)

    def get_concurrency_keys(self) -> set[str]:
        return set(self._storage.concurrency_keys())

    def get_pool_limits(self) -> Sequence[PoolLimit]:
        return [
            PoolLimit(
                name=row["concurrency_key"],
                limit=row["limit"],
                from_default=row["using_default_limit"],
            )
            for row in self._storage.pool_limits()
        ]

    def get_concurrency_info(self, concurrency_key: str) -> ConcurrencyKeyInfo:
        return self._concurrency_infos([concurrency_key])[concurrency_key]

    def get_concurrency_infos(
        self, concurrency_keys: Sequence[str]
    ) -> Mapping[str, ConcurrencyKeyInfo]:
        return self._concurrency_infos(concurrency_keys)

    def _concurrency_infos(
        self, concurrency_keys: Sequence[str]
    ) -> Mapping[str, ConcurrencyKeyInfo]:
        # Under its own name: a stock before 1.13.22 has no `get_concurrency_infos`, so the
        # public batch read is removed there (below), and the one-key read still uses this.
        keys = list(dict.fromkeys(concurrency_keys))
        if not keys:
            return {}
        for key in keys:
            if isinstance(key, (int, float, bytes, type(None))):
                # Stock binds such a key (its read runs), then fails building the key's info.
                check.str_param(key, "concurrency_key")
        rows = self._storage.pool_rows(keys)
        slots_by_key: dict[str, list[Any]] = defaultdict(list)
        for slot in rows["slots"]:
            slots_by_key[slot["concurrency_key"]].append(slot)
        pending_by_key: dict[str, list[Any]] = defaultdict(list)
        for step in rows["pending_steps"]:
            pending_by_key[step["concurrency_key"]].append(step)
        limits_by_key = {
            row["concurrency_key"]: (row["limit"], row["using_default_limit"])
            for row in rows["limits"]
        }
        has_limits_table = self.has_concurrency_limits_table
        infos = {}
        for key in keys:
            key_slots = slots_by_key[key]
            slot_count = len([slot for slot in key_slots if not slot["deleted"]])
            limit: int | None = slot_count
            using_default = False
            if has_limits_table:
                if key in limits_by_key:
                    limit, using_default = limits_by_key[key]
                elif not slot_count:
                    limit = self._instance.global_op_concurrency_default_limit
                    using_default = True
            infos[key] = ConcurrencyKeyInfo(
                concurrency_key=key,
                slot_count=slot_count,
                claimed_slots=[
                    ClaimedSlotInfo(run_id=slot["run_id"], step_key=slot["step_key"])
                    for slot in key_slots
                    if slot["run_id"]
                ],
                pending_steps=[
                    PendingStepInfo(
                        run_id=step["run_id"],
                        step_key=step["step_key"],
                        enqueued_timestamp=utc_datetime_from_naive(
                            datetime.fromisoformat(step["create_timestamp"])
                        ),
                        assigned_timestamp=utc_datetime_from_naive(
                            datetime.fromisoformat(step["assigned_timestamp"])
                        )
                        if step["assigned_timestamp"]
                        else None,
                        priority=step["priority"],
                    )
                    for step in pending_by_key[key]
                ],
                limit=limit,
                using_default_limit=using_default,
            )
        return infos

    def get_concurrency_run_ids(self) -> set[str]:
        return set(self._storage.pool_run_ids())  # type: ignore[arg-type]

    # -- claims and frees (each one transaction in the core) ---------------------------------

    def claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> ConcurrencyClaimStatus:
        row = self._storage.claim(concurrency_key, run_id, step_key, priority)
        return _claim_status(concurrency_key, row)

    def check_concurrency_claim(
        self, concurrency_key: str, run_id: str, step_key: str
    ) -> ConcurrencyClaimStatus:
        return _claim_status(
            concurrency_key, self._storage.check_claim(concurrency_key, run_id, step_key)
        )

    def free_concurrency_slots_for_run(self, run_id: str) -> None:
        self._storage.free(run_id)

    def free_concurrency_slot_for_step(self, run_id: str, step_key: str) -> None:
        # stock tests `if step_key:`, so an empty step key frees the whole run
        self._storage.free(run_id, step_key or None)

    def _free_concurrency_slots(self, run_id: str, step_key: str | None = None) -> Sequence[str]:
        return self._storage.release_slots(run_id, step_key or None)

    def _remove_pending_steps(self, run_id: str, step_key: str | None = None) -> Sequence[str]:
        return self._storage.remove_pending(run_id, step_key or None)

    def assign_pending_steps(self, concurrency_keys: Sequence[str]) -> None:
        if concurrency_keys:
            self._storage.assign_pending(list(concurrency_keys))

    def add_pending_step(
        self,
        concurrency_key: str,
        run_id: str,
        step_key: str,
        priority: int | None = None,
        should_assign: bool = False,
    ) -> None:
        self._storage.add_pending(concurrency_key, run_id, step_key, priority, bool(should_assign))

    def has_pending_step(self, concurrency_key: str, run_id: str, step_key: str) -> bool:
        return self._storage.has_pending(concurrency_key, run_id, step_key)

    def can_claim_from_pending(
        self, concurrency_key: str, run_id: str, step_key: str
    ) -> bool | None:
        return self._storage.pending_assigned(concurrency_key, run_id, step_key)

    def has_unassigned_slots(self, concurrency_key: str) -> bool:
        return self._storage.has_unassigned_slots(concurrency_key)

    def _claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str
    ) -> ConcurrencySlotStatus:
        if self._storage.take_slot(concurrency_key, run_id, step_key):
            return ConcurrencySlotStatus.CLAIMED
        return ConcurrencySlotStatus.BLOCKED

    # -- runs that end give their slots back -----------------------------------------------

    def store_event(self, event: EventLogEntry) -> None:
        super().store_event(event)  # type: ignore[misc]
        self._release_ended_runs((event,))

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        events = list(events)
        super().store_event_batch(events)  # type: ignore[misc]
        self._release_ended_runs(events)

    def _release_ended_runs(self, events: Iterable[EventLogEntry]) -> None:
        """Free the slots and queued steps of each run whose end was just stored, as stock's
        run monitoring daemon frees them (`free_concurrency_slots_for_run`)."""
        ended = {event.run_id for event in events if event.dagster_event_type in _RUN_ENDED}
        if not ended or not self.supports_global_concurrency_limits:
            return
        for run_id in sorted(ended):
            # a read first: most runs hold nothing, and need not take the write lock
            if self._storage.run_in_pools(run_id):
                self.free_concurrency_slots_for_run(run_id)

    # -- storage admin ---------------------------------------------------------------------

    def alembic_version(self) -> AlembicVersion:
        return (self._storage.revision(), _native.SCHEMA_HEAD)

    def has_secondary_index(self, name: str) -> bool:
        return self._storage.index_done(name)

    def enable_secondary_index(self, name: str) -> None:
        self._storage.mark_index_done(name)

    def _apply_migration(
        self, migration_name: str, migration_fn: Any, print_fn: PrintFn | None, force: bool
    ) -> None:
        """Stock's, with its two data migrations of the index run over the core (stock's
        `migration_fn` would run them over SQLAlchemy)."""
        migrate = self._data_migrations().get(migration_name)
        if migrate is None:
            raise DagsterInvalidInvocationError(
                f"Unknown data migration of the event log index: {migration_name}"
            )
        if self.has_secondary_index(migration_name):
            if not force:
                if print_fn:
                    print_fn(f"Skipping already applied data migration: {migration_name}")
                return
        if print_fn:
            print_fn(f"Starting data migration: {migration_name}")
        migrate(print_fn)
        self.enable_secondary_index(migration_name)
        if print_fn:
            print_fn(f"Finished data migration: {migration_name}")

    def _data_migrations(self) -> dict[str, Callable[[PrintFn | None], None]]:
        return {
            SECONDARY_INDEX_ASSET_KEY: self._migrate_asset_key_data,
            ASSET_KEY_INDEX_COLS: self._migrate_asset_keys_index_columns,
        }

    def _migrate_asset_key_data(self, print_fn: PrintFn | None) -> None:
        """Stock's `migrate_asset_key_data`: an `asset_keys` row for every asset of the events."""
        if print_fn:
            print_fn("Querying event logs.")
        found: Iterable[str] = self._storage.event_asset_keys()
        if print_fn:
            print_fn(f"Found {len(found)} records to index")  # type: ignore[arg-type]
            found = tqdm(found)
        keys = [AssetKey.from_db_string(key).to_string() for key in found]  # type: ignore[union-attr]
        self._storage.add_asset_keys(keys)

    def _migrate_asset_keys_index_columns(self, print_fn: PrintFn | None) -> None:
        """Stock's `migrate_asset_keys_index_columns`: each asset row's last materialization (or,
        without one, its latest event of any type, in the old `EventLogEntry` format), its time
        and its wipe time, rewritten."""
        if print_fn:
            print_fn("Querying asset keys.")
        rows: Iterable[Any] = self._storage.asset_index_rows()
        if print_fn:
            print_fn(f"Found {len(rows)} assets to reindex.")  # type: ignore[arg-type]
            rows = tqdm(rows)
        updates: list[AssetIndexColumnsSpec] = []
        for row in rows:
            wipe_timestamp = None
            event: Any = None
            asset_key = AssetKey.from_db_string(row["asset_key"])
            key_text = asset_key.to_string()  # type: ignore[union-attr]
            if row["asset_details"]:
                asset_details = deserialize_value(row["asset_details"], AssetDetails)
                wipe_timestamp = asset_details.last_wipe_timestamp if asset_details else None
            if row["last_materialization"]:
                stored = deserialize_value(row["last_materialization"], NamedTuple)  # type: ignore[call-overload]
                if isinstance(stored, EventLogEntry):
                    event = stored
            if not event:
                latest = self._storage.latest_asset_event(key_text)
                if latest:
                    event = deserialize_value(latest, NamedTuple)  # type: ignore[call-overload]
            updates.append(
                {
                    "asset_key": key_text,
                    "last_materialization": serialize_value(event) if event else None,
                    "last_materialization_timestamp": (
                        naive_utc_text(event.timestamp) if event else None
                    ),
                    "wipe_timestamp": naive_utc_text(wipe_timestamp) if wipe_timestamp else None,
                }
            )
        self._storage.set_index_columns(updates)


__all__ = ["StorageDomain"]


# Storage methods of later 1.13 releases: absent here when the installed stock lacks them.
compat.only_what_stock_has(
    StorageDomain,
    SqlEventLogStorage,
    ("get_existing_dynamic_partitions", "get_concurrency_infos"),
)
