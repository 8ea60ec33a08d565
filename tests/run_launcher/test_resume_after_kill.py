"""Run monitoring resumes a run whose worker was SIGKILLed: stock's monitor
(`monitor_started_run`) finds the dead worker through the launcher's health check and calls the
instance's `resume_run`, which on dagster-rs is the native step (status check, resume marker),
then the launcher starts a worker that finishes the run. The same on both implementations."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._daemon.monitoring import RESUME_RUN_LOG_MESSAGE
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from tests.processes import wait_for
from tests.run_launcher import launch_defs
from tests.run_launcher.conftest import code_origin, launcher_yaml, make_pair, spy_steps
from tests.run_launcher.launchers import SubprocessRunLauncher
from tests.runs.helpers import job_origin

MONITORING = "run_monitoring:\n  enabled: true\n  max_resume_run_attempts: 2\n"


def _kill_and_resume(inst: DagsterInstance, marks: Path) -> str:
    run = inst.create_run_for_job(
        job_def=launch_defs.resumable_job,
        remote_job_origin=job_origin("resumable_job"),
        job_code_origin=code_origin("resumable_job"),
    )
    run_id = run.run_id
    launched = inst.launch_run(run_id, None)  # type: ignore[arg-type]
    assert launched.status == DagsterRunStatus.STARTING

    def waiting() -> bool:
        current = inst.get_run_by_id(run_id)
        assert current is not None and not current.is_finished, current
        return (marks / run_id).exists() and current.status == DagsterRunStatus.STARTED

    wait_for(waiting, "the first run worker to reach its op", timeout=120)
    worker = SubprocessRunLauncher.WORKERS[run_id]
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    assert inst.count_resume_run_attempts(run_id) == 0
    assert inst.run_will_resume(run_id)

    record = inst.get_run_record_by_id(run_id)
    assert record is not None and record.dagster_run.status == DagsterRunStatus.STARTED
    monitor_started_run(inst, None, record, logging.getLogger("run_monitoring"))  # type: ignore[arg-type]
    assert SubprocessRunLauncher.WORKERS[run_id] is not worker  # a new worker
    assert inst.count_resume_run_attempts(run_id) == 1
    wait_for(
        lambda: inst.get_run_by_id(run_id).is_finished,  # type: ignore[union-attr]
        "the resumed run worker",
        timeout=180,
    )
    assert SubprocessRunLauncher.WORKERS[run_id].wait(timeout=60) == 0
    return run_id


def test_a_killed_worker_is_resumed_by_run_monitoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv(launch_defs.MARKS_ENV, str(marks))
    with make_pair(tmp_path, launcher_yaml("SubprocessRunLauncher", extra=MONITORING)) as pair:
        spy = spy_steps(pair.rust)
        run_ids = {
            side: _kill_and_resume(inst, marks)
            for side, inst in (("stock", pair.stock), ("rust", pair.rust))
        }
        assert spy.steps == ["launch", "resume"]
        views = {}
        for side, inst in (("stock", pair.stock), ("rust", pair.rust)):
            run_id = run_ids[side]
            assert inst.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS  # type: ignore[union-attr]
            assert inst.count_resume_run_attempts(run_id) == 1
            assert inst.run_will_resume(run_id)
            logs = inst.all_logs(run_id)
            types = [e.dagster_event_type.value for e in logs if e.dagster_event_type]
            messages = [e.message for e in logs]
            resumed_at = messages.index(RESUME_RUN_LOG_MESSAGE)
            detected = [i for i, m in enumerate(messages) if m.startswith("Detected run worker")]
            # The monitor's notice, then the resume marker, then the second worker's events.
            assert detected == [resumed_at - 1], messages
            assert types[0] == "PIPELINE_STARTING"
            assert types.count("PIPELINE_SUCCESS") == 1
            marker = logs[resumed_at]
            assert marker.level == logging.INFO and marker.dagster_event is not None
            assert marker.dagster_event.event_specific_data is not None
            views[side] = (
                sorted(types),
                types[resumed_at:].count("STEP_SUCCESS"),
                marker.job_name,
                marker.dagster_event.event_specific_data,
            )
        assert views["stock"] == views["rust"]
