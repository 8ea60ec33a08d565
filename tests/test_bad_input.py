"""Bad input: corrupt stored bodies, storage files dagster-rs must not use, wrong argument types,
duplicate runs. Each must end in a clear, catchable error and leave the stored data untouched.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.errors import DagsterRunAlreadyExists
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.utils import make_new_run_id
from dagster._daemon.types import DaemonHeartbeat
from dagster._serdes import serialize_value
from dagster_shared.check import CheckError
from dagster_shared.serdes.errors import DeserializationError

import dagster_rs
from dagster_rs import CorruptRecordError
from tests.conftest import InstancePair, call, load_instance, make_instance, write_home


def runs_db(home: Path) -> Path:
    return home / "history" / "runs.db"


def _rust_home_with_runs(tmp_path: Path, *runs: DagsterRun) -> Path:
    home = write_home(tmp_path / "home", "rust")
    inst = load_instance(home)
    try:
        assert isinstance(inst, dagster_rs.DagsterInstance)
        for run in runs:
            inst.add_run(run)
    finally:
        inst.dispose()
    return home


def _sql(db: Path, statement: str, *params: Any) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(statement, params)
        conn.commit()
    finally:
        conn.close()


# -- corrupt run bodies --------------------------------------------------------------------------

CORRUPT_BODIES = {
    "truncated_json": '{"__class__": "PipelineRun", "job_name": ',
    "empty": "",
    "plain_json_object": '{"hello": "world"}',
    "json_list": "[1, 2]",
    "unknown_class": '{"__class__": "NoSuchThing", "x": 1}',
    "another_class": serialize_value(DaemonHeartbeat(1.0, "SENSOR", None, [])),
    "null": None,
}


@pytest.fixture(params=sorted(CORRUPT_BODIES))
def corrupt_home(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str, str]:
    """A dagster-rs home with one good run and one whose stored body is replaced by garbage."""
    good = DagsterRun(job_name="fine", run_id=make_new_run_id(), tags={"ok": "yes"})
    bad = DagsterRun(job_name="broken", run_id=make_new_run_id(), tags={"ok": "no"})
    home = _rust_home_with_runs(tmp_path, good, bad)
    _sql(
        runs_db(home),
        "UPDATE runs SET run_body = ? WHERE run_id = ?",
        CORRUPT_BODIES[request.param],
        bad.run_id,
    )
    return home, good.run_id, bad.run_id


def test_corrupt_body_raises_corrupt_record_error(corrupt_home: tuple[Path, str, str]) -> None:
    home, good_id, bad_id = corrupt_home
    inst = load_instance(home)
    try:
        with pytest.raises(CorruptRecordError) as info:
            inst.get_run_by_id(bad_id)
        # Catchable the ways stock's own errors for a bad body are (DeserializationError for a
        # wrong shape, ValueError for malformed JSON), and naming the run.
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, DeserializationError)
        assert bad_id in str(info.value)
        # The rest of the storage is still usable.
        good = inst.get_run_by_id(good_id)
        assert good is not None
        assert good.tags == {"ok": "yes"}
        assert inst.get_runs(RunsFilter(run_ids=[good_id])) == [good]
        assert inst.get_runs_count() == 2
        assert set(inst.get_run_ids()) == {good_id, bad_id}
        rust_error = info.value
    finally:
        inst.dispose()

    # Code written for stock (catching what stock raises here) also catches dagster-rs's error.
    write_home(home, "stock")
    stock = load_instance(home)
    try:
        with pytest.raises(Exception) as stock_info:
            stock.get_run_by_id(bad_id)
    finally:
        stock.dispose()
    for handled in (DeserializationError, ValueError):
        if isinstance(stock_info.value, handled):
            assert isinstance(rust_error, handled)


def test_corrupt_body_bulk_reads_raise_naming_the_run(corrupt_home: tuple[Path, str, str]) -> None:
    home, _, bad_id = corrupt_home
    inst = load_instance(home)
    try:
        reads: list[Callable[[], object]] = [
            inst.get_runs,
            inst.get_run_records,
            lambda: inst.get_runs(RunsFilter(job_name="broken")),
        ]
        for read in reads:
            with pytest.raises(CorruptRecordError) as info:
                read()
            assert isinstance(info.value, ValueError)
            assert bad_id in str(info.value), f"error does not name the run: {info.value}"
    finally:
        inst.dispose()


# -- storage files dagster-rs must not use --------------------------------------------------------

UNKNOWN_REVISION = "ffffdeadbeef"


def _fingerprint(home: Path) -> dict[str, Any]:
    db = runs_db(home)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    wal = db.with_name("runs.db-wal")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        conn.close()
    return {
        "sha256": digest,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "counts": counts,
        "revision": revision,
    }


def _attempt(home: Path, operation: Callable[[DagsterInstance], object]) -> object:
    inst = None
    try:
        inst = load_instance(home)
        return operation(inst)
    finally:
        if inst is not None:
            inst.dispose()


OPERATIONS: dict[str, Callable[[DagsterInstance], object]] = {
    "get_runs_count": lambda inst: inst.get_runs_count(),
    "get_runs": lambda inst: inst.get_runs(),
    "add_run": lambda inst: inst.add_run(DagsterRun(job_name="late", run_id=make_new_run_id())),
    "add_run_tags": lambda inst: inst.add_run_tags("existing-run", {"k": "v"}),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_unknown_alembic_revision_is_served_by_stocks_code(tmp_path: Path, operation: str) -> None:
    """A runs.db a newer Dagster stamped: dagster-rs never touches it; stock's code serves the
    runs domains on it exactly as stock's instance does (tests/test_old_revisions.py has the
    other files and revisions)."""
    outcomes = {}
    for kind in ("stock", "rust"):
        home = _rust_home_with_runs(
            tmp_path / kind, DagsterRun(job_name="old", run_id="existing-run")
        )
        _sql(runs_db(home), "UPDATE alembic_version SET version_num = ?", UNKNOWN_REVISION)
        before = _fingerprint(home)
        write_home(home, kind)
        inst = load_instance(home)
        try:
            if kind == "rust":
                assert isinstance(inst, dagster_rs.DagsterInstance)
                assert "runs" not in inst.rust_domains
                assert type(inst.run_storage) is SqliteRunStorage
            outcome = call(OPERATIONS[operation], inst)
            outcomes[kind] = (outcome.error, _plain(outcome.value), inst.get_runs_count())
        finally:
            inst.dispose()
        after = _fingerprint(home)
        assert after["revision"] == before["revision"] == [(UNKNOWN_REVISION,)]
    assert outcomes["rust"] == outcomes["stock"]


def _plain(value: object) -> object:
    if isinstance(value, DagsterRun):
        return ("run", value.job_name)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_unknown_alembic_revision_served_from_dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _rust_home_with_runs(tmp_path, DagsterRun(job_name="old", run_id="existing-run"))
    _sql(runs_db(home), "UPDATE alembic_version SET version_num = ?", UNKNOWN_REVISION)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    inst = DagsterInstance.get()
    try:
        run = inst.get_run_by_id("existing-run")
        assert run is not None and run.job_name == "old"
        assert "runs" not in inst.rust_domains  # type: ignore[attr-defined]
    finally:
        inst.dispose()
    assert _fingerprint(home)["revision"] == [(UNKNOWN_REVISION,)]


# A read-only runs.db. Tests run as root, whom file modes do not stop: the probe runs in a child
# process that first gives up the capabilities that let root bypass them (it stays uid 0, so it
# can still reach the interpreter under /root).
READ_ONLY_PROBE = """\
import json, os, sys
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun
import dagster_rs

