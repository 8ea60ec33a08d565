"""`serialize_value`, natively: the JSON text stock Dagster's serdes writes, byte for byte.

`serialize(value)` asks the core's `Serializer` (built over Dagster's own `WhitelistMap`, whose
serializers it consults for every whitelisted class) and falls back to stock `serialize_value`
for anything the native walk leaves to Python, so the result, or the exception, is always
stock's. `DAGSTER_RS_NATIVE_SERDES=0` turns the native path off.
"""

from __future__ import annotations

import os
from typing import Any

from dagster_shared.serdes.serdes import _WHITELIST_MAP, serialize_value

from dagster_rs import _native

_NATIVE: _native.Serializer | None = (
    None
    if os.environ.get("DAGSTER_RS_NATIVE_SERDES", "1").strip() in ("0", "false", "no")
    else _native.Serializer(_WHITELIST_MAP)
)


def serialize(value: Any) -> str:
    if _NATIVE is not None:
        try:
            return _NATIVE.serialize(value)
        except Exception:  # noqa: BLE001 - stock decides: it serializes or raises its own error
            pass
    return serialize_value(value)


__all__ = ["serialize"]
