"""Many writers on one DAGSTER_HOME, and a writer killed mid-stream.

Dagster runs many processes against one home (webserver, daemon, run workers, step workers), each
building its instance from dagster.yaml. Their writes must all land without "database is locked",
and a process killed with SIGKILL must lose nothing it had already committed, nor leave files that
stock Dagster or dagster-rs can no longer open.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from dagster._core.storage.dagster_run import DagsterRun, RunsFilter
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.utils import make_new_run_id

import dagster_rs
from tests.conftest import load_instance, write_home
from tests.processes import (
    assert_clean_exit,
    reaped,
    run_threads,
    sigkill_midway,
    spawn,
    wait_ready,
    write_script,
)

PROCESSES = 4
RUNS_PER_PROCESS = 500

# Each writer process loads the instance from dagster.yaml, says READY, waits for the go-file so
# that all of them write at the same time, then adds its runs and prints each committed run id.
WRITER = """\
import os, sys, time
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun

home, name, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
instance = DagsterInstance.from_config(home)
print("CLASS", type(instance).__module__ + "." + type(instance).__qualname__, flush=True)
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
i = 0
while count < 0 or i < count:
    run = DagsterRun(
        job_name="job_" + name,
        run_id=f"{name}-{i:06d}",
        tags={"writer": name, "i": str(i)},
    )
    instance.add_run(run)
    print("COMMITTED", run.run_id, flush=True)
    if i % 5 == 0:
        instance.add_run_tags(run.run_id, {"tagged": "yes"})
        print("TAGGED", run.run_id, flush=True)
    i += 1
instance.dispose()
print("DONE", i, flush=True)
"""


def _start_writer(script: Path, home: Path, name: str, count: int, go: Path) -> subprocess.Popen:
    return spawn(script, str(home), name, str(count), str(go))


@pytest.fixture
def rust_home(tmp_path: Path) -> Path:
    home = write_home(tmp_path / "home", "rust")
    # Create the files once, as `dagster instance migrate` / the first process would.
    inst = load_instance(home)
    try:
        assert isinstance(inst, dagster_rs.DagsterInstance)
        assert inst.get_runs_count() == 0
    finally:
        inst.dispose()
    return home


def test_processes_writing_at_once(rust_home: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path / "writer.py", WRITER)
    go = tmp_path / "go"
    names = [f"p{n}" for n in range(PROCESSES)]
    procs = [_start_writer(script, rust_home, name, RUNS_PER_PROCESS, go) for name in names]
    with reaped(*procs):
        for proc in procs:
            assert wait_ready(proc) == "dagster_rs.instance.DagsterInstance"
        go.touch()
        outputs = [proc.communicate(timeout=600) for proc in procs]

    for name, proc, (out, err) in zip(names, procs, outputs, strict=True):
        assert_clean_exit(name, proc.returncode, err)
        assert f"DONE {RUNS_PER_PROCESS}" in out

    inst = load_instance(rust_home)
    try:
        assert inst.get_runs_count() == PROCESSES * RUNS_PER_PROCESS
        expected = {f"{name}-{i:06d}" for name in names for i in range(RUNS_PER_PROCESS)}
        assert set(inst.get_run_ids()) == expected
        for name in names:
            assert inst.get_runs_count(RunsFilter(tags={"writer": name})) == RUNS_PER_PROCESS
            assert inst.get_runs_count(RunsFilter(job_name=f"job_{name}")) == RUNS_PER_PROCESS
        assert inst.get_runs_count(RunsFilter(tags={"tagged": "yes"})) == PROCESSES * 100
        # Storage ids are unique and every body reads back.
        records = inst.get_run_records()
        assert len({r.storage_id for r in records}) == len(records)
    finally:
        inst.dispose()

    stock = SqliteRunStorage.from_local(str(rust_home / "history"))
    try:
        assert stock.get_runs_count() == PROCESSES * RUNS_PER_PROCESS
    finally:
        stock.dispose()


def test_threads_in_one_process(rust_home: Path) -> None:
    threads_n, per_thread = 8, 50
    inst = load_instance(rust_home)
    start = threading.Barrier(threads_n)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            run = DagsterRun(
                job_name=f"thread_job_{t % 2}",
                run_id=make_new_run_id(),
                tags={"thread": str(t), "i": str(i)},
            )
            inst.add_run(run)
            assert inst.get_run_by_id(run.run_id) == run
            assert 1 <= len(inst.get_runs(limit=5)) <= 5
            assert inst.get_runs_count(RunsFilter(tags={"thread": str(t)})) == i + 1
            if i % 10 == 0:
                inst.add_run_tags(run.run_id, {"checked": str(t)})
                inst.get_run_records(limit=10)

    try:
        run_threads(work, [(t,) for t in range(threads_n)])
        assert inst.get_runs_count() == threads_n * per_thread
        for t in range(threads_n):
            assert inst.get_runs_count(RunsFilter(tags={"thread": str(t)})) == per_thread
            assert inst.get_runs_count(RunsFilter(tags={"checked": str(t)})) == per_thread // 10
    finally:
        inst.dispose()


def test_sigkill_mid_stream_loses_nothing_committed(rust_home: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path / "writer.py", WRITER)
    go = tmp_path / "go"
    proc = _start_writer(script, rust_home, "victim", -1, go)
    committed: list[str] = []
    tagged: list[str] = []

    def seen(kind: str, run_id: str) -> None:
        (committed if kind == "COMMITTED" else tagged).append(run_id)

    with reaped(proc):
        assert wait_ready(proc) == "dagster_rs.instance.DagsterInstance"
        go.touch()
        err = sigkill_midway(proc, seen, lambda: len(committed) >= 150, timeout=300)
    assert len(committed) >= 150, err[-3000:]

    # Stock Dagster opens the files the killed process left (and recovers the WAL).
    stock = SqliteRunStorage.from_local(str(rust_home / "history"))
    try:
        stock_count = stock.get_runs_count()
        stock_ids = set(stock.get_run_ids())
        stock_runs = stock.get_runs()  # every stored body still deserializes
        stock_tagged = set(stock.get_run_ids(RunsFilter(tags={"tagged": "yes"})))
    finally:
        stock.dispose()
    assert len(stock_runs) == stock_count
    missing = [run_id for run_id in committed if run_id not in stock_ids]
    assert not missing, f"{len(missing)} committed runs lost, e.g. {missing[:5]}"
    assert set(tagged) <= stock_tagged

    inst = load_instance(rust_home)
    try:
        assert inst.get_runs_count() == stock_count
        assert set(inst.get_run_ids()) == stock_ids
        assert set(tagged) <= set(inst.get_run_ids(RunsFilter(tags={"tagged": "yes"})))
        # And the home is still writable.
        after = inst.add_run(DagsterRun(job_name="after_crash", run_id=make_new_run_id()))
        assert inst.get_run_by_id(after.run_id) == after
    finally:
        inst.dispose()

    conn = sqlite3.connect(rust_home / "history" / "runs.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (stock_count + 1,)
    finally:
        conn.close()
