"""Instances for the PostgreSQL differential suite: a stock instance and a dagster-rs instance
configured as users configure them, on the SQLite of two homes or two databases of one server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import DagsterInstance

import dagster_rs
from dagster_rs import postgres
from dagster_rs.pg_cluster import PgCluster
from tests.conftest import RUST_YAML, InstancePair, call, same_class

# The domains served on PostgreSQL: issue 16's first part, issue 17's storage domain.
PG_DOMAINS = frozenset({"runs", "config", "scheduling", "storage"})


def stock_url(url: str) -> str:
    """The cluster's `postgresql://` URL in the form stock dagster-postgres opens under
    SQLAlchemy 2.1 with psycopg2 (a bare `postgresql://` means psycopg 3 there)."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def postgres_yaml(url: str) -> str:
    return f"storage:\n  postgres:\n    postgres_url: {url!r}\n"


def write_home(home: Path, rust: bool, storage_yaml: str = "", extra: str = "") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((RUST_YAML if rust else "") + storage_yaml + extra)
    return home


def open_instance(home: Path) -> DagsterInstance:
    return DagsterInstance.from_config(str(home))


@dataclass
class PgPair(InstancePair):
    backend: str = "sqlite"
    # The databases (postgres) or homes (sqlite) behind each instance, for raw checks.
    where: dict[str, str] = field(default_factory=dict)

    def same(
        self,
        fn: Callable[[DagsterInstance], Any],
        normalize: Callable[[Any], Any] = lambda v: v,
    ) -> Any:
        """Run `fn` on both; the same normalized value, or the same exception class."""
        a, b = call(fn, self.stock), call(fn, self.rust)
        assert same_class(a.error, b.error), (
            f"[{self.backend}] stock raised {a.error}: {a.message}; dagster-rs raised"
            f" {b.error}: {b.message}"
        )
        if a.error is None:
            assert normalize(a.value) == normalize(b.value), f"[{self.backend}]"
            return b.value
        return b.error


def check_served(instance: Any, backend: str) -> None:
    """What the dagster-rs instance serves on `backend`: every domain in Rust on SQLite; on
    PostgreSQL, the first part's domains in Rust when the core has the backend, else none, each
    listed as stock's (never a Rust domain faked)."""
    assert isinstance(instance, dagster_rs.DagsterInstance)
    if backend == "sqlite":
        assert instance.rust_domains == dagster_rs.IMPLEMENTED
        return
    if postgres.native_backend_missing() is None:
        assert instance.rust_domains == PG_DOMAINS
    else:
        assert instance.rust_domains == frozenset()
        held = instance.info_dict()["dagster_rs"]["held_back"]  # type: ignore[index]
        assert set(held) == set(dagster_rs.DOMAINS)


_TEMPLATES: dict[int, str] = {}


def stock_template(cluster: PgCluster) -> str:
    """A database holding what stock dagster-postgres creates on an empty one (its three
    storages' tables, alembic stamp and data-migration marks), made once per server: each pair's
    databases are copies of it, as cheap as an empty one (`CREATE DATABASE ... TEMPLATE`)."""
    key = id(cluster)
    if key not in _TEMPLATES:
        name = cluster.create_database().split("/")[3].split("?")[0]
        from dagster_postgres import DagsterPostgresStorage

        storage = DagsterPostgresStorage(stock_url(cluster.url(name)))
        for s in (storage.run_storage, storage.event_log_storage, storage.schedule_storage):
            s.dispose()
        _TEMPLATES[key] = name
    return _TEMPLATES[key]


@contextmanager
def open_pair(backend: str, tmp_path: Path, cluster: PgCluster | None) -> Iterator[PgPair]:
    dbs: list[str] = []
    if backend == "sqlite":
        stock = open_instance(write_home(tmp_path / "stock_home", False))
        rust = open_instance(write_home(tmp_path / "rust_home", True))
        where = {"stock": str(tmp_path / "stock_home"), "rust": str(tmp_path / "rust_home")}
    else:
        assert cluster is not None
        urls = {}
        template = stock_template(cluster)
        for kind in ("stock", "rust"):
            url = cluster.create_database(template=template)
            dbs.append(url.split("/")[3].split("?")[0])
            urls[kind] = url
        stock = open_instance(
            write_home(tmp_path / "stock_home", False, postgres_yaml(stock_url(urls["stock"])))
        )
        rust = open_instance(
            write_home(tmp_path / "rust_home", True, postgres_yaml(stock_url(urls["rust"])))
        )
        where = {"stock": dbs[0], "rust": dbs[1]}
    pair = PgPair(stock, rust, backend, where)
    try:
        check_served(rust, backend)
        yield pair
    finally:
        pair.dispose()
        if cluster is not None:
            if cluster.pid is None:
                cluster.start()
            for name in dbs:
                cluster.drop_database(name)
