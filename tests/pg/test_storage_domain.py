"""The storage domain (dynamic partitions, concurrency pools) against stock, on SQLite and on
PostgreSQL: on PostgreSQL the dagster-rs instance's event log storage is stock's
`PostgresEventLogStorage` with the domain's methods served by the native core
(`dagster_rs.storage.postgres_event_log`), its events stock's own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance
from dagster._core.errors import DagsterInvalidInvocationError
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.types.pagination import PaginatedResults
from dagster._utils.concurrency import ConcurrencyClaimStatus, ConcurrencyKeyInfo

from dagster_rs.pg_cluster import PgCluster
from tests.pg.pairs import PgPair, open_instance, postgres_yaml, stock_url, write_home

pytestmark = pytest.mark.needs_native_pg


def _status(s: ConcurrencyClaimStatus) -> tuple[Any, ...]:
    # Timestamps are the server's clock: whether they are set is what both must agree on.
    return (
        s.concurrency_key,
        s.slot_status,
        s.priority,
        s.assigned_timestamp is not None,
        s.enqueued_timestamp is not None,
    )


def _info(i: ConcurrencyKeyInfo) -> tuple[Any, ...]:
    return (
        i.concurrency_key,
        i.slot_count,
        i.limit,
        i.using_default_limit,
        sorted((c.run_id, c.step_key) for c in i.claimed_slots),
        [
            (p.run_id, p.step_key, p.priority, p.assigned_timestamp is not None)
            for p in i.pending_steps
        ],
    )


def _page(p: PaginatedResults[str]) -> tuple[Any, ...]:
    return (list(p.results), p.has_more)


def _page_from(ascending: bool, first: bool) -> Callable[[DagsterInstance], Any]:
    """The first page of `letters`, or the page after it."""

    def read(i: DagsterInstance) -> Any:
        ev = i.event_log_storage
        cursor = (
            None if first else ev.get_paginated_dynamic_partitions("letters", 3, ascending).cursor
        )
        return ev.get_paginated_dynamic_partitions("letters", 3, ascending, cursor=cursor)

    return read


def _claim(
    pool: str, run_id: str, step: str, priority: int | None
) -> Callable[[DagsterInstance], Any]:
    return lambda i: i.event_log_storage.claim_concurrency_slot(pool, run_id, step, priority)


def test_served_natively(pair: PgPair) -> None:
    storage = pair.rust.event_log_storage
    if pair.backend == "postgres":
        from dagster_postgres import PostgresEventLogStorage

        from dagster_rs.storage.postgres_event_log import RustPostgresEventLogStorage

        assert isinstance(storage, PostgresEventLogStorage)
        assert type(storage) is RustPostgresEventLogStorage
        assert "storage" in pair.rust.rust_domains  # type: ignore[attr-defined]
        assert "events" not in pair.rust.rust_domains  # type: ignore[attr-defined]
        held = pair.rust.info_dict()["dagster_rs"]["held_back"]  # type: ignore[index]
        assert "storage" not in held and {"events", "assets", "run_launcher"} <= set(held)
        # The event log's own methods are stock's.
        assert type(storage).store_event is not None
        assert type(storage).get_event_records is PostgresEventLogStorage.get_event_records
        assert type(storage).alembic_version is PostgresEventLogStorage.alembic_version


def test_dynamic_partitions(pair: PgPair) -> None:
    pair.same(lambda i: i.add_dynamic_partitions("letters", ["a", "b", "c"]))
    pair.same(lambda i: i.add_dynamic_partitions("letters", ["c", "d"]))
    pair.same(lambda i: i.add_dynamic_partitions("letters", []))
    pair.same(lambda i: i.add_dynamic_partitions("other", ["x"]))
    pair.same(lambda i: i.get_dynamic_partitions("letters"))
    pair.same(lambda i: i.get_dynamic_partitions("missing"))
    pair.same(lambda i: i.has_dynamic_partition("letters", "b"))
    pair.same(lambda i: i.has_dynamic_partition("letters", "z"))
    pair.same(lambda i: i.has_dynamic_partition("other", "a"))
    storage = lambda i: i.event_log_storage  # noqa: E731
    pair.same(
        lambda i: storage(i).get_existing_dynamic_partitions("letters", ["a", "z", "d"]),
        normalize=set,
    )
    for ascending in (True, False):
        first = pair.same(_page_from(ascending, first=True), normalize=_page)
        assert first is not None
        pair.same(_page_from(ascending, first=False), normalize=_page)
    pair.same(lambda i: i.delete_dynamic_partition("letters", "b"))
    pair.same(lambda i: i.delete_dynamic_partition("letters", "nope"))
    pair.same(lambda i: i.get_dynamic_partitions("letters"))
    pair.same(lambda i: i.add_dynamic_partitions("letters", ["b"]))
    pair.same(lambda i: i.get_dynamic_partitions("letters"))


def test_a_key_given_twice(pair: PgPair) -> None:
    # SQLite (stock's base class): IntegrityError; dagster-postgres: ON CONFLICT DO NOTHING.
    pair.same(lambda i: i.add_dynamic_partitions("p", ["k", "k"]))
    pair.same(lambda i: i.get_dynamic_partitions("p"))


def test_many_partitions(pair: PgPair) -> None:
    keys = [f"key-{n:05d}" for n in range(2500)]
    pair.same(lambda i: i.add_dynamic_partitions("many", keys[:1200]))
    pair.same(lambda i: i.add_dynamic_partitions("many", keys))
    pair.same(lambda i: i.get_dynamic_partitions("many"))
    pair.same(
        lambda i: i.event_log_storage.get_existing_dynamic_partitions("many", keys[::7]),
        normalize=set,
    )


def test_pools(pair: PgPair) -> None:
    ev = lambda i: i.event_log_storage  # noqa: E731
    pair.same(lambda i: ev(i).set_concurrency_slots("pool", 2))
    pair.same(lambda i: ev(i).set_concurrency_slots("other", 1))
    pair.same(lambda i: ev(i).get_concurrency_keys())
    pair.same(
        lambda i: ev(i).get_pool_limits(),
        normalize=lambda v: sorted((p.name, p.limit, p.from_default) for p in v),
    )
    for step, priority in (("a", 0), ("b", 5), ("c", None), ("d", 10)):
        pair.same(_claim("pool", "run1", step, priority), normalize=_status)
    pair.same(lambda i: ev(i).get_concurrency_info("pool"), normalize=_info)
    pair.same(lambda i: ev(i).check_concurrency_claim("pool", "run1", "c"), normalize=_status)
    pair.same(lambda i: ev(i).get_concurrency_run_ids())
    # The next waiting step by priority (d: 10) gets the freed place.
    pair.same(lambda i: ev(i).free_concurrency_slot_for_step("run1", "a"))
    pair.same(lambda i: ev(i).get_concurrency_info("pool"), normalize=_info)
    pair.same(lambda i: ev(i).claim_concurrency_slot("pool", "run1", "d", 10), normalize=_status)
    pair.same(lambda i: ev(i).claim_concurrency_slot("pool", "run1", "c"), normalize=_status)
    # Shrinking with held slots; growing assigns waiting steps.
    pair.same(lambda i: ev(i).set_concurrency_slots("pool", 1))
    pair.same(lambda i: ev(i).get_concurrency_info("pool"), normalize=_info)
    pair.same(lambda i: ev(i).set_concurrency_slots("pool", 4))
    pair.same(lambda i: ev(i).get_concurrency_info("pool"), normalize=_info)
    pair.same(lambda i: ev(i).free_concurrency_slots_for_run("run1"))
    pair.same(lambda i: ev(i).get_concurrency_info("pool"), normalize=_info)
    pair.same(lambda i: ev(i).get_concurrency_run_ids())
    pair.same(lambda i: ev(i).delete_concurrency_limit("other"))
    pair.same(lambda i: ev(i).get_concurrency_keys())
    pair.same(
        lambda i: {k: _info(v) for k, v in ev(i).get_concurrency_infos(["pool", "other"]).items()}
    )


def test_default_limit(pair: PgPair) -> None:
    ev = lambda i: i.event_log_storage  # noqa: E731
    pair.same(lambda i: ev(i).initialize_concurrency_limit_to_default("fresh"))
    pair.same(lambda i: ev(i).get_concurrency_info("fresh"), normalize=_info)
    pair.same(lambda i: ev(i).get_concurrency_info("unknown"), normalize=_info)


def test_bad_input_raises_stocks_classes(pair: PgPair) -> None:
    ev = lambda i: i.event_log_storage  # noqa: E731
    err = pair.same(lambda i: ev(i).set_concurrency_slots("pool", -1))
    assert err is DagsterInvalidInvocationError
    err = pair.same(lambda i: ev(i).set_concurrency_slots("pool", 10_000_000))
    assert err is DagsterInvalidInvocationError
    pair.same(lambda i: ev(i).set_concurrency_slots("pool", 1.5))
    pair.same(lambda i: ev(i).set_concurrency_slots(None, 1))
    pair.same(lambda i: i.add_dynamic_partitions("p", 5))  # type: ignore[arg-type]
    pair.same(lambda i: i.add_dynamic_partitions("p", None))  # type: ignore[arg-type]
    pair.same(lambda i: i.get_dynamic_partitions("p"))
    # Keys stock checks no type of: stored as each driver stores them.
    for keys in ([1], [2.5], [True], [b"ab"], ["nul\x00"], [None]):
        pair.same(lambda i, k=keys: i.add_dynamic_partitions("q", k))  # type: ignore[misc]
        pair.same(lambda i: i.get_dynamic_partitions("q"))


def _ended(run_id: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=20,
        user_message="",
        run_id=run_id,
        timestamp=datetime.now().timestamp(),
        step_key=None,
        job_name="job",
        dagster_event=DagsterEvent(DagsterEventType.PIPELINE_FAILURE.value, "job"),
    )


def test_a_run_that_ends_frees_its_slots(pair: PgPair) -> None:
    # Both instances run their own event log storage's store_event; dagster-rs's frees the run's
    # slots when the run's end is stored (ARCHITECTURE.md "storage", a difference on purpose).
    rust = pair.rust.event_log_storage
    rust.set_concurrency_slots("pool", 1)
    assert rust.claim_concurrency_slot("pool", "ends", "s").slot_status.name == "CLAIMED"
    rust.claim_concurrency_slot("pool", "waits", "s")
    rust.store_event(_ended("ends"))
    info = rust.get_concurrency_info("pool")
    assert info.claimed_slots == []
    assert [p.run_id for p in info.pending_steps] == ["waits"]
    assert info.pending_steps[0].assigned_timestamp is not None
    assert rust.get_logs_for_run("ends")[0].run_id == "ends"


def _write(inst: DagsterInstance, side: str) -> None:
    ev = inst.event_log_storage
    inst.add_dynamic_partitions(f"def_{side}", [f"{side}{n}" for n in range(5)])
    inst.add_dynamic_partitions("both", [f"{side}{n}" for n in range(3)])
    ev.set_concurrency_slots(f"pool_{side}", 2)
    ev.set_concurrency_slots("shared", 1)
    ev.claim_concurrency_slot("shared", f"run_{side}", "s1", 3)
    ev.claim_concurrency_slot(f"pool_{side}", f"run_{side}", "s1")
    ev.claim_concurrency_slot(f"pool_{side}", f"run_{side}", "s2")
    ev.claim_concurrency_slot(f"pool_{side}", f"run_{side}", "s3")


READS: list[Callable[[DagsterInstance], Any]] = [
    lambda i: i.get_dynamic_partitions("def_stock"),
    lambda i: i.get_dynamic_partitions("def_rust"),
    lambda i: i.get_dynamic_partitions("both"),
    lambda i: i.has_dynamic_partition("both", "rust1"),
    lambda i: _page(i.event_log_storage.get_paginated_dynamic_partitions("both", 2, False)),
    lambda i: sorted(i.event_log_storage.get_concurrency_keys()),
    lambda i: sorted(
        (p.name, p.limit, p.from_default) for p in i.event_log_storage.get_pool_limits()
    ),
    lambda i: {
        k: _info(v)
        for k, v in i.event_log_storage.get_concurrency_infos(
            ["shared", "pool_stock", "pool_rust"]
        ).items()
    },
    lambda i: sorted(i.event_log_storage.get_concurrency_run_ids()),
    lambda i: _status(i.event_log_storage.check_concurrency_claim("shared", "run_rust", "s1")),
    lambda i: _status(i.event_log_storage.check_concurrency_claim("pool_stock", "run_stock", "s3")),
]


def test_both_ways(shared: tuple[str, DagsterInstance, DagsterInstance]) -> None:
    _, stock, rust = shared
    _write(stock, "stock")
    for read in READS:
        assert read(rust) == read(stock)
    _write(rust, "rust")
    for read in READS:
        assert read(rust) == read(stock)
    # Frees by one are seen by the other, and the freed places pass to the waiting steps.
    rust.event_log_storage.free_concurrency_slots_for_run("run_stock")
    for read in READS:
        assert read(rust) == read(stock)
    stock.event_log_storage.free_concurrency_slots_for_run("run_rust")
    for read in READS:
        assert read(rust) == read(stock)
    rust.delete_dynamic_partition("both", "stock0")
    stock.delete_dynamic_partition("both", "rust0")
    for read in READS:
        assert read(rust) == read(stock)


@pytest.mark.parametrize(
    "domains", ["none", "[runs, config, scheduling]", "[runs, config, scheduling, events]"]
)
def test_switched_off_is_stock(
    domains: str, pg_cluster: PgCluster, pg_db: str, tmp_path: Path
) -> None:
    from dagster_postgres import PostgresEventLogStorage

    storage = postgres_yaml(stock_url(pg_cluster.url(pg_db)))
    inst = open_instance(write_home(tmp_path / "home", True, storage, f"rust_domains: {domains}\n"))
    try:
        assert type(inst.event_log_storage) is PostgresEventLogStorage
        assert "storage" not in inst.rust_domains  # type: ignore[attr-defined]
        inst.add_dynamic_partitions("p", ["a"])
        assert inst.get_dynamic_partitions("p") == ["a"]
    finally:
        inst.dispose()


def test_no_statement_of_stocks_engine(pg_cluster: PgCluster, pg_db: str, tmp_path: Path) -> None:
    # Every method of the domain runs on the native core: stock's connections refused.
    home = write_home(tmp_path / "home", True, postgres_yaml(stock_url(pg_cluster.url(pg_db))))
    inst = open_instance(home)
    ev: Any = inst.event_log_storage

    def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError("stock's engine used")

    try:
        for name in ("_connect", "index_connection", "run_connection", "index_transaction"):
            setattr(ev, name, refused)
        ev.add_dynamic_partitions("p", ["a", "b"])
        assert ev.get_dynamic_partitions("p") == ["a", "b"]
        assert ev.has_dynamic_partition("p", "a")
        assert ev.get_existing_dynamic_partitions("p", ["a", "z"]) == {"a"}
        assert ev.get_paginated_dynamic_partitions("p", 1, True).results == ["a"]
        ev.delete_dynamic_partition("p", "a")
        ev.set_concurrency_slots("pool", 1)
        assert ev.get_concurrency_keys() == {"pool"}
        assert [p.name for p in ev.get_pool_limits()] == ["pool"]
        assert ev.claim_concurrency_slot("pool", "r", "s").slot_status.name == "CLAIMED"
        assert ev.claim_concurrency_slot("pool", "r2", "s").slot_status.name == "BLOCKED"
        assert ev.check_concurrency_claim("pool", "r", "s").slot_status.name == "CLAIMED"
        assert ev.get_concurrency_run_ids() == {"r", "r2"}
        info = ev.get_concurrency_info("pool")
        assert [(c.run_id, c.step_key) for c in info.claimed_slots] == [("r", "s")]
        ev.free_concurrency_slots_for_run("r")
        assert ev.claim_concurrency_slot("pool", "r2", "s").slot_status.name == "CLAIMED"
        ev.free_concurrency_slot_for_step("r2", "s")
        ev.delete_concurrency_limit("pool")
        assert ev.initialize_concurrency_limit_to_default("other") is True
    finally:
        inst.dispose()


def test_optimize_for_webserver(pg_cluster: PgCluster, pg_db: str, tmp_path: Path) -> None:
    home = write_home(tmp_path / "home", True, postgres_yaml(stock_url(pg_cluster.url(pg_db))))
    inst = open_instance(home)
    try:
        inst.optimize_for_webserver(statement_timeout=2000, pool_recycle=-1, max_overflow=20)
        ev: Any = inst.event_log_storage
        assert "statement_timeout" in ev._native_core.storage.location  # noqa: SLF001
        ev.set_concurrency_slots("pool", 1)
        assert ev.claim_concurrency_slot("pool", "r", "s").slot_status.name == "CLAIMED"
        # Stock's engine, for the events, got stock's set-up.
        assert ev.get_logs_for_run("r") == []
    finally:
        inst.dispose()
