"""The server the PostgreSQL bench runs on: a throwaway local cluster (`PgCluster`, started with
`log_connections=on` and stopped at the end) or a given one (`--postgres-url`, left running; only
the bench's own databases are created on it and dropped afterwards).

Connections opened are counted on the server, per database (each side has its own): on the
throwaway cluster from its log (`connection authorized: ... database=<db>`, written by the
backend before the client's connect returns, so exact); on a given server from
`pg_stat_database.sessions` (PostgreSQL 14+), which a long-lived session reports up to ~10 s late
(an idle backend flushes its statistics at most once a second, else on a 10 s timer), so a pool's
own first connections can land in a later op's count there.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dagster_rs.pg_cluster import PgCluster

_AUTHORIZED = re.compile(r"connection authorized: .*?database=(\S+)")
# The throwaway cluster's memory, as a server of a real deployment would have it (PostgreSQL's
# default shared_buffers is 128MB, `PgCluster`'s 32MB for the test suites): at 1,000,000 runs the
# runs and their tags' indexes fit, as on any server sized for the database it holds.
CLUSTER_SETTINGS = {"shared_buffers": "1GB", "effective_cache_size": "4GB"}
# What the report says of the server the figures were measured on.
REPORTED_SETTINGS = (
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "random_page_cost",
    "max_parallel_workers_per_gather",
    "jit",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "plan_cache_mode",
)


def with_database(url: str, dbname: str) -> str:
    """`url` naming database `dbname` instead (host, port, user and query kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


def psycopg2_url(url: str) -> str:
    """The SQLAlchemy form stock dagster-postgres needs under SQLAlchemy 2.1 (a bare
    `postgresql://` there means psycopg 3, which dagster-postgres does not depend on)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a URL: {url!r}")
    return f"postgresql+psycopg2://{rest}"


def libpq_url(url: str) -> str:
    """The libpq form of a URL (psycopg2.connect and psql read it): no `+driver` in the scheme."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


def without_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Server:
    """One PostgreSQL server the bench creates its databases on."""

    def __init__(
        self, url: str | None, max_connections: int = 200, root: str | None = None
    ) -> None:
        """`url` None: a throwaway cluster (its directory under `root` when given)."""
        self.cluster: PgCluster | None = None
        if url is None:
            self.cluster = PgCluster(
                Path(root) if root else None,
                max_connections=max_connections,
                settings={
                    **CLUSTER_SETTINGS,
                    "log_connections": "on",
                    "log_min_messages": "warning",
                },
            )
            self.cluster.start()
            url = self.cluster.url("postgres")
        self.admin_url = libpq_url(url)
        self.was_throwaway = self.cluster is not None
        self.created: list[str] = []
        self._log_offset = 0
        self._log_counts: dict[str, int] = {}

    @property
    def throwaway(self) -> bool:
        return self.cluster is not None

    def describe(self) -> str:
        if self.cluster is not None:
            return f"throwaway cluster {self.cluster.base} (socket {self.cluster.socket_dir})"
        return f"given server {without_password(self.admin_url)}"

    # -- SQL ---------------------------------------------------------------------------------------

    @contextmanager
    def connect(self, dbname: str | None = None) -> Iterator[Any]:
        """A psycopg2 connection (autocommit) to `dbname` (default: the URL's database)."""
        import psycopg2

        url = self.admin_url if dbname is None else with_database(self.admin_url, dbname)
        conn = psycopg2.connect(url)
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def scalar(self, sql: str, params: tuple[Any, ...] = (), dbname: str | None = None) -> Any:
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return None if row is None else row[0]

    def version(self) -> str:
        return str(self.scalar("SHOW server_version"))

    def settings(self) -> dict[str, str]:
        """The server's `REPORTED_SETTINGS` (as SHOW gives them, units included)."""
        with self.connect() as conn, conn.cursor() as cur:
            out = {}
            for name in REPORTED_SETTINGS:
                cur.execute(f"SHOW {name}")
                out[name] = str(cur.fetchone()[0])
        return out

    def version_num(self) -> int:
        return int(self.scalar("SHOW server_version_num"))

    def url(self, dbname: str) -> str:
        """The libpq URL of database `dbname` on this server."""
        return with_database(self.admin_url, dbname)

    def create_database(self, prefix: str, template: str | None = None) -> str:
        """A new database (a copy of `template` when given: same rows, same sequences); its
        name. Dropped by `close()`."""
        name = f"dagrs_bench_{prefix}_{uuid.uuid4().hex[:10]}"
        sql = f'CREATE DATABASE "{name}"'
        if template is not None:
            sql += f' TEMPLATE "{template}" STRATEGY FILE_COPY'
        with self.connect() as conn, conn.cursor() as cur:
            for attempt in range(50):
                try:
                    cur.execute(sql)
                    break
                except Exception as exc:  # the template's last sessions may still be exiting
                    if "is being accessed by other users" not in str(exc) or attempt == 49:
                        raise
                    time.sleep(0.1)
        self.created.append(name)
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    # -- connections opened ----------------------------------------------------------------------

    def connections_opened(self, dbname: str) -> int | None:
        """Connections opened to `dbname` so far (see the module doc for how), None when the
        server cannot say (a given server older than PostgreSQL 14)."""
        if self.cluster is not None:
            self._read_log()
            return self._log_counts.get(dbname, 0)
        if self.version_num() < 140000:
            return None
        value = self.scalar("SELECT sessions FROM pg_stat_database WHERE datname = %s", (dbname,))
        return None if value is None else int(value)

    def counting_method(self) -> str:
        if self.was_throwaway:
            return "server log (log_connections=on): 'connection authorized' lines per database"
        return "pg_stat_database.sessions per database (reported up to ~10 s late by idle pools)"

    def _read_log(self) -> None:
        assert self.cluster is not None
        with open(self.cluster.log_path, "rb") as f:
            f.seek(self._log_offset)
            data = f.read()
        # Only whole lines: the server may be writing the last one.
        end = data.rfind(b"\n") + 1
        self._log_offset += end
        for line in data[:end].decode(errors="replace").splitlines():
            m = _AUTHORIZED.search(line)
            if m:
                db = m.group(1)
                self._log_counts[db] = self._log_counts.get(db, 0) + 1

    # -- end -------------------------------------------------------------------------------------

    def close(self, keep: bool = False) -> None:
        """Drop the bench's databases (unless `keep`) and stop a throwaway cluster."""
        try:
            if not keep and self.cluster is None:
                for name in list(self.created):
                    self.drop_database(name)
        finally:
            if self.cluster is not None:
                self.cluster.stop()
                self.cluster = None


__all__ = ["Server", "libpq_url", "psycopg2_url", "with_database", "without_password"]
