//! Stock dagster-postgres's schema: created on an empty database as its storages' constructors
//! create it, judged (alembic revision, what is missing) and described (index layouts, id
//! widths) from pg_catalog.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ddl::{EVENTS_DDL, RUNS_DDL, SCHEDULES_DDL};
use super::{write_key, Conn, Db};
use crate::errors::StoreError;
use crate::store::schema::{HEAD_REVISION, OLDER_REVISIONS};
use crate::store::Value;

/// The storage kinds dagster-postgres creates tables for, each with its own metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Runs,
    EventLog,
    Schedules,
}

/// What alembic's `stamp` creates.
const ALEMBIC_VERSION_DDL: &str =
    "CREATE TABLE alembic_version (\n    version_num VARCHAR(32) NOT \
     NULL,\n    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)";

impl Storage {
    pub const ALL: [Storage; 3] = [Storage::Runs, Storage::EventLog, Storage::Schedules];

    /// Its tables in creation order, each with its statements (the table, then its indexes).
    pub fn ddl(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Storage::Runs => RUNS_DDL,
            Storage::EventLog => EVENTS_DDL,
            Storage::Schedules => SCHEDULES_DDL,
        }
    }

    /// The data migrations stock marks done right after creating the tables (runs:
    /// `migrate()` + `optimize()`; event log: `reindex_events()` + `reindex_assets()`;
    /// schedules: `migrate()` + `optimize()`), in the order it marks them.
    pub fn data_migrations(self) -> &'static [&'static str] {
        match self {
            Storage::Runs => &[
                "run_partitions",
                "run_repo_label_tags",
                "bulk_action_types",
                "run_backfill_id",
                "backfill_job_name_and_tags",
                "backfill_end_timestamp",
                "run_start_end_overwritten",
            ],
            Storage::EventLog => &["asset_key_table", "asset_key_index_columns"],
            Storage::Schedules => &["schedule_jobs_selector_id", "schedule_ticks_selector_id"],
        }
    }

    /// Stock's test for "this storage's tables are not there yet" (its constructor's).
    fn needs_creation(self, tables: &BTreeMap<String, Vec<Column>>) -> bool {
        match self {
            Storage::Runs => !tables.contains_key("runs"),
            Storage::EventLog => !tables.contains_key("event_logs"),
            Storage::Schedules => !tables.contains_key("schedules") && !tables.contains_key("jobs"),
        }
    }
}

/// A column as information_schema describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `data_type` (`bigint`, `integer`, `timestamp without time zone`, ...).
    pub data_type: String,
}

/// An index as pg_catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    pub unique: bool,
    pub primary: bool,
    /// The partial index's predicate (`pg_get_expr`), if any.
    pub predicate: Option<String>,
}

/// Which `run_tags` index layout a database has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunTagsLayout {
    /// A fresh database's: `idx_run_tags (key, value)` + `idx_run_tags_run_idx (run_id, id)`.
    Fresh,
    /// After migration 047 (`6b7fb194ff9c`): unique `idx_run_tags_run_id (key, value, run_id)`
    /// instead of `idx_run_tags`.
    Migrated047,
    /// Anything else (the index names present), for callers to judge.
    Other(Vec<String>),
}

/// What a database holds, read from pg_catalog / information_schema (the current schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub revision: Option<String>,
    pub tables: BTreeMap<String, Vec<Column>>,
    pub indexes: Vec<Index>,
}

