"""`dagster-rs check`: real damage fails it, crash leftovers and older revisions do not, and it
passes exactly when stock and dagster-rs read the home the same, through every read shape."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from dagster import DagsterRunStatus, RunsFilter

from dagster_rs import check_reads, cli
from dagster_rs.home_files import examine, stock_revisions
from tests import cli_homes as homes
from tests.conftest import KINDS


@pytest.fixture(scope="module")
def rich_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A home written by stock and one written by dagster-rs, filled alike."""
    root = tmp_path_factory.mktemp("check_homes")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_RS_DOMAINS", raising=False)
        return {kind: homes.make_home(root, kind) for kind in KINDS}


@pytest.fixture
def home(rich_homes: dict[str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(rich_homes["rust"], copy)
    return copy


def check(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.main, ["check", "--home", str(home), *args])


def domain_line(output: str, domain: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"  {domain}: ")]


# -- a sound home --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_check_passes_reading_every_domain_with_the_homes_values(
    rich_homes: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    home = tmp_path / kind
    shutil.copytree(rich_homes[kind], home)
    result = check(home, "--verbose")
    out = result.output
    assert result.exit_code == 0, out
    assert "DIFFERENT" not in out
    for domain in ("runs", "config", "assets", "events", "scheduling", "storage"):
        (line,) = domain_line(out, domain)
        n = int(line.split(": ")[1].split()[0])
        assert n > 0 and line.endswith(f"{n} reads, {n} same"), line
    assert "dagster-rs domains read: assets, config, events, run_launcher, runs" in out
    # The arguments are the home's own values, and the reads find what the home holds.
    for shape in (
        "runs: get_runs_count no filter: same (8)",
        "runs: get_run_records tag team=data (common) (25): same (7 item(s))",
        "runs: get_runs_count tag team in ['data', 'ml']: same (8)",
        "runs: get_run_records status FAILURE (25): same (1 item(s))",
        "runs: get_run_records queued, oldest first: same (1 item(s))",
        "runs: get_run_records no filter, page 2 (cursor): same (3 item(s))",
        "runs: get_run_group (re-executed run): same (2 item(s))",
        "runs: get_backfills status REQUESTED: same (1 item(s))",
        "config: get_daemon_heartbeats: same (1 item(s))",
        "config: get_cursor_values (2 keys): same (2 item(s))",
        "assets: get_materialized_partitions lettered: same (2 item(s))",
        "assets: fetch_materializations plain page 2 (cursor): same (1 record(s))",
        "assets: fetch_observations plain (25): same (1 record(s))",
        "assets: get_asset_check_execution_history plain:plain_positive (25): same (4 item(s))",
        "events: fetch_run_status_changes RUN_SUCCESS page 2 (cursor): same (3 record(s))",
        "scheduling: all_instigator_state SENSOR: same (2 item(s))",
        "storage: get_dynamic_partitions fruits: same (2 item(s))",
        "storage: get_concurrency_info (up to 10 keys): same (1 item(s))",
    ):
        assert f"    {shape}" in out, shape
    ticks = [line for line in out.splitlines() if "scheduling: get_ticks " in line]
    assert len(ticks) == 4 and all(line.endswith("same (3 item(s))") for line in ticks), ticks
    assert sum(line.startswith("    events: get_run_step_stats ") for line in out.splitlines()) == 3
    assert out.rstrip().splitlines()[-1].startswith("ok: ")


def test_check_writes_nothing(home: Path) -> None:
    homes.checkpoint_all(home)
    homes.leave_empty_shard(home)
    homes.leave_tableless_shard(home)
    homes.leave_half_built_shard(home)
    homes.leave_hot_journal(homes.run_shard(home))
    before = homes.contents(home)
    check(home)
    assert homes.contents(home) == before


def test_check_reads_a_home_with_runs_only_without_creating_files(home: Path) -> None:
    shutil.rmtree(home / "history/runs")
    shutil.rmtree(home / "schedules")
    before = homes.contents(home)
    result = check(home)
    assert result.exit_code == 0, result.output
    assert "  history/runs/index.db  absent (created on first use)" in result.output
    assert "  schedules/schedules.db  absent (created on first use)" in result.output
    assert "history/runs/index.db is absent: each instance reads a new one of its own" in (
        result.output
    )
    assert homes.contents(home) == before
    assert not (home / "schedules").exists()


# -- crash leftovers: named, not failed ----------------------------------------------------------


def test_benign_leftovers_are_reported_not_failed(home: Path) -> None:
    empty = homes.leave_empty_shard(home)
    tableless = homes.leave_tableless_shard(home)
    hot = homes.run_shard(home)
    homes.leave_hot_journal(hot)
    journal = Path(f"{hot}-journal").read_bytes()
    result = check(home)
    out = result.output
    assert result.exit_code == 0, out
    assert "1 empty shard(s) (zero bytes: created by a killed writer; used normally)" in out
    assert "1 shard(s) without tables (created by a killed writer; used normally)" in out
    assert "1 shard(s) with a hot rollback journal" in out
    assert f"examined all {len(homes.shards(home))} run shard(s)" in out
    # Their runs are read as each implementation reads them, on copies: the same.
    (line,) = domain_line(out, "leftover shards (the 3 leftover shard(s), on copies)")
    assert line.endswith("15 reads, 15 same"), line
    assert empty.stat().st_size == 0
    assert tableless.exists() and Path(f"{hot}-journal").read_bytes() == journal


def test_a_hot_journal_is_rolled_back_on_a_copy(home: Path) -> None:
    shard = homes.run_shard(home)
    with homes.connect(shard) as conn:
        rows = conn.execute("SELECT * FROM event_logs ORDER BY id").fetchall()
    homes.leave_hot_journal(shard)
    spoiled, journal = shard.read_bytes(), Path(f"{shard}-journal").read_bytes()
    report = examine(str(shard), "shard", stock_revisions())
    assert (report.state, report.hot_journal, report.integrity) == ("ok", True, "ok")
    assert "spill" not in report.table_names  # the interrupted transaction's table: rolled back
    assert (shard.read_bytes(), Path(f"{shard}-journal").read_bytes()) == (spoiled, journal)
    # The state examined is the one the next read-write open of the file gives.
    with homes.connect(shard) as conn:
        assert conn.execute("SELECT * FROM event_logs ORDER BY id").fetchall() == rows
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'spill'").fetchone()


def test_a_hot_journal_on_a_main_file_is_read_on_copies(home: Path) -> None:
    homes.checkpoint_all(home)
    schedules = home / "schedules/schedules.db"
    homes.leave_hot_journal(schedules, "job_ticks", "tick_body")
    before = homes.contents(home)
    result = check(home)
    assert result.exit_code == 0, result.output
    assert "schedules/schedules.db  ok, revision" in result.output
    assert "a hot rollback journal beside it" in result.output
    assert "schedules/schedules.db is read on copies" in result.output
    (line,) = domain_line(result.output, "scheduling")
    assert "DIFFERENT" not in line
    assert homes.contents(home) == before


def test_a_half_built_shard_is_a_leftover_both_read_alike(home: Path, tmp_path: Path) -> None:
    """A stock writer killed while creating a shard leaves some tables and no stamp: stock
    completes it and carries on, and so does dagster-rs (store-files); check says what it is and
    passes."""
    shard = homes.leave_half_built_shard(home)
    run_id = shard.stem
    # The oracle, independent of check: both implementations read the run alike.
    assert not homes.differing_reads(
        home,
        tmp_path,
        {
            "records": lambda i: i.get_records_for_run(run_id, limit=10).records,
            "stats": lambda i: i.get_run_stats(run_id),
        },
    )
    result = check(home)
    out = result.output
    assert result.exit_code == 0, out
    assert "1 half-built shard(s) (some tables, no alembic stamp" in out
    (line,) = domain_line(out, "leftover shards (the 1 leftover shard(s), on copies)")
    assert line.endswith("5 reads, 5 same"), line


# -- real damage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["history/runs/index.db", "history/runs.db", "shard"])
def test_a_corrupt_page_fails(home: Path, which: str) -> None:
    path = homes.run_shard(home) if which == "shard" else home / which
    homes.corrupt(path)
    result = check(home)
    assert result.exit_code == 1, result.output
    assert "the home fails its check" in result.output
    assert f"{path.relative_to(home)}: damaged" in result.output


@pytest.mark.parametrize("which", ["schedules/schedules.db", "shard"])
def test_a_file_that_is_not_a_database_fails(home: Path, which: str) -> None:
    path = homes.run_shard(home) if which == "shard" else home / which
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"not a database at all\n" * 300)
    result = check(home)
    assert result.exit_code == 1, result.output
    assert f"{path.relative_to(home)}: not a SQLite database" in result.output


