"""`dagster-rs bench --backend postgres` end to end: on a throwaway cluster it starts and removes,
and on a given server it leaves running. Both sides' answers must agree (the bench exits 1 on a
mismatch, and when a write's floor replay stored something else than the op), every op is in the
JSON with whether dagster-rs served it in Rust or fell back to stock dagster-postgres, a fallback
never carries a floor, and an op served in Rust always has one (its native calls replayed). The
native PostgreSQL backend serves runs, config and scheduling, so every op here is served in Rust.
No figure is asserted (timings are the bench's to report, not a test's), only connection counts:
stock opens one or more per call, dagster-rs's pool none after warm-up.

Needs an interpreter with stock dagster-postgres (`.venv-pg`: bash scripts/pg_venv.sh) and the
PostgreSQL server binaries: skipped without them, failed under DAGSTER_RS_REQUIRE_PG=1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dagster_rs import pg_cluster as pgc
from dagster_rs.bench import pg_env, postgres_argv
from dagster_rs.bench.pg import OPS, SCALE_OPS

ROOT = Path(__file__).resolve().parent.parent


def _pg_ready() -> str | None:
    """Why the end-to-end tests cannot run here (None: they can)."""
    if not pgc.available():
        return "no PostgreSQL server binaries (scripts/setup.sh installs Debian's postgresql)"
    try:
        pg_env.interpreter()
    except pg_env.NoPgVenv:
        return "no interpreter with dagster-postgres (bash scripts/pg_venv.sh makes .venv-pg)"
    return None


@pytest.fixture
def pg_ready() -> None:
    reason = _pg_ready()
    if reason is not None:
        if os.environ.get("DAGSTER_RS_REQUIRE_PG") == "1":
            pytest.fail(f"DAGSTER_RS_REQUIRE_PG=1 but {reason}")
        pytest.skip(reason)


def _run(
    args: list[str], env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    env.pop(pg_env.REEXEC_MARK, None)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900
    )


def _check_payload(payload: dict[str, Any], expected_ops: list[str]) -> None:
    meta = payload["_meta"]
    assert meta["backend"] == "postgres"
    assert re.match(r"\d+(\.\d+)?", meta["server_version"])
    assert meta["mismatches"] == []
    assert [op for op in payload if op != "_meta"] == expected_ops
    for op in expected_ops:
        entry = payload[op]
        assert entry["stock_us"] > 0 and entry["rust_us"] > 0, op
        assert entry["served"] in ("rust", "fallback"), op
        # The domain is live in Rust exactly when the op says it was served there.
        assert (entry["served"] == "rust") == (entry["domain"] in meta["rust_domains"]), op
        if entry["served"] == "fallback":
            assert entry["floor_us"] is None and entry["floor_note"], op
        else:
            # Served in Rust: the floor is measured by replaying the op's native calls.
            assert entry["floor_note"] is None, (op, entry["floor_note"])
            assert entry["floor_us"] > 0 and entry["rust_over_floor"] > 0, op
        assert set(entry["connections_per_1000"]) == {"stock", "rust"}, op
        # Writes and the run-list shapes at scale carry the target; other reads none.
        base = op.removesuffix("/047")
        write = base in {o.name for o in OPS if o.write}
        run_shape = base in {o.name for o in SCALE_OPS if o.group == "runs"}
        # Every run shape at scale says its run_tags layout (047's rows are named so).
        layout = "047" if op.endswith("/047") else "fresh" if run_shape else None
        assert entry["layout"] == layout, op
        if write or run_shape:
            assert entry["target"] and isinstance(entry["target_met"], bool), op
        else:
            assert entry["target"] is None and entry["target_met"] is None, op
    assert meta["targets_missed"] == [
        op for op in expected_ops if payload[op]["target_met"] is False
    ]
    assert meta["fallback_ops"] == [
        op for op in expected_ops if payload[op]["served"] == "fallback"
    ]
    assert set(meta["floor"]) == {"runs", "config", "scheduling"}
    # The native PostgreSQL backend serves these domains (the bench's ops are of the first
    # three): nothing falls back, and the floor probe opens each native store.
    assert meta["rust_domains"] == ["config", "runs", "scheduling", "storage"]
    assert meta["fallback_ops"] == []
    assert meta["floor"] == {"runs": None, "config": None, "scheduling": None}


@pytest.mark.usefixtures("pg_ready")
def test_quick_json_on_a_throwaway_cluster(tmp_path: Path) -> None:
    """The CLI (from whatever interpreter runs the tests: it re-executes with .venv-pg's when
    this one lacks dagster-postgres) benches every op, and the cluster is gone afterwards."""
    out = tmp_path / "pg.json"
    proc = _run(
        ["-m", "dagster_rs.cli", "bench", "--backend", "postgres", "--quick", "--json", str(out)]
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    payload = json.loads(out.read_text())
    _check_payload(payload, [op.name for op in OPS])
    assert payload["_meta"]["server"] == "throwaway"
    # Stock dagster-postgres opens a connection per storage call (NullPool).
    counts = payload["add_run"]["connections_per_1000"]
    assert counts["stock"] is not None and counts["stock"] >= 1000
    # dagster-rs's pool connected when the instance opened; the timed calls reuse its sessions
    # (exact counts from the server log here: at most one reconnect over the whole run).
    overall = payload["_meta"]["connections_per_1000_all"]
    assert overall["stock"] >= 1000
    calls = sum(v["rust"] for v in payload["_meta"]["calls"].values())
    assert overall["rust"] * calls / 1000 <= 1, overall
    for op in (o.name for o in OPS):
        assert payload[op]["connections_per_1000"]["stock"] >= 1000, op
    # The table is Markdown (what the README quotes), one row per op.
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert table[0].split("|")[1].strip() == "op" and len(table) == len(OPS) + 1
    found = re.search(r"throwaway cluster (\S+) \(socket", proc.stdout)
    assert found, proc.stdout[:2000]
    base = Path(found.group(1))
    assert not base.exists()
    assert pgc.pids_in(base / "data") == []


@pytest.mark.usefixtures("pg_ready")
def test_given_server_is_used_and_left_running(pg_cluster: pgc.PgCluster, tmp_path: Path) -> None:
    out = tmp_path / "pg.json"
    url = pg_cluster.url("postgres")
    before = set(pg_cluster.psql("SELECT datname FROM pg_database").split())
    proc = _run(
        [
            "-m",
            "dagster_rs.bench",
            "config",
            "--backend",
            "postgres",
            "--postgres-url",
            url,
            "--quick",
            "--json",
            str(out),
        ]
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    payload = json.loads(out.read_text())
    _check_payload(payload, [op.name for op in OPS if op.group == "config"])
    assert payload["_meta"]["server"] != "throwaway"
    assert "pg_stat_database.sessions" in payload["_meta"]["connections_counted_by"]
    # Still running, and only the bench's own databases were made and dropped.
    assert pg_cluster.pid is not None
    assert pg_cluster.psql("SELECT 1").strip() == "1"
    assert set(pg_cluster.psql("SELECT datname FROM pg_database").split()) == before


@pytest.mark.usefixtures("pg_ready")
def test_scale_variant_small(tmp_path: Path) -> None:
    """`--scale` loads by COPY (checked against stock's own add_run body and create_tick row)
    and compares both sides' answers on every scale shape (small sizes here), on the fresh
    run_tags layout and then on migration 047's (`--scale-layout both`)."""
    out = tmp_path / "pg.json"
    proc = _run(
        [
            "-m",
            "dagster_rs.bench",
            "pg",
            "--quick",
            "--ops",
            "get_runs[tag]",
            "--scale",
            "--scale-runs",
            "3000",
            "--scale-ticks",
            "2000",
            "--scale-layout",
            "both",
            "--json",
            str(out),
        ]
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    payload = json.loads(out.read_text())
    run_shapes = [op.name for op in SCALE_OPS if op.group == "runs"]
    assert len(run_shapes) == 20
    _check_payload(
        payload,
        ["get_runs[tag]", *(op.name for op in SCALE_OPS), *(f"{op}/047" for op in run_shapes)],
    )
    meta = payload["_meta"]
    assert meta["scale_layout"] == "both"
    assert meta["notes"]["scale"]["runs"] == 3000
    assert meta["notes"]["scale"]["ticks"] >= 2000
    assert meta["notes"]["scale"]["layouts"] == ["fresh", "047"]
    # The throwaway cluster's memory is a deployment's, not the test suites' 32MB.
    assert meta["server_settings"]["shared_buffers"] == "1GB"


def test_backend_argument_becomes_the_pg_subcommand() -> None:
    assert postgres_argv(["runs", "--quick"]) == ["runs", "--quick"]
    assert postgres_argv(["runs", "--backend", "sqlite"]) == ["runs"]
    assert postgres_argv(["runs", "--backend", "postgres", "--quick"]) == [
        "pg",
        "--domain",
        "runs",
        "--quick",
    ]
    assert postgres_argv(["--backend=postgres", "--json", "x"]) == ["pg", "--json", "x"]
    with pytest.raises(SystemExit, match="no PostgreSQL bench for 'events'"):
        postgres_argv(["events", "--backend", "postgres"])
    with pytest.raises(SystemExit, match="expected sqlite or postgres"):
        postgres_argv(["--backend", "mysql"])


def test_without_dagster_postgres_the_message_names_the_venv_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pg_env, "has_dagster_postgres", lambda: False)
    monkeypatch.setattr(pg_env, "pg_python", lambda: None)
    with pytest.raises(pg_env.NoPgVenv, match="bash scripts/pg_venv.sh"):
        pg_env.interpreter()
    from click.testing import CliRunner

    from dagster_rs.cli import main

    result = CliRunner().invoke(main, ["bench", "--backend", "postgres", "--quick"])
    assert result.exit_code != 0
    assert "bash scripts/pg_venv.sh" in result.output
