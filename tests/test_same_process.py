"""dagster-rs and stock storage on the same files in one process: one SQLite library holds them.

Two copies of SQLite on one database file in one process can corrupt it: each keeps its own
record of the process's POSIX locks, so a close by one drops the other's and lets it checkpoint
and delete the WAL under the other. The extension links the libsqlite3 that Python's `sqlite3`
module loads and checks at import that it is the same library (by the address of
`sqlite3_libversion`); a build that cannot share it (SQLite bundled into the extension, or a
Python whose `sqlite3` carries its own) refuses to open any file. Each workload here runs in a
process of its own, so that the files are checked after it has exited, as a user would find them.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import dagster_rs
from dagster_rs import _native

REPO = Path(__file__).resolve().parent.parent


def run_python(source: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `source` in a fresh interpreter; its stdout, or the test fails with its stderr."""
    out = subprocess.run(
        [sys.executable, "-c", source, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


def integrity_and_counts(home: Path) -> dict[str, dict[str, object]]:
    """`PRAGMA integrity_check` and the row count of every table of every database under home,
    read after the writers exited, by a connection of this process."""
    found: dict[str, dict[str, object]] = {}
    for path in sorted(home.rglob("*.db")):
        conn = sqlite3.connect(path)
        try:
            check = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            tables = [
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        finally:
            conn.close()
        found[str(path.relative_to(home))] = {"integrity": check, "counts": counts}
    return found


def test_the_core_runs_the_sqlite_library_pythons_sqlite3_runs() -> None:
    lib = dagster_rs.sqlite_library()
    assert lib["problem"] is None
    assert lib["bundled"] is False
    assert lib["path"] is not None and lib["path"] == lib["python_path"]
    assert lib["version"] == lib["python_version"] == sqlite3.sqlite_version


# The defect as a user met it: a dagster-rs instance and a stock one on one DAGSTER_HOME in one
# script, 30 runs written through each, then read through dagster-rs.
USER_SCRIPT = """\
import sys, tempfile
import dagster
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id
import dagster_rs

d = sys.argv[1]
rust = dagster_rs.DagsterInstance.local_temp(d)
for i in range(30):
    rust.add_run(DagsterRun(job_name="by_rust", run_id=make_new_run_id()))
stock = dagster.DagsterInstance.from_ref(InstanceRef.from_dir(d, config_dir=tempfile.mkdtemp()))
assert type(stock.run_storage).__name__ == "SqliteRunStorage"
for i in range(30):
    stock.add_run(DagsterRun(job_name="by_stock", run_id=make_new_run_id()))
print(rust.get_runs_count(), stock.get_runs_count())
rust.dispose()
stock.dispose()
"""


def test_a_stock_instance_beside_a_rust_one_loses_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert run_python(USER_SCRIPT, str(home)).split() == ["60", "60"]
    found = integrity_and_counts(home)
    assert found["history/runs.db"]["integrity"] == ["ok"]
    assert found["history/runs.db"]["counts"]["runs"] == 60  # type: ignore[index]


# Every domain file, written and read from both sides in turn: instances of each kind and stock
# storage objects built directly, which are closed and built again every few rounds (stock also
# opens a connection per call). `first` is the side that opens the home.
INTERLEAVED = """\
import json, sys, tempfile, time
from pathlib import Path
import dagster
from dagster import AssetKey, AssetMaterialization, DagsterEvent, DagsterEventType
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.events import EngineEventData
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin, RemoteInstigatorOrigin, RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import (
    InstigatorState, InstigatorStatus, TickData, TickStatus,
)
from dagster._core.storage.dagster_run import DagsterRun, RunsFilter
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_run_id
import dagster_rs

home, first, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
config_dir = tempfile.mkdtemp()

def open_rust():
    inst = dagster_rs.DagsterInstance.local_temp(str(home))
    assert {"runs", "events"} <= inst.rust_domains, inst.rust_domains
    return inst

def open_stock():
    return dagster.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=config_dir))

def open_direct():
    return {
        "runs": SqliteRunStorage.from_local(str(home / "history")),
        "events": SqliteEventLogStorage(str(home / "history" / "runs")),
        "schedules": SqliteScheduleStorage.from_local(str(home / "schedules")),
    }

def origin(name):
    repo = RemoteRepositoryOrigin(
        InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file="defs.py")), "repo"
    )
    return RemoteInstigatorOrigin(repo, name)

def engine_entry(run_id, message):
    event = DagsterEvent(DagsterEventType.ENGINE_EVENT.value, job_name="j", message=message,
                         event_specific_data=EngineEventData({}))
    return EventLogEntry(error_info=None, level=20, user_message="", run_id=run_id,
                         timestamp=time.time(), job_name="j", dagster_event=event)

order = [open_rust, open_stock] if first == "rust" else [open_stock, open_rust]
a, b = (f() for f in order)
rust, stock = (a, b) if first == "rust" else (b, a)
direct = open_direct()
shared_run = DagsterRun(job_name="shared", run_id=make_new_run_id())
rust.add_run(shared_run)
expected = {"runs": 1, "shared_events": 0, "own_events": {}, "assets": set(), "ticks": 0,
            "instigators": 0}

for i in range(rounds):
    if i and i % 5 == 0:
        # Close and reopen: the direct stock storages every 5 rounds, dagster-rs every 10.
        for storage in direct.values():
            storage.dispose()
        direct = open_direct()
        if i % 10 == 0:
            rust.dispose()
            rust = open_rust()
    writers = [("rust", rust), ("stock", stock), ("direct", None)]
    name, inst = writers[i % 3]
    run = DagsterRun(job_name=f"job_{name}", run_id=make_new_run_id(), tags={"i": str(i)})
    (direct["runs"] if inst is None else inst).add_run(run)
    expected["runs"] += 1
    # Runs: every side sees the new run at once.
    for reader in (rust.run_storage, stock.run_storage, direct["runs"]):
        assert reader.get_runs(RunsFilter(run_ids=[run.run_id])) == [run], (i, reader)
    # Run shards: the new run's own shard, and one shard every side appends to.
    event_log = direct["events"] if inst is None else inst.event_log_storage
    event_log.store_event(engine_entry(run.run_id, f"own {i}"))
    expected["own_events"][run.run_id] = 1
    event_log.store_event(engine_entry(shared_run.run_id, f"shared {i}"))
    expected["shared_events"] += 1
    # The index: a runless materialization through each side (runless shard and index.db).
    key = AssetKey(["asset", str(i % 7)])
    mat = AssetMaterialization(asset_key=key, partition=str(i))
    if inst is None:
        stock.report_runless_asset_event(mat)
    else:
        inst.report_runless_asset_event(mat)
    expected["assets"].add(key.to_string())
    for reader in (rust.event_log_storage, stock.event_log_storage, direct["events"]):
        got = reader.get_records_for_run(shared_run.run_id, limit=10_000).records
        assert len(got) == expected["shared_events"], (i, reader, len(got))
        assert reader.get_latest_materialization_events([key])[key].asset_materialization.partition == str(i)
    # schedules.db: instigator state and ticks from each side.
    sched = direct["schedules"] if inst is None else inst.schedule_storage
    state = InstigatorState(origin(f"sensor_{i}"), InstigatorType.SENSOR, InstigatorStatus.RUNNING)
    sched.add_instigator_state(state)
    expected["instigators"] += 1
    sched.create_tick(TickData(
        instigator_origin_id=state.instigator_origin_id, instigator_name=f"sensor_{i}",
        instigator_type=InstigatorType.SENSOR, status=TickStatus.SUCCESS, timestamp=1000.0 + i,
        selector_id=state.selector_id, run_ids=[], run_keys=[],
    ))
    expected["ticks"] += 1
    for reader in (rust.schedule_storage, stock.schedule_storage, direct["schedules"]):
        assert len(reader.all_instigator_state()) == expected["instigators"]

final = {
    "rust_runs": rust.get_runs_count(), "stock_runs": stock.get_runs_count(),
    "rust_shared": len(rust.get_records_for_run(shared_run.run_id, limit=10_000).records),
    "stock_shared": len(stock.get_records_for_run(shared_run.run_id, limit=10_000).records),
    "rust_assets": sorted(k.to_string() for k in rust.all_asset_keys()),
    "stock_assets": sorted(k.to_string() for k in stock.all_asset_keys()),
}
for storage in direct.values():
    storage.dispose()
rust.dispose()
stock.dispose()
print(json.dumps({
    **final,
    "runs": expected["runs"], "shared_run": shared_run.run_id,
    "shared_events": expected["shared_events"], "own_events": expected["own_events"],
    "assets": sorted(expected["assets"]), "ticks": expected["ticks"],
    "instigators": expected["instigators"],
}))
"""


@pytest.mark.parametrize("first", ["rust", "stock"])
def test_interleaved_writes_and_reads_on_every_domain_file(tmp_path: Path, first: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    out = json.loads(run_python(INTERLEAVED, str(home), first, "36"))
    assert out["rust_runs"] == out["stock_runs"] == out["runs"] == 37
    assert out["rust_shared"] == out["stock_shared"] == out["shared_events"] == 36
    assert out["rust_assets"] == out["stock_assets"] == out["assets"]

    found = integrity_and_counts(home)
    assert {f: v["integrity"] for f, v in found.items()} == {f: ["ok"] for f in found}
    counts = {f: v["counts"] for f, v in found.items()}
    assert counts["history/runs.db"]["runs"] == 37  # type: ignore[index]
    assert counts[f"history/runs/{out['shared_run']}.db"]["event_logs"] == 36  # type: ignore[index]
    for run_id, n in out["own_events"].items():
        assert counts[f"history/runs/{run_id}.db"]["event_logs"] == n  # type: ignore[index]
    index = counts["history/runs/index.db"]
    assert index["asset_keys"] == len(out["assets"])  # type: ignore[index]
    # Runless materializations, mirrored into the index with each side's storage ids.
    assert counts["history/runs/.db"]["event_logs"] == 36  # type: ignore[index]
    assert index["event_logs"] == 36  # type: ignore[index]
    assert counts["schedules/schedules.db"]["instigators"] == out["instigators"] == 36  # type: ignore[index]
    assert counts["schedules/schedules.db"]["job_ticks"] == out["ticks"] == 36  # type: ignore[index]


# -- the unsafe build: SQLite bundled into the extension -----------------------------------------


@pytest.fixture(scope="module")
def bundled_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the dagster_rs package whose extension carries its own SQLite (cargo feature
    `bundled-sqlite`), built here into target/bundled."""
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    if not Path(cargo).exists():
        pytest.skip("cargo is needed to build the bundled-SQLite extension")
    target = REPO / "target" / "bundled"
    env = {
        **os.environ,
        "PYO3_PYTHON": sys.executable,
        "PYO3_BUILD_EXTENSION_MODULE": "1",
        "CARGO_TARGET_DIR": str(target),
    }
    built = subprocess.run(
        [cargo, "build", "--lib", "--locked", "--features", "bundled-sqlite"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    root = tmp_path_factory.mktemp("bundled")
    package = root / "dagster_rs"
    shutil.copytree(
        REPO / "python" / "dagster_rs",
        package,
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    shutil.copy(
        target / "debug" / "lib_native.so",
        package / f"_native{sysconfig.get_config_var('EXT_SUFFIX')}",
    )
    return root


BUNDLED_SCRIPT = """\
import json, os, sys, tempfile
from pathlib import Path
import dagster_rs
from dagster_rs import _native
from dagster_rs.errors import DagsterRsStorageError
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

assert dagster_rs.__file__.startswith(sys.argv[1]), dagster_rs.__file__
home = Path(sys.argv[2])
(home / "a").mkdir()
(home / "c").mkdir()
out = {"library": _native.sqlite_library()}
try:
    dagster_rs.DagsterInstance.local_temp(str(home / "a"))
    out["instance"] = "opened"
except DagsterRsStorageError as exc:
    out["instance"] = str(exc)
try:
    _native.RunStore(str(home / "b" / "runs.db"))
    out["store"] = "opened"
except DagsterRsStorageError as exc:
    out["store"] = str(exc)
os.environ["DAGSTER_RS_DOMAINS"] = "none"
stock_only = dagster_rs.DagsterInstance.local_temp(str(home / "c"))
stock_only.add_run(DagsterRun(job_name="j", run_id=make_new_run_id()))
out["none"] = [type(stock_only.run_storage).__name__, stock_only.get_runs_count()]
print(json.dumps(out))
"""


def test_a_build_with_its_own_sqlite_refuses_to_open_files(
    bundled_package: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(bundled_package)}
    env.pop("DAGSTER_RS_DOMAINS", None)
    out = json.loads(run_python(BUNDLED_SCRIPT, str(bundled_package), str(tmp_path), env=env))
    library = out["library"]
    assert library["bundled"] is True
    assert library["version"] != sqlite3.sqlite_version or library["path"] != library["python_path"]
    problem = library["problem"]
    assert problem and "two SQLite libraries" in problem
    assert library["path"] in problem and sqlite3.sqlite_version in problem
    # The facade names the cause when the instance is built; the core refuses any file itself.
    assert "two SQLite libraries" in out["instance"]
    assert "refuses to open" in out["store"] and "two SQLite libraries" in out["store"]
    assert not (tmp_path / "b").exists()
    assert not (tmp_path / "a" / "history" / "runs.db").exists()
    # Rolling back to stock Dagster still works in that Python.
    assert out["none"] == ["SqliteRunStorage", 1]


def test_the_installed_extension_is_not_the_bundled_one() -> None:
    assert _native.sqlite_library()["bundled"] is False
