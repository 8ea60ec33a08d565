"""Exceptions dagster-rs raises where stock Dagster has no class of its own for the problem."""

from __future__ import annotations

from dagster._core.errors import DagsterError
from dagster_shared.serdes.errors import DeserializationError


class DagsterRsStorageError(DagsterError):
    """The storage files cannot be used: unknown schema revision, read-only or corrupt database."""


class CorruptRecordError(DeserializationError, ValueError):
    """A stored body is not a valid serialized Dagster object.

    Subclasses the classes stock Dagster lets escape in that case (`DeserializationError` for a
    wrong shape, `ValueError` for malformed JSON), so existing handlers still catch it.
    """
