"""Type stub for the compiled core, `dagster_rs._native` (built from `src/` by maturin)."""

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal, TypedDict, final

from typing_extensions import Self

__all__ = [
    "AssetStore",
    "ConfigStore",
    "Cursor",
    "DagsterInstance",
    "DbapiConnection",
    "EventStore",
    "LaunchRunRow",
    "RunLauncherStore",
    "RunStore",
    "SCHEMA_HEAD",
    "ScheduleStore",
    "Serdes",
    "StorageStore",
    "__version__",
    "inspect_database",
    "read_database_file",
    "sqlite_library",
]

__version__: str
SCHEMA_HEAD: str
"""The alembic revision stock dagster 1.13.27 stamps; the only one the store writes to."""

Durability = Literal["full", "normal", "off"]

class SqliteLibrary(TypedDict):
    """The SQLite the core runs and the one Python's `sqlite3` module runs (by the address of
    `sqlite3_libversion`); `problem` says why the core refuses to open files, or is None."""

    version: str
    path: str | None
    python_version: str | None
    python_path: str | None
    bundled: bool
    problem: str | None

def sqlite_library() -> SqliteLibrary: ...

DatabaseKind = Literal["runs", "event_index", "event_shard", "schedules"]
DatabaseState = Literal["missing", "fresh", "current", "outdated", "unknown", "unstamped"]

class InspectedDatabase(TypedDict):
    """What `inspect_database` found in a file, and whether the native path serves it.

    `exists`: present and not empty. `revision`: its alembic revision, if stamped. `state`:
    "missing" (absent or empty), "fresh" (no Dagster table), "current" (the head), "outdated"
    (an older revision this Dagster knows), "unknown" (a revision it does not know),
    "unstamped" (Dagster tables, no revision: a creation cut short). `native`: `Db::open` serves
    the file — creating it, completing a half-built file as stock's `_initdb` does, or reading
    it as it is; never migrating it, never touching an unknown revision. `missing`: the tables
    and "table.column"s the native path needs that the file lacks now (tables stock adds on
    open are created when the file is writable, and stand in empty when it is not; so are the
    missing tables of an unstamped file). `read_only`: this process cannot write the file (or
    create it). `hot_journal`: a hot rollback journal was beside it; the verdict is of the file
    rolled back (by SQLite where this process can write it, in memory otherwise)."""

    path: str
    exists: bool
    revision: str | None
    state: DatabaseState
    native: bool
    missing: list[str]
    read_only: bool
    hot_journal: bool

def inspect_database(path: str | Path, kind: DatabaseKind) -> InspectedDatabase:
    """Inspect a Dagster database file of `kind`, reading it only through SQLite (the locks
    this process holds on it survive). A file this process can write is read as any reader's
    first open reads it: a hot journal is rolled back and a leftover `-wal` checkpointed by
    SQLite, no committed data changed, nothing created. A file it cannot write is read with
    `mode=ro` (`immutable=1` on a read-only file system where SQLite needs that), a hot journal
    played back in memory. Raises as a read would for a file that is not a database or is
    corrupt; `ValueError` for an unknown `kind`."""

def read_database_file(path: str | Path, journal: bool = False, limit: int | None = None) -> bytes:
    """The bytes of a database file (or, `journal`, of a side file: its `-journal` or `-wal`), at most `limit`
    of them, read through SQLite's VFS: the locks this process holds on the file survive, where
    `open()` and a close would drop them all. Raises `DagsterRsStorageError` when it cannot,
    `ValueError` for a `-shm` (SQLite locks it through a descriptor of its own)."""

class NewRunSpec(TypedDict):
    """A run's row as `RunStore.add_runs` stores it (body already serialized)."""

    run_id: str
    job_name: str | None
    status: str
    body: str
    snapshot_id: str | None
    partition: str | None
    partition_set: str | None
    backfill_id: str | None
    tags: list[tuple[str, str]]
    create_timestamp: str | None

class RunsFilterSpec(TypedDict):
    run_ids: list[str] | None
    job_name: str | None
    statuses: list[str] | None
    tags: list[tuple[str, str | list[str]]] | None
    snapshot_id: str | None
    updated_after: str | None
    updated_before: str | None
    created_after: str | None
    created_before: str | None
    exclude_subruns: bool

