"""Storage identity and versioning, data-migration markers, partition data, job origin
replacement, and reading one implementation's runs.db with the other."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster._core.events import DagsterEventType as E
from dagster._core.execution.backfill import BulkActionsFilter
from dagster._core.snap import JobSnap
from dagster._core.storage.dagster_run import DagsterRunStatus, RunPartitionData, RunsFilter
from dagster._core.storage.runs.migration import (
    OPTIONAL_DATA_MIGRATIONS,
    REQUIRED_DATA_MIGRATIONS,
)
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG
from dagster._daemon.types import DaemonHeartbeat

from tests.conftest import InstancePair, load_instance, make_instance, write_home
from tests.homes import seeded_pair
from tests.runs.helpers import (
    add_runs,
    at,
    drive,
    full_record,
    ids,
    job_backfill,
    job_origin,
    make_run,
    rid,
    tags_view,
)
from tests.runs.test_snapshots import small_job

# -- identity, versions, indexes: brand-new homes, created from scratch -----------------------


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Iterator[InstancePair]:
    """One pair on DAGSTER_HOMEs initialised from scratch (not copied), shared by the module."""
    root = tmp_path_factory.mktemp("fresh")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_RS_DOMAINS", raising=False)
        mp.delenv("DAGSTER_RS_DURABILITY", raising=False)
        p = InstancePair(make_instance(root, "stock"), make_instance(root, "rust"))
    try:
        yield p
    finally:
        p.dispose()


def test_fresh_home_is_empty(fresh):
    def summary(inst):
        return (
            list(inst.get_runs()),
            inst.get_runs_count(),
            list(inst.get_run_tag_keys()),
            list(inst.get_backfills()),
            dict(inst.get_daemon_heartbeats()),
            list(inst.get_run_records()),
        )

    out = fresh.same(summary)
    assert out.value == ([], 0, [], [], {}, [])


def test_alembic_version(fresh):
    out = fresh.same(lambda i: tuple(i.run_storage.alembic_version()))
    db_revision, head_revision = out.value
    assert db_revision is not None and db_revision == head_revision


@pytest.mark.parametrize(
    "name",
    [*REQUIRED_DATA_MIGRATIONS, *OPTIONAL_DATA_MIGRATIONS, "not_a_migration", ""],
)
def test_has_built_index(fresh, name):
    out = fresh.same(lambda i: i.run_storage.has_built_index(name))
    assert out.value is (name in REQUIRED_DATA_MIGRATIONS or name in OPTIONAL_DATA_MIGRATIONS)


def test_run_storage_id_is_a_stable_uuid(fresh):
    def shape(inst):
        first = inst.run_storage.get_run_storage_id()
        second = inst.run_storage.get_run_storage_id()
        return (str(uuid.UUID(first)) == first, first == second)

    out = fresh.same(shape)
    assert out.value == (True, True)
    stock_id, rust_id = fresh.both(lambda i: i.run_storage.get_run_storage_id())
    assert stock_id != rust_id  # separate homes, separately generated


def test_run_storage_id_persists_across_reopen(fast_pair, tmp_path):
    before = fast_pair.both(lambda i: i.run_storage.get_run_storage_id())
    fast_pair.stock.dispose()
    fast_pair.rust.dispose()
    after = []
    for kind in ("stock", "rust"):
        again = load_instance(tmp_path / f"{kind}_home")
        try:
            after.append(again.run_storage.get_run_storage_id())
        finally:
            again.dispose()
    assert tuple(after) == before


def test_migrate_and_optimize_are_no_ops_on_fresh_storage(fast_pair):
    add_runs(fast_pair, [make_run(1, partition="p", partition_set="s")], created=[at(0)])
    fast_pair.same(lambda i: i.run_storage.migrate())
    fast_pair.same(lambda i: i.run_storage.optimize())
    fast_pair.same(lambda i: [i.run_storage.has_built_index(n) for n in REQUIRED_DATA_MIGRATIONS])
    fast_pair.same(lambda i: i.get_run_by_id(rid(1)))


# -- partition data ------------------------------------------------------------------------------


def _seed_partitions(inst):
    runs = [
        (
            make_run(1, "pjob", partition="2024-01-01", partition_set="pjob_set"),
            [(E.RUN_START, at(1)), (E.RUN_SUCCESS, at(2))],
        ),
        (
            make_run(2, "pjob", partition="2024-01-02", partition_set="pjob_set"),
            [(E.RUN_START, at(3)), (E.RUN_FAILURE, at(4))],
        ),
        # A newer run of the same partition: the newest wins.
        (
            make_run(3, "pjob", partition="2024-01-01", partition_set="pjob_set"),
            [(E.RUN_START, at(5))],
        ),
        (make_run(4, "pjob", partition="2024-01-03", partition_set="other_set"), []),
        (make_run(5, "pjob"), [(E.RUN_START, at(6)), (E.RUN_SUCCESS, at(7))]),
        (
            make_run(6, "other_job", partition="2024-01-01", partition_set="x_set"),
            [(E.RUN_START, at(8))],
        ),
    ]
    for i, (run, steps) in enumerate(runs):
        inst.run_storage.add_historical_run(run, at(i * 10))
        drive(inst, run.run_id, steps, job_name=run.job_name)


partitioned = seeded_pair("partitions", _seed_partitions)


@pytest.mark.parametrize(
    "runs_filter",
    [
        RunsFilter(job_name="pjob"),
        RunsFilter(job_name="pjob", tags={"dagster/partition_set": "pjob_set"}),
        RunsFilter(job_name="pjob", statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]),
        RunsFilter(created_before=at(25)),
        RunsFilter(),
        RunsFilter(job_name="nothing"),
    ],
    ids=["job", "job_set", "job_status", "created_before", "all", "none"],
)
def test_get_run_partition_data(partitioned, runs_filter):
    out = partitioned.same(lambda i: list(i.get_run_partition_data(runs_filter)))
    assert all(isinstance(d, RunPartitionData) for d in out.value)
    partitioned.same(lambda i: list(i.run_storage.get_run_partition_data(runs_filter)))


def test_get_run_partition_data_values(partitioned):
    out = partitioned.same(
        lambda i: list(
            i.get_run_partition_data(
                RunsFilter(job_name="pjob", tags={"dagster/partition_set": "pjob_set"})
            )
        )
    )
    assert out.value == [
        RunPartitionData(
            run_id=rid(3),
            partition="2024-01-01",
            status=DagsterRunStatus.STARTED,
            start_time=at(5).timestamp(),
            end_time=None,
        ),
        RunPartitionData(
            run_id=rid(2),
            partition="2024-01-02",
            status=DagsterRunStatus.FAILURE,
            start_time=at(3).timestamp(),
            end_time=at(4).timestamp(),
        ),
    ]


# -- replace_job_origin ----------------------------------------------------------------------


def test_replace_job_origin(fast_pair):
    run = make_run(1, "job_a", remote_job_origin=job_origin("job_a", "old_loc", "old_repo"))
    add_runs(
        fast_pair,
        [run, make_run(2, "job_a", remote_job_origin=run.remote_job_origin)],
        created=[at(0), at(1)],
    )
    new_origin = job_origin("job_a", "new_loc", "new_repo")
    out = fast_pair.same(lambda i: i.run_storage.replace_job_origin(run, new_origin))
    assert out.value is None
    got = fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    assert got.value.remote_job_origin == new_origin
    assert got.value.tags[REPOSITORY_LABEL_TAG] == "new_repo@new_loc"
    tags = fast_pair.same(lambda i: tags_view(i.get_run_tags([REPOSITORY_LABEL_TAG])))
    assert tags.value == [(REPOSITORY_LABEL_TAG, ["new_repo@new_loc", "old_repo@old_loc"])]
    fast_pair.same(
        lambda i: ids(i.get_runs(RunsFilter(tags={REPOSITORY_LABEL_TAG: "new_repo@new_loc"})))
    )
    fast_pair.same(lambda i: full_record(i.get_run_record_by_id(rid(1)))[:3])


def test_replace_job_origin_on_run_without_label_tag(fast_pair):
    """Stock rewrites the body and updates an existing label tag row; it adds no row."""
    run = make_run(1, "job_a")
    add_runs(fast_pair, [run], created=[at(0)])
    new_origin = job_origin("job_a", "loc2", "repo2")
    fast_pair.same(lambda i: i.run_storage.replace_job_origin(run, new_origin))
    fast_pair.same(lambda i: i.get_run_by_id(rid(1)))
    fast_pair.same(lambda i: tags_view(i.get_run_tags([REPOSITORY_LABEL_TAG])))
    fast_pair.same(lambda i: ids(i.get_runs(RunsFilter(tags={REPOSITORY_LABEL_TAG: "repo2@loc2"}))))


# -- one implementation reads the other's files ---------------------------------------------------

SNAP = JobSnap.from_job_def(small_job)


def _write_everything(inst):
    inst.run_storage.add_job_snapshot(SNAP)
    root = make_run(
        1, tags={"team": "x"}, partition="p1", partition_set="s", job_snapshot_id=SNAP.snapshot_id
    )
    runs = [root, make_run(2, parent=root), make_run(3, job_name="job_b", backfill_id="bf")]
    add_runs(inst, runs, created=[at(0), at(1), at(2)])
    drive(inst, rid(1), [(E.RUN_START, at(3)), (E.RUN_SUCCESS, at(4))])
    inst.add_run_tags(rid(2), {"added": "later"})
    inst.add_backfill(job_backfill("bf", "job_b", at(0).timestamp(), tags={"team": "x"}))
    inst.add_daemon_heartbeat(DaemonHeartbeat(at(5).timestamp(), "SENSOR", "d"))
    inst.run_storage.set_cursor_values({"k": "v"})


def _read_everything(inst):
    records = inst.get_run_records()
    return {
        "records": [
            (r.storage_id, r.dagster_run, r.create_timestamp, r.start_time, r.end_time)
            for r in records
        ],
        "update_of_1": inst.get_run_record_by_id(rid(1)).update_timestamp,
        "tags": tags_view(inst.get_run_tags(list(inst.get_run_tag_keys()))),
        "by_tag": ids(inst.get_runs(RunsFilter(tags={"added": "later"}))),
        "subruns_excluded": ids(inst.get_runs(RunsFilter(exclude_subruns=True))),
        "group": inst.get_run_group(rid(2)),
        "snapshot": inst.get_job_snapshot(SNAP.snapshot_id),
        "partitions": list(inst.get_run_partition_data(RunsFilter(job_name="job_a"))),
        "backfills": list(inst.get_backfills(filters=BulkActionsFilter(tags={"team": "x"}))),
        "backfills_by_job": [
            b.backfill_id for b in inst.get_backfills(filters=BulkActionsFilter(job_name="job_b"))
        ],
        "heartbeats": dict(inst.get_daemon_heartbeats()),
        "cursors": dict(inst.run_storage.get_cursor_values({"k"})),
        "storage_id": inst.run_storage.get_run_storage_id(),
    }


@pytest.mark.parametrize("writer,reader", [("stock", "rust"), ("rust", "stock")])
def test_files_are_interchangeable(tmp_path: Path, writer, reader):
    home = write_home(tmp_path / "home", writer)
    inst = load_instance(home)
    try:
        _write_everything(inst)
        written = _read_everything(inst)
    finally:
        inst.dispose()
    write_home(home, reader)  # same files, the other implementation
    other = load_instance(home)
    try:
        read = _read_everything(other)
        # ... and the reader can keep writing to them.
        add_runs(other, [make_run(4)], created=[at(9)])
        assert other.get_run_record_by_id(rid(4)).storage_id == 4
    finally:
        other.dispose()
    assert read == written


def test_the_pairs_compare_two_implementations(fast_pair, fresh):
    """Guard for the whole suite: the `rust` side really is dagster-rs, the `stock` side not."""
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

    from dagster_rs.storage.run_storage import RustRunStorage

    for p in (fast_pair, fresh):
        assert type(p.stock.run_storage) is SqliteRunStorage
        assert isinstance(p.rust.run_storage, RustRunStorage)
        assert "runs" in p.rust.rust_domains


def test_second_instance_on_the_same_home_sees_writes(fast_pair, tmp_path):
    """Two instances over one DAGSTER_HOME (e.g. webserver and daemon) share one truth, and an
    instance rebuilt from its InstanceRef (as step processes do) reads the same data."""
    from dagster import DagsterInstance

    add_runs(fast_pair, [make_run(1)], created=[at(0)])
    others = {
        "stock": load_instance(tmp_path / "stock_home"),
        "rust": load_instance(tmp_path / "rust_home"),
    }
    refs = {
        kind: DagsterInstance.from_ref(inst.get_ref())
        for kind, inst in (("stock", fast_pair.stock), ("rust", fast_pair.rust))
    }
    try:

        def other(inst):
            return others["stock" if inst is fast_pair.stock else "rust"]

        def via_ref(inst):
            return refs["stock" if inst is fast_pair.stock else "rust"]

        assert type(via_ref(fast_pair.rust)) is type(fast_pair.rust)
        assert fast_pair.same(lambda i: ids(other(i).get_runs())).value == [rid(1)]
        fast_pair.both(lambda i: other(i).add_run_tags(rid(1), {"from": "other"}))
        fast_pair.both(lambda i: drive(other(i), rid(1), [(E.RUN_START, at(1))]))
        out = fast_pair.same(lambda i: full_record(i.get_run_record_by_id(rid(1))))
        assert out.value[1].tags == {"from": "other"}
        assert out.value[4] == at(1).timestamp()
        fast_pair.both(lambda i: add_runs(via_ref(i), [make_run(2)], created=[at(2)]))
        fast_pair.same(lambda i: [full_record(r)[:3] for r in i.get_run_records()])
        fast_pair.same(lambda i: [full_record(r)[:3] for r in other(i).get_run_records()])
        fast_pair.both(lambda i: i.run_storage.delete_run(rid(2)))
        assert fast_pair.same(lambda i: via_ref(i).has_run(rid(2))).value is False
    finally:
        for inst in [*others.values(), *refs.values()]:
            inst.dispose()
