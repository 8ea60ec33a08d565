"""`dagster-rs`: look at a DAGSTER_HOME, check it, optimize it, and run the benchmarks.

    dagster-rs info  [--home PATH]    layout, schema revisions, index layouts, live domains,
                                      rows per table
    dagster-rs check [--home PATH] [--full] [--verbose]
                                      every file intact (crash leftovers named, not failed),
                                      revisions known, and stock and dagster-rs read the same
                                      through every read shape the domains serve
    dagster-rs optimize [--home PATH] [--undo]
                                      bring runs.db to Dagster's migrated (047) tag index
                                      layout, or back to the fresh one
    dagster-rs bench [--quick] [--json PATH] [--dir PATH] [--domain B ...]
                                      every bench (domains, then end to end), one table

`info` and `check` never write to the home: they open its SQLite files with Python's `sqlite3`
in read-only mode (the library the extension runs too: ARCHITECTURE.md, "One SQLite per
process"), look at a file that only a read-write open could read (a hot rollback journal) on a
temporary copy, and `check` opens a stock and a dagster-rs instance, each from a configuration
of its own, on the files (or on copies of those that reading would change). `optimize` is the one
command that changes a file, and only when asked.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import click
import yaml

from dagster_rs.bench.common import fmt_us
from dagster_rs.home_files import (
    INDEX_DB,
    KIND_OF,
    MAIN_DBS,
    RUNS_DB,
    SCHEDULES_DB,
    SHARDS_GLOB,
    FileReport,
    Revisions,
    copy_file,
    database_files,
    describe,
    examine,
    journal_is_hot,
    rolled_back_copy,
    row_counts,
    sample_shards,
    shard_entries,
    shard_files,
    stock_revisions,
    wal_left,
)

__all__ = [
    "MAIN_DBS",
    "database_files",
    "main",
    "shard_files",
    "stock_revisions",
]

BENCH_DOMAINS = ("runs", "events", "assets", "scheduling", "run_launcher")
# The end-to-end benches, after the domains': the runs table's GraphQL query and the 100-step
# multiprocess job (the 20-asset `materialize` is part of the events bench's JSON).
BENCH_E2E = ("graphql", "multiprocess")
BENCHES = BENCH_DOMAINS + BENCH_E2E
# Benches only `--backend postgres` has (the SQLite benches time config ops within others).
PG_ONLY_BENCHES = ("config",)
E2E = "end-to-end"

RUST_YAML = """\
instance_class:
  module: dagster_rs
  class: DagsterInstance
rust_domains: all
"""

# Above this many run shards, check examines a sample of them (`--full`: all).
SHARD_SAMPLE = 1000


# -- the home's configuration ------------------------------------------------------------------


def resolve_home(home: str | None) -> str:
    home = home or os.environ.get("DAGSTER_HOME")
    if not home:
        raise click.UsageError("no home: pass --home PATH or set $DAGSTER_HOME")
    if not os.path.isdir(home):
        raise click.ClickException(f"{home} is not a directory")
    return os.path.abspath(home)


def home_config(home: str) -> dict[str, Any]:
    path = os.path.join(home, "dagster.yaml")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        loaded = yaml.safe_load(f)
    return loaded if isinstance(loaded, dict) else {}


def configured_domains(config: Mapping[str, Any]) -> tuple[str, list[str], str]:
    """(instance class, domains served by Rust, where that came from) for a home's config.

    What the facade would select: `rust_domains` of the config, `$DAGSTER_RS_DOMAINS` over it.
    A stock instance class serves none; nor does a Dagster outside the tested range."""
    from dagster_rs.compat import TESTED_RANGE, dagster_in_range
    from dagster_rs.domains import ENV_VAR, resolve_domains

    klass = config.get("instance_class") or {}
    module, name = klass.get("module"), klass.get("class")
    if not module:
        return "dagster.DagsterInstance (stock)", [], "stock instance class"
    if module != "dagster_rs" or name != "DagsterInstance":
        return f"{module}.{name}", [], "not dagster-rs's instance class"
    source = f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "dagster.yaml rust_domains"
    if not os.environ.get(ENV_VAR) and config.get("rust_domains") is None:
        source = "default: all implemented"
    domains = sorted(resolve_domains(config.get("rust_domains")))
    if not dagster_in_range():
        return (
            "dagster_rs.DagsterInstance",
            [],
            f"this Dagster is outside dagster{TESTED_RANGE}: every domain is served by stock",
        )
    return "dagster_rs.DagsterInstance", domains, source


def configured_storage(config: Mapping[str, Any]) -> str | None:
    """Names a storage the home's config puts elsewhere than its SQLite files, else None."""
    storage = config.get("storage")
    if isinstance(storage, dict) and set(storage) & {"postgres", "mysql"}:
        return f"storage: {sorted(set(storage) & {'postgres', 'mysql'})[0]}"
    for key in ("run_storage", "event_log_storage", "schedule_storage"):
        value = config.get(key)
        if isinstance(value, dict) and "sqlite" not in str(value.get("module", "")).lower():
            return f"{key}: {value.get('module')}.{value.get('class')}"
    return None


def _size(path: str) -> str:
    total = os.path.getsize(path)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            total += os.path.getsize(path + suffix)
    return f"{total:,} bytes"


