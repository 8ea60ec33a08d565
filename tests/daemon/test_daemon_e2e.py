"""A real `dagster-daemon run` on a dagster-rs DAGSTER_HOME, then the same home read by stock.

The daemon serves `daemon_defs.py` (a schedule every minute, a sensor every 5 seconds, both
running by default) with stock Dagster's defaults otherwise: the queued run coordinator, whose
daemon launches the queued runs through the default run launcher into run workers started by the
code server. `run_retries` is on, so the event log consumer daemon also runs and keeps its
cursors in the instance's key-value store. The daemon runs until the schedule has ticked (the
clock decides when: the first minute boundary after the scheduler first sees it) and the sensor
has made all its requests, every run has succeeded and the consumer has caught up; then it is
stopped and the home is read back through a dagster-rs instance, a stock instance and the CLI.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.instance.ref import InstanceRef
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorTick,
    ScheduleInstigatorData,
    SensorInstigatorData,
    TickStatus,
)
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import (
    RUN_KEY_TAG,
    SCHEDULE_NAME_TAG,
    SCHEDULED_EXECUTION_TIME_TAG,
    SENSOR_NAME_TAG,
    TICK_ID_TAG,
)
from dagster._daemon.controller import get_daemon_statuses
from dagster._daemon.types import DaemonStatus
from dagster._serdes import serialize_value

import dagster_rs
from dagster_rs.domains import IMPLEMENTED
from tests.conftest import RUST_YAML, load_instance
from tests.daemon import daemon_defs as defs
from tests.daemon.daemon_process import DAEMON_LOG, DaemonProcess, dagster_daemon, run_cli
from tests.homes import clean_env

HERE = Path(__file__).resolve().parent

# Stock settings both sides share. Telemetry off: nothing but the test's own files in the home.
SETTINGS_YAML = """\
run_retries:
  enabled: true
telemetry:
  enabled: false
"""

# The daemons whose work the test checks; the instance requires a few more (asset, backfill,
# freshness), which must be healthy too.
CHECKED_DAEMONS = ("SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR", "EVENT_LOG_CONSUMER")
# The event log consumer's cursor per event type it consumes (the last storage id it handled).
SUCCESS_CURSOR = f"EVENT_LOG_CONSUMER_CURSOR-{DagsterEventType.RUN_SUCCESS.value}"
FAILURE_CURSOR = f"EVENT_LOG_CONSUMER_CURSOR-{DagsterEventType.RUN_FAILURE.value}"
# Every key a consumer could write, so that a stray one shows.
CONSUMER_KEYS = {f"EVENT_LOG_CONSUMER_CURSOR-{t.value}" for t in DagsterEventType}

# Sensor evaluations it takes to make every request and then skip once more.
SENSOR_EVALUATIONS = defs.REQUEST_EVERY * defs.MAX_REQUESTS + 1

# Deadlines, all far above what a loaded 2-core machine needs: for the daemon to start and write
# the schedule's state; for the sensor's evaluations and runs; for a tick's run to succeed after
# the minute boundary it is due at.
STARTUP_ALLOWANCE = 90.0
SENSOR_ALLOWANCE = 150.0
TICK_ALLOWANCE = 90.0
# However late ticks fall due, the daemon's whole run has this deadline.
RUN_ALLOWANCE = 240.0
# The daemon is not stopped this close before a minute boundary, so that no schedule tick can
# start while it stops (it takes about 3 seconds).
BEFORE_BOUNDARY = 10.0
POLL_EVERY = 1.0


def next_boundary(timestamp: float) -> float:
    """The first whole minute after `timestamp`."""
    return (math.floor(timestamp / 60) + 1) * 60.0


def due_ticks(state: InstigatorState, until: float) -> list[float]:
    """The minutes a `* * * * *` schedule is due at, from when the scheduler started it (the
    start timestamp it stored) up to `until`: one tick each, no more, no fewer."""
    assert isinstance(state.instigator_data, ScheduleInstigatorData)
    start = state.instigator_data.start_timestamp
    assert start is not None
    first = next_boundary(start)
    return [first + 60 * k for k in range(int((until - first) // 60) + 1)] if until >= first else []


@dataclass
class DaemonRun:
    """A home the daemon worked in, and what the test observed while it ran."""

    home: Path
    workspace: Path
    stock_config: Path
    stock_view: Path
    daemon: DaemonProcess
    statuses: dict[str, DaemonStatus]
    statuses_at: float


def write_files(root: Path) -> tuple[Path, Path, Path, Path]:
    """The dagster-rs home, the workspace, a stock config dir (for `InstanceRef.from_dir`) and a
    stock DAGSTER_HOME whose storage is the dagster-rs home's files (for the CLI)."""
    home = root / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(RUST_YAML + SETTINGS_YAML)
    workspace = root / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        "  - python_file:\n"
        f"      relative_path: {HERE / 'daemon_defs.py'}\n"
        "      location_name: daemon_e2e\n"
        f"      working_directory: {root}\n"
    )
    stock_config = root / "stock_config"
    stock_config.mkdir()
    (stock_config / "dagster.yaml").write_text(SETTINGS_YAML)
    stock_view = root / "stock_view"
    stock_view.mkdir()
    (stock_view / "dagster.yaml").write_text(
        SETTINGS_YAML
        + f"storage:\n  sqlite:\n    base_dir: {home}\n"
        + "local_artifact_storage:\n"
        + "  module: dagster._core.storage.root\n"
        + "  class: LocalArtifactStorage\n"
        + f"  config:\n    base_dir: {home}\n"
    )
    return home, workspace, stock_config, stock_view


