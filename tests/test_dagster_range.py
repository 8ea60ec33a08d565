"""Outside the Dagster releases dagster-rs is tested with (`compat.TESTED_RANGE`), the instance
still starts: every domain is served by stock's code on the same files, and one warning names the
range. Inside it, the package's dependency and the constraints agree with `TESTED_RANGE`.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import sys
from pathlib import Path

import dagster
import pytest
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from packaging.requirements import Requirement
from packaging.version import Version

import dagster_rs
from dagster_rs import compat
from dagster_rs import instance as facade_module
from tests.conftest import load_instance, write_home

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the suite runs on 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def newer_dagster(monkeypatch: pytest.MonkeyPatch) -> str:
    """This process pretends to run a Dagster outside the tested range."""
    monkeypatch.setattr(compat, "installed_dagster", lambda: "1.14.2")
    monkeypatch.setattr(compat, "dagster_in_range", lambda version=None: False)
    monkeypatch.setattr(facade_module, "_WARNED", set())
    return compat.out_of_range_message("1.14.2")


@pytest.mark.parametrize(
    "extra_yaml", ["", "rust_domains: all\n", "rust_domains: [runs, config]\n"]
)
def test_out_of_range_serves_every_domain_with_stocks_code(
    tmp_path: Path,
    newer_dagster: str,
    caplog: pytest.LogCaptureFixture,
    extra_yaml: str,
) -> None:
    home = write_home(tmp_path / "home", "rust", extra_yaml)
    with caplog.at_level(logging.WARNING, logger="dagster_rs"):
        inst = load_instance(home)
        second = load_instance(home)
    try:
        assert type(inst) is dagster_rs.DagsterInstance
        assert inst.rust_domains == frozenset()
        assert inst.python_domains == frozenset(dagster_rs.DOMAINS)
        assert type(inst.run_storage) is SqliteRunStorage
        assert type(inst.event_log_storage) is SqliteEventLogStorage
        assert type(inst.schedule_storage) is SqliteScheduleStorage
        run = inst.add_run(DagsterRun(job_name="j", run_id="r1", tags={"k": "v"}))
        assert second.get_run_by_id("r1") == run
    finally:
        inst.dispose()
        second.dispose()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    # One warning for the process, naming the range and the release it runs.
    assert [r.getMessage() for r in warnings] == [newer_dagster]
    assert compat.TESTED_RANGE in newer_dagster and "1.14.2" in newer_dagster

    # Stock reads what was written, on the same files.
    write_home(home, "stock")
    stock = load_instance(home)
    try:
        assert stock.get_run_by_id("r1") == run
    finally:
        stock.dispose()


def test_out_of_range_environment_selection_is_not_an_error(
    tmp_path: Path, newer_dagster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_RS_DOMAINS", "runs,events")
    inst = load_instance(write_home(tmp_path / "home", "rust"))
    try:
        assert inst.rust_domains == frozenset()
        assert type(inst.run_storage) is SqliteRunStorage
    finally:
        inst.dispose()


def test_in_range_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert compat.dagster_in_range()
    with caplog.at_level(logging.WARNING, logger="dagster_rs"):
        inst = load_instance(write_home(tmp_path / "home", "rust"))
    try:
        assert inst.rust_domains == dagster_rs.IMPLEMENTED
    finally:
        inst.dispose()
    assert [r.getMessage() for r in caplog.records if r.name == "dagster_rs"] == []


@pytest.mark.parametrize(
    ("version", "inside"),
    [
        ("1.13.0", True),
        ("1.13.0rc1", False),
        ("1.13.7", True),
        ("1.13.25", True),
        ("1.13.26", True),
        ("1.13.29", True),
        ("1.13.30rc0", True),
        ("1.12.22", False),
        ("1.14.0", False),
        ("1!0+dev", False),
        ("not a version", False),
    ],
)
def test_the_range(version: str, inside: bool) -> None:
    assert compat.dagster_in_range(version) is inside


def test_the_oldest_tested_release_is_the_ranges_first() -> None:
    assert compat.dagster_in_range(compat.OLDEST_TESTED)
    assert Version(compat.OLDEST_TESTED) == Version(compat.TESTED_RANGE.split(",")[0].lstrip(">="))


def test_the_installed_dagster_is_in_range() -> None:
    assert compat.installed_dagster() == dagster.__version__
    assert compat.dagster_in_range()


def test_dependency_and_constraints_agree_with_the_range() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    dagster_reqs = [
        Requirement(r) for r in project["dependencies"] if Requirement(r).name == "dagster"
    ]
    assert len(dagster_reqs) == 1
    assert str(dagster_reqs[0].specifier) == str(
        Requirement(f"dagster{compat.TESTED_RANGE}").specifier
    )
    pins = dict(
        line.split("==", 1)
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    # The development pin is a release of the range, and is what this suite runs on.
    assert dagster_reqs[0].specifier.contains(Version(pins["dagster"]))
    assert pins["dagster"] == dagster.__version__
    for family in ("dagster-graphql", "dagster-webserver", "dagster-pipes", "dagster-shared"):
        assert pins[family] == pins["dagster"], family
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins["dagster"])


def test_out_of_range_leaves_a_newer_dagsters_files_to_stock(
    tmp_path: Path, newer_dagster: str
) -> None:
    """A home a newer Dagster (outside the range) stamped: stock's code serves it, and nothing
    of dagster-rs opens it (no file changes but what stock's own calls write)."""
    home = write_home(tmp_path / "home", "stock")
    inst = load_instance(home)
    try:
        inst.add_run(DagsterRun(job_name="j", run_id="r1"))
    finally:
        inst.dispose()
    for name in ("history/runs.db", "history/runs/index.db", "schedules/schedules.db"):
        conn = sqlite3.connect(home / name)
        conn.execute("UPDATE alembic_version SET version_num = 'ffff14000000'")
        conn.commit()
        conn.close()

    def schema() -> dict[str, object]:
        out = {}
        for name in ("history/runs.db", "history/runs/index.db", "schedules/schedules.db"):
            conn = sqlite3.connect(f"file:{home / name}?mode=ro", uri=True)
            out[name] = (
                sorted(conn.execute("SELECT name, sql FROM sqlite_master").fetchall(), key=repr),
                conn.execute("SELECT version_num FROM alembic_version").fetchall(),
            )
            conn.close()
        return out

    before = schema()
    inst = load_instance(write_home(home, "rust"))
    try:
        assert inst.rust_domains == frozenset()
        run = inst.get_run_by_id("r1")
        assert run is not None and run.job_name == "j"
        assert inst.get_runs_count() == 1
    finally:
        inst.dispose()
    assert schema() == before
