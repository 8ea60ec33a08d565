"""What a writer killed mid-transaction leaves: pages of an uncommitted transaction in the file
(rollback-journal mode, a hot journal beside it) or in its -wal."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def spilling_transaction(live: Path, in_flight: str) -> sqlite3.Connection:
    """A connection to `live` inside a transaction that ran `in_flight` and then wrote enough
    pages for SQLite's cache to spill them before any commit; the caller copies what is on disk,
    then rolls back and closes."""
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("PRAGMA cache_size = 1")
    conn.execute("BEGIN")
    conn.execute(in_flight)
    conn.execute("CREATE TABLE spill (y)")
    for _ in range(300):
        conn.execute("INSERT INTO spill VALUES (?)", ("x" * 900,))
    return conn
