"""16 processes claiming one pool's slots at once through dagster-rs instances on one database
(PostgreSQL, and SQLite for comparison): never more steps hold a slot than the pool's limit,
every step gets one in the end, and nothing is left held or queued.

Each worker records the interval it believed it held a slot (from the claim's return to the
free's call), on the machine's monotonic clock (one clock for every process): those intervals lie
inside the slot's real holding in the database, so more of them overlapping than the limit is a
double claim."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dagster_rs.pg_cluster import PgCluster
from tests.pg.pairs import open_instance, postgres_yaml, stock_url, write_home

pytestmark = pytest.mark.needs_native_pg

PROCESSES = 16
STEPS_EACH = 3
LIMIT = 3

WORKER = textwrap.dedent(
    """
    import sys, time
    from dagster import DagsterInstance

    home, worker, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    instance = DagsterInstance.from_config(home)
    assert "storage" in instance.rust_domains, instance.rust_domains
    storage = instance.event_log_storage
    run_id = f"run-{worker:02d}"
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for n in range(steps):
        step = f"step-{n}"
        while True:
            status = storage.claim_concurrency_slot("pool", run_id, step, priority=worker % 3)
            if status.slot_status.name == "CLAIMED":
                break
            time.sleep(0.005)
        start = time.monotonic()
        time.sleep(0.02)
        end = time.monotonic()
        storage.free_concurrency_slot_for_step(run_id, step)
        print(f"held {start} {end}", flush=True)
    instance.dispose()
    """
)


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, delta in points:
        now += delta
        most = max(most, now)
    return most


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_never_more_held_than_the_limit(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        db = request.getfixturevalue("pg_db")
        storage_yaml = postgres_yaml(stock_url(cluster.url(db)))
    else:
        storage_yaml = f"storage:\n  sqlite:\n    base_dir: {str(tmp_path / 'storage')!r}\n"
    home = write_home(tmp_path / "home", True, storage_yaml, "pool_size: 2\n")
    setup = open_instance(home)
    try:
        assert "storage" in setup.rust_domains  # type: ignore[attr-defined]
        setup.event_log_storage.set_concurrency_slots("pool", LIMIT)
    finally:
        setup.dispose()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(home), str(w), str(STEPS_EACH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", f"{line}{proc.communicate()[1]}"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        intervals: list[tuple[float, float]] = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            for line in out.splitlines():
                _, start, end = line.split()
                intervals.append((float(start), float(end)))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert len(intervals) == PROCESSES * STEPS_EACH
    assert _max_overlap(intervals) <= LIMIT
    check = open_instance(home)
    try:
        info = check.event_log_storage.get_concurrency_info("pool")
        assert info.slot_count == LIMIT
        assert info.claimed_slots == []
        assert info.pending_steps == []
    finally:
        check.dispose()
