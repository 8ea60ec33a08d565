"""Interchange of the event log: one DAGSTER_HOME, written by one implementation, read by the other.

dagster-rs keeps stock's event log files (`history/runs/index.db` + a shard per run), so a home must
move freely between stock Dagster and dagster-rs: every run's events, the stats built from them and
stock's asset queries (latest materialization, asset records, materialization and observation
fetches, partitions, asset check history, run status changes) must read back the same whichever
wrote them, and each must be able to go on writing where the other stopped.

Never a stock and a dagster-rs instance open on the same files in one process at once (two SQLite
libraries in one process break each other's locks, ARCHITECTURE.md): one is disposed before the
other opens; live cross-process cases use a subprocess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
    StaticPartitionsDefinition,
    asset,
    asset_check,
    materialize,
)
from dagster._core.event_api import AssetRecordsFilter, EventRecordsFilter
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

import dagster_rs
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from tests.conftest import load_instance, open_as, write_home
from tests.processes import communicate, poll, spawn, write_script
from tests.stock_api import stock_has

LETTERS = StaticPartitionsDefinition(["x", "y", "z"])


@asset
def source_numbers(context) -> list[int]:
    context.log.info("making numbers")
    return [1, 2, 3]


@asset
def summed(context, source_numbers: list[int]) -> int:
    context.log.warning("summing")
    return sum(source_numbers)


@asset_check(asset=summed)
def summed_is_positive(summed: int) -> AssetCheckResult:
    return AssetCheckResult(passed=summed > 0, metadata={"value": summed})


@asset_check(asset=summed)
def summed_is_huge(summed: int) -> AssetCheckResult:
    return AssetCheckResult(passed=summed > 1000)


@asset(partitions_def=LETTERS)
def lettered(context) -> str:
    return context.partition_key


@asset
def broken() -> None:
    raise RuntimeError("fails on purpose")


ASSET_KEYS = [
    AssetKey("source_numbers"),
    AssetKey("summed"),
    AssetKey("lettered"),
    AssetKey("broken"),
    AssetKey(["external", "table"]),
]
CHECK_KEYS = [
    AssetCheckKey(AssetKey("summed"), "summed_is_positive"),
    AssetCheckKey(AssetKey("summed"), "summed_is_huge"),
    AssetCheckKey(AssetKey(["external", "table"]), "external_check"),
]


def _open(home: Path, kind: str) -> DagsterInstance:
    return open_as(home, kind, "event_log_storage", RustEventLogStorage, SqliteEventLogStorage)


def populate(inst: DagsterInstance, label: str) -> dict[str, Any]:
    """Real executions plus runless events: every kind of event-log write with index effects."""
    ids: dict[str, Any] = {"label": label}
    result = materialize(
        [source_numbers, summed, summed_is_positive, summed_is_huge],
        instance=inst,
        tags={"origin": label},
    )
    assert result.success
    ids["main"] = result.run_id
    ids["lettered"] = []
    for key in ("x", "z"):
        result = materialize([lettered], instance=inst, partition_key=key)
        assert result.success
        ids["lettered"].append(result.run_id)
    result = materialize([broken], instance=inst, raise_on_error=False)
    assert not result.success
    ids["failed"] = result.run_id
    # Runless events (run id "", the shard `.db`).
    external = AssetKey(["external", "table"])
    inst.report_runless_asset_event(
        AssetMaterialization(asset_key=external, metadata={"rows": 10}, tags={"source": label})
    )
    inst.report_runless_asset_event(AssetObservation(asset_key=external, metadata={"seen": 1}))
    inst.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=external, check_name="external_check", passed=True, metadata={"ok": 1}
        )
    )
    inst.report_engine_event(f"engine note from {label}", job_name="notes", run_id=ids["main"])
    return ids


def _records(result: Any) -> list[Any]:
    return list(result.records)


def observe(inst: DagsterInstance, run_ids: list[str]) -> dict[str, Any]:
    """What the events domain and stock's asset queries answer, as comparable values."""
    storage = inst.event_log_storage
    obs: dict[str, Any] = {}
    for run_id in run_ids:
        obs[f"all_logs {run_id}"] = inst.all_logs(run_id)
        obs[f"records {run_id}"] = [
            (r.storage_id, r.event_log_entry) for r in inst.get_records_for_run(run_id).records
        ]
        obs[f"stats {run_id}"] = inst.get_run_stats(run_id)
        obs[f"step stats {run_id}"] = inst.get_run_step_stats(run_id)
        # a read that came within the tested range, where the installed stock has it
        if stock_has("SqlEventLogStorage.get_asset_keys_for_run"):
            obs[f"asset keys {run_id}"] = sorted(
                storage.get_asset_keys_for_run(run_id), key=lambda k: k.to_string()
            )
    obs["asset keys"] = sorted(inst.get_asset_keys(), key=lambda k: k.to_string())
    obs["asset records"] = sorted(
        inst.get_asset_records(ASSET_KEYS), key=lambda r: r.asset_entry.asset_key.to_string()
    )
    for key in ASSET_KEYS:
        name = key.to_user_string()
        obs[f"latest materialization {name}"] = inst.get_latest_materialization_event(key)
        obs[f"materializations {name}"] = _records(inst.fetch_materializations(key, limit=100))
        obs[f"materializations asc {name}"] = _records(
            inst.fetch_materializations(key, limit=2, ascending=True)
        )
        obs[f"observations {name}"] = _records(inst.fetch_observations(key, limit=100))
        obs[f"planned {name}"] = _records(inst.fetch_planned_materializations(key, limit=100))
        obs[f"partitions {name}"] = sorted(inst.get_materialized_partitions(key))
    obs["lettered z"] = _records(
        inst.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("lettered"), asset_partitions=["z"]), limit=10
        )
    )
    obs["lettered storage ids"] = dict(
        storage.get_latest_storage_id_by_partition(
            AssetKey("lettered"), DagsterEventType.ASSET_MATERIALIZATION
        )
    )
    for check_key in CHECK_KEYS:
        obs[f"check history {check_key.to_user_string()}"] = (
            storage.get_asset_check_execution_history(check_key, limit=10)
        )
    obs["latest checks"] = dict(storage.get_latest_asset_check_execution_by_key(CHECK_KEYS))
    for status in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
        obs[f"status changes {status.name}"] = _records(
            inst.fetch_run_status_changes(status, limit=100)
        )
    obs["max record id"] = storage.get_maximum_record_id()
    obs["index logs"] = dict(storage.get_logs_for_all_runs_by_log_id(after_cursor=-1))
    obs["run success records"] = list(
        storage.get_event_records(EventRecordsFilter(DagsterEventType.RUN_SUCCESS), limit=100)
    )
    return obs