def layout_lines(path: str) -> list[str]:
    """runs.db's run_tags index layout, and what `dagster-rs optimize` would do to it."""
    from dagster_rs.run_tags_layout import layout_of

    try:
        layout = layout_of(path)
    except sqlite3.Error as exc:
        return [f"run_tags index layout: cannot be read: {exc}"]
    if layout is None:
        return ["run_tags index layout: no run_tags table"]
    if layout.is_migrated:
        said = "nothing for `dagster-rs optimize` to change"
    else:
        said = (
            "`dagster-rs optimize` would bring it to 047's (unique idx_run_tags_run_id"
            " (key, value, run_id) in place of idx_run_tags)"
        )
    return [f"run_tags index layout: {layout.describe()}", f"  {said}"]


# inspect_database's kind of each main file.
NATIVE_KIND: dict[str, Literal["runs", "event_index", "event_shard", "schedules"]] = {
    RUNS_DB: "runs",
    INDEX_DB: "event_index",
    SCHEDULES_DB: "schedules",
}


def serving_lines(rel: str, path: str, revisions: Revisions) -> list[str]:
    """How a file that is not simply at the head is served, from the core's own verdict
    (`_native.inspect_database`, the one the facade and the stores act on): at an older revision,
    natively as it is or on stock's code for that file until `dagster instance migrate`;
    half-built; read-only for this process."""
    from dagster_rs import _native

    try:
        if journal_is_hot(path) or wal_left(path):
            # inspect_database rolls a hot journal back where it can (as any reader's first open
            # does), and its close folds a WAL no one else holds into the file (as any last
            # reader's does); check changes nothing, so it asks about a copy.
            with rolled_back_copy(path) as copy:
                found = _native.inspect_database(copy, NATIVE_KIND[rel])
        else:
            found = _native.inspect_database(path, NATIVE_KIND[rel])
    except Exception:  # noqa: BLE001 - a file the core cannot read: its state line says why
        return []
    lines = []
    rev, state = found["revision"], found["state"]
    if state == "outdated":
        if found["native"]:
            lines.append(
                f"{rel} is at {rev}, older than {revisions.head}: stock serves it as it is, and so"
                " does dagster-rs, natively; `dagster instance migrate` brings it to the head"
            )
        else:
            lacks = ", ".join(found["missing"]) or "what it reads"
            lines.append(
                f"{rel} is at {rev}, older than {revisions.head}: stock serves it as it is, and so"
                f" does dagster-rs, on stock's code for this file (its native path needs {lacks})"
                " until `dagster instance migrate`"
            )
    elif state == "unstamped":
        lines.append(
            f"{rel} is half-built (Dagster tables, no alembic stamp: a creation cut short);"
            + (
                " completed on first use as stock completes it"
                if found["native"]
                else " dagster-rs serves it on stock's code"
            )
        )
    if found["read_only"]:
        lines.append(f"{rel} is read-only for this process: every read works, every write fails")
    return lines


# -- commands ----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """dagster-rs: Dagster's instance storage served by Rust, on Dagster's own files."""


home_option = click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=None,
    help="the DAGSTER_HOME (default: $DAGSTER_HOME)",
)


@main.command()
@home_option
def info(home: str | None) -> None:
    """The home's files, schema revisions, index layouts, live domains and rows per table
    (read-only)."""
    from dagster_rs import _native
    from dagster_rs.compat import (
        TESTED_RANGE,
        dagster_in_range,
        installed_dagster,
        left_to_stock,
        out_of_range_message,
    )
    from dagster_rs.domains import DomainSelectionError

    home = resolve_home(home)
    config = home_config(home)
    out = click.echo
    out(f"home: {home}")
    out(f"dagster-rs {_native.__version__}, SQLite {sqlite3.sqlite_version}")
    in_range = dagster_in_range()
    out(
        f"dagster {installed_dagster()}: "
        + (f"in the range dagster-rs is tested on (dagster{TESTED_RANGE})" if in_range else "")
    )
    if not in_range:
        out(f"  {out_of_range_message()}")
    else:
        for method, because in left_to_stock().items():
            out(f"  {method}: stock's code serves it ({because})")

    out("\nlayout:")
    yaml_path = os.path.join(home, "dagster.yaml")
    out(f"  dagster.yaml  {'present' if os.path.isfile(yaml_path) else 'absent (defaults)'}")
    for rel in MAIN_DBS:
        path = os.path.join(home, rel)
        out(f"  {rel}  {_size(path) if os.path.isfile(path) else 'absent'}")
    shards = shard_files(home)
    shard_bytes = sum(os.path.getsize(p) for p in shards)
    out(f"  {SHARDS_GLOB}  {len(shards)} run shard(s), {shard_bytes:,} bytes")
    for rel in ("storage", "logs"):
        if os.path.isdir(os.path.join(home, rel)):
            out(f"  {rel}/")

    revisions = stock_revisions()
    out(f"\nschema revisions (dagster's head {revisions.head}):")
    older: list[str] = []
    for rel in MAIN_DBS:
        path = os.path.join(home, rel)
        if os.path.isfile(path):
            # Its state as check examines it (a hot journal rolled back on a copy), without the
            # integrity check.
            report = examine(path, KIND_OF[rel], revisions, check_integrity=False)
            if report.state in ("ok", "older", "newer"):
                said = revisions.describe(report.revision)[1]
                if report.hot_journal:
                    said += " (a hot rollback journal beside it: `dagster-rs check`)"
            else:
                said = describe(report, revisions)
            older += serving_lines(rel, path, revisions)
            out(f"  {rel}  {said}")
    for line in older:
        out(f"  {line}")

    runs_db = os.path.join(home, RUNS_DB)
    if os.path.isfile(runs_db):
        out("\nindex layouts:")
        out(f"  {RUNS_DB}  " + "\n  ".join(layout_lines(runs_db)))

    try:
        klass, domains, source = configured_domains(config)
    except DomainSelectionError as exc:
        klass, domains, source = "dagster_rs.DagsterInstance", [], f"invalid: {exc}"
    out(f"\ninstance class: {klass}")
    elsewhere = configured_storage(config)
    if elsewhere:
        out(f"  storage configured elsewhere ({elsewhere}): the files here are not its storage")
    out(f"domains served by Rust: {', '.join(domains) or 'none'} ({source})")

    out("\nrows per table:")
    for rel in MAIN_DBS:
        path = os.path.join(home, rel)
        if not os.path.isfile(path):
            continue
        out(f"  {rel}")
        try:
            counts = row_counts(path)
        except sqlite3.Error as exc:
            out(f"    cannot be read: {exc}")
            continue
        for table, count in counts.items():
            out(f"    {table:40s} {count:>12,}")
    if shards:
        totals: dict[str, int] = {}
        for path in shards:
            try:
                counts = row_counts(path)
            except sqlite3.Error as exc:
                out(f"  {os.path.relpath(path, home)} cannot be read: {exc}")
                continue
            for table, count in counts.items():
                totals[table] = totals.get(table, 0) + count
        out(f"  {SHARDS_GLOB} ({len(shards)} files, summed)")
        for table, count in sorted(totals.items()):
            out(f"    {table:40s} {count:>12,}")


