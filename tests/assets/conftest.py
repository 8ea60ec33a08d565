"""Fixtures, event builders and normalized views for the assets- and storage-domain suite.

Every test runs one operation sequence on a stock DagsterInstance and on a dagster-rs instance
(separate fresh homes) and compares what the public API returns (`tests.conftest.InstancePair`).
The sequences are built so that both sides store the very same rows in the same order:

- run ids are chosen by the test (`run_ids`), not by Dagster, and reused on both sides;
- events are stored with explicit timestamps in the window starting at `FIXED_T0` wherever the
  test does not need "now" (a wipe is stamped with the wall clock, so events meant to come after a
  wipe are stamped `time.time()` once, and the same float is stored on both sides);
- so storage ids (index event ids, `asset_keys` rowids, check execution ids, dynamic partition
  ids) are asserted EQUAL, not normalized away.

What the two sides may legitimately differ in is normalized by `norm`: timestamps the clock picked
(outside the fixed window: runless events, wipe times, row insert times, pool queue times), shown
only for presence; and, for real `materialize` runs, the run ids Dagster picks (named by a tag in
test_assets_workload.py).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationPlanned,
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.definitions.events import (
    AssetMaterializationFailure,
    AssetMaterializationFailureReason,
    AssetMaterializationFailureType,
)
from dagster._core.definitions.partitions.subset import PartitionsSubset
from dagster._core.event_api import EventRecordsFilter
from dagster._core.events import (
    AssetFailedToMaterializeData,
    AssetMaterializationPlannedData,
    AssetObservationData,
    DagsterEvent,
    DagsterEventType,
    EventSpecificData,
    StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.utils import make_new_run_id
from dagster_shared.record import as_dict, is_record

from tests import homes
from tests.conftest import KINDS, InstancePair, load_instance, write_home
from tests.stock_api import stock_has

ET = DagsterEventType
JOB = "assets_job"
# Explicit timestamps used by the tests live in [FIXED_T0, FIXED_T0 + FIXED_SPAN): 2020-09-13 on.
FIXED_T0 = 1_600_000_000.0
FIXED_SPAN = 1_000_000.0
# Pool settings for the concurrency tests that need an instance default limit.
POOL_DEFAULT_YAML = "concurrency:\n  pools:\n    default_limit: 2\n"


# -- homes -------------------------------------------------------------------------------------


# The run ids tests store events for (`run_ids`). Creating a run shard costs stock its alembic
# stamping (~0.5 s each), so the stock template home has these shards, and the runless one,
# already: one created by stock, copies of it for the others.
RUN_POOL = tuple(make_new_run_id() for _ in range(12))


def _init_storages(inst: DagsterInstance) -> None:
    inst.run_storage.get_runs_count()
    inst.event_log_storage.get_maximum_record_id()
    inst.schedule_storage.all_instigator_state()  # type: ignore[union-attr]
    if type(inst) is DagsterInstance:
        # stock creates a run's shard on its first read (dagster-rs on its first write)
        inst.event_log_storage.get_records_for_run(RUN_POOL[0])
        runs = Path(inst.root_directory) / "history" / "runs"
        for run_id in (*RUN_POOL[1:], ""):
            shutil.copyfile(runs / f"{RUN_POOL[0]}.db", runs / f"{run_id}.db")


@pytest.fixture(scope="session")
def template_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One initialised, empty, disposed DAGSTER_HOME per implementation."""
    return homes.init_template_homes(tmp_path_factory.mktemp("assets_templates"), _init_storages)


@pytest.fixture
def fast_pair(template_homes: dict[str, Path], tmp_path: Path) -> Iterator[InstancePair]:
    """A fresh, empty stock/dagster-rs pair on separate homes, cheap to create."""
    with homes.clone_pair(template_homes, tmp_path) as p:
        yield p


def clone_pair_with_yaml(
    templates: Mapping[str, Path], dest: Path, extra_yaml: str
) -> InstancePair:
    """Like `tests.homes.clone_pair`, with `extra_yaml` added to both homes' dagster.yaml."""
    instances: dict[str, DagsterInstance] = {}
    for kind in KINDS:
        home = dest / f"{kind}_home"
        shutil.copytree(templates[kind], home)
        write_home(home, kind, extra_yaml)
        instances[kind] = load_instance(home)
    return InstancePair(instances["stock"], instances["rust"])


