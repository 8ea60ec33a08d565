"""When the facade's submit_run / launch_run / resume_run take the native steps and when stock's
methods (an overriding instance, an event listener, the domain switched off, a run body of
another Dagster version), the WILL_RETRY tag after a failure, the default coordinator, and the
plans of the steps' runs.db statements — each differential against stock."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import WILL_RETRY_TAG

import dagster_rs
from tests.conftest import InstancePair, call, make_instance
from tests.run_launcher import launchers
from tests.run_launcher.conftest import (
    add,
    events_view,
    launcher_yaml,
    make_pair,
    rows_view,
    run_view,
    spy_steps,
    submittable_run,
)
from tests.runs.helpers import rid


def _same(pair: InstancePair, run_id: str, op: Any) -> Any:
    a, b = call(op, pair.stock), call(op, pair.rust)
    assert (a.error, a.message) == (b.error, b.message)
    assert run_view(pair.stock, run_id) == run_view(pair.rust, run_id)
    assert events_view(pair.stock, run_id) == events_view(pair.rust, run_id)
    assert rows_view(pair.stock, run_id) == rows_view(pair.rust, run_id)
    return b


# -- stock's path when the native steps would not be what stock does ---------------------------


class _ReportingInstance(dagster_rs.DagsterInstance):
    """Overrides one method stock's failure path goes through."""

    reported: list[str] = []

    def report_engine_event(self, message, dagster_run=None, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        _ReportingInstance.reported.append(message)
        return super().report_engine_event(message, dagster_run, *args, **kwargs)


def test_an_overriding_instance_is_called(tmp_path: Path) -> None:
    yaml = launcher_yaml("RaisingRunLauncher")
    home = tmp_path / "sub"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "instance_class:\n  module: tests.run_launcher.test_native_steps\n"
        "  class: _ReportingInstance\n" + yaml
    )
    pair = InstancePair(
        make_instance(tmp_path, "stock", yaml), DagsterInstance.from_config(str(home))
    )
    with pair:
        assert type(pair.rust) is _ReportingInstance
        assert "run_launcher" in pair.rust.rust_domains  # type: ignore[attr-defined]
        assert pair.rust._rs_launch_steps(rid(1)) is None  # type: ignore[attr-defined]
        spy = spy_steps(pair.rust)
        _ReportingInstance.reported.clear()
        for inst in (pair.stock, pair.rust):
            add(inst, submittable_run(1))
        got = _same(pair, rid(1), lambda i: i.launch_run(rid(1), None))
        assert got.error is RuntimeError
        assert _ReportingInstance.reported == [f"RuntimeError: no capacity to launch {rid(1)}\n"]
        assert spy.steps == []


def test_an_event_listener_gets_every_event(tmp_path: Path) -> None:
    with make_pair(tmp_path, launcher_yaml("RaisingRunLauncher")) as pair:
        spy = spy_steps(pair.rust)
        heard: dict[str, list[str | None]] = {"stock": [], "rust": []}
        for side, inst in (("stock", pair.stock), ("rust", pair.rust)):
            add(inst, submittable_run(1))
            add(inst, submittable_run(2))

            def listen(entry: EventLogEntry, side: str = side) -> None:
                heard[side].append(entry.dagster_event_type and entry.dagster_event_type.value)

            inst.add_event_listener(rid(1), listen)
        assert pair.rust._rs_launch_steps(rid(1)) is None  # type: ignore[attr-defined]
        # Another run of the same instance still takes the native steps.
        assert pair.rust._rs_launch_steps(rid(2)) is not None  # type: ignore[attr-defined]
        _same(pair, rid(1), lambda i: i.launch_run(rid(1), None))
        assert (
            heard["rust"]
            == heard["stock"]
            == [
                "PIPELINE_STARTING",
                "ENGINE_EVENT",
                "PIPELINE_FAILURE",
            ]
        )
        assert spy.steps == []
        _same(pair, rid(2), lambda i: i.launch_run(rid(2), None))
        assert spy.steps == ["launch", "fail"]


