"""The instance a run worker rebuilds from the run's `InstanceRef` is the parent's: same class,
same live Rust domains, same durability.

`dagster job launch` on a dagster-rs home: the default run coordinator and run launcher hand the
run to the CLI's code server, which starts a run worker (`dagster api execute_run`) that rebuilds
the instance from the serialized `InstanceRef`. The job's first op records what its process sees
of `context.instance` as output metadata; the in-process job runs it in the run worker, the
multiprocess job in a step subprocess of the run worker (which rebuilds the instance from the ref
again). Both for the default configuration (every implemented domain, durability full) and for a
subset of domains with durability normal; a stock home's worker is the control.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance
from dagster._core.storage.dagster_run import DagsterRunStatus

from dagster_rs.domains import IMPLEMENTED
from tests.deployment import deploy_defs as defs
from tests.deployment.cli import DEFS, Command, open_home, run_all, wait_finished, write_homes
from tests.homes import clean_env

CONFIGS = {
    "default": "",
    "subset": "rust_domains: [runs, events]\ndurability: normal\n",
}
JOBS = (defs.JOB, defs.MULTIPROCESS_JOB)
# The control: a stock home's run worker records stock's instance.
STOCK = "stock"


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every (config, job) launched at once, each config on a dagster-rs home of its own."""
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp)
        root = tmp_path_factory.mktemp("workers")
        homes = {}
        for config, yaml in CONFIGS.items():
            pair = write_homes(root / config, rust_yaml=yaml)
            homes[config] = pair["rust"]
            if config == "default":
                homes[STOCK] = pair["stock"]
        for home in homes.values():
            # The files exist before two processes use them at once (see test_cli_workload).
            with DagsterInstance.from_config(str(home)) as inst:
                inst.get_runs(limit=1)
        launches = [(config, job) for config in CONFIGS for job in JOBS] + [(STOCK, defs.JOB)]
        results = run_all(
            Command(
                f"{config}:{job}",
                homes[config],
                ("job", "launch", "-f", str(DEFS), "-j", job, "--tags", f'{{"job": "{job}"}}'),
            )
            for config, job in launches
        )
        for home in homes.values():
            with DagsterInstance.from_config(str(home)) as inst:
                for run in inst.get_runs():
                    wait_finished(inst, run.run_id)
        yield {"root": root, "homes": homes, "results": results}


def _parent(home: Path) -> DagsterInstance:
    return DagsterInstance.from_config(str(home))


def _recorded(instance: DagsterInstance, job: str) -> dict[str, Any]:
    """What the job's `report_instance` step recorded."""
    (run,) = [r for r in instance.get_runs() if r.tags.get("job") == job]
    assert run.status == DagsterRunStatus.SUCCESS
    outputs = [
        e.dagster_event
        for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_OUTPUT)
        if e.dagster_event and e.dagster_event.step_key == "report_instance"
    ]
    assert len(outputs) == 1
    metadata = outputs[0].step_output_data.metadata  # type: ignore[union-attr]
    return metadata[defs.INSTANCE_ENTRY].value  # type: ignore[return-value]


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("config", CONFIGS)
def test_worker_rebuilds_the_parents_instance(
    launched: dict[str, Any], config: str, job: str
) -> None:
    result = launched["results"][f"{config}:{job}"]
    assert result.returncode == 0, result.describe()
    with _parent(launched["homes"][config]) as parent:
        seen = _recorded(parent, job)
        assert seen["class"] == f"{type(parent).__module__}.{type(parent).__qualname__}"
        assert seen["class"] == "dagster_rs.instance.DagsterInstance"
        assert seen["rust_domains"] == sorted(parent.rust_domains)  # type: ignore[attr-defined]
        assert seen["durability"] == parent.durability  # type: ignore[attr-defined]
        assert seen["run_storage"] == type(parent.run_storage).__name__
        assert seen["event_log_storage"] == type(parent.event_log_storage).__name__
        assert seen["schedule_storage"] == type(parent.schedule_storage).__name__
    # A process of its own: the run worker, or a step process under it.
    assert seen["pid"] != os.getpid()
    if config == "default":
        assert seen["rust_domains"] == sorted(IMPLEMENTED)
        assert seen["durability"] == "full"
    else:
        assert seen["rust_domains"] == ["events", "runs"]
        assert seen["durability"] == "normal"
        # scheduling is off: its storage is stock's over the same file
        assert seen["schedule_storage"] == "SqliteScheduleStorage"


def test_a_stock_worker_records_stocks_instance(launched: dict[str, Any]) -> None:
    """The control: what the step records tells the implementations apart."""
    result = launched["results"][f"{STOCK}:{defs.JOB}"]
    assert result.returncode == 0, result.describe()
    with _parent(launched["homes"][STOCK]) as parent:
        seen = _recorded(parent, defs.JOB)
    assert seen["class"] == "dagster._core.instance.instance.DagsterInstance"
    assert seen["rust_domains"] is None and seen["durability"] is None
    assert seen["run_storage"] == "SqliteRunStorage"


def test_the_runs_read_back_alike_through_stock(launched: dict[str, Any]) -> None:
    """The worker wrote the runs through the same domains: a stock reader sees them finished."""
    for config in CONFIGS:
        home = launched["homes"][config]
        with open_home(home, "stock", launched["root"] / config) as stock:
            runs = {r.tags["job"]: r.status for r in stock.get_runs()}
        assert runs == {job: DagsterRunStatus.SUCCESS for job in JOBS}, config
