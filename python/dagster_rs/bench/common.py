"""Helpers shared by the bench subcommands: instance homes, options, timing, results and JSON."""

from __future__ import annotations

import argparse
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
from collections.abc import Callable, Iterator, Mapping, Sequence
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


def make_homes(parent: str | None) -> dict[str, str]:
    """A fresh DAGSTER_HOME per side (`make_home`), by kind."""
    return {kind: make_home(kind, parent) for kind in KINDS}


def close_sides(
    instances: Mapping[str, DagsterInstance], homes: Mapping[str, str], keep: bool
) -> None:
    """Dispose the instances; remove their homes unless `keep`."""
    for inst in instances.values():
        inst.dispose()
    if not keep:
        for home in homes.values():
            remove_home(home)


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


# -- command line ------------------------------------------------------------------------------


def add_output_args(p: argparse.ArgumentParser, ops: Sequence[str]) -> None:
    """The --json, --dir and --ops options every benchmark takes (`parse_ops` reads --ops)."""
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write results as JSON")
    p.add_argument(
        "--dir",
        metavar="PATH",
        help="create the DAGSTER_HOMEs under PATH (e.g. /dev/shm to leave out the disk's fsync)",
    )
    p.add_argument(
        "--ops", metavar="LIST", help=f"comma-separated subset of: {', '.join(ops)} (default all)"
    )


def add_materialize_args(p: argparse.ArgumentParser, chain: int) -> None:
    """The end-to-end `materialize` options (--reps, --warmup, --chain) and --keep."""
    p.add_argument(
        "--reps",
        type=int,
        default=None,
        help="counted materialize repetitions per instance (default 5; quick 1)",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="uncounted materialize repetitions first (default 1; quick 0)",
    )
    p.add_argument(
        "--chain",
        type=int,
        default=None,
        help=f"assets in the materialize chain (default {chain}; quick 3)",
    )
    p.add_argument("--keep", action="store_true", help="keep the DAGSTER_HOMEs afterwards")


def parse_ops(text: str | None, ops: tuple[str, ...]) -> tuple[str, ...]:
    """The ops a comma-separated --ops value names (all of `ops` when it is not given)."""
    if not text:
        return ops
    chosen = tuple(o.strip() for o in text.split(",") if o.strip())
    unknown = sorted(set(chosen) - set(ops))
    if unknown:
        raise SystemExit(f"unknown op(s) {unknown}; choose from {list(ops)}")
    return chosen


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


