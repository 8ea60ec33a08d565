"""Concurrency pools through the event log storage, stock vs dagster-rs, in one process.

Each test applies the same sequence of pool operations to both sides, call by call (stock
first), and compares after each step what every reader reports: the pools' info (slots, limit,
claimed slots, pending steps and whether they were assigned), the keys, the pool limits, the runs
holding or waiting for slots, and each step's claim status. Queue and claim times are the
database's whole-second clock, compared for presence only; slots and pending steps, which stock
returns in scan order, as multisets.
"""

from __future__ import annotations

import time
from typing import Any

from dagster import DagsterInstance
from dagster._core.errors import DagsterInvalidInvocationError

from tests.assets.conftest import norm, same, same_error, unordered
from tests.conftest import InstancePair
from tests.stock_api import stock_has

POOL, OTHER = "pool", "other"


def storage(inst: DagsterInstance) -> Any:
    return inst.event_log_storage


def pool_view(inst: DagsterInstance, keys: tuple[str, ...] = (POOL, OTHER, "unknown")) -> dict:
    """Everything the readers report about the pools."""
    st = storage(inst)
    infos = {}
    for key in keys:
        info = st.get_concurrency_info(key)
        infos[key] = {
            "slot_count": info.slot_count,
            "limit": info.limit,
            "using_default_limit": info.using_default_limit,
            "claimed": unordered((s.run_id, s.step_key) for s in info.claimed_slots),
            "pending": unordered(
                (p.run_id, p.step_key, p.assigned_timestamp is not None, p.priority)
                for p in info.pending_steps
            ),
            "counts": (
                info.active_slot_count,
                info.pending_step_count,
                info.assigned_step_count,
            ),
        }
    view = {
        "infos": infos,
        "keys": st.get_concurrency_keys(),
        "limits": unordered((p.name, p.limit, p.from_default) for p in st.get_pool_limits()),
        "run_ids": st.get_concurrency_run_ids(),
    }
    # The batch read came within the tested range, where the installed stock has it.
    if stock_has("SqlEventLogStorage.get_concurrency_infos"):
        view["infos_at_once"] = norm(
            {k: (v.slot_count, v.limit) for k, v in st.get_concurrency_infos(list(keys)).items()}
        )
    return view


def claim(key: str, run_id: str, step_key: str, priority: int | None = None) -> Any:
    return lambda i: storage(i).claim_concurrency_slot(key, run_id, step_key, priority)


def check(key: str, run_id: str, step_key: str) -> Any:
    return lambda i: storage(i).check_concurrency_claim(key, run_id, step_key)


def slot(pair: InstancePair, fn: Any) -> str:
    """Run a claim or a check on both sides (alike); the slot status it reported."""
    out = pair.same(fn, norm)
    assert out.error is None, out.message
    return out.value.slot_status.value


def granted_in_turn(pair: InstancePair, key: str, holder: str, turns: int) -> list[str]:
    """Free the holder's slot, see which waiting step was assigned it, let it claim; repeat."""
    granted = []
    for _ in range(turns):
        pair.both(lambda i, h=holder: storage(i).free_concurrency_slot_for_step(h, "s"))
        view = same(pair, lambda i: pool_view(i, (key,)))
        assigned = [p[0] for p in view["infos"][key]["pending"] if p[2]]
        assert len(assigned) == 1, assigned
        holder = assigned[0]
        assert slot(pair, claim(key, holder, "s")) == "CLAIMED"
        granted.append(holder)
    return granted


def test_set_grow_shrink_claim_free(fast_pair: InstancePair) -> None:
    pair = fast_pair
    assert same(pair, pool_view)["keys"] == set()
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 3))
    assert same(pair, pool_view)["infos"][POOL]["slot_count"] == 3

    claims = [slot(pair, claim(POOL, "run-1", f"s{n}")) for n in range(4)]
    # three claimed, the fourth waits unassigned
    assert claims == ["CLAIMED"] * 3 + ["BLOCKED"]
    same(pair, pool_view)

    # shrink below the claimed count: claimed slots linger as deleted until freed
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 1))
    view = same(pair, pool_view)
    assert view["infos"][POOL]["slot_count"] == 1
    assert len(view["infos"][POOL]["claimed"]) == 3

    pair.both(lambda i: storage(i).free_concurrency_slot_for_step("run-1", "s0"))
    pair.both(lambda i: storage(i).free_concurrency_slot_for_step("run-1", "s1"))
    same(pair, pool_view)
    assert slot(pair, check(POOL, "run-1", "s3")) == "BLOCKED"

    # grow: the new slots go to the waiting step
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 4))
    same(pair, pool_view)
    assert slot(pair, claim(POOL, "run-1", "s3")) == "CLAIMED"
    same(pair, pool_view)

    # same limit again: only the limit row is touched
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 4))
    same(pair, pool_view)
    pair.both(lambda i: storage(i).free_concurrency_slots_for_run("run-1"))
    view = same(pair, pool_view)
    assert view["run_ids"] == set()
    assert view["infos"][POOL]["claimed"] == []


