"""Watching a run's event log on a dagster-rs instance (`watch_event_logs` / `end_watch_event_logs`).

The webserver's run-log subscription watches a run while other processes (the run worker, its
step subprocesses) write it. A watcher must see every event of the run exactly once, in storage
order, with cursors that resume where it left off; ending a watch, a callback returning a terminal
run status and disposing the instance must stop delivery, and a failing callback must not.

Waits poll with generous deadlines; "nothing more arrives" is shown by a sentinel event written
afterwards (delivery is in order, so once the sentinel is seen, anything before it would have been).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.event_api import EventLogCursor
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRunStatus

import dagster_rs
from dagster_rs.storage.event_log_storage import RustEventLogStorage
from tests.conftest import load_instance, write_home
from tests.events.helpers import engine_entry
from tests.processes import (
    assert_clean_exit,
    communicate,
    reaped,
    spawn,
    wait_for,
    wait_ready,
    write_script,
)

DEADLINE = 60.0

# Loads the instance from the home's dagster.yaml, says READY, waits for the go-file, then writes
# `count` engine events "ev-00000".. into the run: single events, batches of varying size and
# instance.report_engine_event, with short pauses so that watchers poll mid-stream.
WRITER = """\
import logging, os, sys, time
from dagster import DagsterInstance
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.events.log import EventLogEntry

home, run_id, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
instance = DagsterInstance.from_config(home)
storage = instance.event_log_storage
print("CLASS", type(storage).__name__, flush=True)
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)


def entry(i):
    return EventLogEntry(
        error_info=None, level=logging.INFO, user_message="", run_id=run_id,
        timestamp=time.time(), job_name="watched_job",
        dagster_event=DagsterEvent(
            DagsterEventType.ENGINE_EVENT.value, job_name="watched_job",
            message=f"ev-{i:05d}", event_specific_data=EngineEventData({}),
        ),
    )


i = 0
size = 1
while i < count:
    n = min(size, count - i)
    if n == 1 and i % 3 == 0:
        instance.report_engine_event(f"ev-{i:05d}", job_name="watched_job", run_id=run_id)
    elif n == 1:
        storage.store_event(entry(i))
    else:
        storage.store_event_batch([entry(j) for j in range(i, i + n)])
    i += n
    size = size % 17 + 1
    if i % 40 < n:
        time.sleep(0.03)
instance.dispose()
print("DONE", i, flush=True)
"""

# Executes a small job in process with a given run id: a real run's events (run and step events,
# logs, outputs, a materialization) written by a process other than the watcher's.
RUNNER = """\
import os, sys, time
from dagster import DagsterInstance, In, Out, job, op, AssetMaterialization

home, run_id, go = sys.argv[1], sys.argv[2], sys.argv[3]
instance = DagsterInstance.from_config(home)
print("CLASS", type(instance.event_log_storage).__name__, flush=True)
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)


@op
def first(context):
    for i in range(5):
        context.log.info(f"first says {i}")
    return 1


@op
def second(context, x):
    context.log_event(AssetMaterialization(asset_key="watched_asset"))
    context.log.warning("second warns")
    return x + 1


@op
def third(context, y):
    context.log.info(f"third got {y}")
    return y * 2


@job
def watched_job():
    third(second(first()))


