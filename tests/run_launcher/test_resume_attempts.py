"""count_resume_run_attempts / run_will_resume: the run monitor's resume markers among a run's
engine events, counted natively on the run's shard, against stock's count with run monitoring
configured."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.events import EngineEventData
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._daemon.monitoring import RESUME_RUN_LOG_MESSAGE

import dagster_rs
from tests.conftest import make_instance
from tests.run_launcher.conftest import add, launcher_yaml, make_pair, submittable_run
from tests.runs.helpers import rid

MONITORING = "run_monitoring:\n  enabled: true\n  max_resume_run_attempts: 2\n"
RESUMING = launcher_yaml("ResumingRunLauncher", extra=MONITORING)


def shard_of(inst: DagsterInstance, run_id: str) -> Path:
    """The run's shard in stock's layout of the home."""
    return Path(inst.root_directory) / "history" / "runs" / f"{run_id}.db"


def native_count(inst: dagster_rs.DagsterInstance, run_id: str) -> int | None:
    return inst._rs_core.run_launcher.count_engine_messages(run_id, RESUME_RUN_LOG_MESSAGE)


@pytest.mark.parametrize("monitoring", [MONITORING, ""])
def test_counts_and_will_resume_follow_the_markers(tmp_path: Path, monitoring: str) -> None:
    with make_pair(tmp_path, launcher_yaml("ResumingRunLauncher", extra=monitoring)) as pair:
        assert pair.rust._rs_run_launcher() is not None  # the facade counts natively
        for inst in (pair.stock, pair.rust):
            run = add(inst, submittable_run(1, DagsterRunStatus.STARTED))
            # Engine events that are not markers: another message, the marker as a prefix,
            # the marker on a plain log message.
            inst.report_engine_event("Launching run worker", run)
            inst.report_engine_event(RESUME_RUN_LOG_MESSAGE + " soon", run)
            inst.handle_new_event(
                EventLogEntry(
                    error_info=None,
                    level=logging.INFO,
                    user_message=RESUME_RUN_LOG_MESSAGE,
                    run_id=run.run_id,
                    timestamp=1.0,
                )
            )
        seen = []
        for attempt in range(4):
            stock = (
                pair.stock.count_resume_run_attempts(rid(1)),
                pair.stock.run_will_resume(rid(1)),
            )
            rust = (
                pair.rust.count_resume_run_attempts(rid(1)),
                pair.rust.run_will_resume(rid(1)),
            )
            assert stock == rust
            assert native_count(pair.rust, rid(1)) == attempt
            seen.append(rust)
            for inst in (pair.stock, pair.rust):
                run = inst.get_run_by_id(rid(1))
                # The marker as the monitor writes it (resume_run), and once with engine data.
                if attempt % 2:
                    inst.resume_run(rid(1), None, attempt + 1)  # type: ignore[arg-type]
                else:
                    inst.report_engine_event(RESUME_RUN_LOG_MESSAGE, run, EngineEventData())
        expected_will = [True, True, False, False] if monitoring else [False] * 4
        assert seen == list(zip(range(4), expected_will, strict=True))


def test_unknown_runs_have_none_and_get_no_shard(tmp_path: Path) -> None:
    with make_pair(tmp_path, RESUMING) as pair:
        assert pair.stock.count_resume_run_attempts(rid(2)) == 0
        assert pair.rust.count_resume_run_attempts(rid(2)) == 0
        assert pair.rust.run_will_resume(rid(2)) is pair.stock.run_will_resume(rid(2)) is True
        shard = shard_of(pair.rust, rid(2))
        assert not shard.exists()


def test_bodies_it_cannot_read_take_stocks_path(tmp_path: Path) -> None:
    """A stored engine event whose body is not plain EventLogEntry JSON: the native count says
    so (None) and the facade counts through stock's deserialization, which raises as stock."""
    with make_pair(tmp_path, RESUMING) as pair:
        for inst in (pair.stock, pair.rust):
            run = add(inst, submittable_run(3, DagsterRunStatus.STARTED))
            inst.report_engine_event(RESUME_RUN_LOG_MESSAGE, run)
            shard = shard_of(inst, rid(3))
            inst.event_log_storage.dispose()
            import sqlite3

            with sqlite3.connect(shard) as db:
                db.execute("UPDATE event_logs SET event = 'not json'")
            db.close()
        assert native_count(pair.rust, rid(3)) is None
        errors = []
        for inst in (pair.stock, pair.rust):
            try:
                inst.count_resume_run_attempts(rid(3))
            except Exception as exc:  # noqa: BLE001 - the class is what is compared
                errors.append(type(exc))
            else:
                errors.append(None)
        assert errors[0] is errors[1]


