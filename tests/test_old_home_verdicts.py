"""`inspect_database`'s verdict on every file of homes old Dagster releases made, as they were
written and once stock's `dagster instance migrate` has upgraded them.

For each release's home (`tests/old_homes/fixtures/<version>.tar.gz`, made by the old-homes
workstream; `DAGSTER_RS_OLD_HOMES` may name another directory of them):
- the verdict is read without changing a byte;
- `native` is what the store does: a file judged native opens natively, any other is refused
  with the file untouched;
- a dagster-rs instance whose domains are live exactly where every file they use is native
  (the facade's decision, made here by hand) answers the webserver's reads as stock does on a
  copy of the same home;
- migrated, every file is at the head and native.

Tag-filtered reads of a runs.db with migration 047's layout (no `idx_run_tags`) are left out
where the runs domain is live: the store-layouts workstream makes the run queries follow each
file's indexes.

Time: by default every fixture's verdicts are checked as written and once migrated (each home
migrated once per session), about 30 s. The comparison of a dagster-rs instance's reads with
stock's (about 10 s a home; tests/old_homes runs the full differential suite on every fixture
and variant) runs on the oldest fixture only, and on all of them with `DAGSTER_RS_SOAK=1`.
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import sqlite3
import tarfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from dagster._cli.instance import migrate_command

from dagster_rs import _native
from tests.alembic_scripts import alembic_scripts_read_once, scripts_read_once  # noqa: F401
from tests.conftest import load_instance, write_home
from tests.fast_tmp import fast_session_dir, fast_tmp_path  # noqa: F401
from tests.native_open import opens_natively
from tests.test_read_only_home import observe_all

# The fixtures imported above: stock opens every run shard of these homes (on both sides where
# the events domain is not native) and reads alembic's scripts once instead of per shard;
# `tmp_path` and `session_dir` on tmpfs.

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("DAGSTER_RS_OLD_HOMES") or ROOT / "tests" / "old_homes" / "fixtures")


def _version_key(path: Path) -> tuple[list[int], str]:
    name = path.name.removesuffix(".tar.gz")
    release, _, variant = name.partition("-")
    return [int(p) for p in release.split(".") if p.isdigit()], variant


FIXTURE_FILES = sorted(FIXTURES.glob("*.tar.gz"), key=_version_key) if FIXTURES.is_dir() else []
pytestmark = pytest.mark.skipif(not FIXTURE_FILES, reason=f"no old-home fixtures in {FIXTURES}")

SOAK = os.environ.get("DAGSTER_RS_SOAK", "") not in ("", "0")


def compared(fixture: Path) -> bool:
    """Whether the homes of `fixture` get the read comparison with stock (see the docstring)."""
    return SOAK or fixture == FIXTURE_FILES[0]


# Reads that filter runs by tag (a run group is found by its root-run tag).
TAG_READS = ("tag_keys", "tags", "ids_by_tag", "groups")


@pytest.fixture(scope="session")
def extracted(session_dir: Path) -> Callable[[Path], Path]:
    """Each fixture's archive extracted once for the session, never written to: tests copy it."""
    done: dict[Path, Path] = {}

    def get(fixture: Path) -> Path:
        if fixture not in done:
            dest = session_dir / "extracted" / fixture.name.removesuffix(".tar.gz")
            dest.mkdir(parents=True)
            with tarfile.open(fixture) as tar:
                tar.extractall(dest, filter="data")
            done[fixture] = dest
        return done[fixture]

    return get


@pytest.fixture(scope="session")
def migrated(session_dir: Path, extracted: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """Each fixture's home upgraded by stock's `dagster instance migrate` once for the session,
    never written to afterwards: tests copy it."""
    done: dict[Path, Path] = {}

    def get(fixture: Path) -> Path:
        if fixture not in done:
            name = fixture.name.removesuffix(".tar.gz")
            home = session_dir / "migrated" / name
            unpack(extracted(fixture), home, "stock")
            with scripts_read_once():
                migrate(home)
            done[fixture] = home
        return done[fixture]

    return get


def unpack(pristine: Path, dest: Path, kind: str) -> Path:
    shutil.copytree(pristine, dest)
    return write_home(dest, kind)


def files_of(home: Path) -> list[tuple[str, Path]]:
    runs = home / "history" / "runs"
    out = [("runs", home / "history" / "runs.db"), ("event_index", runs / "index.db")]
    out += [("event_shard", p) for p in sorted(runs.glob("*.db")) if p.name != "index.db"]
    out.append(("schedules", home / "schedules" / "schedules.db"))
    return [(k, p) for k, p in out if p.exists()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): digest(p) for p in sorted(home.rglob("*")) if p.is_file()}