impl Layout {
    pub fn read(c: &Conn<'_>) -> Result<Layout, StoreError> {
        let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
        c.query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, NULL) \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' \
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum",
            &[],
            |r| {
                tables.entry(r.text(0)?).or_default().push(Column {
                    name: r.text(1)?,
                    data_type: r.text(2)?,
                });
                Ok(())
            },
        )?;
        let indexes = c.query(
            "SELECT i.relname::text, t.relname::text, x.indisunique, x.indisprimary, \
             pg_get_expr(x.indpred, x.indrelid), \
             (SELECT string_agg(pg_get_indexdef(x.indexrelid, k, true), ',' ORDER BY k) \
              FROM generate_series(1, x.indnkeyatts) AS k) \
             FROM pg_catalog.pg_index x \
             JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
             JOIN pg_catalog.pg_class t ON t.oid = x.indrelid \
             WHERE t.relnamespace = current_schema()::regnamespace ORDER BY i.relname",
            &[],
            |r| {
                Ok(Index {
                    name: r.text(0)?,
                    table: r.text(1)?,
                    unique: r.bool(2)?,
                    primary: r.bool(3)?,
                    predicate: r.opt_text(4)?,
                    columns: r
                        .opt_text(5)?
                        .unwrap_or_default()
                        .split(',')
                        .map(|s| s.trim_matches('"').to_owned())
                        .collect(),
                })
            },
        )?;
        let revision = if tables.contains_key("alembic_version") {
            c.query_opt("SELECT version_num FROM alembic_version", &[], |r| {
                r.text(0)
            })?
        } else {
            None
        };
        Ok(Layout {
            revision,
            tables,
            indexes,
        })
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    pub fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|i| i.name == name)
    }

    pub fn run_tags_layout(&self) -> RunTagsLayout {
        let has = |name: &str, columns: &[&str], unique: bool| {
            self.index(name)
                .is_some_and(|i| i.columns == columns && i.unique == unique)
        };
        let by_run = has("idx_run_tags_run_idx", &["run_id", "id"], false);
        if by_run && has("idx_run_tags", &["key", "value"], false) {
            RunTagsLayout::Fresh
        } else if by_run
            && has("idx_run_tags_run_id", &["key", "value", "run_id"], true)
            && self.index("idx_run_tags").is_none()
        {
            RunTagsLayout::Migrated047
        } else {
            RunTagsLayout::Other(
                self.indexes
                    .iter()
                    .filter(|i| i.table == "run_tags")
                    .map(|i| i.name.clone())
                    .collect(),
            )
        }
    }

    /// The type of `table.id`: `bigint` on databases stock created since the bigint migration,
    /// `integer` on older ones.
    pub fn id_type(&self, table: &str) -> Option<&str> {
        self.tables
            .get(table)?
            .iter()
            .find(|c| c.name == "id")
            .map(|c| c.data_type.as_str())
    }

    /// What `storage`'s stock schema has that this database lacks: tables, and
    /// `table.column`s of tables it has.
    pub fn missing(&self, storage: Storage) -> Vec<String> {
        let mut missing = Vec::new();
        for (table, statements) in storage.ddl() {
            let Some(columns) = self.tables.get(*table) else {
                missing.push((*table).to_owned());
                continue;
            };
            for column in ddl_columns(statements[0]) {
                if !columns.iter().any(|c| c.name == column) {
                    missing.push(format!("{table}.{column}"));
                }
            }
        }
        missing
    }
}

/// The column names of a generated `CREATE TABLE` statement.
fn ddl_columns(create: &str) -> Vec<&str> {
    create
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| {
            !l.starts_with(')')
                && !l.starts_with("PRIMARY KEY")
                && !l.starts_with("UNIQUE")
                && !l.starts_with("CONSTRAINT")
                && !l.starts_with("FOREIGN KEY")
        })
        .filter_map(|l| l.split_whitespace().next())
        .map(|name| name.trim_matches('"'))
        .collect()
}

/// Stock's mark for a data migration: `migration_completed` is `datetime.now()`, the naive
/// *local* time of the process that ran it.
/// Record a data migration as done in `secondary_indexes`, as stock's `mark_index_built` (the
/// writing process's naive local time, as its `datetime.now()`).
pub fn mark_migration_done(c: &Conn<'_>, name: &str) -> Result<(), StoreError> {
    let now = local_now_text();
    c.execute(
        "INSERT INTO secondary_indexes (name, migration_completed) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET migration_completed = EXCLUDED.migration_completed",
        &[Value::from(name), Value::from(now.as_str())],
    )?;
    Ok(())
}

