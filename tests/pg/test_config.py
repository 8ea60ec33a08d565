"""Config as users write it: `storage: postgres:` (postgres_url in each scheme, postgres_db with
`env:` values) and the legacy per-storage dagster-postgres classes, read by the facade as stock
reads them; `rust_domains: none` is stock dagster-postgres itself; `pool_size` passes through."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from dagster import DagsterInstance
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import DagsterPostgresException, pg_url_from_config

import dagster_rs
from dagster_rs import postgres
from dagster_rs.domains import DomainSelectionError
from dagster_rs.errors import StorageConnectError
from dagster_rs.pg_cluster import PgCluster
from dagster_rs.storage.postgres_storage import (
    RustPostgresRunStorage,
    RustPostgresScheduleStorage,
    run_storage_class,
)
from tests.pg.pairs import PG_DOMAINS, open_instance, postgres_yaml, stock_url, write_home

# -- URL forms ---------------------------------------------------------------------------------

REST = "user:s%40cret@db.example:6543/dagster?sslmode=require&application_name=x"


@pytest.mark.parametrize(
    "scheme", ["postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg", "POSTGRES"]
)
def test_every_url_form_is_the_same_database_for_the_core(scheme: str) -> None:
    assert postgres.native_url(f"{scheme}://{REST}") == f"postgresql://{REST}"


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "postgresql+asyncpg://u@h/db", "sqlite:///x.db", "not a url"]
)
def test_other_urls_are_not_the_cores(url: str) -> None:
    with pytest.raises(postgres.PostgresUrlError):
        postgres.native_url(url)


def test_location_hides_the_password() -> None:
    assert postgres.location(f"postgresql://{REST}") == (
        "postgresql://user@db.example:6543/dagster?sslmode=require&application_name=x"
    )
    assert postgres.location("postgresql://u@/db?host=/s") == "postgresql://u@/db?host=/s"
    assert "s%40cret" not in postgres.location("postgres://user:s%40cret@h/db")


@pytest.mark.parametrize(
    "config",
    [
        {"postgres_db": {"username": "u", "password": "p w", "hostname": "h", "db_name": "d"}},
        {
            "postgres_db": {
                "username": "u",
                "hostname": "h",
                "db_name": "d",
                "port": 6000,
                "params": {"sslmode": "verify-full", "connect_timeout": 3},
                "scheme": "postgresql+psycopg2",
            }
        },
        {"postgres_url": "postgres://u:p@h:1/d"},
    ],
)
def test_postgres_db_forms_become_urls_the_core_reads(config: dict) -> None:
    url = pg_url_from_config(config)
    native = postgres.native_url(url)
    assert native.startswith("postgresql://")
    # The same user, host, port, database and parameters as stock's URL.
    a, b = urlsplit(url), urlsplit(native)
    assert (a.username, a.password, a.hostname, a.port, a.path) == (
        b.username,
        b.password,
        b.hostname,
        b.port,
        b.path,
    )
    assert parse_qs(a.query) == parse_qs(b.query)


# -- instances configured as users configure them ------------------------------------------


def _socket_db(cluster: PgCluster, db: str) -> dict[str, str]:
    query = parse_qs(urlsplit(cluster.url(db)).query)
    return {"host": query["host"][0], "port": query["port"][0]}


def _db_yaml(cluster: PgCluster, db: str, env: bool) -> str:
    sock = _socket_db(cluster, db)
    db_name = "{env: DAGSTER_RS_TEST_PG_DB}" if env else db
    user = "{env: DAGSTER_RS_TEST_PG_USER}" if env else "postgres"
    # The socket directory goes in `params` (libpq's host=...), the scheme is psycopg2's: what a
    # user on SQLAlchemy 2.1 without psycopg 3 writes.
    return (
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      username: {user}\n      hostname: ''\n      db_name: {db_name}\n"
        f"      port: {sock['port']}\n      scheme: postgresql+psycopg2\n"
        f"      params:\n        host: {sock['host']}\n"
    )


def _check_postgres_instance(inst: DagsterInstance, db: str) -> None:
    assert isinstance(inst, dagster_rs.DagsterInstance)
    assert isinstance(inst.run_storage, PostgresRunStorage)
    assert isinstance(inst.event_log_storage, PostgresEventLogStorage)
    assert isinstance(inst.schedule_storage, PostgresScheduleStorage)
    url = inst.run_storage.postgres_url  # type: ignore[attr-defined]
    assert urlsplit(postgres.native_url(url)).path == f"/{db}"
    # It works: a run stored is a run read.
    assert inst.get_runs_count() == 0


@pytest.mark.parametrize("env", [False, True])
def test_postgres_db_config(
    pg_cluster: PgCluster,
    pg_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: bool,
) -> None:
    monkeypatch.setenv("DAGSTER_RS_TEST_PG_DB", pg_db)
    monkeypatch.setenv("DAGSTER_RS_TEST_PG_USER", "postgres")
    inst = open_instance(write_home(tmp_path / "home", True, _db_yaml(pg_cluster, pg_db, env)))
    try:
        _check_postgres_instance(inst, pg_db)
    finally:
        inst.dispose()


@pytest.mark.parametrize("scheme", ["postgresql+psycopg2", "postgres+psycopg2"])
def test_postgres_url_config(pg_url: str, pg_db: str, tmp_path: Path, scheme: str) -> None:
    url = pg_url.replace("postgresql://", f"{scheme}://", 1)
    if scheme == "postgres+psycopg2":
        # Not a dialect SQLAlchemy knows: stock refuses it, and so does the facade, the same way.
        with pytest.raises(Exception) as stock_error:
            open_instance(write_home(tmp_path / "stock", False, postgres_yaml(url)))
        with pytest.raises(stock_error.type):
            open_instance(write_home(tmp_path / "rust", True, postgres_yaml(url)))
        return
    inst = open_instance(write_home(tmp_path / "home", True, postgres_yaml(url)))
    try:
        _check_postgres_instance(inst, pg_db)
    finally:
        inst.dispose()


LEGACY = """\
run_storage:
  module: dagster_postgres.run_storage
  class: PostgresRunStorage
  config:
    postgres_url: {url!r}