# -- check -------------------------------------------------------------------------------------

# Where each storage of an instance finds its files: the directory stock's storage is given.
STORAGE_DIRS = {"runs": "history", "events": "history/runs", "schedules": "schedules"}
FILE_OF = {"runs": RUNS_DB, "events": INDEX_DB, "schedules": SCHEDULES_DB}


def instance_yaml(kind: str, dirs: Mapping[str, str] | None) -> str:
    """The dagster.yaml of a `kind` ("stock" or "rust") instance on `dirs` (storage →
    directory); None: the home's own directories (the default configuration)."""
    text = RUST_YAML if kind == "rust" else ""
    if not dirs:
        return text
    blocks = {
        "run_storage": ("dagster._core.storage.runs", "SqliteRunStorage", dirs["runs"]),
        "event_log_storage": (
            "dagster._core.storage.event_log",
            "SqliteEventLogStorage",
            dirs["events"],
        ),
        "schedule_storage": (
            "dagster._core.storage.schedules",
            "SqliteScheduleStorage",
            dirs["schedules"],
        ),
    }
    config = {
        key: {"module": module, "class": klass, "config": {"base_dir": base_dir}}
        for key, (module, klass, base_dir) in blocks.items()
    }
    return text + yaml.safe_dump(config, default_flow_style=False)


@contextmanager
def open_instance(home: str, kind: str, dirs: Mapping[str, str] | None = None) -> Iterator[Any]:
    """A `kind` instance on `home` whose configuration is its own (in a directory of its own:
    the home's dagster.yaml is neither read nor written), its storages on `dirs`."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    config_dir = tempfile.mkdtemp(prefix="dagster-rs-check-")
    try:
        with open(os.path.join(config_dir, "dagster.yaml"), "w") as f:
            f.write(instance_yaml(kind, dirs))
        instance = DagsterInstance.from_ref(InstanceRef.from_dir(home, config_dir=config_dir))
        try:
            yield instance
        finally:
            instance.dispose()
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)


def _copy_db(path: str, dest_dir: str) -> None:
    """`path` and the files SQLite keeps beside it, into `dest_dir`."""
    os.makedirs(dest_dir, exist_ok=True)
    for suffix in ("-journal", "-wal", ""):  # the journal before the file it restores
        if os.path.exists(path + suffix):
            # Through SQLite's VFS, never open(): closing a descriptor of the database file
            # would drop the locks this process holds on it (home_files.copy_file).
            copy_file(
                path + suffix,
                os.path.join(dest_dir, os.path.basename(path) + suffix),
                journal=suffix != "",
            )


@dataclass
class Placement:
    """Where each implementation's instance finds each storage's files for the reads: the
    home's own directory, or (a file that reading would change, or one that is absent) a
    temporary directory per implementation holding a copy, or nothing."""

    dirs: dict[str, dict[str, str]]  # kind -> storage -> directory
    copied: list[str]  # what was copied or left out, said in the report

    def is_home(self, home: str) -> bool:
        return all(
            d[s] == os.path.join(home, STORAGE_DIRS[s]) for d in self.dirs.values() for s in d
        )


def place(home: str, reports: Mapping[str, FileReport], work: str) -> Placement:
    dirs: dict[str, dict[str, str]] = {"stock": {}, "rust": {}}
    copied = []
    for storage, rel in FILE_OF.items():
        report = reports[rel]
        for kind in dirs:
            in_home = os.path.join(home, STORAGE_DIRS[storage])
            if report.state == "absent" or report.needs_copy:
                target = os.path.join(work, kind, storage)
                os.makedirs(target, exist_ok=True)
                if report.state != "absent":
                    _copy_db(os.path.join(home, rel), target)
                dirs[kind][storage] = target
            else:
                dirs[kind][storage] = in_home
        if report.state == "absent":
            copied.append(f"{rel} is absent: each instance reads a new one of its own")
        elif report.needs_copy:
            copied.append(f"{rel} is read on copies (reading it in place would change it)")
    return Placement(dirs, copied)


def _leftover_line(counts: Counter[str], hot: int) -> list[str]:
    lines = []
    names = {
        "empty": "empty shard(s) (zero bytes: created by a killed writer; used normally)",
        "no_tables": "shard(s) without tables (created by a killed writer; used normally)",
        "half_built": (
            "half-built shard(s) (some tables, no alembic stamp: a writer was killed creating"
            " it; the rest is created on first use)"
        ),
    }
    for state, text in names.items():
        if counts.get(state):
            lines.append(f"{counts[state]} {text}")
    if hot:
        lines.append(
            f"{hot} shard(s) with a hot rollback journal (an interrupted transaction, rolled back"
            " when next opened; examined on a copy rolled back)"
        )
    return lines


@dataclass
class Files:
    """What check found in the home's files (printed as it went)."""

    reports: dict[str, FileReport]
    shards: list[FileReport]
    problems: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)


