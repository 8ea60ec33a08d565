"""Temporary directories on tmpfs for suites that create and delete thousands of SQLite files.

On this machine's shared disk each unlink and fsync waits on the file system's journal (while
other engineers' builds and tests write), and a suite that makes a few thousand small database
files spends most of its wall time there, not computing. `/dev/shm` is used when it has room;
`DAGSTER_RS_FAST_TMP` names another directory, and `DAGSTER_RS_FAST_TMP=disk` keeps pytest's own.
SQLite behaves the same on tmpfs for what these suites check (locks, journals, WAL, kills); the
read-only and full-disk suites make their own mounts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_ROOM = 2 << 30


def fast_root() -> Path | None:
    chosen = os.environ.get("DAGSTER_RS_FAST_TMP")
    if chosen:
        return None if chosen == "disk" else Path(chosen)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > _ROOM:
        return shm
    return None


@contextmanager
def fast_dir(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A new directory on tmpfs (removed afterwards), else one of pytest's."""
    root = fast_root()
    if root is None:
        yield factory.mktemp(name)
        return
    path = Path(tempfile.mkdtemp(prefix=f"dagster-rs-{name}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# Fixtures for the suites that import them: pytest's `tmp_path` and a session directory, on
# tmpfs when it has room.
@pytest.fixture(name="tmp_path")
def fast_tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fast_dir(tmp_path_factory, "test") as path:
        yield path


@pytest.fixture(name="session_dir", scope="session")
def fast_session_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fast_dir(tmp_path_factory, "session") as path:
        yield path
