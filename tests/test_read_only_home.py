"""A home on a read-only file system (a snapshot or replica served to a webserver).

The home is bind-mounted read-only (`mount --bind`, `remount,bind,ro`) and a dagster-rs instance
is built from the `dagster.yaml` on it, every domain live. Every read the webserver makes (runs
and their filters, tags, backfills, a run page's events, assets, partitions, instigator states
and ticks) answers what stock answers on the writable original; every write fails with the
class stock raises for a write to a read-only database (`sqlalchemy.exc.OperationalError`,
"attempt to write a readonly database"), which is also a `DagsterRsStorageError`; no warning is
logged; no byte changes under the mount. Homes made by stock and by dagster-rs, cleanly closed
(no -wal, no -shm: SQLite reads them immutable) and with a live writer's WAL beside them (read
through the WAL). Stock cannot build its instance on such a home at all; that is checked too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.instance.ref import InstanceRef
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter
from dagster._daemon.types import DaemonHeartbeat

from tests.conftest import load_instance, write_home
from tests.mounts import SCRIPT_HELPERS, run_scenario, umount
from tests.processes import reaped, write_script
from tests.sensors import add_sensor, sensor_state
from tests.test_interchange import populate

DYNAMIC = "ro_dynamic"


def seed(inst: DagsterInstance, label: str) -> None:
    populate(inst, label)
    inst.add_dynamic_partitions(DYNAMIC, [f"{label}-a", f"{label}-b"])
    add_sensor(inst, f"sensor_{label}", [(TickStatus.SKIPPED, None)] * 3)


def observe_all(inst: DagsterInstance) -> dict[str, str]:
    """The webserver's reads, as comparable text; a read that raises is its exception's class
    (stock raises on some old homes: a table a migration adds)."""
    out: dict[str, str] = {}

    def read(key: str, fn: Any) -> Any:
        try:
            value = fn()
        except Exception as exc:
            out[key] = f"raised {type(exc).__module__}.{type(exc).__qualname__}"
            return None
        out[key] = repr(value)
        return value

    storage = inst.run_storage
    runs = read("runs", lambda: list(inst.get_runs())) or []
    read("runs_ascending", lambda: list(inst.get_runs(ascending=True)))
    read("run_ids", lambda: list(inst.get_run_ids()))
    read("count", inst.get_runs_count)
    read(
        "records",
        lambda: [
            (
                r.storage_id,
                r.dagster_run,
                r.create_timestamp,
                r.update_timestamp,
                r.start_time,
                r.end_time,
            )
            for r in inst.get_run_records()
        ],
    )
    tag_keys = read("tag_keys", lambda: sorted(inst.get_run_tag_keys())) or []
    tags = (
        read("tags", lambda: sorted((k, sorted(v)) for k, v in inst.get_run_tags(tag_keys))) or []
    )
    read(
        "ids_by_tag",
        lambda: {
            (key, value): sorted(inst.get_run_ids(RunsFilter(tags={key: value})))
            for key, values in tags
            for value in values
        },
    )
    read(
        "ids_by_status",
        lambda: {
            status.value: sorted(inst.get_run_ids(RunsFilter(statuses=[status])))
            for status in DagsterRunStatus
        },
    )
    read(
        "ids_by_job",
        lambda: {
            job: sorted(inst.get_run_ids(RunsFilter(job_name=job)))
            for job in sorted({r.job_name for r in runs})
        },
    )
    read("groups", lambda: {r.run_id: inst.get_run_group(r.run_id) for r in runs})
    backfills = read("backfills", lambda: list(inst.get_backfills())) or []
    read("backfills_count", inst.get_backfills_count)
    read(
        "backfills_by_id",
        lambda: {b.backfill_id: inst.get_backfill(b.backfill_id) for b in backfills},
    )
    read("heartbeats", lambda: dict(inst.get_daemon_heartbeats()))
    read(
        "cursors",
        lambda: dict(storage.get_cursor_values({"cursor_a", "cursor_b", "cursor_missing"})),
    )
    run_ids = sorted(r.run_id for r in runs)
    read(
        "events",
        lambda: {
            r: [
                (
                    rec.storage_id,
                    rec.event_log_entry.dagster_event_type,
                    rec.event_log_entry.message,
                )
                for rec in inst.get_records_for_run(r, limit=10_000).records
            ]
            for r in run_ids
        },
    )
    read("stats", lambda: {r: inst.get_run_stats(r) for r in run_ids})
    keys = (
        read("asset_keys", lambda: sorted(inst.get_asset_keys(), key=lambda k: k.to_string())) or []
    )
    read(
        "asset_records",
        lambda: sorted(
            (
                r.asset_entry.asset_key.to_string(),
                r.asset_entry.last_materialization_storage_id,
                r.asset_entry.last_run_id,
            )
            for r in inst.get_asset_records()
        ),
    )
    read(
        "materializations",
        lambda: {
            k.to_string(): [r.storage_id for r in inst.fetch_materializations(k, limit=100).records]
            for k in keys
        },
    )
    read(
        "materialized_partitions",
        lambda: {k.to_string(): sorted(inst.get_materialized_partitions(k)) for k in keys},
    )
    read("dynamic", lambda: inst.get_dynamic_partitions(DYNAMIC))
    states = (
        read(
            "states",
            lambda: sorted(inst.all_instigator_state(), key=lambda s: s.instigator_origin_id),
        )
        or []
    )
    read(
        "ticks",
        lambda: {
            s.instigator_origin_id: [
                (t.tick_id, t.status, t.timestamp)
                for t in inst.get_ticks(s.instigator_origin_id, s.selector_id)
            ]
            for s in states
        },
    )
    read("concurrency_keys", lambda: sorted(inst.event_log_storage.get_concurrency_keys()))
    return out


def _engine_event(run_id: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message="written on a read-only home",
        run_id=run_id,
        timestamp=time.time(),
        dagster_event=DagsterEvent(
            DagsterEventType.ENGINE_EVENT.value,
            job_name="ro",
            event_specific_data=EngineEventData({}),
        ),
    )


WRITES = {
    "add_run": lambda inst: inst.add_run(DagsterRun(job_name="ro", run_id="ro-new-run")),
    "store_event_existing_run": lambda inst: inst.store_event(
        _engine_event(sorted(inst.get_run_ids())[0])
    ),
    "store_event_new_run": lambda inst: inst.store_event(_engine_event("ro-new-run")),
    "add_dynamic_partitions": lambda inst: inst.add_dynamic_partitions(DYNAMIC, ["new"]),
    "add_instigator_state": lambda inst: inst.add_instigator_state(sensor_state("ro_sensor")),
    "add_backfill": lambda inst: inst.add_backfill(
        PartitionBackfill(
            backfill_id="robf",
            status=BulkActionStatus.REQUESTED,
            from_failure=False,
            tags={},
            backfill_timestamp=time.time(),
            asset_selection=[AssetKey("colored")],
            serialized_asset_backfill_data="x",
        )
    ),
    "set_cursor_values": lambda inst: inst.run_storage.set_cursor_values({"k": "v"}),
    "add_daemon_heartbeat": lambda inst: inst.add_daemon_heartbeat(
        DaemonHeartbeat(timestamp=time.time(), daemon_type="RO", daemon_id="ro", errors=[])
    ),
    "set_concurrency_slots": lambda inst: inst.event_log_storage.set_concurrency_slots("ro", 2),
}

SCENARIO = f"""\
import gc, json, logging, os, sys
sys.path.insert(0, os.getcwd())
{SCRIPT_HELPERS}
home, mountpoint, stock_config = sys.argv[1], sys.argv[2], sys.argv[3]
warnings = []


