//! The statements of the concurrency pools (docs/assets-domain.md §10), one function each.
//!
//! They give stock's results but are written for a shared backend: upserts are
//! `INSERT ... ON CONFLICT`, the rows a write changed come back by `RETURNING`, booleans are
//! `TRUE`/`FALSE` (SQLite stores 1/0, as stock does), and a read-then-write of stock's is one
//! statement where SQL can say it (`UPDATE ... WHERE id IN (SELECT ... LIMIT ?)`).
//!
//! What they read (`plans.rs` pins it; `INDEXED BY` keeps statistics a user's `ANALYZE` leaves
//! from turning a lookup into a scan): `concurrency_slots` has no index in stock's schema, so
//! every statement on it reads the whole table, which holds one row per configured slot (at most
//! `DAGSTER_MAX_GLOBAL_OP_CONCURRENCY_LIMIT`, 1,000 by default, per pool) plus the claimed slots
//! of shrunk pools; `concurrency_limits` is read by its unique key; `pending_steps` by
//! `idx_pending_steps (concurrency_key, run_id, step_key)`, also for a run's rows, which it finds
//! by a skip-scan of that index (one seek per pool key) instead of stock's full scan.

use crate::store::Sql;

/// `concurrency_limits` is empty while `concurrency_slots` is not: stock's reconcile is due
/// (files from before the limits table).
pub fn limits_missing() -> Sql {
    Sql::new(
        "SELECT EXISTS (SELECT 1 FROM concurrency_slots) \
         AND NOT EXISTS (SELECT 1 FROM concurrency_limits)",
    )
}

/// Stock's reconcile: a limit per pool, its live slot count, in key order.
pub fn limits_from_slots() -> Sql {
    Sql::new(
        "INSERT INTO concurrency_limits (concurrency_key, \"limit\") \
         SELECT concurrency_slots.concurrency_key, count(*) FROM concurrency_slots \
         WHERE concurrency_slots.deleted = FALSE GROUP BY concurrency_slots.concurrency_key",
    )
}

/// A limit set by the user: created, or changed and taken off the instance default.
pub fn upsert_limit(key: &str, limit: i64) -> Sql {
    let mut q = Sql::new(
        "INSERT INTO concurrency_limits (concurrency_key, \"limit\", using_default_limit) VALUES (",
    );
    q.bind(key).push(", ").bind(limit).push(
        ", FALSE) ON CONFLICT (concurrency_key) DO UPDATE SET \"limit\" = excluded.\"limit\", \
         using_default_limit = FALSE",
    );
    q
}

/// A limit from the instance default: created as such, or an existing limit changed to it and
/// left marked as it was (stock's insert, then update on IntegrityError).
pub fn default_limit(key: &str, limit: i64) -> Sql {
    let mut q = Sql::new(
        "INSERT INTO concurrency_limits (concurrency_key, \"limit\", using_default_limit) VALUES (",
    );
    q.bind(key).push(", ").bind(limit).push(
        ", TRUE) ON CONFLICT (concurrency_key) DO UPDATE SET \"limit\" = excluded.\"limit\" \
         WHERE concurrency_limits.\"limit\" != excluded.\"limit\"",
    );
    q
}

pub fn delete_limit(key: &str) -> Sql {
    let mut q = Sql::new("DELETE FROM concurrency_limits");
    q.pin("sqlite_autoindex_concurrency_limits_1")
        .push(" WHERE concurrency_limits.concurrency_key = ")
        .bind(key);
    q
}

/// The pool's slots that count towards its limit.
pub fn live_slots(key: &str) -> Sql {
    let mut q = Sql::new(
        "SELECT count(*) FROM concurrency_slots WHERE concurrency_slots.concurrency_key = ",
    );
    q.bind(key).push(" AND concurrency_slots.deleted = FALSE");
    q
}

