"""The storage domain's methods of the event log storage (dynamic partitions, concurrency
pools), served by the native `StorageStore`.

`StorageDomain` is mixed into the event log storage class when the domain is live
(`dagster_rs.storage.event_log_storage.event_log_class`); without it, the same methods are stock
`SqlEventLogStorage`'s over the core's connections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster_rs import _native


class StorageDomain:
    """Dynamic partitions and concurrency pools, in Rust."""

    _native_core: _native.DagsterInstance

    @property
    def _storage(self) -> _native.StorageStore:
        return self._native_core.storage


__all__ = ["StorageDomain"]
