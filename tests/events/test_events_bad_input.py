"""Bad input to the event log: values that are not events, events that cannot be serialized, and
run ids that would name a file outside the event log's directory.

Wrong values must fail with the exception class stock Dagster raises (code written against stock
catches them); run ids with path characters must be refused clearly, with nothing written outside
`history/runs`; and in every case what was stored before must still be there.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance
from dagster._core.errors import DagsterError
from dagster._core.events import (
    DagsterEventType,
    StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry
from dagster_shared.serdes.errors import SerializationError

from dagster_rs.storage.event_log_storage import RustEventLogStorage
from tests.conftest import InstancePair, call, load_instance, make_instance, write_home
from tests.events.helpers import engine_entry, materialization_entry

SEED_RUN = "seed-run"
SEED_MESSAGES = ["seed-0", "seed-1", "seed-2", "seed-materialization"]
ASSET = AssetKey(["bad_input", "asset"])


def entry(run_id: str, message: str = "m") -> EventLogEntry:
    return engine_entry(run_id, message, job_name="bad_input_job")


def materialization(run_id: str, message: str) -> EventLogEntry:
    return materialization_entry(run_id, message, ASSET, job_name="bad_input_job")


def seed(inst: DagsterInstance) -> None:
    storage = inst.event_log_storage
    storage.store_event_batch([entry(SEED_RUN, m) for m in SEED_MESSAGES[:3]])
    storage.store_event(materialization(SEED_RUN, SEED_MESSAGES[3]))


def assert_seed_intact(inst: DagsterInstance) -> None:
    records = inst.get_records_for_run(SEED_RUN).records
    assert [r.event_log_entry.dagster_event.message for r in records] == SEED_MESSAGES
    latest = inst.get_latest_materialization_event(ASSET)
    assert latest is not None and latest.dagster_event.message == "seed-materialization"
    assert len(inst.fetch_materializations(ASSET, limit=10).records) == 1


@pytest.fixture(scope="module")
def seeded_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstancePair]:
    """A stock and a dagster-rs instance holding the same seed events (shared, for speed)."""
    base = tmp_path_factory.mktemp("events_bad_input")
    p = InstancePair(make_instance(base, "stock"), make_instance(base, "rust"))
    assert isinstance(p.rust.event_log_storage, RustEventLogStorage)
    try:
        p.both(seed)
        yield p
    finally:
        p.dispose()


def same_outcome(pair: InstancePair, fn: Callable[[DagsterInstance], Any]) -> type | None:
    """Run `fn` on both; assert dagster-rs raised exactly what stock raised (or neither did)."""
    stock, rust = call(fn, pair.stock), call(fn, pair.rust)
    assert rust.error == stock.error, (
        f"stock raised {stock.error}: {stock.message!r}\nrust raised {rust.error}: {rust.message!r}"
    )
    return stock.error


# -- values that are not events ------------------------------------------------------------------


def _storage(inst: DagsterInstance) -> Any:
    return inst.event_log_storage


NOT_EVENTS: dict[str, Callable[[DagsterInstance], object]] = {
    "store_event(dict)": lambda i: _storage(i).store_event({"run_id": "x", "message": "m"}),
    "store_event(None)": lambda i: _storage(i).store_event(None),
    "store_event(str)": lambda i: _storage(i).store_event("an event"),
    "store_event(DagsterEvent)": lambda i: _storage(i).store_event(entry("scratch").dagster_event),
    "store_event_batch([dict])": lambda i: _storage(i).store_event_batch([{"run_id": "x"}]),
    "store_event_batch([None])": lambda i: _storage(i).store_event_batch([None]),
    "store_event_batch([entry, dict])": lambda i: _storage(i).store_event_batch(
        [entry("scratch"), {"run_id": "x"}]
    ),
    "store_event_batch(entry)": lambda i: _storage(i).store_event_batch(entry("scratch")),
    "store_event_batch(None)": lambda i: _storage(i).store_event_batch(None),
    "store_event_batch(str)": lambda i: _storage(i).store_event_batch("events"),
    "instance.store_event(dict)": lambda i: i.store_event({"run_id": "x"}),  # type: ignore[arg-type]
    "instance.handle_new_event(None)": lambda i: i.handle_new_event(None),  # type: ignore[arg-type]
    "get_records_for_run(None)": lambda i: i.get_records_for_run(None),  # type: ignore[arg-type]
    "get_records_for_run(int)": lambda i: i.get_records_for_run(5),  # type: ignore[arg-type]
    "delete_events(None)": lambda i: _storage(i).delete_events(None),
    "watch(None)": lambda i: i.watch_event_logs(None, None, lambda *a: None),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", sorted(NOT_EVENTS))
def test_not_an_event_raises_like_stock(seeded_pair: InstancePair, case: str) -> None:
    error = same_outcome(seeded_pair, NOT_EVENTS[case])
    assert error is not None, f"{case} did not raise"
    for inst in (seeded_pair.stock, seeded_pair.rust):
        assert_seed_intact(inst)


def test_an_iterable_of_events_is_stored_like_stock(seeded_pair: InstancePair) -> None:
    """Stock's store_event_batch takes any iterable of events (it loops over it)."""
    same_outcome(
        seeded_pair,
        lambda i: _storage(i).store_event_batch(entry("iterable-run", f"g-{n}") for n in range(3)),
    )
    seeded_pair.same(
        lambda i: [
            r.event_log_entry.dagster_event.message
            for r in i.get_records_for_run("iterable-run").records
        ]
    )