home = sys.argv[1]
db = os.path.join(home, "history", "runs.db")
result = {}
try:
    with open(db, "r+b"):
        pass
    result["file_writable"] = True
except OSError:
    result["file_writable"] = False
probe = os.path.join(home, "history", "probe")
try:
    with open(probe, "w"):
        pass
    os.remove(probe)
    result["dir_writable"] = True
except OSError:
    result["dir_writable"] = False


def attempt(name, operation):
    inst = None
    try:
        inst = DagsterInstance.from_config(home)
        result[name] = {"ok": True, "value": operation(inst), "class": type(inst).__name__}
    except Exception as exc:
        result[name] = {
            "ok": False,
            "type": type(exc).__module__ + "." + type(exc).__qualname__,
            "storage_error": isinstance(exc, dagster_rs.DagsterRsStorageError),
            "message": str(exc),
        }
    finally:
        if inst is not None:
            try:
                inst.dispose()
            except Exception:
                pass


attempt("count", lambda inst: inst.get_runs_count())
attempt("add", lambda inst: inst.add_run(DagsterRun(job_name="ro", run_id="ro-run")).run_id)
print("RESULT " + json.dumps(result), flush=True)
"""

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3


def _drop_file_capabilities() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _home_with_one_run(tmp_path: Path, kind: str) -> Path:
    home = write_home(tmp_path / f"{kind}_home", kind)
    inst = load_instance(home)
    try:
        inst.add_run(DagsterRun(job_name="old", run_id="existing-run"))
    finally:
        inst.dispose()
    db = runs_db(home)
    for leftover in (db.with_name("runs.db-wal"), db.with_name("runs.db-shm")):
        if leftover.exists() and leftover.stat().st_size == 0:
            leftover.unlink()
    return home


def _probe_read_only(home: Path, read_only: str, script: Path) -> dict[str, Any]:
    """Make runs.db (`file`), its directory too (`directory`) or the whole home (`home`)
    read-only, run the probe against it, restore the modes; return the probe's findings."""
    history = runs_db(home).parent
    if read_only == "home":
        targets = [home, *home.rglob("*")]
    else:
        targets = [*history.glob("runs.db*")]
        if read_only == "directory":
            targets.append(history)
    originals = {p: stat.S_IMODE(p.stat().st_mode) for p in targets}
    try:
        for path in targets:
            path.chmod(0o555 if path.is_dir() else 0o444)
        proc = subprocess.run(
            [sys.executable, str(script), str(home)],
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=_drop_file_capabilities if os.geteuid() == 0 else None,
        )
    finally:
        for path, mode in originals.items():
            path.chmod(mode)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"probe failed ({proc.returncode}):\n{proc.stderr}"
    result = json.loads(lines[-1].removeprefix("RESULT "))
    if result["file_writable"] or (read_only != "file" and result["dir_writable"]):
        pytest.skip("could not make runs.db read-only for the probe process (running privileged)")
    return result


