#!/usr/bin/env python3
"""Homes from Dagster's history: build the old-home fixtures and the layout report.

    python3 scripts/make_old_homes.py [build] [--force] [VERSION ...]
    .venv/bin/python scripts/make_old_homes.py report

`build` (the default) makes, for each release in RELEASES (or the ones named), a side venv under
target/old-dagster/<version>/ with only that release's `dagster` from PyPI (reused when it is
already there), runs scripts/old_homes_generator.py with it on a fresh DAGSTER_HOME, and writes
tests/old_homes/fixtures/<version>.tar.gz: history/, schedules/ and manifest.json, byte-for-byte
reproducible from the same files (sorted members, fixed mtimes and owners, gzip without a
timestamp). A fixture that exists is kept unless --force: regenerating a home changes its run ids
and instants, so the committed fixtures only change when asked to.

`report` (run with the worktree's .venv: stock Dagster 1.13) unpacks each fixture, upgrades a copy
with stock's `dagster instance migrate`, and compares every database file's schema (tables, their
columns in order with types and constraints, indexes) with a fresh stock home and with the
unmigrated file; it rewrites the generated part of docs/old-homes-layouts.md.

CI never runs this script: the fixtures are committed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "scripts" / "old_homes_generator.py"
VENVS = ROOT / "target" / "old-dagster"
FIXTURES = ROOT / "tests" / "old_homes" / "fixtures"
NOTES = ROOT / "docs" / "old-homes-layouts.md"
# Every member of a fixture carries this mtime (2024-01-01T00:00:00Z).
FIXED_MTIME = 1704067200


@dataclass(frozen=True)
class Release:
    version: str
    why: str
    # Pins of the release's own era for dependencies it left open: today's versions of them
    # postdate the release and break it (SQLAlchemy 2 before 1.3, pendulum 3, protobuf 5+,
    # pydantic 2), or change what it writes (below).
    era: tuple[str, ...] = ()
    # Requirements of the release replaced at install (name -> requirement), with the reason.
    overrides: dict[str, str] = field(default_factory=dict)
    override_reason: str = ""
    # The fixture's name when a release has more than one (an install variant); else version.
    variant: str = ""

    @property
    def name(self) -> str:
        return f"{self.version}-{self.variant}" if self.variant else self.version


# SQLAlchemy 2 changes what Dagster 1.3.10-1.8.13 write on SQLite: their stamping of a new file
# assumed SQLAlchemy 1.4's autocommit, so with SQLAlchemy 2 every file keeps its tables and an
# EMPTY alembic_version (dagster-io/dagster#25686; 1.9.1's `instance migrate` stamps such files
# 040 and re-applies the migrations after it, PR #25740). Both kinds of home exist: the fixtures
# of those releases use SQLAlchemy 1.4 (stamped at their head); `1.8.13-sqlalchemy2` is the other.
SA14 = ("sqlalchemy>=1.4,<2",)
SA20 = ("sqlalchemy>=2,<2.1",)
OLD_ERA = (*SA14, "alembic<1.9", "pendulum>=2,<3", "protobuf<4", "pydantic<2")
# From 1.7, Dagster's vendored dateutil imports six, which the releases do not declare (other
# packages brought it in then).
SIX = ("six",)
GRPC_OVERRIDE = {"grpcio": "grpcio>=1.49"}
GRPC_REASON = (
    "its grpcio<1.48.1 pin has no wheel for CPython 3.11 (grpcio's first cp311 wheels are 1.49.0), "
    "so plain `pip install` needs a source build of gRPC; installed with grpcio>=1.49 instead "
    "(the pin avoided a grpcio bug in code-server processes, which the generator never starts)"
)

# The migrations each release's head crosses are in the notes; `why` is the short form.
RELEASES: tuple[Release, ...] = (
    Release(
        "0.13.19", "oldest the generator drives; alembic branch era (a revision per file)", OLD_ERA
    ),
    Release("0.14.20", "head 029 (721d858e1dda): before 030/031", OLD_ERA),
    Release("1.0.0", "head 031 (5e139331e376): before 032/033/034", OLD_ERA),
    Release(
        "1.1.10",
        "head 034 (6df03f4b1efb): before 035/036",
        (*OLD_ERA[:1], "alembic<1.10", *OLD_ERA[2:]),
    ),
    Release(
        "1.1.21",
        "head 036 (e62c379ac8f4): after 035/036, before 037",
        (*OLD_ERA[:1], "alembic<1.10", *OLD_ERA[2:]),
        GRPC_OVERRIDE,
        GRPC_REASON,
    ),
    Release(
        "1.2.7",
        "head 037 (d9092588866f): before 038/039",
        (*SA14, "alembic<1.11", "pendulum>=2,<3", "protobuf<4", "pydantic<2"),
    ),
    Release(
        "1.3.7",
        "head 039 (d3a4c9e87af3): before 040",
        (*SA14, "alembic<1.12", "pendulum>=2,<3", "protobuf<5", "pydantic<2"),
    ),
    Release(
        "1.4.10",
        "head 040 (5771160a95ad): before 041",
        (*SA14, "alembic<1.12", "pendulum>=2,<3", "protobuf<5", "pydantic<2"),
    ),
    Release(
        "1.5.14",
        "head 041 (ec80dd91891a): before 042",
        (*SA14, "alembic<1.14", "pendulum>=2,<3", "pydantic<2.6"),
    ),
    Release(
        "1.7.16",
        "head 042 (46b412388816): before 043",
        (*SA14, "alembic<1.14", "pydantic<2.9", *SIX),
    ),
    Release(
        "1.8.13",
        "head 043 (284a732df317): before 044/045/046",
        (*SA14, "alembic<1.14", "pydantic<2.10", *SIX),
    ),
    Release(
        "1.8.13",
        "1.8.13 with SQLAlchemy 2: tables, no alembic revision in any file",
        (*SA20, "alembic<1.14", "pydantic<2.10", *SIX),
        variant="sqlalchemy2",
    ),
    Release(
        "1.9.2",
        "head 046 (16e3655b4d9b): before 047",
        (*SA20, "alembic<1.15", "pydantic<2.11", *SIX),
    ),
    Release(
        "1.9.11",
        "head 047 (6b7fb194ff9c): before 048",
        (*SA20, "alembic<1.15", "pydantic<2.11", *SIX),
    ),
    Release("1.12.7", "head 048 (7e2f3204cf8e): before the two longtext revisions", SIX),
    Release("1.12.22", "head 29b539ebc72a (1.13's): the newest 1.12.x", SIX),
)
BY_NAME = {r.name: r for r in RELEASES}

# Packages whose installed versions each manifest records.
RECORDED = ("dagster", "sqlalchemy", "alembic", "pendulum", "protobuf", "grpcio", "pydantic")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- side venvs -------------------------------------------------------------------------------


def venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def installed_version(py: Path) -> str | None:
    if not py.exists():
        return None
    out = subprocess.run(
        [str(py), "-c", "import dagster; print(dagster.__version__)"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def pip(py: Path, *args: str) -> None:
    cmd = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    log("  $ " + " ".join(cmd[1:]))
    subprocess.run(cmd, check=True)


def release_requirements(py: Path, overrides: dict[str, str]) -> list[str]:
    """The installed release's own requirements (markers evaluated), with `overrides` applied."""
    code = (
        "import importlib.metadata as m, json\n"
        "from pip._vendor.packaging.requirements import Requirement\n"
        "out = []\n"
        "for s in m.requires('dagster') or []:\n"
        "    r = Requirement(s)\n"
        "    if r.marker is None or r.marker.evaluate({'extra': ''}):\n"
        "        r.marker = None\n"
        "        out.append(str(r))\n"
        "print(json.dumps(out))\n"
    )
    reqs = json.loads(
        subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True).stdout
    )
    result = []
    for req in reqs:
        name = req.split(";")[0].split("[")[0]
        for op in "<>=!~ (":
            name = name.split(op)[0]
        result.append(overrides.get(name.strip().lower(), req))
    return result


