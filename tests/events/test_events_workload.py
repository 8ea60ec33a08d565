"""A real workload's event log: a 20-asset graph (`workload20.py`) executed with the multiprocess
executor, once on stock Dagster and once on dagster-rs. Every step runs in its own subprocess,
which rebuilds the instance from the run's `InstanceRef` and writes its events into the run's
shard while the orchestrating process writes the run's own events.

Both runs must write the same events: per step the same ordered sequence, the same run-level
sequence, and each entry equal to stock's up to what differs between any two executions (run ids,
storage ids, timestamps, process ids, durations, the home's path, hashes derived from the run id).
The interleaving of different steps' events depends on scheduling, so it is not compared.

The executor starts step processes through a forkserver (its `start_method` option) rather than by
spawning each from scratch: the same executor and event flow, in about half the time.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetCheckKey, AssetKey, execute_job, reconstructable
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import serialize_value

import dagster_rs
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from tests.conftest import load_instance, write_home
from tests.events.workload20 import ASSETS, LAYERS, WIDTH, assets20_job

CHECK_KEY = AssetCheckKey(AssetKey([f"a{LAYERS - 1}_0"]), "last_layer_is_positive")
PRELOAD = [
    "dagster._core.executor.multiprocess",
    "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "dagster_rs",
    "tests.events.workload20",
]
RUN_CONFIG = {
    "execution": {"config": {"start_method": {"forkserver": {"preload_modules": PRELOAD}}}}
}
STORAGE_NAMES = re.compile(r"\b(RustEventLogStorage|SqliteEventLogStorage)\b")
DURATION = re.compile(r"\b\d+(\.\d+)?\s?(ms|s|seconds)\b")
PID = re.compile(r"(pid:?\s?)\d+")
RUN_HASH = re.compile(r"\b[0-9a-f]{64}\b")
# Fields whose values differ between any two executions.
VOLATILE_FIELDS = {"timestamp", "pid", "duration_ms", "storage_id", "log_key"}


def _normalize(value: Any, run_id: str, home: str) -> Any:
    if isinstance(value, dict):
        if value.get("label") == "pid":  # the step worker's pid, as a metadata entry
            return "<pid entry>"
        out = {}
        for key, item in value.items():
            if key in VOLATILE_FIELDS and item is not None:
                out[key] = f"<{key}>"
            elif "input_event_pointer" in key:  # a storage id, as a tag value
                out[key] = "<storage id>"
            else:
                out[key] = _normalize(item, run_id, home)
        return out
    if isinstance(value, list):
        return [_normalize(item, run_id, home) for item in value]
    if isinstance(value, str):
        value = value.replace(run_id, "<run id>").replace(home, "<home>")
        value = STORAGE_NAMES.sub("<event log storage>", value)
        value = PID.sub(r"\1<pid>", value)
        # Default data versions hash the code version, which defaults to the run id.
        value = RUN_HASH.sub("<hash>", value)
        return DURATION.sub("<duration>", value)
    return value


def _owner(entry: EventLogEntry) -> str:
    """The step an entry belongs to; a step process's LOGS_CAPTURED event has no step key but
    names its steps."""
    event = entry.dagster_event
    if event is not None and event.event_type == DagsterEventType.LOGS_CAPTURED:
        return "logs:" + ",".join(event.event_specific_data.step_keys)
    return entry.step_key or "<run>"


def grouped(logs: list[EventLogEntry], run_id: str, home: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for entry in logs:
        out[_owner(entry)].append(_normalize(json.loads(serialize_value(entry)), run_id, home))
    return dict(out)


def _type(entry: EventLogEntry) -> str:
    return entry.dagster_event_type.value if entry.dagster_event_type else "LOG"


@pytest.fixture(scope="module")
def workloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for kind in ("stock", "rust"):
        home = write_home(tmp_path_factory.mktemp(f"workload20_{kind}") / "home", kind)
        inst = load_instance(home)
        try:
            with execute_job(
                reconstructable(assets20_job), instance=inst, run_config=RUN_CONFIG
            ) as result:
                failures = [e.message for e in result.all_events if e.is_failure]
                run_id = result.run_id
                success = result.success
            logs = list(inst.all_logs(run_id))
            records = inst.get_records_for_run(run_id).records
            out[kind] = {
                "home": home,
                "class": type(inst),
                "storage": type(inst.event_log_storage),
                "success": success,
                "failures": failures,
                "run_id": run_id,
                "status": inst.get_run_by_id(run_id).status,
                "logs": logs,
                "storage_ids": [r.storage_id for r in records],
                "stats": inst.get_run_stats(run_id),
                "step_stats": sorted(
                    (s.step_key, s.status.value if s.status else None, s.attempts)
                    for s in inst.get_run_step_stats(run_id)
                ),
                "latest": {
                    key: inst.get_latest_materialization_event(key)
                    for key in [AssetKey(a.key.path) for a in ASSETS]
                },
                "checks": inst.event_log_storage.get_asset_check_execution_history(
                    CHECK_KEY, limit=5
                ),
            }
        finally:
            inst.dispose()
    return out


def test_both_runs_succeeded_on_their_implementation(workloads: dict[str, Any]) -> None:
    for kind, w in workloads.items():
        assert w["success"], f"{kind}: {w['failures']}"
        assert w["status"] == DagsterRunStatus.SUCCESS
    assert workloads["rust"]["class"] is dagster_rs.DagsterInstance
    assert issubclass(workloads["rust"]["storage"], RustEventLogStorage)
    assert workloads["stock"]["storage"] is SqliteEventLogStorage


def test_step_subprocesses_wrote_through_their_own_implementation(
    workloads: dict[str, Any],
) -> None:
    expected = {"rust": "RustEventLogStorage", "stock": "SqliteEventLogStorage"}
    for kind, w in workloads.items():
        notes = [e.user_message for e in w["logs"] if "is the first of its layer" in e.user_message]
        assert len(notes) == LAYERS
        assert all(note.endswith(f"on {expected[kind]}") for note in notes), notes
        pids = {e.dagster_event.pid for e in w["logs"] if e.dagster_event and e.step_key}
        assert len(pids - {None}) > WIDTH, f"{kind}: steps did not run in subprocesses"


def test_run_level_event_sequence_matches_stock(workloads: dict[str, Any]) -> None:
    def run_level(w: dict[str, Any]) -> list[str]:
        return [_type(e) for e in w["logs"] if _owner(e) == "<run>"]

    stock, rust = run_level(workloads["stock"]), run_level(workloads["rust"])
    assert rust == stock
    assert rust[0] == DagsterEventType.RUN_START.value
    assert DagsterEventType.RUN_SUCCESS.value in rust


def test_per_step_event_sequences_match_stock(workloads: dict[str, Any]) -> None:
    def per_step(w: dict[str, Any]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for entry in w["logs"]:
            out[_owner(entry)].append(_type(entry))
        return dict(out)

    stock, rust = per_step(workloads["stock"]), per_step(workloads["rust"])
    assert sorted(rust) == sorted(stock)
    differing = [step for step in stock if stock[step] != rust[step]]
    assert not differing, "\n".join(
        f"{step}:\n  stock: {stock[step]}\n  rust:  {rust[step]}" for step in differing[:3]
    )
    steps = [s for s in rust if not s.startswith(("logs:", "<run>"))]
    assert len(steps) == len(ASSETS) + 1  # the 20 assets and the check
    for step in steps:
        assert rust[step][-1] == DagsterEventType.STEP_SUCCESS.value, step


def test_all_logs_match_stock_up_to_volatile_fields(workloads: dict[str, Any]) -> None:
    stock, rust = (
        grouped(w["logs"], w["run_id"], str(w["home"]))
        for w in (workloads["stock"], workloads["rust"])
    )
    assert len(workloads["rust"]["logs"]) == len(workloads["stock"]["logs"])
    assert sorted(rust) == sorted(stock)
    for owner in stock:
        assert len(rust[owner]) == len(stock[owner]), owner
        for i, (expected, actual) in enumerate(zip(stock[owner], rust[owner], strict=True)):
            assert actual == expected, f"{owner} event #{i} differs"


def test_storage_order_and_index_match_stock(workloads: dict[str, Any]) -> None:
    rust = workloads["rust"]
    ids = rust["storage_ids"]
    assert ids == sorted(set(ids)) and len(ids) == len(rust["logs"])
    stock = workloads["stock"]
    counts = ("steps_succeeded", "steps_failed", "materializations", "expectations")
    assert [getattr(rust["stats"], c) for c in counts] == [
        getattr(stock["stats"], c) for c in counts
    ]
    assert rust["stats"].start_time and rust["stats"].end_time
    assert rust["stats"].steps_succeeded == len(ASSETS) + 1
    assert rust["stats"].materializations == len(ASSETS)
    assert rust["step_stats"] == stock["step_stats"]
    for key, latest in rust["latest"].items():
        assert latest is not None, key
        assert latest.run_id == rust["run_id"]
        assert stock["latest"][key] is not None
        assert latest.dagster_event.message == stock["latest"][key].dagster_event.message
    assert [c.status for c in rust["checks"]] == [c.status for c in stock["checks"]]
    assert [c.run_id for c in rust["checks"]] == [rust["run_id"]]


def test_stock_reads_the_workload_dagster_rs_wrote(workloads: dict[str, Any]) -> None:
    home: Path = workloads["rust"]["home"]
    storage = SqliteEventLogStorage(str(home / "history" / "runs"))
    try:
        run_id = workloads["rust"]["run_id"]
        assert list(storage.get_logs_for_run(run_id)) == workloads["rust"]["logs"]
        records = storage.get_records_for_run(run_id).records
        assert [r.storage_id for r in records] == workloads["rust"]["storage_ids"]
    finally:
        storage.dispose()
