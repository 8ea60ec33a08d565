"""Stock's private attributes of the storage objects, on dagster-rs's storages.

Dagster reads some of its storages' private attributes from outside them (`run_storage._instance`
in the runs data migrations, `storage._instance` in the legacy storages), its own inherited
methods read the others, and code written against stock reads `run_storage._conn_string`,
`event_log_storage._base_dir` and `schedule_storage._conn_string` to find the files (Dagster's own
check of a `storage: sqlite: base_dir: {env: ...}` config does). The audit (ARCHITECTURE.md,
"Why the facade swaps storage objects") lists each access in dagster, dagster-graphql and
dagster-webserver; here every private instance attribute a stock storage has is compared, by
value, with the dagster-rs storage of the same files under the same configuration.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.storage.runs.base import RunStorage
from dagster._core.storage.runs.migration import add_run_stats
from dagster._core.storage.schedules.base import ScheduleStorage
from dagster._core.storage.sqlite_storage import (
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData

import dagster_rs
from tests.conftest import load_instance, write_home

STORAGES = ("run_storage", "event_log_storage", "schedule_storage")
ENV_VAR = "DAGSTER_RS_TEST_SQLITE_BASE_DIR"


def _configs(base: Path) -> dict[str, str]:
    per_storage = {
        key: {"module": module, "class": cls, "config": {"base_dir": str(base / sub)}}
        for key, module, cls, sub in (
            ("run_storage", "dagster._core.storage.runs", "SqliteRunStorage", "history"),
            (
                "event_log_storage",
                "dagster._core.storage.event_log",
                "SqliteEventLogStorage",
                "history/runs",
            ),
            ("schedule_storage", "dagster._core.storage.schedules", "SqliteScheduleStorage", "s"),
        )
    }
    return {
        "default": "",
        "storage_sqlite_env": yaml.safe_dump(
            {"storage": {"sqlite": {"base_dir": {"env": ENV_VAR}}}}
        ),
        "storage_sqlite_path": yaml.safe_dump({"storage": {"sqlite": {"base_dir": str(base)}}}),
        "per_storage_classes": yaml.safe_dump(per_storage),
    }


CONFIGS = ("default", "storage_sqlite_env", "storage_sqlite_path", "per_storage_classes")


def _comparable(value: Any, instance: DagsterInstance, home: Path) -> Any:
    """What stands for an attribute's value: itself for data (the home's path written as
    `<home>`, so homes compare), the kind for a lock, the instance a weak reference points to."""
    if isinstance(value, type(threading.Lock())):
        return "a threading.Lock"
    if isinstance(value, weakref.ref):
        referent = value()
        return "its instance" if referent is instance else referent
    if isinstance(value, (RunStorage, EventLogStorage, ScheduleStorage)):
        # A storage of the unified storage: which storage, over which files.
        kind = next(
            c for c in (RunStorage, EventLogStorage, ScheduleStorage) if isinstance(value, c)
        )
        where = getattr(value, "_conn_string", None) or getattr(value, "_base_dir", None)
        return (kind.__name__, _comparable(where, instance, home))
    if isinstance(value, ConfigurableClassData):
        value = ("ConfigurableClassData", value.module_name, value.class_name, value.config_yaml)
    if isinstance(value, tuple):
        return tuple(_comparable(v, instance, home) for v in value)
    if isinstance(value, str):
        return value.replace(str(home), "<home>")
    return value


def _private_attributes(obj: Any) -> dict[str, Any]:
    return {name: v for name, v in vars(obj).items() if name.startswith("_") and name[1] != "_"}


def _observed(kind: str, home: Path, config: str) -> dict[str, Any]:
    """Every private attribute of the instance's storages (and of the unified storage it was
    built from, if any) for `kind`'s instance of `home` with configuration `config`."""
    base = home / "storage_base"
    os.environ[ENV_VAR] = str(base)
    inst = load_instance(write_home(home, kind, _configs(base)[config]))
    try:
        if kind == "rust":
            assert isinstance(inst, dagster_rs.DagsterInstance)
            assert inst.rust_domains == dagster_rs.IMPLEMENTED
        objects = {name: getattr(inst, name) for name in STORAGES}
        # The ref rebuilds the unified storage: the instance keeps only its three storages.
        objects["unified storage"] = inst._ref.storage  # type: ignore[union-attr]  # noqa: SLF001
        seen: dict[str, Any] = {}
        for name, obj in objects.items():
            attributes = _private_attributes(obj)
            seen[name] = {k: _comparable(v, inst, home) for k, v in attributes.items()}
            seen[name]["(type)"] = type(obj).__name__
        # Read from outside the storage by Dagster (`add_run_stats`, the legacy storages).
        seen["run_storage"]["_instance"] = inst.run_storage._instance is inst  # noqa: SLF001
        return seen
    finally:
        inst.dispose()