def all_run_ids(inst: DagsterInstance) -> list[str]:
    return sorted([*inst.get_run_ids(), ""])


def check_content(obs: dict[str, Any], ids: dict[str, Any]) -> None:
    """What `populate` wrote has the meaning Dagster gives it (the comparison is not vacuous)."""
    main = ids["main"]
    # Two asset steps and the two checks' steps.
    assert obs[f"stats {main}"].steps_succeeded == 4
    assert obs[f"stats {main}"].materializations == 2
    assert any(e.message == f"engine note from {ids['label']}" for e in obs[f"all_logs {main}"])
    latest = obs["latest materialization summed"]
    assert latest is not None and latest.run_id == main
    assert obs["partitions lettered"] == ["x", "z"]
    assert [r.run_id for r in obs["lettered z"]] == [ids["lettered"][1]]
    assert set(obs["lettered storage ids"]) == {"x", "z"}
    positive = obs["check history summed:summed_is_positive"]
    huge = obs["check history summed:summed_is_huge"]
    assert positive[0].status.value == "SUCCEEDED" and positive[0].run_id == main
    assert huge[0].status.value == "FAILED"
    assert obs["check history external/table:external_check"][0].run_id == ""
    assert len(obs["materializations external/table"]) == 1
    assert len(obs["observations external/table"]) == 1
    assert obs["materializations broken"] == []
    assert len(obs["planned broken"]) == 1
    succeeded = {r.run_id for r in obs["status changes RUN_SUCCESS"]}
    assert {main, *ids["lettered"]} <= succeeded
    assert [r.run_id for r in obs["status changes RUN_FAILURE"]] == [ids["failed"]]
    assert {AssetKey(k) for k in ("source_numbers", "summed")} <= set(obs["asset keys"])


def assert_same(writer: dict[str, Any], reader: dict[str, Any]) -> None:
    assert writer.keys() == reader.keys()
    differing = [key for key in writer if writer[key] != reader[key]]
    assert not differing, "\n".join(
        f"{key}:\n  writer: {writer[key]!r}\n  reader: {reader[key]!r}" for key in differing[:5]
    )


def _append(inst: DagsterInstance, ids: dict[str, Any], label: str) -> dict[str, Any]:
    """The reader writes on: into a run the other wrote, and a new run of an existing asset."""
    inst.report_engine_event(f"appended by {label}", job_name="notes", run_id=ids["main"])
    result = materialize([source_numbers], instance=inst)
    assert result.success
    return {"appended_run": result.run_id}