result = watched_job.execute_in_process(instance=instance, run_id=run_id)
instance.dispose()
print("DONE", result.success, flush=True)
"""


def message_of(entry: EventLogEntry) -> str:
    return entry.dagster_event.message if entry.dagster_event else entry.user_message


class Recorder:
    """A watch callback that records what it is given, optionally returning or raising."""

    def __init__(self, respond: Callable[[EventLogEntry], Any] | None = None):
        self.calls: list[tuple[EventLogEntry, str]] = []
        self.threads: set[int] = set()
        self._respond = respond
        self._lock = threading.Lock()

    def __call__(self, entry: EventLogEntry, cursor: str) -> Any:
        with self._lock:
            self.calls.append((entry, cursor))
            self.threads.add(threading.get_ident())
        return self._respond(entry) if self._respond else None

    @property
    def messages(self) -> list[str]:
        with self._lock:
            return [message_of(entry) for entry, _ in self.calls]

    @property
    def storage_ids(self) -> list[int]:
        with self._lock:
            return [EventLogCursor.parse(cursor).storage_id() for _, cursor in self.calls]

    def saw(self, message: str) -> bool:
        return message in self.messages


def _store(inst: DagsterInstance, run_id: str, *messages: str) -> None:
    entries = [engine_entry(run_id, m, job_name="watched_job") for m in messages]
    inst.event_log_storage.store_event_batch(entries)


def _records(inst: DagsterInstance, run_id: str) -> list[tuple[int, EventLogEntry]]:
    conn = inst.get_records_for_run(run_id)
    return [(r.storage_id, r.event_log_entry) for r in conn.records]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return write_home(tmp_path / "home", "rust")


@pytest.fixture
def rust_inst(home: Path) -> Iterator[DagsterInstance]:
    instance = load_instance(home)
    assert isinstance(instance, dagster_rs.DagsterInstance)
    assert isinstance(instance.event_log_storage, RustEventLogStorage)
    try:
        yield instance
    finally:
        instance.dispose()


@pytest.fixture
def inst(rust_inst: DagsterInstance) -> DagsterInstance:
    return rust_inst


def _sentinel(inst: DagsterInstance, run_id: str, watcher: Recorder, name: str) -> None:
    """Write `name` to the run and wait for `watcher` to see it."""
    _store(inst, run_id, name)
    wait_for(lambda: watcher.saw(name), f"{name} to reach the watcher")


def _run_watched_writer(
    inst: DagsterInstance,
    home: Path,
    tmp_path: Path,
    source: str,
    run_id: str,
    *args: str,
    domains: str | None = None,
) -> tuple[Recorder, str, str]:
    """Watch `run_id` on `inst` (from its start), then run `source` as a writer process on `home`
    (arguments: home, run id, *args, go-file) to its clean end; the watcher, the class the writer
    loaded and its stdout."""
    watcher = Recorder()
    inst.watch_event_logs(run_id, None, watcher)
    script = write_script(tmp_path / "writer.py", source)
    go = tmp_path / "go"
    proc = spawn(script, str(home), run_id, *args, str(go), domains=domains)
    with reaped(proc):
        loaded = wait_ready(proc)
        go.touch()
        out, err = communicate(proc, timeout=300)
    assert_clean_exit("writer", proc.returncode, err)
    return watcher, loaded, out


# -- a concurrent writer process -----------------------------------------------------------------


@pytest.mark.parametrize("writer_events", ["rust", "stock"])
def test_watcher_sees_every_event_of_a_concurrent_writer_once_in_order(
    home: Path, rust_inst: DagsterInstance, tmp_path: Path, writer_events: str
) -> None:
    """The writer process writes with dagster-rs, or with stock's event log (events domain off)."""
    inst = rust_inst
    count = 400
    run_id = "watched-run"
    # Watched from before the run has a single event (its shard does not exist yet).
    watcher, loaded, out = _run_watched_writer(
        inst,
        home,
        tmp_path,
        WRITER,
        run_id,
        str(count),
        domains="none" if writer_events == "stock" else None,
    )
    expected_class = "SqliteEventLogStorage" if writer_events == "stock" else "RustEventLogStorage"
    assert loaded == expected_class
    assert f"DONE {count}" in out

    expected = [f"ev-{i:05d}" for i in range(count)]
    wait_for(lambda: len(watcher.calls) >= count, f"{count} events")
    _sentinel(inst, run_id, watcher, "sentinel")

    assert watcher.messages == [*expected, "sentinel"]
    stored = _records(inst, run_id)
    assert [sid for sid, _ in stored] == watcher.storage_ids
    assert [entry for _, entry in stored] == [entry for entry, _ in watcher.calls]
    ids = watcher.storage_ids
    assert ids == sorted(set(ids))


