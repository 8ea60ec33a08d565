"""With the config domain live, none of its methods runs stock SQL; switched off, they all do.

Stock's statements reach `runs.db` through the run storage's `connect()` (the DB-API bridge, on
which stock's `fetchall`/`fetchone` sit too). The test makes it raise and calls every method of
the domain, on the run storage and through the instance; a second test shows the refusal is
reached by the same calls when the domain is switched off (so the first can fail).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._daemon.controller import get_daemon_statuses
from dagster._daemon.types import DaemonHeartbeat

from dagster_rs.storage.config_domain import ConfigDomain
from tests.config.conftest import without_config
from tests.conftest import load_instance, write_home

BEAT = DaemonHeartbeat(1_700_000_000.0, "SENSOR", "d", None)

CALLS: dict[str, Callable[[DagsterInstance], Any]] = {
    "add_daemon_heartbeat": lambda i: i.add_daemon_heartbeat(BEAT),
    "run_storage.add_daemon_heartbeat": lambda i: i.run_storage.add_daemon_heartbeat(BEAT),
    "get_daemon_heartbeats": lambda i: i.get_daemon_heartbeats(),
    "get_daemon_statuses": lambda i: i.get_daemon_statuses(),
    "get_daemon_statuses[fixed time]": lambda i: get_daemon_statuses(
        i, ["SENSOR"], curr_time_seconds=1_700_000_010.0
    ),
    "set_cursor_values": lambda i: i.daemon_cursor_storage.set_cursor_values({"a": "1"}),
    "get_cursor_values": lambda i: i.daemon_cursor_storage.get_cursor_values({"a", "b"}),
    "get_run_storage_id": lambda i: i.run_storage.get_run_storage_id(),
    "wipe_daemon_heartbeats": lambda i: i.wipe_daemon_heartbeats(),
}


class BridgeUsed(AssertionError):
    pass


def _forbid_bridge(monkeypatch: pytest.MonkeyPatch, storage: Any) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise BridgeUsed("stock SQL through connect()")

    monkeypatch.setattr(storage, "connect", refuse)


def _used(inst: DagsterInstance) -> list[str]:
    used = []
    for name, call in CALLS.items():
        try:
            call(inst)
        except BridgeUsed:
            used.append(name)
    return used


@pytest.fixture
def rust(tmp_path: Path) -> Iterator[DagsterInstance]:
    inst = load_instance(write_home(tmp_path / "home", "rust"))
    yield inst
    inst.dispose()


def test_every_method_runs_on_the_core(
    rust: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "config" in rust.rust_domains  # type: ignore[attr-defined]
    assert isinstance(rust.run_storage, ConfigDomain)
    _forbid_bridge(monkeypatch, rust.run_storage)
    assert _used(rust) == []


def test_switched_off_every_method_is_stocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = load_instance(without_config(tmp_path / "home"))
    try:
        assert "config" not in inst.rust_domains  # type: ignore[attr-defined]
        assert not isinstance(inst.run_storage, ConfigDomain)
        _forbid_bridge(monkeypatch, inst.run_storage)
        assert _used(inst) == list(CALLS)
    finally:
        inst.dispose()