fn local_now_text() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let converted = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    let offset = if converted { tm.tm_gmtoff } else { 0 };
    let local_micros = (now.as_micros() as i64) + offset * 1_000_000;
    super::types::format_sql_datetime(local_micros)
}

/// How creation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// This call created the storage's tables (and stamped, and marked).
    Created,
    /// They were there (made by stock, or by another process meanwhile).
    Present,
}

/// Stock's constructor for `storage` on this database: when its main table is missing, create
/// every missing table of its metadata with its indexes, stamp the alembic head (`alembic
/// stamp`: the one row becomes `29b539ebc72a`) and mark its data migrations done; the run
/// storage also adds `instance_info` when only that is missing. One transaction, serialized
/// with other dagster-rs creators by an advisory lock; a concurrent stock creator's
/// "already exists" (42P07, or 23505 on pg_type) is retried as stock's `retry_pg_creation_fn`
/// does (5 times, 0.2 s apart).
pub fn ensure(db: &Db, storage: Storage) -> Result<Created, StoreError> {
    let creator = Db {
        pool: db.pool.clone(),
        write_key: write_key("schema"),
    };
    let mut retries = 5;
    loop {
        match creator.write(|c| create_missing(c, storage)) {
            Err(err) if retries > 0 && already_exists(&err) => {
                retries -= 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

fn already_exists(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Postgres { sqlstate: Some(code), .. } if code == "42P07" || code == "23505"
    )
}

fn create_missing(c: &Conn<'_>, storage: Storage) -> Result<Created, StoreError> {
    let layout = Layout::read(c)?;
    if !storage.needs_creation(&layout.tables) {
        if storage == Storage::Runs && !layout.has_table("instance_info") {
            for (table, statements) in storage.ddl() {
                if *table == "instance_info" {
                    for statement in *statements {
                        c.batch(statement)?;
                    }
                }
            }
        }
        return Ok(Created::Present);
    }
    for (table, statements) in storage.ddl() {
        if layout.has_table(table) {
            continue;
        }
        for statement in *statements {
            c.batch(statement)?;
        }
    }
    if !layout.has_table("alembic_version") {
        c.batch(ALEMBIC_VERSION_DDL)?;
    }
    let head = [Value::from(HEAD_REVISION)];
    if c.execute("UPDATE alembic_version SET version_num = $1", &head)? == 0 {
        c.execute(
            "INSERT INTO alembic_version (version_num) VALUES ($1)",
            &head,
        )?;
    }
    let now = local_now_text();
    for name in storage.data_migrations() {
        c.execute(
            "INSERT INTO secondary_indexes (name, migration_completed) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET migration_completed = EXCLUDED.migration_completed",
            &[Value::from(*name), Value::from(now.as_str())],
        )?;
    }
    Ok(Created::Created)
}

/// Whether dagster-rs serves `storage` on this database as it is: at the head revision or an
/// older one that lacks nothing its schema has (a missing table or column is refused with the
/// same error the SQLite side raises, naming `dagster instance migrate`); a revision this
/// Dagster does not know (a newer Dagster's) is refused as on SQLite.
pub fn check(layout: &Layout, storage: Storage, location: &str) -> Result<(), StoreError> {
    let revision = layout.revision.clone().unwrap_or_default();
    if let Some(found) = &layout.revision {
        if found != HEAD_REVISION && !OLDER_REVISIONS.contains(&found.as_str()) {
            return Err(StoreError::UnknownRevision {
                path: location.to_owned(),
                found: found.clone(),
            });
        }
    }
    let missing = layout.missing(storage);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::MissingSchema {
            path: location.to_owned(),
            revision: if revision.is_empty() {
                "(none)".to_owned()
            } else {
                revision
            },
            missing,
        })
    }
}