def examine_files(home: str, revisions: Revisions, full: bool) -> Files:
    """Each main file's state and a sample of the shards' (every shard with `full`), a line for
    each main file and one per kind of shard state."""
    out = click.echo
    entries = shard_entries(home)
    reports = {rel: examine(os.path.join(home, rel), KIND_OF[rel], revisions) for rel in MAIN_DBS}
    if all(r.state == "absent" for r in reports.values()) and not entries:
        raise click.ClickException(
            f"{home}: {', '.join(MAIN_DBS)} missing; not a DAGSTER_HOME an instance has written to"
        )
    problems: list[str] = []
    advice: list[str] = []
    out(f"home: {home}")
    out("files:")
    for rel, report in reports.items():
        said = describe(report, revisions)
        if report.state == "absent":
            needed_by = None
            if rel == RUNS_DB and (entries or reports[INDEX_DB].state != "absent"):
                needed_by = "the run shards" if entries else "history/runs/index.db"
            if rel == INDEX_DB and entries:
                needed_by = f"the {len(entries):,} run shard(s) (their asset index)"
            if needed_by:
                problems.append(f"{rel} is missing while {needed_by} need it")
                said = f"MISSING, needed by {needed_by}"
            else:
                said = "absent (created on first use)"
        out(f"  {rel}  {said}")
        if report.damaged:
            problems.append(f"{rel}: {said}")
        if report.state == "older":
            # How it is served until migrated, as the core judges it (else the state line).
            advice += serving_lines(rel, report.path, revisions) or [f"{rel}: {said}"]
        if rel == RUNS_DB and _in_place(report):
            for line in layout_lines(report.path):
                out(f"    {line}")

    sample = sample_shards(entries, None if full else SHARD_SAMPLE)
    shard_reports = [examine(s.path, "shard", revisions) for s in sample.examined]
    if not entries:
        out(f"  {SHARDS_GLOB}  no run shards")
        return Files(reports, shard_reports, problems, advice)
    by_state = Counter(r.state for r in shard_reports)
    out(f"  {SHARDS_GLOB}  examined {sample.description}")
    if by_state.get("ok"):
        out(f"    {by_state['ok']:,} at the head, integrity_check ok")
    for line in _leftover_line(by_state, sum(r.hot_journal for r in shard_reports)):
        out(f"    {line}")
    if by_state.get("older"):
        text = (
            f"{by_state['older']:,} run shard(s) at an older revision: stock serves them as they"
            " are; run `dagster instance migrate` to bring them to the head"
        )
        out(f"    {text}")
        advice.append(text)
    for r in shard_reports:
        if r.damaged:
            said = f"{os.path.relpath(r.path, home)}: {describe(r, revisions)}"
            problems.append(said)
            out(f"    {said}")
    return Files(reports, shard_reports, problems, advice)


