"""The schedule storage's public surface through `pair.same`, on SQLite and on PostgreSQL:
instigator states, ticks (single, by ids, batched, summaries, purges), declarative-automation
evaluations, and the admin methods; the instance's scheduling methods on top of them."""

from __future__ import annotations

from typing import Any

from dagster import AssetKey
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorTick, TickStatus

from tests.pg.pairs import PgPair
from tests.scheduling.conftest import T0, state, tick, ticks_view
from tests.scheduling.test_schedule_storage import STATES, evaluation, records_view


def _states(pair: PgPair) -> None:
    for st in STATES:
        pair.same(lambda i, st=st: i.schedule_storage.add_instigator_state(st))


def test_instigator_states(pair: PgPair) -> None:
    _states(pair)
    repo_selector = STATES[0].repository_selector_id
    for kwargs in [
        {},
        {"repository_origin_id": STATES[0].repository_origin_id},
        {"repository_selector_id": repo_selector},
        {"repository_selector_id": "nope"},
        {"instigator_type": InstigatorType.SCHEDULE},
        {"instigator_statuses": {InstigatorStatus.RUNNING}},
        {"instigator_statuses": set()},
    ]:
        pair.same(lambda i, kw=kwargs: list(i.schedule_storage.all_instigator_state(**kw)))
    for st in STATES:
        pair.same(
            lambda i, st=st: i.schedule_storage.get_instigator_state(
                st.instigator_origin_id, st.selector_id
            )
        )
    pair.same(lambda i: i.schedule_storage.get_instigator_state("missing", "missing"))
    # The instance's own reads of the same rows.
    pair.same(lambda i: list(i.all_instigator_state()))
    pair.same(lambda i: i.get_instigator_state(STATES[0].instigator_origin_id, repo_selector))


def test_instigator_writes_and_errors(pair: PgPair) -> None:
    _states(pair)
    changed = STATES[0]._replace(status=InstigatorStatus.STOPPED)
    pair.same(lambda i: i.schedule_storage.add_instigator_state(changed))  # already stored
    pair.same(lambda i: i.schedule_storage.update_instigator_state(changed))
    pair.same(lambda i: list(i.schedule_storage.all_instigator_state()))
    missing = state("never-added")
    pair.same(lambda i: i.schedule_storage.update_instigator_state(missing))
    pair.same(
        lambda i: i.schedule_storage.delete_instigator_state(
            missing.instigator_origin_id, missing.selector_id
        )
    )
    pair.same(lambda i: i.schedule_storage.add_instigator_state("not a state"))  # type: ignore[arg-type]
    pair.same(
        lambda i: i.schedule_storage.delete_instigator_state(
            STATES[1].instigator_origin_id, STATES[1].selector_id
        )
    )
    pair.same(lambda i: list(i.schedule_storage.all_instigator_state()))


def _ticks(pair: PgPair) -> list[Any]:
    made = []
    statuses = [TickStatus.SUCCESS, TickStatus.FAILURE, TickStatus.SKIPPED, TickStatus.STARTED]
    for n in range(16):
        st = STATES[n % 3]
        data = tick(st, float(n * 10), statuses[n % 4])
        made.append(pair.same(lambda i, d=data: i.schedule_storage.create_tick(d), ticks_view1))
    return made


def ticks_view1(t: Any) -> Any:
    return (t.tick_id, t.tick_data)


