"""`python -m dagster_rs.workload`: a real Dagster workload on a dagster-rs instance.

A fresh DAGSTER_HOME (a temp dir, or `--home PATH`) gets a dagster.yaml selecting
`dagster_rs.DagsterInstance`; DAGSTER_HOME is exported so that every process Dagster starts (the
multiprocess executor's step subprocesses) loads the same instance. On it, through Dagster's own
APIs, with the assets of `dagster_rs._workload_defs`:

- `materialize` (in process) of a six-asset graph;
- `materialize` of a daily-partitioned asset, for three partitions;
- `execute_job` of the six-asset graph as a job on the multiprocess executor.

It then prints the runs, counts by status, which domains are served by Rust, where the data lives,
and the time taken next to the same workload on a fresh stock-Dagster DAGSTER_HOME. It exits 1 if
any run did not succeed (or a workload raised).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

RUST_YAML = """\
instance_class:
  module: dagster_rs
  class: DagsterInstance
"""
# Both homes (stock and dagster-rs) get this, so both do the same work and print no banner.
COMMON_YAML = """\
telemetry:
  enabled: false
"""

# Keep the console readable: Dagster's console logger would print every event of every step.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

ASSET_NAMES = (
    "raw_orders",
    "raw_customers",
    "clean_orders",
    "clean_customers",
    "order_summary",
    "sales_report",
    "daily_events",
)

DATA_FILES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")


@dataclass(frozen=True)
class RunRow:
    run_id: str
    job_name: str
    status: str
    duration: float | None
    how: str


@dataclass
class WorkloadResult:
    kind: str
    home: str
    seconds: float = 0.0
    runs: list[RunRow] = field(default_factory=list)
    error: str | None = None
    instance_class: str = ""
    rust_domains: tuple[str, ...] = ()
    python_domains: tuple[str, ...] = ()
    durability: str = ""
    step_instances: list[str] = field(default_factory=list)
    materialized_partitions: list[str] = field(default_factory=list)
    materializations: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.error is None and bool(self.runs) and all(r.status == "SUCCESS" for r in self.runs)
        )


def prepare_home(home: str, kind: str) -> None:
    """Make `home` a DAGSTER_HOME whose dagster.yaml selects `kind` (keep an existing rust one)."""
    os.makedirs(home, exist_ok=True)
    path = os.path.join(home, "dagster.yaml")
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
        if kind == "rust" and "dagster_rs" not in text:
            raise SystemExit(f"{path} exists and does not select dagster_rs; refusing to overwrite")
        if kind == "rust":
            return
    with open(path, "w") as f:
        f.write((RUST_YAML if kind == "rust" else "") + COMMON_YAML)


@contextmanager
def dagster_home(home: str) -> Iterator[None]:
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = home
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = old


def warm_up() -> None:
    """Import and exercise Dagster's in-process machinery once, so neither timed side pays it."""
    from dagster import DagsterInstance, materialize

    from dagster_rs import _workload_defs as w

    with DagsterInstance.ephemeral() as inst:
        materialize(w.GRAPH_ASSETS, instance=inst, run_config=QUIET_RUN_CONFIG)


def run_workload(kind: str, home: str) -> WorkloadResult:
    """Run the workload on the instance DAGSTER_HOME=`home` selects; never raises."""
    from dagster import (
        AssetKey,
        DagsterInstance,
        RunsFilter,
        execute_job,
        materialize,
        reconstructable,
    )

    from dagster_rs import _workload_defs as w

    result = WorkloadResult(kind=kind, home=home)
    session = uuid.uuid4().hex[:12]
    tags = {w.WORKLOAD_TAG: session}
    how: dict[str, str] = {}
    instance: DagsterInstance | None = None
    with dagster_home(home):
        try:
            start = time.perf_counter()
            instance = DagsterInstance.get()
            r = materialize(
                w.GRAPH_ASSETS, instance=instance, tags=tags, run_config=QUIET_RUN_CONFIG
            )
            how[r.run_id] = "materialize, in-process"
            for key in w.PARTITION_KEYS:
                r = materialize(
                    [w.daily_events],
                    instance=instance,
                    partition_key=key,
                    tags=tags,
                    run_config=QUIET_RUN_CONFIG,
                )
                how[r.run_id] = f"materialize, in-process, partition {key}"
            with execute_job(
                reconstructable(w.workload_graph_job),
                instance=instance,
                tags=tags,
                run_config=QUIET_RUN_CONFIG,
            ) as job_result:
                multiprocess_run_id = job_result.run_id
            how[multiprocess_run_id] = "execute_job, multiprocess"
            result.seconds = time.perf_counter() - start

            # Read everything back through the instance (the runs domain when it is live).
            result.instance_class = f"{type(instance).__module__}.{type(instance).__qualname__}"
            result.rust_domains = tuple(sorted(getattr(instance, "rust_domains", ())))
            result.python_domains = tuple(sorted(getattr(instance, "python_domains", ())))
            result.durability = str(getattr(instance, "durability", "full (stock)"))
            records = instance.get_run_records(RunsFilter(tags=tags), ascending=True)
            for rec in records:
                run = rec.dagster_run
                duration = (
                    rec.end_time - rec.start_time if rec.start_time and rec.end_time else None
                )
                result.runs.append(
                    RunRow(
                        run.run_id,
                        run.job_name,
                        run.status.value,
                        duration,
                        how.get(run.run_id, "?"),
                    )
                )
            missing = set(how) - {row.run_id for row in result.runs}
            if missing:
                result.error = (
                    f"runs executed but not returned by get_run_records: {sorted(missing)}"
                )
            for name in ASSET_NAMES:
                records_of = instance.fetch_materializations(AssetKey(name), limit=100).records
                result.materializations += len(records_of)
                if name != "sales_report":
                    continue
                for er in records_of:
                    mat = er.asset_materialization
                    if er.run_id == multiprocess_run_id and mat is not None:
                        md = mat.metadata
                        result.step_instances.append(
                            f"{md['instance_class'].value} (pid {md['pid'].value},"
                            f" rust domains: {md['rust_domains'].value})"
                        )
            result.materialized_partitions = sorted(
                instance.get_materialized_partitions(AssetKey("daily_events"))
            )
        except Exception:
            result.error = traceback.format_exc()
            if not result.seconds:
                result.seconds = time.perf_counter() - start
        finally:
            if instance is not None:
                instance.dispose()
    return result


