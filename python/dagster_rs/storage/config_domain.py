"""The config domain's methods of the run storage (daemon heartbeats, the daemon cursor key-value
store, the run storage's id), served by the native `ConfigStore`.

`ConfigDomain` is mixed into the run storage class when the domain is live
(`dagster_rs.storage.run_storage.run_storage_class`); without it, the same methods are stock
`SqlRunStorage`'s, run over the core's connections to the same `runs.db` (the DB-API bridge).

Python keeps what is Dagster's own: stock's argument checks, `serialize_value` of the heartbeat,
its deserialization and the mapping stock builds from the rows. Every statement is the core's.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

import dagster._check as check
from dagster._daemon.types import DaemonHeartbeat
from dagster._serdes import deserialize_value
from dagster._time import datetime_from_timestamp
from sqlalchemy.exc import OperationalError

from dagster_rs.serdes import serialize
from dagster_rs.storage.convert import sql_datetime

if TYPE_CHECKING:
    from dagster_rs import _native


def _empty_cursor_batch() -> OperationalError:
    """What stock raises for `set_cursor_values({})`: its empty INSERT conflicts (a row without a
    key) and the UPDATE it falls back on renders as `CASE kvs."key" END`, which SQLite rejects.
    Nothing is stored either way."""
    return OperationalError(
        'UPDATE kvs SET value=CASE kvs."key" END WHERE kvs."key" IN (SELECT 1 FROM (SELECT 1)'
        " WHERE 1!=1)",
        (),
        sqlite3.OperationalError('near "END": syntax error'),
    )


class ConfigDomain:
    """The run storage's config-domain methods over the native `ConfigStore`."""

    _native_core: _native.DagsterInstance

    @property
    def _config(self) -> _native.ConfigStore:
        return self._native_core.config

    # -- daemon heartbeats ---------------------------------------------------------------------

    def add_daemon_heartbeat(self, daemon_heartbeat: DaemonHeartbeat) -> None:
        # Stock's order of attribute reads (a wrong object fails where it fails for stock).
        timestamp = sql_datetime(datetime_from_timestamp(daemon_heartbeat.timestamp))
        self._config.add_heartbeat(
            {
                "daemon_type": daemon_heartbeat.daemon_type,
                "daemon_id": daemon_heartbeat.daemon_id,
                "timestamp": timestamp,
                "body": serialize(daemon_heartbeat),
            }
        )

    def get_daemon_heartbeats(self) -> Mapping[str, DaemonHeartbeat]:
        beats = [
            deserialize_value(body, DaemonHeartbeat)  # type: ignore[arg-type]
            for body in self._config.heartbeats()
        ]
        return {beat.daemon_type: beat for beat in beats}

    def wipe_daemon_heartbeats(self) -> None:
        self._config.wipe_heartbeats()

    # -- daemon cursors (kvs) ------------------------------------------------------------------

    def get_cursor_values(self, keys: set[str]) -> Mapping[str, str]:
        check.set_param(keys, "keys", of_type=str)
        # Sorted: the order stock's `IN` lookup through the key index returns them in.
        return {
            key: value  # type: ignore[misc]
            for key, value in self._config.cursor_values(sorted(keys))
        }

    def set_cursor_values(self, pairs: Mapping[str, str]) -> None:
        check.mapping_param(pairs, "pairs", key_type=str, value_type=str)
        if not pairs:
            raise _empty_cursor_batch()
        self._config.set_cursor_values(list(pairs.items()))

    # -- instance info -------------------------------------------------------------------------

    def get_run_storage_id(self) -> str:
        return self._config.run_storage_id(str(uuid.uuid4()))  # type: ignore[return-value]


__all__ = ["ConfigDomain"]
