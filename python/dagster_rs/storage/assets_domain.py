"""The assets domain's methods of the event log storage, served by the native `AssetStore`.

`AssetsDomain` is mixed into the event log storage class when the domain is live
(`dagster_rs.storage.event_log_storage.event_log_class`); without it, the same methods are stock
`SqlEventLogStorage`'s over the core's connections.

Stock's public asset methods are mostly Python over a few statement helpers; the mixin replaces
the helpers that run SQL (`_fetch_asset_rows`, `_get_assets_details`,
`_get_latest_materialization_records`, `_get_event_records`, the capability gates) and the
methods that run SQL themselves, so stock's own logic — cursors, limits, has_more, the records it
builds — stays the same code while every statement is the core's.
"""

from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, NamedTuple

import dagster._check as check
from dagster._core.assets import AssetDetails
from dagster._core.definitions.events import AssetKey
from dagster._core.definitions.freshness import FreshnessStateRecord
from dagster._core.errors import DagsterInvalidInvocationError
from dagster._core.event_api import AssetEventType, EventLogRecord, EventRecordsFilter
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.migration import ASSET_KEY_INDEX_COLS
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._serdes import deserialize_value, serialize_value
from dagster._time import get_current_timestamp
from dagster._utils import seven
from dagster_shared.serdes.errors import DeserializationError

try:
    from dagster._core.storage.event_log.base import AssetEventSummaryRecord
except ImportError:  # a release of the range before summary records (compat.only_what_stock_has)
    AssetEventSummaryRecord = None  # type: ignore[assignment, misc]

from dagster_rs import compat
from dagster_rs.serdes import deserialize_values
from dagster_rs.storage.asset_checks_domain import AssetChecksDomain
from dagster_rs.storage.convert import (
    like_prefix_too_long,
    naive_utc_text,
    native_int,
    native_text,
    tag_pairs,
    utc_from_sql,
)

if TYPE_CHECKING:
    from dagster._core.storage.partition_status_cache import AssetStatusCacheValue

    from dagster_rs import _native
    from dagster_rs._native import AssetRowSpec, PartitionEventsSpec, RecordsFilterSpec


def _wipe_text(details: AssetDetails | None) -> str | None:
    """The wipe time stock filters a key's events by, if it has one (a truthy timestamp)."""
    if details and details.last_wipe_timestamp:
        return naive_utc_text(details.last_wipe_timestamp)
    return None


def _named_tuples(texts: Sequence[str]) -> list[Any]:
    """`deserialize_value(text, NamedTuple)` of each text, in one native pass when it can."""
    try:
        return list(deserialize_values(texts, NamedTuple))
    except (ValueError, DeserializationError):
        return [deserialize_value(text, NamedTuple) for text in texts]  # type: ignore[call-overload]


_STOCK_KEY_ONLY = "key_only" in inspect.signature(SqlEventLogStorage._fetch_asset_rows).parameters


