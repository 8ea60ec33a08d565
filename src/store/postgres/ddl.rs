//! The DDL stock dagster-postgres 0.29.27 (dagster 1.13.27) emits on an empty database,
//! statement for statement: each storage's `MetaData.create_all` (tables in SQLAlchemy's dependency
//! order, each followed by its indexes), compiled by SQLAlchemy's psycopg2 dialect. Generated with
//! `.venv-pg/bin/python` from the three metadata objects (recipe in ARCHITECTURE.md, "In-database
//! layout on PostgreSQL"); do not edit.

pub const RUNS_DDL: &[(&str, &[&str])] = &[
    (
        "backfill_tags",
        &[
            r#"CREATE TABLE backfill_tags (
    id BIGSERIAL NOT NULL,
    backfill_id VARCHAR(255),
    key TEXT,
    value TEXT,
    PRIMARY KEY (id)
)"#,
            r#"CREATE INDEX idx_backfill_tags_backfill_id ON backfill_tags (backfill_id, id)"#,
        ],
    ),
    (
        "bulk_actions",
        &[
            r#"CREATE TABLE bulk_actions (
    id BIGSERIAL NOT NULL,
    key VARCHAR(32) NOT NULL,
    status VARCHAR(255) NOT NULL,
    timestamp TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    body TEXT,
    action_type VARCHAR(32),
    selector_id TEXT,
    job_name TEXT,
    PRIMARY KEY (id),
    UNIQUE (key)
)"#,
            r#"CREATE INDEX idx_bulk_actions ON bulk_actions (key)"#,
            r#"CREATE INDEX idx_bulk_actions_action_type ON bulk_actions (action_type)"#,
            r#"CREATE INDEX idx_bulk_actions_selector_id ON bulk_actions (selector_id)"#,
            r#"CREATE INDEX idx_bulk_actions_status ON bulk_actions (status)"#,
        ],
    ),
    (
        "daemon_heartbeats",
        &[r#"CREATE TABLE daemon_heartbeats (
    id BIGSERIAL NOT NULL,
    daemon_type VARCHAR(255) NOT NULL,
    daemon_id VARCHAR(255),
    timestamp TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    body TEXT,
    PRIMARY KEY (id),
    UNIQUE (daemon_type)
)"#],
    ),
    (
        "instance_info",
        &[r#"CREATE TABLE instance_info (
    id BIGSERIAL NOT NULL,
    run_storage_id TEXT,
    PRIMARY KEY (id)
)"#],
    ),
    (
        "kvs",
        &[
            r#"CREATE TABLE kvs (
    id BIGSERIAL NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (id)
)"#,
            r#"CREATE UNIQUE INDEX idx_kvs_keys_unique ON kvs (key)"#,
        ],
    ),
    (
        "secondary_indexes",
        &[r#"CREATE TABLE secondary_indexes (
    id BIGSERIAL NOT NULL,
    name VARCHAR(512),
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    migration_completed TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (id),
    UNIQUE (name)
)"#],
    ),
    (
        "snapshots",
        &[r#"CREATE TABLE snapshots (
    id BIGSERIAL NOT NULL,
    snapshot_id VARCHAR(255) NOT NULL,
    snapshot_body BYTEA NOT NULL,
    snapshot_type VARCHAR(63) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (snapshot_id)
)"#],
    ),
    (
        "runs",
        &[
            r#"CREATE TABLE runs (
    id BIGSERIAL NOT NULL,
    run_id VARCHAR(255),
    snapshot_id VARCHAR(255),
    pipeline_name TEXT,
    mode TEXT,
    status VARCHAR(63),
    run_body TEXT,
    partition TEXT,
    partition_set TEXT,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    update_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    start_time FLOAT,
    end_time FLOAT,
    backfill_id VARCHAR(255),
    PRIMARY KEY (id),
    UNIQUE (run_id),
    CONSTRAINT fk_runs_snapshot_id_snapshots_snapshot_id FOREIGN KEY(snapshot_id) REFERENCES snapshots (snapshot_id)
)"#,
            r#"CREATE INDEX idx_run_partitions ON runs (partition_set, partition)"#,
            r#"CREATE INDEX idx_run_range ON runs (status, update_timestamp, create_timestamp)"#,
            r#"CREATE INDEX idx_run_status ON runs (status)"#,
            r#"CREATE INDEX idx_runs_by_backfill_id ON runs (backfill_id, id)"#,
            r#"CREATE INDEX idx_runs_by_job ON runs (pipeline_name, id)"#,
        ],
    ),
    (
        "run_tags",
        &[
            r#"CREATE TABLE run_tags (
    id BIGSERIAL NOT NULL,
    run_id VARCHAR(255),
    key TEXT,
    value TEXT,
    PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES runs (run_id) ON DELETE CASCADE
)"#,
            r#"CREATE INDEX idx_run_tags ON run_tags (key, value)"#,
            r#"CREATE INDEX idx_run_tags_run_idx ON run_tags (run_id, id)"#,
        ],
    ),
];