@pytest.mark.parametrize("read_only", ["file", "directory"])
def test_read_only_runs_db(tmp_path: Path, read_only: str) -> None:
    home = _home_with_one_run(tmp_path, "rust")
    before = _fingerprint(home)
    script = tmp_path / "probe.py"
    script.write_text(READ_ONLY_PROBE)
    result = _probe_read_only(home, read_only, script)

    add = result["add"]
    assert not add["ok"], "add_run succeeded on a read-only runs.db"
    assert add["storage_error"], f"expected DagsterRsStorageError, got {add['type']}: {add}"
    assert "runs.db" in add["message"], add["message"]
    count = result["count"]
    # Reading may work (the file is there) or be refused clearly; it must not be garbage.
    if count["ok"]:
        assert count["value"] == 1
    else:
        assert count["storage_error"], f"expected DagsterRsStorageError, got {count}"
        assert "runs.db" in count["message"], count["message"]

    after = _fingerprint(home)
    assert after["counts"] == before["counts"]
    assert after["sha256"] == before["sha256"]


def test_read_only_dagster_home(tmp_path: Path) -> None:
    """The whole home read-only: the stock-served domains (event log, schedules) fail first, as
    they do on stock; whatever fails must fail as clearly as on stock, and nothing is written."""
    script = tmp_path / "probe.py"
    script.write_text(READ_ONLY_PROBE)
    results = {}
    befores = {}
    for kind in ("stock", "rust"):
        home = _home_with_one_run(tmp_path, kind)
        befores[kind] = (home, _fingerprint(home))
        results[kind] = _probe_read_only(home, "home", script)

    for operation in ("count", "add"):
        rust, stock = results["rust"][operation], results["stock"][operation]
        if operation == "add":
            assert not rust["ok"], "add_run succeeded on a read-only DAGSTER_HOME"
        if rust["ok"]:
            assert rust["value"] == 1
        else:
            assert rust["storage_error"] or rust["type"] == stock.get("type"), (rust, stock)
    for home, before in befores.values():
        after = _fingerprint(home)
        assert after["counts"] == before["counts"]


