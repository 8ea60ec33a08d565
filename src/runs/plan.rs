//! How a runs query reaches its rows at any size: which index drives it, in which order.
//!
//! SQLite's planner has no statistics in Dagster's files (and must not get any: `ANALYZE`
//! writes `sqlite_stat1` into a file stock also opens), so on its own it guesses, and for some
//! shapes it guesses badly at a million runs (two tag joins searched by `(key, value)` for every
//! row of the first, then sorted). Here the core chooses the access itself and pins it in the SQL
//! (`INDEXED BY`, `NOT INDEXED`, `CROSS JOIN` order), so the plan does not depend on statistics.
//! It pins only indexes the file has: [`RunIndexes`] names, from the file's real indexes, the
//! one that plays each role (stock's fresh files and 047's migrated ones differ), and a
//! strategy whose index the file lacks is not taken.
//!
//! - **Driver**: every candidate from one selective index (`run_ids` through the unique
//!   `run_id` index, a tag through `run_tags (key, value, ...)`, statuses through
//!   `idx_run_status` / `idx_run_range`, a job through `idx_runs_by_job`), the other conditions
//!   checked per candidate, then sorted by id. A tag is checked by one seek of 047's covering
//!   `(key, value, run_id)` where the file has it, else through the run's tag rows
//!   (`idx_run_tags_run_idx (run_id, id)`). Costs what the driver holds, whatever the limit.
//! - **Ordered path**: runs walked newest (or oldest) first along an index whose order is the
//!   id's (`idx_runs_by_job`, `idx_run_status` for one status, `idx_runs_by_backfill_id` for
//!   top-level runs, or the table itself), in windows of ids that grow until the limit is met.
//!   Costs what it takes to find `limit` matches; no sort.
//! - **Covering scan**: when every condition is a time bound (or a status), the top runs by id
//!   of one read of `idx_run_range (status, update_timestamp, create_timestamp)`, which holds
//!   the columns and the id: a fixed cost, a third of walking as many rows. A walk that would
//!   have to pass most of the history first (`created_before` deep down) hands over to it.
//!
//! Which one is cheaper depends on the data, and the core measures it. A limit query counts
//! each candidate driver's index entries up to `SMALL` (covering, a fraction of a millisecond)
//! and takes a driver under that at once. Otherwise it walks; a walk that has not found its
//! runs after `CHECK_WALK` ids counts the entries of its path it read (a covering count of that
//! stretch: a job's index holds one run in fifty of the ids walked), measures the drivers once
//! (counts capped at what walking on would cost, in path entries at the density met so far)
//! and hands the rest of the range to the smallest driver when that is cheaper, or, with no
//! driver, estimates how far the creation-time bound lies (a binary search of
//! `create_timestamp` by id, a few dozen row reads; only an estimate, since times need not
//! follow ids, and the answer never depends on it) and hands over to the covering scan when
//! walking there costs more. The scan is then aimed: only the entries in a window of ids
//! around the estimated bound go to its sort (the rest are read and dropped), and when the
//! window holds too few runs the rest are looked for beyond it. Counts and unlimited lists take
//! the smallest driver (counted with caps that follow the smallest found), or the cheapest
//! covering index when no condition has a driver.
//!
//! Tags keep stock's join semantics (`runs JOIN run_tags ...` per tag): every statement here
//! joins, so a run counts once per matching tag row, as in stock.

use super::query::{tag_condition, RunsFilter, TagValue};
use crate::store::layout::IndexLayout;
use crate::store::sql::{Sql, Where};

/// A driver with fewer candidates than this is taken without further thought: reading and
/// sorting them costs at most a few milliseconds.
pub const SMALL: i64 = 2_000;
/// Estimates for limit queries count at most this many index entries (~3 ms).
pub const LIST_CAP: i64 = 50_000;
/// PostgreSQL: a limit query's estimates count at most this many rows of a tag (a tag larger
/// than that is walked, never driven: reading it costs more than the walks it would spare).
pub const PG_LIST_CAP: i64 = 10_000;
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
/// What a run walked in the table costs against an entry of the covering scan of
/// `idx_run_range` (measured at 200,000 and 1,000,000 runs: 0.38-0.44 µs against 0.10-0.13).
pub const SCAN_COST: f64 = 0.3;

/// The indexes of `runs.db` the planner may pin, by the role each plays; `None` where this file
/// has no index for it (the strategies that need it are then not taken). Named from the file's
/// own indexes, by their columns: stock's fresh layout and the ones Dagster's migrations leave
/// (047's `idx_run_tags_run_id (key, value, run_id)` in place of `idx_run_tags (key, value)`)
/// name them differently.
#[derive(Debug, Clone, Default, PartialEq, Eq, pyo3::IntoPyObject)]
pub struct RunIndexes {
    /// `runs (run_id)`: a run by its id (stock's `UNIQUE (run_id)`).
    pub run_id: Option<String>,
    /// `run_tags (key, value, ...)`: one tag's rows, and the skip-scans of keys and values.
    pub tag: Option<String>,
    /// Whether `tag` is `(key, value, run_id)`: a tag's runs, and whether a run has a tag, are
    /// then read from the index alone.
    pub tag_covering: bool,
    /// `run_tags (run_id, ...)`: a run's tag rows.
    pub run_tags: Option<String>,
    /// `runs (status)`: one status's runs, in id order.
    pub status: Option<String>,
    /// `runs (status, update_timestamp, create_timestamp)`: statuses with update bounds, and
    /// every time bound read without the rows.
    pub range: Option<String>,
    /// `runs (pipeline_name, id)`: one job's runs, in id order.
    pub job: Option<String>,
    /// `runs (backfill_id, id)`: top-level runs (`backfill_id IS NULL`) in id order.
    pub backfill: Option<String>,
}

