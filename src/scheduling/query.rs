//! The domain's statements. Each is stock `SqlScheduleStorage`'s (same tables, conditions and
//! order, so SQLite returns the same rows in the same order), except the two tick reads stock
//! answers by sorting every tick of an instigator (docs: ARCHITECTURE.md, "scheduling"):
//! `ticks` walks `idx_tick_selector_timestamp` in timestamp order on both arms of stock's OR,
//! and `batch_ticks` reads each selector's newest ticks by that index instead of ranking all of
//! them with a window function.

use crate::store::sql::Where;
use crate::store::{Dialect, Sql, Value};

/// Time bounds, limit and statuses of a tick read, as stock applies them (a bound of 0, a limit
/// of 0 and an empty status list are no filter; the caller passes None / empty for those).
#[derive(Debug, Clone, Default)]
pub struct TickFilter {
    /// Stock's `timestamp < ?`, as the naive UTC text it binds.
    pub before: Option<String>,
    /// Stock's `timestamp > ?`.
    pub after: Option<String>,
    pub limit: Option<i64>,
    pub statuses: Vec<String>,
}

impl TickFilter {
    fn conditions(&self, w: &mut Where) {
        if let Some(before) = &self.before {
            w.and(Sql::compare("timestamp < ", before.as_str()));
        }
        if let Some(after) = &self.after {
            w.and(Sql::compare("timestamp > ", after.as_str()));
        }
        if !self.statuses.is_empty() {
            w.and(Sql::is_in("status", &self.statuses));
        }
    }
}

// -- instigator state -------------------------------------------------------------------------

/// What stock reads instigator states from: `instigators` once the selector-id migration has
/// filled it, `jobs` before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateTable {
    Instigators,
    Jobs,
}

pub fn states(
    table: StateTable,
    repository_origin_id: Option<&str>,
    repository_selector_id: Option<&str>,
    instigator_type: Option<&str>,
    statuses: &[String],
) -> Sql {
    let mut w = Where::default();
    let mut q = match table {
        StateTable::Instigators => {
            if let Some(id) = repository_selector_id {
                w.and(Sql::compare("instigators.repository_selector_id = ", id));
            }
            if let Some(t) = instigator_type {
                w.and(Sql::compare("instigators.instigator_type = ", t));
            }
            if !statuses.is_empty() {
                w.and(Sql::is_in("instigators.status", statuses));
            }
            Sql::new("SELECT instigators.instigator_body FROM instigators")
        }
        StateTable::Jobs => {
            if let Some(id) = repository_origin_id {
                w.and(Sql::compare("jobs.repository_origin_id = ", id));
            }
            if let Some(t) = instigator_type {
                w.and(Sql::compare("jobs.job_type = ", t));
            }
            if !statuses.is_empty() {
                w.and(Sql::is_in("jobs.status", statuses));
            }
            Sql::new("SELECT jobs.job_body FROM jobs")
        }
    };
    w.write_to(&mut q);
    q
}

pub fn state(table: StateTable, origin_id: &str, selector_id: &str) -> Sql {
    match table {
        StateTable::Instigators => Sql::compare(
            "SELECT instigators.instigator_body FROM instigators WHERE instigators.selector_id = ",
            selector_id,
        ),
        StateTable::Jobs => Sql::compare(
            "SELECT jobs.job_body FROM jobs WHERE jobs.job_origin_id = ",
            origin_id,
        ),
    }
}

pub fn insert_job(
    origin_id: &str,
    repository_origin_id: &str,
    status: &str,
    instigator_type: &str,
    body: &str,
) -> Sql {
    let mut q = Sql::new(
        "INSERT INTO jobs (job_origin_id, repository_origin_id, status, job_type, job_body) VALUES ",
    );
    q.values(crate::row![
        origin_id,
        repository_origin_id,
        status,
        instigator_type,
        body
    ]);
    q
}

