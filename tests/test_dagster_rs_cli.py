"""The `dagster-rs` console script: `info` and `bench` on real homes (`check`:
test_cli_check.py; `optimize`: test_cli_optimize.py)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from dagster import asset, materialize
from dagster._core.scheduler.instigation import TickStatus

from dagster_rs import cli
from dagster_rs.domains import IMPLEMENTED
from tests.conftest import load_instance, write_home
from tests.sensors import add_sensor

SENSORS = 3
TICKS_PER_SENSOR = 7
RUNS = 2


@asset
def upstream() -> int:
    return 1


@asset
def downstream(upstream: int) -> int:
    return upstream + 1


def _fill(home: Path) -> None:
    """Runs with their events and assets, sensors with ticks: every database gets rows."""
    inst = load_instance(home)
    try:
        for _ in range(RUNS):
            assert materialize([upstream, downstream], instance=inst).success
        for i in range(SENSORS):
            add_sensor(
                inst, f"sensor_{i}", [(TickStatus.SKIPPED, "nothing to do")] * TICKS_PER_SENSOR
            )
    finally:
        inst.dispose()


@pytest.fixture(scope="module")
def filled_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A home written by dagster-rs and one written by stock, filled alike."""
    root = tmp_path_factory.mktemp("cli_homes")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_RS_DOMAINS", raising=False)
        homes = {kind: write_home(root / kind, kind) for kind in ("rust", "stock")}
        for home in homes.values():
            _fill(home)
    return homes