impl RunIndexes {
    pub fn of(layout: &IndexLayout) -> RunIndexes {
        let name = |i: Option<&crate::store::layout::Index>| i.map(|i| i.name.clone());
        let tags = layout.leading("run_tags", &["key", "value"]);
        let covering = tags
            .iter()
            .find(|i| i.columns.get(2).is_some_and(|c| c == "run_id"));
        RunIndexes {
            run_id: name(layout.leading("runs", &["run_id"]).first().copied()),
            tag: name(covering.or(tags.first()).copied()),
            tag_covering: covering.is_some(),
            run_tags: name(layout.leading("run_tags", &["run_id"]).first().copied()),
            status: name(layout.exactly("runs", &["status"])),
            range: name(
                layout
                    .leading("runs", &["status", "update_timestamp", "create_timestamp"])
                    .first()
                    .copied(),
            ),
            job: name(layout.exactly("runs", &["pipeline_name"])),
            backfill: name(layout.exactly("runs", &["backfill_id"])),
        }
    }

    /// Stock 1.13.27's fresh file.
    #[cfg(test)]
    pub fn stock() -> RunIndexes {
        RunIndexes {
            run_id: Some("sqlite_autoindex_runs_1".into()),
            tag: Some("idx_run_tags".into()),
            tag_covering: false,
            run_tags: Some("idx_run_tags_run_idx".into()),
            status: Some("idx_run_status".into()),
            range: Some("idx_run_range".into()),
            job: Some("idx_runs_by_job".into()),
            backfill: Some("idx_runs_by_backfill_id".into()),
        }
    }
}

/// `head`, the pin of `index` (` INDEXED BY name` on SQLite, or nothing when the file has no
/// index for the role: SQLite then plans the statement as it plans stock's), then `tail`.
fn pinned(head: &str, index: &Option<String>, tail: &str) -> Sql {
    let mut sql = Sql::new(head);
    sql.indexed_by(index.as_deref()).push(tail);
    sql
}

/// How limit queries choose between a driver and an ordered walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// By the estimates (the default).
    Auto,
    /// Always the smallest driver when the query has one.
    Drive,
    /// Always the ordered walk, never switching to a driver or the covering scan.
    Walk,
    /// The covering scan whenever it can serve the query, else as `Auto`.
    Scan,
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
    /// Every run's entry of `idx_run_range`, the top ones by id kept (see `IdQuery::covered`).
    Covering,
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
    /// The file's indexes.
    pub ix: &'a RunIndexes,
}