pub const EVENTS_DDL: &[(&str, &[&str])] = &[
    (
        "asset_check_executions",
        &[
            r#"CREATE TABLE asset_check_executions (
    id BIGSERIAL NOT NULL,
    asset_key TEXT,
    check_name TEXT,
    partition TEXT,
    run_id VARCHAR(255),
    execution_status VARCHAR(255),
    evaluation_event TEXT,
    evaluation_event_timestamp TIMESTAMP WITHOUT TIME ZONE,
    evaluation_event_storage_id BIGINT,
    materialization_event_storage_id BIGINT,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id)
)"#,
            r#"CREATE INDEX idx_asset_check_executions ON asset_check_executions (asset_key, check_name, materialization_event_storage_id, partition)"#,
            r#"CREATE UNIQUE INDEX idx_asset_check_executions_unique ON asset_check_executions (asset_key, check_name, run_id, partition)"#,
        ],
    ),
    (
        "asset_event_tags",
        &[
            r#"CREATE TABLE asset_event_tags (
    id BIGSERIAL NOT NULL,
    event_id BIGINT,
    asset_key TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    event_timestamp TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (id)
)"#,
            r#"CREATE INDEX idx_asset_event_tags ON asset_event_tags (asset_key, key, value)"#,
            r#"CREATE INDEX idx_asset_event_tags_event_id ON asset_event_tags (event_id)"#,
        ],
    ),
    (
        "asset_keys",
        &[r#"CREATE TABLE asset_keys (
    id BIGSERIAL NOT NULL,
    asset_key VARCHAR(512),
    last_materialization TEXT,
    last_run_id VARCHAR(255),
    asset_details TEXT,
    wipe_timestamp TIMESTAMP WITHOUT TIME ZONE,
    last_materialization_timestamp TIMESTAMP WITHOUT TIME ZONE,
    tags TEXT,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    cached_status_data TEXT,
    PRIMARY KEY (id),
    UNIQUE (asset_key)
)"#],
    ),
    (
        "concurrency_limits",
        &[r#"CREATE TABLE concurrency_limits (
    id BIGSERIAL NOT NULL,
    concurrency_key VARCHAR(512) NOT NULL,
    "limit" INTEGER NOT NULL,
    using_default_limit BOOLEAN DEFAULT false NOT NULL,
    update_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE (concurrency_key)
)"#],
    ),
    (
        "concurrency_slots",
        &[r#"CREATE TABLE concurrency_slots (
    id BIGSERIAL NOT NULL,
    concurrency_key TEXT NOT NULL,
    run_id TEXT,
    step_key TEXT,
    deleted BOOLEAN NOT NULL,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id)
)"#],
    ),
    (
        "dynamic_partitions",
        &[
            r#"CREATE TABLE dynamic_partitions (
    id BIGSERIAL NOT NULL,
    partitions_def_name TEXT NOT NULL,
    partition TEXT NOT NULL,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id)
)"#,
            r#"CREATE UNIQUE INDEX idx_dynamic_partitions ON dynamic_partitions (partitions_def_name, partition)"#,
        ],
    ),
    (
        "event_logs",
        &[
            r#"CREATE TABLE event_logs (
    id BIGSERIAL NOT NULL,
    run_id VARCHAR(255),
    event TEXT NOT NULL,
    dagster_event_type TEXT,
    timestamp TIMESTAMP WITHOUT TIME ZONE,
    step_key TEXT,
    asset_key TEXT,
    partition TEXT,
    PRIMARY KEY (id)
)"#,
            r#"CREATE INDEX idx_event_type ON event_logs (dagster_event_type, id)"#,
            r#"CREATE INDEX idx_events_by_asset ON event_logs (asset_key, dagster_event_type, id) WHERE asset_key IS NOT NULL"#,
            r#"CREATE INDEX idx_events_by_asset_partition ON event_logs (asset_key, dagster_event_type, partition, id) WHERE asset_key IS NOT NULL AND partition IS NOT NULL"#,
            r#"CREATE INDEX idx_events_by_run_id ON event_logs (run_id, id)"#,
            r#"CREATE INDEX idx_step_key ON event_logs (step_key)"#,
        ],
    ),
    (
        "pending_steps",
        &[
            r#"CREATE TABLE pending_steps (
    id BIGSERIAL NOT NULL,
    concurrency_key TEXT NOT NULL,
    run_id TEXT,
    step_key TEXT,
    priority INTEGER,
    assigned_timestamp TIMESTAMP WITHOUT TIME ZONE,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id)
)"#,
            r#"CREATE UNIQUE INDEX idx_pending_steps ON pending_steps (concurrency_key, run_id, step_key)"#,
        ],
    ),
    (
        "secondary_indexes",
        &[r#"CREATE TABLE secondary_indexes (
    id BIGSERIAL NOT NULL,
    name VARCHAR(512),
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    migration_completed TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (id),
    UNIQUE (name)
)"#],
    ),
];

