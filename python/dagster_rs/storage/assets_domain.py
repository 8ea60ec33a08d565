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

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import dagster._check as check
from dagster._core.assets import AssetDetails
from dagster._core.definitions.events import AssetKey
from dagster._core.event_api import EventLogRecord, EventRecordsFilter
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.migration import ASSET_KEY_INDEX_COLS
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._serdes import deserialize_value
from dagster._utils import seven
from dagster_shared.serdes.errors import DeserializationError

from dagster_rs.serdes import deserialize_values
from dagster_rs.storage.asset_checks_domain import AssetChecksDomain
from dagster_rs.storage.convert import naive_utc_text

if TYPE_CHECKING:
    from dagster_rs import _native
    from dagster_rs._native import AssetRowSpec, RecordsFilterSpec


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
        if not self.has_secondary_index(ASSET_KEY_INDEX_COLS):
            # A file whose asset-key columns were never backfilled: stock's Python filtering of
            # wiped rows (over the core's connections) until `dagster instance reindex`.
            return SqlEventLogStorage._fetch_asset_rows(  # type: ignore[return-value]
                self,  # type: ignore[arg-type]
                asset_keys,
                prefix=prefix,
                limit=limit,
                cursor=cursor,
                key_only=key_only,
            )
        return self._assets.asset_rows(
            {
                "keys": None if asset_keys is None else [k.to_string() for k in asset_keys],
                "prefix": seven.dumps(prefix)[:-1] if prefix else None,
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
        backcompat: list[tuple[str, str | None]] = []
        for (key, row), text in zip(keyed, stored, strict=True):
            details = AssetDetails.from_db_string(row["asset_details"])
            wiped = details.last_wipe_timestamp if details else None
            value = next(decoded) if text else None
            if isinstance(value, EventLogRecord) and (
                wiped is None or value.event_log_entry.timestamp > wiped
            ):
                results[key] = value
            else:
                backcompat.append((key.to_string(), _wipe_text(details)))
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


_UNPARSEABLE = object()


def _one_named_tuple(storage_id: int, body: str) -> Any:
    """Stock's per-row read: malformed JSON is logged and skipped, any other error raised."""
    try:
        return deserialize_value(body, NamedTuple)  # type: ignore[call-overload]
    except seven.JSONDecodeError:
        logging.warning("Could not parse event record id `%s`.", storage_id)
        return _UNPARSEABLE


__all__ = ["AssetsDomain"]