class BucketSpec(TypedDict):
    kind: Literal["job", "tag"]
    key: str | None
    values: list[str]
    limit: int | None

class BackfillFilterSpec(TypedDict):
    statuses: list[str] | None
    created_after: str | None
    created_before: str | None
    backfill_ids: list[str] | None
    job_name: str | None
    selector_id: str | None
    tags: list[tuple[str, str | list[str]]] | None

class RecordsFilterSpec(TypedDict):
    """`EventRecordsFilter` flattened; timestamps as stock's naive-UTC SQL text."""

    event_type: str
    asset_key: str | None
    partitions: list[str] | None
    after_wipe: str | None
    before_id: int | None
    after_id: int | None
    before_timestamp: str | None
    after_timestamp: str | None
    storage_ids: list[int] | None

class EffectSpec(TypedDict):
    """What a mirrored event writes to the index besides its row (see storage/event_rows.py)."""

    kind: Literal["none", "asset", "check_planned", "check_evaluation"]
    tags: list[tuple[str, str]] | None
    entry: Literal["materialization", "planned", "observation", "nothing"] | None
    asset_key: str | None
    check_name: str | None
    partitions: list[str | None] | None
    passed: bool | None
    partition: str | None
    materialization_storage_id: int | None

class EventRowSpec(TypedDict):
    """An event's row: the shard columns, whether it is mirrored to the index, its effect."""

    run_id: str
    event: str
    dagster_event_type: str | None
    timestamp: str
    step_key: str | None
    asset_key: str | None
    partition: str | None
    mirror: bool
    effect: EffectSpec

class RunRecordRow(TypedDict):
    """A run's record as stored; `body` None when the row holds none (Python reports it)."""

    storage_id: int
    run_id: str
    body: str | None
    status: str
    create_timestamp: str
    update_timestamp: str
    start_time: float | None
    end_time: float | None

class RunIndexesSpec(TypedDict):
    """The indexes of a `runs.db` by the role each plays in run queries, from the file's own
    indexes (None where it has none for the role; the strategies that need it are not taken)."""

    run_id: str | None
    tag: str | None
    tag_covering: bool
    run_tags: str | None
    status: str | None
    range: str | None
    job: str | None
    backfill: str | None

class PartitionRunRow(TypedDict):
    """The newest run of one partition."""

    run_id: str
    partition: str
    status: str
    start_time: float | None
    end_time: float | None

class RunQuerySpec(TypedDict):
    """A run list query: filter, cursor, limit (None: all), order column, direction, buckets."""

    filters: RunsFilterSpec
    cursor: str | None
    limit: int | None
    order_by: str | None
    ascending: bool
    bucket: BucketSpec | None

class TagChangesSpec(TypedDict):
    """Tag rows to update in place and to insert (stock decides which from the run's body)."""

    update: list[tuple[str, str]]
    insert: list[tuple[str, str]]

class StatusUpdateSpec(TypedDict):
    body: str
    status: str
    update_timestamp: str
    start_time: float | None
    end_time: float | None
    tags: TagChangesSpec

class TagsUpdateSpec(TypedDict):
    body: str
    partition: str | None
    partition_set: str | None
    update_timestamp: str
    tags: TagChangesSpec

class NewBackfillSpec(TypedDict):
    key: str
    status: str
    timestamp: str
    body: str
    selector_id: str | None
    action_type: str | None
    job_name: str | None
    tags: list[tuple[str, str]]

@final
class DagsterInstance:
    """The native core of one storage root: says where each domain's store is (stock's layout
    under the root, the files a storage names, or PostgreSQL databases) and hands out the
    domains' stores, shared per location across the process. A store in PostgreSQL raises
    `DagsterRsStorageError` until that backend is integrated."""

    def __new__(
        cls,
        storage_root: str,
        durability: Durability = "full",
        *,
        runs_db: str | None = None,
        event_log_dir: str | None = None,
        schedules_db: str | None = None,
        postgres_url: str | None = None,
        postgres_schedules_url: str | None = None,
        pool_size: int | None = None,
    ) -> Self: ...
    @property
    def durability(self) -> str: ...
    @property
    def runs_db(self) -> Path | None: ...
    @property
    def event_log_dir(self) -> Path | None: ...
    @property
    def locations(self) -> list[tuple[str, str]]: ...
    @property
    def pool_size(self) -> int | None: ...
    @property
    def runs(self) -> RunStore: ...
    @property
    def events(self) -> EventStore: ...
    @property
    def assets(self) -> AssetStore: ...
    @property
    def storage(self) -> StorageStore: ...
    @property
    def config(self) -> ConfigStore: ...
    @property
    def schedules_db(self) -> Path | None: ...
    @property
    def schedules(self) -> ScheduleStore: ...
    @property
    def run_launcher(self) -> RunLauncherStore: ...
    def dispose(self) -> None: ...
    def reload_layouts(self) -> None: ...

