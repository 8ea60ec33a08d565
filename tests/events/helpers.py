"""Builders and comparisons shared by the events-domain tests.

The entry builders make the `EventLogEntry`s a run worker writes: a plain log line, or a Dagster
event of a given type (an engine event, an asset materialization). What they leave out is None:
no error info, no step key unless given (on the entry and its event alike); the time is now
unless given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from dagster import AssetKey, AssetMaterialization, DagsterInstance
from dagster._core.events import (
    DagsterEvent,
    DagsterEventType,
    EngineEventData,
    EventSpecificData,
    StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry

from tests.conftest import InstancePair
from tests.events.conftest import SEED_TAG

# -- entries -------------------------------------------------------------------------------------


def log_entry(
    run_id: str,
    *,
    job_name: str,
    message: str = "",
    level: int = logging.INFO,
    timestamp: float | None = None,
    step_key: str | None = None,
    event: DagsterEvent | None = None,
) -> EventLogEntry:
    """A log line `message` of the run, or with `event`, an entry carrying that Dagster event."""
    return EventLogEntry(
        error_info=None,
        level=level,
        user_message=message,
        run_id=run_id,
        timestamp=time.time() if timestamp is None else timestamp,
        job_name=job_name,
        step_key=step_key,
        dagster_event=event,
    )


def event_entry(
    run_id: str,
    event_type: DagsterEventType,
    message: str,
    *,
    job_name: str,
    data: EventSpecificData | None = None,
    step_key: str | None = None,
    timestamp: float | None = None,
    level: int = logging.INFO,
) -> EventLogEntry:
    """An entry of a Dagster event of `event_type` with the event's `message` and `data`."""
    event = DagsterEvent(
        event_type.value,
        job_name=job_name,
        message=message,
        step_key=step_key,
        event_specific_data=data,
    )
    return log_entry(
        run_id, job_name=job_name, level=level, timestamp=timestamp, step_key=step_key, event=event
    )


def engine_entry(
    run_id: str,
    message: str,
    *,
    job_name: str,
    step_key: str | None = None,
    timestamp: float | None = None,
) -> EventLogEntry:
    """An ENGINE_EVENT entry with empty engine event data."""
    return event_entry(
        run_id,
        DagsterEventType.ENGINE_EVENT,
        message,
        job_name=job_name,
        data=EngineEventData({}),
        step_key=step_key,
        timestamp=timestamp,
    )


def materialization_entry(
    run_id: str,
    message: str,
    asset_key: AssetKey,
    *,
    job_name: str,
    metadata: Mapping[str, Any] | None = None,
    step_key: str | None = None,
) -> EventLogEntry:
    """An ASSET_MATERIALIZATION entry of `asset_key` (an index write as well as a shard write)."""
    data = StepMaterializationData(AssetMaterialization(asset_key=asset_key, metadata=metadata))
    return event_entry(
        run_id,
        DagsterEventType.ASSET_MATERIALIZATION,
        message,
        job_name=job_name,
        data=data,
        step_key=step_key,
    )


# -- comparing the two sides ---------------------------------------------------------------------


def tags(name: str) -> dict[str, str]:
    """The tags of a run seeded under `name` (views show its runs by that name)."""
    return {SEED_TAG: name}


def same(pair: InstancePair, fn: Callable[[DagsterInstance], Any]) -> Any:
    """Both instances give the same view; return it (rust's) for sanity checks."""
    out = pair.same(fn)
    assert out.error is None, f"both raised {out.error}: {out.message}"
    return out.value


def same_error(pair: InstancePair, fn: Callable[[DagsterInstance], Any]) -> type[BaseException]:
    """Both instances raise the same exception class; return it."""
    out = pair.same(fn)
    assert out.error is not None, "stock raises here, so must dagster-rs"
    return out.error