impl IdQuery<'_> {
    pub(super) fn tags(&self) -> &[(String, TagValue)] {
        self.filter.tags.as_deref().unwrap_or(&[])
    }

    fn has_update_bound(&self) -> bool {
        self.filter.updated_after.is_some() || self.filter.updated_before.is_some()
    }

    /// The index the statuses driver reads: `idx_run_range` with an update bound, else the
    /// status index (or, on a file without one, `idx_run_range`, which starts with the status).
    fn statuses_index(&self) -> &Option<String> {
        if self.has_update_bound() || self.ix.status.is_none() {
            &self.ix.range
        } else {
            &self.ix.status
        }
    }

    /// Drivers this query can use on this file, most often selective first (estimates run in
    /// this order, each capped by the smallest found so far).
    pub fn drivers(&self) -> Vec<Driver> {
        let f = self.filter;
        let ix = self.ix;
        let mut out = Vec::new();
        if f.run_ids.is_some() {
            out.push(Driver::RunIds);
        }
        if ix.tag.is_some() && ix.run_id.is_some() {
            out.extend((0..self.tags().len()).map(Driver::Tag));
        }
        if f.job_name.is_some() && ix.job.is_some() {
            out.push(Driver::Job);
        }
        if f.statuses.is_some() && self.statuses_index().is_some() {
            out.push(Driver::Statuses);
        }
        out
    }

    /// The ordered path a limit query walks when no driver is taken.
    pub fn ordered_path(&self) -> Path {
        let f = self.filter;
        let ix = self.ix;
        if f.job_name.is_some() && ix.job.is_some() {
            Path::Job
        } else if f.statuses.as_ref().is_some_and(|s| s.len() == 1) && ix.status.is_some() {
            Path::Status
        } else if self.only_top_level() && ix.backfill.is_some() {
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

    /// Whether the filter's only conditions are creation-time bounds.
    /// (Top-level runs, nine in ten, count as all of them here: past the bound nearly every
    /// run matches.)
    pub fn only_creation_bounds(&self) -> bool {
        let f = self.filter;
        self.near_covered() && f.statuses.is_none() && !self.has_update_bound()
    }

    /// Whether `idx_run_range` alone decides every condition (statuses and time bounds, the
    /// id from its rowid), so the covering scan can serve the query.
    pub fn covered(&self) -> bool {
        self.near_covered() && !self.filter.exclude_subruns
    }

    /// Whether the scan of `idx_run_range` can serve the query when aimed at a window of ids:
    /// `covered`, or top-level runs too, whose `backfill_id` SQLite then reads only for the
    /// entries its index-only conditions (time, id window) let through (the row's seek is
    /// deferred until a column the index lacks is needed).
    pub fn near_covered(&self) -> bool {
        let f = self.filter;
        self.ix.range.is_some()
            && f.run_ids.is_none()
            && f.job_name.is_none()
            && self.tags().is_empty()
            && f.snapshot_id.is_none()
            && (!f.exclude_subruns || self.backfill_id_indexed)
    }
}

/// `SELECT count(*)` of a driver's index entries, stopping at `cap`: how many candidates it has.
pub fn estimate(q: &IdQuery<'_>, driver: Driver, cap: i64) -> Option<Sql> {
    let f = q.filter;
    let mut inner = match driver {
        Driver::RunIds => return None,
        Driver::Tag(i) => {
            let (key, value) = &q.tags()[i];
            let mut s = pinned("SELECT 1 FROM run_tags", &q.ix.tag, " WHERE ");
            tag_condition(&mut s, "run_tags", key, value);
            s
        }
        Driver::Statuses => {
            let statuses = f.statuses.as_deref().unwrap_or(&[]);
            let index = q.statuses_index();
            let mut s = pinned("SELECT 1 FROM runs", index, " WHERE ");
            s.append(&Sql::is_in("runs.status", statuses));
            if index == &q.ix.range {
                update_bounds(&mut s, f);
            }
            s
        }
        Driver::Job => {
            let mut s = pinned(
                "SELECT 1 FROM runs",
                &q.ix.job,
                " WHERE runs.pipeline_name = ",
            );
            s.bind(f.job_name.as_deref().unwrap_or_default());
            s
        }
    };
    inner.push(" LIMIT ").bind(cap);
    let mut sql = Sql::new("SELECT count(*) FROM (");
    // PostgreSQL wants every subquery in FROM named.
    sql.append(&inner).push(") AS subquery");
    Some(sql.planned())
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
    let ix = q.ix;
    let mut conds = Where::default();
    let runs = |index: &Option<String>| pinned(" FROM runs", index, "");
    let mut from = match access {
        Access::Driver(Driver::Tag(i)) => {
            let (key, value) = &q.tags()[i];
            let mut drive = Sql::new("");
            tag_condition(&mut drive, "driver", key, value);
            conds.and(drive);
            // With 047's (key, value, run_id) the tag rows are never read: the index gives
            // the run id, the run_id index the run's id.
            let mut from = pinned(" FROM run_tags AS driver", &ix.tag, "");
            from.cross_join()
                .push("runs")
                .indexed_by(ix.run_id.as_deref())
                .push(" ON runs.run_id = driver.run_id");
            from
        }
        Access::Driver(Driver::RunIds) => runs(&ix.run_id),
        Access::Driver(Driver::Statuses) => runs(q.statuses_index()),
        Access::Path(Path::Status) => runs(&ix.status),
        Access::Driver(Driver::Job) | Access::Path(Path::Job) => runs(&ix.job),
        Access::Path(Path::TopLevel) => runs(&ix.backfill),
        Access::Path(Path::Table) => {
            let mut from = Sql::new(" FROM runs");
            from.not_indexed();
            from
        }
        Access::Covering => runs(&ix.range),
    };
    for (i, (key, value)) in q.tags().iter().enumerate() {
        if access == Access::Driver(Driver::Tag(i)) {
            continue;
        }
        let alias = format!("tag{i}");
        if ix.tag_covering {
            // One seek of (key, value, run_id) per run and tag, in the index alone.
            from.cross_join()
                .push(&format!("run_tags AS {alias}"))
                .indexed_by(ix.tag.as_deref())
                .push(" ON ");
            tag_condition(&mut from, &alias, key, value);
            from.push(&format!(" AND {alias}.run_id = runs.run_id"));
        } else {
            from.cross_join()
                .push(&format!("run_tags AS {alias}"))
                .indexed_by(ix.run_tags.as_deref())
                .push(&format!(" ON {alias}.run_id = runs.run_id AND "));
            tag_condition(&mut from, &alias, key, value);
        }
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
            let mut sub = pinned(
                "runs.run_id NOT IN (SELECT run_tags.run_id FROM run_tags",
                &q.ix.tag,
                " WHERE run_tags.\"key\" = ",
            );
            sub.bind(super::BACKFILL_ID_TAG).push(")");
            conds.and(sub);
        }
    }
}

/// The cursor's condition: the runs after it in walking order.
fn after_cursor(q: &IdQuery<'_>, conds: &mut Where) {
    if let Some(cursor) = q.cursor_id {
        let op = if q.ascending {
            "runs.id > "
        } else {
            "runs.id < "
        };
        conds.and(Sql::compare(op, cursor));
    }
}