class AssetFilterSpec(TypedDict):
    """Which `asset_keys` rows a key read selects: keys (None: all), a `LIKE` prefix, the key
    after which to start, a limit."""

    keys: list[str] | None
    prefix: str | None
    cursor: str | None
    limit: int | None

class PartitionEventsSpec(TypedDict):
    """One asset's events of some types for the partition reads: the partitions (None: all;
    empty: none), storage-id bounds, and the asset's last wipe (naive-UTC text) after which
    events count."""

    asset_key: str
    event_types: list[str]
    partitions: list[str] | None
    before_id: int | None
    after_id: int | None
    after_wipe: str | None

class SummaryFilterSpec(TypedDict):
    """The asset events `get_asset_event_summary_records` selects (asset None: any asset)."""

    event_type: str
    asset_key: str | None
    after_wipe: str | None
    run_id: str | None
    storage_ids: list[int] | None
    after_id: int | None
    before_id: int | None
    limit: int | None
    ascending: bool

class AssetRowSpec(TypedDict):
    """A row of `asset_keys` as stock's `_fetch_asset_rows` projects it (key reads fill only
    `asset_key`)."""

    id: int | None
    asset_key: str
    last_materialization: str | None
    last_run_id: str | None
    asset_details: str | None
    cached_status_data: str | None

class PartitionFilterSpec(TypedDict):
    """Stock's `PartitionKeyFilter`: `key` None selects unpartitioned check executions."""

    key: str | None

class CheckHistorySpec(TypedDict):
    """A page of one check's executions, newest first: `id < cursor` and `execution_status IN
    statuses` when given; the limit is always applied."""

    asset_key: str
    check_name: str
    partition_filter: PartitionFilterSpec | None
    cursor: int | None
    statuses: list[str] | None
    limit: int

class LatestChecksSpec(TypedDict):
    """The latest execution of each (asset key, check name) of the two lists' cross product."""

    asset_keys: list[str]
    check_names: list[str]
    partition_filter: PartitionFilterSpec | None

class CheckPartitionSpec(TypedDict):
    """The latest evaluated execution of one check per partition, with the latest
    materialization of the partition after the asset's wipe (naive-UTC text)."""

    asset_key: str
    check_name: str
    partition_keys: list[str | int | float | None] | None
    after_storage_id: int | None
    wiped: str | None

class CheckExecutionRowSpec(TypedDict):
    """A row of `asset_check_executions` as stock projects it (`asset_key` and `check_name` only
    in latest reads)."""

    id: int
    asset_key: str | None
    check_name: str | None
    run_id: str | None
    execution_status: str | None
    evaluation_event: str | None
    create_timestamp: str | None
    partition: str | None

class CheckPartitionRowSpec(TypedDict):
    """A row of stock's asset-check partition-info statement."""

    id: int
    partition: str | None
    execution_status: str | None
    evaluation_event_storage_id: int | None
    materialization_event_storage_id: int | None
    run_id: str | None
    latest_materialization_storage_id: int | None

