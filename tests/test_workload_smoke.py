"""Smoke tests of the two entry points that are not the library: the workload and the bench.

Both run as subprocesses, exactly as a user runs them. They check that things work and report
what they should; they never assert on speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # A developer's shell settings must not change what is tested.
    for name in ("DAGSTER_RS_DOMAINS", "DAGSTER_RS_DURABILITY", "DAGSTER_HOME"):
        env.pop(name, None)
    return env


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-5000:]}"


def test_workload_runs_on_dagster_rs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = _run(["-m", "dagster_rs.workload", "--home", str(home)], timeout=600)
    assert proc.returncode == 0, _explain(proc)
    out = proc.stdout
    assert "SUCCESS" in out, _explain(proc)
    assert "FAILURE" not in out, _explain(proc)
    served = next(line for line in out.splitlines() if line.startswith("domains served by Rust:"))
    assert "runs" in served, _explain(proc)
    assert "dagster_rs" in out, _explain(proc)
    # The data is where the summary says, in stock Dagster's layout, and stays with --home.
    for rel in ("history/runs.db", "history/runs/index.db", "schedules/schedules.db"):
        assert (home / rel).is_file(), rel
        assert str(home / rel) in out, rel
    assert "dagster_rs" in (home / "dagster.yaml").read_text()


def test_workload_rejects_foreign_dagster_yaml(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = _run(["-m", "dagster_rs.workload", "--home", str(home), "--no-compare"], timeout=120)
    assert proc.returncode != 0, _explain(proc)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_bench_runs_quick_json(tmp_path: Path) -> None:
    from dagster_rs.bench.runs import OPS

    out = tmp_path / "bench.json"
    proc = _run(
        ["-m", "dagster_rs.bench", "runs", "--quick", "--json", str(out), "--dir", str(tmp_path)],
        timeout=600,
    )
    assert proc.returncode == 0, _explain(proc)
    data = json.loads(out.read_text())
    for op in OPS:
        assert op in data, f"{op} missing from {sorted(data)}"
        entry = data[op]
        for key in ("stock_us", "rust_us", "ratio"):
            value = entry[key]
            assert isinstance(value, (int, float)) and value > 0, (op, key, value)
    meta = data["_meta"]
    assert meta["n"] == 300
    assert meta["mismatches"] == []
    assert "runs" in meta["rust_domains"]
    for key in ("dir", "durability", "dagster_version", "dagster_rs_version", "python_version"):
        assert key in meta, key
    for op in OPS:
        assert op in proc.stdout


def test_bench_events_quick_json(tmp_path: Path) -> None:
    from dagster_rs.bench.events import OPS

    out = tmp_path / "events.json"
    proc = _run(
        ["-m", "dagster_rs.bench", "events", "--quick", "--json", str(out), "--dir", str(tmp_path)],
        timeout=600,
    )
    assert proc.returncode == 0, _explain(proc)
    data = json.loads(out.read_text())
    storage_ops = [op for op in OPS if op != "materialize"]
    assert sorted(k for k in data if k not in ("_meta", "materialize")) == sorted(storage_ops)
    for op in storage_ops:
        for key in ("stock_us", "rust_us", "ratio"):
            value = data[op][key]
            assert isinstance(value, (int, float)) and value > 0, (op, key, value)
        assert op in proc.stdout
    meta = data["_meta"]
    assert meta["level"] == "storage"
    assert meta["mismatches"] == []
    assert "events" in meta["rust_domains"]
    assert meta["durability"] == "full"
    e2e = data["materialize"]
    for key in ("rust_s", "stock_s", "ephemeral_s", "rust_over_ephemeral", "stock_over_rust"):
        assert isinstance(e2e[key], float) and e2e[key] > 0, (key, e2e[key])
    assert e2e["n_assets"] == 3 and e2e["reps"] == 1
    assert e2e["events_per_run"] > 0
    assert "dagster-rs / stock ephemeral" in proc.stdout
    # The homes are removed unless --keep.
    assert not list(tmp_path.glob("dagster-rs-bench-*"))


def test_bench_events_rejects_unknown_op(tmp_path: Path) -> None:
    proc = _run(
        ["-m", "dagster_rs.bench", "events", "--quick", "--ops", "nope", "--dir", str(tmp_path)],
        timeout=120,
    )
    assert proc.returncode != 0, _explain(proc)
    assert "unknown op" in proc.stderr + proc.stdout
    assert not list(tmp_path.glob("dagster-rs-bench-*"))
