"""The server restarted mid-stream, the server gone, and bad input: on PostgreSQL dagster-rs
keeps what was committed, carries on after a restart, and raises the classes stock raises."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.errors import DagsterRunAlreadyExists

from dagster_rs.pg_cluster import PgCluster
from tests.pg.pairs import PgPair, check_served, open_instance, postgres_yaml, stock_url, write_home
from tests.runs.helpers import make_run

# Stock's failures while the server restarts: SQLAlchemy's connection errors, and
# dagster-postgres's own once its connection retries run out.
try:
    from dagster_postgres.utils import DagsterPostgresException
except ImportError:  # pragma: no cover - this directory is collected only with dagster_postgres
    DagsterPostgresException = Exception  # type: ignore[misc, assignment]
from sqlalchemy.exc import DBAPIError

TRANSIENT = (DBAPIError, DagsterPostgresException)


@pytest.fixture(params=["stock", "rust"])
def pg_instance(
    request: pytest.FixtureRequest, pg_cluster: PgCluster, pg_db: str, tmp_path: Path
) -> Iterator[DagsterInstance]:
    text = postgres_yaml(stock_url(pg_cluster.url(pg_db)))
    inst = open_instance(write_home(tmp_path / "home", request.param == "rust", text))
    try:
        if request.param == "rust":
            check_served(inst, "postgres")
        yield inst
    finally:
        if pg_cluster.pid is None:
            pg_cluster.start()
        inst.dispose()


def _add(inst: DagsterInstance, n: int) -> int:
    """Add run n until it is stored; the attempts that failed on the restart."""
    failures = 0
    while True:
        try:
            inst.add_run(make_run(n))
            return failures
        except DagsterRunAlreadyExists:
            # Committed by an attempt whose answer the restart lost: stored once, not twice.
            return failures
        except TRANSIENT:
            failures += 1
            assert failures < 50


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_mid_stream_loses_nothing(
    pg_instance: DagsterInstance, pg_cluster: PgCluster, mode: str
) -> None:
    for n in range(30):
        _add(pg_instance, n)
        if n == 14:
            pg_cluster.restart(mode)
    run_ids = [r.run_id for r in pg_instance.get_runs()]
    assert sorted(run_ids) == sorted(make_run(n).run_id for n in range(30))
    assert len(set(run_ids)) == 30
    # Reads are served after the restart as before it.
    pg_cluster.restart(mode)
    assert pg_instance.get_runs_count() == 30


def test_server_gone_raises_stocks_class(pair: PgPair, pg_cluster: PgCluster) -> None:
    if pair.backend != "postgres":
        pytest.skip("a server to stop is PostgreSQL's")
    pair.same(lambda i: i.add_run(make_run(1)))
    pg_cluster.shutdown("immediate")
    try:
        # Stock retries its connection with backoff, then raises: one call each is enough.
        pair.same(lambda i: i.add_run(make_run(2)))
    finally:
        pg_cluster.start()
    assert pair.same(lambda i: [r.run_id for r in i.get_runs()]) == [make_run(1).run_id]


def test_text_postgres_cannot_hold(pair: PgPair) -> None:
    # NUL: SQLite stores it, PostgreSQL's text refuses it; each side as its stock does.
    pair.same(lambda i: i.add_run(make_run(1, tags={"nul": "a\x00b"})))
    if pair.backend == "postgres":
        # Both raise psycopg2's ValueError. Stock inserted the run before the refused tag, in
        # its own statement, and leaves the run without its tags; dagster-rs writes a run and
        # its tags in one transaction, so nothing of the refused run is stored (deliberate).
        assert pair.stock.get_runs_count() == 1
        assert pair.stock.get_run_tags(["nul"]) == []
        assert pair.rust.get_runs_count() == 0
        pair.stock.delete_run(make_run(1).run_id)
    pair.same(lambda i: i.get_runs_count())
    pair.same(lambda i: i.run_storage.set_cursor_values({"k\x00": "v"}))
    pair.same(lambda i: i.get_runs(limit=-1))


def test_writer_thread_through_an_immediate_restart(
    pg_instance: DagsterInstance, pg_cluster: PgCluster
) -> None:
    """A writer thread running while the server restarts (immediate: a crash): every call
    returns or raises stock's class, and every call that returned is stored exactly once."""
    import threading

    returned: list[int] = []
    failed: list[int] = []
    unexpected: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set() and n < 400:
            try:
                pg_instance.add_run(make_run(1000 + n))
                returned.append(n)
            except TRANSIENT:
                failed.append(n)
            except BaseException as exc:  # noqa: BLE001 - reported below
                unexpected.append(exc)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(returned) < 20 and thread.is_alive():
            threading.Event().wait(0.01)
        pg_cluster.restart("immediate")
        seen = len(returned)
        while len(returned) < seen + 20 and thread.is_alive():
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join(120)
        if pg_cluster.pid is None:
            pg_cluster.start()
    assert not unexpected, [repr(e) for e in unexpected]
    assert len(returned) >= 40
    stored = [r.run_id for r in pg_instance.get_runs(limit=1000)]
    assert len(stored) == len(set(stored))
    attempted = {make_run(1000 + n).run_id for n in returned + failed}
    assert set(stored) <= attempted
    assert {make_run(1000 + n).run_id for n in returned} <= set(stored)
