"""Fork safety on PostgreSQL: a dagster-rs instance used in the parent, then `os.fork` or
multiprocessing's fork start method. The child opens sessions of its own (backend pids the
parent never had, counted in `pg_stat_activity` by application_name 'dagster-rs'), never uses or
closes the parent's (not even by `dispose()`), and the parent's sessions serve on after the child
exits, without a new connection; nothing either wrote is lost, nothing stored twice."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from dagster_rs.pg_cluster import PgCluster
from tests.pg.pairs import check_served, open_instance, postgres_yaml, stock_url, write_home
from tests.runs.helpers import ids, make_run

pytestmark = pytest.mark.needs_native_pg


def backends(cluster: PgCluster, db: str) -> set[int]:
    """Backend pids of dagster-rs sessions to `db` now."""
    out = cluster.psql(
        "SELECT pid FROM pg_stat_activity"
        f" WHERE application_name = 'dagster-rs' AND datname = '{db}'"
    )
    return {int(p) for p in out.split()}


@pytest.fixture
def used(
    pg_cluster: PgCluster, pg_db: str, tmp_path: Path
) -> Iterator[tuple[DagsterInstance, DagsterInstance, set[int]]]:
    """A dagster-rs instance that has written and read (its pool holds sessions), a stock one
    on the same database, and the parent's backend pids."""
    text = postgres_yaml(stock_url(pg_cluster.url(pg_db)))
    rust = open_instance(write_home(tmp_path / "rust", True, text))
    stock = open_instance(write_home(tmp_path / "stock", False, text))
    try:
        check_served(rust, "postgres")
        for n in range(5):
            rust.add_run(make_run(n))
        assert len(rust.get_runs()) == 5
        list(rust.all_instigator_state())
        parent = backends(pg_cluster, pg_db)
        assert parent
        yield rust, stock, parent
    finally:
        rust.dispose()
        stock.dispose()


def _child_work(inst: DagsterInstance, first: int, cluster: PgCluster, db: str) -> dict[str, Any]:
    for n in range(first, first + 5):
        inst.add_run(make_run(n))
    seen = ids(inst.get_runs())
    during = backends(cluster, db)
    # The child disposing of its instance must close only what it opened.
    inst.dispose()
    return {"seen": seen, "during": sorted(during)}


def _parent_after(
    rust: DagsterInstance, stock: DagsterInstance, parent: set[int], cluster: PgCluster, db: str
) -> None:
    # The parent's sessions are all still there, and they serve the parent with no new one.
    assert parent <= backends(cluster, db)
    runs = ids(rust.get_runs())
    rust.add_run(make_run(99))
    assert backends(cluster, db) == parent
    # Nothing lost, nothing twice; stock reads the same.
    assert sorted(ids(rust.get_runs())) == sorted({*runs, make_run(99).run_id})
    assert ids(stock.get_runs()) == ids(rust.get_runs())


def test_os_fork_child_opens_its_own_sessions(
    used: tuple[DagsterInstance, DagsterInstance, set[int]], pg_cluster: PgCluster, pg_db: str
) -> None:
    rust, stock, parent = used
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read_end)
            result = _child_work(rust, 10, pg_cluster, pg_db)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = {"error": repr(exc)}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        result = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert "error" not in result, result["error"]
    during = set(result["during"])
    child = during - parent
    assert child, "the child opened no session of its own"
    assert parent <= during, "a parent's session was closed while the child ran"
    assert len(result["seen"]) == 10
    _parent_after(rust, stock, parent, pg_cluster, pg_db)
    assert not backends(pg_cluster, pg_db) & child  # the child's left with it
    assert len(rust.get_runs()) == 11


def _mp_child(inst: DagsterInstance, first: int, cluster: PgCluster, db: str, queue: Any) -> None:
    try:
        queue.put(_child_work(inst, first, cluster, db))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put({"error": repr(exc)})


def test_multiprocessing_fork_children(
    used: tuple[DagsterInstance, DagsterInstance, set[int]], pg_cluster: PgCluster, pg_db: str
) -> None:
    rust, stock, parent = used
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_mp_child, args=(rust, 100 + 10 * k, pg_cluster, pg_db, queue))
        for k in range(3)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for result in results:
        assert "error" not in result, result["error"]
        assert set(result["during"]) - parent
        assert parent <= set(result["during"])
    # The parent wrote meanwhile too (its own sessions, untouched by the children).
    rust.add_run(make_run(50))
    _parent_after(rust, stock, parent, pg_cluster, pg_db)
    assert len(rust.get_runs()) == 5 + 15 + 2


@pytest.mark.parametrize("how", ["os.fork", "multiprocessing"])
def test_child_that_never_touches_storage(
    used: tuple[DagsterInstance, DagsterInstance, set[int]],
    pg_cluster: PgCluster,
    pg_db: str,
    how: str,
) -> None:
    rust, stock, parent = used
    if how == "os.fork":
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0
    else:
        proc = multiprocessing.get_context("fork").Process(target=int)
        proc.start()
        proc.join(60)
        assert proc.exitcode == 0
    _parent_after(rust, stock, parent, pg_cluster, pg_db)
    assert len(rust.get_runs()) == 6