@final
class AssetStore:
    """The assets domain's store over one event log directory (its index shard)."""

    @property
    def directory(self) -> Path: ...
    def has_secondary_index(self, name: str) -> bool: ...
    def table_columns(self, table: str) -> list[str]: ...
    def asset_rows(self, filter: AssetFilterSpec, key_only: bool = False) -> list[AssetRowSpec]: ...
    def asset_details(self, keys: list[str]) -> list[tuple[str, str | None]]: ...
    def latest_materializations(
        self, keys: list[tuple[str, str | None]]
    ) -> list[tuple[str, int, str]]: ...
    def event_records(
        self, filter: RecordsFilterSpec, limit: int | None, ascending: bool
    ) -> list[tuple[int, str]]: ...
    def latest_ids_by_partition(self, spec: PartitionEventsSpec) -> list[tuple[str, int]]: ...
    def materialized_partitions(self, spec: PartitionEventsSpec) -> list[str]: ...
    def latest_tags_by_partition(
        self, spec: PartitionEventsSpec, tag_keys: list[str]
    ) -> list[tuple[str, str, str]]: ...
    def attempts_without_materializations(
        self, spec: PartitionEventsSpec
    ) -> list[tuple[str, str, int]]: ...
    def partition_data_versions(
        self,
        asset_key: str,
        partitions: list[str],
        before_id: int | None = None,
        after_id: int | None = None,
    ) -> list[tuple[str, str | None]]: ...
    def set_cached_status(self, asset_key: str, value: str | None) -> None: ...
    def event_tags(
        self,
        asset_key: str,
        filter_tags: list[tuple[str, str | list[str]]],
        after_wipe: str | None = None,
        event_id: int | None = None,
    ) -> list[tuple[str, str, int]]: ...
    def summary_records(
        self, filter: SummaryFilterSpec
    ) -> list[tuple[int, str, str, str | None, str]]: ...
    def asset_partitions_for_run(
        self, run_id: str, event_types: list[str]
    ) -> list[tuple[str, str | None]]: ...
    def freshness_states(self, keys: list[str]) -> list[str]: ...
    def wipe_asset(self, asset_key: str, details: str, wipe_timestamp: str) -> None: ...
    def query_plans(self) -> list[tuple[str, str, list[str]]]: ...
    def check_history(self, read: CheckHistorySpec) -> list[CheckExecutionRowSpec]: ...
    def latest_check_executions(self, read: LatestChecksSpec) -> list[CheckExecutionRowSpec]: ...
    def check_partition_rows(self, read: CheckPartitionSpec) -> list[CheckPartitionRowSpec]: ...
    def check_query_plans(
        self,
        history: CheckHistorySpec | None = None,
        latest: LatestChecksSpec | None = None,
        partition_info: CheckPartitionSpec | None = None,
    ) -> list[tuple[str, str, list[str]]]: ...

# A value bound as Python's `sqlite3` binds it (partition keys and definition names are stored
# unchecked, as stock stores them); others raise `sqlalchemy.exc.ProgrammingError`.
Bindable = str | int | float | bytes | bytearray | None
# A value as stored: TEXT affinity turns numbers into text, bytes stay a blob.
Stored = str | int | float | bytes | None

class TablesSpec(TypedDict):
    """Which of the storage domain's tables the index has (all of them at the head revision)."""

    dynamic_partitions: bool
    concurrency_slots: bool
    concurrency_limits: bool
    pending_steps: bool
    pool_default_column: bool

class QueryPlanSpec(TypedDict):
    """A statement of the domain by name, and SQLite's `EXPLAIN QUERY PLAN` detail lines."""

    statement: str
    plan: list[str]

class PartitionRowSpec(TypedDict):
    id: int
    partition: Stored

class ClaimRowSpec(TypedDict):
    """Where a step stands in a pool: its pending row (`pending`; the other fields are that
    row's, timestamps as stored) and whether it holds a slot."""

    claimed: bool
    pending: bool
    priority: int | None
    assigned_timestamp: str | None
    enqueued_timestamp: str | None

class SlotRowSpec(TypedDict):
    concurrency_key: str
    run_id: str | None
    step_key: str | None
    deleted: bool

class LimitRowSpec(TypedDict):
    concurrency_key: str
    limit: int
    using_default_limit: bool

class PendingRowSpec(TypedDict):
    concurrency_key: str
    run_id: str | None
    step_key: str | None
    assigned_timestamp: str | None
    create_timestamp: str | None
    priority: int | None

class PoolRowsSpec(TypedDict):
    """The rows of some pools, each list in the order stock's statements return them."""

    slots: list[SlotRowSpec]
    limits: list[LimitRowSpec]
    pending_steps: list[PendingRowSpec]

class FreedSpec(TypedDict):
    """What a free released: the pool of each slot freed, the pool of each assigned step taken
    off a queue (one waiting step admitted per entry), the pending rows removed."""

    slots: list[str]
    assigned: list[str]
    pending_steps: int

class AssetIndexRowSpec(TypedDict):
    asset_key: str | None
    asset_details: str | None
    last_materialization: str | None

