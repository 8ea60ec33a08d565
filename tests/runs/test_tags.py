"""get_run_tags / get_run_tag_keys / add_run_tags."""

from __future__ import annotations

import pytest
from dagster._core.errors import DagsterRunNotFoundError
from dagster._core.events import DagsterEventType as E
from dagster._core.storage.dagster_run import RunOpConcurrency, RunsFilter
from dagster._core.storage.tags import PARTITION_NAME_TAG, PARTITION_SET_TAG, REPOSITORY_LABEL_TAG

from tests.homes import seeded_pair
from tests.runs.helpers import (
    add_runs,
    at,
    drive,
    full_record,
    ids,
    job_origin,
    make_run,
    rid,
    tags_view,
)

TAGGED = [
    make_run(1, tags={"env": "prod", "team": "data", "owner": "alice"}),
    make_run(2, tags={"env": "production", "team": "Data", "owner": "bob"}),
    make_run(3, tags={"env": "dev", "team": "ml", "x_y": "a_b"}),
    make_run(4, tags={"env": "prod", "note": "100% done", "under": "a_b"}),
    make_run(5, tags={"env": "PROD", "under": "axb", "empty": ""}),
    make_run(6, partition="2024-01-01", partition_set="daily_set", tags={"team": "data"}),
    make_run(7, tags={"ünï": "çødé", "owner": "alice"}),
]


seeded = seeded_pair("tags", lambda inst: add_runs(inst, TAGGED))


def test_tag_keys(seeded):
    out = seeded.same(lambda i: list(i.get_run_tag_keys()))
    assert out.value == sorted(
        {"env", "team", "owner", "x_y", "note", "under", "empty", "ünï"}
        | {PARTITION_NAME_TAG, PARTITION_SET_TAG}
    )
    seeded.same(lambda i: list(i.run_storage.get_run_tag_keys()))


@pytest.mark.parametrize(
    "keys",
    [
        ["env"],
        ["env", "team"],
        ["team", "env", "owner"],
        ["missing"],
        [],
        ["empty"],
        [PARTITION_NAME_TAG, PARTITION_SET_TAG],
        ["ünï", "under"],
    ],
    ids=lambda k: ",".join(k) or "none",
)
def test_get_run_tags(seeded, keys):
    out = seeded.same(lambda i: tags_view(i.get_run_tags(tag_keys=keys)))
    assert [k for k, _ in out.value] == sorted(set(keys) & {k for k, _ in out.value})
    seeded.same(lambda i: tags_view(i.run_storage.get_run_tags(tag_keys=keys)))


def test_get_run_tags_values_are_sets(seeded):
    out = seeded.same(lambda i: i.get_run_tags(tag_keys=["env", "team"]))
    assert out.value == [
        ("env", {"prod", "production", "dev", "PROD"}),
        ("team", {"data", "Data", "ml"}),
    ]


@pytest.mark.parametrize(
    "prefix",
    [
        "prod",
        "pro",
        "PROD",  # SQL LIKE-based prefix matching is ASCII case-insensitive in SQLite
        "d",
        "D",
        "a_",  # '_' and '%' are LIKE wildcards in stock's startswith
        "100%",
        "%",
        "nomatch",
        "",
        "çø",
    ],
)
def test_get_run_tags_value_prefix(seeded, prefix):
    keys = ["env", "team", "owner", "note", "under", "x_y", "ünï"]
    seeded.same(lambda i: tags_view(i.get_run_tags(tag_keys=keys, value_prefix=prefix)))


@pytest.mark.parametrize("limit", [None, 0, 1, 2, 3, 5, 100])
def test_get_run_tags_limit(seeded, limit):
    """The limit applies to distinct (key, value) pairs ordered by key then value."""
    out = seeded.same(
        lambda i: tags_view(i.get_run_tags(tag_keys=["env", "team", "owner"], limit=limit))
    )
    total = sum(len(v) for _, v in out.value)
    assert total == (9 if not limit else min(limit, 9))
    seeded.same(
        lambda i: tags_view(i.get_run_tags(tag_keys=["env", "team"], value_prefix="p", limit=limit))
    )


# -- add_run_tags ------------------------------------------------------------------------------


def _state(inst, n=1):
    run = inst.get_run_by_id(rid(n))
    return run, tags_view(inst.get_run_tags(list(run.tags) + ["k", "new"]))


def test_add_new_and_existing_tags(fast_pair):
    add_runs(
        fast_pair,
        [make_run(1, tags={"k": "old", "keep": "yes"}), make_run(2, tags={"k": "other"})],
        created=[at(0), at(1)],
    )
    out = fast_pair.same(lambda i: i.add_run_tags(rid(1), {"k": "new", "new": "v"}))
    assert out.value is None
    state = fast_pair.same(_state)
    assert state.value[0].tags == {"k": "new", "keep": "yes", "new": "v"}
    fast_pair.same(lambda i: _state(i, 2))
    assert fast_pair.same(lambda i: ids(i.get_runs(RunsFilter(tags={"k": "old"})))).value == []
    found = fast_pair.same(lambda i: ids(i.get_runs(RunsFilter(tags={"k": ["new", "other"]}))))
    assert found.value == [rid(2), rid(1)]
    assert fast_pair.same(lambda i: i.get_runs_count(RunsFilter(tags={"new": "v"}))).value == 1
    fast_pair.same(lambda i: tags_view(i.get_run_tags(["k"])))


