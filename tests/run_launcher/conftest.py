"""Fixtures of the run_launcher suite: instance pairs (stock, dagster-rs) configured with a run
launcher / coordinator of `tests.run_launcher.launchers`, and runs that can be submitted."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.code_pointer import FileCodePointer
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from tests.conftest import InstancePair, make_instance
from tests.runs.helpers import job_origin, rid

DEFS = Path(__file__).with_name("launch_defs.py")


def launcher_yaml(
    launcher: str | None = None, coordinator: str | None = None, extra: str = ""
) -> str:
    text = ""
    if launcher:
        text += f"run_launcher:\n  module: tests.run_launcher.launchers\n  class: {launcher}\n"
    if coordinator:
        text += (
            f"run_coordinator:\n  module: tests.run_launcher.launchers\n  class: {coordinator}\n"
        )
    return text + extra


def make_pair(tmp_path: Path, extra_yaml: str) -> InstancePair:
    pair = InstancePair(
        make_instance(tmp_path, "stock", extra_yaml), make_instance(tmp_path, "rust", extra_yaml)
    )
    assert "run_launcher" in pair.rust.rust_domains  # type: ignore[attr-defined]
    return pair


@pytest.fixture
def pair_with(tmp_path: Path) -> Iterator[Callable[..., InstancePair]]:
    made: list[InstancePair] = []

    def build(**kwargs: Any) -> InstancePair:
        pair = make_pair(tmp_path / f"p{len(made)}", launcher_yaml(**kwargs))
        pair.spy = spy_steps(pair.rust)  # type: ignore[attr-defined]
        made.append(pair)
        return pair

    yield build
    for pair in made:
        pair.dispose()


def code_origin(job_name: str) -> JobPythonOrigin:
    """A job of `launch_defs.py`, as a run worker loads it."""
    return JobPythonOrigin(
        job_name,
        RepositoryPythonOrigin(
            executable_path=sys.executable,
            code_pointer=FileCodePointer(python_file=str(DEFS), fn_name="defs"),
        ),
    )


def submittable_run(n: int, status: DagsterRunStatus = DagsterRunStatus.NOT_STARTED) -> DagsterRun:
    """A run with both origins set, as `submit_run` requires (never executed by these launchers)."""
    return DagsterRun(
        job_name="hello_job",
        run_id=rid(n),
        status=status,
        remote_job_origin=job_origin("hello_job"),
        job_code_origin=code_origin("hello_job"),
    )


def add(inst: DagsterInstance, run: DagsterRun) -> DagsterRun:
    return inst.add_run(run)


def events_view(inst: DagsterInstance, run_id: str) -> list[tuple[str | None, str, Any]]:
    """A run's events as a comparison sees them: type, message, and an engine error's class and
    message (timestamps, pids and stack frames are the process's own)."""
    out: list[tuple[str | None, str, Any]] = []
    for entry in inst.all_logs(run_id):
        event = entry.dagster_event
        error = None
        data = event.event_specific_data if event else None
        if data is not None and getattr(data, "error", None) is not None:
            error = (data.error.cls_name, data.error.message)
        out.append((event.event_type_value if event else None, entry.message, error))
    return out


def run_view(inst: DagsterInstance, run_id: str) -> tuple[str, dict[str, str]] | None:
    run = inst.get_run_by_id(run_id)
    return None if run is None else (run.status.value, dict(run.tags))


def _rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _event_body(text: str) -> Any:
    """A stored event body without what is the process's own: its timestamp and the frames of
    an engine error's stack (stock's and the facade's launch paths are different files)."""
    body = json.loads(text)
    body.pop("timestamp")
    data = (body.get("dagster_event") or {}).get("event_specific_data") or {}
    error = data.get("error")
    while error:
        error["stack"] = len(error["stack"]) > 0
        error = error.get("cause") or error.get("context")
    return body


def rows_view(inst: DagsterInstance, run_id: str) -> dict[str, Any]:
    """What the files hold for a run, as stored: its runs row and tags in runs.db, its events on
    its shard and in the index (bodies parsed, timestamps and stack frames aside)."""
    history = Path(inst.root_directory) / "history"
    runs = _rows(
        history / "runs.db",
        "SELECT run_id, status, run_body, start_time IS NULL, end_time IS NULL, partition,"
        " partition_set, update_timestamp IS NULL FROM runs WHERE run_id = ?",
        run_id,
    )
    tags = _rows(
        history / "runs.db", "SELECT key, value FROM run_tags WHERE run_id = ? ORDER BY id", run_id
    )
    columns = "run_id, event, dagster_event_type, step_key, asset_key, partition"
    shard = _rows(
        history / "runs" / f"{run_id}.db", f"SELECT {columns} FROM event_logs ORDER BY id"
    )
    index = _rows(
        history / "runs" / "index.db",
        f"SELECT {columns} FROM event_logs WHERE run_id = ? ORDER BY id",
        run_id,
    )

    def events(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [(r[0], _event_body(r[1]), *r[2:]) for r in rows]

    return {"runs": runs, "tags": tags, "shard": events(shard), "index": events(index)}


class StepSpy:
    """The native run_launcher store of an instance, recording which steps it was asked."""

    def __init__(self, store: Any, calls: list[str]):
        self._store = store
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in ("launch", "resume", "fail"):
            self._calls.append(name)
        return attr


class CoreSpy:
    """Stands in for a facade's `_rs_core`, handing out a `StepSpy` of its run_launcher store."""

    def __init__(self, core: Any):
        self._core = core
        self.steps: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    @property
    def run_launcher(self) -> StepSpy:
        return StepSpy(self._core.run_launcher, self.steps)


def spy_steps(inst: DagsterInstance) -> CoreSpy:
    spy = CoreSpy(inst._rs_core)  # type: ignore[attr-defined]
    inst._rs_core = spy  # type: ignore[attr-defined]
    return spy