@pytest.mark.parametrize("which", ["schedules/schedules.db", "history/runs.db", "shard"])
def test_an_unknown_revision_fails(home: Path, which: str) -> None:
    path = homes.run_shard(home) if which == "shard" else home / which
    homes.stamp(path, "ffffffffffff")
    before = path.read_bytes()
    result = check(home)
    assert result.exit_code == 1, result.output
    assert "revision ffffffffffff is unknown to this Dagster" in result.output
    assert f"{path.relative_to(home)}: revision ffffffffffff" in result.output
    assert path.read_bytes() == before


@pytest.mark.parametrize("missing", ["history/runs.db", "history/runs/index.db"])
def test_a_main_file_other_files_need_is_missing(home: Path, missing: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home / missing}{suffix}").unlink(missing_ok=True)
    result = check(home)
    assert result.exit_code == 1, result.output
    assert f"{missing} is missing while" in result.output
    assert not (home / missing).exists()


def test_a_home_without_files_fails(tmp_path: Path) -> None:
    home = homes.write_home(tmp_path / "empty", "rust")
    result = check(home)
    assert result.exit_code == 1
    assert "history/runs.db" in result.output and "missing" in result.output
    assert not (home / "history").exists()


# -- older revisions: advice ---------------------------------------------------------------------


