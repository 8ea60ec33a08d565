"""The webserver's path: `dagster-webserver` calls `instance.optimize_for_webserver(
statement_timeout, pool_recycle, max_overflow)` once (dagster_webserver/cli.py), and stock's
PostgreSQL storages then set `statement_timeout` on every session. On dagster-rs the native
sessions of that instance's storages get the same timeout: a statement past it raises stock's
class (OperationalError, its `orig.pgcode` 57014 as psycopg2's QueryCanceled); a process, or an
instance, that never made the call has no timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from dagster import DagsterInstance
from sqlalchemy.exc import OperationalError

from dagster_rs.pg_cluster import PgCluster
from dagster_rs.storage.postgres_storage import with_statement_timeout
from tests.conftest import same_class
from tests.pg.pairs import check_served, open_instance, postgres_yaml, stock_url, write_home
from tests.runs.helpers import make_run
from tests.scheduling.conftest import state

pytestmark = pytest.mark.needs_native_pg

TIMEOUT_MS = 300
# What dagster-webserver passes by default besides the timeout (its --db-pool-recycle,
# --db-pool-max-overflow).
POOL_RECYCLE, MAX_OVERFLOW = 3600, 20


@contextmanager
def locked(url: str, table: str, release_after: float | None = None) -> Iterator[None]:
    """`table` locked by another session (ACCESS EXCLUSIVE, in an open transaction): every
    statement reading it waits. Released on exit, or by a timer after `release_after` s."""
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    # Released after `release_after`, or at the latest after 5 s: a call that waits for it
    # without a timeout then returns, and the test fails instead of hanging.
    timer = threading.Timer(release_after if release_after is not None else 5.0, conn.rollback)
    timer.start()
    try:
        yield
    finally:
        if release_after is None:
            timer.cancel()
        timer.join()
        conn.rollback()
        conn.close()


def instances(cluster: PgCluster, db: str, tmp_path: Path) -> tuple[DagsterInstance, ...]:
    text = postgres_yaml(stock_url(cluster.url(db)))
    stock = open_instance(write_home(tmp_path / "stock", False, text))
    rust = open_instance(write_home(tmp_path / "rust", True, text))
    check_served(rust, "postgres")
    return stock, rust


def outcome(fn: Callable[[], Any]) -> tuple[BaseException | None, float]:
    start = time.monotonic()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the exception is the result compared
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


READS: dict[str, tuple[str, Callable[[DagsterInstance], Any]]] = {
    "runs": ("runs", lambda i: i.get_runs()),
    "run count": ("runs", lambda i: i.get_runs_count()),
    "heartbeats": ("daemon_heartbeats", lambda i: i.get_daemon_heartbeats()),
    "instigators": ("instigators", lambda i: list(i.all_instigator_state())),
}


@pytest.mark.parametrize("read", sorted(READS))
def test_statement_past_the_webservers_timeout_raises_stocks_class(
    pg_cluster: PgCluster, pg_db: str, tmp_path: Path, read: str
) -> None:
    table, fn = READS[read]
    stock, rust = instances(pg_cluster, pg_db, tmp_path)
    try:
        rust.add_run(make_run(1))
        rust.schedule_storage.add_instigator_state(state("s1"))  # type: ignore[union-attr]
        for inst in (stock, rust):
            inst.optimize_for_webserver(TIMEOUT_MS, POOL_RECYCLE, MAX_OVERFLOW)
            fn(inst)  # served as before while nothing waits
        errors = {}
        with locked(pg_cluster.url(pg_db), table):
            for name, inst in (("stock", stock), ("rust", rust)):
                error, took = outcome(lambda inst=inst: fn(inst))
                assert error is not None, f"{name}: no timeout"
                assert took < 10, name
                errors[name] = error
        assert isinstance(errors["stock"], OperationalError)
        assert same_class(type(errors["stock"]), type(errors["rust"]))
        assert errors["stock"].orig.pgcode == "57014"  # type: ignore[union-attr]
        assert errors["rust"].orig.pgcode == "57014"  # type: ignore[union-attr]
        # The session that timed out serves the next call.
        assert [r.run_id for r in rust.get_runs()] == [make_run(1).run_id]
    finally:
        stock.dispose()
        rust.dispose()


def test_without_the_call_no_timeout(pg_cluster: PgCluster, pg_db: str, tmp_path: Path) -> None:
    stock, rust = instances(pg_cluster, pg_db, tmp_path)
    # A third instance of the same database in the same process is the webserver's: its
    # timeout must not reach the others' sessions.
    web = open_instance(
        write_home(tmp_path / "web", True, postgres_yaml(stock_url(pg_cluster.url(pg_db))))
    )
    try:
        web.optimize_for_webserver(TIMEOUT_MS, POOL_RECYCLE, MAX_OVERFLOW)
        rust.add_run(make_run(1))
        for name, inst in (("stock", stock), ("rust", rust)):
            with locked(pg_cluster.url(pg_db), "runs", release_after=1.5):
                error, took = outcome(lambda inst=inst: inst.get_runs())
            assert error is None, f"{name}: {error!r}"
            assert took >= 1.0, name
        with locked(pg_cluster.url(pg_db), "runs"):
            error, _ = outcome(lambda: web.get_runs())
        assert isinstance(error, OperationalError)
    finally:
        for inst in (stock, rust, web):
            inst.dispose()


def test_timeout_url_keeps_the_urls_options() -> None:
    url = "postgresql+psycopg2://u:p@h:5/db?sslmode=require&options=-c%20search_path%3Dx"
    out = with_statement_timeout(url, 15000)
    assert out.startswith("postgresql+psycopg2://u:p@h:5/db?sslmode=require&options=")
    assert out.endswith("-c%20search_path%3Dx%20-c%20statement_timeout%3D15000")
    plain = with_statement_timeout("postgresql://u@/db?host=/tmp&port=5", 300)
    assert plain == "postgresql://u@/db?host=/tmp&port=5&options=-c%20statement_timeout%3D300"