def test_watcher_sees_a_real_run_written_by_another_process(
    home: Path, rust_inst: DagsterInstance, tmp_path: Path
) -> None:
    inst = rust_inst
    run_id = "0b7c3a54-5c1e-4e0c-9f6e-2d8f3c7a1b21"
    watcher, loaded, out = _run_watched_writer(inst, home, tmp_path, RUNNER, run_id)
    assert loaded == "RustEventLogStorage"
    assert "DONE True" in out

    stored = _records(inst, run_id)
    types = [e.dagster_event_type for _, e in stored if e.dagster_event]
    assert types[0] == DagsterEventType.RUN_START
    assert types[-1] == DagsterEventType.RUN_SUCCESS
    assert DagsterEventType.ASSET_MATERIALIZATION in types
    wait_for(lambda: len(watcher.calls) >= len(stored), f"{len(stored)} events of the run")
    _sentinel(inst, run_id, watcher, "sentinel")
    assert watcher.calls[:-1] == [
        (entry, str(EventLogCursor.from_storage_id(sid))) for sid, entry in stored
    ]


# -- cursors -------------------------------------------------------------------------------------


def test_watch_from_a_storage_id_cursor_delivers_only_later_events(inst: DagsterInstance) -> None:
    run_id = "cursor-run"
    _store(inst, run_id, *[f"before-{i}" for i in range(10)])
    stored = _records(inst, run_id)
    cut = stored[4][0]

    watcher = Recorder()
    inst.watch_event_logs(run_id, EventLogCursor.from_storage_id(cut).to_string(), watcher)
    _store(inst, run_id, "after-0")
    _store(inst, run_id, "after-1", "after-2")
    _sentinel(inst, run_id, watcher, "sentinel")

    assert watcher.messages == [
        *[f"before-{i}" for i in range(5, 10)],
        "after-0",
        "after-1",
        "after-2",
        "sentinel",
    ]
    assert min(watcher.storage_ids) > cut
    # Each delivered cursor resumes a read right after its event.
    _, cursor = watcher.calls[2]
    later = inst.get_records_for_run(run_id, cursor=cursor).records
    assert [message_of(r.event_log_entry) for r in later] == watcher.messages[3:]


def test_watch_from_the_last_cursor_delivers_only_new_events(inst: DagsterInstance) -> None:
    """As the webserver does: page through the run, then watch from the page's cursor."""
    run_id = "paged-run"
    _store(inst, run_id, *[f"old-{i}" for i in range(7)])
    page = inst.get_records_for_run(run_id, limit=1000)
    watcher = Recorder()
    inst.watch_event_logs(run_id, page.cursor, watcher)
    _store(inst, run_id, "new-0", "new-1")
    _sentinel(inst, run_id, watcher, "sentinel")
    assert watcher.messages == ["new-0", "new-1", "sentinel"]


def test_watch_from_an_offset_cursor(inst: DagsterInstance) -> None:
    run_id = "offset-run"
    _store(inst, run_id, *[f"old-{i}" for i in range(6)])
    watcher = Recorder()
    inst.watch_event_logs(run_id, EventLogCursor.from_offset(4).to_string(), watcher)
    _store(inst, run_id, "new-0")
    _sentinel(inst, run_id, watcher, "sentinel")
    assert watcher.messages == ["old-4", "old-5", "new-0", "sentinel"]


def test_watch_without_cursor_starts_at_the_first_event(inst: DagsterInstance) -> None:
    run_id = "from-start"
    _store(inst, run_id, "a", "b")
    watcher = Recorder()
    inst.watch_event_logs(run_id, None, watcher)
    _sentinel(inst, run_id, watcher, "c")
    assert watcher.messages == ["a", "b", "c"]


# -- stopping and not stopping -------------------------------------------------------------------


