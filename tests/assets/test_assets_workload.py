"""A real workload through Dagster, stock vs dagster-rs: a partitioned asset graph with a
partitioned asset check, a dynamic-partitioned asset and an unpartitioned asset with checks,
materialized with `materialize` on both sides in the same order.

Partition a materializes and its check passes, b materializes and its check fails, c fails (its
upstream raises, so downstream and the check never run), d is planned by a run created but not
launched (in progress); the dynamic asset materializes one of its partitions and fails another.
The partition status (materialized / failed / in progress, through the instance and the asset
partitions page), the asset records, the asset events, and the check results must equal stock's.
Runs are named by a `seed` tag (Dagster picks their ids); data versions are deterministic because
every asset has a code version.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    DagsterInstance,
    Definitions,
    DynamicPartitionsDefinition,
    StaticPartitionsDefinition,
    asset,
    asset_check,
    define_asset_job,
    materialize,
)
from dagster._core.event_api import EventLogRecord
from dagster._core.events import DagsterEventType
from dagster._core.loader import LoadingContextForTest
from dagster._core.storage.partition_status_cache import get_partition_subsets

from tests.assets.conftest import seeded_pair
from tests.conftest import InstancePair

ET = DagsterEventType
LETTERS = StaticPartitionsDefinition(["a", "b", "c", "d"])
FRUITS = DynamicPartitionsDefinition(name="fruits")
SEED = "seed"


@asset(partitions_def=LETTERS, code_version="1")
def letters_src(context) -> str:
    if context.partition_key == "c":
        raise Exception("partition c is broken")
    return context.partition_key


@asset(partitions_def=LETTERS, code_version="1")
def letters_down(letters_src: str) -> str:
    return letters_src * 2


@asset_check(asset=letters_down, partitions_def=LETTERS)
def letters_down_ok(context, letters_down: str) -> AssetCheckResult:
    return AssetCheckResult(passed=context.partition_key != "b", metadata={"v": letters_down})


@asset(partitions_def=FRUITS, code_version="1")
def fruit(context) -> str:
    if context.partition_key == "durian":
        raise Exception("nobody likes durian")
    return context.partition_key


@asset(code_version="1")
def summary() -> int:
    return 3


@asset_check(asset=summary)
def summary_positive(summary: int) -> AssetCheckResult:
    return AssetCheckResult(passed=summary > 0)


@asset_check(asset=summary)
def summary_huge(summary: int) -> AssetCheckResult:
    return AssetCheckResult(passed=summary > 1000)


LETTER_ASSETS = [letters_src, letters_down, letters_down_ok]
LETTER_KEYS = [AssetKey("letters_src"), AssetKey("letters_down")]
FRUIT_KEY = AssetKey("fruit")
SUMMARY_KEY = AssetKey("summary")
CHECKS = [
    AssetCheckKey(AssetKey("letters_down"), "letters_down_ok"),
    AssetCheckKey(SUMMARY_KEY, "summary_positive"),
    AssetCheckKey(SUMMARY_KEY, "summary_huge"),
]


def seed(inst: DagsterInstance) -> None:
    def run(assets: list, name: str, **kwargs: Any) -> bool:
        result = materialize(assets, instance=inst, tags={SEED: name}, **kwargs)
        return result.success

    assert run(LETTER_ASSETS, "letters_a", partition_key="a")
    assert run(LETTER_ASSETS, "letters_b", partition_key="b")
    assert not run(LETTER_ASSETS, "letters_c", partition_key="c", raise_on_error=False)
    # a run created (its planned events logged) but never launched: d is in progress
    defs = Definitions(
        assets=[letters_src, letters_down],
        asset_checks=[letters_down_ok],
        jobs=[define_asset_job("letters_job", partitions_def=LETTERS)],
    )
    inst.create_run_for_job(
        defs.resolve_job_def("letters_job"), tags={"dagster/partition": "d", SEED: "letters_d"}
    )
    inst.add_dynamic_partitions("fruits", ["apple", "banana", "durian"])
    assert run([fruit], "fruit_apple", partition_key="apple")
    assert not run([fruit], "fruit_durian", partition_key="durian", raise_on_error=False)
    assert run([summary, summary_positive, summary_huge], "summary")
    assert run([letters_src], "letters_a_again", partition_key="a")


seeded = seeded_pair("assets_workload", seed)


# -- views: run ids by their seed names --------------------------------------------------------


class Names:
    def __init__(self, inst: DagsterInstance):
        self.names = {r.run_id: r.tags.get(SEED, "<untagged>") for r in inst.get_runs()}

    def run(self, run_id: str | None) -> str | None:
        return self.names.get(run_id, "<unknown run>") if run_id else run_id


def record_view(names: Names, record: EventLogRecord | None) -> tuple | None:
    if record is None:
        return None
    entry = record.event_log_entry
    tags = entry.tags or {}
    return (
        record.storage_id,
        names.run(record.run_id),
        entry.dagster_event_type,
        record.asset_key,
        record.partition_key,
        {k: v for k, v in tags.items() if k in ("dagster/data_version", "dagster/code_version")},
    )


def asset_view(inst: DagsterInstance, key: AssetKey, partitions_def: Any) -> dict[str, Any]:
    names = Names(inst)
    storage = inst.event_log_storage
    out: dict[str, Any] = {}
    records = inst.get_asset_records([key])
    out["record"] = [
        (
            r.storage_id,
            record_view(names, r.asset_entry.last_materialization_record),
            names.run(r.asset_entry.last_run_id),
            r.asset_entry.asset_details,
        )
        for r in records
    ]
    for name, fetch in (
        ("materializations", inst.fetch_materializations),
        ("observations", inst.fetch_observations),
        ("planned", inst.fetch_planned_materializations),
    ):
        res = fetch(key, limit=100)
        out[name] = ([record_view(names, r) for r in res.records], res.cursor, res.has_more)
    out["materialized_partitions"] = inst.get_materialized_partitions(key)
    out["storage_id_by_partition"] = inst.get_latest_storage_id_by_partition(
        key, ET.ASSET_MATERIALIZATION
    )
    out["data_versions"] = storage.get_latest_tags_by_partition(
        key, ET.ASSET_MATERIALIZATION, ["dagster/data_version"]
    )
    out["attempts"] = {
        partition: (names.run(run_id), storage_id)
        for partition, (
            run_id,
            storage_id,
        ) in storage.get_latest_asset_partition_materialization_attempts_without_materializations(
            key
        ).items()
    }
    planned = inst.get_latest_planned_materialization_info(key)
    out["planned_info"] = planned and (planned.storage_id, names.run(planned.run_id))
    out["code_versions"] = inst.get_latest_materialization_code_versions([key])
    return out


def status_view(inst: DagsterInstance, key: AssetKey, partitions_def: Any) -> dict[str, Any]:
    """Partition status, through the instance and through the asset partitions page (both
    write the status cache on the way, identically)."""
    keys = partitions_def.get_partition_keys(dynamic_partitions_store=inst)
    by_partition = inst.get_status_by_partition(key, [*keys, "nope"], partitions_def)
    subsets = asyncio.run(
        get_partition_subsets(inst, LoadingContextForTest(inst), key, inst, partitions_def)
    )
    cached = inst.get_asset_records([key])[0].asset_entry.cached_status
    return {
        "by_partition": {k: v and v.value for k, v in (by_partition or {}).items()},
        "subsets": [None if s is None else sorted(s.get_partition_keys()) for s in subsets],
        "cache": cached,
    }


def check_view(inst: DagsterInstance) -> dict[str, Any]:
    names = Names(inst)
    storage = inst.event_log_storage
    history = {
        key: [
            (
                r.id,
                names.run(r.run_id),
                r.status,
                r.partition,
                getattr(r.evaluation, "passed", None),
                getattr(
                    getattr(r.evaluation, "target_materialization_data", None), "storage_id", 0
                ),
            )
            for r in storage.get_asset_check_execution_history(key, limit=100)
        ]
        for key in CHECKS
    }
    summaries = {
        key: (
            s.last_check_execution_record and s.last_check_execution_record.id,
            s.last_completed_check_execution_record
            and s.last_completed_check_execution_record.status,
            names.run(s.last_run_id),
        )
        for key, s in storage.get_asset_check_summary_records(CHECKS).items()
    }
    infos = sorted(
        (
            i.check_key.to_user_string(),
            i.partition_key or "",
            i.latest_execution_status,
            names.run(i.latest_planned_run_id),
            i.latest_check_event_storage_id,
            i.latest_materialization_storage_id,
            i.latest_target_materialization_storage_id,
        )
        for i in storage.get_asset_check_partition_info(CHECKS)
    )
    return {"history": history, "summaries": summaries, "partition_info": infos}


def same_view(pair: InstancePair, fn: Any) -> Any:
    stock, rust = pair.both(fn)
    assert stock == rust
    return rust


# -- tests -------------------------------------------------------------------------------------

ASSETS = [
    (LETTER_KEYS[0], LETTERS),
    (LETTER_KEYS[1], LETTERS),
    (FRUIT_KEY, FRUITS),
    (SUMMARY_KEY, None),
]


@pytest.mark.parametrize("key, partitions_def", ASSETS, ids=[k.to_user_string() for k, _ in ASSETS])
def test_asset_reads(seeded: InstancePair, key: AssetKey, partitions_def: Any) -> None:
    view = same_view(seeded, lambda i: asset_view(i, key, partitions_def))
    assert view["materializations"][0], "the asset was materialized"


def test_partition_status(seeded: InstancePair) -> None:
    src = same_view(seeded, lambda i: status_view(i, LETTER_KEYS[0], LETTERS))
    assert src["by_partition"] == {
        "a": "MATERIALIZED",
        "b": "MATERIALIZED",
        "c": "FAILED",
        "d": "IN_PROGRESS",
        "nope": None,
    }
    down = same_view(seeded, lambda i: status_view(i, LETTER_KEYS[1], LETTERS))
    # downstream of c never ran, but the run that planned it failed: c failed there too
    assert down["subsets"] == [["a", "b"], ["c"], ["d"]]
    fruits = same_view(seeded, lambda i: status_view(i, FRUIT_KEY, FRUITS))
    assert fruits["subsets"] == [["apple"], ["durian"], []]
    # read again: from the cache each side wrote
    same_view(seeded, lambda i: status_view(i, LETTER_KEYS[0], LETTERS))


def test_asset_keys_and_records(seeded: InstancePair) -> None:
    same_view(seeded, lambda i: i.all_asset_keys())
    same_view(
        seeded,
        lambda i: [(r.storage_id, r.asset_entry.asset_key) for r in i.get_asset_records()],
    )
    same_view(seeded, lambda i: i.get_dynamic_partitions("fruits"))


def test_check_results(seeded: InstancePair) -> None:
    view = same_view(seeded, check_view)
    letters_check = view["history"][CHECKS[0]]
    assert {(p, passed) for _, _, _, p, passed, _ in letters_check} >= {("a", True), ("b", False)}
    same_view(
        seeded,
        lambda i: {
            k: v.status
            for k, v in i.event_log_storage.get_latest_asset_check_execution_by_key(CHECKS).items()
        },
    )


def test_asset_partitions_of_each_run(seeded: InstancePair) -> None:
    def by_run(inst: DagsterInstance) -> dict:
        names = Names(inst)
        return {
            names.run(run_id): {
                key: partitions
                for key, partitions in inst.get_asset_partitions_for_run(run_id).items()
            }
            for run_id in names.names
        }

    same_view(seeded, by_run)
