"""submit_run, launch_run and resume_run against stock, on both implementations: the run
coordinator and run launcher are the configured Python objects; the run's status and every event
the instance writes around their calls (enqueue, starting, engine errors, run failure) must be
stock's, and so must the errors."""

from __future__ import annotations

import pytest
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.workspace.context import WorkspaceProcessContext

from tests.conftest import call
from tests.run_launcher import launchers
from tests.run_launcher.conftest import add, events_view, rows_view, run_view, submittable_run
from tests.runs.helpers import rid

NO_WORKSPACE = None


def outcome_view(outcome):  # type: ignore[no-untyped-def]
    value = outcome.value
    if value is not None:
        value = (value.run_id, value.status.value)
    return (value, outcome.error, outcome.message)


def same_effects(pair, run_id, op, steps):  # type: ignore[no-untyped-def]
    """`op` on both instances: the same value or error, the same run and events after it, read
    back and as stored (runs row, tags, shard and index rows); the dagster-rs instance took the
    native `steps`."""
    assert pair.rust._rs_launch_steps(run_id) is not None
    a = call(op, pair.stock)
    before = len(pair.spy.steps)
    b = call(op, pair.rust)
    assert pair.spy.steps[before:] == steps
    assert outcome_view(a) == outcome_view(b)
    assert run_view(pair.stock, run_id) == run_view(pair.rust, run_id)
    assert events_view(pair.stock, run_id) == events_view(pair.rust, run_id)
    assert rows_view(pair.stock, run_id) == rows_view(pair.rust, run_id)
    return b


def test_submit_run_through_the_default_queued_coordinator(pair_with) -> None:
    pair = pair_with()
    for inst in (pair.stock, pair.rust):
        assert type(inst.run_coordinator) is QueuedRunCoordinator
        add(inst, submittable_run(1))
    got = same_effects(pair, rid(1), lambda i: i.submit_run(rid(1), NO_WORKSPACE), [])
    assert got.value.status == DagsterRunStatus.QUEUED
    assert [e[0] for e in events_view(pair.rust, rid(1))] == ["PIPELINE_ENQUEUED"]
    # Submitted again: the coordinator's no-op, on both.
    same_effects(pair, rid(1), lambda i: i.submit_run(rid(1), NO_WORKSPACE), [])


def test_submit_run_errors(pair_with) -> None:
    pair = pair_with(coordinator="RaisingRunCoordinator")
    got = same_effects(pair, rid(9), lambda i: i.submit_run(rid(9), NO_WORKSPACE), [])
    assert got.error is DagsterInvariantViolationError
    # A coordinator that raises: stock's engine event and run failure, and its error re-raised.
    for inst in (pair.stock, pair.rust):
        add(inst, submittable_run(2))
    got = same_effects(pair, rid(2), lambda i: i.submit_run(rid(2), NO_WORKSPACE), ["fail"])
    assert got.error is ValueError
    assert run_view(pair.rust, rid(2))[0] == "FAILURE"
    assert [e[0] for e in events_view(pair.rust, rid(2))] == ["ENGINE_EVENT", "PIPELINE_FAILURE"]


def test_launch_run_through_a_python_launcher(pair_with) -> None:
    pair = pair_with(launcher="RecordingRunLauncher")
    launchers.CALLS.clear()
    for inst in (pair.stock, pair.rust):
        add(inst, submittable_run(1))
    got = same_effects(pair, rid(1), lambda i: i.launch_run(rid(1), NO_WORKSPACE), ["launch"])
    assert got.value.status == DagsterRunStatus.STARTING
    # The launcher got the reloaded run (STARTING), once per instance.
    assert launchers.CALLS == [("RecordingRunLauncher", "launch", rid(1), "STARTING", None)] * 2


def test_launch_run_whose_launcher_raises(pair_with) -> None:
    pair = pair_with(launcher="RaisingRunLauncher")
    for inst in (pair.stock, pair.rust):
        add(inst, submittable_run(3))
    got = same_effects(
        pair, rid(3), lambda i: i.launch_run(rid(3), NO_WORKSPACE), ["launch", "fail"]
    )
    assert got.error is RuntimeError
    assert run_view(pair.rust, rid(3))[0] == "FAILURE"
    events = events_view(pair.rust, rid(3))
    assert [e[0] for e in events] == ["PIPELINE_STARTING", "ENGINE_EVENT", "PIPELINE_FAILURE"]
    assert events[1][2] == ("RuntimeError", f"RuntimeError: no capacity to launch {rid(3)}\n")


@pytest.mark.parametrize(
    "status",
    [DagsterRunStatus.SUCCESS, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTED],
)
def test_launch_run_in_another_status(pair_with, status) -> None:
    pair = pair_with(launcher="RecordingRunLauncher")
    for inst in (pair.stock, pair.rust):
        add(inst, submittable_run(4, status))
    same_effects(pair, rid(4), lambda i: i.launch_run(rid(4), NO_WORKSPACE), ["launch"])


