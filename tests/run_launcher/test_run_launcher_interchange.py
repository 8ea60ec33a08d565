"""One home, both implementations in turns: a run submitted by one is launched (or resumed) by the
other, and each reads back what the other wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRunStatus

import dagster_rs
from tests.conftest import load_instance, write_home
from tests.run_launcher import launchers
from tests.run_launcher.conftest import add, events_view, launcher_yaml, run_view, submittable_run
from tests.runs.helpers import rid

YAML = launcher_yaml("ResumingRunLauncher")


def open_home(home: Path, kind: str) -> DagsterInstance:
    write_home(home, kind, YAML)
    inst = load_instance(home)
    assert isinstance(inst, dagster_rs.DagsterInstance) == (kind == "rust")
    return inst


@pytest.mark.parametrize(("first", "second"), [("rust", "stock"), ("stock", "rust")])
def test_submitted_by_one_launched_by_the_other(tmp_path: Path, first: str, second: str) -> None:
    home = tmp_path / "home"
    launchers.CALLS.clear()
    inst = open_home(home, first)
    try:
        add(inst, submittable_run(1))
        assert inst.submit_run(rid(1), None).status == DagsterRunStatus.QUEUED  # type: ignore[arg-type]
        submitted = (run_view(inst, rid(1)), events_view(inst, rid(1)))
    finally:
        inst.dispose()

    inst = open_home(home, second)
    try:
        assert (run_view(inst, rid(1)), events_view(inst, rid(1))) == submitted
        launched = inst.launch_run(rid(1), None)  # type: ignore[arg-type]
        assert launched.status == DagsterRunStatus.STARTING
    finally:
        inst.dispose()

    inst = open_home(home, first)
    try:
        assert run_view(inst, rid(1))[0] == "STARTING"
        assert [e[0] for e in events_view(inst, rid(1))] == [
            "PIPELINE_ENQUEUED",
            "PIPELINE_STARTING",
        ]
        # The resume count and a resume across implementations.
        inst.report_engine_event("started", inst.get_run_by_id(rid(1)))
        inst.resume_run(rid(1), None, 1)  # type: ignore[arg-type]
        assert inst.count_resume_run_attempts(rid(1)) == 1
        written = (run_view(inst, rid(1)), events_view(inst, rid(1)))
    finally:
        inst.dispose()

    inst = open_home(home, second)
    try:
        assert (run_view(inst, rid(1)), events_view(inst, rid(1))) == written
        assert inst.count_resume_run_attempts(rid(1)) == 1
    finally:
        inst.dispose()
    assert [c[1] for c in launchers.CALLS] == ["launch", "resume"]
