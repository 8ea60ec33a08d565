"""dagster-rs: Dagster's DagsterInstance with its storage domains served by a Rust core."""

from dagster_rs._native import __version__
from dagster_rs.domains import DOMAINS, IMPLEMENTED, DomainSelectionError
from dagster_rs.errors import CorruptRecordError, DagsterRsStorageError
from dagster_rs.instance import DagsterInstance

__all__ = [
    "DOMAINS",
    "IMPLEMENTED",
    "CorruptRecordError",
    "DagsterInstance",
    "DagsterRsStorageError",
    "DomainSelectionError",
    "__version__",
]
