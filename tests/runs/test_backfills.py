"""Backfills (bulk actions): add / update / get_backfill / get_backfills / get_backfills_count."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey, StaticPartitionsDefinition, asset
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus, PartitionBackfill

from tests.conftest import call
from tests.homes import seeded_pair
from tests.runs.helpers import T0, job_backfill
from tests.stock_api import requires_stock

B = BulkActionStatus
PARTS = StaticPartitionsDefinition(["a", "b", "c"])


@asset(partitions_def=PARTS)
def upstream() -> None: ...


@asset(partitions_def=PARTS, deps=[upstream])
def downstream() -> None: ...


ASSET_GRAPH = AssetGraph.from_assets([upstream, downstream])


def ts(minutes: float) -> float:
    return (T0 + timedelta(minutes=minutes)).timestamp()


def asset_backfill(
    backfill_id: str, timestamp: float, tags: dict[str, str], partitions=("a", "b")
) -> PartitionBackfill:
    """An asset backfill, built the way the UI's launch mutation does."""
    return PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id,
        asset_graph=ASSET_GRAPH,
        partition_names=list(partitions),
        asset_selection=[AssetKey("upstream"), AssetKey("downstream")],
        backfill_timestamp=timestamp,
        tags=tags,
        dynamic_partitions_store=None,  # type: ignore[arg-type]  # static partitions only
        all_partitions=False,
        title=f"asset backfill {backfill_id}",
        description="seeded",
        run_config=None,
    )


def backfills() -> list[PartitionBackfill]:
    """Seeded backfills, in insertion order (deliberately not timestamp order)."""
    return [
        asset_backfill("bf_3", ts(2), {"team": "x", "env": "prod"}),
        job_backfill("bf_1", "job_a", ts(0), tags={"team": "x"}),
        job_backfill(
            "bf_2",
            "job_b",
            ts(1),
            B.COMPLETED_SUCCESS,
            {"team": "y", "env": "prod"},
            location="loc2",
        ),
        asset_backfill("bf_5", ts(4) + 0.5, {"team": "z"}).with_status(B.CANCELED),
        job_backfill("bf_4", "job_a", ts(3), B.FAILED),
        job_backfill("bf_7", "job_b", ts(6), B.COMPLETED_FAILED, {"team": "x"}),
        job_backfill("bf_6", "job_a", ts(5), B.CANCELING, {"env": "dev"}),
    ]


SELECTOR_A = job_backfill("x", "job_a", 0.0).selector_id
SELECTOR_B2 = job_backfill("x", "job_b", 0.0, location="loc2").selector_id


def seed(inst) -> None:
    for bf in backfills():
        inst.add_backfill(bf)


seeded = seeded_pair("backfills", seed)


def bids(items) -> list[str]:
    return [b.backfill_id for b in items]


PLUS2 = timezone(timedelta(hours=2))

# Each filter's arguments (`bulk_filter` builds it).
FILTERS: dict[str, dict | None] = {
    "none": None,
    "empty": dict(),
    "status": dict(statuses=[B.REQUESTED]),
    "statuses": dict(statuses=[B.CANCELED, B.CANCELING, B.FAILED]),
    "status_unused": dict(statuses=[B.FAILING]),
    "created_after": dict(created_after=T0 + timedelta(minutes=2)),
    "created_before": dict(created_before=T0 + timedelta(minutes=4)),
    "created_before_fraction": dict(created_before=T0 + timedelta(minutes=4, seconds=0.5)),
    "created_after_fraction": dict(created_after=T0 + timedelta(minutes=4)),
    "created_window": dict(
        created_after=T0 + timedelta(minutes=1), created_before=T0 + timedelta(minutes=5)
    ),
    "created_before_plus2": dict(created_before=datetime(2024, 1, 1, 0, 3, tzinfo=PLUS2)),
    "backfill_ids": dict(backfill_ids=["bf_2", "bf_5", "bf_99"]),
    "job_a": dict(job_name="job_a"),
    "job_missing": dict(job_name="job_z"),
    "tag": dict(tags={"team": "x"}),
    "tag_list": dict(tags={"team": ["x", "z"]}),
    "tags_two": dict(tags={"team": "x", "env": "prod"}),
    "tag_missing": dict(tags={"nope": "x"}),
    "selector": dict(selector_id=SELECTOR_A),
    "selector_loc2": dict(selector_id=SELECTOR_B2),
    "selector_missing": dict(selector_id="0" * 40),
    "combo": dict(
        statuses=[B.REQUESTED, B.COMPLETED_FAILED, B.CANCELING],
        job_name="job_a",
        created_after=T0 - timedelta(days=1),
    ),
    "combo_tags_status": dict(tags={"team": ["x", "y"]}, statuses=[B.REQUESTED]),
}


