"""Heartbeats, cursors and the run storage's id written by one implementation are read by the
other on the same DAGSTER_HOME, both ways, in turns and with both instances open at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._daemon.types import DaemonHeartbeat

from dagster_rs.storage import RustRunStorage
from tests.conftest import open_as

KEYS = {f"cursor/{i}" for i in range(40)} | {"missing"}


def _open(home: Path, kind: str) -> DagsterInstance:
    return open_as(home, kind, "run_storage", RustRunStorage, SqliteRunStorage)


def _write(inst: DagsterInstance, label: str, step: int) -> None:
    for daemon in ("SENSOR", "SCHEDULER", f"ONLY_{label}"):
        inst.add_daemon_heartbeat(
            DaemonHeartbeat(1_700_000_000.0 + step, daemon, f"{label}-{step}", None)
        )
    # Existing keys only, or new keys only: the batches both implementations store alike.
    if step == 0:
        inst.run_storage.set_cursor_values({f"cursor/{i}": f"{label}-0-{i}" for i in range(20)})
    else:
        inst.run_storage.set_cursor_values(
            {f"cursor/{i}": f"{label}-{step}-{i}" for i in range(10 * step, 10 * step + 10)}
        )


def _observe(inst: DagsterInstance) -> dict[str, Any]:
    return {
        "heartbeats": list(inst.get_daemon_heartbeats().items()),
        "cursors": list(inst.run_storage.get_cursor_values(KEYS).items()),
        "storage_id": inst.run_storage.get_run_storage_id(),
    }


@pytest.mark.parametrize("first", ["stock", "rust"])
def test_turns_on_one_home(tmp_path: Path, first: str) -> None:
    home = tmp_path / "home"
    other = "rust" if first == "stock" else "stock"
    seen = []
    for step, kind in enumerate([first, other, first, other]):
        inst = _open(home, kind)
        try:
            if seen:
                assert _observe(inst) == seen[-1]
            _write(inst, kind, step)
            seen.append(_observe(inst))
        finally:
            inst.dispose()
    final = seen[-1]
    assert [t for t, _ in final["heartbeats"]] == ["SENSOR", "SCHEDULER", f"ONLY_{first}"] + [
        f"ONLY_{other}"
    ]
    assert dict(final["heartbeats"])["SENSOR"].daemon_id == f"{other}-3"
    assert len(final["cursors"]) == 40
    assert len({obs["storage_id"] for obs in seen}) == 1


def test_both_open_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stock = _open(home, "stock")
    rust = _open(home, "rust")
    try:
        for step in range(4):
            writer, reader = (stock, rust) if step % 2 == 0 else (rust, stock)
            _write(writer, type(writer.run_storage).__name__, step)
            assert _observe(reader) == _observe(writer)
        rust.wipe_daemon_heartbeats()
        assert stock.get_daemon_heartbeats() == {}
    finally:
        rust.dispose()
        stock.dispose()