/// Stock's insert into `instigators`, or on a taken selector id its update (which leaves
/// `repository_selector_id` as it was).
pub fn upsert_instigator(
    selector_id: &str,
    repository_selector_id: &str,
    status: &str,
    instigator_type: &str,
    body: &str,
    now: &str,
) -> Sql {
    let mut q = Sql::new(
        "INSERT INTO instigators (selector_id, repository_selector_id, status, instigator_type, \
         instigator_body) VALUES ",
    );
    q.values(crate::row![
        selector_id,
        repository_selector_id,
        status,
        instigator_type,
        body
    ]);
    q.push(
        " ON CONFLICT (selector_id) DO UPDATE SET status = excluded.status, \
         instigator_type = excluded.instigator_type, instigator_body = excluded.instigator_body, \
         update_timestamp = ",
    )
    .bind(now);
    q
}

pub fn update_job(
    origin_id: &str,
    selector_id: Option<&str>,
    status: &str,
    body: &str,
    now: &str,
) -> Sql {
    let mut q = Sql::compare("UPDATE jobs SET status = ", status);
    q.push(", job_body = ").bind(body);
    q.push(", update_timestamp = ").bind(now);
    if let Some(selector_id) = selector_id {
        q.push(", selector_id = ").bind(selector_id);
    }
    q.push(" WHERE jobs.job_origin_id = ").bind(origin_id);
    q
}

pub fn delete_job(origin_id: &str) -> Sql {
    Sql::compare("DELETE FROM jobs WHERE jobs.job_origin_id = ", origin_id)
}

pub fn jobs_of_selector(selector_id: &str) -> Sql {
    Sql::compare(
        "SELECT count(*) AS count_1 FROM jobs WHERE jobs.selector_id = ",
        selector_id,
    )
}

pub fn delete_instigator(selector_id: &str) -> Sql {
    Sql::compare(
        "DELETE FROM instigators WHERE instigators.selector_id = ",
        selector_id,
    )
}

// -- ticks ------------------------------------------------------------------------------------

pub fn tick(id: i64) -> Sql {
    Sql::compare(
        "SELECT job_ticks.id, job_ticks.tick_body FROM job_ticks WHERE job_ticks.id = ",
        id,
    )
}

pub fn ticks_by_ids(ids: &[i64]) -> Sql {
    let mut q =
        Sql::new("SELECT job_ticks.id, job_ticks.tick_body FROM job_ticks WHERE job_ticks.id IN ");
    q.bind_list(ids);
    q
}

/// The columns a tick read returns: the body, or stock's summary columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickColumns {
    Body,
    Summary,
}

impl TickColumns {
    fn list(self) -> &'static str {
        match self {
            TickColumns::Body => "id, tick_body, timestamp",
            TickColumns::Summary => "id, job_origin_id, type, status, timestamp",
        }
    }
}

/// One instigator's ticks, newest first: stock's `selector_id = ? OR (selector_id IS NULL AND
/// job_origin_id = ?)` as two arms merged in timestamp order, each a walk of
/// `idx_tick_selector_timestamp` that stops at the limit (the legacy arm reads the ticks that
/// never got a selector id, none on a file stock or dagster-rs created). Stock's one statement
/// collects every tick of the instigator and sorts them; the rows are the same, in the same
/// order (ties in time oldest id first, as stock's sort leaves them: SQLite sorts only each run
/// of equal times, so the walk still stops at the limit).
///
/// On PostgreSQL, with a limit, each arm is limited before the merge: its planner otherwise
/// reads and sorts every tick of the instigator (0.6 s for 50,000 ticks; 0.3 ms this way).
pub fn ticks(
    dialect: Dialect,
    columns: TickColumns,
    origin_id: &str,
    selector_id: &str,
    filter: &TickFilter,
) -> Sql {
    let arm = |legacy: bool| {
        let mut w = Where::default();
        if legacy {
            w.and(Sql::new("selector_id IS NULL"));
            w.and(Sql::compare("job_origin_id = ", origin_id));
        } else {
            w.and(Sql::compare("selector_id = ", selector_id));
        }
        filter.conditions(&mut w);
        let mut q = Sql::new(&format!("SELECT {} FROM job_ticks", columns.list()));
        q.pin("idx_tick_selector_timestamp");
        w.write_to(&mut q);
        q
    };
    if let (Dialect::Postgres, Some(limit)) = (dialect, filter.limit) {
        let mut q = Sql::new("(");
        q.append(&arm(false))
            .push(" ORDER BY timestamp DESC, id ASC LIMIT ")
            .bind(limit)
            .push(") UNION ALL (")
            .append(&arm(true))
            .push(" ORDER BY timestamp DESC, id ASC LIMIT ")
            .bind(limit)
            .push(") ORDER BY timestamp DESC, id ASC LIMIT ")
            .bind(limit);
        return q;
    }
    let mut q = arm(false);
    q.push(" UNION ALL ").append(&arm(true));
    q.push(" ORDER BY timestamp DESC, id ASC");
    if let Some(limit) = filter.limit {
        q.push(" LIMIT ").bind(limit);
    }
    q
}

