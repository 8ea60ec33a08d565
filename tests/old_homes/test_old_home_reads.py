"""Reads on homes from Dagster's history: stock and dagster-rs answer alike.

Every test runs on every (fixture, variant) pair (`old_pair`: two copies of the same files, stock
on one, dagster-rs on the other) and compares what the public API returns, or the exception class
and message it raises. What to ask for (run ids, tags, asset keys, instigators) comes from the
fixture's manifest and from stock's own answers, so no test depends on a release's particulars;
each also checks on stock that its comparison is not vacuous where the manifest says the home
holds such data.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    RunsFilter,
    StaticPartitionsDefinition,
)
from dagster._core.event_api import EventLogCursor, RunStatusChangeRecordsFilter
from dagster._core.events import DagsterEventType
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType, TickStatus
from dagster._time import datetime_from_timestamp

from tests.old_homes.conftest import OldPair, same

ET = DagsterEventType
S = DagsterRunStatus


def rs(inst: DagsterInstance) -> Any:
    return inst.run_storage


def ev(inst: DagsterInstance) -> Any:
    return inst.event_log_storage


def sched(inst: DagsterInstance) -> Any:
    return inst.schedule_storage


def result(res: Any) -> tuple:
    return res.records, res.cursor, res.has_more


# -- runs ----------------------------------------------------------------------------------------


def test_runs_unfiltered(old_pair: OldPair) -> None:
    runs = same(old_pair, lambda i: i.get_runs())
    assert runs is not None and len(runs) == old_pair.home.contents["runs"]
    same(old_pair, lambda i: i.get_runs_count())
    same(old_pair, lambda i: i.get_run_records())
    same(old_pair, lambda i: i.get_run_ids())
    same(old_pair, lambda i: i.get_runs(limit=5))
    same(old_pair, lambda i: i.get_runs(ascending=True, limit=7))
    same(old_pair, lambda i: i.get_run_records(limit=3, ascending=True))
    for run in runs[:: max(1, len(runs) // 6)]:
        same(old_pair, lambda i, r=run.run_id: i.get_run_by_id(r))
        same(old_pair, lambda i, r=run.run_id: i.get_run_record_by_id(r))
        same(old_pair, lambda i, r=run.run_id: i.has_run(r))
    same(old_pair, lambda i: i.get_run_by_id("00000000-0000-4000-8000-00000000dead"))


TAG_FILTERS = {
    "shared": {"team": "data"},
    "rare": {"priority": "high"},
    "two": {"team": "data", "env": "prod"},
    "run-key": {"dagster/run_key": "file-002.csv"},
    "sensor": {"dagster/sensor_name": "file_sensor"},
    "partition": {"dagster/partition": "2024-01-02"},
    "backfill": {"dagster/backfill": "bf0000ab"},
    "schedule": {"dagster/schedule_name": "daily_etl"},
    "one-of": {"env": ["prod", "dev"]},
    "nobody": {"team": "nobody"},
}


@pytest.mark.parametrize("name", list(TAG_FILTERS))
def test_runs_by_tags(old_pair: OldPair, name: str) -> None:
    flt = RunsFilter(tags=TAG_FILTERS[name])
    runs = same(old_pair, lambda i: i.get_runs(flt))
    if name == "shared":
        assert runs, "the shared tag matches runs"
    same(old_pair, lambda i: i.get_run_records(flt))
    same(old_pair, lambda i: i.get_runs_count(flt))
    same(old_pair, lambda i: i.get_runs(flt, limit=2))
    same(old_pair, lambda i: i.get_run_ids(flt, limit=3))
    if runs:
        same(old_pair, lambda i: i.get_runs(flt, cursor=runs[0].run_id, limit=4))


@pytest.mark.parametrize(
    "statuses",
    [[S.SUCCESS], [S.FAILURE, S.CANCELED], [S.QUEUED], [S.STARTED, S.NOT_STARTED, S.CANCELING]],
    ids=lambda s: "+".join(x.value for x in s),
)
def test_runs_by_status(old_pair: OldPair, statuses: list[DagsterRunStatus]) -> None:
    flt = RunsFilter(statuses=statuses)
    same(old_pair, lambda i: i.get_runs(flt))
    same(old_pair, lambda i: i.get_runs_count(flt))
    same(old_pair, lambda i: i.get_run_records(flt, limit=4))
    both = RunsFilter(statuses=statuses, tags={"team": "data"})
    same(old_pair, lambda i: i.get_runs_count(both))


def test_runs_by_job_name(old_pair: OldPair) -> None:
    names = sorted({r.job_name for r in old_pair.stock.get_runs()})
    assert "etl" in names
    for name in [*names, "no_such_job"]:
        flt = RunsFilter(job_name=name)
        same(old_pair, lambda i, f=flt: i.get_runs(f))
        same(old_pair, lambda i, f=flt: i.get_runs_count(f))
        same(old_pair, lambda i, f=flt: i.get_run_records(f, limit=2))


def test_runs_by_id(old_pair: OldPair) -> None:
    ids = [r.run_id for r in old_pair.stock.get_runs()][::3] + ["no-such-run"]
    flt = RunsFilter(run_ids=ids)
    same(old_pair, lambda i: i.get_runs(flt))
    same(old_pair, lambda i: i.get_runs_count(flt))
    same(old_pair, lambda i: i.get_run_records(RunsFilter(run_ids=ids, statuses=[S.SUCCESS])))


def test_runs_created_window(old_pair: OldPair) -> None:
    records = old_pair.stock.get_run_records()
    assert records
    stamps = sorted(r.create_timestamp for r in records)
    mid = stamps[len(stamps) // 2]
    for flt in [
        RunsFilter(created_before=mid),
        RunsFilter(created_after=mid),
        RunsFilter(created_after=stamps[0], created_before=stamps[-1]),
        RunsFilter(created_before=mid, tags={"team": "data"}),
        RunsFilter(updated_after=mid),
        RunsFilter(updated_before=datetime_from_timestamp(2_000_000_000)),
    ]:
        same(old_pair, lambda i, f=flt: i.get_runs(f))
        same(old_pair, lambda i, f=flt: i.get_runs_count(f))
        same(old_pair, lambda i, f=flt: i.get_run_records(f, limit=5))


def test_runs_paged(old_pair: OldPair) -> None:
    limit = 4

    def pages(inst: DagsterInstance, ascending: bool) -> list[list[str]]:
        out: list[list[str]] = []
        cursor = None
        for _ in range(200):
            page = inst.get_runs(cursor=cursor, limit=limit, ascending=ascending)
            out.append([r.run_id for r in page])
            if len(page) < limit:
                return out
            cursor = page[-1].run_id
        raise AssertionError("paging does not end")

    got = same(old_pair, lambda i: pages(i, False))
    assert sum(len(p) for p in got) == old_pair.home.contents["runs"]
    same(old_pair, lambda i: pages(i, True))
    same(
        old_pair,
        lambda i: [
            r.storage_id for r in i.get_run_records(limit=limit, cursor=i.get_run_ids()[limit])
        ],
    )


def test_run_tags(old_pair: OldPair) -> None:
    keys = same(old_pair, lambda i: i.get_run_tag_keys())
    assert keys, "the home's runs have tags"
    tags = same(old_pair, lambda i: i.get_run_tags(tag_keys=keys))
    assert tags
    same(old_pair, lambda i: i.get_run_tags(tag_keys=["team", "env"]))
    same(old_pair, lambda i: i.get_run_tags(tag_keys=["dagster/partition"], value_prefix="2024-01"))
    same(old_pair, lambda i: i.get_run_tags(tag_keys=["dagster/run_key"], limit=2))
    same(old_pair, lambda i: i.get_run_tags(tag_keys=["no_such_key"]))


def test_run_groups(old_pair: OldPair) -> None:
    home = old_pair.home
    children = home.run_ids("reexecution")
    if home.has("runs: failures and re-executions"):
        assert children
    for run_id in children + home.run_ids("flaky_failed") + home.run_ids("etl")[:1]:
        group = same(old_pair, lambda i, r=run_id: i.get_run_group(r))
        if run_id in children:
            assert group is not None and len(group[1]) >= 2
    same(old_pair, lambda i: i.get_run_group("00000000-0000-4000-8000-00000000dead"))


def test_run_partition_data(old_pair: OldPair) -> None:
    flt = RunsFilter(tags={"dagster/partition_set": "etl_partition_set"})
    same(old_pair, lambda i: i.get_run_partition_data(flt))


def test_backfills(old_pair: OldPair) -> None:
    backfills = same(old_pair, lambda i: i.get_backfills())
    assert backfills, "every fixture has backfills"
    same(old_pair, lambda i: i.get_backfills_count())
    same(old_pair, lambda i: i.get_backfills(status=BulkActionStatus.COMPLETED))
    same(old_pair, lambda i: i.get_backfills(limit=2))
    same(old_pair, lambda i: i.get_backfills(cursor=backfills[1].backfill_id, limit=2))
    flt = BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED, BulkActionStatus.FAILED])
    same(old_pair, lambda i: i.get_backfills(filters=flt))
    same(old_pair, lambda i: i.get_backfills_count(flt))
    same(old_pair, lambda i: i.get_backfills(filters=BulkActionsFilter(tags={"team": "ml"})))
    for b in backfills:
        same(old_pair, lambda i, bid=b.backfill_id: i.get_backfill(bid))
    same(old_pair, lambda i: i.get_backfill("nope"))


def test_run_status_changes(old_pair: OldPair) -> None:
    for et in (ET.RUN_SUCCESS, ET.RUN_FAILURE, ET.RUN_CANCELED, ET.RUN_ENQUEUED):
        same(old_pair, lambda i, e=et: result(i.fetch_run_status_changes(e, limit=50)))
        same(
            old_pair,
            lambda i, e=et: result(
                i.fetch_run_status_changes(RunStatusChangeRecordsFilter(e), limit=2, ascending=True)
            ),
        )


# -- run-scoped events ---------------------------------------------------------------------------


def sample_runs(pair: OldPair) -> list[str]:
    home = pair.home
    picks: list[str] = []
    for group in ("etl", "reexecution", "daily_sales", "checks"):
        picks.extend(home.run_ids(group)[:1])
    return picks + ["00000000-0000-4000-8000-00000000dead"]


def test_run_events(old_pair: OldPair) -> None:
    for run_id in sample_runs(old_pair):
        conn = same(old_pair, lambda i, r=run_id: i.get_records_for_run(r))
        if run_id in old_pair.home.run_ids("etl"):
            assert conn is not None and conn.records
        same(old_pair, lambda i, r=run_id: i.get_records_for_run(r, limit=5, ascending=False))
        if conn is not None and conn.records:
            half = conn.records[len(conn.records) // 2].storage_id
            cursor = EventLogCursor.from_storage_id(half).to_string()
            same(
                old_pair, lambda i, r=run_id, c=cursor: i.get_records_for_run(r, cursor=c, limit=4)
            )
        same(
            old_pair,
            lambda i, r=run_id: i.get_records_for_run(
                r, of_type={ET.STEP_SUCCESS, ET.ASSET_MATERIALIZATION}
            ),
        )
        same(old_pair, lambda i, r=run_id: i.all_logs(r))
        same(old_pair, lambda i, r=run_id: i.all_logs(r, of_type=ET.STEP_START))
        same(old_pair, lambda i, r=run_id: ev(i).get_logs_for_run(r, cursor=3))
        same(old_pair, lambda i, r=run_id: i.get_run_stats(r))
        same(old_pair, lambda i, r=run_id: i.get_run_step_stats(r))


# -- assets --------------------------------------------------------------------------------------


def asset_keys(pair: OldPair) -> list[AssetKey]:
    return [AssetKey.from_user_string(k) for k in pair.home.contents.get("asset_keys", [])]


def test_asset_keys_and_records(old_pair: OldPair) -> None:
    keys = same(old_pair, lambda i: i.all_asset_keys())
    assert set(keys or []) == set(asset_keys(old_pair))
    same(old_pair, lambda i: i.get_asset_keys())
    same(old_pair, lambda i: i.get_asset_keys(limit=2))
    same(old_pair, lambda i: i.get_asset_records())
    same(old_pair, lambda i: i.get_asset_records([*asset_keys(old_pair), AssetKey("unknown")]))
    for key in asset_keys(old_pair):
        same(old_pair, lambda i, k=key: i.has_asset_key(k))
    same(old_pair, lambda i: i.get_latest_materialization_events(asset_keys(old_pair)))
    same(old_pair, lambda i: ev(i).get_latest_materialization_storage_ids(asset_keys(old_pair)))


def test_fetch_asset_events(old_pair: OldPair) -> None:
    for key in [*asset_keys(old_pair), AssetKey("unknown")]:
        for fetch in ("fetch_materializations", "fetch_observations"):
            full = same(old_pair, lambda i, k=key, f=fetch: result(getattr(i, f)(k, limit=100)))
            for ascending in (False, True):
                # page through with the cursor of each page, both directions
                def pages(inst: DagsterInstance, k=key, f=fetch, a=ascending) -> list[tuple]:
                    out, cursor = [], None
                    for _ in range(50):
                        res = getattr(inst, f)(k, limit=2, cursor=cursor, ascending=a)
                        out.append(result(res))
                        if not res.has_more:
                            return out
                        cursor = res.cursor
                    raise AssertionError("paging does not end")

                same(old_pair, pages)
            if full and full[0]:
                mid = full[0][len(full[0]) // 2].storage_id
                cursor = EventLogCursor.from_storage_id(mid).to_string()
                same(
                    old_pair,
                    lambda i, k=key, f=fetch, c=cursor: result(
                        getattr(i, f)(k, limit=10, cursor=c, ascending=True)
                    ),
                )


PARTITIONS_DEFS = {
    "daily_sales": DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01"),
    "regional": StaticPartitionsDefinition(["eu", "us", "apac"]),
    "legacy_table": StaticPartitionsDefinition(["2024-01-01", "2024-01-02", "2024-01-03"]),
    "customer_report": DynamicPartitionsDefinition(name="customers"),
}


def test_materialized_partitions(old_pair: OldPair) -> None:
    for key in [*asset_keys(old_pair), AssetKey("unknown")]:
        parts = same(old_pair, lambda i, k=key: i.get_materialized_partitions(k))
        if key.to_user_string() in ("legacy_table", "daily_sales"):
            assert parts
        same(
            old_pair,
            lambda i, k=key: i.get_latest_storage_id_by_partition(k, ET.ASSET_MATERIALIZATION),
        )
        same(
            old_pair,
            lambda i, k=key: ev(i).get_latest_tags_by_partition(
                k, ET.ASSET_MATERIALIZATION, ["dagster/data_version"]
            ),
        )


@pytest.mark.parametrize("name", list(PARTITIONS_DEFS))
def test_partition_status(old_pair: OldPair, name: str) -> None:
    """The partitions page's status (the status cache: its reads write the cache)."""
    key = AssetKey(name)
    pdef = PARTITIONS_DEFS[name]
    if name == "customer_report":
        keys = ["acme", "globex", "initech"]
    else:
        keys = list(pdef.get_partition_keys()[:5])  # type: ignore[call-arg]
    same(old_pair, lambda i: i.get_status_by_partition(key, keys, pdef))
    same(old_pair, lambda i: i.get_asset_records([key]))