def live_domains(verdicts: dict[str, list[bool]]) -> list[str]:
    """The domains the facade can serve natively: every file each one uses is native."""
    runs = all(verdicts.get("runs", [True]))
    index = all(verdicts.get("event_index", [True]))
    shards = all(verdicts.get("event_shard", [True]))
    schedules = all(verdicts.get("schedules", [True]))
    live = []
    if runs:
        live += ["runs", "config"]
    if index and shards:
        live += ["events", "assets", "storage"]
    if runs and index and shards:
        live.append("run_launcher")
    if schedules:
        live.append("scheduling")
    return live


def has_index(db: Path, name: str) -> bool:
    with closing(sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)) as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (name,)
            ).fetchall()
        )


def compare_with_stock(home: Path, stock_home: Path, domains: list[str]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_RS_DOMAINS", ",".join(domains) or "none")
        rust = load_instance(home)
        try:
            got = observe_all(rust)
        finally:
            rust.dispose()
            del rust
            gc.collect()
    stock = load_instance(stock_home)
    try:
        expected = observe_all(stock)
    finally:
        stock.dispose()
    if "runs" in domains and not has_index(home / "history" / "runs.db", "idx_run_tags"):
        for key in TAG_READS:
            expected.pop(key)
            got.pop(key)
    differing = [k for k in expected if expected[k] != got.get(k)]
    assert not differing, "\n".join(
        f"{k}:\n  stock {expected[k][:1500]}\n  rust  {got.get(k, '')[:1500]}" for k in differing
    )


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.name.removesuffix(".tar.gz"))
def test_verdicts_on_the_home_as_written(
    fixture: Path, tmp_path: Path, extracted: Callable[[Path], Path]
) -> None:
    home = unpack(extracted(fixture), tmp_path / "rust", "rust")
    stock_home = unpack(extracted(fixture), tmp_path / "stock", "stock")
    before = tree(home)
    found = {str(p): _native.inspect_database(p, kind) for kind, p in files_of(home)}
    assert tree(home) == before, "inspect_database changed the home"

    verdicts: dict[str, list[bool]] = {}
    for kind, path in files_of(home):
        seen = found[str(path)]
        verdicts.setdefault(kind, []).append(seen["native"])
        assert seen["state"] in ("current", "outdated", "unstamped"), seen
        assert not seen["read_only"] and not seen["hot_journal"], seen
        if seen["missing"] and seen["state"] != "unstamped":
            assert not seen["native"], seen
        # The store does what the verdict says, on a copy: open it, or refuse it untouched.
        probe = tmp_path / "probe" / path.relative_to(home)
        probe.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, probe)
        untouched = digest(probe)
        assert opens_natively(probe, kind) == seen["native"], (kind, path.name, seen)
        if not seen["native"]:
            assert digest(probe) == untouched
    shutil.rmtree(tmp_path / "probe")

    domains = live_domains(verdicts)
    print(fixture.name, "native domains:", domains)
    if compared(fixture):
        compare_with_stock(home, stock_home, domains)


def migrate(home: Path) -> None:
    """Stock's `dagster instance migrate` on `home` (its dagster.yaml selects stock), the command
    itself run in this process: a new interpreter would spend seconds importing Dagster."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DAGSTER_RS")}
    env["DAGSTER_HOME"] = str(home)
    done = CliRunner().invoke(migrate_command, [], env=env)
    assert done.exit_code == 0 and done.exception is None, (done.output[-3000:], done.exception)
    gc.collect()


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.name.removesuffix(".tar.gz"))
def test_verdicts_once_migrated(
    fixture: Path, tmp_path: Path, migrated: Callable[[Path], Path]
) -> None:
    home = unpack(migrated(fixture), tmp_path / "rust", "rust")
    for kind, path in files_of(home):
        seen = _native.inspect_database(path, kind)
        assert (seen["state"], seen["native"], seen["missing"]) == ("current", True, []), (
            kind,
            path.name,
            seen,
        )
    if compared(fixture):
        stock_home = unpack(migrated(fixture), tmp_path / "stock", "stock")
        compare_with_stock(home, stock_home, live_domains({}))