/// Stock's ticks of an instigator on a file without the `instigators` table (by origin only).
pub fn ticks_by_origin(columns: TickColumns, origin_id: &str, filter: &TickFilter) -> Sql {
    let mut w = Where::default();
    w.and(Sql::compare("job_origin_id = ", origin_id));
    filter.conditions(&mut w);
    let mut q = Sql::new(&format!("SELECT {} FROM job_ticks", columns.list()));
    q.pin("idx_job_tick_timestamp");
    w.write_to(&mut q);
    q.push(" ORDER BY timestamp DESC, id ASC");
    if let Some(limit) = filter.limit {
        q.push(" LIMIT ").bind(limit);
    }
    q
}

/// `SELECT timestamp FROM job_ticks` of a selector's ticks (of `statuses`, when given), newest
/// first: the `limit`-th is the oldest time stock's `rank() <= limit` keeps.
fn tick_times(selector_id: &str, limit: i64, statuses: &[String]) -> Sql {
    let mut q = Sql::new("SELECT timestamp FROM job_ticks");
    q.pin("idx_tick_selector_timestamp")
        .push(" WHERE selector_id = ")
        .bind(selector_id);
    if !statuses.is_empty() {
        q.push(" AND ").append(&Sql::is_in("status", statuses));
    }
    q.push(" ORDER BY timestamp DESC LIMIT 1 OFFSET ")
        .bind(limit - 1);
    q
}

/// A selector's ticks (of `statuses`) from time `since` up (every tick when `since` is None),
/// newest first, ties by id newest first; `since` given as a statement of its own (SQLite) or
/// as a value (PostgreSQL: see `batch_tick_floor`).
fn ticks_since(selector_id: &str, statuses: &[String], since: Option<Sql>) -> Sql {
    let mut q = Sql::new("SELECT id, selector_id, tick_body FROM job_ticks");
    q.pin("idx_tick_selector_timestamp")
        .push(" WHERE selector_id = ")
        .bind(selector_id);
    if !statuses.is_empty() {
        q.push(" AND ").append(&Sql::is_in("status", statuses));
    }
    if let Some(since) = since {
        q.push(" AND timestamp >= ").append(&since);
    }
    q.push(" ORDER BY timestamp DESC, id DESC");
    q
}

/// The newest ticks of one selector as stock's `rank() <= limit` keeps them: the `limit`
/// newest, and every tick as new as the last of those (a tie in time shares its rank). Two
/// seeks of `idx_tick_selector_timestamp`: the limit-th newest time, then the ticks from it up.
pub fn batch_ticks(selector_id: &str, limit: i64, statuses: &[String]) -> Sql {
    let mut since = Sql::new("coalesce((");
    since
        .append(&tick_times(selector_id, limit, statuses))
        .push("), ")
        .earliest_timestamp()
        .push(")");
    ticks_since(selector_id, statuses, Some(since))
}

/// PostgreSQL: `batch_ticks` in two statements, the limit-th newest time first
/// (`batch_tick_floor`, None when the selector has fewer ticks), then the ticks from it up
/// (`batch_ticks_since`) with that time bound as a value: planned for a time the planner cannot
/// see (a subquery's), the second statement is estimated at a third of the selector's ticks and
/// gets a parallel plan whose workers take longer to start than the 25 rows take to read (23 ms
/// a selector at 1,000,000 ticks, against well under one with the value).
pub fn batch_tick_floor(selector_id: &str, limit: i64, statuses: &[String]) -> Sql {
    tick_times(selector_id, limit, statuses)
}