def _older_revision() -> str:
    revisions = stock_revisions()
    return sorted(revisions.known - {revisions.head})[0]


@pytest.mark.parametrize("which", ["history/runs.db", "schedules/schedules.db", "shard"])
def test_an_older_revision_is_advice(home: Path, tmp_path: Path, which: str) -> None:
    """Stock serves a file at an older revision as it is; so does dagster-rs (natively when the
    file has what its native path reads, as here). Check advises `dagster instance migrate`
    and passes."""
    path = homes.run_shard(home) if which == "shard" else home / which
    rev = _older_revision()
    homes.stamp(path, rev)
    run_id = path.stem
    oracle: dict[str, Any] = {
        "history/runs.db": {
            "count": lambda i: i.get_runs_count(),
            "tag": lambda i: i.get_run_records(RunsFilter(tags={"team": "data"}), limit=5),
        },
        "schedules/schedules.db": {"states": lambda i: i.all_instigator_state()},
        "shard": {"records": lambda i: i.get_records_for_run(run_id, limit=50).records},
    }[which]
    assert not homes.differing_reads(home, tmp_path, oracle)
    result = check(home)
    out = result.output
    assert result.exit_code == 0, out
    assert "DIFFERENT" not in out
    if which != "shard":
        assert (
            f"advice: {which} is at {rev}, older than {stock_revisions().head}: stock serves it"
            " as it is, and so does dagster-rs, natively; `dagster instance migrate` brings it"
            " to the head" in out
        )
    else:
        assert (
            "advice: 1 run shard(s) at an older revision: stock serves them as they are; run"
            " `dagster instance migrate` to bring them to the head" in out
        )


