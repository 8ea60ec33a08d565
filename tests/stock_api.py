"""What the installed stock Dagster offers, for tests of APIs that came within the tested range.

The tested range starts before some storage APIs existed (`compat.TESTED_RANGE`; CI runs the
storage tests on its oldest release). A differential test of such an API has no oracle on a
stock that lacks it: `requires_stock("Owner.name")` skips it there, saying exactly what is
missing, and only for that reason. It looks at the installed stock's classes, never at the
version number.

A spec is `Owner.attribute` (a method, property or record field) or `Owner.method(parameter)`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable

import dagster
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.execution.backfill import BulkActionsFilter
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage
from dagster._core.storage.schedules.sql_schedule_storage import SqlScheduleStorage

# The stock classes a spec may name.
OWNERS: dict[str, type] = {
    "DagsterInstance": dagster.DagsterInstance,
    "SqlEventLogStorage": SqlEventLogStorage,
    "SqlRunStorage": SqlRunStorage,
    "SqlScheduleStorage": SqlScheduleStorage,
    "BulkActionsFilter": BulkActionsFilter,
    "DagsterEventType": DagsterEventType,
}

_SPEC = re.compile(r"(?P<owner>\w+)\.(?P<name>\w+)(?:\((?P<parameter>\w+)\))?")


def stock_has(spec: str) -> bool:
    """Whether the installed stock has what `spec` names."""
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise ValueError(f"not a stock API spec: {spec!r}")
    owner = OWNERS[match["owner"]]
    if not hasattr(owner, match["name"]):
        return False
    parameter = match["parameter"]
    if parameter is None:
        return True
    return parameter in inspect.signature(getattr(owner, match["name"])).parameters


# The storage methods that came within the tested range (ARCHITECTURE.md, "Releases of the
# range", says when).
LATER_STORAGE_METHODS = frozenset(
    {
        "get_asset_event_summary_records",
        "get_asset_keys_for_run",
        "get_asset_partitions_for_run",
        "get_concurrency_infos",
        "get_existing_dynamic_partitions",
        "get_latest_materialization_storage_ids",
        "get_tick_summaries",
        "get_ticks_by_ids",
    }
)


def lacking(owner: str, names: Iterable[str]) -> set[str]:
    """Those of `names` (calls named after storage methods) that are methods of later releases
    the installed stock's `owner` lacks."""
    return {n for n in names if n in LATER_STORAGE_METHODS and not stock_has(f"{owner}.{n}")}


def missing(*specs: str) -> list[str]:
    return [spec for spec in specs if not stock_has(spec)]


def requires_stock(*specs: str) -> pytest.MarkDecorator:
    """Skips the test where the installed stock lacks any of `specs`, naming them."""
    absent = missing(*specs)
    return pytest.mark.skipif(
        bool(absent),
        reason=f"the installed dagster {dagster.__version__} has no {', '.join(absent)}",
    )


def skip_unless_stock(*specs: str) -> None:
    """`requires_stock` inside a test or fixture (for a parametrized case or a shared fixture)."""
    absent = missing(*specs)
    if absent:
        pytest.skip(f"the installed dagster {dagster.__version__} has no {', '.join(absent)}")
