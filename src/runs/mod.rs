//! The runs domain: Dagster's `RunStorage` over `history/runs.db`.
//!
//! Bodies arrive already serialized by Dagster's serdes (Python owns the object model); this
//! module owns every read and write of the file's run tables, with stock `SqlRunStorage`'s
//! semantics. The heartbeats, the kvs and instance_info are the config domain's (`crate::config`),
//! on this store's connections.

pub mod bindings;
pub mod launch;
pub mod plan;
pub mod query;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pyo3::{FromPyObject, IntoPyObject};

use crate::errors::{RunsError, StoreError};
use crate::row;
use crate::store::schema::{HEAD_REVISION, RUNS_SCHEMA};
use crate::store::{Conn, Db, Dialect, Durability, Lease, Sql, Value};
use query::{BackfillFilter, RunsFilter, RunsQuery};

pub const BACKFILL_ID_TAG: &str = "dagster/backfill";
pub const ROOT_RUN_ID_TAG: &str = "dagster/root_run_id";
const RUN_BACKFILL_ID_MIGRATION: &str = "run_backfill_id";

// The values below cross the Python boundary as mappings with these field names (the stub's
// TypedDicts): inputs are read by key, outputs become dicts.

/// A run as stored: serialized body plus the columns stock indexes it by.
#[derive(Debug, Clone, Default, FromPyObject)]
#[pyo3(from_item_all)]
pub struct NewRun {
    pub run_id: String,
    pub job_name: Option<String>,
    pub status: String,
    pub body: String,
    pub snapshot_id: Option<String>,
    pub partition: Option<String>,
    pub partition_set: Option<String>,
    pub backfill_id: Option<String>,
    pub tags: Vec<(String, String)>,
    /// `None` leaves the column to its `CURRENT_TIMESTAMP` default.
    pub create_timestamp: Option<String>,
}

/// A run's record. The body is optional so that a NULL one reaches Python, which reports it.
#[derive(Debug, Clone, IntoPyObject)]
pub struct RunRecord {
    pub storage_id: i64,
    pub run_id: String,
    pub body: Option<String>,
    pub status: String,
    pub create_timestamp: String,
    pub update_timestamp: String,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
}

pub use crate::store::QueryPlan;

/// `(run_id, body, status)`.
pub type RunBodyRow = (String, Option<String>, String);

/// `(run_id, body, status)` of a run group member; body and status NULL when the run is gone.
pub type GroupRow = (String, Option<String>, Option<String>);

/// The newest run of one partition.
#[derive(Debug, Clone, IntoPyObject)]
pub struct PartitionRun {
    pub run_id: String,
    pub partition: String,
    pub status: String,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
}

/// A backfill as stored.
#[derive(Debug, Clone, Default, FromPyObject)]
#[pyo3(from_item_all)]
pub struct NewBackfill {
    pub key: String,
    pub status: String,
    pub timestamp: String,
    pub body: String,
    pub selector_id: Option<String>,
    pub action_type: Option<String>,
    pub job_name: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// How a run's row changes on a status event.
#[derive(Debug, Clone, Default, FromPyObject)]
#[pyo3(from_item_all)]
pub struct StatusUpdate {
    pub body: String,
    pub status: String,
    pub update_timestamp: String,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub tags: TagChanges,
}

/// Tag writes as stock decides them from the run's body: keys the body has are updated in
/// place, others get a new row (even when a storage-only row with that key exists).
#[derive(Debug, Clone, Default, FromPyObject)]
#[pyo3(from_item_all)]
pub struct TagChanges {
    pub update: Vec<(String, String)>,
    pub insert: Vec<(String, String)>,
}

impl TagChanges {
    fn apply(&self, c: &Conn<'_>, run_id: &str) -> Result<()> {
        for (key, value) in &self.update {
            update_run_tag(c, run_id, key, value)?;
        }
        for (key, value) in &self.insert {
            insert_run_tag(c, run_id, key, value)?;
        }
        Ok(())
    }
}

/// The runs store of one `runs.db`.
#[derive(Debug)]
pub struct Runs {
    // Shared with the config domain's store and leased to the DB-API bridge.
    db: Arc<Db>,
    planner: parking_lot::RwLock<plan::Planner>,
    /// The strategy the latest run list of this store took (`Runs::last_strategy`).
    last_strategy: parking_lot::Mutex<&'static str>,
}

type Result<T> = std::result::Result<T, RunsError>;

fn sql(text: &str) -> Sql {
    Sql::new(text)
}

impl Runs {
    pub fn open(path: &str, durability: Durability) -> Result<Runs> {
        Ok(Runs::on(Db::open(path, durability, &RUNS_SCHEMA)?))
    }

    /// The runs store over `db`, a database holding stock's run storage tables.
    pub fn on(db: Db) -> Runs {
        Runs {
            db: Arc::new(db),
            planner: parking_lot::RwLock::new(plan::Planner::default()),
            last_strategy: parking_lot::Mutex::new(""),
        }
    }

    pub fn path(&self) -> &str {
        self.db.location()
    }

    pub fn dispose(&self) {
        self.db.dispose();
    }

    /// The file's store, for the domains that live in it (config).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// One of the store's pooled connections, lent to stock's code (the DB-API bridge).
    pub fn lease(&self) -> Result<Lease> {
        Ok(self.db.lease()?)
    }

    /// The strategy the latest run list took (for tests and diagnosis): "run ids", "driver",
    /// "walk", "walk, then driver", "walk, then covering scan" (", and beyond its window" when
    /// the window held too few), "covering scan"; "" before the first.
    pub fn last_strategy(&self) -> &'static str {
        *self.last_strategy.lock()
    }

    /// Replace how run queries choose their access (tests force each strategy with it).
    pub fn set_planner(&self, planner: plan::Planner) {
        *self.planner.write() = planner;
    }

    // -- writes ------------------------------------------------------------------------------

    pub fn add_run(&self, run: &NewRun) -> Result<()> {
        self.db.write(|c| insert_run(c, run))
    }

    /// Insert `runs` in one transaction: all of them, or none when one is refused.
    pub fn add_runs(&self, runs: &[NewRun]) -> Result<()> {
        self.db
            .write(|c| runs.iter().try_for_each(|run| insert_run(c, run)))
    }

    pub fn update_run_status(&self, run_id: &str, update: &StatusUpdate) -> Result<()> {
        self.db.write(|c| {
            // Tag rows first: a reader that sees the new status must also see its tags.
            update.tags.apply(c, run_id)?;
            let mut q = sql("UPDATE runs SET run_body = ");
            q.bind(update.body.as_str())
                .push(", status = ")
                .bind(update.status.as_str())
                .push(", update_timestamp = ")
                .bind(update.update_timestamp.as_str());
            if let Some(t) = update.start_time {
                q.push(", start_time = ").bind(t);
            }
            if let Some(t) = update.end_time {
                q.push(", end_time = ").bind(t);
            }
            q.push(" WHERE runs.run_id = ").bind(run_id);
            c.execute(&q)?;
            Ok(())
        })
    }

