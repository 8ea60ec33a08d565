//! Stock dagster 1.13.27's `schedules/schedules.db` schema, statement for statement as SQLAlchemy
//! emits it (from a file stock created). Stock creates a table's indexes in an order that varies
//! from run to run (a Python set), so `sqlite_master` of two stock files differ in index order;
//! the text of every statement is stock's.

pub const SCHEDULES_DDL: &[&str] = &[
    // table jobs
    r#"CREATE TABLE jobs (
	id INTEGER NOT NULL, 
	job_origin_id VARCHAR(255), 
	selector_id VARCHAR(255), 
	repository_origin_id VARCHAR(255), 
	status VARCHAR(63), 
	job_type VARCHAR(63), 
	job_body TEXT, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	update_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	PRIMARY KEY (id), 
	UNIQUE (job_origin_id)
)"#,
    // index ix_jobs_job_type
    r#"CREATE INDEX ix_jobs_job_type ON jobs (job_type)"#,
    // table instigators
    r#"CREATE TABLE instigators (
	id INTEGER NOT NULL, 
	selector_id VARCHAR(255), 
	repository_selector_id VARCHAR(255), 
	status VARCHAR(63), 
	instigator_type VARCHAR(63), 
	instigator_body TEXT, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	update_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	PRIMARY KEY (id), 
	UNIQUE (selector_id)
)"#,
    // index ix_instigators_instigator_type
    r#"CREATE INDEX ix_instigators_instigator_type ON instigators (instigator_type)"#,
    // table job_ticks
    r#"CREATE TABLE job_ticks (
	id INTEGER NOT NULL, 
	job_origin_id VARCHAR(255), 
	selector_id VARCHAR(255), 
	status VARCHAR(63), 
	type VARCHAR(63), 
	timestamp TIMESTAMP, 
	tick_body TEXT, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	update_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	PRIMARY KEY (id)
)"#,
    // index ix_job_ticks_job_origin_id
    r#"CREATE INDEX ix_job_ticks_job_origin_id ON job_ticks (job_origin_id)"#,
    // index idx_job_tick_status
    r#"CREATE INDEX idx_job_tick_status ON job_ticks (job_origin_id, status)"#,
    // index idx_tick_selector_timestamp
    r#"CREATE INDEX idx_tick_selector_timestamp ON job_ticks (selector_id, timestamp)"#,
    // index idx_job_tick_timestamp
    r#"CREATE INDEX idx_job_tick_timestamp ON job_ticks (job_origin_id, timestamp)"#,
    // table asset_daemon_asset_evaluations
    r#"CREATE TABLE asset_daemon_asset_evaluations (
	id INTEGER NOT NULL, 
	evaluation_id INTEGER, 
	asset_key TEXT, 
	asset_evaluation_body TEXT, 
	num_requested INTEGER, 
	num_skipped INTEGER, 
	num_discarded INTEGER, 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	PRIMARY KEY (id)
)"#,
    // index idx_asset_daemon_asset_evaluations_asset_key_evaluation_id
    r#"CREATE UNIQUE INDEX idx_asset_daemon_asset_evaluations_asset_key_evaluation_id ON asset_daemon_asset_evaluations (asset_key, evaluation_id)"#,
    // index ix_asset_daemon_asset_evaluations_evaluation_id
    r#"CREATE INDEX ix_asset_daemon_asset_evaluations_evaluation_id ON asset_daemon_asset_evaluations (evaluation_id)"#,
    // table secondary_indexes
    r#"CREATE TABLE secondary_indexes (
	id INTEGER NOT NULL, 
	name VARCHAR(512), 
	create_timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, 
	migration_completed DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (name)
)"#,
    // table alembic_version
    r#"CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)"#,
];