pub fn batch_ticks_since(selector_id: &str, statuses: &[String], since: Option<&str>) -> Sql {
    ticks_since(
        selector_id,
        statuses,
        since.map(|t| {
            let mut v = Sql::new("");
            v.bind(t);
            v
        }),
    )
}

pub struct TickValues<'a> {
    pub origin_id: &'a str,
    pub selector_id: Option<&'a str>,
    pub status: &'a str,
    pub instigator_type: &'a str,
    pub timestamp: &'a str,
    pub body: &'a str,
}

pub fn insert_tick(t: &TickValues<'_>) -> Sql {
    let mut q = Sql::new("INSERT INTO job_ticks (job_origin_id, ");
    if t.selector_id.is_some() {
        q.push("selector_id, ");
    }
    q.push("status, type, timestamp, tick_body) VALUES (")
        .bind(t.origin_id);
    if let Some(selector_id) = t.selector_id {
        q.push(", ").bind(selector_id);
    }
    q.push(", ").bind(t.status);
    q.push(", ").bind(t.instigator_type);
    q.push(", ").bind(t.timestamp);
    q.push(", ").bind(t.body).push(")");
    q
}

pub fn update_tick(id: i64, t: &TickValues<'_>) -> Sql {
    let mut q = Sql::compare("UPDATE job_ticks SET status = ", t.status);
    q.push(", type = ").bind(t.instigator_type);
    q.push(", timestamp = ").bind(t.timestamp);
    q.push(", tick_body = ").bind(t.body);
    if let Some(selector_id) = t.selector_id {
        q.push(", selector_id = ").bind(selector_id);
    }
    q.push(" WHERE job_ticks.id = ").bind(id);
    q
}

/// Stock's purge, statement for statement (its OR reads two index ranges bounded by time).
pub fn purge_ticks(
    origin_id: &str,
    selector_id: Option<&str>,
    before: &str,
    statuses: &[String],
) -> Sql {
    let mut q = Sql::compare("DELETE FROM job_ticks WHERE job_ticks.timestamp < ", before);
    if !statuses.is_empty() {
        q.push(" AND ")
            .append(&Sql::is_in("job_ticks.status", statuses));
    }
    match selector_id {
        Some(selector_id) => {
            q.push(" AND (job_ticks.selector_id = ")
                .bind(selector_id)
                .push(" OR job_ticks.selector_id IS NULL AND job_ticks.job_origin_id = ")
                .bind(origin_id)
                .push(")");
        }
        None => {
            q.push(" AND job_ticks.job_origin_id = ").bind(origin_id);
        }
    }
    q
}

// -- declarative automation evaluations -------------------------------------------------------

/// Stock's insert of one asset's evaluation, or on a taken (asset, evaluation) its update.
pub fn upsert_evaluation(
    evaluation_id: i64,
    asset_key: &str,
    body: &str,
    num_requested: Option<i64>,
) -> Sql {
    let mut q = Sql::new(
        "INSERT INTO asset_daemon_asset_evaluations (evaluation_id, asset_key, \
         asset_evaluation_body, num_requested) VALUES ",
    );
    q.values([
        Value::Int(evaluation_id),
        Value::from(asset_key),
        Value::from(body),
        Value::from(num_requested),
    ]);
    q.push(
        " ON CONFLICT (asset_key, evaluation_id) DO UPDATE SET \
         asset_evaluation_body = excluded.asset_evaluation_body, \
         num_requested = excluded.num_requested",
    );
    q
}

const EVALUATION_COLUMNS: &str = "SELECT asset_daemon_asset_evaluations.id, \
     asset_daemon_asset_evaluations.asset_evaluation_body, \
     asset_daemon_asset_evaluations.evaluation_id, \
     asset_daemon_asset_evaluations.create_timestamp, \
     asset_daemon_asset_evaluations.asset_key FROM asset_daemon_asset_evaluations";

