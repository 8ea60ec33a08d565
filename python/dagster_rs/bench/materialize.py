"""End to end: `materialize` of an asset chain on dagster-rs, stock on disk, stock in memory.

Part of `python -m dagster_rs.bench events`. A chain of N assets (a00 -> a01 -> ... , each loading
its parent's output through the default filesystem IO manager) is materialized with
`dagster.materialize` (in-process executor) on three instances that live in this process:

- `rust`: a persistent dagster-rs instance (a DAGSTER_HOME whose dagster.yaml selects
  `dagster_rs.DagsterInstance`: runs and events served by the Rust core, durability full);
- `stock`: a persistent stock instance (an empty dagster.yaml: SQLite run storage and stock's
  run-sharded SQLite event log, durability full);
- `ephemeral`: stock's `DagsterInstance.ephemeral()` (in-memory storage, nothing persisted).

Each repetition materializes the chain once on every instance, in an order that rotates from one
repetition to the next; the first `warmup` repetitions are not counted (the process has already
run one `materialize` before, so one-time import costs land on none of them). The console logger is
set to WARNING on all three (the same run config), so the terminal is not part of what is timed.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetIn,
    AssetKey,
    AssetsDefinition,
    DagsterInstance,
    asset,
    materialize,
)
from dagster._core.events.log import EventLogEntry

from dagster_rs.bench.common import make_home, open_instance, remove_home

E2E_KINDS = ("rust", "stock", "ephemeral", "rust_lean")
# What an ephemeral instance leaves out besides persistent storage: telemetry (two YAML files read
# per step event) and compute-log capture (a `tail` subprocess pair per step). The "rust_lean"
# side is dagster-rs persistent with both off, so storage is the one difference left.
LEAN_YAML = """
telemetry:
  enabled: false
compute_logs:
  module: dagster._core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
"""
QUIET_RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def chain_assets(n: int) -> list[AssetsDefinition]:
    """a00 -> a01 -> ... -> a{n-1}: each asset loads its parent's value and adds one."""
    assets: list[AssetsDefinition] = []
    for i in range(n):
        name = f"a{i:02d}"
        if i == 0:

            @asset(name=name)
            def root() -> int:
                return 0

            assets.append(root)
        else:

            @asset(name=name, ins={"up": AssetIn(key=AssetKey(f"a{i - 1:02d}"))})
            def child(up: int) -> int:
                return up + 1

            assets.append(child)
    return assets


def materialize_chain(instance: DagsterInstance, assets: Sequence[AssetsDefinition]) -> str:
    """Materialize the chain on `instance`; the run id. Raises if the run did not succeed."""
    result = materialize(assets, instance=instance, run_config=QUIET_RUN_CONFIG)
    if not result.success:
        raise RuntimeError(f"materialize failed on {type(instance).__name__}")
    return result.run_id


def capture_chain_events(n: int) -> list[EventLogEntry]:
    """Every event of one stock `materialize` of an n-asset chain, in storage order."""
    instance = DagsterInstance.ephemeral()
    try:
        run_id = materialize_chain(instance, chain_assets(n))
        return [r.event_log_entry for r in instance.get_records_for_run(run_id).records]  # type: ignore[attr-defined]
    finally:
        instance.dispose()


@dataclass
class E2EResult:
    """Wall times (seconds) of every counted `materialize`, per instance kind."""

    n_assets: int
    warmup: int
    times: dict[str, list[float]] = field(default_factory=dict)
    events_per_run: int = 0
    rust_domains: list[str] = field(default_factory=list)
    durability: str = "?"

    def median(self, kind: str) -> float:
        return statistics.median(self.times[kind])

    @property
    def rust_over_ephemeral(self) -> float:
        return self.median("rust") / self.median("ephemeral")

    @property
    def stock_over_rust(self) -> float:
        return self.median("stock") / self.median("rust")

    def paired(self, num: str, den: str) -> float:
        """Median over repetitions of num/den within each repetition (robust to load drift)."""
        return statistics.median(
            a / b for a, b in zip(self.times[num], self.times[den], strict=True)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "n_assets": self.n_assets,
            "warmup": self.warmup,
            "reps": len(self.times.get("rust", [])),
            "events_per_run": self.events_per_run,
            "median_s": {kind: self.median(kind) for kind in self.times},
            "times_s": self.times,
            "rust_over_ephemeral": self.rust_over_ephemeral,
            "stock_over_rust": self.stock_over_rust,
            "rust_over_ephemeral_paired": self.paired("rust", "ephemeral"),
            "stock_over_rust_paired": self.paired("stock", "rust"),
            "rust_lean_over_ephemeral_paired": self.paired("rust_lean", "ephemeral"),
            "rust_domains": self.rust_domains,
            "durability": self.durability,
        }


