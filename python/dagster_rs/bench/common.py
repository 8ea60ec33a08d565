"""Helpers shared by the bench subcommands: instance homes, timing, the result table and JSON."""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance

KINDS = ("stock", "rust")

RUST_YAML = """\
instance_class:
  module: dagster_rs
  class: DagsterInstance
"""


def make_home(kind: str, parent: str | None) -> str:
    """A fresh DAGSTER_HOME (a new temp dir under `parent`) whose dagster.yaml selects `kind`.

    Stock gets an empty dagster.yaml; rust gets the `instance_class` block selecting dagster_rs.
    """
    if parent is not None:
        os.makedirs(parent, exist_ok=True)
    home = tempfile.mkdtemp(prefix=f"dagster-rs-bench-{kind}-", dir=parent)
    with open(os.path.join(home, "dagster.yaml"), "w") as f:
        f.write(RUST_YAML if kind == "rust" else "")
    return home


def open_instance(home: str) -> DagsterInstance:
    return DagsterInstance.from_config(home)


def remove_home(home: str) -> None:
    shutil.rmtree(home, ignore_errors=True)


@contextmanager
def env_override(name: str, value: str | None) -> Iterator[None]:
    """Set (or unset, for None) an environment variable for the duration of the block."""
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


# -- timing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """How long to repeat a read op: at least `min_calls` and `min_seconds`, at most the maxima."""

    min_calls: int
    max_calls: int
    min_seconds: float
    max_seconds: float


@dataclass(frozen=True)
class Sample:
    """Per-call wall times of one op on one instance, in seconds."""

    times: tuple[float, ...]

    @property
    def calls(self) -> int:
        return len(self.times)

    @property
    def mean_us(self) -> float:
        return statistics.fmean(self.times) * 1e6

    @property
    def median_us(self) -> float:
        return statistics.median(self.times) * 1e6


# Calls per turn when the sides take turns. Turns of a few calls keep load drift on the machine
# fair to both sides; a single call per turn would instead measure each side with the CPU caches
# the other side just filled (stock's much larger code path evicts the faster side's working set).
BLOCK = 20


def time_each(fns: Mapping[str, Callable[[int], object]], count: int) -> dict[str, Sample]:
    """Call every `fns[kind](i)` once for i in 0..count-1, timing each call (writes).

    The sides take turns of `BLOCK` calls each, so load from elsewhere hits both alike. Before
    each turn the file system is synced (untimed): a file system journal is shared by every
    file, so the first fsync of a turn would otherwise also pay for the metadata the other side
    left dirty (stock creates and unlinks a WAL file at every call), charging one side for the
    other's writes.
    """
    gc.collect()
    times: dict[str, list[float]] = {kind: [] for kind in fns}
    clock = time.perf_counter
    for start in range(0, count, BLOCK):
        for kind, fn in fns.items():
            os.sync()
            for i in range(start, min(start + BLOCK, count)):
                t0 = clock()
                fn(i)
                times[kind].append(clock() - t0)
    return {kind: Sample(tuple(ts)) for kind, ts in times.items()}


def time_repeated(fns: Mapping[str, Callable[[int], object]], budget: Budget) -> dict[str, Sample]:
    """Warm up each side once, then call `fns[kind](i)` for i = 0, 1, ... until the budget is spent.

    The sides take turns of `BLOCK` calls (the same queries, one side after the other); the
    budget's seconds count the time spent in each side's own calls, so a slow side cannot starve
    the other.
    """
    for fn in fns.values():
        fn(0)
    gc.collect()
    times: dict[str, list[float]] = {kind: [] for kind in fns}
    spent = dict.fromkeys(fns, 0.0)
    clock = time.perf_counter
    i = 0
    while True:
        for kind, fn in fns.items():
            for j in range(i, i + BLOCK):
                t0 = clock()
                fn(j)
                dt = clock() - t0
                times[kind].append(dt)
                spent[kind] += dt
        i += BLOCK
        if i >= budget.max_calls or max(spent.values()) >= budget.max_seconds:
            break
        if i >= budget.min_calls and min(spent.values()) >= budget.min_seconds:
            break
    return {kind: Sample(tuple(ts)) for kind, ts in times.items()}


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpResult:
    op: str
    stock_us: float
    rust_us: float
    stock_calls: int
    rust_calls: int
    stat: str

    @property
    def ratio(self) -> float:
        return self.stock_us / self.rust_us if self.rust_us > 0 else float("inf")


def _fmt_us(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(results: list[OpResult]) -> str:
    header = ("op", "stock µs/op", "dagster-rs µs/op", "stock/rust", "calls (stock/rust)")
    rows = [
        (
            r.op,
            _fmt_us(r.stock_us),
            _fmt_us(r.rust_us),
            f"{r.ratio:.2f}x",
            f"{r.stock_calls}/{r.rust_calls} ({r.stat})",
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:4], widths[1:4], strict=True)]
        return "  ".join([first, *rest, cells[4].ljust(widths[4])]).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def results_json(results: list[OpResult], meta: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        r.op: {"stock_us": r.stock_us, "rust_us": r.rust_us, "ratio": r.ratio} for r in results
    }
    out["_meta"] = dict(meta)
    return out


def write_json(path: str, payload: Mapping[str, Any]) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False)
        f.write("\n")


def versions() -> dict[str, str]:
    import dagster

    try:
        from dagster_rs import __version__ as rs_version
    except Exception as exc:  # the native module failed to import: say so in the report
        rs_version = f"unavailable ({exc})"
    return {
        "dagster_version": dagster.__version__,
        "dagster_rs_version": rs_version,
        "python_version": sys.version.split()[0],
        "stock_sqlite_version": sqlite3.sqlite_version,  # dagster-rs bundles its own SQLite
        "platform": platform.platform(),
        "cpu_count": str(os.cpu_count()),
        "loadavg_1m_at_end": f"{os.getloadavg()[0]:.2f}",
    }
