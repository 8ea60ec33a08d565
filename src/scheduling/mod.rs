//! The scheduling domain: Dagster's `ScheduleStorage` over `schedules/schedules.db` —
//! instigator states (`jobs`, `instigators`), ticks (`job_ticks`), declarative-automation
//! evaluations (`asset_daemon_asset_evaluations`) and the file's admin (revision, data-migration
//! marks, stock's two selector-id migrations).
//!
//! Statements are stock `SqlScheduleStorage`'s (`query.rs`), except the tick reads stock
//! answers by sorting or ranking every tick of an instigator, which walk
//! `idx_tick_selector_timestamp` instead and return the same rows. Stock runs a method's check
//! and its writes on separate connections; here each write method is one `BEGIN IMMEDIATE`
//! transaction, its checks included, so nothing is stored when it fails.

pub mod bindings;
pub mod plans;
pub mod query;

use crate::errors::SchedulingError;
use crate::store::schema::SCHEDULES_SCHEMA;
use crate::store::{Conn, Db, Dialect, Durability, Sql};
use query::{StateTable, TickColumns, TickFilter, TickValues};

type Result<T> = std::result::Result<T, SchedulingError>;

/// Stock's data migrations of the file (`dagster._core.storage.schedules.migration`).
pub const JOBS_SELECTOR_ID: &str = "schedule_jobs_selector_id";
pub const TICKS_SELECTOR_ID: &str = "schedule_ticks_selector_id";

/// Which of stock's optional tables the file has (its capability checks). A file at the head
/// revision, the only one the store opens, has all of them unless dropped by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, pyo3::IntoPyObject)]
pub struct Layout {
    pub instigators: bool,
    pub evaluations: bool,
    pub secondary_indexes: bool,
}

/// An instigator state's columns, as stock derives them from the `InstigatorState`.
#[derive(Debug, Clone, pyo3::FromPyObject)]
#[pyo3(from_item_all)]
pub struct StateRow {
    pub origin_id: String,
    pub selector_id: String,
    pub repository_origin_id: String,
    pub repository_selector_id: String,
    pub status: String,
    pub instigator_type: String,
    pub body: String,
}

/// A tick's columns, as stock derives them from its `TickData`.
#[derive(Debug, Clone, pyo3::FromPyObject)]
#[pyo3(from_item_all)]
pub struct TickRow {
    pub origin_id: String,
    /// None when stock leaves the column out (a tick without a selector id).
    pub selector_id: Option<String>,
    pub status: String,
    pub instigator_type: String,
    /// Naive UTC text, as stock binds the tick's timestamp.
    pub timestamp: String,
    pub body: String,
}

impl TickRow {
    fn values(&self, with_selector: bool) -> TickValues<'_> {
        TickValues {
            origin_id: &self.origin_id,
            selector_id: self.selector_id.as_deref().filter(|_| with_selector),
            status: &self.status,
            instigator_type: &self.instigator_type,
            timestamp: &self.timestamp,
            body: &self.body,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, pyo3::IntoPyObject)]
pub struct StoredTick {
    pub id: i64,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, pyo3::IntoPyObject)]
pub struct TickSummary {
    pub id: i64,
    pub origin_id: Option<String>,
    pub instigator_type: Option<String>,
    pub status: Option<String>,
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, pyo3::IntoPyObject)]
pub struct BatchTick {
    pub id: i64,
    pub selector_id: String,
    pub body: String,
}

/// One asset's evaluation to store.
#[derive(Debug, Clone, pyo3::FromPyObject)]
#[pyo3(from_item_all)]
pub struct EvaluationInput {
    pub asset_key: String,
    pub body: String,
    pub num_requested: Option<i64>,
}

/// A stored evaluation, with the columns stock's `from_db_row` reads.
#[derive(Debug, Clone, PartialEq, Eq, pyo3::IntoPyObject)]
pub struct StoredEvaluation {
    pub id: i64,
    pub body: Option<String>,
    pub evaluation_id: Option<i64>,
    pub create_timestamp: Option<String>,
    pub asset_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, pyo3::IntoPyObject)]
pub struct JobMigrationRow {
    pub id: i64,
    pub body: Option<String>,
    pub create_timestamp: Option<String>,
    pub update_timestamp: Option<String>,
}

/// What stock's selector-id migration writes for one `jobs` row.
#[derive(Debug, Clone, pyo3::FromPyObject)]
#[pyo3(from_item_all)]
pub struct InstigatorBackfillRow {
    pub job_id: i64,
    pub selector_id: String,
    pub repository_selector_id: String,
    pub status: String,
    pub instigator_type: String,
    pub body: String,
    pub create_timestamp: Option<String>,
    pub update_timestamp: Option<String>,
}