def time_materialize(
    n_assets: int,
    reps: int,
    warmup: int,
    parent: str | None,
    keep: bool = False,
    progress: Callable[[str], None] = print,
) -> E2EResult:
    """Time `materialize` of the chain on the three instances (see the module docstring)."""
    assets = chain_assets(n_assets)
    homes = {kind: make_home(kind, parent) for kind in ("rust", "stock")}
    homes["rust_lean"] = make_home("rust", parent)
    with open(os.path.join(homes["rust_lean"], "dagster.yaml"), "a") as f:
        f.write(LEAN_YAML)
    instances: dict[str, DagsterInstance] = {}
    result = E2EResult(n_assets=n_assets, warmup=warmup)
    try:
        for kind, home in homes.items():
            instances[kind] = open_instance(home)
            progress(f"  materialize: {kind:9s} DAGSTER_HOME={home}")
        instances["ephemeral"] = DagsterInstance.ephemeral()
        rust = instances["rust"]
        result.rust_domains = sorted(getattr(rust, "rust_domains", ()))
        result.durability = str(getattr(rust, "durability", "?"))
        if "events" not in result.rust_domains:
            progress(f"  WARNING: events not live in Rust (rust domains: {result.rust_domains})")
        times: dict[str, list[float]] = {kind: [] for kind in E2E_KINDS}
        clock = time.perf_counter
        last_run: dict[str, str] = {}
        for rep in range(warmup + reps):
            shift = rep % len(E2E_KINDS)
            order = E2E_KINDS[shift:] + E2E_KINDS[:shift]
            for kind in order:
                gc.collect()
                t0 = clock()
                last_run[kind] = materialize_chain(instances[kind], assets)
                dt = clock() - t0
                if rep >= warmup:
                    times[kind].append(dt)
            if rep < warmup:
                progress(f"  materialize[{n_assets} assets] warm-up {rep + 1}/{warmup} done")
            else:
                progress(
                    f"  materialize[{n_assets} assets] rep {rep - warmup + 1}/{reps}: "
                    + "  ".join(f"{kind} {times[kind][-1]:.3f} s" for kind in E2E_KINDS)
                )
        result.times = times
        result.events_per_run = len(rust.get_records_for_run(last_run["rust"]).records)
    finally:
        for inst in instances.values():
            inst.dispose()
        if not keep:
            for home in homes.values():
                remove_home(home)
    return result


def format_e2e(result: E2EResult) -> str:
    reps = len(result.times["rust"])
    lines = [
        f"materialize, {result.n_assets}-asset chain (in-process executor), median of {reps}"
        f" after {result.warmup} warm-up; {result.events_per_run} events per run",
        "",
        f"  {'instance':38s} {'median s':>9s} {'min s':>8s} {'max s':>8s}",
    ]
    names = {
        "rust": "dagster-rs persistent",
        "stock": "stock persistent (SQLite)",
        "ephemeral": "stock ephemeral (in memory)",
        "rust_lean": "dagster-rs, no telemetry/compute logs",
    }
    for kind in E2E_KINDS:
        ts = result.times[kind]
        lines.append(
            f"  {names[kind]:38s} {statistics.median(ts):9.3f} {min(ts):8.3f} {max(ts):8.3f}"
        )
    lines += [
        "",
        f"  dagster-rs / stock ephemeral: {result.rust_over_ephemeral:.2f}x   (target <= 1.2x;"
        f" per repetition, median: {result.paired('rust', 'ephemeral'):.2f}x)",
        f"  stock persistent / dagster-rs: {result.stock_over_rust:.2f}x   (per repetition,"
        f" median: {result.paired('stock', 'rust'):.2f}x)",
        f"  dagster-rs without telemetry and compute-log capture (what ephemeral also leaves out)"
        f" / stock ephemeral: {result.paired('rust_lean', 'ephemeral'):.2f}x (per repetition)",
    ]
    return "\n".join(lines)


__all__ = [
    "E2E_KINDS",
    "E2EResult",
    "capture_chain_events",
    "chain_assets",
    "format_e2e",
    "materialize_chain",
    "time_materialize",
]