/// `sql` ordered by id in walking order, at most `limit` rows.
fn in_id_order(q: &IdQuery<'_>, mut sql: Sql, limit: Option<i64>) -> Sql {
    sql.push(if q.ascending {
        " ORDER BY runs.id ASC"
    } else {
        " ORDER BY runs.id DESC"
    });
    if let Some(limit) = limit {
        sql.push(" LIMIT ").bind(limit);
    }
    sql.planned()
}

/// `SELECT runs.id ...` of the matching runs in id order, through `access`, within the id
/// window `[lo, hi)` when given, at most `limit`.
pub fn ids(q: &IdQuery<'_>, access: Access, window: Option<(i64, i64)>, limit: Option<i64>) -> Sql {
    let (from, mut conds) = from_clause(q, access);
    run_conditions(q, &mut conds);
    after_cursor(q, &mut conds);
    if let Some((lo, hi)) = window {
        conds.and(Sql::compare("runs.id >= ", lo));
        conds.and(Sql::compare("runs.id < ", hi));
    }
    let mut sql = Sql::new("SELECT runs.id");
    sql.append(&from);
    conds.write_to(&mut sql);
    in_id_order(q, sql, limit)
}

/// `SELECT count(*)` of the matching runs through `access` (the cursor does not apply, as in
/// stock's count).
pub fn count(q: &IdQuery<'_>, access: Access) -> Sql {
    let (from, mut conds) = from_clause(q, access);
    run_conditions(q, &mut conds);
    let mut sql = Sql::new("SELECT count(*)");
    sql.append(&from);
    conds.write_to(&mut sql);
    sql.planned()
}

