"""The native serializer writes stock `serialize_value`'s text, byte for byte.

Events of real runs (metadata of every kind, asset checks, partitions, failures with stack
traces, non-ASCII text) and hand-built values are serialized both ways. The native path must
produce the text itself (no fallback) for everything an event log holds, and leave to stock
whatever it does not reproduce, so errors stay stock's.
"""

from __future__ import annotations

import math
from pathlib import Path

import dagster as dg
import pytest
from dagster import (
    AssetCheckResult,
    AssetKey,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    materialize,
)
from dagster._core.events.log import EventLogEntry
from dagster_shared.serdes.errors import SerializationError
from dagster_shared.serdes.serdes import _WHITELIST_MAP, deserialize_value, serialize_value
from dagster_shared.serdes.serdes import deserialize_values as stock_deserialize_values

from dagster_rs import _native
from dagster_rs.serdes import deserialize_values, serialize

NATIVE = _native.Serdes(_WHITELIST_MAP)


@asset(key=AssetKey(["unicode", "path"]), description="ünïcode")
def rich() -> MaterializeResult:
    return MaterializeResult(
        metadata={
            "text": 'tab\there "quoted" \\ back \u2603 \U0001f600 \x00 \x7f',
            "int": 2**70,
            "neg": -3,
            "float": 0.1,
            "tiny": 1e-7,
            "huge": 1e22,
            "nan": math.nan,
            "inf": -math.inf,
            "bool": True,
            "none": MetadataValue.null(),
            "md": MetadataValue.md("# title"),
            "url": MetadataValue.url("https://example.com"),
            "path": MetadataValue.path("/tmp/x"),
            "json": MetadataValue.json({"b": [1, 2.5, None], "a": {"z": "é"}}),
            "table": MetadataValue.table(
                records=[dg.TableRecord({"a": 1, "b": "x"})],
                schema=dg.TableSchema(
                    columns=[dg.TableColumn("a", "int"), dg.TableColumn("b", "string")]
                ),
            ),
            "asset": MetadataValue.asset(AssetKey("other")),
            "timestamp": MetadataValue.timestamp(1700000000.5),
            "code": MetadataValue.python_artifact(dg.asset),
        },
        tags={"dagster/data_version": "v1"},
    )


@asset_check(asset=rich)
def rich_check() -> AssetCheckResult:
    return AssetCheckResult(passed=False, metadata={"why": "because"})


@asset(partitions_def=DailyPartitionsDefinition(start_date="2024-01-01"))
def daily(context) -> None:
    context.log.info(f"partition {context.partition_key} — ok")


@asset
def broken() -> None:
    raise ValueError("boom ✗")


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[EventLogEntry]:
    home: Path = tmp_path_factory.mktemp("serdes_home")
    (home / "dagster.yaml").write_text("")
    instance = DagsterInstance.from_config(str(home))
    try:
        run_ids = [
            materialize([rich, rich_check], instance=instance).run_id,
            materialize([daily], instance=instance, partition_key="2024-01-02").run_id,
            materialize([broken], instance=instance, raise_on_error=False).run_id,
        ]
        return [event for run_id in run_ids for event in instance.all_logs(run_id)]
    finally:
        instance.dispose()


def test_every_event_of_real_runs_is_written_natively_as_stock_writes_it(events):
    assert len(events) >= 30
    kinds = {e.dagster_event_type for e in events if e.dagster_event_type}
    assert {"ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION", "STEP_FAILURE"} <= {
        k.value for k in kinds
    }
    for event in events:
        assert NATIVE.serialize(event) == serialize_value(event)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**80),
        1.5,
        1e16,
        1e-5,
        -0.0,
        "",
        "\u0019\u001f\u0020~\u0080",
        [],
        {},
        {"b": 1, "a": [1, {"d": None, "c": "x"}]},
        (1, 2),
        {1, 2, 3},
        frozenset({"b", "a"}),
        AssetKey(["a", "b"]),
        dg.DagsterRunStatus.SUCCESS,
    ],
    ids=repr,
)
def test_values_match_stock(value):
    assert NATIVE.serialize(value) == serialize_value(value)


def test_what_the_native_walk_leaves_to_stock_is_still_stocks():
    # Non-string keys are converted by json after sorting by their own ordering.
    mixed = {2: "b", 10: "a"}
    with pytest.raises(ValueError):
        NATIVE.serialize(mixed)
    assert serialize(mixed) == serialize_value(mixed)
    # Lone surrogates cannot be held by a Rust string; json escapes them.
    lone = "x\ud800y"
    assert serialize(lone) == serialize_value(lone)

    class NotWhitelisted:
        pass

    # Stock's own error, with its message, for what cannot be serialized at all.
    with pytest.raises(SerializationError) as stock_err:
        serialize_value([NotWhitelisted()])
    with pytest.raises(SerializationError) as ours:
        serialize([NotWhitelisted()])
    assert str(ours.value) == str(stock_err.value)


def test_every_event_of_real_runs_is_read_back_natively_as_stock_reads_it(events):
    for event in events:
        text = serialize_value(event)
        native = NATIVE.deserialize(text)
        stock = deserialize_value(text, EventLogEntry)
        # repr, not ==: a NaN metadata value is never equal to itself.
        assert repr(native) == repr(stock)
        assert type(native) is type(stock)
        assert serialize_value(native) == text


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, -2, 3.5, 1e-07, 1E+22, -0.0, 123456789012345678901234567890], "b": null}',
        '{"t": true, "f": false, "s": "\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/", "raw": "é"}',
        '{"n": NaN, "i": Infinity, "m": -Infinity}',
        '{"__set__": [1, 2]}',
        '{"__frozenset__": ["a"]}',
        '{"__enum__": "DagsterRunStatus.SUCCESS"}',
        '{"__class__": "AssetKey", "path": ["a", "b"]}',
        '{"dup": 1, "dup": 2}',
        "  [ ]  ",
    ],
)
def test_texts_read_back_as_stock_reads_them(text):
    native = NATIVE.deserialize(text)
    stock = deserialize_value(text)
    if isinstance(stock, float) or (isinstance(stock, dict) and "n" in stock):
        assert repr(native) == repr(stock)
    else:
        assert native == stock
        assert type(native) is type(stock)


@pytest.mark.parametrize(
    "text",
    [
        '{"__class__": "NoSuchClass", "x": 1}',
        '{"__enum__": "NoSuchEnum.X"}',
        '{"__enum__": "a.b.c"}',
        '{"a": "\\ud800"}',
        '{"__mapping_items__": [[1, 2]]}',
        '{"a": 1} trailing',
        '{"a": }',
    ],
)
def test_what_native_reading_leaves_to_stock_is_still_stocks(text):
    with pytest.raises(ValueError):
        NATIVE.deserialize(text)
    assert outcome(lambda: deserialize_values([text], None)) == outcome(
        lambda: stock_deserialize_values([text], None)
    )


def outcome(fn):
    try:
        return ("ok", repr(fn()))
    except Exception as exc:  # noqa: BLE001 - the class is the result being compared
        return ("raised", type(exc))