class AssetIndexColumnsSpec(TypedDict):
    """The index columns of an asset row as the `asset_key_index_columns` migration writes them
    (timestamps as stock's naive UTC text)."""

    asset_key: str
    last_materialization: str | None
    last_materialization_timestamp: str | None
    wipe_timestamp: str | None

class HeartbeatSpec(TypedDict):
    """A daemon heartbeat as stored: its columns (timestamp as stock's DateTime text) and the
    serialized `DaemonHeartbeat`."""

    daemon_type: str
    daemon_id: str | None
    timestamp: str
    body: str

@final
class ConfigStore:
    """The config domain (`runs.db`: daemon heartbeats, the kvs of daemon cursors, the run
    storage's id), on the runs domain's store of the file."""

    @property
    def path(self) -> str: ...
    def query_plans(self) -> list[QueryPlanSpec]: ...
    def add_heartbeat(self, heartbeat: HeartbeatSpec) -> None: ...
    def heartbeats(self) -> list[str | None]: ...
    def wipe_heartbeats(self) -> None: ...
    def cursor_values(self, keys: list[str]) -> list[tuple[str, str | None]]: ...
    def set_cursor_values(self, pairs: list[tuple[str, str]]) -> None: ...
    def run_storage_id(self, new_id: str) -> str | None: ...

