"""`python -m dagster_rs.bench multiprocess`: a 100-step job on the multiprocess executor.

The job is a fan: one `source` op, N-2 `step_###` ops each taking the source's output, and a `sink`
op fanning all of them in (N steps in all, default 100). It is executed with
`execute_job(reconstructable(job), instance)`, each step in a process of its own (the multiprocess
executor, `max_concurrent` 2 for a 2-core machine; each step's output through the default
filesystem IO manager), on:

- `rust`: a persistent dagster-rs instance (a DAGSTER_HOME whose dagster.yaml selects
  `dagster_rs.DagsterInstance`; durability full);
- `stock`: a persistent stock instance (an empty dagster.yaml: SQLite storage).

Stock's in-memory instance (`DagsterInstance.ephemeral()`) cannot run the multiprocess executor:
Dagster refuses before any step runs (the bench checks that it still does and prints the error).
So the same N steps are also executed in-process (`in_process` executor) on:

- `ephemeral`: stock's in-memory instance;
- `rust_in_process`: the persistent dagster-rs instance.

Each repetition runs every kind once, in an order rotating between repetitions; wall time of
`execute_job`, median over the repetitions. The console logger is at WARNING everywhere (the
terminal is not what is timed).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from dagster import (
    DagsterInstance,
    JobDefinition,
    execute_job,
    job,
    op,
)
from dagster._core.definitions.reconstruct import ReconstructableJob, build_reconstructable_job

from dagster_rs.bench.common import make_home, open_instance, remove_home, versions, write_json

DEFAULT_STEPS = 100
QUICK_STEPS = 6
MAX_CONCURRENT = 2
KINDS = ("rust", "stock", "ephemeral", "rust_in_process")
NAMES = {
    "rust": "dagster-rs persistent, multiprocess",
    "stock": "stock persistent, multiprocess",
    "ephemeral": "stock in-memory, in-process",
    "rust_in_process": "dagster-rs persistent, in-process",
}
LOGGERS: dict[str, Any] = {"console": {"config": {"log_level": "WARNING"}}}


def fan_job(steps: int) -> JobDefinition:
    """source -> step_001 .. step_{steps-2} -> sink: `steps` ops in all."""
    if steps < 3:
        raise ValueError("a fan needs at least 3 steps")

    @op
    def source() -> int:
        return 1

    def middle(i: int) -> Any:
        @op(name=f"step_{i:03d}")
        def step(x: int) -> int:
            return x + i

        return step

    @op
    def sink(xs: list[int]) -> int:
        if len(xs) != steps - 2:
            raise ValueError(f"sink got {len(xs)} inputs")
        return sum(xs)

    mids = [middle(i) for i in range(1, steps - 1)]

    @job(name=f"fan_{steps}")
    def fan() -> None:
        s = source()
        sink([m(s) for m in mids])

    return fan


def reconstructable_fan(steps: int) -> ReconstructableJob:
    # The step processes rebuild the job by calling `fan_job(steps)` in this module.
    return build_reconstructable_job(__name__, fan_job.__name__, reconstructable_args=(steps,))


def run_config(kind: str) -> dict[str, Any]:
    if kind in ("rust", "stock"):
        execution = {"multiprocess": {"max_concurrent": MAX_CONCURRENT}}
    else:
        execution = {"in_process": {}}
    return {"execution": {"config": execution}, "loggers": LOGGERS}


def execute(recon: ReconstructableJob, instance: DagsterInstance, kind: str) -> str:
    with execute_job(recon, instance=instance, run_config=run_config(kind)) as result:
        if not result.success:
            raise RuntimeError(f"the {kind} run failed")
        return result.run_id


def ephemeral_refuses_multiprocess(recon: ReconstructableJob) -> str:
    """The error with which Dagster fails a multiprocess run on its in-memory instance (the run
    fails at once: no step is executed)."""
    instance = DagsterInstance.ephemeral()
    try:
        result = execute_job(recon, instance=instance, run_config=run_config("stock"))
        for event in result.all_events:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None and not result.success:
                return f"{error.cls_name}: {error.message.splitlines()[0].split(': ', 1)[-1]}"
    finally:
        instance.dispose()
    raise RuntimeError("stock's ephemeral instance ran the multiprocess executor (no refusal)")


def time_jobs(
    steps: int, reps: int, parent: str | None, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    recon = reconstructable_fan(steps)
    refusal = ephemeral_refuses_multiprocess(recon)
    progress(f"  stock ephemeral + multiprocess executor: refused ({refusal})")
    homes = {kind: make_home(kind, parent) for kind in ("rust", "stock")}
    instances: dict[str, DagsterInstance] = {}
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    events: dict[str, int] = {}
    try:
        instances = {kind: open_instance(home) for kind, home in homes.items()}
        instances["ephemeral"] = DagsterInstance.ephemeral()
        instances["rust_in_process"] = instances["rust"]
        rust_domains = sorted(getattr(instances["rust"], "rust_domains", ()))
        for rep in range(reps):
            order = KINDS[rep % len(KINDS) :] + KINDS[: rep % len(KINDS)]
            for kind in order:
                gc.collect()
                t0 = time.perf_counter()
                run_id = execute(recon, instances[kind], kind)
                times[kind].append(time.perf_counter() - t0)
                events[kind] = len(instances[kind].get_records_for_run(run_id).records)  # type: ignore[attr-defined]
            progress(
                f"  multiprocess[{steps} steps] rep {rep + 1}/{reps}: "
                + "  ".join(f"{kind} {times[kind][-1]:.2f} s" for kind in KINDS)
            )
    finally:
        for kind, inst in instances.items():
            if kind != "rust_in_process":
                inst.dispose()
        for home in homes.values():
            remove_home(home)
    median = {kind: statistics.median(ts) for kind, ts in times.items()}
    return {
        "steps": steps,
        "shape": f"fan: source -> {steps - 2} parallel steps -> sink",
        "max_concurrent": MAX_CONCURRENT,
        "reps": reps,
        "times_s": times,
        "median_s": median,
        "events_per_run": events,
        "ephemeral_multiprocess_refusal": refusal,
        "rust_domains": rust_domains,
    }


def summary(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The figures as bench ops (µs per job run, stock's side first), for the summary table."""
    m = result["median_s"]
    steps = result["steps"]

    def op(stock: str, rust: str) -> dict[str, Any]:
        return {
            "stock_us": m[stock] * 1e6,
            "rust_us": m[rust] * 1e6,
            "ratio": m[stock] / m[rust],
            "floor_us": None,
            "stock_side": NAMES[stock],
            "rust_side": NAMES[rust],
        }

    return {
        f"{steps}-step job, multiprocess (stock persistent vs dagster-rs)": op("stock", "rust"),
        f"{steps}-step job: stock in-memory in-process vs dagster-rs multiprocess": op(
            "ephemeral", "rust"
        ),
        f"{steps}-step job, in-process (stock in-memory vs dagster-rs)": op(
            "ephemeral", "rust_in_process"
        ),
    }


