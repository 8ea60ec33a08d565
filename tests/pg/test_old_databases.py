"""Databases in the wild: dagster-postgres databases that are not what stock creates today, and
what dagster-rs does with each, against stock on the same database and on a copy.

- int4 ids, from before stock's bigint migration (`dagster._core.storage.migration.
  bigint_migration`, not an alembic revision: `ALTER TABLE <t> ALTER COLUMN id TYPE BIGINT`),
  and the migration itself run while a dagster-rs instance is open;
- the `run_tags` layout after migration 047 (unique `idx_run_tags_run_id (key, value, run_id)`,
  no `idx_run_tags`), made with stock's own migration DDL;
- an older alembic revision lacking nothing (served) and one lacking columns (refused up front
  naming `dagster instance migrate`; the domains left to stock and listed as held back; nothing
  changed in the database; served once stock's migrate has run);
- a server whose TimeZone is not UTC (dagster-rs's sessions are UTC; stock's are the server's);
- `should_autocreate_tables: false` on an empty database (stock creates nothing; neither do we).

Each: stock writes and dagster-rs reads, and the reverse, on one database (`_both_ways`); the same
operations on two copies agree (`PgPair.same`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import RunsFilter
from dagster._daemon.types import DaemonHeartbeat

from dagster_rs.pg_cluster import PgCluster
from tests.pg.pairs import (
    PG_DOMAINS,
    PgPair,
    check_served,
    open_instance,
    postgres_yaml,
    stock_template,
    stock_url,
    write_home,
)
from tests.pg.test_interchange import READS, _write
from tests.runs.helpers import at, ids, make_run
from tests.scheduling.conftest import state, tick, ticks_view

pytestmark = pytest.mark.needs_native_pg

# Tables whose id stock's bigint migration widens (run, schedule and event-log storages).
INT4_TABLES = (
    "runs",
    "secondary_indexes",
    "run_tags",
    "snapshots",
    "bulk_actions",
    "jobs",
    "instigators",
    "job_ticks",
    "event_logs",
    "asset_keys",
    "dynamic_partitions",
)

# Migration 047's own DDL (alembic versions/047_add_run_tags_run_id_idx.py, upgrade()).
MIGRATION_047 = (
    'CREATE UNIQUE INDEX CONCURRENTLY idx_run_tags_run_id ON run_tags ("key", value, run_id)',
    "DROP INDEX CONCURRENTLY idx_run_tags",
)

# The domains of the run storage (what a runs table lacking a column holds back).
RUN_DOMAINS = frozenset({"runs", "config"})

# Revision 044 (63d7a8ec641a) adds runs.backfill_id; its predecessor lacks it, and 046's
# bulk_actions.job_name and backfill_tags.
BEFORE_044 = "284a732df317"
# Revision 046 (16e3655b4d9b): older than the head, lacking nothing the code needs.
AT_046 = "16e3655b4d9b"


def _name(url: str) -> str:
    return url.split("/")[3].split("?")[0]


def prepared(cluster: PgCluster, statements: list[str] | tuple[str, ...]) -> str:
    """A database made by stock dagster-postgres and then changed by `statements` (one psql
    call each: CONCURRENTLY runs outside a transaction); returns its name."""
    name = _name(cluster.create_database(template=stock_template(cluster)))
    for sql in statements:
        cluster.psql(sql, name)
    return name


def int4_ddl() -> list[str]:
    """Stock's bigint migration backwards: every widened id (and its sequence) back to int4."""
    out = []
    for table in INT4_TABLES:
        out.append(f"ALTER TABLE {table} ALTER COLUMN id TYPE INTEGER")
        out.append(f"ALTER SEQUENCE {table}_id_seq AS INTEGER")
    return out


def before_044_ddl() -> list[str]:
    return [
        "ALTER TABLE runs DROP COLUMN backfill_id",
        "ALTER TABLE bulk_actions DROP COLUMN job_name",
        "DROP TABLE backfill_tags",
        f"UPDATE alembic_version SET version_num = '{BEFORE_044}'",
    ]


def id_types(cluster: PgCluster, db: str) -> dict[str, str]:
    rows = cluster.psql(
        "SELECT table_name, data_type FROM information_schema.columns"
        " WHERE column_name = 'id' AND table_schema = 'public'",
        db,
    )
    return dict(line.split("|") for line in rows.split())