@main.command()
@home_option
@click.option(
    "--full",
    is_flag=True,
    help=f"examine every run shard (default: a sample when there are more than {SHARD_SAMPLE})",
)
@click.option("--verbose", "-v", is_flag=True, help="print every read, not only the differences")
def check(home: str | None, full: bool, verbose: bool) -> None:
    """Check the home: every file intact (crash leftovers are named, not failed; older
    revisions are advice), and stock and dagster-rs read the same through every read shape the
    domains serve. Read-only. Exit 0 with a summary, 1 with what is wrong."""
    from dagster_rs import check_reads
    from dagster_rs.compat import dagster_in_range, out_of_range_message

    started = time.perf_counter()
    home = resolve_home(home)
    out = click.echo
    problems: list[str] = []
    advice: list[str] = []

    elsewhere = configured_storage(home_config(home))
    if elsewhere:
        raise click.ClickException(
            f"{home}: its storage is configured elsewhere ({elsewhere}); check reads a SQLite home"
        )
    revisions = stock_revisions()
    files = examine_files(home, revisions, full)
    out(f"  (files examined in {time.perf_counter() - started:.1f} s)")
    reports, shard_reports = files.reports, files.shards
    problems += files.problems
    advice += files.advice

    if problems:
        # Damage: what the instances would read is not the home's data.
        raise click.ClickException("\n".join(["the home fails its check:", *problems]))

    bounds = check_reads.Bounds()
    with tempfile.TemporaryDirectory(prefix="dagster-rs-check-") as work:
        placement = place(home, reports, work)
        draws = check_reads.draw(
            _in_place(reports[RUNS_DB]),
            _in_place(reports[INDEX_DB]),
            _in_place(reports[SCHEDULES_DB]),
            bounds,
        )
        if _in_place(reports[INDEX_DB]):
            draws.event_runs = _event_runs(home, draws, shard_reports, revisions, bounds)
        passes = [
            Pass(
                "",
                None if placement.is_home(home) else placement.dirs,
                check_reads.all_reads(draws, bounds),
            )
        ]
        leftovers = [r for r in shard_reports if r.needs_copy]
        if leftovers:
            passes.append(
                _leftover_pass(leftovers[: bounds.leftover_runs], placement, work, bounds)
            )

        out(f"\nreads, stock and dagster-rs (all domains), compared; bounded: {bounds.describe()}")
        for note in placement.copied:
            out(f"  {note}")
        for note in draws.notes:
            out(f"  value not drawn: {note}")
        if not dagster_in_range():
            out(f"  {out_of_range_message()}")
        result = compare(home, passes, verbose)
    problems += result.errors
    if result.differing:
        problems.append(
            f"{len(result.differing)} read(s) differ between stock and dagster-rs:\n    "
            + "\n    ".join(result.differing)
        )
    for line in advice:
        out(f"advice: {line}")
    elapsed = time.perf_counter() - started
    if problems:
        raise click.ClickException("\n".join(["the home fails its check:", *problems]))
    out(
        f"ok: {home}: no damage, and stock and dagster-rs read the same"
        f" ({result.total} reads; check took {elapsed:.1f} s)"
    )


def _in_place(report: FileReport) -> str | None:
    """The file's path when the instances read it where it is."""
    return report.path if report.state in ("ok", "older") and not report.hot_journal else None


def _event_runs(
    home: str,
    draws: Any,
    shard_reports: Sequence[FileReport],
    revisions: Revisions,
    bounds: Any,
) -> list[str]:
    """The newest runs whose shards either implementation reads without writing to them: the
    shard is there, at a revision, with no journal to roll back."""
    clean = {r.path for r in shard_reports if _in_place(r)}
    out: list[str] = []
    for run in draws.runs:
        shard = os.path.join(home, "history/runs", f"{run.run_id}.db")
        if shard not in clean and os.path.isfile(shard):
            if _in_place(examine(shard, "shard", revisions, check_integrity=False)):
                clean.add(shard)
        if shard in clean:
            out.append(run.run_id)
        if len(out) >= bounds.event_runs:
            break
    return out


@dataclass(frozen=True)
class Pass:
    """Reads through one stock and one dagster-rs instance, opened on `dirs` (None: the
    home's own directories, in the default configuration)."""

    label: str
    dirs: Mapping[str, Mapping[str, str]] | None
    reads: Sequence[Any]  # check_reads.Read


def _leftover_pass(
    chosen: Sequence[FileReport], placement: Placement, work: str, bounds: Any
) -> Pass:
    """The runs of leftover shards (empty, table-less, half-built, hot journal), read as each
    implementation reads them: on a copy of its own (reading them creates or rolls back)."""
    from dagster_rs import check_reads

    dirs = {kind: dict(d) for kind, d in placement.dirs.items()}
    for kind in dirs:
        events = os.path.join(work, kind, "leftover-shards")
        for r in chosen:
            _copy_db(r.path, events)
        dirs[kind]["events"] = events
    ids = [os.path.basename(r.path)[: -len(".db")] for r in chosen]
    return Pass(
        f" (the {len(chosen)} leftover shard(s), on copies)",
        dirs,
        check_reads.run_event_reads(ids, bounds, domain="leftover shards"),
    )


@dataclass
class Comparison:
    total: int = 0
    differing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stock_s: float = 0.0
    rust_s: float = 0.0


