"""Concurrency pools across processes on one DAGSTER_HOME.

Run workers claim pool slots from separate processes. Claims must be atomic across them: with a
pool limit of 3, eight processes racing for slots never hold more than 3 at once, each claimant
stays the holder of its slot until it frees it, and every step eventually gets one. A run worker
killed with SIGKILL mid-step must not leave its slot held once its run has been marked ended.

Stock on SQLite does not guarantee the first (docs/assets-domain.md §10.12: no row locks, the
free-slot SELECT outside the write transaction), so the race is asserted on dagster-rs only. Run
with the racer below against a stock home, stock showed the same double claims (3 and 7 `LOST`
lines in two runs of 24 claims) while never more than 3 slots were held at once by the racers'
own accounts.

Worker processes are forked from a server that imported Dagster once (as in
tests/events/test_events_concurrency.py): each starts in milliseconds instead of re-importing
Dagster. Each writes its log, one line at a time with a CLOCK_MONOTONIC timestamp (one clock for
all processes), to a file of its own.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.utils import make_new_run_id
from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration

from tests.conftest import load_instance, write_home
from tests.processes import assert_clean_exit, wait_for

POOL = "race"
LIMIT = 3
WORKERS = 8
STEPS_PER_WORKER = 3
HOLD_SECONDS = 0.04


def _forkserver() -> multiprocessing.context.ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dagster", "dagster_rs", __name__])
    return ctx


def _as_worker(home: str, log_path: str, work: Callable[[DagsterInstance, Callable], None]) -> None:
    """Run `work(instance, say)` in a worker process: stderr to `<log>.stderr`, `say(*words)`
    appends a line to the log; the instance is loaded from dagster.yaml first (line `CLASS`)."""
    err = os.open(log_path + ".stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(err, 2)
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - the process's stderr
    with open(log_path, "w", buffering=1) as log:  # line-buffered: each line lands at once

        def say(*words: object) -> None:
            log.write(" ".join(map(str, words)) + "\n")

        try:
            instance = DagsterInstance.from_config(home)
            say("CLASS", type(instance).__module__ + "." + type(instance).__qualname__)
            work(instance, say)
            instance.dispose()
            say("DONE")
        except BaseException:
            sys.stderr.write(traceback.format_exc())
            sys.exit(1)


def racer(home: str, run_id: str, go: str, log_path: str) -> None:
    """A run worker racing for slots: waits for the go-file so that all workers race at once,
    then for each step claims a slot (polling while blocked, as the step executor does), holds
    it a moment and frees it. While it holds a slot it checks that the slot table still names it
    (a double claim overwrites the first claimant's row). Logs `CLAIMED <step> <t>`,
    `LOST <step>`, `FREEING <step> <t>`."""

    def work(instance: DagsterInstance, say: Callable) -> None:
        storage = instance.event_log_storage
        say("READY")
        while not os.path.exists(go):
            time.sleep(0.001)
        for n in range(STEPS_PER_WORKER):
            step = f"step{n}"
            while not storage.claim_concurrency_slot(POOL, run_id, step).is_claimed:
                time.sleep(0.005)
            say("CLAIMED", step, time.monotonic())
            deadline = time.monotonic() + HOLD_SECONDS
            while time.monotonic() < deadline:
                if not storage.check_concurrency_claim(POOL, run_id, step).is_claimed:
                    say("LOST", step)
                    break
                time.sleep(0.005)
            say("FREEING", step, time.monotonic())
            storage.free_concurrency_slot_for_step(run_id, step)

    _as_worker(home, log_path, work)


def holder(home: str, run_ids: list[str], log_path: str) -> None:
    """A run worker that claims a slot for a step of each of its runs, logs `CLAIMED <run>`, and
    keeps working until it is killed."""

    def work(instance: DagsterInstance, say: Callable) -> None:
        storage = instance.event_log_storage
        for run_id in run_ids:
            assert storage.claim_concurrency_slot(POOL, run_id, "step").is_claimed
            say("CLAIMED", run_id)
        while True:
            time.sleep(0.05)

    _as_worker(home, log_path, work)


def log_lines(log_path: Path) -> list[str]:
    return log_path.read_text().splitlines() if log_path.exists() else []


def make_home(tmp_path: Path, kind: str, limit: int, extra_yaml: str = "") -> Path:
    """A home of `kind` whose pool has `limit` slots, initialised and disposed."""
    home = write_home(tmp_path / f"{kind}_home", kind, extra_yaml)
    inst = load_instance(home)
    try:
        inst.event_log_storage.set_concurrency_slots(POOL, limit)
    finally:
        inst.dispose()
    return home


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals holding at one instant (a free at t ends before a claim
    at the same t)."""
    points = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    held = peak = 0
    for _, delta in points:
        held += delta
        peak = max(peak, held)
    return peak


def race(home: Path, tmp_path: Path) -> tuple[list[str], int, list[tuple[float, float]]]:
    """Run the racers; return their log lines (each prefixed by its run id), the most claimed
    slots a poller saw in the slot table while they ran, and every hold interval the racers
    logged."""
    ctx = _forkserver()
    go = tmp_path / "go"
    logs = {f"racer-{n}": tmp_path / f"racer-{n}.log" for n in range(WORKERS)}
    procs = {
        run_id: ctx.Process(target=racer, args=(str(home), run_id, str(go), str(log)))
        for run_id, log in logs.items()
    }
    polled_max = 0
    try:
        for proc in procs.values():
            proc.start()
        wait_for(
            lambda: all(
                "READY" in log_lines(log) or not p.is_alive()
                for log, p in zip(logs.values(), procs.values(), strict=True)
            ),
            "the racers to load their instances",
        )
        watcher = load_instance(home)
        try:
            go.touch()
            deadline = time.monotonic() + 180
            while any(p.is_alive() for p in procs.values()) and time.monotonic() < deadline:
                info = watcher.event_log_storage.get_concurrency_info(POOL)
                polled_max = max(polled_max, len(info.claimed_slots))
                time.sleep(0.005)
        finally:
            watcher.dispose()
        for proc in procs.values():
            proc.join(timeout=10)
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.kill()
                proc.join()
    lines: list[str] = []
    for run_id, proc in procs.items():
        log = logs[run_id]
        assert_clean_exit(run_id, proc.exitcode, Path(f"{log}.stderr").read_text())
        own = log_lines(log)
        assert own[0] == "CLASS dagster_rs.instance.DagsterInstance", own[0]
        assert own[-1] == "DONE", own
        lines.extend(f"{run_id} {line}" for line in own)
    claimed: dict[tuple[str, str], float] = {}
    intervals = []
    for line in lines:
        run_id, kind, *rest = line.split()
        if kind == "CLAIMED":
            claimed[(run_id, rest[0])] = float(rest[1])
        elif kind == "FREEING":
            intervals.append((claimed.pop((run_id, rest[0])), float(rest[1])))
    assert not claimed, f"claimed and never freed: {claimed}"
    return lines, polled_max, intervals


def test_racing_processes_never_hold_more_than_the_limit(tmp_path: Path) -> None:
    home = make_home(tmp_path, "rust", LIMIT)
    lines, polled_max, intervals = race(home, tmp_path)

    # every step got a slot, exactly once
    assert len(intervals) == WORKERS * STEPS_PER_WORKER
    # never more than LIMIT held at once: by the racers' own accounts (each logged interval lies
    # within the time from the claim's commit to the free's), and in the slot table
    assert max_overlap(intervals) <= LIMIT, f"{max_overlap(intervals)} slots held at once"
    assert polled_max <= LIMIT
    # each claimant stayed the holder of its slot until it freed it: no slot was claimed twice
    lost = [line for line in lines if " LOST " in line]
    assert not lost, f"slots taken over while held (double claims): {lost}"

    inst = load_instance(home)
    try:
        storage = inst.event_log_storage
        info = storage.get_concurrency_info(POOL)
        # all freed: nothing claimed, nothing pending, the limit intact
        assert (info.slot_count, info.claimed_slots, info.pending_steps) == (LIMIT, [], [])
        assert storage.get_concurrency_run_ids() == set()
    finally:
        inst.dispose()


def _kill_holder(home: Path, tmp_path: Path, run_ids: list[str]) -> None:
    """A worker claims a slot for a step of each run, then is SIGKILLed mid-step."""
    log = tmp_path / "holder.log"
    proc = _forkserver().Process(target=holder, args=(str(home), run_ids, str(log)))
    proc.start()
    try:
        wait_for(
            lambda: (
                len([x for x in log_lines(log) if x.startswith("CLAIMED")]) == len(run_ids)
                or not proc.is_alive()
            ),
            "the worker to claim its slots",
        )
        assert proc.is_alive(), Path(f"{log}.stderr").read_text()
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=60)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert proc.exitcode == -signal.SIGKILL
    assert [x.split()[1] for x in log_lines(log) if x.startswith("CLAIMED")] == run_ids