/// The count of a query no driver serves, through the index that covers its conditions when
/// there is one (`None`: no condition at all, `SELECT count(*) FROM runs`).
pub fn count_without_driver(q: &IdQuery<'_>) -> Sql {
    let f = q.filter;
    let timed = f.created_after.is_some()
        || f.created_before.is_some()
        || f.updated_after.is_some()
        || f.updated_before.is_some();
    let ix = q.ix;
    // Conditions a driver serves, on a file without its index: every run row is checked.
    let undriven =
        f.run_ids.is_some() || f.job_name.is_some() || f.statuses.is_some() || !q.tags().is_empty();
    if undriven
        || f.snapshot_id.is_some()
        || (f.exclude_subruns && (!q.backfill_id_indexed || ix.backfill.is_none()))
        || (timed && ix.range.is_none())
    {
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
        let mut sql = pinned("SELECT count(*) FROM runs", &ix.range, "");
        conds.write_to(&mut sql);
        sql
    } else {
        Sql::new("SELECT count(*) FROM runs")
    };
    if !f.exclude_subruns {
        return everything.planned();
    }
    // Top-level runs are all runs but the backfills' (one in ten, say): subtracting those,
    // found through idx_runs_by_backfill_id, reads far fewer entries than counting the
    // top-level ones. One statement, so both counts see the same snapshot.
    let mut subruns = pinned(
        "SELECT count(*) FROM runs",
        &ix.backfill,
        " WHERE runs.backfill_id IS NOT NULL",
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
    sql.planned()
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

/// Where the walk meets its creation-time bound, going `ascending` or not: the bound it must
/// pass (`created_after` walking up, `created_before` walking down) and the comparison a run
/// beyond it satisfies. None when the walk starts among the matches (as far as time goes).
pub fn time_edge<'a>(q: &IdQuery<'a>) -> Option<(&'static str, &'a str)> {
    let f = q.filter;
    if q.ascending {
        f.created_after.as_deref().map(|t| (">", t))
    } else {
        f.created_before.as_deref().map(|t| ("<", t))
    }
}

/// The first run at or after `id` and whether its creation time satisfies `op t`: one probe
/// of the binary search that estimates where a time bound lies along the ids.
pub fn probe_created(id: i64, op: &str, t: &str) -> Sql {
    let mut q = Sql::new(&format!(
        "SELECT runs.id, coalesce(runs.create_timestamp {op} "
    ));
    q.bind(t)
        .push(", 0) FROM runs")
        .not_indexed()
        .push(" WHERE runs.id >= ")
        .bind(id)
        .push(" ORDER BY runs.id ASC LIMIT 1");
    q
}

/// `SELECT count(*)` of the entries of an ordered path's index in the ids `[lo, hi)`, read
/// from the index alone: how many runs a walk of that stretch read. None for the table, whose
/// entries are the ids.
pub fn path_entries(q: &IdQuery<'_>, path: Path, (lo, hi): (i64, i64)) -> Option<Sql> {
    let f = q.filter;
    let ix = q.ix;
    let mut sql = match path {
        Path::Table => return None,
        Path::Job => {
            let mut s = pinned(
                "SELECT count(*) FROM runs",
                &ix.job,
                " WHERE runs.pipeline_name = ",
            );
            s.bind(f.job_name.as_deref().unwrap_or_default());
            s
        }
        Path::Status => {
            let status = f.statuses.as_ref().and_then(|s| s.first());
            let mut s = pinned(
                "SELECT count(*) FROM runs",
                &ix.status,
                " WHERE runs.status = ",
            );
            s.bind(status.map(String::as_str).unwrap_or_default());
            s
        }
        Path::TopLevel => pinned(
            "SELECT count(*) FROM runs",
            &ix.backfill,
            " WHERE runs.backfill_id IS NULL",
        ),
    };
    sql.push(" AND runs.id >= ")
        .bind(lo)
        .push(" AND runs.id < ")
        .bind(hi);
    Some(sql.planned())
}

/// The lowest and highest run id.
pub fn id_bounds() -> Sql {
    // Two scalar subqueries: SQLite answers a lone min() or max() from the end of the b-tree,
    // but scans the whole table for both in one aggregate.
    let mut q = Sql::new("SELECT (SELECT min(runs.id) FROM runs");
    q.not_indexed()
        .push("), (SELECT max(runs.id) FROM runs")
        .not_indexed()
        .push(")");
    q
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

/// PostgreSQL: how a query's tags are read: the tag that drives (its rows joined to their runs),
/// if any, and the others in the order each run is checked for them, the rarest first, so that
/// a run lacking it costs one probe, not one per tag (a walk for two tags reads thousands of
/// runs per page: 27 ms against 50 at 1,000,000 runs when the rarer tag is checked first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTags {
    pub driving: Option<usize>,
    pub checks: Vec<usize>,
}

impl PgTags {
    /// `driving`, and the other tags rarest first by `sizes` (their rows counted up to a cap,
    /// then their share of all tag rows for those at the cap; a tag without a count last, in
    /// the filter's order).
    pub fn new(q: &IdQuery<'_>, driving: Option<usize>, sizes: &[(usize, (i64, u64))]) -> Self {
        let size = |i: usize| {
            sizes
                .iter()
                .find(|(t, _)| *t == i)
                .map_or((i64::MAX, u64::MAX), |&(_, n)| n)
        };
        let mut checks: Vec<usize> = (0..q.tags().len())
            .filter(|&i| Some(i) != driving)
            .collect();
        checks.sort_by_key(|&i| size(i));
        PgTags { driving, checks }
    }

    /// `driving`, and the other tags in the filter's order.
    pub fn in_order(q: &IdQuery<'_>, driving: Option<usize>) -> Self {
        Self::new(q, driving, &[])
    }
}

/// PostgreSQL: tag `i`'s matching rows of the run, a scalar subquery (a probe of the run's tag
/// rows by index). Stock joins `run_tags` once per tag, so a run comes once per combination of
/// matching tag rows: the product of these counts says how many times (one, but for duplicated
/// tag rows). As scalar subqueries they stay per-run probes: PostgreSQL does not turn them into
/// joins, whose order it would choose by its estimates of `(key, value)`, which it gets wrong by
/// ten times and more (it multiplies the key's frequency by the value's, which are
/// correlated), and then reads a large tag whole.
fn pg_tag_rows_of_run(q: &IdQuery<'_>, i: usize) -> Sql {
    let (key, value) = &q.tags()[i];
    let mut sub = Sql::new(&format!(
        "(SELECT count(*) FROM run_tags AS tag{i} WHERE tag{i}.run_id = runs.run_id AND "
    ));
    tag_condition(&mut sub, &format!("tag{i}"), key, value);
    sub.push(")");
    sub
}

/// PostgreSQL: the product of the checked tags' rows of the run (see `pg_tag_rows_of_run`);
/// `None` without such tags.
fn pg_tag_product(q: &IdQuery<'_>, tags: &PgTags) -> Option<Sql> {
    let mut product: Option<Sql> = None;
    for &i in &tags.checks {
        let sub = pg_tag_rows_of_run(q, i);
        product = Some(match product {
            None => sub,
            Some(mut p) => {
                p.push(" * ").append(&sub);
                p
            }
        });
    }
    product
}

/// PostgreSQL: that the run has a row of every checked tag, in `checks` order and stopping at
/// the first it lacks: a `CASE`, which evaluates its branches in order (`AND`'s operands may be
/// reordered by their estimated costs).
fn pg_tag_filter(q: &IdQuery<'_>, tags: &PgTags) -> Option<Sql> {
    let (&last, first) = tags.checks.split_last()?;
    let mut sql = Sql::new("");
    if !first.is_empty() {
        sql.push("CASE");
        for &i in first {
            sql.push(" WHEN ")
                .append(&pg_tag_rows_of_run(q, i))
                .push(" = 0 THEN false");
        }
        sql.push(" ELSE ");
    }
    sql.append(&pg_tag_rows_of_run(q, last)).push(" > 0");
    if !first.is_empty() {
        sql.push(" END");
    }
    Some(sql)
}

/// PostgreSQL: `FROM` and `WHERE` of a run query, driven by `tags.driving` (its rows joined to
/// their runs by `runs_run_id_key`) or by `runs` (PostgreSQL chooses how: along the primary key
/// for a limit, by a status or job index when it is selective), each run checked for the other
/// tags (`pg_tag_filter`), and the product of their matches (see `pg_tag_product`).
fn pg_from(q: &IdQuery<'_>, tags: &PgTags) -> (Sql, Where, Option<Sql>) {
    let mut conds = Where::default();
    let from = match tags.driving {
        Some(i) => {
            let (key, value) = &q.tags()[i];
            let mut drive = Sql::new("");
            tag_condition(&mut drive, "driver", key, value);
            conds.and(drive);
            Sql::new(" FROM run_tags AS driver JOIN runs ON runs.run_id = driver.run_id")
        }
        None => Sql::new(" FROM runs"),
    };
    run_conditions(q, &mut conds);
    if let Some(filter) = pg_tag_filter(q, tags) {
        conds.and(filter);
    }
    (from, conds, pg_tag_product(q, tags))
}

/// PostgreSQL: `SELECT runs.id, m` of the matching runs in id order, at most `limit` rows, `m`
/// the times stock's joins give the run (see `pg_tag_product`), its tags read as `tags` says.
pub fn pg_ids(q: &IdQuery<'_>, tags: &PgTags, limit: Option<i64>) -> Sql {
    let (from, mut conds, product) = pg_from(q, tags);
    after_cursor(q, &mut conds);
    let mut sql = Sql::new("SELECT runs.id, ");
    match &product {
        Some(p) => sql.append(p),
        None => sql.push("1"),
    };
    sql.append(&from);
    conds.write_to(&mut sql);
    in_id_order(q, sql, limit)
}

/// PostgreSQL: which tag drives a limit query, from the tags' sizes `counts` (each counted up
/// to a cap) and the number of runs: the smallest tag when reading it costs less than walking
/// the runs newest first until `limit` matches are met, at the density the tags' sizes give
/// (taken as independent; a capped count counts as its cap, a lower bound of the density).
/// A tag counted up to its cap never drives. `None`: the walk (PostgreSQL's plan of the run
/// conditions).
pub fn pg_driver(counts: &[(usize, i64)], cap: i64, runs: i64, limit: i64) -> Option<usize> {
    let &(smallest, size) = counts.iter().min_by_key(|(_, n)| *n)?;
    if size >= cap {
        // Every tag is larger than reading `cap` of its rows: the walk.
        return None;
    }
    let runs = runs.max(1) as f64;
    let density: f64 = counts
        .iter()
        .map(|&(_, n)| (n.max(1) as f64 / runs).min(1.0))
        .product();
    let walk = limit as f64 / density.max(1.0 / runs) * counts.len() as f64;
    ((size as f64) * DRIVE_COST < walk).then_some(smallest)
}

/// PostgreSQL: the estimate statement of tag `i` (its rows, counted up to `cap`).
pub fn pg_tag_estimate(q: &IdQuery<'_>, i: usize, cap: i64) -> Option<Sql> {
    estimate(q, Driver::Tag(i), cap)
}

/// PostgreSQL: a tag's rows as the planner's statistics bound them: `run_tags`' rows
/// (`pg_class.reltuples`) times the smaller of the key's share and its values' (`pg_stats`: the
/// most common values and their frequencies; a key or value not among them counts 0, rarer than
/// those that are), 0 without statistics. Reads no row of the table: `runs::pg_tags` skips
/// counting a tag it puts far over the cap, and orders tags whose counts reached the cap by it.
pub fn pg_tag_rows_estimate(key: &str, value: &TagValue) -> Sql {
    let values: &[String] = match value {
        TagValue::One(v) => std::slice::from_ref(v),
        TagValue::Many(vs) => vs,
    };
    let stats = "FROM pg_stats AS s WHERE s.schemaname = current_schema() \
                 AND s.tablename = 'run_tags' AND s.attname = ";
    let mut sql = Sql::new(
        "SELECT least(coalesce((SELECT s.most_common_freqs[array_position(\
         s.most_common_vals::text::text[], ",
    );
    sql.bind(key).push("::text)] ").push(stats).push(
        "'key'), 0), coalesce((SELECT sum(s.most_common_freqs[array_position(\
               s.most_common_vals::text::text[], v.value)]) FROM (VALUES ",
    );
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(").bind(v.as_str()).push("::text)");
    }
    sql.push(") AS v(value) CROSS JOIN LATERAL (SELECT s.most_common_vals, s.most_common_freqs ")
        .push(stats)
        .push(
            "'value') AS s), 0))::float8 * greatest(coalesce((SELECT c.reltuples FROM pg_class \
             AS c WHERE c.oid = to_regclass('run_tags')), 0), 0)::float8",
        );
    sql
}