def test_the_domain_switched_off_is_stocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_RS_DOMAINS", "runs,events")
    yaml = launcher_yaml("ResumingRunLauncher")
    with InstancePair(
        make_instance(tmp_path, "stock", yaml), make_instance(tmp_path, "rust", yaml)
    ) as pair:
        assert "run_launcher" not in pair.rust.rust_domains  # type: ignore[attr-defined]
        assert pair.rust._rs_launch_steps(rid(1)) is None  # type: ignore[attr-defined]
        assert pair.rust._rs_run_launcher() is None  # type: ignore[attr-defined]
        for inst in (pair.stock, pair.rust):
            add(inst, submittable_run(1))
        _same(pair, rid(1), lambda i: i.launch_run(rid(1), None))
        _same(pair, rid(1), lambda i: i.resume_run(rid(1), None, 1))


def _rewrite_body(inst: DagsterInstance, run_id: str, edit: Any) -> None:
    db = Path(inst.root_directory) / "history" / "runs.db"
    conn = sqlite3.connect(db)
    try:
        with conn:
            (body,) = conn.execute(
                "SELECT run_body FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            conn.execute("UPDATE runs SET run_body = ? WHERE run_id = ?", (edit(body), run_id))
    finally:
        conn.close()


def test_a_body_of_another_version_takes_stocks_path(tmp_path: Path) -> None:
    """A stored body without a key this version writes (as an older Dagster's): the step writes
    nothing and stock's method re-serializes the run as stock does."""
    with make_pair(tmp_path, launcher_yaml("RaisingRunLauncher")) as pair:
        spy = spy_steps(pair.rust)
        for inst in (pair.stock, pair.rust):
            add(inst, submittable_run(1))
            _rewrite_body(inst, rid(1), lambda b: b.replace('"run_op_concurrency": null, ', ""))
        got = _same(pair, rid(1), lambda i: i.launch_run(rid(1), None))
        assert got.error is RuntimeError
        assert spy.steps == ["launch"]  # asked, declined: stock's launch_run did the rest
        assert run_view(pair.rust, rid(1))[0] == "FAILURE"


# -- WILL_RETRY after a failure ----------------------------------------------------------------

RETRIES = "run_retries:\n  enabled: true\n  max_retries: 2\n"


@pytest.mark.parametrize("retry_on_failure_tag", [None, "false"])
def test_will_retry_tag_after_a_failed_launch(
    tmp_path: Path, retry_on_failure_tag: str | None
) -> None:
    with make_pair(tmp_path, launcher_yaml("RaisingRunLauncher", extra=RETRIES)) as pair:
        spy = spy_steps(pair.rust)
        for inst in (pair.stock, pair.rust):
            run = submittable_run(1)
            if retry_on_failure_tag is not None:
                run = run.with_tags({"dagster/max_retries": "0"})
            add(inst, run)
        _same(pair, rid(1), lambda i: i.launch_run(rid(1), None))
        assert spy.steps == ["launch", "fail"]
        tags = run_view(pair.rust, rid(1))[1]
        assert WILL_RETRY_TAG in tags
        assert tags[WILL_RETRY_TAG] == ("false" if retry_on_failure_tag else "true")


# -- the default coordinator: submit launches through the configured launcher -----------------

DEFAULT_COORDINATOR = (
    "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
)


@pytest.mark.parametrize("launcher", ["RecordingRunLauncher", "RaisingRunLauncher"])
def test_submit_through_the_default_coordinator(tmp_path: Path, launcher: str) -> None:
    with make_pair(tmp_path, launcher_yaml(launcher, extra=DEFAULT_COORDINATOR)) as pair:
        spy = spy_steps(pair.rust)
        launchers.CALLS.clear()
        for inst in (pair.stock, pair.rust):
            add(inst, submittable_run(1))
        got = _same(pair, rid(1), lambda i: i.submit_run(rid(1), None))
        if launcher == "RecordingRunLauncher":
            assert got.error is None
            assert got.value.status == DagsterRunStatus.STARTING
            assert spy.steps == ["launch"]
            assert launchers.CALLS == [(launcher, "launch", rid(1), "STARTING", None)] * 2
        else:
            # launch_run's failure step, then submit_run's own (stock reports both too)
            assert got.error is RuntimeError
            assert spy.steps == ["launch", "fail", "fail"]
            types = [e[0] for e in events_view(pair.rust, rid(1))]
            assert types == [
                "PIPELINE_STARTING",
                "ENGINE_EVENT",
                "PIPELINE_FAILURE",
                "ENGINE_EVENT",
                "PIPELINE_FAILURE",
            ]


# -- plans -------------------------------------------------------------------------------------


def test_the_steps_read_and_update_the_run_by_its_unique_index(tmp_path: Path) -> None:
    """The run's row read and its transition, on a runs.db dagster-rs created and on one stock
    created, plain and after ANALYZE: a search of the runs table's unique index on run_id."""
    with make_pair(tmp_path, launcher_yaml("RecordingRunLauncher")) as pair:
        for inst in (pair.stock, pair.rust):
            for n in range(20):
                add(inst, submittable_run(n))
        stock_core = dagster_rs._native.DagsterInstance(
            str(Path(pair.stock.root_directory)), "full"
        )
        stores = [pair.rust._rs_core.run_launcher, stock_core.run_launcher]  # type: ignore[attr-defined]
        for analyze in (False, True):
            if analyze:
                conn = sqlite3.connect(Path(pair.stock.root_directory) / "history" / "runs.db")
                conn.execute("ANALYZE")
                conn.commit()
                conn.close()
            for store in stores:
                plans = store.run_plans()
                assert [p["statement"] for p in plans] == [
                    "run row",
                    "run transition",
                    "run transition with end_time",
                ]
                for plan in plans:
                    (line,) = plan["plan"]
                    assert line == "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?)", (
                        plan
                    )
        stock_core.dispose()


# -- many threads ------------------------------------------------------------------------------


def test_threads_launching_and_failing_runs_at_once(tmp_path: Path) -> None:
    """Eight threads on one instance, each launching its own runs through a launcher that raises:
    every run ends in its status with exactly its events (the steps release the
    GIL and share the stores' connections)."""
    from concurrent.futures import ThreadPoolExecutor

    with make_pair(tmp_path, launcher_yaml("RaisingRunLauncher")) as pair:
        inst = pair.rust
        spy = spy_steps(inst)
        for n in range(40):
            add(inst, submittable_run(n))

        def launch(n: int) -> str:
            try:
                inst.launch_run(rid(n), None)  # type: ignore[arg-type]
            except RuntimeError:
                return "raised"
            return "launched"

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(launch, range(40)))
        assert outcomes == ["raised"] * 40
        assert spy.steps.count("launch") == 40 and spy.steps.count("fail") == 40
        for n in range(40):
            assert run_view(inst, rid(n))[0] == "FAILURE"  # type: ignore[index]
            assert [e[0] for e in events_view(inst, rid(n))] == [
                "PIPELINE_STARTING",
                "ENGINE_EVENT",
                "PIPELINE_FAILURE",
            ]
        # The index mirror: one STARTING and one FAILURE per run.
        from dagster._core.events import DagsterEventType
        from dagster._core.storage.event_log.base import EventRecordsFilter

        for kind in (DagsterEventType.PIPELINE_STARTING, DagsterEventType.PIPELINE_FAILURE):
            records = inst.event_log_storage.get_event_records(
                EventRecordsFilter(event_type=kind), limit=1000
            )
            assert sorted(r.run_id for r in records) == sorted(rid(n) for n in range(40))