# -- wrong argument types: the same exception class as stock, nothing stored --------------------

WRONG_CALLS: dict[str, Callable[[DagsterInstance], object]] = {
    "add_run(dict)": lambda i: i.add_run({"run_id": "x", "job_name": "j"}),  # type: ignore[arg-type]
    "add_run(None)": lambda i: i.add_run(None),  # type: ignore[arg-type]
    "add_run(str)": lambda i: i.add_run("a-run-id"),  # type: ignore[arg-type]
    "storage.add_run(dict)": lambda i: i.run_storage.add_run({}),  # type: ignore[arg-type]
    "add_historical_run(dict)": lambda i: i.run_storage.add_historical_run(
        {},  # type: ignore[arg-type]
        datetime(2020, 1, 1, tzinfo=timezone.utc),
    ),
    "add_run_tags(int value)": lambda i: i.add_run_tags("seed", {"k": 1}),  # type: ignore[dict-item]
    "add_run_tags(list)": lambda i: i.add_run_tags("seed", [("k", "v")]),  # type: ignore[arg-type]
    "add_run_tags(int run_id)": lambda i: i.add_run_tags(5, {"k": "v"}),  # type: ignore[arg-type]
    "add_run_tags(missing run)": lambda i: i.add_run_tags("missing", {"k": "v"}),
    "get_runs(filters=str)": lambda i: i.get_runs(filters="x"),  # type: ignore[arg-type]
    "get_runs(limit=str)": lambda i: i.get_runs(limit="10"),  # type: ignore[arg-type]
    "get_runs(cursor=int)": lambda i: i.get_runs(cursor=5),  # type: ignore[arg-type]
    "get_runs_count(dict)": lambda i: i.get_runs_count({"job_name": "j"}),  # type: ignore[arg-type]
    "get_run_records(order_by=bogus)": lambda i: i.get_run_records(order_by="bogus"),
    "has_run(int)": lambda i: i.has_run(5),  # type: ignore[arg-type]
    "delete_run(int)": lambda i: i.delete_run(5),  # type: ignore[arg-type]
    "handle_run_event(str)": lambda i: i.handle_run_event("seed", "event"),  # type: ignore[arg-type]
    "add_backfill(dict)": lambda i: i.add_backfill({}),  # type: ignore[arg-type]
    "get_run_group(missing)": lambda i: i.get_run_group("missing"),
    "add_run(missing snapshot)": lambda i: i.add_run(
        DagsterRun(job_name="j", run_id="with-missing-snapshot", job_snapshot_id="f" * 40)
    ),
}


SEED = DagsterRun(job_name="seed_job", run_id="seed", tags={"a": "1"})


@pytest.fixture(scope="module")
def seeded_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstancePair]:
    """One stock and one dagster-rs instance holding the same single run (shared, for speed)."""
    base = tmp_path_factory.mktemp("wrong_calls")
    p = InstancePair(make_instance(base, "stock"), make_instance(base, "rust"))
    try:
        p.both(lambda inst: inst.add_run(SEED))
        yield p
    finally:
        p.stock.dispose()
        p.rust.dispose()