def schema_of(cluster: PgCluster, db: str) -> str:
    """Tables, columns, indexes and the alembic revision: what "nothing changed" compares."""
    return cluster.psql(
        "SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
        " SELECT table_name || '.' || column_name || ':' || data_type AS x"
        "  FROM information_schema.columns WHERE table_schema = 'public'"
        " UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " UNION ALL SELECT 'rev ' || version_num FROM alembic_version"
        " UNION ALL SELECT 'marks ' || count(*) FROM secondary_indexes) s",
        db,
    )


@contextmanager
def shared(
    cluster: PgCluster, db: str, tmp_path: Path, extra: str = ""
) -> Iterator[tuple[DagsterInstance, DagsterInstance]]:
    """A stock and a dagster-rs instance on the one database `db`."""
    text = postgres_yaml(stock_url(cluster.url(db))) + extra
    stock = open_instance(write_home(tmp_path / "shared_stock", False, text))
    rust = open_instance(write_home(tmp_path / "shared_rust", True, text))
    try:
        yield stock, rust
    finally:
        stock.dispose()
        rust.dispose()


@contextmanager
def copies(cluster: PgCluster, template: str, tmp_path: Path) -> Iterator[PgPair]:
    """Stock on one copy of `template`, dagster-rs on another."""
    names = [_name(cluster.create_database(template=template)) for _ in range(2)]
    insts = [
        open_instance(
            write_home(
                tmp_path / f"copy_{kind}", kind == "rust", postgres_yaml(stock_url(cluster.url(n)))
            )
        )
        for kind, n in zip(("stock", "rust"), names, strict=True)
    ]
    pair = PgPair(insts[0], insts[1], "postgres", {"stock": names[0], "rust": names[1]})
    try:
        yield pair
    finally:
        pair.dispose()
        for n in names:
            cluster.drop_database(n)


def _dated_reads() -> list[Callable[[DagsterInstance], Any]]:
    """Reads whose answer depends on the stored creation times (`_write` chose them)."""
    return [
        lambda i: ids(i.get_runs(RunsFilter(created_before=at(2.5)))),
        lambda i: ids(i.get_runs(RunsFilter(created_after=at(101.5)))),
        lambda i: [r.create_timestamp for r in i.get_run_records()],
    ]


def both_ways(stock: DagsterInstance, rust: DagsterInstance) -> None:
    """Stock writes, dagster-rs reads as stock reads; then the reverse."""
    _write(stock, 0)
    for read in [*READS, *_dated_reads()]:
        assert read(rust) == read(stock)
    _write(rust, 100)
    for read in [*READS, *_dated_reads()]:
        assert read(stock) == read(rust)
    assert len(stock.get_runs()) == 10
    # A run stock writes after dagster-rs wrote (its sequence moved on by dagster-rs's insert).
    stock.add_run(make_run(500, tags={"after": "rust"}))
    rust.add_run(make_run(501, tags={"after": "stock"}))
    for read in READS:
        assert read(stock) == read(rust)
    storage_ids = [r.storage_id for r in rust.get_run_records()]
    assert len(set(storage_ids)) == 12


def same_ops(pair: PgPair) -> None:
    """The same writes on two copies, then every read compared (`pair.same`)."""
    pair.same(lambda i: _write(i, 0))
    pair.same(lambda i: i.add_run(make_run(7, tags={"k": "v"})))
    pair.same(lambda i: i.add_run_tags(make_run(7).run_id, {"k": "w", "k2": "x"}))
    pair.same(lambda i: i.add_daemon_heartbeat(DaemonHeartbeat(5.0, "SENSOR", "x", None)))
    pair.same(lambda i: i.run_storage.set_cursor_values({"c1": "1", "c0": "9"}))
    st = state("sensor_extra")
    pair.same(lambda i: i.schedule_storage.add_instigator_state(st))  # type: ignore[union-attr]
    pair.same(lambda i: i.schedule_storage.create_tick(tick(st, 9.0)).tick_id)  # type: ignore[union-attr]
    for read in READS[:-1]:  # the last is the storage id, each copy's own
        pair.same(read)
    pair.same(lambda i: ids(i.get_runs(RunsFilter(tags={"k": "w"}))))
    pair.same(lambda i: i.get_runs_count(RunsFilter(tags={"side": "0"})))
    pair.same(lambda i: sorted(i.get_run_tags(["k", "k2", "n"])))
    pair.same(
        lambda i: ticks_view(i.schedule_storage.get_ticks(st.instigator_origin_id, st.selector_id))
    )  # type: ignore[union-attr]


