"""Homes whose files are at older (or unknown) alembic revisions, served as stock serves them.

The homes are made by stock: a stock 1.13 home holding runs with tags, a backfill, events
(materializations with partitions, engine events), dynamic partitions, an instigator and its
ticks and daemon cursors, then brought back to an older revision with stock's own alembic
downgrade (`tests/old_homes` has homes made by old Dagster releases). On each:

- dagster-rs builds its instance without refusing anything: a file the native path covers is
  served natively; one it does not (an older revision lacking what the native path reads, a
  revision this Dagster does not know) leaves its domains to stock's code, with one warning
  naming `dagster instance migrate`;
- every read answers what stock's instance answers on a copy of the same home, and stock reads
  back what dagster-rs writes;
- `instance.upgrade()` and `dagster instance migrate` upgrade every file exactly as stock's do
  (sqlite_master, revisions, data-migration marks, rows), after which every domain is native, in
  the same process and the next.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from dagster import AssetKey, AssetMaterialization, DagsterInstance
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.events import DagsterEventType, StepMaterializationData
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import RemotePartitionSetOrigin
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.dagster_run import DagsterRun, RunsFilter
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.schedules.sqlite import sqlite_schedule_storage
from dagster._core.storage.sql import get_alembic_config, run_alembic_downgrade
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

import dagster_rs
import dagster_rs.storage
from dagster_rs import _native
from tests.conftest import load_instance, write_home
from tests.events.helpers import engine_entry, event_entry
from tests.scheduling.conftest import origin, state, tick

REVISIONS = [
    r.revision
    for r in ScriptDirectory.from_config(
        get_alembic_config(sqlite_event_log.__file__)
    ).walk_revisions()
]
HEAD = REVISIONS[0]
# Two back: every file's layout is one the native path covers.
COVERED = REVISIONS[2]
# Six back: runs.db lacks `bulk_actions.job_name` and `backfill_tags`; the event log index and
# shards, schedules.db are still covered.
RUNS_UNCOVERED = REVISIONS[6]
# Ten back: the event log index also lacks `asset_check_executions`.
INDEX_UNCOVERED = REVISIONS[10]
UNKNOWN = "ffffdeadbeef"

RUNS_DB = "history/runs.db"
INDEX_DB = "history/runs/index.db"
SCHEDULES_DB = "schedules/schedules.db"
RUN_IDS = ("run-a", "run-b", "run-c")
ASSET = AssetKey(["old", "asset"])
DEF = "fruits"
ST = state("old_sensor", InstigatorType.SENSOR)


def _seed(inst: DagsterInstance) -> None:
    for i, run_id in enumerate(RUN_IDS):
        tags = {"team": "core" if i % 2 else "web", "dagster/partition": f"p{i}"}
        inst.add_run(DagsterRun(job_name=f"job_{i % 2}", run_id=run_id, tags=tags))
        inst.event_log_storage.store_event(engine_entry(run_id, f"hello {i}", job_name="j"))
        inst.event_log_storage.store_event(
            event_entry(
                run_id,
                DagsterEventType.ASSET_MATERIALIZATION,
                f"mat {i}",
                job_name="j",
                data=StepMaterializationData(AssetMaterialization(ASSET, partition=f"p{i}")),
                timestamp=1.7e9 + i,
            )
        )
    inst.add_backfill(
        PartitionBackfill(
            backfill_id="bf1",
            partition_set_origin=RemotePartitionSetOrigin(
                repository_origin=origin("x").repository_origin, partition_set_name="ps"
            ),
            status=BulkActionStatus.REQUESTED,
            partition_names=["p0", "p1"],
            from_failure=False,
            reexecution_steps=None,
            tags={"team": "core"},
            backfill_timestamp=1.7e9,
        )
    )
    inst.add_dynamic_partitions(DEF, ["apple", "pear"])
    inst.add_instigator_state(ST)
    inst.create_tick(tick(ST, 1.0))
    inst.create_tick(tick(ST, 2.0, TickStatus.FAILURE))
    inst.daemon_cursor_storage.set_cursor_values({"cursor": "7"})


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stock home at this Dagster's head holding the seed."""
    home = write_home(tmp_path_factory.mktemp("old_revisions") / "template", "stock")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_RS_DOMAINS", raising=False)
        inst = load_instance(home)
        try:
            _seed(inst)
        finally:
            inst.dispose()
    return home