def time_repeated(
    fns: Mapping[str, Callable[[int], object]], budget: Budget, turn: int = BLOCK
) -> dict[str, Sample]:
    """Warm up each side once, then call `fns[kind](i)` for i = 0, 1, ... until the budget is spent.

    The sides take turns of `turn` calls (the same queries, one side after the other); the
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
            for j in range(i, i + turn):
                t0 = clock()
                fn(j)
                dt = clock() - t0
                times[kind].append(dt)
                spent[kind] += dt
        i += turn
        if i >= budget.max_calls or max(spent.values()) >= budget.max_seconds:
            break
        if i >= budget.min_calls and min(spent.values()) >= budget.min_seconds:
            break
    return {kind: Sample(tuple(ts)) for kind, ts in times.items()}


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpResult:
    """One op's time on each side. `floor_us` is the op's floor where it was measured: the same
    SQL through the core with inputs prepared beforehand and no Dagster object built, timed in
    the same turns; how close dagster-rs is to what the database itself costs."""

    op: str
    stock_us: float
    rust_us: float
    stock_calls: int
    rust_calls: int
    stat: str
    floor_us: float | None = None

    @property
    def ratio(self) -> float:
        return self.stock_us / self.rust_us if self.rust_us > 0 else float("inf")

    @property
    def over_floor(self) -> float | None:
        if self.floor_us is None or self.floor_us <= 0:
            return None
        return self.rust_us / self.floor_us


# The kind under which a floor's sample is timed beside the two sides.
FLOOR = "floor"


def op_result(op: str, samples: Mapping[str, Sample], stat: str) -> OpResult:
    """The op's result from both sides' samples (and the floor's, when there is one): the mean
    (`stat` "mean") or median per call."""
    stock, rust = samples["stock"], samples["rust"]
    pick: Callable[[Sample], float] = (
        (lambda x: x.mean_us) if stat == "mean" else (lambda x: x.median_us)
    )
    floor = samples.get(FLOOR)
    return OpResult(
        op,
        pick(stock),
        pick(rust),
        stock.calls,
        rust.calls,
        stat,
        pick(floor) if floor is not None else None,
    )


def progress_line(result: OpResult, op_width: int, us_width: int) -> str:
    """A result as the benchmark prints it when the op is done."""
    floor = (
        f"  floor {result.floor_us:{us_width}.1f} µs (rust {result.over_floor:.2f}x floor)"
        if result.floor_us is not None
        else ""
    )
    return (
        f"  {result.op:{op_width}s} stock {result.stock_us:{us_width}.1f} µs"
        f"  rust {result.rust_us:{us_width}.1f} µs  ({result.ratio:.2f}x){floor}"
    )


def first_mismatch(
    op: str,
    fns: Mapping[str, Callable[[int], object]],
    width: int,
    normalize: Callable[[object], object] = lambda value: value,
) -> str | None:
    """Call both sides' `fns[kind](i)` for i = 0, 1, 2; describe the first call whose (normalized)
    answers differ, each cut to `width` characters; None when they all agree."""
    for i in range(3):
        a, b = normalize(fns["stock"](i)), normalize(fns["rust"](i))
        if a != b:
            return f"{op} (i={i}): stock {str(a)[:width]} != rust {str(b)[:width]}"
    return None


def print_mismatches(mismatches: Sequence[str]) -> None:
    if mismatches:
        print("\nRESULT MISMATCHES between stock and dagster-rs:")
        for m in mismatches:
            print(f"  - {m}")


def fmt_us(value: float) -> str:
    """A time in µs as the benchmark tables print it."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(results: list[OpResult]) -> str:
    header = (
        "op",
        "stock µs/op",
        "dagster-rs µs/op",
        "stock/rust",
        "floor µs/op",
        "rust/floor",
        "calls (stock/rust)",
    )
    rows = [
        (
            r.op,
            fmt_us(r.stock_us),
            fmt_us(r.rust_us),
            f"{r.ratio:.2f}x",
            "-" if r.floor_us is None else fmt_us(r.floor_us),
            "-" if r.over_floor is None else f"{r.over_floor:.2f}x",
            f"{r.stock_calls}/{r.rust_calls} ({r.stat})",
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:6], widths[1:6], strict=True)]
        return "  ".join([first, *rest, cells[6].ljust(widths[6])]).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def results_json(results: list[OpResult], meta: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        r.op: {
            "stock_us": r.stock_us,
            "rust_us": r.rust_us,
            "ratio": r.ratio,
            "floor_us": r.floor_us,
            "rust_over_floor": r.over_floor,
        }
        for r in results
    }
    out["_meta"] = dict(meta)
    return out


def sides_meta(
    parent: str | None, durability: object, rust_domains: Sequence[str]
) -> dict[str, Any]:
    """The JSON meta keys every benchmark reports about the two sides and the machine."""
    return {
        "dir": parent,
        "durability": durability,
        "stock_durability": "full (stock default: WAL, synchronous=FULL)",
        "rust_domains": rust_domains,
        **versions(),
    }


def calls_meta(results: Sequence[OpResult]) -> dict[str, Any]:
    """The JSON meta keys saying, per op, which statistic was taken over how many calls."""
    return {
        "stat": {r.op: r.stat for r in results},
        "calls": {r.op: {"stock": r.stock_calls, "rust": r.rust_calls} for r in results},
    }


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
        # One library for both sides (ARCHITECTURE.md, "One SQLite per process").
        "sqlite_version": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpu_count": str(os.cpu_count()),
        "loadavg_1m_at_end": f"{os.getloadavg()[0]:.2f}",
    }