def open_stock(home: Path, config_dir: Path) -> DagsterInstance:
    inst = DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(config_dir)))
    assert type(inst) is DagsterInstance
    return inst


def states_by_name(inst: DagsterInstance) -> dict[str, InstigatorState]:
    return {s.instigator_name: s for s in inst.all_instigator_state()}


def ticks_of(inst: DagsterInstance, state: InstigatorState, **kwargs: Any) -> list[InstigatorTick]:
    return list(inst.get_ticks(state.instigator_origin_id, state.selector_id, **kwargs))


def runs_tagged(inst: DagsterInstance, tag: str, value: str) -> list[Any]:
    return [r for r in inst.get_runs() if r.tags.get(tag) == value]


def last_run_success_id(inst: DagsterInstance) -> int | None:
    records = inst.fetch_run_status_changes(DagsterEventType.RUN_SUCCESS, limit=1).records
    return records[0].storage_id if records else None


def daemon_log_says(daemon: DaemonProcess) -> str:
    # The report hook (conftest.py) shows the output itself.
    return f" (dagster-daemon output: {daemon.log})"


def check_progress(inst: DagsterInstance, daemon: DaemonProcess) -> tuple[bool, float, str]:
    """Whether the daemon has done everything the test waits for; the deadline for it (from the
    clock: when the schedule's ticks fall due); what is still missing."""
    now = time.time()
    states = states_by_name(inst)
    schedule = states.get(defs.SCHEDULE)
    if schedule is None:
        return False, daemon.launched + STARTUP_ALLOWANCE, "the scheduler has not seen the schedule"
    assert isinstance(schedule.instigator_data, ScheduleInstigatorData)
    first_due = next_boundary(schedule.instigator_data.start_timestamp or now)

    runs = inst.get_runs()
    failed = [r for r in runs if r.status not in (DagsterRunStatus.SUCCESS, *UNFINISHED)]
    if failed:
        pytest.fail(f"runs did not succeed: {[(r.run_id, r.status) for r in failed]}")
    missing = []
    # Every tick due by now, the first one included: the clock says when that is, and each
    # one's run gets its allowance from when it is due.
    due = due_ticks(schedule, now) or [first_due]
    deadline = min(
        max(due[-1] + TICK_ALLOWANCE, daemon.launched + SENSOR_ALLOWANCE),
        daemon.launched + RUN_ALLOWANCE,
    )
    ticked = {t.timestamp for t in ticks_of(inst, schedule) if t.status == TickStatus.SUCCESS}
    late = [datetime.fromtimestamp(d, tz=timezone.utc).time() for d in due if d not in ticked]
    if late:
        missing.append(f"schedule ticks due at {late}")
    sensor = states.get(defs.SENSOR)
    sensor_ticks = ticks_of(inst, sensor) if sensor else []
    if sum(t.status != TickStatus.STARTED for t in sensor_ticks) < SENSOR_EVALUATIONS:
        missing.append(f"{SENSOR_EVALUATIONS} sensor ticks (have {len(sensor_ticks)})")
    if len(runs_tagged(inst, SENSOR_NAME_TAG, defs.SENSOR)) < defs.MAX_REQUESTS:
        missing.append("the sensor's runs")
    unfinished = [r.run_id for r in runs if r.status in UNFINISHED]
    if unfinished:
        missing.append(f"runs to finish: {unfinished}")
    heartbeats = inst.get_daemon_heartbeats()
    absent = sorted(set(inst.get_required_daemon_types()) - set(heartbeats))
    if absent:
        missing.append(f"heartbeats of {absent}")
    cursor = inst.daemon_cursor_storage.get_cursor_values({SUCCESS_CURSOR}).get(SUCCESS_CURSOR)
    if cursor is None or int(cursor) != last_run_success_id(inst):
        missing.append(f"the event log consumer to reach the last RUN_SUCCESS (at {cursor})")
    # No minute may have begun while this looked, nor be about to begin.
    end = time.time()
    if next_boundary(end) != next_boundary(now) or next_boundary(end) - end < BEFORE_BOUNDARY:
        missing.append("the next schedule tick to pass")
    return not missing, deadline, "; ".join(missing)


