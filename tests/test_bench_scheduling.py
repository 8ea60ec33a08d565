"""The scheduling benchmark (`python -m dagster_rs.bench scheduling`): a smoke run with tiny sizes
that checks its report, and its parts that must be exact (the ticks it loads without
`create_tick`, the floors it replays). Never assertions on speed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_rs.bench.common import make_home, open_instance
from dagster_rs.bench.replay import replay_write_floor
from dagster_rs.bench.scheduling import (
    READ_OPS,
    SCALE_THRESHOLD_MS,
    SCHEDULES_DB,
    WRITE_OPS,
    Data,
    TickRows,
    WriteOps,
    check_against_create_tick,
    clone_home,
    insert_ticks,
    make_instigators,
    ticks_digest,
)
from tests.homes import clean_env

ROOT = Path(__file__).resolve().parent.parent

TINY = [
    "--quick",
    "--sensors", "3",
    "--ticks", "40",
    "--schedules", "2",
    "--backfills", "6",
    "--scale-ticks", "300",
    "--reps", "4",
    "--warmup", "1",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for name in ("DAGSTER_RS_DOMAINS", "DAGSTER_RS_DURABILITY", "DAGSTER_HOME"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "dagster_rs.bench", "scheduling", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-5000:]}"


def test_quick_run_reports_every_op_of_both_sides(tmp_path: Path) -> None:
    out = tmp_path / "scheduling.json"
    proc = _run([*TINY, "--json", str(out), "--dir", str(tmp_path)], timeout=600)
    assert proc.returncode == 0, _explain(proc)
    data = json.loads(out.read_text())
    meta = data["_meta"]
    assert meta["bench"] == "scheduling"
    assert meta["mismatches"] == []
    assert meta["sensors"] == 3 and meta["ticks_per_sensor"] == 40
    # 3 x 40 loaded, and one more through stock's create_tick to check the loaded rows.
    assert meta["ticks_stored"] == 121
    assert meta["targets"] == {"read": 5.0, "write": 20.0, "scale_rust_ms": SCALE_THRESHOLD_MS}
    for op in (*READ_OPS, *WRITE_OPS):
        entry = data[op]
        for key in ("stock_us", "rust_us", "ratio"):
            assert isinstance(entry[key], float) and entry[key] > 0, (op, key, entry[key])
        # Both sides ran every op: the calls each side made are counted.
        calls = meta["calls"][op]
        assert calls["stock"] > 0 and calls["rust"] > 0, (op, calls)
        if op in WRITE_OPS:
            assert calls == {"stock": 4, "rust": 4}, (op, calls)
        assert op in proc.stdout
    # A floor where the dagster-rs side calls the native core: heartbeats, cursor values and
    # backfills already do (runs domain); "-" elsewhere, and the JSON says null.
    assert {"add_daemon_heartbeat", "set_cursor_values", "get_backfills"} <= set(meta["floors"])
    for op in (*READ_OPS, *WRITE_OPS):
        floor = data[op]["floor_us"]
        assert (floor is not None) == (op in meta["floors"]), (op, floor)
        assert floor is None or floor > 0
    scale = meta["scale"]
    assert sorted(scale) == sorted(meta["scale_ops"]) and len(scale) == 2
    for op, entry in scale.items():
        assert op in data and "@ 300 ticks" in op
        assert entry["threshold_ms"] == SCALE_THRESHOLD_MS
        assert entry["met"] == (entry["rust_ms"] < SCALE_THRESHOLD_MS)
        assert meta["calls"][op]["stock"] > 0 and meta["calls"][op]["rust"] > 0
    assert "Targets" in proc.stdout and "< 20 ms" in proc.stdout
    # The homes are removed unless --keep.
    assert not list(tmp_path.glob("dagster-rs-bench-*"))


def test_rejects_unknown_op(tmp_path: Path) -> None:
    proc = _run(["--quick", "--ops", "nope", "--dir", str(tmp_path)], timeout=120)
    assert proc.returncode != 0, _explain(proc)
    assert "unknown op" in proc.stderr + proc.stdout
    assert not list(tmp_path.glob("dagster-rs-bench-*"))


def test_loaded_ticks_are_the_rows_create_tick_writes(tmp_path: Path) -> None:
    """The directly inserted rows have serdes' bodies, and the row built for one more tick is
    the one stock's create_tick stores (the check the bench's load makes)."""
    sensors, _ = make_instigators(2, 0)
    rows = TickRows(sensors)
    rows.check()
    home = make_home("stock", str(tmp_path))
    inst = open_instance(home)
    for x in sensors:
        inst.add_instigator_state(x.state)
    inst.dispose()
    assert insert_ticks(os.path.join(home, SCHEDULES_DB), rows.rows(10)) == 20
    check_against_create_tick(home, rows, 10)
    inst = open_instance(home)
    try:
        ticks = inst.get_ticks(sensors[1].origin_id, sensors[1].selector_id, limit=3)
        assert [t.tick_data.cursor for t in ticks] == ["9", "8", "7"]
        batch = inst.get_batch_ticks([x.selector_id for x in sensors], limit=2)
        assert sorted(batch) == sorted(x.selector_id for x in sensors)
        latest = batch[sensors[0].selector_id][0]
        assert latest.tick_data.cursor == "10"  # the one made by create_tick
    finally:
        inst.dispose()
    con = sqlite3.connect(os.path.join(home, SCHEDULES_DB))
    try:
        bad = con.execute(
            "SELECT COUNT(*) FROM job_ticks WHERE selector_id IS NULL OR timestamp IS NULL"
        ).fetchone()[0]
    finally:
        con.close()
    assert bad == 0


def test_write_floor_replays_native_calls_on_another_copy(tmp_path: Path) -> None:
    """A write whose dagster-rs side calls the core gets a floor that brings a second copy to
    the first one's state; one that makes no native call gets none, and leaves it alone."""
    template = make_home("rust", str(tmp_path))
    open_instance(template).dispose()
    sensors, _ = make_instigators(2, 0)
    ops = WriteOps(Data(sensors, [], 0), total=6)
    recorder = open_instance(clone_home(template, "rust", str(tmp_path)))
    target_home = clone_home(template, "rust", str(tmp_path))
    target = open_instance(target_home)
    try:
        replays = replay_write_floor(recorder, target, ops.add_daemon_heartbeat, range(6))
        assert replays is not None and sorted(replays) == list(range(6))
        assert target.get_daemon_heartbeats() == {}
        for i in range(6):
            replays[i]()
        assert target.get_daemon_heartbeats() == recorder.get_daemon_heartbeats()
        assert len(target.get_daemon_heartbeats()) == 4
        if "scheduling" not in getattr(target, "rust_domains", ()):
            before = ticks_digest(target_home)
            assert replay_write_floor(recorder, target, ops.create_tick, range(3)) is None
            assert ticks_digest(target_home) == before
    finally:
        recorder.dispose()
        target.dispose()