def test_end_watch_stops_delivery(inst: DagsterInstance) -> None:
    run_id = "ended-run"
    ended, witness = Recorder(), Recorder()
    inst.watch_event_logs(run_id, None, ended)
    inst.watch_event_logs(run_id, None, witness)
    _store(inst, run_id, "one", "two")
    wait_for(lambda: ended.saw("two"), "the first events")
    inst.end_watch_event_logs(run_id, ended)

    _store(inst, run_id, "three")
    _store(inst, run_id, "four")
    _sentinel(inst, run_id, witness, "sentinel-1")
    _sentinel(inst, run_id, witness, "sentinel-2")
    assert ended.messages == ["one", "two"]
    assert witness.messages == ["one", "two", "three", "four", "sentinel-1", "sentinel-2"]

    # Ending it again, or a watch that never was, is harmless.
    inst.end_watch_event_logs(run_id, ended)
    inst.end_watch_event_logs("never-watched", ended)


@pytest.mark.parametrize(
    "status",
    [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED],
    ids=lambda s: s.value,
)
def test_callback_returning_a_terminal_status_ends_the_watch(
    inst: DagsterInstance, status: DagsterRunStatus
) -> None:
    run_id = f"terminal-{status.value.lower()}"
    ending = Recorder(respond=lambda e: status if message_of(e) == "stop" else None)
    witness = Recorder()
    inst.watch_event_logs(run_id, None, ending)
    inst.watch_event_logs(run_id, None, witness)
    _store(inst, run_id, "a")
    _store(inst, run_id, "b")
    _store(inst, run_id, "stop")
    wait_for(lambda: ending.saw("stop"), "the stopping event")

    _store(inst, run_id, "c")
    _store(inst, run_id, "d")
    _sentinel(inst, run_id, witness, "sentinel-1")
    _sentinel(inst, run_id, witness, "sentinel-2")
    assert ending.messages == ["a", "b", "stop"]
    assert witness.messages == ["a", "b", "stop", "c", "d", "sentinel-1", "sentinel-2"]


def test_callback_returning_a_non_terminal_status_keeps_watching(inst: DagsterInstance) -> None:
    run_id = "non-terminal"
    watcher = Recorder(respond=lambda e: DagsterRunStatus.STARTED)
    inst.watch_event_logs(run_id, None, watcher)
    _store(inst, run_id, "a")
    wait_for(lambda: watcher.saw("a"), "a")
    _sentinel(inst, run_id, watcher, "b")
    assert watcher.messages == ["a", "b"]


def test_callback_raising_does_not_stop_later_events(inst: DagsterInstance) -> None:
    run_id = "raising-run"

    def explode(entry: EventLogEntry) -> None:
        if message_of(entry).startswith("boom"):
            raise RuntimeError("callback failure on purpose")

    watcher = Recorder(respond=explode)
    inst.watch_event_logs(run_id, None, watcher)
    _store(inst, run_id, "a", "boom-1", "b")
    wait_for(lambda: watcher.saw("b"), "the event after the first failure")
    _store(inst, run_id, "boom-2")
    _store(inst, run_id, "c", "d")
    _sentinel(inst, run_id, watcher, "sentinel")
    assert watcher.messages == ["a", "boom-1", "b", "boom-2", "c", "d", "sentinel"]


def test_two_watchers_on_one_run_each_get_every_event(inst: DagsterInstance) -> None:
    run_id, other_run = "shared-run", "other-run"
    first, second, other = Recorder(), Recorder(), Recorder()
    inst.watch_event_logs(run_id, None, first)
    inst.watch_event_logs(run_id, None, second)
    inst.watch_event_logs(other_run, None, other)
    expected = []
    for i in range(30):
        batch = [f"m-{i}-{j}" for j in range(i % 4 + 1)]
        _store(inst, run_id, *batch)
        expected += batch
        if i % 10 == 0:
            _store(inst, other_run, f"other-{i}")
    _sentinel(inst, run_id, first, "sentinel")
    _sentinel(inst, other_run, other, "other-sentinel")
    wait_for(lambda: second.saw("sentinel"), "the sentinel at the second watcher")

    assert first.messages == [*expected, "sentinel"]
    assert second.messages == first.messages
    assert second.storage_ids == first.storage_ids
    assert other.messages == ["other-0", "other-10", "other-20", "other-sentinel"]