RUN_LIFECYCLE = (
    DagsterEventType.RUN_ENQUEUED,
    DagsterEventType.RUN_STARTING,
    DagsterEventType.RUN_START,
    DagsterEventType.RUN_SUCCESS,
)
UNFINISHED = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
)


def wait_for_the_daemon(daemon: DaemonProcess, home: Path) -> tuple[dict[str, DaemonStatus], float]:
    """Poll the home through a dagster-rs instance until the daemon has done its work; return the
    daemon statuses read just before it is stopped."""
    # The daemon creates the home's storage; look only once it has said it is configured.
    while "Instance is configured with the following daemons" not in daemon.output():
        if not daemon.running():
            pytest.fail("dagster-daemon exited at start" + daemon_log_says(daemon))
        if time.time() > daemon.launched + STARTUP_ALLOWANCE:
            pytest.fail("dagster-daemon did not start" + daemon_log_says(daemon))
        time.sleep(POLL_EVERY)
    inst = load_instance(home)
    try:
        assert isinstance(inst, dagster_rs.DagsterInstance)
        while True:
            if not daemon.running():
                pytest.fail("dagster-daemon exited while it was working" + daemon_log_says(daemon))
            done, deadline, missing = check_progress(inst, daemon)
            if done:
                return dict(inst.get_daemon_statuses()), time.time()
            if time.time() > deadline:
                pytest.fail(f"timed out waiting for {missing}" + daemon_log_says(daemon))
            time.sleep(POLL_EVERY)
    finally:
        inst.dispose()


