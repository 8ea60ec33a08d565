"""Daemon heartbeats and the daemon cursor key-value store (get/set_cursor_values): the config
domain, differential against stock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from dagster._daemon.controller import get_daemon_statuses
from dagster._daemon.types import DaemonHeartbeat
from dagster._utils.error import SerializableErrorInfo
from sqlalchemy.exc import OperationalError

from tests.conftest import InstancePair
from tests.runs.helpers import T0, add_runs, make_run, rid

BASE = T0.timestamp()


def beat(daemon_type: str, offset: float, daemon_id: str | None = "d-1", errors=None):
    return DaemonHeartbeat(
        timestamp=BASE + offset, daemon_type=daemon_type, daemon_id=daemon_id, errors=errors
    )


ERROR = SerializableErrorInfo(message="boom\n", stack=["line 1\n", "line 2\n"], cls_name="Oops")


@pytest.fixture(params=["config_on", "config_off"])
def fast_pair(request: pytest.FixtureRequest) -> Iterator[InstancePair]:
    """Every test twice: against the config domain in Rust, and switched off (stock's code over
    the core's connections on the dagster-rs side)."""
    name = "fast_pair" if request.param == "config_on" else "config_off_pair"
    yield request.getfixturevalue(name)


def config_live(pair: InstancePair) -> bool:
    return "config" in pair.rust.rust_domains  # type: ignore[attr-defined]


def test_add_and_get_heartbeats(fast_pair):
    assert fast_pair.same(lambda i: dict(i.get_daemon_heartbeats())).value == {}
    beats = [
        beat("SCHEDULER", 0.0),
        beat("SENSOR", 1.5, "d-2"),
        beat("BACKFILL", 2.25, None),
        beat("QUEUED_RUN_COORDINATOR", 3.0, errors=[ERROR]),
    ]
    for b in beats:
        out = fast_pair.same(lambda i, b=b: i.add_daemon_heartbeat(b))
        assert out.value is None
    out = fast_pair.same(lambda i: dict(i.get_daemon_heartbeats()))
    assert out.value == {b.daemon_type: b for b in beats}
    fast_pair.same(lambda i: dict(i.run_storage.get_daemon_heartbeats()))


def test_heartbeat_replaces_previous_for_same_type(fast_pair):
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("SCHEDULER", 0.0, "old")))
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("SENSOR", 0.0)))
    newer = beat("SCHEDULER", 30.0, "new", errors=[ERROR])
    fast_pair.both(lambda i: i.run_storage.add_daemon_heartbeat(newer))
    out = fast_pair.same(lambda i: dict(i.get_daemon_heartbeats()))
    assert out.value["SCHEDULER"] == newer
    assert len(out.value) == 2
    # An older heartbeat written later still wins: the storage keeps the last write.
    older = beat("SCHEDULER", 10.0, "late")
    fast_pair.both(lambda i: i.add_daemon_heartbeat(older))
    out = fast_pair.same(lambda i: dict(i.get_daemon_heartbeats()))
    assert out.value["SCHEDULER"] == older


def test_wipe_daemon_heartbeats(fast_pair):
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("SCHEDULER", 0.0)))
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("SENSOR", 0.0)))
    out = fast_pair.same(lambda i: i.wipe_daemon_heartbeats())
    assert out.value is None
    assert fast_pair.same(lambda i: dict(i.get_daemon_heartbeats())).value == {}
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("SENSOR", 5.0)))
    fast_pair.same(lambda i: dict(i.get_daemon_heartbeats()))
    fast_pair.both(lambda i: i.run_storage.wipe_daemon_heartbeats())
    assert fast_pair.same(lambda i: dict(i.run_storage.get_daemon_heartbeats())).value == {}


def test_heartbeats_survive_run_data_changes(fast_pair):
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("SCHEDULER", 0.0)))
    add_runs(fast_pair, [make_run(1)])
    fast_pair.both(lambda i: i.run_storage.delete_run(rid(1)))
    out = fast_pair.same(lambda i: dict(i.get_daemon_heartbeats()))
    assert list(out.value) == ["SCHEDULER"]


# -- cursor values -----------------------------------------------------------------------------


def test_set_and_get_cursor_values(fast_pair):
    out = fast_pair.same(lambda i: i.run_storage.set_cursor_values({"a": "1", "b": "2"}))
    assert out.value is None
    got = fast_pair.same(lambda i: dict(i.run_storage.get_cursor_values({"a", "b", "c"})))
    assert got.value == {"a": "1", "b": "2"}
    assert fast_pair.same(lambda i: dict(i.run_storage.get_cursor_values(set()))).value == {}
    assert fast_pair.same(lambda i: dict(i.run_storage.get_cursor_values({"zz"}))).value == {}


