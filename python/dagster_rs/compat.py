"""Which Dagster releases dagster-rs serves in Rust, and what the installed one does.

The native domains read and write Dagster's own files, so they are only as right as the Dagster
they were checked against: the package depends on `TESTED_RANGE`, the suite runs on the newest
release of it and a CI job on the oldest. A process that nevertheless runs another Dagster (an
install with `--no-deps`, a newer release than this package knows) keeps working: the instance
serves every domain with stock's code on stock's files and says so once.

Within the range, releases differ in a few storage behaviours (ARCHITECTURE.md, "Releases of the
range", lists them with the release that changed each). dagster-rs follows the installed stock
in each: the probes below ask stock's own code what it does (never its version number), and the
storages branch on the answer, or leave a method to stock's code (`leave_to_stock`, listed in
`LEFT_TO_STOCK`). Methods stock does not have are removed (`only_what_stock_has`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

# Keep in step with pyproject.toml's `dependencies`.
TESTED_RANGE = ">=1.13,<1.14"
# The range's oldest release, which CI's second virtualenv runs the storage tests on
# (scripts/test.sh); the suite itself runs on constraints.txt's pin, the newest.
OLDEST_TESTED = "1.13.0"


def installed_dagster() -> str:
    import dagster

    return str(dagster.__version__)


@functools.cache
def dagster_in_range(version: str | None = None) -> bool:
    """True when `version` (default: the installed Dagster) is in `TESTED_RANGE`. A version
    that does not parse (a source checkout's "1!0+dev") is outside it."""
    text = installed_dagster() if version is None else version
    try:
        parsed = Version(text)
    except InvalidVersion:
        return False
    return SpecifierSet(TESTED_RANGE).contains(parsed, prereleases=True)


def only_what_stock_has(cls: type, stock: type, names: tuple[str, ...]) -> None:
    """Removes from `cls` each method of `names` that `stock` (the installed Dagster's class it
    stands for) lacks: the range's earlier releases predate some storage methods, and a storage
    must not answer where stock's would raise `AttributeError`."""
    for name in names:
        if not hasattr(stock, name) and name in vars(cls):
            delattr(cls, name)


def only_parameters_stock_has(cls: type, stock: type, names: tuple[str, ...]) -> None:
    """Where the installed stock's method of `names` lacks parameters `cls`'s has (they came
    later in the range), puts in `cls`'s place a method with stock's parameters: a call stock
    refuses with `TypeError` (an unknown keyword, one positional too many) is refused the same
    way, and every other call is served by `cls`'s method. Stock's parameters must be a
    subsequence of `cls`'s, under the same names."""
    for name in names:
        ours = vars(cls).get(name)
        theirs = getattr(stock, name, None)
        if ours is None or theirs is None:
            continue
        ours_signature, stock_signature = inspect.signature(ours), inspect.signature(theirs)
        if list(stock_signature.parameters) == list(ours_signature.parameters):
            continue
        positions = list(ours_signature.parameters)
        order = [positions.index(p) for p in stock_signature.parameters if p in positions]
        if len(order) != len(stock_signature.parameters) or order != sorted(order):
            raise TypeError(f"{cls.__name__}.{name} does not take stock's parameters")
        setattr(cls, name, _narrowed(ours, stock_signature))


def _narrowed(method: Callable[..., Any], signature: inspect.Signature) -> Callable[..., Any]:
    @functools.wraps(method)
    def narrowed(*args: Any, **kwargs: Any) -> Any:
        signature.bind(*args, **kwargs)  # the TypeError stock's own call raises
        return method(*args, **kwargs)

    narrowed.__signature__ = signature  # type: ignore[attr-defined]
    return narrowed


# `Class.method` -> why stock's code serves it in this process (the installed stock behaves in a
# way the native method does not follow). Empty on the releases the native code follows fully.
LEFT_TO_STOCK: dict[str, str] = {}


def left_to_stock() -> dict[str, str]:
    """`LEFT_TO_STOCK` once every storage module has decided (they do on import)."""
    import dagster_rs.storage.swaps  # noqa: F401 - imports every storage module

    return dict(LEFT_TO_STOCK)


def leave_to_stock(cls: type, names: tuple[str, ...], because: str) -> None:
    """Removes `names` from `cls` (a domain mixin placed before stock's class in the MRO), so
    stock's own methods serve them, over the core's connections, and lists them."""
    for name in names:
        if name in vars(cls):
            delattr(cls, name)
            LEFT_TO_STOCK[f"{cls.__name__}.{name}"] = because


def _code_names(function: Callable[..., Any]) -> tuple[str, ...]:
    """The global and attribute names `function`'s own code refers to."""
    return inspect.unwrap(function).__code__.co_names


# -- what the installed stock does (each probe asks stock's code, not its version) -------------


@functools.cache
def stock_tags_failure_in_status_update() -> bool:
    """Whether stock's `handle_run_event` writes a failure's `dagster/failure_reason` tag in the
    status update itself (1.13.7 on), so the row's `update_timestamp` is the event's time. Before,
    it called `add_run_tags` afterwards, which stamps the row with the wall clock."""
    from dagster._core.storage.runs.sql_run_storage import SqlRunStorage

    return "add_run_tags" not in _code_names(SqlRunStorage.handle_run_event)


@functools.cache
def stock_wipe_clears_last_materialization() -> bool:
    """Whether stock's `wipe_asset` sets `asset_keys.last_materialization` to NULL (1.13.10 on).
    Before, the row kept the pre-wipe record. Asked of stock's `_get_asset_key_values_on_wipe`."""
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    class _Columns:
        def has_asset_key_index_cols(self) -> bool:
            return False

        def can_read_asset_status_cache(self) -> bool:
            return False

    values = SqlEventLogStorage._get_asset_key_values_on_wipe(_Columns())  # type: ignore[arg-type]
    return "last_materialization" in values


@functools.cache
def stock_skips_records_older_than_wipe() -> bool:
    """Whether stock's latest-materialization read passes over a stored record older than the
    asset's latest wipe and filters the event log by the wipe (1.13.10 on). Before, a stored
    record was returned as it is, and the event log read had no wipe filter."""
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    return "_add_assets_wipe_filter_to_query" in _code_names(
        SqlEventLogStorage._get_latest_materialization_records
    )


@functools.cache
def stock_pages_partitions_one_past() -> bool:
    """Whether stock's `get_paginated_dynamic_partitions` reads one row past the page to tell
    whether there is more (1.13.26 on). Before, it read `limit` rows and said `has_more` when it
    got exactly `limit` (a full last page reports a next one; a negative limit reads all).
    Asked of stock's method, on one stored partition in a private in-memory database."""
    import sqlalchemy as db
    from dagster._core.storage.event_log.schema import DynamicPartitionsTable
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
    from dagster._time import get_current_datetime

    engine = db.create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            DynamicPartitionsTable.create(conn)
            conn.execute(
                DynamicPartitionsTable.insert().values(
                    partitions_def_name="probe",
                    partition="p",
                    create_timestamp=get_current_datetime(),
                )
            )

        class _OnePartition:
            def _check_partitions_table(self) -> None:
                pass

            @contextmanager
            def index_connection(self) -> Iterator[Any]:
                with engine.connect() as conn:
                    yield conn

        page = SqlEventLogStorage.get_paginated_dynamic_partitions(
            _OnePartition(),  # type: ignore[arg-type]
            "probe",
            limit=1,
            ascending=True,
        )
    finally:
        engine.dispose()
    return not page.has_more


def out_of_range_message(version: str | None = None) -> str:
    text = installed_dagster() if version is None else version
    return (
        f"dagster-rs is tested with dagster{TESTED_RANGE}; this process runs dagster {text}, so"
        " every domain is served by stock Dagster's code (on the same files). Install a"
        " dagster-rs release made for this Dagster to serve them from Rust."
    )


__all__ = [
    "LEFT_TO_STOCK",
    "OLDEST_TESTED",
    "TESTED_RANGE",
    "dagster_in_range",
    "installed_dagster",
    "leave_to_stock",
    "left_to_stock",
    "only_parameters_stock_has",
    "only_what_stock_has",
    "out_of_range_message",
    "stock_pages_partitions_one_past",
    "stock_skips_records_older_than_wipe",
    "stock_tags_failure_in_status_update",
    "stock_wipe_clears_last_materialization",
]