@pytest.fixture(scope="module")
def daemon_run(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> DaemonRun:
    root = tmp_path_factory.mktemp("daemon_e2e")
    home, workspace, stock_config, stock_view = write_files(root)
    with (
        pytest.MonkeyPatch.context() as mp,
        dagster_daemon(home, workspace, root / "daemon.log") as daemon,
    ):
        clean_env(mp)  # for this process's instances; the daemon gets a clean env of its own
        request.config.stash[DAEMON_LOG] = daemon.log
        statuses, statuses_at = wait_for_the_daemon(daemon, home)
        daemon.stop()
    return DaemonRun(home, workspace, stock_config, stock_view, daemon, statuses, statuses_at)


@pytest.fixture
def rust(daemon_run: DaemonRun) -> Iterator[DagsterInstance]:
    inst = load_instance(daemon_run.home)
    assert isinstance(inst, dagster_rs.DagsterInstance)
    try:
        yield inst
    finally:
        inst.dispose()


@pytest.fixture
def stock(daemon_run: DaemonRun) -> Iterator[DagsterInstance]:
    inst = open_stock(daemon_run.home, daemon_run.stock_config)
    try:
        yield inst
    finally:
        inst.dispose()


def test_the_daemon_stopped_cleanly(daemon_run: DaemonRun) -> None:
    daemon = daemon_run.daemon
    assert daemon.returncode == 0, f"exit {daemon.returncode}" + daemon_log_says(daemon)
    assert not daemon.killed, f"had to SIGKILL {daemon.leftovers}" + daemon_log_says(daemon)
    assert "Daemon threads shut down." in daemon.output()


def test_rust_domains(rust: DagsterInstance) -> None:
    assert isinstance(rust, dagster_rs.DagsterInstance)
    assert {"runs", "events"} <= rust.rust_domains  # type: ignore[attr-defined]
    # Tightens by itself once the scheduling domain is implemented in Rust.
    if "scheduling" in IMPLEMENTED:
        assert "scheduling" in rust.rust_domains  # type: ignore[attr-defined]


def test_sensor_ticks_follow_the_cursor(rust: DagsterInstance) -> None:
    state = states_by_name(rust)[defs.SENSOR]
    assert state.instigator_type == InstigatorType.SENSOR
    assert state.status == InstigatorStatus.DECLARED_IN_CODE
    ticks = ticks_of(rust, state)[::-1]  # oldest first
    done = [t for t in ticks if t.status != TickStatus.STARTED]
    assert len(done) >= SENSOR_EVALUATIONS
    # Only the newest tick can have been cut short by the stop.
    assert all(t.status != TickStatus.STARTED for t in ticks[:-1])
    runs_by_key = {r.tags[RUN_KEY_TAG]: r for r in runs_tagged(rust, SENSOR_NAME_TAG, defs.SENSOR)}
    for n, tick in enumerate(done, start=1):
        requests = n % defs.REQUEST_EVERY == 0 and n // defs.REQUEST_EVERY <= defs.MAX_REQUESTS
        assert tick.tick_data.cursor == str(n), (n, tick)
        assert tick.instigator_type == InstigatorType.SENSOR
        assert tick.status != TickStatus.FAILURE, (n, tick.error)
        if requests:
            assert tick.status == TickStatus.SUCCESS, (n, tick)
            assert tick.run_keys == [f"evaluation-{n}"]
            run = runs_by_key[f"evaluation-{n}"]
            assert tick.run_ids == [run.run_id]
            assert run.tags[TICK_ID_TAG] == str(tick.tick_id)
            assert run.tags["e2e/evaluation"] == str(n)
        else:
            assert tick.status == TickStatus.SKIPPED, (n, tick)
            assert tick.skip_reason == f"evaluation {n} requests nothing"
            assert tick.run_ids == []
    assert sorted(runs_by_key) == sorted(
        f"evaluation-{k * defs.REQUEST_EVERY}" for k in range(1, defs.MAX_REQUESTS + 1)
    )
    # The state keeps the cursor of the last finished evaluation and the last run key.
    data = state.instigator_data
    assert isinstance(data, SensorInstigatorData)
    assert data.cursor == str(len(done))
    assert data.last_run_key == f"evaluation-{defs.REQUEST_EVERY * defs.MAX_REQUESTS}"
    assert data.min_interval == defs.SENSOR_INTERVAL
    assert data.last_tick_timestamp == done[-1].timestamp
    # Ticks filtered by status, as the UI asks for them.
    skipped = ticks_of(rust, state, statuses=[TickStatus.SKIPPED])
    assert [t.tick_id for t in skipped] == [
        t.tick_id for t in done[::-1] if t.status == TickStatus.SKIPPED
    ]
    assert [t.tick_id for t in ticks_of(rust, state, limit=2)] == [
        t.tick_id for t in ticks[::-1][:2]
    ]


def test_schedule_ticked_on_the_minute(rust: DagsterInstance, daemon_run: DaemonRun) -> None:
    state = states_by_name(rust)[defs.SCHEDULE]
    assert state.instigator_type == InstigatorType.SCHEDULE
    assert state.status == InstigatorStatus.DECLARED_IN_CODE
    data = state.instigator_data
    assert isinstance(data, ScheduleInstigatorData)
    assert data.cron_schedule == "* * * * *"
    assert data.start_timestamp is not None
    assert daemon_run.daemon.launched <= data.start_timestamp <= daemon_run.statuses_at
    ticks = ticks_of(rust, state)
    # One tick per minute from the schedule's start until the daemon was stopped (before the
    # next minute), newest first, each successful.
    due = due_ticks(state, daemon_run.statuses_at)
    assert due, "the daemon was stopped before the schedule's first tick was due"
    assert [t.timestamp for t in ticks] == due[::-1], ticks
    assert all(t.status == TickStatus.SUCCESS for t in ticks), [(t.status, t.error) for t in ticks]
    runs = {r.run_id: r for r in runs_tagged(rust, SCHEDULE_NAME_TAG, defs.SCHEDULE)}
    assert len(runs) == len(ticks)
    for tick in ticks:
        assert len(tick.run_ids) == 1
        run = runs[tick.run_ids[0]]
        scheduled = datetime.fromisoformat(run.tags[SCHEDULED_EXECUTION_TIME_TAG])
        assert scheduled == datetime.fromtimestamp(tick.timestamp, tz=timezone.utc)
        assert run.tags[TICK_ID_TAG] == str(tick.tick_id)


def test_every_run_succeeded_on_a_dagster_rs_run_worker(rust: DagsterInstance) -> None:
    runs = rust.get_runs()
    by_schedule = [r for r in runs if r.tags.get(SCHEDULE_NAME_TAG) == defs.SCHEDULE]
    by_sensor = [r for r in runs if r.tags.get(SENSOR_NAME_TAG) == defs.SENSOR]
    assert by_schedule and len(by_sensor) == defs.MAX_REQUESTS
    assert len(runs) == len(by_schedule) + len(by_sensor)
    for run in runs:
        assert run.job_name == defs.JOB
        assert run.status == DagsterRunStatus.SUCCESS, run
        record = rust.get_run_record_by_id(run.run_id)
        assert record is not None and record.start_time and record.end_time
        stats = rust.get_run_stats(run.run_id)
        assert stats.steps_succeeded == 2 and stats.steps_failed == 0
        # The run worker the code server started rebuilt a dagster-rs instance from the ref.
        said = [e.user_message for e in rust.all_logs(run.run_id) if e.dagster_event is None]
        assert f"{defs.INSTANCE_CLASS_PREFIX}dagster_rs.instance.DagsterInstance" in said
        # Queued by the daemon's submission, launched by the queued run coordinator daemon.
        lifecycle = [
            e.dagster_event_type
            for e in rust.all_logs(run.run_id)
            if e.dagster_event_type in RUN_LIFECYCLE
        ]
        assert lifecycle == list(RUN_LIFECYCLE), run.run_id


def test_daemon_heartbeats_were_fresh(rust: DagsterInstance, daemon_run: DaemonRun) -> None:
    statuses = daemon_run.statuses
    assert set(CHECKED_DAEMONS) <= set(statuses)
    assert set(statuses) == set(rust.get_required_daemon_types())
    for status in statuses.values():
        assert status.required and status.healthy, status
        beat = status.last_heartbeat
        assert beat is not None and not beat.errors, status
        # Written by this daemon, within a heartbeat interval (the scheduler's: a minute) of
        # the moment it was read.
        assert daemon_run.daemon.launched <= beat.timestamp <= daemon_run.statuses_at
        assert daemon_run.statuses_at - beat.timestamp <= 90, status
    # Read afterwards, stock's own health check agrees for the moment the daemon was stopped.
    at_stop = get_daemon_statuses(
        rust,
        rust.get_required_daemon_types(),
        curr_time_seconds=daemon_run.statuses_at,
        heartbeat_tolerance_seconds=60,
    )
    assert all(s.healthy for s in at_stop.values()), at_stop


def test_daemon_cursors(rust: DagsterInstance) -> None:
    cursors = rust.daemon_cursor_storage.get_cursor_values(CONSUMER_KEYS)
    assert set(cursors) == {SUCCESS_CURSOR, FAILURE_CURSOR}
    last_success = last_run_success_id(rust)
    assert last_success is not None
    assert int(cursors[SUCCESS_CURSOR]) == last_success
    # No run failed: that cursor stays where the consumer started, before the last success.
    assert 0 <= int(cursors[FAILURE_CURSOR]) < last_success


def snapshot(inst: DagsterInstance) -> dict[str, Any]:
    """Everything the daemon wrote, serialized as Dagster serializes it, read the ways the
    daemons, the UI and the CLI read it."""
    states = sorted(inst.all_instigator_state(), key=lambda s: s.instigator_name)
    instigator_tags = {SCHEDULE_NAME_TAG: defs.SCHEDULE, SENSOR_NAME_TAG: defs.SENSOR}
    out: dict[str, Any] = {
        "states": [serialize_value(s) for s in states],
        "state_by_selector": [
            serialize_value(inst.get_instigator_state(s.instigator_origin_id, s.selector_id))
            for s in states
        ],
        "repository_states": [
            [
                x.instigator_name
                for x in inst.all_instigator_state(
                    s.repository_origin_id,
                    s.repository_selector_id,
                    s.instigator_type,
                    {InstigatorStatus.DECLARED_IN_CODE},
                )
            ]
            for s in states
        ],
        "ticks": {
            s.instigator_name: [serialize_value(t) for t in ticks_of(inst, s)] for s in states
        },
        "skipped": {
            s.instigator_name: [t.tick_id for t in ticks_of(inst, s, statuses=[TickStatus.SKIPPED])]
            for s in states
        },
        "window": {
            s.instigator_name: [
                t.tick_id
                for t in ticks_of(
                    inst, s, after=ticks_of(inst, s)[-1].timestamp, before=time.time(), limit=3
                )
            ]
            for s in states
        },
        "runs": [
            (
                r.dagster_run.run_id,
                serialize_value(r.dagster_run),
                r.create_timestamp,
                r.start_time,
                r.end_time,
            )
            for r in inst.get_run_records()
        ],
        "runs_by_instigator": {
            tag: (
                [r.run_id for r in inst.get_runs(RunsFilter(tags={tag: name}))],
                inst.get_runs_count(RunsFilter(tags={tag: name})),
            )
            for tag, name in instigator_tags.items()
        },
        "run_tag_keys": sorted(inst.get_run_tag_keys()),
        "run_tags": inst.get_run_tags([*instigator_tags, RUN_KEY_TAG]),
        "events": {
            r.run_id: [
                (e.dagster_event_type, e.step_key, e.user_message) for e in inst.all_logs(r.run_id)
            ]
            for r in inst.get_runs()
        },
        "heartbeats": serialize_value(dict(inst.get_daemon_heartbeats())),
        "cursors": dict(inst.daemon_cursor_storage.get_cursor_values(CONSUMER_KEYS)),
        "required": list(inst.get_required_daemon_types()),
    }
    return out


def test_stock_reads_what_the_daemon_wrote(
    rust: DagsterInstance, stock: DagsterInstance, daemon_run: DaemonRun
) -> None:
    got_rust, got_stock = snapshot(rust), snapshot(stock)
    assert (
        got_stock["ticks"][defs.SENSOR] and got_stock["runs"] and got_stock["window"][defs.SENSOR]
    )
    for key in got_rust:
        assert got_stock[key] == got_rust[key], key
    # Stock's health check over the same heartbeats, at the same moment.
    at = daemon_run.statuses_at
    assert stock.get_required_daemon_types() == rust.get_required_daemon_types()
    assert get_daemon_statuses(
        stock, stock.get_required_daemon_types(), curr_time_seconds=at
    ) == get_daemon_statuses(rust, rust.get_required_daemon_types(), curr_time_seconds=at)


KINDS = ("rust", "stock")


def without_code_server_log(out: str) -> str:
    """The command's output without the log lines of the code server it started (on the same
    stdout): those carry the time and the server's pid, which differ from run to run."""
    return "".join(
        line for line in out.splitlines(keepends=True) if " - dagster.code_server - " not in line
    )


def _collect(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        # A hung command and the code server it started (its own process group) go together.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out, err


def test_cli_lists_the_same_on_both_homes(daemon_run: DaemonRun) -> None:
    """`dagster schedule list`, `sensor list` (through the workspace's code server), `schedule
    debug` (storage only) and `dagster-daemon liveness-check` print the same for the dagster-rs
    home and a stock home over the same files."""
    ws = str(daemon_run.workspace)
    commands = {
        "schedule list": ("dagster", "schedule", "list", "-w", ws),
        "sensor list": ("dagster", "sensor", "list", "-w", ws),
        "schedule debug": ("dagster", "schedule", "debug"),
        # Heartbeats within the default tolerance (30 minutes) of every required daemon.
        "liveness-check": ("dagster-daemon", "liveness-check"),
    }
    # All at once: each starts a Python process (and a code server), seconds of CPU apiece.
    procs = {
        (name, kind): run_cli(home, daemon_run.workspace, *args)
        for name, args in commands.items()
        for kind, home in zip(KINDS, (daemon_run.home, daemon_run.stock_view), strict=True)
    }
    results = {key: _collect(proc) for key, proc in procs.items()}
    for (name, kind), (code, out, err) in results.items():
        assert code == 0, f"{kind} {name}: exit {code}\n{out}\n{err[-5000:]}"
    for name in commands:
        rust_out, stock_out = (without_code_server_log(results[(name, k)][1]) for k in KINDS)
        assert rust_out == stock_out, f"{name}\n--- rust\n{rust_out}\n--- stock\n{stock_out}"
    schedule_list = results[("schedule list", "rust")][1]
    assert f"Schedule: {defs.SCHEDULE} [RUNNING]" in schedule_list
    assert "Cron Schedule: * * * * *" in schedule_list
    assert f"Sensor: {defs.SENSOR} [RUNNING]" in results[("sensor list", "rust")][1]
    assert results[("liveness-check", "rust")][1] == "Daemon live\n"
    debug = results[("schedule debug", "rust")][1]
    for name in (defs.SCHEDULE, defs.SENSOR):
        assert f"'{name}': {{'status': 'DECLARED_IN_CODE'" in debug