class Catch(logging.Handler):
    def emit(self, record):
        warnings.append(f"{{record.name}}: {{record.getMessage()}}")


logging.getLogger().addHandler(Catch(level=logging.WARNING))
import sqlalchemy.exc as sa_exc
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
import dagster_rs
from tests.test_read_only_home import WRITES, observe_all

result = {{"writes": {{}}}}
bind_read_only(home, mountpoint)
inst = None
try:
    try:
        stock = DagsterInstance.from_ref(InstanceRef.from_dir(mountpoint, config_dir=stock_config))
        result["stock_builds"] = True
        stock.dispose()
    except Exception as exc:
        result["stock_builds"] = f"{{type(exc).__name__}}: {{str(exc)[:300]}}"
    warnings.clear()
    inst = DagsterInstance.from_config(mountpoint)
    result["class"] = type(inst).__name__
    result["observation"] = observe_all(inst)
    for name, write in WRITES.items():
        try:
            write(inst)
            result["writes"][name] = {{"ok": True}}
        except Exception as exc:
            orig = getattr(exc, "orig", None)
            result["writes"][name] = {{
                "ok": False,
                "class": f"{{type(exc).__module__}}.{{type(exc).__qualname__}}",
                "operational": isinstance(exc, sa_exc.OperationalError),
                "storage": isinstance(exc, dagster_rs.DagsterRsStorageError),
                "orig": type(orig).__module__ + "." + type(orig).__qualname__ if orig else None,
                "cause_is_orig": exc.__cause__ is orig and orig is not None,
                "message": str(exc)[:600],
            }}
    result["warnings"] = warnings
