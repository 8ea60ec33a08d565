"""Run lists and counts of several tags on PostgreSQL where the tags are large (counted up to the
core's cap), so that the core orders the per-run tag checks by the statistics' shares of the
values and not by the filter's order, against stock dagster-postgres on identical databases.

The order the checks run in must never change an answer: a run lacking its first checked tag is
skipped, a run with duplicated tag rows comes once per combination of them (stock's joins), in
the fresh `run_tags` layout (duplicates possible) and migration 047's (unique rows), on lists
paged by cursor and on counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from dagster import RunsFilter

from dagster_rs.pg_cluster import PgCluster
from tests.pg.pairs import PgPair, open_pair

pytestmark = pytest.mark.needs_native_pg

RUNS = 30_000


def _seed(url: str, layout: str) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"""
            INSERT INTO runs (run_id, pipeline_name, status, run_body)
            SELECT 'r' || g, 'job', 'SUCCESS', '{{}}' FROM generate_series(1, {RUNS}) AS g
            """
        )
        # `env` on half the runs and `big` on two in five: both over the core's cap (10,000), the
        # rarer one (`big`) second in the filters below; `rare` on one run in 300, `late` only on
        # the oldest runs (a walk newest first meets none for a long time); `all` on every run,
        # more than twice the cap: the statistics say so and it is not counted.
        cur.execute(
            f"""
            INSERT INTO run_tags (run_id, key, value)
            SELECT 'r' || g, 'env', 'e' || (g % 2) FROM generate_series(1, {RUNS}) AS g
            UNION ALL SELECT 'r' || g, 'big', 'x' FROM generate_series(1, {RUNS}) AS g
                WHERE g % 5 < 2
            UNION ALL SELECT 'r' || g, 'rare', 'y' FROM generate_series(1, {RUNS}) AS g
                WHERE g % 300 = 10
            UNION ALL SELECT 'r' || g, 'late', 'z' FROM generate_series(1, {RUNS}) AS g
                WHERE g < 400
            UNION ALL SELECT 'r' || g, 'all', 'a' FROM generate_series(1, {RUNS}) AS g
            """
        )
        if layout == "fresh":
            # Duplicated rows (stock's schema allows them there): those runs come twice.
            cur.execute(
                """
                INSERT INTO run_tags (run_id, key, value)
                SELECT 'r' || g, 'big', 'x' FROM generate_series(1, 30000) AS g
                WHERE g % 5 < 2 AND g % 97 = 0
                """
            )
        else:
            cur.execute("CREATE UNIQUE INDEX idx_run_tags_run_id ON run_tags (key, value, run_id)")
            cur.execute("DROP INDEX idx_run_tags")
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True  # VACUUM runs outside a transaction
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()


@pytest.fixture(params=["fresh", "047"])
def pair(request: pytest.FixtureRequest, tmp_path: Path, pg_cluster: PgCluster) -> Iterator[PgPair]:
    with open_pair("postgres", tmp_path, pg_cluster) as p:
        for db in p.where.values():
            _seed(pg_cluster.url(db), request.param)
        yield p


FILTERS = [
    {"env": "e1", "big": "x"},
    {"big": "x", "env": "e1"},
    {"env": ["e0", "e1"], "big": "x"},
    {"env": "e0", "big": "x", "rare": "y"},
    {"env": "e1", "big": "x", "late": "z"},
    {"env": "e1", "big": "x", "absent": "w"},
    {"all": "a", "big": "x"},
    {"all": "a", "env": "e1", "rare": "y"},
]


def _pages(instance: Any, tags: dict[str, Any]) -> list[str]:
    """Four pages newest first, each after the last run of the one before."""
    out: list[str] = []
    cursor = None
    for _ in range(4):
        page = list(instance.get_run_ids(RunsFilter(tags=tags), cursor=cursor, limit=25))
        out += page
        if len(page) < 25:
            break
        cursor = page[-1]
    return out


@pytest.mark.parametrize("tags", FILTERS, ids=lambda t: "+".join(t))
def test_large_tags_list_and_count_as_stock(pair: PgPair, tags: dict[str, Any]) -> None:
    newest = pair.same(lambda i: _pages(i, tags))
    pair.same(lambda i: list(i.get_run_ids(RunsFilter(tags=tags))))
    pair.same(lambda i: i.get_runs_count(RunsFilter(tags=tags)))
    # `rare` runs are all `e0`; `late` runs all old; `absent` on none.
    empty_or_short = "absent" in tags or "late" in tags or ("rare" in tags and tags["env"] == "e1")
    if not empty_or_short:
        assert len(newest) >= 25, "the filter should match a page at least"
