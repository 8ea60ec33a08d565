"""16 processes writing runs at once through dagster-rs instances configured for one PostgreSQL
database: nothing lost, every id unique, and (with the native backend) the connections each
process holds are its pool's, counted in pg_stat_activity by application_name."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from dagster._core.storage.dagster_run import RunsFilter

from dagster_rs.pg_cluster import PgCluster
from tests.pg.pairs import open_instance, postgres_yaml, stock_url, write_home

PROCESSES = 16
RUNS_EACH = 25
POOL_SIZE = 2

WRITER = textwrap.dedent(
    """
    import sys
    from dagster import DagsterInstance
    from dagster._core.storage.dagster_run import DagsterRun

    home, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    instance = DagsterInstance.from_config(home)
    for n in range(count):
        run_id = f"00000000-0000-4000-8000-{worker:04d}{n:08d}"
        instance.add_run(DagsterRun(job_name=f"job_{worker}", run_id=run_id, tags={"w": str(worker)}))
    print("written", flush=True)
    sys.stdin.read()  # hold the instance (and its pool) until the test has counted
    instance.dispose()
    """
)


def _connections(cluster: PgCluster, db: str) -> int:
    return int(
        cluster.psql(
            "SELECT count(*) FROM pg_stat_activity"
            f" WHERE datname = '{db}' AND application_name = 'dagster-rs'"
        ).strip()
    )


def _run_writers(home: Path) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(home), str(w), str(RUNS_EACH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "written":
            proc.kill()
            raise AssertionError(f"writer failed: {line}{proc.communicate()[1]}")
    return procs


def _finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        _, err = proc.communicate("", timeout=120)
        assert proc.returncode == 0, err


@pytest.fixture
def home(pg_cluster: PgCluster, pg_db: str, tmp_path: Path) -> Path:
    text = postgres_yaml(stock_url(pg_cluster.url(pg_db)))
    home = write_home(tmp_path / "home", True, text, f"pool_size: {POOL_SIZE}\n")
    # Created once, before the writers race (stock's table creation retries on a race, too).
    open_instance(home).dispose()
    return home


def _check_nothing_lost(home: Path) -> None:
    inst = open_instance(home)
    try:
        runs = inst.get_runs()
        run_ids = [r.run_id for r in runs]
        assert len(run_ids) == PROCESSES * RUNS_EACH
        assert len(set(run_ids)) == len(run_ids)
        for w in range(PROCESSES):
            assert inst.get_runs_count(RunsFilter(tags={"w": str(w)})) == RUNS_EACH
        records = inst.get_run_records()
        storage_ids = [r.storage_id for r in records]
        assert len(set(storage_ids)) == len(storage_ids)
    finally:
        inst.dispose()


def test_sixteen_writers_lose_nothing(home: Path) -> None:
    procs = _run_writers(home)
    _finish(procs)
    _check_nothing_lost(home)


@pytest.mark.needs_native_pg
def test_sixteen_writers_hold_their_pools(pg_cluster: PgCluster, pg_db: str, home: Path) -> None:
    procs = _run_writers(home)
    try:
        # Every writer is alive, holding its instance: the connections open are the pools'.
        held = _connections(pg_cluster, pg_db)
        assert 1 <= held <= PROCESSES * POOL_SIZE, held
    finally:
        _finish(procs)
    deadline = time.monotonic() + 10
    while _connections(pg_cluster, pg_db) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _connections(pg_cluster, pg_db) == 0
    _check_nothing_lost(home)
