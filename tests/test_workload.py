"""A real Dagster workload on an instance loaded from dagster.yaml: asset materializations (one
asset partitioned, one failing) in process, and a job on the multiprocess executor whose step
subprocesses rebuild the instance from its `InstanceRef`. dagster-rs must run it to the same
outcome, recorded the same way, as stock Dagster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, execute_job, materialize, reconstructable
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.runs import SqliteRunStorage

import dagster_rs
from dagster_rs.domains import IMPLEMENTED
from dagster_rs.storage import RustRunStorage
from tests.conftest import load_instance, write_home
from tests.workload_defs import UNPARTITIONED_ASSETS, colored, exploding, multiprocess_job

PARTITIONS = ("red", "blue")


def run_workload(inst: DagsterInstance) -> dict[str, Any]:
    """Run the workload; return the multiprocess job's step reports."""
    result = materialize(UNPARTITIONED_ASSETS, instance=inst, tags={"workload": "assets"})
    assert result.success
    for key in PARTITIONS:
        result = materialize([colored], instance=inst, partition_key=key)
        assert result.success
    result = materialize([exploding], instance=inst, raise_on_error=False)
    assert not result.success

    with execute_job(reconstructable(multiprocess_job), instance=inst) as job_result:
        assert job_result.success, [
            event.message for event in job_result.all_events if event.is_failure
        ]
        return {
            "report_a": job_result.output_for_node("report_a"),
            "report_b": job_result.output_for_node("report_b"),
        }


def _portable_tags(tags: dict[str, str], run_ids: set[str]) -> dict[str, str]:
    """Tags without values that identify a particular run (those differ between two homes)."""
    return {k: v for k, v in tags.items() if v not in run_ids and not k.endswith("run_id")}


def summarize(inst: DagsterInstance) -> list[dict[str, Any]]:
    records = inst.get_run_records(ascending=True, order_by="id")
    run_ids = {r.dagster_run.run_id for r in records}
    out = []
    for record in records:
        run = record.dagster_run
        stats = inst.get_run_stats(run.run_id)
        out.append(
            {
                "job_name": run.job_name,
                "status": run.status,
                "tags": _portable_tags(dict(run.tags), run_ids),
                "has_job_snapshot": bool(run.job_snapshot_id)
                and inst.has_job_snapshot(run.job_snapshot_id),
                "has_plan_snapshot": bool(run.execution_plan_snapshot_id),
                "started": record.start_time is not None,
                "ended": record.end_time is not None,
                "step_stats": sorted(
                    (s.step_key, s.status.value if s.status else None)
                    for s in inst.get_run_step_stats(run.run_id)
                ),
                "steps_succeeded": stats.steps_succeeded,
                "steps_failed": stats.steps_failed,
                "materializations": stats.materializations,
            }
        )
    return out


def partition_summary(inst: DagsterInstance) -> list[tuple[str, str]]:
    return sorted(
        (p.partition, p.status.value)
        for p in inst.get_run_partition_data(RunsFilter(job_name="__ephemeral_asset_job__"))
    )


@pytest.fixture(scope="module")
def workloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The workload, once on each implementation (it is the slow part of the suite)."""
    out: dict[str, Any] = {}
    for kind in ("stock", "rust"):
        home = write_home(tmp_path_factory.mktemp(f"workload_{kind}") / "home", kind)
        inst = load_instance(home)
        try:
            report = run_workload(inst)
            out[kind] = {
                "home": home,
                "class": type(inst),
                "run_storage": type(inst.run_storage),
                "report": report,
                "summary": summarize(inst),
                "partitions": partition_summary(inst),
                "runs": list(inst.get_runs()),
            }
        finally:
            inst.dispose()
    return out


def test_workload_ran_on_dagster_rs(workloads: dict[str, Any]) -> None:
    assert workloads["rust"]["class"] is dagster_rs.DagsterInstance
    assert issubclass(workloads["rust"]["run_storage"], RustRunStorage)
    assert workloads["stock"]["class"] is DagsterInstance


def test_step_subprocesses_rebuilt_a_dagster_rs_instance(workloads: dict[str, Any]) -> None:
    report = workloads["rust"]["report"]
    for seen in report.values():
        assert seen["instance_class"] == "dagster_rs.instance.DagsterInstance"
        assert seen["run_storage_class"] == "RustRunStorage"
        assert seen["event_log_storage_class"] == "RustEventLogStorage"
        assert seen["rust_domains"] == sorted(IMPLEMENTED)
        # The subprocess reads the run its parent process wrote, in progress.
        assert seen["run_status"] == DagsterRunStatus.STARTED.value
        assert seen["run_job_name"] == "multiprocess_job"
    stock = workloads["stock"]["report"]
    assert stock["report_a"]["instance_class"] == "dagster._core.instance.instance.DagsterInstance"
    for side in ("report_a", "report_b"):
        for key in ("run_status", "run_job_name"):
            assert report[side][key] == stock[side][key]


def test_run_records_match_stock(workloads: dict[str, Any]) -> None:
    stock, rust = workloads["stock"]["summary"], workloads["rust"]["summary"]
    assert len(rust) == len(stock) == 1 + len(PARTITIONS) + 2
    for i, (expected, actual) in enumerate(zip(stock, rust, strict=True)):
        assert actual == expected, f"run #{i} ({expected['job_name']}) differs"


def test_run_statuses(workloads: dict[str, Any]) -> None:
    statuses = [(r["job_name"], r["status"]) for r in workloads["rust"]["summary"]]
    assert statuses == [
        ("__ephemeral_asset_job__", DagsterRunStatus.SUCCESS),
        ("__ephemeral_asset_job__", DagsterRunStatus.SUCCESS),
        ("__ephemeral_asset_job__", DagsterRunStatus.SUCCESS),
        ("__ephemeral_asset_job__", DagsterRunStatus.FAILURE),
        ("multiprocess_job", DagsterRunStatus.SUCCESS),
    ]
    multiprocess = workloads["rust"]["summary"][-1]
    assert multiprocess["step_stats"] == [("report_a", "SUCCESS"), ("report_b", "SUCCESS")]
    assert all(r["started"] and r["ended"] for r in workloads["rust"]["summary"])


def test_partitions_match_stock(workloads: dict[str, Any]) -> None:
    assert workloads["rust"]["partitions"] == workloads["stock"]["partitions"]
    assert workloads["rust"]["partitions"] == sorted((p, "SUCCESS") for p in PARTITIONS)


def test_stock_reads_the_workload_dagster_rs_wrote(workloads: dict[str, Any]) -> None:
    home: Path = workloads["rust"]["home"]
    storage = SqliteRunStorage.from_local(str(home / "history"))
    try:
        assert storage.get_runs() == workloads["rust"]["runs"]
    finally:
        storage.dispose()
