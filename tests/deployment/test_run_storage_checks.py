"""Where Dagster asks `isinstance(run_storage, SqlRunStorage)` (or `SqliteRunStorage`), a
dagster-rs home gets stock's answer.

`RustRunStorage` is registered as a virtual subclass of stock's `SqliteRunStorage`
(`dagster_rs/storage/run_storage.py`), so each site takes the branch it takes for stock's storage of
the same SQLite file, and calls a method `RustRunStorage` defines. Site by site, stock home against
dagster-rs home: telemetry's `run_storage_id`, the webserver's index page (`instanceId`),
`dagster run migrate-repository`, `dagster instance migrate --bigint-migration`, and the data
migration helpers of `dagster._core.storage.runs.migration` that write through `connect()`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.dagster_run import DagsterRun, RunsFilter
from dagster._core.storage.runs import SqliteRunStorage, SqlRunStorage
from dagster._core.storage.runs.migration import add_backfill_tags, add_run_stats
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG
from dagster._core.telemetry import _get_instance_telemetry_info
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster._time import get_current_timestamp
from starlette.requests import Request

from dagster_rs.storage.run_storage import RustRunStorage, run_storage_class
from tests.deployment.cli import DEFS, Command, normalize, open_home, run_all, write_homes
from tests.homes import clean_env

KINDS = ("stock", "rust")
JOB = "deploy_job"
OLD_LOCATION = "old_location"
OLD_LABEL = f"__repository__@{OLD_LOCATION}"
NEW_LABEL = f"__repository__@{DEFS.name}"


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    clean_env(monkeypatch)
    yield write_homes(tmp_path)


def test_rust_run_storage_is_a_sqlite_run_storage() -> None:
    for domains in (frozenset({"runs"}), frozenset({"runs", "config"})):
        cls = run_storage_class(domains)
        assert issubclass(cls, SqliteRunStorage) and issubclass(cls, SqlRunStorage)
        # Registered, not derived: no stock SQL method is inherited unnoticed.
        assert SqliteRunStorage not in cls.__mro__ and SqlRunStorage not in cls.__mro__


def test_the_facade_still_swaps_by_its_own_class(tmp_path: Path) -> None:
    """`swaps.py` tests `RustRunStorage` first: the registration does not make a stock storage
    of the runs domain switched off, nor a Rust one of it on."""
    home = write_homes(tmp_path)["rust"]
    with open_home(home, "rust", tmp_path) as inst:
        assert isinstance(inst.run_storage, RustRunStorage)
    off = tmp_path / "off"
    off.mkdir()
    (off / "dagster.yaml").write_text(
        (home / "dagster.yaml").read_text() + "rust_domains: [events]\n"
    )
    with DagsterInstance.from_config(str(off)) as inst:
        assert type(inst.run_storage) is SqliteRunStorage


# --- telemetry and the webserver: the run storage's id ----------------------------------------


def _storage_id_by_stock(home: Path, root: Path) -> str:
    with open_home(home, "stock", root) as inst:
        return inst.run_storage.get_run_storage_id()


@pytest.fixture
def id_homes(homes: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """The pair, and a dagster-rs home with the config domain off (the run storage's id is then
    stock's `SqlRunStorage` method over the core's connections)."""
    config_off = write_homes(tmp_path / "config_off", rust_yaml="rust_domains: [runs, events]\n")
    with DagsterInstance.from_config(str(config_off["rust"])) as inst:
        assert inst.rust_domains == {"runs", "events"}  # type: ignore[attr-defined]
    return {**homes, "rust_config_off": config_off["rust"]}


def test_telemetry_reports_the_run_storage_id(
    id_homes: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for kind, home in id_homes.items():
        (home / "dagster.yaml").write_text(
            (home / "dagster.yaml").read_text().replace("enabled: false", "enabled: true")
        )
        # The telemetry instance id lives in $DAGSTER_HOME/.telemetry.
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with DagsterInstance.from_config(str(home)) as inst:
            assert (type(inst) is DagsterInstance) == (kind == "stock")
            settings = _get_instance_telemetry_info(inst)
        assert settings.dagster_telemetry_enabled
        assert settings.instance_id
        # Stock reports the id stored in runs.db; so must dagster-rs, the very same one.
        assert settings.run_storage_id is not None
        assert settings.run_storage_id == _storage_id_by_stock(home, tmp_path)


def _index_instance_id(instance: DagsterInstance) -> str:
    from dagster_webserver.webserver import DagsterWebserver

    with WorkspaceProcessContext(instance, EmptyWorkspaceTarget()) as context:
        webserver = DagsterWebserver(context)
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "root_path": "",
            "query_string": b"",
            "headers": [],
        }
        response = webserver.index_html_endpoint(Request(scope))
    assert response.status_code == 200
    found = re.search(rb'"instanceId": "([^"]*)"', response.body)
    assert found is not None, response.body[:500]
    return found[1].decode()


def test_webserver_index_page_carries_the_run_storage_id(
    id_homes: dict[str, Path], tmp_path: Path
) -> None:
    for kind, home in id_homes.items():
        with DagsterInstance.from_config(str(home)) as inst:
            assert (type(inst) is DagsterInstance) == (kind == "stock")
            shown = _index_instance_id(inst)
        assert shown != ""
        assert shown == _storage_id_by_stock(home, tmp_path), kind


# --- the CLI: migrate-repository and the bigint migration ------------------------------------


def _old_origin() -> RemoteJobOrigin:
    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, python_file=str(DEFS)),
        location_name=OLD_LOCATION,
    )
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), JOB)


def _seed_old_runs(home: Path, kind: str, root: Path) -> None:
    origin = _old_origin()
    assert origin.repository_origin.get_label() == OLD_LABEL
    with open_home(home, kind, root) as inst:
        for i in range(3):
            inst.add_run(
                DagsterRun(
                    job_name=JOB,
                    run_id=f"old-run-{i}",
                    remote_job_origin=origin,
                    tags={"i": str(i)},
                )
            )
        # A run of another job under the same label is not migrated.
        inst.add_run(DagsterRun(job_name="other", run_id="old-other", remote_job_origin=origin))


def _runs_by_label(home: Path, reader: str, root: Path) -> dict[str, list[str]]:
    with open_home(home, reader, root) as inst:
        by_label = {}
        for label in (OLD_LABEL, NEW_LABEL):
            runs = inst.get_runs(RunsFilter(tags={REPOSITORY_LABEL_TAG: label}))
            by_label[label] = sorted(
                f"{r.run_id} {r.job_name} {r.remote_job_origin.repository_origin.get_label()}"  # type: ignore[union-attr]
                for r in runs
            )
        return by_label


def test_run_migrate_repository(homes: dict[str, Path], tmp_path: Path) -> None:
    """Stock migrates the runs' origin; dagster-rs used to refuse ("Run migration only applies to
    SQL-based run storage")."""
    for kind, home in homes.items():
        _seed_old_runs(home, kind, tmp_path)
    results = run_all(
        Command(
            kind,
            home,
            ("run", "migrate-repository", "--from", OLD_LABEL, "-f", str(DEFS), "-j", JOB),
            stdin="MIGRATE\n",
        )
        for kind, home in homes.items()
    )
    for result in results.values():
        assert result.returncode == 0, result.describe()
    stock, rust = (normalize(results[k].stdout, homes, {}) for k in KINDS)
    assert rust == stock
    assert f"Migrated the run history for {JOB} from {OLD_LABEL} to {NEW_LABEL}." in rust
    expected = {
        OLD_LABEL: [f"old-other other {OLD_LABEL}"],
        NEW_LABEL: [f"old-run-{i} {JOB} {NEW_LABEL}" for i in range(3)],
    }
    for kind, home in homes.items():
        for reader in KINDS:
            assert _runs_by_label(home, reader, tmp_path) == expected, (kind, reader)