finally:
    if inst is not None:
        inst.dispose()
    inst = None
    gc.collect()
    umount(mountpoint)
print("RESULT " + json.dumps(result), flush=True)
"""

# A live writer: a dagster-rs instance that writes, then holds its connections (and so the
# files' -wal and -shm, its last commits still in the WAL) until its stdin closes.
HOLDER = """\
import os, sys
sys.path.insert(0, os.getcwd())
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter
from tests.test_read_only_home import seed
inst = DagsterInstance.from_config(sys.argv[1])
print("CLASS", type(inst).__name__, flush=True)
seed(inst, "late")
inst.add_run(DagsterRun(job_name="late_job", run_id="late-run"))
print("READY", flush=True)
sys.stdin.read()
inst.dispose()
"""


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def stock_observation(home: Path, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "stock_config"
    config.mkdir(exist_ok=True)
    (config / "dagster.yaml").write_text("")
    inst = DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(config)))
    try:
        assert type(inst) is DagsterInstance
        return observe_all(inst)
    finally:
        inst.dispose()


@pytest.mark.parametrize("wal", [False, True], ids=["closed", "live-wal"])
@pytest.mark.parametrize("maker", ["stock", "rust"])
def test_read_only_home(tmp_path: Path, maker: str, wal: bool) -> None:
    home = write_home(tmp_path / "home", maker)
    inst = load_instance(home)
    try:
        seed(inst, "ro")
    finally:
        inst.dispose()
        # Stock's `DagsterInstance.dispose` leaves the schedule storage out (stock's closes its
        # connections after each call); the home is closed cleanly only once it is disposed.
        if inst.schedule_storage is not None:
            inst.schedule_storage.dispose()
    write_home(home, "rust")  # the instance built on the read-only home is dagster-rs
    for leftover in home.rglob("*.db-*"):
        assert leftover.stat().st_size == 0 or not wal, leftover
    if not wal:
        assert not list(home.rglob("*.db-wal")), "a cleanly closed home has no WAL"
    mountpoint = tmp_path / "ro"
    mountpoint.mkdir()
    stock_config = tmp_path / "stock_config"
    stock_config.mkdir()
    (stock_config / "dagster.yaml").write_text("")
    script = write_script(tmp_path / "scenario.py", SCENARIO)
    holder = None
    try:
        if wal:
            holder = subprocess.Popen(
                [sys.executable, str(write_script(tmp_path / "holder.py", HOLDER)), str(home)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=Path(__file__).resolve().parents[1],
            )
        with reaped(*([holder] if holder else [])):
            if holder is not None:
                assert holder.stdout is not None
                assert holder.stdout.readline().startswith("CLASS"), holder.communicate()[1]
                assert holder.stdout.readline().strip() == "READY", holder.communicate()[1]
                wals = [p for p in home.rglob("*.db-wal") if p.stat().st_size > 0]
                assert wals, "the live writer's commits are in the WAL"
            before = tree(home)
            done = run_scenario(script, str(home), str(mountpoint), str(stock_config))
            after = tree(home)
            if holder is not None:
                holder.communicate("", timeout=120)
    finally:
        umount(mountpoint)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-5000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))

    assert after == before, "the read-only scenario changed the home"
    assert result["class"] == "DagsterInstance"
    if not wal:
        # Stock's instance reads each file before it can be built; without a -shm to read the
        # WAL index from, SQLite refuses it on a read-only mount.
        assert result["stock_builds"] is not True, "stock now builds on a read-only home"
    assert result["warnings"] == [], result["warnings"]

    expected = stock_observation(home, tmp_path)
    got = result["observation"]
    differing = [k for k in expected if expected[k] != got.get(k)]
    assert not differing, "\n".join(
        f"{k}:\n stock {expected[k]}\n   ro  {got.get(k)}" for k in differing
    )
    if wal:
        assert "late-run" in got["run_ids"], "the WAL's commits are read"

    for name, outcome in result["writes"].items():
        assert not outcome["ok"], f"{name} succeeded on a read-only home"
        assert outcome["operational"] and outcome["storage"], (name, outcome)
        assert outcome["orig"] == "sqlite3.OperationalError", (name, outcome)
        assert outcome["cause_is_orig"], (name, outcome)
        assert "attempt to write a readonly database" in outcome["message"], (name, outcome)
    assert set(result["writes"]) == set(WRITES)


def test_inspect_database_on_a_read_only_mount(tmp_path: Path) -> None:
    home = write_home(tmp_path / "home", "rust")
    inst = load_instance(home)
    try:
        seed(inst, "ro")
    finally:
        inst.dispose()
        if inst.schedule_storage is not None:
            inst.schedule_storage.dispose()
    mountpoint = tmp_path / "ro"
    mountpoint.mkdir()
    script = write_script(
        tmp_path / "inspect_on_mount.py",
        f"""\