def test_zero_limit_and_several_pools(fast_pair: InstancePair) -> None:
    pair = fast_pair
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 0))
    pair.both(lambda i: storage(i).set_concurrency_slots(OTHER, 2))
    same(pair, pool_view)
    for run_id, key in [("a", POOL), ("a", OTHER), ("b", OTHER), ("c", OTHER)]:
        same(pair, claim(key, run_id, "step"))
    same(pair, pool_view)
    # freeing one step of a run admits the next waiting step of that pool
    pair.both(lambda i: storage(i).free_concurrency_slot_for_step("a", "step"))
    same(pair, pool_view)
    for run_id, key in [("a", POOL), ("a", OTHER), ("b", OTHER), ("c", OTHER)]:
        same(pair, check(key, run_id, "step"))


def test_priority_order(fast_pair: InstancePair) -> None:
    """A freed slot goes to the waiting step of highest priority; among equal priorities to the
    earlier enqueued (in whole seconds), then by run id and step key."""
    pair = fast_pair
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 1))
    same(pair, claim(POOL, "holder", "s"))
    for run_id, priority in [("low", -5), ("mid", 0), ("high", 7), ("none", None), ("top", 9)]:
        same(pair, claim(POOL, run_id, "s", priority))
    view = same(pair, pool_view)
    assert ("none", "s", False, 0) in view["infos"][POOL]["pending"]

    # "none" enqueued as 0 ties with "mid": enqueued first, and first by run id too
    assert granted_in_turn(pair, POOL, "holder", 5) == ["top", "high", "mid", "none", "low"]


def test_equal_priorities_in_one_second(fast_pair: InstancePair) -> None:
    """Enqueued within one second (the queue's clock resolution), equal priorities are granted
    by (run id, step key), not in enqueue order: SQLite's scan of idx_pending_steps."""
    pair = fast_pair

    def enqueue_in_one_second(key: str) -> bool:
        pair.both(lambda i: storage(i).set_concurrency_slots(key, 1))
        same(pair, claim(key, "holder", "s"))
        time.sleep(1.02 - time.time() % 1)  # right after a second boundary
        for run_id in ("zz", "mm", "aa", "qq"):
            same(pair, claim(key, run_id, "s"))
        seconds = pair.both(
            lambda i: {
                p.enqueued_timestamp
                for p in storage(i).get_concurrency_info(key).pending_steps
                if p.run_id != "holder"
            }
        )
        return all(len(s) == 1 for s in seconds)

    # a loaded machine may straddle a second boundary: then try again on a new pool
    key = next((k for k in ("tie1", "tie2", "tie3") if enqueue_in_one_second(k)), None)
    assert key is not None, "could not enqueue four steps within one second"
    assert granted_in_turn(pair, key, "holder", 4) == ["aa", "mm", "qq", "zz"]


def test_check_claim_and_priority_zero(fast_pair: InstancePair) -> None:
    pair = fast_pair
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 1))
    same(pair, claim(POOL, "r", "zero", 0))
    same(pair, claim(POOL, "r", "five", 5))
    # priority 0 reads back as None from check_concurrency_claim, as 0 from the info
    for step_key in ("zero", "five", "never"):
        same(pair, check(POOL, "r", step_key))
        same(pair, check(OTHER, "r", step_key))
    same(pair, pool_view)
    # claiming again is idempotent
    same(pair, claim(POOL, "r", "zero", 0))
    same(pair, pool_view)


def test_free_with_empty_step_key_frees_the_run(fast_pair: InstancePair) -> None:
    pair = fast_pair
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 2))
    for step_key in ("a", "b", "c"):
        same(pair, claim(POOL, "r", step_key))
    same(pair, claim(POOL, "keep", "x"))
    pair.both(lambda i: storage(i).free_concurrency_slot_for_step("r", ""))
    view = same(pair, pool_view)
    assert view["run_ids"] == {"keep"}
    assert same(pair, lambda i: storage(i).free_concurrency_slots_for_run("unknown")) is None
    assert same(pair, lambda i: storage(i).free_concurrency_slot_for_step("r", "a")) is None
    same(pair, pool_view)


def test_a_waiting_step_that_leaves_admits_nobody(fast_pair: InstancePair) -> None:
    """Freeing a run whose only step still waits (unassigned) passes on no place in the queue:
    only assigned steps that leave admit the next one."""
    pair = fast_pair
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 1))
    same(pair, claim(POOL, "holder", "s"))
    same(pair, claim(POOL, "quitter", "s"))
    same(pair, claim(POOL, "next", "s"))
    pair.both(lambda i: storage(i).free_concurrency_slots_for_run("quitter"))
    view = same(pair, pool_view)
    assert [p for p in view["infos"][POOL]["pending"] if p[2]] == [("holder", "s", True, 0)]
    assert slot(pair, claim(POOL, "next", "s")) == "BLOCKED"