def test_launch_and_resume_an_unknown_run(pair_with) -> None:
    pair = pair_with(launcher="ResumingRunLauncher")
    for op, step in (
        (lambda i: i.launch_run(rid(5), NO_WORKSPACE), "launch"),
        (lambda i: i.resume_run(rid(5), NO_WORKSPACE, 1), "resume"),
    ):
        got = same_effects(pair, rid(5), op, [step])
        assert got.error is DagsterInvariantViolationError


@pytest.mark.parametrize("status", [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.SUCCESS])
def test_resume_a_run_not_in_progress(pair_with, status) -> None:
    pair = pair_with(launcher="ResumingRunLauncher")
    for inst in (pair.stock, pair.rust):
        add(inst, submittable_run(6, status))
    got = same_effects(pair, rid(6), lambda i: i.resume_run(rid(6), NO_WORKSPACE, 1), ["resume"])
    assert got.error is DagsterInvariantViolationError
    assert "not in a state that can be resumed" in got.message


def test_resume_run_on_a_launcher_that_resumes(pair_with) -> None:
    pair = pair_with(launcher="ResumingRunLauncher")
    launchers.CALLS.clear()
    for inst in (pair.stock, pair.rust):
        add(inst, submittable_run(7, DagsterRunStatus.STARTED))
    got = same_effects(pair, rid(7), lambda i: i.resume_run(rid(7), NO_WORKSPACE, 2), ["resume"])
    assert got.value.status == DagsterRunStatus.STARTED
    assert launchers.CALLS == [("ResumingRunLauncher", "resume", rid(7), "STARTED", 2)] * 2
    assert pair.rust.count_resume_run_attempts(rid(7)) == 1


@pytest.mark.parametrize("launcher", ["RecordingRunLauncher", "RaisingRunLauncher"])
def test_resume_run_on_a_launcher_that_cannot(pair_with, launcher) -> None:
    """Stock's NotImplementedError from a launcher without resume, or the launcher's own error:
    the engine error and the run failure written as stock writes them."""
    pair = pair_with(launcher=launcher)
    for inst in (pair.stock, pair.rust):
        add(inst, submittable_run(8, DagsterRunStatus.STARTING))
    got = same_effects(
        pair, rid(8), lambda i: i.resume_run(rid(8), NO_WORKSPACE, 1), ["resume", "fail"]
    )
    assert got.error is (
        NotImplementedError if launcher == "RecordingRunLauncher" else RuntimeError
    )
    assert run_view(pair.rust, rid(8))[0] == "FAILURE"
    assert [e[0] for e in events_view(pair.rust, rid(8))] == [
        "ENGINE_EVENT",
        "ENGINE_EVENT",
        "PIPELINE_FAILURE",
    ]


def test_default_launcher_runs_a_real_run_worker(pair_with, tmp_path) -> None:
    """launch_run through the default run launcher: a gRPC code server and a run worker
    subprocess, which completes the run on either implementation with the same events."""
    from dagster._core.workspace.load_target import PythonFileTarget

    from tests.processes import wait_for
    from tests.run_launcher import launch_defs
    from tests.run_launcher.conftest import DEFS

    pair = pair_with()
    runs = {}
    for side, inst in (("stock", pair.stock), ("rust", pair.rust)):
        target = PythonFileTarget(
            python_file=str(DEFS), attribute="defs", working_directory=None, location_name="rl"
        )
        with WorkspaceProcessContext(inst, target) as context:
            workspace = context.create_request_context()
            location = workspace.get_code_location("rl")
            remote_job = location.get_repository("__repository__").get_full_job("hello_job")
            run = inst.create_run_for_job(
                job_def=launch_defs.hello_job,
                remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(),
            )
            launched = inst.launch_run(run.run_id, workspace)
            assert launched.status == DagsterRunStatus.STARTING
            wait_for(
                lambda: inst.get_run_by_id(run.run_id).is_finished,  # noqa: B023
                f"the {side} run worker",
                timeout=180,
            )
            inst.run_launcher.join()
        runs[side] = run.run_id
    stock, rust = (
        [e[0] for e in events_view(inst, runs[side])]
        for side, inst in (("stock", pair.stock), ("rust", pair.rust))
    )
    assert pair.rust.get_run_by_id(runs["rust"]).status == DagsterRunStatus.SUCCESS
    assert pair.stock.get_run_by_id(runs["stock"]).status == DagsterRunStatus.SUCCESS
    # The code server writes engine events of its own about the run worker process (started,
    # exited) while the worker writes the run's: their interleaving is the scheduler's, and the
    # exit notice may land after the run is finished or not yet. So: the events up to the run's
    # success compared as a multiset, the launch first on both, only engine events after it.
    heads = []
    for types in (stock, rust):
        assert types[0] == "PIPELINE_STARTING"
        end = types.index("PIPELINE_SUCCESS") + 1
        assert set(types[end:]) <= {"ENGINE_EVENT"}, types
        heads.append(sorted(types[:end], key=str))
    assert heads[0] == heads[1], (stock, rust)