def compare(home: str, passes: Sequence[Pass], verbose: bool) -> Comparison:
    """Each pass's reads through both instances, each read's outcomes compared (the value, or
    the class and message of what it raised); prints a line per domain and per difference."""
    from dagster_rs import check_reads
    from dagster_rs.domains import ENV_VAR

    out = click.echo
    result = Comparison()
    # Both sides read with every Rust domain (a shell's $DAGSTER_RS_DOMAINS must not narrow it).
    saved = os.environ.pop(ENV_VAR, None)
    raised: set[str] = set()
    try:
        for p in passes:
            try:
                with (
                    open_instance(home, "stock", p.dirs["stock"] if p.dirs else None) as stock,
                    open_instance(home, "rust", p.dirs["rust"] if p.dirs else None) as rust,
                ):
                    if not p.label:
                        out(f"  dagster-rs domains read: {', '.join(sorted(rust.rust_domains))}")
                    per_domain: dict[str, Counter[str]] = {}
                    for read in p.reads:
                        t0 = time.perf_counter()
                        s = check_reads.outcome(read, stock)
                        t1 = time.perf_counter()
                        r = check_reads.outcome(read, rust)
                        result.stock_s += t1 - t0
                        result.rust_s += time.perf_counter() - t1
                        result.total += 1
                        same = s == r
                        per_domain.setdefault(read.domain, Counter())[
                            "same" if same else "DIFFERENT"
                        ] += 1
                        if same:
                            if verbose:
                                out(f"    {read.domain}: {read.name}: same ({s.short()})")
                            continue
                        result.differing.append(f"{read.domain}: {read.name}")
                        if r.kind == "error" and r.value in raised:
                            # One cause failing many reads: said once.
                            out(
                                f"    {read.domain}: {read.name}: DIFFERENT (dagster-rs raised as above)"
                            )
                            continue
                        if r.kind == "error":
                            raised.add(r.value)
                        out(f"    {read.domain}: {read.name}: DIFFERENT")
                        out(f"      stock:      {_shown(s)}")
                        out(f"      dagster-rs: {_shown(r)}")
                    for domain, counts in per_domain.items():
                        said = f"{counts['same']} same"
                        if counts["DIFFERENT"]:
                            said += f", {counts['DIFFERENT']} DIFFERENT"
                        out(f"  {domain}{p.label}: {sum(counts.values())} reads, {said}")
            except Exception as exc:  # noqa: BLE001 - an instance that cannot open is a finding
                result.errors.append(f"opening the home{p.label}: {type(exc).__name__}: {exc}")
    finally:
        if saved is not None:
            os.environ[ENV_VAR] = saved
    out(
        f"  {result.total} reads in {result.stock_s + result.rust_s:.1f} s (stock"
        f" {result.stock_s:.1f} s, dagster-rs {result.rust_s:.1f} s)"
    )
    return result


def _shown(o: Any) -> str:
    text = repr(o.value) if o.kind == "ok" else f"raised {o.value}"
    return text if len(text) <= 400 else text[:400] + "..."


# -- optimize ----------------------------------------------------------------------------------


@main.command()
@home_option
@click.option(
    "--undo", is_flag=True, help="restore the fresh layout, as migration 047's downgrade does"
)
def optimize(home: str | None, undo: bool) -> None:
    """Bring runs.db to the index layout Dagster's own migration 047 leaves (a unique
    idx_run_tags_run_id (key, value, run_id) in place of idx_run_tags (key, value): tag filters
    and counts covered by one index), or with --undo back to the layout of a fresh file. One
    transaction, safe while other processes have the home open: their reads go on, their writes
    wait for the index build (seconds per million tag rows; stock's writers give up after 5 s, so
    on a large home run it while no runs are being launched). Refuses, changing nothing, when
    duplicate tag rows keep the unique index from being built. Never done implicitly."""
    from dagster_rs.home_files import read_only
    from dagster_rs.run_tags_layout import (
        MIGRATION,
        LayoutError,
        change_layout,
        layout_of,
        planned_statements,
    )

    home = resolve_home(home)
    out = click.echo
    path = os.path.join(home, RUNS_DB)
    if not os.path.isfile(path):
        raise click.ClickException(f"{path} does not exist: nothing to optimize")
    revisions = stock_revisions()
    report = examine(path, "runs", revisions, check_integrity=False)
    if report.state not in ("ok", "older") or report.hot_journal:
        raise click.ClickException(
            f"{RUNS_DB}: {describe(report, revisions)}; not changing it (`dagster-rs check`)"
        )
    before = layout_of(path)
    if before is None:
        raise click.ClickException(f"{RUNS_DB} has no run_tags table: nothing to optimize")
    out(f"{RUNS_DB} run_tags layout before: {before.describe()}")
    if planned_statements(before, undo):
        with read_only(path) as conn:
            rows = conn.execute("SELECT count(*) FROM run_tags").fetchone()[0]
        out(
            f"building an index over {rows:,} tag rows: other writers of the file wait for it"
            " (dagster-rs's for up to 60 s, stock's for 5 s before 'database is locked')"
        )
    try:
        change = change_layout(path, undo=undo)
    except LayoutError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.Error as exc:
        raise click.ClickException(f"{RUNS_DB}: {exc}; nothing was changed") from exc
    if not change.statements:
        target = "the fresh layout" if undo else "047's layout"
        out(f"already at {target}: nothing to change")
    else:
        what = "downgrade" if undo else "upgrade"
        out(f"ran {MIGRATION}'s {what}, in one transaction:")
        for statement in change.statements:
            out(f"  {statement}")
        out(
            f"  the write lock was held {change.locked_s:.1f} s (other writers waited; readers"
            " did not)"
        )
    out(f"{RUNS_DB} run_tags layout after:  {change.after.describe()}")


# -- bench -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    domain: str
    op: str
    stock_us: float
    rust_us: float
    ratio: float
    floor_us: float | None


def materialize_rows(payload: Mapping[str, Any]) -> list[Row]:
    """The end-to-end `materialize` of a bench's JSON (its "materialize" section, seconds per
    run): dagster-rs persistent against stock persistent and against stock in memory."""
    e2e = payload.get("materialize")
    if not isinstance(e2e, dict) or "rust_s" not in e2e:
        return []
    n, rust_s = e2e.get("n_assets", "?"), float(e2e["rust_s"])
    rows = []
    for key, against in (("stock_s", "stock persistent"), ("ephemeral_s", "stock in-memory")):
        if e2e.get(key) is not None:
            stock_s = float(e2e[key])
            rows.append(
                Row(
                    E2E,
                    f"materialize {n}-asset chain ({against} vs dagster-rs)",
                    stock_s * 1e6,
                    rust_s * 1e6,
                    stock_s / rust_s,
                    None,
                )
            )
    return rows