/// Shrinking: mark `n` slots deleted, free ones first, the newest first among each.
pub fn retire_slots(key: &str, n: i64) -> Sql {
    let mut q = Sql::new(
        "UPDATE concurrency_slots SET deleted = TRUE WHERE concurrency_slots.id IN (\
         SELECT concurrency_slots.id FROM concurrency_slots \
         WHERE concurrency_slots.concurrency_key = ",
    );
    q.bind(key).push(
        " AND concurrency_slots.deleted = FALSE ORDER BY CASE WHEN concurrency_slots.run_id IS \
         NULL THEN 1 ELSE 0 END DESC, concurrency_slots.id DESC LIMIT ",
    );
    q.bind(n).push(")");
    q
}

/// Deleted slots nobody holds are removed (of every pool, as stock's statement is unscoped);
/// held ones stay until their holder frees them.
pub fn purge_retired_free_slots() -> Sql {
    Sql::new(
        "DELETE FROM concurrency_slots \
         WHERE concurrency_slots.deleted = TRUE AND concurrency_slots.run_id IS NULL",
    )
}

pub fn add_slot(key: &str) -> Sql {
    let mut q = Sql::new(
        "INSERT INTO concurrency_slots (concurrency_key, run_id, step_key, deleted) VALUES (",
    );
    q.bind(key).push(", NULL, NULL, FALSE)");
    q
}

/// Let the next `n` waiting steps of the pool claim: stock's priority order (highest first,
/// then the earliest enqueued, in whole seconds), its ties broken as SQLite's scan of
/// `idx_pending_steps` breaks them for stock, by run id and step key.
pub fn assign_next(key: &str, n: i64) -> Sql {
    let mut q = Sql::new("UPDATE pending_steps");
    q.pin("idx_pending_steps")
        .push(" SET assigned_timestamp = CURRENT_TIMESTAMP WHERE pending_steps.concurrency_key = ")
        .bind(key)
        .push(" AND pending_steps.id IN (SELECT pending_steps.id FROM pending_steps")
        .pin("idx_pending_steps")
        .push(" WHERE pending_steps.concurrency_key = ");
    q.bind(key).push(
        " AND pending_steps.assigned_timestamp IS NULL ORDER BY pending_steps.priority DESC, \
         pending_steps.create_timestamp ASC, pending_steps.run_id ASC, \
         pending_steps.step_key ASC LIMIT ",
    );
    q.bind(n).push(")");
    q
}

const PENDING_COLUMNS: &str =
    "pending_steps.assigned_timestamp, pending_steps.priority, pending_steps.create_timestamp";

/// A step's place in the queue: `(assigned_timestamp, priority, create_timestamp)`.
pub fn pending_step(key: &str, run_id: &str, step_key: &str) -> Sql {
    let mut q = Sql::new(&format!("SELECT {PENDING_COLUMNS} FROM pending_steps"));
    q.pin("idx_pending_steps")
        .push(" WHERE pending_steps.concurrency_key = ")
        .bind(key)
        .push(" AND pending_steps.run_id = ")
        .bind(run_id)
        .push(" AND pending_steps.step_key = ")
        .bind(step_key);
    q
}

/// More live slots than assigned steps (claimed ones included): stock's `has_unassigned_slots`.
fn unassigned_slots_expr(q: &mut Sql, key: &str) {
    q.push("(SELECT count(*) FROM concurrency_slots WHERE concurrency_slots.concurrency_key = ")
        .bind(key)
        .push(" AND concurrency_slots.deleted = FALSE) > (SELECT count(*) FROM pending_steps")
        .pin("idx_pending_steps")
        .push(" WHERE pending_steps.concurrency_key = ")
        .bind(key)
        .push(" AND pending_steps.assigned_timestamp IS NOT NULL)");
}

pub fn has_unassigned_slots(key: &str) -> Sql {
    let mut q = Sql::new("SELECT ");
    unassigned_slots_expr(&mut q, key);
    q
}

/// How a step joins the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assign {
    /// Assigned at once when the pool has a slot no step is assigned (a claim).
    IfSlotFree,
    /// As the caller says (stock's `add_pending_step(should_assign=...)`).
    Given(bool),
}