def _downgrade(path: Path, rev: str) -> None:
    """Stock's own alembic downgrade of one file (run shards and the index share the chain)."""
    module = sqlite_schedule_storage if path.name == "schedules.db" else sqlite_event_log
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            with conn.begin():
                run_alembic_downgrade(get_alembic_config(module.__file__), conn, rev=rev)
    finally:
        engine.dispose()


def _stamp(path: Path, rev: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE alembic_version SET version_num = ?", (rev,))
        conn.commit()
    finally:
        conn.close()


def old_home(template: Path, dest: Path, kind: str, revisions: dict[str, str]) -> Path:
    """A copy of the template with each file of `revisions` (runs / index / schedules) brought
    to its revision: stock's downgrade, or an unknown revision stamped; the event log's shards
    go with the index. `kind` ("stock" or "rust") is selected in dagster.yaml."""
    shutil.copytree(template, dest)
    for which, rev in revisions.items():
        paths = {
            "runs": [dest / RUNS_DB],
            "index": sorted((dest / "history" / "runs").glob("*.db")),
            "schedules": [dest / SCHEDULES_DB],
        }[which]
        for path in paths:
            if rev == UNKNOWN:
                _stamp(path, rev)
            else:
                _downgrade(path, rev)
    return write_home(dest, kind)


def files(home: Path) -> list[Path]:
    return [
        home / RUNS_DB,
        home / SCHEDULES_DB,
        *sorted((home / "history" / "runs").glob("*.db")),
    ]


def fingerprint(home: Path) -> dict[str, Any]:
    """Schema, revision, data-migration marks and row counts of every file of the home."""
    out: dict[str, Any] = {}
    for path in files(home):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            master = sorted(
                conn.execute(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master"
                    " WHERE name NOT LIKE 'sqlite_stat%'"
                ).fetchall(),
                key=repr,
            )
            tables = [r[1] for r in master if r[0] == "table"]
            counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            marks = (
                conn.execute(
                    "SELECT name, migration_completed IS NOT NULL FROM secondary_indexes"
                    " ORDER BY id"
                ).fetchall()
                if "secondary_indexes" in tables
                else None
            )
        finally:
            conn.close()
        out[str(path.relative_to(home))] = {
            "master": master,
            "counts": counts,
            "revision": revision,
            "marks": marks,
        }
    return out


def reads(inst: DagsterInstance) -> dict[str, Any]:
    """Every read shape the seed answers, as plain values."""
    storage = inst.event_log_storage
    out: dict[str, Any] = {
        "runs": [(r.run_id, r.job_name, sorted(r.tags.items())) for r in inst.get_runs()],
        "records": [
            (r.dagster_run.run_id, r.storage_id)
            for r in inst.get_run_records(RunsFilter(tags={"team": "core"}))
        ],
        "count": inst.get_runs_count(RunsFilter(tags={"team": ["core", "web"]})),
        "tags": inst.get_run_tags(["team", "dagster/partition"]),
        "tag keys": sorted(inst.get_run_tag_keys()),
        "backfills": [b.backfill_id for b in inst.get_backfills()],
        "logs": {
            run_id: [(e.message, e.dagster_event_type) for e in inst.all_logs(run_id)]
            for run_id in RUN_IDS
        },
        "asset keys": inst.get_asset_keys(),
        "materializations": [
            (r.storage_id, r.partition_key) for r in inst.fetch_materializations(ASSET, 10).records
        ],
        "partitions": sorted(inst.get_materialized_partitions(ASSET)),
        "dynamic": inst.get_dynamic_partitions(DEF),
        "states": [s.instigator_name for s in inst.all_instigator_state()],
        "ticks": [
            (t.tick_id, t.status) for t in inst.get_ticks(ST.instigator_origin_id, ST.selector_id)
        ],
        "cursors": inst.daemon_cursor_storage.get_cursor_values({"cursor"}),
        "max event id": storage.get_maximum_record_id(),
    }
    return out


def write(inst: DagsterInstance) -> None:
    inst.add_run(DagsterRun(job_name="late_job", run_id="late-run", tags={"team": "late"}))
    inst.report_engine_event("late event", job_name="late_job", run_id="late-run")
    inst.add_dynamic_partitions(DEF, ["plum"])
    inst.create_tick(tick(ST, 3.0))


ALL = frozenset(dagster_rs.IMPLEMENTED)
RUNS_FAMILY = frozenset({"runs", "config", "run_launcher"})
EVENTS_FAMILY = frozenset({"events", "assets", "storage", "run_launcher"})

# name: (the files brought back, the domains left to stock's code)
CASES: dict[str, tuple[dict[str, str], frozenset[str]]] = {
    "every file two back (covered)": (
        {"runs": COVERED, "index": COVERED, "schedules": COVERED},
        frozenset(),
    ),
    "runs.db six back": ({"runs": RUNS_UNCOVERED}, RUNS_FAMILY),
    "index and shards ten back": ({"index": INDEX_UNCOVERED}, EVENTS_FAMILY),
    "every file ten back": (
        {"runs": INDEX_UNCOVERED, "index": INDEX_UNCOVERED, "schedules": INDEX_UNCOVERED},
        RUNS_FAMILY | EVENTS_FAMILY,
    ),
    "runs.db unknown": ({"runs": UNKNOWN}, RUNS_FAMILY),
    "index unknown": ({"index": UNKNOWN}, EVENTS_FAMILY),
    "schedules.db unknown": ({"schedules": UNKNOWN}, frozenset({"scheduling"})),
}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "dagster_rs" and r.levelno >= logging.WARNING
    ]