def test_delete_concurrency_limit(fast_pair: InstancePair) -> None:
    pair = fast_pair
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 2))
    pair.both(lambda i: storage(i).set_concurrency_slots(OTHER, 1))
    same(pair, claim(POOL, "r", "a"))
    same(pair, claim(POOL, "r", "b"))
    same(pair, claim(POOL, "r", "c"))
    pair.both(lambda i: storage(i).delete_concurrency_limit(POOL))
    pair.both(lambda i: storage(i).delete_concurrency_limit("unknown"))
    view = same(pair, pool_view)
    # the pool is gone, its claimed slots linger (deleted) and its waiting step stays queued
    assert view["keys"] == {OTHER}
    assert view["infos"][POOL]["slot_count"] == 0
    pair.both(lambda i: storage(i).free_concurrency_slots_for_run("r"))
    same(pair, pool_view)


def test_delete_the_last_pool_while_claimed(fast_pair: InstancePair) -> None:
    """Stock bug (docs/assets-domain.md §10.3): with only deleted-but-claimed slots and no limit
    rows, every reconciling pool call raises until the slot is freed. Pinned as stock has it."""
    pair = fast_pair
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 1))
    same(pair, claim(POOL, "r", "a"))
    pair.both(lambda i: storage(i).delete_concurrency_limit(POOL))
    for fn in (
        lambda i: storage(i).get_pool_limits(),
        lambda i: storage(i).get_concurrency_keys(),
        lambda i: storage(i).set_concurrency_slots(OTHER, 1),
        lambda i: storage(i).initialize_concurrency_limit_to_default(OTHER),
    ):
        assert same_error(pair, fn).__name__ == "IntegrityError"
    same(pair, lambda i: storage(i).get_concurrency_info(POOL))
    pair.both(lambda i: storage(i).free_concurrency_slots_for_run("r"))
    same(pair, pool_view)


def test_initialize_to_the_default(pool_pair: InstancePair) -> None:
    """With a default pool limit (2): a new pool is created from it, a user-set limit is
    overridden (and stays marked user-set), unknown keys report the default."""
    pair = pool_pair
    assert same(pair, lambda i: i.global_op_concurrency_default_limit) == 2
    assert same(pair, pool_view)["infos"]["unknown"]["limit"] == 2
    assert same(pair, lambda i: storage(i).initialize_concurrency_limit_to_default(POOL)) is True
    same(pair, pool_view)
    pair.both(lambda i: storage(i).set_concurrency_slots(OTHER, 1))
    same(pair, claim(OTHER, "r", "a"))
    same(pair, claim(OTHER, "r", "b"))
    assert same(pair, lambda i: storage(i).initialize_concurrency_limit_to_default(OTHER)) is True
    view = same(pair, pool_view)
    assert view["infos"][OTHER]["limit"] == 2
    # initializing does not assign the waiting step; a claim attempt still finds it unassigned
    same(pair, claim(OTHER, "r", "b"))
    same(pair, pool_view)


def test_initialize_without_a_default_deletes_the_pool(fast_pair: InstancePair) -> None:
    pair = fast_pair
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 3))
    same(pair, lambda i: storage(i).initialize_concurrency_limit_to_default(POOL))
    same(pair, lambda i: storage(i).initialize_concurrency_limit_to_default("unknown"))
    assert same(pair, pool_view)["keys"] == set()


def test_claim_in_a_pool_without_limit(fast_pair: InstancePair) -> None:
    pair = fast_pair
    same(pair, claim(POOL, "r", "a"))
    same(pair, pool_view)
    pair.both(lambda i: storage(i).set_concurrency_slots(POOL, 1))
    same(pair, pool_view)
    same(pair, claim(POOL, "r", "a"))
    same(pair, pool_view)


def test_supports_global_concurrency_limits(fast_pair: InstancePair) -> None:
    assert same(fast_pair, lambda i: storage(i).supports_global_concurrency_limits) is True


BAD_LIMITS = [-1, -1000, 1001, 10**9, "3", None, 2.5]


def test_bad_slot_limits_store_nothing(fast_pair: InstancePair) -> None:
    """A negative or absurd limit raises DagsterInvalidInvocationError, a non-int TypeError (a
    float after the limit row was upserted, rolled back): nothing is stored, for a new pool or an
    existing one."""
    pair = fast_pair
    pair.both(lambda i: storage(i).set_concurrency_slots(OTHER, 1))
    same(pair, claim(OTHER, "r", "a"))
    before = same(pair, pool_view)
    for num in BAD_LIMITS:
        for key in (POOL, OTHER):
            error = same_error(pair, lambda i, k=key, n=num: storage(i).set_concurrency_slots(k, n))
            expected = DagsterInvalidInvocationError if isinstance(num, int) else TypeError
            assert error is expected, (num, key)
    assert same(pair, pool_view) == before