def test_ticks(pair: PgPair) -> None:
    _ticks(pair)
    for st in STATES[:3]:
        origin, selector = st.instigator_origin_id, st.selector_id
        for kwargs in [
            {},
            {"limit": 2},
            {"before": T0 + 75},
            {"after": T0 + 25},
            {"before": T0 + 100, "after": T0 + 10, "limit": 1},
            {"statuses": [TickStatus.SUCCESS, TickStatus.SKIPPED]},
        ]:
            pair.same(
                lambda i, o=origin, s=selector, kw=kwargs: ticks_view(
                    i.schedule_storage.get_ticks(o, s, **kw)
                )
            )
    pair.same(lambda i: ticks_view1(i.schedule_storage.get_tick(3)))
    pair.same(lambda i: i.schedule_storage.get_tick(999))
    pair.same(lambda i: ticks_view(i.schedule_storage.get_ticks_by_ids([5, 1, 999, 3])))
    selectors = [st.selector_id for st in STATES[:3]]
    pair.same(
        lambda i: {
            k: ticks_view(v)
            for k, v in i.schedule_storage.get_batch_ticks(selectors, limit=2).items()
        }
    )
    pair.same(lambda i: i.schedule_storage.supports_batch_queries)


def test_tick_updates_and_purges(pair: PgPair) -> None:
    made = _ticks(pair)
    first_id, data = made[0]
    updated = data.with_status(TickStatus.SKIPPED)
    pair.same(
        lambda i: ticks_view1(i.schedule_storage.update_tick(InstigatorTick(first_id, updated)))
    )
    pair.same(lambda i: ticks_view1(i.schedule_storage.get_tick(first_id)))
    st = STATES[0]
    pair.same(
        lambda i: i.schedule_storage.purge_ticks(
            st.instigator_origin_id, st.selector_id, before=T0 + 60
        )
    )
    pair.same(
        lambda i: ticks_view(i.schedule_storage.get_ticks(st.instigator_origin_id, st.selector_id))
    )
    pair.same(
        lambda i: i.schedule_storage.purge_ticks(
            STATES[1].instigator_origin_id,
            STATES[1].selector_id,
            before=T0 + 1000,
            tick_statuses=[TickStatus.SKIPPED],
        )
    )
    pair.same(
        lambda i: ticks_view(
            i.schedule_storage.get_ticks(STATES[1].instigator_origin_id, STATES[1].selector_id)
        )
    )


def test_evaluations(pair: PgPair) -> None:
    for eid in range(1, 6):
        batch = [evaluation("a", eid % 2), evaluation("b/c", 1), evaluation(f"x{eid}", 0)]
        pair.same(
            lambda i, e=eid, b=batch: i.schedule_storage.add_auto_materialize_asset_evaluations(
                e, b
            )
        )
    pair.same(
        lambda i: i.schedule_storage.add_auto_materialize_asset_evaluations(
            3, [evaluation("a", 1, T0 + 9)]
        )
    )
    for key in (AssetKey("a"), AssetKey(["b", "c"]), AssetKey("zz")):
        for limit, cursor in [(10, None), (2, None), (2, 5), (100, 1)]:
            pair.same(
                lambda i, k=key, n=limit, c=cursor: records_view(
                    i.schedule_storage.get_auto_materialize_asset_evaluations(k, n, c)
                )
            )
    for eid in (1, 3, 42):
        pair.same(
            lambda i, e=eid: records_view(
                i.schedule_storage.get_auto_materialize_evaluations_for_evaluation_id(e)
            )
        )
    pair.same(lambda i: i.schedule_storage.purge_asset_evaluations(4e9))
    pair.same(
        lambda i: records_view(
            i.schedule_storage.get_auto_materialize_asset_evaluations(AssetKey("a"), 10)
        )
    )


def test_admin_and_wipe(pair: PgPair) -> None:
    pair.same(lambda i: i.schedule_storage.alembic_version())
    pair.same(lambda i: i.schedule_storage.has_secondary_index_table())
    pair.same(lambda i: i.schedule_storage.has_instigators_table())
    for name in ("schedule_jobs_selector_id", "schedule_ticks_selector_id", "other"):
        pair.same(lambda i, n=name: i.schedule_storage.has_built_index(n))
    _states(pair)
    _ticks(pair)
    pair.same(lambda i: i.schedule_storage.wipe())
    pair.same(lambda i: list(i.schedule_storage.all_instigator_state()))
    pair.same(lambda i: ticks_view(i.schedule_storage.get_ticks_by_ids([1, 2])))