    pub fn update_run_tags(
        &self,
        run_id: &str,
        body: &str,
        partition: Option<&str>,
        partition_set: Option<&str>,
        update_timestamp: &str,
        tags: &TagChanges,
    ) -> Result<()> {
        self.db.write(|c| {
            let mut q = sql("UPDATE runs SET run_body = ");
            q.bind(body)
                .push(", partition = ")
                .bind(partition)
                .push(", partition_set = ")
                .bind(partition_set)
                .push(", update_timestamp = ")
                .bind(update_timestamp)
                .push(" WHERE runs.run_id = ")
                .bind(run_id);
            c.execute(&q)?;
            tags.apply(c, run_id)
        })
    }

    /// Replace a run's body and the values of tags it already has (`replace_job_origin`).
    pub fn replace_run_body(
        &self,
        run_id: &str,
        body: &str,
        tags: &[(String, String)],
    ) -> Result<()> {
        self.db.write(|c| {
            let mut q = sql("UPDATE runs SET run_body = ");
            q.bind(body).push(" WHERE runs.run_id = ").bind(run_id);
            c.execute(&q)?;
            for (key, value) in tags {
                update_run_tag(c, run_id, key, value)?;
            }
            Ok(())
        })
    }

    pub fn delete_run(&self, run_id: &str) -> Result<()> {
        self.db.write(|c| {
            // Stock's SQLite storage deletes tags explicitly: foreign keys are not enforced.
            let mut tags = sql("DELETE FROM run_tags WHERE run_tags.run_id = ");
            tags.bind(run_id);
            c.execute(&tags)?;
            let mut run = sql("DELETE FROM runs WHERE runs.run_id = ");
            run.bind(run_id);
            c.execute(&run)?;
            Ok(())
        })
    }

    pub fn wipe(&self) -> Result<()> {
        self.db.write(|c| {
            // Stock's wipe, table for table: the heartbeats are the config domain's.
            for table in ["runs", "run_tags", "snapshots"] {
                c.execute(&sql(&format!("DELETE FROM {table}")))?;
            }
            c.execute(&crate::config::statements::delete_heartbeats())?;
            c.execute(&sql("DELETE FROM bulk_actions"))?;
            Ok(())
        })
    }

    // -- reads -------------------------------------------------------------------------------

    fn backfill_id_indexed(&self, c: &Conn<'_>, filter: Option<&RunsFilter>) -> Result<bool> {
        match filter {
            Some(f) if f.exclude_subruns => Ok(has_built_index(c, RUN_BACKFILL_ID_MIGRATION)?),
            _ => Ok(false),
        }
    }