/// PostgreSQL: the count of the matching runs. A filter of tags and nothing else counts the
/// tags' rows with a run id (the rows stock's join can match), one tag from its index alone,
/// several joined by run id,
/// when `tag_rows_join` (the database has the foreign key `run_tags.run_id -> runs.run_id`, so
/// every such row joins exactly one run, `runs.run_id` being unique): no run is read. Otherwise
/// stock's join, planned by PostgreSQL (the most selective condition drives).
pub fn pg_count(q: &IdQuery<'_>, tag_rows_join: bool, tags: &PgTags) -> Sql {
    if let Some(tag_only) = pg_tag_rows_count(q, tag_rows_join) {
        return tag_only;
    }
    if tags.driving.is_none() && !q.tags().is_empty() {
        // Tags too large to drive, and a run condition with an index: stock's joins, which
        // PostgreSQL hashes (a probe per run would cost more, for hundreds of thousands).
        return count(q, Access::Path(Path::Table));
    }
    let (from, conds, product) = pg_from(q, tags);
    let mut sql = match &product {
        Some(p) => {
            let mut s = Sql::new("SELECT coalesce(sum(");
            s.append(p).push("), 0)");
            s
        }
        None => Sql::new("SELECT count(*)"),
    };
    sql.append(&from);
    conds.write_to(&mut sql);
    sql.planned()
}

