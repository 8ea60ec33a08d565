"""Values crossing into the native core: Dagster objects become serdes JSON and plain columns.

SQLite has no date type; stock Dagster stores `DateTime` columns through SQLAlchemy, which writes a
datetime's own fields (ignoring any tzinfo) as `YYYY-MM-DD HH:MM:SS.ffffff`. Filters compare those
strings, so the same formatting is used here for the stored values and for every bound parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from dagster._core.execution.backfill import BulkActionsFilter
from dagster._core.storage.dagster_run import JobBucket, RunsFilter, TagBucket

if TYPE_CHECKING:
    from dagster_rs._native import BackfillFilterSpec, BucketSpec, RunQuerySpec, RunsFilterSpec


def native_text(*values: Any) -> bool:
    """True when each value is None or a str: what the core's text arguments take. Stock hands
    other values to `sqlite3` as they are (an int, a float, bytes bind; a list fails to), so a
    call with any of them is served by stock's code, which binds them as it always has."""
    return all(v is None or isinstance(v, str) for v in values)


def native_int(*values: Any) -> bool:
    """True when each value is None or an int (a bool is one): what the core's integer
    arguments take. SQLAlchemy takes `int()` of anything else stock passes as a limit (a
    numeric string, a float, NaN raising `ValueError`): stock's code serves those calls."""
    return all(v is None or isinstance(v, int) for v in values)


def native_tags(tags: Mapping[Any, Any] | None) -> bool:
    """True when every tag key is a str and every value a str or a list/tuple of str."""
    if not tags:
        return True
    for key, value in tags.items():
        if not isinstance(key, str):
            return False
        if isinstance(value, str):
            continue
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return False
    return True


def native_filter(filters: RunsFilter | None) -> bool:
    """True when the core can take the filter's values as they are (see `native_tags`)."""
    return filters is None or native_tags(filters.tags)


# SQLite's default SQLITE_MAX_LIKE_PATTERN_LENGTH: a longer LIKE pattern fails ("LIKE or GLOB
# pattern too complex"), as stock's prefix reads (`startswith`) do.
LIKE_PATTERN_LIMIT = 50_000


def like_prefix_too_long(prefix: str | None) -> bool:
    """True when stock's `LIKE prefix || '%'` for `prefix` exceeds SQLite's pattern limit."""
    if not prefix:
        return False
    return len(prefix.encode("utf-8", "surrogatepass")) + 1 > LIKE_PATTERN_LIMIT


def sql_datetime(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
        )
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def naive_utc_text(timestamp: float) -> str:
    """A float timestamp as stock binds it: naive UTC, `YYYY-MM-DD HH:MM:SS.ffffff`."""
    return sql_datetime(datetime.fromtimestamp(timestamp, timezone.utc).replace(tzinfo=None))


def opt_sql_datetime(value: datetime | None) -> str | None:
    return None if value is None else sql_datetime(value)


def utc_from_sql(text: str) -> datetime:
    """Parse a stored DateTime (with or without fraction, as stock writes both) as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def tag_pairs(tags: Mapping[str, str | Sequence[str]] | None) -> list[tuple[str, str | list[str]]]:
    if not tags:
        return []
    return [(k, v if isinstance(v, str) else list(v)) for k, v in tags.items()]


def runs_filter_spec(filters: RunsFilter | None) -> RunsFilterSpec:
    # Stock tests each field for truthiness, so empty lists mean "no filter" here as well.
    if filters is None:
        return {
            "run_ids": None,
            "job_name": None,
            "statuses": None,
            "tags": None,
            "snapshot_id": None,
            "updated_after": None,
            "updated_before": None,
            "created_after": None,
            "created_before": None,
            "exclude_subruns": False,
        }
    return {
        "run_ids": list(filters.run_ids) if filters.run_ids else None,
        "job_name": filters.job_name or None,
        "statuses": [s.value for s in filters.statuses] if filters.statuses else None,
        "tags": tag_pairs(filters.tags) or None,
        "snapshot_id": filters.snapshot_id or None,
        "updated_after": opt_sql_datetime(filters.updated_after),
        "updated_before": opt_sql_datetime(filters.updated_before),
        "created_after": opt_sql_datetime(filters.created_after),
        "created_before": opt_sql_datetime(filters.created_before),
        "exclude_subruns": bool(filters.exclude_subruns),
    }


def bucket_spec(bucket_by: JobBucket | TagBucket | None) -> BucketSpec | None:
    if bucket_by is None:
        return None
    if isinstance(bucket_by, JobBucket):
        return {
            "kind": "job",
            "key": None,
            "values": list(bucket_by.job_names),
            "limit": bucket_by.bucket_limit,
        }
    if isinstance(bucket_by, TagBucket):
        return {
            "kind": "tag",
            "key": bucket_by.tag_key,
            "values": list(bucket_by.tag_values),
            "limit": bucket_by.bucket_limit,
        }
    raise TypeError(f"bucket_by must be a JobBucket or TagBucket, got {type(bucket_by).__name__}")


def run_query_spec(
    filters: RunsFilter | None,
    cursor: str | None = None,
    limit: int | None = None,
    order_by: str | None = None,
    ascending: bool = False,
    bucket_by: JobBucket | TagBucket | None = None,
) -> RunQuerySpec:
    """A run list query as the core takes it; a falsy limit is none, as in stock."""
    return {
        "filters": runs_filter_spec(filters),
        "cursor": cursor,
        "limit": limit or None,
        "order_by": order_by,
        "ascending": bool(ascending),
        "bucket": bucket_spec(bucket_by),
    }


def backfill_filter_spec(filters: BulkActionsFilter | None) -> BackfillFilterSpec | None:
    if filters is None:
        return None
    return {
        "statuses": [s.value for s in filters.statuses] if filters.statuses else None,
        "created_after": opt_sql_datetime(filters.created_after),
        "created_before": opt_sql_datetime(filters.created_before),
        "backfill_ids": list(filters.backfill_ids) if filters.backfill_ids else None,
        "job_name": filters.job_name or None,
        # The field came with 1.13.10: an earlier filter has none, and filters by none.
        "selector_id": getattr(filters, "selector_id", None) or None,
        "tags": tag_pairs(filters.tags) or None,
    }