@pytest.fixture
def built(
    template: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], tuple[Path, Path]]]:
    """`built(case)`: a dagster-rs home and a stock home, each a copy of the case's old home."""

    def build(case: str) -> tuple[Path, Path]:
        revisions, _ = CASES[case]
        rust = old_home(template, tmp_path / "rust_home", "rust", revisions)
        stock = old_home(template, tmp_path / "stock_home", "stock", revisions)
        return rust, stock

    yield build


@pytest.mark.parametrize("case", sorted(CASES))
def test_old_home_served_as_stock_serves_it(
    built: Callable[[str], tuple[Path, Path]], case: str, caplog: pytest.LogCaptureFixture
) -> None:
    rust_home, stock_home = built(case)
    _, held = CASES[case]
    before = fingerprint(rust_home)
    with caplog.at_level(logging.WARNING, logger="dagster_rs"):
        rust = load_instance(rust_home)
    stock = load_instance(stock_home)
    try:
        assert isinstance(rust, dagster_rs.DagsterInstance)
        assert rust.rust_domains == ALL - held
        warnings = _warnings(caplog)
        if held:
            assert len(warnings) == 1, warnings
            if any(rev != UNKNOWN for rev in CASES[case][0].values()):
                assert "dagster instance migrate" in warnings[0]
            else:
                assert UNKNOWN in warnings[0]
            for domain in held:
                assert domain in warnings[0]
        else:
            assert warnings == []
        # The instance says which domains its files left to stock, and why.
        info = rust.info_dict()["dagster_rs"]
        assert set(info["held_back"]) == held  # type: ignore[index]
        for verdict in info["held_back"].values():  # type: ignore[index]
            assert verdict["state"] in ("outdated", "unknown")
        # Reads answer what stock answers; building the instance and reading changed no file.
        assert reads(rust) == reads(stock)
        assert rust.schema_str() == stock.schema_str()
        assert fingerprint(rust_home) == before

        # Writes: stock's instance on the dagster-rs home reads them back, and the files keep
        # their revisions (nothing migrates them behind the user's back).
        write(rust)
        write(stock)
        rust_after = reads(rust)
    finally:
        rust.dispose()
        stock.dispose()
    stock_view = load_instance(write_home(rust_home, "stock"))
    try:
        assert reads(stock_view) == rust_after
    finally:
        stock_view.dispose()
    after = fingerprint(rust_home)
    for name, print_before in before.items():
        assert after[name]["revision"] == print_before["revision"], name
        assert after[name]["master"] == print_before["master"], name


def _upgrade_in_process(home: Path) -> DagsterInstance:
    inst = load_instance(home)
    inst.upgrade(lambda _: None)
    return inst


UPGRADABLE = sorted(c for c in CASES if UNKNOWN not in CASES[c][0].values())


