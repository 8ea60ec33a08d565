"""`dagster-rs`: look at a DAGSTER_HOME, check it, and run the benchmarks.

    dagster-rs info  [--home PATH]    layout, schema revisions, live domains, rows per table
    dagster-rs check [--home PATH]    readable by stock and dagster-rs alike, revisions at the
                                      head, PRAGMA integrity_check ok on every file
    dagster-rs bench [--quick] [--json PATH] [--dir PATH] [--domain B ...]
                                      every bench (domains, then end to end), one table

`info` and `check` open the SQLite files with Python's `sqlite3` in read-only mode (the library
the extension runs too: ARCHITECTURE.md, "One SQLite per process"); `check` then opens a stock and
a dagster-rs instance on the home, each from a configuration of its own, and reads through both.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from dagster_rs.bench.common import fmt_us

# The database files of a SQLite DAGSTER_HOME, as stock lays them out.
RUNS_DB = "history/runs.db"
INDEX_DB = "history/runs/index.db"
SCHEDULES_DB = "schedules/schedules.db"
MAIN_DBS = (RUNS_DB, INDEX_DB, SCHEDULES_DB)
SHARDS_GLOB = "history/runs/*.db"

BENCH_DOMAINS = ("runs", "events", "assets", "scheduling", "run_launcher")
# The end-to-end benches, after the domains': the runs table's GraphQL query and the 100-step
# multiprocess job (the 20-asset `materialize` is part of the events bench's JSON).
BENCH_E2E = ("graphql", "multiprocess")
BENCHES = BENCH_DOMAINS + BENCH_E2E
E2E = "end-to-end"

RUST_YAML = """\
instance_class:
  module: dagster_rs
  class: DagsterInstance
rust_domains: all
"""


# -- reading the files ------------------------------------------------------------------------


@contextmanager
def read_only(path: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection (`mode=ro`): nothing is created or written, the file is not
    migrated, and a missing file is an error rather than a new empty database."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=60)) as conn:
        yield conn


def tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name"
    ).fetchall()
    return [name for (name,) in rows]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def row_counts(path: str) -> dict[str, int]:
    with read_only(path) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {_quoted(t)}").fetchone()[0]
            for t in tables(conn)
        }


def revision(path: str) -> str | None:
    """The file's alembic revision, None when it has no `alembic_version` row."""
    with read_only(path) as conn:
        if "alembic_version" not in tables(conn):
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])


def integrity(path: str) -> str:
    with read_only(path) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(r[0]) for r in rows)


def shard_files(home: str) -> list[str]:
    """Every run shard (and the runless `.db`), not the index."""
    return sorted(
        p for p in glob.glob(os.path.join(home, SHARDS_GLOB)) if os.path.basename(p) != "index.db"
    )


def database_files(home: str) -> list[str]:
    """Every SQLite file of the home that exists, main files first."""
    main = [os.path.join(home, rel) for rel in MAIN_DBS if os.path.isfile(os.path.join(home, rel))]
    return main + shard_files(home)


@dataclass(frozen=True)
class Revisions:
    """Stock Dagster's alembic revisions: its head and every revision it knows."""

    head: str
    known: frozenset[str]

    def describe(self, rev: str | None) -> tuple[bool, str]:
        """(at the head, what to say about `rev`)."""
        if rev == self.head:
            return True, f"{rev} (head)"
        if rev is None:
            return False, "no alembic revision stamped (not a Dagster file, or never created)"
        if rev in self.known:
            return False, f"{rev}: older than the head {self.head}; run `dagster instance migrate`"
        return False, f"{rev}: unknown to dagster (a newer Dagster?); head is {self.head}"


def stock_revisions() -> Revisions:
    from alembic.script import ScriptDirectory
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.sql import get_alembic_config

    script = ScriptDirectory.from_config(get_alembic_config(sqlite_run_storage.__file__))
    heads = script.get_heads()
    if len(heads) != 1:
        raise click.ClickException(f"stock Dagster has {len(heads)} alembic heads: {heads}")
    return Revisions(heads[0], frozenset(r.revision for r in script.walk_revisions()))


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
    A stock instance class serves none."""
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
    return "dagster_rs.DagsterInstance", sorted(resolve_domains(config.get("rust_domains"))), source


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
    """The home's files, schema revisions, live domains and rows per table (read-only)."""
    from dagster_rs import _native
    from dagster_rs.domains import DomainSelectionError

    home = resolve_home(home)
    config = home_config(home)
    out = click.echo
    out(f"home: {home}")
    out(f"dagster-rs {_native.__version__}, SQLite {sqlite3.sqlite_version}")

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
    for rel in MAIN_DBS:
        path = os.path.join(home, rel)
        if os.path.isfile(path):
            try:
                said = revisions.describe(revision(path))[1]
            except sqlite3.Error as exc:
                said = f"cannot be read: {exc}"
            out(f"  {rel}  {said}")

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


