"""bucket_by (JobBucket / TagBucket) on get_runs and get_run_records.

Stock SQLite run storage ignores `bucket_by`; dagster-rs implements it: for each listed job (or
tag value) at most `bucket_limit` of the newest runs matching the filter, all ordered by storage
id, newest first. The oracle is computed from stock's plain per-job / per-tag-value queries
(`get_run_records(filters=..., limit=bucket_limit)`) over identical data.
"""

from __future__ import annotations

import pytest
from dagster._core.events import DagsterEventType as E
from dagster._core.storage.dagster_run import DagsterRunStatus, JobBucket, RunsFilter, TagBucket

from tests.homes import seeded_pair
from tests.runs.helpers import at, drive, make_run, records_view

JOB_COUNTS = {"job_a": 5, "job_b": 3, "job_c": 1, "job_d": 4}


def _spec():
    n = 0
    out = []
    # Interleave jobs so each job's runs are spread over the id range.
    for round_ in range(max(JOB_COUNTS.values())):
        for job_name, count in JOB_COUNTS.items():
            if round_ < count:
                n += 1
                team = ("red", "blue", "green")[n % 3]
                env = "prod" if n % 2 else "dev"
                success = n % 4 != 0
                out.append((make_run(n, job_name, tags={"team": team, "env": env}), success))
    return out


def seed(inst) -> None:
    for i, (run, success) in enumerate(_spec()):
        inst.run_storage.add_historical_run(run, at(i))
        final = E.RUN_SUCCESS if success else E.RUN_FAILURE
        drive(inst, run.run_id, [(E.RUN_START, at(i + 0.1)), (final, at(i + 0.2))], run.job_name)


seeded = seeded_pair("buckets", seed)


FILTERS = {
    "none": None,
    "success": RunsFilter(statuses=[DagsterRunStatus.SUCCESS]),
    "prod": RunsFilter(tags={"env": "prod"}),
    "created": RunsFilter(created_after=at(3)),
    "job_a": RunsFilter(job_name="job_a"),
}


def _narrow(f: RunsFilter | None, job_name: str | None = None, tag=None) -> RunsFilter | None:
    """`f` further restricted to one job or one (key, value) tag; None if that matches nothing."""
    base = f or RunsFilter()
    tags = dict(base.tags)
    if job_name is not None:
        if base.job_name and base.job_name != job_name:
            return None
    if tag is not None:
        key, value = tag
        if key in tags:
            wanted = tags[key]
            if value not in ([wanted] if isinstance(wanted, str) else wanted):
                return None
        tags[key] = value
    return RunsFilter(
        run_ids=base.run_ids,
        job_name=job_name or base.job_name,
        statuses=base.statuses,
        tags=tags,
        snapshot_id=base.snapshot_id,
        updated_after=base.updated_after,
        updated_before=base.updated_before,
        created_after=base.created_after,
        created_before=base.created_before,
        exclude_subruns=base.exclude_subruns,
    )


def oracle(stock, f: RunsFilter | None, bucket) -> list:
    if isinstance(bucket, JobBucket):
        parts = [_narrow(f, job_name=job) for job in bucket.job_names]
    else:
        parts = [_narrow(f, tag=(bucket.tag_key, v)) for v in bucket.tag_values]
    records = {}
    for part in parts:
        if part is None:
            continue
        for r in stock.get_run_records(filters=part, limit=bucket.bucket_limit):
            records[r.storage_id] = r
    return records_view(sorted(records.values(), key=lambda r: r.storage_id, reverse=True))


JOB_BUCKETS = {
    "ab_1": JobBucket(job_names=["job_a", "job_b"], bucket_limit=1),
    "ab_2": JobBucket(job_names=["job_a", "job_b"], bucket_limit=2),
    "all_3": JobBucket(job_names=list(JOB_COUNTS), bucket_limit=3),
    "with_missing_2": JobBucket(job_names=["job_c", "job_zzz", "job_d"], bucket_limit=2),
    "big_limit": JobBucket(job_names=["job_a", "job_d"], bucket_limit=50),
    "no_limit": JobBucket(job_names=["job_b", "job_c"], bucket_limit=None),
}

TAG_BUCKETS = {
    "team_1": TagBucket(tag_key="team", tag_values=["red", "blue"], bucket_limit=1),
    "team_all_2": TagBucket(tag_key="team", tag_values=["red", "blue", "green"], bucket_limit=2),
    "env_3": TagBucket(tag_key="env", tag_values=["prod", "dev"], bucket_limit=3),
    "missing_value": TagBucket(tag_key="team", tag_values=["purple", "green"], bucket_limit=2),
    "missing_key": TagBucket(tag_key="nope", tag_values=["x"], bucket_limit=2),
    "no_limit": TagBucket(tag_key="team", tag_values=["green"], bucket_limit=None),
}


def test_rust_storage_supports_bucket_queries(seeded):
    assert seeded.rust.run_storage.supports_bucket_queries is True


@pytest.mark.parametrize("fname", list(FILTERS))
@pytest.mark.parametrize("bname", list(JOB_BUCKETS))
def test_job_bucket(seeded, bname, fname):
    bucket, f = JOB_BUCKETS[bname], FILTERS[fname]
    expected = oracle(seeded.stock, f, bucket)
    got = records_view(seeded.rust.get_run_records(filters=f, bucket_by=bucket))
    assert got == expected
    runs = [r.run_id for r in seeded.rust.get_runs(filters=f, bucket_by=bucket)]
    assert runs == [v[1].run_id for v in expected]


@pytest.mark.parametrize("fname", list(FILTERS))
@pytest.mark.parametrize("bname", list(TAG_BUCKETS))
def test_tag_bucket(seeded, bname, fname):
    bucket, f = TAG_BUCKETS[bname], FILTERS[fname]
    expected = oracle(seeded.stock, f, bucket)
    got = records_view(seeded.rust.get_run_records(filters=f, bucket_by=bucket))
    assert got == expected
    runs = [r.run_id for r in seeded.rust.run_storage.get_runs(filters=f, bucket_by=bucket)]
    assert runs == [v[1].run_id for v in expected]


def test_oracle_is_not_trivial(seeded):
    """Guard the oracle itself: per-job limits really cut, and jobs really interleave."""
    expected = oracle(seeded.stock, None, JOB_BUCKETS["ab_2"])
    jobs = [v[1].job_name for v in expected]
    assert sorted(jobs) == ["job_a", "job_a", "job_b", "job_b"]
    assert [v[0] for v in expected] == sorted((v[0] for v in expected), reverse=True)
    assert len(seeded.stock.get_runs()) == sum(JOB_COUNTS.values())
