//! How a runs query reaches its rows at any size: which index drives it, in which order.
//!
//! SQLite's planner has no statistics in Dagster's files (and must not get any: `ANALYZE`
//! writes `sqlite_stat1` into a file stock also opens), so on its own it guesses, and for some
//! shapes it guesses badly at a million runs (two tag joins searched by `(key, value)` for every
//! row of the first, then sorted). Here the core chooses the access itself and pins it in the SQL
//! (`INDEXED BY`, `NOT INDEXED`, `CROSS JOIN` order), so the plan is the same on every file,
//! whoever created it:
//!
//! - **Driver**: every candidate from one selective index (`run_ids` through the unique
//!   `run_id` index, a tag through `idx_run_tags (key, value)`, statuses through
//!   `idx_run_status` / `idx_run_range`, a job through `idx_runs_by_job`), the other conditions
//!   checked per candidate (tags through `idx_run_tags_run_idx (run_id, id)`), then sorted by id.
//!   Costs what the driver holds, whatever the limit.
//! - **Ordered path**: runs walked newest (or oldest) first along an index whose order is the
//!   id's (`idx_runs_by_job`, `idx_run_status` for one status, `idx_runs_by_backfill_id` for
//!   top-level runs, or the table itself), in windows of ids that grow until the limit is met.
//!   Costs what it takes to find `limit` matches; no sort.
//!
//! Which one is cheaper depends on the data, and the core measures it. A limit query counts
//! each candidate driver's index entries up to `SMALL` (covering, a fraction of a millisecond)
//! and takes a driver under that at once. Otherwise it walks; a walk that has not found its
//! runs after `CHECK_WALK` ids measures the drivers once (counts capped at what walking on would
//! cost, at the density met so far) and hands the rest of the range to the smallest driver when
//! that is cheaper. Counts and unlimited lists take the smallest driver (counted with caps that
//! follow the smallest found), or the cheapest covering index when no condition has a driver.
//!
//! Tags keep stock's join semantics (`runs JOIN run_tags ...` per tag): every statement here
//! joins, so a run counts once per matching tag row, as in stock.

use super::query::{tag_condition, RunsFilter, TagValue};
use crate::store::sql::{Sql, Where};

/// A driver with fewer candidates than this is taken without further thought: reading and
/// sorting them costs at most a few milliseconds.
pub const SMALL: i64 = 2_000;
/// Estimates for limit queries count at most this many index entries (~3 ms).
pub const LIST_CAP: i64 = 50_000;
/// Estimates for counts stop here: a count has to read every match of its driver anyway.
pub const COUNT_CAP: i64 = 200_000;
/// Later estimates stop at this many times the smallest one found before them.
pub const AFTER_SMALLEST: i64 = 8;
/// What a driver's candidate costs against a row of an ordered walk: the candidate's tag row
/// and its run's row are read by key, where the walk reads neighbouring entries.
pub const DRIVE_COST: f64 = 3.0;
/// The first window of an ordered walk spans `limit * FIRST_WINDOW` ids (at least `MIN_WINDOW`);
/// each next one doubles.
const FIRST_WINDOW: i64 = 8;
const MIN_WINDOW: i64 = 256;

/// How limit queries choose between a driver and an ordered walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// By the estimates (the default).
    Auto,
    /// Always the smallest driver when the query has one.
    Drive,
    /// Always the ordered walk, never switching to a driver.
    Walk,
}

/// The planner's settings: `Auto` with `SMALL` in production; tests force each strategy and
/// lower `small` to reach the walk and its switch to a driver on small files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planner {
    pub mode: Mode,
    pub small: i64,
}

impl Default for Planner {
    fn default() -> Self {
        Planner {
            mode: Mode::Auto,
            small: SMALL,
        }
    }
}

/// A selective index that yields every candidate run (unordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    RunIds,
    Tag(usize),
    /// `idx_run_range (status, update_timestamp, ...)` when an update bound is given, else
    /// `idx_run_status`.
    Statuses,
    Job,
}

/// An access path that yields runs in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Table,
    Job,
    /// `idx_run_status (status)` for exactly one status: its entries are in rowid order.
    Status,
    /// `idx_runs_by_backfill_id (backfill_id, id)` at `backfill_id IS NULL`.
    TopLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Driver(Driver),
    Path(Path),
}