@pytest.fixture
def pool_pair(template_homes: dict[str, Path], tmp_path: Path) -> Iterator[InstancePair]:
    """A fresh pair whose instances have a default pool limit of 2."""
    with clone_pair_with_yaml(template_homes, tmp_path, POOL_DEFAULT_YAML) as p:
        yield p


def seeded_pair(name: str, seed: Callable[[DagsterInstance], None]) -> Any:
    """A module-scoped pair with `seed` applied to both sides (stock first), for read-only tests."""
    return homes.seeded_pair(name, seed)


@pytest.fixture(scope="session")
def seeded_templates(
    template_homes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The template homes with the shared seed of tests/assets/seeds.py applied (once per
    session: stock's writes are slow), disposed; tests open copies."""
    from tests.assets.seeds import seed  # seeds.py builds on this module

    root = tmp_path_factory.mktemp("assets_seeded")
    with pytest.MonkeyPatch.context() as mp:
        homes.clean_env(mp)
        with homes.clone_pair(template_homes, root) as pair:
            pair.both(seed)
    return {kind: root / f"{kind}_home" for kind in KINDS}


@pytest.fixture(scope="module")
def seeded(
    seeded_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InstancePair]:
    """A module-scoped pair on copies of the seeded homes, for read-only tests."""
    with pytest.MonkeyPatch.context() as mp:
        homes.clean_env(mp)
        with homes.clone_pair(seeded_templates, tmp_path_factory.mktemp("seeded")) as p:
            yield p


# -- runs --------------------------------------------------------------------------------------


def run_ids(*names: str, first: int = 0) -> dict[str, str]:
    """Run ids for `names` (from `RUN_POOL`, from its `first`), to be used on both sides."""
    assert first + len(names) <= len(RUN_POOL), "RUN_POOL is too small"
    return dict(zip(names, RUN_POOL[first:], strict=False))


def add_run(
    inst: DagsterInstance,
    run_id: str,
    status: DagsterRunStatus = DagsterRunStatus.SUCCESS,
    job_name: str = JOB,
) -> DagsterRun:
    return inst.add_run(DagsterRun(job_name=job_name, run_id=run_id, status=status))


# -- entries -----------------------------------------------------------------------------------


def t(offset: float) -> float:
    """A fixed event time, `offset` seconds after FIXED_T0."""
    return FIXED_T0 + offset


def dagster_entry(
    run_id: str,
    event_type: DagsterEventType,
    data: EventSpecificData | None,
    timestamp: float,
    *,
    step_key: str | None = None,
    message: str = "",
) -> EventLogEntry:
    """The entry a run worker (or the instance, for runless events) writes for a Dagster event."""
    event = DagsterEvent(
        event_type.value,
        job_name=JOB,
        message=message or event_type.value,
        step_key=step_key,
        event_specific_data=data,
    )
    return EventLogEntry(
        error_info=None,
        level=logging.DEBUG,
        user_message="",
        run_id=run_id,
        timestamp=timestamp,
        job_name=JOB,
        step_key=step_key,
        dagster_event=event,
    )


def mat(
    run_id: str,
    key: AssetKey,
    timestamp: float,
    partition: str | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> EventLogEntry:
    """An ASSET_MATERIALIZATION of `key` (optionally of a partition, with tags and metadata)."""
    m = AssetMaterialization(asset_key=key, partition=partition, tags=tags, metadata=metadata)
    return dagster_entry(run_id, ET.ASSET_MATERIALIZATION, StepMaterializationData(m), timestamp)


def obs(
    run_id: str,
    key: AssetKey,
    timestamp: float,
    partition: str | None = None,
    *,
    tags: Mapping[str, str] | None = None,
) -> EventLogEntry:
    """An ASSET_OBSERVATION of `key`."""
    o = AssetObservation(asset_key=key, partition=partition, tags=tags)
    return dagster_entry(run_id, ET.ASSET_OBSERVATION, AssetObservationData(o), timestamp)


def planned(
    run_id: str,
    key: AssetKey,
    timestamp: float,
    partition: str | None = None,
    *,
    subset: PartitionsSubset | None = None,
) -> EventLogEntry:
    """An ASSET_MATERIALIZATION_PLANNED of `key`: of one partition, or of a partitions subset."""
    data = AssetMaterializationPlannedData(key, partition=partition, partitions_subset=subset)
    return dagster_entry(run_id, ET.ASSET_MATERIALIZATION_PLANNED, data, timestamp)


def failed(
    run_id: str,
    key: AssetKey,
    timestamp: float,
    partition: str | None = None,
    *,
    skipped: bool = False,
) -> EventLogEntry:
    """An ASSET_FAILED_TO_MATERIALIZE of `key` (a failure, or an acceptable skip)."""
    failure = AssetMaterializationFailure(
        asset_key=key,
        partition=partition,
        failure_type=(
            AssetMaterializationFailureType.SKIPPED
            if skipped
            else AssetMaterializationFailureType.FAILED
        ),
        reason=AssetMaterializationFailureReason.FAILED_TO_MATERIALIZE,
    )
    data = AssetFailedToMaterializeData(failure)
    return dagster_entry(run_id, ET.ASSET_FAILED_TO_MATERIALIZE, data, timestamp)


def check_planned(
    run_id: str,
    key: AssetKey,
    check_name: str,
    timestamp: float,
    *,
    subset: PartitionsSubset | None = None,
) -> EventLogEntry:
    """An ASSET_CHECK_EVALUATION_PLANNED of check `check_name` on `key`."""
    data = AssetCheckEvaluationPlanned(
        asset_key=key, check_name=check_name, partitions_subset=subset
    )
    return dagster_entry(run_id, ET.ASSET_CHECK_EVALUATION_PLANNED, data, timestamp)


def check_eval(
    run_id: str,
    key: AssetKey,
    check_name: str,
    passed: bool,
    timestamp: float,
    *,
    partition: str | None = None,
    target: tuple[int, str, float] | None = None,
) -> EventLogEntry:
    """An ASSET_CHECK_EVALUATION; `target` = (storage id, run id, timestamp) of the
    materialization it checked."""
    data = AssetCheckEvaluation(
        asset_key=key,
        check_name=check_name,
        passed=passed,
        partition=partition,
        target_materialization_data=(
            AssetCheckEvaluationTargetMaterializationData(
                storage_id=target[0], run_id=target[1], timestamp=target[2]
            )
            if target
            else None
        ),
    )
    return dagster_entry(run_id, ET.ASSET_CHECK_EVALUATION, data, timestamp)


def store(inst: DagsterInstance, entries: Sequence[EventLogEntry]) -> None:
    """Store `entries` in order through the storage, as a run worker's handler does."""
    for entry in entries:
        inst.event_log_storage.store_event(entry)


# -- views -------------------------------------------------------------------------------------


def fixed_time(ts: float | str | None) -> float | str | None:
    """A timestamp a test chose is compared exactly; one the clock picked only for presence."""
    if ts is None or isinstance(ts, str):  # None, or already normalized
        return ts
    return ts if FIXED_T0 <= ts < FIXED_T0 + FIXED_SPAN else "<now>"


def entry_view(entry: EventLogEntry) -> EventLogEntry:
    """The entry, its timestamp shown by `fixed_time` (everything else compared exactly)."""
    return entry._replace(timestamp=fixed_time(entry.timestamp))


def norm(value: Any) -> Any:
    """`value` with what may legitimately differ between two homes normalized, recursively:
    clock-picked timestamps (`fixed_time`), wipe times (presence only), datetimes (presence)."""
    if isinstance(value, EventLogEntry):
        return entry_view(value)
    if value is None or isinstance(value, (Enum, str, int, float, AssetKey, AssetCheckKey)):
        return value
    if isinstance(value, datetime):
        return "<datetime>"
    if type(value).__name__ == "AssetDetails":
        return ("AssetDetails", "<wiped>" if value.last_wipe_timestamp else None)
    if is_record(value) or hasattr(value, "_fields"):
        fields = as_dict(value) if is_record(value) else value._asdict()
        return (type(value).__name__, *((name, _field(name, v)) for name, v in fields.items()))
    if isinstance(value, Mapping):
        return {norm(k): norm(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return {norm(v) for v in value}
    if isinstance(value, (list, tuple)):
        return type(value)(norm(v) for v in value)
    return value


def _field(name: str, value: Any) -> Any:
    if "timestamp" in name and isinstance(value, float):
        return fixed_time(value)
    return norm(value)


def unordered(values: Any) -> list:
    """A result stock returns in SQLite scan order (no ORDER BY), compared as a multiset."""

    def key(value: Any) -> str:
        return repr(sorted(value.items())) if isinstance(value, Mapping) else repr(value)

    return sorted(values, key=key)


def now() -> float:
    """A timestamp after every wipe done so far on either side (both sides store the same)."""
    time.sleep(0.002)
    return time.time()


# -- comparing the two sides -------------------------------------------------------------------


def same(pair: InstancePair, fn: Callable[[DagsterInstance], Any]) -> Any:
    """Both instances give the same normalized value; return it (rust's) for sanity checks."""
    out = pair.same(fn, norm)
    assert out.error is None, f"both raised {out.error}: {out.message}"
    return norm(out.value)


def same_error(pair: InstancePair, fn: Callable[[DagsterInstance], Any]) -> type[BaseException]:
    """Both instances raise the same exception class; return it."""
    out = pair.same(fn, norm)
    assert out.error is not None, "stock raises here, so must dagster-rs"
    return out.error


# -- everything the instance says about one asset ----------------------------------------------


def asset_reads(inst: DagsterInstance, key: AssetKey) -> dict[str, Any]:
    """Every public read of one asset (and of the key list), normalized: what a wipe, a write or
    the other implementation must leave identical. Reads that write (the status cache) are not
    here."""
    storage = inst.event_log_storage

    def fetched(res: Any) -> tuple:
        return res.records, res.cursor, res.has_more

    reads: dict[str, Callable[[], Any]] = {
        "all_asset_keys": inst.all_asset_keys,
        "get_asset_keys": lambda: inst.get_asset_keys(prefix=key.path[:1], limit=10),
        "has_asset_key": lambda: inst.has_asset_key(key),
        "get_asset_records": lambda: inst.get_asset_records([key]),
        "latest_materialization_events": lambda: inst.get_latest_materialization_events([key]),
        "latest_code_versions": lambda: inst.get_latest_materialization_code_versions([key]),
        "fetch_materializations": lambda: fetched(inst.fetch_materializations(key, limit=20)),
        "fetch_observations": lambda: fetched(inst.fetch_observations(key, limit=20)),
        "fetch_planned": lambda: fetched(inst.fetch_planned_materializations(key, limit=20)),
        "fetch_failed": lambda: fetched(inst.fetch_failed_materializations(key, limit=20)),
        "event_records_failed": lambda: inst.get_event_records(
            EventRecordsFilter(ET.ASSET_FAILED_TO_MATERIALIZE, asset_key=key)
        ),
        "materialized_partitions": lambda: inst.get_materialized_partitions(key),
        "storage_id_by_partition": lambda: inst.get_latest_storage_id_by_partition(
            key, ET.ASSET_MATERIALIZATION
        ),
        "tags_by_partition": lambda: storage.get_latest_tags_by_partition(
            key, ET.ASSET_MATERIALIZATION, [DATA_VERSION_TAG]
        ),
        "event_tags": lambda: unordered(inst.get_event_tags_for_asset(key)),
        "planned_info": lambda: inst.get_latest_planned_materialization_info(key),
        "attempts": lambda: (
            storage.get_latest_asset_partition_materialization_attempts_without_materializations(
                key
            )
        ),
        "data_version_record": lambda: inst.get_latest_data_version_record(key),
        "updated_data_versions": lambda: storage.get_updated_data_version_partitions(
            key, ["a", "b", "c", "x", "y", "z"], 0
        ),
        "freshness": lambda: inst.get_freshness_state_records([key]),
    }
    # Reads that came within the tested range, where the installed stock has them.
    if stock_has("SqlEventLogStorage.get_latest_materialization_storage_ids"):
        reads["latest_storage_ids"] = lambda: storage.get_latest_materialization_storage_ids([key])
    if stock_has("DagsterInstance.get_asset_event_summary_records"):
        reads["summaries"] = lambda: [
            inst.get_asset_event_summary_records(event_type, asset_key=key)
            for event_type in (
                ET.ASSET_MATERIALIZATION,
                ET.ASSET_OBSERVATION,
                ET.ASSET_MATERIALIZATION_PLANNED,
            )
        ]
    out: dict[str, Any] = {}
    for name, read in reads.items():
        try:
            out[name] = norm(read())
        except Exception as exc:  # noqa: BLE001 - the exception class is part of the view
            out[name] = ("raised", type(exc).__name__)
    return out


def same_asset_reads(pair: InstancePair, *keys: AssetKey) -> dict[AssetKey, dict[str, Any]]:
    """Both sides answer every read of every key alike (each read compared on its own, so a
    failure names it); return rust's views."""
    views = {key: pair.both(lambda i, k=key: asset_reads(i, k)) for key in keys}
    for key, (stock, rust) in views.items():
        for name in stock:
            assert stock[name] == rust[name], f"{key.to_user_string()}: {name}"
    return {key: rust for key, (_, rust) in views.items()}