pub fn pg_tag_rows_count(q: &IdQuery<'_>, tag_rows_join: bool) -> Option<Sql> {
    let f = q.filter;
    let tags = q.tags();
    if tags.is_empty() {
        return None;
    }
    let only_tag = RunsFilter {
        tags: f.tags.clone(),
        ..RunsFilter::default()
    };
    if !tag_rows_join || *f != only_tag {
        return None;
    }
    if let [(key, value)] = tags {
        return Some(pg_one_tag_rows(key, value));
    }
    // Several tags: their rows joined by run id (a hash join of the tags' index ranges), runs
    // never read.
    let mut sql = Sql::new("SELECT count(*) FROM run_tags AS tag0");
    for i in 1..tags.len() {
        sql.push(&format!(
            " JOIN run_tags AS tag{i} ON tag{i}.run_id = tag0.run_id"
        ));
    }
    let mut conds = Where::default();
    for (i, (key, value)) in tags.iter().enumerate() {
        let mut cond = Sql::new("");
        tag_condition(&mut cond, &format!("tag{i}"), key, value);
        conds.and(cond);
    }
    conds.and(Sql::new("tag0.run_id IS NOT NULL"));
    conds.write_to(&mut sql);
    Some(sql.planned())
}

fn pg_one_tag_rows(key: &str, value: &TagValue) -> Sql {
    // The tag's rows less those without a run id: the first from the tag index alone (an
    // index-only scan), the second through `idx_run_tags_run_idx (run_id, ...)`, where NULL run
    // ids are indexed too (none, in stock's data). One statement: one snapshot.
    let mut all = Sql::new("SELECT (SELECT count(*) FROM run_tags WHERE ");
    tag_condition(&mut all, "run_tags", key, value);
    all.push(") - (SELECT count(*) FROM run_tags WHERE run_tags.run_id IS NULL AND ");
    tag_condition(&mut all, "run_tags", key, value);
    all.push(")");
    all.planned()
}