@final
class StorageStore:
    """The storage domain's store (dynamic partitions, concurrency pools, storage admin) over
    one event log: a directory (its index shard) or a PostgreSQL database. Every operation that
    writes is one transaction."""

    @property
    def directory(self) -> Path | None: ...
    @property
    def location(self) -> str: ...
    def tables(self) -> TablesSpec: ...
    def query_plans(self) -> list[QueryPlanSpec]: ...
    # dynamic partitions
    def partitions(self, name: Bindable) -> list[Stored]: ...
    def partition_page(
        self, name: Bindable, cursor: int | None, ascending: bool, limit: int
    ) -> list[PartitionRowSpec]: ...
    def has_partition(self, name: Bindable, key: Bindable) -> bool: ...
    def existing_partitions(self, name: Bindable, keys: Sequence[Bindable]) -> list[Stored]: ...
    def add_partitions(self, name: Bindable, keys: Sequence[Bindable]) -> int: ...
    def delete_partition(self, name: Bindable, key: Bindable) -> None: ...
    # concurrency pools
    def reconcile_limits(self) -> None: ...
    def set_slots(self, key: str, num: int) -> None: ...
    def delete_limit(self, key: str) -> None: ...
    def initialize_to_default(self, key: str, default: int | None) -> None: ...
    def upsert_limit(self, key: str, num: int) -> None: ...
    def allocate_slots(self, key: str, num: int) -> int: ...
    def concurrency_keys(self) -> list[str]: ...
    def pool_limits(self) -> list[LimitRowSpec]: ...
    def pool_rows(self, keys: Sequence[str]) -> PoolRowsSpec: ...
    def claim(
        self, key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> ClaimRowSpec: ...
    def check_claim(self, key: str, run_id: str, step_key: str) -> ClaimRowSpec: ...
    def free(self, run_id: str, step_key: str | None = None) -> FreedSpec: ...
    def release_slots(self, run_id: str, step_key: str | None = None) -> list[str]: ...
    def remove_pending(self, run_id: str, step_key: str | None = None) -> list[str]: ...
    def assign_pending(self, keys: Sequence[str]) -> int: ...
    def add_pending(
        self,
        key: str,
        run_id: str,
        step_key: str,
        priority: int | None = None,
        assign: bool = False,
    ) -> None: ...
    def take_slot(self, key: str, run_id: str, step_key: str) -> bool: ...
    def has_pending(self, key: str, run_id: str, step_key: str) -> bool: ...
    def pending_assigned(self, key: str, run_id: str, step_key: str) -> bool | None: ...
    def has_unassigned_slots(self, key: str) -> bool: ...
    def pool_run_ids(self) -> list[str | None]: ...
    def run_in_pools(self, run_id: str) -> bool: ...
    def has_rows(self, table: str) -> bool: ...
    # storage admin
    def revision(self) -> str | None: ...
    def index_done(self, name: str) -> bool: ...
    def mark_index_done(self, name: str) -> None: ...
    def event_asset_keys(self) -> list[str]: ...
    def add_asset_keys(self, keys: Sequence[str]) -> int: ...
    def asset_index_rows(self) -> list[AssetIndexRowSpec]: ...
    def latest_asset_event(self, key: str) -> str | None: ...
    def set_index_columns(self, rows: Sequence[AssetIndexColumnsSpec]) -> None: ...

@final
class RunStore:
    """Dagster's run storage (`history/runs.db`) in its own SQLite schema."""

    def __new__(cls, db_path: str, durability: Durability = "full") -> Self: ...
    @property
    def path(self) -> str: ...
    def add_run(self, run: NewRunSpec) -> None: ...
    def add_runs(self, runs: list[NewRunSpec]) -> None: ...
    def set_planner(
        self, mode: Literal["auto", "drive", "walk", "scan"] = "auto", small: int | None = None
    ) -> None: ...
    def query_plans(
        self,
        filters: RunsFilterSpec,
        limit: int | None,
        ascending: bool = False,
        cursor: bool = False,
    ) -> list[tuple[str, str, list[str]]]: ...
    def other_query_plans(self) -> list[tuple[str, str, list[str]]]: ...
    def run_indexes(self) -> RunIndexesSpec: ...
    def last_strategy(self) -> str: ...
    def reload_layout(self) -> None: ...
    def run_records(self, query: RunQuerySpec) -> list[RunRecordRow]: ...
    def run_bodies(self, query: RunQuerySpec) -> list[tuple[str, str | None, str]]: ...
    def run_ids(self, query: RunQuerySpec) -> list[str]: ...
    def runs_count(self, filters: RunsFilterSpec) -> int: ...
    def run_by_id(self, run_id: str) -> tuple[str | None, str] | None: ...
    def has_run(self, run_id: str) -> bool: ...
    def update_run_status(self, run_id: str, update: StatusUpdateSpec) -> None: ...
    def update_run_tags(self, run_id: str, update: TagsUpdateSpec) -> None: ...
    def replace_run_body(self, run_id: str, body: str, tags: list[tuple[str, str]]) -> None: ...
    def delete_run(self, run_id: str) -> None: ...
    def run_group_rows(self, root_run_id: str) -> list[tuple[str, str | None, str | None]]: ...
    def run_tags(
        self, keys: list[str], value_prefix: str | None, limit: int | None
    ) -> list[tuple[str, str]]: ...
    def run_tag_keys(self) -> list[str]: ...
    def partition_data(self, filters: RunsFilterSpec) -> list[PartitionRunRow]: ...
    def has_snapshot(self, snapshot_id: str) -> bool: ...
    def add_snapshot(self, snapshot_id: str, body: bytes, snapshot_type: str) -> None: ...
    def get_snapshot(self, snapshot_id: str) -> bytes | None: ...
    def add_backfill(self, backfill: NewBackfillSpec) -> None: ...
    def update_backfill(self, key: str, status: str, body: str) -> bool: ...
    def get_backfill(self, key: str) -> str | None: ...
    def backfills(
        self, filters: BackfillFilterSpec | None, cursor: str | None, limit: int | None
    ) -> list[str]: ...
    def backfills_count(self, filters: BackfillFilterSpec | None) -> int: ...
    def connect(self) -> DbapiConnection: ...
    def has_built_index(self, name: str) -> bool: ...
    def mark_index_built(self, name: str) -> None: ...
    def alembic_version(self) -> tuple[str | None, str]: ...
    def wipe(self) -> None: ...
    def dispose(self) -> None: ...

@final
class EventStore:
    """Dagster's event log (`history/runs/`: index shard + one shard per run), stock's schema."""

    def __new__(cls, directory: str, durability: Durability = "full") -> Self: ...
    def store_events(self, rows: list[EventRowSpec]) -> list[int | None]: ...
    def records_for_run(
        self,
        run_id: str,
        cursor: tuple[Literal["storage_id", "offset"], int] | None,
        types: list[str],
        limit: int | None,
        ascending: bool,
    ) -> list[tuple[int, str]]: ...
    def stats_for_run(self, run_id: str, types: list[str]) -> list[tuple[str, int, str]]: ...
    def step_events_for_run(
        self, run_id: str, types: list[str], step_keys: list[str]
    ) -> list[str]: ...
    def index_events_after(
        self, after_id: int, types: list[str], limit: int | None
    ) -> list[tuple[int, str]]: ...
    def max_record_id(self) -> int | None: ...
    def delete_events(self, run_id: str) -> None: ...
    def ensure_index(self) -> None: ...
    def index_records(
        self, filter: RecordsFilterSpec, limit: int | None, ascending: bool
    ) -> list[tuple[int, str]]: ...
    def shard_records(
        self, run_id: str, filter: RecordsFilterSpec, limit: int | None, ascending: bool
    ) -> list[tuple[int, str]]: ...
    def connect(self, shard: str) -> DbapiConnection: ...
    def run_ids_on_disk(self) -> list[str]: ...
    def wipe(self) -> None: ...
    def watch(
        self, run_id: str, cursor: int, handler: Callable[[list[tuple[int, str]]], object]
    ) -> int: ...
    def end_watch(self, token: int) -> bool: ...
    def watch_count(self) -> int: ...
    def dispose(self) -> None: ...
    def reload_layouts(self) -> None: ...

@final
class Serdes:
    """Dagster's serdes natively, over its `WhitelistMap`: `serialize_value`'s text and
    `deserialize_value`'s objects; `ValueError` leaves a value to stock's own functions."""

    def __new__(cls, whitelist_map: object) -> Self: ...
    def serialize(self, value: object) -> str: ...
    def deserialize(self, text: str) -> object: ...

@final
class DbapiConnection:
    """A DB-API 2.0 connection over the core's pooled SQLite connection to one shard."""

    def cursor(self) -> Cursor: ...
    def execute(self, sql: str, parameters: Sequence[object] | None = None) -> Cursor: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...
    @property
    def in_transaction(self) -> bool: ...
    @property
    def isolation_level(self) -> str | None: ...
    @isolation_level.setter
    def isolation_level(self, level: str | None) -> None: ...
    @property
    def path(self) -> str | None: ...
    def create_function(
        self, name: str, narg: int, func: Callable[..., object], *, deterministic: bool = False
    ) -> None: ...

@final
class Cursor:
    """A DB-API 2.0 cursor; a statement's rows are read in full when it runs."""

    def execute(self, sql: str, parameters: Sequence[object] | None = None) -> Self: ...
    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[object]]) -> Self: ...
    def fetchone(self) -> tuple[object, ...] | None: ...
    def fetchmany(self, size: int | None = None) -> list[tuple[object, ...]]: ...
    def fetchall(self) -> list[tuple[object, ...]]: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> tuple[object, ...] | None: ...
    def close(self) -> None: ...
    @property
    def description(self) -> tuple[tuple[str, None, None, None, None, None, None], ...] | None: ...
    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> int | None: ...
    @property
    def arraysize(self) -> int: ...
    @property
    def connection(self) -> DbapiConnection: ...