pub const SCHEDULES_DDL: &[(&str, &[&str])] = &[
    (
        "asset_daemon_asset_evaluations",
        &[
            r#"CREATE TABLE asset_daemon_asset_evaluations (
    id BIGSERIAL NOT NULL,
    evaluation_id BIGINT,
    asset_key TEXT,
    asset_evaluation_body TEXT,
    num_requested INTEGER,
    num_skipped INTEGER,
    num_discarded INTEGER,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id)
)"#,
            r#"CREATE UNIQUE INDEX idx_asset_daemon_asset_evaluations_asset_key_evaluation_id ON asset_daemon_asset_evaluations (asset_key, evaluation_id)"#,
            r#"CREATE INDEX ix_asset_daemon_asset_evaluations_evaluation_id ON asset_daemon_asset_evaluations (evaluation_id)"#,
        ],
    ),
    (
        "instigators",
        &[
            r#"CREATE TABLE instigators (
    id BIGSERIAL NOT NULL,
    selector_id VARCHAR(255),
    repository_selector_id VARCHAR(255),
    status VARCHAR(63),
    instigator_type VARCHAR(63),
    instigator_body TEXT,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    update_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE (selector_id)
)"#,
            r#"CREATE INDEX ix_instigators_instigator_type ON instigators (instigator_type)"#,
        ],
    ),
    (
        "job_ticks",
        &[
            r#"CREATE TABLE job_ticks (
    id BIGSERIAL NOT NULL,
    job_origin_id VARCHAR(255),
    selector_id VARCHAR(255),
    status VARCHAR(63),
    type VARCHAR(63),
    timestamp TIMESTAMP WITHOUT TIME ZONE,
    tick_body TEXT,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    update_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id)
)"#,
            r#"CREATE INDEX idx_job_tick_status ON job_ticks (job_origin_id, status)"#,
            r#"CREATE INDEX idx_job_tick_timestamp ON job_ticks (job_origin_id, timestamp)"#,
            r#"CREATE INDEX idx_tick_selector_timestamp ON job_ticks (selector_id, timestamp)"#,
            r#"CREATE INDEX ix_job_ticks_job_origin_id ON job_ticks (job_origin_id)"#,
        ],
    ),
    (
        "jobs",
        &[
            r#"CREATE TABLE jobs (
    id BIGSERIAL NOT NULL,
    job_origin_id VARCHAR(255),
    selector_id VARCHAR(255),
    repository_origin_id VARCHAR(255),
    status VARCHAR(63),
    job_type VARCHAR(63),
    job_body TEXT,
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    update_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE (job_origin_id)
)"#,
            r#"CREATE INDEX ix_jobs_job_type ON jobs (job_type)"#,
        ],
    ),
    (
        "secondary_indexes",
        &[r#"CREATE TABLE secondary_indexes (
    id BIGSERIAL NOT NULL,
    name VARCHAR(512),
    create_timestamp TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    migration_completed TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (id),
    UNIQUE (name)
)"#],
    ),
];