class AssetsDomain(AssetChecksDomain):
    """Asset keys and records, asset event reads, partitions and the status cache, wipes and
    asset-check reads, in Rust."""

    _native_core: _native.DagsterInstance

    @property
    def _assets(self) -> _native.AssetStore:
        return self._native_core.assets

    # -- capability gates ------------------------------------------------------------------

    def has_secondary_index(self, name: str) -> bool:
        return self._assets.has_secondary_index(name)

    def has_asset_key_col(self, column_name: str) -> bool:
        return column_name in self._assets.table_columns("asset_keys")

    def has_table(self, table_name: str) -> bool:
        return bool(self._assets.table_columns(table_name))

    # -- asset keys and records --------------------------------------------------------------

    def _fetch_asset_rows(
        self,
        asset_keys: Iterable[AssetKey] | None = None,
        *,
        prefix: Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        key_only: bool = False,
    ) -> Sequence[AssetRowSpec]:
        prefix_text = seven.dumps(prefix)[:-1] if prefix else None
        if (
            not native_text(cursor)
            or not native_int(limit)
            or like_prefix_too_long(prefix_text)
            or not self.has_secondary_index(ASSET_KEY_INDEX_COLS)
        ):
            # A cursor or limit stock binds as given (not text, not an int), a prefix past
            # SQLite's LIKE pattern limit (stock's read fails), or a file whose asset-key
            # columns were never backfilled: stock's code (over the core's connections), which
            # for the last filters wiped rows in Python until `dagster instance reindex`.
            # Stock's `key_only` came with 1.13.27: an earlier stock reads whole rows.
            only = {"key_only": key_only} if _STOCK_KEY_ONLY else {}
            return SqlEventLogStorage._fetch_asset_rows(  # type: ignore[return-value]
                self,  # type: ignore[arg-type]
                asset_keys,
                prefix=prefix,
                limit=limit,
                cursor=cursor,
                **only,
            )
        return self._assets.asset_rows(
            {
                "keys": None if asset_keys is None else [k.to_string() for k in asset_keys],
                "prefix": prefix_text,
                "cursor": cursor or None,
                "limit": limit or None,
            },
            key_only,
        )

    def _get_assets_details(self, asset_keys: Sequence[AssetKey]) -> Sequence[AssetDetails | None]:
        check.sequence_param(asset_keys, "asset_key", AssetKey)
        by_key = {
            key: deserialize_value(details, AssetDetails) if details else None
            for key, details in self._assets.asset_details([k.to_string() for k in asset_keys])
        }
        return [by_key.get(key.to_string()) for key in asset_keys]

    def _get_latest_materialization_records(
        self, raw_asset_rows: Iterable[Mapping[str, Any]]
    ) -> Mapping[AssetKey, EventLogRecord | None]:
        keyed: list[tuple[AssetKey, Mapping[str, Any]]] = []
        for row in raw_asset_rows:
            key = AssetKey.from_db_string(row["asset_key"])
            if key:
                keyed.append((key, row))
        stored = [row["last_materialization"] for _, row in keyed]
        values = _named_tuples([text for text in stored if text])
        decoded = iter(values)
        results: dict[AssetKey, EventLogRecord | None] = {}
        # Keys whose record must come from the event log, with their wipe time (stock: a NULL
        # column, an old format, or a stored record older than the asset's latest wipe).
        # A stock before 1.13.10 keeps a stored record whatever its age, and reads the event
        # log with no wipe filter.
        after_wipe = compat.stock_skips_records_older_than_wipe()
        backcompat: list[tuple[str, str | None]] = []
        for (key, row), text in zip(keyed, stored, strict=True):
            details = AssetDetails.from_db_string(row["asset_details"])
            wiped = details.last_wipe_timestamp if details and after_wipe else None
            value = next(decoded) if text else None
            if isinstance(value, EventLogRecord) and (
                wiped is None or value.event_log_entry.timestamp > wiped
            ):
                results[key] = value
            else:
                backcompat.append((key.to_string(), _wipe_text(details) if after_wipe else None))
        if backcompat:
            rows = self._assets.latest_materializations(backcompat)
            entries = deserialize_values([event for _, _, event in rows], EventLogEntry)
            for (asset_key, storage_id, _), entry in zip(rows, entries, strict=True):
                key = AssetKey.from_db_string(asset_key)
                if key:
                    results[key] = EventLogRecord(storage_id=storage_id, event_log_entry=entry)
        return results

    # -- asset event reads -------------------------------------------------------------------

    def _get_event_records(
        self,
        event_records_filter: EventRecordsFilter,
        limit: int | None = None,
        ascending: bool = False,
    ) -> Sequence[EventLogRecord]:
        check.inst_param(event_records_filter, "event_records_filter", EventRecordsFilter)
        check.opt_int_param(limit, "limit")
        check.bool_param(ascending, "ascending")
        spec: RecordsFilterSpec = self._filter_spec(  # type: ignore[attr-defined]
            event_records_filter,
            self._after_wipe(event_records_filter),  # type: ignore[attr-defined]
        )
        rows = self._assets.event_records(spec, limit or None, ascending)
        try:
            values = list(deserialize_values([body for _, body in rows], NamedTuple))
        except (ValueError, DeserializationError):
            values = [_one_named_tuple(storage_id, body) for storage_id, body in rows]
        records = []
        for (storage_id, _), value in zip(rows, values, strict=True):
            if value is _UNPARSEABLE:
                continue
            if not isinstance(value, EventLogEntry):
                logging.warning(
                    "Could not resolve event record as EventLogEntry for id `%s`.", storage_id
                )
                continue
            records.append(EventLogRecord(storage_id=storage_id, event_log_entry=value))
        return records

    # -- partitions ----------------------------------------------------------------------------

    def _partition_events(
        self,
        asset_key: AssetKey,
        event_types: Sequence[DagsterEventType],
        partitions: Sequence[str] | None = None,
        before_id: int | None = None,
        after_id: int | None = None,
    ) -> PartitionEventsSpec:
        """Stock's `_latest_event_ids_by_partition_subquery` arguments, with the asset's wipe."""
        return {
            "asset_key": asset_key.to_string(),
            "event_types": [t.value for t in event_types],
            "partitions": None if partitions is None else list(partitions),
            "before_id": before_id,
            "after_id": after_id,
            "after_wipe": _wipe_text(self._get_assets_details([asset_key])[0]),
        }

    def get_materialized_partitions(
        self,
        asset_key: AssetKey,
        before_cursor: int | None = None,
        after_cursor: int | None = None,
    ) -> set[str]:
        spec = self._partition_events(
            asset_key, [DagsterEventType.ASSET_MATERIALIZATION], None, before_cursor, after_cursor
        )
        return set(self._assets.materialized_partitions(spec))

    def get_latest_storage_id_by_partition(
        self,
        asset_key: AssetKey,
        event_type: DagsterEventType,
        partitions: set[str] | None = None,
        after_cursor: int | None = None,
    ) -> Mapping[str, int]:
        check.inst_param(asset_key, "asset_key", AssetKey)
        spec = self._partition_events(
            asset_key,
            [event_type],
            list(partitions) if partitions else None,
            after_id=after_cursor,
        )
        return dict(self._assets.latest_ids_by_partition(spec))

    def get_latest_tags_by_partition(
        self,
        asset_key: AssetKey,
        event_type: DagsterEventType,
        tag_keys: Sequence[str],
        asset_partitions: Sequence[str] | None = None,
        before_cursor: int | None = None,
        after_cursor: int | None = None,
    ) -> Mapping[str, Mapping[str, str]]:
        check.inst_param(asset_key, "asset_key", AssetKey)
        check.inst_param(event_type, "event_type", DagsterEventType)
        check.sequence_param(tag_keys, "tag_keys", of_type=str)
        check.opt_nullable_sequence_param(asset_partitions, "asset_partitions", of_type=str)
        check.opt_int_param(before_cursor, "before_cursor")
        check.opt_int_param(after_cursor, "after_cursor")
        # The storage's own tag rules (an extension point): only indexed tags can be asked for.
        tags_to_index = self.get_asset_tags_to_index(set(tag_keys))  # type: ignore[attr-defined]
        if not tag_keys or len(tag_keys) != len(tags_to_index):
            check.failed(
                "Only a limited set of tag keys are whitelisted for querying the latest tag"
                " values by partition."
            )
        spec = self._partition_events(
            asset_key, [event_type], asset_partitions, before_cursor, after_cursor
        )
        by_partition: dict[str, dict[str, str]] = defaultdict(dict)
        for partition, key, value in self._assets.latest_tags_by_partition(spec, list(tag_keys)):
            by_partition[partition][key] = value
        return dict(by_partition)

    def get_latest_asset_partition_materialization_attempts_without_materializations(
        self, asset_key: AssetKey, after_storage_id: int | None = None
    ) -> Mapping[str, tuple[str, int]]:
        check.inst_param(asset_key, "asset_key", AssetKey)
        spec = self._partition_events(
            asset_key,
            [
                DagsterEventType.ASSET_MATERIALIZATION,
                DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
            ],
            after_id=after_storage_id,
        )
        return {
            partition: (run_id, storage_id)
            for partition, run_id, storage_id in self._assets.attempts_without_materializations(
                spec
            )
        }

    def _get_partition_data_versions(
        self,
        asset_key: AssetKey,
        partitions: Sequence[str],
        before_storage_id: int | None = None,
        after_storage_id: int | None = None,
    ) -> dict[str, str]:
        rows = self._assets.partition_data_versions(
            asset_key.to_string(), list(partitions), before_storage_id, after_storage_id
        )
        return dict(rows)  # type: ignore[arg-type]

    # -- the asset status cache ----------------------------------------------------------------

    def update_asset_cached_status_data(
        self, asset_key: AssetKey, cache_values: AssetStatusCacheValue
    ) -> None:
        if self.can_read_asset_status_cache():  # type: ignore[attr-defined]
            self._assets.set_cached_status(asset_key.to_string(), serialize_value(cache_values))

    def wipe_asset_cached_status(self, asset_key: AssetKey) -> None:
        if self.can_read_asset_status_cache():  # type: ignore[attr-defined]
            check.inst_param(asset_key, "asset_key", AssetKey)
            self._assets.set_cached_status(asset_key.to_string(), None)

    # -- tags, summaries, runs, freshness ------------------------------------------------------

    def get_event_tags_for_asset(
        self,
        asset_key: AssetKey,
        filter_tags: Mapping[str, str] | None = None,
        filter_event_id: int | None = None,
    ) -> Sequence[Mapping[str, str]]:
        asset_key = check.inst_param(asset_key, "asset_key", AssetKey)
        filter_tags = check.opt_mapping_param(
            filter_tags, "filter_tags", key_type=str, value_type=str
        )
        filter_event_id = check.opt_int_param(filter_event_id, "filter_event_id")
        if not self.has_table("asset_event_tags"):
            raise DagsterInvalidInvocationError(
                "In order to search for asset event tags, you must run "
                "`dagster instance migrate` to create the AssetEventTags table."
            )
        rows = self._assets.event_tags(
            asset_key.to_string(),
            tag_pairs(filter_tags),
            _wipe_text(self._get_assets_details([asset_key])[0]),
            filter_event_id,
        )
        tags_by_event_id: dict[int, dict[str, str]] = defaultdict(dict)
        for key, value, event_id in rows:
            tags_by_event_id[event_id][key] = value
        return list(tags_by_event_id.values())

    def get_asset_event_summary_records(
        self,
        event_type: AssetEventType,
        asset_key: AssetKey | None = None,
        run_id: str | None = None,
        storage_ids: Sequence[int] | None = None,
        after_storage_id: int | None = None,
        before_storage_id: int | None = None,
        limit: int | None = None,
        ascending: bool = False,
    ) -> Sequence[AssetEventSummaryRecord]:
        after_wipe = None
        if asset_key is not None:
            after_wipe = _wipe_text(self._get_assets_details([asset_key])[0])
        rows = self._assets.summary_records(
            {
                "event_type": event_type.value,
                "asset_key": None if asset_key is None else asset_key.to_string(),
                "after_wipe": after_wipe,
                "run_id": run_id,
                "storage_ids": None if storage_ids is None else list(storage_ids),
                "after_id": after_storage_id,
                "before_id": before_storage_id,
                "limit": limit or None,
                "ascending": ascending,
            }
        )
        return [
            AssetEventSummaryRecord(
                storage_id=storage_id,
                run_id=row_run_id,
                asset_key=check.not_none(AssetKey.from_db_string(asset_key_str)),
                partition=partition,
                timestamp=utc_from_sql(timestamp).timestamp(),
            )
            for storage_id, row_run_id, asset_key_str, partition, timestamp in rows
        ]

    def get_asset_partitions_for_run(
        self,
        run_id: str,
        of_type: DagsterEventType | set[DagsterEventType] | None = None,
    ) -> Mapping[AssetKey, AbstractSet[str | None]]:
        check.str_param(run_id, "run_id")
        check.invariant(not of_type or isinstance(of_type, (DagsterEventType, frozenset, set)))
        event_types = (
            {of_type}
            if isinstance(of_type, DagsterEventType)
            else check.opt_set_param(of_type, "of_type", of_type=DagsterEventType)
        )
        rows = self._assets.asset_partitions_for_run(run_id, [t.value for t in event_types])
        partitions_by_asset_key: dict[AssetKey, set[str | None]] = defaultdict(set)
        for asset_key_str, partition in rows:
            asset_key = AssetKey.from_db_string(asset_key_str)
            if asset_key:
                partitions_by_asset_key[asset_key].add(partition)
        return partitions_by_asset_key

    def get_freshness_state_records(
        self, keys: Sequence[AssetKey]
    ) -> Mapping[AssetKey, FreshnessStateRecord]:
        texts = self._assets.freshness_states([key.to_string() for key in keys])
        entries = [deserialize_value(text, EventLogEntry) for text in texts]
        records = [FreshnessStateRecord.from_event_log_entry(entry) for entry in entries]
        return {record.entity_key: record for record in records}

    # -- wipes ---------------------------------------------------------------------------------

    def wipe_asset(self, asset_key: AssetKey) -> None:
        # Stock's SQLite storage in one transaction instead of two: the row marked, the check
        # executions and the index's mirrored events of the asset deleted.
        check.inst_param(asset_key, "asset_key", AssetKey)
        wipe_timestamp = get_current_timestamp()
        self._assets.wipe_asset(
            asset_key.to_string(),
            serialize_value(AssetDetails(last_wipe_timestamp=wipe_timestamp)),
            naive_utc_text(wipe_timestamp),
        )