# -- the scheduling domain ----------------------------------------------------------------------

class ScheduleLayoutSpec(TypedDict):
    """Which of stock's optional tables `schedules.db` has."""

    instigators: bool
    evaluations: bool
    secondary_indexes: bool

class StateRowSpec(TypedDict):
    """An `InstigatorState`'s columns as stock derives them, and its serdes body."""

    origin_id: str
    selector_id: str
    repository_origin_id: str
    repository_selector_id: str
    status: str
    instigator_type: str
    body: str

class TickRowSpec(TypedDict):
    """A `TickData`'s columns (timestamp as stock's naive UTC text; selector_id None when
    stock leaves the column NULL) and its serdes body."""

    origin_id: str
    selector_id: str | None
    status: str
    instigator_type: str
    timestamp: str
    body: str

class StoredTickSpec(TypedDict):
    id: int
    body: str

class TickSummarySpec(TypedDict):
    id: int
    origin_id: str | None
    instigator_type: str | None
    status: str | None
    timestamp: str | None

class BatchTickSpec(TypedDict):
    id: int
    selector_id: str
    body: str

class EvaluationInputSpec(TypedDict):
    asset_key: str
    body: str
    num_requested: int | None

class StoredEvaluationSpec(TypedDict):
    id: int
    body: str | None
    evaluation_id: int | None
    create_timestamp: str | None
    asset_key: str | None

class JobMigrationRowSpec(TypedDict):
    id: int
    body: str | None
    create_timestamp: str | None
    update_timestamp: str | None