/// A runs query in the id order (the default order of every run list), as the planner sees it.
#[derive(Debug, Clone, Copy)]
pub struct IdQuery<'a> {
    pub filter: &'a RunsFilter,
    /// The cursor run's id, already resolved (stock: `id < (SELECT id ... WHERE run_id = ?)`).
    pub cursor_id: Option<i64>,
    pub ascending: bool,
    /// Whether the `run_backfill_id` data migration is done (`backfill_id IS NULL` is exact).
    pub backfill_id_indexed: bool,
}

impl IdQuery<'_> {
    fn tags(&self) -> &[(String, TagValue)] {
        self.filter.tags.as_deref().unwrap_or(&[])
    }

    fn has_update_bound(&self) -> bool {
        self.filter.updated_after.is_some() || self.filter.updated_before.is_some()
    }

    /// Drivers this query can use, most often selective first (estimates run in this order, each
    /// capped by the smallest found so far).
    pub fn drivers(&self) -> Vec<Driver> {
        let f = self.filter;
        let mut out = Vec::new();
        if f.run_ids.is_some() {
            out.push(Driver::RunIds);
        }
        out.extend((0..self.tags().len()).map(Driver::Tag));
        if f.job_name.is_some() {
            out.push(Driver::Job);
        }
        if f.statuses.is_some() {
            out.push(Driver::Statuses);
        }
        out
    }

    /// The ordered path a limit query walks when no driver is taken.
    pub fn ordered_path(&self) -> Path {
        let f = self.filter;
        if f.job_name.is_some() {
            Path::Job
        } else if f.statuses.as_ref().is_some_and(|s| s.len() == 1) {
            Path::Status
        } else if self.only_top_level() {
            // Covering: the walk reads the index alone. With any other condition the rows are
            // read anyway, and the table in id order is the shorter way to them (nine runs in
            // ten are top-level).
            Path::TopLevel
        } else {
            Path::Table
        }
    }

    /// Whether `exclude_subruns` (as `backfill_id IS NULL`) is the filter's only condition.
    fn only_top_level(&self) -> bool {
        let f = self.filter;
        f.exclude_subruns
            && self.backfill_id_indexed
            && self.tags().is_empty()
            && f.snapshot_id.is_none()
            && !self.has_update_bound()
            && f.created_after.is_none()
            && f.created_before.is_none()
    }
}

/// `SELECT count(*)` of a driver's index entries, stopping at `cap`: how many candidates it has.
pub fn estimate(q: &IdQuery<'_>, driver: Driver, cap: i64) -> Option<Sql> {
    let f = q.filter;
    let mut inner = match driver {
        Driver::RunIds => return None,
        Driver::Tag(i) => {
            let (key, value) = &q.tags()[i];
            let mut s = Sql::new("SELECT 1 FROM run_tags INDEXED BY idx_run_tags WHERE ");
            tag_condition(&mut s, "run_tags", key, value);
            s
        }
        Driver::Statuses => {
            let statuses = f.statuses.as_deref().unwrap_or(&[]);
            let index = if q.has_update_bound() {
                "idx_run_range"
            } else {
                "idx_run_status"
            };
            let mut s = Sql::new(&format!("SELECT 1 FROM runs INDEXED BY {index} WHERE "));
            s.append(&Sql::is_in("runs.status", statuses));
            if index == "idx_run_range" {
                update_bounds(&mut s, f);
            }
            s
        }
        Driver::Job => {
            let mut s = Sql::new(
                "SELECT 1 FROM runs INDEXED BY idx_runs_by_job WHERE runs.pipeline_name = ",
            );
            s.bind(f.job_name.as_deref().unwrap_or_default());
            s
        }
    };
    inner.push(" LIMIT ").bind(cap);
    let mut sql = Sql::new("SELECT count(*) FROM (");
    sql.append(&inner).push(")");
    Some(sql)
}

fn update_bounds(sql: &mut Sql, f: &RunsFilter) {
    if let Some(t) = &f.updated_after {
        sql.push(" AND runs.update_timestamp > ").bind(t.as_str());
    }
    if let Some(t) = &f.updated_before {
        sql.push(" AND runs.update_timestamp < ").bind(t.as_str());
    }
}