/// Queue a step (a step already queued is left as it is); its pending row comes back.
pub fn enqueue(
    key: &str,
    run_id: &str,
    step_key: &str,
    priority: Option<i64>,
    assign: Assign,
) -> Sql {
    let mut q = Sql::new(
        "INSERT INTO pending_steps \
         (concurrency_key, run_id, step_key, priority, assigned_timestamp) VALUES (",
    );
    q.bind(key)
        .push(", ")
        .bind(run_id)
        .push(", ")
        .bind(step_key)
        .push(", ")
        // stock stores `priority or 0`
        .bind(priority.unwrap_or(0))
        .push(", CASE WHEN ");
    match assign {
        Assign::IfSlotFree => unassigned_slots_expr(&mut q, key),
        Assign::Given(yes) => {
            q.push(if yes { "TRUE" } else { "FALSE" });
        }
    }
    q.push(&format!(
        " THEN CURRENT_TIMESTAMP END) ON CONFLICT DO NOTHING RETURNING {PENDING_COLUMNS}"
    ));
    q
}

/// The slots a step holds (stock counts deleted ones too).
pub fn held_slots(key: &str, run_id: &str, step_key: &str) -> Sql {
    let mut q = Sql::new(
        "SELECT count(*) FROM concurrency_slots WHERE concurrency_slots.concurrency_key = ",
    );
    q.bind(key)
        .push(" AND concurrency_slots.run_id = ")
        .bind(run_id)
        .push(" AND concurrency_slots.step_key = ")
        .bind(step_key);
    q
}

/// Take the pool's first free live slot for the step (stock's free-slot predicate is
/// `step_key IS NULL`); one row changed when there was one.
pub fn take_free_slot(key: &str, run_id: &str, step_key: &str) -> Sql {
    let mut q = Sql::new("UPDATE concurrency_slots SET run_id = ");
    q.bind(run_id)
        .push(", step_key = ")
        .bind(step_key)
        .push(
            " WHERE concurrency_slots.id = (SELECT concurrency_slots.id FROM concurrency_slots \
             WHERE concurrency_slots.concurrency_key = ",
        )
        .bind(key)
        .push(
            " AND concurrency_slots.step_key IS NULL AND concurrency_slots.deleted = FALSE \
             ORDER BY concurrency_slots.id LIMIT 1)",
        );
    q
}

fn and_step(q: &mut Sql, table: &str, step_key: Option<&str>) {
    if let Some(step_key) = step_key {
        q.push(&format!(" AND {table}.step_key = ")).bind(step_key);
    }
}

/// The deleted slots a run (or one of its steps) holds go when it frees them.
pub fn drop_retired_slots(run_id: &str, step_key: Option<&str>) -> Sql {
    let mut q = Sql::new("DELETE FROM concurrency_slots WHERE concurrency_slots.run_id = ");
    q.bind(run_id).push(" AND concurrency_slots.deleted = TRUE");
    and_step(&mut q, "concurrency_slots", step_key);
    q
}

/// Free the slots a run (or one of its steps) holds; their pools come back.
pub fn release_slots(run_id: &str, step_key: Option<&str>) -> Sql {
    let mut q = Sql::new(
        "UPDATE concurrency_slots SET run_id = NULL, step_key = NULL \
         WHERE concurrency_slots.run_id = ",
    );
    q.bind(run_id);
    and_step(&mut q, "concurrency_slots", step_key);
    q.push(" RETURNING concurrency_slots.concurrency_key");
    q
}

/// The distinct pool keys of `pending_steps`, one index seek each: the leading column of
/// `idx_pending_steps`, skipped over to reach a run's rows by `(concurrency_key, run_id)`.
fn pool_keys() -> Sql {
    let mut q = Sql::new(
        "WITH RECURSIVE pool_keys(concurrency_key) AS (\
         SELECT min(pending_steps.concurrency_key) FROM pending_steps",
    );
    q.pin("idx_pending_steps")
        .push(" UNION ALL SELECT (SELECT min(pending_steps.concurrency_key) FROM pending_steps")
        .pin("idx_pending_steps")
        .push(
            " WHERE pending_steps.concurrency_key > pool_keys.concurrency_key) FROM pool_keys \
             WHERE pool_keys.concurrency_key IS NOT NULL) ",
        );
    q
}