    fn select_runs<T: Clone>(
        &self,
        columns: &[&str],
        mut q: RunsQuery<'_>,
        mut f: impl FnMut(&crate::store::Row<'_>) -> std::result::Result<T, StoreError>,
    ) -> Result<Vec<T>> {
        if self.db.dialect() == Dialect::Postgres && q.limit.is_some_and(|l| l < 0) {
            // SQLite reads a negative LIMIT as none; PostgreSQL refuses it, and stock's
            // statement with it.
            return Err(self
                .db
                .refusal("2201W", "LIMIT must not be negative")
                .into());
        }
        self.db.read(|c| {
            q.backfill_id_indexed = self.backfill_id_indexed(c, q.filter)?;
            if q.bucket.is_some() || q.order_by.is_some_and(|col| col != "id") {
                // Buckets and other orders keep stock's one-statement shape (query.rs).
                let statement =
                    query::runs_select(columns, &q).map_err(RunsError::InvalidArgument)?;
                return Ok(c.query(&statement, f)?);
            }
            let no_filter = RunsFilter::default();
            let Some(cursor_id) = resolve_cursor(c, q.cursor)? else {
                return Ok(Vec::new());
            };
            let ix = run_indexes(c)?;
            let id_query = plan::IdQuery {
                filter: q.filter.unwrap_or(&no_filter),
                cursor_id,
                ascending: q.ascending,
                backfill_id_indexed: q.backfill_id_indexed,
                ix: &ix,
            };
            let planner = *self.planner.read();
            let mut strategy = "";
            let ids = matching_ids(c, &planner, &id_query, q.limit, &mut strategy)?;
            *self.last_strategy.lock() = strategy;
            rows_by_id(c, columns, &ids, &mut f)
        })
    }

    pub fn run_records(&self, q: RunsQuery<'_>) -> Result<Vec<RunRecord>> {
        self.select_runs(
            &[
                "id",
                "run_id",
                "run_body",
                "status",
                "create_timestamp",
                "update_timestamp",
                "start_time",
                "end_time",
            ],
            q,
            |r| {
                Ok(RunRecord {
                    storage_id: r.int(0)?,
                    run_id: r.text(1)?,
                    body: r.opt_text(2)?,
                    status: r.text(3)?,
                    create_timestamp: r.text(4)?,
                    update_timestamp: r.text(5)?,
                    start_time: r.opt_real(6)?,
                    end_time: r.opt_real(7)?,
                })
            },
        )
    }

    pub fn run_bodies(&self, q: RunsQuery<'_>) -> Result<Vec<RunBodyRow>> {
        self.select_runs(&["run_id", "run_body", "status"], q, |r| {
            Ok((r.text(0)?, r.opt_text(1)?, r.text(2)?))
        })
    }

    pub fn run_ids(&self, q: RunsQuery<'_>) -> Result<Vec<String>> {
        self.select_runs(&["run_id"], q, |r| r.text(0))
    }

    pub fn runs_count(&self, mut q: RunsQuery<'_>) -> Result<i64> {
        self.db.read(|c| {
            q.backfill_id_indexed = self.backfill_id_indexed(c, q.filter)?;
            let no_filter = RunsFilter::default();
            let ix = run_indexes(c)?;
            let id_query = plan::IdQuery {
                filter: q.filter.unwrap_or(&no_filter),
                cursor_id: None,
                ascending: false,
                backfill_id_indexed: q.backfill_id_indexed,
                ix: &ix,
            };
            count_matching(c, &id_query)
        })
    }

    pub fn run_by_id(&self, run_id: &str) -> Result<Option<(Option<String>, String)>> {
        // The statement `launch_plans` pins too: the launch steps read a run with it.
        let q = launch::run_row(run_id);
        self.db
            .read(|c| Ok(c.query_opt(&q, |r| Ok((r.opt_text(0)?, r.text(1)?)))?))
    }

    pub fn has_run(&self, run_id: &str) -> Result<bool> {
        self.db.read(|c| {
            let mut q = sql("SELECT 1 FROM runs WHERE runs.run_id = ");
            q.bind(run_id);
            Ok(c.query_opt(&q, |_| Ok(()))?.is_some())
        })
    }

    /// Runs tagged with `root_run_id` as their root, as stock's outer join returns them:
    /// `(run_id, body, status)`, body and status NULL for a tag whose run is gone.
    pub fn run_group_rows(&self, root_run_id: &str) -> Result<Vec<GroupRow>> {
        self.db.read(|c| {
            let q = query::run_group_select(root_run_id, &*run_indexes(c)?);
            Ok(c.query(&q, |r| Ok((r.text(0)?, r.opt_text(1)?, r.opt_text(2)?)))?)
        })
    }

    /// The file's indexes as the planner names them (`plan::RunIndexes`), read when not known.
    pub fn run_indexes(&self) -> Result<plan::RunIndexes> {
        self.db.read(|c| Ok((*run_indexes(c)?).clone()))
    }

    /// Forget the file's indexes: the next query reads them again (after a schema upgrade
    /// made by other connections). The store notices changes made by other processes by
    /// itself; this makes it certain, at no cost but that one read.
    pub fn reload_layout(&self) {
        self.db.reload_layout();
    }

    /// `EXPLAIN QUERY PLAN` of every statement a run query with this filter may run, whatever
    /// the data (each driver, the ordered walk, the counts, the row fetch): `(what, SQL, plan)`.
    pub fn query_plans(
        &self,
        filter: &RunsFilter,
        limit: Option<i64>,
        ascending: bool,
        with_cursor: bool,
    ) -> Result<Vec<QueryPlan>> {
        self.db.read(|c| {
            let ix = run_indexes(c)?;
            let q = plan::IdQuery {
                filter,
                cursor_id: with_cursor.then_some(1),
                ascending,
                backfill_id_indexed: has_built_index(c, RUN_BACKFILL_ID_MIGRATION)?,
                ix: &ix,
            };
            let mut statements = if c.dialect() == Dialect::Postgres {
                plan::pg_statements(&q, limit)
            } else {
                plan::every_statement(&q, limit)
            };
            let mut fetch = sql("SELECT runs.run_body, runs.id FROM runs WHERE runs.id IN ");
            fetch.bind_list(&[1i64, 2, 3]);
            statements.push(("rows".to_owned(), fetch));
            statements
                .into_iter()
                .map(|(what, statement)| Ok(c.plan(what, &statement)?))
                .collect()
        })
    }

    /// `EXPLAIN QUERY PLAN` of the tag, run group and backfill statements, for sample arguments.
    pub fn other_query_plans(&self) -> Result<Vec<QueryPlan>> {
        use query::TagValue;
        let one = |k: &str, v: &str| Some(vec![(k.to_owned(), TagValue::One(v.to_owned()))]);
        let ix = self.run_indexes()?;
        let mut statements = vec![
            ("tag keys".to_owned(), query::tag_keys_select(&ix)),
            ("run group".to_owned(), query::run_group_select("r", &ix)),
        ];
        for prefix in ["", "s2", "a_b", "abcdefgh"] {
            let m = query::PrefixMatch::new(prefix);
            let q = query::tag_values_select("k", &m.heads[0], m.like.as_deref(), Some(10), &ix);
            statements.push((format!("tag values prefix {prefix:?}"), q));
        }
        let filters = [
            ("no filter", BackfillFilter::default()),
            (
                "status",
                BackfillFilter {
                    statuses: Some(vec!["REQUESTED".into()]),
                    ..Default::default()
                },
            ),
            (
                "tag",
                BackfillFilter {
                    tags: one("team", "t3"),
                    ..Default::default()
                },
            ),
            (
                "job",
                BackfillFilter {
                    job_name: Some("j".into()),
                    ..Default::default()
                },
            ),
            (
                "ids",
                BackfillFilter {
                    backfill_ids: Some(vec!["b".into()]),
                    ..Default::default()
                },
            ),
        ];
        for (name, f) in &filters {
            let list = query::backfills_select(Some(f), Some("c"), Some(25), false);
            statements.push((format!("backfills {name}"), list));
            let count = query::backfills_select(Some(f), None, None, true);
            statements.push((format!("count backfills {name}"), count));
        }
        self.db.read(|c| {
            statements
                .into_iter()
                .map(|(what, statement)| Ok(c.plan(what, &statement)?))
                .collect()
        })
    }

    /// Stock's `SELECT DISTINCT key, value ... WHERE key IN (keys) [AND value LIKE prefix%]
    /// ORDER BY key, value [LIMIT]`, by skip-scans of the tag index (`RunIndexes::tag`): the
    /// cost grows with the distinct values returned, not with the runs.
    pub fn run_tags(
        &self,
        keys: &[String],
        value_prefix: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<(String, String)>> {
        let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        keys.sort_unstable();
        keys.dedup();
        let matcher = query::PrefixMatch::new(value_prefix.unwrap_or(""));
        // A negative limit is SQLite's "no limit", as stock passes it.
        let limit = limit.filter(|n| *n >= 0);
        self.db.read(|c| {
            let ix = run_indexes(c)?;
            let mut out = Vec::new();
            'keys: for key in &keys {
                for head in &matcher.heads {
                    let left = limit.map(|n| n - out.len() as i64);
                    if left == Some(0) {
                        break 'keys;
                    }
                    let q = query::tag_values_select(key, head, matcher.like.as_deref(), left, &ix);
                    let values = c.query(&q, |r| r.text(0))?;
                    out.extend(values.into_iter().map(|v| ((*key).to_owned(), v)));
                }
            }
            Ok(out)
        })
    }

    pub fn run_tag_keys(&self) -> Result<Vec<String>> {
        self.db
            .read(|c| Ok(c.query(&query::tag_keys_select(&*run_indexes(c)?), |r| r.text(0))?))
    }

    /// The newest run of each partition matching the filter (partition columns indexed).
    pub fn partition_data(&self, filter: &RunsFilter) -> Result<Vec<PartitionRun>> {
        let q = RunsQuery {
            filter: Some(filter),
            ..Default::default()
        };
        let rows = self.select_runs(
            &["run_id", "status", "start_time", "end_time", "partition"],
            q,
            |r| {
                Ok((
                    r.text(0)?,
                    r.text(1)?,
                    r.opt_real(2)?,
                    r.opt_real(3)?,
                    r.opt_text(4)?,
                ))
            },
        )?;
        let mut seen = HashSet::new();
        Ok(rows
            .into_iter()
            .filter_map(|(run_id, status, start_time, end_time, partition)| {
                let partition = partition.filter(|p| !p.is_empty())?;
                seen.insert(partition.clone()).then_some(PartitionRun {
                    run_id,
                    partition,
                    status,
                    start_time,
                    end_time,
                })
            })
            .collect())
    }

    // -- snapshots ---------------------------------------------------------------------------

    pub fn has_snapshot(&self, snapshot_id: &str) -> Result<bool> {
        self.db.read(|c| Ok(snapshot_exists(c, snapshot_id)?))
    }

    /// Store a compressed snapshot; an id already present is left as it is (ids are hashes).
    pub fn add_snapshot(&self, snapshot_id: &str, body: Vec<u8>, kind: &str) -> Result<()> {
        self.db.write(|c| {
            let mut q =
                sql("INSERT INTO snapshots (snapshot_id, snapshot_body, snapshot_type) VALUES ");
            q.values(row![snapshot_id, Value::Blob(body), kind])
                .push(" ON CONFLICT (snapshot_id) DO NOTHING");
            c.execute(&q)?;
            Ok(())
        })
    }

    pub fn get_snapshot(&self, snapshot_id: &str) -> Result<Option<Vec<u8>>> {
        self.db.read(|c| {
            let mut q =
                sql("SELECT snapshots.snapshot_body FROM snapshots WHERE snapshots.snapshot_id = ");
            q.bind(snapshot_id);
            Ok(c.query_opt(&q, |r| r.bytes(0))?)
        })
    }

    // -- backfills -----------------------------------------------------------------------------

    pub fn add_backfill(&self, b: &NewBackfill) -> Result<()> {
        self.db.write(|c| {
            let mut q = sql(
                "INSERT INTO bulk_actions (\"key\", status, timestamp, body, selector_id, \
                 action_type, job_name) VALUES ",
            );
            q.values(row![
                b.key.as_str(),
                b.status.as_str(),
                b.timestamp.as_str(),
                b.body.as_str(),
                b.selector_id.as_deref(),
                b.action_type.as_deref(),
                b.job_name.as_deref()
            ]);
            match c.execute(&q) {
                Err(e) if e.is_unique_violation() => {
                    return Err(RunsError::BackfillAlreadyExists(b.key.clone()))
                }
                other => other?,
            };
            for (key, value) in &b.tags {
                let mut t = sql("INSERT INTO backfill_tags (backfill_id, \"key\", value) VALUES ");
                t.values(row![b.key.as_str(), key.as_str(), value.as_str()]);
                c.execute(&t)?;
            }
            Ok(())
        })
    }

    /// Update a backfill's status and body; false when no such backfill exists.
    pub fn update_backfill(&self, key: &str, status: &str, body: &str) -> Result<bool> {
        self.db.write(|c| {
            let mut q = sql("UPDATE bulk_actions SET status = ");
            q.bind(status)
                .push(", body = ")
                .bind(body)
                .push(" WHERE bulk_actions.\"key\" = ")
                .bind(key);
            Ok(c.execute(&q)? > 0)
        })
    }

    pub fn get_backfill(&self, key: &str) -> Result<Option<String>> {
        self.db.read(|c| {
            let mut q =
                sql("SELECT bulk_actions.body FROM bulk_actions WHERE bulk_actions.\"key\" = ");
            q.bind(key);
            Ok(c.query_opt(&q, |r| r.text(0))?)
        })
    }

    pub fn backfills(
        &self,
        filter: Option<&BackfillFilter>,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<String>> {
        let q = query::backfills_select(filter, cursor, limit, false);
        self.db.read(|c| Ok(c.query(&q, |r| r.text(0))?))
    }

    pub fn backfills_count(&self, filter: Option<&BackfillFilter>) -> Result<i64> {
        let q = query::backfills_select(filter, None, None, true);
        self.db
            .read(|c| Ok(c.query_opt(&q, |r| r.int(0))?.unwrap_or(0)))
    }

    // -- data migrations --------------------------------------------------------------------

    pub fn has_built_index(&self, name: &str) -> Result<bool> {
        self.db.read(|c| Ok(has_built_index(c, name)?))
    }

    pub fn mark_index_built(&self, name: &str) -> Result<()> {
        self.db.write(|c| Ok(c.mark_migration_done(name)?))
    }

    pub fn alembic_version(&self) -> Result<(Option<String>, &'static str)> {
        self.db.read(|c| {
            let rev = c.query_opt(&sql("SELECT version_num FROM alembic_version"), |r| {
                r.text(0)
            })?;
            Ok((rev, HEAD_REVISION))
        })
    }
}

/// The file's indexes by the role each plays in run queries, derived once per layout.
fn run_indexes(c: &Conn<'_>) -> std::result::Result<Arc<plan::RunIndexes>, StoreError> {
    Ok(c.layout()?.derived(plan::RunIndexes::of))
}

fn snapshot_exists(c: &Conn<'_>, snapshot_id: &str) -> std::result::Result<bool, StoreError> {
    let mut q = sql("SELECT snapshots.snapshot_id FROM snapshots WHERE snapshots.snapshot_id = ");
    q.bind(snapshot_id);
    Ok(c.query_opt(&q, |_| Ok(()))?.is_some())
}

fn has_built_index(c: &Conn<'_>, name: &str) -> std::result::Result<bool, StoreError> {
    let mut q = sql("SELECT 1 FROM secondary_indexes WHERE secondary_indexes.name = ");
    q.bind(name)
        .push(" AND secondary_indexes.migration_completed IS NOT NULL LIMIT 1");
    Ok(c.query_opt(&q, |_| Ok(()))?.is_some())
}

/// The id of the cursor run: `Some(None)` without a cursor, `None` when the cursor names no run
/// (stock's `id < (SELECT id ...)` is then NULL and matches nothing).
fn resolve_cursor(c: &Conn<'_>, cursor: Option<&str>) -> Result<Option<Option<i64>>> {
    let Some(cursor) = cursor else {
        return Ok(Some(None));
    };
    Ok(c.query_opt(&plan::cursor_id(cursor), |r| r.int(0))?
        .map(Some))
}

/// The lowest and highest run id, `None` when there are no runs.
fn id_bounds(c: &Conn<'_>) -> Result<Option<(i64, i64)>> {
    let bounds = c.query_opt(&plan::id_bounds(), |r| Ok((r.opt_int(0)?, r.opt_int(1)?)))?;
    Ok(match bounds {
        Some((Some(lo), Some(hi))) => Some((lo, hi)),
        _ => None,
    })
}

/// Each driver's candidate count, in the order `IdQuery::drivers` gives, the smallest first in
/// the result. Each count stops at `cap`, and at `plan::AFTER_SMALLEST` times the smallest
/// found before it: past that a driver will not be taken, and its size only narrows the
/// estimate of an ordered walk.
fn estimates(c: &Conn<'_>, q: &plan::IdQuery<'_>, cap: i64) -> Result<Vec<(plan::Driver, i64)>> {
    let mut out: Vec<(plan::Driver, i64)> = Vec::new();
    let mut smallest = i64::MAX;
    for driver in q.drivers() {
        let limit = cap.min(
            smallest
                .saturating_mul(plan::AFTER_SMALLEST)
                .max(plan::SMALL),
        );
        let n = match plan::estimate(q, driver, limit) {
            Some(statement) => c.query_opt(&statement, |r| r.int(0))?.unwrap_or(0),
            None => q.filter.run_ids.as_ref().map_or(0, |ids| ids.len() as i64),
        };
        smallest = smallest.min(n);
        out.push((driver, n));
    }
    out.sort_by_key(|(_, n)| *n);
    Ok(out)
}

fn query_ids(c: &Conn<'_>, statement: &Sql) -> Result<Vec<i64>> {
    Ok(c.query(statement, |r| r.int(0))?)
}

/// The ids of the matching runs in order, at most `limit` (see `plan`).
fn matching_ids(
    c: &Conn<'_>,
    planner: &plan::Planner,
    q: &plan::IdQuery<'_>,
    limit: Option<i64>,
    strategy: &mut &'static str,
) -> Result<Vec<i64>> {
    use plan::{Access, Driver, Mode};
    if c.dialect() == Dialect::Postgres {
        // Stock reads a limit of 0 as none (it tests the limit's truth).
        let limit = limit.filter(|&l| l > 0);
        let tags = pg_tags(c, q, limit)?;
        *strategy = if tags.driving.is_some() {
            "tag driver"
        } else {
            "planned by PostgreSQL"
        };
        let rows = c.query(&plan::pg_ids(q, &tags, limit), |r| {
            Ok((r.int(0)?, r.int(1)?))
        })?;
        let mut ids = Vec::with_capacity(rows.len());
        for (id, times) in rows {
            ids.extend(std::iter::repeat_n(id, times.max(1) as usize));
        }
        if let Some(limit) = limit {
            ids.truncate(limit as usize);
        }
        return Ok(ids);
    }
    if q.filter.run_ids.is_some() {
        *strategy = "run ids";
        return query_ids(
            c,
            &plan::ids(q, Access::Driver(Driver::RunIds), None, limit),
        );
    }
    let Some(limit) = limit else {
        let access = match estimates(c, q, plan::COUNT_CAP)?.first() {
            Some(&(driver, _)) => Access::Driver(driver),
            None => Access::Path(q.ordered_path()),
        };
        *strategy = if matches!(access, Access::Driver(_)) {
            "driver"
        } else {
            "walk"
        };
        return query_ids(c, &plan::ids(q, access, None, None));
    };
    if limit <= 0 {
        // Stock passes a negative limit to SQLite, which reads it as no limit.
        return matching_ids(c, planner, q, None, strategy);
    }
    // Small drivers first: counting up to `small` entries of each index costs a fraction of a
    // millisecond, and a driver under it is the cheapest access there is.
    let small = estimates(c, q, planner.small.saturating_mul(4).max(1))?;
    if planner.mode == Mode::Scan && q.covered() {
        *strategy = "covering scan";
        return query_ids(c, &plan::ids(q, Access::Covering, None, Some(limit)));
    }
    let forced = match planner.mode {
        Mode::Drive => estimates(c, q, plan::LIST_CAP)?.first().copied(),
        Mode::Walk => None,
        // Each tag a walk checks is one more probe per row walked: with two or more, a
        // driver four times larger still wins.
        Mode::Auto | Mode::Scan => {
            let tags = q.filter.tags.as_ref().map_or(0, Vec::len);
            let threshold = if tags >= 2 {
                planner.small * 4
            } else {
                planner.small
            };
            small.first().copied().filter(|&(_, n)| n < threshold)
        }
    };
    if let Some((driver, _)) = forced {
        *strategy = "driver";
        return query_ids(c, &plan::ids(q, Access::Driver(driver), None, Some(limit)));
    }
    *strategy = "walk";
    let Some((min_id, max_id)) = id_bounds(c)? else {
        return Ok(Vec::new());
    };
    // Walk the ordered path in growing windows of ids, from the cursor (or the end) on. A walk
    // that has not found its runs after `plan::CHECK_WALK` ids measures the drivers once and
    // hands the rest to the smallest when reading it costs less than walking on would.
    let path = q.ordered_path();
    let (mut edge, end) = match (q.ascending, q.cursor_id) {
        (false, Some(cursor)) => (cursor.clamp(min_id, max_id + 1), min_id),
        (false, None) => (max_id + 1, min_id),
        (true, Some(cursor)) => (
            cursor.saturating_add(1).clamp(min_id, max_id + 1),
            max_id + 1,
        ),
        (true, None) => (min_id, max_id + 1),
    };
    let start = edge;
    let mut found = Vec::new();
    let mut span = plan::first_span(limit);
    let mut walked: i64 = 0;
    let covered = planner.mode != Mode::Walk && q.near_covered();
    let mut checked =
        planner.mode == Mode::Walk || planner.mode == Mode::Drive || (small.is_empty() && !covered);
    while found.len() < limit as usize && edge != end {
        let window = plan::next_window(q.ascending, edge, span, min_id, max_id);
        let need = limit - found.len() as i64;
        found.extend(query_ids(
            c,
            &plan::ids(q, Access::Path(path), Some(window), Some(need)),
        )?);
        walked += window.1 - window.0;
        edge = if q.ascending { window.1 } else { window.0 };
        span = span.saturating_mul(2);
        let remaining = (end - edge).abs();
        let need = limit - found.len() as i64;
        if checked || need <= 0 || remaining == 0 || walked < plan::CHECK_WALK {
            continue;
        }
        checked = true;
        // What walking costs is the entries of the path it reads, not the ids it spans: a
        // job's index holds one run in fifty. They are counted in the span walked (a covering
        // count of that stretch of the path's index), and everything below is in path entries.
        let walked_span = if q.ascending {
            (start, edge)
        } else {
            (edge, start)
        };
        let path_walked = match plan::path_entries(q, path, walked_span) {
            Some(count) => c.query_opt(&count, |r| r.int(0))?.unwrap_or(0),
            None => walked,
        };
        let density = path_walked.max(1) as f64 / walked as f64;
        let path_left = ((remaining as f64 * density).ceil() as i64).max(1);
        let mut walk_on =
            plan::remaining_walk(need, found.len() as i64, path_walked.max(1), path_left);
        let rest = plan::IdQuery {
            cursor_id: Some(if q.ascending { edge - 1 } else { edge }),
            ..*q
        };
        let cap = ((walk_on / plan::DRIVE_COST) as i64).max(1);
        if let Some((driver, n)) = estimates(c, q, cap)?.first().copied() {
            if n < cap {
                let statement = plan::ids(&rest, Access::Driver(driver), None, Some(need));
                found.extend(query_ids(c, &statement)?);
                *strategy = "walk, then driver";
                break;
            }
        }
        if !covered {
            continue;
        }
        // Nothing found yet beyond a creation-time bound: the runs may lie far down the ids
        // (`created_before` deep in the history). Where the bound lies is estimated, and the
        // covering scan, which costs the same wherever they are, is read around it.
        let mut near = None;
        if found.is_empty() {
            if let Some((op, t)) = plan::time_edge(q) {
                let (lo, hi) = time_boundary(c, q.ascending, op, t, edge, end)?;
                let skip = if q.ascending { lo - edge } else { edge - hi }.max(0);
                let estimate = skip as f64 * density + need as f64;
                // With nothing but creation bounds the runs past the bound all match; with a
                // status too, the density met so far still bounds the walk from below.
                walk_on = if q.only_creation_bounds() {
                    estimate
                } else {
                    walk_on.max(estimate)
                };
                let slack = need.saturating_mul(4).saturating_add(256);
                near = Some(if q.ascending {
                    (edge, hi.saturating_add(slack))
                } else {
                    (lo.saturating_sub(slack), edge)
                });
            }
        }
        // Unaimed, the scan would read the row of every run it passes where the index does
        // not decide alone.
        let aimed = near.is_some() || q.covered();
        // The scan reads every entry of idx_run_range, or of one status's stretch of it (which
        // is also the path walked).
        let mut entries = (max_id - min_id + 1) as f64;
        if path == plan::Path::Status {
            entries *= density;
        }
        if aimed && walk_on > entries * plan::SCAN_COST {
            let (top, beyond) = covering_top(c, &rest, need, near)?;
            found.extend(top);
            *strategy = if beyond {
                "walk, then covering scan, and beyond its window"
            } else {
                "walk, then covering scan"
            };
            break;
        }
    }
    Ok(found)
}

/// The first `need` runs of `q` in its order by the covering scan of `idx_run_range`, looked for
/// in the window of ids `near` first: the scan still reads every entry, but only the window's
/// go to the sort. Exact whatever the window: when it holds fewer than `need` matches (times
/// out of id order, a sparse status), the rest are looked for beyond it (and the answer says
/// so).
fn covering_top(
    c: &Conn<'_>,
    q: &plan::IdQuery<'_>,
    need: i64,
    near: Option<(i64, i64)>,
) -> Result<(Vec<i64>, bool)> {
    use plan::Access;
    let Some((lo, hi)) = near else {
        let top = query_ids(c, &plan::ids(q, Access::Covering, None, Some(need)))?;
        return Ok((top, false));
    };
    let mut found = query_ids(
        c,
        &plan::ids(q, Access::Covering, Some((lo, hi)), Some(need)),
    )?;
    let left = need - found.len() as i64;
    if left > 0 {
        let beyond = plan::IdQuery {
            cursor_id: Some(if q.ascending { hi - 1 } else { lo }),
            ..*q
        };
        found.extend(query_ids(
            c,
            &plan::ids(&beyond, Access::Covering, None, Some(left)),
        )?);
    }
    Ok((found, left > 0))
}

/// Where a walk from `edge` towards `end` would meet the runs that satisfy the creation time
/// bound `op t`, were creation times in id order (as they are but for runs added with an
/// explicit time): `(lo, hi)` around the first id past the bound, found by a binary search of
/// the rows' times (a few dozen reads of a row by id). Only an estimate for choosing and
/// aiming a strategy: every strategy reads every run it needs either way.
fn time_boundary(
    c: &Conn<'_>,
    ascending: bool,
    op: &str,
    t: &str,
    edge: i64,
    end: i64,
) -> Result<(i64, i64)> {
    // Walking down, the matches are below the first run not matching (ids `< hi`); walking up,
    // above the last one not matching. `lo..hi` holds the boundary.
    let (mut lo, mut hi) = if ascending { (edge, end) } else { (end, edge) };
    let precision = ((hi - lo) / 1024).max(64);
    while hi - lo > precision {
        let mid = lo + (hi - lo) / 2;
        let probe = c.query_opt(&plan::probe_created(mid, op, t), |r| {
            Ok((r.int(0)?, r.int(1)?))
        })?;
        match probe {
            Some((id, matches)) if id < hi => {
                // Walking down, a match means the boundary lies above it; walking up, below.
                if (matches != 0) != ascending {
                    lo = id + 1;
                } else {
                    hi = id;
                }
            }
            _ => hi = mid,
        }
    }
    Ok((lo, hi))
}

/// The number of matching runs (stock's count ignores the cursor and limit).
fn count_matching(c: &Conn<'_>, q: &plan::IdQuery<'_>) -> Result<i64> {
    if c.dialect() == Dialect::Postgres {
        let fk = tag_rows_join(c)?;
        let tags = if plan::pg_tag_rows_count(q, fk).is_some() {
            plan::PgTags::in_order(q, None)
        } else {
            pg_tags(c, q, None)?
        };
        let statement = plan::pg_count(q, fk, &tags);
        return Ok(c.query_opt(&statement, |r| r.int(0))?.unwrap_or(0));
    }
    let statement = match estimates(c, q, plan::COUNT_CAP)?.first() {
        Some(&(driver, _)) => plan::count(q, plan::Access::Driver(driver)),
        None => plan::count_without_driver(q),
    };
    Ok(c.query_opt(&statement, |r| r.int(0))?.unwrap_or(0))
}

/// PostgreSQL: how a query reads its tags (see `plan::PgTags`), from their sizes counted in
/// their index: the tag that drives (`plan::pg_driver`), with a limit the smallest tag when
/// reading it costs less than walking the runs; without (a count, a whole list), the smallest
/// tag unless it reaches the cap while a run condition (status, job, ...) gives PostgreSQL an
/// index of its own to start from. The others are checked rarest first.
fn pg_tags(c: &Conn<'_>, q: &plan::IdQuery<'_>, limit: Option<i64>) -> Result<plan::PgTags> {
    let tags = q.filter.tags.as_ref().map_or(0, Vec::len);
    if tags == 0 || q.filter.run_ids.is_some() {
        // No tag, or a handful of runs by id: each checked for its tags in the filter's order.
        return Ok(plan::PgTags::in_order(q, None));
    }
    let cap = if limit.is_some() {
        plan::PG_LIST_CAP
    } else {
        plan::COUNT_CAP
    };
    // Each tag's rows counted in its index up to the cap, unless the statistics put it at more
    // than twice the cap (a count of the cap would say only "at the cap", for ~1.5 ms at
    // 10,000 entries); tied tags then ordered by that estimate.
    let mut counts = Vec::with_capacity(tags);
    let mut estimates = HashMap::with_capacity(tags);
    for (i, (key, value)) in q.tags().iter().enumerate() {
        let Some(statement) = plan::pg_tag_estimate(q, i, cap) else {
            continue;
        };
        let estimate = tag_rows_estimate(c, key, value)?;
        estimates.insert(i, estimate);
        let n = if estimate > 2.0 * cap as f64 {
            cap
        } else {
            c.query_opt(&statement, |r| r.int(0))?.unwrap_or(0)
        };
        counts.push((i, n));
    }
    // The smallest first (ties: the smaller estimate), so that the choices below, which take
    // the first of equal sizes, take it.
    let order = |i: &usize| estimates.get(i).copied().unwrap_or(0.0).max(0.0).to_bits();
    counts.sort_by_key(|(i, n)| (*n, order(i)));
    let driving = match (limit, counts.first()) {
        (_, None) => None,
        (Some(limit), Some(_)) => {
            let runs = id_bounds(c)?.map_or(0, |(lo, hi)| hi - lo + 1);
            plan::pg_driver(&counts, cap, runs, limit)
        }
        (None, Some(&(smallest, size))) => {
            let f = q.filter;
            let other = f.statuses.is_some() || f.job_name.is_some() || f.snapshot_id.is_some();
            (size < cap || !other).then_some(smallest)
        }
    };
    // An estimate is a non-negative float: its bits order as the numbers do.
    let sizes: Vec<(usize, (i64, u64))> =
        counts.iter().map(|&(i, n)| (i, (n, order(&i)))).collect();
    Ok(plan::PgTags::new(q, driving, &sizes))
}

/// How long a tag's estimate from the statistics is reused: they change only when the table is
/// analyzed, and reading them costs more than a count of a few thousand entries (planning
/// `pg_stats`, a view over the catalogs, takes ~0.8 ms on every call).
const ESTIMATE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

type EstimateKey = (String, String, query::TagValue);

/// The estimates read lately, by database and tag (see `plan::pg_tag_rows_estimate`).
static ESTIMATES: std::sync::LazyLock<
    parking_lot::Mutex<HashMap<EstimateKey, (f64, std::time::Instant)>>,
> = std::sync::LazyLock::new(Default::default);

/// A tag's rows as the statistics bound them (reused for `ESTIMATE_TTL`; a choice of plan rests
/// on it, never an answer).
fn tag_rows_estimate(
    c: &Conn<'_>,
    key: &str,
    value: &query::TagValue,
) -> std::result::Result<f64, StoreError> {
    // `try_lock`: the cache is never waited for (nor can a child forked while another thread
    // held it wait forever); without it the estimate is read from the server.
    let entry = (c.location().to_owned(), key.to_owned(), value.clone());
    let cached = ESTIMATES
        .try_lock()
        .and_then(|cache| cache.get(&entry).copied());
    if let Some((estimate, at)) = cached {
        if at.elapsed() < ESTIMATE_TTL {
            return Ok(estimate);
        }
    }
    let estimate = c
        .query_opt(&plan::pg_tag_rows_estimate(key, value), |r| r.real(0))?
        .unwrap_or(0.0);
    if let Some(mut cache) = ESTIMATES.try_lock() {
        if cache.len() >= 4_096 {
            cache.clear();
        }
        cache.insert(entry, (estimate, std::time::Instant::now()));
    }
    Ok(estimate)
}

/// PostgreSQL: whether `run_tags.run_id` is a foreign key of `runs.run_id` (stock's schema has
/// it), so that every tag row with a run id joins exactly one run (see `plan::pg_count`).
fn tag_rows_join(c: &Conn<'_>) -> std::result::Result<bool, StoreError> {
    let q = sql(
        "SELECT 1 FROM pg_constraint AS k JOIN pg_attribute AS a ON a.attrelid = k.conrelid \
         AND a.attnum = k.conkey[1] JOIN pg_attribute AS r ON r.attrelid = k.confrelid \
         AND r.attnum = k.confkey[1] WHERE k.contype = 'f' AND k.conrelid = 'run_tags'::regclass \
         AND k.confrelid = 'runs'::regclass AND cardinality(k.conkey) = 1 \
         AND a.attname = 'run_id' AND r.attname = 'run_id' AND NOT k.condeferrable LIMIT 1",
    );
    Ok(c.query_opt(&q, |_| Ok(()))?.is_some())
}

/// Rows of the runs with `ids`, in that order (an id listed twice gives its row twice, as a
/// tag join that matches a run twice does in stock).
fn rows_by_id<T: Clone>(
    c: &Conn<'_>,
    columns: &[&str],
    ids: &[i64],
    f: &mut impl FnMut(&crate::store::Row<'_>) -> std::result::Result<T, StoreError>,
) -> Result<Vec<T>> {
    // Ids bound per statement, well under any SQLite's variable limit.
    const CHUNK: usize = 10_000;
    let cols: Vec<String> = columns.iter().map(|col| format!("runs.{col}")).collect();
    let id_column = columns.len();
    let mut by_id: HashMap<i64, T> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let text = format!(
            "SELECT {}, runs.id FROM runs WHERE runs.id IN ",
            cols.join(", ")
        );
        let mut q = sql(&text);
        q.bind_list(chunk);
        for (id, row) in c.query(&q, |r| Ok((r.int(id_column)?, f(r)?)))? {
            by_id.insert(id, row);
        }
    }
    Ok(ids.iter().filter_map(|id| by_id.get(id).cloned()).collect())
}

fn insert_run(c: &Conn<'_>, run: &NewRun) -> Result<()> {
    if let Some(snapshot_id) = &run.snapshot_id {
        if !snapshot_exists(c, snapshot_id)? {
            return Err(RunsError::SnapshotDoesNotExist(snapshot_id.clone()));
        }
    }
    let mut columns = String::from(
        "run_id, snapshot_id, pipeline_name, status, run_body, partition, partition_set, \
         backfill_id",
    );
    let mut values = row![
        run.run_id.as_str(),
        run.snapshot_id.as_deref(),
        run.job_name.as_deref(),
        run.status.as_str(),
        run.body.as_str(),
        run.partition.as_deref(),
        run.partition_set.as_deref(),
        run.backfill_id.as_deref(),
    ]
    .to_vec();
    if let Some(ts) = &run.create_timestamp {
        columns.push_str(", create_timestamp");
        values.push(ts.as_str().into());
    }
    let mut q = sql(&format!("INSERT INTO runs ({columns}) VALUES "));
    q.values(values);
    match c.execute(&q) {
        Err(e) if e.is_unique_violation() => {
            return Err(RunsError::RunAlreadyExists(run.run_id.clone()))
        }
        other => other?,
    };
    if !run.tags.is_empty() {
        // One multi-row statement: per-statement overhead dominates small inserts.
        let mut q = sql("INSERT INTO run_tags (run_id, \"key\", value) VALUES ");
        for (i, (key, value)) in run.tags.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.values(row![run.run_id.as_str(), key.as_str(), value.as_str()]);
        }
        c.execute(&q)?;
    }
    Ok(())
}

fn insert_run_tag(c: &Conn<'_>, run_id: &str, key: &str, value: &str) -> Result<()> {
    let mut q = sql("INSERT INTO run_tags (run_id, \"key\", value) VALUES ");
    q.values(row![run_id, key, value]);
    c.execute(&q)?;
    Ok(())
}

fn update_run_tag(c: &Conn<'_>, run_id: &str, key: &str, value: &str) -> Result<usize> {
    let mut q = sql("UPDATE run_tags SET value = ");
    q.bind(value)
        .push(" WHERE run_tags.run_id = ")
        .bind(run_id)
        .push(" AND run_tags.\"key\" = ")
        .bind(key);
    Ok(c.execute(&q)?)
}

#[cfg(test)]
mod tests {
    use super::query::{Bucket, TagValue};
    use super::*;