# -- int4 ids ------------------------------------------------------------------------------------


def test_int4_ids_both_ways_and_stocks_bigint_migration_meanwhile(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    from dagster._core.storage.migration.bigint_migration import run_bigint_migration

    db = prepared(pg_cluster, int4_ddl())
    assert {id_types(pg_cluster, db)[t] for t in INT4_TABLES} == {"integer"}
    try:
        with copies(pg_cluster, db, tmp_path) as pair:
            same_ops(pair)
        with shared(pg_cluster, db, tmp_path) as (stock, rust):
            check_served(rust, "postgres")
            both_ways(stock, rust)
            # The user runs stock's bigint migration while dagster-rs holds its sessions (and
            # their prepared statements, whose result types change under them).
            run_bigint_migration(stock, print_fn=lambda *_: None)
            assert {id_types(pg_cluster, db)[t] for t in INT4_TABLES} == {"bigint"}
            for read in READS:
                assert read(rust) == read(stock)
            rust.add_run(make_run(600))
            stock.add_run(make_run(601))
            for read in READS:
                assert read(rust) == read(stock)
            assert rust.get_runs_count() == 14
    finally:
        pg_cluster.drop_database(db)


# -- run_tags after migration 047 ----------------------------------------------------------------


def test_run_tags_layout_of_migration_047(pg_cluster: PgCluster, tmp_path: Path) -> None:
    db = prepared(pg_cluster, MIGRATION_047)
    indexes = pg_cluster.psql(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'run_tags' ORDER BY 1", db
    ).split()
    assert "idx_run_tags_run_id" in indexes and "idx_run_tags" not in indexes
    try:
        with copies(pg_cluster, db, tmp_path) as pair:
            same_ops(pair)
            # The unique (key, value, run_id) index: a tag re-set to the value it has.
            pair.same(lambda i: i.add_run_tags(make_run(7).run_id, {"k": "w"}))
            pair.same(lambda i: sorted(i.get_run_tags(["k"])))
        with shared(pg_cluster, db, tmp_path) as (stock, rust):
            check_served(rust, "postgres")
            both_ways(stock, rust)
        after = schema_of(pg_cluster, db)
        assert "CREATE UNIQUE INDEX idx_run_tags_run_id ON" in after
        assert "INDEX idx_run_tags ON" not in after
    finally:
        pg_cluster.drop_database(db)


# -- older alembic revisions ---------------------------------------------------------------------


def test_older_revision_lacking_nothing_is_served(pg_cluster: PgCluster, tmp_path: Path) -> None:
    db = prepared(pg_cluster, [f"UPDATE alembic_version SET version_num = '{AT_046}'"])
    before = schema_of(pg_cluster, db)
    try:
        with copies(pg_cluster, db, tmp_path) as pair:
            same_ops(pair)
        with shared(pg_cluster, db, tmp_path) as (stock, rust):
            check_served(rust, "postgres")
            both_ways(stock, rust)
        # Served as it is: no stamp moved, nothing created.
        assert schema_of(pg_cluster, db) == before
    finally:
        pg_cluster.drop_database(db)


def test_older_revision_lacking_columns_is_refused_then_served_after_migrate(
    pg_cluster: PgCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = prepared(pg_cluster, before_044_ddl())
    before = schema_of(pg_cluster, db)
    try:
        with shared(pg_cluster, db, tmp_path) as (stock, rust):
            # Refused up front: the run storage's domains stock's, held back with the reason;
            # the schedule storage and the event log (storage domain) lack nothing and are served.
            assert rust.rust_domains == frozenset({"scheduling", "storage"})
            held = rust.info_dict()["dagster_rs"]["held_back"]  # type: ignore[index]
            assert RUN_DOMAINS <= set(held)
            reasons = " ".join(str(held[d]) for d in RUN_DOMAINS)
            assert "dagster instance migrate" in reasons
            assert "backfill_id" in reasons
            assert schema_of(pg_cluster, db) == before
            # Stock's code serves it (both sides), both ways.
            both_ways(stock, rust)
            # Stock's `dagster instance migrate`.
            stock.upgrade()
        after = schema_of(pg_cluster, db)
        assert "runs.backfill_id" in after and f"rev {BEFORE_044}" not in after
        with shared(pg_cluster, db, tmp_path / "again") as (stock, rust):
            check_served(rust, "postgres")
            for read in READS:
                assert read(rust) == read(stock)
            rust.add_run(make_run(700, backfill_id="bf0"))
            assert ids(stock.get_runs(RunsFilter(tags={"dagster/backfill": "bf0"}))) == ids(
                rust.get_runs(RunsFilter(tags={"dagster/backfill": "bf0"}))
            )
    finally:
        pg_cluster.drop_database(db)


def test_refusal_with_a_pair_on_copies(pg_cluster: PgCluster, tmp_path: Path) -> None:
    db = prepared(pg_cluster, before_044_ddl())
    try:
        with copies(pg_cluster, db, tmp_path) as pair:
            assert pair.rust.rust_domains == frozenset({"scheduling", "storage"})
            same_ops(pair)
            assert schema_of(pg_cluster, pair.where["rust"]) == schema_of(
                pg_cluster, pair.where["stock"]
            )
    finally:
        pg_cluster.drop_database(db)


# -- a server whose TimeZone is not UTC ----------------------------------------------------------


@pytest.fixture(scope="module")
def ny_cluster() -> Iterator[PgCluster]:
    from tests.pg_cluster import _require

    _require()
    cluster = PgCluster(settings={"timezone": "America/New_York"})
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_server_timezone_not_utc(ny_cluster: PgCluster, tmp_path: Path) -> None:
    assert ny_cluster.psql("SHOW TimeZone").strip() == "America/New_York"
    db = _name(ny_cluster.create_database(template=stock_template(ny_cluster)))
    try:
        with shared(ny_cluster, db, tmp_path) as (stock, rust):
            check_served(rust, "postgres")
            both_ways(stock, rust)
            # What dagster-rs stores is naive UTC whatever the server's zone: the creation
            # times it was given, and "now" where the column's default (CURRENT_TIMESTAMP) or
            # the store picks it.
            stored = ny_cluster.psql(
                "SELECT run_id, create_timestamp FROM runs ORDER BY id", db
            ).split("\n")
            by_run = dict(line.split("|") for line in stored if line)
            assert by_run[make_run(100).run_id] == "2024-01-01 01:40:00"
            fresh = by_run[make_run(501).run_id]
            now = datetime.now(timezone.utc).replace(tzinfo=None)
            assert abs(datetime.fromisoformat(fresh) - now) < timedelta(minutes=5)
            rec = rust.get_run_record_by_id(make_run(501).run_id)
            assert rec is not None and abs(
                rec.create_timestamp - datetime.now(timezone.utc)
            ) < timedelta(minutes=5)
    finally:
        ny_cluster.drop_database(db)


# -- should_autocreate_tables: false -------------------------------------------------------------


def test_no_autocreate_on_an_empty_database(
    pg_cluster: PgCluster, pg_db: str, tmp_path: Path
) -> None:
    extra_yaml = "    should_autocreate_tables: false\n"
    text = postgres_yaml(stock_url(pg_cluster.url(pg_db))) + extra_yaml
    stock = open_instance(write_home(tmp_path / "noauto_stock", False, text))
    rust = open_instance(write_home(tmp_path / "noauto_rust", True, text))
    pair = PgPair(stock, rust, "postgres", {"stock": pg_db, "rust": pg_db})
    try:
        # Stock creates nothing; dagster-rs neither.
        assert (
            pg_cluster.psql(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", pg_db
            ).strip()
            == "0"
        )
        pair.same(lambda i: i.get_runs_count())
        pair.same(lambda i: i.add_run(make_run(1)))
        pair.same(lambda i: list(i.all_instigator_state()))
        pair.same(lambda i: dict(i.get_daemon_heartbeats()))
        assert (
            pg_cluster.psql(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", pg_db
            ).strip()
            == "0"
        )
        held = rust.info_dict()["dagster_rs"]["held_back"]  # type: ignore[index]
        assert PG_DOMAINS <= set(held)
        assert "should_autocreate_tables" in str(held["runs"])
    finally:
        pair.dispose()
    # Once stock has made the tables, the same configuration is served natively.
    open_instance(
        write_home(tmp_path / "creator", False, postgres_yaml(stock_url(pg_cluster.url(pg_db))))
    ).dispose()
    with shared(pg_cluster, pg_db, tmp_path / "made", extra_yaml) as (stock, rust):
        check_served(rust, "postgres")
        # The composed storages say what the configuration says, as stock's do.
        for inst in (stock, rust):
            assert inst.run_storage.should_autocreate_tables is False
            assert inst.schedule_storage.should_autocreate_tables is False
        both_ways(stock, rust)
