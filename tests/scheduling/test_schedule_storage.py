"""Differential tests of every `ScheduleStorage` method: the same operations on stock's
`SqliteScheduleStorage` and on `RustScheduleStorage`, the same results, rows, order and errors."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from dagster import AssetKey
from dagster._core.asset_graph_view.serializable_entity_subset import SerializableEntitySubset
from dagster._core.definitions.declarative_automation.serialized_objects import (
    AutomationConditionEvaluation,
    AutomationConditionEvaluationWithRunIds,
    AutomationConditionNodeSnapshot,
)
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorTick, TickStatus

from tests.scheduling.conftest import T0, Pair, batch_view, state, tick, ticks_view
from tests.stock_api import requires_stock, stock_has

S = TickStatus


def stored(path: str, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql))


def stock_db(p: Pair) -> str:
    return p.stock._conn_string.removeprefix("sqlite:///")  # noqa: SLF001


def rust_db(p: Pair) -> str:
    return p.rust.store.path


def same_rows(p: Pair, sql: str) -> None:
    assert stored(rust_db(p), sql) == stored(stock_db(p), sql)


# -- instigator state -----------------------------------------------------------------------


STATES = [
    state("s1"),
    state("s2", status=InstigatorStatus.STOPPED),
    state("sched1", kind=InstigatorType.SCHEDULE),
    state("sched2", kind=InstigatorType.SCHEDULE, status=InstigatorStatus.DECLARED_IN_CODE),
    state("other", repo="repo2"),
]


def add_states(p: Pair) -> None:
    for st in STATES:
        p.same(lambda s, st=st: s.add_instigator_state(st))


def test_instigator_state_filters(pair: Pair) -> None:
    add_states(pair)
    repo_origin = STATES[0].repository_origin_id
    repo_selector = STATES[0].repository_selector_id
    for kwargs in [
        {},
        {"repository_origin_id": repo_origin},
        {"repository_selector_id": repo_selector},
        {"repository_selector_id": STATES[4].repository_selector_id},
        {"repository_selector_id": ""},
        {"repository_selector_id": "nope"},
        {"instigator_type": InstigatorType.SENSOR},
        {"instigator_type": InstigatorType.SCHEDULE},
        {"instigator_statuses": {InstigatorStatus.RUNNING}},
        {"instigator_statuses": {InstigatorStatus.RUNNING, InstigatorStatus.DECLARED_IN_CODE}},
        {"instigator_statuses": set()},
        {
            "repository_selector_id": repo_selector,
            "instigator_type": InstigatorType.SENSOR,
            "instigator_statuses": {InstigatorStatus.STOPPED},
        },
    ]:
        pair.same(lambda s, kw=kwargs: list(s.all_instigator_state(**kw)))
    pair.same(lambda s: s.all_instigator_state(instigator_type="SENSOR"))  # type: ignore[arg-type]
    for st in STATES:
        pair.same(lambda s, st=st: s.get_instigator_state(st.instigator_origin_id, st.selector_id))
    pair.same(lambda s: s.get_instigator_state("missing", "missing"))
    pair.same(lambda s: s.get_instigator_state(None, "x"))  # type: ignore[arg-type]


def test_instigator_state_writes_and_errors(pair: Pair) -> None:
    add_states(pair)
    # An origin id already stored: stock's error, nothing stored or changed.
    changed = STATES[0]._replace(status=InstigatorStatus.STOPPED)
    pair.same(lambda s: s.add_instigator_state(changed))
    pair.same(lambda s: list(s.all_instigator_state()))
    pair.same(lambda s: s.update_instigator_state(changed))
    pair.same(lambda s: s.get_instigator_state(changed.instigator_origin_id, changed.selector_id))
    missing = state("never-added")
    pair.same(lambda s: s.update_instigator_state(missing))
    pair.same(
        lambda s: s.delete_instigator_state(missing.instigator_origin_id, missing.selector_id)
    )
    pair.same(lambda s: s.add_instigator_state("not a state"))  # type: ignore[arg-type]
    pair.same(lambda s: s.update_instigator_state(None))  # type: ignore[arg-type]
    pair.same(lambda s: s.delete_instigator_state(STATES[1].instigator_origin_id, 3))  # type: ignore[arg-type]
    pair.same(
        lambda s: s.delete_instigator_state(STATES[1].instigator_origin_id, STATES[1].selector_id)
    )
    pair.same(lambda s: list(s.all_instigator_state()))
    pair.same(
        lambda s: s.delete_instigator_state(STATES[1].instigator_origin_id, STATES[1].selector_id)
    )
    same_rows(
        pair,
        "SELECT id, job_origin_id, selector_id, repository_origin_id, status, job_type, job_body"
        " FROM jobs ORDER BY id",
    )
    same_rows(
        pair,
        "SELECT id, selector_id, repository_selector_id, status, instigator_type,"
        " instigator_body FROM instigators ORDER BY id",
    )


# -- ticks ----------------------------------------------------------------------------------


SENSORS = [state(f"sensor{i}") for i in range(4)]
STATUSES = [S.SUCCESS, S.SKIPPED, S.FAILURE, S.STARTED, S.SKIPPED]


def add_ticks(p: Pair, n: int = 30) -> None:
    for st in SENSORS:
        p.same(lambda s, st=st: s.add_instigator_state(st))
    for i in range(n):
        for j, st in enumerate(SENSORS[:3]):
            data = tick(st, i * 5 + j, STATUSES[(i + j) % len(STATUSES)], cursor=f"c{i}")
            p.same(lambda s, data=data: s.create_tick(data).tick_id)
    # Ticks stored before selector ids existed (legacy rows: selector_id NULL).
    for i in range(3):
        data = tick(SENSORS[0], 1000 + i, S.SUCCESS, with_selector=False)
        p.same(lambda s, data=data: s.create_tick(data).tick_id)


TICK_QUERIES: list[dict[str, Any]] = [
    {},
    {"limit": 1},
    {"limit": 7},
    {"limit": 0},
    {"limit": 1000},
    {"before": T0 + 50},
    {"before": T0 + 50.5, "limit": 3},
    {"after": T0 + 100},
    {"after": T0 + 40, "before": T0 + 90},
    {"before": 0.0},
    {"statuses": [S.SKIPPED]},
    {"statuses": [S.SKIPPED, S.FAILURE], "limit": 4},
    {"statuses": []},
    {"statuses": [S.SUCCESS], "after": T0 + 20, "before": T0 + 1001.5, "limit": 5},
]


def test_tick_reads(pair: Pair) -> None:
    add_ticks(pair)
    same_rows(
        pair,
        "SELECT id, job_origin_id, selector_id, status, type, timestamp, tick_body FROM job_ticks"
        " ORDER BY id",
    )
    for st in SENSORS:
        o, sel = st.instigator_origin_id, st.selector_id
        for kwargs in TICK_QUERIES:
            pair.same(lambda s, kw=kwargs, o=o, sel=sel: ticks_view(s.get_ticks(o, sel, **kw)))
    # Paging with `before` the way the UI does, to the end.
    o, sel = SENSORS[0].instigator_origin_id, SENSORS[0].selector_id
    before = None
    while True:
        page = pair.same(lambda s, b=before: ticks_view(s.get_ticks(o, sel, before=b, limit=4)))
        if not page:
            break
        before = page[-1][1].timestamp
    pair.same(lambda s: s.get_tick(5).tick_data)
    pair.same(lambda s: s.get_tick(10_000))
    pair.same(lambda s: s.get_tick("5"))  # type: ignore[arg-type]
    pair.same(lambda s: s.get_ticks(o, sel, before=5))  # type: ignore[arg-type]
    pair.same(lambda s: s.get_ticks(o, sel, limit="3"))  # type: ignore[arg-type]
    pair.same(lambda s: s.get_ticks(o, sel, statuses=["SUCCESS"]))  # type: ignore[list-item]
    pair.same(lambda s: s.get_ticks(3, sel))  # type: ignore[arg-type]


@requires_stock("SqlScheduleStorage.get_tick_summaries")
def test_tick_summaries(pair: Pair) -> None:
    add_ticks(pair)
    for st in SENSORS:
        o, sel = st.instigator_origin_id, st.selector_id
        for kwargs in TICK_QUERIES:
            pair.same(lambda s, kw=kwargs, o=o, sel=sel: list(s.get_tick_summaries(o, sel, **kw)))


@requires_stock("SqlScheduleStorage.get_ticks_by_ids")
def test_ticks_by_ids(pair: Pair) -> None:
    add_ticks(pair)
    pair.same(lambda s: ticks_view(s.get_ticks_by_ids([9, 3, 3, 77, 1])))
    pair.same(lambda s: ticks_view(s.get_ticks_by_ids([])))


@pytest.mark.parametrize("name", ["get_tick_summaries", "get_ticks_by_ids"])
def test_no_method_stock_lacks(pair: Pair, name: str) -> None:
    """On a stock that predates a tick read, the storage has no such method either."""
    if stock_has(f"SqlScheduleStorage.{name}"):
        pytest.skip(f"the installed dagster has SqlScheduleStorage.{name}")
    assert not hasattr(pair.rust, name)
    assert not hasattr(pair.stock, name)


def test_ticks_tied_in_time(pair: Pair) -> None:
    st = SENSORS[0]
    pair.same(lambda s: s.add_instigator_state(st))
    for i in range(12):
        data = tick(st, i // 3, STATUSES[i % 5], cursor=str(i))
        pair.same(lambda s, data=data: s.create_tick(data).tick_id)
    o, sel = st.instigator_origin_id, st.selector_id
    for limit in (None, 1, 2, 4, 5):
        pair.same(lambda s, n=limit: ticks_view(s.get_ticks(o, sel, limit=n)))
        pair.same(lambda s, n=limit: batch_view(s.get_batch_ticks([sel], limit=n)))


def test_batch_ticks(pair: Pair) -> None:
    add_ticks(pair)
    selectors = [st.selector_id for st in SENSORS]
    for args in [
        (selectors, 1, None),
        (selectors, 5, None),
        (selectors, 100, None),
        (selectors, None, None),
        (selectors, 0, None),
        (selectors, -1, None),
        (selectors[:2], 3, [S.SKIPPED]),
        (selectors, 2, [S.FAILURE, S.STARTED]),
        (selectors, 2, []),
        ([selectors[1], selectors[1], "unknown"], 4, None),
        ([], 4, None),
    ]:
        pair.same(lambda s, a=args: batch_view(s.get_batch_ticks(*a)))
    pair.same(lambda s: s.get_batch_ticks(selectors[0], 3))
    pair.same(lambda s: s.get_batch_ticks([1, 2], 3))  # type: ignore[list-item]
    pair.same(lambda s: s.get_batch_ticks(selectors, "3"))  # type: ignore[arg-type]
    pair.same(lambda s: s.supports_batch_queries)


def test_tick_writes_and_purge(pair: Pair) -> None:
    add_ticks(pair, n=20)
    st = SENSORS[1]
    o, sel = st.instigator_origin_id, st.selector_id
    # update: status, time and body change; a tick id that is not stored changes nothing.
    started = [x for x in pair.stock.get_ticks(o, sel) if x.status == S.STARTED][0].tick_id
    t = pair.same(lambda s: s.get_tick(started))
    done = t.with_status(S.SUCCESS, run_ids=["r1"]).with_cursor("moved")
    pair.same(lambda s: s.update_tick(done).tick_data)
    pair.same(lambda s: s.get_tick(started).tick_data)
    ghost = InstigatorTick(99_999, t.tick_data)
    pair.same(lambda s: s.update_tick(ghost).tick_id)
    pair.same(lambda s: s.update_tick("tick"))  # type: ignore[arg-type]
    pair.same(lambda s: s.create_tick(None))  # type: ignore[arg-type]
    same_rows(pair, "SELECT id, selector_id, status, type, timestamp, tick_body FROM job_ticks")
    # purge with retention semantics: skipped ticks older than T0+50, then everything older.
    pair.same(lambda s: s.purge_ticks(o, sel, T0 + 50, [S.SKIPPED]))
    pair.same(lambda s: ticks_view(s.get_ticks(o, sel)))
    pair.same(lambda s: s.purge_ticks(o, sel, T0 + 70, []))
    pair.same(lambda s: ticks_view(s.get_ticks(o, sel)))
    legacy = SENSORS[0]
    pair.same(lambda s: s.purge_ticks(legacy.instigator_origin_id, legacy.selector_id, T0 + 1001.5))
    pair.same(lambda s: s.purge_ticks(o, sel, 10))  # type: ignore[arg-type]
    pair.same(lambda s: s.purge_ticks(o, sel, T0, ["SKIPPED"]))  # type: ignore[list-item]
    same_rows(pair, "SELECT id, selector_id, status, timestamp FROM job_ticks ORDER BY id")


def test_wipe(pair: Pair) -> None:
    add_ticks(pair, n=3)
    pair.both(lambda s: s.add_auto_materialize_asset_evaluations(1, [evaluation("a", 1)]))
    pair.same(lambda s: s.wipe())
    for table in ("jobs", "instigators", "job_ticks", "asset_daemon_asset_evaluations"):
        same_rows(pair, f"SELECT count(*) FROM {table}")
    pair.same(lambda s: list(s.all_instigator_state()))
    # ids go on after a wipe as stock's do (no AUTOINCREMENT: rowids restart when empty).
    data = tick(SENSORS[0], 1)
    pair.same(lambda s: s.create_tick(data).tick_id)


# -- evaluations ----------------------------------------------------------------------------


def evaluation(key: str, requested: int, ts: float = T0) -> AutomationConditionEvaluationWithRunIds:
    asset = AssetKey(key.split("/"))
    snapshot = AutomationConditionNodeSnapshot(
        class_name="EagerCondition",
        description="eager",
        unique_id=f"u-{key}",
        label=None,
        name=None,
        operator_type="identity",
    )
    return AutomationConditionEvaluationWithRunIds(
        evaluation=AutomationConditionEvaluation(
            condition_snapshot=snapshot,
            start_timestamp=ts,
            end_timestamp=ts + 1,
            true_subset=SerializableEntitySubset(key=asset, value=bool(requested)),
            candidate_subset=SerializableEntitySubset(key=asset, value=True),
            subsets_with_metadata=[],
            child_evaluations=[],
        ),
        run_ids=frozenset({f"run-{key}-{requested}"}),
    )


def records_view(records: Any) -> list[tuple[Any, ...]]:
    # create_timestamp is the server's clock; it is compared for presence only.
    return [
        (r.id, r.serialized_evaluation_body, r.evaluation_id, r.key, r.timestamp > 0)
        for r in records
    ]


def test_evaluations(pair: Pair) -> None:
    for eid in range(1, 8):
        batch = [evaluation("a", eid % 2), evaluation("b/c", 1), evaluation(f"x{eid}", 0)]
        pair.same(lambda s, e=eid, b=batch: s.add_auto_materialize_asset_evaluations(e, b))
    # The same (asset, evaluation) again updates its body and count in place.
    pair.same(lambda s: s.add_auto_materialize_asset_evaluations(3, [evaluation("a", 1, T0 + 9)]))
    pair.same(lambda s: s.add_auto_materialize_asset_evaluations(9, []))
    same_rows(
        pair,
        "SELECT id, evaluation_id, asset_key, asset_evaluation_body, num_requested, num_skipped,"
        " num_discarded FROM asset_daemon_asset_evaluations ORDER BY id",
    )
    for key in (AssetKey("a"), AssetKey(["b", "c"]), AssetKey("zz")):
        for limit, cursor in [(10, None), (2, None), (2, 5), (0, None), (100, 1)]:
            pair.same(
                lambda s, k=key, n=limit, c=cursor: records_view(
                    s.get_auto_materialize_asset_evaluations(k, n, c)
                )
            )
    for eid in (1, 3, 7, 42):
        pair.same(
            lambda s, e=eid: records_view(s.get_auto_materialize_evaluations_for_evaluation_id(e))
        )
    pair.same(lambda s: s.supports_auto_materialize_asset_evaluations)
    pair.same(lambda s: s.purge_asset_evaluations(T0))  # everything is newer (wall clock)
    same_rows(pair, "SELECT count(*) FROM asset_daemon_asset_evaluations")
    pair.same(lambda s: s.purge_asset_evaluations(4e9))
    same_rows(pair, "SELECT count(*) FROM asset_daemon_asset_evaluations")
    pair.same(lambda s: s.purge_asset_evaluations(1))  # type: ignore[arg-type]


# -- admin ----------------------------------------------------------------------------------


def test_admin(pair: Pair) -> None:
    pair.same(lambda s: s.alembic_version())
    pair.same(lambda s: s.has_secondary_index_table())
    pair.same(lambda s: s.has_instigators_table())
    for name in ("schedule_jobs_selector_id", "schedule_ticks_selector_id", "other"):
        pair.same(lambda s, n=name: s.has_built_index(n))
    pair.same(lambda s: s.upgrade())
    messages: dict[str, list[str]] = {"stock": [], "rust": []}
    pair.stock.migrate(messages["stock"].append)
    pair.rust.migrate(messages["rust"].append)
    pair.stock.optimize(messages["stock"].append)
    pair.rust.optimize(messages["rust"].append)
    assert messages["rust"] == messages["stock"]
    pair.same(lambda s: s.optimize_for_webserver(1, 2, 3))


def test_forced_migrations_fill_selector_ids(pair: Pair) -> None:
    """Stock's selector-id migrations over rows written before selector ids: the states in
    `jobs` only, ticks without selector ids."""
    add_ticks(pair, n=4)
    for db in (stock_db(pair), rust_db(pair)):
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM instigators")
            conn.execute("UPDATE jobs SET selector_id = NULL")
            conn.execute("UPDATE job_ticks SET selector_id = NULL WHERE id % 2 = 0")
    messages: dict[str, list[str]] = {"stock": [], "rust": []}
    pair.stock.migrate(messages["stock"].append, force_rebuild_all=True)
    pair.rust.migrate(messages["rust"].append, force_rebuild_all=True)
    pair.stock.optimize(messages["stock"].append, force_rebuild_all=True)
    pair.rust.optimize(messages["rust"].append, force_rebuild_all=True)
    assert messages["rust"] == messages["stock"]
    same_rows(pair, "SELECT id, job_origin_id, selector_id FROM jobs ORDER BY id")
    same_rows(
        pair,
        "SELECT id, selector_id, repository_selector_id, status, instigator_type,"
        " instigator_body FROM instigators ORDER BY id",
    )
    same_rows(pair, "SELECT id, selector_id FROM job_ticks ORDER BY id")
    pair.same(lambda s: list(s.all_instigator_state()))


@pytest.mark.parametrize("mark_done", [True, False])
def test_states_before_the_selector_migration(pair: Pair, mark_done: bool) -> None:
    """Without the `schedule_jobs_selector_id` mark stock reads states from `jobs`, by origin."""
    add_states(pair)
    if not mark_done:
        for db in (stock_db(pair), rust_db(pair)):
            with sqlite3.connect(db) as conn:
                conn.execute(
                    "DELETE FROM secondary_indexes WHERE name = 'schedule_jobs_selector_id'"
                )
    pair.same(lambda s: list(s.all_instigator_state()))
    pair.same(
        lambda s: list(s.all_instigator_state(repository_origin_id=STATES[4].repository_origin_id))
    )
    pair.same(lambda s: s.get_instigator_state(STATES[0].instigator_origin_id, "wrong-selector"))
    pair.same(lambda s: s.get_instigator_state("wrong-origin", STATES[0].selector_id))


def malform(pair: Pair) -> None:
    """Ticks 2 and 3 and instigator state 1 made unreadable, in both files."""
    add_ticks(pair, n=3)
    for db in (stock_db(pair), rust_db(pair)):
        with sqlite3.connect(db) as conn:
            conn.execute(
                'UPDATE job_ticks SET tick_body = \'{"__class__": "TickData"\' WHERE id = 2'
            )
            conn.execute('UPDATE job_ticks SET tick_body = \'{"__class__": "Nope"}\' WHERE id = 3')
            conn.execute("UPDATE instigators SET instigator_body = 'not json' WHERE id = 1")


def test_malformed_bodies_raise_as_stock(pair: Pair) -> None:
    malform(pair)
    st = SENSORS[1]
    o, sel = st.instigator_origin_id, st.selector_id
    pair.same(lambda s: s.get_tick(2))
    pair.same(lambda s: s.get_tick(3))
    pair.same(lambda s: s.get_ticks(o, sel))
    pair.same(lambda s: s.get_batch_ticks([sel], 5))
    pair.same(lambda s: s.all_instigator_state())
    first = SENSORS[0]
    pair.same(lambda s: s.get_instigator_state(first.instigator_origin_id, first.selector_id))
    # Nothing stored was lost: the other rows still read.
    for tick_id in (1, 4, 5):
        pair.same(lambda s, tick_id=tick_id: s.get_tick(tick_id).tick_data)


@requires_stock("SqlScheduleStorage.get_ticks_by_ids")
def test_malformed_bodies_by_ids(pair: Pair) -> None:
    malform(pair)
    pair.same(lambda s: ticks_view(s.get_ticks_by_ids([1, 2, 4])))
    pair.same(lambda s: ticks_view(s.get_ticks_by_ids([1, 4, 5])))
