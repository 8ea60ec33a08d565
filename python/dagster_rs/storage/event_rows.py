"""An `EventLogEntry` as the native `EventStore` stores it: its row and its index-side effects.

Everything here is decided by stock Dagster's own rules (`SqlEventLogStorage._event_to_row`'s
columns, its timestamp, tag selection and event-type sets), so the rows the core writes are the
rows stock writes. The body is serialized by `dagster_rs.serdes.serialize`, whose text is stock
`serialize_value`'s; `tests/events/test_write_path.py` checks every row against stock's files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import dagster._check as check
from dagster._core.definitions.events import AssetKey
from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
    DagsterEventType,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

from dagster_rs.serdes import serialize
from dagster_rs.storage.convert import sql_datetime

if TYPE_CHECKING:
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluation,
        AssetCheckEvaluationPlanned,
    )

    from dagster_rs._native import EffectSpec, EventRowSpec

_MIRRORED = (
    frozenset(ASSET_EVENTS)
    | frozenset(ASSET_CHECK_EVENTS)
    | frozenset(EVENT_TYPE_TO_PIPELINE_RUN_STATUS)
)
_MIRRORED_VALUES = frozenset(kind.value for kind in _MIRRORED)


class _StockRowRules:
    """Stock's row and tag rules, for rows built without a storage object (benchmarks, tests);
    they read nothing of the storage they are bound to."""

    _event_insert_timestamp = SqlEventLogStorage._event_insert_timestamp
    _tags_for_asset_event = SqlEventLogStorage._tags_for_asset_event
    get_asset_tags_to_index = EventLogStorage.get_asset_tags_to_index


_RULES: Any = _StockRowRules()


def _effect(**fields: Any) -> EffectSpec:
    spec = {
        "kind": "none",
        "tags": None,
        "entry": None,
        "asset_key": None,
        "check_name": None,
        "partitions": None,
        "passed": None,
        "partition": None,
        "materialization_storage_id": None,
    }
    spec.update(fields)
    return cast("EffectSpec", spec)


_NO_EFFECT = _effect()


def _effect_of(event: EventLogEntry, rules: Any) -> EffectSpec:
    dagster_event = event.dagster_event
    if dagster_event is None:
        return _effect()
    kind = dagster_event.event_type
    if kind in ASSET_EVENTS:
        if dagster_event.is_step_materialization:
            entry = "materialization"
        elif dagster_event.is_asset_materialization_planned:
            entry = "planned"
        elif dagster_event.is_asset_observation:
            entry = "observation"
        else:
            entry = "nothing"
        return _effect(
            kind="asset", tags=list(rules._tags_for_asset_event(event).items()), entry=entry
        )
    if kind == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
        planned = cast("AssetCheckEvaluationPlanned", dagster_event.event_specific_data)
        subset = planned.partitions_subset
        return _effect(
            kind="check_planned",
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            partitions=list(subset.get_partition_keys()) if subset else [None],
        )
    if kind == DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation = cast("AssetCheckEvaluation", dagster_event.event_specific_data)
        target = evaluation.target_materialization_data
        return _effect(
            kind="check_evaluation",
            asset_key=evaluation.asset_key.to_string(),
            check_name=evaluation.check_name,
            passed=bool(evaluation.passed),
            partition=evaluation.partition,
            materialization_storage_id=target.storage_id if target else None,
        )
    return _effect()


def event_row(event: EventLogEntry, storage: Any = None) -> EventRowSpec:
    """The row stock stores for `event`, whether it is mirrored to the index, and its effects.

    The columns are `_event_to_row`'s (`sql_event_log.py`), with the body from the native
    serializer instead of `serialize_value`. The timestamp and the asset tags to index are the
    storage object's own methods (`get_asset_tags_to_index` is Dagster's extension point: a
    subclass or a patch decides which tags are indexed), stock's when no storage is given.
    """
    rules = _RULES if storage is None else storage
    dagster_event_type = None
    asset_key_str = None
    partition = None
    step_key = event.step_key
    dagster_event = event.dagster_event
    if dagster_event is not None:
        dagster_event_type = dagster_event.event_type_value
        step_key = dagster_event.step_key
        asset_key = dagster_event.asset_key
        if asset_key:
            check.inst_param(asset_key, "asset_key", AssetKey)
            asset_key_str = asset_key.to_string()
        if dagster_event.partition:
            partition = dagster_event.partition
    mirrored = dagster_event_type in _MIRRORED_VALUES
    return {
        "run_id": event.run_id,
        "event": serialize(event),
        "dagster_event_type": dagster_event_type,
        "timestamp": sql_datetime(rules._event_insert_timestamp(event)),
        "step_key": step_key,
        "asset_key": asset_key_str,
        "partition": partition,
        "mirror": mirrored,
        "effect": _effect_of(event, rules) if mirrored else _NO_EFFECT,
    }