def ensure_venv(rel: Release) -> tuple[Path, dict]:
    """The release's side venv (made when missing or installed otherwise) and what the manifest
    says of its install."""
    venv = VENVS / rel.name
    py = venv_python(rel.name)
    install = {"era_constraints": list(rel.era), "overrides": dict(rel.overrides)}
    if rel.override_reason:
        install["override_reason"] = rel.override_reason
    spec = venv / "old-home-install.json"
    wanted = json.dumps({"version": rel.version, **install}, sort_keys=True)
    if installed_version(py) == rel.version and spec.exists() and spec.read_text() == wanted:
        return py, install
    log(f"{rel.name}: creating {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if rel.overrides:
        pip(py, "--no-deps", f"dagster=={rel.version}")
        pip(py, *release_requirements(py, rel.overrides), *rel.era)
    else:
        pip(py, f"dagster=={rel.version}", *rel.era)
    got = installed_version(py)
    if got != rel.version:
        err = subprocess.run([str(py), "-c", "import dagster"], capture_output=True, text=True)
        raise RuntimeError(f"{rel.name}: the venv imports dagster {got}: {err.stderr[-2000:]}")
    spec.write_text(wanted)
    return py, install


def package_versions(py: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run(
        [str(py), "-c", code, *RECORDED], capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout)


# -- fixtures ---------------------------------------------------------------------------------


def name_key(name: str) -> tuple:
    """Fixtures in release order (a variant after its release's plain fixture)."""
    version, _, variant = name.partition("-")
    return (tuple(int(x) for x in version.split(".")), variant)


def fixture_path(name: str) -> Path:
    return FIXTURES / f"{name}.tar.gz"


def write_fixture(home: Path, dest: Path) -> None:
    """history/, schedules/ and manifest.json of home as a reproducible .tar.gz."""
    members: list[Path] = [home / "manifest.json"]
    for sub in ("history", "schedules"):
        top = home / sub
        if top.exists():
            members.append(top)
            members.extend(sorted(top.rglob("*")))
    for p in members:
        if p.name.endswith(("-wal", "-shm", "-journal")):
            raise RuntimeError(f"{p} left next to a database")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in members:
            info = tar.gettarinfo(str(p), arcname=str(p.relative_to(home)))
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if p.is_dir() else 0o644
            info.pax_headers = {}
            if p.is_dir():
                tar.addfile(info)
            else:
                with open(p, "rb") as f:
                    tar.addfile(info, f)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    with (
        open(tmp, "wb") as f,
        gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(raw.getvalue())
    tmp.replace(dest)


def build(rel: Release, force: bool) -> None:
    dest = fixture_path(rel.name)
    if dest.exists() and not force:
        log(f"{rel.name}: {dest.relative_to(ROOT)} exists (--force to rebuild)")
        return
    py, install = ensure_venv(rel)
    with tempfile.TemporaryDirectory(prefix=f"old-home-{rel.name}-") as tmp:
        home = Path(tmp) / "home"
        log(f"{rel.name}: generating a home")
        logfile = VENVS / rel.name / "generator.log"
        with open(logfile, "w") as out:
            res = subprocess.run(
                [str(py), str(GENERATOR), str(home)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp,
                env={
                    k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER", "PYTHON"))
                },
            )
        if res.returncode != 0:
            raise RuntimeError(f"{rel.name}: the generator failed, see {logfile}")
        manifest = json.loads((home / "manifest.json").read_text())
        manifest["release"] = {"name": rel.name, "version": rel.version, "why": rel.why}
        manifest["install"] = install
        manifest["packages"] = package_versions(py)
        (home / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        write_fixture(home, dest)
    errors = {k: v for k, v in manifest["features"].items() if v.startswith("error")}
    log(f"{rel.name}: wrote {dest.relative_to(ROOT)} ({dest.stat().st_size} bytes)")
    for k, v in errors.items():
        log(f"  {k}: {v}")


# -- layout report ----------------------------------------------------------------------------


def unpack(fixture: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    with tarfile.open(fixture) as tar:
        tar.extractall(dest, filter="data")
    return dest


def schema(path: Path) -> dict:
    """A file's tables (columns in order: name, type, notnull, default, pk), their constraints as
    written in their CREATE statement, and indexes (name -> table, columns, unique, origin)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {}
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ):
            cols = [
                (c[1], c[2], bool(c[3]), c[4], c[5])
                for c in conn.execute(f"PRAGMA table_info('{name}')")
            ]
            tables[name] = {"columns": cols, "sql": " ".join((sql or "").split())}
        indexes = {}
        for tname in tables:
            for row in conn.execute(f"PRAGMA index_list('{tname}')"):
                iname, unique, origin = row[1], bool(row[2]), row[3]
                cols = [c[2] for c in conn.execute(f"PRAGMA index_info('{iname}')")]
                indexes[iname] = {
                    "table": tname,
                    "columns": cols,
                    "unique": unique,
                    "origin": origin,
                }
        try:
            revs = sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))
        except sqlite3.OperationalError:
            revs = []
        try:
            marks = sorted(
                r[0]
                for r in conn.execute(
                    "SELECT name FROM secondary_indexes WHERE migration_completed IS NOT NULL"
                )
            )
        except sqlite3.OperationalError:
            marks = []
        return {"tables": tables, "indexes": indexes, "alembic": revs, "marks": marks}
    finally:
        conn.close()


def kind_of(rel: str) -> str:
    if rel == "history/runs.db":
        return "runs.db"
    if rel == "history/runs/index.db":
        return "index.db"
    if rel == "schedules/schedules.db":
        return "schedules.db"
    if rel.startswith("history/runs/"):
        return "run shard"
    return rel


def home_schemas(home: Path) -> dict[str, list[tuple[str, dict]]]:
    out: dict[str, list[tuple[str, dict]]] = {}
    for sub in ("history", "schedules"):
        for p in sorted((home / sub).rglob("*.db")):
            rel = str(p.relative_to(home))
            out.setdefault(kind_of(rel), []).append((rel, schema(p)))
    return out


def run_cli(home: Path, *args: str) -> None:
    env = dict(os.environ, DAGSTER_HOME=str(home))
    dagster = Path(sys.executable).parent / "dagster"
    res = subprocess.run([str(dagster), *args], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"dagster {' '.join(args)} on {home}: {res.stdout}\n{res.stderr}")


def fresh_home(dest: Path) -> Path:
    """A home made by stock Dagster (this interpreter's): every file kind created."""
    code = f"""
import os
os.environ["DAGSTER_HOME"] = {str(dest)!r}
from dagster import DagsterInstance, job, op
@op
def one():
    return 1
@job
def j():
    one()
inst = DagsterInstance.get()
j.execute_in_process(instance=inst)
inst.get_runs()
inst.all_instigator_state()
inst.event_log_storage.get_asset_records()
inst.dispose()
"""
    dest.mkdir(parents=True)
    (dest / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return dest


def _clauses(sql: str) -> list[str]:
    """The top-level clauses of a CREATE TABLE (columns and constraints), whitespace-normalized."""
    body = sql[sql.index("(") + 1 : sql.rindex(")")]
    out, depth, cur = [], 0, ""
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(" ".join(cur.split()))
            cur = ""
        else:
            cur += ch
    out.append(" ".join(cur.split()))
    return [c for c in out if c]


def _no_parens(clause: str) -> str:
    return clause.replace("DEFAULT (CURRENT_TIMESTAMP)", "DEFAULT CURRENT_TIMESTAMP")


def describe_table_diff(name: str, a: dict, b: dict) -> list[str]:
    """How table `name` of file a differs from the fresh file's b: columns (order, presence,
    type, NOT NULL, default, primary key) and the CREATE statement's other clauses."""
    out = []
    ca, cb = a["columns"], b["columns"]
    na, nb = [c[0] for c in ca], [c[0] for c in cb]
    common_a = [c for c in na if c in nb]
    common_b = [c for c in nb if c in na]
    if common_a != common_b:
        out.append(f"`{name}` columns in the order {', '.join(na)} (fresh: {', '.join(nb)})")
    missing = [c for c in nb if c not in na]
    extra = [c for c in na if c not in nb]
    if missing:
        out.append(f"`{name}` lacks {', '.join(missing)}")
    if extra:
        out.append(f"`{name}` has extra {', '.join(extra)}")
    da, db_ = {c[0]: c[1:] for c in ca}, {c[0]: c[1:] for c in cb}
    for col in common_a:
        if da[col] != db_[col]:
            (ta, nn_a, df_a, pk_a), (tb, nn_b, df_b, pk_b) = da[col], db_[col]
            bits = []
            if ta != tb:
                bits.append(f"type {ta} (fresh {tb})")
            if nn_a != nn_b:
                bits.append("NOT NULL" if nn_a else "nullable")
                bits[-1] += f" (fresh {'NOT NULL' if nn_b else 'nullable'})"
            if df_a != df_b and _no_parens(f"DEFAULT {df_a}") != _no_parens(f"DEFAULT {df_b}"):
                bits.append(f"default {df_a} (fresh {df_b})")
            if pk_a != pk_b:
                bits.append(f"primary key {bool(pk_a)} (fresh {bool(pk_b)})")
            if bits:
                out.append(f"`{name}.{col}`: " + ", ".join(bits))
    if a["sql"] != b["sql"]:
        cla, clb = _clauses(a["sql"]), _clauses(b["sql"])
        colnames = set(na) | set(nb)

        def is_column(c: str) -> bool:
            return c.split(" ")[0].strip('"') in colnames

        only_a = [c for c in cla if c not in clb and not is_column(c)]
        only_b = [c for c in clb if c not in cla and not is_column(c)]
        if only_a:
            out.append(f"`{name}` has constraint {'; '.join(only_a)}")
        if only_b:
            out.append(f"`{name}` lacks constraint {'; '.join(only_b)}")
        paren_a = any("DEFAULT (CURRENT_TIMESTAMP)" in c for c in cla)
        paren_b = any("DEFAULT (CURRENT_TIMESTAMP)" in c for c in clb)
        if paren_a != paren_b:
            written = "DEFAULT (CURRENT_TIMESTAMP)" if paren_a else "DEFAULT CURRENT_TIMESTAMP"
            out.append(f"`{name}` DDL text writes `{written}`")
        cols_b = {c.split(" ")[0].strip('"'): c for c in clb if is_column(c)}
        for c in cla:
            col = c.split(" ")[0].strip('"')
            if not is_column(c) or col not in cols_b or _no_parens(c) == _no_parens(cols_b[col]):
                continue
            if not any(line.startswith(f"`{name}.{col}`") for line in out):
                out.append(f"`{name}` column written `{c}` (fresh `{cols_b[col]}`)")
    return out


def fmt_index(name: str, ix: dict) -> str:
    u = "UNIQUE " if ix["unique"] else ""
    auto = " (autoindex)" if ix["origin"] != "c" else ""
    return f"{u}`{name}` ({', '.join(ix['columns'])}){auto}"


def diff_files(a: dict, b: dict) -> list[str]:
    """Differences of file schema a against b (b is the fresh reference)."""
    out = []
    ta, tb = a["tables"], b["tables"]
    missing_t = sorted(set(tb) - set(ta))
    extra_t = sorted(set(ta) - set(tb))
    if missing_t:
        out.append(f"no table {', '.join(missing_t)}")
    if extra_t:
        out.append(f"extra tables {', '.join(extra_t)} (empty, with their indexes)")
    for t in sorted(set(ta) & set(tb)):
        out.extend(describe_table_diff(t, ta[t], tb[t]))
    ia, ib = a["indexes"], b["indexes"]
    skip = set(missing_t) | set(extra_t)
    by_table: dict[str, list[str]] = {}
    for i in sorted(set(ib) - set(ia)):
        if ib[i]["table"] not in skip:
            by_table.setdefault(ib[i]["table"], []).append("no index " + fmt_index(i, ib[i]))
    for i in sorted(set(ia) - set(ib)):
        if ia[i]["table"] not in skip:
            by_table.setdefault(ia[i]["table"], []).append("extra index " + fmt_index(i, ia[i]))
    for i in sorted(set(ia) & set(ib)):
        x, y = ia[i], ib[i]
        if (x["table"], x["columns"], x["unique"]) != (y["table"], y["columns"], y["unique"]):
            by_table.setdefault(x["table"], []).append(
                f"index {fmt_index(i, x)} (fresh {fmt_index(i, y)})"
            )
    for table, lines in sorted(by_table.items()):
        out.append(f"`{table}`: " + "; ".join(lines))
    if a["alembic"] != b["alembic"]:
        out.append(f"alembic revision {', '.join(a['alembic']) or '(none: empty alembic_version)'}")
    return out


KINDS = ("runs.db", "index.db", "run shard", "schedules.db")


def file_kind_diffs(home: dict, fresh: dict) -> dict[str, list[str]]:
    """Per file kind: the differences against the fresh home's file of that kind (every shard is
    compared; a difference that only some shards have says how many)."""
    out: dict[str, list[str]] = {}
    for kind in KINDS:
        ref = fresh[kind][0][1]
        files = home.get(kind, [])
        if not files:
            out[kind] = ["(no such file)"]
            continue
        counts: dict[str, int] = {}
        for _, sch in files:
            for line in diff_files(sch, ref):
                counts[line] = counts.get(line, 0) + 1
        out[kind] = [
            line if n == len(files) else f"{line} ({n} of {len(files)} shards)"
            for line, n in counts.items()
        ]
    return out


def aggregate(per_release: dict[str, dict[str, list[str]]]) -> list[str]:
    """One line per (file kind, difference), with the releases that have it."""
    seen: dict[tuple[str, str], list[str]] = {}
    for name, kinds in per_release.items():
        for kind, lines in kinds.items():
            for line in lines:
                if line.startswith("alembic revision ") and "(none" not in line:
                    line = "alembic revision older than head (the table above)"
                seen.setdefault((kind, line), []).append(name)
    out = []
    for kind in KINDS:
        rows = [(line, names) for (k, line), names in seen.items() if k == kind]
        if not rows:
            out.append(f"- **{kind}**: same as fresh in every release")
            continue
        out.append(f"- **{kind}**:")
        for line, names in sorted(rows, key=lambda r: (-len(r[1]), r[0])):
            who = "all" if len(names) == len(per_release) else ", ".join(names)
            out.append(f"  - {line} — {who}")
    return out


def index_layouts(homes: dict[str, dict]) -> list[str]:
    """For each (file kind, table) whose indexes differ between homes: each index set, with the
    homes that have it."""
    layouts: dict[str, dict[str, list[str]]] = {}
    for name, kinds in homes.items():
        for kind, files in kinds.items():
            sets: dict[str, dict[str, str]] = {}
            for _, sch in files:
                for table in sch["tables"]:
                    ixs = sorted(
                        fmt_index(n, ix) for n, ix in sch["indexes"].items() if ix["table"] == table
                    )
                    sets.setdefault(table, {})["; ".join(ixs) or "(no index)"] = name
            for table, variants in sets.items():
                for ixs in variants:
                    layouts.setdefault(f"{kind} `{table}`", {}).setdefault(ixs, []).append(name)
    out = []
    for key, sets in sorted(layouts.items()):
        if len(sets) < 2:
            continue
        out.append(f"- {key}:")
        for ixs, names in sets.items():
            out.append(f"  - {ixs} — {', '.join(dict.fromkeys(names))}")
    return out


def report() -> None:
    import dagster

    fixtures = sorted(FIXTURES.glob("*.tar.gz"), key=lambda p: name_key(p.name[: -len(".tar.gz")]))
    migrated_diffs: dict[str, dict[str, list[str]]] = {}
    original_diffs: dict[str, dict[str, list[str]]] = {}
    migrated: dict[str, dict] = {}
    originals: dict[str, dict] = {}
    written: list[str] = []
    with tempfile.TemporaryDirectory(prefix="old-homes-report-") as tmp:
        root = Path(tmp)
        fresh = home_schemas(fresh_home(root / "fresh"))
        for fx in fixtures:
            name = fx.name[: -len(".tar.gz")]
            log(f"report: {name}")
            orig = unpack(fx, root / name / "orig")
            manifest = json.loads((orig / "manifest.json").read_text())
            copy = root / name / "migrated"
            shutil.copytree(orig, copy)
            (copy / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
            run_cli(copy, "instance", "migrate")
            before, after = home_schemas(orig), home_schemas(copy)
            migrated[name] = after
            originals[name] = before
            migrated_diffs[name] = file_kind_diffs(after, fresh)
            original_diffs[name] = file_kind_diffs(before, fresh)
            revs = {
                kind: sorted({r for _, s in files for r in s["alembic"]} or {"(none)"})
                for kind, files in sorted(before.items(), key=lambda kv: KINDS.index(kv[0]))
            }
            after_revs = sorted(
                {r for files in after.values() for _, s in files for r in s["alembic"]}
            )
            written.append(
                f"| {name} | {manifest['release']['why']} | "
                + "; ".join(f"{k}: {', '.join(v)}" for k, v in revs.items())
                + f" | {len(before.get('run shard', []))} | {', '.join(after_revs)} |"
            )
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    generated = "\n".join(
        [
            "<!-- layout-report:begin (generated by `scripts/make_old_homes.py report`) -->",
            f"_Layout report last updated {now}, stock Dagster {dagster.__version__}, "
            f"{len(fixtures)} fixtures._",
            "",
            "#### Revisions as written, and after stock's migrate",
            "",
            "| fixture | release | alembic revision per file kind (as written) | run shards | after `instance migrate` |",
            "|---|---|---|---:|---|",
            *written,
            "",
            "#### Index layouts homes can have",
            "",
            "Tables whose set of indexes differs between homes; each set with the homes that have it.",
            "Migrated homes (stock's `dagster instance migrate`) and a fresh 1.13 home:",
            "",
            *index_layouts({"fresh 1.13": fresh, **migrated}),
            "",
            "Unmigrated homes (as each release left them) and a fresh 1.13 home:",
            "",
            *index_layouts({"fresh 1.13": fresh, **originals}),
            "",
            "#### A migrated home against a fresh 1.13 home",
            "",
            "Every difference, per file kind, with the fixtures whose migrated files have it "
            "(`all`: every fixture).",
            "",
            *aggregate(migrated_diffs),
            "",
            "#### An unmigrated home (as the release left it) against a fresh 1.13 home",
            "",
            *aggregate(original_diffs),
            "<!-- layout-report:end -->",
            "",
        ]
    )
    text = NOTES.read_text() if NOTES.exists() else "# Homes from Dagster's history\n\n"
    begin, end = "<!-- layout-report:begin", "<!-- layout-report:end -->\n"
    if begin in text:
        head = text[: text.index(begin)]
        tail = text[text.index(end) + len(end) :]
        text = head + generated + tail
    else:
        text = text.rstrip("\n") + "\n\n" + generated
    NOTES.write_text(text)
    log(f"report: wrote {NOTES.relative_to(ROOT)}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("command", nargs="?", default="build", choices=("build", "report", "list"))
    ap.add_argument("versions", nargs="*", help="fixtures to build (default: all of RELEASES)")
    ap.add_argument("--force", action="store_true", help="rebuild fixtures that exist")
    args = ap.parse_intermixed_args()
    if args.command == "report":
        report()
        return
    if args.command == "list":
        for rel in RELEASES:
            print(f"{rel.name:22} {rel.why}")
        return
    unknown = [v for v in args.versions if v not in BY_NAME]
    if unknown:
        ap.error(f"not in RELEASES: {', '.join(unknown)}")
    for rel in [BY_NAME[v] for v in args.versions] or list(RELEASES):
        build(rel, args.force)


if __name__ == "__main__":
    main()