/// `FROM ...` of an access, with one `CROSS JOIN` per tag the access does not drive: the
/// nested loops run in this order, each inner table searched by the index named.
fn from_clause(q: &IdQuery<'_>, access: Access) -> (Sql, Where) {
    let mut conds = Where::default();
    let mut from = match access {
        Access::Driver(Driver::Tag(i)) => {
            let (key, value) = &q.tags()[i];
            let mut drive = Sql::new("");
            tag_condition(&mut drive, "driver", key, value);
            conds.and(drive);
            Sql::new(
                " FROM run_tags AS driver INDEXED BY idx_run_tags CROSS JOIN runs INDEXED BY \
                 sqlite_autoindex_runs_1 ON runs.run_id = driver.run_id",
            )
        }
        Access::Driver(Driver::RunIds) => Sql::new(" FROM runs INDEXED BY sqlite_autoindex_runs_1"),
        Access::Driver(Driver::Statuses) if q.has_update_bound() => {
            Sql::new(" FROM runs INDEXED BY idx_run_range")
        }
        Access::Driver(Driver::Statuses) | Access::Path(Path::Status) => {
            Sql::new(" FROM runs INDEXED BY idx_run_status")
        }
        Access::Driver(Driver::Job) | Access::Path(Path::Job) => {
            Sql::new(" FROM runs INDEXED BY idx_runs_by_job")
        }
        Access::Path(Path::TopLevel) => Sql::new(" FROM runs INDEXED BY idx_runs_by_backfill_id"),
        Access::Path(Path::Table) => Sql::new(" FROM runs NOT INDEXED"),
    };
    for (i, (key, value)) in q.tags().iter().enumerate() {
        if access == Access::Driver(Driver::Tag(i)) {
            continue;
        }
        let alias = format!("tag{i}");
        from.push(&format!(
            " CROSS JOIN run_tags AS {alias} INDEXED BY idx_run_tags_run_idx ON \
             {alias}.run_id = runs.run_id AND "
        ));
        tag_condition(&mut from, &alias, key, value);
    }
    (from, conds)
}

/// The conditions on the runs row itself (every filter field but tags).
fn run_conditions(q: &IdQuery<'_>, conds: &mut Where) {
    let f = q.filter;
    if let Some(ids) = &f.run_ids {
        conds.and(Sql::is_in("runs.run_id", ids));
    }
    if let Some(job) = &f.job_name {
        conds.and(Sql::compare("runs.pipeline_name = ", job.as_str()));
    }
    if let Some(statuses) = &f.statuses {
        conds.and(Sql::is_in("runs.status", statuses));
    }
    if let Some(snap) = &f.snapshot_id {
        conds.and(Sql::compare("runs.snapshot_id = ", snap.as_str()));
    }
    for (column, op, value) in time_bounds(f) {
        conds.and(Sql::compare(&format!("runs.{column} {op} "), value));
    }
    if f.exclude_subruns {
        if q.backfill_id_indexed {
            conds.and(Sql::new("runs.backfill_id IS NULL"));
        } else {
            // Before the run_backfill_id migration, stock excludes runs tagged with a backfill.
            let mut sub = Sql::new(
                "runs.run_id NOT IN (SELECT run_tags.run_id FROM run_tags INDEXED BY idx_run_tags \
                 WHERE run_tags.\"key\" = ",
            );
            sub.bind(super::BACKFILL_ID_TAG).push(")");
            conds.and(sub);
        }
    }
}

/// `SELECT runs.id ...` of the matching runs in id order, through `access`, within the id
/// window `[lo, hi)` when given, at most `limit`.
pub fn ids(q: &IdQuery<'_>, access: Access, window: Option<(i64, i64)>, limit: Option<i64>) -> Sql {
    let (from, mut conds) = from_clause(q, access);
    run_conditions(q, &mut conds);
    if let Some(cursor) = q.cursor_id {
        let op = if q.ascending {
            "runs.id > "
        } else {
            "runs.id < "
        };
        conds.and(Sql::compare(op, cursor));
    }
    if let Some((lo, hi)) = window {
        conds.and(Sql::compare("runs.id >= ", lo));
        conds.and(Sql::compare("runs.id < ", hi));
    }
    let mut sql = Sql::new("SELECT runs.id");
    sql.append(&from);
    conds.write_to(&mut sql);
    sql.push(if q.ascending {
        " ORDER BY runs.id ASC"
    } else {
        " ORDER BY runs.id DESC"
    });
    if let Some(limit) = limit {
        sql.push(" LIMIT ").bind(limit);
    }
    sql
}