@contextmanager
def _instance(home: str, yaml_text: str) -> Iterator[Any]:
    """An instance on `home`'s files whose configuration is `yaml_text` (in a directory of its
    own: the home's dagster.yaml is neither read nor written)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    config_dir = tempfile.mkdtemp(prefix="dagster-rs-check-")
    try:
        with open(os.path.join(config_dir, "dagster.yaml"), "w") as f:
            f.write(yaml_text)
        instance = DagsterInstance.from_ref(InstanceRef.from_dir(home, config_dir=config_dir))
        try:
            yield instance
        finally:
            instance.dispose()
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)


# What `check` reads through both implementations: a name and a function of the instance giving
# a comparable value.
def _reads() -> list[tuple[str, Callable[[Any], Any]]]:
    def newest_run_events(inst: Any) -> Any:
        ids = inst.get_run_ids(limit=1)
        if not ids:
            return []
        return [r.storage_id for r in inst.get_records_for_run(ids[0], limit=1000).records]

    return [
        ("runs", lambda inst: inst.get_runs_count()),
        ("newest run ids (100)", lambda inst: list(inst.get_run_ids(limit=100))),
        ("asset keys", lambda inst: sorted(k.to_user_string() for k in inst.all_asset_keys())),
        (
            "instigator states",
            lambda inst: sorted(
                (s.instigator_origin_id, s.selector_id, s.status.value)
                for s in inst.all_instigator_state()
            ),
        ),
        ("backfills", lambda inst: [b.backfill_id for b in inst.get_backfills(limit=100)]),
        ("newest run's event storage ids", newest_run_events),
    ]


def _short(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    return str(value)


@main.command()
@home_option
def check(home: str | None) -> None:
    """Check the home: files intact, revisions at Dagster's head, stock and dagster-rs read the
    same. Exit 0 with a summary, 1 with what is wrong."""
    from dagster_rs.domains import ENV_VAR

    home = resolve_home(home)
    out = click.echo
    problems: list[str] = []

    elsewhere = configured_storage(home_config(home))
    if elsewhere:
        raise click.ClickException(
            f"{home}: its storage is configured elsewhere ({elsewhere}); check reads a SQLite home"
        )
    missing = [rel for rel in MAIN_DBS if not os.path.isfile(os.path.join(home, rel))]
    if missing:
        raise click.ClickException(
            f"{home}: {', '.join(missing)} missing; not a DAGSTER_HOME an instance has written to"
        )

    files = database_files(home)
    bad = 0
    for path in files:
        try:
            verdict = integrity(path)
        except sqlite3.Error as exc:
            verdict = f"cannot be read: {exc}"
        if verdict != "ok":
            bad += 1
            problems.append(f"{os.path.relpath(path, home)}: integrity_check: {verdict}")
    out(f"integrity_check: {len(files) - bad}/{len(files)} file(s) ok")

    revisions = stock_revisions()
    for rel in MAIN_DBS:
        try:
            at_head, said = revisions.describe(revision(os.path.join(home, rel)))
        except sqlite3.Error as exc:
            at_head, said = False, f"cannot be read: {exc}"
        out(f"revision {rel}: {said}")
        if not at_head:
            problems.append(f"{rel}: revision {said}")
    shards = shard_files(home)
    off_head = 0
    for path in shards:
        try:
            at_head, said = revisions.describe(revision(path))
        except sqlite3.Error as exc:
            at_head, said = False, f"cannot be read: {exc}"
        if not at_head:
            off_head += 1
            problems.append(f"{os.path.relpath(path, home)}: revision {said}")
    out(f"revision of the run shards: {len(shards) - off_head}/{len(shards)} at the head")

    if problems:
        # Neither implementation opens a file that is damaged or at another revision.
        raise click.ClickException("\n".join(["the home fails its check:", *problems]))

    # Both sides read with every Rust domain (a shell's $DAGSTER_RS_DOMAINS must not narrow it).
    saved = os.environ.pop(ENV_VAR, None)
    try:
        with _instance(home, "") as stock, _instance(home, RUST_YAML) as rust:
            out(f"dagster-rs domains read: {', '.join(sorted(rust.rust_domains))}")
            for name, read in _reads():
                results = []
                for inst in (stock, rust):
                    try:
                        results.append(("ok", read(inst)))
                    except Exception as exc:  # noqa: BLE001 - a failed read is the finding
                        results.append(("error", f"{type(exc).__name__}: {exc}"))
                (s_kind, s_val), (r_kind, r_val) = results
                if s_kind == r_kind == "ok" and s_val == r_val:
                    out(f"  {name}: same ({_short(s_val)})")
                else:
                    problems.append(f"{name}: stock {s_val!r:.300} != dagster-rs {r_val!r:.300}")
                    out(f"  {name}: DIFFERENT")
    except Exception as exc:  # noqa: BLE001 - an instance that cannot open the home is the finding
        problems.append(f"opening the home: {type(exc).__name__}: {exc}")
    finally:
        if saved is not None:
            os.environ[ENV_VAR] = saved

    if problems:
        raise click.ClickException("\n".join(["the home fails its check:", *problems]))
    out(f"ok: {home} is intact, at revision {revisions.head}, and reads the same on both")


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
    type=click.Choice(BENCHES),
    help="run only these benches (repeatable; default all: the domains', then end to end)",
)
@click.option(
    "--args",
    "extra",
    multiple=True,
    metavar="BENCH=OPTIONS",
    help="more options for one bench, e.g. --args 'runs=--n 500'",
)
def bench(
    json_path: str | None,
    quick: bool,
    parent: str | None,
    domains: tuple[str, ...],
    extra: tuple[str, ...],
) -> None:
    """Run the benchmarks (`python -m dagster_rs.bench BENCH`: each domain's, then the end-to-end
    GraphQL runs query and 100-step multiprocess job) one after another, each in its own process,
    with a progress bar on stderr; then print one table across them and the machine they ran on."""
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