event_log_storage:
  module: dagster_postgres.event_log
  class: PostgresEventLogStorage
  config:
    postgres_url: {url!r}
schedule_storage:
  module: dagster_postgres.schedule_storage
  class: PostgresScheduleStorage
  config:
    postgres_url: {url!r}
"""


def test_legacy_storage_classes(pg_url: str, pg_db: str, tmp_path: Path) -> None:
    text = LEGACY.format(url=stock_url(pg_url))
    inst = open_instance(write_home(tmp_path / "home", True, text))
    try:
        _check_postgres_instance(inst, pg_db)
    finally:
        inst.dispose()


def test_rust_domains_none_is_stock_dagster_postgres(pg_url: str, tmp_path: Path) -> None:
    text = postgres_yaml(stock_url(pg_url))
    inst = open_instance(write_home(tmp_path / "home", True, text, "rust_domains: none\n"))
    try:
        assert type(inst.run_storage) is PostgresRunStorage
        assert type(inst.event_log_storage) is PostgresEventLogStorage
        assert type(inst.schedule_storage) is PostgresScheduleStorage
        assert inst.rust_domains == frozenset()  # type: ignore[attr-defined]
        assert inst.info_dict()["dagster_rs"]["held_back"] == {}  # type: ignore[index]
    finally:
        inst.dispose()


def test_a_sqlite_home_is_unchanged(tmp_path: Path) -> None:
    inst = open_instance(write_home(tmp_path / "home", True))
    try:
        assert isinstance(inst.run_storage, SqliteRunStorage)
        assert isinstance(inst.event_log_storage, SqliteEventLogStorage)
        assert isinstance(inst.schedule_storage, SqliteScheduleStorage)
        assert inst.rust_domains == dagster_rs.IMPLEMENTED  # type: ignore[attr-defined]
    finally:
        inst.dispose()


def test_pool_size_passes_through(pg_url: str, tmp_path: Path) -> None:
    text = postgres_yaml(stock_url(pg_url))
    inst = open_instance(write_home(tmp_path / "home", True, text, "pool_size: 3\n"))
    try:
        assert inst.info_dict()["dagster_rs"]["pool_size"] == 3  # type: ignore[index]
        # The instance ref (what every subprocess rebuilds the instance from) carries it too.
        assert inst.get_ref().custom_instance_class_config["pool_size"] == 3
    finally:
        inst.dispose()


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_bad_pool_size(pg_url: str, tmp_path: Path, bad: str) -> None:
    text = postgres_yaml(stock_url(pg_url))
    with pytest.raises(DomainSelectionError, match="pool_size"):
        open_instance(write_home(tmp_path / "home", True, text, f"pool_size: {bad}\n"))


def test_absent_backend_leaves_every_domain_to_stock_and_says_so(
    pg_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    # Whatever this build has, a core without the backend is what the swap must cope with.
    real = postgres._native.DagsterInstance  # noqa: SLF001

    def refuse(*args: object, **kwargs: object) -> object:
        if kwargs.get("postgres_url"):
            raise NotImplementedError("no PostgreSQL backend in this build")
        return real(*args, **kwargs)

    monkeypatch.setattr(postgres._native, "DagsterInstance", refuse)  # noqa: SLF001
    # The probe's answer is kept per process: asked again now, and again after the test.
    postgres.native_backend_missing.cache_clear()
    request.addfinalizer(postgres.native_backend_missing.cache_clear)
    monkeypatch.setattr(dagster_rs.instance, "_WARNED", set())
    caplog.set_level(logging.WARNING, logger="dagster_rs")
    text = postgres_yaml(stock_url(pg_url))
    inst = open_instance(write_home(tmp_path / "home", True, text, "rust_domains: all\n"))
    try:
        assert type(inst.run_storage) is PostgresRunStorage
        assert type(inst.schedule_storage) is PostgresScheduleStorage
        assert inst.rust_domains == frozenset()  # type: ignore[attr-defined]
        assert inst.python_domains == frozenset(dagster_rs.DOMAINS)  # type: ignore[attr-defined]
        held = inst.info_dict()["dagster_rs"]["held_back"]  # type: ignore[index]
        assert set(held) == set(dagster_rs.DOMAINS)
        assert "no PostgreSQL backend" in held["runs"]["state"]
        assert "no PostgreSQL backend" in held["scheduling"]["state"]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len([w for w in warnings if "stock Dagster's code" in w]) == 1
        message = next(w for w in warnings if "stock Dagster's code" in w)
        # One line per reason: the served domains for the backend, the event log's others as
        # not served on PostgreSQL yet.
        lines = message.splitlines()[1:]
        assert len(lines) == 2
        assert lines[0].startswith("  config, run_launcher, runs, scheduling, storage: ")
        assert "no PostgreSQL backend" in lines[0]
        assert lines[1].startswith("  assets, events: ")
        assert postgres.NOT_YET in lines[1]
        assert postgres.location(postgres.native_url(pg_url)).split("?")[0] in (
            message.replace("postgresql+psycopg2://", "postgresql://")
        )
        # Stock's storages serve them, and work.
        assert inst.get_runs_count() == 0
    finally:
        inst.dispose()


def test_the_composed_classes_are_stocks(pg_url: str) -> None:
    # Built whatever the core has: the classes are stock's with the domain mixins in front.
    for domains in (frozenset(), frozenset({"config"})):
        cls = run_storage_class(domains)
        assert issubclass(cls, PostgresRunStorage)
        assert cls.rust_domains == frozenset({"runs"} | domains)
    assert issubclass(RustPostgresScheduleStorage, PostgresScheduleStorage)
    # Stock's extension points stay stock's where no domain serves them. optimize_for_webserver
    # is stock's and then the native sessions' (tests/pg/test_webserver.py).
    for cls, stock in (
        (RustPostgresRunStorage, PostgresRunStorage),
        (RustPostgresScheduleStorage, PostgresScheduleStorage),
    ):
        assert cls.optimize_for_webserver is not stock.optimize_for_webserver
    assert RustPostgresRunStorage.upgrade is PostgresRunStorage.upgrade
    assert RustPostgresRunStorage.connect is PostgresRunStorage.connect


@pytest.mark.needs_native_pg
def test_runs_config_scheduling_live_on_postgres(pg_url: str, tmp_path: Path) -> None:
    text = postgres_yaml(stock_url(pg_url))
    inst = open_instance(write_home(tmp_path / "home", True, text, "pool_size: 2\n"))
    try:
        assert inst.rust_domains == PG_DOMAINS  # type: ignore[attr-defined]
        assert isinstance(inst.run_storage, RustPostgresRunStorage)
        assert isinstance(inst.run_storage, PostgresRunStorage)
        assert isinstance(inst.schedule_storage, RustPostgresScheduleStorage)
        assert isinstance(inst.schedule_storage, PostgresScheduleStorage)
        held = inst.info_dict()["dagster_rs"]["held_back"]  # type: ignore[index]
        assert set(held) == set(dagster_rs.DOMAINS) - PG_DOMAINS
        assert inst.run_storage.pool_size == 2  # type: ignore[attr-defined]
        assert inst.run_storage.should_autocreate_tables is True  # type: ignore[attr-defined]
        assert inst.schedule_storage.should_autocreate_tables is True  # type: ignore[attr-defined]
    finally:
        inst.dispose()


@pytest.mark.needs_native_pg
def test_rust_domains_switch_on_postgres(pg_url: str, tmp_path: Path) -> None:
    text = postgres_yaml(stock_url(pg_url))
    inst = open_instance(write_home(tmp_path / "home", True, text, "rust_domains: [runs]\n"))
    try:
        assert inst.rust_domains == frozenset({"runs"})  # type: ignore[attr-defined]
        assert type(inst.run_storage) is RustPostgresRunStorage
        assert type(inst.schedule_storage) is PostgresScheduleStorage
    finally:
        inst.dispose()


def test_what_counts_as_an_absent_backend() -> None:
    # seam-core's refusal until integration: a storage error that is a NotImplementedError too.
    class NotIntegrated(dagster_rs.DagsterRsStorageError, NotImplementedError):
        pass

    assert postgres.backend_problem(NotIntegrated("not integrated")) is not None
    assert postgres.backend_problem(NotImplementedError("no backend")) is not None
    assert postgres.backend_problem(TypeError("unexpected keyword argument 'postgres_url'"))
    # A present backend's failures are raised as they are, never taken for an absent one.
    assert postgres.backend_problem(dagster_rs.DagsterRsStorageError("connection refused")) is None
    assert postgres.backend_problem(TypeError("pool_size must be int")) is None
    assert postgres.backend_problem(ValueError("x")) is None


def test_a_server_out_of_reach_is_raised_not_held_back() -> None:
    # A database the core cannot reach is stock's failure too (its connection retries end in
    # DagsterPostgresException): raised after the same retries, never a quiet hand-over to stock.
    storage = SimpleNamespace(
        postgres_url="postgresql+psycopg2://postgres@/nowhere?host=/nonexistent/dagster-rs",
        _token_provider=None,
        should_autocreate_tables=True,
    )
    with pytest.raises(StorageConnectError) as raised:
        postgres.verdict(storage, "runs", "full", None)
    assert isinstance(raised.value, DagsterPostgresException)
    assert "too many retries for DB connection" in str(raised.value)