def _assert_stocks_values(stock: dict[str, Any], rust: dict[str, Any]) -> None:
    for name, attributes in stock.items():
        for attr, value in attributes.items():
            if attr == "(type)":
                continue
            assert attr in rust[name], f"{name}.{attr} missing on {rust[name]['(type)']}"
            ours = rust[name][attr]
            if (name, attr) == ("unified storage", "_inst_data") and ours[
                1
            ] == "dagster_rs.storage":
                # The facade's default storage (`config_defaults`) is its own class: the class
                # named differs, the configuration (the files) is stock's.
                assert value[1:3] == (
                    "dagster._core.storage.sqlite_storage",
                    "DagsterSqliteStorage",
                )
                assert ours[2] == "DagsterRsSqliteStorage"
                ours, value = ours[3], value[3]
            assert ours == value, f"{name}.{attr}"


@pytest.mark.parametrize("config", CONFIGS)
def test_every_private_attribute_of_stocks_storages_has_stocks_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str
) -> None:
    monkeypatch.setenv(ENV_VAR, "")
    # In one home stock creates the files and dagster-rs opens them, in another the reverse:
    # a storage that created its files may hold other values than one that opened them.
    stock_created = _observed("stock", tmp_path / "a", config)
    rust_opened = _observed("rust", tmp_path / "a", config)
    rust_created = _observed("rust", tmp_path / "b", config)
    stock_opened = _observed("stock", tmp_path / "b", config)
    _assert_stocks_values(stock_created, rust_created)
    _assert_stocks_values(stock_opened, rust_opened)
    # The private attributes were really compared, the three among them.
    assert {"_conn_string", "_inst_data"} <= set(stock_created["run_storage"])
    assert {"_base_dir", "_inst_data", "_initialized_dbs"} <= set(stock_opened["event_log_storage"])
    assert {"_conn_string", "_inst_data"} <= set(stock_opened["schedule_storage"])


def test_the_sqlite_base_dir_env_config_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`storage: sqlite: base_dir: {env: ...}`, checked as Dagster's own test of that config
    checks it, on both implementations."""
    base = tmp_path / "from_env"
    monkeypatch.setenv(ENV_VAR, str(base))
    extra = yaml.safe_dump({"storage": {"sqlite": {"base_dir": {"env": ENV_VAR}}}})
    for kind in ("stock", "rust"):
        inst = load_instance(write_home(tmp_path / f"{kind}_home", kind, extra))
        try:
            assert _runs_directory(str(base)) in inst.run_storage._conn_string  # type: ignore[attr-defined]  # noqa: SLF001
            assert _event_logs_directory(str(base)) == inst.event_log_storage._base_dir + "/"  # type: ignore[attr-defined]  # noqa: SLF001
            assert _schedule_directory(str(base)) in inst.schedule_storage._conn_string  # type: ignore[attr-defined]  # noqa: SLF001
            assert (base / "history" / "runs.db").is_file()
        finally:
            inst.dispose()


def test_conn_string_opens_the_file_the_storage_serves(rust_instance: DagsterInstance) -> None:
    """`_conn_string` is not only the same text: SQLAlchemy opens the very file Rust writes."""
    from dagster._core.storage.dagster_run import DagsterRun
    from sqlalchemy import create_engine, text

    rust_instance.add_run(DagsterRun(job_name="j", run_id="through-conn-string"))
    engine = create_engine(rust_instance.run_storage._conn_string)  # type: ignore[attr-defined]  # noqa: SLF001
    try:
        with engine.connect() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT run_id FROM runs"))]
    finally:
        engine.dispose()
    assert ids == ["through-conn-string"]


def test_runs_data_migration_reads_the_instance_of_the_run_storage(
    rust_instance: DagsterInstance,
) -> None:
    from dagster._core.storage.dagster_run import DagsterRun

    rust_instance.add_run(DagsterRun(job_name="j", run_id="with-stats"))
    add_run_stats(rust_instance.run_storage, "with-stats")  # reads run_storage._instance
    record = rust_instance.get_run_record_by_id("with-stats")
    assert record is not None and record.start_time is None