@pytest.fixture
def home_copy(filled_homes: dict[str, Path], tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "home"
    shutil.copytree(filled_homes["rust"], copy)
    yield copy


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def _counts(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _table_line(output: str, table: str) -> list[str]:
    return [line.split() for line in output.splitlines() if line.split()[:1] == [table]][0]


# -- info --------------------------------------------------------------------------------------


def test_info_reports_layout_revisions_domains_and_rows(filled_homes: dict[str, Path]) -> None:
    home = filled_homes["rust"]
    result = invoke("info", "--home", str(home))
    assert result.exit_code == 0, result.output
    out = result.output
    head = cli.stock_revisions().head
    for rel in cli.MAIN_DBS:
        assert f"  {rel}  {head} (head)" in out
    assert f"{RUNS} run shard(s)" in out
    assert "instance class: dagster_rs.DagsterInstance" in out
    assert f"domains served by Rust: {', '.join(sorted(IMPLEMENTED))}" in out
    # Row counts are the files' own.
    assert _table_line(out, "runs")[1] == str(RUNS)
    ticks = _counts(home / "schedules/schedules.db", "job_ticks")
    assert ticks == SENSORS * TICKS_PER_SENSOR
    assert _table_line(out, "job_ticks")[1] == str(ticks)
    assert _table_line(out, "asset_keys")[1] == "2"
    shard_events = sum(
        _counts(p, "event_logs")
        for p in (home / "history/runs").glob("*.db")
        if p.name != "index.db"
    )
    lines = out.splitlines()
    shards_at = next(i for i, line in enumerate(lines) if "(2 files, summed)" in line)
    summed = [line.split() for line in lines[shards_at + 1 :] if line.split()[:1] == ["event_logs"]]
    assert summed[0][1] == f"{shard_events:,}"


def test_info_names_a_stock_home_and_the_env_override(
    filled_homes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke("info", "--home", str(filled_homes["stock"]))
    assert result.exit_code == 0, result.output
    assert "domains served by Rust: none (stock instance class)" in result.output
    monkeypatch.setenv("DAGSTER_RS_DOMAINS", "runs,config")
    result = invoke("info", "--home", str(filled_homes["rust"]))
    assert "domains served by Rust: config, runs ($DAGSTER_RS_DOMAINS)" in result.output


def test_info_defaults_to_dagster_home(
    filled_homes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(filled_homes["rust"]))
    result = invoke("info")
    assert result.exit_code == 0, result.output
    assert f"home: {filled_homes['rust']}" in result.output
    monkeypatch.delenv("DAGSTER_HOME")
    result = CliRunner().invoke(cli.main, ["info"])
    assert result.exit_code != 0
    assert "no home" in result.output


def _contents(home: Path) -> dict[Path, bytes]:
    # A WAL reader maps the -shm index (SQLite's shared memory, no data): not compared.
    return {
        p: p.read_bytes() for p in home.rglob("*") if p.is_file() and not p.name.endswith("-shm")
    }


def test_info_writes_nothing(home_copy: Path) -> None:
    before = _contents(home_copy)
    assert invoke("info", "--home", str(home_copy)).exit_code == 0
    assert _contents(home_copy) == before


# -- the console script ------------------------------------------------------------------------


def test_console_script_is_installed(filled_homes: dict[str, Path]) -> None:
    script = Path(sys.executable).with_name("dagster-rs")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("info", "check", "bench"):
        assert command in proc.stdout
    proc = subprocess.run(
        [str(script), "info", "--home", str(filled_homes["rust"])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- bench -------------------------------------------------------------------------------------

# The smallest sizes each bench takes: a real run of every domain's bench in a few seconds.
TINY = {
    "runs": "--n 30 --write-sample 10 --delete-sample 10",
    "events": "--n 20 --status-events 10 --reps 1 --warmup 0 --chain 2",
    "assets": "--assets 2 --partitions 4 --materializations 20 --runs 2 --reps 1 --warmup 0"
    " --chain 2",
    "scheduling": "--sensors 2 --ticks 10 --schedules 1 --backfills 2 --scale-ticks 0 --reps 2"
    " --warmup 1",
    "run_launcher": "--n 5",
    "graphql": "--runs 200",
    "multiprocess": "--steps 3",
}


def test_bench_runs_every_domain_and_sums_up(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--quick", "--json", str(out), "--dir", str(tmp_path)]
    for domain, options in TINY.items():
        args += ["--args", f"{domain}={options}"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for i, domain in enumerate(cli.BENCHES, 1):
        count = len(cli.BENCHES)
        assert any(line.startswith(f"[{i}/{count}] {domain} ... done in ") for line in lines), lines
    data = json.loads(out.read_text())
    assert data["quick"] is True
    assert set(data["domains"]) == set(cli.BENCHES)
    # The summary has every op each bench reported, with its figures, in the table too: the
    # domains' first, then the end-to-end ones.
    for domain, payload in data["domains"].items():
        ops = [op for op, v in payload.items() if isinstance(v, dict) and "stock_us" in v]
        assert ops, domain
        shown = cli.E2E if domain in cli.BENCH_E2E else domain
        summary = [row for row in data["summary"] if row["domain"] == shown and row["op"] in ops]
        assert [row["op"] for row in summary] == ops
        for row in summary:
            entry = payload[row["op"]]
            assert row["stock_us"] == entry["stock_us"] and row["rust_us"] == entry["rust_us"]
            assert row["floor_us"] == entry["floor_us"]
            table_line = next(
                line for line in lines if line.startswith(f"{shown} ") and f" {row['op']} " in line
            )
            assert table_line.split()[-2] == cli.fmt_ratio(row["ratio"])
    # End to end: the events bench's materialize, the GraphQL query at both selectivities (its
    # floor measured), the multiprocess job's three comparisons.
    e2e = [row for row in data["summary"] if row["domain"] == cli.E2E]
    materialize = data["domains"]["events"]["materialize"]
    assert [(r["op"], r["stock_us"], r["rust_us"]) for r in e2e[:2]] == [
        (
            "materialize 2-asset chain (stock persistent vs dagster-rs)",
            materialize["stock_s"] * 1e6,
            materialize["rust_s"] * 1e6,
        ),
        (
            "materialize 2-asset chain (stock in-memory vs dagster-rs)",
            materialize["ephemeral_s"] * 1e6,
            materialize["rust_s"] * 1e6,
        ),
    ]
    graphql = [r for r in e2e if r["op"].startswith("graphql runsOrError")]
    assert [r["op"] for r in graphql] == [
        "graphql runsOrError (common tag, limit 50)",
        "graphql runsOrError (rare tag, limit 50)",
    ]
    assert all(r["floor_us"] > 0 for r in graphql)
    assert data["domains"]["graphql"]["_meta"]["mismatches"] == []
    jobs = [r["op"] for r in e2e if "3-step job" in r["op"]]
    assert len(jobs) == 3, jobs
    # The machine, in the JSON and under the table.
    machine = data["machine"]
    assert set(machine) >= {"cpu", "cores", "memory", "filesystem", "os", "python", "sqlite"}
    assert machine["sqlite"] == sqlite3.sqlite_version
    assert any(
        line.startswith(f"machine: {machine['cpu']}, {machine['cores']} cores") for line in lines
    )
    # Homes are the benches' own, removed afterwards.
    assert not list(tmp_path.glob("dagster-rs-bench-*"))


def test_bench_reports_a_failing_domain(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main, ["bench", "--domain", "runs", "--args", "runs=--n 0", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "[1/1] runs ... FAILED" in result.output
    assert "bench failed for: runs" in result.output


def test_summary_of_canned_results() -> None:
    canned = {
        "graphql": {
            "graphql runsOrError (rare tag, limit 50)": {
                "stock_us": 90_000.0,
                "rust_us": 30_000.0,
                "ratio": 3.0,
                "floor_us": 500.0,
            },
            "_meta": {"bench": "graphql"},
        },
        "runs": {
            "add_run": {"stock_us": 6000.0, "rust_us": 500.0, "ratio": 12.0, "floor_us": 400.0},
            "_meta": {"bench": "runs"},
        },
        "events": {
            "get_stats_for_run": {"stock_us": 3.0, "rust_us": 0.5, "ratio": 6.0, "floor_us": None},
            "materialize": {"n_assets": 20, "rust_s": 0.5, "stock_s": 1.7, "ephemeral_s": 0.4},
        },
    }
    rows = cli.summary_rows(canned)
    # The domains' ops first, then the end-to-end ones (materialize, then the end-to-end benches).
    assert [(r.domain, r.op, r.stock_us, r.rust_us, r.floor_us) for r in rows] == [
        ("runs", "add_run", 6000.0, 500.0, 400.0),
        ("events", "get_stats_for_run", 3.0, 0.5, None),
        (
            "end-to-end",
            "materialize 20-asset chain (stock persistent vs dagster-rs)",
            1.7e6,
            0.5e6,
            None,
        ),
        (
            "end-to-end",
            "materialize 20-asset chain (stock in-memory vs dagster-rs)",
            0.4e6,
            0.5e6,
            None,
        ),
        ("end-to-end", "graphql runsOrError (rare tag, limit 50)", 90_000.0, 30_000.0, 500.0),
    ]
    table = cli.summary_table(rows).splitlines()
    assert table[0].split() == [
        "domain",
        "op",
        "stock",
        "µs",
        "dagster-rs",
        "µs",
        "ratio",
        "floor",
        "µs",
    ]
    assert table[2].split() == ["runs", "add_run", "6,000", "500", "12.0×", "400"]
    assert table[3].split() == ["events", "get_stats_for_run", "3.00", "0.50", "6.0×", "-"]
    assert table[4].split()[-4:] == ["1,700,000", "500,000", "3.4×", "-"]
    # Slower than stock: two decimals.
    assert table[5].split()[-4:] == ["400,000", "500,000", "0.80×", "-"]
    assert table[6].split()[-4:] == ["90,000", "30,000", "3.0×", "500"]


def test_machine_names_what_the_figures_ran_on(tmp_path: Path) -> None:
    info = cli.machine(str(tmp_path))
    with open("/proc/cpuinfo") as f:
        models = {line.split(":", 1)[1].strip() for line in f if line.startswith("model name")}
    assert info["cpu"] in models
    assert info["cores"] == str(os.cpu_count())
    assert info["sqlite"] == sqlite3.sqlite_version
    assert info["python"] == sys.version.split()[0]
    # tmp_path's file system, as /proc/mounts names it.
    fstype = info["filesystem"].split()[0]
    with open("/proc/mounts") as f:
        assert fstype in {line.split()[2] for line in f}
    assert cli.machine("/dev/shm")["filesystem"].startswith("tmpfs ")
    lines = cli.machine_lines(info)
    assert lines[0] == f"machine: {info['cpu']}, {info['cores']} cores, {info['memory']} memory"


def test_info_reports_an_invalid_domain_selection(home_copy: Path) -> None:
    yaml_path = home_copy / "dagster.yaml"
    yaml_path.write_text(yaml_path.read_text() + "rust_domains: [bogus]\n")
    result = invoke("info", "--home", str(home_copy))
    assert result.exit_code == 0, result.output
    assert "domains served by Rust: none (invalid: " in result.output
    assert "bogus" in result.output


def test_info_says_the_run_tags_layout_and_what_optimize_would_change(home_copy: Path) -> None:
    result = invoke("info", "--home", str(home_copy))
    assert result.exit_code == 0, result.output
    assert (
        "  history/runs.db  run_tags index layout: fresh — idx_run_tags (key, value);"
        " idx_run_tags_run_idx (run_id, id)" in result.output
    )
    assert "`dagster-rs optimize` would bring it to 047's" in result.output
    assert invoke("optimize", "--home", str(home_copy)).exit_code == 0
    result = invoke("info", "--home", str(home_copy))
    assert (
        "run_tags index layout: 047 (migrated) — unique idx_run_tags_run_id (key, value, run_id)"
        in result.output
    )
    assert "nothing for `dagster-rs optimize` to change" in result.output


@pytest.mark.parametrize("native", [True, False])
def test_info_says_how_a_file_at_an_older_revision_is_served(home_copy: Path, native: bool) -> None:
    """As the core's verdict (`inspect_database`) says: natively while the file has what the
    native path reads, else on stock's code for that file, until `dagster instance migrate`."""
    revisions = cli.stock_revisions()
    older = sorted(revisions.known - {revisions.head})[0]
    path = home_copy / "schedules/schedules.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (older,))
        if not native:  # a column the native path reads, as a file from before it existed
            conn.execute("DROP INDEX idx_tick_selector_timestamp")
            conn.execute("ALTER TABLE job_ticks DROP COLUMN selector_id")
    conn.close()
    result = invoke("info", "--home", str(home_copy))
    assert result.exit_code == 0, result.output
    said = f"  schedules/schedules.db is at {older}, older than {revisions.head}: stock serves it"
    if native:
        said += " as it is, and so does dagster-rs, natively; `dagster instance migrate` brings"
    else:
        said += (
            " as it is, and so does dagster-rs, on stock's code for this file (its native path"
            " needs job_ticks.selector_id) until `dagster instance migrate`"
        )
    assert said in result.output
    assert "history/runs.db is at" not in result.output


def test_info_says_when_dagster_is_outside_the_tested_range(
    filled_homes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_rs import compat

    result = invoke("info", "--home", str(filled_homes["rust"]))
    assert f"in the range dagster-rs is tested on (dagster{compat.TESTED_RANGE})" in result.output
    monkeypatch.setattr(compat, "dagster_in_range", lambda version=None: False)
    result = invoke("info", "--home", str(filled_homes["rust"]))
    assert result.exit_code == 0, result.output
    assert compat.out_of_range_message() in result.output
    assert (
        "domains served by Rust: none (this Dagster is outside"
        f" dagster{compat.TESTED_RANGE}: every domain is served by stock)" in result.output
    )


def test_info_reads_a_file_with_a_hot_journal_without_rolling_it_back(home_copy: Path) -> None:
    from tests import cli_homes

    cli_homes.checkpoint_all(home_copy)
    schedules = home_copy / "schedules/schedules.db"
    cli_homes.leave_hot_journal(schedules, "job_ticks", "tick_body")
    before = cli_homes.contents(home_copy)
    result = invoke("info", "--home", str(home_copy))
    assert result.exit_code == 0, result.output
    head = cli.stock_revisions().head
    assert (
        f"  schedules/schedules.db  {head} (head) (a hot rollback journal beside it:"
        " `dagster-rs check`)" in result.output
    )
    assert cli_homes.contents(home_copy) == before