def format_result(result: dict[str, Any]) -> str:
    m = result["median_s"]
    lines = [
        f"{result['steps']}-step job ({result['shape']}), max_concurrent"
        f" {result['max_concurrent']}, median of {result['reps']}:",
    ]
    for kind in KINDS:
        ts = result["times_s"][kind]
        lines.append(
            f"  {NAMES[kind]:38s} {m[kind]:8.2f} s  (min {min(ts):.2f}, max {max(ts):.2f};"
            f" {result['events_per_run'][kind]} events)"
        )
    lines += [
        f"  (a) stock persistent / dagster-rs, both multiprocess: {m['stock'] / m['rust']:.2f}×",
        f"  (b) dagster-rs multiprocess / stock in-memory in-process: {m['rust'] / m['ephemeral']:.2f}×"
        " (the multiprocess executor's process per step against none)",
        f"  (c) dagster-rs in-process / stock in-memory in-process: "
        f"{m['rust_in_process'] / m['ephemeral']:.2f}× (target ≤ 1×: no slower than in-memory)",
        f"  stock's in-memory instance refuses the multiprocess executor:"
        f" {result['ephemeral_multiprocess_refusal']}",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    steps = args.steps if args.steps is not None else (QUICK_STEPS if args.quick else DEFAULT_STEPS)
    reps = args.reps if args.reps is not None else 1
    print(f"dagster-rs bench: multiprocess, {steps}-step job, {reps} repetition(s)", flush=True)
    result = time_jobs(steps, reps, args.dir, lambda line: print(line, flush=True))
    print()
    print(format_result(result))
    if args.json_path:
        payload: dict[str, Any] = dict(summary(result))
        payload["_meta"] = {"bench": "multiprocess", **result, **versions()}
        write_json(args.json_path, payload)
        print(f"wrote {args.json_path}")
    return 0


def add_parser(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "multiprocess",
        help="a 100-step job on the multiprocess executor, stock vs dagster-rs vs in-memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--steps", type=int, default=None, help=f"ops (default {DEFAULT_STEPS})")
    p.add_argument(
        "--reps",
        type=int,
        default=None,
        help="repetitions (default 1: a 100-step job is minutes on 2 cores)",
    )
    p.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps, 1 repetition")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write results as JSON")
    p.add_argument("--dir", metavar="PATH", help="create the homes under PATH (e.g. /dev/shm)")
    p.set_defaults(func=run)


__all__ = ["add_parser", "fan_job", "reconstructable_fan", "run", "time_jobs"]
