"""Dagster's own CLI on a dagster-rs DAGSTER_HOME: `dagster instance info / migrate / reindex`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster._core.storage.dagster_run import DagsterRun

from dagster_rs.domains import IMPLEMENTED
from tests.conftest import load_instance, write_home

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("DAGSTER_RS_DOMAINS", None)
    return subprocess.run(
        [DAGSTER, "instance", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def home_with_runs(tmp_path: Path) -> Path:
    home = write_home(tmp_path / "home", "rust")
    inst = load_instance(home)
    try:
        for i in range(3):
            inst.add_run(DagsterRun(job_name="cli_job", run_id=f"cli-run-{i}", tags={"i": str(i)}))
    finally:
        inst.dispose()
    return home


def test_instance_info_reports_rust_storage_and_domains(home_with_runs: Path) -> None:
    out = _cli(home_with_runs, "info")
    assert out.returncode == 0, out.stderr
    assert "run_storage: RustRunStorage" in out.stdout
    assert "event_log_storage: RustEventLogStorage" in out.stdout
    assert "dagster_rs:" in out.stdout
    # every implemented domain is live by default, listed in order
    listed = "".join(f"\n  - {domain}" for domain in sorted(IMPLEMENTED))
    assert f"rust_domains:{listed}\n" in out.stdout


@pytest.mark.parametrize("command", ["migrate", "reindex"])
def test_migrate_and_reindex_keep_every_run(home_with_runs: Path, command: str) -> None:
    out = _cli(home_with_runs, command)
    assert out.returncode == 0, out.stderr
    inst = load_instance(home_with_runs)
    try:
        assert list(inst.get_run_ids()) == ["cli-run-2", "cli-run-1", "cli-run-0"]
        assert inst.get_run_tags(["i"]) == [("i", {"0", "1", "2"})]
        assert inst.run_storage.alembic_version() == ("29b539ebc72a", "29b539ebc72a")
    finally:
        inst.dispose()