# -- events whose body cannot be serialized ------------------------------------------------------


class NotSerializable:
    pass


# EventLogEntry checks its fields when constructed; `_replace` goes around the checks, as a
# hand-built or corrupted event would.
BAD_BODIES: dict[str, Callable[[], EventLogEntry]] = {
    "user_message object": lambda: entry("bad-body")._replace(user_message=NotSerializable()),
    "level object": lambda: entry("bad-body")._replace(level=NotSerializable()),
    "event_specific_data object": lambda: entry("bad-body")._replace(
        dagster_event=entry("bad-body").dagster_event._replace(
            event_specific_data=NotSerializable()
        )
    ),
    "metadata object": lambda: entry("bad-body")._replace(
        dagster_event=entry("bad-body").dagster_event._replace(
            event_specific_data=StepMaterializationData(
                AssetMaterialization(asset_key=ASSET)._replace(metadata={"bad": NotSerializable()})
            ),
            event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        )
    ),
    "timestamp NaN": lambda: entry("bad-body")._replace(timestamp=float("nan")),
    "timestamp inf": lambda: entry("bad-body")._replace(timestamp=float("inf")),
    "timestamp str": lambda: entry("bad-body")._replace(timestamp="yesterday"),
    "run_id int": lambda: entry("bad-body")._replace(run_id=5),
}


@pytest.mark.parametrize("how", ["store_event", "store_event_batch"])
@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_unserializable_event_raises_like_stock(
    seeded_pair: InstancePair, case: str, how: str
) -> None:
    def store(inst: DagsterInstance) -> None:
        bad = BAD_BODIES[case]()
        if how == "store_event":
            _storage(inst).store_event(bad)
        else:
            _storage(inst).store_event_batch([bad])

    error = same_outcome(seeded_pair, store)
    assert error is not None, f"{case} was stored"
    for inst in (seeded_pair.stock, seeded_pair.rust):
        assert inst.get_records_for_run("bad-body").records == []
        assert_seed_intact(inst)


def test_serialization_error_is_stocks_class(seeded_pair: InstancePair) -> None:
    bad = BAD_BODIES["user_message object"]()
    with pytest.raises(SerializationError):
        seeded_pair.rust.event_log_storage.store_event(bad)
    # The same instance goes on storing good events.
    seeded_pair.rust.event_log_storage.store_event(entry("after-bad-body", "fine"))
    assert [e.message for e in seeded_pair.rust.all_logs("after-bad-body")] == ["fine"]


# -- run ids that are paths ----------------------------------------------------------------------


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _path_run_ids(tmp_path: Path, tag: str) -> list[str]:
    return [
        "../x",
        "a/b",
        f"../../escape-{tag}",
        f"../../../../../../../../tmp/escape-{tag}",
        str(tmp_path / f"absolute-{tag}"),
        "nested/../../up",
        "index",
    ]