#[derive(Debug, Clone, pyo3::FromPyObject)]
#[pyo3(from_item_all)]
pub struct TickSelector {
    pub origin_id: String,
    pub selector_id: String,
}

/// The schedule storage of one `schedules.db`.
#[derive(Debug)]
pub struct Scheduling {
    db: Db,
    layout: Layout,
}

impl Scheduling {
    pub fn open(path: &str, durability: Durability) -> Result<Scheduling> {
        Scheduling::on(Db::open(path, durability, &SCHEDULES_SCHEMA)?)
    }

    /// The schedule store over `db`, a database holding stock's schedule storage tables.
    pub fn on(db: Db) -> Result<Scheduling> {
        let layout = db.read(layout)?;
        Ok(Scheduling { db, layout })
    }

    pub fn path(&self) -> &str {
        self.db.location()
    }

    pub fn dispose(&self) {
        self.db.dispose();
    }

    /// Forget the file's indexes; the next statement that pins one reads them again.
    pub fn reload_layout(&self) {
        self.db.reload_layout();
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        self.db.read(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        self.db.write(f)
    }

    /// Where stock reads states from on this file now (the mark can appear at any time, set by
    /// `dagster instance migrate` in another process).
    fn state_table(&self, c: &Conn<'_>) -> Result<StateTable> {
        if self.layout.instigators && index_done(c, JOBS_SELECTOR_ID, self.layout)? {
            Ok(StateTable::Instigators)
        } else {
            Ok(StateTable::Jobs)
        }
    }

    // -- instigator state ---------------------------------------------------------------

    pub fn instigator_states(
        &self,
        repository_origin_id: Option<&str>,
        repository_selector_id: Option<&str>,
        instigator_type: Option<&str>,
        statuses: &[String],
    ) -> Result<Vec<String>> {
        self.read(|c| {
            let table = self.state_table(c)?;
            let q = query::states(
                table,
                repository_origin_id,
                repository_selector_id,
                instigator_type,
                statuses,
            );
            Ok(c.query(&q, |r| r.text(0))?)
        })
    }

    pub fn instigator_state(&self, origin_id: &str, selector_id: &str) -> Result<Option<String>> {
        self.read(|c| self.state_in(c, origin_id, selector_id))
    }

    fn state_in(&self, c: &Conn<'_>, origin_id: &str, selector_id: &str) -> Result<Option<String>> {
        let table = self.state_table(c)?;
        Ok(
            c.query_opt(&query::state(table, origin_id, selector_id), |r| {
                r.opt_text(0)
            })?
            .flatten(),
        )
    }

    /// Stock's `add_instigator_state`: a taken origin id stores nothing and raises.
    pub fn add_instigator_state(&self, s: &StateRow, now: &str) -> Result<()> {
        self.write(|c| {
            let insert = query::insert_job(
                &s.origin_id,
                &s.repository_origin_id,
                &s.status,
                &s.instigator_type,
                &s.body,
            );
            match c.execute(&insert) {
                Err(e) if e.is_unique_violation() => {
                    return Err(SchedulingError::StateExists(s.origin_id.clone()))
                }
                other => other?,
            };
            self.upsert_instigator(c, s, now)
        })
    }

    fn upsert_instigator(&self, c: &Conn<'_>, s: &StateRow, now: &str) -> Result<()> {
        if self.layout.instigators {
            c.execute(&query::upsert_instigator(
                &s.selector_id,
                &s.repository_selector_id,
                &s.status,
                &s.instigator_type,
                &s.body,
                now,
            ))?;
        }
        Ok(())
    }

    /// Stock's `update_instigator_state`: a state it cannot read raises and stores nothing.
    pub fn update_instigator_state(&self, s: &StateRow, now: &str) -> Result<()> {
        self.write(|c| {
            if self.state_in(c, &s.origin_id, &s.selector_id)?.is_none() {
                return Err(SchedulingError::StateMissing(s.origin_id.clone()));
            }
            let selector = Some(s.selector_id.as_str()).filter(|_| self.layout.instigators);
            c.execute(&query::update_job(
                &s.origin_id,
                selector,
                &s.status,
                &s.body,
                now,
            ))?;
            self.upsert_instigator(c, s, now)
        })
    }

    pub fn delete_instigator_state(&self, origin_id: &str, selector_id: &str) -> Result<()> {
        self.write(|c| {
            if self.state_in(c, origin_id, selector_id)?.is_none() {
                return Err(SchedulingError::StateMissing(origin_id.to_owned()));
            }
            c.execute(&query::delete_job(origin_id))?;
            if self.layout.instigators {
                let left = c
                    .query_opt(&query::jobs_of_selector(selector_id), |r| r.int(0))?
                    .unwrap_or(0);
                if left == 0 {
                    c.execute(&query::delete_instigator(selector_id))?;
                }
            }
            Ok(())
        })
    }

    // -- ticks --------------------------------------------------------------------------

    pub fn tick(&self, id: i64) -> Result<StoredTick> {
        self.read(|c| {
            c.query_opt(&query::tick(id), stored_tick)?
                .ok_or(SchedulingError::TickMissing(id))
        })
    }

    pub fn ticks_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredTick>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| Ok(c.query(&query::ticks_by_ids(ids), stored_tick)?))
    }

    fn ticks_query(
        &self,
        columns: TickColumns,
        origin_id: &str,
        selector_id: &str,
        filter: &TickFilter,
    ) -> Sql {
        if self.layout.instigators {
            query::ticks(self.db.dialect(), columns, origin_id, selector_id, filter)
        } else {
            query::ticks_by_origin(columns, origin_id, filter)
        }
    }

    pub fn ticks(
        &self,
        origin_id: &str,
        selector_id: &str,
        filter: &TickFilter,
    ) -> Result<Vec<StoredTick>> {
        let q = self.ticks_query(TickColumns::Body, origin_id, selector_id, filter);
        self.read(|c| Ok(c.query(&q, stored_tick)?))
    }

    pub fn tick_summaries(
        &self,
        origin_id: &str,
        selector_id: &str,
        filter: &TickFilter,
    ) -> Result<Vec<TickSummary>> {
        let q = self.ticks_query(TickColumns::Summary, origin_id, selector_id, filter);
        self.read(|c| {
            Ok(c.query(&q, |r| {
                Ok(TickSummary {
                    id: r.int(0)?,
                    origin_id: r.opt_text(1)?,
                    instigator_type: r.opt_text(2)?,
                    status: r.opt_text(3)?,
                    timestamp: r.opt_text(4)?,
                })
            })?)
        })
    }

    /// The newest ticks of each selector (stock's `rank() <= limit`), selectors in id order.
    /// No limit or one under 1 ranks nothing, as stock's `rank <= NULL` does.
    pub fn batch_ticks(
        &self,
        selector_ids: &[String],
        limit: Option<i64>,
        statuses: &[String],
    ) -> Result<Vec<BatchTick>> {
        let limit = match limit {
            Some(limit) if limit >= 1 => limit,
            _ => return Ok(Vec::new()),
        };
        let mut selectors: Vec<&str> = selector_ids.iter().map(String::as_str).collect();
        selectors.sort_unstable();
        selectors.dedup();
        self.read(|c| {
            let mut out = Vec::new();
            for selector in selectors {
                let statement = if c.dialect() == Dialect::Postgres {
                    let floor = query::batch_tick_floor(selector, limit, statuses);
                    let since = c.query_opt(&floor, |r| r.text(0))?;
                    query::batch_ticks_since(selector, statuses, since.as_deref())
                } else {
                    query::batch_ticks(selector, limit, statuses)
                };
                out.extend(c.query(&statement, |r| {
                    Ok(BatchTick {
                        id: r.int(0)?,
                        selector_id: r.text(1)?,
                        body: r.text(2)?,
                    })
                })?);
            }
            Ok(out)
        })
    }

    pub fn create_tick(&self, t: &TickRow) -> Result<i64> {
        let mut q = query::insert_tick(&t.values(self.layout.instigators));
        q.returning_id();
        self.write(|c| {
            let id = c.query_opt(&q, |r| r.int(0))?;
            Ok(id.expect("an INSERT RETURNING gives its row"))
        })
    }

    /// Stock's update: a tick id that is not stored updates nothing, silently.
    pub fn update_tick(&self, id: i64, t: &TickRow) -> Result<()> {
        let q = query::update_tick(id, &t.values(self.layout.instigators));
        self.write(|c| Ok(c.execute(&q).map(|_| ())?))
    }

    pub fn purge_ticks(
        &self,
        origin_id: &str,
        selector_id: &str,
        before: &str,
        statuses: &[String],
    ) -> Result<usize> {
        let selector = Some(selector_id).filter(|_| self.layout.instigators);
        let q = query::purge_ticks(origin_id, selector, before, statuses);
        self.write(|c| Ok(c.execute(&q)?))
    }

    // -- evaluations --------------------------------------------------------------------

    pub fn add_evaluations(&self, evaluation_id: i64, rows: &[EvaluationInput]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(|c| {
            for row in rows {
                c.execute(&query::upsert_evaluation(
                    evaluation_id,
                    &row.asset_key,
                    &row.body,
                    row.num_requested,
                ))?;
            }
            Ok(())
        })
    }

    pub fn evaluations(
        &self,
        asset_key: &str,
        limit: Option<i64>,
        cursor: Option<i64>,
    ) -> Result<Vec<StoredEvaluation>> {
        self.read(|c| {
            Ok(c.query(
                &query::evaluations(asset_key, limit, cursor),
                stored_evaluation,
            )?)
        })
    }

    pub fn evaluations_of(&self, evaluation_id: i64) -> Result<Vec<StoredEvaluation>> {
        self.read(|c| Ok(c.query(&query::evaluations_of(evaluation_id), stored_evaluation)?))
    }

    pub fn purge_evaluations(&self, before: &str) -> Result<usize> {
        self.write(|c| Ok(c.execute(&query::purge_evaluations(before))?))
    }

    // -- admin --------------------------------------------------------------------------

    pub fn wipe(&self) -> Result<()> {
        self.write(|c| {
            for statement in query::WIPE {
                c.execute(&Sql::new(statement))?;
            }
            if self.layout.instigators {
                c.execute(&Sql::new("DELETE FROM instigators"))?;
            }
            if self.layout.evaluations {
                c.execute(&Sql::new("DELETE FROM asset_daemon_asset_evaluations"))?;
            }
            Ok(())
        })
    }

    pub fn revision(&self) -> Result<Option<String>> {
        self.read(|c| Ok(c.query_opt(&query::revision(), |r| r.text(0))?))
    }

    pub fn index_done(&self, name: &str) -> Result<bool> {
        self.read(|c| index_done(c, name, self.layout))
    }

    pub fn mark_index_done(&self, name: &str) -> Result<()> {
        self.write(|c| Ok(c.mark_migration_done(name)?))
    }

    pub fn jobs_for_migration(&self) -> Result<Vec<JobMigrationRow>> {
        self.read(|c| {
            Ok(c.query(&query::jobs_for_migration(), |r| {
                Ok(JobMigrationRow {
                    id: r.int(0)?,
                    body: r.opt_text(1)?,
                    create_timestamp: r.opt_text(2)?,
                    update_timestamp: r.opt_text(3)?,
                })
            })?)
        })
    }

    /// Stock's `add_selector_id_to_jobs_table` writes, in one transaction.
    pub fn backfill_instigators(&self, rows: &[InstigatorBackfillRow]) -> Result<()> {
        self.write(|c| {
            for row in rows {
                c.execute(&query::backfill_instigator(&query::InstigatorBackfill {
                    selector_id: &row.selector_id,
                    repository_selector_id: &row.repository_selector_id,
                    status: &row.status,
                    instigator_type: &row.instigator_type,
                    body: &row.body,
                    create_timestamp: row.create_timestamp.as_deref(),
                    update_timestamp: row.update_timestamp.as_deref(),
                }))?;
                c.execute(&query::set_job_selector(row.job_id, &row.selector_id))?;
            }
            Ok(())
        })
    }

    /// Stock's `add_selector_id_to_ticks_table`: one update per instigator, each committed.
    pub fn set_tick_selectors(&self, selectors: &[TickSelector]) -> Result<()> {
        for s in selectors {
            self.write(
                |c| Ok(c.execute(&query::set_tick_selector(&s.origin_id, &s.selector_id))?),
            )?;
        }
        Ok(())
    }
}