/// The run's (or step's) rows of `pending_steps`, found by `(concurrency_key, run_id)` for
/// each pool key of `pool_keys`.
fn run_pending(q: &mut Sql, run_id: &str, step_key: Option<&str>) {
    q.push(" FROM pending_steps")
        .pin("idx_pending_steps")
        .push(
            " WHERE pending_steps.concurrency_key IN (SELECT pool_keys.concurrency_key FROM \
             pool_keys) AND pending_steps.run_id = ",
        )
        .bind(run_id);
    and_step(q, "pending_steps", step_key);
}

/// Take a run's (or a step's) steps off the queue: `(pool, assigned_timestamp)` of each.
pub fn remove_pending(run_id: &str, step_key: Option<&str>) -> Sql {
    let mut q = pool_keys();
    q.push("DELETE");
    run_pending(&mut q, run_id, step_key);
    // Columns only: SQLite 3.40 evaluates `assigned_timestamp IS NOT NULL` in the RETURNING
    // clause of this DELETE as true for a NULL column.
    q.push(" RETURNING pending_steps.concurrency_key, pending_steps.assigned_timestamp");
    q
}

/// Whether a run holds a slot or waits in a queue.
pub fn run_in_pools(run_id: &str) -> Sql {
    let mut q = pool_keys();
    q.push("SELECT EXISTS (SELECT 1");
    run_pending(&mut q, run_id, None);
    q.push(") OR EXISTS (SELECT 1 FROM concurrency_slots WHERE concurrency_slots.run_id = ")
        .bind(run_id)
        .push(")");
    q
}

/// Pool keys in the limits table's row order (stock's scans have no ORDER BY).
pub fn limit_keys() -> Sql {
    Sql::new("SELECT concurrency_limits.concurrency_key FROM concurrency_limits")
}

pub fn pool_limits() -> Sql {
    Sql::new(
        "SELECT concurrency_limits.concurrency_key, concurrency_limits.\"limit\", \
         concurrency_limits.using_default_limit FROM concurrency_limits",
    )
}

/// `pool_limits` on an index without `using_default_limit`.
pub fn pool_limits_without_default() -> Sql {
    Sql::new(
        "SELECT concurrency_limits.concurrency_key, concurrency_limits.\"limit\" \
         FROM concurrency_limits",
    )
}

pub fn slots_of(keys: &[String]) -> Sql {
    let mut q = Sql::new(
        "SELECT concurrency_slots.concurrency_key, concurrency_slots.run_id, \
         concurrency_slots.step_key, concurrency_slots.deleted FROM concurrency_slots WHERE ",
    );
    q.append(&Sql::is_in("concurrency_slots.concurrency_key", keys));
    q
}

pub fn limits_of(keys: &[String]) -> Sql {
    let mut q = Sql::new(
        "SELECT concurrency_limits.concurrency_key, concurrency_limits.\"limit\", \
         concurrency_limits.using_default_limit FROM concurrency_limits",
    );
    q.pin("sqlite_autoindex_concurrency_limits_1")
        .push(" WHERE ");
    q.append(&Sql::is_in("concurrency_limits.concurrency_key", keys));
    q
}

pub fn pending_of(keys: &[String]) -> Sql {
    let mut q = Sql::new(
        "SELECT pending_steps.concurrency_key, pending_steps.run_id, pending_steps.step_key, \
         pending_steps.assigned_timestamp, pending_steps.create_timestamp, \
         pending_steps.priority FROM pending_steps",
    );
    q.pin("idx_pending_steps").push(" WHERE ");
    q.append(&Sql::is_in("pending_steps.concurrency_key", keys));
    q
}

/// Every run with a step queued or holding a slot (a holder keeps its pending row until it
/// frees), from the covering index.
pub fn pending_run_ids() -> Sql {
    let mut q = Sql::new("SELECT DISTINCT pending_steps.run_id FROM pending_steps");
    q.pin("idx_pending_steps");
    q
}

/// The pool tables stock's `_has_rows` is asked about.
pub const POOL_TABLES: [&str; 3] = ["concurrency_slots", "concurrency_limits", "pending_steps"];

/// Whether a pool table has a row. The caller passes one of [`POOL_TABLES`].
pub fn has_rows(table: &str) -> Sql {
    debug_assert!(POOL_TABLES.contains(&table));
    Sql::new(&format!("SELECT 1 FROM {table} LIMIT 1"))
}