def test_add_run_tags_through_storage_and_empty(fast_pair):
    add_runs(fast_pair, [make_run(1, tags={"a": "1"})], created=[at(0)])
    fast_pair.same(lambda i: i.run_storage.add_run_tags(rid(1), {}))
    fast_pair.same(_state)
    fast_pair.same(lambda i: i.run_storage.add_run_tags(rid(1), {"a": "2", "b": "3"}))
    out = fast_pair.same(_state)
    assert out.value[0].tags == {"a": "2", "b": "3"}


def test_add_run_tags_keeps_status_and_times(fast_pair):
    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    fast_pair.both(lambda i: drive(i, rid(1), [(E.RUN_START, at(1)), (E.RUN_SUCCESS, at(2))]))
    fast_pair.both(lambda i: i.add_run_tags(rid(1), {"after": "done"}))
    out = fast_pair.same(lambda i: full_record(i.get_run_record_by_id(rid(1)))[:3])
    assert out.value[1].tags == {"after": "done"}
    times = fast_pair.same(lambda i: full_record(i.get_run_record_by_id(rid(1)))[4:])
    assert times.value == (at(1).timestamp(), at(2).timestamp())
    # The update timestamp moves to "now", past the controlled event time.
    moved = fast_pair.same(lambda i: i.get_run_record_by_id(rid(1)).update_timestamp > at(2))
    assert moved.value is True


def test_add_partition_tags_update_partition_columns(fast_pair):
    add_runs(fast_pair, [make_run(1), make_run(2, partition="a", partition_set="s")])
    fast_pair.both(
        lambda i: i.add_run_tags(rid(1), {PARTITION_NAME_TAG: "b", PARTITION_SET_TAG: "s"})
    )
    fast_pair.both(lambda i: i.add_run_tags(rid(2), {PARTITION_NAME_TAG: "c"}))
    out = fast_pair.same(
        lambda i: sorted(
            (d.run_id, d.partition, d.status)
            for d in i.get_run_partition_data(RunsFilter(tags={PARTITION_SET_TAG: "s"}))
        )
    )
    assert out.value[0][:2] == (rid(1), "b")
    assert out.value[1][:2] == (rid(2), "c")
    fast_pair.same(
        lambda i: ids(i.get_runs(RunsFilter(tags={PARTITION_NAME_TAG: ["a", "b", "c"]})))
    )
    fast_pair.same(lambda i: tags_view(i.get_run_tags([PARTITION_NAME_TAG, PARTITION_SET_TAG])))


def test_add_run_tags_unknown_run(fast_pair):
    add_runs(fast_pair, [make_run(1)])
    out = fast_pair.same(lambda i: i.add_run_tags(rid(2), {"a": "b"}))
    assert out.error is DagsterRunNotFoundError
    out = fast_pair.same(lambda i: i.run_storage.add_run_tags(rid(2), {"a": "b"}))
    assert out.error is DagsterRunNotFoundError
    assert fast_pair.same(lambda i: i.get_run_tag_keys()).value == []


def test_add_run_tags_rejects_non_string_values(fast_pair):
    add_runs(fast_pair, [make_run(1)])
    out = fast_pair.same(lambda i: i.add_run_tags(rid(1), {"a": 1}))
    assert out.error is not None
    fast_pair.same(_state)


def test_storage_only_tags(fast_pair):
    """tags_for_storage() adds repository-label and pool tags that are not in run.tags."""
    run = make_run(
        1,
        remote_job_origin=job_origin("job_a"),
        run_op_concurrency=RunOpConcurrency(
            root_key_counts={"pool_a": 1}, has_unconstrained_root_nodes=False, all_pools={"pool_a"}
        ),
        tags={"plain": "1"},
    )
    add_runs(fast_pair, [run])
    keys = fast_pair.same(lambda i: list(i.get_run_tag_keys()))
    assert REPOSITORY_LABEL_TAG in keys.value and len(keys.value) == 3
    fast_pair.same(lambda i: tags_view(i.get_run_tags(keys.value)))
    out = fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    assert out.value == run


def test_add_run_tags_on_a_storage_only_key(fast_pair):
    """The key is stored but absent from run.tags, so stock treats it as a new tag and inserts
    another row for it (the old value stays queryable) rather than updating the stored one."""
    add_runs(fast_pair, [make_run(1, remote_job_origin=job_origin("job_a"))])
    fast_pair.both(lambda i: i.add_run_tags(rid(1), {REPOSITORY_LABEL_TAG: "other@x"}))
    fast_pair.same(lambda i: i.get_run_by_id(rid(1)).tags)
    fast_pair.same(lambda i: tags_view(i.get_run_tags([REPOSITORY_LABEL_TAG])))
    fast_pair.same(lambda i: ids(i.get_runs(RunsFilter(tags={REPOSITORY_LABEL_TAG: "repo@loc"}))))
    fast_pair.same(lambda i: ids(i.get_runs(RunsFilter(tags={REPOSITORY_LABEL_TAG: "other@x"}))))