def summary_rows(results: Mapping[str, Mapping[str, Any]]) -> list[Row]:
    """One row per op of each bench's JSON (`results_json`'s shape: op → figures, plus `_meta`
    and other sections without `stock_us`), then the end-to-end rows: the events bench's
    `materialize` and the end-to-end benches' ops."""
    rows: list[Row] = []
    e2e: list[Row] = []
    materialize: list[Row] = []
    for domain, payload in results.items():
        if domain == "events":
            materialize = materialize_rows(payload)
        for op, entry in payload.items():
            if not isinstance(entry, dict) or "stock_us" not in entry or "rust_us" not in entry:
                continue
            stock_us, rust_us = float(entry["stock_us"]), float(entry["rust_us"])
            ratio = entry.get("ratio")
            (e2e if domain in BENCH_E2E else rows).append(
                Row(
                    E2E if domain in BENCH_E2E else domain,
                    op,
                    stock_us,
                    rust_us,
                    float(ratio) if ratio is not None else stock_us / rust_us,
                    None if entry.get("floor_us") is None else float(entry["floor_us"]),
                )
            )
    return rows + materialize + e2e


def fmt_ratio(ratio: float) -> str:
    """stock / dagster-rs as the table prints it (two decimals below 1×: slower than stock)."""
    return f"{ratio:.1f}×" if ratio >= 1 else f"{ratio:.2f}×"