def test_a_watcher_added_later_gets_its_own_cursor(inst: DagsterInstance) -> None:
    run_id = "late-run"
    early = Recorder()
    inst.watch_event_logs(run_id, None, early)
    _store(inst, run_id, "a", "b")
    wait_for(lambda: early.saw("b"), "b")
    late = Recorder()
    inst.watch_event_logs(run_id, early.calls[-1][1], late)
    _sentinel(inst, run_id, late, "c")
    _sentinel(inst, run_id, late, "d")
    wait_for(lambda: early.saw("d"), "d at the early watcher")
    _sentinel(inst, run_id, early, "e")
    assert early.messages == ["a", "b", "c", "d", "e"]
    wait_for(lambda: late.saw("e"), "e at the late watcher")
    assert late.messages == ["c", "d", "e"]


# -- disposal ------------------------------------------------------------------------------------


def _other_os_threads() -> set[str]:
    """The OS threads of this process not started by Python (the core's watch thread is one;
    a foreign thread that called into Python may be listed as a dummy thread, so those count)."""
    python = {
        t.native_id
        for t in threading.enumerate()
        if not isinstance(t, threading._DummyThread)  # noqa: SLF001
    }
    threads = set()
    for task in os.listdir("/proc/self/task"):
        if int(task) in python:
            continue
        try:
            name = Path(f"/proc/self/task/{task}/comm").read_text().strip()
        except FileNotFoundError:  # exited meanwhile
            continue
        threads.add(f"{task}:{name}")
    return threads


def test_dispose_stops_the_watch_thread_promptly(home: Path) -> None:
    inst = load_instance(home)
    baseline = _other_os_threads()
    watcher = Recorder()
    try:
        inst.watch_event_logs("disposed-run", None, watcher)
        inst.watch_event_logs("disposed-other", None, watcher)
        _store(inst, "disposed-run", "a")
        wait_for(lambda: watcher.saw("a"), "a")
        assert watcher.threads and threading.get_ident() not in watcher.threads
        watch_threads = _other_os_threads() - baseline
        assert watch_threads, "no thread of the core is delivering the watch"
    finally:
        started = time.monotonic()
        inst.dispose()
        took = time.monotonic() - started
    assert took < 10, f"dispose took {took:.1f}s"
    wait_for(
        lambda: not (watch_threads & _other_os_threads()), "the watch thread to exit", timeout=10
    )

    # Events written afterwards (by another instance on the home) reach no callback.
    writer = load_instance(home)
    try:
        _store(writer, "disposed-run", "b")
        witness = Recorder()
        writer.watch_event_logs("disposed-run", None, witness)
        wait_for(lambda: witness.saw("b"), "b at a live watcher")
        _sentinel(writer, "disposed-run", witness, "sentinel")
    finally:
        writer.dispose()
    assert watcher.messages == ["a"]


def test_dispose_while_a_callback_is_busy(home: Path) -> None:
    """dispose() from another thread while callbacks are running must return, and no callback
    may run after it returned."""
    inst = load_instance(home)
    baseline = _other_os_threads()
    in_callback = threading.Event()
    after_dispose: list[str] = []
    disposed = threading.Event()

    def slow(entry: EventLogEntry) -> None:
        in_callback.set()
        if disposed.is_set():
            after_dispose.append(message_of(entry))
        time.sleep(0.02)

    watcher = Recorder(respond=slow)
    inst.watch_event_logs("busy-run", None, watcher)
    backlog = 400  # 8 s of callbacks
    _store(inst, "busy-run", *[f"m-{i}" for i in range(backlog)])
    assert in_callback.wait(DEADLINE)
    watch_threads = _other_os_threads() - baseline
    assert watch_threads

    done = threading.Event()

    def dispose() -> None:
        inst.dispose()
        disposed.set()
        done.set()

    disposer = threading.Thread(target=dispose, daemon=True)
    disposer.start()
    assert done.wait(30), "dispose() did not return while a callback was running"
    delivered = len(watcher.calls)
    assert delivered < backlog, "dispose() waited for the whole backlog to be delivered"
    wait_for(
        lambda: not (watch_threads & _other_os_threads()), "the watch thread to exit", timeout=10
    )
    assert len(watcher.calls) == delivered
    assert after_dispose == []
