"""get_run_group, delete_run (storage and instance), wipe."""

from __future__ import annotations

import pytest
from dagster._core.errors import DagsterRunNotFoundError
from dagster._core.events import DagsterEventType
from dagster._core.execution.backfill import BulkActionsFilter
from dagster._core.snap import JobSnap
from dagster._core.storage.dagster_run import RunsFilter
from dagster._daemon.types import DaemonHeartbeat

from tests.runs.helpers import (
    add_runs,
    at,
    drive,
    ids,
    job_backfill,
    make_run,
    records_view,
    rid,
    tags_view,
)
from tests.runs.test_snapshots import small_job


def _group(inst, n):
    root, runs = inst.get_run_group(rid(n))
    return root, ids(runs)


def _family():
    root = make_run(1)
    child = make_run(2, parent=root)
    grandchild = make_run(3, parent=child, tags={"extra": "x"})
    sibling = make_run(4, parent=root)
    loner = make_run(5, job_name="job_b")
    return [root, child, grandchild, sibling, loner]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_run_group(fast_pair, n):
    add_runs(fast_pair, _family())
    out = fast_pair.same(lambda i: _group(i, n))
    if n == 5:
        assert out.value == (rid(5), [rid(5)])
    else:
        root, members = out.value
        assert root == rid(1) and members[0] == rid(1)
        assert sorted(members) == [rid(1), rid(2), rid(3), rid(4)]
    fast_pair.same(lambda i: i.run_storage.get_run_group(rid(n)))


def test_run_group_unknown_run(fast_pair):
    add_runs(fast_pair, _family())
    out = fast_pair.same(lambda i: i.get_run_group(rid(42)))
    assert out.error is DagsterRunNotFoundError


def test_run_group_with_missing_root(fast_pair):
    ghost_root = make_run(40)
    add_runs(fast_pair, [make_run(41, parent=ghost_root)])
    out = fast_pair.same(lambda i: i.get_run_group(rid(41)))
    assert out.error is DagsterRunNotFoundError


def test_run_group_after_deletes(fast_pair):
    add_runs(fast_pair, _family())
    fast_pair.both(lambda i: i.run_storage.delete_run(rid(2)))
    out = fast_pair.same(lambda i: _group(i, 3))
    assert sorted(out.value[1]) == [rid(1), rid(3), rid(4)]
    fast_pair.both(lambda i: i.run_storage.delete_run(rid(1)))
    out = fast_pair.same(lambda i: i.get_run_group(rid(3)))
    assert out.error is DagsterRunNotFoundError


def test_run_group_status_from_status_column(fast_pair):
    add_runs(fast_pair, _family())
    fast_pair.both(lambda i: drive(i, rid(3), [(DagsterEventType.RUN_START, at(1))]))
    out = fast_pair.same(lambda i: i.get_run_group(rid(1)))
    assert {r.run_id: r.status.value for r in out.value[1]}[rid(3)] == "STARTED"


# -- delete_run --------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["instance", "storage"])
def test_delete_run(fast_pair, via):
    add_runs(
        fast_pair,
        [make_run(1, tags={"only_on_1": "a", "shared": "1"}), make_run(2, tags={"shared": "2"})],
    )

    def delete(inst):
        target = inst if via == "instance" else inst.run_storage
        return target.delete_run(rid(1))

    out = fast_pair.same(delete)
    assert out.value is None
    assert fast_pair.same(lambda i: i.has_run(rid(1))).value is False
    assert fast_pair.same(lambda i: i.get_run_by_id(rid(1))).value is None
    assert fast_pair.same(lambda i: ids(i.get_runs())).value == [rid(2)]
    keys = fast_pair.same(lambda i: list(i.get_run_tag_keys()))
    assert keys.value == ["shared"]
    fast_pair.same(lambda i: tags_view(i.get_run_tags(["shared", "only_on_1"])))
    assert fast_pair.same(lambda i: i.get_runs_count(RunsFilter(tags={"shared": "1"}))).value == 0


def test_delete_unknown_run_is_a_no_op(fast_pair):
    add_runs(fast_pair, [make_run(1)])
    out = fast_pair.same(lambda i: i.run_storage.delete_run(rid(9)))
    assert out.value is None
    assert fast_pair.same(lambda i: i.get_runs_count()).value == 1


def test_delete_then_readd(fast_pair):
    add_runs(fast_pair, [make_run(1), make_run(2), make_run(3)], created=[at(0), at(1), at(2)])
    fast_pair.both(lambda i: i.run_storage.delete_run(rid(2)))
    add_runs(fast_pair, [make_run(2, job_name="again")], created=[at(3)])
    out = fast_pair.same(lambda i: records_view(i.get_run_records()))
    assert [v[1].run_id for v in out.value] == [rid(2), rid(3), rid(1)]
    # Deleting the newest row and inserting again: whether storage ids are reused is SQLite's
    # rowid rule for the table; both must agree.
    fast_pair.both(lambda i: i.run_storage.delete_run(rid(2)))
    add_runs(fast_pair, [make_run(4)], created=[at(4)])
    fast_pair.same(lambda i: records_view(i.get_run_records()))


# -- wipe --------------------------------------------------------------------------------------


SNAP = JobSnap.from_job_def(small_job)


def _populate(inst):
    inst.run_storage.add_job_snapshot(SNAP)
    add_runs(inst, [make_run(1, tags={"t": "1"}), make_run(2, job_snapshot_id=SNAP.snapshot_id)])
    inst.add_backfill(job_backfill("bf", "job_a", at(0).timestamp(), tags={"t": "1"}))
    inst.add_daemon_heartbeat(
        DaemonHeartbeat(timestamp=at(0).timestamp(), daemon_type="SENSOR", daemon_id="x")
    )
    inst.run_storage.set_cursor_values({"cursor": "7"})


def _everything(inst):
    return {
        "runs": ids(inst.get_runs()),
        "records": records_view(inst.get_run_records()),
        "tag_keys": list(inst.get_run_tag_keys()),
        "tags": tags_view(inst.get_run_tags(["t"])),
        "snapshot": inst.has_job_snapshot(SNAP.snapshot_id),
        "backfills": [b.backfill_id for b in inst.get_backfills()],
        "backfills_by_tag": [
            b.backfill_id for b in inst.get_backfills(filters=BulkActionsFilter(tags={"t": "1"}))
        ],
        "backfill_count_by_tag": inst.get_backfills_count(BulkActionsFilter(tags={"t": "1"})),
        "heartbeats": sorted(inst.get_daemon_heartbeats()),
        "cursors": dict(inst.run_storage.get_cursor_values({"cursor"})),
    }


@pytest.mark.parametrize("via", ["instance", "storage"])
def test_wipe(fast_pair, via):
    fast_pair.both(_populate)
    before = fast_pair.same(_everything)
    assert before.value["runs"] == [rid(2), rid(1)]
    storage_ids = fast_pair.both(lambda i: i.run_storage.get_run_storage_id())
    out = fast_pair.same(lambda i: (i if via == "instance" else i.run_storage).wipe())
    assert out.value is None
    after = fast_pair.same(_everything)
    assert after.value["runs"] == [] and after.value["snapshot"] is False
    # The run storage id survives a wipe.
    assert fast_pair.both(lambda i: i.run_storage.get_run_storage_id()) == storage_ids
    # Storage works normally afterwards, storage ids included.
    fast_pair.both(_populate)
    fast_pair.same(_everything)
