"""A full disk mid-write, differential: a small tmpfs holds a home, filled up while each
implementation writes.

Events are stored into an existing run until the file system is full, then into a new run (its
shard cannot be created, or only partly: stock creates a shard's tables one by one) and a run is
added. Every failure is the class stock raises (`sqlalchemy.exc.OperationalError` wrapping
sqlite3's "database or disk is full"), dagster-rs's also a `DagsterRsStorageError`. Then space
is freed: both implementations keep writing and reading every run of both homes, everything
acknowledged before is there, and `integrity_check` is ok on every file.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.mounts import SCRIPT_HELPERS, run_scenario, umount
from tests.processes import write_script

SCENARIO = f"""\
import gc, json, logging, os, sqlite3, sys, time
sys.path.insert(0, os.getcwd())
{SCRIPT_HELPERS}
import sqlalchemy.exc as sa_exc
from dagster import DagsterInstance
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRun
import dagster_rs

root = sys.argv[1]
SIZE_MB = 16
RUST_YAML = "instance_class:\\n  module: dagster_rs\\n  class: DagsterInstance\\n"


def entry(run_id, message):
    return EventLogEntry(error_info=None, level=logging.INFO, user_message=message,
                         run_id=run_id, timestamp=time.time())


def describe(exc):
    orig = getattr(exc, "orig", None)
    return {{
        "mro": [f"{{c.__module__}}.{{c.__qualname__}}" for c in type(exc).__mro__],
        "orig": f"{{type(orig).__module__}}.{{type(orig).__qualname__}}" if orig else None,
        "cause_is_orig": orig is not None and exc.__cause__ is orig,
        "errorname": getattr(orig, "sqlite_errorname", None),
        "message": str(exc)[:400],
    }}


def instance(home, kind):
    with open(os.path.join(home, "dagster.yaml"), "w") as f:
        f.write(RUST_YAML if kind == "rust" else "")
    return DagsterInstance.from_config(home)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


result = {{}}
mounted = []
try:
    for kind in ("stock", "rust"):
        mnt = os.path.join(root, kind)
        os.makedirs(mnt, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={{SIZE_MB}}m", "tmpfs", mnt], check=True)
        mounted.append(mnt)
        home = os.path.join(mnt, "home")
        os.makedirs(home)
        # The home made by stock, closed; then the implementation under test writes into it.
        inst = instance(home, "stock")
        inst.add_run(DagsterRun(job_name="job", run_id="steady"))
        inst.dispose()
        inst = instance(home, kind)
        # Leave a little room: the next writes fill the disk.
        with open(os.path.join(mnt, "filler"), "wb") as f:
            f.write(b"\\0" * max(0, free_bytes(mnt) - 1_500_000))
        acknowledged = []
        failures = {{}}
        big = "x" * 60_000
        for i in range(10_000):
            try:
                inst.store_event(entry("steady", f"{{i:05d}} {{big}}"))
                acknowledged.append(i)
            except Exception as exc:
                failures["store_event"] = describe(exc)
                break
        for name, op in [
            ("store_event_new_run", lambda: inst.store_event(entry("fresh", "first " + big))),
            ("add_run", lambda: [inst.add_run(DagsterRun(job_name="job", run_id=f"late-{{j}}",
                                                          tags={{"t": big}})) for j in range(50)]),
        ]:
            try:
                op()
                failures[name] = None
            except Exception as exc:
                failures[name] = describe(exc)
        inst.dispose()
        del inst
        gc.collect()
        os.remove(os.path.join(mnt, "filler"))
        # Space again: both implementations carry on in this home, in turn.
        after = {{}}
        for other in (kind, "stock" if kind == "rust" else "rust"):
            i2 = instance(home, other)
            i2.store_event(entry("steady", f"after {{other}}"))
            i2.store_event(entry("fresh", f"after {{other}}"))
            i2.add_run(DagsterRun(job_name="job", run_id=f"after-{{other}}"))
            after[other] = {{
                "steady": [e.user_message[:5] for e in i2.all_logs("steady")],
                "fresh": [e.user_message[:11] for e in i2.all_logs("fresh")],
                "runs": sorted(r.run_id for r in i2.get_runs()),
            }}
            i2.dispose()
            del i2
            gc.collect()
        checks = {{}}
        for dirpath, _, files in os.walk(home):
            for name in files:
                if name.endswith(".db"):
                    p = os.path.join(dirpath, name)
                    with sqlite3.connect(p) as c:
                        checks[os.path.relpath(p, home)] = c.execute("PRAGMA integrity_check").fetchone()[0]
        result[kind] = {{
            "acknowledged": len(acknowledged),
            "failures": failures,
            "after": after,
            "integrity": checks,
        }}
finally:
    gc.collect()
    for mnt in mounted:
        umount(mnt)
print("RESULT " + json.dumps(result), flush=True)
"""


def test_full_disk_mid_write(tmp_path: Path) -> None:
    script = write_script(tmp_path / "full_disk.py", SCENARIO)
    root = tmp_path / "mnt"
    root.mkdir()
    try:
        done = run_scenario(script, str(root), timeout=900)
    finally:
        for kind in ("stock", "rust"):
            umount(root / kind)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-5000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    print(
        json.dumps(
            {
                k: {
                    "acknowledged": v["acknowledged"],
                    "failures": v["failures"],
                    "after": v["after"],
                }
                for k, v in result.items()
            },
            indent=1,
        )[:6000]
    )

    for kind in ("stock", "rust"):
        r = result[kind]
        assert r["acknowledged"] > 0, r
        failure = r["failures"]["store_event"]
        assert failure is not None, f"{kind}: the disk never filled"
        assert "database or disk is full" in failure["message"], failure
        # Every event acknowledged before the disk filled is there, in order, then both later
        # writes; the run added before, and the runs added after, are all listed.
        first, second = r["after"][kind], r["after"]["stock" if kind == "rust" else "rust"]
        expected = [f"{i:05d}" for i in range(r["acknowledged"])]
        for seen in (first, second):
            assert seen["steady"][: len(expected)] == expected, (kind, seen["steady"])
            # The write that failed may have committed before its error (a checkpoint at the
            # connection's close fails after the commit): at most that one event more.
            extra = seen["steady"][len(expected) :]
            assert extra[:1] in ([], [f"{r['acknowledged']:05d}"], ["after"]), extra
            assert "steady" in seen["runs"] and f"after-{kind}" in seen["runs"], seen["runs"]
        assert second["steady"][-2:] == ["after", "after"], second["steady"][-3:]
        assert second["fresh"][-2:] == ["after stock", "after rust "[: len("after rust")]] or (
            [m.strip() for m in second["fresh"][-2:]]
            == sorted([m.strip() for m in second["fresh"][-2:]], key=lambda m: m != f"after {kind}")
        ), second["fresh"]
        assert set(r["integrity"].values()) == {"ok"}, r["integrity"]

    for name in ("store_event", "store_event_new_run", "add_run"):
        stock, rust = result["stock"]["failures"][name], result["rust"]["failures"][name]
        if stock is None:
            # Stock got through (the new run's shard fitted): then so may dagster-rs.
            continue
        assert rust is not None, f"{name}: stock failed ({stock['message']}), dagster-rs did not"
        stock_class = stock["mro"][0]
        assert stock_class in rust["mro"], (name, stock_class, rust["mro"])
        assert "dagster_rs.errors.DagsterRsStorageError" in rust["mro"], (name, rust)
        if stock["orig"]:
            assert rust["orig"] == stock["orig"], (name, stock, rust)
            assert rust["cause_is_orig"], rust
