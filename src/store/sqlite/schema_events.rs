//! Stock dagster 1.13.27's event log schema, as SQLAlchemy emits it: every shard
//! (`history/runs/<run_id>.db`) and the index shard (`history/runs/index.db`) get all of it.
//!
//! Generated from files stock Dagster created, like `schema_runs.rs`.

pub const EVENTS_DDL: &[&str] = &[
    // table event_logs
    r#"CREATE TABLE event_logs (
	id INTEGER NOT NULL, 
	run_id VARCHAR(255), 
	event TEXT NOT NULL, 
	dagster_event_type TEXT, 
	timestamp TIMESTAMP, 
	step_key TEXT, 
	asset_key TEXT, 
	partition TEXT, 
	PRIMARY KEY (id)
)"#,
    // index idx_events_by_asset
    r#"CREATE INDEX idx_events_by_asset ON event_logs (asset_key, dagster_event_type, id)"#,
    // index idx_events_by_asset_partition
    r#"CREATE INDEX idx_events_by_asset_partition ON event_logs (asset_key, dagster_event_type, partition, id)"#,
    // index idx_step_key
    r#"CREATE INDEX idx_step_key ON event_logs (step_key)"#,
    // index idx_events_by_run_id
    r#"CREATE INDEX idx_events_by_run_id ON event_logs (run_id, id)"#,
    // index idx_event_type
    r#"CREATE INDEX idx_event_type ON event_logs (dagster_event_type, id)"#,
    // table secondary_indexes
    r#"CREATE TABLE secondary_indexes (
	id INTEGER NOT NULL, 
	name VARCHAR(512), 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	migration_completed DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (name)
)"#,
    // table asset_keys
    r#"CREATE TABLE asset_keys (
	id INTEGER NOT NULL, 
	asset_key VARCHAR(512), 
	last_materialization TEXT, 
	last_run_id VARCHAR(255), 
	asset_details TEXT, 
	wipe_timestamp TIMESTAMP, 
	last_materialization_timestamp TIMESTAMP, 
	tags TEXT, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	cached_status_data TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (asset_key)
)"#,
    // table asset_event_tags
    r#"CREATE TABLE asset_event_tags (
	id INTEGER NOT NULL, 
	event_id INTEGER, 
	asset_key TEXT NOT NULL, 
	"key" TEXT NOT NULL, 
	value TEXT, 
	event_timestamp TIMESTAMP, 
	PRIMARY KEY (id)
)"#,
    // index idx_asset_event_tags
    r#"CREATE INDEX idx_asset_event_tags ON asset_event_tags (asset_key, "key", value)"#,
    // index idx_asset_event_tags_event_id
    r#"CREATE INDEX idx_asset_event_tags_event_id ON asset_event_tags (event_id)"#,
    // table dynamic_partitions
    r#"CREATE TABLE dynamic_partitions (
	id INTEGER NOT NULL, 
	partitions_def_name TEXT NOT NULL, 
	partition TEXT NOT NULL, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	PRIMARY KEY (id)
)"#,
    // index idx_dynamic_partitions
    r#"CREATE UNIQUE INDEX idx_dynamic_partitions ON dynamic_partitions (partitions_def_name, partition)"#,
    // table concurrency_limits
    r#"CREATE TABLE concurrency_limits (
	id INTEGER NOT NULL, 
	concurrency_key VARCHAR(512) NOT NULL, 
	"limit" INTEGER NOT NULL, 
	using_default_limit BOOLEAN DEFAULT 0 NOT NULL, 
	update_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	PRIMARY KEY (id), 
	UNIQUE (concurrency_key)
)"#,
    // table concurrency_slots
    r#"CREATE TABLE concurrency_slots (
	id INTEGER NOT NULL, 
	concurrency_key TEXT NOT NULL, 
	run_id TEXT, 
	step_key TEXT, 
	deleted BOOLEAN NOT NULL, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	PRIMARY KEY (id)
)"#,
    // table pending_steps
    r#"CREATE TABLE pending_steps (
	id INTEGER NOT NULL, 
	concurrency_key TEXT NOT NULL, 
	run_id TEXT, 
	step_key TEXT, 
	priority INTEGER, 
	assigned_timestamp DATETIME, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	PRIMARY KEY (id)
)"#,
    // index idx_pending_steps
    r#"CREATE UNIQUE INDEX idx_pending_steps ON pending_steps (concurrency_key, run_id, step_key)"#,
    // table asset_check_executions
    r#"CREATE TABLE asset_check_executions (
	id INTEGER NOT NULL, 
	asset_key TEXT, 
	check_name TEXT, 
	partition TEXT, 
	run_id VARCHAR(255), 
	execution_status VARCHAR(255), 
	evaluation_event TEXT, 
	evaluation_event_timestamp DATETIME, 
	evaluation_event_storage_id INTEGER, 
	materialization_event_storage_id INTEGER, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	PRIMARY KEY (id)
)"#,
    // index idx_asset_check_executions_unique
    r#"CREATE UNIQUE INDEX idx_asset_check_executions_unique ON asset_check_executions (asset_key, check_name, run_id, partition)"#,
    // index idx_asset_check_executions
    r#"CREATE INDEX idx_asset_check_executions ON asset_check_executions (asset_key, check_name, materialization_event_storage_id, partition)"#,
    // table alembic_version
    r#"CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)"#,
];