def test_update_existing_cursor_values(fast_pair):
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"a": "1", "b": "2"}))
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"a": "10", "b": "20"}))
    got = fast_pair.same(lambda i: dict(i.run_storage.get_cursor_values({"a", "b"})))
    assert got.value == {"a": "10", "b": "20"}
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"b": "200"}))
    got = fast_pair.same(lambda i: dict(i.run_storage.get_cursor_values({"a", "b"})))
    assert got.value == {"a": "10", "b": "200"}


def test_set_cursor_values_mixing_new_and_existing_keys(fast_pair):
    """A documented difference (ARCHITECTURE.md, config domain): stock inserts the whole batch and,
    on a key conflict, updates only the keys already present, so the new keys of a mixed batch are
    lost. dagster-rs upserts each key. The existing key agrees on both sides."""
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"a": "1"}))
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"a": "2", "new": "3"}))
    stock, rust = fast_pair.both(lambda i: dict(i.run_storage.get_cursor_values({"a", "new"})))
    assert stock == {"a": "2"}
    # Switched off, the dagster-rs side runs stock's code: stock's loss.
    assert rust == ({"a": "2", "new": "3"} if config_live(fast_pair) else {"a": "2"})


@pytest.mark.parametrize(
    "pairs",
    [
        {"k": ""},
        {"k": "x" * 10_000},
        {"ünï": "çødé ✓", "quote'key": 'dq"value'},
        {"json": '{"cursor": 12, "list": [1, 2]}'},
    ],
    ids=["empty", "long", "unicode", "json"],
)
def test_cursor_value_contents(fast_pair, pairs):
    fast_pair.both(lambda i: i.run_storage.set_cursor_values(pairs))
    got = fast_pair.same(lambda i: dict(i.run_storage.get_cursor_values(set(pairs))))
    assert got.value == pairs


def test_cursor_values_type_checks(fast_pair):
    out = fast_pair.same(lambda i: i.run_storage.set_cursor_values({"a": 1}))
    assert out.error is not None
    out = fast_pair.same(lambda i: i.run_storage.get_cursor_values(["a"]))
    assert out.error is not None


def test_cursor_values_type_checks_classes(fast_pair):
    for bad in ({"a": 1}, {1: "a"}, {"a": None}):
        out = fast_pair.same(lambda i, bad=bad: i.run_storage.set_cursor_values(bad))
        assert out.error is not None and out.error.__name__ == "CheckError"
    for bad in (["a"], None, "a", {"a": "b"}):
        out = fast_pair.same(lambda i, bad=bad: i.run_storage.get_cursor_values(bad))
        assert out.error is not None and out.error.__name__ == "ParameterCheckError"
    out = fast_pair.same(lambda i: i.run_storage.get_cursor_values({"a", 1}))
    assert out.error is not None
    # Nothing was stored by any of them.
    assert fast_pair.same(lambda i: dict(i.run_storage.get_cursor_values({"a"}))).value == {}


def test_empty_cursor_batch_raises_as_stock(fast_pair):
    """Stock's `set_cursor_values({})` fails in SQLite (its fallback UPDATE renders an empty
    CASE); callers see OperationalError on both sides and nothing is stored."""
    out = fast_pair.same(lambda i: i.run_storage.set_cursor_values({}))
    assert out.error is OperationalError
    fast_pair.same(lambda i: dict(i.daemon_cursor_storage.get_cursor_values({"a"})))


def test_cursor_values_overlapping_batches_in_key_order(fast_pair):
    """Overlapping batches of existing keys overwrite; a read returns stock's order (the key
    index's), whatever order the keys were written or asked in."""
    first = {f"key-{i:03d}": f"v1-{i}" for i in range(60, 0, -1)}
    fast_pair.both(lambda i: i.run_storage.set_cursor_values(first))
    again = {f"key-{i:03d}": f"v2-{i}" for i in range(10, 40)}
    fast_pair.both(lambda i: i.run_storage.set_cursor_values(again))
    keys = {f"key-{i:03d}" for i in range(0, 80)}
    got = fast_pair.same(lambda i: list(i.run_storage.get_cursor_values(keys).items()))
    assert len(got.value) == 60
    assert [k for k, _ in got.value] == sorted(first)
    assert dict(got.value)["key-010"] == "v2-10"
    assert dict(got.value)["key-040"] == "v1-40"


def test_many_cursor_keys(fast_pair):
    """Thousands of keys in one call (the core batches them by 500; stock binds them all)."""
    n = 3_000
    pairs = {f"sensor/{i:05d}": f"cursor-{i}" for i in range(n)}
    fast_pair.both(lambda i: i.run_storage.set_cursor_values(pairs))
    update = {k: v + "-next" for k, v in list(pairs.items())[::3]}
    fast_pair.both(lambda i: i.run_storage.set_cursor_values(update))
    got = fast_pair.same(lambda i: list(i.run_storage.get_cursor_values(set(pairs)).items()))
    assert dict(got.value) == {**pairs, **update}
    some = {f"sensor/{i:05d}" for i in range(0, 2 * n, 7)}
    fast_pair.same(lambda i: list(i.run_storage.get_cursor_values(some).items()))