BAD_RUN_ID_CALLS: dict[str, Callable[[DagsterInstance, str], object]] = {
    "store_event": lambda i, r: i.event_log_storage.store_event(entry(r)),
    "store_event_batch": lambda i, r: i.event_log_storage.store_event_batch(
        [entry("batch-neighbour"), entry(r)]
    ),
    "store_event materialization": lambda i, r: i.event_log_storage.store_event(
        materialization(r, "escaped")
    ),
    "report_engine_event": lambda i, r: i.report_engine_event("x", job_name="j", run_id=r),
    "get_records_for_run": lambda i, r: i.get_records_for_run(r),
    "all_logs": lambda i, r: i.all_logs(r),
    "get_run_stats": lambda i, r: i.event_log_storage.get_stats_for_run(r),
    "get_step_stats_for_run": lambda i, r: i.event_log_storage.get_step_stats_for_run(r),
    "delete_events": lambda i, r: i.event_log_storage.delete_events(r),
    "watch_event_logs": lambda i, r: i.watch_event_logs(r, None, lambda *a: None),
}


@pytest.fixture
def rust_home(tmp_path: Path) -> Path:
    home = write_home(tmp_path / "home", "rust")
    inst = load_instance(home)
    try:
        seed(inst)
    finally:
        inst.dispose()
    return home


@pytest.mark.parametrize("operation", sorted(BAD_RUN_ID_CALLS))
def test_run_id_with_path_characters_is_refused(
    rust_home: Path, tmp_path: Path, operation: str
) -> None:
    base_dir = rust_home / "history" / "runs"
    tag = uuid.uuid4().hex[:8]
    run_ids = _path_run_ids(tmp_path, tag)
    inst = load_instance(rust_home)
    before = _tree(tmp_path)
    try:
        assert isinstance(inst.event_log_storage, RustEventLogStorage)
        for run_id in run_ids:
            with pytest.raises(Exception) as info:  # noqa: B017 - the class is checked below
                BAD_RUN_ID_CALLS[operation](inst, run_id)
            err = info.value
            assert isinstance(err, DagsterError), f"{run_id!r}: {type(err).__name__}: {err}"
            if "\x00" not in run_id:
                assert run_id in str(err), f"{run_id!r} not named in: {err}"
            # Stock would have used this file.
            stock_path = os.path.join(str(base_dir), f"{run_id}.db").replace("\x00", "")
            if run_id != "index":
                assert not os.path.exists(stock_path), stock_path
        assert_seed_intact(inst)
    finally:
        inst.dispose()

    after = _tree(tmp_path)
    created = sorted(after - before)
    # Only the -wal/-shm companions of shards that were already there may appear (and the shard
    # of the valid event batched with the refused one, which stock would have stored first).
    runs_dir = str(base_dir.relative_to(tmp_path))
    unexpected = [
        p
        for p in created
        if not (
            os.path.dirname(p) == runs_dir
            and p.endswith(("-wal", "-shm"))
            and p.removesuffix("-wal").removesuffix("-shm") in before
        )
        and not p.startswith(os.path.join(runs_dir, "batch-neighbour.db"))
    ]
    assert not unexpected, unexpected
    assert not any(Path("/tmp").glob(f"escape-{tag}*"))
    assert not (tmp_path / "a").exists() and not (base_dir / "a").exists()
    assert not (base_dir / "nested").exists()
    # The index shard holds no event of the refused run id "index".
    conn = sqlite3.connect(f"file:{base_dir / 'index.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM event_logs WHERE run_id = 'index'").fetchone()
    finally:
        conn.close()
    assert rows == (0,)
    inst = load_instance(rust_home)
    try:
        assert_seed_intact(inst)
    finally:
        inst.dispose()


@pytest.mark.parametrize("run_id", ["..", ".", "", "with space", "ünïcödé-run", "-dash", "a.b"])
def test_unusual_but_safe_run_ids_work_like_stock(tmp_path: Path, run_id: str) -> None:
    """Run ids that name a file inside the directory are stored where stock stores them."""
    files = {}
    for kind in ("stock", "rust"):
        inst = make_instance(tmp_path, kind)
        try:
            inst.event_log_storage.store_event(entry(run_id, "odd"))
            assert [e.message for e in inst.all_logs(run_id)] == ["odd"]
            assert [e.run_id for e in inst.all_logs(run_id)] == [run_id]
            base = Path(inst.event_log_storage._base_dir)  # noqa: SLF001
            files[kind] = sorted(
                p.name for p in base.iterdir() if not p.name.endswith(("-wal", "-shm"))
            )
        finally:
            inst.dispose()
    assert files["rust"] == files["stock"]
    assert f"{run_id}.db" in files["rust"]