CHECK = AssetCheckKey(AssetKey("checked_table"), "not_empty")


def test_asset_checks(old_pair: OldPair) -> None:
    history = same(old_pair, lambda i: ev(i).get_asset_check_execution_history(CHECK, limit=10))
    home = old_pair.home
    if home.has("asset checks") and home.had_table("asset_check_executions"):
        assert history
    same(old_pair, lambda i: ev(i).get_asset_check_execution_history(CHECK, limit=1))
    same(old_pair, lambda i: ev(i).get_latest_asset_check_execution_by_key([CHECK]))
    same(old_pair, lambda i: i.get_asset_check_support())


# -- scheduling ----------------------------------------------------------------------------------


def test_instigator_states(old_pair: OldPair) -> None:
    states = same(old_pair, lambda i: i.all_instigator_state())
    assert states, "every fixture has instigators"
    same(old_pair, lambda i: i.all_instigator_state(instigator_type=InstigatorType.SENSOR))
    same(
        old_pair,
        lambda i: i.all_instigator_state(instigator_statuses={InstigatorStatus.RUNNING}),
    )
    repo_ids = {s.repository_origin_id for s in states}
    for repo in repo_ids:
        same(old_pair, lambda i, r=repo: i.all_instigator_state(repository_origin_id=r))
    for s in states:
        same(
            old_pair,
            lambda i, s=s: i.get_instigator_state(s.instigator_origin_id, s.selector_id),
        )