pub fn evaluations(asset_key: &str, limit: Option<i64>, cursor: Option<i64>) -> Sql {
    let mut q = Sql::new(EVALUATION_COLUMNS);
    q.push(" WHERE asset_daemon_asset_evaluations.asset_key = ")
        .bind(asset_key);
    if let Some(cursor) = cursor {
        q.push(" AND asset_daemon_asset_evaluations.evaluation_id < ")
            .bind(cursor);
    }
    q.push(" ORDER BY asset_daemon_asset_evaluations.evaluation_id DESC");
    if let Some(limit) = limit {
        q.push(" LIMIT ").bind(limit);
    }
    q
}

pub fn evaluations_of(evaluation_id: i64) -> Sql {
    let mut q = Sql::new(EVALUATION_COLUMNS);
    q.push(" WHERE asset_daemon_asset_evaluations.evaluation_id = ")
        .bind(evaluation_id);
    q
}

/// Stock's purge by creation time: `create_timestamp` has no index, so this reads the table
/// (a periodic daemon cleanup; one row per asset per evaluation).
pub fn purge_evaluations(before: &str) -> Sql {
    Sql::compare(
        "DELETE FROM asset_daemon_asset_evaluations WHERE \
         asset_daemon_asset_evaluations.create_timestamp < ",
        before,
    )
}

// -- admin ------------------------------------------------------------------------------------

pub fn revision() -> Sql {
    Sql::new("SELECT alembic_version.version_num FROM alembic_version")
}

pub fn index_done(name: &str) -> Sql {
    let mut q = Sql::compare(
        "SELECT 1 FROM secondary_indexes WHERE secondary_indexes.name = ",
        name,
    );
    q.push(" AND secondary_indexes.migration_completed IS NOT NULL LIMIT 1");
    q
}

/// Every `jobs` row, as stock's selector-id migration reads them.
pub fn jobs_for_migration() -> Sql {
    Sql::new(
        "SELECT jobs.id, jobs.job_body, jobs.create_timestamp, jobs.update_timestamp FROM jobs \
         ORDER BY jobs.id ASC",
    )
}

pub struct InstigatorBackfill<'a> {
    pub selector_id: &'a str,
    pub repository_selector_id: &'a str,
    pub status: &'a str,
    pub instigator_type: &'a str,
    pub body: &'a str,
    pub create_timestamp: Option<&'a str>,
    pub update_timestamp: Option<&'a str>,
}

/// The migration's insert of a state into `instigators`, or its update of the selector's row.
pub fn backfill_instigator(b: &InstigatorBackfill<'_>) -> Sql {
    let mut q = Sql::new(
        "INSERT INTO instigators (selector_id, repository_selector_id, status, instigator_type, \
         instigator_body, create_timestamp, update_timestamp) VALUES ",
    );
    q.values(crate::row![
        b.selector_id,
        b.repository_selector_id,
        b.status,
        b.instigator_type,
        b.body,
        b.create_timestamp,
        b.update_timestamp
    ]);
    q.push(
        " ON CONFLICT (selector_id) DO UPDATE SET status = excluded.status, \
         repository_selector_id = excluded.repository_selector_id, \
         instigator_type = excluded.instigator_type, instigator_body = excluded.instigator_body, \
         update_timestamp = excluded.update_timestamp",
    );
    q
}

pub fn set_job_selector(job_id: i64, selector_id: &str) -> Sql {
    let mut q = Sql::compare("UPDATE jobs SET selector_id = ", selector_id);
    q.push(" WHERE jobs.id = ")
        .bind(job_id)
        .push(" AND jobs.selector_id IS NULL");
    q
}

pub fn set_tick_selector(origin_id: &str, selector_id: &str) -> Sql {
    // Pinned: with statistics of few origins SQLite would rather read the whole table.
    let mut q = Sql::new("UPDATE job_ticks");
    q.pin("idx_job_tick_timestamp")
        .push(" SET selector_id = ")
        .bind(selector_id)
        .push(" WHERE job_ticks.job_origin_id = ")
        .bind(origin_id)
        .push(" AND job_ticks.selector_id IS NULL");
    q
}

pub const WIPE: &[&str] = &["DELETE FROM jobs", "DELETE FROM job_ticks"];