_UNPARSEABLE = object()


def _one_named_tuple(storage_id: int, body: str) -> Any:
    """Stock's per-row read: malformed JSON is logged and skipped, any other error raised."""
    try:
        return deserialize_value(body, NamedTuple)  # type: ignore[call-overload]
    except seven.JSONDecodeError:
        logging.warning("Could not parse event record id `%s`.", storage_id)
        return _UNPARSEABLE


__all__ = ["AssetsDomain"]


# Storage methods of later 1.13 releases: absent here when the installed stock lacks them.
compat.only_what_stock_has(
    AssetsDomain,
    SqlEventLogStorage,
    ("get_asset_event_summary_records", "get_asset_partitions_for_run"),
)
# `after_cursor` came with 1.13.x: an earlier stock's read takes no cursor, and neither does this.
compat.only_parameters_stock_has(
    AssetsDomain, SqlEventLogStorage, ("get_latest_storage_id_by_partition",)
)

if not compat.stock_wipe_clears_last_materialization():
    # The core's wipe clears the row's last materialization, as stock does from 1.13.10; an
    # earlier stock keeps it (its reads return it once another event shows the asset again),
    # so the file must hold what that stock's own wipe leaves: its code wipes.
    compat.leave_to_stock(
        AssetsDomain,
        ("wipe_asset",),
        "this stock's wipe keeps the asset row's last materialization (before 1.13.10)",
    )
