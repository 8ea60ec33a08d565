"""The assets domain's methods of the event log storage, served by the native `AssetStore`.

`AssetsDomain` is mixed into the event log storage class when the domain is live
(`dagster_rs.storage.event_log_storage.event_log_class`); without it, the same methods are stock
`SqlEventLogStorage`'s over the core's connections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster_rs import _native


class AssetsDomain:
    """Asset keys and records, asset event reads, partitions and the status cache, wipes and
    asset-check reads, in Rust."""

    _native_core: _native.DagsterInstance

    @property
    def _assets(self) -> _native.AssetStore:
        return self._native_core.assets


__all__ = ["AssetsDomain"]
