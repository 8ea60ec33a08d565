"""The text the native steps store, against stock's `serialize_value` of the objects stock builds
for the same step: event bodies over awkward inputs (unicode, quotes, newlines, control
characters, long messages, errors with cause and context chains), the run body after a status
transition, and the timestamp columns."""

from __future__ import annotations

import logging
import math
import sys
from datetime import timezone
from unittest import mock

import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.methods.event_methods import EventMethods
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._daemon.monitoring import RESUME_RUN_LOG_MESSAGE
from dagster._serdes import deserialize_value, serialize_value
from dagster._time import datetime_from_timestamp
from dagster._utils.error import SerializableErrorInfo, serializable_error_info_from_exc_info

from dagster_rs._native import RunLauncherStore
from dagster_rs.serdes import serialize
from dagster_rs.storage.convert import sql_datetime
from tests.run_launcher.conftest import submittable_run
from tests.runs.helpers import rid

TEXTS = [
    "hello_job",
    'quote " and \\ backslash',
    "new\nline\r\ttab\x08\x0c\x01\x1f\x7f",
    "unicode: é ß 日本 \u2028 \ufeff",
    "astral: 🚀 𝄞",
    "",
    "x" * 20_000,
    '</script>{"__class__": "x"}',
]

TIMESTAMPS = [
    1733112345.5,
    1733112345.0,
    1733112345.1234567,
    1764655555.9999996,
    0.1,
    1.5e-05,
    951782400.0000005,
    4102444800.25,
]


def _error(message: str) -> SerializableErrorInfo:
    """An error with a cause that has a context, each carrying `message`."""

    def inner() -> None:
        raise KeyError(message)

    try:
        try:
            try:
                raise OSError(f"while handling é {message}")
            except OSError:
                inner()
        except KeyError as cause:
            raise ValueError(message) from cause
    except ValueError:
        return serializable_error_info_from_exc_info(sys.exc_info())
    raise AssertionError("unreachable")


def _entry(event: DagsterEvent, run_id: str, level: int, timestamp: float) -> str:
    """What stock's `report_dagster_event` stores for `event`."""
    return serialize_value(
        EventLogEntry(
            user_message="",
            level=level,
            job_name=event.job_name,
            run_id=run_id,
            error_info=None,
            timestamp=timestamp,
            step_key=event.step_key,
            dagster_event=event,
        )
    )


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("timestamp", TIMESTAMPS[:4])
def test_event_bodies_are_stocks(text: str, timestamp: float) -> None:
    run_id = rid(1)
    starting = DagsterEvent(
        event_type_value=DagsterEventType.PIPELINE_STARTING.value, job_name=text
    )
    assert RunLauncherStore.event_body("starting", run_id, text, timestamp) == _entry(
        starting, run_id, logging.INFO, timestamp
    )
    resume = DagsterEvent(
        event_type_value=DagsterEventType.ENGINE_EVENT.value,
        job_name=text,
        message=RESUME_RUN_LOG_MESSAGE,
        event_specific_data=EngineEventData({}),
    )
    assert RunLauncherStore.event_body(
        "resume", run_id, text, timestamp, message=RESUME_RUN_LOG_MESSAGE
    ) == _entry(resume, run_id, logging.INFO, timestamp)
    error = _error(text)
    assert error.cause is not None and error.cause.context is not None
    engine = DagsterEvent(
        event_type_value=DagsterEventType.ENGINE_EVENT.value,
        job_name=text,
        message=error.message,
        event_specific_data=EngineEventData.engine_error(error),
    )
    assert RunLauncherStore.event_body(
        "engine_error", run_id, text, timestamp, message=error.message, error=serialize(error)
    ) == _entry(engine, run_id, logging.ERROR, timestamp)
    # The event stock's report_run_failed builds (its default message), on a stand-in instance.
    failure = EventMethods.report_run_failed(mock.MagicMock(), submittable_run(1))
    failure = DagsterEvent(
        event_type_value=failure.event_type_value,
        job_name=text,
        message=failure.message,
        event_specific_data=failure.event_specific_data,
    )
    assert RunLauncherStore.event_body("failure", run_id, text, timestamp) == _entry(
        failure, run_id, logging.ERROR, timestamp
    )


def test_failure_message_is_report_run_failed_default() -> None:
    """The PIPELINE_FAILURE the failure step writes carries stock's default message."""
    instance = mock.MagicMock()
    run = submittable_run(1)
    event = EventMethods.report_run_failed(instance, run)
    body = deserialize_value(RunLauncherStore.event_body("failure", run.run_id, "j", 1.0))
    assert isinstance(body, EventLogEntry)
    assert body.dagster_event is not None
    assert body.dagster_event.message == event.message


@pytest.mark.parametrize("timestamp", TIMESTAMPS)
def test_timestamp_columns_are_stocks(timestamp: float) -> None:
    """The event row's `timestamp` (`_event_insert_timestamp`), the run's `update_timestamp`
    and `end_time` (`handle_run_event`) as stock computes them from the event's timestamp."""
    text, end_time = RunLauncherStore.timestamp_columns(timestamp)
    when = datetime_from_timestamp(timestamp)
    assert text == sql_datetime(when.astimezone(timezone.utc).replace(tzinfo=None))
    assert end_time == when.timestamp()
    assert math.isclose(end_time, timestamp, abs_tol=1e-6)


def _runs() -> list[DagsterRun]:
    base = submittable_run(1)
    return [
        base,
        base.with_tags({"k": 'v " é 🚀', "dagster/priority": "3"}),
        DagsterRun(
            job_name='job "with" quotes é',
            run_id=rid(2),
            run_config={"ops": {"status": {"config": {"status": "x\n}"}}}},
            tags={"status": "{", "}": "]"},
            status=DagsterRunStatus.STARTED,
            step_keys_to_execute=["a", "b"],
            asset_selection=None,
        ),
    ]


@pytest.mark.parametrize("run", _runs())
@pytest.mark.parametrize("status", ["STARTING", "FAILURE"])
def test_run_body_transition_is_stocks(run: DagsterRun, status: str) -> None:
    body = serialize_value(run)
    expected = serialize_value(
        deserialize_value(body, DagsterRun).with_status(DagsterRunStatus(status))
    )
    assert RunLauncherStore.run_body_with_status(body, status) == expected


def test_bodies_of_another_version_are_left_to_stock() -> None:
    body = serialize_value(submittable_run(1))
    assert RunLauncherStore.run_body_with_status(body, "STARTING") is not None
    older = body.replace('"run_op_concurrency": null, ', "")
    assert deserialize_value(older, DagsterRun).run_id == rid(1)
    assert RunLauncherStore.run_body_with_status(older, "STARTING") is None
    assert RunLauncherStore.run_body_with_status(body + " x", "STARTING") is None
    assert RunLauncherStore.run_body_with_status("{}", "STARTING") is None
