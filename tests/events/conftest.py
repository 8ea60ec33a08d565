"""Fixtures and normalized views for the events-domain differential suite (through the instance).

Both instances of a pair execute the same jobs in the same order, so they store the same event
sequences: the same event types, step keys, levels and messages, and the same storage ids in every
run shard and in the index. What legitimately differs is normalized away by the views below:

- run ids (Dagster picks them): every seeded run carries a `seed` tag naming it; a view shows that
  name instead of the id (`RunNames`);
- wall-clock times: timestamps the storage or the executor pick ("now") are hidden, except those in
  the window starting at `FIXED_T0`, which only events a test stored with an explicit timestamp
  have; those are compared exactly;
- durations in messages ("in 12ms") and the DAGSTER_HOME path (the fs IO manager logs it).

Creating a home from scratch costs alembic stamping for each storage; `fast_pair` copies a pair of
homes initialised once per session instead (tests/homes.py); `seeded_pair` makes a module-scoped
pair seeded once for read-only tests, and `tests.homes.seeded_homes` seeded homes that tests which
write clone (`tests.homes.clone_pair`).

Stock's reads create the shard of any run they read; dagster-rs does not (docs/events-domain.md).
Tests compare `get_all_run_ids()` only before reading runs whose shard may be missing.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.event_api import EventLogRecord, EventRecordsResult
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import RunsFilter
from dagster._core.storage.event_log.base import EventLogConnection

from tests import homes
from tests.conftest import InstancePair

SEED_TAG = "seed"
# Explicit timestamps used by the tests live in [FIXED_T0, FIXED_T0 + FIXED_SPAN): 2020-09-13 on.
FIXED_T0 = 1_600_000_000.0
FIXED_SPAN = 1_000_000.0

_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|µs|us|s|m|h)\b")
# A home of a pair, also one a cloned home was copied from (its paths are in stored messages).
_HOME = re.compile(r"/\S*?/(?:stock|rust)_home\b")


# -- homes -------------------------------------------------------------------------------------


def _init_storages(inst: DagsterInstance) -> None:
    inst.run_storage.get_runs_count()
    inst.event_log_storage.get_maximum_record_id()
    inst.schedule_storage.all_instigator_state()  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def template_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One initialised, empty, disposed DAGSTER_HOME per implementation."""
    return homes.init_template_homes(tmp_path_factory.mktemp("events_templates"), _init_storages)


@pytest.fixture
def fast_pair(template_homes: dict[str, Path], tmp_path: Path) -> Iterator[InstancePair]:
    """A fresh, empty stock/dagster-rs pair on separate homes, cheap to create."""
    with homes.clone_pair(template_homes, tmp_path) as p:
        yield p


def _freeze(pair: InstancePair) -> None:
    freeze(pair.stock)
    freeze(pair.rust)


def seeded_pair(name: str, seed: Callable[[DagsterInstance], None]) -> Any:
    """A module-scoped pair with `seed` applied to both sides (stock first), for read-only tests;
    its run names are looked up once (`freeze`)."""
    return homes.seeded_pair(name, seed, then=_freeze)


# -- run names ---------------------------------------------------------------------------------

# Instances of read-only seeded pairs: their run names are looked up once.
_FROZEN: weakref.WeakKeyDictionary[DagsterInstance, RunNames] = weakref.WeakKeyDictionary()


def freeze(inst: DagsterInstance) -> None:
    """Declare that no run is added to `inst` from now on (its `RunNames` can be cached)."""
    _FROZEN[inst] = RunNames(inst)


def run_names(inst: DagsterInstance) -> RunNames:
    cached = _FROZEN.get(inst)
    return cached if cached is not None else RunNames(inst)


def run_id_of(inst: DagsterInstance, name: str) -> str:
    """The id of the one run seeded under `name` on this instance."""
    cached = _FROZEN.get(inst)
    if cached is not None:
        ids = [run_id for run_id, n in cached.names.items() if n == name]
    else:
        ids = [r.run_id for r in inst.get_runs(RunsFilter(tags={SEED_TAG: name}))]
    assert len(ids) == 1, f"{len(ids)} runs tagged {SEED_TAG}={name}"
    return ids[0]