class InstigatorBackfillSpec(TypedDict):
    """What stock's selector-id migration writes for one `jobs` row."""

    job_id: int
    selector_id: str
    repository_selector_id: str
    status: str
    instigator_type: str
    body: str
    create_timestamp: str | None
    update_timestamp: str | None

class TickSelectorSpec(TypedDict):
    origin_id: str
    selector_id: str

@final
class ScheduleStore:
    """Dagster's schedule storage (`schedules/schedules.db`) in stock's schema. Every method
    that writes is one transaction, its checks included."""

    @property
    def path(self) -> str: ...
    def layout(self) -> ScheduleLayoutSpec: ...
    def query_plans(self) -> list[QueryPlanSpec]: ...
    def reload_layout(self) -> None: ...
    # instigator state
    def instigator_states(
        self,
        repository_origin_id: str | None = None,
        repository_selector_id: str | None = None,
        instigator_type: str | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[str]: ...
    def instigator_state(self, origin_id: str, selector_id: str) -> str | None: ...
    def add_instigator_state(self, state: StateRowSpec, now: str) -> None: ...
    def update_instigator_state(self, state: StateRowSpec, now: str) -> None: ...
    def delete_instigator_state(self, origin_id: str, selector_id: str) -> None: ...
    # ticks
    def tick(self, tick_id: int) -> StoredTickSpec: ...
    def ticks_by_ids(self, tick_ids: Sequence[int]) -> list[StoredTickSpec]: ...
    def ticks(
        self,
        origin_id: str,
        selector_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        limit: int | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[StoredTickSpec]: ...
    def tick_summaries(
        self,
        origin_id: str,
        selector_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        limit: int | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[TickSummarySpec]: ...
    def batch_ticks(
        self,
        selector_ids: Sequence[str],
        limit: int | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[BatchTickSpec]: ...
    def create_tick(self, tick: TickRowSpec) -> int: ...
    def update_tick(self, tick_id: int, tick: TickRowSpec) -> None: ...
    def purge_ticks(
        self,
        origin_id: str,
        selector_id: str,
        before: str,
        statuses: Sequence[str] | None = None,
    ) -> int: ...
    # declarative automation evaluations
    def add_evaluations(
        self, evaluation_id: int, evaluations: Sequence[EvaluationInputSpec]
    ) -> None: ...
    def evaluations(
        self, asset_key: str, limit: int | None, cursor: int | None = None
    ) -> list[StoredEvaluationSpec]: ...
    def evaluations_of(self, evaluation_id: int) -> list[StoredEvaluationSpec]: ...
    def purge_evaluations(self, before: str) -> int: ...
    # admin
    def wipe(self) -> None: ...
    def revision(self) -> str | None: ...
    def index_done(self, name: str) -> bool: ...
    def mark_index_done(self, name: str) -> None: ...
    def jobs_for_migration(self) -> list[JobMigrationRowSpec]: ...
    def backfill_instigators(self, rows: Sequence[InstigatorBackfillSpec]) -> None: ...
    def set_tick_selectors(self, selectors: Sequence[TickSelectorSpec]) -> None: ...
    def dispose(self) -> None: ...

@final
class LaunchRunRow:
    """A run's row after a run_launcher step: what the run storage builds its `DagsterRun`
    from."""

    @property
    def body(self) -> str: ...
    @property
    def status(self) -> str: ...

@final
class RunLauncherStore:
    """The run_launcher domain: its event-log read and the steps of launch_run / resume_run and
    of a failed submit, launch or resume (events + run transition, byte for byte stock's)."""

    def count_engine_messages(self, run_id: str, message: str) -> int | None: ...
    def launch(self, run_id: str, timestamp: float) -> LaunchRunRow | None: ...
    def resume(self, run_id: str, timestamp: float, marker: str) -> LaunchRunRow | None: ...
    def fail(
        self, run_id: str, job_name: str, timestamp: float, message: str, error: str
    ) -> bool: ...
    @staticmethod
    def event_body(
        kind: str,
        run_id: str,
        job_name: str,
        timestamp: float,
        message: str | None = None,
        error: str | None = None,
    ) -> str: ...
    @staticmethod
    def run_body_with_status(body: str, status: str) -> str | None: ...
    @staticmethod
    def timestamp_columns(timestamp: float) -> tuple[str, float]: ...
    def query_plans(self, run_id: str) -> list[QueryPlanSpec]: ...
    def run_plans(self) -> list[QueryPlanSpec]: ...
