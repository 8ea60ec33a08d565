//! Stock dagster 1.13.27's `runs.db` schema, statement for statement as SQLAlchemy emits it.
//!
//! Generated from a file stock Dagster created, so that `sqlite_master` of a file dagster-rs
//! creates is identical to stock's (same text, same order).

pub const RUNS_DDL: &[&str] = &[
    // table secondary_indexes
    r#"CREATE TABLE secondary_indexes (
	id INTEGER NOT NULL, 
	name VARCHAR(512), 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	migration_completed DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (name)
)"#,
    // table snapshots
    r#"CREATE TABLE snapshots (
	id INTEGER NOT NULL, 
	snapshot_id VARCHAR(255) NOT NULL, 
	snapshot_body BLOB NOT NULL, 
	snapshot_type VARCHAR(63) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (snapshot_id)
)"#,
    // table daemon_heartbeats
    r#"CREATE TABLE daemon_heartbeats (
	id INTEGER NOT NULL, 
	daemon_type VARCHAR(255) NOT NULL, 
	daemon_id VARCHAR(255), 
	timestamp TIMESTAMP NOT NULL, 
	body TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (daemon_type)
)"#,
    // table bulk_actions
    r#"CREATE TABLE bulk_actions (
	id INTEGER NOT NULL, 
	"key" VARCHAR(32) NOT NULL, 
	status VARCHAR(255) NOT NULL, 
	timestamp TIMESTAMP NOT NULL, 
	body TEXT, 
	action_type VARCHAR(32), 
	selector_id TEXT, 
	job_name TEXT, 
	PRIMARY KEY (id), 
	UNIQUE ("key")
)"#,
    // index idx_bulk_actions
    r#"CREATE INDEX idx_bulk_actions ON bulk_actions ("key")"#,
    // index idx_bulk_actions_status
    r#"CREATE INDEX idx_bulk_actions_status ON bulk_actions (status)"#,
    // index idx_bulk_actions_action_type
    r#"CREATE INDEX idx_bulk_actions_action_type ON bulk_actions (action_type)"#,
    // index idx_bulk_actions_selector_id
    r#"CREATE INDEX idx_bulk_actions_selector_id ON bulk_actions (selector_id)"#,
    // table backfill_tags
    r#"CREATE TABLE backfill_tags (
	id INTEGER NOT NULL, 
	backfill_id VARCHAR(255), 
	"key" TEXT, 
	value TEXT, 
	PRIMARY KEY (id)
)"#,
    // index idx_backfill_tags_backfill_id
    r#"CREATE INDEX idx_backfill_tags_backfill_id ON backfill_tags (backfill_id, id)"#,
    // table instance_info
    r#"CREATE TABLE instance_info (
	id INTEGER NOT NULL, 
	run_storage_id TEXT, 
	PRIMARY KEY (id)
)"#,
    // table kvs
    r#"CREATE TABLE kvs (
	id INTEGER NOT NULL, 
	"key" TEXT NOT NULL, 
	value TEXT, 
	PRIMARY KEY (id)
)"#,
    // index idx_kvs_keys_unique
    r#"CREATE UNIQUE INDEX idx_kvs_keys_unique ON kvs ("key")"#,
    // table runs
    r#"CREATE TABLE runs (
	id INTEGER NOT NULL, 
	run_id VARCHAR(255), 
	snapshot_id VARCHAR(255), 
	pipeline_name TEXT, 
	mode TEXT, 
	status VARCHAR(63), 
	run_body TEXT, 
	partition TEXT, 
	partition_set TEXT, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	update_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	start_time FLOAT, 
	end_time FLOAT, 
	backfill_id VARCHAR(255), 
	PRIMARY KEY (id), 
	UNIQUE (run_id), 
	CONSTRAINT fk_runs_snapshot_id_snapshots_snapshot_id FOREIGN KEY(snapshot_id) REFERENCES snapshots (snapshot_id)
)"#,
    // index idx_runs_by_backfill_id
    r#"CREATE INDEX idx_runs_by_backfill_id ON runs (backfill_id, id)"#,
    // index idx_run_status
    r#"CREATE INDEX idx_run_status ON runs (status)"#,
    // index idx_runs_by_job
    r#"CREATE INDEX idx_runs_by_job ON runs (pipeline_name, id)"#,
    // index idx_run_range
    r#"CREATE INDEX idx_run_range ON runs (status, update_timestamp, create_timestamp)"#,
    // index idx_run_partitions
    r#"CREATE INDEX idx_run_partitions ON runs (partition_set, partition)"#,
    // table run_tags
    r#"CREATE TABLE run_tags (
	id INTEGER NOT NULL, 
	run_id VARCHAR(255), 
	"key" TEXT, 
	value TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_id) REFERENCES runs (run_id) ON DELETE CASCADE
)"#,
    // index idx_run_tags
    r#"CREATE INDEX idx_run_tags ON run_tags ("key", value)"#,
    // index idx_run_tags_run_idx
    r#"CREATE INDEX idx_run_tags_run_idx ON run_tags (run_id, id)"#,
    // table alembic_version
    r#"CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)"#,
];