def bulk_filter(name: str) -> BulkActionsFilter | None:
    arguments = FILTERS[name]
    return None if arguments is None else BulkActionsFilter(**arguments)


def cases(names) -> list:
    """`names` as parameters; a filter by partition-set selector needs a stock that has one."""
    needs = requires_stock("BulkActionsFilter.selector_id")
    return [
        pytest.param(n, marks=needs) if "selector_id" in (FILTERS[n] or {}) else n for n in names
    ]


@pytest.mark.parametrize("name", cases(FILTERS))
def test_get_backfills_filtered(seeded, name):
    f = bulk_filter(name)
    seeded.same(lambda i: list(i.get_backfills(filters=f)))
    seeded.same(lambda i: bids(i.run_storage.get_backfills(filters=f)))
    seeded.same(lambda i: bids(i.get_backfills(filters=f, limit=2)))
    count = seeded.same(lambda i: i.get_backfills_count(filters=f))
    assert count.value == len(seeded.same(lambda i: i.get_backfills(filters=f)).value)


EXPECTED = {
    "none": ["bf_6", "bf_7", "bf_4", "bf_5", "bf_2", "bf_1", "bf_3"],
    "statuses": ["bf_6", "bf_4", "bf_5"],
    "created_before_fraction": ["bf_4", "bf_2", "bf_1", "bf_3"],
    "created_after_fraction": ["bf_6", "bf_7", "bf_5"],
    "job_a": ["bf_6", "bf_4", "bf_1"],
    "tag_list": ["bf_7", "bf_5", "bf_1", "bf_3"],
    "tags_two": ["bf_3"],
    "selector": ["bf_6", "bf_4", "bf_1"],
    "selector_loc2": ["bf_2"],
}


@pytest.mark.parametrize("name", cases(EXPECTED))
def test_get_backfills_expected(seeded, name):
    out = seeded.same(lambda i: bids(i.get_backfills(filters=bulk_filter(name))))
    assert out.value == EXPECTED[name]


@pytest.mark.parametrize("status", list(B), ids=lambda s: s.value)
def test_get_backfills_by_status_argument(seeded, status):
    seeded.same(lambda i: bids(i.get_backfills(status=status)))
    seeded.same(lambda i: bids(i.run_storage.get_backfills(status=status, limit=1)))


def test_status_and_filters_together_raise(seeded):
    out = seeded.same(
        lambda i: i.get_backfills(status=B.REQUESTED, filters=BulkActionsFilter(job_name="job_a"))
    )
    assert out.error is DagsterInvariantViolationError
    out = seeded.same(
        lambda i: i.run_storage.get_backfills(status=B.REQUESTED, filters=BulkActionsFilter())
    )
    assert out.error is DagsterInvariantViolationError


@pytest.mark.parametrize("limit", [1, 2, 3, 10])
@pytest.mark.parametrize("fname", ["none", "tag_list", "job_a"])
def test_backfill_cursor_paging(seeded, limit, fname):
    f = bulk_filter(fname)

    def walk(inst):
        pages, cursor = [], None
        for _ in range(20):
            page = bids(inst.get_backfills(filters=f, cursor=cursor, limit=limit))
            pages.append(page)
            if len(page) < limit:
                break
            cursor = page[-1]
        return pages

    out = seeded.same(walk)
    flat = [b for page in out.value for b in page]
    assert len(flat) == len(set(flat))


@pytest.mark.parametrize("cursor", ["bf_1", "bf_5", "bf_6", "bf_3", "unknown"])
def test_backfill_cursor(seeded, cursor):
    out = seeded.same(lambda i: bids(i.get_backfills(cursor=cursor)))
    if cursor == "bf_5":
        assert out.value == ["bf_2", "bf_1", "bf_3"]