def test_a_wal_left_beside_an_older_file_stays_as_it_was(home: Path) -> None:
    """A writer that exited without closing leaves its committed transactions in the `-wal`;
    the last connection to close folds them into the file. Check asks about such a file on a
    copy, so the home keeps its `-wal` byte for byte."""
    homes.checkpoint_all(home)
    runs = home / "history/runs.db"
    homes.stamp(runs, _older_revision())
    leave = (
        "import os, sqlite3\n"
        f"c = sqlite3.connect({str(runs)!r})\n"
        "c.execute('PRAGMA journal_mode = WAL')\n"
        "c.execute(\"INSERT INTO kvs (key, value) VALUES ('left', 'in the wal')\")\n"
        "c.commit()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", leave], check=True)
    wal = Path(f"{runs}-wal")
    assert wal.stat().st_size > 0
    before = homes.contents(home)
    result = check(home)
    assert result.exit_code == 0, result.output
    assert homes.contents(home) == before


# -- homes dagster-rs cannot serve ---------------------------------------------------------------


def test_the_047_layout_passes_iff_both_read_tags_the_same(home: Path, tmp_path: Path) -> None:
    """Migration 047's layout (every home created before Dagster 1.9.3 and migrated): check
    passes exactly when dagster-rs serves its tag reads as stock does."""
    homes.convert_to_047(home / "history/runs.db")
    differing = homes.differing_reads(
        home,
        tmp_path,
        {
            "tag filter": lambda i: i.get_run_records(RunsFilter(tags={"team": "data"})),
            "tag count": lambda i: i.get_runs_count(RunsFilter(tags={"team": "data"})),
            "tags": lambda i: i.get_run_tags(tag_keys=["team"]),
            "tag + status": lambda i: i.get_runs(
                RunsFilter(tags={"team": "data"}, statuses=[DagsterRunStatus.SUCCESS])
            ),
        },
    )
    result = check(home)
    out = result.output
    assert "run_tags index layout: 047 (migrated)" in out
    if differing:
        assert result.exit_code == 1, out
        for shape in (
            "runs: get_run_records tag team=data (common) (25): DIFFERENT",
            "runs: get_runs_count tag team=data (common): DIFFERENT",
            "runs: get_run_tags team: DIFFERENT",
        ):
            assert f"    {shape}" in out, shape
        assert "read(s) differ between stock and dagster-rs" in out
    else:
        assert result.exit_code == 0, out
        assert "DIFFERENT" not in out


def test_a_read_that_differs_fails_the_check_and_is_named(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = check_reads.all_reads
    monkeypatch.setattr(
        check_reads,
        "all_reads",
        lambda d, b: [
            *reads(d, b),
            check_reads.Read("config", "instance class", lambda i: type(i).__module__),
        ],
    )
    result = check(home)
    out = result.output
    assert result.exit_code == 1, out
    assert "    config: instance class: DIFFERENT" in out
    assert "      stock:      'dagster._core.instance.instance'" in out
    assert "      dagster-rs: 'dagster_rs.instance'" in out
    (line,) = domain_line(out, "config")
    assert line.endswith("3 reads, 2 same, 1 DIFFERENT"), line
    assert "1 read(s) differ between stock and dagster-rs:\n    config: instance class" in out


# -- large homes ---------------------------------------------------------------------------------


def test_many_shards_are_sampled_unless_full(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "SHARD_SAMPLE", 2)
    empty = homes.leave_empty_shard(home)
    os.utime(empty, (1, 1))  # the oldest: sampled for being empty, not for being new
    total = len(homes.shards(home))
    assert total > 4
    result = check(home)
    assert result.exit_code == 0, result.output
    # The newest, one at random, and every one a listing flags (the empty one).
    said = f"examined {{}} of {total} run shards (the 1 newest, 1 at random, and every one"
    assert said.format(3) in result.output or said.format(2) in result.output
    assert "1 empty shard(s)" in result.output
    assert "--full examines all" in result.output
    result = check(home, "--full")
    assert result.exit_code == 0, result.output
    assert f"examined all {total} run shard(s)" in result.output


def test_the_bounds_are_said(home: Path) -> None:
    result = check(home)
    bounds = check_reads.Bounds()
    assert f"bounded: {bounds.describe()}" in result.output
    assert "values drawn from the 500 newest runs" in result.output
