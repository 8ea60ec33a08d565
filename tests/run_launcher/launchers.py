"""Run launchers and a run coordinator for the run_launcher tests, configured by module and class
in dagster.yaml as users configure their own. They record what they were asked (in the instance's
process) and do not start run workers."""

from __future__ import annotations

import subprocess

from dagster._core.launcher import (
    CheckRunHealthResult,
    LaunchRunContext,
    ResumeRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.run_coordinator.base import RunCoordinator, SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRun
from dagster._grpc.types import ExecuteRunArgs, ResumeRunArgs

from dagster_rs.bench.run_launcher import NoConfig

# (launcher class name, method, run id, run status seen, resume attempt) of every call.
CALLS: list[tuple[str, str, str, str, int | None]] = []


class RecordingRunLauncher(NoConfig, RunLauncher):
    """Launches nothing; records the run it was handed. Does not support resume (stock's
    `RunLauncher.resume_run`)."""

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        CALLS.append((type(self).__name__, "launch", run.run_id, run.status.value, None))

    def terminate(self, run_id: str) -> bool:
        return False


class ResumingRunLauncher(RecordingRunLauncher):
    @property
    def supports_resume_run(self) -> bool:
        return True

    def resume_run(self, context: ResumeRunContext) -> None:
        run = context.dagster_run
        CALLS.append(
            (
                type(self).__name__,
                "resume",
                run.run_id,
                run.status.value,
                context.resume_attempt_number,
            )
        )


class RaisingRunLauncher(ResumingRunLauncher):
    """Its launch and resume raise, as a launcher whose backend is down does."""

    def launch_run(self, context: LaunchRunContext) -> None:
        raise RuntimeError(f"no capacity to launch {context.dagster_run.run_id}")

    def resume_run(self, context: ResumeRunContext) -> None:
        raise RuntimeError(f"no capacity to resume {context.dagster_run.run_id}")


class RaisingRunCoordinator(NoConfig, RunCoordinator):
    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        raise ValueError(f"queue closed for {context.dagster_run.run_id}")

    def cancel_run(self, run_id: str) -> bool:
        return False


class SubprocessRunLauncher(NoConfig, RunLauncher):
    """Starts a real run worker (`dagster api execute_run` / `resume_run`) per run, as container
    launchers do, and reports its health from the process's exit: what run monitoring needs to
    resume a run whose worker died."""

    WORKERS: dict[str, subprocess.Popen] = {}

    @property
    def supports_resume_run(self) -> bool:
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def _start(self, run_id: str, command: list[str]) -> None:
        CALLS.append((type(self).__name__, command[-2], run_id, "", None))
        SubprocessRunLauncher.WORKERS[run_id] = subprocess.Popen(command)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        args = ExecuteRunArgs(
            job_origin=run.job_code_origin,  # type: ignore[arg-type]
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        )
        self._start(run.run_id, list(args.get_command_args()))

    def resume_run(self, context: ResumeRunContext) -> None:
        run = context.dagster_run
        args = ResumeRunArgs(
            job_origin=run.job_code_origin,  # type: ignore[arg-type]
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        )
        self._start(run.run_id, list(args.get_command_args()))

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        worker = SubprocessRunLauncher.WORKERS.get(run.run_id)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.NOT_FOUND)
        code = worker.poll()
        if code is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        if code == 0:
            return CheckRunHealthResult(WorkerStatus.SUCCESS)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker exited with {code}")

    def terminate(self, run_id: str) -> bool:
        return False