def _state(inst: DagsterInstance) -> tuple[Any, ...]:
    return (
        inst.get_runs(),
        sorted((k, sorted(v)) for k, v in inst.get_run_tags(["a", "k"])),
        inst.get_backfills_count(),
    )


@pytest.mark.parametrize("call", sorted(WRONG_CALLS))
def test_wrong_arguments_raise_like_stock(seeded_pair: InstancePair, call: str) -> None:
    pair = seeded_pair
    try:
        outcome = pair.same(WRONG_CALLS[call])
        assert outcome.error is not None, f"{call} did not raise"
        assert pair.stock.get_runs() == [SEED]
        assert _state(pair.rust) == _state(pair.stock)
        assert pair.rust.get_runs() == [SEED]
    finally:
        # Undo anything a misbehaving call stored, so the other cases start from the seed alone.
        for inst in (pair.stock, pair.rust):
            for run_id in inst.get_run_ids():
                if run_id != SEED.run_id:
                    inst.delete_run(run_id)


@pytest.mark.parametrize("bad", [{"run_id": "x"}, None, "run", 42])
def test_add_run_wrong_type_is_check_error(rust_instance: DagsterInstance, bad: Any) -> None:
    with pytest.raises(CheckError):
        rust_instance.add_run(bad)
    assert rust_instance.get_runs_count() == 0


# -- duplicates ----------------------------------------------------------------------------------


def test_duplicate_add_run_keeps_the_original(pair: InstancePair) -> None:
    original = DagsterRun(job_name="first_job", run_id="dup-run", tags={"a": "1", "shared": "x"})
    impostor = DagsterRun(
        job_name="second_job",
        run_id="dup-run",
        status=DagsterRunStatus.SUCCESS,
        tags={"b": "2", "shared": "y"},
    )
    pair.both(lambda inst: inst.add_run(original))
    outcome = pair.same(lambda inst: inst.add_run(impostor))
    assert outcome.error is DagsterRunAlreadyExists

    for inst in (pair.rust, pair.stock):
        assert inst.get_run_by_id("dup-run") == original
        assert inst.get_runs_count() == 1
        assert inst.get_run_ids(RunsFilter(job_name="second_job")) == []
        assert inst.get_run_ids(RunsFilter(tags={"b": "2"})) == []
        assert inst.get_run_ids(RunsFilter(tags={"shared": "x"})) == ["dup-run"]
        assert inst.get_run_ids(RunsFilter(statuses=[DagsterRunStatus.SUCCESS])) == []
        assert "b" not in inst.get_run_tag_keys()
    # The tags table holds exactly the original's rows, as stock's does.
    assert _tag_rows(pair.rust, "dup-run") == _tag_rows(pair.stock, "dup-run")


def _tag_rows(inst: DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    db = Path(inst.root_directory) / "history" / "runs.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(
            conn.execute("SELECT key, value FROM run_tags WHERE run_id = ?", (run_id,)).fetchall()
        )
    finally:
        conn.close()


def test_duplicate_historical_run_keeps_the_original(rust_instance: DagsterInstance) -> None:
    original = DagsterRun(job_name="first_job", run_id="dup-hist", tags={"a": "1"})
    created = datetime(2021, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    rust_instance.run_storage.add_historical_run(original, created)
    with pytest.raises(DagsterRunAlreadyExists):
        rust_instance.run_storage.add_historical_run(
            DagsterRun(job_name="second_job", run_id="dup-hist", tags={"b": "2"}),
            datetime(2022, 1, 1, tzinfo=timezone.utc),
        )
    record = rust_instance.get_run_record_by_id("dup-hist")
    assert record is not None
    assert record.dagster_run == original
    assert record.create_timestamp == created