def test_more_keys_than_stock_can_bind(fast_pair):
    """Past SQLite's 250,000 bound parameters stock fails; the core's batches store them."""
    pairs = {f"k{i:06d}": str(i) for i in range(130_000)}
    out = fast_pair.both(lambda i: _outcome(lambda: i.run_storage.set_cursor_values(pairs)))
    assert out[0] is OperationalError
    if config_live(fast_pair):
        assert out[1] is None
        got = fast_pair.rust.run_storage.get_cursor_values(set(pairs) | {"missing"})
        assert got == pairs
    else:
        assert out[1] is OperationalError


def _outcome(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the class is the result
        return type(exc)
    return None


def test_daemon_cursor_storage_is_the_run_storage(fast_pair):
    fast_pair.both(lambda i: i.daemon_cursor_storage.set_cursor_values({"asset_daemon": "c"}))
    got = fast_pair.same(lambda i: dict(i.run_storage.get_cursor_values({"asset_daemon"})))
    assert got.value == {"asset_daemon": "c"}


def test_wipe_keeps_cursors_and_drops_heartbeats(fast_pair):
    """Stock's run storage wipe clears the heartbeats, not the key-value store."""
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("SENSOR", 0.0)))
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"k": "v"}))
    fast_pair.both(lambda i: i.run_storage.wipe())
    assert fast_pair.same(lambda i: dict(i.get_daemon_heartbeats())).value == {}
    assert fast_pair.same(lambda i: dict(i.run_storage.get_cursor_values({"k"}))).value == {
        "k": "v"
    }


def test_heartbeat_bad_input(fast_pair):
    for bad in ("not a heartbeat", None, 3):
        out = fast_pair.same(lambda i, bad=bad: i.add_daemon_heartbeat(bad))
        assert out.error is AttributeError
    assert fast_pair.same(lambda i: dict(i.get_daemon_heartbeats())).value == {}


def test_heartbeat_timestamps_as_stock_stores_them(fast_pair):
    """Sub-microsecond and pre-epoch timestamps round as stock's DateTime column rounds them."""
    for offset in (0.123456789, -86_400 * 365 * 60 + 0.5, 1e-7):
        fast_pair.both(lambda i, o=offset: i.add_daemon_heartbeat(beat(f"T{o}", o)))
    fast_pair.same(lambda i: list(i.get_daemon_heartbeats().items()))


@pytest.mark.parametrize("now", [BASE - 1.0, BASE + 10.0, BASE + 60.0, BASE + 1e6])
def test_daemon_statuses(fast_pair, now):
    """Healthy, late, errored, absent and not required daemons, at fixed times."""
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("SENSOR", 0.0)))
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("BACKFILL", 30.0, errors=[ERROR])))
    fast_pair.both(lambda i: i.add_daemon_heartbeat(beat("NOT_A_DAEMON", 30.0)))
    types = ["SENSOR", "BACKFILL", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING", "X"]
    for ignore_errors in (False, True):
        out = fast_pair.same(
            lambda i, ie=ignore_errors: list(
                get_daemon_statuses(i, types, curr_time_seconds=now, ignore_errors=ie).items()
            )
        )
        assert [s.daemon_type for _, s in out.value] == types
    fast_pair.same(lambda i: sorted(i.get_daemon_statuses().items()))
    fast_pair.same(lambda i: list(i.get_required_daemon_types()))


def test_run_storage_id_is_stable(fast_pair):
    stock = fast_pair.stock.run_storage.get_run_storage_id()
    rust = fast_pair.rust.run_storage.get_run_storage_id()
    assert isinstance(rust, str) and len(rust) == len(stock) == 36
    assert fast_pair.rust.run_storage.get_run_storage_id() == rust
    assert fast_pair.stock.run_storage.get_run_storage_id() == stock


def test_stored_rows_identical(fast_pair, tmp_path):
    """The rows themselves (ids, DateTime text, bodies) are stock's, row for row."""
    for offset, daemon in ((0.123456789, "A"), (-1e9, "B"), (1e-7, "C"), (5.0, "A")):
        fast_pair.both(lambda i, o=offset, d=daemon: i.add_daemon_heartbeat(beat(d, o)))
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"k1": "v", "k2": "w"}))
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"k1": "v2"}))
    fast_pair.both(lambda i: i.run_storage.get_run_storage_id())
    fast_pair.dispose()
    tables = {}
    for kind in ("stock", "rust"):
        conn = sqlite3.connect(tmp_path / f"{kind}_home" / "history" / "runs.db")
        try:
            tables[kind] = [
                conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                for t in ("daemon_heartbeats", "kvs")
            ] + [conn.execute("SELECT count(*) FROM instance_info").fetchall()]
        finally:
            conn.close()
    assert tables["stock"] == tables["rust"]
    assert len(tables["rust"][0]) == 3
