"""The native core's PostgreSQL entry (issue 16, contract C): `_native.DagsterInstance` takes
`postgres_url`, `postgres_schedules_url` and `pool_size`, says where each store is (a PostgreSQL
database by its URL without the password). The runs, config, schedule and storage-domain stores
are served there (tests/pg); the events and assets stores are refused with
`DagsterRsStorageError` until the event log is integrated on PostgreSQL — never a stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_rs import _native
from dagster_rs.core import BackendNotIntegratedError, core_for
from dagster_rs.errors import DagsterRsStorageError

URL = "postgresql+psycopg2://dagster:s3cr%40t@db.example:5432/prod?sslmode=require"
KEY = "postgresql://dagster@db.example:5432/prod?sslmode=require"


def test_postgres_stores_are_located_without_password(tmp_path: Path) -> None:
    core = _native.DagsterInstance(str(tmp_path), postgres_url=URL, pool_size=4)
    assert dict(core.locations) == {"runs": KEY, "event_log": KEY, "schedules": KEY}
    assert core.pool_size == 4
    assert (core.runs_db, core.event_log_dir, core.schedules_db) == (None, None, None)
    assert "s3cr" not in repr(core.locations)


@pytest.mark.parametrize("store", ["events", "assets"])
def test_an_event_log_store_in_postgres_is_refused_not_faked(tmp_path: Path, store: str) -> None:
    core = _native.DagsterInstance(str(tmp_path), postgres_url=URL)
    with pytest.raises(DagsterRsStorageError, match="not integrated yet") as raised:
        getattr(core, store)
    assert isinstance(raised.value, BackendNotIntegratedError)
    assert isinstance(raised.value, NotImplementedError)
    assert KEY.split("?")[0] in str(raised.value)
    assert "s3cr" not in str(raised.value)
    # Nothing was created under the root for it.
    assert list(tmp_path.iterdir()) == []


def test_the_storage_domain_in_postgres_is_served(tmp_path: Path) -> None:
    # Issue 17: the storage domain's store opens the database (here: nobody listens, so the
    # connect failure stock raises), never the refusal of the event log's other stores.
    url = "postgresql://dagster-rs-probe@/probe?host=/nonexistent/dagster-rs&connect_timeout=1"
    core = _native.DagsterInstance(str(tmp_path), postgres_url=url)
    with pytest.raises(Exception) as raised:
        core.storage  # noqa: B018
    assert not isinstance(raised.value, BackendNotIntegratedError)
    # dagster_rs's class, or with dagster_postgres installed its subclass of both.
    names = {c.__name__ for c in type(raised.value).__mro__}
    assert names & {"StorageConnectError", "OperationalError"}, names
    assert list(tmp_path.iterdir()) == []


def test_paths_given_win_over_the_url(tmp_path: Path) -> None:
    core = _native.DagsterInstance(
        str(tmp_path),
        "off",
        postgres_url=URL,
        event_log_dir=str(tmp_path / "history" / "runs"),
        schedules_db=str(tmp_path / "schedules" / "schedules.db"),
    )
    locations = dict(core.locations)
    assert locations["runs"] == KEY
    assert locations["event_log"] == str(tmp_path / "history" / "runs")
    assert locations["schedules"] == str(tmp_path / "schedules" / "schedules.db")
    # The SQLite stores are served as ever.
    assert core.events.run_ids_on_disk() == []
    assert core.schedules.layout() is not None


def test_schedules_url_defaults_to_the_url(tmp_path: Path) -> None:
    other = "postgres://sched:pw@other.example/sched"
    core = _native.DagsterInstance(str(tmp_path), postgres_url=URL, postgres_schedules_url=other)
    assert dict(core.locations)["schedules"] == "postgresql://sched@other.example/sched"
    alone = _native.DagsterInstance(str(tmp_path), postgres_schedules_url=other)
    locations = dict(alone.locations)
    assert locations["schedules"] == "postgresql://sched@other.example/sched"
    assert locations["runs"] == str(tmp_path / "history" / "runs.db")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"postgres_url": "mysql://u:p@h/d"},
        {"postgres_url": "db.example:5432/prod"},
        {"pool_size": 0},
        {"schedules_db": "s.db", "postgres_schedules_url": URL},
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError) as raised:
        _native.DagsterInstance(str(tmp_path), **kwargs)
    assert ":p@" not in str(raised.value)


def test_core_for_passes_the_postgres_keywords(tmp_path: Path) -> None:
    core = core_for(durability="off", postgres_url=URL, pool_size=2)
    assert dict(core.locations)["runs"] == KEY
    assert core.pool_size == 2
    sqlite = core_for(durability="off", runs_db=str(tmp_path / "history" / "runs.db"))
    assert dict(sqlite.locations)["runs"] == str(tmp_path / "history" / "runs.db")
    assert sqlite.pool_size is None


def test_sqlite_locations_are_normalized(tmp_path: Path) -> None:
    spelled = tmp_path / "history" / "." / ".." / "history" / "runs.db"
    core = _native.DagsterInstance(str(tmp_path), "off", runs_db=str(spelled))
    assert dict(core.locations)["runs"] == str(tmp_path / "history" / "runs.db")
