"""The storage behaviours that differ between releases of the tested range (compat.py's probes).

Each probe asks the installed stock's code what it does; here each answer is checked against
what that stock is seen to do on a real home, so a probe that misreads a release fails on it.
The differential suites then check that dagster-rs does the same (tests/runs/test_filters.py,
tests/assets/test_asset_writes.py, tests/assets/test_storage.py). `compat.left_to_stock()` lists
what stock's code serves for such a release, and `dagster-rs info` says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as db
from click.testing import CliRunner
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.events import DagsterEventType, RunFailureReason
from dagster._core.storage.event_log.schema import AssetKeyTable

from dagster_rs import cli, compat
from dagster_rs.storage.assets_domain import AssetsDomain
from tests.assets.conftest import RUN_POOL, mat, obs, store
from tests.conftest import make_instance, write_home
from tests.runs.helpers import T0, drive, make_run, rid

KEY = AssetKey(["probe"])


@pytest.fixture
def stock(tmp_path: Path) -> Iterator[DagsterInstance]:
    inst = make_instance(tmp_path, "stock")
    try:
        yield inst
    finally:
        inst.dispose()


def test_failure_tag_probe_matches_stock(stock: DagsterInstance) -> None:
    stock.add_run(make_run(1, status=DagsterRunStatus.STARTED))
    drive(
        stock,
        rid(1),
        [(DagsterEventType.RUN_FAILURE, T0)],
        failure_reason=RunFailureReason.STEP_FAILURE,
    )
    record = stock.get_run_record_by_id(rid(1))
    assert record is not None
    assert record.dagster_run.tags["dagster/failure_reason"] == "STEP_FAILURE"
    # the event's time on the row, or the wall clock of a later tag write
    assert (record.update_timestamp == T0) is compat.stock_tags_failure_in_status_update()


def test_wipe_probe_matches_stock(stock: DagsterInstance) -> None:
    store(stock, [mat(RUN_POOL[0], KEY, time.time())])
    stock.wipe_assets([KEY])
    with stock.event_log_storage.index_connection() as conn:  # type: ignore[attr-defined]
        kept = conn.execute(
            db.select(AssetKeyTable.c.last_materialization).where(
                AssetKeyTable.c.asset_key == KEY.to_string()
            )
        ).scalar_one()
    assert (kept is None) is compat.stock_wipe_clears_last_materialization()


def test_wipe_filter_probe_matches_stock(stock: DagsterInstance) -> None:
    # The wiped asset is shown again by an event that is not a materialization: a stock that
    # keeps the row's record and reads it regardless of the wipe still returns it.
    store(stock, [mat(RUN_POOL[0], KEY, time.time())])
    stock.wipe_assets([KEY])
    store(stock, [obs(RUN_POOL[1], KEY, time.time() + 0.01)])
    latest = stock.get_latest_materialization_events([KEY])
    hidden = latest.get(KEY) is None
    assert hidden is (
        compat.stock_skips_records_older_than_wipe()
        or compat.stock_wipe_clears_last_materialization()
    )


@pytest.mark.parametrize("count", [1, 2])
def test_partition_paging_probe_matches_stock(stock: DagsterInstance, count: int) -> None:
    stock.add_dynamic_partitions("probe", [f"p{n}" for n in range(count)])
    page = stock.event_log_storage.get_paginated_dynamic_partitions(
        "probe", limit=count, ascending=True
    )
    assert page.results == [f"p{n}" for n in range(count)]
    assert (not page.has_more) is compat.stock_pages_partitions_one_past()


def test_left_to_stock_follows_the_probes() -> None:
    left = compat.left_to_stock()
    wipe = "AssetsDomain.wipe_asset"
    assert (wipe in left) is not compat.stock_wipe_clears_last_materialization()
    # what is listed is stock's method, not the native one
    assert ("wipe_asset" in vars(AssetsDomain)) is (wipe not in left)
    assert set(left) <= {wipe}


def test_info_lists_what_stock_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = write_home(tmp_path / "home", "rust")
    monkeypatch.setitem(compat.LEFT_TO_STOCK, "AssetsDomain.probe", "a reason given")
    result = CliRunner().invoke(cli.main, ["info", "--home", str(home)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "AssetsDomain.probe: stock's code serves it (a reason given)" in result.output
    for method, because in compat.left_to_stock().items():
        assert f"{method}: stock's code serves it ({because})" in result.output


def test_instance_info_lists_what_stock_serves(tmp_path: Path) -> None:
    inst = make_instance(tmp_path, "rust")
    try:
        info = inst.info_dict()["dagster_rs"]["dagster"]  # type: ignore[index]
        assert info["left_to_stock"] == compat.left_to_stock()
    finally:
        inst.dispose()