/// `SELECT count(*)` of the matching runs through `access` (the cursor does not apply, as in
/// stock's count).
pub fn count(q: &IdQuery<'_>, access: Access) -> Sql {
    let (from, mut conds) = from_clause(q, access);
    run_conditions(q, &mut conds);
    let mut sql = Sql::new("SELECT count(*)");
    sql.append(&from);
    conds.write_to(&mut sql);
    sql
}

/// The count of a query no driver serves, through the index that covers its conditions when
/// there is one (`None`: no condition at all, `SELECT count(*) FROM runs`).
pub fn count_without_driver(q: &IdQuery<'_>) -> Sql {
    let f = q.filter;
    let timed = f.created_after.is_some()
        || f.created_before.is_some()
        || f.updated_after.is_some()
        || f.updated_before.is_some();
    if f.snapshot_id.is_some() || (f.exclude_subruns && !q.backfill_id_indexed) {
        // Nothing indexes snapshot_id (nor, before its migration, a run's backfill): every run
        // row is read once.
        return count(q, Access::Path(Path::Table));
    }
    // The runs matching the time bounds: SQLite's b-tree count without any, else a read of
    // idx_run_range (status, update_timestamp, create_timestamp) alone, never of the rows.
    let everything = if timed {
        let plain = RunsFilter {
            exclude_subruns: false,
            ..f.clone()
        };
        let mut conds = Where::default();
        run_conditions(
            &IdQuery {
                filter: &plain,
                ..*q
            },
            &mut conds,
        );
        let mut sql = Sql::new("SELECT count(*) FROM runs INDEXED BY idx_run_range");
        conds.write_to(&mut sql);
        sql
    } else {
        Sql::new("SELECT count(*) FROM runs")
    };
    if !f.exclude_subruns {
        return everything;
    }
    // Top-level runs are all runs but the backfills' (one in ten, say): subtracting those,
    // found through idx_runs_by_backfill_id, reads far fewer entries than counting the
    // top-level ones. One statement, so both counts see the same snapshot.
    let mut subruns = Sql::new(
        "SELECT count(*) FROM runs INDEXED BY idx_runs_by_backfill_id WHERE \
         runs.backfill_id IS NOT NULL",
    );
    for (column, op, value) in time_bounds(f) {
        subruns
            .push(&format!(" AND runs.{column} {op} "))
            .bind(value);
    }
    let mut sql = Sql::new("SELECT (");
    sql.append(&everything)
        .push(") - (")
        .append(&subruns)
        .push(")");
    sql
}

fn time_bounds(f: &RunsFilter) -> impl Iterator<Item = (&'static str, &'static str, &str)> {
    [
        ("update_timestamp", ">", &f.updated_after),
        ("update_timestamp", "<", &f.updated_before),
        ("create_timestamp", ">", &f.created_after),
        ("create_timestamp", "<", &f.created_before),
    ]
    .into_iter()
    .filter_map(|(column, op, value)| value.as_deref().map(|v| (column, op, v)))
}

/// The lowest and highest run id.
pub fn id_bounds() -> Sql {
    // Two scalar subqueries: SQLite answers a lone min() or max() from the end of the b-tree,
    // but scans the whole table for both in one aggregate.
    Sql::new(
        "SELECT (SELECT min(runs.id) FROM runs NOT INDEXED), \
         (SELECT max(runs.id) FROM runs NOT INDEXED)",
    )
}

/// The id of the cursor run.
pub fn cursor_id(run_id: &str) -> Sql {
    Sql::compare("SELECT runs.id FROM runs WHERE runs.run_id = ", run_id)
}

/// The window after `(lo, hi)` in walking order, of `span` ids, clipped to `[min_id, max_id]`.
pub fn next_window(ascending: bool, from: i64, span: i64, min_id: i64, max_id: i64) -> (i64, i64) {
    if ascending {
        (from, from.saturating_add(span).min(max_id + 1))
    } else {
        (from.saturating_sub(span).max(min_id), from)
    }
}

/// The first window's span for a limit.
pub fn first_span(limit: i64) -> i64 {
    limit.saturating_mul(FIRST_WINDOW).max(MIN_WINDOW)
}

