"""`dagster_rs.DagsterInstance` as Dagster loads it: from dagster.yaml's `instance_class`, from
`local_temp`, across processes through its `InstanceRef`, with its domain selection, and over the
very same SQLite files (schema, alembic stamp, secondary indexes, WAL) stock Dagster creates.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import dagster
import pytest
import yaml
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.utils import make_new_run_id
from dagster._serdes import deserialize_value, serialize_value

import dagster_rs
from dagster_rs import DomainSelectionError
from dagster_rs.domains import IMPLEMENTED as IMPLEMENTED_DOMAINS
from dagster_rs.storage import RustEventLogStorage, RustRunStorage
from dagster_rs.storage.config_domain import ConfigDomain
from dagster_rs.storage.schedule_storage import RustScheduleStorage
from dagster_rs.storage.storage_domain import StorageDomain
from tests.conftest import load_instance, make_instance, write_home

ALL_DOMAINS = frozenset(dagster_rs.DOMAINS)
RUNS_ONLY = frozenset({"runs"})
EVENTS_ONLY = frozenset({"events"})
IMPLEMENTED = IMPLEMENTED_DOMAINS


def _run(job_name: str = "instance_job", **tags: str) -> DagsterRun:
    return DagsterRun(job_name=job_name, run_id=make_new_run_id(), tags=tags)


def _yaml(**settings: Any) -> str:
    return yaml.safe_dump(settings) if settings else ""


def _assert_rust_instance(inst: dagster.DagsterInstance) -> None:
    assert type(inst) is dagster_rs.DagsterInstance
    assert isinstance(inst, dagster.DagsterInstance)
    assert inst.rust_domains == IMPLEMENTED
    assert isinstance(inst.run_storage, RustRunStorage)
    assert isinstance(inst.event_log_storage, RustEventLogStorage)


# -- loading -------------------------------------------------------------------------------------


def test_get_from_dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = write_home(tmp_path / "home", "rust")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    inst = dagster.DagsterInstance.get()
    try:
        _assert_rust_instance(inst)
        assert inst.is_persistent
        assert inst.root_directory == str(home)
        assert inst.python_domains == ALL_DOMAINS - IMPLEMENTED
        assert inst.durability == "full"
        run = inst.add_run(_run(color="blue"))
        assert inst.get_run_by_id(run.run_id) == run
        assert (home / "history" / "runs.db").is_file()
    finally:
        inst.dispose()


def test_dagster_rs_get_is_the_same_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = write_home(tmp_path / "home", "rust")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    inst = dagster_rs.DagsterInstance.get()
    try:
        _assert_rust_instance(inst)
    finally:
        inst.dispose()


@pytest.mark.parametrize("tempdir", ["given", None])
def test_local_temp(tmp_path: Path, tempdir: str | None) -> None:
    inst = dagster_rs.DagsterInstance.local_temp(tempdir=str(tmp_path) if tempdir else None)
    try:
        _assert_rust_instance(inst)
        if tempdir:
            assert inst.root_directory == str(tmp_path)
        run = inst.add_run(_run(purpose="local_temp"))
        inst.add_run_tags(run.run_id, {"more": "tags"})
        got = inst.get_run_by_id(run.run_id)
        assert got is not None
        assert got.tags == {"purpose": "local_temp", "more": "tags"}
        assert inst.get_runs_count() == 1
        assert inst.get_run_ids(RunsFilter(tags={"more": "tags"})) == [run.run_id]
        assert Path(inst.root_directory, "history", "runs.db").is_file()
    finally:
        inst.dispose()


def test_local_temp_overrides(tmp_path: Path) -> None:
    inst = dagster_rs.DagsterInstance.local_temp(
        tempdir=str(tmp_path), overrides={"rust_domains": "none"}
    )
    try:
        assert type(inst) is dagster_rs.DagsterInstance
        assert inst.rust_domains == frozenset()
        assert type(inst.run_storage) is SqliteRunStorage
    finally:
        inst.dispose()


@pytest.mark.parametrize("setting", [None, ["runs"], "none"])
def test_ref_round_trip(tmp_path: Path, setting: Any) -> None:
    extra = _yaml(rust_domains=setting) if setting is not None else ""
    home = write_home(tmp_path / "home", "rust", extra)
    inst = load_instance(home)
    try:
        ref = inst.get_ref()
        assert ref.custom_instance_class is dagster_rs.DagsterInstance
        # Step subprocesses receive the ref serialized; rebuild it the way they do.
        shipped = deserialize_value(serialize_value(ref), InstanceRef)
        other = dagster.DagsterInstance.from_ref(shipped)
        try:
            assert type(other) is dagster_rs.DagsterInstance
            assert other.rust_domains == inst.rust_domains
            assert type(other.run_storage) is type(inst.run_storage)
            run = inst.add_run(_run(via="first"))
            assert other.get_run_by_id(run.run_id) == run
            again = other.add_run(_run(via="second"))
            assert inst.get_run_by_id(again.run_id) == again
        finally:
            other.dispose()
    finally:
        inst.dispose()


# -- domain selection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (None, IMPLEMENTED),
        ("all", IMPLEMENTED),
        ("ALL", IMPLEMENTED),
        (["runs"], RUNS_ONLY),
        ("runs", RUNS_ONLY),
        (["events"], EVENTS_ONLY),
        ("events,runs", frozenset({"events", "runs"})),
        ("assets,events,runs", frozenset({"assets", "events", "runs"})),
        ("assets,events,runs,storage", frozenset({"assets", "events", "runs", "storage"})),
        ("config,runs", frozenset({"config", "runs"})),
        ("scheduling", frozenset({"scheduling"})),
        ("events,storage", frozenset({"events", "storage"})),
        ("none", frozenset()),
        ([], frozenset()),
    ],
)
def test_rust_domains_from_config(tmp_path: Path, configured: Any, expected: frozenset) -> None:
    extra = _yaml(rust_domains=configured) if configured is not None else ""
    inst = make_instance(tmp_path, "rust", extra)
    try:
        assert type(inst) is dagster_rs.DagsterInstance
        assert inst.rust_domains == expected
        assert inst.python_domains == ALL_DOMAINS - expected
        _assert_storages(inst, expected)
    finally:
        inst.dispose()


def _assert_storages(inst: dagster.DagsterInstance, live: frozenset) -> None:
    """Each domain's storage is the Rust one when live, else stock's own SQLite class."""
    if "runs" in live:
        assert isinstance(inst.run_storage, RustRunStorage)
        # the config domain's methods are the native ones exactly when it is live
        assert isinstance(inst.run_storage, ConfigDomain) == ("config" in live)
    else:
        assert type(inst.run_storage) is SqliteRunStorage
    if "events" in live:
        assert isinstance(inst.event_log_storage, RustEventLogStorage)
        # the storage domain's methods are the native ones exactly when it is live
        assert isinstance(inst.event_log_storage, StorageDomain) == ("storage" in live)
    else:
        assert type(inst.event_log_storage) is SqliteEventLogStorage
    if "scheduling" in live:
        assert isinstance(inst.schedule_storage, RustScheduleStorage)
    else:
        assert type(inst.schedule_storage) is SqliteScheduleStorage


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [
        ("none", "runs", RUNS_ONLY),
        ("none", "all", IMPLEMENTED),
        ("all", "events", EVENTS_ONLY),
        ("all", "none", frozenset()),
        (["runs"], "none", frozenset()),
        (None, "none", frozenset()),
        (None, " Runs ", RUNS_ONLY),
    ],
)
def test_env_overrides_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: Any, env: str, expected: frozenset
) -> None:
    monkeypatch.setenv("DAGSTER_RS_DOMAINS", env)
    extra = _yaml(rust_domains=configured) if configured is not None else ""
    inst = make_instance(tmp_path, "rust", extra)
    try:
        assert inst.rust_domains == expected
        _assert_storages(inst, expected)
    finally:
        inst.dispose()


@pytest.mark.parametrize(
    ("configured", "named"),
    [
        (["assets"], "assets"),
        (["events", "config"], "config"),
        ("runs,assets", "assets"),
        (["bogus"], "bogus"),
        ("run_launcher", "run_launcher"),
    ],
)
def test_unknown_or_unimplemented_domain_in_config(
    tmp_path: Path, configured: Any, named: str
) -> None:
    with pytest.raises(DomainSelectionError, match=named) as info:
        make_instance(tmp_path, "rust", _yaml(rust_domains=configured))
    assert isinstance(info.value, DagsterInvariantViolationError)


@pytest.mark.parametrize(("env", "named"), [("storage", "storage"), ("runs,nonsense", "nonsense")])
def test_unknown_or_unimplemented_domain_in_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, named: str
) -> None:
    monkeypatch.setenv("DAGSTER_RS_DOMAINS", env)
    # The environment wins even over a valid configuration.
    with pytest.raises(DomainSelectionError, match=named):
        make_instance(tmp_path, "rust", _yaml(rust_domains="none"))


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [(None, None, "full"), ("normal", None, "normal"), ("normal", "full", "full")],
)
def test_durability(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    configured: str | None,
    env: str | None,
    expected: str,
) -> None:
    if env is not None:
        monkeypatch.setenv("DAGSTER_RS_DURABILITY", env)
    extra = _yaml(durability=configured) if configured is not None else ""
    inst = make_instance(tmp_path, "rust", extra)
    try:
        assert inst.durability == expected
        run = inst.add_run(_run())
        assert inst.has_run(run.run_id)
    finally:
        inst.dispose()


def test_info_str_lists_rust_domains(tmp_path: Path) -> None:
    inst = make_instance(tmp_path, "rust")
    try:
        text = inst.info_str()
        info = yaml.safe_load(text)
        assert "dagster_rs" in info
        assert info["dagster_rs"]["rust_domains"] == sorted(IMPLEMENTED)
        assert set(info["dagster_rs"]["python_domains"]) == ALL_DOMAINS - IMPLEMENTED
        # The stock sections are still all there.
        for section in ("local_artifact_storage", "run_storage", "event_log_storage"):
            assert section in info
    finally:
        inst.dispose()


def test_info_str_with_no_rust_domains(tmp_path: Path) -> None:
    inst = make_instance(tmp_path, "rust", _yaml(rust_domains="none"))
    try:
        info = yaml.safe_load(inst.info_str())
        assert info["dagster_rs"]["rust_domains"] == []
    finally:
        inst.dispose()


# -- domains none: exactly stock -----------------------------------------------------------------


def _exercise(inst: dagster.DagsterInstance) -> list[Any]:
    """A fixed sequence of run operations; returns what a caller observes (ids normalized)."""
    out: list[Any] = []
    ids = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(4)]
    for i, run_id in enumerate(ids):
        inst.add_run(DagsterRun(job_name=f"job_{i % 2}", run_id=run_id, tags={"n": str(i)}))
    inst.add_run_tags(ids[0], {"n": "changed", "extra": "x"})
    out.append(inst.get_runs())
    out.append(inst.get_runs(ascending=True, limit=2))
    out.append(inst.get_runs(cursor=ids[2], limit=5))
    out.append(inst.get_run_ids(RunsFilter(job_name="job_1")))
    out.append(inst.get_runs_count(RunsFilter(tags={"n": "changed"})))
    out.append(sorted((k, sorted(v)) for k, v in inst.get_run_tags(["n", "extra"])))
    out.append(sorted(inst.get_run_tag_keys()))
    out.append(inst.get_run_ids(RunsFilter(statuses=[DagsterRunStatus.NOT_STARTED])))
    out.append([(r.storage_id, r.dagster_run) for r in inst.get_run_records(limit=3)])
    out.append(inst.get_run_group(ids[1]))
    inst.delete_run(ids[3])
    out.append(inst.has_run(ids[3]))
    out.append(inst.get_runs_count())
    return out


def test_domains_none_behaves_like_stock(tmp_path: Path) -> None:
    rs = make_instance(tmp_path, "rust", _yaml(rust_domains="none"))
    stock = make_instance(tmp_path, "stock")
    try:
        assert rs.rust_domains == frozenset()
        assert rs.python_domains == ALL_DOMAINS
        assert type(rs.run_storage) is SqliteRunStorage
        assert type(rs.run_storage) is type(stock.run_storage)
        assert _exercise(rs) == _exercise(stock)

        def normalized(inst: dagster.DagsterInstance) -> dict:
            info = dict(yaml.safe_load(inst.info_str().replace(inst.root_directory, "<HOME>")))
            info.pop("dagster_rs", None)
            return info

        assert normalized(rs) == normalized(stock)
    finally:
        rs.dispose()
        stock.dispose()


def test_domains_on_matches_stock_results(tmp_path: Path) -> None:
    rs = make_instance(tmp_path, "rust")
    stock = make_instance(tmp_path, "stock")
    try:
        assert isinstance(rs.run_storage, RustRunStorage)
        assert _exercise(rs) == _exercise(stock)
    finally:
        rs.dispose()
        stock.dispose()


# -- the files -----------------------------------------------------------------------------------


def _schema(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        return {
            "sqlite_master": sorted(
                conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
                key=repr,
            ),
            "alembic_version": conn.execute("SELECT version_num FROM alembic_version").fetchall(),
            "secondary_indexes": sorted(
                (name, completed is not None)
                for name, completed in conn.execute(
                    "SELECT name, migration_completed FROM secondary_indexes"
                )
            ),
            "instance_info_rows": conn.execute("SELECT COUNT(*) FROM instance_info").fetchone(),
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
        }
    finally:
        conn.close()


def test_created_schema_is_stocks(tmp_path: Path) -> None:
    stock_home = write_home(tmp_path / "stock_home", "stock")
    rust_home = write_home(tmp_path / "rust_home", "rust")
    for home in (stock_home, rust_home):
        inst = load_instance(home)
        try:
            # Touch run storage so that a lazily opened store creates its file.
            assert inst.get_runs_count() == 0
        finally:
            inst.dispose()
    stock = _schema(stock_home / "history" / "runs.db")
    rust = _schema(rust_home / "history" / "runs.db")
    assert [r[:2] for r in rust["sqlite_master"]] == [r[:2] for r in stock["sqlite_master"]]
    assert rust["sqlite_master"] == stock["sqlite_master"]
    assert rust["alembic_version"] == stock["alembic_version"]
    assert len(rust["alembic_version"]) == 1
    assert rust["secondary_indexes"] == stock["secondary_indexes"]
    assert all(completed for _, completed in rust["secondary_indexes"])
    assert rust["instance_info_rows"] == stock["instance_info_rows"]
    assert rust["journal_mode"] == stock["journal_mode"] == "wal"


def test_alembic_version_reported_like_stock(tmp_path: Path) -> None:
    rs = make_instance(tmp_path, "rust")
    stock = make_instance(tmp_path, "stock")
    try:
        assert tuple(rs.run_storage.alembic_version()) == tuple(stock.run_storage.alembic_version())
    finally:
        rs.dispose()
        stock.dispose()
