"""`python -m dagster_rs.bench run_launcher`: launching runs, stock Dagster vs dagster-rs.

Measured at the instance methods Dagster calls (`DagsterInstance.launch_run` / `submit_run`) on
a stock instance and a dagster-rs instance, each on its own fresh DAGSTER_HOME (under `--dir`
when given), both at durability full (WAL, synchronous=FULL: stock's default), in this process,
taking turns of 20 calls so load from elsewhere hits both alike. Each call is on a run of its
own, created untimed beforehand (NOT_STARTED, with the origins `submit_run` requires).

The configured run launcher does nothing (`NoopRunLauncher` below; `RaisingRunLauncher` for the
failure op), so what is timed is the instance's part: the run's read, the events it reports and
the run's status transitions. Each run has one event already (written untimed, as a queued
run has its PIPELINE_ENQUEUED): creating a run's shard is stock's alembic stamping of a new
SQLite file, 100+ ms, which would drown what the domain itself does.

  launch_run                 PIPELINE_STARTING (run shard + index) and the run's transition
                             to STARTING, then the launcher's call on the reloaded run
  submit_run                 the same through stock's DefaultRunCoordinator (the run read and
                             its origins checked first; the coordinator calls launch_run)
  launch_run[launcher raises] the launch, then the failure path: the engine error event,
                             PIPELINE_FAILURE and the transition to FAILURE; the error re-raised

Floor: the native step(s) the dagster-rs side takes, called directly with prepared inputs
(`RunLauncherStore.launch`, and `.fail` with a prepared serialized error): what the database
work costs without Dagster's objects, on runs of their own on the dagster-rs side's files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from dagster_rs.bench.common import (
    FLOOR,
    OpResult,
    add_output_args,
    calls_meta,
    close_sides,
    format_table,
    make_homes,
    op_result,
    open_instance,
    parse_ops,
    print_mismatches,
    progress_line,
    results_json,
    sides_meta,
    time_each,
    write_json,
)

OPS: tuple[str, ...] = ("launch_run", "submit_run", "launch_run[launcher raises]")


class NoConfig(ConfigurableClass):
    """A pluggable instance component (launcher, coordinator) that takes no config."""

    def __init__(self, inst_data: ConfigurableClassData | None = None):
        self._inst_data = inst_data

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any) -> NoConfig:
        return cls(inst_data=inst_data)


class NoopRunLauncher(NoConfig, RunLauncher):
    """Starts no run worker: the benchmark times the instance's side of a launch."""

    def launch_run(self, context: LaunchRunContext) -> None:
        return None

    def terminate(self, run_id: str) -> bool:
        return False


class RaisingRunLauncher(NoopRunLauncher):
    def launch_run(self, context: LaunchRunContext) -> None:
        raise RuntimeError(f"no capacity to launch {context.dagster_run.run_id}")


def _launcher_yaml(launcher: str, coordinator: bool) -> str:
    text = f"run_launcher:\n  module: {__name__}\n  class: {launcher}\n"
    if coordinator:
        text += (
            "run_coordinator:\n  module: dagster._core.run_coordinator\n"
            "  class: DefaultRunCoordinator\n"
        )
    return text


def _run(prefix: str, i: int) -> DagsterRun:
    code = JobPythonOrigin(
        "bench_job",
        RepositoryPythonOrigin(
            executable_path=sys.executable,
            code_pointer=ModuleCodePointer("bench_defs", "defs", None),
        ),
    )
    remote = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("bench"), "repo").get_job_origin(
        "bench_job"
    )
    return DagsterRun(
        job_name="bench_job",
        run_id=f"{prefix}-{i:08d}",
        status=DagsterRunStatus.NOT_STARTED,
        remote_job_origin=remote,
        job_code_origin=code,
        tags={"team": "bench", "dagster/priority": "1"},
    )


def _open_sides(parent: str | None, launcher: str, coordinator: bool) -> tuple[dict, dict]:
    homes = make_homes(parent)
    for home in homes.values():
        with open(os.path.join(home, "dagster.yaml"), "a") as f:
            f.write(_launcher_yaml(launcher, coordinator))
    return homes, {kind: open_instance(home) for kind, home in homes.items()}


def _bench_op(op: str, count: int, parent: str | None) -> tuple[OpResult, list[str]]:
    raising = op == "launch_run[launcher raises]"
    homes, instances = _open_sides(
        parent, "RaisingRunLauncher" if raising else "NoopRunLauncher", op == "submit_run"
    )
    try:
        for inst in instances.values():
            for i in range(count):
                inst.report_engine_event("created", inst.add_run(_run("run", i)))
        rust = instances["rust"]
        store = rust._rs_core.run_launcher  # type: ignore[attr-defined]
        floor_runs = [_run("floor", i) for i in range(count)]
        for run in floor_runs:
            rust.report_engine_event("created", rust.add_run(run))
        error = _prepared_error()

        def call(inst: Any) -> Callable[[int], object]:
            method = inst.submit_run if op == "submit_run" else inst.launch_run

            def one(i: int) -> object:
                try:
                    return method(f"run-{i:08d}", None)
                except RuntimeError:
                    return None

            return one

        def floor(i: int) -> object:
            run_id = floor_runs[i].run_id
            row = store.launch(run_id, time.time())
            if raising:
                store.fail(run_id, "bench_job", time.time(), error[0], error[1])
            return row

        fns = {"stock": call(instances["stock"]), "rust": call(rust), FLOOR: floor}
        samples = time_each(fns, count)
        mismatches = []
        for i in range(count):
            views = [
                (r.status, r.tags)
                for r in (inst.get_run_by_id(f"run-{i:08d}") for inst in instances.values())
                if r is not None
            ]
            if len(views) != 2 or views[0] != views[1]:
                mismatches.append(f"{op} (i={i}): {views}")
                break
        return op_result(op, samples, "mean"), mismatches
    finally:
        close_sides(instances, homes, keep=False)


def _prepared_error() -> tuple[str, str]:
    from dagster._utils.error import serializable_error_info_from_exc_info

    from dagster_rs.serdes import serialize

    try:
        raise RuntimeError("no capacity to launch")
    except RuntimeError:
        error = serializable_error_info_from_exc_info(sys.exc_info())
    return error.message, serialize(error)


def run(args: argparse.Namespace) -> int:
    count = args.n if args.n is not None else (40 if args.quick else 400)
    ops = parse_ops(args.ops, OPS)
    print(f"run_launcher: {count} calls per op and side, durability full, homes under {args.dir}")
    results: list[OpResult] = []
    mismatches: list[str] = []
    for op in ops:
        result, bad = _bench_op(op, count, args.dir)
        results.append(result)
        mismatches.extend(bad)
        print(progress_line(result, max(len(o) for o in ops), 8), flush=True)
    print()
    print(format_table(results))
    print_mismatches(mismatches)
    if args.json_path:
        meta = {
            **sides_meta(args.dir, "full", ["all"]),
            **calls_meta(results),
            "calls_per_op": count,
        }
        write_json(args.json_path, results_json(results, meta))
    return 1 if mismatches else 0


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run_launcher",
        help="launch_run / submit_run through a no-op launcher, stock vs dagster-rs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--n", type=int, default=None, help="calls per op and side (default 400)")
    add_output_args(p, OPS)
    p.add_argument("--quick", action="store_true", help="small smoke run (40 calls per op)")
    p.set_defaults(func=run)