/// PostgreSQL: every statement a run list or count with this filter may run, for `EXPLAIN`
/// checks (the cursor's lookup, the list with and without a limit, the counts).
pub fn pg_statements(q: &IdQuery<'_>, limit: Option<i64>) -> Vec<(String, Sql)> {
    let mut out = vec![
        ("cursor".to_owned(), cursor_id("r")),
        ("bounds".to_owned(), id_bounds()),
        (
            "ids".to_owned(),
            pg_ids(q, &PgTags::in_order(q, None), limit),
        ),
    ];
    // Undriven, a query with tags runs only when a run condition has an index to start from
    // (see `runs::pg_tags`).
    let f = q.filter;
    if q.tags().is_empty()
        || f.statuses.is_some()
        || f.job_name.is_some()
        || f.snapshot_id.is_some()
        || f.run_ids.is_some()
    {
        let undriven = PgTags::in_order(q, None);
        out.push(("ids unlimited".to_owned(), pg_ids(q, &undriven, None)));
        out.push(("count".to_owned(), pg_count(q, false, &undriven)));
    }
    for i in 0..q.tags().len() {
        if let Some(e) = pg_tag_estimate(q, i, PG_LIST_CAP) {
            out.push((format!("estimate tag{i}"), e));
        }
        let driven = PgTags::in_order(q, Some(i));
        out.push((format!("ids driven by tag{i}"), pg_ids(q, &driven, limit)));
        out.push((
            format!("count driven by tag{i}"),
            pg_count(q, false, &driven),
        ));
    }
    if let Some(tag_rows) = pg_tag_rows_count(q, true) {
        out.push(("count tag rows".to_owned(), tag_rows));
    }
    out
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
    if let Some(count) = path_entries(q, path, (1, 100)) {
        out.push((format!("path entries {path:?}"), count));
    }
    if q.near_covered() {
        out.push((
            "covering".to_owned(),
            ids(q, Access::Covering, Some((1, 100)), limit),
        ));
        if let Some((op, t)) = time_edge(q) {
            out.push(("probe".to_owned(), probe_created(1, op, t)));
        }
    }
    if q.drivers().is_empty() {
        out.push(("count".to_owned(), count_without_driver(q)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Dialect;

    fn q<'a>(filter: &'a RunsFilter, ix: &'a RunIndexes) -> IdQuery<'a> {
        IdQuery {
            filter,
            cursor_id: None,
            ascending: false,
            backfill_id_indexed: true,
            ix,
        }
    }

    #[test]
    fn postgres_checks_tags_rarest_first_and_stops_at_the_first_missing() {
        let one = |k: &str, v: &str| (k.to_owned(), TagValue::One(v.to_owned()));
        let f = RunsFilter {
            tags: Some(vec![
                one("env", "prod"),
                one("team", "ml"),
                one("sched", "s1"),
            ]),
            ..RunsFilter::default()
        };
        let ix = RunIndexes::default();
        let q = q(&f, &ix);
        // `sched` counted under the cap, `env` and `team` at it (`team` the smaller share).
        let sizes = [
            (0, (10_000, 0.5f64.to_bits())),
            (1, (10_000, 0.04f64.to_bits())),
            (2, (420, 0)),
        ];
        assert_eq!(PgTags::new(&q, None, &sizes).checks, vec![2, 1, 0]);
        assert_eq!(PgTags::new(&q, Some(2), &sizes).checks, vec![1, 0]);
        assert_eq!(PgTags::in_order(&q, None).checks, vec![0, 1, 2]);
        // A tag without a count goes last.
        assert_eq!(PgTags::new(&q, None, &sizes[1..]).checks, vec![2, 1, 0]);
        let text = Dialect::Postgres
            .render(&pg_ids(&q, &PgTags::new(&q, None, &sizes), Some(25)))
            .0
            .into_owned();
        // The run's own WHERE (the select list's product has subqueries of its own).
        let filter = &text[text.find(" FROM runs WHERE ").unwrap() + " FROM runs".len()..];
        let (t2, t1, t0) = (
            filter.find("AS tag2").unwrap(),
            filter.find("AS tag1").unwrap(),
            filter.find("AS tag0").unwrap(),
        );
        assert!(filter.starts_with(" WHERE CASE WHEN (SELECT count(*) FROM run_tags AS tag2"));
        assert!(t2 < t1 && t1 < t0, "{filter}");
        assert!(filter.contains("= 0 THEN false ELSE (SELECT count(*) FROM run_tags AS tag0"));
        // One tag checked: a plain condition.
        let single = Dialect::Postgres
            .render(&pg_ids(
                &q,
                &PgTags {
                    driving: Some(0),
                    checks: vec![1],
                },
                Some(25),
            ))
            .0
            .into_owned();
        assert!(!single.contains("CASE"), "{single}");
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
        let ix = RunIndexes::stock();
        let sql = ids(&q(&f, &ix), Access::Driver(Driver::Tag(1)), None, Some(25));
        assert!(sql.text.starts_with(
            "SELECT runs.id FROM run_tags AS driver INDEXED BY idx_run_tags CROSS JOIN runs \
             INDEXED BY sqlite_autoindex_runs_1 ON runs.run_id = driver.run_id CROSS JOIN \
             run_tags AS tag0 INDEXED BY idx_run_tags_run_idx"
        ));
        assert!(sql
            .text
            .contains("WHERE driver.\"key\" = ? AND driver.value = ?"));
        assert!(sql.text.ends_with("ORDER BY runs.id DESC LIMIT ?"));
        // 047's covering index: the driver and the other tag are seeks of it.
        let ix = RunIndexes {
            tag: Some("idx_run_tags_run_id".into()),
            tag_covering: true,
            ..RunIndexes::stock()
        };
        let sql = ids(&q(&f, &ix), Access::Driver(Driver::Tag(1)), None, Some(25));
        assert!(sql.text.starts_with(
            "SELECT runs.id FROM run_tags AS driver INDEXED BY idx_run_tags_run_id CROSS JOIN \
             runs INDEXED BY sqlite_autoindex_runs_1 ON runs.run_id = driver.run_id CROSS JOIN \
             run_tags AS tag0 INDEXED BY idx_run_tags_run_id ON tag0.\"key\" = ? AND \
             tag0.value = ? AND tag0.run_id = runs.run_id"
        ));
    }

    #[test]
    fn strategies_whose_index_the_file_lacks_are_not_taken() {
        let f = RunsFilter {
            statuses: Some(vec!["SUCCESS".into()]),
            job_name: Some("j".into()),
            tags: Some(vec![("k".into(), TagValue::One("v".into()))]),
            ..Default::default()
        };
        let bare = RunIndexes::default();
        assert!(q(&f, &bare).drivers().is_empty());
        assert_eq!(q(&f, &bare).ordered_path(), Path::Table);
        let sql = ids(
            &q(&f, &bare),
            Access::Path(Path::Table),
            Some((1, 9)),
            Some(3),
        );
        assert!(!sql.text.contains("INDEXED BY"), "{}", sql.text);
        let only_range = RunIndexes {
            range: Some("idx_run_range".into()),
            ..RunIndexes::default()
        };
        assert_eq!(q(&f, &only_range).drivers(), vec![Driver::Statuses]);
        assert_eq!(q(&f, &only_range).ordered_path(), Path::Table);
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
        let ix = RunIndexes::stock();
        assert_eq!(
            q(&f, &ix).drivers(),
            vec![
                Driver::RunIds,
                Driver::Tag(0),
                Driver::Job,
                Driver::Statuses
            ]
        );
        assert_eq!(q(&f, &ix).ordered_path(), Path::Job);
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
