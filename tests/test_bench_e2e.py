"""The end-to-end benches at tiny sizes: `bench graphql` and `bench multiprocess` (no timing
assertions: performance is measured by `python -m dagster_rs.bench`, never by a test)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, execute_job

from dagster_rs.bench import graphql, multiprocess


def test_graphql_fill_is_the_data_it_describes(tmp_path: Path) -> None:
    facts = graphql.fill(str(tmp_path), 1_000, 7, lambda _line: None)
    common, rare = facts["selectivities"]
    with sqlite3.connect(tmp_path / "history" / "runs.db") as conn:

        def tagged(key: str, value: str) -> int:
            return int(
                conn.execute(
                    "SELECT count(*) FROM run_tags WHERE key = ? AND value = ?", (key, value)
                ).fetchone()[0]
            )

        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1_000
        # The counts the bench reports are the file's.
        assert tagged(common["key"], common["value"]) == common["matches"]
        assert tagged(rare["key"], rare["value"]) == rare["matches"]
        assert 50 < common["matches"] < 150 and 0 < rare["matches"] < 10
        # Started runs have their start time, finished ones their end time too.
        no_times = conn.execute(
            "SELECT count(*) FROM runs WHERE status IN ('SUCCESS', 'FAILURE', 'CANCELED')"
            " AND (start_time IS NULL OR end_time IS NULL OR end_time < start_time)"
        ).fetchone()[0]
        assert no_times == 0
    conn.close()


def test_graphql_bench_compares_both_sides(tmp_path: Path) -> None:
    out = tmp_path / "graphql.json"
    proc = subprocess.run(
        [sys.executable, "-m", "dagster_rs.bench", "graphql", "--quick", "--runs", "300"]
        + ["--json", str(out), "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GraphQL results compared whole: equal" in proc.stdout
    data = json.loads(out.read_text())
    assert data["_meta"]["mismatches"] == []
    for name in ("common tag", "rare tag"):
        entry = data[f"graphql runsOrError ({name}, limit 50)"]
        assert entry["returned"] == min(50, entry["matches"])
        assert entry["floor_us"] > 0 and entry["stock_us"] > 0 and entry["rust_us"] > 0
    # The homes are removed afterwards.
    assert not list(tmp_path.glob("dagster-rs-bench-graphql-*"))


def test_fan_job_has_the_steps_it_says() -> None:
    job = multiprocess.fan_job(7)
    names = {node.name for node in job.graph.nodes}
    assert names == {"source", "sink", *(f"step_{i:03d}" for i in range(1, 6))}
    # Every middle step takes the source's output; the sink takes all of them.
    deps = job.graph.dependency_structure
    sink = job.graph.node_named("sink")
    assert len(deps.input_to_upstream_outputs_for_node(sink.name)[sink.get_input("xs")]) == 5
    with pytest.raises(ValueError):
        multiprocess.fan_job(2)


def test_fan_job_runs_in_process_on_the_in_memory_instance() -> None:
    recon = multiprocess.reconstructable_fan(5)
    with DagsterInstance.ephemeral() as instance:
        with execute_job(
            recon, instance=instance, run_config=multiprocess.run_config("ephemeral")
        ) as result:
            assert result.success
            # source gives 1, step i gives 1 + i: (1 + 1) + (1 + 2) + (1 + 3).
            assert result.output_for_node("sink") == 9


def test_in_memory_instance_still_refuses_the_multiprocess_executor() -> None:
    refusal = multiprocess.ephemeral_refuses_multiprocess(multiprocess.reconstructable_fan(3))
    assert refusal.startswith("DagsterUnmetExecutorRequirementsError: ")
    assert "ephemeral" in refusal
