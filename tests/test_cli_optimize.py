"""`dagster-rs optimize`: runs.db brought to the layout Dagster's migration 047 leaves, or back as
its downgrade leaves it; exactly what stock's alembic does, refused with duplicate tag rows, safe
with the home open elsewhere."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from dagster import DagsterRunStatus, RunsFilter
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

from dagster_rs import cli
from dagster_rs.run_tags_layout import layout_of
from tests import cli_homes as homes
from tests.conftest import KINDS, load_instance, write_home

BEFORE_047 = "16e3655b4d9b"  # migration 047's down_revision


@pytest.fixture(scope="module")
def stock_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_RS_DOMAINS", raising=False)
        return homes.make_home(tmp_path_factory.mktemp("optimize_homes"), "stock")


@pytest.fixture
def home(stock_home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(stock_home, copy)
    return copy


def optimize(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.main, ["optimize", "--home", str(home), *args])


def schema(home: Path) -> list[tuple[Any, ...]]:
    """runs.db's sqlite_master as stored, in its order (the statements' text included)."""
    with homes.connect(home / "history/runs.db") as conn:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()


def stock_migrated(home: Path, dest: Path) -> Path:
    """A copy of `home` whose runs.db stock's alembic brought from 047's down revision to the
    head (047's upgrade, and the later ones'), as `dagster instance migrate` does."""
    shutil.copytree(home, dest)
    homes.stamp(dest / "history/runs.db", BEFORE_047)
    storage = SqliteRunStorage.from_local(str(dest / "history"))
    storage._alembic_upgrade()  # noqa: SLF001 - the upgrade `instance.upgrade()` runs
    storage.dispose()
    return dest


def stock_downgraded(home: Path, dest: Path) -> Path:
    shutil.copytree(home, dest)
    storage = SqliteRunStorage.from_local(str(dest / "history"))
    storage._alembic_downgrade(BEFORE_047)  # noqa: SLF001
    storage.dispose()
    return dest


def test_optimize_leaves_what_stocks_migration_047_leaves(home: Path, tmp_path: Path) -> None:
    expected = schema(stock_migrated(home, tmp_path / "stock"))
    assert schema(home) != expected
    result = optimize(home)
    assert result.exit_code == 0, result.output
    assert schema(home) == expected
    out = result.output
    assert (
        "history/runs.db run_tags layout before: fresh — idx_run_tags (key, value);"
        " idx_run_tags_run_idx (run_id, id)" in out
    )
    assert "ran Dagster's migration 047 (add_run_tags_run_id_idx)'s upgrade" in out
    assert '  CREATE UNIQUE INDEX idx_run_tags_run_id ON run_tags ("key", value, run_id)' in out
    assert "  DROP INDEX idx_run_tags" in out
    assert (
        "history/runs.db run_tags layout after:  047 (migrated) — unique idx_run_tags_run_id"
        " (key, value, run_id); idx_run_tags_run_idx (run_id, id)" in out
    )


def test_undo_leaves_what_stocks_downgrade_leaves(home: Path, tmp_path: Path) -> None:
    migrated = stock_migrated(home, tmp_path / "migrated")
    expected = schema(stock_downgraded(migrated, tmp_path / "downgraded"))
    result = optimize(migrated, "--undo")
    assert result.exit_code == 0, result.output
    assert schema(migrated) == expected
    assert "run_tags layout after:  fresh — idx_run_tags (key, value)" in result.output


def test_optimize_and_undo_are_idempotent(home: Path) -> None:
    fresh = schema(home)
    assert optimize(home).exit_code == 0
    migrated = schema(home)
    result = optimize(home)
    assert result.exit_code == 0, result.output
    assert "already at 047's layout: nothing to change" in result.output
    assert schema(home) == migrated
    for _ in range(2):
        result = optimize(home, "--undo")
        assert result.exit_code == 0, result.output
        # The fresh layout's statements; idx_run_tags is listed last, as after stock's downgrade.
        assert sorted(schema(home)) == sorted(fresh)
    assert "already at the fresh layout: nothing to change" in result.output


def test_optimize_refuses_duplicate_tag_rows_naming_them(home: Path) -> None:
    run_id = homes.run_ids(home)[0]
    with homes.connect(home / "history/runs.db") as conn:
        conn.execute(
            "INSERT INTO run_tags (run_id, key, value) VALUES (?, 'team', 'data')", (run_id,)
        )
    homes.checkpoint_all(home)
    before = homes.contents(home)
    result = optimize(home)
    assert result.exit_code == 1, result.output
    assert (
        "1 (key, value, run_id) tag group(s) have more than one row, so the unique"
        " idx_run_tags_run_id cannot be built; nothing was changed" in result.output
    )
    assert f"  run_id {run_id}  key 'team'  value 'data'  2 rows" in result.output
    assert homes.contents(home) == before
    layout = layout_of(str(home / "history/runs.db"))
    assert layout is not None and layout.is_fresh


def test_optimize_refuses_a_file_of_an_unknown_revision(home: Path) -> None:
    homes.stamp(home / "history/runs.db", "ffffffffffff")
    homes.checkpoint_all(home)
    before = homes.contents(home)
    result = optimize(home)
    assert result.exit_code == 1, result.output
    assert "unknown to this Dagster" in result.output
    assert homes.contents(home) == before


def test_optimize_waits_for_another_writer(home: Path) -> None:
    """A daemon's write transaction in progress: optimize waits for it (busy timeout), then
    runs; both changes are there."""
    held = threading.Event()
    conn_done: list[float] = []

    def writer() -> None:
        conn = homes.sqlite3.connect(home / "history/runs.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO kvs (key, value) VALUES ('held', 'x')")
        held.set()
        time.sleep(1.0)
        conn.execute("COMMIT")
        conn_done.append(time.monotonic())
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    held.wait()
    result = optimize(home)
    finished = time.monotonic()
    thread.join()
    assert result.exit_code == 0, result.output
    assert conn_done and finished >= conn_done[0]
    layout = layout_of(str(home / "history/runs.db"))
    assert layout is not None and layout.is_migrated
    with homes.connect(home / "history/runs.db") as conn:
        assert conn.execute("SELECT value FROM kvs WHERE key = 'held'").fetchone() == ("x",)


TAG_READS = {
    "tag filter": lambda i: [
        r.dagster_run.run_id for r in i.get_run_records(RunsFilter(tags={"team": "data"}))
    ],
    "tag count": lambda i: i.get_runs_count(RunsFilter(tags={"team": "data"})),
    "tags": lambda i: i.get_run_tags(tag_keys=["team"]),
    "tag + status": lambda i: [
        r.run_id
        for r in i.get_runs(RunsFilter(tags={"team": "data"}, statuses=[DagsterRunStatus.SUCCESS]))
    ],
}


def _answers(inst: Any) -> dict[str, Any]:
    return {name: fn(inst) for name, fn in TAG_READS.items()}


def test_a_stock_instance_open_on_the_home_keeps_answering(home: Path, tmp_path: Path) -> None:
    write_home(home, "stock")
    inst = load_instance(home)
    try:
        before = _answers(inst)
        assert before["tag count"] == 7
        assert optimize(home).exit_code == 0
        assert _answers(inst) == before
        assert optimize(home, "--undo").exit_code == 0
        assert _answers(inst) == before
    finally:
        inst.dispose()


@pytest.mark.parametrize("undo", [False, True])
def test_a_dagster_rs_instance_open_on_the_home_keeps_answering(
    home: Path, tmp_path: Path, undo: bool
) -> None:
    """A running webserver or daemon (an open dagster-rs instance, its stores and connections
    warm) answers tag reads as stock does after optimize changes the layout under it."""
    if undo:
        assert optimize(home).exit_code == 0
    stock_copy = tmp_path / "stock_view"
    write_home(home, "rust")
    inst = load_instance(home)
    try:
        before = _answers(inst)
        assert optimize(home, *(["--undo"] if undo else [])).exit_code == 0
        shutil.copytree(home, stock_copy)
        write_home(stock_copy, "stock")
        stock = load_instance(stock_copy)
        try:
            expected = _answers(stock)
        finally:
            stock.dispose()
        assert before == expected
        assert _answers(inst) == expected
    finally:
        inst.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_check_passes_after_optimize_iff_both_read_the_migrated_layout_alike(
    home: Path, tmp_path: Path, kind: str
) -> None:
    """The layout optimize leaves is the one `dagster instance migrate` leaves: check judges it
    as it judges a migrated home."""
    assert optimize(home).exit_code == 0
    differing = homes.differing_reads(home, tmp_path, TAG_READS)
    result = CliRunner().invoke(cli.main, ["check", "--home", str(home)])
    assert "run_tags index layout: 047 (migrated)" in result.output
    assert result.exit_code == (1 if differing else 0), result.output