import json, os, sys
{SCRIPT_HELPERS}
from dagster_rs import _native
home, mountpoint = sys.argv[1], sys.argv[2]
bind_read_only(home, mountpoint)
try:
    runs = os.path.join(mountpoint, "history", "runs")
    shard = next(f for f in sorted(os.listdir(runs)) if f != "index.db")
    out = {{
        "runs": _native.inspect_database(os.path.join(mountpoint, "history", "runs.db"), "runs"),
        "event_index": _native.inspect_database(os.path.join(runs, "index.db"), "event_index"),
        "event_shard": _native.inspect_database(os.path.join(runs, shard), "event_shard"),
        "schedules": _native.inspect_database(
            os.path.join(mountpoint, "schedules", "schedules.db"), "schedules"),
        "absent": _native.inspect_database(os.path.join(runs, "absent.db"), "event_shard"),
    }}
finally:
    umount(mountpoint)
print("RESULT " + json.dumps(out), flush=True)
""",
    )
    before = tree(home)
    try:
        done = run_scenario(script, str(home), str(mountpoint))
    finally:
        umount(mountpoint)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert tree(home) == before
    for kind in ("runs", "event_index", "event_shard", "schedules"):
        got = out[kind]
        assert (got["state"], got["native"], got["read_only"], got["missing"]) == (
            "current",
            True,
            True,
            [],
        ), (kind, got)
    assert (out["absent"]["state"], out["absent"]["native"], out["absent"]["read_only"]) == (
        "missing",
        True,
        True,
    )


LEFTOVERS = f"""\
import gc, json, os, sys
sys.path.insert(0, os.getcwd())
{SCRIPT_HELPERS}
import sqlalchemy.exc as sa_exc
from dagster import DagsterInstance
import dagster_rs
from dagster_rs import _native
from tests.test_read_only_home import _engine_event

home, mountpoint = sys.argv[1], sys.argv[2]
bind_read_only(home, mountpoint)
inst = None
out = {{}}
try:
    inst = DagsterInstance.from_config(mountpoint)
    runs = os.path.join(mountpoint, "history", "runs")
    out["inspect"] = {{
        r: _native.inspect_database(os.path.join(runs, r + ".db"), "event_shard")
        for r in ("half", "zero", "hot")
    }}
    out["logs"] = {{r: len(inst.all_logs(r)) for r in ("half", "zero", "hot", "absent")}}
    out["states"] = len(inst.all_instigator_state())
    out["runs"] = inst.get_runs_count()
    writes = {{}}
    for r in ("half", "zero", "hot"):
        try:
            inst.store_event(_engine_event(r))
            writes[r] = "ok"
        except sa_exc.OperationalError as exc:
            writes[r] = isinstance(exc, dagster_rs.DagsterRsStorageError) and "readonly" in str(exc)
    out["writes"] = writes
finally:
    if inst is not None:
        inst.dispose()
    inst = None
    gc.collect()
    umount(mountpoint)