def test_stock_path_when_events_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_RS_DOMAINS", "runs")
    inst = make_instance(tmp_path, "rust", RESUMING)
    try:
        assert isinstance(inst, dagster_rs.DagsterInstance)
        assert inst._rs_run_launcher() is None
        run = add(inst, submittable_run(4, DagsterRunStatus.STARTED))
        inst.report_engine_event(RESUME_RUN_LOG_MESSAGE, run)
        assert inst.count_resume_run_attempts(rid(4)) == 1
    finally:
        inst.dispose()


def test_the_count_reads_an_index(tmp_path: Path) -> None:
    """The statement's plan on a run shard the events domain created and on one stock created,
    plain and after ANALYZE: an index search, never a scan of event_logs."""
    with make_pair(tmp_path, RESUMING) as pair:
        for inst in (pair.stock, pair.rust):
            run = add(inst, submittable_run(5, DagsterRunStatus.STARTED))
            for _ in range(3):
                inst.report_engine_event(RESUME_RUN_LOG_MESSAGE, run)
        stock_store = dagster_rs._native.DagsterInstance(
            str(Path(pair.stock.root_directory)), "full"
        ).run_launcher
        rust_store = pair.rust._rs_core.run_launcher
        for store in (rust_store, stock_store):
            plans = store.query_plans(rid(5))
            assert [p["statement"] for p in plans] == ["engine events"]
            (plan,) = [p["plan"] for p in plans]
            assert all("USING INDEX" in line for line in plan), plan
            assert not any(line.startswith("SCAN event_logs") for line in plan), plan
        assert stock_store.count_engine_messages(rid(5), RESUME_RUN_LOG_MESSAGE) == 3
        import sqlite3

        shard = shard_of(pair.stock, rid(5))
        with sqlite3.connect(shard) as db:
            db.execute("ANALYZE")
        db.close()
        (plan,) = [p["plan"] for p in stock_store.query_plans(rid(5))]
        assert all("USING INDEX" in line for line in plan), plan


class _CountingInstance(dagster_rs.DagsterInstance):
    """An instance overriding `all_logs`, the read stock's count goes through."""

    reads = 0

    def all_logs(self, run_id, of_type=None):  # type: ignore[no-untyped-def, override]
        _CountingInstance.reads += 1
        return super().all_logs(run_id, of_type=of_type)


def test_an_overriding_instance_is_called(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "instance_class:\n  module: tests.run_launcher.test_resume_attempts\n"
        "  class: _CountingInstance\n" + launcher_yaml("ResumingRunLauncher")
    )
    inst = DagsterInstance.from_config(str(home))
    assert type(inst) is _CountingInstance
    try:
        assert "events" in inst.rust_domains
        assert inst._rs_run_launcher() is None
        run = add(inst, submittable_run(6, DagsterRunStatus.STARTED))
        inst.report_engine_event(RESUME_RUN_LOG_MESSAGE, run)
        assert inst.count_resume_run_attempts(rid(6)) == 1
        assert _CountingInstance.reads == 1
    finally:
        inst.dispose()