fn layout(c: &Conn<'_>) -> std::result::Result<Layout, crate::errors::StoreError> {
    let names = c.tables_present(&[
        "instigators",
        "asset_daemon_asset_evaluations",
        "secondary_indexes",
    ])?;
    let has = |t: &str| names.iter().any(|n| n == t);
    Ok(Layout {
        instigators: has("instigators"),
        evaluations: has("asset_daemon_asset_evaluations"),
        secondary_indexes: has("secondary_indexes"),
    })
}

fn index_done(c: &Conn<'_>, name: &str, layout: Layout) -> Result<bool> {
    if !layout.secondary_indexes {
        return Ok(false);
    }
    Ok(c.query_opt(&query::index_done(name), |_| Ok(()))?.is_some())
}

fn stored_tick(
    r: &crate::store::Row<'_>,
) -> std::result::Result<StoredTick, crate::errors::StoreError> {
    Ok(StoredTick {
        id: r.int(0)?,
        body: r.text(1)?,
    })
}

fn stored_evaluation(
    r: &crate::store::Row<'_>,
) -> std::result::Result<StoredEvaluation, crate::errors::StoreError> {
    Ok(StoredEvaluation {
        id: r.int(0)?,
        body: r.opt_text(1)?,
        evaluation_id: r.opt_int(2)?,
        create_timestamp: r.opt_text(3)?,
        asset_key: r.opt_text(4)?,
    })
}