print("RESULT " + json.dumps(out), flush=True)
"""


def test_read_only_home_with_crash_leftovers(tmp_path: Path) -> None:
    """What crashes leave, on a read-only mount: no schedules.db, a half-built shard (tables,
    no stamp), a zero-byte shard, a shard with a hot journal. Each reads as the file will be
    once completed or rolled back (empty), nothing is written, writes fail clearly."""
    import shutil
    import sqlite3
    from contextlib import closing

    home = write_home(tmp_path / "home", "rust")
    inst = load_instance(home)
    try:
        seed(inst, "ro")
        runs = home / "history" / "runs"
        shard = next(p for p in sorted(runs.glob("*.db")) if p.name != "index.db")
    finally:
        inst.dispose()
        if inst.schedule_storage is not None:
            inst.schedule_storage.dispose()
    with closing(sqlite3.connect(shard)) as conn:
        event_logs = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'event_logs'"
        ).fetchone()[0]
    (home / "schedules" / "schedules.db").unlink()
    with closing(sqlite3.connect(runs / "half.db")) as conn:
        conn.execute(event_logs)
    (runs / "zero.db").write_bytes(b"")
    live = tmp_path / "live.db"
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute(event_logs)
    writer.execute("PRAGMA cache_size = 1")
    writer.execute("BEGIN")
    writer.execute("CREATE TABLE secondary_indexes (id INTEGER)")
    writer.execute("CREATE TABLE spill (y)")
    for _ in range(300):
        writer.execute("INSERT INTO spill VALUES (?)", ("x" * 900,))
    shutil.copy(live, runs / "hot.db")
    shutil.copy(f"{live}-journal", runs / "hot.db-journal")
    writer.execute("ROLLBACK")
    writer.close()

    mountpoint = tmp_path / "ro"
    mountpoint.mkdir()
    script = write_script(tmp_path / "leftovers.py", LEFTOVERS)
    before = tree(home)
    try:
        done = run_scenario(script, str(home), str(mountpoint))
    finally:
        umount(mountpoint)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-5000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert tree(home) == before
    assert out["logs"] == {"half": 0, "zero": 0, "hot": 0, "absent": 0}
    assert out["states"] == 0
    assert out["runs"] > 0
    assert out["writes"] == {"half": True, "zero": True, "hot": True}
    assert out["inspect"]["hot"]["hot_journal"]
    assert {r: (v["state"], v["native"]) for r, v in out["inspect"].items()} == {
        "half": ("unstamped", True),
        "zero": ("missing", True),
        "hot": ("unstamped", True),
    }


APPEARING = f"""\
import gc, json, os, subprocess, sys
sys.path.insert(0, os.getcwd())
{SCRIPT_HELPERS}
from dagster import DagsterInstance

home, mountpoint, writer_script = sys.argv[1], sys.argv[2], sys.argv[3]
bind_read_only(home, mountpoint)
inst = None
out = {{}}
try:
    inst = DagsterInstance.from_config(mountpoint)
    out["before"] = (inst.get_runs_count(), inst.get_run_by_id("appeared") is not None)
    # Another process writes the same files through the writable path, and keeps them open:
    # its commit is in the -wal (which did not exist while the file was read immutable).
    writer = subprocess.Popen([sys.executable, writer_script, home], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "READY"
    out["wal_seen"] = os.path.exists(os.path.join(mountpoint, "history", "runs.db-wal"))
    out["during"] = (inst.get_runs_count(), inst.get_run_by_id("appeared") is not None)
    writer.communicate("", timeout=120)
    # The writer gone: the WAL checkpointed into the file and removed.
    out["wal_after"] = os.path.exists(os.path.join(mountpoint, "history", "runs.db-wal"))
    out["after"] = (inst.get_runs_count(), inst.get_run_by_id("appeared") is not None)
finally:
    if inst is not None:
        inst.dispose()
    inst = None
    gc.collect()
    umount(mountpoint)
print("RESULT " + json.dumps(out), flush=True)
"""

APPEARING_WRITER = """\
import sqlite3, sys
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
home = sys.argv[1]
holder = sqlite3.connect(home + "/history/runs.db")  # keeps the WAL open past stock's close
holder.execute("PRAGMA wal_autocheckpoint = 0")
holder.execute("SELECT count(*) FROM runs").fetchall()
storage = SqliteRunStorage.from_local(home + "/history")
storage.add_run(DagsterRun(job_name="late", run_id="appeared"))
print("READY", flush=True)
sys.stdin.read()
holder.close()
"""


def test_a_writer_appearing_under_a_read_only_mount(tmp_path: Path) -> None:
    """A read-only mount of files another process may write (the bind mount's writable side,
    another host): the immutable view of a cleanly closed file is dropped as soon as a -wal
    appears, the writer's commits are read through it, and again once it is checkpointed."""
    home = write_home(tmp_path / "home", "stock")
    inst = load_instance(home)
    try:
        seed(inst, "ro")
    finally:
        inst.dispose()
    write_home(home, "rust")
    assert not list(home.rglob("*.db-wal"))
    writer = write_script(tmp_path / "writer.py", APPEARING_WRITER)
    mountpoint = tmp_path / "ro"
    mountpoint.mkdir()
    script = write_script(tmp_path / "appearing.py", APPEARING)
    try:
        done = run_scenario(script, str(home), str(mountpoint), str(writer))
    finally:
        umount(mountpoint)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-5000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    count, seen = out["before"]
    assert not seen
    assert out["wal_seen"], "the writer's commit was meant to sit in the WAL"
    assert out["during"] == [count + 1, True]
    assert out["after"] == [count + 1, True]