class RunNames:
    """Maps the run ids of one instance to their seed names (and its home path to `<home>`)."""

    def __init__(self, inst: DagsterInstance):
        self.home = str(inst.root_directory)
        self.names = {
            run.run_id: run.tags.get(SEED_TAG, "<untagged run>") for run in inst.get_runs()
        }

    def run(self, run_id: str | None) -> str | None:
        if not run_id:
            return run_id  # None, or "" for runless events
        return self.names.get(run_id, "<unknown run>")

    def text(self, text: str | None) -> str | None:
        if text is None:
            return None
        text = _HOME.sub("<home>", text.replace(self.home, "<home>"))
        for run_id, name in self.names.items():
            text = text.replace(run_id, f"<run {name}>")
        return _DURATION.sub("<duration>", text)


def fixed_time(ts: float | None) -> float | str | None:
    """A timestamp a test chose is compared exactly; one the clock picked only for presence."""
    if ts is None:
        return None
    return ts if FIXED_T0 <= ts < FIXED_T0 + FIXED_SPAN else "<now>"


# -- views -------------------------------------------------------------------------------------


def entry_view(names: RunNames, entry: EventLogEntry) -> tuple:
    event = entry.dagster_event
    data = event.event_specific_data if event else None
    error = getattr(data, "error", None) or entry.error_info
    return (
        names.run(entry.run_id),
        entry.dagster_event_type.value if entry.dagster_event_type else None,
        entry.step_key,
        entry.level,
        entry.job_name,
        names.text(entry.user_message),
        names.text(event.message) if event else None,
        type(data).__name__ if event else None,
        event.asset_key.to_user_string() if event and event.asset_key else None,
        event.partition if event else None,
        (error.cls_name, names.text(error.message)) if error else None,
        fixed_time(entry.timestamp),
    )


def entries_view(inst: DagsterInstance, entries: Iterable[EventLogEntry]) -> list[tuple]:
    names = run_names(inst)
    return [entry_view(names, e) for e in entries]


def records_view(inst: DagsterInstance, records: Iterable[EventLogRecord]) -> list[tuple]:
    names = run_names(inst)
    return [(r.storage_id, entry_view(names, r.event_log_entry)) for r in records]


def connection_view(inst: DagsterInstance, conn: EventLogConnection) -> tuple:
    return records_view(inst, conn.records), conn.cursor, conn.has_more


def result_view(inst: DagsterInstance, result: EventRecordsResult) -> tuple:
    return records_view(inst, result.records), result.cursor, result.has_more


def types_of(entries: Iterable[EventLogEntry]) -> list[DagsterEventType | None]:
    return [e.dagster_event_type for e in entries]


def event_time(inst: DagsterInstance, run_id: str, event_type: DagsterEventType) -> float:
    """The timestamp of the first `event_type` event of a run, on this instance."""
    records = inst.get_records_for_run(run_id, of_type=event_type, limit=1).records
    assert records, f"no {event_type} in {run_id}"
    return records[0].event_log_entry.timestamp


def time_ref(inst: DagsterInstance, run_id: str, ts: float | None) -> Any:
    """Normalizes a time derived from a run's events: the storage id of the event it is from.

    Run and step stats report times taken from stored events; the two instances' clocks differ,
    but the stats must point at the same event on both.
    """
    if ts is None:
        return None
    fixed = fixed_time(ts)
    if fixed != "<now>":
        return fixed
    records = inst.get_records_for_run(run_id).records
    best = min(records, key=lambda r: abs(r.event_log_entry.timestamp - ts), default=None)
    if best is None or abs(best.event_log_entry.timestamp - ts) > 2e-6:
        return ("<time of no event>", ts)
    return ("<time of event>", best.storage_id)