def test_bigint_migration_says_sqlite_needs_none(homes: dict[str, Path], tmp_path: Path) -> None:
    for kind, home in homes.items():
        with open_home(home, kind, tmp_path) as inst:
            inst.add_run(DagsterRun(job_name=JOB, run_id="a-run"))
    results = run_all(
        Command(kind, home, ("instance", "migrate", "--bigint-migration"), stdin="MIGRATE\n")
        for kind, home in homes.items()
    )
    for result in results.values():
        assert result.returncode == 0, result.describe()
    stock, rust = (normalize(results[k].stdout, homes, {}) for k in KINDS)
    assert rust == stock
    assert "no need to migrate run storage" in rust
    for kind, home in homes.items():
        with open_home(home, "stock", tmp_path) as inst:
            assert inst.get_run_ids() == ["a-run"], kind


# --- the data migration helpers, on the storage itself ----------------------------------------


def _backfill(backfill_id: str) -> PartitionBackfill:
    return PartitionBackfill(
        backfill_id=backfill_id,
        status=BulkActionStatus.REQUESTED,
        from_failure=False,
        tags={},
        backfill_timestamp=get_current_timestamp(),
        asset_selection=[AssetKey("upstream")],
        serialized_asset_backfill_data="opaque-asset-backfill-data",
    )


def test_migration_helpers_write_through_the_core(homes: dict[str, Path], tmp_path: Path) -> None:
    """`add_backfill_tags` and `add_run_stats` write only to a `SqlRunStorage` (else they return
    without a word): on dagster-rs they now write, through `connect()`, what they write on stock."""
    seen = {}
    for kind, home in homes.items():
        with open_home(home, kind, tmp_path) as inst:
            inst.add_backfill(_backfill("bf"))
            add_backfill_tags(inst.run_storage, "bf", {"team": "a", "k": "v"})
            inst.add_run(DagsterRun(job_name=JOB, run_id="stats-run"))
            add_run_stats(inst.run_storage, "stats-run")
        for reader in KINDS:
            with open_home(home, reader, tmp_path) as inst:
                found = inst.get_backfills(filters=BulkActionsFilter(tags={"team": "a"}))
                record = inst.get_run_record_by_id("stats-run")
                assert record is not None
                seen[(kind, reader)] = (
                    [b.backfill_id for b in found],
                    inst.get_backfills_count(BulkActionsFilter(tags={"k": "v"})),
                    (record.start_time, record.end_time),
                )
    assert seen[("stock", "stock")] == (["bf"], 0, (None, None))
    assert all(value == seen[("stock", "stock")] for value in seen.values()), seen