def test_get_backfill(seeded):
    for bf in backfills():
        out = seeded.same(lambda i, b=bf: i.get_backfill(b.backfill_id))
        assert out.value == bf
    assert seeded.same(lambda i: i.get_backfill("bf_99")).value is None
    assert seeded.same(lambda i: i.run_storage.get_backfill("")).value is None


def test_asset_backfill_round_trip_keeps_asset_data(seeded):
    out = seeded.same(lambda i: i.get_backfill("bf_3"))
    assert out.value.is_asset_backfill
    assert out.value.asset_backfill_data is not None
    assert out.value.job_name is None and out.value.selector_id is None


# -- mutations ---------------------------------------------------------------------------------


def test_update_backfill(fast_pair):
    fast_pair.both(seed)
    original = backfills()[1]  # bf_1, REQUESTED
    updated = (
        original.with_status(B.COMPLETED_SUCCESS)
        .with_partition_checkpoint("p2")
        .with_end_timestamp(ts(9))
    )
    out = fast_pair.same(lambda i: i.update_backfill(updated))
    assert out.value is None
    got = fast_pair.same(lambda i: i.get_backfill("bf_1"))
    assert got.value == updated
    by_status = fast_pair.same(
        lambda i: bids(i.get_backfills(filters=BulkActionsFilter(statuses=[B.COMPLETED_SUCCESS])))
    )
    assert by_status.value == ["bf_2", "bf_1"]
    fast_pair.same(lambda i: bids(i.get_backfills(status=B.REQUESTED)))
    fast_pair.same(lambda i: i.get_backfills_count(BulkActionsFilter(statuses=[B.REQUESTED])))
    # Updating does not move the backfill in the id order, nor change its creation time.
    fast_pair.same(lambda i: bids(i.get_backfills()))
    fast_pair.same(
        lambda i: bids(
            i.get_backfills(filters=BulkActionsFilter(created_before=T0 + timedelta(minutes=1)))
        )
    )


def test_update_backfill_changing_tags_keeps_tag_index(fast_pair):
    """The backfill tags table is written on add only; updates change the body alone."""
    fast_pair.both(seed)
    retagged = backfills()[1]._replace(tags={"team": "moved"})
    fast_pair.both(lambda i: i.update_backfill(retagged))
    fast_pair.same(lambda i: bids(i.get_backfills(filters=BulkActionsFilter(tags={"team": "x"}))))
    fast_pair.same(
        lambda i: bids(i.get_backfills(filters=BulkActionsFilter(tags={"team": "moved"})))
    )
    fast_pair.same(lambda i: i.get_backfills_count(BulkActionsFilter(tags={"team": "x"})))
    fast_pair.same(lambda i: i.get_backfills_count(BulkActionsFilter(tags={"team": "moved"})))


def test_update_unknown_backfill_raises(fast_pair):
    out = fast_pair.same(lambda i: i.update_backfill(job_backfill("nope", "job_a", ts(0))))
    assert out.error is DagsterInvariantViolationError
    assert fast_pair.same(lambda i: i.get_backfill("nope")).value is None
    assert fast_pair.same(lambda i: i.get_backfills_count()).value == 0


def test_add_duplicate_backfill_raises(fast_pair):
    """Stock lets the database's integrity error through (a SQLAlchemy class, not part of
    Dagster's API), so only the fact that both refuse is compared, and that nothing changed."""
    fast_pair.both(seed)
    dup = job_backfill("bf_1", "job_b", ts(8))
    stock, rust = (
        call(lambda i: i.add_backfill(dup), fast_pair.stock),
        call(lambda i: i.add_backfill(dup), fast_pair.rust),
    )
    assert stock.error is not None
    assert rust.error is not None, "dagster-rs accepted a duplicate backfill id"
    fast_pair.same(lambda i: i.get_backfill("bf_1"))
    fast_pair.same(lambda i: i.get_backfills_count())


def test_empty_storage(fast_pair):
    assert fast_pair.same(lambda i: i.get_backfills()).value == []
    assert fast_pair.same(lambda i: i.get_backfills_count()).value == 0
    fast_pair.same(lambda i: i.get_backfills(filters=BulkActionsFilter(tags={"a": "b"})))