@pytest.mark.parametrize("case", UPGRADABLE)
def test_upgrade_is_stocks(
    built: Callable[[str], tuple[Path, Path]], case: str, caplog: pytest.LogCaptureFixture
) -> None:
    rust_home, stock_home = built(case)
    rust = _upgrade_in_process(rust_home)
    stock = _upgrade_in_process(stock_home)
    try:
        assert fingerprint(rust_home) == fingerprint(stock_home)
        assert all(f["revision"] == [(HEAD,)] for f in fingerprint(rust_home).values())
        # Served natively from now on, in this process.
        assert rust.rust_domains == ALL
        assert isinstance(rust.run_storage, dagster_rs.storage.RustRunStorage)
        assert isinstance(rust.event_log_storage, dagster_rs.storage.RustEventLogStorage)
    finally:
        rust.dispose()
        stock.dispose()
    # ... and in the next one, without a word.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dagster_rs"):
        again = load_instance(rust_home)
    try:
        assert again.rust_domains == ALL
        assert _warnings(caplog) == []
    finally:
        again.dispose()


@pytest.mark.parametrize("case", UPGRADABLE)
def test_native_reads_and_writes_after_upgrade(
    built: Callable[[str], tuple[Path, Path]], case: str
) -> None:
    rust_home, stock_home = built(case)
    rust = _upgrade_in_process(rust_home)
    stock = _upgrade_in_process(stock_home)
    try:
        assert rust.rust_domains == ALL
        assert reads(rust) == reads(stock)
        write(rust)
        write(stock)
        assert reads(rust) == reads(stock)
    finally:
        rust.dispose()
        stock.dispose()


def _cli_migrate(home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("DAGSTER_RS_DOMAINS", None)
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "dagster"), "instance", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("case", ["every file ten back", "every file two back (covered)"])
def test_dagster_instance_migrate_is_stocks(
    built: Callable[[str], tuple[Path, Path]], case: str
) -> None:
    rust_home, stock_home = built(case)
    rust, stock = _cli_migrate(rust_home), _cli_migrate(stock_home)
    assert stock.returncode == 0, stock.stderr
    assert rust.returncode == 0, rust.stderr
    assert "Traceback" not in rust.stderr
    assert fingerprint(rust_home) == fingerprint(stock_home)
    # The schema it reports before and after is stock's report.
    schema = [line for line in rust.stdout.splitlines() if "current:" in line or "latest:" in line]
    assert schema == [
        line for line in stock.stdout.splitlines() if "current:" in line or "latest:" in line
    ]
    inst = load_instance(rust_home)
    try:
        assert inst.rust_domains == ALL
    finally:
        inst.dispose()


def test_the_cases_cover_what_they_say(template: Path, tmp_path: Path) -> None:
    """The revisions chosen are what the cases claim of the native path's coverage."""

    def native(home: Path, path: str, kind: Any) -> bool:
        return bool(_native.inspect_database(str(home / path), kind)["native"])

    home = old_home(
        template, tmp_path / "covered", "stock", CASES["every file two back (covered)"][0]
    )
    assert all(
        native(home, p, k)
        for p, k in ((RUNS_DB, "runs"), (INDEX_DB, "event_index"), (SCHEDULES_DB, "schedules"))
    )
    home = old_home(template, tmp_path / "ten", "stock", CASES["every file ten back"][0])
    assert not native(home, RUNS_DB, "runs")
    assert not native(home, INDEX_DB, "event_index")
    assert native(home, SCHEDULES_DB, "schedules")
    assert all(
        native(home, str(p.relative_to(home)), "event_shard")
        for p in (home / "history" / "runs").glob("run-*.db")
    )


def test_files_at_the_head_are_judged_without_the_cores_inspection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_native.inspect_database` reads a file's header outside SQLite; closing that descriptor
    drops the locks this process holds on the file through its open connections, and another
    process may then checkpoint and delete the WAL still in use here (lost writes). A file at the
    head, the common case, is judged without it; older files are where a home awaits migration."""
    from dagster_rs import revisions

    def refuse(path: str, kind: str) -> Any:
        raise AssertionError(f"inspect_database called on {path}")

    inst = load_instance(write_home(tmp_path / "home", "rust"))
    try:
        inst.add_run(DagsterRun(job_name="j", run_id="r"))
        inst.report_engine_event("x", job_name="j", run_id="r")
        inst.add_instigator_state(ST)
        monkeypatch.setattr(_native, "inspect_database", refuse)
        again = load_instance(tmp_path / "home")
        try:
            assert again.rust_domains == ALL
        finally:
            again.dispose()
        for path, kind in (
            (RUNS_DB, "runs"),
            (INDEX_DB, "event_index"),
            (SCHEDULES_DB, "schedules"),
        ):
            verdict = revisions.inspect(str(tmp_path / "home" / path), kind)  # type: ignore[arg-type]
            assert verdict is not None and verdict.state == "current" and verdict.native
    finally:
        inst.dispose()
