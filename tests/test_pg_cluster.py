"""The throwaway PostgreSQL server the PostgreSQL suites and the bench stand on: it starts, its
per-test databases are isolated, a restart keeps what was committed, and nothing outlives it —
not after stop(), and not after its owner is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dagster_rs import pg_cluster as pgc


def _pgrep(data_dir: Path) -> list[int]:
    # The postmaster's command line names its data directory; its backends' do not, so
    # pids_in (working directory) is checked too.
    out = subprocess.run(["pgrep", "-f", "--", f"-D {data_dir} "], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_server_runs_as_configured(pg_cluster: pgc.PgCluster) -> None:
    out = pg_cluster.psql(
        "SHOW max_connections; SHOW fsync; SHOW listen_addresses; SELECT current_user"
    )
    max_conn, fsync, listen, user = out.split()[:3] + [out.split()[-1]]
    assert int(max_conn) == pg_cluster.max_connections
    assert fsync == "off"
    assert user == "postgres"
    assert "listen" not in listen  # socket only: listen_addresses is empty
    if os.geteuid() == 0:
        owner = Path(f"/proc/{pg_cluster.pid}").stat().st_uid
        import pwd

        assert owner == pwd.getpwnam("postgres").pw_uid


def test_two_databases_are_isolated(pg_cluster: pgc.PgCluster, pg_db: str) -> None:
    other = pg_cluster.create_database()
    other_name = other.split("/")[3].split("?")[0]
    try:
        pg_cluster.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)", pg_db)
        assert pg_cluster.psql("SELECT count(*) FROM t", pg_db).strip() == "1"
        with pytest.raises(pgc.PgClusterError, match='relation "t" does not exist'):
            pg_cluster.psql("SELECT count(*) FROM t", other_name)
    finally:
        pg_cluster.drop_database(other_name)
    assert other_name not in pg_cluster.psql("SELECT datname FROM pg_database")


def test_pg_url_is_a_fresh_database(pg_cluster: pgc.PgCluster, pg_url: str) -> None:
    assert pg_url.startswith("postgresql://postgres@/t_")
    assert f"host={pg_cluster.socket_dir}" in pg_url
    out = subprocess.run(
        [
            "psql",
            "-X",
            "-A",
            "-t",
            "-d",
            pg_url,
            "-c",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_keeps_committed_rows_and_the_url(
    pg_cluster: pgc.PgCluster, pg_db: str, mode: str
) -> None:
    pg_cluster.psql("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 1000)", pg_db)
    before = pg_cluster.pid
    pg_cluster.restart(mode)
    assert pg_cluster.pid != before
    assert pg_cluster.psql("SELECT count(*) FROM t", pg_db).strip() == "1000"


def test_restart_breaks_open_connections(pg_cluster: pgc.PgCluster, pg_url: str) -> None:
    # A client session held across the restart sees its connection go, as a real restart does.
    client = subprocess.Popen(
        ["psql", "-X", "-A", "-t", "-d", pg_url, "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None
    client.stdin.write("SELECT 1;\n")
    client.stdin.flush()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        n = pg_cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psql'")
        if int(n) >= 1:
            break
        time.sleep(0.05)
    pg_cluster.restart("fast")
    _, err = client.communicate("SELECT 2;\n", timeout=30)
    assert client.returncode != 0
    assert "terminat" in err or "connection" in err


def test_stop_leaves_nothing(tmp_path: Path) -> None:
    if not pgc.available():
        pytest.skip("no PostgreSQL server binaries")
    cluster = pgc.PgCluster(max_connections=20).start()
    data_dir, base = cluster.data_dir, cluster.base
    assert base is not None
    assert _pgrep(data_dir) == [cluster.pid]
    assert len(pgc.pids_in(data_dir)) > 1  # postmaster and its auxiliary processes
    cluster.stop()
    assert _pgrep(data_dir) == []
    assert pgc.pids_in(data_dir) == []
    assert not base.exists()
    cluster.stop()  # idempotent
    with pytest.raises(pgc.PgClusterError):
        cluster.start()


def test_killed_owner_takes_the_server_down() -> None:
    if not pgc.available():
        pytest.skip("no PostgreSQL server binaries")
    script = textwrap.dedent(
        """
        import sys, time
        from dagster_rs import pg_cluster as pgc
        c = pgc.PgCluster(max_connections=20).start()
        c.psql("SELECT 1")
        print(c.base, c.pid, flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    base_s, pid_s = owner.stdout.readline().split()
    base, data_dir = Path(base_s), Path(base_s) / "data"
    try:
        assert int(pid_s) in pgc.pids_in(data_dir)
        owner.send_signal(signal.SIGKILL)  # no finalizer, no atexit: only PR_SET_PDEATHSIG
        owner.wait()
        deadline = time.monotonic() + 30
        while pgc.pids_in(data_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pgc.pids_in(data_dir) == []
        assert _pgrep(data_dir) == []
        # The directory it left is the next cluster's to remove.
        assert base.exists()
        assert base in pgc.sweep_stale(base.parent)
        assert not base.exists()
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in pgc.pids_in(data_dir):
            os.kill(pid, signal.SIGKILL)


def test_module_serves_a_cluster_until_stdin_closes() -> None:
    # `python -m dagster_rs.pg_cluster`: how the Rust tests (store::postgres) get a server.
    if not pgc.available():
        pytest.skip("no PostgreSQL server binaries")
    child = subprocess.Popen(
        [sys.executable, "-m", "dagster_rs.pg_cluster"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    url = child.stdout.readline().strip()
    socket_dir = Path(url.split("host=")[1].split("&")[0])
    base = socket_dir.parent
    try:
        out = subprocess.run(
            ["psql", "-X", "-A", "-t", "-d", url, "-c", "SELECT 1"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "1"
        child.stdin.close()
        assert child.wait(timeout=60) == 0
        assert pgc.pids_in(base / "data") == []
        assert not base.exists()
    finally:
        if child.poll() is None:
            child.kill()
