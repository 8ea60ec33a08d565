"""Cursor paging (both directions), limit and order_by, against one seeded pair per module."""

from __future__ import annotations

import pytest
from dagster._core.events import DagsterEventType as E
from dagster._core.storage.dagster_run import RunsFilter

from tests.homes import seeded_pair
from tests.runs.helpers import at, drive, full_record, ids, make_run, records_view, rid

N = 15
# Creation and update times deliberately out of insertion order, all distinct.
CREATED = {n: at((n * 7) % N) for n in range(1, N + 1)}
STARTED = {n: at(100 + (n * 11) % N) for n in range(1, N + 1)}
JOBS = {n: ("job_a", "job_b", "job_c")[n % 3] for n in range(1, N + 1)}


def seed(inst) -> None:
    for n in range(1, N + 1):
        run = make_run(n, JOBS[n], tags={"parity": "even" if n % 2 == 0 else "odd"})
        inst.run_storage.add_historical_run(run, CREATED[n])
        steps = [(E.RUN_START, STARTED[n])]
        if n % 4 == 0:
            steps.append((E.RUN_SUCCESS, at(200 + n)))
        drive(inst, run.run_id, steps, job_name=run.job_name)


seeded = seeded_pair("paging", seed)


def _pages(fetch, limit: int, max_pages: int = 50) -> list[list[str]]:
    """Follow the cursor (last run id of each page) until an empty or short page."""
    pages: list[list[str]] = []
    cursor = None
    for _ in range(max_pages):
        page = fetch(cursor, limit)
        pages.append(page)
        if len(page) < limit or not page:
            break
        cursor = page[-1]
    return pages


FILTERS = {
    "all": None,
    "job_b": RunsFilter(job_name="job_b"),
    "even": RunsFilter(tags={"parity": "even"}),
}


@pytest.mark.parametrize("limit", [1, 4, 7, 15, 20])
@pytest.mark.parametrize("ascending", [False, True])
@pytest.mark.parametrize("fname", list(FILTERS))
def test_get_runs_pages(seeded, limit, ascending, fname):
    f = FILTERS[fname]

    def walk(inst):
        return _pages(
            lambda c, k: ids(inst.get_runs(filters=f, cursor=c, limit=k, ascending=ascending)),
            limit,
        )

    out = seeded.same(walk)
    flat = [r for page in out.value for r in page]
    assert len(flat) == len(set(flat))
    expected_count = seeded.same(lambda i: i.get_runs_count(f)).value
    assert len(flat) == expected_count


@pytest.mark.parametrize("limit", [1, 6, 15])
@pytest.mark.parametrize("fname", list(FILTERS))
def test_get_run_ids_pages(seeded, limit, fname):
    f = FILTERS[fname]
    seeded.same(
        lambda inst: _pages(
            lambda c, k: list(inst.get_run_ids(filters=f, cursor=c, limit=k)), limit
        )
    )


@pytest.mark.parametrize("limit", [2, 5])
@pytest.mark.parametrize("ascending", [False, True])
def test_get_run_records_pages(seeded, limit, ascending):
    def walk(inst):
        return _pages(
            lambda c, k: [
                r.dagster_run.run_id
                for r in inst.get_run_records(cursor=c, limit=k, ascending=ascending)
            ],
            limit,
        )

    seeded.same(walk)


def test_full_records_with_controlled_times(seeded):
    out = seeded.same(lambda i: [full_record(r) for r in i.get_run_records()])
    assert [rec[0] for rec in out.value] == list(range(N, 0, -1))
    assert out.value[-1][2:5] == (CREATED[1], STARTED[1], STARTED[1].timestamp())


@pytest.mark.parametrize("cursor_n", [1, 8, N])
@pytest.mark.parametrize("ascending", [False, True])
def test_cursor_edges(seeded, cursor_n, ascending):
    out = seeded.same(lambda i: ids(i.get_runs(cursor=rid(cursor_n), ascending=ascending)))
    expected = range(cursor_n + 1, N + 1) if ascending else range(cursor_n - 1, 0, -1)
    assert out.value == [rid(n) for n in expected]


@pytest.mark.parametrize(
    "call",
    [
        lambda i: ids(i.get_runs(cursor=rid(999))),
        lambda i: ids(i.get_runs(cursor=rid(999), ascending=True)),
        lambda i: list(i.get_run_ids(cursor=rid(999))),
        lambda i: records_view(i.get_run_records(cursor=rid(999))),
    ],
    ids=["runs", "runs_asc", "run_ids", "records"],
)
def test_unknown_cursor(seeded, call):
    out = seeded.same(call)
    assert out.value == []


def test_cursor_outside_the_filter(seeded):
    """The cursor run need not match the filter: its storage id is the boundary."""
    f = RunsFilter(job_name="job_a")  # job_a runs are the multiples of 3
    out = seeded.same(lambda i: ids(i.get_runs(filters=f, cursor=rid(8))))
    assert out.value == [rid(6), rid(3)]
    seeded.same(lambda i: ids(i.get_runs(filters=f, cursor=rid(8), ascending=True)))
    seeded.same(lambda i: list(i.get_run_ids(filters=f, cursor=rid(8), limit=1)))


@pytest.mark.parametrize("limit", [None, 0, 1, 3, N, N + 5])
def test_limit(seeded, limit):
    out = seeded.same(lambda i: ids(i.get_runs(limit=limit)))
    assert len(out.value) == (N if not limit else min(limit, N))
    seeded.same(lambda i: list(i.get_run_ids(limit=limit)))
    seeded.same(lambda i: records_view(i.get_run_records(limit=limit)))
    seeded.same(lambda i: ids(i.get_runs(limit=limit, ascending=True)))


ORDER_COLUMNS = ["id", "create_timestamp", "update_timestamp", "start_time", "run_id"]


@pytest.mark.parametrize("ascending", [False, True])
@pytest.mark.parametrize("order_by", ORDER_COLUMNS)
def test_order_by(seeded, order_by, ascending):
    out = seeded.same(
        lambda i: records_view(i.get_run_records(order_by=order_by, ascending=ascending))
    )
    assert len(out.value) == N
    seeded.same(
        lambda i: records_view(i.get_run_records(order_by=order_by, ascending=ascending, limit=4))
    )
    seeded.same(
        lambda i: records_view(
            i.get_run_records(
                filters=RunsFilter(tags={"parity": "odd"}), order_by=order_by, ascending=ascending
            )
        )
    )


def test_order_by_create_timestamp_is_not_id_order(seeded):
    out = seeded.same(
        lambda i: [r.dagster_run.run_id for r in i.get_run_records(order_by="create_timestamp")]
    )
    assert out.value == [rid(n) for n in sorted(CREATED, key=CREATED.__getitem__, reverse=True)]


@pytest.mark.parametrize("order_by", ["create_timestamp", "update_timestamp"])
@pytest.mark.parametrize("ascending", [False, True])
def test_order_by_with_cursor(seeded, order_by, ascending):
    seeded.same(
        lambda i: records_view(
            i.get_run_records(order_by=order_by, ascending=ascending, cursor=rid(8), limit=5)
        )
    )


@pytest.mark.parametrize("order_by", ["bogus", "not_a_column", "RUN_ID"])
def test_invalid_order_by(seeded, order_by):
    out = seeded.same(lambda i: i.get_run_records(order_by=order_by))
    assert out.error is not None


def test_empty_order_by_means_default(seeded):
    out = seeded.same(lambda i: records_view(i.get_run_records(order_by="")))
    assert out.error is None
    assert [v[0] for v in out.value] == list(range(N, 0, -1))
