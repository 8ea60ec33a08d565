"""Fixtures of the run_launcher suite: instance pairs (stock, dagster-rs) configured with a run
launcher / coordinator of `tests.run_launcher.launchers`, and runs that can be submitted."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.code_pointer import FileCodePointer
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from tests.conftest import InstancePair, make_instance
from tests.runs.helpers import job_origin, rid

DEFS = Path(__file__).with_name("launch_defs.py")


def launcher_yaml(
    launcher: str | None = None, coordinator: str | None = None, extra: str = ""
) -> str:
    text = ""
    if launcher:
        text += f"run_launcher:\n  module: tests.run_launcher.launchers\n  class: {launcher}\n"
    if coordinator:
        text += (
            f"run_coordinator:\n  module: tests.run_launcher.launchers\n  class: {coordinator}\n"
        )
    return text + extra


def make_pair(tmp_path: Path, extra_yaml: str) -> InstancePair:
    pair = InstancePair(
        make_instance(tmp_path, "stock", extra_yaml), make_instance(tmp_path, "rust", extra_yaml)
    )
    assert "run_launcher" in pair.rust.rust_domains  # type: ignore[attr-defined]
    return pair


@pytest.fixture
def pair_with(tmp_path: Path) -> Iterator[Callable[..., InstancePair]]:
    made: list[InstancePair] = []

    def build(**kwargs: Any) -> InstancePair:
        made.append(make_pair(tmp_path / f"p{len(made)}", launcher_yaml(**kwargs)))
        return made[-1]

    yield build
    for pair in made:
        pair.dispose()


def submittable_run(n: int, status: DagsterRunStatus = DagsterRunStatus.NOT_STARTED) -> DagsterRun:
    """A run with both origins set, as `submit_run` requires (never executed by these launchers)."""
    code_origin = JobPythonOrigin(
        "hello_job",
        RepositoryPythonOrigin(
            executable_path=sys.executable,
            code_pointer=FileCodePointer(python_file=str(DEFS), fn_name="defs"),
        ),
    )
    return DagsterRun(
        job_name="hello_job",
        run_id=rid(n),
        status=status,
        remote_job_origin=job_origin("hello_job"),
        job_code_origin=code_origin,
    )


def add(inst: DagsterInstance, run: DagsterRun) -> DagsterRun:
    return inst.add_run(run)


def events_view(inst: DagsterInstance, run_id: str) -> list[tuple[str | None, str, Any]]:
    """A run's events as a comparison sees them: type, message, and an engine error's class and
    message (timestamps, pids and stack frames are the process's own)."""
    out: list[tuple[str | None, str, Any]] = []
    for entry in inst.all_logs(run_id):
        event = entry.dagster_event
        error = None
        data = event.event_specific_data if event else None
        if data is not None and getattr(data, "error", None) is not None:
            error = (data.error.cls_name, data.error.message)
        out.append((event.event_type_value if event else None, entry.message, error))
    return out


def run_view(inst: DagsterInstance, run_id: str) -> tuple[str, dict[str, str]] | None:
    run = inst.get_run_by_id(run_id)
    return None if run is None else (run.status.value, dict(run.tags))
