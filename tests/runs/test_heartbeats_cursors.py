"""Daemon heartbeats and the daemon cursor key-value store (get/set_cursor_values)."""

from __future__ import annotations

import pytest
from dagster._daemon.types import DaemonHeartbeat
from dagster._utils.error import SerializableErrorInfo

from tests.runs.helpers import T0, add_runs, make_run, rid

BASE = T0.timestamp()


def beat(daemon_type: str, offset: float, daemon_id: str | None = "d-1", errors=None):
    return DaemonHeartbeat(
        timestamp=BASE + offset, daemon_type=daemon_type, daemon_id=daemon_id, errors=errors
    )


ERROR = SerializableErrorInfo(message="boom\n", stack=["line 1\n", "line 2\n"], cls_name="Oops")


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
    """A documented difference (ARCHITECTURE.md, runs domain): stock inserts the whole batch and,
    on a key conflict, updates only the keys already present, so the new keys of a mixed batch are
    lost. dagster-rs upserts each key. The existing key agrees on both sides."""
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"a": "1"}))
    fast_pair.both(lambda i: i.run_storage.set_cursor_values({"a": "2", "new": "3"}))
    stock, rust = fast_pair.both(lambda i: dict(i.run_storage.get_cursor_values({"a", "new"})))
    assert stock == {"a": "2"}
    assert rust == {"a": "2", "new": "3"}


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