def test_ticks(old_pair: OldPair) -> None:
    states = old_pair.stock.all_instigator_state()
    for s in states:
        o, sel = s.instigator_origin_id, s.selector_id
        ticks = same(old_pair, lambda i, o=o, sel=sel: i.get_ticks(o, sel))
        assert ticks, f"{s.instigator_name} has ticks"
        same(old_pair, lambda i, o=o, sel=sel: i.get_ticks(o, sel, limit=3))
        same(
            old_pair,
            lambda i, o=o, sel=sel: i.get_ticks(o, sel, statuses=[TickStatus.SUCCESS], limit=4),
        )
        mid = ticks[len(ticks) // 2].timestamp
        same(old_pair, lambda i, o=o, sel=sel, m=mid: i.get_ticks(o, sel, before=m))
        same(old_pair, lambda i, o=o, sel=sel, m=mid: i.get_ticks(o, sel, after=m, limit=2))
        same(old_pair, lambda i, o=o, sel=sel: i.get_tick_summaries(o, sel))
    selectors = [s.selector_id for s in states] + ["no-such-selector"]
    same(old_pair, lambda i: i.get_batch_ticks(selectors))
    same(old_pair, lambda i: i.get_batch_ticks(selectors, limit=2))
    same(
        old_pair,
        lambda i: i.get_batch_ticks(selectors, limit=3, statuses=[TickStatus.SKIPPED]),
    )


# -- storage and config ----------------------------------------------------------------------


def test_dynamic_partitions(old_pair: OldPair) -> None:
    got = same(old_pair, lambda i: i.get_dynamic_partitions("customers"))
    if old_pair.home.has("dynamic partitions"):
        assert got
    same(old_pair, lambda i: i.get_dynamic_partitions("regions_dyn"))
    same(old_pair, lambda i: i.get_dynamic_partitions("nobody"))
    same(old_pair, lambda i: i.has_dynamic_partition("customers", "acme"))
    same(old_pair, lambda i: i.has_dynamic_partition("regions_dyn", "south"))


def test_concurrency(old_pair: OldPair) -> None:
    keys = same(old_pair, lambda i: ev(i).get_concurrency_keys())
    if old_pair.home.has("concurrency"):
        assert keys
    for key in sorted(keys or []) + ["no-such-pool"]:
        same(old_pair, lambda i, k=key: ev(i).get_concurrency_info(k))
    same(old_pair, lambda i: ev(i).get_pool_limits())
    same(old_pair, lambda i: ev(i).supports_global_concurrency_limits)
    same(old_pair, lambda i: ev(i).get_concurrency_run_ids())
    for run_id in old_pair.home.run_ids("started"):
        same(old_pair, lambda i, r=run_id: ev(i).check_concurrency_claim("database", r, "extract"))


def test_daemon_heartbeats(old_pair: OldPair) -> None:
    beats = same(old_pair, lambda i: i.get_daemon_heartbeats())
    assert beats


def test_cursor_values(old_pair: OldPair) -> None:
    keys = {"EVENT_LOG_CONSUMER_CURSOR", "ASSET_DAEMON_CURSOR", "missing"}
    values = same(old_pair, lambda i: rs(i).get_cursor_values(keys))
    if old_pair.home.has("kvs cursors"):
        assert values


def test_run_storage_id(old_pair: OldPair) -> None:
    """The id stored in instance_info; a file without one gets a new random id on first read
    (on both sides: then only its stability is compared)."""
    stored = {kind: _instance_info(home) for kind, home in old_pair.homes.items()}
    assert stored["stock"] == stored["rust"]
    if stored["stock"]:
        same(old_pair, lambda i: rs(i).get_run_storage_id())
    else:
        same(
            old_pair,
            lambda i: (lambda a, b: (a == b, len(a)))(
                rs(i).get_run_storage_id(), rs(i).get_run_storage_id()
            ),
        )


def _instance_info(home: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{home / 'history' / 'runs.db'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT * FROM instance_info").fetchall()
    except sqlite3.OperationalError as exc:
        return [("error", str(exc))]
    finally:
        conn.close()


def test_schema_reports(old_pair: OldPair) -> None:
    """What `dagster instance migrate` prints before it upgrades: each storage's revision."""
    same(old_pair, lambda i: i.schema_str())
    same(old_pair, lambda i: rs(i).alembic_version())
    same(old_pair, lambda i: ev(i).alembic_version())
    same(old_pair, lambda i: sched(i).alembic_version())