def summary_table(rows: Sequence[Row]) -> str:
    header = ("domain", "op", "stock µs", "dagster-rs µs", "ratio", "floor µs")
    cells = [
        (
            r.domain,
            r.op,
            fmt_us(r.stock_us),
            fmt_us(r.rust_us),
            fmt_ratio(r.ratio),
            "-" if r.floor_us is None else fmt_us(r.floor_us),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(c: tuple[str, ...]) -> str:
        left = [c[0].ljust(widths[0]), c[1].ljust(widths[1])]
        right = [v.rjust(w) for v, w in zip(c[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, cells)])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "?"


def _filesystem(path: str) -> str:
    """The type and device of the file system holding `path` (the mount with the longest prefix
    in /proc/mounts): tmpfs, or the disk the homes are on."""
    path = os.path.realpath(path)
    best = ("", "?", "?")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                device, mount, fstype = line.split()[:3]
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[0]):
                    best = (mount, fstype, device)
    except OSError:
        pass
    return f"{best[1]} ({best[2]} on {best[0] or '?'})"


def _os_name() -> str:
    import platform

    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return f"{line.split('=', 1)[1].strip().strip(chr(34))}, {platform.release()}"
    except OSError:
        pass
    return platform.platform()


def machine(bench_dir: str) -> dict[str, str]:
    """What the figures were measured on: CPU, cores, memory, the benches' file system, OS,
    Python, SQLite, and the load when the benches started."""
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "filesystem": _filesystem(bench_dir),
        "os": _os_name(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def machine_lines(info: Mapping[str, str]) -> list[str]:
    return [
        f"machine: {info['cpu']}, {info['cores']} cores, {info['memory']} memory",
        f"  homes on {info['filesystem']}; {info['os']}; Python {info['python']},"
        f" SQLite {info['sqlite']}",
        f"  {info['date']}, load average at start {info['loadavg_at_start']}"
        + (f", at end {info['loadavg_at_end']}" if "loadavg_at_end" in info else ""),
    ]


def combined_json(
    results: Mapping[str, Mapping[str, Any]],
    quick: bool,
    machine_info: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    rows = summary_rows(results)
    return {
        "quick": quick,
        "machine": dict(machine_info or {}),
        "domains": dict(results),
        "summary": [
            {
                "domain": r.domain,
                "op": r.op,
                "stock_us": r.stock_us,
                "rust_us": r.rust_us,
                "ratio": r.ratio,
                "floor_us": r.floor_us,
            }
            for r in rows
        ],
    }


def bench_command(
    domain: str, json_path: str, quick: bool, parent: str | None, extra: str
) -> list[str]:
    args = [sys.executable, "-m", "dagster_rs.bench", domain, "--json", json_path]
    if quick:
        args.append("--quick")
    if parent:
        args += ["--dir", parent]
    return args + extra.split()


def bench_postgres(
    json_path: str | None,
    quick: bool,
    parent: str | None,
    domains: tuple[str, ...],
    extra: tuple[str, ...],
    postgres_url: str | None,
) -> None:
    """`bench --backend postgres`: the PostgreSQL bench in one process (one server for all its
    ops), run by an interpreter with stock dagster-postgres (this one, else `.venv-pg`'s)."""
    from dagster_rs.bench.pg import DOMAINS as PG_DOMAINS
    from dagster_rs.bench.pg_env import NoPgVenv, interpreter

    unknown = sorted(set(domains) - set(PG_DOMAINS))
    if unknown:
        raise click.UsageError(f"--backend postgres benches {list(PG_DOMAINS)}, not {unknown}")
    args = ["pg"]
    for domain in domains:
        args += ["--domain", domain]
    if postgres_url:
        args += ["--postgres-url", postgres_url]
    if json_path:
        args += ["--json", os.path.abspath(json_path)]
    if quick:
        args.append("--quick")
    if parent:
        args += ["--dir", parent]
    for item in extra:
        name, sep, text = item.partition("=")
        if not sep or name != "postgres":
            raise click.UsageError(f"--args {item!r}: with --backend postgres, postgres=OPTIONS")
        args += text.split()
    try:
        python = interpreter()
    except NoPgVenv as exc:
        raise click.ClickException(str(exc)) from None
    proc = subprocess.run([python, "-m", "dagster_rs.bench", *args], check=False)
    if proc.returncode != 0:
        raise click.ClickException(f"the PostgreSQL bench failed (exit {proc.returncode})")


@main.command()
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="write the results")
@click.option("--quick", is_flag=True, help="each bench's quick mode (small sizes)")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False),
    help="create the benches' homes under PATH (e.g. /dev/shm)",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    type=click.Choice(BENCHES + PG_ONLY_BENCHES),
    help="run only these benches (repeatable; default all: the domains', then end to end;"
    " with --backend postgres: runs, config, scheduling)",
)
@click.option(
    "--args",
    "extra",
    multiple=True,
    metavar="BENCH=OPTIONS",
    help="more options for one bench, e.g. --args 'runs=--n 500' (postgres: --args"
    " 'postgres=--scale')",
)
@click.option(
    "--backend",
    type=click.Choice(("sqlite", "postgres")),
    default="sqlite",
    show_default=True,
    help="postgres: runs, config and scheduling against stock dagster-postgres (in .venv-pg)",
)
@click.option(
    "--postgres-url",
    metavar="URL",
    help="with --backend postgres: the server to use (default: a throwaway local cluster)",
)
def bench(
    json_path: str | None,
    quick: bool,
    parent: str | None,
    domains: tuple[str, ...],
    extra: tuple[str, ...],
    backend: str,
    postgres_url: str | None,
) -> None:
    """Run the benchmarks (`python -m dagster_rs.bench BENCH`: each domain's, then the end-to-end
    GraphQL runs query and 100-step multiprocess job) one after another, each in its own process,
    with a progress bar on stderr; then print one table across them and the machine they ran on.
    `--backend postgres`: the PostgreSQL bench (`python -m dagster_rs.bench pg`) instead."""
    if backend == "postgres":
        bench_postgres(json_path, quick, parent, domains, extra, postgres_url)
        return
    if postgres_url or set(domains) & set(PG_ONLY_BENCHES):
        raise click.UsageError("--postgres-url and --domain config need --backend postgres")
    chosen = [d for d in BENCHES if d in domains] if domains else list(BENCHES)
    options: dict[str, str] = {}
    for item in extra:
        domain, sep, text = item.partition("=")
        if not sep or domain not in BENCHES:
            raise click.UsageError(
                f"--args {item!r}: expected BENCH=OPTIONS, BENCH one of {BENCHES}"
            )
        options[domain] = f"{options.get(domain, '')} {text}".strip()

    info = machine(parent or tempfile.gettempdir())
    results: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    done: list[str] = []
    work = tempfile.mkdtemp(prefix="dagster-rs-bench-cli-")
    try:
        with click.progressbar(
            length=len(chosen),
            label="dagster-rs bench",
            file=sys.stderr,
            show_pos=True,
            item_show_func=lambda d: d,
        ) as bar:
            for i, domain in enumerate(chosen, 1):
                bar.update(0, domain)
                out_json = os.path.join(work, f"{domain}.json")
                log_path = os.path.join(work, f"{domain}.log")
                started = time.perf_counter()
                with open(log_path, "w") as log:
                    proc = subprocess.run(
                        bench_command(domain, out_json, quick, parent, options.get(domain, "")),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        check=False,
                    )
                elapsed = time.perf_counter() - started
                bar.update(1, domain)
                if proc.returncode == 0 and os.path.isfile(out_json):
                    with open(out_json) as f:
                        results[domain] = json.load(f)
                    done.append(f"[{i}/{len(chosen)}] {domain} ... done in {elapsed:.1f} s")
                else:
                    failed.append(domain)
                    done.append(
                        f"[{i}/{len(chosen)}] {domain} ... FAILED (exit {proc.returncode})"
                        f" after {elapsed:.1f} s"
                    )
                    with open(log_path) as f:
                        tail = "".join(f.readlines()[-30:])
                    click.echo(f"\n{domain} failed; the end of its output:\n{tail}", err=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["loadavg_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())

    click.echo("\n".join(done))
    if results:
        click.echo("")
        click.echo(summary_table(summary_rows(results)))
        click.echo("")
        click.echo("\n".join(machine_lines(info)))
    if json_path:
        parent_dir = os.path.dirname(os.path.abspath(json_path))
        os.makedirs(parent_dir, exist_ok=True)
        with open(json_path, "w") as f:
            json.dump(combined_json(results, quick, info), f, indent=2)
            f.write("\n")
        click.echo(f"\nwrote {json_path}")
    if failed:
        raise click.ClickException(f"bench failed for: {', '.join(failed)}")


if __name__ == "__main__":
    main()