def _roundtrip(tmp_path: Path, writer: str, reader: str) -> None:
    home = tmp_path / "home"
    inst = _open(home, writer)
    try:
        ids = populate(inst, writer)
        run_ids = all_run_ids(inst)
        written = observe(inst, run_ids)
        check_content(written, ids)
    finally:
        inst.dispose()

    inst = _open(home, reader)
    try:
        assert all_run_ids(inst) == run_ids
        read = observe(inst, run_ids)
        assert_same(written, read)
        appended = _append(inst, ids, reader)
        main_ids = [sid for sid, _ in read[f"records {ids['main']}"]]
        after_append = observe(inst, all_run_ids(inst))
    finally:
        inst.dispose()

    # Back to the writer: it reads what the reader appended, after its own events.
    inst = _open(home, writer)
    try:
        now = observe(inst, all_run_ids(inst))
        assert_same(after_append, now)
        main_records = now[f"records {ids['main']}"]
        assert [sid for sid, _ in main_records[:-1]] == main_ids
        assert main_records[-1][0] > main_ids[-1]
        assert main_records[-1][1].message == f"appended by {reader}"
        latest = now["latest materialization source_numbers"]
        assert latest is not None and latest.run_id == appended["appended_run"]
        assert len(now["materializations source_numbers"]) == 2
        # And it writes on too; the ids keep increasing.
        inst.report_engine_event("last word", job_name="notes", run_id=ids["main"])
        records = inst.get_records_for_run(ids["main"]).records
        assert records[-1].event_log_entry.message == "last word"
        assert records[-1].storage_id > main_records[-1][0]
    finally:
        inst.dispose()


def test_dagster_rs_writes_stock_reads(tmp_path: Path) -> None:
    _roundtrip(tmp_path, writer="rust", reader="stock")


def test_stock_writes_dagster_rs_reads(tmp_path: Path) -> None:
    _roundtrip(tmp_path, writer="stock", reader="rust")


def test_domain_switched_off_reads_what_dagster_rs_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`DAGSTER_RS_DOMAINS=none` serves the same home with stock's event log."""
    home = tmp_path / "home"
    inst = _open(home, "rust")
    try:
        ids = populate(inst, "rust")
        run_ids = all_run_ids(inst)
        written = observe(inst, run_ids)
    finally:
        inst.dispose()
    monkeypatch.setenv("DAGSTER_RS_DOMAINS", "none")
    inst = load_instance(home)
    try:
        assert isinstance(inst, dagster_rs.DagsterInstance)
        assert type(inst.event_log_storage) is SqliteEventLogStorage
        assert_same(written, observe(inst, run_ids))
        check_content(written, ids)
    finally:
        inst.dispose()


# -- live, across processes ----------------------------------------------------------------------

# Writes an engine event "ev-<i>" every 0.2 s into the run with the instance its dagster.yaml
# describes, and keeps the instance open until the stop-file appears (as a run worker does while
# its run is in progress).
SLOW_WRITER = """\
import os, sys, time
from dagster import DagsterInstance

home, run_id, count, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
instance = DagsterInstance.from_config(home)
print("CLASS", type(instance.event_log_storage).__name__, flush=True)
for i in range(count):
    instance.report_engine_event(f"ev-{i}", job_name="live_job", run_id=run_id)
    print("WROTE", i, flush=True)
    time.sleep(0.2)
deadline = time.monotonic() + 120
while not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.02)
instance.dispose()
print("DONE", flush=True)
"""


def _slow_writer(tmp_path: Path, home: Path, run_id: str, count: int, domains: str | None):
    script = write_script(tmp_path / "slow_writer.py", SLOW_WRITER)
    stop = tmp_path / "stop"
    return spawn(script, str(home), run_id, str(count), str(stop), domains=domains)


@pytest.mark.parametrize(("writer", "watcher"), [("rust", "stock"), ("stock", "rust")])
def test_live_watch_across_implementations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str, watcher: str
) -> None:
    """A webserver of one implementation tails a run that a worker of the other is writing: each
    event must arrive while the worker is still running, not when it exits."""
    home = write_home(tmp_path / "home", "rust")
    load_instance(home).dispose()
    count = 5
    # The watching process serves the home with stock's event log when the domain is off.
    if watcher == "stock":
        monkeypatch.setenv("DAGSTER_RS_DOMAINS", "none")
    inst = load_instance(home)
    if watcher == "rust":
        assert isinstance(inst.event_log_storage, RustEventLogStorage)
    else:
        assert type(inst.event_log_storage) is SqliteEventLogStorage
    seen: list[str] = []
    proc = None
    try:
        inst.watch_event_logs("live-run", None, lambda e, _c: seen.append(e.message))
        proc = _slow_writer(
            tmp_path, home, "live-run", count, domains="none" if writer == "stock" else None
        )
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        expected = "RustEventLogStorage" if writer == "rust" else "SqliteEventLogStorage"
        assert first == ["CLASS", expected], first
        written = 0
        while written < count:
            line = proc.stdout.readline()
            assert line, "the writer stopped"
            if line.startswith("WROTE"):
                written += 1
        # The writer is alive and keeps its instance open; every event must still arrive.
        poll(lambda: len(seen) >= count, timeout=15, every=0.05)
        assert proc.poll() is None
        assert seen == [f"ev-{i}" for i in range(count)], (
            f"{len(seen)} of {count} events reached the {watcher} watcher while the {writer}"
            " writer was running"
        )
    finally:
        (tmp_path / "stop").touch()
        if proc is not None:
            _, err = communicate(proc, timeout=60)
            assert proc.returncode == 0, err[-3000:]
        inst.dispose()
