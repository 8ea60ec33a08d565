"""pytest fixtures for a throwaway PostgreSQL server (dagster_rs.pg_cluster).

`pg_cluster` is one server per test session (per xdist worker), started on first use and stopped
and removed at the session's end (and at exit, and if pytest is killed: see dagster_rs.pg_cluster).
`pg_url` is a fresh, empty database for one test, dropped afterwards; its URL is the unix-socket
form `postgresql://postgres@/<db>?host=<socket dir>&port=<n>` that dagster-postgres's
`postgres_url`, psycopg2 and the `postgres` crate all accept. Tests that restart the server use
`pg_cluster.restart()` (the URL stays valid). Without PostgreSQL binaries the fixtures skip, unless
DAGSTER_RS_REQUIRE_PG=1 (CI sets it, so a missing install fails instead of passing unseen).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dagster_rs import pg_cluster as pgc


def _require() -> None:
    if not pgc.available():
        if os.environ.get("DAGSTER_RS_REQUIRE_PG") == "1":
            pytest.fail("DAGSTER_RS_REQUIRE_PG=1 but no PostgreSQL server binaries were found")
        pytest.skip("no PostgreSQL server binaries (scripts/setup.sh installs Debian's postgresql)")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgc.PgCluster]:
    _require()
    cluster = pgc.PgCluster(
        max_connections=int(os.environ.get("DAGSTER_RS_PG_MAX_CONNECTIONS", "200"))
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_db(pg_cluster: pgc.PgCluster) -> Iterator[str]:
    """The name of a fresh database on the session's server, dropped after the test."""
    if pg_cluster.pid is None:  # a test stopped it (shutdown without restart)
        pg_cluster.start()
    url = pg_cluster.create_database()
    name = url.split("/")[3].split("?")[0]
    try:
        yield name
    finally:
        if pg_cluster.pid is None:
            pg_cluster.start()
        pg_cluster.drop_database(name)


@pytest.fixture
def pg_url(pg_cluster: pgc.PgCluster, pg_db: str) -> str:
    return pg_cluster.url(pg_db)