/// Ids an ordered walk covers before it measures the drivers (once) to decide whether to hand
/// the rest to one.
pub const CHECK_WALK: i64 = 2_048;

/// Ids a walk still has to cover to find `need` more runs, at the density it has met so far
/// (`found` in `walked` ids; none found counts as one, a lower bound), at most `remaining`.
pub fn remaining_walk(need: i64, found: i64, walked: i64, remaining: i64) -> f64 {
    let density = found.max(1) as f64 / walked.max(1) as f64;
    (need as f64 / density).min(remaining as f64)
}

/// All statements a query may run, by access, for `EXPLAIN QUERY PLAN` checks: the estimates,
/// each driver's id and count statements, the ordered walk's window, the driverless count.
pub fn every_statement(q: &IdQuery<'_>, limit: Option<i64>) -> Vec<(String, Sql)> {
    let mut out = vec![
        ("bounds".to_owned(), id_bounds()),
        ("cursor".to_owned(), cursor_id("r")),
    ];
    for driver in q.drivers() {
        if let Some(sql) = estimate(q, driver, LIST_CAP) {
            out.push((format!("estimate {driver:?}"), sql));
        }
        out.push((
            format!("ids {driver:?}"),
            ids(q, Access::Driver(driver), None, limit),
        ));
        out.push((
            format!("count {driver:?}"),
            count(q, Access::Driver(driver)),
        ));
    }
    let path = q.ordered_path();
    out.push((
        format!("window {path:?}"),
        ids(q, Access::Path(path), Some((1, 100)), limit),
    ));
    if q.drivers().is_empty() {
        out.push(("count".to_owned(), count_without_driver(q)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(filter: &RunsFilter) -> IdQuery<'_> {
        IdQuery {
            filter,
            cursor_id: None,
            ascending: false,
            backfill_id_indexed: true,
        }
    }

    #[test]
    fn a_tag_driver_joins_runs_by_run_id_and_other_tags_by_run() {
        let f = RunsFilter {
            tags: Some(vec![
                ("team".into(), TagValue::One("t7".into())),
                ("sensor".into(), TagValue::One("s27".into())),
            ]),
            ..Default::default()
        };
        let sql = ids(&q(&f), Access::Driver(Driver::Tag(1)), None, Some(25));
        assert!(sql.text.starts_with(
            "SELECT runs.id FROM run_tags AS driver INDEXED BY idx_run_tags CROSS JOIN runs \
             INDEXED BY sqlite_autoindex_runs_1 ON runs.run_id = driver.run_id CROSS JOIN \
             run_tags AS tag0 INDEXED BY idx_run_tags_run_idx"
        ));
        assert!(sql
            .text
            .contains("WHERE driver.\"key\" = ? AND driver.value = ?"));
        assert!(sql.text.ends_with("ORDER BY runs.id DESC LIMIT ?"));
    }

    #[test]
    fn drivers_in_estimate_order() {
        let f = RunsFilter {
            run_ids: Some(vec!["a".into()]),
            statuses: Some(vec!["SUCCESS".into()]),
            job_name: Some("j".into()),
            tags: Some(vec![("k".into(), TagValue::One("v".into()))]),
            ..Default::default()
        };
        assert_eq!(
            q(&f).drivers(),
            vec![
                Driver::RunIds,
                Driver::Tag(0),
                Driver::Job,
                Driver::Statuses
            ]
        );
        assert_eq!(q(&f).ordered_path(), Path::Job);
    }

    #[test]
    fn windows_stay_inside_the_ids() {
        assert_eq!(next_window(false, 1000, 256, 1, 1000), (744, 1000));
        assert_eq!(next_window(false, 100, 256, 1, 1000), (1, 100));
        assert_eq!(next_window(true, 900, 256, 1, 1000), (900, 1001));
    }

    #[test]
    fn the_rest_of_a_walk_is_read_at_the_density_met() {
        assert_eq!(remaining_walk(20, 5, 1000, 1_000_000), 4000.0);
        // Nothing found yet: at least one match per id walked is assumed.
        assert_eq!(remaining_walk(25, 0, 2048, 1_000_000), 51_200.0);
        assert_eq!(remaining_walk(25, 0, 2048, 300), 300.0);
    }
}