    fn store() -> (tempfile::TempDir, Runs) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        let runs = Runs::open(path.to_str().unwrap(), Durability::Off).unwrap();
        (dir, runs)
    }

    fn run(id: &str, job: &str, tags: &[(&str, &str)]) -> NewRun {
        NewRun {
            run_id: id.into(),
            job_name: Some(job.into()),
            status: "NOT_STARTED".into(),
            body: format!("{{\"run_id\": \"{id}\"}}"),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn add_and_read_back_newest_first() {
        let (_d, runs) = store();
        for i in 0..3 {
            runs.add_run(&run(&format!("r{i}"), "job", &[])).unwrap();
        }
        let ids = runs.run_ids(RunsQuery::default()).unwrap();
        assert_eq!(ids, ["r2", "r1", "r0"]);
        assert_eq!(runs.runs_count(RunsQuery::default()).unwrap(), 3);
    }

    #[test]
    fn duplicate_run_is_refused_and_original_kept() {
        let (_d, runs) = store();
        runs.add_run(&run("r", "a", &[("k", "v")])).unwrap();
        let err = runs.add_run(&run("r", "b", &[("k", "w")])).unwrap_err();
        assert!(matches!(err, RunsError::RunAlreadyExists(_)));
        let body = runs.run_by_id("r").unwrap().unwrap();
        assert_eq!(body.1, "NOT_STARTED");
        assert!(body.0.unwrap().contains("\"r\""));
        let tags = runs.run_tags(&["k".into()], None, None).unwrap();
        assert_eq!(tags, [("k".to_string(), "v".to_string())]);
    }

    #[test]
    fn missing_snapshot_is_refused() {
        let (_d, runs) = store();
        let mut r = run("r", "a", &[]);
        r.snapshot_id = Some("nope".into());
        assert!(matches!(
            runs.add_run(&r).unwrap_err(),
            RunsError::SnapshotDoesNotExist(_)
        ));
        assert!(!runs.has_run("r").unwrap());
    }

    #[test]
    fn tag_filter_and_cursor_paging() {
        let (_d, runs) = store();
        for i in 0..5 {
            let team = if i % 2 == 0 { "x" } else { "y" };
            runs.add_run(&run(&format!("r{i}"), "job", &[("team", team)]))
                .unwrap();
        }
        let filter = RunsFilter {
            tags: Some(vec![("team".into(), TagValue::One("x".into()))]),
            ..Default::default()
        };
        let q = RunsQuery {
            filter: Some(&filter),
            limit: Some(2),
            ..Default::default()
        };
        assert_eq!(runs.run_ids(q).unwrap(), ["r4", "r2"]);
        let q = RunsQuery {
            filter: Some(&filter),
            cursor: Some("r2"),
            ..Default::default()
        };
        assert_eq!(runs.run_ids(q).unwrap(), ["r0"]);
    }

    #[test]
    fn status_update_sets_times_and_upserts_tags() {
        let (_d, runs) = store();
        runs.add_run(&run("r", "job", &[])).unwrap();
        runs.update_run_status(
            "r",
            &StatusUpdate {
                body: "{}".into(),
                status: "FAILURE".into(),
                update_timestamp: "2026-01-01 00:00:00.000000".into(),
                start_time: None,
                end_time: Some(12.5),
                tags: TagChanges {
                    update: vec![],
                    insert: vec![("dagster/failure_reason".into(), "STEP_FAILURE".into())],
                },
            },
        )
        .unwrap();
        let rec = &runs.run_records(RunsQuery::default()).unwrap()[0];
        assert_eq!(rec.run_id, "r");
        assert_eq!(rec.status, "FAILURE");
        assert_eq!(rec.update_timestamp, "2026-01-01 00:00:00.000000");
        assert_eq!(rec.end_time, Some(12.5));
        assert_eq!(runs.run_tag_keys().unwrap(), ["dagster/failure_reason"]);
    }

    #[test]
    fn delete_removes_run_and_tags() {
        let (_d, runs) = store();
        runs.add_run(&run("r", "job", &[("k", "v")])).unwrap();
        runs.delete_run("r").unwrap();
        assert!(!runs.has_run("r").unwrap());
        assert!(runs.run_tag_keys().unwrap().is_empty());
    }

    #[test]
    fn job_buckets_keep_newest_per_job() {
        let (_d, runs) = store();
        for (i, job) in ["a", "b", "a", "a", "b", "c"].iter().enumerate() {
            runs.add_run(&run(&format!("r{i}"), job, &[])).unwrap();
        }
        let bucket = Bucket::Job {
            names: vec!["a".into(), "b".into()],
            limit: Some(2),
        };
        let q = RunsQuery {
            bucket: Some(&bucket),
            ..Default::default()
        };
        assert_eq!(runs.run_ids(q).unwrap(), ["r4", "r3", "r2", "r1"]);
    }

    #[test]
    fn partition_data_keeps_newest_run_per_partition() {
        let (_d, runs) = store();
        for (i, p) in ["p1", "p2", "p1"].iter().enumerate() {
            let mut r = run(&format!("r{i}"), "job", &[]);
            r.partition = Some(p.to_string());
            runs.add_run(&r).unwrap();
        }
        let rows = runs.partition_data(&RunsFilter::default()).unwrap();
        let got: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.run_id.as_str(), r.partition.as_str()))
            .collect();
        assert_eq!(got, [("r2", "p1"), ("r1", "p2")]);
    }
}