# -- the report --------------------------------------------------------------------------------


def _size(path: str) -> str:
    def human(n: int) -> str:
        return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"

    if not os.path.exists(path):
        return "(missing)"
    text = human(os.path.getsize(path))
    wal = path + "-wal"
    if os.path.exists(wal) and os.path.getsize(wal):
        text += f" + {human(os.path.getsize(wal))} WAL"
    return text


def print_runs(res: WorkloadResult) -> None:
    print(f"  {'run':10s} {'job':24s} {'status':9s} {'duration':>9s}  how")
    for row in res.runs:
        dur = f"{row.duration:.2f}s" if row.duration is not None else "-"
        print(f"  {row.run_id[:8]:10s} {row.job_name:24s} {row.status:9s} {dur:>9s}  {row.how}")
    counts = Counter(row.status for row in res.runs)
    print("  by status: " + (", ".join(f"{s}={n}" for s, n in sorted(counts.items())) or "none"))


def print_summary(rust: WorkloadResult, stock: WorkloadResult | None, kept: bool) -> None:
    print()
    print("== dagster-rs workload ==")
    print(f"DAGSTER_HOME: {rust.home}{'' if kept else '  (temporary: removed on exit; --keep)'}")
    print(f"instance: {rust.instance_class or '?'}  durability: {rust.durability or '?'}")
    print(f"domains served by Rust:   {', '.join(rust.rust_domains) or '(none)'}")
    print(f"domains served by Python: {', '.join(rust.python_domains) or '(none)'}")
    if rust.instance_class and "runs" not in rust.rust_domains:
        print("  NOTE: the runs domain is not live in Rust on this instance")
    print(f"runs ({len(rust.runs)}):")
    print_runs(rust)
    if rust.step_instances:
        print("step subprocesses of the multiprocess run loaded:")
        for line in sorted(set(rust.step_instances)):
            print(f"  {line}")
    print(
        f"asset materializations: {rust.materializations}; daily_events partitions:"
        f" {', '.join(rust.materialized_partitions) or '(none)'}"
    )
    print("data:")
    for rel in DATA_FILES:
        path = os.path.join(rust.home, rel)
        print(f"  {path}  {_size(path)}")
    if rust.error:
        print("ERROR in the dagster-rs workload:")
        print(rust.error.rstrip())

    print()
    print("== time (same workload, fresh DAGSTER_HOME each, after a warm-up) ==")
    print(f"  dagster-rs: {rust.seconds:6.2f} s  ({'ok' if rust.ok else 'FAILED'})")
    if stock is None:
        print("  stock:      (skipped: --no-compare)")
        return
    print(f"  stock:      {stock.seconds:6.2f} s  ({'ok' if stock.ok else 'FAILED'})")
    if rust.seconds > 0:
        print(f"  ratio stock/dagster-rs: {stock.seconds / rust.seconds:.2f}x")
    if not stock.ok:
        print("stock workload runs:")
        print_runs(stock)
        if stock.error:
            print("ERROR in the stock workload:")
            print(stock.error.rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dagster_rs.workload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", metavar="PATH", help="DAGSTER_HOME for the dagster-rs instance")
    parser.add_argument("--keep", action="store_true", help="keep the temporary DAGSTER_HOMEs")
    parser.add_argument(
        "--no-compare", action="store_true", help="skip the same workload on stock Dagster"
    )
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    rust_home = os.path.abspath(args.home) if args.home else tempfile.mkdtemp(prefix="dagster-rs-")
    stock_home = None if args.no_compare else tempfile.mkdtemp(prefix="dagster-stock-")
    temp_homes = [h for h in (None if args.home else rust_home, stock_home) if h]
    try:
        prepare_home(rust_home, "rust")
        if stock_home:
            prepare_home(stock_home, "stock")
        print("warming up Dagster (ephemeral instance, untimed) ...", flush=True)
        warm_up()
        print(f"dagster-rs workload on {rust_home} ...", flush=True)
        rust = run_workload("rust", rust_home)
        stock = None
        if stock_home:
            print(f"stock workload on {stock_home} ...", flush=True)
            stock = run_workload("stock", stock_home)
        print_summary(rust, stock, kept=args.keep or bool(args.home))
    finally:
        if not args.keep:
            for home in temp_homes:
                shutil.rmtree(home, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    failed = not rust.ok or (stock is not None and not stock.ok)
    if failed:
        print("FAILED: not every run succeeded", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
