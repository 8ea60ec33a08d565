"""Homes from Dagster's history: the committed fixtures, their upgraded variants, and pairs on them.

tests/old_homes/fixtures/<version>.tar.gz are homes that Dagster <version> made
(scripts/make_old_homes.py; each holds manifest.json: what the home has, the release, every
file's alembic revision). Each fixture is served in three variants:

- `migrated`: upgraded by stock's `dagster instance migrate`, then `dagster instance reindex`;
- `migrated-no-reindex`: `dagster instance migrate` only (reindex's data migrations not run);
- `unmigrated`: the files as the old release left them.

The CLI runs once per session for all fixtures (`old_homes`): two subprocesses at once, one
upgrading with stock's instance class, one with dagster-rs's (for test_old_home_migrate.py), each
running Dagster's own click group for every home in turn (tests/old_homes/cli_batch.py). Tests
open instances on copies; a pair's two homes are copies of the same files, so storage ids, run ids
and timestamps read alike on both sides.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from tests import homes
from tests.conftest import InstancePair, call, load_instance, same_class, write_home

FIXTURES = Path(__file__).parent / "fixtures"
CLI_BATCH = Path(__file__).parent / "cli_batch.py"


def _version_key(name: str) -> tuple:
    # "1.8.13-sqlalchemy2" sorts after "1.8.13"
    version, _, variant = name.partition("-")
    return (tuple(int(x) for x in version.split(".")), variant)


ALL_VERSIONS = sorted(
    (p.name[: -len(".tar.gz")] for p in FIXTURES.glob("*.tar.gz")), key=_version_key
)
# DAGSTER_RS_OLD_HOMES=1.9.2,1.12.22 narrows a local run to those fixtures (the CI runs them all).
_ONLY = [v for v in os.environ.get("DAGSTER_RS_OLD_HOMES", "").split(",") if v]
VERSIONS = [v for v in ALL_VERSIONS if not _ONLY or v in _ONLY]
VARIANTS = ("migrated", "migrated-no-reindex", "unmigrated")
CASES = [(v, variant) for v in VERSIONS for variant in VARIANTS]


def case_id(case: tuple[str, str]) -> str:
    return f"{case[0]}-{case[1]}"


@dataclass
class OldHome:
    """One fixture: its manifest and the directory of each variant (and dagster-rs's upgrade)."""

    version: str
    manifest: dict
    variants: dict[str, Path] = field(default_factory=dict)
    # CLI results by name: "stock-migrate", "stock-reindex", "rust-migrate".
    cli: dict[str, dict] = field(default_factory=dict)
    # The files whose contents `dagster instance reindex` changed after `migrate` (None: not
    # compared, the CLI failed).
    reindex_changed: list[str] | None = None

    @property
    def contents(self) -> dict:
        return self.manifest["contents"]

    def run_ids(self, group: str) -> list[str]:
        return list(self.contents.get("run_ids", {}).get(group, []))

    def feature(self, prefix: str) -> str:
        """The manifest's status of the feature whose name starts with `prefix`."""
        for name, status in self.manifest["features"].items():
            if name.startswith(prefix):
                return status
        raise KeyError(prefix)

    def has(self, prefix: str) -> bool:
        return self.feature(prefix).startswith("ok")

    def had_table(self, table: str, file: str = "history/runs/index.db") -> bool:
        """Whether the release created `table` in `file` (the manifest's list, as written)."""
        return table in self.manifest["files"].get(file, {}).get("tables", [])


def _unpack(fixture: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    with tarfile.open(fixture) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in homes.OVERRIDES}
    env.pop("DAGSTER_HOME", None)
    return env


def _start_batch(jobs: list[dict], workdir: Path, name: str) -> tuple[subprocess.Popen, Path]:
    jobs_file = workdir / f"{name}-jobs.json"
    results_file = workdir / f"{name}-results.json"
    jobs_file.write_text(json.dumps(jobs))
    proc = subprocess.Popen(
        [sys.executable, str(CLI_BATCH), str(jobs_file), str(results_file)],
        env=_clean_env(),
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, results_file


def _finish_batch(proc: subprocess.Popen, results_file: Path) -> list[dict]:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"the CLI batch crashed:\n{out}"
    return json.loads(results_file.read_text())


def _work_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's homes go. The suite makes and deletes tens of thousands of SQLite
    files (with their -wal/-shm); on this machine's disk each unlink waits on the journal
    (~1.6 ms while other engineers fsync), so tmpfs (/dev/shm) is used when it has room.
    DAGSTER_RS_OLD_HOMES_TMP chooses another directory."""
    chosen = os.environ.get("DAGSTER_RS_OLD_HOMES_TMP")
    if chosen:
        return Path(chosen)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 << 30:
        return shm
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's directory for old homes and their copies, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="dagster-rs-old-homes-", dir=_work_base(tmp_path_factory)))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def fresh_dir(work_dir: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work_dir))


@pytest.fixture(scope="session")
def old_homes(work_dir: Path) -> dict[str, OldHome]:
    """Every fixture unpacked, upgraded by stock's CLI (migrate; migrate then reindex on a copy)
    and by dagster-rs's (migrate), once per session."""
    root = fresh_dir(work_dir, "old_homes")
    out: dict[str, OldHome] = {}
    # Three batch processes at once: two with half the fixtures' stock upgrades each, one with
    # the dagster-rs upgrades (a process never runs both implementations).
    batches: list[list[dict]] = [[], [], []]
    for n, version in enumerate(VERSIONS):
        base = root / version
        orig = _unpack(FIXTURES / f"{version}.tar.gz", base / "unmigrated")
        manifest = json.loads((orig / "manifest.json").read_text())
        home = OldHome(version, manifest, {"unmigrated": orig})
        for name, kind in (("migrated-no-reindex", "stock"), ("rust-migrated", "rust")):
            shutil.copytree(orig, base / name)
            write_home(base / name, kind)
            home.variants[name] = base / name
        home.variants["migrated"] = base / "migrated"
        stock_jobs = [
            {"home": str(base / "migrated-no-reindex"), "args": ["instance", "migrate"]},
            {
                "copy_from": str(base / "migrated-no-reindex"),
                "home": str(base / "migrated"),
                "args": ["instance", "reindex"],
            },
        ]
        rust_jobs = [{"home": str(base / "rust-migrated"), "args": ["instance", "migrate"]}]
        batches[n % 2].extend(stock_jobs)
        batches[2].extend(rust_jobs)
        out[version] = home
    started = [_start_batch(jobs, root, f"batch{i}") for i, jobs in enumerate(batches)]
    names = {"migrated-no-reindex": "stock-migrate", "migrated": "stock-reindex"}
    for proc, results_file in started:
        for res in _finish_batch(proc, results_file):
            home_dir = Path(res["home"])
            name = names.get(home_dir.name, "rust-migrate")
            out[home_dir.parent.name].cli[name] = res
    for home in out.values():
        if home.cli.get("stock-reindex", {}).get("code") == 0:
            a, b = home.variants["migrated-no-reindex"], home.variants["migrated"]
            home.reindex_changed = [f for f in db_files(a) if _dump(a / f) != _dump(b / f)]
    return out


def db_files(home: Path) -> list[str]:
    return sorted(
        str(p.relative_to(home))
        for sub in ("history", "schedules")
        for p in (home / sub).rglob("*.db")
    )


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def skip_if_same_as_migrated(home: OldHome, variant: str) -> None:
    """`migrated-no-reindex` is its own case only where reindex changed a file (a data
    migration it runs had not run); elsewhere its files are the `migrated` case's, already
    tested, and the case is skipped as a duplicate (saving a third of the suite's time)."""
    if variant == "migrated-no-reindex" and home.reindex_changed == []:
        pytest.skip(
            f"{home.version}: `dagster instance reindex` changes nothing after `migrate`: "
            "the same files as the migrated case"
        )


def variant_home(home: OldHome, variant: str) -> Path:
    """The variant's directory; fails (naming the CLI's error) when stock could not make it."""
    if variant in ("migrated", "migrated-no-reindex"):
        res = home.cli["stock-migrate"]
        assert res["code"] == 0, (
            f"stock's `dagster instance migrate` failed:\n{res['traceback']}{res['output'][-3000:]}"
        )
    if variant == "migrated":
        res = home.cli.get("stock-reindex", {"code": 1, "traceback": "not run", "output": ""})
        assert res["code"] == 0, (
            f"stock's `dagster instance reindex` failed:\n{res['traceback']}{res['output'][-3000:]}"
        )
    return home.variants[variant]


def copy_home(src: Path, dest: Path, kind: str) -> Path:
    """A copy of src's database files (no dagster.yaml, logs or artifacts) as a `kind` home."""
    dest.mkdir(parents=True)
    for sub in ("history", "schedules"):
        if (src / sub).exists():
            shutil.copytree(src / sub, dest / sub)
    return write_home(dest, kind)


# -- comparing ---------------------------------------------------------------------------------


@dataclass
class OldPair(InstancePair):
    """A stock/dagster-rs pair on two copies of one variant of one old home."""

    home: OldHome = None  # type: ignore[assignment]
    variant: str = ""
    homes: dict[str, Path] = field(default_factory=dict)
    # What the two sides are called in failure messages.
    names: tuple[str, str] = ("stock", "dagster-rs")


def scrub(message: str, paths: list[Path] | list[str]) -> str:
    """An exception's message as compared: the homes' paths and object addresses replaced, and
    for SQLAlchemy's database errors only the driver's error (`(sqlite3.OperationalError) no
    such table: kvs`): the `[SQL: ...]` that follows is the text of stock's statement, which a
    native implementation cannot reproduce and which says nothing more about the failure."""
    message = message.split("\n[SQL: ", 1)[0]
    for p in paths:
        message = message.replace(str(p), "<home>")
    return re.sub(r"0x[0-9a-f]{6,}", "0x…", message)


def same(
    pair: OldPair,
    fn: Callable[[DagsterInstance], Any],
    normalize: Callable[[Any], Any] = lambda v: v,
) -> Any:
    """Run fn on both instances; assert the same value, or the same exception class and message
    (home paths scrubbed). Returns stock's value (None when both raised)."""
    a, b = call(fn, pair.stock), call(fn, pair.rust)
    paths = sorted(pair.homes.values(), key=lambda p: -len(str(p)))
    ea = (a.error, scrub(a.message, paths))
    eb = (b.error, scrub(b.message, paths))
    if not same_class(a.error, b.error) or ea[1] != eb[1]:
        raise AssertionError(f"{_said(pair.names[1], eb)} (where {_said(pair.names[0], ea)})")
    if a.error is None:
        va, vb = normalize(a.value), normalize(b.value)
        assert va == vb, f"values differ: {pair.names[0]}: {va!r}\n{pair.names[1]}: {vb!r}"
        return a.value
    return None


def _said(who: str, outcome: tuple) -> str:
    error, message = outcome
    if error is None:
        return f"{who} returned"
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"{who} raised {error.__module__}.{error.__qualname__}: {first[:300]}"


def open_pair(home: OldHome, variant: str, dest: Path) -> OldPair:
    src = variant_home(home, variant)
    paths = {kind: copy_home(src, dest / f"{kind}_home", kind) for kind in ("stock", "rust")}
    stock = load_instance(paths["stock"])
    try:
        rust = load_instance(paths["rust"])
    except BaseException:
        stock.dispose()
        raise
    return OldPair(stock, rust, home=home, variant=variant, homes=paths)


@pytest.fixture(scope="module", params=CASES, ids=case_id)
def old_pair(
    request: pytest.FixtureRequest,
    old_homes: dict[str, OldHome],
    work_dir: Path,
) -> Iterator[OldPair]:
    """A stock/dagster-rs pair on copies of one (fixture, variant): opened once for the module's
    tests of that case (pytest groups the tests by it)."""
    version, variant = request.param
    skip_if_same_as_migrated(old_homes[version], variant)
    dest = fresh_dir(work_dir, case_id(request.param))
    with pytest.MonkeyPatch.context() as mp:
        homes.clean_env(mp)
        pair = open_pair(old_homes[version], variant, dest)
        with pair:
            yield pair
    # The copies are done with (thousands of files per session otherwise).
    shutil.rmtree(dest, ignore_errors=True)