def _started_run(inst: DagsterInstance, run_id: str) -> DagsterRun:
    return inst.add_run(
        DagsterRun(job_name="killed_job", run_id=run_id, status=DagsterRunStatus.STARTED)
    )


def _holders(inst: DagsterInstance) -> set[str]:
    return {slot.run_id for slot in inst.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def test_killed_run_holds_no_slot_once_marked_ended(tmp_path: Path) -> None:
    """A run worker is SIGKILLed holding slots for two runs; the runs are then marked ended the
    way Dagster does when it finds a dead worker or a user cancels (a RUN_FAILURE / RUN_CANCELED
    event through the instance). dagster-rs must release their slots then, and admit the step
    waiting for one. (Stock keeps them until the monitoring daemon's free pass, next test, or a
    UI action: docs/assets-domain.md §10.11.)"""
    home = make_home(tmp_path, "rust", 2)
    failed_run, canceled_run = make_new_run_id(), make_new_run_id()
    inst = load_instance(home)
    try:
        runs = [_started_run(inst, failed_run), _started_run(inst, canceled_run)]
        _kill_holder(home, tmp_path, [failed_run, canceled_run])
        assert _holders(inst) == {failed_run, canceled_run}
        waiting = inst.event_log_storage.claim_concurrency_slot(POOL, "waiting-run", "step")
        assert not waiting.is_claimed

        inst.report_run_failed(runs[0], message="run worker died")
        inst.report_run_canceled(runs[1], message="canceled after its worker died")
        assert inst.get_run_by_id(failed_run).status == DagsterRunStatus.FAILURE
        assert inst.get_run_by_id(canceled_run).status == DagsterRunStatus.CANCELED

        held = _holders(inst) & {failed_run, canceled_run}
        assert not held, f"slots still held by ended runs: {held}"
        assert not {failed_run, canceled_run} & inst.event_log_storage.get_concurrency_run_ids()
        claim = inst.event_log_storage.claim_concurrency_slot(POOL, "waiting-run", "step")
        assert claim.is_claimed
    finally:
        inst.dispose()


RUN_MONITORING_YAML = """\
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 1
"""


@pytest.mark.parametrize("kind", ["stock", "rust"])
def test_killed_run_slots_freed_by_the_monitoring_daemon(tmp_path: Path, kind: str) -> None:
    """The run monitoring daemon's free pass releases the slots of a run that ended more than
    `free_slots_after_run_end_seconds` ago; only that run's, and the waiting step gets one."""
    home = make_home(tmp_path, kind, 2, RUN_MONITORING_YAML)
    dead, alive = make_new_run_id(), make_new_run_id()
    inst = load_instance(home)
    try:
        runs = [_started_run(inst, dead), _started_run(inst, alive)]
        _kill_holder(home, tmp_path, [dead, alive])
        assert not inst.event_log_storage.claim_concurrency_slot(POOL, "waiting", "s").is_claimed
        inst.report_run_failed(runs[0], message="run worker died")
        time.sleep(1.1)  # the daemon frees only runs that ended more than 1 s ago
        context = SimpleNamespace(instance=inst)
        list(execute_concurrency_slots_iteration(context, logging.getLogger("test")))  # type: ignore[arg-type]

        assert _holders(inst) == {alive}
        assert inst.event_log_storage.get_concurrency_run_ids() == {alive, "waiting"}
        assert inst.event_log_storage.claim_concurrency_slot(POOL, "waiting", "s").is_claimed
    finally:
        inst.dispose()
