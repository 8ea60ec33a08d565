"""Dagster's serdes, natively: stock's JSON text out, stock's objects back.

`serialize(value)` and `deserialize_values(texts, as_type)` ask the core's `Serdes` (built over
Dagster's own `WhitelistMap`, whose serializers it consults for every whitelisted class) and fall
back to stock `serialize_value` / `deserialize_value` for anything the native walk leaves to
Python, so the result, or the exception, is always stock's. `DAGSTER_RS_NATIVE_SERDES=0` turns
the native paths off.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dagster._check as check
from dagster._utils.warnings import disable_dagster_warnings
from dagster_shared.match import match_type
from dagster_shared.serdes.errors import DeserializationError
from dagster_shared.serdes.serdes import (
    _WHITELIST_MAP,
    deserialize_value,
    serialize_value,
)
from dagster_shared.serdes.serdes import deserialize_values as stock_deserialize_values

from dagster_rs import _native

_NATIVE: _native.Serdes | None = (
    None
    if os.environ.get("DAGSTER_RS_NATIVE_SERDES", "1").strip() in ("0", "false", "no")
    else _native.Serdes(_WHITELIST_MAP)
)


def serialize(value: Any) -> str:
    if _NATIVE is not None:
        try:
            return _NATIVE.serialize(value)
        except Exception:  # noqa: BLE001 - stock decides: it serializes or raises its own error
            pass
    return serialize_value(value)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def deserialize_values(texts: Iterable[str], as_type: Any) -> Sequence[Any]:
    """Stock `deserialize_values(texts, as_type)`: the same objects, or stock's own error."""
    if _NATIVE is None:
        return stock_deserialize_values(texts, as_type)
    native = _NATIVE
    out: list[Any] = []
    # The contexts stock's deserialize_values runs its constructors in; and no cyclic garbage
    # collection while a batch builds objects that all stay alive (every pass would traverse
    # them again; reference counting still frees what is dropped).
    with (
        disable_dagster_warnings(),
        check.EvalContext.contextual_namespace(_WHITELIST_MAP.object_type_map),
        _no_cyclic_gc(),
    ):
        for text in texts:
            try:
                value = native.deserialize(text)
            except Exception:  # noqa: BLE001 - stock decides: its value or its own error
                value = deserialize_value(text, as_type)
            else:
                if not match_type(value, as_type):
                    raise DeserializationError(
                        f"Deserialized object was not expected type {as_type}, got {type(value)}"
                    )
            out.append(value)
    return out


__all__ = ["deserialize_values", "serialize"]
