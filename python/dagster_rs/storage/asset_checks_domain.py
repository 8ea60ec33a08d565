"""The asset-check reads of the event log storage, served by the native `AssetStore`.

`AssetChecksDomain` is part of the assets domain (`AssetsDomain` inherits it). It overrides the
stock methods that run SQL on `asset_check_executions`: each check argument is checked and each
statement argument derived as stock does (so bad input raises what stock raises, before any
read), the statement is the core's, and the records are built from its rows by stock's own code
(`AssetCheckExecutionRecord.from_db_row`, `AssetCheckPartitionInfo`). Stock's
`get_asset_check_summary_records` and `get_asset_check_partition_info` stay as they are: they run
no SQL themselves, only the methods here and `get_asset_records`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dagster._check as check
from dagster._core.definitions.asset_checks.asset_check_spec import AssetCheckKey
from dagster._core.definitions.events import AssetKey
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
    AssetCheckPartitionInfo,
)
from sqlalchemy.exc import ArgumentError
from sqlalchemy.util import is_non_string_iterable

from dagster_rs.storage.convert import naive_utc_text

if TYPE_CHECKING:
    from dagster._core.assets import AssetDetails

    from dagster_rs import _native
    from dagster_rs._native import CheckExecutionRowSpec, PartitionFilterSpec


# What SQLite stores in an INTEGER; sqlite3 refuses to bind other ints when stock executes.
_SQLITE_INTS = range(-(2**63), 2**63)
_BOOL_COMPARISON = (
    "Only '=', '!=', 'is_()', 'is_not()', 'is_distinct_from()', 'is_not_distinct_from()' "
    "operators can be used with None/True/False"
)


def _bindable(*values: object) -> None:
    """Raise what stock's driver raises executing a statement with these bound values."""
    for value in values:
        if isinstance(value, int) and value not in _SQLITE_INTS:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")


def _comparable(value: object) -> None:
    """Raise what SQLAlchemy raises building `column < value` for a bool (which `opt_int_param`
    lets through)."""
    if isinstance(value, bool):
        raise ArgumentError(_BOOL_COMPARISON)


def _in_list(values: Any) -> list[Any]:
    """The values of SQLAlchemy's `column.in_(values)`, or the error it raises building it."""
    if not is_non_string_iterable(values):
        raise ArgumentError(
            "IN expression list, SELECT construct, or bound parameter object expected, "
            f"got {values!r}."
        )
    return list(values)


def _partition_filter(partition_filter: PartitionKeyFilter | None) -> PartitionFilterSpec | None:
    """Stock's `_get_asset_check_partition_filter_clause` as the core takes it."""
    if partition_filter is None:
        return None
    return {"key": partition_filter.key}


def _sql_row(row: CheckExecutionRowSpec) -> dict[str, Any]:
    """The row as SQLAlchemy gives it to stock: `create_timestamp` a naive datetime."""
    text = row["create_timestamp"]
    return {**row, "create_timestamp": None if text is None else datetime.fromisoformat(text)}


class AssetChecksDomain:
    """Asset-check execution reads, in Rust."""

    _native_core: _native.DagsterInstance

    def get_asset_check_execution_history(
        self,
        check_key: AssetCheckKey,
        limit: int,
        cursor: int | None = None,
        status: AbstractSet[AssetCheckExecutionRecordStatus] | None = None,
        partition_filter: PartitionKeyFilter | None = None,
    ) -> Sequence[AssetCheckExecutionRecord]:
        check.inst_param(check_key, "key", AssetCheckKey)
        check.int_param(limit, "limit")
        check.opt_int_param(cursor, "cursor")
        # The statement's arguments in the order stock builds them (the first error wins).
        asset_key = check_key.asset_key.to_string()
        check_name = check_key.name
        spec_filter = _partition_filter(partition_filter)
        # stock: a falsy cursor or status set adds no condition
        if cursor:
            _comparable(cursor)
        statuses = [s.value for s in status] if status else None
        _bindable(limit, cursor)
        rows = self._native_core.assets.check_history(
            {
                "asset_key": asset_key,
                "check_name": check_name,
                "partition_filter": spec_filter,
                "cursor": cursor if cursor else None,
                "statuses": statuses,
                "limit": limit,
            }
        )
        return [AssetCheckExecutionRecord.from_db_row(_sql_row(row), key=check_key) for row in rows]

    def get_latest_asset_check_execution_by_key(
        self,
        check_keys: Sequence[AssetCheckKey],
        partition_filter: PartitionKeyFilter | None = None,
    ) -> Mapping[AssetCheckKey, AssetCheckExecutionRecord]:
        if not check_keys:
            return {}
        asset_keys = [key.asset_key.to_string() for key in check_keys]
        check_names = [key.name for key in check_keys]
        rows = self._native_core.assets.latest_check_executions(
            {
                "asset_keys": asset_keys,
                "check_names": check_names,
                "partition_filter": _partition_filter(partition_filter),
            }
        )
        results = {}
        for row in rows:
            check_key = AssetCheckKey(
                asset_key=check.not_none(AssetKey.from_db_string(row["asset_key"])),
                name=row["check_name"],  # type: ignore[arg-type]
            )
            results[check_key] = AssetCheckExecutionRecord.from_db_row(_sql_row(row), key=check_key)
        return results

    def _get_asset_check_partition_info_for_key(
        self,
        check_key: AssetCheckKey,
        after_storage_id: int | None,
        partition_keys: Sequence[str] | None,
        latest_unpartitioned_materialization_storage_ids: Mapping[AssetKey, int],
    ) -> Sequence[AssetCheckPartitionInfo]:
        # The statement's arguments in the order stock builds them (the first error wins).
        asset_key = check_key.asset_key.to_string()
        check_name = check_key.name
        keys = None if partition_keys is None else _in_list(partition_keys)
        # stock's latest-materialization subquery reads the asset's details (its wipe)
        (details,) = self._get_assets_details([check_key.asset_key])  # type: ignore[attr-defined]
        if after_storage_id is not None:
            _comparable(after_storage_id)
        _bindable(after_storage_id, *(keys or ()))
        rows = self._native_core.assets.check_partition_rows(
            {
                "asset_key": asset_key,
                "check_name": check_name,
                "partition_keys": keys,
                "after_storage_id": after_storage_id,
                "wiped": _wipe_text(details),
            }
        )
        return [
            AssetCheckPartitionInfo(
                check_key=check_key,
                partition_key=row["partition"],
                latest_execution_status=AssetCheckExecutionRecordStatus(row["execution_status"]),
                latest_target_materialization_storage_id=row["materialization_event_storage_id"],
                latest_planned_run_id=row["run_id"],  # type: ignore[arg-type]
                latest_check_event_storage_id=row["evaluation_event_storage_id"],  # type: ignore[arg-type]
                latest_materialization_storage_id=max(
                    filter(
                        None,
                        [
                            row["latest_materialization_storage_id"],
                            latest_unpartitioned_materialization_storage_ids.get(
                                check_key.asset_key
                            ),
                        ],
                    ),
                    default=None,
                ),
            )
            for row in rows
        ]


def _wipe_text(details: AssetDetails | None) -> str | None:
    """The wipe time stock filters the asset's events by, if it has one (a truthy timestamp)."""
    if details and details.last_wipe_timestamp:
        return naive_utc_text(details.last_wipe_timestamp)
    return None


__all__ = ["AssetChecksDomain"]
